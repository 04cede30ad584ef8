/*
 * demi-txnd: one replica of one TxnStore shard, on PDPIX, one thread, any
 * libOS (LIBOS=...). Uses only libdemi's public API. It must never trust a
 * peer: a malformed frame closes that connection only, and every
 * per-connection resource (input, replies not yet sent, operations waiting
 * for backups) has a bound.
 *
 *   demi-txnd --mode qw|occ --addr IP:PORT [--replicas IP:PORT,... --index I]
 *             [--max-clients N] [--max-prepared N] [--max-memory BYTES]
 *             [--log PATH [--log-repair] [--log-compact-min BYTES]]
 *
 * The wire format is msg.h's; the store and its validation are store.h's.
 *
 * qw (quorum writes): every replica answers GET, PUT and LOAD on its own;
 * the client writes to every replica and waits for a majority. Replicas
 * never talk to each other.
 *
 * occ: replica 0 of --replicas is the primary. It validates PREPAREs
 * (txs_prepare), then replicates each prepare and commit to its backups
 * (REPL_PREPARE, REPL_COMMIT, over one TCP connection per backup that it
 * opens and reopens every 100 ms while it is down) and answers the client
 * once enough backups acknowledged to make a majority of all the replicas
 * with itself. Backups apply what the primary sends in the order it sends
 * it (TCP orders it), with the conflict checks skipped, and answer
 * PREPARE/COMMIT/ABORT from clients with NOTPRIMARY. Every replica answers
 * GET and LOAD. Each time the primary links to a backup it first brings it
 * up to date on that link (sync.h: the state transfer, pumped by
 * sync_pump a bounded step at a time); a backup answers GET with UNAVAIL
 * until such a sync completed.
 *
 * The loop keeps one pop outstanding per connection and takes completions
 * with demi_wait_next_n, as demi-kv does (demi_wait_any would need every
 * outstanding token in one array, rebuilt each turn: a cost per completion
 * that grows with the connections); its timeout, at most 100 ms, drives
 * the reconnection and accept-retry timers.
 * A popped buffer is parsed in place; only a frame split across pops is
 * copied into the connection's input buffer (one frame at most). Replies
 * are encoded into one heap buffer per connection and pushed once per loop
 * turn. A client whose pushed replies are not yet sent past OUT_LIMIT is
 * not read (the popped buffer is kept where parsing stopped) until pushes
 * complete.
 *
 * --log PATH: every change to the store is also appended to a cattree log
 * (txlog.h), which a restart replays before serving; replies to clients
 * (and acks to the primary) then wait until the log holds every change
 * made before them (each connection's ob_need, wq).
 */
#include "msg.h"
#include "store.h"
#include "sync.h"
#include "txlog.h"

#include <demi/libos.h>
#include <demi/sga.h>
#include <demi/version.h>
#include <demi/wait.h>

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
/* Heap held by replies pushed and not yet sent (plus the buffer being
 * gathered; each buffer counted whole) at which a client stops being read. */
#define OUT_LIMIT ((uint64_t)4 << 20)
/* Heap held by pushes to another replica not yet sent at which the link
 * counts as down (a peer gone without a reset, on a kernel-bypass stack,
 * never takes them). */
#define LINK_OUT_MAX ((uint64_t)64 << 20)
/* The size of a connection's reply buffer (a larger frame gets its own). */
#define OB_CHUNK 65536
/* An idle connection's input buffer above this is freed. */
#define IN_KEEP            65536
#define MS                 1000000LL
#define TICK_NS            (100 * MS)
#define RETRY_NS           (100 * MS)  /* a down backup is tried again this often */
#define CONNECT_TIMEOUT_NS (1000 * MS) /* a connect not done by then is retried */
#define REPLICAS_MAX       16
#define OPS_MAX            (1u << 24) /* an operation's slot fits in reqid's low 24 bits */
#define SLOT_BITS          24

/* ---- configuration and counters ---- */

static bool occ;     /* --mode occ (else qw) */
static bool primary; /* occ, and the primary of the current view (set_role) */
static uint32_t nreplicas = 1;
static uint32_t my_index;
static struct sockaddr_in replicas[REPLICAS_MAX];
static uint64_t max_clients = 1024;
static uint32_t ops_max = 65536; /* operations waiting for backups */
static struct txs *store;
static struct txl tlog = {.qd = -1}; /* --log; qd -1 without */
static const char *log_path;
static bool log_repair;
static uint64_t log_compact_min = (uint64_t)64 << 20;

