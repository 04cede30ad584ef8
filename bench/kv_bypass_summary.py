#!/usr/bin/env python3
"""Helper of bench/kv_bypass.sh: reads every redis-benchmark --csv output
and counter file of a run, picks each figure's median round, writes
kv_bypass.json (runs, every round, ratios demi-kv / redis-server, the
issue's targets met or not) and prints the closing table. Python 3 standard
library only. It never invents a figure: a missing or malformed result is
an error (exit 1).

  kv_bypass_summary.py TMPDIR OUT_JSON --rounds R --servers "A B ..." ...
  kv_bypass_summary.py --table KV_BYPASS_JSON
"""

import argparse
import datetime
import json
import os
import platform
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kv_summary import cpu_model, read_csv  # noqa: E402  (redis-benchmark --csv, /proc/cpuinfo)

BASELINE = "redis-server"
CONFIGS = ("c1", "c50", "c50p16")
LABELS = {"c1": "-c 1", "c50": "-c 50", "c50p16": "-c 50 -P 16"}
TESTS = ("SET", "GET")


def fail(msg):
    print(f"kv_bypass_summary: {msg}", file=sys.stderr)
    sys.exit(1)


def read_counters(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        fail(f"{path}: {e}")


def ratio(a, b):
    return round(a / b, 3) if b else None


def summarize(a):
    servers = a.servers.split()
    runs, rounds_out, ratios = {}, {}, {}
    for cfg in CONFIGS:
        runs[cfg], rounds_out[cfg] = {}, {}
        for name in servers:
            per_round = []
            for r in range(1, a.rounds + 1):
                tag = os.path.join(a.tmp, f"{name}.{cfg}.{r}")
                per_round.append((read_csv(tag + ".csv"), read_counters(tag + ".counters")))
            entry, rr = {}, {}
            for t in TESTS:
                # The round with the median ops/s (the lower median for an
                # even count), reported whole: its latencies with its rate.
                order = sorted(range(a.rounds), key=lambda i: per_round[i][0][t]["rps"])
                k = order[(a.rounds - 1) // 2]
                x = per_round[k][0][t]
                entry[t] = {"rps": x["rps"], "p50_ms": x["p50_latency_ms"], "p99_ms": x["p99_latency_ms"],
                            "avg_ms": x["avg_latency_ms"], "p95_ms": x["p95_latency_ms"],
                            "max_ms": x["max_latency_ms"], "round": k + 1,
                            "client_cpu_busy": per_round[k][1].get("client_cpu_busy"),
                            "server_cpu_busy": per_round[k][1].get("server_cpu_busy"),
                            "client_process_cpu": per_round[k][1].get("client_process_cpu")}
                rr[t] = [{"rps": p[0][t]["rps"], "p50_ms": p[0][t]["p50_latency_ms"],
                          "p99_ms": p[0][t]["p99_latency_ms"]} for p in per_round]
            rr["counters"] = [p[1] for p in per_round]
            runs[cfg][name], rounds_out[cfg][name] = entry, rr
        ratios[cfg] = {}
        for name in servers:
            if name == BASELINE:
                continue
            ratios[cfg][name] = {}
            for t in TESTS:
                d, b = runs[cfg][name][t], runs[cfg][BASELINE][t]
                ratios[cfg][name][t] = {"rps": ratio(d["rps"], b["rps"]), "p50": ratio(d["p50_ms"], b["p50_ms"]),
                                        "p99": ratio(d["p99_ms"], b["p99_ms"])}
    # The targets, at -c 50: at least 2x redis-server's ops/s and at
    # most half its p99, for SET and GET, on catnip or catpowder.
    targets = {}
    for name in servers:
        if name == BASELINE:
            continue
        q = ratios["c50"][name]
        ok = all(q[t]["rps"] >= 2 and q[t]["p99"] is not None and q[t]["p99"] <= 0.5 for t in TESTS)
        targets[name] = {"met": ok, **{t: {"rps_ratio": q[t]["rps"], "p99_ratio": q[t]["p99"]} for t in TESTS}}
    out = {
        "benchmark": "kv_bypass",
        "tool": a.bench_version,
        "baseline": a.server_version,
        "demi_kv": {"binary": a.demi_kv},
        "servers": {s: LIBOS[s] for s in servers},
        "topology": a.topology,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"nproc": a.nproc, "cpu_model": cpu_model(), "kernel": platform.release()},
        "cpus": {"server": a.server_cpu, "client": a.client_cpu},
        "params": {"tests": "set,get", "keyspace": a.keyspace, "value_bytes": a.size, "rounds": a.rounds},
        "configs": {"c1": f"-c 1 -n {a.n1}", "c50": f"-c 50 -n {a.n50}", "c50p16": f"-c 50 -P 16 -n {a.np}"},
        "runs": runs,
        "rounds": rounds_out,
        "ratios": ratios,
        "targets": {
            "rule": "at -c 50, SET and GET: ops/s >= 2x redis-server's and p99 <= 0.5x redis-server's",
            "by_server": targets,
            "met": any(v["met"] for v in targets.values()),
        },
        "notes": [
            "redis-benchmark runs in the Linux namespace on the client CPU; every server runs in the other "
            "namespace on the server CPU, behind the same veth with offloads off, at the same address "
            "(redis-server: the address is on the kernel's interface during its runs only).",
            "Latencies are redis-benchmark's, in ms, measured by the client for every server alike.",
            "ratios: demi-kv / redis-server. rps above 1: demi-kv serves more; p50/p99 below 1: demi-kv is faster.",
            "rounds.*.counters: TCP segments retransmitted by Linux (client side) and by demi-kv's stack, "
            "and frames the kernel dropped before demi-kv's ring (server_device: the device's loss counters as "
            "demi-kv logged them), per round; client_cpu_busy and "
            "server_cpu_busy: the fraction of the client's and the server's CPU not idle during the run "
            "(/proc/stat, every process: on veth a frame's receive work runs on the sending CPU; other work on "
            "the machine shows here too); client_process_cpu: redis-benchmark's own user+system CPU time "
            "over the run's wall time (1.0: its CPU was saturated by the client alone).",
        ],
    }
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f, indent=2)
        f.write("\n")
    os.replace(tmp, a.out)


