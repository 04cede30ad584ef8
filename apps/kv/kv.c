/*
 * demi-kv: a Redis-protocol (RESP2) key-value server on PDPIX, one thread,
 * any libOS (LIBOS=...). Uses only libdemi's public API.
 *
 *   demi-kv [--addr IP:PORT]      (default 127.0.0.1:6379; port 0 picks one)
 *
 * Prints "ready IP:PORT" once it listens; SIGINT or SIGTERM stop it (exit
 * status 0). The loop keeps one pop outstanding per connection and waits
 * for completions with demi_wait_next_n. Each popped buffer is parsed in
 * place (resp.c); only a command split across pops is copied, into the
 * connection's own buffer, until it completes. The replies of everything
 * one pop carried are gathered (reply.c) and pushed at the end of it, in
 * as few pushes as the 16-segment limit allows, with GET's values pointing
 * at the stored heap buffers (zero copy). Expired keys go lazily on access
 * and actively, by sampling, every 100 ms.
 */
#include "cmd.h"
#include "reply.h"
#include "resp.h"

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
#include <sys/resource.h>
#include <time.h>

#define BATCH 64
/* Redis's client-query-buffer-limit: a client whose unparsed input grows
 * past this is disconnected. */
#define QUERY_LIMIT ((size_t)1 << 30)
/* Active expiry: every 100 ms (Redis's hz 10), for at most 1 ms. */
#define EXPIRE_PERIOD_NS (100 * 1000 * 1000LL)
#define EXPIRE_BUDGET_US 1000

struct conn {
    int qd;
    struct kv_client cl;
    struct resp_parser p;
    uint8_t *in; /* the start of an incomplete command, and what followed it */
    size_t in_len, in_cap;
    uint32_t pushes; /* pushes not yet completed */
    bool closing;    /* close once the pushes complete; no more pops */
};

static volatile sig_atomic_t stop;
static struct kv_server srv;
static struct reply out;
static struct conn **conns; /* indexed by qd */
static size_t nconns_cap;
static int listen_qd = -1;
/* The time commands see: read once per popped batch (and for each active
 * expiry round), not once per command. */
static int64_t batch_now;

static int64_t batch_clock(void)
{
    return batch_now;
}

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void die(const char *what, int err)
{
    fprintf(stderr, "demi-kv: %s: %s\n", what, strerror(err));
    exit(1);
}

static void usage(void)
{
    fprintf(stderr, "usage: demi-kv [--addr IP:PORT]   (default 127.0.0.1:6379)\n");
    exit(2);
}

static int parse_addr(const char *s, struct sockaddr_in *out_addr)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof(host) || colon[1] == '\0')
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535)
        return -1;
    memset(out_addr, 0, sizeof(*out_addr));
    out_addr->sin_family = AF_INET;
    out_addr->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &out_addr->sin_addr) == 1 ? 0 : -1;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- connections ---- */

static struct conn *conn_of(int qd)
{
    return qd >= 0 && (size_t)qd < nconns_cap ? conns[qd] : NULL;
}

static void conn_close(struct conn *c)
{
    /* Cancels the pending pop and pushes: their ECANCELED results find no
     * connection and are ignored. */
    demi_close(c->qd);
    conns[c->qd] = NULL;
    resp_free(&c->p);
    kv_client_free(&c->cl);
    free(c->in);
    free(c);
    srv.connected_clients--;
}

static int conn_push(void *arg, const demi_sgarray_t *sga)
{
    struct conn *c = arg;
    demi_qtoken_t qt;
    int e = demi_push(&qt, c->qd, sga);
    if (e)
        return e;
    c->pushes++;
    srv.pushes++;
    return 0;
}

static void conn_new(int qd)
{
    if ((size_t)qd >= nconns_cap) {
        size_t cap = nconns_cap ? nconns_cap : 256;
        while (cap <= (size_t)qd)
            cap *= 2;
        struct conn **t = realloc(conns, cap * sizeof(*t));
        if (!t) {
            demi_close(qd);
            return;
        }
        memset(t + nconns_cap, 0, (cap - nconns_cap) * sizeof(*t));
        conns = t;
        nconns_cap = cap;
    }
    struct conn *c = calloc(1, sizeof(*c));
    demi_qtoken_t qt;
    if (!c || demi_pop(&qt, qd) != 0) {
        free(c);
        demi_close(qd);
        return;
    }
    c->qd = qd;
    kv_client_init(&srv, &c->cl);
    resp_init(&c->p);
    conns[qd] = c;
    srv.connections_received++;
    srv.connected_clients++;
}

