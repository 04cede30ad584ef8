/*
 * libdemi-posix: socket life and control calls (socket, bind, listen,
 * accept, connect, close, shutdown, names, options, fcntl, ioctl, dup).
 * Each interposer first asks px_sock_of() whether the descriptor is ours;
 * anything else goes to the kernel untouched.
 */
#include "px.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* Highest descriptor ever ours, to bound close_range's scan. */
static int px_fd_hw = -1;

/* A placeholder descriptor and a socket for queue @qd: the socket, or
 * NULL with errno set (EMFILE, ENFILE, ENOMEM). The queue is the caller's
 * to close on failure. */
static struct px_sock *sock_new(int qd, int type, bool nonblock, int *fd_out)
{
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0)
        return NULL;
    if ((size_t)fd >= px_nfds) {
        px_real.close(fd);
        errno = EMFILE;
        return NULL;
    }
    struct px_sock *s = calloc(1, sizeof(*s));
    if (!s) {
        px_real.close(fd);
        errno = ENOMEM;
        return NULL;
    }
    s->fd = fd;
    s->qd = qd;
    s->type = type;
    s->nonblock = nonblock;
    s->backlog = 1;
    if (fd > px_fd_hw)
        px_fd_hw = fd;
    __atomic_store_n(&px_fds[fd], s, __ATOMIC_RELEASE);
    *fd_out = fd;
    return s;
}

/* Closes a socket the program holds. */
static void sock_close(struct px_sock *s)
{
    px_ev_forget(s);
    __atomic_store_n(&px_fds[s->fd], NULL, __ATOMIC_RELEASE);
    px_inside++;
    if (s->type == SOCK_STREAM && s->state == PX_CONNECTED && s->rx_bytes && !s->fatal) {
        /* Data the program never read: as the kernel does, reset. */
        struct linger l = {1, 0};
        demi_setsockopt(s->qd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    }
    while (s->acc_head) {
        struct px_acc *a = s->acc_head;
        s->acc_head = a->next;
        demi_close(a->qd);
        free(a);
    }
    demi_close(s->qd);
    px_inside--;
    while (s->rx_head) {
        struct px_rx *r = s->rx_head;
        s->rx_head = r->next;
        px_rx_free(r);
    }
    px_real.close(s->fd);
    s->fd = -1;
    if (s->ops == 0)
        free(s);
}

/* An AF_INET call outside the stack's reach: which errno, if any. */
static bool sock_is_ours_kind(int domain, int base)
{
    return domain == AF_INET && (base == SOCK_STREAM || base == SOCK_DGRAM);
}

int socket(int domain, int type, int protocol)
{
    int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
    PX_ENSURE();
    if (px_inside || !px_fds)
        return px_real.socket(domain, type, protocol);
    bool inet = domain == AF_INET || domain == AF_INET6;
    if (!inet)
        return px_real.socket(domain, type, protocol);
    /* A thread other than the network thread, or a forked child, uses the
     * kernel. */
    int e = px_start();
    if (e == EALREADY || e == ENOTSUP)
        return px_real.socket(domain, type, protocol);
    if (domain == AF_INET6) {
        px_log_once("socket(AF_INET6): IPv6 is not supported by the stack (EAFNOSUPPORT)");
        return px_fail(EAFNOSUPPORT);
    }
    if (!sock_is_ours_kind(domain, base)) {
        px_log_once("socket(AF_INET, type %d): only SOCK_STREAM and SOCK_DGRAM are supported (ESOCKTNOSUPPORT)", base);
        return px_fail(ESOCKTNOSUPPORT);
    }
    if (e)
        return px_fail(e);
    int qd;
    px_inside++;
    e = demi_socket(&qd, AF_INET, base, protocol);
    px_inside--;
    if (e)
        return px_fail(e);
    int fd;
    if (!sock_new(qd, base, type & SOCK_NONBLOCK, &fd)) {
        int saved = errno;
        px_inside++;
        demi_close(qd);
        px_inside--;
        return px_fail(saved);
    }
    return fd;
}

int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    int refused;
    struct px_sock *s = px_sock_of(fd, &refused);
    if (!s)
        return refused ? px_fail(refused) : px_real.bind(fd, addr, len);
    px_inside++;
    int e = demi_bind(s->qd, addr, len);
    px_inside--;
    if (e)
        return px_fail(e);
    s->bound = true;
    if (s->type == SOCK_DGRAM)
        px_want_input(s);
    return 0;
}

