/*
 * demi-echo: TCP/UDP echo server and latency-measuring client on PDPIX.
 * Same binary on every libOS (LIBOS=...). Uses only the public API.
 *
 *   demi-echo server|client [--udp] --addr IP:PORT [--size BYTES]
 *             [--iters N | --seconds S] [--clients N] [--hist FILE] [--warmup N]
 *             [--max-pending BYTES] [--threads N] [--cpus LIST]
 *   demi-echo --help | --version
 *
 * The server echoes each popped array back with zero copies (it pushes the
 * very buffer it popped) and prints "ready IP:PORT" once it listens. It
 * bounds what each TCP connection holds (--max-pending, see struct econn),
 * and when an accept fails for want of descriptors or memory it logs (one
 * line a second at most), tries again after a growing delay, and keeps
 * serving. SIGUSR1 makes it print a "stats" line (heap bytes in use, and
 * the most seen, from demi_get_stats) on stdout. With --threads N, N
 * threads each run the server on their own libdemi instance, sharing the
 * port and the device (libdemi.queues = N), and each prints a "thread"
 * line with what it served when the server stops. The
 * client runs round trips over --clients connections at once, checks every
 * echoed byte, and prints one JSON line with the latency percentiles; with
 * --threads N, N instances share the connections (and the round trips),
 * and the line merges them.
 */
#include "hist.h"
#include "rate.h"
#include "threads.h"

#include <demi/libos.h>
#include <demi/sga.h>
#include <demi/version.h>
#include <demi/wait.h>

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 64

struct opts {
    bool server;
    bool udp;
    struct sockaddr_in addr;
    uint32_t size;
    uint64_t iters;
    double seconds;
    uint32_t clients;
    uint64_t warmup;
    const char *hist;
    uint64_t max_pending;
    uint64_t pause_ms;
    bool stream;           /* client: push one way for --seconds (to a --sink server) */
    bool sink;             /* server: take what TCP clients send, echo nothing */
    struct app_threads th; /* server: --threads (instances, one per thread) and --cpus */
};

/* A connection's incomplete pushes the server allows before it stops
 * popping from it: 256 KiB, four times a catnap pop (64 KiB), so that a
 * client that reads keeps a few echoes in flight. */
#define MAX_PENDING_DEFAULT (256u << 10)

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

/* The whole usage: on stdout for --help (exit 0), on stderr for a mistake
 * (exit 2). Every option of parse()'s table is here and in demi-echo(1);
 * tests/apps/test_app_cli.sh checks both. */
static void usage(FILE *f, int status)
{
    fprintf(f, "usage: demi-echo server|client [--udp] --addr IP:PORT [--size BYTES]\n"
               "                 [--iters N | --seconds S] [--clients N] [--hist FILE] [--warmup N]\n"
               "                 [--max-pending BYTES] [--pause MS] [--threads N] [--cpus LIST]\n"
               "                 [--stream | --sink]\n"
               "       demi-echo --help | --version\n"
               "  --addr IP:PORT       server: listen there (port 0 picks a free port);\n"
               "                       client: connect (or send) there. Required\n"
               "  --udp                echo UDP datagrams instead of a TCP stream\n"
               "  --size BYTES         client: bytes per message, 1..268435456 (UDP: up to 65507);\n"
               "                       default 64\n"
               "  --iters N            client: round trips in all (default 100000)\n"
               "  --seconds S          client: run for S seconds instead of a number of round trips\n"
               "  --clients N          client: connections (or UDP sockets) at once, 1..65536 (default 1)\n"
               "  --hist FILE          client: write the latency distribution (CDF) to FILE\n"
               "  --warmup N           client: round trips left out of the latencies (default 1000)\n"
               "  --max-pending BYTES  server: stop reading a TCP connection while BYTES of its echoes\n"
               "                       are not yet sent (a client that does not read them);\n"
               "                       default 262144 (256 KiB)\n"
               "  --threads N          N threads, each its own libdemi instance (1..16, default 1),\n"
               "                       sharing the device (libdemi.queues, set to N unless QUEUES\n"
               "                       says so); server: they share the port (a fixed one below\n"
               "                       49152); client: they share --clients and --iters, and the\n"
               "                       JSON line sums their requests/s and merges their latencies\n"
               "  --cpus LIST          pin thread i to the i-th CPU of LIST (e.g. 0,1)\n"
               "  --pause MS           client: sleep MS milliseconds before each round trip after the\n"
               "                       warm-up (outside the libOS: the server idles), so that the\n"
               "                       latencies are those of a first request after a pause\n"
               "  --stream             client: push --size messages one way for --seconds over one TCP\n"
               "                       connection (16 in flight, after --warmup of them) and print the\n"
               "                       bytes per second, overall and in one-second samples; the\n"
               "                       server must run with --sink\n"
               "  --sink               server: read TCP connections and echo nothing\n"
               "  --help               this text\n"
               "  --version            the program's and libdemi's version\n"
               "LIBOS picks the libOS (default catnap); see demi-echo(1) and libdemi(7).\n");
    exit(status);
}

