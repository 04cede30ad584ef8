/*
 * libdemi-posix core: the descriptor table, the stack's start on the
 * program's network thread, the operations in flight and what their
 * completions do to a socket's state. It never blocks except in
 * px_drive() (inside demi_wait_next_n) and never aborts: a call it cannot
 * serve fails with an errno and, for what is unsupported, one log line.
 */
#include "px.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

struct px_real px_real;
__thread int px_inside __attribute__((tls_model("initial-exec")));
size_t px_nfds;
struct px_sock **px_fds;

/* The thread that started the stack (px_here), and whether this process is
 * a child forked from the one that did (its sockets are the parent's). */
static __thread bool px_here __attribute__((tls_model("initial-exec")));
static bool px_started;
static bool px_forked;
static pthread_mutex_t px_start_lock = PTHREAD_MUTEX_INITIALIZER;

void px_log(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    static const char pre[] = "libdemi-posix: ";
    struct iovec iov[2] = {{(void *)pre, sizeof(pre) - 1}, {line, (size_t)n}};
    int saved = errno;
    ssize_t r = px_real.writev ? px_real.writev(2, iov, 2) : -1;
    (void)r;
    errno = saved;
}

uint64_t px_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int px_refuse(int fd)
{
    if (px_forked) {
        px_log_once("descriptor %d is a socket of the parent process's stack: refused in a forked child (EBADF)", fd);
        return EBADF;
    }
    if (!px_here) {
        px_log_once("descriptor %d belongs to the network thread's stack: a call on it from another thread is "
                    "refused (EPERM)",
                    fd);
        return EPERM;
    }
    return 0;
}

bool px_started_here(void)
{
    return px_here && !px_forked;
}

static void px_atfork_child(void)
{
    px_forked = true;
}

#define RESOLVE(name) px_real.name = (__typeof__(px_real.name))dlsym(RTLD_NEXT, #name)

bool px_ready;
static pthread_once_t px_load_once = PTHREAD_ONCE_INIT;

static void px_load(void);

/* Another library's constructor (or the AddressSanitizer runtime, preloaded
 * before us) may call an interposed function before our constructor ran:
 * every entry point makes sure the kernel's functions are known first. */
void px_ensure(void)
{
    pthread_once(&px_load_once, px_load);
}

__attribute__((constructor)) static void px_constructor(void)
{
    px_ensure();
}

static void px_load(void)
{
    RESOLVE(socket);
    RESOLVE(close);
    RESOLVE(bind);
    RESOLVE(listen);
    RESOLVE(accept);
    RESOLVE(accept4);
    RESOLVE(connect);
    RESOLVE(read);
    RESOLVE(write);
    RESOLVE(readv);
    RESOLVE(writev);
    RESOLVE(recv);
    RESOLVE(send);
    RESOLVE(recvfrom);
    RESOLVE(sendto);
    RESOLVE(recvmsg);
    RESOLVE(sendmsg);
    RESOLVE(recvmmsg);
    RESOLVE(sendmmsg);
    RESOLVE(__read_chk);
    RESOLVE(__recv_chk);
    RESOLVE(__recvfrom_chk);
    RESOLVE(shutdown);
    RESOLVE(getsockname);
    RESOLVE(getpeername);
    RESOLVE(setsockopt);
    RESOLVE(getsockopt);
    RESOLVE(fcntl);
    RESOLVE(fcntl64);
    RESOLVE(ioctl);
    RESOLVE(dup);
    RESOLVE(dup2);
    RESOLVE(dup3);
    RESOLVE(close_range);
    RESOLVE(sendfile);
    RESOLVE(sendfile64);
    RESOLVE(fdopen);
    RESOLVE(epoll_ctl);
    RESOLVE(epoll_wait);
    RESOLVE(epoll_pwait);
    RESOLVE(poll);
    RESOLVE(ppoll);
    RESOLVE(__poll_chk);
    RESOLVE(select);
    RESOLVE(pselect);
    RESOLVE(sigaction);
    RESOLVE(signal);
    /* One slot per descriptor the process may ever hold. The table is
     * reserved, not touched: untouched pages cost nothing. */
    struct rlimit rl;
    size_t n = 1u << 16;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY && rl.rlim_max > n)
        n = rl.rlim_max;
    if (n > (1u << 20))
        n = 1u << 20;
    void *p =
        mmap(NULL, n * sizeof(*px_fds), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p != MAP_FAILED) {
        px_fds = p;
        px_nfds = n;
    }
    pthread_atfork(NULL, NULL, px_atfork_child);
    __atomic_store_n(&px_ready, true, __ATOMIC_RELEASE);
}

