/*
 * cattree: the storage libOS. A queue is a log file: demi_push appends one
 * record (all segments of the array) and completes once the record is
 * durable; demi_pop reads the next durable record from the queue's read
 * cursor, and returns an empty array at the end of the log. It shares the
 * runtime of the thread's network libOS: its queues live in the same qd
 * table, its operations are tasks of the same scheduler, its fast-path
 * task runs in the same passes, so one wait covers sockets and logs.
 *
 * Data path (format.h has the layout): a push plans its record at once
 * (payload CRC32C, references on the application's heap buffers, a copy
 * only where the device forces one), then the fast-path task places it
 * (record number, offset, header), queues its writes, and submits once per
 * pass for every push of that pass. Writes of many records fly together;
 * when the oldest ones have all landed, one flush (fdatasync) makes all of
 * them durable: group commit, with no batching delay. Pushes complete in
 * order, after the flush that covered them.
 *
 * Zero copy: a payload segment whose heap address is aligned for O_DIRECT
 * goes to the device from the application's own buffer, its whole aligned
 * length. Copied into a staging block (heap memory too, so registered):
 * the record header; a payload that fits in the header's block; a
 * segment's unaligned tail and, under O_DIRECT, every byte after it
 * (on-disk offsets are aligned, so nothing after an unaligned point can
 * be written in place); memory that is not from the heap. With buffered
 * I/O (file systems without O_DIRECT) nothing needs alignment and only
 * headers, padding and non-heap memory are staged.
 *
 * Crash safety: a record is acknowledged only after the flush that covers
 * it, and writes in flight stay within LOGFMT_INFLIGHT_MAX of the durable
 * end (format.h). Opening a log scans it (logscan.c) and keeps the longest
 * valid prefix; a torn record ends it, is reported, and the rest is
 * truncated (durably, before any new append). Damage that a crash cannot
 * explain, with valid records after it, is not cut: the open fails with
 * EUCLEAN unless the caller asks for DEMI_O_REPAIR. A failed write
 * (ENOSPC, EIO) fails that record and every later one already written,
 * waits for the writes in flight, then truncates the log back to the
 * failed record (durably) and goes on; a failed flush ends the log for
 * writing (EIO): after fdatasync fails, what is on the device is unknown.
 *
 * This file must never block on the data path: the only blocking calls are
 * in demi_open (scan, header), in recovery after a failed write, and in
 * destroy.
 */
#include "core/common.h"
#include "core/log.h"
#include "libos/cattree/crc32c.h"
#include "libos/cattree/format.h"
#include "libos/cattree/logscan.h"
#include "libos/cattree/stor.h"
#include "libos/libos.h"
#include "mem/sga.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TREE_SCAN_WINDOW  (4u << 20)
#define TREE_PREALLOC_MIN (16ull << 20)
#define TREE_PREALLOC_MAX (64ull << 20)
#define TREE_REAP         64
#define TREE_YIELD_NS     20000 /* see poll_task */

enum { IO_WRITE = 1, IO_READ, IO_FLUSH, IO_ALLOC };
enum { OP_PUSH = 1, OP_POP };

struct tree_io {
    uint8_t kind;
    uint32_t len;
    uint32_t done; /* bytes already transferred (a short transfer is resumed) */
    uint64_t off;  /* file offset; relative to the record until it is placed */
    uint8_t *buf;
    void *owner; /* struct tree_op, or the log for IO_FLUSH and IO_ALLOC */
    struct tree_io *retry_next;
};

/* One push (a record write) or one pop (a record read). */
struct tree_op {
    struct tree_op *prev, *next;
    struct tree_log *log;
    struct sched_task *t; /* NULL once the task has its result */
    bool write;
    bool placed;    /* writes: number, offset and header assigned */
    bool read_done; /* pops: every read is back, the result waits its turn */
    uint64_t seq, off, disk_len;
    uint32_t len, data_crc;
    uint8_t *hdr; /* the record's first block (header) */
    uint32_t nio, nissued, ndone, inflight;
    int err;
    uint32_t nblk;
    struct heap_blk **blk; /* references this op holds */
    struct tree_io *io;
};

struct op_list {
    struct tree_op *head, *tail;
};

struct tree_log {
    struct cattree *ct;
    struct tree_log *prev, *next;
    struct stor_file *f;
    char *path;
    bool rdonly, closed;
    bool repair;         /* DEMI_O_REPAIR: may drop valid records after damage */
    uint32_t align;      /* record alignment, from the file header */
    uint64_t mem_mask;   /* direct I/O: buffer addresses must clear these bits */
    uint32_t len_mask;   /* direct I/O: lengths must clear these bits */
    uint32_t stage_unit; /* smallest staging block: aligned for direct I/O */
    int dead;            /* errno that ended writing (a failed flush), or 0 */

    /* Records [0, next_seq) are placed; [0, durable_seq) are durable,
     * and end at durable_off. */
    uint64_t end_off, next_seq, durable_seq, durable_off;
    uint32_t *lens; /* payload length of every placed record */
    uint64_t lens_cap;
    uint32_t nunplaced;
    uint64_t unplaced_bytes;

    /* Preallocation: the file is extended ahead of the appends, so that
     * writes land inside it on reserved blocks (see maybe_prealloc). */
    uint64_t alloc_end;
    bool allocating, alloc_failed;
    uint64_t alloc_target;
    struct tree_io alloc_io;

    struct op_list wr;            /* pushes in order, oldest first */
    struct tree_op *wr_issue;     /* first push with unissued writes */
    struct tree_op *wr_unwritten; /* first push not known to be written */
    bool failing;                 /* a write failed: recovering */
    uint64_t fail_seq, fail_off;
    int fail_err;
    bool flushing;
    uint64_t flush_target, flush_target_off;
    struct tree_io flush_io;

    struct op_list rd; /* pops in flight */
    struct tree_op *rd_issue;
    uint64_t pop_seq, pop_off; /* the read cursor */

    struct tree_io *retry; /* short transfers to resume */
    uint32_t inflight;     /* this log's operations in the device */
};

