/*
 * demi-relay: the UDP relay of the Demikernel paper, on PDPIX. Uses only
 * libdemi's public API, so it runs on any libOS (LIBOS=...).
 *
 *   demi-relay --pair IP:PORT=IP:PORT [--pair ...] [--depth N] [--threads N] [--cpus LIST]
 *   demi-relay --help | --version
 *
 * Each --pair names two local UDP addresses, side A and side B (port 0
 * picks a free port). A datagram that arrives on A is sent out of B to B's
 * peer, and one that arrives on B is sent out of A to A's peer, where a
 * side's peer is the address that last sent a datagram to that side (the
 * way a media relay learns its two clients). A datagram arriving while the
 * other side has no peer yet is dropped and counted. Pairs are independent.
 *
 * Zero copy: the relay pushes the very buffer it popped (demi_pushto of the
 * popped array); the push holds its own reference, so the buffer is freed
 * right after. --depth pops (default 8) stay outstanding per socket, so a
 * burst is drained without a round trip through the loop per datagram.
 *
 * With --threads N, N threads each run the relay on their own libdemi
 * instance sharing the device (libdemi(7), MULTIPLE INSTANCES): every
 * instance binds every side, and a datagram is relayed by the instance it
 * reaches. The one thing the instances share is each side's peer, a 64-bit
 * word written only when it changes and read with relaxed atomics, so that
 * a peer learned on one instance is the destination for all of them.
 *
 * It prints "ready A=B A=B ..." (the bound addresses, in --pair order) once
 * every socket of every instance is bound, and on SIGINT or SIGTERM prints
 * per-pair counts (and with --threads, one line per thread) to stderr and
 * exits 0.
 */
#include "threads.h"

#include <demi/libos.h>
#include <demi/sga.h>
#include <demi/version.h>
#include <demi/wait.h>

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH     64
#define MAX_DEPTH 256

/* What the instances share about one side: its address, and its peer. */
struct side_cfg {
    struct sockaddr_in local;
    _Atomic uint64_t peer; /* 0: none yet; else peer_word() of the last sender */
};

struct pair {
    struct side_cfg s[2];
};

/* Counts of one side, per instance, summed at the end. */
struct side_count {
    uint64_t in;          /* datagrams received on this side */
    uint64_t dropped;     /* of those, dropped: the other side had no peer */
    uint64_t sent;        /* datagrams pushed out of this side */
    uint64_t send_failed; /* pushes out of this side that failed */
};

/* One side on one instance. */
struct side {
    struct side_cfg *cfg;
    struct side *other;
    int qd;
    demi_qtoken_t pops[MAX_DEPTH]; /* outstanding pops, to tell them from pushes */
    struct side_count n;
};

/* One instance: every side of every pair. */
struct relay {
    uint32_t idx;
    struct side *sides; /* 2 * npairs: pair i's A at 2i, B at 2i + 1 */
    struct side **by_qd;
    size_t by_qd_cap;
};

static volatile sig_atomic_t stop;
static struct pair *pairs;
static size_t npairs;
static long depth = 8;
static struct app_threads threads = {.prog = "demi-relay", .n = 1};
static struct side_count *totals; /* 2 * npairs, summed under totals_lock */
static pthread_mutex_t totals_lock = PTHREAD_MUTEX_INITIALIZER;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void die(const char *what, int err)
{
    fprintf(stderr, "demi-relay: %s: %s\n", what, strerror(err));
    exit(1);
}

/* On stdout for --help (exit 0), on stderr for a mistake (exit 2). Every
 * option of main()'s table is here and in demi-relay(1). */
