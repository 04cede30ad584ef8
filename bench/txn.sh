#!/usr/bin/env bash
# bench/txn.sh: TxnStore on catnap over 127.0.0.1 and on catpowder and
# catnip across network namespaces. Three demi-txnd replicas of one shard,
# then demi-txn-bench's closed loop against them: YCSB-T (uniform and Zipf
# 0.9) and Retwis, in qw and in occ mode, the same client count and
# duration for every run, rounds interleaved (within a round: mode by
# mode, and for each mode catnap, catpowder, then catnip). It reports and
# never judges a figure.
#   bench/txn.sh [BUILD]   (env: CLIENTS=4 SECONDS_PER_RUN=5 ROUNDS=3 KEYS=100000
#                           TXN_LIBOSES="catnap catpowder catnip"
#                           TXN_BACKEND=xdp|packet BENCH_TXN_ID=122)
#
# catpowder and catnip: a scripts/netns.sh bridge topology of 3 + CLIENTS hosts
# (10.201.ID.k): replica i on host i+1, and one demi-txn-bench process of
# one client on each other host, all started together: one libdemi
# instance per interface (one bench process forks its clients, which would
# share one interface and address); process c runs client c-1
# (--first-client) with the round's --seed, so both libOSes draw the same
# transactions from the same hot keys. catnap: one bench process of CLIENTS
# forked clients, as before. Either way CLIENTS client processes; every run
# records its latency histogram (--hist), the catpowder runs' are added up
# bucket by bucket, and p50/p99 come from the (merged) histogram alike for
# both. catpowder runs AF_XDP (TXN_BACKEND=xdp) or AF_PACKET sockets,
# catnip DPDK's net_af_xdp or net_af_packet port on the host's interface
# (scripts/bypass.sh, a configuration file per host). Both need root;
# without it only catnap runs.
#
# Writes bench/results/txn.json: every run's figures, per configuration
# the median round's throughput and latencies, and each bypass libOS's p99
# over catnap's (issue 12's target: at most 0.5); and bench/results/txn.png
# (plot_txn.gp: tx/s and p99 per mode and workload, a bar per libOS).
set -euo pipefail
bench_name=txn
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
bench_build "${1:-build}"
clients=${CLIENTS:-4} secs=${SECONDS_PER_RUN:-5} rounds=${ROUNDS:-3} keys=${KEYS:-100000}
bench_positive clients secs rounds keys
txnd=$build/demi-txnd bench=$build/demi-txn-bench
bench_need python3 gnuplot
[[ -x $txnd && -x $bench ]] || die "demi-txnd or demi-txn-bench not built in $build"
out=$bench_repo/bench/results/txn.json
netns=$bench_repo/scripts/netns.sh
br_id=${BENCH_TXN_ID:-122} backend=${TXN_BACKEND:-xdp} port=7400
read -r -a libs <<<"${TXN_LIBOSES:-catnap catpowder catnip}"
for lib in "${libs[@]}"; do
    case $lib in catnap | catpowder | catnip) ;; *) die "TXN_LIBOSES: unknown libOS '$lib'" ;; esac
done
[[ $backend == xdp || $backend == packet ]] || die "TXN_BACKEND: xdp or packet, not '$backend'"
# shellcheck source=tests/txn/txn_lib.sh
. "$bench_repo/tests/txn/txn_lib.sh"
# Every process: SPIN_US=0, so that the 3 replicas and the clients (more
# processes than CPUs) do not starve each other busy-polling (txn_lib.sh).
# catpowder honours it: it sleeps on its socket's descriptor; catnip polls
# its port with a back-off of 16 us to 2 ms (neither DPDK port has a
# receive interrupt).
export HUGEPAGES=off SPIN_US=0
# shellcheck source=scripts/bypass.sh
. "$bench_repo/scripts/bypass.sh"

if [[ " ${libs[*]} " == *" catpowder "* || " ${libs[*]} " == *" catnip "* ]]; then
    if [[ $(id -u) -ne 0 ]]; then
        echo "txn: not root: catpowder and catnip (namespaces, raw sockets) left out"
        libs=(catnap)
    else
        trap 'txn_cleanup; "$netns" down "$br_id"' EXIT
        "$netns" bridge "$br_id" $((3 + clients)) >/dev/null || die "scripts/netns.sh bridge $br_id failed"
    fi