struct cattree {
    struct libos base;
    const struct stor_ops *ops;
    struct stor_dev *dev;
    struct sched_task *poller;
    struct tree_log *logs; /* open logs, and closed ones whose I/O is in flight */
    uint64_t outstanding;  /* live ops and closing logs: the fast path has work */
    bool blocking;         /* holds one rt->idle_blockers */
    struct heap_blk *zeros;
    uint8_t *zero;
    uint64_t quiet_since;      /* rt->now of the last completion seen */
    uint64_t seen_completions; /* the scheduler's completion count then */
    /* demi_get_stats: records made durable and their payload bytes, the
     * flushes that made them so, and the records found by open's scan. */
    uint64_t st_appends, st_append_bytes, st_flushes, st_replayed;
    struct stor_cqe cqe[TREE_REAP];
};

static inline struct cattree *tree_of(struct libos *l)
{
    return (struct cattree *)l;
}

static struct heap *heap_of(struct cattree *ct)
{
    return ct->base.rt->heap;
}

static struct sched *sched_of(struct cattree *ct)
{
    return &ct->base.rt->sched;
}

static uint64_t round_up(uint64_t n, uint64_t a)
{
    return (n + a - 1) & ~(a - 1);
}

/* Lists. */

static void list_push(struct op_list *l, struct tree_op *op)
{
    op->next = NULL;
    op->prev = l->tail;
    if (l->tail)
        l->tail->next = op;
    else
        l->head = op;
    l->tail = op;
}

static void list_remove(struct op_list *l, struct tree_op *op)
{
    if (op->prev)
        op->prev->next = op->next;
    else
        l->head = op->next;
    if (op->next)
        op->next->prev = op->prev;
    else
        l->tail = op->prev;
    op->prev = op->next = NULL;
}

/* The wait loop must not sleep in another libOS's idle hook (catnap's
 * epoll) while storage work is pending: completions arrive in the ring,
 * not as epoll events. */
static void update_blocking(struct cattree *ct)
{
    bool busy = ct->outstanding > 0;
    if (busy != ct->blocking) {
        ct->blocking = busy;
        ct->base.rt->idle_blockers += busy ? 1 : -1;
    }
}

/* Ops. */

static struct tree_op *op_new(struct tree_log *log, bool write, uint32_t maxio, uint32_t maxblk)
{
    size_t sz = sizeof(struct tree_op) + maxio * sizeof(struct tree_io) + maxblk * sizeof(struct heap_blk *);
    struct tree_op *op = calloc(1, sz);
    if (!op)
        return NULL;
    op->io = (struct tree_io *)(op + 1);
    op->blk = (struct heap_blk **)(op->io + maxio);
    op->log = log;
    op->write = write;
    log->ct->outstanding++;
    return op;
}

static void op_free(struct cattree *ct, struct tree_op *op)
{
    for (uint32_t i = 0; i < op->nblk; i++)
        if (op->blk[i])
            heap_unref(heap_of(ct), op->blk[i]);
    ct->outstanding--;
    free(op);
}

static void op_add_io(struct tree_op *op, uint8_t kind, uint8_t *buf, uint32_t len, uint64_t off)
{
    struct tree_io *io = &op->io[op->nio++];
    io->kind = kind;
    io->buf = buf;
    io->len = len;
    io->done = 0;
    io->off = off;
    io->owner = op;
}

/* Adds I/Os for [buf, buf + len) at file offset @off, split so that none
 * crosses a heap chunk (one registered buffer each). Under O_DIRECT @buf is
 * aligned to the record alignment, so every piece stays aligned. */
static void op_add_split(struct tree_op *op, uint8_t kind, uint8_t *buf, uint64_t len, uint64_t off)
{
    while (len) {
        uint64_t room = STOR_SPLIT - ((uintptr_t)buf & (STOR_SPLIT - 1));
        uint32_t n = (uint32_t)(len < room ? len : room);
        op_add_io(op, kind, buf, n, off);
        buf += n;
        off += n;
        len -= n;
    }
}

/* A staging block of at least @n bytes, aligned for direct I/O: heap blocks
 * are aligned to their size class, so asking for stage_unit or more is enough. */
static struct heap_blk *stage_alloc(struct tree_log *log, uint64_t n)
{
    return heap_alloc(heap_of(log->ct), n < log->stage_unit ? log->stage_unit : n);
}

static void task_done(struct cattree *ct, struct tree_op *op, demi_opcode_t opc)
{
    struct sched_task *t = op->t;
    op->t = NULL;
    t->qr.qr_opcode = opc;
    t->qr.qr_ret = 0;
    sched_complete(sched_of(ct), t);
}

static void task_fail(struct cattree *ct, struct tree_op *op, int err)
{
    struct sched_task *t = op->t;
    op->t = NULL;
    if (t)
        sched_fail(sched_of(ct), t, err);
}

/* Push tasks are completed from the fast path, never polled. */
static int never_polled(struct sched *s, struct sched_task *t)
{
    (void)s;
    (void)t;
    return SCHED_PENDING;
}

/* Planning a record write (at push time). */

struct stage_run {
    uint32_t n;
    uint64_t bytes;
    const uint8_t *src[2 * DEMI_SGARRAY_MAXSIZE];
    uint64_t len[2 * DEMI_SGARRAY_MAXSIZE];
};

/* Copies the staged run into one staging block at relative offset *@pos;
 * @final pads the record to its alignment. */
static int flush_run(struct tree_log *log, struct tree_op *op, struct stage_run *run, uint64_t *pos, bool final)
{
    uint64_t size = run->bytes;
    if (final)
        size = round_up(*pos + run->bytes, log->align) - *pos;
    if (size == 0)
        return 0;
    if (run->bytes == 0) { /* only padding (buffered I/O): shared zeros */
        op_add_io(op, IO_WRITE, log->ct->zero, (uint32_t)size, *pos);
        *pos += size;
        return 0;
    }
    struct heap_blk *b = stage_alloc(log, size);
    if (!b)
        return ENOMEM;
    op->blk[op->nblk++] = b;
    uint8_t *p = heap_blk_data(heap_of(log->ct), b);
    for (uint32_t i = 0; i < run->n; i++) {
        memcpy(p, run->src[i], run->len[i]);
        p += run->len[i];
    }
    memset(p, 0, size - run->bytes); /* padding is zero, never stale heap bytes */
    op_add_split(op, IO_WRITE, heap_blk_data(heap_of(log->ct), b), size, *pos);
    *pos += size;
    run->n = 0;
    run->bytes = 0;
    return 0;
}

