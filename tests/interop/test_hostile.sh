#!/usr/bin/env bash
# libdemi's stack ("ours", in namespace dm<ID>a, run as MODE) against
# hostile peers on the Linux side (dm<ID>b) of a scripts/netns.sh topology:
# raw frames from hostile_peer.py (AF_PACKET), and Linux sockets that
# misbehave. Issue 11's wire tests, one CASE each:
#
#   tests/interop/test_hostile.sh MODE [CASE ...]
#     MODE   catpowder-xdp | catpowder-packet | catnip-afxdp | catnip-afpacket
#     CASE   simopen zerowin flood reader (default: all, in this order)
#
#   simopen  Our client connects to a peer that answers each SYN with a
#            bare SYN (simultaneous open), gives up after 2 s and closes.
#            Our process must survive what its stack then does with the
#            half-open connection: it must still be alive after the stack
#            has either ended the connection (RST) or sent SIMOPEN_SEGS
#            more segments (that many retransmission timeouts survived).
#   zerowin  A peer completes the handshake, takes ZW_WINDOW bytes of the
#            ZW_BYTES we push, acknowledges them with window 0 and goes
#            silent. "close": our application closes; the stack must give
#            the connection up and free its memory. "hold": the application
#            keeps the connection; the push must fail with ETIMEDOUT. The
#            deadline of each comes from the stack's limits and the probe
#            interval observed (see zw_deadline). ZW_VARIANTS="close hold"
#            picks the variants.
#   flood    hostile_peer.py floods demi-echo with SYNs from random sources
#            in 10.250.0.0/16 (FLOOD_S seconds at most; FLOOD_PPS a second,
#            or as fast as it can); meanwhile a Linux client connects,
#            echoes 64 B and closes, FLOOD_CONNS times (it stops after 20
#            failures), and an established connection measures its echo
#            throughput. Pass: >= 99% of the connects succeed, each
#            within 1 s (with fewer CPUs than busy programs the kernel
#            drops frames before our ring: then the client may lose as
#            large a share of its SYNs as the flood, see tcp_syn_rx, plus
#            3 standard deviations); the established connection keeps
#            >= FLOOD_MIN_TPUT% of the throughput it had before the flood
#            (issue 11: 80%), judged only with 4 CPUs or more (below that
#            the flooder takes the CPU from the rest, which says nothing
#            about our stack).
#   reader   READER_CONNS Linux clients connect to demi-echo, send without
#            pause and never read; a legitimate client keeps echoing.
#            Once the readers have sent READER_MAX_MIB + 32 MiB each (or
#            stalled), demi-echo's heap may hold at most READER_MAX_MIB
#            (16) MiB per reader: a 4 MiB receive window and a few MiB of
#            echoes queued are fair, everything they send is not; and a
#            legitimate client must connect and echo 20 times, each
#            within 1 s. Prints the heap held per non-reading connection.
#
# Where the flood's SYN,ACKs go: libdemi has no routes (every address is
# on the link). A real flood with spoofed sources reaches a server through
# its gateway, and the server's SYN,ACKs go back to that gateway's MAC,
# where they vanish (or meet hosts that answer RST). Here the Linux host
# plays the gateway: the flooder answers ARP for 10.250.0.0/16 with the
# Linux interface's MAC, and the Linux kernel, which owns none of those
# addresses and does not forward, drops the SYN,ACKs silently. So our
# stack pays one ARP exchange per spoofed source (the worst case: its ARP
# table churns), which a deployment with one gateway would not. The
# legitimate client's entry is static (ARP_TABLE) so that the churn does not
# decide the result: what is measured is the SYN queue.
#
# Exit 0 pass, 77 skip (not root, or the kernel lacks what MODE needs), 1
# fail. Uses topology ID 60 (61, 62, 63 for the other modes); removes it;
# stops only the processes it started.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${DEMI_BUILD:-$src/build}
peer=$here/hostile_peer.py
app=$build/tests/interop/hostile_app
echo_bin=$build/demi-echo
netns=$src/scripts/netns.sh
# shellcheck source=../../scripts/bypass.sh
. "$src/scripts/bypass.sh"

