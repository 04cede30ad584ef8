#!/usr/bin/env bash
# libdemi.a keeps its internals out of the application's namespace:
#  1. `nm -g --defined-only libdemi.a` lists demi_* and nothing else;
#  2. a program that defines its own log_init, heap_alloc, crc32c and
#     tcp_output (names libdemi uses inside) links against libdemi.a, runs,
#     reaches its own functions and still uses libdemi (a UDP queue on catnap).
# Exit 77 only when pkg-config (which gives the dependencies' flags) is missing.
set -euo pipefail
build=${DEMI_BUILD:?DEMI_BUILD names the build directory}
command -v pkg-config >/dev/null || { echo "SKIP: pkg-config is not installed"; exit 77; }
lib=$build/libdemi.a
[[ -f $lib ]] || { echo "not built: $lib"; exit 1; }

bad=$(nm -g --defined-only "$lib" | awk 'NF == 3 {print $3}' | grep -v '^demi_' || true)
if [[ -n $bad ]]; then
  echo "libdemi.a defines non-API global symbols ($(wc -l <<<"$bad")):"
  head -20 <<<"$bad"
  exit 1
fi
n=$(nm -g --defined-only "$lib" | awk 'NF == 3 && $3 ~ /^demi_/' | wc -l)
[[ $n -gt 0 ]] || { echo "libdemi.a defines no demi_* symbol"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
san=()
[[ ${DEMI_SANITIZED:-0} == 1 ]] && san=(-fsanitize=address,undefined) # the library is instrumented too
cat >"$tmp/prog.c" <<'C'
#include <demi/libos.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
/* The application's own functions, with libdemi's internal names. */
int log_init(void) { return 11; }
void *heap_alloc(size_t n) { return n == 7 ? (void *)&heap_alloc : NULL; }
uint32_t crc32c(uint32_t c, const void *p, size_t n) { (void)p; return c + (uint32_t)n; }
int tcp_output(int x) { return x * 2; }
int main(void)
{
    if (log_init() != 11 || heap_alloc(7) != (void *)&heap_alloc || crc32c(1, "", 2) != 3 || tcp_output(4) != 8) {
        puts("the program's own functions were not the ones called");
        return 1;
    }
    int qd;
    if (demi_init(NULL) != 0 || demi_socket(&qd, AF_INET, SOCK_DGRAM, 0) != 0 || demi_close(qd) != 0) {
        puts("libdemi did not work beside the program's functions");
        return 1;
    }
    puts("own names and libdemi side by side: ok");
    return 0;
}
C
# The dependencies as demi.pc lists them (Requires.private and Libs.private).
pc=$build/demi.pc
reqs=$(sed -n 's/^Requires.private: *//p' "$pc")
privs=$(sed -n 's/^Libs.private: *//p' "$pc")
# shellcheck disable=SC2046,SC2086
cc "${san[@]}" -Wall -Wextra -Werror -I"$(dirname "$0")/../../include" "$tmp/prog.c" -o "$tmp/prog" \
  "$lib" $(pkg-config --static --libs $reqs) $privs
HUGEPAGES=off "$tmp/prog"
echo "static names: ok (libdemi.a defines $n global symbols, all demi_*)"
