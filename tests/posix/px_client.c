/*
 * px_client.c - test client for px_server (POSIX socket interposition tests).
 *
 * Usage:
 *   px_client HOST PORT CASE                 CASE: echo many bulk nonblock
 *                                                  timeout fork eof_rst epoll
 *   px_client HOST PORT udp UDPPORT
 *   px_client HOST PORT refused CLOSEDPORT   (a TCP port nobody listens on)
 *   px_client HOST PORT ctrl QUIT|PIPE|STATS
 *   px_client HOST PORT all UDPPORT CLOSEDPORT
 *       runs echo many nonblock refused udp timeout fork eof_rst epoll;
 *       UDPPORT 0 skips udp (px_server has no UDP in block mode)
 *
 * A plain Linux socket program (libc only); every socket call happens on
 * the main thread, so it can run natively or under an LD_PRELOAD socket
 * interposer. Each case prints "PASS name" or, for the first failed check
 * of the case, "FAIL name: what: expected ..., got ..." (stdout). Exit
 * status: 0 when all cases passed, 1 otherwise, 2 for a usage error.
 * Every case is bounded by a hang guard (alarm) that fails it instead of
 * hanging; no check puts an upper bound on how long anything takes.
 *
 * Echo data never starts with "CTRL " (pattern byte 0 is 0xA5), which
 * px_server reserves for control connections.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "px_io.h"

#define CASE_ALARM_S 120
#define BULK_ALARM_S 600
#define ECHO_CONNS 64
#define ECHO_MAX (1u << 20)
#define ECHO_CHUNK_MAX 32768
#define MANY_CONNS 200
#define MANY_BYTES 16384
#define BULK_BYTES (64ull << 20)
#define BULK_BUF (256u << 10)
#define FILL_CAP (512ull << 20)
#define UDP_COUNT 100
#define UDP_MAX_SIZE 8000
#define UDP_TRIES 5
#define UDP_WAIT_MS 2000
#define TIMEOUT_MS 50

#define TRY(x)                                                                                     \
    do {                                                                                           \
        if (!(x))                                                                                  \
            return false;                                                                          \
    } while (0)


static const char *g_case = "-";
static struct sockaddr_in g_srv;    /* HOST:PORT (TCP) */
static struct sockaddr_in g_udp;    /* HOST:UDPPORT */
static struct sockaddr_in g_closed; /* HOST:CLOSEDPORT */
static bool g_have_udp, g_have_closed;
static const char *g_arg4;

/* ---- reporting ---- */

static bool fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static bool fail(const char *fmt, ...)
{
    va_list ap;
    printf("FAIL %s: ", g_case);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    return false;
}

static const char *ename(int e)
{
    const char *n = strerrorname_np(e);
    return n ? n : "?";
}

/* errno as "ENAME (message)"; a small ring of buffers for one printf. */
static const char *estr(int e)
{
    static char bufs[4][96];
    static unsigned k;
    char *b = bufs[k++ % 4];
    snprintf(b, sizeof bufs[0], "%s (%s)", ename(e), strerror(e));
    return b;
}

static bool is_again(int e)
{
    return e == EAGAIN || e == EWOULDBLOCK;
}

/* A call that must succeed (return >= 0). */
static bool ok(long ret, const char *what)
{
    int e = errno;
    if (ret >= 0)
        return true;
    return fail("%s: expected success, got %ld, errno %s", what, ret, estr(e));
}

/* A call that must return exactly want. */
static bool ret_is(long ret, long want, const char *what)
{
    int e = errno;
    if (ret == want)
        return true;
    if (ret < 0)
        return fail("%s: expected %ld, got %ld, errno %s", what, want, ret, estr(e));
    return fail("%s: expected %ld, got %ld", what, want, ret);
}

/* A call that must fail with err (EAGAIN also accepts EWOULDBLOCK). */
static bool fails_with(long ret, int err, const char *what)
{
    int e = errno;
    if (ret == -1 && (e == err || (is_again(err) && is_again(e))))
        return true;
    if (ret == -1)
        return fail("%s: expected -1 with %s, got -1 with %s", what, estr(err), estr(e));
    return fail("%s: expected -1 with %s, got %ld", what, estr(err), ret);
}

static bool eq(long got, long want, const char *what)
{
    if (got == want)
        return true;
    return fail("%s: expected %ld, got %ld", what, want, got);
}

static const char *addr_str(const struct sockaddr_in *a)
{
    static char bufs[4][32];
    static unsigned k;
    char *b = bufs[k++ % 4], ip[INET_ADDRSTRLEN] = "?";
    inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
    snprintf(b, sizeof bufs[0], "%s:%u", ip, ntohs(a->sin_port));
    return b;
}

static void on_alarm(int sig)
{
    static const char a[] = "FAIL ", b[] = ": hang guard fired (alarm), the case did not finish\n";
    (void)sig;
    if (write(STDOUT_FILENO, a, sizeof a - 1) < 0 ||
        write(STDOUT_FILENO, g_case, strlen(g_case)) < 0 ||
        write(STDOUT_FILENO, b, sizeof b - 1) < 0)
        _exit(1);
    _exit(1);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- data patterns and checksums ---- */

/* Byte OFF of the stream with seed SEED; byte 0 is never 'C'. */
static inline uint8_t pat(uint32_t seed, uint64_t off)
{
    if (off == 0)
        return 0xA5;
    uint64_t x = (off + seed * 0x9E3779B97F4A7C15ull) * 0xD6E8FEB86659FD93ull;
    return (uint8_t)(x >> 56 ^ x >> 29);
}

static void pat_fill(uint8_t *p, size_t n, uint32_t seed, uint64_t off)
{
    for (size_t i = 0; i < n; i++)
        p[i] = pat(seed, off + i);
}

static bool pat_check(const uint8_t *p, size_t n, uint32_t seed, uint64_t off, const char *what)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t want = pat(seed, off + i);
        if (p[i] != want)
            return fail("%s: data mismatch at stream offset %llu: expected 0x%02x, got 0x%02x", what,
                        (unsigned long long)(off + i), want, p[i]);
    }
    return true;
}

static uint64_t fnv1a(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

#define FNV_INIT 0xcbf29ce484222325ull

/* ---- socket helpers ---- */

static bool same_addr(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
    return a->sin_family == b->sin_family && a->sin_port == b->sin_port &&
           a->sin_addr.s_addr == b->sin_addr.s_addr;
}

static bool check_peer(int fd, const struct sockaddr_in *want)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    memset(&a, 0, sizeof a);
    TRY(ok(getpeername(fd, (struct sockaddr *)&a, &len), "getpeername"));
    TRY(eq(len, sizeof a, "getpeername address length"));
    if (!same_addr(&a, want))
        return fail("getpeername: expected %s, got %s (family %d)", addr_str(want), addr_str(&a),
                    a.sin_family);
    return true;
}

static bool check_local(int fd)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    memset(&a, 0, sizeof a);
    TRY(ok(getsockname(fd, (struct sockaddr *)&a, &len), "getsockname"));
    TRY(eq(len, sizeof a, "getsockname address length"));
    TRY(eq(a.sin_family, AF_INET, "getsockname family"));
    if (a.sin_port == 0)
        return fail("getsockname: expected a nonzero local port, got %s", addr_str(&a));
    if (a.sin_addr.s_addr == htonl(INADDR_ANY))
        return fail("getsockname: expected a local address on a connected socket, got %s",
                    addr_str(&a));
    return true;
}

