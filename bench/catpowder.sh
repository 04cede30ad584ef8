#!/usr/bin/env bash
# catpowder against Linux over veth. The same client, bench/linux_echo
# busy-polling in the Linux namespace, talks over the same kind of veth pair
# to one of these servers, each in the other namespace:
#   catpowder-xdp     demi-echo, LIBOS=catpowder over AF_XDP       (topology A)
#   catpowder-packet  demi-echo, LIBOS=catpowder over AF_PACKET    (topology A)
#   linux-busypoll    bench/linux_echo --mode busypoll             (topology L)
#   linux-blocking    bench/linux_echo --mode blocking             (topology L)
# and, with both ends of the same kind (the fair comparison with
# linux-busypoll, whose two ends are Linux busy-polling):
#   catpowder-xdp-pair     demi-echo client and server, both catpowder
#                          over AF_XDP                             (topology P)
#   catpowder-packet-pair  the same over AF_PACKET                 (topology P)
# Topology A is scripts/netns.sh's (the server side has no kernel address:
# our stack owns it); topology L is the same with a kernel address on the
# server side, so that Linux serves there; topology P is A with the
# client side's kernel address removed too (our stack owns both ends). Server and client are pinned to
# different CPUs. Every configuration runs once per round, rounds
# interleaved, and reports its median round (this VM flips between latency
# modes from run to run; interleaving exposes every configuration to it).
#
# Three measurements:
#   echo   64 B TCP and UDP round trips: p50, p99, p99.9 (summarize.py)
#   bulk   TCP echo of BENCH_BULK_SIZE messages: Mbit/s each way,
#          catpowder against Linux busy-poll
#   cost   bench/catpowder_cost as the server: the stack's and libOS's work
#          per I/O, the device's system calls and copies apart
# Results: bench/results/catpowder.json and catpowder_{tcp,udp}_cdf.png. It
# reports figures and never judges them (the issue's targets are printed
# as met or not met); it fails only when a run fails.
#
#   bench/catpowder.sh [BUILD]     (also run by bench/run.sh, so by `make bench`)
#
# Needs root (namespaces, AF_XDP, AF_PACKET): without it, it says so and
# exits 0, so `make bench` still works. Touches only the namespaces of the
# two topology IDs it creates and removes; stops only what it started.
#
# Environment: BENCH_ITERS (100000), BENCH_WARMUP (1000), BENCH_ROUNDS (3),
# BENCH_PROTOS ("tcp udp"), BENCH_SERVER_CPU (1), BENCH_CLIENT_CPU (0),
# BENCH_TIMEOUT (600), BENCH_RESULTS (bench/results), as for bench/run.sh;
# BENCH_BULK_SIZE (16777216), BENCH_BULK_ITERS (8); CATPOWDER_IDS ("91 92 93": topologies A, L
# and P; the test scripts name theirs near their top: keep them apart).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
bench_name="bench: catpowder"
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
summarize=(python3 "$here/summarize.py")

if [[ $(id -u) -ne 0 ]]; then
    echo "bench: catpowder: skipped: needs root (network namespaces, AF_XDP and AF_PACKET sockets)" >&2
    exit 0
fi

bench_build "${1:-build}"

iters=${BENCH_ITERS:-100000}
warmup=${BENCH_WARMUP:-1000}
rounds=${BENCH_ROUNDS:-3}
protos=${BENCH_PROTOS:-tcp udp}
server_cpu=${BENCH_SERVER_CPU:-1}
client_cpu=${BENCH_CLIENT_CPU:-0}
client_timeout=${BENCH_TIMEOUT:-600}
results=${BENCH_RESULTS:-$repo/bench/results}
bulk_size=${BENCH_BULK_SIZE:-16777216}
bulk_iters=${BENCH_BULK_ITERS:-8}
read -r id_a id_l id_p <<<"${CATPOWDER_IDS:-91 92 93}"
size=64