int listen(int fd, int backlog)
{
    int refused;
    struct px_sock *s = px_sock_of(fd, &refused);
    if (!s)
        return refused ? px_fail(refused) : px_real.listen(fd, backlog);
    if (s->type != SOCK_STREAM)
        return px_fail(EOPNOTSUPP);
    if (s->state != PX_NEW && s->state != PX_LISTENING)
        return px_fail(EINVAL);
    /* As Linux: a negative or huge backlog is clamped, not refused. */
    unsigned b = backlog < 1 ? 1u : (unsigned)backlog > PX_ACCEPT_MAX ? PX_ACCEPT_MAX : (unsigned)backlog;
    if (s->state == PX_NEW) {
        px_inside++;
        int e = demi_listen(s->qd, (int)b);
        px_inside--;
        if (e)
            return px_fail(e);
    }
    s->state = PX_LISTENING;
    s->backlog = b;
    s->bound = true;
    px_want_input(s);
    return 0;
}

static bool has_conn(const struct px_sock *s)
{
    return s->acc_count > 0;
}

static void copy_addr(const struct sockaddr_in *a, struct sockaddr *out, socklen_t *len)
{
    if (!out || !len)
        return;
    size_t n = *len < sizeof(*a) ? *len : sizeof(*a);
    memcpy(out, a, n);
    *len = sizeof(*a);
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    int refused;
    struct px_sock *s = px_sock_of(fd, &refused);
    if (!s)
        return refused ? px_fail(refused) : px_real.accept4(fd, addr, len, flags);
    if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC))
        return px_fail(EINVAL);
    if (s->state != PX_LISTENING)
        return px_fail(EINVAL);
    if (!s->acc_head) {
        if (s->nonblock)
            return px_fail(EAGAIN);
        int e = px_block(s, has_conn, &s->rcvtimeo);
        if (e)
            return px_fail(e);
    }
    struct px_acc *a = s->acc_head;
    int nfd;
    struct px_sock *c = sock_new(a->qd, SOCK_STREAM, flags & SOCK_NONBLOCK, &nfd);
    if (!c)
        return -1; /* EMFILE and the like: the connection stays queued */
    s->acc_head = a->next;
    if (!s->acc_head)
        s->acc_tail = NULL;
    s->acc_count--;
    c->state = PX_CONNECTED;
    c->bound = true;
    copy_addr(&a->addr, addr, len);
    free(a);
    px_want_input(c);
    px_want_input(s);
    return nfd;
}

int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
    int refused;
    struct px_sock *s = px_sock_of(fd, &refused);
    if (!s)
        return refused ? px_fail(refused) : px_real.accept(fd, addr, len);
    return accept4(fd, addr, len, 0);
}

static bool connect_done(const struct px_sock *s)
{
    return !s->conn_posted;
}

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    int refused;
    struct px_sock *s = px_sock_of(fd, &refused);
    if (!s)
        return refused ? px_fail(refused) : px_real.connect(fd, addr, len);
    if (s->type == SOCK_STREAM) {
        if (s->state == PX_CONNECTING)
            return px_fail(EALREADY);
        if (s->state == PX_CONNECTED)
            return px_fail(EISCONN);
        if (s->state == PX_FAILED && s->err) {
            int e = s->err;
            s->err = 0;
            return px_fail(e);
        }
    }
    demi_qtoken_t qt;
    px_inside++;
    int e = demi_connect(&qt, s->qd, addr, len);
    px_inside--;
    if (e)
        return px_fail(e);
    if ((e = px_op_add(qt, s, PX_OP_CONNECT, 0))) {
        /* The token cannot be remembered: its result would be lost. */
        return px_fail(e);
    }
    s->conn_posted = true;
    s->bound = true;
    if (s->type == SOCK_STREAM) {
        s->state = PX_CONNECTING;
        if (s->nonblock)
            return px_fail(EINPROGRESS);
        /* Timed out or interrupted: the connection goes on (EINPROGRESS,
         * EINTR), as in the kernel; a later connect() says EALREADY. */
        e = px_block(s, connect_done, &s->sndtimeo);
        if (e)
            return px_fail(e == EAGAIN ? EINPROGRESS : e);
        if (s->state == PX_FAILED) {
            e = s->err;
            s->err = 0;
            return px_fail(e);
        }
        return 0;
    }
    /* UDP: completes at once. */
    px_block(s, connect_done, NULL);
    s->state = PX_CONNECTED;
    px_want_input(s);
    return 0;
}