/* Makes room for @want bytes of pending input. */
static bool in_reserve(struct conn *c, size_t want)
{
    if (want <= c->in_cap)
        return true;
    if (want > QUERY_LIMIT + RESP_MAX_INLINE)
        return false;
    size_t cap = c->in_cap ? c->in_cap : 4096;
    while (cap < want)
        cap *= 2;
    uint8_t *p = realloc(c->in, cap);
    if (!p)
        return false;
    c->in = p;
    c->in_cap = cap;
    return true;
}

/*
 * Parses and runs the commands in [buf, buf + len), which starts at a
 * command boundary. Returns how many bytes it consumed; the rest is the
 * start of an incomplete command. Sets c->closing on a protocol error or
 * QUIT (the rest is then ignored, as Redis does).
 */
static size_t run_commands(struct conn *c, const uint8_t *buf, size_t len)
{
    size_t off = 0;
    while (off < len && !c->closing) {
        size_t used;
        int st = resp_parse(&c->p, buf + off, len - off, &used);
        if (st == RESP_MORE)
            break;
        if (st == RESP_CMD) {
            kv_exec(&srv, &c->cl, c->p.argc, c->p.argv, &out);
            if (c->cl.close_after_reply)
                c->closing = true;
        } else if (st == RESP_ERROR) {
            reply_error(&out, c->p.err);
            c->closing = true;
        } else if (st == RESP_NOMEM) {
            c->closing = true;
        }
        off += used;
    }
    return off;
}

/* Feeds one popped segment to the connection's parser. */
static void conn_input(struct conn *c, const uint8_t *data, size_t len)
{
    if (c->in_len == 0) {
        /* The common case: parse the popped buffer in place. */
        size_t off = run_commands(c, data, len);
        if (c->closing || off == len)
            return;
        data += off;
        len -= off;
    }
    /* Keep the incomplete command (and whatever follows) until the rest
     * arrives; the parser remembers how far it got. */
    if (c->in_len + len > QUERY_LIMIT || !in_reserve(c, c->in_len + len)) {
        c->closing = true; /* Redis closes such a client without a reply */
        return;
    }
    memcpy(c->in + c->in_len, data, len);
    c->in_len += len;
    if (c->p.need > c->in_len && c->p.need <= QUERY_LIMIT)
        in_reserve(c, c->p.need); /* a large bulk: grow once, not per pop */
    size_t off = run_commands(c, c->in, c->in_len);
    if (c->closing)
        return;
    if (off > 0) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
    if (c->in_len == 0 && c->in_cap > 65536) {
        free(c->in); /* do not keep a big buffer for an idle connection */
        c->in = NULL;
        c->in_cap = 0;
    }
}

static void conn_popped(struct conn *c, demi_sgarray_t *sga)
{
    if (sga->sga_numsegs == 0) {
        /* The client is done sending (it closed or shut down its side).
         * Replies still on their way go out first, and the last push's
         * completion closes the connection. (Redis 7.0 frees such a client
         * at once and drops the replies it has not written yet; a client
         * that half-closes and then reads gets them all from demi-kv.) */
        c->closing = true;
        if (c->pushes == 0)
            conn_close(c);
        return;
    }
    reply_target(&out, conn_push, c);
    batch_now = kv_now_ms();
    for (uint32_t i = 0; i < sga->sga_numsegs && !c->closing; i++)
        conn_input(c, sga->sga_segs[i].sgaseg_buf, sga->sga_segs[i].sgaseg_len);
    int e = reply_flush(&out);
    demi_sgafree(sga);
    if (e) {
        conn_close(c); /* a push was refused, or no heap left for the reply */
        return;
    }
    if (c->closing) {
        if (c->pushes == 0)
            conn_close(c);
        return; /* the last push's completion closes it */
    }
    demi_qtoken_t qt;
    if (demi_pop(&qt, c->qd) != 0)
        conn_close(c);
}

/* ---- the loop ---- */

