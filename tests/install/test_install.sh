#!/usr/bin/env bash
# What a new user gets from `cmake --install` into a prefix of their own,
# with that prefix's lib directory NOT in LD_LIBRARY_PATH:
#  1. headers, libdemi.so, libdemi.a, man pages, demi.pc, demi-hugepages;
#  2. a program built with `pkg-config --cflags --libs demi` (and the
#     -Wl,-rpath libdemi(7) asks for under a custom prefix) runs;
#  3. the same program linked statically (`pkg-config --static`) runs;
#  4. the installed demi-echo finds libdemi.so through its RPATH: an echo
#     server and client talk over 127.0.0.1 on catnap;
#  5. libdemi.so exports only demi_*.
# Exit 77 only when pkg-config is missing.
set -euo pipefail
build=${DEMI_BUILD:?DEMI_BUILD names the build directory}
command -v pkg-config >/dev/null || { echo "SKIP: pkg-config is not installed"; exit 77; }
unset LD_LIBRARY_PATH
export HUGEPAGES=off LIBOS=catnap
tmp=$(mktemp -d)
srv=
cleanup() {
  [[ -n $srv ]] && kill "$srv" 2>/dev/null && wait "$srv" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null
pc=$(find "$prefix" -name demi.pc | head -1)
[[ -n $pc ]] || { echo "demi.pc not installed"; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc")
libdir=$(pkg-config --variable=libdir demi)
libdir=$(cd "$libdir" && pwd)
[[ $libdir == "$prefix"/* ]] || { echo "demi.pc's libdir $libdir is not under $prefix"; exit 1; }

# 1. The files.
for f in include/demi/libos.h include/demi/types.h include/demi/sga.h include/demi/wait.h \
  share/man/man3/demi_push.3 share/man/man7/libdemi.7 share/man/man7/libdemi-posix.7 bin/demi-echo \
  bin/demi-hugepages; do
  [[ -e $prefix/$f ]] || { echo "missing after install: $f"; exit 1; }
done
[[ -f $libdir/libdemi.so && -f $libdir/libdemi.a && -f $libdir/libdemi-posix.so ]] ||
  { echo "libraries missing in $libdir"; exit 1; }
# The preload library finds the libdemi.so installed beside it, not the
# build tree's.
[[ $(ldd "$libdir/libdemi-posix.so" | awk '$1 == "libdemi.so.0" {print $3}' | xargs -r realpath) == \
  "$(realpath "$libdir/libdemi.so.0")" ]] || { echo "installed libdemi-posix.so does not load $libdir/libdemi.so.0"; exit 1; }
"$prefix/bin/demi-hugepages" --status >/dev/null || { echo "demi-hugepages --status failed"; exit 1; }

san=()
[[ ${DEMI_SANITIZED:-0} == 1 ]] && san=(-fsanitize=address,undefined) # the library is instrumented too
# The directory from which PROGRAM loads libdemi.so.0 (empty if none).
demi_dir() { ldd "$1" | awk '$1 == "libdemi.so.0" && $3 ~ /^\// {print $3}' | xargs -r dirname | xargs -r realpath; }
cat >"$tmp/prog.c" <<'C'
#include <demi/libos.h>
#include <demi/sga.h>
#include <demi/wait.h>
#include <stdio.h>
int main(void)
{
    if (demi_init(NULL) != 0)
        return 1;
    demi_sgarray_t s = demi_sgaalloc(100);
    int qd;
    if (s.sga_numsegs != 1 || demi_sgafree(&s) != 0 || demi_socket(&qd, AF_INET, SOCK_DGRAM, 0) != 0)
        return 1;
    puts("installed libdemi works");
    return demi_close(qd);
}
C
# 2. Shared, as libdemi(7) says for a custom prefix.
# shellcheck disable=SC2046
cc "${san[@]}" -std=c99 -D_POSIX_C_SOURCE=199309L -Wall -Wextra -Werror "$tmp/prog.c" -o "$tmp/prog" \
  $(pkg-config --cflags --libs demi) -Wl,-rpath,"$libdir"
"$tmp/prog"
[[ $(demi_dir "$tmp/prog") == "$libdir" ]] || { echo "prog does not load $libdir/libdemi.so.0"; ldd "$tmp/prog"; exit 1; }
# 3. Static: libdemi.a and what pkg-config --static adds.
# shellcheck disable=SC2046
cc "${san[@]}" "$tmp/prog.c" -o "$tmp/prog_static" $(pkg-config --cflags demi) "$libdir/libdemi.a" \
  $(pkg-config --libs --static demi | sed 's/-ldemi//')
"$tmp/prog_static"
if ldd "$tmp/prog_static" | grep -q libdemi; then echo "prog_static loads libdemi.so"; exit 1; fi

# 4. The installed demi-echo, by its RPATH alone.
[[ $(demi_dir "$prefix/bin/demi-echo") == "$libdir" ]] ||
  { echo "demi-echo does not find $libdir/libdemi.so.0"; ldd "$prefix/bin/demi-echo"; exit 1; }
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$prefix/bin/demi-echo" server --addr "127.0.0.1:$port" >"$tmp/server.log" 2>&1 &
srv=$!
# Ready when the port is listening (the loop bound is only a hang guard).
for ((i = 0; i < 600; i++)); do
  ss -Hltn "sport = :$port" | grep -q . && break
  kill -0 "$srv" 2>/dev/null || { echo "demi-echo server exited:"; cat "$tmp/server.log"; exit 1; }
  sleep 0.1
done
ss -Hltn "sport = :$port" | grep -q . || { echo "demi-echo server never listened on $port"; exit 1; }
"$prefix/bin/demi-echo" client --addr "127.0.0.1:$port" --iters 100 >"$tmp/client.log" 2>&1 ||
  { echo "demi-echo client failed:"; cat "$tmp/client.log" "$tmp/server.log"; exit 1; }

# 5. The shared library's exports.
bad=$(nm -D --defined-only "$libdir/libdemi.so" | awk '$2 ~ /[TDBR]/ {print $3}' | grep -v '^demi_' || true)
if [[ -n $bad ]]; then echo "libdemi.so exports non-API symbols: $bad"; exit 1; fi
echo "install: ok ($(nm -D --defined-only "$libdir/libdemi.so" | grep -c ' T demi_') demi_* functions exported)"