static bool check_names(int fd, const struct sockaddr_in *peer)
{
    return check_peer(fd, peer) && check_local(fd);
}

static int tcp_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (!ok(fd, "socket(AF_INET, SOCK_STREAM)"))
        return -1;
    char what[64];
    snprintf(what, sizeof what, "blocking connect to %s", addr_str(&g_srv));
    if (!ok(connect(fd, (struct sockaddr *)&g_srv, sizeof g_srv), what)) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool set_nonblock(int fd, bool on)
{
    int fl = fcntl(fd, F_GETFL);
    TRY(ok(fl, "fcntl(F_GETFL)"));
    fl = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
    return ok(fcntl(fd, F_SETFL, fl), "fcntl(F_SETFL)");
}

static bool check_nonblock(int fd, bool want)
{
    int fl = fcntl(fd, F_GETFL);
    TRY(ok(fl, "fcntl(F_GETFL)"));
    return eq(!!(fl & O_NONBLOCK), want, "fcntl(F_GETFL) & O_NONBLOCK");
}

static bool fionbio(int fd, int on)
{
    return ok(ioctl(fd, FIONBIO, &on), "ioctl(FIONBIO)") && check_nonblock(fd, on);
}

static bool so_error_is(int fd, int want, const char *what)
{
    int v = -1;
    socklen_t len = sizeof v;
    TRY(ok(getsockopt(fd, SOL_SOCKET, SO_ERROR, &v, &len), "getsockopt(SO_ERROR)"));
    TRY(eq(len, sizeof v, "getsockopt(SO_ERROR) length"));
    if (v != want)
        return fail("%s: SO_ERROR expected %s, got %s", what, want ? estr(want) : "0",
                    v ? estr(v) : "0");
    return true;
}

static bool close_ok(int fd)
{
    return ret_is(close(fd), 0, "close");
}

/* Wait for EVENTS on fd (poll, no timeout: the alarm is the guard). */
static bool wait_fd(int fd, short events, short *revents)
{
    struct pollfd p = { .fd = fd, .events = events };
    int r;
    do {
        r = poll(&p, 1, -1);
    } while (r < 0 && errno == EINTR);
    TRY(ret_is(r, 1, "poll(timeout -1)"));
    if (revents)
        *revents = p.revents;
    return true;
}

static ssize_t io_send(int fd, const uint8_t *p, size_t n, enum io_style st)
{
    return px_io_write(fd, p, n, st);
}

static const char *const style_send_name[] = { "write", "send", "writev", "sendmsg" };
static const char *const style_recv_name[] = { "read", "recv", "readv", "recvmsg" };

static ssize_t io_recv(int fd, uint8_t *p, size_t n, enum io_style st, int *msg_flags)
{
    return px_io_read(fd, p, n, st, msg_flags);
}

/* Blocking: send all n bytes (partial counts continue). */
static bool send_all(int fd, const uint8_t *p, size_t n, enum io_style st)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = io_send(fd, p + done, n - done, st);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return ok(r < 0 ? -1 : 0, style_send_name[st]) &&
                   fail("%s returned 0 for %zu bytes", style_send_name[st], n - done);
        done += (size_t)r;
    }
    return true;
}

/* Blocking: receive exactly n bytes. */
static bool recv_exact(int fd, uint8_t *p, size_t n, enum io_style st)
{
    size_t done = 0;
    while (done < n) {
        int flags;
        ssize_t r = io_recv(fd, p + done, n - done, st, &flags);
        if (r < 0 && errno == EINTR)
            continue;
        TRY(ok(r, style_recv_name[st]));
        if (r == 0)
            return fail("%s: unexpected EOF after %zu of %zu bytes", style_recv_name[st], done, n);
        if (flags & MSG_TRUNC)
            return fail("recvmsg on TCP: MSG_TRUNC set in msg_flags");
        done += (size_t)r;
    }
    return true;
}

/* Non-blocking socket: receive exactly n bytes, waiting with poll. */
static bool recv_exact_nb(int fd, uint8_t *p, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = read(fd, p + done, n - done);
        if (r < 0 && (is_again(errno) || errno == EINTR)) {
            TRY(wait_fd(fd, POLLIN, NULL));
            continue;
        }
        TRY(ok(r, "read"));
        if (r == 0)
            return fail("read: unexpected EOF after %zu of %zu bytes", done, n);
        done += (size_t)r;
    }
    return true;
}

/* One blocking echo round trip of a small text. */
static bool echo_text(int fd, const char *text)
{
    size_t n = strlen(text);
    char back[256];
    TRY(send_all(fd, (const uint8_t *)text, n, IO_SENDRECV));
    TRY(recv_exact(fd, (uint8_t *)back, n, IO_RW));
    if (memcmp(back, text, n) != 0)
        return fail("echo of \"%s\": got \"%.*s\"", text, (int)n, back);
    return true;
}

/* A fresh connection echoes: the server survived what came before. */
static bool server_alive(const char *tag)
{
    char text[64];
    int fd = tcp_connect();
    TRY(fd >= 0);
    snprintf(text, sizeof text, "alive after %s", tag);
    bool r = echo_text(fd, text);
    return close_ok(fd) && r;
}

/* Wait until FIONREAD reports want bytes (they arrive in any pieces). */
static bool wait_fionread(int fd, int want)
{
    for (;;) {
        int n = -1;
        TRY(wait_fd(fd, POLLIN, NULL));
        TRY(ok(ioctl(fd, FIONREAD, &n), "ioctl(FIONREAD)"));
        if (n == want)
            return true;
        if (n < 0 || n > want)
            return fail("ioctl(FIONREAD): expected at most %d, got %d", want, n);
        usleep(1000); /* part of the echo is still on its way */
    }
}

/* ---- case echo ---- */

static size_t echo_size(unsigned i)
{
    static const size_t fixed[] = { 1,    2,    3,    7,     64,    511,   512,  513,   1399,
                                    1460, 1500, 4095, 4096,  4097,  65535, 65536, 65537, 131072 };
    if (i < sizeof fixed / sizeof fixed[0])
        return fixed[i];
    if (i == ECHO_CONNS - 1)
        return ECHO_MAX;
    return 1 + (size_t)((uint64_t)i * 2654435761u % ECHO_MAX);
}

/* Chunks of at most 32 KiB, each echoed before the next is sent: a
 * blocking client that sent everything first could deadlock with the echo. */
static bool echo_one(unsigned i, uint8_t *sbuf, uint8_t *rbuf)
{
    size_t size = echo_size(i);
    enum io_style ss = (enum io_style)(i % IO_NSTYLES);
    enum io_style rs = (enum io_style)((i + i / IO_NSTYLES) % IO_NSTYLES);
    uint32_t seed = 1000 + i;
    int fd = tcp_connect();
    TRY(fd >= 0);
    bool good = check_names(fd, &g_srv);
    for (size_t off = 0, k = 0; good && off < size; k++) {
        size_t chunk = 512 + (k * 7919 + i * 131) % (ECHO_CHUNK_MAX - 511);
        if (chunk > size - off)
            chunk = size - off;
        pat_fill(sbuf, chunk, seed, off);
        good = send_all(fd, sbuf, chunk, ss) && recv_exact(fd, rbuf, chunk, rs) &&
               pat_check(rbuf, chunk, seed, off, "echo");
        off += chunk;
    }
    if (!good)
        fail("connection %u: %zu bytes, %s/%s", i, size, style_send_name[ss], style_recv_name[rs]);
    return close_ok(fd) && good;
}

