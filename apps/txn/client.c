/*
 * apps/txn/client.c: the TxnStore client library (client.h) on PDPIX. It
 * must never trust a replica's bytes (a malformed reply closes that
 * connection and fails the call with EPROTO), never wait past its deadline,
 * never grow without bound, and never abort() or exit().
 *
 * Shape: one TCP connection per replica of every shard, opened at
 * txc_open, each with one pop always posted and an input buffer that
 * reassembles frames across pops (at most one frame, TXN_HDR_LEN +
 * TXN_BODY_MAX bytes). A call works in rounds: round_begin, then
 * round_add for each request (encoded into the connection's staging heap
 * buffer), round_flush (one push per connection), round_wait (demi_wait_any
 * over every posted pop and push until the replies arrived or the call's
 * deadline passed). A request's id is the round's sequence number shifted
 * left by IDX_BITS with its index in the round below, so a reply is matched
 * in O(1) and a reply that arrives after its round ended (a timeout, a
 * quorum reached without it) is recognised as late and dropped. A
 * connection that fails (reset, closed by the peer, a failed push, a
 * malformed frame) is closed and marked dead: its requests fail at once
 * with ECONNRESET (EPROTO for a malformed frame). A later request to it
 * reopens it first (a new socket and connect, waited for within the
 * call's deadline), unless it failed or was last tried less than
 * REVIVE_NS ago: then, or when the connect fails, the request fails at
 * once with ECONNRESET. A call (a get, a commit, a load) has one deadline,
 * timeout_ms from its start, for all its rounds, reconnects and retries.
 *
 * Transactions: reads go to one replica; writes are buffered (malloc'd
 * copies, at most TXN_SET_MAX per shard) and read back by later gets. At
 * most TXN_SET_MAX keys may be read per shard: a get that would read one
 * more fails with EINVAL, as does a put past TXN_SET_MAX writes in a shard
 * or (occ) one that would make the shard's PREPARE frame longer than
 * TXN_BODY_MAX. In occ a key read again is read again from a replica
 * (txc_get_ver's *VER says which version), and the read set keeps the
 * first version read: if the two differ, the commit aborts (EAGAIN)
 * without asking the replicas, since the transaction saw two states.
 * Timestamps come from a client clock: max(last + 1, the wall clock in
 * microseconds, the highest version seen + 1).
 *
 * occ commit: PREPARE to the primary of every shard touched, in parallel;
 * all OK: COMMIT to each (a failure from then on is EINPROGRESS).
 * Otherwise ABORT to every shard that voted OK, did not answer or answered
 * UNAVAIL (it may have prepared: a primary deposed by a view change
 * answers its waiting prepares UNAVAIL and keeps them, for the next
 * primary to inherit), then EAGAIN for a conflict, else the first final error
 * (FULL, BADREQ, a malformed reply), else, when a shard's primary moved,
 * is changing views or went away, the prepare phase again with a fresh
 * txnid and timestamp (a replica refuses a txnid it aborted), after a
 * pause, until the deadline: then EIO, or ETIMEDOUT when the last round
 * timed out.
 *
 * occ primaries: the replicas change views (VR-style, demi-txnd(1)); the
 * primary of view v is replica v mod nreplicas. The client keeps a guess
 * per shard (replica 0 at first) and follows it: to the view a
 * PREPARE_REPLY's NOTPRIMARY names, or to the next replica on a
 * NOTPRIMARY that names none (COMMIT and ABORT replies) or a connection
 * down. A COMMIT or ABORT is resent until its shard answers OK: to the
 * next replica, or after UNAVAIL (a view change; a COMMIT applied but not
 * yet on a majority, which the primary confirms when it gets it again) to
 * the same one after a pause. An ABORT that cannot be delivered leaves the
 * prepare held at its shard's primary (a new primary included) until one
 * is.
 *
 * Counters: puts counts the PUT and LOAD requests sent; failovers counts
 * the changes of a shard's guess, retries the prepare phases run again.
 */
#include "client.h"
#include "msg.h"

#include <demi/libos.h>
#include <demi/sga.h>
#include <demi/wait.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define NCONN_MAX   (TXC_SHARDS_MAX * TXC_REPLICAS_MAX)
#define IN_MAX      ((size_t)TXN_HDR_LEN + TXN_BODY_MAX) /* one whole frame */
#define IN_FIRST    ((size_t)65536)                      /* an input buffer's first size */
#define PUSH_MAX    8                                    /* pushes in flight per connection */
#define STAGE_CHUNK ((size_t)65536)                      /* a staging buffer's usual size */
#define IDX_BITS    16                                   /* a request's index in its reqid */
#define IDX_MASK    ((1u << IDX_BITS) - 1)
#define TIMEOUT_MS  5000
/* A failed connection is reopened, when a request must go to it, once this
 * long has passed since it failed or was last tried. */
#define REVIVE_NS (150 * 1000000LL)
/* occ: the pause before a prepare phase is run again, or a decision resent
 * to a replica changing views. */
#define PAUSE_NS (15 * 1000000LL)
/* occ: a connection whose request timed out is tried last for this long,
 * doubling while it stays silent, up to SUSPECT_MAX_NS. */
#define SUSPECT_NS     (1000 * 1000000LL)
#define SUSPECT_MAX_NS (32000 * 1000000LL)
/* Versions above this from a replica are ignored by the clock, so that a
 * hostile replica cannot wrap it. */
#define VER_SANE (UINT64_MAX / 2)

/* One replica's connection. */
struct conn {
    int qd;    /* -1 once closed */
    bool dead; /* no usable connection: closed, or being reopened */
    uint32_t shard, replica;
    int64_t down_ns; /* when it failed or a reopening was last tried */
    /* occ: a request on it timed out: tried last until suspect_until;
     * suspect_ns, the next such period (0: none yet). */
    int64_t suspect_until, suspect_ns;
    /* A connect in flight (on qd; once qd is closed, a cancelled one that
     * is yet to be taken), and how the last one failed. */
    demi_qtoken_t conn_qt;
    bool connecting;
    int conn_err;
    /* Input not yet parsed: part of one frame, at most IN_MAX bytes. */
    uint8_t *in;
    size_t in_len, in_cap;
    demi_qtoken_t pop_qt;
    bool popping; /* also after the close, until the cancelled pop is taken */
    demi_qtoken_t push_qt[PUSH_MAX];
    uint32_t npush;
    /* Frames encoded and not yet pushed (stage_cap 0: no buffer). */
    demi_sgarray_t stage;
    size_t stage_len, stage_cap;
};

enum { R_WAIT, R_DONE, R_FAILED };

/* One request of the current round. */
struct req {
    uint32_t conn;
    uint32_t tag; /* the caller's: which write, which shard */
    uint8_t rtype;
    uint8_t state;
    uint8_t status; /* R_DONE: the reply's */
    int err;        /* R_FAILED: ETIMEDOUT, ECONNRESET, EPROTO, ENOMEM, EINVAL */
    bool staged;    /* handed to its connection (the replica may have it) */
    uint64_t reqid;
    uint64_t ts; /* R_DONE: the reply's */
};

/* A buffered write (key and value in one allocation) or a read-set entry
 * (the key, and the version read). */
