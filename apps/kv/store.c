/*
 * demi-kv's keyspace (see store.h): a chained hash table with a seeded
 * hash, doubling when it holds more keys than buckets and halving under
 * one key per 8 buckets, both by an incremental rehash, plus an array of
 * the keys that have a time to live, which active expiry samples at random
 * the way Redis samples its expires dictionary.
 */
#include "store.h"

#include <demi/sga.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define INITIAL_BUCKETS 16

/* Heap bytes held by all values; reported by INFO (see kv_val_bytes). */
static _Thread_local uint64_t val_bytes;

uint64_t kv_val_bytes(void)
{
    return val_bytes;
}

static _Thread_local uint64_t obj_bytes;

uint64_t kv_obj_bytes(void)
{
    return obj_bytes;
}

void kv_obj_account(int64_t delta)
{
    obj_bytes += (uint64_t)delta;
}

const char *kv_type_name(int type)
{
    if (type == KV_STRING)
        return "string";
    if (type > KV_STRING && type < KV_NTYPES && kv_types[type])
        return kv_types[type]->name;
    return "none";
}

/* Frees what an entry holds. */
static void drop_value(struct kv_entry *e)
{
    if (e->type == KV_STRING)
        kv_val_unref(e->val);
    else
        kv_types[e->type]->free(e->obj);
}

/* ---- values ---- */

static int seg_alloc(struct kv_seg *sg, size_t size)
{
    demi_sgarray_t sga = demi_sgaalloc(size);
    if (sga.sga_numsegs != 1) {
        if (sga.sga_numsegs)
            demi_sgafree(&sga);
        return ENOMEM;
    }
    sg->tag = sga.sga_buf;
    sg->buf = sg->data = sga.sga_segs[0].sgaseg_buf;
    sg->size = sg->cap = sga.sga_segs[0].sgaseg_len;
    sg->len = 0;
    val_bytes += sg->size;
    return 0;
}

static void seg_free(struct kv_seg *sg)
{
    demi_sgarray_t sga = {.sga_buf = sg->tag, .sga_numsegs = 1};
    sga.sga_segs[0].sgaseg_buf = sg->buf;
    sga.sga_segs[0].sgaseg_len = sg->size;
    demi_sgafree(&sga);
    val_bytes -= sg->size;
}

static void val_free(struct kv_val *v)
{
    if (v->framed) {
        /* The value's header lives in the buffer being freed. */
        struct kv_seg one = v->one;
        seg_free(&one);
        return;
    }
    for (uint32_t i = 0; i < v->nseg; i++)
        seg_free(&v->seg[i]);
    if (v->seg != &v->one)
        free(v->seg);
    free(v);
}

void kv_val_unref(struct kv_val *v)
{
    if (--v->refs == 0)
        val_free(v);
}

/* Appends [data, data + len) to the segments of @v from segment @first on;
 * the room after their ends is known to suffice. */
static void fill(struct kv_val *v, uint32_t first, const uint8_t *data, size_t len)
{
    for (uint32_t i = first; i < v->nseg && len > 0; i++) {
        struct kv_seg *sg = &v->seg[i];
        size_t room = sg->cap - sg->len;
        size_t n = len < room ? len : room;
        if (n) {
            memcpy(sg->data + sg->len, data, n);
            sg->len += (uint32_t)n;
            data += n;
            len -= n;
            v->len += n;
        }
    }
}

static struct kv_val *val_alloc(void)
{
    struct kv_val *v = calloc(1, sizeof(*v));
    if (v) {
        v->refs = 1;
        v->seg = &v->one;
    }
    return v;
}

/* "$<len>\r\n" into buf (at least 24 bytes); returns its length. */
static size_t bulk_header(char *buf, size_t len)
{
    char digits[24];
    size_t n = 0, h = 0;
    do {
        digits[n++] = (char)('0' + len % 10);
        len /= 10;
    } while (len);
    buf[h++] = '$';
    while (n)
        buf[h++] = digits[--n];
    buf[h++] = '\r';
    buf[h++] = '\n';
    return h;
}

/*
 * A framed value: one heap buffer holding the struct kv_val itself and
 * then "$<len>\r\n" <a> <b> "\r\n". Keeping the header in the buffer saves
 * a malloc per value and, on a GET, a cache miss: the reply's bytes sit
 * right after it.
 */
