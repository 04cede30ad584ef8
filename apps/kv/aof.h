/*
 * demi-kv's append-only file (--aof PATH): the commands that changed the
 * keyspace, appended to a cattree log (demi_open) so that a restart can
 * replay them. It must never let a reply claim durability the log does not
 * have: the network loop (kv.c) holds each write's reply until the record
 * holding the write is durable (aof_done), and the caller decides what a
 * failed append means for its clients.
 *
 * A record's payload is a run of commands in RESP2 (arrays of bulk
 * strings, as clients send them and as Redis's own AOF stores them),
 * preceded by "#TSMS:<unix ms>\r\n" wherever the time the commands saw
 * changes. Replay runs each command with the clock set to that time, so
 * that relative expiry (SET EX, EXPIRE, ...) gives the absolute time it gave
 * originally, and keys whose time passed meanwhile expire as they would
 * have: the keyspace after replay is the one the acknowledged writes made.
 * Keys deleted by expiry are not logged (expiry is a function of the time,
 * which replay reproduces).
 *
 * Group commit: at most one record is being appended at a time; commands
 * logged meanwhile, from any client, go into the next record, which is
 * appended when the first completes (aof_kick). A record is one
 * demi_push, so one flush to the device covers all its commands.
 */
#ifndef DEMI_KV_AOF_H
#define DEMI_KV_AOF_H

#include "cmd.h"
#include "store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* demi_push's limit for one record on a log. */
#define AOF_RECORD_MAX ((size_t)256 << 20)
/* A new record is started once the open one holds this much, so that a
 * record's copy and its write stay bounded. */
#define AOF_RECORD_SOFT ((size_t)16 << 20)

struct aof_rec {
    uint8_t *buf;
    size_t len, cap;
    uint64_t seq;  /* the record's number in this log */
    uint64_t last; /* the number of the last command logged in it, or 0 */
    int64_t ts;    /* the last #TSMS written into it, or INT64_MIN */
};

struct aof_rw;

struct aof {
    int qd;
    char *path;
    struct aof_rec *q; /* records not yet durable, oldest first */
    size_t qlen, qcap;
    size_t queued;        /* bytes in q */
    size_t soft;          /* a record is closed at this size (0: AOF_RECORD_SOFT) */
    bool inflight;        /* q[0] is being appended */
    uint64_t push_qt;     /* its push's token */
    bool frozen;          /* a rewrite is about to take over: q waits (aof_kick) */
    uint64_t next_seq;    /* the number the next new record gets (from 1) */
    uint64_t durable_rec; /* the last record whose append completed */
    /* Commands are numbered from 1 as they are logged (aof_append): every
     * command up to number durable is durable. */
    uint64_t ncmd, durable;
    int err; /* nonzero after a failed append, until one succeeds */
    struct kv_aof_info *info;
    uint8_t *spare; /* a free record buffer, kept for the next record */
    size_t spare_cap;
    struct aof_rw *rw;   /* the rewrite in progress, or NULL */
    int64_t rw_retry_ns; /* after a failed rewrite: no automatic one before (mono ns) */
};

/* Opens (or creates) the log at @path. A log still locked by a process
 * that was just killed is retried for a few seconds. 0 or an errno. */
int aof_open(struct aof *a, const char *path, bool repair, struct kv_aof_info *info);

/* Replays every record of the log into @s, before any client connects.
 * Returns 0, or an errno with a description in @msg (the record and
 * byte where it went wrong) when a record does not parse; the caller must
 * then not serve (the keyspace lacks what comes after). *commands gets the
 * number of commands replayed, *records the records read. */
int aof_replay(struct aof *a, struct kv_server *s, uint64_t *commands, uint64_t *records, char *msg, size_t msglen);

/* Bytes that logging this command takes, time marker excluded. */
size_t aof_cmd_size(int argc, const struct resp_arg *argv);

/* Adds a command that ran at unix time @now_ms to the open record (a new
 * one if none is open or it is full), and to the new log of a rewrite in
 * progress. *seq gets the command's number: it is durable once
 * aof->durable >= *seq. 0 or ENOMEM (nothing added). */
int aof_append(struct aof *a, int64_t now_ms, int argc, const struct resp_arg *argv, uint64_t *seq);

/* Whether a completion (queue @qd, token @qt) is the answer to the push
 * in flight on @a, not a late one of a log closed before (whose queue
 * descriptor may have been reused). */
