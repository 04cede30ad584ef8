/*
 * demi_peer: libdemi's side of the Linux interop tests, the counterpart of
 * peer.py (Linux's side), on the public API only and on whatever libOS the
 * environment names (LIBOS=...).
 *
 *   demi_peer tcp-server PORT [--conns N]   echo every connection; stop after N have closed
 *   demi_peer tcp-client HOST PORT BYTES [--conns N] [--seed S]
 *                                           N connections at once, each sends BYTES and
 *                                           checks the echo
 *   demi_peer udp-server PORT [--count N]   echo datagrams to their sender; stop after N
 *   demi_peer udp-client HOST PORT COUNT SIZE [--seed S]
 *                                           COUNT datagrams one at a time, each checked
 *
 * Servers bind 0.0.0.0:PORT, print "ready IP:PORT" once they listen, and
 * on SIGINT/SIGTERM or their count print one summary line and exit 0 (1
 * if a connection failed). Clients send a seeded stream that never repeats
 * (a misplaced segment cannot pass for the right one), compare every byte
 * that comes back with what was sent, print one summary line and exit 0;
 * on the first wrong byte, a failure or a 30 s stall they say what and
 * where, and exit 1. TCP servers and clients keep their stack running for
 * LINGER_S after their last close, so that their FINs go out. It must
 * never talk to an address it was not given.
 */
#include <demi/libos.h>
#include <demi/sga.h>
#include <demi/wait.h>

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TCP_CHUNK   (256u << 10) /* bytes per push */
#define TCP_PUSHES  4            /* pushes in flight per connection */
#define STALL_S     30           /* a client gives up after this long without progress */
#define LINGER_S    0.5          /* seconds the stack keeps running after the last close */
#define UDP_TRIES   5
#define UDP_WAIT_NS 1000000000L
#define BATCH       64
#define UDP_MAX     65507

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

static void die(const char *fmt, ...)
{
    va_list ap;
    fputs("demi_peer: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static void usage(void)
{
    fputs("usage: demi_peer tcp-server PORT [--conns N]\n"
          "       demi_peer tcp-client HOST PORT BYTES [--conns N] [--seed S]\n"
          "       demi_peer udp-server PORT [--count N]\n"
          "       demi_peer udp-client HOST PORT COUNT SIZE [--seed S]\n",
          stderr);
    exit(2);
}

static uint64_t num(const char *s, uint64_t max)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || *s == '-' || !*s || v > max) {
        fprintf(stderr, "demi_peer: '%s' is not a number in 0..%llu\n", s, (unsigned long long)max);
        exit(2);
    }
    return v;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the byte stream: byte i of stream @key, the same at any offset ---- */

static uint64_t mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint8_t stream_byte(uint64_t key, uint64_t i)
{
    return (uint8_t)(mix(key ^ (i >> 3) * 0xd6e8feb86659fd93ull) >> ((i & 7) * 8));
}

static void stream_fill(uint8_t *p, size_t len, uint64_t key, uint64_t off)
{
    for (size_t i = 0; i < len; i++)
        p[i] = stream_byte(key, off + i);
}

/* Offset (from @off) of the first byte of @p that differs from the stream,
 * or -1 when all match. */
static int64_t stream_diff(const uint8_t *p, size_t len, uint64_t key, uint64_t off)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != stream_byte(key, off + i))
            return (int64_t)i;
    return -1;
}

static struct sockaddr_in addr_of(const char *ip, uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) {
        fprintf(stderr, "demi_peer: '%s' is not an IPv4 address\n", ip);
        exit(2);
    }
    return a;
}