static int plan_write(struct tree_log *log, const demi_sgarray_t *sga, uint32_t len, struct tree_op **out)
{
    struct cattree *ct = log->ct;
    struct heap *h = heap_of(ct);
    uint32_t maxio = 3 + (uint32_t)(2 * ((uint64_t)len / STOR_SPLIT + 2));
    for (uint32_t i = 0; i < sga->sga_numsegs; i++)
        maxio += sga->sga_segs[i].sgaseg_len / STOR_SPLIT + 2;
    struct tree_op *op = op_new(log, true, maxio, 2 * sga->sga_numsegs + 2);
    if (!op)
        return ENOMEM;
    op->len = len;
    op->disk_len = logfmt_rec_size(len, log->align);
    for (uint32_t i = 0; i < sga->sga_numsegs; i++)
        op->data_crc = crc32c(op->data_crc, sga->sga_segs[i].sgaseg_buf, sga->sga_segs[i].sgaseg_len);

    struct heap_blk *hb = stage_alloc(log, log->align);
    if (!hb)
        goto nomem;
    op->blk[op->nblk++] = hb;
    op->hdr = heap_blk_data(h, hb);
    memset(op->hdr, 0, log->align);
    op_add_io(op, IO_WRITE, op->hdr, log->align, 0);

    if (logfmt_packed(len, log->align)) {
        /* The payload shares the header's block: a copy of at most
         * align - 32 bytes saves a block and a write. */
        uint8_t *p = op->hdr + LOGFMT_REC_HDR;
        for (uint32_t i = 0; i < sga->sga_numsegs; i++) {
            memcpy(p, sga->sga_segs[i].sgaseg_buf, sga->sga_segs[i].sgaseg_len);
            p += sga->sga_segs[i].sgaseg_len;
        }
        *out = op;
        return 0;
    }

    bool direct = log->len_mask != 0;
    bool staging = false; /* direct I/O: everything after an unaligned point is copied */
    struct stage_run run = {0};
    uint64_t pos = log->align;
    for (uint32_t i = 0; i < sga->sga_numsegs; i++) {
        uint8_t *buf = sga->sga_segs[i].sgaseg_buf;
        uint32_t n = sga->sga_segs[i].sgaseg_len;
        if (n == 0)
            continue;
        struct heap_blk *b = heap_find(h, buf, n);
        uint32_t inplace = 0;
        if (!staging && b && ((uintptr_t)buf & log->mem_mask) == 0)
            inplace = n & ~log->len_mask;
        if (inplace) {
            if (flush_run(log, op, &run, &pos, false))
                goto nomem;
            /* Zero copy: the device reads the application's buffer, which
             * this reference keeps alive until the write is done. */
            heap_ref(b);
            op->blk[op->nblk++] = b;
            op_add_split(op, IO_WRITE, buf, inplace, pos);
            pos += inplace;
        }
        if (inplace < n) {
            run.src[run.n] = buf + inplace;
            run.len[run.n++] = n - inplace;
            run.bytes += n - inplace;
            staging = direct;
        }
    }
    if (flush_run(log, op, &run, &pos, true))
        goto nomem;
    *out = op;
    return 0;
nomem:
    op_free(ct, op);
    return ENOMEM;
}

/* Gives a planned push its record number and offset, and writes its header. */
static void place(struct tree_log *log, struct tree_op *op)
{
    op->seq = log->next_seq++;
    op->off = log->end_off;
    log->end_off += op->disk_len;
    log->lens[op->seq] = op->len; /* room was reserved at push time */
    log->nunplaced--;
    log->unplaced_bytes -= op->disk_len;
    struct logfmt_rec r = {
        .seq = op->seq, .len = op->len, .data_crc = op->data_crc, .data_off = logfmt_data_off(op->len, log->align)};
    logfmt_rec_hdr_encode(op->hdr, &r);
    for (uint32_t i = 0; i < op->nio; i++)
        op->io[i].off += op->off;
    op->placed = true;
}

/* Issuing. */

static bool issue_io(struct tree_log *log, struct tree_io *io)
{
    struct cattree *ct = log->ct;
    int e;
    uint8_t *buf = io->buf + io->done;
    uint32_t len = io->len - io->done;
    uint64_t off = io->off + io->done;
    if (io->kind == IO_WRITE)
        e = ct->ops->write(log->f, buf, len, off, io);
    else
        e = ct->ops->read(log->f, buf, len, off, io);
    if (e)
        return false; /* EAGAIN: the device queue is full; next pass */
    ((struct tree_op *)io->owner)->inflight++;
    log->inflight++;
    return true;
}

/* Issues what an op has left; false when the device queue filled up. */
static bool issue_op(struct tree_log *log, struct tree_op *op)
{
    while (op->nissued < op->nio) {
        if (!issue_io(log, &op->io[op->nissued]))
            return false;
        op->nissued++;
    }
    return true;
}

/* Records [0, result) are all written; they end at *@off. */
static uint64_t written_seq(struct tree_log *log, uint64_t *off)
{
    struct tree_op *op;
    while ((op = log->wr_unwritten) && op->placed && op->ndone == op->nio && !op->err)
        log->wr_unwritten = op->next;
    *off = op && op->placed ? op->off : log->end_off;
    return op && op->placed ? op->seq : log->next_seq;
}

static void maybe_flush(struct tree_log *log)
{
    struct cattree *ct = log->ct;
    if (log->flushing || log->dead)
        return;
    uint64_t w_off;
    uint64_t w = written_seq(log, &w_off);
    if (w <= log->durable_seq)
        return;
    /* Ordering: the flush is queued only after the writes of records
     * [durable_seq, w) have completed, so it covers all of them; writes
     * still in flight are left to the next flush. */
    log->flush_io.kind = IO_FLUSH;
    log->flush_io.owner = log;
    if (ct->ops->flush(log->f, &log->flush_io) == 0) {
        log->flushing = true;
        log->flush_target = w;
        log->flush_target_off = w_off;
        log->inflight++;
    }
}

/* Keeps the file's size ahead of the appends. On ext4 and XFS a direct
 * write that extends the file, or that covers a reserved block only in
 * part, takes the inode lock exclusively and leaves io_uring's fast path
 * for a worker thread; block-aligned writes inside the file run in
 * parallel, at once. The reserved tail reads as zeros: the scan at open
 * ends there and cuts it. */
