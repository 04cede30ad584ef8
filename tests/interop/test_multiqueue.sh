#!/usr/bin/env bash
# Two libdemi instances in one process sharing one device (issue 14,
# libdemi.queues = 2): demi-echo server --threads 2 against Linux clients.
#   catpowder-xdp     AF_XDP sockets on queues 0 and 1 of a veth made with
#                     2 queues (native mode: in skb mode veth hands every
#                     frame to queue 0)
#   catpowder-packet  two AF_PACKET sockets in one PACKET_FANOUT hash group
#   catnap            two kernel sockets with SO_REUSEPORT, on loopback
# Checks, on one server run:
#   1. 500 TCP connections from Linux at once (demi-echo's catnap client,
#      every echoed byte checked): all served, by both instances;
#   2. 64 MiB echoed on each of 2 connections at once (every byte checked);
#   3. then a UDP server: 16 sockets' datagrams, served by both instances;
#   4. the other way round: two instances of mq_client open 8 connections
#      each to a Linux echo server (64 KiB round trips) and send datagrams
#      from ephemeral ports, so that replies must reach the instance that
#      owns their port whichever queue they land on; then 64 MiB each
#      way on one connection per instance;
#   5. demi-relay --threads 2 with 8 pairs between Linux UDP sockets
#      (mq_relay.py: every datagram's bytes and source checked): both
#      instances relay, and a pair whose two directions land on different
#      instances works because the peers are shared (with per-instance
#      peers such a pair would drop everything; all 8 pairs landing whole
#      on one instance each has probability 1/256);
#   5b. demi-kv --threads 2 (keyspace split between the instances): 2000
#      known values from 8 Linux connections and redis-benchmark -P 16's
#      keys read back, then tests/kv/kv_threads.py; each thread sent
#      commands to the other and ran the other's;
#   6. on the bypass modes, with 2% of frames dropped each way (nftables on
#      the Linux side): 16 connections from Linux echo 4 MiB twice each, and
#      the two instances open 4 connections each to a Linux echo server for
#      4 round trips of 1 MiB, every byte checked, and both sides of our
#      process retransmitted (the loss happened);
# and on the bypass modes that frames which reached the wrong instance's
# queue were handed to their owner (counted on both sides) and that every
# instance answered only the ARP it received itself.
# Exit 0 pass, 1 fail, 77 skip (not root, or no such socket family).
# Stops only what it started, by PID; removes its namespaces.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${DEMI_BUILD:-$src/build}
[[ $build == /* ]] || build=$src/$build
# shellcheck source=../../scripts/bypass.sh
. "$src/scripts/bypass.sh"

mode=${1:-}
case $mode in
catnap) id= ;;
catpowder-xdp) id=96 ;;
catpowder-packet) id=97 ;;
*)
  echo "usage: $0 catnap|catpowder-xdp|catpowder-packet" >&2
  exit 2
  ;;
esac
fail() {
  echo "FAIL: $*"
  exit 1
}
if [[ $mode != catnap ]]; then
  [[ $(id -u) -eq 0 ]] || { echo "skip: needs root (network namespaces, veth, raw sockets)"; exit 77; }
  bypass_require "$mode"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/demi-multiqueue.XXXXXX")
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do stop_pid "$p"; done # exec_a/exec_b: $! is the program itself
  [[ -n $id ]] && "$src/scripts/netns.sh" down "$id" >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
show() { tail -n 30 "$1" 2>/dev/null | sed 's/^/    | /'; }

if [[ $mode == catnap ]]; then
  ip_a=127.0.0.1 ip_b=127.0.0.1
  server_env=(LIBOS=catnap)
  exec_a() { exec "$@"; }
  exec_b() { exec "$@"; }
  on_a() { "$@"; }
  on_b() { "$@"; }
else
  bypass_topology up "$id" queues 2 || fail "scripts/netns.sh up $id queues 2 printed no topology"
  read -r -a server_env <<<"$(bypass_env "$mode" "$if_a" "$ip_a" "$tmp")"
  server_env+=(XDP_NATIVE=1)
  exec_a() { exec ip netns exec "$ns_a" "$@"; } # run with &: $! is then the program itself
  exec_b() { exec ip netns exec "$ns_b" "$@"; }
  on_a() { ip netns exec "$ns_a" "$@"; }
  on_b() { ip netns exec "$ns_b" "$@"; }
fi
port=7300

# serve [--udp]: demi-echo with 2 threads until stopped; its output in $tmp/server.*
serve() {
  : >"$tmp/server.out"
  exec_a env "${server_env[@]}" HUGEPAGES=off DEMI_LOG=info \
    "$build/demi-echo" server "$@" --threads 2 --addr "$ip_a:$port" >"$tmp/server.out" 2>"$tmp/server.err" &
  srv=$!
  pids=("$srv")
  wait_for "$tmp/server.out" ^ready 30 "$srv" && return 0
  show "$tmp/server.err"
  fail "demi-echo server $* --threads 2 did not print ready"
}
# unserve: SIGINT; the threads print their lines and the server exits 0.
unserve() {
  kill -INT "$srv"
  if ! wait_exit "$srv" 30; then
    cat "$tmp/server.out"; show "$tmp/server.err"
    fail "demi-echo server did not exit within 30 s of SIGINT"
  fi
  wait "$srv"
  local rc=$?
  pids=()
  [[ $rc -eq 0 ]] || { show "$tmp/server.err"; fail "demi-echo server exited $rc"; }
}
# stop_app PID SIGNAL NAME ERR: the signal, then exit status 0 within 30 s;
# shows the lines its threads printed on stderr (ERR).
stop_app() {
  kill -"$2" "$1"
  wait_exit "$1" 30 || fail "$3 did not exit within 30 s of SIG$2"
  wait "$1" || { show "$4"; fail "$3 exited $?"; }
  pids=()
  grep "^$3: thread" "$4"
}
client() { # ARGS: a catnap client on the Linux side
  on_b env LIBOS=catnap HUGEPAGES=off "$build/demi-echo" client --addr "$ip_a:$port" "$@" 2>"$tmp/client.err" ||
    { show "$tmp/client.err"; show "$tmp/server.err"; fail "demi-echo client $* failed"; }
}
# mq NAME WHAT UDP_PORT CONNS ROUNDS SIZE: mq_client's two instances
# against the Linux echo servers on $lport; each must report CONNS
# connections and CONNS x ROUNDS x SIZE bytes. Output in $tmp/NAME.out.
mq() {
  local name=$1 what=$2 uport=$3 conns=$4 rounds=$5 size=$6 t
  on_a env "${server_env[@]}" HUGEPAGES=off DEMI_LOG=info QUEUES=2 \
    "$build/tests/interop/mq_client" "$ip_b" "$lport" "$uport" 2 "$conns" "$rounds" "$size" \
    >"$tmp/$name.out" 2>"$tmp/$name.err" ||
    { cat "$tmp/$name.out"; show "$tmp/$name.err"; fail "mq_client ($what) failed"; }
  cat "$tmp/$name.out"
  for t in 0 1; do
    grep -q "^thread $t .*conns=$conns bytes=$((conns * rounds * size)) " "$tmp/$name.out" ||
      fail "mq_client ($what): thread $t did not finish every round trip"
  done
}
# field NAME THREAD: a number from the server's "thread" line
field() { sed -n "s/^thread $2 .*\\b$1=\\([0-9]*\\).*/\\1/p" "$tmp/server.out"; }
# each_thread NAME WHAT: both threads' NAME above 0
each_thread() {
  local t v
  for t in 0 1; do
    v=$(field "$1" "$t")
    [[ -n $v && $v -gt 0 ]] || { cat "$tmp/server.out"; fail "$2: thread $t has $1=${v:-none}"; }
  done
}
# handed WHAT: on bypass modes, frames went both ways between the instances
handed() {
  [[ $mode == catnap ]] && return 0
  local out=0 in=0 t
  for t in 0 1; do
    out=$((out + $(field frames_handed_out "$t")))
    in=$((in + $(field frames_handed_in "$t")))
  done
  [[ $in -gt 0 ]] || { cat "$tmp/server.out"; fail "$1: no frame was handed between the instances"; }
  [[ $in -le $out ]] || fail "$1: $in frames handed in but only $out out"
  echo "$1: $out frames handed over, $in taken in (the rest dropped: ring full)"
}

serve
client --clients 500 --iters 20000 --size 200 --warmup 0 >"$tmp/c1.json"
echo "500 connections: $(cat "$tmp/c1.json")"
client --clients 2 --iters 2 --size 67108864 --warmup 0 >"$tmp/c2.json"
echo "64 MiB twice at once: $(cat "$tmp/c2.json")"
unserve
cat "$tmp/server.out"
a0=$(field accepted 0) a1=$(field accepted 1)
[[ $((a0 + a1)) -eq 502 ]] || fail "the threads accepted $a0 + $a1 connections, not 502"
each_thread accepted "TCP"
each_thread echoed "TCP"
handed "TCP"
if [[ $mode != catnap ]]; then
  # Each instance sees every ARP frame (one from its queue or the other's
  # copy), and only the one that received it answers: the replies are at
  # most half the ARP frames seen (answering the copies too would make them
  # all of the requests).
  sum() { grep -o "$1=[0-9]*" "$tmp/server.err" | cut -d= -f2 | { local n=0 v; while read -r v; do n=$((n + v)); done; echo $n; }; }
  replies=$(sum arp_reply_sent) arps=$(sum arp_rx)
  [[ $replies -ge 1 && $((2 * replies)) -le $arps ]] ||
    { grep counters "$tmp/server.err"; fail "ARP: $replies replies for $arps ARP frames seen by the instances"; }
  echo "ARP: $replies replies, $arps frames seen by the two instances"
fi

serve --udp
client --udp --clients 16 --iters 20000 --size 500 --warmup 0 >"$tmp/c3.json"
echo "UDP, 16 sockets: $(cat "$tmp/c3.json")"
unserve
cat "$tmp/server.out"
each_thread echoed "UDP"
handed "UDP"

# 4: Linux serves (TCP and UDP on one port), our two instances connect.
lport=7301
exec_b env LIBOS=catnap HUGEPAGES=off "$build/demi-echo" server --addr "$ip_b:$lport" >"$tmp/lt.out" 2>&1 &
pids+=($!)
wait_for "$tmp/lt.out" ^ready 30 $! || fail "the Linux TCP echo server did not start"
exec_b env LIBOS=catnap HUGEPAGES=off "$build/demi-echo" server --udp --addr "$ip_b:$lport" >"$tmp/lu.out" 2>&1 &
pids+=($!)
wait_for "$tmp/lu.out" ^ready 30 $! || fail "the Linux UDP echo server did not start"
mq mq "two instances connecting out" "$lport" 8 20 65536
grep -c "datagrams=160 " "$tmp/mq.out" | grep -qx 2 || fail "mq_client: a thread did not get its 160 datagrams back"
if [[ $mode != catnap ]]; then
  hin=$(sed -n 's/.*frames_handed_in=\([0-9]*\).*/\1/p' "$tmp/mq.out" | paste -sd' ')
  [[ $hin != "0 0" ]] || fail "outgoing: no reply was handed between the instances (ports steered by chance?)"
  echo "outgoing: frames handed in per instance: $hin"
fi
# 64 MiB each way on one connection per instance (16 MiB under ASan).
mib=64
[[ ${DEMI_SANITIZED:-0} == 1 ]] && mib=16
mq mqbig "$mib MiB per instance" 0 1 1 $((mib << 20))
echo "outgoing: $mib MiB sent and echoed back on one connection per instance, every byte checked"
for p in "${pids[@]}"; do stop_pid "$p"; done
pids=()

# 5: demi-relay --threads 2 between Linux UDP peers.
pairs=() ports=()
for i in $(seq 0 7); do
  pairs+=(--pair "$ip_a:$((7310 + 2 * i))=$ip_a:$((7311 + 2 * i))")
  ports+=("$((7310 + 2 * i))=$((7311 + 2 * i))")
done
exec_a env "${server_env[@]}" HUGEPAGES=off DEMI_LOG=info \
  "$build/demi-relay" --threads 2 "${pairs[@]}" >"$tmp/relay.out" 2>"$tmp/relay.err" &
relay=$!
pids=("$relay")
wait_for "$tmp/relay.out" ^ready 30 "$relay" || { show "$tmp/relay.err"; fail "demi-relay --threads 2 did not print ready"; }
on_b python3 -B "$here/mq_relay.py" "$ip_a" "$ip_b" "$(IFS=,; echo "${ports[*]}")" 200 >"$tmp/mr.out" 2>"$tmp/mr.err" ||
  { cat "$tmp/mr.out" "$tmp/mr.err"; show "$tmp/relay.err"; fail "relaying through two instances failed"; }
cat "$tmp/mr.out"
stop_app "$relay" INT demi-relay "$tmp/relay.err"
for t in 0 1; do
  v=$(sed -n "s/^demi-relay: thread $t .*received=\([0-9]*\).*/\1/p" "$tmp/relay.err")
  [[ -n $v && $v -gt 0 ]] || fail "relay: thread $t received ${v:-nothing}"
done

# 5b: demi-kv --threads 2 (the keyspace split between the instances) and
# Linux clients: known values over 8 connections and redis-benchmark's keys
# read back, then kv_threads.py; each thread must have sent commands to
# the other and run the other's.
kvport=7320
exec_a env "${server_env[@]}" HUGEPAGES=off "$build/demi-kv" --threads 2 --addr "$ip_a:$kvport" \
  >"$tmp/kv.out" 2>"$tmp/kv.err" &
kvpid=$!
pids=("$kvpid")
wait_for "$tmp/kv.out" ^ready 30 "$kvpid" || { show "$tmp/kv.err"; fail "demi-kv --threads 2 did not print ready"; }
kvcheck() { # WHAT COMMAND...: a client on the Linux side, or fail
  local what=$1
  shift
  on_b "$@" >"$tmp/kvc.out" 2>&1 || { show "$tmp/kvc.out"; show "$tmp/kv.err"; fail "demi-kv --threads 2: $what"; }
  grep -v '^"' "$tmp/kvc.out"
}
kvcheck "known values" python3 -B "$src/tests/kv/kv_known.py" fill "$ip_a" "$kvport" --keys 2000 --conns 8
kvcheck redis-benchmark timeout 300 redis-benchmark -h "$ip_a" -p "$kvport" -t set,get -n 50000 -c 50 -P 16 \
  -r 1000 -d 100 --csv
echo "demi-kv --threads 2: redis-benchmark -P 16: $(tr '\n' ' ' <"$tmp/kvc.out")"
kvcheck "values read back" python3 -B "$src/tests/kv/kv_known.py" check "$ip_a" "$kvport" --keys 2000 \
  --bench-keys 1000 --bench-size 100
kvcheck kv_threads.py python3 -B "$src/tests/kv/kv_threads.py" "$ip_a" "$kvport" --threads 2
stop_app "$kvpid" TERM demi-kv "$tmp/kv.err"
for t in 0 1; do
  v=$(sed -n "s/^demi-kv: thread $t: .* \([0-9]*\) sent to other threads, \([0-9]*\) run for them.*/\1 \2/p" "$tmp/kv.err")
  read -r sent ran <<<"$v"
  [[ ${sent:-0} -gt 0 && ${ran:-0} -gt 0 ]] || fail "demi-kv: thread $t sent ${sent:-?} and ran ${ran:-?} for the other"
done

# 6: loss.
[[ $mode == catnap ]] && { echo "ok"; exit 0; }
retrans() { grep -o 'tcp_retrans_segs=[0-9]*' "$1" | cut -d= -f2 | { n=0; while read -r v; do n=$((n + v)); done; echo $n; }; }
big=$((4 << 20)) # 16 connections: all owned by one instance has probability 2^-15
[[ ${DEMI_SANITIZED:-0} == 1 ]] && big=$((1 << 20))
"$src/scripts/netns.sh" loss "$id" 2 || fail "scripts/netns.sh loss $id 2 failed"
serve
client --clients 16 --iters 2 --size "$big" --warmup 0 >"$tmp/c6.json"
echo "2% loss, 16 x 2 x $big bytes from Linux: $(cat "$tmp/c6.json")"
unserve
cat "$tmp/server.out"
each_thread echoed "TCP under 2% loss"
r=$(retrans "$tmp/server.err")
[[ $r -gt 0 ]] || fail "2% loss, yet the server's instances retransmitted nothing: was the loss applied?"
exec_b env LIBOS=catnap HUGEPAGES=off "$build/demi-echo" server --addr "$ip_b:$lport" >"$tmp/lt.out" 2>&1 &
pids+=($!)
wait_for "$tmp/lt.out" ^ready 30 $! || fail "the Linux TCP echo server did not start"
mq mq6 "under 2% loss" 0 4 4 1048576
"$src/scripts/netns.sh" loss "$id" 0
echo "2% loss: retransmitted segments: $r by the server's instances, $(retrans "$tmp/mq6.err") by mq_client's"
echo "ok"
