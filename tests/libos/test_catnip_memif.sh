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
  cat <<EOF
demikernel:
  local_ipv4_addr: $2
dpdk:
  eal_init: ["--no-pci", "--no-huge", "-m", "256",
             "--vdev=net_memif0,role=$1,socket=$4,socket-abstract=no,mac=$3"]
libdemi:
  libos: catnip
EOF
}
export SERVER_CONFIG_PATH=$tmp/server.yaml CLIENT_CONFIG_PATH=$tmp/client.yaml
export DEMI_TEST_SERVER_IP=10.77.0.1 DEMI_TEST_POLLING=1 DEMI_TEST_ZERO_COPY=1
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
exit $fail
