/*
 * libFuzzer target for demi-kv's command layer (every apps/kv C file but the
 * network loop kv.c), built with clang -fsanitize=fuzzer,address,undefined
 * (see CMakeLists.txt) and run by tests/fuzz/test_fuzz_kvcmd.sh. Each input
 * is a sequence of commands run by kv_exec against one keyspace (server
 * A), in one of two forms chosen by its first byte:
 *   - text (first byte < 0x80): commands as a client sends them, RESP
 *     multibulk or inline, split by resp.c (kvcmd.dict helps here);
 *   - compact (first byte >= 0x80): per command a byte picking a row of the
 *     command table (every command and subcommand, so every one is
 *     reachable), a byte giving the number of arguments (low 4 bits), then
 *     per argument a byte: < 0x80 one of the tokens below (keys k0..k3,
 *     members, numbers, inf, nan, "(1", "[a", option words), 0x80..0xbf a
 *     small integer (byte - 0x88), >= 0xc0 that many (low 6 bits) raw bytes.
 * Before each command runs, kv_route (demi-kv --threads) places it with
 * every slot its own shard and with 2, 3 and 16 threads, and the answers
 * must agree (check_route).
 * Pseudo-commands, both forms: "@tick N" moves the fake clock N ms on (keys
 * expire), "@expire" runs active expiry, "@cron" the server cron, "@check"
 * the checks below at once. FUZZ_KVCMD_TRACE=1 shows every command and
 * its reply.
 *
 * Checks, besides ASan, UBSan and LeakSanitizer:
 *   - every reply is exactly one well-formed RESP2 reply (none only with
 *     CLIENT REPLY OFF/SKIP);
 *   - the AOF contract: every command that changed the keyspace (dirty
 *     moved, the command flagged "write") is replayed, as kv.c logs it (its
 *     kv_propagate'd equivalent when it set one), into a second keyspace B
 *     at the same time; the replay must not fail, and A and B must hold the
 *     same live keys: types, times to live, values (lists in order, sets,
 *     hashes and sorted sets as sets), compared after every such write;
 *   - the AOF rewrite: the commands each live key's type emits (aof.c's
 *     snapshot: SET ... PXAT, or RPUSH/SADD/HSET/ZADD of at most 64
 *     elements then PEXPIRE) rebuild the same keyspace in a third one, C;
 *   - no collection is left empty; kv_types[]->count agrees with what its
 *     rewrite emits; the bytes the types account (kv_obj_bytes) are the sum
 *     of their objects' sizes; after FLUSHALL and freeing every keyspace the
 *     value and object byte counters are back at 0 and the keyspace holds
 *     no key bytes.
 * libdemi is not linked: demi_sgaalloc/demi_sgafree are malloc and free
 * here (values and reply buffers), the other calls (only the AOF file's)
 * fail. getrandom is wrapped to be deterministic while an input runs, so
 * that replies, SCAN orders and SPOP choices are reproducible.
 */
#include "cmd_int.h"
#include "resp.h"

#include <demi/libos.h>
#include <demi/sga.h>
#include <demi/wait.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* ---- libdemi, as far as the command layer needs it ---- */

demi_sgarray_t demi_sgaalloc(size_t size)
{
    demi_sgarray_t sga;
    memset(&sga, 0, sizeof(sga));
    if (size == 0)
        return sga;
    if (size > KV_SEG_MAX) {
        errno = EINVAL; /* the fuzzer's values stay far below one segment */
        return sga;
    }
    void *p = malloc(size);
    if (!p) {
        errno = ENOMEM;
        return sga;
    }
    sga.sga_buf = p;
    sga.sga_numsegs = 1;
    sga.sga_segs[0].sgaseg_buf = p;
    sga.sga_segs[0].sgaseg_len = (uint32_t)size;
    return sga;
}

int demi_sgafree(demi_sgarray_t *sga)
{
    if (!sga)
        return EINVAL;
    free(sga->sga_buf);
    sga->sga_buf = NULL;
    sga->sga_numsegs = 0;
    return 0;
}

int demi_get_stats(demi_stats_t *st)
{
    (void)st;
    return ENOSYS;
}