static int open_server(int type, uint16_t port)
{
    int qd, e;
    struct sockaddr_in a = addr_of("0.0.0.0", port);
    if ((e = demi_socket(&qd, AF_INET, type, 0)))
        die("socket: %s", strerror(e));
    if ((e = demi_bind(qd, (struct sockaddr *)&a, sizeof(a))))
        die("bind to port %u: %s", port, strerror(e));
    if (type == SOCK_STREAM && (e = demi_listen(qd, 1024)))
        die("listen: %s", strerror(e));
    socklen_t len = sizeof(a);
    if ((e = demi_getsockname(qd, (struct sockaddr *)&a, &len)))
        die("getsockname: %s", strerror(e));
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &a.sin_addr, ip, sizeof(ip));
    printf("ready %s:%u\n", ip, ntohs(a.sin_port));
    fflush(stdout);
    return qd;
}

static uint64_t sga_len(const demi_sgarray_t *s)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < s->sga_numsegs; i++)
        n += s->sga_segs[i].sgaseg_len;
    return n;
}

/* ---- TCP ---- */

/* Keeps the stack running a little after the last close, so that our FINs
 * go out and are acknowledged: the stack lives in this process, and one
 * that exits at once takes its connections with it, unannounced. */
static void linger(void)
{
    demi_qresult_t qr[BATCH];
    double end = now_s() + LINGER_S;
    while (now_s() < end) {
        int n;
        struct timespec tick = {0, 10 * 1000 * 1000};
        demi_wait_next_n(qr, BATCH, &n, &tick);
    }
}

static int tcp_server(uint16_t port, uint64_t conns)
{
    int lqd = open_server(SOCK_STREAM, port), e;
    uint64_t accepted = 0, closed = 0, failed = 0, bytes = 0;
    demi_qtoken_t qt;
    if ((e = demi_accept(&qt, lqd)))
        die("accept: %s", strerror(e));
    demi_qresult_t qr[BATCH];
    struct timespec tick = {0, 100 * 1000 * 1000};
    while (!stop && (!conns || closed + failed < conns)) {
        int n;
        e = demi_wait_next_n(qr, BATCH, &n, &tick);
        if (e == ETIMEDOUT)
            continue;
        if (e)
            die("wait: %s", strerror(e));
        for (int i = 0; i < n; i++) {
            demi_qresult_t *r = &qr[i];
            switch (r->qr_opcode) {
            case DEMI_OPC_ACCEPT:
                accepted++;
                if ((e = demi_pop(&qt, r->qr_value.ares.qd)))
                    die("pop: %s", strerror(e));
                if ((e = demi_accept(&qt, lqd)))
                    die("accept: %s", strerror(e));
                break;
            case DEMI_OPC_POP: {
                demi_sgarray_t *s = &r->qr_value.sga;
                if (s->sga_numsegs == 0) { /* the client closed: so do we, after our pushes */
                    demi_close(r->qr_qd);
                    closed++;
                    break;
                }
                bytes += sga_len(s);
                /* Echo the very buffer: the push holds its own reference. */
                if ((e = demi_push(&qt, r->qr_qd, s)))
                    die("push: %s", strerror(e));
                demi_sgafree(s);
                if ((e = demi_pop(&qt, r->qr_qd)))
                    die("pop: %s", strerror(e));
                break;
            }
            case DEMI_OPC_FAILED:
                if (r->qr_ret == ECANCELED)
                    break;
                if (r->qr_qd == lqd)
                    die("accept failed: %s", strerror((int)r->qr_ret));
                fprintf(stderr, "demi_peer: a connection failed: %s\n", strerror((int)r->qr_ret));
                demi_close(r->qr_qd);
                failed++;
                break;
            default:
                break;
            }
        }
    }
    demi_close(lqd);
    linger();
    printf("tcp-server: %llu connections accepted, %llu closed by the client, %llu failed, %llu bytes echoed\n",
           (unsigned long long)accepted, (unsigned long long)closed, (unsigned long long)failed,
           (unsigned long long)bytes);
    return failed ? 1 : 0;
}

struct tconn {
    int qd;
    uint64_t key;
    uint64_t sent, received;
    int pushes; /* in flight */
    bool done;
};

