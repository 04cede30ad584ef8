# Plots echo latency CDFs written by `--hist FILE` ("<latency_us> <fraction>"
# per line), one curve per run: the CDF on the left, the tail (fraction of
# round trips slower than x, log scale) on the right. Needs gnuplot >= 5.4.
#
#   gnuplot -c bench/plot_cdf.gp OUT.png "TITLE" CDF1 "LABEL1" [CDF2 "LABEL2" ...]

if (ARGC < 4 || ARGC % 2 != 0) {
    print "usage: gnuplot -c plot_cdf.gp OUT.png TITLE CDF1 LABEL1 [CDF2 LABEL2 ...]"
    exit status 2
}

set encoding utf8
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
    set terminal pngcairo size 1400,600 enhanced font "sans,11"
} else {
    set terminal png size 1400,600 font "sans,10"
}
set output ARG1

# Both panels share one legend, centred under them.
set multiplot layout 1,2 title ARG2 font ",13" margins 0.07,0.98,0.25,0.90 spacing 0.08,0

set logscale x 10
set format x "%g"
set xlabel "round-trip latency (µs, log scale)"
set grid xtics mxtics ytics
set key at screen 0.5,0.11 center center vertical Left reverse box width 2

set ylabel "fraction of round trips ≤ x"
set yrange [0:1.02]
set title "CDF"
plot for [i=3:ARGC-1:2] ARGV[i] using 1:2 with steps linewidth 2 title ARGV[i+1] noenhanced

# The last bucket has fraction 1, so 1 - fraction is 0 there: log scale
# leaves that point out, which is what we want.
set logscale y 10
set format y "10^{%L}"
set yrange [*:1.5]
set ylabel "fraction of round trips > x"
set title "tail (1 - CDF)"
unset key
plot for [i=3:ARGC-1:2] ARGV[i] using 1:(1 - $2) with steps linewidth 2

unset multiplot
set output
