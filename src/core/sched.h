/*
 * The coroutine scheduler: stackless tasks (a poll function over its own
 * state) in pages of 64. Each page has a `ready` mask and a summary mask has
 * one bit per page, so a pass visits only runnable tasks, walking set bits
 * with count-trailing-zeros. Waking is two ORs. A task is named to the
 * application by a qtoken: slot index in the low 32 bits and the slot's
 * generation in the high 32, so a consumed token is detected, never
 * confused with the slot's next task.
 *
 * Single-threaded by design (one scheduler per runtime instance); nothing
 * here takes a lock or an atomic.
 */
#ifndef DEMI_CORE_SCHED_H
#define DEMI_CORE_SCHED_H

#include <demi/types.h>

#include <stdbool.h>
#include <stdint.h>

#define SCHED_PAGE      64
#define SCHED_MAX_TASKS (1u << 22)

/* What a poll function returns. */
enum {
    SCHED_PENDING = 0, /* sleep until sched_wake() */
    SCHED_YIELD = 1,   /* run again on the next pass */
    SCHED_DONE = 2
}; /* finished: t->qr is filled in (qtoken tasks) */

enum { TASK_FREE = 0, TASK_ACTIVE = 1, TASK_DONE = 2 };

struct sched;
struct sched_task;
struct task_list;
typedef int (*sched_fn)(struct sched *s, struct sched_task *t);

struct sched_task {
    sched_fn poll;
    uint32_t idx;
    uint32_t gen;
    uint8_t state;
    uint8_t background; /* not a qtoken: freed when it returns SCHED_DONE */
    uint16_t kind;      /* owner-defined */
    int32_t qd;         /* queue descriptor reported in the result */
    struct sched_task *next, *prev;
    struct task_list *list; /* the list this task is on, or NULL */
    void *owner;            /* owner-defined (queue, connection, ...) */
    uint64_t arg[6];        /* owner-defined state */
    demi_qresult_t qr;      /* the result, once done */
};

struct task_list {
    struct sched_task *head, *tail;
    uint32_t len;
};

struct sched_page {
    uint64_t ready;
    struct sched_task task[SCHED_PAGE];
};

struct sched {
    struct sched_page **pages;
    uint32_t npages;
    uint32_t cap_pages;
    uint64_t *summary; /* bit p: page p has ready tasks */
    uint32_t nsummary;
    struct sched_task *free; /* free slots, linked through next */
    struct task_list done;   /* completed qtoken tasks, oldest first */
    uint64_t completions;    /* progress counter */
    uint64_t polls;
    uint32_t live;
};

int sched_init(struct sched *s);
void sched_fini(struct sched *s);

/* A new task in state ACTIVE, not yet ready. NULL (errno ENOMEM) when out of
 * slots. */
struct sched_task *sched_alloc(struct sched *s, sched_fn poll, void *owner);

static inline void sched_wake(struct sched *s, struct sched_task *t)
{
    uint32_t p = t->idx / SCHED_PAGE;
    s->pages[p]->ready |= 1ull << (t->idx % SCHED_PAGE);
    s->summary[p / 64] |= 1ull << (p % 64);
}

/* One pass over the runnable tasks. Returns how many were polled. */
unsigned sched_run(struct sched *s);

/* Marks a qtoken task done (t->qr's opcode, ret and value are the caller's;
 * qd and qt are filled in here) and queues it for demi_wait_next_n. Frees a
 * background task. The task must not be on any list. */
void sched_complete(struct sched *s, struct sched_task *t);

/* Completes @t as DEMI_OPC_FAILED with @err. */
void sched_fail(struct sched *s, struct sched_task *t, int err);

static inline demi_qtoken_t sched_qtoken(const struct sched_task *t)
{
    return ((uint64_t)t->gen << 32) | t->idx;
}

/* The live qtoken task named by @qt, or NULL if it is stale or unknown. */
struct sched_task *sched_lookup(struct sched *s, demi_qtoken_t qt);

/* Copies an array's header and used segments (not all DEMI_SGARRAY_MAXSIZE). */
void sched_copy_sga(demi_sgarray_t *dst, const demi_sgarray_t *src);

/* Copies the result of a done task out, then frees its slot. */
void sched_harvest(struct sched *s, struct sched_task *t, demi_qresult_t *out);

/* Frees a task's slot (it must be off every list). */
void sched_free(struct sched *s, struct sched_task *t);

/* Intrusive FIFO lists of tasks (a task is on at most one). */
static inline void tlist_push(struct task_list *l, struct sched_task *t)
{
    t->next = 0;
    t->prev = l->tail;
    if (l->tail)
        l->tail->next = t;
    else
        l->head = t;
    l->tail = t;
    t->list = l;
    l->len++;
}

static inline void tlist_remove(struct sched_task *t)
{
    struct task_list *l = t->list;
    if (!l)
        return;
    if (t->prev)
        t->prev->next = t->next;
    else
        l->head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    else
        l->tail = t->prev;
    t->next = t->prev = 0;
    t->list = 0;
    l->len--;
}

static inline struct sched_task *tlist_pop(struct task_list *l)
{
    struct sched_task *t = l->head;
    if (t)
        tlist_remove(t);
    return t;
}

#endif
