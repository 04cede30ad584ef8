#!/usr/bin/env bash
# Installs every Debian package that libdemi's build, tests, demo and benches
# need. Idempotent: does nothing when all are present.
#   scripts/deps.sh           install what is missing
#   scripts/deps.sh --check   exit 0 if nothing is missing, 1 otherwise
set -euo pipefail

PKGS=(
  build-essential g++ make cmake pkg-config   # toolchain
  libyaml-dev                                 # configuration parser
  python3                                     # test and bench helpers
  gnuplot-nox                                 # bench plots
  linux-perf                                  # bench/catnip_profile.sh: perf record
  util-linux procps                           # taskset, timeout, pgrep
  liburing-dev                                # cattree: io_uring storage backend
  e2fsprogs mount                             # cattree tests: loop-mounted ext4 images (mkfs.ext4, mount, losetup)
  iproute2 ethtool nftables iputils-ping      # catpowder/catnip tests: netns, veth, offloads, loss, ping
  libxdp-dev libbpf-dev                       # catpowder: AF_XDP
  dpdk-dev libdpdk-dev                        # catnip: DPDK 22.11
  libsystemd-dev                              # pkg-config --static --libs demi: static DPDK links libsystemd
  clang libclang-rt-14-dev                    # libFuzzer target of demi-kv's RESP parser
  redis-tools redis-server                    # demi-kv tests (redis-cli, redis-benchmark, redis-server)
  nginx-light curl                            # libdemi-posix tests: an unmodified nginx, fetched by curl
  python3-redis                               # demi-kv tests: redis-py as a client library
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [[ ${1:-} == --check ]]; then
  [[ ${#missing[@]} -eq 0 ]]
  exit
fi
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

echo "deps: installing ${missing[*]}"
SUDO=
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then SUDO=sudo; else
    echo "deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
