/*
 * What demi-kv's --aof and demi-txnd's --log share about a cattree log:
 * opening it (waiting out the lock of a process just killed), the path of
 * the new log a rewrite or compaction writes beside it, reading it back record by record at start (a record is handed
 * over in one piece: one longer than a segment, 16 MiB, arrives from demi_pop as several segments and is joined into a
 * buffer of its own first), and waiting out the appends still in flight when the server stops.
 */
#ifndef DEMI_APPS_LOGFILE_H
#define DEMI_APPS_LOGFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Opens the log at PATH (demi_open(3), created if missing; DEMI_O_REPAIR
 * with REPAIR) into *QD. A process killed with appends in flight holds the
 * log's lock until the kernel has finished its I/O: EBUSY is tried again
 * for up to 5 s (a guard; the wait is usually milliseconds). Returns 0 or
 * demi_open's error. */
int log_open_wait(int *qd, const char *path, bool repair);

/* PATH with SUFFIX appended (the new log beside the old one), malloc'd;
 * NULL when out of memory. */
char *log_sibling(const char *path, const char *suffix);

/* fsync(2) on the directory holding PATH, so that a rename in it (a
 * rewritten or compacted log taking the old one's place) is durable.
 * Returns 0 or an errno. */
int log_sync_dir(const char *path);

/* Gets record RECNO (1 for the first) as BUF/LEN, valid during the call.
 * Returns 0 to go on, or an errno to stop, with MSG (MSGLEN bytes) set. */
typedef int logread_fn(void *arg, const uint8_t *buf, size_t len, uint64_t recno, char *msg, size_t msglen);

/* Pops every record of the log open on QD (demi_open(3)) from where it
 * stands to its end and calls FN with each, in order. Returns 0 at the
 * log's end, FN's error, or the error of a pop (MSG then says which record
 * could not be read; ENOMEM when a record cannot be joined). *RECORDS
 * gets the number of records read. */
int logread_all(int qd, logread_fn *fn, void *arg, uint64_t *records, char *msg, size_t msglen);

/* A deadline SECS seconds from now (CLOCK_MONOTONIC), for log_time_left. */
void log_deadline(struct timespec *end, int secs);

/* The time from now until END in *LEFT; false once END has passed. */
bool log_time_left(const struct timespec *end, struct timespec *left);

#endif
