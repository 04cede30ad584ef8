/*
 * demi-kv's sorted sets: the ZSET type and the Z* commands, with Redis
 * 7.0's arguments, replies and errors.
 *
 * A sorted set is a skip list ordered by (score, member) with span counts
 * (zset.h) plus a dict mapping each member to its node. The pair is
 * Redis's own choice, for the same reasons: range queries by score, by
 * member and by rank need an ordered structure that also gives ranks in
 * O(log N) (the spans), while ZSCORE, ZADD's "is it already there" and
 * ZREM need member lookup in O(1) (the dict). A node points at its
 * member's bytes in the dict entry's key, so each member is stored once.
 * Insert, delete and rank are O(log N); a range is O(log N + M), offsets
 * included (LIMIT jumps by rank instead of walking). Levels are drawn from
 * a generator seeded from getrandom, so a client cannot predict which
 * nodes are tall and delete them to flatten the list.
 *
 * Where Redis's replies depend on its encoding of a set (a listpack up to
 * 128 members of up to 64 bytes, else a skip list), a flag tracks which
 * one Redis would use, so that the replies stay byte-identical.
 *
 * Never: keep an emptied sorted set (its key is deleted), or allocate in
 * proportion to a number a client chose rather than to what is stored.
 */
#include "cmd_int.h"
#include "dict.h"
#include "reply.h"
#include "resp.h"
#include "store.h"
#include "zset.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* ---- the skip list ---- */

static size_t node_size(uint32_t nlev)
{
    return sizeof(struct zsl_node) + nlev * sizeof(struct zsl_level);
}

static void zsl_account(struct zsl *z, int64_t delta)
{
    z->bytes += (size_t)delta;
    kv_obj_account(delta);
}

static struct zsl_node *node_new(struct zsl *z, uint32_t nlev)
{
    struct zsl_node *n = calloc(1, node_size(nlev));
    if (!n) {
        errno = ENOMEM;
        return NULL;
    }
    n->nlev = nlev;
    zsl_account(z, (int64_t)node_size(nlev));
    return n;
}

static void node_free(struct zsl *z, struct zsl_node *n)
{
    zsl_account(z, -(int64_t)node_size(n->nlev));
    free(n);
}

int zsl_init(struct zsl *z, uint64_t seed)
{
    memset(z, 0, sizeof(*z));
    z->rng = seed | 1;
    z->level = 1;
    if (!(z->head = node_new(z, ZSL_MAXLEVEL)))
        return ENOMEM;
    return 0;
}

void zsl_free(struct zsl *z)
{
    struct zsl_node *n = z->head;
    while (n) {
        struct zsl_node *next = n->lv[0].fwd;
        node_free(z, n);
        n = next;
    }
    z->head = z->tail = NULL;
    z->len = 0;
}

int zsl_cmp_ele(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen;
}

/* Node @n sorts before (score, ele). */
static bool node_lt(const struct zsl_node *n, double score, const uint8_t *ele, size_t len)
{
    return n->score < score || (n->score == score && zsl_cmp_ele(n->ele, n->len, ele, len) < 0);
}

/* A level with probability 1/4 of going one higher, as Redis's. */
static uint32_t random_level(struct zsl *z)
{
    uint32_t level = 1;
    for (;;) {
        z->rng ^= z->rng >> 12;
        z->rng ^= z->rng << 25;
        z->rng ^= z->rng >> 27;
        uint64_t r = z->rng * 0x2545f4914f6cdd1dull;
        /* Up to 31 two-bit draws from one number. */
        for (int i = 0; i < 31; i++, r >>= 2) {
            if ((r & 3) != 0 || level >= ZSL_MAXLEVEL)
                return level;
            level++;
        }
    }
}

/* Links a node whose score, member and level are set at its place. */
static void zsl_link(struct zsl *z, struct zsl_node *n)
{
    struct zsl_node *update[ZSL_MAXLEVEL];
    size_t rank[ZSL_MAXLEVEL];
    struct zsl_node *x = z->head;
    for (int i = z->level - 1; i >= 0; i--) {
        rank[i] = i == z->level - 1 ? 0 : rank[i + 1];
        while (x->lv[i].fwd && node_lt(x->lv[i].fwd, n->score, n->ele, n->len)) {
            rank[i] += x->lv[i].span;
            x = x->lv[i].fwd;
        }
        update[i] = x;
    }
    int level = (int)n->nlev;
    if (level > z->level) {
        for (int i = z->level; i < level; i++) {
            rank[i] = 0;
            update[i] = z->head;
            z->head->lv[i].fwd = NULL;
            z->head->lv[i].span = z->len;
        }
        z->level = level;
    }
    for (int i = 0; i < level; i++) {
        n->lv[i].fwd = update[i]->lv[i].fwd;
        update[i]->lv[i].fwd = n;
        n->lv[i].span = update[i]->lv[i].span - (rank[0] - rank[i]);
        update[i]->lv[i].span = rank[0] - rank[i] + 1;
    }
    for (int i = level; i < z->level; i++)
        update[i]->lv[i].span++;
    n->back = update[0] == z->head ? NULL : update[0];
    if (n->lv[0].fwd)
        n->lv[0].fwd->back = n;
    else
        z->tail = n;
    z->len++;
}

struct zsl_node *zsl_insert(struct zsl *z, double score, const uint8_t *ele, uint32_t len)
{
    struct zsl_node *n = node_new(z, random_level(z));
    if (!n)
        return NULL;
    n->score = score;
    n->ele = ele;
    n->len = len;
    zsl_link(z, n);
    return n;
}

/* Unlinks @n given the last node before it at every level. */
static void unlink_with(struct zsl *z, struct zsl_node *n, struct zsl_node **update)
{
    for (int i = 0; i < z->level; i++) {
        if (update[i]->lv[i].fwd == n) {
            update[i]->lv[i].span += n->lv[i].span - 1;
            update[i]->lv[i].fwd = n->lv[i].fwd;
        } else {
            update[i]->lv[i].span--;
        }
    }
    if (n->lv[0].fwd)
        n->lv[0].fwd->back = n->back;
    else
        z->tail = n->back;
    while (z->level > 1 && !z->head->lv[z->level - 1].fwd)
        z->level--;
    z->len--;
}

static void zsl_unlink(struct zsl *z, struct zsl_node *n)
{
    struct zsl_node *update[ZSL_MAXLEVEL];
    struct zsl_node *x = z->head;
    for (int i = z->level - 1; i >= 0; i--) {
        while (x->lv[i].fwd && node_lt(x->lv[i].fwd, n->score, n->ele, n->len))
            x = x->lv[i].fwd;
        update[i] = x;
    }
    unlink_with(z, n, update);
}

