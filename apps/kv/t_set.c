/*
 * demi-kv's sets: SADD, SREM, SPOP, SRANDMEMBER, SMEMBERS, SISMEMBER,
 * SMISMEMBER, SCARD, SMOVE, SINTER, SUNION, SDIFF and their STORE forms,
 * SINTERCARD and SSCAN, with Redis 7.0's replies and errors, checked in
 * Redis's order.
 *
 * A set is a struct dict (dict.h) of its members, the value slots unused:
 * O(1) add, remove, membership and random member, which keeps SADD and
 * SPOP (redis-benchmark's default tests) constant time. A set never holds
 * zero members: the command that empties one deletes its key.
 *
 * SPOP is random, so the append-only log records what it did instead:
 * SREM key <the popped members>, or DEL key when it took them all.
 *
 * Nothing here lets a client's number choose an allocation or a loop
 * larger than the set it names, except SRANDMEMBER's negative count (its
 * members repeat), which is bounded by the client's output buffer limit.
 */
#include "aof.h"
#include "cmd_int.h"
#include "dict.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* ---- the type ---- */

static struct dict *set_new(void)
{
    struct dict *d = malloc(sizeof(*d));
    if (!d)
        return NULL;
    kv_obj_account((int64_t)sizeof(*d));
    dict_init(d);
    return d;
}

static void set_free(void *obj)
{
    struct dict *d = obj;
    dict_clear(d, NULL, NULL);
    kv_obj_account(-(int64_t)sizeof(*d));
    free(d);
}

static size_t set_mem(const void *obj)
{
    return sizeof(struct dict) + dict_mem(obj);
}

static size_t set_count(const void *obj)
{
    return dict_size(obj);
}

#define REWRITE_MEMBERS 64
#define REWRITE_BYTES   ((size_t)1 << 20)

/* SADD key m1 ... m64 (fewer when their bytes would pass 1 MiB), until
 * every member was emitted. */
static int set_rewrite(const void *obj, const uint8_t *key, size_t klen, kv_emit_fn emit, void *arg)
{
    const struct dict *d = obj;
    struct resp_arg argv[2 + REWRITE_MEMBERS];
    memset(argv, 0, sizeof(argv));
    argv[0].ptr = (const uint8_t *)"SADD";
    argv[0].len = 4;
    argv[1].ptr = key;
    argv[1].len = klen;
    int n = 0;
    size_t bytes = 0;
    struct dict_it it;
    dict_it_init(&it, d);
    for (const struct dict_ent *e; (e = dict_next(&it)) != NULL;) {
        /* A member that would take the command past 1 MiB starts the
         * next one (a larger member goes alone). */
        if (n == REWRITE_MEMBERS || (n > 0 && bytes + e->klen > REWRITE_BYTES)) {
            int err = emit(arg, 2 + n, argv);
            if (err)
                return err;
            n = 0;
            bytes = 0;
        }
        argv[2 + n].ptr = e->key;
        argv[2 + n].len = e->klen;
        n++;
        bytes += e->klen;
    }
    return n ? emit(arg, 2 + n, argv) : 0;
}

const struct kv_type_ops kv_set_ops = {
    .name = "set",
    .free = set_free,
    .mem = set_mem,
    .count = set_count,
    .rewrite = set_rewrite,
};

/* ---- helpers ---- */

/* The set at key i for a read (counted as a hit or a miss, as Redis's
 * lookupKeyRead): NULL with *ok true when absent, NULL with *ok false
 * after a WRONGTYPE reply. */
static struct dict *read_set(struct ctx *x, int i, bool *ok)
{
    struct kv_entry *e = lookup_read(x, i);
    *ok = !e || e->type == KV_SET;
    if (!*ok)
        err_wrongtype(x);
    return e && *ok ? e->obj : NULL;
}

static void reply_member(struct ctx *x, const struct dict_ent *e)
{
    reply_bulk(x->r, e->key, e->klen);
}

/* Replies every member, as an array. */
static void reply_all(struct ctx *x, const struct dict *d)
{
    reply_array(x->r, d ? (long long)dict_size(d) : 0);
    if (!d)
        return;
    struct dict_it it;
    dict_it_init(&it, d);
    for (const struct dict_ent *e; (e = dict_next(&it)) != NULL;)
        reply_member(x, e);
}

static _Thread_local uint64_t rng_state;

