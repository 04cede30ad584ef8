#!/usr/bin/env bash
# demi-txnd --log end to end, on catnap over 127.0.0.1: one occ shard of 3
# replicas, each with its own log in a temporary directory.
#  1. a client commits transactions (each writing two fresh keys) and
#     records each one it was told committed; once it has recorded
#     KILL_AFTER of them, every replica is killed with SIGKILL mid-run;
#  2. restarted on the same logs, the replicas must hold every recorded
#     write (the primary with that version and value, and at least one
#     backup), and serve more; killed again and restarted (the logs now
#     hold two runs, replayed once more), they must still hold all of it;
#  3. a transaction prepared and never decided survives a kill -9 of every
#     replica: after the restart it still holds its key (a conflicting
#     transaction aborts), then commits, and the commit survives a clean
#     stop and restart;
#  4. a log damaged in the middle is refused (non-zero exit, a message
#     naming the path and --log-repair), --log-repair opens it; a file
#     that is not a log is refused;
#  5. qw mode: puts acknowledged before a kill -9 of every replica are on
#     a majority of them after the restart;
#  6. compaction (--log-compact-min 16k, keys written over and over): once
#     every replica has compacted its log at least twice, kill -9 of every
#     replica mid-run; after the restart every key has its last
#     acknowledged write (or a newer one), and the primary replayed a
#     snapshot and only the changes since (the snapshot is taken a MiB per
#     loop turn while the writes go on);
#  7. an append that fails while the replica runs (a file size limit,
#     ulimit -f, with SIGXFSZ ignored: EFBIG) is reported and acknowledged
#     to nobody: once the replica says so the client is killed, and after a
#     restart without the limit every write it was told of is there (one
#     acknowledged but not logged would be missing);
#  8. completeness rides in the log: a replica that rejoins (--rejoin, its
#     log lost) with no primary to sync it, killed -9 and restarted on that
#     log without --rejoin, must still say its store is not complete; once
#     a primary synced it and it stopped, a restart finds it complete;
#  9. qw --rejoin, no log: a replica killed -9 and restarted empty with
#     --rejoin answers GET only once it merged the others' stores, and
#     then holds, alone, every write a quorum acknowledged (some written
#     while it was down).
# No time windows: every wait is for a line or a count, with a hang guard.
# It must never stop a process it did not start, nor leave one or a
# temporary file behind (txn_lib.sh's EXIT trap kills by PID and removes
# the temporary directory).
set -uo pipefail
build=${DEMI_BUILD:-build}
txnd=$build/demi-txnd
lc=$build/tests/txn/txn_logclient

# shellcheck source=tests/txn/txn_lib.sh
. "$(dirname "$0")/txn_lib.sh"
txn_need "$txnd" "$lc"
export TXND_LOGDIR=$tmp/logs
mkdir -p "$TXND_LOGDIR"
acks=$tmp/acks
kill_after=${KILL_AFTER:-600} # lines (two per transaction) before the kill
cvar=TXN_OCC # the client's variable naming the cluster: TXN_OCC or TXN_QW
client() {
    env "$cvar=$cluster" LIBOS=catnap HUGEPAGES=off SPIN_US=0 "$lc" "$@"
}
kill_cluster() {
    local p
    for p in "${cpids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    for p in "${cpids[@]}"; do wait "$p" 2>/dev/null; done
    cpids=()
}
show() {
    local f
    for f in "$tmp/$1".*.err; do
        echo "--- $f"
        tail -n 20 "$f"
    done
}
mode=occ
start() {
    start_cluster "$1" $mode 1 || { bad "$1: the replicas did not start"; exit 1; }
    echo "$1: $cluster"
    grep -h "replayed" "$tmp/$1".0.*.err
}
check() {
    client check "$acks" || { bad "$1: acknowledged writes are missing"; show "$1"; }
}

