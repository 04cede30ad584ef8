/*
 * apps/txn/store.h: one TxnStore replica's versioned key-value store and
 * its optimistic concurrency control (OCC). Single-threaded (the replica's
 * event loop owns it); no I/O. It must never grow without bound: versions
 * per key, prepared transactions and bytes held all have limits, and a
 * request past one gets an error, never a crash.
 *
 * Versions are u64 timestamps chosen by clients (a write's version is its
 * transaction's commit timestamp); version 0 means "no version". A key
 * keeps its newest `max_versions` versions; a get at a timestamp older than
 * the oldest kept one gets ESTALE.
 *
 * OCC, as the replica validates a transaction at prepare (the transaction's
 * reads were done earlier, outside any lock):
 *  - every read (key, version) must still be current: the key's newest
 *    committed version is the one read (0 if the key had none), and no
 *    other prepared transaction writes the key;
 *  - every written key must not be read or written by another prepared
 *    transaction, and the proposed timestamp must be above the key's newest
 *    committed version.
 * A transaction that passes holds its read and write keys until its commit
 * or abort, so conflicting transactions are ordered by the moment they
 * prepared, and (with two-phase commit across shards) the outcome is
 * strictly serializable. Conflicts abort at once (no waiting), so no
 * deadlock is possible.
 *
 * The store also remembers the outcome of its most recent decisions
 * (txs_commit, txs_abort, txs_note_decided): a bounded FIFO of txnid ->
 * commit timestamp (0: aborted), so that during a view change a replica
 * can tell another which transactions are already decided, and a late
 * prepare of a decided transaction cannot hold its keys again. A
 * transaction is never both prepared and remembered as decided.
 */
#ifndef DEMI_TXN_STORE_H
#define DEMI_TXN_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "msg.h"

struct txs;

struct txs_limits {
    uint32_t max_versions; /* versions kept per key (default 8, at least 1) */
    uint32_t max_prepared; /* transactions prepared at once (default 65536) */
    uint64_t max_bytes;    /* keys + values + bookkeeping held (default 1 GiB) */
    /* Decisions remembered (default 65536, at least 1). Their table is
     * allocated whole by txs_create and never grows: 16 bytes per entry
     * plus an index of 4 bytes per slot, the slots being the power of two
     * at or above twice max_decided (at most 32 bytes per entry in all;
     * 1.5 MiB at the default). It is not counted in max_bytes. */
    uint32_t max_decided;
};

struct txs_stats {
    uint64_t keys;
    uint64_t versions;
    uint64_t prepared; /* transactions prepared now */
    uint64_t bytes;    /* what max_bytes is compared with */
    uint64_t commits;
    uint64_t aborts;          /* txs_abort calls that found the transaction */
    uint64_t conflict_stale;  /* prepares refused: a read no longer current */
    uint64_t conflict_locked; /* prepares refused: a key held by another prepared transaction */
    uint64_t conflict_ts;     /* prepares refused: timestamp not above a written key's newest version */
    uint64_t decided;         /* decisions remembered now (at most max_decided) */
};

/* Why a prepare was refused (txs_prepare's return is EAGAIN). */
enum txs_conflict {
    TXS_CONFLICT_NONE = 0,
    TXS_CONFLICT_STALE,
    TXS_CONFLICT_LOCKED,
    TXS_CONFLICT_TS,
};

/* LIM may be NULL (defaults); zero fields take their default too. NULL
 * when out of memory. */
struct txs *txs_create(const struct txs_limits *lim);
void txs_destroy(struct txs *s);

/* The newest version of KEY with version <= TS (UINT64_MAX: the newest).
 * Returns 0 with *VAL and *VLEN (valid until the next call that changes the
 * store) and *VER set; ENOENT when the key has no version at or before TS
 * (*VER = 0); ESTALE when such versions existed but were discarded. */
int txs_get(struct txs *s, const uint8_t *key, size_t klen, uint64_t ts, const uint8_t **val, size_t *vlen,
            uint64_t *ver);

/* Writes VAL as version TS of KEY without validation: quorum-write mode's
 * put (last writer wins) and Load. Returns 0 when stored; EEXIST when the
 * key already has a version >= TS (nothing changes; last writer wins);
 * EBUSY when a prepared transaction holds the key; ENOMEM past max_bytes or
 * out of memory; EINVAL for TS 0 or a key/value over msg.h's bounds.
 * *NEWEST (may be NULL) gets the key's newest version afterwards. */
int txs_put(struct txs *s, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, uint64_t ts,
            uint64_t *newest);

/* Validates transaction TXNID (reads as msg.h's read set, writes as its
 * write set) for commit at TS, as the header comment says. Returns 0 when
 * prepared; EAGAIN on a conflict, with *WHY and *CONFLICT_VER (the newest
 * version of the conflicting key, so that the client can move its clock
 * past it) set; EEXIST when TXNID is already prepared with the same
 * timestamp, keys and values (a repeat: its earlier vote stands, nothing
 * changes), EAGAIN (TXS_CONFLICT_LOCKED) when it is prepared with other
 * content (another transaction drew the same id); ENOSPC at max_prepared; ENOMEM
 * past max_bytes; EINVAL for TS 0, TXNID 0, a key written twice or a bound
 * exceeded; EALREADY when TXNID is remembered as decided (txs_decided says
 * how; nothing changes: a prepare arriving after its decision, which must
 * not hold keys that nothing will release). With FORCE (a backup applying
 * its primary's decision) the conflict checks are skipped; the keys are
 * still held, and EALREADY is returned all the same. */
