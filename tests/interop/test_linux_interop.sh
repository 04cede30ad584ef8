#!/usr/bin/env bash
# Interop with Linux: libdemi's TCP/IP stack ("ours", in namespace dm<ID>a)
# against the Linux kernel's (dm<ID>b), over veth (scripts/netns.sh). MODE
# says how our side runs; the checks are the same for every mode.
#
#   tests/interop/test_linux_interop.sh MODE [CHECK ...]
#     MODE    catpowder-xdp | catpowder-packet | catnip-afxdp | catnip-afpacket
#             (catnip: DPDK's net_af_xdp or net_af_packet vdev on the interface)
#     CHECK   tcp udp icmp conns libos (default: all of them, in this order)
#
# Each check prints one line of figures per case, and the test stops at the
# first failure:
#   tcp    64 MiB echoed byte-exact both ways, our server with a Linux client
#          (peer.py: sha256) and a Linux server with our client (demi_peer:
#          every byte compared), with no faults, with 2% loss each way
#          (nftables) and through tools/impair (loss, duplication,
#          reordering, delay); time, throughput, retransmissions on both
#          sides, frames the kernel dropped before our rings. Without
#          faults, both ends must also close cleanly (no Linux socket left
#          open). Under faults, the faults must be seen to happen.
#   udp    datagrams of 64 B to 65507 B echoed byte-exact both ways, none
#          lost on the clean link; those over the MTU go in fragments both
#          ways, and both stacks' fragment counters must say so exactly.
#   icmp   ping from Linux (56, 3000 and 65507 bytes: fragmented) gets every
#          reply, whole; Linux resolves our address by ARP (its neighbour
#          entry holds our MAC, our stack counts the ARP replies).
#   conns  500 concurrent connections from Linux to our server, each 64 KiB
#          echoed byte-exact.
#   libos  the libOS suite (every libos/ test in tests/suite.txt): our
#          server with a catnap client in the Linux namespace, then our
#          client with a catnap server; single-process tests run once, in
#          our namespace.
# Afterwards no checksum error on either side.
#
# Exit 0 pass, 77 skip (not root, or the kernel lacks what MODE needs), 1
# fail. Creates and removes the namespaces of two topology IDs (one plain,
# one with the impair bridge); stops only the processes it started.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${DEMI_BUILD:-$src/build}
peer_py=$here/peer.py
demi_peer=$build/tests/interop/demi_peer
impair=$build/tools/impair
netns=$src/scripts/netns.sh
suite=$src/tests/suite.txt
# shellcheck source=../../scripts/bypass.sh
. "$src/scripts/bypass.sh"

mode=${1:-}
shift || true
checks=("$@")
[[ ${#checks[@]} -gt 0 ]] || checks=(tcp udp icmp conns libos)

tcp_bytes=$((64 << 20))
# The sanitizer pass looks for memory errors, not throughput: the same
# cases (clean, 2% loss, impaired) with a quarter of the bytes still cross
# every path (retransmission, reordering, window updates), in a quarter of
# the time the instrumented build takes for 64 MiB.
[[ ${DEMI_SANITIZED:-0} == 1 ]] && tcp_bytes=$((16 << 20))
udp_sizes=(64 1472 1473 8000 65507)
udp_max=      # cap on the libOS suite's datagrams (DEMI_TEST_UDP_MAX); none
our_reasm=1 # our stack reassembles the fragments it receives (not so behind net_af_packet)
ping_sizes=(56 3000 65507)
udp_count=200
conns=500
conn_bytes=$((64 << 10))
impair_args=(--seed 7 --loss 1 --dup 1 --reorder 2 --delay 100)
mtu=1500

fail() {
  echo "FAIL: $*"
  exit 1
}
skip() {
  echo "skip: $*"
  exit 77
}

# ---- modes: how our side runs ------------------------------------------
# A mode names its two topology IDs (distinct per mode, so that modes never
# share namespaces), the socket family it needs, and our process's
# environment on a topology (scripts/bypass.sh). Adding a mode is a case
# below and one in scripts/bypass.sh.

# mode_setup: sets ids and needs for $mode, or fails for an unknown mode.
mode_setup() {
  case $mode in
  catpowder-xdp) ids=(41 42) needs=xdp ;;
  catpowder-packet) ids=(43 44) needs=packet ;;
  catnip-afxdp) ids=(45 46) needs=xdp ;;
  catnip-afpacket)
    ids=(47 48) needs=packet
    # net_af_packet's socket fanout reassembles IP fragments into one ring
    # frame of about 1982 bytes: larger datagrams cannot pass this PMD (the
    # device says so).
    # Fragments that reassemble below that still do, whole: our stack's own
    # reassembly never sees them (our_reasm=0).
    udp_sizes=(64 1472 1473 1900)
    ping_sizes=(56 1800)
    our_reasm=0
    udp_max=1900 # for the libOS suite's UDP ping-pong
    ;;
  *)
    echo "usage: $0 catpowder-xdp|catpowder-packet|catnip-afxdp|catnip-afpacket [tcp udp icmp conns libos]" >&2
    exit 2
    ;;
  esac
}