int demi_open(int *qd, const char *path, int flags, mode_t mode)
{
    (void)qd, (void)path, (void)flags, (void)mode;
    return ENOSYS;
}

int demi_close(int qd)
{
    (void)qd;
    return EBADF;
}

int demi_push(demi_qtoken_t *qt, int qd, const demi_sgarray_t *sga)
{
    (void)qt, (void)qd, (void)sga;
    return EBADF;
}

int demi_pop(demi_qtoken_t *qt, int qd)
{
    (void)qt, (void)qd;
    return EBADF;
}

int demi_wait(demi_qresult_t *qr, demi_qtoken_t qt, const struct timespec *timeout)
{
    (void)qr, (void)qt, (void)timeout;
    return EINVAL;
}

/* Deterministic while an input runs (-Wl,--wrap=getrandom). */
ssize_t __real_getrandom(void *buf, size_t n, unsigned flags);
static bool det_rng;
static uint64_t det_state;

ssize_t __wrap_getrandom(void *buf, size_t n, unsigned flags)
{
    if (!det_rng)
        return __real_getrandom(buf, n, flags);
    uint8_t *b = buf;
    for (size_t i = 0; i < n; i++) {
        det_state = det_state * 6364136223846793005ull + 1442695040888963407ull;
        b[i] = (uint8_t)(det_state >> 56);
    }
    return (ssize_t)n;
}

/* ---- failures ---- */

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fuzz_kvcmd: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

static void show_bytes(const uint8_t *p, size_t n, size_t max)
{
    for (size_t j = 0; j < n && j < max; j++) {
        uint8_t ch = p[j];
        if (ch >= 0x20 && ch < 0x7f)
            fputc(ch, stderr);
        else
            fprintf(stderr, "\\x%02x", ch);
    }
}

static void show_cmd(int argc, const struct resp_arg *argv)
{
    fputs("fuzz_kvcmd: command:", stderr);
    for (int i = 0; i < argc && i < 24; i++) {
        fputs(" '", stderr);
        show_bytes(argv[i].ptr, argv[i].len, 80);
        fputc('\'', stderr);
    }
    fputc('\n', stderr);
}

/* ---- replies ---- */

struct sink {
    uint8_t *buf;
    size_t len, cap;
};

static int sink_push(void *arg, const demi_sgarray_t *sga)
{
    struct sink *k = arg;
    for (uint32_t i = 0; i < sga->sga_numsegs; i++) {
        size_t n = sga->sga_segs[i].sgaseg_len;
        if (k->len + n > k->cap) {
            size_t cap = (k->len + n) * 2;
            uint8_t *b = realloc(k->buf, cap);
            if (!b)
                abort(); /* the harness's own memory: not a finding */
            k->buf = b;
            k->cap = cap;
        }
        memcpy(k->buf + k->len, sga->sga_segs[i].sgaseg_buf, n);
        k->len += n;
    }
    return 0;
}

/* Where the line starting at p ends (at its CR), or NULL when there is no
 * CRLF or the line holds a bare CR or LF. */
static const uint8_t *line_end(const uint8_t *p, const uint8_t *end)
{
    for (const uint8_t *q = p; q + 1 < end; q++) {
        if (q[0] == '\r')
            return q[1] == '\n' ? q : NULL;
        if (q[0] == '\n')
            return NULL;
    }
    return NULL;
}

/* A decimal integer as Redis writes it (no '+', no leading zeros, "-0"
 * never), within long long. */
static bool num_ok(const uint8_t *p, const uint8_t *e, long long *out)
{
    return resp_str2ll(p, (size_t)(e - p), out);
}

