/*
 * tests/txn/test_txn_logrec.c: demi-txnd's log entries (apps/txn/logrec.c):
 * what lrec_encode writes, what lrec_apply does with good payloads (the
 * store it rebuilds, a prepared transaction left held, replaying twice
 * changing nothing) and with bad ones (cut, trailing bytes, types the log
 * never holds, a request id, a commit at another timestamp, a store too
 * small), which must each give an error and a reason naming the byte;
 * and that lrec_snapshot, written as log entries the way a compaction
 * writes its snapshot, rebuilds the same store, decisions and view. The
 * failover's entries: SYNC_DECIDED (applied, repeated, contradicted),
 * VIEW_START (reported), and a new primary's merge logged without a
 * SYNC_BEGIN. Whether the store is complete (SYNC_BEGIN without SYNC_END),
 * through a replay and a snapshot.
 * Pure code: no libdemi, no I/O.
 */
#include "logrec.h"
#include "tcases.h"
#include "tcheck.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* Present only under ASan/LSan; the leak check then runs per case. */
extern int __lsan_do_recoverable_leak_check(void) __attribute__((weak));

static const uint8_t *B(const char *s)
{
    return (const uint8_t *)s;
}

/* A payload being built. */
struct pay {
    uint8_t buf[1 << 16];
    size_t len;
};

static void add(struct pay *p, const struct txn_msg *m, uint8_t type)
{
    size_t n = lrec_size(m);
    CHECK(n > 0 && p->len + n <= sizeof(p->buf));
    CHECK_EQ(lrec_encode(m, type, p->buf + p->len, n), n);
    p->len += n;
}

static void add_prepare(struct pay *p, uint64_t txnid, uint64_t ts, const char *rk, uint64_t rver, const char *wk,
                        const char *wv)
{
    static struct txn_msg m;
    memset(&m, 0, sizeof(m));
    m.type = TXN_PREPARE; /* a client's PREPARE, logged as REPL_PREPARE */
    m.reqid = 77;
    m.txnid = txnid;
    m.ts = ts;
    if (rk) {
        m.nreads = 1;
        m.reads[0].key = (struct txn_bytes){B(rk), (uint32_t)strlen(rk)};
        m.reads[0].ver = rver;
    }
    m.nwrites = 1;
    m.writes[0].key = (struct txn_bytes){B(wk), (uint32_t)strlen(wk)};
    m.writes[0].val = (struct txn_bytes){B(wv), (uint32_t)strlen(wv)};
    add(p, &m, TXN_REPL_PREPARE);
}

static void add_decide(struct pay *p, uint8_t type, uint64_t txnid, uint64_t ts)
{
    struct txn_msg m = {.type = type == TXN_REPL_COMMIT ? TXN_COMMIT : TXN_ABORT, .reqid = 5, .txnid = txnid, .ts = ts};
    add(p, &m, type);
}

static void add_load(struct pay *p, const char *k, const char *v, uint64_t ts)
{
    struct txn_msg m = {.type = TXN_PUT, .ts = ts};
    m.key = (struct txn_bytes){B(k), (uint32_t)strlen(k)};
    m.val = (struct txn_bytes){B(v), (uint32_t)strlen(v)};
    add(p, &m, TXN_LOAD);
}

static struct txs *mk(uint32_t max_prepared)
{
    struct txs_limits lim = {.max_prepared = max_prepared};
    struct txs *s = txs_create(&lim);
    CHECK(s != NULL);
    return s;
}

static void get_is(struct txs *s, const char *k, int rc, uint64_t ver, const char *val, int line)
{
    const uint8_t *p = NULL;
    size_t n = 0;
    uint64_t v = 0;
    int got = txs_get(s, B(k), strlen(k), UINT64_MAX, &p, &n, &v);
    if (got != rc || (rc == 0 && (v != ver || n != strlen(val) || memcmp(p, val, n) != 0))) {
        fprintf(stderr, "line %d: get %s: %d version %llu, wanted %d version %llu '%s'\n", line, k, got,
                (unsigned long long)v, rc, (unsigned long long)ver, val ? val : "");
        exit(1);
    }
}
#define GET_IS(s, k, rc, ver, val) get_is(s, k, rc, ver, val, __LINE__)

static int apply(struct txs *s, const struct pay *p, struct lrec_stats *st, char *msg)
{
    return lrec_apply(s, p->buf, p->len, 1, st, msg, 256);
}

/* The entry is the request's frame with another type and request id 0,
 * and decodes as such. */
