# shellcheck shell=bash
# Sourced, not run: how a libdemi program runs on the bypass side of a
# scripts/netns.sh topology, one "mode" per way of running our stack.
# Shared by tests/interop/test_linux_interop.sh, tests/kv/test_kv_bypass.sh
# and bench/kv_bypass.sh, so that every one of them runs a mode alike.
#
#   catpowder-xdp      LIBOS=catpowder over AF_XDP (copy mode on veth)
#   catpowder-packet   LIBOS=catpowder over AF_PACKET (TPACKET_V2)
#   catnip-afxdp       LIBOS=catnip, DPDK's net_af_xdp vdev on the interface
#   catnip-afpacket    LIBOS=catnip, DPDK's net_af_packet vdev
#
# bypass_modes                       the modes, one word each
# bypass_family MODE                 prints the socket family MODE needs: xdp | packet
# bypass_env MODE IF IP DIR [CPU]    prints KEY=VALUE words for a libdemi process
#     owning IP on interface IF. catnip's EAL arguments go into a config
#     file written in DIR (catnip-IF.yaml); with CPU, catnip's EAL puts its
#     polling thread on CPU (-l CPU; pin catpowder with taskset instead:
#     catnip's EAL would undo a taskset, and its interrupt thread must not
#     share the polling thread's CPU, see bench/catnip.sh).
# bypass_socket_check MODE           0 if the kernel can make MODE's raw
#     socket; 2 if it lacks the family altogether (EAFNOSUPPORT: the caller
#     skips); 1 on any other error. The reason is in $bypass_why.
# bypass_topology up|env ID [ARG...] runs scripts/netns.sh up|env ID [ARG...] and sets
#     ns_a, if_a, ip_a, mac_a (the bypass side), ns_b, if_b, ip_b, mac_b
#     (the Linux side) and ns_m (the impairment bridge's namespace, if any)
#     from the KEY=VALUE lines it prints; returns 1 when they name no bypass
#     namespace and address.
# forget PID                         takes PID out of the caller's pids array
#     (the processes its cleanup stops): it is no longer ours to stop.
# stop_pid PID                       stops a process this shell started:
#     SIGTERM, then SIGKILL after 5 s, and reaps it.

bypass_modes() {
  echo "catpowder-xdp catpowder-packet catnip-afxdp catnip-afpacket"
}

bypass_family() {
  case $1 in
  catpowder-xdp | catnip-afxdp) echo xdp ;;
  catpowder-packet | catnip-afpacket) echo packet ;;
  *) return 1 ;;
  esac
}

bypass_env() {
  local mode=$1 ifname=$2 ip=$3 dir=$4 cpu=${5:-}
  case $mode in
  catpowder-xdp | catpowder-packet)
    echo "LIBOS=catpowder LINUX_INTERFACE_NAME=$ifname LOCAL_IPV4_ADDR=$ip RAW_SOCKET_BACKEND=${mode#catpowder-}"
    ;;
  catnip-afxdp | catnip-afpacket)
    # The EAL's arguments have spaces: a config file per interface.
    local vdev=net_af_xdp0,iface=$ifname,start_queue=0,queue_count=1 conf=$dir/catnip-$ifname.yaml lcores=
    [[ $mode == catnip-afpacket ]] && vdev=net_af_packet0,iface=$ifname
    [[ -n $cpu ]] && lcores=", \"-l\", \"$cpu\""
    printf 'demikernel:\n  local_ipv4_addr: %s\ndpdk:\n  eal_init: ["--no-pci", "--no-huge", "-m", "256"%s, "--vdev=%s"]\nlibdemi:\n  libos: catnip\n' \
      "$ip" "$lcores" "$vdev" >"$conf"
    # Under AddressSanitizer: DPDK 22.11's net_af_xdp leaks libxdp's UMEM
    # handle (tests/common/lsan-dpdk.supp says why; nothing else is
    # suppressed). Without ASan the variable is ignored.
    local supp=
    [[ $mode == catnip-afxdp ]] &&
      supp=" LSAN_OPTIONS=suppressions=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/common/lsan-dpdk.supp"
    echo "LIBOS=catnip CONFIG_PATH=$conf$supp"
    ;;
  *) return 1 ;;
  esac
}

bypass_why=
bypass_socket_check() {
  local fam
  case $(bypass_family "$1") in
  xdp) fam=44 ;;
  packet) fam=17 ;;
  *)
    bypass_why="unknown mode '$1'"
    return 1
    ;;
  esac
  if ! bypass_why=$(python3 -c "import socket; socket.socket($fam, socket.SOCK_RAW, 0).close()" 2>&1); then
    [[ $bypass_why == *"Address family not supported"* ]] && return 2
    return 1
  fi
  return 0
}

# bypass_require MODE: for a test, MODE's socket family must open: exits 77
# (skip) when this kernel has no such family, 1 when it fails otherwise.
bypass_require() {
  local rc=0
  bypass_socket_check "$1" || rc=$?
  case $rc in
  0) ;;
  2)
    echo "skip: this kernel has no $(bypass_family "$1") sockets ($bypass_why)"
    exit 77
    ;;
  *)
    echo "FAIL: cannot open a $(bypass_family "$1") socket: $bypass_why"
    exit 1
    ;;
  esac
}

bypass_topology() {
  local k v
  while IFS='=' read -r k v; do
    case $k in
    DEMI_NS_BYPASS) ns_a=$v ;;
    DEMI_NS_LINUX) ns_b=$v ;;
    DEMI_IF_BYPASS) if_a=$v ;;
    DEMI_IF_LINUX) if_b=$v ;;
    DEMI_IP_BYPASS) ip_a=$v ;;
    DEMI_IP_LINUX) ip_b=$v ;;
    DEMI_MAC_BYPASS) mac_a=$v ;;
    DEMI_MAC_LINUX) mac_b=$v ;;
    DEMI_NS_MIDDLE) ns_m=$v ;;
    esac
  done < <("$(dirname "${BASH_SOURCE[0]}")/netns.sh" "$@")
  [[ -n ${ns_a:-} && -n ${ip_a:-} ]]
}

forget() {
  local keep=() p
  for p in "${pids[@]}"; do
    [[ $p == "$1" ]] || keep+=("$p")
  done
  pids=("${keep[@]}")
}

# wait_for FILE PATTERN SECONDS PID: FILE gets a line matching PATTERN
# (grep -E) while PID lives, within SECONDS (a bound for a broken run, not a
# measurement).
wait_for() {
  local file=$1 pat=$2 secs=$3 pid=$4 i
  for ((i = 0; i < secs * 10; i++)); do
    grep -qE "$pat" "$file" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  grep -qE "$pat" "$file" 2>/dev/null
}

# wait_exit PID SECONDS: until PID has exited (0), or SECONDS have passed
# (1). Reap it with wait afterwards.
wait_exit() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.1
  done
  ! kill -0 "$1" 2>/dev/null
}

stop_pid() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# preload_env BUILD: the environment that runs an unmodified program on the
# stack through BUILD/libdemi-posix.so (issue 13). In an AddressSanitizer
# build (DEMI_SANITIZED=1) the ASan runtime is preloaded first, as an
# uninstrumented program needs; leak checking is off there, since every
# allocation the program itself never frees would be reported as ours.
preload_env() {
  local lib=$1/libdemi-posix.so
  if [[ ${DEMI_SANITIZED:-0} == 1 ]]; then
    echo "LD_PRELOAD=$(gcc -print-file-name=libasan.so):$lib ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=0"
  else
    echo "LD_PRELOAD=$lib"
  fi
}