bench_positive iters rounds bulk_size bulk_iters id_a id_l id_p
[[ $warmup =~ ^[0-9]+$ ]] || die "BENCH_WARMUP='$warmup' is not a number"
[[ $id_a != "$id_l" && $id_a != "$id_p" && $id_l != "$id_p" ]] || die "CATPOWDER_IDS needs three different IDs"
for p in $protos; do
    [[ $p == tcp || $p == udp ]] || die "BENCH_PROTOS: unknown protocol '$p'"
done
bench_need ip taskset timeout python3 gnuplot ps
demi_echo=$build/demi-echo
linux_echo=$build/bench/linux_echo
cost=$build/bench/catpowder_cost
for f in "$demi_echo" "$linux_echo" "$cost"; do
    [[ -x $f ]] || die "$f is not built (run 'make build')"
done
bench_cpus "$server_cpu" "$client_cpu"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/demi-bench-catpowder.XXXXXX")
bench_on_exit() {
    "$repo/scripts/netns.sh" down "$id_a" || true
    "$repo/scripts/netns.sh" down "$id_l" || true
    "$repo/scripts/netns.sh" down "$id_p" || true
}
bench_traps

"$repo/scripts/netns.sh" up "$id_a" >/dev/null
"$repo/scripts/netns.sh" up "$id_l" >/dev/null
ip -n "dm${id_l}a" addr add "10.200.$id_l.1/24" dev "dm${id_l}a"
"$repo/scripts/netns.sh" up "$id_p" >/dev/null
ip -n "dm${id_p}b" addr flush dev "dm${id_p}b"
ip_a=10.200.$id_a.1 ip_l=10.200.$id_l.1 ip_p=10.200.$id_p.1 ip_pc=10.200.$id_p.2

sigreset=()
if env --default-signal=INT true 2>/dev/null; then
    # shellcheck disable=SC2054 # the comma is env's list separator
    sigreset=(env --default-signal=INT,TERM)
fi

# server_cmd NAME: sets ns, ip and the server command for configuration
# NAME, and pair (the backend of a catpowder client, or empty: linux_echo).
server_cmd() {
    pair=
    case $1 in
    catpowder-xdp | catpowder-packet)
        ns=dm${id_a}a ip=$ip_a
        cmd=(env LIBOS=catpowder "LINUX_INTERFACE_NAME=dm${id_a}a" "LOCAL_IPV4_ADDR=$ip_a"
            "RAW_SOCKET_BACKEND=${1#catpowder-}" "$demi_echo" server)
        ;;
    catpowder-xdp-pair | catpowder-packet-pair)
        pair=${1#catpowder-} pair=${pair%-pair}
        ns=dm${id_p}a ip=$ip_p
        cmd=(env LIBOS=catpowder "LINUX_INTERFACE_NAME=dm${id_p}a" "LOCAL_IPV4_ADDR=$ip_p"
            "RAW_SOCKET_BACKEND=$pair" "$demi_echo" server)
        ;;
    linux-busypoll | linux-blocking)
        ns=dm${id_l}a ip=$ip_l
        cmd=("$linux_echo" server --mode "${1#linux-}")
        ;;
    *) die "unknown configuration $1" ;;
    esac
}

port=9000
# start_server TAG NS IP COMMAND...: on the server CPU in NS; waits for
# "ready IP:PORT" and sets server_pid.
start_server() {
    local tag=$1 sns=$2 sip=$3
    shift 3
    ip netns exec "$sns" taskset -c "$server_cpu" "${sigreset[@]}" "$@" >"$tmp/$tag.server.out" 2>"$tmp/$tag.server.err" &
    server_pid=$!
    bench_wait 60 grep -qs "^ready $sip:" "$tmp/$tag.server.out" && return 0
    show_log "$tmp/$tag.server.err"
    die "$tag: the server did not print 'ready $sip:PORT'"
}

# stop_server TAG: SIGINT; it must exit 0.
stop_server() {
    bench_stop_server "$1: the server" "$tmp/$1.server.err"
}