/* Checks one RESP2 reply at p; returns where it ends, or NULL. */
static const uint8_t *resp2_reply(const uint8_t *p, const uint8_t *end, int depth)
{
    if (p >= end || depth > 16)
        return NULL;
    const uint8_t *e = line_end(p + 1, end);
    if (!e)
        return NULL;
    long long n;
    switch (p[0]) {
    case '+':
        return e + 2;
    case '-':
        /* An error has a code: "-ERR ...", "-WRONGTYPE ...". */
        if (e == p + 1 || p[1] == ' ')
            return NULL;
        return e + 2;
    case ':':
        return num_ok(p + 1, e, &n) ? e + 2 : NULL;
    case '$':
        if (!num_ok(p + 1, e, &n) || n < -1)
            return NULL;
        if (n == -1)
            return e + 2;
        if ((unsigned long long)(end - (e + 2)) < (unsigned long long)n + 2)
            return NULL;
        p = e + 2 + n;
        return p[0] == '\r' && p[1] == '\n' ? p + 2 : NULL;
    case '*':
        if (!num_ok(p + 1, e, &n) || n < -1)
            return NULL;
        p = e + 2;
        for (long long i = 0; i < n && p; i++)
            p = resp2_reply(p, end, depth + 1);
        return p;
    default:
        return NULL;
    }
}

/* How many whole replies [buf, buf + len) holds, or -1 if it is not a run
 * of well-formed replies. */
static int count_replies(const uint8_t *buf, size_t len)
{
    if (len == 0)
        return 0;
    const uint8_t *p = buf, *end = buf + len;
    int n = 0;
    while (p < end) {
        p = resp2_reply(p, end, 0);
        if (!p)
            return -1;
        n++;
    }
    return n;
}

/* ---- the servers ---- */

static int64_t fake_now;

static int64_t fake_clock(void)
{
    return fake_now;
}

struct srv {
    struct kv_server s;
    struct kv_client c;
    struct reply r;
    struct sink k;
    bool in_write;
    uint64_t dirty_before;
};

static struct srv SA, SB, SC; /* the keyspace, its AOF replay, its rewrite */

static const char *hook(void *arg, int argc, const struct resp_arg *argv)
{
    (void)argc, (void)argv;
    struct srv *v = arg;
    v->in_write = true;
    v->dirty_before = v->s.dirty;
    return NULL;
}

static void srv_init(struct srv *v)
{
    if (kv_server_init(&v->s))
        abort();
    v->s.clock_ms = fake_clock;
    kv_client_init(&v->s, &v->c);
    reply_init(&v->r);
    reply_target(&v->r, sink_push, &v->k);
    v->s.write_hook = hook;
    v->s.write_hook_arg = v;
}

static void srv_free(struct srv *v)
{
    reply_free(&v->r);
    kv_client_free(&v->c);
    kv_server_free(&v->s);
    free(v->k.buf);
    memset(v, 0, sizeof(*v));
}

/* Where demi-kv --threads would run the command (kv_route): with every
 * slot its own shard, then with 2, 3 and 16 threads, which must agree
 * (keys of one slot are on one thread whatever the count; keys of
 * several threads are of several slots). */
static void check_route(const struct kv_server *s, int argc, const struct resp_arg *argv)
{
    struct kv_route all, rt;
    kv_route(s, argc, argv, KV_SLOTS, &all);
    static const unsigned ns[] = {2, 3, 16};
    for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
        kv_route(s, argc, argv, ns[i], &rt);
        if (rt.kind == KV_ROUTE_SHARD && rt.shard >= ns[i])
            abort();
        if (rt.kind == KV_ROUTE_REFUSED && !rt.why)
            abort();
        if (all.kind == KV_ROUTE_SHARD && (rt.kind != KV_ROUTE_SHARD || rt.shard != all.shard % ns[i]))
            abort();
        if (rt.kind == KV_ROUTE_CROSSSLOT && all.kind != KV_ROUTE_CROSSSLOT)
            abort();
        bool keyed = rt.kind == KV_ROUTE_SHARD || rt.kind == KV_ROUTE_CROSSSLOT;
        bool all_keyed = all.kind == KV_ROUTE_SHARD || all.kind == KV_ROUTE_CROSSSLOT;
        if (keyed != all_keyed || (!keyed && rt.kind != all.kind))
            abort();
    }
}

/* Runs one command on @v; its reply is in v->k afterwards. */
static void srv_exec(struct srv *v, int argc, const struct resp_arg *argv)
{
    check_route(&v->s, argc, argv);
    v->k.len = 0;
    v->in_write = false;
    kv_exec(&v->s, &v->c, argc, argv, &v->r);
    if (reply_flush(&v->r))
        abort();
    /* QUIT closes the connection; the next command comes on a new one. */
    if (v->c.close_after_reply) {
        kv_client_free(&v->c);
        kv_client_init(&v->s, &v->c);
    }
}

