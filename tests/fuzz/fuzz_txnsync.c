/*
 * libFuzzer target for the receiving end of TxnStore's state transfer
 * (apps/txn/sync.c's txsync_in_apply on store.c), built with clang
 * -fsanitize=fuzzer,address,undefined (see CMakeLists.txt) and run by
 * tests/fuzz/test_fuzz_txnsync.sh. Any replica peer reaches this code by
 * sending frames (a backup's primary, or during a view change any replica
 * whose store the new primary merges), so whatever frames come, in
 * whatever order, it must neither crash nor leak nor leave the store
 * inconsistent.
 *
 * An input is two header bytes then a run of msg.h frames (fuzz_txnmsg
 * fuzzes their decoder; the first malformed one ends the run):
 *   byte 0: bit 0 merge mode (sync.h's txsync_in.merge); bits 1-4 small
 *           bounds, one each: 2 versions per key (else 8), 3 prepared
 *           transactions (else 256: more than the table's first 64
 *           buckets), 3 remembered decisions (else 64), 8 KiB of store
 *           (else 1 MiB);
 *   byte 1: what the store holds before the first frame: bits 0-2 that
 *           many versions (key "k<i>", version i + 1), bits 3-5 that many
 *           prepared transactions (txnid i + 1, timestamp 100 + i, reading
 *           "r", writing "p<i>" = "own"), bits 6-7 that many decisions
 *           (txnid 50 + i, committed at 200 + i when i is even, aborted
 *           otherwise).
 * Every frame that decodes goes to txsync_in_apply, whatever its type. It
 * checks that:
 *   - a frame that is not a SYNC_* type, or a SYNC_* frame other than
 *     SYNC_BEGIN outside a sync, is refused, and SYNC_BEGIN never is;
 *   - a refusal comes with a reason (a non-empty string that does not
 *     point into the input), and leaves the store's keys, versions,
 *     prepared transactions, bytes and decisions as they were; after one
 *     the run stops, as the replica closes the connection;
 *   - after every frame the store keeps its bounds and its books: the
 *     scans find as many versions, prepared transactions and decisions as
 *     its stats say, no key keeps more than max_versions versions (oldest
 *     first, strictly increasing), no prepared transaction is remembered
 *     as decided, and bytes, prepared and decided stay within their
 *     limits;
 *   - an accepted frame did what it says: SYNC_BEGIN drops the store's
 *     prepared transactions unless merging; SYNC_ITEM leaves its version
 *     readable (or, older than every kept one, ESTALE); SYNC_DECIDED
 *     leaves the decision remembered and the transaction not prepared;
 *     SYNC_PREPARED leaves the transaction prepared, or (skipped) not
 *     prepared and remembered as decided; SYNC_END leaves `synced` set,
 *     the sync over and the counts equal to the frames taken;
 *   - when merging, every transaction prepared before SYNC_BEGIN that no
 *     accepted SYNC_DECIDED decided is still prepared, at the same
 *     timestamp, after every frame;
 *   - at the end, the store's keys, versions, prepared transactions and
 *     bytes are those of a store rebuilt from its scans (no key entry
 *     that nothing keeps, no byte counted twice or never given back), and
 *     again once its prepared transactions are dropped;
 *   - the store frees everything it took (LeakSanitizer, at exit of each
 *     run).
 * An oracle failure prints "fuzz_txnsync: ..." and aborts: this is a test.
 */
#include "sync.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OWN_MAX 8 /* prepared transactions byte 1 can ask for */

static void fail(const char *what, uint64_t a, uint64_t b)
{
    fprintf(stderr, "fuzz_txnsync: %s (%llu, %llu)\n", what, (unsigned long long)a, (unsigned long long)b);
    abort();
}

