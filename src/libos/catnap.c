/*
 * catnap: PDPIX over Linux kernel sockets, for development without bypass
 * hardware and as the baseline the bypass libOSes are measured against.
 *
 * Sockets are non-blocking and registered once with edge-triggered epoll.
 * Each queue keeps two FIFOs of tasks: readers (pop, accept) and writers
 * (push, connect). Only the head of a FIFO touches the socket, so pops and
 * pushes complete in the order they were issued. A new head tries its
 * system call at once; if that says EAGAIN it sleeps until the fast-path
 * task sees the next epoll edge for its direction. Pushes first try inline
 * in demi_push (run to completion: no scheduler round trip when the kernel
 * takes the data); a push that must wait keeps a reference on every heap
 * buffer, so the application may free its array at once.
 *
 * While only a few pops and pushes wait (the ping-pong case), the fast
 * path skips epoll and retries their system calls directly, so a message
 * costs what it costs a busy-polling Linux program: one recv and one send.
 * With more waiters, or for accepts and connects, it polls epoll instead.
 * A TCP socket known to be drained (the last recv came back short) waits
 * for its next edge instead of trying at once. Sockets join the epoll set
 * only while something needs their edges (a waiting accept or connect,
 * epoll mode, or sleeping): a registered socket makes every packet that
 * reaches it run epoll's wakeup callback, on the sender's CPU.
 *
 * The kernel copies every byte (that is what catnap measures); pops copy
 * small messages once more from a 64 KiB receive buffer into a right-sized
 * heap block so that small messages do not pin 64 KiB each.
 */
#include "core/common.h"
#include "core/log.h"
#include "libos/libos.h"
#include "mem/sga.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define NAP_POP_SIZE    65536u
#define NAP_COPY_MAX    16384u /* pops up to this size are copied to a right-sized block */
#define NAP_EVENTS      64
#define NAP_DIRECT_MAX  2  /* retry at most this many data queues directly */
#define NAP_EPOLL_EVERY 16 /* in direct mode, still look at epoll every this many passes */

enum { OP_POP = 1, OP_ACCEPT, OP_PUSH, OP_CONNECT };

struct catnap {
    struct libos base;
    int epfd;
    struct sched_task *poller;
    uint32_t waiting; /* tasks waiting in some FIFO */
    uint32_t ndirect; /* queues with waiting pops or pushes (the direct list) */
    uint32_t nother;  /* waiting accepts and connects */
    uint32_t pass;
    bool degraded; /* an epoll_ctl failed: also poll unregistered queues directly */
    struct nap_queue *direct;
    uint32_t nqueues;
    struct nap_queue *all; /* every open queue, for destroy */
    struct heap_blk *spare;
    struct epoll_event ev[NAP_EVENTS];
};

struct nap_queue {
    struct catnap *nap;
    struct nap_queue *prev, *next;
    int fd;
    int type;
    bool bound, listening, connecting, connected, has_peer;
    bool drained; /* TCP: the last recv emptied the socket; wait for an edge */
    bool closing; /* closed by the application; open until its pushes drain */
    bool in_epoll;
    uint32_t nwait;                  /* waiting tasks of any kind */
    uint32_t ndata;                  /* waiting pops and pushes */
    struct nap_queue *dprev, *dnext; /* on the direct list while ndata > 0 */
    struct task_list readers;
    struct task_list writers;
};

/* A push that could not complete inline. */
struct nap_push {
    uint32_t nsegs;
    uint64_t off; /* bytes already sent */
    bool has_to;
    struct sockaddr_in to;
    demi_sgaseg_t seg[DEMI_SGARRAY_MAXSIZE];
    struct heap_blk *blk[DEMI_SGARRAY_MAXSIZE];
};

static inline struct catnap *nap_of(struct libos *l)
{
    return (struct catnap *)l;
}

static struct sched *sched_of(struct catnap *n)
{
    return &n->base.rt->sched;
}

/* Wakes the head of a FIFO (only the head may touch the socket). */
static void wake_head(struct catnap *n, struct task_list *l)
{
    if (l->head)
        sched_wake(sched_of(n), l->head);
}

