#!/usr/bin/env bash
# Runs the libFuzzer target of TxnStore's wire format (fuzz_txnmsg.c) for
# FUZZ_SECONDS (default 20) from corpus_txnmsg/: one valid frame of every
# message type, a few malformed frames, and regress-* inputs that once
# found a bug. New inputs go to a temporary directory, never into the
# source tree; a crashing input is kept in BUILD/test-logs/ and shown.
# Exits 77 (skip) only when the target was not built (no clang): CI
# installs clang.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/fuzz_lib.sh" fuzz_txnmsg 20 -timeout=10 -max_len=8192
