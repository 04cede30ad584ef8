/*
 * linux_echo: the Linux socket baseline for demi-echo. It takes the same
 * command line, prints the same "ready IP:PORT" line and the same one-line
 * JSON summary as demi-echo, so bench/run.sh can put libdemi's figures next
 * to the kernel's, measured the same way (apps/common/hist.h).
 *
 * Two modes, chosen with --mode:
 *   blocking  plain blocking sockets: the kernel puts us to sleep and wakes
 *             us for every message, as most applications run.
 *   busypoll  non-blocking sockets spun on (no epoll, no sleeping): the
 *             fairest comparison with a polling kernel-bypass library.
 *
 * It must never touch an address other than the one --addr names, and it
 * never counts a round trip whose echo was not checked byte for byte.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "hist.h"
#include "rate.h"

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* Largest UDP payload over IPv4 (65535 - 20 IP - 8 UDP). */
#define UDP_MAX_PAYLOAD 65507
#define TCP_MAX_SIZE    (64u << 20)
#define MAX_CLIENTS     1024
/* The server's receive buffer: one read's worth, echoed before the next. */
#define SERVER_BUF (64u * 1024)
/* A client that waits this long for an echo gives up with an error rather
 * than hanging the benchmark script. */
#define ECHO_TIMEOUT_S 10

enum mode { MODE_BLOCKING, MODE_BUSYPOLL };

struct opts {
    bool server;
    bool udp;
    enum mode mode;
    struct sockaddr_in addr;
    size_t size;
    uint64_t iters;
    double seconds; /* 0: run --iters round trips instead */
    unsigned clients;
    uint64_t warmup;
    const char *hist_path;
    bool stream; /* client: send one way for --seconds (to a --sink server) */
    bool sink;   /* server: read TCP connections, echo nothing */
};

/* --sink, for the serving threads. */
static bool g_sink;

static const char *prog = "linux_echo";

static void die(int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));

static void die(int code, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(code);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s server|client [--udp] --addr IP:PORT [--size BYTES]\n"
            "       [--iters N | --seconds S] [--clients N] [--hist FILE] [--warmup N]\n"
            "       [--mode blocking|busypoll] [--stream | --sink]\n"
            "\n"
            "  server   bind IP:PORT (port 0 picks a free one), print \"ready IP:PORT\",\n"
            "           echo until SIGINT or SIGTERM, then exit 0\n"
            "  client   run round trips against IP:PORT, check every echoed byte, print\n"
            "           one JSON line of latency figures\n"
            "  --udp          UDP instead of TCP\n"
            "  --size BYTES   message size (default 64)\n"
            "  --iters N      measured round trips per client (default 100000)\n"
            "  --seconds S    measure for S seconds instead of N round trips\n"
            "  --clients N    concurrent client connections (default 1)\n"
            "  --warmup N     unmeasured round trips per client first (default 1000)\n"
            "  --hist FILE    write the latency CDF: \"<latency_us> <fraction>\" per line\n"
            "  --mode M       blocking (default) or busypoll\n"
            "  --stream       client: send --size messages one way over one TCP connection\n"
            "                 for --seconds (after --warmup of them) and print the bytes per\n"
            "                 second, overall and in one-second samples (server: --sink)\n"
            "  --sink         server: read TCP connections and echo nothing\n",
            prog);
}

static void bad_arg(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

static void bad_arg(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (try --help)\n");
    exit(2);
}

static uint64_t parse_u64(const char *opt, const char *s, uint64_t min, uint64_t max)
{
    char *end;
    errno = 0;
    if (*s == '-' || *s == '\0')
        bad_arg("%s: '%s' is not a non-negative integer", opt, s);
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end != '\0')
        bad_arg("%s: '%s' is not a non-negative integer", opt, s);
    if (v < min || v > max)
        bad_arg("%s: %llu is out of range [%" PRIu64 ", %" PRIu64 "]", opt, v, min, max);
    return v;
}