/* ---- keyspace comparison ---- */

/* A key's value as bytes that two equal values share: a string's bytes;
 * a list's elements in order; a set's, hash's or sorted set's elements
 * (with their values or scores) sorted. Built from the type's rewrite,
 * whose form is checked on the way. */
struct canon {
    const struct kv_entry *e;
    uint8_t *buf; /* items, each "<len>:" bytes */
    size_t len, cap;
    size_t *item; /* offsets of the items in buf */
    size_t nitem, capitem;
    size_t cmds;
};

static void canon_put(struct canon *c, const void *p, size_t n)
{
    if (c->len + n + 24 > c->cap) {
        size_t cap = (c->len + n + 24) * 2;
        uint8_t *b = realloc(c->buf, cap);
        if (!b)
            abort();
        c->buf = b;
        c->cap = cap;
    }
    c->len += (size_t)snprintf((char *)c->buf + c->len, 24, "%zu:", n);
    memcpy(c->buf + c->len, p, n);
    c->len += n;
}

static void canon_item(struct canon *c)
{
    if (c->nitem == c->capitem) {
        c->capitem = c->capitem ? c->capitem * 2 : 64;
        c->item = realloc(c->item, c->capitem * sizeof(*c->item));
        if (!c->item)
            abort();
    }
    c->item[c->nitem++] = c->len;
}

static const char *const rewrite_cmd[KV_NTYPES] = {[KV_LIST] = "RPUSH", [KV_SET] = "SADD", [KV_HASH] = "HSET",
                                                   [KV_ZSET] = "ZADD"};

/*
 * The rewrite check sees a score of -0 as 0. demi-kv stores -0 as 0 in a
 * sorted set Redis would hold in a listpack (up to 128 members of up to 64
 * bytes), as Redis does; a set rebuilt by the rewrite's ZADDs is small
 * until the member that makes it big, so a -0 added before that becomes 0.
 * Redis's own AOF rewrite does the same; only the sign of a zero is lost.
 */
static bool zero_sign_blind;

static int canon_emit(void *arg, int argc, const struct resp_arg *argv)
{
    struct canon *c = arg;
    const struct kv_entry *e = c->e;
    int per = e->type == KV_HASH || e->type == KV_ZSET ? 2 : 1;
    if (argc < 2 + per || (argc - 2) % per || !arg_is(&argv[0], rewrite_cmd[e->type]) ||
        argv[1].len != e->klen || memcmp(argv[1].ptr, e->key, e->klen) != 0)
        fail("the rewrite of a %s emits a malformed command (argc %d)", kv_type_name(e->type), argc);
    if ((argc - 2) / per > 64)
        fail("the rewrite of a %s emits %d elements in one command (64 at most)", kv_type_name(e->type),
             (argc - 2) / per);
    for (int i = 2; i < argc; i += per) {
        canon_item(c);
        if (e->type == KV_ZSET) { /* member, then score */
            canon_put(c, argv[i + 1].ptr, argv[i + 1].len);
            if (zero_sign_blind && argv[i].len == 2 && memcmp(argv[i].ptr, "-0", 2) == 0)
                canon_put(c, "0", 1);
            else
                canon_put(c, argv[i].ptr, argv[i].len);
        } else {
            for (int j = 0; j < per; j++)
                canon_put(c, argv[i + j].ptr, argv[i + j].len);
        }
    }
    c->cmds++;
    return 0;
}

static const uint8_t *sort_base;
static const struct canon *sort_canon;

static size_t item_len(const struct canon *c, size_t i)
{
    return (i + 1 < c->nitem ? c->item[i + 1] : c->len) - c->item[i];
}

static int item_cmp(const void *a, const void *b)
{
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    const struct canon *c = sort_canon;
    size_t li = item_len(c, i), lj = item_len(c, j);
    int r = memcmp(sort_base + c->item[i], sort_base + c->item[j], li < lj ? li : lj);
    return r ? r : (li > lj) - (li < lj);
}

