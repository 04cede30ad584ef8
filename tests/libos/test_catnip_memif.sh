#!/usr/bin/env bash
# The libOS suite on catnip, over DPDK's net_memif between two processes:
# the pair harness's server role is the memif server, its client role the
# memif client, each with its own EAL (no hugepages needed: --no-huge), and
# no kernel anywhere on the packet path. Each run gets its own socket file
# in a private directory, so concurrent runs cannot meet.
set -euo pipefail
build=${DEMI_BUILD:?DEMI_BUILD names the build directory}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

role_config() { # ROLE IP MAC SOCKET
  "$(dirname "$0")/../../scripts/memif-config.sh" "$@"
}
export SERVER_CONFIG_PATH=$tmp/server.yaml CLIENT_CONFIG_PATH=$tmp/client.yaml
export DEMI_TEST_SERVER_IP=10.77.0.1 DEMI_TEST_ZERO_COPY=1
scale=1
[[ ${DEMI_SANITIZED:-0} == 1 ]] && scale=3
fail=0
for t in test_tcp_pingpong test_udp_pingpong test_many_conns test_wait_any test_timeouts test_close_reset \
  test_free_after_push; do
  # A socket per program: a server that ends in _exit leaves its file.
  role_config server 10.77.0.1 02:00:00:00:77:01 "$tmp/$t.sock" >"$tmp/server.yaml"
  role_config client 10.77.0.2 02:00:00:00:77:02 "$tmp/$t.sock" >"$tmp/client.yaml"
  t0=$(date +%s%N)
  if timeout -k 5 $((120 * scale)) "$build/tests/libos/$t" >"$tmp/$t.log" 2>&1; then
    echo "catnip/memif $t: ok ($(( ($(date +%s%N) - t0) / 1000000 )) ms): $(grep -v '^libdemi: ' "$tmp/$t.log" | tail -1)"
  else
    rc=$?
    echo "catnip/memif $t: FAILED (exit $rc)"
    sed 's/^/    | /' "$tmp/$t.log" | tail -30
    fail=1
  fi
done
# Jumbo frames (inetstack_config.mtu 9000, memif buffers that hold them):
# the same ping-pongs, zero copy still checked, and the counters must show
# the segments were jumbo (a 1460-byte MSS sends at least twice as many
# frames for the same messages).
frames_out() { # LOG: the client's frames sent, from its last line
  grep -v '^libdemi: ' "$1" | tail -1 | sed -n 's/.* frames in, \([0-9]*\) out.*/\1/p'
}
for t in test_tcp_pingpong test_udp_pingpong; do
  MTU=9000 role_config server 10.77.0.1 02:00:00:00:77:01 "$tmp/jumbo-$t.sock" >"$tmp/server.yaml"
  MTU=9000 role_config client 10.77.0.2 02:00:00:00:77:02 "$tmp/jumbo-$t.sock" >"$tmp/client.yaml"
  if DEMI_LOG=info timeout -k 5 $((120 * scale)) "$build/tests/libos/$t" >"$tmp/jumbo-$t.log" 2>&1 &&
    grep -q 'MTU 9000 in 9216-byte memif buffers' "$tmp/jumbo-$t.log"; then
    echo "catnip/memif MTU 9000 $t: ok: $(grep -v '^libdemi: ' "$tmp/jumbo-$t.log" | tail -1)"
    # The same messages as the run at MTU 1500 above (a fixed seed).
    small=$(frames_out "$tmp/$t.log") big=$(frames_out "$tmp/jumbo-$t.log")
    if [[ -z $small || -z $big ]] || ((big * 2 > small)); then
      echo "catnip/memif MTU 9000 $t: FAILED: sent ${big:-?} frames against ${small:-?} at MTU 1500 (want under half)"
      fail=1
    fi
  else
    echo "catnip/memif MTU 9000 $t: FAILED"
    sed 's/^/    | /' "$tmp/jumbo-$t.log" | tail -30
    fail=1
  fi
done
# Once more with hugepages (the EAL's default memory, --in-memory): as root,
# reserve 2 MiB pages for the run if too few are free, and give back exactly
# what was added.
nr=/proc/sys/vm/nr_hugepages
free_pages() { awk '/HugePages_Free/ {print $2}' /proc/meminfo; }
if [[ -w $nr ]]; then
  before=$(cat "$nr") added=0
  if (($(free_pages) < 256)); then
    echo $((before + 256)) >"$nr" || true
    added=$(($(cat "$nr") - before))
  fi
  if (($(free_pages) >= 256)); then
    HUGE=1 role_config server 10.77.0.1 02:00:00:00:77:01 "$tmp/huge.sock" >"$tmp/server.yaml"
    HUGE=1 role_config client 10.77.0.2 02:00:00:00:77:02 "$tmp/huge.sock" >"$tmp/client.yaml"
    if DEMI_LOG=info HEAP_SIZE=512M timeout -k 5 $((120 * scale)) "$build/tests/libos/test_tcp_pingpong" \
      >"$tmp/huge.log" 2>&1 && grep -q "DPDK memory: hugepages" "$tmp/huge.log"; then
      echo "catnip/memif with hugepages test_tcp_pingpong: ok: $(grep -v '^libdemi: ' "$tmp/huge.log" | tail -1)"
    else
      echo "catnip/memif with hugepages test_tcp_pingpong: FAILED (or did not run on hugepages)"
      sed 's/^/    | /' "$tmp/huge.log" | tail -30
      fail=1
    fi
  else
    echo "catnip/memif with hugepages: not run (the kernel could not reserve 256 free 2 MiB pages)"
  fi
  ((added > 0)) && echo $(($(cat "$nr") - added)) >"$nr"
else
  echo "catnip/memif with hugepages: not run (not root: cannot reserve hugepages)"
fi
exit $fail
