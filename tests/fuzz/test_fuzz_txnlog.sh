#!/usr/bin/env bash
# Runs the libFuzzer target of demi-txnd's log replay (fuzz_txnlog.c) for
# FUZZ_SECONDS (default 20) from corpus_txnlog/ (written by
# gen_corpus_txnlog.py): record payloads in orders a replica writes and
# in orders it never does, and a few malformed ones. New inputs go to a
# temporary directory, never into the source tree; a crashing input is
# kept in BUILD/test-logs/ and shown. Exits 77 (skip) only when the
# target was not built (no clang): CI installs clang.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/fuzz_lib.sh" fuzz_txnlog 20 -timeout=10 -max_len=16384
