/*
 * apps/txn/store.c: one TxnStore replica's versioned store and its OCC
 * validation (see store.h for the rules). It must never abort, exit or
 * grow past its limits: every request past a bound gets an error, and a
 * failed allocation leaves the store as it was.
 *
 * Shape:
 *  - Keys live in a chained hash table (bucket array doubled once the keys
 *    outnumber the buckets, so chains stay short; the hash is seeded per
 *    store, so that hostile keys cannot be aimed at one chain, and nothing
 *    the store answers depends on the seed). A key entry holds its kept
 *    versions newest first in a small array (at most max_versions, grown by
 *    doubling), the oldest version it has discarded (so that a get below
 *    the kept ones can tell ESTALE from ENOENT), and its lock state: how
 *    many prepared transactions write it and how many read it. store.h's
 *    rules allow one writer at a time; the writers are counted rather than
 *    named because a forced prepare (a backup following its primary) skips
 *    the checks and may, on a backup that diverged, overlap another writer.
 *  - A key entry with no versions and no holders is freed at once: a
 *    refused put or a released read of an absent key leaves nothing behind.
 *  - Prepared transactions live in a second chained table by txnid (at
 *    most max_prepared, else ENOSPC), each holding its timestamp, the key
 *    entries it read and its write set (key entries and copied values). At
 *    prepare, each written key gets room for one more version, so commit
 *    (a decision already taken) cannot fail.
 *  - Bytes (what max_bytes bounds, else ENOMEM): per key, its bytes plus
 *    KEY_OVERHEAD; per kept version, its value plus VER_OVERHEAD; per
 *    prepared transaction, TXN_OVERHEAD plus a pointer per read plus, per
 *    write, its value and the bookkeeping of the version it will become. A
 *    discarded version's value is freed and uncounted at once.
 *  - Remembered decisions live in a ring of max_decided slots, decision
 *    number q (numbered from 0 as they are remembered) in slot q mod
 *    max_decided, so the oldest is the one the next overwrites. An open
 *    addressing index (linear probing, at most half full, so probes stay
 *    short) maps a txnid to its ring slot. Overwriting a slot takes its
 *    old entry out of the index by backward-shift deletion, which leaves
 *    no tombstones: the index never needs a rebuild, and a lookup's cost
 *    does not grow with the evictions. Both arrays are allocated at
 *    txs_create, so remembering a decision cannot fail.
 *
 * Validation order at prepare, which decides which conflict is reported:
 * arguments (EINVAL, a key written twice included), a decision remembered
 * (EALREADY), a repeat (EEXIST),
 * max_prepared (ENOSPC), then each read in order (stale, then write-locked)
 * and each write in order (read- or write-locked, then timestamp), then
 * memory (ENOMEM). A key read twice with different versions is stale for
 * one of them (EAGAIN with TXS_CONFLICT_STALE), not EINVAL. A transaction
 * that reads and writes a key holds both locks; it never conflicts with
 * itself because it is checked before it holds anything. A conflict's
 * version is the conflicting key's newest committed version (0: none).
 *
 * A put checks arguments (EINVAL), then the key's newest version (EEXIST:
 * nothing would change, whether or not the key is held), then the holders
 * (EBUSY), then memory (ENOMEM). A forced commit may bring a version older
 * than the newest (it is slotted in order, the same timestamp replacing
 * that version's value) or older than every kept one (discarded at once,
 * and remembered for ESTALE). stats.keys counts every key entry, those
 * only held by a prepared transaction included.
 */
#include "store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEF_MAX_VERSIONS 8u
#define DEF_MAX_PREPARED 65536u
#define DEF_MAX_BYTES    ((uint64_t)1 << 30)
#define DEF_MAX_DECIDED  65536u
#define NO_VERSION       UINT64_MAX /* kent.min_gone: nothing discarded */
#define MIN_BUCKETS      64u

struct ver {
    uint64_t ts;
    uint8_t *val; /* NULL when vlen is 0 */
    uint32_t vlen;
};

struct kent {
    struct kent *next; /* chain */
    uint64_t hash;
    uint64_t min_gone; /* the oldest version discarded, NO_VERSION if none */
    struct ver *vers;  /* newest first */
    uint32_t nver, cap;
    uint64_t readers; /* prepared transactions reading the key */
    uint64_t writers; /* prepared transactions writing it (one, unless forced) */
    uint32_t klen;
    uint8_t key[];
};

struct wr {
    struct kent *k;
    uint8_t *val;
    uint32_t vlen;
};

struct ptxn {
    struct ptxn *next; /* chain */
    uint64_t txnid, ts;
    uint64_t digest; /* of what it prepared with (prep_digest): tells a repeat from an id collision */
    uint64_t bytes;  /* counted in txs.bytes for it */
    uint32_t nreads, nwrites;
    struct kent **rd;
    struct wr *wr;
};

