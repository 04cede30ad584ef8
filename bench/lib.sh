# shellcheck shell=bash disable=SC2154 # server_pin, demi_kv, redis_server, tmp, rounds, n1, n50, np, tests: set by the script that sources this
# bench/lib.sh: what the bench scripts share (source it; set bench_name,
# the prefix of the script's messages, first). Like the scripts, it reports
# and never judges a figure; it stops only the processes a script started
# (server_pid, client_pid), by PID, never by name; its waits are hang
# guards, never a guess at how fast this machine is.

bench_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bench_name=${bench_name:-bench}
server_pid=
client_pid=

# die MSG...: MSG on standard error, then exit 1 (the EXIT trap cleans up).
die() {
    echo "$bench_name: error: $*" >&2
    exit 1
}

# show_log FILE: its last lines, indented, for an error report.
show_log() {
    if [[ -s $1 ]]; then tail -n 20 "$1" | sed 's/^/    | /' >&2; else echo "    | (empty)" >&2; fi
}

# alive PID: is PID, a child of this shell, still running? A child that
# exited stays a zombie until waited for, so look at its state, not just
# at its existence.
alive() {
    local st
    st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ -n $st && $st != Z* ]]
}

# bench_build ARG: sets build to the CMake build directory ARG names
# (bench_build_dir); dies when it does not exist.
bench_build() {
    build=$(bench_build_dir "$1")
    [[ -d $build ]] || die "build directory '$1' not found (tried ./$1 and $bench_repo/$1); run 'make build' first"
}

# bench_positive VAR...: each variable named must hold a positive integer.
bench_positive() {
    local v
    for v; do
        [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v='${!v}' is not a positive integer"
    done
}

# bench_cpus CPU...: each must be a CPU number this process may run on.
bench_cpus() {
    local cpu
    for cpu; do
        [[ $cpu =~ ^(0|[1-9][0-9]*)$ ]] || die "'$cpu' is not a CPU number; set BENCH_SERVER_CPU/BENCH_CLIENT_CPU"
        taskset -c "$cpu" true 2>/dev/null ||
            die "cannot run on CPU $cpu (this machine has $(nproc) usable CPUs); set BENCH_SERVER_CPU/BENCH_CLIENT_CPU"
    done
}

# bench_need TOOL...: each must be on PATH.
bench_need() {
    local t
    for t; do
        command -v "$t" >/dev/null || die "'$t' not found (scripts/deps.sh installs it)"
    done
}

# bench_memif_config CPU ROLE IP MAC SOCKET: scripts/memif-config.sh's
# catnip configuration for one end of a net_memif link, the polling thread
# pinned to CPU by the EAL's -l (bench/catnip.sh says why not taskset).
bench_memif_config() {
    EAL_EXTRA="-l $1" "$bench_repo/scripts/memif-config.sh" "${@:2}"
}

# bench_traps: the EXIT trap runs bench_cleanup; INT and TERM exit through it.
bench_traps() {
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# bench_cleanup: stops the client and the server this script still runs
# (SIGTERM; SIGKILL for a server still there 2 s later), then runs the
# script's bench_on_exit if it has one, then removes $tmp.
bench_cleanup() {
    local pid=${client_pid:-}
    client_pid=
    if [[ -n $pid ]]; then
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    pid=${server_pid:-}
    server_pid=
    if [[ -n $pid ]]; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 20); do alive "$pid" || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    if declare -F bench_on_exit >/dev/null; then bench_on_exit || true; fi
    [[ -z ${tmp:-} ]] || rm -rf "$tmp"
}

# bench_wait SECONDS COMMAND...: runs COMMAND every 50 ms until it
# succeeds (returns 0), the server (server_pid) is no longer running
# (returns 1), or SECONDS have passed (returns 2): a hang guard, so make
# it generous.
bench_wait() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        alive "$server_pid" || return 1
        ((SECONDS < deadline)) || return 2
        sleep 0.05
    done
}

# bench_stop_server WHAT LOG: SIGINT to the server, which must then exit
# with status 0 within 30 s (a hang guard); else LOG's end, and die.
bench_stop_server() {
    local what=$1 log=$2 pid=$server_pid rc=0
    kill -INT "$pid" 2>/dev/null || true
    for _ in $(seq 300); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        server_pid=
        show_log "$log"
        die "$what did not exit within 30 s of SIGINT"
    fi
    wait "$pid" || rc=$?
    server_pid=
    ((rc == 0)) || {
        show_log "$log"
        die "$what exited with status $rc on SIGINT"
    }
}

# ---- redis-benchmark against demi-kv and redis-server (kv*.sh) ----

# bench_free_port: a TCP port free on 127.0.0.1 a moment ago.
bench_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# bench_pong CMD...: does the redis-cli command line CMD (PING added) get PONG?
bench_pong() {
    [[ $("$@" PING 2>/dev/null) == PONG ]]
}