static uint64_t rnd(void)
{
    if (rng_state == 0) {
        if (getrandom(&rng_state, sizeof(rng_state), GRND_NONBLOCK) != (ssize_t)sizeof(rng_state))
            rng_state = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
        rng_state |= 1;
    }
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

/*
 * @count distinct members chosen at random (0 < count < size), as an
 * array of entries the caller frees; NULL when out of memory. A count
 * close to the size shuffles the first @count places of an array of every
 * member (O(size), which is O(count) there); a smaller one draws random
 * members and drops repeats with a small table of the ones chosen
 * (expected O(count): at least two draws in three are new).
 */
static struct dict_ent **pick_distinct(struct dict *d, size_t count)
{
    size_t size = dict_size(d);
    if (count > size / 3) {
        struct dict_ent **all = malloc(size * sizeof(*all));
        if (!all)
            return NULL;
        size_t n = 0;
        struct dict_it it;
        dict_it_init(&it, d);
        for (struct dict_ent *e; (e = dict_next(&it)) != NULL;)
            all[n++] = e;
        for (size_t i = 0; i < count; i++) {
            size_t j = i + (size_t)(rnd() % (size - i));
            struct dict_ent *t = all[i];
            all[i] = all[j];
            all[j] = t;
        }
        return all;
    }
    size_t cap = 8;
    while (cap < count * 2)
        cap *= 2;
    struct dict_ent **out = malloc(count * sizeof(*out));
    struct dict_ent **seen = calloc(cap, sizeof(*seen));
    if (!out || !seen) {
        free(out);
        free(seen);
        return NULL;
    }
    size_t n = 0;
    while (n < count) {
        struct dict_ent *e = dict_random(d);
        size_t i = (size_t)((e->hash * 0x9e3779b97f4a7c15ull) >> 32) & (cap - 1);
        while (seen[i] && seen[i] != e)
            i = (i + 1) & (cap - 1);
        if (!seen[i]) {
            seen[i] = e;
            out[n++] = e;
        }
    }
    free(seen);
    return out;
}

/* Stores @d (not empty) at key @i, replacing whatever the key held and
 * its time to live, as Redis's setKey. false after an OOM reply (@d is
 * freed then). */
static bool store_set(struct ctx *x, int i, struct dict *d)
{
    uint64_t h;
    struct kv_entry *e = lookup_h(x, i, &h);
    if (e) {
        kv_set_expire(&x->s->store, e, -1);
        kv_replace_obj(&x->s->store, e, KV_SET, d);
    } else if (!kv_insert_obj(&x->s->store, A(x, i), L(x, i), h, KV_SET, d)) {
        set_free(d);
        err_oom(x);
        return false;
    }
    return true;
}

/* ---- commands ---- */

static void cmd_sadd(struct ctx *x)
{
    uint64_t h;
    struct kv_entry *e = lookup_h(x, 1, &h);
    if (e && e->type != KV_SET) {
        err_wrongtype(x);
        return;
    }
    struct dict *d = e ? e->obj : set_new();
    if (!d) {
        err_oom(x);
        return;
    }
    long long added = 0;
    bool oom = false;
    for (int i = 2; i < x->argc && !oom; i++) {
        bool a;
        if (dict_add(d, A(x, i), L(x, i), &a))
            added += a;
        else
            oom = true;
    }
    if (!e && dict_size(d) > 0 && !kv_insert_obj(&x->s->store, A(x, 1), L(x, 1), h, KV_SET, d)) {
        set_free(d);
        err_oom(x);
        return;
    }
    if (!e && dict_size(d) == 0)
        set_free(d);
    /* Members added before memory ran out stay: the change is counted
     * (the log records the whole command, a superset of it). */
    if (added)
        x->s->dirty++;
    if (oom)
        err_oom(x);
    else
        reply_int(x->r, added);
}

static void cmd_srem(struct ctx *x)
{
    bool ok;
    struct kv_entry *e = lookup_type(x, 1, KV_SET, &ok);
    if (!ok)
        return;
    long long removed = 0;
    if (e) {
        struct dict *d = e->obj;
        for (int i = 2; i < x->argc; i++) {
            removed += dict_delete(d, A(x, i), L(x, i));
            if (dict_size(d) == 0) {
                kv_delete(&x->s->store, e);
                break;
            }
        }
    }
    if (removed)
        x->s->dirty++;
    reply_int(x->r, removed);
}

static void cmd_smove(struct ctx *x)
{
    struct kv_entry *src = lookup(x, 1);
    uint64_t h;
    struct kv_entry *dst = lookup_h(x, 2, &h);
    if (!src) {
        reply_int(x->r, 0);
        return;
    }
    if (src->type != KV_SET || (dst && dst->type != KV_SET)) {
        err_wrongtype(x);
        return;
    }
    struct dict *s = src->obj;
    struct dict_ent *m = dict_find(s, A(x, 3), L(x, 3));
    if (src == dst || !m) {
        reply_int(x->r, m != NULL);
        return;
    }
    /* The destination first: it is the step that may run out of memory,
     * and nothing has changed yet if it does. */
    bool added;
    if (dst) {
        if (!dict_add(dst->obj, A(x, 3), L(x, 3), &added)) {
            err_oom(x);
            return;
        }
    } else {
        struct dict *d = set_new();
        if (!d || !dict_add(d, A(x, 3), L(x, 3), &added) ||
            !kv_insert_obj(&x->s->store, A(x, 2), L(x, 2), h, KV_SET, d)) {
            if (d)
                set_free(d);
            err_oom(x);
            return;
        }
    }
    dict_remove(s, m);
    if (dict_size(s) == 0)
        kv_delete(&x->s->store, src);
    x->s->dirty++;
    reply_int(x->r, 1);
}

static void cmd_sismember(struct ctx *x)
{
    bool ok;
    struct dict *d = read_set(x, 1, &ok);
    if (ok)
        reply_int(x->r, d && dict_find(d, A(x, 2), L(x, 2)));
}

static void cmd_smismember(struct ctx *x)
{
    bool ok;
    struct dict *d = read_set(x, 1, &ok);
    if (!ok)
        return;
    reply_array(x->r, x->argc - 2);
    for (int i = 2; i < x->argc; i++)
        reply_int(x->r, d && dict_find(d, A(x, i), L(x, i)));
}

static void cmd_scard(struct ctx *x)
{
    bool ok;
    struct dict *d = read_set(x, 1, &ok);
    if (ok)
        reply_int(x->r, d ? (long long)dict_size(d) : 0);
}

static void cmd_smembers(struct ctx *x)
{
    bool ok;
    struct dict *d = read_set(x, 1, &ok);
    if (ok)
        reply_all(x, d);
}

static void spop_count(struct ctx *x)
{
    long long count;
    if (!resp_str2ll(A(x, 2), L(x, 2), &count) || count < 0) {
        reply_error(x->r, "ERR value is out of range, must be positive");
        return;
    }
    bool ok;
    struct kv_entry *e = lookup_type(x, 1, KV_SET, &ok);
    if (!ok)
        return;
    if (!e || count == 0) {
        reply_array(x->r, 0);
        return;
    }
    struct dict *d = e->obj;
    size_t size = dict_size(d);
    if ((unsigned long long)count >= size) {
        /* All of it: the log records DEL key. */
        struct resp_arg del[2] = {{.ptr = (const uint8_t *)"DEL", .len = 3}, x->argv[1]};
        if (kv_propagate(x, 2, del)) {
            err_oom(x);
            return;
        }
        reply_all(x, d);
        kv_delete(&x->s->store, e);
        x->s->dirty++;
        return;
    }
    if (count > INT_MAX - 2) {
        err_oom(x); /* a set of 2^31 members: no argument vector holds them */
        return;
    }
    struct dict_ent **pick = pick_distinct(d, (size_t)count);
    struct resp_arg *srem = malloc(((size_t)count + 2) * sizeof(*srem));
    if (!pick || !srem) {
        free(pick);
        free(srem);
        err_oom(x);
        return;
    }
    srem[0] = (struct resp_arg){.ptr = (const uint8_t *)"SREM", .len = 4};
    srem[1] = x->argv[1];
    for (long long i = 0; i < count; i++)
        srem[2 + i] = (struct resp_arg){.ptr = pick[i]->key, .len = pick[i]->klen};
    /* What the log records must fit one of its records; SPOP is checked
     * before it runs by its own size only. */
    if (x->s->aof.enabled && aof_cmd_size((int)(count + 2), srem) + 64 > AOF_RECORD_MAX) {
        free(srem);
        free(pick);
        reply_error(x->r, "ERR command too large for the append-only file (256 MiB a record)");
        return;
    }
    int err = kv_propagate(x, (int)(count + 2), srem);
    free(srem);
    if (err) {
        free(pick);
        err_oom(x);
        return;
    }
    reply_array(x->r, count);
    for (long long i = 0; i < count; i++) {
        reply_member(x, pick[i]);
        dict_remove(d, pick[i]);
    }
    free(pick);
    x->s->dirty++;
}

static void cmd_spop(struct ctx *x)
{
    if (x->argc == 3) {
        spop_count(x);
        return;
    }
    if (x->argc > 3) {
        err_syntax(x);
        return;
    }
    bool ok;
    struct kv_entry *e = lookup_type(x, 1, KV_SET, &ok);
    if (!ok)
        return;
    if (!e) {
        reply_null(x->r);
        return;
    }
    struct dict *d = e->obj;
    struct dict_ent *m = dict_random(d);
    struct resp_arg srem[3] = {{.ptr = (const uint8_t *)"SREM", .len = 4}, x->argv[1], {.ptr = m->key, .len = m->klen}};
    if (kv_propagate(x, 3, srem)) {
        err_oom(x);
        return;
    }
    reply_member(x, m);
    dict_remove(d, m);
    if (dict_size(d) == 0)
        kv_delete(&x->s->store, e);
    x->s->dirty++;
}

static void srandmember_count(struct ctx *x)
{
    long long l;
    if (!arg_ll(x, 2, &l))
        return;
    if (l < -LLONG_MAX) {
        errorf(x, "ERR value is out of range, value must between %lld and %lld", -LLONG_MAX, LLONG_MAX);
        return;
    }
    bool ok;
    struct dict *d = read_set(x, 1, &ok);
    if (!ok)
        return;
    if (!d || l == 0) {
        reply_array(x->r, 0);
        return;
    }
    unsigned long long count = l < 0 ? (unsigned long long)-l : (unsigned long long)l;
    if (l < 0 || count == 1) {
        if (count > (unsigned long long)KV_RAND_MAX) {
            errorf(x, "ERR value is out of range: a negative count draws at most %lld members", KV_RAND_MAX);
            return;
        }
        reply_array(x->r, (long long)count);
        for (unsigned long long i = 0; i < count && !x->r->err; i++)
            reply_member(x, dict_random(d));
        return;
    }
    if (count >= dict_size(d)) {
        reply_all(x, d);
        return;
    }
    struct dict_ent **pick = pick_distinct(d, (size_t)count);
    if (!pick) {
        err_oom(x);
        return;
    }
    reply_array(x->r, (long long)count);
    for (size_t i = 0; i < count; i++)
        reply_member(x, pick[i]);
    free(pick);
}

static void cmd_srandmember(struct ctx *x)
{
    if (x->argc == 3) {
        srandmember_count(x);
        return;
    }
    if (x->argc > 3) {
        err_syntax(x);
        return;
    }
    bool ok;
    struct dict *d = read_set(x, 1, &ok);
    if (!ok)
        return;
    if (d)
        reply_member(x, dict_random(d));
    else
        reply_null(x->r);
}

/* Looks up the sets at keys [first, first + n): a missing key is NULL in
 * sets[] (and *missing is set). false after a WRONGTYPE reply, which every
 * key can cause, missing ones before it or not (Redis 7.0). Reads count
 * as hits or misses unless the command stores its result. */
static bool lookup_sets(struct ctx *x, int first, int n, bool store, struct dict **sets, bool *missing)
{
    *missing = false;
    for (int j = 0; j < n; j++) {
        struct kv_entry *e = store ? lookup(x, first + j) : lookup_read(x, first + j);
        if (!e) {
            sets[j] = NULL;
            *missing = true;
        } else if (e->type != KV_SET) {
            err_wrongtype(x);
            return false;
        } else {
            sets[j] = e->obj;
        }
    }
    return true;
}

static int by_size(const void *a, const void *b)
{
    size_t x = dict_size(*(struct dict *const *)a), y = dict_size(*(struct dict *const *)b);
    return x < y ? -1 : x > y;
}

/* Deletes the key at argument @i if it exists (an empty STORE result). */
static void delete_key(struct ctx *x, int i)
{
    struct kv_entry *e = lookup(x, i);
    if (e) {
        kv_delete(&x->s->store, e);
        x->s->dirty++;
    }
}

enum inter_mode { INTER_REPLY, INTER_STORE, INTER_CARD };

/*
 * SINTER, SINTERSTORE (destination at argument 1) and SINTERCARD (stops
 * counting at @limit when not 0) over the keys [first, first + n). Walks
 * the smallest set and looks its members up in the others, smallest
 * first: O(N * M) for N the smallest set's size and M the number of sets.
 */
static void sinter(struct ctx *x, int first, int n, enum inter_mode mode, unsigned long long limit)
{
    struct dict **sets = malloc((size_t)n * sizeof(*sets));
    if (!sets) {
        err_oom(x);
        return;
    }
    bool missing;
    if (!lookup_sets(x, first, n, mode == INTER_STORE, sets, &missing)) {
        free(sets);
        return;
    }
    if (missing) {
        /* An intersection with an empty set is empty. */
        free(sets);
        if (mode == INTER_STORE) {
            delete_key(x, 1);
            reply_int(x->r, 0);
        } else if (mode == INTER_CARD) {
            reply_int(x->r, 0);
        } else {
            reply_array(x->r, 0);
        }
        return;
    }
    qsort(sets, (size_t)n, sizeof(*sets), by_size);
    struct dict_ent **found = NULL;
    struct dict *out = NULL;
    if (mode == INTER_REPLY)
        found = malloc((dict_size(sets[0]) ? dict_size(sets[0]) : 1) * sizeof(*found));
    else if (mode == INTER_STORE)
        out = set_new();
    if ((mode == INTER_REPLY && !found) || (mode == INTER_STORE && !out)) {
        free(sets);
        err_oom(x);
        return;
    }
    size_t count = 0;
    const struct dict *s0 = sets[0];
    struct dict_it it;
    dict_it_init(&it, s0);
    for (struct dict_ent *e; (e = dict_next(&it)) != NULL;) {
        int j = 1;
        while (j < n && (sets[j] == sets[0] || dict_find(sets[j], e->key, e->klen)))
            j++;
        if (j < n)
            continue;
        if (mode == INTER_REPLY) {
            found[count] = e;
        } else if (mode == INTER_STORE) {
            bool added;
            if (!dict_add(out, e->key, e->klen, &added)) {
                set_free(out);
                free(sets);
                err_oom(x);
                return;
            }
        }
        count++;
        if (mode == INTER_CARD && limit && count >= limit)
            goto done;
    }
done:
    free(sets);
    if (mode == INTER_CARD) {
        reply_int(x->r, (long long)count);
    } else if (mode == INTER_REPLY) {
        reply_array(x->r, (long long)count);
        for (size_t i = 0; i < count; i++)
            reply_member(x, found[i]);
        free(found);
    } else {
        if (count == 0) {
            set_free(out);
            delete_key(x, 1);
        } else if (!store_set(x, 1, out)) {
            return;
        }
        x->s->dirty++;
        reply_int(x->r, (long long)count);
    }
}

static void cmd_sinter(struct ctx *x)
{
    sinter(x, 1, x->argc - 1, INTER_REPLY, 0);
}

static void cmd_sinterstore(struct ctx *x)
{
    sinter(x, 2, x->argc - 2, INTER_STORE, 0);
}

static void cmd_sintercard(struct ctx *x)
{
    long long numkeys;
    if (!resp_str2ll(A(x, 1), L(x, 1), &numkeys) || numkeys < 1) {
        reply_error(x->r, "ERR numkeys should be greater than 0");
        return;
    }
    if (numkeys > x->argc - 2) {
        reply_error(x->r, "ERR Number of keys can't be greater than number of args");
        return;
    }
    long long limit = 0;
    for (int j = 2 + (int)numkeys; j < x->argc; j++) {
        if (arg_is(&x->argv[j], "limit") && j + 1 < x->argc) {
            j++;
            if (!resp_str2ll(A(x, j), L(x, j), &limit) || limit < 0) {
                reply_error(x->r, "ERR LIMIT can't be negative");
                return;
            }
        } else {
            err_syntax(x);
            return;
        }
    }
    sinter(x, 2, (int)numkeys, INTER_CARD, (unsigned long long)limit);
}

/*
 * SUNION and SDIFF (with @store, their STORE forms, destination at
 * argument 1) over the keys [first, first + n): the result is built as a
 * new set. SDIFF either checks each member of the first set against the
 * others (N * M) or copies the first set and removes the others' members
 * (the total size), whichever costs less, as Redis chooses.
 */
static void sunion_diff(struct ctx *x, int first, int n, bool diff, bool store)
{
    /* Zeroed: gcc cannot see that lookup_sets fills every slot (n >= 1). */
    struct dict **sets = calloc((size_t)n, sizeof(*sets));
    struct dict *out = set_new();
    bool missing;
    if (!sets || !out) {
        free(sets);
        if (out)
            set_free(out);
        err_oom(x);
        return;
    }
    if (!lookup_sets(x, first, n, store, sets, &missing)) {
        free(sets);
        set_free(out);
        return;
    }
    bool oom = false, added;
    if (!diff) {
        for (int j = 0; j < n && !oom; j++) {
            if (!sets[j])
                continue;
            struct dict_it it;
            dict_it_init(&it, sets[j]);
            for (struct dict_ent *e; !oom && (e = dict_next(&it)) != NULL;)
                oom = !dict_add(out, e->key, e->klen, &added);
        }
    } else if (sets[0]) {
        /* Costs as Redis weighs them: N * M halved (a member is usually
         * found, or not, before the last set) against the total size. */
        unsigned long long one = 0, two = 0;
        for (int j = 0; j < n; j++) {
            if (sets[j]) {
                one += dict_size(sets[0]);
                two += dict_size(sets[j]);
            }
        }
        const struct dict *s0 = sets[0];
        if (one / 2 <= two) {
            struct dict_it it;
            dict_it_init(&it, s0);
            for (struct dict_ent *e; !oom && (e = dict_next(&it)) != NULL;) {
                int j = 1;
                while (j < n && (!sets[j] || (sets[j] != s0 && !dict_find(sets[j], e->key, e->klen))))
                    j++;
                if (j == n)
                    oom = !dict_add(out, e->key, e->klen, &added);
            }
        } else {
            struct dict_it it;
            dict_it_init(&it, s0);
            for (struct dict_ent *e; !oom && (e = dict_next(&it)) != NULL;)
                oom = !dict_add(out, e->key, e->klen, &added);
            for (int j = 1; j < n && !oom && dict_size(out) > 0; j++) {
                if (!sets[j])
                    continue;
                if (sets[j] == s0) {
                    dict_clear(out, NULL, NULL);
                    break;
                }
                struct dict_it jt;
                dict_it_init(&jt, sets[j]);
                for (struct dict_ent *e; dict_size(out) > 0 && (e = dict_next(&jt)) != NULL;)
                    dict_delete(out, e->key, e->klen);
            }
        }
    }
    free(sets);
    if (oom) {
        set_free(out);
        err_oom(x);
        return;
    }
    if (!store) {
        reply_all(x, out);
        set_free(out);
        return;
    }
    size_t count = dict_size(out);
    if (count == 0) {
        set_free(out);
        delete_key(x, 1);
    } else if (!store_set(x, 1, out)) {
        return;
    }
    x->s->dirty++;
    reply_int(x->r, (long long)count);
}

static void cmd_sunion(struct ctx *x)
{
    sunion_diff(x, 1, x->argc - 1, false, false);
}

static void cmd_sunionstore(struct ctx *x)
{
    sunion_diff(x, 2, x->argc - 2, false, true);
}

static void cmd_sdiff(struct ctx *x)
{
    sunion_diff(x, 1, x->argc - 1, true, false);
}

static void cmd_sdiffstore(struct ctx *x)
{
    sunion_diff(x, 2, x->argc - 2, true, true);
}

struct scan_out {
    const struct scan_args *a;
    struct dict_ent **ents;
    size_t n, cap;
    bool oom;
};

static void scan_one(struct dict_ent *e, void *arg)
{
    struct scan_out *o = arg;
    if (o->oom || !scan_match(o->a, e->key, e->klen))
        return;
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 16;
        struct dict_ent **p = realloc(o->ents, cap * sizeof(*p));
        if (!p) {
            o->oom = true;
            return;
        }
        o->ents = p;
        o->cap = cap;
    }
    o->ents[o->n++] = e;
}

