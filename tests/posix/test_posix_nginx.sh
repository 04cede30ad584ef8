#!/usr/bin/env bash
# Debian's nginx, unmodified, under LD_PRELOAD=libdemi-posix.so (issue 13):
# the well-known server besides redis-server. nginx runs in one process
# (master_process off: a forked worker would find its inherited listening
# socket refused, libdemi-posix(7)) in the bypass namespace of a
# scripts/netns.sh topology, on our stack; curl in the Linux namespace
# fetches files over it and every body is compared with the file:
#   1. a small page, a 404, HEAD, and a 3 MB POST to a static file (nginx
#      reads the whole body, answers 405);
#   2. a 3 MB file;
#   3. 200 requests over 8 parallel keep-alive connections (curl --parallel);
# all twice: with sendfile off (nginx reads the file and writes the socket)
# and on (nginx calls sendfile, which the preload serves as read + write).
#   tests/posix/test_posix_nginx.sh catpowder-xdp|catpowder-packet|catnip-afxdp
# Exit 0 pass, 1 fail, 77 skip (not root, no such socket family, or nginx
# not installed: scripts/deps.sh installs nginx-light). Stops only what it
# started, by PID; removes its namespaces.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${DEMI_BUILD:-$src/build}
[[ $build == /* ]] || build=$src/$build
# shellcheck source=../../scripts/bypass.sh
. "$src/scripts/bypass.sh"

mode=${1:-}
case $mode in
catpowder-xdp) id=86 ;;
catpowder-packet) id=87 ;;
catnip-afxdp) id=88 ;;
*)
  echo "usage: $0 catpowder-xdp|catpowder-packet|catnip-afxdp" >&2
  exit 2
  ;;
esac
fail() {
  echo "FAIL: $*"
  exit 1
}
[[ $(id -u) -eq 0 ]] || { echo "skip: needs root (network namespaces, veth, raw sockets)"; exit 77; }
for t in nginx curl sha256sum; do
  command -v $t >/dev/null || fail "'$t' not found (scripts/deps.sh installs it)"
done
[[ -f $build/libdemi-posix.so ]] || fail "$build/libdemi-posix.so is not built"
bypass_require "$mode"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/demi-posix-nginx.XXXXXX")
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do stop_pid "$p"; done
  "$src/scripts/netns.sh" down "$id" >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
show() { tail -n 20 "$1" 2>/dev/null | sed 's/^/    | /'; }

bypass_topology up "$id" || fail "scripts/netns.sh up $id printed no topology"
read -r -a env_a <<<"$(bypass_env "$mode" "$if_a" "$ip_a" "$tmp")"
read -r -a preload <<<"$(preload_env "$build")"
mkdir -p "$tmp/www" "$tmp/body"
echo "hello from nginx on libdemi" >"$tmp/www/index.html"
head -c 3000000 /dev/urandom >"$tmp/www/big.bin"
for i in $(seq 0 19); do head -c $((i * 997 + 1)) /dev/urandom >"$tmp/www/f$i.bin"; done
port=8080

# start SENDFILE: nginx in the bypass namespace under the preload.
start() {
  cat >"$tmp/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
error_log $tmp/error.log notice;
pid $tmp/nginx.pid;
events { worker_connections 512; }
http {
  access_log off;
  sendfile $1;
  keepalive_requests 1000;
  client_max_body_size 8m;
  client_body_temp_path $tmp/body;
  proxy_temp_path $tmp/body;
  fastcgi_temp_path $tmp/body;
  uwsgi_temp_path $tmp/body;
  scgi_temp_path $tmp/body;
  server { listen $ip_a:$port; root $tmp/www; }
}
EOF
  : >"$tmp/error.log"
  ip netns exec "$ns_a" env "${env_a[@]}" "${preload[@]}" HUGEPAGES=off DEMI_LOG=info \
    nginx -c "$tmp/nginx.conf" -p "$tmp" -e "$tmp/error.log" >"$tmp/nginx.out" 2>&1 &
  ng=$!
  pids=("$ng")
  for _ in $(seq 100); do
    linux curl -s -o /dev/null --max-time 2 "http://$ip_a:$port/" && return 0
    kill -0 "$ng" 2>/dev/null || break
    sleep 0.2
  done
  show "$tmp/nginx.out"
  show "$tmp/error.log"
  fail "nginx (sendfile $1) did not answer from $ns_b"
}
stop() {
  kill -QUIT "$ng" 2>/dev/null # graceful shutdown
  local i
  for i in $(seq 100); do
    kill -0 "$ng" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$ng" 2>/dev/null && fail "nginx did not exit within 10 s of SIGQUIT"
  wait "$ng" 2>/dev/null
  pids=()
}
linux() { ip netns exec "$ns_b" "$@"; }
fetch_ok() { # PATH: the body must equal $tmp/www/PATH
  local got want
  got=$(linux curl -s --max-time 60 "http://$ip_a:$port/$1" | sha256sum | cut -d' ' -f1)
  want=$(sha256sum <"$tmp/www/$1" | cut -d' ' -f1)
  [[ $got == "$want" ]] || fail "GET /$1: body differs from the file (sha256 $got, want $want)"
}
code() { linux curl -s -o /dev/null -w '%{http_code}' --max-time 30 "$@"; }

for sf in off on; do
  start "$sf"
  fetch_ok index.html
  [[ $(code "http://$ip_a:$port/missing") == 404 ]] || fail "GET /missing: not 404"
  [[ $(code -I "http://$ip_a:$port/index.html") == 200 ]] || fail "HEAD /index.html: not 200"
  [[ $(code -X POST --data-binary @"$tmp/www/big.bin" "http://$ip_a:$port/index.html") == 405 ]] ||
    fail "POST of 3 MB to a static file: got $(code -X POST --data-binary @"$tmp/www/big.bin" "http://$ip_a:$port/index.html"), not 405"
  t0=$(date +%s%N)
  fetch_ok big.bin
  ms=$((($(date +%s%N) - t0) / 1000000))
  # 200 requests on 8 keep-alive connections at once, every body checked.
  args=()
  for r in $(seq 0 199); do args+=(-o "$tmp/got.$r" "http://$ip_a:$port/f$((r % 20)).bin"); done
  linux curl -s --no-progress-meter --parallel --parallel-max 8 --max-time 120 "${args[@]}" || fail "curl --parallel failed (sendfile $sf)"
  for r in $(seq 0 199); do
    cmp -s "$tmp/got.$r" "$tmp/www/f$((r % 20)).bin" || fail "request $r of 200 (sendfile $sf): body differs"
  done
  rm -f "$tmp"/got.*
  stop
  grep -q 'initialised ' "$tmp/nginx.out" || {
    show "$tmp/nginx.out"
    fail "libdemi did not log its start: did nginx run under the preload?"
  }
  grep -E '\[(alert|emerg|crit)\]' "$tmp/error.log" && fail "nginx logged alerts (sendfile $sf)"
  echo "sendfile $sf: index, 404, HEAD, 405 for a 3 MB POST, 3 MB file in $ms ms, 200 requests on 8 connections: all bodies equal"
done
# nginx puts its error log on descriptor 2: libdemi's last lines are there.
grep -hE 'inet [0-9.]+: counters:' "$tmp/nginx.out" "$tmp/error.log" | tail -1 | sed 's/^/stack: /'
echo PASS