static void usage(FILE *f, int status)
{
    fprintf(f,
            "usage: demi-relay --pair IP:PORT=IP:PORT [--pair IP:PORT=IP:PORT ...] [--depth N]\n"
            "                  [--threads N] [--cpus LIST]\n"
            "       demi-relay --help | --version\n"
            "  forwards UDP datagrams arriving on one address of a pair out of the other,\n"
            "  to the address that last sent to that other side\n"
            "  --pair A=B   two local UDP addresses relayed to each other (port 0 picks a free\n"
            "               port); give it once per pair, at least once\n"
            "  --depth N    pops kept outstanding per socket, 1..%d (default 8)\n"
            "  --threads N  N threads, each its own libdemi instance on the shared device (1..%d,\n"
            "               default 1; sets QUEUES=N); ports must be fixed and below 49152\n"
            "  --cpus LIST  pin thread i to the i-th CPU of LIST (e.g. 0,1)\n"
            "  --help       this text\n"
            "  --version    the program's and libdemi's version\n"
            "LIBOS picks the libOS (default catnap); see demi-relay(1) and libdemi(7).\n",
            MAX_DEPTH, APP_THREADS_MAX);
    exit(status);
}

static int parse_addr(const char *s, size_t n, struct sockaddr_in *out)
{
    char buf[64];
    if (n >= sizeof(buf))
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *colon = strrchr(buf, ':');
    if (!colon || colon[1] == '\0')
        return -1;
    *colon = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535)
        return -1;
    memset(out, 0, sizeof(*out));
    out->sin_family = AF_INET;
    out->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, buf, &out->sin_addr) == 1 ? 0 : -1;
}

static void add_pair(const char *spec)
{
    const char *eq = strchr(spec, '=');
    struct pair p;
    memset(&p, 0, sizeof(p));
    atomic_init(&p.s[0].peer, 0);
    atomic_init(&p.s[1].peer, 0);
    if (!eq || parse_addr(spec, (size_t)(eq - spec), &p.s[0].local) ||
        parse_addr(eq + 1, strlen(eq + 1), &p.s[1].local)) {
        fprintf(stderr, "demi-relay: --pair: expected IP:PORT=IP:PORT, got %s\n", spec);
        exit(2);
    }
    struct pair *np = realloc(pairs, (npairs + 1) * sizeof(*np));
    if (!np)
        die("realloc", ENOMEM);
    pairs = np;
    pairs[npairs++] = p;
}

static void index_side(struct relay *r, struct side *s)
{
    if ((size_t)s->qd >= r->by_qd_cap) {
        size_t cap = r->by_qd_cap ? r->by_qd_cap : 64;
        while (cap <= (size_t)s->qd)
            cap *= 2;
        struct side **t = realloc(r->by_qd, cap * sizeof(*t));
        if (!t)
            die("realloc", ENOMEM);
        memset(t + r->by_qd_cap, 0, (cap - r->by_qd_cap) * sizeof(*t));
        r->by_qd = t;
        r->by_qd_cap = cap;
    }
    r->by_qd[s->qd] = s;
}

static struct side *side_of(const struct relay *r, int qd)
{
    return qd >= 0 && (size_t)qd < r->by_qd_cap ? r->by_qd[qd] : NULL;
}

/* Replaces the outstanding pop @done of side @s with a new one. */
static void repop(struct side *s, demi_qtoken_t done)
{
    for (long i = 0; i < depth; i++) {
        if (s->pops[i] == done) {
            int e = demi_pop(&s->pops[i], s->qd);
            if (e)
                die("pop", e);
            return;
        }
    }
}

static bool is_pop(const struct side *s, demi_qtoken_t qt)
{
    for (long i = 0; i < depth; i++)
        if (s->pops[i] == qt)
            return true;
    return false;
}

/* An IPv4 address and port as one word, never 0. */
static uint64_t peer_word(const struct sockaddr_in *a)
{
    return 1ull << 48 | (uint64_t)a->sin_addr.s_addr << 16 | a->sin_port;
}

static struct sockaddr_in peer_addr(uint64_t w)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = (uint32_t)(w >> 16);
    a.sin_port = (uint16_t)w;
    return a;
}

