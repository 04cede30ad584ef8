#!/usr/bin/env bash
# Runs the libFuzzer target of the receiving end of TxnStore's state
# transfer (fuzz_txnsync.c: sync.c's txsync_in_apply on store.c) for
# FUZZ_SECONDS (default 20) from corpus_txnsync/ (written by
# gen_corpus_txnsync.py): whole syncs as a backup and as a merging new
# primary, decisions that settle or contradict the store's own, counts that
# do not match, frames outside a sync, each bound reached. New inputs go to
# a temporary directory, never into the source tree; a crashing input is
# kept in BUILD/test-logs/ and shown. Exits 77 (skip) only when the target
# was not built (no clang): CI installs clang.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/fuzz_lib.sh" fuzz_txnsync 20 -timeout=10 -max_len=16384
