/*
 * Runtime instance and its wait loop (see runtime.h). The wait loop is the
 * only place libdemi spins; it sleeps only through a libOS idle hook, never
 * longer than the next timer or the caller's deadline, and other threads
 * wake it through the runtime's bell.
 */
#include "core/runtime.h"

#include "core/common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int rt_create(struct runtime **out, const struct config *cfg, bool virtual_clock)
{
    struct runtime *rt = calloc(1, sizeof(*rt));
    if (!rt)
        return ENOMEM;
    rt->cfg = *cfg;
    if (virtual_clock)
        clock_init_virtual(&rt->clock, 1000000000ull);
    else
        clock_init(&rt->clock);
    rt->now = clock_now(&rt->clock);
    timer_wheel_init(&rt->timers, rt->now);
    sched_init(&rt->sched);
    qtable_init(&rt->qtable);
    rt->spin_ns = (uint64_t)cfg->spin_us * 1000u;
    int err = bell_create(&rt->bell);
    if (!err)
        err = heap_create(&rt->heap, cfg->heap_size, cfg->hugepages);
    if (err) {
        bell_unref(rt->bell);
        sched_fini(&rt->sched);
        qtable_fini(&rt->qtable);
        free(rt);
        return err;
    }
    heap_set_reserve(rt->heap, config_heap_reserve(cfg));
    *out = rt;
    return 0;
}

void rt_destroy(struct runtime *rt)
{
    if (!rt)
        return;
    sched_fini(&rt->sched);
    qtable_fini(&rt->qtable);
    heap_destroy(rt->heap);
    bell_unref(rt->bell);
    config_free(&rt->cfg);
    free(rt);
}

void rt_set_idle(struct runtime *rt, rt_idle_fn fn, void *arg)
{
    rt->idle_fn = fn;
    rt->idle_arg = arg;
}

void rt_set_pending(struct runtime *rt, rt_pending_fn fn, void *arg)
{
    rt->pending_fn = fn;
    rt->pending_arg = arg;
}

int rt_wait(struct runtime *rt, bool (*done)(void *arg), void *arg, uint64_t deadline_ns)
{
    uint64_t marks = rt->sched.completions + rt->activity;
    if (marks != rt->quiet_marks || !rt->quiet_timed_out) {
        rt->quiet_marks = marks;
        rt->quiet_since = clock_now(&rt->clock);
    }
    rt->quiet_timed_out = false;
    for (;;) {
        rt_poll(rt);
        if (done(arg))
            return 0;
        /* The TSC clock is calibrated against CLOCK_MONOTONIC, and a timeout
         * must never end early: the monotonic clock has the last word. */
        if (rt->now >= deadline_ns && (rt->clock.kind != CLOCK_KIND_TSC || clock_mono_ns() >= deadline_ns)) {
            rt->quiet_timed_out = true;
            return ETIMEDOUT;
        }
        uint64_t m = rt->sched.completions + rt->activity;
        if (m != rt->quiet_marks) {
            rt->quiet_marks = m;
            rt->quiet_since = rt->now;
            continue;
        }
        if (!rt->idle_fn || rt->idle_blockers || rt->now - rt->quiet_since < rt->spin_ns)
            continue;
        uint64_t until = timer_next(&rt->timers);
        if (deadline_ns < until)
            until = deadline_ns;
        if (rt->clock.kind == CLOCK_KIND_VIRTUAL)
            continue; /* tests drive time themselves */
        /* Armed before the last look for other threads' work: either we
         * see it here (or the idle hook sees its own), or they ring. */
        bell_arm(rt->bell);
        if (!rt->pending_fn || !rt->pending_fn(rt->pending_arg))
            rt->idle_fn(rt->idle_arg, until == UINT64_MAX ? UINT64_MAX : (until > rt->now ? until - rt->now : 0));
        bell_disarm(rt->bell);
    }
}

static void task_timer_fire(struct timer *t)
{
    struct task_timer *tt = container_of(t, struct task_timer, tm);
    sched_wake(tt->sched, tt->task);
}

void task_timer_init(struct task_timer *tt, struct runtime *rt, struct sched_task *task)
{
    timer_init(&tt->tm, task_timer_fire);
    tt->sched = &rt->sched;
    tt->task = task;
}
