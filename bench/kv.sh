#!/usr/bin/env bash
# Key-value benchmark: redis-benchmark -t set,get against demi-kv (on
# catnap) and against redis-server 7 (Debian) on the same path, 127.0.0.1,
# in the same run: server on one CPU, redis-benchmark on another, three
# client configurations (-c 1, -c 50, -c 50 -P 16). Writes
# bench/results/kv.json (ops/s and latency percentiles per run, the ratios
# demi-kv / redis-server) and bench/results/kv.png.
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
#   BENCH_KV_ROUNDS=3          rounds
#   BENCH_KV_N1=40000          requests per test with -c 1
#   BENCH_KV_N50=150000        requests per test with -c 50
#   BENCH_KV_NP=800000         requests per test with -c 50 -P 16
#   BENCH_KV_KEYSPACE=100000   -r: random keys out of this many
#   BENCH_KV_SIZE=3            -d: value bytes (redis-benchmark's default)
#   BENCH_SERVER_CPU=1 / BENCH_CLIENT_CPU=0   CPUs (taskset -c)
#   BENCH_TIMEOUT=600          seconds one redis-benchmark run may take
#   BENCH_RESULTS=<repo>/bench/results
#   DEMI_KV=BUILD/demi-kv      REDIS_SERVER=redis-server
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"

die() {
    echo "bench/kv: error: $*" >&2
    exit 1
}

build_arg=${1:-build}
build=$(bench_build_dir "$build_arg")
[[ -d $build ]] || die "build directory '$build_arg' not found; run 'make build' first"

rounds=${BENCH_KV_ROUNDS:-3}
n1=${BENCH_KV_N1:-40000}
n50=${BENCH_KV_N50:-150000}
np=${BENCH_KV_NP:-800000}
keyspace=${BENCH_KV_KEYSPACE:-100000}
size=${BENCH_KV_SIZE:-3}
server_cpu=${BENCH_SERVER_CPU:-1}
client_cpu=${BENCH_CLIENT_CPU:-0}
timeout_s=${BENCH_TIMEOUT:-600}
results=${BENCH_RESULTS:-$repo/bench/results}
demi_kv=${DEMI_KV:-$build/demi-kv}
redis_server=${REDIS_SERVER:-redis-server}

for v in rounds n1 n50 np keyspace size timeout_s; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v='${!v}' is not a positive integer"
done
for v in server_cpu client_cpu; do
    [[ ${!v} =~ ^(0|[1-9][0-9]*)$ ]] || die "$v='${!v}' is not a CPU number"
done
for tool in taskset timeout python3 gnuplot redis-benchmark redis-cli "$redis_server"; do
    command -v "$tool" >/dev/null || die "'$tool' not found (scripts/deps.sh installs it)"
done
[[ -x $demi_kv ]] || die "demi-kv not built: $demi_kv (run 'make build')"
for cpu in "$server_cpu" "$client_cpu"; do
    taskset -c "$cpu" true 2>/dev/null || die "cannot run on CPU $cpu; set BENCH_SERVER_CPU/BENCH_CLIENT_CPU"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/demi-bench-kv.XXXXXX")