void zsl_delete_node(struct zsl *z, struct zsl_node *n)
{
    zsl_unlink(z, n);
    node_free(z, n);
}

void zsl_update_score(struct zsl *z, struct zsl_node *n, double score)
{
    /* In place when the node stays between its neighbours. */
    if ((!n->back || node_lt(n->back, score, n->ele, n->len)) &&
        (!n->lv[0].fwd || !node_lt(n->lv[0].fwd, score, n->ele, n->len))) {
        n->score = score;
        return;
    }
    zsl_unlink(z, n);
    n->score = score;
    zsl_link(z, n);
}

size_t zsl_rank(const struct zsl *z, const struct zsl_node *n)
{
    size_t rank = 0;
    const struct zsl_node *x = z->head;
    for (int i = z->level - 1; i >= 0; i--) {
        while (x->lv[i].fwd && (x->lv[i].fwd == n || node_lt(x->lv[i].fwd, n->score, n->ele, n->len))) {
            rank += x->lv[i].span;
            x = x->lv[i].fwd;
        }
        if (x == n)
            return rank;
    }
    return 0;
}

struct zsl_node *zsl_by_rank(const struct zsl *z, size_t rank)
{
    size_t seen = 0;
    struct zsl_node *x = z->head;
    if (rank == 0 || rank > z->len)
        return NULL;
    for (int i = z->level - 1; i >= 0; i--) {
        while (x->lv[i].fwd && seen + x->lv[i].span <= rank) {
            seen += x->lv[i].span;
            x = x->lv[i].fwd;
        }
        if (seen == rank)
            return x;
    }
    return NULL;
}

size_t zsl_delete_rank_range(struct zsl *z, size_t start, size_t end, void (*fn)(struct zsl_node *n, void *arg),
                             void *arg)
{
    struct zsl_node *update[ZSL_MAXLEVEL];
    struct zsl_node *x = z->head;
    size_t seen = 0;
    for (int i = z->level - 1; i >= 0; i--) {
        while (x->lv[i].fwd && seen + x->lv[i].span < start) {
            seen += x->lv[i].span;
            x = x->lv[i].fwd;
        }
        update[i] = x;
    }
    /* The predecessors stay the same while the range goes, one by one. */
    size_t removed = 0;
    x = x->lv[0].fwd;
    for (size_t r = start; x && r <= end; r++) {
        struct zsl_node *next = x->lv[0].fwd;
        unlink_with(z, x, update);
        if (fn)
            fn(x, arg);
        node_free(z, x);
        removed++;
        x = next;
    }
    return removed;
}

static bool score_gte_min(double v, const struct zrange_score *r)
{
    return r->minex ? v > r->min : v >= r->min;
}

static bool score_lte_max(double v, const struct zrange_score *r)
{
    return r->maxex ? v < r->max : v <= r->max;
}

static bool score_range_empty(const struct zrange_score *r)
{
    return r->min > r->max || (r->min == r->max && (r->minex || r->maxex));
}

struct zsl_node *zsl_first_in_score(const struct zsl *z, const struct zrange_score *r, size_t *rank)
{
    if (score_range_empty(r))
        return NULL;
    size_t seen = 0;
    struct zsl_node *x = z->head;
    for (int i = z->level - 1; i >= 0; i--) {
        while (x->lv[i].fwd && !score_gte_min(x->lv[i].fwd->score, r)) {
            seen += x->lv[i].span;
            x = x->lv[i].fwd;
        }
    }
    x = x->lv[0].fwd;
    if (!x || !score_lte_max(x->score, r))
        return NULL;
    *rank = seen + 1;
    return x;
}

struct zsl_node *zsl_last_in_score(const struct zsl *z, const struct zrange_score *r, size_t *rank)
{
    if (score_range_empty(r))
        return NULL;
    size_t seen = 0;
    struct zsl_node *x = z->head;
    for (int i = z->level - 1; i >= 0; i--) {
        while (x->lv[i].fwd && score_lte_max(x->lv[i].fwd->score, r)) {
            seen += x->lv[i].span;
            x = x->lv[i].fwd;
        }
    }
    if (x == z->head || !score_gte_min(x->score, r))
        return NULL;
    *rank = seen;
    return x;
}

/* Compares a member with a range end. */
static int lex_cmp(const uint8_t *p, size_t n, int kind, const uint8_t *e, size_t elen)
{
    if (kind == LEX_MIN)
        return 1;
    if (kind == LEX_MAX)
        return -1;
    return zsl_cmp_ele(p, n, e, elen);
}

static bool lex_gte_min(const struct zsl_node *x, const struct zrange_lex *r)
{
    int c = lex_cmp(x->ele, x->len, r->minkind, r->min, r->minlen);
    return r->minex ? c > 0 : c >= 0;
}

static bool lex_lte_max(const struct zsl_node *x, const struct zrange_lex *r)
{
    int c = lex_cmp(x->ele, x->len, r->maxkind, r->max, r->maxlen);
    return r->maxex ? c < 0 : c <= 0;
}

/* Redis's test for lex ranges that are always empty: min above max, or
 * equal ends with one exclusive ("-" and "+" count as exclusive). */
static bool lex_range_empty(const struct zrange_lex *r)
{
    int c;
    if (r->minkind == r->maxkind && r->minkind != LEX_STR)
        c = 0;
    else if (r->minkind == LEX_MIN || r->maxkind == LEX_MAX)
        c = -1;
    else if (r->minkind == LEX_MAX || r->maxkind == LEX_MIN)
        c = 1;
    else
        c = zsl_cmp_ele(r->min, r->minlen, r->max, r->maxlen);
    return c > 0 || (c == 0 && (r->minex || r->maxex));
}

/*
 * Lex ranges assume every member has the same score, the list then being
 * in member order too. When the scores differ, Redis's answer is what its
 * listpack's linear scan gives (a small set), and a descent through the
 * skip list would depend on the nodes' random levels, so that the same
 * command could remove other members when the log is replayed: such a set
 * is scanned from its start, as a listpack is, for the first member in
 * range and the run of members up to max after it.
 */
static bool zsl_one_score(const struct zsl *z)
{
    return !z->tail || z->head->lv[0].fwd->score == z->tail->score;
}

