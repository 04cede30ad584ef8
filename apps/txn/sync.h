/*
 * apps/txn/sync.h: state transfer from an occ primary to a backup (or,
 * during a view change, from another replica to the new primary), both
 * ends, without I/O (demi-txnd moves the frames). It must never block or
 * buffer without bound: the sending end emits a bounded step at a time
 * from a cursor over the live store (store.h's scans), and the receiving
 * end applies each frame as it comes.
 *
 * The stream, on the replication link before anything else the primary
 * sends there (msg.h's SYNC_* types):
 *
 *   SYNC_BEGIN, SYNC_DECIDED x D, SYNC_PREPARED x P, SYNC_ITEM x N,
 *   SYNC_END (P + D, N)
 *
 * interleaved with the REPL_* frames of whatever the primary decides
 * meanwhile. TCP keeps the order, so the backup ends with the state the
 * primary had when the sync began plus every change after it:
 *  - the decisions the sender remembers (store.h) go first, oldest first:
 *    a transaction the receiver holds prepared but the sender saw decided
 *    gets its decision (committed or aborted there, txs_note_decided)
 *    before the sender's prepared transactions are taken in, and a
 *    SYNC_PREPARED of a transaction the receiver remembers as decided is
 *    skipped (its decision stands), so a merge never resurrects a
 *    transaction decided at the receiver. A decision that contradicts the
 *    receiver's (committed on one, aborted on the other, or at another
 *    timestamp) fails the sync: one of the two replicas is wrong. A
 *    decision taken after the scan passed its end comes as the
 *    REPL_COMMIT or REPL_ABORT that follows anyway; the receiver remembers
 *    it only if it holds the transaction prepared, or if its caller notes
 *    it (txs_note_decided) when it does not;
 *  - the prepared transactions go next: one committed before the scan
 *    reached it has its values in the store by the time the key scan
 *    starts; one prepared after SYNC_BEGIN arrives as REPL_PREPARE (a
 *    second copy, from the scan, is EEXIST and harmless); its REPL_COMMIT
 *    or REPL_ABORT follows it either way;
 *  - the key scan reads the live store, so a version committed before the
 *    scan reaches its key is sent by the scan, and one committed after by
 *    REPL_COMMIT; a key whose newer version came by REPL_COMMIT first gets
 *    the scan's copies with txs_install, which slots older ones in and
 *    finds the same one EEXIST.
 * The backup drops its own prepared transactions at SYNC_BEGIN (their
 * fate may have been decided while it was away; txsync_keep, below, keeps
 * a copy for a sync cut short); its committed versions stay (the
 * primary's come on top). A merge (txsync_in.merge: a new
 * primary taking in another replica's store during a view change) keeps
 * its own prepared transactions instead: they may be ones only it holds,
 * and the decisions sent first settle those the other replica saw
 * decided.
 *
 * Why a backup counts toward majorities only from SYNC_END on (demi-txnd's
 * sync_pump): a majority is what must survive the primary. Were a backup
 * still missing earlier state to count, a prepare or commit could be
 * "held by a majority" made of the primary and that backup alone; lose
 * the primary then, and no surviving replica would hold both that
 * transaction and everything before it. Today nothing takes over from a
 * primary, so it changes no answer, but it keeps the invariant any
 * failover will need: every majority contains a complete copy. For the
 * same reason a backup serves GET only once a sync completed.
 */
#ifndef DEMI_TXN_SYNC_H
#define DEMI_TXN_SYNC_H

#include "msg.h"
#include "store.h"

#include <stdbool.h>
#include <stdint.h>

/* Hands one frame to the link (it must take a copy before returning). */
typedef void txsync_emit_fn(void *arg, const struct txn_msg *m);

enum { TXSYNC_BEGIN, TXSYNC_DECIDED, TXSYNC_PREPARED, TXSYNC_KEYS, TXSYNC_END, TXSYNC_DONE };

/* The sending end: one sync to one replica. */
struct txsync_out {
    int phase;
    uint64_t cursor;
    uint64_t items, prepared, decided; /* frames sent */
};

void txsync_out_start(struct txsync_out *o);

/* Emits the next frames: about MAX decisions', keys' or prepared
 * transactions' worth (whole hash buckets, so a little more). Returns true
 * once SYNC_END has been emitted. */
bool txsync_out_step(struct txsync_out *o, struct txs *s, size_t max, txsync_emit_fn *emit, void *arg);

/* The receiving end. Zeroed, it is a backup's; the caller sets MERGE
 * (and may clear it again) before a SYNC_BEGIN arrives, and SYNC_BEGIN
 * leaves it as it is. */
struct txsync_in {
    bool merge;            /* keep this store's prepared transactions at SYNC_BEGIN (see above) */
    bool active;           /* between SYNC_BEGIN and SYNC_END */
    bool synced;           /* a sync has completed (and no other begun since) */
    uint64_t items;        /* SYNC_ITEM frames applied (EEXIST included) */
    uint64_t prepared;     /* SYNC_PREPARED frames taken in (EEXIST included) */
    uint64_t skipped;      /* SYNC_PREPARED of a transaction decided here: not taken in */
    uint64_t decided;      /* SYNC_DECIDED frames applied (EEXIST included) */
    uint64_t primary_keys; /* SYNC_BEGIN's count, for the log */
};

/* Applies one SYNC_* frame M to S. Returns NULL, or a static reason to
 * close the connection it came on (out of order, a count that does not
 * match, a version or transaction the store refuses, a decision that
 * contradicts this replica's). */
const char *txsync_in_apply(struct txsync_in *in, struct txs *s, const struct txn_msg *m);

/*
 * What a backup drops at SYNC_BEGIN, kept until its SYNC_END: a copy of its
 * prepared transactions (as SYNC_PREPARED frames), taken only while its
 * store is complete. A sync cut short (the primary lost before SYNC_END,
 * the backup moving to another view) puts them back, and the store is then
 * what it held before the sync plus part of the primary's state: the
 * state of a backup the sync had not reached yet, which counts as
 * complete in a view change. Without it a primary lost while one backup
 * was being synced (after a spurious view change, say) would leave one
 * complete replica of two alive, and no view could start.
 */
struct txsync_keep {
    uint8_t *buf; /* the frames, back to back */
    size_t len, cap;
    uint64_t n;
    bool held; /* a copy is held (it may hold no transaction) */
};

/* Copies every prepared transaction of S into K (K must not hold one).
 * Returns 0, or ENOMEM (K then holds nothing). */
int txsync_keep_take(struct txsync_keep *k, const struct txs *s);

/* Prepares K's transactions in S again (forced, as a backup does; one the
 * store holds or has seen decided since is skipped) and frees K. FN, if
 * not NULL, gets each transaction put back, as a SYNC_PREPARED frame (for
 * a log); *N (if not NULL) counts them. Returns 0 when every one is back
 * or skipped, else the store's error for the first that could not be put
 * back (ENOMEM, ENOSPC: the store is then not complete). */
int txsync_keep_restore(struct txsync_keep *k, struct txs *s, txsync_emit_fn *fn, void *arg, uint64_t *n);

/* Frees K's copy (its sync completed). */
void txsync_keep_drop(struct txsync_keep *k);

static inline bool txsync_is_sync_type(uint8_t t)
{
    return t == TXN_SYNC_BEGIN || t == TXN_SYNC_ITEM || t == TXN_SYNC_PREPARED || t == TXN_SYNC_DECIDED ||
           t == TXN_SYNC_END;
}

#endif