server_pid=
cleanup() {
    if [[ -n $server_pid ]]; then
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

show_log() {
    if [[ -s $1 ]]; then tail -n 20 "$1" | sed 's/^/    | /' >&2; else echo "    | (empty)" >&2; fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_server NAME TAG: starts it on the server CPU and sets $server_pid
# and $port once it answers PING.
start_server() {
    local name=$1 tag=$2
    if [[ $name == demi-kv ]]; then
        LIBOS=catnap taskset -c "$server_cpu" "$demi_kv" --addr 127.0.0.1:0 >"$tmp/$tag.out" 2>"$tmp/$tag.err" &
        server_pid=$!
        for _ in $(seq 200); do
            grep -q '^ready ' "$tmp/$tag.out" 2>/dev/null && break
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.05
        done
        port=$(sed -n 's/^ready 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$tmp/$tag.out")
    else
        port=$(free_port)
        mkdir -p "$tmp/$tag.dir"
        taskset -c "$server_cpu" "$redis_server" --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
            --dir "$tmp/$tag.dir" --daemonize no >"$tmp/$tag.out" 2>"$tmp/$tag.err" &
        server_pid=$!
    fi
    for _ in $(seq 200); do
        [[ -n $port ]] && [[ $(redis-cli -h 127.0.0.1 -p "$port" PING 2>/dev/null) == PONG ]] && return 0
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.05
    done
    echo "bench/kv: error: $name did not start" >&2
    show_log "$tmp/$tag.err"
    show_log "$tmp/$tag.out"
    exit 1
}

stop_server() {
    local name=$1 tag=$2 pid=$server_pid rc=0
    kill -INT "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        server_pid=
        die "$name did not exit within 5 s of SIGINT"
    fi
    wait "$pid" || rc=$?
    server_pid=
    # redis-server exits 0 on SIGINT too (no persistence to save).
    ((rc == 0)) || { show_log "$tmp/$tag.err"; die "$name exited with status $rc on SIGINT"; }
}

configs=(c1 c50 c50p16)
config_args() {
    case $1 in
    c1) echo "-c 1 -n $n1" ;;
    c50) echo "-c 50 -n $n50" ;;
    c50p16) echo "-c 50 -P 16 -n $np" ;;
    esac
}

for ((r = 1; r <= rounds; r++)); do
    for cfg in "${configs[@]}"; do
        for name in demi-kv redis-server; do
            tag=$name.$cfg.$r
            read -r -a args <<<"$(config_args "$cfg")"
            echo "bench/kv: round $r, $cfg, $name: redis-benchmark ${args[*]} -t set,get -r $keyspace -d $size" >&2
            start_server "$name" "$tag"
            rc=0
            timeout -k 5 "$timeout_s" taskset -c "$client_cpu" redis-benchmark -h 127.0.0.1 -p "$port" \
                -t set,get -r "$keyspace" -d "$size" "${args[@]}" --csv >"$tmp/$tag.csv" 2>"$tmp/$tag.bench.err" ||
                rc=$?
            if ((rc != 0)); then
                show_log "$tmp/$tag.bench.err"
                die "redis-benchmark against $name ($cfg, round $r) failed with status $rc"
            fi
            redis-cli -h 127.0.0.1 -p "$port" INFO stats >"$tmp/$tag.info" 2>/dev/null ||
                die "INFO from $name failed after the run"
            stop_server "$name" "$tag"
        done
    done
done

mkdir -p "$results"
bench_version=$(redis-benchmark --version | head -n 1)
server_version=$("$redis_server" --version | head -n 1)
python3 "$here/kv_summary.py" "$tmp" "$results/kv.json" "$tmp/kv.dat" --rounds "$rounds" \
    --server-cpu "$server_cpu" --client-cpu "$client_cpu" --nproc "$(nproc)" --keyspace "$keyspace" \
    --size "$size" --n1 "$n1" --n50 "$n50" --np "$np" --bench-version "$bench_version" \
    --server-version "$server_version" --demi-kv "$demi_kv" || die "could not summarize the runs"
title="redis-benchmark -t set,get, 127.0.0.1, server cpu $server_cpu / client cpu $client_cpu"
gnuplot -c "$here/plot_kv.gp" "$results/kv.png.tmp" "$title" "$tmp/kv.dat" 2>"$tmp/gnuplot.err" || {
    show_log "$tmp/gnuplot.err"
    die "gnuplot failed"
}
[[ -s $results/kv.png.tmp ]] || die "gnuplot wrote no image"
mv -f "$results/kv.png.tmp" "$results/kv.png"
echo "bench/kv: wrote $results/kv.json and $results/kv.png" >&2
python3 "$here/kv_summary.py" --table "$results/kv.json"
