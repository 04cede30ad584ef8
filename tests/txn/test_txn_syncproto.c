/*
 * apps/txn/sync.c on its own, through msg.c's real frames: a primary's
 * store streamed a step at a time into an empty backup's store while the
 * primary keeps changing (each change mirrored in the order a REPL_* frame
 * would follow the sync frames already sent) ends with the backup equal
 * to the primary, prepared transactions and the decisions it remembered
 * included; a merge (a new primary taking in another replica's store)
 * keeps the receiver's prepared transactions, settles those the sender saw
 * decided and skips the sender's prepared ones the receiver saw decided;
 * and the receiving end refuses what is out of order (an item outside a
 * sync, an END whose counts do not match, a store that refuses an item, a
 * decision that contradicts its own); a backup's sync cut short puts back
 * the prepared transactions SYNC_BEGIN dropped (txsync_keep). No network,
 * no libOS. Each case in its own process, with a leak check under ASan.
 */
#include "msg.h"
#include "store.h"
#include "sync.h"
#include "tcases.h"
#include "tcheck.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern int __lsan_do_recoverable_leak_check(void) __attribute__((weak));

static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The link: each frame encoded, decoded and applied at once (TCP order
 * is the order of the calls). */
struct link {
    struct txs *backup;
    struct txsync_in in;
    uint64_t frames, bytes;
    const char *why; /* the first refusal */
};

static uint8_t frame[TXN_HDR_LEN + TXN_BODY_MAX];
static struct txn_msg decoded;

static void deliver(void *arg, const struct txn_msg *m)
{
    struct link *l = arg;
    size_t n = txn_msg_encode(m, frame, sizeof(frame));
    CHECK(n > 0);
    const char *why = NULL;
    size_t fl = 0;
    CHECK_EQ(txn_frame_len(frame, n, &fl, &why), 1);
    CHECK_EQ(fl, n);
    CHECK_EQ(txn_msg_decode(frame, n, &decoded, &why), 0);
    l->frames++;
    l->bytes += n;
    const char *r = txsync_in_apply(&l->in, l->backup, &decoded);
    if (r && !l->why)
        l->why = r;
}

static void kname(char *b, size_t cap, uint32_t k)
{
    snprintf(b, cap, "key-%u", k);
}

static struct txn_op op_w(const char *k, const char *v)
{
    return (struct txn_op){.key = {(const uint8_t *)k, (uint32_t)strlen(k)},
                           .val = {(const uint8_t *)v, (uint32_t)strlen(v)}};
}

/* Every kept version and every prepared transaction of A is in B. */
static void same(struct txs *a, struct txs *b, uint32_t nkeys, uint64_t maxid)
{
    char k[32];
    for (uint32_t i = 0; i < nkeys; i++) {
        kname(k, sizeof(k), i);
        uint64_t at = UINT64_MAX;
        for (;;) {
            const uint8_t *pa, *pb;
            size_t na, nb;
            uint64_t va, vb;
            if (txs_get(a, (const uint8_t *)k, strlen(k), at, &pa, &na, &va) != 0)
                break;
            CHECK_EQ(txs_get(b, (const uint8_t *)k, strlen(k), at, &pb, &nb, &vb), 0);
            CHECK_EQ(va, vb);
            CHECK(na == nb && memcmp(pa, pb, na) == 0);
            at = va - 1;
        }
    }
    struct txs_stats sa, sb;
    txs_get_stats(a, &sa);
    txs_get_stats(b, &sb);
    CHECK_EQ(sa.prepared, sb.prepared);
    /* The same ones: each commits on both or on neither. */
    for (uint64_t id = 1; id <= maxid; id++) {
        int ra = txs_abort(a, id), rb = txs_abort(b, id);
        CHECK_EQ(ra, rb);
    }
}

#define NK 2000
static uint64_t tsof[NK * 4]; /* by txnid: the timestamp it prepared with */