/* What the checks after a frame collect from the store's scans. */
struct census {
    uint64_t versions, keys, prepared, decided;
    const uint8_t *key; /* the key the last version visited belongs to */
    size_t klen;
    uint64_t last_ts, run; /* its last version, and how many so far */
    uint32_t max_versions;
    const struct txs *s;
    uint64_t own_txnid[OWN_MAX], own_ts[OWN_MAX]; /* merge: those to find prepared */
    bool own_found[OWN_MAX];
    uint32_t nown;
};

static void census_version(void *arg, const uint8_t *key, size_t klen, uint64_t ts, const uint8_t *val, size_t vlen)
{
    struct census *c = arg;
    (void)val;
    (void)vlen;
    /* The scan hands a key's versions one after another, oldest first;
     * the key's bytes stay put while the store does not change. */
    if (c->key == key && c->klen == klen) {
        if (ts <= c->last_ts)
            fail("a key's versions not strictly increasing", c->last_ts, ts);
        c->run++;
    } else {
        c->key = key;
        c->klen = klen;
        c->run = 1;
        c->keys++;
    }
    if (ts == 0)
        fail("a version 0 kept", c->keys, 0);
    if (c->run > c->max_versions)
        fail("a key keeps more versions than max_versions", c->run, c->max_versions);
    c->last_ts = ts;
    c->versions++;
}

static void census_prepared(void *arg, uint64_t txnid, uint64_t ts, const struct txn_op *reads, uint32_t nreads,
                            const struct txn_op *writes, uint32_t nwrites)
{
    struct census *c = arg;
    (void)reads;
    (void)writes;
    if (txnid == 0 || ts == 0 || nreads > TXN_SET_MAX || nwrites > TXN_SET_MAX)
        fail("a prepared transaction the store should have refused", txnid, ts);
    if (txs_decided(c->s, txnid, NULL) == 0)
        fail("a transaction both prepared and remembered as decided", txnid, ts);
    for (uint32_t i = 0; i < c->nown; i++) {
        if (c->own_txnid[i] != txnid)
            continue;
        if (c->own_ts[i] != ts)
            fail("a merge changed the timestamp of a prepared transaction", ts, c->own_ts[i]);
        c->own_found[i] = true;
    }
    c->prepared++;
}

static void census_decided(void *arg, uint64_t txnid, uint64_t ts)
{
    struct census *c = arg;
    uint64_t t;
    if (txs_decided(c->s, txnid, &t) != 0 || t != ts)
        fail("a decision the scan visits that txs_decided does not know", txnid, ts);
    c->decided++;
}

/* The store's bounds and books; in merge mode, its own prepared
 * transactions not decided since (C's own_* arrays). */
static void check_store(const struct txs *s, const struct txs_limits *lim, struct census *c)
{
    struct txs_stats st;
    txs_get_stats(s, &st);
    if (st.prepared > lim->max_prepared)
        fail("more prepared transactions than max_prepared", st.prepared, lim->max_prepared);
    if (st.decided > lim->max_decided)
        fail("more decisions remembered than max_decided", st.decided, lim->max_decided);
    if (st.bytes > lim->max_bytes)
        fail("more bytes held than max_bytes", st.bytes, lim->max_bytes);
    c->versions = c->keys = c->prepared = c->decided = 0;
    c->key = NULL;
    c->klen = 0;
    c->last_ts = c->run = 0;
    c->max_versions = lim->max_versions;
    c->s = s;
    memset(c->own_found, 0, sizeof(c->own_found));
    uint64_t cur = 0;
    txs_scan_keys(s, &cur, SIZE_MAX, census_version, c);
    cur = 0;
    txs_scan_prepared(s, &cur, SIZE_MAX, census_prepared, c);
    cur = 0;
    txs_scan_decided(s, &cur, SIZE_MAX, census_decided, c);
    if (c->versions != st.versions)
        fail("versions scanned differ from the stats", c->versions, st.versions);
    if (c->keys > st.keys)
        fail("more keys with versions than keys", c->keys, st.keys);
    if (c->prepared != st.prepared)
        fail("prepared transactions scanned differ from the stats", c->prepared, st.prepared);
    if (c->decided != st.decided)
        fail("decisions scanned differ from the stats", c->decided, st.decided);
    for (uint32_t i = 0; i < c->nown; i++)
        if (!c->own_found[i])
            fail("a merge lost a prepared transaction no decision settled", c->own_txnid[i], c->own_ts[i]);
}

