/*
 * demi-kv's keyspace: one database of string keys and values, with
 * expiry. Keys live in ordinary memory; values live in libdemi's heap
 * (demi_sgaalloc), so that a GET can push the stored bytes themselves.
 *
 * A value is reference counted by the application: the keyspace holds one
 * reference and every reply still being assembled holds another, so that a
 * DEL or SET in the same pipelined batch as a GET cannot free the bytes the
 * GET's reply points to before that reply is pushed. Once pushed, libdemi
 * holds its own reference on the heap buffer. Value bytes are never changed
 * in place: APPEND only writes past the current end, which no reply covers.
 *
 * Single-threaded, like the rest of the server. No function here aborts;
 * allocation failures come back as NULL or ENOMEM.
 */
#ifndef DEMI_KV_STORE_H
#define DEMI_KV_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest value Redis accepts (proto-max-bulk-len): SET and APPEND stop there. */
#define KV_MAX_VALUE ((uint64_t)512 * 1024 * 1024)
/* Largest piece of a value: one segment of one heap allocation. */
#define KV_SEG_MAX ((size_t)16 * 1024 * 1024)
/* Values up to this size are stored framed (see struct kv_val). */
#define KV_FRAME_MAX ((size_t)16 * 1024)

/* One piece of a value, in a heap buffer from demi_sgaalloc. */
struct kv_seg {
    void *tag;     /* the allocation's sga_buf, needed to free it */
    uint8_t *buf;  /* start of the allocation */
    uint8_t *data; /* the value's bytes in it */
    uint32_t size; /* bytes allocated at buf */
    uint32_t len;  /* bytes of the value at data */
    uint32_t cap;  /* room at data (len included) */
};

/*
 * A string value. Small ones (up to KV_FRAME_MAX) are framed: their one
 * buffer holds this struct and then the whole RESP bulk reply,
 * "$<len>\r\n" <bytes> "\r\n" (from (struct kv_val *)v + 1), so that a GET
 * pushes one segment and sixteen pipelined GETs fit one push.
 * Framed values are never changed; APPEND makes a new one. Larger values
 * hold just their bytes (GET adds the header and trailer from the reply's
 * own buffer) and grow in place, past their end, so APPEND stays O(1).
 */
struct kv_val {
    uint32_t refs;
    uint32_t nseg;      /* 0 only for an empty unframed value */
    uint64_t len;       /* total bytes */
    uint8_t framed;     /* seg[0].buf holds the bulk reply around the bytes */
    struct kv_seg *seg; /* &one, or an array for values over KV_SEG_MAX */
    struct kv_seg one;
};

/* A value holding a copy of [data, data + len). With @cap > len (room to
 * grow by APPEND) or len > KV_FRAME_MAX it is stored unframed. NULL with
 * errno ENOMEM. */
struct kv_val *kv_val_new(const void *data, size_t len, size_t cap);
static inline void kv_val_ref(struct kv_val *v)
{
    v->refs++;
}
/* Drops one reference; the last one frees the heap buffers. */
void kv_val_unref(struct kv_val *v);
/* Heap bytes held by all values (INFO's used_memory counts them). */
uint64_t kv_val_bytes(void);
/* Copies up to @max bytes of the value to @out; returns how many. */
size_t kv_val_read(const struct kv_val *v, uint8_t *out, size_t max);
/* Appends bytes: in place past the end of an unframed value with room;
 * by adding segments to a value over KV_SEG_MAX; else into a new value that
 * replaces *vp (the caller's reference moves to it, and the old value lives
 * on while replies hold it). Bytes already stored never move or change, so
 * replies that point at them stay right. 0 or ENOMEM (nothing changed). */
int kv_val_append(struct kv_val **vp, const void *data, size_t len);

/*
 * The kinds of value a key holds (TYPE's reply). Strings are struct kv_val
 * in libdemi's heap; the collections are objects in ordinary memory, owned
 * by the entry, each implemented in its own file (t_*.c) behind the ops
 * below. A command that finds a key of another type than it works on
 * replies WRONGTYPE and changes nothing.
 */
enum kv_type { KV_STRING, KV_LIST, KV_SET, KV_HASH, KV_ZSET, KV_NTYPES };

struct resp_arg;
/* Receives one command of a rewrite (below); 0 or an errno that stops it. */
typedef int (*kv_emit_fn)(void *arg, int argc, const struct resp_arg *argv);

