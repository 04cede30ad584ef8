#!/usr/bin/env bash
# Throughput with 1, 2, ... N instances of one process sharing one device
# (issue 14, libdemi.queues): demi-echo server --threads N on catpowder over
# a veth with N queues (AF_XDP in native mode, and AF_PACKET with
# PACKET_FANOUT), against demi-echo clients on Linux (catnap) in the other
# namespace, and on catnip over net_memif with N queue pairs against
# demi-echo client --threads N on catnip: echo requests per second, TCP
# and UDP, 64 B, BENCH_SCALE_CLIENTS connections or sockets. N runs up to the CPUs the machine has minus one
# for the load generator (at least 2, so that the multi-instance path is
# measured even where it cannot scale). Every configuration runs once per
# round, rounds interleaved; each reports its median round. Results:
# bench/results/scale.json, with the CPU count and, per backend and
# protocol, requests/s per instance count and the ratio to 1 instance.
#
# It reports figures and never judges them; the target (>= 0.9 x N x the
# 1-instance throughput up to 8 instances) needs a machine with >= 8 cores
# plus the load generator's, and the results say so when this one is too
# small.
#
#   bench/scale.sh [BUILD]     (also run by bench/run.sh, so by `make bench`)
#
# Needs root (namespaces, AF_XDP, AF_PACKET): without it, it says so and
# exits 0. Touches only the namespaces of its topology IDs (SCALE_IDS, one
# per instance count, default 98, 99, ...); stops only what it started.
#
# With proto kv (catpowder only), demi-kv --threads N instead of the echo
# server, against Linux redis-benchmark (-c 50 -P 16, SET and GET over
# random keys, BENCH_SCALE_KV_REQUESTS requests): ops/s.
#
# Environment: BENCH_ROUNDS (3), BENCH_SCALE_SECONDS (5), BENCH_SCALE_CLIENTS
# (64), BENCH_SCALE_MAX (instances at most; default as above), BENCH_PROTOS
# ("tcp udp kv"), BENCH_SCALE_KV_REQUESTS (200000), BENCH_SCALE_BACKENDS ("xdp packet memif"), BENCH_RESULTS
# (bench/results), SCALE_IDS ("98 99 100 ...").
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
bench_name="bench: scale"
# shellcheck source=bench/lib.sh
source "$here/lib.sh"

if [[ $(id -u) -ne 0 ]]; then
    echo "bench: scale: skipped: needs root (network namespaces, AF_XDP and AF_PACKET sockets)" >&2
    exit 0
fi
bench_build "${1:-build}"

