#!/usr/bin/env bash
# Key-value benchmark over a real link: redis-benchmark -t set,get in the
# Linux namespace of a scripts/netns.sh topology (veth, offloads off)
# against three servers in the other namespace, one at a time, on the same
# veth pair:
#   demi-kv-catpowder   demi-kv, LIBOS=catpowder over AF_XDP (copy mode)
#   demi-kv-catnip      demi-kv, LIBOS=catnip over DPDK's net_af_xdp vdev
#   redis-server        Debian's redis-server 7 on the Linux kernel's TCP/IP
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
# keyspace; each figure is its round with the median ops/s. Writes
# bench/results/kv_bypass.json (ops/s, p50, p99 per run, every round, both
# stacks' retransmissions, ratios demi-kv / redis-server, and the issue's
# targets, met or not) and prints a table.
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
#   BENCH_KVB_ROUNDS=3          rounds
#   BENCH_KVB_N1=20000          requests per test with -c 1
#   BENCH_KVB_N50=100000        requests per test with -c 50
#   BENCH_KVB_NP=400000         requests per test with -c 50 -P 16
#   BENCH_KVB_KEYSPACE=100000   -r: random keys out of this many
#   BENCH_KVB_SIZE=3            -d: value bytes (redis-benchmark's default)
#   BENCH_KVB_SERVERS="demi-kv-catpowder demi-kv-catnip redis-server"
#   BENCH_KVB_ID=54             scripts/netns.sh topology ID
#   BENCH_SERVER_CPU=1 / BENCH_CLIENT_CPU=0, BENCH_TIMEOUT=600, BENCH_RESULTS=<repo>/bench/results
#   DEMI_KV=BUILD/demi-kv       REDIS_SERVER=redis-server
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
# shellcheck source=../scripts/bypass.sh
. "$repo/scripts/bypass.sh"

die() {
    echo "bench/kv_bypass: error: $*" >&2
    exit 1
}

if [[ $(id -u) -ne 0 ]]; then
    echo "bench/kv_bypass: skipped: needs root (network namespaces, AF_XDP sockets)" >&2
    exit 0
fi

build_arg=${1:-build}
build=$(bench_build_dir "$build_arg")
[[ -d $build ]] || die "build directory '$build_arg' not found; run 'make build' first"

rounds=${BENCH_KVB_ROUNDS:-3}
n1=${BENCH_KVB_N1:-20000}
n50=${BENCH_KVB_N50:-100000}
np=${BENCH_KVB_NP:-400000}
keyspace=${BENCH_KVB_KEYSPACE:-100000}
size=${BENCH_KVB_SIZE:-3}
read -r -a servers <<<"${BENCH_KVB_SERVERS:-demi-kv-catpowder demi-kv-catnip redis-server}"
id=${BENCH_KVB_ID:-54}
server_cpu=${BENCH_SERVER_CPU:-1}
client_cpu=${BENCH_CLIENT_CPU:-0}
timeout_s=${BENCH_TIMEOUT:-600}
results=${BENCH_RESULTS:-$repo/bench/results}
demi_kv=${DEMI_KV:-$build/demi-kv}
redis_server=${REDIS_SERVER:-redis-server}
port=6379

for v in rounds n1 n50 np keyspace size timeout_s id; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v='${!v}' is not a positive integer"
done
for v in server_cpu client_cpu; do
    [[ ${!v} =~ ^(0|[1-9][0-9]*)$ ]] || die "$v='${!v}' is not a CPU number"
done
for s in "${servers[@]}"; do
    case $s in
    demi-kv-catpowder | demi-kv-catnip | redis-server) ;;
    *) die "BENCH_KVB_SERVERS: unknown server '$s'" ;;
    esac
done
[[ " ${servers[*]} " == *" redis-server "* ]] || die "BENCH_KVB_SERVERS must include redis-server (the baseline)"
for tool in ip ethtool nstat taskset timeout python3 redis-benchmark redis-cli "$redis_server"; do
    command -v "$tool" >/dev/null || die "'$tool' not found (scripts/deps.sh installs it)"
done
[[ -x $demi_kv ]] || die "demi-kv not built: $demi_kv (run 'make build')"
for cpu in "$server_cpu" "$client_cpu"; do
    taskset -c "$cpu" true 2>/dev/null || die "cannot run on CPU $cpu; set BENCH_SERVER_CPU/BENCH_CLIENT_CPU"
