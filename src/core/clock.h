/*
 * Monotonic time in nanoseconds for one runtime instance. The default source
 * is the TSC, calibrated once per process against CLOCK_MONOTONIC (when the
 * CPU says its TSC is invariant), else clock_gettime. A clock can also be
 * virtual: tests set and advance it, so every timer runs on their time and
 * nothing waits for the wall clock.
 */
#ifndef DEMI_CORE_CLOCK_H
#define DEMI_CORE_CLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <x86intrin.h>

enum clock_kind { CLOCK_KIND_TSC = 0, CLOCK_KIND_MONO, CLOCK_KIND_VIRTUAL };

struct clock {
    int kind;
    uint64_t virt_ns;  /* CLOCK_KIND_VIRTUAL: the current time */
    uint64_t tsc_base; /* CLOCK_KIND_TSC: ns = ns_base + ((tsc - tsc_base) * mult >> 32) */
    uint64_t ns_base;
    uint64_t mult;
};

/* Real clock (TSC when usable). Calibration runs once per process (~2 ms). */
void clock_init(struct clock *c);
void clock_init_virtual(struct clock *c, uint64_t start_ns);
/* Virtual clocks only: moves time forward (never backward). */
void clock_advance(struct clock *c, uint64_t delta_ns);
void clock_set(struct clock *c, uint64_t now_ns);
/* TSC ticks per second (0 if the TSC is not used). */
uint64_t clock_tsc_hz(void);

static inline uint64_t clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t clock_now(const struct clock *c)
{
    if (c->kind == CLOCK_KIND_TSC) {
        uint64_t d = __rdtsc() - c->tsc_base;
        return c->ns_base + (uint64_t)(((unsigned __int128)d * c->mult) >> 32);
    }
    if (c->kind == CLOCK_KIND_VIRTUAL)
        return c->virt_ns;
    return clock_mono_ns();
}

#endif