/* A remembered decision. */
struct dec {
    uint64_t txnid;
    uint64_t ts; /* 0: aborted */
};

struct txs {
    struct txs_limits lim;
    uint64_t seed;
    struct kent **kb; /* key buckets */
    size_t nkb;
    struct ptxn **tb; /* transaction buckets */
    size_t ntb;
    struct dec *dring; /* max_decided slots */
    uint32_t *didx;    /* the index: ring slot + 1, 0 for an empty position */
    size_t ndidx;      /* positions, a power of two >= 2 * max_decided */
    uint64_t dseq;     /* the number the next decision remembered gets */
    struct txs_stats st;
};

#define KEY_OVERHEAD (sizeof(struct kent) + 2 * sizeof(void *))
#define VER_OVERHEAD sizeof(struct ver)
#define TXN_OVERHEAD (sizeof(struct ptxn) + 2 * sizeof(void *))
#define RD_BYTES     sizeof(struct kent *)
#define WR_OVERHEAD  (sizeof(struct wr) + VER_OVERHEAD)

static const uint8_t empty_val[1];

/* ---- hashing ---- */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static uint64_t key_hash(const struct txs *s, const uint8_t *key, size_t klen)
{
    uint64_t h = s->seed ^ (klen * 0x9e3779b97f4a7c15ull);
    size_t i = 0;
    for (; i + 8 <= klen; i += 8) {
        uint64_t w;
        memcpy(&w, key + i, 8);
        h = mix64(h ^ w) + 0x9e3779b97f4a7c15ull;
    }
    uint64_t tail = 0;
    if (klen > i)
        memcpy(&tail, key + i, klen - i);
    return mix64(h ^ tail ^ ((uint64_t)klen << 56));
}

static uint64_t txn_hash(const struct txs *s, uint64_t txnid)
{
    return mix64(txnid ^ s->seed);
}

static uint64_t make_seed(const void *addr)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    uint64_t x = (uint64_t)t.tv_nsec ^ ((uint64_t)t.tv_sec << 30) ^ ((uint64_t)getpid() << 16);
    return mix64(x ^ (uint64_t)(uintptr_t)addr);
}

/* ---- the key table ---- */

static bool key_ok(const uint8_t *key, size_t klen)
{
    return klen <= TXN_KEY_MAX && (key || klen == 0);
}

static bool key_eq(const struct kent *k, uint64_t h, const uint8_t *key, size_t klen)
{
    return k->hash == h && k->klen == klen && (klen == 0 || memcmp(k->key, key, klen) == 0);
}

static struct kent *key_find(const struct txs *s, uint64_t h, const uint8_t *key, size_t klen)
{
    for (struct kent *k = s->kb[h & (s->nkb - 1)]; k; k = k->next)
        if (key_eq(k, h, key, klen))
            return k;
    return NULL;
}

/* Doubles the key buckets; on failure the chains just grow longer. */
static void key_grow(struct txs *s)
{
    size_t n = s->nkb * 2;
    struct kent **nb = calloc(n, sizeof(*nb));
    if (!nb)
        return;
    for (size_t i = 0; i < s->nkb; i++) {
        struct kent *k = s->kb[i];
        while (k) {
            struct kent *next = k->next;
            k->next = nb[k->hash & (n - 1)];
            nb[k->hash & (n - 1)] = k;
            k = next;
        }
    }
    free(s->kb);
    s->kb = nb;
    s->nkb = n;
}

/* The entry of KEY, created (no versions, no holders) when absent. NULL
 * when out of memory. */
static struct kent *key_get(struct txs *s, uint64_t h, const uint8_t *key, size_t klen)
{
    struct kent *k = key_find(s, h, key, klen);
    if (k)
        return k;
    k = calloc(1, sizeof(*k) + klen);
    if (!k)
        return NULL;
    k->hash = h;
    k->min_gone = NO_VERSION;
    k->klen = (uint32_t)klen;
    if (klen)
        memcpy(k->key, key, klen);
    if (s->st.keys >= s->nkb)
        key_grow(s);
    k->next = s->kb[h & (s->nkb - 1)];
    s->kb[h & (s->nkb - 1)] = k;
    s->st.keys++;
    s->st.bytes += KEY_OVERHEAD + klen;
    return k;
}

/* Frees K's versions and K itself (already unlinked). */
static void key_free(struct txs *s, struct kent *k)
{
    for (uint32_t i = 0; i < k->nver; i++) {
        s->st.bytes -= VER_OVERHEAD + k->vers[i].vlen;
        free(k->vers[i].val);
    }
    s->st.versions -= k->nver;
    s->st.bytes -= KEY_OVERHEAD + k->klen;
    s->st.keys--;
    free(k->vers);
    free(k);
}