struct zsl_node *zsl_first_in_lex(const struct zsl *z, const struct zrange_lex *r, size_t *rank)
{
    if (lex_range_empty(r))
        return NULL;
    if (!zsl_one_score(z)) {
        size_t k = 1;
        for (struct zsl_node *x = z->head->lv[0].fwd; x; x = x->lv[0].fwd, k++)
            if (lex_gte_min(x, r)) {
                if (!lex_lte_max(x, r))
                    return NULL;
                *rank = k;
                return x;
            }
        return NULL;
    }
    size_t seen = 0;
    struct zsl_node *x = z->head;
    for (int i = z->level - 1; i >= 0; i--) {
        while (x->lv[i].fwd && !lex_gte_min(x->lv[i].fwd, r)) {
            seen += x->lv[i].span;
            x = x->lv[i].fwd;
        }
    }
    x = x->lv[0].fwd;
    if (!x || !lex_lte_max(x, r))
        return NULL;
    *rank = seen + 1;
    return x;
}

struct zsl_node *zsl_last_in_lex(const struct zsl *z, const struct zrange_lex *r, size_t *rank)
{
    if (lex_range_empty(r))
        return NULL;
    if (!zsl_one_score(z)) {
        /* The run that starts at the first member in range, as Redis's
         * listpack walks it. */
        struct zsl_node *x = zsl_first_in_lex(z, r, rank);
        while (x && x->lv[0].fwd && lex_lte_max(x->lv[0].fwd, r)) {
            x = x->lv[0].fwd;
            ++*rank;
        }
        return x;
    }
    size_t seen = 0;
    struct zsl_node *x = z->head;
    for (int i = z->level - 1; i >= 0; i--) {
        while (x->lv[i].fwd && lex_lte_max(x->lv[i].fwd, r)) {
            seen += x->lv[i].span;
            x = x->lv[i].fwd;
        }
    }
    if (x == z->head || !lex_gte_min(x, r))
        return NULL;
    *rank = seen;
    return x;
}

/* ---- the sorted set: dict + skip list ---- */

struct zset {
    struct dict d; /* member -> its node (v.ptr) */
    struct zsl zsl;
    /* Redis would hold it in a skip list and hash table by now, not a
     * listpack (once over 128 members or with a member over 64 bytes; it
     * never goes back). Two replies depend on it: ZSCAN walks the dict
     * of a big set, and replies a small one whole, in order; and a small
     * set stores -0 as 0 (see stored()). */
    bool big;
};

enum { ZSCAN_SMALL_LEN = 128, ZSCAN_SMALL_BYTES = 64 };

static uint64_t level_seed(void)
{
    static _Thread_local uint64_t seed, count;
    if (seed == 0) {
        if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
            seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
        seed |= 1;
    }
    return seed ^ (++count * 0x9e3779b97f4a7c15ull);
}

static struct zset *zset_new(void)
{
    struct zset *zs = malloc(sizeof(*zs));
    if (!zs)
        return NULL;
    dict_init(&zs->d);
    zs->big = false;
    if (zsl_init(&zs->zsl, level_seed()) != 0) {
        free(zs);
        return NULL;
    }
    kv_obj_account((int64_t)sizeof(*zs));
    return zs;
}

static void zset_free(void *obj)
{
    struct zset *zs = obj;
    zsl_free(&zs->zsl);
    dict_clear(&zs->d, NULL, NULL);
    kv_obj_account(-(int64_t)sizeof(*zs));
    free(zs);
}

static size_t zset_mem(const void *obj)
{
    const struct zset *zs = obj;
    return sizeof(*zs) + zs->zsl.bytes + dict_mem(&zs->d);
}

static size_t zset_count(const void *obj)
{
    return ((const struct zset *)obj)->zsl.len;
}

/* The dict entry whose key holds a node's member bytes. */
static struct dict_ent *node_ent(const struct zsl_node *n)
{
    return (struct dict_ent *)(void *)((uint8_t *)(uintptr_t)n->ele - offsetof(struct dict_ent, key));
}

/* Removes a node from both structures. */
static void zset_remove(struct zset *zs, struct zsl_node *n)
{
    struct dict_ent *e = node_ent(n);
    zsl_delete_node(&zs->zsl, n);
    dict_remove(&zs->d, e);
}

static void drop_ent(struct zsl_node *n, void *arg)
{
    dict_remove(arg, node_ent(n));
}

/* Redis 7.0's reply for a double: "%.17g", and "inf"/"-inf". */
static int fmt_score(char *buf, size_t cap, double d)
{
    if (isinf(d))
        return snprintf(buf, cap, "%s", d > 0 ? "inf" : "-inf");
    return snprintf(buf, cap, "%.17g", d);
}

static void reply_score(struct reply *r, double d)
{
    char buf[64];
    int n = fmt_score(buf, sizeof(buf), d);
    reply_bulk(r, buf, (size_t)n);
}

static int zset_rewrite(const void *obj, const uint8_t *key, size_t klen, kv_emit_fn emit, void *arg)
{
    enum { PAIRS = 64, MAXBYTES = 1024 * 1024 };
    const struct zset *zs = obj;
    struct resp_arg argv[2 + 2 * PAIRS];
    char scores[PAIRS][32];
    memset(argv, 0, sizeof(argv));
    argv[0].ptr = (const uint8_t *)"ZADD";
    argv[0].len = 4;
    argv[1].ptr = key;
    argv[1].len = klen;
    int npairs = 0;
    size_t bytes = 0;
    for (const struct zsl_node *n = zs->zsl.head->lv[0].fwd; n; n = n->lv[0].fwd) {
        /* "%.17g" reads back as the same double; inf as inf. */
        int len = fmt_score(scores[npairs], sizeof(scores[npairs]), n->score);
        argv[2 + 2 * npairs].ptr = (const uint8_t *)scores[npairs];
        argv[2 + 2 * npairs].len = (size_t)len;
        argv[3 + 2 * npairs].ptr = n->ele;
        argv[3 + 2 * npairs].len = n->len;
        npairs++;
        bytes += (size_t)len + n->len;
        if (npairs == PAIRS || bytes >= MAXBYTES || !n->lv[0].fwd) {
            int err = emit(arg, 2 + 2 * npairs, argv);
            if (err)
                return err;
            npairs = 0;
            bytes = 0;
        }
    }
    return 0;
}

const struct kv_type_ops kv_zset_ops = {
    .name = "zset",
    .free = zset_free,
    .mem = zset_mem,
    .count = zset_count,
    .rewrite = zset_rewrite,
};

/* ---- command helpers ---- */

/* Looks the key at argument @i up for a read: the set, or NULL with *ok
 * true (absent) or false (WRONGTYPE replied). */
