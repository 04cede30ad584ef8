/*
 * Runtime on a virtual clock: a background task woken by its own timer
 * runs exactly at each deadline and not before; a task waiting for I/O is
 * woken by an event; rt_wait gives up at its deadline; several runtimes
 * live in one thread independently.
 */
#include "core/runtime.h"
#include "tcheck.h"

#include <errno.h>

struct ticker {
    struct task_timer tt;
    struct runtime *rt;
    uint64_t period;
    int ticks;
    uint64_t last;
    uint64_t next; /* deadline of the next tick (no drift) */
};

static int tick_poll(struct sched *s, struct sched_task *t)
{
    (void)s;
    struct ticker *k = t->owner;
    k->ticks++;
    k->last = k->rt->now;
    CHECK(k->rt->now >= k->next);
    k->next += k->period;
    if (k->ticks < 10)
        task_timer_arm(k->rt, &k->tt, k->next);
    return k->ticks < 10 ? SCHED_PENDING : SCHED_DONE;
}

static bool never(void *arg)
{
    (void)arg;
    return false;
}

int main(void)
{
    struct config cfg;
    config_defaults(&cfg);
    cfg.heap_size = 16u << 20;
    cfg.hugepages = CONFIG_HUGE_OFF;
    struct runtime *a, *b;
    CHECK_EQ(rt_create(&a, &cfg, true), 0);
    config_defaults(&cfg);
    cfg.heap_size = 16u << 20;
    cfg.hugepages = CONFIG_HUGE_OFF;
    CHECK_EQ(rt_create(&b, &cfg, true), 0);

    struct ticker k = {.rt = a, .period = 1000000};
    struct sched_task *t = sched_alloc(&a->sched, tick_poll, &k);
    t->background = 1;
    task_timer_init(&k.tt, a, t);
    uint64_t start = a->now;
    k.next = start + k.period;
    task_timer_arm(a, &k.tt, k.next);
    /* Not due yet: nothing runs. */
    clock_advance(&a->clock, k.period - 1);
    rt_poll(a);
    CHECK_EQ(k.ticks, 0);
    /* Step time in odd increments: each tick happens at its deadline's first poll. */
    for (int i = 0; i < 40000 && k.ticks < 10; i++) {
        clock_advance(&a->clock, 777);
        rt_poll(a);
        if (k.ticks)
            CHECK(k.last >= start + (uint64_t)k.ticks * k.period &&
                  k.last < start + (uint64_t)k.ticks * k.period + 777);
    }
    CHECK_EQ(k.ticks, 10);
    CHECK_EQ(a->sched.live, 0); /* the background task freed itself when done */

    /* The other runtime saw none of it. */
    CHECK_EQ(b->timers.fired, 0);
    CHECK(b->now != a->now);

    /* rt_wait with a deadline already passed: one pass, then ETIMEDOUT. */
    CHECK_EQ(rt_wait(b, never, NULL, b->now), ETIMEDOUT);

    rt_destroy(a);
    rt_destroy(b);
    printf("runtime: ok\n");
    return 0;
}