/* The canonical bytes of entry @e into *out (malloc'd), *outlen. */
static void canonical(const struct kv_entry *e, uint8_t **out, size_t *outlen)
{
    struct canon c = {.e = e};
    if (e->type == KV_STRING) {
        const struct kv_val *v = e->val;
        uint8_t *b = malloc(v->len + 1);
        if (!b)
            abort();
        if (kv_val_read(v, b, v->len) != v->len)
            fail("kv_val_read of a %llu-byte value falls short", (unsigned long long)v->len);
        *out = b;
        *outlen = v->len;
        return;
    }
    const struct kv_type_ops *ops = e->type < KV_NTYPES ? kv_types[e->type] : NULL;
    if (!ops || !ops->rewrite)
        fail("a key of type %d has no rewrite", e->type);
    int err = ops->rewrite(e->obj, e->key, e->klen, canon_emit, &c);
    if (err)
        fail("the rewrite of a %s fails: %d", kv_type_name(e->type), err);
    size_t n = ops->count(e->obj);
    if (n == 0)
        fail("a %s key is left empty", kv_type_name(e->type));
    if (n != c.nitem)
        fail("a %s counts %zu elements but its rewrite emits %zu", kv_type_name(e->type), n, c.nitem);
    size_t *order = malloc(c.nitem * sizeof(*order) + 1);
    uint8_t *b = malloc(c.len + 1);
    if (!order || !b)
        abort();
    for (size_t i = 0; i < c.nitem; i++)
        order[i] = i;
    if (e->type != KV_LIST) {
        sort_base = c.buf;
        sort_canon = &c;
        qsort(order, c.nitem, sizeof(*order), item_cmp);
    }
    size_t len = 0;
    for (size_t i = 0; i < c.nitem; i++) {
        size_t l = item_len(&c, order[i]);
        memcpy(b + len, c.buf + c.item[order[i]], l);
        len += l;
    }
    free(order);
    free(c.buf);
    free(c.item);
    *out = b;
    *outlen = len;
}

static bool live(const struct kv_entry *e)
{
    return e->expire < 0 || fake_now <= e->expire;
}

struct cmp {
    struct srv *other;
    const char *what;
    size_t nlive;
};

static void cmp_one(void *arg, struct kv_entry *e)
{
    struct cmp *m = arg;
    if (!live(e))
        return;
    m->nlive++;
    /* kv_find without lazy deletion: the walk over the other store must
     * not change it either. */
    struct kv_store *st = &m->other->s.store;
    struct kv_entry *f = NULL;
    uint64_t h = kv_hash(st, e->key, e->klen);
    f = kv_find(st, e->key, e->klen, h, INT64_MIN); /* INT64_MIN: expires nothing */
    if (!f || !live(f))
        fail("%s: key '%.*s' (%s) is missing", m->what, (int)e->klen, e->key, kv_type_name(e->type));
    if (f->type != e->type)
        fail("%s: key '%.*s' is a %s there, a %s here", m->what, (int)e->klen, e->key, kv_type_name(f->type),
             kv_type_name(e->type));
    if (f->expire != e->expire)
        fail("%s: key '%.*s' expires at %lld there, %lld here", m->what, (int)e->klen, e->key, (long long)f->expire,
             (long long)e->expire);
    uint8_t *a, *b;
    size_t la, lb;
    canonical(e, &a, &la);
    canonical(f, &b, &lb);
    if (la != lb || memcmp(a, b, la) != 0)
        fail("%s: key '%.*s' (%s) differs: [%.*s] here, [%.*s] there", m->what, (int)e->klen, e->key,
             kv_type_name(e->type), (int)(la < 300 ? la : 300), a, (int)(lb < 300 ? lb : 300), b);
    free(a);
    free(b);
}

static void count_live(void *arg, struct kv_entry *e)
{
    if (live(e))
        ++*(size_t *)arg;
}

/* The live keys of @x and @y are the same. */
static void compare(struct srv *x, struct srv *y, const char *what)
{
    struct cmp m = {y, what, 0};
    kv_foreach(&x->s.store, cmp_one, &m);
    size_t ny = 0;
    kv_foreach(&y->s.store, count_live, &ny);
    if (ny != m.nlive)
        fail("%s: %zu live keys there, %zu here", what, ny, m.nlive);
}

