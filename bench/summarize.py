#!/usr/bin/env python3
"""Helpers for bench/run.sh: check each echo client's JSON line, merge a
protocol's runs into one results file with ratios, label plot curves and
print the closing table. Python 3 standard library only.

It never invents a figure: every number it writes comes from a client's
output, and anything missing or malformed is an error (exit 1), not a gap.

  summarize.py check CLIENT_STDOUT OUT_JSON --proto P --size S --iters N
                     --clients C --libos NAME|any
  summarize.py cdf CDF_FILE
  summarize.py label RUN_JSON NAME
  summarize.py merge OUT_JSON --proto P --size S --iters N --warmup W
                     --clients C --server-cpu A --client-cpu B
                     NAME=RUN_JSON[=BINARY] ...
  summarize.py table RESULTS_JSON ...
  summarize.py json FILE          (one JSON object on stdout of a bench)
  summarize.py median PREFIX ROUNDS   copy the round with the median p50,
                     PREFIX.K.json/.cdf for K in 1..ROUNDS, to PREFIX.json/.cdf
  summarize.py rounds RESULTS_JSON TMPDIR PROTO ROUNDS NAME...
                     record every round's p50/p99 per run in RESULTS_JSON
  summarize.py catpowder OUT_JSON --echo PROTO=MERGED_JSON ... --tmp DIR --rounds N
                     [--bulk-names "NAME ..." --bulk-size B] [--cost-backends "xdp packet"]
                     bench/catpowder.sh's results: echo, bulk, cost, the targets
"""

import argparse
import json
import math
import os
import platform
import sys

sys.dont_write_bytecode = True  # no bench/__pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# errors, JSON in and out, the date and machine, the median round
from benchlib import cpu_model, fail, load_json, median_by, repo_path, utc_now, write_json  # noqa: E402

KEYS = ("libos", "proto", "size", "clients", "n", "p50_us", "p99_us",
        "p999_us", "mean_us", "min_us", "max_us", "rps")
LATENCY = ("p50", "p99", "p999", "mean")
BASELINES = ("linux-blocking", "linux-busypoll")


def last_json_line(path):
    try:
        with open(path) as f:
            lines = [ln.strip() for ln in f if ln.strip()]
    except OSError as e:
        fail(f"{path}: {e}")
    if not lines:
        fail(f"{path}: the client printed nothing on stdout")
    try:
        obj = json.loads(lines[-1])
    except ValueError as e:
        fail(f"{path}: the client's last line is not JSON ({e}): {lines[-1][:200]!r}")
    if not isinstance(obj, dict):
        fail(f"{path}: the client's last line is not a JSON object")
    return obj


def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def cmd_check(a):
    r = last_json_line(a.stdout)
    where = f"{a.stdout}"
    missing = [k for k in KEYS if k not in r]
    if missing:
        fail(f"{where}: missing key(s) {', '.join(missing)} in {json.dumps(r)}")
    for k in KEYS[4:]:
        if not is_num(r[k]) or r[k] < 0:
            fail(f"{where}: {k} is not a non-negative number: {r[k]!r}")
    if r["proto"] != a.proto:
        fail(f"{where}: proto is {r['proto']!r}, expected {a.proto!r}")
    if r["size"] != a.size:
        fail(f"{where}: size is {r['size']!r}, expected {a.size}")
    if r["clients"] != a.clients:
        fail(f"{where}: clients is {r['clients']!r}, expected {a.clients}")
    if r["n"] != a.iters * a.clients:
        fail(f"{where}: n is {r['n']!r}, expected {a.iters * a.clients} measured round trips")
    if a.libos != "any" and r["libos"] != a.libos:
        fail(f"{where}: libos is {r['libos']!r}, expected {a.libos!r}")
    if not (0 < r["min_us"] <= r["p50_us"] <= r["p99_us"] <= r["p999_us"] <= r["max_us"]):
        fail(f"{where}: percentiles are not ordered min <= p50 <= p99 <= p99.9 <= max: "
             f"{json.dumps(r)}")
    if r["rps"] <= 0:
        fail(f"{where}: rps is not positive: {r['rps']!r}")
    with open(a.out, "w") as f:
        json.dump(r, f)
        f.write("\n")


def cmd_cdf(a):
    """A CDF file must hold ascending "<us> <fraction>" lines ending at 1."""
    prev_x, prev_y, rows = 0.0, 0.0, 0
    try:
        with open(a.file) as f:
            for i, ln in enumerate(f, 1):
                if not ln.strip():
                    continue
                try:
                    x, y = (float(v) for v in ln.split())
                except ValueError:
                    fail(f"{a.file}:{i}: not '<latency_us> <fraction>': {ln.strip()!r}")
                if x < prev_x or y < prev_y or y > 1.000001 or x <= 0:
                    fail(f"{a.file}:{i}: not an ascending CDF: {ln.strip()!r}")
                prev_x, prev_y, rows = x, y, rows + 1
    except OSError as e:
        fail(f"{a.file}: {e}")
    if rows == 0:
        fail(f"{a.file}: empty CDF")
    if abs(prev_y - 1.0) > 1e-3:
        fail(f"{a.file}: CDF ends at {prev_y}, not 1")


