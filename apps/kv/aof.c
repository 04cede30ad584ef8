/*
 * demi-kv's append-only file on a cattree log (see aof.h). Nothing here
 * aborts or exits: errors come back to kv.c, which decides.
 */
#include "aof.h"
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

/* Segments of a pushed record: demi_pop returns at most 16 MiB per
 * segment, and pushes are cut the same way. */
#define AOF_SEG   ((size_t)16 << 20)
#define TS_PREFIX "#TSMS:"
/* "#TSMS:" + 20 digits + "\r\n" */
#define TS_MAX 32

/* The new log of a rewrite: PATH + this. */
#define RW_SUFFIX ".rewrite"
/* The walk stops while the new log has this much queued (its device is
 * behind): memory stays bounded by this plus the commands logged. */
#define RW_QUEUE_MAX ((size_t)32 << 20)
/* The new log's records are cut at this size: a push checksums and copies
 * its record at once, in the loop, and the walk fills records faster than
 * clients do. */
#define RW_RECORD_SOFT ((size_t)1 << 20)

struct aof_rw {
    struct aof log;          /* the new log, at tmp */
    struct kv_aof_info info; /* its counters */
    char *tmp;
    uint64_t cursor;    /* the walk's reverse-binary bucket cursor */
    bool walked;        /* every key is in the new log */
    uint64_t snap_rec;  /* the new log's last record holding a snapshot */
    uint64_t start_cmd; /* the last command number logged before it started */
    int64_t start_ns;
};

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static char *rw_path(const char *path)
{
    return log_sibling(path, RW_SUFFIX);
}