static struct zset *zread(struct ctx *x, int i, bool *ok)
{
    struct kv_entry *e = lookup_read(x, i);
    *ok = !e || e->type == KV_ZSET;
    if (!*ok)
        err_wrongtype(x);
    return *ok && e ? e->obj : NULL;
}

/* After a removal: deletes the key when its set is empty. */
static void drop_if_empty(struct ctx *x, struct kv_entry *e)
{
    struct zset *zs = e->obj;
    if (zs->zsl.len == 0)
        kv_delete(&x->s->store, e);
}

/* A score range end as Redis's zslParseRange reads it: "(" for exclusive,
 * then what strtod takes up to the end of the string or its first NUL
 * byte (so leading spaces pass and "" is 0), never NaN. */
static bool parse_score_end(const struct resp_arg *a, double *v, bool *ex)
{
    char stack[128], *buf = stack;
    const uint8_t *p = a->ptr;
    size_t n = a->len;
    *ex = n > 0 && p[0] == '(';
    if (*ex) {
        p++;
        n--;
    }
    /* Only the bytes before the first NUL count. */
    const uint8_t *nul = memchr(p, 0, n);
    if (nul)
        n = (size_t)(nul - p);
    if (n >= sizeof(stack) && !(buf = malloc(n + 1)))
        return false;
    memcpy(buf, p, n);
    buf[n] = '\0';
    char *end;
    *v = strtod(buf, &end);
    bool ok = *end == '\0' && !isnan(*v);
    if (buf != stack)
        free(buf);
    return ok;
}

static bool parse_score_range(struct ctx *x, int imin, int imax, struct zrange_score *r)
{
    if (parse_score_end(&x->argv[imin], &r->min, &r->minex) && parse_score_end(&x->argv[imax], &r->max, &r->maxex))
        return true;
    reply_error(x->r, "ERR min or max is not a float");
    return false;
}

/* One end of a lex range: "-", "+", "(bytes" or "[bytes". */
static bool parse_lex_end(const struct resp_arg *a, int *kind, const uint8_t **p, size_t *n, bool *ex)
{
    if (a->len == 0)
        return false;
    switch (a->ptr[0]) {
    case '+':
    case '-':
        /* Redis reads the argument as a C string here. */
        if (a->len > 1 && a->ptr[1] != '\0')
            return false;
        *kind = a->ptr[0] == '+' ? LEX_MAX : LEX_MIN;
        *ex = true;
        *p = NULL;
        *n = 0;
        return true;
    case '(':
    case '[':
        *kind = LEX_STR;
        *ex = a->ptr[0] == '(';
        *p = a->ptr + 1;
        *n = a->len - 1;
        return true;
    default:
        return false;
    }
}

static bool parse_lex_range(struct ctx *x, int imin, int imax, struct zrange_lex *r)
{
    if (parse_lex_end(&x->argv[imin], &r->minkind, &r->min, &r->minlen, &r->minex) &&
        parse_lex_end(&x->argv[imax], &r->maxkind, &r->max, &r->maxlen, &r->maxex))
        return true;
    reply_error(x->r, "ERR min or max not valid string range item");
    return false;
}

/* Start and end indexes as Redis sanitizes them for a set of @len; false
 * when the range is empty. */
static bool rank_range(long long start, long long end, size_t len, size_t *s, size_t *e)
{
    long long llen = (long long)len;
    if (start < 0)
        start = llen + start;
    if (end < 0)
        end = llen + end;
    if (start < 0)
        start = 0;
    if (start > end || start >= llen)
        return false;
    if (end >= llen)
        end = llen - 1;
    *s = (size_t)start;
    *e = (size_t)end;
    return true;
}

/* ---- ZADD, ZINCRBY ---- */

/* The score a set keeps. Redis holds a small set in a listpack, which
 * stores a score as the shortest string that reads back, turning -0 into
 * the integer 0; a set it holds in a skip list keeps -0. The reply to the
 * command itself still shows the score it computed, as Redis's does. */
static double stored(const struct zset *zs, double score)
{
    return !zs->big && score == 0 ? 0.0 : score;
}

/* Adds a member known to be absent. Like Redis, a set becomes "big" (a
 * skip list there) before the member that makes it pass 128 members or
 * that is over 64 bytes goes in. false when out of memory. */
static bool zset_add_new(struct zset *zs, double score, const uint8_t *m, size_t mlen)
{
    bool isnew;
    struct dict_ent *de = mlen > UINT32_MAX ? NULL : dict_add(&zs->d, m, mlen, &isnew);
    if (!de)
        return false;
    bool was_big = zs->big;
    if (zs->zsl.len + 1 > ZSCAN_SMALL_LEN || mlen > ZSCAN_SMALL_BYTES)
        zs->big = true;
    struct zsl_node *n = zsl_insert(&zs->zsl, stored(zs, score), de->key, de->klen);
    if (!n) {
        zs->big = was_big;
        dict_remove(&zs->d, de);
        return false;
    }
    de->v.ptr = n;
    return true;
}

enum { Z_NX = 1, Z_XX = 2, Z_GT = 4, Z_LT = 8, Z_CH = 16, Z_INCR = 32 };