# our_env: KEY=VALUE words for a libdemi process on the bypass side of the
# current topology ($if_a, $ip_a): scripts/bypass.sh, shared with the kv
# tests and benchmarks.
our_env() {
  bypass_env "$mode" "$if_a" "$ip_a" "$tmp"
}

# need_socket FAMILY NAME: skip unless the kernel can make a raw socket of
# FAMILY (EAFNOSUPPORT: the feature is not built in).
need_socket() {
  local out
  if ! out=$(python3 -c "import socket; socket.socket($1, socket.SOCK_RAW, 0).close()" 2>&1); then
    if [[ $out == *"Address family not supported"* ]]; then
      skip "this kernel has no $2 sockets ($out)"
    fi
    fail "cannot open a $2 socket: $out"
  fi
}

mode_setup
if [[ $(id -u) -ne 0 ]]; then
  skip "needs root (network namespaces, veth, nftables, raw sockets)"
fi
for t in ip ethtool nft nstat ss ping python3 timeout; do
  command -v $t >/dev/null || fail "'$t' not found (scripts/deps.sh installs it)"
done
for f in "$demi_peer" "$impair"; do
  [[ -x $f ]] || fail "$f is not built (DEMI_BUILD=$build)"
done
case $needs in
xdp) need_socket 44 AF_XDP ;;
packet) need_socket 17 AF_PACKET ;;
esac

# ---- processes and topologies -------------------------------------------

tmp=$(mktemp -d "${TMPDIR:-/tmp}/demi-interop.XXXXXX")
pids=() # everything started in the background, by PID

cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    stop_pid "$pid"
  done
  for id in "${ids[@]}"; do
    "$netns" down "$id" || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

# use_topology ID: the namespaces, interfaces, addresses and our MAC of topology ID.
use_topology() {
  bypass_topology env "$1" || true
  topo=$1
}

indent() { sed 's/^/    | /'; }

show() { # FILE: its last lines, indented
  tail -n 15 "$1" 2>/dev/null | indent
}

# wait_ready NAME PID: the process's stdout says "ready" within 10 s.
wait_ready() {
  for _ in $(seq 100); do
    grep -q '^ready' "$tmp/$1.out" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  show "$tmp/$1.err"
  fail "$1 did not become ready"
}

# start_ours NAME ARGS...: demi_peer ARGS in the bypass namespace, in the
# background, ready; its PID in $last_pid. DEMI_LOG=info makes it log its
# counters when it exits.
start_ours() {
  local name=$1
  shift
  # shellcheck disable=SC2046 # our_env is words
  ip netns exec "$ns_a" env $(our_env) DEMI_LOG=info "$demi_peer" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  last_pid=$!
  pids+=("$last_pid")
  wait_ready "$name" "$last_pid"
}

# start_linux NAME ARGS...: peer.py ARGS in the Linux namespace, likewise.
start_linux() {
  local name=$1
  shift
  ip netns exec "$ns_b" python3 "$peer_py" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  last_pid=$!
  pids+=("$last_pid")
  wait_ready "$name" "$last_pid"
}

# finish NAME PID SECONDS: the process exits 0 by itself within SECONDS.
finish() {
  local name=$1 pid=$2 rc=0
  for _ in $(seq $(($3 * 10))); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && {
    show "$tmp/$name.err"
    fail "$name did not finish within $3 s"
  }
  wait "$pid" || rc=$?
  forget "$pid"
  [[ $rc -eq 0 ]] || {
    show "$tmp/$name.err"
    fail "$name exited $rc"
  }
  have_counters "$name"
}