/* Fills S as byte 1 says; in merge mode, notes the prepared transactions
 * in C. */
static void populate(struct txs *s, uint8_t b, bool merge, struct census *c)
{
    static const uint8_t own[] = "own";
    uint8_t key[8];
    for (unsigned i = 0; i < (b & 7u); i++) {
        int n = snprintf((char *)key, sizeof(key), "k%u", i);
        txs_put(s, key, (size_t)n, (const uint8_t *)"v", 1, i + 1, NULL);
    }
    for (unsigned i = 0; i < (b >> 6 & 3u); i++) {
        /* A decision taken here: prepared, then committed or aborted. */
        struct txn_op w = {.key = {(const uint8_t *)"d", 1}, .val = {own, 3}};
        uint64_t txnid = 50 + i, ts = 200 + i;
        if (txs_prepare(s, txnid, ts, NULL, 0, &w, 1, true, NULL, NULL) != 0)
            continue;
        if ((i % 2 ? txs_abort(s, txnid) : txs_commit(s, txnid, ts)) != 0)
            fail("a prepared transaction that would not be decided", txnid, ts);
    }
    c->nown = 0;
    for (unsigned i = 0; i < (b >> 3 & 7u); i++) {
        int n = snprintf((char *)key, sizeof(key), "p%u", i);
        struct txn_op r = {.key = {(const uint8_t *)"r", 1}};
        struct txn_op w = {.key = {key, (uint32_t)n}, .val = {own, 3}};
        uint64_t txnid = i + 1, ts = 100 + i;
        /* Refused past a small bound: it just holds fewer. */
        if (txs_prepare(s, txnid, ts, &r, 1, &w, 1, false, NULL, NULL) == 0 && merge) {
            c->own_txnid[c->nown] = txnid;
            c->own_ts[c->nown] = ts;
            c->nown++;
        }
    }
}

/* An accepted SYNC_DECIDED of one of the merging store's own: it need not
 * stay prepared. */
static void own_decided(struct census *c, uint64_t txnid)
{
    for (uint32_t i = 0; i < c->nown; i++) {
        if (c->own_txnid[i] != txnid)
            continue;
        c->own_txnid[i] = c->own_txnid[c->nown - 1];
        c->own_ts[i] = c->own_ts[c->nown - 1];
        c->nown--;
        return;
    }
}

struct find_txn {
    uint64_t txnid, ts;
    bool found;
};

static void find_prepared(void *arg, uint64_t txnid, uint64_t ts, const struct txn_op *reads, uint32_t nreads,
                          const struct txn_op *writes, uint32_t nwrites)
{
    struct find_txn *f = arg;
    (void)reads;
    (void)nreads;
    (void)writes;
    (void)nwrites;
    if (txnid == f->txnid) {
        f->found = true;
        f->ts = ts;
    }
}

static bool is_prepared(const struct txs *s, uint64_t txnid, uint64_t *ts)
{
    struct find_txn f = {.txnid = txnid};
    uint64_t cur = 0;
    txs_scan_prepared(s, &cur, SIZE_MAX, find_prepared, &f);
    if (ts)
        *ts = f.ts;
    return f.found;
}

/* What an accepted frame M must have done (IN's counters as they were
 * before it in *OLD). */
