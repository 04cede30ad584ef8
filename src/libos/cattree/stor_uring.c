/*
 * The io_uring storage backend (liburing 2.3). One ring per runtime serves
 * every log of that thread. Files are opened O_DIRECT; where a file system
 * refuses it (ramfs, some FUSE and network file systems) the file is used
 * through the page cache instead, with the same fdatasync durability, and
 * that is logged once.
 *
 * Registered buffers: every 2 MiB heap chunk is one slot of the ring's
 * fixed-buffer table (slot = chunk index), so reads and writes of heap
 * memory use IORING_OP_READ_FIXED / WRITE_FIXED and the kernel does not pin
 * and unpin pages on every operation. Chunks the heap maps after this
 * backend starts are registered from the heap's map hook; chunks mapped
 * before it are registered the first time an I/O touches them. Because
 * every new mapping of a chunk passes through the hook, a registered slot
 * always describes the chunk's current pages. Where registration fails
 * (RLIMIT_MEMLOCK without CAP_IPC_LOCK, a heap over 16384 chunks) the
 * backend uses plain READ/WRITE for that chunk and says so once.
 *
 * Completions are reaped by peeking the completion ring: no system call.
 * The ring is set up without COOP_TASKRUN/DEFER_TASKRUN, so the kernel
 * posts completions while the thread runs in user space. This file must
 * never block outside destroy() and the *_sync calls.
 */
#include "core/log.h"
#include "libos/cattree/stor.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef STATX_DIOALIGN
#define STATX_DIOALIGN 0x00002000U
#endif

#define URING_ENTRIES 1024u
#define URING_MAX_REG 16384u /* IORING_MAX_REG_BUFFERS */
#define DIO_FALLBACK  4096u  /* alignment assumed when the kernel does not say */
#define DRAIN_SECONDS 10

enum { SLOT_NONE = 0, SLOT_OK, SLOT_FAILED };

struct stor_dev {
    struct io_uring ring;
    struct heap *heap;
    uint8_t *heap_base;
    size_t heap_len;
    uint32_t nslots; /* fixed-buffer table size: 0 when there is none */
    uint8_t *slot;   /* SLOT_* per heap chunk */
    unsigned cq_entries;
    unsigned inflight; /* queued or submitted, not yet reaped */
    bool hooked;
};

struct stor_file {
    struct stor_dev *d;
    int fd;
    bool direct;
};

/* Registered buffers. */

static bool slot_register(struct stor_dev *d, uint32_t ci)
{
    struct iovec iov = {.iov_base = d->heap_base + (size_t)ci * HEAP_CHUNK, .iov_len = HEAP_CHUNK};
    __u64 tag = 0;
    int r = io_uring_register_buffers_update_tag(&d->ring, ci, &iov, &tag, 1);
    if (r == 1) {
        d->slot[ci] = SLOT_OK;
        return true;
    }
    d->slot[ci] = SLOT_FAILED;
    log_once(LOGL_WARN,
             "cattree: cannot register heap memory with io_uring (%s); unregistered chunks use plain "
             "reads and writes (RLIMIT_MEMLOCK is the usual cause without CAP_IPC_LOCK)",
             strerror(r < 0 ? -r : EIO));
    return false;
}

/* The heap maps chunks: (re)register each, so the slot matches its pages.
 * Never fails the mapping: an unregistered chunk still works. */
static int map_hook(void *arg, void *addr, size_t len)
{
    struct stor_dev *d = arg;
    size_t first = (size_t)((uint8_t *)addr - d->heap_base) / HEAP_CHUNK;
    size_t n = len / HEAP_CHUNK;
    for (size_t ci = first; ci < first + n && ci < d->nslots; ci++)
        slot_register(d, (uint32_t)ci);
    return 0;
}

/* The fixed-buffer slot holding [buf, buf + len), or -1. */
static int slot_of(struct stor_dev *d, const void *buf, uint32_t len)
{
    uintptr_t off = (uintptr_t)buf - (uintptr_t)d->heap_base;
    if (off >= d->heap_len || len > d->heap_len - off)
        return -1;
    uint32_t ci = (uint32_t)(off / HEAP_CHUNK);
    if (ci >= d->nslots || (off + len - 1) / HEAP_CHUNK != ci)
        return -1;
    if (d->slot[ci] == SLOT_OK || (d->slot[ci] == SLOT_NONE && slot_register(d, ci)))
        return (int)ci;
    return -1;
}