static bool case_echo(void)
{
    static uint8_t sbuf[ECHO_CHUNK_MAX], rbuf[ECHO_CHUNK_MAX];
    for (unsigned i = 0; i < ECHO_CONNS; i++)
        TRY(echo_one(i, sbuf, rbuf));
    return true;
}

/* ---- case many ---- */

enum mstate { MS_CONNECTING, MS_ACTIVE, MS_DONE };

struct mconn {
    int fd;
    enum mstate state;
    size_t sent, rcvd;
};

static bool many_start(struct mconn *c, unsigned i, int ep)
{
    int fd = socket(AF_INET, SOCK_STREAM | (i % 2 ? SOCK_NONBLOCK : 0), 0);
    TRY(ok(fd, "socket"));
    c->fd = fd;
    if (i % 2 == 0)
        TRY(set_nonblock(fd, true));
    int r = connect(fd, (struct sockaddr *)&g_srv, sizeof g_srv);
    if (r == 0) {
        c->state = MS_ACTIVE;
    } else if (errno == EINPROGRESS) {
        c->state = MS_CONNECTING;
    } else {
        return fails_with(r, EINPROGRESS, "non-blocking connect");
    }
    struct epoll_event ev = { .events = c->state == MS_ACTIVE ? EPOLLIN | EPOLLOUT : EPOLLOUT,
                              .data.u32 = i };
    return ok(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), "epoll_ctl(ADD)");
}

/* EPOLLOUT on a connecting socket: poll must agree, SO_ERROR must be 0. */
static bool many_connected(struct mconn *c, unsigned i, int ep)
{
    struct pollfd p = { .fd = c->fd, .events = POLLOUT };
    TRY(ret_is(poll(&p, 1, 0), 1, "poll(POLLOUT) after epoll reported the connect"));
    if (!(p.revents & POLLOUT) || (p.revents & (POLLERR | POLLHUP)))
        return fail("poll after connect: expected POLLOUT, got revents 0x%x", p.revents);
    TRY(so_error_is(c->fd, 0, "connect"));
    TRY(check_names(c->fd, &g_srv));
    c->state = MS_ACTIVE;
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.u32 = i };
    return ok(epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev), "epoll_ctl(MOD)");
}

static bool many_write(struct mconn *c, unsigned i, int ep)
{
    uint8_t buf[5000];
    size_t n = 1000 + (c->sent * 31 + i * 97) % 4000;
    if (n > MANY_BYTES - c->sent)
        n = MANY_BYTES - c->sent;
    pat_fill(buf, n, i, c->sent);
    ssize_t r = i % 2 ? write(c->fd, buf, n) : send(c->fd, buf, n, MSG_NOSIGNAL);
    if (r < 0 && is_again(errno))
        return true;
    TRY(ok(r, "write"));
    c->sent += (size_t)r;
    if (c->sent == MANY_BYTES) {
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };
        TRY(ok(epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev), "epoll_ctl(MOD)"));
    }
    return true;
}

static bool many_read(struct mconn *c, unsigned i, unsigned *done)
{
    uint8_t buf[3000];
    ssize_t r = i % 2 ? read(c->fd, buf, sizeof buf) : recv(c->fd, buf, sizeof buf, 0);
    if (r < 0 && is_again(errno))
        return true;
    TRY(ok(r, "read"));
    if (r == 0)
        return fail("connection %u: EOF after %zu of %d echoed bytes", i, c->rcvd, MANY_BYTES);
    if (c->rcvd + (size_t)r > MANY_BYTES)
        return fail("connection %u: more echo than sent", i);
    TRY(pat_check(buf, (size_t)r, i, c->rcvd, "many"));
    c->rcvd += (size_t)r;
    if (c->rcvd == MANY_BYTES) {
        TRY(close_ok(c->fd)); /* close removes it from the epoll set */
        c->state = MS_DONE;
        ++*done;
    }
    return true;
}

static bool many_event(struct mconn *c, unsigned i, uint32_t ev, int ep, unsigned *done)
{
    if (c->state == MS_CONNECTING)
        return many_connected(c, i, ep);
    if (c->state != MS_ACTIVE)
        return fail("connection %u: event 0x%x after close", i, ev);
    if ((ev & EPOLLOUT) && c->sent < MANY_BYTES)
        TRY(many_write(c, i, ep));
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))
        TRY(many_read(c, i, done));
    return true;
}

static bool case_many(void)
{
    static struct mconn conns[MANY_CONNS];
    struct epoll_event evs[64];
    unsigned done = 0;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    TRY(ok(ep, "epoll_create1"));
    for (unsigned i = 0; i < MANY_CONNS; i++)
        TRY(many_start(&conns[i], i, ep));
    while (done < MANY_CONNS) {
        int n = epoll_wait(ep, evs, 64, -1);
        if (n < 0 && errno == EINTR)
            continue;
        TRY(ok(n, "epoll_wait"));
        for (int k = 0; k < n; k++) {
            unsigned i = evs[k].data.u32;
            TRY(many_event(&conns[i], i, evs[k].events, ep, &done));
        }
    }
    return close_ok(ep);
}

/* ---- case bulk ---- */

struct bulk {
    int fd;
    uint8_t *wbuf, *rbuf;
    size_t wlen, woff;
    uint64_t sent, rcvd;
    uint64_t h_tx, h_rx;
};

/* Non-blocking connect, waited for with poll. */
static int connect_nb(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    short re = 0;
    if (!ok(fd, "socket(SOCK_NONBLOCK)"))
        return -1;
    int r = connect(fd, (struct sockaddr *)&g_srv, sizeof g_srv);
    if (r < 0 && !fails_with(r, EINPROGRESS, "non-blocking connect"))
        goto bad;
    if (r < 0 && (!wait_fd(fd, POLLOUT, &re) || !so_error_is(fd, 0, "connect")))
        goto bad;
    return fd;
bad:
    close(fd);
    return -1;
}

/* Edge-triggered: write until EAGAIN or done. */
static bool bulk_write(struct bulk *b)
{
    while (b->sent < BULK_BYTES) {
        if (b->woff == b->wlen) {
            uint64_t left = BULK_BYTES - b->sent;
            b->wlen = left < BULK_BUF ? (size_t)left : BULK_BUF;
            b->woff = 0;
            pat_fill(b->wbuf, b->wlen, 7, b->sent);
        }
        ssize_t r = write(b->fd, b->wbuf + b->woff, b->wlen - b->woff);
        if (r < 0 && is_again(errno))
            return true;
        if (r < 0 && errno == EINTR)
            continue;
        TRY(ok(r, "write"));
        b->h_tx = fnv1a(b->h_tx, b->wbuf + b->woff, (size_t)r);
        b->woff += (size_t)r;
        b->sent += (uint64_t)r;
    }
    return true;
}

/* Edge-triggered: read until EAGAIN or done. */
static bool bulk_read(struct bulk *b)
{
    while (b->rcvd < BULK_BYTES) {
        ssize_t r = read(b->fd, b->rbuf, BULK_BUF);
        if (r < 0 && is_again(errno))
            return true;
        if (r < 0 && errno == EINTR)
            continue;
        TRY(ok(r, "read"));
        if (r == 0)
            return fail("EOF after %llu of %llu bytes", (unsigned long long)b->rcvd, BULK_BYTES);
        if (b->rcvd + (uint64_t)r > b->sent)
            return fail("received more than was sent");
        TRY(pat_check(b->rbuf, (size_t)r, 7, b->rcvd, "bulk"));
        b->h_rx = fnv1a(b->h_rx, b->rbuf, (size_t)r);
        b->rcvd += (uint64_t)r;
    }
    return true;
}