static void version(void)
{
    printf("demi-echo (libdemi) %s\n", demi_version());
    exit(0);
}

static void die(const char *what, int err)
{
    fprintf(stderr, "demi-echo: %s: %s\n", what, strerror(err));
    exit(1);
}

static int parse_addr(const char *s, struct sockaddr_in *out)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof(host))
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535 || colon[1] == '\0')
        return -1;
    memset(out, 0, sizeof(*out));
    out->sin_family = AF_INET;
    out->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &out->sin_addr) == 1 ? 0 : -1;
}

static uint64_t parse_u64(const char *s, const char *what)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || *s == '-' || *s == '\0') {
        fprintf(stderr, "demi-echo: %s: not a number: %s\n", what, s);
        exit(2);
    }
    return v;
}

static void parse(int argc, char **argv, struct opts *o)
{
    static const struct option lo[] = {{"udp", no_argument, 0, 'u'},
                                       {"addr", required_argument, 0, 'a'},
                                       {"size", required_argument, 0, 's'},
                                       {"iters", required_argument, 0, 'i'},
                                       {"seconds", required_argument, 0, 't'},
                                       {"clients", required_argument, 0, 'c'},
                                       {"hist", required_argument, 0, 'H'},
                                       {"warmup", required_argument, 0, 'w'},
                                       {"max-pending", required_argument, 0, 'm'},
                                       {"pause", required_argument, 0, 'p'},
                                       {"threads", required_argument, 0, 'T'},
                                       {"cpus", required_argument, 0, 'C'},
                                       {"stream", no_argument, 0, 'S'},
                                       {"sink", no_argument, 0, 'K'},
                                       {"help", no_argument, 0, 'h'},
                                       {"version", no_argument, 0, 'V'},
                                       {0, 0, 0, 0}};
    memset(o, 0, sizeof(*o));
    o->size = 64;
    o->clients = 1;
    o->warmup = 1000;
    o->max_pending = MAX_PENDING_DEFAULT;
    o->th = (struct app_threads){.prog = "demi-echo", .n = 1};
    bool have_addr = false, have_iters = false;
    if (argc < 2)
        usage(stderr, 2);
    if (strcmp(argv[1], "--help") == 0)
        usage(stdout, 0);
    if (strcmp(argv[1], "--version") == 0)
        version();
    if (strcmp(argv[1], "server") == 0)
        o->server = true;
    else if (strcmp(argv[1], "client") != 0)
        usage(stderr, 2);
    optind = 2;
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'u':
            o->udp = true;
            break;
        case 'a':
            if (parse_addr(optarg, &o->addr)) {
                fprintf(stderr, "demi-echo: --addr: expected IPv4:PORT, got %s\n", optarg);
                exit(2);
            }
            have_addr = true;
            break;
        case 's': {
            uint64_t v = parse_u64(optarg, "--size");
            if (v == 0 || v > (256u << 20)) {
                fprintf(stderr, "demi-echo: --size must be 1..268435456\n");
                exit(2);
            }
            o->size = (uint32_t)v;
            break;
        }
        case 'i':
            o->iters = parse_u64(optarg, "--iters");
            have_iters = true;
            break;
        case 't':
            o->seconds = strtod(optarg, NULL);
            break;
        case 'c': {
            uint64_t v = parse_u64(optarg, "--clients");
            if (v == 0 || v > 65536) {
                fprintf(stderr, "demi-echo: --clients must be 1..65536\n");
                exit(2);
            }
            o->clients = (uint32_t)v;
            break;
        }
        case 'H':
            o->hist = optarg;
            break;
        case 'w':
            o->warmup = parse_u64(optarg, "--warmup");
            break;
        case 'm':
            o->max_pending = parse_u64(optarg, "--max-pending");
            break;
        case 'p':
            o->pause_ms = parse_u64(optarg, "--pause");
            if (o->pause_ms > 3600000) {
                fprintf(stderr, "demi-echo: --pause must be at most 3600000 (an hour)\n");
                exit(2);
            }
            break;
        case 'T':
            app_threads_parse_n(&o->th, optarg);
            break;
        case 'C':
            app_threads_parse_cpus(&o->th, optarg);
            break;
        case 'S':
            o->stream = true;
            break;
        case 'K':
            o->sink = true;
            break;
        case 'h':
            usage(stdout, 0);
            break;
        case 'V':
            version();
            break;
        default:
            usage(stderr, 2);
        }
    }
    if (optind != argc || !have_addr)
        usage(stderr, 2);
    if (have_iters && o->seconds > 0) {
        fprintf(stderr, "demi-echo: give --iters or --seconds, not both\n");
        exit(2);
    }
    if (!have_iters && o->seconds <= 0)
        o->iters = 100000;
    if (o->th.n > o->clients && !o->server) {
        fprintf(stderr, "demi-echo: --threads %u: more threads than --clients (%u)\n", o->th.n, o->clients);
        exit(2);
    }
    if (o->server && o->th.n > 1 && (ntohs(o->addr.sin_port) == 0 || ntohs(o->addr.sin_port) >= 49152)) {
        fprintf(stderr, "demi-echo: --threads %u: give a fixed port below 49152 (the threads share it; ephemeral\n"
                        "           ports each belong to one instance)\n", o->th.n);
        exit(2);
    }
    if ((o->stream && (o->server || o->udp || o->seconds <= 0 || o->clients != 1 || o->th.n != 1)) ||
        (o->sink && (!o->server || o->udp))) {
        fprintf(stderr, "demi-echo: --stream is for a TCP client with --seconds, one connection and one thread;\n"
                        "           --sink for a TCP server\n");
        exit(2);
    }
    if (o->udp && o->size > 65507) {
        fprintf(stderr, "demi-echo: --size over 65507 cannot be one UDP datagram\n");
        exit(2);
    }
}

