/*
 * demi-kv's hashes: HSET, HGET, HINCRBY, HSCAN and the rest of Redis 7.0's
 * hash commands, with its argument-checking order, replies and errors.
 *
 * A hash is a dict (dict.h) of fields, each slot pointing at its value: a
 * malloc'd byte string with its length (struct hval). Every command is
 * O(1) per field it names, and HSET with one pair (redis-benchmark's) is
 * one dict lookup and at most one allocation of the value and one of the
 * field. Every byte a hash holds goes through kv_obj_account.
 *
 * Redis keeps a small hash (up to 512 fields, none of whose fields or
 * values ever exceeded 64 bytes) in a listpack and switches to a hash
 * table for good once it outgrows that; HSCAN then answers a small hash
 * whole, with cursor 0, whatever the cursor and COUNT. A hash here
 * remembers whether Redis would have switched (struct hash's big) so that
 * HSCAN pages the same hashes Redis pages, and answers the others whole.
 *
 * No command here may allocate in proportion to a number a client chose
 * rather than to what the hash holds: HRANDFIELD with a negative count is
 * bounded by KV_RAND_MAX and stops when the reply fails.
 */
#include "cmd_int.h"

#include "dict.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* Redis's hash-max-listpack-entries and hash-max-listpack-value defaults:
 * past either, Redis holds the hash as a hash table (HSCAN pages it). */
#define LISTPACK_ENTRIES 512
#define LISTPACK_VALUE   64
/* Longest number HINCRBYFLOAT reads (Redis's MAX_LONG_DOUBLE_CHARS). */
#define LD_CHARS 5120
/* A rewrite command holds at most this many pairs, or about this many
 * bytes. */
#define REWRITE_PAIRS 64
#define REWRITE_BYTES ((size_t)1 << 20)

struct hval {
    uint32_t len;
    uint8_t b[];
};

struct hash {
    struct dict d;
    size_t vbytes; /* bytes of the values (struct hval and contents) */
    bool big;      /* Redis would hold it as a hash table */
};

static size_t hval_size(size_t len)
{
    return sizeof(struct hval) + len;
}

static void *xmalloc(struct ctx *x, size_t n)
{
    void *p = malloc(n);
    while (!p && x->s->reclaim && x->s->reclaim())
        p = malloc(n);
    return p;
}

/* A copy of [p, p + n) as a value, accounted; NULL when out of memory. */
static struct hval *hval_new(struct ctx *x, struct hash *h, const void *p, size_t n)
{
    if (n > UINT32_MAX)
        return NULL;
    struct hval *v = xmalloc(x, hval_size(n));
    if (!v)
        return NULL;
    v->len = (uint32_t)n;
    memcpy(v->b, p, n);
    h->vbytes += hval_size(n);
    kv_obj_account((int64_t)hval_size(n));
    return v;
}

static void hval_free(struct hash *h, struct hval *v)
{
    if (!v)
        return;
    h->vbytes -= hval_size(v->len);
    kv_obj_account(-(int64_t)hval_size(v->len));
    free(v);
}

static struct hash *hash_new(struct ctx *x)
{
    struct hash *h = xmalloc(x, sizeof(*h));
    if (!h)
        return NULL;
    dict_init(&h->d);
    h->vbytes = 0;
    h->big = false;
    kv_obj_account((int64_t)sizeof(*h));
    return h;
}

static void free_slot(struct dict_ent *e, void *arg)
{
    hval_free(arg, e->v.ptr);
    e->v.ptr = NULL;
}

static void hash_free(void *obj)
{
    struct hash *h = obj;
    dict_clear(&h->d, free_slot, h);
    kv_obj_account(-(int64_t)sizeof(*h));
    free(h);
}

static size_t hash_mem(const void *obj)
{
    const struct hash *h = obj;
    return sizeof(*h) + dict_mem(&h->d) + h->vbytes;
}

static size_t hash_count(const void *obj)
{
    return dict_size(&((const struct hash *)obj)->d);
}

/* The rewrite's command being gathered: HSET key f1 v1 ... */
struct rw {
    struct resp_arg argv[2 + 2 * REWRITE_PAIRS];
    int argc;
    size_t bytes;
    kv_emit_fn emit;
    void *arg;
    int err;
};

