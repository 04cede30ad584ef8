/*
 * catmem: memory queues between the instances of one process
 * (demi_create_pipe, demi_open_pipe). A pipe is a named, two-way message
 * channel with two ends: the instance that creates it holds end 0, the one
 * that opens it end 1 (the same instance may hold both). Each direction is
 * a single-producer single-consumer ring of messages, since each end
 * belongs to one instance and so to one thread; nothing on the data path
 * takes a lock. A push copies the array into one message (malloc'd: no
 * instance's heap), a pop copies the oldest message into a new array of
 * the popping instance's heap, so no buffer ever crosses heaps.
 *
 * Bounds, per direction: PIPE_SLOTS messages and PIPE_BYTES bytes (one
 * message of any size fits an empty direction). A push beyond them waits
 * until the other end pops. A pop waits for a message; once the other end
 * has closed and every message is taken it completes with an empty array
 * (end of file), and a push then fails with EPIPE. The registry of names
 * (a mutex) is touched only by create, open and close.
 *
 * Waiting: an instance with a push or pop waiting on a pipe retries it on
 * every pass of its wait loop, and when the loop goes to sleep (after
 * libdemi.spin_us) it sleeps in its device's idle wait as usual: each end
 * holds its runtime's bell (core/bell.h), and the other end rings it after
 * every message it puts in and every message it takes out, and when it
 * closes.
 */
#include "core/bell.h"
#include "core/common.h"
#include "core/log.h"
#include "core/runtime.h"
#include "libos/libos.h"
#include "mem/sga.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define PIPE_SLOTS 1024u          /* messages in flight per direction */
#define PIPE_BYTES ((uint64_t)64 << 20) /* bytes in flight per direction */
#define PIPE_NAME_MAX 255

enum { OP_PUSH = 1, OP_POP = 2 };

struct msg {
    uint64_t len;
    uint8_t data[];
};

/* Messages toward one end: produced by the other end, consumed by it. */
struct ring {
    _Atomic uint32_t head; /* next to consume (consumer's) */
    _Atomic uint32_t tail; /* next to fill (producer's) */
    _Atomic uint64_t bytes; /* in flight: the producer adds, the consumer subtracts */
    struct msg *slot[PIPE_SLOTS];
};

struct pipe {
    struct pipe *next; /* the registry's list */
    char name[PIPE_NAME_MAX + 1];
    bool opened;             /* end 1 was taken (registry lock) */
    int ends;                /* ends held (registry lock): freed at 0 */
    _Atomic bool closed[2];  /* end e closed */
    /* End e's runtime's bell: set when the end is made (NULL before end 1
     * is opened: nobody to wake), released with the pipe. */
    struct bell *_Atomic bell[2];
    struct ring to[2];       /* to[e]: messages for end e */
};

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static struct pipe *registry;

struct catmem;

/* One end of a pipe, in one instance. */
struct memq {
    struct catmem *cm;
    struct pipe *p;
    int end;
    struct task_list pushes, pops; /* waiting, oldest first */
    struct memq *next, *prev;      /* the instance's ends with waiting tasks */
    bool listed;
    struct memq *anext, *aprev; /* every end of the instance */
};

struct catmem {
    struct libos base;
    struct sched_task *poller; /* retries waiting tasks while any wait */
    struct memq *waiting;      /* ends with waiting tasks */
    struct memq *all;          /* every open end */
    uint64_t st_pushes, st_pops;
};

static struct catmem *mem_of(struct libos *l)
{
    return (struct catmem *)l;
}

/* ---- the rings ---- */

/* Whether @len more bytes fit (one message of any size fits an empty
 * ring); asked by the producer. */
static bool ring_room(struct ring *r, uint64_t len)
{
    uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint32_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    if (tail - head == PIPE_SLOTS)
        return false;
    return tail == head || atomic_load_explicit(&r->bytes, memory_order_relaxed) + len <= PIPE_BYTES;
}

/* Appends @m, if the bounds allow. */
static bool ring_put(struct ring *r, struct msg *m)
{
    if (!ring_room(r, m->len))
        return false;
    uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    atomic_fetch_add_explicit(&r->bytes, m->len, memory_order_relaxed);
    r->slot[tail % PIPE_SLOTS] = m;
    atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
    return true;
}

