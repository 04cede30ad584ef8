/*
 * demi-kv's generic keyspace commands, whatever type a key holds: TYPE,
 * RENAME, RENAMENX, UNLINK, TOUCH, RANDOMKEY, SCAN, MEMORY USAGE and
 * OBJECT ENCODING. They reach the collections only through kv_types[]
 * (store.h), never a type's own code, so that a type added later works
 * with them unchanged. Replies and errors are Redis 7.0's.
 *
 * UNLINK deletes at once, as DEL does: Redis hands big values to a
 * background thread, and demi-kv has one thread.
 */
#include "cmd_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* TOUCH key [key ...]: how many exist (no access times are kept); each
 * counts as a read hit or miss, as in Redis. */
static void cmd_touch(struct ctx *x)
{
    long long n = 0;
    for (int i = 1; i < x->argc; i++)
        n += lookup_read(x, i) != NULL;
    reply_int(x->r, n);
}

static void cmd_type(struct ctx *x)
{
    struct kv_entry *e = lookup_read(x, 1);
    reply_status(x->r, e ? kv_type_name(e->type) : "none");
}

/* RENAME and RENAMENX: the source (with its time to live) moves to the
 * new name; a key renamed onto itself is left as it is. */
static void rename_generic(struct ctx *x, bool nx)
{
    bool same = L(x, 1) == L(x, 2) && memcmp(A(x, 1), A(x, 2), L(x, 1)) == 0;
    struct kv_entry *e = lookup(x, 1);
    if (!e) {
        reply_error(x->r, "ERR no such key");
        return;
    }
    if (same) {
        if (nx)
            reply_int(x->r, 0);
        else
            reply_status(x->r, "OK");
        return;
    }
    if (nx && lookup(x, 2)) {
        reply_int(x->r, 0);
        return;
    }
    if (!kv_rename(&x->s->store, e, A(x, 2), L(x, 2))) {
        err_oom(x);
        return;
    }
    x->s->dirty++;
    if (nx)
        reply_int(x->r, 1);
    else
        reply_status(x->r, "OK");
}

static void cmd_rename(struct ctx *x)
{
    rename_generic(x, false);
}

static void cmd_renamenx(struct ctx *x)
{
    rename_generic(x, true);
}

/* At most this many expired keys deleted by one RANDOMKEY before it gives
 * up and answers with an expired one, so that one call stays short. */
#define RANDOMKEY_MAX_EXPIRED 100

static void cmd_randomkey(struct ctx *x)
{
    struct kv_store *st = &x->s->store;
    struct kv_entry *e;
    for (int gone = 0; (e = kv_random(st)) != NULL; gone++) {
        if (e->expire < 0 || x->now <= e->expire || gone == RANDOMKEY_MAX_EXPIRED)
            break;
        kv_delete(st, e);
        st->stats.expired++;
    }
    if (e)
        reply_bulk(x->r, e->key, e->klen);
    else
        reply_null(x->r);
}

struct scan_walk {
    struct kv_entry **hits;
    size_t n, cap;
    bool nomem;
};

static void scan_one(void *arg, struct kv_entry *e)
{
    struct scan_walk *w = arg;
    if (w->nomem)
        return;
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 16;
        struct kv_entry **h = realloc(w->hits, cap * sizeof(*h));
        if (!h) {
            w->nomem = true;
            return;
        }
        w->hits = h;
        w->cap = cap;
    }
    w->hits[w->n++] = e;
}

/*
 * SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]: the keys of about
 * @count buckets' worth (kv_scan), then filtered as Redis 7.0 does after
 * collecting them: by pattern, by type name, and expired keys dropped
 * (and deleted).
 */
static void cmd_scan(struct ctx *x)
{
    struct scan_args a;
    if (!scan_parse(x, 1, true, &a))
        return;
    struct scan_walk w = {0};
    uint64_t next = kv_scan(&x->s->store, a.cursor, (size_t)a.count, scan_one, &w);
    if (w.nomem) {
        free(w.hits);
        err_oom(x);
        return;
    }
    size_t kept = 0;
    for (size_t i = 0; i < w.n; i++) {
        struct kv_entry *e = w.hits[i];
        if (!scan_match(&a, e->key, e->klen))
            continue;
        if (a.type) {
            const char *name = kv_type_name(e->type);
            if (a.type->len != strlen(name) || strncasecmp((const char *)a.type->ptr, name, a.type->len) != 0)
                continue;
        }
        if (e->expire >= 0 && x->now > e->expire) {
            kv_delete(&x->s->store, e);
            x->s->store.stats.expired++;
            continue;
        }
        w.hits[kept++] = e;
    }
    scan_reply_head(x, next, (long long)kept);
    for (size_t i = 0; i < kept; i++)
        reply_bulk(x->r, w.hits[i]->key, w.hits[i]->klen);
    free(w.hits);
}