static void rw_flush(struct rw *w)
{
    if (w->argc > 2 && !w->err)
        w->err = w->emit(w->arg, w->argc, w->argv);
    w->argc = 2;
    w->bytes = 0;
}

static void rw_pair(struct dict_ent *e, void *arg)
{
    struct rw *w = arg;
    const struct hval *v = e->v.ptr;
    w->argv[w->argc++] = (struct resp_arg){.ptr = e->key, .len = e->klen};
    w->argv[w->argc++] = (struct resp_arg){.ptr = v->b, .len = v->len};
    w->bytes += e->klen + v->len;
    if (w->argc == 2 + 2 * REWRITE_PAIRS || w->bytes >= REWRITE_BYTES)
        rw_flush(w);
}

static int hash_rewrite(const void *obj, const uint8_t *key, size_t klen, kv_emit_fn emit, void *arg)
{
    const struct hash *h = obj;
    struct rw *w = malloc(sizeof(*w));
    if (!w)
        return ENOMEM;
    w->argv[0] = (struct resp_arg){.ptr = (const uint8_t *)"HSET", .len = 4};
    w->argv[1] = (struct resp_arg){.ptr = key, .len = klen};
    w->argc = 2;
    w->bytes = 0;
    w->emit = emit;
    w->arg = arg;
    w->err = 0;
    /* dict_foreach cannot be stopped: after an error the rest is skipped
     * by rw_flush. */
    dict_foreach(&h->d, rw_pair, w);
    rw_flush(w);
    int err = w->err;
    free(w);
    return err;
}

const struct kv_type_ops kv_hash_ops = {
    .name = "hash",
    .free = hash_free,
    .mem = hash_mem,
    .count = hash_count,
    .rewrite = hash_rewrite,
};

/* ---- helpers ---- */

/* The hash at key 1 for a read: NULL with *ok true when the key is
 * absent, NULL with *ok false after WRONGTYPE. */
static struct hash *hash_read(struct ctx *x, bool *ok)
{
    struct kv_entry *e = lookup_type(x, 1, KV_HASH, ok);
    return e ? e->obj : NULL;
}

/* The hash at key 1 for a write, created (and its key added) when absent;
 * *ep gets its entry. NULL after a WRONGTYPE or OOM reply. A command that
 * leaves a new hash empty deletes it with hash_done. */
static struct hash *hash_write(struct ctx *x, struct kv_entry **ep)
{
    uint64_t hv;
    struct kv_entry *e = lookup_h(x, 1, &hv);
    if (e && e->type != KV_HASH) {
        err_wrongtype(x);
        return NULL;
    }
    if (!e) {
        struct hash *h = hash_new(x);
        if (!h || !(e = kv_insert_obj(&x->s->store, A(x, 1), L(x, 1), hv, KV_HASH, h))) {
            if (h)
                hash_free(h);
            err_oom(x);
            return NULL;
        }
    }
    *ep = e;
    return e->obj;
}

/* Deletes the key of a hash left empty (Redis never keeps empty
 * collections). */
static void hash_done(struct ctx *x, struct kv_entry *e)
{
    if (dict_size(&((struct hash *)e->obj)->d) == 0)
        kv_delete(&x->s->store, e);
}

/* Whether Redis would convert the hash to a hash table on storing a field
 * and value of these lengths. */
static void note_lengths(struct hash *h, size_t flen, size_t vlen)
{
    if (flen > LISTPACK_VALUE || vlen > LISTPACK_VALUE)
        h->big = true;
}

/*
 * Sets field [f, f + flen) to [v, v + vlen). Returns 1 when the field was
 * added, 0 when replaced, -1 when out of memory (nothing changed).
 */
static int hash_set(struct ctx *x, struct hash *h, const void *f, size_t flen, const void *v, size_t vlen)
{
    note_lengths(h, flen, vlen);
    struct hval *nv = hval_new(x, h, v, vlen);
    if (!nv)
        return -1;
    bool added;
    struct dict_ent *e = dict_add(&h->d, f, flen, &added);
    if (!e) {
        hval_free(h, nv);
        return -1;
    }
    if (!added)
        hval_free(h, e->v.ptr);
    e->v.ptr = nv;
    if (dict_size(&h->d) > LISTPACK_ENTRIES)
        h->big = true;
    return added ? 1 : 0;
}

