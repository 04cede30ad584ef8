#!/usr/bin/env python3
"""Helper of bench/kv.sh: reads every redis-benchmark --csv output and
INFO dump of a run, picks each figure's median round, writes kv.json (runs,
rounds, ratios demi-kv / redis-server) and a data file for plot_kv.gp, and
prints the closing table. Python 3 standard library only. It never invents
a figure: a missing or malformed result is an error (exit 1).

  kv_summary.py TMPDIR OUT_JSON OUT_DAT --rounds R ... (see kv.sh)
  kv_summary.py --table KV_JSON
"""

import argparse
import csv
import datetime
import json
import os
import platform
import statistics
import sys

SERVERS = ("demi-kv", "redis-server")
CONFIGS = ("c1", "c50", "c50p16")
TESTS = ("SET", "GET")
FIELDS = ("rps", "avg_latency_ms", "min_latency_ms", "p50_latency_ms", "p95_latency_ms", "p99_latency_ms",
          "max_latency_ms")


def fail(msg):
    print(f"kv_summary: {msg}", file=sys.stderr)
    sys.exit(1)


def read_csv(path):
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except OSError as e:
        fail(f"{path}: {e}")
    if not rows or rows[0] != ["test"] + list(FIELDS):
        fail(f"{path}: not redis-benchmark 7 --csv output: {rows[:1]!r}")
    out = {}
    for row in rows[1:]:
        if len(row) != len(FIELDS) + 1:
            fail(f"{path}: bad row {row!r}")
        try:
            vals = [float(v) for v in row[1:]]
        except ValueError:
            fail(f"{path}: bad numbers in {row!r}")
        out[row[0]] = dict(zip(FIELDS, vals))
    for t in TESTS:
        if t not in out or out[t]["rps"] <= 0:
            fail(f"{path}: no {t} result")
    return out


def read_info(path):
    info = {}
    try:
        with open(path) as f:
            for line in f:
                if ":" in line:
                    k, v = line.strip().split(":", 1)
                    info[k] = v
    except OSError as e:
        fail(f"{path}: {e}")
    return info


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for ln in f:
                if ln.startswith("model name"):
                    return ln.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def fig(r):
    return {"rps": r["rps"], "p50_ms": r["p50_latency_ms"], "p99_ms": r["p99_latency_ms"],
            "avg_ms": r["avg_latency_ms"], "min_ms": r["min_latency_ms"], "p95_ms": r["p95_latency_ms"],
            "max_ms": r["max_latency_ms"]}