static void case_encode(void)
{
    struct pay p = {.len = 0};
    add_prepare(&p, 9, 100, "r", 3, "w", "val");
    CHECK_EQ(p.buf[3], TXN_REPL_PREPARE);
    for (int i = 8; i < 16; i++)
        CHECK_EQ(p.buf[i], 0);
    static struct txn_msg m;
    const char *why = NULL;
    CHECK_EQ(txn_msg_decode(p.buf, p.len, &m, &why), 0);
    CHECK_EQ(m.txnid, 9);
    CHECK_EQ(m.ts, 100);
    CHECK_EQ(m.nreads, 1);
    CHECK_EQ(m.reads[0].ver, 3);
    CHECK_EQ(m.nwrites, 1);
    /* A type whose fields differ, or that the log never holds, is refused. */
    struct txn_msg get = {.type = TXN_GET, .txnid = 1, .ts = 1, .key = {B("k"), 1}};
    uint8_t buf[256];
    CHECK_EQ(lrec_encode(&get, TXN_REPL_COMMIT, buf, sizeof(buf)), 0);
    CHECK_EQ(lrec_encode(&get, TXN_GET, buf, sizeof(buf)), 0);
    struct txn_msg c = {.type = TXN_COMMIT, .txnid = 1, .ts = 1};
    CHECK_EQ(lrec_encode(&c, TXN_LOAD, buf, sizeof(buf)), 0);
    CHECK_EQ(lrec_encode(&c, TXN_REPL_COMMIT, buf, 10), 0); /* too small */
}

/* A log rebuilds the store: commits applied, aborts released, loads
 * stored, and a transaction with no decision left prepared, holding its
 * keys. Replaying the same entries again changes nothing. */
static void case_replay(void)
{
    struct pay p = {.len = 0};
    add_load(&p, "a", "a1", 10);
    add_prepare(&p, 1, 20, "a", 10, "b", "b20");
    add_prepare(&p, 2, 21, NULL, 0, "c", "c21");
    add_decide(&p, TXN_REPL_COMMIT, 1, 20);
    add_decide(&p, TXN_REPL_ABORT, 2, 0);
    add_prepare(&p, 3, 30, NULL, 0, "a", "a30"); /* never decided */
    add_load(&p, "d", "d5", 5);
    add_load(&p, "d", "d4", 4); /* older: last writer wins, no change */
    struct txs *s = mk(0);
    struct lrec_stats st;
    memset(&st, 0, sizeof(st));
    char msg[256] = "";
    for (int round = 0; round < 2; round++) {
        CHECK_EQ(apply(s, &p, &st, msg), 0);
        GET_IS(s, "a", 0, 10, "a1");
        GET_IS(s, "b", 0, 20, "b20");
        GET_IS(s, "c", ENOENT, 0, NULL);
        GET_IS(s, "d", 0, 5, "d5");
        struct txs_stats ts;
        txs_get_stats(s, &ts);
        CHECK_EQ(ts.prepared, 1);
        CHECK_EQ(ts.keys, 3);
        /* Txn 3 holds "a": a put there is refused. */
        CHECK_EQ(txs_put(s, B("a"), 1, B("x"), 1, 40, NULL), EBUSY);
    }
    /* The second time, txns 1 and 2 are remembered as decided: their
     * prepares and decisions find nothing to do (stale), and txn 3's
     * prepare is a repeat. */
    CHECK_EQ(st.prepares, 4);
    CHECK_EQ(st.commits, 1);
    CHECK_EQ(st.aborts, 1);
    CHECK_EQ(st.loads, 6);
    CHECK_EQ(st.stale, 4);
    /* Then the held transaction commits, as the primary later says. */
    CHECK_EQ(txs_commit(s, 3, 30), 0);
    GET_IS(s, "a", 0, 30, "a30");
    txs_destroy(s);
}

static void add_sync(struct pay *p, uint8_t type, const char *k, const char *v, uint64_t ts)
{
    struct txn_msg m = {.type = type, .reqid = 3, .ts = ts};
    if (k) {
        m.key = (struct txn_bytes){B(k), (uint32_t)strlen(k)};
        m.val = (struct txn_bytes){B(v), (uint32_t)strlen(v)};
    }
    add(p, &m, type);
}

/* A backup's state transfer, as it logs it: SYNC_BEGIN drops what it had
 * prepared, SYNC_ITEMs slot in versions (older than one already there
 * too), SYNC_PREPARED holds a transaction. Replaying twice changes
 * nothing. */
