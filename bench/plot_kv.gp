# Plots bench/kv.sh's and bench/kv_bypass.sh's results, one panel per
# redis-benchmark test, and a last panel with the legend: OUT.png, ops/s of
# every server per client configuration (log scale, higher is better), and
# OUT_latency.png, their p50 and p99 (ms, log scale, lower is better).
#   gnuplot -c plot_kv.gp OUT TITLE DATAFILE NAMES
# DATAFILE: one block per test (index i), one row per configuration:
#   "label" then rps p50_ms p99_ms of each server in turn.
# NAMES (written with it, see kv_summary.write_plot_files): ntests,
#   nservers, T[] the panel titles, S[] the servers' legend names.
out = ARG1
title = ARG2
data = ARG3
load ARG4

npanels = ntests + 1
cols = npanels < 4 ? npanels : 4
rows = (npanels + cols - 1) / cols
array C[6] = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
array L[6] = ["#aec7e8", "#ff9896", "#98df8a", "#ffbb78", "#c5b0d5", "#c49c94"]

panel = "set style data histograms; set style histogram clustered gap 1; set style fill solid 0.8 border -1; \
set boxwidth 0.9; set xtics scale 0 font ',8'; set ytics font ',8'; set grid ytics; set logscale y; \
set border; unset key; set autoscale"
legend = "unset title; unset border; unset tics; unset grid; unset logscale y; set xrange [0:1]; \
set yrange [0:1]; set key center center font ',9' samplen 2 spacing 1.3"

set terminal pngcairo size 460 * cols, 330 * rows + 60 font "sans,9" noenhanced
set output out.".png"
set multiplot layout rows,cols title title." — ops/s (higher is better)"
eval panel
do for [i = 1:ntests] {
    set title T[i] font ",8"
    plot for [s = 1:nservers] data index (i - 1) using (column(2 + 3 * (s - 1))):xtic(1) \
        title S[s] lc rgb C[s]
}
eval legend
plot for [s = 1:nservers] NaN with boxes title S[s] lc rgb C[s]
unset multiplot

set output out."_latency.png"
set multiplot layout rows,cols title title." — p50 (dark) and p99 (light) in ms (lower is better)"
eval panel
do for [i = 1:ntests] {
    set title T[i] font ",8"
    plot for [s = 1:nservers] data index (i - 1) using (column(3 + 3 * (s - 1))):xtic(1) \
             title S[s]." p50" lc rgb C[s], \
         for [s = 1:nservers] data index (i - 1) using (column(4 + 3 * (s - 1))) \
             title S[s]." p99" lc rgb L[s]
}
eval legend
plot for [s = 1:nservers] NaN with boxes title S[s]." p50" lc rgb C[s], \
     for [s = 1:nservers] NaN with boxes title S[s]." p99" lc rgb L[s]
unset multiplot
