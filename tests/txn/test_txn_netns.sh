#!/usr/bin/env bash
# TxnStore on libdemi's own TCP/IP stack across network namespaces: the
# bank of tests/txn/test_txn_bank.c (transfers and audits whose history is
# checked for strict serializability, the total unchanged, no balance
# negative, and after a SIGKILL of one backup mid-run every commit still
# there), with every replica and every client on libdemi's stack (catpowder
# or catnip), each in its own namespace on a Linux bridge (scripts/netns.sh bridge: 2 shards x 3
# demi-txnd replicas in occ mode and 4 clients, ten hosts, one libdemi
# instance per interface).
#
#   tests/txn/test_txn_netns.sh MODE
#     MODE  catpowder-xdp | catpowder-packet | catnip-afxdp
#           (scripts/bypass.sh: AF_XDP or AF_PACKET under catpowder, or
#           DPDK's net_af_xdp under catnip, a configuration file per host)
#
#   1. No loss: the bank with DEMI_TXN_BANK_TXNS (default 2000) commits,
#      then the kill and 500 more transfers.
#   2. 2% of the frames (DEMI_TXN_LOSS percent) dropped by the bridge
#      (both ways, every pair of hosts): the same with LOSS_TXNS (default
#      1000) commits. The bridge's nftables counters must show it dropped
#      frames, between a quarter and 2.5 times the share set (0.5% and 5%
#      at 2%): the loss really happened, and the stack recovered.
#
# Every process sleeps when idle (SPIN_US=0; catpowder waits on its
# socket's descriptor, catnip polls its port with a back-off of 16 us to
# 2 ms, net_af_xdp having no receive interrupt): ten of them share what
# may be two CPUs. Each has a
# 256 MiB heap (test_txn_bank sets HEAP_SIZE: under AddressSanitizer the
# default 4 GiB costs about 2 s of CPU a process to release at exit).
# Timeouts only guard against hangs: the bank waits on its clients'
# answers.
#
# Exit 0 pass, 1 fail, 77 skip: only when not root, or when the kernel
# lacks MODE's socket family. Creates and removes the namespaces of bridge
# topology 120 (catpowder-xdp), 121 (catpowder-packet) or 124 (catnip-afxdp); the bank kills its own children by
# PID (and they die with it), this script stops only the bank, by PID.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${DEMI_BUILD:-$src/build}
[[ $build == /* ]] || build=$src/$build
bank=$build/tests/txn/test_txn_bank
netns=$src/scripts/netns.sh
# shellcheck source=../../scripts/bypass.sh
. "$src/scripts/bypass.sh"

mode=${1:-}
case $mode in
catpowder-xdp) id=120 ;;
catpowder-packet) id=121 ;;
catnip-afxdp) id=124 ;;
*)
  echo "usage: $0 catpowder-xdp|catpowder-packet|catnip-afxdp" >&2
  exit 2
  ;;
esac
NHOSTS=10 # test_txn_bank: 2 shards x 3 replicas, then 4 clients
LOSS=${DEMI_TXN_LOSS:-2} # percent (development: a higher one stresses recovery)

fail() {
  echo "FAIL: $*"
  exit 1
}
skip() {
  echo "skip: $*"
  exit 77
}

[[ $(id -u) -eq 0 ]] || skip "needs root (network namespaces, veth, raw sockets)"
for t in ip ethtool nft python3 timeout; do
  command -v $t >/dev/null || fail "'$t' not found (scripts/deps.sh installs it)"
done
[[ -x $bank ]] || fail "$bank is not built (DEMI_BUILD=$build)"
[[ -x $build/demi-txnd ]] || fail "$build/demi-txnd is not built"
bypass_require "$mode"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/demi-txn-netns.XXXXXX")
pids=()
running= # the log of the bank running now, shown if this script is stopped
cleanup() {
  local rc=$? p
  for p in "${pids[@]}"; do stop_pid "$p"; done
  if ((rc != 0)) && [[ -n $running && -f $running ]]; then
    echo "stopped (status $rc) with the bank running; its log:"
    tail -n 60 "$running" | sed 's/^/    | /'
  fi
  "$netns" down "$id" || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$netns" bridge "$id" "$NHOSTS" >"$tmp/topo" || fail "scripts/netns.sh bridge $id $NHOSTS failed"
hosts=
for ((k = 1; k <= NHOSTS; k++)); do
  ns=$(sed -n "s/^DEMI_BR_NS_$k=//p" "$tmp/topo")
  ifn=$(sed -n "s/^DEMI_BR_IF_$k=//p" "$tmp/topo")
  ip=$(sed -n "s/^DEMI_BR_IP_$k=//p" "$tmp/topo")
  [[ -n $ns && -n $ifn && -n $ip ]] || fail "scripts/netns.sh printed no host $k"
  # catnip: bypass_env writes the host's configuration file (its DPDK port
  # on IF), which the bank hands to that host's process as CONFIG_PATH.
  conf=
  if [[ $mode == catnip-* ]]; then
    for w in $(bypass_env "$mode" "$ifn" "$ip" "$tmp"); do
      [[ $w == CONFIG_PATH=* ]] && conf=,${w#CONFIG_PATH=}
    done
    [[ -n $conf ]] || fail "bypass_env wrote no configuration for host $k"
  fi
  hosts+="${hosts:+ }$ns,$ifn,$ip$conf"
done
# bypass_env's words, less the per-host interface, address and
# configuration file (the bank sets those in each child).
read -r -a ours <<<"$(bypass_env "$mode" IF 0.0.0.0 "$tmp")"
libos_env=()
for w in "${ours[@]}"; do
  case $w in LINUX_INTERFACE_NAME=* | LOCAL_IPV4_ADDR=* | CONFIG_PATH=*) ;; *) libos_env+=("$w") ;; esac
done
echo "mode $mode: 10 hosts on bridge dm${id}br (10.201.$id.1-10), ${libos_env[*]} SPIN_US=0"

# run_bank LABEL TXNS: the bank across the namespaces; its output in
# $tmp/LABEL.log, its last line shown.
run_bank() {
  local label=$1 txns=$2 rc=0 t0=$SECONDS
  env "${libos_env[@]}" SPIN_US=0 DEMI_TXN_BANK_HOSTS="$hosts" DEMI_TXN_BANK_TXNS="$txns" DEMI_BUILD="$build" \
    timeout -k 5 "${BANK_S:-600}" "$bank" >"$tmp/$label.log" 2>&1 &
  local p=$!
  pids+=("$p")
  running=$tmp/$label.log
  wait "$p" || rc=$?
  forget "$p"
  running=
  grep '^\[' "$tmp/$label.log" | sed "s/^/  $label: /"
  if ((rc != 0)) || ! grep -q '^test_txn_bank: PASS' "$tmp/$label.log"; then
    tail -n 40 "$tmp/$label.log" | sed 's/^/    | /'
    fail "$label: the bank exited with $rc"
  fi
  echo "$label: passed in $((SECONDS - t0)) s"
}

run_bank no-loss "${DEMI_TXN_BANK_TXNS:-2000}"

"$netns" loss "$id" "$LOSS"
run_bank "loss-$LOSS%" "${LOSS_TXNS:-1000}"
read -r _ dropped _ forwarded <<<"$("$netns" counters "$id")"
echo "the bridge dropped $dropped frames and forwarded $forwarded"
python3 - "$dropped" "$forwarded" "$LOSS" <<'EOF' || fail "the loss did not happen as set"
import sys
d, f, pct = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
share = d / (d + f) if d + f else 0
print("dropped %.2f%% of the frames" % (100 * share))
sys.exit(0 if d > 0 and pct / 400 <= share <= pct / 40 else 1)
EOF
"$netns" loss "$id" 0
echo "test_txn_netns $mode: ok"
