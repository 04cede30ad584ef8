#!/usr/bin/env bash
# demi-kv with the real redis-cli (Debian's redis-tools) over 127.0.0.1 on
# catnap: SET/GET/INCR/DEL/EXPIRE and friends, every result checked, then a
# redis-cli --pipe mass insertion and -r repeats. Starts demi-kv on port 0
# and stops only that process, by PID.
set -uo pipefail
build=${DEMI_BUILD:-build}
kv=$build/demi-kv
command -v redis-cli >/dev/null || { echo "SKIP: redis-cli not found (scripts/deps.sh installs redis-tools)"; exit 77; }
[[ -x $kv ]] || { echo "FAIL: $kv not built"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/demi-kv-cli.XXXXXX")
pid=
. "$(dirname "$0")/../lib.sh" # kv_start, cli, expect, bad, now_ms, ttl_check
trap kv_cleanup EXIT
kv_start

expect PONG PING
expect OK SET greeting "hello world"
expect "hello world" GET greeting
expect "" GET missing
expect 11 STRLEN greeting
expect 1 INCR counter
expect 2 INCR counter
expect 12 INCRBY counter 10
expect 7 DECRBY counter 5
expect 6 DECR counter
expect 6 GET counter
expect "ERR value is not an integer or out of range" INCR greeting
expect 1 EXISTS greeting
expect 2 DEL greeting counter
expect 0 EXISTS greeting
expect OK MSET a 1 b 2 c 3
expect $'1\n2\n\n3' MGET a b missing c
expect 4 APPEND a 234
expect 1234 GET a
t0=$(now_ms)
expect 1 EXPIRE a 100
ttl_check "TTL a after EXPIRE a 100" "$(cli TTL a)" 100 "$t0"
expect 1 PERSIST a
expect -1 TTL a
expect -2 TTL missing
t0=$(now_ms)
expect OK SET temp v PX 3000
got=$(cli GET temp)
# The value must be there only if the GET ended within the 3 s measured
# from before the SET; on a machine that slow, only the expiry is checked.
(($(now_ms) - t0 < 3000)) && [[ $got != v ]] && bad "GET temp within 3 s of SET PX 3000: [$got]"
sleep 3.2
expect "" GET temp
expect 0 EXISTS temp
expect 3 DBSIZE
keys=$(cli KEYS '*' | sort | tr '\n' ' ')
[[ $keys == "a b c " ]] || { echo "FAIL: KEYS *: got [$keys]"; fails=$((fails + 1)); }
expect OK SELECT 0
expect "ERR DB index is out of range" SELECT 1
expect $'save\n\nappendonly\nno' CONFIG GET save appendonly
expect OK CLIENT SETNAME tester
expect "ERR unknown command 'FOO', with args beginning with: 'bar' " FOO bar
expect "ERR wrong number of arguments for 'get' command" GET
# COMMAND COUNT: every command listed, at least the 30 of the core table.
ncmd=$(cli COMMAND COUNT)
nlist=$(cli COMMAND LIST | wc -l)
[[ $ncmd =~ ^[0-9]+$ && $ncmd -ge 30 && $ncmd == "$nlist" ]] ||
    { echo "FAIL: COMMAND COUNT [$ncmd], COMMAND LIST has $nlist"; fails=$((fails + 1)); }
# Sorted sets as redis-cli shows them.
expect 3 ZADD board 10 ann 20 bob 15 cy
expect $'bob\n20\ncy\n15' ZREVRANGE board 0 1 WITHSCORES
expect 25.5 ZINCRBY board 10.5 cy
expect $'ann\n10' ZPOPMIN board
expect 2 ZCARD board
expect OK FLUSHALL
expect 0 DBSIZE
grep -q '^redis_version:7.0.0' <(cli INFO server | tr -d '\r') || { echo "FAIL: INFO server"; fails=$((fails + 1)); }

# -r: the same command 100 times over one connection.
cli -r 100 INCR hits >/dev/null
expect 100 GET hits

# --pipe: mass insertion of 20000 keys as one RESP stream.
python3 - >"$tmp/pipe.resp" <<'PY'
import sys
out = sys.stdout.buffer
for i in range(20000):
    k, v = b"mass:%d" % i, b"value-%d" % (i * 7)
    out.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(v), v))
PY
out=$(timeout 30 redis-cli -h 127.0.0.1 -p "$port" --pipe <"$tmp/pipe.resp" 2>&1)
grep -q 'errors: 0, replies: 20000' <<<"$out" || { echo "FAIL: --pipe: $out"; fails=$((fails + 1)); }
expect 20001 DBSIZE
expect value-69993 GET mass:9999
expect value-139993 GET mass:19999

# QUIT, then a clean stop: SIGINT, exit 0.
expect OK QUIT
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
pid=
if ((rc != 0)); then
    echo "FAIL: demi-kv exited with $rc on SIGINT"
    cat "$tmp/err"
    fails=$((fails + 1))
fi
((fails == 0)) || { echo "$fails check(s) failed"; exit 1; }
echo ok