mode=${1:-}
shift || true
cases=("$@")
[[ ${#cases[@]} -gt 0 ]] || cases=(simopen zerowin flood reader)

SIMOPEN_SEGS=${SIMOPEN_SEGS:-3}
ZW_BYTES=$((1 << 20))
ZW_WINDOW=4096
FLOOD_S=${FLOOD_S:-120} # a cap: the test stops the flood once it has measured
FLOOD_MAX=${FLOOD_MAX:-5000000}
FLOOD_PPS=${FLOOD_PPS:-0} # SYNs a second; 0: as fast as the flooder can
FLOOD_CONNS=${FLOOD_CONNS:-200}
FLOOD_MIN_TPUT=${FLOOD_MIN_TPUT:-80}
READER_CONNS=${READER_CONNS:-20}
READER_MAX_MIB=${READER_MAX_MIB:-16}

fail() {
  echo "FAIL: $*"
  exit 1
}
skip() {
  echo "skip: $*"
  exit 77
}

case $mode in
catpowder-xdp) id=60 ;;
catpowder-packet) id=61 ;;
catnip-afxdp) id=62 ;;
catnip-afpacket) id=63 ;;
*)
  echo "usage: $0 catpowder-xdp|catpowder-packet|catnip-afxdp|catnip-afpacket [simopen zerowin flood reader]" >&2
  exit 2
  ;;
esac
for c in "${cases[@]}"; do
  case $c in
  simopen | zerowin | flood | reader) ;;
  *) fail "unknown case '$c' (simopen zerowin flood reader)" ;;
  esac
done
[[ $(id -u) -eq 0 ]] || skip "needs root (network namespaces, veth, raw sockets)"
for t in ip ethtool python3 timeout; do
  command -v $t >/dev/null || fail "'$t' not found (scripts/deps.sh installs it)"
done
for f in "$app" "$echo_bin"; do
  [[ -x $f ]] || fail "$f is not built (DEMI_BUILD=$build)"
done
bypass_require "$mode"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/demi-hostile.XXXXXX")
pids=()

cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    stop_pid "$pid"
  done
  "$netns" down "$id" || true
  rm -rf "$tmp"
}
trap cleanup EXIT

bypass_topology up "$id" || true
# The raw peers' address: on the link, but not the Linux kernel's.
ip_raw=${ip_b%.*}.3

indent() { sed 's/^/    | /'; }
show() { tail -n 15 "$1" 2>/dev/null | indent; }

# start NAME NS CMD...: a background process in namespace NS; PID in $last_pid.
start() {
  local name=$1 ns=$2
  shift 2
  ip netns exec "$ns" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  last_pid=$!
  pids+=("$last_pid")
}

# our_env: our process's environment words (DEMI_LOG=info: counters at exit).
our_env() {
  echo "$(bypass_env "$mode" "$if_a" "$ip_a" "$tmp") DEMI_LOG=info $*"
}

# reap NAME PID: waits for PID; its exit status in $rc.
reap() {
  rc=0
  wait "$2" || rc=$?
  forget "$2"
}

# ours NAME KEY: a counter our stack logged as it exited (0 if none).
ours() {
  local v
  v=$(grep 'counters:' "$tmp/$1.err" | grep -oE "(^| )$2=[0-9]+" | cut -d= -f2 | paste -sd+ | bc 2>/dev/null || true)
  echo "${v:-0}"
}

port=7100
next_port() { port=$((port + 1)); }

# ---- simopen ----------------------------------------------------------------