rounds=${BENCH_ROUNDS:-3}
seconds=${BENCH_SCALE_SECONDS:-5}
clients=${BENCH_SCALE_CLIENTS:-64}
protos=${BENCH_PROTOS:-tcp udp kv}
kv_requests=${BENCH_SCALE_KV_REQUESTS:-200000}
backends=${BENCH_SCALE_BACKENDS:-xdp packet memif}
dev_name() { [[ $1 == memif ]] && echo catnip-memif || echo "catpowder-$1"; }
results=${BENCH_RESULTS:-$repo/bench/results}
cpus=$(nproc)
max=$((cpus - 1))
((max >= 2)) || max=2
((max <= 16)) || max=16
max=${BENCH_SCALE_MAX:-$max}
bench_positive rounds seconds clients max
read -r -a ids <<<"${SCALE_IDS:-$(seq -s ' ' 98 $((98 + max - 1)))}"
((${#ids[@]} >= max)) || die "SCALE_IDS names ${#ids[@]} topologies; $max needed"
bench_need ip timeout python3
demi_echo=$build/demi-echo
[[ -x $demi_echo ]] || die "$demi_echo is not built (run 'make build')"
demi_kv=$build/demi-kv
[[ $protos != *kv* ]] || { [[ -x $demi_kv ]] && command -v redis-benchmark >/dev/null; } ||
    die "BENCH_PROTOS has kv: $demi_kv and redis-benchmark are needed (make build, scripts/deps.sh)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/demi-bench-scale.XXXXXX")
bench_on_exit() {
    local n
    for ((n = 1; n <= max; n++)); do "$repo/scripts/netns.sh" down "${ids[n - 1]}" >/dev/null 2>&1 || true; done
}
bench_traps
for ((n = 1; n <= max; n++)); do
    "$repo/scripts/netns.sh" up "${ids[n - 1]}" queues "$n" >/dev/null
done

port=7500
# run BACKEND N PROTO: one measurement; prints requests/s. BACKEND xdp or
# packet: catpowder in namespace a, the catnap client in b; memif: catnip
# at both ends of a net_memif link with N queue pairs (memif needs as many
# on each side), demi-echo client --threads N.
run() {
    local backend=$1 n=$2 proto=$3 id=${ids[$2 - 1]} udp=() server=() client=() addr
    [[ $proto == kv ]] && { run_kv "$@"; return; }
    [[ $proto == udp ]] && udp=(--udp)
    if [[ $backend == memif ]]; then
        addr=10.79.0.1:$port
        rm -f "$tmp/memif.sock"
        "$repo/scripts/memif-config.sh" server 10.79.0.1 02:00:00:00:79:01 "$tmp/memif.sock" >"$tmp/server.yaml"
        "$repo/scripts/memif-config.sh" client 10.79.0.2 02:00:00:00:79:02 "$tmp/memif.sock" >"$tmp/client.yaml"
        server=(env "CONFIG_PATH=$tmp/server.yaml")
        client=(env "CONFIG_PATH=$tmp/client.yaml" "$demi_echo" client --threads "$n")
    else
        addr=10.200.$id.1:$port
        server=(ip netns exec "dm${id}a" env LIBOS=catpowder "LINUX_INTERFACE_NAME=dm${id}a" "LOCAL_IPV4_ADDR=10.200.$id.1"
            "RAW_SOCKET_BACKEND=$backend" XDP_NATIVE=1)
        client=(ip netns exec "dm${id}b" env LIBOS=catnap "$demi_echo" client)
    fi
    "${server[@]}" "QUEUES=$n" HUGEPAGES=off \
        "$demi_echo" server "${udp[@]}" --threads "$n" --addr "$addr" >"$tmp/server.out" 2>"$tmp/server.err" &
    server_pid=$!
    bench_wait 60 grep -q '^ready' "$tmp/server.out" || { show_log "$tmp/server.err"; die "$backend x$n: the server did not start"; }
    local out
    out=$(HUGEPAGES=off timeout $((seconds + 120)) "${client[@]}" \
        "${udp[@]}" --addr "$addr" --clients "$clients" --seconds "$seconds" --warmup 1000 2>"$tmp/client.err") ||
        { show_log "$tmp/client.err"; die "$backend x$n $proto: the client failed"; }
    kill -INT "$server_pid"
    wait "$server_pid" || { show_log "$tmp/server.err"; die "$backend x$n $proto: the server failed"; }
    server_pid=
    python3 -c 'import json,sys; print(json.loads(sys.argv[1])["rps"])' "$out"
}

# run_kv BACKEND N kv: demi-kv --threads N (the keyspace split across the
# instances) in namespace a, redis-benchmark SET,GET -c 50 -P 16 over
# random keys from namespace b; prints the mean of its SET and GET ops/s.
run_kv() {
    local backend=$1 n=$2 id=${ids[$2 - 1]} addr=10.200.${ids[$2 - 1]}.1
    ip netns exec "dm${id}a" env LIBOS=catpowder "LINUX_INTERFACE_NAME=dm${id}a" "LOCAL_IPV4_ADDR=$addr" \
        "RAW_SOCKET_BACKEND=$backend" XDP_NATIVE=1 "QUEUES=$n" HUGEPAGES=off \
        "$demi_kv" --threads "$n" --addr "$addr:$port" >"$tmp/server.out" 2>"$tmp/server.err" &
    server_pid=$!
    bench_wait 60 grep -q '^ready' "$tmp/server.out" || { show_log "$tmp/server.err"; die "$backend x$n: demi-kv did not start"; }
    ip netns exec "dm${id}b" timeout 600 redis-benchmark -h "$addr" -p "$port" -t set,get -c 50 -P 16 \
        -n "$kv_requests" -r 100000 --csv >"$tmp/kv.csv" 2>"$tmp/kv.err" ||
        { show_log "$tmp/kv.err"; die "$backend x$n kv: redis-benchmark failed"; }
    kill -INT "$server_pid"
    wait "$server_pid" || { show_log "$tmp/server.err"; die "$backend x$n kv: demi-kv failed"; }
    server_pid=
    python3 -c 'import csv,sys; v=[float(r[1]) for r in csv.reader(open(sys.argv[1])) if r and r[0] in ("SET","GET")]; print(sum(v)/len(v))' "$tmp/kv.csv"
}

: >"$tmp/runs"
for ((r = 1; r <= rounds; r++)); do
    for backend in $backends; do
        for proto in $protos; do
            [[ $proto == kv && $backend == memif ]] && continue # no catnip load generator for it here
            for ((n = 1; n <= max; n++)); do
                rps=$(run "$backend" "$n" "$proto")
                echo "$backend $proto $n $r $rps" >>"$tmp/runs"
                echo "bench: scale: round $r: $(dev_name "$backend") $proto, $n instance(s): $rps requests/s" \
                    "$([[ $proto == kv ]] && echo "(demi-kv ops/s)")" >&2
            done
        done
    done
done

mkdir -p "$results"
python3 - "$tmp/runs" "$results/scale.json" "$cpus" "$clients" "$seconds" <<'EOF'
import json, statistics, sys
runs, out, cpus, clients, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
by = {}
for line in open(runs):
    backend, proto, n, r, rps = line.split()
    by.setdefault("catnip-memif" if backend == "memif" else f"catpowder-{backend}", {}).setdefault(proto, {}).setdefault(int(n), []).append(float(rps))
res = {"cpus": cpus, "clients": clients, "seconds": seconds,
       "load_generator": {"catpowder-xdp": "demi-echo client on catnap (Linux TCP/UDP) in the other namespace, same machine",
                          "catpowder-packet": "demi-echo client on catnap (Linux TCP/UDP) in the other namespace, same machine",
                          "catnip-memif": "demi-echo client --threads N on catnip at the other end of the memif link (as many queue pairs as the server), same machine",
                          "kv": "demi-kv --threads N (keyspace split across the instances) against Linux redis-benchmark -t set,get -c 50 -P 16 -r 100000 in the other namespace: ops/s, the mean of SET and GET; catpowder only (over memif the load generator would have to be on catnip)"},
       "runs": {}}
if cpus < 9:
    res["note"] = (f"this machine has {cpus} CPUs: the instances and the load generator share them, so no scaling "
                   "can show; the target (0.9 x N x 1 instance, N up to 8) needs 8 cores for instances plus the load "
                   "generator's")
for dev, protos in by.items():
    for proto, ns in protos.items():
        med = {n: statistics.median(v) for n, v in sorted(ns.items())}
        res["runs"].setdefault(dev, {})[proto] = {
            "requests_per_s": {str(n): round(v) for n, v in med.items()},
            "ratio_to_1": {str(n): round(v / med[1], 3) for n, v in med.items()},
            "target_0.9N": {str(n): round(0.9 * n, 2) for n in med},
        }
json.dump(res, open(out, "w"), indent=1)
print(json.dumps(res, indent=1))
EOF