static void zadd_generic(struct ctx *x, int flags)
{
    int i = 2;
    for (; i < x->argc; i++) {
        const struct resp_arg *a = &x->argv[i];
        if (arg_is(a, "nx"))
            flags |= Z_NX;
        else if (arg_is(a, "xx"))
            flags |= Z_XX;
        else if (arg_is(a, "ch"))
            flags |= Z_CH;
        else if (arg_is(a, "incr"))
            flags |= Z_INCR;
        else if (arg_is(a, "gt"))
            flags |= Z_GT;
        else if (arg_is(a, "lt"))
            flags |= Z_LT;
        else
            break;
    }
    int elements = x->argc - i;
    if (elements % 2 || elements == 0) {
        err_syntax(x);
        return;
    }
    elements /= 2;
    if ((flags & Z_NX) && (flags & Z_XX)) {
        reply_error(x->r, "ERR XX and NX options at the same time are not compatible");
        return;
    }
    if (((flags & Z_NX) && (flags & (Z_GT | Z_LT))) || ((flags & Z_GT) && (flags & Z_LT))) {
        reply_error(x->r, "ERR GT, LT, and/or NX options at the same time are not compatible");
        return;
    }
    if ((flags & Z_INCR) && elements > 1) {
        reply_error(x->r, "ERR INCR option supports a single increment-element pair");
        return;
    }
    /* Every score first: the command runs whole or not at all. */
    for (int j = 0; j < elements; j++) {
        double d;
        if (!arg_double(x, i + 2 * j, &d))
            return;
    }
    uint64_t h;
    struct kv_entry *e = lookup_h(x, 1, &h);
    if (e && e->type != KV_ZSET) {
        err_wrongtype(x);
        return;
    }
    bool incr = flags & Z_INCR;
    if (!e) {
        if (flags & Z_XX) {
            if (incr)
                reply_null(x->r);
            else
                reply_int(x->r, 0);
            return;
        }
        struct zset *zs = zset_new();
        if (!zs || !(e = kv_insert_obj(&x->s->store, A(x, 1), L(x, 1), h, KV_ZSET, zs))) {
            if (zs)
                zset_free(zs);
            err_oom(x);
            return;
        }
    }
    struct zset *zs = e->obj;
    long long added = 0, updated = 0, processed = 0;
    double newscore = 0;
    bool oom = false, nan = false;
    for (int j = 0; j < elements && !oom && !nan; j++) {
        double score;
        arg_double(x, i + 2 * j, &score); /* checked above */
        const uint8_t *m = A(x, i + 2 * j + 1);
        size_t mlen = L(x, i + 2 * j + 1);
        struct dict_ent *de = dict_find(&zs->d, m, mlen);
        if (de) {
            struct zsl_node *n = de->v.ptr;
            double cur = n->score;
            if (flags & Z_NX)
                continue;
            if (incr) {
                score += cur;
                if (isnan(score)) {
                    nan = true;
                    break;
                }
            }
            if (((flags & Z_LT) && score >= cur) || ((flags & Z_GT) && score <= cur))
                continue;
            newscore = score;
            processed++;
            if (score != cur) {
                zsl_update_score(&zs->zsl, n, stored(zs, score));
                updated++;
            }
        } else if (!(flags & Z_XX)) {
            if (!zset_add_new(zs, score, m, mlen)) {
                oom = true;
                break;
            }
            newscore = score;
            added++;
            processed++;
        }
    }
    if (added + updated)
        x->s->dirty++;
    /* A set created here that got nothing (out of memory) goes again. */
    drop_if_empty(x, e);
    if (oom) {
        err_oom(x);
    } else if (nan) {
        reply_error(x->r, "ERR resulting score is not a number (NaN)");
    } else if (incr) {
        if (processed)
            reply_score(x->r, newscore);
        else
            reply_null(x->r);
    } else {
        reply_int(x->r, (flags & Z_CH) ? added + updated : added);
    }
}

static void cmd_zadd(struct ctx *x)
{
    zadd_generic(x, 0);
}

static void cmd_zincrby(struct ctx *x)
{
    zadd_generic(x, Z_INCR);
}

/* ---- reads of members ---- */

static void cmd_zscore(struct ctx *x)
{
    bool ok;
    struct zset *zs = zread(x, 1, &ok);
    if (!ok)
        return;
    struct dict_ent *de = zs ? dict_find(&zs->d, A(x, 2), L(x, 2)) : NULL;
    if (de)
        reply_score(x->r, ((struct zsl_node *)de->v.ptr)->score);
    else
        reply_null(x->r);
}

static void cmd_zmscore(struct ctx *x)
{
    bool ok;
    struct zset *zs = zread(x, 1, &ok);
    if (!ok)
        return;
    reply_array(x->r, x->argc - 2);
    for (int i = 2; i < x->argc; i++) {
        struct dict_ent *de = zs ? dict_find(&zs->d, A(x, i), L(x, i)) : NULL;
        if (de)
            reply_score(x->r, ((struct zsl_node *)de->v.ptr)->score);
        else
            reply_null(x->r);
    }
}

static void rank_generic(struct ctx *x, bool rev)
{
    bool ok;
    struct zset *zs = zread(x, 1, &ok);
    if (!ok)
        return;
    struct dict_ent *de = zs ? dict_find(&zs->d, A(x, 2), L(x, 2)) : NULL;
    if (!de) {
        reply_null(x->r);
        return;
    }
    size_t rank = zsl_rank(&zs->zsl, de->v.ptr);
    reply_int(x->r, (long long)(rev ? zs->zsl.len - rank : rank - 1));
}

static void cmd_zrank(struct ctx *x)
{
    rank_generic(x, false);
}

static void cmd_zrevrank(struct ctx *x)
{
    rank_generic(x, true);
}

static void cmd_zcard(struct ctx *x)
{
    bool ok;
    struct zset *zs = zread(x, 1, &ok);
    if (ok)
        reply_int(x->r, zs ? (long long)zs->zsl.len : 0);
}

static void cmd_zcount(struct ctx *x)
{
    struct zrange_score r;
    if (!parse_score_range(x, 2, 3, &r))
        return;
    bool ok;
    struct zset *zs = zread(x, 1, &ok);
    if (!ok)
        return;
    size_t r1, r2;
    long long n = 0;
    if (zs && zsl_first_in_score(&zs->zsl, &r, &r1) && zsl_last_in_score(&zs->zsl, &r, &r2))
        n = (long long)(r2 - r1 + 1);
    reply_int(x->r, n);
}

static void cmd_zlexcount(struct ctx *x)
{
    struct zrange_lex r;
    if (!parse_lex_range(x, 2, 3, &r))
        return;
    bool ok;
    struct zset *zs = zread(x, 1, &ok);
    if (!ok)
        return;
    size_t r1, r2;
    long long n = 0;
    if (zs && zsl_first_in_lex(&zs->zsl, &r, &r1) && zsl_last_in_lex(&zs->zsl, &r, &r2) && r2 >= r1)
        n = (long long)(r2 - r1 + 1);
    reply_int(x->r, n);
}

/* ---- ZRANGE and its older forms ---- */

enum { BY_AUTO, BY_RANK, BY_SCORE, BY_LEX };
enum { DIR_AUTO, DIR_FWD, DIR_REV };

/* ZRANGESTORE's end: the @count nodes from @n on become the set at
 * argument 1 (replacing whatever it held, time to live included); none
 * deletes it. Replies how many. */
