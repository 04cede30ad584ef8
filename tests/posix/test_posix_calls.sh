#!/usr/bin/env bash
# libdemi-posix.so under ordinary socket programs (issue 13): px_server (a
# TCP+UDP echo server in five shapes: blocking, epoll level- and
# edge-triggered with EPOLLONESHOT, poll, select; kernel pipe and timerfd
# in the same sets) and px_client (echo with every read/write call family,
# 200 non-blocking connections, 64 MiB each way, non-blocking corner
# cases, refused connects, UDP with truncation, timeouts, fork, EOF and
# RST, epoll semantics), every byte checked. The same binaries pass on
# plain Linux (tests/posix/px_kernel_check.sh, run first here).
#
#   tests/posix/test_posix_calls.sh catnap
#       px_rules (the errors libdemi-posix(7) promises, the thread rule,
#       kernel descriptors beside stack sockets), then on 127.0.0.1: the
#       server under the preload against kernel clients, then a kernel
#       server against clients under the preload.
#   tests/posix/test_posix_calls.sh catpowder-xdp|catpowder-packet|catnip-afxdp|catnip-afpacket
#       over a veth between two namespaces (scripts/netns.sh, topology
#       80..83), our stack on one side, Linux on the other: the server under
#       the preload against Linux clients, then a Linux server against
#       clients under the preload (one at a time: they share the device).
# Exit 0 pass, 1 fail, 77 skip (bypass modes: not root, or no such socket
# family in the kernel). Stops only what it started, by PID.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${DEMI_BUILD:-$src/build}
[[ $build == /* ]] || build=$src/$build
bin=$build/tests/posix
# shellcheck source=../../scripts/bypass.sh
. "$src/scripts/bypass.sh"

mode=${1:-}
case $mode in
catnap) id= ;;
catpowder-xdp) id=80 ;;
catpowder-packet) id=81 ;;
catnip-afxdp) id=82 ;;
catnip-afpacket) id=83 ;;
*)
  echo "usage: $0 catnap|catpowder-xdp|catpowder-packet|catnip-afxdp|catnip-afpacket" >&2
  exit 2
  ;;
esac
[[ -x $bin/px_server && -x $bin/px_client && -f $build/libdemi-posix.so ]] ||
  { echo "FAIL: px_server, px_client or libdemi-posix.so not built in $build"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/demi-posix-calls.XXXXXX")
cleanup() {
  if [[ -n $id ]]; then "$src/scripts/netns.sh" down "$id" >/dev/null 2>&1; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

read -r -a preload <<<"$(preload_env "$build")"
check() { # LABEL: px_kernel_check.sh with the PX_* variables set by the caller
  echo "== $1"
  bash "$here/px_kernel_check.sh" "$bin" >"$tmp/run.log" 2>&1
  local rc=$?
  grep -E '^(FAIL|    \|)|passed, ' "$tmp/run.log" | head -n 60
  return $rc
}
rc=0
PX_SERVER_WRAP='' PX_CLIENT_WRAP='' check "plain Linux (proves the test programs)" || exit 1

if [[ $mode == catnap ]]; then
  ours="env LIBOS=catnap HUGEPAGES=off ${preload[*]}"
  # What the preload refuses, and the kernel's descriptors beside its own.
  echo "== px_rules (libdemi-posix(7)'s errors, threads, kernel descriptors)"
  # shellcheck disable=SC2086 # $ours is words
  if $ours timeout -k 5 120 "$bin/px_rules" >"$tmp/rules.log" 2>&1; then
    grep -v '^libdemi' "$tmp/rules.log"
  else
    sed 's/^/    | /' "$tmp/rules.log"
    rc=1
  fi
  PX_SERVER_WRAP=$ours check "server under the preload (catnap), Linux clients" || rc=1
  PX_CLIENT_WRAP=$ours check "Linux server, clients under the preload (catnap)" || rc=1
  exit $rc
fi

[[ $(id -u) -eq 0 ]] || { echo "skip: needs root (network namespaces, veth, raw sockets)"; exit 77; }
bypass_require "$mode"
bypass_topology up "$id" || { echo "FAIL: scripts/netns.sh up $id printed no topology"; exit 1; }
read -r -a env_a <<<"$(bypass_env "$mode" "$if_a" "$ip_a" "$tmp")"
ours="ip netns exec $ns_a env ${env_a[*]} HUGEPAGES=off DEMI_LOG=info ${preload[*]}"
linux="ip netns exec $ns_b"
PX_HOST=$ip_a PX_SERVER_WRAP=$ours PX_CLIENT_WRAP=$linux \
  check "server under the preload ($mode, $ip_a), Linux clients ($ip_b)" || rc=1
PX_HOST=$ip_b PX_SERVER_WRAP=$linux PX_CLIENT_WRAP=$ours PX_SEQUENTIAL=1 \
  check "Linux server ($ip_b), clients under the preload ($mode, $ip_a), one at a time" || rc=1
exit $rc
