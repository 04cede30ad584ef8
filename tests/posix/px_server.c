/*
 * px_server.c - TCP/UDP echo server for the POSIX socket interposition tests.
 *
 * Usage: px_server HOST PORT MODE [UDPPORT]
 *   HOST    IPv4 address to bind (dotted quad)
 *   PORT    TCP port to listen on
 *   MODE    block | epoll-lt | epoll-et | poll | select
 *   UDPPORT UDP echo port (event-loop modes only; ignored in block mode)
 *
 * A plain Linux socket program: it links only libc, and every socket call
 * happens on the main thread, so it can run natively or under an
 * LD_PRELOAD socket interposer.
 *
 * Modes
 *   block     connections are served one after another with a blocking
 *             accept and blocking I/O. No UDP. The timerfd is only read
 *             (non-blocking) when the statistics are printed.
 *   epoll-lt  one level-triggered epoll loop; each readiness report gets one
 *             read (LT must report again). The listening socket and every
 *             third connection use EPOLLONESHOT and are re-armed with
 *             EPOLL_CTL_MOD after each event.
 *   epoll-et  one edge-triggered epoll loop (epoll_pwait); every handler
 *             works until EAGAIN.
 *   poll      one poll() loop; the pollfd array always ends with an entry
 *             whose fd is -1, which must be ignored.
 *   select    one select() loop (every fd must be below FD_SETSIZE).
 * In the event-loop modes all sockets are non-blocking (set in turn with
 * accept4(SOCK_NONBLOCK), fcntl(O_NONBLOCK) and ioctl(FIONBIO)), and the
 * watched set also holds two kernel fds: the read end of a pipe and a
 * 10 ms periodic timerfd. A connection with pending output waits for
 * writability before it reads again (a per-connection out-buffer).
 * Connections use read/write, recv/send, readv/writev and recvmsg/sendmsg
 * in turn (connection number modulo 4).
 *
 * TCP protocol
 *   Every connection echoes what it receives, except a connection whose
 *   first five bytes are "CTRL ": a control connection, carrying one line:
 *     "CTRL QUIT\n"  reply "OK\n"; the server exits once it is sent
 *     "CTRL PIPE\n"  the server writes one byte into its pipe, and replies
 *                    "OK pipe\n" only after its loop has seen the read end
 *                    of the pipe readable and read the byte back
 *     "CTRL STATS\n" reply: the summary line (below) and "\n"
 *     other          reply "ERR unknown command\n"
 *   The server closes a control connection once its reply is sent. Echo
 *   clients must never start their data with "CTRL ".
 *
 * UDP protocol
 *   Every datagram is sent back to its source; recvfrom/sendto and
 *   recvmsg/sendmsg alternate.
 *
 * Output
 *   "READY" on stdout once listening, then at exit the summary line
 *     px_server: connections=N bytes=M udp=K timer_ticks=T pipe_events=P
 *   connections: TCP connections accepted (control ones too); bytes: TCP
 *   bytes echoed; udp: datagrams echoed; timer_ticks: timerfd expirations
 *   read; pipe_events: bytes read from the pipe after it was seen readable.
 *   Unexpected errors are printed on stderr as "px_server: ERROR: ...".
 *   Exit status 0, or 1 if any unexpected error happened.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "px_io.h"

#define IO_CHUNK 65536
#define UDP_MAX 65536
#define CTRL_MAGIC "CTRL "
#define CTRL_MAGIC_LEN 5
#define CTRL_LINE_MAX 64
#define LISTEN_BACKLOG 1024
#define MAX_EVENTS 64
#define TIMER_PERIOD_NS 10000000L
#define HANG_GUARD_S 1800 /* the server is stopped by QUIT; this only ends a lost one */

enum mode { M_BLOCK, M_EPOLL_LT, M_EPOLL_ET, M_POLL, M_SELECT };
enum ent_type { E_LISTEN, E_UDP, E_PIPE, E_TIMER, E_CONN };
enum conn_kind { K_UNKNOWN, K_ECHO, K_CTRL };
enum rstep { R_DATA, R_AGAIN, R_CLOSED };
enum wstep { W_DONE, W_AGAIN, W_CLOSED };

