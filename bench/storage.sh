#!/usr/bin/env bash
# Storage benchmark: cattree appends against write()+fdatasync() on the same
# file system, in the same run (BUILD/bench/storage_bench; see its source).
# Writes bench/results/storage.json. Reports figures, never judges them: it
# fails only when the benchmark itself fails.
#
#   bench/storage.sh [BUILD]       (bench/run.sh calls it; `make bench`)
#
# Environment:
#   BENCH_STORAGE_DIR=${TMPDIR:-/tmp}   file system to measure (a real one:
#                                       tmpfs measures memory, not a device)
#   BENCH_STORAGE_ITERS=2000            appends per latency figure
#   BENCH_STORAGE_SECONDS=3             seconds per throughput figure
#   BENCH_CPU=0                         CPU to run on (taskset -c)
#   BENCH_RESULTS=<repo>/bench/results
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
bench_name=bench
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
bench_build "${1:-build}"
bin=$build/bench/storage_bench
[[ -x $bin ]] || die "$bin not built (run 'make build')"

dir=${BENCH_STORAGE_DIR:-${TMPDIR:-/tmp}}
iters=${BENCH_STORAGE_ITERS:-2000}
secs=${BENCH_STORAGE_SECONDS:-3}
cpu=${BENCH_CPU:-0}
results=${BENCH_RESULTS:-$repo/bench/results}
bench_positive iters secs
work=$(mktemp -d "$dir/demi-storage-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "bench: storage on $(df -T "$dir" | awk 'NR==2 {print $2 " (" $1 ")"}'), cpu $cpu" >&2
out=$work/out.json
timeout -k 5 900 taskset -c "$cpu" "$bin" --dir "$work" --iters "$iters" --seconds "$secs" >"$out" 2>"$work/err" || {
    show_log "$work/err"
    die "storage_bench failed"
}
mkdir -p "$results"
fstype=$(df -T "$dir" | awk 'NR==2 {print $2}')
python3 - "$out" "$results/storage.json" "$fstype" <<'PY'
import datetime, json, platform, sys
src, dst, fstype = sys.argv[1:4]
with open(src) as f:
    r = json.load(f)
r["fs"] = fstype
r["date_utc"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
try:
    with open("/proc/cpuinfo") as f:
        r["cpu"] = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
except (OSError, StopIteration):
    r["cpu"] = platform.processor()
r["notes"] = ("latency: one append at a time, until durable; cattree = demi_push+demi_wait on a log "
              "(O_DIRECT, fdatasync through io_uring), linux = write()+fdatasync() to an O_APPEND file "
              "on the same file system, alternating in blocks of 100. ratios = cattree / linux "
              "(below 1: cattree faster). throughput: 4 KiB records per second with N pushes in flight "
              "(group commit), against write()+fdatasync() one at a time.")
with open(dst + ".tmp", "w") as f:
    json.dump(r, f, indent=1)
    f.write("\n")
lat = r["latency"]
print("storage append latency (us)      p50       p99     p99.9")
for size in ("64", "4096"):
    for name in ("cattree", "linux_write_fdatasync"):
        h = lat[size][name]
        print(f"  {size:>4} B {name:<22} {h['p50_us']:8.1f}  {h['p99_us']:8.1f}  {h['p999_us']:8.1f}")
t = r["throughput_4096"]
print("storage 4 KiB appends per second: linux write+fdatasync %.0f" % t["linux_write_fdatasync_rps"])
for d in (1, 16, 256):
    print("  cattree, %3d in flight: %8.0f  (%.2fx)" % (d, t[f"cattree_inflight_{d}_rps"], t[f"cattree_inflight_{d}_vs_linux"]))
PY
mv -f "$results/storage.json.tmp" "$results/storage.json"
echo "bench: wrote $results/storage.json" >&2