/* MEMORY USAGE key [SAMPLES count]: the exact bytes of the key and its
 * value (kv_entry_mem); SAMPLES is checked and otherwise ignored, since
 * every collection knows its size without sampling. */
static void cmd_memory_usage(struct ctx *x)
{
    for (int j = 3; j < x->argc; j++) {
        long long samples;
        if (arg_is(&x->argv[j], "samples") && j + 1 < x->argc) {
            if (!arg_ll(x, j + 1, &samples))
                return;
            if (samples < 0) {
                err_syntax(x);
                return;
            }
            j++;
        } else {
            err_syntax(x);
            return;
        }
    }
    struct kv_entry *e = lookup(x, 2);
    if (e)
        reply_int(x->r, (long long)kv_entry_mem(e));
    else
        reply_null(x->r);
}

static void cmd_memory_help(struct ctx *x)
{
    static const char *const lines[] = {
        "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "USAGE <key> [SAMPLES <count>]",
        "    Return memory in bytes used by <key> and its value. Nested values are",
        "    sampled up to <count> times (default: 5, 0 means sample all).",
        "HELP",
        "    Prints this help.",
        NULL,
    };
    help(x, lines);
}

/* Redis's encoding of a string value: "int" when it reads as a 64-bit
 * integer, "embstr" up to 44 bytes, else "raw". */
static const char *string_encoding(const struct kv_val *v)
{
    uint8_t buf[21];
    long long ll;
    if (v->len <= 20 && resp_str2ll(buf, kv_val_read(v, buf, sizeof(buf)), &ll))
        return "int";
    return v->len <= 44 ? "embstr" : "raw";
}

/* OBJECT ENCODING key: for a collection, the name Redis gives the
 * structure closest to the one demi-kv uses. */
static void cmd_object_encoding(struct ctx *x)
{
    static const char *const names[KV_NTYPES] = {
        [KV_LIST] = "quicklist", [KV_SET] = "hashtable", [KV_HASH] = "hashtable", [KV_ZSET] = "skiplist"};
    struct kv_entry *e = lookup(x, 2);
    if (!e)
        reply_null(x->r);
    else if (e->type == KV_STRING)
        reply_cstr(x->r, string_encoding(e->val));
    else
        reply_cstr(x->r, names[e->type]);
}

/* OBJECT FREQ key: demi-kv's maxmemory-policy is noeviction, never an LFU
 * policy, so an existing key gets Redis's error for that case (which
 * redis-cli --hotkeys reports); a missing key a null, as in Redis. */
static void cmd_object_freq(struct ctx *x)
{
    if (!lookup(x, 2))
        reply_null(x->r);
    else
        reply_error(x->r, "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note "
                          "that when switching between policies at runtime LRU and LFU data will take some time to "
                          "adjust.");
}

static void cmd_object_help(struct ctx *x)
{
    static const char *const lines[] = {
        "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ENCODING <key>",
        "    Return the kind of internal representation used in order to store the value",
        "    associated with a <key>.",
        "FREQ <key>",
        "    Return the access frequency index of the <key>. The returned integer is",
        "    proportional to the logarithm of the recent access frequency of the key.",
        "HELP",
        "    Prints this help.",
        NULL,
    };
    help(x, lines);
}

#define KSUB(parent, n, a, f, fl, acl, fk, grp, since, cx, summ, ks, tips, args)                                       \
    {                                                                                                                  \
        n, parent "|" n, a, f, fl, acl, fk, fk, fk ? 1 : 0, grp, since, cx, summ, NULL, 0, ks, tips, args              \
    }

