/*
 * Clock calibration: measures the TSC against CLOCK_MONOTONIC once per
 * process. Uses the TSC only when CPUID reports it invariant; otherwise
 * every read is a clock_gettime (vDSO, ~20 ns).
 */
#include "core/clock.h"

#include <cpuid.h>
#include <pthread.h>

static pthread_once_t calib_once = PTHREAD_ONCE_INIT;
static uint64_t tsc_hz_g;   /* 0: TSC unusable */
static uint64_t tsc_mult_g; /* ns per tick, 32.32 fixed point */

static bool tsc_invariant(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(0x80000000u, &a, &b, &c, &d) || a < 0x80000007u)
        return false;
    __get_cpuid(0x80000007u, &a, &b, &c, &d);
    return (d >> 8) & 1; /* CPUID.80000007H:EDX[8] = invariant TSC */
}

/* One TSC read between two monotonic reads; of a few tries, the one with
 * the tightest bracket (a VM may be preempted between any two reads). */
static void sample(uint64_t *ns, uint64_t *tsc)
{
    uint64_t best = UINT64_MAX;
    *ns = clock_mono_ns(); /* the first try always replaces these; -O3 cannot tell */
    *tsc = __rdtsc();
    for (int i = 0; i < 8; i++) {
        uint64_t a = clock_mono_ns(), t = __rdtsc(), b = clock_mono_ns();
        if (b - a < best) {
            best = b - a;
            *ns = a + (b - a) / 2;
            *tsc = t;
        }
    }
}

static void calibrate(void)
{
    if (!tsc_invariant())
        return;
    /* Two bracketed samples 10 ms apart. */
    uint64_t n0, t0, n1, t1;
    sample(&n0, &t0);
    do
        sample(&n1, &t1);
    while (n1 - n0 < 10000000);
    if (t1 <= t0)
        return;
    tsc_hz_g = (uint64_t)((double)(t1 - t0) * 1e9 / (double)(n1 - n0));
    tsc_mult_g = (uint64_t)(((unsigned __int128)1000000000u << 32) / tsc_hz_g);
}

uint64_t clock_tsc_hz(void)
{
    pthread_once(&calib_once, calibrate);
    return tsc_hz_g;
}

void clock_init(struct clock *c)
{
    pthread_once(&calib_once, calibrate);
    c->virt_ns = 0;
    if (tsc_hz_g) {
        c->kind = CLOCK_KIND_TSC;
        c->mult = tsc_mult_g;
        c->ns_base = clock_mono_ns();
        c->tsc_base = __rdtsc();
    } else {
        c->kind = CLOCK_KIND_MONO;
        c->mult = 0;
        c->ns_base = 0;
        c->tsc_base = 0;
    }
}

void clock_init_virtual(struct clock *c, uint64_t start_ns)
{
    c->kind = CLOCK_KIND_VIRTUAL;
    c->virt_ns = start_ns;
    c->tsc_base = c->ns_base = c->mult = 0;
}

void clock_advance(struct clock *c, uint64_t delta_ns)
{
    if (c->kind == CLOCK_KIND_VIRTUAL)
        c->virt_ns += delta_ns;
}

void clock_set(struct clock *c, uint64_t now_ns)
{
    if (c->kind == CLOCK_KIND_VIRTUAL && now_ns > c->virt_ns)
        c->virt_ns = now_ns;
}