static const char *libos_name(void)
{
    static demi_stats_t st;
    if (demi_get_stats(&st) != 0)
        return "unknown";
    return st.libos;
}

/* ---- server ---- */

/*
 * A TCP connection of the server. The server pushes back every array it
 * pops; a push completes once the kernel or the device has taken the
 * bytes, so a client that sends without reading leaves its pushes
 * incomplete, each holding its heap buffer. The server stops popping from
 * a connection while --max-pending bytes (or PEND_MAX pushes) of it are
 * incomplete, and pops again when they complete: such a client then fills
 * its own TCP window and less than --max-pending bytes plus one popped
 * array of the heap, not the whole heap.
 */
#define PEND_MAX 64

struct econn {
    bool open;
    bool popping;         /* a pop is posted */
    demi_qtoken_t pop_qt; /* its token */
    uint64_t bytes;       /* bytes of the incomplete pushes */
    uint32_t head, n;     /* the incomplete pushes, oldest first */
    struct {
        demi_qtoken_t qt;
        uint32_t len;
    } q[PEND_MAX];
};

struct server {
    const struct opts *o;
    int lqd;
    struct econn *c; /* indexed by qd */
    size_t cap;
    size_t nconns;
    /* Accepting: posted, or waiting until accept_at (ns) after a failure. */
    bool accepting;
    demi_qtoken_t accept_qt;
    uint64_t accept_at;
    uint64_t backoff_ns;
    uint64_t accepted, echoed; /* connections, and messages (datagrams) echoed */
    /* At most one line a second about failed accepts. */
    uint64_t log_at;
    uint64_t log_suppressed;
    uint64_t heap_peak;
};

static volatile sig_atomic_t report;

static void on_usr1(int sig)
{
    (void)sig;
    report = 1;
}

/* Errors of an accept that say nothing about the listening socket itself:
 * out of descriptors or memory for now, or a connection gone before it was
 * accepted. */
static bool accept_transient(int e)
{
    return e == EMFILE || e == ENFILE || e == ENOMEM || e == ENOBUFS || e == ECONNABORTED || e == EPROTO ||
           e == EPERM || e == EAGAIN || e == EINTR || e == ETIMEDOUT || e == ECONNRESET;
}

static void accept_failed(struct server *s, int e)
{
    uint64_t now = hist_now_ns();
    if (!accept_transient(e))
        die("accept", e);
    if (now >= s->log_at) {
        if (s->log_suppressed)
            fprintf(
                stderr,
                "demi-echo: accept: %s (and %llu more failures in the last second); serving the %zu open connections\n",
                strerror(e), (unsigned long long)s->log_suppressed, s->nconns);
        else
            fprintf(stderr, "demi-echo: accept: %s; serving the %zu open connections\n", strerror(e), s->nconns);
        s->log_suppressed = 0;
        s->log_at = now + 1000000000ull;
    } else {
        s->log_suppressed++;
    }
    /* Try again after a delay that doubles, from 1 ms up to 1 s, while the
     * accepts keep failing (the kernel still holds the connection that
     * failed: trying again at once would only fail again). */
    s->backoff_ns = s->backoff_ns ? s->backoff_ns * 2 : 1000000ull;
    if (s->backoff_ns > 1000000000ull)
        s->backoff_ns = 1000000000ull;
    s->accepting = false;
    s->accept_at = now + s->backoff_ns;
}

static void accept_arm(struct server *s)
{
    int e = demi_accept(&s->accept_qt, s->lqd);
    if (e)
        accept_failed(s, e);
    else
        s->accepting = true;
}

static struct econn *econn_of(struct server *s, int qd)
{
    return qd >= 0 && (size_t)qd < s->cap && s->c[qd].open ? &s->c[qd] : NULL;
}

static void econn_close(struct server *s, int qd)
{
    /* Pushes already made still go out (a graceful close); the results of
     * the cancelled pop or of those pushes find no open connection, or a
     * new one on the same qd whose tokens they do not match. */
    demi_close(qd);
    memset(&s->c[qd], 0, sizeof(s->c[qd]));
    s->nconns--;
}