/* ---- the rewrite check ---- */

static int c_emit(void *arg, int argc, const struct resp_arg *argv)
{
    (void)arg;
    srv_exec(&SC, argc, argv);
    if (SC.k.len == 0 || SC.k.buf[0] == '-') {
        show_cmd(argc, argv);
        fail("a rewrite command fails: %.*s", (int)(SC.k.len < 200 ? SC.k.len : 200), SC.k.buf);
    }
    return 0;
}

static struct resp_arg ra(const void *p, size_t n)
{
    struct resp_arg r = {.ptr = p, .len = n};
    return r;
}

/* What aof.c's snapshot writes for @e, into C. */
static void snap_one(void *arg, struct kv_entry *e)
{
    (void)arg;
    if (!live(e))
        return;
    int64_t now = fake_now;
    char num[24];
    if (e->type == KV_STRING) {
        const struct kv_val *v = e->val;
        struct resp_arg av[5] = {ra("SET", 3), ra(e->key, e->klen),
                                 v->nseg ? ra(v->seg[0].data, v->seg[0].len) : ra("", 0)};
        int argc = 3;
        if (e->expire >= 0) {
            av[3] = ra("PXAT", 4);
            av[4] = ra(num, (size_t)snprintf(num, sizeof(num), "%lld", (long long)e->expire));
            argc = 5;
        }
        c_emit(NULL, argc, av);
        for (uint32_t i = 1; i < v->nseg; i++) {
            av[0] = ra("APPEND", 6);
            av[2] = ra(v->seg[i].data, v->seg[i].len);
            c_emit(NULL, 3, av);
        }
        return;
    }
    if (e->expire >= 0 && fake_now >= e->expire)
        fake_now = e->expire - 1;
    kv_types[e->type]->rewrite(e->obj, e->key, e->klen, c_emit, NULL);
    if (e->expire >= 0) {
        struct resp_arg av[3] = {ra("PEXPIRE", 7), ra(e->key, e->klen),
                                 ra(num, (size_t)snprintf(num, sizeof(num), "%lld", (long long)(e->expire - fake_now)))};
        c_emit(NULL, 3, av);
    }
    fake_now = now;
}

/* ---- accounting ---- */

static void sum_obj(void *arg, struct kv_entry *e)
{
    if (e->type != KV_STRING)
        *(uint64_t *)arg += kv_types[e->type]->mem(e->obj);
}

static void check_accounting(void)
{
    uint64_t sum = 0;
    kv_foreach(&SA.s.store, sum_obj, &sum);
    kv_foreach(&SB.s.store, sum_obj, &sum);
    if (sum != kv_obj_bytes())
        fail("collections hold %llu bytes, kv_obj_bytes says %llu", (unsigned long long)sum,
             (unsigned long long)kv_obj_bytes());
}

static void check_all(void)
{
    check_accounting();
    compare(&SA, &SB, "AOF replay");
    srv_init(&SC);
    SC.s.write_hook = NULL;
    kv_foreach(&SA.s.store, snap_one, NULL);
    zero_sign_blind = true;
    compare(&SA, &SC, "AOF rewrite");
    zero_sign_blind = false;
    srv_free(&SC);
    check_accounting();
}

/* ---- running commands ---- */

static bool pseudo(int argc, const struct resp_arg *argv)
{
    if (argv[0].len == 0 || argv[0].ptr[0] != '@')
        return false;
    if (arg_is(&argv[0], "@tick")) {
        long long n = 1;
        if (argc > 1 && resp_str2ll(argv[1].ptr, argv[1].len, &n))
            n = n < 0 ? -(n % 100000) : n % 100000;
        fake_now += n;
    } else if (arg_is(&argv[0], "@expire")) {
        kv_active_expire(&SA.s, 1000);
    } else if (arg_is(&argv[0], "@cron")) {
        kv_server_cron(&SA.s);
    } else if (arg_is(&argv[0], "@check")) {
        check_all();
    } else {
        return false;
    }
    return true;
}

/* FUZZ_KVCMD_TRACE=1: every command and its reply on stderr. */
static bool trace;

