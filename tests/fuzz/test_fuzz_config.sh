#!/usr/bin/env bash
# Runs the libFuzzer target of the configuration loader (fuzz_config.c) for
# FUZZ_SECONDS (default 20) from corpus_config/: real config files (the
# README's, scripts/memif-config.sh's, scripts/bypass.sh's) and hostile ones
# (duplicate keys, aliases, several documents, deep nesting, bad bytes), and
# every input that ever crashed it. Every seed is replayed first. New inputs
# go to a temporary directory, never into the source tree; a crashing input
# is kept in BUILD/test-logs/ and shown. Exits 77 (skip) only when the target
# was not built (no clang): CI installs clang.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/fuzz_lib.sh" fuzz_config 20 -timeout=10 -max_len=8192 -dict="$here/config.dict"