static void case_stream_while_changing(void)
{
    struct txs *a = txs_create(NULL);
    struct link l = {.backup = txs_create(NULL)};
    CHECK(a && l.backup);
    char k[32], v[64];
    uint64_t rs = 1, ts = 10, id = 0;
    for (uint32_t i = 0; i < NK; i++) {
        kname(k, sizeof(k), i);
        for (uint32_t j = 0; j <= i % 3; j++) {
            snprintf(v, sizeof(v), "v%u.%u", i, j);
            CHECK_EQ(txs_put(a, (const uint8_t *)k, strlen(k), (const uint8_t *)v, strlen(v), ++ts, NULL), 0);
        }
    }
    /* Some transactions prepared before the sync, a third of them decided
     * (so remembered: the sync sends those decisions first). */
    for (int t = 0; t < 60; t++) {
        kname(k, sizeof(k), (uint32_t)(rnd(&rs) % NK));
        struct txn_op w = op_w(k, "before");
        ++id;
        tsof[id] = ++ts;
        if (txs_prepare(a, id, ts, NULL, 0, &w, 1, false, NULL, NULL) != 0)
            continue;
        if (t % 3 == 1)
            CHECK_EQ(txs_commit(a, id, ts), 0);
        else if (t % 3 == 2)
            CHECK_EQ(txs_abort(a, id), 0);
    }
    uint64_t before = id;
    struct txs_stats sa;
    txs_get_stats(a, &sa);
    CHECK(sa.decided >= 20);
    struct txsync_out o;
    txsync_out_start(&o);
    uint64_t steps = 0;
    while (!txsync_out_step(&o, a, 4, deliver, &l)) {
        steps++;
        /* Between steps: what the primary decides, mirrored in order. */
        uint64_t r = rnd(&rs) % 3;
        if (r == 0) { /* a new transaction, prepared and forwarded */
            kname(k, sizeof(k), (uint32_t)(rnd(&rs) % NK));
            snprintf(v, sizeof(v), "txn%llu", (unsigned long long)(id + 1));
            struct txn_op w = op_w(k, v);
            tsof[++id] = ++ts;
            if (txs_prepare(a, id, ts, NULL, 0, &w, 1, false, NULL, NULL) == 0)
                CHECK_EQ(txs_prepare(l.backup, id, ts, NULL, 0, &w, 1, true, NULL, NULL), 0);
        } else {
            /* A decision on any transaction still prepared, and its
             * REPL_* on the link: an unknown txnid there is one the scan
             * had not reached, never to be sent (ENOENT), whose decision
             * the backup then only remembers. */
            uint64_t t = 1 + rnd(&rs) % id;
            if (r == 1) {
                if (txs_abort(a, t) == 0 && txs_abort(l.backup, t) == ENOENT)
                    CHECK_EQ(txs_note_decided(l.backup, t, 0), 0);
            } else if (txs_commit(a, t, tsof[t]) == 0) {
                int rb = txs_commit(l.backup, t, tsof[t]);
                CHECK(rb == 0 || rb == ENOENT);
                if (rb == ENOENT)
                    CHECK_EQ(txs_note_decided(l.backup, t, tsof[t]), 0);
            }
        }
    }
    CHECK(l.why == NULL);
    CHECK(l.in.synced);
    CHECK(!l.in.active);
    CHECK_EQ(l.in.items, o.items);
    CHECK_EQ(l.in.prepared, o.prepared);
    CHECK_EQ(l.in.skipped, 0);
    CHECK_EQ(l.in.decided, o.decided);
    CHECK(o.decided >= sa.decided);
    CHECK(steps > NK / 8);
    CHECK(before > 0);
    /* The same decisions remembered: those taken before the sync went
     * across, those taken during it were mirrored. */
    struct txs_stats sb;
    txs_get_stats(a, &sa);
    txs_get_stats(l.backup, &sb);
    CHECK_EQ(sa.decided, sb.decided);
    for (uint64_t t = 1; t <= id; t++) {
        uint64_t ta = 0, tb = 0;
        int ra = txs_decided(a, t, &ta), rb = txs_decided(l.backup, t, &tb);
        CHECK_EQ(ra, rb);
        CHECK_EQ(ta, tb);
    }
    same(a, l.backup, NK, id);
    txs_destroy(a);
    txs_destroy(l.backup);
}

static void apply_is(struct link *l, const struct txn_msg *m, bool ok)
{
    l->why = NULL;
    deliver(l, m);
    if (ok != (l->why == NULL)) {
        fprintf(stderr, "%s: %s\n", txn_type_name(m->type), l->why ? l->why : "accepted");
        exit(1);
    }
}