static void check_accepted(const struct txs *s, const struct txsync_in *in, const struct txsync_in *old,
                           const struct txn_msg *m)
{
    struct txs_stats st;
    uint64_t ts;
    txs_get_stats(s, &st);
    switch (m->type) {
    case TXN_SYNC_BEGIN:
        if (!in->active || in->synced || in->items || in->prepared || in->skipped || in->decided)
            fail("SYNC_BEGIN did not start a sync from scratch", in->active, in->synced);
        if (!in->merge && st.prepared)
            fail("a backup's SYNC_BEGIN kept prepared transactions", st.prepared, 0);
        break;
    case TXN_SYNC_ITEM: {
        const uint8_t *val;
        size_t vlen;
        uint64_t ver;
        int e = txs_get((struct txs *)s, m->key.p, m->key.n, m->ts, &val, &vlen, &ver);
        if (e != ESTALE && (e != 0 || ver != m->ts))
            fail("a SYNC_ITEM accepted and not readable at its version", (uint64_t)e, ver);
        if (in->items != old->items + 1)
            fail("a SYNC_ITEM not counted", in->items, old->items);
        break;
    }
    case TXN_SYNC_DECIDED:
        /* Just remembered, so not yet forgotten (max_decided >= 1). */
        if (txs_decided(s, m->txnid, &ts) != 0 || ts != m->ts)
            fail("a SYNC_DECIDED accepted and not remembered", m->txnid, m->ts);
        if (is_prepared(s, m->txnid, NULL))
            fail("a SYNC_DECIDED accepted and the transaction still prepared", m->txnid, m->ts);
        if (in->decided != old->decided + 1)
            fail("a SYNC_DECIDED not counted", in->decided, old->decided);
        break;
    case TXN_SYNC_PREPARED:
        if (in->skipped != old->skipped) {
            if (in->skipped != old->skipped + 1 || in->prepared != old->prepared)
                fail("a skipped SYNC_PREPARED counted wrong", in->skipped, in->prepared);
            if (txs_decided(s, m->txnid, NULL) != 0 || is_prepared(s, m->txnid, NULL))
                fail("a SYNC_PREPARED skipped of a transaction not decided here", m->txnid, m->ts);
        } else {
            if (in->prepared != old->prepared + 1)
                fail("a SYNC_PREPARED not counted", in->prepared, old->prepared);
            if (!is_prepared(s, m->txnid, &ts) || ts != m->ts)
                fail("a SYNC_PREPARED accepted and not prepared at its timestamp", m->txnid, m->ts);
        }
        break;
    case TXN_SYNC_END:
        if (!in->synced || in->active)
            fail("a SYNC_END accepted and the sync not over", in->synced, in->active);
        if (m->txnid != in->prepared + in->skipped + in->decided || m->ts != in->items)
            fail("a SYNC_END accepted with counts that do not match", m->txnid, m->ts);
        break;
    default:
        fail("a frame accepted that is not a sync message", m->type, 0);
    }
}

/* Rebuilding a store from what its scans show: its versions installed,
 * its prepared transactions prepared again (forced). */
static void copy_version(void *arg, const uint8_t *key, size_t klen, uint64_t ts, const uint8_t *val, size_t vlen)
{
    int e = txs_install(arg, key, klen, val, vlen, ts);
    if (e)
        fail("a kept version a fresh store refuses", (uint64_t)e, ts);
}

static void copy_prepared(void *arg, uint64_t txnid, uint64_t ts, const struct txn_op *reads, uint32_t nreads,
                          const struct txn_op *writes, uint32_t nwrites)
{
    int e = txs_prepare(arg, txnid, ts, reads, nreads, writes, nwrites, true, NULL, NULL);
    if (e)
        fail("a prepared transaction a fresh store refuses", (uint64_t)e, txnid);
}

/* S's books against a store rebuilt from its scans: as many keys (none
 * left behind that nothing keeps), versions, prepared transactions and
 * bytes; then, its prepared transactions dropped, against the rebuilt
 * versions alone. Ends with S's prepared transactions aborted. */
