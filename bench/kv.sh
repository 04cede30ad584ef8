#!/usr/bin/env bash
# Key-value benchmark: redis-benchmark's default test list (PING, SET, GET,
# INCR, the list, set, hash and sorted-set tests, LRANGE_*, MSET; or the
# tests BENCH_KV_TESTS names) against demi-kv (on catnap) and against
# redis-server 7 (Debian) on the same path, 127.0.0.1, in the same run:
# server on one CPU, redis-benchmark on another, three client
# configurations (-c 1, -c 50, -c 50 -P 16). Writes bench/results/kv.json
# (ops/s and latency percentiles per test and run, the ratios demi-kv /
# redis-server per test), bench/results/kv.png (ops/s, one panel per test)
# and bench/results/kv_latency.png (p50/p99, one panel per test).
#
# Like bench/run.sh it reports and never judges: it fails only when a run
# fails (a server that does not start, a benchmark that errs or prints no
# result), never writes a figure that was not measured, and stops only the
# processes it started, by PID. Each round runs every configuration on both
# servers, interleaved, each on a freshly started server with an empty
# keyspace; each figure is the round with the median ops/s.
#
#   bench/kv.sh [BUILD]             (BUILD defaults to "build")
#
# Environment:
#   BENCH_KV_TESTS=            redis-benchmark -t list (e.g. "set,get" for a
#                              quick run); empty: its default test list
#   BENCH_KV_ROUNDS=3          rounds
#   BENCH_KV_N1=10000          requests per test with -c 1
#   BENCH_KV_N50=40000         requests per test with -c 50
#   BENCH_KV_NP=100000         requests per test with -c 50 -P 16
#   BENCH_KV_KEYSPACE=100000   -r: random keys out of this many
#   BENCH_KV_SIZE=3            -d: value bytes (redis-benchmark's default)
#   BENCH_SERVER_CPU=1 / BENCH_CLIENT_CPU=0   CPUs (taskset -c)
#   BENCH_TIMEOUT=600          seconds one redis-benchmark run may take
#   BENCH_RESULTS=<repo>/bench/results
#   DEMI_KV=BUILD/demi-kv      REDIS_SERVER=redis-server
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
bench_name=bench/kv
# shellcheck source=bench/lib.sh
source "$here/lib.sh"

bench_build "${1:-build}"
tests=${BENCH_KV_TESTS:-}
rounds=${BENCH_KV_ROUNDS:-3}
n1=${BENCH_KV_N1:-10000}
n50=${BENCH_KV_N50:-40000}
np=${BENCH_KV_NP:-100000}
keyspace=${BENCH_KV_KEYSPACE:-100000}
size=${BENCH_KV_SIZE:-3}
server_cpu=${BENCH_SERVER_CPU:-1}
client_cpu=${BENCH_CLIENT_CPU:-0}
timeout_s=${BENCH_TIMEOUT:-600}
results=${BENCH_RESULTS:-$repo/bench/results}
demi_kv=${DEMI_KV:-$build/demi-kv}
redis_server=${REDIS_SERVER:-redis-server}

bench_positive rounds n1 n50 np keyspace size timeout_s
bench_kv_tests BENCH_KV_TESTS
bench_need taskset timeout python3 gnuplot redis-benchmark redis-cli "$redis_server"
[[ -x $demi_kv ]] || die "demi-kv not built: $demi_kv (run 'make build')"
bench_cpus "$server_cpu" "$client_cpu"
server_pin=(taskset -c "$server_cpu")

tmp=$(mktemp -d "${TMPDIR:-/tmp}/demi-bench-kv.XXXXXX")
bench_traps

# check_libos NAME TAG: the server that answered is the one the results
# will be labelled with: demi-kv says which libOS it runs on in INFO
# (libdemi_libos), redis-server has no such field.
check_libos() {
    local name=$1 tag=$2 libos
    libos=$(sed -n 's/^libdemi_libos:\([a-z]*\).*/\1/p' "$tmp/$tag.info")
    case $name in
    demi-kv) [[ $libos == catnap ]] || die "demi-kv ran on libOS '${libos:-?}', not catnap ($tag)" ;;
    redis-server)
        [[ -z $libos ]] || die "the redis-server run answered as a demi-kv on $libos ($tag)"
        grep -q '^redis_version:' "$tmp/$tag.info" || die "the redis-server run's INFO has no redis_version ($tag)"
        ;;
    esac
}

# run ROUND CONFIG NAME TAG ARG...: one redis-benchmark run (bench_kv_rounds)
# on a freshly started server.
run() {
    local r=$1 cfg=$2 name=$3 tag=$4 rc=0
    shift 4
    echo "bench/kv: round $r, $cfg, $name: redis-benchmark $* ${test_args[*]} -r $keyspace -d $size ($what)" >&2
    if [[ $name == demi-kv ]]; then bench_kv_start "$name" "$tag"; else bench_kv_start "$name" "$tag" --appendonly no; fi
    # redis-benchmark 7 exits non-zero on an error reply: a server that
    # answers errors fails the run instead of being timed.
    timeout -k 5 "$timeout_s" taskset -c "$client_cpu" redis-benchmark -h 127.0.0.1 -p "$port" \
        "${test_args[@]}" -r "$keyspace" -d "$size" "$@" --csv >"$tmp/$tag.csv" 2>"$tmp/$tag.bench.err" || rc=$?
    if ((rc != 0)); then
        show_log "$tmp/$tag.bench.err"
        show_log "$tmp/$tag.csv"
        die "redis-benchmark against $name ($cfg, round $r) failed with status $rc"
    fi
    { redis-cli -h 127.0.0.1 -p "$port" INFO server && redis-cli -h 127.0.0.1 -p "$port" INFO stats; } \
        >"$tmp/$tag.info" 2>/dev/null || die "INFO from $name failed after the run"
    check_libos "$name" "$tag"
    # redis-server exits 0 on SIGINT too (no persistence to save).
    bench_stop_server "$name" "$tmp/$tag.err"
}

t_start=$(date +%s)
loadavg=$(cut -d' ' -f1-3 /proc/loadavg)
what=${tests:-"redis-benchmark's default tests"}
bench_kv_rounds run demi-kv redis-server
elapsed=$(($(date +%s) - t_start))

mkdir -p "$results"
bench_version=$(redis-benchmark --version | head -n 1)
server_version=$("$redis_server" --version | head -n 1)
python3 "$here/kv_summary.py" "$tmp" "$results/kv.json" "$tmp/kv" --rounds "$rounds" \
    --server-cpu "$server_cpu" --client-cpu "$client_cpu" --nproc "$(nproc)" --keyspace "$keyspace" \
    --size "$size" --n1 "$n1" --n50 "$n50" --np "$np" --bench-version "$bench_version" \
    --server-version "$server_version" --demi-kv "$demi_kv" --tests "$tests" --elapsed "$elapsed" \
    --loadavg "$loadavg" || die "could not summarize the runs"
title="redis-benchmark ${tests:+-t $tests }-r $keyspace -d $size, 127.0.0.1, server cpu $server_cpu / client cpu $client_cpu"
bench_kv_plot "$tmp/kv.dat" "$tmp/kv.names.gp" "$title" "$results/kv" || die "could not plot the runs"
echo "bench/kv: wrote $results/kv.json, kv.png and kv_latency.png in ${elapsed} s of runs" >&2
python3 "$here/kv_summary.py" --table "$results/kv.json"