static void case_refusals(void)
{
    struct link l = {.backup = txs_create(NULL)};
    static struct txn_msg m;
    memset(&m, 0, sizeof(m));
    m.type = TXN_SYNC_ITEM;
    m.ts = 5;
    m.key = (struct txn_bytes){(const uint8_t *)"k", 1};
    m.val = (struct txn_bytes){(const uint8_t *)"v", 1};
    apply_is(&l, &m, false); /* outside a sync */
    m.type = TXN_SYNC_END;
    apply_is(&l, &m, false);
    CHECK(!l.in.synced);
    /* A sync whose END counts one item too many. */
    m.type = TXN_SYNC_BEGIN;
    apply_is(&l, &m, true);
    CHECK(l.in.active && !l.in.synced);
    m.type = TXN_SYNC_ITEM;
    apply_is(&l, &m, true);
    apply_is(&l, &m, true); /* the same version again: EEXIST, harmless */
    m.type = TXN_SYNC_END;
    m.txnid = 0;
    m.ts = 3;
    apply_is(&l, &m, false);
    CHECK(!l.in.synced && !l.in.active);
    /* A new sync drops the prepared transactions and completes. */
    struct txn_op w = op_w("p", "x");
    CHECK_EQ(txs_prepare(l.backup, 9, 50, NULL, 0, &w, 1, true, NULL, NULL), 0);
    memset(&m, 0, sizeof(m));
    m.type = TXN_SYNC_BEGIN;
    apply_is(&l, &m, true);
    CHECK_EQ(txs_commit(l.backup, 9, 50), ENOENT);
    m.type = TXN_SYNC_PREPARED;
    m.txnid = 0; /* the store refuses txnid 0 */
    m.ts = 7;
    m.nwrites = 1;
    m.writes[0] = w;
    apply_is(&l, &m, false);
    m.txnid = 11;
    apply_is(&l, &m, true);
    m.type = TXN_SYNC_ITEM;
    m.nwrites = 0;
    m.ts = 0; /* the store refuses version 0 */
    m.key = (struct txn_bytes){(const uint8_t *)"k", 1};
    apply_is(&l, &m, false);
    m.type = TXN_SYNC_END;
    m.txnid = 1;
    m.ts = 0;
    apply_is(&l, &m, true);
    CHECK(l.in.synced);
    CHECK_EQ(txs_commit(l.backup, 11, 7), 0);
    /* Not a sync type. */
    m.type = TXN_REPL_COMMIT;
    l.in.active = true;
    apply_is(&l, &m, false);
    txs_destroy(l.backup);
}

/* A store out of room refuses the items: the sync fails, it does not
 * crash, and nothing is left half-counted as synced. */
static void case_backup_full(void)
{
    struct txs *a = txs_create(NULL);
    struct txs_limits lim = {.max_bytes = 4096};
    struct link l = {.backup = txs_create(&lim)};
    char k[32], v[300];
    memset(v, 'x', sizeof(v));
    for (uint32_t i = 0; i < 100; i++) {
        kname(k, sizeof(k), i);
        CHECK_EQ(txs_put(a, (const uint8_t *)k, strlen(k), (const uint8_t *)v, sizeof(v), 1, NULL), 0);
    }
    struct txsync_out o;
    txsync_out_start(&o);
    while (!txsync_out_step(&o, a, 8, deliver, &l))
        ;
    CHECK(l.why != NULL);
    CHECK(strstr(l.why, "memory") != NULL);
    CHECK(!l.in.synced);
    txs_destroy(a);
    txs_destroy(l.backup);
}

static void prep(struct txs *s, uint64_t id, uint64_t ts, const char *k, const char *v)
{
    struct txn_op w = op_w(k, v);
    CHECK_EQ(txs_prepare(s, id, ts, NULL, 0, &w, 1, false, NULL, NULL), 0);
}

static void get_is(struct txs *s, const char *k, int rc, uint64_t ver)
{
    uint64_t got = 0;
    CHECK_EQ(txs_get(s, (const uint8_t *)k, strlen(k), UINT64_MAX, NULL, NULL, &got), rc);
    CHECK_EQ(got, ver);
}

static void decided_is(struct txs *s, uint64_t id, int rc, uint64_t ts)
{
    uint64_t got = 99;
    CHECK_EQ(txs_decided(s, id, &got), rc);
    if (rc == 0)
        CHECK_EQ(got, ts);
}

static void sync_all(struct txs *from, struct link *l, struct txsync_out *o)
{
    txsync_out_start(o);
    while (!txsync_out_step(o, from, 2, deliver, l))
        ;
}

/* A new primary (the receiver, in merge mode) takes in another replica's
 * store. */
