#!/usr/bin/env bash
# Durable writes: redis-benchmark -t set against demi-kv --aof (catnap, a
# cattree log) and against redis-server 7 with `appendonly yes`,
# `appendfsync always`, both writing their log in the same temporary
# directory (same file system), in the same run: server on one CPU,
# redis-benchmark on another, -c 1 and -c 50 -P 16 (and -c 50). Each round
# runs every configuration on both servers, interleaved, each on a fresh
# server with an empty log; each figure is the round with the median ops/s.
# Writes bench/results/kv_aof.json (kv_aof_unpinned.json with
# BENCH_SERVER_CPU=none) and prints a table. Reports, never
# judges; stops only the processes it started, by PID.
#
#   bench/kv_aof.sh [BUILD]         (BUILD defaults to "build")
#
# Environment:
#   BENCH_KV_ROUNDS=3            rounds
#   BENCH_KV_N1=5000             requests with -c 1
#   BENCH_KV_N50=50000           requests with -c 50
#   BENCH_KV_NP=400000           requests with -c 50 -P 16
#   BENCH_KV_KEYSPACE=100000     -r
#   BENCH_KV_SIZE=3              -d
#   BENCH_SERVER_CPU=1 / BENCH_CLIENT_CPU=0   (BENCH_SERVER_CPU=none: servers unpinned)
#   BENCH_AOF_DIR=$TMPDIR        where both logs are written (same file system)
#   BENCH_RESULTS=<repo>/bench/results
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
bench_name=bench/kv_aof
# shellcheck source=bench/lib.sh
source "$here/lib.sh"

bench_build "${1:-build}"
rounds=${BENCH_KV_ROUNDS:-3}
n1=${BENCH_KV_N1:-5000}
n50=${BENCH_KV_N50:-50000}
np=${BENCH_KV_NP:-400000}
keyspace=${BENCH_KV_KEYSPACE:-100000}
size=${BENCH_KV_SIZE:-3}
server_cpu=${BENCH_SERVER_CPU:-1}
client_cpu=${BENCH_CLIENT_CPU:-0}
results=${BENCH_RESULTS:-$repo/bench/results}
demi_kv=$build/demi-kv
redis_server=redis-server
bench_positive rounds n1 n50 np keyspace size
bench_need taskset timeout python3 redis-benchmark redis-cli redis-server
[[ -x $demi_kv ]] || die "demi-kv not built: $demi_kv (run 'make build')"
if [[ $server_cpu == none ]]; then
    server_pin=()
    bench_cpus "$client_cpu"
else
    server_pin=(taskset -c "$server_cpu")
    bench_cpus "$server_cpu" "$client_cpu"
fi

tmp=$(mktemp -d "${BENCH_AOF_DIR:-${TMPDIR:-/tmp}}/demi-bench-kv-aof.XXXXXX")
bench_traps

# run ROUND CONFIG NAME TAG ARG...: one redis-benchmark -t set run
# (bench_kv_rounds) on a freshly started server with an empty log.
run() {
    local r=$1 cfg=$2 name=$3 tag=$4
    shift 4
    echo "bench/kv_aof: round $r, $cfg, $name: redis-benchmark $* -t set -r $keyspace -d $size" >&2
    if [[ $name == demi-kv ]]; then
        bench_kv_start "$name" "$tag" --aof "$tmp/$tag.dir/kv.aof"
    else
        bench_kv_start "$name" "$tag" --appendonly yes --appendfsync always
    fi
    timeout -k 5 600 taskset -c "$client_cpu" redis-benchmark -h 127.0.0.1 -p "$port" -t set \
        -r "$keyspace" -d "$size" "$@" --csv >"$tmp/$tag.csv" 2>"$tmp/$tag.bench.err" || {
        show_log "$tmp/$tag.bench.err"
        die "redis-benchmark against $name ($cfg, round $r) failed"
    }
    redis-cli -h 127.0.0.1 -p "$port" INFO persistence | tr -d '\r' >"$tmp/$tag.info" ||
        die "INFO from $name failed"
    bench_stop_server "$name" "$tmp/$tag.err"
}

bench_kv_rounds run demi-kv redis-server

mkdir -p "$results"
out_name=kv_aof.json
[[ $server_cpu == none ]] && out_name=kv_aof_unpinned.json
fs=$(df -T "$tmp" | awk 'NR == 2 {print $2 " on " $1}')
python3 - "$tmp" "$results/$out_name" "$rounds" "$fs" "$server_cpu" "$client_cpu" <<'PY'
import csv, json, os, statistics, sys, time, platform
tmp, out, rounds, fs, scpu, ccpu = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
cfgs = {"c1": "-c 1", "c50": "-c 50", "c50p16": "-c 50 -P 16"}
res = {"bench": "kv_aof", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
       "machine": platform.node(), "cpus": os.cpu_count(), "filesystem": fs,
       "server_cpu": None if scpu == "none" else int(scpu), "client_cpu": int(ccpu), "rounds": rounds,
       "redis_server": "appendonly yes, appendfsync always", "demi_kv": "--aof (cattree log)", "configs": {}}
rows = []
for cfg, label in cfgs.items():
    entry = {}
    for name in ("demi-kv", "redis-server"):
        runs = []
        for r in range(1, rounds + 1):
            tag = f"{name}.{cfg}.{r}"
            with open(os.path.join(tmp, tag + ".csv")) as f:
                row = next(x for x in csv.DictReader(f) if x["test"] == "SET")
            info = dict(l.split(":", 1) for l in open(os.path.join(tmp, tag + ".info")).read().split("\n") if ":" in l)
            run = {"rps": float(row["rps"]), "p50_ms": float(row["p50_latency_ms"]),
                   "p99_ms": float(row["p99_latency_ms"])}
            if name == "demi-kv":
                recs, cmds = int(info["aof_records_written"]), int(info["aof_commands_logged"])
                run["commands_per_record"] = round(cmds / recs, 2) if recs else None
            runs.append(run)
        med = sorted(runs, key=lambda x: x["rps"])[len(runs) // 2]
        entry[name] = {"median": med, "runs": runs}
    d, rs = entry["demi-kv"]["median"], entry["redis-server"]["median"]
    entry["ratios"] = {"rps": round(d["rps"] / rs["rps"], 3), "p50": round(d["p50_ms"] / rs["p50_ms"], 3),
                       "p99": round(d["p99_ms"] / rs["p99_ms"], 3)}
    res["configs"][label] = entry
    rows.append((label, d, rs, entry["ratios"]))
with open(out, "w") as f:
    json.dump(res, f, indent=1)
print(f"durable SET, logs on {fs}; server cpu {scpu}, client cpu {ccpu}; median of {rounds} rounds")
print("| redis-benchmark -t set | ops/s demi-kv / redis-server | p50 ms | p99 ms | commands per record |")
print("|---|---|---|---|---|")
for label, d, rs, ra in rows:
    print(f"| `{label}` | {d['rps']:.0f} / {rs['rps']:.0f} ({ra['rps']:.2f}x) | {d['p50_ms']:.3f} / {rs['p50_ms']:.3f}"
          f" | {d['p99_ms']:.3f} / {rs['p99_ms']:.3f} | {d.get('commands_per_record')} |")
PY
echo "bench/kv_aof: wrote $results/$out_name" >&2
