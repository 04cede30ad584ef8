#!/usr/bin/env bash
# catnip over DPDK net_memif (two processes, shared memory, no kernel on
# the packet path) against Linux over 127.0.0.1, in the same run:
#   - the floor: raw 64 B frames ping-ponged over memif (bench/dpdk_l2);
#   - 64 B echo round trips, TCP and UDP: demi-echo on catnip vs
#     bench/linux_echo (blocking and busy-poll);
#   - bulk: 64 KiB echoes over one TCP connection for a few seconds, as
#     bytes per second each way: catnip vs linux_echo busy-poll; catnip
#     both at the default MTU of 1500 and with jumbo frames
#     (BENCH_JUMBO_MTU, 9000; 0 leaves that run out), the link's largest
#     frames for each (Linux's loopback has an MTU of 65536);
#   - streams: 64 KiB pushes one way over one TCP connection into a
#     sink for a few seconds (iperf-style, one-second samples): catnip at
#     both MTUs vs linux_echo busy-poll, and the floor: raw frames of the
#     largest MTU's size streamed one way over memif (dpdk_l2 --stream),
#     as frames per second times the TCP payload such a frame carries.
# Server on one CPU, client on the other; BENCH_ROUNDS rounds, each running
# every configuration once, interleaved (this VM flips between latency
# modes); each configuration reports its median round by p50 (bulk: by
# rate). Writes bench/results/catnip.json and prints a table. It reports,
# never judges; it fails only when a run fails.
#
# BENCH_BASE=DIR, a build of an earlier commit (scripts/build-at.sh COMMIT
# DIR prints one), adds that build's demi-echo to every round, TCP, UDP
# and bulk, right beside the current one's (in alternating order), and
# reports the per-I/O cost and bulk rate of both and their ratios: a change
# measured against what it changed, in one run and one VM mode.
#
#   bench/catnip.sh [BUILD]
# Environment: BENCH_ROUNDS=3 BENCH_ITERS=100000 BENCH_WARMUP=1000
#   BENCH_BULK_SECONDS=3 BENCH_JUMBO_MTU=9000 BENCH_SERVER_CPU=1 BENCH_CLIENT_CPU=0 BENCH_RESULTS=<repo>/bench/results
#   BENCH_BASE=<build of an earlier commit> (none)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
bench_name=bench/catnip
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
bench_build "${1:-build}"
rounds=${BENCH_ROUNDS:-3}
iters=${BENCH_ITERS:-100000}
warmup=${BENCH_WARMUP:-1000}
bulk_secs=${BENCH_BULK_SECONDS:-3}
scpu=${BENCH_SERVER_CPU:-1}
ccpu=${BENCH_CLIENT_CPU:-0}
results=${BENCH_RESULTS:-$repo/bench/results}
jumbo=${BENCH_JUMBO_MTU:-9000}
[[ $jumbo =~ ^[0-9]+$ ]] || die "BENCH_JUMBO_MTU=$jumbo is not a number"
stream_mtu=1500
((jumbo > 1500)) && stream_mtu=$jumbo

if [[ $(id -u) -ne 0 ]]; then
    echo "bench/catnip: skipped: DPDK's memif needs root here (run as root for catnip figures)" >&2
    exit 0
fi
for b in demi-echo bench/linux_echo bench/dpdk_l2; do
    [[ -x $build/$b ]] || die "$build/$b not built (make build)"
done
base=${BENCH_BASE:-} base_commit=
if [[ -n $base ]]; then
    [[ -x $base/demi-echo ]] || die "BENCH_BASE=$base: no demi-echo there (scripts/build-at.sh builds one)"
    base_commit=$(cat "$base/COMMIT" 2>/dev/null || echo "$base")
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/demi-catnip-bench.XXXXXX")
bench_traps

# catnip's processes are pinned by their EAL (-l CPU: the polling thread on
# CPU), not by taskset: with taskset the EAL's interrupt thread shares the
# polling thread's only CPU, and DPDK 22.11's memif PMD, which unmaps the
# shared memory from that thread when the peer leaves, can then pull it
# from under a receive burst it preempted (a crash at the end of a run).
# configs SOCKET [MTU]: both ends' configurations for a memif link on
# SOCKET, into $tmp/s.yaml (server, 10.77.0.1 on the server CPU) and
# $tmp/c.yaml (client, 10.77.0.2 on the client CPU), at MTU (1500).
configs() {
    MTU=${2:-1500} bench_memif_config "$scpu" server 10.77.0.1 02:00:00:00:77:01 "$1" >"$tmp/s.yaml"
    MTU=${2:-1500} bench_memif_config "$ccpu" client 10.77.0.2 02:00:00:00:77:02 "$1" >"$tmp/c.yaml"
}

