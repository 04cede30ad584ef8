#!/usr/bin/env bash
# demi-kv on libdemi's own TCP/IP stack, served to the real Redis tools on
# a Linux host: demi-kv runs in the bypass namespace of a scripts/netns.sh
# topology (veth, no kernel address on its side), redis-cli,
# redis-benchmark and a Python client in the Linux namespace.
#
#   tests/kv/test_kv_bypass.sh MODE [SERVER]
#     MODE    catpowder-xdp | catpowder-packet | catnip-afxdp | catnip-afpacket
#             (scripts/bypass.sh: how our side runs)
#     SERVER  demi-kv (the default), or redis: Debian's unmodified
#             redis-server under LD_PRELOAD=libdemi-posix.so (issue 13),
#             checked the same way, plus a BGSAVE (a fork: the child
#             writes the snapshot with its kernel descriptors, the parent's
#             stack keeps serving) whose snapshot must hold every key.
#
#   1. redis-cli round trips, every result checked: SET/GET/INCR/INCRBY/
#      DECR/DEL/EXISTS/MSET/MGET, EXPIRE/TTL/PERSIST and a key that expires,
#      a 300 KB value set with -x and read back equal.
#   2. 50 redis-benchmark clients pipelining 16 commands each (-t set,get
#      -n 100000 -r 1000 -c 50 -P 16) while tests/kv/kv_known.py sets 2000
#      keys with known binary values over 4 more connections, then 50
#      clients without pipelining (-n 20000).
#   3. Nothing lost: DBSIZE is exactly 3000, every known value reads back
#      byte-exact, every redis-benchmark key exists with its 3 bytes, the
#      server counted exactly as many GET hits as were sent and no miss,
#      every connection is gone on both sides (Linux holds none but in
#      TIME-WAIT), and demi-kv exits 0 on SIGINT with no checksum error
#      counted by either stack.
# Prints the benchmark figures and both stacks' retransmissions.
#
# Exit 0 pass, 1 fail, 77 skip: only when not root, or when the kernel
# lacks MODE's socket family (AF_XDP, AF_PACKET). Creates and removes the
# namespaces of one topology ID per mode (50..53); stops only the processes
# it started, by PID, on failure too.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${DEMI_BUILD:-$src/build}
[[ $build == /* ]] || build=$src/$build
kv=$build/demi-kv
netns=$src/scripts/netns.sh
known=$here/kv_known.py
# shellcheck source=../../scripts/bypass.sh
. "$src/scripts/bypass.sh"

mode=${1:-}
server=${2:-demi-kv}
case $mode in
catpowder-xdp) id=50 ;;
catpowder-packet) id=51 ;;
catnip-afxdp) id=52 ;;
catnip-afpacket) id=53 ;;
*)
  echo "usage: $0 catpowder-xdp|catpowder-packet|catnip-afxdp|catnip-afpacket [demi-kv|redis]" >&2
  exit 2
  ;;
esac
case $server in
demi-kv) ;;
redis) id=$((id + 20)) ;; # topologies 70..73
*)
  echo "usage: $0 MODE [demi-kv|redis]" >&2
  exit 2
  ;;
esac

fail() {
  echo "FAIL: $*"
  exit 1
}
skip() {
  echo "skip: $*"
  exit 77
}

[[ $(id -u) -eq 0 ]] || skip "needs root (network namespaces, veth, raw sockets)"
for t in ip ethtool ss nstat python3 timeout redis-cli redis-benchmark; do
  command -v $t >/dev/null || fail "'$t' not found (scripts/deps.sh installs it)"
done
if [[ $server == redis ]]; then
  command -v redis-server >/dev/null || fail "'redis-server' not found (scripts/deps.sh installs it)"
  [[ -f $build/libdemi-posix.so ]] || fail "$build/libdemi-posix.so is not built (DEMI_BUILD=$build)"
else
  [[ -x $kv ]] || fail "$kv is not built (DEMI_BUILD=$build)"
fi
bypass_require "$mode"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/demi-kv-bypass.XXXXXX")
pids=() # what this script started in the background, by PID

cleanup() {
  local p
  for p in "${pids[@]}"; do stop_pid "$p"; done
  "$netns" down "$id" || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

show() { tail -n 20 "$1" 2>/dev/null | sed 's/^/    | /'; }

bypass_topology up "$id" || fail "scripts/netns.sh up $id printed no topology"
port=6379
read -r -a ours <<<"$(bypass_env "$mode" "$if_a" "$ip_a" "$tmp")"
echo "mode $mode: $server on $ip_a:$port in $ns_a (${ours[*]}), clients in $ns_b"

if [[ $server == redis ]]; then
  read -r -a preload <<<"$(preload_env "$build")"
  ip netns exec "$ns_a" env "${ours[@]}" "${preload[@]}" DEMI_LOG=info redis-server \
    --bind "$ip_a" --port "$port" --protected-mode no --save "" --appendonly no --dir "$tmp" \
    --dbfilename dump.rdb --logfile "" >"$tmp/kv.out" 2>"$tmp/kv.err" &
  ready_line="Ready to accept connections"
else
  ip netns exec "$ns_a" env "${ours[@]}" DEMI_LOG=info "$kv" --addr "$ip_a:$port" >"$tmp/kv.out" 2>"$tmp/kv.err" &
  ready_line="ready $ip_a:$port"
fi
kv_pid=$!
pids+=("$kv_pid")
for _ in $(seq 150); do
  grep -q "$ready_line" "$tmp/kv.out" 2>/dev/null && break
  kill -0 "$kv_pid" 2>/dev/null || break
  sleep 0.1
done
grep -q "$ready_line" "$tmp/kv.out" || {
  show "$tmp/kv.out"
  show "$tmp/kv.err"
  fail "$server did not print '$ready_line' within 15 s"
}

. "$here/../lib.sh"
fails=0
bad() {
  echo "FAIL: $*"
  fails=$((fails + 1))
}
linux() { ip netns exec "$ns_b" "$@"; }
cli() { linux timeout 20 redis-cli -h "$ip_a" -p "$port" "$@" 2>&1; }
expect() { # WANT ARGS...: redis-cli ARGS prints WANT
  local want=$1 got
  shift
  got=$(cli "$@") || true
  [[ $got == "$want" ]] || bad "redis-cli $*: got [$got], want [$want]"
}
stat() { cli INFO "$1" | tr -d '\r' | sed -n "s/^$2://p"; }

# ---- 1. round trips ------------------------------------------------------
t0=$(date +%s%N)
expect PONG PING
expect OK SET greeting "hello world"
expect "hello world" GET greeting
expect "" GET missing
expect 1 INCR counter
expect 2 INCR counter
expect 12 INCRBY counter 10
expect 11 DECR counter
expect 11 GET counter
expect "ERR value is not an integer or out of range" INCR greeting
expect 2 DEL greeting counter
expect 0 EXISTS greeting counter
expect OK MSET a 1 b 2 c 3
expect $'1\n\n3' MGET a missing c
t1=$(now_ms)
expect 1 EXPIRE a 100
ttl_check "TTL a after EXPIRE a 100" "$(cli TTL a)" 100 "$t1"
expect 1 PERSIST a
expect -1 TTL a
expect OK SET soon v
t1=$(now_ms)
expect 1 PEXPIRE soon 600
got=$(cli GET soon) || true
# Still there only if the GET ended within the 600 ms measured from before
# the PEXPIRE; on a machine that slow, only the expiry is checked.
(($(now_ms) - t1 < 600)) && [[ $got != v ]] && bad "GET soon within 600 ms of PEXPIRE 600: [$got]"
sleep 0.8
expect "" GET soon
expect 0 EXISTS soon
# A value of 300 KB: many segments each way, our windows filled.
python3 -c 'import base64, os; print(base64.b64encode(os.urandom(225000)).decode(), end="")' >"$tmp/big"
expect OK -x SET big <"$tmp/big"
cli GET big | head -c -1 >"$tmp/big.back" # redis-cli adds a newline
cmp -s "$tmp/big" "$tmp/big.back" || bad "GET big: $(wc -c <"$tmp/big.back") bytes back, not the $(wc -c <"$tmp/big") set"
expect 300000 STRLEN big
expect 4 DBSIZE
expect OK FLUSHALL
expect 0 DBSIZE
((fails == 0)) || fail "$fails redis-cli round trip(s) wrong"
echo "round trips: 29 redis-cli commands and a 300 KB value right, $((($(date +%s%N) - t0) / 1000000)) ms"

# ---- 2. concurrent load --------------------------------------------------
keys=1000 known_keys=2000 n_p=100000 n_c=20000
expect OK CONFIG RESETSTAT
retrans0=$(linux nstat -asz TcpRetransSegs | awk '$1 == "TcpRetransSegs" {print $2}')

bench() { # LABEL N ARGS...: redis-benchmark from the Linux side, SET then GET
  local label=$1 n=$2 rc=0
  shift 2
  linux timeout -k 5 60 redis-benchmark -h "$ip_a" -p "$port" -t set,get -n "$n" -r "$keys" "$@" --csv \
    >"$tmp/$label.csv" 2>"$tmp/$label.err" || rc=$?
  ((rc == 0)) || {
    show "$tmp/$label.err"
    show "$tmp/kv.err"
    fail "redis-benchmark $label ($*) exited $rc"
  }
  local t
  for t in SET GET; do
    grep -q "^\"$t\",\"[0-9.]*[1-9][0-9.]*\"" "$tmp/$label.csv" || {
      cat "$tmp/$label.csv"
      fail "redis-benchmark $label: no $t result"
    }
  done
  awk -F'"' -v l="$label" 'NR > 1 {printf "%s %s: %.0f ops/s, p50 %s ms, p99 %s ms\n", l, $2, $4, $10, $14}' "$tmp/$label.csv"
}

linux timeout -k 5 60 python3 "$known" fill "$ip_a" "$port" --keys $known_keys --conns 4 >"$tmp/fill.out" 2>&1 &
fill_pid=$!
pids+=("$fill_pid")
bench "-c 50 -P 16" $n_p -c 50 -P 16
rc=0
wait "$fill_pid" || rc=$?
pids=("$kv_pid")
((rc == 0)) || fail "$(cat "$tmp/fill.out")"
cat "$tmp/fill.out"
bench "-c 50" $n_c -c 50

# ---- 3. nothing lost -----------------------------------------------------
expect $((known_keys + keys)) DBSIZE
if [[ $server == redis ]]; then
  # A fork under the preload: the child writes the snapshot through the
  # kernel while the parent's stack keeps serving; the snapshot must hold
  # every key (DEBUG RELOAD is not used: it would not fork).
  expect "Background saving started" BGSAVE
  for _ in $(seq 600); do
    [[ $(stat persistence rdb_bgsave_in_progress) == 0 ]] && break
    sleep 0.1
  done
  [[ $(stat persistence rdb_last_bgsave_status) == ok ]] ||
    bad "BGSAVE under the preload: status $(stat persistence rdb_last_bgsave_status)"
  expect PONG PING
  [[ -s $tmp/dump.rdb ]] || bad "BGSAVE wrote no $tmp/dump.rdb"
  echo "BGSAVE (fork): $(stat persistence rdb_last_bgsave_status), snapshot $(wc -c <"$tmp/dump.rdb") bytes"
fi
out=$(linux timeout 60 python3 "$known" check "$ip_a" "$port" --keys $known_keys --bench-keys $keys --bench-size 3) ||
  fail "$out"
echo "$out"
hits=$(stat stats keyspace_hits) misses=$(stat stats keyspace_misses)
want=$((n_p + n_c + known_keys + keys))
[[ $hits == "$want" && $misses == 0 ]] ||
  bad "keyspace_hits $hits, misses $misses; want $want hits (every GET sent) and no miss"
clients=
for _ in $(seq 30); do
  clients=$(stat clients connected_clients)
  [[ $clients == 1 ]] && break
  sleep 0.1
done
[[ $clients == 1 ]] || bad "$server still counts $clients connected clients (want 1: this INFO's)"
left=
for _ in $(seq 30); do
  left=$(linux ss -Htan "( dst $ip_a )" | grep -v TIME-WAIT || true)
  [[ -z $left ]] && break
  sleep 0.1
done
[[ -z $left ]] || bad "Linux still holds connections with $server: $(head -n 3 <<<"$left" | tr -s ' ')"
retrans1=$(linux nstat -asz TcpRetransSegs | awk '$1 == "TcpRetransSegs" {print $2}')

kill -INT "$kv_pid"
rc=0
for _ in $(seq 100); do
  kill -0 "$kv_pid" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$kv_pid" 2>/dev/null && fail "$server did not exit within 10 s of SIGINT"
wait "$kv_pid" || rc=$?
pids=()
((rc == 0)) || {
  show "$tmp/kv.err"
  fail "$server exited $rc on SIGINT"
}
counter() { # KEY: a counter our stack logged as it exited (0 if never counted)
  local v
  if [[ $1 == kernel_rx_dropped ]]; then
    v=$(grep -E '(xdp|packet|dpdk): kernel:' "$tmp/kv.err" | grep -o 'rx_dropped=[0-9]*' | cut -d= -f2 || true)
  else
    v=$(grep 'counters:' "$tmp/kv.err" | grep -oE "(^| )$1=[0-9]+" | cut -d= -f2 || true)
  fi
  echo "${v:-0}"
}
grep -q 'counters:' "$tmp/kv.err" || {
  show "$tmp/kv.err"
  fail "$server logged no stack counters as it exited (DEMI_LOG=info)"
}
for k in ip_rx_bad_csum tcp_rx_bad_csum; do
  [[ $(counter $k) -eq 0 ]] || bad "our stack counted $k=$(counter $k)"
done
for k in IpExtInCsumErrors TcpInCsumErrors; do
  v=$(linux nstat -asz $k | awk -v k=$k '$1 == k {print $2}')
  [[ ${v:-0} -eq 0 ]] || bad "Linux counted $k=$v"
done
echo "connections: $(counter tcp_conns_accepted) accepted, $(counter tcp_conns_freed) freed; retransmitted" \
  "segments: ours $(counter tcp_retrans_segs), Linux $((retrans1 - retrans0)); frames dropped before our ring:" \
  "$(counter kernel_rx_dropped)"
((fails == 0)) || fail "$fails check(s) failed"
echo PASS