/* Frees K when nothing keeps it: no versions and no holders. */
static void key_drop_if_empty(struct txs *s, struct kent *k)
{
    if (k->nver || k->readers || k->writers)
        return;
    struct kent **pp = &s->kb[k->hash & (s->nkb - 1)];
    while (*pp != k)
        pp = &(*pp)->next;
    *pp = k->next;
    key_free(s, k);
}

static uint64_t key_newest(const struct kent *k)
{
    return k && k->nver ? k->vers[0].ts : 0;
}

/* ---- versions ---- */

/* Makes K's array hold at least WANT versions (never more than
 * max_versions). */
static int vers_reserve(struct txs *s, struct kent *k, uint64_t want)
{
    uint32_t max = s->lim.max_versions;
    uint32_t need = want < max ? (uint32_t)want : max;
    if (k->cap >= need)
        return 0;
    uint32_t cap = k->cap ? k->cap : 2;
    while (cap < need)
        cap = cap > UINT32_MAX / 2 ? UINT32_MAX : cap * 2;
    if (cap > max)
        cap = max;
    struct ver *v = realloc(k->vers, (size_t)cap * sizeof(*v));
    if (!v)
        return ENOMEM;
    k->vers = v;
    k->cap = cap;
    return 0;
}

static void note_gone(struct kent *k, uint64_t ts)
{
    if (ts < k->min_gone)
        k->min_gone = ts;
}

/* Drops K's oldest kept version. */
static void vers_drop_oldest(struct txs *s, struct kent *k)
{
    struct ver *v = &k->vers[k->nver - 1];
    note_gone(k, v->ts);
    s->st.bytes -= VER_OVERHEAD + v->vlen;
    free(v->val);
    k->nver--;
    s->st.versions--;
}

/* Adds version TS (taking VAL) to K, newest first, the room reserved. The
 * same TS replaces that version's value; a version older than every kept
 * one while the array is full is discarded at once (a forced commit on a
 * backup may arrive out of order). */
static void vers_insert(struct txs *s, struct kent *k, uint64_t ts, uint8_t *val, uint32_t vlen)
{
    uint32_t i = 0;
    while (i < k->nver && k->vers[i].ts > ts)
        i++;
    if (i < k->nver && k->vers[i].ts == ts) {
        s->st.bytes -= k->vers[i].vlen;
        free(k->vers[i].val);
        k->vers[i].val = val;
        k->vers[i].vlen = vlen;
        s->st.bytes += vlen;
        return;
    }
    if (i == s->lim.max_versions ||
        (k->nver == k->cap && k->cap < s->lim.max_versions && vers_reserve(s, k, (uint64_t)k->nver + 1) != 0)) {
        /* Too old to keep (or, which prepare's reservation rules out, no
         * room): a get at TS must then say ESTALE, not lie. */
        note_gone(k, ts);
        free(val);
        return;
    }
    if (k->nver == s->lim.max_versions)
        vers_drop_oldest(s, k);
    memmove(&k->vers[i + 1], &k->vers[i], (size_t)(k->nver - i) * sizeof(k->vers[0]));
    k->vers[i] = (struct ver){.ts = ts, .val = val, .vlen = vlen};
    k->nver++;
    s->st.versions++;
    s->st.bytes += VER_OVERHEAD + vlen;
}

/* A copy of VAL (NULL for an empty one); *OK false when out of memory. */
static uint8_t *val_copy(const uint8_t *val, size_t vlen, bool *ok)
{
    *ok = true;
    if (vlen == 0)
        return NULL;
    uint8_t *p = malloc(vlen);
    if (!p)
        *ok = false;
    else
        memcpy(p, val, vlen);
    return p;
}

/* ---- create, destroy, get, put ---- */

struct txs *txs_create(const struct txs_limits *lim)
{
    struct txs *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    if (lim)
        s->lim = *lim;
    if (!s->lim.max_versions)
        s->lim.max_versions = DEF_MAX_VERSIONS;
    if (!s->lim.max_prepared)
        s->lim.max_prepared = DEF_MAX_PREPARED;
    if (!s->lim.max_bytes)
        s->lim.max_bytes = DEF_MAX_BYTES;
    if (!s->lim.max_decided)
        s->lim.max_decided = DEF_MAX_DECIDED;
    s->seed = make_seed(s);
    s->nkb = s->ntb = MIN_BUCKETS;
    s->kb = calloc(s->nkb, sizeof(*s->kb));
    s->tb = calloc(s->ntb, sizeof(*s->tb));
    s->ndidx = 2;
    while (s->ndidx < (size_t)s->lim.max_decided * 2)
        s->ndidx *= 2;
    s->dring = calloc(s->lim.max_decided, sizeof(*s->dring));
    s->didx = calloc(s->ndidx, sizeof(*s->didx));
    if (!s->kb || !s->tb || !s->dring || !s->didx) {
        free(s->kb);
        free(s->tb);
        free(s->dring);
        free(s->didx);
        free(s);
        return NULL;
    }
    return s;
}

