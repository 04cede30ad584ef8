#!/usr/bin/env bash
# The main demo: a demi-echo server and client on catnap over loopback;
# then, as root, the same programs on catnip: libdemi's own TCP/IP stack on
# DPDK, two processes joined by net_memif (shared memory, no kernel on the
# packet path). Prints a short summary of each client's JSON line.
#   scripts/demo.sh [BUILD_DIR]
set -euo pipefail
build=${1:-build}
echo_bin="$build/demi-echo"
[[ -x $echo_bin ]] || { echo "demo: $echo_bin not built (run make)" >&2; exit 1; }
export LIBOS=${LIBOS:-catnap}
# Without free hugepages the heap says so once per process; the demo knows.
if [[ -z ${HUGEPAGES:-} ]] && ! awk '/HugePages_Free/ {exit !($2 > 0)}' /proc/meminfo; then
  export HUGEPAGES=off
fi
iters=${DEMO_ITERS:-20000}
pids=()
cleanup() { for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

run() { # proto flag [server-env client-env addr]
  local proto=$1 flag=$2 senv=${3:-} cenv=${4:-} addr=${5:-127.0.0.1:0} out ready line
  out=$(mktemp)
  # shellcheck disable=SC2086
  env $senv "$echo_bin" server $flag --addr "$addr" >"$out" 2>&1 &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 100); do
    ready=$(grep -m1 '^ready ' "$out" || true)
    [[ -n $ready ]] && break
    kill -0 "$pid" 2>/dev/null || { cat "$out" >&2; echo "demo: server failed" >&2; exit 1; }
    sleep 0.1
  done
  [[ -n $ready ]] || { echo "demo: server not ready" >&2; exit 1; }
  addr=${ready#ready }
  # shellcheck disable=SC2086
  line=$(env $cenv "$echo_bin" client $flag --addr "$addr" --size 64 --iters "$iters")
  kill -INT "$pid"; wait "$pid" || true
  rm -f "$out"
  python3 - "$line" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
print(f"  {r['proto'].upper()} echo, {r['size']} B, {r['n']} round trips on {r['libos']}: "
      f"p50 {r['p50_us']:.1f} us, p99 {r['p99_us']:.1f} us, p99.9 {r['p999_us']:.1f} us, "
      f"{r['rps']:.0f} round trips/s (every byte checked)")
PY
  echo "  raw: $line"
}

echo "libdemi demo: demi-echo server and client over loopback, LIBOS=$LIBOS"
run tcp ""
run udp --udp

if [[ $(id -u) -ne 0 ]]; then
  echo "(catnip over DPDK net_memif: skipped, it needs root here)"
  exit 0
fi
tmp=$(mktemp -d)
trap 'cleanup; rm -rf "$tmp"' EXIT
conf() { # ROLE IP MAC
  "$(dirname "$0")/memif-config.sh" "$1" "$2" "$3" "$tmp/memif.sock"
}
conf server 10.77.0.1 02:00:00:00:77:01 >"$tmp/server.yaml"
conf client 10.77.0.2 02:00:00:00:77:02 >"$tmp/client.yaml"
echo "catnip: libdemi's TCP/IP stack on DPDK, server and client joined by net_memif (no kernel on the path)"
run tcp "" "LIBOS=catnip CONFIG_PATH=$tmp/server.yaml" "LIBOS=catnip CONFIG_PATH=$tmp/client.yaml" 10.77.0.1:7000
rm -f "$tmp/memif.sock"
run udp --udp "LIBOS=catnip CONFIG_PATH=$tmp/server.yaml" "LIBOS=catnip CONFIG_PATH=$tmp/client.yaml" 10.77.0.1:7000