done
rc=0
bypass_socket_check catpowder-xdp || rc=$?
if ((rc == 2)); then
    echo "bench/kv_bypass: skipped: this kernel has no AF_XDP sockets ($bypass_why)" >&2
    exit 0
fi
((rc == 0)) || die "cannot open an AF_XDP socket: $bypass_why"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/demi-bench-kvb.XXXXXX")
server_pid=
addr_added=0
alive() {
    local st
    st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ -n $st && $st != Z* ]]
}
cleanup() {
    if [[ -n $server_pid ]]; then
        kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 30); do alive "$server_pid" || break; sleep 0.1; done
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    "$repo/scripts/netns.sh" down "$id" || true
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

show_log() {
    if [[ -s $1 ]]; then tail -n 20 "$1" | sed 's/^/    | /' >&2; else echo "    | (empty)" >&2; fi
}

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
    for _ in $(seq 200); do
        [[ $(ip netns exec "$ns_b" timeout 2 redis-cli -h "$ip_a" -p "$port" PING 2>/dev/null) == PONG ]] && return 0
        alive "$server_pid" || break
        sleep 0.1
    done
    echo "bench/kv_bypass: error: $name did not answer PING from $ns_b within 20 s" >&2
    show_log "$tmp/$tag.err"
    show_log "$tmp/$tag.out"
    exit 1
}

stop_server() {
    local name=$1 tag=$2 pid=$server_pid rc=0
    kill -INT "$pid" 2>/dev/null || true
    for _ in $(seq 100); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        server_pid=
        show_log "$tmp/$tag.err"
        die "$name did not exit within 10 s of SIGINT"
    fi
    wait "$pid" || rc=$?
    server_pid=
    ((rc == 0)) || {
        show_log "$tmp/$tag.err"
        die "$name exited with status $rc on SIGINT"
    }
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
        for name in "${servers[@]}"; do
            tag=$name.$cfg.$r
            read -r -a args <<<"$(config_args "$cfg")"
            echo "bench/kv_bypass: round $r, $cfg, $name: redis-benchmark ${args[*]} -t set,get -r $keyspace -d $size" >&2
            start_server "$name" "$tag"
            l0=$(linux_retrans)
            snap0=$(cpu_snap)
            child_cpu_ms
            cpu0=$ms t0=$(date +%s%N)
            rc=0
            timeout -k 5 "$timeout_s" ip netns exec "$ns_b" taskset -c "$client_cpu" redis-benchmark -h "$ip_a" \
                -p "$port" -t set,get -r "$keyspace" -d "$size" "${args[@]}" --csv >"$tmp/$tag.csv" \
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
            stop_server "$name" "$tag"
            if [[ $name == demi-kv-* ]]; then
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
            printf '{"linux_retrans": %d, "server_retrans": %s, "server_kernel_rx_dropped": %s, "server_device": %s, "client_cpu_busy": %s, "server_cpu_busy": %s, "client_process_cpu": %s}\n' \
                $((l1 - l0)) "$o" "$d" "$k" "$(cpu_busy "$snap0" "$snap1" "$client_cpu")" "$(cpu_busy "$snap0" "$snap1" "$server_cpu")" \
                "$(awk -v c=$((cpu1 - cpu0)) -v t=$(((t1 - t0) / 1000000)) 'BEGIN { printf "%.3f", t ? c / t : 0 }')" \
                >"$tmp/$tag.counters"
        done
    done
done

mkdir -p "$results"
python3 "$here/kv_bypass_summary.py" "$tmp" "$results/kv_bypass.json" --rounds "$rounds" \
    --servers "${servers[*]}" --server-cpu "$server_cpu" --client-cpu "$client_cpu" --nproc "$(nproc)" \
    --keyspace "$keyspace" --size "$size" --n1 "$n1" --n50 "$n50" --np "$np" \
    --bench-version "$(redis-benchmark --version | head -n 1)" \
    --server-version "$("$redis_server" --version | head -n 1)" --demi-kv "$demi_kv" \
    --topology "scripts/netns.sh topology $id: $ns_a ($if_a, $ip_a) <-veth-> $ns_b" ||
    die "could not summarize the runs"
echo "bench/kv_bypass: wrote $results/kv_bypass.json" >&2
python3 "$here/kv_bypass_summary.py" --table "$results/kv_bypass.json"