static struct kv_val *new_framed(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    char hdr[24];
    size_t len = alen + blen;
    size_t h = bulk_header(hdr, len);
    struct kv_seg sg;
    if (seg_alloc(&sg, sizeof(struct kv_val) + h + len + 2))
        return NULL;
    struct kv_val *v = (struct kv_val *)(void *)sg.buf; /* heap blocks are 64-byte aligned */
    memset(v, 0, sizeof(*v));
    uint8_t *frame = (uint8_t *)(v + 1);
    memcpy(frame, hdr, h);
    sg.data = frame + h;
    if (alen)
        memcpy(sg.data, a, alen);
    if (blen)
        memcpy(sg.data + alen, b, blen);
    memcpy(sg.data + len, "\r\n", 2);
    sg.len = sg.cap = (uint32_t)len;
    v->refs = 1;
    v->one = sg;
    v->seg = &v->one;
    v->nseg = 1;
    v->len = len;
    v->framed = 1;
    return v;
}

struct kv_val *kv_val_new(const void *data, size_t len, size_t cap)
{
    struct kv_val *v;
    if (cap <= len && len <= KV_FRAME_MAX) {
        if (!(v = new_framed(data, len, NULL, 0)))
            goto nomem;
        return v;
    }
    if (cap < len)
        cap = len;
    size_t nseg = (cap + KV_SEG_MAX - 1) / KV_SEG_MAX;
    if (!(v = val_alloc()))
        goto nomem;
    if (nseg > 1) {
        v->seg = calloc(nseg, sizeof(*v->seg));
        if (!v->seg) {
            free(v);
            goto nomem;
        }
    }
    for (size_t left = cap; left > 0; v->nseg++) {
        size_t n = left < KV_SEG_MAX ? left : KV_SEG_MAX;
        if (seg_alloc(&v->seg[v->nseg], n)) {
            val_free(v);
            goto nomem;
        }
        left -= n;
    }
    fill(v, 0, data, len);
    return v;
nomem:
    errno = ENOMEM;
    return NULL;
}

size_t kv_val_read(const struct kv_val *v, uint8_t *out, size_t max)
{
    size_t got = 0;
    for (uint32_t i = 0; i < v->nseg && got < max; i++) {
        size_t n = v->seg[i].len;
        if (n > max - got)
            n = max - got;
        memcpy(out + got, v->seg[i].data, n);
        got += n;
    }
    return got;
}

int kv_val_append(struct kv_val **vp, const void *data, size_t len)
{
    struct kv_val *v = *vp;
    if (len == 0)
        return 0;
    uint64_t total = v->len + len;
    if (v->framed || (v->nseg <= 1 && total <= KV_FRAME_MAX)) {
        struct kv_val *nv;
        if (total <= KV_FRAME_MAX) {
            /* Small: a new framed copy (at most KV_FRAME_MAX bytes). */
            nv = new_framed(v->nseg ? v->seg[0].data : NULL, v->len, data, len);
        } else {
            /* Outgrows the frame: unframed, with room to double, so that
             * further appends cost O(1) each on average. */
            nv = kv_val_new(NULL, 0, total * 2 < KV_SEG_MAX ? total * 2 : KV_SEG_MAX);
            if (nv) {
                fill(nv, 0, v->nseg ? v->seg[0].data : NULL, v->len);
                fill(nv, 0, data, len);
            }
        }
        if (!nv)
            return ENOMEM;
        kv_val_unref(v);
        *vp = nv;
        return 0;
    }
    size_t room = v->nseg ? v->seg[v->nseg - 1].cap - v->seg[v->nseg - 1].len : 0;
    if (len <= room) { /* past the end: no reply covers these bytes */
        fill(v, v->nseg - 1, data, len);
        return 0;
    }
    if (total <= KV_SEG_MAX) {
        /* One segment still: copy into a new one twice the size. */
        size_t cap = total * 2 < KV_SEG_MAX ? total * 2 : KV_SEG_MAX;
        struct kv_val *nv = kv_val_new(NULL, 0, cap);
        if (!nv)
            return ENOMEM;
        for (uint32_t i = 0; i < v->nseg; i++)
            fill(nv, 0, v->seg[i].data, v->seg[i].len);
        fill(nv, 0, data, len);
        kv_val_unref(v);
        *vp = nv;
        return 0;
    }
    /* A large value grows by whole KV_SEG_MAX segments (at most 16 MiB of
     * slack on a value over 16 MiB); the existing ones stay put. */
    size_t add = (len - room + KV_SEG_MAX - 1) / KV_SEG_MAX;
    struct kv_seg *segs =
        v->seg == &v->one ? malloc((v->nseg + add) * sizeof(*segs)) : realloc(v->seg, (v->nseg + add) * sizeof(*segs));
    if (!segs)
        return ENOMEM;
    if (v->seg == &v->one && v->nseg)
        segs[0] = v->one;
    v->seg = segs;
    uint32_t first = v->nseg ? v->nseg - 1 : 0;
    for (size_t i = 0; i < add; i++) {
        if (seg_alloc(&v->seg[v->nseg], KV_SEG_MAX)) {
            /* Undo: drop the segments added so far; the value is unchanged. */
            while (i-- > 0)
                seg_free(&v->seg[--v->nseg]);
            return ENOMEM;
        }
        v->nseg++;
    }
    fill(v, first, data, len);
    return 0;
}

