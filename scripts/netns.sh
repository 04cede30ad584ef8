#!/usr/bin/env bash
# Test topology for the bypass libOSes (catpowder, catnip): two network
# namespaces joined by a veth pair. The "bypass" side (namespace <p>a,
# interface <p>a) has no kernel address, so the kernel never answers or
# resets our stack's traffic; libdemi's stack owns 10.200.ID.1 there. The
# "linux" side (namespace <p>b, interface <p>b) has 10.200.ID.2/24: an
# ordinary Linux host to interoperate with. Checksum offload, TSO, GSO and
# GRO are off on every interface (a Linux sender would otherwise hand over
# frames with unfinished checksums and 30 KB super-frames). IPv6 is off.
#
# With "impair", a third namespace <p>m sits in the middle with two veth
# pairs and runs nothing itself: tools/impair bridges its two interfaces
# (started by the caller).
#
# With "bridge ID N", N hosts share one Ethernet segment instead: namespace
# <p>h<k> (k = 1..N) holds interface <p>h<k>, whose veth peer <p>p<k> is a
# port of bridge <p>br in the hub namespace <p>hub. No host has a kernel
# address: host k is where a libdemi stack owns 10.201.ID.k. The hub runs
# no IP at all; the bridge forwards at once (no STP, no forwarding delay).
# Loss on it is dropped by the bridge itself (an nftables "bridge" table,
# forward hook), so it hits every frame between any two hosts, whichever
# way our stack sends (AF_XDP and AF_PACKET bypass the sender's egress
# hooks, so rules there would never see them).
#
#   scripts/netns.sh up ID [impair]   create; print the environment (KEY=VALUE lines)
#   scripts/netns.sh up ID queues N   the same with N transmit and receive queues on each
#                                     end of the veth (libdemi.queues, issue 14)
#   scripts/netns.sh bridge ID N      create N hosts on a bridge (N is 2..60); print
#                                     DEMI_BR_NS_k, DEMI_BR_IF_k, DEMI_BR_IP_k, DEMI_BR_MAC_k
#                                     for each host and DEMI_BR_HUB, DEMI_BR_N
#   scripts/netns.sh env ID           print the environment of an existing topology
#   scripts/netns.sh loss ID PERCENT  drop PERCENT% of frames each way (nftables on the
#                                     linux side's interface, or on the bridge of a
#                                     "bridge" topology; 0 removes the rules)
#   scripts/netns.sh counters ID      "dropped D forwarded F": frames the loss rule of a
#                                     bridge topology dropped and let through so far
#   scripts/netns.sh down ID          remove everything this script created for ID
#
# ID is 1..250; several topologies can coexist. Needs root. Touches nothing
# but the namespaces and interfaces it names; sends nothing anywhere.
set -euo pipefail