static void run(int argc, const struct resp_arg *argv)
{
    if (argc < 1 || SA.s.shutdown || pseudo(argc, argv))
        return;
    /* No reply: with CLIENT REPLY OFF or SKIP, and to MONITOR in a
     * monitor, as in Redis. */
    bool quiet = SA.c.reply_off || SA.c.reply_skip || (SA.c.monitor && arg_is(&argv[0], "monitor"));
    srv_exec(&SA, argc, argv);
    int n = count_replies(SA.k.buf, SA.k.len);
    /* SHUTDOWN: no reply, the server exits (the input ends here). */
    bool may_be_quiet = quiet || SA.c.reply_off || SA.c.reply_skip || SA.s.shutdown;
    if (trace) {
        show_cmd(argc, argv);
        fputs("fuzz_kvcmd: reply: ", stderr);
        show_bytes(SA.k.buf, SA.k.len, 400);
        fputc('\n', stderr);
    }
    if (n < 0 || n > 1 || (n == 0 && !may_be_quiet)) {
        show_cmd(argc, argv);
        fail("%d replies (-1: malformed) of %zu bytes: [%.*s]", n, SA.k.len, (int)(SA.k.len < 400 ? SA.k.len : 400),
             SA.k.buf);
    }
    if (!SA.in_write || SA.s.dirty == SA.dirty_before)
        return;
    /* Logged: replay it as kv.c logs it. */
    if (SA.s.prop_argc) {
        argc = SA.s.prop_argc;
        argv = SA.s.prop_argv;
    }
    srv_exec(&SB, argc, argv);
    if (SB.k.len && SB.k.buf[0] == '-') {
        show_cmd(argc, argv);
        fail("the logged command fails on replay: %.*s", (int)(SB.k.len < 200 ? SB.k.len : 200), SB.k.buf);
    }
    compare(&SA, &SB, "AOF replay");
}

/* The compact form's tokens. */
#define LONG100 \
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
static const char *const tokens[] = {
    "k0", "k1", "k2", "k3", "k0", "k1", "a", "b", "c", "d", "", "0", "1", "-1", "2", "3", "10", "100", "-100",
    "1.5", "-2.5", "inf", "-inf", "+inf", "nan", "1e308", "-1e308", "9223372036854775807", "-9223372036854775808",
    "9223372036854775808", "(1", "(2", "[a", "[c", "(a", "+", "-", "*", "k*", "?", "[", "LIMIT", "WITHSCORES",
    "BYSCORE", "BYLEX", "REV", "NX", "XX", "GT", "LT", "CH", "INCR", "COUNT", "MATCH", "TYPE", "EX", "PX", "EXAT",
    "PXAT", "KEEPTTL", "GET", "LEFT", "RIGHT", "BEFORE", "AFTER", "RANK", "MAXLEN", "MIN", "MAX", "WITHVALUES",
    "REPLACE", "DB", "AGGREGATE", "WEIGHTS", "SUM", "ON", "OFF", "SKIP", "string", "list", "set", "hash", "zset",
    "maxmemory", "slowlog-log-slower-than", "slowlog-max-len", "ID", "ADDR", "SKIPME", "yes", "no", "NOSAVE", "ABORT",
    "SAMPLES", "-0", "0.5", "1e-310", "0x10", " 1", "4294967296", "-4294967297", "65536", LONG100, "ERR", "persistence", "all", "*k0*",
    "h[a-c]?", "\\", "1000", "-1000", "2147483648", "NOW", "FORCE", "IDLE", "FREQ", "USAGE", "HELP"};
#define NTOKENS (sizeof(tokens) / sizeof(tokens[0]))

/* Every command and subcommand, as the words that name it. */
struct row {
    const char *w0, *w1;
};
static struct row *rows;
static size_t nrows;

static void add_row(const char *w0, const char *w1)
{
    rows = realloc(rows, (nrows + 1) * sizeof(*rows));
    if (!rows)
        abort();
    rows[nrows++] = (struct row){w0, w1};
}