static bool is_data(const struct sched_task *t)
{
    return t->kind == OP_POP || t->kind == OP_PUSH;
}

/* Adds @q to the epoll set (edge-triggered; if it is ready now, the kernel
 * reports that at once, so no edge is lost by joining late). */
static int epoll_join(struct catnap *n, struct nap_queue *q)
{
    if (q->in_epoll)
        return 0;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = q};
    if (epoll_ctl(n->epfd, EPOLL_CTL_ADD, q->fd, &ev) < 0) {
        int e = errno;
        if (!n->degraded)
            log_warn("catnap: epoll_ctl(ADD): %s; polling such sockets directly", strerror(e));
        n->degraded = true;
        return e;
    }
    q->in_epoll = true;
    return 0;
}

static void epoll_leave(struct catnap *n, struct nap_queue *q)
{
    if (q->in_epoll && epoll_ctl(n->epfd, EPOLL_CTL_DEL, q->fd, NULL) == 0)
        q->in_epoll = false;
}

/* Epoll mode: every queue with waiting pops or pushes must be registered. */
static void join_direct_list(struct catnap *n)
{
    for (struct nap_queue *q = n->direct; q; q = q->dnext)
        epoll_join(n, q);
}

/* Waiting bookkeeping: every task in a FIFO counts in n->waiting; queues
 * with waiting pops or pushes are on the direct list. */
static void wait_add(struct catnap *n, struct task_list *l, struct sched_task *t)
{
    struct nap_queue *q = t->owner;
    tlist_push(l, t);
    n->waiting++;
    q->nwait++;
    if (!is_data(t)) {
        n->nother++;
        epoll_join(n, q); /* accepts and connects always wait for edges */
    } else if (q->ndata++ == 0) {
        q->dprev = NULL;
        q->dnext = n->direct;
        if (n->direct)
            n->direct->dprev = q;
        n->direct = q;
        if (++n->ndirect == NAP_DIRECT_MAX + 1)
            join_direct_list(n); /* entering epoll mode */
        else if (n->ndirect > NAP_DIRECT_MAX)
            epoll_join(n, q);
    }
}

static void wait_del(struct catnap *n, struct sched_task *t)
{
    struct nap_queue *q = t->owner;
    tlist_remove(t);
    n->waiting--;
    q->nwait--;
    if (!is_data(t))
        n->nother--;
    else if (--q->ndata == 0) {
        if (q->dprev)
            q->dprev->dnext = q->dnext;
        else
            n->direct = q->dnext;
        if (q->dnext)
            q->dnext->dprev = q->dprev;
        q->dprev = q->dnext = NULL;
        n->ndirect--;
    }
}

/* Puts @t at the tail of @l; wakes it if it is the head so it tries now,
 * unless @l is the readers of a drained TCP socket. */
static void enqueue(struct catnap *n, struct task_list *l, struct sched_task *t)
{
    wait_add(n, l, t);
    struct nap_queue *q = t->owner;
    if (l->head == t && !(l == &q->readers && q->drained))
        sched_wake(sched_of(n), t);
}

static void queue_free(struct catnap *n, struct nap_queue *q, bool deliver);

/* Completes the head task of its FIFO and lets the next one run. */
static void finish(struct catnap *n, struct sched_task *t)
{
    struct task_list *l = t->list;
    struct nap_queue *q = t->owner;
    if (l)
        wait_del(n, t);
    /* Data moves on a queue polled directly: it no longer needs epoll
     * (it joined for epoll mode or to sleep). */
    if (q->in_epoll && q->nwait == q->ndata && is_data(t) && n->ndirect <= NAP_DIRECT_MAX)
        epoll_leave(n, q);
    sched_complete(sched_of(n), t);
    if (l)
        wake_head(n, l);
    if (q->closing && !q->writers.head)
        queue_free(n, q, true); /* the last push of a closed queue is done */
}

/* DEMI_LOG=debug: one line per connection event (accept, connect, a
 * peer's FIN or reset, a failed send, close), naming both ends. Only a
 * connection's life is logged, never a single push or pop. */
