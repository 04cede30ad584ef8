#!/usr/bin/env bash
# Runs libdemi's test suite: every program listed in tests/suite.txt, each
# under `timeout`, each with its own log. Exit 0 pass, 77 skip, else fail.
# A line is "PROGRAM TIMEOUT [ARG | ENV=VALUE | normal-only ...]".
#   tests/run.sh BUILD_DIR [FILTER]
# DEMI_NO_SKIP=1 turns skips into failures (CI sets it: a skipped test
# proves nothing). DEMI_SANITIZED=1 triples the timeouts and leaves out the
# lines marked normal-only: a second way of running code that another line
# already runs under the sanitizers (suite.txt says which, line by line).
# They are listed at the end, not counted as skips: `make test` ran them in
# its normal pass.
set -uo pipefail

build=${1:-build}
filter=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
logs="$build/test-logs"
mkdir -p "$logs"
scale=1
[[ ${DEMI_SANITIZED:-0} == 1 ]] && scale=3
# One leak that is DPDK's, not ours, is suppressed for every process a test
# starts (tests/common/lsan-dpdk.supp says which and why): the pair tests'
# children do not all inherit the per-mode setting of scripts/bypass.sh.
if [[ ${DEMI_SANITIZED:-0} == 1 && -z ${LSAN_OPTIONS:-} ]]; then
  export LSAN_OPTIONS="suppressions=$here/common/lsan-dpdk.supp"
fi

pass=0 fail=0 skip=0
failed=() skipped=() normal_only=()
start_all=$(date +%s)

# Every built test program must be listed: nothing is silently left out.
listed=$(grep -v '^\s*#' "$here/suite.txt" | awk 'NF {print $1}' | sort -u)
for exe in $(cd "$build/tests" 2>/dev/null && find . -type f -name 'test_*' -perm -u+x | sed 's|^\./||' | sort); do
  if ! grep -qx "$exe" <<<"$listed"; then
    echo "FAIL  $exe  (built but not listed in tests/suite.txt)"
    fail=$((fail + 1)); failed+=("$exe")
  fi
done

while read -r name tmo rest; do
  [[ -z $name || $name == \#* ]] && continue
  # After the timeout: ENV=VALUE words set the environment, other words are
  # arguments; a test listed with several argument sets runs once for each.
  args=() envs=() normal=0
  for w in $rest; do
    if [[ $w == normal-only ]]; then normal=1
    elif [[ $w == *=* ]]; then envs+=("$w")
    else args+=("$w"); fi
  done
  label=$name${args[*]:+ ${args[*]}}
  [[ -n $filter && $label != *$filter* ]] && continue
  if [[ $normal == 1 && $scale == 3 ]]; then
    normal_only+=("$label"); continue
  fi
  # Programs are built into BUILD/tests; scripts (*.sh) run from the source tree.
  if [[ $name == *.sh ]]; then exe="$here/$name"; else exe="$build/tests/$name"; fi
  log="$logs/${label//[\/ ]/_}.log"
  if [[ ! -x $exe ]]; then
    echo "FAIL  $label  (not built: $exe)"
    fail=$((fail + 1)); failed+=("$label"); continue
  fi
  t0=$(date +%s%N)
  env DEMI_BUILD="$build" "${envs[@]}" timeout -k 5 $((tmo * scale)) "$exe" "${args[@]}" >"$log" 2>&1
  rc=$?
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  dt="$((ms / 1000)).$((ms % 1000 / 100))"
  case $rc in
    0) echo "PASS  $label  (${dt}s)"; pass=$((pass + 1)) ;;
    77)
      reason=$(grep -m1 -i 'skip' "$log" || true)
      if [[ ${DEMI_NO_SKIP:-0} == 1 ]]; then
        echo "FAIL  $label  (skipped, and DEMI_NO_SKIP=1: $reason)"
        fail=$((fail + 1)); failed+=("$label")
      else
        echo "SKIP  $label  ($reason)"; skip=$((skip + 1)); skipped+=("$label")
      fi ;;
    124|137) echo "FAIL  $label  (timed out after $((tmo * scale))s; log: $log)"; fail=$((fail + 1)); failed+=("$label") ;;
    *) echo "FAIL  $label  (exit $rc; log: $log)"; fail=$((fail + 1)); failed+=("$label") ;;
  esac
  if [[ $rc -ne 0 && $rc -ne 77 ]]; then
    tail -n 20 "$log" | sed 's/^/      | /'
  fi
done <"$here/suite.txt"

echo "----"
echo "tests: $pass passed, $fail failed, $skip skipped in $(( $(date +%s) - start_all ))s ($build)"
[[ $skip -gt 0 ]] && echo "skipped: ${skipped[*]}"
[[ ${#normal_only[@]} -gt 0 ]] &&
  echo "not run under the sanitizers (normal-only in tests/suite.txt; the normal pass runs them): ${normal_only[*]}"
[[ $fail -gt 0 ]] && { echo "failed: ${failed[*]}"; exit 1; }
exit 0
