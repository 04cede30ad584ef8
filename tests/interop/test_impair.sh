#!/usr/bin/env bash
# Interop test of tools/impair: two Linux hosts talk through it, in the impair
# topology of scripts/netns.sh (namespaces dm201a, dm201m, dm201b). First with
# no faults: ping both ways, a 16 MiB TCP transfer checked by SHA-256 on both
# ends, no checksum errors at either host. Then with loss, duplication,
# reordering and delay: 16 MiB each way still arrive byte-exact (TCP repairs
# them) and impair's counters show it did lose, duplicate and reorder frames
# in both directions. Needs root (exit 77 otherwise); touches nothing but the
# three namespaces it creates and removes.
set -euo pipefail

id=201
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${DEMI_BUILD:?DEMI_BUILD names the build directory}
impair=$build/tools/impair
xfer=$here/tcp_xfer.py
size=$((16 << 20))

if [[ $(id -u) -ne 0 ]]; then
  echo "skip: needs root (network namespaces, veth, AF_PACKET)"
  exit 77
fi
[[ -x $impair ]] || { echo "FAIL: $impair not built"; exit 1; }
for t in ip ethtool nstat ping python3; do
  command -v $t >/dev/null || { echo "FAIL: '$t' not found (scripts/deps.sh installs it)"; exit 1; }
done

ns_a=dm${id}a ns_m=dm${id}m ns_b=dm${id}b if_a=dm${id}a
ip_a=10.200.$id.1 ip_b=10.200.$id.2
tmp=$(mktemp -d)
impair_pid='' recv_pid=''

cleanup() {
  if [[ -n $impair_pid ]]; then kill -TERM "$impair_pid" 2>/dev/null || true; wait "$impair_pid" 2>/dev/null || true; fi
  if [[ -n $recv_pid ]]; then kill "$recv_pid" 2>/dev/null || true; wait "$recv_pid" 2>/dev/null || true; fi
  "$src/scripts/netns.sh" down "$id" || true
  rm -rf "$tmp"
}
trap cleanup EXIT

fail() { echo "FAIL: $*"; exit 1; }

# start_impair NAME ARGS...: runs impair in the middle and waits until its sockets are bound.
start_impair() {
  local name=$1
  shift
  ip netns exec "$ns_m" "$impair" --a "dm${id}ma" --b "dm${id}mb" "$@" >"$tmp/$name.json" 2>"$tmp/$name.err" &
  impair_pid=$!
  for _ in $(seq 50); do
    grep -q '^impair: .* seed ' "$tmp/$name.err" && return 0
    kill -0 "$impair_pid" 2>/dev/null || break
    sleep 0.1
  done
  cat "$tmp/$name.err"
  fail "impair $* did not start"
}

# stop_impair NAME: SIGTERM by PID; impair must exit 0 after printing its final counters.
stop_impair() {
  local name=$1 rc=0
  kill -TERM "$impair_pid"
  wait "$impair_pid" || rc=$?
  impair_pid=
  cat "$tmp/$name.err"
  grep '"event":"final"' "$tmp/$name.json" || fail "impair printed no final counters"
  [[ $rc -eq 0 ]] || fail "impair exited $rc on SIGTERM"
}

# counter NAME DIRECTION KEY: one number from impair's final JSON line.
counter() {
  python3 -c 'import json, sys
line = [l for l in open(sys.argv[1]) if "\"final\"" in l][-1]
print(json.loads(line)[sys.argv[2]][sys.argv[3]])' "$tmp/$1.json" "$2" "$3"
}

# transfer FROM_NS TO_NS TO_IP PORT SEED: 16 MiB over TCP; both ends' SHA-256 must match.
transfer() {
  local from=$1 to=$2 to_ip=$3 port=$4 seed=$5
  ip netns exec "$to" python3 "$xfer" recv "$to_ip" "$port" >"$tmp/recv.out" &
  recv_pid=$!
  ip netns exec "$from" python3 "$xfer" send "$to_ip" "$port" "$size" "$seed" >"$tmp/send.out" ||
    fail "transfer $from -> $to: sender failed"
  wait "$recv_pid" || fail "transfer $from -> $to: receiver failed"
  recv_pid=
  read -r _ s_bytes s_sum s_secs <"$tmp/send.out"
  read -r _ r_bytes r_sum r_secs <"$tmp/recv.out"
  echo "transfer $from -> $to: sent $s_bytes B in ${s_secs}s, received $r_bytes B in ${r_secs}s, sha256 $r_sum"
  [[ $r_bytes -eq $size && $s_sum == "$r_sum" ]] || fail "transfer $from -> $to: $r_bytes B, $r_sum != $s_sum"
}

# no_csum_errors: neither host saw a frame with a bad IP, TCP, UDP or ICMP checksum.
no_csum_errors() {
  local ns line
  for ns in "$ns_a" "$ns_b"; do
    # -a: absolute counters (fresh namespaces start at 0); -s: leave nstat's shared history file alone.
    line=$(ip netns exec "$ns" nstat -asz IpExtInCsumErrors TcpInCsumErrors UdpInCsumErrors IcmpInCsumErrors |
      awk 'NR > 1 {printf "%s=%s ", $1, $2; bad += $2} END {print (bad ? "BAD" : "ok")}')
    echo "$ns: $line"
    [[ $line == *ok ]] || fail "checksum errors in $ns"
  done
}

"$src/scripts/netns.sh" up "$id" impair >/dev/null
# Only this test gives the bypass side a kernel address: both ends are Linux here.
ip -n "$ns_a" addr add "$ip_a/24" dev "$if_a"

echo "== no faults"
start_impair clean
ip netns exec "$ns_a" ping -c 3 -i 0.2 -W 2 "$ip_b" | tail -2
ip netns exec "$ns_b" ping -c 3 -i 0.2 -W 2 "$ip_a" | tail -2
transfer "$ns_a" "$ns_b" "$ip_b" 5201 1
stop_impair clean
no_csum_errors
for dir in a_to_b b_to_a; do
  for key in lost duplicated reordered delayed tx_errors oversize malformed overflow; do
    [[ $(counter clean $dir $key) -eq 0 ]] || fail "no faults asked, yet $dir $key = $(counter clean $dir $key)"
  done
  [[ $(counter clean $dir forwarded) -gt 0 ]] || fail "$dir forwarded nothing"
done

echo "== --loss 2 --dup 2 --reorder 5 --delay 200"
start_impair faulty --seed 1 --loss 2 --dup 2 --reorder 5 --delay 200
ip netns exec "$ns_a" ping -c 5 -i 0.05 -W 2 "$ip_b" | tail -2 || true # a lost echo is expected now
transfer "$ns_a" "$ns_b" "$ip_b" 5202 2
transfer "$ns_b" "$ns_a" "$ip_a" 5203 3
stop_impair faulty
no_csum_errors
for dir in a_to_b b_to_a; do
  for key in lost duplicated reordered delayed; do
    [[ $(counter faulty $dir $key) -gt 0 ]] || fail "$dir $key = 0 under faults"
  done
  for key in tx_errors oversize malformed overflow; do
    [[ $(counter faulty $dir $key) -eq 0 ]] || fail "$dir $key = $(counter faulty $dir $key)"
  done
done
for ns in "$ns_a" "$ns_b"; do
  echo "$ns: $(ip netns exec "$ns" nstat -asz TcpRetransSegs TcpExtTCPOFOQueue TcpExtTCPDSACKRecv |
    awk 'NR > 1 {printf "%s=%s ", $1, $2}')"
done
echo "PASS"