int txs_prepare(struct txs *s, uint64_t txnid, uint64_t ts, const struct txn_op *reads, uint32_t nreads,
                const struct txn_op *writes, uint32_t nwrites, bool force, enum txs_conflict *why,
                uint64_t *conflict_ver);

/* Commits prepared transaction TXNID: its writes become version TS (the
 * timestamp it prepared with; another TS is EINVAL) and its keys are
 * released; the decision is remembered (TXNID -> TS). ENOENT when TXNID
 * is not prepared. */
int txs_commit(struct txs *s, uint64_t txnid, uint64_t ts);

/* Aborts prepared transaction TXNID, releasing its keys; the decision is
 * remembered (TXNID -> 0). ENOENT when TXNID is not prepared (nothing is
 * remembered then). */
int txs_abort(struct txs *s, uint64_t txnid);

/* The remembered decision on TXNID: 0 with *TS its commit timestamp (0:
 * aborted); ENOENT when it is not remembered (never decided here, or
 * forgotten since: the table keeps the newest max_decided decisions and
 * forgets the oldest first). */
int txs_decided(const struct txs *s, uint64_t txnid, uint64_t *ts);

/* A decision on TXNID learned from elsewhere (another replica's state
 * transfer, or a log replay): commit at TS, or abort when TS is 0. When
 * TXNID is prepared here it is committed (as txs_commit) or aborted (as
 * txs_abort), which remembers it; otherwise the decision is only
 * remembered (a commit's versions come separately). Returns 0; EEXIST when
 * the same decision is already remembered (nothing changes); EINVAL for
 * TXNID 0, a commit at another timestamp than the one TXNID is prepared
 * with, or a remembered decision it contradicts (committed here and
 * aborted there, or committed at another timestamp): nothing changes. */
int txs_note_decided(struct txs *s, uint64_t txnid, uint64_t ts);

/* Installs VAL as version TS of KEY on a backup being brought up to date
 * by its primary (demi-txnd's state transfer): a committed version the
 * primary holds. Unlike txs_put, a version older than the key's newest is
 * slotted in order (an older version kept by the primary, or one that
 * arrived after a newer commit), and a key held by prepared transactions
 * takes it all the same (their reserved version slots stay reserved).
 * Returns 0 when stored; EEXIST when the key already has version TS
 * (nothing changes: the same commit arrived both ways); ENOMEM past
 * max_bytes or out of memory; EINVAL for TS 0 or a key/value over msg.h's
 * bounds. A version older than every kept one while max_versions are kept
 * is discarded (and remembered, so that a get at it says ESTALE). */
int txs_install(struct txs *s, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, uint64_t ts);

/* Aborts every prepared transaction (a backup whose primary is about to
 * send it the ones still prepared). Returns how many. Nothing is
 * remembered as decided: dropping them is not a decision on them. */
uint64_t txs_abort_all(struct txs *s);

/*
 * Scans, a step at a time, with the store free to change between steps:
 * a cursor is a position in a hash table, not a pointer, so nothing a step
 * leaves behind can dangle. Start with *CURSOR = 0; a step visits whole
 * buckets until it has visited at least MAX entries (at least one, so that
 * a step always makes progress) or reaches the table's end, then sets
 * *CURSOR where
 * the next step goes on, TXS_SCAN_END once it is done, and returns the
 * entries it visited. The tables only grow (doubling splits bucket b into
 * b and b + n), so an entry present from a scan's start to its end is
 * visited at least once, wherever it moves; one added or removed in
 * between may or may not be; one whose bucket was passed before the table
 * doubled is visited a second time (at most once per doubling). Each visit
 * shows the entry as it is at that moment. The callbacks must not change
 * the store; the pointers they get are valid only during the call.
 */
#define TXS_SCAN_END UINT64_MAX

/* One committed version of a key (txs_scan_keys: oldest first). */
typedef void txs_version_fn(void *arg, const uint8_t *key, size_t klen, uint64_t ts, const uint8_t *val, size_t vlen);

/* A prepared transaction: its read keys (versions 0: the store does not
 * keep them; a forced prepare does not need them) and its writes. */
typedef void txs_prepared_fn(void *arg, uint64_t txnid, uint64_t ts, const struct txn_op *reads, uint32_t nreads,
                             const struct txn_op *writes, uint32_t nwrites);

/* Visits keys: FN once per kept version, oldest first (a key that only
 * prepared transactions hold has none and is skipped). */
size_t txs_scan_keys(const struct txs *s, uint64_t *cursor, size_t max, txs_version_fn *fn, void *arg);

/* Visits prepared transactions. */
size_t txs_scan_prepared(const struct txs *s, uint64_t *cursor, size_t max, txs_prepared_fn *fn, void *arg);

/* A remembered decision (TS 0: aborted). */
typedef void txs_decided_fn(void *arg, uint64_t txnid, uint64_t ts);

/* Visits remembered decisions, oldest first, MAX of them per step (at
 * least one). Unlike the other scans the cursor is a decision's sequence
 * number (decisions are numbered as they are remembered), not a bucket:
 * one forgotten between steps is skipped, one remembered after the scan
 * began is visited if the scan has not ended yet, and none is visited
 * twice. */
size_t txs_scan_decided(const struct txs *s, uint64_t *cursor, size_t max, txs_decided_fn *fn, void *arg);

void txs_get_stats(const struct txs *s, struct txs_stats *st);

#endif
