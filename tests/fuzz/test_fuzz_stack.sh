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
build=${DEMI_BUILD:-build}
fuzz=$build/tests/fuzz/fuzz_stack
if [[ ! -x $fuzz ]]; then
    echo "SKIP: $fuzz is not built (it needs clang with libFuzzer; scripts/deps.sh installs clang)"
    exit 77
fi
artifacts=$build/test-logs/fuzz_stack-artifacts
mkdir -p "$artifacts"
work=$(mktemp -d "${TMPDIR:-/tmp}/demi-fuzz-stack.XXXXXX")
trap 'rm -rf "$work"' EXIT
opts=(-timeout=60 -rss_limit_mb=2048 -max_len=4096 -artifact_prefix="$artifacts/")
rc=0
# Replay: every file of the corpus in one run; if one fails (libFuzzer
# stops at the first), each in its own run, so that every failing
# regression input is named.
failed=()
"$fuzz" "${opts[@]}" "$here"/corpus_stack/* >"$work/whole.log" 2>&1 || rc=$?
for f in "$here"/corpus_stack/*; do
    ((rc != 0)) || break
    if ! "$fuzz" "${opts[@]}" "$f" >"$work/replay.log" 2>&1; then
        failed+=("$(basename "$f")")
        echo "== replay of $(basename "$f") failed:"
        grep -m 3 -E 'fuzz_stack: |runtime error|ERROR: ' "$work/replay.log" || tail -n 5 "$work/replay.log"
    fi
done
if ((${#failed[@]})); then
    echo "fuzz_stack: ${#failed[@]} corpus inputs fail: ${failed[*]}"
    exit 1
fi
if ((rc != 0)); then
    echo "fuzz_stack: the corpus fails in one run but every input passes alone (state kept between inputs?):"
    tail -n 20 "$work/whole.log"
    exit 1
fi
echo "fuzz_stack: all $(ls "$here"/corpus_stack | wc -l) corpus inputs pass"
"$fuzz" "${opts[@]}" -max_total_time="${FUZZ_SECONDS:-30}" -print_final_stats=1 \
    "$work" "$here/corpus_stack" || rc=$?
if ((rc != 0)); then
    echo "fuzz_stack failed (status $rc); inputs kept in $artifacts:"
    for f in "$artifacts"/*; do
        [[ -f $f ]] && { echo "== $f"; od -A d -t x1 "$f" | head -n 20; }
    done
    exit 1
fi
echo "fuzz_stack: no finding"
