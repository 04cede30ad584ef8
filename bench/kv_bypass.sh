#!/usr/bin/env bash
# Key-value benchmark over a real link: redis-benchmark's default test list
# (or BENCH_KVB_TESTS / BENCH_KV_TESTS, e.g. set,get) in the Linux namespace of a scripts/netns.sh topology (veth, offloads off)
# against three servers in the other namespace, one at a time, on the same
# veth pair:
#   demi-kv-catpowder   demi-kv, LIBOS=catpowder over AF_XDP (copy mode)
#   demi-kv-catnip      demi-kv, LIBOS=catnip over DPDK's net_af_xdp vdev
#   redis-server        Debian's redis-server 7 on the Linux kernel's TCP/IP
#   redis-preload-catpowder, redis-preload-catnip
#                       the same unmodified redis-server under
#                       LD_PRELOAD=libdemi-posix.so (issue 13), on catpowder
#                       (AF_XDP) and on catnip (net_af_xdp)
# The two demi-kv runs own the server side's address in libdemi's stack
# (the interface has no kernel address then, see scripts/netns.sh); for the
# redis-server runs the same interface gets the same address in the kernel,
# and loses it again afterwards. Same namespaces, same veth, same MAC, same
# client, same address: only the server's stack differs.
#
# Server on CPU 1 (catnip: its EAL's -l 1, as in bench/catnip.sh; the
# others: taskset), redis-benchmark on CPU 0. Three client configurations
# (-c 1, -c 50, -c 50 -P 16). Each round runs every configuration on every
# server, interleaved, each on a freshly started server with an empty
# keyspace; each figure is its round with the median ops/s, per test. Writes
# bench/results/kv_bypass.json (ops/s and latencies per test and run, every
# round, both stacks' retransmissions and the CPUs' use per run, ratios
# demi-kv / redis-server per test, and the issue's targets, met or not),
# bench/results/kv_bypass.png (ops/s) and kv_bypass_latency.png (p50/p99),
# one panel per test, and prints a table.
#
# Like the other benchmarks it reports and never judges: it fails only
# when a run fails. Needs root (namespaces, AF_XDP): without it, or on a
# kernel without AF_XDP, it says so and exits 0, so `make bench` still
# works. Creates and removes the namespaces of one topology ID; stops only
# the processes it started, by PID.
#
#   bench/kv_bypass.sh [BUILD]     (also run by bench/run.sh, so by `make bench`)
#
# Environment:
#   BENCH_KVB_TESTS=            redis-benchmark -t list (default: BENCH_KV_TESTS,
#                               and if that is empty too, its default test list)
#   BENCH_KVB_ROUNDS=3          rounds
#   BENCH_KVB_N1=5000           requests per test with -c 1
#   BENCH_KVB_N50=20000         requests per test with -c 50
#   BENCH_KVB_NP=50000          requests per test with -c 50 -P 16
#   BENCH_KVB_KEYSPACE=100000   -r: random keys out of this many
#   BENCH_KVB_SIZE=3            -d: value bytes (redis-benchmark's default)
#   BENCH_KVB_SERVERS="demi-kv-catpowder demi-kv-catnip redis-server redis-preload-catpowder redis-preload-catnip"
#   BENCH_KVB_ID=54             scripts/netns.sh topology ID
#   BENCH_SERVER_CPU=1 / BENCH_CLIENT_CPU=0, BENCH_TIMEOUT=600, BENCH_RESULTS=<repo>/bench/results
#   DEMI_KV=BUILD/demi-kv       REDIS_SERVER=redis-server
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
bench_name=bench/kv_bypass
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
# shellcheck source=../scripts/bypass.sh
. "$repo/scripts/bypass.sh"

if [[ $(id -u) -ne 0 ]]; then
    echo "bench/kv_bypass: skipped: needs root (network namespaces, AF_XDP sockets)" >&2
    exit 0
fi

bench_build "${1:-build}"

tests=${BENCH_KVB_TESTS:-${BENCH_KV_TESTS:-}}
rounds=${BENCH_KVB_ROUNDS:-3}
n1=${BENCH_KVB_N1:-5000}
n50=${BENCH_KVB_N50:-20000}
np=${BENCH_KVB_NP:-50000}
keyspace=${BENCH_KVB_KEYSPACE:-100000}
size=${BENCH_KVB_SIZE:-3}
read -r -a servers <<<"${BENCH_KVB_SERVERS:-demi-kv-catpowder demi-kv-catnip redis-server redis-preload-catpowder redis-preload-catnip}"
id=${BENCH_KVB_ID:-54}
server_cpu=${BENCH_SERVER_CPU:-1}
client_cpu=${BENCH_CLIENT_CPU:-0}
timeout_s=${BENCH_TIMEOUT:-600}
results=${BENCH_RESULTS:-$repo/bench/results}
demi_kv=${DEMI_KV:-$build/demi-kv}
redis_server=${REDIS_SERVER:-redis-server}
port=6379