static void conn_log(const struct nap_queue *q, const char *fmt, const char *what)
{
    if (log_level_g < LOGL_DEBUG || q->type != SOCK_STREAM)
        return;
    struct sockaddr_in a[2];
    char s[2][INET_ADDRSTRLEN + 8];
    for (int i = 0; i < 2; i++) {
        socklen_t len = sizeof(a[i]);
        int r =
            i ? getpeername(q->fd, (struct sockaddr *)&a[i], &len) : getsockname(q->fd, (struct sockaddr *)&a[i], &len);
        char ip[INET_ADDRSTRLEN] = "?";
        if (r == 0 && a[i].sin_family == AF_INET)
            inet_ntop(AF_INET, &a[i].sin_addr, ip, sizeof(ip));
        snprintf(s[i], sizeof(s[i]), "%s:%u", ip, r == 0 ? ntohs(a[i].sin_port) : 0);
    }
    char line[160];
    snprintf(line, sizeof(line), fmt, what);
    log_debug("catnap: tcp %s -> %s: %s", s[0], s[1], line);
}

static void fail(struct catnap *n, struct sched_task *t, int err)
{
    t->qr.qr_opcode = DEMI_OPC_FAILED;
    t->qr.qr_ret = err;
    memset(&t->qr.qr_value, 0, sizeof(t->qr.qr_value));
    finish(n, t);
}

static void push_release(struct catnap *n, struct sched_task *t)
{
    struct nap_push *p = (struct nap_push *)(uintptr_t)t->arg[0];
    if (!p)
        return;
    for (uint32_t i = 0; i < p->nsegs; i++)
        if (p->blk[i])
            heap_unref(n->base.rt->heap, p->blk[i]);
    free(p);
    t->arg[0] = 0;
}

/* Wakes the heads of the FIFOs whose direction became ready. */
static void handle_events(struct catnap *n, int k)
{
    bool woke = false;
    for (int i = 0; i < k; i++) {
        struct nap_queue *q = n->ev[i].data.ptr;
        uint32_t e = n->ev[i].events;
        if (!q)
            continue; /* the runtime's bell: rt_wait drains it */
        if (e & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) {
            q->drained = false;
            woke |= q->readers.head != NULL;
            wake_head(n, &q->readers);
        }
        if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
            woke |= q->writers.head != NULL;
            wake_head(n, &q->writers);
        }
    }
    /* Only an edge that woke someone is progress: a socket that joins the
     * set reports itself writable at once, and that must not keep the
     * wait loop from sleeping. */
    if (woke)
        n->base.rt->activity++;
}

/* The fast-path task. With few data queues waiting, their heads retry
 * directly (no epoll round trip per message); otherwise, and every
 * NAP_EPOLL_EVERY passes for accepts and connects, one zero-timeout
 * epoll_wait. */
static int poll_task(struct sched *s, struct sched_task *t)
{
    (void)s;
    struct catnap *n = t->owner;
    if (!n->waiting)
        return SCHED_YIELD;
    bool direct = n->ndirect && n->ndirect <= NAP_DIRECT_MAX;
    if (direct || n->degraded) {
        for (struct nap_queue *q = n->direct; q; q = q->dnext) {
            if (!direct && q->in_epoll)
                continue;
            if (q->readers.head && is_data(q->readers.head))
                sched_wake(sched_of(n), q->readers.head);
            if (q->writers.head && is_data(q->writers.head))
                sched_wake(sched_of(n), q->writers.head);
        }
    }
    if (!direct || (n->nother && ++n->pass % NAP_EPOLL_EVERY == 0)) {
        int k = epoll_wait(n->epfd, n->ev, NAP_EVENTS, 0);
        if (k > 0)
            handle_events(n, k);
    }
    return SCHED_YIELD;
}

static void idle(void *arg, uint64_t timeout_ns)
{
    struct catnap *n = arg;
    /* Sleeping needs every waiting queue's edges. */
    for (struct nap_queue *q = n->direct; q; q = q->dnext)
        if (epoll_join(n, q))
            return; /* cannot sleep on it: keep polling */
    struct timespec ts, *tsp = NULL;
    if (timeout_ns != UINT64_MAX) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000u);
        ts.tv_nsec = (long)(timeout_ns % 1000000000u);
        tsp = &ts;
    }
    int k = epoll_pwait2(n->epfd, n->ev, NAP_EVENTS, tsp, NULL);
    if (k > 0)
        handle_events(n, k);
}