/* Posts a pop unless one is posted or the connection is over its bound. */
static void econn_pop(struct server *s, int qd)
{
    struct econn *c = &s->c[qd];
    if (c->popping || c->bytes >= s->o->max_pending || c->n == PEND_MAX)
        return;
    if (demi_pop(&c->pop_qt, qd) != 0) {
        econn_close(s, qd); /* out of memory for this one: drop it, serve the rest */
        return;
    }
    c->popping = true;
}

static void econn_new(struct server *s, int qd)
{
    if ((size_t)qd >= s->cap) {
        size_t cap = s->cap ? s->cap : 256;
        while (cap <= (size_t)qd)
            cap *= 2;
        struct econn *t = realloc(s->c, cap * sizeof(*t));
        if (!t) {
            demi_close(qd);
            return;
        }
        memset(t + s->cap, 0, (cap - s->cap) * sizeof(*t));
        s->c = t;
        s->cap = cap;
    }
    memset(&s->c[qd], 0, sizeof(s->c[qd]));
    s->c[qd].open = true;
    s->nconns++;
    econn_pop(s, qd);
}

static void econn_popped(struct server *s, int qd, demi_sgarray_t *sga)
{
    struct econn *c = &s->c[qd];
    c->popping = false;
    if (sga->sga_numsegs == 0) { /* the client closed */
        econn_close(s, qd);
        return;
    }
    uint64_t len = 0;
    for (uint32_t i = 0; i < sga->sga_numsegs; i++)
        len += sga->sga_segs[i].sgaseg_len;
    if (s->o->sink) {
        demi_sgafree(sga);
        econn_pop(s, qd);
        return;
    }
    /* Zero copy: push back the very buffer we popped. The push holds its
     * own reference, so freeing now is safe. */
    demi_qtoken_t qt;
    int e = demi_push(&qt, qd, sga);
    demi_sgafree(sga);
    if (e) {
        econn_close(s, qd); /* out of memory for this push: drop this client only */
        return;
    }
    s->echoed++;
    uint32_t tail = (c->head + c->n) % PEND_MAX;
    c->q[tail].qt = qt;
    c->q[tail].len = (uint32_t)len;
    c->n++;
    c->bytes += len;
    econn_pop(s, qd);
}

static void econn_pushed(struct server *s, struct econn *c, int qd, demi_qtoken_t qt)
{
    /* Pushes complete in order: a result that is not the oldest push's is
     * a closed connection's, whose qd is now another's. */
    if (c->n == 0 || c->q[c->head].qt != qt)
        return;
    c->bytes -= c->q[c->head].len;
    c->head = (c->head + 1) % PEND_MAX;
    c->n--;
    econn_pop(s, qd);
}

/* One of the connection's own operations (a pop or an incomplete push)? */
static bool econn_owns(const struct econn *c, demi_qtoken_t qt)
{
    if (c->popping && c->pop_qt == qt)
        return true;
    for (uint32_t i = 0; i < c->n; i++)
        if (c->q[(c->head + i) % PEND_MAX].qt == qt)
            return true;
    return false;
}

static void server_stats(struct server *s)
{
    demi_stats_t st;
    if (demi_get_stats(&st) != 0)
        return;
    if (st.heap_bytes_in_use > s->heap_peak)
        s->heap_peak = st.heap_bytes_in_use;
    if (report) {
        report = 0;
        printf("stats connections=%zu heap_bytes_in_use=%llu heap_peak=%llu\n", s->nconns,
               (unsigned long long)st.heap_bytes_in_use, (unsigned long long)s->heap_peak);
        fflush(stdout);
    }
}

static void server_udp(struct server *s, int qd)
{
    demi_qresult_t qr[BATCH];
    demi_qtoken_t qt;
    int e;
    struct timespec tick = {0, 100 * 1000 * 1000};
    if ((e = demi_pop(&qt, qd)))
        die("pop", e);
    while (!stop) {
        int n;
        e = demi_wait_next_n(qr, BATCH, &n, &tick);
        if (e == ETIMEDOUT)
            continue;
        if (e)
            die("wait", e);
        for (int i = 0; i < n; i++) {
            demi_qresult_t *r = &qr[i];
            if (r->qr_opcode == DEMI_OPC_POP) {
                demi_sgarray_t *sga = &r->qr_value.sga;
                /* A datagram goes back to its sender; a push that fails
                 * (no memory) loses only this datagram. */
                demi_qtoken_t pqt;
                if (demi_pushto(&pqt, qd, sga, (const struct sockaddr *)&sga->sga_addr, sizeof(sga->sga_addr)) == 0)
                    s->echoed++;
                demi_sgafree(sga);
                if ((e = demi_pop(&qt, qd)))
                    die("pop", e);
            } else if (r->qr_opcode == DEMI_OPC_FAILED && r->qr_ret != ECANCELED && r->qr_qt == qt) {
                die("udp queue", (int)r->qr_ret);
            }
        }
    }
}

