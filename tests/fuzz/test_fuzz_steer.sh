#!/usr/bin/env bash
# Runs the libFuzzer target of the steering rule and the rings between
# instances sharing a device (fuzz_steer.c, src/inet/group.c) for
# FUZZ_SECONDS (default 20) from the corpus in corpus_steer/
# (gen_corpus_steer.py: ARP, TCP and UDP frames, fragments, truncated and
# oversized frames, a ring filled up).
# New inputs go to a temporary directory, never into the source tree; a
# crashing input is kept in BUILD/test-logs/ and shown. Exits 77 (skip)
# only when the target was not built (no clang): CI installs clang.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/fuzz_lib.sh" fuzz_steer 20 -timeout=10 -max_len=4096
