/*
 * cattree's on-disk log format, version 1. Pure encoding and checking: no
 * I/O, no allocation. Every integer is little-endian.
 *
 * File header (LOGFMT_FILE_HDR = 4096 bytes at offset 0, zero-padded):
 *    0  8  magic "DEMILOG\0"
 *    8  4  version (1)
 *   12  4  header size (4096): the first record starts here
 *   16  4  align: records start at multiples of it (power of two, 512..4096),
 *          chosen at creation from the device's O_DIRECT alignment and
 *          the file system's block size
 *   20  4  flags (0)
 *   24  8  creation time, ns since the Unix epoch (informational)
 *   32  4  CRC32C of bytes 0..31
 *
 * Record (starts at a multiple of align; record n is the n-th from 0):
 *    0  4  magic "REC1"
 *    4  4  len: payload bytes, 1..LOGFMT_MAX_RECORD
 *    8  8  seq: the record's number, n
 *   16  4  CRC32C of the payload
 *   20  2  data_off: where the payload starts, from the record's start:
 *          32 (packed right after the header, when it fits in one align
 *          block) or align (its own blocks, so that aligned application
 *          buffers go to the device without a copy)
 *   22  2  flags (0)
 *   24  4  reserved (0)
 *   28  4  CRC32C of bytes 0..27
 *   then zeros up to data_off, the payload, and zeros up to the next
 *   multiple of align. A record occupies logfmt_rec_size() bytes.
 *
 * The log is the longest run of valid records from offset 4096, numbered
 * 0, 1, 2, ... in order; the first invalid one (bad magic, a checksum
 * mismatch, a wrong number, running past the end of the file) ends it.
 *
 * The writer's promise, on which recovery relies (logscan.h): records are
 * written in place order, and no record is written while the records
 * already placed but not yet durable span LOGFMT_INFLIGHT_MAX bytes or
 * more past the durable end (one record larger than that is written
 * alone). So after a crash every valid record beyond the first invalid one
 * starts less than LOGFMT_INFLIGHT_MAX bytes after it; one further away
 * shows the log was damaged after it was written.
 */
#ifndef DEMI_LIBOS_CATTREE_FORMAT_H
#define DEMI_LIBOS_CATTREE_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOGFMT_VERSION      1u
#define LOGFMT_FILE_HDR     4096u
#define LOGFMT_REC_HDR      32u
#define LOGFMT_MIN_ALIGN    512u
#define LOGFMT_MAX_ALIGN    4096u
#define LOGFMT_MAX_RECORD   (256u << 20) /* 16 segments of 16 MiB */
#define LOGFMT_INFLIGHT_MAX (16u << 20)  /* see above: enough to keep a device busy */

struct logfmt_rec {
    uint64_t seq;
    uint32_t len;
    uint32_t data_crc;
    uint32_t data_off;
};

/* Is @len small enough to share the header's block? */
static inline bool logfmt_packed(uint32_t len, uint32_t align)
{
    return len <= align - LOGFMT_REC_HDR;
}

static inline uint32_t logfmt_data_off(uint32_t len, uint32_t align)
{
    return logfmt_packed(len, align) ? LOGFMT_REC_HDR : align;
}

/* True when the @n bytes at @p are all zero (preallocated or never written). */
static inline bool logfmt_all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* Bytes a record of @len payload bytes occupies on disk. */
static inline uint64_t logfmt_rec_size(uint32_t len, uint32_t align)
{
    uint64_t n = (uint64_t)logfmt_data_off(len, align) + len;
    return (n + align - 1) & ~(uint64_t)(align - 1);
}

/* Writes the file header into @buf (LOGFMT_FILE_HDR bytes). */
void logfmt_file_hdr_encode(uint8_t *buf, uint32_t align, uint64_t created_ns);

/* Checks a file header (@len bytes read from offset 0). Returns 0 and the
 * alignment, or EBADMSG with *@why saying what is wrong. */
int logfmt_file_hdr_decode(const uint8_t *buf, size_t len, uint32_t *align, const char **why);

/* Writes a record header (LOGFMT_REC_HDR bytes) at @p. */
void logfmt_rec_hdr_encode(uint8_t *p, const struct logfmt_rec *r);

/* Checks the header at @p of the record expected to be number @seq, in a
 * log aligned to @align. Returns 0 and the fields, or EBADMSG with *@why.
 * The payload's checksum is the caller's to check. */
int logfmt_rec_hdr_decode(const uint8_t *p, uint64_t seq, uint32_t align, struct logfmt_rec *out, const char **why);

/* logfmt_rec_hdr_decode() without the number check: for finding records
 * after a damaged one, whatever their number. */
int logfmt_rec_hdr_check(const uint8_t *p, uint32_t align, struct logfmt_rec *out, const char **why);

#endif
