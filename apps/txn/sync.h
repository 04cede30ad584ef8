/*
 * apps/txn/sync.h: state transfer from an occ primary to a backup, both
 * ends, without I/O (demi-txnd moves the frames). It must never block or
 * buffer without bound: the sending end emits a bounded step at a time
 * from a cursor over the live store (store.h's scans), and the receiving
 * end applies each frame as it comes.
 *
 * The stream, on the replication link before anything else the primary
 * sends there (msg.h's SYNC_* types):
 *
 *   SYNC_BEGIN, SYNC_PREPARED x P, SYNC_ITEM x N, SYNC_END (P, N)
 *
 * interleaved with the REPL_* frames of whatever the primary decides
 * meanwhile. TCP keeps the order, so the backup ends with the state the
 * primary had when the sync began plus every change after it:
 *  - the prepared transactions go first: one committed before the scan
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
 * fate may have been decided while it was away); its committed versions
 * stay (the primary's come on top).
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

enum { TXSYNC_BEGIN, TXSYNC_PREPARED, TXSYNC_KEYS, TXSYNC_END, TXSYNC_DONE };

/* The primary's end: one sync to one backup. */
struct txsync_out {
    int phase;
    uint64_t cursor;
    uint64_t items, prepared; /* frames sent */
};

void txsync_out_start(struct txsync_out *o);

/* Emits the next frames: about MAX keys' or prepared transactions' worth
 * (whole hash buckets, so a little more). Returns true once SYNC_END has
 * been emitted. */
bool txsync_out_step(struct txsync_out *o, struct txs *s, size_t max, txsync_emit_fn *emit, void *arg);

/* The backup's end. */
struct txsync_in {
    bool active; /* between SYNC_BEGIN and SYNC_END */
    bool synced; /* a sync has completed (and no other begun since) */
    uint64_t items, prepared;
    uint64_t skipped;      /* SYNC_PREPARED of a transaction decided here: not taken in */
    uint64_t primary_keys; /* SYNC_BEGIN's count, for the log */
};

/* Applies one SYNC_* frame M to S. Returns NULL, or a static reason to
 * close the connection it came on (out of order, a count that does not
 * match, a version or transaction the store refuses). */
const char *txsync_in_apply(struct txsync_in *in, struct txs *s, const struct txn_msg *m);

static inline bool txsync_is_sync_type(uint8_t t)
{
    return t == TXN_SYNC_BEGIN || t == TXN_SYNC_ITEM || t == TXN_SYNC_PREPARED || t == TXN_SYNC_END;
}

#endif
