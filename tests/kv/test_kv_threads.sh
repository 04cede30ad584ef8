#!/usr/bin/env bash
# demi-kv --threads 2 on catnap, 127.0.0.1: the keyspace split across two
# threads (two libdemi instances sharing the port with SO_REUSEPORT), a
# command for the other thread's keys going there through a memory queue.
#   - the options it refuses (--aof, port 0);
#   - kv_threads.py: 6000 pipelined replies in order over keys of both
#     threads, values of 1-3 MiB (larger than one queue message), CROSSSLOT
#     and hash tags, DBSIZE/KEYS/FLUSHDB combined from both, SCAN refused,
#     CLIENT REPLY OFF/SKIP, 40 clients reset with commands in flight;
#   - 2000 known binary values over 8 connections, every byte compared;
#   - redis-benchmark (50 clients, with and without -P 16) over 1000 keys,
#     then every key read back and counted (KEYS), and a run of its other
#     data types;
#   - at SIGTERM each thread reports what it sent to the other and ran for
#     it: both must be non-zero, and each must hold keys;
#   - kv_threads_full.py, on a server with a 32 MiB heap per thread: a
#     command waiting in the queue of a thread whose heap is full runs once
#     that thread frees memory (the queue's failed pop is posted again).
# Starts demi-kv itself and stops only that process, by PID.
set -uo pipefail
build=${DEMI_BUILD:-build}
kv=$build/demi-kv
here=$(cd "$(dirname "$0")" && pwd)
command -v redis-benchmark >/dev/null || { echo "SKIP: redis-benchmark not found (scripts/deps.sh installs redis-tools)"; exit 77; }
command -v redis-cli >/dev/null || { echo "SKIP: redis-cli not found (scripts/deps.sh installs redis-tools)"; exit 77; }
[[ -x $kv ]] || { echo "FAIL: $kv not built"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/demi-kv-threads.XXXXXX")
pid=
. "$here/../lib.sh" # kv_start, kv_stop, kv_cleanup, cli, expect, bad
. "$here/../posix/px_lib.sh" # px_pick_port
trap kv_cleanup EXIT

# The refusals: exit status 2 and a line naming the option.
for args in "--threads 2 --aof $tmp/log --addr 127.0.0.1:20000" "--threads 2 --addr 127.0.0.1:0"; do
    rc=0
    # shellcheck disable=SC2086
    LIBOS=catnap HUGEPAGES=off timeout 30 "$kv" $args >"$tmp/ref.out" 2>"$tmp/ref.err" || rc=$?
    ((rc == 2)) && grep -q -- "--threads\|--aof" "$tmp/ref.err" ||
        bad "demi-kv $args: exit $rc, want 2 with a message: $(cat "$tmp/ref.err")"
done

px_pick_port KV_PORT || exit 1
export KV_PORT
kv_start --threads 2
echo "demi-kv --threads 2 on 127.0.0.1:$port"

python3 "$here/kv_threads.py" 127.0.0.1 "$port" --threads 2 || bad "kv_threads.py"

# The keys of a pattern, counted with KEYS (combined from both threads).
# Not DBSIZE: commands of the clients kv_threads.py reset last may still
# be running (each thread finishes the commands it had read, and those it
# was sent); they touch only their own "ab:" keys.
nkeys() { cli KEYS "$1" | grep -c .; }
expect OK FLUSHALL
python3 "$here/kv_known.py" fill 127.0.0.1 "$port" --keys 2000 --conns 8 || bad "kv_known fill"
python3 "$here/kv_known.py" check 127.0.0.1 "$port" --keys 2000 || bad "kv_known check"
n=$(nkeys 'known:*')
[[ $n == 2000 ]] || bad "KEYS known:* found $n keys, want 2000"

keys=1000
size=100
# bench LABEL N ARGS...: SET,GET over $keys keys, then every key read back.
bench() {
    local label=$1 n=$2
    shift 2
    if ! timeout 300 redis-benchmark -h 127.0.0.1 -p "$port" -t set,get -n "$n" -r "$keys" -d "$size" "$@" \
        --csv >"$tmp/bench.csv" 2>"$tmp/bench.err"; then
        bad "$label: redis-benchmark failed: $(cat "$tmp/bench.err" "$tmp/bench.csv")"
        return
    fi
    for t in SET GET; do
        grep -q "^\"$t\",\"[0-9.]*[1-9][0-9.]*\"" "$tmp/bench.csv" || bad "$label: no $t result: $(cat "$tmp/bench.csv")"
    done
    python3 "$here/kv_known.py" check 127.0.0.1 "$port" --keys 2000 --bench-keys "$keys" --bench-size "$size" ||
        bad "$label: values after redis-benchmark"
    n=$(nkeys 'key:*')
    [[ $n == "$keys" ]] || bad "$label: KEYS key:* found $n keys, want $keys"
    echo "$label: $(tr '\n' ' ' <"$tmp/bench.csv")"
}
bench "50 clients, -P 16" 200000 -c 50 -P 16
bench "50 clients" 50000 -c 50

# The other data types redis-benchmark drives, their keys on both threads
# (-r): every reply must be a success (redis-benchmark stops at an error).
if ! timeout 300 redis-benchmark -h 127.0.0.1 -p "$port" -t incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange_100 \
    -n 20000 -c 20 -r 1000 --csv >"$tmp/types.csv" 2>"$tmp/types.err" || grep -qi error "$tmp/types.err" "$tmp/types.csv"; then
    bad "redis-benchmark's data types: $(cat "$tmp/types.err" "$tmp/types.csv")"
else
    echo "data types: $(wc -l <"$tmp/types.csv") tests passed"
fi

kv_stop
grep '^demi-kv: thread' "$tmp/err"
for t in 0 1; do
    line=$(grep "^demi-kv: thread $t:" "$tmp/err")
    [[ $line =~ ([0-9]+)\ sent\ to\ other\ threads,\ ([0-9]+)\ run\ for\ them,\ ([0-9]+)\ keys ]] ||
        { bad "thread $t reported no figures: $line"; continue; }
    ((BASH_REMATCH[1] > 0 && BASH_REMATCH[2] > 0 && BASH_REMATCH[3] > 0)) ||
        bad "thread $t: sent ${BASH_REMATCH[1]}, ran ${BASH_REMATCH[2]} for the other, ${BASH_REMATCH[3]} keys: all must be > 0"
done

# A full heap on one thread: its queue from the other is read again once
# memory is freed.
px_pick_port KV_PORT || exit 1
HEAP_SIZE=32M kv_start --threads 2
python3 "$here/kv_threads_full.py" 127.0.0.1 "$port" || bad "kv_threads_full.py"
kv_stop
grep -q "a pop on the pipe from thread 1 failed: Cannot allocate memory; posted again" "$tmp/err" ||
    bad "no failed pop of thread 0's queue in demi-kv's log: $(cat "$tmp/err")"
((fails == 0)) || { echo "$fails check(s) failed"; exit 1; }
echo ok
