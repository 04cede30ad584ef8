#!/usr/bin/env bash
# Where a catnip echo server's time goes, layer by layer (issue 15's cycle
# budget). demi-echo serves 64 B echoes over DPDK net_memif (server on
# CPU 1, client on CPU 0, each pinned by its EAL's -l) while `perf record`
# samples the server's CPU (cpu-clock: this VM has no hardware counters);
# each sampled function is put in a layer by the source file it comes from
# (`nm -l` on the build's libdemi.so, which CMake builds with debug
# information), or by its library (DPDK's, libc, the kernel, demi-echo).
# Two loads per protocol:
#   1 connection   one echo in flight: the server also polls while the
#                  client is busy, so "device rx" and the runtime loop hold
#                  idle polling as well as work;
#   N connections  (PROFILE_CLIENTS, 16) the server saturated: every poll
#                  finds work, so the time per echo is the work per echo.
# Per echo = the layer's share of the samples x the server's CPU time over
# the echoes the client counted (warm-up included), in ns and in cycles at
# the clock rate /proc/cpuinfo reports. It reports, never judges.
#
#   bench/catnip_profile.sh [BUILD]
# Environment: PROFILE_SECONDS (3), PROFILE_CLIENTS (16), PROFILE_PROTOS
#   ("tcp udp"), PROFILE_HZ (10000), BENCH_SERVER_CPU (1), BENCH_CLIENT_CPU
#   (0), BENCH_RESULTS (<repo>/bench/results: writes catnip_profile.json).
# Needs root (memif) and perf; says so and exits 0 without them.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
bench_name=bench/catnip_profile
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
bench_build "${1:-build}"
secs=${PROFILE_SECONDS:-3}
nconn=${PROFILE_CLIENTS:-16}
protos=${PROFILE_PROTOS:-tcp udp}
hz=${PROFILE_HZ:-10000}
scpu=${BENCH_SERVER_CPU:-1}
ccpu=${BENCH_CLIENT_CPU:-0}
results=${BENCH_RESULTS:-$repo/bench/results}
bench_positive secs nconn hz

if [[ $(id -u) -ne 0 ]]; then
    echo "$bench_name: skipped: DPDK's memif needs root here" >&2
    exit 0
fi
if ! command -v perf >/dev/null || ! perf record -q -e cpu-clock -o /dev/null true 2>/dev/null; then
    echo "$bench_name: skipped: perf cannot record here (scripts/deps.sh installs linux-perf; a container may forbid perf_event_open)" >&2
    exit 0
fi
bench_need nm python3
[[ -x $build/demi-echo ]] || die "$build/demi-echo is not built (make build)"
lib=$(readlink -f "$build/libdemi.so")

tmp=$(mktemp -d "${TMPDIR:-/tmp}/demi-catnip-profile.XXXXXX")
perf_pid=
bench_on_exit() {
    [[ -z $perf_pid ]] || kill -INT "$perf_pid" 2>/dev/null || true
}
bench_traps

# The source file of every function in libdemi.so: "name file" lines.
nm -l --defined-only "$lib" 2>/dev/null | awk 'NF >= 4 && $2 ~ /^[tTwW]$/ { sub(/:[0-9]+$/, "", $4); print $3, $4 }' \
    >"$tmp/syms"
[[ -s $tmp/syms ]] || die "nm -l found no source files in $lib (built without debug information?)"