static void store_nodes(struct ctx *x, const struct zsl_node *n, size_t count, bool rev, bool sized)
{
    uint64_t h;
    struct kv_entry *dst = lookup_h(x, 1, &h);
    if (count == 0) {
        if (dst) {
            kv_delete(&x->s->store, dst);
            x->s->dirty++;
        }
        reply_int(x->r, 0);
        return;
    }
    struct zset *zs = zset_new();
    /* Redis sizes the destination of a range by rank from the start: a
     * skip list when over 128 members (-0 kept; see stored()). */
    if (zs && sized && count > ZSCAN_SMALL_LEN)
        zs->big = true;
    for (size_t k = 0; zs && k < count && n; k++) {
        if (!zset_add_new(zs, n->score, n->ele, n->len)) {
            zset_free(zs);
            zs = NULL;
        }
        n = rev ? n->back : n->lv[0].fwd;
    }
    if (!zs) {
        err_oom(x);
        return;
    }
    if (dst) {
        /* The source may be this very key: it is freed only here. */
        kv_set_expire(&x->s->store, dst, -1);
        kv_replace_obj(&x->s->store, dst, KV_ZSET, zs);
    } else if (!kv_insert_obj(&x->s->store, A(x, 1), L(x, 1), h, KV_ZSET, zs)) {
        zset_free(zs);
        err_oom(x);
        return;
    }
    x->s->dirty++;
    reply_int(x->r, (long long)count);
}

/* Replies @count nodes from @n on, forward or backward, or stores them
 * (ZRANGESTORE; @sized for a range by rank, whose size Redis knows when
 * it creates the destination). */
static void emit_nodes(struct ctx *x, bool store, bool sized, const struct zsl_node *n, size_t count, bool rev,
                       bool withscores)
{
    if (store) {
        store_nodes(x, n, count, rev, sized);
        return;
    }
    reply_array(x->r, (long long)(withscores ? 2 * count : count));
    for (size_t k = 0; k < count && n; k++) {
        reply_bulk(x->r, n->ele, n->len);
        if (withscores)
            reply_score(x->r, n->score);
        n = rev ? n->back : n->lv[0].fwd;
    }
}

/* ZRANGE and its forms with the source key at argument @k: 1, or 2 for
 * ZRANGESTORE (store), whose destination is argument 1. */
static void zrange_generic(struct ctx *x, int by, int dir, int k)
{
    bool store = k == 2;
    bool withscores = false;
    long long offset = 0, limit = -1;
    for (int j = k + 3; j < x->argc; j++) {
        int left = x->argc - j - 1;
        const struct resp_arg *a = &x->argv[j];
        if (!store && arg_is(a, "withscores")) {
            withscores = true;
        } else if (arg_is(a, "limit") && left >= 2) {
            if (!arg_ll(x, j + 1, &offset) || !arg_ll(x, j + 2, &limit))
                return;
            j += 2;
        } else if (dir == DIR_AUTO && arg_is(a, "rev")) {
            dir = DIR_REV;
        } else if (by == BY_AUTO && arg_is(a, "bylex")) {
            by = BY_LEX;
        } else if (by == BY_AUTO && arg_is(a, "byscore")) {
            by = BY_SCORE;
        } else {
            err_syntax(x);
            return;
        }
    }
    if (dir == DIR_AUTO)
        dir = DIR_FWD;
    if (by == BY_AUTO)
        by = BY_RANK;
    if (limit != -1 && by == BY_RANK) {
        reply_error(x->r, "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX");
        return;
    }
    if (withscores && by == BY_LEX) {
        reply_error(x->r, "ERR syntax error, WITHSCORES not supported in combination with BYLEX");
        return;
    }
    bool rev = dir == DIR_REV;
    /* Score and lex ranges are given as max, min when reversed. */
    int imin = k + 1, imax = k + 2;
    if (rev && by != BY_RANK) {
        imin = k + 2;
        imax = k + 1;
    }
    long long start = 0, end = 0;
    struct zrange_score rs;
    struct zrange_lex rl;
    if (by == BY_RANK) {
        if (!arg_ll(x, k + 1, &start) || !arg_ll(x, k + 2, &end))
            return;
    } else if (by == BY_SCORE) {
        if (!parse_score_range(x, imin, imax, &rs))
            return;
    } else if (!parse_lex_range(x, imin, imax, &rl)) {
        return;
    }
    bool ok;
    struct zset *zs = zread(x, k, &ok);
    if (!ok)
        return;
    if (!zs) {
        emit_nodes(x, store, false, NULL, 0, rev, withscores);
        return;
    }
    const struct zsl *z = &zs->zsl;
    if (by == BY_RANK) {
        size_t s, e;
        if (!rank_range(start, end, z->len, &s, &e)) {
            emit_nodes(x, store, false, NULL, 0, rev, withscores);
            return;
        }
        /* Index i counts from the tail when reversed. */
        const struct zsl_node *n = zsl_by_rank(z, rev ? z->len - s : s + 1);
        emit_nodes(x, store, true, n, e - s + 1, rev, withscores);
        return;
    }
    /* The ranks [r1, r2] are in range; LIMIT then jumps by rank. A
     * negative offset gives nothing (Redis walks off the end), a negative
     * count no limit. */
    size_t r1 = 0, r2 = 0;
    bool any = by == BY_SCORE ? zsl_first_in_score(z, &rs, &r1) && zsl_last_in_score(z, &rs, &r2)
                              : zsl_first_in_lex(z, &rl, &r1) && zsl_last_in_lex(z, &rl, &r2);
    if (!any || r2 < r1 || offset < 0 || (unsigned long long)offset > r2 - r1) {
        emit_nodes(x, store, false, NULL, 0, rev, withscores);
        return;
    }
    size_t avail = r2 - r1 + 1 - (size_t)offset;
    size_t count = limit < 0 || (unsigned long long)limit > avail ? avail : (size_t)limit;
    if (count == 0) {
        emit_nodes(x, store, false, NULL, 0, rev, withscores);
        return;
    }
    const struct zsl_node *n = zsl_by_rank(z, rev ? r2 - (size_t)offset : r1 + (size_t)offset);
    emit_nodes(x, store, false, n, count, rev, withscores);
}

static void cmd_zrange(struct ctx *x)
{
    zrange_generic(x, BY_AUTO, DIR_AUTO, 1);
}

static void cmd_zrangestore(struct ctx *x)
{
    zrange_generic(x, BY_AUTO, DIR_AUTO, 2);
}

static void cmd_zrevrange(struct ctx *x)
{
    zrange_generic(x, BY_RANK, DIR_REV, 1);
}

static void cmd_zrangebyscore(struct ctx *x)
{
    zrange_generic(x, BY_SCORE, DIR_FWD, 1);
}

static void cmd_zrevrangebyscore(struct ctx *x)
{
    zrange_generic(x, BY_SCORE, DIR_REV, 1);
}