/* Pushes the next chunks of @c's stream while fewer than TCP_PUSHES are in flight. */
static void tcp_send_more(struct tconn *c, uint64_t bytes)
{
    while (c->pushes < TCP_PUSHES && c->sent < bytes) {
        size_t n = bytes - c->sent < TCP_CHUNK ? (size_t)(bytes - c->sent) : TCP_CHUNK;
        demi_sgarray_t s = demi_sgaalloc(n);
        if (s.sga_numsegs == 0)
            die("sgaalloc(%zu): %s", n, strerror(errno));
        uint64_t off = c->sent;
        for (uint32_t i = 0; i < s.sga_numsegs; i++) {
            stream_fill(s.sga_segs[i].sgaseg_buf, s.sga_segs[i].sgaseg_len, c->key, off);
            off += s.sga_segs[i].sgaseg_len;
        }
        demi_qtoken_t qt;
        int e = demi_push(&qt, c->qd, &s);
        if (e)
            die("push: %s", strerror(e));
        demi_sgafree(&s);
        c->sent += n;
        c->pushes++;
    }
}

static int tcp_client(const char *host, uint16_t port, uint64_t bytes, uint64_t nconns, uint64_t seed)
{
    struct sockaddr_in to = addr_of(host, port);
    struct tconn *conns = calloc(nconns, sizeof(*conns));
    if (!conns)
        die("out of memory");
    int maxqd = 0, e;
    double t0 = now_s();
    for (uint64_t i = 0; i < nconns; i++) {
        struct tconn *c = &conns[i];
        c->key = mix(seed * 1000003u + i);
        if ((e = demi_socket(&c->qd, AF_INET, SOCK_STREAM, 0)))
            die("socket %llu: %s", (unsigned long long)i, strerror(e));
        demi_qtoken_t qt;
        if ((e = demi_connect(&qt, c->qd, (struct sockaddr *)&to, sizeof(to))))
            die("connect %llu: %s", (unsigned long long)i, strerror(e));
        if (c->qd > maxqd)
            maxqd = c->qd;
    }
    uint64_t *of_qd = calloc((size_t)maxqd + 1, sizeof(*of_qd));
    if (!of_qd)
        die("out of memory");
    for (uint64_t i = 0; i < nconns; i++)
        of_qd[conns[i].qd] = i;

    uint64_t connected = 0, done = 0;
    double t_conn = 0, last = now_s();
    demi_qresult_t qr[BATCH];
    struct timespec tick = {1, 0};
    while (done < nconns) {
        int n;
        e = demi_wait_next_n(qr, BATCH, &n, &tick);
        if (e && e != ETIMEDOUT)
            die("wait: %s", strerror(e));
        if (stop)
            die("interrupted: %llu of %llu connections done", (unsigned long long)done, (unsigned long long)nconns);
        if (e == ETIMEDOUT) {
            if (now_s() - last > STALL_S) {
                uint64_t sent = 0, received = 0;
                for (uint64_t i = 0; i < nconns; i++) {
                    sent += conns[i].sent;
                    received += conns[i].received;
                }
                die("no progress for %d s: %llu of %llu connected, %llu done, %llu bytes sent, %llu echoed", STALL_S,
                    (unsigned long long)connected, (unsigned long long)nconns, (unsigned long long)done,
                    (unsigned long long)sent, (unsigned long long)received);
            }
            continue;
        }
        last = now_s();
        for (int k = 0; k < n; k++) {
            demi_qresult_t *r = &qr[k];
            if (r->qr_qd < 0 || r->qr_qd > maxqd)
                die("a result for unknown queue %d", r->qr_qd);
            uint64_t idx = of_qd[r->qr_qd];
            struct tconn *c = &conns[idx];
            demi_qtoken_t qt;
            switch (r->qr_opcode) {
            case DEMI_OPC_CONNECT:
                if (++connected == nconns)
                    t_conn = now_s() - t0;
                if ((e = demi_pop(&qt, c->qd)))
                    die("pop: %s", strerror(e));
                tcp_send_more(c, bytes);
                break;
            case DEMI_OPC_PUSH:
                c->pushes--;
                tcp_send_more(c, bytes);
                break;
            case DEMI_OPC_POP: {
                demi_sgarray_t *s = &r->qr_value.sga;
                if (s->sga_numsegs == 0)
                    die("connection %llu: the server closed it after %llu of %llu bytes", (unsigned long long)idx,
                        (unsigned long long)c->received, (unsigned long long)bytes);
                for (uint32_t i = 0; i < s->sga_numsegs; i++) {
                    const uint8_t *p = s->sga_segs[i].sgaseg_buf;
                    uint32_t len = s->sga_segs[i].sgaseg_len;
                    if (c->received + len > c->sent)
                        die("connection %llu: %llu bytes came back, only %llu were sent", (unsigned long long)idx,
                            (unsigned long long)(c->received + len), (unsigned long long)c->sent);
                    int64_t bad = stream_diff(p, len, c->key, c->received);
                    if (bad >= 0)
                        die("connection %llu: byte %llu of the echo is wrong (0x%02x, sent 0x%02x)",
                            (unsigned long long)idx, (unsigned long long)(c->received + (uint64_t)bad), p[bad],
                            stream_byte(c->key, c->received + (uint64_t)bad));
                    c->received += len;
                }
                demi_sgafree(s);
                if (c->received < bytes) {
                    if ((e = demi_pop(&qt, c->qd)))
                        die("pop: %s", strerror(e));
                } else {
                    c->done = true;
                    done++;
                    demi_close(c->qd);
                }
                break;
            }
            case DEMI_OPC_FAILED:
                die("connection %llu: an operation failed: %s (%llu bytes sent, %llu echoed)", (unsigned long long)idx,
                    strerror((int)r->qr_ret), (unsigned long long)c->sent, (unsigned long long)c->received);
            default:
                die("connection %llu: unexpected result (opcode %d)", (unsigned long long)idx, (int)r->qr_opcode);
            }
        }
    }
    double dt = now_s() - t0;
    linger();
    printf("tcp-client: %llu x %llu bytes echoed byte-exact in %.2f s (%.0f Mbit/s each way; all connected in %.3f "
           "s)\n",
           (unsigned long long)nconns, (unsigned long long)bytes, dt, (double)(nconns * bytes) * 8 / dt / 1e6, t_conn);
    free(of_qd);
    free(conns);
    return 0;
}