static void txn_free(struct ptxn *t)
{
    for (uint32_t i = 0; i < t->nwrites; i++)
        free(t->wr[i].val);
    free(t);
}

void txs_destroy(struct txs *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->ntb; i++) {
        struct ptxn *t = s->tb[i];
        while (t) {
            struct ptxn *next = t->next;
            txn_free(t);
            t = next;
        }
    }
    for (size_t i = 0; i < s->nkb; i++) {
        struct kent *k = s->kb[i];
        while (k) {
            struct kent *next = k->next;
            key_free(s, k);
            k = next;
        }
    }
    free(s->tb);
    free(s->kb);
    free(s->dring);
    free(s->didx);
    free(s);
}

int txs_get(struct txs *s, const uint8_t *key, size_t klen, uint64_t ts, const uint8_t **val, size_t *vlen,
            uint64_t *ver)
{
    if (ver)
        *ver = 0;
    if (val)
        *val = NULL;
    if (vlen)
        *vlen = 0;
    if (!s || !key_ok(key, klen))
        return EINVAL;
    struct kent *k = key_find(s, key_hash(s, key, klen), key, klen);
    if (!k)
        return ENOENT;
    for (uint32_t i = 0; i < k->nver; i++) {
        const struct ver *v = &k->vers[i];
        if (v->ts > ts)
            continue;
        if (val)
            *val = v->val ? v->val : empty_val;
        if (vlen)
            *vlen = v->vlen;
        if (ver)
            *ver = v->ts;
        return 0;
    }
    /* NO_VERSION cannot be a discarded version: nothing is newer. */
    return k->min_gone != NO_VERSION && k->min_gone <= ts ? ESTALE : ENOENT;
}

/* The bytes a put of VLEN bytes adds to K (NULL: a new key of KLEN). */
static uint64_t put_bytes(const struct txs *s, const struct kent *k, size_t klen, size_t vlen)
{
    uint64_t add = VER_OVERHEAD + vlen;
    if (!k)
        return add + KEY_OVERHEAD + klen;
    if (k->nver == s->lim.max_versions) {
        uint64_t freed = VER_OVERHEAD + k->vers[k->nver - 1].vlen;
        return add > freed ? add - freed : 0;
    }
    return add;
}

int txs_put(struct txs *s, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, uint64_t ts,
            uint64_t *newest)
{
    if (newest)
        *newest = 0;
    if (!s || ts == 0 || !key_ok(key, klen) || vlen > TXN_VAL_MAX || (!val && vlen))
        return EINVAL;
    uint64_t h = key_hash(s, key, klen);
    struct kent *k = key_find(s, h, key, klen);
    if (newest)
        *newest = key_newest(k);
    if (key_newest(k) >= ts)
        return EEXIST;
    if (k && (k->readers || k->writers))
        return EBUSY;
    if (s->st.bytes > s->lim.max_bytes || put_bytes(s, k, klen, vlen) > s->lim.max_bytes - s->st.bytes)
        return ENOMEM;
    bool ok;
    uint8_t *copy = val_copy(val, vlen, &ok);
    if (!ok)
        return ENOMEM;
    if (!k)
        k = key_get(s, h, key, klen);
    if (!k || vers_reserve(s, k, (uint64_t)k->nver + 1) != 0) {
        free(copy);
        if (k)
            key_drop_if_empty(s, k);
        return ENOMEM;
    }
    vers_insert(s, k, ts, copy, (uint32_t)vlen);
    if (newest)
        *newest = key_newest(k);
    return 0;
}

/* ---- the prepared transactions' table ---- */

static struct ptxn **txn_slot(struct txs *s, uint64_t txnid)
{
    struct ptxn **pp = &s->tb[txn_hash(s, txnid) & (s->ntb - 1)];
    while (*pp && (*pp)->txnid != txnid)
        pp = &(*pp)->next;
    return pp;
}

static void txn_grow(struct txs *s)
{
    size_t n = s->ntb * 2;
    struct ptxn **nb = calloc(n, sizeof(*nb));
    if (!nb)
        return;
    for (size_t i = 0; i < s->ntb; i++) {
        struct ptxn *t = s->tb[i];
        while (t) {
            struct ptxn *next = t->next;
            size_t b = txn_hash(s, t->txnid) & (n - 1);
            t->next = nb[b];
            nb[b] = t;
            t = next;
        }
    }
    free(s->tb);
    s->tb = nb;
    s->ntb = n;
}

