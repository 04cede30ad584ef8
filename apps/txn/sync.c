/*
 * apps/txn/sync.c: both ends of an occ backup's state transfer (see
 * sync.h for the stream and why its order makes the copy exact). It must
 * never hold a pointer into the store across steps: the cursor is a
 * position, and every frame is handed to the link before the step
 * returns.
 */
#include "sync.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* What a step hands its callbacks. */
struct emit_ctx {
    struct txsync_out *o;
    txsync_emit_fn *emit;
    void *arg;
    struct txn_msg m;
};

static struct emit_ctx ctx; /* one thread; too large for the stack of every step */

static void ctx_msg(uint8_t type)
{
    memset(&ctx.m, 0, offsetof(struct txn_msg, reads));
    ctx.m.type = type;
}

static void emit_version(void *arg, const uint8_t *key, size_t klen, uint64_t ts, const uint8_t *val, size_t vlen)
{
    (void)arg;
    ctx_msg(TXN_SYNC_ITEM);
    ctx.m.ts = ts;
    ctx.m.key = (struct txn_bytes){key, (uint32_t)klen};
    ctx.m.val = (struct txn_bytes){val, (uint32_t)vlen};
    ctx.emit(ctx.arg, &ctx.m);
    ctx.o->items++;
}

/* ctx.m as the SYNC_PREPARED frame of a prepared transaction. */
static void ctx_prepared(uint64_t txnid, uint64_t ts, const struct txn_op *reads, uint32_t nreads,
                         const struct txn_op *writes, uint32_t nwrites)
{
    ctx_msg(TXN_SYNC_PREPARED);
    ctx.m.txnid = txnid;
    ctx.m.ts = ts;
    ctx.m.nreads = nreads;
    ctx.m.nwrites = nwrites;
    memcpy(ctx.m.reads, reads, nreads * sizeof(*reads));
    memcpy(ctx.m.writes, writes, nwrites * sizeof(*writes));
}

static void emit_prepared(void *arg, uint64_t txnid, uint64_t ts, const struct txn_op *reads, uint32_t nreads,
                          const struct txn_op *writes, uint32_t nwrites)
{
    (void)arg;
    ctx_prepared(txnid, ts, reads, nreads, writes, nwrites);
    ctx.emit(ctx.arg, &ctx.m);
    ctx.o->prepared++;
}

static void emit_decided(void *arg, uint64_t txnid, uint64_t ts)
{
    (void)arg;
    ctx_msg(TXN_SYNC_DECIDED);
    ctx.m.txnid = txnid;
    ctx.m.ts = ts;
    ctx.emit(ctx.arg, &ctx.m);
    ctx.o->decided++;
}

void txsync_out_start(struct txsync_out *o)
{
    memset(o, 0, sizeof(*o));
    o->phase = TXSYNC_BEGIN;
}

bool txsync_out_step(struct txsync_out *o, struct txs *s, size_t max, txsync_emit_fn *emit, void *arg)
{
    ctx.o = o;
    ctx.emit = emit;
    ctx.arg = arg;
    switch (o->phase) {
    case TXSYNC_BEGIN: {
        struct txs_stats st;
        txs_get_stats(s, &st);
        ctx_msg(TXN_SYNC_BEGIN);
        ctx.m.ts = st.keys;
        emit(arg, &ctx.m);
        o->phase = TXSYNC_DECIDED;
        o->cursor = 0;
        return false;
    }
    case TXSYNC_DECIDED:
        txs_scan_decided(s, &o->cursor, max, emit_decided, NULL);
        if (o->cursor == TXS_SCAN_END) {
            o->phase = TXSYNC_PREPARED;
            o->cursor = 0;
        }
        return false;
    case TXSYNC_PREPARED:
        txs_scan_prepared(s, &o->cursor, max, emit_prepared, NULL);
        if (o->cursor == TXS_SCAN_END) {
            o->phase = TXSYNC_KEYS;
            o->cursor = 0;
        }
        return false;
    case TXSYNC_KEYS:
        txs_scan_keys(s, &o->cursor, max, emit_version, NULL);
        if (o->cursor == TXS_SCAN_END)
            o->phase = TXSYNC_END;
        return false;
    case TXSYNC_END:
        ctx_msg(TXN_SYNC_END);
        ctx.m.txnid = o->prepared + o->decided;
        ctx.m.ts = o->items;
        emit(arg, &ctx.m);
        o->phase = TXSYNC_DONE;
        return true;
    default:
        return true;
    }
}