static void case_sync(void)
{
    struct pay p = {.len = 0};
    add_load(&p, "a", "a10", 10);
    add_prepare(&p, 1, 20, NULL, 0, "b", "b20"); /* decided while the backup was away */
    add_sync(&p, TXN_SYNC_BEGIN, NULL, NULL, 2);
    add_sync(&p, TXN_SYNC_ITEM, "a", "a5", 5); /* older than a's 10: slotted in */
    add_sync(&p, TXN_SYNC_ITEM, "a", "a10", 10);
    add_sync(&p, TXN_SYNC_ITEM, "c", "c7", 7);
    {
        static struct txn_msg m;
        memset(&m, 0, sizeof(m));
        m.type = TXN_SYNC_PREPARED;
        m.txnid = 2;
        m.ts = 30;
        m.nwrites = 1;
        m.writes[0].key = (struct txn_bytes){B("c"), 1};
        m.writes[0].val = (struct txn_bytes){B("c30"), 3};
        add(&p, &m, TXN_SYNC_PREPARED);
    }
    struct txs *s = mk(0);
    struct lrec_stats st;
    memset(&st, 0, sizeof(st));
    char msg[256] = "";
    for (int round = 0; round < 2; round++) {
        CHECK_EQ(apply(s, &p, &st, msg), 0);
        GET_IS(s, "a", 0, 10, "a10");
        GET_IS(s, "b", ENOENT, 0, NULL);
        GET_IS(s, "c", 0, 7, "c7");
        const uint8_t *v = NULL;
        size_t n = 0;
        uint64_t ver = 0;
        CHECK_EQ(txs_get(s, B("a"), 1, 6, &v, &n, &ver), 0);
        CHECK_EQ(ver, 5);
        struct txs_stats ts;
        txs_get_stats(s, &ts);
        CHECK_EQ(ts.prepared, 1);
    }
    CHECK_EQ(st.syncs, 2);
    CHECK_EQ(st.sync_items, 6);
    CHECK_EQ(txs_commit(s, 1, 20), ENOENT); /* dropped by SYNC_BEGIN */
    CHECK_EQ(txs_commit(s, 2, 30), 0);
    GET_IS(s, "c", 0, 30, "c30");
    txs_destroy(s);
}

/* A decision for a transaction the log does not have prepared (a log cut
 * by a repair) is counted, not an error. */
static void case_stale(void)
{
    struct pay p = {.len = 0};
    add_decide(&p, TXN_REPL_COMMIT, 8, 80);
    add_decide(&p, TXN_REPL_ABORT, 8, 0);
    struct txs *s = mk(0);
    struct lrec_stats st;
    memset(&st, 0, sizeof(st));
    char msg[256] = "";
    CHECK_EQ(apply(s, &p, &st, msg), 0);
    CHECK_EQ(st.stale, 2);
    txs_destroy(s);
}

static void bad_is(struct txs *s, const uint8_t *buf, size_t len, int want, const char *say, int line)
{
    struct lrec_stats st;
    memset(&st, 0, sizeof(st));
    char msg[256] = "";
    int e = lrec_apply(s, buf, len, 7, &st, msg, sizeof(msg));
    if (e != want || !strstr(msg, "record 7") || !strstr(msg, say)) {
        fprintf(stderr, "line %d: got %d '%s', wanted %d with '%s'\n", line, e, msg, want, say);
        exit(1);
    }
}
#define BAD_IS(s, buf, len, want, say) bad_is(s, buf, len, want, say, __LINE__)

static void case_malformed(void)
{
    struct pay p = {.len = 0};
    add_load(&p, "k", "v", 1);
    size_t one = p.len;
    add_load(&p, "k2", "v2", 2);
    char at_two[32];
    snprintf(at_two, sizeof(at_two), "byte %zu:", one);
    struct txs *s = mk(0);
    BAD_IS(s, p.buf, 0, EBADMSG, "empty");
    /* Cut anywhere inside the second entry, then inside the first. */
    for (size_t cut = 1; cut < p.len; cut++) {
        if (cut == one)
            continue;
        struct txs *t = mk(0);
        BAD_IS(t, p.buf, cut, EBADMSG, cut > one ? at_two : "byte 0:");
        txs_destroy(t);
    }
    /* Trailing garbage. */
    uint8_t buf[256];
    memcpy(buf, p.buf, one);
    memcpy(buf + one, "zzzzzzzzzzzzzzzzzzzz", 20);
    BAD_IS(s, buf, one + 20, EBADMSG, at_two);
    /* A type the log never holds: a GET. */
    struct txn_msg get = {.type = TXN_GET, .txnid = 1, .ts = 1, .key = {B("k"), 1}};
    size_t n = txn_msg_encode(&get, buf, sizeof(buf));
    CHECK(n > 0);
    BAD_IS(s, buf, n, EBADMSG, "GET");
    /* A request id. */
    memcpy(buf, p.buf, one);
    buf[8] = 1;
    BAD_IS(s, buf, one, EBADMSG, "request id");
    /* A commit at another timestamp than its prepare. */
    struct pay q = {.len = 0};
    add_prepare(&q, 4, 40, NULL, 0, "w", "v");
    add_decide(&q, TXN_REPL_COMMIT, 4, 41);
    BAD_IS(s, q.buf, q.len, EBADMSG, "txn 4 commits at 41");
    txs_destroy(s);
}

