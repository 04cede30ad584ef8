/*
 * demi-kv: a Redis-protocol (RESP2) key-value server on PDPIX, one thread,
 * any libOS (LIBOS=...). Uses only libdemi's public API.
 *
 *   demi-kv [--addr IP:PORT] [--aof PATH]
 *
 * --addr defaults to 127.0.0.1:6379 (port 0 picks one). --aof keeps an
 * append-only file on a cattree log (aof.h): the log is replayed before
 * the server listens, and from then on every command that changes the
 * keyspace is appended to it before its reply goes out.
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
 *
 * With --aof, a write's reply, and every later reply of the same
 * connection, is held (copied out of the reply builder into the
 * connection's hold buffer: the builder's buffers are reused before the
 * log is done) until the log record holding the write is durable; other
 * connections' replies are not delayed. If the append fails, the writes
 * that were not durable get "-MISCONF Errors writing to the AOF file: ..."
 * instead of their replies, later writes are refused with the same error
 * (reads still work), and the failed records are appended again every
 * second; the first success ends the refusal. Their commands stay applied
 * in memory meanwhile, as in Redis.
 */
#include "aof.h"
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
/* After a failed append, the log is tried again this often. */
#define AOF_RETRY_NS (1000 * 1000 * 1000LL)

/* A write's reply in a connection's hold buffer, waiting for record seq. */
struct span {
    size_t off, len;
    uint64_t seq;
};

struct conn {
    int qd;
    struct kv_client cl;
    struct resp_parser p;
    uint8_t *in; /* the start of an incomplete command, and what followed it */
    size_t in_len, in_cap;
    uint32_t pushes; /* pushes not yet completed */
    bool closing;    /* close once the pushes complete; no more pops */
    /* --aof: replies not yet sent because a write before them is not yet
     * durable, in order; spans says where the writes' own replies are. */
    uint8_t *hold;
    size_t hold_len, hold_cap;
    struct span *spans;
    size_t nspans, capspans;
    bool in_write;              /* a write command is running: replies go to hold */
    size_t write_off;           /* where its reply starts in hold */
    struct conn *wprev, *wnext; /* on the waiting list while hold_len > 0 */
    bool waiting;
};

static volatile sig_atomic_t stop;
static struct kv_server srv;
static struct reply out;
static struct conn **conns; /* indexed by qd */
static size_t nconns_cap;
static int listen_qd = -1;
static bool aof_on;
static struct aof aof;
static struct conn *waiting;   /* connections with held replies */
static struct conn *exec_conn; /* the connection whose command runs */
static uint64_t dirty_before;
static char misconf[128];
static int64_t next_retry; /* after a failed append: when to try again */
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

