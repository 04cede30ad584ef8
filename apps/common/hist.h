/*
 * Latency histogram for the applications and benchmarks: log-linear
 * buckets (64 per power of two, so under 1.6% error), nanosecond values,
 * constant-time add, no allocation. Shared by demi-echo and the Linux
 * baseline so both report percentiles the same way.
 */
#ifndef DEMI_APPS_HIST_H
#define DEMI_APPS_HIST_H

#include <stdint.h>
#include <stdio.h>

#define HIST_SUB     64
#define HIST_BUCKETS (59 * HIST_SUB)

struct hist {
    uint64_t n;
    uint64_t min;
    uint64_t max;
    double sum;
    uint64_t b[HIST_BUCKETS];
};

void hist_init(struct hist *h);
void hist_add(struct hist *h, uint64_t ns);
void hist_merge(struct hist *into, const struct hist *from);
/* Value at quantile q in [0, 1] (midpoint of its bucket); 0 if empty. */
uint64_t hist_quantile(const struct hist *h, double q);
double hist_mean(const struct hist *h);
/* Writes the CDF, one line per non-empty bucket: "<latency_us> <fraction <= it>".
 * Returns 0 or an errno. */
int hist_write_cdf(const struct hist *h, const char *path);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t hist_now_ns(void);

#endif
