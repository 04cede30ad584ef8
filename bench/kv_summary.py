#!/usr/bin/env python3
"""Helper of bench/kv.sh: reads every redis-benchmark --csv output and
INFO dump of a run, picks each figure's median round per test, writes
kv.json (runs, rounds, ratios demi-kv / redis-server, per test of
redis-benchmark's list), the data and the names for plot_kv.gp, and prints
the closing table. Python 3 standard library only. It never invents a
figure: a missing or malformed result is an error (exit 1).

  kv_summary.py TMPDIR OUT_JSON PLOT_PREFIX --rounds R ... (see kv.sh)
  kv_summary.py --table KV_JSON

Also imported by kv_bypass_summary.py (read_csv, tests_of, median_round,
run_fields, write_plot_files).
"""

import argparse
import csv
import os
import platform
import statistics
import sys

sys.dont_write_bytecode = True  # no bench/__pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# errors, JSON in and out, the date and machine, the median round
from benchlib import cpu_model, fail, load_json, median_by, repo_path, utc_now, write_json  # noqa: E402

SERVERS = ("demi-kv", "redis-server")
CONFIGS = ("c1", "c50", "c50p16")
LABELS = {"c1": "-c 1", "c50": "-c 50", "c50p16": "-c 50 -P 16"}
SHORT_CFG = {"c1": "c1", "c50": "c50", "c50p16": "P16"}
# redis-benchmark --csv columns (7.x) -> the keys kv.json uses. Older
# redis-benchmark prints "test","rps" only, with no header: latencies None.
COLUMNS = {"rps": "rps", "avg_latency_ms": "avg_ms", "min_latency_ms": "min_ms", "p50_latency_ms": "p50_ms",
           "p95_latency_ms": "p95_ms", "p99_latency_ms": "p99_ms", "max_latency_ms": "max_ms"}
FIG_KEYS = ("rps", "p50_ms", "p95_ms", "p99_ms", "avg_ms", "min_ms", "max_ms")
SCHEMA = 2


def read_csv(path):
    """One redis-benchmark --csv output: {test name: {rps, p50_ms, ...}} in
    the order redis-benchmark ran the tests (latencies None when the CSV has
    no such column). Fails on anything malformed, an empty result, a test
    twice, or a test with no positive ops/s."""
    try:
        with open(path, newline="") as f:
            rows = [r for r in csv.reader(f) if r]
    except OSError as e:
        fail(f"{path}: {e}")
    if not rows:
        fail(f"{path}: redis-benchmark printed no result")
    if rows[0][0] == "test":
        header, rows = rows[0], rows[1:]
        if len(header) < 2 or header[1] != "rps":
            fail(f"{path}: unexpected redis-benchmark --csv header {header!r}")
    else:
        header = ["test", "rps"]
    out = {}
    for row in rows:
        if len(row) != len(header):
            fail(f"{path}: bad row {row!r}")
        if row[0] in out:
            fail(f"{path}: test {row[0]!r} twice")
        try:
            vals = dict(zip(header[1:], (float(v) for v in row[1:])))
        except ValueError:
            fail(f"{path}: bad numbers in {row!r}")
        if vals["rps"] <= 0:
            fail(f"{path}: {row[0]}: no ops/s ({row!r})")
        out[row[0]] = {key: vals.get(col) for col, key in COLUMNS.items()}
    if not out:
        fail(f"{path}: redis-benchmark ran no test")
    return out


def tests_of(results):
    """results: {label: csv dict}. The tests every run ran, in the first
    run's order; fails unless every run ran exactly the same tests."""
    labels = list(results)
    tests = list(results[labels[0]])
    for label in labels[1:]:
        if list(results[label]) != tests:
            fail(f"{label} ran the tests {list(results[label])}, {labels[0]} ran {tests}")
    return tests


def median_round(per_round, test):
    """per_round: one csv dict per round. (index, figures) of the round with
    the median ops/s for test (the lower median for an even count),
    reported whole: its latencies with its rate."""
    k = median_by(range(len(per_round)), lambda i: per_round[i][test]["rps"])
    return k, per_round[k][test]


def ratio(a, b):
    return round(a / b, 3) if a is not None and b else None


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