struct ent {
    uint8_t *key;
    uint32_t klen, vlen;
    uint64_t ver;
};

/* The current transaction's part in one shard. */
struct shardtx {
    struct ent rd[TXN_SET_MAX], wr[TXN_SET_MAX];
    uint32_t nrd, nwr;
    uint64_t body; /* the PREPARE's body bytes with these sets */
};

struct txc {
    struct txc_config cfg;
    uint32_t nconns;
    struct conn conn[NCONN_MAX];
    /* The current round. */
    struct req *reqs;
    uint32_t nreq, reqcap, nwaiting;
    uint64_t seq;
    int64_t deadline;
    /* A quorum round (qw commit): a tag is settled when QUORUM requests of
     * it succeeded or can no longer; the round ends when all are. */
    uint32_t quorum, unsettled;
    uint16_t *tag_ok, *tag_bad;
    /* What a wait hands demi_wait_any: tokens, and whose they are. */
    demi_qtoken_t *tok;
    uint32_t *who;
    uint32_t tokcap;
    uint64_t clock;
    uint64_t txnid_next;
    uint32_t primary[TXC_SHARDS_MAX]; /* occ: each shard's primary, as guessed */
    struct shardtx tx[TXC_SHARDS_MAX];
    uint32_t touched; /* shards of the current transaction, one bit each */
    bool doomed;      /* occ: a key read twice gave two versions: it cannot commit */
    uint8_t *val;     /* the last get's value */
    size_t val_len, val_cap;
    struct txn_msg m; /* a request being encoded */
    struct txn_msg d; /* a reply being decoded */
    struct txc_stats st;
};

/* ---- time ---- */

static int64_t mono_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static uint64_t real_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

/* A new timestamp, above every one issued or seen. */
static uint64_t next_ts(struct txc *c)
{
    uint64_t t = c->clock + 1, now = real_us();
    if (now > t)
        t = now;
    c->clock = t;
    return t;
}

/* A version a replica reported: later timestamps go past it. */
static void observe(struct txc *c, uint64_t ver)
{
    if (ver <= VER_SANE && ver > c->clock)
        c->clock = ver;
}

/* The next transaction id, with FLAGS (msg.h's TXN_ID_* bits: which
 * shards decide it) in its top bits. */
static uint64_t next_txnid(struct txc *c, uint64_t flags)
{
    uint64_t id = c->txnid_next++ & ~TXN_ID_FLAGS;
    if (id == 0)
        id = c->txnid_next++ & ~TXN_ID_FLAGS;
    return id | flags;
}

/* A random start for transaction ids, so that clients (which share the
 * primaries' id space) do not collide. */
static uint64_t txnid_seed(const void *salt)
{
    uint64_t r = 0;
    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
        r = real_us() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)salt;
    return r;
}

uint32_t txc_shard_of(const uint8_t *key, size_t klen, uint32_t nshards)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < klen; i++) {
        h ^= key[i];
        h *= 16777619u;
    }
    return nshards ? h % nshards : 0;
}

/* ---- requests and replies ---- */

static void tag_settle(struct txc *c, uint32_t tag)
{
    uint32_t n = c->cfg.nreplicas;
    if (c->tag_ok[tag] == c->quorum || c->tag_bad[tag] == n - c->quorum + 1)
        c->unsettled--;
}

static void req_end(struct txc *c, uint32_t k, uint8_t state, int err)
{
    struct req *r = &c->reqs[k];
    if (r->state != R_WAIT)
        return;
    r->state = state;
    r->err = err;
    c->nwaiting--;
    if (c->quorum) {
        if (state == R_DONE && r->status == TXN_ST_OK)
            c->tag_ok[r->tag]++;
        else
            c->tag_bad[r->tag]++;
        tag_settle(c, r->tag);
    }
}

static void conn_name(const struct txc *c, uint32_t i, char *buf, size_t len)
{
    const struct conn *cn = &c->conn[i];
    const struct sockaddr_in *a = &c->cfg.replica[cn->shard][cn->replica];
    char ip[INET_ADDRSTRLEN] = "?";
    inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
    snprintf(buf, len, "shard %u replica %u (%s:%u)", cn->shard, cn->replica, ip, ntohs(a->sin_port));
}

static void stage_drop(struct conn *cn)
{
    if (cn->stage_cap)
        demi_sgafree(&cn->stage);
    cn->stage_cap = cn->stage_len = 0;
}

/* Closes connection I (a connect in flight too): its waiting requests
 * fail with ERR. Its pending pop, pushes and connect stay in the wait sets
 * until they complete (cancelled by the close). */
static void conn_fail(struct txc *c, uint32_t i, int err)
{
    struct conn *cn = &c->conn[i];
    if (cn->qd >= 0)
        demi_close(cn->qd);
    cn->qd = -1;
    if (cn->dead)
        return;
    cn->dead = true;
    cn->down_ns = mono_ns();
    stage_drop(cn);
    free(cn->in);
    cn->in = NULL;
    cn->in_len = cn->in_cap = 0;
    for (uint32_t k = 0; k < c->nreq; k++)
        if (c->reqs[k].conn == i)
            req_end(c, k, R_FAILED, err);
}

static bool is_client_reply(uint8_t t)
{
    return t == TXN_GET_REPLY || t == TXN_PUT_REPLY || t == TXN_PREPARE_REPLY || t == TXN_COMMIT_REPLY ||
           t == TXN_ABORT_REPLY || t == TXN_LOAD_REPLY;
}

/* Keeps a GET_REPLY's value past the input buffer's next change. */
static int keep_value(struct txc *c, const struct txn_bytes *v)
{
    if (v->n > c->val_cap) {
        uint8_t *p = realloc(c->val, v->n);
        if (!p)
            return ENOMEM;
        c->val = p;
        c->val_cap = v->n;
    }
    if (v->n)
        memcpy(c->val, v->p, v->n);
    c->val_len = v->n;
    return 0;
}

/* One whole frame from connection I. */
static void on_frame(struct txc *c, uint32_t i, const uint8_t *frame, size_t len)
{
    struct txn_msg *d = &c->d;
    if (txn_msg_decode(frame, len, d, NULL) != 0 || !is_client_reply(d->type)) {
        conn_fail(c, i, EPROTO);
        return;
    }
    c->conn[i].suspect_until = c->conn[i].suspect_ns = 0; /* it answers */
    uint32_t k = (uint32_t)(d->reqid & IDX_MASK);
    if (k >= c->nreq || c->reqs[k].reqid != d->reqid || c->reqs[k].conn != i)
        return; /* late: its round is over (the round's number is in reqid) */
    struct req *r = &c->reqs[k];
    if (r->state != R_WAIT)
        return; /* its round gave up on it already */
    if (d->type != r->rtype) {
        conn_fail(c, i, EPROTO);
        return;
    }
    r->status = d->status;
    r->ts = d->ts;
    if (d->type == TXN_GET_REPLY && d->status == TXN_ST_OK && keep_value(c, &d->val) != 0) {
        req_end(c, k, R_FAILED, ENOMEM);
        return;
    }
    req_end(c, k, R_DONE, 0);
}