int aof_open(struct aof *a, const char *path, bool repair, struct kv_aof_info *info)
{
    memset(a, 0, sizeof(*a));
    a->qd = -1;
    a->next_seq = 1;
    a->info = info;
    info->rewrite_ok = true;
    info->last_rewrite_ms = -1;
    if (!(a->path = strdup(path)))
        return ENOMEM;
    /* A rewrite cut short by a crash: PATH is the complete log. */
    char *tmp = rw_path(path);
    if (!tmp)
        return ENOMEM;
    if (unlink(tmp) == 0)
        fprintf(stderr, "aof: deleted %s, left by a rewrite that did not finish\n", tmp);
    free(tmp);
    int e = log_open_wait(&a->qd, path, repair);
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

/* Adds a command to @a's open record; @num is its number (0 for the
 * commands of a rewrite's snapshot, which have none). */
static int append_num(struct aof *a, int64_t now_ms, int argc, const struct resp_arg *argv, uint64_t num)
{
    size_t need = aof_cmd_size(argc, argv) + TS_MAX;
    if (need > AOF_RECORD_MAX)
        return EMSGSIZE;
    /* The open record is the last one, unless it is being appended. */
    struct aof_rec *r = NULL;
    if (a->qlen > 0 && !(a->inflight && a->qlen == 1)) {
        r = &a->q[a->qlen - 1];
        if (r->len >= (a->soft ? a->soft : AOF_RECORD_SOFT) || r->len + need > AOF_RECORD_MAX)
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
    size_t len = (size_t)(p - r->buf);
    a->queued += len - r->len;
    r->len = len;
    if (num)
        r->last = num;
    a->info->commands++;
    return 0;
}

int aof_append(struct aof *a, int64_t now_ms, int argc, const struct resp_arg *argv, uint64_t *seq)
{
    int e = append_num(a, now_ms, argc, argv, a->ncmd + 1);
    uint64_t num = e ? 0 : ++a->ncmd;
    /* The rewrite's new log must have every command that changed the
     * keyspace after its start, or it is not the keyspace: even one the
     * old log could not take (its client is told so, but the change is
     * made). */
    int e2;
    if (a->rw && (e2 = append_num(&a->rw->log, now_ms, argc, argv, num)))
        aof_rewrite_abort(a, "cannot copy a command to the new log", e2);
    if (e)
        return e;
    *seq = num;
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
    int e = demi_push(&a->push_qt, a->qd, &sga);
    if (e == 0)
        a->inflight = true;
    return e;
}

int aof_kick(struct aof *a)
{
    if (a->inflight || a->err || a->frozen || a->qlen == 0 || a->q[0].len == 0)
        return 0;
    return push_head(a);
}

int aof_retry(struct aof *a)
{
    if (a->inflight || !a->err || a->frozen || a->qlen == 0)
        return 0;
    return push_head(a);
}

void aof_completed(struct aof *a)
{
    if (!a->inflight || a->qlen == 0)
        return;
    struct aof_rec r = a->q[0];
    a->inflight = false;
    a->durable_rec = r.seq;
    if (r.last)
        a->durable = r.last;
    a->queued -= r.len;
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
    return a->durable + 1;
}

int aof_close(struct aof *a, int secs)
{
    int rc = 0;
    if (a->rw)
        aof_rewrite_abort(a, "the server stops", 0);
    struct timespec end;
    log_deadline(&end, secs);
    while (a->qlen > 0 && a->q[0].len > 0) {
        if (!a->inflight) {
            int e = a->err ? aof_retry(a) : aof_kick(a);
            if (e) {
                rc = e;
                break;
            }
        }
        struct timespec left;
        if (!log_time_left(&end, &left)) {
            rc = ETIMEDOUT;
            break;
        }
        demi_qresult_t qr;
        int e = demi_wait(&qr, a->push_qt, &left);
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
    free(a->path);
    a->q = NULL;
    a->spare = NULL;
    a->path = NULL;
    a->qlen = a->qcap = 0;
    return rc;
}

/* ---- replay ---- */

static _Thread_local int64_t replay_now;

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

/* What aof_replay's records are applied with. */
struct replay_ctx {
    struct aof *a;
    struct kv_server *s;
    struct kv_client *cl;
    struct reply *out;
    struct resp_parser *p;
    uint64_t *commands;
};

static int replay_one(void *arg, const uint8_t *buf, size_t len, uint64_t recno, char *msg, size_t msglen)
{
    struct replay_ctx *x = arg;
    resp_reset(x->p);
    int rc = replay_record(x->s, x->cl, x->out, x->p, buf, len, recno, x->commands, msg, msglen);
    x->a->info->bytes += len;
    return rc;
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
    struct replay_ctx x = {a, s, &cl, &out, &p, commands};
    int rc = logread_all(a->qd, replay_one, &x, records, msg, msglen);
    resp_free(&p);
    reply_free(&out);
    kv_client_free(&cl);
    s->clock_ms = clock;
    s->commands = 0; /* INFO counts the clients' commands */
    a->info->replayed = *commands;
    a->info->base_size = a->info->bytes; /* what an automatic rewrite compares with */
    return rc;
}

/* ---- rewrite ---- */

/* What a snapshot's commands are written with. */
struct snap {
    struct aof_rw *rw;
    int64_t ts; /* the time marker they replay at */
};

static int snap_emit(void *arg, int argc, const struct resp_arg *argv)
{
    struct snap *sn = arg;
    return append_num(&sn->rw->log, sn->ts, argc, argv, 0);
}

static struct resp_arg ra(const void *p, size_t n)
{
    struct resp_arg r = {.ptr = p, .len = n};
    return r;
}

/* Writes the commands that recreate entry @e, as it is at @now, to the new
 * log, and marks it; an entry whose time has passed is left alone (it is
 * gone for every command from now on). 0 or an errno. */
static int snapshot(struct aof_rw *rw, struct kv_store *st, struct kv_entry *e, int64_t now)
{
    if (e->expire >= 0 && now > e->expire)
        return 0;
    char num[24];
    int e2 = 0;
    struct snap sn = {rw, now};
    if (e->type == KV_STRING) {
        /* SET key value [PXAT when]; a value over one segment (16 MiB)
         * continues with APPENDs, so that no command nears the record
         * limit. */
        const struct kv_val *v = e->val;
        struct resp_arg av[5];
        av[0] = ra("SET", 3);
        av[1] = ra(e->key, e->klen);
        av[2] = v->nseg ? ra(v->seg[0].data, v->seg[0].len) : ra("", 0);
        int argc = 3;
        if (e->expire >= 0) {
            av[3] = ra("PXAT", 4);
            av[4] = ra(num, (size_t)snprintf(num, sizeof(num), "%" PRId64, e->expire));
            argc = 5;
        }
        e2 = snap_emit(&sn, argc, av);
        for (uint32_t i = 1; !e2 && i < v->nseg; i++) {
            av[0] = ra("APPEND", 6);
            av[2] = ra(v->seg[i].data, v->seg[i].len);
            e2 = snap_emit(&sn, 3, av);
        }
    } else {
        const struct kv_type_ops *ops = e->type < KV_NTYPES ? kv_types[e->type] : NULL;
        if (!ops || !ops->rewrite)
            return ENOTSUP; /* a type this build cannot write back */
        /* The collection commands have no absolute expiry: PEXPIRE, at a
         * time marker at least 1 ms before the key's time, gives it
         * exactly (a TTL of 0 would delete it). */
        if (e->expire >= 0 && sn.ts >= e->expire)
            sn.ts = e->expire - 1;
        e2 = ops->rewrite(e->obj, e->key, e->klen, snap_emit, &sn);
        if (!e2 && e->expire >= 0) {
            struct resp_arg av[3] = {ra("PEXPIRE", 7), ra(e->key, e->klen),
                                     ra(num, (size_t)snprintf(num, sizeof(num), "%" PRId64, e->expire - sn.ts))};
            e2 = snap_emit(&sn, 3, av);
        }
    }
    if (e2)
        return e2;
    e->aof_epoch = st->aof_epoch;
    rw->snap_rec = rw->log.qlen ? rw->log.q[rw->log.qlen - 1].seq : rw->snap_rec;
    return 0;
}

int aof_rewrite_qd(const struct aof *a)
{
    return a->rw ? a->rw->log.qd : -1;
}

static void clear_epoch(void *arg, struct kv_entry *e)
{
    (void)arg;
    e->aof_epoch = 0;
}

int aof_rewrite_start(struct aof *a, struct kv_store *st)
{
    if (a->rw)
        return EALREADY;
    struct aof_rw *rw = calloc(1, sizeof(*rw));
    if (!rw || !(rw->tmp = rw_path(a->path))) {
        free(rw);
        return ENOMEM;
    }
    rw->log.qd = -1;
    rw->log.next_seq = 1;
    rw->log.info = &rw->info;
    rw->log.soft = RW_RECORD_SOFT;
    unlink(rw->tmp);
    int e = demi_open(&rw->log.qd, rw->tmp, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (e) {
        fprintf(stderr, "demi-kv: aof rewrite: cannot create %s: %s\n", rw->tmp, strerror(e));
        free(rw->tmp);
        free(rw);
        a->info->rewrites++;
        a->info->rewrite_ok = false;
        a->info->rewrite_fails++;
        a->rw_retry_ns = mono_ns() + 5000000000LL;
        return e;
    }
    if (!(rw->log.path = strdup(rw->tmp))) {
        demi_close(rw->log.qd);
        unlink(rw->tmp);
        free(rw->tmp);
        free(rw);
        return ENOMEM;
    }
    /* A new epoch: no key is in the new log yet. The counter wraps after
     * 2^32 rewrites; the marks are then cleared once, so that no key
     * keeps a mark that looks current. */
    if (++st->aof_epoch == 0) {
        kv_foreach(st, clear_epoch, NULL);
        st->aof_epoch = 1;
    }
    rw->start_cmd = a->ncmd;
    rw->start_ns = mono_ns();
    a->rw = rw;
    a->info->rewrite_in_progress = true;
    a->info->rewrites++;
    a->info->rewrite_start_ms = (int64_t)time(NULL) * 1000;
    fprintf(stderr, "aof: rewrite started (%zu keys) into %s\n", kv_size(st), rw->tmp);
    return 0;
}

static void rw_free(struct aof_rw *rw)
{
    if (rw->log.qd >= 0)
        demi_close(rw->log.qd); /* cancels its push: the result is ECANCELED */
    for (size_t i = 0; i < rw->log.qlen; i++)
        free(rw->log.q[i].buf);
    free(rw->log.q);
    free(rw->log.spare);
    free(rw->log.path);
    free(rw->tmp);
    free(rw);
}

void aof_rewrite_abort(struct aof *a, const char *why, int err)
{
    struct aof_rw *rw = a->rw;
    if (!rw)
        return;
    fprintf(stderr, "demi-kv: aof rewrite abandoned: %s%s%s; %s stays the log\n", why, err ? ": " : "",
            err ? strerror(err) : "", a->path);
    unlink(rw->tmp);
    rw_free(rw);
    a->rw = NULL;
    a->frozen = false;
    a->info->rewrite_in_progress = false;
    a->info->rewrite_ok = false;
    a->info->rewrite_fails++;
    /* Automatic rewrites wait, longer after each failure (up to a minute). */
    uint64_t f = a->info->rewrite_fails < 6 ? a->info->rewrite_fails : 6;
    a->rw_retry_ns = mono_ns() + (int64_t)(1000000000LL << f);
}

struct rw_walk {
    struct aof_rw *rw;
    struct kv_store *st;
    int64_t now;
    int err;
};

/* One key of the rewrite's walk, unless already in the new log. */
static void rw_one(void *arg, struct kv_entry *e)
{
    struct rw_walk *w = arg;
    if (w->err || e->aof_epoch == w->st->aof_epoch)
        return;
    w->err = snapshot(w->rw, w->st, e, w->now);
}

bool aof_rewrite_busy(const struct aof *a)
{
    return a->rw && !a->rw->walked && a->rw->log.queued < RW_QUEUE_MAX;
}

void aof_rewrite_kick(struct aof *a)
{
    struct aof_rw *rw = a->rw;
    if (!rw)
        return;
    int e = aof_kick(&rw->log);
    if (e)
        aof_rewrite_abort(a, "cannot append to the new log", e);
}

void aof_rewrite_step(struct aof *a, struct kv_store *st, int64_t now_ms, int64_t budget_ns)
{
    struct aof_rw *rw = a->rw;
    if (!rw)
        return;
    int64_t end = mono_ns() + budget_ns;
    for (unsigned n = 1; !rw->walked && rw->log.queued < RW_QUEUE_MAX; n++) {
        /* kv_scan's reverse-binary cursor: the table may grow, shrink or
         * be mid-rehash between steps (or be emptied by FLUSHALL) and
         * every key present all along is still visited; keys created
         * meanwhile need no visit, and a key visited twice is marked. */
        struct rw_walk w = {rw, st, now_ms, 0};
        rw->cursor = kv_scan(st, rw->cursor, 1, rw_one, &w);
        if (w.err) {
            aof_rewrite_abort(a, "cannot write a key to the new log", w.err);
            return;
        }
        if (rw->cursor == 0) {
            rw->walked = true;
            fprintf(stderr, "aof: rewrite wrote every key (%" PRIu64 " bytes so far)\n",
                    rw->info.bytes + rw->log.queued);
        }
        if (n % 64 == 0 && mono_ns() >= end)
            break;
    }
    aof_rewrite_kick(a);
}

void aof_rewrite_touch(struct aof *a, struct kv_store *st, int64_t now_ms, int argc, const struct resp_arg *argv)
{
    struct aof_rw *rw = a->rw;
    if (!rw || rw->walked)
        return;
    for (int i = 1; i < argc; i++) {
        /* A lookup that expires nothing (the command decides). */
        uint64_t h = kv_hash(st, argv[i].ptr, argv[i].len);
        struct kv_entry *e = kv_find(st, argv[i].ptr, argv[i].len, h, INT64_MIN);
        if (!e || e->aof_epoch == st->aof_epoch)
            continue;
        int err = snapshot(rw, st, e, now_ms);
        if (err) {
            aof_rewrite_abort(a, "cannot write a key to the new log", err);
            return;
        }
    }
}

bool aof_rewrite_switch(struct aof *a)
{
    struct aof_rw *rw = a->rw;
    if (!rw || !rw->walked || rw->log.err || rw->log.durable_rec < rw->snap_rec)
        return false;
    /* Every key is durable in the new log. The old log stops here, so
     * that the new one catches up with it under any load. */
    a->frozen = true;
    uint64_t covered = rw->log.durable > rw->start_cmd ? rw->log.durable : rw->start_cmd;
    if (covered < a->durable)
        return false;
    if (rename(rw->tmp, a->path) != 0) {
        int e = errno;
        aof_rewrite_abort(a, "cannot rename the new log", e);
        return false;
    }
    int e = log_sync_dir(a->path);
    if (e)
        fprintf(stderr,
                "demi-kv: aof rewrite: syncing the directory of %s: %s (the rename may not survive a "
                "power loss)\n",
                a->path, strerror(e));
    /* The old log, unlinked by the rename, goes with its queue: the new
     * log has every command of it. A push still in flight is cancelled. */
    demi_close(a->qd);
    for (size_t i = 0; i < a->qlen; i++)
        free(a->q[i].buf);
    free(a->q);
    free(a->spare);
    struct kv_aof_info *info = a->info;
    a->qd = rw->log.qd;
    a->q = rw->log.q;
    a->qlen = rw->log.qlen;
    a->qcap = rw->log.qcap;
    a->queued = rw->log.queued;
    a->inflight = rw->log.inflight;
    a->push_qt = rw->log.push_qt;
    a->frozen = false;
    a->next_seq = rw->log.next_seq;
    a->durable_rec = rw->log.durable_rec;
    a->durable = covered;
    a->err = 0;
    a->spare = rw->log.spare;
    a->spare_cap = rw->log.spare_cap;
    a->soft = 0; /* the clients' records: AOF_RECORD_SOFT again */
    a->rw = NULL;
    info->last_err = 0;
    info->bytes = info->base_size = rw->info.bytes;
    info->rewrite_in_progress = false;
    info->rewrite_ok = true;
    info->rewrite_fails = 0;
    info->last_rewrite_ms = (mono_ns() - rw->start_ns) / 1000000;
    fprintf(stderr, "aof: rewrite done in %lld ms: %s is now %" PRIu64 " bytes\n", (long long)info->last_rewrite_ms,
            a->path, info->bytes);
    rw->log.qd = -1;
    rw->log.q = NULL;
    rw->log.qlen = 0;
    rw->log.spare = NULL;
    rw_free(rw);
    return true;
}

bool aof_rewrite_result(struct aof *a, int opcode, int err)
{
    struct aof_rw *rw = a->rw;
    if (!rw)
        return false;
    if (opcode != DEMI_OPC_PUSH) {
        aof_rewrite_abort(a, "appending to the new log failed", err ? err : EIO);
        return true;
    }
    aof_completed(&rw->log);
    if (aof_rewrite_switch(a))
        return true;
    aof_rewrite_kick(a);
    return a->rw == NULL;
}

bool aof_rewrite_due(const struct aof *a, uint64_t perc, uint64_t min_size, int64_t now_ns)
{
    const struct kv_aof_info *i = a->info;
    if (a->rw || perc == 0 || i->bytes <= min_size || now_ns < a->rw_retry_ns)
        return false;
    uint64_t base = i->base_size ? i->base_size : 1;
    if (i->bytes <= base)
        return false;
    /* Redis's test, current * 100 / base - 100 >= perc, without overflow. */
    return (unsigned __int128)(i->bytes - base) * 100 >= (unsigned __int128)perc * base;
}

bool aof_owns(const struct aof *a, int qd, uint64_t qt)
{
    return a->qd >= 0 && qd == a->qd && a->inflight && qt == a->push_qt;
}

bool aof_rewrite_owns(const struct aof *a, int qd, uint64_t qt)
{
    return a->rw && aof_owns(&a->rw->log, qd, qt);
}
