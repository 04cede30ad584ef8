/*
 * A hash table of byte-string members, each with a value slot: the index
 * behind demi-kv's sets (members only), hashes (field -> value) and sorted
 * sets (member -> its skip-list node). Chained buckets, a power of two of
 * them, seeded hashing (a client cannot pick colliding members), grown
 * at 1 member per bucket and shrunk under 1 per 8 by an incremental
 * rehash: a second table is allocated and every add or remove moves a few
 * buckets' members into it (a bounded amount of work), so that resizing a
 * big set never stops the server for long. Between those steps the
 * members of the old table's buckets below the rehash cursor live in the
 * new table, the others still in the old one: a member's place follows
 * from its hash, and a lookup reads one chain. No other resize starts
 * while one is in progress. dict_find does not move members (it is const,
 * and is called while walking the same dict); a dict nobody adds to or
 * removes from keeps its two tables, correct, until it is next changed.
 *
 * SCAN: dict_scan walks buckets in reverse-binary order (Redis's cursor
 * design): a member present for a whole scan is returned at least once
 * even when the table grows or shrinks between calls; some may come twice.
 *
 * Memory: every byte the dict allocates is counted with kv_obj_account.
 * Values stored in the slots are the caller's.
 */
#ifndef DEMI_KV_DICT_H
#define DEMI_KV_DICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dict_ent {
    struct dict_ent *next;
    uint64_t hash;
    union {
        void *ptr;
        double num;
        uint64_t u64;
    } v;
    uint32_t klen;
    uint8_t key[];
};

struct dict {
    struct dict_ent **bucket; /* NULL while empty; the old table while rehashing */
    size_t mask;              /* buckets - 1 */
    size_t count;
    size_t bytes;    /* tables and entries */
    size_t maxchain; /* no chain of bucket[] is longer (dict_random's fair draw) */
    uint64_t rng;
    /* While rehashing: the new table (else NULL), and the old table's
     * buckets below @rehash have moved there (and are empty). */
    struct dict_ent **bucket1;
    size_t mask1;
    size_t maxchain1; /* no chain of bucket1[] is longer */
    size_t rehash;
};

/* Walks every entry of a dict that does not change meanwhile:
 *     struct dict_it it;
 *     dict_it_init(&it, d);
 *     for (struct dict_ent *e; (e = dict_next(&it)) != NULL;) ... */
struct dict_it {
    const struct dict *d;
    struct dict_ent *e;
    size_t b;
    int t;
};
void dict_it_init(struct dict_it *it, const struct dict *d);
struct dict_ent *dict_next(struct dict_it *it);

/* Buckets that may hold members (those of both tables while rehashing),
 * for cost estimates. */
size_t dict_buckets(const struct dict *d);
/* True while a rehash is in progress (for tests). */
static inline bool dict_rehashing(const struct dict *d)
{
    return d->bucket1 != NULL;
}

/* An empty dict (no allocation until the first member). */
void dict_init(struct dict *d);
/* Frees every entry; @fn (may be NULL) is called on each one first, to
 * free what its slot holds. The dict is empty afterwards. */
void dict_clear(struct dict *d, void (*fn)(struct dict_ent *e, void *arg), void *arg);

struct dict_ent *dict_find(const struct dict *d, const void *key, size_t klen);
/* The member's entry, added (slot zeroed, *added true) when absent. NULL
 * with errno ENOMEM. */
struct dict_ent *dict_add(struct dict *d, const void *key, size_t klen, bool *added);
/* Unlinks and frees an entry (its slot is the caller's to free first). */
void dict_remove(struct dict *d, struct dict_ent *e);
/* Removes the member if present; true when it was. */
bool dict_delete(struct dict *d, const void *key, size_t klen);

static inline size_t dict_size(const struct dict *d)
{
    return d->count;
}

/* A uniformly chosen member, or NULL when empty: every member has the
 * same chance, whatever the chain it is in. */
struct dict_ent *dict_random(struct dict *d);

/* Calls @fn on every entry (it must not add or remove members). */
void dict_foreach(const struct dict *d, void (*fn)(struct dict_ent *e, void *arg), void *arg);

/* One step of a SCAN: calls @fn on the entries of at least one bucket from
 * @cursor on, until about @count entries were visited; returns the next
 * cursor (0 when the scan is complete). While rehashing it visits the
 * cursor's bucket of the smaller table and then every bucket of the larger
 * one that expands from it, so that the guarantee above holds whatever
 * the state of the rehash at each call. */
uint64_t dict_scan(const struct dict *d, uint64_t cursor, size_t count, void (*fn)(struct dict_ent *e, void *arg),
                   void *arg);

/* Bytes the dict holds (tables and entries). */
size_t dict_mem(const struct dict *d);

#endif