/* Parses the whole frames in connection I's input buffer. */
static void conn_parse(struct txc *c, uint32_t i)
{
    struct conn *cn = &c->conn[i];
    size_t off = 0;
    while (!cn->dead) {
        size_t flen = 0;
        int r = txn_frame_len(cn->in + off, cn->in_len - off, &flen, NULL);
        if (r < 0) {
            conn_fail(c, i, EPROTO);
            return;
        }
        if (r == 0)
            break;
        on_frame(c, i, cn->in + off, flen);
        off += flen;
    }
    if (cn->dead)
        return;
    cn->in_len -= off;
    if (cn->in_len && off)
        memmove(cn->in, cn->in + off, cn->in_len);
    if (cn->in_len == 0 && cn->in_cap > IN_FIRST) {
        free(cn->in); /* a large frame's buffer is not kept */
        cn->in = NULL;
        cn->in_cap = 0;
    }
}

static bool in_reserve(struct conn *cn, size_t want)
{
    if (want <= cn->in_cap)
        return true;
    size_t cap = cn->in_cap ? cn->in_cap * 2 : IN_FIRST;
    if (cap < want)
        cap = want;
    if (cap > IN_MAX)
        cap = IN_MAX;
    uint8_t *p = realloc(cn->in, cap);
    if (!p)
        return false;
    cn->in = p;
    cn->in_cap = cap;
    return true;
}

/* Bytes popped from connection I, parsed as they fit in its buffer. */
static void conn_input(struct txc *c, uint32_t i, const uint8_t *p, size_t n)
{
    struct conn *cn = &c->conn[i];
    while (n > 0 && !cn->dead) {
        size_t room = IN_MAX - cn->in_len;
        if (room == 0) { /* cannot happen: txn_frame_len bounds a frame by IN_MAX */
            conn_fail(c, i, EPROTO);
            return;
        }
        size_t take = n < room ? n : room;
        if (!in_reserve(cn, cn->in_len + take)) {
            conn_fail(c, i, ENOMEM);
            return;
        }
        memcpy(cn->in + cn->in_len, p, take);
        cn->in_len += take;
        p += take;
        n -= take;
        conn_parse(c, i);
    }
}

static void on_pop(struct txc *c, uint32_t i, demi_qresult_t *qr)
{
    struct conn *cn = &c->conn[i];
    cn->popping = false;
    if (qr->qr_opcode != DEMI_OPC_POP) {
        conn_fail(c, i, ECONNRESET);
        return;
    }
    demi_sgarray_t *sga = &qr->qr_value.sga;
    if (sga->sga_numsegs == 0) { /* the replica closed the connection */
        conn_fail(c, i, ECONNRESET);
        return;
    }
    for (uint32_t s = 0; s < sga->sga_numsegs && !cn->dead; s++)
        conn_input(c, i, sga->sga_segs[s].sgaseg_buf, sga->sga_segs[s].sgaseg_len);
    demi_sgafree(sga);
    if (cn->dead)
        return;
    if (demi_pop(&cn->pop_qt, cn->qd) != 0) {
        conn_fail(c, i, ECONNRESET);
        return;
    }
    cn->popping = true;
}

/* Starts connecting I to its replica (a new socket). 0 or an errno. */
static int conn_start(struct txc *c, uint32_t i)
{
    struct conn *cn = &c->conn[i];
    const struct sockaddr_in *a = &c->cfg.replica[cn->shard][cn->replica];
    int e = demi_socket(&cn->qd, AF_INET, SOCK_STREAM, 0);
    if (e) {
        cn->qd = -1;
        return cn->conn_err = e;
    }
    if ((e = demi_connect(&cn->conn_qt, cn->qd, (const struct sockaddr *)a, sizeof(*a))) != 0) {
        demi_close(cn->qd);
        cn->qd = -1;
        return cn->conn_err = e;
    }
    cn->connecting = true;
    return 0;
}

/* Connection I's connect completed: it is up (TCP_NODELAY, its pop
 * posted), or closed with the reason in conn_err. */
static void on_connect(struct txc *c, uint32_t i, const demi_qresult_t *qr)
{
    struct conn *cn = &c->conn[i];
    if (cn->qd < 0)
        return; /* given up on and closed: the result is the cancel */
    int e = 0;
    if (qr->qr_opcode != DEMI_OPC_CONNECT) {
        e = qr->qr_ret > 0 ? (int)qr->qr_ret : ECONNREFUSED;
    } else {
        int one = 1;
        demi_setsockopt(cn->qd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        e = demi_pop(&cn->pop_qt, cn->qd);
    }
    if (e) {
        cn->conn_err = e;
        demi_close(cn->qd);
        cn->qd = -1;
        return;
    }
    cn->popping = true;
    cn->dead = false;
    cn->conn_err = 0;
}

/* One completion of C's operations, waiting until DEADLINE (CLOCK_MONOTONIC
 * ns). Returns 0, ETIMEDOUT, ENOENT when C has nothing in flight, or
 * demi_wait_any's error. */
static int pump(struct txc *c, int64_t deadline)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->nconns; i++) {
        struct conn *cn = &c->conn[i];
        if (cn->popping) {
            c->tok[n] = cn->pop_qt;
            c->who[n++] = i << 8 | 0xff;
        }
        if (cn->connecting) {
            c->tok[n] = cn->conn_qt;
            c->who[n++] = i << 8 | 0xfe;
        }
        for (uint32_t p = 0; p < cn->npush; p++) {
            c->tok[n] = cn->push_qt[p];
            c->who[n++] = i << 8 | p;
        }
    }
    if (n == 0)
        return ENOENT;
    int64_t left = deadline - mono_ns();
    if (left <= 0)
        return ETIMEDOUT;
    struct timespec to = {.tv_sec = left / 1000000000LL, .tv_nsec = left % 1000000000LL};
    demi_qresult_t qr;
    int idx = -1;
    int e = demi_wait_any(&qr, &idx, c->tok, (int)n, &to);
    if (e)
        return e;
    uint32_t i = c->who[idx] >> 8, p = c->who[idx] & 0xff;
    struct conn *cn = &c->conn[i];
    if (p == 0xfe) {
        cn->connecting = false;
        on_connect(c, i, &qr);
        return 0;
    }
    if (p == 0xff) {
        if (cn->dead) {
            cn->popping = false;
            if (qr.qr_opcode == DEMI_OPC_POP)
                demi_sgafree(&qr.qr_value.sga);
        } else {
            on_pop(c, i, &qr);
        }
        return 0;
    }
    cn->push_qt[p] = cn->push_qt[--cn->npush];
    if (qr.qr_opcode != DEMI_OPC_PUSH && !cn->dead)
        conn_fail(c, i, ECONNRESET);
    return 0;
}

/* occ: when the current attempt gives up on a replica (cfg.attempt_ms
 * from now, not past the call's deadline). */
static int64_t attempt_end(const struct txc *c)
{
    uint32_t ms = c->cfg.attempt_ms ? c->cfg.attempt_ms : c->cfg.timeout_ms / 4;
    int64_t end = mono_ns() + (int64_t)(ms ? ms : 1) * 1000000LL;
    return end < c->deadline ? end : c->deadline;
}