/* ---- keys ---- */

static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t kv_hash_bytes(uint64_t seed, const void *key, size_t n)
{
    const uint8_t *p = key;
    uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ (w * 0x87c37b91114253d5ull));
        h = ((h << 31) | (h >> 33)) * 0x4cf5ad432745937full;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++)
        w |= (uint64_t)p[i] << (8 * i);
    h ^= w * 0x87c37b91114253d5ull;
    return mix(h);
}

static uint64_t next_rand(struct kv_store *s)
{
    /* xorshift64*: only picks samples for active expiry. */
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return s->rng * 0x2545f4914f6cdd1dull;
}

int kv_store_init(struct kv_store *s)
{
    memset(s, 0, sizeof(*s));
    s->bucket = calloc(INITIAL_BUCKETS, sizeof(*s->bucket));
    if (!s->bucket)
        return ENOMEM;
    s->mask = INITIAL_BUCKETS - 1;
    uint64_t seed[2];
    if (getrandom(seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed)) {
        seed[0] = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
        seed[1] = mix(seed[0]);
    }
    s->seed = seed[0];
    s->rng = seed[1] | 1;
    return 0;
}

static void free_chains(struct kv_entry **bucket, size_t mask)
{
    for (size_t b = 0; b <= mask; b++) {
        struct kv_entry *e = bucket[b];
        while (e) {
            struct kv_entry *next = e->next;
            drop_value(e);
            free(e);
            e = next;
        }
        bucket[b] = NULL;
    }
}

/* Frees every entry, and the new table of a rehash in progress (the old
 * one stays, empty). */
static void free_entries(struct kv_store *s)
{
    free_chains(s->bucket, s->mask);
    if (s->bucket1) {
        free_chains(s->bucket1, s->mask1);
        free(s->bucket1);
        s->bucket1 = NULL;
        s->mask1 = 0;
        s->rehash = 0;
    }
    s->count = 0;
    s->nexp = 0;
    s->stats.key_bytes = 0;
}

void kv_store_free(struct kv_store *s)
{
    if (s->bucket)
        free_entries(s);
    free(s->bucket);
    free(s->exp);
    memset(s, 0, sizeof(*s));
}

int kv_store_flush(struct kv_store *s)
{
    free_entries(s);
    struct kv_entry **b = calloc(INITIAL_BUCKETS, sizeof(*b));
    if (!b)
        return ENOMEM;
    free(s->bucket);
    s->bucket = b;
    s->mask = INITIAL_BUCKETS - 1;
    return 0;
}

/* The chain a key of hash @h is in, or goes into: the new table's once the
 * rehash has moved its old bucket, else the old table's. */
static struct kv_entry **chain_of(const struct kv_store *s, uint64_t h)
{
    if (s->bucket1 && (h & s->mask) < s->rehash)
        return &s->bucket1[h & s->mask1];
    return &s->bucket[h & s->mask];
}

static struct kv_entry *find(struct kv_store *s, const uint8_t *key, size_t klen, uint64_t h)
{
    for (struct kv_entry *e = *chain_of(s, h); e; e = e->next)
        if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0)
            return e;
    return NULL;
}

/* Moves old buckets' keys into the new table, for about @work units (a
 * bucket looked at or a key moved is one); returns the units left. */
static size_t rehash_step(struct kv_store *s, size_t work)
{
    while (s->bucket1 && work > 0) {
        struct kv_entry *e = s->bucket[s->rehash];
        s->bucket[s->rehash] = NULL;
        work--;
        while (e) {
            struct kv_entry *next = e->next;
            struct kv_entry **pp = &s->bucket1[e->hash & s->mask1];
            e->next = *pp;
            *pp = e;
            e = next;
            if (work > 0)
                work--;
        }
        if (++s->rehash > s->mask) {
            free(s->bucket);
            s->bucket = s->bucket1;
            s->mask = s->mask1;
            s->bucket1 = NULL;
            s->mask1 = 0;
            s->rehash = 0;
        }
    }
    return work;
}

