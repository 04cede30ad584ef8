/*
 * demi-kv's keyspace (see store.h): a chained hash table with a seeded
 * hash, doubling when it holds more keys than buckets, plus an array of
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
static uint64_t val_bytes;

uint64_t kv_val_bytes(void)
{
    return val_bytes;
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

static uint64_t hash_key(uint64_t seed, const uint8_t *p, size_t n)
{
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

static void free_entries(struct kv_store *s)
{
    for (size_t b = 0; b <= s->mask; b++) {
        struct kv_entry *e = s->bucket[b];
        while (e) {
            struct kv_entry *next = e->next;
            kv_val_unref(e->val);
            free(e);
            e = next;
        }
        s->bucket[b] = NULL;
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

static struct kv_entry *find(struct kv_store *s, const uint8_t *key, size_t klen, uint64_t h)
{
    for (struct kv_entry *e = s->bucket[h & s->mask]; e; e = e->next)
        if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0)
            return e;
    return NULL;
}

/* Doubles the table. On ENOMEM the table stays as it is, only slower. */
static void grow(struct kv_store *s)
{
    size_t n = (s->mask + 1) * 2;
    struct kv_entry **b = calloc(n, sizeof(*b));
    if (!b)
        return;
    for (size_t i = 0; i <= s->mask; i++) {
        struct kv_entry *e = s->bucket[i];
        while (e) {
            struct kv_entry *next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(s->bucket);
    s->bucket = b;
    s->mask = n - 1;
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

void kv_delete(struct kv_store *s, struct kv_entry *e)
{
    struct kv_entry **pp = &s->bucket[e->hash & s->mask];
    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    if (e->expire >= 0)
        exp_remove(s, e);
    kv_val_unref(e->val);
    s->stats.key_bytes -= sizeof(*e) + e->klen;
    free(e);
    s->count--;
}

uint64_t kv_hash(const struct kv_store *s, const uint8_t *key, size_t klen)
{
    return hash_key(s->seed, key, klen);
}

struct kv_entry *kv_lookup(struct kv_store *s, const uint8_t *key, size_t klen, int64_t now)
{
    return kv_find(s, key, klen, hash_key(s->seed, key, klen), now);
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
    (void)s;
    kv_val_unref(e->val);
    e->val = v;
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
    e->val = v;
    if (expire >= 0 && kv_set_expire(s, e, expire)) {
        free(e);
        errno = ENOMEM;
        return NULL;
    }
    e->next = s->bucket[h & s->mask];
    s->bucket[h & s->mask] = e;
    s->count++;
    s->stats.key_bytes += sizeof(*e) + klen;
    if (s->count > s->mask + 1)
        grow(s);
    return e;
}

struct kv_entry *kv_set(struct kv_store *s, const uint8_t *key, size_t klen, struct kv_val *v, int64_t expire,
                        bool keep_ttl)
{
    uint64_t h = hash_key(s->seed, key, klen);
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
    for (size_t b = 0; b <= s->mask; b++)
        for (struct kv_entry *e = s->bucket[b]; e; e = e->next)
            fn(arg, e);
}
