# Plots bench/kv.sh's results: ops/s (left) and p50/p99 latency (right) of
# demi-kv and redis-server for each redis-benchmark configuration and test.
#   gnuplot -c plot_kv.gp OUT.png TITLE DATAFILE
# DATAFILE rows: "label" demi_rps redis_rps demi_p50 redis_p50 demi_p99 redis_p99
out = ARG1
title = ARG2
data = ARG3

set terminal pngcairo size 1400,560 font "sans,10"
set output out
set multiplot layout 1,2 title title
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set xtics rotate by -30 scale 0
set grid ytics
set key below horizontal

set title "throughput (higher is better)"
set ylabel "ops/s"
set logscale y
plot data using 2:xtic(1) title "demi-kv (catnap)" lc rgb "#1f77b4", \
     '' using 3 title "redis-server 7" lc rgb "#d62728"

set title "latency (lower is better)"
set ylabel "ms"
plot data using 4:xtic(1) title "demi-kv p50" lc rgb "#1f77b4", \
     '' using 6 title "demi-kv p99" lc rgb "#aec7e8", \
     '' using 5 title "redis-server p50" lc rgb "#d62728", \
     '' using 7 title "redis-server p99" lc rgb "#ff9896"
unset multiplot