struct kv_type_ops {
    const char *name;                 /* TYPE's reply: "list", "set", ... */
    void (*free)(void *obj);          /* frees the object and all it holds */
    size_t (*mem)(const void *obj);   /* bytes it holds (MEMORY USAGE) */
    size_t (*count)(const void *obj); /* elements (--bigkeys) */
    /* The commands that rebuild the object at key [key, key + klen) from
     * nothing (RPUSH, SADD, HSET, ZADD; at most 64 elements or 1 MiB a
     * command), for the AOF rewrite. 0 or the first error of @emit. */
    int (*rewrite)(const void *obj, const uint8_t *key, size_t klen, kv_emit_fn emit, void *arg);
};

/* The collection types' ops (types.c), indexed by enum kv_type; NULL for
 * KV_STRING and for a type not built in. */
extern const struct kv_type_ops *const kv_types[KV_NTYPES];
/* TYPE's name for a type ("string", "list", ...). */
const char *kv_type_name(int type);

/* Bytes of ordinary memory held by collection objects, kept by the types
 * through kv_obj_account (INFO's used_memory and maxmemory count them). */
uint64_t kv_obj_bytes(void);
void kv_obj_account(int64_t delta);

struct kv_entry {
    struct kv_entry *next; /* hash chain */
    union {
        struct kv_val *val; /* type KV_STRING */
        void *obj;          /* the other types */
    };
    int64_t expire; /* unix time in ms, or -1 */
    uint64_t hash;
    uint32_t exp_idx; /* position in the expiring-keys array when expire >= 0 */
    uint32_t klen;
    /* The AOF rewrite that has this key in its new log (aof.c): equal to
     * the store's aof_epoch once snapshotted, or when created while that
     * rewrite runs. Fits in what was padding. */
    uint32_t aof_epoch;
    uint8_t type; /* enum kv_type */
    uint8_t key[];
};

struct kv_stats {
    uint64_t hits, misses; /* GET-like lookups */
    uint64_t expired;      /* keys removed because their time passed */
    uint64_t value_bytes;  /* heap bytes held by values */
    uint64_t key_bytes;    /* bytes of keys and entries */
};

/*
 * The key table grows (at more keys than buckets) and shrinks (under one
 * key per 8 buckets) by an incremental rehash: a second table, into which
 * every insertion or deletion moves a few buckets' keys, and kv_rehash_for
 * (the server's cron) more for idle tables. Until the rehash is over, the
 * keys of the old table's buckets below @rehash are in the new table, the
 * others in the old one, so that a key's chain follows from its hash.
 */
struct kv_store {
    struct kv_entry **bucket;  /* the old table while rehashing */
    size_t mask;               /* buckets - 1 */
    struct kv_entry **bucket1; /* the new table while rehashing, else NULL */
    size_t mask1;
    size_t rehash;
    size_t count;
    struct kv_entry **exp; /* the keys with a time to live, for active expiry */
    size_t nexp, capexp;
    uint64_t seed, rng;
    struct kv_stats stats;
    uint32_t aof_epoch; /* the current AOF rewrite's number; new keys get it */
};

/* 0 or ENOMEM. */
int kv_store_init(struct kv_store *s);
/* Frees every key and drops every value reference. */
void kv_store_free(struct kv_store *s);
/* Removes every key (FLUSHALL). 0 or ENOMEM (the store is then empty but
 * keeps its old table). */
int kv_store_flush(struct kv_store *s);

/* The live entry for the key, or NULL. An entry whose time has passed
 * (now > expire) is deleted on the way (lazy expiry). */
struct kv_entry *kv_lookup(struct kv_store *s, const uint8_t *key, size_t klen, int64_t now);

/* The store's seeded 64-bit hash of n bytes (also used by dict.c). */
uint64_t kv_hash_bytes(uint64_t seed, const void *p, size_t n);

/* The hash of a key, for kv_find and kv_insert (a lookup followed by an
 * insertion then hashes the key once). */
uint64_t kv_hash(const struct kv_store *s, const uint8_t *key, size_t klen);
/* kv_lookup with the key's hash already known. */
struct kv_entry *kv_find(struct kv_store *s, const uint8_t *key, size_t klen, uint64_t h, int64_t now);
/* Adds a key known to be absent (a kv_find just missed it), taking over the
 * caller's reference on @v. NULL with errno ENOMEM (the caller keeps it). */
