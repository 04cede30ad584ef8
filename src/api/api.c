/*
 * The PDPIX entry points: argument checks, the thread's instance, queue
 * descriptors and qtokens. Every demi_* call returns 0 or a positive errno
 * and checks each pointer, descriptor and size before use: nothing a caller
 * passes may crash the library. Below this file nothing sees a qd.
 */
#include "core/common.h"
#include "core/config.h"
#include "core/log.h"
#include "core/runtime.h"
#include "libos/libos.h"
#include "mem/sga.h"

#include <demi/libos.h>
#include <demi/sga.h>
#include <demi/version.h>
#include <demi/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One instance per thread; shared-nothing. Initial-exec: one %fs-relative
 * load per call instead of a __tls_get_addr call (libdemi is linked, not
 * dlopen'ed, so the static TLS block always has room). */
static __thread struct runtime *tls_rt __attribute__((tls_model("initial-exec")));

static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t rt_key;

static void teardown(struct runtime *rt)
{
    for (int i = rt->nlos - 1; i >= 0; i--)
        rt->los[i]->ops->destroy(rt->los[i]);
    rt->nlos = 0;
    rt_destroy(rt);
}

/* Thread exit: release the instance of a thread that used libdemi. */
static void thread_exit(void *p)
{
    if (p)
        teardown(p);
}

/* The process that created the instances (set by the first demi_init). */
static pid_t owner_pid;

/* Process exit: release the instance of the thread calling exit(). A
 * child forked from the process that made it leaves it alone: the
 * devices, sockets and shared rings are the parent's, and tearing them
 * down (a memif disconnect, an XDP program detached) would break it. */
static void process_exit(void)
{
    struct runtime *rt = tls_rt;
    if (!rt || getpid() != owner_pid)
        return;
    tls_rt = NULL;
    pthread_setspecific(rt_key, NULL);
    teardown(rt);
}

static void make_key(void)
{
    owner_pid = getpid();
    pthread_key_create(&rt_key, thread_exit);
    atexit(process_exit);
}

static int not_initialised(void)
{
    log_once(LOGL_ERROR, "a demi_* call came before demi_init() on this thread (EPERM)");
    return EPERM;
}

#define GET_RT(rt)                                                                                                     \
    struct runtime *rt = tls_rt;                                                                                       \
    if (unlikely(!rt))                                                                                                 \
    return not_initialised()

int demi_init(const struct demi_args *args)
{
    (void)args; /* argv is the program's own: never parsed here */
    log_init();
    if (tls_rt)
        return EEXIST;

    struct config cfg;
    char err[256] = "";
    int e = config_load(&cfg, NULL, err, sizeof(err));
    if (e) {
        log_error("config: %s", err[0] ? err : strerror(e));
        config_free(&cfg);
        return e;
    }
    struct runtime *rt;
    e = rt_create(&rt, &cfg, false);
    if (e) {
        log_error("cannot reserve a %llu-byte heap (libdemi.heap_size / HEAP_SIZE): %s",
                  (unsigned long long)cfg.heap_size, strerror(e));
        config_free(&cfg);
        return e;
    }
    struct libos *los;
    e = libos_create(rt->cfg.libos, rt, &los);
    if (e) {
        rt_destroy(rt);
        return e;
    }
    rt->los[0] = los;
    rt->nlos = 1;
    pthread_once(&key_once, make_key);
    pthread_setspecific(rt_key, rt);
    tls_rt = rt;
    static const char *const huge[] = {"auto", "on", "off"};
    log_info("version %s initialised %s on thread %d (heap %llu MiB reserved, hugepages %s)", demi_version(),
             rt->cfg.libos, (int)gettid(), (unsigned long long)(rt->cfg.heap_size >> 20), huge[rt->cfg.hugepages]);
    config_log(&rt->cfg);
    return 0;
}

static int get_queue(struct runtime *rt, int qd, struct qentry **out)
{
    struct qentry *e = qtable_get(&rt->qtable, qd);
    if (!e)
        return EBADF;
    *out = e;
    return 0;
}

static int get_addr(const struct sockaddr *addr, socklen_t size, struct sockaddr_in *out)
{
    if (!addr || size < (socklen_t)sizeof(struct sockaddr_in))
        return EINVAL;
    if (addr->sa_family != AF_INET)
        return EAFNOSUPPORT;
    memcpy(out, addr, sizeof(*out));
    return 0;
}

/* A descriptor for the new queue @q of @l (closed again if none is free). */
static int install(struct runtime *rt, struct libos *l, void *q, int *qd_out)
{
    int qd;
    int e = qtable_alloc(&rt->qtable, l, q, &qd);
    if (e) {
        l->ops->close(l, q);
        return e;
    }
    *qd_out = qd;
    return 0;
}

int demi_socket(int *sockqd_out, int domain, int type, int protocol)
{
    GET_RT(rt);
    if (!sockqd_out)
        return EINVAL;
    if (domain != AF_INET)
        return EAFNOSUPPORT;
    int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (base != SOCK_STREAM && base != SOCK_DGRAM)
        return ESOCKTNOSUPPORT;
    if (protocol != 0 && !(base == SOCK_STREAM && protocol == IPPROTO_TCP) &&
        !(base == SOCK_DGRAM && protocol == IPPROTO_UDP))
        return EPROTONOSUPPORT;
    struct libos *l = rt->los[0];
    void *q;
    int e = l->ops->socket(l, base, &q);
    if (e)
        return e;
    return install(rt, l, q, sockqd_out);
}

/* A libOS beside the network one (los[0]), on the same runtime, scheduler,
 * heap and qd table: the storage libOS (ops->open) or the memory one
 * (ops->pipe), created by @create at the thread's first call that needs it. */
static int side_libos(struct runtime *rt, bool storage, int (*create)(struct runtime *, struct libos **),
                      struct libos **out)
{
    for (int i = 1; i < rt->nlos; i++) {
        if (storage ? rt->los[i]->ops->open != NULL : rt->los[i]->ops->pipe != NULL) {
            *out = rt->los[i];
            return 0;
        }
    }
    if (rt->nlos == RT_MAX_LIBOS)
        return ENOMEM;
    struct libos *l;
    int e = create(rt, &l);
    if (e)
        return e;
    rt->los[rt->nlos++] = l;
    *out = l;
    return 0;
}

int demi_open(int *qd_out, const char *pathname, int flags, mode_t mode)
{
    GET_RT(rt);
    if (!qd_out || !pathname)
        return EINVAL;
    if (!*pathname)
        return ENOENT; /* as open(2) */
    int acc = flags & O_ACCMODE;
    if (acc != O_RDONLY && acc != O_RDWR) {
        log_error("demi_open: %s: the access mode must be O_RDONLY or O_RDWR (a log is read to find its end)",
                  pathname);
        return EINVAL;
    }
    int known = O_ACCMODE | O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC | DEMI_O_REPAIR;
    if (flags & ~known) {
        log_error("demi_open: %s: unsupported flags 0x%x (only O_RDONLY, O_RDWR, O_CREAT, O_EXCL, O_TRUNC, O_CLOEXEC, "
                  "DEMI_O_REPAIR)",
                  pathname, (unsigned)(flags & ~known));
        return EINVAL;
    }
    if ((flags & (O_CREAT | O_EXCL | O_TRUNC)) && acc != O_RDWR) {
        log_error("demi_open: %s: O_CREAT, O_EXCL and O_TRUNC need O_RDWR", pathname);
        return EINVAL;
    }
    if ((flags & O_EXCL) && !(flags & O_CREAT))
        return EINVAL;
    if (mode & ~(mode_t)07777)
        return EINVAL;
    struct libos *l;
    int e = side_libos(rt, true, cattree_create, &l);
    if (e)
        return e;
    void *q;
    e = l->ops->open(l, pathname, flags & ~O_CLOEXEC, mode, &q);
    if (e)
        return e;
    return install(rt, l, q, qd_out);
}

static int pipe_call(int *qd_out, const char *name, bool create)
{
    GET_RT(rt);
    if (!qd_out || !name)
        return EINVAL;
    struct libos *l;
    int e = side_libos(rt, false, catmem_create, &l);
    if (e)
        return e;
    void *q;
    if ((e = l->ops->pipe(l, name, create, &q)))
        return e;
    return install(rt, l, q, qd_out);
}

int demi_create_pipe(int *memqd_out, const char *name)
{
    return pipe_call(memqd_out, name, true);
}

int demi_open_pipe(int *memqd_out, const char *name)
{
    return pipe_call(memqd_out, name, false);
}

int demi_bind(int sockqd, const struct sockaddr *addr, socklen_t size)
{
    GET_RT(rt);
    struct qentry *q;
    struct sockaddr_in sin;
    int e = get_queue(rt, sockqd, &q);
    if (!e)
        e = get_addr(addr, size, &sin);
    if (e)
        return e;
    return q->los->ops->bind(q->los, q->q, &sin);
}

int demi_listen(int sockqd, int backlog)
{
    GET_RT(rt);
    struct qentry *q;
    int e = get_queue(rt, sockqd, &q);
    if (e)
        return e;
    if (backlog < 0)
        return EINVAL;
    return q->los->ops->listen(q->los, q->q, backlog);
}

/* An asynchronous operation: a task for it, then the libOS (see libos.h
 * for who owns the task afterwards). */
static struct sched_task *op_task(struct runtime *rt, int qd)
{
    struct sched_task *t = sched_alloc(&rt->sched, NULL, NULL);
    if (t)
        t->qd = qd;
    return t;
}

static int op_started(struct runtime *rt, struct sched_task *t, int err, demi_qtoken_t *qt_out)
{
    if (err) {
        sched_free(&rt->sched, t);
        return err;
    }
    *qt_out = sched_qtoken(t);
    return 0;
}

#define START_OP(rt, qt_out, qdesc, call)                                                                              \
    do {                                                                                                               \
        struct sched_task *t = op_task((rt), (qdesc));                                                                 \
        if (!t)                                                                                                        \
            return ENOMEM;                                                                                             \
        return op_started((rt), t, (call), (qt_out));                                                                  \
    } while (0)

int demi_accept(demi_qtoken_t *qt_out, int sockqd)
{
    GET_RT(rt);
    struct qentry *q;
    if (!qt_out)
        return EINVAL;
    int e = get_queue(rt, sockqd, &q);
    if (e)
        return e;
    START_OP(rt, qt_out, sockqd, q->los->ops->accept(q->los, q->q, t));
}

int demi_connect(demi_qtoken_t *qt_out, int sockqd, const struct sockaddr *addr, socklen_t size)
{
    GET_RT(rt);
    struct qentry *q;
    struct sockaddr_in sin;
    if (!qt_out)
        return EINVAL;
    int e = get_queue(rt, sockqd, &q);
    if (!e)
        e = get_addr(addr, size, &sin);
    if (e)
        return e;
    START_OP(rt, qt_out, sockqd, q->los->ops->connect(q->los, q->q, &sin, t));
}

int demi_close(int qd)
{
    GET_RT(rt);
    struct qentry *q;
    int e = get_queue(rt, qd, &q);
    if (e)
        return e;
    struct libos *l = q->los;
    void *obj = q->q;
    qtable_free(&rt->qtable, qd);
    return l->ops->close(l, obj);
}

/* What a push may read is checked here, once for every libOS: a segment
 * in the heap lies inside one block the application holds, and the array
 * is within the 256 MiB limit (see mem_sga_check_push). Below this point a
 * libOS may hand heap segments to a device as they are. */
static int check_sga(struct runtime *rt, const demi_sgarray_t *sga)
{
    return mem_sga_check_push(rt->heap, sga);
}

int demi_push(demi_qtoken_t *qt_out, int qd, const demi_sgarray_t *sga)
{
    GET_RT(rt);
    struct qentry *q;
    if (!qt_out)
        return EINVAL;
    int e = get_queue(rt, qd, &q);
    if (!e)
        e = check_sga(rt, sga);
    if (e)
        return e;
    START_OP(rt, qt_out, qd, q->los->ops->push(q->los, q->q, sga, NULL, t));
}

int demi_pushto(demi_qtoken_t *qt_out, int sockqd, const demi_sgarray_t *sga, const struct sockaddr *dest_addr,
                socklen_t size)
{
    GET_RT(rt);
    struct qentry *q;
    struct sockaddr_in sin;
    if (!qt_out)
        return EINVAL;
    int e = get_queue(rt, sockqd, &q);
    if (!e)
        e = check_sga(rt, sga);
    if (!e)
        e = get_addr(dest_addr, size, &sin);
    if (e)
        return e;
    START_OP(rt, qt_out, sockqd, q->los->ops->push(q->los, q->q, sga, &sin, t));
}

int demi_pop(demi_qtoken_t *qt_out, int qd)
{
    GET_RT(rt);
    struct qentry *q;
    if (!qt_out)
        return EINVAL;
    int e = get_queue(rt, qd, &q);
    if (e)
        return e;
    START_OP(rt, qt_out, qd, q->los->ops->pop(q->los, q->q, t));
}

/* The options demi_setsockopt() takes, and demi_getsockopt() with SO_ERROR
 * and SO_TYPE besides: the one list, so that every libOS accepts the same
 * ones. Returns the size of the option's value, 0 for an option not
 * supported. */
static socklen_t opt_size(int level, int name, bool get)
{
    if (level == SOL_SOCKET) {
        switch (name) {
        case SO_LINGER:
            return sizeof(struct linger);
        case SO_REUSEADDR:
        case SO_REUSEPORT:
        case SO_KEEPALIVE:
        case SO_RCVBUF:
        case SO_SNDBUF:
            return sizeof(int);
        case SO_ERROR:
        case SO_TYPE:
            return get ? sizeof(int) : 0;
        }
        return 0;
    }
    if (level == IPPROTO_TCP) {
        switch (name) {
        case TCP_NODELAY:
        case TCP_KEEPIDLE:
        case TCP_KEEPINTVL:
        case TCP_KEEPCNT:
            return sizeof(int);
        }
    }
    return 0;
}

/* Checks an option against the list and its value's size against @len:
 * ENOPROTOOPT for an option not supported (or a TCP option on a socket
 * that is not a stream), EINVAL for a value too short. The libOS then
 * applies the option knowing it is one of the list. */
static int opt_check(const struct qentry *q, int level, int name, socklen_t len, bool get)
{
    socklen_t size = opt_size(level, name, get);
    if (!size)
        return ENOPROTOOPT;
    if (level == IPPROTO_TCP) {
        int type = 0;
        socklen_t tlen = sizeof(type);
        int e = q->los->ops->getsockopt(q->los, q->q, SOL_SOCKET, SO_TYPE, &type, &tlen);
        if (e)
            return e;
        if (type != SOCK_STREAM)
            return ENOPROTOOPT;
    }
    return len < size ? EINVAL : 0;
}

int demi_setsockopt(int qd, int level, int optname, const void *optval, socklen_t optlen)
{
    GET_RT(rt);
    struct qentry *q;
    int e = get_queue(rt, qd, &q);
    if (e)
        return e;
    if (!optval)
        return EINVAL;
    e = opt_check(q, level, optname, optlen, false);
    if (e)
        return e;
    return q->los->ops->setsockopt(q->los, q->q, level, optname, optval, optlen);
}

int demi_getsockopt(int qd, int level, int optname, void *optval, socklen_t *optlen)
{
    GET_RT(rt);
    struct qentry *q;
    int e = get_queue(rt, qd, &q);
    if (e)
        return e;
    if (!optval || !optlen)
        return EINVAL;
    e = opt_check(q, level, optname, *optlen, true);
    if (e)
        return e;
    return q->los->ops->getsockopt(q->los, q->q, level, optname, optval, optlen);
}

static int name_op(int qd, struct sockaddr *addr, socklen_t *addrlen, bool peer)
{
    GET_RT(rt);
    struct qentry *q;
    int e = get_queue(rt, qd, &q);
    if (e)
        return e;
    if (!addr || !addrlen)
        return EINVAL;
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    e = peer ? q->los->ops->getpeername(q->los, q->q, &sin) : q->los->ops->getsockname(q->los, q->q, &sin);
    if (e)
        return e;
    size_t n = *addrlen < sizeof(sin) ? *addrlen : sizeof(sin);
    memcpy(addr, &sin, n);
    *addrlen = sizeof(sin);
    return 0;
}

int demi_getpeername(int qd, struct sockaddr *addr, socklen_t *addrlen)
{
    return name_op(qd, addr, addrlen, true);
}

int demi_getsockname(int qd, struct sockaddr *addr, socklen_t *addrlen)
{
    return name_op(qd, addr, addrlen, false);
}

demi_sgarray_t demi_sgaalloc(size_t size)
{
    demi_sgarray_t sga;
    memset(&sga, 0, sizeof(sga));
    struct runtime *rt = tls_rt;
    if (!rt) {
        errno = not_initialised();
        return sga;
    }
    int e = mem_sga_alloc(rt->heap, size, &sga);
    if (e)
        errno = e;
    return sga;
}

int demi_sgafree(demi_sgarray_t *sga)
{
    GET_RT(rt);
    return mem_sga_free(rt->heap, sga);
}

/* Waiting. */

static int deadline_of(struct runtime *rt, const struct timespec *ts, uint64_t *out)
{
    if (!ts) {
        *out = UINT64_MAX;
        return 0;
    }
    if (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000L)
        return EINVAL;
    uint64_t now = clock_now(&rt->clock);
    uint64_t sec = (uint64_t)ts->tv_sec;
    if (sec > (UINT64_MAX - now) / 1000000000u / 2) {
        *out = UINT64_MAX;
        return 0;
    }
    *out = now + sec * 1000000000u + (uint64_t)ts->tv_nsec;
    return 0;
}

static bool task_done(void *arg)
{
    return ((struct sched_task *)arg)->state == TASK_DONE;
}

int demi_wait(demi_qresult_t *qr_out, demi_qtoken_t qt, const struct timespec *timeout)
{
    GET_RT(rt);
    if (!qr_out)
        return EINVAL;
    struct sched_task *t = sched_lookup(&rt->sched, qt);
    if (!t)
        return EINVAL;
    if (t->state != TASK_DONE) {
        uint64_t deadline;
        int e = deadline_of(rt, timeout, &deadline);
        if (!e)
            e = rt_wait(rt, task_done, t, deadline);
        if (e)
            return e;
    }
    sched_harvest(&rt->sched, t, qr_out);
    return 0;
}

struct any_wait {
    struct sched *s;
    const demi_qtoken_t *qts;
    int n;
    int found;
    uint64_t seen; /* completion count at the last scan */
};

static bool any_done(void *arg)
{
    struct any_wait *w = arg;
    if (w->s->completions == w->seen)
        return false; /* nothing completed since the last scan */
    w->seen = w->s->completions;
    for (int i = 0; i < w->n; i++) {
        struct sched_task *t = sched_lookup(w->s, w->qts[i]);
        if (t && t->state == TASK_DONE) {
            w->found = i;
            return true;
        }
    }
    return false;
}

int demi_wait_any(demi_qresult_t *qr_out, int *ready_offset, const demi_qtoken_t qts[], int num_qts,
                  const struct timespec *timeout)
{
    GET_RT(rt);
    if (!qr_out || !ready_offset || !qts || num_qts < 1)
        return EINVAL;
    for (int i = 0; i < num_qts; i++)
        if (!sched_lookup(&rt->sched, qts[i]))
            return EINVAL;
    struct any_wait w = {&rt->sched, qts, num_qts, -1, rt->sched.completions - 1};
    if (!any_done(&w)) {
        uint64_t deadline;
        int e = deadline_of(rt, timeout, &deadline);
        if (!e)
            e = rt_wait(rt, any_done, &w, deadline);
        if (e)
            return e;
    }
    sched_harvest(&rt->sched, sched_lookup(&rt->sched, qts[w.found]), qr_out);
    *ready_offset = w.found;
    return 0;
}

static bool next_done(void *arg)
{
    return ((struct sched *)arg)->done.head != NULL;
}

int demi_wait_next_n(demi_qresult_t *qr_out, int num_qrs, int *num_qrs_out, const struct timespec *timeout)
{
    GET_RT(rt);
    if (!qr_out || !num_qrs_out || num_qrs < 1)
        return EINVAL;
    *num_qrs_out = 0;
    if (!rt->sched.done.head) {
        uint64_t deadline;
        int e = deadline_of(rt, timeout, &deadline);
        if (!e)
            e = rt_wait(rt, next_done, &rt->sched, deadline);
        if (e)
            return e;
    }
    int n = 0;
    while (n < num_qrs && rt->sched.done.head)
        sched_harvest(&rt->sched, rt->sched.done.head, &qr_out[n++]);
    *num_qrs_out = n;
    return 0;
}

int demi_get_stats(demi_stats_t *st)
{
    GET_RT(rt);
    if (!st)
        return EINVAL;
    memset(st, 0, sizeof(*st));
    const struct heap_stats *hs = heap_stats(rt->heap);
    st->copied_bytes = hs->copied_bytes;
    st->heap_bytes_in_use = hs->bytes_in_use;
    size_t n = strnlen(rt->cfg.libos, sizeof(st->libos) - 1); /* names are short: catnap, catpowder */
    memcpy(st->libos, rt->cfg.libos, n);
    st->queues = 1;
    for (int i = 0; i < rt->nlos; i++)
        if (rt->los[i]->ops->stats)
            rt->los[i]->ops->stats(rt->los[i], st);
    return 0;
}
