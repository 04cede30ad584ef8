# shellcheck shell=bash
# tests/posix/px_lib.sh: shell helpers for the px_server/px_client scripts
# (bash; source it). It builds nothing, stops only processes it started
# (by PID), and sends no traffic itself. A command is always given whole
# (CMD ARG ...), so a caller can prefix it: env LD_PRELOAD=..., ip netns
# exec NS ..., and so on. Every wait has a hang guard in seconds, never an
# expectation of speed.
#
#   px_pick_port VAR              a free port (TCP and UDP) into VAR
#   px_start_server LOG CMD...    start a server in the background, output in
#                                 LOG; wait for its READY line
#   px_wait_server_exit [LIMIT]   wait for the server to exit by itself
#                                 (after CTRL QUIT); returns its exit status
#   px_stop_server                kill the server if it still runs (by PID)
#   px_check NAME LOG CMD...      run CMD (output in LOG); record pass/fail
#   px_start_bg NAME LOG CMD...   the same, in the background ...
#   px_wait_bg                    ... and wait for all of those
#   px_pass NAME / px_fail NAME   record a result
#   px_stat LINE KEY              value of KEY=N in a px_server summary line
#   px_cleanup                    stop everything started here (for a trap)
#   px_summary                    print "N passed, N failed"; status 0 if none failed

PX_SERVER_PID=
PX_SERVER_LOG=
PX_BG_PIDS=()
PX_BG_NAMES=()
PX_BG_LOGS=()
PX_PASSED=0
PX_FAILED=0
PX_USED_PORTS=" "
PX_READY_TIMEOUT_S=${PX_READY_TIMEOUT_S:-120}
PX_CLIENT_TIMEOUT_S=${PX_CLIENT_TIMEOUT_S:-1200}

px_log() { echo "px: $*"; }

px_pass() {
    PX_PASSED=$((PX_PASSED + 1))
    echo "ok   $1"
}

px_fail() {
    PX_FAILED=$((PX_FAILED + 1))
    echo "FAIL $1"
}

# px_show LOG: a log, indented, for a failure report.
px_show() { sed 's/^/    | /' "$1"; }

# px_port_in_use PORT: true if any local TCP or UDP socket uses PORT.
px_port_in_use() {
    local hex f files=()
    hex=$(printf '%04X' "$1")
    for f in /proc/net/tcp /proc/net/tcp6 /proc/net/udp /proc/net/udp6; do
        [[ -r $f ]] && files+=("$f")
    done
    awk -v h="$hex" 'FNR > 1 { n = split($2, a, ":"); if (a[n] == h) found = 1 }
                     END { exit !found }' "${files[@]}"
}

# px_pick_port VAR: a port in [20000, 32000) (below the ephemeral range),
# unused now and not handed out before by this shell.
px_pick_port() {
    local p i
    for ((i = 0; i < 1000; i++)); do
        p=$((20000 + RANDOM % 12000))
        [[ $PX_USED_PORTS == *" $p "* ]] && continue
        px_port_in_use "$p" && continue
        PX_USED_PORTS+="$p "
        printf -v "$1" '%s' "$p"
        return 0
    done
    px_log "no free port found"
    return 1
}

# px_wait_ready PID LOG LIMIT: wait for a line READY in LOG while PID lives.
px_wait_ready() {
    local pid=$1 log=$2 limit=$3 t0=$SECONDS
    while ! grep -qx READY "$log"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            px_log "server exited before READY:"
            px_show "$log"
            return 1
        fi
        if ((SECONDS - t0 >= limit)); then
            px_log "server: no READY after ${limit}s (hang guard)"
            px_show "$log"
            return 1
        fi
        sleep 0.05
    done
}

# px_start_server LOG CMD...: start CMD in the background (stdout and
# stderr in LOG), set PX_SERVER_PID and PX_SERVER_LOG, and wait for READY.
px_start_server() {
    local log=$1
    shift
    : >"$log"
    "$@" >"$log" 2>&1 &
    PX_SERVER_PID=$!
    # shellcheck disable=SC2034 # for the callers
    PX_SERVER_LOG=$log
    px_wait_ready "$PX_SERVER_PID" "$log" "$PX_READY_TIMEOUT_S"
}

# px_wait_server_exit [LIMIT]: wait (up to LIMIT s, default 120) for the
# server to exit by itself; returns its exit status (124: killed by the guard).
px_wait_server_exit() {
    local limit=${1:-120} t0=$SECONDS st
    [[ -n $PX_SERVER_PID ]] || return 0
    while kill -0 "$PX_SERVER_PID" 2>/dev/null; do
        if ((SECONDS - t0 >= limit)); then
            px_log "server still running ${limit}s after QUIT; killing PID $PX_SERVER_PID"
            px_stop_server
            return 124
        fi
        sleep 0.05
    done
    wait "$PX_SERVER_PID"
    st=$?
    PX_SERVER_PID=
    return "$st"
}

# px_stop_server: kill the server by PID if it still runs.
px_stop_server() {
    [[ -n $PX_SERVER_PID ]] || return 0
    kill "$PX_SERVER_PID" 2>/dev/null
    wait "$PX_SERVER_PID" 2>/dev/null
    PX_SERVER_PID=
}

# px_check NAME LOG CMD...: run CMD in the foreground, output in LOG.
px_check() {
    local name=$1 log=$2 st
    shift 2
    timeout -k 10 "$PX_CLIENT_TIMEOUT_S" "$@" >"$log" 2>&1
    st=$?
    if ((st == 0)); then
        px_pass "$name"
    else
        px_fail "$name (exit $st)"
        px_show "$log"
    fi
    return "$st"
}

# px_start_bg NAME LOG CMD...: like px_check, in the background.
px_start_bg() {
    local name=$1 log=$2
    shift 2
    timeout -k 10 "$PX_CLIENT_TIMEOUT_S" "$@" >"$log" 2>&1 &
    PX_BG_PIDS+=("$!")
    PX_BG_NAMES+=("$name")
    PX_BG_LOGS+=("$log")
}

# px_wait_bg: wait for every px_start_bg command; record each result.
px_wait_bg() {
    local i st bad=0
    for i in "${!PX_BG_PIDS[@]}"; do
        wait "${PX_BG_PIDS[$i]}"
        st=$?
        if ((st == 0)); then
            px_pass "${PX_BG_NAMES[$i]}"
        else
            px_fail "${PX_BG_NAMES[$i]} (exit $st)"
            px_show "${PX_BG_LOGS[$i]}"
            bad=1
        fi
    done
    PX_BG_PIDS=()
    PX_BG_NAMES=()
    PX_BG_LOGS=()
    return "$bad"
}

# px_stat LINE KEY: the number after KEY= in LINE (empty if absent).
px_stat() {
    [[ $1 =~ (^|[[:space:]])$2=([0-9]+) ]] && echo "${BASH_REMATCH[2]}"
}

# px_cleanup: stop whatever this shell started and still runs.
px_cleanup() {
    local pid
    for pid in "${PX_BG_PIDS[@]}"; do
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    PX_BG_PIDS=()
    px_stop_server
}

px_summary() {
    echo "$PX_PASSED passed, $PX_FAILED failed"
    ((PX_FAILED == 0))
}