static void case_merge(void)
{
    struct txs *a = txs_create(NULL);
    struct link l = {.backup = txs_create(NULL), .in = {.merge = true}};
    struct txs *r = l.backup;
    CHECK(a && r);
    /* The receiver: five prepared, one decided. */
    prep(r, 1, 10, "t1", "v1"); /* committed at the sender */
    prep(r, 2, 20, "t2", "v2"); /* aborted at the sender */
    prep(r, 3, 30, "t3", "v3"); /* unknown to the sender */
    prep(r, 4, 40, "t4", "v4"); /* prepared at the sender too */
    prep(r, 5, 50, "t5", "v5"); /* committed here, prepared at the sender */
    CHECK_EQ(txs_commit(r, 5, 50), 0);
    /* The sender. */
    prep(a, 1, 10, "t1", "v1");
    CHECK_EQ(txs_commit(a, 1, 10), 0);
    prep(a, 2, 20, "t2", "v2");
    CHECK_EQ(txs_abort(a, 2), 0);
    prep(a, 4, 40, "t4", "v4");
    prep(a, 5, 50, "t5", "v5");
    prep(a, 6, 60, "t6", "v6"); /* unknown to the receiver */
    CHECK_EQ(txs_note_decided(a, 7, 70), 0);
    CHECK_EQ(txs_put(a, (const uint8_t *)"x", 1, (const uint8_t *)"x", 1, 5, NULL), 0);
    struct txsync_out o;
    sync_all(a, &l, &o);
    CHECK(l.why == NULL);
    CHECK(l.in.synced && l.in.merge);
    CHECK_EQ(o.decided, 3);
    CHECK_EQ(o.prepared, 3);
    CHECK_EQ(o.items, 2);
    CHECK_EQ(l.in.decided, 3);
    CHECK_EQ(l.in.prepared, 2); /* 4 (a repeat) and 6 */
    CHECK_EQ(l.in.skipped, 1);  /* 5 */
    CHECK_EQ(l.in.items, 2);
    /* The sender's decisions settled the receiver's 1 and 2. */
    decided_is(r, 1, 0, 10);
    get_is(r, "t1", 0, 10);
    decided_is(r, 2, 0, 0);
    get_is(r, "t2", ENOENT, 0);
    decided_is(r, 7, 0, 70);
    /* 5 stays committed; 3, 4 and 6 are prepared. */
    decided_is(r, 5, 0, 50);
    get_is(r, "t5", 0, 50);
    struct txs_stats st;
    txs_get_stats(r, &st);
    CHECK_EQ(st.prepared, 3);
    CHECK_EQ(txs_commit(r, 3, 30), 0);
    CHECK_EQ(txs_commit(r, 4, 40), 0);
    CHECK_EQ(txs_commit(r, 6, 60), 0);
    CHECK_EQ(txs_commit(r, 5, 50), ENOENT);
    get_is(r, "x", 0, 5);
    /* Without merge, SYNC_BEGIN drops the receiver's prepared ones. */
    prep(r, 8, 80, "t8", "v8");
    l.in.merge = false;
    sync_all(a, &l, &o);
    CHECK(l.why == NULL && l.in.synced);
    CHECK_EQ(txs_commit(r, 8, 80), ENOENT);
    decided_is(r, 8, ENOENT, 0);
    txs_destroy(a);
    txs_destroy(r);
}

/* A decision that contradicts the receiver's fails the sync; so does an
 * END whose count leaves out the decisions. */
static void case_decided_refusals(void)
{
    struct txs *a = txs_create(NULL);
    struct link l = {.backup = txs_create(NULL), .in = {.merge = true}};
    prep(l.backup, 1, 10, "k", "v");
    CHECK_EQ(txs_commit(l.backup, 1, 10), 0);
    prep(a, 1, 10, "k", "v");
    CHECK_EQ(txs_abort(a, 1), 0);
    struct txsync_out o;
    sync_all(a, &l, &o);
    CHECK(l.why != NULL && strstr(l.why, "contradicts"));
    CHECK(!l.in.synced);
    decided_is(l.backup, 1, 0, 10);
    static struct txn_msg m;
    memset(&m, 0, sizeof(m));
    m.type = TXN_SYNC_BEGIN;
    apply_is(&l, &m, true);
    m.type = TXN_SYNC_DECIDED;
    m.txnid = 0;
    apply_is(&l, &m, false); /* txn 0 */
    m.txnid = 2;
    m.ts = 0;
    apply_is(&l, &m, true);
    apply_is(&l, &m, true); /* EEXIST: counted, harmless */
    m.ts = 20;
    apply_is(&l, &m, false); /* aborted, then committed */
    m.type = TXN_SYNC_END;
    m.txnid = 0; /* the two decisions left out */
    m.ts = 0;
    apply_is(&l, &m, false);
    CHECK(!l.in.synced);
    txs_destroy(a);
    txs_destroy(l.backup);
}

