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
    uint64_t seq;
    int64_t ts; /* the last #TSMS written into it, or INT64_MIN */
};

struct aof {
    int qd;
    struct aof_rec *q; /* records not yet durable, oldest first */
    size_t qlen, qcap;
    bool inflight;     /* q[0] is being appended */
    uint64_t next_seq; /* the number the next new record gets (from 1) */
    uint64_t durable;  /* the last record whose append completed */
    int err;           /* nonzero after a failed append, until one succeeds */
    struct kv_aof_info *info;
    uint8_t *spare; /* a free record buffer, kept for the next record */
    size_t spare_cap;
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
 * one if none is open or it is full). *seq gets the record's number: the
 * command is durable once aof->durable >= *seq. 0 or ENOMEM (nothing
 * added). */
int aof_append(struct aof *a, int64_t now_ms, int argc, const struct resp_arg *argv, uint64_t *seq);

/* Starts appending the oldest record if none is being appended and no
 * error is pending. 0, or the errno of a push refused at once (treat it as
 * a failed append: call aof_failed). */
int aof_kick(struct aof *a);

/* The record being appended completed: made durable. */
void aof_completed(struct aof *a);

/* The record being appended failed with @err. Every record not yet durable
 * stays queued (the keyspace holds their commands already) and is retried
 * by aof_retry; meanwhile a->err is set. Returns the first record number
 * that is not durable: the writes from there on have failed as far as
 * their clients are concerned. */
uint64_t aof_failed(struct aof *a, int err);

/* After a failure: appends the oldest record again. 0 or an errno. */
int aof_retry(struct aof *a);

/* Waits (up to @secs) for queued records to be appended, for a clean
 * stop; then closes the log. Returns 0 when everything is durable. */
int aof_close(struct aof *a, int secs);

#endif