static const struct hval *hash_get(const struct hash *h, const void *f, size_t flen)
{
    if (!h)
        return NULL;
    struct dict_ent *e = dict_find(&h->d, f, flen);
    return e ? e->v.ptr : NULL;
}

static void reply_hval(struct ctx *x, const struct hval *v)
{
    if (v)
        reply_bulk(x->r, v->b, v->len);
    else
        reply_null(x->r);
}

/* ---- commands ---- */

/* HSET and HMSET: every pair is set. */
static void hset_pairs(struct ctx *x, bool hmset)
{
    if (x->argc % 2 == 1) {
        err_arity(x);
        return;
    }
    struct kv_entry *e;
    struct hash *h = hash_write(x, &e);
    if (!h)
        return;
    long long added = 0;
    for (int i = 2; i < x->argc; i += 2) {
        int r = hash_set(x, h, A(x, i), L(x, i), A(x, i + 1), L(x, i + 1));
        if (r < 0) {
            /* Out of memory part way: the log records the pairs that
             * were set, and the client learns that the command failed. */
            if (i > 2 && kv_propagate(x, i, x->argv) == 0)
                x->s->dirty++;
            hash_done(x, e);
            err_oom(x);
            return;
        }
        added += r;
    }
    x->s->dirty++;
    if (hmset)
        reply_status(x->r, "OK");
    else
        reply_int(x->r, added);
}

static void cmd_hset(struct ctx *x)
{
    hset_pairs(x, false);
}

static void cmd_hmset(struct ctx *x)
{
    hset_pairs(x, true);
}

static void cmd_hsetnx(struct ctx *x)
{
    struct kv_entry *e;
    struct hash *h = hash_write(x, &e);
    if (!h)
        return;
    if (hash_get(h, A(x, 2), L(x, 2))) {
        reply_int(x->r, 0);
        return;
    }
    if (hash_set(x, h, A(x, 2), L(x, 2), A(x, 3), L(x, 3)) < 0) {
        hash_done(x, e);
        err_oom(x);
        return;
    }
    x->s->dirty++;
    reply_int(x->r, 1);
}

static void cmd_hget(struct ctx *x)
{
    bool ok;
    struct hash *h = hash_read(x, &ok);
    if (ok)
        reply_hval(x, hash_get(h, A(x, 2), L(x, 2)));
}

static void cmd_hmget(struct ctx *x)
{
    bool ok;
    struct hash *h = hash_read(x, &ok);
    if (!ok)
        return;
    reply_array(x->r, x->argc - 2);
    for (int i = 2; i < x->argc; i++)
        reply_hval(x, hash_get(h, A(x, i), L(x, i)));
}

static void cmd_hdel(struct ctx *x)
{
    bool ok;
    struct kv_entry *e = lookup_type(x, 1, KV_HASH, &ok);
    if (!ok)
        return;
    long long n = 0;
    if (e) {
        struct hash *h = e->obj;
        for (int i = 2; i < x->argc && dict_size(&h->d) > 0; i++) {
            struct dict_ent *f = dict_find(&h->d, A(x, i), L(x, i));
            if (f) {
                hval_free(h, f->v.ptr);
                dict_remove(&h->d, f);
                n++;
            }
        }
        if (n > 0) {
            hash_done(x, e);
            x->s->dirty++;
        }
    }
    reply_int(x->r, n);
}

static void cmd_hlen(struct ctx *x)
{
    bool ok;
    struct hash *h = hash_read(x, &ok);
    if (ok)
        reply_int(x->r, h ? (long long)dict_size(&h->d) : 0);
}

static void cmd_hexists(struct ctx *x)
{
    bool ok;
    struct hash *h = hash_read(x, &ok);
    if (ok)
        reply_int(x->r, hash_get(h, A(x, 2), L(x, 2)) != NULL);
}

static void cmd_hstrlen(struct ctx *x)
{
    bool ok;
    struct hash *h = hash_read(x, &ok);
    if (!ok)
        return;
    const struct hval *v = hash_get(h, A(x, 2), L(x, 2));
    reply_int(x->r, v ? (long long)v->len : 0);
}