int close(int fd)
{
    PX_ENSURE();
    if (px_inside || fd < 0 || (size_t)fd >= px_nfds)
        return px_real.close(fd);
    struct px_sock *s = __atomic_load_n(&px_fds[fd], __ATOMIC_ACQUIRE);
    if (!s) {
        px_ev_close_fd(fd);
        return px_real.close(fd);
    }
    if (!px_started_here()) {
        int refused = px_refuse(fd);
        if (refused == EBADF) {
            /* A forked child closing an inherited socket: only its copy
             * of the placeholder goes; the parent's stack is untouched. */
            __atomic_store_n(&px_fds[fd], NULL, __ATOMIC_RELEASE);
            return px_real.close(fd);
        }
        return px_fail(refused);
    }
    sock_close(s);
    return 0;
}

int shutdown(int fd, int how)
{
    int refused;
    struct px_sock *s = px_sock_of(fd, &refused);
    if (!s)
        return refused ? px_fail(refused) : px_real.shutdown(fd, how);
    if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
        return px_fail(EINVAL);
    if (s->state != PX_CONNECTED)
        return px_fail(ENOTCONN);
    if (how == SHUT_WR && s->type == SOCK_STREAM) {
        /* PDPIX has no half-close: the FIN goes at close(). Pretending
         * would leave a peer waiting for an EOF that never comes. */
        px_log_once("shutdown(SHUT_WR) on a stack socket: half-close is not supported, the FIN is sent at close() "
                    "(EOPNOTSUPP)");
        return px_fail(EOPNOTSUPP);
    }
    if (how != SHUT_WR) {
        s->rd_shut = true;
        while (s->rx_head) {
            struct px_rx *r = s->rx_head;
            s->rx_head = r->next;
            px_rx_free(r);
        }
        s->rx_tail = NULL;
        s->rx_bytes = 0;
        s->rx_count = 0;
    }
    if (how != SHUT_RD)
        s->wr_shut = true;
    s->seq++;
    px_ev_notify(s);
    return 0;
}

int getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
    int refused;
    struct px_sock *s = px_sock_of(fd, &refused);
    if (!s)
        return refused ? px_fail(refused) : px_real.getsockname(fd, addr, len);
    px_inside++;
    int e = demi_getsockname(s->qd, addr, len);
    px_inside--;
    return e ? px_fail(e) : 0;
}

int getpeername(int fd, struct sockaddr *addr, socklen_t *len)
{
    int refused;
    struct px_sock *s = px_sock_of(fd, &refused);
    if (!s)
        return refused ? px_fail(refused) : px_real.getpeername(fd, addr, len);
    if (s->state != PX_CONNECTED)
        return px_fail(ENOTCONN);
    px_inside++;
    int e = demi_getpeername(s->qd, addr, len);
    px_inside--;
    return e ? px_fail(e) : 0;
}

/* One log line per option the stack refuses, not one per call. */
static void log_unknown_option(const char *call, int level, int name)
{
    static struct {
        int level, name;
    } seen[32];
    static unsigned nseen;
    for (unsigned i = 0; i < nseen; i++)
        if (seen[i].level == level && seen[i].name == name)
            return;
    if (nseen < sizeof(seen) / sizeof(seen[0])) {
        seen[nseen].level = level;
        seen[nseen++].name = name;
    }
    px_log("%s(level %d, option %d): not supported on stack sockets (ENOPROTOOPT)", call, level, name);
}