struct kv_entry *kv_insert(struct kv_store *s, const uint8_t *key, size_t klen, uint64_t h, struct kv_val *v,
                           int64_t expire);

/* kv_insert for a collection: adds a key known to be absent holding @obj
 * of @type (no time to live), taking ownership of it. NULL with errno
 * ENOMEM (the caller keeps it). */
struct kv_entry *kv_insert_obj(struct kv_store *s, const uint8_t *key, size_t klen, uint64_t h, int type, void *obj);

/* Replaces an entry's value, whatever its type, with @obj of @type
 * (a struct kv_val for KV_STRING), keeping its time to live; the old value
 * is freed (a string's reference dropped). */
void kv_replace_obj(struct kv_store *s, struct kv_entry *e, int type, void *obj);

/* Sets the key to @v, taking over the caller's reference. With
 * keep_ttl the key keeps its time to live, else it gets @expire (-1 for
 * none). Returns the entry, or NULL with errno ENOMEM (the caller keeps
 * its reference then). */
struct kv_entry *kv_set(struct kv_store *s, const uint8_t *key, size_t klen, struct kv_val *v, int64_t expire,
                        bool keep_ttl);

/* Replaces the value of an existing entry, keeping its time to live. */
void kv_replace(struct kv_store *s, struct kv_entry *e, struct kv_val *v);

/* Deletes an entry found by kv_lookup. The table may shrink or rehash a
 * step on the way: entries stay where they are in memory, but no walk over
 * the buckets may be in progress (see kv_foreach). */
void kv_delete(struct kv_store *s, struct kv_entry *e);

/* Sets (when >= 0) or clears (-1) an entry's expiry time. 0 or ENOMEM. */
int kv_set_expire(struct kv_store *s, struct kv_entry *e, int64_t when);

/* One round of active expiry: samples up to @samples keys that have a time
 * to live and deletes those whose time has passed. Returns how many it
 * deleted; *sampled gets how many it looked at. */
size_t kv_expire_round(struct kv_store *s, int64_t now, size_t samples, size_t *sampled);

/* Calls @fn on every entry, live or not yet expired (the caller checks);
 * @fn must not add or delete keys (kv_find with now = INT64_MIN, which
 * expires nothing, is allowed: lookups never move keys). */
void kv_foreach(struct kv_store *s, void (*fn)(void *arg, struct kv_entry *e), void *arg);

/*
 * SCAN over the keys: calls @fn on every entry of the buckets from @cursor
 * on (live or not yet expired: the caller checks; @fn must not add or
 * delete keys), in reverse-binary bucket order, until it has seen @count
 * entries or visited 10 * @count buckets, and returns the next cursor (0
 * when the walk is complete). A key present for a whole walk is seen at
 * least once even when the table grows, shrinks or rehashes between calls
 * (while rehashing, the cursor's bucket of the smaller table and those of
 * the larger one that expand from it are visited); some may come twice.
 */
uint64_t kv_scan(struct kv_store *s, uint64_t cursor, size_t count, void (*fn)(void *arg, struct kv_entry *e),
                 void *arg);

/* Moves keys of a rehash in progress for about @budget_ns (the server's
 * cron, for tables that no command changes). */
void kv_rehash_for(struct kv_store *s, int64_t budget_ns);
static inline bool kv_rehashing(const struct kv_store *s)
{
    return s->bucket1 != NULL;
}
/* Bytes of the key tables (INFO's used_memory). */
size_t kv_table_bytes(const struct kv_store *s);

/* A key chosen at random (uniform over the buckets, then over the chain),
 * possibly expired (the caller checks), or NULL when there is none. */
struct kv_entry *kv_random(struct kv_store *s);

/*
 * Moves entry @e to the name [key, key + klen), which replaces (deletes)
 * any key of that name, keeping @e's value, type and time to live: RENAME.
 * Renaming a key onto itself returns it unchanged. Returns the moved
 * entry (@e is then freed), or NULL with errno ENOMEM with nothing changed.
 */
struct kv_entry *kv_rename(struct kv_store *s, struct kv_entry *e, const uint8_t *key, size_t klen);

/* Bytes held by an entry: the key, and its value (a string's heap buffers
 * or a collection's kv_type_ops.mem), for MEMORY USAGE. */
size_t kv_entry_mem(const struct kv_entry *e);

static inline size_t kv_size(const struct kv_store *s)
{
    return s->count;
}
static inline size_t kv_expiring(const struct kv_store *s)
{
    return s->nexp;
}

#endif