static bool bulk_run(struct bulk *b)
{
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLET, .data.u32 = 1 };
    int ep = epoll_create1(EPOLL_CLOEXEC);
    TRY(ok(ep, "epoll_create1"));
    bool good = ok(epoll_ctl(ep, EPOLL_CTL_ADD, b->fd, &ev), "epoll_ctl(ADD, EPOLLET)");
    while (good && b->rcvd < BULK_BYTES) {
        int n = epoll_wait(ep, &ev, 1, -1);
        if (n < 0 && errno == EINTR)
            continue;
        good = ret_is(n, 1, "epoll_wait") && bulk_write(b) && bulk_read(b);
    }
    return close_ok(ep) && good;
}

static bool case_bulk(void)
{
    struct bulk b = { .h_tx = FNV_INIT, .h_rx = FNV_INIT };
    b.fd = connect_nb();
    TRY(b.fd >= 0);
    b.wbuf = malloc(BULK_BUF);
    b.rbuf = malloc(BULK_BUF);
    bool good = b.wbuf && b.rbuf && bulk_run(&b);
    free(b.wbuf);
    free(b.rbuf);
    TRY(close_ok(b.fd) && good);
    if (b.h_tx != b.h_rx)
        return fail("checksums: sent fnv1a %016llx, received %016llx", (unsigned long long)b.h_tx,
                    (unsigned long long)b.h_rx);
    printf("bulk: %llu bytes each way, fnv1a %016llx both ways\n", BULK_BYTES,
           (unsigned long long)b.h_tx);
    return true;
}

/* ---- case nonblock ---- */

static bool nb_empty(int fd)
{
    uint8_t b[16];
    TRY(set_nonblock(fd, true));
    TRY(check_nonblock(fd, true));
    TRY(fails_with(read(fd, b, sizeof b), EAGAIN, "read on an empty non-blocking socket"));
    TRY(fails_with(recv(fd, b, sizeof b, 0), EAGAIN, "recv on an empty non-blocking socket"));
    return fails_with(recv(fd, b, sizeof b, MSG_PEEK), EAGAIN, "recv(MSG_PEEK) on an empty socket");
}

/* FIONREAD and MSG_PEEK on 1000 echoed bytes. */
static bool nb_peek(int fd)
{
    uint8_t s[1000], p[1000], r[1000];
    int avail = -1;
    pat_fill(s, sizeof s, 11, 0);
    TRY(send_all(fd, s, sizeof s, IO_RW));
    TRY(wait_fionread(fd, sizeof s));
    ssize_t n = recv(fd, p, sizeof p, MSG_PEEK);
    TRY(ok(n, "recv(MSG_PEEK)"));
    if (n == 0)
        return fail("recv(MSG_PEEK): expected data, got 0");
    TRY(pat_check(p, (size_t)n, 11, 0, "recv(MSG_PEEK)"));
    TRY(ok(ioctl(fd, FIONREAD, &avail), "ioctl(FIONREAD)"));
    TRY(eq(avail, sizeof s, "FIONREAD after MSG_PEEK (nothing consumed)"));
    TRY(ret_is(recv(fd, p, 10, MSG_PEEK | MSG_DONTWAIT), 10, "second recv(MSG_PEEK, 10)"));
    TRY(pat_check(p, 10, 11, 0, "second recv(MSG_PEEK)"));
    TRY(recv_exact_nb(fd, r, sizeof r));
    TRY(pat_check(r, sizeof r, 11, 0, "read after MSG_PEEK"));
    TRY(ok(ioctl(fd, FIONREAD, &avail), "ioctl(FIONREAD)"));
    TRY(eq(avail, 0, "FIONREAD after reading everything"));
    return fails_with(read(fd, r, 1), EAGAIN, "read after reading everything");
}

/* Blocking socket: MSG_DONTWAIT, FIONBIO, MSG_WAITALL. */
static bool nb_blocking_flags(int fd)
{
    static uint8_t s[48 << 10], r[48 << 10];
    TRY(fionbio(fd, 0));
    TRY(fails_with(recv(fd, r, 16, MSG_DONTWAIT), EAGAIN, "recv(MSG_DONTWAIT) on a blocking socket"));
    TRY(fionbio(fd, 1));
    TRY(fails_with(read(fd, r, 16), EAGAIN, "read after ioctl(FIONBIO, 1)"));
    TRY(fionbio(fd, 0));
    pat_fill(s, sizeof s, 12, 0);
    TRY(send_all(fd, s, sizeof s, IO_VEC));
    TRY(ret_is(recv(fd, r, sizeof r, MSG_WAITALL), sizeof r, "recv(MSG_WAITALL) on a blocking socket"));
    return pat_check(r, sizeof r, 12, 0, "recv(MSG_WAITALL)");
}

/* Write without reading until a write is partial or EAGAIN (the echo fills
 * both directions), then read the whole echo back. */
static bool nb_fill(int fd)
{
    static uint8_t buf[64 << 10];
    uint64_t sent = 0, rcvd = 0;
    bool stopped = false;
    TRY(set_nonblock(fd, true));
    while (!stopped) {
        if (sent >= FILL_CAP)
            return fail("non-blocking write: no EAGAIN or partial write after %llu bytes", FILL_CAP);
        pat_fill(buf, sizeof buf, 13, sent);
        ssize_t r = write(fd, buf, sizeof buf);
        if (r < 0 && is_again(errno))
            break;
        TRY(ok(r, "non-blocking write"));
        sent += (uint64_t)r;
        stopped = (size_t)r < sizeof buf;
    }
    printf("nonblock: send path full after %llu bytes\n", (unsigned long long)sent);
    while (rcvd < sent) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && is_again(errno)) {
            TRY(wait_fd(fd, POLLIN, NULL));
            continue;
        }
        TRY(ok(r, "read"));
        if (r == 0)
            return fail("EOF while draining the echo");
        if (rcvd + (uint64_t)r > sent)
            return fail("received more than was sent");
        TRY(pat_check(buf, (size_t)r, 13, rcvd, "drain"));
        rcvd += (uint64_t)r;
    }
    return set_nonblock(fd, false) && check_nonblock(fd, false);
}

static bool case_nonblock(void)
{
    int fd = tcp_connect();
    TRY(fd >= 0);
    bool good = nb_empty(fd) && nb_peek(fd) && nb_blocking_flags(fd) && nb_fill(fd) &&
                echo_text(fd, "after the fill");
    return close_ok(fd) && good;
}

/* ---- case refused ---- */

static bool refused_blocking(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    TRY(ok(fd, "socket"));
    bool good = fails_with(connect(fd, (struct sockaddr *)&g_closed, sizeof g_closed), ECONNREFUSED,
                           "blocking connect to the closed port");
    return close_ok(fd) && good;
}

/* Start a non-blocking connect to the closed port; *now set if it was
 * refused at once (legitimate, but then there is nothing to wait for). */