static void parse_addr(const char *s, struct sockaddr_in *sa)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s)
        bad_arg("--addr: '%s' is not IP:PORT", s);
    char ip[INET_ADDRSTRLEN];
    size_t iplen = (size_t)(colon - s);
    if (iplen >= sizeof(ip))
        bad_arg("--addr: '%s' is not an IPv4 IP:PORT", s);
    memcpy(ip, s, iplen);
    ip[iplen] = '\0';
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    if (inet_pton(AF_INET, ip, &sa->sin_addr) != 1)
        bad_arg("--addr: '%s' is not an IPv4 address", ip);
    sa->sin_port = htons((uint16_t)parse_u64("--addr port", colon + 1, 0, 65535));
}

static void parse_args(int argc, char **argv, struct opts *o)
{
    bool have_addr = false, have_iters = false;

    memset(o, 0, sizeof(*o));
    o->mode = MODE_BLOCKING;
    o->size = 64;
    o->iters = 100000;
    o->clients = 1;
    o->warmup = 1000;

    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        exit(0);
    }
    if (argc < 2)
        bad_arg("missing role: server or client");
    if (!strcmp(argv[1], "server"))
        o->server = true;
    else if (strcmp(argv[1], "client"))
        bad_arg("unknown role '%s': expected server or client", argv[1]);

    for (int i = 2; i < argc; i++) {
        char name[32];
        const char *arg = argv[i], *val = NULL;
        const char *eq = strchr(arg, '=');

        /* Accept both "--opt value" and "--opt=value". */
        if (!strncmp(arg, "--", 2) && eq && (size_t)(eq - arg) < sizeof(name)) {
            memcpy(name, arg, (size_t)(eq - arg));
            name[eq - arg] = '\0';
            arg = name;
            val = eq + 1;
        }
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            usage(stdout);
            exit(0);
        }
        if (!strcmp(arg, "--udp") || !strcmp(arg, "--stream") || !strcmp(arg, "--sink")) {
            if (val)
                bad_arg("%s takes no value", arg);
            if (!strcmp(arg, "--udp"))
                o->udp = true;
            else if (!strcmp(arg, "--stream"))
                o->stream = true;
            else
                o->sink = true;
            continue;
        }
        if (strcmp(arg, "--addr") && strcmp(arg, "--size") && strcmp(arg, "--iters") && strcmp(arg, "--seconds") &&
            strcmp(arg, "--clients") && strcmp(arg, "--hist") && strcmp(arg, "--warmup") && strcmp(arg, "--mode"))
            bad_arg("unknown option '%s'", argv[i]);
        if (!val) {
            if (i + 1 >= argc)
                bad_arg("%s needs a value", arg);
            val = argv[++i];
        }
        if (!strcmp(arg, "--addr")) {
            parse_addr(val, &o->addr);
            have_addr = true;
        } else if (!strcmp(arg, "--size")) {
            o->size = (size_t)parse_u64(arg, val, 1, TCP_MAX_SIZE);
        } else if (!strcmp(arg, "--iters")) {
            o->iters = parse_u64(arg, val, 1, UINT64_MAX / 2);
            have_iters = true;
        } else if (!strcmp(arg, "--seconds")) {
            char *end;
            errno = 0;
            double s = strtod(val, &end);
            if (errno || *end != '\0' || end == val || !(s > 0) || s > 1e6)
                bad_arg("--seconds: '%s' is not a positive number of seconds", val);
            o->seconds = s;
        } else if (!strcmp(arg, "--clients")) {
            o->clients = (unsigned)parse_u64(arg, val, 1, MAX_CLIENTS);
        } else if (!strcmp(arg, "--hist")) {
            if (!*val)
                bad_arg("--hist needs a file name");
            o->hist_path = val;
        } else if (!strcmp(arg, "--warmup")) {
            o->warmup = parse_u64(arg, val, 0, UINT64_MAX / 2);
        } else { /* --mode */
            if (!strcmp(val, "blocking"))
                o->mode = MODE_BLOCKING;
            else if (!strcmp(val, "busypoll"))
                o->mode = MODE_BUSYPOLL;
            else
                bad_arg("--mode: '%s' is neither blocking nor busypoll", val);
        }
    }
    if (!have_addr)
        bad_arg("--addr IP:PORT is required");
    if (have_iters && o->seconds > 0)
        bad_arg("--iters and --seconds exclude each other");
    if (o->udp && o->size > UDP_MAX_PAYLOAD)
        bad_arg("--size: %zu bytes does not fit in one UDP datagram (max %d)", o->size, UDP_MAX_PAYLOAD);
    if ((o->stream && (o->server || o->udp || !(o->seconds > 0) || o->clients != 1)) ||
        (o->sink && (!o->server || o->udp)))
        bad_arg("--stream is for a TCP client with --seconds and one connection; --sink for a TCP server");
    if (!o->server && o->addr.sin_port == 0)
        bad_arg("--addr: a client needs a non-zero port");
}

