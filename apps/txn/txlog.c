/*
 * apps/txn/txlog.c: demi-txnd's --log on a cattree log (see txlog.h).
 * Nothing here aborts or exits: errors go back to txnd.c, which decides.
 */
#include "txlog.h"

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

/* demi_pop returns, and demi_push takes, segments of at most this. */
#define SEG ((size_t)16 << 20)

int txl_open(struct txl *l, const char *path, bool repair)
{
    memset(l, 0, sizeof(*l));
    l->qd = -1;
    if (!(l->path = strdup(path)))
        return ENOMEM;
    int e = 0;
    /* A process killed with appends in flight keeps the lock until the
     * kernel has finished its I/O (demi_open(3)): wait that out, up to
     * 5 s (a hang guard; the wait is usually a few milliseconds). */
    for (int i = 0; i < 100; i++) {
        e = demi_open(&l->qd, path, O_RDWR | O_CREAT | (repair ? DEMI_O_REPAIR : 0), 0644);
        if (e != EBUSY)
            break;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (e) {
        l->qd = -1;
        free(l->path);
        l->path = NULL;
    }
    return e;
}

int txl_replay(struct txl *l, struct txs *s, struct lrec_stats *st, uint64_t *records, char *msg, size_t msglen)
{
    memset(st, 0, sizeof(*st));
    *records = 0;
    msg[0] = '\0';
    uint8_t *joined = NULL;
    size_t joined_cap = 0;
    int rc = 0;
    for (;;) {
        demi_qtoken_t qt;
        demi_qresult_t qr;
        int e = demi_pop(&qt, l->qd);
        if (!e)
            e = demi_wait(&qr, qt, NULL);
        if (!e && qr.qr_opcode != DEMI_OPC_POP)
            e = qr.qr_ret ? (int)qr.qr_ret : EIO;
        if (e) {
            snprintf(msg, msglen, "reading record %" PRIu64 ": %s", *records + 1, strerror(e));
            rc = e;
            break;
        }
        demi_sgarray_t *sga = &qr.qr_value.sga;
        if (sga->sga_numsegs == 0)
            break; /* the end of the log */
        (*records)++;
        const uint8_t *buf = sga->sga_segs[0].sgaseg_buf;
        size_t len = sga->sga_segs[0].sgaseg_len;
        if (sga->sga_numsegs > 1) {
            /* A record over 16 MiB comes in pieces; entries may straddle
             * them. */
            len = 0;
            for (uint32_t i = 0; i < sga->sga_numsegs; i++)
                len += sga->sga_segs[i].sgaseg_len;
            if (len > joined_cap) {
                uint8_t *j = realloc(joined, len);
                if (!j) {
                    demi_sgafree(sga);
                    snprintf(msg, msglen, "record %" PRIu64 ": out of memory", *records);
                    rc = ENOMEM;
                    break;
                }
                joined = j;
                joined_cap = len;
            }
            size_t o = 0;
            for (uint32_t i = 0; i < sga->sga_numsegs; i++) {
                memcpy(joined + o, sga->sga_segs[i].sgaseg_buf, sga->sga_segs[i].sgaseg_len);
                o += sga->sga_segs[i].sgaseg_len;
            }
            buf = joined;
        }
        rc = lrec_apply(s, buf, len, *records, st, msg, msglen);
        demi_sgafree(sga);
        if (rc)
            break;
    }
    free(joined);
    return rc;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
    if (ls.stale && n > 0 && (size_t)n < msglen)
        snprintf(msg + n, msglen - (size_t)n,
                 "; %" PRIu64 " commits or aborts found no prepared transaction (a repaired log?)", ls.stale);
    return 0;
}

int txl_append(struct txl *l, const struct txn_msg *m, uint8_t type)
{
    if (l->err)
        return l->err;
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
    l->entries++;
    return 0;
}

uint64_t txl_need(const struct txl *l)
{
    if (l->err)
        return UINT64_MAX; /* never durable */
    if (l->cur_len > 0)
        return l->durable + (l->inflight ? 2 : 1);
    return l->durable + (l->inflight ? 1 : 0);
}

int txl_kick(struct txl *l)
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

bool txl_owns(const struct txl *l, int qd, demi_qtoken_t qt)
{
    return l->qd >= 0 && qd == l->qd && l->inflight && qt == l->qt;
}

int txl_done(struct txl *l, int opcode, int err)
{
    if (!l->inflight)
        return l->err;
    l->inflight = false;
    if (opcode != DEMI_OPC_PUSH) {
        l->err = err ? err : EIO;
        return l->err;
    }
    l->durable++;
    l->records++;
    l->bytes += l->fly_len;
    l->fly_len = 0;
    return 0;
}

int txl_close(struct txl *l, int secs)
{
    int rc = 0;
    if (l->qd < 0)
        return 0;
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += secs;
    while (!l->err && (l->inflight || l->cur_len > 0)) {
        if (!l->inflight && txl_kick(l))
            break;
        struct timespec now, left;
        clock_gettime(CLOCK_MONOTONIC, &now);
        left.tv_sec = end.tv_sec - now.tv_sec;
        left.tv_nsec = end.tv_nsec - now.tv_nsec;
        if (left.tv_nsec < 0) {
            left.tv_sec--;
            left.tv_nsec += 1000000000L;
        }
        if (left.tv_sec < 0) {
            rc = ETIMEDOUT;
            break;
        }
        demi_qresult_t qr;
        int e = demi_wait(&qr, l->qt, &left);
        if (e) {
            rc = e;
            break;
        }
        txl_done(l, qr.qr_opcode, (int)qr.qr_ret);
    }
    if (l->err)
        rc = l->err;
    demi_close(l->qd);
    l->qd = -1;
    free(l->cur);
    free(l->fly);
    free(l->path);
    l->cur = l->fly = NULL;
    l->path = NULL;
    return rc;
}