# client TAG IP ARGS...: on the client CPU, in the other namespace of IP's
# topology: linux_echo busy-polling, or (server_cmd set pair) demi-echo on
# catpowder over that backend.
client() {
    local tag=$1 cip=$2 rc=0
    shift 2
    local cns=dm${id_a}b prog=("$linux_echo" client --mode busypoll)
    [[ $cip == "$ip_l" ]] && cns=dm${id_l}b
    if [[ $cip == "$ip_p" ]]; then
        cns=dm${id_p}b
        prog=(env LIBOS=catpowder "LINUX_INTERFACE_NAME=dm${id_p}b" "LOCAL_IPV4_ADDR=$ip_pc"
            "RAW_SOCKET_BACKEND=$pair" "$demi_echo" client)
    fi
    timeout -k 5 "$client_timeout" ip netns exec "$cns" taskset -c "$client_cpu" "${prog[@]}" \
        --addr "$cip:$port" "$@" >"$tmp/$tag.client.out" 2>"$tmp/$tag.client.err" || rc=$?
    ((rc == 0)) || {
        show_log "$tmp/$tag.client.err"
        echo "    server log:" >&2
        show_log "$tmp/$tag.server.err"
        die "$tag: the client failed (status $rc)"
    }
}

# client_libos: the libos the client's JSON must name.
client_libos() {
    if [[ -n $pair ]]; then echo catpowder; else echo linux-busypoll; fi
}

# run_echo NAME PROTO ROUND: one measured run: $tmp/NAME.PROTO.ROUND.{json,cdf}.
run_echo() {
    local name=$1 proto=$2 r=$3 tag=$1.$2.$3 udp=()
    [[ $proto == udp ]] && udp=(--udp)
    server_cmd "$name"
    port=$((port + 1))
    echo "bench: catpowder: $proto $name, round $r (server cpu $server_cpu, client cpu $client_cpu)" >&2
    start_server "$tag" "$ns" "$ip" "${cmd[@]}" "${udp[@]}" --addr "$ip:$port" --size $size
    client "$tag" "$ip" "${udp[@]}" --size $size --iters "$iters" --warmup "$warmup" --hist "$tmp/$tag.cdf"
    stop_server "$tag"
    "${summarize[@]}" check "$tmp/$tag.client.out" "$tmp/$tag.json" --proto "$proto" --size $size \
        --iters "$iters" --libos "$(client_libos)" || die "$tag: bad client output"
    "${summarize[@]}" cdf "$tmp/$tag.cdf" || die "$tag: bad CDF"
}

# run_bulk NAME ROUND: TCP echo of bulk_size-byte messages: $tmp/bulk.NAME.ROUND.json.
run_bulk() {
    local name=$1 r=$2 tag=bulk.$1.$2
    server_cmd "$name"
    port=$((port + 1))
    echo "bench: catpowder: bulk $name, round $r" >&2
    start_server "$tag" "$ns" "$ip" "${cmd[@]}" --addr "$ip:$port" --size "$bulk_size"
    client "$tag" "$ip" --size "$bulk_size" --iters "$bulk_iters" --warmup 1
    stop_server "$tag"
    "${summarize[@]}" check "$tmp/$tag.client.out" "$tmp/$tag.json" --proto tcp --size "$bulk_size" \
        --iters "$bulk_iters" --libos "$(client_libos)" || die "$tag: bad client output"
}

# run_cost BACKEND PROTO ROUND: catpowder_cost as the server: $tmp/cost.BACKEND.PROTO.ROUND.json.
run_cost() {
    local be=$1 proto=$2 r=$3 tag=cost.$1.$2.$3 udp=()
    [[ $proto == udp ]] && udp=(--udp)
    port=$((port + 1))
    echo "bench: catpowder: cost $be $proto, round $r" >&2
    start_server "$tag" "dm${id_a}a" "$ip_a" env "LINUX_INTERFACE_NAME=dm${id_a}a" "LOCAL_IPV4_ADDR=$ip_a" \
        "RAW_SOCKET_BACKEND=$be" "$cost" "$proto" "$port"
    client "$tag" "$ip_a" "${udp[@]}" --size $size --iters "$iters" --warmup "$warmup"
    stop_server "$tag"
    tail -n 1 "$tmp/$tag.server.out" >"$tmp/$tag.json"
    "${summarize[@]}" json "$tmp/$tag.json" || die "$tag: catpowder_cost printed no JSON"
}

