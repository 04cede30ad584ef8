#!/usr/bin/env bash
# Echo latency benchmark: demi-echo on catnap against two Linux baselines
# (bench/linux_echo, blocking and busy-polling), TCP and UDP, on 127.0.0.1,
# server pinned to one CPU and client to another. Writes
# bench/results/echo_<proto>.json and echo_<proto>_cdf.png, and
# bench/results/sched.json when BUILD/bench/sched_bench exists.
#
# It reports figures and never judges them: it fails only when a run fails
# (a crash, a bad echo, a missing line), and never writes a number that was
# not measured. It stops only the processes it started, by PID.
#
#   bench/run.sh [BUILD]            (BUILD defaults to "build"; `make bench`)
#
# Environment:
#   BENCH_ITERS=100000      measured round trips per run
#   BENCH_SIZE=64           message bytes
#   BENCH_WARMUP=1000       unmeasured round trips first
#   BENCH_ROUNDS=3          rounds; each round runs every configuration once,
#                           interleaved, and each configuration reports its
#                           median round by p50 (this machine flips between
#                           latency modes from one run to the next, for Linux
#                           and libdemi alike: interleaving exposes both to it)
#   BENCH_PROTOS="tcp udp"  protocols to run
#   BENCH_SERVER_CPU=1      CPU for every server   (taskset -c)
#   BENCH_CLIENT_CPU=0      CPU for every client
#   BENCH_TIMEOUT=600       seconds a client (or sched_bench) may take
#   BENCH_RESULTS=<repo>/bench/results   where results go
#   DEMI_ECHO=BUILD/demi-echo   program for the catnap run. Pointing it at
#       BUILD/bench/linux_echo tests this script without demi-echo; the
#       results then say so, and label that run as not catnap's.
#   DEMI_ECHO_ARGS=""       extra arguments for that program (e.g. --mode busypoll)
#   LINUX_ECHO=BUILD/bench/linux_echo
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
bench_name=bench
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
summarize=(python3 "$here/summarize.py")

# BUILD: absolute, else relative to the current directory, else to the repo.
bench_build "${1:-build}"

iters=${BENCH_ITERS:-100000}
size=${BENCH_SIZE:-64}
warmup=${BENCH_WARMUP:-1000}
rounds=${BENCH_ROUNDS:-3}
protos=${BENCH_PROTOS:-tcp udp}
server_cpu=${BENCH_SERVER_CPU:-1}
client_cpu=${BENCH_CLIENT_CPU:-0}
client_timeout=${BENCH_TIMEOUT:-600}
results=${BENCH_RESULTS:-$repo/bench/results}
demi_echo=${DEMI_ECHO:-$build/demi-echo}
linux_echo=${LINUX_ECHO:-$build/bench/linux_echo}
read -r -a demi_echo_args <<<"${DEMI_ECHO_ARGS:-}"
ready_timeout=60

is_uint() { [[ $1 =~ ^(0|[1-9][0-9]*)$ ]]; }
is_pos() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }
is_pos "$iters" || die "BENCH_ITERS='$iters' is not a positive integer"
is_pos "$size" || die "BENCH_SIZE='$size' is not a positive integer"
is_uint "$warmup" || die "BENCH_WARMUP='$warmup' is not a non-negative integer"
is_pos "$rounds" || die "BENCH_ROUNDS='$rounds' is not a positive integer"
is_uint "$server_cpu" || die "BENCH_SERVER_CPU='$server_cpu' is not a CPU number"
is_uint "$client_cpu" || die "BENCH_CLIENT_CPU='$client_cpu' is not a CPU number"
is_pos "$client_timeout" || die "BENCH_TIMEOUT='$client_timeout' is not a positive integer"
for p in $protos; do
    [[ $p == tcp || $p == udp ]] || die "BENCH_PROTOS: unknown protocol '$p' (tcp, udp)"
done