int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
    int refused;
    struct px_sock *s = px_sock_of(fd, &refused);
    if (!s)
        return refused ? px_fail(refused) : px_real.setsockopt(fd, level, name, val, len);
    if (level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO)) {
        if (!val || len < sizeof(struct timeval))
            return px_fail(EINVAL);
        struct timeval tv;
        memcpy(&tv, val, sizeof(tv));
        if (tv.tv_sec < 0 || tv.tv_usec < 0 || tv.tv_usec >= 1000000)
            return px_fail(EDOM);
        *(name == SO_RCVTIMEO ? &s->rcvtimeo : &s->sndtimeo) = tv;
        return 0;
    }
    px_inside++;
    int e = demi_setsockopt(s->qd, level, name, val, len);
    px_inside--;
    if (e == ENOPROTOOPT)
        log_unknown_option("setsockopt", level, name);
    return e ? px_fail(e) : 0;
}

static int put_int(void *val, socklen_t *len, int v)
{
    if (!val || !len || *len < sizeof(int))
        return px_fail(EINVAL);
    memcpy(val, &v, sizeof(v));
    *len = sizeof(int);
    return 0;
}

int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
    int refused;
    struct px_sock *s = px_sock_of(fd, &refused);
    if (!s)
        return refused ? px_fail(refused) : px_real.getsockopt(fd, level, name, val, len);
    if (level == SOL_SOCKET) {
        switch (name) {
        case SO_ERROR: {
            int e = s->err;
            if (!e && s->fatal && !s->reset_told)
                e = s->fatal;
            int r = put_int(val, len, e);
            if (!r) {
                if (s->err)
                    s->err = 0;
                else if (e)
                    s->reset_told = true;
            }
            return r;
        }
        case SO_TYPE:
            return put_int(val, len, s->type);
        case SO_DOMAIN:
            return put_int(val, len, AF_INET);
        case SO_PROTOCOL:
            return put_int(val, len, s->type == SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP);
        case SO_ACCEPTCONN:
            return put_int(val, len, s->state == PX_LISTENING);
        case SO_RCVTIMEO:
        case SO_SNDTIMEO:
            if (!val || !len || *len < sizeof(struct timeval))
                return px_fail(EINVAL);
            memcpy(val, name == SO_RCVTIMEO ? &s->rcvtimeo : &s->sndtimeo, sizeof(struct timeval));
            *len = sizeof(struct timeval);
            return 0;
        }
    }
    px_inside++;
    int e = demi_getsockopt(s->qd, level, name, val, len);
    px_inside--;
    if (e == ENOPROTOOPT)
        log_unknown_option("getsockopt", level, name);
    return e ? px_fail(e) : 0;
}

static int sock_fcntl(struct px_sock *s, int cmd, long arg)
{
    switch (cmd) {
    case F_GETFL:
        return O_RDWR | (s->nonblock ? O_NONBLOCK : 0);
    case F_SETFL:
        s->nonblock = arg & O_NONBLOCK;
        return 0;
    case F_GETFD:
    case F_SETFD:
        return px_real.fcntl(s->fd, cmd, arg);
    case F_DUPFD:
    case F_DUPFD_CLOEXEC:
        px_log_once("fcntl(F_DUPFD) on a stack socket: duplicating it is not supported (EOPNOTSUPP)");
        return px_fail(EOPNOTSUPP);
    default:
        px_log_once("fcntl(command %d) on a stack socket: not supported (EINVAL)", cmd);
        return px_fail(EINVAL);
    }
}

int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    long arg = va_arg(ap, long); /* every command's argument fits a long on Linux */
    va_end(ap);
    int refused;
    struct px_sock *s = px_sock_of(fd, &refused);
    if (!s)
        return refused ? px_fail(refused) : px_real.fcntl(fd, cmd, arg);
    return sock_fcntl(s, cmd, arg);
}