static void txn_link(struct txs *s, struct ptxn *t)
{
    if (s->st.prepared >= s->ntb)
        txn_grow(s);
    struct ptxn **head = &s->tb[txn_hash(s, t->txnid) & (s->ntb - 1)];
    t->next = *head;
    *head = t;
    s->st.prepared++;
    s->st.bytes += t->bytes;
}

/* Takes T out of the table (T at *PP). */
static void txn_unlink(struct txs *s, struct ptxn **pp)
{
    struct ptxn *t = *pp;
    *pp = t->next;
    s->st.prepared--;
    s->st.bytes -= t->bytes;
}

/* Releases the first NR read keys and NW write keys T holds. */
static void txn_release(struct txs *s, struct ptxn *t, uint32_t nr, uint32_t nw)
{
    for (uint32_t i = 0; i < nr; i++) {
        t->rd[i]->readers--;
        key_drop_if_empty(s, t->rd[i]);
    }
    for (uint32_t i = 0; i < nw; i++) {
        t->wr[i].k->writers--;
        key_drop_if_empty(s, t->wr[i].k);
    }
}

/* ---- remembered decisions ---- */

/* The index position holding TXNID, or SIZE_MAX. */
static size_t dec_pos(const struct txs *s, uint64_t txnid)
{
    size_t mask = s->ndidx - 1;
    for (size_t i = txn_hash(s, txnid) & mask; s->didx[i]; i = (i + 1) & mask)
        if (s->dring[s->didx[i] - 1].txnid == txnid)
            return i;
    return SIZE_MAX;
}

static const struct dec *dec_find(const struct txs *s, uint64_t txnid)
{
    size_t i = txnid ? dec_pos(s, txnid) : SIZE_MAX;
    return i == SIZE_MAX ? NULL : &s->dring[s->didx[i] - 1];
}

/* Takes index position I out by backward-shift deletion: each entry after
 * it in the same run of occupied positions moves back into the hole unless
 * its home position lies cyclically after the hole (then moving it would
 * put it before its home, where a probe would never find it). */
static void dec_unindex(struct txs *s, size_t i)
{
    size_t mask = s->ndidx - 1;
    for (size_t j = (i + 1) & mask; s->didx[j]; j = (j + 1) & mask) {
        size_t home = txn_hash(s, s->dring[s->didx[j] - 1].txnid) & mask;
        /* Does HOME lie in (i, j], cyclically? Then J stays. */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            s->didx[i] = s->didx[j];
            i = j;
        }
    }
    s->didx[i] = 0;
}

/* Remembers TXNID -> TS, forgetting the oldest decision when full. One
 * already remembered keeps its entry (and its place in the FIFO). */
static void dec_record(struct txs *s, uint64_t txnid, uint64_t ts)
{
    if (txnid == 0 || dec_find(s, txnid))
        return;
    uint32_t slot = (uint32_t)(s->dseq % s->lim.max_decided);
    if (s->st.decided == s->lim.max_decided) {
        dec_unindex(s, dec_pos(s, s->dring[slot].txnid));
        s->st.decided--;
    }
    s->dring[slot] = (struct dec){txnid, ts};
    size_t mask = s->ndidx - 1, i = txn_hash(s, txnid) & mask;
    while (s->didx[i])
        i = (i + 1) & mask;
    s->didx[i] = slot + 1;
    s->dseq++;
    s->st.decided++;
}

int txs_decided(const struct txs *s, uint64_t txnid, uint64_t *ts)
{
    const struct dec *d = s ? dec_find(s, txnid) : NULL;
    if (ts)
        *ts = d ? d->ts : 0;
    return d ? 0 : ENOENT;
}

/* ---- prepare ---- */

/* Per-call scratch: each op's key hash, computed once. */
struct prep {
    uint64_t rh[TXN_SET_MAX];
    uint64_t wh[TXN_SET_MAX];
};

static bool op_key_ok(const struct txn_op *op)
{
    return key_ok(op->key.p, op->key.n);
}

static bool same_key(uint64_t ha, const struct txn_op *a, uint64_t hb, const struct txn_op *b)
{
    return ha == hb && a->key.n == b->key.n && (a->key.n == 0 || memcmp(a->key.p, b->key.p, a->key.n) == 0);
}