struct outbuf {
    uint8_t *data;
    size_t len;
    size_t off;
    size_t cap;
};

/* Anything in the watched set: the listener, the UDP socket, the pipe, the
 * timer or a TCP connection. Dead entries are freed at the end of a turn. */
struct ent {
    int fd;
    enum ent_type type;
    enum conn_kind kind;
    enum io_style style;
    unsigned long id;
    size_t head_len;
    char line[CTRL_LINE_MAX];
    size_t line_len;
    bool ctrl_done;
    struct outbuf out;
    bool close_when_flushed;
    bool wait_pipe;
    bool is_quit;
    bool oneshot;
    bool registered;
    uint32_t epev;
    bool dead;
};

struct server {
    enum mode mode;
    struct sockaddr_in addr;
    struct ent **ents;
    size_t nents;
    size_t cap;
    int epfd;
    int pipe_w;
    struct ent *timer;
    unsigned long long connections;
    unsigned long long bytes;
    unsigned long long udp;
    unsigned long long udp_seen;
    unsigned long long ticks;
    unsigned long long pipe_events;
    bool quit;
    bool quit_done;
    int errors;
};

static struct server srv = { .epfd = -1, .pipe_w = -1 };

static void report(const char *what, int err)
{
    fprintf(stderr, "px_server: ERROR: %s: %s (%s)\n", what, strerror(err),
            strerrorname_np(err) ? strerrorname_np(err) : "?");
    srv.errors++;
}

static void report_msg(const char *what)
{
    fprintf(stderr, "px_server: ERROR: %s\n", what);
    srv.errors++;
}

static void fatal(const char *what)
{
    int err = errno;
    fprintf(stderr, "px_server: FATAL: %s: %s\n", what, strerror(err));
    exit(1);
}

static bool is_again(int err)
{
    return err == EAGAIN || err == EWOULDBLOCK;
}

/* ---- output buffer ---- */

static size_t out_pending(const struct outbuf *b)
{
    return b->len - b->off;
}