/* Connection I timed out a request: tried last for a while. */
static void conn_suspect(struct txc *c, uint32_t i)
{
    struct conn *cn = &c->conn[i];
    cn->suspect_ns = cn->suspect_ns ? cn->suspect_ns * 2 : SUSPECT_NS;
    if (cn->suspect_ns > SUSPECT_MAX_NS)
        cn->suspect_ns = SUSPECT_MAX_NS;
    cn->suspect_until = mono_ns() + cn->suspect_ns;
}

static bool conn_suspected(const struct txc *c, uint32_t i)
{
    return c->conn[i].suspect_until > mono_ns();
}

/* Reopens connection I if it failed (or was last tried) REVIVE_NS ago or
 * more, waiting for the connect until the call's deadline (occ: the
 * attempt's end; a connect not done by then makes it suspect). Returns 0
 * when the connection is up, else an errno (it stays down until a later
 * try). */
static int conn_revive(struct txc *c, uint32_t i)
{
    struct conn *cn = &c->conn[i];
    if (!cn->dead)
        return 0;
    int64_t now = mono_ns();
    if (now - cn->down_ns < REVIVE_NS)
        return ECONNRESET;
    cn->down_ns = now;
    int64_t until = c->cfg.mode == TXC_OCC ? attempt_end(c) : c->deadline;
    /* The old connection's cancelled operations are taken first: a
     * connection holds one set of tokens. */
    while (cn->popping || cn->npush || cn->connecting)
        if (pump(c, until) != 0)
            return ETIMEDOUT;
    int e = conn_start(c, i);
    if (e)
        return e;
    while (cn->connecting) {
        if ((e = pump(c, until)) != 0) {
            /* The close cancels the connect; a later pump takes it. */
            conn_fail(c, i, ECONNRESET);
            if (c->cfg.mode == TXC_OCC)
                conn_suspect(c, i);
            return e == ENOENT ? ETIMEDOUT : e;
        }
    }
    return cn->dead ? ECONNRESET : 0;
}

/* Pushes connection I's staged frames. */
static int conn_flush(struct txc *c, uint32_t i)
{
    struct conn *cn = &c->conn[i];
    while (cn->npush == PUSH_MAX && !cn->dead) {
        int e = pump(c, c->deadline);
        if (e) {
            stage_drop(cn); /* whole frames only: the stream stays in step */
            return e;
        }
    }
    if (cn->dead)
        return ECONNRESET;
    cn->stage.sga_segs[0].sgaseg_len = (uint32_t)cn->stage_len;
    demi_qtoken_t qt;
    int e = demi_push(&qt, cn->qd, &cn->stage);
    stage_drop(cn);
    if (e) {
        conn_fail(c, i, ECONNRESET);
        return ECONNRESET;
    }
    cn->push_qt[cn->npush++] = qt;
    return 0;
}

/* Encodes M into connection I's staging buffer. */
static int conn_stage(struct txc *c, uint32_t i, const struct txn_msg *m)
{
    struct conn *cn = &c->conn[i];
    size_t size = txn_msg_size(m);
    if (size == 0)
        return EINVAL;
    if (cn->stage_cap && cn->stage_len + size > cn->stage_cap) {
        int e = conn_flush(c, i);
        if (e)
            return e;
    }
    if (cn->dead)
        return ECONNRESET;
    if (!cn->stage_cap) {
        size_t cap = size > STAGE_CHUNK ? size : STAGE_CHUNK;
        cn->stage = demi_sgaalloc(cap);
        if (cn->stage.sga_numsegs != 1) {
            if (cn->stage.sga_numsegs)
                demi_sgafree(&cn->stage);
            return ENOMEM;
        }
        cn->stage_cap = cap;
        cn->stage_len = 0;
    }
    uint8_t *buf = cn->stage.sga_segs[0].sgaseg_buf;
    if (txn_msg_encode(m, buf + cn->stage_len, cn->stage_cap - cn->stage_len) != size)
        return EINVAL;
    cn->stage_len += size;
    return 0;
}

static uint32_t conn_of(const struct txc *c, uint32_t shard, uint32_t replica)
{
    return shard * c->cfg.nreplicas + replica;
}

/* Starts a round; QUORUM > 0 makes it a quorum round over NTAGS tags. */
static void round_begin(struct txc *c, uint32_t quorum, uint32_t ntags)
{
    c->seq++;
    c->nreq = c->nwaiting = 0;
    c->quorum = quorum;
    c->unsettled = quorum ? ntags : 0;
    if (quorum) {
        memset(c->tag_ok, 0, ntags * sizeof(*c->tag_ok));
        memset(c->tag_bad, 0, ntags * sizeof(*c->tag_bad));
    }
}

/* Starts a call: its rounds, reconnects and retries end by its deadline. */
static void call_begin(struct txc *c)
{
    c->deadline = mono_ns() + (int64_t)c->cfg.timeout_ms * 1000000LL;
}

/* Adds request M (its reqid is set here) to connection I; returns its
 * index in the round. A request that cannot be sent fails at once. */
static uint32_t round_add(struct txc *c, uint32_t i, struct txn_msg *m, uint32_t tag)
{
    int e = conn_revive(c, i); /* before the request exists: it pumps */
    if (e && e != ETIMEDOUT)
        e = ECONNRESET;
    uint32_t k = c->nreq++;
    struct req *r = &c->reqs[k];
    *r = (struct req){.conn = i, .tag = tag, .rtype = (uint8_t)(m->type + 1), .state = R_WAIT};
    r->reqid = m->reqid = c->seq << IDX_BITS | k;
    c->nwaiting++;
    if (!e)
        e = conn_stage(c, i, m);
    if (e)
        req_end(c, k, R_FAILED, e);
    else
        r->staged = true;
    return k;
}

/* Was request K handed to its connection? */
static bool req_sent(const struct txc *c, uint32_t k)
{
    return c->reqs[k].staged;
}

static void round_flush(struct txc *c)
{
    for (uint32_t i = 0; i < c->nconns; i++)
        if (c->conn[i].stage_len && conn_flush(c, i) != 0)
            stage_drop(&c->conn[i]);
}

/* Waits until every request of the round is answered (a quorum round: every
 * tag settled) or failed; at UNTIL the rest fail with ETIMEDOUT. */
static void round_wait_until(struct txc *c, int64_t until)
{
    round_flush(c);
    while (c->nwaiting > 0 && !(c->quorum && c->unsettled == 0)) {
        int e = pump(c, until);
        if (e == 0)
            continue;
        for (uint32_t k = 0; k < c->nreq; k++)
            req_end(c, k, R_FAILED, e == ENOENT ? ETIMEDOUT : e);
    }
}

static void round_wait(struct txc *c)
{
    round_wait_until(c, c->deadline);
}

/* The errno for a reply status other than OK. */
static int status_errno(uint8_t st)
{
    switch (st) {
    case TXN_ST_OK:
        return 0;
    case TXN_ST_NOTFOUND:
        return ENOENT;
    case TXN_ST_ABORT:
        return EAGAIN;
    case TXN_ST_FULL:
        return ENOSPC;
    case TXN_ST_UNAVAIL:
        return EIO;
    default: /* BADREQ, or NOTPRIMARY where the caller does not handle it */
        return EPROTO;
    }
}

