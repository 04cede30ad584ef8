#!/usr/bin/env bash
# demi-kv --aof: writes made with the real redis-cli (SET with EX/PX/NX/
# KEEPTTL, GETSET, INCR and friends, APPEND, DEL, MSET, EXPIRE, PEXPIRE,
# PERSIST, FLUSHALL followed by more writes, a --pipe mass insertion with
# reads mixed in) survive a stop and a restart with the same log: every
# value is checked, TTLs keep their absolute time (a key's time runs on
# while the server is down, and a key whose time passed meanwhile is gone),
# a third start appends to the log and replays both runs. A log whose
# record is not demi-kv's stops the start with a clear error and exit 1.
# A log damaged in the middle is refused unchanged (exit 1, naming
# --aof-repair), and --aof-repair cuts it at the damage.
# Starts demi-kv on port 0 and stops only that process, by PID.
set -uo pipefail
build=${DEMI_BUILD:-build}
kv=$build/demi-kv
logecho=$build/demi-logecho
command -v redis-cli >/dev/null || { echo "SKIP: redis-cli not found (scripts/deps.sh installs redis-tools)"; exit 77; }
[[ -x $kv ]] || { echo "FAIL: $kv not built"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/demi-kv-aof.XXXXXX")
aof=$tmp/kv.aof
pid=
. "$(dirname "$0")/../lib.sh" # kv_start, kv_stop, cli, expect, bad, now_ms, in_range
trap kv_cleanup EXIT

# start [ARG ...], stop: demi-kv on the current log $aof.
start() { kv_start --aof "$aof" "$@"; }
stop() { kv_stop; }

# replayed: the count on the "aof: replayed N commands" line (stderr).
replayed() {
    sed -n 's/^aof: replayed \([0-9]*\) commands.*/\1/p' "$tmp/err"
}

# ---- first run: an empty log ----
start
[[ $(replayed) == 0 ]] || bad "a new log replayed [$(replayed)] commands"
grep -q '^aof_enabled:1' <(cli INFO persistence | tr -d '\r') || bad "INFO persistence: aof_enabled is not 1"
expect $'appendonly\nyes' CONFIG GET appendonly
# Keys that FLUSHALL removes: none of them may come back.
expect OK MSET gone1 a gone2 b
expect OK SET gone3 c EX 1000
expect OK FLUSHALL
expect 0 DBSIZE
expect OK SET plain hello
t_ttl=$(now_ms) # before any key with a TTL checked below is set
expect OK SET withex v EX 1000
expect OK SET withpx v PX 1000000
expect OK SET short v PX 1500       # gone by the time of the restart
expect OK SET mid v EX 3000
expect OK SET nx first NX
expect "" SET nx second NX          # refused: not logged, must not win on replay
expect OK SET kept old EX 500
expect OK SET kept new KEEPTTL
expect OK SET gs old
expect old GETSET gs new
expect 1 INCR counter
expect 2 INCR counter
expect 12 INCRBY counter 10
expect 9 DECRBY counter 3
expect 8 DECR counter
expect "ERR value is not an integer or out of range" INCR plain
expect 5 APPEND app hello
expect 11 APPEND app " world"
expect OK MSET m1 one m2 two m3 three
expect 2 DEL m2 m3 missing
expect 0 DEL missing
expect 0 EXPIRE relative 100        # no such key: changes nothing
expect OK SET persisted v EX 100
expect 1 PERSIST persisted
expect OK SET todie v
expect 1 PEXPIRE todie 1200         # passes while the server is down
expect OK SET deleted v
expect 1 EXPIRE deleted -1          # a past time deletes the key
expect OK SET big "$(head -c 100000 /dev/zero | tr '\0' x)"
# A pipeline of writes and reads on one connection: the replies must come
# back complete and in order.
python3 - >"$tmp/pipe.resp" <<'PY'
import sys
out = sys.stdout.buffer
def cmd(*a):
    out.write(b"*%d\r\n" % len(a) + b"".join(b"$%d\r\n%s\r\n" % (len(x), x) for x in a))
for i in range(5000):
    cmd(b"SET", b"mass:%d" % i, b"value-%d" % (i * 7))
    if i % 10 == 0:
        cmd(b"GET", b"mass:%d" % i)
        cmd(b"INCR", b"pipecount")
PY
out=$(timeout 30 redis-cli -h 127.0.0.1 -p "$port" --pipe <"$tmp/pipe.resp" 2>&1)
grep -q 'errors: 0, replies: 6000' <<<"$out" || bad "--pipe: $out"
expect 500 GET pipecount
# A value over 16 MiB (a record of several segments), grown by APPEND; a
# command over 256 MiB (one record's limit) is refused and not run.
python3 - "$port" "$(cd "$(dirname "$0")" && pwd)" <<'PY' || bad "large values"
import sys
sys.path.insert(0, sys.argv[2])
from kvtest import Conn, RespError
with Conn(int(sys.argv[1]), timeout=120) as c:
    big = bytes(range(256)) * ((20 << 20) // 256) + b"end"
    assert c.cmd("SET", "big20", big) == "OK"
    assert c.cmd("APPEND", "big20", "tail") == len(big) + 4
    r = c.cmd("SET", "huge", b"h" * ((256 << 20) + 1))
    assert isinstance(r, RespError) and str(r).startswith("ERR command too large"), r
    assert c.cmd("GET", "huge") is None
PY
stop

# ---- second run: replay ----
sleep 1.6 # past "short" (1.5 s) and "todie" (1.2 s)
start
n=$(replayed)
[[ $n =~ ^[0-9]+$ ]] && ((n > 5000)) || bad "second start replayed [$n] commands, want over 5000"
grep -q "^aof_commands_replayed:$n" <(cli INFO persistence | tr -d '\r') || bad "INFO: aof_commands_replayed is not $n"
expect "" GET gone1
expect "" GET gone3
expect hello GET plain
expect first GET nx
expect new GET kept
expect new GET gs
expect 8 GET counter
expect "hello world" GET app
expect one GET m1
expect "" GET m2
expect 0 EXISTS short
expect 0 EXISTS todie
expect 0 EXISTS deleted
expect v GET mid
expect -1 TTL persisted
expect -1 TTL plain
expect 100000 STRLEN big
expect value-34993 GET mass:4999
expect 500 GET pipecount
python3 - "$port" "$(cd "$(dirname "$0")" && pwd)" <<'PY' || bad "large value after the restart"
import sys
sys.path.insert(0, sys.argv[2])
from kvtest import Conn
with Conn(int(sys.argv[1]), timeout=120) as c:
    want = bytes(range(256)) * ((20 << 20) // 256) + b"endtail"
    got = c.cmd("GET", "big20")
    assert got == want, f"big20: {len(got) if got else got} bytes, different"
    assert c.cmd("EXISTS", "huge") == 0
PY
# TTLs keep their absolute time: about 1.6 s and more have passed (the
# lower bounds allow for all the time that did pass, measured after the
# last query and rounded up, plus 1 s for the server's rounding).
ttl_ex=$(cli TTL withex)
pttl_px=$(cli PTTL withpx)
ttl_kept=$(cli TTL kept)
ttl_mid=$(cli TTL mid)
el=$((($(now_ms) - t_ttl + 999) / 1000))
in_range "TTL withex" "$ttl_ex" $((999 - el)) 999
in_range "PTTL withpx" "$pttl_px" $((1000000 - 1000 * el)) 998500
in_range "TTL kept (KEEPTTL)" "$ttl_kept" $((499 - el)) 499
in_range "TTL mid" "$ttl_mid" $((2999 - el)) 2999
# A relative EXPIRE, then a restart two seconds later: the time left must
# have run on while the server was down, not start again from 100 s.
expect OK SET rel v
t_rel=$(now_ms)
expect 1 EXPIRE rel 100
stop
sleep 2
start
in_range "PTTL rel after a 2 s restart" "$(cli PTTL rel)" $((100000 - ($(now_ms) - t_rel) - 1000)) 98500
# Third run: the log is appended to, and replays all runs.
expect 9 INCR counter
expect OK SET third run
n2=$(replayed)
stop
start
((${n2:-0} < $(replayed))) || bad "third start replayed $(replayed), not more than $n2"
expect 9 GET counter
expect run GET third
expect "hello world" GET app
expect value-7 GET mass:1
stop

# ---- damage in the middle of the log: refused, then repaired on request ----
aof=$tmp/mid.aof
start
for i in 1 2 3 4 5 6; do expect OK SET "mid$i" "v$i"; done
stop
# Each SET above is a record of its own, at a 4 KiB boundary after the
# 4 KiB file header: change a payload byte of the second one.
printf 'X' | dd of="$aof" bs=1 seek=$((2 * 4096 + 40)) conv=notrunc status=none
sum=$(md5sum <"$aof")
rc=0
LIBOS=catnap HUGEPAGES=off timeout 60 "$kv" --addr 127.0.0.1:0 --aof "$aof" >"$tmp/mid.out" 2>"$tmp/mid.err" || rc=$?
((rc == 1)) || bad "demi-kv on a log damaged in the middle exited with $rc, want 1"
grep -q -- '--aof-repair' "$tmp/mid.err" || bad "no hint at --aof-repair: $(cat "$tmp/mid.err")"
grep -q '^ready' "$tmp/mid.out" && bad "demi-kv served a log damaged in the middle"
[[ $(md5sum <"$aof") == "$sum" ]] || bad "the refused log was changed"
start --aof-repair
expect v1 GET mid1
expect "" GET mid2
expect "" GET mid6
expect 1 DBSIZE
stop
start
expect 1 DBSIZE
stop

# ---- a record that is not demi-kv's: refuse to start ----
if [[ -x $logecho ]]; then
    bad_log=$tmp/bad.aof
    LIBOS=catnap HUGEPAGES=off "$logecho" --addr 127.0.0.1:0 --log "$bad_log" >"$tmp/le.out" 2>&1 &
    le=$!
    for _ in $(seq 100); do
        grep -q '^ready ' "$tmp/le.out" && break
        sleep 0.05
    done
    leport=$(sed -n 's/^ready 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$tmp/le.out")
    python3 - "$leport" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
msg = b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\nb\r\nthis is not a command\r\n"
s.sendall(msg)
got = b""
while len(got) < len(msg):
    got += s.recv(4096)
PY
    kill -TERM "$le"
    wait "$le"
    rc=0
    LIBOS=catnap HUGEPAGES=off timeout 20 "$kv" --addr 127.0.0.1:0 --aof "$bad_log" >"$tmp/bad.out" 2>"$tmp/bad.err" || rc=$?
    ((rc == 1)) || bad "demi-kv on a log with a bad record exited with $rc, want 1"
    grep -q 'cannot replay the log: record 1, byte 27' "$tmp/bad.err" || bad "no clear error for a bad record: $(cat "$tmp/bad.err")"
    grep -q '^ready' "$tmp/bad.out" && bad "demi-kv served a log it could not replay"
else
    bad "$logecho not built"
fi

((fails == 0)) || { echo "$fails check(s) failed"; exit 1; }
echo ok
