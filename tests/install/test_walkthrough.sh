#!/usr/bin/env bash
# Runs the README's "A first program, as a new user" block verbatim (the
# lines between its walkthrough markers), with HOME a fresh temporary
# directory, from the repository's root: `make install` into a prefix of
# one's own, demi-echo server and client from that prefix, and a small
# program built with pkg-config that must print "libdemi VERSION: hello".
# BUILD (the Makefile's build directory) is the suite's, so `make install`
# reuses what is built. LD_LIBRARY_PATH is cleared: the installed programs
# must find libdemi through their RPATH.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${DEMI_BUILD:-build}" && pwd)
# In the sanitizer pass the installed library is ASan-instrumented and the
# README's plain cc line builds an uninstrumented ./hello, so the ASan
# runtime is not first in its library list: ASan's link-order check is
# turned off (the runtime still loads, as libdemi's own dependency).
san_env=()
[[ ${DEMI_SANITIZED:-0} == 1 ]] && san_env=(ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0")
command -v pkg-config >/dev/null || { echo "SKIP: pkg-config not installed (scripts/deps.sh installs it)"; exit 77; }
command -v cc >/dev/null || { echo "SKIP: no C compiler"; exit 77; }
home=$(mktemp -d "${TMPDIR:-/tmp}/demi-walkthrough.XXXXXX")
trap 'rm -rf "$home"' EXIT
awk '/<!-- walkthrough: begin -->/ {f = 1; next} /<!-- walkthrough: end -->/ {f = 0} f' "$root/README.md" |
  sed '1{/^```/d}; ${/^```/d}' >"$home/walk.sh"
[[ -s $home/walk.sh ]] || { echo "FAIL: no walkthrough block in README.md"; exit 1; }
grep -q 'make install' "$home/walk.sh" || { echo "FAIL: the walkthrough block does not install"; exit 1; }
out=$home/out
# The block starts in the repository (a clone) and writes into $HOME.
(cd "$root" && env -u LD_LIBRARY_PATH -u PKG_CONFIG_PATH HOME="$home" BUILD="$build" HUGEPAGES=off "${san_env[@]}" \
  bash -euo pipefail "$home/walk.sh" >"$out" 2>&1) || {
  echo "FAIL: the README walkthrough failed (exit $?):"
  tail -n 30 "$out"
  exit 1
}
version=$(awk '/^#define DEMI_VERSION_(MAJOR|MINOR|PATCH) / {v = v (v == "" ? "" : ".") $3} END {print v}' \
  "$build/include/demi/version.h")
grep -qx "libdemi $version: hello" "$out" || { echo "FAIL: ./hello did not print 'libdemi $version: hello':"; tail -n 20 "$out"; exit 1; }
grep -q 'p50' "$out" || { echo "FAIL: demi-echo client printed no latencies:"; tail -n 20 "$out"; exit 1; }
echo "walkthrough: ran verbatim; $(grep -x "libdemi .*: hello" "$out")"