static void maybe_prealloc(struct tree_log *log)
{
    struct cattree *ct = log->ct;
    if (log->allocating || log->alloc_failed || log->failing)
        return;
    uint64_t want = log->end_off + log->unplaced_bytes;
    uint64_t step = log->end_off / 8;
    step = step < TREE_PREALLOC_MIN ? TREE_PREALLOC_MIN : step > TREE_PREALLOC_MAX ? TREE_PREALLOC_MAX : step;
    if (log->alloc_end >= want + step / 2)
        return;
    uint64_t target = round_up(want + step, log->align);
    log->alloc_io.kind = IO_ALLOC;
    log->alloc_io.owner = log;
    if (ct->ops->allocate(log->f, log->alloc_end, target - log->alloc_end, &log->alloc_io) == 0) {
        log->allocating = true;
        log->alloc_target = target;
        log->inflight++;
    }
}

static void on_alloc(struct tree_log *log, int32_t res)
{
    log->allocating = false;
    if (res == 0) {
        log->alloc_end = log->alloc_target;
        return;
    }
    /* ENOSPC, or a file system without fallocate: appends extend the file
     * (slower, still correct) until a rewind frees space. */
    log->alloc_failed = true;
    log_once(LOGL_INFO, "cattree: %s: cannot preallocate (%s); appends extend the file", log->path, strerror(-res));
}

static void log_issue(struct tree_log *log)
{
    while (log->retry) {
        if (!issue_io(log, log->retry))
            return;
        log->retry = log->retry->retry_next;
    }
    if (!log->dead) {
        maybe_prealloc(log);
        struct tree_op *op;
        while ((op = log->wr_issue)) {
            if (!op->placed) {
                if (log->failing)
                    break; /* nothing new lands until the log is rewound */
                /* The writer's promise of format.h: writes in flight stay
                 * within LOGFMT_INFLIGHT_MAX of the durable end, so that a
                 * crash cannot leave a valid record farther than that
                 * after a torn one. The flush under way makes room. */
                uint64_t ahead = log->end_off - log->durable_off;
                if (ahead && ahead + op->disk_len > LOGFMT_INFLIGHT_MAX)
                    break;
                place(log, op);
            } else if (log->failing && op->seq >= log->fail_seq) {
                break;
            }
            if (!issue_op(log, op))
                return;
            log->wr_issue = op->next;
        }
    }
    struct tree_op *op;
    while ((op = log->rd_issue)) {
        if (!issue_op(log, op))
            return;
        log->rd_issue = op->next;
    }
    maybe_flush(log);
}

/* Failure and recovery. */

/* Fails every push of the log with @err (a failed flush): from now on it
 * only reads. Ops still in the device are freed as their I/O comes back. */
static void log_die(struct tree_log *log, int err)
{
    struct cattree *ct = log->ct;
    log_error("cattree: %s: flush failed (%s); the log no longer accepts pushes", log->path, strerror(err));
    log->dead = err;
    log->failing = false;
    struct tree_op *op = log->wr.head;
    while (op) {
        struct tree_op *next = op->next;
        task_fail(ct, op, err);
        if (!op->inflight) {
            list_remove(&log->wr, op);
            op_free(ct, op);
        }
        op = next;
    }
    log->wr_issue = log->wr_unwritten = NULL;
    log->nunplaced = 0;
    log->unplaced_bytes = 0;
    /* Writes waiting to be resumed will never be: drop them. */
    struct tree_io **pp = &log->retry;
    while (*pp) {
        if ((*pp)->kind == IO_WRITE)
            *pp = (*pp)->retry_next;
        else
            pp = &(*pp)->retry_next;
    }
}

/* Everything before the failed record is durable and nothing is in
 * flight: fail the records from it on, and cut the file back. */
static void log_rewind(struct tree_log *log)
{
    struct cattree *ct = log->ct;
    struct tree_op *op;
    while ((op = log->wr.head) && op->placed) {
        list_remove(&log->wr, op);
        task_fail(ct, op, op->err ? op->err : log->fail_err);
        op_free(ct, op);
    }
    /* Ordering: the truncation must be durable before a new record is
     * written where the failed ones were; otherwise, after a crash, a
     * failed record's intact tail could follow a new record and read as
     * the next one. Blocking here is confined to this error path. */
    int e = ct->ops->truncate_sync(log->f, log->fail_off);
    if (!e)
        e = ct->ops->flush_sync(log->f);
    if (e) {
        log_die(log, e);
        return;
    }
    log_warn("cattree: %s: append of record %llu failed (%s); the log is back to %llu records", log->path,
             (unsigned long long)log->fail_seq, strerror(log->fail_err), (unsigned long long)log->fail_seq);
    log->end_off = log->fail_off;
    log->durable_off = log->fail_off; /* the rewind waited for durable_seq == fail_seq */
    log->alloc_end = log->fail_off;
    log->alloc_failed = false; /* the cut may have freed space */
    log->next_seq = log->fail_seq;
    log->failing = false;
    log->wr_issue = log->wr_unwritten = log->wr.head;
}

/* Completions. */

static void pop_finish(struct tree_log *log, struct tree_op *op);

static void log_free(struct tree_log *log)
{
    struct cattree *ct = log->ct;
    struct tree_op *op;
    while ((op = log->wr.head)) {
        list_remove(&log->wr, op);
        op_free(ct, op);
    }
    while ((op = log->rd.head)) {
        list_remove(&log->rd, op);
        op_free(ct, op);
    }
    if (log->prev)
        log->prev->next = log->next;
    else
        ct->logs = log->next;
    if (log->next)
        log->next->prev = log->prev;
    if (log->closed)
        ct->outstanding--;
    ct->ops->close(log->f);
    free(log->lens);
    free(log->path);
    free(log);
}

static void on_flush(struct tree_log *log, int32_t res)
{
    struct cattree *ct = log->ct;
    log->flushing = false;
    if (log->closed)
        return;
    if (res < 0) {
        log_die(log, -res);
        return;
    }
    /* Every record below the target was written before the flush began. */
    log->durable_seq = log->flush_target;
    log->durable_off = log->flush_target_off;
    ct->st_flushes++;
    struct tree_op *op;
    while ((op = log->wr.head) && op->placed && op->seq < log->durable_seq) {
        list_remove(&log->wr, op);
        ct->st_appends++;
        ct->st_append_bytes += op->len;
        if (op->t)
            task_done(ct, op, DEMI_OPC_PUSH);
        op_free(ct, op);
    }
}

