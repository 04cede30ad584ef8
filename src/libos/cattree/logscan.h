/*
 * cattree's recovery scan: given a log file (through a read callback, so
 * that tests and the fuzzer can hand it memory), find the longest valid
 * prefix of records, then look at everything after it for valid records
 * the damage would cut off, and say how the damage looks. It decides
 * nothing and writes nothing: cattree.c chooses between cutting, refusing
 * and repairing. Every byte of the file is hostile: nothing read is used
 * before its checksum is verified, nothing is allocated, and the work is
 * linear in the file's size whatever the file holds.
 */
#ifndef DEMI_LIBOS_CATTREE_LOGSCAN_H
#define DEMI_LIBOS_CATTREE_LOGSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct logscan {
    /* Set by the caller. */
    uint64_t size;  /* the file's size */
    uint32_t align; /* from the file header (format.h) */
    uint64_t far;   /* a valid record this many bytes past the damage cannot be a crash's */
    uint8_t *buf;   /* read window: buf_len bytes, a multiple of 4096, at least 8192 */
    size_t buf_len;
    void *ctx;
    /* Reads up to @len bytes at @off into @buf (offsets and lengths are
     * multiples of align); *@got < @len only at the end of the file. */
    int (*read)(void *ctx, void *buf, size_t len, uint64_t off, size_t *got);
    /* Called for each record of the valid prefix, in order (may be NULL);
     * a nonzero return ends the scan with that error. */
    int (*on_record)(void *ctx, uint32_t len);

    /* Results. */
    uint64_t nrec;      /* records [0, nrec) are valid ... */
    uint64_t end;       /* ... and occupy [4096, end); end == size: no damage */
    const char *why;    /* what is wrong at end (NULL when end == size) */
    bool unused;        /* at end: a zeroed record header (preallocated space, or never written) */
    bool torn;          /* the damage looks like writes that never landed (zeros, a cut file) */
    uint64_t later;     /* valid records (header and payload) found after the damage */
    uint64_t later_far; /* of which starting far or more bytes after end */
    uint64_t first_off; /* the first of them: offset and number */
    uint64_t first_seq;
    uint64_t last_seq; /* the highest number among them */

    /* Private: the window's place in the file. */
    uint64_t wbeg, wlen;
};

/* Scans the file described by @s. Returns 0 with the results filled in, or
 * the error of a read or of on_record. */
int logscan_run(struct logscan *s);

#endif