/* Queues. */

static int new_queue(struct catnap *n, int fd, int type, struct nap_queue **out)
{
    struct nap_queue *q = calloc(1, sizeof(*q));
    if (!q)
        return ENOMEM;
    q->nap = n;
    q->fd = fd;
    q->type = type;
    if (type == SOCK_STREAM) {
        int on = n->base.rt->cfg.nodelay ? 1 : 0;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
        /* tcp_socket_options.linger (LINGER): the kernel's SO_LINGER, as if
         * the application had set it (accepted sockets get it here too). */
        if (n->base.rt->cfg.linger) {
            struct linger lg = {1, (int)MIN(n->base.rt->cfg.linger_secs, (uint32_t)INT_MAX)};
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        }
    }
    q->next = n->all;
    if (n->all)
        n->all->prev = q;
    n->all = q;
    n->nqueues++;
    *out = q;
    return 0;
}

static int nap_socket(struct libos *l, int type, void **q_out)
{
    struct catnap *n = nap_of(l);
    int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno;
    struct nap_queue *q;
    int e = new_queue(n, fd, type, &q);
    if (e) {
        close(fd);
        return e;
    }
    *q_out = q;
    return 0;
}

static int nap_bind(struct libos *l, void *qv, const struct sockaddr_in *addr)
{
    struct nap_queue *q = qv;
    if (q->bound)
        return EINVAL;
    /* libdemi.queues > 1: the process's instances (one per thread) share
     * the ports they bind, and the kernel spreads the flows among them. */
    int on = 1;
    if (nap_of(l)->base.rt->cfg.queues > 1 && setsockopt(q->fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) < 0)
        return errno;
    if (bind(q->fd, (const struct sockaddr *)addr, sizeof(*addr)) < 0)
        return errno;
    q->bound = true;
    return 0;
}

static int nap_listen(struct libos *l, void *qv, int backlog)
{
    (void)l;
    struct nap_queue *q = qv;
    if (q->type != SOCK_STREAM)
        return EOPNOTSUPP;
    if (q->connected || q->connecting)
        return EINVAL;
    if (listen(q->fd, backlog) < 0)
        return errno;
    q->listening = true;
    q->bound = true;
    return 0;
}

/* accept */

static int accept_poll(struct sched *s, struct sched_task *t)
{
    (void)s;
    struct nap_queue *q = t->owner;
    struct catnap *n = q->nap;
    if (q->readers.head != t)
        return SCHED_PENDING;
    for (;;) {
        struct sockaddr_in peer;
        socklen_t len = sizeof(peer);
        int fd = accept4(q->fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return SCHED_PENDING;
            if (errno == EINTR || errno == ECONNABORTED)
                continue; /* the peer gave up before we accepted: try the next one */
            fail(n, t, errno);
            return SCHED_PENDING;
        }
        struct nap_queue *nq;
        int e = new_queue(n, fd, SOCK_STREAM, &nq);
        int qd = -1;
        if (!e) {
            nq->bound = nq->connected = true;
            e = qtable_alloc(&n->base.rt->qtable, &n->base, nq, &qd);
            if (e)
                n->base.ops->close(&n->base, nq);
        } else {
            close(fd);
        }
        if (e) {
            fail(n, t, e);
            return SCHED_PENDING;
        }
        conn_log(nq, "%s", "accepted");
        t->qr.qr_opcode = DEMI_OPC_ACCEPT;
        t->qr.qr_ret = 0;
        t->qr.qr_value.ares.qd = qd;
        t->qr.qr_value.ares.addr = peer;
        finish(n, t);
        return SCHED_PENDING;
    }
}

static int nap_accept(struct libos *l, void *qv, struct sched_task *t)
{
    struct nap_queue *q = qv;
    if (!q->listening)
        return EINVAL;
    t->poll = accept_poll;
    t->owner = q;
    t->kind = OP_ACCEPT;
    enqueue(nap_of(l), &q->readers, t);
    return 0;
}

/* connect */

