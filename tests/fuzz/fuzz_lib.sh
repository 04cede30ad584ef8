# Shared by the test_fuzz_*.sh scripts: one libFuzzer target, its corpus
# replayed input by input, then fuzzed for a bounded time. Sourced, after
# `set -euo pipefail`, as
#   . fuzz_lib.sh NAME DEFAULT_SECONDS [LIBFUZZER OPTION ...]
# with corpus_NAME/ beside this file. New inputs go to a temporary
# directory, never into the source tree; a crashing input is kept in
# BUILD/test-logs/NAME-artifacts/ and shown. FUZZ_SECONDS overrides the
# fuzzing time. The sanitizer pass (DEMI_SANITIZED=1) builds the same clang
# target again, so there it fuzzes for a quarter of the time: the replay
# is what must hold in both passes. Exits 77 (skip) only when the target
# was not built (no clang): CI installs clang.
fuzz_name=$1
fuzz_default_seconds=$2
shift 2
fuzz_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
fuzz_build=${DEMI_BUILD:-build}
fuzz=$fuzz_build/tests/fuzz/$fuzz_name
corpus=$fuzz_here/corpus_${fuzz_name#fuzz_}
if [[ ! -x $fuzz ]]; then
    echo "SKIP: $fuzz is not built (it needs clang with libFuzzer; scripts/deps.sh installs clang)"
    exit 77
fi
artifacts=$fuzz_build/test-logs/$fuzz_name-artifacts
mkdir -p "$artifacts"
work=$(mktemp -d "${TMPDIR:-/tmp}/demi-$fuzz_name.XXXXXX")
trap 'rm -rf "$work"' EXIT
opts=(-rss_limit_mb=2048 -artifact_prefix="$artifacts/" "$@")
seconds=${FUZZ_SECONDS:-$fuzz_default_seconds}
[[ -z ${FUZZ_SECONDS:-} && ${DEMI_SANITIZED:-0} == 1 ]] && seconds=$(((seconds + 3) / 4))

# Replay: every input of the corpus in one run; if that fails (libFuzzer
# stops at the first), each in its own run, so that every failing
# regression input is named.
rc=0
"$fuzz" "${opts[@]}" "$corpus"/* >"$work/whole.log" 2>&1 || rc=$?
failed=()
for f in "$corpus"/*; do
    ((rc != 0)) || break
    if ! "$fuzz" "${opts[@]}" "$f" >"$work/replay.log" 2>&1; then
        failed+=("$(basename "$f")")
        echo "== replay of $(basename "$f") failed:"
        grep -m 3 -E "$fuzz_name: |runtime error|ERROR: " "$work/replay.log" || tail -n 5 "$work/replay.log"
    fi
done
if ((${#failed[@]})); then
    echo "$fuzz_name: ${#failed[@]} corpus inputs fail: ${failed[*]}"
    exit 1
fi
if ((rc != 0)); then
    echo "$fuzz_name: the corpus fails in one run but every input passes alone (state kept between inputs?):"
    tail -n 20 "$work/whole.log"
    exit 1
fi
echo "$fuzz_name: all $(ls "$corpus" | wc -l) corpus inputs pass"

"$fuzz" "${opts[@]}" -max_total_time="$seconds" -print_final_stats=1 "$work" "$corpus" || rc=$?
if ((rc != 0)); then
    echo "$fuzz_name failed (status $rc); inputs kept in $artifacts:"
    for f in "$artifacts"/*; do
        [[ -f $f ]] && { echo "== $f"; od -A d -t x1z "$f" | head -n 20; }
    done
    exit 1
fi
echo "$fuzz_name: no finding in $seconds s"