static void out_append(struct outbuf *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    if (b->off > 0) {
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *d = realloc(b->data, cap);
        if (!d)
            fatal("realloc");
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void out_append_str(struct outbuf *b, const char *s)
{
    out_append(b, s, strlen(s));
}

/* ---- I/O in four styles ---- */

static ssize_t io_write(int fd, const uint8_t *p, size_t n, enum io_style st)
{
    return px_io_write(fd, p, n, st);
}

static ssize_t io_read(int fd, uint8_t *p, size_t n, enum io_style st)
{
    int mf;
    ssize_t r = px_io_read(fd, p, n, st, &mf);
    if (r >= 0 && (mf & MSG_TRUNC))
        report_msg("recvmsg on TCP set MSG_TRUNC");
    return r;
}

/* ---- entries ---- */

static struct ent *ent_new(int fd, enum ent_type type)
{
    struct ent *e = calloc(1, sizeof *e);
    if (!e)
        fatal("calloc");
    e->fd = fd;
    e->type = type;
    if (srv.nents == srv.cap) {
        size_t cap = srv.cap ? srv.cap * 2 : 64;
        struct ent **v = realloc(srv.ents, cap * sizeof *v);
        if (!v)
            fatal("realloc");
        srv.ents = v;
        srv.cap = cap;
    }
    srv.ents[srv.nents++] = e;
    return e;
}

static void ent_kill(struct ent *e)
{
    if (e->dead)
        return;
    e->dead = true;
    if (e->is_quit)
        srv.quit_done = true;
    if (e->registered && epoll_ctl(srv.epfd, EPOLL_CTL_DEL, e->fd, NULL) < 0)
        report("epoll_ctl(EPOLL_CTL_DEL)", errno);
    if (close(e->fd) < 0)
        report("close", errno);
}

static void ents_reap(void)
{
    size_t j = 0;
    for (size_t i = 0; i < srv.nents; i++) {
        struct ent *e = srv.ents[i];
        if (e->dead) {
            free(e->out.data);
            free(e);
        } else {
            srv.ents[j++] = e;
        }
    }
    srv.nents = j;
}

/* epoll registration; adds EPOLLONESHOT for one-shot entries, which are
 * re-armed every time (that is the point of calling this after an event). */
static void ep_update(struct ent *e, uint32_t want)
{
    if (e->oneshot)
        want |= EPOLLONESHOT;
    if (e->registered && want == e->epev && !e->oneshot)
        return;
    struct epoll_event ev = { .events = want, .data.ptr = e };
    int op = e->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(srv.epfd, op, e->fd, &ev) < 0) {
        report(op == EPOLL_CTL_ADD ? "epoll_ctl(ADD)" : "epoll_ctl(MOD)", errno);
        return;
    }
    e->registered = true;
    e->epev = want;
}

/* ---- statistics, timer and pipe ---- */

static void timer_ready(struct ent *t)
{
    for (;;) {
        uint64_t v;
        ssize_t n = read(t->fd, &v, sizeof v);
        if (n == (ssize_t)sizeof v) {
            srv.ticks += v;
            if (srv.mode == M_EPOLL_ET)
                continue;
            return;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && is_again(errno))
            return;
        if (n < 0)
            report("read(timerfd)", errno);
        else
            report_msg("read(timerfd): short read");
        return;
    }
}

static void stats_line(char *buf, size_t len)
{
    if (srv.mode == M_BLOCK)
        timer_ready(srv.timer);
    snprintf(buf, len,
             "px_server: connections=%llu bytes=%llu udp=%llu timer_ticks=%llu pipe_events=%llu",
             srv.connections, srv.bytes, srv.udp, srv.ticks, srv.pipe_events);
}

static enum wstep conn_flush(struct ent *e);
static void conn_after(struct ent *e);

static void answer_pipe_waiters(size_t n)
{
    for (size_t i = 0; i < srv.nents && n > 0; i++) {
        struct ent *e = srv.ents[i];
        if (e->dead || e->type != E_CONN || !e->wait_pipe)
            continue;
        e->wait_pipe = false;
        out_append_str(&e->out, "OK pipe\n");
        e->close_when_flushed = true;
        n--;
        if (conn_flush(e) != W_CLOSED)
            conn_after(e);
    }
}

static void pipe_ready(struct ent *p)
{
    for (;;) {
        uint8_t b[64];
        ssize_t n = read(p->fd, b, sizeof b);
        if (n > 0) {
            srv.pipe_events += (unsigned long long)n;
            answer_pipe_waiters((size_t)n);
            if (srv.mode == M_EPOLL_ET)
                continue;
            return;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && is_again(errno))
            return;
        if (n < 0)
            report("read(pipe)", errno);
        else
            report_msg("read(pipe): unexpected EOF");
        return;
    }
}

/* Block mode has no loop: wait for the pipe with poll() right away. */
static void block_wait_pipe(struct ent *p)
{
    struct pollfd pfd = { .fd = p->fd, .events = POLLIN };
    int r;
    do {
        r = poll(&pfd, 1, -1);
    } while (r < 0 && errno == EINTR);
    if (r != 1 || !(pfd.revents & POLLIN)) {
        report("poll(pipe)", r < 0 ? errno : EIO);
        return;
    }
    pipe_ready(p);
}

static struct ent *find_type(enum ent_type t)
{
    for (size_t i = 0; i < srv.nents; i++)
        if (srv.ents[i]->type == t && !srv.ents[i]->dead)
            return srv.ents[i];
    return NULL;
}

/* ---- control connections ---- */

static void ctrl_reply(struct ent *e, const char *s)
{
    out_append_str(&e->out, s);
    e->close_when_flushed = true;
}

static void ctrl_exec(struct ent *e, const char *cmd)
{
    char line[256];

    if (strcmp(cmd, "QUIT") == 0) {
        ctrl_reply(e, "OK\n");
        srv.quit = true;
        e->is_quit = true;
    } else if (strcmp(cmd, "STATS") == 0) {
        stats_line(line, sizeof line - 1);
        strcat(line, "\n");
        ctrl_reply(e, line);
    } else if (strcmp(cmd, "PIPE") == 0) {
        if (write(srv.pipe_w, "p", 1) != 1) {
            report("write(pipe)", errno);
            ctrl_reply(e, "ERR pipe\n");
            return;
        }
        e->wait_pipe = true;
        if (srv.mode == M_BLOCK)
            block_wait_pipe(find_type(E_PIPE));
    } else {
        ctrl_reply(e, "ERR unknown command\n");
    }
}

static void ctrl_input(struct ent *e, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n && !e->ctrl_done; i++) {
        if (p[i] == '\n') {
            e->line[e->line_len] = '\0';
            e->ctrl_done = true;
            ctrl_exec(e, e->line);
        } else if (e->line_len + 1 >= sizeof e->line) {
            e->ctrl_done = true;
            ctrl_reply(e, "ERR line too long\n");
        } else {
            e->line[e->line_len++] = (char)p[i];
        }
    }
}

