#!/usr/bin/env bash
# bench/txn.sh: TxnStore on catnap over 127.0.0.1. Three demi-txnd
# replicas of one shard, then demi-txn-bench's closed loop against them:
# YCSB-T (uniform and Zipf 0.9) and Retwis, in qw and in occ mode, the
# same client count and duration for every run, rounds interleaved
# (mode by mode within a round). It reports and never judges a figure.
#   bench/txn.sh [BUILD]   (env: CLIENTS=4 SECONDS_PER_RUN=5 ROUNDS=3 KEYS=100000)
# Writes bench/results/txn.json: every run's JSON from demi-txn-bench, and
# per configuration the median round's throughput and latencies.
# Not measured yet: catpowder and catnip (replicas in namespaces on a
# bridge), which the paper's comparison needs; see the README.
set -euo pipefail
bench_name=txn
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
bench_build "${1:-build}"
clients=${CLIENTS:-4} secs=${SECONDS_PER_RUN:-5} rounds=${ROUNDS:-3} keys=${KEYS:-100000}
bench_positive clients secs rounds keys
txnd=$build/demi-txnd bench=$build/demi-txn-bench
[[ -x $txnd && -x $bench ]] || die "demi-txnd or demi-txn-bench not built in $build"
out=$bench_repo/bench/results/txn.json
# shellcheck source=tests/txn/txn_lib.sh
. "$bench_repo/tests/txn/txn_lib.sh"
# Every process: SPIN_US=0, so that the 3 replicas and the clients (more
# processes than CPUs) do not starve each other busy-polling (txn_lib.sh).
export LIBOS=catnap HUGEPAGES=off SPIN_US=0

configs=("ycsbt 0" "ycsbt 0.9" "retwis 0")
echo "txn: $rounds rounds x 2 modes x ${#configs[@]} workloads, $clients clients, ${secs}s each, $keys keys"
: >"$tmp/runs.jsonl"
for ((r = 1; r <= rounds; r++)); do
    for mode in qw occ; do
        start_cluster "$mode" "$mode" 1 || die "could not start the $mode replicas"
        shard=$cluster
        "$bench" --mode "$mode" --shard "$shard" --keys "$keys" --load --txns 1 --clients 1 >/dev/null ||
            die "loading the keys failed"
        for c in "${configs[@]}"; do
            read -r wl zipf <<<"$c"
            "$bench" --mode "$mode" --shard "$shard" --workload "$wl" --zipf "$zipf" --keys "$keys" \
                --clients "$clients" --duration "$secs" --seed "$r" >"$tmp/run.json" 2>"$tmp/run.err" ||
                { show_log "$tmp/run.err"; die "$mode $wl zipf $zipf failed"; }
            python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["round"]=int(sys.argv[2]); print(json.dumps(d))' \
                "$tmp/run.json" "$r" >>"$tmp/runs.jsonl"
            python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); l=d["latency_us"]
print("  round %s %-3s %-6s zipf %-3s %7.0f tx/s  aborts %6d  p50 %7.0f us  p99 %7.0f us" % (sys.argv[2], d["mode"], d["workload"], d["zipf"], d["throughput_tps"], d["aborted"], l["p50"], l["p99"]))' \
                "$tmp/run.json" "$r"
        done
        stop_cluster "$mode" || die "a replica did not stop cleanly"
    done
done

python3 - "$tmp/runs.jsonl" "$out" "$clients" "$secs" "$rounds" "$keys" <<'EOF'
import json, statistics, sys, time, os
runs = [json.loads(l) for l in open(sys.argv[1])]
summary = {}
for r in runs:
    k = "%s %s zipf %s" % (r["mode"], r["workload"], r["zipf"])
    summary.setdefault(k, []).append(r)
med = {}
for k, rs in summary.items():
    rs = sorted(rs, key=lambda r: r["throughput_tps"])
    m = rs[len(rs) // 2]
    med[k] = {"throughput_tps": m["throughput_tps"], "aborted": m["aborted"], "committed": m["committed"],
              "latency_us": m["latency_us"], "round": m["round"]}
doc = {"benchmark": "txn", "libos": "catnap", "replicas": 3, "shards": 1,
       "clients": int(sys.argv[3]), "seconds_per_run": int(sys.argv[4]), "rounds": int(sys.argv[5]),
       "keys": int(sys.argv[6]), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
       "cpus": os.cpu_count(), "median_round": med, "runs": runs}
json.dump(doc, open(sys.argv[2], "w"), indent=1)
for k in sorted(med):
    m = med[k]
    print("median %-24s %7.0f tx/s  p50 %7.0f us  p99 %7.0f us  aborted %d" %
          (k, m["throughput_tps"], m["latency_us"]["p50"], m["latency_us"]["p99"], m["aborted"]))
EOF
echo "txn: wrote $out"