static const char *libos_name(const struct opts *o)
{
    return o->mode == MODE_BUSYPOLL ? "linux-busypoll" : "linux-blocking";
}

static void set_nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        die(1, "fcntl(O_NONBLOCK): %s", strerror(errno));
}

static void set_nodelay(int fd)
{
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
        die(1, "setsockopt(TCP_NODELAY): %s", strerror(errno));
}

/* ---- Server ---------------------------------------------------------- */

struct server {
    const struct opts *o;
    int fd; /* listening (TCP) or bound (UDP) socket */
};

/* Blocking TCP: one thread per connection, echoing exactly what it reads. */
static void *serve_conn_blocking(void *arg)
{
    int fd = (int)(intptr_t)arg;
    unsigned char *buf = malloc(SERVER_BUF);
    if (!buf)
        die(1, "out of memory");
    for (;;) {
        ssize_t n = read(fd, buf, SERVER_BUF);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* The peer closed or reset: that connection is done. */
        if (g_sink)
            continue;
        ssize_t off = 0;
        while (off < n) {
            ssize_t w = send(fd, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                goto out;
            off += w;
        }
    }
out:
    free(buf);
    close(fd);
    return NULL;
}

static bool accept_error_is_transient(int err)
{
    /* Errors about one failed connection, not about the listening socket. */
    return err == EINTR || err == ECONNABORTED || err == EAGAIN || err == EWOULDBLOCK || err == EPROTO ||
           err == EPERM || err == ENETDOWN || err == ENOPROTOOPT || err == EHOSTDOWN || err == ENONET ||
           err == EHOSTUNREACH || err == EOPNOTSUPP || err == ENETUNREACH;
}

static void *serve_tcp_blocking(void *arg)
{
    struct server *s = arg;
    for (;;) {
        int fd = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (accept_error_is_transient(errno))
                continue;
            die(1, "accept: %s", strerror(errno));
        }
        set_nodelay(fd);
        pthread_t t;
        int err = pthread_create(&t, NULL, serve_conn_blocking, (void *)(intptr_t)fd);
        if (err)
            die(1, "pthread_create: %s", strerror(err));
        pthread_detach(t);
    }
    return NULL;
}

/* Busy-poll TCP: one thread spins over every connection in turn. A
 * connection holds at most one read's worth of unsent echo, and reads again
 * only once that is all sent, so a slow reader cannot stall the others. */
struct pconn {
    int fd;
    size_t len; /* bytes in buf */
    size_t off; /* bytes of buf already echoed */
    unsigned char *buf;
};