/* Decide echo or control on the first five bytes, then dispatch. */
static void conn_input(struct ent *e, const uint8_t *p, size_t n)
{
    size_t i = 0;

    if (e->kind == K_UNKNOWN) {
        while (i < n && e->head_len < CTRL_MAGIC_LEN && p[i] == CTRL_MAGIC[e->head_len]) {
            e->head_len++;
            i++;
        }
        if (e->head_len == CTRL_MAGIC_LEN) {
            e->kind = K_CTRL;
        } else if (i < n) {
            e->kind = K_ECHO;
            out_append(&e->out, CTRL_MAGIC, e->head_len);
            srv.bytes += e->head_len;
        } else {
            return; /* still a prefix of "CTRL " */
        }
    }
    if (e->kind == K_ECHO) {
        out_append(&e->out, p + i, n - i);
        srv.bytes += n - i;
    } else {
        ctrl_input(e, p + i, n - i);
    }
}

/* ---- TCP connections ---- */

static enum rstep conn_read_once(struct ent *e)
{
    uint8_t buf[IO_CHUNK];
    for (;;) {
        ssize_t n = io_read(e->fd, buf, sizeof buf, e->style);
        if (n > 0) {
            conn_input(e, buf, (size_t)n);
            return R_DATA;
        }
        if (n == 0) {
            ent_kill(e);
            return R_CLOSED;
        }
        if (errno == EINTR)
            continue;
        if (is_again(errno))
            return R_AGAIN;
        if (errno != ECONNRESET)
            report("read from client", errno);
        ent_kill(e);
        return R_CLOSED;
    }
}

static enum wstep conn_flush(struct ent *e)
{
    if (e->dead)
        return W_CLOSED;
    while (out_pending(&e->out) > 0) {
        ssize_t n = io_write(e->fd, e->out.data + e->out.off, out_pending(&e->out), e->style);
        if (n > 0) {
            e->out.off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && is_again(errno))
            return W_AGAIN;
        if (n == 0)
            report_msg("write to client returned 0");
        else if (errno != EPIPE && errno != ECONNRESET)
            report("write to client", errno);
        ent_kill(e);
        return W_CLOSED;
    }
    if (e->close_when_flushed) {
        ent_kill(e);
        return W_CLOSED;
    }
    return W_DONE;
}

/* After a connection's state changed: update its epoll interest. */
static void conn_after(struct ent *e)
{
    if (e->dead || srv.mode != M_EPOLL_LT)
        return;
    ep_update(e, out_pending(&e->out) ? EPOLLOUT : EPOLLIN);
}

/* Edge-triggered: stop only at EAGAIN (of the write, or of the read). */
static void conn_progress(struct ent *e)
{
    for (;;) {
        if (conn_flush(e) != W_DONE)
            return;
        if (conn_read_once(e) != R_DATA)
            return;
    }
}