bench_positive rounds n1 n50 np keyspace size timeout_s id
bench_kv_tests BENCH_KVB_TESTS
for s in "${servers[@]}"; do
    case $s in
    demi-kv-catpowder | demi-kv-catnip | redis-server) ;;
    redis-preload-*) [[ -f $build/libdemi-posix.so ]] || die "libdemi-posix.so not built in $build (run 'make build')" ;;
    *) die "BENCH_KVB_SERVERS: unknown server '$s'" ;;
    esac
done
[[ " ${servers[*]} " == *" redis-server "* ]] || die "BENCH_KVB_SERVERS must include redis-server (the baseline)"
bench_need ip ethtool nstat taskset timeout python3 gnuplot redis-benchmark redis-cli "$redis_server"
[[ -x $demi_kv ]] || die "demi-kv not built: $demi_kv (run 'make build')"
bench_cpus "$server_cpu" "$client_cpu"
rc=0
bypass_socket_check catpowder-xdp || rc=$?
if ((rc == 2)); then
    echo "bench/kv_bypass: skipped: this kernel has no AF_XDP sockets ($bypass_why)" >&2
    exit 0
fi
((rc == 0)) || die "cannot open an AF_XDP socket: $bypass_why"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/demi-bench-kvb.XXXXXX")
addr_added=0
bench_on_exit() { "$repo/scripts/netns.sh" down "$id"; }
bench_traps

bypass_topology up "$id" || die "scripts/netns.sh up $id printed no topology"

linux_retrans() {
    ip netns exec "$ns_b" nstat -asz TcpRetransSegs | awk '$1 == "TcpRetransSegs" {print $2}'
}

# kernel_addr add|del: the server side's address in the kernel, for redis-server.
kernel_addr() {
    ip -n "$ns_a" addr "$1" "$ip_a/24" dev "$if_a"
    if [[ $1 == add ]]; then addr_added=1; else addr_added=0; fi
}

# start_server NAME TAG: on the server CPU in the bypass namespace; sets
# $server_pid once the server answers PING from the Linux side.
start_server() {
    local name=$1 tag=$2
    local -a cmd
    case $name in
    demi-kv-catpowder)
        read -r -a e <<<"$(bypass_env catpowder-xdp "$if_a" "$ip_a" "$tmp")"
        cmd=(taskset -c "$server_cpu" env "${e[@]}" DEMI_LOG=info "$demi_kv" --addr "$ip_a:$port")
        ;;
    demi-kv-catnip)
        read -r -a e <<<"$(bypass_env catnip-afxdp "$if_a" "$ip_a" "$tmp" "$server_cpu")"
        cmd=(env "${e[@]}" DEMI_LOG=info "$demi_kv" --addr "$ip_a:$port")
        ;;
    redis-preload-catpowder | redis-preload-catnip)
        # Unmodified redis-server, its sockets on our stack (libdemi-posix(7)).
        if [[ $name == *catpowder ]]; then
            read -r -a e <<<"$(bypass_env catpowder-xdp "$if_a" "$ip_a" "$tmp")"
            cmd=(taskset -c "$server_cpu" env "${e[@]}")
        else
            read -r -a e <<<"$(bypass_env catnip-afxdp "$if_a" "$ip_a" "$tmp" "$server_cpu")"
            cmd=(env "${e[@]}")
        fi
        mkdir -p "$tmp/$tag.dir"
        cmd+=(DEMI_LOG=info LD_PRELOAD="$build/libdemi-posix.so" "$redis_server" --port "$port" --bind "$ip_a"
            --protected-mode no --save '' --appendonly no --dir "$tmp/$tag.dir" --daemonize no)
        ;;
    redis-server)
        kernel_addr add
        mkdir -p "$tmp/$tag.dir"
        # protected-mode off: it refuses clients not on loopback; this address
        # exists only on the veth pair of our own namespaces.
        cmd=(taskset -c "$server_cpu" "$redis_server" --port "$port" --bind "$ip_a" --protected-mode no --save '' --appendonly no
            --dir "$tmp/$tag.dir" --daemonize no)
        ;;
    esac
    ip netns exec "$ns_a" "${cmd[@]}" >"$tmp/$tag.out" 2>"$tmp/$tag.err" &
    server_pid=$!
    bench_wait 60 bench_pong ip netns exec "$ns_b" timeout 2 redis-cli -h "$ip_a" -p "$port" && return 0
    show_log "$tmp/$tag.err"
    show_log "$tmp/$tag.out"
    die "$name did not answer PING from $ns_b"
}

