/*
 * libdemi-posix: the data calls (read, write and their vector, message and
 * fortified forms, sendfile). A read copies out of the arrays the stack
 * popped; a write hands the program's memory to demi_push, which copies
 * memory that is not from libdemi's heap before it returns. Neither ever
 * loses a byte: a short count says what was taken.
 */
#include "px.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PX_RECV_FLAGS (MSG_PEEK | MSG_DONTWAIT | MSG_WAITALL | MSG_TRUNC | MSG_NOSIGNAL | MSG_CMSG_CLOEXEC)
#define PX_SEND_FLAGS (MSG_DONTWAIT | MSG_NOSIGNAL | MSG_MORE | MSG_EOR)

/* Total length of an iovec array, or -1 (EINVAL) if it is malformed. */
static ssize_t iov_total(const struct iovec *iov, int n)
{
    if (n < 0 || n > IOV_MAX || (n && !iov))
        return -1;
    size_t t = 0;
    for (int i = 0; i < n; i++) {
        if (iov[i].iov_len && !iov[i].iov_base)
            return -1;
        if (iov[i].iov_len > (size_t)SSIZE_MAX - t)
            return -1;
        t += iov[i].iov_len;
    }
    return (ssize_t)t;
}

/* A cursor over the program's iovec array. */
struct iov_cur {
    const struct iovec *iov;
    int n, i;
    size_t off;
};

static size_t cur_put(struct iov_cur *c, const uint8_t *src, size_t len)
{
    size_t done = 0;
    while (done < len && c->i < c->n) {
        size_t room = c->iov[c->i].iov_len - c->off;
        size_t k = len - done < room ? len - done : room;
        memcpy((uint8_t *)c->iov[c->i].iov_base + c->off, src + done, k);
        done += k;
        c->off += k;
        if (c->off == c->iov[c->i].iov_len) {
            c->i++;
            c->off = 0;
        }
    }
    return done;
}

/* Copies up to @max staged bytes into @c; consumes them unless @peek. */
static size_t stream_copy(struct px_sock *s, struct iov_cur *c, size_t max, bool peek)
{
    size_t done = 0;
    struct px_rx *r = s->rx_head;
    uint32_t seg = r ? r->seg : 0, off = r ? r->off : 0;
    while (r && done < max) {
        if (seg >= r->sga.sga_numsegs) {
            r = r->next;
            seg = r ? r->seg : 0;
            off = r ? r->off : 0;
            continue;
        }
        const demi_sgaseg_t *g = &r->sga.sga_segs[seg];
        size_t k = g->sgaseg_len - off;
        if (k > max - done)
            k = max - done;
        k = cur_put(c, (const uint8_t *)g->sgaseg_buf + off, k);
        done += k;
        off += (uint32_t)k;
        if (!peek)
            r->left -= (uint32_t)k;
        if (off == g->sgaseg_len) {
            seg++;
            off = 0;
        }
        if (!peek) {
            r->seg = seg;
            r->off = off;
            if (!r->left) {
                s->rx_head = r->next;
                if (!s->rx_head)
                    s->rx_tail = NULL;
                s->rx_count--;
                px_rx_free(r);
                r = s->rx_head;
                seg = r ? r->seg : 0;
                off = r ? r->off : 0;
            }
        }
        if (!k && c->i >= c->n)
            break;
    }
    if (!peek)
        s->rx_bytes -= done;
    return done;
}

static bool readable(const struct px_sock *s)
{
    return s->rx_bytes || s->rx_count || s->eof || s->rd_shut || s->fatal || s->state == PX_FAILED ||
           (s->type == SOCK_STREAM && s->state != PX_CONNECTED && s->state != PX_CONNECTING);
}

static bool connect_settled(const struct px_sock *s)
{
    return s->state != PX_CONNECTING;
}

/* A TCP read or write needs a connection: one being made is waited for
 * (or EAGAIN), a failed one reports its error once, then ENOTCONN. 0 when
 * connected. */
static int stream_connected(struct px_sock *s, bool nonblock)
{
    if (s->state == PX_CONNECTING) {
        if (nonblock)
            return EAGAIN;
        int e = px_block(s, connect_settled, NULL);
        if (e)
            return e;
    }
    if (s->state == PX_FAILED && s->err) {
        int e = s->err;
        s->err = 0;
        return e;
    }
    return s->state == PX_CONNECTED ? 0 : ENOTCONN;
}