static void usage(FILE *f, int status)
{
    fprintf(f, "usage: demi-kv [--addr IP:PORT] [--aof PATH]\n"
               "  --addr IP:PORT  listen there (default 127.0.0.1:6379; port 0 picks a free port)\n"
               "  --aof PATH      append-only persistence on a cattree log at PATH (created if\n"
               "                  missing): replayed at start; every write is durable before its\n"
               "                  reply (group commit), as Redis's appendfsync always\n"
               "  --help          this text\n"
               "LIBOS picks the network libOS (default catnap).\n");
    exit(status);
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

static void wait_unlink(struct conn *c)
{
    if (!c->waiting)
        return;
    if (c->wprev)
        c->wprev->wnext = c->wnext;
    else
        waiting = c->wnext;
    if (c->wnext)
        c->wnext->wprev = c->wprev;
    c->wprev = c->wnext = NULL;
    c->waiting = false;
}

static void wait_link(struct conn *c)
{
    if (c->waiting)
        return;
    c->wprev = NULL;
    c->wnext = waiting;
    if (waiting)
        waiting->wprev = c;
    waiting = c;
    c->waiting = true;
}

/* Nothing is left to send: a closing connection can go. */
static bool conn_idle(const struct conn *c)
{
    return c->pushes == 0 && c->hold_len == 0;
}

static void conn_close(struct conn *c)
{
    wait_unlink(c);
    free(c->hold);
    free(c->spans);
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

static bool hold_reserve(struct conn *c, size_t more)
{
    if (c->hold_len + more <= c->hold_cap)
        return true;
    size_t cap = c->hold_cap ? c->hold_cap : 1024;
    while (cap < c->hold_len + more)
        cap *= 2;
    uint8_t *p = realloc(c->hold, cap);
    if (!p)
        return false;
    c->hold = p;
    c->hold_cap = cap;
    return true;
}

/* Replies that must wait: copied, because the builder reuses its buffers
 * (and drops its references on values) as soon as this returns. */
static int hold_sga(struct conn *c, const demi_sgarray_t *sga)
{
    size_t n = 0;
    for (uint32_t i = 0; i < sga->sga_numsegs; i++)
        n += sga->sga_segs[i].sgaseg_len;
    if (!hold_reserve(c, n))
        return ENOMEM;
    for (uint32_t i = 0; i < sga->sga_numsegs; i++) {
        memcpy(c->hold + c->hold_len, sga->sga_segs[i].sgaseg_buf, sga->sga_segs[i].sgaseg_len);
        c->hold_len += sga->sga_segs[i].sgaseg_len;
    }
    return 0;
}

static int conn_push(void *arg, const demi_sgarray_t *sga)
{
    struct conn *c = arg;
    if (c->in_write || c->hold_len > 0)
        return hold_sga(c, sga);
    demi_qtoken_t qt;
    int e = demi_push(&qt, c->qd, sga);
    if (e)
        return e;
    c->pushes++;
    srv.pushes++;
    return 0;
}

/* Copies [p, p + n) into heap buffers and pushes them to the client. */
static int send_copy(struct conn *c, const uint8_t *p, size_t n)
{
    while (n > 0) {
        size_t k = n < KV_SEG_MAX ? n : KV_SEG_MAX;
        demi_sgarray_t sga = demi_sgaalloc(k);
        if (sga.sga_numsegs != 1) {
            if (sga.sga_numsegs)
                demi_sgafree(&sga);
            return ENOMEM;
        }
        memcpy(sga.sga_segs[0].sgaseg_buf, p, k);
        sga.sga_segs[0].sgaseg_len = (uint32_t)k;
        int e = conn_push(c, &sga); /* hold_len is 0 or in_write is off here: a real push */
        demi_sgafree(&sga);         /* the push holds its own reference */
        if (e)
            return e;
        p += k;
        n -= k;
    }
    return 0;
}

/*
 * Sends the held replies that may go now: everything up to the first write
 * whose record is not durable. Writes in records from @failed_from on get
 * the MISCONF error instead of their reply. Closes the connection if it
 * cannot send.
 */
static void conn_release(struct conn *c, uint64_t failed_from)
{
    size_t sent = 0, k = 0;
    uint8_t *buf = c->hold;
    size_t len = c->hold_len;
    /* Take the buffer: the pushes below must not be held again. */
    c->hold = NULL;
    c->hold_len = c->hold_cap = 0;
    int e = 0;
    for (; k < c->nspans && !e; k++) {
        struct span *sp = &c->spans[k];
        if (sp->seq <= aof.durable)
            continue;
        if (sp->seq < failed_from)
            break; /* still on its way to the log */
        /* The write failed: its reply becomes the error. */
        e = send_copy(c, buf + sent, sp->off - sent);
        if (!e) {
            char err[sizeof(misconf) + 4];
            int n = snprintf(err, sizeof(err), "-%s\r\n", misconf);
            e = send_copy(c, (const uint8_t *)err, (size_t)n);
        }
        sent = sp->off + sp->len;
    }
    size_t upto = k < c->nspans ? c->spans[k].off : len;
    if (!e)
        e = send_copy(c, buf + sent, upto - sent);
    if (e) {
        free(buf);
        c->nspans = 0;
        wait_unlink(c);
        if (c == exec_conn)
            c->closing = true; /* its commands are running: conn_popped closes it */
        else
            conn_close(c);
        return;
    }
    /* Keep what must still wait, at the start of the buffer. */
    memmove(buf, buf + upto, len - upto);
    c->hold = buf;
    c->hold_len = len - upto;
    c->hold_cap = len;
    if (c->hold_len == 0) {
        free(buf);
        c->hold = NULL;
        c->hold_cap = 0;
    }
    memmove(c->spans, c->spans + k, (c->nspans - k) * sizeof(*c->spans));
    c->nspans -= k;
    for (size_t i = 0; i < c->nspans; i++)
        c->spans[i].off -= upto;
    if (c->hold_len == 0) {
        wait_unlink(c);
        if (c->closing && conn_idle(c) && c != exec_conn)
            conn_close(c);
    }
}

/* A record completed (or failed): wakes the connections waiting for it. */
static void release_all(uint64_t failed_from)
{
    for (struct conn *c = waiting, *next; c; c = next) {
        next = c->wnext;
        if (failed_from != UINT64_MAX || c->nspans == 0 || c->spans[0].seq <= aof.durable)
            conn_release(c, failed_from);
    }
}

static void aof_fail(int err)
{
    bool first = aof.err == 0;
    uint64_t from = aof_failed(&aof, err);
    next_retry = mono_ns() + AOF_RETRY_NS;
    snprintf(misconf, sizeof(misconf), "MISCONF Errors writing to the AOF file: %s", strerror(aof.err));
    if (first)
        fprintf(stderr,
                "demi-kv: aof: append failed: %s; the writes not yet durable get -MISCONF, new writes are "
                "refused until a retry (every second) succeeds\n",
                strerror(aof.err));
    release_all(from);
}

/* The log's answer to the record being appended. */
static void aof_result(const demi_qresult_t *r)
{
    if (r->qr_opcode == DEMI_OPC_PUSH) {
        bool was_err = aof.err != 0;
        aof_completed(&aof);
        if (was_err)
            fprintf(stderr, "demi-kv: aof: appends succeed again; writes are accepted\n");
        release_all(UINT64_MAX);
    } else {
        aof_fail(r->qr_ret ? (int)r->qr_ret : EIO);
    }
}

/* Called by kv_exec before a command flagged "write" runs. */
static const char *write_hook(void *arg, int argc, const struct resp_arg *argv)
{
    (void)arg;
    if (aof.err)
        return misconf;
    if (aof_cmd_size(argc, argv) + 64 > AOF_RECORD_MAX)
        return "ERR command too large for the append-only file (256 MiB a record)";
    struct conn *c = exec_conn;
    /* Earlier replies go out now (or join the held ones): only this
     * write's reply, and what follows it, waits for the log. */
    reply_flush(&out);
    c->in_write = true;
    c->write_off = c->hold_len;
    dirty_before = srv.dirty;
    return NULL;
}

/* After a write command ran: logs it if it changed the keyspace, and holds
 * its reply until the log has it. */
static void write_done(struct conn *c, int argc, const struct resp_arg *argv)
{
    if (srv.dirty == dirty_before) {
        c->in_write = false; /* changed nothing: not logged, not held */
        if (c->hold_len > 0 && c->nspans == 0)
            conn_release(c, UINT64_MAX); /* a reply pushed mid-command */
        return;
    }
    uint64_t seq;
    int e = aof_append(&aof, batch_now, argc, argv, &seq);
    reply_flush(&out); /* into hold: in_write is still on */
    c->in_write = false;
    if (e) {
        /* The change is in memory but cannot be logged: say so. */
        fprintf(stderr, "demi-kv: aof: cannot log a write: %s\n", strerror(e));
        c->hold_len = c->write_off;
        char err[160];
        int n = snprintf(err, sizeof(err), "-MISCONF Errors writing to the AOF file: %s\r\n", strerror(e));
        if (hold_reserve(c, (size_t)n)) {
            memcpy(c->hold + c->hold_len, err, (size_t)n);
            c->hold_len += (size_t)n;
        }
        if (c->nspans == 0)
            conn_release(c, UINT64_MAX);
        return;
    }
    if (c->nspans == c->capspans) {
        size_t cap = c->capspans ? c->capspans * 2 : 16;
        struct span *sp = realloc(c->spans, cap * sizeof(*sp));
        if (!sp) {
            c->closing = true; /* cannot track the reply: drop the client */
            return;
        }
        c->spans = sp;
        c->capspans = cap;
    }
    c->spans[c->nspans++] = (struct span){c->write_off, c->hold_len - c->write_off, seq};
    wait_link(c);
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
            if (c->in_write)
                write_done(c, c->p.argc, c->p.argv);
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
        if (conn_idle(c))
            conn_close(c);
        return;
    }
    reply_target(&out, conn_push, c);
    exec_conn = c;
    batch_now = kv_now_ms();
    for (uint32_t i = 0; i < sga->sga_numsegs && !c->closing; i++)
        conn_input(c, sga->sga_segs[i].sgaseg_buf, sga->sga_segs[i].sgaseg_len);
    int e = reply_flush(&out);
    exec_conn = NULL;
    demi_sgafree(sga);
    if (e) {
        conn_close(c); /* a push was refused, or no heap left for the reply */
        return;
    }
    if (c->closing) {
        if (conn_idle(c))
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
    if (aof_on && r->qr_qd == aof.qd) {
        aof_result(r);
        return;
    }
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
        if (c && c->pushes > 0 && --c->pushes == 0 && c->closing && conn_idle(c))
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
    static const struct option lo[] = {{"addr", required_argument, 0, 'a'},
                                       {"aof", required_argument, 0, 'f'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    struct sockaddr_in addr;
    parse_addr("127.0.0.1:6379", &addr);
    const char *aof_path = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (opt == 'a') {
            if (parse_addr(optarg, &addr)) {
                fprintf(stderr, "demi-kv: --addr: expected IPv4:PORT, got %s\n", optarg);
                usage(stderr, 2);
            }
        } else if (opt == 'f') {
            if (!*optarg) {
                fprintf(stderr, "demi-kv: --aof: expected a file name\n");
                usage(stderr, 2);
            }
            aof_path = optarg;
        } else if (opt == 'h') {
            usage(stdout, 0);
        } else {
            usage(stderr, 2);
        }
    }
    if (optind != argc)
        usage(stderr, 2);

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

    if (aof_path) {
        /* Replay before listening: no client sees a partial keyspace. */
        if ((e = aof_open(&aof, aof_path, &srv.aof))) {
            fprintf(stderr, "demi-kv: --aof %s: %s%s\n", aof_path, strerror(e),
                    e == EBUSY ? " (another process has the log open)" : "");
            exit(1);
        }
        aof_on = true;
        uint64_t ncmd, nrec;
        char msg[256];
        if ((e = aof_replay(&aof, &srv, &ncmd, &nrec, msg, sizeof(msg)))) {
            fprintf(stderr,
                    "demi-kv: --aof %s: cannot replay the log: %s; not starting (the log is left as it is, "
                    "%llu commands of %llu records read before the error)\n",
                    aof_path, msg, (unsigned long long)ncmd, (unsigned long long)nrec);
            exit(1);
        }
        /* On stderr: "ready" stays the first line on stdout. */
        fprintf(stderr, "aof: replayed %llu commands from %llu records of %s, %zu keys\n", (unsigned long long)ncmd,
                (unsigned long long)nrec, aof_path, kv_size(&srv.store));
        srv.write_hook = write_hook;
        batch_now = kv_now_ms();
    }

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
        /* Group commit: the writes of this whole batch, from every
         * client, go into one record, unless one is on its way already. */
        if (aof_on && (e = aof_kick(&aof)))
            aof_fail(e);
        if (mono_ns() >= next_expire) {
            batch_now = kv_now_ms();
            kv_active_expire(&srv, EXPIRE_BUDGET_US);
            next_expire = mono_ns() + EXPIRE_PERIOD_NS;
        }
        if (aof_on && aof.err && !aof.inflight && mono_ns() >= next_retry) {
            if ((e = aof_retry(&aof)))
                aof_fail(e);
            next_retry = mono_ns() + AOF_RETRY_NS;
        }
    }

    for (size_t i = 0; i < nconns_cap; i++)
        if (conns[i])
            conn_close(conns[i]);
    demi_close(listen_qd);
    if (aof_on && (e = aof_close(&aof, 10)))
        fprintf(stderr, "demi-kv: aof: the last writes may not be in the log: %s\n", strerror(e));
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