/* A store whose bounds are smaller than the log's content says which. */
static void case_bounds(void)
{
    struct pay p = {.len = 0};
    add_prepare(&p, 1, 10, NULL, 0, "a", "v");
    add_prepare(&p, 2, 10, NULL, 0, "b", "v");
    struct txs *s = mk(1);
    BAD_IS(s, p.buf, p.len, ENOSPC, "--max-prepared");
    txs_destroy(s);
    struct txs_limits lim = {.max_bytes = 64};
    s = txs_create(&lim);
    CHECK(s != NULL);
    struct pay q = {.len = 0};
    static char big[1000];
    memset(big, 'x', sizeof(big) - 1);
    add_load(&q, "big", big, 1);
    BAD_IS(s, q.buf, q.len, ENOMEM, "--max-memory");
    txs_destroy(s);
}

/* A compaction's snapshot (lrec_snap) into a payload. */
static int snap_add(void *arg, const struct txn_msg *m, uint8_t type)
{
    add(arg, m, type);
    return 0;
}

/* S and T hold as many keys, versions and prepared transactions, and keys
 * k0..k(NKEYS-1) read the same from both at every timestamp from 10 to
 * MAXTS. A version discarded before a snapshot is ESTALE in the store and
 * NOTFOUND after it: the snapshot keeps only what is kept. */
static void same_store(struct txs *s, struct txs *t, int nkeys, uint64_t maxts)
{
    struct txs_stats a, b;
    txs_get_stats(s, &a);
    txs_get_stats(t, &b);
    CHECK_EQ(a.keys, b.keys);
    CHECK_EQ(a.versions, b.versions);
    CHECK_EQ(a.prepared, b.prepared);
    char k[16];
    for (int key = 0; key < nkeys; key++) {
        snprintf(k, sizeof(k), "k%d", key);
        for (uint64_t ts = 10; ts <= maxts; ts++) {
            const uint8_t *va = NULL, *vb = NULL;
            size_t la = 0, lb = 0;
            uint64_t xa = 0, xb = 0;
            int ea = txs_get(s, B(k), strlen(k), ts, &va, &la, &xa);
            int eb = txs_get(t, B(k), strlen(k), ts, &vb, &lb, &xb);
            CHECK(ea == eb || (ea == ESTALE && eb == ENOENT));
            if (ea == 0) {
                CHECK_EQ(xa, xb);
                CHECK(la == lb && memcmp(va, vb, la) == 0);
            }
        }
    }
}

/* The whole snapshot, a few buckets a step. */
static int snapshot(struct txs *s, uint64_t view, bool incomplete, struct pay *p)
{
    struct lrec_snap sn;
    lrec_snap_start(&sn, view, incomplete);
    bool done = false;
    while (!done) {
        int e = lrec_snap_step(&sn, s, 4, snap_add, p, &done);
        if (e)
            return e;
    }
    return 0;
}

static void case_snapshot(void)
{
    struct txs_limits lim = {.max_versions = 3};
    struct txs *s = txs_create(&lim);
    CHECK(s != NULL);
    char k[16], v[16];
    for (int key = 0; key < 20; key++) {
        for (int ver = 1; ver <= 1 + key % 5; ver++) { /* up to 5 versions, 3 kept */
            snprintf(k, sizeof(k), "k%d", key);
            snprintf(v, sizeof(v), "v%d.%d", key, ver);
            CHECK_EQ(txs_put(s, B(k), strlen(k), B(v), strlen(v), (uint64_t)ver * 10, NULL), 0);
        }
    }
    CHECK_EQ(txs_put(s, B("empty"), 5, B(""), 0, 3, NULL), 0);
    struct pay p0 = {.len = 0};
    add_prepare(&p0, 50, 500, "k1", 10, "k2", "held"); /* held, never decided */
    add_prepare(&p0, 51, 500, NULL, 0, "new", "");
    struct lrec_stats st;
    memset(&st, 0, sizeof(st));
    char msg[256] = "";
    CHECK_EQ(apply(s, &p0, &st, msg), 0);

    static struct pay p;
    p.len = 0;
    CHECK_EQ(snapshot(s, 0, false, &p), 0);
    CHECK_EQ(p.buf[3], TXN_VIEW_START); /* view 0 too */
    struct txs *t = txs_create(&lim);
    CHECK(t != NULL);
    CHECK_EQ(apply(t, &p, &st, msg), 0);
    same_store(s, t, 20, 50);
    GET_IS(t, "empty", 0, 3, "");
    /* The prepared transactions hold their keys, and commit. */
    CHECK_EQ(txs_put(t, B("k2"), 2, B("x"), 1, 1000, NULL), EBUSY);
    CHECK_EQ(txs_commit(t, 50, 500), 0);
    GET_IS(t, "k2", 0, 500, "held");
    CHECK_EQ(txs_commit(t, 51, 500), 0);
    GET_IS(t, "new", 0, 500, "");
    txs_destroy(s);
    txs_destroy(t);
}

