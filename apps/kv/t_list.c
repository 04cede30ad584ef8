/*
 * demi-kv's lists (Redis's LPUSH, LRANGE, LMOVE, ...), with Redis 7.0's
 * replies and errors, checked in Redis's order.
 *
 * The structure is a ring buffer of element pointers (a power of two of
 * slots, a head index and a count): pushes and pops at either end are
 * O(1) amortized, LINDEX and LSET are O(1) at any index (Redis's quicklist
 * is O(N) there), LRANGE is O(N) with no walk to the start, and LINSERT
 * shifts the shorter side, O(min(i, N - i)). A chunked deque would pack
 * small elements more tightly, but needs a walk to reach an index and
 * splits and merges chunks on every insertion and removal in the middle;
 * the ring keeps every command simple and within Redis's complexity.
 * The ring doubles when full and halves when under a quarter full, so its
 * size stays within four times the elements it holds.
 *
 * An element of up to 7 bytes (numbers, short words, redis-benchmark's
 * "xxx") is held in its ring slot itself: no allocation, 8 bytes in all.
 * A longer one is one allocation holding its bulk reply, "$<len>\r\n"
 * <bytes> "\r\n", so that LRANGE and the pops copy it into the reply with
 * one memcpy; no element costs an allocation when replied (redis-benchmark's
 * LRANGE_600 is 600 of them a command). Elements are any bytes, up to
 * 512 MiB (the protocol's limit on an argument).
 *
 * Memory: every byte this file allocates is counted with kv_obj_account
 * (the list's own struct, its ring and its elements) and in the list's
 * total (MEMORY USAGE). No client-chosen number sizes an allocation:
 * counts and indexes are clamped to the list's length first. Allocation
 * failures leave the list unchanged and reply OOM.
 */
#include "cmd_int.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* An element of more than ITEM_INLINE bytes: its bulk reply, with the
 * bytes at b + hlen. */
struct lelem {
    uint32_t len; /* bytes of the element */
    uint8_t hlen; /* length of "$<len>\r\n" */
    uint8_t b[];
};

/*
 * A slot of the ring: a struct lelem pointer (malloc aligns it, so its low
 * bit is 0), or an element of up to ITEM_INLINE bytes held in the slot
 * itself: bit 0 set, the length in bits 1-3, byte i of the element in bits
 * 8(i + 1) and up. Short elements (numbers, redis-benchmark's "xxx") then
 * cost no allocation and 8 bytes each. 0 is never an item.
 */
typedef uintptr_t item;
#define ITEM_INLINE (sizeof(item) - 1)

struct list {
    item *ring;  /* cap slots */
    size_t cap;  /* a power of two, or 0 with ring NULL */
    size_t head; /* slot of the first element */
    size_t count;
    size_t bytes; /* this struct, the ring and the elements */
};

#define LIST_MIN_CAP ((size_t)4)

static size_t elem_size(size_t hlen, size_t len)
{
    return offsetof(struct lelem, b) + hlen + len + 2;
}

static void account(struct list *l, int64_t delta)
{
    l->bytes += (size_t)delta;
    kv_obj_account(delta);
}

static inline const uint8_t *elem_data(const struct lelem *e)
{
    return e->b + e->hlen;
}

static inline bool item_inline(item it)
{
    return it & 1;
}

static inline size_t item_len(item it)
{
    return item_inline(it) ? (it >> 1) & 7 : ((const struct lelem *)it)->len;
}

/* The element's bytes: decoded into @buf (ITEM_INLINE bytes) when held
 * in the slot, else where they are stored. */
static inline const uint8_t *item_bytes(item it, uint8_t *buf)
{
    if (!item_inline(it))
        return elem_data((const struct lelem *)it);
    for (size_t i = 0; i < ITEM_INLINE; i++)
        buf[i] = (uint8_t)(it >> (8 * (i + 1)));
    return buf;
}

/* Bytes the item holds outside the ring. */
static inline size_t item_size(item it)
{
    return item_inline(it) ? 0 : elem_size(((const struct lelem *)it)->hlen, ((const struct lelem *)it)->len);
}

/* The slot of element @i (0 is the head). */
static inline item *slot(const struct list *l, size_t i)
{
    return &l->ring[(l->head + i) & (l->cap - 1)];
}

static void *xmalloc(struct ctx *x, size_t n)
{
    void *p = malloc(n);
    /* Short of memory: another client's buffers go first (kv.c). */
    while (!p && x && x->s->reclaim && x->s->reclaim())
        p = malloc(n);
    return p;
}

