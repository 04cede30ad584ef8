# tests/lib.sh: shell helpers shared by the suite's scripts (source it).
# It must never start or stop anything by name, never send traffic beyond
# 127.0.0.1, and never guess how fast this machine is: a bound on time is
# derived from times the test measured itself.

# fails counts the checks that failed; bad MSG... reports one.
fails=${fails:-0}
bad() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}

# now_ms: milliseconds since the epoch.
now_ms() { date +%s%3N; }

# in_range LABEL VALUE LO HI: VALUE must be an integer in [LO, HI].
in_range() {
    [[ $2 =~ ^-?[0-9]+$ ]] && (($2 >= $3 && $2 <= $4)) || bad "$1: $2 not in [$3, $4]"
}

# ttl_check LABEL TTL SECONDS T0_MS: TTL is what TTL returned for a key
# given SECONDS to live at or after T0_MS (measured before the command that
# set it); it may have lost at most the time measured since T0_MS, plus 1 s
# for rounding.
ttl_check() {
    local el=$((($(now_ms) - $4 + 999) / 1000))
    in_range "$1" "$2" $(($3 - el - 1)) "$3"
}

# ---- demi-kv on catnap, 127.0.0.1 (scripts set kv and tmp first) ----

# kv_start [ARG ...]: demi-kv --addr 127.0.0.1:${KV_PORT:-0} [ARG ...] in the
# background, stdout in $tmp/out and stderr in $tmp/err; sets pid and port.
# It waits for the "ready" line as long as demi-kv lives, up to KV_READY_S
# (60) seconds: a hang guard, as a loaded machine starts it late, not never.
kv_start() {
    : >"$tmp/out"
    LIBOS=catnap HUGEPAGES=off "$kv" --addr "127.0.0.1:${KV_PORT:-0}" "$@" >"$tmp/out" 2>"$tmp/err" &
    pid=$!
    local t0=$SECONDS
    until grep -q '^ready ' "$tmp/out" 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null && ((SECONDS - t0 < ${KV_READY_S:-60})) || break
        sleep 0.05
    done
    port=$(sed -n 's/^ready 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$tmp/out")
    [[ -n $port ]] || { echo "FAIL: demi-kv did not become ready"; cat "$tmp/out" "$tmp/err"; exit 1; }
}

# kv_stop: SIGTERM, which must end demi-kv with status 0.
kv_stop() {
    kill -TERM "$pid"
    local rc=0
    wait "$pid" || rc=$?
    pid=
    ((rc == 0)) || { bad "demi-kv exited with $rc on SIGTERM"; cat "$tmp/err"; }
}

# kv_cleanup: for `trap kv_cleanup EXIT`: kills the demi-kv this script
# started, by its PID, if it still runs, and removes $tmp.
kv_cleanup() {
    if [[ -n ${pid:-} ]] && kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    rm -rf "$tmp"
}

# cli ARGS...: redis-cli against that demi-kv, stderr included; each call
# may take up to CLI_TIMEOUT (10) seconds, a hang guard.
cli() { timeout "${CLI_TIMEOUT:-10}" redis-cli -h 127.0.0.1 -p "$port" "$@" 2>&1; }

# expect WANT ARGS...: the output of cli ARGS must be WANT.
expect() {
    local want=$1 got
    shift
    got=$(cli "$@")
    [[ $got == "$want" ]] || bad "redis-cli $*: got [$got], want [$want]"
}