static void conn_event(struct ent *e, bool rd, bool wr, bool err)
{
    if (srv.mode == M_EPOLL_ET) {
        conn_progress(e);
        return;
    }
    if (out_pending(&e->out) > 0 && (wr || err)) {
        if (conn_flush(e) == W_CLOSED)
            return;
    }
    if (out_pending(&e->out) == 0 && (rd || err)) {
        if (conn_read_once(e) == R_CLOSED)
            return;
        if (conn_flush(e) == W_CLOSED)
            return;
    }
    conn_after(e);
}

static bool same_addr(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
    return a->sin_family == b->sin_family && a->sin_port == b->sin_port &&
           a->sin_addr.s_addr == b->sin_addr.s_addr;
}

/* Check the names of an accepted socket. */
static void check_accepted(int fd, const struct sockaddr_in *peer, socklen_t plen)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;

    if (plen != sizeof *peer || peer->sin_family != AF_INET || peer->sin_port == 0)
        report_msg("accept: bad peer address");
    memset(&a, 0, sizeof a);
    if (getpeername(fd, (struct sockaddr *)&a, &len) < 0) {
        /* ENOTCONN: the client reset it before the accept (eof_rst does) */
        if (errno != ENOTCONN)
            report("getpeername(accepted)", errno);
    }
    else if (len != sizeof a || !same_addr(&a, peer))
        report_msg("getpeername(accepted) differs from accept's address");
    len = sizeof a;
    memset(&a, 0, sizeof a);
    if (getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        report("getsockname(accepted)", errno);
    else if (len != sizeof a || a.sin_family != AF_INET || a.sin_port != srv.addr.sin_port ||
             (srv.addr.sin_addr.s_addr != htonl(INADDR_ANY) &&
              a.sin_addr.s_addr != srv.addr.sin_addr.s_addr))
        report_msg("getsockname(accepted) is not the listening address");
}

static void set_nodelay(int fd)
{
    int one = 1, v = 0;
    socklen_t len = sizeof v;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
        report("setsockopt(TCP_NODELAY)", errno);
    else if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len) < 0)
        report("getsockopt(TCP_NODELAY)", errno);
    else if (v == 0)
        report_msg("getsockopt(TCP_NODELAY) reads 0 after setting it");
}

static bool set_nonblock_fcntl(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        report("fcntl(O_NONBLOCK)", errno);
        return false;
    }
    return true;
}

static bool set_nonblock_ioctl(int fd)
{
    int one = 1;
    if (ioctl(fd, FIONBIO, &one) < 0) {
        report("ioctl(FIONBIO)", errno);
        return false;
    }
    return true;
}

static void check_nonblock(int fd, bool want)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        report("fcntl(F_GETFL)", errno);
    else if (!!(fl & O_NONBLOCK) != want)
        report_msg(want ? "O_NONBLOCK not set" : "O_NONBLOCK unexpectedly set");
}

static struct ent *conn_setup(int fd)
{
    struct ent *e = ent_new(fd, E_CONN);
    e->id = srv.connections++;
    e->style = (enum io_style)(e->id % IO_NSTYLES);
    if (e->id % 2)
        set_nodelay(fd);
    if (srv.mode == M_EPOLL_LT) {
        e->oneshot = e->id % 3 == 2;
        ep_update(e, EPOLLIN);
    } else if (srv.mode == M_EPOLL_ET) {
        ep_update(e, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
        /* Data may have arrived before the ADD: a correct ET program
         * tries once instead of relying on an initial report. */
        if (!e->dead)
            conn_progress(e);
    }
    return e;
}

/* Accept in an event-loop mode: all of them in ET, else one per report. */
static void accept_ready(struct ent *l)
{
    for (;;) {
        struct sockaddr_in peer;
        socklen_t plen = sizeof peer;
        unsigned how = (unsigned)(srv.connections % 3);
        int fd;

        memset(&peer, 0, sizeof peer);
        if (how == 0)
            fd = accept4(l->fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK);
        else
            fd = accept(l->fd, (struct sockaddr *)&peer, &plen);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (!is_again(errno))
                report("accept", errno);
            break;
        }
        check_accepted(fd, &peer, plen);
        if ((how == 1 && !set_nonblock_fcntl(fd)) || (how == 2 && !set_nonblock_ioctl(fd))) {
            close(fd);
            break;
        }
        check_nonblock(fd, true);
        conn_setup(fd);
        if (srv.mode != M_EPOLL_ET)
            break;
    }
    if (srv.mode == M_EPOLL_LT)
        ep_update(l, EPOLLIN); /* re-arm the one-shot listener */
}

