#!/usr/bin/env bash
# bench/idle.sh: what an idle demi-echo server costs, and how fast it wakes.
# For each server (catnap on 127.0.0.1; catnip over net_memif with a catnip
# client; catnip over net_tap, the one virtual DPDK port with a receive
# interrupt, and catpowder over AF_XDP on a veth, each with a catnap client
# in its namespace): the CPU time the server uses while no request comes
# (all its threads, from /proc/PID/task/*/schedstat, over IDLE_S seconds),
# the p50 of a busy 64 B TCP echo, and the latency of the first echo after
# a PAUSE_MS pause (demi-echo client --pause), once with the server's
# default SPIN_US (it sleeps when idle) and once with SPIN_US of an hour (it
# never sleeps): the price of sleeping. It reports and never judges.
#   bench/idle.sh [BUILD]   (env: IDLE_S=5 PAUSE_MS=1000 PAUSES=10 BENCH_IDLE_ID=123
#                           BENCH_RESULTS=<repo>/bench/results, where idle.json goes)
# Without root only catnap and catnip/memif run.
set -euo pipefail
bench_name=idle
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
bench_build "${1:-build}"
idle_s=${IDLE_S:-5} pause_ms=${PAUSE_MS:-1000} pauses=${PAUSES:-10}
bench_positive idle_s pause_ms pauses
echo_bin=$build/demi-echo
[[ -x $echo_bin ]] || die "demi-echo not built in $build"
bench_need python3
id=${BENCH_IDLE_ID:-123}
tmp=$(mktemp -d)
out=${BENCH_RESULTS:-$bench_repo/bench/results}/idle.json
export HUGEPAGES=off
root=0
[[ $(id -u) -eq 0 ]] && root=1
tap_ns=dmidle$id
bench_on_exit() {
    if ((root)); then
        ip netns del "$tap_ns" 2>/dev/null || true
        "$bench_repo/scripts/netns.sh" down "$id" >/dev/null 2>&1 || true
    fi
}
bench_traps

# cpu_ns PID: CPU time of all of PID's threads so far, in ns.
cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{s += $1} END {printf "%d", s}'; }

# start SPIN LOG CMD...: the server CMD in the background with SPIN_US=SPIN;
# waits for its "ready" line (a hang guard of 60 s).
start() {
    local spin=$1 log=$2
    shift 2
    env SPIN_US="$spin" DEMI_LOG=info "$@" >"$log" 2>&1 &
    server_pid=$!
    bench_wait 60 grep -q '^ready' "$log" || {
        show_log "$log"
        die "server did not start: $*"
    }
}

# field OUTPUT KEY: KEY of the last (JSON) line of a demi-echo client's output.
field() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])[sys.argv[1]])' "$2" <<<"$1"; }

results=()
# measure NAME CLIENT-PREFIX... -- SERVER-CMD...: the whole measurement of one
# server (the client prefix runs demi-echo client with its arguments).
measure() {
    local name=$1 client=() server=() spin
    shift
    while [[ $1 != -- ]]; do client+=("$1"); shift; done
    shift
    server=("$@")
    local idle_us busy after_sleep after_spin
    for spin in 1000 3600000000; do
        [[ -n ${setup:-} ]] && $setup
        start "$spin" "$tmp/$name.$spin.log" "${server[@]}"
        "${client[@]}" --iters 2000 --warmup 200 >/dev/null
        if [[ $spin == 1000 ]]; then
            sleep 1
            local c0 t0 c1 t1
            c0=$(cpu_ns "$server_pid") t0=$(date +%s%N)
            sleep "$idle_s"
            c1=$(cpu_ns "$server_pid") t1=$(date +%s%N)
            idle_us=$(python3 -c "print(round(($c1 - $c0) / 1e3))")
            idle_pct=$(python3 -c "print(round(100 * ($c1 - $c0) / ($t1 - $t0), 2))")
            busy=$("${client[@]}" --iters 20000 --warmup 1000)
            after_sleep=$("${client[@]}" --iters "$pauses" --warmup 10 --pause "$pause_ms")
        else
            after_spin=$("${client[@]}" --iters "$pauses" --warmup 10 --pause "$pause_ms")
        fi
        bench_stop_server "$name server" "$tmp/$name.$spin.log"
    done
    printf '%-16s idle CPU %6s%% of a core (%s us in %s s); busy p50 %s us; first echo after %s ms: p50 %s us (max %s) sleeping, %s us (max %s) polling\n' \
        "$name" "$idle_pct" "$idle_us" "$idle_s" "$(field "$busy" p50_us)" "$pause_ms" "$(field "$after_sleep" p50_us)" \
        "$(field "$after_sleep" max_us)" "$(field "$after_spin" p50_us)" "$(field "$after_spin" max_us)"
    results+=("{\"server\": \"$name\", \"idle_cpu_pct\": $idle_pct, \"idle_cpu_us\": $idle_us, \"idle_s\": $idle_s, \"busy\": $(tail -1 <<<"$busy"), \"after_pause_sleeping\": $(tail -1 <<<"$after_sleep"), \"after_pause_polling\": $(tail -1 <<<"$after_spin")}")
}