static int connect_poll(struct sched *s, struct sched_task *t)
{
    (void)s;
    struct nap_queue *q = t->owner;
    if (q->writers.head != t)
        return SCHED_PENDING;
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(q->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (!err) {
        struct sockaddr_in peer;
        len = sizeof(peer);
        if (getpeername(q->fd, (struct sockaddr *)&peer, &len) < 0) {
            if (errno == ENOTCONN)
                return SCHED_PENDING; /* still in progress */
            err = errno;
        }
    }
    q->connecting = false;
    if (err) {
        conn_log(q, "connect failed: %s", strerror(err));
        fail(q->nap, t, err);
        return SCHED_PENDING;
    }
    q->connected = q->bound = true;
    conn_log(q, "%s", "connection established");
    t->qr.qr_opcode = DEMI_OPC_CONNECT;
    t->qr.qr_ret = 0;
    finish(q->nap, t);
    return SCHED_PENDING;
}

static int nap_connect(struct libos *l, void *qv, const struct sockaddr_in *addr, struct sched_task *t)
{
    struct catnap *n = nap_of(l);
    struct nap_queue *q = qv;
    if (q->listening)
        return EINVAL;
    if (q->connecting)
        return EALREADY;
    if (q->type == SOCK_STREAM && q->connected)
        return EISCONN;
    t->owner = q;
    t->kind = OP_CONNECT;
    t->qr.qr_opcode = DEMI_OPC_CONNECT;
    t->qr.qr_ret = 0;
    if (connect(q->fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0) {
        q->connected = q->bound = true;
        q->has_peer = true;
        conn_log(q, "%s", "connection established");
        sched_complete(sched_of(n), t);
        return 0;
    }
    int e = errno;
    if (e != EINPROGRESS) {
        if (q->type == SOCK_DGRAM)
            return e; /* UDP connect only sets a default peer: report at once */
        conn_log(q, "connect failed: %s", strerror(e));
        t->qr.qr_opcode = DEMI_OPC_FAILED;
        t->qr.qr_ret = e;
        sched_complete(sched_of(n), t);
        return 0;
    }
    q->connecting = true;
    t->poll = connect_poll;
    /* Not woken now: the first EPOLLOUT edge says the handshake ended. */
    wait_add(n, &q->writers, t);
    return 0;
}

/* push */

static void push_done(struct catnap *n, struct sched_task *t)
{
    push_release(n, t);
    t->qr.qr_opcode = DEMI_OPC_PUSH;
    t->qr.qr_ret = 0;
    finish(n, t);
}

/* Sends what is left of @seg[0..nsegs) after *@off bytes, to @to (or the
 * connected peer). Returns 0 when all is sent, EAGAIN to wait, or an errno. */
static int send_segs(struct nap_queue *q, const demi_sgaseg_t *seg, uint32_t nsegs, uint64_t *off,
                     const struct sockaddr_in *to)
{
    struct iovec iov[DEMI_SGARRAY_MAXSIZE];
    for (;;) {
        int niov = 0;
        uint64_t skip = *off;
        for (uint32_t i = 0; i < nsegs; i++) {
            uint64_t len = seg[i].sgaseg_len;
            if (skip >= len) {
                skip -= len;
                continue;
            }
            iov[niov].iov_base = (uint8_t *)seg[i].sgaseg_buf + skip;
            iov[niov].iov_len = len - skip;
            niov++;
            skip = 0;
        }
        if (niov == 0)
            return 0;
        ssize_t k;
        if (niov == 1) {
            /* send/sendto: no msghdr or iovec to import, measurably cheaper. */
            k = sendto(q->fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL | MSG_DONTWAIT, (const struct sockaddr *)to,
                       to ? sizeof(*to) : 0);
        } else {
            struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)niov};
            if (to) {
                mh.msg_name = (void *)to;
                mh.msg_namelen = sizeof(*to);
            }
            k = sendmsg(q->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        }
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return errno == EWOULDBLOCK ? EAGAIN : errno;
        }
        *off += (uint64_t)k;
        if (q->type == SOCK_DGRAM)
            return 0; /* a datagram goes whole or not at all */
    }
}

static int push_send(struct nap_queue *q, struct nap_push *p)
{
    return send_segs(q, p->seg, p->nsegs, &p->off, p->has_to ? &p->to : NULL);
}