# write_then_kill NAME [KEYS [N]]: a cluster started, a client writing
# (over KEYS pairs of keys, when given), and every replica killed once the
# client has recorded kill_after lines and, with N, once every replica has
# compacted its log N times.
nacks() { if [[ -e $acks ]]; then wc -l <"$acks"; else echo 0; fi; }
compacted() { # every replica of cluster $1 compacted its log $2 times
    local i
    for i in 0 1 2; do (($(grep -c "compacted in" "$tmp/$1.0.$i.err") >= $2)) || return 1; done
}
write_then_kill() {
    start "$1"
    client write "$acks" 1000000 "$1" ${2:+"$2"} >"$tmp/$1.w.out" 2>&1 &
    wpid=$!
    pids+=("$wpid")
    local t0=$SECONDS
    until (($(nacks) >= kill_after)) && { [[ -z ${3:-} ]] || compacted "$1" "$3"; }; do
        if ! kill -0 "$wpid" 2>/dev/null || ((SECONDS - t0 > ${READY_S:-60} * 5)); then
            bad "$1: the client stopped after $(nacks) of $kill_after lines"
            cat "$tmp/$1.w.out"
            show "$1"
            exit 1
        fi
        sleep 0.05
    done
    kill_cluster
    wait "$wpid"
    local rc=$?
    ((rc == 3)) || bad "$1: the client exited with $rc, not 3 (its replicas gone)"
    echo "$1: killed every replica after $(nacks) acknowledged writes"
}

# 1. Writes, then kill -9 of every replica while the client runs.
write_then_kill r1

# 2. Restart: every acknowledged write is there; more writes; again.
start r2
check r2
client write "$acks" 200 w2 >"$tmp/w2.out" 2>&1 || { bad "r2: writing after the restart failed"; cat "$tmp/w2.out"; }
kill_cluster
start r3
check r3

# 3. A transaction prepared and never decided survives kill -9.
txnid=987654321
ts=$((($(date +%s) + 86400) * 1000000)) # above every version the clients used
client prepare $txnid $ts p.key p.val || bad "r3: the prepare was refused"
kill_cluster
start r4
# The primary's count of prepared transactions after replay, in a run.
nprep() { sed -n 's/.* \([0-9]*\) transactions still prepared.*/\1/p' "$tmp/$1.0.0.err"; }
(($(nprep r4) == $(nprep r3) + 1)) || bad "r4: the primary did not restore the prepared transaction"
client conflict p.key || bad "r4: the prepared transaction no longer holds its key"
client commit $txnid $ts || bad "r4: the prepared transaction could not be committed"
client get p.key $ts p.val || bad "r4: the committed transaction is not readable"
stop_cluster r4 || bad "r4: a replica did not stop cleanly"
start r5
client get p.key $ts p.val || bad "r5: the commit did not survive a restart"
check r5
stop_cluster r5 || bad "r5: a replica did not stop cleanly"

# 4. Damaged logs. A byte of the first record's payload (the header is
# 4096 bytes, a record header 32) changed: valid records follow, so this
# is corruption, not a torn tail.
one() { # one replica alone on LOG (extra arguments follow); sets opid
    LIBOS=catnap HUGEPAGES=off SPIN_US=0 "$txnd" --mode occ --addr 127.0.0.1:0 --log "$@" \
        >"$tmp/one.out" 2>"$tmp/one.err" &
    opid=$!
    pids+=("$opid")
}
bad_log=$tmp/damaged.log
cp "$TXND_LOGDIR/0.0.log" "$bad_log"
python3 - "$bad_log" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(4096 + 32 + 20)
    b = f.read(1)
    f.seek(4096 + 32 + 20)
    f.write(bytes([b[0] ^ 0x5a]))
PY
one "$bad_log"
wait "$opid"
rc=$?
if ((rc == 0)) || ! grep -q -- "--log $bad_log: .*--log-repair" "$tmp/one.err"; then
    bad "a damaged log was not refused clearly (exit $rc)"
    cat "$tmp/one.err"
fi
echo "damaged log: $(grep -h -- '--log-repair' "$tmp/one.err" | head -n 1)"
one "$bad_log" --log-repair
if wait_line "$tmp/one.out" "^ready " "$opid"; then
    kill -TERM "$opid"
    wait "$opid" || bad "the repaired replica did not stop cleanly"
else
    bad "--log-repair did not open the damaged log"
    cat "$tmp/one.err"
