/*
 * apps/txn/txlog.c: demi-txnd's --log on a cattree log (see txlog.h).
 * Nothing here aborts or exits: errors go back to txnd.c, which decides.
 */
#include "txlog.h"

#include "logfile.h"

#include <demi/libos.h>
#include <demi/sga.h>
#include <demi/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* demi_pop returns, and demi_push takes, segments of at most this. */
#define SEG ((size_t)16 << 20)
/* The new log of a compaction: PATH + this. */
#define COMPACT_SUFFIX ".compact"
/* After a failed compaction, the next waits this long. */
#define COMPACT_RETRY_NS (10 * 1000000000LL)

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static char *compact_path(const char *path)
{
    return log_sibling(path, COMPACT_SUFFIX);
}

int txl_open(struct txl *l, const char *path, bool repair)
{
    memset(l, 0, sizeof(*l));
    l->qd = -1;
    if (!(l->path = strdup(path)))
        return ENOMEM;
    /* A compaction cut short by a crash: PATH is the whole log. */
    char *tmp = compact_path(path);
    if (!tmp)
        return ENOMEM;
    if (unlink(tmp) == 0)
        fprintf(stderr, "demi-txnd: --log: deleted %s, left by a compaction that did not finish\n", tmp);
    free(tmp);
    int e = log_open_wait(&l->qd, path, repair);
    if (e) {
        l->qd = -1;
        free(l->path);
        l->path = NULL;
    }
    return e;
}

/* What txl_replay's records are applied with. */
struct replay_ctx {
    struct txl *l;
    struct txs *s;
    struct lrec_stats *st;
};

static int replay_one(void *arg, const uint8_t *buf, size_t len, uint64_t recno, char *msg, size_t msglen)
{
    struct replay_ctx *x = arg;
    x->l->size += len;
    return lrec_apply(x->s, buf, len, recno, x->st, msg, msglen);
}

int txl_replay(struct txl *l, struct txs *s, struct lrec_stats *st, uint64_t *records, char *msg, size_t msglen)
{
    memset(st, 0, sizeof(*st));
    msg[0] = '\0';
    struct replay_ctx x = {l, s, st};
    int e = logread_all(l->qd, replay_one, &x, records, msg, msglen);
    if (e == 0) {
        l->view = st->view;
        l->incomplete = st->incomplete;
        l->replayed = *records;
    }
    return e;
}

static int64_t mono_ms(void)
{
    return mono_ns() / 1000000;
}

int txl_start(struct txl *l, const char *path, bool repair, struct txs *s, char *msg, size_t msglen)
{
    int e = txl_open(l, path, repair);
    if (e == EUCLEAN) {
        snprintf(msg, msglen,
                 "the log is corrupt in the middle (valid records follow damaged ones; the lines above say "
                 "where). Nothing was changed. --log-repair opens it cut before the damage, losing what follows "
                 "(copy the file first)");
        return e;
    }
    if (e == EBADMSG) {
        snprintf(msg, msglen, "not a libdemi log, or its header is damaged (%s)", strerror(e));
        return e;
    }
    if (e) {
        snprintf(msg, msglen, "cannot open the log: %s", strerror(e));
        return e;
    }
    struct lrec_stats ls;
    uint64_t records = 0;
    char why[256];
    int64_t t0 = mono_ms();
    e = txl_replay(l, s, &ls, &records, why, sizeof(why));
    if (e) {
        snprintf(msg, msglen, "replay failed: %s%s", why, e == ENOSPC || e == ENOMEM ? " (raise that limit)" : "");
        txl_close(l, 0);
        return e;
    }
    struct txs_stats ts;
    txs_get_stats(s, &ts);
    int n = snprintf(msg, msglen,
                     "replayed %" PRIu64 " records in %lld ms: %" PRIu64 " prepares, %" PRIu64 " commits, %" PRIu64
                     " aborts, %" PRIu64 " loads; %" PRIu64 " keys, %" PRIu64 " transactions still prepared",
                     records, (long long)(mono_ms() - t0), ls.prepares, ls.commits, ls.aborts, ls.loads, ts.keys,
                     ts.prepared);
    if ((ls.syncs || ls.sync_items) && n > 0 && (size_t)n < msglen)
        n += snprintf(msg + n, msglen - (size_t)n,
                      "; %" PRIu64 " state transfers, %" PRIu64 " versions from transfers or a snapshot", ls.syncs,
                      ls.sync_items);
    if ((ls.decided || ls.view) && n > 0 && (size_t)n < msglen)
        n += snprintf(msg + n, msglen - (size_t)n, "; %" PRIu64 " decisions learned, view %" PRIu64, ls.decided,
                      ls.view);
    if (ls.stale && n > 0 && (size_t)n < msglen)
        snprintf(msg + n, msglen - (size_t)n,
                 "; %" PRIu64 " commits or aborts found no prepared transaction (a repaired log?)", ls.stale);
    return 0;
}

