/*
 * demi-echo: TCP/UDP echo server and latency-measuring client on PDPIX.
 * Same binary on every libOS (LIBOS=...). Uses only the public API.
 *
 *   demi-echo server|client [--udp] --addr IP:PORT [--size BYTES]
 *             [--iters N | --seconds S] [--clients N] [--hist FILE] [--warmup N]
 *
 * The server echoes each popped array back with zero copies (it pushes the
 * very buffer it popped) and prints "ready IP:PORT" once it listens. The
 * client runs round trips over --clients connections at once, checks every
 * echoed byte, and prints one JSON line with the latency percentiles.
 */
#include "hist.h"

#include <demi/libos.h>
#include <demi/sga.h>
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
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void usage(void)
{
    fprintf(stderr, "usage: demi-echo server|client [--udp] --addr IP:PORT [--size BYTES] "
                    "[--iters N | --seconds S] [--clients N] [--hist FILE] [--warmup N]\n");
    exit(2);
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
                                       {0, 0, 0, 0}};
    memset(o, 0, sizeof(*o));
    o->size = 64;
    o->clients = 1;
    o->warmup = 1000;
    bool have_addr = false, have_iters = false;
    if (argc < 2)
        usage();
    if (strcmp(argv[1], "server") == 0)
        o->server = true;
    else if (strcmp(argv[1], "client") != 0)
        usage();
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
        default:
            usage();
        }
    }
    if (optind != argc || !have_addr)
        usage();
    if (have_iters && o->seconds > 0) {
        fprintf(stderr, "demi-echo: give --iters or --seconds, not both\n");
        exit(2);
    }
    if (!have_iters && o->seconds <= 0)
        o->iters = 100000;
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

static void server(const struct opts *o)
{
    int lqd, e;
    if ((e = demi_socket(&lqd, AF_INET, o->udp ? SOCK_DGRAM : SOCK_STREAM, 0)))
        die("socket", e);
    if ((e = demi_bind(lqd, (const struct sockaddr *)&o->addr, sizeof(o->addr))))
        die("bind", e);
    demi_qtoken_t qt;
    if (o->udp) {
        if ((e = demi_pop(&qt, lqd)))
            die("pop", e);
    } else {
        if ((e = demi_listen(lqd, 1024)))
            die("listen", e);
        if ((e = demi_accept(&qt, lqd)))
            die("accept", e);
    }
    struct sockaddr_in local;
    socklen_t len = sizeof(local);
    if ((e = demi_getsockname(lqd, (struct sockaddr *)&local, &len)))
        die("getsockname", e);
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &local.sin_addr, ip, sizeof(ip));
    printf("ready %s:%u\n", ip, ntohs(local.sin_port));
    fflush(stdout);

    demi_qresult_t qr[BATCH];
    struct timespec tick = {0, 100 * 1000 * 1000};
    while (!stop) {
        int n;
        e = demi_wait_next_n(qr, BATCH, &n, &tick);
        if (e == ETIMEDOUT)
            continue;
        if (e)
            die("wait", e);
        for (int i = 0; i < n; i++) {
            demi_qresult_t *r = &qr[i];
            int qd = r->qr_qd;
            switch (r->qr_opcode) {
            case DEMI_OPC_ACCEPT:
                if ((e = demi_pop(&qt, r->qr_value.ares.qd)))
                    die("pop", e);
                if ((e = demi_accept(&qt, lqd)))
                    die("accept", e);
                break;
            case DEMI_OPC_POP: {
                demi_sgarray_t *sga = &r->qr_value.sga;
                if (sga->sga_numsegs == 0) { /* the client closed */
                    demi_close(qd);
                    break;
                }
                /* Zero copy: push back the very buffer we popped. The push
                 * holds its own reference, so freeing now is safe. */
                if (o->udp)
                    e = demi_pushto(&qt, qd, sga, (const struct sockaddr *)&sga->sga_addr, sizeof(sga->sga_addr));
                else
                    e = demi_push(&qt, qd, sga);
                if (e)
                    die("push", e);
                demi_sgafree(sga);
                if ((e = demi_pop(&qt, qd)))
                    die("pop", e);
                break;
            }
            case DEMI_OPC_PUSH:
                break;
            case DEMI_OPC_FAILED:
                if (r->qr_ret != ECANCELED && qd != lqd)
                    demi_close(qd); /* reset or error on one connection */
                else if (qd == lqd && r->qr_ret != ECANCELED)
                    die("listening queue", (int)r->qr_ret);
                break;
            default:
                break;
            }
        }
    }
    demi_close(lqd);
}

/* ---- client ---- */

struct conn {
    int qd;
    uint64_t iter; /* round trip number on this connection */
    uint32_t got;  /* bytes of the current echo received */
    uint64_t t0;
    bool busy;
};

static inline uint8_t pattern(uint32_t conn, uint64_t iter, uint32_t i)
{
    return (uint8_t)(conn * 131u + iter * 31u + i * 7u + (i >> 8));
}

