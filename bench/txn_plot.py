#!/usr/bin/env python3
"""Writes the data file of bench/plot_txn.gp from bench/txn.sh's results:
one row per mode and workload, each libOS's median-round tx/s, then each
one's p99 in ms. Prints the number of libOSes (plot_txn.gp's fourth
argument).
    python3 txn_plot.py RESULTS.json OUT.dat"""
import json
import sys

CELLS = [("qw", "ycsbt zipf 0", "qw YCSB-T uniform"), ("qw", "ycsbt zipf 0.9", "qw YCSB-T Zipf 0.9"),
         ("qw", "retwis zipf 0", "qw Retwis"), ("occ", "ycsbt zipf 0", "occ YCSB-T uniform"),
         ("occ", "ycsbt zipf 0.9", "occ YCSB-T Zipf 0.9"), ("occ", "retwis zipf 0", "occ Retwis")]

doc = json.load(open(sys.argv[1]))
med = doc["median_round"]
libs = [lib for lib in doc["libos"] if any(k.startswith(lib + " ") for k in med)]
with open(sys.argv[2], "w") as f:
    f.write("label " + " ".join(libs) + " " + " ".join(libs) + "\n")
    for mode, work, label in CELLS:
        rows = [med.get("%s %s %s" % (lib, mode, work)) for lib in libs]
        if not any(rows):
            continue
        tps = ["%.1f" % r["throughput_tps"] if r else "?" for r in rows]
        p99 = ["%.3f" % (r["latency_us"]["p99"] / 1000.0) if r else "?" for r in rows]
        f.write('"%s" %s %s\n' % (label, " ".join(tps), " ".join(p99)))
print(len(libs))