bool aof_owns(const struct aof *a, int qd, uint64_t qt);

/* Starts appending the oldest record if none is being appended and no
 * error is pending. 0, or the errno of a push refused at once (treat it as
 * a failed append: call aof_failed). */
int aof_kick(struct aof *a);

/* The record being appended completed: made durable. */
void aof_completed(struct aof *a);

/* The record being appended failed with @err. Every record not yet durable
 * stays queued (the keyspace holds their commands already) and is retried
 * by aof_retry; meanwhile a->err is set. Returns the first command number
 * that is not durable: the writes from there on have failed as far as
 * their clients are concerned. */
uint64_t aof_failed(struct aof *a, int err);

/* After a failure: appends the oldest record again. 0 or an errno. */
int aof_retry(struct aof *a);

/* Waits (up to @secs) for queued records to be appended, for a clean
 * stop; then closes the log (a rewrite in progress is abandoned). Returns
 * 0 when everything is durable. */
int aof_close(struct aof *a, int secs);

/*
 * AOF rewrite (BGREWRITEAOF, or automatic once the log has grown enough):
 * a new log, PATH.rewrite, gets commands that rebuild every key, and the
 * commands logged meanwhile, then replaces PATH. There is no fork: the
 * keyspace is walked a few milliseconds per loop iteration, and instead of
 * a point-in-time snapshot each key is written to the new log at most once,
 * as it is at that moment, before any command that touches it is: a key is
 * snapshotted by the walk, or by aof_rewrite_touch just before a write
 * command naming it runs, or needs none because it was created while the
 * rewrite ran (kv_insert marks it); every command logged meanwhile goes to
 * both logs (aof_append). Replaying the new log thus gives every key the
 * state the old log gives it.
 *
 * The switch: once every key is in the new log and the records holding
 * the snapshots are durable, the old log stops appending (frozen), and as
 * soon as the new log holds every command the old one made durable, it is
 * renamed over PATH (the directory synced), the old one closed, and its
 * queued records dropped (the new log has their commands). A crash before
 * the rename leaves PATH complete (aof_open deletes a stale PATH.rewrite);
 * after it, the new log is. Nothing a client was told is durable is ever
 * missing from PATH.
 */

/* Starts a rewrite of the keyspace @st. 0, EALREADY if one runs, or the
 * errno of opening the new log. */
int aof_rewrite_start(struct aof *a, struct kv_store *st);

/* The new log's queue descriptor, or -1 when no rewrite runs. */
int aof_rewrite_qd(const struct aof *a);
/* aof_owns for the new log. */
bool aof_rewrite_owns(const struct aof *a, int qd, uint64_t qt);

/* True while the walk has work it may do now (the loop should not sleep). */
bool aof_rewrite_busy(const struct aof *a);

/* Walks the keyspace for up to @budget_ns, writing keys not yet in the new
 * log at unix time @now_ms, and starts appending to the new log. */
void aof_rewrite_step(struct aof *a, struct kv_store *st, int64_t now_ms, int64_t budget_ns);

/* Before a write command runs: writes every key named by one of its
 * arguments that is not yet in the new log (arguments that are not keys
 * cost a lookup and, if they happen to name a key, only its early
 * snapshot). Also covers keys a command reads, so that the logged command
 * finds them when the new log is replayed. */
void aof_rewrite_touch(struct aof *a, struct kv_store *st, int64_t now_ms, int argc, const struct resp_arg *argv);

/* Starts appending the new log's oldest record, if it can. */
void aof_rewrite_kick(struct aof *a);

/* The new log's answer to its record being appended. Returns true if the
 * rewrite ended with it (switched or failed). */
bool aof_rewrite_result(struct aof *a, int opcode, int err);

/* Switches to the new log if it is ready (see above). Returns true if it
 * did: every command numbered up to a->durable is durable in it. */
bool aof_rewrite_switch(struct aof *a);

/* Whether the log has grown enough for an automatic rewrite: over
 * @min_size bytes and @perc percent over its size after the last rewrite
 * (or at start); never with @perc 0, nor soon after a failed rewrite. */
bool aof_rewrite_due(const struct aof *a, uint64_t perc, uint64_t min_size, int64_t mono_ns);

/* Abandons a rewrite in progress (its new log deleted); @why is logged. */
void aof_rewrite_abort(struct aof *a, const char *why, int err);

#endif
