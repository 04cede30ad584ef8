#!/usr/bin/env bash
# Two catnip processes over DPDK's net_memif with 2 queue pairs, 2
# instances each (libdemi.queues = 2, issue 14): demi-echo server
# --threads 2 (the memif server) against mq_client with 2 threads (the
# memif client), both instances of each side on their own queue pair.
# memif has no hash: the sender's queue decides the receiver's, so frames
# of a flow owned by the other instance reach the wrong queue and are
# handed over through the rings between instances. Checks:
#   1. TCP: each client instance opens 64 connections and runs 20 round
#      trips of 16 KiB on each, every echoed byte checked; both server
#      instances accept and echo;
#   2. UDP: each client instance sends 100 datagrams of 1400 bytes from
#      each of 8 sockets on its own ephemeral ports, each checked; both
#      server instances echo (16 flows all hashing to one has probability
#      2^-15);
#   3. demi-echo's own client with --threads 2: 32 connections, 20000
#      round trips in all, every byte checked by the client;
# and in all that frames were handed between the instances on each side,
# no more taken in than handed out.
# No root needed: memif over a socket file in a private directory.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${DEMI_BUILD:-$src/build}
[[ $build == /* ]] || build=$src/$build
# shellcheck source=../../scripts/bypass.sh
. "$src/scripts/bypass.sh" # wait_for, wait_exit
tmp=$(mktemp -d "${TMPDIR:-/tmp}/demi-catnip-mq.XXXXXX")
srv=
cleanup() {
  [[ -n $srv ]] && kill -KILL "$srv" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  exit 1
}
show() { tail -n 30 "$1" 2>/dev/null | sed 's/^/    | /'; }
scale=1
[[ ${DEMI_SANITIZED:-0} == 1 ]] && scale=3

# run NAME SERVER_ARGS -- CLIENT...: a fresh memif link per part; CLIENT is
# mq_client's arguments after the server's IP, or "echo" and demi-echo
# client's.
run() {
  local name=$1
  shift
  local sargs=() cargs=()
  while [[ $1 != -- ]]; do sargs+=("$1"); shift; done
  shift
  cargs=("$@")
  "$src/scripts/memif-config.sh" server 10.78.0.1 02:00:00:00:78:01 "$tmp/$name.sock" >"$tmp/server.yaml"
  "$src/scripts/memif-config.sh" client 10.78.0.2 02:00:00:00:78:02 "$tmp/$name.sock" >"$tmp/client.yaml"
  CONFIG_PATH=$tmp/server.yaml HUGEPAGES=off DEMI_LOG=info \
    "$build/demi-echo" server "${sargs[@]}" --threads 2 --addr 10.78.0.1:7400 >"$tmp/$name.server" 2>"$tmp/$name.server.err" &
  srv=$!
  wait_for "$tmp/$name.server" ^ready $((30 * scale)) "$srv" ||
    { show "$tmp/$name.server.err"; fail "$name: the server did not print ready"; }
  local client=("$build/tests/interop/mq_client" 10.78.0.1)
  [[ ${cargs[0]} == echo ]] && { client=("$build/demi-echo" client --addr 10.78.0.1:7400); cargs=("${cargs[@]:1}"); }
  CONFIG_PATH=$tmp/client.yaml QUEUES=2 HUGEPAGES=off DEMI_LOG=info timeout -k 5 $((120 * scale)) \
    "${client[@]}" "${cargs[@]}" >"$tmp/$name.client" 2>"$tmp/$name.client.err" ||
    { cat "$tmp/$name.client"; show "$tmp/$name.client.err"; show "$tmp/$name.server.err"; fail "$name: ${client[0]##*/} failed"; }
  kill -INT "$srv"
  wait_exit "$srv" $((30 * scale)) || fail "$name: the server did not exit within $((30 * scale)) s of SIGINT"
  wait "$srv" || { show "$tmp/$name.server.err"; fail "$name: the server exited $?"; }
  srv=
  grep -q "started with 2 queue pairs" "$tmp/$name.server.err" || { show "$tmp/$name.server.err"; fail "$name: the server's port did not start with 2 queue pairs"; }
  grep -q "started with 2 queue pairs" "$tmp/$name.client.err" || { show "$tmp/$name.client.err"; fail "$name: the client's port did not start with 2 queue pairs"; }
  echo "$name, server:"
  sed 's/^/    /' "$tmp/$name.server"
  echo "$name, client:"
  sed 's/^/    /' "$tmp/$name.client"
}
# field FILE NAME THREAD
field() { sed -n "s/^thread $3 .*\\b$2=\\([0-9]*\\).*/\\1/p" "$1"; }
# handed FILE WHAT: frames went between the two instances of that side
handed() {
  local out=0 in=0 t v
  for t in 0 1; do
    v=$(field "$1" frames_handed_out "$t"); out=$((out + ${v:-0}))
    v=$(field "$1" frames_handed_in "$t"); in=$((in + ${v:-0}))
  done
  [[ $in -gt 0 ]] || fail "$2: no frame was handed between the instances"
  [[ $in -le $out ]] || fail "$2: $in frames taken in but only $out handed out"
}
both() { # FILE NAME WHAT: both threads' NAME above 0
  local t v
  for t in 0 1; do
    v=$(field "$1" "$2" "$t")
    [[ -n $v && $v -gt 0 ]] || fail "$3: thread $t has $2=${v:-none}"
  done
}

run tcp -- 7400 0 2 64 20 16384
for t in 0 1; do
  grep -q "^thread $t .*conns=64 bytes=$((64 * 20 * 16384)) " "$tmp/tcp.client" ||
    fail "TCP: client thread $t did not finish every round trip"
done
a0=$(field "$tmp/tcp.server" accepted 0) a1=$(field "$tmp/tcp.server" accepted 1)
[[ $((a0 + a1)) -eq 128 ]] || fail "TCP: the server's threads accepted $a0 + $a1 connections, not 128"
both "$tmp/tcp.server" accepted "TCP server"
both "$tmp/tcp.server" echoed "TCP server"
handed "$tmp/tcp.server" "TCP server"
handed "$tmp/tcp.client" "TCP client"

run udp --udp -- 0 7400 2 8 100 1400
for t in 0 1; do
  grep -q "^thread $t .*datagrams=800 " "$tmp/udp.client" || fail "UDP: client thread $t did not get 800 echoes"
done
both "$tmp/udp.server" echoed "UDP server"
handed "$tmp/udp.server" "UDP server"
handed "$tmp/udp.client" "UDP client"

run echo -- echo --threads 2 --clients 32 --iters 20000 --warmup 0 --size 256
grep -q '"threads":2' "$tmp/echo.client" || fail "demi-echo client --threads 2 printed no result for 2 threads"
n=$(sed -n 's/.*"n":\([0-9]*\).*/\1/p' "$tmp/echo.client")
[[ -n $n && $n -ge 20000 ]] || fail "demi-echo client --threads 2: $n round trips, not 20000"
both "$tmp/echo.server" echoed "demi-echo client --threads 2, server"
echo "ok"