/* What one thread served, when the server stops (with --threads). */
static void server_report(struct server *s, uint32_t idx)
{
    demi_stats_t st;
    if (demi_get_stats(&st) != 0)
        return;
    printf("thread %u queue=%u/%u accepted=%llu echoed=%llu rx_frames=%llu frames_handed_out=%llu "
           "frames_handed_in=%llu\n",
           idx, st.queue, st.queues, (unsigned long long)s->accepted, (unsigned long long)s->echoed,
           (unsigned long long)st.rx_frames, (unsigned long long)st.frames_handed_out,
           (unsigned long long)st.frames_handed_in);
    fflush(stdout);
}

static void server(const struct opts *o, uint32_t idx)
{
    struct server s = {.o = o};
    int e;
    if ((e = demi_socket(&s.lqd, AF_INET, o->udp ? SOCK_DGRAM : SOCK_STREAM, 0)))
        die("socket", e);
    if ((e = demi_bind(s.lqd, (const struct sockaddr *)&o->addr, sizeof(o->addr))))
        die("bind", e);
    if (!o->udp) {
        if ((e = demi_listen(s.lqd, 1024)))
            die("listen", e);
        if ((e = demi_accept(&s.accept_qt, s.lqd)))
            die("accept", e);
        s.accepting = true;
    }
    struct sockaddr_in local;
    socklen_t len = sizeof(local);
    if ((e = demi_getsockname(s.lqd, (struct sockaddr *)&local, &len)))
        die("getsockname", e);
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &local.sin_addr, ip, sizeof(ip));
    app_threads_bound(&o->th);
    if (idx == 0) {
        printf("ready %s:%u\n", ip, ntohs(local.sin_port));
        fflush(stdout);
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_usr1;
        sigaction(SIGUSR1, &sa, NULL);
    }
    if (o->udp) {
        server_udp(&s, s.lqd);
        if (o->th.n > 1)
            server_report(&s, idx);
        demi_close(s.lqd);
        return;
    }

    demi_qresult_t qr[BATCH];
    while (!stop) {
        /* Wake up at the latest every 100 ms (for SIGINT and SIGUSR1), or
         * when the accept is due again. */
        uint64_t wait_ns = 100 * 1000 * 1000ull;
        if (!s.accepting) {
            uint64_t now = hist_now_ns();
            wait_ns = s.accept_at > now ? s.accept_at - now : 0;
            if (wait_ns > 100 * 1000 * 1000ull)
                wait_ns = 100 * 1000 * 1000ull;
        }
        struct timespec to = {(time_t)(wait_ns / 1000000000ull), (long)(wait_ns % 1000000000ull)};
        int n = 0;
        e = demi_wait_next_n(qr, BATCH, &n, &to);
        if (e && e != ETIMEDOUT)
            die("wait", e);
        for (int i = 0; i < n; i++) {
            demi_qresult_t *r = &qr[i];
            int qd = r->qr_qd;
            struct econn *c = econn_of(&s, qd);
            switch (r->qr_opcode) {
            case DEMI_OPC_ACCEPT:
                s.accepting = false;
                s.backoff_ns = 0;
                s.accepted++;
                econn_new(&s, r->qr_value.ares.qd);
                accept_arm(&s);
                break;
            case DEMI_OPC_POP:
                if (c && c->popping && c->pop_qt == r->qr_qt)
                    econn_popped(&s, qd, &r->qr_value.sga);
                else
                    demi_sgafree(&r->qr_value.sga);
                break;
            case DEMI_OPC_PUSH:
                if (c)
                    econn_pushed(&s, c, qd, r->qr_qt);
                break;
            case DEMI_OPC_FAILED:
                if (qd == s.lqd) {
                    if (r->qr_qt == s.accept_qt && r->qr_ret != ECANCELED)
                        accept_failed(&s, (int)r->qr_ret);
                } else if (c && r->qr_ret != ECANCELED && econn_owns(c, r->qr_qt)) {
                    econn_close(&s, qd); /* reset or error on one connection */
                }
                break;
            default:
                break;
            }
        }
        if (!s.accepting && hist_now_ns() >= s.accept_at)
            accept_arm(&s);
        server_stats(&s);
    }
    if (o->th.n > 1)
        server_report(&s, idx);
    for (size_t qd = 0; qd < s.cap; qd++)
        if (s.c[qd].open)
            econn_close(&s, (int)qd);
    demi_close(s.lqd);
    free(s.c);
}

/* One --threads thread: its own instance (app_threads_run). */
static void server_main(void *ctx, uint32_t idx)
{
    server(ctx, idx);
}

/* ---- client ---- */

struct conn {
    int qd;
    uint64_t iter; /* round trip number on this connection */
    uint32_t got;  /* bytes of the current echo received */
    uint64_t t0;
    bool busy;
};

