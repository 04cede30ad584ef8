#!/usr/bin/env bash
# Install test: `cmake --install` into a temporary prefix gives headers,
# libdemi.so, libdemi.a, man pages and a demi.pc with which pkg-config builds
# a program (shared and static) that runs; libdemi.so exports only demi_*.
set -euo pipefail
build=${DEMI_BUILD:?DEMI_BUILD names the build directory}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
libdir=$(dirname "$(find "$tmp/prefix" -name demi.pc | head -1)")/..
libdir=$(cd "$libdir" && pwd)
for f in include/demi/libos.h include/demi/types.h include/demi/sga.h include/demi/wait.h share/man/man3/demi_push.3 share/man/man7/libdemi.7; do
  [[ -f $tmp/prefix/$f ]] || { echo "missing after install: $f"; exit 1; }
done
[[ -f $libdir/libdemi.so && -f $libdir/libdemi.a ]] || { echo "libraries missing in $libdir"; exit 1; }
export PKG_CONFIG_PATH=$libdir/pkgconfig
san=()
[[ ${DEMI_SANITIZED:-0} == 1 ]] && san=(-fsanitize=address,undefined) # the library is instrumented too
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
# shellcheck disable=SC2046
cc "${san[@]}" -std=c99 -D_POSIX_C_SOURCE=199309L -Wall -Wextra -Werror "$tmp/prog.c" -o "$tmp/prog" $(pkg-config --cflags --libs demi)
HUGEPAGES=off LD_LIBRARY_PATH=$libdir "$tmp/prog"
# shellcheck disable=SC2046
cc "${san[@]}" "$tmp/prog.c" -o "$tmp/prog_static" $(pkg-config --cflags demi) "$libdir/libdemi.a" $(pkg-config --libs --static demi | sed 's/-ldemi//')
HUGEPAGES=off "$tmp/prog_static"
bad=$(nm -D --defined-only "$libdir/libdemi.so" | awk '$2 ~ /[TDBR]/ {print $3}' | grep -v '^demi_' || true)
if [[ -n $bad ]]; then echo "libdemi.so exports non-API symbols: $bad"; exit 1; fi
echo "install: ok ($(nm -D --defined-only "$libdir/libdemi.so" | grep -c ' T demi_') demi_* functions exported)"