static struct msg *ring_peek(struct ring *r)
{
    uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (head == atomic_load_explicit(&r->tail, memory_order_acquire))
        return NULL;
    return r->slot[head % PIPE_SLOTS];
}

static void ring_drop_head(struct ring *r)
{
    uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    struct msg *m = r->slot[head % PIPE_SLOTS];
    atomic_fetch_sub_explicit(&r->bytes, m->len, memory_order_relaxed);
    atomic_store_explicit(&r->head, head + 1, memory_order_release);
}

/* Rings end @e's instance, if the end exists yet. */
static void wake_end(struct pipe *p, int e)
{
    struct bell *b = atomic_load_explicit(&p->bell[e], memory_order_acquire);
    if (b)
        bell_ring(b);
}

/* Frees the pipe and what is still in it; both ends are gone. */
static void pipe_free(struct pipe *p)
{
    for (int e = 0; e < 2; e++) {
        struct msg *m;
        while ((m = ring_peek(&p->to[e]))) {
            ring_drop_head(&p->to[e]);
            free(m);
        }
        bell_unref(atomic_load(&p->bell[e]));
    }
    free(p);
}

/* ---- waiting ---- */

static void wake_poller(struct catmem *cm)
{
    if (cm->waiting)
        sched_wake(&cm->base.rt->sched, cm->poller);
}

static void list_end(struct memq *q)
{
    if (q->listed || (!q->pushes.len && !q->pops.len))
        return;
    q->listed = true;
    q->prev = NULL;
    q->next = q->cm->waiting;
    if (q->next)
        q->next->prev = q;
    q->cm->waiting = q;
    wake_poller(q->cm);
}

static void unlist_end(struct memq *q)
{
    if (!q->listed || q->pushes.len || q->pops.len)
        return;
    q->listed = false;
    if (q->prev)
        q->prev->next = q->next;
    else
        q->cm->waiting = q->next;
    if (q->next)
        q->next->prev = q->prev;
    wake_poller(q->cm);
}

/* Tries the push @t (its message in arg[0]): true when it is finished
 * (delivered or failed), and then off q->pushes. */
static bool try_push(struct memq *q, struct sched_task *t)
{
    struct catmem *cm = q->cm;
    struct msg *m = (struct msg *)(uintptr_t)t->arg[0];
    if (atomic_load_explicit(&q->p->closed[!q->end], memory_order_acquire)) {
        free(m);
        t->arg[0] = 0;
        tlist_remove(t);
        sched_fail(&cm->base.rt->sched, t, EPIPE);
        return true;
    }
    if (!ring_put(&q->p->to[!q->end], m))
        return false;
    wake_end(q->p, !q->end);
    t->arg[0] = 0;
    tlist_remove(t);
    cm->st_pushes++;
    t->qr.qr_opcode = DEMI_OPC_PUSH;
    t->qr.qr_ret = 0;
    sched_complete(&cm->base.rt->sched, t);
    return true;
}

/* Tries the pop @t: true when it is finished, and then off q->pops. */
static bool try_pop(struct memq *q, struct sched_task *t)
{
    struct catmem *cm = q->cm;
    struct runtime *rt = cm->base.rt;
    struct ring *r = &q->p->to[q->end];
    struct msg *m = ring_peek(r);
    demi_sgarray_t *sga = &t->qr.qr_value.sga;
    if (!m) {
        /* Closed, and (read after the flag) nothing left: end of file. */
        if (!atomic_load_explicit(&q->p->closed[!q->end], memory_order_acquire) || (m = ring_peek(r)))
            return m ? try_pop(q, t) : false;
        tlist_remove(t);
        memset(sga, 0, sizeof(*sga));
        t->qr.qr_opcode = DEMI_OPC_POP;
        t->qr.qr_ret = 0;
        sched_complete(&rt->sched, t);
        return true;
    }
    tlist_remove(t);
    int e = mem_sga_alloc(rt->heap, m->len, sga);
    if (e) {
        /* The message stays for a later pop. */
        sched_fail(&rt->sched, t, e);
        return true;
    }
    uint64_t off = 0;
    for (uint32_t i = 0; i < sga->sga_numsegs; i++) {
        memcpy(sga->sga_segs[i].sgaseg_buf, m->data + off, sga->sga_segs[i].sgaseg_len);
        off += sga->sga_segs[i].sgaseg_len;
    }
    ring_drop_head(r);
    free(m);
    wake_end(q->p, !q->end); /* a push there may wait for room */
    cm->st_pops++;
    t->qr.qr_opcode = DEMI_OPC_POP;
    t->qr.qr_ret = 0;
    sched_complete(&rt->sched, t);
    return true;
}

