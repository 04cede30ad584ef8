/*
 * cattree's storage backends: one ops table per kind of device, so that
 * the log engine (cattree.c) runs unchanged over io_uring today and over
 * SPDK (NVMe from user space) where it exists. A backend moves blocks
 * between heap memory and a file; it knows nothing of records, checksums
 * or durability policy.
 *
 * Asynchronous calls queue one operation tagged with a cookie and return 0,
 * or EAGAIN when the device queue is full (room() says how many fit);
 * submit() starts what is queued; reap() returns finished operations
 * without ever blocking. Synchronous calls are for the control path only
 * (demi_open's scan, recovery after a failed write) and may block.
 * Buffers passed to read/write are heap blocks that never cross a
 * STOR_SPLIT boundary, so a backend can map each to one registered region.
 */
#ifndef DEMI_LIBOS_CATTREE_STOR_H
#define DEMI_LIBOS_CATTREE_STOR_H

#include "core/runtime.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* No single I/O buffer crosses a multiple of this in memory (a heap chunk). */
#define STOR_SPLIT HEAP_CHUNK

struct stor_dev;
struct stor_file;

struct stor_info {
    uint64_t size;      /* file size at open */
    bool direct;        /* I/O bypasses the page cache (O_DIRECT) */
    uint32_t dio_align; /* direct: file offsets and lengths must be multiples of this */
    uint32_t mem_align; /* direct: buffer addresses must be multiples of this */
    uint32_t blksize;   /* the file system's block: writes of whole blocks avoid locks */
};

struct stor_cqe {
    void *cookie;
    int32_t res; /* bytes transferred, or -errno */
};

struct stor_ops {
    const char *name;
    /* One device context per runtime; it may register @rt's heap. */
    int (*create)(struct runtime *rt, struct stor_dev **out);
    /* Waits (blocking) for every queued operation, then frees. */
    void (*destroy)(struct stor_dev *d);

    /* Opens @path (flags: O_RDONLY or O_RDWR, O_CREAT, O_EXCL; truncation is
     * the caller's) and locks it against other writers: EBUSY if another
     * open holds it. Falls back to buffered I/O where direct I/O is refused. */
    int (*open)(struct stor_dev *d, const char *path, int flags, mode_t mode, struct stor_file **out,
                struct stor_info *info);
    /* Stops using direct I/O on @f (alignment the format cannot meet). */
    int (*set_buffered)(struct stor_file *f);
    /* Closes @f; no operation on it may be in flight. */
    void (*close)(struct stor_file *f);

    /* Control path (blocking). */
    int (*read_sync)(struct stor_file *f, void *buf, size_t len, uint64_t off, size_t *got);
    int (*write_sync)(struct stor_file *f, const void *buf, size_t len, uint64_t off);
    int (*truncate_sync)(struct stor_file *f, uint64_t size);
    int (*flush_sync)(struct stor_file *f);
    /* Reserves [off, off + len) and extends the file over it (zeros). */
    int (*allocate_sync)(struct stor_file *f, uint64_t off, uint64_t len);

    /* Data path (never blocks). */
    unsigned (*room)(struct stor_dev *d);
    int (*write)(struct stor_file *f, const void *buf, uint32_t len, uint64_t off, void *cookie);
    int (*read)(struct stor_file *f, void *buf, uint32_t len, uint64_t off, void *cookie);
    /* Makes every write that completed before this call durable (data and
     * the metadata needed to read it back, as fdatasync). */
    int (*flush)(struct stor_file *f, void *cookie);
    /* allocate_sync(), queued: writes inside the file's size that fill
     * reserved blocks need no exclusive inode lock (ext4, XFS). */
    int (*allocate)(struct stor_file *f, uint64_t off, uint64_t len, void *cookie);
    int (*submit)(struct stor_dev *d);
    unsigned (*reap)(struct stor_dev *d, struct stor_cqe *out, unsigned max);
};

/* io_uring (liburing): the backend that runs here. */
extern const struct stor_ops stor_uring_ops;

#endif