/* A new element holding a copy of [p, p + n); 0 when out of memory. */
static item item_new(struct ctx *x, struct list *l, const uint8_t *p, size_t n)
{
    char hdr[24];
    if (n <= ITEM_INLINE) {
        item it = 1 | (item)n << 1;
        for (size_t i = 0; i < n; i++)
            it |= (item)p[i] << (8 * (i + 1));
        return it;
    }
    if (n > UINT32_MAX)
        return 0;
    hdr[0] = '$';
    size_t hlen = 1 + reply_fmt_ll(hdr + 1, (long long)n);
    hdr[hlen++] = '\r';
    hdr[hlen++] = '\n';
    struct lelem *e = xmalloc(x, elem_size(hlen, n));
    if (!e)
        return 0;
    e->len = (uint32_t)n;
    e->hlen = (uint8_t)hlen;
    memcpy(e->b, hdr, hlen);
    if (n)
        memcpy(e->b + hlen, p, n);
    e->b[hlen + n] = '\r';
    e->b[hlen + n + 1] = '\n';
    account(l, (int64_t)elem_size(hlen, n));
    return (item)e;
}

static void item_free(struct list *l, item it)
{
    if (item_inline(it))
        return;
    account(l, -(int64_t)item_size(it));
    free((struct lelem *)it);
}

/* Moves the elements to a ring of @cap slots (>= count), head at slot 0.
 * 0 or ENOMEM (nothing changed). */
static int ring_resize(struct ctx *x, struct list *l, size_t cap)
{
    if (cap > SIZE_MAX / 2 / sizeof(*l->ring))
        return ENOMEM;
    item *r = xmalloc(x, cap * sizeof(*r));
    if (!r)
        return ENOMEM;
    for (size_t i = 0; i < l->count; i++)
        r[i] = *slot(l, i);
    free(l->ring);
    account(l, ((int64_t)cap - (int64_t)l->cap) * (int64_t)sizeof(*r));
    l->ring = r;
    l->cap = cap;
    l->head = 0;
    return 0;
}

/* Room for @n more elements. 0 or ENOMEM (nothing changed). */
static int list_reserve(struct ctx *x, struct list *l, size_t n)
{
    if (n > SIZE_MAX / 4 - l->count)
        return ENOMEM;
    size_t want = l->count + n;
    if (want <= l->cap)
        return 0;
    size_t cap = l->cap ? l->cap : LIST_MIN_CAP;
    while (cap < want)
        cap *= 2;
    return ring_resize(x, l, cap);
}

/* After removals: a ring under a quarter full is halved (or more), so
 * that a list that was long once does not keep its ring. A failed
 * allocation just keeps the larger ring. */
static void list_shrink(struct list *l)
{
    if (l->cap <= LIST_MIN_CAP || l->count >= l->cap / 4)
        return;
    size_t cap = l->cap;
    while (cap > LIST_MIN_CAP && l->count < cap / 4)
        cap /= 2;
    ring_resize(NULL, l, cap);
}

static struct list *list_new(struct ctx *x)
{
    struct list *l = xmalloc(x, sizeof(*l));
    if (!l)
        return NULL;
    memset(l, 0, sizeof(*l));
    account(l, (int64_t)sizeof(*l));
    return l;
}

static void list_free(void *obj)
{
    struct list *l = obj;
    for (size_t i = 0; i < l->count; i++)
        item_free(l, *slot(l, i));
    account(l, -(int64_t)(l->cap * sizeof(*l->ring)));
    free(l->ring);
    kv_obj_account(-(int64_t)sizeof(*l));
    free(l);
}

static size_t list_mem(const void *obj)
{
    return ((const struct list *)obj)->bytes;
}

static size_t list_count(const void *obj)
{
    return ((const struct list *)obj)->count;
}

/* Takes the element at the head (left) or the tail; the list must not be
 * empty. The caller frees it or moves it to a list. */
static item list_pop(struct list *l, bool left)
{
    item e;
    if (left) {
        e = *slot(l, 0);
        l->head = (l->head + 1) & (l->cap - 1);
    } else {
        e = *slot(l, l->count - 1);
    }
    l->count--;
    return e;
}