/* Device. */

static int uring_create(struct runtime *rt, struct stor_dev **out)
{
    struct stor_dev *d = calloc(1, sizeof(*d));
    if (!d)
        return ENOMEM;
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    p.flags = IORING_SETUP_SUBMIT_ALL;
    int r = io_uring_queue_init_params(URING_ENTRIES, &d->ring, &p);
    if (r == -EINVAL) { /* a kernel before 5.18 */
        memset(&p, 0, sizeof(p));
        r = io_uring_queue_init_params(URING_ENTRIES, &d->ring, &p);
    }
    if (r < 0) {
        free(d);
        log_error("cattree: io_uring_setup: %s (io_uring disabled? see /proc/sys/kernel/io_uring_disabled)",
                  strerror(-r));
        return -r == ENOSYS || -r == EPERM ? ENOTSUP : -r;
    }
    d->cq_entries = p.cq_entries;
    d->heap = rt->heap;
    void *base;
    heap_range(rt->heap, &base, &d->heap_len);
    d->heap_base = base;
    uint32_t nchunks = (uint32_t)(d->heap_len / HEAP_CHUNK);
    uint32_t n = nchunks < URING_MAX_REG ? nchunks : URING_MAX_REG;
    d->slot = calloc(n ? n : 1, 1);
    if (d->slot && io_uring_register_buffers_sparse(&d->ring, n) == 0) {
        d->nslots = n;
        if (n < nchunks)
            log_once(LOGL_INFO, "cattree: only the first %u heap chunks can be registered with io_uring", n);
    } else {
        log_once(LOGL_WARN, "cattree: io_uring has no registered-buffer table; using plain reads and writes");
    }
    /* The hook sees every chunk mapped from now on (see the file comment). */
    d->hooked = heap_add_hook(rt->heap, map_hook, NULL, d) == 0;
    if (!d->hooked)
        log_warn("cattree: the heap has no room for another memory hook; new chunks register lazily");
    *out = d;
    return 0;
}

static unsigned uring_reap(struct stor_dev *d, struct stor_cqe *out, unsigned max);

static void uring_destroy(struct stor_dev *d)
{
    if (!d)
        return;
    /* Teardown only: wait for the kernel to finish with our buffers before
     * the heap that holds them goes away. */
    struct stor_cqe c[64];
    for (int i = 0; d->inflight && i < DRAIN_SECONDS * 100; i++) {
        io_uring_submit(&d->ring);
        if (!uring_reap(d, c, 64)) {
            struct io_uring_cqe *cqe;
            struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = 10 * 1000 * 1000};
            io_uring_wait_cqe_timeout(&d->ring, &cqe, &ts);
        }
    }
    if (d->inflight)
        log_warn("cattree: %u storage operations still in flight at exit", d->inflight);
    if (d->hooked)
        heap_remove_hook(d->heap, d);
    io_uring_queue_exit(&d->ring);
    free(d->slot);
    free(d);
}

/* Files. */

static int dio_alignment(int fd, uint32_t *dio, uint32_t *mem)
{
    struct statx sx;
    if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 && (sx.stx_mask & STATX_DIOALIGN) &&
        sx.stx_dio_offset_align) {
        *dio = sx.stx_dio_offset_align;
        *mem = sx.stx_dio_mem_align ? sx.stx_dio_mem_align : sx.stx_dio_offset_align;
        return 0;
    }
    *dio = *mem = DIO_FALLBACK; /* the kernel does not say: assume 4 KiB sectors */
    return 0;
}

/* fsync(2) on the directory holding @path, so a new file's name is durable. */
static int sync_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash) {
        strcpy(dir, ".");
    } else if (slash == path) {
        strcpy(dir, "/");
    } else {
        size_t n = (size_t)(slash - path);
        if (n >= sizeof(dir))
            return ENAMETOOLONG;
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    int e = fsync(fd) < 0 ? errno : 0;
    close(fd);
    return e;
}