# stop NAME PID: SIGTERM; the process must exit 0.
stop() {
  local name=$1 pid=$2 rc=0
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" || rc=$?
  forget "$pid"
  [[ $name == linux-* ]] && return 0 # peer.py servers die by the signal
  [[ $rc -eq 0 ]] || {
    show "$tmp/$name.err"
    fail "$name exited $rc on SIGTERM"
  }
  have_counters "$name"
}

# run_ours NAME SECONDS ARGS... / run_linux NAME SECONDS ARGS...: a client in
# the foreground; it must exit 0. Sets $secs to how long it took.
run_ours() {
  local name=$1 t=$2 t0 rc=0
  shift 2
  t0=$(date +%s%N)
  # shellcheck disable=SC2046
  timeout -k 5 "$t" ip netns exec "$ns_a" env $(our_env) DEMI_LOG=info "$demi_peer" "$@" \
    >"$tmp/$name.out" 2>"$tmp/$name.err" || rc=$?
  secs=$(elapsed "$t0")
  [[ $rc -eq 0 ]] || {
    show "$tmp/$name.err"
    fail "$name: demi_peer $* exited $rc"
  }
  have_counters "$name"
}
run_linux() {
  local name=$1 t=$2 t0 rc=0
  shift 2
  t0=$(date +%s%N)
  timeout -k 5 "$t" ip netns exec "$ns_b" python3 "$peer_py" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" || rc=$?
  secs=$(elapsed "$t0")
  [[ $rc -eq 0 ]] || {
    show "$tmp/$name.err"
    fail "$name: peer.py $* exited $rc"
  }
}

elapsed() { # T0_NS: seconds since, to the millisecond
  local ns=$(($(date +%s%N) - $1))
  printf '%d.%03d' $((ns / 1000000000)) $((ns / 1000000 % 1000))
}

mbits() { # BYTES SECONDS
  python3 -c "import sys; print(f'{int(sys.argv[1]) * 8 / float(sys.argv[2]) / 1e6:.0f}')" "$1" "$2"
}

# have_counters NAME: our process NAME logged its stack's counters on exit.
have_counters() {
  grep -q 'counters:' "$tmp/$1.err" || {
    show "$tmp/$1.err"
    fail "$1 logged no counters as it exited (DEMI_LOG=info)"
  }
}

# ours NAME KEY: a counter our stack logged as it exited (0 if it never
# counted any); the device's kernel drops are "kernel_rx_dropped".
ours() {
  local f=$tmp/$1.err v
  if [[ $2 == kernel_rx_dropped ]]; then
    v=$(grep -E '(xdp|packet|dpdk): kernel:' "$f" | grep -o 'rx_dropped=[0-9]*' | cut -d= -f2 || true)
  else
    v=$(grep 'counters:' "$f" | grep -oE "(^| )$2=[0-9]+" | cut -d= -f2 || true)
  fi
  echo "${v:-0}"
}

# linux KEY: the Linux side's kernel counter (absolute; the namespace is fresh).
linux() {
  ip netns exec "$ns_b" nstat -asz "$1" | awk -v k="$1" '$1 == k {print $2; found = 1} END {if (!found) print 0}'
}

# no_csum_errors NAME...: neither Linux nor our processes saw a bad checksum.
no_csum_errors() {
  local bad=0 k v n
  for k in IpExtInCsumErrors TcpInCsumErrors UdpInCsumErrors IcmpInCsumErrors; do
    v=$(linux $k)
    [[ $v -eq 0 ]] || {
      echo "Linux $k=$v"
      bad=1
    }
  done
  for n in "$@"; do
    for k in ip_rx_bad_csum tcp_rx_bad_csum udp_rx_bad_csum icmp_rx_bad; do
      v=$(ours "$n" $k)
      [[ $v -eq 0 ]] || {
        echo "$n $k=$v"
        bad=1
      }
    done
  done
  [[ $bad -eq 0 ]] || fail "checksum errors on topology $topo"
}

