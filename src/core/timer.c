/*
 * Hierarchical timer wheel (see timer.h). Invariant: a timer at level L
 * agrees with w->now on every digit above L and is strictly ahead of it in
 * digit L, so its slot is visited exactly when now reaches the slot's start;
 * it is then fired (if due) or reinserted at a lower level.
 */
#include "core/timer.h"

#include <string.h>

static inline uint64_t level_shift_right(uint64_t v, unsigned level)
{
    unsigned s = level * TW_BITS;
    return s >= 64 ? 0 : v >> s;
}

static void link_into(struct timer **head, struct timer *t)
{
    t->next = *head;
    if (t->next)
        t->next->pprev = &t->next;
    *head = t;
    t->pprev = head;
}

static void unlink_timer(struct timer_wheel *w, struct timer *t)
{
    *t->pprev = t->next;
    if (t->next)
        t->next->pprev = t->pprev;
    if (t->level < TW_LEVELS && !w->slot[t->level][t->slot])
        w->pending[t->level] &= ~(1ull << t->slot);
    t->next = 0;
    t->pprev = 0;
}

/* Start time of the slot that @t occupies at @level (a lower bound on its expiry). */
static uint64_t slot_start(uint64_t expires, unsigned level)
{
    unsigned s = level * TW_BITS;
    return s >= 64 ? 0 : expires & ~((1ull << s) - 1);
}

static void insert(struct timer_wheel *w, struct timer *t)
{
    uint64_t e = t->expires;
    if (e <= w->now) {
        t->level = TW_LEVELS;
        t->slot = 0;
        link_into(&w->due, t);
        w->hint = 0;
        return;
    }
    unsigned level = (63u - (unsigned)__builtin_clzll(e ^ w->now)) / TW_BITS;
    unsigned slot = (unsigned)(level_shift_right(e, level) & (TW_SLOTS - 1));
    t->level = (uint8_t)level;
    t->slot = (uint8_t)slot;
    link_into(&w->slot[level][slot], t);
    w->pending[level] |= 1ull << slot;
    uint64_t start = slot_start(e, level);
    if (start < w->hint)
        w->hint = start;
}

void timer_wheel_init(struct timer_wheel *w, uint64_t now_ns)
{
    memset(w, 0, sizeof(*w));
    w->now = now_ns;
    w->hint = UINT64_MAX;
}

void timer_arm(struct timer_wheel *w, struct timer *t, uint64_t expires_ns)
{
    if (t->pprev)
        unlink_timer(w, t);
    else
        w->armed++;
    t->expires = expires_ns;
    insert(w, t);
}

void timer_cancel(struct timer_wheel *w, struct timer *t)
{
    if (!t->pprev)
        return;
    unlink_timer(w, t);
    w->armed--;
}

static void recompute_hint(struct timer_wheel *w)
{
    uint64_t hint = w->due ? 0 : UINT64_MAX;
    for (unsigned level = 0; level < TW_LEVELS && hint; level++) {
        uint64_t p = w->pending[level];
        if (!p)
            continue;
        unsigned cur = (unsigned)(level_shift_right(w->now, level) & (TW_SLOTS - 1));
        /* Pending slots are all ahead of the current digit (see the invariant). */
        uint64_t ahead = cur == 63 ? 0 : p & ~((2ull << cur) - 1);
        if (!ahead)
            ahead = p; /* cannot happen while the invariant holds; stay safe */
        unsigned s = (unsigned)__builtin_ctzll(ahead);
        unsigned sh = level * TW_BITS;
        uint64_t above = (sh + TW_BITS >= 64) ? 0 : (w->now >> (sh + TW_BITS)) << (sh + TW_BITS);
        uint64_t start = above | ((uint64_t)s << sh);
        if (start < hint)
            hint = start;
    }
    w->hint = hint;
}

/* Moves the timers of slot (level, s) to @fire or back into the wheel. */
static void process_slot(struct timer_wheel *w, unsigned level, unsigned s, struct timer **fire)
{
    struct timer *t = w->slot[level][s];
    w->slot[level][s] = 0;
    w->pending[level] &= ~(1ull << s);
    while (t) {
        struct timer *next = t->next;
        t->next = 0;
        t->pprev = 0;
        if (t->expires <= w->now) {
            t->level = TW_LEVELS;
            link_into(fire, t);
        } else {
            insert(w, t);
        }
        t = next;
    }
}

void timer_advance_slow(struct timer_wheel *w, uint64_t now_ns)
{
    struct timer *fire = 0;
    uint64_t old = w->now;
    if (now_ns < old)
        now_ns = old;
    w->now = now_ns;

    /* Timers armed in the past. */
    while (w->due) {
        struct timer *t = w->due;
        unlink_timer(w, t);
        t->level = TW_LEVELS;
        link_into(&fire, t);
    }

    for (unsigned level = 0; level < TW_LEVELS; level++) {
        uint64_t oi = level_shift_right(old, level);
        uint64_t ni = level_shift_right(now_ns, level);
        if (oi == ni)
            break; /* higher digits did not move either */
        if (!w->pending[level])
            continue;
        if (ni - oi >= TW_SLOTS) {
            uint64_t p = w->pending[level];
            while (p) {
                unsigned s = (unsigned)__builtin_ctzll(p);
                p &= p - 1;
                process_slot(w, level, s, &fire);
            }
        } else {
            for (uint64_t i = oi + 1; i <= ni; i++) {
                unsigned s = (unsigned)(i & (TW_SLOTS - 1));
                if (w->pending[level] & (1ull << s))
                    process_slot(w, level, s, &fire);
            }
        }
    }
    recompute_hint(w);

    /* Fire one by one: a callback may re-arm its timer or cancel another
     * timer that is still on this list (its pprev points into the list). */
    while (fire) {
        struct timer *t = fire;
        fire = t->next;
        if (fire)
            fire->pprev = &fire;
        t->next = 0;
        t->pprev = 0;
        w->armed--;
        w->fired++;
        t->fn(t);
    }
}

uint64_t timer_next(const struct timer_wheel *w)
{
    return w->armed ? w->hint : UINT64_MAX;
}