static void *serve_tcp_busypoll(void *arg)
{
    struct server *s = arg;
    struct pconn *c = NULL;
    size_t nc = 0, cap = 0;
    unsigned long spins = 0;

    for (;;) {
        /* Checking for new connections costs a syscall: do it only now and
         * then while connections are being served. */
        if (nc == 0 || (++spins & 255) == 0) {
            int fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd >= 0) {
                set_nodelay(fd);
                if (nc == cap) {
                    cap = cap ? 2 * cap : 8;
                    c = realloc(c, cap * sizeof(*c));
                    if (!c)
                        die(1, "out of memory");
                }
                c[nc].fd = fd;
                c[nc].len = c[nc].off = 0;
                c[nc].buf = malloc(SERVER_BUF);
                if (!c[nc].buf)
                    die(1, "out of memory");
                nc++;
            } else if (!accept_error_is_transient(errno)) {
                die(1, "accept: %s", strerror(errno));
            }
        }
        for (size_t i = 0; i < nc; i++) {
            struct pconn *p = &c[i];
            bool closed = false;
            if (p->off == p->len) {
                ssize_t n = recv(p->fd, p->buf, SERVER_BUF, MSG_DONTWAIT);
                if (n > 0 && !g_sink) {
                    p->len = (size_t)n;
                    p->off = 0;
                } else if (n > 0) {
                    continue; /* --sink: read on */
                } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
                    closed = true;
                }
            }
            if (!closed && p->off < p->len) {
                ssize_t w = send(p->fd, p->buf + p->off, p->len - p->off, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (w > 0) {
                    p->off += (size_t)w;
                    if (p->off == p->len)
                        p->off = p->len = 0;
                } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                    closed = true;
                }
            }
            if (closed) {
                close(p->fd);
                free(p->buf);
                c[i] = c[--nc];
                i--;
            }
        }
    }
    return NULL;
}

/* UDP: echo each datagram to whoever sent it. */
static void *serve_udp(void *arg)
{
    struct server *s = arg;
    bool poll = s->o->mode == MODE_BUSYPOLL;
    int flags = poll ? MSG_DONTWAIT : 0;
    unsigned char *buf = malloc(UDP_MAX_PAYLOAD + 1);
    if (!buf)
        die(1, "out of memory");

    for (;;) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof(peer);
        ssize_t n = recvfrom(s->fd, buf, UDP_MAX_PAYLOAD + 1, flags, (struct sockaddr *)&peer, &plen);
        if (n < 0) {
            /* ECONNREFUSED: an ICMP error about an earlier reply; harmless. */
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNREFUSED)
                continue;
            die(1, "recvfrom: %s", strerror(errno));
        }
        for (;;) {
            ssize_t w = sendto(s->fd, buf, (size_t)n, flags, (struct sockaddr *)&peer, plen);
            /* A full send buffer is waited out; any other failure loses this
             * one echo, as UDP may, and the client reports the loss. */
            if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
                continue;
            break;
        }
    }
    return NULL;
}

static void on_signal(int sig)
{
    (void)sig; /* Never runs: the signals are blocked and taken by sigwait. */
}

