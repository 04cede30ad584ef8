#!/usr/bin/env bash
# Runs the libFuzzer target of demi-kv's RESP parser (fuzz_resp.c) for
# FUZZ_SECONDS (default 20) from the corpus of real commands in corpus_resp/.
# New inputs go to a temporary directory, never into the source tree; a
# crashing input is kept in BUILD/test-logs/ and shown. Exits 77 (skip)
# only when the target was not built (no clang): CI installs clang.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/fuzz_lib.sh" fuzz_resp 20 -timeout=10 -max_len=8192