static void add_decided(struct pay *p, uint64_t txnid, uint64_t ts)
{
    struct txn_msg m = {.type = TXN_SYNC_DECIDED, .txnid = txnid, .ts = ts};
    add(p, &m, TXN_SYNC_DECIDED);
}

static void add_view(struct pay *p, uint64_t view)
{
    struct txn_msg m = {.type = TXN_VIEW_START, .txnid = view, .ts = 12345};
    add(p, &m, TXN_VIEW_START);
}

static void decided_is(const struct txs *s, uint64_t id, int rc, uint64_t ts, int line)
{
    uint64_t got = 99;
    int r = txs_decided(s, id, &got);
    if (r != rc || (rc == 0 && got != ts)) {
        fprintf(stderr, "line %d: decided %llu: %d ts %llu, wanted %d ts %llu\n", line, (unsigned long long)id, r,
                (unsigned long long)got, rc, (unsigned long long)ts);
        exit(1);
    }
}
#define DECIDED_IS(s, id, rc, ts) decided_is(s, id, rc, ts, __LINE__)

/* SYNC_DECIDED commits or aborts a transaction prepared by an earlier
 * entry, or is only remembered; a prepare of a decided transaction is
 * stale; VIEW_START changes nothing but is reported. Twice gives the same
 * store. */
static void case_decided_view(void)
{
    struct pay p = {.len = 0};
    add_view(&p, 3);
    add_prepare(&p, 1, 10, NULL, 0, "a", "a10");
    add_prepare(&p, 2, 11, NULL, 0, "b", "b11");
    add_decided(&p, 1, 10); /* commits it */
    add_decided(&p, 2, 0);  /* aborts it */
    add_decided(&p, 3, 30); /* not prepared here: remembered */
    add_decided(&p, 4, 0);
    add_prepare(&p, 3, 30, NULL, 0, "c", "c30"); /* late: stale */
    add_view(&p, 5);
    add_view(&p, 4);
    struct txs *s = mk(0);
    struct lrec_stats st;
    char msg[256] = "";
    for (int round = 0; round < 2; round++) {
        memset(&st, 0, sizeof(st));
        CHECK_EQ(apply(s, &p, &st, msg), 0);
        GET_IS(s, "a", 0, 10, "a10");
        GET_IS(s, "b", ENOENT, 0, NULL);
        GET_IS(s, "c", ENOENT, 0, NULL);
        DECIDED_IS(s, 1, 0, 10);
        DECIDED_IS(s, 2, 0, 0);
        DECIDED_IS(s, 3, 0, 30);
        DECIDED_IS(s, 4, 0, 0);
        struct txs_stats ts;
        txs_get_stats(s, &ts);
        CHECK_EQ(ts.prepared, 0);
        CHECK_EQ(ts.keys, 1);
        CHECK_EQ(ts.decided, 4);
        CHECK_EQ(st.view, 5);
        CHECK_EQ(st.views, 3);
        CHECK_EQ(st.decided, 4); /* the second time each is EEXIST */
        /* The first time: two prepares, the late one stale; the second,
         * all three stale. */
        CHECK_EQ(st.prepares, round ? 0 : 2);
        CHECK_EQ(st.stale, round ? 3 : 1);
    }
    txs_destroy(s);
}

/* A decision other than the store's is a bad log. */
static void case_decided_contradicts(void)
{
    struct pay p = {.len = 0};
    add_decided(&p, 1, 10);
    struct txs *s = mk(0);
    struct lrec_stats st;
    memset(&st, 0, sizeof(st));
    char msg[256] = "";
    CHECK_EQ(apply(s, &p, &st, msg), 0);
    struct pay q = {.len = 0};
    add_decided(&q, 1, 0);
    BAD_IS(s, q.buf, q.len, EBADMSG, "remembers another decision");
    q.len = 0;
    add_decided(&q, 1, 11);
    BAD_IS(s, q.buf, q.len, EBADMSG, "txn 1");
    q.len = 0;
    add_prepare(&q, 2, 20, NULL, 0, "w", "v");
    size_t one = q.len;
    add_decided(&q, 2, 21);
    char at[32];
    snprintf(at, sizeof(at), "byte %zu:", one);
    BAD_IS(s, q.buf, q.len, EBADMSG, "prepared at another timestamp");
    BAD_IS(s, q.buf, q.len, EBADMSG, at);
    DECIDED_IS(s, 2, ENOENT, 0); /* still prepared */
    CHECK_EQ(txs_commit(s, 2, 20), 0);
    q.len = 0;
    add_decided(&q, 0, 5);
    BAD_IS(s, q.buf, q.len, EBADMSG, "txn 0");
    DECIDED_IS(s, 1, 0, 10);
    txs_destroy(s);
}

