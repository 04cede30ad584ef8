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
 * Records are numbered from 1 as they are started: every change up to
 * record txl_durable() is durable.
 *
 * The log is never compacted: it grows with every change (see
 * demi-txnd(1)).
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
    uint64_t durable;                 /* the last record whose append completed */
    int err;                          /* an append failed: nothing more is durable */
    uint64_t records, bytes, entries; /* appended and durable (this run) */
};

/* Opens (or creates) the log at PATH; with REPAIR, a log corrupt in the
 * middle is cut before the damage (DEMI_O_REPAIR). A log still locked by
 * a process just killed (its I/O finishing) is retried for a few seconds.
 * 0 or an errno. */
int txl_open(struct txl *l, const char *path, bool repair);

/* Replays every record into S, before the replica serves. 0, or an errno
 * with a one-line reason in MSG (the record and byte). */
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

/* The record a reply made now must wait for: the open record if it holds
 * anything, else the one being appended, else the last durable one. */
uint64_t txl_need(const struct txl *l);

static inline uint64_t txl_durable(const struct txl *l)
{
    return l->durable;
}

/* Starts appending the open record if none is being appended. 0 or the
 * errno of a refused push (l->err is then set). */
int txl_kick(struct txl *l);

/* Whether a completion is the answer to the log's append in flight. */
bool txl_owns(const struct txl *l, int qd, demi_qtoken_t qt);

/* The append in flight completed (OPCODE DEMI_OPC_PUSH) or failed (ERR).
 * Returns 0, or the error, which is kept in l->err: nothing after it will
 * ever count as durable. */
int txl_done(struct txl *l, int opcode, int err);

/* For a clean stop: appends what is queued, waiting up to SECS, then
 * closes the log. 0 when everything logged is durable. */
int txl_close(struct txl *l, int secs);

#endif