static ssize_t stream_recv(struct px_sock *s, const struct iovec *iov, int iovcnt, size_t want, int flags)
{
    bool nonblock = s->nonblock || (flags & MSG_DONTWAIT);
    int ce = stream_connected(s, nonblock);
    if (ce)
        return px_fail(ce);
    if (!want)
        return 0;
    struct iov_cur c = {iov, iovcnt, 0, 0};
    size_t got = 0;
    bool peek = flags & MSG_PEEK;
    for (;;) {
        if (s->rx_bytes) {
            got += stream_copy(s, &c, want - got, peek);
            px_want_input(s);
            if (got == want || peek || !(flags & MSG_WAITALL))
                break;
            continue;
        }
        if (s->rd_shut || s->eof)
            break;
        if (s->fatal) {
            if (!got && !s->reset_told) {
                s->reset_told = true;
                return px_fail(s->fatal);
            }
            break;
        }
        if (nonblock) {
            if (got)
                break;
            return px_fail(EAGAIN);
        }
        int e = px_block(s, readable, &s->rcvtimeo);
        if (e) {
            if (got)
                break;
            return px_fail(e);
        }
    }
    return (ssize_t)got;
}

static ssize_t dgram_recv(struct px_sock *s, const struct iovec *iov, int iovcnt, size_t want, int flags,
                          struct sockaddr *from, socklen_t *fromlen, int *msg_flags)
{
    while (!s->rx_head) {
        if (s->rd_shut)
            return 0;
        if (s->nonblock || (flags & MSG_DONTWAIT))
            return px_fail(EAGAIN);
        px_want_input(s);
        int e = px_block(s, readable, &s->rcvtimeo);
        if (e)
            return px_fail(e);
    }
    struct px_rx *r = s->rx_head;
    struct iov_cur c = {iov, iovcnt, 0, 0};
    size_t got = 0, size = r->left;
    for (uint32_t i = 0; i < r->sga.sga_numsegs && got < want; i++) {
        const demi_sgaseg_t *g = &r->sga.sga_segs[i];
        size_t k = g->sgaseg_len < want - got ? g->sgaseg_len : want - got;
        got += cur_put(&c, g->sgaseg_buf, k);
    }
    if (from && fromlen) {
        size_t n = *fromlen < sizeof(r->sga.sga_addr) ? *fromlen : sizeof(r->sga.sga_addr);
        memcpy(from, &r->sga.sga_addr, n);
        *fromlen = sizeof(r->sga.sga_addr);
    }
    if (size > got && msg_flags)
        *msg_flags |= MSG_TRUNC;
    if (!(flags & MSG_PEEK)) {
        s->rx_head = r->next;
        if (!s->rx_head)
            s->rx_tail = NULL;
        s->rx_count--;
        s->rx_bytes -= size;
        px_rx_free(r);
        px_want_input(s);
    }
    return (ssize_t)((flags & MSG_TRUNC) ? size : got);
}

/* The receive calls' common path. @from may be NULL. */
static ssize_t sock_recv(struct px_sock *s, const struct iovec *iov, int iovcnt, int flags, struct sockaddr *from,
                         socklen_t *fromlen, int *msg_flags)
{
    ssize_t want = iov_total(iov, iovcnt);
    if (want < 0)
        return px_fail(EINVAL);
    if (flags & ~PX_RECV_FLAGS) {
        px_log_once("recv flags %#x on a stack socket: not supported (EOPNOTSUPP)", (unsigned)(flags & ~PX_RECV_FLAGS));
        return px_fail(EOPNOTSUPP);
    }
    if (s->state == PX_LISTENING)
        return px_fail(ENOTCONN);
    if (s->type == SOCK_DGRAM)
        return dgram_recv(s, iov, iovcnt, (size_t)want, flags, from, fromlen, msg_flags);
    if (fromlen)
        *fromlen = 0;
    return stream_recv(s, iov, iovcnt, (size_t)want, flags);
}