static void check_rebuild(struct txs *s, const struct txs_limits *lim)
{
    struct txs_limits big = {
        .max_versions = lim->max_versions, .max_prepared = UINT32_MAX, .max_bytes = UINT64_MAX / 2, .max_decided = 1};
    struct txs *v = txs_create(&big), *p = txs_create(&big);
    if (!v || !p)
        abort();
    uint64_t cur = 0;
    txs_scan_keys(s, &cur, SIZE_MAX, copy_version, v);
    cur = 0;
    txs_scan_keys(s, &cur, SIZE_MAX, copy_version, p);
    cur = 0;
    txs_scan_prepared(s, &cur, SIZE_MAX, copy_prepared, p);
    struct txs_stats a, b;
    txs_get_stats(s, &a);
    txs_get_stats(p, &b);
    if (a.keys != b.keys || a.versions != b.versions || a.prepared != b.prepared)
        fail("keys or versions or prepared transactions differ from a rebuilt store's", a.keys, b.keys);
    if (a.bytes != b.bytes)
        fail("bytes differ from a rebuilt store's", a.bytes, b.bytes);
    txs_abort_all(s);
    txs_get_stats(s, &a);
    txs_get_stats(v, &b);
    if (a.keys != b.keys || a.versions != b.versions || a.prepared || a.bytes != b.bytes)
        fail("its prepared transactions dropped, the store differs from its versions alone", a.bytes, b.bytes);
    txs_destroy(v);
    txs_destroy(p);
}

static bool same_books(const struct txs_stats *a, const struct txs_stats *b)
{
    return a->keys == b->keys && a->versions == b->versions && a->prepared == b->prepared && a->bytes == b->bytes &&
           a->decided == b->decided && a->commits == b->commits;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct txn_msg m; /* too large for comfort on the stack */
    static struct census c;
    if (size < 2)
        return 0;
    uint8_t *buf = malloc(size);
    if (!buf)
        abort(); /* a test harness: out of memory is not a finding */
    memcpy(buf, data, size);
    bool merge = buf[0] & 1;
    struct txs_limits lim = {
        .max_versions = buf[0] & 2 ? 2 : 8,
        .max_prepared = buf[0] & 4 ? 3 : 256,
        .max_decided = buf[0] & 8 ? 3 : 64,
        .max_bytes = buf[0] & 16 ? 8 << 10 : 1 << 20,
    };
    struct txs *s = txs_create(&lim);
    if (!s)
        abort();
    memset(&c, 0, sizeof(c));
    populate(s, buf[1], merge, &c);
    check_store(s, &lim, &c);
    struct txsync_in in;
    memset(&in, 0, sizeof(in));
    in.merge = merge;
    size_t off = 2, flen = 0;
    const char *why = NULL;
    while (off < size && txn_frame_len(buf + off, size - off, &flen, &why) == 1 &&
           txn_msg_decode(buf + off, flen, &m, &why) == 0) {
        off += flen;
        struct txsync_in old = in;
        struct txs_stats before, after;
        txs_get_stats(s, &before);
        const char *reason = txsync_in_apply(&in, s, &m);
        if (in.merge != merge)
            fail("txsync_in_apply changed the merge mode", in.merge, merge);
        bool must_refuse = !txsync_is_sync_type(m.type) || (m.type != TXN_SYNC_BEGIN && !old.active);
        if (must_refuse && !reason)
            fail("a frame accepted that must be refused", m.type, old.active);
        if (m.type == TXN_SYNC_BEGIN && reason)
            fail("a SYNC_BEGIN refused", m.ts, 0);
        if (reason) {
            if (!reason[0] || ((const uint8_t *)reason >= buf && (const uint8_t *)reason < buf + size))
                fail("a refusal without a reason of its own", m.type, off);
            txs_get_stats(s, &after);
            if (!same_books(&before, &after))
                fail("a refused frame changed the store", m.type, after.bytes);
            check_store(s, &lim, &c);
            break; /* the replica closes the connection */
        }
        if (m.type == TXN_SYNC_DECIDED)
            own_decided(&c, m.txnid);
        check_accepted(s, &in, &old, &m);
        check_store(s, &lim, &c);
    }
    check_rebuild(s, &lim);
    txs_destroy(s);
    free(buf);
    return 0;
}