fi
printf 'not a log at all\n%.0s' {1..400} >"$tmp/junk.log"
one "$tmp/junk.log"
wait "$opid"
rc=$?
if ((rc == 0)) || ! grep -q -- "--log $tmp/junk.log: " "$tmp/one.err"; then
    bad "a file that is not a log was not refused clearly (exit $rc)"
    cat "$tmp/one.err"
fi
echo "not a log: $(grep -h -- '--log' "$tmp/one.err" | head -n 1)"

# 5. qw: the same kill -9 of every replica mid-run, on other logs.
mode=qw cvar=TXN_QW acks=$tmp/qacks TXND_LOGDIR=$tmp/qlogs
mkdir -p "$TXND_LOGDIR"
write_then_kill q1
start q2
check q2
stop_cluster q2 || bad "q2: a replica did not stop cleanly"

# 6. Compaction, then kill -9 of every replica.
mode=occ cvar=TXN_OCC acks=$tmp/cacks TXND_LOGDIR=$tmp/clogs
export TXND_COMPACT_MIN=16k
mkdir -p "$TXND_LOGDIR"
write_then_kill c1 20 2
grep -h "compacted in" "$tmp"/c1.0.*.err | tail -n 3
start c2
check c2
# The primary replayed a snapshot (its versions) and only the commits
# since its last compaction, a fraction of those acknowledged.
commits=$(sed -n 's/.* \([0-9]*\) commits, .*/\1/p' "$tmp/c2.0.0.err")
snapv=$(sed -n 's/.* \([0-9]*\) versions from transfers or a snapshot.*/\1/p' "$tmp/c2.0.0.err")
echo "c2: the primary replayed ${snapv:-no} versions of a snapshot and $commits commits;" \
    "$(($(nacks) / 2)) transactions were acknowledged"
((${snapv:-0} > 0 && commits < $(nacks) / 4)) || bad "c2: the primary's log was not compacted"
stop_cluster c2 || bad "c2: a replica did not stop cleanly"

# 7. A failing append: one replica, 64 KiB values, a 20 MiB file limit.
acks=$tmp/facks cvar=TXN_OCC
flog=$tmp/full.log
( trap '' XFSZ; ulimit -f 20480; exec env LIBOS=catnap HUGEPAGES=off SPIN_US=0 "$txnd" --mode occ \
    --addr 127.0.0.1:0 --log "$flog" >"$tmp/f1.out" 2>"$tmp/f1.err" ) &
fpid=$!
pids+=("$fpid")
if wait_line "$tmp/f1.out" "^ready " "$fpid"; then
    cluster=$(sed -n 's/^ready //p' "$tmp/f1.out")
    TXN_VSIZE=65536 client write "$acks" 1000000 f1 >"$tmp/f1.w.out" 2>&1 &
    wpid=$!
    pids+=("$wpid")
    READY_S=300 wait_line "$tmp/f1.err" "appending failed" "$fpid" || bad "f1: the failed append was not reported"
    kill -KILL "$wpid" 2>/dev/null
    wait "$wpid" 2>/dev/null
    kill -TERM "$fpid"
    wait "$fpid" || bad "f1: the replica did not stop cleanly after the failed append"
    grep -h "failed" "$tmp/f1.err"
    echo "f1: $(nacks) acknowledged writes before the failure"
    LIBOS=catnap HUGEPAGES=off SPIN_US=0 "$txnd" --mode occ --addr 127.0.0.1:0 --log "$flog" \
        >"$tmp/f2.out" 2>"$tmp/f2.err" &
    fpid=$!
    pids+=("$fpid")
    if wait_line "$tmp/f2.out" "^ready " "$fpid"; then
        cluster=$(sed -n 's/^ready //p' "$tmp/f2.out")
        TXN_VSIZE=65536 client check "$acks" || bad "f2: acknowledged writes are missing after a failed append"
        kill -TERM "$fpid"
        wait "$fpid" || bad "f2: the replica did not stop cleanly"
    else
        bad "f2: the replica did not restart on the log of the failed append"
        cat "$tmp/f2.err"
    fi
else
    bad "f1: the replica with a file size limit did not start"
    cat "$tmp/f1.err"
fi