static int refused_start(bool *now)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (!ok(fd, "socket(SOCK_NONBLOCK)"))
        return -1;
    int r = connect(fd, (struct sockaddr *)&g_closed, sizeof g_closed);
    *now = r < 0 && errno == ECONNREFUSED;
    if (*now) {
        printf("refused: note: non-blocking connect failed at once with ECONNREFUSED\n");
        return fd;
    }
    if (!fails_with(r, EINPROGRESS, "non-blocking connect to the closed port")) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool refused_so_error(int fd)
{
    TRY(so_error_is(fd, ECONNREFUSED, "refused connect"));
    return so_error_is(fd, 0, "second SO_ERROR read (the error is cleared)");
}

static bool refused_poll(void)
{
    bool now;
    short re = 0;
    int fd = refused_start(&now);
    TRY(fd >= 0);
    bool good = now || wait_fd(fd, POLLOUT, &re);
    if (good && !now && !(re & (POLLERR | POLLHUP)))
        good = fail("poll on a refused connect: expected POLLERR or POLLHUP, got revents 0x%x", re);
    if (good && !now)
        good = refused_so_error(fd);
    return close_ok(fd) && good;
}

static bool refused_epoll(void)
{
    bool now;
    int fd = refused_start(&now), ep = -1;
    TRY(fd >= 0);
    struct epoll_event ev = { .events = EPOLLOUT, .data.u32 = 5 };
    bool good = now || (ok(ep = epoll_create1(0), "epoll_create1") &&
                        ok(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), "epoll_ctl(ADD)") &&
                        ret_is(epoll_wait(ep, &ev, 1, -1), 1, "epoll_wait"));
    if (good && !now && !(ev.events & (EPOLLERR | EPOLLHUP)))
        good = fail("epoll on a refused connect: expected EPOLLERR or EPOLLHUP, got events 0x%x",
                    ev.events);
    if (good && !now)
        good = refused_so_error(fd);
    if (ep >= 0)
        good = close_ok(ep) && good;
    return close_ok(fd) && good;
}

static bool refused_select(void)
{
    bool now;
    int fd = refused_start(&now);
    TRY(fd >= 0);
    bool good = true;
    if (!now && fd >= FD_SETSIZE)
        good = fail("select: fd %d is not below FD_SETSIZE", fd);
    if (good && !now) {
        fd_set ws;
        FD_ZERO(&ws);
        FD_SET(fd, &ws);
        good = ret_is(select(fd + 1, NULL, &ws, NULL, NULL), 1, "select(write set)") &&
               (FD_ISSET(fd, &ws) || fail("select: refused socket not in the write set")) &&
               refused_so_error(fd);
    }
    return close_ok(fd) && good;
}

static bool case_refused(void)
{
    if (!g_have_closed)
        return fail("needs CLOSEDPORT");
    return refused_blocking() && refused_poll() && refused_epoll() && refused_select();
}

/* ---- case udp ---- */

static size_t udp_size(unsigned i)
{
    return 1 + (size_t)i * (UDP_MAX_SIZE - 1) / (UDP_COUNT - 1);
}

/* Send with send_fn, wait up to UDP_WAIT_MS for an answer, resend up to
 * UDP_TRIES times in all (UDP may drop; loopback and veth do not). */
static bool udp_send_wait(int fd, bool connected, const uint8_t *p, size_t n)
{
    for (int t = 0; t < UDP_TRIES; t++) {
        ssize_t r = connected ? send(fd, p, n, 0)
                              : sendto(fd, p, n, 0, (struct sockaddr *)&g_udp, sizeof g_udp);
        TRY(ret_is(r, (long)n, connected ? "send(UDP)" : "sendto(UDP)"));
        struct pollfd pf = { .fd = fd, .events = POLLIN };
        int k = poll(&pf, 1, UDP_WAIT_MS);
        if (k < 0 && errno == EINTR)
            continue;
        TRY(ok(k, "poll(UDP)"));
        if (k == 1)
            return true;
        printf("udp: no echo for a %zu-byte datagram within %d ms, resending\n", n, UDP_WAIT_MS);
    }
    return fail("no echo for a %zu-byte datagram after %d tries", n, UDP_TRIES);
}

/* Receive the echo of datagram i; echoes of other sizes are stale resends. */
static bool udp_recv_echo(int fd, bool connected, unsigned i, uint8_t *buf, size_t cap)
{
    size_t n = udp_size(i);
    for (;;) {
        struct sockaddr_in from;
        socklen_t flen = sizeof from;
        memset(&from, 0, sizeof from);
        ssize_t r = connected ? recv(fd, buf, cap, 0)
                              : recvfrom(fd, buf, cap, 0, (struct sockaddr *)&from, &flen);
        TRY(ok(r, connected ? "recv(UDP)" : "recvfrom(UDP)"));
        if (!connected) {
            TRY(eq(flen, sizeof from, "recvfrom address length"));
            if (!same_addr(&from, &g_udp))
                return fail("recvfrom: expected source %s, got %s", addr_str(&g_udp), addr_str(&from));
        }
        if ((size_t)r == n)
            return pat_check(buf, n, 2000 + i, 0, "udp echo");
        printf("udp: ignoring a %zd-byte datagram while waiting for %zu bytes\n", r, n);
        TRY(wait_fd(fd, POLLIN, NULL));
    }
}

static bool udp_round(int fd, bool connected, unsigned i)
{
    static uint8_t s[UDP_MAX_SIZE], r[65536];
    size_t n = udp_size(i);
    pat_fill(s, n, 2000 + i, 0);
    return udp_send_wait(fd, connected, s, n) && udp_recv_echo(fd, connected, i, r, sizeof r);
}

/* A 1000-byte echo read into 100 bytes: recvfrom returns 100, recvmsg
 * sets MSG_TRUNC; the rest of each datagram is discarded. */
static bool udp_trunc(int fd)
{
    uint8_t s[1000], r[1000];
    struct iovec iov = { r, 100 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };

    pat_fill(s, sizeof s, 3000, 0);
    TRY(udp_send_wait(fd, false, s, sizeof s));
    TRY(ret_is(recvfrom(fd, r, 100, 0, NULL, NULL), 100, "recvfrom(100-byte buffer, 1000-byte datagram)"));
    TRY(pat_check(r, 100, 3000, 0, "truncated recvfrom"));
    TRY(udp_send_wait(fd, false, s, sizeof s));
    TRY(ret_is(recvmsg(fd, &m, 0), 100, "recvmsg(100-byte buffer, 1000-byte datagram)"));
    if (!(m.msg_flags & MSG_TRUNC))
        return fail("recvmsg: expected MSG_TRUNC in msg_flags, got 0x%x", m.msg_flags);
    TRY(pat_check(r, 100, 3000, 0, "truncated recvmsg"));
    TRY(udp_send_wait(fd, false, s, 10));
    TRY(ret_is(recv(fd, r, sizeof r, 0), 10, "recv after truncation (next datagram, 10 bytes)"));
    return pat_check(r, 10, 3000, 0, "datagram after truncation");
}

static bool udp_connected(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    TRY(ok(fd, "socket(SOCK_DGRAM)"));
    bool good = ok(connect(fd, (struct sockaddr *)&g_udp, sizeof g_udp), "connect(UDP)") &&
                check_names(fd, &g_udp);
    for (unsigned i = 1; good && i < UDP_COUNT; i += 2)
        good = udp_round(fd, true, i);
    return close_ok(fd) && good;
}