/* ---- UDP ---- */

static int udp_server(uint16_t port, uint64_t count)
{
    int qd = open_server(SOCK_DGRAM, port), e;
    uint64_t echoed = 0, bytes = 0;
    demi_qtoken_t qt;
    if ((e = demi_pop(&qt, qd)))
        die("pop: %s", strerror(e));
    demi_qresult_t qr[BATCH];
    struct timespec tick = {0, 100 * 1000 * 1000};
    while (!stop && (!count || echoed < count)) {
        int n;
        e = demi_wait_next_n(qr, BATCH, &n, &tick);
        if (e == ETIMEDOUT)
            continue;
        if (e)
            die("wait: %s", strerror(e));
        for (int i = 0; i < n; i++) {
            demi_qresult_t *r = &qr[i];
            if (r->qr_opcode == DEMI_OPC_POP) {
                demi_sgarray_t *s = &r->qr_value.sga;
                bytes += sga_len(s);
                if ((e = demi_pushto(&qt, qd, s, (struct sockaddr *)&s->sga_addr, sizeof(s->sga_addr))))
                    die("pushto: %s", strerror(e));
                demi_sgafree(s);
                echoed++;
                if ((e = demi_pop(&qt, qd)))
                    die("pop: %s", strerror(e));
            } else if (r->qr_opcode == DEMI_OPC_FAILED) {
                die("udp: an operation failed: %s", strerror((int)r->qr_ret));
            }
        }
    }
    demi_close(qd);
    printf("udp-server: %llu datagrams (%llu bytes) echoed\n", (unsigned long long)echoed, (unsigned long long)bytes);
    return 0;
}