# 8. Completeness across restarts. replica NAME INDEX [ARGS]: replica
# INDEX of the cluster in $jlist alone (--mode $mode), on its log in
# $TXND_LOGDIR if set; sets rpid once it is ready.
replica() {
    local addr
    addr=$(cut -d, -f$(($2 + 1)) <<<"$jlist")
    LIBOS=catnap HUGEPAGES=off SPIN_US=0 "$txnd" --mode "$mode" --addr "$addr" --replicas "$jlist" --index "$2" \
        ${TXND_LOGDIR:+--log "$TXND_LOGDIR/0.$2.log"} "${@:3}" >"$tmp/$1.out" 2>"$tmp/$1.err" &
    rpid=$!
    pids+=("$rpid")
    wait_line "$tmp/$1.out" "^ready " "$rpid" || { bad "$1: replica $2 did not become ready"; cat "$tmp/$1.err"; }
}
store_line() { grep -h "rejoining (" "$tmp/$1.err"; }
mode=occ cvar=TXN_OCC acks=$tmp/jacks TXND_LOGDIR=$tmp/jlogs
unset TXND_COMPACT_MIN
mkdir -p "$TXND_LOGDIR"
start j1
client write "$acks" 50 j1 >"$tmp/j1.w.out" 2>&1 || { bad "j1: writing failed"; cat "$tmp/j1.w.out"; }
stop_cluster j1 || bad "j1: a replica did not stop cleanly"
jlist=$cluster
rm -f "$TXND_LOGDIR/0.2.log" # replica 2 lost its disk
replica j2 2 --rejoin # the others are down: nobody syncs it
echo "j2: $(store_line j2)"
kill -KILL "$rpid"
wait "$rpid" 2>/dev/null
replica j3 2 # the same log, no --rejoin
echo "j3: $(store_line j3)"
store_line j3 | grep -q "not complete" || bad "j3: a rejoin that never synced restarted as complete"
kill -KILL "$rpid"
wait "$rpid" 2>/dev/null
# The whole shard on its logs: replica 2 (not complete) waits for a sync.
cpids=()
for i in 0 1 2; do
    replica j4.$i $i
    cpids+=("$rpid")
done
READY_S=120 wait_line "$tmp/j4.2.err" "synced from the primary" "$rpid" || {
    bad "j4: replica 2 was not synced"
    tail -n 20 "$tmp"/j4.*.err
}
cluster=$jlist
check j4
stop_cluster j4 || bad "j4: a replica did not stop cleanly"
replica j5 2
echo "j5: $(store_line j5)"
store_line j5 | grep -q "store complete, from the log" || bad "j5: a synced replica restarted as not complete"
kill -TERM "$rpid"
wait "$rpid" || bad "j5: the replica did not stop cleanly"

# 9. qw --rejoin without a log. cpids lists replicas 2, 1, 0 (started so).
mode=qw cvar=TXN_QW acks=$tmp/qracks
unset TXND_LOGDIR
start k1
jlist=$cluster
client write "$acks" 200 k1 >"$tmp/k1.w.out" 2>&1 || { bad "k1: writing failed"; cat "$tmp/k1.w.out"; }
kill -KILL "${cpids[0]}"
wait "${cpids[0]}" 2>/dev/null
# Written while replica 2 is down: the client needs every replica of a qw
# shard connected, so these go to the two others, as a shard of 2.
cluster=$(cut -d, -f1,2 <<<"$jlist")
client write "$acks" 100 k2 >"$tmp/k2.w.out" 2>&1 || { bad "k2: writing without replica 2 failed"; cat "$tmp/k2.w.out"; }
replica k3 2 --rejoin
wait_line "$tmp/k3.out" "^synced qw" "$rpid" || { bad "k3: the rejoined replica did not merge the others' stores"; tail -n 20 "$tmp/k3.err"; }
grep -h "merged replica\|synced from" "$tmp/k3.err"
cluster=$(cut -d, -f3 <<<"$jlist") # replica 2 alone: every write must be on it
check k3
cpids=("$rpid" "${cpids[@]:1}")
stop_cluster k3 || bad "k3: a replica did not stop cleanly"

((fails == 0)) || { echo "test_txn_log: $fails failure(s)"; exit 1; }
echo "test_txn_log: ok"