static void build_rows(void)
{
    for (size_t t = 0; t < kv_ncmd_tables; t++)
        for (size_t i = 0; i < *kv_cmd_tables[t].n; i++) {
            const struct kv_cmd *c = &kv_cmd_tables[t].cmds[i];
            add_row(c->name, NULL);
            for (int j = 0; j < c->nsubs; j++)
                add_row(c->name, c->subs[j].name);
        }
    add_row("@tick", NULL);
    add_row("@tick", NULL);
    add_row("@expire", NULL);
    add_row("@cron", NULL);
    add_row("@check", NULL);
    add_row("quit", NULL);
    add_row("nosuchcommand", NULL);
}

#define MAXARGS 24

static void run_compact(const uint8_t *p, size_t n)
{
    char nums[MAXARGS][8];
    size_t i = 0;
    while (i < n) {
        const struct row *rw = &rows[p[i++] % nrows];
        struct resp_arg argv[MAXARGS];
        int argc = 0;
        argv[argc++] = ra(rw->w0, strlen(rw->w0));
        if (rw->w1)
            argv[argc++] = ra(rw->w1, strlen(rw->w1));
        int want = i < n ? p[i++] & 15 : 0;
        for (int k = 0; k < want && i < n && argc < MAXARGS; k++) {
            uint8_t t = p[i++];
            if (t < 0x80) {
                argv[argc] = ra(tokens[t % NTOKENS], strlen(tokens[t % NTOKENS]));
            } else if (t < 0xc0) {
                int len = snprintf(nums[argc], sizeof(nums[argc]), "%d", (int)t - 0x88);
                argv[argc] = ra(nums[argc], (size_t)len);
            } else {
                size_t len = t & 0x3f;
                if (len > n - i)
                    len = n - i;
                argv[argc] = ra(p + i, len);
                i += len;
            }
            argc++;
        }
        run(argc, argv);
    }
}

static void run_text(const uint8_t *p, size_t n)
{
    struct resp_parser rp;
    resp_init(&rp);
    size_t off = 0;
    while (off < n) {
        size_t used;
        int st = resp_parse(&rp, p + off, n - off, &used);
        if (st == RESP_CMD)
            run(rp.argc, rp.argv);
        else if (st != RESP_EMPTY)
            break; /* incomplete, or a protocol error: the connection ends */
        off += used;
    }
    resp_free(&rp);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    build_rows();
    trace = getenv("FUZZ_KVCMD_TRACE") != NULL;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 4096)
        return 0;
    det_rng = true;
    det_state = 0x243f6a8885a308d3ull;
    fake_now = 1700000000000;
    srv_init(&SA);
    srv_init(&SB);
    SB.s.write_hook = NULL;
    /* The harness's copy: resp.c and the commands read only these bytes. */
    uint8_t *in = malloc(size);
    if (!in)
        abort();
    memcpy(in, data, size);
    if (in[0] & 0x80)
        run_compact(in + 1, size - 1);
    else
        run_text(in, size);
    check_all();

    /* FLUSHALL empties both (replayed into B as it is logged). */
    const struct resp_arg reset[1] = {ra("RESET", 5)}, flush[1] = {ra("FLUSHALL", 8)};
    SA.s.shutdown = false; /* the harness's own commands run after it */
    srv_exec(&SA, 1, reset); /* out of MONITOR and CLIENT REPLY OFF */
    run(1, flush);
    if (kv_size(&SA.s.store) || kv_size(&SB.s.store))
        fail("FLUSHALL leaves %zu and %zu keys", kv_size(&SA.s.store), kv_size(&SB.s.store));
    if (kv_obj_bytes() || kv_val_bytes())
        fail("after FLUSHALL collections hold %llu bytes, values %llu", (unsigned long long)kv_obj_bytes(),
             (unsigned long long)kv_val_bytes());
    if (SA.s.store.stats.key_bytes || SB.s.store.stats.key_bytes)
        fail("after FLUSHALL keys hold %llu bytes", (unsigned long long)SA.s.store.stats.key_bytes);
    srv_free(&SA);
    srv_free(&SB);
    free(in);
    if (kv_obj_bytes() || kv_val_bytes())
        fail("after freeing the keyspaces collections hold %llu bytes, values %llu",
             (unsigned long long)kv_obj_bytes(), (unsigned long long)kv_val_bytes());
    det_rng = false;
    return 0;
}
