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

struct kv_entry {
    struct kv_entry *next; /* hash chain */
    struct kv_val *val;
    int64_t expire; /* unix time in ms, or -1 */
    uint64_t hash;
    uint32_t exp_idx; /* position in the expiring-keys array when expire >= 0 */
    uint32_t klen;
    uint8_t key[];
};

struct kv_stats {
    uint64_t hits, misses; /* GET-like lookups */
    uint64_t expired;      /* keys removed because their time passed */
    uint64_t value_bytes;  /* heap bytes held by values */
    uint64_t key_bytes;    /* bytes of keys and entries */
};

struct kv_store {
    struct kv_entry **bucket;
    size_t mask; /* buckets - 1 */
    size_t count;
    struct kv_entry **exp; /* the keys with a time to live, for active expiry */
    size_t nexp, capexp;
    uint64_t seed, rng;
    struct kv_stats stats;
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

/* The hash of a key, for kv_find and kv_insert (a lookup followed by an
 * insertion then hashes the key once). */
uint64_t kv_hash(const struct kv_store *s, const uint8_t *key, size_t klen);
/* kv_lookup with the key's hash already known. */
struct kv_entry *kv_find(struct kv_store *s, const uint8_t *key, size_t klen, uint64_t h, int64_t now);
/* Adds a key known to be absent (a kv_find just missed it), taking over the
 * caller's reference on @v. NULL with errno ENOMEM (the caller keeps it). */
struct kv_entry *kv_insert(struct kv_store *s, const uint8_t *key, size_t klen, uint64_t h, struct kv_val *v,
                           int64_t expire);

/* Sets the key to @v, taking over the caller's reference. With
 * keep_ttl the key keeps its time to live, else it gets @expire (-1 for
 * none). Returns the entry, or NULL with errno ENOMEM (the caller keeps
 * its reference then). */
struct kv_entry *kv_set(struct kv_store *s, const uint8_t *key, size_t klen, struct kv_val *v, int64_t expire,
                        bool keep_ttl);

/* Replaces the value of an existing entry, keeping its time to live. */
void kv_replace(struct kv_store *s, struct kv_entry *e, struct kv_val *v);

/* Deletes an entry found by kv_lookup. */
void kv_delete(struct kv_store *s, struct kv_entry *e);

/* Sets (when >= 0) or clears (-1) an entry's expiry time. 0 or ENOMEM. */
int kv_set_expire(struct kv_store *s, struct kv_entry *e, int64_t when);

/* One round of active expiry: samples up to @samples keys that have a time
 * to live and deletes those whose time has passed. Returns how many it
 * deleted; *sampled gets how many it looked at. */
size_t kv_expire_round(struct kv_store *s, int64_t now, size_t samples, size_t *sampled);

/* Calls @fn on every entry, live or not yet expired (the caller checks);
 * @fn must not add or delete keys. */
void kv_foreach(struct kv_store *s, void (*fn)(void *arg, struct kv_entry *e), void *arg);

static inline size_t kv_size(const struct kv_store *s)
{
    return s->count;
}
static inline size_t kv_expiring(const struct kv_store *s)
{
    return s->nexp;
}

#endif