static bool writable(const struct px_sock *s)
{
    return s->tx_inflight < PX_TX_LIMIT || s->fatal || s->state != PX_CONNECTED;
}

/* Broken pipe: EPIPE, and SIGPIPE unless the caller said MSG_NOSIGNAL. */
static ssize_t broken_pipe(int flags)
{
    if (!(flags & MSG_NOSIGNAL))
        raise(SIGPIPE);
    return px_fail(EPIPE);
}

/* Pushes @len bytes of @iov from byte @skip on (at most 16 segments):
 * how many bytes were pushed (<= @len), or -1 with errno. */
static ssize_t push_slice(struct px_sock *s, const struct iovec *iov, int iovcnt, size_t skip, size_t len,
                          const struct sockaddr *to, socklen_t tolen)
{
    demi_sgarray_t sga;
    memset(&sga, 0, sizeof(sga.sga_buf) + sizeof(sga.sga_numsegs));
    size_t taken = 0;
    for (int i = 0; i < iovcnt && taken < len && sga.sga_numsegs < DEMI_SGARRAY_MAXSIZE; i++) {
        size_t l = iov[i].iov_len;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        size_t k = l - skip;
        if (k > len - taken)
            k = len - taken;
        sga.sga_segs[sga.sga_numsegs].sgaseg_buf = (uint8_t *)iov[i].iov_base + skip;
        sga.sga_segs[sga.sga_numsegs++].sgaseg_len = (uint32_t)k;
        taken += k;
        skip = 0;
    }
    demi_qtoken_t qt;
    px_inside++;
    int e = to ? demi_pushto(&qt, s->qd, &sga, to, tolen) : demi_push(&qt, s->qd, &sga);
    px_inside--;
    if (e)
        return px_fail(e);
    /* The push is made: its result must be matched, or the in-flight count
     * would never come down. Out of memory here is the one case where we
     * cannot; the socket is then failed rather than left inconsistent. */
    if ((e = px_op_add(qt, s, PX_OP_PUSH, (uint32_t)taken))) {
        s->fatal = ENOMEM;
        return px_fail(ENOMEM);
    }
    s->tx_inflight += taken;
    s->bound = true;
    return (ssize_t)taken;
}

static ssize_t stream_send(struct px_sock *s, const struct iovec *iov, int iovcnt, size_t total, int flags)
{
    bool nonblock = s->nonblock || (flags & MSG_DONTWAIT);
    int ce = stream_connected(s, nonblock);
    if (ce)
        return px_fail(ce);
    if (s->wr_shut)
        return broken_pipe(flags);
    if (s->fatal) {
        if (!s->reset_told) {
            s->reset_told = true;
            return px_fail(s->fatal);
        }
        return broken_pipe(flags);
    }
    size_t sent = 0;
    int why = EAGAIN; /* what an empty write fails with: EAGAIN, or EINTR */
    while (sent < total) {
        size_t room = s->tx_inflight < PX_TX_LIMIT ? PX_TX_LIMIT - s->tx_inflight : 0;
        if (!room) {
            if (nonblock || s->fatal)
                break;
            int e = px_block(s, writable, &s->sndtimeo);
            if (e) {
                why = e;
                break;
            }
            continue;
        }
        size_t k = total - sent < room ? total - sent : room;
        ssize_t n = push_slice(s, iov, iovcnt, sent, k, NULL, 0);
        if (n < 0) {
            if (sent)
                break;
            return -1;
        }
        sent += (size_t)n;
    }
    if (!sent && total) {
        if (s->fatal)
            return broken_pipe(flags);
        return px_fail(why);
    }
    return (ssize_t)sent;
}

static ssize_t dgram_send(struct px_sock *s, const struct iovec *iov, int iovcnt, size_t total, int flags,
                          const struct sockaddr *to, socklen_t tolen)
{
    if (s->wr_shut)
        return broken_pipe(flags);
    if (!to && s->state != PX_CONNECTED)
        return px_fail(EDESTADDRREQ);
    if (total > 65507)
        return px_fail(EMSGSIZE);
    while (s->tx_inflight >= PX_TX_LIMIT) {
        if (s->nonblock || (flags & MSG_DONTWAIT))
            return px_fail(EAGAIN);
        int e = px_block(s, writable, &s->sndtimeo);
        if (e)
            return px_fail(e);
    }
    if (!total) {
        /* PDPIX has no empty datagram. */
        px_log_once("an empty UDP datagram cannot be sent on a stack socket (EINVAL)");
        return px_fail(EINVAL);
    }
    ssize_t n = push_slice(s, iov, iovcnt, 0, total, to, tolen);
    if (n >= 0 && (size_t)n < total) {
        /* More than 16 pieces: a datagram cannot be split. */
        return px_fail(EMSGSIZE);
    }
    if (n >= 0)
        px_want_input(s);
    return n;
}