static void cmd_zrangebylex(struct ctx *x)
{
    zrange_generic(x, BY_LEX, DIR_FWD, 1);
}

static void cmd_zrevrangebylex(struct ctx *x)
{
    zrange_generic(x, BY_LEX, DIR_REV, 1);
}

/* ---- removal ---- */

static void cmd_zrem(struct ctx *x)
{
    struct kv_entry *e = lookup(x, 1);
    if (e && e->type != KV_ZSET) {
        err_wrongtype(x);
        return;
    }
    long long n = 0;
    if (e) {
        struct zset *zs = e->obj;
        for (int i = 2; i < x->argc && zs->zsl.len; i++) {
            struct dict_ent *de = dict_find(&zs->d, A(x, i), L(x, i));
            if (de) {
                zset_remove(zs, de->v.ptr);
                n++;
            }
        }
        if (n) {
            x->s->dirty++;
            drop_if_empty(x, e);
        }
    }
    reply_int(x->r, n);
}

static void zpop_generic(struct ctx *x, bool max)
{
    if (x->argc > 3) {
        err_syntax(x);
        return;
    }
    long long count = 1;
    if (x->argc == 3 && (!resp_str2ll(A(x, 2), L(x, 2), &count) || count < 0)) {
        reply_error(x->r, "ERR value is out of range, must be positive");
        return;
    }
    struct kv_entry *e = lookup(x, 1);
    if (e && e->type != KV_ZSET) {
        err_wrongtype(x);
        return;
    }
    if (!e || count == 0) {
        reply_array(x->r, 0);
        return;
    }
    struct zset *zs = e->obj;
    size_t n = (unsigned long long)count < zs->zsl.len ? (size_t)count : zs->zsl.len;
    reply_array(x->r, (long long)(2 * n));
    for (size_t k = 0; k < n; k++) {
        struct zsl_node *node = max ? zs->zsl.tail : zs->zsl.head->lv[0].fwd;
        reply_bulk(x->r, node->ele, node->len);
        reply_score(x->r, node->score);
        zset_remove(zs, node);
    }
    x->s->dirty++;
    drop_if_empty(x, e);
}

static void cmd_zpopmin(struct ctx *x)
{
    zpop_generic(x, false);
}

static void cmd_zpopmax(struct ctx *x)
{
    zpop_generic(x, true);
}

static void zremrange_generic(struct ctx *x, int by)
{
    long long start = 0, end = 0;
    struct zrange_score rs;
    struct zrange_lex rl;
    if (by == BY_RANK) {
        if (!arg_ll(x, 2, &start) || !arg_ll(x, 3, &end))
            return;
    } else if (by == BY_SCORE) {
        if (!parse_score_range(x, 2, 3, &rs))
            return;
    } else if (!parse_lex_range(x, 2, 3, &rl)) {
        return;
    }
    struct kv_entry *e = lookup(x, 1);
    if (e && e->type != KV_ZSET) {
        err_wrongtype(x);
        return;
    }
    if (!e) {
        reply_int(x->r, 0);
        return;
    }
    struct zset *zs = e->obj;
    size_t r1 = 0, r2 = 0;
    bool any;
    if (by == BY_RANK) {
        size_t s, t;
        any = rank_range(start, end, zs->zsl.len, &s, &t);
        r1 = s + 1;
        r2 = t + 1;
    } else if (by == BY_SCORE) {
        any = zsl_first_in_score(&zs->zsl, &rs, &r1) && zsl_last_in_score(&zs->zsl, &rs, &r2);
    } else {
        any = zsl_first_in_lex(&zs->zsl, &rl, &r1) && zsl_last_in_lex(&zs->zsl, &rl, &r2);
    }
    size_t n = 0;
    if (any && r2 >= r1)
        n = zsl_delete_rank_range(&zs->zsl, r1, r2, drop_ent, &zs->d);
    if (n) {
        x->s->dirty++;
        drop_if_empty(x, e);
    }
    reply_int(x->r, (long long)n);
}

static void cmd_zremrangebyrank(struct ctx *x)
{
    zremrange_generic(x, BY_RANK);
}

static void cmd_zremrangebyscore(struct ctx *x)
{
    zremrange_generic(x, BY_SCORE);
}

static void cmd_zremrangebylex(struct ctx *x)
{
    zremrange_generic(x, BY_LEX);
}

/* ---- ZSCAN ---- */

struct zscan_walk {
    struct ctx *x;
    const struct scan_args *a;
    long long n; /* members that passed MATCH */
    bool emit;
};

static void zscan_one(struct dict_ent *de, void *arg)
{
    struct zscan_walk *w = arg;
    if (!scan_match(w->a, de->key, de->klen))
        return;
    w->n++;
    if (w->emit) {
        reply_bulk(w->x->r, de->key, de->klen);
        reply_score(w->x->r, ((struct zsl_node *)de->v.ptr)->score);
    }
}

static void cmd_zscan(struct ctx *x)
{
    /* Redis checks the cursor, then the key, then the options. */
    struct ctx cur = *x;
    struct scan_args a;
    cur.argc = 3;
    if (!scan_parse(&cur, 2, false, &a))
        return;
    bool ok;
    struct zset *zs = zread(x, 1, &ok);
    if (!ok)
        return;
    if (!zs) {
        scan_reply_head(x, 0, 0);
        return;
    }
    if (!scan_parse(x, 2, false, &a))
        return;
    /* A set Redis would keep as a listpack (at most 128 members of at
     * most 64 bytes) it scans whole in one call, in order, whatever the
     * cursor and COUNT: so does this one, with the same reply. */
    if (!zs->big) {
        long long n = 0;
        const struct zsl_node *node;
        for (node = zs->zsl.head->lv[0].fwd; node; node = node->lv[0].fwd)
            n += scan_match(&a, node->ele, node->len);
        scan_reply_head(x, 0, 2 * n);
        for (node = zs->zsl.head->lv[0].fwd; node; node = node->lv[0].fwd) {
            if (scan_match(&a, node->ele, node->len)) {
                reply_bulk(x->r, node->ele, node->len);
                reply_score(x->r, node->score);
            }
        }
        return;
    }
    /* Two passes over the same buckets: the first counts what the reply
     * holds, the second writes it, so nothing is gathered in between. */
    size_t count = (unsigned long long)a.count > SIZE_MAX ? SIZE_MAX : (size_t)a.count;
    struct zscan_walk w = {.x = x, .a = &a};
    uint64_t next = dict_scan(&zs->d, a.cursor, count, zscan_one, &w);
    scan_reply_head(x, next, 2 * w.n);
    w.emit = true;
    dict_scan(&zs->d, a.cursor, count, zscan_one, &w);
}