static void handle(demi_qresult_t *r)
{
    demi_qtoken_t qt;
    int e;
    switch (r->qr_opcode) {
    case DEMI_OPC_ACCEPT:
        conn_new(r->qr_value.ares.qd);
        if ((e = demi_accept(&qt, listen_qd)))
            die("accept", e);
        break;
    case DEMI_OPC_POP: {
        struct conn *c = conn_of(r->qr_qd);
        if (c)
            conn_popped(c, &r->qr_value.sga);
        else
            demi_sgafree(&r->qr_value.sga);
        break;
    }
    case DEMI_OPC_PUSH: {
        struct conn *c = conn_of(r->qr_qd);
        if (c && c->pushes > 0 && --c->pushes == 0 && c->closing)
            conn_close(c);
        break;
    }
    case DEMI_OPC_FAILED:
        if (r->qr_ret == ECANCELED)
            break; /* an operation of a queue we closed */
        if (r->qr_qd == listen_qd) {
            /* Out of descriptors or memory for one connection: keep
             * serving the others and accept again. */
            fprintf(stderr, "demi-kv: accept: %s\n", strerror((int)r->qr_ret));
            if ((e = demi_accept(&qt, listen_qd)))
                die("accept", e);
            break;
        }
        if (conn_of(r->qr_qd))
            conn_close(conn_of(r->qr_qd)); /* reset by the client, or a failed push */
        break;
    default:
        break;
    }
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"addr", required_argument, 0, 'a'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    struct sockaddr_in addr;
    parse_addr("127.0.0.1:6379", &addr);
    int opt;
    while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (opt != 'a' || parse_addr(optarg, &addr)) {
            if (opt == 'a')
                fprintf(stderr, "demi-kv: --addr: expected IPv4:PORT, got %s\n", optarg);
            usage();
        }
    }
    if (optind != argc)
        usage();

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    raise_nofile();

    struct demi_args args = {.argc = argc, .argv = argv};
    int e = demi_init(&args);
    if (e)
        die("demi_init", e);
    if ((e = kv_server_init(&srv)))
        die("init", e);
    const char *libos = getenv("LIBOS");
    srv.libos = libos && *libos ? libos : "catnap";
    srv.clock_ms = batch_clock;
    batch_now = kv_now_ms();
    reply_init(&out);

    if ((e = demi_socket(&listen_qd, AF_INET, SOCK_STREAM, 0)))
        die("socket", e);
    int one = 1;
    demi_setsockopt(listen_qd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if ((e = demi_bind(listen_qd, (const struct sockaddr *)&addr, sizeof(addr))))
        die("bind", e);
    if ((e = demi_listen(listen_qd, 1024)))
        die("listen", e);
    struct sockaddr_in local;
    socklen_t len = sizeof(local);
    if ((e = demi_getsockname(listen_qd, (struct sockaddr *)&local, &len)))
        die("getsockname", e);
    srv.port = ntohs(local.sin_port);
    inet_ntop(AF_INET, &local.sin_addr, srv.bind, sizeof(srv.bind));
    demi_qtoken_t qt;
    if ((e = demi_accept(&qt, listen_qd)))
        die("accept", e);
    printf("ready %s:%u\n", srv.bind, srv.port);
    fflush(stdout);

    demi_qresult_t qr[BATCH];
    int64_t next_expire = mono_ns() + EXPIRE_PERIOD_NS;
    while (!stop) {
        int64_t wait_ns = next_expire - mono_ns();
        if (wait_ns < 0)
            wait_ns = 0;
        struct timespec to = {wait_ns / 1000000000LL, wait_ns % 1000000000LL};
        int n = 0;
        e = demi_wait_next_n(qr, BATCH, &n, &to);
        if (e && e != ETIMEDOUT)
            die("wait", e);
        for (int i = 0; i < n; i++)
            handle(&qr[i]);
        if (mono_ns() >= next_expire) {
            batch_now = kv_now_ms();
            kv_active_expire(&srv, EXPIRE_BUDGET_US);
            next_expire = mono_ns() + EXPIRE_PERIOD_NS;
        }
    }

    for (size_t i = 0; i < nconns_cap; i++)
        if (conns[i])
            conn_close(conns[i]);
    demi_close(listen_qd);
    /* Results of the operations those closes cancelled: consume them, so
     * that no popped buffer is left unaccounted for. */
    struct timespec zero = {0, 0};
    int n;
    while (demi_wait_next_n(qr, BATCH, &n, &zero) == 0 && n > 0)
        for (int i = 0; i < n; i++)
            if (qr[i].qr_opcode == DEMI_OPC_POP)
                demi_sgafree(&qr[i].qr_value.sga);
    reply_free(&out);
    kv_server_free(&srv);
    free(conns);
    return 0;
}