const char *txsync_in_apply(struct txsync_in *in, struct txs *s, const struct txn_msg *m)
{
    int e;
    if (!txsync_is_sync_type(m->type))
        return "not a sync message";
    if (m->type == TXN_SYNC_BEGIN) {
        /* A new sync restarts from scratch, one in progress included. */
        if (!in->merge)
            txs_abort_all(s);
        in->active = true;
        in->synced = false;
        in->items = in->prepared = in->skipped = in->decided = 0;
        in->primary_keys = m->ts;
        return NULL;
    }
    if (!in->active)
        return "a sync message outside a sync";
    switch (m->type) {
    case TXN_SYNC_ITEM:
        e = txs_install(s, m->key.p, m->key.n, m->val.p, m->val.n, m->ts);
        if (e && e != EEXIST)
            return e == ENOMEM ? "out of memory for the primary's state" : "a sync item the store refuses";
        in->items++;
        return NULL;
    case TXN_SYNC_DECIDED:
        e = txs_note_decided(s, m->txnid, m->ts);
        if (e && e != EEXIST)
            return m->txnid == 0 ? "a decision the store refuses" : "a decision that contradicts this replica's";
        in->decided++;
        return NULL;
    case TXN_SYNC_PREPARED:
        e = txs_prepare(s, m->txnid, m->ts, m->reads, m->nreads, m->writes, m->nwrites, true, NULL, NULL);
        if (e == EALREADY) {
            /* Decided here: its decision stands, and its keys must not
             * be held again. */
            in->skipped++;
            return NULL;
        }
        if (e && e != EEXIST)
            return e == ENOMEM || e == ENOSPC ? "out of room for the primary's prepared transactions"
                                              : "a prepared transaction the store refuses";
        in->prepared++;
        return NULL;
    case TXN_SYNC_END:
        in->active = false;
        if (m->txnid != in->prepared + in->skipped + in->decided || m->ts != in->items)
            return "the sync's counts do not match the frames received";
        in->synced = true;
        return NULL;
    default:
        return "not a sync message";
    }
}

/* ---- A backup's prepared transactions, kept across a sync. ---- */

struct keep_ctx {
    struct txsync_keep *k;
    int err;
};

static void keep_one(void *arg, uint64_t txnid, uint64_t ts, const struct txn_op *reads, uint32_t nreads,
                     const struct txn_op *writes, uint32_t nwrites)
{
    struct keep_ctx *kc = arg;
    struct txsync_keep *k = kc->k;
    if (kc->err)
        return;
    ctx_prepared(txnid, ts, reads, nreads, writes, nwrites);
    size_t need = txn_msg_size(&ctx.m);
    if (need == 0) {
        kc->err = EINVAL; /* the store holds only what a frame carried */
        return;
    }
    if (k->cap - k->len < need) {
        size_t cap = k->cap ? k->cap : 4096;
        while (cap - k->len < need)
            cap *= 2;
        uint8_t *b = realloc(k->buf, cap);
        if (!b) {
            kc->err = ENOMEM;
            return;
        }
        k->buf = b;
        k->cap = cap;
    }
    k->len += txn_msg_encode(&ctx.m, k->buf + k->len, k->cap - k->len);
    k->n++;
}

int txsync_keep_take(struct txsync_keep *k, const struct txs *s)
{
    memset(k, 0, sizeof(*k));
    struct keep_ctx kc = {.k = k};
    uint64_t cursor = 0;
    while (cursor != TXS_SCAN_END && !kc.err)
        txs_scan_prepared(s, &cursor, 256, keep_one, &kc);
    if (kc.err) {
        txsync_keep_drop(k);
        return kc.err;
    }
    k->held = true;
    return 0;
}

int txsync_keep_restore(struct txsync_keep *k, struct txs *s, txsync_emit_fn *fn, void *arg, uint64_t *n)
{
    static struct txn_msg m; /* one thread; too large for the stack */
    int err = 0;
    if (n)
        *n = 0;
    for (size_t off = 0; off < k->len;) {
        size_t flen = 0;
        const char *why = NULL;
        /* Frames keep_one encoded: they decode. */
        if (txn_frame_len(k->buf + off, k->len - off, &flen, &why) != 1 ||
            txn_msg_decode(k->buf + off, flen, &m, &why) != 0) {
            err = err ? err : EBADMSG;
            break;
        }
        off += flen;
        int e = txs_prepare(s, m.txnid, m.ts, m.reads, m.nreads, m.writes, m.nwrites, true, NULL, NULL);
        if (e == EEXIST || e == EALREADY)
            continue; /* held again already, or decided since: its decision stands */
        if (e) {
            err = err ? err : e;
            continue;
        }
        if (n)
            (*n)++;
        if (fn)
            fn(arg, &m);
    }
    txsync_keep_drop(k);
    return err;
}

void txsync_keep_drop(struct txsync_keep *k)
{
    free(k->buf);
    memset(k, 0, sizeof(*k));
}
