#!/usr/bin/env bash
# Reserves 2 MiB hugepages for libdemi's heap (and DPDK), and mounts
# hugetlbfs at /dev/hugepages if nothing is mounted there. Needs root.
# Installed as demi-hugepages (the name libdemi's hint gives).
#   demi-hugepages [PAGES]    reserve PAGES pages in all (default 512 = 1 GiB)
#   demi-hugepages --status   show what is reserved and free
#   demi-hugepages --release  give every unused reserved page back
set -euo pipefail
nr=/proc/sys/vm/nr_hugepages
status() {
  grep -E 'HugePages_(Total|Free)|Hugepagesize' /proc/meminfo
  mount -t hugetlbfs | sed 's/^/mounted: /' || true
}
case ${1:-} in
  --status) status; exit 0 ;;
  --release) want=0 ;;
  "") want=512 ;;
  *) [[ $1 =~ ^[0-9]+$ ]] || { echo "usage: $0 [PAGES|--status|--release]" >&2; exit 2; }; want=$1 ;;
esac
if [[ $(id -u) -ne 0 ]]; then
  echo "hugepages: must run as root (writes $nr)" >&2
  exit 1
fi
echo "$want" >"$nr"
got=$(cat "$nr")
if [[ $want -gt 0 ]] && ! mountpoint -q /dev/hugepages; then
  mkdir -p /dev/hugepages
  mount -t hugetlbfs -o pagesize=2M nodev /dev/hugepages
fi
if [[ $got -lt $want ]]; then
  echo "hugepages: asked for $want pages, the kernel could reserve $got (memory is fragmented or short)" >&2
  status
  exit 1
fi
status
