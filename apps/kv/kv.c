/*
 * demi-kv: a Redis-protocol (RESP2) key-value server on PDPIX, one thread
 * or --threads N, any libOS (LIBOS=...). Uses only libdemi's public API.
 *
 *   demi-kv [--addr IP:PORT] [--aof PATH] [--threads N [--cpus LIST]]
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
 *
 * With --threads N, every thread runs this loop on its own instance (all
 * of this file's state is per thread), accepts on the shared port, and
 * owns the keys of one part of the keyspace; commands on another thread's
 * keys go there through memory queues (the "--threads" section below).
 */
#include "aof.h"
#include "cmd.h"
#include "reply.h"
#include "resp.h"
#include "threads.h"

#include <demi/libos.h>
#include <demi/sga.h>
#include <demi/version.h>
#include <demi/wait.h>

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
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
/* The AOF rewrite's walk runs this long per loop iteration at most. */
#define REWRITE_SLICE_NS (1000 * 1000LL)
/* A client holding less than this is never disconnected for memory. */
#define MEM_EVICT_MIN ((uint64_t)1 << 20)

/* A write's reply in a connection's hold buffer, waiting for record seq. */
struct span {
    size_t off, len;
    uint64_t seq;
};

/* A growable byte buffer (malloc's memory). */
struct bytes {
    uint8_t *p;
    size_t len, cap;
};

/* A push not yet completed. */
struct pend {
    demi_qtoken_t qt;
    uint64_t len;
};

struct conn {
    int qd;
    struct kv_client cl;
    struct resp_parser p;
    uint8_t *in; /* the start of an incomplete command, and what followed it */
    size_t in_len, in_cap;
    /* The pushes not yet completed, oldest first (they complete in order):
     * their tokens tell this connection's results from those of a closed
     * connection whose qd it reuses; out_bytes is their total size, the
     * client's output buffer with hold_len. */
    struct pend *pq;
    size_t pq_head, pq_n, pq_cap;
    uint64_t out_bytes;
    demi_qtoken_t pop_qt;
    bool popping;       /* a pop is posted (its token is pop_qt) */
    bool paused;        /* no pop: the output is at its soft limit */
    int64_t soft_since; /* when the output reached the soft limit (ns); 0: below it */
    bool closing;       /* close once the pushes complete; no more pops */
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
    /* MONITOR: the lines for this monitor not yet pushed (they go out once
     * per loop turn, or before its own replies); mon_at is its place in
     * mons, -1 when not a monitor. */
    uint8_t *mon;
    size_t mon_len, mon_cap;
    long mon_at;
    bool mon_over; /* a line did not fit in its output limit: drop it */
    /* --threads: a command sent to the thread owning its key (or to every
     * thread) whose reply has not all come back. Meanwhile the connection
     * runs nothing and is not read: what follows waits in `in`, so that
     * replies keep the commands' order. */
    uint64_t serial; /* tells this connection from a later one on the same qd */
    bool hop;
    bool hop_silent;  /* CLIENT REPLY OFF or SKIP: the reply is dropped */
    unsigned fan_want; /* KV_ROUTE_ALL: threads yet to answer */
    enum kv_combine fan_combine;
    struct bytes *fan; /* KV_ROUTE_ALL: each thread's reply */
};

static volatile sig_atomic_t stop;
static unsigned nshards = 1; /* --threads; set before the threads start */
static _Thread_local uint64_t conn_serial; /* connections accepted by this thread */
/* --threads: commands this thread sent to others, and ran for them. */
static _Thread_local uint64_t hops_sent, hops_served;
static _Thread_local struct kv_server srv;
static _Thread_local struct reply out;
static _Thread_local struct conn **conns; /* indexed by qd */
static _Thread_local size_t nconns_cap;
static _Thread_local int listen_qd = -1;
static _Thread_local bool aof_on;
static _Thread_local struct aof aof;
static _Thread_local struct conn *waiting;   /* connections with held replies */
static _Thread_local struct conn *exec_conn; /* the connection whose command runs */
static _Thread_local uint64_t dirty_before;
static _Thread_local char misconf[128];
/* Accepting: an accept is posted, or the next is due at accept_at (ns)
 * after a failure; the delay doubles while accepts fail. */
static _Thread_local bool accepting;
static _Thread_local demi_qtoken_t accept_qt;
static _Thread_local int64_t accept_at, accept_backoff;
static _Thread_local int64_t next_retry; /* after a failed append: when to try again */
/* The time commands see: read once per popped batch (and for each active
 * expiry round), not once per command. */
static _Thread_local int64_t batch_now;
/* The clients in MONITOR mode. */
static _Thread_local struct conn **mons;
static _Thread_local size_t nmons, mons_cap;

static void mon_update(struct conn *c);
static bool mon_flush(struct conn *c);
static void clients_ops_init(void);
static void fan_free(struct conn *c);

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
    fprintf(f, "usage: demi-kv [--addr IP:PORT] [--aof PATH [--aof-repair]] [--client-output-buffer-limit LIMITS]\n"
               "               [--maxclients N] [--maxmemory BYTES] [--threads N [--cpus LIST]]\n"
               "       demi-kv --help | --version\n"
               "  --addr IP:PORT  listen there (default 127.0.0.1:6379; port 0 picks a free port)\n"
               "  --aof PATH      append-only persistence on a cattree log at PATH (created if\n"
               "                  missing): replayed at start; every write is durable before its\n"
               "                  reply (group commit), as Redis's appendfsync always\n"
               "  --aof-repair    open a log damaged in the middle by cutting it at the damage\n"
               "                  (the records after it are lost; without it demi-kv refuses)\n"
               "  --client-output-buffer-limit 'normal HARD SOFT SECONDS'\n"
               "                  disconnect a client whose unsent replies reach HARD bytes, or\n"
               "                  stay at SOFT or more for SECONDS; it is not read while at SOFT\n"
               "                  (default 'normal 1gb 16mb 60'; 0 0 0: no limit)\n"
               "  --maxclients N  refuse clients beyond N with -ERR max number of clients reached\n"
               "                  (default 10000, lowered to the descriptor limit on catnap)\n"
               "  --maxmemory BYTES  when the heap holds more, disconnect the clients holding the\n"
               "                  most buffers, then refuse writes with -OOM (default 0: none)\n"
               "  --threads N     N threads (1-16), each its own libdemi instance, connections\n"
               "                  and part of the keyspace (Redis Cluster's slots, slot mod N); a\n"
               "                  command on another thread's keys goes there and back through a\n"
               "                  memory queue; keys of several threads in one command: -CROSSSLOT.\n"
               "                  Needs a fixed port below 49152; not with --aof\n"
               "  --cpus LIST     pin thread i to the i-th CPU of LIST (\"0,1\")\n"
               "  --help          this text\n"
               "  --version       the program's and libdemi's version\n"
               "LIBOS picks the network libOS (default catnap); see demi-kv(1) and libdemi(7).\n");
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

/* ---- logging ---- */

/* A message that may repeat without end (a failed accept, a client
 * dropped): at most one line a second, saying how many were left out. */
struct ratelog {
    int64_t next;
    uint64_t suppressed;
};

static void ratelog(struct ratelog *rl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ratelog(struct ratelog *rl, const char *fmt, ...)
{
    int64_t now = mono_ns();
    if (now < rl->next) {
        rl->suppressed++;
        return;
    }
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (rl->suppressed)
        fprintf(stderr, "demi-kv: %s (%llu more like it in the last second)\n", line,
                (unsigned long long)rl->suppressed);
    else
        fprintf(stderr, "demi-kv: %s\n", line);
    rl->suppressed = 0;
    rl->next = now + 1000000000LL;
}

static _Thread_local struct ratelog log_accept, log_drop;

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
    return c->pq_n == 0 && c->hold_len == 0;
}