def summarize(a):
    runs, rounds_out, ratios = {}, {}, {}
    for cfg in CONFIGS:
        runs[cfg], rounds_out[cfg] = {}, {}
        for name in SERVERS:
            per_round = []
            for r in range(1, a.rounds + 1):
                tag = os.path.join(a.tmp, f"{name}.{cfg}.{r}")
                per_round.append((read_csv(tag + ".csv"), read_info(tag + ".info")))
            entry, rr = {}, {}
            for t in TESTS:
                # The round with the median ops/s (the lower median for an
                # even count), reported whole: its latencies with its rate.
                order = sorted(range(a.rounds), key=lambda i: per_round[i][0][t]["rps"])
                k = order[(a.rounds - 1) // 2]
                entry[t] = dict(fig(per_round[k][0][t]), round=k + 1)
                rr[t] = [{"rps": p[0][t]["rps"], "p50_ms": p[0][t]["p50_latency_ms"],
                          "p99_ms": p[0][t]["p99_latency_ms"]} for p in per_round]
            if name == "demi-kv":
                ppc = []
                for _, info in per_round:
                    try:
                        ppc.append(int(info["demi_pushes"]) / int(info["total_commands_processed"]))
                    except (KeyError, ValueError, ZeroDivisionError):
                        fail(f"demi-kv's INFO lacks demi_pushes/total_commands_processed ({cfg})")
                entry["pushes_per_command"] = round(statistics.median(ppc), 4)
            runs[cfg][name], rounds_out[cfg][name] = entry, rr
        ratios[cfg] = {}
        for t in TESTS:
            d, b = runs[cfg]["demi-kv"][t], runs[cfg]["redis-server"][t]
            ratios[cfg][t] = {
                "rps": round(d["rps"] / b["rps"], 3),
                "p50": round(d["p50_ms"] / b["p50_ms"], 3) if b["p50_ms"] else None,
                "p99": round(d["p99_ms"] / b["p99_ms"], 3) if b["p99_ms"] else None,
            }
    out = {
        "benchmark": "kv",
        "tool": a.bench_version,
        "baseline": a.server_version,
        "demi_kv": {"binary": a.demi_kv, "libos": "catnap"},
        "address": "127.0.0.1",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"nproc": a.nproc, "cpu_model": cpu_model(), "kernel": platform.release()},
        "cpus": {"server": a.server_cpu, "client": a.client_cpu},
        "params": {"tests": "set,get", "keyspace": a.keyspace, "value_bytes": a.size, "rounds": a.rounds},
        "configs": {"c1": f"-c 1 -n {a.n1}", "c50": f"-c 50 -n {a.n50}", "c50p16": f"-c 50 -P 16 -n {a.np}"},
        "runs": runs,
        "rounds": rounds_out,
        "ratios": ratios,
        "notes": [
            "Latencies are redis-benchmark's, in ms, measured by the client for both servers alike.",
            "ratios: demi-kv / redis-server. rps above 1: demi-kv serves more; p50/p99 below 1: demi-kv is faster.",
            "demi-kv runs on catnap: Linux kernel sockets underneath, as redis-server. The bypass libOSes "
            "(catnip, catpowder) that the issue's targets are about do not exist yet.",
            "pushes_per_command: demi_push calls per command served (INFO), showing how replies are batched.",
        ],
    }
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f, indent=2)
        f.write("\n")
    os.replace(tmp, a.out)
    with open(a.dat, "w") as f:
        f.write("# label demi_rps redis_rps demi_p50 redis_p50 demi_p99 redis_p99 (ms)\n")
        for cfg in CONFIGS:
            for t in TESTS:
                d, b = runs[cfg]["demi-kv"][t], runs[cfg]["redis-server"][t]
                label = {"c1": "-c 1", "c50": "-c 50", "c50p16": "-c 50 -P 16"}[cfg] + " " + t
                f.write(f'"{label}" {d["rps"]} {b["rps"]} {d["p50_ms"]} {b["p50_ms"]} {d["p99_ms"]} {b["p99_ms"]}\n')


def table(path):
    try:
        with open(path) as f:
            r = json.load(f)
    except (OSError, ValueError) as e:
        fail(f"{path}: {e}")
    print(f"{'config':<12} {'test':<4} {'server':<13} {'ops/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
    for cfg in CONFIGS:
        for t in TESTS:
            for name in SERVERS:
                x = r["runs"][cfg][name][t]
                print(f"{r['configs'][cfg].split(' -n')[0]:<12} {t:<4} {name:<13} {x['rps']:>10.0f} "
                      f"{x['p50_ms']:>8.3f} {x['p99_ms']:>8.3f}")
            q = r["ratios"][cfg][t]
            print(f"{'':<12} {t:<4} {'ratio':<13} {q['rps']:>10.2f} {q['p50']:>8.2f} {q['p99']:>8.2f}")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--table":
        table(sys.argv[2])
        return
    p = argparse.ArgumentParser()
    p.add_argument("tmp")
    p.add_argument("out")
    p.add_argument("dat")
    for k in ("rounds", "server-cpu", "client-cpu", "nproc", "keyspace", "size", "n1", "n50", "np"):
        p.add_argument("--" + k, type=int, required=True)
    for k in ("bench-version", "server-version", "demi-kv"):
        p.add_argument("--" + k, required=True)
    summarize(p.parse_args())


if __name__ == "__main__":
    main()