/* Byte I of echo ITER on connection CONN is (base + g_step[I]) mod 256,
 * base = CONN * 131 + ITER * 31 and g_step[I] = I * 7 + I / 256: a message
 * that differs at every position from one round trip and one connection
 * to the next. g_step is computed once (o->size bytes), so that filling a
 * message and checking its echo are a byte add over 16 bytes at a time
 * (GCC's vector types), not a multiply and a branch per byte: with 64 KiB
 * messages the per-byte loops were 60% of the client's time, and the bulk
 * figures measured the client, not the stack. */
static uint8_t *g_step;

typedef uint8_t v16u8 __attribute__((vector_size(16)));

static void step_init(uint32_t size)
{
    g_step = malloc(size ? size : 1);
    if (!g_step)
        die("malloc", ENOMEM);
    for (uint32_t i = 0; i < size; i++)
        g_step[i] = (uint8_t)(i * 7u + (i >> 8));
}

static inline uint8_t pattern_base(uint32_t conn, uint64_t iter)
{
    return (uint8_t)(conn * 131u + iter * 31u);
}

/* Writes bytes OFF..OFF+LEN of the message with BASE into P. */
static void pattern_fill(uint8_t *p, uint32_t off, uint32_t len, uint8_t base)
{
    const uint8_t *q = g_step + off;
    uint32_t i = 0;
    for (; i + 16 <= len; i += 16) {
        v16u8 v;
        memcpy(&v, q + i, 16);
        v += base;
        memcpy(p + i, &v, 16);
    }
    for (; i < len; i++)
        p[i] = (uint8_t)(q[i] + base);
}

/* The first of LEN bytes at P that is not byte OFF+i of the message with
 * BASE, or LEN when all are. */
static uint32_t pattern_check(const uint8_t *p, uint32_t off, uint32_t len, uint8_t base)
{
    const uint8_t *q = g_step + off;
    uint32_t i = 0;
    for (; i + 64 <= len; i += 64) {
        v16u8 diff = {0};
        for (int k = 0; k < 64; k += 16) {
            v16u8 a, b;
            memcpy(&a, p + i + k, 16);
            memcpy(&b, q + i + k, 16);
            diff |= a ^ (v16u8)(b + base);
        }
        uint64_t w[2];
        memcpy(w, &diff, 16);
        if (w[0] | w[1])
            break; /* the byte loop below finds which */
    }
    for (; i < len; i++)
        if (p[i] != (uint8_t)(q[i] + base))
            return i;
    return len;
}

static int send_one(const struct opts *o, struct conn *c, uint32_t idx)
{
    demi_sgarray_t sga = demi_sgaalloc(o->size);
    if (sga.sga_numsegs == 0)
        die("sgaalloc", errno);
    uint32_t off = 0;
    for (uint32_t s = 0; s < sga.sga_numsegs; s++) {
        pattern_fill(sga.sga_segs[s].sgaseg_buf, off, sga.sga_segs[s].sgaseg_len, pattern_base(idx, c->iter));
        off += sga.sga_segs[s].sgaseg_len;
    }
    demi_qtoken_t qt;
    c->t0 = hist_now_ns();
    int e = demi_push(&qt, c->qd, &sga);
    if (e)
        die("push", e);
    demi_sgafree(&sga); /* the push keeps its own reference */
    c->got = 0;
    c->busy = true;
    if ((e = demi_pop(&qt, c->qd)))
        die("pop", e);
    return 0;
}

/* What one client instance measured. */
struct client_part {
    uint32_t first, nconns; /* its connections: indices first.. of --clients */
    uint64_t iters;         /* its share of --iters (0: --seconds) */
    struct hist *h;
    uint64_t done, elapsed_ns;
};

/* Client instances that have finished (--threads): the others keep
 * polling until all have, since frames for one instance that reach
 * another's queue move only while that one polls (libdemi(7)). */
static uint32_t clients_done;
static char client_libos[32]; /* the libOS's name, as the first instance saw it */

static void client_linger(const struct opts *o)
{
    __atomic_add_fetch(&clients_done, 1, __ATOMIC_RELEASE);
    demi_qresult_t qr[BATCH];
    struct timespec tick = {0, 1000 * 1000};
    while (__atomic_load_n(&clients_done, __ATOMIC_ACQUIRE) < o->th.n) {
        int n = 0;
        demi_wait_next_n(qr, BATCH, &n, &tick);
        for (int k = 0; k < n; k++)
            if (qr[k].qr_opcode == DEMI_OPC_POP)
                demi_sgafree(&qr[k].qr_value.sga);
    }
}

/* A connected TCP socket (UDP: one whose default peer is set, as a Linux
 * client's would be) to --addr; dies on failure. */
static int open_conn(const struct opts *o)
{
    int qd, e;
    demi_qtoken_t qt;
    demi_qresult_t qr;
    if ((e = demi_socket(&qd, AF_INET, o->udp ? SOCK_DGRAM : SOCK_STREAM, 0)))
        die("socket", e);
    if ((e = demi_connect(&qt, qd, (const struct sockaddr *)&o->addr, sizeof(o->addr))))
        die("connect", e);
    struct timespec to = {10, 0};
    if ((e = demi_wait(&qr, qt, &to)))
        die("connect wait", e);
    if (qr.qr_opcode != DEMI_OPC_CONNECT)
        die("connect", (int)qr.qr_ret);
    return qd;
}

