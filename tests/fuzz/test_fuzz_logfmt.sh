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
build=${DEMI_BUILD:-build}
fuzz=$build/tests/fuzz/fuzz_logfmt
if [[ ! -x $fuzz ]]; then
    echo "SKIP: $fuzz is not built (it needs clang with libFuzzer; scripts/deps.sh installs clang)"
    exit 77
fi
artifacts=$build/test-logs/fuzz_logfmt-artifacts
mkdir -p "$artifacts"
work=$(mktemp -d "${TMPDIR:-/tmp}/demi-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
rc=0
"$fuzz" -max_total_time="${FUZZ_SECONDS:-20}" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$work" "$here/corpus_logfmt" || rc=$?
if ((rc != 0)); then
    echo "fuzz_logfmt failed (status $rc); inputs kept in $artifacts:"
    for f in "$artifacts"/*; do
        [[ -f $f ]] && { echo "== $f"; od -c "$f" | head -n 20; }
    done
    exit 1
fi
echo "fuzz_logfmt: no finding"