stop_server() {
    bench_stop_server "$1" "$tmp/$2.err"
    ((addr_added == 0)) || kernel_addr del
}

# ours TAG KEY: a counter demi-kv's stack logged as it exited (DEMI_LOG=info).
ours() {
    local v
    if [[ $2 == kernel_rx_dropped ]]; then
        v=$(grep -E '(xdp|packet|dpdk): kernel:' "$tmp/$1.err" | grep -o 'rx_dropped=[0-9]*' | cut -d= -f2 || true)
    else
        v=$(grep 'counters:' "$tmp/$1.err" | grep -oE "(^| )$2=[0-9]+" | cut -d= -f2 || true)
    fi
    echo "${v:-0}"
}

# cpu_snap: the client's and the server's CPU lines of /proc/stat.
cpu_snap() {
    awk -v c="cpu$client_cpu" -v s="cpu$server_cpu" '$1 == c || $1 == s' /proc/stat
}
# cpu_busy BEFORE AFTER CPU: the fraction of CPU's time not idle between
# two snapshots (user, system, interrupts and softirqs of every process:
# on veth, a frame's receive work runs on the sending CPU).
cpu_busy() {
    awk -v c="cpu$3" '$1 == c { t = 0; for (i = 2; i <= 9; i++) t += $i; idle = $5 + $6
        if (n++ == 0) { t0 = t; i0 = idle } else { printf "%.3f", (t - t0) ? 1 - (idle - i0) / (t - t0) : 0 } }' \
        <(echo "$1") <(echo "$2")
}

# child_cpu_ms: user + system CPU time of every child this shell has waited
# for so far, in ms (in $ms: `times` must run in this shell, not a subshell).
child_cpu_ms() {
    times >"$tmp/times"
    ms=$(awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60000 + a[2] * 1000 }
        printf "%d", t }' "$tmp/times")
}

# check_libos NAME TAG: the server that answered is the one its results will
# be labelled with. demi-kv names its libOS in INFO (libdemi_libos, from
# LIBOS) and libdemi logs which libOS it initialised (DEMI_LOG=info:
# "initialised catpowder on thread ...", and catpowder's "... via xdp");
# redis-server has neither.
check_libos() {
    local name=$1 tag=$2 libos want dev
    libos=$(sed -n 's/^libdemi_libos:\([a-z]*\).*/\1/p' "$tmp/$tag.info")
    case $name in
    demi-kv-catpowder) want=catpowder dev="catpowder: $ip_a on $if_a via xdp" ;;
    demi-kv-catnip) want=catnip dev="initialised catnip " ;;
    redis-preload-*)
        # redis-server's INFO is its own; libdemi's log says where it ran.
        want=${name#redis-preload-} dev="initialised $want "
        [[ $want == catpowder ]] && dev="catpowder: $ip_a on $if_a via xdp"
        grep -q "initialised $want " "$tmp/$tag.err" && grep -qF "$dev" "$tmp/$tag.err" || {
            show_log "$tmp/$tag.err"
            die "$name's log lacks 'initialised $want' or '$dev': did it run on $want? ($tag)"
        }
        return 0
        ;;
    redis-server)
        [[ -z $libos ]] || die "the redis-server run answered as a demi-kv on $libos ($tag)"
        grep -q '^redis_version:' "$tmp/$tag.info" || die "the redis-server run's INFO has no redis_version ($tag)"
        return 0
        ;;
    esac
    [[ $libos == "$want" ]] || die "$name answered INFO with libdemi_libos '${libos:-?}', not $want ($tag)"
    grep -q "initialised $want " "$tmp/$tag.err" && grep -qF "$dev" "$tmp/$tag.err" || {
        show_log "$tmp/$tag.err"
        die "$name's log lacks 'initialised $want' or '$dev': did it run on $want? ($tag)"
    }
}

