#!/usr/bin/env bash
# demi-txn-bench end to end on catnap over 127.0.0.1: one shard of 3
# demi-txnd replicas in occ mode, then 3 in qw mode; against each, the bench
# runs a fixed number of transactions per client (--txns) of each workload
# (YCSB-T over loaded keys, Retwis skewed), and its JSON object must add up:
# every transaction committed, no errors, latencies positive and ordered,
# the CDF rising to 1. Each replica must then exit 0 on SIGTERM, and the
# bench must fail (exit 1, a reason per client) once they are gone, and
# refuse a bad option (exit 2, one line). It must never stop a process it
# did not start, nor leave one behind (the EXIT trap kills what still runs,
# by PID), nor guess how fast the machine is (timeouts only guard hangs).
# SPIN_US=0 for every process, as tests/txn/txn_lib.sh says.
set -uo pipefail
build=${DEMI_BUILD:-build}
txnd=$build/demi-txnd
bench=$build/demi-txn-bench

CLIENTS=2
TXNS=${TXNS:-50}
# shellcheck source=tests/txn/txn_lib.sh
. "$(dirname "$0")/txn_lib.sh"
txn_need "$txnd" "$bench"

# check_json FILE MODE WORKLOAD: the bench's object adds up.
check_json() {
    python3 - "$@" "$CLIENTS" "$TXNS" <<'EOF'
import json, sys
path, mode, workload, clients, txns = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
try:
    d = json.load(open(path))
except ValueError as e:
    sys.exit("not one JSON object: %s" % e)
why = []
for k, want in (("mode", mode), ("workload", workload), ("clients", clients)):
    if d.get(k) != want:
        why.append("%s is %r, not %r" % (k, d.get(k), want))
if d.get("committed") != clients * txns:
    why.append("committed %r, not clients x txns = %d" % (d.get("committed"), clients * txns))
if d.get("errors") != {} or d.get("abandoned") != 0:
    why.append("errors %r, abandoned %r" % (d.get("errors"), d.get("abandoned")))
if mode == "qw" and d.get("aborted") != 0:
    why.append("qw aborted %r transactions (its commits never abort)" % d.get("aborted"))
if not (d.get("duration_s", 0) > 0 and d.get("throughput_tps", 0) > 0):
    why.append("duration_s %r, throughput_tps %r" % (d.get("duration_s"), d.get("throughput_tps")))
lat = d.get("latency_us", {})
p = [lat.get(k, 0) for k in ("p50", "p99", "p999")]
if not (lat.get("avg", 0) > 0 and 0 < p[0] <= p[1] <= p[2]):
    why.append("latencies not positive and ordered: %r" % lat)
cdf = d.get("cdf", [])
if not cdf or cdf[-1][1] != 1.0 or any(a[0] >= b[0] or a[1] > b[1] for a, b in zip(cdf, cdf[1:])):
    why.append("cdf not rising to 1: %r" % cdf[-3:])
if why:
    sys.exit("; ".join(why))
print("%s %s: %d committed, %d aborted, p50 %.0f us, p99 %.0f us" %
      (mode, workload, d["committed"], d["aborted"], p[0], p[1]))
EOF
}

# run_bench MODE WORKLOAD ARG...: one run of the bench against the replicas.
# A reply may take up to a minute (--timeout-ms) before the client counts an
# error: a hang guard for a loaded machine, not a speed guess.
run_bench() {
    local mode=$1 wl=$2 out=$tmp/$1.$2.json rc=0
    shift 2
    LIBOS=catnap HUGEPAGES=off SPIN_US=0 timeout "${BENCH_S:-300}" "$bench" --mode "$mode" --shard "$shard" \
        --workload "$wl" --clients $CLIENTS --txns "$TXNS" --timeout-ms 60000 --hist "$@" >"$out" 2>"$tmp/bench.err" &
    local p=$!
    pids+=("$p")
    wait "$p" || rc=$?
    if ((rc != 0)); then
        bad "$mode $wl: demi-txn-bench exited with $rc"
        cat "$tmp/bench.err"
        return
    fi
    local why
    if why=$(check_json "$out" "$mode" "$wl" 2>&1); then
        echo "$why"
    else
        bad "$mode $wl: $why"
    fi
}

run_mode() {
    local mode=$1
    start_cluster "$mode" "$mode" 1 || { bad "$mode: could not start the replicas"; return; }
    shard=$cluster
    run_bench "$mode" ycsbt --load --keys 1000 --value-size 100
    run_bench "$mode" retwis --keys 1000 --zipf 0.9 --read-replica 1
    stop_cluster "$mode" || bad "$mode: a replica did not stop cleanly"

    # The replicas are gone: every client must fail to connect, say so,
    # and the bench exit 1.
    local rc=0
    LIBOS=catnap HUGEPAGES=off SPIN_US=0 timeout "${BENCH_S:-300}" "$bench" --mode "$mode" --shard "$shard" \
        --clients $CLIENTS --txns 1 >"$tmp/gone.out" 2>"$tmp/gone.err" || rc=$?
    ((rc == 1)) || bad "$mode: the bench against stopped replicas exited with $rc, not 1"
    [[ $(grep -c '^demi-txn-bench: client [0-9]*: ' "$tmp/gone.err") == "$CLIENTS" ]] ||
        bad "$mode: no reason per client on stderr: $(cat "$tmp/gone.err")"
}

run_mode occ
run_mode qw

# A usage mistake: exit 2, one line on stderr, nothing on stdout.
rc=0
"$bench" --mode occ --shard 127.0.0.1:1 --zipf x >"$tmp/use.out" 2>"$tmp/use.err" || rc=$?
if ((rc != 2)) || [[ -s $tmp/use.out || $(wc -l <"$tmp/use.err") != 1 ]]; then
    bad "--zipf x: exit $rc, stderr: $(cat "$tmp/use.err")"
fi

((fails == 0)) || { echo "test_txn_bench: $fails failure(s)"; exit 1; }
echo "test_txn_bench: ok"