/* Work per insertion or deletion while rehashing: at least 2 (n buckets
 * take n looks and at most n moves, before n more keys make the table due
 * to grow again), more to be done sooner. */
#define REHASH_WORK 32

void kv_rehash_for(struct kv_store *s, int64_t budget_ns)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (s->bucket1) {
        rehash_step(s, 1000);
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000000000LL + (t.tv_nsec - t0.tv_nsec) >= budget_ns)
            break;
    }
}

size_t kv_table_bytes(const struct kv_store *s)
{
    return (s->mask + 1 + (s->bucket1 ? s->mask1 + 1 : 0)) * sizeof(*s->bucket);
}

/* Starts a rehash into @n buckets (a power of two), unless one is in
 * progress. On ENOMEM the table stays as it is, only slower or larger. */
static void resize(struct kv_store *s, size_t n)
{
    if (s->bucket1)
        return;
    struct kv_entry **b = calloc(n, sizeof(*b));
    if (!b)
        return;
    s->bucket1 = b;
    s->mask1 = n - 1;
    s->rehash = 0;
    rehash_step(s, REHASH_WORK);
}

static void exp_remove(struct kv_store *s, struct kv_entry *e)
{
    struct kv_entry *last = s->exp[--s->nexp];
    s->exp[e->exp_idx] = last;
    last->exp_idx = e->exp_idx;
}

int kv_set_expire(struct kv_store *s, struct kv_entry *e, int64_t when)
{
    if (when < 0) {
        if (e->expire >= 0)
            exp_remove(s, e);
        e->expire = -1;
        return 0;
    }
    if (e->expire < 0) {
        if (s->nexp == s->capexp) {
            size_t cap = s->capexp ? s->capexp * 2 : 64;
            struct kv_entry **x = realloc(s->exp, cap * sizeof(*x));
            if (!x)
                return ENOMEM;
            s->exp = x;
            s->capexp = cap;
        }
        e->exp_idx = (uint32_t)s->nexp;
        s->exp[s->nexp++] = e;
    }
    e->expire = when;
    return 0;
}

static void grow(struct kv_store *s)
{
    if (!s->bucket1)
        resize(s, (s->mask + 1) * 2);
}

/* Halves the table once it holds fewer keys than an eighth of its buckets
 * (growth waits for more keys than buckets, so the two never alternate),
 * so that a table emptied by deletions gives its memory back and
 * RANDOMKEY does not walk long runs of empty buckets. SCAN cursors stay
 * valid: the reverse-binary order visits a shrunk table's bucket, which
 * merges buckets of the larger one, in place of the first of them. */
static void maybe_shrink(struct kv_store *s)
{
    if (s->bucket1)
        rehash_step(s, REHASH_WORK);
    else if (s->mask + 1 > INITIAL_BUCKETS && s->count < (s->mask + 1) / 8)
        resize(s, (s->mask + 1) / 2);
}

void kv_delete(struct kv_store *s, struct kv_entry *e)
{
    struct kv_entry **pp = chain_of(s, e->hash);
    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    if (e->expire >= 0)
        exp_remove(s, e);
    drop_value(e);
    s->stats.key_bytes -= sizeof(*e) + e->klen;
    free(e);
    s->count--;
    maybe_shrink(s);
}

uint64_t kv_hash(const struct kv_store *s, const uint8_t *key, size_t klen)
{
    return kv_hash_bytes(s->seed, key, klen);
}

struct kv_entry *kv_lookup(struct kv_store *s, const uint8_t *key, size_t klen, int64_t now)
{
    return kv_find(s, key, klen, kv_hash_bytes(s->seed, key, klen), now);
}

struct kv_entry *kv_find(struct kv_store *s, const uint8_t *key, size_t klen, uint64_t h, int64_t now)
{
    struct kv_entry *e = find(s, key, klen, h);
    if (e && e->expire >= 0 && now > e->expire) {
        kv_delete(s, e);
        s->stats.expired++;
        return NULL;
    }
    return e;
}

void kv_replace(struct kv_store *s, struct kv_entry *e, struct kv_val *v)
{
    kv_replace_obj(s, e, KV_STRING, v);
}

void kv_replace_obj(struct kv_store *s, struct kv_entry *e, int type, void *obj)
{
    (void)s;
    drop_value(e);
    e->type = (uint8_t)type;
    e->obj = obj;
}