/* open(2) with O_DIRECT, or without it where it is refused. */
static int open_file(const char *path, int oflags, mode_t mode, bool *direct)
{
    int fd = open(path, oflags | O_DIRECT, mode);
    *direct = fd >= 0;
    if (fd < 0 && errno == EINVAL)
        fd = open(path, oflags, mode); /* said once it is known to be a regular file */
    return fd < 0 ? -errno : fd;
}

static int uring_open(struct stor_dev *d, const char *path, int flags, mode_t mode, struct stor_file **out,
                      struct stor_info *info)
{
    bool rdonly = (flags & O_ACCMODE) == O_RDONLY;
    /* O_NONBLOCK: opening a FIFO must not hang; regular files ignore it. */
    int base = (rdonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK;
    bool direct, created = false;
    int fd;
    if ((flags & O_CREAT) && (flags & O_EXCL)) {
        fd = open_file(path, base | O_CREAT | O_EXCL, mode, &direct);
        created = fd >= 0;
    } else {
        fd = open_file(path, base, mode, &direct);
        if (fd == -ENOENT && (flags & O_CREAT)) {
            fd = open_file(path, base | O_CREAT | O_EXCL, mode, &direct);
            created = fd >= 0;
            if (fd == -EEXIST) /* someone created it meanwhile */
                fd = open_file(path, base, mode, &direct);
        }
    }
    if (fd < 0)
        return -fd;
    struct stat st;
    int e = 0;
    if (fstat(fd, &st) < 0)
        e = errno;
    else if (S_ISDIR(st.st_mode))
        e = EISDIR;
    else if (!S_ISREG(st.st_mode)) {
        log_error("cattree: %s: not a regular file", path);
        e = EINVAL;
    }
    if (!e && flock(fd, (rdonly ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0)
        e = errno == EWOULDBLOCK ? EBUSY : errno;
    if (!e && !direct)
        log_once(LOGL_WARN,
                 "cattree: %s: the file system refuses O_DIRECT (ramfs, some FUSE or network file systems); "
                 "using buffered I/O (records are still acknowledged only after fdatasync)",
                 path);
    if (!e && created)
        e = sync_parent(path);
    /* Back to blocking mode: io_uring fails, rather than queues, an
     * operation that would block on an O_NONBLOCK file. */
    if (!e && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0)
        e = errno;
    if (e) {
        close(fd);
        return e;
    }
    struct stor_file *f = calloc(1, sizeof(*f));
    if (!f) {
        close(fd);
        return ENOMEM;
    }
    f->d = d;
    f->fd = fd;
    f->direct = direct;
    memset(info, 0, sizeof(*info));
    info->size = (uint64_t)st.st_size;
    info->direct = direct;
    info->dio_align = info->mem_align = 1;
    info->blksize = st.st_blksize > 0 ? (uint32_t)st.st_blksize : 4096;
    if (direct)
        dio_alignment(fd, &info->dio_align, &info->mem_align);
    *out = f;
    return 0;
}

static int uring_set_buffered(struct stor_file *f)
{
    int fl = fcntl(f->fd, F_GETFL);
    if (fl < 0 || fcntl(f->fd, F_SETFL, fl & ~O_DIRECT) < 0)
        return errno;
    f->direct = false;
    return 0;
}

static void uring_close(struct stor_file *f)
{
    close(f->fd); /* also drops the flock */
    free(f);
}

static int uring_read_sync(struct stor_file *f, void *buf, size_t len, uint64_t off, size_t *got)
{
    size_t done = 0;
    while (done < len) {
        ssize_t k = pread(f->fd, (uint8_t *)buf + done, len - done, (off_t)(off + done));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return errno;
        if (k == 0)
            break;
        done += (size_t)k;
    }
    *got = done;
    return 0;
}

static int uring_write_sync(struct stor_file *f, const void *buf, size_t len, uint64_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t k = pwrite(f->fd, (const uint8_t *)buf + done, len - done, (off_t)(off + done));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return errno;
        if (k == 0)
            return EIO;
        done += (size_t)k;
    }
    return 0;
}

static int uring_truncate_sync(struct stor_file *f, uint64_t size)
{
    return ftruncate(f->fd, (off_t)size) < 0 ? errno : 0;
}

static int uring_flush_sync(struct stor_file *f)
{
    return fsync(f->fd) < 0 ? errno : 0;
}

static int uring_allocate_sync(struct stor_file *f, uint64_t off, uint64_t len)
{
    return fallocate(f->fd, 0, (off_t)off, (off_t)len) < 0 ? errno : 0;
}

/* Data path. */

static unsigned uring_room(struct stor_dev *d)
{
    /* Never more in flight than the completion ring holds: no CQE is
     * ever dropped or left to the kernel's overflow list. */
    unsigned sq = io_uring_sq_space_left(&d->ring);
    unsigned cq = d->cq_entries > d->inflight ? d->cq_entries - d->inflight : 0;
    return sq < cq ? sq : cq;
}

static struct io_uring_sqe *get_sqe(struct stor_dev *d)
{
    if (!uring_room(d))
        return NULL;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&d->ring);
    if (sqe)
        d->inflight++;
    return sqe;
}

static int uring_write(struct stor_file *f, const void *buf, uint32_t len, uint64_t off, void *cookie)
{
    struct stor_dev *d = f->d;
    struct io_uring_sqe *sqe = get_sqe(d);
    if (!sqe)
        return EAGAIN;
    int slot = slot_of(d, buf, len);
    if (slot >= 0)
        io_uring_prep_write_fixed(sqe, f->fd, buf, len, off, slot);
    else
        io_uring_prep_write(sqe, f->fd, buf, len, off);
    io_uring_sqe_set_data(sqe, cookie);
    return 0;
}

static int uring_read(struct stor_file *f, void *buf, uint32_t len, uint64_t off, void *cookie)
{
    struct stor_dev *d = f->d;
    struct io_uring_sqe *sqe = get_sqe(d);
    if (!sqe)
        return EAGAIN;
    int slot = slot_of(d, buf, len);
    if (slot >= 0)
        io_uring_prep_read_fixed(sqe, f->fd, buf, len, off, slot);
    else
        io_uring_prep_read(sqe, f->fd, buf, len, off);
    io_uring_sqe_set_data(sqe, cookie);
    return 0;
}

static int uring_flush(struct stor_file *f, void *cookie)
{
    struct stor_dev *d = f->d;
    struct io_uring_sqe *sqe = get_sqe(d);
    if (!sqe)
        return EAGAIN;
    /* fdatasync: the data and the size change that appends made. */
    io_uring_prep_fsync(sqe, f->fd, IORING_FSYNC_DATASYNC);
    io_uring_sqe_set_data(sqe, cookie);
    return 0;
}

static int uring_allocate(struct stor_file *f, uint64_t off, uint64_t len, void *cookie)
{
    struct stor_dev *d = f->d;
    struct io_uring_sqe *sqe = get_sqe(d);
    if (!sqe)
        return EAGAIN;
    io_uring_prep_fallocate(sqe, f->fd, 0, off, len);
    io_uring_sqe_set_data(sqe, cookie);
    return 0;
}

static int uring_submit(struct stor_dev *d)
{
    if (!io_uring_sq_ready(&d->ring))
        return 0;
    int r = io_uring_submit(&d->ring);
    if (r >= 0 || r == -EAGAIN || r == -EBUSY || r == -EINTR)
        return 0; /* what was not taken stays queued for the next pass */
    return -r;
}

static unsigned uring_reap(struct stor_dev *d, struct stor_cqe *out, unsigned max)
{
    struct io_uring_cqe *cqes[64];
    if (max > 64)
        max = 64;
    unsigned n = io_uring_peek_batch_cqe(&d->ring, cqes, max);
    for (unsigned i = 0; i < n; i++) {
        out[i].cookie = io_uring_cqe_get_data(cqes[i]);
        out[i].res = cqes[i]->res;
    }
    io_uring_cq_advance(&d->ring, n);
    d->inflight -= n;
    return n;
}

const struct stor_ops stor_uring_ops = {
    .name = "io_uring",
    .create = uring_create,
    .destroy = uring_destroy,
    .open = uring_open,
    .set_buffered = uring_set_buffered,
    .close = uring_close,
    .read_sync = uring_read_sync,
    .write_sync = uring_write_sync,
    .truncate_sync = uring_truncate_sync,
    .flush_sync = uring_flush_sync,
    .allocate_sync = uring_allocate_sync,
    .room = uring_room,
    .write = uring_write,
    .read = uring_read,
    .flush = uring_flush,
    .allocate = uring_allocate,
    .submit = uring_submit,
    .reap = uring_reap,
};