int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    long arg = va_arg(ap, long);
    va_end(ap);
    int refused;
    struct px_sock *s = px_sock_of(fd, &refused);
    if (!s)
        return refused ? px_fail(refused) : (px_real.fcntl64 ? px_real.fcntl64 : px_real.fcntl)(fd, cmd, arg);
    return sock_fcntl(s, cmd, arg);
}

int ioctl(int fd, unsigned long req, ...)
{
    va_list ap;
    va_start(ap, req);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    int refused;
    struct px_sock *s = px_sock_of(fd, &refused);
    if (!s)
        return refused ? px_fail(refused) : px_real.ioctl(fd, req, arg);
    int v;
    switch (req) {
    case FIONBIO:
        if (!arg)
            return px_fail(EFAULT);
        memcpy(&v, arg, sizeof(v));
        s->nonblock = v != 0;
        return 0;
    case FIONREAD:
        if (!arg)
            return px_fail(EFAULT);
        if (s->state == PX_LISTENING)
            return px_fail(EINVAL);
        v = (int)(s->type == SOCK_STREAM ? s->rx_bytes : s->rx_head ? s->rx_head->left : 0);
        memcpy(arg, &v, sizeof(v));
        return 0;
    case SIOCOUTQ:
        if (!arg)
            return px_fail(EFAULT);
        v = (int)s->tx_inflight;
        memcpy(arg, &v, sizeof(v));
        return 0;
    default:
        px_log_once("ioctl(request %#lx) on a stack socket: not supported (ENOTTY)", req);
        return px_fail(ENOTTY);
    }
}

int dup(int fd)
{
    int refused;
    struct px_sock *s = px_sock_of(fd, &refused);
    if (!s && !refused)
        return px_real.dup(fd);
    px_log_once("dup() of a stack socket: not supported (EOPNOTSUPP)");
    return px_fail(refused ? refused : EOPNOTSUPP);
}

/* dup2/dup3 onto one of our descriptors closes our socket first, as the
 * kernel would close whatever @newfd named. */
static int dup_onto(int oldfd, int newfd, int flags, bool three)
{
    int refused;
    struct px_sock *s = px_sock_of(oldfd, &refused);
    if (s || refused) {
        px_log_once("dup2()/dup3() of a stack socket: not supported (EOPNOTSUPP)");
        return px_fail(refused ? refused : EOPNOTSUPP);
    }
    if (oldfd != newfd) {
        struct px_sock *t = px_sock_of(newfd, &refused);
        if (refused)
            return px_fail(refused);
        if (t && px_real.fcntl(oldfd, F_GETFD) >= 0)
            sock_close(t);
    }
    return three ? px_real.dup3(oldfd, newfd, flags) : px_real.dup2(oldfd, newfd);
}

int dup2(int oldfd, int newfd)
{
    return dup_onto(oldfd, newfd, 0, false);
}

int dup3(int oldfd, int newfd, int flags)
{
    return dup_onto(oldfd, newfd, flags, true);
}

int close_range(unsigned first, unsigned last, int flags)
{
    PX_ENSURE();
    if (!px_inside && px_started_here() && !(flags & 4 /* CLOSE_RANGE_CLOEXEC */)) {
        for (unsigned fd = first; fd <= last && (int)fd <= px_fd_hw; fd++) {
            struct px_sock *s = px_fds[fd];
            if (s)
                sock_close(s);
            else
                px_ev_close_fd((int)fd);
        }
    }
    if (!px_real.close_range)
        return px_fail(ENOSYS);
    return px_real.close_range(first, last, flags);
}

FILE *fdopen(int fd, const char *mode)
{
    int refused;
    struct px_sock *s = px_sock_of(fd, &refused);
    if (!s && !refused)
        return px_real.fdopen(fd, mode);
    px_log_once("fdopen() of a stack socket: stdio on stack sockets is not supported (EOPNOTSUPP)");
    errno = refused ? refused : EOPNOTSUPP;
    return NULL;
}
