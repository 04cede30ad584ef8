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
 * exceeded. With FORCE (a backup applying its primary's decision) the
 * conflict checks are skipped; the keys are still held. */
int txs_prepare(struct txs *s, uint64_t txnid, uint64_t ts, const struct txn_op *reads, uint32_t nreads,
                const struct txn_op *writes, uint32_t nwrites, bool force, enum txs_conflict *why,
                uint64_t *conflict_ver);

/* Commits prepared transaction TXNID: its writes become version TS (the
 * timestamp it prepared with; another TS is EINVAL) and its keys are
 * released. ENOENT when TXNID is not prepared. */
int txs_commit(struct txs *s, uint64_t txnid, uint64_t ts);

/* Aborts prepared transaction TXNID, releasing its keys. ENOENT when TXNID
 * is not prepared. */
int txs_abort(struct txs *s, uint64_t txnid);

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
 * send it the ones still prepared). Returns how many. */
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

void txs_get_stats(const struct txs *s, struct txs_stats *st);

#endif
