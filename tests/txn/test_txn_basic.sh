#!/usr/bin/env bash
# TxnStore end to end on catnap over 127.0.0.1: demi-txnd replicas (qw: one
# shard of 3; occ: two shards of 3) and tests/txn/test_txn_client's cases
# against them (TXN_QW / TXN_OCC name the replicas). Every replica must
# then exit 0 on SIGTERM. It must never stop a process it did not start,
# nor leave one behind (the EXIT trap kills what still runs, by PID).
# SPIN_US=0 for every process: with 7 or more of them on 2 CPUs, libdemi's
# default busy-poll of 1 ms before sleeping makes them starve each other.
set -uo pipefail
build=${DEMI_BUILD:-build}
txnd=$build/demi-txnd
client=$build/tests/txn/test_txn_client
for x in "$txnd" "$client"; do
    [[ -x $x ]] || { echo "FAIL: $x is not built"; exit 1; }
done
command -v python3 >/dev/null || { echo "SKIP: python3 is needed to pick free ports"; exit 77; }

# shellcheck source=tests/txn/txn_lib.sh
. "$(dirname "$0")/txn_lib.sh"
fails=0
bad() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}

# start_cluster NAME MODE NSHARDS: NSHARDS shards of 3 replicas of demi-txnd
# --mode MODE; sets cluster (shards separated by ';', replicas by ',') and
# appends to cpids. The primaries (occ) must see their backups up first.
start_cluster() {
    local name=$1 mode=$2 nshards=$3 s i
    cluster='' cpids=()
    local ports
    read -r -a ports <<<"$(free_ports $((nshards * 3)))"
    for ((s = 0; s < nshards; s++)); do
        local list=
        for ((i = 0; i < 3; i++)); do list+=${list:+,}127.0.0.1:${ports[s * 3 + i]}; done
        cluster+=${cluster:+;}$list
        # Backups first, so that a primary finds them at its first try.
        for i in 2 1 0; do
            local f=$tmp/$name.$s.$i addr=127.0.0.1:${ports[s * 3 + i]}
            LIBOS=catnap HUGEPAGES=off SPIN_US=0 "$txnd" --mode "$mode" --addr "$addr" --replicas "$list" --index $i \
                >"$f.out" 2>"$f.err" &
            local p=$!
            pids+=("$p")
            cpids+=("$p")
            if ! wait_line "$f.out" "^ready $addr\$" $p; then
                echo "demi-txnd $name shard $s replica $i ($addr) did not become ready:"
                cat "$f.out" "$f.err"
                return 1
            fi
        done
        if [[ $mode == occ ]]; then
            for i in 1 2; do
                if ! wait_line "$tmp/$name.$s.0.err" "backup $i (.*) is up" "${cpids[-1]}"; then
                    echo "the primary of $name shard $s never reached backup $i:"
                    cat "$tmp/$name.$s.0.err"
                    return 1
                fi
            done
        fi
    done
}

# stop_cluster NAME: SIGTERM to each replica, which must exit 0.
stop_cluster() {
    local p rc
    for p in "${cpids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${cpids[@]}"; do
        rc=0
        wait "$p" || rc=$?
        ((rc == 0)) || bad "$1: demi-txnd (pid $p) exited with $rc on SIGTERM"
    done
    cpids=()
}

# run_mode NAME MODE NSHARDS VAR: a cluster (tried up to 3 times, as a port
# may be taken between picking and binding), then the client's cases with
# VAR naming it.
run_mode() {
    local name=$1 mode=$2 nshards=$3 var=$4 try
    for try in 1 2 3; do
        start_cluster "$name" "$mode" "$nshards" && break
        for p in "${cpids[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
        cpids=()
        ((try < 3)) || { bad "$name: could not start the replicas"; return; }
        echo "retrying $name with other ports"
    done
    echo "$name: $cluster"
    local rc=0
    env "$var=$cluster" LIBOS=catnap HUGEPAGES=off SPIN_US=0 timeout "${CLIENT_S:-240}" "$client" || rc=$?
    ((rc == 0)) || bad "$name: test_txn_client exited with $rc"
    stop_cluster "$name"
    if ((rc != 0)); then
        for f in "$tmp/$name".*.err; do
            echo "--- $f"
            tail -n 20 "$f"
        done
    fi
}

run_mode qw qw 1 TXN_QW
run_mode occ occ 2 TXN_OCC

((fails == 0)) || { echo "test_txn_basic: $fails failure(s)"; exit 1; }
echo "test_txn_basic: ok"