static const struct kv_cmd memory_subs[] = {
    KSUB("memory", "usage", -3, cmd_memory_usage, "readonly", "read slow", 2, "server", "4.0.0",
         "O(N) where N is the number of samples.", "Estimate the memory usage of a key", "2 RO", NULL,
         "key:key [SAMPLES count:integer]"),
    KSUB("memory", "help", 2, cmd_memory_help, "loading stale", "slow", 0, "server", "4.0.0", "O(1)",
         "Show helpful text about the different subcommands", NULL, NULL, NULL),
};

static const struct kv_cmd object_subs[] = {
    KSUB("object", "encoding", 3, cmd_object_encoding, "readonly", "keyspace read slow", 2, "generic", "2.2.3", "O(1)",
         "Inspect the internal encoding of a Redis object", "2 RO", "nondeterministic_output", "key:key"),
    KSUB("object", "freq", 3, cmd_object_freq, "readonly", "keyspace read slow", 2, "generic", "4.0.0", "O(1)",
         "Get the logarithmic access frequency counter of a Redis object", "2 RO", "nondeterministic_output",
         "key:key"),
    KSUB("object", "help", 2, cmd_object_help, "loading stale", "keyspace slow", 0, "generic", "6.2.0", "O(1)",
         "Show helpful text about the different subcommands", NULL, NULL, NULL),
};

#define CMD KV_CMDK
#define CONTAINER(n, subs, since, summ)                                                                                \
    {                                                                                                                  \
        n, n, -2, NULL, "", "slow", 0, 0, 0, "server", since, "Depends on subcommand.", summ, subs,                    \
            (int)(sizeof(subs) / sizeof(subs[0])), NULL, NULL, NULL                                                    \
    }

const struct kv_cmd kv_keys_cmds[] = {
    CMD("unlink", -2, kv_cmd_del, "write fast", "keyspace write fast", 1, -1, 1, "generic", "4.0.0",
        "O(1) for each key removed regardless of its size. Then the command does O(N) work in a different thread "
        "in order to reclaim memory, where N is the number of allocations the deleted objects where composed of.",
        "Delete a key asynchronously in another thread. Otherwise it is just as DEL, but non blocking.",
        "1:-1,1,0 RM delete", "request_policy:multi_shard response_policy:agg_sum", "key:key..."),
    CMD("touch", -2, cmd_touch, "readonly fast", "keyspace read fast", 1, -1, 1, "generic", "3.2.1",
        "O(N) where N is the number of keys that will be touched.",
        "Alters the last access time of a key(s). Returns the number of existing keys specified.", "1:-1,1,0 RO",
        "request_policy:multi_shard response_policy:agg_sum", "key:key..."),
    CMD("type", 2, cmd_type, "readonly fast", "keyspace read fast", 1, 1, 1, "generic", "1.0.0", "O(1)",
        "Determine the type stored at key", "1 RO", NULL, "key:key"),
    CMD("rename", 3, cmd_rename, "write", "keyspace write slow", 1, 2, 1, "generic", "1.0.0", "O(1)", "Rename a key",
        "1 RW access delete;2 OW update", NULL, "key:key newkey:key"),
    CMD("renamenx", 3, cmd_renamenx, "write fast", "keyspace write fast", 1, 2, 1, "generic", "1.0.0", "O(1)",
        "Rename a key, only if the new key does not exist", "1 RW access delete;2 OW insert", NULL,
        "key:key newkey:key"),
    CMD("randomkey", 1, cmd_randomkey, "readonly", "keyspace read slow", 0, 0, 0, "generic", "1.0.0", "O(1)",
        "Return a random key from the keyspace", NULL, "request_policy:all_shards nondeterministic_output", NULL),
    CMD("scan", -2, cmd_scan, "readonly", "keyspace read slow", 0, 0, 0, "generic", "2.8.0",
        "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to "
        "return back to 0. N is the number of elements inside the collection.",
        "Incrementally iterate the keys space", NULL, "nondeterministic_output request_policy:special",
        "cursor:integer [MATCH pattern:pattern] [COUNT count:integer] [TYPE type]"),
    CONTAINER("memory", memory_subs, "4.0.0", "A container for memory diagnostics commands"),
    CONTAINER("object", object_subs, "2.2.3", "A container for object introspection commands"),
};

const size_t kv_keys_ncmds = sizeof(kv_keys_cmds) / sizeof(kv_keys_cmds[0]);
