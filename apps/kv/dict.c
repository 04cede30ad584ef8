/* A hash table of byte strings (see dict.h). */
#include "dict.h"

#include "store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define MIN_BUCKETS 4

static _Thread_local uint64_t seed;

static uint64_t hash(const void *key, size_t klen)
{
    if (seed == 0) {
        if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
            seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
        seed |= 1;
    }
    return kv_hash_bytes(seed, key, klen);
}

/* Counts bytes the dict allocated (+) or freed (-), in its total and the
 * server's. */
static void account(struct dict *d, int64_t delta)
{
    d->bytes += (size_t)delta;
    kv_obj_account(delta);
}

void dict_init(struct dict *d)
{
    memset(d, 0, sizeof(*d));
    d->rng = 0x9e3779b97f4a7c15ull;
}

static size_t ent_size(size_t klen)
{
    return sizeof(struct dict_ent) + klen;
}

/* Buckets of the old table, then of the new one while rehashing. */
static size_t nb0(const struct dict *d)
{
    return d->bucket ? d->mask + 1 : 0;
}

static void free_chain(struct dict *d, struct dict_ent *e, void (*fn)(struct dict_ent *e, void *arg), void *arg)
{
    while (e) {
        struct dict_ent *next = e->next;
        if (fn)
            fn(e, arg);
        account(d, -(int64_t)ent_size(e->klen));
        free(e);
        e = next;
    }
}

void dict_clear(struct dict *d, void (*fn)(struct dict_ent *e, void *arg), void *arg)
{
    if (d->bucket) {
        for (size_t b = 0; b <= d->mask; b++)
            free_chain(d, d->bucket[b], fn, arg);
        account(d, -(int64_t)((d->mask + 1) * sizeof(*d->bucket)));
        free(d->bucket);
    }
    if (d->bucket1) {
        for (size_t b = 0; b <= d->mask1; b++)
            free_chain(d, d->bucket1[b], fn, arg);
        account(d, -(int64_t)((d->mask1 + 1) * sizeof(*d->bucket1)));
        free(d->bucket1);
    }
    uint64_t rng = d->rng;
    dict_init(d);
    d->rng = rng;
}

/* The chain a member of hash @h is in, or goes into: the new table's once
 * the rehash has moved its old bucket, else the old table's. */
static struct dict_ent **chain_of(const struct dict *d, uint64_t h)
{
    if (d->bucket1 && (h & d->mask) < d->rehash)
        return &d->bucket1[h & d->mask1];
    return &d->bucket[h & d->mask];
}

static struct dict_ent *find_h(const struct dict *d, const void *key, size_t klen, uint64_t h)
{
    if (!d->bucket)
        return NULL;
    for (struct dict_ent *e = *chain_of(d, h); e; e = e->next)
        if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0)
            return e;
    return NULL;
}

struct dict_ent *dict_find(const struct dict *d, const void *key, size_t klen)
{
    return d->bucket ? find_h(d, key, klen, hash(key, klen)) : NULL;
}

static size_t chain_len(const struct dict_ent *e)
{
    size_t n = 0;
    for (; e; e = e->next)
        n++;
    return n;
}

/* The rehash is over: the new table replaces the old, emptied one. */
static void rehash_done(struct dict *d)
{
    account(d, -(int64_t)((d->mask + 1) * sizeof(*d->bucket)));
    free(d->bucket);
    d->bucket = d->bucket1;
    d->mask = d->mask1;
    d->maxchain = d->maxchain1;
    d->bucket1 = NULL;
    d->mask1 = 0;
    d->maxchain1 = 0;
    d->rehash = 0;
}

/* Moves old buckets' members into the new table, for about @work units
 * (a bucket looked at or a member moved is one). */
static void rehash_step(struct dict *d, size_t work)
{
    while (d->bucket1 && work > 0) {
        struct dict_ent *e = d->bucket[d->rehash];
        d->bucket[d->rehash] = NULL;
        work--;
        while (e) {
            struct dict_ent *next = e->next;
            struct dict_ent **pp = &d->bucket1[e->hash & d->mask1];
            e->next = *pp;
            *pp = e;
            size_t len = chain_len(e);
            if (len > d->maxchain1)
                d->maxchain1 = len;
            e = next;
            if (work > 0)
                work--;
        }
        if (++d->rehash > d->mask)
            rehash_done(d);
    }
}

