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
build=${DEMI_BUILD:-build}
fuzz=$build/tests/fuzz/fuzz_config
if [[ ! -x $fuzz ]]; then
    echo "SKIP: $fuzz is not built (it needs clang with libFuzzer; scripts/deps.sh installs clang)"
    exit 77
fi
artifacts=$build/test-logs/fuzz_config-artifacts
mkdir -p "$artifacts"
work=$(mktemp -d "${TMPDIR:-/tmp}/demi-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
rc=0
"$fuzz" -max_total_time="${FUZZ_SECONDS:-20}" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
    -print_final_stats=1 -dict="$here/config.dict" -artifact_prefix="$artifacts/" "$work" "$here/corpus_config" || rc=$?
if ((rc != 0)); then
    echo "fuzz_config failed (status $rc); inputs kept in $artifacts:"
    for f in "$artifacts"/*; do
        [[ -f $f ]] && { echo "== $f"; od -c "$f" | head -n 20; }
    done
    exit 1
fi
echo "fuzz_config: no finding"