/* Adds an element at the head or the tail; room must be reserved. */
static void list_push(struct list *l, item e, bool left)
{
    if (left) {
        l->head = (l->head - 1) & (l->cap - 1);
        *slot(l, 0) = e;
    } else {
        *slot(l, l->count) = e;
    }
    l->count++;
}

/* Inserts @e so that it becomes element @i (0 <= i <= count), shifting
 * the shorter side by one slot; room must be reserved. */
static void list_insert_at(struct list *l, size_t i, item e)
{
    if (i < l->count - i) {
        l->head = (l->head - 1) & (l->cap - 1);
        for (size_t k = 0; k < i; k++)
            *slot(l, k) = *slot(l, k + 1);
    } else {
        for (size_t k = l->count; k > i; k--)
            *slot(l, k) = *slot(l, k - 1);
    }
    *slot(l, i) = e;
    l->count++;
}

/* The AOF rewrite: RPUSH key e1 ... with at most 64 elements or about
 * 1 MiB of them a command. */
#define REWRITE_ELEMS 64
#define REWRITE_BYTES ((size_t)1 << 20)

static int list_rewrite(const void *obj, const uint8_t *key, size_t klen, kv_emit_fn emit, void *arg)
{
    const struct list *l = obj;
    struct resp_arg argv[2 + REWRITE_ELEMS];
    uint8_t small[REWRITE_ELEMS][ITEM_INLINE]; /* the chunk's inline elements */
    memset(argv, 0, sizeof(argv));
    argv[0].ptr = (const uint8_t *)"RPUSH";
    argv[0].len = 5;
    argv[1].ptr = key;
    argv[1].len = klen;
    size_t i = 0;
    while (i < l->count) {
        int n = 0;
        size_t bytes = 0;
        while (i < l->count && n < REWRITE_ELEMS && bytes < REWRITE_BYTES) {
            item it = *slot(l, i++);
            argv[2 + n].ptr = item_bytes(it, small[n]);
            argv[2 + n].len = item_len(it);
            bytes += argv[2 + n].len;
            n++;
        }
        int err = emit(arg, 2 + n, argv);
        if (err)
            return err;
    }
    return 0;
}

const struct kv_type_ops kv_list_ops = {
    .name = "list",
    .free = list_free,
    .mem = list_mem,
    .count = list_count,
    .rewrite = list_rewrite,
};

/* ---- helpers for the commands ---- */

static inline struct list *as_list(struct kv_entry *e)
{
    return (struct list *)e->obj;
}

/* Key i for a read command: counts a hit or a miss as Redis's
 * lookupKeyRead does. NULL with *ok false after WRONGTYPE. */
static struct kv_entry *lookup_list_read(struct ctx *x, int i, bool *ok)
{
    struct kv_entry *e = lookup_read(x, i);
    *ok = !e || e->type == KV_LIST;
    if (!*ok)
        err_wrongtype(x);
    return *ok ? e : NULL;
}

/* Replies with an element's bulk string (one copy of its framed bytes). */
static inline void reply_elem(struct ctx *x, item it)
{
    if (item_inline(it)) {
        uint8_t buf[ITEM_INLINE];
        reply_bulk(x->r, item_bytes(it, buf), item_len(it));
    } else {
        const struct lelem *e = (const struct lelem *)it;
        reply_raw(x->r, e->b, (size_t)e->hlen + e->len + 2);
    }
}

static inline bool elem_eq(item it, const uint8_t *p, size_t n)
{
    uint8_t buf[ITEM_INLINE];
    return item_len(it) == n && (n == 0 || memcmp(item_bytes(it, buf), p, n) == 0);
}

/* After elements left the list at key @e: a list left empty is deleted,
 * as in Redis; a ring left mostly empty shrinks. */
static void removed_some(struct ctx *x, struct kv_entry *e)
{
    if (as_list(e)->count == 0)
        kv_delete(&x->s->store, e);
    else
        list_shrink(as_list(e));
}

/* ---- push ---- */

/* The free slot that the k-th element pushed at the head (left) or the
 * tail goes to, while the list has not yet taken it. */
static inline item *pending(const struct list *l, bool left, size_t k)
{
    size_t pos = left ? l->head - 1 - k : l->head + l->count + k;
    return &l->ring[pos & (l->cap - 1)];
}

/*
 * LPUSH, RPUSH (create: a missing key becomes a list) and LPUSHX, RPUSHX.
 * All the elements are allocated into the ring's free slots before the
 * list changes, so that running out of memory half way changes nothing.
 */