static int push_poll(struct sched *s, struct sched_task *t)
{
    (void)s;
    struct nap_queue *q = t->owner;
    if (q->writers.head != t)
        return SCHED_PENDING;
    struct nap_push *p = (struct nap_push *)(uintptr_t)t->arg[0];
    int e = push_send(q, p);
    if (e == EAGAIN)
        return SCHED_PENDING;
    if (e) {
        conn_log(q, "send failed: %s", strerror(e));
        push_release(q->nap, t);
        fail(q->nap, t, e);
    } else {
        push_done(q->nap, t);
    }
    return SCHED_PENDING;
}

/* Out of memory for a push that must wait. Nothing sent yet: refuse the
 * call. Part of it sent: the push has started, so it completes as failed
 * (the stream now holds a partial message; the application must treat the
 * connection as broken). */
static int push_nomem(struct catnap *n, struct sched_task *t, uint64_t sent)
{
    if (sent == 0)
        return ENOMEM;
    sched_fail(sched_of(n), t, ENOMEM);
    return 0;
}

static int nap_push(struct libos *l, void *qv, const demi_sgarray_t *sga, const struct sockaddr_in *to,
                    struct sched_task *t)
{
    struct catnap *n = nap_of(l);
    struct nap_queue *q = qv;
    struct heap *h = l->rt->heap;
    if (q->listening)
        return EINVAL;
    if (q->type == SOCK_STREAM) {
        if (!q->connected)
            return ENOTCONN;
        to = NULL; /* as send(2) on a connected stream: the address is ignored */
    } else {
        if (!to && !q->has_peer)
            return EDESTADDRREQ;
        if (mem_sga_len(sga) > 65507)
            return EMSGSIZE;
    }
    /* The result reports the array the application pushed. */
    t->owner = q;
    t->kind = OP_PUSH;
    sched_copy_sga(&t->qr.qr_value.sga, sga);

    uint64_t off = 0;
    int e = EAGAIN;
    if (!q->writers.head)
        e = send_segs(q, sga->sga_segs, sga->sga_numsegs, &off, to); /* run to completion: try now */
    if (e != EAGAIN) {
        if (e)
            conn_log(q, "send failed: %s", strerror(e));
        t->qr.qr_opcode = e ? DEMI_OPC_FAILED : DEMI_OPC_PUSH;
        t->qr.qr_ret = e;
        sched_complete(sched_of(n), t);
        return 0;
    }

    /* Must wait: keep the data alive. Heap buffers get a reference; other
     * memory is copied into the heap, since the caller may reuse it. */
    struct nap_push *p = malloc(sizeof(*p));
    if (!p)
        return push_nomem(n, t, off);
    p->nsegs = sga->sga_numsegs;
    p->off = off;
    p->has_to = to != NULL;
    if (to)
        p->to = *to;
    memcpy(p->seg, sga->sga_segs, sizeof(p->seg[0]) * p->nsegs);
    for (uint32_t i = 0; i < p->nsegs; i++) {
        p->blk[i] = NULL;
        if (p->seg[i].sgaseg_len == 0)
            continue;
        struct heap_blk *b = heap_find(h, p->seg[i].sgaseg_buf, p->seg[i].sgaseg_len);
        if (b) {
            heap_ref(b);
        } else {
            b = heap_alloc_app(h, p->seg[i].sgaseg_len); /* the application's bytes: not from the reserve */
            if (!b) {
                p->nsegs = i;
                t->arg[0] = (uintptr_t)p;
                push_release(n, t);
                return push_nomem(n, t, off);
            }
            memcpy(heap_blk_data(h, b), p->seg[i].sgaseg_buf, p->seg[i].sgaseg_len);
            heap_stats_mut(h)->copied_bytes += p->seg[i].sgaseg_len;
            p->seg[i].sgaseg_buf = heap_blk_data(h, b);
        }
        p->blk[i] = b;
    }
    t->arg[0] = (uintptr_t)p;
    t->poll = push_poll;
    enqueue(n, &q->writers, t);
    return 0;
}

/* pop */