# linux_sockets_closed: no Linux socket to or from us is left but in
# TIME-WAIT (our FINs went out and were acknowledged).
linux_sockets_closed() {
  local left=
  for _ in $(seq 30); do
    left=$(ip netns exec "$ns_b" ss -Htan "( dst $ip_a )" | grep -v TIME-WAIT || true)
    [[ -z $left ]] && return 0
    sleep 0.1
  done
  printf '%s\n' "$left" | indent
  fail "Linux still holds connections with us after both ends closed"
}

# ---- checks ---------------------------------------------------------------

port=7000
next_port() { port=$((port + 1)); }

# tcp_case LABEL: 64 MiB echoed each way between the roles; prints two lines
# and sets $retrans (both sides' retransmissions, both runs).
tcp_case() {
  local label=$1 l0 l1 r_ours line
  retrans=0

  # Our server, Linux's client.
  next_port
  l0=$(linux TcpRetransSegs)
  start_ours "srv-$label" tcp-server $port --conns 1
  local spid=$last_pid
  run_linux "lcli-$label" 300 tcp-client "$ip_a" $port $tcp_bytes
  finish "srv-$label" "$spid" 30
  l1=$(linux TcpRetransSegs)
  line=$(grep '^tcp-server:' "$tmp/srv-$label.out")
  [[ $line == "tcp-server: 1 connections accepted, 1 closed by the client, 0 failed, $tcp_bytes bytes echoed" ]] ||
    fail "our server: $line"
  grep -q 'sha256 equal' "$tmp/lcli-$label.out" || fail "peer.py: $(cat "$tmp/lcli-$label.out")"
  r_ours=$(ours "srv-$label" tcp_retrans_segs)
  echo "tcp $label: our server, Linux client: $((tcp_bytes >> 20)) MiB echoed, sha256 equal, ${secs} s" \
    "($(mbits $tcp_bytes "$secs") Mbit/s each way); retransmitted segments: ours $r_ours, Linux $((l1 - l0));" \
    "dropped before our ring: $(ours "srv-$label" kernel_rx_dropped)"
  retrans=$((retrans + r_ours + l1 - l0))
  [[ $label == clean ]] && linux_sockets_closed

  # Linux's server, our client.
  next_port
  l0=$(linux TcpRetransSegs)
  start_linux "linux-srv-$label" tcp-server $port
  local lpid=$last_pid
  run_ours "cli-$label" 300 tcp-client "$ip_b" $port $tcp_bytes
  l1=$(linux TcpRetransSegs)
  grep -q "^tcp-client: 1 x $tcp_bytes bytes echoed byte-exact" "$tmp/cli-$label.out" ||
    fail "our client: $(cat "$tmp/cli-$label.out")"
  [[ $label == clean ]] && linux_sockets_closed
  stop "linux-srv-$label" "$lpid"
  r_ours=$(ours "cli-$label" tcp_retrans_segs)
  echo "tcp $label: Linux server, our client: $((tcp_bytes >> 20)) MiB echoed byte-exact, ${secs} s" \
    "($(mbits $tcp_bytes "$secs") Mbit/s each way); retransmitted segments: ours $r_ours, Linux $((l1 - l0));" \
    "dropped before our ring: $(ours "cli-$label" kernel_rx_dropped)"
  retrans=$((retrans + r_ours + l1 - l0))
  no_csum_errors "srv-$label" "cli-$label"
}

# impair_counter KEY DIRECTION: from impair's final JSON line.
impair_counter() {
  python3 -c 'import json, sys
line = [l for l in open(sys.argv[1]) if "\"final\"" in l][-1]
print(json.loads(line)[sys.argv[2]][sys.argv[3]])' "$tmp/impair.json" "$2" "$1"
}