fi
host() { echo "dm${br_id}h$1"; } # the namespace and interface of host K
host_ip() { echo "10.201.$br_id.$1"; }
# bypass_mode LIB: scripts/bypass.sh's mode for LIB and TXN_BACKEND.
bypass_mode() {
    case $1/$backend in
    catpowder/*) echo "catpowder-$backend" ;;
    catnip/xdp) echo catnip-afxdp ;;
    catnip/packet) echo catnip-afpacket ;;
    esac
}
# on_host LIB K CMD...: execs CMD in host K's namespace, on LIB there
# (run it in the background or in a subshell: "on_host ... &" leaves $!
# the program's own PID, to be signalled and waited for). catnip's
# configuration file for the host is written in $tmp (bypass_env).
on_host() {
    local lib=$1 k=$2 words
    shift 2
    read -r -a words <<<"$(bypass_env "$(bypass_mode "$lib")" "$(host "$k")" "$(host_ip "$k")" "$tmp")"
    exec ip netns exec "$(host "$k")" env "${words[@]}" "$@"
}

# start_cluster_cp LIB MODE: 3 replicas on LIB (catpowder or catnip), hosts
# 1-3 (as start_cluster does on catnap: backups first, the primary must
# see them).
start_cluster_cp() {
    local lib=$1 mode=$2 i f p addr list=
    cluster='' cpids=()
    for i in 1 2 3; do list+=${list:+,}$(host_ip $i):$port; done
    for i in 2 1 0; do
        f=$tmp/cp.$mode.$i addr=$(host_ip $((i + 1))):$port
        on_host "$lib" $((i + 1)) "$txnd" --mode "$mode" --addr "$addr" --replicas "$list" --index $i \
            >"$f.out" 2>"$f.err" &
        p=$!
        pids+=("$p")
        cpids+=("$p")
        wait_line "$f.out" "^ready $addr\$" "$p" || { show_log "$f.err"; die "$lib replica $i did not start"; }
    done
    if [[ $mode == occ ]]; then
        for i in 1 2; do
            wait_line "$tmp/cp.$mode.0.err" "backup $i (.*): sync sent" "$p" ||
                { show_log "$tmp/cp.$mode.0.err"; die "the $lib primary never reached backup $i"; }
        done
    fi
    cluster=$list
}

# run_one LIBOS MODE ROUND ARG...: one run; its JSON objects (one per
# bench process) in $tmp/run.*.json.
run_one() {
    local lib=$1 mode=$2 r=$3 c p rc=0
    shift 3
    rm -f "$tmp"/run.*.json
    if [[ $lib == catnap ]]; then
        LIBOS=catnap "$bench" --mode "$mode" --shard "$cluster" --clients "$clients" --seed "$r" --hist "$@" \
            >"$tmp/run.1.json" 2>"$tmp/run.err" || { show_log "$tmp/run.err"; die "catnap $mode $* failed"; }
        return
    fi
    local bp=()
    for ((c = 1; c <= clients; c++)); do
        on_host "$lib" $((3 + c)) "$bench" --mode "$mode" --shard "$cluster" --clients 1 --seed "$r" --first-client $((c - 1)) \
            --hist "$@" \
            >"$tmp/run.$c.json" 2>"$tmp/run.$c.err" &
        p=$!
        pids+=("$p")
        bp+=("$p")
    done
    for ((c = 1; c <= clients; c++)); do
        wait "${bp[c - 1]}" || rc=$?
        ((rc == 0)) || { show_log "$tmp/run.$c.err"; die "$lib $mode $* (client $c) failed"; }
    done
}

# Merges the JSON objects of one run into one line of runs.jsonl: the
# counts and throughputs added, the histograms (CDF buckets) added and
# p50/p99/p99.9 read from the sum as hist_quantile does.
merge() {
    python3 - "$@" <<'EOF'
import json, sys
lib, rnd, files = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
ds = [json.load(open(f)) for f in files]
buckets = {}
for d in ds:
    prev = 0.0
    n = d["committed"]
    for us, frac in d["cdf"]:
        buckets[us] = buckets.get(us, 0) + round((frac - prev) * n)
        prev = frac
n = sum(buckets.values())
def q(p):
    want, seen = max(1, int(p * n)), 0
    for us in sorted(buckets):
        seen += buckets[us]
        if seen >= want:
            return us
    return max(buckets)
out = {k: ds[0][k] for k in ("mode", "workload", "zipf", "keys", "replicas")}
out.update(libos=lib, round=rnd, processes=len(ds), clients=sum(d["clients"] for d in ds),
           committed=sum(d["committed"] for d in ds), aborted=sum(d["aborted"] for d in ds),
           abandoned=sum(d["abandoned"] for d in ds), duration_s=max(d["duration_s"] for d in ds),
           throughput_tps=round(sum(d["throughput_tps"] for d in ds), 1),
           latency_us={"avg": round(sum(d["latency_us"]["avg"] * d["committed"] for d in ds) / max(1, n), 3),
                       "p50": q(0.50), "p99": q(0.99), "p999": q(0.999)})
print(json.dumps(out))
EOF
}

configs=("ycsbt 0" "ycsbt 0.9" "retwis 0")
echo "txn: $rounds rounds x 2 modes x ${#configs[@]} workloads x ${libs[*]}, $clients clients, ${secs}s each, $keys keys"
: >"$tmp/runs.jsonl"
for ((r = 1; r <= rounds; r++)); do
    for mode in qw occ; do
        for lib in "${libs[@]}"; do
            if [[ $lib == catnap ]]; then
                start_cluster "$mode" "$mode" 1 || die "could not start the $mode replicas"
            else
                start_cluster_cp "$lib" "$mode"
            fi
            # The keys, loaded once by one client (across namespaces from host 4).
            if [[ $lib == catnap ]]; then
                LIBOS=catnap "$bench" --mode "$mode" --shard "$cluster" --keys "$keys" --load --txns 1 --clients 1 \
                    >/dev/null 2>"$tmp/load.err" || { show_log "$tmp/load.err"; die "loading the keys failed"; }
            else
                (on_host "$lib" 4 "$bench" --mode "$mode" --shard "$cluster" --keys "$keys" --load --txns 1 --clients 1) \
                    >/dev/null 2>"$tmp/load.err" || { show_log "$tmp/load.err"; die "loading the keys failed"; }
            fi
            for c in "${configs[@]}"; do
                read -r wl zipf <<<"$c"
                run_one "$lib" "$mode" "$r" --workload "$wl" --zipf "$zipf" --keys "$keys" --duration "$secs"
                merge "$lib" "$r" "$tmp"/run.*.json >"$tmp/run.merged"
                cat "$tmp/run.merged" >>"$tmp/runs.jsonl"
                python3 -c 'import json,sys; d=json.loads(open(sys.argv[1]).read()); l=d["latency_us"]
print("  round %d %-9s %-3s %-6s zipf %-3s %7.0f tx/s  aborts %6d  p50 %7.0f us  p99 %7.0f us" % (d["round"], d["libos"], d["mode"], d["workload"], d["zipf"], d["throughput_tps"], d["aborted"], l["p50"], l["p99"]))' \
                    "$tmp/run.merged"
            done
            stop_cluster "$lib $mode" || die "a $lib replica did not stop cleanly"
        done
    done
done

python3 - "$tmp/runs.jsonl" "$out" "$clients" "$secs" "$rounds" "$keys" "$backend" <<'EOF'
import json, statistics, sys, time, os
runs = [json.loads(l) for l in open(sys.argv[1])]
summary = {}
for r in runs:
    k = "%s %s %s zipf %s" % (r["libos"], r["mode"], r["workload"], r["zipf"])
    summary.setdefault(k, []).append(r)
med = {}
for k, rs in summary.items():
    rs = sorted(rs, key=lambda r: r["throughput_tps"])
    m = rs[len(rs) // 2]
    med[k] = {"throughput_tps": m["throughput_tps"], "aborted": m["aborted"], "committed": m["committed"],
              "latency_us": m["latency_us"], "round": m["round"]}
ratio = {}
for k in med:
    lib, cfg = k.split(" ", 1)
    base = med.get("catnap " + cfg)
    if lib != "catnap" and base:
        ratio.setdefault(lib, {})[cfg] = round(med[k]["latency_us"]["p99"] / base["latency_us"]["p99"], 3)
libs = [l for l in ("catnap", "catpowder", "catnip") if any(r["libos"] == l for r in runs)]
doc = {"benchmark": "txn", "libos": libs, "replicas": 3, "shards": 1,
       "clients": int(sys.argv[3]), "seconds_per_run": int(sys.argv[4]), "rounds": int(sys.argv[5]),
       "keys": int(sys.argv[6]), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
       "cpus": os.cpu_count(), "spin_us": 0,
       "topology": {"catnap": "127.0.0.1, one bench process of N forked clients",
                    "catpowder": "scripts/netns.sh bridge: one namespace per replica and per client (N bench "
                                 "processes of 1 client), AF_%s sockets, 10.201.ID.k" % sys.argv[7].upper(),
                    "catnip": "the same bridge topology, DPDK net_af_%s on each host's interface"
                              % sys.argv[7]},
       "median_round": med, "p99_over_catnap": ratio,
       "target": "catpowder and catnip p99 <= 0.5 x catnap p99 (issue 12)",
       "target_met": {l: {k: v <= 0.5 for k, v in r.items()} for l, r in ratio.items()}, "runs": runs}
json.dump(doc, open(sys.argv[2], "w"), indent=1)
for k in sorted(med):
    m = med[k]
    print("median %-34s %7.0f tx/s  p50 %7.0f us  p99 %7.0f us  aborted %d" %
          (k, m["throughput_tps"], m["latency_us"]["p50"], m["latency_us"]["p99"], m["aborted"]))
for lib in sorted(ratio):
    for k in sorted(ratio[lib]):
        v = ratio[lib][k]
        print("%s p99 / catnap p99, %-22s %.2f (target <= 0.5: %s)" % (lib, k, v, "met" if v <= 0.5 else "not met"))
EOF
nlib=$(python3 "$bench_repo/bench/txn_plot.py" "$out" "$tmp/txn.dat") || die "could not write the plot's data"
gnuplot -c "$bench_repo/bench/plot_txn.gp" "${out%.json}" \
    "TxnStore, 3 replicas, $clients clients: ${libs[*]}, median of $rounds rounds" "$tmp/txn.dat" "$nlib" ||
    die "gnuplot failed"
echo "txn: wrote $out and ${out%.json}.png"