def cmd_label(a):
    r = load_json(a.run)
    name = a.name
    if a.name == "catnap" and r.get("libos") != "catnap":
        name = f"catnap* (DEMI_ECHO test: ran {r.get('libos')})"
    print(f"{name}: p50 {r['p50_us']:.1f}, p99 {r['p99_us']:.1f}, "
          f"p99.9 {r['p999_us']:.1f} µs")


def ratio(num, den):
    return round(num / den, 3) if den else None


def cmd_merge(a):
    runs, binaries = {}, {}
    for spec in a.runs:
        parts = spec.split("=", 2)
        if len(parts) < 2:
            fail(f"bad run spec {spec!r}: expected NAME=RUN_JSON[=BINARY]")
        runs[parts[0]] = load_json(parts[1])
        if len(parts) == 3:
            binaries[parts[0]] = repo_path(parts[2])
    out = {
        "benchmark": "echo",
        "proto": a.proto,
        "size": a.size,
        "iters": a.iters,
        "warmup": a.warmup,
        "clients": a.clients,
        "address": a.address,
        "date": utc_now(),
        "machine": {
            "nproc": a.nproc,
            "cpu_model": cpu_model(),
            "kernel": platform.release(),
        },
        "cpus": {"server": a.server_cpu, "client": a.client_cpu},
        "runs": runs,
        "binaries": binaries,
        "ratios": {},
        "notes": [],
    }
    ratios = out["ratios"]
    # Every run that is not a baseline, against each baseline.
    for name, c in runs.items():
        if name in BASELINES:
            continue
        me = name.replace("-", "_")
        for b in BASELINES:
            if b not in runs:
                continue
            base = runs[b]
            tag = b.replace("-", "_")
            for m in LATENCY:
                ratios[f"{me}_{m}/{tag}_{m}"] = ratio(c[f"{m}_us"], base[f"{m}_us"])
            ratios[f"{me}_rps/{tag}_rps"] = ratio(c["rps"], base["rps"])
    if "catnap" in runs:
        c = runs["catnap"]
        if c.get("libos") != "catnap":
            out["notes"].append(
                f"The 'catnap' run reported libos {c.get('libos')!r}: DEMI_ECHO pointed at "
                f"{binaries.get('catnap', '?')}, not demi-echo on catnap. Its figures and "
                f"ratios test the script, they are not catnap's.")
    subject = a.subject or "catnap"
    out["notes"].append(
        f"Latency ratios below 1 mean {subject} is faster than that Linux baseline; "
        f"the rps ratio above 1 means {subject} completes more round trips per second.")
    write_json(a.out, out)


def cmd_table(a):
    res = [load_json(p) for p in a.results]
    if not res:
        return
    r0 = res[0]
    print(f"\necho round trips: {r0['size']} B, {r0['iters']} measured (+{r0['warmup']} warm-up), "
          f"{r0['clients']} client(s), {r0.get('address', '127.0.0.1')}, server cpu {r0['cpus']['server']}, "
          f"client cpu {r0['cpus']['client']}")
    print(f"machine: {r0['machine']['nproc']} CPUs, {r0['machine']['cpu_model']}, "
          f"kernel {r0['machine']['kernel']}\n")
    hdr = f"{'proto':<6}{'run':<18}{'p50 µs':>10}{'p99 µs':>10}{'p99.9 µs':>10}{'mean µs':>10}{'rps':>11}"
    print(hdr)
    print("-" * len(hdr))
    for r in res:
        for name, run in r["runs"].items():
            label = name if name != "catnap" or run.get("libos") == "catnap" else "catnap*"
            print(f"{r['proto']:<6}{label:<18}{run['p50_us']:>10.1f}{run['p99_us']:>10.1f}"
                  f"{run['p999_us']:>10.1f}{run['mean_us']:>10.1f}{run['rps']:>11.0f}")
        for name in r["runs"]:
            me = name.replace("-", "_")
            for b in BASELINES:
                tag = b.replace("-", "_")
                if f"{me}_p50/{tag}_p50" not in r["ratios"]:
                    continue
                q = [r["ratios"][f"{me}_{m}/{tag}_{m}"] for m in ("p50", "p99", "p999")]
                print(f"{'':<6}{name} / {b}: p50 {q[0]:.2f}x  p99 {q[1]:.2f}x  p99.9 {q[2]:.2f}x")
        print()
    if any(r["runs"].get("catnap", {}).get("libos", "catnap") != "catnap" for r in res):
        print("* DEMI_ECHO override: the catnap slot ran another program; "
              "those rows and ratios are not catnap's figures.\n")
    print("Latency ratios < 1: faster than that baseline. Figures are reported, not judged.")