def gp_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def write_plot_files(prefix, tests, servers, runs, ratios_of, legend, ratio_label):
    """PREFIX.dat: one block per test (gnuplot index i), one row per
    configuration: label, then rps p50_ms p99_ms of each server in order
    ("NaN" where the CSV had no latency). PREFIX.names.gp: ntests, nservers
    and the arrays T (panel titles: the test and the ratios per
    configuration) and S (legend names), for plot_kv.gp to load.
    ratios_of(cfg, test) -> [(server, rps ratio)] for the title, one line
    per server, introduced by ratio_label(server)."""
    with open(prefix + ".dat", "w") as f:
        f.write("# blocks: one per test; rows: configuration; columns: label, then per server rps p50_ms p99_ms\n")
        for t in tests:
            f.write(f"# {t}\n")
            for cfg in CONFIGS:
                cols = []
                for s in servers:
                    x = runs[cfg][s][t]
                    cols += [x["rps"], x["p50_ms"], x["p99_ms"]]
                f.write(gp_string(LABELS[cfg]) + " " + " ".join("NaN" if v is None else repr(v) for v in cols) + "\n")
            f.write("\n\n")
    with open(prefix + ".names.gp", "w") as f:
        f.write(f"ntests = {len(tests)}\nnservers = {len(servers)}\narray T[{len(tests)}]\narray S[{len(servers)}]\n")
        for i, t in enumerate(tests, 1):
            # One line per demi-kv server: "NAME ops/s ratio: c1 1.20x, c50 0.98x, P16 1.05x".
            lines = {}
            for cfg in CONFIGS:
                for n, r in ratios_of(cfg, t):
                    lines.setdefault(n, []).append(SHORT_CFG[cfg] + " " + ("-" if r is None else f"{r:.2f}x"))
            title = "\n".join([t] + [f"{ratio_label(n)}: " + ", ".join(v) for n, v in lines.items()])
            f.write(f"T[{i}] = {gp_string(title)}\n")
        for i, s in enumerate(servers, 1):
            f.write(f"S[{i}] = {gp_string(legend[s])}\n")


def run_fields(a):
    """What kv.json and kv_bypass.json record about a run, from the shell
    script's arguments a: when, on what machine and CPUs, with which
    redis-benchmark parameters and client configurations."""
    return {
        "date": utc_now(),
        "elapsed_s": a.elapsed,
        "machine": {"nproc": a.nproc, "cpu_model": cpu_model(), "kernel": platform.release(),
                    "loadavg_before": a.loadavg},
        "cpus": {"server": a.server_cpu, "client": a.client_cpu},
        "params": {"tests": a.tests or "redis-benchmark's default list", "keyspace": a.keyspace,
                   "value_bytes": a.size, "rounds": a.rounds},
        "configs": {"c1": f"-c 1 -n {a.n1}", "c50": f"-c 50 -n {a.n50}", "c50p16": f"-c 50 -P 16 -n {a.np}"},
    }