static bool udp_unconnected(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    TRY(ok(fd, "socket(SOCK_DGRAM)"));
    bool good = true;
    for (unsigned i = 0; good && i < UDP_COUNT; i += 2)
        good = udp_round(fd, false, i);
    if (good)
        good = ok(getsockname(fd, (struct sockaddr *)&a, &len), "getsockname(UDP)") &&
               (a.sin_port != 0 || fail("getsockname(UDP) after sendto: port 0"));
    good = good && udp_trunc(fd);
    return close_ok(fd) && good;
}

static bool case_udp(void)
{
    if (!g_have_udp)
        return fail("needs UDPPORT");
    return udp_unconnected() && udp_connected();
}

/* ---- case timeout ---- */

static bool elapsed_at_least(double t0, int ms, const char *what)
{
    double el = now_ms() - t0;
    if (el >= ms - 1)
        return true;
    return fail("%s: returned 0 after %.3f ms, expected at least %d ms", what, el, ms);
}

static bool timeout_epoll(int fd)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.u32 = 9 };
    sigset_t none;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    TRY(ok(ep, "epoll_create1"));
    sigemptyset(&none);
    double t0 = now_ms();
    bool good = ok(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), "epoll_ctl(ADD)") &&
                ret_is(epoll_wait(ep, &ev, 1, TIMEOUT_MS), 0, "epoll_wait(50 ms) on an idle socket") &&
                elapsed_at_least(t0, TIMEOUT_MS, "epoll_wait");
    t0 = now_ms();
    good = good &&
           ret_is(epoll_pwait(ep, &ev, 1, TIMEOUT_MS, &none), 0, "epoll_pwait(50 ms) on an idle socket") &&
           elapsed_at_least(t0, TIMEOUT_MS, "epoll_pwait") &&
           ret_is(epoll_wait(ep, &ev, 1, 0), 0, "epoll_wait(timeout 0) on an idle socket");
    return close_ok(ep) && good;
}

static bool timeout_poll(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    double t0 = now_ms();
    TRY(ret_is(poll(&p, 1, TIMEOUT_MS), 0, "poll(50 ms) on an idle socket"));
    TRY(elapsed_at_least(t0, TIMEOUT_MS, "poll"));
    TRY(ret_is(poll(&p, 1, 0), 0, "poll(timeout 0) on an idle socket"));
    p.events = POLLOUT;
    TRY(ret_is(poll(&p, 1, -1), 1, "poll(POLLOUT) on an idle connected socket"));
    if (!(p.revents & POLLOUT))
        return fail("poll: idle connected socket: expected POLLOUT, got revents 0x%x", p.revents);
    return true;
}

static bool timeout_select(int fd)
{
    fd_set rs;
    struct timeval tv = { 0, TIMEOUT_MS * 1000 };
    if (fd >= FD_SETSIZE)
        return fail("select: fd %d is not below FD_SETSIZE", fd);
    FD_ZERO(&rs);
    FD_SET(fd, &rs);
    double t0 = now_ms();
    TRY(ret_is(select(fd + 1, &rs, NULL, NULL, &tv), 0, "select(50 ms) on an idle socket"));
    TRY(elapsed_at_least(t0, TIMEOUT_MS, "select"));
    if (FD_ISSET(fd, &rs))
        return fail("select: the read set was not cleared on timeout");
    FD_SET(fd, &rs);
    tv = (struct timeval){ 0, 0 };
    return ret_is(select(fd + 1, &rs, NULL, NULL, &tv), 0, "select(timeout 0) on an idle socket");
}

static bool case_timeout(void)
{
    int fd = tcp_connect();
    TRY(fd >= 0);
    bool good = timeout_epoll(fd) && timeout_poll(fd) && timeout_select(fd) &&
                echo_text(fd, "after the timeouts");
    return close_ok(fd) && good;
}

/* ---- case fork ---- */

/* In the child: close the inherited socket, use a file. 0 = success. */
static int fork_child(int sock)
{
    char path[] = "/tmp/px_forkXXXXXX";
    uint8_t w[4096], r[4096];
    if (!ret_is(close(sock), 0, "child: close(inherited socket)"))
        return 1;
    int f = mkstemp(path);
    if (!ok(f, "child: mkstemp"))
        return 1;
    unlink(path);
    pat_fill(w, sizeof w, 21, 0);
    bool good = ret_is(write(f, w, sizeof w), sizeof w, "child: write(file)") &&
                ret_is(lseek(f, 0, SEEK_SET), 0, "child: lseek") &&
                ret_is(read(f, r, sizeof r), sizeof r, "child: read(file)") &&
                pat_check(r, sizeof r, 21, 0, "child: file contents");
    return close_ok(f) && good ? 0 : 1;
}

static bool fork_wait_child(pid_t pid, int rd)
{
    char c = 0;
    int st = 0;
    TRY(ret_is(read(rd, &c, 1), 1, "read(pipe from the child)"));
    if (c != 'Y')
        return fail("child reported failure ('%c')", c);
    TRY(ret_is(read(rd, &c, 1), 0, "read(pipe) after the child's report (EOF)"));
    TRY(ret_is(waitpid(pid, &st, 0), pid, "waitpid"));
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return fail("child: expected exit status 0, got wait status 0x%x", st);
    return true;
}

static bool case_fork(void)
{
    int fd = tcp_connect(), p[2];
    TRY(fd >= 0);
    TRY(echo_text(fd, "before fork"));
    TRY(ok(pipe(p), "pipe"));
    fflush(stdout);
    pid_t pid = fork();
    TRY(ok(pid, "fork"));
    if (pid == 0) {
        close(p[0]);
        g_case = "fork (child)";
        int rc = fork_child(fd);
        char c = rc == 0 ? 'Y' : 'N';
        if (write(p[1], &c, 1) != 1)
            rc = 1;
        fflush(stdout);
        _exit(rc);
    }
    bool good = close_ok(p[1]) && fork_wait_child(pid, p[0]);
    good = close_ok(p[0]) && good;
    good = good && echo_text(fd, "after fork, in the parent") && check_names(fd, &g_srv);
    return close_ok(fd) && good;
}

/* ---- case eof_rst ---- */

static bool set_linger0(int fd)
{
    struct linger l = { 1, 0 }, back = { 0, 0 };
    socklen_t len = sizeof back;
    TRY(ok(setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l), "setsockopt(SO_LINGER {1,0})"));
    TRY(ok(getsockopt(fd, SOL_SOCKET, SO_LINGER, &back, &len), "getsockopt(SO_LINGER)"));
    if (len != sizeof back || !back.l_onoff || back.l_linger != 0)
        return fail("getsockopt(SO_LINGER): expected {1,0}, got {%d,%d}", back.l_onoff, back.l_linger);
    return true;
}

/* (b) "x", then a reset; read_echo: whether the echo is read first. */
static bool eof_reset(bool read_echo)
{
    char c = 0;
    int fd = tcp_connect();
    TRY(fd >= 0);
    bool good = ret_is(send(fd, "x", 1, MSG_NOSIGNAL), 1, "send(\"x\")");
    if (good && read_echo)
        good = ret_is(recv(fd, &c, 1, 0), 1, "recv(echo of x)") && (c == 'x' || fail("echo of x: got 0x%02x", c));
    good = good && set_linger0(fd);
    return close_ok(fd) && good;
}