/* Work done per add or remove while rehashing: at least 2 (a table of n
 * buckets takes n looks and at most n moves, before n more adds make it
 * due to grow again), more to get it over with sooner. */
#define REHASH_WORK 32

/* Starts a rehash into @n buckets (a power of two), or makes the first
 * table. false when out of memory (the table stays as it was, still
 * correct, only fuller or emptier). */
static bool resize(struct dict *d, size_t n)
{
    if (d->bucket1)
        return false; /* one at a time */
    struct dict_ent **nb = calloc(n, sizeof(*nb));
    if (!nb)
        return false;
    account(d, (int64_t)(n * sizeof(*nb)));
    if (!d->bucket) {
        d->bucket = nb;
        d->mask = n - 1;
        d->maxchain = 0;
        return true;
    }
    d->bucket1 = nb;
    d->mask1 = n - 1;
    d->maxchain1 = 0;
    d->rehash = 0;
    return true;
}

struct dict_ent *dict_add(struct dict *d, const void *key, size_t klen, bool *added)
{
    *added = false;
    uint64_t h = hash(key, klen);
    struct dict_ent *e = find_h(d, key, klen, h);
    if (e)
        return e;
    if (klen > UINT32_MAX || (!d->bucket && !resize(d, MIN_BUCKETS))) {
        errno = ENOMEM;
        return NULL;
    }
    if (!(e = malloc(ent_size(klen)))) {
        errno = ENOMEM;
        return NULL;
    }
    account(d, (int64_t)ent_size(klen));
    e->hash = h;
    e->klen = (uint32_t)klen;
    memcpy(e->key, key, klen);
    memset(&e->v, 0, sizeof(e->v));
    if (d->bucket1)
        rehash_step(d, REHASH_WORK);
    bool in_new = d->bucket1 && (h & d->mask) < d->rehash;
    struct dict_ent **pp = chain_of(d, h);
    e->next = *pp;
    *pp = e;
    d->count++;
    *added = true;
    size_t len = chain_len(e);
    size_t *max = in_new ? &d->maxchain1 : &d->maxchain;
    if (len > *max)
        *max = len;
    if (!d->bucket1 && d->count > d->mask + 1 && resize(d, (d->mask + 1) * 2)) /* on failure the chains just grow */
        rehash_step(d, REHASH_WORK);
    return e;
}

void dict_remove(struct dict *d, struct dict_ent *e)
{
    struct dict_ent **pp = chain_of(d, e->hash);
    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    account(d, -(int64_t)ent_size(e->klen));
    free(e);
    d->count--;
    if (d->count == 0) {
        dict_clear(d, NULL, NULL); /* both tables */
    } else if (d->bucket1) {
        rehash_step(d, REHASH_WORK);
    } else if (d->mask + 1 > MIN_BUCKETS && d->count * 8 < d->mask + 1 && resize(d, (d->mask + 1) / 2)) {
        rehash_step(d, REHASH_WORK);
    }
}

bool dict_delete(struct dict *d, const void *key, size_t klen)
{
    struct dict_ent *e = dict_find(d, key, klen);
    if (e)
        dict_remove(d, e);
    return e != NULL;
}

size_t dict_buckets(const struct dict *d)
{
    return nb0(d) - d->rehash + (d->bucket1 ? d->mask1 + 1 : 0);
}

void dict_it_init(struct dict_it *it, const struct dict *d)
{
    it->d = d;
    it->e = NULL;
    it->t = 0;
    it->b = d->rehash; /* the old table's buckets below it are empty */
}

struct dict_ent *dict_next(struct dict_it *it)
{
    for (;;) {
        if (it->e) {
            struct dict_ent *e = it->e;
            it->e = e->next;
            return e;
        }
        const struct dict *d = it->d;
        if (it->t == 0 && it->b < nb0(d)) {
            it->e = d->bucket[it->b++];
        } else if (it->t == 0) {
            it->t = 1;
            it->b = 0;
        } else if (d->bucket1 && it->b <= d->mask1) {
            it->e = d->bucket1[it->b++];
        } else {
            return NULL;
        }
    }
}