static void push_generic(struct ctx *x, bool left, bool create)
{
    uint64_t h;
    struct kv_entry *e = lookup_h(x, 1, &h);
    if (e && e->type != KV_LIST) {
        err_wrongtype(x);
        return;
    }
    if (!e && !create) {
        reply_int(x->r, 0);
        return;
    }
    size_t n = (size_t)x->argc - 2, k = 0;
    struct list *l = e ? as_list(e) : list_new(x);
    if (!l || list_reserve(x, l, n))
        goto oom;
    for (k = 0; k < n; k++) {
        item el = item_new(x, l, A(x, 2 + (int)k), L(x, 2 + (int)k));
        if (!el)
            goto oom;
        *pending(l, left, k) = el;
    }
    if (!e && !kv_insert_obj(&x->s->store, A(x, 1), L(x, 1), h, KV_LIST, l))
        goto oom;
    if (left)
        l->head = (l->head - n) & (l->cap - 1);
    l->count += n;
    x->s->dirty += n;
    reply_int(x->r, (long long)l->count);
    return;
oom:
    while (k-- > 0)
        item_free(l, *pending(l, left, k));
    if (l && !e)
        list_free(l);
    err_oom(x);
}

static void cmd_lpush(struct ctx *x)
{
    push_generic(x, true, true);
}

static void cmd_rpush(struct ctx *x)
{
    push_generic(x, false, true);
}

static void cmd_lpushx(struct ctx *x)
{
    push_generic(x, true, false);
}

static void cmd_rpushx(struct ctx *x)
{
    push_generic(x, false, false);
}

/* ---- pop ---- */

static void pop_generic(struct ctx *x, bool left)
{
    long long count = -1;
    if (x->argc > 3) {
        err_arity(x);
        return;
    }
    if (x->argc == 3 && (!resp_str2ll(A(x, 2), L(x, 2), &count) || count < 0)) {
        reply_error(x->r, "ERR value is out of range, must be positive");
        return;
    }
    bool ok;
    struct kv_entry *e = lookup_type(x, 1, KV_LIST, &ok);
    if (!ok)
        return;
    if (!e) {
        if (count >= 0)
            reply_raw(x->r, "*-1\r\n", 5); /* the null array */
        else
            reply_null(x->r);
        return;
    }
    struct list *l = as_list(e);
    if (count < 0) {
        item el = list_pop(l, left);
        reply_elem(x, el);
        item_free(l, el);
        x->s->dirty++;
    } else {
        size_t n = (unsigned long long)count < l->count ? (size_t)count : l->count;
        reply_array(x->r, (long long)n);
        for (size_t i = 0; i < n; i++) {
            item el = list_pop(l, left);
            reply_elem(x, el);
            item_free(l, el);
        }
        x->s->dirty += n;
    }
    removed_some(x, e);
}

static void cmd_lpop(struct ctx *x)
{
    pop_generic(x, true);
}

static void cmd_rpop(struct ctx *x)
{
    pop_generic(x, false);
}

/* Redis's LEFT or RIGHT; false after a syntax error. */
static bool list_where(struct ctx *x, int i, bool *left)
{
    if (arg_is(&x->argv[i], "left"))
        *left = true;
    else if (arg_is(&x->argv[i], "right"))
        *left = false;
    else {
        err_syntax(x);
        return false;
    }
    return true;
}

/*
 * LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]: pops from the first
 * of the keys that holds a list. The arguments are all checked before any
 * key is looked at; then a key of another type met before a list is a
 * WRONGTYPE error, as in Redis. Deterministic, so the log records it as is.
 */
static void cmd_lmpop(struct ctx *x)
{
    long long numkeys, count = 1;
    if (!resp_str2ll(A(x, 1), L(x, 1), &numkeys) || numkeys < 1) {
        reply_error(x->r, "ERR numkeys should be greater than 0");
        return;
    }
    /* The keys, then LEFT or RIGHT, must fit in the arguments. */
    if (numkeys > x->argc - 3) {
        err_syntax(x);
        return;
    }
    int where = 2 + (int)numkeys;
    bool left, has_count = false;
    if (!list_where(x, where, &left))
        return;
    for (int j = where + 1; j < x->argc; j++) {
        if (arg_is(&x->argv[j], "count") && j + 1 < x->argc && !has_count) {
            j++;
            if (!resp_str2ll(A(x, j), L(x, j), &count) || count < 1) {
                reply_error(x->r, "ERR count should be greater than 0");
                return;
            }
            has_count = true;
        } else {
            err_syntax(x);
            return;
        }
    }
    for (int k = 2; k < where; k++) {
        bool ok;
        struct kv_entry *e = lookup_type(x, k, KV_LIST, &ok);
        if (!ok)
            return;
        if (!e)
            continue;
        struct list *l = as_list(e);
        size_t n = (unsigned long long)count < l->count ? (size_t)count : l->count;
        reply_array(x->r, 2);
        reply_bulk(x->r, A(x, k), L(x, k));
        reply_array(x->r, (long long)n);
        for (size_t i = 0; i < n; i++) {
            item el = list_pop(l, left);
            reply_elem(x, el);
            item_free(l, el);
        }
        x->s->dirty += n;
        removed_some(x, e);
        return;
    }
    reply_raw(x->r, "*-1\r\n", 5);
}