check_tcp() {
  use_topology "${ids[0]}"
  tcp_case clean

  "$netns" loss "${ids[0]}" 2
  tcp_case loss2
  "$netns" loss "${ids[0]}" 0
  [[ $retrans -gt 0 ]] || fail "2% loss, yet no side retransmitted anything: was the loss applied?"

  use_topology "${ids[1]}"
  ip netns exec "$ns_m" "$impair" --a "${ns_m}a" --b "${ns_m}b" "${impair_args[@]}" \
    >"$tmp/impair.json" 2>"$tmp/impair.err" &
  local ipid=$!
  pids+=("$ipid")
  for _ in $(seq 50); do
    grep -q '^impair: .* seed ' "$tmp/impair.err" && break
    sleep 0.1
  done
  grep -q '^impair: .* seed ' "$tmp/impair.err" || {
    show "$tmp/impair.err"
    fail "impair did not start"
  }
  tcp_case impair
  kill -TERM "$ipid"
  wait "$ipid" || fail "impair exited $? on SIGTERM"
  forget "$ipid"
  local d k line=
  for d in a_to_b b_to_a; do
    line+=" $d:"
    for k in lost duplicated reordered; do
      [[ $(impair_counter $k $d) -gt 0 ]] || fail "impair ${impair_args[*]}: $d $k = 0"
      line+=" $k $(impair_counter $k $d)"
    done
    for k in tx_errors oversize malformed overflow; do
      [[ $(impair_counter $k $d) -eq 0 ]] || fail "impair: $d $k = $(impair_counter $k $d)"
    done
  done
  echo "tcp impair: impair ${impair_args[*]}:$line"
}

# frags BYTES: how many IPv4 fragments a UDP payload of BYTES takes at our MTU.
frags() {
  local l=$(($1 + 8)) step=$(((mtu - 20) / 8 * 8))
  if [[ $l -le $((mtu - 20)) ]]; then echo 0; else echo $(((l + step - 1) / step)); fi
}

check_udp() {
  use_topology "${ids[0]}"
  local size reasm0 reasm1 fc0 fc1 n want_frag want_reasm line

  # Our server, Linux's clients.
  next_port
  start_ours usrv udp-server $port
  local spid=$last_pid
  for size in "${udp_sizes[@]}"; do
    reasm0=$(linux IpReasmOKs) fc0=$(linux IpFragCreates)
    run_linux "lucli-$size" 120 udp-client "$ip_a" $port $udp_count "$size"
    reasm1=$(linux IpReasmOKs) fc1=$(linux IpFragCreates)
    line=$(cat "$tmp/lucli-$size.out")
    [[ $line == "udp-client: $udp_count datagrams of $size bytes echoed (0 retried)" ]] ||
      fail "our server, Linux client, $size B: $line"
    n=$(frags "$size")
    [[ $((fc1 - fc0)) -eq $((udp_count * n)) ]] || fail "$size B: Linux made $((fc1 - fc0)) fragments, expected $((udp_count * n))"
    want_reasm=$((n > 0 ? udp_count : 0))
    [[ $((reasm1 - reasm0)) -eq $want_reasm ]] ||
      fail "$size B: Linux reassembled $((reasm1 - reasm0)) of our echoes, expected $want_reasm"
    echo "udp $size B: our server, Linux client: $udp_count datagrams echoed byte-exact, 0 lost, ${secs} s;" \
      "fragments: Linux sent $((fc1 - fc0)), reassembled $((reasm1 - reasm0)) of ours"
  done
  stop usrv "$spid"
  want_frag=0 want_reasm=0
  for size in "${udp_sizes[@]}"; do
    n=$(frags "$size")
    want_frag=$((want_frag + udp_count * n))
    [[ $n -gt 0 ]] && want_reasm=$((want_reasm + udp_count))
  done
  line=$(grep '^udp-server:' "$tmp/usrv.out")
  [[ $line == "udp-server: $((udp_count * ${#udp_sizes[@]})) datagrams "* ]] || fail "our server: $line"
  [[ $our_reasm -eq 1 ]] || want_reasm=0
  [[ $(ours usrv ip_frag_reassembled) -eq $want_reasm && $(ours usrv ip_frag_sent) -eq $want_frag ]] ||
    fail "our server reassembled $(ours usrv ip_frag_reassembled) (expected $want_reasm) and sent $(ours usrv ip_frag_sent) fragments (expected $want_frag)"
  echo "udp: our server: $line; fragments: sent $(ours usrv ip_frag_sent), reassembled $(ours usrv ip_frag_reassembled)"

  # Linux's server, our clients.
  next_port
  start_linux linux-usrv udp-server $port
  local lpid=$last_pid
  for size in "${udp_sizes[@]}"; do
    reasm0=$(linux IpReasmOKs) fc0=$(linux IpFragCreates)
    run_ours "ucli-$size" 120 udp-client "$ip_b" $port $udp_count "$size"
    reasm1=$(linux IpReasmOKs) fc1=$(linux IpFragCreates)
    line=$(cat "$tmp/ucli-$size.out")
    [[ $line == "udp-client: $udp_count datagrams of $size bytes echoed byte-exact in "*"; 0 retried)" ]] ||
      fail "Linux server, our client, $size B: $line"
    n=$(frags "$size")
    want_reasm=$((n > 0 ? udp_count : 0))
    local our_want=$((our_reasm ? want_reasm : 0))
    [[ $(ours "ucli-$size" ip_frag_sent) -eq $((udp_count * n)) && $(ours "ucli-$size" ip_frag_reassembled) -eq $our_want ]] ||
      fail "$size B: we sent $(ours "ucli-$size" ip_frag_sent) fragments (expected $((udp_count * n))), reassembled $(ours "ucli-$size" ip_frag_reassembled) (expected $our_want)"
    [[ $((fc1 - fc0)) -eq $((udp_count * n)) && $((reasm1 - reasm0)) -eq $want_reasm ]] ||
      fail "$size B: Linux made $((fc1 - fc0)) fragments and reassembled $((reasm1 - reasm0))"
    echo "udp $size B: Linux server, our client: $udp_count datagrams echoed byte-exact, 0 lost, ${secs} s;" \
      "fragments: we sent $(ours "ucli-$size" ip_frag_sent), reassembled $(ours "ucli-$size" ip_frag_reassembled)"
  done
  stop linux-usrv "$lpid"
  no_csum_errors usrv "${udp_sizes[@]/#/ucli-}"
}

