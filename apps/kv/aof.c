/*
 * demi-kv's append-only file on a cattree log (see aof.h). Nothing here
 * aborts or exits: errors come back to kv.c, which decides.
 */
#include "aof.h"

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

/* Segments of a pushed record: demi_pop returns at most 16 MiB per
 * segment, and pushes are cut the same way. */
#define AOF_SEG   ((size_t)16 << 20)
#define TS_PREFIX "#TSMS:"
/* "#TSMS:" + 20 digits + "\r\n" */
#define TS_MAX 32

static demi_qtoken_t push_qt;

int aof_open(struct aof *a, const char *path, bool repair, struct kv_aof_info *info)
{
    memset(a, 0, sizeof(*a));
    a->qd = -1;
    a->next_seq = 1;
    a->info = info;
    int e;
    /* A process killed with appends in flight keeps the lock until the
     * kernel has finished its I/O (demi_open(3)): wait that out. */
    for (int i = 0; i < 100; i++) {
        e = demi_open(&a->qd, path, O_RDWR | O_CREAT | (repair ? DEMI_O_REPAIR : 0), 0644);
        if (e != EBUSY)
            break;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (e)
        return e;
    info->enabled = true;
    return 0;
}

static size_t digits(uint64_t v)
{
    size_t n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

size_t aof_cmd_size(int argc, const struct resp_arg *argv)
{
    size_t n = 1 + digits((uint64_t)argc) + 2;
    for (int i = 0; i < argc; i++)
        n += 1 + digits(argv[i].len) + 2 + argv[i].len + 2;
    return n;
}

static uint8_t *put_num(uint8_t *p, char type, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%c%" PRIu64 "\r\n", type, v);
    memcpy(p, tmp, (size_t)n);
    return p + n;
}

/* A new, empty record at the end of the queue. */
static struct aof_rec *rec_new(struct aof *a)
{
    if (a->qlen == a->qcap) {
        size_t cap = a->qcap ? a->qcap * 2 : 4;
        struct aof_rec *q = realloc(a->q, cap * sizeof(*q));
        if (!q)
            return NULL;
        a->q = q;
        a->qcap = cap;
    }
    struct aof_rec *r = &a->q[a->qlen];
    memset(r, 0, sizeof(*r));
    if (a->spare) {
        r->buf = a->spare;
        r->cap = a->spare_cap;
        a->spare = NULL;
        a->spare_cap = 0;
    }
    r->seq = a->next_seq++;
    r->ts = INT64_MIN;
    a->qlen++;
    return r;
}

static int rec_reserve(struct aof_rec *r, size_t want)
{
    if (r->len + want <= r->cap)
        return 0;
    size_t cap = r->cap ? r->cap : 64 * 1024;
    while (cap < r->len + want)
        cap *= 2;
    uint8_t *b = realloc(r->buf, cap);
    if (!b)
        return ENOMEM;
    r->buf = b;
    r->cap = cap;
    return 0;
}

int aof_append(struct aof *a, int64_t now_ms, int argc, const struct resp_arg *argv, uint64_t *seq)
{
    size_t need = aof_cmd_size(argc, argv) + TS_MAX;
    if (need > AOF_RECORD_MAX)
        return EMSGSIZE;
    /* The open record is the last one, unless it is being appended. */
    struct aof_rec *r = NULL;
    if (a->qlen > 0 && !(a->inflight && a->qlen == 1)) {
        r = &a->q[a->qlen - 1];
        if (r->len >= AOF_RECORD_SOFT || r->len + need > AOF_RECORD_MAX)
            r = NULL;
    }
    bool fresh = r == NULL;
    if (fresh && !(r = rec_new(a)))
        return ENOMEM;
    if (rec_reserve(r, need)) {
        if (fresh && r->len == 0) {
            /* Give the empty record back; its number is simply skipped
             * (numbers only need to grow). */
            free(r->buf);
            a->qlen--;
        }
        return ENOMEM;
    }
    uint8_t *p = r->buf + r->len;
    if (now_ms != r->ts) {
        int n = snprintf((char *)p, TS_MAX, TS_PREFIX "%" PRId64 "\r\n", now_ms);
        p += n;
        r->ts = now_ms;
    }
    /* The arguments are copied: they point into the popped buffer, which
     * is freed long before the record is on disk. */
    p = put_num(p, '*', (uint64_t)argc);
    for (int i = 0; i < argc; i++) {
        p = put_num(p, '$', argv[i].len);
        memcpy(p, argv[i].ptr, argv[i].len);
        p += argv[i].len;
        *p++ = '\r';
        *p++ = '\n';
    }
    r->len = (size_t)(p - r->buf);
    a->info->commands++;
    *seq = r->seq;
    return 0;
}

static int push_head(struct aof *a)
{
    struct aof_rec *r = &a->q[0];
    demi_sgarray_t sga;
    memset(&sga, 0, sizeof(sga));
    for (size_t off = 0; off < r->len; off += AOF_SEG) {
        size_t k = r->len - off < AOF_SEG ? r->len - off : AOF_SEG;
        sga.sga_segs[sga.sga_numsegs].sgaseg_buf = r->buf + off;
        sga.sga_segs[sga.sga_numsegs].sgaseg_len = (uint32_t)k;
        sga.sga_numsegs++;
    }
    int e = demi_push(&push_qt, a->qd, &sga);
    if (e == 0)
        a->inflight = true;
    return e;
}

int aof_kick(struct aof *a)
{
    if (a->inflight || a->err || a->qlen == 0 || a->q[0].len == 0)
        return 0;
    return push_head(a);
}

int aof_retry(struct aof *a)
{
    if (a->inflight || !a->err || a->qlen == 0)
        return 0;
    return push_head(a);
}

void aof_completed(struct aof *a)
{
    if (!a->inflight || a->qlen == 0)
        return;
    struct aof_rec r = a->q[0];
    a->inflight = false;
    a->durable = r.seq;
    a->err = 0;
    a->info->last_err = 0;
    a->info->records++;
    a->info->bytes += r.len;
    memmove(a->q, a->q + 1, (a->qlen - 1) * sizeof(*a->q));
    a->qlen--;
    if (!a->spare && r.cap <= 4 * 1024 * 1024) {
        a->spare = r.buf;
        a->spare_cap = r.cap;
    } else {
        free(r.buf);
    }
}

uint64_t aof_failed(struct aof *a, int err)
{
    a->inflight = false;
    a->err = err ? err : EIO;
    a->info->last_err = a->err;
    a->info->failures++;
    return a->qlen ? a->q[0].seq : a->next_seq;
}

int aof_close(struct aof *a, int secs)
{
    int rc = 0;
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += secs;
    while (a->qlen > 0 && a->q[0].len > 0) {
        if (!a->inflight) {
            int e = a->err ? aof_retry(a) : aof_kick(a);
            if (e) {
                rc = e;
                break;
            }
        }
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
        int e = demi_wait(&qr, push_qt, &left);
        if (e) {
            rc = e;
            break;
        }
        if (qr.qr_opcode == DEMI_OPC_PUSH) {
            aof_completed(a);
        } else {
            aof_failed(a, (int)qr.qr_ret);
            rc = (int)qr.qr_ret;
            break;
        }
    }
    if (a->qd >= 0)
        demi_close(a->qd);
    a->qd = -1;
    for (size_t i = 0; i < a->qlen; i++)
        free(a->q[i].buf);
    free(a->q);
    free(a->spare);
    a->q = NULL;
    a->spare = NULL;
    a->qlen = a->qcap = 0;
    return rc;
}

/* ---- replay ---- */

static int64_t replay_now;

static int64_t replay_clock(void)
{
    return replay_now;
}

static int discard(void *arg, const demi_sgarray_t *sga)
{
    (void)arg, (void)sga;
    return 0;
}

/* Replays one record's payload. 0, or EBADMSG / ENOMEM with @msg set. */
static int replay_record(struct kv_server *s, struct kv_client *cl, struct reply *out, struct resp_parser *p,
                         const uint8_t *buf, size_t len, uint64_t recno, uint64_t *commands, char *msg, size_t msglen)
{
    size_t off = 0;
    while (off < len) {
        if (buf[off] == '#') {
            const uint8_t *eol = memchr(buf + off, '\n', len - off);
            size_t plen = strlen(TS_PREFIX);
            long long ts;
            if (!eol || eol == buf + off || eol[-1] != '\r' || (size_t)(eol - 1 - (buf + off)) <= plen ||
                memcmp(buf + off, TS_PREFIX, plen) != 0 ||
                !resp_str2ll(buf + off + plen, (size_t)(eol - 1 - (buf + off)) - plen, &ts)) {
                snprintf(msg, msglen, "record %" PRIu64 ", byte %zu: a malformed time marker", recno, off);
                return EBADMSG;
            }
            replay_now = ts;
            off = (size_t)(eol + 1 - buf);
            continue;
        }
        if (buf[off] != '*') {
            snprintf(msg, msglen, "record %" PRIu64 ", byte %zu: 0x%02x where a command should start", recno, off,
                     buf[off]);
            return EBADMSG;
        }
        size_t used = 0;
        int st = resp_parse(p, buf + off, len - off, &used);
        switch (st) {
        case RESP_CMD:
            kv_exec(s, cl, p->argc, p->argv, out);
            reply_flush(out);
            reply_target(out, discard, NULL);
            (*commands)++;
            break;
        case RESP_EMPTY:
            break;
        case RESP_MORE:
            snprintf(msg, msglen, "record %" PRIu64 ", byte %zu: the record ends inside a command", recno, off);
            return EBADMSG;
        case RESP_NOMEM:
            snprintf(msg, msglen, "record %" PRIu64 ": out of memory", recno);
            return ENOMEM;
        default:
            snprintf(msg, msglen, "record %" PRIu64 ", byte %zu: %s", recno, off, p->err ? p->err : "bad command");
            return EBADMSG;
        }
        off += used;
    }
    return 0;
}

int aof_replay(struct aof *a, struct kv_server *s, uint64_t *commands, uint64_t *records, char *msg, size_t msglen)
{
    *commands = *records = 0;
    msg[0] = '\0';
    struct kv_client cl;
    kv_client_init(s, &cl);
    struct reply out;
    reply_init(&out);
    reply_target(&out, discard, NULL);
    struct resp_parser p;
    resp_init(&p);
    int64_t (*clock)(void) = s->clock_ms;
    s->clock_ms = replay_clock;
    replay_now = kv_now_ms();
    uint8_t *joined = NULL;
    size_t joined_cap = 0;
    int rc = 0;
    for (;;) {
        demi_qtoken_t qt;
        demi_qresult_t qr;
        int e = demi_pop(&qt, a->qd);
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
            /* A record over 16 MiB comes in pieces; the parser wants it in
             * one. */
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
        resp_reset(&p);
        rc = replay_record(s, &cl, &out, &p, buf, len, *records, commands, msg, msglen);
        a->info->bytes += len;
        demi_sgafree(sga);
        if (rc)
            break;
    }
    free(joined);
    resp_free(&p);
    reply_free(&out);
    kv_client_free(&cl);
    s->clock_ms = clock;
    s->commands = 0; /* INFO counts the clients' commands */
    a->info->replayed = *commands;
    return rc;
}
