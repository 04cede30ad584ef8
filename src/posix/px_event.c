/*
 * libdemi-posix: readiness (epoll, poll, select) over a set that may mix
 * the stack's sockets and the kernel's descriptors.
 *
 * An epoll set is the kernel's (epoll_create passes through); the stack
 * sockets added to it live beside it in a `struct px_ep`, created when the
 * first one is added. As in the kernel, every entry whose socket had a
 * completion is queued for a check; a level-triggered entry stays queued
 * while it is ready, an edge-triggered one is reported again only after a
 * new completion on its socket. A wait drives the stack and asks the
 * kernel (timeout 0) for its part of the set; while nothing is ready it
 * sleeps inside the stack's own wait, in slices of at most 1 ms when
 * kernel descriptors share the set (so they are seen within a
 * millisecond), and for the whole timeout otherwise. Everything here runs
 * on the network thread: sets holding stack sockets are refused
 * elsewhere.
 */
#include "px.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct px_ep;

struct px_epi {
    struct px_ep *ep;
    struct px_sock *s;
    struct epoll_event ev;
    uint64_t seen; /* edge-triggered: the socket's seq when last reported */
    bool armed;    /* edge-triggered: report the current state once (ADD, MOD) */
    bool off;      /* EPOLLONESHOT fired; MOD re-enables */
    bool queued;
    struct px_epi *ep_next, *ep_prev; /* every entry of the set */
    struct px_epi *q_next, *q_prev;   /* the set's check queue */
    struct px_epi *s_next;            /* every entry of the socket */
};

struct px_ep {
    struct px_epi *all;
    struct px_epi *qh, *qt;
    unsigned nours; /* stack sockets in the set */
};

static struct px_ep **px_eps;
/* Kernel descriptors added to each epoll set (by its descriptor), counted
 * from the first epoll_ctl on, whether or not the set has stack sockets
 * yet. An upper bound: a descriptor closed without EPOLL_CTL_DEL leaves
 * the set without being counted out, which only keeps the waits in 1 ms
 * slices. */
static uint32_t *px_epk;

