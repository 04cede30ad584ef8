#!/usr/bin/env bash
# Runs the libFuzzer target of the TCP/IP stack on the sim network
# (fuzz_stack.c): first every input of corpus_stack/ once (the seeds and
# the regression inputs, crash-* among them, must all pass; each failing
# one is named), then fuzzing for FUZZ_SECONDS (default 30) from that
# corpus. New inputs go to a temporary directory, never into the source
# tree; a crashing input is kept in BUILD/test-logs/ and shown. Exits 77
# (skip) only when the target was not built (no clang): CI installs clang.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/fuzz_lib.sh" fuzz_stack 30 -timeout=60 -max_len=4096