case_simopen() {
  next_port
  start synsyn "$ns_b" python3 "$peer" synsyn "$if_b" "$ip_raw" $port "$tmp/synsyn.log"
  local ppid=$last_pid
  wait_for "$tmp/synsyn.out" '^ready' 10 $ppid || fail "hostile_peer synsyn did not start: $(cat "$tmp/synsyn.err")"
  # shellcheck disable=SC2046 # our_env is words
  start simopen "$ns_a" env $(our_env) "$app" connect-close "$ip_raw" $port 2000
  local apid=$last_pid
  wait_for "$tmp/simopen.out" '^closed' 30 $apid || {
    show "$tmp/simopen.err"
    fail "simopen: our client did not get to close (exit status $(
      reap simopen $apid
      echo $rc
    ))"
  }
  local syns
  syns=$(grep -c 'sent a bare SYN' "$tmp/synsyn.log" || true)
  [[ $syns -ge 1 ]] || fail "simopen: the peer never answered a SYN"
  # What our stack sends after the close: lines of the peer's log after
  # the close, seen by the peer (the close is marked by its time here).
  local mark
  mark=$(wc -l <"$tmp/synsyn.log")
  local t0 after=0 rst=0
  t0=$(date +%s)
  # At most 15 minutes: the RTO backs off to 60 s (a bound for a broken run).
  while kill -0 $apid 2>/dev/null && (($(date +%s) - t0 < 900)); do
    after=$(tail -n +$((mark + 1)) "$tmp/synsyn.log" | grep -vc '#' || true)
    rst=$(tail -n +$((mark + 1)) "$tmp/synsyn.log" | grep -c ' [A-Z]*R[A-Z]* ' || true)
    [[ $rst -gt 0 || $after -ge $SIMOPEN_SEGS ]] && break
    sleep 0.2
  done
  kill -0 $apid 2>/dev/null || {
    reap simopen $apid
    show "$tmp/simopen.err"
    echo "    peer's log (T FLAGS SEQ ACK WIN LEN):"
    indent <"$tmp/synsyn.log"
    fail "simopen: our process died (exit status $rc$( ((rc > 128)) && echo ", signal $((rc - 128))")) after closing a simultaneously opened connection"
  }
  [[ $rst -gt 0 || $after -ge $SIMOPEN_SEGS ]] ||
    fail "simopen: after $(($(date +%s) - t0)) s our stack had sent $after segments and no RST"
  kill -TERM $apid
  reap simopen $apid
  [[ $rc -eq 0 ]] || {
    show "$tmp/simopen.err"
    fail "simopen: our client exited $rc on SIGTERM"
  }
  stop_pid $ppid
  forget $ppid
  echo "simopen: SYNs answered with a bare SYN: $syns; after the close our stack sent $after segments" \
    "($( ((rst > 0)) && echo "ending with RST" || echo "no RST yet")) in $(($(date +%s) - t0)) s and is alive;" \
    "$(grep '^alive' "$tmp/simopen.out"); our retransmissions $(ours simopen tcp_retrans_segs)," \
    "RTO expiries $(ours simopen tcp_rto_expiries), connections opened $(ours simopen tcp_conns_opened)," \
    "freed $(ours simopen tcp_conns_freed)"
  echo "    what our stack sent (T FLAGS SEQ ACK WIN LEN, as the peer saw it):"
  indent <"$tmp/synsyn.log"
}

# ---- zerowin ----------------------------------------------------------------

# zw_deadline R: seconds our stack may take, at most, to give up a
# connection whose peer went silent behind a zero window, R the interval
# between its first two probes as the peer saw them. The persist timer
# backs off like the RTO (RFC 9293 3.8.6.1, RFC 6298 5.5): from R (an over-
# estimate: that is already the first backed-off interval), doubling up to
# the stack's maximum RTO of 60 s, for ZW_RETRIES unanswered probes, plus
# 30 s. Our stack runs with tcp_retries2 (the open connection) and
# tcp_orphan_retries (the closed one) set to ZW_RETRIES, 6 rather than
# Linux's 15 and 8: the same rule, in about a minute instead of ten. A
# stack without those keys ignores them and must still give up within the
# deadline.
ZW_RETRIES=${ZW_RETRIES:-6}
ZW_ENV=${ZW_ENV:-}
ZW_VARIANTS=${ZW_VARIANTS:-close hold}
zw_deadline() {
  python3 -c 'import sys
r0, n = float(sys.argv[1]), int(sys.argv[2])
print(int(sum(min(60.0, r0 * 2 ** k) for k in range(n + 1)) + 30))' "$1" "$ZW_RETRIES"
}