static void on_io(struct tree_log *log, struct tree_io *io, int32_t res)
{
    struct cattree *ct = log->ct;
    struct tree_op *op = io->owner;
    op->inflight--;
    bool finished = true;
    if (res == -EAGAIN || res == -EINTR) {
        finished = false;
    } else if (res < 0) {
        if (!op->err)
            op->err = -res;
    } else {
        io->done += (uint32_t)res;
        if (io->done < io->len) {
            if (res == 0) /* no progress: the end of the file, or a full device */
                op->err = op->err ? op->err : (io->kind == IO_WRITE ? ENOSPC : EIO);
            else
                finished = false;
        }
    }
    if (!finished && !log->closed && !(log->dead && op->write)) {
        io->retry_next = log->retry; /* resume the rest on the next pass */
        log->retry = io;
        return;
    }
    op->ndone++;
    if (log->closed || (op->write && log->dead)) {
        /* Cancelled: free once the device is done with its buffers. */
        if (!op->inflight && (log->closed || !op->t)) {
            list_remove(op->write ? &log->wr : &log->rd, op);
            op_free(ct, op);
        }
        return;
    }
    if (op->ndone < op->nio)
        return;
    if (!op->write) {
        pop_finish(log, op);
        return;
    }
    if (op->err && (!log->failing || op->seq < log->fail_seq)) {
        if (!log->failing)
            log->fail_err = op->err;
        log->failing = true;
        log->fail_seq = op->seq;
        log->fail_off = op->off;
    }
}

static void on_cqe(const struct stor_cqe *c)
{
    struct tree_io *io = c->cookie;
    bool own = io->kind == IO_FLUSH || io->kind == IO_ALLOC;
    struct tree_log *log = own ? io->owner : ((struct tree_op *)io->owner)->log;
    log->inflight--;
    if (io->kind == IO_FLUSH)
        on_flush(log, c->res);
    else if (io->kind == IO_ALLOC)
        on_alloc(log, c->res);
    else
        on_io(log, io, c->res);
    if (log->closed && !log->inflight)
        log_free(log);
}

static bool reap_all(struct cattree *ct)
{
    unsigned n;
    bool any = false;
    while ((n = ct->ops->reap(ct->dev, ct->cqe, TREE_REAP))) {
        for (unsigned i = 0; i < n; i++)
            on_cqe(&ct->cqe[i]);
        any = true;
    }
    if (any)
        ct->base.rt->activity++;
    return any;
}

/* The fast-path task: reap completions (no system call), recover, queue
 * new I/O, and submit everything this pass produced in one call. */
static int poll_task(struct sched *s, struct sched_task *t)
{
    (void)s;
    struct cattree *ct = t->owner;
    if (!ct->outstanding)
        return SCHED_YIELD;
    struct runtime *rt = ct->base.rt;
    if (reap_all(ct) || !ct->quiet_since) {
        ct->quiet_since = rt->now;
    } else if (rt->now - ct->quiet_since > TREE_YIELD_NS && rt->sched.completions == ct->seen_completions) {
        /* Nothing has completed for a while and nothing else in this
         * runtime is making progress: give the CPU away for a moment.
         * The kernel finishes some of our I/O in threads (the file
         * system's completion work, io_uring's workers for fdatasync);
         * one of them may be queued on this very CPU behind our
         * polling, and would otherwise wait for the next tick. */
        sched_yield();
        ct->quiet_since = rt->now;
    }
    ct->seen_completions = rt->sched.completions;
    for (struct tree_log *log = ct->logs; log; log = log->next) {
        if (log->closed)
            continue;
        if (log->failing && !log->inflight && log->durable_seq >= log->fail_seq)
            log_rewind(log);
        log_issue(log);
    }
    int e = ct->ops->submit(ct->dev);
    if (e)
        log_once(LOGL_ERROR, "cattree: submitting I/O failed: %s (retrying)", strerror(e));
    update_blocking(ct);
    return SCHED_YIELD;
}

/* Pop. */

static void pop_result(struct tree_log *log, struct tree_op *op);

/* A pop's reads are all back. Pops complete in the order they were made
 * (as on every queue), so one that finishes early waits for those before. */
static void pop_finish(struct tree_log *log, struct tree_op *op)
{
    op->read_done = true;
    struct tree_op *head;
    while ((head = log->rd.head) && head->read_done)
        pop_result(log, head);
}

static void pop_result(struct tree_log *log, struct tree_op *op)
{
    struct cattree *ct = log->ct;
    struct heap *h = heap_of(ct);
    list_remove(&log->rd, op);
    int err = op->err;
    const char *why = NULL;
    if (!err) {
        struct logfmt_rec r;
        if (logfmt_rec_hdr_decode(op->hdr, op->seq, log->align, &r, &why) == 0 && r.len != op->len)
            why = "record length changed";
        if (!why) {
            uint32_t crc;
            if (logfmt_packed(op->len, log->align)) {
                crc = crc32c(0, op->hdr + LOGFMT_REC_HDR, op->len);
            } else {
                crc = 0;
                uint64_t left = op->len;
                for (uint32_t i = 1; i < op->nblk; i++) {
                    uint64_t k = left < MEM_SEG_MAX ? left : MEM_SEG_MAX;
                    crc = crc32c(crc, heap_blk_data(h, op->blk[i]), k);
                    left -= k;
                }
            }
            if (crc != r.data_crc)
                why = "payload checksum mismatch";
        }
        if (why) {
            log_warn("cattree: %s: record %llu at offset %llu: %s (it changed on disk after it was written)", log->path,
                     (unsigned long long)op->seq, (unsigned long long)op->off, why);
            err = EBADMSG;
        }
    }
    if (err) {
        task_fail(ct, op, err);
        op_free(ct, op);
        return;
    }
    demi_sgarray_t *sga = &op->t->qr.qr_value.sga;
    mem_sga_begin(h, sga);
    if (logfmt_packed(op->len, log->align)) {
        struct heap_blk *b = heap_alloc(h, op->len);
        if (!b) {
            task_fail(ct, op, ENOMEM);
            op_free(ct, op);
            return;
        }
        memcpy(heap_blk_data(h, b), op->hdr + LOGFMT_REC_HDR, op->len);
        mem_sga_add(h, sga, b, heap_blk_data(h, b), op->len);
    } else {
        /* Zero copy: the blocks the device read into become the array;
         * their references pass to the application. */
        uint64_t left = op->len;
        for (uint32_t i = 1; i < op->nblk; i++) {
            uint32_t k = (uint32_t)(left < MEM_SEG_MAX ? left : MEM_SEG_MAX);
            mem_sga_add(h, sga, op->blk[i], heap_blk_data(h, op->blk[i]), k);
            op->blk[i] = NULL;
            left -= k;
        }
    }
    task_done(ct, op, DEMI_OPC_POP);
    op_free(ct, op);
}

