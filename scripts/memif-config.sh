#!/usr/bin/env bash
# Prints a catnip configuration (YAML) for one end of a DPDK net_memif link
# between two processes: the memif server or client, on socket file SOCKET,
# with libdemi's stack at IP and the port's MAC set to MAC. Memory: 256 MiB
# of 4 KiB pages (--no-huge), unless HUGE=1 leaves the EAL its default
# (hugepages, --in-memory). EAL_EXTRA adds EAL arguments (e.g. "-l 1": the
# main lcore, which pins the polling thread to CPU 1 and keeps the EAL's
# interrupt thread off it). MTU=N (above 1500) asks for jumbo frames:
# inetstack_config.mtu N with enable_jumbo_frames, and memif packet buffers
# (bsize) that hold a whole frame, which catnip requires (DPDK 22.11's memif
# corrupts frames that span buffers). Used by the tests, the benches and
# the demo.
#   scripts/memif-config.sh server|client IP MAC SOCKET
set -euo pipefail
[[ $# -eq 4 && ($1 == server || $1 == client) ]] || {
  echo "usage: $0 server|client IP MAC SOCKET" >&2
  exit 2
}
mem='"--no-huge", "-m", "256", '
[[ ${HUGE:-0} == 1 ]] && mem=
for a in ${EAL_EXTRA:-}; do mem+="\"$a\", "; done
mtu=${MTU:-1500} vdev_extra=
[[ $mtu =~ ^[0-9]+$ ]] || { echo "$0: MTU=$mtu is not a number" >&2; exit 2; }
((mtu > 1500)) && vdev_extra=",bsize=$(((mtu + 14 + 1023) / 1024 * 1024))"
cat <<YAML
demikernel:
  local_ipv4_addr: $2
dpdk:
  eal_init: ["--no-pci", $mem"--vdev=net_memif0,role=$1,socket=$4,socket-abstract=no,mac=$3$vdev_extra"]
libdemi:
  libos: catnip
YAML
if ((mtu > 1500)); then
  cat <<YAML
inetstack_config:
  mtu: $mtu
  enable_jumbo_frames: true
YAML
fi
