/*
 * apps/txn/logrec.c: demi-txnd's log entries (see logrec.h). The entries
 * are msg.c's frames, so parsing them is msg.c's decoder; this file only
 * checks that a payload is a run of whole frames of the log's types and
 * applies each to the store. It never aborts: a bad payload is EBADMSG.
 */
#include "logrec.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Header offsets (msg.h). */
#define OFF_TYPE  3
#define OFF_REQID 8

static bool is_log_type(uint8_t t)
{
    return t == TXN_REPL_PREPARE || t == TXN_REPL_COMMIT || t == TXN_REPL_ABORT || t == TXN_LOAD ||
           t == TXN_SYNC_BEGIN || t == TXN_SYNC_ITEM || t == TXN_SYNC_PREPARED || t == TXN_SYNC_DECIDED ||
           t == TXN_SYNC_END || t == TXN_VIEW_START;
}

size_t lrec_size(const struct txn_msg *m)
{
    return txn_msg_size(m);
}

size_t lrec_encode(const struct txn_msg *m, uint8_t type, uint8_t *buf, size_t cap)
{
    if (!is_log_type(type) || txn_type_fields(m->type) != txn_type_fields(type))
        return 0;
    size_t n = txn_msg_encode(m, buf, cap);
    if (n == 0)
        return 0;
    buf[OFF_TYPE] = type;
    memset(buf + OFF_REQID, 0, 8);
    return n;
}

int lrec_apply(struct txs *s, const uint8_t *buf, size_t len, uint64_t recno, struct lrec_stats *st, char *msg,
               size_t msglen)
{
    /* Large (two sets of 64 entries): not on the stack of a fuzzer's
     * deep call chain, and the replica is single-threaded. */
    static struct txn_msg m;
    size_t off = 0;
    if (len == 0) {
        snprintf(msg, msglen, "record %" PRIu64 ": empty", recno);
        return EBADMSG;
    }
    while (off < len) {
        size_t flen = 0;
        const char *why = NULL;
        int r = txn_frame_len(buf + off, len - off, &flen, &why);
        if (r != 1) {
            snprintf(msg, msglen, "record %" PRIu64 ", byte %zu: %s", recno, off,
                     r == 0 ? "the record ends inside an entry"
                     : why  ? why
                            : "a malformed entry header");
            return EBADMSG;
        }
        if (txn_msg_decode(buf + off, flen, &m, &why) != 0) {
            snprintf(msg, msglen, "record %" PRIu64 ", byte %zu: %s", recno, off, why ? why : "a malformed entry");
            return EBADMSG;
        }
        if (!is_log_type(m.type) || m.reqid != 0) {
            snprintf(msg, msglen, "record %" PRIu64 ", byte %zu: a %s entry%s, which the log never holds", recno, off,
                     txn_type_name(m.type), m.reqid ? " with a request id" : "");
            return EBADMSG;
        }
        int e;
        switch (m.type) {
        case TXN_SYNC_BEGIN:
            txs_abort_all(s);
            st->syncs++;
            st->incomplete = true;
            break;
        case TXN_SYNC_END:
            st->ends++;
            st->incomplete = false;
            break;
        case TXN_VIEW_START:
            st->views++;
            if (m.txnid > st->view)
                st->view = m.txnid;
            break;
        case TXN_SYNC_DECIDED:
            e = txs_note_decided(s, m.txnid, m.ts);
            if (e == 0 || e == EEXIST) {
                st->decided++;
                break;
            }
            snprintf(msg, msglen,
                     "record %" PRIu64 ", byte %zu: the store refuses the decision on txn %" PRIu64
                     " (commit timestamp %" PRIu64 ", 0: aborted): %s",
                     recno, off, m.txnid, m.ts,
                     m.txnid == 0                         ? "txn 0 is no transaction"
                     : txs_decided(s, m.txnid, NULL) == 0 ? "it remembers another decision"
                                                          : "it holds the transaction prepared at another timestamp");
            return EBADMSG;
        case TXN_SYNC_ITEM:
            e = txs_install(s, m.key.p, m.key.n, m.val.p, m.val.n, m.ts);
            if (e == 0 || e == EEXIST) {
                st->sync_items++;
                break;
            }
            snprintf(msg, msglen, "record %" PRIu64 ", byte %zu: the store refuses a synced version: %s", recno, off,
                     e == ENOMEM ? "out of memory (--max-memory)" : strerror(e));
            return e == ENOMEM ? ENOMEM : EBADMSG;
        case TXN_SYNC_PREPARED:
        case TXN_REPL_PREPARE:
            e = txs_prepare(s, m.txnid, m.ts, m.reads, m.nreads, m.writes, m.nwrites, true, NULL, NULL);
            if (e == 0 || e == EEXIST) {
                st->prepares++;
                break;
            }
            if (e == EALREADY) {
                /* Decided already (a later entry of this log, or a
                 * replay of the same log again): holding its keys once
                 * more would leave them held for good. */
                st->stale++;
                break;
            }
            if (e == ENOSPC || e == ENOMEM) {
                snprintf(msg, msglen, "record %" PRIu64 ", byte %zu: txn %" PRIu64 " does not fit in the store (%s)",
                         recno, off, m.txnid, e == ENOSPC ? "--max-prepared" : "--max-memory");
                return e;
            }
            snprintf(msg, msglen, "record %" PRIu64 ", byte %zu: the store refuses the prepare of txn %" PRIu64 ": %s",
                     recno, off, m.txnid, strerror(e));
            return EBADMSG;
        case TXN_REPL_COMMIT:
            e = txs_commit(s, m.txnid, m.ts);
            if (e == EINVAL) {
                snprintf(msg, msglen,
                         "record %" PRIu64 ", byte %zu: txn %" PRIu64 " commits at %" PRIu64
                         ", not the timestamp it prepared with",
                         recno, off, m.txnid, m.ts);
                return EBADMSG;
            }
            if (e == 0) {
                st->commits++;
            } else {
                /* Not prepared here: decided before a snapshot's scan
                 * reached it (or a repaired log). The decision is a fact
                 * all the same; a contradiction is left to the entries
                 * that made it. */
                (void)txs_note_decided(s, m.txnid, m.ts);
                st->stale++;
            }
            break;
        case TXN_REPL_ABORT:
            if (txs_abort(s, m.txnid) == 0) {
                st->aborts++;
            } else {
                (void)txs_note_decided(s, m.txnid, 0);
                st->stale++;
            }
            break;
        default: /* TXN_LOAD */
            e = txs_put(s, m.key.p, m.key.n, m.val.p, m.val.n, m.ts, NULL);
            if (e == 0 || e == EEXIST) {
                st->loads++;
                break;
            }
            if (e == ENOMEM) {
                snprintf(msg, msglen, "record %" PRIu64 ", byte %zu: a load does not fit in the store (--max-memory)",
                         recno, off);
                return ENOMEM;
            }
            snprintf(msg, msglen, "record %" PRIu64 ", byte %zu: the store refuses a load: %s", recno, off,
                     e == EBUSY ? "a prepared transaction holds its key" : strerror(e));
            return EBADMSG;
        }
        off += flen;
    }
    return 0;
}