/* ---- reads ---- */

static void cmd_llen(struct ctx *x)
{
    bool ok;
    struct kv_entry *e = lookup_list_read(x, 1, &ok);
    if (ok)
        reply_int(x->r, e ? (long long)as_list(e)->count : 0);
}

/* Redis's range rule for LRANGE and LTRIM: negative indexes count from
 * the end, and the range is clipped to the list. false when empty. */
static bool clip_range(long long start, long long end, size_t n, size_t *from, size_t *to)
{
    long long len = (long long)n;
    if (start < 0)
        start += len;
    if (end < 0)
        end += len;
    if (start < 0)
        start = 0;
    if (start > end || start >= len)
        return false;
    if (end >= len)
        end = len - 1;
    *from = (size_t)start;
    *to = (size_t)end;
    return true;
}

static void cmd_lrange(struct ctx *x)
{
    long long start, end;
    if (!arg_ll(x, 2, &start) || !arg_ll(x, 3, &end))
        return;
    bool ok;
    struct kv_entry *e = lookup_list_read(x, 1, &ok);
    if (!ok)
        return;
    size_t from, to;
    if (!e || !clip_range(start, end, as_list(e)->count, &from, &to)) {
        reply_array(x->r, 0);
        return;
    }
    const struct list *l = as_list(e);
    reply_array(x->r, (long long)(to - from + 1));
    for (size_t i = from; i <= to; i++)
        reply_elem(x, *slot(l, i));
}

/* An index counted from the end when negative; false when outside. */
static bool list_index(const struct list *l, long long idx, size_t *out)
{
    if (idx < 0)
        idx += (long long)l->count;
    if (idx < 0 || (unsigned long long)idx >= l->count)
        return false;
    *out = (size_t)idx;
    return true;
}

static void cmd_lindex(struct ctx *x)
{
    bool ok;
    struct kv_entry *e = lookup_list_read(x, 1, &ok);
    if (!ok)
        return;
    if (!e) {
        reply_null(x->r);
        return;
    }
    long long idx;
    if (!arg_ll(x, 2, &idx))
        return;
    size_t i;
    if (list_index(as_list(e), idx, &i))
        reply_elem(x, *slot(as_list(e), i));
    else
        reply_null(x->r);
}