# zw_probes VARIANT: the times of the segments the peer saw after it went silent.
zw_probes() {
  awk '/silent from now on/ {s = 1; next} s && !/#/ {print $1}' "$tmp/zwpeer-$1.log"
}

# zw_run VARIANT: one run of the zero-window peer against our client.
zw_run() {
  local v=$1 deadline
  next_port
  start "zwpeer-$v" "$ns_b" python3 "$peer" zerowin "$if_b" "$ip_raw" $port $ZW_WINDOW "$tmp/zwpeer-$v.log"
  local ppid=$last_pid
  wait_for "$tmp/zwpeer-$v.out" '^ready' 10 $ppid || fail "hostile_peer zerowin did not start: $(cat "$tmp/zwpeer-$v.err")"
  # The client's own deadline is a day: this script enforces the real one.
  # shellcheck disable=SC2046,SC2086 # our_env and ZW_ENV are words
  start "zw-$v" "$ns_a" env $(our_env "TCP_RETRIES2=$ZW_RETRIES" "TCP_ORPHAN_RETRIES=$ZW_RETRIES" $ZW_ENV) "$app" zero-window \
    "$ip_raw" $port $ZW_BYTES "$v" 86400
  local apid=$last_pid
  wait_for "$tmp/zwpeer-$v.out" '^silent' 30 $ppid || {
    show "$tmp/zw-$v.err"
    fail "zerowin $v: the peer never filled its window (our side: $(cat "$tmp/zw-$v.out"))"
  }
  local t0
  t0=$(date +%s)
  [[ $v == close ]] && kill -USR1 $apid
  # The first two probes give the interval the deadline starts from (a
  # stack that gives up before its second probe needs no deadline).
  local r0=
  while kill -0 $apid 2>/dev/null && (($(date +%s) - t0 < 300)); do
    [[ $(zw_probes "$v" | wc -l) -ge 2 ]] && break
    sleep 0.2
  done
  if [[ $(zw_probes "$v" | wc -l) -ge 2 ]]; then
    r0=$(zw_probes "$v" | head -n 2 | paste -sd' ' | awk '{printf "%.3f", $2 - $1}')
    deadline=$(zw_deadline "$r0")
  else
    deadline=300
  fi
  while kill -0 $apid 2>/dev/null && (($(date +%s) - t0 < deadline)); do
    sleep 0.5
  done
  if kill -0 $apid 2>/dev/null; then
    echo "    the peer saw $(zw_probes "$v" | wc -l) segments after it went silent; our side:"
    indent <"$tmp/zw-$v.out"
    fail "zerowin $v: our stack has not given the connection up $deadline s after the peer went silent" \
      "(first probe interval ${r0:-?} s, $ZW_RETRIES probes allowed)"
  fi
  reap "zw-$v" $apid
  stop_pid $ppid
  forget $ppid
  local probes
  probes=$(zw_probes "$v" | wc -l)
  [[ $rc -eq 0 ]] || {
    show "$tmp/zw-$v.out"
    show "$tmp/zw-$v.err"
    fail "zerowin $v: our client exited $rc"
  }
  echo "zerowin $v: $(tail -n 1 "$tmp/zw-$v.out"); the peer saw $probes segments after it went silent" \
    "(deadline $deadline s: $ZW_RETRIES probes backing off from ${r0:-?} s, at most 60 s apart);" \
    "our RTO expiries $(ours "zw-$v" tcp_rto_expiries), connections freed $(ours "zw-$v" tcp_conns_freed)" \
    "of $(ours "zw-$v" tcp_conns_opened)"
}

case_zerowin() {
  local v
  for v in $ZW_VARIANTS; do
    zw_run "$v"
  done
}

# ---- demi-echo, for flood and reader ------------------------------------------