# ping_ok NAME COUNT SIZE: every reply came, whole.
ping_ok() {
  local name=$1 count=$2 size=$3 out got
  out=$(ip netns exec "$ns_b" ping -n -c "$count" -i 0.2 -W 2 -s "$size" "$ip_a" 2>&1) || {
    printf '%s\n' "$out" | indent
    fail "ping -s $size: not every reply came back"
  }
  got=$(grep -c "^$((size + 8)) bytes from $ip_a: icmp_seq=[0-9]* ttl=64 time=" <<<"$out" || true)
  if [[ $got -ne $count ]] || grep -q -e truncated -e DUP -e wrong <<<"$out"; then
    printf '%s\n' "$out" | indent
    fail "ping -s $size: $got of $count replies whole and right"
  fi
  echo "icmp: ping -s $size: $count of $count replies of $((size + 8)) bytes; rtt min/avg/max" \
    "$(grep -o 'rtt [^=]*= [0-9./]*' <<<"$out" | awk '{print $4}') ms"
}

check_icmp() {
  use_topology "${ids[0]}"
  next_port
  start_ours icmp udp-server $port
  local spid=$last_pid
  # Linux forgets us: the pings must resolve our address afresh.
  ip -n "$ns_b" neigh flush dev "$if_b"
  local size
  for size in "${ping_sizes[@]}"; do
    ping_ok icmp $((size > 10000 ? 3 : 5)) "$size"
  done
  local neigh
  neigh=$(ip -n "$ns_b" neigh show "$ip_a" dev "$if_b")
  [[ $neigh == *"lladdr $mac_a "* && $neigh != *FAILED* && $neigh != *INCOMPLETE* ]] ||
    fail "Linux's neighbour entry for $ip_a is '$neigh', not our MAC $mac_a"
  stop icmp "$spid"
  local replies arp
  replies=$(ours icmp icmp_echo_replies) arp=$(ours icmp arp_reply_sent)
  local want=0
  for size in "${ping_sizes[@]}"; do want=$((want + (size > 10000 ? 3 : 5))); done
  [[ $replies -eq $want ]] || fail "our stack counted $replies echo replies, not $want"
  [[ $arp -ge 1 ]] || fail "Linux resolved our address, yet our stack sent no ARP reply"
  echo "icmp: Linux's neighbour entry: $neigh; our stack: $replies echo replies, $arp ARP replies," \
    "$(ours icmp ip_frag_reassembled) requests reassembled, $(ours icmp ip_frag_sent) fragments sent"
  no_csum_errors icmp
}