static int run_server(const struct opts *o)
{
    /* A shell starts background jobs with SIGINT ignored, and an ignored
     * signal is dropped before sigwait can see it: install a handler first,
     * then block both signals in every thread and take them in main. */
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    static struct server s;
    s.o = o;
    g_sink = o->sink;
    s.fd = socket(AF_INET, (o->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
    if (s.fd < 0)
        die(1, "socket: %s", strerror(errno));
    int one = 1;
    if (setsockopt(s.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
        die(1, "setsockopt(SO_REUSEADDR): %s", strerror(errno));

    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &o->addr.sin_addr, ip, sizeof(ip));
    if (bind(s.fd, (const struct sockaddr *)&o->addr, sizeof(o->addr)) < 0)
        die(1, "bind %s:%u: %s", ip, ntohs(o->addr.sin_port), strerror(errno));
    if (!o->udp && listen(s.fd, 128) < 0)
        die(1, "listen: %s", strerror(errno));
    if (o->mode == MODE_BUSYPOLL)
        set_nonblocking(s.fd);

    struct sockaddr_in bound;
    socklen_t blen = sizeof(bound);
    if (getsockname(s.fd, (struct sockaddr *)&bound, &blen) < 0)
        die(1, "getsockname: %s", strerror(errno));

    void *(*serve)(void *) = o->udp ? serve_udp : o->mode == MODE_BUSYPOLL ? serve_tcp_busypoll : serve_tcp_blocking;
    pthread_t t;
    int err = pthread_create(&t, NULL, serve, &s);
    if (err)
        die(1, "pthread_create: %s", strerror(err));

    printf("ready %s:%u\n", ip, ntohs(bound.sin_port));
    fflush(stdout);

    int sig = 0;
    while (sigwait(&set, &sig) != 0)
        ;
    fprintf(stderr, "%s: server stopping on %s\n", prog, sig == SIGINT ? "SIGINT" : "SIGTERM");
    fflush(stderr);
    /* The serving threads never return; leave without joining them. */
    _exit(0);
}

/* ---- Client ---------------------------------------------------------- */

struct client {
    const struct opts *o;
    unsigned id;
    int fd;
    unsigned char *tx;
    unsigned char *rx;
    uint64_t seq; /* round trips so far, warm-up included: seeds the pattern */
    uint64_t t_start, t_end;
    struct hist h;
};

static pthread_barrier_t start_barrier;

/* g_pos[i] = i ^ (i >> 8), truncated to a byte: computed once (the
 * message's size), shared by the client threads, read only. */
static unsigned char *g_pos;

/* A message that differs at every byte position from one round trip (and
 * one client) to the next, so a stale, shifted or mixed-up echo is caught:
 * byte i is byte i % 8 of X (little-endian) ^ g_pos[i], so 8 bytes at a
 * time are one load, one xor and one store. (A per-byte loop here was two
 * thirds of the client's time at 64 KiB, and made the bulk figures
 * measure the client.) */
static void fill(struct client *c)
{
    uint64_t x = (c->seq + 1) * 0x9E3779B97F4A7C15ull ^ ((uint64_t)c->id + 1) * 0xBF58476D1CE4E5B9ull;
    x ^= x >> 31;
    size_t n = c->o->size, i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, g_pos + i, 8);
        w ^= htole64(x);
        memcpy(c->tx + i, &w, 8);
    }
    for (; i < n; i++)
        c->tx[i] = (unsigned char)((x >> ((i & 7) * 8)) ^ g_pos[i]);
}

static void check(const struct client *c)
{
    if (memcmp(c->tx, c->rx, c->o->size) == 0)
        return;
    size_t i = 0;
    while (c->tx[i] == c->rx[i])
        i++;
    die(1, "client %u: echo mismatch on round trip %" PRIu64 " at byte %zu of %zu: sent 0x%02x, got 0x%02x", c->id,
        c->seq, i, c->o->size, c->tx[i], c->rx[i]);
}

static void io_error(const struct client *c, const char *what, int err)
{
    if (err == EAGAIN || err == EWOULDBLOCK)
        die(1, "client %u: no echo within %d s on round trip %" PRIu64 " (%s)", c->id, ECHO_TIMEOUT_S, c->seq,
            c->o->udp ? "datagram lost?" : "server stalled?");
    die(1, "client %u: %s: %s", c->id, what, strerror(err));
}

static void exchange_blocking(struct client *c)
{
    size_t size = c->o->size;
    if (c->o->udp) {
        ssize_t n;
        while ((n = send(c->fd, c->tx, size, 0)) < 0 && errno == EINTR)
            ;
        if (n < 0)
            io_error(c, "send", errno);
        /* One byte more than expected, so an oversized datagram shows. */
        while ((n = recv(c->fd, c->rx, size + 1, 0)) < 0 && errno == EINTR)
            ;
        if (n < 0)
            io_error(c, "recv", errno);
        if ((size_t)n != size)
            die(1, "client %u: echoed datagram has %zd bytes, sent %zu", c->id, n, size);
        return;
    }
    for (size_t off = 0; off < size;) {
        ssize_t n = send(c->fd, c->tx + off, size - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            io_error(c, "send", errno);
        off += (size_t)n;
    }
    for (size_t off = 0; off < size;) {
        ssize_t n = recv(c->fd, c->rx + off, size - off, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            io_error(c, "recv", errno);
        if (n == 0)
            die(1, "client %u: server closed the connection", c->id);
        off += (size_t)n;
    }
}

static void check_deadline(const struct client *c, uint64_t t0, unsigned long *spins)
{
    if ((++*spins & 4095) == 0 && hist_now_ns() - t0 > (uint64_t)ECHO_TIMEOUT_S * 1000000000u)
        io_error(c, "recv", EAGAIN);
}

static void exchange_busypoll(struct client *c, uint64_t t0)
{
    size_t size = c->o->size;
    unsigned long spins = 0;
    if (c->o->udp) {
        ssize_t n;
        while ((n = send(c->fd, c->tx, size, MSG_DONTWAIT)) < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                io_error(c, "send", errno);
            check_deadline(c, t0, &spins);
        }
        while ((n = recv(c->fd, c->rx, size + 1, MSG_DONTWAIT)) < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                io_error(c, "recv", errno);
            check_deadline(c, t0, &spins);
        }
        if ((size_t)n != size)
            die(1, "client %u: echoed datagram has %zd bytes, sent %zu", c->id, n, size);
        return;
    }
    /* Send and receive interleaved, so a message larger than the socket
     * buffers cannot deadlock against the server's echo. */
    size_t sent = 0, got = 0;
    while (got < size) {
        if (sent < size) {
            ssize_t n = send(c->fd, c->tx + sent, size - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n > 0)
                sent += (size_t)n;
            else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                io_error(c, "send", errno);
        }
        ssize_t n = recv(c->fd, c->rx + got, size - got, MSG_DONTWAIT);
        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        if (n == 0)
            die(1, "client %u: server closed the connection", c->id);
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            io_error(c, "recv", errno);
        check_deadline(c, t0, &spins);
    }
}

/* One checked round trip; returns its latency in nanoseconds. */
static uint64_t round_trip(struct client *c)
{
    fill(c);
    uint64_t t0 = hist_now_ns();
    if (c->o->mode == MODE_BUSYPOLL)
        exchange_busypoll(c, t0);
    else
        exchange_blocking(c);
    uint64_t t1 = hist_now_ns();
    check(c);
    c->seq++;
    return t1 - t0;
}

static void client_connect(struct client *c)
{
    const struct opts *o = c->o;
    c->fd = socket(AF_INET, (o->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        die(1, "socket: %s", strerror(errno));
    if (!o->udp)
        set_nodelay(c->fd);
    if (connect(c->fd, (const struct sockaddr *)&o->addr, sizeof(o->addr)) < 0) {
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &o->addr.sin_addr, ip, sizeof(ip));
        die(1, "client %u: connect %s:%u: %s", c->id, ip, ntohs(o->addr.sin_port), strerror(errno));
    }
    if (o->mode == MODE_BUSYPOLL) {
        set_nonblocking(c->fd);
    } else {
        struct timeval tv = {.tv_sec = ECHO_TIMEOUT_S};
        if (setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
            setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
            die(1, "setsockopt(SO_RCVTIMEO): %s", strerror(errno));
    }
}

static void *client_main(void *arg)
{
    struct client *c = arg;
    const struct opts *o = c->o;

    client_connect(c);
    for (uint64_t i = 0; i < o->warmup; i++)
        (void)round_trip(c);

    /* Every client starts measuring at once, after everyone's warm-up. */
    pthread_barrier_wait(&start_barrier);
    c->t_start = hist_now_ns();
    if (o->seconds > 0) {
        uint64_t deadline = c->t_start + (uint64_t)(o->seconds * 1e9);
        do
            hist_add(&c->h, round_trip(c));
        while (hist_now_ns() < deadline);
    } else {
        for (uint64_t i = 0; i < o->iters; i++)
            hist_add(&c->h, round_trip(c));
    }
    c->t_end = hist_now_ns();
    close(c->fd);
    return NULL;
}

/* --stream: send the same --size bytes over and over for --seconds. */
static int run_stream(const struct opts *o)
{
    signal(SIGPIPE, SIG_IGN);
    struct client c = {.o = o};
    c.tx = calloc(1, o->size);
    if (!c.tx)
        die(1, "out of memory");
    memset(c.tx, 0x5a, o->size);
    client_connect(&c);
    static struct rate r;
    uint64_t sent = 0, warm = o->warmup * o->size, end_ns = UINT64_MAX;
    size_t off = 0;
    if (warm == 0)
        end_ns = rate_start(&r, hist_now_ns(), o->seconds);
    for (;;) {
        ssize_t w = send(c.fd, c.tx + off, o->size - off, MSG_NOSIGNAL);
        uint64_t now = hist_now_ns();
        if (now >= end_ns)
            break;
        if (w < 0 && (errno == EINTR || (o->mode == MODE_BUSYPOLL && (errno == EAGAIN || errno == EWOULDBLOCK))))
            continue;
        if (w <= 0) /* blocking: EAGAIN after SO_SNDTIMEO, nothing taken for 10 s */
            die(1, "send: %s", w < 0 ? strerror(errno) : "sent nothing");
        off = (off + (size_t)w) % o->size;
        if (sent < warm && (sent += (uint64_t)w) >= warm)
            end_ns = rate_start(&r, now, o->seconds);
        else if (sent >= warm)
            rate_add(&r, (uint64_t)w, now);
    }
    close(c.fd);
    rate_print(&r, libos_name(o), o->size);
    free(c.tx);
    return 0;
}

static int run_client(const struct opts *o)
{
    signal(SIGPIPE, SIG_IGN);
    struct client *cs = calloc(o->clients, sizeof(*cs));
    pthread_t *ts = calloc(o->clients, sizeof(*ts));
    if (!cs || !ts)
        die(1, "out of memory");
    int err = pthread_barrier_init(&start_barrier, NULL, o->clients);
    if (err)
        die(1, "pthread_barrier_init: %s", strerror(err));

    g_pos = malloc(o->size);
    if (!g_pos)
        die(1, "out of memory");
    for (size_t i = 0; i < o->size; i++)
        g_pos[i] = (unsigned char)(i ^ (i >> 8));
    for (unsigned i = 0; i < o->clients; i++) {
        struct client *c = &cs[i];
        c->o = o;
        c->id = i;
        c->tx = malloc(o->size);
        c->rx = malloc(o->size + 1);
        if (!c->tx || !c->rx)
            die(1, "out of memory");
        hist_init(&c->h);
        err = pthread_create(&ts[i], NULL, client_main, c);
        if (err)
            die(1, "pthread_create: %s", strerror(err));
    }

    static struct hist all;
    hist_init(&all);
    uint64_t t_start = UINT64_MAX, t_end = 0;
    for (unsigned i = 0; i < o->clients; i++) {
        pthread_join(ts[i], NULL);
        hist_merge(&all, &cs[i].h);
        if (cs[i].t_start < t_start)
            t_start = cs[i].t_start;
        if (cs[i].t_end > t_end)
            t_end = cs[i].t_end;
    }
    double wall_s = (double)(t_end - t_start) / 1e9;

    if (o->hist_path) {
        err = hist_write_cdf(&all, o->hist_path);
        if (err)
            die(1, "writing %s: %s", o->hist_path, strerror(err));
    }
    printf("{\"libos\":\"%s\",\"proto\":\"%s\",\"size\":%zu,\"clients\":%u,\"n\":%" PRIu64
           ",\"p50_us\":%.3f,\"p99_us\":%.3f,\"p999_us\":%.3f,\"mean_us\":%.3f,\"min_us\":%.3f,"
           "\"max_us\":%.3f,\"rps\":%.1f}\n",
           libos_name(o), o->udp ? "udp" : "tcp", o->size, o->clients, all.n, (double)hist_quantile(&all, 0.50) / 1e3,
           (double)hist_quantile(&all, 0.99) / 1e3, (double)hist_quantile(&all, 0.999) / 1e3, hist_mean(&all) / 1e3,
           (double)all.min / 1e3, (double)all.max / 1e3, wall_s > 0 ? (double)all.n / wall_s : 0.0);
    if (fflush(stdout) != 0)
        die(1, "writing the result: %s", strerror(errno));

    for (unsigned i = 0; i < o->clients; i++) {
        free(cs[i].tx);
        free(cs[i].rx);
    }
    free(cs);
    free(ts);
    free(g_pos);
    pthread_barrier_destroy(&start_barrier);
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o;
    if (argc > 0 && argv[0] && *argv[0]) {
        const char *slash = strrchr(argv[0], '/');
        prog = slash ? slash + 1 : argv[0];
    }
    parse_args(argc, argv, &o);
    return o.server ? run_server(&o) : o.stream ? run_stream(&o) : run_client(&o);
}
