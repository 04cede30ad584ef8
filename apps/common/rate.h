/*
 * Throughput of a one-way stream in one-second samples, shared by the
 * stream modes of demi-echo and bench/linux_echo so that both report the
 * same figures in the same JSON shape: bytes are counted as they complete
 * (a push's result, a send's return), from rate_start to the end of the
 * run.
 */
#ifndef DEMI_APP_RATE_H
#define DEMI_APP_RATE_H

#include <stddef.h>
#include <stdint.h>

#define RATE_MAX_SAMPLES 3600

struct rate {
    uint64_t start_ns;  /* 0: not started (the warm-up) */
    uint64_t end_ns;    /* start_ns plus the run's length */
    uint64_t sample_ns; /* when the current sample began */
    uint64_t sample_bytes, bytes;
    uint32_t nsamples;
    double samples[RATE_MAX_SAMPLES]; /* bytes per second */
};

/* Starts the measured run of SECONDS at NOW_NS; returns when it ends. */
uint64_t rate_start(struct rate *r, uint64_t now_ns, double seconds);
/* BYTES completed at NOW_NS (ignored before rate_start). */
void rate_add(struct rate *r, uint64_t bytes, uint64_t now_ns);
/* Closes the last whole sample and prints one JSON line: the mean over
 * the run and its one-second samples. */
void rate_print(struct rate *r, const char *libos, size_t size);

#endif
