# shellcheck shell=bash
# tests/txn/txn_lib.sh: what the TxnStore scripts share (tests/txn/*.sh and
# bench/txn.sh source it): a temporary directory and an EXIT trap that
# kills, by PID, every process the script started (append each to pids),
# free ports on 127.0.0.1, and a hang-guarded wait for a line in a file.
# It must never stop a process the script did not start.
tmp=$(mktemp -d)
pids=()
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