static void client_run(const struct opts *o, struct client_part *part)
{
    int e;
    uint32_t nconns = part->nconns;
    struct conn *conns = calloc(nconns, sizeof(*conns));
    int maxqd = 0;
    int *byqd = NULL;
    if (!conns)
        die("calloc", ENOMEM);
    for (uint32_t i = 0; i < nconns; i++) {
        conns[i].qd = open_conn(o);
        if (conns[i].qd > maxqd)
            maxqd = conns[i].qd;
    }
    byqd = malloc(sizeof(int) * (size_t)(maxqd + 1));
    if (!byqd)
        die("malloc", ENOMEM);
    for (uint32_t i = 0; i < nconns; i++)
        byqd[conns[i].qd] = (int)i;

    struct hist *h = part->h = malloc(sizeof(*h));
    if (!h)
        die("malloc", ENOMEM);
    hist_init(h);
    uint64_t done = 0, total = 0;
    uint64_t start = hist_now_ns(), measured_start = start;
    uint64_t end_ns = o->seconds > 0 ? start + (uint64_t)(o->seconds * 1e9) : UINT64_MAX;
    bool stopping = false;
    for (uint32_t i = 0; i < nconns; i++)
        send_one(o, &conns[i], part->first + i);
    uint32_t busy = nconns;

    demi_qresult_t qr[BATCH];
    struct timespec to = {10, 0};
    while (busy > 0) {
        int n;
        e = demi_wait_next_n(qr, BATCH, &n, &to);
        if (e == ETIMEDOUT) {
            fprintf(stderr, "demi-echo: no echo for 10 s (server gone?)\n");
            exit(1);
        }
        if (e)
            die("wait", e);
        for (int k = 0; k < n; k++) {
            demi_qresult_t *r = &qr[k];
            if (r->qr_opcode == DEMI_OPC_FAILED)
                die("operation failed", (int)r->qr_ret);
            if (r->qr_opcode != DEMI_OPC_POP)
                continue;
            struct conn *c = &conns[byqd[r->qr_qd]];
            uint32_t idx = part->first + (uint32_t)byqd[r->qr_qd];
            demi_sgarray_t *sga = &r->qr_value.sga;
            if (sga->sga_numsegs == 0) {
                fprintf(stderr, "demi-echo: server closed the connection\n");
                exit(1);
            }
            for (uint32_t s = 0; s < sga->sga_numsegs; s++) {
                uint32_t len = sga->sga_segs[s].sgaseg_len;
                /* Bytes past the message's end are wrong too. */
                uint32_t in = len <= o->size - c->got ? len : o->size - c->got;
                uint32_t i = pattern_check(sga->sga_segs[s].sgaseg_buf, c->got, in, pattern_base(idx, c->iter));
                if (i < len) {
                    fprintf(stderr, "demi-echo: byte %u of echo %llu on connection %u is wrong\n", c->got + i,
                            (unsigned long long)c->iter, idx);
                    exit(1);
                }
                c->got += len;
            }
            demi_sgafree(sga);
            if (c->got < o->size) {
                demi_qtoken_t qt;
                if ((e = demi_pop(&qt, c->qd)))
                    die("pop", e);
                continue;
            }
            uint64_t now = hist_now_ns();
            total++;
            if (total == o->warmup)
                measured_start = now;
            if (total > o->warmup) {
                hist_add(h, now - c->t0);
                done++;
            }
            c->iter++;
            c->busy = false;
            if ((part->iters && done >= part->iters) || now >= end_ns || stop)
                stopping = true;
            if (stopping) {
                busy--;
                continue;
            }
            if (o->pause_ms && total >= o->warmup) {
                struct timespec ts = {(time_t)(o->pause_ms / 1000), (long)(o->pause_ms % 1000) * 1000000};
                while (nanosleep(&ts, &ts) == -1 && errno == EINTR && !stop)
                    ;
            }
            send_one(o, c, idx);
        }
    }
    part->elapsed_ns = hist_now_ns() - measured_start;
    part->done = done;
    if (part->first == 0)
        snprintf(client_libos, sizeof(client_libos), "%s", libos_name());
    for (uint32_t i = 0; i < nconns; i++)
        demi_close(conns[i].qd);
    if (o->th.n > 1)
        client_linger(o);
    free(byqd);
    free(conns);
}

/* --stream: one connection, pushing the same --size buffer (the push
 * takes its own reference; the bytes never change) with STREAM_DEPTH
 * pushes in flight for --seconds after --warmup of them complete. */
#define STREAM_DEPTH 16

