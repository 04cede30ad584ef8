#!/usr/bin/env bash
# demi-echo's client checks every echoed byte (it fills and checks 16 bytes
# at a time, apps/echo/echo.c's pattern_fill and pattern_check): on catnap
# over 127.0.0.1 it passes against demi-echo's server at sizes that
# exercise every path of the vector loops and their byte tails (1, 15, 16,
# 63, 64, 65, 1000, 65507; over TCP also 65536 + 7, and 1 MiB with 3
# connections); and against a Python echo server that corrupts one byte (the first,
# one inside a 64-byte block, one in the byte tail) or echoes one byte too
# many, it must exit 1 naming the wrong byte. Then the stream mode
# (--stream into --sink): its samples add up, it never claims more bytes
# than a sink received, and it refuses to run without --seconds.
set -euo pipefail
build=${DEMI_BUILD:?DEMI_BUILD names the build directory}
echo_bin=$build/demi-echo
[[ -x $echo_bin ]] || { echo "FAIL: $echo_bin not built"; exit 1; }
tmp=$(mktemp -d)
spid=
cleanup() {
  if [[ -n $spid ]]; then
    kill -INT "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
export LIBOS=catnap

# wait_ready FILE: the "ready IP:PORT" line's port.
wait_ready() {
  for _ in $(seq 600); do
    if grep -qs '^ready ' "$1"; then
      sed -n 's/^ready [0-9.]*:\([0-9]*\).*/\1/p' "$1" | head -1
      return 0
    fi
    kill -0 "$spid" 2>/dev/null || break
    sleep 0.05
  done
  return 1
}

for proto in tcp udp; do
  udp=()
  [[ $proto == udp ]] && udp=(--udp)
  "$echo_bin" server "${udp[@]}" --addr 127.0.0.1:0 >"$tmp/s.out" 2>"$tmp/s.err" &
  spid=$!
  port=$(wait_ready "$tmp/s.out") || fail "$proto: the server never said ready: $(tail -3 "$tmp/s.err")"
  sizes="1 15 16 63 64 65 1000 65507"
  [[ $proto == tcp ]] && sizes+=" 65543 1048576"
  for size in $sizes; do
    clients=1
    ((size == 1048576)) && clients=3
    "$echo_bin" client "${udp[@]}" --addr "127.0.0.1:$port" --size "$size" --iters 20 --warmup 2 \
      --clients "$clients" >"$tmp/c.out" 2>"$tmp/c.err" || fail "$proto size $size: $(tail -3 "$tmp/c.err")"
    n=$(grep -o '"n":[0-9]*' "$tmp/c.out" | cut -d: -f2)
    [[ -n $n ]] && ((n >= 20)) || fail "$proto size $size: fewer than 20 round trips: $(cat "$tmp/c.out")"
  done
  kill -INT "$spid"
  wait "$spid" || fail "$proto: the server exited with $? on SIGINT"
  spid=
  echo "$proto: every size echoed and checked"
done

# A TCP echo server that spoils message 2 (of 1000 bytes) at byte POS (or,
# with POS -1, sends one byte more after it).
cat >"$tmp/bad.py" <<'EOF'
import socket, sys
pos, size = int(sys.argv[1]), 1000
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(1)
print(ls.getsockname()[1], flush=True)
c, _ = ls.accept()
got = 0
while True:
    d = c.recv(65536)
    if not d:
        break
    b = bytearray(d)
    for i in range(len(b)):
        if pos >= 0 and got + i == size + pos:
            b[i] ^= 0x5a
    got += len(b)
    if pos < 0 and got >= 2 * size:
        b += b"x"
        pos = -2
    c.sendall(bytes(b))
EOF
for pos in 0 70 999 -1; do
  python3 "$tmp/bad.py" "$pos" >"$tmp/bad.port" &
  spid=$!
  for _ in $(seq 100); do [[ -s $tmp/bad.port ]] && break; sleep 0.05; done
  port=$(cat "$tmp/bad.port")
  [[ -n $port ]] || fail "the corrupting server did not start"
  rc=0
  timeout 60 "$echo_bin" client --addr "127.0.0.1:$port" --size 1000 --iters 5 --warmup 0 \
    >"$tmp/c.out" 2>"$tmp/c.err" || rc=$?
  kill "$spid" 2>/dev/null || true
  wait "$spid" 2>/dev/null || true
  spid=
  ((rc == 1)) || fail "byte $pos spoiled: the client exited $rc, not 1: $(tail -2 "$tmp/c.err")"
  want="byte $pos of echo 1 on connection 0 is wrong"
  ((pos < 0)) && want="byte 1000 of echo 1 on connection 0 is wrong"
  grep -q "$want" "$tmp/c.err" || fail "byte $pos spoiled: no '$want' in: $(tail -2 "$tmp/c.err")"
done
echo "a spoiled byte (first, inside a block, in the tail) and a byte too many: each caught and named"
# --stream into --sink: one JSON line whose bytes its one-second samples
# add up to; against a Python sink that counts what arrives, the client
# must not claim more than the sink got (a push completes once the kernel
# holds its bytes, and the client closes before the sink counts).
"$echo_bin" server --sink --addr 127.0.0.1:0 >"$tmp/s.out" 2>"$tmp/s.err" &
spid=$!
port=$(wait_ready "$tmp/s.out") || fail "sink: the server never said ready: $(tail -3 "$tmp/s.err")"
"$echo_bin" client --stream --addr "127.0.0.1:$port" --size 65536 --seconds 2 --warmup 10 >"$tmp/c.out" \
  2>"$tmp/c.err" || fail "stream: $(tail -3 "$tmp/c.err")"
kill -INT "$spid"
wait "$spid" || fail "sink: the server exited with $? on SIGINT"
spid=
python3 -c '
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert r["mode"] == "stream" and r["bytes"] > 0 and len(r["samples_bytes_per_s"]) == 2, r
assert sum(r["samples_bytes_per_s"]) == r["bytes"], r
' "$tmp/c.out" || fail "stream: a wrong JSON line: $(cat "$tmp/c.out")"
printf '%s\n' 'import socket' 'ls = socket.socket()' 'ls.bind(("127.0.0.1", 0))' 'ls.listen(1)' \
  'print(ls.getsockname()[1], flush=True)' 'c, _ = ls.accept()' 'n = 0' 'while True:' \
  '    d = c.recv(1 << 20)' '    if not d:' '        break' '    n += len(d)' 'print(n, flush=True)' >"$tmp/sink.py"
python3 "$tmp/sink.py" >"$tmp/sink.out" &
spid=$!
for _ in $(seq 100); do [[ -s $tmp/sink.out ]] && break; sleep 0.05; done
port=$(head -1 "$tmp/sink.out")
[[ -n $port ]] || fail "the Python sink did not start"
timeout 60 "$echo_bin" client --stream --addr "127.0.0.1:$port" --size 10000 --seconds 1 --warmup 0 \
  >"$tmp/c.out" 2>"$tmp/c.err" || fail "stream to the Python sink: $(tail -3 "$tmp/c.err")"
wait "$spid" || fail "the Python sink failed"
spid=
got=$(sed -n 2p "$tmp/sink.out")
claimed=$(grep -o '"bytes":[0-9]*' "$tmp/c.out" | cut -d: -f2)
[[ -n $got && -n $claimed ]] && ((claimed > 0 && claimed <= got)) ||
  fail "stream: the client counted ${claimed:-?} bytes, the sink received ${got:-?}"
rc=0
"$echo_bin" client --stream --addr "127.0.0.1:$port" --iters 5 >/dev/null 2>"$tmp/c.err" || rc=$?
((rc == 2)) || fail "--stream without --seconds: exit $rc, not 2"
echo "stream: $claimed bytes counted, $got received by a sink; the samples add up; misuse refused"
echo "test_echo_check: ok"
