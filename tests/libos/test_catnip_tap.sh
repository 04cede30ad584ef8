#!/usr/bin/env bash
# catnip on DPDK's net_tap, the one virtual port here with a receive
# interrupt: an idle catnip sleeps on it instead of polling. In a network
# namespace of its own, demi-echo's server runs on catnip over the tap
# interface, and the kernel's side of the tap (a Linux address in the same
# namespace) is the client's: catnap's demi-echo, every byte checked.
# Checked: echoes before and after idle pauses (the interrupt wakes the
# server), the port says it sleeps on its interrupt, and the idle server
# uses under a tenth of the CPU time that passes (a polling one would use
# all it is given). Needs root (namespaces, /dev/net/tun).
set -euo pipefail
build=${DEMI_BUILD:?DEMI_BUILD names the build directory}
echo_bin=$build/demi-echo
[[ -x $echo_bin ]] || { echo "demi-echo not built in $build"; exit 1; }
if [[ $(id -u) -ne 0 ]]; then
  echo "skip: not root (network namespaces and a tap device need it)"
  exit 77
fi
[[ -c /dev/net/tun ]] || { echo "skip: no /dev/net/tun"; exit 77; }
tmp=$(mktemp -d)
ns=dmtap$$
pid=
cleanup() {
  [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
fails=0
bad() {
  echo "FAIL: $*"
  fails=$((fails + 1))
}
ip netns add "$ns"
ip -n "$ns" link set lo up
cat >"$tmp/server.yaml" <<YAML
demikernel:
  local_ipv4_addr: 10.203.0.2
dpdk:
  eal_init: ["--no-pci", "--no-huge", "-m", "256", "--vdev=net_tap0,iface=dtap0,mac=02:00:00:00:03:02"]
libdemi:
  libos: catnip
YAML
ip netns exec "$ns" env DEMI_LOG=info CONFIG_PATH="$tmp/server.yaml" HUGEPAGES=off \
  "$echo_bin" server --addr 10.203.0.2:7000 >"$tmp/server.log" 2>&1 &
pid=$!
# Hang guard only: wait for "ready" as long as the server lives, up to 60 s.
for ((i = 0; i < 600; i++)); do
  grep -q '^ready' "$tmp/server.log" && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if ! grep -q '^ready' "$tmp/server.log"; then
  echo "FAIL: the catnip server on net_tap did not start:"
  sed 's/^/    | /' "$tmp/server.log" | tail -20
  exit 1
fi
ip -n "$ns" addr add 10.203.0.1/24 dev dtap0
ip -n "$ns" link set dtap0 up

client() { # ARGS...: catnap's demi-echo client in the namespace
  ip netns exec "$ns" env LIBOS=catnap timeout -k 5 120 "$echo_bin" client --addr 10.203.0.2:7000 "$@"
}
if out=$(client --iters 2000 --warmup 100 2>&1); then
  echo "busy: $(tail -1 <<<"$out")"
else
  bad "echoes over the tap: $out"
fi
# After each pause the server has slept; only the interrupt wakes it.
if out=$(client --iters 3 --warmup 10 --pause 300 2>&1); then
  echo "after 300 ms pauses: $(tail -1 <<<"$out")"
else
  bad "echoes after pauses: $out"
fi
grep -q "idle wait sleeps on the receive interrupt" "$tmp/server.log" ||
  bad "the port does not say that it sleeps on its receive interrupt"

# CPU time of all the server's threads (ns), from schedstat.
cpu_ns() { cat /proc/"$pid"/task/*/schedstat | awk '{s += $1} END {printf "%d", s}'; }
c0=$(cpu_ns) t0=$(date +%s%N)
sleep 2
c1=$(cpu_ns) t1=$(date +%s%N)
used=$((c1 - c0)) wall=$((t1 - t0))
echo "idle server: $((used / 1000)) us of CPU in $((wall / 1000000)) ms"
((used * 10 < wall)) || bad "the idle server used $((used / 1000)) us of CPU in $((wall / 1000000)) ms (a tenth or more)"

kill "$pid"
wait "$pid" || true
pid=
grep -q "rx_frames=" "$tmp/server.log" || bad "the server's counters are missing from its log"
if ((fails)); then
  sed 's/^/    | /' "$tmp/server.log" | grep -v "^    | libdemi: debug" | tail -20
  exit 1
fi
echo "catnip/net_tap: ok"