static int tree_pop(struct libos *l, void *q, struct sched_task *t)
{
    struct cattree *ct = tree_of(l);
    struct tree_log *log = q;
    t->owner = NULL;
    t->kind = OP_POP;
    t->poll = never_polled;
    if (log->pop_seq >= log->durable_seq) {
        /* The end of the log: an empty array, at once. */
        memset(&t->qr.qr_value.sga, 0, sizeof(t->qr.qr_value.sga));
        t->qr.qr_opcode = DEMI_OPC_POP;
        t->qr.qr_ret = 0;
        sched_complete(sched_of(ct), t);
        return 0;
    }
    uint32_t len = log->lens[log->pop_seq];
    uint32_t nseg = (uint32_t)((len + MEM_SEG_MAX - 1) / MEM_SEG_MAX);
    uint32_t maxio = 1 + nseg * (uint32_t)(MEM_SEG_MAX / STOR_SPLIT + 1);
    struct tree_op *op = op_new(log, false, maxio, 1 + nseg);
    if (!op)
        return ENOMEM;
    op->seq = log->pop_seq;
    op->off = log->pop_off;
    op->len = len;
    struct heap_blk *hb = stage_alloc(log, log->align);
    if (!hb)
        goto nomem;
    op->blk[op->nblk++] = hb;
    op->hdr = heap_blk_data(heap_of(ct), hb);
    op_add_io(op, IO_READ, op->hdr, log->align, op->off);
    if (!logfmt_packed(len, log->align)) {
        /* The payload is read straight into the blocks the application
         * will get, each at most 16 MiB (one array segment). */
        uint64_t left = len, off = op->off + log->align;
        while (left) {
            uint64_t k = left < MEM_SEG_MAX ? left : MEM_SEG_MAX;
            uint64_t io_len = round_up(k, log->align);
            struct heap_blk *b = stage_alloc(log, io_len);
            if (!b)
                goto nomem;
            op->blk[op->nblk++] = b;
            op_add_split(op, IO_READ, heap_blk_data(heap_of(ct), b), io_len, off);
            off += io_len;
            left -= k;
        }
    }
    op->t = t;
    t->owner = op;
    list_push(&log->rd, op);
    if (!log->rd_issue)
        log->rd_issue = op;
    log->pop_off += logfmt_rec_size(len, log->align);
    log->pop_seq++;
    update_blocking(ct);
    return 0;
nomem:
    op_free(ct, op);
    return ENOMEM;
}

/* Push. */

static int tree_push(struct libos *l, void *q, const demi_sgarray_t *sga, const struct sockaddr_in *to,
                     struct sched_task *t)
{
    struct cattree *ct = tree_of(l);
    struct tree_log *log = q;
    if (to)
        return ENOTSOCK; /* demi_pushto: a log has no addresses */
    if (log->rdonly)
        return EBADF;
    if (log->dead)
        return log->dead;
    int64_t len = mem_sga_len(sga);
    if (len > (int64_t)LOGFMT_MAX_RECORD)
        return EMSGSIZE;
    /* Reserve the record's slot in the length index now, so that placing
     * it later cannot fail. */
    uint64_t need = log->next_seq + log->nunplaced + 1;
    if (need > log->lens_cap) {
        uint64_t cap = log->lens_cap ? log->lens_cap * 2 : 1024;
        while (cap < need)
            cap *= 2;
        uint32_t *lens = realloc(log->lens, cap * sizeof(*lens));
        if (!lens)
            return ENOMEM;
        log->lens = lens;
        log->lens_cap = cap;
    }
    struct tree_op *op;
    int e = plan_write(log, sga, (uint32_t)len, &op);
    if (e)
        return e;
    op->t = t;
    t->owner = op;
    t->kind = OP_PUSH;
    t->poll = never_polled;
    sched_copy_sga(&t->qr.qr_value.sga, sga); /* the result reports the pushed array */
    list_push(&log->wr, op);
    log->nunplaced++;
    log->unplaced_bytes += op->disk_len;
    if (!log->wr_issue)
        log->wr_issue = op;
    if (!log->wr_unwritten)
        log->wr_unwritten = op;
    update_blocking(ct);
    return 0;
}

/* Open: header, scan, recovery. */

static int lens_push(struct tree_log *log, uint32_t len)
{
    if (log->next_seq == log->lens_cap) {
        uint64_t cap = log->lens_cap ? log->lens_cap * 2 : 1024;
        uint32_t *lens = realloc(log->lens, cap * sizeof(*lens));
        if (!lens)
            return ENOMEM;
        log->lens = lens;
        log->lens_cap = cap;
    }
    log->lens[log->next_seq++] = len;
    return 0;
}

static int scan_read(void *ctx, void *buf, size_t len, uint64_t off, size_t *got)
{
    struct tree_log *log = ctx;
    return log->ct->ops->read_sync(log->f, buf, len, off, got);
}

static int scan_record(void *ctx, uint32_t len)
{
    return lens_push(ctx, len);
}

/* Finds the end of the log (logscan.h) and decides what happens to what
 * lies after it:
 *  - nothing valid after the damage: a torn tail (a crash) or preallocated
 *    space; cut (O_RDWR), with a warning unless it is only zeros;
 *  - valid records after damage that a crash can leave (writes in flight
 *    land in any order, format.h): the same, the warning counts them;
 *  - valid records after damage no crash leaves (changed bytes, or farther
 *    than the writes in flight reach): the log is corrupt in the middle.
 *    The open fails with EUCLEAN and touches nothing, unless the caller
 *    asked for DEMI_O_REPAIR: then the log is the records before the
 *    damage, and the others are dropped, saying how many. */