usage() { echo "usage: $0 up ID [impair | queues N] | bridge ID N | env ID | loss ID PERCENT | counters ID | down ID" >&2; exit 2; }
[[ $# -ge 2 ]] || usage
cmd=$1 id=$2
[[ $id =~ ^[0-9]+$ && $id -ge 1 && $id -le 250 ]] || { echo "netns: ID must be 1..250" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || { echo "netns: must run as root (namespaces, veth, nftables)" >&2; exit 1; }
for t in ip ethtool; do command -v $t >/dev/null || { echo "netns: '$t' not found (scripts/deps.sh installs it)" >&2; exit 1; }; done

p="dm$id"
ns_a="${p}a" ns_b="${p}b" ns_m="${p}m"
if_a="${p}a" if_b="${p}b" if_ma="${p}ma" if_mb="${p}mb"
ip_a="10.200.$id.1" ip_b="10.200.$id.2"
ns_hub="${p}hub" br="${p}br"

quiet_if() { # NS IF: no offloads, no IPv6, up
  ip netns exec "$1" sysctl -qw "net.ipv6.conf.$2.disable_ipv6=1" 2>/dev/null || true
  ip netns exec "$1" ethtool -K "$2" tx off tso off gso off gro off >/dev/null 2>&1 || true
  ip -n "$1" link set "$2" up
}

print_env() {
  local mac
  mac=$(ip -n "$ns_a" link show "$if_a" | awk '/link\/ether/ {print $2}')
  local mac_b
  mac_b=$(ip -n "$ns_b" link show "$if_b" | awk '/link\/ether/ {print $2}')
  cat <<EOF
DEMI_NS_BYPASS=$ns_a
DEMI_NS_LINUX=$ns_b
DEMI_IF_BYPASS=$if_a
DEMI_IF_LINUX=$if_b
DEMI_IP_BYPASS=$ip_a
DEMI_IP_LINUX=$ip_b
DEMI_MAC_BYPASS=$mac
DEMI_MAC_LINUX=$mac_b
EOF
  if ip netns list | grep -qw "$ns_m"; then
    echo "DEMI_NS_MIDDLE=$ns_m"
    echo "DEMI_IF_MIDDLE_A=$if_ma"
    echo "DEMI_IF_MIDDLE_B=$if_mb"
  fi
}

# The hosts of a bridge topology that exist now, by number.
bridge_hosts() {
  ip netns list | awk -v p="${p}h" '{ n = $1; if (substr(n, 1, length(p)) == p && substr(n, length(p) + 1) ~ /^[0-9]+$/) print substr(n, length(p) + 1) }' | sort -n
}

print_bridge_env() {
  local k n=0 mac
  for k in $(bridge_hosts); do
    mac=$(ip -n "${p}h$k" link show "${p}h$k" | awk '/link\/ether/ {print $2}')
    echo "DEMI_BR_NS_$k=${p}h$k"
    echo "DEMI_BR_IF_$k=${p}h$k"
    echo "DEMI_BR_IP_$k=10.201.$id.$k"
    echo "DEMI_BR_MAC_$k=$mac"
    n=$k
  done
  echo "DEMI_BR_HUB=$ns_hub"
  echo "DEMI_BR_N=$n"
}

down() {
  local ns k
  for ns in "$ns_a" "$ns_b" "$ns_m" "$ns_hub"; do
    ip netns del "$ns" 2>/dev/null || true # deleting a namespace deletes its interfaces
  done
  for k in $(bridge_hosts); do
    ip netns del "${p}h$k" 2>/dev/null || true
  done
}

case $cmd in
up)
  down
  ip netns add "$ns_a"
  ip netns add "$ns_b"
  ip -n "$ns_a" link set lo up
  ip -n "$ns_b" link set lo up
  if [[ ${3:-} == impair ]]; then
    ip netns add "$ns_m"
    ip -n "$ns_m" link set lo up
    ip link add "$if_a" netns "$ns_a" type veth peer name "$if_ma" netns "$ns_m"
    ip link add "$if_b" netns "$ns_b" type veth peer name "$if_mb" netns "$ns_m"
    quiet_if "$ns_m" "$if_ma"
    quiet_if "$ns_m" "$if_mb"
  elif [[ ${3:-} == queues ]]; then
    q=${4:-}
    [[ $q =~ ^[0-9]+$ && $q -ge 1 && $q -le 16 ]] || { echo "netns: queues needs N, 1..16" >&2; exit 2; }
    ip link add "$if_a" numtxqueues "$q" numrxqueues "$q" netns "$ns_a" type veth peer name "$if_b" \
      numtxqueues "$q" numrxqueues "$q" netns "$ns_b"
  else
    ip link add "$if_a" netns "$ns_a" type veth peer name "$if_b" netns "$ns_b"
  fi
  quiet_if "$ns_a" "$if_a"
  quiet_if "$ns_b" "$if_b"
  ip -n "$ns_b" addr add "$ip_b/24" dev "$if_b"
  print_env
  ;;
bridge)
  n=${3:-}
  [[ $n =~ ^[0-9]+$ && $n -ge 2 && $n -le 60 ]] || { echo "netns: bridge needs N, 2..60 hosts" >&2; exit 2; }
  down
  ip netns add "$ns_hub"
  ip -n "$ns_hub" link set lo up
  ip netns exec "$ns_hub" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 2>/dev/null || true
  ip -n "$ns_hub" link add "$br" type bridge stp_state 0 forward_delay 0
  quiet_if "$ns_hub" "$br"
  for ((k = 1; k <= n; k++)); do
    ip netns add "${p}h$k"
    ip -n "${p}h$k" link set lo up
    ip link add "${p}h$k" netns "${p}h$k" type veth peer name "${p}p$k" netns "$ns_hub"
    quiet_if "${p}h$k" "${p}h$k"
    ip -n "$ns_hub" link set "${p}p$k" master "$br"
    quiet_if "$ns_hub" "${p}p$k"
  done
  print_bridge_env
  ;;
env)
  if ip netns list | grep -qw "$ns_hub"; then print_bridge_env; else print_env; fi
  ;;
counters)
  ip netns exec "$ns_hub" nft list table bridge demi_loss 2>/dev/null |
    awk '/counter/ { for (i = 1; i < NF; i++) if ($i == "packets") v[$NF == "drop" ? "d" : "f"] += $(i + 1) }
         END { printf "dropped %d forwarded %d\n", v["d"], v["f"] }'
  ;;
loss)
  pct=${3:?PERCENT}
  [[ $pct =~ ^[0-9]+$ && $pct -le 100 ]] || { echo "netns: PERCENT must be 0..100" >&2; exit 2; }
  command -v nft >/dev/null || { echo "netns: 'nft' not found (scripts/deps.sh installs nftables)" >&2; exit 1; }
  if ip netns list | grep -qw "$ns_hub"; then
    # Every frame one host sends another crosses the bridge's forward
    # hook once: PERCENT% of them are dropped there, counted either way.
    ip netns exec "$ns_hub" nft delete table bridge demi_loss 2>/dev/null || true
    if [[ $pct -gt 0 ]]; then
      ip netns exec "$ns_hub" nft -f - <<EOF
table bridge demi_loss {
  chain drop_some {
    type filter hook forward priority 0; policy accept;
    numgen random mod 100 < $pct counter drop
    counter accept
  }
}
EOF
    fi
    exit 0
  fi
  ip netns exec "$ns_b" nft delete table netdev demi_loss 2>/dev/null || true
  if [[ $pct -gt 0 ]]; then
    # Ingress drops what our stack sends, egress what Linux sends to it:
    # XDP and AF_PACKET on the bypass side bypass that side's hooks.
    ip netns exec "$ns_b" nft -f - <<EOF
table netdev demi_loss {
  chain in {
    type filter hook ingress device "$if_b" priority 0; policy accept;
    numgen random mod 100 < $pct drop
  }
  chain out {
    type filter hook egress device "$if_b" priority 0; policy accept;
    numgen random mod 100 < $pct drop
  }
}
EOF
  fi
  ;;
down)
  down
  ;;
*)
  usage
  ;;
esac
