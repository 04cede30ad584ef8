#!/usr/bin/env bash
# Builds libdemi as it was at an earlier commit, beside the current tree,
# for benches that compare two builds in one run (bench/catnip.sh's
# BENCH_BASE): the commit's files are exported with `git archive` into
# DIR/src (no worktree, nothing changed in this checkout) and built with
# CMake's default build type into DIR/build, which it prints on stdout.
# Only the targets named (default: demi-echo) are built.
#   scripts/build-at.sh COMMIT DIR [TARGET...]
#   e.g. base=$(scripts/build-at.sh d71d669 /tmp/base) && BENCH_BASE=$base bench/catnip.sh build
# DIR must not exist, or be empty: it is the caller's to remove.
set -euo pipefail
die() {
    echo "build-at: $*" >&2
    exit 1
}
[[ $# -ge 2 ]] || {
    echo "usage: $0 COMMIT DIR [TARGET...]" >&2
    exit 2
}
commit=$1 dir=$2
shift 2
targets=("$@")
((${#targets[@]})) || targets=(demi-echo)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
sha=$(git -C "$repo" rev-parse --verify --quiet "$commit^{commit}") || die "no commit '$commit' in $repo"
if [[ -e $dir ]]; then
    [[ -d $dir && -z $(ls -A "$dir") ]] || die "$dir exists and is not an empty directory"
fi
mkdir -p "$dir/src"
git -C "$repo" archive "$sha" | tar -x -C "$dir/src" || die "could not export $sha"
cmake -S "$dir/src" -B "$dir/build" -G "Unix Makefiles" >"$dir/cmake.log" 2>&1 ||
    die "cmake failed for $sha (log: $dir/cmake.log)"
cmake --build "$dir/build" -j "$(nproc)" --target "${targets[@]}" >>"$dir/cmake.log" 2>&1 ||
    die "building ${targets[*]} at $sha failed (log: $dir/cmake.log)"
echo "$sha" >"$dir/build/COMMIT"
echo "$dir/build"