n=0
# run TAG SERVER_ARGS -- CLIENT_ARGS: the server in the background on the
# server CPU (waits for its "ready" line), the client on the client CPU
# (catnip's processes are placed by their EAL's -l instead: see below); the
# client's JSON line goes to $tmp/TAG.json. Servers stop on SIGINT and must
# exit 0 (dpdk_l2's server stops by itself at the client's goodbye).
run() {
    local tag=$1; shift
    local sargs=() cargs=()
    while [[ $1 != -- ]]; do sargs+=("$1"); shift; done
    shift
    cargs=("$@")
    n=$((n + 1))
    local spin=(taskset -c "$scpu") cpin=(taskset -c "$ccpu")
    if [[ $tag == catnip* || $tag == l2-stream* ]]; then spin=(); cpin=(); fi
    "${spin[@]}" "${sargs[@]}" >"$tmp/$tag.sout" 2>"$tmp/$tag.serr" &
    server_pid=$!
    local st=0
    bench_wait 60 grep -qs '^ready' "$tmp/$tag.sout" || st=$?
    if ((st != 0)); then
        show_log "$tmp/$tag.serr"
        ((st == 1)) && die "$tag: the server exited early"
        die "$tag: the server never said ready"
    fi
    if ! timeout 600 "${cpin[@]}" "${cargs[@]}" >"$tmp/$tag.cout" 2>"$tmp/$tag.cerr"; then
        show_log "$tmp/$tag.cerr"
        die "$tag: the client failed"
    fi
    if [[ ${sargs[0]} != *dpdk_l2 ]]; then
        bench_stop_server "$tag: the server" "$tmp/$tag.serr"
    else
        local rc=0
        wait "$server_pid" || rc=$?
        server_pid=
        ((rc == 0)) || { show_log "$tmp/$tag.serr"; die "$tag: the server exited with $rc"; }
    fi
    grep '^{' "$tmp/$tag.cout" | tail -1 >"$tmp/$tag.json"
    [[ -s $tmp/$tag.json ]] || die "$tag: no JSON result from the client"
    echo "bench/catnip: $tag: $(cat "$tmp/$tag.json")" >&2
}

# builds_in_order ROUND: "cur" alone, or with BENCH_BASE "cur base" in odd
# rounds and "base cur" in even ones.
builds_in_order() {
    if [[ -z $base ]]; then
        echo cur
    elif (($1 % 2)); then
        echo cur base
    else
        echo base cur
    fi
}