static ssize_t sock_send(struct px_sock *s, const struct iovec *iov, int iovcnt, int flags, const struct sockaddr *to,
                         socklen_t tolen)
{
    ssize_t total = iov_total(iov, iovcnt);
    if (total < 0)
        return px_fail(EINVAL);
    if (flags & ~PX_SEND_FLAGS) {
        px_log_once("send flags %#x on a stack socket: not supported (EOPNOTSUPP)", (unsigned)(flags & ~PX_SEND_FLAGS));
        return px_fail(EOPNOTSUPP);
    }
    if (s->state == PX_LISTENING)
        return px_fail(ENOTCONN);
    if (s->type == SOCK_DGRAM)
        return dgram_send(s, iov, iovcnt, (size_t)total, flags, to, tolen);
    return stream_send(s, iov, iovcnt, (size_t)total, flags);
}

/* ---- the interposers ---- */

#define OURS_OR(fd, passthrough)                                                                                       \
    int refused_;                                                                                                      \
    struct px_sock *s = px_sock_of(fd, &refused_);                                                                     \
    if (!s)                                                                                                            \
    return refused_ ? px_fail(refused_) : (passthrough)

ssize_t read(int fd, void *buf, size_t n)
{
    OURS_OR(fd, px_real.read(fd, buf, n));
    struct iovec v = {buf, n};
    return sock_recv(s, &v, 1, 0, NULL, NULL, NULL);
}

ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
    OURS_OR(fd, px_real.__read_chk(fd, buf, n, buflen));
    if (n > buflen)
        return px_fail(EFAULT);
    struct iovec v = {buf, n};
    return sock_recv(s, &v, 1, 0, NULL, NULL, NULL);
}

ssize_t readv(int fd, const struct iovec *iov, int n)
{
    OURS_OR(fd, px_real.readv(fd, iov, n));
    return sock_recv(s, iov, n, 0, NULL, NULL, NULL);
}

ssize_t recv(int fd, void *buf, size_t n, int flags)
{
    OURS_OR(fd, px_real.recv(fd, buf, n, flags));
    struct iovec v = {buf, n};
    return sock_recv(s, &v, 1, flags, NULL, NULL, NULL);
}

ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
    OURS_OR(fd, px_real.__recv_chk(fd, buf, n, buflen, flags));
    if (n > buflen)
        return px_fail(EFAULT);
    struct iovec v = {buf, n};
    return sock_recv(s, &v, 1, flags, NULL, NULL, NULL);
}

ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *from, socklen_t *fromlen)
{
    OURS_OR(fd, px_real.recvfrom(fd, buf, n, flags, from, fromlen));
    struct iovec v = {buf, n};
    return sock_recv(s, &v, 1, flags, from, fromlen, NULL);
}

ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags, struct sockaddr *from, socklen_t *fromlen)
{
    OURS_OR(fd, px_real.__recvfrom_chk(fd, buf, n, buflen, flags, from, fromlen));
    if (n > buflen)
        return px_fail(EFAULT);
    struct iovec v = {buf, n};
    return sock_recv(s, &v, 1, flags, from, fromlen, NULL);
}

ssize_t recvmsg(int fd, struct msghdr *m, int flags)
{
    OURS_OR(fd, px_real.recvmsg(fd, m, flags));
    if (!m)
        return px_fail(EFAULT);
    int mf = 0;
    socklen_t nl = m->msg_name ? m->msg_namelen : 0;
    ssize_t r = sock_recv(s, m->msg_iov, (int)m->msg_iovlen, flags, m->msg_name, m->msg_name ? &nl : NULL, &mf);
    if (r >= 0) {
        m->msg_namelen = m->msg_name ? nl : 0;
        m->msg_controllen = 0; /* no ancillary data from the stack */
        m->msg_flags = mf;
    }
    return r;
}