/* Runs the oldest waiting tasks of @q while they can finish. */
static void retry_end(struct memq *q)
{
    struct sched_task *t;
    while ((t = q->pushes.head) && try_push(q, t))
        ;
    while ((t = q->pops.head) && try_pop(q, t))
        ;
    unlist_end(q);
}

/* rt_pending_fn: whether a waiting operation can now finish (the bell is
 * armed: a later change rings it). */
static bool pending(void *arg)
{
    struct catmem *cm = arg;
    for (struct memq *q = cm->waiting; q; q = q->next) {
        bool peer_gone = atomic_load_explicit(&q->p->closed[!q->end], memory_order_acquire);
        if (q->pops.len && (peer_gone || ring_peek(&q->p->to[q->end])))
            return true;
        if (q->pushes.head) {
            const struct msg *m = (const struct msg *)(uintptr_t)q->pushes.head->arg[0];
            if (peer_gone || ring_room(&q->p->to[!q->end], m->len))
                return true;
        }
    }
    return false;
}

static int poller(struct sched *s, struct sched_task *t)
{
    (void)s;
    struct catmem *cm = t->owner;
    for (struct memq *q = cm->waiting, *next; q; q = next) {
        next = q->next;
        retry_end(q);
    }
    return cm->waiting ? SCHED_YIELD : SCHED_PENDING;
}

/* ---- operations ---- */

static int mem_push(struct libos *l, void *qv, const demi_sgarray_t *sga, const struct sockaddr_in *to,
                    struct sched_task *t)
{
    (void)l;
    struct memq *q = qv;
    if (to)
        return ENOTSOCK; /* demi_pushto: a pipe has no addresses */
    int64_t len = mem_sga_len(sga);
    struct msg *m = malloc(sizeof(*m) + (size_t)len);
    if (!m)
        return ENOMEM;
    m->len = (uint64_t)len;
    uint64_t off = 0;
    for (uint32_t i = 0; i < sga->sga_numsegs; i++) {
        if (sga->sga_segs[i].sgaseg_len)
            memcpy(m->data + off, sga->sga_segs[i].sgaseg_buf, sga->sga_segs[i].sgaseg_len);
        off += sga->sga_segs[i].sgaseg_len;
    }
    t->owner = q;
    t->kind = OP_PUSH;
    t->arg[0] = (uint64_t)(uintptr_t)m;
    if (!q->pushes.len && try_push(q, t))
        return 0;
    tlist_push(&q->pushes, t);
    list_end(q);
    return 0;
}

static int mem_pop(struct libos *l, void *qv, struct sched_task *t)
{
    (void)l;
    struct memq *q = qv;
    t->owner = q;
    t->kind = OP_POP;
    if (!q->pops.len && try_pop(q, t))
        return 0;
    tlist_push(&q->pops, t);
    list_end(q);
    return 0;
}

static void cancel(struct memq *q, struct task_list *l)
{
    struct sched_task *t;
    while ((t = l->head)) {
        tlist_remove(t);
        if (t->kind == OP_PUSH)
            free((void *)(uintptr_t)t->arg[0]);
        sched_fail(&q->cm->base.rt->sched, t, ECANCELED);
    }
}

/* Marks @q's end closed and frees it; the pipe goes with its last end. */
static void end_release(struct memq *q)
{
    struct catmem *cm = q->cm;
    if (q->aprev)
        q->aprev->anext = q->anext;
    else
        cm->all = q->anext;
    if (q->anext)
        q->anext->aprev = q->aprev;
    struct pipe *p = q->p;
    atomic_store_explicit(&p->closed[q->end], true, memory_order_release);
    wake_end(p, !q->end); /* its pops see the end, its pushes EPIPE */
    pthread_mutex_lock(&registry_mu);
    bool last = --p->ends == 0;
    if (last) {
        for (struct pipe **pp = &registry; *pp; pp = &(*pp)->next) {
            if (*pp == p) {
                *pp = p->next;
                break;
            }
        }
    }
    pthread_mutex_unlock(&registry_mu);
    if (last)
        pipe_free(p);
    free(q);
}

