/*
 * apps/txn/logrec.h: what demi-txnd writes to its --log, and how a record
 * read back is applied to a store. Pure code (no I/O, no libdemi), so that
 * a unit test and a fuzz target can drive it. It must never trust what it
 * reads back: a record that does not parse, or that the store refuses,
 * gets an error with a reason, never a crash.
 *
 * The log is a cattree log (demi_open(3)): it already checksums, numbers
 * and bounds each record, and after a crash it is an exact prefix of the
 * records pushed. So a record's payload needs no framing of its own beyond
 * TxnStore's wire frames (msg.h): it is one or more whole frames, back to
 * back, each a state change the replica applied, in the order it applied
 * them. Only these types appear, whatever the request was:
 *
 *   REPL_PREPARE   txnid, ts, reads, writes  a transaction prepared (held)
 *   REPL_COMMIT    txnid, ts                 a prepared transaction committed
 *   REPL_ABORT     txnid                     a prepared transaction aborted
 *   LOAD           ts, key, value            a LOAD, or a qw PUT, stored
 *   SYNC_BEGIN     ts                        a backup's state transfer began:
 *                                            every prepared transaction aborted,
 *                                            and the store is not complete
 *                                            until a SYNC_END
 *   SYNC_END       txnid, ts (ignored)       the store is complete again (its
 *                                            transfer ended, or was cut short
 *                                            and what it dropped was put back,
 *                                            or a view merged it); changes no
 *                                            store
 *   SYNC_ITEM      ts, key, value            a version the primary sent, installed
 *   SYNC_PREPARED  txnid, ts, reads, writes  a prepared transaction it sent
 *   SYNC_DECIDED   txnid, ts                 a decision it sent (ts 0: aborted),
 *                                            applied with txs_note_decided
 *   VIEW_START     txnid                     the replica entered view txnid
 *                                            (ts ignored); changes no store
 *
 * (A backup logs its state transfer as it applies it, so that what it
 * acknowledges after the transfer rests on a durable copy of it. Whether
 * the store is complete (it holds everything the replica ever
 * acknowledged: txnd.c's `complete`) is in the log too: a replica that
 * starts with --rejoin on an empty log, or learns that its store is
 * stale, logs a bare SYNC_BEGIN, and one whose store becomes complete
 * again a SYNC_END; so a replay that ends inside a transfer, or before
 * the first one ended, says the store is not complete (lrec_stats), and
 * the replica does not count until a primary has synced it. A new
 * primary logs the SYNC_DECIDED, SYNC_PREPARED and SYNC_ITEM frames it
 * merges from another replica without a SYNC_BEGIN, whose replay would
 * drop every prepared transaction: none of the three depends on one
 * before it.)
 *
 * The request id is 0. Replaying applies them with the checks a backup
 * uses (a prepare is forced: the primary validated it when it was made),
 * so a log replayed once more into the store it built leaves that store as
 * it was: a prepare of a prepared transaction is a repeat, a prepare of
 * one remembered as decided is skipped (stale), and so are its commit or
 * abort, a load of a version the key already has changes nothing, a
 * decision remembered already is EEXIST.
 */
#ifndef DEMI_TXN_LOGREC_H
#define DEMI_TXN_LOGREC_H

#include "msg.h"
#include "store.h"
#include "sync.h"

#include <stddef.h>
#include <stdint.h>

/* What replaying found. */
struct lrec_stats {
    uint64_t prepares, commits, aborts, loads;
    uint64_t syncs, sync_items; /* SYNC_BEGIN, SYNC_ITEM entries applied */
    uint64_t decided;           /* SYNC_DECIDED entries applied (EEXIST included) */
    uint64_t views;             /* VIEW_START entries replayed */
    uint64_t view;              /* the highest view a VIEW_START entry named (0: none) */
    uint64_t ends;              /* SYNC_END entries */
    bool incomplete;            /* a SYNC_BEGIN with no SYNC_END after it: not complete */
    /* Entries that found nothing to do: commits or aborts of a
     * transaction not prepared (after a repair, or a replay of the same
     * log again), prepares of one remembered as decided. */
    uint64_t stale;
};

/* Bytes lrec_encode writes for M as a log entry of TYPE (0 when it
 * cannot be encoded: see txn_msg_size). */
size_t lrec_size(const struct txn_msg *m);

/* Encodes M as a log entry of TYPE (one of the types above) into BUF, which
 * has lrec_size(M) bytes: M's own frame with its type replaced by TYPE and
 * its request id by 0. M's type must carry the same fields as TYPE (a
 * PREPARE for REPL_PREPARE, a PUT for LOAD...). Returns the bytes written,
 * or 0 (EINVAL: a type that does not fit). */
size_t lrec_encode(const struct txn_msg *m, uint8_t type, uint8_t *buf, size_t cap);

/* Applies the entries of one record's payload (BUF, LEN bytes), record
 * number RECNO (for messages), to S. Returns 0; EBADMSG when the payload
 * is not a run of whole entries of the log's types or an entry contradicts
 * the store (a commit at another timestamp than its prepare, a decision
 * other than the one the store remembers); ENOSPC or
 * ENOMEM when the store's bounds (--max-prepared, --max-memory) are too
 * small for what the log holds. On an error MSG gets a one-line reason
 * naming the record and the byte; what came before in the payload stays
 * applied. */
int lrec_apply(struct txs *s, const uint8_t *buf, size_t len, uint64_t recno, struct lrec_stats *st, char *msg,
               size_t msglen);

/* Gets one entry of a snapshot: M to be logged as TYPE. Returns 0 to go
 * on, or an errno to stop the walk. */
typedef int lrec_emit_fn(void *arg, const struct txn_msg *m, uint8_t type);

/*
 * A compaction's snapshot, taken from the live store a step at a time
 * while the replica goes on (its changes are logged after the entries
 * emitted so far, interleaved with the rest): VIEW_START(VIEW) (view 0
 * too: the snapshot is never empty), a bare SYNC_BEGIN when the store is INCOMPLETE, then the
 * store as a state transfer sends it (sync.h: every remembered decision
 * as SYNC_DECIDED, oldest first, every prepared transaction as
 * SYNC_PREPARED, every kept version as SYNC_ITEM), without the transfer's
 * own SYNC_BEGIN and SYNC_END (whether the store is complete is the
 * marker's, and the changes', to say). Replayed into an empty store with
 * the changes where they were made, it rebuilds the store for the reasons
 * a backup's transfer does (sync.h), and a REPL_COMMIT or REPL_ABORT that
 * finds its transaction not prepared (decided before the scan reached
 * it) is remembered as decided by the replay, as the live store did.
 */
struct lrec_snap {
    struct txsync_out out;
    uint64_t view;
    bool incomplete;
    bool begun; /* the VIEW_START and the marker are out */
};

void lrec_snap_start(struct lrec_snap *sn, uint64_t view, bool incomplete);

/* Emits about MAX more of the store's entries (whole hash buckets) through
 * EMIT, which must not change the store. Returns 0 with *DONE set once
 * the snapshot is all out, or the first error EMIT returned. */
int lrec_snap_step(struct lrec_snap *sn, struct txs *s, size_t max, lrec_emit_fn *emit, void *arg, bool *done);

#endif