# bench_kv_start NAME TAG ARG...: NAME (demi-kv, on catnap, or $redis_server)
# on 127.0.0.1 under the command prefix in the array server_pin (e.g.
# taskset -c 1; empty: unpinned), with ARG... added to its command line;
# its output in $tmp/TAG.out and TAG.err, a redis-server's files in
# $tmp/TAG.dir. Sets server_pid, and port once it answers PING; dies if
# it does not.
bench_kv_start() {
    local name=$1 tag=$2
    shift 2
    mkdir -p "$tmp/$tag.dir"
    port=
    if [[ $name == demi-kv ]]; then
        LIBOS=catnap "${server_pin[@]}" "$demi_kv" --addr 127.0.0.1:0 "$@" >"$tmp/$tag.out" 2>"$tmp/$tag.err" &
        server_pid=$!
        bench_wait 60 grep -qs '^ready ' "$tmp/$tag.out" || true
        port=$(sed -n 's/^ready 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$tmp/$tag.out")
    else
        port=$(bench_free_port)
        "${server_pin[@]}" "$redis_server" --port "$port" --bind 127.0.0.1 --save '' --dir "$tmp/$tag.dir" \
            --daemonize no "$@" >"$tmp/$tag.out" 2>"$tmp/$tag.err" &
        server_pid=$!
    fi
    [[ -n $port ]] && bench_wait 60 bench_pong redis-cli -h 127.0.0.1 -p "$port" && return 0
    show_log "$tmp/$tag.err"
    show_log "$tmp/$tag.out"
    die "$name did not start"
}

# bench_kv_rounds FN SERVER...: the rounds ($rounds) of a redis-benchmark
# comparison, interleaved: in each round, each of the three client
# configurations on each SERVER in turn, as FN ROUND CONFIG SERVER TAG
# ARG..., where TAG is SERVER.CONFIG.ROUND and ARG... the configuration's
# options: c1 (-c 1 -n $n1), c50 (-c 50 -n $n50), c50p16 (-c 50 -P 16
# -n $np).
bench_kv_rounds() {
    local fn=$1 r cfg name
    local -a args
    shift
    for ((r = 1; r <= rounds; r++)); do
        for cfg in c1 c50 c50p16; do
            case $cfg in
            c1) args=(-c 1 -n "$n1") ;;
            c50) args=(-c 50 -n "$n50") ;;
            c50p16) args=(-c 50 -P 16 -n "$np") ;;
            esac
            for name; do
                "$fn" "$r" "$cfg" "$name" "$name.$cfg.$r" "${args[@]}"
            done
        done
    done
}

# bench_kv_tests VAR: checks $tests (a redis-benchmark -t list, or empty
# for its default list), which came from the variable VAR, and sets the
# array test_args to the options it means.
bench_kv_tests() {
    [[ -z $tests || $tests =~ ^[A-Za-z0-9_]+(,[A-Za-z0-9_]+)*$ ]] ||
        die "$1='$tests' is not a comma-separated list of redis-benchmark tests (e.g. set,get)"
    test_args=()
    [[ -z $tests ]] || test_args=(-t "$tests")
}

# bench_build_dir ARG: the CMake build directory ARG names: an absolute
# path, else a directory relative to the current one, else one relative to
# the repository. Prints it; whether it exists is the caller's question.
bench_build_dir() {
    if [[ $1 == /* ]]; then
        echo "$1"
    elif [[ -d $1 ]]; then
        (cd "$1" && pwd)
    else
        echo "$bench_repo/$1"
    fi
}

# bench_kv_plot DAT NAMES TITLE OUT: bench/plot_kv.gp's two figures of a
# redis-benchmark run (a panel per test: ops/s, and p50/p99), written as
# OUT.png and OUT_latency.png. Returns 1, with gnuplot's last messages on
# standard error, when gnuplot fails or writes an empty figure.
bench_kv_plot() {
    local dat=$1 names=$2 title=$3 out=$4 tmp f
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench-plot.XXXXXX") || return 1
    if ! gnuplot -c "$bench_repo/bench/plot_kv.gp" "$tmp/plot" "$title" "$dat" "$names" 2>"$tmp/err"; then
        tail -n 20 "$tmp/err" | sed 's/^/    | /' >&2
        echo "gnuplot failed" >&2
        rm -rf "$tmp"
        return 1
    fi
    for f in plot plot_latency; do
        if [[ ! -s $tmp/$f.png ]]; then
            echo "gnuplot wrote no $f.png" >&2
            rm -rf "$tmp"
            return 1
        fi
    done
    mv -f "$tmp/plot.png" "$out.png" && mv -f "$tmp/plot_latency.png" "${out}_latency.png"
    local rc=$?
    rm -rf "$tmp"
    return $rc
}
