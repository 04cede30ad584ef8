#!/usr/bin/env bash
# Runs the libFuzzer target of demi-kv's command layer (fuzz_kvcmd.c:
# command sequences against one keyspace, replies checked as RESP, every
# logged write replayed into a second keyspace that must stay equal, the
# AOF rewrite's commands rebuilding a third, memory accounting back to 0)
# for FUZZ_SECONDS (default 20) from corpus_kvcmd/: seeds for every data
# type's commands, SCAN, keyspace and server commands, and every input that
# ever failed. Every seed is replayed first. New inputs go to a temporary
# directory, never into the source tree; a failing input is kept in
# BUILD/test-logs/ and shown. Exits 77 (skip) only when the target was not
# built (no clang): CI installs clang.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/fuzz_lib.sh" fuzz_kvcmd 20 -timeout=10 -max_len=4096 -dict="$here/kvcmd.dict"