check_conns() {
  use_topology "${ids[0]}"
  next_port
  start_ours conns tcp-server $port --conns $conns
  local spid=$last_pid
  run_linux conns-cli 240 tcp-client "$ip_a" $port $conn_bytes --conns $conns
  finish conns "$spid" 30
  local line
  line=$(grep '^tcp-server:' "$tmp/conns.out")
  [[ $line == "tcp-server: $conns connections accepted, $conns closed by the client, 0 failed, $((conns * conn_bytes)) bytes echoed" ]] ||
    fail "our server: $line"
  grep -q "^tcp-client: $conns x $conn_bytes bytes echoed, sha256 equal" "$tmp/conns-cli.out" ||
    fail "peer.py: $(cat "$tmp/conns-cli.out")"
  echo "conns: $conns concurrent connections from Linux, $((conn_bytes >> 10)) KiB each echoed, sha256 equal," \
    "${secs} s; our retransmitted segments $(ours conns tcp_retrans_segs), dropped before our ring" \
    "$(ours conns kernel_rx_dropped)"
  no_csum_errors conns
}

check_libos() {
  use_topology "${ids[0]}"
  local name tmo rest t0 rc pairs=0 singles=0
  local ours_env
  ours_env=$(our_env)
  while read -r name tmo rest; do
    # The generic suite entries (LIBOS=catnap in the suite); catnip's own
    # memif and error tests are not about the stack on this link.
    [[ $name == libos/* && $rest == *LIBOS=catnap* ]] || continue
    local exe=$build/tests/$name
    [[ -x $exe ]] || fail "$name is not built"
    # Single-process tests (pair_init_single) run one stack: ours.
    local single=0
    grep -q 'pair_init_single' "$src/tests/$name.c" && single=1
    local roles=("ours-server")
    [[ $single -eq 0 ]] && roles+=("ours-client")
    for role in "${roles[@]}"; do
      local -a e
      if [[ $role == ours-server ]]; then
        e=(DEMI_SERVER_NETNS="$ns_a" DEMI_SERVER_ENV="$ours_env" DEMI_CLIENT_NETNS="$ns_b"
          DEMI_CLIENT_ENV="LIBOS=catnap" DEMI_TEST_SERVER_IP="$ip_a")
      else
        e=(DEMI_SERVER_NETNS="$ns_b" DEMI_SERVER_ENV="LIBOS=catnap" DEMI_CLIENT_NETNS="$ns_a"
          DEMI_CLIENT_ENV="$ours_env" DEMI_TEST_SERVER_IP="$ip_b")
      fi
      local log=$tmp/${name//\//_}.$role.log
      t0=$(date +%s%N)
      rc=0
      [[ -n $udp_max ]] && e+=(DEMI_TEST_UDP_MAX="$udp_max")
      env -u LIBOS "${e[@]}" timeout -k 5 "$tmo" "$exe" >"$log" 2>&1 || rc=$?
      local what="our server, catnap client"
      [[ $role == ours-client ]] && what="catnap server, our client"
      [[ $single -eq 1 ]] && what="one process, ours"
      [[ $rc -eq 0 ]] || {
        show "$log"
        fail "$name ($what): exit $rc"
      }
      echo "libos $name ($what): pass, $(elapsed "$t0") s: $(grep -v '^libdemi:' "$log" | tail -n 1)"
    done
    if [[ $single -eq 1 ]]; then singles=$((singles + 1)); else pairs=$((pairs + 1)); fi
  done <"$suite"
  [[ $((pairs + singles)) -gt 0 ]] || fail "no libos/ tests listed in $suite"
  echo "libos: $pairs two-party tests both ways, $singles single-process tests in our namespace"
}

# ---- main ---------------------------------------------------------------

for c in "${checks[@]}"; do
  case $c in
  tcp | udp | icmp | conns | libos) ;;
  *) fail "unknown check '$c' (tcp udp icmp conns libos)" ;;
  esac
done
"$netns" up "${ids[0]}" >/dev/null
"$netns" up "${ids[1]}" impair >/dev/null
echo "mode $mode: our side $(
  use_topology "${ids[0]}"
  our_env
); topologies ${ids[0]} (veth) and ${ids[1]} (through impair)"
for c in "${checks[@]}"; do
  "check_$c"
done
echo "PASS"