static void cmd_lpos(struct ctx *x)
{
    long long rank = 1, count = -1, maxlen = 0;
    for (int j = 3; j < x->argc; j++) {
        bool more = j + 1 < x->argc;
        if (arg_is(&x->argv[j], "rank") && more) {
            if (!arg_ll(x, ++j, &rank))
                return;
            if (rank == 0) {
                reply_error(x->r, "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second "
                                  "... or use negative to start from the end of the list");
                return;
            }
        } else if (arg_is(&x->argv[j], "count") && more) {
            j++;
            if (!resp_str2ll(A(x, j), L(x, j), &count) || count < 0) {
                reply_error(x->r, "ERR COUNT can't be negative");
                return;
            }
        } else if (arg_is(&x->argv[j], "maxlen") && more) {
            j++;
            if (!resp_str2ll(A(x, j), L(x, j), &maxlen) || maxlen < 0) {
                reply_error(x->r, "ERR MAXLEN can't be negative");
                return;
            }
        } else {
            err_syntax(x);
            return;
        }
    }
    bool ok;
    struct kv_entry *e = lookup_list_read(x, 1, &ok);
    if (!ok)
        return;
    if (!e) {
        if (count >= 0)
            reply_array(x->r, 0);
        else
            reply_null(x->r);
        return;
    }
    const struct list *l = as_list(e);
    bool fwd = rank > 0;
    /* Matches to pass over first: |rank| - 1. Redis negates RANK's
     * LLONG_MIN into itself, which then takes the first match from the
     * tail, as RANK -1 does. */
    unsigned long long skip = rank == LLONG_MIN ? 0 : (unsigned long long)(rank > 0 ? rank : -rank) - 1;
    size_t scan = maxlen > 0 && (unsigned long long)maxlen < l->count ? (size_t)maxlen : l->count;
    size_t want = count < 0 ? 1 : count == 0 ? SIZE_MAX : (size_t)count;
    /* Two passes when COUNT is given: the reply's length, then the
     * indexes, so that no array sized by the client is allocated. */
    for (int pass = count < 0 ? 1 : 0; pass < 2; pass++) {
        unsigned long long skipped = 0;
        size_t found = 0;
        for (size_t k = 0; k < scan && found < want; k++) {
            size_t i = fwd ? k : l->count - 1 - k;
            if (!elem_eq(*slot(l, i), A(x, 2), L(x, 2)))
                continue;
            if (skipped < skip) {
                skipped++;
                continue;
            }
            found++;
            if (pass == 1)
                reply_int(x->r, (long long)i);
        }
        if (pass == 0)
            reply_array(x->r, (long long)found);
        else if (count < 0 && found == 0)
            reply_null(x->r);
    }
}

/* ---- changes in place ---- */

static void cmd_lset(struct ctx *x)
{
    struct kv_entry *e = lookup(x, 1);
    if (!e) {
        reply_error(x->r, "ERR no such key");
        return;
    }
    if (e->type != KV_LIST) {
        err_wrongtype(x);
        return;
    }
    long long idx;
    if (!arg_ll(x, 2, &idx))
        return;
    struct list *l = as_list(e);
    size_t i;
    if (!list_index(l, idx, &i)) {
        reply_error(x->r, "ERR index out of range");
        return;
    }
    item el = item_new(x, l, A(x, 3), L(x, 3));
    if (!el) {
        err_oom(x);
        return;
    }
    item_free(l, *slot(l, i));
    *slot(l, i) = el;
    x->s->dirty++;
    reply_status(x->r, "OK");
}

static void cmd_linsert(struct ctx *x)
{
    bool after;
    if (arg_is(&x->argv[2], "after")) {
        after = true;
    } else if (arg_is(&x->argv[2], "before")) {
        after = false;
    } else {
        err_syntax(x);
        return;
    }
    bool ok;
    struct kv_entry *e = lookup_type(x, 1, KV_LIST, &ok);
    if (!ok)
        return;
    if (!e) {
        reply_int(x->r, 0);
        return;
    }
    struct list *l = as_list(e);
    size_t i;
    for (i = 0; i < l->count; i++)
        if (elem_eq(*slot(l, i), A(x, 3), L(x, 3)))
            break;
    if (i == l->count) {
        reply_int(x->r, -1);
        return;
    }
    item el = 0;
    if (list_reserve(x, l, 1) || !(el = item_new(x, l, A(x, 4), L(x, 4)))) {
        err_oom(x);
        return;
    }
    list_insert_at(l, after ? i + 1 : i, el);
    x->s->dirty++;
    reply_int(x->r, (long long)l->count);
}

