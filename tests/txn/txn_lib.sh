# shellcheck shell=bash disable=SC2154 # txnd: set by the script that sources this
# tests/txn/txn_lib.sh: what the TxnStore scripts share (tests/txn/*.sh and
# bench/txn.sh source it, with txnd set to demi-txnd's path): a temporary
# directory and an EXIT trap that kills, by PID, every process the script
# started (append each to pids), free ports on 127.0.0.1, a hang-guarded
# wait for a line in a file, and clusters of demi-txnd replicas on catnap
# started and stopped. It must never stop a process the script did not
# start. Every replica runs with SPIN_US=0: with 7 or more processes on
# 2 CPUs, libdemi's default busy-poll of 1 ms before sleeping makes them
# starve each other.
tmp=$(mktemp -d)
pids=()
cpids=() # the replicas of the cluster now running
txn_cleanup() {
    local p
    for p in "${pids[@]}"; do
        if kill -0 "$p" 2>/dev/null; then
            kill -KILL "$p" 2>/dev/null
            wait "$p" 2>/dev/null
        fi
    done
    rm -rf "$tmp"
}
trap txn_cleanup EXIT
trap "exit 1" INT TERM

# txn_need PATH...: each must be built (else FAIL, exit 1), and python3
# there (free_ports; else SKIP, exit 77).
txn_need() {
    local x
    for x in "$@"; do
        [[ -x $x ]] || { echo "FAIL: $x is not built"; exit 1; }
    done
    command -v python3 >/dev/null || { echo "SKIP: python3 is needed to pick free ports"; exit 77; }
}

# bad WHY...: a failure, said at once; the test counts them in fails.
fails=0
bad() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}

# free_ports N: N ports free on 127.0.0.1 right now (all bound at once, so
# distinct; another process may still take one before a replica does,
# which the callers notice and retry).
free_ports() {
    python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# wait_line FILE PATTERN PID: until FILE has a line matching PATTERN, while
# PID lives, up to READY_S (60) seconds: a hang guard, not a speed guess.
wait_line() {
    local t0=$SECONDS
    until grep -q -- "$2" "$1" 2>/dev/null; do
        kill -0 "$3" 2>/dev/null && ((SECONDS - t0 < ${READY_S:-60})) || return 1
        sleep 0.05
    done
}

# start_cluster NAME MODE NSHARDS: NSHARDS shards of 3 replicas of demi-txnd
# --mode MODE, their output in $tmp/NAME.SHARD.INDEX.{out,err} (with
# TXND_LOGDIR set, each with --log TXND_LOGDIR/SHARD.INDEX.log, the same
# file for every cluster started so: a restart replays it; TXND_COMPACT_MIN
# adds --log-compact-min, TXND_ORPHAN_MS --orphan-ms, TXND_SHARDS=1
# --shards with every shard and --shard); sets
# cluster (shards separated by ';', replicas by ',') and cpids. Backups
# start first, and in occ two replicas must say their primary synced them. Tried up to 3 times
# with other ports (one may be taken between picking and binding); returns
# 1, with the replicas' output shown, when every try failed.
start_cluster() {
    local _ p
    for _ in 1 2 3; do
        start_cluster_once "$@" && return 0
        for p in "${cpids[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
        cpids=()
        echo "retrying $1 with other ports"
    done
    return 1
}

start_cluster_once() {
    local name=$1 mode=$2 nshards=$3 s i p ports list f addr
    cluster='' cpids=()
    read -r -a ports <<<"$(free_ports $((nshards * 3)))"
    local all=''
    for ((s = 0; s < nshards; s++)); do
        list=
        for ((i = 0; i < 3; i++)); do list+=${list:+,}127.0.0.1:${ports[s * 3 + i]}; done
        all+=${all:+;}$list
    done
    for ((s = 0; s < nshards; s++)); do
        list=
        for ((i = 0; i < 3; i++)); do list+=${list:+,}127.0.0.1:${ports[s * 3 + i]}; done
        cluster+=${cluster:+;}$list
        for i in 2 1 0; do
            f=$tmp/$name.$s.$i addr=127.0.0.1:${ports[s * 3 + i]}
            LIBOS=catnap HUGEPAGES=off SPIN_US=0 "$txnd" --mode "$mode" --addr "$addr" --replicas "$list" --index $i \
                ${TXND_LOGDIR:+--log "$TXND_LOGDIR/$s.$i.log"} ${TXND_COMPACT_MIN:+--log-compact-min "$TXND_COMPACT_MIN"} \
                ${TXND_ORPHAN_MS:+--orphan-ms "$TXND_ORPHAN_MS"} ${TXND_SHARDS:+--shards "$all" --shard $s} \
                >"$f.out" 2>"$f.err" &
            p=$!
            pids+=("$p")
            cpids+=("$p")
            if ! wait_line "$f.out" "^ready $addr\$" $p; then
                echo "demi-txnd $name shard $s replica $i ($addr) did not become ready:"
                cat "$f.out" "$f.err"
                return 1
            fi
        done
        [[ $mode == occ ]] || continue
        if ! wait_synced "$tmp/$name.$s"; then
            echo "occ shard $s of $name: no primary brought two backups up to date:"
            tail -n 30 "$tmp/$name.$s".*.err
            return 1
        fi
    done
}

# wait_synced PREFIX: until two of the replicas PREFIX.{0,1,2} logged that
# their primary brought them up to date (whichever replica is the
# primary: after a restart with --log the replicas change views first),
# while all three live, up to READY_S (60) seconds.
wait_synced() {
    local t0=$SECONDS n i
    while :; do
        n=0
        for i in 0 1 2; do grep -q "synced from the primary" "$1.$i.err" 2>/dev/null && n=$((n + 1)); done
        ((n >= 2)) && return 0
        for i in "${cpids[@]: -3}"; do kill -0 "$i" 2>/dev/null || return 1; done
        ((SECONDS - t0 < ${READY_S:-60})) || return 1
        sleep 0.05
    done
}

# stop_cluster NAME: SIGTERM to each replica; returns 1, saying which, when
# one did not exit 0.
stop_cluster() {
    local p rc bad=0
    for p in "${cpids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${cpids[@]}"; do
        rc=0
        wait "$p" || rc=$?
        ((rc == 0)) || { echo "$1: demi-txnd (pid $p) exited with $rc on SIGTERM"; bad=1; }
    done
    cpids=()
    return $bad
}