static struct {
    uint64_t req[TXN_TYPE_END];    /* frames received, by type */
    uint64_t status[TXN_ST_END];   /* replies sent to clients, by status */
    uint64_t conflicts;            /* prepares refused on a conflict */
    uint64_t malformed;            /* connections closed for a bad frame */
    uint64_t accepted, refused;    /* connections; refused: over --max-clients */
    uint64_t dropped_replies;      /* to clients gone before their reply */
    uint64_t links_up, links_down; /* backup connections made and lost */
    uint64_t repl_sent, acks;      /* REPL_* frames sent, REPL_ACKs received */
    uint64_t nacks;                /* REPL_ACKs that were not OK */
} st;

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void die(const char *what, int err)
{
    fprintf(stderr, "demi-txnd: %s: %s\n", what, strerror(err));
    exit(1);
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void addr_str(const struct sockaddr_in *a, char *buf, size_t len)
{
    char ip[INET_ADDRSTRLEN] = "?";
    inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
    snprintf(buf, len, "%s:%u", ip, ntohs(a->sin_port));
}

/* A message that may repeat without end (a bad client, a failed accept):
 * at most RATELOG_BURST lines a second, then one saying how many were left
 * out. */
#define RATELOG_BURST 10

struct ratelog {
    int64_t window; /* the start of the current second */
    uint32_t lines; /* lines printed in it */
    uint64_t suppressed;
};

static struct ratelog log_bad, log_accept, log_nack, log_orphan;

static void ratelog(struct ratelog *rl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ratelog(struct ratelog *rl, const char *fmt, ...)
{
    int64_t now = mono_ns();
    if (now - rl->window >= 1000000000LL) {
        if (rl->suppressed)
            fprintf(stderr, "demi-txnd: (%llu more lines like the last one were left out)\n",
                    (unsigned long long)rl->suppressed);
        rl->window = now;
        rl->lines = 0;
        rl->suppressed = 0;
    }
    if (rl->lines >= RATELOG_BURST) {
        rl->suppressed++;
        return;
    }
    rl->lines++;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "demi-txnd: %s\n", line);
}

/* ---- connections ---- */

/* A push not yet completed. */
struct pend {
    demi_qtoken_t qt;
    uint64_t held; /* the heap its buffer holds: the whole buffer, whatever the bytes pushed */
};

/* Replies pushed once the log holds change `need` durably. */
struct held_out {
    demi_sgarray_t sga;
    size_t len, cap;
    uint64_t need;
};

struct conn {
    int qd;
    uint64_t serial; /* tells this connection from an earlier one on the same qd */
    int backup;      /* primary: the index in bk[] of the backup this link goes to; -1: a client;
                      * -2 - S: this replica's link to shard S's primary (DECISIONs) */
    char peer[64];
    /* Input: a frame split across pops, copied here (in_want: its length
     * once its header is in, else 0). */
    uint8_t *in;
    size_t in_len, in_cap, in_want;
    /* The popped buffer being parsed: kept while the client is over its
     * output limit, from segment hseg, offset hoff. */
    demi_sgarray_t held;
    bool holding;
    uint32_t hseg;
    size_t hoff;
    demi_qtoken_t pop_qt;
    bool popping;
    /* Output: replies gathered in ob (ob_len of ob_cap bytes), then pushed;
     * pq lists the pushes not yet completed, oldest first (they complete in
     * order), out_bytes the heap their buffers hold (a reply buffer's whole
     * capacity, so that many small pushes to a peer that does not read,
     * or is gone without a reset, are bounded by the heap they pin). */
    demi_sgarray_t ob;
    size_t ob_len, ob_cap;
    struct pend *pq;
    size_t pq_head, pq_n, pq_cap;
    uint64_t out_bytes;
    /* --log: the change (txl_need) the replies in ob wait for, and earlier
     * reply buffers waiting for theirs, oldest first (wq_bytes: the heap
     * they hold). */
    uint64_t ob_need;
    struct held_out *wq;
    size_t wq_n, wq_cap;
    uint64_t wq_bytes;
    uint32_t nwaiting; /* operations waiting for backups whose reply goes here */
    bool eof;          /* the peer is done sending: close once nwaiting is 0 */
    bool bad;          /* a malformed frame: close after the replies before it */
    bool broken;       /* a failed push or pop: close */
    const char *why;   /* why it closes, for the log */
    /* occ, a connection from another replica: its store, being merged
     * during a view change (vc_view: that view; 0: none). */
    uint64_t vc_view;
    uint32_t vc_from;
    struct txsync_in vin;
    /* qw, a connection from a replica that rejoins: this store, being
     * sent on it (sync_pump). */
    bool pulling;
    struct txsync_out pull;
    /* On the list of connections with output to push or a close to do. */
    bool dirty;
    struct conn *dprev, *dnext;
};

static struct conn **conns; /* indexed by qd */
static uint32_t npulling;   /* connections with pulling set */
static size_t nconns_cap;
static uint64_t nclients, next_serial;
static struct conn *dirty_head;

static struct conn *conn_of(int qd)
{
    return qd >= 0 && (size_t)qd < nconns_cap ? conns[qd] : NULL;
}

static void dirty_link(struct conn *c)
{
    if (c->dirty)
        return;
    c->dprev = NULL;
    c->dnext = dirty_head;
    if (dirty_head)
        dirty_head->dprev = c;
    dirty_head = c;
    c->dirty = true;
}

static void dirty_unlink(struct conn *c)
{
    if (!c->dirty)
        return;
    if (c->dprev)
        c->dprev->dnext = c->dnext;
    else
        dirty_head = c->dnext;
    if (c->dnext)
        c->dnext->dprev = c->dprev;
    c->dprev = c->dnext = NULL;
    c->dirty = false;
}

/* Marks the connection for closing at the end of the loop turn: it is
 * never freed while a frame of it, or of another, is being handled. */
static void conn_break(struct conn *c, const char *why)
{
    if (!c->broken) {
        c->broken = true;
        c->why = why;
    }
    dirty_link(c);
}

static bool conn_over(const struct conn *c)
{
    return c->backup < 0 && c->out_bytes + c->wq_bytes + c->ob_cap >= OUT_LIMIT;
}

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

/* Pushes LEN bytes of SGA, a reply buffer of CAP bytes. The push holds
 * its own reference on the buffer, so ours is released at once. */
static void conn_push(struct conn *c, demi_sgarray_t *buf, size_t len, size_t cap)
{
    demi_sgarray_t sga = *buf;
    sga.sga_segs[0].sgaseg_len = (uint32_t)len;
    demi_qtoken_t qt;
    int e = pq_reserve(c) ? demi_push(&qt, c->qd, &sga) : ENOMEM;
    demi_sgafree(buf);
    if (e) {
        conn_break(c, "push failed");
        return;
    }
    c->pq[(c->pq_head + c->pq_n) % c->pq_cap] = (struct pend){qt, cap};
    c->pq_n++;
    c->out_bytes += cap;
}

/* --log: pushes the held reply buffers whose change is durable, in order.
 * Returns true when none is left waiting. */
static bool wq_release(struct conn *c)
{
    size_t i = 0;
    while (i < c->wq_n && c->wq[i].need <= txl_durable(&tlog) && !c->broken) {
        c->wq_bytes -= c->wq[i].cap;
        conn_push(c, &c->wq[i].sga, c->wq[i].len, c->wq[i].cap);
        i++;
    }
    if (i > 0) {
        memmove(c->wq, c->wq + i, (c->wq_n - i) * sizeof(*c->wq));
        c->wq_n -= i;
    }
    return c->wq_n == 0;
}

/* --log: moves ob, whose change is not durable yet, to the held buffers. */
static void wq_hold(struct conn *c)
{
    if (c->wq_n == c->wq_cap) {
        size_t cap = c->wq_cap ? c->wq_cap * 2 : 4;
        struct held_out *q = realloc(c->wq, cap * sizeof(*q));
        if (!q) {
            conn_break(c, "out of memory for replies");
            return;
        }
        c->wq = q;
        c->wq_cap = cap;
    }
    c->wq[c->wq_n++] = (struct held_out){c->ob, c->ob_len, c->ob_cap, c->ob_need};
    c->wq_bytes += c->ob_cap;
    memset(&c->ob, 0, sizeof(c->ob));
    c->ob_len = c->ob_cap = 0;
}

/* Pushes the gathered replies, or, with --log, holds them until the
 * change they wait for is durable. */
static void conn_flush(struct conn *c)
{
    if (c->broken)
        return;
    bool ready = wq_release(c);
    if (c->ob_len == 0 || c->broken)
        return;
    if (!ready || c->ob_need > txl_durable(&tlog)) {
        wq_hold(c);
        return;
    }
    uint64_t len = c->ob_len, cap = c->ob_cap;
    demi_sgarray_t ob = c->ob;
    memset(&c->ob, 0, sizeof(c->ob));
    c->ob_len = c->ob_cap = 0;
    conn_push(c, &ob, len, cap);
}

/* Encodes M at the end of the connection's reply buffer; it is pushed at
 * the end of the loop turn. */
static void conn_send(struct conn *c, const struct txn_msg *m)
{
    if (c->broken)
        return;
    size_t n = txn_msg_size(m);
    if (n == 0) {
        /* Cannot happen for what the replica sends (its bounds are msg.h's). */
        fprintf(stderr, "demi-txnd: cannot encode a %s for %s\n", txn_type_name(m->type), c->peer);
        conn_break(c, "a reply could not be encoded");
        return;
    }
    if (c->ob_len + n > c->ob_cap) {
        conn_flush(c);
        if (c->broken)
            return;
        size_t cap = n > OB_CHUNK ? n : OB_CHUNK;
        c->ob = demi_sgaalloc(cap);
        if (c->ob.sga_numsegs != 1) {
            if (c->ob.sga_numsegs)
                demi_sgafree(&c->ob);
            memset(&c->ob, 0, sizeof(c->ob));
            conn_break(c, "out of memory for replies");
            return;
        }
        c->ob_cap = cap;
    }
    txn_msg_encode(m, (uint8_t *)c->ob.sga_segs[0].sgaseg_buf + c->ob_len, n);
    c->ob_len += n;
    /* What the reply says rests on every change made so far (even a GET's
     * value may be a change not yet durable); the primary's frames to its
     * backups need not wait. */
    if (c->backup == -1 && tlog.qd >= 0) {
        uint64_t need = txl_need(&tlog);
        if (need > c->ob_need)
            c->ob_need = need;
    }
    dirty_link(c);
}

static struct conn *conn_new(int qd, int backup, const struct sockaddr_in *peer)
{
    if ((size_t)qd >= nconns_cap) {
        size_t cap = nconns_cap ? nconns_cap : 256;
        while (cap <= (size_t)qd)
            cap *= 2;
        struct conn **t = realloc(conns, cap * sizeof(*t));
        if (!t)
            return NULL;
        memset(t + nconns_cap, 0, (cap - nconns_cap) * sizeof(*t));
        conns = t;
        nconns_cap = cap;
    }
    struct conn *c = calloc(1, sizeof(*c));
    if (!c || demi_pop(&c->pop_qt, qd) != 0) {
        free(c);
        return NULL;
    }
    c->popping = true;
    c->qd = qd;
    c->serial = ++next_serial;
    c->backup = backup;
    addr_str(peer, c->peer, sizeof(c->peer));
    int one = 1;
    demi_setsockopt(qd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    conns[qd] = c;
    if (backup == -1)
        nclients++;
    return c;
}

static void backup_down(int i, const char *why);
static void rlink_down(uint32_t s);

/* Closes at once (graceful: pushes already made still go out). */
static void conn_close(struct conn *c)
{
    dirty_unlink(c);
    if (c->holding)
        demi_sgafree(&c->held);
    if (c->ob_cap)
        demi_sgafree(&c->ob);
    for (size_t i = 0; i < c->wq_n; i++)
        demi_sgafree(&c->wq[i].sga);
    free(c->wq);
    /* Cancels the pending pop: its ECANCELED result finds no connection. */
    demi_close(c->qd);
    conns[c->qd] = NULL;
    if (c->backup == -1)
        nclients--;
    if (c->pulling)
        npulling--;
    int backup = c->backup;
    const char *why = c->why ? c->why : "closed";
    free(c->in);
    free(c->pq);
    free(c);
    if (backup >= 0)
        backup_down(backup, why);
    else if (backup <= -2)
        rlink_down((uint32_t)(-2 - backup));
}

/* ---- requests ---- */

static struct txn_msg in_msg;  /* the frame being handled */
static struct txn_msg out_msg; /* a reply being encoded */

/* Replies to a client (or, with REPL_ACK, to the primary). */
static void reply(struct conn *c, uint8_t type, uint64_t reqid, uint8_t status, uint64_t ts, const uint8_t *val,
                  size_t vlen)
{
    out_msg.type = type;
    out_msg.reqid = reqid;
    out_msg.status = status;
    out_msg.txnid = 0;
    out_msg.ts = ts;
    out_msg.key = (struct txn_bytes){NULL, 0};
    out_msg.val = (struct txn_bytes){val, (uint32_t)vlen};
    out_msg.nreads = out_msg.nwrites = 0;
    st.status[status]++;
    conn_send(c, &out_msg);
}

/* --log: appends a change just made to the store (M, as a log entry of
 * TYPE). A change the log cannot take is never acknowledged: the log
 * stops (txl_need is then beyond anything durable), and so do replies. */
static void log_change(const struct txn_msg *m, uint8_t type)
{
    if (tlog.qd < 0 || tlog.err)
        return;
    int e = txl_append(&tlog, m, type);
    if (e) {
        tlog.err = e;
        fprintf(stderr, "demi-txnd: --log %s: cannot log a %s: %s; no more replies will be sent\n", tlog.path,
                txn_type_name(type), strerror(e));
    }
}

static void log_abort(uint64_t txnid)
{
    struct txn_msg a = {.type = TXN_REPL_ABORT, .txnid = txnid};
    log_change(&a, TXN_REPL_ABORT);
}

static void do_get(struct conn *c, const struct txn_msg *m)
{
    const uint8_t *val = NULL;
    size_t vlen = 0;
    uint64_t ver = 0;
    int e = txs_get(store, m->key.p, m->key.n, m->ts, &val, &vlen, &ver);
    if (e == 0)
        reply(c, TXN_GET_REPLY, m->reqid, TXN_ST_OK, ver, val, vlen);
    else if (e == ENOENT)
        reply(c, TXN_GET_REPLY, m->reqid, TXN_ST_NOTFOUND, 0, NULL, 0);
    else /* ESTALE: the versions at or before ts were discarded */
        reply(c, TXN_GET_REPLY, m->reqid, TXN_ST_BADREQ, 0, NULL, 0);
}

/* PUT (qw) and LOAD: last writer wins, so an older version is no error. */
static void do_put(struct conn *c, const struct txn_msg *m, uint8_t rtype)
{
    uint64_t newest = 0;
    int e = txs_put(store, m->key.p, m->key.n, m->val.p, m->val.n, m->ts, &newest);
    if (e == 0)
        log_change(m, TXN_LOAD);
    uint8_t s = e == 0 || e == EEXIST ? TXN_ST_OK
                : e == ENOMEM         ? TXN_ST_FULL
                : e == EBUSY          ? TXN_ST_ABORT /* occ: a prepared transaction holds the key */
                                      : TXN_ST_BADREQ;
    reply(c, rtype, m->reqid, s, rtype == TXN_PUT_REPLY ? newest : 0, NULL, 0);
}

/* A backup's state transfer from its primary (sync.h), as received. */
static struct txsync_in sync_in;
static struct txsync_keep sync_keep; /* this backup's prepared transactions, during a sync (sync.h) */

/* A backup applying what its primary decided, in the primary's order. */
static void do_repl(struct conn *c, const struct txn_msg *m)
{
    int e;
    uint8_t s;
    uint64_t dts = 0;
    if (m->type == TXN_REPL_PREPARE) {
        e = txs_prepare(store, m->txnid, m->ts, m->reads, m->nreads, m->writes, m->nwrites, true, NULL, NULL);
        if (e == 0)
            log_change(m, TXN_REPL_PREPARE);
        /* EALREADY: decided here already; only a commit at that timestamp
         * leaves this replica holding what the prepare would. */
        if (e == EALREADY && txs_decided(store, m->txnid, &dts) == 0 && dts == m->ts)
            e = 0;
        s = e == 0 || e == EEXIST ? TXN_ST_OK : e == ENOSPC || e == ENOMEM ? TXN_ST_FULL : TXN_ST_BADREQ;
    } else if (m->type == TXN_REPL_COMMIT) {
        e = txs_commit(store, m->txnid, m->ts);
        if (e == 0)
            log_change(m, TXN_REPL_COMMIT);
        if (e == ENOENT) {
            if (txs_decided(store, m->txnid, &dts) == 0) {
                /* Sent again by a new primary (its client asked again). */
                e = dts == m->ts ? 0 : EINVAL;
            } else {
                /* Not prepared here: during a sync, one committed before
                 * the sync's scan of prepared transactions reached it (its
                 * versions come with the keys). Remembered all the same,
                 * so that a commit sent again finds it. */
                struct txn_msg d = {.type = TXN_SYNC_DECIDED, .txnid = m->txnid, .ts = m->ts};
                if (txs_note_decided(store, m->txnid, m->ts) == 0)
                    log_change(&d, TXN_SYNC_DECIDED);
                e = sync_in.active ? 0 : ENOENT;
            }
        }
        s = e == 0 ? TXN_ST_OK : TXN_ST_BADREQ;
    } else {
        if (txs_abort(store, m->txnid) == 0) {
            log_change(m, TXN_REPL_ABORT);
        } else if (txs_note_decided(store, m->txnid, 0) == 0) {
            struct txn_msg d = {.type = TXN_SYNC_DECIDED, .txnid = m->txnid};
            log_change(&d, TXN_SYNC_DECIDED); /* not prepared here: remembered */
        }
        s = TXN_ST_OK;
    }
    reply(c, TXN_REPL_ACK, m->reqid, s, 0, NULL, 0);
}

/* ---- the primary's backups and the operations waiting for them ---- */

enum { B_DOWN, B_CONNECTING, B_UP };

struct backup {
    uint32_t replica; /* its index in --replicas */
    char name[40];
    int state;
    int qd;            /* B_CONNECTING, B_UP */
    demi_qtoken_t cqt; /* B_CONNECTING: the connect */
    int64_t at;        /* B_DOWN: next try; B_CONNECTING: give up */
    struct conn *c;    /* B_UP */
    bool warned;       /* its failure to connect was logged */
    bool syncing;      /* B_UP: its state transfer is not all sent yet (sync_pump) */
    bool started;      /* B_UP, this replica the primary: VIEW_START sent (the link counts) */
    bool contributing; /* B_UP, changing views: the sync is this store on its way to the new primary */
    struct txsync_out sync;
    int64_t sync_start;
};

static struct backup bk[REPLICAS_MAX];
static uint32_t nbk;
static uint32_t need; /* backup acks that make a majority with the primary */

enum { OP_PREPARE, OP_COMMIT, OP_DECISION };

/* A prepare or commit waiting for backups. Masks have one bit per bk[]
 * entry: sent (a backup that got the frame and had not dropped before
 * answering), acked (answered OK), nacked (answered an error). */
struct op {
    uint64_t reqid; /* 0: a free slot */
    uint8_t kind;
    bool full; /* a backup answered FULL */
    uint32_t sent, acked, nacked;
    uint32_t fwd; /* a prepare: the links it was forwarded to, syncing ones included */
    uint64_t txnid, ts;
    int cqd; /* the client's connection, while its serial matches */
    uint64_t cserial, creqid;
    int32_t next_free;
};

static struct op *ops;
static uint32_t nops, ops_alloc, ops_inuse;
static int32_t free_op = -1;
static uint64_t op_seq;

static struct op *op_alloc(struct conn *c, uint8_t kind, const struct txn_msg *m)
{
    uint32_t slot;
    if (free_op >= 0) {
        slot = (uint32_t)free_op;
        free_op = ops[slot].next_free;
    } else {
        if (nops == ops_max)
            return NULL;
        if (nops == ops_alloc) {
            uint32_t cap = ops_alloc ? ops_alloc * 2 : 256;
            if (cap > ops_max)
                cap = ops_max;
            struct op *t = realloc(ops, cap * sizeof(*t));
            if (!t)
                return NULL;
            ops = t;
            ops_alloc = cap;
        }
        slot = nops++;
    }
    struct op *op = &ops[slot];
    memset(op, 0, sizeof(*op));
    op->reqid = (++op_seq << SLOT_BITS) | slot;
    op->kind = kind;
    op->txnid = m->txnid;
    op->ts = m->ts;
    op->cqd = c->qd;
    op->cserial = c->serial;
    op->creqid = m->reqid;
    op->next_free = -1;
    c->nwaiting++;
    ops_inuse++;
    return op;
}

static struct op *op_find(uint64_t reqid)
{
    uint32_t slot = (uint32_t)(reqid & (OPS_MAX - 1));
    return reqid && slot < nops && ops[slot].reqid == reqid ? &ops[slot] : NULL;
}

static void op_free(struct op *op)
{
    op->reqid = 0;
    op->next_free = free_op;
    free_op = (int32_t)(op - ops);
    ops_inuse--;
}

/* An operation answered at once after all (a refused prepare or commit):
 * freed with no reply. */
static void op_drop(struct conn *c, struct op *op)
{
    c->nwaiting--;
    op_free(op);
}

/* Answers the operation's client, if it is still connected, and frees it. */
static void op_finish(struct op *op, uint8_t status)
{
    struct conn *c = conn_of(op->cqd);
    if (c && c->serial == op->cserial) {
        if (op->kind == OP_DECISION) /* how the transaction was decided, now that a majority holds it */
            reply(c, TXN_DECISION_REPLY, op->creqid, status == TXN_ST_OK && !op->ts ? TXN_ST_ABORT : status, op->ts,
                  NULL, 0);
        else
            reply(c, op->kind == OP_PREPARE ? TXN_PREPARE_REPLY : TXN_COMMIT_REPLY, op->creqid, status, op->ts, NULL,
                  0);
        if (--c->nwaiting == 0 && c->eof)
            dirty_link(c);
    } else {
        st.dropped_replies++;
    }
    op_free(op);
}

static void send_repl(uint32_t mask, uint8_t type, uint64_t reqid, uint64_t txnid, uint64_t ts)
{
    out_msg.type = type;
    out_msg.reqid = reqid;
    out_msg.status = 0;
    out_msg.txnid = txnid;
    out_msg.ts = ts;
    out_msg.nreads = out_msg.nwrites = 0;
    for (uint32_t i = 0; i < nbk; i++) {
        if ((mask & (1u << i)) && bk[i].state == B_UP) {
            conn_send(bk[i].c, &out_msg);
            st.repl_sent++;
        }
    }
}

/* The backups that count toward a majority: linked and brought up to
 * date (a backup still being synced may lack earlier state). */
static uint32_t up_mask(void)
{
    uint32_t mask = 0;
    for (uint32_t i = 0; i < nbk; i++)
        if (bk[i].state == B_UP && bk[i].started && !bk[i].c->broken && !bk[i].syncing)
            mask |= 1u << i;
    return mask;
}

/* The backups that get every replicated frame: syncing ones too, so that
 * what is decided during their sync follows what the sync already sent. */
static uint32_t link_mask(void)
{
    uint32_t mask = 0;
    for (uint32_t i = 0; i < nbk; i++)
        if (bk[i].state == B_UP && bk[i].started && !bk[i].c->broken)
            mask |= 1u << i;
    return mask;
}

/* Decides the operation once enough backups answered (or can no longer):
 * a prepare that cannot reach a majority is aborted here and on the
 * backups that got it; a commit stays applied here (the client hears
 * UNAVAIL). */
static void op_check(struct op *op)
{
    int ok = __builtin_popcount(op->acked);
    int pending = __builtin_popcount(op->sent & ~(op->acked | op->nacked));
    if ((uint32_t)ok >= need) {
        op_finish(op, TXN_ST_OK);
        return;
    }
    if ((uint32_t)(ok + pending) >= need)
        return;
    if (op->kind == OP_PREPARE) {
        if (txs_abort(store, op->txnid) == 0)
            log_abort(op->txnid);
        send_repl(op->fwd, TXN_REPL_ABORT, 0, op->txnid, 0);
    }
    op_finish(op, op->full ? TXN_ST_FULL : TXN_ST_UNAVAIL);
}

static void on_ack(uint32_t i, const struct txn_msg *m)
{
    st.acks++;
    struct op *op = op_find(m->reqid);
    uint32_t bit = 1u << i;
    if (!op || !(op->sent & bit) || ((op->acked | op->nacked) & bit))
        return; /* a late ack (its operation was decided), or a fire-and-forget abort's */
    if (m->status == TXN_ST_OK) {
        op->acked |= bit;
    } else {
        st.nacks++;
        op->nacked |= bit;
        op->full |= m->status == TXN_ST_FULL;
        ratelog(&log_nack, "backup %s refused %s of txn %llu: %s", bk[i].name,
                op->kind == OP_PREPARE ? "a prepare" : "a commit", (unsigned long long)op->txnid,
                txn_status_name(m->status));
    }
    op_check(op);
}

/* Is a prepare of TXNID, other than SELF, still waiting for its backups? */
static bool prepare_pending(uint64_t txnid, const struct op *self)
{
    for (uint32_t i = 0; i < nops; i++)
        if (&ops[i] != self && ops[i].reqid && ops[i].kind == OP_PREPARE && ops[i].txnid == txnid)
            return true;
    return false;
}

static void do_prepare(struct conn *c, struct txn_msg *m)
{
    uint32_t up = up_mask();
    if ((uint32_t)__builtin_popcount(up) < need) {
        reply(c, TXN_PREPARE_REPLY, m->reqid, TXN_ST_UNAVAIL, 0, NULL, 0);
        return;
    }
    /* The slot first: once prepared, the transaction must be replicated. */
    struct op *op = NULL;
    if (need > 0 && !(op = op_alloc(c, OP_PREPARE, m))) {
        reply(c, TXN_PREPARE_REPLY, m->reqid, TXN_ST_FULL, 0, NULL, 0);
        return;
    }
    enum txs_conflict why = TXS_CONFLICT_NONE;
    uint64_t cver = 0;
    int e = txs_prepare(store, m->txnid, m->ts, m->reads, m->nreads, m->writes, m->nwrites, false, &why, &cver);
    if (e == 0)
        log_change(m, TXN_REPL_PREPARE);
    if (e == EEXIST && prepare_pending(m->txnid, op))
        e = EBUSY; /* a repeat while the first is still replicating: not yet a vote */
    uint64_t dts = 0;
    if (e == EALREADY) /* decided already: a repeat; its vote was yes if it committed at this timestamp */
        e = txs_decided(store, m->txnid, &dts) == 0 && dts == m->ts ? EEXIST : EAGAIN;
    if (e || !op) {
        /* Refused; or a repeat of a prepare already replicated (its vote
         * stands); or a single replica: answered now. */
        if (op)
            op_drop(c, op);
        uint8_t s = e == 0 || e == EEXIST        ? TXN_ST_OK
                    : e == EAGAIN                ? TXN_ST_ABORT
                    : e == ENOSPC || e == ENOMEM ? TXN_ST_FULL
                                                 : TXN_ST_BADREQ;
        if (e == EAGAIN)
            st.conflicts++;
        reply(c, TXN_PREPARE_REPLY, m->reqid, s, e == EAGAIN ? cver : m->ts, NULL, 0);
        return;
    }
    /* The same transaction, forwarded: only the type and the id change. */
    m->type = TXN_REPL_PREPARE;
    m->reqid = op->reqid;
    uint32_t fwd = link_mask();
    for (uint32_t i = 0; i < nbk; i++) {
        if (fwd & (1u << i)) {
            conn_send(bk[i].c, m);
            st.repl_sent++;
        }
    }
    op->sent = up;
    op->fwd = fwd;
    op_check(op);
}

static void do_commit(struct conn *c, const struct txn_msg *m)
{
    struct op *op = NULL;
    if (need > 0 && !(op = op_alloc(c, OP_COMMIT, m))) {
        reply(c, TXN_COMMIT_REPLY, m->reqid, TXN_ST_FULL, 0, NULL, 0);
        return;
    }
    int e = txs_commit(store, m->txnid, m->ts);
    uint64_t dts = 0;
    if (e == 0) {
        log_change(m, TXN_REPL_COMMIT);
    } else if (e == ENOENT && txs_decided(store, m->txnid, &dts) == 0 && dts == m->ts) {
        /* Committed already (the client asks again: its first answer was
         * lost with a primary, or was UNAVAIL): replicated again, and OK
         * once a majority holds it. */
    } else {
        /* Aborted (here, the orphan sweep's doing: TXN_ID_SOLO), or
         * ENOENT (not prepared here, not remembered), or EINVAL (another
         * timestamp). */
        if (op)
            op_drop(c, op);
        bool aborted = e == ENOENT && txs_decided(store, m->txnid, &dts) == 0 && dts == 0;
        reply(c, TXN_COMMIT_REPLY, m->reqid, aborted ? TXN_ST_ABORT : TXN_ST_BADREQ, 0, NULL, 0);
        return;
    }
    uint32_t up = up_mask();
    send_repl(link_mask(), TXN_REPL_COMMIT, op ? op->reqid : 0, m->txnid, m->ts);
    if (!op) {
        reply(c, TXN_COMMIT_REPLY, m->reqid, TXN_ST_OK, m->ts, NULL, 0);
        return;
    }
    /* Too few backups up: decided at once (UNAVAIL), applied here anyway. */
    op->sent = up;
    op_check(op);
}

/* The primary aborts TXNID if it is prepared here: logged, and sent to
 * every linked backup without waiting for their acks. Whether it was. */
static bool abort_everywhere(uint64_t txnid)
{
    if (txs_abort(store, txnid) != 0)
        return false;
    log_abort(txnid);
    send_repl(link_mask(), TXN_REPL_ABORT, 0, txnid, 0);
    return true;
}

/* Not waiting for the backups' acks: an abort decides nothing that could
 * be lost (a backup that misses it keeps a prepared transaction that never
 * commits, and forced prepares ignore its locks). */
static void do_abort(struct conn *c, const struct txn_msg *m)
{
    abort_everywhere(m->txnid);
    reply(c, TXN_ABORT_REPLY, m->reqid, TXN_ST_OK, 0, NULL, 0);
}

/* ---- orphaned prepares (--orphan-ms, --shards) ----
 *
 * A transaction prepared here whose client never decides it (the client
 * died, or gave up) would hold its keys for ever. Its id says which shard
 * decides it then (msg.h, TXN_ID_SOLO and TXN_ID_MULTI): every orphan_ns
 * the primary lists the prepares such a shard decides, and acts on those
 * the previous listing held too (between orphan_ns and twice that old):
 *  - one this shard decides (single-shard, or this shard its coordinator)
 *    is aborted, as a client's ABORT would be. Its client prepares and
 *    commits at the coordinator first, so no shard has committed it yet;
 *  - one another shard coordinates (--shards gives their replicas) is
 *    asked after: a DECISION to that shard's primary, whose answer (once a
 *    majority of its replicas holds it) is applied here.
 * Prepares with neither bit (a client of another design, or raw tests)
 * wait for their client (demi-txnd(1), BUGS). */
static int64_t orphan_ns = 10000 * MS; /* --orphan-ms; 0: never */
static int64_t orphan_at;              /* the next listing */
static uint64_t *orph_prev, *orph_cur; /* the previous listing (sorted) and this one: ops_max each */
static size_t orph_nprev, orph_ncur;

/* --shards: every shard's replicas, in the clients' order; this one is
 * shard my_shard (-1: no --shards; multi-shard prepares are then held). */
#define SHARDS_MAX 16 /* TXN_ID_COORD_MASK's reach */
static uint32_t nshards_all, shard_nrep[SHARDS_MAX];
static struct sockaddr_in shard_addr[SHARDS_MAX][REPLICAS_MAX];
static int my_shard = -1;

static struct {
    uint64_t aborted;  /* by the sweep, deciding alone */
    uint64_t asked;    /* DECISIONs sent to coordinators */
    uint64_t resolved; /* prepares decided by a coordinator's answer */
    uint64_t unknown;  /* answers UNAVAIL: the coordinator cannot say (yet) */
    uint64_t answered; /* DECISIONs this replica answered as coordinator */
} orph_st;

/* Does this shard decide TXNID once its client is gone? */
static bool decides_alone(uint64_t txnid)
{
    return (txnid & TXN_ID_SOLO) ||
           ((txnid & TXN_ID_MULTI) && my_shard >= 0 && txn_id_coord(txnid) == (uint32_t)my_shard);
}

/* Another shard, which --shards names, coordinates TXNID. */
static bool decided_elsewhere(uint64_t txnid)
{
    return !(txnid & TXN_ID_SOLO) && (txnid & TXN_ID_MULTI) && my_shard >= 0 &&
           txn_id_coord(txnid) != (uint32_t)my_shard && txn_id_coord(txnid) < nshards_all;
}

static void conn_bad(struct conn *c, const char *why);

/* A link to a coordinator shard's guessed primary, for DECISIONs. */
struct rlink {
    int state; /* B_DOWN, B_CONNECTING, B_UP */
    uint32_t guess;
    int qd;
    demi_qtoken_t cqt;
    int64_t at; /* B_CONNECTING: give up */
    struct conn *c;
};
static struct rlink rlk[SHARDS_MAX];

static void rlink_connect(uint32_t s)
{
    struct rlink *r = &rlk[s];
    const struct sockaddr_in *a = &shard_addr[s][r->guess];
    int e = demi_socket(&r->qd, AF_INET, SOCK_STREAM, 0);
    if (e == 0 && (e = demi_connect(&r->cqt, r->qd, (const struct sockaddr *)a, sizeof(*a))) != 0)
        demi_close(r->qd);
    if (e) {
        r->guess = (r->guess + 1) % shard_nrep[s];
        return; /* the next sweep tries the next replica */
    }
    r->state = B_CONNECTING;
    r->at = mono_ns() + CONNECT_TIMEOUT_NS;
}

static struct rlink *rlink_connecting(int qd, demi_qtoken_t qt)
{
    for (uint32_t s = 0; s < nshards_all; s++)
        if (rlk[s].state == B_CONNECTING && rlk[s].qd == qd && rlk[s].cqt == qt)
            return &rlk[s];
    return NULL;
}

static void rlink_connected(struct rlink *r)
{
    uint32_t s = (uint32_t)(r - rlk);
    struct conn *c = conn_new(r->qd, -2 - (int)s, &shard_addr[s][r->guess]);
    if (!c) {
        demi_close(r->qd);
        r->state = B_DOWN;
        return;
    }
    r->c = c;
    r->state = B_UP;
}

/* A connect that failed or took too long: the next sweep tries the next
 * replica (a connect timed out completes as ECANCELED, matched to
 * nothing). */
static void rlink_failed(struct rlink *r)
{
    demi_close(r->qd);
    r->state = B_DOWN;
    r->guess = (r->guess + 1) % shard_nrep[r - rlk];
}

/* conn_close freed the link to shard S's primary. */
static void rlink_down(uint32_t s)
{
    rlk[s].c = NULL;
    rlk[s].state = B_DOWN;
}

static void rlink_timers(int64_t now)
{
    for (uint32_t s = 0; s < nshards_all; s++)
        if (rlk[s].state == B_CONNECTING && now >= rlk[s].at)
            rlink_failed(&rlk[s]);
}

/* Asks the coordinator of TXNID how it was decided (or connects to it,
 * for the next sweep to ask). */
static void ask_coordinator(uint64_t txnid)
{
    uint32_t s = txn_id_coord(txnid);
    struct rlink *r = &rlk[s];
    if (r->state == B_DOWN)
        rlink_connect(s);
    if (r->state != B_UP || r->c->broken)
        return;
    struct txn_msg q = {.type = TXN_DECISION, .reqid = txnid, .txnid = txnid};
    conn_send(r->c, &q);
    orph_st.asked++;
}

/* A coordinator's answer on the link to shard S (reqid: the txnid). */
static void on_decision_reply(struct conn *c, uint32_t s, const struct txn_msg *m)
{
    if (m->type != TXN_DECISION_REPLY) {
        conn_bad(c, "a coordinator sent something other than DECISION_REPLY");
        return;
    }
    uint64_t id = m->reqid;
    if (m->status == TXN_ST_NOTPRIMARY) {
        rlk[s].guess = (uint32_t)(m->ts % shard_nrep[s]);
        conn_break(c, "not the coordinator's primary"); /* the next sweep links to the one named */
        return;
    }
    if (!primary || !decided_elsewhere(id) || txn_id_coord(id) != s)
        return; /* deposed since, or not a question this replica asked */
    int e = ENOENT;
    if (m->status == TXN_ST_OK && m->ts) {
        if ((e = txs_commit(store, id, m->ts)) == 0) {
            struct txn_msg cm = {.type = TXN_REPL_COMMIT, .txnid = id, .ts = m->ts};
            log_change(&cm, TXN_REPL_COMMIT);
            send_repl(link_mask(), TXN_REPL_COMMIT, 0, id, m->ts);
        }
    } else if (m->status == TXN_ST_ABORT) {
        e = abort_everywhere(id) ? 0 : ENOENT;
    } else {
        orph_st.unknown++;
        ratelog(&log_orphan, "shard %u cannot say how txn %llu was decided (%s): it stays prepared", s,
                (unsigned long long)id, txn_status_name(m->status));
        return;
    }
    if (e == 0)
        orph_st.resolved++;
    else if (e != ENOENT)
        ratelog(&log_orphan, "shard %u's answer for txn %llu (%s at %llu) does not fit it: %s", s,
                (unsigned long long)id, txn_status_name(m->status), (unsigned long long)m->ts, strerror(e));
}

/* The coordinator's end: how TXNID was decided, answered once a majority
 * of this shard holds the decision. One still undecided is aborted first:
 * its client commits here before anywhere else, so no shard committed
 * it, and a COMMIT that comes later gets ABORT. One not known here
 * (decided so long ago that it was forgotten) gets UNAVAIL: the asker
 * keeps it prepared. */
static void do_decision(struct conn *c, const struct txn_msg *m)
{
    uint64_t id = m->txnid, dts = 0;
    if (!decides_alone(id) || !(id & TXN_ID_MULTI)) {
        reply(c, TXN_DECISION_REPLY, m->reqid, TXN_ST_BADREQ, 0, NULL, 0); /* not this shard's to say */
        return;
    }
    if (txs_decided(store, id, &dts) != 0) {
        if (txs_abort(store, id) != 0) {
            reply(c, TXN_DECISION_REPLY, m->reqid, TXN_ST_UNAVAIL, 0, NULL, 0);
            return;
        }
        log_abort(id);
        orph_st.aborted++;
        dts = 0;
    }
    orph_st.answered++;
    uint8_t type = dts ? TXN_REPL_COMMIT : TXN_REPL_ABORT;
    struct op *op = NULL;
    if (need > 0 && !(op = op_alloc(c, OP_DECISION, m))) {
        send_repl(link_mask(), type, 0, id, dts);
        reply(c, TXN_DECISION_REPLY, m->reqid, TXN_ST_UNAVAIL, 0, NULL, 0);
        return;
    }
    uint32_t up = up_mask();
    send_repl(link_mask(), type, op ? op->reqid : 0, id, dts);
    if (!op) {
        reply(c, TXN_DECISION_REPLY, m->reqid, dts ? TXN_ST_OK : TXN_ST_ABORT, dts, NULL, 0);
        return;
    }
    op->ts = dts;
    op->sent = up;
    op_check(op);
}

static void orphan_note(void *arg, uint64_t txnid, uint64_t ts, const struct txn_op *reads, uint32_t nreads,
                        const struct txn_op *writes, uint32_t nwrites)
{
    (void)arg, (void)ts, (void)reads, (void)nreads, (void)writes, (void)nwrites;
    static bool warned;
    if ((txnid & TXN_ID_MULTI) && my_shard < 0 && !warned) {
        fprintf(stderr, "demi-txnd: transactions span shards but --shards is not given: this replica will not "
                        "decide one whose client is gone\n");
        warned = true;
    }
    if ((decides_alone(txnid) || decided_elsewhere(txnid)) && orph_ncur < ops_max)
        orph_cur[orph_ncur++] = txnid;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void orphan_sweep(int64_t now)
{
    rlink_timers(now);
    if (!orph_prev || now < orphan_at)
        return;
    orphan_at = now + orphan_ns;
    orph_ncur = 0;
    if (primary) {
        uint64_t cur = 0;
        while (cur != TXS_SCAN_END)
            txs_scan_prepared(store, &cur, SIZE_MAX, orphan_note, NULL);
    }
    /* A backup lists nothing: its primary decides, and a primary it
     * becomes starts afresh. */
    size_t keep = 0;
    for (size_t i = 0; i < orph_ncur; i++) {
        uint64_t id = orph_cur[i];
        if (!bsearch(&id, orph_prev, orph_nprev, sizeof(id), cmp_u64) || prepare_pending(id, NULL)) {
            orph_cur[keep++] = id;
            continue;
        }
        if (decided_elsewhere(id)) {
            ask_coordinator(id); /* still listed the next time if the answer has not come */
            orph_cur[keep++] = id;
        } else if (abort_everywhere(id)) {
            orph_st.aborted++;
        }
    }
    qsort(orph_cur, keep, sizeof(*orph_cur), cmp_u64);
    uint64_t *t = orph_prev;
    orph_prev = orph_cur;
    orph_cur = t;
    orph_nprev = keep;
}

/* ---- frames ---- */

static bool is_reply_type(uint8_t t)
{
    return t == TXN_GET_REPLY || t == TXN_PUT_REPLY || t == TXN_PREPARE_REPLY || t == TXN_COMMIT_REPLY ||
           t == TXN_ABORT_REPLY || t == TXN_LOAD_REPLY || t == TXN_REPL_ACK || t == TXN_DECISION_REPLY;
}

static void conn_bad(struct conn *c, const char *why)
{
    c->bad = true;
    c->why = why;
}

/* ---- state transfer (sync.h): the primary's pump, the backup's end ---- */

/* Bytes pushed to a syncing backup and not yet sent (plus those gathered)
 * under which the next step of its sync is emitted: the store is streamed
 * as fast as the link takes it, never buffered whole. */
#define SYNC_WINDOW ((uint64_t)1 << 20)
/* Keys or prepared transactions per step: at most 16 x max_versions x
 * TXN_VAL_MAX bytes (32 MiB with the defaults), well under LINK_OUT_MAX. */
#define SYNC_STEP 16

static struct {
    uint64_t started, done; /* primary: syncs begun, syncs all sent */
} sync_st;

/* ---- views: the primary's failover (occ, more than one replica) ----
 *
 * The primary of view v is replica v mod n. Each replica keeps a link (an
 * outgoing connection, bk[]) to every other; the primary uses its links to
 * replicate, the others only to change views. A view starts with
 * VIEW_START on each of the new primary's links, then the state transfer
 * (sync.h), then the replication; the primary sends VIEW_INFO on each link
 * every tick, as a heartbeat.
 *
 * A backup that hears nothing from its primary for --failover-ms moves to
 * view v+1 (V_CHANGE) and sends VIEW_CHANGE to every replica; a replica
 * that gets a VIEW_CHANGE of a view above its own moves there too. From
 * then on it acknowledges nothing of the view it left (frames from the old
 * primary's link are refused). A replica whose store is complete (it holds
 * everything it ever acknowledged: see `complete`) also sends its whole
 * store to the new view's primary, as a state transfer in merge mode. The
 * new primary starts the view once it holds the stores of a majority of
 * the replicas, its own counting if complete: every prepare voted yes and
 * every commit acknowledged was held by a majority of the old view, and
 * any two majorities meet, so the union holds all of them. A view change
 * that does not finish within --failover-ms moves on to the next view.
 *
 * A replica restarted with --rejoin or a log it replayed (V_RECOVER) first
 * asks the others (VIEW_INFO with TXN_VI_QUERY): if one answers that it is
 * in a normal view whose primary is another, it joins it as a backup;
 * otherwise (no answer within --failover-ms, or it is that primary, which
 * lost what it held) it starts a view change. A primary that learns of a
 * higher view (a VIEW_INFO or VIEW_CHANGE) stops being one: the
 * operations waiting for its backups are answered UNAVAIL. */
enum { V_NORMAL, V_CHANGE, V_RECOVER };

static uint64_t view;
static int vstate = V_NORMAL;
/* The store holds everything this replica ever acknowledged: true for a
 * fresh replica and after a log replay, false after --rejoin without a
 * log, and false during a state transfer from the primary (which starts by
 * dropping the prepared transactions) until its SYNC_END, or until the
 * transfer is cut short and they are put back (sync_cut_short). With
 * --log, the log says it too (logrec.h): a replay that ends inside a
 * transfer, or before the first one after --rejoin ended, leaves it
 * false. Changed only through set_complete and sync_frame. */
static bool complete = true;

/* The store became complete (C) or stopped being so: with --log, a bare
 * SYNC_END or SYNC_BEGIN entry records it for a restart, and a
 * compaction's snapshot will begin with the state (txl.incomplete).
 * (sync_frame logs the primary's own SYNC_BEGIN and SYNC_END frames.) */
static void set_complete(bool c, bool log)
{
    bool was = complete;
    complete = c;
    tlog.incomplete = !c;
    if (log && c != was) {
        struct txn_msg m = {.type = c ? TXN_SYNC_END : TXN_SYNC_BEGIN};
        log_change(&m, m.type);
    }
}

/* qw --rejoin: the replicas whose stores this one merged (bits by index),
 * and whether that is enough to answer GET (qw_pull_frame). */
static uint32_t qw_have;
static bool qw_synced = true;

static bool rejoin;                     /* --rejoin */
static int64_t failover_ns = 1000 * MS; /* --failover-ms; 0: never change views on a timeout */
static uint64_t incarnation;            /* this process's: tells a restarted primary from its predecessor */
static uint64_t primary_inc;            /* a backup: the incarnation of its view's primary (0: none yet) */
static int64_t heard_at;                /* a backup: its primary's last frame; otherwise when this state began */
static uint32_t vc_have;                /* V_CHANGE, the new primary: replicas whose stores it holds (bits) */
static int64_t next_beat;
static struct {
    uint64_t changes, led, joined; /* view changes begun; views started as primary; joined as backup */
    uint64_t syncs_cut;            /* syncs to this backup cut short, its prepared transactions put back */
} view_st;

/* The backup's end: the primary's current link is the connection that
 * sent the VIEW_START it follows (its qd and serial); REPL_* and SYNC_*
 * from any other connection are refused, which also closes a stale link
 * (an old primary's) whose frames TCP would not order after the new one's.
 * (sync_in, the state transfer being received, is declared above.) */
static int sync_qd = -1;
static uint64_t sync_serial;
static int64_t sync_in_start;

static uint32_t primary_of(uint64_t v)
{
    return (uint32_t)(v % nreplicas);
}

static bool failover_on(void)
{
    return occ && nreplicas > 1;
}

static void set_role(void)
{
    primary = occ && vstate == V_NORMAL && primary_of(view) == my_index;
}

static bool sync_from(const struct conn *c)
{
    return c->qd == sync_qd && c->serial == sync_serial;
}

static void sync_emit(void *arg, const struct txn_msg *m)
{
    struct backup *b = arg;
    conn_send(b->c, m);
}

static void sync_start(struct backup *b)
{
    txsync_out_start(&b->sync);
    b->syncing = true;
    b->sync_start = mono_ns();
}

static void send_view_msg(struct conn *c, uint8_t type, uint64_t v, uint64_t ts)
{
    out_msg.type = type;
    out_msg.reqid = 0;
    out_msg.status = 0;
    out_msg.txnid = v;
    out_msg.ts = ts;
    out_msg.nreads = out_msg.nwrites = 0;
    conn_send(c, &out_msg);
}

/* Tells the peer this replica's view and state (plus EXTRA bits). */
static void send_view_info(struct conn *c, uint64_t extra)
{
    uint64_t f = (vstate == V_NORMAL ? TXN_VI_NORMAL : 0) | (primary ? TXN_VI_PRIMARY : 0) | extra;
    send_view_msg(c, TXN_VIEW_INFO, view, f);
}

/* --log: a view this replica entered, so that a restart knows it. */
static void log_view(void)
{
    struct txn_msg v = {.type = TXN_VIEW_START, .txnid = view};
    log_change(&v, TXN_VIEW_START);
    tlog.view = view;
}

/* The primary's end of a link in a view it leads: VIEW_START, then the
 * state transfer, then the replication. */
static void link_start(struct backup *b)
{
    send_view_msg(b->c, TXN_VIEW_START, view, incarnation);
    b->started = true;
    sync_start(b);
    sync_st.started++;
}

/* A replica changing views: VIEW_CHANGE on the link, and its store to the
 * new primary when it is complete. */
static void link_change(struct backup *b)
{
    bool to_primary = primary_of(view) == b->replica;
    send_view_msg(b->c, TXN_VIEW_CHANGE, view, my_index | (complete && to_primary ? TXN_VC_COMPLETE : 0));
    b->contributing = complete && to_primary;
    if (b->contributing)
        sync_start(b);
    else
        b->syncing = false;
}

static void link_query(struct backup *b)
{
    send_view_msg(b->c, TXN_VIEW_INFO, view, TXN_VI_QUERY);
}

/*
 * qw --rejoin: a replica that lost its store (restarted without a log)
 * asks each other replica for its store (VIEW_INFO with TXN_VI_PULL on
 * its link) and merges the SYNC_* stream that comes back (sync.h's merge
 * mode; last writer wins per version). A PUT acknowledged by a quorum of
 * n / 2 + 1 replicas is on at least one of any n - n / 2 others, so once
 * that many stores are merged every acknowledged write is here; until
 * then GET is answered UNAVAIL (PUTs are taken meanwhile, as ever).
 */
static uint32_t qw_needed(void)
{
    return nreplicas - nreplicas / 2;
}

static void qw_pull_ask(struct backup *b)
{
    if (qw_synced || (qw_have & (1u << b->replica)))
        return;
    memset(&b->c->vin, 0, sizeof(b->c->vin));
    b->c->vin.merge = true;
    b->c->vc_from = b->replica;
    send_view_msg(b->c, TXN_VIEW_INFO, 0, TXN_VI_PULL);
}

/* A frame of another replica's store, on this replica's link to it. */
static void qw_pull_frame(struct conn *c, const struct txn_msg *m)
{
    uint32_t bit = 1u << c->vc_from;
    if (qw_synced || (qw_have & bit))
        return; /* enough stores merged: the rest is not needed */
    const char *why = txsync_in_apply(&c->vin, store, m);
    if (why) {
        ratelog(&log_bad, "merging the store of replica %u failed: %s", c->vc_from, why);
        conn_bad(c, why);
        return;
    }
    if (m->type == TXN_SYNC_ITEM)
        log_change(m, TXN_SYNC_ITEM);
    if (m->type != TXN_SYNC_END)
        return;
    qw_have |= bit;
    uint32_t n = (uint32_t)__builtin_popcount(qw_have);
    fprintf(stderr, "demi-txnd: merged replica %u's store (%llu versions); %u of the %u needed\n", c->vc_from,
            (unsigned long long)c->vin.items, n, qw_needed());
    if (n < qw_needed())
        return;
    qw_synced = true;
    fprintf(stderr, "demi-txnd: synced from the other replicas (qw): answering GET\n");
    /* On standard output too, after "ready", as an occ backup's line. */
    printf("synced qw\n");
    fflush(stdout);
}

/* What a link does once up, by this replica's state. */
static void link_up(struct backup *b)
{
    b->started = b->contributing = b->syncing = false;
    if (!occ) {
        qw_pull_ask(b);
        return;
    }
    if (primary)
        link_start(b);
    else if (vstate == V_CHANGE)
        link_change(b);
    else if (vstate == V_RECOVER)
        link_query(b);
}

/* Leaving the primary's role: the operations waiting for backups are
 * answered UNAVAIL; what they prepared or committed here stays, for the
 * view change to sort out. The client takes a prepare's UNAVAIL as a
 * doubt: it sends the next primary an ABORT of that transaction, then
 * prepares again under a new id; a commit it sends again. */
static void depose(void)
{
    for (uint32_t k = 0; k < nops; k++)
        if (ops[k].reqid)
            op_finish(&ops[k], TXN_ST_UNAVAIL);
    for (uint32_t i = 0; i < nbk; i++)
        bk[i].started = bk[i].syncing = bk[i].contributing = false;
    fprintf(stderr, "demi-txnd: no longer the primary (view %llu)\n", (unsigned long long)view);
}

/* Log callback for the prepared transactions a cut-short sync puts back. */
static void log_restored(void *arg, const struct txn_msg *m)
{
    (void)arg;
    log_change(m, TXN_SYNC_PREPARED);
}

/* A sync from the primary that began (dropping this backup's prepared
 * transactions, kept in sync_keep) and will not end: they are put back,
 * and the store is complete again (sync.h's txsync_keep). */
static void sync_cut_short(void)
{
    if (!sync_keep.held)
        return;
    uint64_t n = 0;
    int e = txsync_keep_restore(&sync_keep, store, log_restored, NULL, &n);
    view_st.syncs_cut++;
    if (e) {
        fprintf(stderr,
                "demi-txnd: the sync from the primary was cut short; %llu prepared transactions put back, "
                "but not all (%s): this replica's store is not complete\n",
                (unsigned long long)n, strerror(e));
        return;
    }
    set_complete(true, true);
    fprintf(stderr,
            "demi-txnd: the sync from the primary was cut short; its %llu prepared transactions put back, "
            "this replica's store is complete again\n",
            (unsigned long long)n);
}

static void forget_primary_link(void)
{
    if (sync_in.active)
        sync_cut_short();
    txsync_keep_drop(&sync_keep);
    sync_qd = -1;
    sync_serial = 0;
    primary_inc = 0;
    sync_in.active = false;
}

static void drop_contributions(void)
{
    for (size_t i = 0; i < nconns_cap; i++)
        if (conns[i])
            conns[i]->vc_view = 0;
}

static void start_view(void);

/* Moves to view W (above the current one) and asks for it. */
static void enter_change(uint64_t w)
{
    if (primary) {
        vstate = V_CHANGE; /* op_finish's replies are sent; no new operation starts */
        depose();
    }
    view = w;
    vstate = V_CHANGE;
    set_role();
    forget_primary_link();
    drop_contributions();
    heard_at = mono_ns();
    vc_have = complete ? 1u << my_index : 0;
    view_st.changes++;
    fprintf(stderr, "demi-txnd: changing to view %llu (primary: replica %u)%s\n", (unsigned long long)w, primary_of(w),
            complete ? "" : "; this replica's store is not complete and does not count");
    for (uint32_t i = 0; i < nbk; i++)
        if (bk[i].state == B_UP && !bk[i].c->broken)
            link_change(&bk[i]);
    if (primary_of(w) == my_index && (uint32_t)__builtin_popcount(vc_have) >= nreplicas / 2 + 1)
        start_view();
}

/* Joins view V as a backup (its primary's link C, or none yet). */
static void adopt(uint64_t v, struct conn *c, uint64_t inc)
{
    if (primary) {
        vstate = V_CHANGE;
        depose();
    }
    bool news = v != view || vstate != V_NORMAL;
    view = v;
    vstate = V_NORMAL;
    set_role();
    forget_primary_link();
    drop_contributions();
    for (uint32_t i = 0; i < nbk; i++)
        bk[i].syncing = bk[i].contributing = false;
    if (c) {
        sync_qd = c->qd;
        sync_serial = c->serial;
        primary_inc = inc;
    }
    heard_at = mono_ns();
    if (news) {
        view_st.joined++;
        log_view();
        fprintf(stderr, "demi-txnd: view %llu: a backup of replica %u\n", (unsigned long long)v, primary_of(v));
    }
}

/* The new primary holds a majority's stores: the view starts. */
static void start_view(void)
{
    vstate = V_NORMAL;
    set_complete(true, true); /* the union of complete stores of a majority */
    set_role();
    view_st.led++;
    drop_contributions();
    log_view();
    fprintf(stderr, "demi-txnd: view %llu: the primary (stores of %d replicas merged)\n", (unsigned long long)view,
            __builtin_popcount(vc_have));
    /* On standard output too, as "synced view": merging a majority's
     * stores brought it up to date as well. */
    printf("primary view %llu\n", (unsigned long long)view);
    fflush(stdout);
    next_beat = mono_ns() + TICK_NS;
    for (uint32_t i = 0; i < nbk; i++)
        if (bk[i].state == B_UP && !bk[i].c->broken)
            link_up(&bk[i]);
}

/* VIEW_INFO, on any connection from another replica. */
static void on_view_info(struct conn *c, const struct txn_msg *m)
{
    uint64_t v = m->txnid, f = m->ts;
    if (!occ && (f & TXN_VI_PULL) && c->backup == -1) {
        /* A qw replica that rejoins: this store goes back on the
         * connection (again from the start if asked again). */
        npulling += !c->pulling;
        c->pulling = true;
        txsync_out_start(&c->pull);
        return;
    }
    if (!failover_on()) {
        conn_bad(c, "a VIEW_INFO sent to a replica without failover (qw, or a single replica)");
        return;
    }
    if (f & TXN_VI_STALE) {
        /* This replica's VIEW_START was refused: it was the primary of that
         * view once, restarted, and lost what it held. */
        set_complete(false, true);
        enter_change((v > view ? v : view) + 1);
        return;
    }
    if (f & TXN_VI_QUERY) {
        /* A replica rejoining asks. Another rejoining one has nothing to
         * tell (its view is only the last one it logged). */
        if (vstate != V_RECOVER)
            send_view_info(c, 0);
        return;
    }
    if (vstate == V_NORMAL && !primary && v == view && (f & TXN_VI_PRIMARY) && sync_from(c))
        heard_at = mono_ns();
    bool higher = v > view;
    if (!higher && !(v == view && vstate != V_NORMAL && (f & TXN_VI_NORMAL)))
        return;
    if (!(f & TXN_VI_NORMAL))
        enter_change(v); /* it is changing to a higher view: join */
    else if (primary_of(v) == my_index)
        enter_change(v + 1); /* a view this replica led before a restart: it lost that store */
    else
        adopt(v, NULL, 0);
}

/* VIEW_START from the new primary, on its link to this replica. */
static void on_view_start(struct conn *c, const struct txn_msg *m)
{
    uint64_t v = m->txnid;
    if (!failover_on() || primary_of(v) == my_index) {
        conn_bad(c, "a VIEW_START that cannot come from that view's primary");
        return;
    }
    if (v < view) {
        send_view_info(c, 0); /* an old primary: it learns the view and steps down */
        return;
    }
    if (v == view && vstate == V_NORMAL) {
        if (primary_inc && m->ts != primary_inc) {
            /* The same view's primary, another process: it restarted, and
             * without its store. Refuse it and change views. */
            fprintf(stderr, "demi-txnd: the primary of view %llu restarted; changing views\n", (unsigned long long)v);
            send_view_info(c, TXN_VI_STALE);
            enter_change(view + 1);
            return;
        }
        struct conn *old = conn_of(sync_qd);
        if (old && old != c && old->serial == sync_serial)
            conn_break(old, "the primary linked again");
        sync_qd = c->qd;
        sync_serial = c->serial;
        primary_inc = m->ts;
        heard_at = mono_ns();
        return;
    }
    adopt(v, c, m->ts);
}

/* VIEW_CHANGE from another replica, on its link to this one. */
static void on_view_change(struct conn *c, const struct txn_msg *m)
{
    uint64_t w = m->txnid;
    uint32_t from = (uint32_t)(m->ts & TXN_VC_INDEX_MASK);
    if (!failover_on() || from >= nreplicas || from == my_index) {
        conn_bad(c, "a VIEW_CHANGE from no other replica of this group");
        return;
    }
    c->vc_view = 0;
    if (w < view || (w == view && vstate == V_NORMAL)) {
        send_view_info(c, 0); /* that view is past: it learns the current one */
        return;
    }
    if (w > view || vstate == V_RECOVER)
        enter_change(w);
    if (vstate == V_CHANGE && primary_of(w) == my_index && (m->ts & TXN_VC_COMPLETE)) {
        /* Its store follows: merged into this one (sync.h's merge mode). */
        c->vc_view = w;
        c->vc_from = from;
        memset(&c->vin, 0, sizeof(c->vin));
        c->vin.merge = true;
    }
}

/* A frame of a store a replica sends the new primary of a view change. */
static void merge_frame(struct conn *c, const struct txn_msg *m)
{
    if (c->vc_view != view || vstate != V_CHANGE) {
        c->vc_view = 0; /* a change that is over: the rest is not needed */
        return;
    }
    const char *why = txsync_in_apply(&c->vin, store, m);
    if (why) {
        ratelog(&log_bad, "merging the store of replica %u failed: %s", c->vc_from, why);
        c->vc_view = 0;
        conn_bad(c, why);
        return;
    }
    heard_at = mono_ns(); /* progress: the change is not stuck */
    if (m->type != TXN_SYNC_BEGIN && m->type != TXN_SYNC_END)
        log_change(m, m->type);
    if (m->type != TXN_SYNC_END)
        return;
    c->vc_view = 0;
    vc_have |= 1u << c->vc_from;
    fprintf(stderr, "demi-txnd: view %llu: merged replica %u's store (%llu versions, %llu prepared)\n",
            (unsigned long long)view, c->vc_from, (unsigned long long)c->vin.items,
            (unsigned long long)c->vin.prepared);
    if ((uint32_t)__builtin_popcount(vc_have) >= nreplicas / 2 + 1)
        start_view();
}

/* Each loop turn: heartbeats, and the timeouts that change views. */
static void view_timers(int64_t now)
{
    if (!failover_on())
        return;
    if (primary && now >= next_beat) {
        next_beat = now + TICK_NS;
        for (uint32_t i = 0; i < nbk; i++)
            if (bk[i].state == B_UP && bk[i].started && !bk[i].c->broken)
                send_view_info(bk[i].c, 0);
        return;
    }
    if (primary || failover_ns == 0 || now - heard_at <= failover_ns)
        return;
    for (uint32_t i = 0; i < nbk; i++)
        if (bk[i].contributing && bk[i].syncing)
            return; /* its store is still on its way to the new primary */
    if (vstate == V_NORMAL)
        fprintf(stderr, "demi-txnd: view %llu: nothing from its primary (replica %u) for %lld ms\n",
                (unsigned long long)view, primary_of(view), (long long)((now - heard_at) / MS));
    else if (vstate == V_CHANGE)
        fprintf(stderr, "demi-txnd: view %llu did not start within %lld ms\n", (unsigned long long)view,
                (long long)(failover_ns / MS));
    else
        fprintf(stderr, "demi-txnd: no replica answered in a normal view within %lld ms\n",
                (long long)(failover_ns / MS));
    enter_change(view + 1);
}

/* A backup's state transfer from its primary, on the primary's link. */
static void sync_frame(struct conn *c, const struct txn_msg *m)
{
    if (c->vc_view) {
        merge_frame(c, m);
        return;
    }
    if (!occ || primary || vstate != V_NORMAL || !sync_from(c)) {
        conn_bad(c, "a sync message not from this backup's primary");
        return;
    }
    if (m->type == TXN_SYNC_BEGIN) {
        sync_in_start = mono_ns();
        /* It drops its prepared transactions (they come again): a copy is
         * kept until SYNC_END, if the store is complete (once per sync: a
         * sync begun again keeps the first one's). */
        if (complete && !sync_keep.held) {
            int e = txsync_keep_take(&sync_keep, store);
            if (e)
                fprintf(stderr, "demi-txnd: cannot keep a copy of the prepared transactions during the sync: %s\n",
                        strerror(e));
        }
        set_complete(false, false); /* the SYNC_BEGIN below says it */
        fprintf(stderr, "demi-txnd: syncing from the primary (%s, %llu keys)\n", c->peer, (unsigned long long)m->ts);
    }
    const char *why = txsync_in_apply(&sync_in, store, m);
    if (why) {
        ratelog(&log_bad, "sync from %s failed: %s", c->peer, why);
        conn_bad(c, why);
        return;
    }
    log_change(m, m->type);
    if (m->type == TXN_SYNC_END) {
        set_complete(true, false); /* logged just above */
        txsync_keep_drop(&sync_keep);
        /* On standard output too, after "ready": a parent that started
         * this replica learns it is up to date (and in which view). */
        printf("synced view %llu\n", (unsigned long long)view);
        fflush(stdout);
        fprintf(stderr, "demi-txnd: synced from the primary: %llu versions, %llu prepared transactions in %.1f ms\n",
                (unsigned long long)sync_in.items, (unsigned long long)sync_in.prepared,
                (double)(mono_ns() - sync_in_start) / 1e6);
    }
}

/* A frame of this store, to a qw replica that rejoins (txsync_out_step). */
static void pull_emit(void *arg, const struct txn_msg *m)
{
    conn_send(arg, m);
}

/* Each loop turn: every syncing link's next steps, while it takes them,
 * and the store's next frames to each qw replica that rejoins.
 * A backup counts toward majorities from SYNC_END on: any ack it sends
 * for a later prepare comes after it applied the whole sync (TCP order). */
static void sync_pump(void)
{
    for (size_t qd = 0; npulling && qd < nconns_cap; qd++) {
        struct conn *c = conns[qd];
        if (!c || !c->pulling)
            continue;
        while (c->pulling && !c->broken && c->out_bytes + c->ob_cap < SYNC_WINDOW) {
            if (!txsync_out_step(&c->pull, store, SYNC_STEP, pull_emit, c))
                continue;
            c->pulling = false;
            npulling--;
            fprintf(stderr, "demi-txnd: store sent to a replica that rejoins (%s): %llu versions\n", c->peer,
                    (unsigned long long)c->pull.items);
        }
    }
    for (uint32_t i = 0; i < nbk; i++) {
        struct backup *b = &bk[i];
        while (b->state == B_UP && b->syncing && !b->c->broken && b->c->out_bytes + b->c->ob_cap < SYNC_WINDOW) {
            if (!txsync_out_step(&b->sync, store, SYNC_STEP, sync_emit, b))
                continue;
            b->syncing = false;
            if (b->contributing) {
                b->contributing = false;
                heard_at = mono_ns(); /* the new primary has it all: its time to start the view runs from now */
                fprintf(stderr, "demi-txnd: view %llu: store sent to replica %u (%llu versions, %llu prepared)\n",
                        (unsigned long long)view, b->replica, (unsigned long long)b->sync.items,
                        (unsigned long long)b->sync.prepared);
                continue;
            }
            sync_st.done++;
            fprintf(stderr, "demi-txnd: backup %s: sync sent (%llu versions, %llu prepared transactions) in %.1f ms\n",
                    b->name, (unsigned long long)b->sync.items, (unsigned long long)b->sync.prepared,
                    (double)(mono_ns() - b->sync_start) / 1e6);
        }
    }
}

/* One whole frame from a client or another replica, or (c->backup >= 0)
 * an answer on this replica's link to another. */
static void handle_frame(struct conn *c, const uint8_t *frame, size_t len)
{
    struct txn_msg *m = &in_msg;
    const char *why = NULL;
    if (c->broken)
        return; /* closing (an old link to the primary, say): what it sends no longer counts */
    if (txn_msg_decode(frame, len, m, &why) != 0) {
        conn_bad(c, why ? why : "malformed frame");
        return;
    }
    st.req[m->type]++;
    if (c->backup <= -2) {
        on_decision_reply(c, (uint32_t)(-2 - c->backup), m);
        return;
    }
    if (c->backup >= 0) {
        if (!occ && txsync_is_sync_type(m->type))
            qw_pull_frame(c, m);
        else if (m->type == TXN_VIEW_INFO)
            on_view_info(c, m);
        else if (m->type != TXN_REPL_ACK)
            conn_bad(c, "a replica sent on this replica's link something other than REPL_ACK or VIEW_INFO");
        else if (primary && bk[c->backup].started)
            on_ack((uint32_t)c->backup, m);
        return;
    }
    if (is_reply_type(m->type)) {
        conn_bad(c, "a reply sent to the replica");
        return;
    }
    if (txsync_is_sync_type(m->type)) {
        sync_frame(c, m);
        return;
    }
    switch (m->type) {
    case TXN_GET:
        if ((occ && !primary && !complete) || !qw_synced)
            reply(c, TXN_GET_REPLY, m->reqid, TXN_ST_UNAVAIL, 0, NULL, 0); /* not brought up to date yet */
        else
            do_get(c, m);
        break;
    case TXN_PUT:
        if (occ)
            reply(c, TXN_PUT_REPLY, m->reqid, TXN_ST_BADREQ, 0, NULL, 0); /* would skip validation */
        else
            do_put(c, m, TXN_PUT_REPLY);
        break;
    case TXN_LOAD:
        do_put(c, m, TXN_LOAD_REPLY);
        break;
    case TXN_PREPARE:
    case TXN_COMMIT:
    case TXN_ABORT:
    case TXN_DECISION: {
        uint8_t rt = (uint8_t)(m->type + 1);
        if (!occ)
            reply(c, rt, m->reqid, TXN_ST_BADREQ, 0, NULL, 0);
        else if (!primary) /* the view (ts, in a PREPARE_REPLY) says where the primary is, or will be */
            reply(c, rt, m->reqid, vstate == V_NORMAL ? TXN_ST_NOTPRIMARY : TXN_ST_UNAVAIL, view, NULL, 0);
        else if (m->type == TXN_PREPARE)
            do_prepare(c, m);
        else if (m->type == TXN_COMMIT)
            do_commit(c, m);
        else if (m->type == TXN_ABORT)
            do_abort(c, m);
        else
            do_decision(c, m);
        break;
    }
    case TXN_VIEW_CHANGE:
        on_view_change(c, m);
        break;
    case TXN_VIEW_START:
        on_view_start(c, m);
        break;
    case TXN_VIEW_INFO:
        on_view_info(c, m);
        break;
    default: /* REPL_PREPARE, REPL_COMMIT, REPL_ABORT */
        if (occ && !primary && vstate == V_NORMAL && sync_from(c))
            do_repl(c, m);
        else if (occ && !primary)
            conn_bad(c, "replication from a connection other than the primary's current link");
        else
            reply(c, TXN_REPL_ACK, m->reqid, TXN_ST_BADREQ, 0, NULL, 0);
        break;
    }
}

static size_t get_le32(const uint8_t *p)
{
    return (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
}

static bool in_reserve(struct conn *c, size_t want)
{
    if (want <= c->in_cap)
        return true;
    uint8_t *p = realloc(c->in, want);
    if (!p)
        return false;
    c->in = p;
    c->in_cap = want;
    return true;
}

/* Appends up to N bytes of DATA to the partial frame in c->in (only what
 * the frame still lacks). Returns how many it took; sets c->bad on a bad
 * header or no memory. Hands the frame over once whole. */
static size_t in_feed(struct conn *c, const uint8_t *data, size_t n)
{
    size_t want = c->in_want ? c->in_want : TXN_HDR_LEN;
    size_t take = want - c->in_len < n ? want - c->in_len : n;
    memcpy(c->in + c->in_len, data, take);
    c->in_len += take;
    if (c->in_len < want)
        return take;
    if (!c->in_want) {
        size_t flen = 0;
        const char *why = NULL;
        int r = txn_frame_len(c->in, c->in_len, &flen, &why);
        if (r < 0) {
            conn_bad(c, why ? why : "malformed header");
            return take;
        }
        /* r == 0 with a whole header: its length field is valid. */
        c->in_want = r == 1 ? flen : TXN_HDR_LEN + get_le32(c->in + 4);
        if (!in_reserve(c, c->in_want)) {
            conn_bad(c, "out of memory for a frame");
            return take;
        }
        if (c->in_len < c->in_want)
            return take;
    }
    handle_frame(c, c->in, c->in_len);
    c->in_len = c->in_want = 0;
    if (c->in_cap > IN_KEEP) {
        free(c->in);
        c->in = NULL;
        c->in_cap = 0;
    }
    return take;
}

/* Handles the frames in DATA[OFF, N). Returns where it stopped: N, or
 * earlier when the client went over its output limit or sent a bad frame. */
static size_t conn_input(struct conn *c, const uint8_t *data, size_t n, size_t off)
{
    while (off < n && !c->bad) {
        if (conn_over(c))
            break;
        if (c->in_len > 0) {
            off += in_feed(c, data + off, n - off);
            continue;
        }
        size_t flen = 0;
        const char *why = NULL;
        int r = txn_frame_len(data + off, n - off, &flen, &why);
        if (r < 0) {
            conn_bad(c, why ? why : "malformed header");
            break;
        }
        if (r == 1) {
            handle_frame(c, data + off, flen);
            off += flen;
            continue;
        }
        /* The start of a frame: keep it until the rest comes. */
        if (!in_reserve(c, TXN_HDR_LEN)) {
            conn_bad(c, "out of memory for a frame");
            break;
        }
        off += in_feed(c, data + off, n - off);
    }
    return off;
}

static void conn_next_pop(struct conn *c)
{
    if (c->popping || c->holding || c->bad || c->broken || c->eof || conn_over(c))
        return;
    if (demi_pop(&c->pop_qt, c->qd) != 0) {
        conn_break(c, "pop failed");
        return;
    }
    c->popping = true;
}

/* Parses the held buffer from where it stopped; pops again once it is all
 * handled, unless the client is over its output limit. */
static void conn_resume(struct conn *c)
{
    while (c->hseg < c->held.sga_numsegs) {
        const demi_sgaseg_t *s = &c->held.sga_segs[c->hseg];
        size_t off = conn_input(c, s->sgaseg_buf, s->sgaseg_len, c->hoff);
        if (c->bad)
            break;
        if (off < s->sgaseg_len) {
            c->hoff = off; /* over the output limit: wait for pushes */
            return;
        }
        c->hseg++;
        c->hoff = 0;
    }
    demi_sgafree(&c->held);
    c->holding = false;
    if (c->bad) {
        st.malformed++;
        ratelog(&log_bad, "closing %s: %s", c->peer, c->why);
        conn_flush(c); /* the replies to the frames before it */
        conn_break(c, c->why);
        return;
    }
    conn_next_pop(c);
}

static void conn_popped(struct conn *c, demi_sgarray_t *sga)
{
    c->popping = false;
    if (sga->sga_numsegs == 0) {
        if (c->backup >= 0) {
            conn_break(c, "the replica closed the connection");
            return;
        }
        c->eof = true; /* closed once the replies still owed are sent */
        dirty_link(c);
        return;
    }
    c->held = *sga;
    c->holding = true;
    c->hseg = 0;
    c->hoff = 0;
    conn_resume(c);
}

static void conn_pushed(struct conn *c, demi_qtoken_t qt)
{
    if (c->pq_n == 0 || c->pq[c->pq_head].qt != qt)
        return; /* a closed connection's */
    c->out_bytes -= c->pq[c->pq_head].held;
    c->pq_head = (c->pq_head + 1) % c->pq_cap;
    c->pq_n--;
    if (conn_over(c))
        return;
    if (c->holding)
        conn_resume(c);
    else
        conn_next_pop(c);
}

static bool conn_owns(const struct conn *c, demi_qtoken_t qt)
{
    if (c->popping && c->pop_qt == qt)
        return true;
    for (size_t i = 0; i < c->pq_n; i++)
        if (c->pq[(c->pq_head + i) % c->pq_cap].qt == qt)
            return true;
    return false;
}

/* The end of a loop turn: pushes what was gathered, closes what must go.
 * Closing a backup link may answer clients (backup_down), which puts them
 * on the list again: the loop runs until it is empty. */
static void flush_all(void)
{
    while (dirty_head) {
        struct conn *c = dirty_head;
        dirty_unlink(c);
        conn_flush(c);
        if (c->backup != -1 && !c->broken && c->out_bytes > LINK_OUT_MAX)
            conn_break(c, "too much unsent to the replica");
        if (c->broken || (c->eof && c->nwaiting == 0 && c->wq_n == 0))
            conn_close(c);
    }
}

/* ---- connecting to the backups ---- */

static void backup_connect(struct backup *b)
{
    const struct sockaddr_in *a = &replicas[b->replica];
    int e = demi_socket(&b->qd, AF_INET, SOCK_STREAM, 0);
    if (e == 0 && (e = demi_connect(&b->cqt, b->qd, (const struct sockaddr *)a, sizeof(*a))) != 0)
        demi_close(b->qd);
    if (e) {
        if (!b->warned)
            fprintf(stderr, "demi-txnd: link to replica %s: connect: %s; retrying every %lld ms\n", b->name,
                    strerror(e), RETRY_NS / MS);
        b->warned = true;
        b->state = B_DOWN;
        b->at = mono_ns() + RETRY_NS;
        return;
    }
    b->state = B_CONNECTING;
    b->at = mono_ns() + CONNECT_TIMEOUT_NS;
}

static void backup_connected(struct backup *b)
{
    struct conn *c = conn_new(b->qd, (int)(b - bk), &replicas[b->replica]);
    if (!c) {
        demi_close(b->qd);
        b->state = B_DOWN;
        b->at = mono_ns() + RETRY_NS;
        return;
    }
    snprintf(c->peer, sizeof(c->peer), "replica %s", b->name);
    b->c = c;
    b->state = B_UP;
    b->warned = false;
    st.links_up++;
    fprintf(stderr, "demi-txnd: link to replica %s is up\n", b->name);
    link_up(b);
}

static void backup_connect_failed(struct backup *b, int err)
{
    demi_close(b->qd);
    if (!b->warned)
        fprintf(stderr, "demi-txnd: link to replica %s: connect: %s; retrying every %lld ms\n", b->name, strerror(err),
                RETRY_NS / MS);
    b->warned = true;
    b->state = B_DOWN;
    b->at = mono_ns() + RETRY_NS;
}

/* The link to backup I is gone (conn_close freed it): the operations that
 * waited for it count it out, which may decide them. */
static void backup_down(int i, const char *why)
{
    struct backup *b = &bk[i];
    b->c = NULL;
    b->state = B_DOWN;
    b->syncing = b->started = b->contributing = false;
    b->at = mono_ns() + RETRY_NS;
    if (stop)
        return; /* shutting down: nothing waits any more */
    st.links_down++;
    fprintf(stderr, "demi-txnd: link to replica %s is down (%s); reconnecting every %lld ms\n", b->name, why,
            RETRY_NS / MS);
    uint32_t bit = 1u << i;
    for (uint32_t k = 0; k < nops; k++) {
        struct op *op = &ops[k];
        if (op->reqid)
            op->fwd &= ~bit; /* a link made later gets the transaction's fate through its sync */
        if (!op->reqid || !(op->sent & bit) || ((op->acked | op->nacked) & bit))
            continue;
        op->sent &= ~bit;
        op_check(op);
    }
}

/* Connects to the backups that are due; gives up on slow connects. */
static void backup_timers(int64_t now)
{
    if (!occ && qw_synced)
        return; /* qw: links only to pull the others' stores at a rejoin */
    for (uint32_t i = 0; i < nbk; i++) {
        struct backup *b = &bk[i];
        if (b->state == B_DOWN && now >= b->at) {
            backup_connect(b);
        } else if (b->state == B_CONNECTING && now >= b->at) {
            /* Its connect completes as ECANCELED, matched to nothing. */
            backup_connect_failed(b, ETIMEDOUT);
        }
    }
}

static struct backup *backup_connecting(int qd, demi_qtoken_t qt)
{
    for (uint32_t i = 0; i < nbk; i++)
        if (bk[i].state == B_CONNECTING && bk[i].qd == qd && bk[i].cqt == qt)
            return &bk[i];
    return NULL;
}

/* ---- accepting ---- */

static int listen_qd = -1;
static bool accepting;
static demi_qtoken_t accept_qt;
static int64_t accept_at;

static bool accept_transient(int e)
{
    return e == EMFILE || e == ENFILE || e == ENOMEM || e == ENOBUFS || e == ECONNABORTED || e == EPROTO ||
           e == EPERM || e == EAGAIN || e == EINTR || e == ETIMEDOUT || e == ECONNRESET;
}

static void accept_failed(int e)
{
    if (!accept_transient(e))
        die("accept", e);
    ratelog(&log_accept, "accept: %s; accepting again in %lld ms", strerror(e), RETRY_NS / MS);
    accepting = false;
    accept_at = mono_ns() + RETRY_NS;
}

static void accept_arm(void)
{
    int e = demi_accept(&accept_qt, listen_qd);
    if (e)
        accept_failed(e);
    else
        accepting = true;
}

static void accepted(int qd, const struct sockaddr_in *peer)
{
    if (nclients >= max_clients) {
        demi_close(qd);
        st.refused++;
        return;
    }
    if (!conn_new(qd, -1, peer)) {
        demi_close(qd);
        st.refused++;
        return;
    }
    st.accepted++;
}

/* ---- the loop ---- */

static bool log_advanced; /* an append completed this turn */

/* The log's append completed (or failed). */
static void log_completed(const demi_qresult_t *r)
{
    int e = txl_done(&tlog, r->qr_qd, r->qr_opcode, (int)r->qr_ret);
    if (e)
        fprintf(stderr, "demi-txnd: --log %s: appending failed: %s; no more replies will be sent\n", tlog.path,
                strerror(e));
    else
        log_advanced = true;
}

/* The end of a loop turn with --log: appends what this turn changed (one
 * record for all of it), and puts the connections whose held replies may
 * now go on the dirty list. */
static void log_turn(void)
{
    if (tlog.qd < 0)
        return;
    if (txl_compact_due(&tlog, store))
        txl_compact_start(&tlog, store); /* on failure it says why and the log stays */
    else
        txl_compact_step(&tlog, store); /* a compaction's next part of the store */
    if (!tlog.err && txl_kick(&tlog))
        fprintf(stderr, "demi-txnd: --log %s: appending failed: %s; no more replies will be sent\n", tlog.path,
                strerror(tlog.err));
    if (!log_advanced)
        return;
    log_advanced = false;
    for (size_t i = 0; i < nconns_cap; i++)
        if (conns[i] && conns[i]->wq_n > 0)
            dirty_link(conns[i]);
}

static void handle(demi_qresult_t *r)
{
    if (txl_owns(&tlog, r->qr_qd, r->qr_qt)) {
        log_completed(r);
        return;
    }
    struct conn *c = conn_of(r->qr_qd);
    struct backup *b;
    struct rlink *rk;
    switch (r->qr_opcode) {
    case DEMI_OPC_ACCEPT:
        if (r->qr_qd == listen_qd && accepting && r->qr_qt == accept_qt) {
            accepting = false;
            accepted(r->qr_value.ares.qd, &r->qr_value.ares.addr);
            accept_arm();
        }
        break;
    case DEMI_OPC_CONNECT:
        if ((b = backup_connecting(r->qr_qd, r->qr_qt)))
            backup_connected(b);
        else if ((rk = rlink_connecting(r->qr_qd, r->qr_qt)))
            rlink_connected(rk);
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
        if (r->qr_qd == listen_qd && accepting && r->qr_qt == accept_qt) {
            accept_failed((int)r->qr_ret);
            break;
        }
        if ((b = backup_connecting(r->qr_qd, r->qr_qt))) {
            backup_connect_failed(b, (int)r->qr_ret);
            break;
        }
        if ((rk = rlink_connecting(r->qr_qd, r->qr_qt))) {
            rlink_failed(rk);
            break;
        }
        if (r->qr_ret == ECANCELED || !c || !conn_owns(c, r->qr_qt))
            break; /* an operation of a queue closed already */
        if (c->popping && c->pop_qt == r->qr_qt)
            c->popping = false;
        conn_break(c, r->qr_ret == ECONNRESET ? "connection reset" : "a pop or push failed");
        break;
    default:
        break;
    }
}

static void print_stats(void)
{
    char line[1024];
    size_t n = 0;
    for (uint8_t t = 1; t < TXN_TYPE_END; t++)
        if (st.req[t] || !is_reply_type(t))
            n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%s %llu", n ? ", " : "", txn_type_name(t),
                                  (unsigned long long)st.req[t]);
    fprintf(stderr, "demi-txnd: requests: %s\n", line);
    n = 0;
    for (uint8_t s = 0; s < TXN_ST_END; s++)
        n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%s %llu", n ? ", " : "", txn_status_name(s),
                              (unsigned long long)st.status[s]);
    fprintf(stderr, "demi-txnd: replies: %s\n", line);
    struct txs_stats ts;
    txs_get_stats(store, &ts);
    fprintf(stderr,
            "demi-txnd: store: %llu keys, %llu versions, %llu bytes, %llu prepared now; commits %llu, aborts %llu, "
            "conflicts %llu (stale %llu, locked %llu, timestamp %llu)\n",
            (unsigned long long)ts.keys, (unsigned long long)ts.versions, (unsigned long long)ts.bytes,
            (unsigned long long)ts.prepared, (unsigned long long)ts.commits, (unsigned long long)ts.aborts,
            (unsigned long long)st.conflicts, (unsigned long long)ts.conflict_stale,
            (unsigned long long)ts.conflict_locked, (unsigned long long)ts.conflict_ts);
    if (orph_prev)
        fprintf(stderr,
                "demi-txnd: orphans: %llu prepares aborted, undecided for over %lld ms; %llu decisions asked of "
                "coordinators, %llu prepares decided by their answers, %llu answers unknown; %llu asked of this "
                "replica\n",
                (unsigned long long)orph_st.aborted, (long long)(orphan_ns / MS), (unsigned long long)orph_st.asked,
                (unsigned long long)orph_st.resolved, (unsigned long long)orph_st.unknown,
                (unsigned long long)orph_st.answered);
    fprintf(stderr,
            "demi-txnd: connections: %llu accepted, %llu refused, %llu open; %llu closed for malformed frames; "
            "%llu replies dropped (client gone)\n",
            (unsigned long long)st.accepted, (unsigned long long)st.refused, (unsigned long long)nclients,
            (unsigned long long)st.malformed, (unsigned long long)st.dropped_replies);
    if (primary && nbk > 0)
        fprintf(stderr,
                "demi-txnd: backups: %llu links made, %llu lost; %llu frames replicated, %llu acks (%llu not OK), "
                "%u operations still waiting\n",
                (unsigned long long)st.links_up, (unsigned long long)st.links_down, (unsigned long long)st.repl_sent,
                (unsigned long long)st.acks, (unsigned long long)st.nacks, ops_inuse);
    if (failover_on()) {
        fprintf(stderr, "demi-txnd: state transfers: %llu begun, %llu all sent; to this replica: %s\n",
                (unsigned long long)sync_st.started, (unsigned long long)sync_st.done,
                sync_in.synced   ? "synced"
                : sync_in.active ? "in progress"
                                 : "none completed");
        fprintf(stderr,
                "demi-txnd: view %llu (%s, primary: replica %u), store %s; view changes begun %llu, views led %llu, "
                "joined %llu; syncs to it cut short %llu\n",
                (unsigned long long)view,
                vstate == V_NORMAL   ? "normal"
                : vstate == V_CHANGE ? "changing"
                                     : "rejoining",
                primary_of(view), complete ? "complete" : "not complete", (unsigned long long)view_st.changes,
                (unsigned long long)view_st.led, (unsigned long long)view_st.joined,
                (unsigned long long)view_st.syncs_cut);
    }
}

/* ---- arguments ---- */

static void usage(FILE *f, int status)
{
    fprintf(f,
            "usage: demi-txnd --mode qw|occ --addr IP:PORT [--replicas IP:PORT,IP:PORT,... --index I]\n"
            "                 [--max-clients N] [--max-prepared N] [--max-memory BYTES]\n"
            "                 [--log PATH [--log-repair] [--log-compact-min BYTES]]\n"
            "                 [--failover-ms MS] [--rejoin] [--orphan-ms MS] [--shards LIST;LIST;... --shard I]\n"
            "       demi-txnd --help | --version\n"
            "  --mode qw|occ      qw: quorum writes, each replica on its own; occ: a primary (replica 0\n"
            "                     at first) validates transactions, then replicates to the others\n"
            "  --addr IP:PORT     listen there (port 0 picks a free port)\n"
            "  --replicas LIST    every replica of this shard, this one included, in the same order\n"
            "                     on all of them (at most %d; default: this one alone)\n"
            "  --index I          this replica's position in --replicas (0: the first primary in occ)\n"
            "  --max-clients N    close connections beyond N clients at once (default 1024)\n"
            "  --max-prepared N   transactions prepared at once, and operations waiting for backups\n"
            "                     (default 65536)\n"
            "  --max-memory BYTES bytes the store holds, with k, m, g suffixes (default 1g)\n"
            "  --log PATH         log every change to the cattree log PATH (created if missing), reply\n"
            "                     only once it is durable, and replay PATH at start\n"
            "  --log-repair       open a log corrupt in the middle by cutting it before the damage\n"
            "                     (what follows the damage is lost)\n"
            "  --log-compact-min BYTES  compact the log once it is over BYTES and twice the store\n"
            "                     (k, m, g suffixes; default 64m; 0: never)\n"
            "  --failover-ms MS   occ: a backup that hears nothing from its primary for MS ms starts a\n"
            "                     view change (default 1000; 0: never)\n"
            "  --rejoin           this replica restarts without a log. occ: it asks the others which\n"
            "                     view they are in and takes no part until a primary sent it its store;\n"
            "                     qw: it merges the stores of enough others to hold every write a\n"
            "                     quorum acknowledged, and answers GET only then\n"
            "  --orphan-ms MS     occ: the primary aborts a transaction this shard decides (of this shard\n"
            "                     alone, or coordinated here) that was prepared MS to 2 x MS ms ago and\n"
            "                     never decided, and asks the coordinator about others (default 10000; 0: never)\n"
            "  --shards LIST;...  occ: every shard's --replicas, in the clients' order (at most %d); with\n"
            "  --shard I          this shard's position in it: transactions spanning shards are then\n"
            "                     decided after their client is gone (see --orphan-ms)\n"
            "  --help             this text\n"
            "  --version          the program's and libdemi's version\n"
            "LIBOS picks the network libOS (default catnap); see demi-txnd(1) and libdemi(7).\n",
            REPLICAS_MAX, SHARDS_MAX);
    exit(status);
}

static void bad_arg(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void bad_arg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "demi-txnd: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see demi-txnd --help)\n");
    va_end(ap);
    exit(2);
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
    if (*end || colon[1] == '-' || colon[1] == '+' || port < 0 || port > 65535)
        return -1;
    memset(out, 0, sizeof(*out));
    out->sin_family = AF_INET;
    out->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, buf, &out->sin_addr) == 1 ? 0 : -1;
}