/* A new primary's merge, logged without a SYNC_BEGIN: its own prepared
 * transactions stay, the other replica's decisions settle them, its
 * prepared transactions and versions come in. Replayed into a fresh store
 * (the log from the start) and into the store it built, the same. */
static void case_merge_without_begin(void)
{
    struct pay p = {.len = 0};
    add_load(&p, "x", "x1", 1);
    add_prepare(&p, 7, 70, NULL, 0, "p", "p70"); /* held here; decided there */
    add_prepare(&p, 8, 80, NULL, 0, "q", "q80"); /* held here; undecided there */
    add_decided(&p, 7, 70);
    add_decided(&p, 6, 0);
    {
        static struct txn_msg m;
        memset(&m, 0, sizeof(m));
        m.type = TXN_SYNC_PREPARED;
        m.txnid = 9;
        m.ts = 90;
        m.nwrites = 1;
        m.writes[0].key = (struct txn_bytes){B("r"), 1};
        m.writes[0].val = (struct txn_bytes){B("r90"), 3};
        add(&p, &m, TXN_SYNC_PREPARED);
        m.txnid = 6; /* decided here: skipped */
        add(&p, &m, TXN_SYNC_PREPARED);
    }
    add_sync(&p, TXN_SYNC_ITEM, "x", "x5", 5);
    add_sync(&p, TXN_SYNC_ITEM, "p", "p70", 70); /* the commit's version, also sent */
    for (int round = 0; round < 2; round++) {
        struct txs *s = mk(0);
        struct lrec_stats st;
        memset(&st, 0, sizeof(st));
        char msg[256] = "";
        for (int again = 0; again <= round; again++)
            CHECK_EQ(apply(s, &p, &st, msg), 0);
        GET_IS(s, "x", 0, 5, "x5");
        GET_IS(s, "p", 0, 70, "p70");
        DECIDED_IS(s, 7, 0, 70);
        DECIDED_IS(s, 6, 0, 0);
        struct txs_stats ts;
        txs_get_stats(s, &ts);
        CHECK_EQ(ts.prepared, 2); /* 8 (its own) and 9 (merged) */
        CHECK_EQ(txs_put(s, B("q"), 1, B("z"), 1, 100, NULL), EBUSY);
        CHECK_EQ(txs_put(s, B("r"), 1, B("z"), 1, 100, NULL), EBUSY);
        CHECK_EQ(txs_commit(s, 8, 80), 0);
        CHECK_EQ(txs_commit(s, 9, 90), 0);
        CHECK_EQ(st.syncs, 0);
        txs_destroy(s);
    }
}

struct dlist {
    uint64_t id[64], ts[64];
    size_t n;
};

static void on_decided(void *arg, uint64_t txnid, uint64_t ts)
{
    struct dlist *d = arg;
    CHECK(d->n < 64);
    d->id[d->n] = txnid;
    d->ts[d->n] = ts;
    d->n++;
}

static void decided_list(const struct txs *s, struct dlist *d)
{
    uint64_t cur = 0;
    d->n = 0;
    while (cur != TXS_SCAN_END)
        txs_scan_decided(s, &cur, SIZE_MAX, on_decided, d);
}

/* A snapshot with a view and decisions (some forgotten already) replays
 * to the same store, the same decisions in the same order, and the view. */
static void case_snapshot_decided(void)
{
    struct txs_limits lim = {.max_decided = 8};
    struct txs *s = txs_create(&lim);
    CHECK(s != NULL);
    struct pay p0 = {.len = 0};
    for (uint64_t id = 1; id <= 12; id++) {
        char k[8];
        snprintf(k, sizeof(k), "k%llu", (unsigned long long)id);
        add_prepare(&p0, id, 100 + id, NULL, 0, k, "v");
        if (id % 3)
            add_decide(&p0, id % 3 == 1 ? TXN_REPL_COMMIT : TXN_REPL_ABORT, id, 100 + id);
    }
    add_decided(&p0, 50, 500);
    struct lrec_stats st;
    memset(&st, 0, sizeof(st));
    char msg[256] = "";
    CHECK_EQ(apply(s, &p0, &st, msg), 0);
    static struct pay p;
    p.len = 0;
    CHECK_EQ(snapshot(s, 9, false, &p), 0);
    CHECK_EQ(p.buf[3], TXN_VIEW_START);
    struct txs *t = txs_create(&lim);
    CHECK(t != NULL);
    memset(&st, 0, sizeof(st));
    CHECK_EQ(apply(t, &p, &st, msg), 0);
    CHECK_EQ(st.view, 9);
    CHECK_EQ(st.views, 1);
    CHECK_EQ(st.decided, 8);
    CHECK_EQ(st.stale, 0);
    static struct dlist da, db;
    decided_list(s, &da);
    decided_list(t, &db);
    CHECK_EQ(da.n, 8);
    CHECK_EQ(db.n, 8);
    for (size_t i = 0; i < da.n; i++) {
        CHECK_EQ(da.id[i], db.id[i]);
        CHECK_EQ(da.ts[i], db.ts[i]);
    }
    CHECK_EQ(da.id[7], 50);
    same_store(s, t, 0, 0);
    struct txs_stats a;
    txs_get_stats(s, &a);
    CHECK_EQ(a.prepared, 4); /* 3, 6, 9, 12 */
    GET_IS(t, "k10", 0, 110, "v");
    GET_IS(t, "k11", ENOENT, 0, NULL);
    CHECK_EQ(txs_commit(t, 12, 112), 0);
    GET_IS(t, "k12", 0, 112, "v");
    txs_destroy(s);
    txs_destroy(t);
}