# start_echo NAME: demi-echo's server on our side, on a new port, ready; its
# PID in $echo_pid. The Linux host's address is a static ARP entry (see the
# top of this file).
start_echo() {
  next_port
  # shellcheck disable=SC2046 # our_env is words
  start "$1" "$ns_a" env $(our_env "ARP_TABLE=$mac_b=$ip_b") "$echo_bin" server --addr "$ip_a:$port"
  echo_pid=$last_pid
  wait_for "$tmp/$1.out" '^ready' 10 $echo_pid || {
    show "$tmp/$1.err"
    fail "$1: demi-echo did not start"
  }
}

# stop_echo NAME: SIGTERM; demi-echo must exit 0.
stop_echo() {
  kill -TERM "$echo_pid" 2>/dev/null || true
  reap "$1" "$echo_pid"
  [[ $rc -eq 0 ]] || {
    show "$tmp/$1.err"
    fail "$1: demi-echo exited $rc"
  }
}

# ---- flood ------------------------------------------------------------------

# tput FILE FROM TO: mean echo throughput (Mbit/s) of stream's lines with
# FROM < T <= TO (wall clock), and how many lines that was.
tput() {
  awk -v a="$2" -v b="$3" 'NF == 2 && $1 + 0 > a + 0.25 && $1 + 0 <= b + 0 {n++; s += $2}
    END {if (n) printf "%.0f %d\n", s * 8 / (n * 0.25) / 1e6, n; else print "0 0"}' "$1"
}

