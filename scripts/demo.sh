#!/usr/bin/env bash
# The main demo: a demi-echo server and client on catnap over loopback.
# Prints a short summary of the client's JSON line for TCP and UDP.
#   scripts/demo.sh [BUILD_DIR]
set -euo pipefail
build=${1:-build}
echo_bin="$build/demi-echo"
[[ -x $echo_bin ]] || { echo "demo: $echo_bin not built (run make)" >&2; exit 1; }
export LIBOS=${LIBOS:-catnap}
iters=${DEMO_ITERS:-20000}
pids=()
cleanup() { for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

run() { # proto flag
  local proto=$1 flag=$2 out ready line
  out=$(mktemp)
  "$echo_bin" server $flag --addr 127.0.0.1:0 >"$out" 2>&1 &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 100); do
    ready=$(grep -m1 '^ready ' "$out" || true)
    [[ -n $ready ]] && break
    kill -0 "$pid" 2>/dev/null || { cat "$out" >&2; echo "demo: server failed" >&2; exit 1; }
    sleep 0.1
  done
  [[ -n $ready ]] || { echo "demo: server not ready" >&2; exit 1; }
  local addr=${ready#ready }
  line=$("$echo_bin" client $flag --addr "$addr" --size 64 --iters "$iters")
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
