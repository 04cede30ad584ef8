#!/usr/bin/env bash
# Runs the libFuzzer target of cattree's log-open parsing (fuzz_logfmt.c:
# the file header check and the recovery scan) for FUZZ_SECONDS (default
# 20) from the corpus in corpus_logfmt/ (real logs written by cattree, some
# damaged, and a few inputs in the target's compact form).
# New inputs go to a temporary directory, never into the source tree; a
# crashing input is kept in BUILD/test-logs/ and shown. Exits 77 (skip)
# only when the target was not built (no clang): CI installs clang.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/fuzz_lib.sh" fuzz_logfmt 20 -timeout=10 -max_len=65536