static void cmd_lrem(struct ctx *x)
{
    long long count;
    if (!arg_ll(x, 2, &count))
        return;
    bool ok;
    struct kv_entry *e = lookup_type(x, 1, KV_LIST, &ok);
    if (!ok)
        return;
    if (!e) {
        reply_int(x->r, 0);
        return;
    }
    struct list *l = as_list(e);
    /*
     * One pass from the end the count names (the head for count >= 0, the
     * tail for count < 0) that keeps the survivors packed toward that end,
     * and stops at the last removal. The gap it leaves is then closed by
     * moving whichever side of it is shorter, so that removing a few
     * elements near either end costs no walk of the whole list.
     */
    bool fwd = count >= 0;
    unsigned long long limit = count == 0  ? ULLONG_MAX
                               : count > 0 ? (unsigned long long)count
                                           : 0ULL - (unsigned long long)count;
    size_t n = l->count, kept = 0, removed = 0, k;
    for (k = 0; k < n && removed < limit; k++) {
        item el = *slot(l, fwd ? k : n - 1 - k);
        if (elem_eq(el, A(x, 3), L(x, 3))) {
            item_free(l, el);
            removed++;
        } else {
            *slot(l, fwd ? kept : n - 1 - kept) = el;
            kept++;
        }
    }
    /* Now [0, kept) counted from that end are kept, [kept, k) is the gap
     * and [k, n) was not looked at. */
    bool move_rest = n - k <= kept;
    if (move_rest) {
        for (size_t t = k; t < n; t++)
            *slot(l, fwd ? t - removed : n - 1 - (t - removed)) = *slot(l, fwd ? t : n - 1 - t);
    } else {
        for (size_t t = kept; t-- > 0;)
            *slot(l, fwd ? t + removed : n - 1 - (t + removed)) = *slot(l, fwd ? t : n - 1 - t);
    }
    /* The list lost its first slots when the survivors moved toward the
     * tail: after a backward pass whose rest moved, or a forward pass
     * whose kept part moved. */
    if (fwd != move_rest)
        l->head = (l->head + removed) & (l->cap - 1);
    l->count = n - removed;
    if (removed) {
        x->s->dirty += removed;
        removed_some(x, e);
    }
    reply_int(x->r, (long long)removed);
}

static void cmd_ltrim(struct ctx *x)
{
    long long start, end;
    if (!arg_ll(x, 2, &start) || !arg_ll(x, 3, &end))
        return;
    bool ok;
    struct kv_entry *e = lookup_type(x, 1, KV_LIST, &ok);
    if (!ok)
        return;
    if (!e) {
        reply_status(x->r, "OK");
        return;
    }
    struct list *l = as_list(e);
    size_t from, to, ltrim, rtrim;
    if (clip_range(start, end, l->count, &from, &to)) {
        ltrim = from;
        rtrim = l->count - 1 - to;
    } else {
        ltrim = l->count;
        rtrim = 0;
    }
    for (size_t k = 0; k < ltrim; k++)
        item_free(l, list_pop(l, true));
    for (size_t k = 0; k < rtrim; k++)
        item_free(l, list_pop(l, false));
    if (ltrim + rtrim) {
        x->s->dirty += ltrim + rtrim;
        removed_some(x, e);
    }
    reply_status(x->r, "OK");
}

/* ---- between lists ---- */

/*
 * LMOVE and RPOPLPUSH. The destination is made ready (room reserved, or
 * a new list inserted under its key) before the element leaves the
 * source, so that nothing can fail once it has. The source may be the
 * destination: the element then rotates, and the list is never empty.
 */
static void move_generic(struct ctx *x, bool from_left, bool to_left)
{
    bool ok;
    struct kv_entry *src = lookup_type(x, 1, KV_LIST, &ok);
    if (!ok)
        return;
    if (!src) {
        reply_null(x->r);
        return;
    }
    uint64_t h;
    struct kv_entry *dst = lookup_h(x, 2, &h);
    if (dst && dst->type != KV_LIST) {
        err_wrongtype(x);
        return;
    }
    struct list *dl;
    if (dst) {
        dl = as_list(dst);
        if (list_reserve(x, dl, 1)) {
            err_oom(x);
            return;
        }
    } else {
        dl = list_new(x);
        if (!dl || list_reserve(x, dl, 1) || !(dst = kv_insert_obj(&x->s->store, A(x, 2), L(x, 2), h, KV_LIST, dl))) {
            if (dl)
                list_free(dl);
            err_oom(x);
            return;
        }
    }
    struct list *sl = as_list(src);
    item el = list_pop(sl, from_left);
    /* The element's bytes move between the lists' totals. */
    int64_t sz = (int64_t)item_size(el);
    sl->bytes -= (size_t)sz;
    dl->bytes += (size_t)sz;
    list_push(dl, el, to_left);
    reply_elem(x, el);
    x->s->dirty++;
    if (sl != dl)
        removed_some(x, src);
}

static void cmd_rpoplpush(struct ctx *x)
{
    move_generic(x, false, true);
}

static void cmd_lmove(struct ctx *x)
{
    bool from_left, to_left;
    if (list_where(x, 3, &from_left) && list_where(x, 4, &to_left))
        move_generic(x, from_left, to_left);
}

/* ---- the table ---- */

#define PUSH_CX                                                                                                        \
    "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments."