int px_start(void)
{
    if (px_here)
        return 0;
    if (px_forked || !px_fds)
        return ENOTSUP;
    pthread_mutex_lock(&px_start_lock);
    int e = 0;
    if (px_started) {
        e = EALREADY; /* another thread is the network thread */
    } else {
        px_inside++;
        e = demi_init(NULL);
        px_inside--;
        if (e == EEXIST)
            e = 0;
        if (!e) {
            px_started = true;
            px_here = true;
        } else {
            px_log_once("demi_init failed (%s): AF_INET sockets fail with that error", strerror(e));
        }
    }
    pthread_mutex_unlock(&px_start_lock);
    return e;
}

/* ---- operations in flight: token -> (socket, kind, bytes) ----
 * Open addressing with linear probing; deletion shifts entries back, so
 * there are no tombstones. Results are matched by token, never by queue
 * descriptor: a closed socket's descriptor may already name a new one. */

struct px_op {
    demi_qtoken_t qt;
    struct px_sock *s;
    uint32_t bytes;
    uint8_t kind;
    bool used;
};

static struct px_op *px_ops;
static size_t px_ops_cap, px_ops_n;

static size_t op_slot(demi_qtoken_t qt, size_t cap)
{
    return (size_t)((qt * 0x9E3779B97F4A7C15ull) >> 32) & (cap - 1);
}

static int op_grow(void)
{
    size_t cap = px_ops_cap ? px_ops_cap * 2 : 1024;
    struct px_op *t = calloc(cap, sizeof(*t));
    if (!t)
        return ENOMEM;
    for (size_t i = 0; i < px_ops_cap; i++) {
        if (!px_ops[i].used)
            continue;
        size_t j = op_slot(px_ops[i].qt, cap);
        while (t[j].used)
            j = (j + 1) & (cap - 1);
        t[j] = px_ops[i];
    }
    free(px_ops);
    px_ops = t;
    px_ops_cap = cap;
    return 0;
}

int px_op_add(demi_qtoken_t qt, struct px_sock *s, enum px_kind kind, uint32_t bytes)
{
    if ((px_ops_n + 1) * 2 > px_ops_cap && op_grow())
        return ENOMEM;
    size_t j = op_slot(qt, px_ops_cap);
    while (px_ops[j].used)
        j = (j + 1) & (px_ops_cap - 1);
    px_ops[j] = (struct px_op){.qt = qt, .s = s, .bytes = bytes, .kind = (uint8_t)kind, .used = true};
    px_ops_n++;
    s->ops++;
    return 0;
}

static bool op_take(demi_qtoken_t qt, struct px_op *out)
{
    if (!px_ops_cap)
        return false;
    size_t mask = px_ops_cap - 1, j = op_slot(qt, px_ops_cap);
    while (px_ops[j].used && px_ops[j].qt != qt)
        j = (j + 1) & mask;
    if (!px_ops[j].used)
        return false;
    *out = px_ops[j];
    /* Backward shift: move later entries of the probe run into the hole
     * when their home slot does not lie (cyclically) after it. */
    size_t hole = j;
    for (size_t k = (j + 1) & mask; px_ops[k].used; k = (k + 1) & mask) {
        size_t home = op_slot(px_ops[k].qt, px_ops_cap);
        if (((k - home) & mask) >= ((k - hole) & mask)) {
            px_ops[hole] = px_ops[k];
            hole = k;
        }
    }
    px_ops[hole].used = false;
    px_ops_n--;
    return true;
}

/* ---- sockets ---- */

void px_rx_free(struct px_rx *r)
{
    if (r->sga.sga_numsegs) {
        px_inside++;
        demi_sgafree(&r->sga);
        px_inside--;
    }
    free(r);
}

static void sock_release(struct px_sock *s)
{
    if (s->fd < 0 && s->ops == 0)
        free(s);
}