static void cmd_hincrby(struct ctx *x)
{
    long long by, cur = 0;
    if (!arg_ll(x, 3, &by))
        return;
    struct kv_entry *e;
    struct hash *h = hash_write(x, &e);
    if (!h)
        return;
    const struct hval *v = hash_get(h, A(x, 2), L(x, 2));
    if (v && !resp_str2ll(v->b, v->len, &cur)) {
        reply_error(x->r, "ERR hash value is not an integer");
        return;
    }
    if ((by < 0 && cur < 0 && by < LLONG_MIN - cur) || (by > 0 && cur > 0 && by > LLONG_MAX - cur)) {
        reply_error(x->r, "ERR increment or decrement would overflow");
        return;
    }
    cur += by;
    char buf[24];
    size_t n = reply_fmt_ll(buf, cur);
    if (hash_set(x, h, A(x, 2), L(x, 2), buf, n) < 0) {
        hash_done(x, e);
        err_oom(x);
        return;
    }
    x->s->dirty++;
    reply_int(x->r, cur);
}

/* Redis's string2ld: the whole of [p, p + n) as a long double, no leading
 * space, no NaN, and no overflow or underflow to zero. */
static bool str2ld(const uint8_t *p, size_t n, long double *out)
{
    char buf[LD_CHARS];
    if (n == 0 || n >= sizeof(buf))
        return false;
    memcpy(buf, p, n);
    buf[n] = '\0';
    if (isspace((unsigned char)buf[0]))
        return false;
    char *end;
    errno = 0;
    long double d = strtold(buf, &end);
    if (*end != '\0' || isnan(d) || errno == EINVAL)
        return false;
    if (errno == ERANGE && (isinf(d) || d == 0))
        return false;
    *out = d;
    return true;
}

/* A finite long double as Redis's ld2string in human mode: 17 decimals
 * ("%.17Lf") without the trailing zeros (nor a trailing point), and "0"
 * for "-0". Returns the length, or 0 when it does not fit. */
static size_t ld_human(char *buf, size_t cap, long double d)
{
    int l = snprintf(buf, cap, "%.17Lf", d);
    if (l < 0 || (size_t)l + 1 > cap)
        return 0;
    size_t n = (size_t)l;
    if (memchr(buf, '.', n)) {
        while (buf[n - 1] == '0')
            n--;
        if (buf[n - 1] == '.')
            n--;
    }
    if (n == 2 && buf[0] == '-' && buf[1] == '0') {
        buf[0] = '0';
        n = 1;
    }
    return n;
}

static void cmd_hincrbyfloat(struct ctx *x)
{
    long double by, cur = 0;
    if (!str2ld(A(x, 3), L(x, 3), &by)) {
        reply_error(x->r, "ERR value is not a valid float");
        return;
    }
    if (isnan(by) || isinf(by)) {
        reply_error(x->r, "ERR value is NaN or Infinity");
        return;
    }
    struct kv_entry *e;
    struct hash *h = hash_write(x, &e);
    if (!h)
        return;
    const struct hval *v = hash_get(h, A(x, 2), L(x, 2));
    if (v && !str2ld(v->b, v->len, &cur)) {
        reply_error(x->r, "ERR hash value is not a float");
        return;
    }
    cur += by;
    if (isnan(cur) || isinf(cur)) {
        hash_done(x, e);
        reply_error(x->r, "ERR increment would produce NaN or Infinity");
        return;
    }
    char buf[LD_CHARS];
    size_t n = ld_human(buf, sizeof(buf), cur);
    /* The log records the value itself (HSET key field value), as Redis
     * propagates it, so that a replay cannot round differently. */
    struct resp_arg prop[4] = {
        {.ptr = (const uint8_t *)"HSET", .len = 4}, x->argv[1], x->argv[2], {.ptr = (const uint8_t *)buf, .len = n}};
    if (n == 0 || kv_propagate(x, 4, prop) != 0 || hash_set(x, h, A(x, 2), L(x, 2), buf, n) < 0) {
        hash_done(x, e);
        err_oom(x);
        return;
    }
    x->s->dirty++;
    reply_bulk(x->r, buf, n);
}

static void reply_key(struct dict_ent *e, void *arg)
{
    struct ctx *x = arg;
    reply_bulk(x->r, e->key, e->klen);
}