/* The comma-separated IPv4:PORT list in the LEN bytes at P into OUT (at
 * most REPLICAS_MAX): their count. OPT names the option in errors. */
static uint32_t parse_addr_list(const char *opt, const char *p, size_t len, struct sockaddr_in *out)
{
    uint32_t n = 0;
    for (const char *q = p;;) {
        size_t left = len - (size_t)(q - p);
        const char *comma = memchr(q, ',', left);
        size_t k = comma ? (size_t)(comma - q) : left;
        if (n == REPLICAS_MAX)
            bad_arg("%s: at most %d replicas a shard", opt, REPLICAS_MAX);
        if (parse_addr(q, k, &out[n]))
            bad_arg("%s: expected IPv4:PORT,IPv4:PORT,..., got '%.*s'", opt, (int)k, q);
        n++;
        if (!comma)
            return n;
        q = comma + 1;
    }
}

static void parse_replicas(const char *s)
{
    nreplicas = parse_addr_list("--replicas", s, strlen(s), replicas);
}

/* --shards: lists as --replicas has them, separated by ';'. */
static void parse_shards(const char *s)
{
    nshards_all = 0;
    for (const char *p = s;;) {
        const char *semi = strchr(p, ';');
        if (nshards_all == SHARDS_MAX)
            bad_arg("--shards: at most %d shards", SHARDS_MAX);
        uint32_t n = parse_addr_list("--shards", p, semi ? (size_t)(semi - p) : strlen(p), shard_addr[nshards_all]);
        for (uint32_t i = 0; i < n; i++)
            if (shard_addr[nshards_all][i].sin_port == 0)
                bad_arg("--shards: shard %u replica %u has port 0", nshards_all, i);
        shard_nrep[nshards_all++] = n;
        if (!semi)
            break;
        p = semi + 1;
    }
}