names=(catpowder-xdp catpowder-packet catpowder-xdp-pair catpowder-packet-pair linux-busypoll linux-blocking)
bulk_names=(catpowder-xdp catpowder-packet catpowder-xdp-pair catpowder-packet-pair linux-busypoll)
mkdir -p "$results"
for ((r = 1; r <= rounds; r++)); do
    for proto in $protos; do
        for name in "${names[@]}"; do
            run_echo "$name" "$proto" "$r"
        done
    done
    for name in "${bulk_names[@]}"; do
        run_bulk "$name" "$r"
    done
    for be in xdp packet; do
        for proto in $protos; do
            run_cost "$be" "$proto" "$r"
        done
    done
done

echo_args=()
for proto in $protos; do
    merge_args=()
    for name in "${names[@]}"; do
        "${summarize[@]}" median "$tmp/$name.$proto" "$rounds" || die "$proto $name: no median round"
        bin=$demi_echo
        [[ $name == linux-* ]] && bin=$linux_echo
        merge_args+=("$name=$tmp/$name.$proto.json=$bin")
    done
    "${summarize[@]}" merge "$tmp/echo_$proto.json" --proto "$proto" --size $size --iters "$iters" \
        --warmup "$warmup" --server-cpu "$server_cpu" --client-cpu "$client_cpu" --nproc "$(nproc)" \
        --address "veth, 10.200.$id_a.1 (catpowder) / 10.200.$id_l.1 (linux)" --subject catpowder \
        "${merge_args[@]}" || die "$proto: merge failed"
    "${summarize[@]}" rounds "$tmp/echo_$proto.json" "$tmp" "$proto" "$rounds" "${names[@]}" ||
        die "$proto: rounds failed"
    echo_args+=(--echo "$proto=$tmp/echo_$proto.json")

    # gnuplot -c takes nine arguments: three curves (the others are in the JSON).
    plot_args=()
    for name in catpowder-xdp catpowder-xdp-pair linux-busypoll; do
        plot_args+=("$tmp/$name.$proto.cdf" "$("${summarize[@]}" label "$tmp/$name.$proto.json" "$name")")
    done
    png=$results/catpowder_${proto}_cdf.png
    title="${proto^^} echo, $size B, over veth: client on cpu $client_cpu (Linux busy-polling; catpowder for xdp-pair), server on cpu $server_cpu"
    gnuplot -c "$here/plot_cdf.gp" "$png.tmp" "$title" "${plot_args[@]}" 2>"$tmp/gnuplot.err" || {
        show_log "$tmp/gnuplot.err"
        die "$proto: gnuplot failed"
    }
    mv -f "$png.tmp" "$png"
done

"${summarize[@]}" table "$tmp"/echo_*.json
"${summarize[@]}" catpowder "$results/catpowder.json" "${echo_args[@]}" --tmp "$tmp" --rounds "$rounds" \
    --protos "$protos" --bulk-names "${bulk_names[*]}" --bulk-size "$bulk_size" --cost-backends "xdp packet" \
    --note "Client: bench/linux_echo --mode busypoll in the Linux namespace for every server but the *-pair ones, whose client is demi-echo on catpowder over the same backend (both ends ours, as both ends of linux-busypoll are Linux busy-polling); catpowder runs demi-echo (its default spin_us: it polls while a request is due)." \
    --note "Topology $id_a: scripts/netns.sh (no kernel address on the server side); topology $id_l: the same plus 10.200.$id_l.1/24 on the server side for the Linux servers; topology $id_p: no kernel address on either side (the *-pair runs). Offloads off on all." \
    --note "cost: bench/catpowder_cost, the stack and libOS polled by hand with the device timed apart; per I/O = per echoed message / 2 (one receive, one send)." ||
    die "could not write $results/catpowder.json"
echo "bench: catpowder: wrote $results/catpowder.json and $results/catpowder_{tcp,udp}_cdf.png" >&2