echo_args=(--iters "$iters" --warmup "$warmup" --size 64)
for ((r = 1; r <= rounds; r++)); do
    sock=$tmp/l2.$r.sock
    run "l2.$r" "$build/bench/dpdk_l2" server --socket "$sock" -- \
        "$build/bench/dpdk_l2" client --socket "$sock" --iters "$iters" --warmup "$warmup"
    for proto in tcp udp; do
        udp=()
        [[ $proto == udp ]] && udp=(--udp)
        sock=$tmp/$proto.$r.sock
        configs "$sock"
        # The current build and (BENCH_BASE) the earlier one, in alternating
        # order from round to round.
        for which in $(builds_in_order "$r"); do
            b=$build tag=catnip-$proto
            [[ $which == base ]] && b=$base tag=catnip-base-$proto
            run "$tag.$r" env CONFIG_PATH="$tmp/s.yaml" "$b/demi-echo" server "${udp[@]}" \
                --addr 10.77.0.1:7000 -- \
                env CONFIG_PATH="$tmp/c.yaml" "$b/demi-echo" client "${udp[@]}" --addr 10.77.0.1:7000 "${echo_args[@]}"
        done
        for mode in blocking busypoll; do
            port=$((7100 + n))
            run "linux-$mode-$proto.$r" "$build/bench/linux_echo" server "${udp[@]}" --mode "$mode" \
                --addr "127.0.0.1:$port" -- \
                "$build/bench/linux_echo" client "${udp[@]}" --mode "$mode" --addr "127.0.0.1:$port" "${echo_args[@]}"
        done
    done
    sock=$tmp/bulk.$r.sock
    configs "$sock"
    for which in $(builds_in_order "$r"); do
        b=$build tag=catnip-bulk
        [[ $which == base ]] && b=$base tag=catnip-base-bulk
        run "$tag.$r" env CONFIG_PATH="$tmp/s.yaml" "$b/demi-echo" server --addr 10.77.0.1:7000 -- \
            env CONFIG_PATH="$tmp/c.yaml" "$b/demi-echo" client --addr 10.77.0.1:7000 --size 65536 \
            --seconds "$bulk_secs" --warmup 100
    done
    if ((jumbo > 1500)); then
        sock=$tmp/jbulk.$r.sock
        configs "$sock" "$jumbo"
        run "catnip-bulk-jumbo.$r" env CONFIG_PATH="$tmp/s.yaml" "$build/demi-echo" server --addr 10.77.0.1:7000 -- \
            env CONFIG_PATH="$tmp/c.yaml" "$build/demi-echo" client --addr 10.77.0.1:7000 --size 65536 \
            --seconds "$bulk_secs" --warmup 100
    fi
    # The floor under a stream: raw frames of the largest MTU's size one
    # way over memif (dpdk_l2 --stream, pinned by its EAL like catnip).
    sock=$tmp/l2s.$r.sock
    run "l2-stream.$r" "$build/bench/dpdk_l2" server --socket "$sock" --stream --size $((stream_mtu + 14)) \
        --lcore "$scpu" -- "$build/bench/dpdk_l2" client --socket "$sock" --stream --size $((stream_mtu + 14)) \
        --seconds "$bulk_secs" --lcore "$ccpu"
    # One-way streams (iperf-style, one-second samples): catnip at both
    # MTUs into a --sink server, against Linux busy-poll.
    streams=(1500)
    ((jumbo > 1500)) && streams+=("$jumbo")
    for mtu in "${streams[@]}"; do
        tag=catnip-stream
        ((mtu > 1500)) && tag=catnip-stream-jumbo
        sock=$tmp/stream$mtu.$r.sock
        configs "$sock" "$mtu"
        run "$tag.$r" env CONFIG_PATH="$tmp/s.yaml" "$build/demi-echo" server --sink --addr 10.77.0.1:7000 -- \
            env CONFIG_PATH="$tmp/c.yaml" "$build/demi-echo" client --stream --addr 10.77.0.1:7000 --size 65536 \
            --seconds "$bulk_secs" --warmup 100
    done
    port=$((7100 + n))
    run "linux-busypoll-stream.$r" "$build/bench/linux_echo" server --mode busypoll --sink --addr "127.0.0.1:$port" -- \
        "$build/bench/linux_echo" client --mode busypoll --stream --addr "127.0.0.1:$port" --size 65536 \
        --seconds "$bulk_secs" --warmup 100
    port=$((7100 + n))
    run "linux-busypoll-bulk.$r" "$build/bench/linux_echo" server --mode busypoll --addr "127.0.0.1:$port" -- \
        "$build/bench/linux_echo" client --mode busypoll --addr "127.0.0.1:$port" --size 65536 \
        --seconds "$bulk_secs" --warmup 100
done

mkdir -p "$results"
python3 - "$tmp" "$rounds" "$results/catnip.json" "$scpu" "$ccpu" "$base_commit" "$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)" "$jumbo" <<'PY'
import datetime, json, platform, sys
tmp, rounds, out, scpu, ccpu = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
base_commit, head, jumbo = sys.argv[6], sys.argv[7], int(sys.argv[8])
def rounds_of(name):
    return [json.load(open(f"{tmp}/{name}.{r}.json")) for r in range(1, rounds + 1)]