/* ---- UDP ---- */

static void udp_echo_one(int fd, uint8_t *buf, bool use_msg, ssize_t *got)
{
    struct sockaddr_in from;
    socklen_t flen = sizeof from;
    struct iovec iov = { buf, UDP_MAX };
    struct msghdr m = { .msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1 };
    ssize_t n, s;

    memset(&from, 0, sizeof from);
    if (use_msg) {
        n = recvmsg(fd, &m, 0);
        flen = m.msg_namelen;
        if (n >= 0 && (m.msg_flags & MSG_TRUNC))
            report_msg("UDP recvmsg: MSG_TRUNC with a 64 KiB buffer");
    } else {
        n = recvfrom(fd, buf, UDP_MAX, 0, (struct sockaddr *)&from, &flen);
    }
    *got = n;
    if (n < 0)
        return;
    if (flen != sizeof from || from.sin_family != AF_INET || from.sin_port == 0) {
        report_msg("UDP: bad source address");
        return;
    }
    iov.iov_len = (size_t)n;
    if (use_msg)
        s = sendmsg(fd, &m, 0);
    else
        s = sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, flen);
    if (s == n)
        srv.udp++;
    else if (s < 0 && (is_again(errno) || errno == ENOBUFS || errno == ECONNREFUSED))
        fprintf(stderr, "px_server: note: UDP echo dropped: %s\n", strerror(errno));
    else if (s < 0)
        report("UDP send", errno);
    else
        report_msg("UDP send: short datagram");
}

static void udp_ready(struct ent *u)
{
    static uint8_t buf[UDP_MAX];
    for (;;) {
        ssize_t n;
        udp_echo_one(u->fd, buf, srv.udp_seen % 2 == 1, &n);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (!is_again(errno) && errno != ECONNREFUSED)
                report("UDP receive", errno);
            return;
        }
        srv.udp_seen++;
        if (srv.mode != M_EPOLL_ET)
            return;
    }
}

/* ---- event loops ---- */

static bool loop_done(void)
{
    return srv.quit && srv.quit_done;
}

static void dispatch(struct ent *e, bool rd, bool wr, bool err)
{
    switch (e->type) {
    case E_LISTEN:
        accept_ready(e);
        break;
    case E_UDP:
        udp_ready(e);
        break;
    case E_PIPE:
        pipe_ready(e);
        break;
    case E_TIMER:
        timer_ready(e);
        break;
    case E_CONN:
        conn_event(e, rd, wr, err);
        break;
    }
}