/* The outcome of request K: 0, or an errno. */
static int req_errno(const struct txc *c, uint32_t k)
{
    const struct req *r = &c->reqs[k];
    return r->state == R_FAILED ? r->err : status_errno(r->status);
}

/* ---- open and close ---- */

static void errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int check_config(const struct txc_config *cfg, char *err, size_t errlen)
{
    if (!cfg || (cfg->mode != TXC_QW && cfg->mode != TXC_OCC)) {
        errf(err, errlen, "txc_open: no configuration, or a mode other than qw or occ");
        return EINVAL;
    }
    if (cfg->nshards < 1 || cfg->nshards > TXC_SHARDS_MAX || cfg->nreplicas < 1 || cfg->nreplicas > TXC_REPLICAS_MAX) {
        errf(err, errlen, "txc_open: %u shards of %u replicas (1..%d shards of 1..%d replicas)", cfg->nshards,
             cfg->nreplicas, TXC_SHARDS_MAX, TXC_REPLICAS_MAX);
        return EINVAL;
    }
    for (uint32_t s = 0; s < cfg->nshards; s++) {
        for (uint32_t r = 0; r < cfg->nreplicas; r++) {
            if (cfg->replica[s][r].sin_family != AF_INET || cfg->replica[s][r].sin_port == 0) {
                errf(err, errlen, "txc_open: shard %u replica %u: not an IPv4 address with a port", s, r);
                return EINVAL;
            }
        }
    }
    return 0;
}

/* Closes every connection and takes what completes by DEADLINE. */
static void drain(struct txc *c, int64_t deadline)
{
    c->nreq = c->nwaiting = c->quorum = 0; /* no round is going on */
    for (uint32_t i = 0; i < c->nconns; i++)
        conn_fail(c, i, ECONNRESET);
    while (pump(c, deadline) == 0)
        ;
}

static void free_all(struct txc *c)
{
    for (uint32_t s = 0; s < TXC_SHARDS_MAX; s++) {
        struct shardtx *t = &c->tx[s];
        for (uint32_t j = 0; j < t->nrd; j++)
            free(t->rd[j].key);
        for (uint32_t j = 0; j < t->nwr; j++)
            free(t->wr[j].key);
    }
    free(c->reqs);
    free(c->tag_ok);
    free(c->tag_bad);
    free(c->tok);
    free(c->who);
    free(c->val);
    free(c);
}

/* Connects every replica, all at once. In qw every one must connect; in
 * occ a majority of each shard's (what a shard needs to make progress):
 * the others are left down, tried last (suspect), and reopened when a
 * request needs them. On failure ERR names a replica that failed and why
 * (the caller's drain then takes the connects still in flight). */
static int connect_all(struct txc *c, char *err, size_t errlen)
{
    char name[96];
    bool occ = c->cfg.mode == TXC_OCC;
    call_begin(c);
    for (uint32_t i = 0; i < c->nconns; i++)
        if (conn_start(c, i) != 0 && !occ) {
            conn_name(c, i, name, sizeof(name));
            errf(err, errlen, "%s: connect: %s", name, strerror(c->conn[i].conn_err));
            return c->conn[i].conn_err;
        }
    for (;;) {
        uint32_t waiting = c->nconns;
        for (uint32_t i = 0; i < c->nconns; i++) {
            const struct conn *cn = &c->conn[i];
            if (cn->connecting) {
                if (waiting == c->nconns)
                    waiting = i;
            } else if (cn->dead && !occ) {
                conn_name(c, i, name, sizeof(name));
                errf(err, errlen, "%s: connect: %s", name, strerror(cn->conn_err));
                return cn->conn_err;
            }
        }
        if (waiting == c->nconns)
            break;
        int e = pump(c, c->deadline);
        if (e && !occ) {
            conn_name(c, waiting, name, sizeof(name));
            errf(err, errlen, "%s: connect: %s", name, e == ETIMEDOUT ? "no answer within the timeout" : strerror(e));
            return e;
        }
        if (e) { /* the deadline: connects still in flight count as failed */
            for (uint32_t i = 0; i < c->nconns; i++)
                if (c->conn[i].connecting) {
                    c->conn[i].conn_err = ETIMEDOUT;
                    conn_fail(c, i, ETIMEDOUT);
                }
            break;
        }
    }
    uint32_t n = c->cfg.nreplicas;
    for (uint32_t s = 0; s < c->cfg.nshards; s++) {
        uint32_t up = 0, failed = n;
        for (uint32_t r = 0; r < n; r++) {
            uint32_t i = conn_of(c, s, r);
            if (!c->conn[i].dead)
                up++;
            else {
                if (failed == n)
                    failed = r;
                c->conn[i].down_ns = mono_ns();
                conn_suspect(c, i);
            }
        }
        if (up <= n / 2) {
            uint32_t i = conn_of(c, s, failed);
            conn_name(c, i, name, sizeof(name));
            errf(err, errlen, "%s: connect: %s (%u of the shard's %u replicas reached, a majority needed)", name,
                 c->conn[i].conn_err == ETIMEDOUT ? "no answer within the timeout" : strerror(c->conn[i].conn_err), up,
                 n);
            return c->conn[i].conn_err ? c->conn[i].conn_err : ECONNREFUSED;
        }
    }
    return 0;
}

struct txc *txc_open(const struct txc_config *cfg, char *err, size_t errlen)
{
    errf(err, errlen, "no error");
    if (check_config(cfg, err, errlen) != 0)
        return NULL;
    struct txc *c = calloc(1, sizeof(*c));
    if (!c) {
        errf(err, errlen, "txc_open: out of memory");
        return NULL;
    }
    c->cfg = *cfg;
    if (c->cfg.timeout_ms == 0)
        c->cfg.timeout_ms = TIMEOUT_MS;
    c->nconns = cfg->nshards * cfg->nreplicas;
    for (uint32_t i = 0; i < c->nconns; i++) {
        c->conn[i].qd = -1;
        c->conn[i].dead = true; /* until connect_all's connect completes */
        c->conn[i].shard = i / cfg->nreplicas;
        c->conn[i].replica = i % cfg->nreplicas;
    }
    /* The largest round: a qw commit, every write to every replica. */
    c->reqcap = TXN_SET_MAX * cfg->nshards * cfg->nreplicas;
    c->tokcap = c->nconns * (2 + PUSH_MAX); /* a pop, a connect, the pushes */
    c->reqs = calloc(c->reqcap, sizeof(*c->reqs));
    c->tag_ok = calloc(TXN_SET_MAX * cfg->nshards, sizeof(*c->tag_ok));
    c->tag_bad = calloc(TXN_SET_MAX * cfg->nshards, sizeof(*c->tag_bad));
    c->tok = calloc(c->tokcap, sizeof(*c->tok));
    c->who = calloc(c->tokcap, sizeof(*c->who));
    if (!c->reqs || !c->tag_ok || !c->tag_bad || !c->tok || !c->who) {
        errf(err, errlen, "txc_open: out of memory");
        free_all(c);
        return NULL;
    }
    c->txnid_next = txnid_seed(c);
    if (connect_all(c, err, errlen) != 0) {
        drain(c, mono_ns() + (int64_t)c->cfg.timeout_ms * 1000000LL);
        free_all(c);
        return NULL;
    }
    return c;
}

