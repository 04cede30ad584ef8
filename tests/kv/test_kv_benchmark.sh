#!/usr/bin/env bash
# demi-kv under the real redis-benchmark (Debian's redis-tools) on catnap,
# 127.0.0.1: 50 concurrent clients pipelining 16 commands each, SET then GET
# over a keyspace of 1000 keys with 100-byte values; then the key count,
# every value, and the server's hit/miss counters are checked. A second run
# without pipelining (50 clients) checks the same. Starts demi-kv on port 0
# and stops only that process, by PID.
set -uo pipefail
build=${DEMI_BUILD:-build}
kv=$build/demi-kv
command -v redis-benchmark >/dev/null || { echo "SKIP: redis-benchmark not found (scripts/deps.sh installs redis-tools)"; exit 77; }
command -v redis-cli >/dev/null || { echo "SKIP: redis-cli not found (scripts/deps.sh installs redis-tools)"; exit 77; }
[[ -x $kv ]] || { echo "FAIL: $kv not built"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/demi-kv-bench.XXXXXX")
pid=
. "$(dirname "$0")/../lib.sh" # kv_start, kv_cleanup
trap kv_cleanup EXIT
kv_start
cli() { timeout 30 redis-cli -h 127.0.0.1 -p "$port" "$@"; }
stat() { cli INFO stats | tr -d '\r' | sed -n "s/^$1://p"; }

fails=0
keys=1000
size=100
# check_run LABEL REQUESTS: the keyspace and counters after one SET,GET run.
check_run() {
    local label=$1 n=$2
    local dbsize hits misses
    dbsize=$(cli DBSIZE)
    if [[ $dbsize != "$keys" ]]; then
        echo "FAIL: $label: DBSIZE $dbsize, want $keys"
        fails=$((fails + 1))
    fi
    # Every key key:000000000000 .. key:000000000999 holds the same value
    # (redis-benchmark writes one payload), of the size asked for.
    local args=()
    for ((i = 0; i < keys; i++)); do args+=("$(printf 'key:%012d' "$i")"); done
    cli MGET "${args[@]}" >"$tmp/values"
    local lines distinct len
    lines=$(wc -l <"$tmp/values")
    distinct=$(sort -u "$tmp/values" | wc -l)
    len=$(head -n 1 "$tmp/values" | tr -d '\n' | wc -c)
    if [[ $lines != "$keys" || $distinct != 1 || $len != "$size" ]]; then
        echo "FAIL: $label: $lines values, $distinct distinct, first $len bytes (want $keys, 1, $size)"
        fails=$((fails + 1))
    fi
    # The GET run found every key: n hits, no misses.
    hits=$(stat keyspace_hits)
    misses=$(stat keyspace_misses)
    if [[ $hits != $((n + keys)) || $misses != 0 ]]; then
        echo "FAIL: $label: keyspace_hits $hits (want $n GETs + $keys MGET keys), misses $misses (want 0)"
        fails=$((fails + 1))
    fi
}

run_bench() {
    local label=$1 n=$2
    shift 2
    cli FLUSHALL >/dev/null
    cli CONFIG RESETSTAT >/dev/null
    # A hang guard: 150k requests take tens of seconds on a loaded machine.
    if ! timeout 240 redis-benchmark -h 127.0.0.1 -p "$port" -t set,get -n "$n" -r "$keys" -d "$size" \
        "$@" --csv >"$tmp/bench.csv" 2>"$tmp/bench.err"; then
        echo "FAIL: $label: redis-benchmark failed"
        cat "$tmp/bench.err" "$tmp/bench.csv"
        fails=$((fails + 1))
        return
    fi
    # One CSV row per test, with a positive rate.
    for t in SET GET; do
        grep -q "^\"$t\",\"[0-9.]*[1-9][0-9.]*\"" "$tmp/bench.csv" ||
            { echo "FAIL: $label: no $t result"; cat "$tmp/bench.csv"; fails=$((fails + 1)); }
    done
    check_run "$label" "$n"
    echo "$label: $(tr '\n' ' ' <"$tmp/bench.csv")"
}

run_bench "50 clients, -P 16" 200000 -c 50 -P 16
run_bench "50 clients" 50000 -c 50

conns=$(cli INFO clients | tr -d '\r' | sed -n 's/^connected_clients://p')
[[ $conns == 1 ]] || { echo "FAIL: $conns clients still connected after the runs"; fails=$((fails + 1)); }
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
pid=
((rc == 0)) || { echo "FAIL: demi-kv exited with $rc on SIGINT"; cat "$tmp/err"; fails=$((fails + 1)); }
((fails == 0)) || { echo "$fails check(s) failed"; exit 1; }
echo ok