/* The client's output buffer, as client-output-buffer-limit counts it:
 * reply bytes not yet taken by the kernel or the device (stored values a
 * reply points at included, as Redis counts them). */
static uint64_t conn_obuf(const struct conn *c)
{
    return c->out_bytes + c->hold_len + c->mon_len;
}

/* What the client's buffers hold, input included (INFO mem_clients_normal). */
static uint64_t conn_mem(const struct conn *c)
{
    return conn_obuf(c) + c->in_cap;
}

static uint64_t clients_mem(void)
{
    uint64_t n = 0;
    for (size_t i = 0; i < nconns_cap; i++)
        if (conns[i])
            n += conn_mem(conns[i]);
    return n;
}

/* The output at which the client is no longer read: its soft limit, or
 * its hard limit if lower or alone; none if both are 0. */
static uint64_t pause_at(void)
{
    const struct kv_obuf_limit *l = &srv.obuf_limit[KV_OBUF_NORMAL];
    uint64_t at = l->soft ? l->soft : UINT64_MAX;
    return l->hard && l->hard < at ? l->hard : at;
}

static void conn_close(struct conn *c)
{
    wait_unlink(c);
    if (c->cl.monitor) {
        c->cl.monitor = false;
        srv.monitors--;
    }
    mon_update(c);
    free(c->mon);
    free(c->hold);
    free(c->spans);
    free(c->pq);
    /* Cancels the pending pop and pushes: their ECANCELED results find no
     * connection and are ignored. */
    demi_close(c->qd);
    conns[c->qd] = NULL;
    resp_free(&c->p);
    kv_client_free(&c->cl);
    free(c->in);
    fan_free(c);
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

/* Room for one more push in the connection's list. */
static bool pq_reserve(struct conn *c)
{
    if (c->pq_n < c->pq_cap)
        return true;
    size_t cap = c->pq_cap ? c->pq_cap * 2 : 8;
    struct pend *q = malloc(cap * sizeof(*q));
    if (!q)
        return false;
    for (size_t i = 0; i < c->pq_n; i++)
        q[i] = c->pq[(c->pq_head + i) % c->pq_cap];
    free(c->pq);
    c->pq = q;
    c->pq_head = 0;
    c->pq_cap = cap;
    return true;
}

static int conn_push(void *arg, const demi_sgarray_t *sga)
{
    struct conn *c = arg;
    if (c->in_write || c->hold_len > 0)
        return hold_sga(c, sga);
    if (!pq_reserve(c))
        return ENOMEM;
    uint64_t n = 0;
    for (uint32_t i = 0; i < sga->sga_numsegs; i++)
        n += sga->sga_segs[i].sgaseg_len;
    demi_qtoken_t qt;
    int e = demi_push(&qt, c->qd, sga);
    if (e)
        return e;
    c->pq[(c->pq_head + c->pq_n) % c->pq_cap] = (struct pend){qt, n};
    c->pq_n++;
    c->out_bytes += n;
    srv.pushes++;
    return 0;
}

/* Disconnects a client at once: SO_LINGER 0 makes the close abortive (a
 * RST), so that its pushes are dropped and their buffers freed now, not
 * after a client that does not read has read them. */
static void conn_drop(struct conn *c)
{
    struct linger lg = {1, 0};
    demi_setsockopt(c->qd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    conn_close(c);
}

/* What the client holds of libdemi's heap: its unsent replies. (Its input
 * and held replies are in malloc's memory, which dropping it would not
 * give to the heap.) */
static uint64_t conn_heap(const struct conn *c)
{
    return c->out_bytes;
}

/* The client holding the most of the heap, other than @except; NULL if none. */
static struct conn *greediest(const struct conn *except)
{
    struct conn *g = NULL;
    for (size_t i = 0; i < nconns_cap; i++)
        if (conns[i] && conns[i] != except && (!g || conn_heap(conns[i]) > conn_heap(g)))
            g = conns[i];
    return g;
}

static void mem_drop(struct conn *g, const char *why)
{
    ratelog(&log_drop, "%s: disconnecting the client holding the most (id=%llu, %llu bytes of unsent replies)", why,
            (unsigned long long)g->cl.id, (unsigned long long)conn_heap(g));
    srv.mem_disconnections++;
    conn_drop(g);
}

/*
 * An allocation failed while the commands of exec_conn (if any) ran:
 * disconnects the client holding the most buffers, if it is another and
 * holds more than exec_conn, never a bystander for a greedy one. Returns
 * true if it did (the allocation may then be tried again).
 */
static bool reclaim(void)
{
    struct conn *g = greediest(exec_conn);
    uint64_t mine = exec_conn ? conn_heap(exec_conn) : 0;
    if (!g || conn_heap(g) < MEM_EVICT_MIN || conn_heap(g) <= mine)
        return false;
    mem_drop(g, "out of memory");
    return true;
}

/* maxmemory: while the heap holds more, disconnects the clients holding
 * the most (as long as that frees memory); if still over, commands that
 * may grow the keyspace get -OOM until it is under again. */
static void memory_check(void)
{
    demi_stats_t st;
    if (!srv.maxmemory || demi_get_stats(&st) != 0) {
        srv.over_maxmemory = false;
        return;
    }
    while (st.heap_bytes_in_use > srv.maxmemory) {
        struct conn *g = greediest(NULL);
        if (!g || conn_heap(g) < MEM_EVICT_MIN)
            break;
        uint64_t before = st.heap_bytes_in_use;
        mem_drop(g, "used memory over maxmemory");
        if (demi_get_stats(&st) != 0 || st.heap_bytes_in_use >= before)
            break; /* its buffers were not what held the heap */
    }
    srv.over_maxmemory = st.heap_bytes_in_use + kv_obj_bytes() > srv.maxmemory;
}

/*
 * client-output-buffer-limit: disconnects a client whose output reached
 * the hard limit, or has stayed at the soft limit or more for its
 * seconds. Returns true if it did (@c is gone).
 */
static bool conn_limits(struct conn *c, int64_t now)
{
    const struct kv_obuf_limit *l = &srv.obuf_limit[KV_OBUF_NORMAL];
    uint64_t n = conn_obuf(c);
    bool over = l->hard && n >= l->hard;
    if (l->soft && n >= l->soft) {
        if (!c->soft_since)
            c->soft_since = now;
        else if ((uint64_t)(now - c->soft_since) >= l->soft_secs * 1000000000ull)
            over = true;
    } else {
        c->soft_since = 0;
    }
    if (over) {
        ratelog(&log_drop, "client id=%llu closed for overcoming of output buffer limits (%llu bytes)",
                (unsigned long long)c->cl.id, (unsigned long long)n);
        srv.obuf_disconnections++;
        conn_drop(c);
    }
    return over;
}

/* Posts the connection's next pop, unless its output is at the limit
 * (backpressure: a client that does not read is not read either). */
static void conn_next_pop(struct conn *c)
{
    if (c->popping || c->closing || c->hop)
        return;
    if (conn_obuf(c) >= pause_at()) {
        c->paused = true;
        return;
    }
    c->paused = false;
    if (demi_pop(&c->pop_qt, c->qd) != 0) {
        conn_drop(c);
        return;
    }
    c->popping = true;
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
            conn_drop(c);
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

static void rewrite_poll(void);
static void rewrite_result(const demi_qresult_t *r);

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
        rewrite_poll(); /* a frozen log's last push may be what it waited for */
    } else {
        aof_fail(r->qr_ret ? (int)r->qr_ret : EIO);
    }
}

/* ---- AOF rewrite (aof.h) ---- */

/* Switches to the rewritten log if it is ready; the writes it makes
 * durable get their replies. */
static void rewrite_poll(void)
{
    if (aof_rewrite_switch(&aof))
        release_all(UINT64_MAX);
}

/* The new log's answer to its record being appended. */
static void rewrite_result(const demi_qresult_t *r)
{
    if (aof_rewrite_result(&aof, r->qr_opcode, (int)r->qr_ret) && !aof.rw)
        release_all(UINT64_MAX);
}

/* BGREWRITEAOF (srv.bgrewriteaof). */
static const char *bgrewriteaof(void)
{
    if (!aof_on)
        return "ERR demi-kv has no append-only file (start it with --aof PATH)";
    int e = aof_rewrite_start(&aof, &srv.store);
    if (e == EALREADY)
        return "ERR Background append only file rewriting already in progress";
    if (e)
        return "ERR Can't execute an AOF background rewriting. Please check the server logs for more information.";
    return NULL;
}

/* One slice of the rewrite's walk, from the loop; and the automatic start
 * (checked every 100 ms, as Redis's serverCron does) when @cron. */
static void rewrite_tick(bool cron)
{
    if (!aof_on)
        return;
    if (cron && aof_rewrite_due(&aof, srv.aof_rewrite_perc, srv.aof_rewrite_min_size, mono_ns())) {
        fprintf(stderr, "aof: starting an automatic rewrite (%llu bytes, %llu after the last)\n",
                (unsigned long long)srv.aof.bytes, (unsigned long long)srv.aof.base_size);
        aof_rewrite_start(&aof, &srv.store);
    }
    if (aof.rw) {
        batch_now = kv_now_ms();
        aof_rewrite_step(&aof, &srv.store, batch_now, REWRITE_SLICE_NS);
        rewrite_poll();
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
    /* A rewrite's new log gets the keys the command names before the
     * command itself. */
    aof_rewrite_touch(&aof, &srv.store, batch_now, argc, argv);
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
    if (srv.prop_argc) { /* the command's deterministic equivalent */
        argc = srv.prop_argc;
        argv = srv.prop_argv;
    }
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

/* Redis's reply to a client over maxclients, before it is closed. */
static void conn_refuse(int qd)
{
    static const char err[] = "-ERR max number of clients reached\r\n";
    demi_sgarray_t sga = demi_sgaalloc(sizeof(err) - 1);
    if (sga.sga_numsegs == 1) {
        memcpy(sga.sga_segs[0].sgaseg_buf, err, sizeof(err) - 1);
        demi_qtoken_t qt;
        demi_push(&qt, qd, &sga); /* the close below is graceful: it goes out first */
        demi_sgafree(&sga);
    }
    demi_close(qd);
    srv.rejected_connections++;
}

static void conn_new(int qd)
{
    if (srv.connected_clients >= srv.maxclients) {
        conn_refuse(qd);
        return;
    }
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
    if (!c || demi_pop(&c->pop_qt, qd) != 0) {
        free(c);
        demi_close(qd);
        return;
    }
    c->popping = true;
    c->qd = qd;
    c->serial = ++conn_serial;
    c->mon_at = -1;
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

static bool route_cmd(struct conn *c, const uint8_t *rest, size_t rest_len, size_t *extra);

/*
 * Parses and runs the commands in [buf, buf + len), which starts at a
 * command boundary. Returns how many bytes it consumed; the rest is the
 * start of an incomplete command. Sets c->closing on a protocol error or
 * QUIT (the rest is then ignored, as Redis does). Stops after a command
 * that went to other threads (c->hop): the rest waits for its reply.
 */
static size_t run_commands(struct conn *c, const uint8_t *buf, size_t len)
{
    size_t off = 0;
    while (off < len && !c->closing && !c->hop) {
        size_t used;
        int st = resp_parse(&c->p, buf + off, len - off, &used);
        if (st == RESP_MORE)
            break;
        if (st == RESP_CMD) {
            size_t extra;
            if (nshards > 1 && route_cmd(c, buf + off + used, len - off - used, &extra)) {
                off += used + extra;
                continue; /* gone to other threads (with the next @extra bytes), or refused */
            }
            kv_exec(&srv, &c->cl, c->p.argc, c->p.argv, &out);
            if (c->cl.monitor != (c->mon_at >= 0))
                mon_update(c);
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

/* Runs the complete commands kept in c->in, and keeps the rest. */
static void conn_run_in(struct conn *c)
{
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
    conn_run_in(c);
}

static void conn_batch_end(struct conn *c);

static void conn_popped(struct conn *c, demi_sgarray_t *sga)
{
    c->popping = false;
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
    if (!mon_flush(c)) {
        demi_sgafree(sga); /* over its output limit: gone */
        return;
    }
    reply_target(&out, conn_push, c);
    exec_conn = c;
    batch_now = kv_now_ms();
    for (uint32_t i = 0; i < sga->sga_numsegs && !c->closing; i++)
        conn_input(c, sga->sga_segs[i].sgaseg_buf, sga->sga_segs[i].sgaseg_len);
    demi_sgafree(sga); /* the replies point at no byte of it */
    conn_batch_end(c);
}

/* Ends a batch of the connection's commands: pushes their replies, then
 * closes the connection or reads on. */
static void conn_batch_end(struct conn *c)
{
    int e = reply_flush(&out);
    exec_conn = NULL;
    if (e == ENOMEM) {
        mem_drop(c, "out of memory"); /* no other client held more (reclaim) */
        return;
    }
    if (e) {
        conn_drop(c); /* a push was refused */
        return;
    }
    if (c->closing) {
        if (conn_idle(c))
            conn_close(c);
        return; /* the last push's completion closes it */
    }
    if (!conn_limits(c, mono_ns()))
        conn_next_pop(c);
}

/* One of the connection's own operations (its pop, or a push not yet
 * completed), not a late result of a closed connection on the same qd? */
static bool conn_owns(const struct conn *c, demi_qtoken_t qt)
{
    if (c->popping && c->pop_qt == qt)
        return true;
    for (size_t i = 0; i < c->pq_n; i++)
        if (c->pq[(c->pq_head + i) % c->pq_cap].qt == qt)
            return true;
    return false;
}

static void conn_pushed(struct conn *c, demi_qtoken_t qt)
{
    if (c->pq_n == 0 || c->pq[c->pq_head].qt != qt)
        return; /* a closed connection's */
    c->out_bytes -= c->pq[c->pq_head].len;
    c->pq_head = (c->pq_head + 1) % c->pq_cap;
    c->pq_n--;
    if (c->closing) {
        if (conn_idle(c))
            conn_close(c);
        return;
    }
    if (!conn_limits(c, mono_ns()) && c->paused)
        conn_next_pop(c);
}

/* ---- --threads: the keyspace split across threads ---- */

/*
 * Thread i owns the keys of the slots s with s mod n = i (cmd.h). A
 * command whose keys another thread owns goes there through a memory queue
 * (demi_create_pipe), is run there against that thread's keyspace, and its
 * reply comes back through the same queue to the client's thread, which
 * sends it. Each ordered pair of threads has its own queue: thread i
 * creates "demi-kv.PID.i.j", where the requests of thread j arrive and
 * their replies leave (srv_pipe[j]); thread j opens it to send them
 * (cli_pipe[i]).
 *
 * A message is a struct hop header then bytes: a request's commands in
 * RESP, or their replies as the client would read them. Either may span
 * several messages (at most HOP_CHUNK bytes each); the last has HOP_LAST.
 * A queue carries one request's messages in a row, and keeps their order.
 */
#define HOP_CHUNK ((size_t)1 << 20)
#define HOP_LAST  1u

struct hop {
    uint32_t flags;
    int32_t qd;      /* the client's connection on the requesting thread */
    uint64_t serial; /* and its serial there */
};

static _Thread_local unsigned self;
static _Thread_local int srv_pipe[APP_THREADS_MAX], cli_pipe[APP_THREADS_MAX];
/* Each pipe end's posted pop ([1]: the srv_pipe ends). One that failed
 * (no heap for the message, which stays in the pipe) is posted again a
 * little later: bit 2j + side of repop, from repop_at (mono_ns). */
static _Thread_local demi_qtoken_t pipe_qt[2][APP_THREADS_MAX];
static _Thread_local uint32_t repop;
static _Thread_local int64_t repop_at;
#define HOP_RETRY_NS 10000000LL /* 10 ms */
/* Per requesting thread: its request so far, and the client its commands
 * run as here. */
static _Thread_local struct bytes req_in[APP_THREADS_MAX];
static _Thread_local struct kv_client proxy[APP_THREADS_MAX];
/* Replies written into `captured` instead of being pushed. */
static _Thread_local struct reply capture;
static _Thread_local struct bytes captured, hop_tx, hop_rx;
static _Thread_local struct resp_parser look; /* reads ahead for a batch (batch_more) */
static _Thread_local struct ratelog log_hop;

static bool bytes_add(struct bytes *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q)
            return false;
        b->p = q;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    return true;
}

static void bytes_free(struct bytes *b)
{
    free(b->p);
    *b = (struct bytes){0};
}

/* The reply builder's push, for replies run here on another thread's
 * behalf: the bytes go into `captured`. */
static int capture_push(void *arg, const demi_sgarray_t *sga)
{
    (void)arg;
    for (uint32_t i = 0; i < sga->sga_numsegs; i++)
        if (!bytes_add(&captured, sga->sga_segs[i].sgaseg_buf, sga->sga_segs[i].sgaseg_len))
            return ENOMEM;
    return 0;
}

/* Sends [p, p + n) on the pipe @qd as messages of @h. 0 or an errno.
 * The segments point at the header and the bytes where they are: a pipe
 * copies a push into its own message at once (malloc'd, not this
 * instance's heap), so a thread whose heap is full still sends. */
static int hop_send(int qd, struct hop h, const uint8_t *p, size_t n)
{
    do {
        size_t k = n < HOP_CHUNK ? n : HOP_CHUNK;
        h.flags = k == n ? HOP_LAST : 0;
        demi_sgarray_t sga = {.sga_numsegs = k ? 2 : 1};
        sga.sga_segs[0] = (demi_sgaseg_t){.sgaseg_buf = &h, .sgaseg_len = sizeof(h)};
        sga.sga_segs[1] = (demi_sgaseg_t){.sgaseg_buf = (void *)p, .sgaseg_len = (uint32_t)k};
        demi_qtoken_t qt;
        int e = demi_push(&qt, qd, &sga);
        if (e)
            return e;
        p += k;
        n -= k;
    } while (n > 0);
    return 0;
}

/* A command in RESP, added to hop_tx. */
static bool encode_cmd(int argc, const struct resp_arg *argv)
{
    char num[32];
    bool ok = bytes_add(&hop_tx, num, (size_t)snprintf(num, sizeof(num), "*%d\r\n", argc));
    for (int i = 0; ok && i < argc; i++)
        ok = bytes_add(&hop_tx, num, (size_t)snprintf(num, sizeof(num), "$%zu\r\n", argv[i].len)) &&
             bytes_add(&hop_tx, argv[i].ptr, argv[i].len) && bytes_add(&hop_tx, "\r\n", 2);
    return ok;
}

/* An error reply of the router's own, unless the client turned replies off. */
static void route_error(struct conn *c, const char *err)
{
    if (c->cl.reply_off)
        return;
    if (c->cl.reply_skip) {
        c->cl.reply_skip = false;
        return;
    }
    reply_error(&out, err);
}

/* Runs a command here into `captured` (for another thread, or as this
 * thread's part of a command that every thread runs). */
static void run_captured(struct kv_client *cl, int argc, const struct resp_arg *argv)
{
    reply_target(&capture, capture_push, NULL);
    kv_exec(&srv, cl, argc, argv, &capture);
    if (reply_flush(&capture))
        captured.len = 0; /* out of memory: the requester gets an error */
}

static void fan_free(struct conn *c)
{
    if (!c->fan)
        return;
    for (unsigned i = 0; i < nshards; i++)
        bytes_free(&c->fan[i]);
    free(c->fan);
    c->fan = NULL;
}

/*
 * The commands after one sent to thread @shard, in [p, p + n): those that
 * follow it without a break and go to the same thread join it in hop_tx
 * (one message there and one back, not one per command; at most HOP_BATCH).
 * Returns how many bytes they took, and counts them in *ncmds.
 */
#define HOP_BATCH 64
static size_t batch_more(unsigned shard, const uint8_t *p, size_t n, unsigned *ncmds)
{
    size_t off = 0;
    while (off < n && *ncmds < HOP_BATCH && hop_tx.len < HOP_CHUNK) {
        size_t used;
        int st = resp_parse(&look, p + off, n - off, &used);
        if (st == RESP_EMPTY) {
            off += used;
            continue;
        }
        if (st != RESP_CMD)
            break;
        struct kv_route rt;
        kv_route(&srv, look.argc, look.argv, nshards, &rt);
        if (rt.kind != KV_ROUTE_SHARD || rt.shard != shard || !encode_cmd(look.argc, look.argv))
            break;
        off += used;
        ++*ncmds;
    }
    resp_reset(&look); /* a command it stopped in is parsed again by the connection's parser */
    return off;
}

/*
 * Before the command the parser holds runs (the bytes after it are
 * [rest, rest + rest_len)): sends it where its keys are (true, c->hop set;
 * *extra is how many bytes of the rest went with it), or replies the
 * router's error (true), or leaves it to run here (false).
 */
static bool route_cmd(struct conn *c, const uint8_t *rest, size_t rest_len, size_t *extra)
{
    struct kv_route rt;
    *extra = 0;
    kv_route(&srv, c->p.argc, c->p.argv, nshards, &rt);
    switch (rt.kind) {
    case KV_ROUTE_HERE:
        return false;
    case KV_ROUTE_SHARD:
        if (rt.shard == self)
            return false;
        break;
    case KV_ROUTE_CROSSSLOT:
        route_error(c, "CROSSSLOT Keys in request don't hash to the same slot");
        return true;
    case KV_ROUTE_REFUSED:
        route_error(c, rt.why);
        return true;
    case KV_ROUTE_ALL:
        break;
    }
    hop_tx.len = 0;
    if (!encode_cmd(c->p.argc, c->p.argv)) {
        route_error(c, "OOM command not allowed: no memory to pass it to another thread");
        return true;
    }
    unsigned ncmds = 1;
    /* CLIENT REPLY SKIP drops one reply: that command goes alone. */
    if (rt.kind == KV_ROUTE_SHARD && !c->cl.reply_skip)
        *extra = batch_more(rt.shard, rest, rest_len, &ncmds);
    struct hop h = {.qd = c->qd, .serial = c->serial};
    if (rt.kind == KV_ROUTE_ALL) {
        c->fan = calloc(nshards, sizeof(*c->fan));
        if (!c->fan) {
            route_error(c, "OOM command not allowed: no memory to pass it to another thread");
            return true;
        }
    }
    for (unsigned i = 0; i < nshards; i++) {
        if (i == self || (rt.kind == KV_ROUTE_SHARD && i != rt.shard))
            continue;
        int e = hop_send(cli_pipe[i], h, hop_tx.p, hop_tx.len);
        if (e) {
            /* The messages sent before stay on their way: the connection
             * cannot be answered in order any more. */
            ratelog(&log_hop, "cannot pass a command to thread %u: %s; disconnecting client id=%llu", i,
                    strerror(e), (unsigned long long)c->cl.id);
            c->closing = true;
            fan_free(c);
            return true;
        }
        c->fan_want++;
        hops_sent += ncmds;
    }
    c->hop = true;
    c->hop_silent = c->cl.reply_off || c->cl.reply_skip;
    c->cl.reply_skip = false;
    c->fan_combine = rt.combine;
    if (rt.kind == KV_ROUTE_ALL) {
        /* This thread's part, now: kv_exec sees the client's own state. */
        captured.len = 0;
        bool off = c->cl.reply_off;
        c->cl.reply_off = false;
        run_captured(&c->cl, c->p.argc, c->p.argv);
        c->cl.reply_off = off;
        if (!bytes_add(&c->fan[self], captured.p, captured.len))
            c->fan[self].len = 0;
    }
    return true;
}

/* The replies of every thread to a KV_ROUTE_ALL command, combined into
 * hop_tx as the client would get them from one server. */
static void fan_combine(struct conn *c)
{
    static const char bad[] = "-ERR a thread's reply was lost\r\n";
    hop_tx.len = 0;
    long long sum = 0;
    const struct bytes *err = NULL;
    for (unsigned i = 0; i < nshards && !err; i++) {
        const struct bytes *b = &c->fan[i];
        if (b->len == 0 || b->p[0] == '-')
            err = b;
        else if (c->fan_combine != KV_COMBINE_ALL_OK) {
            long long v;
            const uint8_t *crlf = memchr(b->p, '\r', b->len);
            char want = c->fan_combine == KV_COMBINE_SUM ? ':' : '*';
            if (b->p[0] != want || !crlf || crlf + 1 == b->p + b->len || crlf[1] != '\n' ||
                !resp_str2ll(b->p + 1, (size_t)(crlf - b->p - 1), &v) || v < 0)
                err = b;
            else
                sum += v;
        }
    }
    if (err) {
        if (err->len)
            bytes_add(&hop_tx, err->p, err->len);
        else
            bytes_add(&hop_tx, bad, sizeof(bad) - 1);
        return;
    }
    if (c->fan_combine == KV_COMBINE_ALL_OK) {
        bytes_add(&hop_tx, c->fan[self].p, c->fan[self].len);
        return;
    }
    char num[32];
    bytes_add(&hop_tx, num, (size_t)snprintf(num, sizeof(num), "%c%lld\r\n",
                                             c->fan_combine == KV_COMBINE_SUM ? ':' : '*', sum));
    if (c->fan_combine == KV_COMBINE_ARRAYS)
        for (unsigned i = 0; i < nshards; i++) {
            const uint8_t *body = (const uint8_t *)memchr(c->fan[i].p, '\n', c->fan[i].len) + 1; /* checked */
            bytes_add(&hop_tx, body, c->fan[i].len - (size_t)(body - c->fan[i].p));
        }
}

/* The rest of a reply from thread @from for the connection (qd, serial). */
static void hop_reply(unsigned from, const struct hop *h, const uint8_t *p, size_t n)
{
    struct conn *c = conn_of(h->qd);
    if (!c || c->serial != h->serial || !c->hop)
        return; /* the client is gone */
    if (c->fan) {
        if (!bytes_add(&c->fan[from], p, n)) {
            mem_drop(c, "out of memory for a reply from another thread");
            return;
        }
        if (!(h->flags & HOP_LAST) || --c->fan_want > 0)
            return;
        fan_combine(c);
        fan_free(c);
        p = hop_tx.p;
        n = hop_tx.len;
    }
    if (!c->hop_silent && n > 0) {
        int e = send_copy(c, p, n);
        if (e) {
            if (e == ENOMEM)
                mem_drop(c, "out of memory");
            else
                conn_drop(c);
            return;
        }
    }
    if (!(h->flags & HOP_LAST))
        return;
    /* The reply is complete: run what the client sent after it. */
    c->hop = false;
    c->fan_want = 0;
    reply_target(&out, conn_push, c);
    exec_conn = c;
    batch_now = kv_now_ms();
    if (c->in_len)
        conn_run_in(c);
    conn_batch_end(c);
}

/* A request from thread @from, complete in req_in[from]: its commands run
 * here, their replies go back. */
static void hop_serve(unsigned from, const struct hop *h)
{
    struct bytes *in = &req_in[from];
    struct resp_parser p;
    resp_init(&p);
    captured.len = 0;
    batch_now = kv_now_ms(); /* the time this request's commands see */
    size_t off = 0;
    while (off < in->len) {
        size_t used;
        int st = resp_parse(&p, in->p + off, in->len - off, &used);
        if (st != RESP_CMD)
            break; /* cannot be: the requester parsed it */
        run_captured(&proxy[from], p.argc, p.argv);
        hops_served++;
        off += used;
    }
    resp_free(&p);
    in->len = 0;
    if (in->cap > HOP_CHUNK * 4)
        bytes_free(in);
    static const char oom[] = "-OOM command not allowed: no memory for the reply\r\n";
    const uint8_t *rp = captured.len ? captured.p : (const uint8_t *)oom;
    size_t rn = captured.len ? captured.len : sizeof(oom) - 1;
    int e = hop_send(srv_pipe[from], *h, rp, rn);
    if (e)
        ratelog(&log_hop, "cannot send a reply to thread %u: %s", from, strerror(e));
    if (captured.cap > HOP_CHUNK * 4)
        bytes_free(&captured);
}

/* A completion on one of the pipes: true if it was one. */
static bool hop_result(demi_qresult_t *r)
{
    unsigned from;
    bool is_srv = false;
    for (from = 0; from < nshards; from++) {
        if (from == self)
            continue;
        if (r->qr_qd == srv_pipe[from]) {
            is_srv = true;
            break;
        }
        if (r->qr_qd == cli_pipe[from])
            break;
    }
    if (from == nshards)
        return false;
    if (r->qr_opcode == DEMI_OPC_FAILED) {
        if (r->qr_ret == ECANCELED || stop)
            return true;
        bool pop = r->qr_qt == pipe_qt[is_srv][from];
        ratelog(&log_hop, "a %s on the pipe %s thread %u failed: %s%s", pop ? "pop" : "push", is_srv ? "from" : "to",
                from, strerror((int)r->qr_ret), pop ? "; posted again" : "");
        if (pop) {
            /* Out of heap for the message: the client holding the most
             * buffers goes (if one holds enough), and the pop is tried
             * again, at once if that freed memory. */
            exec_conn = NULL;
            bool freed = r->qr_ret == ENOMEM && reclaim();
            int64_t at = mono_ns() + (freed ? 0 : HOP_RETRY_NS);
            if (!repop || at < repop_at)
                repop_at = at;
            repop |= 1u << (2 * from + is_srv);
            srv.hop_pops_retried++;
        }
        return true;
    }
    if (r->qr_opcode != DEMI_OPC_POP)
        return true; /* a push done */
    demi_sgarray_t *sga = &r->qr_value.sga;
    if (sga->sga_numsegs == 0)
        return true; /* the other thread has stopped */
    /* The message in one piece. */
    const uint8_t *m = sga->sga_segs[0].sgaseg_buf;
    size_t n = sga->sga_segs[0].sgaseg_len;
    if (sga->sga_numsegs > 1) {
        hop_rx.len = 0;
        for (uint32_t i = 0; i < sga->sga_numsegs; i++)
            if (!bytes_add(&hop_rx, sga->sga_segs[i].sgaseg_buf, sga->sga_segs[i].sgaseg_len))
                die("memory for a message from another thread", ENOMEM);
        m = hop_rx.p;
        n = hop_rx.len;
    }
    struct hop h;
    if (n < sizeof(h))
        die("a short message from another thread", EPROTO);
    memcpy(&h, m, sizeof(h));
    if (is_srv) {
        if (!bytes_add(&req_in[from], m + sizeof(h), n - sizeof(h)))
            die("memory for a request from another thread", ENOMEM);
        if (h.flags & HOP_LAST)
            hop_serve(from, &h);
    } else {
        hop_reply(from, &h, m + sizeof(h), n - sizeof(h));
    }
    demi_sgafree(sga);
    int e = demi_pop(&pipe_qt[is_srv][from], r->qr_qd);
    if (e && !stop)
        die("pop on a pipe", e);
    return true;
}

/* Posts again the pipe pops that failed, when their time has come. */
static void hop_repop(void)
{
    if (!repop || mono_ns() < repop_at)
        return;
    uint32_t bits = repop;
    repop = 0;
    for (unsigned j = 0; j < nshards; j++)
        for (int side = 0; side < 2; side++) {
            if (!(bits & (1u << (2 * j + side))))
                continue;
            int e = demi_pop(&pipe_qt[side][j], side ? srv_pipe[j] : cli_pipe[j]);
            if (e)
                die("pop on a pipe", e);
        }
}

/* The name of the pipe where thread @to serves the requests of @from. */
static void pipe_name(char *buf, size_t n, unsigned to, unsigned from)
{
    snprintf(buf, n, "demi-kv.%d.%u.%u", (int)getpid(), to, from);
}

/* Opens (or creates: the srv_pipe end) the pipe end of thread @j and
 * posts its first pop. */
static void pipe_start(unsigned j, const char *name, bool create)
{
    int *qd = create ? &srv_pipe[j] : &cli_pipe[j];
    int e = create ? demi_create_pipe(qd, name) : demi_open_pipe(qd, name);
    if (e)
        die(create ? "demi_create_pipe" : "demi_open_pipe", e);
    if ((e = demi_pop(&pipe_qt[create][j], *qd)))
        die("pop on a pipe", e);
}

/* Makes the pipes to and from every other thread: its own ends to serve
 * requests before the barrier, the others' after. */
static void hop_create(unsigned idx)
{
    self = idx;
    reply_init(&capture);
    resp_init(&look);
    for (unsigned j = 0; j < nshards; j++) {
        srv_pipe[j] = cli_pipe[j] = -1;
        if (j == idx)
            continue;
        char name[64];
        pipe_name(name, sizeof(name), idx, j);
        pipe_start(j, name, true);
        kv_client_init(&srv, &proxy[j]);
        snprintf(proxy[j].addr, sizeof(proxy[j].addr), "thread:%u", j);
    }
}

static void hop_open(void)
{
    for (unsigned j = 0; j < nshards; j++) {
        if (j == self)
            continue;
        char name[64];
        pipe_name(name, sizeof(name), j, self);
        pipe_start(j, name, false);
    }
}

static void hop_close(void)
{
    for (unsigned j = 0; j < nshards; j++) {
        if (j == self)
            continue;
        demi_close(srv_pipe[j]);
        demi_close(cli_pipe[j]);
        bytes_free(&req_in[j]);
        kv_client_free(&proxy[j]);
    }
    reply_free(&capture);
    resp_free(&look);
    bytes_free(&captured);
    bytes_free(&hop_tx);
    bytes_free(&hop_rx);
}

/* ---- the clients as the server commands see them (CLIENT, MONITOR) ---- */

/* What CLIENT LIST shows of a new connection. */
static void conn_identify(struct conn *c, const struct sockaddr_in *peer)
{
    if (!c)
        return;
    char ip[INET_ADDRSTRLEN];
    if (inet_ntop(AF_INET, &peer->sin_addr, ip, sizeof(ip)))
        snprintf(c->cl.addr, sizeof(c->cl.addr), "%s:%u", ip, ntohs(peer->sin_port));
    struct sockaddr_in local;
    socklen_t len = sizeof(local);
    if (demi_getsockname(c->qd, (struct sockaddr *)&local, &len) == 0 &&
        inet_ntop(AF_INET, &local.sin_addr, ip, sizeof(ip)))
        snprintf(c->cl.laddr, sizeof(c->cl.laddr), "%s:%u", ip, ntohs(local.sin_port));
    else
        snprintf(c->cl.laddr, sizeof(c->cl.laddr), "%s:%u", srv.bind, srv.port);
    c->cl.fd = c->qd;
    c->cl.ctime_ms = c->cl.atime_ms = kv_now_ms();
}

static struct conn *conn_of_client(struct kv_client *cl)
{
    return (struct conn *)((char *)cl - offsetof(struct conn, cl));
}

static struct kv_client *clients_next(struct kv_client *prev)
{
    for (size_t i = prev ? (size_t)conn_of_client(prev)->qd + 1 : 0; i < nconns_cap; i++)
        if (conns[i])
            return &conns[i]->cl;
    return NULL;
}

static void clients_mem_of(const struct kv_client *cl, struct kv_client_mem *m)
{
    const struct conn *c = conn_of_client((struct kv_client *)cl);
    m->qbuf = c->in_len;
    m->omem = conn_obuf(c);
    m->total = conn_mem(c) + c->mon_cap + sizeof(*c);
}

/* CLIENT KILL of another client than the one running the command. */
static void clients_kill(struct kv_client *cl)
{
    struct conn *c = conn_of_client(cl);
    if (c == exec_conn)
        c->closing = true;
    else
        conn_close(c);
}

/* Keeps mons in step with the client's MONITOR mode. */
static void mon_update(struct conn *c)
{
    if (c->cl.monitor && c->mon_at < 0) {
        if (nmons == mons_cap) {
            size_t cap = mons_cap ? mons_cap * 2 : 8;
            struct conn **m = realloc(mons, cap * sizeof(*m));
            if (!m) {
                c->cl.monitor = false; /* cannot follow it: not a monitor after all */
                srv.monitors--;
                return;
            }
            mons = m;
            mons_cap = cap;
        }
        c->mon_at = (long)nmons;
        mons[nmons++] = c;
    } else if (!c->cl.monitor && c->mon_at >= 0) {
        mons[c->mon_at] = mons[--nmons];
        mons[c->mon_at]->mon_at = c->mon_at;
        c->mon_at = -1;
    }
}

/* Pushes the monitor's pending lines. false if it was disconnected (over
 * its output limit, or a push failed). */
static bool mon_flush(struct conn *c)
{
    if (c->mon_over) {
        ratelog(&log_drop, "monitor id=%llu closed for overcoming of output buffer limits",
                (unsigned long long)c->cl.id);
        srv.obuf_disconnections++;
        conn_drop(c);
        return false;
    }
    if (c->mon_len == 0)
        return true;
    size_t n = c->mon_len;
    c->mon_len = 0; /* no longer pending: the pushes count it */
    if (send_copy(c, c->mon, n)) {
        conn_drop(c);
        return false;
    }
    if (c->mon_cap > 65536) {
        free(c->mon);
        c->mon = NULL;
        c->mon_cap = 0;
    }
    return !conn_limits(c, mono_ns());
}

static void mon_flush_all(void)
{
    for (size_t i = nmons; i-- > 0;)
        if (i < nmons)
            mon_flush(mons[i]);
}

/* One MONITOR line for every monitor: the running client's own line goes
 * after its reply (in the reply builder), the others' into their pending
 * lines; a monitor whose output would pass its hard limit is dropped. */
static void monitor_feed(const char *line, size_t len)
{
    uint64_t hard = srv.obuf_limit[KV_OBUF_NORMAL].hard;
    for (size_t i = 0; i < nmons; i++) {
        struct conn *c = mons[i];
        if (c->mon_over || c->closing)
            continue;
        if (!line || (hard && conn_obuf(c) + len >= hard)) {
            c->mon_over = true;
            continue;
        }
        if (c == exec_conn) {
            reply_raw(&out, line, len);
            continue;
        }
        if (c->mon_len + len > c->mon_cap) {
            size_t cap = c->mon_cap ? c->mon_cap : 4096;
            while (cap < c->mon_len + len)
                cap *= 2;
            uint8_t *p = realloc(c->mon, cap);
            if (!p) {
                c->mon_over = true;
                continue;
            }
            c->mon = p;
            c->mon_cap = cap;
        }
        memcpy(c->mon + c->mon_len, line, len);
        c->mon_len += len;
    }
}

static void clients_ops_init(void)
{
    srv.clients.next = clients_next;
    srv.clients.mem = clients_mem_of;
    srv.clients.kill = clients_kill;
    srv.clients.monitor_feed = monitor_feed;
}

/* SHUTDOWN: what the loop does once the command ran. */
static void shutdown_begin(void)
{
    fprintf(stderr, "demi-kv: user requested shutdown (SHUTDOWN%s)%s\n",
            srv.shutdown_nosave ? " NOSAVE"
            : srv.shutdown_save ? " SAVE: demi-kv keeps no snapshot, only the --aof log"
                                : "",
            aof_on ? "; making the log durable before exiting" : "");
    stop = 1;
}

/* ---- accepting ---- */

/* Failures that say nothing about the listening socket itself: out of
 * descriptors or memory for now, or a connection gone before its accept. */
static bool accept_transient(int e)
{
    return e == EMFILE || e == ENFILE || e == ENOMEM || e == ENOBUFS || e == ECONNABORTED || e == EPROTO ||
           e == EPERM || e == EAGAIN || e == EINTR || e == ETIMEDOUT || e == ECONNRESET;
}

static void accept_failed(int e)
{
    if (!accept_transient(e))
        die("accept", e);
    ratelog(&log_accept, "accept: %s; serving the %llu connected clients, accepting again in %lld ms", strerror(e),
            (unsigned long long)srv.connected_clients,
            (long long)((accept_backoff ? accept_backoff * 2 : 1000000) / 1000000));
    /* The kernel keeps the connection whose accept failed: trying again at
     * once would fail again, thousands of times a second. Wait, from 1 ms
     * doubling up to 1 s while the accepts fail. */
    accept_backoff = accept_backoff ? accept_backoff * 2 : 1000000;
    if (accept_backoff > 1000000000LL)
        accept_backoff = 1000000000LL;
    accepting = false;
    accept_at = mono_ns() + accept_backoff;
}

static void accept_arm(void)
{
    int e = demi_accept(&accept_qt, listen_qd);
    if (e)
        accept_failed(e);
    else
        accepting = true;
}

/* ---- the loop ---- */

static void handle(demi_qresult_t *r)
{
    if (nshards > 1 && hop_result(r))
        return;
    if (aof_on && aof_owns(&aof, r->qr_qd, r->qr_qt)) {
        aof_result(r);
        return;
    }
    if (aof_on && aof_rewrite_owns(&aof, r->qr_qd, r->qr_qt)) {
        rewrite_result(r);
        return;
    }
    struct conn *c = conn_of(r->qr_qd);
    switch (r->qr_opcode) {
    case DEMI_OPC_ACCEPT:
        accepting = false;
        accept_backoff = 0;
        conn_new(r->qr_value.ares.qd);
        conn_identify(conn_of(r->qr_value.ares.qd), &r->qr_value.ares.addr);
        accept_arm();
        break;
    case DEMI_OPC_POP:
        if (c && c->popping && c->pop_qt == r->qr_qt)
            conn_popped(c, &r->qr_value.sga);
        else
            demi_sgafree(&r->qr_value.sga);
        break;
    case DEMI_OPC_PUSH:
        if (c)
            conn_pushed(c, r->qr_qt);
        break;
    case DEMI_OPC_FAILED:
        if (r->qr_ret == ECANCELED)
            break; /* an operation of a queue we closed */
        if (r->qr_qd == listen_qd) {
            /* Out of descriptors or memory for one connection: keep
             * serving the others, and accept again a little later. */
            if (r->qr_qt == accept_qt)
                accept_failed((int)r->qr_ret);
            break;
        }
        if (!c || !conn_owns(c, r->qr_qt))
            break; /* a closed connection's */
        if (r->qr_ret == ENOMEM && c->popping && c->pop_qt == r->qr_qt) {
            /* No heap for the receive buffer: the client holding the most
             * goes, not this one, unless it is this one. */
            c->popping = false;
            exec_conn = c;
            bool freed = reclaim();
            exec_conn = NULL;
            if (freed)
                conn_next_pop(c);
            else
                mem_drop(c, "out of memory"); /* this one holds the most */
            break;
        }
        conn_drop(c); /* reset by the client, or a failed push */
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

/* On catnap every client is a descriptor: as Redis does, maxclients is
 * lowered to what the descriptor limit allows, keeping 32 for the rest. */
static void fit_maxclients(void)
{
    struct rlimit rl;
    if (strcmp(srv.libos, "catnap") != 0 || getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return;
    uint64_t fit = rl.rlim_cur > 33 ? (uint64_t)rl.rlim_cur - 32 : 1;
    if (fit < srv.maxclients) {
        fprintf(stderr,
                "demi-kv: you requested maxclients of %llu requiring at least %llu max file descriptors; "
                "the limit is %llu: maxclients has been reduced to %llu\n",
                (unsigned long long)srv.maxclients, (unsigned long long)srv.maxclients + 32,
                (unsigned long long)rl.rlim_cur, (unsigned long long)fit);
        srv.maxclients = fit;
    }
}

/* The command line, shared by the threads. */
struct opts {
    struct sockaddr_in addr;
    const char *aof_path;
    bool aof_repair;
    const char *obuf_arg, *maxclients_arg, *maxmemory_arg;
    struct app_threads th;
};

static void serve(void *arg, uint32_t idx);

int main(int argc, char **argv)
{
    static const struct option lo[] = {{"addr", required_argument, 0, 'a'},
                                       {"aof", required_argument, 0, 'f'},
                                       {"aof-repair", no_argument, 0, 'r'},
                                       {"client-output-buffer-limit", required_argument, 0, 'o'},
                                       {"maxclients", required_argument, 0, 'c'},
                                       {"maxmemory", required_argument, 0, 'm'},
                                       {"threads", required_argument, 0, 't'},
                                       {"cpus", required_argument, 0, 'C'},
                                       {"help", no_argument, 0, 'h'},
                                       {"version", no_argument, 0, 'V'},
                                       {0, 0, 0, 0}};
    struct opts o = {.th = {.prog = "demi-kv", .n = 1}};
    parse_addr("127.0.0.1:6379", &o.addr);
    int opt;
    while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (opt == 'o') {
            o.obuf_arg = optarg;
        } else if (opt == 'c') {
            o.maxclients_arg = optarg;
        } else if (opt == 'm') {
            o.maxmemory_arg = optarg;
        } else if (opt == 'a') {
            if (parse_addr(optarg, &o.addr)) {
                fprintf(stderr, "demi-kv: --addr: expected IPv4:PORT, got %s\n", optarg);
                usage(stderr, 2);
            }
        } else if (opt == 'f') {
            if (!*optarg) {
                fprintf(stderr, "demi-kv: --aof: expected a file name\n");
                usage(stderr, 2);
            }
            o.aof_path = optarg;
        } else if (opt == 'r') {
            o.aof_repair = true;
        } else if (opt == 't') {
            app_threads_parse_n(&o.th, optarg);
        } else if (opt == 'C') {
            app_threads_parse_cpus(&o.th, optarg);
        } else if (opt == 'h') {
            usage(stdout, 0);
        } else if (opt == 'V') {
            printf("demi-kv (libdemi) %s\n", demi_version());
            exit(0);
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

    if (o.th.n > 1) {
        if (o.aof_path) {
            fprintf(stderr, "demi-kv: --aof cannot be used with --threads (one log per keyspace is not built)\n");
            exit(2);
        }
        uint16_t port = ntohs(o.addr.sin_port);
        if (port == 0 || port >= 49152) {
            fprintf(stderr, "demi-kv: --threads %u: give a fixed port below 49152 (the threads share it; ephemeral\n"
                            "         ports each belong to one instance)\n", o.th.n);
            exit(2);
        }
    }
    nshards = o.th.n;
    struct demi_args args = {.argc = argc, .argv = argv};
    if (o.th.n > 1) {
        app_threads_run(&o.th, &args, serve, &o);
        return 0;
    }
    int e = demi_init(&args);
    if (e)
        die("demi_init", e);
    serve(&o, 0);
    return 0;
}

/* One thread's server: its own keyspace (its slots' with --threads), its
 * own connections, on its own instance. */
static void serve(void *arg, uint32_t idx)
{
    const struct opts *o = arg;
    const char *aof_path = o->aof_path;
    int e;
    if ((e = kv_server_init(&srv)))
        die("init", e);
    const char *libos = getenv("LIBOS");
    srv.libos = libos && *libos ? libos : "catnap";
    srv.clock_ms = batch_clock;
    srv.clients_mem = clients_mem;
    srv.reclaim = reclaim;
    clients_ops_init();
    srv.bgrewriteaof = bgrewriteaof;
    batch_now = kv_now_ms();
    reply_init(&out);
    out.reclaim = reclaim;
    const char *why = NULL;
    if (o->obuf_arg && kv_obuf_parse(o->obuf_arg, srv.obuf_limit, &why)) {
        fprintf(stderr, "demi-kv: --client-output-buffer-limit %s: %s\n", o->obuf_arg, why);
        exit(2);
    }
    if (o->maxmemory_arg && kv_mem_parse(o->maxmemory_arg, &srv.maxmemory)) {
        fprintf(stderr, "demi-kv: --maxmemory %s: expected a memory value (bytes, or with k, kb, m, mb, g, gb)\n",
                o->maxmemory_arg);
        exit(2);
    }
    if (o->maxclients_arg) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(o->maxclients_arg, &end, 10);
        if (errno || *end || !*o->maxclients_arg || *o->maxclients_arg == '-' || v < 1 || v > 1000000) {
            fprintf(stderr, "demi-kv: --maxclients %s: expected 1..1000000\n", o->maxclients_arg);
            exit(2);
        }
        srv.maxclients = v;
    }
    fit_maxclients();

    if (aof_path) {
        /* Replay before listening: no client sees a partial keyspace. */
        if ((e = aof_open(&aof, aof_path, o->aof_repair, &srv.aof))) {
            fprintf(stderr, "demi-kv: --aof %s: %s%s\n", aof_path, strerror(e),
                    e == EBUSY     ? " (another process has the log open)"
                    : e == EUCLEAN ? " (damage in the middle of the log, with valid records after it: nothing "
                                     "was changed; --aof-repair cuts the log at the damage, losing those records)"
                                   : "");
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
    if ((e = demi_bind(listen_qd, (const struct sockaddr *)&o->addr, sizeof(o->addr))))
        die("bind", e);
    if ((e = demi_listen(listen_qd, 1024)))
        die("listen", e);
    struct sockaddr_in local;
    socklen_t len = sizeof(local);
    if ((e = demi_getsockname(listen_qd, (struct sockaddr *)&local, &len)))
        die("getsockname", e);
    srv.port = ntohs(local.sin_port);
    inet_ntop(AF_INET, &local.sin_addr, srv.bind, sizeof(srv.bind));
    if ((e = demi_accept(&accept_qt, listen_qd)))
        die("accept", e);
    accepting = true;
    if (nshards > 1)
        hop_create(idx);
    app_threads_bound(&o->th); /* every thread listens and serves its pipes */
    if (nshards > 1)
        hop_open();
    if (idx == 0) {
        printf("ready %s:%u\n", srv.bind, srv.port);
        fflush(stdout);
    }

    demi_qresult_t qr[BATCH];
    int64_t next_expire = mono_ns() + EXPIRE_PERIOD_NS;
    while (!stop) {
        int64_t wait_ns = next_expire - mono_ns();
        if (!accepting && accept_at - mono_ns() < wait_ns)
            wait_ns = accept_at - mono_ns();
        if (repop && repop_at - mono_ns() < wait_ns)
            wait_ns = repop_at - mono_ns();
        if (wait_ns < 0 || (aof_on && aof_rewrite_busy(&aof)))
            wait_ns = 0; /* the rewrite's walk has work */
        struct timespec to = {wait_ns / 1000000000LL, wait_ns % 1000000000LL};
        int n = 0;
        e = demi_wait_next_n(qr, BATCH, &n, &to);
        if (e && e != ETIMEDOUT)
            die("wait", e);
        for (int i = 0; i < n; i++)
            handle(&qr[i]);
        if (srv.shutdown) {
            shutdown_begin();
            break;
        }
        mon_flush_all();
        hop_repop();
        if (!accepting && mono_ns() >= accept_at)
            accept_arm();
        memory_check();
        /* Group commit: the writes of this whole batch, from every
         * client, go into one record, unless one is on its way already. */
        if (aof_on && (e = aof_kick(&aof)))
            aof_fail(e);
        bool cron = mono_ns() >= next_expire;
        rewrite_tick(cron);
        if (aof_on)
            aof_rewrite_kick(&aof);
        if (cron) {
            batch_now = kv_now_ms();
            kv_active_expire(&srv, EXPIRE_BUDGET_US);
            kv_server_cron(&srv);
            /* The soft limit's seconds pass for clients no longer read. */
            int64_t now = mono_ns();
            for (size_t i = 0; i < nconns_cap; i++)
                if (conns[i] && conns[i]->soft_since)
                    conn_limits(conns[i], now);
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
    if (nshards > 1) {
        hop_close();
        fprintf(stderr,
                "demi-kv: thread %u: %llu connections, %llu commands run, %llu sent to other threads, %llu run for "
                "them, %zu keys\n",
                idx, (unsigned long long)srv.connections_received, (unsigned long long)srv.commands,
                (unsigned long long)hops_sent, (unsigned long long)hops_served, kv_size(&srv.store));
    }
    if (aof_on && (e = aof_close(&aof, 10)))
        fprintf(stderr, "demi-kv: aof: the last writes may not be in the log: %s\n", strerror(e));
    else if (srv.shutdown)
        fprintf(stderr, "demi-kv: %sready to exit, bye bye\n", aof_on ? "the log is durable; " : "");
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
    free(mons);
}