void txc_close(struct txc *c)
{
    if (!c)
        return;
    drain(c, mono_ns() + (int64_t)c->cfg.timeout_ms * 1000000LL);
    free_all(c);
}

void txc_get_stats(const struct txc *c, struct txc_stats *st)
{
    if (c && st)
        *st = c->st;
}

/* ---- the transaction's buffers ---- */

static struct ent *find(struct ent *e, uint32_t n, const uint8_t *key, size_t klen)
{
    for (uint32_t j = 0; j < n; j++)
        if (e[j].klen == klen && (klen == 0 || memcmp(e[j].key, key, klen) == 0))
            return &e[j];
    return NULL;
}

/* Drops the current transaction's reads and writes. */
static void tx_clear(struct txc *c)
{
    for (uint32_t s = 0; s < c->cfg.nshards; s++) {
        if (!(c->touched & (1u << s)))
            continue;
        struct shardtx *t = &c->tx[s];
        for (uint32_t j = 0; j < t->nrd; j++)
            free(t->rd[j].key);
        for (uint32_t j = 0; j < t->nwr; j++)
            free(t->wr[j].key);
        t->nrd = t->nwr = 0;
        t->body = 0;
    }
    c->touched = 0;
    c->doomed = false;
}

/* The PREPARE body bytes of a shard with no reads and no writes: txnid,
 * ts and the two set counts. */
#define PREPARE_BASE 24u

static uint64_t read_bytes(size_t klen)
{
    return 4 + (uint64_t)klen + 8;
}

static uint64_t write_bytes(size_t klen, size_t vlen)
{
    return 4 + (uint64_t)klen + 4 + (uint64_t)vlen;
}

static uint8_t *copy_bytes(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    uint8_t *p = malloc(alen + blen + 1);
    if (!p)
        return NULL;
    if (alen)
        memcpy(p, a, alen);
    if (blen)
        memcpy(p + alen, b, blen);
    return p;
}

void txc_begin(struct txc *c)
{
    if (c)
        tx_clear(c);
}

void txc_abort(struct txc *c)
{
    /* Nothing is prepared between calls: txc_commit prepares, then
     * commits or aborts (what it can reach by its deadline) before it
     * returns. */
    if (c)
        tx_clear(c);
}

int txc_put(struct txc *c, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    if (!c || (!key && klen) || (!val && vlen) || klen > TXN_KEY_MAX || vlen > TXN_VAL_MAX)
        return EINVAL;
    uint32_t s = txc_shard_of(key, klen, c->cfg.nshards);
    struct shardtx *t = &c->tx[s];
    struct ent *w = find(t->wr, t->nwr, key, klen);
    if (!w && t->nwr == TXN_SET_MAX)
        return EINVAL;
    uint64_t body = t->body - (w ? write_bytes(w->klen, w->vlen) : 0) + write_bytes(klen, vlen);
    if (c->cfg.mode == TXC_OCC && PREPARE_BASE + body > TXN_BODY_MAX)
        return EINVAL;
    uint8_t *p = copy_bytes(key, klen, val, vlen);
    if (!p)
        return ENOMEM;
    if (w)
        free(w->key);
    else
        w = &t->wr[t->nwr++];
    *w = (struct ent){.key = p, .klen = (uint32_t)klen, .vlen = (uint32_t)vlen};
    t->body = body;
    c->touched |= 1u << s;
    return 0;
}

/* ---- gets ---- */

/* One GET of KEY from one replica: 0 (the value in c->val), ENOENT, or an
 * errno. *VER gets the version read. */
static int get_one(struct txc *c, uint32_t shard, uint32_t replica, const uint8_t *key, size_t klen, uint64_t *ver)
{
    struct txn_msg *m = &c->m;
    memset(m, 0, offsetof(struct txn_msg, reads));
    m->type = TXN_GET;
    m->ts = UINT64_MAX;
    m->key = (struct txn_bytes){key, (uint32_t)klen};
    round_begin(c, 0, 0);
    uint32_t i = conn_of(c, shard, replica), k = round_add(c, i, m, 0);
    if (req_sent(c, k))
        c->st.gets++;
    bool rotate = c->cfg.mode == TXC_OCC && !c->cfg.read_pinned;
    round_wait_until(c, rotate ? attempt_end(c) : c->deadline);
    int e = req_errno(c, k);
    if (e == ETIMEDOUT && rotate)
        conn_suspect(c, i);
    *ver = 0;
    if (e == 0) {
        *ver = c->reqs[k].ts;
        observe(c, *ver);
    }
    return e;
}

int txc_get_ver(struct txc *c, const uint8_t *key, size_t klen, const uint8_t **val, size_t *vlen, uint64_t *ver)
{
    if (!c || (!key && klen) || !val || !vlen || klen > TXN_KEY_MAX)
        return EINVAL;
    uint32_t s = txc_shard_of(key, klen, c->cfg.nshards);
    struct shardtx *t = &c->tx[s];
    struct ent *w = find(t->wr, t->nwr, key, klen);
    if (w) { /* the transaction's own write */
        *val = w->key + w->klen;
        *vlen = w->vlen;
        if (ver)
            *ver = UINT64_MAX;
        return 0;
    }
    bool occ = c->cfg.mode == TXC_OCC;
    struct ent *r = occ ? find(t->rd, t->nrd, key, klen) : NULL;
    if (occ && !r && (t->nrd == TXN_SET_MAX || PREPARE_BASE + t->body + read_bytes(klen) > TXN_BODY_MAX))
        return EINVAL;
    /* occ validates every read at commit, so any replica will do: a dead
     * one, a silent one (ETIMEDOUT after an attempt), or a backup not yet
     * synced (UNAVAIL: EIO), is passed over for the next; replicas that
     * timed out lately are tried last. */
    uint32_t n = c->cfg.nreplicas, first = c->cfg.read_replica % n;
    uint64_t got = 0;
    int e = ECONNRESET;
    bool rotate = occ && !c->cfg.read_pinned;
    uint32_t tries = rotate ? n : 1;
    call_begin(c);
    for (int pass = 0; pass < (rotate ? 2 : 1); pass++) {
        for (uint32_t j = 0; j < tries && (e == ECONNRESET || e == EIO || (rotate && e == ETIMEDOUT)); j++) {
            uint32_t rep = (first + j) % n;
            if (rotate && (pass == 0) == conn_suspected(c, conn_of(c, s, rep)))
                continue; /* first pass: those not suspect; second: the others */
            e = get_one(c, s, rep, key, klen, &got);
        }
    }
    if (e != 0 && e != ENOENT)
        return e;
    if (occ && !r) { /* the first read of a key is the one validated */
        uint8_t *p = copy_bytes(key, klen, NULL, 0);
        if (!p)
            return ENOMEM;
        t->rd[t->nrd++] = (struct ent){.key = p, .klen = (uint32_t)klen, .ver = got};
        t->body += read_bytes(klen);
        c->touched |= 1u << s;
    } else if (occ && r->ver != got) {
        /* A read that is not repeatable (a lagging replica, or a commit in
         * between): the transaction saw two states, so it aborts at commit
         * even if the first version is still current. */
        c->doomed = true;
    }
    if (ver)
        *ver = got;
    if (e == ENOENT)
        return ENOENT;
    *val = c->val;
    *vlen = c->val_len;
    return 0;
}