/* (c) read after the server closed: a control connection. */
static bool eof_after_server_close(void)
{
    char line[256];
    size_t n = 0;
    struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.u32 = 3 };
    int fd = tcp_connect(), ep = -1;
    TRY(fd >= 0);
    bool good = send_all(fd, (const uint8_t *)"CTRL STATS\n", 11, IO_RW);
    while (good && (n == 0 || line[n - 1] != '\n') && n < sizeof line - 1) {
        ssize_t r = read(fd, line + n, sizeof line - 1 - n);
        good = ok(r, "read(STATS reply)") && (r > 0 || fail("EOF before the STATS reply ended"));
        n += good ? (size_t)r : 0;
    }
    line[n] = '\0';
    if (good && strncmp(line, "px_server: ", 11) != 0)
        good = fail("STATS reply: expected \"px_server: ...\", got \"%s\"", line);
    good = good && ret_is(read(fd, line, sizeof line), 0, "read after the server closed (EOF)") &&
           ret_is(read(fd, line, sizeof line), 0, "second read after EOF");
    short re = 0;
    good = good && wait_fd(fd, POLLIN, &re) && ((re & POLLIN) || fail("poll at EOF: expected POLLIN, got 0x%x", re));
    good = good && ok(ep = epoll_create1(0), "epoll_create1") &&
           ok(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), "epoll_ctl(ADD)") &&
           ret_is(epoll_wait(ep, &ev, 1, -1), 1, "epoll_wait at EOF");
    if (good && (ev.events & (EPOLLIN | EPOLLRDHUP)) != (EPOLLIN | EPOLLRDHUP))
        good = fail("epoll at EOF: expected EPOLLIN|EPOLLRDHUP, got events 0x%x", ev.events);
    if (ep >= 0)
        good = close_ok(ep) && good;
    return close_ok(fd) && good;
}

/* (d) shutdown(SHUT_RD): reads then return 0 at once. */
static bool eof_shut_rd(void)
{
    char b[16];
    int fd = tcp_connect();
    TRY(fd >= 0);
    bool good = echo_text(fd, "before SHUT_RD") &&
                ret_is(shutdown(fd, SHUT_RD), 0, "shutdown(SHUT_RD)") &&
                ret_is(read(fd, b, sizeof b), 0, "blocking read after shutdown(SHUT_RD)");
    return close_ok(fd) && good;
}

static bool case_eof_rst(void)
{
    int fd = tcp_connect();
    TRY(fd >= 0);
    bool good = echo_text(fd, "then a plain close");
    TRY(close_ok(fd) && good);
    TRY(server_alive("a plain close"));
    TRY(eof_reset(false));
    TRY(server_alive("a reset with unread echo"));
    TRY(eof_reset(true));
    TRY(server_alive("a reset"));
    TRY(eof_after_server_close());
    TRY(eof_shut_rd());
    return server_alive("shutdown(SHUT_RD)");
}

/* ---- case epoll: LT, ET, ONESHOT semantics, mixed with a pipe ---- */

static int ep_wait_n(int ep, int timeout, uint32_t *events)
{
    struct epoll_event ev[4];
    int n = epoll_wait(ep, ev, 4, timeout);
    if (events)
        *events = n > 0 ? ev[0].events : 0;
    return n;
}

static bool ep_add(int ep, int fd, uint32_t events, uint32_t tag)
{
    struct epoll_event ev = { .events = events, .data.u32 = tag };
    return ok(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), "epoll_ctl(ADD)");
}

static bool epoll_ctl_errors(int ep, int fd)
{
    struct epoll_event ev = { .events = EPOLLIN };
    int other = epoll_create1(0);
    TRY(ok(other, "epoll_create1"));
    bool good = fails_with(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), EEXIST, "epoll_ctl(ADD) twice") &&
                fails_with(epoll_ctl(other, EPOLL_CTL_MOD, fd, &ev), ENOENT, "epoll_ctl(MOD) unregistered") &&
                fails_with(epoll_ctl(other, EPOLL_CTL_DEL, fd, NULL), ENOENT, "epoll_ctl(DEL) unregistered");
    return close_ok(other) && good;
}

/* Data pending, nothing new arriving: LT repeats, ET and ONESHOT do not. */
static bool epoll_modes(int fd, int lt, int et, int os)
{
    uint32_t e = 0;
    struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.u32 = 1 };
    TRY(ret_is(ep_wait_n(lt, -1, &e), 1, "LT epoll_wait with data") && eq(!!(e & EPOLLIN), 1, "LT EPOLLIN"));
    TRY(ret_is(ep_wait_n(lt, 0, NULL), 1, "LT epoll_wait again (level still high)"));
    TRY(ep_add(et, fd, EPOLLIN | EPOLLET, 1));
    TRY(ret_is(ep_wait_n(et, -1, NULL), 1, "ET epoll_wait after ADD with data present"));
    TRY(ret_is(ep_wait_n(et, 0, NULL), 0, "ET epoll_wait again without new data"));
    TRY(ep_add(os, fd, EPOLLIN | EPOLLONESHOT, 1));
    TRY(ret_is(ep_wait_n(os, -1, NULL), 1, "ONESHOT epoll_wait"));
    TRY(ret_is(ep_wait_n(os, 0, NULL), 0, "ONESHOT epoll_wait again (disarmed)"));
    TRY(ok(epoll_ctl(os, EPOLL_CTL_MOD, fd, &ev), "epoll_ctl(MOD) re-arm ONESHOT"));
    TRY(ret_is(ep_wait_n(os, -1, NULL), 1, "ONESHOT epoll_wait after re-arm"));
    return ret_is(ep_wait_n(os, 0, NULL), 0, "ONESHOT epoll_wait after re-arm, again");
}

/* Consume the data: LT goes quiet; ET reports only new data. */
static bool epoll_consume(int fd, int lt, int et)
{
    uint8_t b[16];
    TRY(recv_exact_nb(fd, b, 4));
    TRY(ret_is(ep_wait_n(lt, 0, NULL), 1, "LT epoll_wait with 6 bytes left"));
    TRY(ret_is(ep_wait_n(et, 0, NULL), 0, "ET epoll_wait after a partial read"));
    TRY(recv_exact_nb(fd, b + 4, 6));
    if (memcmp(b, "epoll-data", 10) != 0)
        return fail("epoll echo: got \"%.10s\"", (char *)b);
    TRY(fails_with(read(fd, b, 1), EAGAIN, "read after consuming everything"));
    TRY(ret_is(ep_wait_n(lt, 0, NULL), 0, "LT epoll_wait after consuming everything"));
    TRY(send_all(fd, (const uint8_t *)"new", 3, IO_RW));
    TRY(wait_fionread(fd, 3));
    TRY(ret_is(ep_wait_n(et, -1, NULL), 1, "ET epoll_wait after new data"));
    TRY(ret_is(ep_wait_n(et, 0, NULL), 0, "ET epoll_wait again"));
    return true;
}

/* A pipe (kernel fd) and the socket, both ready, in one LT set: both
 * must be reported (over a few calls at most). */