static int pop_poll(struct sched *s, struct sched_task *t)
{
    (void)s;
    struct nap_queue *q = t->owner;
    struct catnap *n = q->nap;
    struct heap *h = n->base.rt->heap;
    if (q->readers.head != t)
        return SCHED_PENDING;
    if (!n->spare) {
        n->spare = heap_alloc(h, NAP_POP_SIZE);
        if (!n->spare) {
            fail(n, t, ENOMEM);
            return SCHED_PENDING;
        }
    }
    uint8_t *buf = heap_blk_data(h, n->spare);
    struct sockaddr_in from;
    socklen_t fromlen = sizeof(from);
    bool dgram = q->type == SOCK_DGRAM;
    ssize_t k;
    do { /* recvfrom, not recvmsg: this call is what the fast path spins on */
        k = recvfrom(q->fd, buf, NAP_POP_SIZE, MSG_DONTWAIT, dgram ? (struct sockaddr *)&from : NULL,
                     dgram ? &fromlen : NULL);
    } while (k < 0 && errno == EINTR);
    if (k < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            q->drained = !dgram;
            return SCHED_PENDING;
        }
        int e = errno;
        conn_log(q, "receive failed: %s", strerror(e));
        fail(n, t, e);
        return SCHED_PENDING;
    }
    /* A short TCP read emptied the socket: any later byte brings an edge.
     * (A datagram says nothing about the ones queued behind it.) */
    q->drained = !dgram && k > 0 && (size_t)k < NAP_POP_SIZE;
    demi_sgarray_t *sga = &t->qr.qr_value.sga;
    t->qr.qr_opcode = DEMI_OPC_POP;
    t->qr.qr_ret = 0;
    if (k == 0 && !dgram) {
        conn_log(q, "%s", "closed by the peer (FIN)");
        memset(sga, 0, sizeof(*sga)); /* orderly close: an empty array */
        finish(n, t);
        return SCHED_PENDING;
    }
    struct heap_blk *b = n->spare;
    uint8_t *data = buf;
    /* Small: copy into a right-sized block and keep the big one (if the
     * heap cannot spare a small block, hand over the big one instead:
     * the bytes are already out of the socket and must not be lost). */
    struct heap_blk *small = (size_t)k <= NAP_COPY_MAX ? heap_alloc(h, k ? (size_t)k : 1) : NULL;
    if (small) {
        data = heap_blk_data(h, small);
        memcpy(data, buf, (size_t)k);
        b = small;
    } else {
        n->spare = NULL;
    }
    mem_sga_begin(h, sga);
    mem_sga_add(h, sga, b, data, (uint32_t)k);
    if (dgram)
        sga->sga_addr = from;
    finish(n, t);
    return SCHED_PENDING;
}

static int nap_pop(struct libos *l, void *qv, struct sched_task *t)
{
    struct nap_queue *q = qv;
    if (q->listening)
        return EINVAL;
    if (q->type == SOCK_STREAM && !q->connected)
        return ENOTCONN;
    t->poll = pop_poll;
    t->owner = q;
    t->kind = OP_POP;
    enqueue(nap_of(l), &q->readers, t);
    return 0;
}

/* close */

static void cancel_all(struct catnap *n, struct task_list *l, bool deliver)
{
    struct sched_task *t;
    while ((t = l->head)) {
        wait_del(n, t);
        if (t->kind == OP_PUSH)
            push_release(n, t);
        if (deliver)
            sched_fail(sched_of(n), t, ECANCELED);
    }
}

static void queue_free(struct catnap *n, struct nap_queue *q, bool deliver)
{
    cancel_all(n, &q->readers, deliver);
    cancel_all(n, &q->writers, deliver);
    close(q->fd); /* also removes it from the epoll set */
    if (q->prev)
        q->prev->next = q->next;
    else
        n->all = q->next;
    if (q->next)
        q->next->prev = q->prev;
    n->nqueues--;
    free(q);
}

/* SO_LINGER with a zero timeout: the close is abortive (demi_close(3)):
 * pushes not yet sent are cancelled, and the kernel sends a RST. */