def busy(v):
    return "-" if v is None else f"{v * 100:.0f}%"


def table(path):
    try:
        with open(path) as f:
            r = json.load(f)
    except (OSError, ValueError) as e:
        fail(f"{path}: {e}")
    servers = list(r["servers"])
    print(f"{'config':<12} {'test':<4} {'server':<18} {'ops/s':>10} {'p50 ms':>8} {'p99 ms':>8}   "
          f"{'bench CPU':>9} {'CPU0 busy':>9}   {'x ops/s':>7} {'x p50':>6} {'x p99':>6}")
    for cfg in CONFIGS:
        for t in TESTS:
            for name in servers:
                x = r["runs"][cfg][name][t]
                line = (f"{LABELS[cfg]:<12} {t:<4} {name:<18} {x['rps']:>10.0f} {x['p50_ms']:>8.3f} "
                        f"{x['p99_ms']:>8.3f} {busy(x.get('client_process_cpu')):>9} {busy(x.get('client_cpu_busy')):>9}")
                if name != BASELINE:
                    q = r["ratios"][cfg][name][t]
                    line += f"   {q['rps']:>7.2f} {q['p50']:>6.2f} {q['p99']:>6.2f}"
                print(line)
    for name, v in r["targets"]["by_server"].items():
        print(f"target ({r['targets']['rule']}): {name}: {'met' if v['met'] else 'NOT met'} "
              f"(SET {v['SET']['rps_ratio']}x ops/s, {v['SET']['p99_ratio']}x p99; "
              f"GET {v['GET']['rps_ratio']}x ops/s, {v['GET']['p99_ratio']}x p99)")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--table":
        table(sys.argv[2])
        return
    p = argparse.ArgumentParser()
    p.add_argument("tmp")
    p.add_argument("out")
    for k in ("rounds", "server-cpu", "client-cpu", "nproc", "keyspace", "size", "n1", "n50", "np"):
        p.add_argument("--" + k, type=int, required=True)
    for k in ("servers", "bench-version", "server-version", "demi-kv", "topology"):
        p.add_argument("--" + k, required=True)
    summarize(p.parse_args())


if __name__ == "__main__":
    main()