def summarize(a):
    per, results = {}, {}
    for cfg in CONFIGS:
        for name in SERVERS:
            for r in range(1, a.rounds + 1):
                tag = os.path.join(a.tmp, f"{name}.{cfg}.{r}")
                per[cfg, name, r] = (read_csv(tag + ".csv"), read_info(tag + ".info"))
                results[f"{name} {LABELS[cfg]} round {r}"] = per[cfg, name, r][0]
    tests = tests_of(results)
    runs, rounds_out, ratios, ppc_out = {}, {}, {}, {}
    for cfg in CONFIGS:
        runs[cfg], rounds_out[cfg], ratios[cfg] = {}, {}, {}
        for name in SERVERS:
            per_round = [per[cfg, name, r][0] for r in range(1, a.rounds + 1)]
            entry, rr = {}, {}
            for t in tests:
                k, x = median_round(per_round, t)
                entry[t] = dict({key: x[key] for key in FIG_KEYS}, round=k + 1)
                rr[t] = [{"rps": p[t]["rps"], "p50_ms": p[t]["p50_ms"], "p99_ms": p[t]["p99_ms"]} for p in per_round]
            runs[cfg][name], rounds_out[cfg][name] = entry, rr
        ppc = []
        for r in range(1, a.rounds + 1):
            info = per[cfg, "demi-kv", r][1]
            try:
                ppc.append(int(info["demi_pushes"]) / int(info["total_commands_processed"]))
            except (KeyError, ValueError, ZeroDivisionError):
                fail(f"demi-kv's INFO lacks demi_pushes/total_commands_processed ({cfg}, round {r})")
        ppc_out[cfg] = round(statistics.median(ppc), 4)
        for t in tests:
            d, b = runs[cfg]["demi-kv"][t], runs[cfg]["redis-server"][t]
            ratios[cfg][t] = {"rps": ratio(d["rps"], b["rps"]), "p50": ratio(d["p50_ms"], b["p50_ms"]),
                              "p99": ratio(d["p99_ms"], b["p99_ms"])}
    out = {
        "benchmark": "kv",
        "schema": SCHEMA,
        "tool": a.bench_version,
        "baseline": a.server_version,
        "demi_kv": {"binary": repo_path(a.demi_kv), "libos": "catnap"},
        "servers": {"demi-kv": "demi-kv on catnap (libdemi over Linux kernel sockets)",
                    "redis-server": "redis-server (Linux kernel sockets)"},
        "address": "127.0.0.1",
        **run_fields(a),
        "tests": tests,
        "runs": runs,
        "rounds": rounds_out,
        "ratios": ratios,
        "pushes_per_command": ppc_out,
        "notes": [
            "tests: redis-benchmark's test names, in the order it ran them; runs, rounds and ratios are keyed "
            "by configuration, then (runs, rounds) server, then test.",
            "Latencies are redis-benchmark's, in ms, measured by the client for both servers alike.",
            "ratios: demi-kv / redis-server. rps above 1: demi-kv serves more; p50/p99 below 1: demi-kv is faster.",
            "demi-kv runs on catnap: Linux kernel sockets underneath, as redis-server; bench/kv_bypass.sh "
            "measures catpowder and catnip.",
            "pushes_per_command: demi_push calls per command served (demi-kv's INFO), median round, per "
            "configuration, over every test of the run.",
        ],
    }
    write_json(a.out, out)
    write_plot_files(a.plot_prefix, tests, SERVERS, runs, lambda cfg, t: [("demi-kv", ratios[cfg][t]["rps"])],
                     {"demi-kv": "demi-kv (catnap)", "redis-server": "redis-server"},
                     lambda n: "ops/s demi-kv/redis")


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def table(path):
    r = load_json(path)
    if r.get("schema") != SCHEMA:
        fail(f"{path}: written by an older bench/kv.sh (no 'schema': {SCHEMA}); run bench/kv.sh again")
    w = max(len(t) for t in r["tests"])
    print(f"{'config':<12} {'test':<{w}} {'demi-kv ops/s':>13} {'redis ops/s':>12} {'x ops/s':>7}   "
          f"{'p50 ms demi/redis':>17} {'x p50':>6}   {'p99 ms demi/redis':>17} {'x p99':>6}")
    for cfg in CONFIGS:
        for t in r["tests"]:
            d, b, q = r["runs"][cfg]["demi-kv"][t], r["runs"][cfg]["redis-server"][t], r["ratios"][cfg][t]
            print(f"{LABELS[cfg]:<12} {t:<{w}} {d['rps']:>13.0f} {b['rps']:>12.0f} {fmt(q['rps'], '>7.2f')}   "
                  f"{fmt(d['p50_ms'], '>8.3f')}/{fmt(b['p50_ms'], '<8.3f')} {fmt(q['p50'], '>6.2f')}   "
                  f"{fmt(d['p99_ms'], '>8.3f')}/{fmt(b['p99_ms'], '<8.3f')} {fmt(q['p99'], '>6.2f')}")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--table":
        table(sys.argv[2])
        return
    p = argparse.ArgumentParser()
    p.add_argument("tmp")
    p.add_argument("out")
    p.add_argument("plot_prefix")
    for k in ("rounds", "server-cpu", "client-cpu", "nproc", "keyspace", "size", "n1", "n50", "np", "elapsed"):
        p.add_argument("--" + k, type=int, required=True)
    for k in ("bench-version", "server-version", "demi-kv", "loadavg"):
        p.add_argument("--" + k, required=True)
    p.add_argument("--tests", default="")
    summarize(p.parse_args())


if __name__ == "__main__":
    main()