int txc_get(struct txc *c, const uint8_t *key, size_t klen, const uint8_t **val, size_t *vlen)
{
    return txc_get_ver(c, key, klen, val, vlen, NULL);
}

/* ---- commits ---- */

/* qw: every buffered write to every replica of its shard, all in flight
 * together; each is done on a majority. */
static int commit_qw(struct txc *c, uint64_t ts)
{
    uint32_t n = c->cfg.nreplicas, ntags = 0;
    struct txn_msg *m = &c->m;
    memset(m, 0, offsetof(struct txn_msg, reads));
    m->type = TXN_PUT;
    m->ts = ts;
    round_begin(c, n / 2 + 1, TXN_SET_MAX * c->cfg.nshards);
    for (uint32_t s = 0; s < c->cfg.nshards; s++) {
        const struct shardtx *t = &c->tx[s];
        for (uint32_t j = 0; j < t->nwr; j++, ntags++) {
            m->key = (struct txn_bytes){t->wr[j].key, t->wr[j].klen};
            m->val = (struct txn_bytes){t->wr[j].key + t->wr[j].klen, t->wr[j].vlen};
            for (uint32_t r = 0; r < n; r++)
                if (req_sent(c, round_add(c, conn_of(c, s, r), m, ntags)))
                    c->st.puts++;
        }
    }
    c->unsettled -= TXN_SET_MAX * c->cfg.nshards - ntags; /* tags no write uses */
    round_wait(c);
    int err = 0;
    for (uint32_t k = 0; k < c->nreq; k++) {
        const struct req *r = &c->reqs[k];
        if (r->state == R_DONE)
            observe(c, r->ts);
        int e = req_errno(c, k);
        if (c->tag_ok[r->tag] >= c->quorum || e == 0 || err == ETIMEDOUT)
            continue;
        /* A write short of its majority: ETIMEDOUT if a replica did not
         * answer in time, else ENOSPC if one was full, else EIO. */
        if (e == ETIMEDOUT || e == ENOSPC)
            err = e;
        else if (!err)
            err = EIO;
    }
    return err;
}

/* occ: the guess of shard S's primary becomes replica R. */
static void set_primary(struct txc *c, uint32_t s, uint32_t r)
{
    if (c->primary[s] != r) {
        c->primary[s] = r;
        c->st.failovers++;
    }
}

/* occ: replica R of shard S failed a request (gone, or not the primary
 * and no hint): the next replica is tried, unless the guess moved on. */
static void move_on(struct txc *c, uint32_t s, uint32_t r)
{
    if (c->primary[s] == r)
        set_primary(c, s, (r + 1) % c->cfg.nreplicas);
}

/* occ: the connection to shard S's guessed primary, or when it is down
 * and cannot be reopened now, or suspect (it timed out lately), to the
 * next replica's that is up and answers (the guess moves there); failing
 * that, the next one up; all down, the guess's (its requests fail at
 * once). */
static uint32_t pick(struct txc *c, uint32_t s)
{
    uint32_t n = c->cfg.nreplicas;
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t j = 0; j < n; j++) {
            uint32_t r = (c->primary[s] + j) % n, i = conn_of(c, s, r);
            if (pass == 0 && conn_suspected(c, i))
                continue;
            if (conn_revive(c, i) == 0) {
                set_primary(c, s, r);
                return i;
            }
        }
    }
    return conn_of(c, s, c->primary[s]);
}

/* Waits about NS (not past the call's deadline), taking what completes
 * meanwhile: late replies are dropped, failed connections closed. */
static void pause_for(struct txc *c, int64_t ns)
{
    int64_t until = mono_ns() + ns;
    if (until > c->deadline)
        until = c->deadline;
    for (;;) {
        int e = pump(c, until);
        int64_t left = until - mono_ns();
        if (left <= 0 || e == ETIMEDOUT)
            return;
        if (e) { /* nothing to wait on, or the wait failed: sleep instead */
            struct timespec t = {.tv_sec = left / 1000000000LL, .tv_nsec = left % 1000000000LL};
            nanosleep(&t, NULL);
            return;
        }
    }
}

/* occ: sends TYPE (COMMIT or ABORT) of TXNID to the guessed primary of
 * every shard in MASK and follows the shard until it answers OK: on
 * NOTPRIMARY (a decision's reply names no view) or a connection down, to
 * the next replica; on UNAVAIL (a view change, or a COMMIT applied at the
 * primary but not yet on a majority) to the same one after a pause, as
 * also after a shard went round all its replicas. BADREQ, FULL, a
 * malformed reply or the call's deadline end a shard. Returns 0 when
 * every shard said OK, else the last error. */
static int decide(struct txc *c, uint8_t type, uint64_t txnid, uint64_t ts, uint32_t mask)
{
    uint32_t n = c->cfg.nreplicas, hops[TXC_SHARDS_MAX] = {0};
    int err = 0, last = 0; /* a shard ended short of OK; the last failure */
    struct txn_msg *m = &c->m;
    memset(m, 0, offsetof(struct txn_msg, reads));
    m->type = type;
    m->txnid = txnid;
    m->ts = ts;
    while (mask) {
        round_begin(c, 0, 0);
        for (uint32_t s = 0; s < c->cfg.nshards; s++)
            if (mask & (1u << s))
                round_add(c, pick(c, s), m, s);
        round_wait_until(c, attempt_end(c));
        bool wait = false;
        for (uint32_t k = 0; k < c->nreq; k++) {
            const struct req *r = &c->reqs[k];
            uint32_t s = r->tag, rep = c->conn[r->conn].replica;
            bool done = r->state == R_DONE;
            if (done && r->status == TXN_ST_OK) {
                mask &= ~(1u << s);
            } else if ((done && r->status == TXN_ST_NOTPRIMARY) || (!done && r->err == ECONNRESET) ||
                       (!done && r->err == ETIMEDOUT && mono_ns() < c->deadline)) {
                if (!done && r->err == ETIMEDOUT)
                    conn_suspect(c, r->conn); /* silent: gone without a reset, or slow */
                move_on(c, s, rep);
                if (++hops[s] >= n) {
                    hops[s] = 0;
                    wait = true;
                }
                last = done ? EIO : r->err;
            } else if (done && r->status == TXN_ST_UNAVAIL) {
                wait = true;
                last = EIO;
            } else { /* for good: refused, malformed, or out of time */
                mask &= ~(1u << s);
                err = req_errno(c, k);
            }
        }
        if (!mask)
            break;
        if (wait)
            pause_for(c, PAUSE_NS);
        if (mono_ns() >= c->deadline)
            return last;
    }
    return err;
}

/* The outcome of one prepare round. */
struct votes {
    uint32_t yes;   /* shards that voted OK */
    uint32_t doubt; /* shards that may hold the prepare: sent, no answer */
    bool conflict;  /* a shard voted ABORT */
    bool timedout;  /* a shard did not answer by the deadline */
    int err;        /* a shard refused for good (FULL, BADREQ, a malformed reply) */
};

