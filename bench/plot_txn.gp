# Plots bench/txn.sh's median rounds: OUT.png with two panels, throughput
# (tx/s, higher is better) and p99 transaction latency (ms, lower is
# better), one cluster per mode and workload, one bar per libOS.
#   gnuplot -c plot_txn.gp OUT TITLE DATAFILE NLIB
# DATAFILE (txn_plot.py writes it): a header row "label" then the NLIB
# libOS names twice, then per cell the label, each libOS's tx/s, then each
# one's p99 ms ("?" where a libOS has no run).
out = ARG1
title = ARG2
data = ARG3
nlib = int(ARG4)
array C[4] = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e"]
set datafile missing "?"

set terminal pngcairo size 1100, 460 font "sans,9" noenhanced
set output out.".png"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set xtics scale 0 font ",8" rotate by -25
set grid ytics
set key top right
set yrange [0:*]
set bmargin 5
set multiplot layout 1,2 title title
set title "throughput, tx/s (higher is better)"
plot for [s = 1:nlib] data using (column(1 + s)):xtic(1) title columnheader(1 + s) lc rgb C[s]
set title "p99 transaction latency, ms (lower is better)"
plot for [s = 1:nlib] data using (column(1 + nlib + s)):xtic(1) title columnheader(1 + nlib + s) lc rgb C[s]
unset multiplot