static void run_epoll(void)
{
    struct epoll_event evs[MAX_EVENTS];
    sigset_t none;
    sigemptyset(&none);

    while (!loop_done()) {
        int n;
        if (srv.mode == M_EPOLL_ET)
            n = epoll_pwait(srv.epfd, evs, MAX_EVENTS, -1, &none);
        else
            n = epoll_wait(srv.epfd, evs, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fatal("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            struct ent *e = evs[i].data.ptr;
            uint32_t ev = evs[i].events;
            if (!e->dead)
                dispatch(e, ev & (EPOLLIN | EPOLLRDHUP), ev & EPOLLOUT, ev & (EPOLLERR | EPOLLHUP));
        }
        ents_reap();
    }
}

static short poll_interest(const struct ent *e)
{
    if (e->type == E_CONN && out_pending(&e->out) > 0)
        return POLLOUT;
    return POLLIN;
}

static void run_poll(void)
{
    struct pollfd *pfds = NULL;
    size_t cap = 0;

    while (!loop_done()) {
        size_t n = srv.nents;
        if (n + 1 > cap) {
            cap = (n + 1) * 2;
            pfds = realloc(pfds, cap * sizeof *pfds);
            if (!pfds)
                fatal("realloc");
        }
        for (size_t i = 0; i < n; i++)
            pfds[i] = (struct pollfd){ .fd = srv.ents[i]->fd, .events = poll_interest(srv.ents[i]) };
        pfds[n] = (struct pollfd){ .fd = -1, .events = POLLIN };
        int r = poll(pfds, n + 1, -1);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            fatal("poll");
        }
        if (pfds[n].revents != 0)
            report_msg("poll: revents set for an entry with fd -1");
        for (size_t i = 0; i < n; i++) {
            struct ent *e = srv.ents[i];
            short re = pfds[i].revents;
            if (re == 0 || e->dead)
                continue;
            if (re & POLLNVAL) {
                report_msg("poll: POLLNVAL on a live fd");
                ent_kill(e);
                continue;
            }
            dispatch(e, re & POLLIN, re & POLLOUT, re & (POLLERR | POLLHUP));
        }
        ents_reap();
    }
    free(pfds);
}

static void run_select(void)
{
    while (!loop_done()) {
        fd_set rs, ws;
        int maxfd = -1;
        size_t n = srv.nents;

        FD_ZERO(&rs);
        FD_ZERO(&ws);
        for (size_t i = 0; i < n; i++) {
            struct ent *e = srv.ents[i];
            if (e->fd >= FD_SETSIZE) {
                report_msg("select: fd >= FD_SETSIZE, connection dropped");
                ent_kill(e);
                continue;
            }
            if (poll_interest(e) == POLLOUT)
                FD_SET(e->fd, &ws);
            else
                FD_SET(e->fd, &rs);
            if (e->fd > maxfd)
                maxfd = e->fd;
        }
        int r = select(maxfd + 1, &rs, &ws, NULL, NULL);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            fatal("select");
        }
        for (size_t i = 0; i < n; i++) {
            struct ent *e = srv.ents[i];
            if (e->dead)
                continue;
            bool rd = FD_ISSET(e->fd, &rs), wr = FD_ISSET(e->fd, &ws);
            if (rd || wr)
                dispatch(e, rd, wr, false);
        }
        ents_reap();
    }
}

static void run_block(struct ent *l)
{
    while (!loop_done()) {
        struct sockaddr_in peer;
        socklen_t plen = sizeof peer;
        int fd;

        memset(&peer, 0, sizeof peer);
        if (srv.connections % 2)
            fd = accept4(l->fd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);
        else
            fd = accept(l->fd, (struct sockaddr *)&peer, &plen);
        if (fd < 0) {
            if (errno != EINTR && errno != ECONNABORTED)
                report("accept", errno);
            continue;
        }
        check_accepted(fd, &peer, plen);
        check_nonblock(fd, false);
        struct ent *e = conn_setup(fd);
        for (;;) {
            enum rstep r = conn_read_once(e);
            if (r == R_CLOSED)
                break;
            if (r == R_AGAIN) {
                report_msg("blocking read returned EAGAIN");
                ent_kill(e);
                break;
            }
            if (conn_flush(e) != W_DONE)
                break;
        }
        if (!e->dead) {
            report_msg("block mode: connection left open");
            ent_kill(e);
        }
        ents_reap();
    }
}

/* ---- setup ---- */

static int parse_port(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 0 || v > 65535)
        return -1;
    return (int)v;
}

static int open_listener(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1, v = 0;
    socklen_t len = sizeof v;
    struct sockaddr_in a;

    if (fd < 0)
        fatal("socket(SOCK_STREAM)");
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
        fatal("setsockopt(SO_REUSEADDR)");
    if (getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &v, &len) < 0)
        fatal("getsockopt(SO_REUSEADDR)");
    if (v == 0 || len != sizeof v)
        report_msg("getsockopt(SO_REUSEADDR) does not read back 1");
    if (bind(fd, (struct sockaddr *)&srv.addr, sizeof srv.addr) < 0)
        fatal("bind(TCP)");
    if (listen(fd, LISTEN_BACKLOG) < 0)
        fatal("listen");
    len = sizeof a;
    if (getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        fatal("getsockname(listener)");
    if (!same_addr(&a, &srv.addr))
        report_msg("getsockname(listener) is not the bound address");
    return fd;
}

