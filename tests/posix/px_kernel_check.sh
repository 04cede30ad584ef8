#!/usr/bin/env bash
# tests/posix/px_kernel_check.sh BINDIR: px_server in every MODE against
# px_client on 127.0.0.1 on plain Linux (no preload), which proves the test
# programs themselves. BINDIR holds the built px_server and px_client.
#
# Per mode: "all" and "bulk"; in the event-loop modes also all + bulk +
# echo + ctrl PIPE at the same time; then ctrl PIPE, STATS (checked against
# what was run) and QUIT, after which the server must exit 0 and print its
# summary. PX_MODES="MODE ..." runs only those modes (default: all five).
# Exit status 0 only if every check passed. Logs are kept (and
# their directory printed) when something failed.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
. "$here/px_lib.sh"

bindir=${1:?usage: px_kernel_check.sh BINDIR}
# PX_SEQUENTIAL=1: no clients at the same time (one bypass device cannot
# be driven by two client processes at once).
# PX_SERVER_WRAP / PX_CLIENT_WRAP: words put before the server's / the
# clients' commands (env LD_PRELOAD=..., ip netns exec NS, ...), split on
# blanks; PX_HOST: the server's address (default 127.0.0.1).
read -r -a server_wrap <<<"${PX_SERVER_WRAP:-}"
read -r -a client_wrap <<<"${PX_CLIENT_WRAP:-}"
server=$bindir/px_server
client=$bindir/px_client
host=${PX_HOST:-127.0.0.1}
read -r -a modes <<<"${PX_MODES:-block epoll-lt epoll-et poll select}"
work=$(mktemp -d /tmp/px_kernel_check.XXXXXX)
trap px_cleanup EXIT

for b in "$server" "$client"; do
    [[ -x $b ]] || { echo "px_kernel_check: $b: not an executable"; exit 2; }
done
server=("${server_wrap[@]}" "$server")
client=("${client_wrap[@]}" "$client")

# check_stats MODE LOG RUNS_ALL RUNS_BULK PIPES: the STATS reply against
# lower bounds that follow from what the clients did.
check_stats() {
    local mode=$1 line conns bytes udp ticks pipes
    line=$(grep '^px_server: ' "$2")
    conns=$(px_stat "$line" connections)
    bytes=$(px_stat "$line" bytes)
    udp=$(px_stat "$line" udp)
    ticks=$(px_stat "$line" timer_ticks)
    pipes=$(px_stat "$line" pipe_events)
    if [[ -z $conns || -z $bytes || -z $udp || -z $ticks || -z $pipes ]]; then
        px_fail "$mode stats: unparsable reply \"$line\""
        return
    fi
    local bad=()
    ((conns >= 200 * $3 + $4)) || bad+=("connections=$conns < $((200 * $3 + $4))")
    ((bytes >= (64 << 20) * $4)) || bad+=("bytes=$bytes < $(((64 << 20) * $4))")
    ((pipes == $5)) || bad+=("pipe_events=$pipes != $5")
    if [[ $mode != block ]]; then
        ((udp >= 103 * $3)) || bad+=("udp=$udp < $((103 * $3))")
        ((ticks > 0)) || bad+=("timer_ticks=0")
    fi
    if ((${#bad[@]} == 0)); then
        px_pass "$mode stats ($line)"
    else
        px_fail "$mode stats: ${bad[*]}"
    fi
}

run_mode() {
    local mode=$1
    local port udp closed udparg runs_all=1 runs_bulk=1 pipes=1 w=$work/$mode
    if ! { px_pick_port port && px_pick_port udp && px_pick_port closed; }; then
        px_fail "$mode: ports"
        return
    fi
    local sargs=("$host" "$port" "$mode")
    if [[ $mode == block ]]; then
        udparg=0
    else
        sargs+=("$udp")
        udparg=$udp
    fi
    if ! px_start_server "$w.server.log" "${server[@]}" "${sargs[@]}"; then
        px_fail "$mode: server start"
        px_stop_server
        return
    fi
    px_check "$mode all" "$w.all.log" "${client[@]}" "$host" "$port" all "$udparg" "$closed"
    px_check "$mode bulk" "$w.bulk.log" "${client[@]}" "$host" "$port" bulk
    if [[ $mode != block && -z ${PX_SEQUENTIAL:-} ]]; then
        px_start_bg "$mode concurrent all" "$w.c-all.log" "${client[@]}" "$host" "$port" all "$udparg" "$closed"
        px_start_bg "$mode concurrent bulk" "$w.c-bulk.log" "${client[@]}" "$host" "$port" bulk
        px_start_bg "$mode concurrent echo" "$w.c-echo.log" "${client[@]}" "$host" "$port" echo
        px_start_bg "$mode concurrent ctrl PIPE" "$w.c-pipe.log" "${client[@]}" "$host" "$port" ctrl PIPE
        px_wait_bg
        runs_all=2 runs_bulk=2 pipes=2
    fi
    px_check "$mode ctrl PIPE" "$w.pipe.log" "${client[@]}" "$host" "$port" ctrl PIPE
    if px_check "$mode ctrl STATS" "$w.stats.log" "${client[@]}" "$host" "$port" ctrl STATS; then
        check_stats "$mode" "$w.stats.log" "$runs_all" "$runs_bulk" "$pipes"
    fi
    px_check "$mode ctrl QUIT" "$w.quit.log" "${client[@]}" "$host" "$port" ctrl QUIT
    local st=0
    px_wait_server_exit 120 || st=$?
    if ((st == 0)) && grep -q '^px_server: connections=' "$w.server.log"; then
        px_pass "$mode server exit ($(grep '^px_server: connections=' "$w.server.log"))"
    else
        px_fail "$mode server exit (status $st)"
        px_show "$w.server.log"
    fi
}

for mode in "${modes[@]}"; do
    echo "== px_server $mode"
    run_mode "$mode"
done

if px_summary; then
    rm -rf "$work"
    exit 0
fi
echo "px_kernel_check: logs kept in $work"
exit 1