void px_want_input(struct px_sock *s)
{
    if (s->fd < 0 || s->fatal)
        return;
    demi_qtoken_t qt;
    int e;
    if (s->state == PX_LISTENING) {
        if (s->acc_posted || s->acc_count >= s->backlog)
            return;
        px_inside++;
        e = demi_accept(&qt, s->qd);
        px_inside--;
        if (!e && !(e = px_op_add(qt, s, PX_OP_ACCEPT, 0)))
            s->acc_posted = true;
        return;
    }
    if (s->pop_posted || s->eof || s->rd_shut)
        return;
    if (s->type == SOCK_STREAM ? (s->state != PX_CONNECTED || s->rx_bytes >= PX_RX_LIMIT)
                               : (s->rx_count >= PX_RX_DGRAMS || s->rx_bytes >= PX_RX_LIMIT))
        return;
    px_inside++;
    e = demi_pop(&qt, s->qd);
    px_inside--;
    /* A UDP socket not yet bound cannot pop: it is tried again when a
     * bind, connect or send gives it an address. */
    if (!e && !(e = px_op_add(qt, s, PX_OP_POP, 0)))
        s->pop_posted = true;
}

static void got_pop(struct px_sock *s, demi_qresult_t *qr)
{
    s->pop_posted = false;
    if (qr->qr_opcode == DEMI_OPC_FAILED) {
        if (qr->qr_ret != ECANCELED && s->type == SOCK_STREAM)
            s->fatal = (int)qr->qr_ret;
        return;
    }
    if (s->fd < 0 || s->rd_shut) {
        if (qr->qr_value.sga.sga_numsegs) {
            px_inside++;
            demi_sgafree(&qr->qr_value.sga);
            px_inside--;
        }
        return;
    }
    if (s->type == SOCK_STREAM && qr->qr_value.sga.sga_numsegs == 0) {
        s->eof = true;
        return;
    }
    struct px_rx *r = calloc(1, sizeof(*r));
    if (!r) {
        /* Out of memory: the data cannot be staged. Failing the
         * connection is the only honest outcome (a silent drop would
         * corrupt the stream). */
        px_log_once("out of memory staging received data: connection reset");
        px_inside++;
        demi_sgafree(&qr->qr_value.sga);
        px_inside--;
        if (s->type == SOCK_STREAM)
            s->fatal = ENOMEM;
        return;
    }
    r->sga = qr->qr_value.sga;
    for (uint32_t i = 0; i < r->sga.sga_numsegs; i++)
        r->left += r->sga.sga_segs[i].sgaseg_len;
    if (s->rx_tail)
        s->rx_tail->next = r;
    else
        s->rx_head = r;
    s->rx_tail = r;
    s->rx_bytes += r->left;
    s->rx_count++;
}

static void got_accept(struct px_sock *s, demi_qresult_t *qr)
{
    s->acc_posted = false;
    if (qr->qr_opcode != DEMI_OPC_ACCEPT)
        return;
    struct px_acc *a = s->fd >= 0 ? calloc(1, sizeof(*a)) : NULL;
    if (!a) {
        px_inside++;
        demi_close(qr->qr_value.ares.qd);
        px_inside--;
        return;
    }
    a->qd = qr->qr_value.ares.qd;
    a->addr = qr->qr_value.ares.addr;
    if (s->acc_tail)
        s->acc_tail->next = a;
    else
        s->acc_head = a;
    s->acc_tail = a;
    s->acc_count++;
}