static int udp_client(const char *host, uint16_t port, uint64_t count, size_t size, uint64_t seed)
{
    struct sockaddr_in to = addr_of(host, port);
    if (size < 8 || size > UDP_MAX)
        die("SIZE must be 8..%d (the first 8 bytes number the datagram)", UDP_MAX);
    int qd, e;
    if ((e = demi_socket(&qd, AF_INET, SOCK_DGRAM, 0)))
        die("socket: %s", strerror(e));
    demi_qtoken_t pop;
    if ((e = demi_pop(&pop, qd)))
        die("pop: %s", strerror(e));
    uint64_t retried = 0;
    double t0 = now_s();
    for (uint64_t i = 0; i < count; i++) {
        uint64_t key = mix(seed * 1000003u + i);
        bool echoed = false;
        for (int attempt = 0; attempt < UDP_TRIES && !echoed; attempt++) {
            if (attempt)
                retried++;
            demi_sgarray_t s = demi_sgaalloc(size);
            if (s.sga_numsegs == 0)
                die("sgaalloc(%zu): %s", size, strerror(errno));
            uint64_t off = 0;
            for (uint32_t k = 0; k < s.sga_numsegs; k++) {
                stream_fill(s.sga_segs[k].sgaseg_buf, s.sga_segs[k].sgaseg_len, key, off);
                off += s.sga_segs[k].sgaseg_len;
            }
            memcpy(s.sga_segs[0].sgaseg_buf, &i, 8);
            demi_qtoken_t push;
            demi_qresult_t qr;
            if ((e = demi_pushto(&push, qd, &s, (struct sockaddr *)&to, sizeof(to))))
                die("pushto: %s", strerror(e));
            demi_sgafree(&s);
            struct timespec wait = {5, 0};
            if ((e = demi_wait(&qr, push, &wait)))
                die("wait for push: %s", strerror(e));
            if (qr.qr_opcode != DEMI_OPC_PUSH)
                die("datagram %llu: push failed: %s", (unsigned long long)i, strerror((int)qr.qr_ret));
            /* Wait for this datagram's echo; late echoes of an earlier
             * attempt (same number) count, older numbers are skipped. */
            double deadline = now_s() + (double)UDP_WAIT_NS / 1e9;
            while (!echoed) {
                double left = deadline - now_s();
                if (left <= 0)
                    break;
                struct timespec ts = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
                e = demi_wait(&qr, pop, &ts);
                if (e == ETIMEDOUT)
                    break;
                if (e)
                    die("wait for pop: %s", strerror(e));
                if (qr.qr_opcode != DEMI_OPC_POP)
                    die("datagram %llu: pop failed: %s", (unsigned long long)i, strerror((int)qr.qr_ret));
                demi_sgarray_t *r = &qr.qr_value.sga;
                if (r->sga_addr.sin_addr.s_addr != to.sin_addr.s_addr || r->sga_addr.sin_port != to.sin_port)
                    die("datagram %llu: an answer from %s:%u, not %s:%u", (unsigned long long)i,
                        inet_ntoa(r->sga_addr.sin_addr), ntohs(r->sga_addr.sin_port), host, port);
                uint64_t got_len = sga_len(r), num = UINT64_MAX;
                if (r->sga_numsegs && r->sga_segs[0].sgaseg_len >= 8)
                    memcpy(&num, r->sga_segs[0].sgaseg_buf, 8);
                if (num < i) { /* the echo of an earlier datagram's retry */
                    demi_sgafree(r);
                } else {
                    if (num != i || got_len != size)
                        die("datagram %llu: got %llu bytes numbered %llu back", (unsigned long long)i,
                            (unsigned long long)got_len, (unsigned long long)num);
                    uint64_t at = 0;
                    for (uint32_t k = 0; k < r->sga_numsegs; k++) {
                        const uint8_t *p = r->sga_segs[k].sgaseg_buf;
                        uint32_t len = r->sga_segs[k].sgaseg_len;
                        uint64_t skip = at < 8 ? 8 - at : 0; /* the number, checked above */
                        if (skip < len) {
                            int64_t bad = stream_diff(p + skip, len - skip, key, at + skip);
                            if (bad >= 0)
                                die("datagram %llu: byte %llu of the echo is wrong", (unsigned long long)i,
                                    (unsigned long long)(at + skip + (uint64_t)bad));
                        }
                        at += len;
                    }
                    demi_sgafree(r);
                    echoed = true;
                }
                if ((e = demi_pop(&pop, qd)))
                    die("pop: %s", strerror(e));
            }
        }
        if (!echoed)
            die("datagram %llu of %zu bytes: no echo after %d tries", (unsigned long long)i, size, UDP_TRIES);
    }
    double dt = now_s() - t0;
    printf("udp-client: %llu datagrams of %zu bytes echoed byte-exact in %.2f s (%.1f us per round trip; %llu "
           "retried)\n",
           (unsigned long long)count, size, dt, dt * 1e6 / (double)count, (unsigned long long)retried);
    demi_close(qd);
    return 0;
}