static int open_udp(int port)
{
    struct sockaddr_in a = srv.addr;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        fatal("socket(SOCK_DGRAM)");
    a.sin_port = htons((uint16_t)port);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0)
        fatal("bind(UDP)");
    return fd;
}

static int open_timer(void)
{
    struct itimerspec its = {
        .it_interval = { 0, TIMER_PERIOD_NS },
        .it_value = { 0, TIMER_PERIOD_NS },
    };
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd < 0)
        fatal("timerfd_create");
    if (timerfd_settime(fd, 0, &its, NULL) < 0)
        fatal("timerfd_settime");
    return fd;
}

static bool parse_mode(const char *s)
{
    static const char *names[] = { "block", "epoll-lt", "epoll-et", "poll", "select" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(s, names[i]) == 0) {
            srv.mode = (enum mode)i;
            return true;
        }
    }
    return false;
}

static void register_specials(void)
{
    if (srv.epfd < 0)
        return;
    uint32_t base = srv.mode == M_EPOLL_ET ? EPOLLIN | EPOLLET : EPOLLIN;
    for (size_t i = 0; i < srv.nents; i++) {
        struct ent *e = srv.ents[i];
        e->oneshot = srv.mode == M_EPOLL_LT && e->type == E_LISTEN;
        ep_update(e, base);
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: px_server HOST PORT block|epoll-lt|epoll-et|poll|select [UDPPORT]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int port, udp_port = -1, pfd[2];

    if (argc < 4 || argc > 5)
        usage();
    memset(&srv.addr, 0, sizeof srv.addr);
    srv.addr.sin_family = AF_INET;
    port = parse_port(argv[2]);
    if (inet_pton(AF_INET, argv[1], &srv.addr.sin_addr) != 1 || port <= 0 || !parse_mode(argv[3]))
        usage();
    if (argc == 5 && (udp_port = parse_port(argv[4])) <= 0)
        usage();
    srv.addr.sin_port = htons((uint16_t)port);
    signal(SIGPIPE, SIG_IGN);
    alarm(HANG_GUARD_S);

    struct ent *l = ent_new(open_listener(), E_LISTEN);
    if (srv.mode == M_EPOLL_LT || srv.mode == M_EPOLL_ET) {
        if (!set_nonblock_fcntl(l->fd))
            exit(1);
    } else if (srv.mode != M_BLOCK && !set_nonblock_ioctl(l->fd)) {
        exit(1);
    }
    if (pipe2(pfd, O_NONBLOCK | O_CLOEXEC) < 0)
        fatal("pipe2");
    ent_new(pfd[0], E_PIPE);
    srv.pipe_w = pfd[1];
    srv.timer = ent_new(open_timer(), E_TIMER);
    if (udp_port > 0 && srv.mode == M_BLOCK)
        fprintf(stderr, "px_server: note: no UDP in block mode, UDPPORT ignored\n");
    else if (udp_port > 0)
        ent_new(open_udp(udp_port), E_UDP);
    if (srv.mode == M_EPOLL_LT || srv.mode == M_EPOLL_ET) {
        srv.epfd = epoll_create1(EPOLL_CLOEXEC);
        if (srv.epfd < 0)
            fatal("epoll_create1");
        register_specials();
    }

    printf("READY\n");
    fflush(stdout);

    switch (srv.mode) {
    case M_BLOCK:
        run_block(l);
        break;
    case M_EPOLL_LT:
    case M_EPOLL_ET:
        run_epoll();
        break;
    case M_POLL:
        run_poll();
        break;
    case M_SELECT:
        run_select();
        break;
    }

    char line[256];
    stats_line(line, sizeof line);
    printf("%s\n", line);
    fflush(stdout);
    return srv.errors ? 1 : 0;
}