static int mem_close(struct libos *l, void *qv)
{
    (void)l;
    struct memq *q = qv;
    cancel(q, &q->pushes);
    cancel(q, &q->pops);
    unlist_end(q);
    end_release(q);
    return 0;
}

static int mem_pipe(struct libos *l, const char *name, bool create, void **q_out)
{
    size_t n = strnlen(name, PIPE_NAME_MAX + 1);
    if (n == 0 || n > PIPE_NAME_MAX)
        return EINVAL;
    struct memq *q = calloc(1, sizeof(*q));
    if (!q)
        return ENOMEM;
    q->cm = mem_of(l);
    struct pipe *fresh = create ? calloc(1, sizeof(*fresh)) : NULL;
    if (create && !fresh) {
        free(q);
        return ENOMEM;
    }
    int e = 0;
    pthread_mutex_lock(&registry_mu);
    struct pipe *p = registry;
    while (p && strcmp(p->name, name) != 0)
        p = p->next;
    if (create) {
        if (p) {
            e = EEXIST;
        } else {
            p = fresh;
            fresh = NULL;
            memcpy(p->name, name, n + 1);
            p->ends = 1;
            bell_ref(l->rt->bell);
            atomic_store_explicit(&p->bell[0], l->rt->bell, memory_order_release);
            p->next = registry;
            registry = p;
            q->end = 0;
        }
    } else if (!p) {
        e = ENOENT;
    } else if (p->opened) {
        e = EBUSY;
    } else {
        p->opened = true;
        p->ends++;
        bell_ref(l->rt->bell);
        atomic_store_explicit(&p->bell[1], l->rt->bell, memory_order_release);
        q->end = 1;
    }
    pthread_mutex_unlock(&registry_mu);
    free(fresh);
    if (e) {
        free(q);
        return e;
    }
    q->p = p;
    q->anext = q->cm->all;
    if (q->anext)
        q->anext->aprev = q;
    q->cm->all = q;
    *q_out = q;
    return 0;
}

static void mem_stats(struct libos *l, demi_stats_t *st)
{
    struct catmem *cm = mem_of(l);
    st->pipe_pushes += cm->st_pushes;
    st->pipe_pops += cm->st_pops;
}

/* Thread exit: every end closes (the other ends see end of file); the
 * tasks go with the scheduler, their messages here. */
static void mem_destroy(struct libos *l)
{
    struct catmem *cm = mem_of(l);
    while (cm->all) {
        struct memq *q = cm->all;
        for (struct sched_task *t = q->pushes.head; t; t = t->next)
            free((void *)(uintptr_t)t->arg[0]);
        end_release(q);
    }
    if (cm->base.rt->pending_arg == cm)
        rt_set_pending(cm->base.rt, NULL, NULL);
    free(cm);
}

static const struct libos_ops catmem_ops = {
    .name = "catmem",
    .socket = nosock_socket,
    .bind = nosock_bind,
    .listen = nosock_listen,
    .accept = nosock_accept,
    .connect = nosock_connect,
    .push = mem_push,
    .pop = mem_pop,
    .close = mem_close,
    .setsockopt = nosock_setsockopt,
    .getsockopt = nosock_getsockopt,
    .getpeername = nosock_name,
    .getsockname = nosock_name,
    .destroy = mem_destroy,
    .pipe = mem_pipe,
    .stats = mem_stats,
};

int catmem_create(struct runtime *rt, struct libos **out)
{
    struct catmem *cm = calloc(1, sizeof(*cm));
    if (!cm)
        return ENOMEM;
    cm->base.ops = &catmem_ops;
    cm->base.rt = rt;
    cm->poller = sched_alloc(&rt->sched, poller, cm);
    if (!cm->poller) {
        free(cm);
        return ENOMEM;
    }
    cm->poller->background = 1;
    rt_set_pending(rt, pending, cm);
    *out = &cm->base;
    return 0;
}