/* A decimal count in [MIN, MAX]; with SUFFIXES, k, m, g (powers of 1024). */
static uint64_t parse_count(const char *opt, const char *s, uint64_t min, uint64_t max, bool suffixes)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    bool ok = !errno && end != s && *s != '-' && *s != '+';
    uint64_t mul = 1;
    if (ok && suffixes && *end) {
        mul = *end == 'k' || *end == 'K'   ? 1ull << 10
              : *end == 'm' || *end == 'M' ? 1ull << 20
              : *end == 'g' || *end == 'G' ? 1ull << 30
                                           : 0;
        end++;
        if ((*end == 'b' || *end == 'B') && end[1] == '\0')
            end++;
    }
    if (!ok || *end || !mul || v > max / mul || v * mul < min)
        bad_arg("%s: expected %s%llu..%llu, got '%s'", opt, suffixes ? "bytes (k, m, g suffixes allowed) " : "",
                (unsigned long long)min, (unsigned long long)max, s);
    return v * mul;
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void parse_args(int argc, char **argv, struct sockaddr_in *addr, struct txs_limits *lim)
{
    static const struct option lo[] = {
        {"mode", required_argument, 0, 'm'},        {"addr", required_argument, 0, 'a'},
        {"replicas", required_argument, 0, 'r'},    {"index", required_argument, 0, 'i'},
        {"max-clients", required_argument, 0, 'c'}, {"max-prepared", required_argument, 0, 'p'},
        {"max-memory", required_argument, 0, 'M'},  {"log", required_argument, 0, 'L'},
        {"log-repair", no_argument, 0, 'R'},        {"log-compact-min", required_argument, 0, 'C'},
        {"failover-ms", required_argument, 0, 'F'}, {"rejoin", no_argument, 0, 'J'},
        {"orphan-ms", required_argument, 0, 'O'},   {"shards", required_argument, 0, 'S'},
        {"shard", required_argument, 0, 's'},       {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},           {0, 0, 0, 0}};
    const char *mode = NULL, *addr_arg = NULL, *replicas_arg = NULL, *index_arg = NULL, *shards_arg = NULL,
               *shard_arg = NULL;
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (opt) {
        case 'm':
            mode = optarg;
            break;
        case 'a':
            addr_arg = optarg;
            break;
        case 'r':
            replicas_arg = optarg;
            break;
        case 'i':
            index_arg = optarg;
            break;
        case 'c':
            max_clients = parse_count("--max-clients", optarg, 1, 1000000, false);
            break;
        case 'p':
            lim->max_prepared = (uint32_t)parse_count("--max-prepared", optarg, 1, OPS_MAX, false);
            ops_max = lim->max_prepared;
            break;
        case 'M':
            lim->max_bytes = parse_count("--max-memory", optarg, 1, UINT64_MAX, true);
            break;
        case 'L':
            log_path = optarg;
            break;
        case 'R':
            log_repair = true;
            break;
        case 'C':
            log_compact_min = parse_count("--log-compact-min", optarg, 0, UINT64_MAX, true);
            break;
        case 'F':
            failover_ns = (int64_t)parse_count("--failover-ms", optarg, 0, 3600000, false) * MS;
            break;
        case 'J':
            rejoin = true;
            break;
        case 'O':
            orphan_ns = (int64_t)parse_count("--orphan-ms", optarg, 0, 3600000, false) * MS;
            break;
        case 'S':
            shards_arg = optarg;
            break;
        case 's':
            shard_arg = optarg;
            break;
        case 'h':
            usage(stdout, 0);
            break;
        case 'V':
            printf("demi-txnd (libdemi) %s\n", demi_version());
            exit(0);
        default:
            usage(stderr, 2); /* getopt_long has named the option */
        }
    }
    if (optind != argc)
        bad_arg("unexpected argument '%s'", argv[optind]);
    if (!mode || (strcmp(mode, "qw") != 0 && strcmp(mode, "occ") != 0))
        bad_arg("--mode: expected qw or occ, got '%s'", mode ? mode : "nothing (it is required)");
    occ = strcmp(mode, "occ") == 0;
    if (!addr_arg)
        bad_arg("--addr IP:PORT is required");
    if (parse_addr(addr_arg, strlen(addr_arg), addr))
        bad_arg("--addr: expected IPv4:PORT, got '%s'", addr_arg);
    if (!replicas_arg != !index_arg)
        bad_arg("--replicas and --index go together");
    if (replicas_arg) {
        parse_replicas(replicas_arg);
        my_index = (uint32_t)parse_count("--index", index_arg, 0, nreplicas - 1, false);
    } else {
        replicas[0] = *addr;
    }
    if (log_path && !*log_path)
        bad_arg("--log: expected a path, got ''");
    if (log_repair && !log_path)
        bad_arg("--log-repair goes with --log");
    for (uint32_t i = 0; i < nreplicas; i++)
        if (i != my_index && replicas[i].sin_port == 0)
            bad_arg("--replicas: replica %u has port 0", i);
    if (!shards_arg != !shard_arg)
        bad_arg("--shards and --shard go together");
    if (shards_arg) {
        if (!occ)
            bad_arg("--shards is for --mode occ");
        parse_shards(shards_arg);
        my_shard = (int)parse_count("--shard", shard_arg, 0, nshards_all - 1, false);
        bool same = shard_nrep[my_shard] == nreplicas;
        for (uint32_t i = 0; same && i < nreplicas; i++)
            same = i == my_index || memcmp(&shard_addr[my_shard][i], &replicas[i], sizeof(replicas[i])) == 0;
        if (!same)
            bad_arg("--shards: shard %d is not this replica's --replicas", my_shard);
    }
}

