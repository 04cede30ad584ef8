#!/usr/bin/env bash
# Unmodified Redis clients on libdemi at both ends, no kernel on the path
# (issue 13): demi-kv on catnip as one end of a DPDK net_memif link, and
# Debian's redis-benchmark, redis-cli and a Python client (tests/kv/
# kv_known.py) under LD_PRELOAD=libdemi-posix.so on catnip as the other.
# Each client process is a fresh memif client of the same link.
#
#   1. redis-cli round trips, every result checked, and a 300 KB value set
#      with -x and read back equal.
#   2. kv_known.py sets 2000 keys with known binary values; redis-benchmark
#      -c 50 -P 16 and -c 50 (SET and GET over 1000 keys).
#   3. Nothing lost: DBSIZE, every known value byte-exact, every benchmark
#      key present, GET hits exactly as many as were sent, demi-kv exits 0.
# Prints the benchmark figures. Needs no root and no hugepages.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${DEMI_BUILD:-$src/build}
[[ $build == /* ]] || build=$src/$build
kv=$build/demi-kv
known=$src/tests/kv/kv_known.py
# shellcheck source=../../scripts/bypass.sh
. "$src/scripts/bypass.sh"

fail() {
  echo "FAIL: $*"
  exit 1
}
for t in python3 timeout redis-cli redis-benchmark; do
  command -v $t >/dev/null || fail "'$t' not found (scripts/deps.sh installs it)"
done
[[ -x $kv && -f $build/libdemi-posix.so ]] || fail "demi-kv or libdemi-posix.so is not built (DEMI_BUILD=$build)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/demi-posix-memif.XXXXXX")
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do stop_pid "$p"; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
show() { tail -n 20 "$1" 2>/dev/null | sed 's/^/    | /'; }

ip=10.77.3.1 port=6379
"$src/scripts/memif-config.sh" server $ip 02:00:00:00:73:01 "$tmp/memif.sock" >"$tmp/server.yaml"
"$src/scripts/memif-config.sh" client 10.77.3.2 02:00:00:00:73:02 "$tmp/memif.sock" >"$tmp/client.yaml"
CONFIG_PATH=$tmp/server.yaml DEMI_LOG=info "$kv" --addr "$ip:$port" >"$tmp/kv.out" 2>"$tmp/kv.err" &
kv_pid=$!
pids+=("$kv_pid")
for _ in $(seq 150); do
  grep -q '^ready ' "$tmp/kv.out" 2>/dev/null && break
  kill -0 "$kv_pid" 2>/dev/null || break
  sleep 0.1
done
grep -q "^ready $ip:$port\$" "$tmp/kv.out" || {
  show "$tmp/kv.err"
  fail "demi-kv did not print 'ready $ip:$port' within 15 s"
}
echo "demi-kv on catnip (memif server) at $ip:$port; the clients are unmodified, under libdemi-posix.so on catnip"

read -r -a preload <<<"$(preload_env "$build")"
# ours CMD...: CMD under the preload, as the link's memif client.
ours() { env CONFIG_PATH="$tmp/client.yaml" HUGEPAGES=off "${preload[@]}" timeout -k 5 120 "$@"; }

fails=0
bad() {
  echo "FAIL: $*"
  fails=$((fails + 1))
}
cli() { ours redis-cli -h $ip -p $port "$@" 2>"$tmp/cli.err"; }
expect() { # WANT ARGS...
  local want=$1 got
  shift
  got=$(cli "$@") || true
  [[ $got == "$want" ]] || {
    show "$tmp/cli.err"
    bad "redis-cli $*: got [$got], want [$want]"
  }
}
stat() { cli INFO "$1" | tr -d '\r' | sed -n "s/^$2://p"; }

# ---- 1. round trips ----
expect PONG PING
expect OK SET greeting "hello world"
expect "hello world" GET greeting
expect 1 INCR counter
expect 11 INCRBY counter 10
expect $'11\n\nhello world' MGET counter missing greeting
python3 -c 'import base64, os; print(base64.b64encode(os.urandom(225000)).decode(), end="")' >"$tmp/big"
expect OK -x SET big <"$tmp/big"
cli GET big | head -c -1 >"$tmp/big.back"
cmp -s "$tmp/big" "$tmp/big.back" || bad "GET big: $(wc -c <"$tmp/big.back") bytes back, not $(wc -c <"$tmp/big")"
expect OK FLUSHALL
((fails == 0)) || fail "$fails redis-cli round trip(s) wrong"
echo "round trips: redis-cli under the preload, a 300 KB value right"

# ---- 2. load ----
keys=1000 known_keys=2000 n_p=100000 n_c=20000
expect OK CONFIG RESETSTAT
out=$(ours python3 "$known" fill $ip $port --keys $known_keys --conns 1 2>&1) || fail "$out"
echo "$out"
bench() { # LABEL N ARGS...
  local label=$1 n=$2 rc=0 t
  shift 2
  ours redis-benchmark -h $ip -p $port -t set,get -n "$n" -r $keys "$@" --csv >"$tmp/b.csv" 2>"$tmp/b.err" || rc=$?
  ((rc == 0)) || {
    show "$tmp/b.err"
    fail "redis-benchmark $label exited $rc"
  }
  for t in SET GET; do
    grep -q "^\"$t\",\"[0-9.]*[1-9][0-9.]*\"" "$tmp/b.csv" || fail "redis-benchmark $label: no $t result"
  done
  awk -F'"' -v l="$label" 'NR > 1 {printf "%s %s: %.0f ops/s, p50 %s ms, p99 %s ms\n", l, $2, $4, $10, $14}' "$tmp/b.csv"
}
bench "-c 50 -P 16" $n_p -c 50 -P 16
bench "-c 50" $n_c -c 50

# ---- 3. nothing lost ----
expect $((known_keys + keys)) DBSIZE
out=$(ours python3 "$known" check $ip $port --keys $known_keys --bench-keys $keys --bench-size 3 2>&1) || fail "$out"
echo "$out"
hits=$(stat stats keyspace_hits) misses=$(stat stats keyspace_misses)
want=$((n_p + n_c + known_keys + keys))
[[ $hits == "$want" && $misses == 0 ]] || bad "keyspace_hits $hits, misses $misses; want $want hits and no miss"
kill -INT "$kv_pid"
rc=0
wait "$kv_pid" || rc=$?
pids=()
((rc == 0)) || {
  show "$tmp/kv.err"
  fail "demi-kv exited $rc on SIGINT"
}
((fails == 0)) || fail "$fails check(s) failed"
echo PASS