static bool linger_zero(const struct nap_queue *q)
{
    struct linger lg;
    socklen_t len = sizeof(lg);
    return getsockopt(q->fd, SOL_SOCKET, SO_LINGER, &lg, &len) == 0 && lg.l_onoff && lg.l_linger == 0;
}

static int nap_close(struct libos *l, void *qv)
{
    struct catnap *n = nap_of(l);
    struct nap_queue *q = qv;
    if (q->type == SOCK_STREAM && q->writers.head && q->writers.head->kind == OP_PUSH && !linger_zero(q)) {
        /* A graceful close: pushes already made still go out (their
         * tokens complete as usual); the socket is closed after the last.
         * Nobody can read any more: pops are cancelled now. */
        conn_log(q, "%s", "closed by the application (graceful: pushes still going out)");
        cancel_all(n, &q->readers, true);
        q->closing = true;
        return 0;
    }
    if (q->type == SOCK_STREAM && q->connected)
        conn_log(q, "closed by the application (%s)", linger_zero(q) ? "abortive: SO_LINGER 0, RST" : "graceful");
    queue_free(n, q, true);
    return 0;
}

/* options and names */

/* Options reach here checked by the API layer (src/api/api.c): one of the
 * supported list, a value of the right size, TCP options on streams only.
 * The kernel applies them. */
static int nap_setsockopt(struct libos *l, void *qv, int level, int name, const void *val, socklen_t len)
{
    (void)l;
    struct nap_queue *q = qv;
    return setsockopt(q->fd, level, name, val, len) < 0 ? errno : 0;
}

static int nap_getsockopt(struct libos *l, void *qv, int level, int name, void *val, socklen_t *len)
{
    (void)l;
    struct nap_queue *q = qv;
    return getsockopt(q->fd, level, name, val, len) < 0 ? errno : 0;
}

static int nap_getpeername(struct libos *l, void *qv, struct sockaddr_in *out)
{
    (void)l;
    struct nap_queue *q = qv;
    socklen_t len = sizeof(*out);
    return getpeername(q->fd, (struct sockaddr *)out, &len) < 0 ? errno : 0;
}

static int nap_getsockname(struct libos *l, void *qv, struct sockaddr_in *out)
{
    (void)l;
    struct nap_queue *q = qv;
    socklen_t len = sizeof(*out);
    return getsockname(q->fd, (struct sockaddr *)out, &len) < 0 ? errno : 0;
}

static void nap_destroy(struct libos *l)
{
    struct catnap *n = nap_of(l);
    while (n->all)
        queue_free(n, n->all, false);
    if (n->spare)
        heap_unref(l->rt->heap, n->spare);
    if (l->rt->idle_arg == n)
        rt_set_idle(l->rt, NULL, NULL);
    close(n->epfd);
    free(n);
}

static const struct libos_ops catnap_ops = {
    .name = "catnap",
    .socket = nap_socket,
    .bind = nap_bind,
    .listen = nap_listen,
    .accept = nap_accept,
    .connect = nap_connect,
    .push = nap_push,
    .pop = nap_pop,
    .close = nap_close,
    .setsockopt = nap_setsockopt,
    .getsockopt = nap_getsockopt,
    .getpeername = nap_getpeername,
    .getsockname = nap_getsockname,
    .destroy = nap_destroy,
};

int catnap_create(struct runtime *rt, struct libos **out)
{
    struct catnap *n = calloc(1, sizeof(*n));
    if (!n)
        return ENOMEM;
    n->base.ops = &catnap_ops;
    n->base.rt = rt;
    n->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (n->epfd < 0) {
        int e = errno;
        free(n);
        return e;
    }
    n->poller = sched_alloc(&rt->sched, poll_task, n);
    if (!n->poller) {
        close(n->epfd);
        free(n);
        return ENOMEM;
    }
    n->poller->background = 1;
    /* Another thread's work (a memory queue's message) rings the bell. */
    struct epoll_event bev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(n->epfd, EPOLL_CTL_ADD, rt->bell->fd, &bev) < 0) {
        int e = errno;
        sched_free(&rt->sched, n->poller);
        close(n->epfd);
        free(n);
        return e;
    }
    sched_wake(&rt->sched, n->poller);
    rt_set_idle(rt, idle, n);
    *out = &n->base;
    return 0;
}