def median(runs, key, reverse=False):
    return sorted(runs, key=lambda x: x[key], reverse=reverse)[(len(runs) - 1) // 2]
res = {"benchmark": "catnip over net_memif vs Linux over 127.0.0.1",
       "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
       "machine": {"kernel": platform.release()}, "cpus": {"server": scpu, "client": ccpu},
       "rounds": rounds, "chosen": "median round by p50 (bulk: by rate)", "runs": {}, "all_rounds": {},
       "ratios": {}, "commit": head}
if base_commit:
    res["base_commit"] = base_commit
catnips = ["catnip", "catnip-base"] if base_commit else ["catnip"]
names = ["l2"] + [f"{n}-{p}" for p in ("tcp", "udp") for n in catnips + ["linux-blocking", "linux-busypoll"]]
for n in names:
    rs = rounds_of(n)
    res["runs"][n] = median(rs, "p50_us")
    res["all_rounds"][n] = [{k: x[k] for k in ("p50_us", "p99_us", "p999_us")} for x in rs]
bulks = [f"{n}-bulk" for n in catnips] + (["catnip-bulk-jumbo"] if jumbo > 1500 else []) + ["linux-busypoll-bulk"]
if jumbo > 1500:
    res["jumbo_mtu"] = jumbo
for n in bulks:
    rs = rounds_of(n)
    for x in rs:
        x["bytes_per_s_each_way"] = x["rps"] * x["size"]
    res["runs"][n] = median(rs, "bytes_per_s_each_way", reverse=True)
    res["all_rounds"][n] = [x["bytes_per_s_each_way"] for x in rs]
R, rat = res["runs"], res["ratios"]
floor = [x["p50_us"] for x in rounds_of("l2")]
def per_io(name):
    """NAME's libOS cost per I/O in each round, against that round's floor."""
    return [(x["p50_us"] - f) / 4 for x, f in zip(rounds_of(name), floor)]
def mid(v):
    return sorted(v)[(len(v) - 1) // 2]
for p in ("tcp", "udp"):
    c = R[f"catnip-{p}"]
    for b in ("linux-blocking", "linux-busypoll"):
        for m in ("p50", "p99", "p999"):
            rat[f"{b}_{p}_{m}/catnip_{p}_{m}"] = round(R[f"{b}-{p}"][f"{m}_us"] / c[f"{m}_us"], 2)
    # Per round, against that round's floor (the VM can change latency
    # mode between rounds, even within one: a median of catnip's rounds
    # less a median of the floor's could mix two modes), then the median.
    # Four stack passes per round trip (client out, server in, server out, client in).
    io = per_io(f"catnip-{p}")
    rat[f"catnip_{p}_p50-l2_p50_us"] = round(mid([4 * v for v in io]), 3)
    rat[f"catnip_{p}_libos_us_per_io"] = round(mid(io), 3)
    res.setdefault("per_io_by_round", {})[f"catnip-{p}"] = [round(v, 3) for v in io]
    if base_commit:
        io_base = per_io(f"catnip-base-{p}")
        res["per_io_by_round"][f"catnip-base-{p}"] = [round(v, 3) for v in io_base]
        rat[f"catnip_base_{p}_libos_us_per_io"] = round(mid(io_base), 3)
        cur = rat[f"catnip_{p}_libos_us_per_io"]
        # How many times lower the current per-I/O cost is (issue 15's target: 2).
        rat[f"catnip_base_{p}_per_io/catnip_{p}_per_io"] = (
            round(rat[f"catnip_base_{p}_libos_us_per_io"] / cur, 2) if cur > 0 else None)
        # The builds ran side by side in each round: the paired difference
        # is the steadiest figure (positive: the current build is faster).
        d = [b["p50_us"] - c["p50_us"] for b, c in zip(rounds_of(f"catnip-base-{p}"), rounds_of(f"catnip-{p}"))]
        rat[f"catnip_base_{p}_p50-catnip_{p}_p50_us_median_of_rounds"] = round(mid(d), 3)
        rat[f"catnip_{p}_faster_rounds"] = f"{sum(v > 0 for v in d)} of {len(d)}"
rat["catnip_bulk/linux_busypoll_bulk"] = round(R["catnip-bulk"]["bytes_per_s_each_way"] /
                                              R["linux-busypoll-bulk"]["bytes_per_s_each_way"], 2)
streams = ["catnip-stream"] + (["catnip-stream-jumbo"] if jumbo > 1500 else []) + ["linux-busypoll-stream"]
for n in streams:
    rs = rounds_of(n)
    res["runs"][n] = median(rs, "bytes_per_s", reverse=True)
    res["all_rounds"][n] = [{"bytes_per_s": x["bytes_per_s"], "samples": x["samples_bytes_per_s"]} for x in rs]
# The floor: frames per second of raw frames of the largest MTU's size,
# times the TCP payload such a frame carries (MTU - 40 - 12 of timestamps).
rs = rounds_of("l2-stream")
res["runs"]["l2-stream"] = median(rs, "frames_per_s", reverse=True)
res["all_rounds"]["l2-stream"] = [x["frames_per_s"] for x in rs]
stream_mtu = jumbo if jumbo > 1500 else 1500
floor_payload = R["l2-stream"]["frames_per_s"] * (stream_mtu - 52)
res["l2_stream_payload_bytes_per_s"] = round(floor_payload)
rat[f"{streams[-2].replace('-', '_')}/l2_stream_payload"] = round(R[streams[-2]]["bytes_per_s"] / floor_payload, 3)
for n in streams[:-1]:
    rat[f"{n.replace('-', '_')}/linux_busypoll_stream"] = round(R[n]["bytes_per_s"] /
                                                                R["linux-busypoll-stream"]["bytes_per_s"], 2)
if jumbo > 1500:
    rat["catnip_bulk_jumbo/linux_busypoll_bulk"] = round(R["catnip-bulk-jumbo"]["bytes_per_s_each_way"] /
                                                        R["linux-busypoll-bulk"]["bytes_per_s_each_way"], 2)
    rat["catnip_bulk_jumbo/catnip_bulk"] = round(R["catnip-bulk-jumbo"]["bytes_per_s_each_way"] /
                                                R["catnip-bulk"]["bytes_per_s_each_way"], 2)
if base_commit:
    rat["catnip_bulk/catnip_base_bulk"] = round(R["catnip-bulk"]["bytes_per_s_each_way"] /
                                               R["catnip-base-bulk"]["bytes_per_s_each_way"], 2)
with open(out, "w") as f:
    json.dump(res, f, indent=2)
    f.write("\n")
print(f"\ncatnip over net_memif vs Linux over 127.0.0.1 (median of {rounds} rounds; server cpu {scpu}, client cpu {ccpu})")
print(f"{'run':<24}{'p50 µs':>9}{'p99 µs':>9}{'p99.9 µs':>10}")
for n in names:
    x = R[n]
    print(f"{n:<24}{x['p50_us']:>9.2f}{x['p99_us']:>9.2f}{x['p999_us']:>10.2f}")
for p in ("tcp", "udp"):
    print(f"{p}: Linux blocking / catnip p50 {rat[f'linux-blocking_{p}_p50/catnip_{p}_p50']}x, "
          f"busy-poll / catnip p50 {rat[f'linux-busypoll_{p}_p50/catnip_{p}_p50']}x; "
          f"catnip - floor {rat[f'catnip_{p}_p50-l2_p50_us']} µs, about {rat[f'catnip_{p}_libos_us_per_io']} µs of libOS work per I/O")
for n in bulks:
    print(f"{n:<24}{R[n]['bytes_per_s_each_way'] * 8 / 1e9:>9.2f} Gbit/s each way (64 KiB echoes)")
print(f"bulk: catnip / Linux busy-poll {rat['catnip_bulk/linux_busypoll_bulk']}x")
for n in streams:
    print(f"{n:<24}{R[n]['bytes_per_s'] * 8 / 1e9:>9.2f} Gbit/s one way (64 KiB pushes, "
          f"samples {', '.join(f'{v * 8 / 1e9:.1f}' for v in R[n]['samples_bytes_per_s'])})")
print(f"{'l2-stream':<24}{R['l2-stream']['frames_per_s'] / 1e6:>9.2f} M frames/s of {stream_mtu + 14} bytes: "
      f"{floor_payload * 8 / 1e9:.2f} Gbit/s of TCP payload at MTU {stream_mtu} (the floor); "
      f"{streams[-2]} reaches {rat[streams[-2].replace('-', '_') + '/l2_stream_payload'] * 100:.0f}% of it")
for n in streams[:-1]:
    print(f"stream: {n} / Linux busy-poll {rat[n.replace('-', '_') + '/linux_busypoll_stream']}x")
if jumbo > 1500:
    print(f"bulk at MTU {jumbo}: catnip / Linux busy-poll {rat['catnip_bulk_jumbo/linux_busypoll_bulk']}x, "
          f"{rat['catnip_bulk_jumbo/catnip_bulk']}x catnip's rate at MTU 1500")
if base_commit:
    for p in ("tcp", "udp"):
        print(f"{p}: per I/O {rat[f'catnip_base_{p}_libos_us_per_io']} µs at {base_commit[:12]} (catnip-base), "
              f"{rat[f'catnip_{p}_libos_us_per_io']} µs now: then / now "
              f"{rat[f'catnip_base_{p}_per_io/catnip_{p}_per_io']}x (issue 15's target: at least 2); "
              f"round by round the current build's p50 is "
              f"{rat[f'catnip_base_{p}_p50-catnip_{p}_p50_us_median_of_rounds'] * 1000:.0f} ns lower (median), "
              f"lower in {rat[f'catnip_{p}_faster_rounds']} rounds")
    print(f"bulk: now / at {base_commit[:12]} {rat['catnip_bulk/catnip_base_bulk']}x")
print(f"wrote {out}")
PY
