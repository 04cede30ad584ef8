/*
 * apps/txn/client.h: the TxnStore client library, on PDPIX. A client is
 * used by one thread, after that thread's demi_init; its calls block,
 * driving demi_wait until the replicas answer. It connects over TCP to
 * every replica of every shard it may need (at txc_open).
 *
 * Two modes (the replicas must run the same one):
 *  - TXC_QW, the weakly consistent quorum-write store: a get goes to one
 *    replica (config.read_replica), puts are buffered and written at
 *    commit to every replica of the key's shard, each complete on a
 *    majority. A commit never aborts.
 *  - TXC_OCC, strictly serializable transactions: gets go to one replica
 *    (any replica will do: every read is validated at commit); at commit
 *    the client prepares on the primary of every shard the transaction
 *    touched, which replicates to its backups before voting, then commits
 *    everywhere if every vote is yes, otherwise aborts (two-phase commit,
 *    the client coordinating). When several shards are touched the lowest
 *    is the coordinator shard: prepared first, then the others in
 *    parallel, and committed first, then the others; once it committed,
 *    the transaction is committed (a shard the client's COMMIT misses
 *    asks the coordinator: demi-txnd(1), "Orphans"). The transaction id
 *    says which shard coordinates (msg.h, TXN_ID_MULTI; TXN_ID_SOLO for a
 *    single shard). The primary is guessed per shard (replica
 *    0 at first) and followed through the replicas' view changes (the
 *    primary of view v is replica v mod nreplicas): a backup's NOTPRIMARY
 *    names the view, a replica gone sends the client to the next one. A
 *    prepare that falls short for want of a primary (moved, changing
 *    views, gone) is aborted where it may be held and run again, with a
 *    fresh transaction id and timestamp, until the call's deadline.
 *
 * A connection that failed is reopened when a request must go to it, at
 * most every 150 ms. Every call ends by its deadline, timeout_ms from its
 * start.
 *
 * Keys map to shards by txc_shard_of. A transaction reads its own writes.
 */
#ifndef DEMI_TXN_CLIENT_H
#define DEMI_TXN_CLIENT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TXC_SHARDS_MAX   16
#define TXC_REPLICAS_MAX 5

enum txc_mode { TXC_QW = 1, TXC_OCC };

struct txc_config {
    enum txc_mode mode;
    uint32_t nshards;   /* 1..TXC_SHARDS_MAX */
    uint32_t nreplicas; /* per shard, 1..TXC_REPLICAS_MAX; in TXC_OCC replica 0 is the first primary guessed */
    struct sockaddr_in replica[TXC_SHARDS_MAX][TXC_REPLICAS_MAX];
    uint32_t read_replica; /* the replica index gets go to (taken modulo nreplicas) */
    /* TXC_OCC: a get that read_replica cannot answer (gone, or UNAVAIL: a
     * backup not yet brought up to date by its primary) goes to the next
     * replica, unless read_pinned (tests: reads served by that replica or
     * failing). */
    bool read_pinned;
    /* A call's deadline, from its start (0: 5000): replies not there by
     * then fail it with ETIMEDOUT. */
    uint32_t timeout_ms;
    /* occ: how long one attempt (a prepare, a decision, a get, a
     * reconnect) waits for a replica before the client tries another
     * (0: timeout_ms / 4). A replica that dies without its connections
     * being reset (a killed process on a kernel-bypass stack) is noticed
     * this way; it is then tried last, for a time that doubles while it
     * stays silent (from 1 s to 32 s), until it answers again. */
    uint32_t attempt_ms;
};

struct txc_stats {
    uint64_t commits;
    uint64_t aborts;     /* commits that aborted on a conflict */
    uint64_t gets, puts; /* requests sent to replicas */
    uint64_t prepares;   /* prepare requests sent (one per shard touched, per prepare phase) */
    uint64_t retries;    /* occ: prepare phases run again (a primary moved, changing views, or gone) */
    uint64_t failovers;  /* occ: changes of a shard's guessed primary */
};

struct txc;

/* Connects to every replica: in qw every one must answer; in occ a
 * majority of each shard's (the others are tried again when a request
 * needs them). NULL on failure, with a one-line reason in ERR (ERRLEN
 * bytes). */
struct txc *txc_open(const struct txc_config *cfg, char *err, size_t errlen);
void txc_close(struct txc *c);

/* The shard KEY belongs to, out of NSHARDS (FNV-1a of the key). */
uint32_t txc_shard_of(const uint8_t *key, size_t klen, uint32_t nshards);

/* Starts a transaction (an unfinished one is aborted first). */
void txc_begin(struct txc *c);

/* Reads KEY in the current transaction. Returns 0 with *VAL and *VLEN (valid
 * until the next call on C), ENOENT when the key has no value, or an errno
 * (ETIMEDOUT, ECONNRESET, EPROTO: a malformed reply) when the replica
 * could not answer; the transaction must then be aborted. */
int txc_get(struct txc *c, const uint8_t *key, size_t klen, const uint8_t **val, size_t *vlen);

/* txc_get that also says which version it read: *VER (may be NULL) gets
 * the version this get puts in the transaction's read set (GET_REPLY's ts;
 * 0 with ENOENT: the key had none), or UINT64_MAX when the value came from
 * the transaction's own buffered write (nothing read from a replica).
 * txc_get is txc_get_ver with VER NULL. Test programs use it to record
 * histories (tests/txn/test_txn_bank.c). */
int txc_get_ver(struct txc *c, const uint8_t *key, size_t klen, const uint8_t **val, size_t *vlen, uint64_t *ver);

/* Buffers a write of KEY in the current transaction (copied). 0, or EINVAL
 * (a key or value over msg.h's bounds, more than TXN_SET_MAX writes in one
 * shard), ENOMEM. */
int txc_put(struct txc *c, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen);

/* Ends the transaction. Returns 0 when committed (*TS, may be NULL, gets
 * its commit timestamp: in occ the last prepare phase's, after retries),
 * EAGAIN when it aborted on a conflict (retry it; in occ also when its
 * COMMIT came after the coordinator's primary had aborted it as an
 * orphan, demi-txnd --orphan-ms), or an errno when a
 * replica failed or refused it (see txc_get; ENOSPC: a replica's bounds
 * are reached; in occ EIO: some shard's primary could not be reached, or
 * was changing views, until the deadline, ETIMEDOUT if the last try timed
 * out). With an errno the outcome is aborted unless a commit was already
 * sent, which the client says as EINPROGRESS (every shard voted yes but
 * the primary of the shard that decides it, the coordinator when there
 * are several, did not confirm the COMMIT by the deadline, or refused it:
 * the transaction may or may not have committed). Once the coordinator
 * confirmed, it is 0 even if another shard's primary did not answer:
 * that shard learns the decision from the coordinator (demi-txnd
 * --shards; without it the shard keeps the transaction prepared). */
int txc_commit(struct txc *c, uint64_t *ts);

/* Drops the current transaction (aborting it where it was prepared). */
void txc_abort(struct txc *c);

/* Writes KEY=VAL on every replica of its shard, outside any transaction
 * and without validation (the bench's initial load). 0 or an errno. */
int txc_load(struct txc *c, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen);

void txc_get_stats(const struct txc *c, struct txc_stats *st);

#endif