def cmd_json(a):
    try:
        with open(a.file) as f:
            text = f.read()
        obj = json.loads(text)
    except (OSError, ValueError) as e:
        fail(f"{a.file}: not one JSON object: {e}")
    if not isinstance(obj, dict):
        fail(f"{a.file}: not a JSON object")


def cmd_median(a):
    p50 = {k: load_json(f"{a.prefix}.{k}.json")["p50_us"] for k in range(1, a.rounds + 1)}
    k = median_by(p50, p50.get)
    for ext in ("json", "cdf"):
        with open(f"{a.prefix}.{k}.{ext}") as src, open(f"{a.prefix}.{ext}", "w") as dst:
            dst.write(src.read())


def cmd_rounds(a):
    res = load_json(a.results)
    res["rounds"] = {"count": a.rounds, "chosen": "median round by p50", "runs": {}}
    for name in a.names:
        res["rounds"]["runs"][name] = [
            {k: load_json(f"{a.tmp}/{name}.{a.proto}.{r}.json")[k] for k in ("p50_us", "p99_us", "p999_us")}
            for r in range(1, a.rounds + 1)]
    write_json(a.results, res)


def cmd_catpowder(a):
    """bench/catpowder.sh's results file: the echo files merge wrote, plus
    the bulk and cost rounds, their medians, ratios, and the issue's targets
    (reported as met or not: never a pass or fail)."""
    out = {"benchmark": "catpowder", "date": utc_now(),
           "machine": {"nproc": os.cpu_count(), "cpu_model": cpu_model(), "kernel": platform.release()},
           "echo": {}, "bulk": {}, "cost": {}, "targets": {}, "notes": a.note or []}
    for spec in a.echo:
        proto, path = spec.split("=", 1)
        out["echo"][proto] = load_json(path)
    # Bulk: the linux_echo client's rps with --size BULK is round trips of
    # BULK bytes each way; report Mbit/s each way, median round.
    names = a.bulk_names.split() if a.bulk_names else []
    for name in names:
        rounds = []
        for r in range(1, a.rounds + 1):
            j = load_json(f"{a.tmp}/bulk.{name}.{r}.json")
            rounds.append({"mbit_s_each_way": round(j["size"] * 8 * j["rps"] / 1e6, 1), "n": j["n"]})
        med = median_by(rounds, lambda x: x["mbit_s_each_way"])
        out["bulk"][name] = {"mbit_s_each_way": med["mbit_s_each_way"], "rounds": rounds}
    if out["bulk"]:
        out["bulk_size"] = a.bulk_size
        base = out["bulk"].get("linux-busypoll", {}).get("mbit_s_each_way")
        out["bulk_ratios"] = {f"{n.replace('-', '_')}/linux_busypoll": ratio(v["mbit_s_each_way"], base)
                              for n, v in out["bulk"].items() if n != "linux-busypoll" and base}
    # Cost: catpowder_cost's JSON per round; median round by its median per-I/O figure.
    for be in (a.cost_backends.split() if a.cost_backends else []):
        for proto in a.protos.split():
            rounds = [load_json(f"{a.tmp}/cost.{be}.{proto}.{r}.json") for r in range(1, a.rounds + 1)]
            for j in rounds:
                for k in ("echoed", "stack_ns_per_io_median", "stack_ns_per_io_mean", "device_ns_per_message_mean",
                          "device_ns_per_message_median"):
                    if not is_num(j.get(k)) or j[k] < 0:
                        fail(f"cost {be} {proto}: bad {k} in {json.dumps(j)}")
                if j["echoed"] < 1000:
                    fail(f"cost {be} {proto}: only {j['echoed']} messages echoed")
            med = median_by(rounds, lambda x: x["stack_ns_per_io_median"])
            out["cost"].setdefault(proto, {})[be] = {
                "stack_ns_per_io_median": med["stack_ns_per_io_median"],
                "stack_ns_per_io_mean": med["stack_ns_per_io_mean"],
                "device_ns_per_io_median": round(med["device_ns_per_message_median"] / 2, 1),
                "device_ns_per_io_mean": round(med["device_ns_per_message_mean"] / 2, 1),
                "rounds": [{k: j[k] for k in ("stack_ns_per_io_median", "stack_ns_per_io_mean",
                                              "device_ns_per_message_median", "device_ns_per_message_mean",
                                              "echoed")} for j in rounds]}
    # Targets (issue 4): catpowder's p50 and p99 at most half of Linux
    # busy-poll's on the same veth; under 1 µs of libOS work per I/O.
    t = out["targets"]
    for proto, e in out["echo"].items():
        for name, run in e["runs"].items():
            if not name.startswith("catpowder") or "linux-busypoll" not in e["runs"]:
                continue
            base = e["runs"]["linux-busypoll"]
            for m in ("p50", "p99"):
                q = ratio(run[f"{m}_us"], base[f"{m}_us"])
                t[f"{proto} {name} {m} <= 0.5 x linux-busypoll"] = {"ratio": q, "met": q is not None and q <= 0.5}
    for proto, bes in out["cost"].items():
        for be, c in bes.items():
            t[f"{proto} catpowder-{be} libOS work per I/O < 1 us (stack, median)"] = {
                "ns": c["stack_ns_per_io_median"], "met": c["stack_ns_per_io_median"] < 1000}
            both = c["stack_ns_per_io_median"] + c["device_ns_per_io_median"]
            t[f"{proto} catpowder-{be} work per I/O < 1 us (stack and device calls, medians)"] = {
                "ns": round(both, 1), "met": both < 1000}
    write_json(a.out, out)
    if out["bulk"]:
        print(f"\nbulk TCP echo, {a.bulk_size >> 20} MiB messages, median of {a.rounds} rounds:")
        for n, v in out["bulk"].items():
            print(f"  {n:<18}{v['mbit_s_each_way']:>9.0f} Mbit/s each way")
    if out["cost"]:
        print("\nlibOS and stack work per I/O (catpowder_cost; device calls apart):")
        for proto, bes in out["cost"].items():
            for be, c in bes.items():
                print(f"  {proto} {be:<7} stack {c['stack_ns_per_io_median']:>6.0f} ns median, "
                      f"{c['stack_ns_per_io_mean']:>6.0f} ns mean; device calls "
                      f"{c['device_ns_per_io_median']:>6.0f} ns median, {c['device_ns_per_io_mean']:>6.0f} ns mean")
    print("\ntargets (reported, not asserted):")
    for k, v in t.items():
        fig = f"{v['ratio']:.2f}x" if "ratio" in v else f"{v['ns']:.0f} ns"
        print(f"  {'met    ' if v['met'] else 'not met'}  {k}: {fig}")


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    c = sub.add_parser("check")
    c.add_argument("stdout")
    c.add_argument("out")
    c.add_argument("--proto", required=True, choices=("tcp", "udp"))
    c.add_argument("--size", type=int, required=True)
    c.add_argument("--iters", type=int, required=True)
    c.add_argument("--clients", type=int, default=1)
    c.add_argument("--libos", required=True)
    c.set_defaults(fn=cmd_check)

    c = sub.add_parser("cdf")
    c.add_argument("file")
    c.set_defaults(fn=cmd_cdf)

    c = sub.add_parser("label")
    c.add_argument("run")
    c.add_argument("name")
    c.set_defaults(fn=cmd_label)

    c = sub.add_parser("merge")
    c.add_argument("out")
    c.add_argument("runs", nargs="+")
    c.add_argument("--proto", required=True)
    c.add_argument("--size", type=int, required=True)
    c.add_argument("--iters", type=int, required=True)
    c.add_argument("--warmup", type=int, required=True)
    c.add_argument("--clients", type=int, default=1)
    c.add_argument("--server-cpu", type=int, required=True)
    c.add_argument("--client-cpu", type=int, required=True)
    c.add_argument("--nproc", type=int, default=os.cpu_count())
    c.add_argument("--address", default="127.0.0.1")
    c.add_argument("--subject", default=None, help="what the ratios are about (notes)")
    c.set_defaults(fn=cmd_merge)

    c = sub.add_parser("table")
    c.add_argument("results", nargs="+")
    c.set_defaults(fn=cmd_table)

    c = sub.add_parser("json")
    c.add_argument("file")
    c.set_defaults(fn=cmd_json)

    c = sub.add_parser("median")
    c.add_argument("prefix")
    c.add_argument("rounds", type=int)
    c.set_defaults(fn=cmd_median)

    c = sub.add_parser("rounds")
    c.add_argument("results")
    c.add_argument("tmp")
    c.add_argument("proto")
    c.add_argument("rounds", type=int)
    c.add_argument("names", nargs="+")
    c.set_defaults(fn=cmd_rounds)

    c = sub.add_parser("catpowder")
    c.add_argument("out")
    c.add_argument("--echo", action="append", default=[], help="PROTO=MERGED_JSON")
    c.add_argument("--tmp", required=True)
    c.add_argument("--rounds", type=int, required=True)
    c.add_argument("--protos", default="tcp udp")
    c.add_argument("--bulk-names", default="")
    c.add_argument("--bulk-size", type=int, default=0)
    c.add_argument("--cost-backends", default="")
    c.add_argument("--note", action="append")
    c.set_defaults(fn=cmd_catpowder)

    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