static void reply_val(struct dict_ent *e, void *arg)
{
    struct ctx *x = arg;
    reply_hval(x, e->v.ptr);
}

static void reply_pair(struct dict_ent *e, void *arg)
{
    reply_key(e, arg);
    reply_val(e, arg);
}

/* HGETALL, HKEYS and HVALS: @per replies per field. */
static void hash_all(struct ctx *x, void (*fn)(struct dict_ent *e, void *arg), int per)
{
    bool ok;
    struct hash *h = hash_read(x, &ok);
    if (!ok)
        return;
    if (!h) {
        reply_array(x->r, 0);
        return;
    }
    reply_array(x->r, (long long)dict_size(&h->d) * per);
    dict_foreach(&h->d, fn, x);
}

static void cmd_hgetall(struct ctx *x)
{
    hash_all(x, reply_pair, 2);
}

static void cmd_hkeys(struct ctx *x)
{
    hash_all(x, reply_key, 1);
}

static void cmd_hvals(struct ctx *x)
{
    hash_all(x, reply_val, 1);
}

/* splitmix64, seeded once from the kernel: HRANDFIELD's draws. */
static uint64_t rand64(void)
{
    static _Thread_local uint64_t state;
    if (state == 0 && getrandom(&state, sizeof(state), GRND_NONBLOCK) != (ssize_t)sizeof(state))
        state = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/*
 * A field drawn with the same chance for every field: dict_random (a
 * random bucket of either table while rehashing and a random position
 * below the longest chain, again until the position holds an entry). The
 * expected number of tries is maxchain * buckets / fields (rand_cost).
 */
static struct dict_ent *rand_field(struct hash *h)
{
    return dict_random(&h->d);
}

/* What drawing @draws fields one at a time costs, in visited entries;
 * beside the n that listing the hash costs. */
static double rand_cost(const struct hash *h, size_t draws)
{
    const struct dict *d = &h->d;
    size_t max = d->maxchain > d->maxchain1 ? d->maxchain : d->maxchain1;
    return (double)draws * (double)max * (double)dict_buckets(d) / (double)dict_size(d);
}

struct fill {
    struct dict_ent **a;
    size_t n;
};

static void fill_one(struct dict_ent *e, void *arg)
{
    struct fill *f = arg;
    f->a[f->n++] = e;
}

/* Every field of the hash in an array (NULL when out of memory). */
static struct dict_ent **rand_list(struct ctx *x, struct hash *h)
{
    struct fill f = {xmalloc(x, dict_size(&h->d) * sizeof(*f.a)), 0};
    if (f.a)
        dict_foreach(&h->d, fill_one, &f);
    return f.a;
}

static void reply_rand(struct ctx *x, struct dict_ent *e, bool withvalues)
{
    reply_key(e, x);
    if (withvalues)
        reply_val(e, x);
}

/* HRANDFIELD with a negative count: @count fields drawn with
 * replacement, from a list of the fields when drawing them one at a time
 * would cost more. Stops early once the reply failed (the connection is
 * then closed). false when out of memory. */
static bool rand_repeat(struct ctx *x, struct hash *h, size_t count, bool withvalues)
{
    size_t n = dict_size(&h->d);
    struct dict_ent **all = NULL;
    if (rand_cost(h, count) > (double)n && !(all = rand_list(x, h)))
        return false;
    reply_array(x->r, (long long)(withvalues ? count * 2 : count));
    for (size_t i = 0; i < count && !x->r->err; i++)
        reply_rand(x, all ? all[rand64() % n] : rand_field(h), withvalues);
    free(all);
    return true;
}

/* HRANDFIELD with a positive count smaller than the hash: @count
 * distinct fields. Few of a big hash: fields drawn until that many
 * different ones came up (count * 3 <= size: each draw is new with a
 * chance of 2/3 or more). Else the first @count of a list of every field,
 * shuffled into place (Fisher-Yates). false when out of memory. */
static bool rand_distinct(struct ctx *x, struct hash *h, size_t count, bool withvalues)
{
    size_t n = dict_size(&h->d);
    if (count * 3 > n || rand_cost(h, count * 3 / 2) > (double)n) {
        struct dict_ent **all = rand_list(x, h);
        if (!all)
            return false;
        reply_array(x->r, (long long)(withvalues ? count * 2 : count));
        for (size_t i = 0; i < count; i++) {
            size_t j = i + (size_t)(rand64() % (n - i));
            struct dict_ent *t = all[i];
            all[i] = all[j];
            all[j] = t;
            reply_rand(x, all[i], withvalues);
        }
        free(all);
        return true;
    }
    size_t cap = 4;
    while (cap < count * 2)
        cap *= 2;
    struct dict_ent **seen = calloc(cap, sizeof(*seen));
    if (!seen)
        return false;
    reply_array(x->r, (long long)(withvalues ? count * 2 : count));
    for (size_t got = 0; got < count;) {
        struct dict_ent *e = rand_field(h);
        size_t i = (size_t)(e->hash * 0x9e3779b97f4a7c15ull >> 7) & (cap - 1);
        while (seen[i] && seen[i] != e)
            i = (i + 1) & (cap - 1);
        if (seen[i])
            continue;
        seen[i] = e;
        got++;
        reply_rand(x, e, withvalues);
    }
    free(seen);
    return true;
}

static void cmd_hrandfield(struct ctx *x)
{
    long long count = 0;
    bool withvalues = false;
    if (x->argc >= 3) {
        if (!arg_ll(x, 2, &count))
            return;
        if (count < -LONG_MAX) {
            errorf(x, "ERR value is out of range, value must between %ld and %ld", -LONG_MAX, LONG_MAX);
            return;
        }
        if (x->argc > 4 || (x->argc == 4 && !arg_is(&x->argv[3], "withvalues"))) {
            err_syntax(x);
            return;
        }
        withvalues = x->argc == 4;
        if (withvalues && (count < -LONG_MAX / 2 || count > LONG_MAX / 2)) {
            reply_error(x->r, "ERR value is out of range");
            return;
        }
    }
    bool ok;
    struct hash *h = hash_read(x, &ok);
    if (!ok)
        return;
    if (x->argc == 2) {
        if (h)
            reply_key(rand_field(h), x);
        else
            reply_null(x->r);
        return;
    }
    if (!h || count == 0) {
        reply_array(x->r, 0);
        return;
    }
    size_t size = dict_size(&h->d);
    bool done;
    if (count < 0) {
        if (-count > KV_RAND_MAX) {
            errorf(x, "ERR value is out of range: a negative count draws at most %lld fields", KV_RAND_MAX);
            return;
        }
        done = rand_repeat(x, h, (size_t)-count, withvalues);
    } else if ((unsigned long long)count >= size) {
        reply_array(x->r, (long long)(withvalues ? size * 2 : size));
        dict_foreach(&h->d, withvalues ? reply_pair : reply_key, x);
        done = true;
    } else {
        done = rand_distinct(x, h, (size_t)count, withvalues);
    }
    if (!done)
        err_oom(x);
}

struct scan_state {
    const struct scan_args *a;
    struct dict_ent **hit;
    size_t n, cap;
    bool oom;
};

static void scan_one(struct dict_ent *e, void *arg)
{
    struct scan_state *st = arg;
    if (st->oom || !scan_match(st->a, e->key, e->klen))
        return;
    if (st->n == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 16;
        struct dict_ent **hit = realloc(st->hit, cap * sizeof(*hit));
        if (!hit) {
            st->oom = true;
            return;
        }
        st->hit = hit;
        st->cap = cap;
    }
    st->hit[st->n++] = e;
}

static void cmd_hscan(struct ctx *x)
{
    /* Redis's order: the cursor, then the key (a missing key answers an
     * empty scan whatever the options), then the options. */
    struct scan_args a;
    struct ctx cursor_only = *x;
    cursor_only.argc = 3;
    if (!scan_parse(&cursor_only, 2, false, &a))
        return;
    bool ok;
    struct hash *h = hash_read(x, &ok);
    if (!ok)
        return;
    if (!h) {
        scan_reply_head(x, 0, 0);
        return;
    }
    if (!scan_parse(x, 2, false, &a))
        return;
    struct scan_state st = {.a = &a};
    uint64_t next = 0;
    if (h->big)
        next = dict_scan(&h->d, a.cursor, (size_t)a.count, scan_one, &st);
    else
        dict_foreach(&h->d, scan_one, &st); /* a small hash comes whole, as from Redis */
    if (st.oom) {
        free(st.hit);
        err_oom(x);
        return;
    }
    scan_reply_head(x, next, (long long)st.n * 2);
    for (size_t i = 0; i < st.n; i++)
        reply_pair(st.hit[i], x);
    free(st.hit);
}

#define CMD KV_CMD

const struct kv_cmd kv_hash_cmds[] = {
    CMD("hset", -4, cmd_hset, "write denyoom fast", "write hash fast", 1, 1, 1, "hash", "2.0.0",
        "O(1) for each field/value pair added, so O(N) to add N field/value pairs when the command is called with "
        "multiple field/value pairs.",
        "Set the string value of a hash field"),
    CMD("hsetnx", 4, cmd_hsetnx, "write denyoom fast", "write hash fast", 1, 1, 1, "hash", "2.0.0", "O(1)",
        "Set the value of a hash field, only if the field does not exist"),
    CMD("hmset", -4, cmd_hmset, "write denyoom fast", "write hash fast", 1, 1, 1, "hash", "2.0.0",
        "O(N) where N is the number of fields being set.", "Set multiple hash fields to multiple values"),
    CMD("hget", 3, cmd_hget, "readonly fast", "read hash fast", 1, 1, 1, "hash", "2.0.0", "O(1)",
        "Get the value of a hash field"),
    CMD("hmget", -3, cmd_hmget, "readonly fast", "read hash fast", 1, 1, 1, "hash", "2.0.0",
        "O(N) where N is the number of fields being requested.", "Get the values of all the given hash fields"),
    CMD("hgetall", 2, cmd_hgetall, "readonly", "read hash slow", 1, 1, 1, "hash", "2.0.0",
        "O(N) where N is the size of the hash.", "Get all the fields and values in a hash"),
    CMD("hdel", -3, cmd_hdel, "write fast", "write hash fast", 1, 1, 1, "hash", "2.0.0",
        "O(N) where N is the number of fields to be removed.", "Delete one or more hash fields"),
    CMD("hexists", 3, cmd_hexists, "readonly fast", "read hash fast", 1, 1, 1, "hash", "2.0.0", "O(1)",
        "Determine if a hash field exists"),
    CMD("hlen", 2, cmd_hlen, "readonly fast", "read hash fast", 1, 1, 1, "hash", "2.0.0", "O(1)",
        "Get the number of fields in a hash"),
    CMD("hstrlen", 3, cmd_hstrlen, "readonly fast", "read hash fast", 1, 1, 1, "hash", "3.2.0", "O(1)",
        "Get the length of the value of a hash field"),
    CMD("hincrby", 4, cmd_hincrby, "write denyoom fast", "write hash fast", 1, 1, 1, "hash", "2.0.0", "O(1)",
        "Increment the integer value of a hash field by the given number"),
    CMD("hincrbyfloat", 4, cmd_hincrbyfloat, "write denyoom fast", "write hash fast", 1, 1, 1, "hash", "2.6.0", "O(1)",
        "Increment the float value of a hash field by the given amount"),
    CMD("hkeys", 2, cmd_hkeys, "readonly", "read hash slow", 1, 1, 1, "hash", "2.0.0",
        "O(N) where N is the size of the hash.", "Get all the fields in a hash"),
    CMD("hvals", 2, cmd_hvals, "readonly", "read hash slow", 1, 1, 1, "hash", "2.0.0",
        "O(N) where N is the size of the hash.", "Get all the values in a hash"),
    CMD("hrandfield", -2, cmd_hrandfield, "readonly", "read hash slow", 1, 1, 1, "hash", "6.2.0",
        "O(N) where N is the number of fields returned", "Get one or multiple random fields from a hash"),
    CMD("hscan", -3, cmd_hscan, "readonly", "read hash slow", 1, 1, 1, "hash", "2.8.0",
        "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to "
        "return back to 0. N is the number of elements inside the collection..",
        "Incrementally iterate hash fields and associated values"),
};

const size_t kv_hash_ncmds = sizeof(kv_hash_cmds) / sizeof(kv_hash_cmds[0]);
