#!/usr/bin/env bash
# demi-kv --threads N against demi-kv with one thread (issue 14): the
# keyspace split across N instances, commands on another thread's keys
# hopping through memory queues. redis-benchmark SET,GET over
# BENCH_KV_KEYSPACE random keys on 127.0.0.1 (catnap), -c 50 and
# -c 50 -P 16, each thread count once per round, rounds interleaved; each
# figure is the median round. With random keys, (N-1)/N of the commands
# go to another thread. Results: bench/results/kv_threads.json (ops/s per
# configuration and thread count, the ratio to one thread, the share of
# commands that hopped, the CPU count).
#
# It reports and never judges. The servers are not pinned: on a machine
# with fewer CPUs than threads + 1 (this 2-vCPU VM: two server threads and
# redis-benchmark share two CPUs) the figure measures the hop's cost, not
# scaling, and the results say so.
#
#   bench/kv_threads.sh [BUILD]      (also run by bench/run.sh)
#
# Environment: BENCH_KV_ROUNDS (3), BENCH_KV_THREADS (2: the N compared
# with 1), BENCH_KV_N50 (50000), BENCH_KV_NP (200000), BENCH_KV_KEYSPACE
# (100000), BENCH_TIMEOUT (600), BENCH_RESULTS (bench/results).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
bench_name="bench: kv_threads"
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
bench_build "${1:-build}"

rounds=${BENCH_KV_ROUNDS:-3}
nthreads=${BENCH_KV_THREADS:-2}
n50=${BENCH_KV_N50:-50000}
np=${BENCH_KV_NP:-200000}
keyspace=${BENCH_KV_KEYSPACE:-100000}
timeout_s=${BENCH_TIMEOUT:-600}
results=${BENCH_RESULTS:-$repo/bench/results}
bench_positive rounds nthreads n50 np keyspace timeout_s
((nthreads >= 2 && nthreads <= 16)) || die "BENCH_KV_THREADS=$nthreads: 2..16"
bench_need redis-benchmark redis-cli python3
demi_kv=$build/demi-kv
[[ -x $demi_kv ]] || die "$demi_kv not built"
mkdir -p "$results"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench-kv-threads.XXXXXX")
bench_traps
trap 'bench_cleanup; rm -rf "$tmp"' EXIT

# A port below the ephemeral range (the threads share it), free a moment ago.
free_low_port() {
    python3 - <<'EOF'
import random, socket
for _ in range(1000):
    p = random.randrange(20000, 32000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    print(p)
    break
EOF
}

# run ROUND CONFIG THREADS ARG...: one server, one redis-benchmark run.
run() {
    local r=$1 cfg=$2 t=$3 tag="t$3.$2.$1" port
    shift 3
    port=$(free_low_port)
    [[ -n $port ]] || die "no free port"
    LIBOS=catnap HUGEPAGES=off "$demi_kv" --threads "$t" --addr "127.0.0.1:$port" >"$tmp/$tag.out" 2>"$tmp/$tag.err" &
    server_pid=$!
    bench_wait 60 bench_pong redis-cli -h 127.0.0.1 -p "$port" ||
        { show_log "$tmp/$tag.err"; die "demi-kv --threads $t did not start"; }
    timeout "$timeout_s" redis-benchmark -h 127.0.0.1 -p "$port" -t set,get -r "$keyspace" "$@" --csv \
        >"$tmp/$tag.csv" 2>"$tmp/$tag.bench.err" || { show_log "$tmp/$tag.bench.err"; die "redis-benchmark failed ($tag)"; }
    bench_stop_server "demi-kv --threads $t" "$tmp/$tag.err"
    echo "$tag: $(grep -o '^"[A-Z]*","[0-9.]*"' "$tmp/$tag.csv" | tr '\n' ' ')" >&2
}

for ((r = 1; r <= rounds; r++)); do
    for cfg in c50 c50p16; do
        if [[ $cfg == c50 ]]; then args=(-c 50 -n "$n50"); else args=(-c 50 -P 16 -n "$np"); fi
        for t in 1 "$nthreads"; do run "$r" "$cfg" "$t" "${args[@]}"; done
    done
done

python3 - "$tmp" "$rounds" "$nthreads" "$(nproc)" "$results/kv_threads.json" <<'EOF'
import csv, json, re, statistics, sys
tmp, rounds, n, cpus, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
res = {"threads": n, "cpus": cpus, "rounds": rounds,
       "note": ("servers unpinned; with fewer CPUs than threads + 1 (for redis-benchmark) this measures the "
                "cost of hopping between threads, not scaling") if cpus < n + 1 else "servers unpinned",
       "configs": {}}
for cfg in ("c50", "c50p16"):
    c = {}
    for test in ("SET", "GET"):
        per = {}
        for t in (1, n):
            vals = []
            for r in range(1, rounds + 1):
                with open(f"{tmp}/t{t}.{cfg}.{r}.csv") as f:
                    for row in csv.reader(f):
                        if row and row[0] == test:
                            vals.append(float(row[1]))
            per[t] = statistics.median(vals)
        c[test] = {"ops_1": per[1], f"ops_{n}": per[n], "ratio": round(per[n] / per[1], 3)}
    hopped = []
    for r in range(1, rounds + 1):
        # A thread's "commands run" include those it ran for the others
        # and not those it sent: its clients' commands are run - ran + sent.
        sent = cmds = 0
        for line in open(f"{tmp}/t{n}.{cfg}.{r}.err"):
            m = re.search(r"(\d+) commands run, (\d+) sent to other threads, (\d+) run for them", line)
            if m:
                cmds += int(m.group(1)) - int(m.group(3)) + int(m.group(2))
                sent += int(m.group(2))
        if cmds:
            hopped.append(sent / cmds)
    c["hopped_share"] = round(statistics.median(hopped), 3) if hopped else None
    res["configs"][cfg] = c
json.dump(res, open(out, "w"), indent=1)
print(json.dumps(res["configs"]))
EOF
echo "bench: kv_threads: wrote $results/kv_threads.json"