/* Adds M to L's open record as change SEQ (0: a snapshot's entry, which
 * has no number). */
static int log_add(struct txl *l, const struct txn_msg *m, uint8_t type, uint64_t seq)
{
    size_t n = lrec_size(m);
    if (n == 0)
        return EINVAL;
    if (l->cur_len + n > TXL_RECORD_MAX)
        return ENOBUFS;
    if (l->cur_len + n > l->cur_cap) {
        size_t cap = l->cur_cap ? l->cur_cap : 64 * 1024;
        while (cap < l->cur_len + n)
            cap *= 2;
        uint8_t *b = realloc(l->cur, cap);
        if (!b)
            return ENOMEM;
        l->cur = b;
        l->cur_cap = cap;
    }
    if (lrec_encode(m, type, l->cur + l->cur_len, n) != n)
        return EINVAL;
    l->cur_len += n;
    if (seq)
        l->cur_last = seq;
    return 0;
}

static void compact_abandon(struct txl *l, const char *why, int err);

int txl_append(struct txl *l, const struct txn_msg *m, uint8_t type)
{
    if (l->err)
        return l->err;
    int e = log_add(l, m, type, l->appended + 1);
    if (e)
        return e;
    l->appended++;
    /* The new log of a compaction must have every change made after its
     * snapshot, or it is not the store. */
    if (l->next && (e = log_add(l->next, m, type, l->appended)))
        compact_abandon(l, "cannot copy a change to the new log", e);
    return 0;
}

uint64_t txl_need(const struct txl *l)
{
    return l->err ? UINT64_MAX /* never durable */ : l->appended;
}

/* Starts appending L's open record if none is being appended. */
static int kick_one(struct txl *l)
{
    if (l->qd < 0 || l->inflight || l->err || l->cur_len == 0)
        return 0;
    /* The open record becomes the one in flight; the old buffer of the
     * one in flight (completed) takes new entries. The pushed buffer is
     * not touched until the push completes (demi_open(3)). */
    uint8_t *b = l->fly;
    size_t cap = l->fly_cap;
    l->fly = l->cur;
    l->fly_cap = l->cur_cap;
    l->fly_len = l->cur_len;
    l->cur = b;
    l->cur_cap = cap;
    l->cur_len = 0;
    l->fly_last = l->cur_last;
    demi_sgarray_t sga;
    memset(&sga, 0, sizeof(sga));
    for (size_t off = 0; off < l->fly_len; off += SEG) {
        size_t k = l->fly_len - off < SEG ? l->fly_len - off : SEG;
        sga.sga_segs[sga.sga_numsegs].sgaseg_buf = l->fly + off;
        sga.sga_segs[sga.sga_numsegs].sgaseg_len = (uint32_t)k;
        sga.sga_numsegs++;
    }
    int e = demi_push(&l->qt, l->qd, &sga);
    if (e) {
        l->err = e;
        return e;
    }
    l->inflight = true;
    return 0;
}

int txl_kick(struct txl *l)
{
    if (l->next) {
        int e = kick_one(l->next);
        if (e)
            compact_abandon(l, "cannot append to the new log", e);
    }
    return l->frozen ? 0 : kick_one(l);
}

