#!/usr/bin/env bash
# demi-txnd --orphan-ms end to end, on catnap over 127.0.0.1: one occ shard
# of 3 replicas with --orphan-ms 300. A prepare whose client never decides
# it (the client died) must not hold its keys for ever when it spans one
# shard (TXN_ID_SOLO), and must hold them when it may span more:
#  1. a multi-shard prepare (plain id) of key m1, then a single-shard one
#     (solo id) of key s1, both never decided: a transaction writing s1
#     commits once the primary aborted the orphan (it is retried while it
#     aborts, as long as it takes); m1 is still held (its prepare is older
#     than s1's, so the sweep saw it as long), the orphan's late COMMIT is
#     answered ABORT, and the multi-shard one still commits;
#  2. a single-shard prepare of s2, then kill -9 of the primary: the
#     replica that takes over inherited the prepare with its solo id and
#     aborts it too (a transaction writing s2 commits);
#  3. the replicas' counters say what the sweeps aborted;
#  4. a --shards that does not hold --replicas is refused (exit 2); two
#     shards, with --shards (shard 0 coordinates, msg.h TXN_ID_MULTI):
#     a transaction prepared on both and committed on the coordinator only
#     (its client died in between) is committed on shard 1 too, which asks
#     shard 0; one prepared on both and never decided is aborted on both
#     (its late COMMIT gets ABORT on shard 0); one prepared on shard 1
#     alone, which shard 0 never saw, stays prepared (the coordinator
#     cannot tell it from one decided so long ago that it forgot it).
#  5. two shards again: a client writing pairs of keys (one transaction
#     each, K pairs over and over, many of them on both shards) is killed
#     with SIGKILL mid-run, KILLS times; whatever state its last
#     transaction was left in (prepared on one shard or both, committed at
#     the coordinator only), the replicas decide it, and every pair is
#     whole: both keys from the same transaction, read in one transaction
#     (retried while a prepare still holds them).
# Every wait is for a line, an exit or a commit, with a hang guard
# (timeout). One window remains, in 4: the coordinator must receive the
# COMMIT within --orphan-ms of its prepare, three client processes later
# (about 100-150 ms under AddressSanitizer here); a miss is tried again as
# a new transaction, up to 20 times, and counted.
set -uo pipefail
build=${DEMI_BUILD:-build}
txnd=$build/demi-txnd
lc=$build/tests/txn/txn_logclient

# shellcheck source=tests/txn/txn_lib.sh
. "$(dirname "$0")/txn_lib.sh"
txn_need "$txnd" "$lc"
export TXND_ORPHAN_MS=300
client() {
    timeout -k 5 120 env TXN_OCC="$cluster" LIBOS=catnap HUGEPAGES=off SPIN_US=0 "$lc" "$@"
}
orphans() { sed -n 's/.*orphans: \([0-9]*\) prepares aborted.*/\1/p' "$tmp/$1.err"; }

start_cluster o occ 1 || { echo "FAIL: the replicas did not start"; exit 1; }
echo "cluster: $cluster"
ts=$((($(date +%s) + 86400) * 1000000)) # above every version a client uses

# 1.
client prepare 1001 $ts m1 v || bad "1: the multi-shard prepare was refused"
client prepare solo:1002 $ts s1 v || bad "1: the single-shard prepare was refused"
client commits s1 || bad "1: s1 stayed held by its orphaned prepare"
client conflict m1 || bad "1: the multi-shard prepare no longer holds m1"
client commit solo:1002 $ts ABORT || bad "1: the aborted orphan's late COMMIT was not answered ABORT"
client commit 1001 $ts || bad "1: the multi-shard prepare could not be committed"
client get m1 $ts v || bad "1: the multi-shard transaction's write is not readable"

# 2. Replica 0 is the primary (view 0); cpids holds replicas 2, 1, 0.
client prepare solo:1003 $ts s2 v || bad "2: the single-shard prepare was refused"
kill -KILL "${cpids[2]}"
wait "${cpids[2]}" 2>/dev/null
cpids=("${cpids[0]}" "${cpids[1]}")
client commits s2 || bad "2: s2 stayed held after the primary's death"

# 3.
stop_cluster o || bad "3: a replica did not stop cleanly"
echo "orphans aborted: replica 0 (killed: not printed), replica 1: $(orphans o.0.1), replica 2: $(orphans o.0.2)"
n1=$(orphans o.0.1) n2=$(orphans o.0.2)
((${n1:-0} + ${n2:-0} == 1)) || bad "3: the new primary's sweep did not abort exactly the inherited orphan"
grep -h "view .* primary\|orphans" "$tmp"/o.0.[12].err | head -n 6

# 4.
# A --shards that does not hold this replica's --replicas is a usage error.
rc=0
LIBOS=catnap HUGEPAGES=off "$txnd" --mode occ --addr 127.0.0.1:0 --replicas 127.0.0.1:1,127.0.0.1:2 --index 0 \
    --shards '127.0.0.1:1,127.0.0.1:5;127.0.0.1:3' --shard 0 >/dev/null 2>"$tmp/usage.err" || rc=$?