static void forward(struct side *from, demi_sgarray_t *sga)
{
    struct side *to = from->other;
    from->n.in++;
    /* Written only when it changes: the word stays in every instance's
     * cache while the peers stay the same. */
    uint64_t w = peer_word(&sga->sga_addr);
    if (atomic_load_explicit(&from->cfg->peer, memory_order_relaxed) != w)
        atomic_store_explicit(&from->cfg->peer, w, memory_order_relaxed);
    uint64_t tw = atomic_load_explicit(&to->cfg->peer, memory_order_relaxed);
    if (!tw) {
        from->n.dropped++;
        demi_sgafree(sga);
        return;
    }
    struct sockaddr_in dst = peer_addr(tw);
    /* Zero copy: the popped buffer goes out as it came in. (An empty
     * datagram fails here: PDPIX cannot push zero bytes, EINVAL.) */
    demi_qtoken_t qt;
    if (demi_pushto(&qt, to->qd, sga, (const struct sockaddr *)&dst, sizeof(dst)) != 0)
        to->n.send_failed++;
    else
        to->n.sent++;
    demi_sgafree(sga);
}

/* Binds every side on this instance and arms its pops. */
static void relay_open(struct relay *r)
{
    int e;
    r->sides = calloc(2 * npairs, sizeof(*r->sides));
    if (!r->sides)
        die("calloc", ENOMEM);
    for (size_t i = 0; i < 2 * npairs; i++) {
        struct side *s = &r->sides[i];
        s->cfg = &pairs[i / 2].s[i % 2];
        s->other = &r->sides[i ^ 1];
        if ((e = demi_socket(&s->qd, AF_INET, SOCK_DGRAM, 0)))
            die("socket", e);
        if ((e = demi_bind(s->qd, (const struct sockaddr *)&s->cfg->local, sizeof(s->cfg->local))))
            die("bind", e);
        if (threads.n == 1) { /* port 0 allowed: learn the port picked */
            socklen_t len = sizeof(s->cfg->local);
            if ((e = demi_getsockname(s->qd, (struct sockaddr *)&s->cfg->local, &len)))
                die("getsockname", e);
        }
        index_side(r, s);
        for (long d = 0; d < depth; d++)
            if ((e = demi_pop(&s->pops[d], s->qd)))
                die("pop", e);
    }
}

static void relay_loop(struct relay *r)
{
    demi_qresult_t qr[BATCH];
    struct timespec tick = {0, 100 * 1000 * 1000};
    while (!stop) {
        int n = 0;
        int e = demi_wait_next_n(qr, BATCH, &n, &tick);
        if (e && e != ETIMEDOUT)
            die("wait", e);
        for (int i = 0; i < n; i++) {
            demi_qresult_t *q = &qr[i];
            struct side *s = side_of(r, q->qr_qd);
            if (!s)
                continue;
            switch (q->qr_opcode) {
            case DEMI_OPC_POP:
                forward(s, &q->qr_value.sga);
                repop(s, q->qr_qt);
                break;
            case DEMI_OPC_FAILED:
                if (q->qr_ret == ECANCELED)
                    break;
                if (is_pop(s, q->qr_qt)) {
                    /* A failed receive is re-armed: one bad datagram or
                     * ICMP error must not stop the pair. */
                    fprintf(stderr, "demi-relay: receive on qd %d: %s\n", q->qr_qd, strerror((int)q->qr_ret));
                    repop(s, q->qr_qt);
                } else {
                    s->n.sent--;
                    s->n.send_failed++;
                }
                break;
            default:
                break;
            }
        }
    }
}

/* Adds this instance's counts to the totals and closes its sockets. */
static void relay_close(struct relay *r)
{
    uint64_t in = 0, sent = 0;
    pthread_mutex_lock(&totals_lock);
    for (size_t i = 0; i < 2 * npairs; i++) {
        struct side_count *t = &totals[i], *c = &r->sides[i].n;
        t->in += c->in;
        t->dropped += c->dropped;
        t->sent += c->sent;
        t->send_failed += c->send_failed;
        in += c->in;
        sent += c->sent;
    }
    pthread_mutex_unlock(&totals_lock);
    demi_stats_t st;
    if (threads.n > 1 && demi_get_stats(&st) == 0)
        fprintf(stderr,
                "demi-relay: thread %u queue=%u/%u received=%llu sent=%llu rx_frames=%llu frames_handed_out=%llu "
                "frames_handed_in=%llu\n",
                r->idx, st.queue, st.queues, (unsigned long long)in, (unsigned long long)sent,
                (unsigned long long)st.rx_frames, (unsigned long long)st.frames_handed_out,
                (unsigned long long)st.frames_handed_in);
    for (size_t i = 0; i < 2 * npairs; i++)
        demi_close(r->sides[i].qd);
    free(r->sides);
    free(r->by_qd);
}

