#!/usr/bin/env bash
# The apps' doorstep: every app answers --help (usage on stdout, exit 0) and
# --version ("NAME (libdemi) X.Y.Z", the version CMake configured, exit 0);
# an unknown option exits 2 with the usage on stderr. Every long option of
# the app's getopt table (read from its source) is in its --help and in its
# man1 page, and every option the man page describes is in the table, so the
# docs cannot drift from the code. `cmake --install` installs the man1 pages
# and <demi/version.h>.
set -euo pipefail
build=${DEMI_BUILD:?DEMI_BUILD names the build directory}
src=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

hdr=$build/include/demi/version.h
[[ -f $hdr ]] || fail "$hdr missing"
ver=$(awk '/#define DEMI_VERSION_(MAJOR|MINOR|PATCH) / {v = v (v == "" ? "" : ".") $3} END {print v}' "$hdr")
[[ $ver =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "cannot read the version from $hdr (got '$ver')"

# The long options of the `struct option lo[]` table in a C file.
table_opts() {
  awk '/static const struct option lo\[\] = \{/ {on = 1} on {print} on && /\{0, 0, 0, 0\}\}/ {exit}' "$1" |
    grep -o '{"[a-z0-9-]*"' | tr -d '{"' | sort -u
}
# The text of a man page with roff's escapes for - and fonts removed.
man_text() { sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' "$1"; }

declare -A source=([demi-echo]=apps/echo/echo.c [demi-kv]=apps/kv/kv.c [demi-relay]=apps/relay/relay.c
  [demi-logecho]=apps/logecho/logecho.c [demi-txnd]=apps/txn/txnd.c [demi-txn-bench]=apps/txn/bench.c)
for app in demi-echo demi-kv demi-relay demi-logecho demi-txnd demi-txn-bench; do
  exe=$build/$app page=$src/man/man1/$app.1
  [[ -x $exe ]] || fail "$exe not built"
  [[ -f $page ]] || fail "$page missing"
  opts=$(table_opts "$src/${source[$app]}")
  n=$(wc -w <<<"$opts")
  ((n >= 3)) || fail "$app: only $n long options read from ${source[$app]}'s getopt table"
  for o in help version; do grep -qx "$o" <<<"$opts" || fail "$app: no --$o in the getopt table"; done

  "$exe" --help >"$tmp/help" 2>"$tmp/help.err" || fail "$app --help exited $?"
  [[ -s $tmp/help && ! -s $tmp/help.err ]] || fail "$app --help: the usage belongs on stdout alone"
  grep -q "^usage: $app " "$tmp/help" || fail "$app --help does not start with 'usage: $app'"

  "$exe" --version >"$tmp/version" || fail "$app --version exited $?"
  [[ $(cat "$tmp/version") == "$app (libdemi) $ver" ]] ||
    fail "$app --version printed '$(cat "$tmp/version")', not '$app (libdemi) $ver'"

  rc=0
  "$exe" --no-such-option >"$tmp/bad" 2>"$tmp/bad.err" || rc=$?
  [[ $rc == 2 ]] || fail "$app --no-such-option exited $rc, not 2"
  [[ ! -s $tmp/bad ]] && grep -q "^usage: $app " "$tmp/bad.err" || fail "$app --no-such-option: no usage on stderr"

  man_text "$page" >"$tmp/page"
  for o in $opts; do
    grep -qE -- "--$o([^a-z0-9-]|$)" "$tmp/help" || fail "$app: --$o is parsed but not in --help"
    grep -qE -- "--$o([^a-z0-9-]|$)" "$tmp/page" || fail "$app: --$o is parsed but not in man1/$app.1"
  done
  # Each option the page describes (a .TP item) is one the program parses.
  for o in $(awk 'prev == ".TP" && /^\.BI? --/ {print $2} {prev = $0}' "$tmp/page"); do
    grep -qx -- "${o#--}" <<<"$opts" || fail "$app: man1/$app.1 describes $o, which the program does not parse"
  done
  grep -q 'libdemi (7)' "$tmp/page" || fail "man1/$app.1 has no SEE ALSO libdemi(7)"
  for s in OPTIONS "EXIT STATUS" EXAMPLES "SEE ALSO"; do
    grep -q "^\.SH $s" "$tmp/page" || fail "man1/$app.1 has no $s section"
  done
  echo "$app: --help, --version, usage error and $n options in --help and man1: ok"
done

cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
for f in share/man/man1/demi-echo.1 share/man/man1/demi-kv.1 share/man/man1/demi-relay.1 share/man/man1/demi-logecho.1 share/man/man1/demi-txnd.1 share/man/man1/demi-txn-bench.1 \
  share/man/man3/demi_version.3 include/demi/version.h bin/demi-txnd bin/demi-txn-bench; do
  [[ -f $tmp/prefix/$f ]] || fail "missing after install: $f"
done
echo "app cli: ok (libdemi $ver)"