static bool owns_one(const struct txl *l, int qd, demi_qtoken_t qt)
{
    return l->qd >= 0 && qd == l->qd && l->inflight && qt == l->qt;
}

bool txl_owns(const struct txl *l, int qd, demi_qtoken_t qt)
{
    return owns_one(l, qd, qt) || (l->next && owns_one(l->next, qd, qt));
}

static int done_one(struct txl *l, int opcode, int err)
{
    if (!l->inflight)
        return l->err;
    l->inflight = false;
    if (opcode != DEMI_OPC_PUSH) {
        l->err = err ? err : EIO;
        return l->err;
    }
    l->durable = l->fly_last;
    l->records++;
    l->bytes += l->fly_len;
    l->size += l->fly_len;
    l->fly_len = 0;
    return 0;
}

static void free_one(struct txl *n)
{
    if (n->qd >= 0)
        demi_close(n->qd); /* cancels its push: the result is ECANCELED, owned by nobody */
    free(n->cur);
    free(n->fly);
    free(n);
}

static void compact_abandon(struct txl *l, const char *why, int err)
{
    if (!l->next)
        return;
    fprintf(stderr, "demi-txnd: --log %s: compaction abandoned: %s%s%s; the log stays as it was\n", l->path, why,
            err ? ": " : "", err ? strerror(err) : "");
    free_one(l->next);
    l->next = NULL;
    unlink(l->tmp);
    free(l->tmp);
    l->tmp = NULL;
    l->frozen = false;
    l->compact_retry_ns = mono_ns() + COMPACT_RETRY_NS;
}

/* Switches to the new log once it holds durably every change the old one
 * does (the old one stops appending as soon as the snapshot is durable,
 * so that the new one catches up under any load). */
static void compact_switch(struct txl *l)
{
    struct txl *n = l->next;
    if (!n || n->snapping || n->records < n->snap_rec || n->durable < n->snap_last_change)
        return;
    l->frozen = true;
    if (l->inflight || n->durable < l->durable)
        return;
    if (rename(l->tmp, l->path) != 0) {
        compact_abandon(l, "cannot rename the new log", errno);
        return;
    }
    int e = log_sync_dir(l->path);
    if (e)
        fprintf(stderr,
                "demi-txnd: --log %s: syncing its directory after the rename: %s (it may not survive a power loss)\n",
                l->path, strerror(e));
    /* The old log, unlinked by the rename, goes with what it still
     * queued: the new log has all of it. */
    demi_close(l->qd);
    free(l->cur);
    free(l->fly);
    uint64_t old_size = l->size;
    l->qd = n->qd;
    l->cur = n->cur;
    l->cur_len = n->cur_len;
    l->cur_cap = n->cur_cap;
    l->cur_last = n->cur_last;
    l->fly = n->fly;
    l->fly_len = n->fly_len;
    l->fly_cap = n->fly_cap;
    l->fly_last = n->fly_last;
    l->inflight = n->inflight;
    l->qt = n->qt;
    l->durable = n->durable;
    l->size = n->size;
    l->frozen = false;
    l->compactions++;
    n->qd = -1;
    n->cur = n->fly = NULL;
    free_one(n);
    l->next = NULL;
    free(l->tmp);
    l->tmp = NULL;
    fprintf(stderr, "demi-txnd: --log %s: compacted in %lld ms: %" PRIu64 " bytes of records, now %" PRIu64 "\n",
            l->path, (long long)((mono_ns() - l->compact_start_ns) / 1000000), old_size, l->size);
}

int txl_done(struct txl *l, int qd, int opcode, int err)
{
    if (l->next && l->next->qd == qd) {
        if (done_one(l->next, opcode, err)) {
            compact_abandon(l, "appending to the new log failed", l->next->err);
            return 0;
        }
    } else {
        int e = done_one(l, opcode, err);
        if (e)
            return e;
    }
    compact_switch(l);
    return 0;
}