# profile TAG PROTO CONNS: one run; $tmp/TAG.{report,json,cpu}.
profile() {
    local tag=$1 proto=$2 conns=$3 udp=()
    [[ $proto == udp ]] && udp=(--udp)
    local sock=$tmp/$tag.sock
    bench_memif_config "$scpu" server 10.77.0.1 02:00:00:00:77:01 "$sock" >"$tmp/s.yaml"
    bench_memif_config "$ccpu" client 10.77.0.2 02:00:00:00:77:02 "$sock" >"$tmp/c.yaml"
    CONFIG_PATH=$tmp/s.yaml "$build/demi-echo" server "${udp[@]}" --addr 10.77.0.1:7000 \
        >"$tmp/$tag.sout" 2>"$tmp/$tag.serr" &
    server_pid=$!
    bench_wait 60 grep -qs '^ready' "$tmp/$tag.sout" || {
        show_log "$tmp/$tag.serr"
        die "$tag: the server never said ready"
    }
    local t0
    t0=$(awk '{print $14 + $15}' "/proc/$server_pid/stat")
    perf record -q -e cpu-clock -F "$hz" -p "$server_pid" -o "$tmp/$tag.data" 2>"$tmp/$tag.perf.err" &
    perf_pid=$!
    sleep 0.2
    CONFIG_PATH=$tmp/c.yaml timeout 600 "$build/demi-echo" client "${udp[@]}" --addr 10.77.0.1:7000 \
        --size 64 --clients "$conns" --seconds "$secs" --warmup 1000 >"$tmp/$tag.cout" 2>"$tmp/$tag.cerr" || {
        show_log "$tmp/$tag.cerr"
        die "$tag: the client failed"
    }
    kill -INT "$perf_pid"
    wait "$perf_pid" || true
    perf_pid=
    awk -v t0="$t0" -v hz="$(getconf CLK_TCK)" '{printf "%.3f\n", ($14 + $15 - t0) / hz}' \
        "/proc/$server_pid/stat" >"$tmp/$tag.cpu"
    bench_stop_server "$tag: the server" "$tmp/$tag.serr"
    grep '^{' "$tmp/$tag.cout" | tail -1 >"$tmp/$tag.json"
    [[ -s $tmp/$tag.json ]] || die "$tag: no JSON result from the client"
    perf report -i "$tmp/$tag.data" --no-children --sort dso,sym --stdio -q 2>/dev/null >"$tmp/$tag.report"
    [[ -s $tmp/$tag.report ]] || die "$tag: perf report printed nothing"
    echo "$bench_name: $tag: $(cat "$tmp/$tag.json"), server CPU $(cat "$tmp/$tag.cpu") s" >&2
}

runs=()
for proto in $protos; do
    for conns in 1 "$nconn"; do
        profile "$proto.$conns" "$proto" "$conns"
        runs+=("$proto.$conns")
    done
done

mkdir -p "$results"
mhz=$(awk -F: '/^cpu MHz/ {print $2; exit}' /proc/cpuinfo)
python3 - "$tmp" "$tmp/syms" "${mhz:-0}" "$results/catnip_profile.json" "$(basename "$lib")" "${runs[@]}" <<'EOF'
import json, os, re, sys, time
tmp, symf, mhz, out, libname = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4], sys.argv[5]
runs = sys.argv[6:]
src = {}
for line in open(symf):
    name, path = line.split(None, 1)
    src.setdefault(name, path.strip())

# Layers by source file (libdemi) or by library.
FILES = [
    ("device (DPDK PMD + our wrapper)", ("src/dev/dpdk.c",)),
    ("netif (device glue, frame pools)", ("src/dev/netif.c",)),
    ("Ethernet / ARP / IPv4 / checksums", ("src/inet/eth.c", "src/inet/arp.c", "src/inet/ipv4.c",
                                         "src/inet/ipfrag.c", "src/inet/inet.c", "src/inet/csum.c")),
    ("TCP input and state", ("src/inet/tcp.c", "src/inet/tcp_sack.c", "src/inet/tcp_cc.c",
                             "src/inet/tcp_cookie.c")),
    ("TCP output", ("src/inet/tcp_out.c",)),
    ("UDP / sockets", ("src/inet/udp.c", "src/inet/sock.c")),
    ("scheduler, runtime loop, timers", ("src/core/sched.c", "src/core/runtime.c", "src/core/timer.c",
                                         "src/core/clock.c")),
    ("PDPIX API (push/pop/wait, qtokens)", ("src/api/", "src/core/qtable.c")),
    ("heap (buffers, refcounts)", ("src/mem/",)),
    ("catnip libOS", ("src/libos/",)),
]