static int scan(struct tree_log *log, uint64_t size)
{
    struct logscan s = {
        .size = size,
        .align = log->align,
        .far = LOGFMT_INFLIGHT_MAX,
        .buf = aligned_alloc(LOGFMT_MAX_ALIGN, TREE_SCAN_WINDOW),
        .buf_len = TREE_SCAN_WINDOW,
        .ctx = log,
        .read = scan_read,
        .on_record = scan_record,
    };
    if (!s.buf)
        return ENOMEM;
    int e = logscan_run(&s);
    free(s.buf);
    if (e)
        return e;
    uint64_t off = s.end, cut = size > off ? size - off : 0;
    log->end_off = off;
    log->durable_off = off;
    log->durable_seq = log->next_seq;
    log->alloc_end = off;
    if (!cut)
        return 0;
    unsigned long long n = (unsigned long long)s.nrec, later = (unsigned long long)s.later;
    if (s.later && (!s.torn || s.later_far)) {
        if (!log->repair) {
            log_error("cattree: %s: corrupt in the middle: record %llu at offset %llu: %s, and %llu valid records "
                      "follow it (numbers %llu to %llu, the first at offset %llu); not opened, the file is unchanged "
                      "(DEMI_O_REPAIR keeps the %llu records before the damage and drops the rest)",
                      log->path, n, (unsigned long long)off, s.why, later, (unsigned long long)s.first_seq,
                      (unsigned long long)s.last_seq, (unsigned long long)s.first_off, n);
            return EUCLEAN;
        }
        log_warn("cattree: %s: repair: record %llu at offset %llu: %s; the log keeps its first %llu records and "
                 "%s %llu valid records after the damage (numbers %llu to %llu; %llu bytes from offset %llu)",
                 log->path, n, (unsigned long long)off, s.why, n,
                 log->rdonly ? "ignores (read-only: the file is unchanged)" : "has dropped", later,
                 (unsigned long long)s.first_seq, (unsigned long long)s.last_seq, (unsigned long long)cut,
                 (unsigned long long)off);
    } else if (s.later) {
        log_warn("cattree: %s: record %llu at offset %llu: %s; the log keeps its first %llu records (%llu bytes "
                 "from there %s, holding %llu valid records: writes in flight at a crash, never acknowledged)",
                 log->path, n, (unsigned long long)off, s.why, n, (unsigned long long)cut,
                 log->rdonly ? "ignored: opened read-only" : "cut", later);
    } else if (s.unused) {
        log_info("cattree: %s: %llu unused bytes after record %llu (preallocated, or appends that never landed)%s",
                 log->path, (unsigned long long)cut, n, log->rdonly ? "" : "; cut");
    } else {
        log_warn("cattree: %s: record %llu at offset %llu: %s; the log keeps its first %llu records (%llu bytes "
                 "from there %s)",
                 log->path, n, (unsigned long long)off, s.why, n, (unsigned long long)cut,
                 log->rdonly ? "ignored: opened read-only" : "cut");
    }
    if (log->rdonly)
        return 0;
    /* Ordering: the cut must be durable before anything is appended
     * after it (see log_rewind). */
    e = log->ct->ops->truncate_sync(log->f, off);
    return e ? e : log->ct->ops->flush_sync(log->f);
}