static int send_one(const struct opts *o, struct conn *c, uint32_t idx)
{
    demi_sgarray_t sga = demi_sgaalloc(o->size);
    if (sga.sga_numsegs == 0)
        die("sgaalloc", errno);
    uint32_t off = 0;
    for (uint32_t s = 0; s < sga.sga_numsegs; s++) {
        uint8_t *p = sga.sga_segs[s].sgaseg_buf;
        for (uint32_t i = 0; i < sga.sga_segs[s].sgaseg_len; i++)
            p[i] = pattern(idx, c->iter, off + i);
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

static void client(const struct opts *o)
{
    int e;
    struct conn *conns = calloc(o->clients, sizeof(*conns));
    int maxqd = 0;
    int *byqd = NULL;
    if (!conns)
        die("calloc", ENOMEM);
    for (uint32_t i = 0; i < o->clients; i++) {
        if ((e = demi_socket(&conns[i].qd, AF_INET, o->udp ? SOCK_DGRAM : SOCK_STREAM, 0)))
            die("socket", e);
        {
            /* TCP: connect; UDP: set the default peer, as a Linux client would. */
            demi_qtoken_t qt;
            demi_qresult_t qr;
            if ((e = demi_connect(&qt, conns[i].qd, (const struct sockaddr *)&o->addr, sizeof(o->addr))))
                die("connect", e);
            struct timespec to = {10, 0};
            if ((e = demi_wait(&qr, qt, &to)))
                die("connect wait", e);
            if (qr.qr_opcode != DEMI_OPC_CONNECT)
                die("connect", (int)qr.qr_ret);
        }
        if (conns[i].qd > maxqd)
            maxqd = conns[i].qd;
    }
    byqd = malloc(sizeof(int) * (size_t)(maxqd + 1));
    if (!byqd)
        die("malloc", ENOMEM);
    for (uint32_t i = 0; i < o->clients; i++)
        byqd[conns[i].qd] = (int)i;

    struct hist *h = malloc(sizeof(*h));
    if (!h)
        die("malloc", ENOMEM);
    hist_init(h);
    uint64_t done = 0, total = 0;
    uint64_t start = hist_now_ns(), measured_start = start;
    uint64_t end_ns = o->seconds > 0 ? start + (uint64_t)(o->seconds * 1e9) : UINT64_MAX;
    bool stopping = false;
    for (uint32_t i = 0; i < o->clients; i++)
        send_one(o, &conns[i], i);
    uint32_t busy = o->clients;

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
            uint32_t idx = (uint32_t)byqd[r->qr_qd];
            struct conn *c = &conns[idx];
            demi_sgarray_t *sga = &r->qr_value.sga;
            if (sga->sga_numsegs == 0) {
                fprintf(stderr, "demi-echo: server closed the connection\n");
                exit(1);
            }
            for (uint32_t s = 0; s < sga->sga_numsegs; s++) {
                const uint8_t *p = sga->sga_segs[s].sgaseg_buf;
                for (uint32_t i = 0; i < sga->sga_segs[s].sgaseg_len; i++) {
                    if (c->got + i >= o->size || p[i] != pattern(idx, c->iter, c->got + i)) {
                        fprintf(stderr, "demi-echo: byte %u of echo %llu on connection %u is wrong\n", c->got + i,
                                (unsigned long long)c->iter, idx);
                        exit(1);
                    }
                }
                c->got += sga->sga_segs[s].sgaseg_len;
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
            if ((o->iters && done >= o->iters) || now >= end_ns || stop)
                stopping = true;
            if (stopping) {
                busy--;
                continue;
            }
            send_one(o, c, idx);
        }
    }
    uint64_t elapsed = hist_now_ns() - measured_start;
    for (uint32_t i = 0; i < o->clients; i++)
        demi_close(conns[i].qd);
    if (o->hist && (e = hist_write_cdf(h, o->hist)))
        die(o->hist, e);
    printf("{\"libos\":\"%s\",\"proto\":\"%s\",\"size\":%u,\"clients\":%u,\"n\":%llu,"
           "\"p50_us\":%.3f,\"p99_us\":%.3f,\"p999_us\":%.3f,\"mean_us\":%.3f,\"min_us\":%.3f,"
           "\"max_us\":%.3f,\"rps\":%.0f}\n",
           libos_name(), o->udp ? "udp" : "tcp", o->size, o->clients, (unsigned long long)done,
           hist_quantile(h, 0.50) / 1e3, hist_quantile(h, 0.99) / 1e3, hist_quantile(h, 0.999) / 1e3,
           hist_mean(h) / 1e3, (done ? h->min : 0) / 1e3, h->max / 1e3,
           elapsed ? (double)done * 1e9 / (double)elapsed : 0.0);
    free(h);
    free(byqd);
    free(conns);
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
    int e = demi_init(&args);
    if (e)
        die("demi_init", e);
    if (o.server)
        server(&o);
    else
        client(&o);
    return 0;
}