struct kv_entry *kv_insert_obj(struct kv_store *s, const uint8_t *key, size_t klen, uint64_t h, int type, void *obj)
{
    struct kv_entry *e = kv_insert(s, key, klen, h, NULL, -1);
    if (e) {
        e->type = (uint8_t)type;
        e->obj = obj;
    }
    return e;
}

struct kv_entry *kv_insert(struct kv_store *s, const uint8_t *key, size_t klen, uint64_t h, struct kv_val *v,
                           int64_t expire)
{
    struct kv_entry *e;
    if (klen > UINT32_MAX || (e = malloc(sizeof(*e) + klen)) == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    memcpy(e->key, key, klen);
    e->klen = (uint32_t)klen;
    e->hash = h;
    e->expire = -1;
    e->type = KV_STRING;
    e->val = v;
    e->aof_epoch = s->aof_epoch; /* a rewrite running logs it from now on */
    if (expire >= 0 && kv_set_expire(s, e, expire)) {
        free(e);
        errno = ENOMEM;
        return NULL;
    }
    if (s->bucket1)
        rehash_step(s, REHASH_WORK);
    struct kv_entry **pp = chain_of(s, h);
    e->next = *pp;
    *pp = e;
    s->count++;
    s->stats.key_bytes += sizeof(*e) + klen;
    if (s->count > s->mask + 1)
        grow(s);
    return e;
}

struct kv_entry *kv_set(struct kv_store *s, const uint8_t *key, size_t klen, struct kv_val *v, int64_t expire,
                        bool keep_ttl)
{
    uint64_t h = kv_hash_bytes(s->seed, key, klen);
    struct kv_entry *e = find(s, key, klen, h);
    if (!e)
        return kv_insert(s, key, klen, h, v, expire);
    if (!keep_ttl && kv_set_expire(s, e, expire)) {
        errno = ENOMEM;
        return NULL;
    }
    kv_replace(s, e, v);
    return e;
}

size_t kv_expire_round(struct kv_store *s, int64_t now, size_t samples, size_t *sampled)
{
    size_t gone = 0, seen = 0;
    while (seen < samples && s->nexp > 0) {
        struct kv_entry *e = s->exp[next_rand(s) % s->nexp];
        seen++;
        if (now > e->expire) {
            kv_delete(s, e);
            s->stats.expired++;
            gone++;
        }
    }
    *sampled = seen;
    return gone;
}

void kv_foreach(struct kv_store *s, void (*fn)(void *arg, struct kv_entry *e), void *arg)
{
    /* The old table's buckets below the rehash cursor are empty. */
    for (size_t b = s->bucket1 ? s->rehash : 0; b <= s->mask; b++)
        for (struct kv_entry *e = s->bucket[b]; e; e = e->next)
            fn(arg, e);
    for (size_t b = 0; s->bucket1 && b <= s->mask1; b++)
        for (struct kv_entry *e = s->bucket1[b]; e; e = e->next)
            fn(arg, e);
}

/* The bits of @v in reverse order, for the SCAN cursor. */
static uint64_t rev64(uint64_t v)
{
    v = ((v >> 1) & 0x5555555555555555ull) | ((v & 0x5555555555555555ull) << 1);
    v = ((v >> 2) & 0x3333333333333333ull) | ((v & 0x3333333333333333ull) << 2);
    v = ((v >> 4) & 0x0f0f0f0f0f0f0f0full) | ((v & 0x0f0f0f0f0f0f0f0full) << 4);
    v = ((v >> 8) & 0x00ff00ff00ff00ffull) | ((v & 0x00ff00ff00ff00ffull) << 8);
    v = ((v >> 16) & 0x0000ffff0000ffffull) | ((v & 0x0000ffff0000ffffull) << 16);
    return (v >> 32) | (v << 32);
}

/* The cursor's next bucket for a table of mask @m: increment its reversed
 * bits, those above the mask set. A bucket's keys move, when the table
 * doubles, only to the buckets that share its low bits, and those come
 * together in this order, so a walk never skips them. */
static uint64_t next_cursor(uint64_t cursor, uint64_t m)
{
    return rev64(rev64(cursor | ~m) + 1);
}

uint64_t kv_scan(struct kv_store *s, uint64_t cursor, size_t count, void (*fn)(void *arg, struct kv_entry *e),
                 void *arg)
{
    /* A bound on the empty buckets visited, as Redis's count * 10
     * iterations, so that a sparse table still answers quickly. */
    size_t seen = 0, buckets = count > SIZE_MAX / 10 ? SIZE_MAX : count * 10;
    if (!s->bucket1) {
        do {
            for (struct kv_entry *e = s->bucket[cursor & s->mask]; e; e = e->next, seen++)
                fn(arg, e);
            cursor = next_cursor(cursor, s->mask);
        } while (cursor != 0 && seen < count && --buckets > 0);
        return cursor;
    }
    /* Rehashing: the cursor's bucket of the smaller table, then every
     * bucket of the larger one with the cursor's low bits (from the
     * cursor's higher bits on): where the smaller one's keys go or come
     * from. The increment that wraps those higher bits carries into the
     * lower ones, giving the smaller table's next bucket. */
    struct kv_entry *const *sm = s->bucket, *const *lg = s->bucket1;
    uint64_t ms = s->mask, ml = s->mask1;
    if (ms > ml) {
        sm = s->bucket1;
        lg = s->bucket;
        ms = s->mask1;
        ml = s->mask;
    }
    do {
        for (struct kv_entry *e = sm[cursor & ms]; e; e = e->next, seen++)
            fn(arg, e);
        do {
            for (struct kv_entry *e = lg[cursor & ml]; e; e = e->next, seen++)
                fn(arg, e);
            cursor = next_cursor(cursor, ml);
        } while (cursor & (ms ^ ml));
    } while (cursor != 0 && seen < count && --buckets > 0);
    return cursor;
}

/* Bucket @i of the buckets that may hold keys: the old table's from the
 * rehash cursor on, then the new table's. */
static struct kv_entry *bucket_at(const struct kv_store *s, size_t i)
{
    size_t n0 = s->mask + 1 - s->rehash;
    return i < n0 ? s->bucket[s->rehash + i] : s->bucket1[i - n0];
}

struct kv_entry *kv_random(struct kv_store *s)
{
    if (s->count == 0)
        return NULL;
    /* At most one key a bucket on average (the table doubles past that),
     * but deletions leave it sparse: after some misses, walk from a random
     * bucket to the next non-empty one, so the cost stays bounded by the
     * table's size. While rehashing, the buckets of both tables that may
     * hold keys count as one range. */
    size_t n = s->mask + 1;
    if (s->bucket1)
        n = n - s->rehash + s->mask1 + 1;
    size_t b = (size_t)(next_rand(s) % n);
    for (int tries = 0; !bucket_at(s, b) && tries < 64; tries++)
        b = (size_t)(next_rand(s) % n);
    while (!bucket_at(s, b))
        b = b + 1 < n ? b + 1 : 0;
    size_t len = 0;
    for (struct kv_entry *e = bucket_at(s, b); e; e = e->next)
        len++;
    struct kv_entry *e = bucket_at(s, b);
    for (size_t k = next_rand(s) % len; k > 0; k--)
        e = e->next;
    return e;
}

struct kv_entry *kv_rename(struct kv_store *s, struct kv_entry *e, const uint8_t *key, size_t klen)
{
    uint64_t h = kv_hash_bytes(s->seed, key, klen);
    struct kv_entry *d = find(s, key, klen, h);
    if (d == e)
        return e;
    struct kv_entry *n;
    if (klen > UINT32_MAX || (n = malloc(sizeof(*n) + klen)) == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    if (d)
        kv_delete(s, d);
    /* Unlink @e without dropping its value, which @n takes over. */
    struct kv_entry **pp = chain_of(s, e->hash);
    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    memcpy(n, e, sizeof(*n));
    memcpy(n->key, key, klen);
    n->klen = (uint32_t)klen;
    n->hash = h;
    if (n->expire >= 0)
        s->exp[n->exp_idx] = n;
    pp = chain_of(s, h);
    n->next = *pp;
    *pp = n;
    s->stats.key_bytes += klen;
    s->stats.key_bytes -= e->klen;
    free(e);
    return n;
}

size_t kv_entry_mem(const struct kv_entry *e)
{
    size_t n = sizeof(*e) + e->klen;
    if (e->type != KV_STRING)
        return n + kv_types[e->type]->mem(e->obj);
    const struct kv_val *v = e->val;
    if (v->framed)
        return n + v->one.size; /* the struct lives in its buffer */
    n += sizeof(*v);
    if (v->seg != &v->one)
        n += v->nseg * sizeof(*v->seg);
    for (uint32_t i = 0; i < v->nseg; i++)
        n += v->seg[i].size;
    return n;
}