/* occ: PREPARE of TXNID at TS to the guessed primary of every shard in
 * MASK, in parallel; the outcome is added to *V. NOTPRIMARY moves the
 * guess to the primary of the view it names (PREPARE_REPLY's ts, modulo
 * nreplicas; the next replica if that is the one that answered), a
 * connection down to the next replica; UNAVAIL leaves it, and counts as a
 * doubt (a deposed primary keeps what it prepared, and the next primary
 * may inherit it). */
static void prepare(struct txc *c, uint64_t txnid, uint64_t ts, uint32_t mask, struct votes *v)
{
    uint32_t n = c->cfg.nreplicas;
    struct txn_msg *m = &c->m;
    round_begin(c, 0, 0);
    for (uint32_t s = 0; s < c->cfg.nshards; s++) {
        if (!(mask & (1u << s)))
            continue;
        uint32_t i = pick(c, s);
        const struct shardtx *t = &c->tx[s];
        memset(m, 0, offsetof(struct txn_msg, reads));
        m->type = TXN_PREPARE;
        m->txnid = txnid;
        m->ts = ts;
        m->nreads = t->nrd;
        m->nwrites = t->nwr;
        for (uint32_t j = 0; j < t->nrd; j++)
            m->reads[j] = (struct txn_op){.key = {t->rd[j].key, t->rd[j].klen}, .ver = t->rd[j].ver};
        for (uint32_t j = 0; j < t->nwr; j++)
            m->writes[j] = (struct txn_op){.key = {t->wr[j].key, t->wr[j].klen},
                                           .val = {t->wr[j].key + t->wr[j].klen, t->wr[j].vlen}};
        if (req_sent(c, round_add(c, i, m, s)))
            c->st.prepares++;
    }
    round_wait_until(c, attempt_end(c));
    for (uint32_t k = 0; k < c->nreq; k++) {
        const struct req *r = &c->reqs[k];
        uint32_t s = r->tag, rep = c->conn[r->conn].replica;
        if (r->state == R_FAILED) {
            if (r->staged)
                v->doubt |= 1u << s;
            if (r->err == ECONNRESET) {
                move_on(c, s, rep);
            } else if (r->err == ETIMEDOUT) {
                v->timedout = true;
                conn_suspect(c, r->conn); /* silent: gone without a reset, or slow */
                move_on(c, s, rep);
            } else if (!v->err)
                v->err = r->err;
            continue;
        }
        switch (r->status) {
        case TXN_ST_OK:
            v->yes |= 1u << s;
            break;
        case TXN_ST_ABORT:
            v->conflict = true;
            observe(c, r->ts);
            break;
        case TXN_ST_NOTPRIMARY: {
            uint32_t p = (uint32_t)(r->ts % n);
            set_primary(c, s, p == rep ? (rep + 1) % n : p);
            break;
        }
        case TXN_ST_UNAVAIL:
            v->doubt |= 1u << s;
            break;
        default:
            if (!v->err)
                v->err = status_errno(r->status);
        }
    }
}

/* occ: two-phase commit, this client coordinating, at *TS. A prepare
 * round that falls short without a conflict or a refusal (a shard's
 * primary moved, is changing views, or went away) is undone (ABORT where
 * it voted yes or may hold it) and run again with a fresh txnid and
 * timestamp (*TS then changes) after a pause, until the prepare phase's
 * part of the deadline is spent: the last quarter is kept for the ABORTs
 * of a round that timed out. */
static int commit_occ(struct txc *c, uint64_t *ts)
{
    int64_t end = c->deadline, prep_end = end - (int64_t)c->cfg.timeout_ms * 1000000LL / 4;
    /* The lowest shard touched coordinates (msg.h, TXN_ID_MULTI): it is
     * prepared first, so that another participant holding the prepare
     * knows the coordinator voted yes, and committed first, so that its
     * decision is the transaction's. */
    uint32_t coord = (uint32_t)__builtin_ctz(c->touched), first = 1u << coord, rest = c->touched & ~first;
    uint64_t flags = rest ? TXN_ID_MULTI | (uint64_t)coord << TXN_ID_COORD_SHIFT : TXN_ID_SOLO;
    for (;;) {
        uint64_t txnid = next_txnid(c, flags);
        struct votes v = {0};
        c->deadline = prep_end;
        prepare(c, txnid, *ts, first, &v);
        if (rest && v.yes == first)
            prepare(c, txnid, *ts, rest, &v);
        c->deadline = end;
        if (!v.conflict && !v.err && v.yes == c->touched) {
            int e = decide(c, TXN_COMMIT, txnid, *ts, first);
            if (e == EAGAIN) { /* the coordinator aborted it, waiting too long for this COMMIT */
                if (rest)
                    decide(c, TXN_ABORT, txnid, 0, rest);
                c->st.aborts++;
                return EAGAIN;
            }
            if (e)
                return EINPROGRESS;
            /* Committed. A participant this COMMIT does not reach asks
             * the coordinator (demi-txnd --shards). */
            if (rest)
                decide(c, TXN_COMMIT, txnid, *ts, rest);
            return 0;
        }
        /* Failures are tolerated here: a prepare left behind holds its
         * keys until its shard's primary hears this ABORT. */
        if (v.yes | v.doubt)
            decide(c, TXN_ABORT, txnid, 0, v.yes | v.doubt);
        if (v.conflict) {
            c->st.aborts++;
            return EAGAIN;
        }
        if (v.err)
            return v.err;
        if (mono_ns() + PAUSE_NS >= prep_end)
            return v.timedout ? ETIMEDOUT : EIO;
        pause_for(c, PAUSE_NS);
        c->st.retries++;
        *ts = next_ts(c);
    }
}

int txc_commit(struct txc *c, uint64_t *ts)
{
    if (!c)
        return EINVAL;
    call_begin(c);
    uint64_t t = next_ts(c);
    int e = 0;
    if (c->doomed) {
        c->st.aborts++;
        e = EAGAIN;
    } else if (c->touched)
        e = c->cfg.mode == TXC_OCC ? commit_occ(c, &t) : commit_qw(c, t);
    tx_clear(c);
    if (e)
        return e;
    c->st.commits++;
    if (ts)
        *ts = t;
    return 0;
}

int txc_load(struct txc *c, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    if (!c || (!key && klen) || (!val && vlen) || klen > TXN_KEY_MAX || vlen > TXN_VAL_MAX)
        return EINVAL;
    uint32_t s = txc_shard_of(key, klen, c->cfg.nshards);
    struct txn_msg *m = &c->m;
    call_begin(c);
    memset(m, 0, offsetof(struct txn_msg, reads));
    m->type = TXN_LOAD;
    m->ts = next_ts(c);
    m->key = (struct txn_bytes){key, (uint32_t)klen};
    m->val = (struct txn_bytes){val, (uint32_t)vlen};
    round_begin(c, 0, 0);
    for (uint32_t r = 0; r < c->cfg.nreplicas; r++)
        if (req_sent(c, round_add(c, conn_of(c, s, r), m, r)))
            c->st.puts++;
    round_wait(c);
    for (uint32_t k = 0; k < c->nreq; k++)
        if (req_errno(c, k))
            return req_errno(c, k);
    return 0;
}
