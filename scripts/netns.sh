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
#   scripts/netns.sh up ID [impair]   create; print the environment (KEY=VALUE lines)
#   scripts/netns.sh env ID           print the environment of an existing topology
#   scripts/netns.sh loss ID PERCENT  drop PERCENT% of frames each way (nftables on the
#                                     linux side's interface; 0 removes the rules)
#   scripts/netns.sh down ID          remove everything this script created for ID
#
# ID is 1..250; several topologies can coexist. Needs root. Touches nothing
# but the namespaces and interfaces it names; sends nothing anywhere.
set -euo pipefail

usage() { echo "usage: $0 up ID [impair] | env ID | loss ID PERCENT | down ID" >&2; exit 2; }
[[ $# -ge 2 ]] || usage
cmd=$1 id=$2
[[ $id =~ ^[0-9]+$ && $id -ge 1 && $id -le 250 ]] || { echo "netns: ID must be 1..250" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || { echo "netns: must run as root (namespaces, veth, nftables)" >&2; exit 1; }
for t in ip ethtool; do command -v $t >/dev/null || { echo "netns: '$t' not found (scripts/deps.sh installs it)" >&2; exit 1; }; done

p="dm$id"
ns_a="${p}a" ns_b="${p}b" ns_m="${p}m"
if_a="${p}a" if_b="${p}b" if_ma="${p}ma" if_mb="${p}mb"
ip_a="10.200.$id.1" ip_b="10.200.$id.2"

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

down() {
  for ns in "$ns_a" "$ns_b" "$ns_m"; do
    ip netns del "$ns" 2>/dev/null || true # deleting a namespace deletes its interfaces
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
  else
    ip link add "$if_a" netns "$ns_a" type veth peer name "$if_b" netns "$ns_b"
  fi
  quiet_if "$ns_a" "$if_a"
  quiet_if "$ns_b" "$if_b"
  ip -n "$ns_b" addr add "$ip_b/24" dev "$if_b"
  print_env
  ;;
env)
  print_env
  ;;
loss)
  pct=${3:?PERCENT}
  [[ $pct =~ ^[0-9]+$ && $pct -le 100 ]] || { echo "netns: PERCENT must be 0..100" >&2; exit 2; }
  command -v nft >/dev/null || { echo "netns: 'nft' not found (scripts/deps.sh installs nftables)" >&2; exit 1; }
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