static void client_stream(const struct opts *o)
{
    int qd = open_conn(o), e;
    demi_qtoken_t qt;
    demi_qresult_t qr[BATCH];
    struct timespec to = {10, 0};
    demi_sgarray_t sga = demi_sgaalloc(o->size);
    if (sga.sga_numsegs == 0)
        die("sgaalloc", ENOMEM);
    for (uint32_t i = 0; i < sga.sga_numsegs; i++)
        pattern_fill(sga.sga_segs[i].sgaseg_buf, 0, sga.sga_segs[i].sgaseg_len, 0);
    static struct rate r;
    uint64_t end_ns = UINT64_MAX, completed = 0;
    uint32_t inflight = 0;
    if (o->warmup == 0)
        end_ns = rate_start(&r, hist_now_ns(), o->seconds);
    for (;;) {
        uint64_t now = hist_now_ns();
        bool more = now < end_ns && !stop;
        while (more && inflight < STREAM_DEPTH) {
            if ((e = demi_push(&qt, qd, &sga)))
                die("push", e);
            inflight++;
        }
        if (inflight == 0)
            break;
        int n;
        if ((e = demi_wait_next_n(qr, BATCH, &n, &to)) == ETIMEDOUT) {
            fprintf(stderr, "demi-echo: no push completed for 10 s (server gone?)\n");
            exit(1);
        }
        if (e)
            die("wait", e);
        now = hist_now_ns();
        for (int k = 0; k < n; k++) {
            if (qr[k].qr_opcode == DEMI_OPC_FAILED)
                die("push failed", (int)qr[k].qr_ret);
            if (qr[k].qr_opcode != DEMI_OPC_PUSH)
                continue;
            inflight--;
            if (++completed == o->warmup)
                end_ns = rate_start(&r, now, o->seconds);
            else if (now < end_ns)
                rate_add(&r, o->size, now);
        }
    }
    snprintf(client_libos, sizeof(client_libos), "%s", libos_name());
    demi_sgafree(&sga);
    demi_close(qd);
    rate_print(&r, client_libos, o->size);
}

static struct client_part parts[APP_THREADS_MAX];

/* One --threads client thread: its own instance (app_threads_run). */
static void client_main(void *ctx, uint32_t idx)
{
    client_run(ctx, &parts[idx]);
}

/* Splits --clients and --iters over the threads, runs them, and prints
 * one JSON line for all. */
static void client(const struct opts *o, struct demi_args *args)
{
    uint32_t n = o->th.n;
    step_init(o->size);
    for (uint32_t t = 0, first = 0; t < n; t++) {
        parts[t].first = first;
        parts[t].nconns = o->clients / n + (t < o->clients % n);
        parts[t].iters = o->iters ? o->iters / n + (t < o->iters % n) : 0;
        first += parts[t].nconns;
    }
    if (n > 1 || o->th.ncpus) {
        app_threads_run(&o->th, args, client_main, (void *)o);
    } else {
        int e = demi_init(args);
        if (e)
            die("demi_init", e);
        client_run(o, &parts[0]);
    }
    struct hist *h = parts[0].h;
    uint64_t done = 0;
    double rps = 0;
    for (uint32_t t = 0; t < n; t++) {
        if (t)
            hist_merge(h, parts[t].h);
        done += parts[t].done;
        if (parts[t].elapsed_ns)
            rps += (double)parts[t].done * 1e9 / (double)parts[t].elapsed_ns;
    }
    int e;
    if (o->hist && (e = hist_write_cdf(h, o->hist)))
        die(o->hist, e);
    printf("{\"libos\":\"%s\",\"proto\":\"%s\",\"size\":%u,\"clients\":%u,\"n\":%llu,"
           "\"p50_us\":%.3f,\"p99_us\":%.3f,\"p999_us\":%.3f,\"mean_us\":%.3f,\"min_us\":%.3f,"
           "\"max_us\":%.3f,\"rps\":%.0f,\"threads\":%u}\n",
           client_libos, o->udp ? "udp" : "tcp", o->size, o->clients, (unsigned long long)done,
           hist_quantile(h, 0.50) / 1e3, hist_quantile(h, 0.99) / 1e3, hist_quantile(h, 0.999) / 1e3,
           hist_mean(h) / 1e3, (done ? h->min : 0) / 1e3, h->max / 1e3, rps, n);
    for (uint32_t t = 0; t < n; t++)
        free(parts[t].h);
    free(g_step);
    g_step = NULL;
}

int main(int argc, char **argv)
{
    struct opts o;
    parse(argc, argv, &o);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct demi_args args = {.argc = argc, .argv = argv, .callback = NULL};
    if (o.stream) {
        int e = demi_init(&args);
        if (e)
            die("demi_init", e);
        step_init(o.size);
        client_stream(&o);
        free(g_step);
        return 0;
    }
    if (!o.server) {
        client(&o, &args);
        return 0;
    }
    if (o.th.n > 1 || o.th.ncpus) {
        app_threads_run(&o.th, &args, server_main, &o);
        return 0;
    }
    int e = demi_init(&args);
    if (e)
        die("demi_init", e);
    server(&o, 0);
    return 0;
}