static int prep_check_args(struct txs *s, struct prep *p, uint64_t txnid, uint64_t ts, const struct txn_op *reads,
                           uint32_t nreads, const struct txn_op *writes, uint32_t nwrites)
{
    if (!s || txnid == 0 || ts == 0 || nreads > TXN_SET_MAX || nwrites > TXN_SET_MAX || (nreads && !reads) ||
        (nwrites && !writes))
        return EINVAL;
    for (uint32_t i = 0; i < nreads; i++) {
        if (!op_key_ok(&reads[i]))
            return EINVAL;
        p->rh[i] = key_hash(s, reads[i].key.p, reads[i].key.n);
    }
    for (uint32_t i = 0; i < nwrites; i++) {
        const struct txn_op *w = &writes[i];
        if (!op_key_ok(w) || w->val.n > TXN_VAL_MAX || (!w->val.p && w->val.n))
            return EINVAL;
        p->wh[i] = key_hash(s, w->key.p, w->key.n);
        for (uint32_t j = 0; j < i; j++)
            if (same_key(p->wh[i], w, p->wh[j], &writes[j]))
                return EINVAL;
    }
    return 0;
}

/* A digest of what a prepared transaction keeps (timestamp, read keys,
 * written keys and values; not the versions read, which a state transfer
 * does not carry), so that a repeat of a prepare can be told from another
 * transaction that drew the same id. */
static uint64_t prep_digest(const struct txs *s, const struct prep *p, uint64_t ts, uint32_t nreads,
                            const struct txn_op *writes, uint32_t nwrites)
{
    uint64_t h = mix64(s->seed ^ ts) ^ ((uint64_t)nreads << 32 | nwrites);
    for (uint32_t i = 0; i < nreads; i++)
        h = mix64(h ^ p->rh[i]);
    for (uint32_t i = 0; i < nwrites; i++)
        h = mix64(mix64(h ^ p->wh[i]) ^ key_hash(s, writes[i].val.p, writes[i].val.n));
    return mix64(h);
}

/* The first conflict, as the top comment orders them; NONE when none. */
static enum txs_conflict prep_conflict(struct txs *s, const struct prep *p, uint64_t ts, const struct txn_op *reads,
                                       uint32_t nreads, const struct txn_op *writes, uint32_t nwrites, uint64_t *cver)
{
    for (uint32_t i = 0; i < nreads; i++) {
        const struct kent *k = key_find(s, p->rh[i], reads[i].key.p, reads[i].key.n);
        *cver = key_newest(k);
        if (key_newest(k) != reads[i].ver)
            return TXS_CONFLICT_STALE;
        if (k && k->writers)
            return TXS_CONFLICT_LOCKED;
    }
    for (uint32_t i = 0; i < nwrites; i++) {
        const struct kent *k = key_find(s, p->wh[i], writes[i].key.p, writes[i].key.n);
        *cver = key_newest(k);
        if (k && (k->readers || k->writers))
            return TXS_CONFLICT_LOCKED;
        if (ts <= key_newest(k))
            return TXS_CONFLICT_TS;
    }
    *cver = 0;
    return TXS_CONFLICT_NONE;
}

static void count_conflict(struct txs *s, enum txs_conflict why)
{
    if (why == TXS_CONFLICT_STALE)
        s->st.conflict_stale++;
    else if (why == TXS_CONFLICT_LOCKED)
        s->st.conflict_locked++;
    else
        s->st.conflict_ts++;
}

/* A new transaction record with copies of the values; NULL when out of
 * memory. Holds no keys yet. */
static struct ptxn *txn_new(uint64_t txnid, uint64_t ts, uint32_t nreads, const struct txn_op *writes, uint32_t nwrites,
                            uint64_t bytes)
{
    size_t sz = sizeof(struct ptxn) + (size_t)nreads * sizeof(struct kent *) + (size_t)nwrites * sizeof(struct wr);
    struct ptxn *t = calloc(1, sz);
    if (!t)
        return NULL;
    t->txnid = txnid;
    t->ts = ts;
    t->bytes = bytes;
    t->nreads = nreads;
    t->nwrites = nwrites;
    /* The write array first: struct wr is the stricter alignment. */
    t->wr = (struct wr *)(t + 1);
    t->rd = (struct kent **)(t->wr + nwrites);
    for (uint32_t i = 0; i < nwrites; i++) {
        bool ok;
        t->wr[i].vlen = writes[i].val.n;
        t->wr[i].val = val_copy(writes[i].val.p, writes[i].val.n, &ok);
        if (!ok) {
            txn_free(t);
            return NULL;
        }
    }
    return t;
}

/* Makes T hold its keys (creating absent ones) and reserves a version slot
 * per written key. ENOMEM (nothing held) when out of memory. */
static int txn_hold(struct txs *s, struct ptxn *t, const struct prep *p, const struct txn_op *reads,
                    const struct txn_op *writes)
{
    for (uint32_t i = 0; i < t->nreads; i++) {
        struct kent *k = key_get(s, p->rh[i], reads[i].key.p, reads[i].key.n);
        if (!k) {
            txn_release(s, t, i, 0);
            return ENOMEM;
        }
        k->readers++;
        t->rd[i] = k;
    }
    for (uint32_t i = 0; i < t->nwrites; i++) {
        struct kent *k = key_get(s, p->wh[i], writes[i].key.p, writes[i].key.n);
        if (!k) {
            txn_release(s, t, t->nreads, i);
            return ENOMEM;
        }
        k->writers++;
        t->wr[i].k = k;
        if (vers_reserve(s, k, (uint64_t)k->nver + k->writers) != 0) {
            txn_release(s, t, t->nreads, i + 1);
            return ENOMEM;
        }
    }
    return 0;
}