static void px_dispatch(demi_qresult_t *qr)
{
    struct px_op op;
    if (!op_take(qr->qr_qt, &op)) {
        /* Not ours (the program made demi_* calls of its own): a popped
         * array would leak, so it is freed. */
        if (qr->qr_opcode == DEMI_OPC_POP && qr->qr_value.sga.sga_numsegs) {
            px_inside++;
            demi_sgafree(&qr->qr_value.sga);
            px_inside--;
        }
        return;
    }
    struct px_sock *s = op.s;
    switch (op.kind) {
    case PX_OP_POP:
        got_pop(s, qr);
        break;
    case PX_OP_ACCEPT:
        got_accept(s, qr);
        break;
    case PX_OP_CONNECT:
        s->conn_posted = false;
        if (qr->qr_opcode == DEMI_OPC_CONNECT) {
            s->state = PX_CONNECTED;
        } else if (s->type == SOCK_STREAM) {
            s->state = PX_FAILED;
            s->err = (int)qr->qr_ret;
        }
        break;
    case PX_OP_PUSH:
        s->tx_inflight -= op.bytes;
        if (qr->qr_opcode == DEMI_OPC_FAILED && qr->qr_ret != ECANCELED && s->type == SOCK_STREAM && !s->fatal)
            s->fatal = (int)qr->qr_ret;
        break;
    }
    s->ops--;
    if (s->fd < 0) {
        sock_release(s);
        return;
    }
    px_want_input(s);
    s->seq++;
    px_ev_notify(s);
}

int px_drive(const struct timespec *timeout)
{
    static const struct timespec slice = {1, 0};
    demi_qresult_t qrs[32];
    int n = 0;
    px_inside++;
    int e = demi_wait_next_n(qrs, 32, &n, timeout ? timeout : &slice);
    px_inside--;
    for (int i = 0; i < n; i++)
        px_dispatch(&qrs[i]);
    return e ? e : n ? 0 : ETIMEDOUT;
}

uint32_t px_events(const struct px_sock *s)
{
    uint32_t ev = 0;
    bool room = PX_TX_LIMIT - s->tx_inflight >= PX_TX_LIMIT / 4;
    if (s->type == SOCK_DGRAM) {
        if (s->rx_count)
            ev |= EPOLLIN | EPOLLRDNORM;
        if (room)
            ev |= EPOLLOUT | EPOLLWRNORM;
        return ev;
    }
    switch (s->state) {
    case PX_NEW:
        return EPOLLOUT | EPOLLWRNORM | EPOLLHUP;
    case PX_LISTENING:
        return s->acc_count ? EPOLLIN | EPOLLRDNORM : 0;
    case PX_CONNECTING:
        return 0;
    case PX_FAILED:
        return EPOLLIN | EPOLLRDNORM | EPOLLOUT | EPOLLWRNORM | EPOLLERR | EPOLLHUP;
    case PX_CONNECTED:
        break;
    }
    if (s->fatal)
        return EPOLLIN | EPOLLRDNORM | EPOLLOUT | EPOLLWRNORM | EPOLLERR | EPOLLHUP | EPOLLRDHUP;
    if (s->rx_bytes || s->eof || s->rd_shut)
        ev |= EPOLLIN | EPOLLRDNORM;
    if (s->eof || s->rd_shut)
        ev |= EPOLLRDHUP;
    if (s->wr_shut && (s->eof || s->rd_shut))
        ev |= EPOLLHUP;
    if (room || s->wr_shut)
        ev |= EPOLLOUT | EPOLLWRNORM;
    return ev;
}

int px_block(struct px_sock *s, bool (*done)(const struct px_sock *), const struct timeval *tv)
{
    uint64_t limit = tv && (tv->tv_sec || tv->tv_usec)
                         ? px_now_ns() + (uint64_t)tv->tv_sec * 1000000000u + (uint64_t)tv->tv_usec * 1000u
                         : 0;
    struct px_sigcount c0, c;
    px_sig_snapshot(&c0);
    while (!done(s)) {
        uint64_t left = px_sig_slice_ns();
        if (limit) {
            uint64_t now = px_now_ns();
            if (now >= limit)
                return EAGAIN;
            if (limit - now < left)
                left = limit - now;
        }
        struct timespec ts = {(time_t)(left / 1000000000u), (long)(left % 1000000000u)};
        px_drive(&ts);
        px_sig_snapshot(&c);
        if (c.intr != c0.intr && !done(s))
            return EINTR;
    }
    return 0;
}

/* ---- signals: the program's handlers, wrapped to count deliveries ----
 * A wait in the stack cannot be interrupted the way a system call is, so
 * the handlers the program installs are wrapped: each delivery is counted,
 * and a wait that sees the count move returns EINTR (epoll_wait, poll and
 * select always, as in the kernel; blocking socket calls when the handler
 * lacks SA_RESTART). The program sees its own handler in oldact. */