static void print_ready(void)
{
    printf("ready");
    for (size_t i = 0; i < npairs; i++) {
        char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &pairs[i].s[0].local.sin_addr, a, sizeof(a));
        inet_ntop(AF_INET, &pairs[i].s[1].local.sin_addr, b, sizeof(b));
        printf(" %s:%u=%s:%u", a, ntohs(pairs[i].s[0].local.sin_port), b, ntohs(pairs[i].s[1].local.sin_port));
    }
    printf("\n");
    fflush(stdout);
}

/* One instance's relay, on the calling thread (app_threads_run with
 * --threads, or main's). */
static void relay_main(void *ctx, uint32_t idx)
{
    (void)ctx;
    struct relay r = {.idx = idx};
    relay_open(&r);
    app_threads_bound(&threads);
    if (idx == 0)
        print_ready();
    relay_loop(&r);
    relay_close(&r);
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {{"pair", required_argument, 0, 'p'},
                                       {"depth", required_argument, 0, 'd'},
                                       {"threads", required_argument, 0, 'T'},
                                       {"cpus", required_argument, 0, 'C'},
                                       {"help", no_argument, 0, 'h'},
                                       {"version", no_argument, 0, 'V'},
                                       {0, 0, 0, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (opt == 'p') {
            add_pair(optarg);
        } else if (opt == 'd') {
            char *end;
            depth = strtol(optarg, &end, 10);
            if (*end || depth < 1 || depth > MAX_DEPTH) {
                fprintf(stderr, "demi-relay: --depth must be 1..%d\n", MAX_DEPTH);
                exit(2);
            }
        } else if (opt == 'T') {
            app_threads_parse_n(&threads, optarg);
        } else if (opt == 'C') {
            app_threads_parse_cpus(&threads, optarg);
        } else if (opt == 'h') {
            usage(stdout, 0);
        } else if (opt == 'V') {
            printf("demi-relay (libdemi) %s\n", demi_version());
            exit(0);
        } else {
            usage(stderr, 2);
        }
    }
    if (optind != argc || npairs == 0)
        usage(stderr, 2);
    for (size_t i = 0; i < 2 * npairs && threads.n > 1; i++) {
        uint16_t port = ntohs(pairs[i / 2].s[i % 2].local.sin_port);
        if (port == 0 || port >= 49152) {
            fprintf(stderr,
                    "demi-relay: --threads %u: give fixed ports below 49152 (the threads share them; ephemeral\n"
                    "            ports each belong to one instance), got %u\n",
                    threads.n, port);
            exit(2);
        }
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    totals = calloc(2 * npairs, sizeof(*totals));
    if (!totals)
        die("calloc", ENOMEM);
    struct demi_args args = {.argc = argc, .argv = argv};
    if (threads.n > 1 || threads.ncpus) {
        app_threads_run(&threads, &args, relay_main, NULL);
    } else {
        int e = demi_init(&args);
        if (e)
            die("demi_init", e);
        relay_main(NULL, 0);
    }
    for (size_t i = 0; i < npairs; i++) {
        struct side_count *a = &totals[2 * i], *b = &totals[2 * i + 1];
        fprintf(stderr,
                "demi-relay: pair %zu: A received %llu (%llu dropped: B had no peer), B sent %llu (%llu failed); "
                "B received %llu (%llu dropped: A had no peer), A sent %llu (%llu failed)\n",
                i, (unsigned long long)a->in, (unsigned long long)a->dropped, (unsigned long long)b->sent,
                (unsigned long long)b->send_failed, (unsigned long long)b->in, (unsigned long long)b->dropped,
                (unsigned long long)a->sent, (unsigned long long)a->send_failed);
    }
    free(totals);
    free(pairs);
    return 0;
}