static uint64_t restored;

static void count_restored(void *arg, const struct txn_msg *m)
{
    (void)arg;
    CHECK_EQ(m->type, TXN_SYNC_PREPARED);
    restored++;
}

/* TXNID is held prepared in S with the write K=V at TS (prep's). */
static void held_is(struct txs *s, uint64_t id, uint64_t ts, const char *k, const char *v)
{
    struct txn_op w = op_w(k, v);
    CHECK_EQ(txs_prepare(s, id, ts, NULL, 0, &w, 1, true, NULL, NULL), EEXIST);
}

/* A backup's sync cut short: what SYNC_BEGIN dropped is put back from the
 * copy kept (txsync_keep), except a transaction the partial sync decided;
 * what the sync brought stays. A copy that cannot all be put back (the
 * store full) says so. */
static void case_keep_restore(void)
{
    struct txs *a = txs_create(NULL);
    struct link l = {.backup = txs_create(NULL)};
    prep(l.backup, 1, 10, "k1", "v1");
    prep(l.backup, 2, 11, "k2", "v2");
    prep(l.backup, 3, 12, "k3", "v3");
    prep(a, 1, 10, "k1", "v1");
    CHECK_EQ(txs_abort(a, 1), 0); /* the primary aborted txn 1 while the backup was away */
    prep(a, 4, 13, "k4", "v4");
    struct txsync_keep k;
    CHECK_EQ(txsync_keep_take(&k, l.backup), 0);
    CHECK(k.held);
    CHECK_EQ(k.n, 3);
    /* The sync's first steps only: SYNC_BEGIN, the decision, then txn 4. */
    struct txsync_out o;
    txsync_out_start(&o);
    while (o.prepared == 0)
        CHECK(!txsync_out_step(&o, a, 1, deliver, &l));
    CHECK(l.why == NULL);
    CHECK(l.in.active);
    CHECK_EQ(o.decided, 1);
    held_is(l.backup, 4, 13, "k4", "v4");
    prep(l.backup, 2, 11, "k2", "v2"); /* txn 2 comes again before the cut (REPL_PREPARE, say) */
    restored = 0;
    uint64_t n = 99;
    CHECK_EQ(txsync_keep_restore(&k, l.backup, count_restored, NULL, &n), 0);
    CHECK_EQ(n, 1); /* txn 3; txn 1 is decided, txn 2 held again */
    CHECK_EQ(restored, 1);
    CHECK(!k.held && k.buf == NULL);
    held_is(l.backup, 2, 11, "k2", "v2");
    held_is(l.backup, 3, 12, "k3", "v3");
    held_is(l.backup, 4, 13, "k4", "v4");
    decided_is(l.backup, 1, 0, 0);
    struct txn_op w = op_w("k1", "v1");
    CHECK_EQ(txs_prepare(l.backup, 1, 10, NULL, 0, &w, 1, true, NULL, NULL), EALREADY);

    /* Nothing prepared: an empty copy, held. */
    struct txs *e = txs_create(NULL);
    CHECK_EQ(txsync_keep_take(&k, e), 0);
    CHECK(k.held);
    CHECK_EQ(k.n, 0);
    CHECK_EQ(txsync_keep_restore(&k, e, NULL, NULL, NULL), 0);
    txs_destroy(e);

    /* Room for two prepared transactions: the sync's two take it, so the
     * copy's cannot come back. */
    struct txs_limits lim = {.max_prepared = 2};
    struct txs *f = txs_create(&lim);
    prep(f, 5, 20, "k5", "v5");
    CHECK_EQ(txsync_keep_take(&k, f), 0);
    CHECK_EQ(txs_abort_all(f), 1);
    prep(f, 6, 21, "k6", "v6");
    prep(f, 7, 22, "k7", "v7");
    CHECK_EQ(txsync_keep_restore(&k, f, NULL, NULL, &n), ENOSPC);
    CHECK_EQ(n, 0);
    CHECK(!k.held);
    txs_destroy(f);
    txs_destroy(a);
    txs_destroy(l.backup);
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
    {"stream_while_changing", case_stream_while_changing, 0},
    {"refusals", case_refusals, 0},
    {"backup_full", case_backup_full, 0},
    {"merge", case_merge, 0},
    {"decided_refusals", case_decided_refusals, 0},
    {"keep_restore", case_keep_restore, 0},
};

int main(int argc, char **argv)
{
    return tcase_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]), "txn sync protocol", run_case);
}