# run ROUND CONFIG NAME TAG ARG...: one redis-benchmark run (bench_kv_rounds)
# on a freshly started server, with both stacks' retransmissions and the
# CPUs' use over it in $tmp/TAG.counters.
run() {
    local r=$1 cfg=$2 name=$3 tag=$4 rc=0 l0 l1 snap0 snap1 cpu0 cpu1 t0 t1 o d k
    shift 4
    echo "bench/kv_bypass: round $r, $cfg, $name: redis-benchmark $* ${test_args[*]} -r $keyspace -d $size ($what)" >&2
    start_server "$name" "$tag"
    l0=$(linux_retrans)
    snap0=$(cpu_snap)
    child_cpu_ms
    cpu0=$ms t0=$(date +%s%N)
    timeout -k 5 "$timeout_s" ip netns exec "$ns_b" taskset -c "$client_cpu" redis-benchmark -h "$ip_a" \
        -p "$port" "${test_args[@]}" -r "$keyspace" -d "$size" "$@" --csv >"$tmp/$tag.csv" \
        2>"$tmp/$tag.bench.err" || rc=$?
    if ((rc != 0)); then
        show_log "$tmp/$tag.bench.err"
        show_log "$tmp/$tag.err"
        die "redis-benchmark against $name ($cfg, round $r) failed with status $rc"
    fi
    snap1=$(cpu_snap)
    child_cpu_ms
    cpu1=$ms t1=$(date +%s%N)
    l1=$(linux_retrans)
    ip netns exec "$ns_b" timeout 10 redis-cli -h "$ip_a" -p "$port" INFO server >"$tmp/$tag.info" 2>/dev/null ||
        die "INFO from $name failed after the run"
    stop_server "$name" "$tag"
    if [[ $name != redis-server ]]; then
        grep -q 'counters:' "$tmp/$tag.err" || {
            show_log "$tmp/$tag.err"
            die "$name logged no stack counters as it exited"
        }
        o=$(ours "$tag" tcp_retrans_segs) d=$(ours "$tag" kernel_rx_dropped)
        # The device's own loss counters as logged (AF_XDP: ring full, fill ring empty, ...).
        k=\"$(grep -E '(xdp|packet|dpdk): kernel:' "$tmp/$tag.err" | sed 's/.*kernel: //; s/ (.*//' | tr -d '"')\"
    else
        o=null d=null k=null
    fi
    check_libos "$name" "$tag"
    printf '{"linux_retrans": %d, "server_retrans": %s, "server_kernel_rx_dropped": %s, "server_device": %s, "client_cpu_busy": %s, "server_cpu_busy": %s, "client_process_cpu": %s}\n' \
        $((l1 - l0)) "$o" "$d" "$k" "$(cpu_busy "$snap0" "$snap1" "$client_cpu")" "$(cpu_busy "$snap0" "$snap1" "$server_cpu")" \
        "$(awk -v c=$((cpu1 - cpu0)) -v t=$(((t1 - t0) / 1000000)) 'BEGIN { printf "%.3f", t ? c / t : 0 }')" \
        >"$tmp/$tag.counters"
}

t_start=$(date +%s)
loadavg=$(cut -d' ' -f1-3 /proc/loadavg)
what=${tests:-"redis-benchmark's default tests"}
bench_kv_rounds run "${servers[@]}"
elapsed=$(($(date +%s) - t_start))

mkdir -p "$results"
python3 "$here/kv_bypass_summary.py" "$tmp" "$results/kv_bypass.json" --rounds "$rounds" \
    --servers "${servers[*]}" --server-cpu "$server_cpu" --client-cpu "$client_cpu" --nproc "$(nproc)" \
    --keyspace "$keyspace" --size "$size" --n1 "$n1" --n50 "$n50" --np "$np" \
    --bench-version "$(redis-benchmark --version | head -n 1)" \
    --server-version "$("$redis_server" --version | head -n 1)" --demi-kv "$demi_kv" \
    --topology "scripts/netns.sh topology $id: $ns_a ($if_a, $ip_a) <-veth-> $ns_b" \
    --tests "$tests" --elapsed "$elapsed" --loadavg "$loadavg" --plot-prefix "$tmp/kvb" ||
    die "could not summarize the runs"
title="redis-benchmark ${tests:+-t $tests }-r $keyspace -d $size over veth ($ns_b -> $ns_a), server cpu $server_cpu / client cpu $client_cpu"
bench_kv_plot "$tmp/kvb.dat" "$tmp/kvb.names.gp" "$title" "$results/kv_bypass" || die "could not plot the runs"
echo "bench/kv_bypass: wrote $results/kv_bypass.json, kv_bypass.png and kv_bypass_latency.png in ${elapsed} s of runs" >&2
python3 "$here/kv_bypass_summary.py" --table "$results/kv_bypass.json"
