/*
 * One libdemi instance: the scheduler, timer wheel, clock, heap, queue
 * table and configuration that a thread's libOSes share. Nothing here is
 * global: tests create several runtimes in one thread, with virtual clocks.
 * The runtime knows libOSes only through the idle hooks they register.
 */
#ifndef DEMI_CORE_RUNTIME_H
#define DEMI_CORE_RUNTIME_H

#include "core/bell.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/qtable.h"
#include "core/sched.h"
#include "core/timer.h"
#include "mem/heap.h"

#define RT_MAX_LIBOS 4

struct libos;

/* Blocks for at most @timeout_ns (UINT64_MAX: no limit) waiting for device
 * events, handling whatever arrives; it must also wake when the runtime's
 * bell (rt->bell->fd) becomes readable. Registered by libOSes that can
 * block (catnap: epoll; the stack, when its device has a wait). */
typedef void (*rt_idle_fn)(void *arg, uint64_t timeout_ns);

/* Whether work from another thread is waiting (looked at after the bell is
 * armed, before sleeping): registered by the memory libOS. */
typedef bool (*rt_pending_fn)(void *arg);

struct runtime {
    struct clock clock;
    uint64_t now; /* clock_now() at the start of the current pass */
    struct sched sched;
    struct timer_wheel timers;
    struct heap *heap;
    struct qtable qtable;
    struct config cfg;
    struct libos *los[RT_MAX_LIBOS]; /* los[0] is the network libOS */
    int nlos;
    rt_idle_fn idle_fn; /* at most one blocking libOS */
    void *idle_arg;
    struct bell *bell; /* wakes the idle wait from other threads */
    rt_pending_fn pending_fn;
    void *pending_arg;
    int idle_blockers; /* libOSes that cannot block: idling is off */
    uint64_t activity; /* bumped by libOSes on device events */
    uint64_t spin_ns;
    /* The quiet period rt_wait measures against spin_ns, kept across calls
     * that time out: an application that waits in short slices (a 100 ms
     * tick) spins once per quiet period, not once per slice. */
    uint64_t quiet_marks; /* completions + activity when it began */
    uint64_t quiet_since;
    bool quiet_timed_out; /* the last rt_wait timed out */
};

/* Creates a runtime with a copy of @cfg (the runtime owns the copy's EAL
 * strings afterwards; the caller must not free them). @virtual_clock: time
 * only moves when the test says so. */
int rt_create(struct runtime **out, const struct config *cfg, bool virtual_clock);
/* Destroys the runtime; its libOSes must be destroyed first. */
void rt_destroy(struct runtime *rt);

/* One pass: read the clock, fire due timers, run ready tasks. */
static inline void rt_poll(struct runtime *rt)
{
    rt->now = clock_now(&rt->clock);
    timer_advance(&rt->timers, rt->now);
    sched_run(&rt->sched);
}

/* Drives passes until done(arg) is true (0) or the clock reaches
 * @deadline_ns (ETIMEDOUT; UINT64_MAX waits forever). After spin_us without
 * progress it sleeps in the idle hook, if one is registered and no libOS
 * needs polling; a call that timed out hands its quiet period on to the
 * next call. Always runs at least one pass. */
int rt_wait(struct runtime *rt, bool (*done)(void *arg), void *arg, uint64_t deadline_ns);

void rt_set_idle(struct runtime *rt, rt_idle_fn fn, void *arg);
void rt_set_pending(struct runtime *rt, rt_pending_fn fn, void *arg);

/* A timer that wakes a task: how background work (retransmission, delayed
 * ACKs, ARP retries) sleeps until a deadline. Embed it in the task's owner. */
struct task_timer {
    struct timer tm;
    struct sched *sched;
    struct sched_task *task;
};

void task_timer_init(struct task_timer *tt, struct runtime *rt, struct sched_task *task);

/* Wakes the task at @deadline_ns (re-arming moves the deadline). */
static inline void task_timer_arm(struct runtime *rt, struct task_timer *tt, uint64_t deadline_ns)
{
    timer_arm(&rt->timers, &tt->tm, deadline_ns);
}

static inline void task_timer_cancel(struct runtime *rt, struct task_timer *tt)
{
    timer_cancel(&rt->timers, &tt->tm);
}

#endif