((rc == 2)) && grep -q "shard 0 is not this replica's --replicas" "$tmp/usage.err" ||
    bad "4: a --shards without this replica's --replicas: exit $rc, $(cat "$tmp/usage.err")"
export TXND_SHARDS=1
start_cluster m occ 2 || { echo "FAIL: the two shards did not start"; exit 1; }
echo "cluster: $cluster"
all=$cluster
on() { # on SHARD CMD...: the client on that shard alone
    local s=$1
    shift
    cluster=$(cut -d';' -f$((s + 1)) <<<"$all") client "$@"
}
on 1 prepare multi:0:2003 $ts c1 v || bad "4: shard 1 refused the unknown transaction's prepare"
# Prepared on both, then committed on the coordinator. The coordinator's
# own sweep may abort the prepare first, if the three client processes
# took longer than --orphan-ms (a loaded machine, AddressSanitizer): then
# the COMMIT is refused, and it is tried again as a new transaction on new
# keys (shard 1 then decides the refused one by the coordinator's answer
# too: one more prepare decided by its answers per retry).
retries=0 id=2001 a0=a0 a1=a1
while :; do
    on 0 prepare multi:0:$id $ts $a0 v && on 1 prepare multi:0:$id $ts $a1 v ||
        { bad "4: a prepare was refused"; break; }
    on 0 commit multi:0:$id $ts && break
    retries=$((retries + 1))
    ((retries < 20)) || { bad "4: the coordinator refused the COMMIT 20 times"; break; }
    id=$((2100 + retries)) a0=a0r$retries a1=a1r$retries
done
((retries == 0)) || echo "4: the coordinator's sweep aborted $retries prepares before their COMMIT came: tried again"
on 0 prepare multi:0:2002 $ts b0 v && on 1 prepare multi:0:2002 $ts b1 v || bad "4: a prepare was refused"
on 1 getwait $a1 $ts v || bad "4: shard 1 did not commit what the coordinator committed"
on 1 commits b1 || bad "4: shard 1 kept the undecided transaction's key"
on 0 commits b0 || bad "4: shard 0 kept the undecided transaction's key"
on 0 commit multi:0:2002 $ts ABORT || bad "4: the aborted transaction's late COMMIT was not answered ABORT"
on 1 conflict c1 || bad "4: shard 1 gave up the transaction the coordinator never saw"
cluster=$all
stop_cluster m || bad "4: a replica did not stop cleanly"
grep -h "orphans:" "$tmp"/m.[01].0.err
asked=$(sed -n 's/.* \([0-9]*\) prepares decided by their answers, \([0-9]*\) answers unknown.*/\1 \2/p' "$tmp/m.1.0.err")
read -r resolved unknown <<<"$asked"
((${resolved:-0} == 2 + retries && ${unknown:-0} >= 1)) ||
    bad "4: shard 1's primary decided ${resolved:-?} prepares by the coordinator's answers ($((2 + retries)) expected)," \
        "heard ${unknown:-?} unknown (1 or more expected)"
grep -q " 1 prepared now" "$tmp/m.1.0.err" || bad "4: shard 1's primary does not hold exactly the unknown transaction"

# 5.
start_cluster p occ 2 || { echo "FAIL: the two shards did not start"; exit 1; }
echo "cluster: $cluster"
acks=$tmp/p.acks
: >"$acks"
for ((round = 1; round <= ${KILLS:-6}; round++)); do
    n0=$(wc -l <"$acks")
    env TXN_OCC="$cluster" LIBOS=catnap HUGEPAGES=off SPIN_US=0 "$lc" write "$acks" 1000000 pp 8 >"$tmp/p.w.out" 2>&1 &
    wpid=$!
    pids+=("$wpid")
    t0=$SECONDS
    # Some commits each round (two lines each), at a point the scheduler picks.
    until (($(wc -l <"$acks") >= n0 + 2 * round + 10)); do
        kill -0 $wpid 2>/dev/null && ((SECONDS - t0 < 60)) || { bad "5: the writer stopped: $(cat "$tmp/p.w.out")"; break 2; }
        sleep 0.01
    done
    kill -KILL $wpid
    wait $wpid 2>/dev/null
done
echo "5: killed the writer $((round - 1)) times after $(($(wc -l <"$acks") / 2)) commits in all"
client pairs pp 8 || bad "5: a pair of keys written in one transaction is not whole"
stop_cluster p || bad "5: a replica did not stop cleanly"
grep -h "orphans:" "$tmp"/p.[01].0.err
for f in "$tmp"/p.[01].0.err; do
    grep -q " 0 prepared now" "$f" || bad "5: $(basename "$f" .err): prepares left: $(grep -o '[0-9]* prepared now' "$f")"
done

if ((fails)); then
    for f in "$tmp"/*.err; do
        echo "--- $f"
        tail -n 20 "$f"
    done
    exit 1
fi
echo PASS