/* ---- snapshots ---- */

void lrec_snap_start(struct lrec_snap *sn, uint64_t view, bool incomplete)
{
    memset(sn, 0, sizeof(*sn));
    txsync_out_start(&sn->out);
    sn->view = view;
    sn->incomplete = incomplete;
}

struct snap_ctx {
    lrec_emit_fn *emit;
    void *arg;
    int err; /* the first error: later entries are skipped */
};

/* A frame of the transfer's stream, as a log entry of its own type. */
static void snap_frame(void *arg, const struct txn_msg *m)
{
    struct snap_ctx *x = arg;
    if (x->err || m->type == TXN_SYNC_BEGIN || m->type == TXN_SYNC_END)
        return;
    x->err = x->emit(x->arg, m, m->type);
}

int lrec_snap_step(struct lrec_snap *sn, struct txs *s, size_t max, lrec_emit_fn *emit, void *arg, bool *done)
{
    struct snap_ctx x = {emit, arg, 0};
    *done = false;
    if (!sn->begun) {
        /* Always one entry, even for an empty store in view 0: a
         * compaction's new log then has a record to make durable. */
        struct txn_msg v = {.type = TXN_VIEW_START, .txnid = sn->view};
        x.err = emit(arg, &v, TXN_VIEW_START);
        if (sn->incomplete && !x.err) {
            struct txn_msg m = {.type = TXN_SYNC_BEGIN};
            x.err = emit(arg, &m, TXN_SYNC_BEGIN);
        }
        if (x.err)
            return x.err;
        sn->begun = true;
    }
    bool end = txsync_out_step(&sn->out, s, max, snap_frame, &x);
    if (x.err)
        return x.err;
    *done = end;
    return 0;
}