case_flood() {
  start_echo echo-flood
  # An established connection echoing throughout.
  start stream "$ns_b" python3 "$peer" stream "$ip_a" $port
  local spid=$last_pid
  wait_for "$tmp/stream.out" '^ready' 10 $spid || fail "flood: the stream client did not connect: $(cat "$tmp/stream.err")"
  # Its throughput before the flood: 16 intervals (4 s) after 4 of warm-up.
  for _ in $(seq 600); do
    [[ $(grep -c '^[0-9]' "$tmp/stream.out") -ge 20 ]] && break
    kill -0 $spid 2>/dev/null || fail "flood: the stream client died: $(cat "$tmp/stream.err")"
    sleep 0.1
  done
  local t_flood t_warm
  t_flood=$(date +%s.%N)
  t_warm=$(grep '^[0-9]' "$tmp/stream.out" | sed -n 4p | cut -d' ' -f1)
  start flooder "$ns_b" python3 "$peer" flood "$if_b" "$ip_a" "$mac_a" $port 10.250.0.0/16 "$FLOOD_S" "$FLOOD_MAX" "$FLOOD_PPS"
  local fpid=$last_pid
  # The flood has begun in earnest once it has sent more SYNs than the
  # largest backlog our stack allows (4096) several times over.
  wait_for "$tmp/flooder.out" '^sent [2-9][0-9]{4}|^sent [0-9]{6}' 120 $fpid || {
    show "$tmp/flooder.err"
    fail "flood: the flooder did not get going: $(cat "$tmp/flooder.out")"
  }
  local t_full
  t_full=$(date +%s.%N)
  timeout -k 5 $((FLOOD_CONNS * 2 + 30)) ip netns exec "$ns_b" python3 "$peer" connects "$ip_a" $port "$FLOOD_CONNS" \
    >"$tmp/connects.out" 2>"$tmp/connects.err" || fail "flood: the legitimate client failed: $(cat "$tmp/connects.err")"
  # The established connection during the flood: 8 more intervals.
  local n0
  n0=$(grep -c '^[0-9]' "$tmp/stream.out")
  for _ in $(seq 300); do
    [[ $(grep -c '^[0-9]' "$tmp/stream.out") -ge $((n0 + 8)) ]] && break
    sleep 0.1
  done
  kill -0 $fpid 2>/dev/null || fail "flood: the flood ended before the measurements did: $(cat "$tmp/flooder.out")"
  local t_end
  t_end=$(date +%s.%N)
  kill -TERM $fpid
  reap flooder $fpid
  [[ $rc -eq 0 ]] || fail "flood: the flooder exited $rc: $(cat "$tmp/flooder.err")"
  kill -TERM $spid
  reap stream $spid
  [[ $rc -eq 0 ]] || fail "flood: the stream client exited $rc: $(cat "$tmp/stream.err")"
  stop_echo echo-flood
  local before during line ok1
  before=$(tput "$tmp/stream.out" "$t_warm" "$t_flood")
  during=$(tput "$tmp/stream.out" "$t_full" "$t_end")
  line=$(grep '^connects:' "$tmp/connects.out")
  ok1=$(sed -E 's/.* ([0-9]+) connected within 1 s.*/\1/' <<<"$line")
  echo "flood: $(grep '^flood:' "$tmp/flooder.out")"
  echo "flood: legitimate client during the flood: $line"
  echo "flood: established connection's echo: ${before% *} Mbit/s before the flood, ${during% *} Mbit/s during it" \
    "(${before#* } and ${during#* } intervals of 0.25 s)"
  echo "flood: our stack: SYNs dropped $(ours echo-flood tcp_syn_dropped), connections accepted" \
    "$(ours echo-flood tcp_conns_accepted), ARP requests sent $(ours echo-flood arp_req_sent)," \
    "ARP queue drops $(ours echo-flood arp_queue_drops), frames dropped before our ring" \
    "$(grep -oE 'rx_dropped=[0-9]+' "$tmp/echo-flood.err" | head -n 1 | cut -d= -f2)"
  # A connect over 1 s is one whose SYN was lost (Linux repeats it after
  # 1 s). Our stack drops no SYN (SYN cookies), but with fewer CPUs than
  # busy programs the kernel drops frames before our ring, the flood's and
  # the client's alike. The client may then lose the share of its SYNs that
  # the flood loses, plus chance (3 standard deviations), never more: more
  # would mean that the flood hurt the bystander beyond its own share.
  local sent syn_rx lost allow
  sent=$(grep -oE '^flood: [0-9]+ SYNs' "$tmp/flooder.out" | grep -oE '[0-9]+')
  syn_rx=$(ours echo-flood tcp_syn_rx)
  read -r lost allow < <(awk -v sent="${sent:-0}" -v rx="$syn_rx" -v n="$FLOOD_CONNS" 'BEGIN {
    l = sent > 0 ? 1 - rx / sent : 0; if (l < 0) l = 0
    a = l + 3 * sqrt(l * (1 - l) / n); if (a < 0.01) a = 0.01
    printf "%.1f %d\n", l * 100, int(a * n)
  }')
  echo "flood: SYNs that reached our listener: $syn_rx of the flood's ${sent:-?} and the client's" \
    "(${lost}% lost before our stack); the client may lose $allow of $FLOOD_CONNS SYNs"
  [[ $((FLOOD_CONNS - ok1)) -le $allow ]] ||
    fail "flood: $ok1 of $FLOOD_CONNS legitimate connects succeeded within 1 s" \
      "($((FLOOD_CONNS - allow)) needed: 99%, or as many as the ${lost}% of the flood's SYNs lost before our stack leave)"
  [[ ${before% *} -gt 0 ]] || fail "flood: the established connection echoed nothing before the flood"
  if [[ $(nproc) -ge 4 ]]; then
    [[ $((${during% *} * 100)) -ge $((${before% *} * FLOOD_MIN_TPUT)) ]] ||
      fail "flood: the established connection kept ${during% *} of ${before% *} Mbit/s (${FLOOD_MIN_TPUT}% needed)"
  else
    # The flooder, the two clients and our polling server share fewer CPUs
    # than there are of them: what the flood takes from the established
    # connection is then mostly CPU time, not our stack's doing (runs on
    # 2 CPUs kept from 57% to 124%). Reported, not judged.
    echo "flood: throughput not judged: $(nproc) CPUs for the flooder, two clients and our server (4 needed)"
  fi
}

# ---- reader -----------------------------------------------------------------