static void cmd_sscan(struct ctx *x)
{
    /* Redis checks the cursor, then the key, then the options. */
    struct scan_args a;
    struct ctx cur = *x;
    cur.argc = 3;
    if (!scan_parse(&cur, 2, false, &a))
        return;
    bool ok;
    struct dict *d = read_set(x, 1, &ok);
    if (!ok)
        return;
    if (!d) {
        scan_reply_head(x, 0, 0);
        return;
    }
    if (!scan_parse(x, 2, false, &a))
        return;
    struct scan_out o = {.a = &a};
    uint64_t next = dict_scan(d, a.cursor, (size_t)a.count, scan_one, &o);
    if (o.oom) {
        free(o.ents);
        err_oom(x);
        return;
    }
    scan_reply_head(x, next, (long long)o.n);
    for (size_t i = 0; i < o.n; i++)
        reply_member(x, o.ents[i]);
    free(o.ents);
}

/* ---- the table ---- */

#define CMD KV_CMD

const struct kv_cmd kv_set_cmds[] = {
    CMD("sadd", -3, cmd_sadd, "write denyoom fast", "write set fast", 1, 1, 1, "set", "1.0.0",
        "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.",
        "Add one or more members to a set"),
    CMD("srem", -3, cmd_srem, "write fast", "write set fast", 1, 1, 1, "set", "1.0.0",
        "O(N) where N is the number of members to be removed.", "Remove one or more members from a set"),
    CMD("spop", -2, cmd_spop, "write fast", "write set fast", 1, 1, 1, "set", "1.0.0",
        "Without the count argument O(1), otherwise O(N) where N is the value of the passed count.",
        "Remove and return one or multiple random members from a set"),
    CMD("smembers", 2, cmd_smembers, "readonly", "read set slow", 1, 1, 1, "set", "1.0.0",
        "O(N) where N is the set cardinality.", "Get all the members in a set"),
    CMD("sismember", 3, cmd_sismember, "readonly fast", "read set fast", 1, 1, 1, "set", "1.0.0", "O(1)",
        "Determine if a given value is a member of a set"),
    CMD("smismember", -3, cmd_smismember, "readonly fast", "read set fast", 1, 1, 1, "set", "6.2.0",
        "O(N) where N is the number of elements being checked for membership",
        "Returns the membership associated with the given elements for a set"),
    CMD("scard", 2, cmd_scard, "readonly fast", "read set fast", 1, 1, 1, "set", "1.0.0", "O(1)",
        "Get the number of members in a set"),
    CMD("srandmember", -2, cmd_srandmember, "readonly", "read set slow", 1, 1, 1, "set", "1.0.0",
        "Without the count argument O(1), otherwise O(N) where N is the absolute value of the passed count.",
        "Get one or multiple random members from a set"),
    CMD("sinter", -2, cmd_sinter, "readonly", "read set slow", 1, -1, 1, "set", "1.0.0",
        "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets.",
        "Intersect multiple sets"),
    CMD("sunion", -2, cmd_sunion, "readonly", "read set slow", 1, -1, 1, "set", "1.0.0",
        "O(N) where N is the total number of elements in all given sets.", "Add multiple sets"),
    CMD("sdiff", -2, cmd_sdiff, "readonly", "read set slow", 1, -1, 1, "set", "1.0.0",
        "O(N) where N is the total number of elements in all given sets.", "Subtract multiple sets"),
    CMD("sinterstore", -3, cmd_sinterstore, "write denyoom", "write set slow", 1, -1, 1, "set", "1.0.0",
        "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets.",
        "Intersect multiple sets and store the resulting set in a key"),
    CMD("sunionstore", -3, cmd_sunionstore, "write denyoom", "write set slow", 1, -1, 1, "set", "1.0.0",
        "O(N) where N is the total number of elements in all given sets.",
        "Add multiple sets and store the resulting set in a key"),
    CMD("sdiffstore", -3, cmd_sdiffstore, "write denyoom", "write set slow", 1, -1, 1, "set", "1.0.0",
        "O(N) where N is the total number of elements in all given sets.",
        "Subtract multiple sets and store the resulting set in a key"),
    KV_CMDK("sintercard", -3, cmd_sintercard, "readonly movablekeys", "read set slow", 0, 0, 0, "set", "7.0.0",
            "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets.",
            "Intersect multiple sets and return the cardinality of the result", "1:#0,1,1 RO access", NULL, NULL),
    CMD("smove", 4, cmd_smove, "write fast", "write set fast", 1, 2, 1, "set", "1.0.0", "O(1)",
        "Move a member from one set to another"),
    CMD("sscan", -3, cmd_sscan, "readonly", "read set slow", 1, 1, 1, "set", "2.8.0",
        "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to "
        "return back to 0. N is the number of elements inside the collection..",
        "Incrementally iterate Set elements"),
};

const size_t kv_set_ncmds = sizeof(kv_set_cmds) / sizeof(kv_set_cmds[0]);