/* Whether the store is complete rides in the log: a SYNC_BEGIN with no
 * SYNC_END after it (a transfer the replica died in, or a rejoin's bare
 * marker) leaves lrec_stats.incomplete set, a SYNC_END clears it, and a
 * snapshot of a store that is not complete replays as not complete, its
 * prepared transactions kept (the marker comes before them). */
static void case_complete(void)
{
    struct txn_msg end = {.type = TXN_SYNC_END, .txnid = 1, .ts = 3};
    struct txs *s = mk(0);
    struct lrec_stats st;
    char msg[256] = "";
    /* Loads and a prepare only: complete. */
    struct pay p = {.len = 0};
    add_load(&p, "a", "a10", 10);
    add_prepare(&p, 1, 20, NULL, 0, "b", "b20");
    memset(&st, 0, sizeof(st));
    CHECK_EQ(apply(s, &p, &st, msg), 0);
    CHECK(!st.incomplete);
    /* A transfer that began and was never ended (the replica died in it). */
    p.len = 0;
    add_sync(&p, TXN_SYNC_BEGIN, NULL, NULL, 2);
    add_sync(&p, TXN_SYNC_ITEM, "c", "c7", 7);
    CHECK_EQ(apply(s, &p, &st, msg), 0);
    CHECK(st.incomplete);
    /* Its end (the primary's SYNC_END frame, or a bare one). */
    p.len = 0;
    add(&p, &end, TXN_SYNC_END);
    CHECK_EQ(apply(s, &p, &st, msg), 0);
    CHECK(!st.incomplete);
    GET_IS(s, "c", 0, 7, "c7");
    /* A bare SYNC_BEGIN (a rejoin, a stale store), then a prepare made
     * while not complete: still not complete. */
    p.len = 0;
    struct txn_msg begin = {.type = TXN_SYNC_BEGIN};
    add(&p, &begin, TXN_SYNC_BEGIN);
    add_prepare(&p, 4, 40, NULL, 0, "d", "d40");
    CHECK_EQ(apply(s, &p, &st, msg), 0);
    CHECK(st.incomplete);
    CHECK_EQ(st.syncs, 2);
    /* The snapshot of a store not complete: VIEW_START, the marker, then
     * the rest; replayed, it is not complete and holds the same prepare. */
    static struct pay snap;
    snap.len = 0;
    CHECK_EQ(snapshot(s, 4, true, &snap), 0);
    CHECK_EQ(snap.buf[3], TXN_VIEW_START);
    struct txs *t = mk(0);
    struct lrec_stats st2;
    memset(&st2, 0, sizeof(st2));
    CHECK_EQ(apply(t, &snap, &st2, msg), 0);
    CHECK(st2.incomplete);
    CHECK_EQ(st2.view, 4);
    struct txs_stats a, b;
    txs_get_stats(s, &a);
    txs_get_stats(t, &b);
    CHECK_EQ(b.prepared, 1);
    CHECK_EQ(a.prepared, b.prepared);
    CHECK_EQ(a.versions, b.versions);
    CHECK_EQ(txs_commit(t, 4, 40), 0);
    /* And the same store's snapshot as complete has no marker. */
    snap.len = 0;
    CHECK_EQ(snapshot(s, 4, false, &snap), 0);
    memset(&st2, 0, sizeof(st2));
    txs_destroy(t);
    t = mk(0);
    CHECK_EQ(apply(t, &snap, &st2, msg), 0);
    CHECK(!st2.incomplete);
    CHECK_EQ(st2.syncs, 0);
    txs_destroy(s);
    txs_destroy(t);
}

/* A change made while a compaction's snapshot is being taken: applied to
 * the live store S and logged after the entries emitted so far (P), as
 * txl_append does. */