int txs_prepare(struct txs *s, uint64_t txnid, uint64_t ts, const struct txn_op *reads, uint32_t nreads,
                const struct txn_op *writes, uint32_t nwrites, bool force, enum txs_conflict *why,
                uint64_t *conflict_ver)
{
    enum txs_conflict w = TXS_CONFLICT_NONE;
    uint64_t cver = 0;
    if (why)
        *why = w;
    if (conflict_ver)
        *conflict_ver = 0;
    struct prep p;
    int rc = prep_check_args(s, &p, txnid, ts, reads, nreads, writes, nwrites);
    if (rc)
        return rc;
    if (dec_find(s, txnid))
        return EALREADY;
    uint64_t digest = prep_digest(s, &p, ts, nreads, writes, nwrites);
    const struct ptxn *held = *txn_slot(s, txnid);
    if (held && held->digest == digest)
        return EEXIST;
    if (held) {
        /* Another transaction with the same id: it may not ride on the
         * held one's vote. Refused like a lock conflict, so the client
         * retries with a fresh id. */
        s->st.conflict_locked++;
        if (why)
            *why = TXS_CONFLICT_LOCKED;
        return EAGAIN;
    }
    if (s->st.prepared >= s->lim.max_prepared)
        return ENOSPC;
    if (!force)
        w = prep_conflict(s, &p, ts, reads, nreads, writes, nwrites, &cver);
    if (w != TXS_CONFLICT_NONE) {
        count_conflict(s, w);
        if (why)
            *why = w;
        if (conflict_ver)
            *conflict_ver = cver;
        return EAGAIN;
    }
    uint64_t bytes = TXN_OVERHEAD + (uint64_t)nreads * RD_BYTES;
    for (uint32_t i = 0; i < nwrites; i++)
        bytes += WR_OVERHEAD + writes[i].val.n;
    if (s->st.bytes > s->lim.max_bytes || bytes > s->lim.max_bytes - s->st.bytes)
        return ENOMEM;
    struct ptxn *t = txn_new(txnid, ts, nreads, writes, nwrites, bytes);
    if (!t)
        return ENOMEM;
    t->digest = digest;
    if (txn_hold(s, t, &p, reads, writes) != 0) {
        txn_free(t);
        return ENOMEM;
    }
    /* The keys it created count too: check again, exactly. */
    if (s->st.bytes > s->lim.max_bytes || bytes > s->lim.max_bytes - s->st.bytes) {
        txn_release(s, t, t->nreads, t->nwrites);
        txn_free(t);
        return ENOMEM;
    }
    txn_link(s, t);
    return 0;
}

/* ---- commit, abort, stats ---- */

int txs_commit(struct txs *s, uint64_t txnid, uint64_t ts)
{
    if (!s)
        return EINVAL;
    struct ptxn **pp = txn_slot(s, txnid);
    struct ptxn *t = *pp;
    if (!t)
        return ENOENT;
    if (t->ts != ts)
        return EINVAL;
    txn_unlink(s, pp);
    for (uint32_t i = 0; i < t->nwrites; i++) {
        vers_insert(s, t->wr[i].k, ts, t->wr[i].val, t->wr[i].vlen);
        t->wr[i].val = NULL;
    }
    txn_release(s, t, t->nreads, t->nwrites);
    txn_free(t);
    s->st.commits++;
    dec_record(s, txnid, ts);
    return 0;
}

int txs_abort(struct txs *s, uint64_t txnid)
{
    if (!s)
        return EINVAL;
    struct ptxn **pp = txn_slot(s, txnid);
    struct ptxn *t = *pp;
    if (!t)
        return ENOENT;
    txn_unlink(s, pp);
    txn_release(s, t, t->nreads, t->nwrites);
    txn_free(t);
    s->st.aborts++;
    dec_record(s, txnid, 0);
    return 0;
}

int txs_note_decided(struct txs *s, uint64_t txnid, uint64_t ts)
{
    if (!s || txnid == 0)
        return EINVAL;
    const struct dec *d = dec_find(s, txnid);
    if (d)
        return d->ts == ts ? EEXIST : EINVAL;
    /* Not remembered, so possibly prepared here (never both). */
    if (*txn_slot(s, txnid))
        return ts ? txs_commit(s, txnid, ts) : txs_abort(s, txnid);
    dec_record(s, txnid, ts);
    return 0;
}