# echo_heap NAME: demi-echo's heap in use now, in bytes: SIGUSR1 makes it
# print "stats ... heap_bytes_in_use=N ...".
echo_heap() {
  local n
  n=$(grep -c '^stats ' "$tmp/$1.out" || true)
  kill -USR1 "$echo_pid"
  for _ in $(seq 100); do
    [[ $(grep -c '^stats ' "$tmp/$1.out" || true) -gt $n ]] && break
    sleep 0.1
  done
  grep '^stats ' "$tmp/$1.out" | tail -n 1 | sed -E 's/.*heap_bytes_in_use=([0-9]+).*/\1/'
}

case_reader() {
  grep -aq 'heap_bytes_in_use=' "$echo_bin" ||
    fail "reader: this demi-echo prints no stats line on SIGUSR1 (the bounded demi-echo of issue 11 does)"
  start_echo echo-reader
  local base
  base=$(echo_heap echo-reader)
  [[ -n $base ]] || fail "reader: demi-echo printed no stats on SIGUSR1"
  start readers "$ns_b" python3 "$peer" reader "$ip_a" $port "$READER_CONNS"
  local rpid=$last_pid
  wait_for "$tmp/readers.out" '^ready' 30 $rpid || fail "reader: the readers did not connect: $(cat "$tmp/readers.err")"
  # Enough sent that a server holding more than READER_MAX_MIB per
  # connection would show it, over what the Linux side's own buffers can
  # hold (its send buffer and the receive buffer of the echoes: some
  # 10 MiB per connection): READER_MAX_MIB + 32 MiB per connection.
  local want=$((READER_CONNS * (READER_MAX_MIB + 32) << 20)) sent=0 t0
  t0=$(date +%s)
  while (($(date +%s) - t0 < 300)); do
    sent=$(awk 'NF == 2 {s += $2} END {print s + 0}' "$tmp/readers.out")
    [[ $sent -ge $want ]] && break
    # No byte taken in the last 3 s: the server takes no more.
    [[ $(grep -c '^[0-9]' "$tmp/readers.out") -ge 6 &&
      $(grep '^[0-9]' "$tmp/readers.out" | tail -n 6 | awk '{s += $2} END {print s + 0}') -eq 0 ]] && break
    kill -0 $rpid 2>/dev/null || break
    kill -0 "$echo_pid" 2>/dev/null || break
    sleep 0.5
  done
  local stalled=
  if [[ $sent -lt $want ]]; then
    # The readers stopped getting bytes in: the server holds no more
    # (a bounded server closes its window). Fine, if it still serves.
    stalled=" (they stalled: the server stopped taking more)"
  fi
  kill -0 "$echo_pid" 2>/dev/null || {
    show "$tmp/echo-reader.err"
    fail "reader: demi-echo died"
  }
  local held
  held=$(echo_heap echo-reader)
  # The legitimate client, while the readers still hold their connections.
  timeout -k 5 120 ip netns exec "$ns_b" python3 "$peer" connects "$ip_a" $port 20 \
    >"$tmp/legit.out" 2>"$tmp/legit.err" || fail "reader: the legitimate client failed: $(cat "$tmp/legit.err")"
  local line
  line=$(grep '^connects:' "$tmp/legit.out")
  kill -TERM $rpid
  reap readers $rpid
  stop_echo echo-reader
  local per=$(((held - base) / READER_CONNS))
  echo "reader: $READER_CONNS connections that never read sent $((sent >> 20)) MiB$stalled; demi-echo's heap:" \
    "$((base >> 20)) MiB before, $((held >> 20)) MiB after: $((per >> 10)) KiB per non-reading connection" \
    "(at most $READER_MAX_MIB MiB allowed)"
  echo "reader: legitimate client meanwhile: $line"
  [[ $line == "connects: 20 tried of 20, 20 connected within 1 s, 20 at all, 20 echoes whole;"* ]] ||
    fail "reader: the legitimate client was not served"
  [[ $per -le $((READER_MAX_MIB << 20)) ]] ||
    fail "reader: demi-echo holds $((per >> 20)) MiB per connection that never reads"
}

for c in "${cases[@]}"; do
  "case_$c"
done
echo "PASS"