/* The value of option @name among the "--name value" pairs in argv[from..],
 * or @dflt; anything else there is a usage error. */
static uint64_t opt(int argc, char **argv, int from, const char *name, uint64_t dflt, uint64_t min, uint64_t max)
{
    uint64_t v = dflt;
    if ((argc - from) % 2)
        usage();
    for (int i = from; i < argc; i += 2) {
        if (strncmp(argv[i], "--", 2) != 0)
            usage();
        if (strcmp(argv[i], name) == 0) {
            v = num(argv[i + 1], max);
            if (v < min)
                usage();
        }
    }
    return v;
}

static void check_opts(int argc, char **argv, int from, const char *const *allowed)
{
    for (int i = from; i < argc; i += 2) {
        bool ok = false;
        for (const char *const *a = allowed; *a; a++)
            ok |= strcmp(argv[i], *a) == 0;
        if (!ok)
            usage();
    }
}

int main(int argc, char **argv)
{
    if (argc < 3)
        usage();
    const char *cmd = argv[1];
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    int nfixed = !strcmp(cmd, "tcp-server") || !strcmp(cmd, "udp-server") ? 1
                 : !strcmp(cmd, "tcp-client")                             ? 3
                 : !strcmp(cmd, "udp-client")                             ? 4
                                                                          : -1;
    if (nfixed < 0 || argc < 2 + nfixed)
        usage();
    int from = 2 + nfixed;
    static const char *const client_opts[] = {"--conns", "--seed", NULL}, *const conns_opt[] = {"--conns", NULL},
                             *const count_opt[] = {"--count", NULL}, *const seed_opt[] = {"--seed", NULL};
    bool tcp = cmd[0] == 't', server = strstr(cmd, "server") != NULL;
    check_opts(argc, argv, from, tcp ? (server ? conns_opt : client_opts) : (server ? count_opt : seed_opt));
    uint64_t seed = opt(argc, argv, from, "--seed", 1, 0, UINT64_MAX);
    int e = demi_init(NULL);
    if (e)
        die("demi_init: %s", strerror(e));
    int rc;
    if (tcp && server)
        rc = tcp_server((uint16_t)num(argv[2], 65535), opt(argc, argv, from, "--conns", 0, 0, UINT32_MAX));
    else if (server)
        rc = udp_server((uint16_t)num(argv[2], 65535), opt(argc, argv, from, "--count", 0, 0, UINT64_MAX));
    else if (tcp)
        rc = tcp_client(argv[2], (uint16_t)num(argv[3], 65535), num(argv[4], UINT64_MAX),
                        opt(argc, argv, from, "--conns", 1, 1, 65536), seed);
    else
        rc = udp_client(argv[2], (uint16_t)num(argv[3], 65535), num(argv[4], UINT64_MAX), (size_t)num(argv[5], UDP_MAX),
                        seed);
    fflush(stdout);
    return rc;
}