const struct kv_cmd kv_list_cmds[] = {
    KV_CMD("lpush", -3, cmd_lpush, "write denyoom fast", "write list fast", 1, 1, 1, "list", "1.0.0", PUSH_CX,
           "Prepend one or multiple elements to a list"),
    KV_CMD("rpush", -3, cmd_rpush, "write denyoom fast", "write list fast", 1, 1, 1, "list", "1.0.0", PUSH_CX,
           "Append one or multiple elements to a list"),
    KV_CMD("lpushx", -3, cmd_lpushx, "write denyoom fast", "write list fast", 1, 1, 1, "list", "2.2.0", PUSH_CX,
           "Prepend an element to a list, only if the list exists"),
    KV_CMD("rpushx", -3, cmd_rpushx, "write denyoom fast", "write list fast", 1, 1, 1, "list", "2.2.0", PUSH_CX,
           "Append an element to a list, only if the list exists"),
    KV_CMD("lpop", -2, cmd_lpop, "write fast", "write list fast", 1, 1, 1, "list", "1.0.0",
           "O(N) where N is the number of elements returned", "Remove and get the first elements in a list"),
    KV_CMD("rpop", -2, cmd_rpop, "write fast", "write list fast", 1, 1, 1, "list", "1.0.0",
           "O(N) where N is the number of elements returned", "Remove and get the last elements in a list"),
    KV_CMDK("lmpop", -4, cmd_lmpop, "write movablekeys", "write list slow", 0, 0, 0, "list", "7.0.0",
            "O(N+M) where N is the number of provided keys and M is the number of elements returned.",
            "Pop elements from a list", "1:#0,1,1 RW access delete", NULL, NULL),
    KV_CMD("llen", 2, cmd_llen, "readonly fast", "read list fast", 1, 1, 1, "list", "1.0.0", "O(1)",
           "Get the length of a list"),
    KV_CMD("lrange", 4, cmd_lrange, "readonly", "read list slow", 1, 1, 1, "list", "1.0.0",
           "O(S+N) where S is the distance of start offset from HEAD for small lists, from nearest end (HEAD or "
           "TAIL) for large lists; and N is the number of elements in the specified range.",
           "Get a range of elements from a list"),
    KV_CMD("lindex", 3, cmd_lindex, "readonly", "read list slow", 1, 1, 1, "list", "1.0.0",
           "O(N) where N is the number of elements to traverse to get to the element at index. This makes asking "
           "for the first or the last element of the list O(1).",
           "Get an element from a list by its index"),
    KV_CMD("lset", 4, cmd_lset, "write denyoom", "write list slow", 1, 1, 1, "list", "1.0.0",
           "O(N) where N is the length of the list. Setting either the first or the last element of the list is "
           "O(1).",
           "Set the value of an element in a list by its index"),
    KV_CMD("lrem", 4, cmd_lrem, "write", "write list slow", 1, 1, 1, "list", "1.0.0",
           "O(N+M) where N is the length of the list and M is the number of elements removed.",
           "Remove elements from a list"),
    KV_CMD("ltrim", 4, cmd_ltrim, "write", "write list slow", 1, 1, 1, "list", "1.0.0",
           "O(N) where N is the number of elements to be removed by the operation.",
           "Trim a list to the specified range"),
    KV_CMD("linsert", 5, cmd_linsert, "write denyoom", "write list slow", 1, 1, 1, "list", "2.2.0",
           "O(N) where N is the number of elements to traverse before seeing the value pivot. This means that "
           "inserting somewhere on the left end on the list (head) can be considered O(1) and inserting somewhere "
           "on the right end (tail) is O(N).",
           "Insert an element before or after another element in a list"),
    KV_CMD("lpos", -3, cmd_lpos, "readonly", "read list slow", 1, 1, 1, "list", "6.0.6",
           "O(N) where N is the number of elements in the list, for the average case. When searching for elements "
           "near the head or the tail of the list, or when the MAXLEN option is provided, the command may run in "
           "constant time.",
           "Return the index of matching elements on a list"),
    KV_CMD("rpoplpush", 3, cmd_rpoplpush, "write denyoom", "write list slow", 1, 2, 1, "list", "1.2.0", "O(1)",
           "Remove the last element in a list, prepend it to another list and return it"),
    KV_CMD("lmove", 5, cmd_lmove, "write denyoom", "write list slow", 1, 2, 1, "list", "6.2.0", "O(1)",
           "Pop an element from a list, push it to another list and return it"),
};

const size_t kv_list_ncmds = sizeof(kv_list_cmds) / sizeof(kv_list_cmds[0]);
