/*
 * apps/txn/txlog.h: demi-txnd's --log, a cattree log (demi_open(3)) of the
 * state changes a replica made (logrec.h says what an entry is). It must
 * never let a reply claim durability the log does not have: txnd.c holds
 * every reply to a client (and every ack to the primary) until the record
 * holding the last change made before it is durable (txl_need,
 * txl_durable).
 *
 * Group commit: entries go into the open record; at most one record is
 * being appended at a time, and the loop starts the next (txl_kick) once
 * it completes, so one flush covers every change made meanwhile. The
 * appends are pushes on the log's queue, completed by the same
 * demi_wait_next_n loop as the sockets: no thread, no blocking flush.
 *
 * Changes (entries) are numbered from 1 as they are appended: every change
 * up to number txl_durable() is durable.
 *
 * Compaction (txl_compact_due, txl_compact_start, txl_compact_step): once
 * the log outgrows twice the store's bytes (and a minimum), a new log,
 * PATH.compact, gets the store (the view, the decisions it remembers,
 * every prepared transaction, every version kept: lrec_snap), taken from
 * the live store about a MiB per loop turn, so that the loop never stops
 * for long, and every change made from the start on, which goes to both
 * logs, interleaved with the snapshot as it is made. Once the whole
 * snapshot is durable the old log stops appending (its changes wait), and
 * as soon as the new log holds durably every change the old one did, it
 * is renamed over PATH (the directory synced) and becomes the log. A
 * crash before the rename leaves PATH whole (txl_open deletes a stale
 * PATH.compact); after it, the new log is whole.
 */
#ifndef DEMI_TXN_TXLOG_H
#define DEMI_TXN_TXLOG_H

#include "logrec.h"

#include <demi/types.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest record txl_append lets the open record grow to (demi_push
 * takes at most 16 segments of 16 MiB). */
#define TXL_RECORD_MAX ((size_t)128 << 20)

struct txl {
    int qd; /* -1: no log */
    char *path;
    uint8_t *cur; /* the open record */
    size_t cur_len, cur_cap;
    uint8_t *fly; /* the record being appended */
    size_t fly_len, fly_cap;
    bool inflight;
    demi_qtoken_t qt;
    uint64_t appended;         /* the number of the last change appended */
    uint64_t cur_last;         /* the last change in cur (or before it) */
    uint64_t fly_last;         /* the last change in fly */
    uint64_t durable;          /* every change up to this one is durable */
    int err;                   /* an append failed: nothing more is durable */
    uint64_t size;             /* payload bytes in the file (replayed and appended) */
    uint64_t records, bytes;   /* appended and durable (this run) */
    uint64_t compactions;      /* done (this run) */
    uint64_t min_compact;      /* no compaction below this size (0: never) */
    bool frozen;               /* compacting: the new log catches up, this one waits */
    struct txl *next;          /* the new log of a compaction, or NULL */
    char *tmp;                 /* its path */
    struct lrec_snap snap;     /* the new log: its snapshot, being taken */
    bool snapping;             /* the new log: the snapshot is not all emitted */
    uint64_t snap_last_change; /* the new log: the last change made before its snapshot began */
    uint64_t snap_rec;         /* the new log: its records up to the snapshot's last */
    int64_t compact_start_ns;
    int64_t compact_retry_ns; /* after a failed compaction: none before (mono ns) */
    /* The view the replica is in, which a compaction's snapshot begins
     * with (a VIEW_START entry, when above 0), since the snapshot replaces
     * the entries that said so. txl_replay sets it to the highest view the
     * log names; demi-txnd sets it again whenever it enters a view (after
     * txl_start: txl_open zeroes it), besides logging that VIEW_START. */
    uint64_t view;
    /* The store is not complete (logrec.h): a compaction's snapshot then
     * begins with a bare SYNC_BEGIN. txl_replay sets it from the log;
     * demi-txnd sets it again whenever its store becomes complete or
     * stops being so, besides logging that. */
    bool incomplete;
    uint64_t replayed; /* records txl_replay found (0: a new or empty log) */
};

/* Opens (or creates) the log at PATH; with REPAIR, a log corrupt in the
 * middle is cut before the damage (DEMI_O_REPAIR). A log still locked by
 * a process just killed (its I/O finishing) is retried for a few seconds.
 * 0 or an errno. */
int txl_open(struct txl *l, const char *path, bool repair);

/* Replays every record into S, before the replica serves. 0, or an errno
 * with a one-line reason in MSG (the record and byte). On success l->view
 * is ST's view and l->replayed *RECORDS. */
int txl_replay(struct txl *l, struct txs *s, struct lrec_stats *st, uint64_t *records, char *msg, size_t msglen);

/* What demi-txnd does at start: txl_open, then txl_replay into S. Returns
 * 0 with a line saying what was replayed in MSG, or an errno with a line
 * saying what went wrong (for a log corrupt in the middle, naming
 * --log-repair); the log is then closed. */
int txl_start(struct txl *l, const char *path, bool repair, struct txs *s, char *msg, size_t msglen);

/* Adds M, as a log entry of TYPE (logrec.h), to the open record. 0, or an
 * errno (the log failed before, the record is full, out of memory): the
 * change is then not logged, and the caller must not acknowledge it. */
int txl_append(struct txl *l, const struct txn_msg *m, uint8_t type);

/* The change a reply made now must wait for: the last one appended
 * (UINT64_MAX, never durable, once the log failed). */
uint64_t txl_need(const struct txl *l);

static inline uint64_t txl_durable(const struct txl *l)
{
    return l->durable;
}

/* Starts appending the open record if none is being appended. 0 or the
 * errno of a refused push (l->err is then set). */
int txl_kick(struct txl *l);

/* Whether a completion is the answer to an append in flight on the log,
 * or on the new log of a compaction. */
bool txl_owns(const struct txl *l, int qd, demi_qtoken_t qt);

/* That append (queue QD) completed (OPCODE DEMI_OPC_PUSH) or failed
 * (ERR). Returns 0, or the error of the log's own append, which is kept in
 * l->err: nothing after it will ever count as durable. A failure of the
 * new log abandons the compaction (with a line on standard error) and
 * returns 0. May switch to the new log. */
int txl_done(struct txl *l, int qd, int opcode, int err);

/* Whether the log has grown enough to compact: over l->min_compact bytes
 * and over twice the bytes S holds (its remembered decisions included, as
 * the entries a snapshot gives them), with no compaction running. */
bool txl_compact_due(const struct txl *l, struct txs *s);

/* Starts a compaction (see above). 0, or an errno (the compaction is then
 * not started, with a line on standard error). */
int txl_compact_start(struct txl *l, struct txs *s);

/* The compaction's next step: about a MiB more of the snapshot into the
 * new log's open record (txl_kick appends it), once a loop turn. Nothing
 * when no snapshot is being taken; a failure abandons the compaction,
 * with a line on standard error. */
void txl_compact_step(struct txl *l, struct txs *s);

/* Appends what is queued and waits, up to SECS, until it is durable
 * (driving only the log's own queue). 0, or an errno (ETIMEDOUT, or the
 * log's error). */
int txl_flush(struct txl *l, int secs);

/* For a clean stop: txl_flush, then closes the log. 0 when everything
 * logged is durable. */
int txl_close(struct txl *l, int secs);

#endif