static uint32_t *epk_table(void)
{
    uint32_t *t = __atomic_load_n(&px_epk, __ATOMIC_ACQUIRE);
    if (t || !px_nfds)
        return t;
    void *p =
        mmap(NULL, px_nfds * sizeof(*t), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    uint32_t *expected = NULL;
    if (!__atomic_compare_exchange_n(&px_epk, &expected, (uint32_t *)p, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        munmap(p, px_nfds * sizeof(*t));
        return expected;
    }
    return p;
}

/* Kernel descriptors in epoll set @epfd (a bound; 1 if unknown). */
static uint32_t kernel_count(int epfd)
{
    uint32_t *t = epk_table();
    return t ? __atomic_load_n(&t[epfd], __ATOMIC_RELAXED) : 1;
}

static void q_push(struct px_ep *ep, struct px_epi *e)
{
    if (e->queued)
        return;
    e->queued = true;
    e->q_next = NULL;
    e->q_prev = ep->qt;
    if (ep->qt)
        ep->qt->q_next = e;
    else
        ep->qh = e;
    ep->qt = e;
}

static void q_remove(struct px_ep *ep, struct px_epi *e)
{
    if (!e->queued)
        return;
    e->queued = false;
    if (e->q_prev)
        e->q_prev->q_next = e->q_next;
    else
        ep->qh = e->q_next;
    if (e->q_next)
        e->q_next->q_prev = e->q_prev;
    else
        ep->qt = e->q_prev;
}

void px_ev_notify(struct px_sock *s)
{
    for (struct px_epi *e = s->epis; e; e = e->s_next)
        q_push(e->ep, e);
}

/* Unlinks @e from its set (not from its socket's list) and frees it. */
static void epi_drop(struct px_epi *e)
{
    struct px_ep *ep = e->ep;
    q_remove(ep, e);
    if (e->ep_prev)
        e->ep_prev->ep_next = e->ep_next;
    else
        ep->all = e->ep_next;
    if (e->ep_next)
        e->ep_next->ep_prev = e->ep_prev;
    ep->nours--;
    free(e);
}

static void sock_unlink(struct px_sock *s, struct px_epi *e)
{
    for (struct px_epi **p = &s->epis; *p; p = &(*p)->s_next) {
        if (*p == e) {
            *p = e->s_next;
            return;
        }
    }
}

void px_ev_forget(struct px_sock *s)
{
    while (s->epis) {
        struct px_epi *e = s->epis;
        s->epis = e->s_next;
        epi_drop(e);
    }
}

static struct px_ep *ep_of(int fd)
{
    struct px_ep **t = __atomic_load_n(&px_eps, __ATOMIC_ACQUIRE);
    if (!t || fd < 0 || (size_t)fd >= px_nfds)
        return NULL;
    return t[fd];
}

static void epk_forget(int fd);

void px_ev_close_fd(int fd)
{
    epk_forget(fd);
    struct px_ep *ep = ep_of(fd);
    if (!ep)
        return;
    while (ep->all) {
        struct px_epi *e = ep->all;
        sock_unlink(e->s, e);
        epi_drop(e);
    }
    px_eps[fd] = NULL;
    free(ep);
}

/* The descriptor @fd is being closed: forget what was counted for it. */
static void epk_forget(int fd)
{
    uint32_t *t = __atomic_load_n(&px_epk, __ATOMIC_ACQUIRE);
    if (t && fd >= 0 && (size_t)fd < px_nfds)
        __atomic_store_n(&t[fd], 0, __ATOMIC_RELAXED);
}

/* Is @fd a kernel epoll descriptor? */
static bool is_epoll_fd(int fd)
{
    char path[64], target[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    if (n < 0)
        return false;
    target[n] = 0;
    return strcmp(target, "anon_inode:[eventpoll]") == 0;
}

/* The side structure of epoll set @epfd, created on first use: NULL with
 * errno set (EBADF, EINVAL: not an epoll set, ENOMEM). */
static struct px_ep *ep_get(int epfd)
{
    if (epfd < 0 || (size_t)epfd >= px_nfds) {
        errno = EBADF;
        return NULL;
    }
    if (!px_eps) {
        void *p = mmap(NULL, px_nfds * sizeof(*px_eps), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) {
            errno = ENOMEM;
            return NULL;
        }
        __atomic_store_n(&px_eps, (struct px_ep **)p, __ATOMIC_RELEASE);
    }
    if (px_eps[epfd])
        return px_eps[epfd];
    if (!is_epoll_fd(epfd)) {
        errno = px_real.fcntl(epfd, F_GETFD) < 0 ? EBADF : EINVAL;
        return NULL;
    }
    struct px_ep *ep = calloc(1, sizeof(*ep));
    if (!ep) {
        errno = ENOMEM;
        return NULL;
    }
    px_eps[epfd] = ep;
    return ep;
}

static struct px_epi *epi_find(struct px_ep *ep, struct px_sock *s)
{
    for (struct px_epi *e = s->epis; e; e = e->s_next)
        if (e->ep == ep)
            return e;
    return NULL;
}

int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    int refused;
    struct px_sock *s = px_sock_of(fd, &refused);
    if (refused)
        return px_fail(refused);
    if (!s) {
        int r = px_real.epoll_ctl(epfd, op, fd, ev);
        uint32_t *t = px_inside || r || epfd < 0 || (size_t)epfd >= px_nfds ? NULL : epk_table();
        if (t && op == EPOLL_CTL_ADD)
            __atomic_fetch_add(&t[epfd], 1, __ATOMIC_RELAXED);
        else if (t && op == EPOLL_CTL_DEL && __atomic_load_n(&t[epfd], __ATOMIC_RELAXED))
            __atomic_fetch_sub(&t[epfd], 1, __ATOMIC_RELAXED);
        return r;
    }
    if (fd == epfd)
        return px_fail(EINVAL);
    if ((op == EPOLL_CTL_ADD || op == EPOLL_CTL_MOD) && !ev)
        return px_fail(EFAULT);
    struct px_ep *ep = ep_get(epfd);
    if (!ep)
        return -1;
    struct px_epi *e = epi_find(ep, s);
    switch (op) {
    case EPOLL_CTL_ADD:
        if (e)
            return px_fail(EEXIST);
        if (!(e = calloc(1, sizeof(*e))))
            return px_fail(ENOMEM);
        e->ep = ep;
        e->s = s;
        e->ev = *ev;
        e->armed = true;
        e->ep_next = ep->all;
        if (ep->all)
            ep->all->ep_prev = e;
        ep->all = e;
        e->s_next = s->epis;
        s->epis = e;
        ep->nours++;
        q_push(ep, e);
        return 0;
    case EPOLL_CTL_MOD:
        if (!e)
            return px_fail(ENOENT);
        if (ev->events & EPOLLEXCLUSIVE)
            return px_fail(EINVAL);
        e->ev = *ev;
        e->armed = true;
        e->off = false;
        q_push(ep, e);
        return 0;
    case EPOLL_CTL_DEL:
        if (!e)
            return px_fail(ENOENT);
        sock_unlink(s, e);
        epi_drop(e);
        return 0;
    default:
        return px_fail(EINVAL);
    }
}

/* Reports ready stack sockets of @ep into @out (at most @max). */
static int ep_collect(struct px_ep *ep, struct epoll_event *out, int max)
{
    int n = 0;
    /* Each queued entry is looked at once per call; level-triggered ones
     * that are still ready go back to the tail for the next call. */
    struct px_epi *stop = ep->qt;
    while (n < max && ep->qh) {
        struct px_epi *e = ep->qh;
        q_remove(ep, e);
        bool last = e == stop;
        uint32_t want = e->ev.events | EPOLLERR | EPOLLHUP;
        uint32_t ready = e->off ? 0 : px_events(e->s) & want;
        bool et = e->ev.events & EPOLLET;
        if (ready && et && !e->armed && e->seen == e->s->seq)
            ready = 0;
        if (ready) {
            out[n].events = ready;
            out[n].data = e->ev.data;
            n++;
            if (et) {
                e->armed = false;
                e->seen = e->s->seq;
            }
            if (e->ev.events & EPOLLONESHOT)
                e->off = true;
            else if (!et)
                q_push(ep, e);
        }
        if (last)
            break;
    }
    return n;
}

/* Milliseconds left before @deadline (ns; 0: none), as a wait slice. */
static struct timespec slice_until(uint64_t deadline, bool kernel_too)
{
    uint64_t left = 1000000000u;
    if (deadline) {
        uint64_t now = px_now_ns();
        left = deadline > now ? deadline - now : 0;
    }
    if (left > px_sig_slice_ns())
        left = px_sig_slice_ns();
    if (kernel_too && left > 1000000u)
        left = 1000000u;
    return (struct timespec){(time_t)(left / 1000000000u), (long)(left % 1000000000u)};
}

static uint64_t deadline_ms(int timeout)
{
    return timeout > 0 ? px_now_ns() + (uint64_t)timeout * 1000000u : 0;
}

static bool expired(int timeout, uint64_t deadline)
{
    return timeout == 0 || (timeout > 0 && px_now_ns() >= deadline);
}

static int ep_wait(int epfd, struct epoll_event *evs, int max, int timeout, const sigset_t *mask, bool pwait)
{
    PX_ENSURE();
    struct px_ep *ep = px_inside ? NULL : ep_of(epfd);
    if (!ep || !ep->nours || !px_started_here()) {
        if (ep && ep->nours && !px_started_here() && px_refuse(-1) == EPERM)
            return px_fail(EPERM);
        return pwait ? px_real.epoll_pwait(epfd, evs, max, timeout, mask) : px_real.epoll_wait(epfd, evs, max, timeout);
    }
    if (max <= 0 || max > INT_MAX / (int)sizeof(*evs) || !evs)
        return px_fail(EINVAL);
    sigset_t old;
    if (mask)
        pthread_sigmask(SIG_SETMASK, mask, &old);
    static const struct timespec zero = {0, 0};
    uint64_t deadline = deadline_ms(timeout);
    int n;
    /* After a wait that harvested completions, collect at once: another
     * pass first would send the ACKs the stack owes for what just arrived
     * on their own, where the program's reply would have carried them
     * (a second frame per request). */
    bool harvested = false;
    struct px_sigcount c0, c;
    px_sig_snapshot(&c0);
    for (;;) {
        if (!harvested)
            px_drive(&zero);
        n = ep_collect(ep, evs, max);
        uint32_t nk = kernel_count(epfd);
        if (n < max && nk) {
            int k = px_real.epoll_wait(epfd, evs + n, max - n, 0);
            if (k < 0 && !n) {
                n = -1;
                break;
            }
            if (k > 0)
                n += k;
        }
        if (n || expired(timeout, deadline))
            break;
        struct timespec ts = slice_until(deadline, nk > 0);
        harvested = px_drive(&ts) == 0;
        px_sig_snapshot(&c);
        if (c.any != c0.any && !harvested) {
            /* A handler ran: as the kernel's epoll_wait, EINTR. */
            n = px_fail(EINTR);
            break;
        }
    }
    if (mask) {
        int saved = errno;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        errno = saved;
    }
    return n;
}

int epoll_wait(int epfd, struct epoll_event *evs, int max, int timeout)
{
    return ep_wait(epfd, evs, max, timeout, NULL, false);
}

int epoll_pwait(int epfd, struct epoll_event *evs, int max, int timeout, const sigset_t *mask)
{
    return ep_wait(epfd, evs, max, timeout, mask, true);
}

/* ---- poll and select ---- */

/* poll over a mixed array; @ours: how many entries are stack sockets. */
static int poll_mixed(struct pollfd *fds, nfds_t n, int timeout, const sigset_t *mask)
{
    struct pollfd small[64];
    nfds_t nk = 0;
    for (nfds_t i = 0; i < n; i++) {
        int refused;
        if (!px_sock_of(fds[i].fd, &refused) && !refused)
            nk++;
    }
    struct pollfd *kfds = nk <= 64 ? small : malloc(nk * sizeof(*kfds));
    nfds_t *kidx = malloc((nk ? nk : 1) * sizeof(*kidx));
    if (!kfds || !kidx) {
        if (kfds != small)
            free(kfds);
        free(kidx);
        return px_fail(ENOMEM);
    }
    nk = 0;
    for (nfds_t i = 0; i < n; i++) {
        int refused;
        if (!px_sock_of(fds[i].fd, &refused) && !refused) {
            kidx[nk] = i;
            kfds[nk++] = fds[i];
        }
    }
    sigset_t old;
    if (mask)
        pthread_sigmask(SIG_SETMASK, mask, &old);
    static const struct timespec zero = {0, 0};
    uint64_t deadline = deadline_ms(timeout);
    int ready;
    bool harvested = false; /* as in ep_wait */
    struct px_sigcount c0, c;
    px_sig_snapshot(&c0);
    for (;;) {
        if (px_started_here() && !harvested)
            px_drive(&zero);
        ready = 0;
        for (nfds_t i = 0; i < n; i++) {
            int refused;
            struct px_sock *s = px_sock_of(fds[i].fd, &refused);
            if (refused)
                fds[i].revents = POLLNVAL;
            else if (s)
                fds[i].revents = (short)(px_events(s) & ((uint16_t)fds[i].events | POLLERR | POLLHUP));
            else
                continue;
            if (fds[i].revents)
                ready++;
        }
        if (nk) {
            int k = px_real.poll(kfds, nk, 0);
            if (k < 0 && !ready) {
                ready = -1;
                break;
            }
            for (nfds_t j = 0; j < nk; j++)
                fds[kidx[j]].revents = k > 0 ? kfds[j].revents : 0;
            if (k > 0)
                ready += k;
        }
        if (ready || expired(timeout, deadline) || !px_started_here())
            break;
        struct timespec ts = slice_until(deadline, nk > 0);
        harvested = px_drive(&ts) == 0;
        px_sig_snapshot(&c);
        if (c.any != c0.any && !harvested) {
            ready = px_fail(EINTR); /* as the kernel's poll and select */
            break;
        }
    }
    if (mask) {
        int saved = errno;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        errno = saved;
    }
    if (kfds != small)
        free(kfds);
    free(kidx);
    return ready;
}

static bool any_ours(const struct pollfd *fds, nfds_t n)
{
    if (px_inside)
        return false;
    for (nfds_t i = 0; i < n; i++) {
        int refused;
        if (px_sock_of(fds[i].fd, &refused) || refused)
            return true;
    }
    return false;
}

/* glibc declares poll's array write-only (access attribute); it is read
 * too (events, fd), which gcc then calls a read of uninitialised memory. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
int poll(struct pollfd *fds, nfds_t n, int timeout)
{
    PX_ENSURE();
    if (!fds || !any_ours(fds, n))
        return px_real.poll(fds, n, timeout);
    return poll_mixed(fds, n, timeout, NULL);
}

int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen)
{
    PX_ENSURE();
    if (!fds || !any_ours(fds, n))
        return px_real.__poll_chk(fds, n, timeout, fdslen);
    if (fdslen / sizeof(*fds) < n)
        return px_fail(EFAULT);
    return poll_mixed(fds, n, timeout, NULL);
}

static int ts_to_ms(const struct timespec *ts)
{
    if (!ts)
        return -1;
    if (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000)
        return -2;
    uint64_t ms = (uint64_t)ts->tv_sec * 1000u + ((uint64_t)ts->tv_nsec + 999999u) / 1000000u;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *mask)
{
    PX_ENSURE();
    if (!fds || !any_ours(fds, n))
        return px_real.ppoll(fds, n, ts, mask);
    int ms = ts_to_ms(ts);
    if (ms == -2)
        return px_fail(EINVAL);
    return poll_mixed(fds, n, ms, mask);
}
#pragma GCC diagnostic pop

/* select over poll_mixed: the fd_sets become a pollfd array and back. */
static int select_mixed(int nfds, fd_set *r, fd_set *w, fd_set *x, int timeout, const sigset_t *mask)
{
    struct pollfd *p = malloc((size_t)nfds * sizeof(*p));
    if (!p)
        return px_fail(ENOMEM);
    nfds_t n = 0;
    for (int fd = 0; fd < nfds; fd++) {
        short ev = (short)((r && FD_ISSET(fd, r) ? POLLIN : 0) | (w && FD_ISSET(fd, w) ? POLLOUT : 0) |
                           (x && FD_ISSET(fd, x) ? POLLPRI : 0));
        if (ev)
            p[n++] = (struct pollfd){.fd = fd, .events = ev};
    }
    int k = poll_mixed(p, n, timeout, mask);
    if (k < 0) {
        free(p);
        return -1;
    }
    for (nfds_t i = 0; i < n; i++) {
        if (p[i].revents & POLLNVAL) {
            free(p);
            return px_fail(EBADF);
        }
    }
    int bits = 0;
    for (nfds_t i = 0; i < n; i++) {
        int fd = p[i].fd;
        short rv = p[i].revents;
        if (r && FD_ISSET(fd, r)) {
            if (rv & (POLLIN | POLLHUP | POLLERR))
                bits++;
            else
                FD_CLR(fd, r);
        }
        if (w && FD_ISSET(fd, w)) {
            if (rv & (POLLOUT | POLLERR))
                bits++;
            else
                FD_CLR(fd, w);
        }
        if (x && FD_ISSET(fd, x)) {
            if (rv & POLLPRI)
                bits++;
            else
                FD_CLR(fd, x);
        }
    }
    free(p);
    return bits;
}

static bool sets_have_ours(int nfds, fd_set *r, fd_set *w, fd_set *x)
{
    if (px_inside || nfds <= 0)
        return false;
    for (int fd = 0; fd < nfds && fd < FD_SETSIZE; fd++) {
        if ((r && FD_ISSET(fd, r)) || (w && FD_ISSET(fd, w)) || (x && FD_ISSET(fd, x))) {
            int refused;
            if (px_sock_of(fd, &refused) || refused)
                return true;
        }
    }
    return false;
}

int select(int nfds, fd_set *r, fd_set *w, fd_set *x, struct timeval *tv)
{
    PX_ENSURE();
    if (!sets_have_ours(nfds, r, w, x))
        return px_real.select(nfds, r, w, x, tv);
    if (nfds > FD_SETSIZE)
        return px_fail(EINVAL);
    int ms = -1;
    if (tv) {
        if (tv->tv_sec < 0 || tv->tv_usec < 0 || tv->tv_usec >= 1000000)
            return px_fail(EINVAL);
        uint64_t m = (uint64_t)tv->tv_sec * 1000u + ((uint64_t)tv->tv_usec + 999u) / 1000u;
        ms = m > INT_MAX ? INT_MAX : (int)m;
    }
    uint64_t start = px_now_ns();
    int k = select_mixed(nfds, r, w, x, ms, NULL);
    if (tv && k >= 0) {
        /* As Linux: the time not slept is written back. */
        uint64_t spent = (px_now_ns() - start) / 1000u, total = (uint64_t)ms * 1000u;
        uint64_t left = spent < total ? total - spent : 0;
        if (k == 0)
            left = 0;
        tv->tv_sec = (time_t)(left / 1000000u);
        tv->tv_usec = (suseconds_t)(left % 1000000u);
    }
    return k;
}

int pselect(int nfds, fd_set *r, fd_set *w, fd_set *x, const struct timespec *ts, const sigset_t *mask)
{
    PX_ENSURE();
    if (!sets_have_ours(nfds, r, w, x))
        return px_real.pselect(nfds, r, w, x, ts, mask);
    if (nfds > FD_SETSIZE)
        return px_fail(EINVAL);
    int ms = ts_to_ms(ts);
    if (ms == -2)
        return px_fail(EINVAL);
    return select_mixed(nfds, r, w, x, ms, mask);
}
