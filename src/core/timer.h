/*
 * Hierarchical timer wheel: 11 levels of 64 slots over 64-bit nanosecond
 * time, O(1) arm and cancel, callbacks run from timer_advance(). Timers are
 * embedded in their owners (no allocation). A timer lives at the level of
 * the highest 6-bit digit in which its expiry differs from the wheel's
 * "now", and cascades down as time approaches; a cached lower bound on the
 * next slot to process makes timer_advance() a compare when nothing is due.
 */
#ifndef DEMI_CORE_TIMER_H
#define DEMI_CORE_TIMER_H

#include <stdbool.h>
#include <stdint.h>

#define TW_BITS   6
#define TW_SLOTS  64
#define TW_LEVELS 11

struct timer;
typedef void (*timer_fn)(struct timer *t);

struct timer {
    uint64_t expires; /* absolute time, ns */
    struct timer *next;
    struct timer **pprev; /* NULL when not armed */
    timer_fn fn;
    uint8_t level; /* TW_LEVELS: on the due list */
    uint8_t slot;
};

struct timer_wheel {
    uint64_t now;
    uint64_t hint; /* no slot needs processing before this time */
    uint64_t pending[TW_LEVELS];
    struct timer *due; /* armed for a time already past */
    uint64_t armed;
    uint64_t fired;
    struct timer *slot[TW_LEVELS][TW_SLOTS];
};

void timer_wheel_init(struct timer_wheel *w, uint64_t now_ns);

static inline void timer_init(struct timer *t, timer_fn fn)
{
    t->expires = 0;
    t->next = 0;
    t->pprev = 0;
    t->fn = fn;
    t->level = 0;
    t->slot = 0;
}

static inline bool timer_armed(const struct timer *t)
{
    return t->pprev != 0;
}

/* Arms (or re-arms) @t to fire at absolute time @expires_ns. A time in the
 * past fires at the next timer_advance(). */
void timer_arm(struct timer_wheel *w, struct timer *t, uint64_t expires_ns);
/* Disarms @t; no effect if it is not armed. */
void timer_cancel(struct timer_wheel *w, struct timer *t);

void timer_advance_slow(struct timer_wheel *w, uint64_t now_ns);

/* Moves the wheel to @now_ns, firing every timer with expires <= now_ns. */
static inline void timer_advance(struct timer_wheel *w, uint64_t now_ns)
{
    if (now_ns < w->hint) {
        return;
    }
    timer_advance_slow(w, now_ns);
}

/* Lower bound on the next expiry (UINT64_MAX if nothing is armed). */
uint64_t timer_next(const struct timer_wheel *w);

#endif
