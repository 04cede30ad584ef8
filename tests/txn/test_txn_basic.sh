#!/usr/bin/env bash
# TxnStore end to end on catnap over 127.0.0.1: demi-txnd replicas (qw: one
# shard of 3; occ: two shards of 3) and tests/txn/test_txn_client's cases
# against them (TXN_QW / TXN_OCC name the replicas). Every replica must
# then exit 0 on SIGTERM. It must never stop a process it did not start,
# nor leave one behind (the EXIT trap kills what still runs, by PID).
# SPIN_US=0 for every process, as tests/txn/txn_lib.sh says.
set -uo pipefail
build=${DEMI_BUILD:-build}
txnd=$build/demi-txnd
client=$build/tests/txn/test_txn_client

# shellcheck source=tests/txn/txn_lib.sh
. "$(dirname "$0")/txn_lib.sh"
txn_need "$txnd" "$client"

# run_mode NAME MODE NSHARDS VAR: a cluster, then the client's cases with
# VAR naming it.
run_mode() {
    local name=$1 mode=$2 nshards=$3 var=$4
    start_cluster "$name" "$mode" "$nshards" || { bad "$name: could not start the replicas"; return; }
    echo "$name: $cluster"
    local rc=0
    env "$var=$cluster" LIBOS=catnap HUGEPAGES=off SPIN_US=0 timeout "${CLIENT_S:-240}" "$client" || rc=$?
    ((rc == 0)) || bad "$name: test_txn_client exited with $rc"
    stop_cluster "$name" || bad "$name: a replica did not stop cleanly"
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
