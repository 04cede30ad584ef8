/*
 * demi-relay: the UDP relay of the Demikernel paper, on PDPIX. Uses only
 * libdemi's public API, so it runs on any libOS (LIBOS=...).
 *
 *   demi-relay --pair IP:PORT=IP:PORT [--pair ...] [--depth N]
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
 * It prints "ready A=B A=B ..." (the bound addresses, in --pair order) once
 * every socket is bound, and on SIGINT or SIGTERM prints per-pair counts to
 * stderr and exits 0.
 */
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

#define BATCH     64
#define MAX_DEPTH 256

struct side {
    int qd;
    struct sockaddr_in local;
    struct sockaddr_in peer; /* last sender to this side */
    bool has_peer;
    demi_qtoken_t pops[MAX_DEPTH]; /* outstanding pops, to tell them from pushes */
    uint64_t in;                   /* datagrams received on this side */
    uint64_t dropped;              /* of those, dropped: the other side had no peer */
    uint64_t sent;                 /* datagrams pushed out of this side */
    uint64_t send_failed;          /* pushes out of this side that failed */
};

struct pair {
    struct side s[2];
};

static volatile sig_atomic_t stop;
static struct pair *pairs;
static size_t npairs;
static struct side **by_qd;
static size_t by_qd_cap;

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
            "       demi-relay --help | --version\n"
            "  forwards UDP datagrams arriving on one address of a pair out of the other,\n"
            "  to the address that last sent to that other side\n"
            "  --pair A=B   two local UDP addresses relayed to each other (port 0 picks a free\n"
            "               port); give it once per pair, at least once\n"
            "  --depth N    pops kept outstanding per socket, 1..%d (default 8)\n"
            "  --help       this text\n"
            "  --version    the program's and libdemi's version\n"
            "LIBOS picks the libOS (default catnap); see demi-relay(1) and libdemi(7).\n",
            MAX_DEPTH);
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

static void index_side(struct side *s)
{
    if ((size_t)s->qd >= by_qd_cap) {
        size_t cap = by_qd_cap ? by_qd_cap : 64;
        while (cap <= (size_t)s->qd)
            cap *= 2;
        struct side **t = realloc(by_qd, cap * sizeof(*t));
        if (!t)
            die("realloc", ENOMEM);
        memset(t + by_qd_cap, 0, (cap - by_qd_cap) * sizeof(*t));
        by_qd = t;
        by_qd_cap = cap;
    }
    by_qd[s->qd] = s;
}

static struct side *side_of(int qd)
{
    return qd >= 0 && (size_t)qd < by_qd_cap ? by_qd[qd] : NULL;
}

/* The other side of the pair that @s belongs to. */
static struct side *other(struct side *s)
{
    for (size_t i = 0; i < npairs; i++) {
        if (s == &pairs[i].s[0])
            return &pairs[i].s[1];
        if (s == &pairs[i].s[1])
            return &pairs[i].s[0];
    }
    return NULL;
}

static long depth = 8;

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

static void forward(struct side *from, demi_sgarray_t *sga)
{
    struct side *to = other(from);
    from->in++;
    from->peer = sga->sga_addr;
    from->has_peer = true;
    if (!to->has_peer) {
        from->dropped++;
        demi_sgafree(sga);
        return;
    }
    /* Zero copy: the popped buffer goes out as it came in. (An empty
     * datagram fails here: PDPIX cannot push zero bytes, EINVAL.) */
    demi_qtoken_t qt;
    if (demi_pushto(&qt, to->qd, sga, (const struct sockaddr *)&to->peer, sizeof(to->peer)) != 0)
        to->send_failed++;
    else
        to->sent++;
    demi_sgafree(sga);
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {{"pair", required_argument, 0, 'p'},
                                       {"depth", required_argument, 0, 'd'},
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

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    struct demi_args args = {.argc = argc, .argv = argv};
    int e = demi_init(&args);
    if (e)
        die("demi_init", e);
    for (size_t i = 0; i < npairs; i++) {
        for (int k = 0; k < 2; k++) {
            struct side *s = &pairs[i].s[k];
            if ((e = demi_socket(&s->qd, AF_INET, SOCK_DGRAM, 0)))
                die("socket", e);
            if ((e = demi_bind(s->qd, (const struct sockaddr *)&s->local, sizeof(s->local))))
                die("bind", e);
            socklen_t len = sizeof(s->local);
            if ((e = demi_getsockname(s->qd, (struct sockaddr *)&s->local, &len)))
                die("getsockname", e);
            index_side(s);
            for (long d = 0; d < depth; d++)
                if ((e = demi_pop(&s->pops[d], s->qd)))
                    die("pop", e);
        }
    }
    printf("ready");
    for (size_t i = 0; i < npairs; i++) {
        char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &pairs[i].s[0].local.sin_addr, a, sizeof(a));
        inet_ntop(AF_INET, &pairs[i].s[1].local.sin_addr, b, sizeof(b));
        printf(" %s:%u=%s:%u", a, ntohs(pairs[i].s[0].local.sin_port), b, ntohs(pairs[i].s[1].local.sin_port));
    }
    printf("\n");
    fflush(stdout);

    demi_qresult_t qr[BATCH];
    struct timespec tick = {0, 100 * 1000 * 1000};
    while (!stop) {
        int n = 0;
        e = demi_wait_next_n(qr, BATCH, &n, &tick);
        if (e && e != ETIMEDOUT)
            die("wait", e);
        for (int i = 0; i < n; i++) {
            demi_qresult_t *r = &qr[i];
            struct side *s = side_of(r->qr_qd);
            if (!s)
                continue;
            switch (r->qr_opcode) {
            case DEMI_OPC_POP:
                forward(s, &r->qr_value.sga);
                repop(s, r->qr_qt);
                break;
            case DEMI_OPC_FAILED:
                if (r->qr_ret == ECANCELED)
                    break;
                if (is_pop(s, r->qr_qt)) {
                    /* A failed receive is re-armed: one bad datagram or
                     * ICMP error must not stop the pair. */
                    fprintf(stderr, "demi-relay: receive on qd %d: %s\n", r->qr_qd, strerror((int)r->qr_ret));
                    repop(s, r->qr_qt);
                } else {
                    s->sent--;
                    s->send_failed++;
                }
                break;
            default:
                break;
            }
        }
    }
    for (size_t i = 0; i < npairs; i++) {
        struct side *a = &pairs[i].s[0], *b = &pairs[i].s[1];
        fprintf(stderr,
                "demi-relay: pair %zu: A received %llu (%llu dropped: B had no peer), B sent %llu (%llu failed); "
                "B received %llu (%llu dropped: A had no peer), A sent %llu (%llu failed)\n",
                i, (unsigned long long)a->in, (unsigned long long)a->dropped, (unsigned long long)b->sent,
                (unsigned long long)b->send_failed, (unsigned long long)b->in, (unsigned long long)b->dropped,
                (unsigned long long)a->sent, (unsigned long long)a->send_failed);
        demi_close(a->qd);
        demi_close(b->qd);
    }
    free(by_qd);
    free(pairs);
    return 0;
}