static bool epoll_mixed(int fd, int lt)
{
    int p[2];
    bool seen_sock = false, seen_pipe = false;
    TRY(ok(pipe(p), "pipe"));
    bool good = ep_add(lt, p[0], EPOLLIN, 2) && ret_is(write(p[1], "z", 1), 1, "write(pipe)");
    for (int k = 0; good && k < 4 && !(seen_sock && seen_pipe); k++) {
        struct epoll_event ev[4];
        int n = epoll_wait(lt, ev, 4, -1);
        good = ok(n, "epoll_wait(socket and pipe)");
        for (int i = 0; good && i < n; i++) {
            seen_sock |= ev[i].data.u32 == 1;
            seen_pipe |= ev[i].data.u32 == 2;
        }
    }
    if (good && !(seen_sock && seen_pipe))
        good = fail("epoll with a ready socket and a ready pipe: socket %s, pipe %s",
                    seen_sock ? "seen" : "never reported", seen_pipe ? "seen" : "never reported");
    good = good && ok(epoll_ctl(lt, EPOLL_CTL_DEL, fd, NULL), "epoll_ctl(DEL socket)");
    struct epoll_event one;
    good = good && ret_is(epoll_wait(lt, &one, 1, 0), 1, "epoll_wait after DEL (pipe only)") &&
           (one.data.u32 == 2 || fail("epoll_wait after DEL: reported tag %u, expected the pipe", one.data.u32));
    good = close_ok(p[0]) && close_ok(p[1]) && good;
    return good;
}

static bool case_epoll(void)
{
    int fd = tcp_connect(), lt = -1, et = -1, os = -1;
    TRY(fd >= 0);
    bool good = fionbio(fd, 1) && ok(lt = epoll_create1(0), "epoll_create1") &&
                ok(et = epoll_create1(EPOLL_CLOEXEC), "epoll_create1") &&
                ok(os = epoll_create1(0), "epoll_create1") && ep_add(lt, fd, EPOLLIN, 1) &&
                epoll_ctl_errors(lt, fd) &&
                ret_is(ep_wait_n(lt, 0, NULL), 0, "LT epoll_wait(timeout 0) on an idle socket") &&
                send_all(fd, (const uint8_t *)"epoll-data", 10, IO_RW) && wait_fionread(fd, 10) &&
                epoll_modes(fd, lt, et, os) && epoll_consume(fd, lt, et) && epoll_mixed(fd, lt);
    int eps[3] = { lt, et, os };
    for (int i = 0; i < 3; i++)
        if (eps[i] >= 0)
            good = close_ok(eps[i]) && good;
    return close_ok(fd) && good;
}

/* ---- case ctrl ---- */

static bool ctrl_cmd(const char *cmd)
{
    char req[64], line[256];
    size_t n = 0;
    int fd = tcp_connect();
    TRY(fd >= 0);
    snprintf(req, sizeof req, "CTRL %s\n", cmd);
    bool good = send_all(fd, (const uint8_t *)req, strlen(req), IO_SENDRECV);
    while (good && (n == 0 || line[n - 1] != '\n') && n < sizeof line - 1) {
        ssize_t r = recv(fd, line + n, sizeof line - 1 - n, 0);
        good = ok(r, "recv(reply)") && (r > 0 || fail("EOF before the reply ended"));
        n += good ? (size_t)r : 0;
    }
    TRY(close_ok(fd) && good);
    line[n] = '\0';
    if (n > 0 && line[n - 1] == '\n')
        line[--n] = '\0';
    printf("%s\n", line);
    if (strcmp(cmd, "PIPE") == 0 && strcmp(line, "OK pipe") != 0)
        return fail("PIPE: expected \"OK pipe\", got \"%s\"", line);
    if (strcmp(cmd, "QUIT") == 0 && strcmp(line, "OK") != 0)
        return fail("QUIT: expected \"OK\", got \"%s\"", line);
    if (strcmp(cmd, "STATS") == 0 && strncmp(line, "px_server: ", 11) != 0)
        return fail("STATS: expected \"px_server: ...\", got \"%s\"", line);
    return true;
}

static bool case_ctrl(void)
{
    if (!g_arg4)
        return fail("needs a command: QUIT, PIPE or STATS");
    return ctrl_cmd(g_arg4);
}

/* ---- driver ---- */

struct tcase {
    const char *name;
    bool (*fn)(void);
    unsigned alarm_s;
};

static const struct tcase cases[] = {
    { "echo", case_echo, CASE_ALARM_S },       { "many", case_many, CASE_ALARM_S },
    { "nonblock", case_nonblock, CASE_ALARM_S }, { "refused", case_refused, CASE_ALARM_S },
    { "udp", case_udp, CASE_ALARM_S },         { "timeout", case_timeout, CASE_ALARM_S },
    { "fork", case_fork, CASE_ALARM_S },       { "eof_rst", case_eof_rst, CASE_ALARM_S },
    { "epoll", case_epoll, CASE_ALARM_S },     { "bulk", case_bulk, BULK_ALARM_S },
    { "ctrl", case_ctrl, CASE_ALARM_S },
};
#define NCASES (sizeof cases / sizeof cases[0])
#define NALL 9 /* the first NALL cases make up "all" */

static bool run_case(const struct tcase *c)
{
    g_case = c->name;
    alarm(c->alarm_s);
    bool r = c->fn();
    alarm(0);
    if (r && strcmp(c->name, "ctrl") != 0)
        printf("PASS %s\n", c->name);
    else if (!r)
        printf("FAIL %s\n", c->name);
    fflush(stdout);
    g_case = "-";
    return r;
}

static bool parse_addr(const char *host, const char *port, struct sockaddr_in *a, bool zero_ok)
{
    char *end;
    long v = strtol(port, &end, 10);
    memset(a, 0, sizeof *a);
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)v);
    return *port && !*end && v >= (zero_ok ? 0 : 1) && v <= 65535 &&
           inet_pton(AF_INET, host, &a->sin_addr) == 1;
}

static void usage(void)
{
    fprintf(stderr, "usage: px_client HOST PORT echo|many|bulk|nonblock|timeout|fork|eof_rst|epoll\n"
                    "       px_client HOST PORT udp UDPPORT\n"
                    "       px_client HOST PORT refused CLOSEDPORT\n"
                    "       px_client HOST PORT ctrl QUIT|PIPE|STATS\n"
                    "       px_client HOST PORT all UDPPORT|0 CLOSEDPORT\n");
    exit(2);
}

static void parse_args(int argc, char **argv, const char *cs)
{
    if (!parse_addr(argv[1], argv[2], &g_srv, false))
        usage();
    g_arg4 = argc > 4 ? argv[4] : NULL;
    if (strcmp(cs, "udp") == 0 || strcmp(cs, "all") == 0) {
        if (argc < 5 || !parse_addr(argv[1], argv[4], &g_udp, true))
            usage();
        g_have_udp = g_udp.sin_port != 0;
    }
    const char *closed = strcmp(cs, "refused") == 0 ? g_arg4 : strcmp(cs, "all") == 0 && argc > 5 ? argv[5] : NULL;
    if (closed) {
        if (!parse_addr(argv[1], closed, &g_closed, false))
            usage();
        g_have_closed = true;
    }
    if (strcmp(cs, "all") == 0 && !g_have_closed)
        usage();
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 6)
        usage();
    const char *cs = argv[3];
    parse_args(argc, argv, cs);
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_alarm);

    bool good = true;
    if (strcmp(cs, "all") == 0) {
        for (size_t i = 0; i < NALL; i++) {
            if (cases[i].fn == case_udp && !g_have_udp) {
                printf("SKIP udp (UDPPORT 0)\n");
                continue;
            }
            good = run_case(&cases[i]) && good;
        }
        printf("px_client: all: %s\n", good ? "PASS" : "FAIL");
        return good ? 0 : 1;
    }
    for (size_t i = 0; i < NCASES; i++)
        if (strcmp(cs, cases[i].name) == 0)
            return run_case(&cases[i]) ? 0 : 1;
    usage();
}