bool txl_compact_due(const struct txl *l, struct txs *s)
{
    if (l->qd < 0 || l->next || l->err || l->min_compact == 0 || l->size <= l->min_compact)
        return false;
    if (mono_ns() < l->compact_retry_ns)
        return false;
    struct txs_stats st;
    txs_get_stats(s, &st);
    /* The decisions are not in st.bytes, but a snapshot holds them (one
     * SYNC_DECIDED frame each): without them, a small store with a full
     * table of decisions would find every new log due again at once. */
    uint64_t decided_bytes = st.decided * (TXN_HDR_LEN + 16);
    return l->size / 2 > st.bytes + decided_bytes;
}

static int snap_add(void *arg, const struct txn_msg *m, uint8_t type)
{
    return log_add(arg, m, type, 0);
}

/* About this many snapshot bytes per loop turn (a record each, or so). */
#define SNAP_TURN_BYTES ((size_t)1 << 20)

int txl_compact_start(struct txl *l, struct txs *s)
{
    if (l->next)
        return EALREADY;
    if (!(l->tmp = compact_path(l->path)))
        return ENOMEM;
    struct txl *n = calloc(1, sizeof(*n));
    if (!n) {
        free(l->tmp);
        l->tmp = NULL;
        return ENOMEM;
    }
    n->qd = -1;
    l->next = n;
    l->compact_start_ns = mono_ns();
    unlink(l->tmp);
    int e = demi_open(&n->qd, l->tmp, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (e) {
        n->qd = -1;
        compact_abandon(l, "cannot create the new log", e);
        return e;
    }
    /* The snapshot covers every change made so far; the changes from now
     * on reach the new log as they are made (txl_append). */
    lrec_snap_start(&n->snap, l->view, l->incomplete);
    n->snapping = true;
    n->cur_last = n->snap_last_change = l->appended;
    fprintf(stderr, "demi-txnd: --log %s: compacting (log %" PRIu64 " bytes) into %s\n", l->path, l->size, l->tmp);
    txl_compact_step(l, s);
    return 0;
}

void txl_compact_step(struct txl *l, struct txs *s)
{
    struct txl *n = l->next;
    if (!n || !n->snapping)
        return;
    bool done = false;
    size_t start = n->cur_len;
    while (!done && n->cur_len - start < SNAP_TURN_BYTES) {
        int e = lrec_snap_step(&n->snap, s, 64, snap_add, n, &done);
        if (e) {
            compact_abandon(l, "cannot copy the store", e);
            return;
        }
    }
    if (!done)
        return;
    n->snapping = false;
    /* Every record up to the one open now holds part of it. */
    n->snap_rec = n->records + (n->inflight ? 1 : 0) + (n->cur_len > 0 ? 1 : 0);
    fprintf(stderr,
            "demi-txnd: --log %s: the store copied into %s in %lld ms (%" PRIu64 " versions, %" PRIu64
            " prepared, %" PRIu64 " decisions)\n",
            l->path, l->tmp, (long long)((mono_ns() - l->compact_start_ns) / 1000000), n->snap.out.items,
            n->snap.out.prepared, n->snap.out.decided);
}

int txl_flush(struct txl *l, int secs)
{
    int rc = 0;
    struct timespec end;
    log_deadline(&end, secs);
    while (!l->err && (l->inflight || l->cur_len > 0)) {
        if (!l->inflight && kick_one(l))
            break;
        struct timespec left;
        if (!log_time_left(&end, &left)) {
            rc = ETIMEDOUT;
            break;
        }
        demi_qresult_t qr;
        int e = demi_wait(&qr, l->qt, &left);
        if (e) {
            rc = e;
            break;
        }
        done_one(l, qr.qr_opcode, (int)qr.qr_ret);
    }
    return l->err ? l->err : rc;
}

int txl_close(struct txl *l, int secs)
{
    if (l->qd < 0)
        return 0;
    compact_abandon(l, "the replica stops", 0);
    int rc = txl_flush(l, secs);
    demi_close(l->qd);
    l->qd = -1;
    free(l->cur);
    free(l->fly);
    free(l->path);
    l->cur = l->fly = NULL;
    l->path = NULL;
    return rc;
}