def layer(dso, sym):
    if dso.startswith("librte_") or dso.startswith("rte_"):
        return "device (DPDK PMD + our wrapper)"
    if dso == "demi-echo":
        return "application (demi-echo)"
    if dso.startswith("[kernel") or dso == "[unknown]":
        return "kernel (ticks, interrupts)"
    if dso.startswith("libc") or dso.startswith("ld-linux"):
        return "libc (memcpy, ...)"
    if dso == libname or dso.startswith("libdemi"):
        f = src.get(sym, "")
        for name, files in FILES:
            if any(p in f for p in files):
                return name
        return "libdemi, other"
    return "other (" + dso + ")"

order = ["device (DPDK PMD + our wrapper)", "netif (device glue, frame pools)", "Ethernet / ARP / IPv4 / checksums",
         "TCP input and state", "TCP output", "UDP / sockets", "scheduler, runtime loop, timers",
         "PDPIX API (push/pop/wait, qtokens)", "heap (buffers, refcounts)", "catnip libOS", "libdemi, other",
         "application (demi-echo)", "libc (memcpy, ...)", "kernel (ticks, interrupts)"]
line_re = re.compile(r"^\s*([0-9.]+)%\s+(\S+)\s+\[(.)\]\s+(.*)$")
res = {"benchmark": "catnip_profile", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
       "cpu_mhz": mhz, "runs": {}}
for r in runs:
    client = json.load(open(f"{tmp}/{r}.json"))
    cpu_s = float(open(f"{tmp}/{r}.cpu").read())
    echoes = client["n"] + 1000 * client["clients"]
    shares, top = {}, []
    for line in open(f"{tmp}/{r}.report"):
        m = line_re.match(line)
        if not m:
            continue
        pct, dso, sym = float(m.group(1)), m.group(2), m.group(4).strip()
        ly = layer(dso, sym)
        shares[ly] = shares.get(ly, 0.0) + pct
        top.append((pct, dso, sym, ly))
    total = sum(shares.values()) or 1.0
    ns_echo = cpu_s * 1e9 / echoes
    layers = {}
    for ly in order + sorted(set(shares) - set(order)):
        if ly in shares:
            share = shares[ly] / total
            layers[ly] = {"share": round(share, 4), "ns_per_echo": round(share * ns_echo, 1),
                          "cycles_per_echo": round(share * ns_echo * mhz / 1000)}
    res["runs"][r] = {"client": client, "server_cpu_s": cpu_s, "echoes": echoes,
                      "ns_per_echo": round(ns_echo, 1), "cycles_per_echo": round(ns_echo * mhz / 1000),
                      "layers": layers,
                      "top": [{"pct": p, "dso": d, "sym": s, "layer": l} for p, d, s, l in sorted(top, reverse=True)[:25]]}
with open(out + ".tmp", "w") as f:
    json.dump(res, f, indent=1)
os.replace(out + ".tmp", out)

print(f"\nserver time per echo by layer (cpu-clock samples; cycles at {mhz:.0f} MHz):")
print(f"{'layer':<38}" + "".join(f"{r:>16}" for r in runs))
print(f"{'':<38}" + "".join(f"{'ns (cycles)':>16}" for r in runs))
for ly in order + sorted({l for r in runs for l in res['runs'][r]['layers']} - set(order)):
    cells = []
    for r in runs:
        v = res["runs"][r]["layers"].get(ly)
        cells.append(f"{v['ns_per_echo']:>7.1f} ({v['cycles_per_echo']:>5})" if v else f"{'-':>16}")
    print(f"{ly:<38}" + "".join(f"{c:>16}" for c in cells))
print(f"{'total':<38}" + "".join(f"{res['runs'][r]['ns_per_echo']:>7.1f} ({res['runs'][r]['cycles_per_echo']:>5})"
                                 .rjust(16) for r in runs))
print(f"{'echoes per second (client)':<38}" + "".join(f"{res['runs'][r]['client']['rps']:>16.0f}" for r in runs))
print(f"\nwrote {out}")
EOF