/* Reads the header, or writes a new one to an empty file. */
static int open_header(struct tree_log *log, struct stor_info *info)
{
    struct cattree *ct = log->ct;
    uint8_t *hdr = aligned_alloc(LOGFMT_MAX_ALIGN, LOGFMT_FILE_HDR);
    if (!hdr)
        return ENOMEM;
    size_t got = 0;
    int e = 0;
    if (info->size)
        e = ct->ops->read_sync(log->f, hdr, LOGFMT_FILE_HDR, 0, &got);
    if (e)
        goto out;
    if (info->size && info->size < LOGFMT_FILE_HDR) {
        log_error("cattree: %s: not a libdemi log: %llu bytes, shorter than a log's %u-byte header (O_TRUNC "
                  "starts a new log in its place)",
                  log->path, (unsigned long long)info->size, LOGFMT_FILE_HDR);
        e = EBADMSG;
        goto out;
    }
    if (got == LOGFMT_FILE_HDR && !logfmt_all_zero(hdr, got)) {
        const char *why;
        e = logfmt_file_hdr_decode(hdr, got, &log->align, &why);
        if (e)
            log_error("cattree: %s: %s", log->path, why);
        goto out;
    }
    if (info->size > LOGFMT_FILE_HDR) {
        /* A creation writes the header and sets the size to it before
         * anything else: a zeroed header with more after it is damage,
         * never a new log to write over the records. */
        log_error("cattree: %s: the %u-byte header is zeros but %llu bytes follow it: a log whose header was lost, "
                  "or not a log; not opened, the file is unchanged",
                  log->path, LOGFMT_FILE_HDR, (unsigned long long)(info->size - LOGFMT_FILE_HDR));
        e = EBADMSG;
        goto out;
    }
    /* Empty, or all zeros (a creation that crashed before its header was
     * durable): a new log. Records are aligned for the device's direct I/O and to
     * the file system's block, so that no write covers a block in part
     * (which ext4 and XFS serialise under an exclusive inode lock). */
    uint32_t a = info->direct ? MAX(info->dio_align, info->blksize) : LOGFMT_MIN_ALIGN;
    log->align = a < LOGFMT_MIN_ALIGN ? LOGFMT_MIN_ALIGN : a > LOGFMT_MAX_ALIGN ? LOGFMT_MAX_ALIGN : a;
    if (log->rdonly)
        goto out; /* an empty log, left as it is */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    logfmt_file_hdr_encode(hdr, log->align, (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec);
    /* Ordering: header, then size, then flush: a record is only ever
     * appended after a durable header. */
    e = ct->ops->write_sync(log->f, hdr, LOGFMT_FILE_HDR, 0);
    if (!e)
        e = ct->ops->truncate_sync(log->f, LOGFMT_FILE_HDR);
    if (!e)
        e = ct->ops->flush_sync(log->f);
    info->size = LOGFMT_FILE_HDR;
out:
    free(hdr);
    return e;
}

static bool reap_all(struct cattree *ct);

/* Logs closed with I/O still in flight keep their file (and its lock)
 * until the device gives their buffers back. An open that finds the lock
 * taken may be racing one of ours: let those finish first (control path:
 * this spins for as long as the device takes, at most a few seconds). */
static void drain_closed(struct cattree *ct)
{
    struct clock *clk = &ct->base.rt->clock;
    uint64_t deadline = clock_now(clk) + 10ull * 1000000000u;
    for (;;) {
        bool any = false;
        for (struct tree_log *log = ct->logs; log && !any; log = log->next)
            any = log->closed;
        if (!any || clock_now(clk) > deadline)
            return;
        ct->ops->submit(ct->dev);
        reap_all(ct);
    }
}

static int tree_open(struct libos *l, const char *path, int flags, mode_t mode, void **q_out)
{
    struct cattree *ct = tree_of(l);
    struct tree_log *log = calloc(1, sizeof(*log));
    if (!log)
        return ENOMEM;
    log->ct = ct;
    log->rdonly = (flags & O_ACCMODE) == O_RDONLY;
    log->repair = (flags & DEMI_O_REPAIR) != 0;
    log->path = strdup(path);
    if (!log->path) {
        free(log);
        return ENOMEM;
    }
    struct stor_info info;
    int oflags = flags & (O_ACCMODE | O_CREAT | O_EXCL);
    int e = ct->ops->open(ct->dev, path, oflags, mode, &log->f, &info);
    if (e == EBUSY) {
        drain_closed(ct);
        e = ct->ops->open(ct->dev, path, oflags, mode, &log->f, &info);
        if (e == EBUSY)
            log_error("cattree: %s: the log is open elsewhere (%s)", path,
                      log->rdonly ? "by a writer" : "one writer or any number of readers at a time");
    }
    if (e) {
        free(log->path);
        free(log);
        return e;
    }
    /* Truncation only once the lock is ours: never cut a log that another
     * writer holds. */
    if (flags & O_TRUNC) {
        e = ct->ops->truncate_sync(log->f, 0);
        info.size = 0;
    }
    if (!e)
        e = open_header(log, &info);
    if (!e && info.direct &&
        (log->align % info.dio_align != 0 || info.dio_align > LOGFMT_MAX_ALIGN || info.mem_align > LOGFMT_MAX_ALIGN)) {
        log_warn("cattree: %s: the device needs %u-byte direct I/O, the log is aligned to %u; using buffered I/O", path,
                 info.dio_align, log->align);
        e = ct->ops->set_buffered(log->f);
        info.direct = false;
    }
    if (!e) {
        uint32_t mem = info.direct ? MAX(info.mem_align, log->align) : 1;
        log->mem_mask = mem - 1;
        log->len_mask = info.direct ? log->align - 1 : 0;
        log->stage_unit = MAX(mem, log->align);
        log->pop_off = LOGFMT_FILE_HDR;
        e = scan(log, info.size);
    }
    if (e) {
        ct->ops->close(log->f);
        free(log->lens);
        free(log->path);
        free(log);
        return e;
    }
    if (!log->rdonly) {
        /* The first stretch synchronously, the rest ahead of the appends. */
        uint64_t step = TREE_PREALLOC_MIN;
        if (ct->ops->allocate_sync(log->f, log->alloc_end, step) == 0)
            log->alloc_end += step;
        else
            log->alloc_failed = true;
    }
    log_info("cattree: %s: %llu records, %s I/O, %u-byte alignment", path, (unsigned long long)log->next_seq,
             info.direct ? "direct" : "buffered", log->align);
    ct->st_replayed += log->next_seq;
    log->next = ct->logs;
    if (ct->logs)
        ct->logs->prev = log;
    ct->logs = log;
    *q_out = log;
    return 0;
}

/* Close: pending operations fail with ECANCELED at once; the log stays
 * allocated until the device has returned every buffer it holds. A
 * cancelled push may or may not be in the log. */
static int tree_close(struct libos *l, void *q)
{
    struct cattree *ct = tree_of(l);
    struct tree_log *log = q;
    log->closed = true;
    ct->outstanding++; /* the log itself, until log_free */
    struct op_list *lists[2] = {&log->wr, &log->rd};
    for (int k = 0; k < 2; k++) {
        struct tree_op *op = lists[k]->head;
        while (op) {
            struct tree_op *next = op->next;
            task_fail(ct, op, ECANCELED);
            if (!op->inflight) {
                list_remove(lists[k], op);
                op_free(ct, op);
            }
            op = next;
        }
    }
    log->retry = NULL;
    if (!log->inflight)
        log_free(log);
    update_blocking(ct);
    return 0;
}

static void tree_destroy(struct libos *l)
{
    struct cattree *ct = tree_of(l);
    /* The device drains first (blocking, at teardown only), so no buffer
     * below is still in use by the kernel when it is freed. */
    ct->ops->destroy(ct->dev);
    while (ct->logs) {
        ct->logs->inflight = 0;
        log_free(ct->logs);
    }
    if (ct->zeros)
        heap_unref(heap_of(ct), ct->zeros);
    if (ct->blocking)
        ct->base.rt->idle_blockers--;
    free(ct);
}

static void tree_stats(struct libos *l, demi_stats_t *st)
{
    struct cattree *ct = tree_of(l);
    st->log_appends += ct->st_appends;
    st->log_append_bytes += ct->st_append_bytes;
    st->log_flushes += ct->st_flushes;
    st->log_records_replayed += ct->st_replayed;
}

static const struct libos_ops cattree_ops = {
    .name = "cattree",
    .socket = nosock_socket,
    .bind = nosock_bind,
    .listen = nosock_listen,
    .accept = nosock_accept,
    .connect = nosock_connect,
    .push = tree_push,
    .pop = tree_pop,
    .close = tree_close,
    .setsockopt = nosock_setsockopt,
    .getsockopt = nosock_getsockopt,
    .getpeername = nosock_name,
    .getsockname = nosock_name,
    .destroy = tree_destroy,
    .open = tree_open,
    .stats = tree_stats,
};

int cattree_create(struct runtime *rt, struct libos **out)
{
    struct cattree *ct = calloc(1, sizeof(*ct));
    if (!ct)
        return ENOMEM;
    ct->base.ops = &cattree_ops;
    ct->base.rt = rt;
    ct->ops = &stor_uring_ops;
    int e = ct->ops->create(rt, &ct->dev);
    if (e) {
        free(ct);
        return e;
    }
    /* Padding for buffered I/O: never written to after this. */
    ct->zeros = heap_alloc(rt->heap, LOGFMT_MAX_ALIGN);
    ct->poller = sched_alloc(&rt->sched, poll_task, ct);
    if (!ct->zeros || !ct->poller) {
        if (ct->zeros)
            heap_unref(rt->heap, ct->zeros);
        ct->ops->destroy(ct->dev);
        free(ct);
        return ENOMEM;
    }
    ct->zero = heap_blk_data(rt->heap, ct->zeros);
    memset(ct->zero, 0, LOGFMT_MAX_ALIGN);
    ct->poller->background = 1;
    sched_wake(&rt->sched, ct->poller);
    log_info("cattree: storage libOS on %s (CRC32C %s)", ct->ops->name, crc32c_hw() ? "SSE4.2" : "software");
    *out = &ct->base;
    return 0;
}