bench_need taskset timeout python3 gnuplot ps
[[ -x $linux_echo ]] || die "Linux baseline not built: $linux_echo (run 'make build')"
[[ -x $demi_echo ]] || die "demi-echo not built: $demi_echo (run 'make build', or set DEMI_ECHO to test the script)"
bench_cpus "$server_cpu" "$client_cpu"
[[ $server_cpu != "$client_cpu" ]] ||
    echo "bench: warning: server and client share CPU $server_cpu; figures are not comparable with the two-CPU ones" >&2

# A non-interactive shell starts background jobs with SIGINT ignored; give
# servers the default disposition back so `kill -INT` reaches them.
sigreset=()
if env --default-signal=INT true 2>/dev/null; then
    # shellcheck disable=SC2054 # the comma is env's list separator
    sigreset=(env --default-signal=INT,TERM)
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/demi-bench.XXXXXX")
bench_traps

# start_server TAG -- COMMAND...: starts it on the server CPU, waits for its
# "ready IP:PORT" line and sets $server_pid and $server_addr.
start_server() {
    local tag=$1
    shift 2
    local out=$tmp/$tag.server.out err=$tmp/$tag.server.err
    taskset -c "$server_cpu" "${sigreset[@]}" "$@" >"$out" 2>"$err" &
    server_pid=$!
    local line st=0
    bench_wait "$ready_timeout" grep -qs '^ready ' "$out" || st=$?
    if ((st == 1)); then
        local rc=0
        wait "$server_pid" || rc=$?
        server_pid=
        echo "bench: error: $tag: the server exited (status $rc) before printing 'ready'" >&2
    elif ((st != 0)); then
        echo "bench: error: $tag: no 'ready IP:PORT' line from the server within ${ready_timeout}s" >&2
    fi
    if ((st != 0)); then
        echo "    command: $*" >&2
        show_log "$err"
        exit 1
    fi
    line=$(grep -m1 '^ready ' "$out")
    server_addr=${line#ready }
    server_addr=${server_addr%%[[:space:]]*}
    [[ $server_addr =~ ^127\.0\.0\.1:[0-9]+$ && ${server_addr##*:} -gt 0 && ${server_addr##*:} -lt 65536 ]] ||
        die "$tag: the server's ready line '$line' does not name 127.0.0.1:PORT with a real port"
}

# stop_server TAG: SIGINT, then the server must exit 0.
stop_server() {
    bench_stop_server "$1: the server" "$tmp/$1.server.err"
}

# run_echo NAME PROTO ROUND EXPECTED_LIBOS BINARY [ARGS...]: one measured
# run; leaves $tmp/NAME.PROTO.ROUND.json (checked result) and .cdf.
run_echo() {
    local name=$1 proto=$2 round=$3 libos=$4 bin=$5
    shift 5
    local tag=$name.$proto.$round udp=()
    [[ $proto == udp ]] && udp=(--udp)
    local envs=(env -u LIBOS)
    [[ $name == catnap ]] && envs=(env LIBOS=catnap)

    echo "bench: $proto $name, round $round: $bin $* (server cpu $server_cpu, client cpu $client_cpu)" >&2
    start_server "$tag" -- "${envs[@]}" "$bin" server "${udp[@]}" --addr 127.0.0.1:0 --size "$size" "$@"

    # In the background and waited for, so that a signal to this script
    # interrupts the wait and the trap stops the client too.
    local rc=0
    timeout -k 5 "$client_timeout" taskset -c "$client_cpu" "${envs[@]}" "$bin" client "${udp[@]}" \
        --addr "$server_addr" --size "$size" --iters "$iters" --warmup "$warmup" \
        --hist "$tmp/$tag.cdf" "$@" >"$tmp/$tag.client.out" 2>"$tmp/$tag.client.err" &
    client_pid=$!
    wait "$client_pid" || rc=$?
    client_pid=
    if ((rc != 0)); then
        if ((rc == 124 || rc == 137)); then
            echo "bench: error: $proto $name: the client did not finish within ${client_timeout}s (BENCH_TIMEOUT)" >&2
        else
            echo "bench: error: $proto $name: the client failed (status $rc)" >&2
        fi
        show_log "$tmp/$tag.client.err"
        echo "    server log:" >&2
        show_log "$tmp/$tag.server.err"
        exit 1
    fi
    stop_server "$tag"

    "${summarize[@]}" check "$tmp/$tag.client.out" "$tmp/$tag.json" --proto "$proto" \
        --size "$size" --iters "$iters" --libos "$libos" ||
        die "$proto $name: the client's output is not a valid result (see above)"
    [[ -s $tmp/$tag.cdf ]] || die "$proto $name: the client wrote no CDF (--hist $tmp/$tag.cdf)"
    "${summarize[@]}" cdf "$tmp/$tag.cdf" || die "$proto $name: bad CDF file (see above)"
}

mkdir -p "$results"
# The catnap slot must report libos "catnap", unless DEMI_ECHO points it
# elsewhere to test this script; summarize.py then labels it as such.
catnap_libos=catnap
[[ -n ${DEMI_ECHO:-} ]] && catnap_libos=any

outputs=()
for proto in $protos; do
    for ((r = 1; r <= rounds; r++)); do
        run_echo catnap "$proto" "$r" "$catnap_libos" "$demi_echo" "${demi_echo_args[@]}"
        run_echo linux-blocking "$proto" "$r" linux-blocking "$linux_echo" --mode blocking
        run_echo linux-busypoll "$proto" "$r" linux-busypoll "$linux_echo" --mode busypoll
    done
    for name in catnap linux-blocking linux-busypoll; do
        "${summarize[@]}" median "$tmp/$name.$proto" "$rounds" ||
            die "$proto $name: could not pick the median round"
    done

    json=$results/echo_$proto.json
    "${summarize[@]}" merge "$json" --proto "$proto" --size "$size" --iters "$iters" \
        --warmup "$warmup" --server-cpu "$server_cpu" --client-cpu "$client_cpu" --nproc "$(nproc)" \
        "catnap=$tmp/catnap.$proto.json=$demi_echo" \
        "linux-blocking=$tmp/linux-blocking.$proto.json=$linux_echo" \
        "linux-busypoll=$tmp/linux-busypoll.$proto.json=$linux_echo" ||
        die "$proto: could not write $json"
    "${summarize[@]}" rounds "$json" "$tmp" "$proto" "$rounds" catnap linux-blocking linux-busypoll ||
        die "$proto: could not record the rounds in $json"
    outputs+=("$json")

    plot_args=()
    for name in catnap linux-blocking linux-busypoll; do
        plot_args+=("$tmp/$name.$proto.cdf" "$("${summarize[@]}" label "$tmp/$name.$proto.json" "$name")")
    done
    png=$results/echo_${proto}_cdf.png
    title="${proto^^} echo, $size B, $iters round trips, 127.0.0.1, server cpu $server_cpu / client cpu $client_cpu"
    gnuplot -c "$here/plot_cdf.gp" "$png.tmp" "$title" "${plot_args[@]}" 2>"$tmp/gnuplot.err" || {
        show_log "$tmp/gnuplot.err"
        die "$proto: gnuplot failed to draw $png"
    }
    [[ -s $png.tmp ]] || die "$proto: gnuplot wrote no image"
    mv -f "$png.tmp" "$png"
    echo "bench: wrote $json and $png" >&2
done

inetb=$build/bench/inet_bench
if [[ -x $inetb ]]; then
    echo "bench: inet_bench (the TCP/IP stack on dev/sim)" >&2
    rc=0
    timeout -k 5 "$client_timeout" "$inetb" >"$tmp/inet.out" 2>"$tmp/inet.err" || rc=$?
    if ((rc != 0)); then
        echo "bench: error: inet_bench failed (status $rc)" >&2
        show_log "$tmp/inet.err"
        exit 1
    fi
    "${summarize[@]}" json "$tmp/inet.out" || die "inet_bench did not print one JSON object"
    cp "$tmp/inet.out" "$results/inet.json.tmp"
    mv -f "$results/inet.json.tmp" "$results/inet.json"
    echo "bench: wrote $results/inet.json" >&2
fi

sched=$build/bench/sched_bench
if [[ -x $sched ]]; then
    echo "bench: sched_bench" >&2
    rc=0
    timeout -k 5 "$client_timeout" "$sched" >"$tmp/sched.out" 2>"$tmp/sched.err" || rc=$?
    if ((rc != 0)); then
        echo "bench: error: sched_bench failed (status $rc)" >&2
        show_log "$tmp/sched.err"
        exit 1
    fi
    "${summarize[@]}" json "$tmp/sched.out" || die "sched_bench did not print one JSON object"
    cp "$tmp/sched.out" "$results/sched.json.tmp"
    mv -f "$results/sched.json.tmp" "$results/sched.json"
    echo "bench: wrote $results/sched.json" >&2
fi

"${summarize[@]}" table "${outputs[@]}"

# cattree: appends against write()+fdatasync() (bench/storage.sh).
if [[ -x $build/bench/storage_bench ]]; then
    "$here/storage.sh" "$build"
fi

# catnip over DPDK net_memif against Linux over loopback (bench/catnip.sh;
# it needs root, and says so and skips without it). BENCH_CATNIP=0 skips it.
if [[ ${BENCH_CATNIP:-1} != 0 ]]; then
    "$here/catnip.sh" "$build"
fi

# Where a catnip echo server's time goes, layer by layer (perf samples;
# bench/catnip_profile.sh, root and perf). BENCH_PROFILE=0 skips it.
if [[ ${BENCH_PROFILE:-1} != 0 ]]; then
    "$here/catnip_profile.sh" "$build"
fi

# demi-kv against redis-server with redis-benchmark (bench/kv.sh, issue 7);
# BENCH_KV=0 skips it.
if [[ ${BENCH_KV:-1} != 0 ]]; then
    "$here/kv.sh" "$build"
fi

# catpowder over veth against Linux (bench/catpowder.sh): needs root, and
# says so and does nothing without it.
if [[ -x $build/bench/catpowder_cost ]]; then
    "$here/catpowder.sh" "$build"
fi

# Throughput with 1..N instances sharing one device (bench/scale.sh, issue
# 14): needs root, and says so and does nothing without it. BENCH_SCALE=0
# skips it.
if [[ ${BENCH_SCALE:-1} != 0 ]]; then
    "$here/scale.sh" "$build"
fi

# demi-kv --threads 2 against one thread, redis-benchmark over loopback
# (bench/kv_threads.sh, issue 14). BENCH_KV_THREADS_RUN=0 skips it.
if [[ ${BENCH_KV_THREADS_RUN:-1} != 0 ]]; then
    "$here/kv_threads.sh" "$build"
fi

# demi-kv on catpowder and catnip against redis-server over veth
# (bench/kv_bypass.sh, issue 7): needs root, and says so and does nothing
# without it. BENCH_KV_BYPASS=0 skips it.
if [[ ${BENCH_KV_BYPASS:-1} != 0 ]]; then
    "$here/kv_bypass.sh" "$build"
fi

# TxnStore on catnap (127.0.0.1) and, as root, on catpowder across
# namespaces on a bridge: 3 replicas, YCSB-T and Retwis in qw and occ
# (bench/txn.sh, issue 12). BENCH_TXN=0 skips it.
if [[ ${BENCH_TXN:-1} != 0 ]]; then
    "$here/txn.sh" "$build"
fi

# What an idle server costs and how fast it wakes, per libOS (bench/idle.sh,
# issue 15); catnip over net_tap and catpowder need root. BENCH_IDLE=0 skips it.
if [[ ${BENCH_IDLE:-1} != 0 ]]; then
    "$here/idle.sh" "$build"
fi