/* --log: opens the log and replays it into the store, before anything
 * is served. A log that cannot be opened or replayed stops the replica:
 * serving without what it holds would forget acknowledged changes. */
static void open_log(void)
{
    char msg[512];
    int e = txl_start(&tlog, log_path, log_repair, store, msg, sizeof(msg));
    fprintf(stderr, "demi-txnd: --log %s: %s\n", log_path, msg);
    if (e)
        exit(1);
    tlog.min_compact = log_compact_min;
}

/* A link to every other replica (bk[]), connected from the first loop
 * turn on. */
static void make_links(void)
{
    for (uint32_t r = 0; r < nreplicas; r++) {
        if (r == my_index)
            continue;
        struct backup *b = &bk[nbk++];
        b->replica = r;
        char a[24];
        addr_str(&replicas[r], a, sizeof(a));
        snprintf(b->name, sizeof(b->name), "%u (%s)", r, a);
        b->state = B_DOWN;
        b->at = 0;
    }
}

int main(int argc, char **argv)
{
    struct sockaddr_in addr;
    struct txs_limits lim = {0, 0, 0};
    parse_args(argc, argv, &addr, &lim);

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
    if (occ && orphan_ns) {
        orph_prev = calloc(ops_max, sizeof(*orph_prev));
        orph_cur = calloc(ops_max, sizeof(*orph_cur));
        if (!orph_prev || !orph_cur)
            die("the orphan sweep's lists", ENOMEM);
        orphan_at = mono_ns() + orphan_ns;
    }
    if (!(store = txs_create(&lim)))
        die("store", ENOMEM);
    if (log_path)
        open_log();
    if (failover_on()) {
        /* A link to every other replica: the primary replicates on them,
         * the others change views on them. */
        need = nreplicas / 2; /* with the primary: nreplicas / 2 + 1, a majority */
        make_links();
        if (getrandom(&incarnation, sizeof(incarnation), 0) != sizeof(incarnation) || incarnation == 0)
            incarnation = (uint64_t)mono_ns() ^ ((uint64_t)getpid() << 32) ^ 1;
        /* A replica that restarts (--rejoin, or a log with something in
         * it) asks before it acts: it may have been a primary since
         * replaced, or have missed views. */
        if (rejoin || tlog.replayed > 0) {
            view = tlog.view;
            vstate = V_RECOVER;
            set_complete(tlog.replayed > 0 && !tlog.incomplete, false);
            fprintf(stderr, "demi-txnd: rejoining (last view known: %llu; store %s)\n", (unsigned long long)view,
                    complete             ? "complete, from the log"
                    : tlog.replayed == 0 ? "empty, until a primary sends it"
                                         : "from the log but not complete, until a primary syncs it: "
                                           "a state transfer or a rejoin had not ended");
            /* A rejoin on an empty log says so in it before anything
             * else, durably: a restart on that log must not take the
             * store for a fresh replica's, complete. */
            if (tlog.replayed == 0 && tlog.qd >= 0) {
                struct txn_msg m = {.type = TXN_SYNC_BEGIN};
                log_change(&m, TXN_SYNC_BEGIN);
                if ((e = txl_flush(&tlog, 30)))
                    die("--log: recording the rejoin", e);
            }
        }
        heard_at = mono_ns();
    } else if (!occ && rejoin && nreplicas > 1) {
        make_links(); /* to pull the others' stores */
        qw_synced = false;
        fprintf(stderr, "demi-txnd: rejoining (qw): merging the stores of %u other replicas before answering GET\n",
                qw_needed());
    }
    set_role();

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
    if ((e = demi_accept(&accept_qt, listen_qd)))
        die("accept", e);
    accepting = true;
    char bound[40];
    addr_str(&local, bound, sizeof(bound));
    printf("ready %s\n", bound);
    fflush(stdout);

    demi_qresult_t qr[BATCH];
    while (!stop) {
        int64_t now = mono_ns();
        int64_t next = now + TICK_NS;
        for (uint32_t i = 0; i < nbk; i++)
            if (bk[i].state != B_UP && bk[i].at < next)
                next = bk[i].at;
        if (!accepting && accept_at < next)
            next = accept_at;
        int64_t wait_ns = next > now ? next - now : 0;
        struct timespec to = {wait_ns / 1000000000LL, wait_ns % 1000000000LL};
        int n = 0;
        e = demi_wait_next_n(qr, BATCH, &n, &to);
        if (e && e != ETIMEDOUT)
            die("wait", e);
        for (int i = 0; i < n; i++)
            handle(&qr[i]);
        view_timers(mono_ns());
        orphan_sweep(mono_ns());
        sync_pump();
        log_turn();
        flush_all();
        now = mono_ns();
        backup_timers(now);
        if (!accepting && now >= accept_at)
            accept_arm();
    }

    print_stats();
    if (tlog.qd >= 0) {
        /* Before the closes below, whose leftover results are drained. */
        if ((e = txl_close(&tlog, 10)))
            fprintf(stderr, "demi-txnd: --log %s: the last changes may not be durable: %s\n", log_path, strerror(e));
        fprintf(stderr, "demi-txnd: --log %s: %llu entries in %llu records (%llu bytes) appended by this run\n",
                log_path, (unsigned long long)tlog.appended, (unsigned long long)tlog.records,
                (unsigned long long)tlog.bytes);
    }
    for (size_t i = 0; i < nconns_cap; i++)
        if (conns[i])
            conn_close(conns[i]);
    for (uint32_t i = 0; i < nbk; i++)
        if (bk[i].state == B_CONNECTING)
            demi_close(bk[i].qd);
    demi_close(listen_qd);
    /* The results those closes cancelled: consume them, so that no popped
     * buffer is left unaccounted for. */
    struct timespec zero = {0, 0};
    int n;
    while (demi_wait_next_n(qr, BATCH, &n, &zero) == 0 && n > 0)
        for (int i = 0; i < n; i++)
            if (qr[i].qr_opcode == DEMI_OPC_POP)
                demi_sgafree(&qr[i].qr_value.sga);
    txs_destroy(store);
    free(conns);
    free(ops);
    free(orph_prev);
    free(orph_cur);
    return 0;
}