static void change(struct txs *s, struct pay *p, const struct pay *c)
{
    struct lrec_stats st;
    memset(&st, 0, sizeof(st));
    char msg[256] = "";
    CHECK_EQ(apply(s, c, &st, msg), 0);
    CHECK(p->len + c->len <= sizeof(p->buf));
    memcpy(p->buf + p->len, c->buf, c->len);
    p->len += c->len;
}

/* The snapshot taken one bucket a step from a live store while changes go
 * on between steps (commits and aborts of transactions the scan has or
 * has not reached, new prepares, new versions of keys before and after
 * the key scan's position): replayed into an empty store with the changes
 * where they were logged, it is the live store: the same versions, the
 * same prepared transactions, and every decision remembered. */
static void case_snapshot_live(void)
{
    struct txs_limits lim = {.max_versions = 4, .max_decided = 256};
    struct txs *s = txs_create(&lim);
    CHECK(s != NULL);
    char k[16], v[16];
    for (int key = 0; key < 40; key++) {
        snprintf(k, sizeof(k), "k%d", key);
        snprintf(v, sizeof(v), "v%d", key);
        CHECK_EQ(txs_put(s, B(k), strlen(k), B(v), strlen(v), 10, NULL), 0);
    }
    struct lrec_stats st;
    memset(&st, 0, sizeof(st));
    char msg[256] = "";
    struct pay c = {.len = 0};
    for (uint64_t id = 1; id <= 12; id++) { /* prepared on p0..p11 */
        snprintf(k, sizeof(k), "p%llu", (unsigned long long)id);
        add_prepare(&c, id, 100 + id, NULL, 0, k, "pv");
    }
    CHECK_EQ(apply(s, &c, &st, msg), 0);
    static struct pay p;
    p.len = 0;
    struct lrec_snap sn;
    lrec_snap_start(&sn, 2, false);
    bool done = false;
    int step = 0;
    uint64_t next_id = 100;
    while (!done) {
        CHECK_EQ(lrec_snap_step(&sn, s, 1, snap_add, &p, &done), 0);
        step++;
        c.len = 0;
        uint64_t id = (uint64_t)(step % 12) + 1;
        /* Decide a prepared transaction (once): committed or aborted. */
        if (step <= 12)
            add_decide(&c, id % 2 ? TXN_REPL_COMMIT : TXN_REPL_ABORT, id, 100 + id);
        /* A new transaction prepared, and one of the old keys written. */
        snprintf(k, sizeof(k), "n%d", step);
        add_prepare(&c, next_id, 1000 + next_id, NULL, 0, k, "nv");
        if (step % 3 == 0)
            add_decide(&c, TXN_REPL_COMMIT, next_id, 1000 + next_id);
        next_id++;
        snprintf(k, sizeof(k), "k%d", (step * 7) % 40);
        snprintf(v, sizeof(v), "w%d", step);
        add_load(&c, k, v, 20 + (uint64_t)step);
        change(s, &p, &c);
        CHECK(step < 10000);
    }
    CHECK(step > 12); /* the changes came at every stage of the scan */
    struct txs *t = txs_create(&lim);
    CHECK(t != NULL);
    memset(&st, 0, sizeof(st));
    CHECK_EQ(apply(t, &p, &st, msg), 0);
    CHECK_EQ(st.view, 2);
    CHECK(!st.incomplete);
    same_store(s, t, 40, 20 + (uint64_t)step);
    /* Every decision the live store remembers, the replayed one does. */
    static struct dlist da;
    decided_list(s, &da);
    for (size_t i = 0; i < da.n; i++) {
        uint64_t ts = 1;
        CHECK_EQ(txs_decided(t, da.id[i], &ts), 0);
        CHECK_EQ(ts, da.ts[i]);
    }
    txs_destroy(s);
    txs_destroy(t);
}

static void run_case(const struct tcase *tc)
{
    tc->run();
    if (__lsan_do_recoverable_leak_check && __lsan_do_recoverable_leak_check() != 0) {
        fprintf(stderr, "%s: leaks\n", tc->name);
        exit(1);
    }
}

static const struct tcase cases[] = {
    {"encode", case_encode, 0},
    {"replay", case_replay, 0},
    {"stale", case_stale, 0},
    {"malformed", case_malformed, 0},
    {"bounds", case_bounds, 0},
    {"snapshot", case_snapshot, 0},
    {"sync", case_sync, 0},
    {"decided_view", case_decided_view, 0},
    {"decided_contradicts", case_decided_contradicts, 0},
    {"merge_without_begin", case_merge_without_begin, 0},
    {"snapshot_decided", case_snapshot_decided, 0},
    {"complete", case_complete, 0},
    {"snapshot_live", case_snapshot_live, 0},
};

int main(int argc, char **argv)
{
    return tcase_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]), "txn logrec", run_case);
}