static uint64_t next_rand(struct dict *d)
{
    d->rng ^= d->rng >> 12;
    d->rng ^= d->rng << 25;
    d->rng ^= d->rng >> 27;
    return d->rng * 0x2545f4914f6cdd1dull;
}

struct dict_ent *dict_random(struct dict *d)
{
    if (d->count == 0)
        return NULL;
    /* Rejection sampling: a random bucket and a random position below
     * the longest chain's length; a position past its chain's end draws
     * again. Every member is then equally likely (picking a random entry
     * of a random non-empty bucket would favour members of short chains).
     * With at least 1 member per 8 buckets and seeded hashing, a draw
     * takes a few tries on average. While rehashing, the bucket is drawn
     * from the old table's unmoved ones and the new table's together, and
     * the position below the longer of both bounds: each member still has
     * exactly one (bucket, position) of equal chance. */
    if (!d->bucket1) {
        for (;;) {
            uint64_t r = next_rand(d);
            struct dict_ent *e = d->bucket[r & d->mask];
            size_t j = (size_t)(next_rand(d) % d->maxchain);
            while (e && j > 0) {
                e = e->next;
                j--;
            }
            if (e)
                return e;
        }
    }
    size_t n0 = d->mask + 1 - d->rehash, n = n0 + d->mask1 + 1;
    size_t max = d->maxchain > d->maxchain1 ? d->maxchain : d->maxchain1;
    for (;;) {
        size_t b = (size_t)(next_rand(d) % n);
        struct dict_ent *e = b < n0 ? d->bucket[d->rehash + b] : d->bucket1[b - n0];
        size_t j = (size_t)(next_rand(d) % max);
        while (e && j > 0) {
            e = e->next;
            j--;
        }
        if (e)
            return e;
    }
}

void dict_foreach(const struct dict *d, void (*fn)(struct dict_ent *e, void *arg), void *arg)
{
    struct dict_it it;
    dict_it_init(&it, d);
    for (struct dict_ent *e; (e = dict_next(&it)) != NULL;)
        fn(e, arg);
}

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
 * bits, those above the mask set. */
static uint64_t next_cursor(uint64_t cursor, uint64_t m)
{
    return rev64(rev64(cursor | ~m) + 1);
}

uint64_t dict_scan(const struct dict *d, uint64_t cursor, size_t count, void (*fn)(struct dict_ent *e, void *arg),
                   void *arg)
{
    if (!d->bucket)
        return 0;
    size_t seen = 0;
    if (!d->bucket1) {
        do {
            for (struct dict_ent *e = d->bucket[cursor & d->mask]; e; e = e->next, seen++)
                fn(e, arg);
            /* The next bucket in an order that stays valid when the table
             * size changes between calls (a bucket's members move only to
             * buckets that share its low bits, visited together in this
             * order). */
            cursor = next_cursor(cursor, d->mask);
        } while (cursor != 0 && seen < count);
        return cursor;
    }
    /* Rehashing: the cursor's bucket in the smaller table, then each
     * bucket of the larger one whose low bits are the cursor's (from the
     * cursor's own higher bits on), the buckets the smaller one's members
     * go to or come from. The increment that wraps those higher bits
     * carries into the lower ones: the smaller table's next bucket. */
    struct dict_ent *const *sm = d->bucket, *const *lg = d->bucket1;
    uint64_t ms = d->mask, ml = d->mask1;
    if (ms > ml) {
        sm = d->bucket1;
        lg = d->bucket;
        ms = d->mask1;
        ml = d->mask;
    }
    do {
        for (struct dict_ent *e = sm[cursor & ms]; e; e = e->next, seen++)
            fn(e, arg);
        do {
            for (struct dict_ent *e = lg[cursor & ml]; e; e = e->next, seen++)
                fn(e, arg);
            cursor = next_cursor(cursor, ml);
        } while (cursor & (ms ^ ml));
    } while (cursor != 0 && seen < count);
    return cursor;
}

size_t dict_mem(const struct dict *d)
{
    return d->bytes;
}