/* ---- state transfer: install, abort all, scans ---- */

int txs_install(struct txs *s, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, uint64_t ts)
{
    if (!s || ts == 0 || !key_ok(key, klen) || vlen > TXN_VAL_MAX || (!val && vlen))
        return EINVAL;
    uint64_t h = key_hash(s, key, klen);
    struct kent *k = key_find(s, h, key, klen);
    if (k)
        for (uint32_t i = 0; i < k->nver; i++)
            if (k->vers[i].ts == ts)
                return EEXIST;
    if (s->st.bytes > s->lim.max_bytes || put_bytes(s, k, klen, vlen) > s->lim.max_bytes - s->st.bytes)
        return ENOMEM;
    bool ok;
    uint8_t *copy = val_copy(val, vlen, &ok);
    if (!ok)
        return ENOMEM;
    if (!k)
        k = key_get(s, h, key, klen);
    /* Room for it beside the slots its prepared writers reserved, so that
     * their commits still cannot fail. */
    if (!k || vers_reserve(s, k, (uint64_t)k->nver + k->writers + 1) != 0) {
        free(copy);
        if (k)
            key_drop_if_empty(s, k);
        return ENOMEM;
    }
    vers_insert(s, k, ts, copy, (uint32_t)vlen);
    return 0;
}

uint64_t txs_abort_all(struct txs *s)
{
    uint64_t n = 0;
    if (!s)
        return 0;
    for (size_t b = 0; b < s->ntb; b++) {
        while (s->tb[b]) {
            struct ptxn *t = s->tb[b];
            txn_unlink(s, &s->tb[b]);
            txn_release(s, t, t->nreads, t->nwrites);
            txn_free(t);
            s->st.aborts++;
            n++;
        }
    }
    return n;
}

size_t txs_scan_keys(const struct txs *s, uint64_t *cursor, size_t max, txs_version_fn *fn, void *arg)
{
    size_t n = 0;
    if (!s || !cursor || *cursor == TXS_SCAN_END)
        return 0;
    uint64_t b = *cursor;
    for (; b < s->nkb && (n == 0 || n < max); b++) {
        for (const struct kent *k = s->kb[b]; k; k = k->next) {
            if (k->nver == 0)
                continue;
            n++;
            for (uint32_t i = k->nver; i-- > 0;) {
                const struct ver *v = &k->vers[i];
                fn(arg, k->key, k->klen, v->ts, v->val ? v->val : empty_val, v->vlen);
            }
        }
    }
    *cursor = b < s->nkb ? b : TXS_SCAN_END;
    return n;
}

size_t txs_scan_prepared(const struct txs *s, uint64_t *cursor, size_t max, txs_prepared_fn *fn, void *arg)
{
    struct txn_op reads[TXN_SET_MAX], writes[TXN_SET_MAX];
    size_t n = 0;
    if (!s || !cursor || *cursor == TXS_SCAN_END)
        return 0;
    uint64_t b = *cursor;
    for (; b < s->ntb && (n == 0 || n < max); b++) {
        for (const struct ptxn *t = s->tb[b]; t; t = t->next) {
            for (uint32_t i = 0; i < t->nreads; i++)
                reads[i] = (struct txn_op){.key = {t->rd[i]->key, t->rd[i]->klen}};
            for (uint32_t i = 0; i < t->nwrites; i++)
                writes[i] = (struct txn_op){.key = {t->wr[i].k->key, t->wr[i].k->klen},
                                            .val = {t->wr[i].val ? t->wr[i].val : empty_val, t->wr[i].vlen}};
            fn(arg, t->txnid, t->ts, reads, t->nreads, writes, t->nwrites);
            n++;
        }
    }
    *cursor = b < s->ntb ? b : TXS_SCAN_END;
    return n;
}

size_t txs_scan_decided(const struct txs *s, uint64_t *cursor, size_t max, txs_decided_fn *fn, void *arg)
{
    size_t n = 0;
    if (!s || !cursor || *cursor == TXS_SCAN_END)
        return 0;
    /* Those numbered below the oldest remembered were forgotten. */
    uint64_t q = *cursor, oldest = s->dseq - s->st.decided;
    if (q < oldest)
        q = oldest;
    for (; q < s->dseq && (n == 0 || n < max); q++, n++) {
        const struct dec *d = &s->dring[q % s->lim.max_decided];
        fn(arg, d->txnid, d->ts);
    }
    *cursor = q < s->dseq ? q : TXS_SCAN_END;
    return n;
}

void txs_get_stats(const struct txs *s, struct txs_stats *st)
{
    if (!st)
        return;
    if (!s) {
        memset(st, 0, sizeof(*st));
        return;
    }
    *st = s->st;
}