/* ---- the table ---- */

#define CMD KV_CMD
#define GRP "sorted-set"

const struct kv_cmd kv_zset_cmds[] = {
    CMD("zadd", -4, cmd_zadd, "write denyoom fast", "write sortedset fast", 1, 1, 1, GRP, "1.2.0",
        "O(log(N)) for each item added, where N is the number of elements in the sorted set.",
        "Add one or more members to a sorted set, or update its score if it already exists"),
    CMD("zincrby", 4, cmd_zincrby, "write denyoom fast", "write sortedset fast", 1, 1, 1, GRP, "1.2.0",
        "O(log(N)) where N is the number of elements in the sorted set.",
        "Increment the score of a member in a sorted set"),
    CMD("zscore", 3, cmd_zscore, "readonly fast", "read sortedset fast", 1, 1, 1, GRP, "1.2.0", "O(1)",
        "Get the score associated with the given member in a sorted set"),
    CMD("zmscore", -3, cmd_zmscore, "readonly fast", "read sortedset fast", 1, 1, 1, GRP, "6.2.0",
        "O(N) where N is the number of members being requested.",
        "Get the score associated with the given members in a sorted set"),
    CMD("zrank", 3, cmd_zrank, "readonly fast", "read sortedset fast", 1, 1, 1, GRP, "2.0.0", "O(log(N))",
        "Determine the index of a member in a sorted set"),
    CMD("zrevrank", 3, cmd_zrevrank, "readonly fast", "read sortedset fast", 1, 1, 1, GRP, "2.0.0", "O(log(N))",
        "Determine the index of a member in a sorted set, with scores ordered from high to low"),
    CMD("zcard", 2, cmd_zcard, "readonly fast", "read sortedset fast", 1, 1, 1, GRP, "1.2.0", "O(1)",
        "Get the number of members in a sorted set"),
    CMD("zcount", 4, cmd_zcount, "readonly fast", "read sortedset fast", 1, 1, 1, GRP, "2.0.0",
        "O(log(N)) with N being the number of elements in the sorted set.",
        "Count the members in a sorted set with scores within the given values"),
    CMD("zlexcount", 4, cmd_zlexcount, "readonly fast", "read sortedset fast", 1, 1, 1, GRP, "2.8.9",
        "O(log(N)) with N being the number of elements in the sorted set.",
        "Count the number of members in a sorted set between a given lexicographical range"),
    CMD("zrange", -4, cmd_zrange, "readonly", "read sortedset slow", 1, 1, 1, GRP, "1.2.0",
        "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements "
        "returned.",
        "Return a range of members in a sorted set"),
    CMD("zrangestore", -5, cmd_zrangestore, "write denyoom", "write sortedset slow", 1, 2, 1, GRP, "6.2.0",
        "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements stored "
        "into the destination key.",
        "Store a range of members from sorted set into another key"),
    CMD("zrevrange", -4, cmd_zrevrange, "readonly", "read sortedset slow", 1, 1, 1, GRP, "1.2.0",
        "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements "
        "returned.",
        "Return a range of members in a sorted set, by index, with scores ordered from high to low"),
    CMD("zrangebyscore", -4, cmd_zrangebyscore, "readonly", "read sortedset slow", 1, 1, 1, GRP, "1.0.5",
        "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being "
        "returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider "
        "it O(log(N)).",
        "Return a range of members in a sorted set, by score"),
    CMD("zrevrangebyscore", -4, cmd_zrevrangebyscore, "readonly", "read sortedset slow", 1, 1, 1, GRP, "2.2.0",
        "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being "
        "returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider "
        "it O(log(N)).",
        "Return a range of members in a sorted set, by score, with scores ordered from high to low"),
    CMD("zrangebylex", -4, cmd_zrangebylex, "readonly", "read sortedset slow", 1, 1, 1, GRP, "2.8.9",
        "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being "
        "returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider "
        "it O(log(N)).",
        "Return a range of members in a sorted set, by lexicographical range"),
    CMD("zrevrangebylex", -4, cmd_zrevrangebylex, "readonly", "read sortedset slow", 1, 1, 1, GRP, "2.8.9",
        "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being "
        "returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider "
        "it O(log(N)).",
        "Return a range of members in a sorted set, by lexicographical range, ordered from higher to lower "
        "strings."),
    CMD("zrem", -3, cmd_zrem, "write fast", "write sortedset fast", 1, 1, 1, GRP, "1.2.0",
        "O(M*log(N)) with N being the number of elements in the sorted set and M the number of elements to be "
        "removed.",
        "Remove one or more members from a sorted set"),
    CMD("zpopmin", -2, cmd_zpopmin, "write fast", "write sortedset fast", 1, 1, 1, GRP, "5.0.0",
        "O(log(N)*M) with N being the number of elements in the sorted set, and M being the number of elements "
        "popped.",
        "Remove and return members with the lowest scores in a sorted set"),
    CMD("zpopmax", -2, cmd_zpopmax, "write fast", "write sortedset fast", 1, 1, 1, GRP, "5.0.0",
        "O(log(N)*M) with N being the number of elements in the sorted set, and M being the number of elements "
        "popped.",
        "Remove and return members with the highest scores in a sorted set"),
    CMD("zremrangebyrank", 4, cmd_zremrangebyrank, "write", "write sortedset slow", 1, 1, 1, GRP, "2.0.0",
        "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed "
        "by the operation.",
        "Remove all members in a sorted set within the given indexes"),
    CMD("zremrangebyscore", 4, cmd_zremrangebyscore, "write", "write sortedset slow", 1, 1, 1, GRP, "1.2.0",
        "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed "
        "by the operation.",
        "Remove all members in a sorted set within the given scores"),
    CMD("zremrangebylex", 4, cmd_zremrangebylex, "write", "write sortedset slow", 1, 1, 1, GRP, "2.8.9",
        "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed "
        "by the operation.",
        "Remove all members in a sorted set between the given lexicographical range"),
    CMD("zscan", -3, cmd_zscan, "readonly", "read sortedset slow", 1, 1, 1, GRP, "2.8.0",
        "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to "
        "return back to 0. N is the number of elements inside the collection..",
        "Incrementally iterate sorted sets elements and associated scores"),
};

const size_t kv_zset_ncmds = sizeof(kv_zset_cmds) / sizeof(kv_zset_cmds[0]);