int recvmmsg(int fd, struct mmsghdr *v, unsigned n, int flags, struct timespec *timeout)
{
    OURS_OR(fd, px_real.recvmmsg(fd, v, n, flags, timeout));
    px_log_once("recvmmsg() on a stack socket: not supported (EOPNOTSUPP)");
    return px_fail(EOPNOTSUPP);
}

ssize_t write(int fd, const void *buf, size_t n)
{
    OURS_OR(fd, px_real.write(fd, buf, n));
    struct iovec v = {(void *)buf, n};
    return sock_send(s, &v, 1, 0, NULL, 0);
}

ssize_t writev(int fd, const struct iovec *iov, int n)
{
    OURS_OR(fd, px_real.writev(fd, iov, n));
    return sock_send(s, iov, n, 0, NULL, 0);
}

ssize_t send(int fd, const void *buf, size_t n, int flags)
{
    OURS_OR(fd, px_real.send(fd, buf, n, flags));
    struct iovec v = {(void *)buf, n};
    return sock_send(s, &v, 1, flags, NULL, 0);
}

ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *to, socklen_t tolen)
{
    OURS_OR(fd, px_real.sendto(fd, buf, n, flags, to, tolen));
    struct iovec v = {(void *)buf, n};
    return sock_send(s, &v, 1, flags, s->type == SOCK_DGRAM ? to : NULL, tolen);
}

ssize_t sendmsg(int fd, const struct msghdr *m, int flags)
{
    OURS_OR(fd, px_real.sendmsg(fd, m, flags));
    if (!m)
        return px_fail(EFAULT);
    if (m->msg_controllen) {
        px_log_once("sendmsg() with ancillary data on a stack socket: not supported (EOPNOTSUPP)");
        return px_fail(EOPNOTSUPP);
    }
    const struct sockaddr *to = s->type == SOCK_DGRAM ? m->msg_name : NULL;
    return sock_send(s, m->msg_iov, (int)m->msg_iovlen, flags, to, to ? m->msg_namelen : 0);
}

int sendmmsg(int fd, struct mmsghdr *v, unsigned n, int flags)
{
    OURS_OR(fd, px_real.sendmmsg(fd, v, n, flags));
    px_log_once("sendmmsg() on a stack socket: not supported (EOPNOTSUPP)");
    return px_fail(EOPNOTSUPP);
}

/* sendfile to a stack socket: read the file, write the socket. What was
 * read but not taken by the socket is given back (the offset, or the file
 * position, moves by what was sent). */
static ssize_t sock_sendfile(struct px_sock *s, int in, off_t *off, size_t count)
{
    static __thread uint8_t *buf;
    const size_t chunk = 64 * 1024;
    if (!buf && !(buf = malloc(chunk)))
        return px_fail(ENOMEM);
    size_t sent = 0;
    while (sent < count) {
        size_t want = count - sent < chunk ? count - sent : chunk;
        ssize_t r = off ? pread(in, buf, want, *off) : px_real.read(in, buf, want);
        if (r < 0)
            return sent ? (ssize_t)sent : -1;
        if (r == 0)
            break;
        struct iovec v = {buf, (size_t)r};
        ssize_t w = sock_send(s, &v, 1, 0, NULL, 0);
        size_t took = w > 0 ? (size_t)w : 0;
        if (off)
            *off += (off_t)took;
        else if (took < (size_t)r)
            lseek(in, -(off_t)((size_t)r - took), SEEK_CUR);
        sent += took;
        if (w < 0)
            return sent ? (ssize_t)sent : -1;
        if (took < (size_t)r)
            break;
    }
    return (ssize_t)sent;
}

ssize_t sendfile(int out, int in, off_t *off, size_t count)
{
    OURS_OR(out, px_real.sendfile(out, in, off, count));
    return sock_sendfile(s, in, off, count);
}

ssize_t sendfile64(int out, int in, off_t *off, size_t count)
{
    OURS_OR(out, px_real.sendfile64(out, in, off, count));
    return sock_sendfile(s, in, off, count);
}