port=7000
measure catnap env LIBOS=catnap "$echo_bin" client --addr 127.0.0.1:$port -- \
    env LIBOS=catnap "$echo_bin" server --addr 127.0.0.1:$port

# Server on CPU 1, client on CPU 0 (EAL -l, as bench/catnip.sh does): the
# EAL's interrupt thread stays off the polling core.
bench_memif_config 1 server 10.88.0.1 02:00:00:00:88:01 "$tmp/m.sock" >"$tmp/ms.yaml"
bench_memif_config 0 client 10.88.0.2 02:00:00:00:88:02 "$tmp/m.sock" >"$tmp/mc.yaml"
measure catnip-memif env CONFIG_PATH="$tmp/mc.yaml" "$echo_bin" client --addr 10.88.0.1:$port -- \
    env CONFIG_PATH="$tmp/ms.yaml" "$echo_bin" server --addr 10.88.0.1:$port

if ((root)); then
    ip netns add "$tap_ns"
    ip -n "$tap_ns" link set lo up
    cat >"$tmp/tap.yaml" <<YAML
demikernel:
  local_ipv4_addr: 10.203.$id.2
dpdk:
  eal_init: ["--no-pci", "--no-huge", "-m", "256", "--vdev=net_tap0,iface=dtap0,mac=02:00:00:00:03:02"]
libdemi:
  libos: catnip
YAML
    # The tap interface exists once the server runs: address it then.
    tap_up() {
        (
            for _ in $(seq 600); do
                ip -n "$tap_ns" link show dtap0 >/dev/null 2>&1 && break
                sleep 0.1
            done
            ip -n "$tap_ns" addr add "10.203.$id.1/24" dev dtap0
            ip -n "$tap_ns" link set dtap0 up
        ) &
    }
    setup=tap_up
    measure catnip-tap ip netns exec "$tap_ns" env LIBOS=catnap "$echo_bin" client --addr "10.203.$id.2:$port" -- \
        ip netns exec "$tap_ns" env CONFIG_PATH="$tmp/tap.yaml" "$echo_bin" server --addr "10.203.$id.2:$port"
    setup=
    eval "$("$bench_repo/scripts/netns.sh" up "$id")"
    measure catpowder-xdp ip netns exec "$DEMI_NS_LINUX" env LIBOS=catnap "$echo_bin" client \
        --addr "$DEMI_IP_BYPASS:$port" -- \
        ip netns exec "$DEMI_NS_BYPASS" env LIBOS=catpowder LINUX_INTERFACE_NAME="$DEMI_IF_BYPASS" \
        LOCAL_IPV4_ADDR="$DEMI_IP_BYPASS" RAW_SOCKET_BACKEND=xdp "$echo_bin" server --addr "$DEMI_IP_BYPASS:$port"
else
    echo "idle: not root: catnip over net_tap and catpowder (namespaces) left out"
fi

mkdir -p "$(dirname "$out")"
{
    echo "{\"bench\": \"idle\", \"date\": \"$(date -u +%FT%TZ)\", \"cpus\": $(nproc), \"pause_ms\": $pause_ms,"
    echo " \"results\": ["
    (IFS=,; echo "${results[*]}")
    echo "]}"
} | python3 -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps(d, indent=1))' >"$out"
echo "wrote $out"