static struct sigaction px_app[_NSIG];
static struct px_sigcount px_sigs;
static int px_nhandlers;

void px_sig_snapshot(struct px_sigcount *c)
{
    c->any = __atomic_load_n(&px_sigs.any, __ATOMIC_ACQUIRE);
    c->intr = __atomic_load_n(&px_sigs.intr, __ATOMIC_ACQUIRE);
}

uint64_t px_sig_slice_ns(void)
{
    return __atomic_load_n(&px_nhandlers, __ATOMIC_RELAXED) ? 50000000u : 1000000000u;
}

static void px_sig_wrapper(int sig, siginfo_t *si, void *ctx)
{
    struct sigaction a = px_app[sig];
    __atomic_fetch_add(&px_sigs.any, 1, __ATOMIC_RELEASE);
    if (!(a.sa_flags & SA_RESTART))
        __atomic_fetch_add(&px_sigs.intr, 1, __ATOMIC_RELEASE);
    if (a.sa_flags & SA_RESETHAND) {
        /* One delivery only, as the kernel would have done. */
        struct sigaction dfl;
        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        px_real.sigaction(sig, &dfl, NULL);
        memset(&px_app[sig], 0, sizeof(px_app[sig]));
        __atomic_fetch_sub(&px_nhandlers, 1, __ATOMIC_RELAXED);
    }
    if (a.sa_flags & SA_SIGINFO) {
        if (a.sa_sigaction)
            a.sa_sigaction(sig, si, ctx);
    } else if (a.sa_handler != SIG_DFL && a.sa_handler != SIG_IGN) {
        a.sa_handler(sig);
    }
}

static bool is_handler(const struct sigaction *a)
{
    return (a->sa_flags & SA_SIGINFO) ? a->sa_sigaction != NULL : a->sa_handler != SIG_DFL && a->sa_handler != SIG_IGN;
}

/* sigaction and signal can be called before our constructor ran (by the
 * AddressSanitizer runtime's own start, preloaded before us): resolve
 * them on first use. */
static void sig_resolve(void)
{
    PX_ENSURE();
}

int sigaction(int sig, const struct sigaction *act, struct sigaction *oldact)
{
    sig_resolve();
    if (px_inside || sig <= 0 || sig >= _NSIG)
        return px_real.sigaction(sig, act, oldact);
    struct sigaction prev;
    int r;
    if (act && is_handler(act)) {
        struct sigaction w = *act;
        w.sa_flags |= SA_SIGINFO;
        w.sa_flags &= ~SA_RESETHAND; /* the wrapper does the reset */
        w.sa_sigaction = px_sig_wrapper;
        struct sigaction saved = px_app[sig];
        px_app[sig] = *act;
        r = px_real.sigaction(sig, &w, &prev);
        if (r) {
            px_app[sig] = saved;
            return r;
        }
        if (prev.sa_sigaction == px_sig_wrapper && (prev.sa_flags & SA_SIGINFO))
            prev = saved;
        else
            __atomic_fetch_add(&px_nhandlers, 1, __ATOMIC_RELAXED);
    } else {
        r = px_real.sigaction(sig, act, &prev);
        if (r)
            return r;
        if (prev.sa_sigaction == px_sig_wrapper && (prev.sa_flags & SA_SIGINFO)) {
            prev = px_app[sig];
            if (act)
                __atomic_fetch_sub(&px_nhandlers, 1, __ATOMIC_RELAXED);
        }
    }
    if (oldact)
        *oldact = prev;
    return 0;
}

__sighandler_t signal(int sig, __sighandler_t handler)
{
    sig_resolve();
    if (px_inside)
        return px_real.signal(sig, handler);
    /* As glibc's signal(): BSD semantics, the call restarted. */
    struct sigaction a, old;
    memset(&a, 0, sizeof(a));
    a.sa_handler = handler;
    a.sa_flags = SA_RESTART;
    sigemptyset(&a.sa_mask);
    sigaddset(&a.sa_mask, sig);
    if (sigaction(sig, &a, &old) < 0)
        return SIG_ERR;
    return (old.sa_flags & SA_SIGINFO) ? (__sighandler_t)(void (*)(void))old.sa_sigaction : old.sa_handler;
}
