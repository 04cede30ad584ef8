#!/usr/bin/env bash
# demi-kv --aof: a rewrite that runs out of space (a 48 MiB ext4 image,
# loop-mounted, holding an 18 MB log of 300 distinct 60 KB values, which the
# rewrite must copy whole) is abandoned: INFO says aof_last_bgrewrite_status
# err, the temporary file is gone, writes are still accepted and logged, and
# a restart on the old log gives every key. Needs root (mount); unmounted and
# removed afterwards whatever happens; demi-kv is stopped by its PID only.
set -uo pipefail
build=${DEMI_BUILD:-build}
kv=$build/demi-kv
command -v redis-cli >/dev/null || { echo "SKIP: redis-cli not found"; exit 77; }
command -v mkfs.ext4 >/dev/null || { echo "SKIP: mkfs.ext4 not found (e2fsprogs)"; exit 77; }
((EUID == 0)) || { echo "SKIP: needs root to mount a loop device"; exit 77; }
[[ -x $kv ]] || { echo "FAIL: $kv not built"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/demi-kv-aof-rw-enospc.XXXXXX")
mnt=$tmp/mnt
pid=
cleanup() {
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    mountpoint -q "$mnt" && { umount "$mnt" 2>/dev/null || umount -l "$mnt"; }
    rm -rf "$tmp"
}
trap cleanup EXIT
. "$(dirname "$0")/../lib.sh" # kv_start, kv_stop, cli, bad
CLI_TIMEOUT=30

truncate -s 48M "$tmp/img" && mkfs.ext4 -q -F "$tmp/img" && mkdir "$mnt" || { echo "FAIL: mkfs"; exit 1; }
mount -o loop "$tmp/img" "$mnt" || { echo "SKIP: cannot loop-mount (no loop devices?)"; exit 77; }
aof=$mnt/kv.aof

# start, stop: demi-kv on the log $aof.
start() { kv_start --aof "$aof"; }
stop() { kv_stop; }
field() { cli INFO persistence | tr -d '\r' | sed -n "s/^$1://p"; }

start
# 300 distinct 60 KB values: about 18 MB of log, which a rewrite cannot
# shrink; with the log's preallocation the image has no room for a copy.
# Written to a file first: the time to make them (600 processes, slow on a
# loaded machine) must not count against --pipe's hang guard.
for i in $(seq 0 299); do
    printf 'SET k%d %s\r\n' "$i" "$(head -c 30000 /dev/zero | tr '\0' 'v')$i$(head -c 30000 /dev/zero | tr '\0' 'w')"
done >"$tmp/values"
timeout 150 redis-cli -h 127.0.0.1 -p "$port" --pipe <"$tmp/values" >"$tmp/pipe" 2>&1 || bad "--pipe: $(cat "$tmp/pipe")"
rm -f "$tmp/values"
[[ $(cli DBSIZE) == 300 ]] || bad "DBSIZE before the rewrite: $(cli DBSIZE)"
r=$(cli BGREWRITEAOF)
[[ $r == "Background append only file rewriting started" ]] || bad "BGREWRITEAOF: $r"
for _ in $(seq 2400); do
    [[ $(field aof_rewrite_in_progress) == 0 ]] && break
    sleep 0.05
done
[[ $(field aof_rewrite_in_progress) == 0 ]] || bad "the rewrite did not end within 120 s"
[[ $(field aof_last_bgrewrite_status) == err ]] || bad "aof_last_bgrewrite_status: $(field aof_last_bgrewrite_status)"
[[ $(field aof_rewrites_consecutive_failures) == 1 ]] || bad "consecutive failures: $(field aof_rewrites_consecutive_failures)"
grep -q "aof rewrite abandoned: .*No space left on device" "$tmp/err" || bad "no 'rewrite abandoned' line: $(cat "$tmp/err")"
[[ ! -e $aof.rewrite ]] || bad "$aof.rewrite is left behind"
[[ $(cli SET after ok) == OK ]] || bad "SET after the failed rewrite: $(cli SET after ok)"
stop
start
[[ $(cli DBSIZE) == 301 ]] || bad "DBSIZE after a restart: $(cli DBSIZE)"
[[ $(cli GET after) == ok ]] || bad "GET after: $(cli GET after)"
[[ $(cli STRLEN k299) == 60003 ]] || bad "STRLEN k299: $(cli STRLEN k299)"
stop

((fails == 0)) || exit 1
echo ok
