/*
 * demi-kv's commands (see cmd.h). Each handler follows the order in which
 * Redis 7.0 checks its arguments, so that a command with several problems
 * gets the same error as from Redis. The error texts are Redis's; tests
 * (tests/kv/test_kv_cmd.c, tests/kv/test_kv_vs_redis.sh) hold them to it.
 *
 * Zero copy: GET, MGET, GETSET and SET ... GET answer with reply_value(),
 * which points the reply at the stored heap buffer. Values are written once
 * and never changed in place; INCR and friends store a new value.
 */
#include "cmd.h"

#include "glob.h"

#include <demi/libos.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

struct ctx {
    struct kv_server *s;
    struct kv_client *c;
    int argc;
    const struct resp_arg *argv;
    struct reply *r;
    int64_t now;
    const struct kv_cmd *cmd;
};

struct kv_cmd {
    const char *name;     /* lower case */
    const char *fullname; /* "config|get" for a subcommand */
    int arity;            /* n: exactly n arguments; -n: at least n */
    void (*fn)(struct ctx *x);
    const char *flags; /* COMMAND INFO flags, space separated */
    const char *acl;   /* ACL categories, space separated */
    int first, last, step;
    const char *group, *since, *complexity, *summary;
    const struct kv_cmd *subs;
    int nsubs;
};

struct kv_cmd_slot {
    const struct kv_cmd *cmd;
};

int64_t kv_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- helpers ---- */

static const uint8_t *A(const struct ctx *x, int i)
{
    return x->argv[i].ptr;
}

static size_t L(const struct ctx *x, int i)
{
    return x->argv[i].len;
}

/* Case-insensitive comparison of a whole argument with a literal. */
static bool arg_is(const struct resp_arg *a, const char *lit)
{
    size_t n = strlen(lit);
    if (a->len != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (tolower(a->ptr[i]) != tolower((unsigned char)lit[i]))
            return false;
    return true;
}

/* Appends at most @max bytes of [p, p + n) to out (cap bytes, *len used),
 * stopping at a NUL byte, as printf's "%.*s" does with Redis's strings. */
static void cat_upto(char *out, size_t cap, size_t *len, const uint8_t *p, size_t n, size_t max)
{
    for (size_t i = 0; i < n && i < max && p[i] && *len + 1 < cap; i++)
        out[(*len)++] = (char)p[i];
    out[*len] = '\0';
}

static void cat_str(char *out, size_t cap, size_t *len, const char *s)
{
    cat_upto(out, cap, len, (const uint8_t *)s, strlen(s), SIZE_MAX);
}

static void errorf(struct ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void errorf(struct ctx *x, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    reply_error(x->r, buf);
}

static void err_arity(struct ctx *x)
{
    errorf(x, "ERR wrong number of arguments for '%s' command", x->cmd->fullname);
}

static void err_syntax(struct ctx *x)
{
    reply_error(x->r, "ERR syntax error");
}

static void err_int(struct ctx *x)
{
    reply_error(x->r, "ERR value is not an integer or out of range");
}

static void err_expire(struct ctx *x)
{
    errorf(x, "ERR invalid expire time in '%s' command", x->cmd->fullname);
}

static void err_oom(struct ctx *x)
{
    reply_error(x->r, "OOM command not allowed: demi-kv is out of memory (libdemi heap full)");
    /* The next command should find memory: the loop disconnects the client
     * holding the most, unless it is this one. */
    if (x->s->reclaim)
        x->s->reclaim();
}

static bool arg_ll(struct ctx *x, int i, long long *out)
{
    if (resp_str2ll(A(x, i), L(x, i), out))
        return true;
    err_int(x);
    return false;
}

static struct kv_entry *lookup(struct ctx *x, int i)
{
    return kv_lookup(&x->s->store, A(x, i), L(x, i), x->now);
}

/* A lookup that counts as a hit or a miss (GET, MGET, ...). */
static struct kv_entry *lookup_read(struct ctx *x, int i)
{
    struct kv_entry *e = lookup(x, i);
    if (e)
        x->s->store.stats.hits++;
    else
        x->s->store.stats.misses++;
    return e;
}

/* Stores a copy of [p, p + n) at key i. false (and an OOM reply) when out
 * of memory. */
static bool store_copy(struct ctx *x, int key, const uint8_t *p, size_t n, int64_t expire, bool keep_ttl)
{
    struct kv_val *v = kv_val_new(p, n, n);
    /* Short of memory: another client's buffers go first (kv.c). */
    while (!v && x->s->reclaim && x->s->reclaim())
        v = kv_val_new(p, n, n);
    if (!v) {
        err_oom(x);
        return false;
    }
    if (!kv_set(&x->s->store, A(x, key), L(x, key), v, expire, keep_ttl)) {
        kv_val_unref(v);
        err_oom(x);
        return false;
    }
    x->s->dirty++;
    return true;
}

/* Looks key i up (lazy expiry included) and gives its hash for put(). */
static struct kv_entry *lookup_h(struct ctx *x, int i, uint64_t *h)
{
    *h = kv_hash(&x->s->store, A(x, i), L(x, i));
    return kv_find(&x->s->store, A(x, i), L(x, i), *h, x->now);
}

/* Stores @v at key i, found as @e by lookup_h (NULL: absent, hash @h),
 * taking over the reference. With keep_ttl an existing key keeps its time
 * to live, else it gets @expire (-1: none). false, after an OOM reply,
 * when out of memory. */
static bool put(struct ctx *x, int i, struct kv_entry *e, uint64_t h, struct kv_val *v, int64_t expire, bool keep_ttl)
{
    if (e) {
        if (keep_ttl || kv_set_expire(&x->s->store, e, expire) == 0) {
            kv_replace(&x->s->store, e, v);
            x->s->dirty++;
            return true;
        }
    } else if (kv_insert(&x->s->store, A(x, i), L(x, i), h, v, expire)) {
        x->s->dirty++;
        return true;
    }
    kv_val_unref(v);
    err_oom(x);
    return false;
}

/* A copy of [p, p + n) as a value; NULL after an OOM reply. */
static struct kv_val *new_value(struct ctx *x, const void *p, size_t n)
{
    struct kv_val *v = kv_val_new(p, n, n);
    if (!v)
        err_oom(x);
    return v;
}

/* Reads a stored value as Redis's strict integer. */
static bool val_ll(const struct kv_val *v, long long *out)
{
    uint8_t buf[21];
    if (v->len > 20)
        return false;
    size_t n = kv_val_read(v, buf, sizeof(buf));
    return resp_str2ll(buf, n, out);
}

/* ---- connection ---- */

static void cmd_ping(struct ctx *x)
{
    if (x->argc > 2)
        err_arity(x);
    else if (x->argc == 2)
        reply_bulk(x->r, A(x, 1), L(x, 1));
    else
        reply_status(x->r, "PONG");
}

static void cmd_echo(struct ctx *x)
{
    reply_bulk(x->r, A(x, 1), L(x, 1));
}

static void cmd_select(struct ctx *x)
{
    long long id;
    if (!arg_ll(x, 1, &id))
        return;
    if (id < INT_MIN || id > INT_MAX)
        errorf(x, "ERR value is out of range, value must between %d and %d", INT_MIN, INT_MAX);
    else if (id != 0)
        reply_error(x->r, "ERR DB index is out of range"); /* one database, as Redis with "databases 1" */
    else
        reply_status(x->r, "OK");
}

static void cmd_quit(struct ctx *x)
{
    reply_status(x->r, "OK");
    x->c->close_after_reply = true;
}

static void cmd_client_setname(struct ctx *x)
{
    for (size_t i = 0; i < L(x, 2); i++) {
        if (A(x, 2)[i] < '!' || A(x, 2)[i] > '~') {
            reply_error(x->r, "ERR Client names cannot contain spaces, newlines or special characters.");
            return;
        }
    }
    free(x->c->name);
    x->c->name = NULL;
    if (L(x, 2) > 0) {
        x->c->name = malloc(L(x, 2) + 1);
        if (!x->c->name) {
            err_oom(x);
            return;
        }
        memcpy(x->c->name, A(x, 2), L(x, 2));
        x->c->name[L(x, 2)] = '\0';
    }
    reply_status(x->r, "OK");
}

static void cmd_client_getname(struct ctx *x)
{
    if (x->c->name)
        reply_cstr(x->r, x->c->name);
    else
        reply_null(x->r);
}

static void cmd_client_id(struct ctx *x)
{
    reply_int(x->r, (long long)x->c->id);
}

static void help(struct ctx *x, const char *const *lines)
{
    int n = 0;
    while (lines[n])
        n++;
    reply_array(x->r, n);
    for (int i = 0; i < n; i++)
        reply_status(x->r, lines[i]);
}

static void cmd_client_help(struct ctx *x)
{
    static const char *const lines[] = {
        "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GETNAME",
        "    Return the name of the current connection.",
        "ID",
        "    Return the ID of the current connection.",
        "SETNAME <name>",
        "    Assign the name <name> to the current connection.",
        "HELP",
        "    Print this help.",
        NULL,
    };
    help(x, lines);
}

/* ---- strings ---- */

static void cmd_get(struct ctx *x)
{
    struct kv_entry *e = lookup_read(x, 1);
    if (e)
        reply_value(x->r, e->val);
    else
        reply_null(x->r);
}

enum {
    SET_NX = 1 << 0,
    SET_XX = 1 << 1,
    SET_GET = 1 << 2,
    SET_KEEPTTL = 1 << 3,
    SET_EX = 1 << 4,
    SET_PX = 1 << 5,
    SET_EXAT = 1 << 6,
    SET_PXAT = 1 << 7,
};

/* Turns a SET expiry argument into unix ms, as Redis's
 * getExpireMillisecondsOrReply: positive, no overflow. */
static bool set_expire_ms(struct ctx *x, int i, int flags, long long *when)
{
    long long v;
    if (!arg_ll(x, i, &v))
        return false;
    bool secs = flags & (SET_EX | SET_EXAT);
    if (v <= 0 || (secs && v > LLONG_MAX / 1000)) {
        err_expire(x);
        return false;
    }
    if (secs)
        v *= 1000;
    if (flags & (SET_EX | SET_PX)) {
        if (v > LLONG_MAX - x->now) {
            err_expire(x);
            return false;
        }
        v += x->now;
    }
    *when = v;
    return true;
}

static void cmd_set(struct ctx *x)
{
    int flags = 0, exp_arg = 0;
    for (int j = 3; j < x->argc; j++) {
        const struct resp_arg *o = &x->argv[j];
        bool has_next = j + 1 < x->argc;
        const int ttl = SET_KEEPTTL | SET_EX | SET_PX | SET_EXAT | SET_PXAT;
        if (arg_is(o, "nx") && !(flags & SET_XX)) {
            flags |= SET_NX;
        } else if (arg_is(o, "xx") && !(flags & SET_NX)) {
            flags |= SET_XX;
        } else if (arg_is(o, "get")) {
            flags |= SET_GET;
        } else if (arg_is(o, "keepttl") && !(flags & (ttl & ~SET_KEEPTTL))) {
            flags |= SET_KEEPTTL;
        } else if (arg_is(o, "ex") && !(flags & (ttl & ~SET_EX)) && has_next) {
            flags |= SET_EX;
            exp_arg = ++j;
        } else if (arg_is(o, "px") && !(flags & (ttl & ~SET_PX)) && has_next) {
            flags |= SET_PX;
            exp_arg = ++j;
        } else if (arg_is(o, "exat") && !(flags & (ttl & ~SET_EXAT)) && has_next) {
            flags |= SET_EXAT;
            exp_arg = ++j;
        } else if (arg_is(o, "pxat") && !(flags & (ttl & ~SET_PXAT)) && has_next) {
            flags |= SET_PXAT;
            exp_arg = ++j;
        } else {
            err_syntax(x);
            return;
        }
    }
    long long when = -1;
    if (exp_arg && !set_expire_ms(x, exp_arg, flags, &when))
        return;
    uint64_t h;
    struct kv_entry *e = lookup_h(x, 1, &h);
    if (flags & SET_GET) {
        /* The reply holds its own reference: the old value may be
         * replaced below and must outlive that. */
        if (e)
            reply_value(x->r, e->val);
        else
            reply_null(x->r);
    }
    if (((flags & SET_NX) && e) || ((flags & SET_XX) && !e)) {
        if (!(flags & SET_GET))
            reply_null(x->r);
        return;
    }
    struct kv_val *v = new_value(x, A(x, 2), L(x, 2));
    if (!v || !put(x, 1, e, h, v, when, flags & SET_KEEPTTL))
        return;
    if (!(flags & SET_GET))
        reply_status(x->r, "OK");
}

static void cmd_getset(struct ctx *x)
{
    uint64_t h;
    struct kv_entry *e = lookup_h(x, 1, &h);
    if (e)
        reply_value(x->r, e->val);
    else
        reply_null(x->r);
    struct kv_val *v = new_value(x, A(x, 2), L(x, 2));
    if (v)
        put(x, 1, e, h, v, -1, false);
}

static void cmd_mget(struct ctx *x)
{
    reply_array(x->r, x->argc - 1);
    for (int i = 1; i < x->argc; i++) {
        struct kv_entry *e = lookup_read(x, i);
        if (e)
            reply_value(x->r, e->val);
        else
            reply_null(x->r);
    }
}

static void cmd_mset(struct ctx *x)
{
    if (x->argc % 2 == 0) {
        err_arity(x);
        return;
    }
    for (int i = 1; i < x->argc; i += 2)
        if (!store_copy(x, i, A(x, i + 1), L(x, i + 1), -1, false))
            return;
    reply_status(x->r, "OK");
}

static void incr_by(struct ctx *x, long long incr)
{
    uint64_t h;
    struct kv_entry *e = lookup_h(x, 1, &h);
    long long v = 0;
    if (e && !val_ll(e->val, &v)) {
        err_int(x);
        return;
    }
    if ((incr < 0 && v < 0 && incr < LLONG_MIN - v) || (incr > 0 && v > 0 && incr > LLONG_MAX - v)) {
        reply_error(x->r, "ERR increment or decrement would overflow");
        return;
    }
    v += incr;
    char buf[24];
    size_t n = reply_fmt_ll(buf, v);
    struct kv_val *nv = new_value(x, buf, n);
    /* An existing key keeps its time to live, as in Redis. */
    if (nv && put(x, 1, e, h, nv, -1, true))
        reply_int(x->r, v);
}

static void cmd_incr(struct ctx *x)
{
    incr_by(x, 1);
}

static void cmd_decr(struct ctx *x)
{
    incr_by(x, -1);
}

static void cmd_incrby(struct ctx *x)
{
    long long by;
    if (arg_ll(x, 2, &by))
        incr_by(x, by);
}

static void cmd_decrby(struct ctx *x)
{
    long long by;
    if (!arg_ll(x, 2, &by))
        return;
    if (by == LLONG_MIN) {
        reply_error(x->r, "ERR decrement would overflow");
        return;
    }
    incr_by(x, -by);
}

static void cmd_append(struct ctx *x)
{
    uint64_t h;
    struct kv_entry *e = lookup_h(x, 1, &h);
    if (!e) {
        struct kv_val *v = new_value(x, A(x, 2), L(x, 2));
        if (v && put(x, 1, NULL, h, v, -1, false))
            reply_int(x->r, (long long)L(x, 2));
        return;
    }
    if (e->val->len + L(x, 2) > KV_MAX_VALUE) {
        reply_error(x->r, "ERR string exceeds maximum allowed size (proto-max-bulk-len)");
        return;
    }
    if (kv_val_append(&e->val, A(x, 2), L(x, 2))) {
        err_oom(x);
        return;
    }
    x->s->dirty++;
    reply_int(x->r, (long long)e->val->len);
}

static void cmd_strlen(struct ctx *x)
{
    struct kv_entry *e = lookup(x, 1);
    reply_int(x->r, e ? (long long)e->val->len : 0);
}

/* ---- keys ---- */

static void cmd_del(struct ctx *x)
{
    long long n = 0;
    for (int i = 1; i < x->argc; i++) {
        struct kv_entry *e = lookup(x, i);
        if (e) {
            kv_delete(&x->s->store, e);
            n++;
        }
    }
    x->s->dirty += (uint64_t)n;
    reply_int(x->r, n);
}

static void cmd_exists(struct ctx *x)
{
    long long n = 0;
    for (int i = 1; i < x->argc; i++)
        n += lookup(x, i) != NULL;
    reply_int(x->r, n);
}

enum { EXP_NX = 1, EXP_XX = 2, EXP_GT = 4, EXP_LT = 8 };

static void expire_generic(struct ctx *x, bool secs)
{
    int flags = 0;
    for (int j = 3; j < x->argc; j++) {
        const struct resp_arg *o = &x->argv[j];
        if (arg_is(o, "nx")) {
            flags |= EXP_NX;
        } else if (arg_is(o, "xx")) {
            flags |= EXP_XX;
        } else if (arg_is(o, "gt")) {
            flags |= EXP_GT;
        } else if (arg_is(o, "lt")) {
            flags |= EXP_LT;
        } else {
            char msg[256];
            size_t n = 0;
            cat_str(msg, sizeof(msg), &n, "ERR Unsupported option ");
            cat_upto(msg, sizeof(msg), &n, o->ptr, o->len, SIZE_MAX);
            reply_error(x->r, msg);
            return;
        }
    }
    if ((flags & EXP_NX) && (flags & (EXP_XX | EXP_GT | EXP_LT))) {
        reply_error(x->r, "ERR NX and XX, GT or LT options at the same time are not compatible");
        return;
    }
    if ((flags & EXP_GT) && (flags & EXP_LT)) {
        reply_error(x->r, "ERR GT and LT options at the same time are not compatible");
        return;
    }
    long long when;
    if (!arg_ll(x, 2, &when))
        return;
    if (secs) {
        if (when > LLONG_MAX / 1000 || when < LLONG_MIN / 1000) {
            err_expire(x);
            return;
        }
        when *= 1000;
    }
    if (when > LLONG_MAX - x->now) {
        err_expire(x);
        return;
    }
    when += x->now;
    struct kv_entry *e = lookup(x, 1);
    if (!e) {
        reply_int(x->r, 0);
        return;
    }
    int64_t cur = e->expire;
    if (((flags & EXP_NX) && cur != -1) || ((flags & EXP_XX) && cur == -1) ||
        ((flags & EXP_GT) && (cur == -1 || when <= cur)) || ((flags & EXP_LT) && cur != -1 && when >= cur)) {
        reply_int(x->r, 0);
        return;
    }
    if (when <= x->now) {
        kv_delete(&x->s->store, e); /* a time already past deletes the key */
    } else if (kv_set_expire(&x->s->store, e, when)) {
        err_oom(x);
        return;
    }
    x->s->dirty++;
    reply_int(x->r, 1);
}

static void cmd_expire(struct ctx *x)
{
    expire_generic(x, true);
}

static void cmd_pexpire(struct ctx *x)
{
    expire_generic(x, false);
}

static void ttl_generic(struct ctx *x, bool ms)
{
    struct kv_entry *e = lookup(x, 1);
    if (!e) {
        reply_int(x->r, -2);
        return;
    }
    if (e->expire < 0) {
        reply_int(x->r, -1);
        return;
    }
    long long ttl = e->expire - x->now;
    if (ttl < 0)
        ttl = 0;
    reply_int(x->r, ms ? ttl : (ttl + 500) / 1000);
}

static void cmd_ttl(struct ctx *x)
{
    ttl_generic(x, false);
}

static void cmd_pttl(struct ctx *x)
{
    ttl_generic(x, true);
}

static void cmd_persist(struct ctx *x)
{
    struct kv_entry *e = lookup(x, 1);
    if (!e || e->expire < 0) {
        reply_int(x->r, 0);
        return;
    }
    kv_set_expire(&x->s->store, e, -1);
    x->s->dirty++;
    reply_int(x->r, 1);
}

static void cmd_dbsize(struct ctx *x)
{
    reply_int(x->r, (long long)kv_size(&x->s->store));
}

static void cmd_flushall(struct ctx *x)
{
    if (x->argc > 2 || (x->argc == 2 && !arg_is(&x->argv[1], "sync") && !arg_is(&x->argv[1], "async"))) {
        err_syntax(x);
        return;
    }
    kv_store_flush(&x->s->store);
    x->s->dirty++; /* even when empty: Redis propagates every FLUSHALL */
    reply_status(x->r, "OK");
}

struct keys_walk {
    const struct ctx *x;
    bool all;
    struct kv_entry **hits;
    size_t n, cap;
    bool nomem;
};

static void keys_one(void *arg, struct kv_entry *e)
{
    struct keys_walk *w = arg;
    if (w->nomem)
        return;
    if (!w->all && !glob_match(A(w->x, 1), L(w->x, 1), e->key, e->klen, false))
        return;
    if (e->expire >= 0 && w->x->now > e->expire)
        return; /* expired but not yet removed: not listed, as in Redis */
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
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

static void cmd_keys(struct ctx *x)
{
    struct keys_walk w = {.x = x, .all = L(x, 1) == 1 && A(x, 1)[0] == '*'};
    kv_foreach(&x->s->store, keys_one, &w);
    if (w.nomem) {
        err_oom(x);
    } else {
        reply_array(x->r, (long long)w.n);
        for (size_t i = 0; i < w.n; i++)
            reply_bulk(x->r, w.hits[i]->key, w.hits[i]->klen);
    }
    free(w.hits);
}

/* ---- server ---- */

struct config_param {
    const char *name;
    char value[128]; /* client-output-buffer-limit's three classes fit */
};

static void obuf_format(const struct kv_obuf_limit *l, char *out, size_t cap)
{
    static const char *const names[KV_OBUF_CLASSES] = {"normal", "slave", "pubsub"};
    size_t n = 0;
    out[0] = '\0';
    for (int k = 0; k < KV_OBUF_CLASSES && n < cap; k++)
        n += (size_t)snprintf(out + n, cap - n, "%s%s %llu %llu %llu", k ? " " : "", names[k],
                              (unsigned long long)l[k].hard, (unsigned long long)l[k].soft,
                              (unsigned long long)l[k].soft_secs);
}

static void cmd_config_get(struct ctx *x)
{
    struct config_param p[] = {
        {"save", ""},
        {"appendonly", ""},
        {"databases", "1"},
        {"port", ""},
        {"bind", ""},
        {"maxmemory", ""},
        {"maxclients", ""},
        {"timeout", "0"},
        {"hz", "10"},
        {"proto-max-bulk-len", "536870912"},
        {"client-query-buffer-limit", "1073741824"},
        {"client-output-buffer-limit", ""},
    };
    const size_t np = sizeof(p) / sizeof(p[0]);
    snprintf(p[1].value, sizeof(p[1].value), "%s", x->s->aof.enabled ? "yes" : "no");
    snprintf(p[3].value, sizeof(p[3].value), "%u", x->s->port);
    snprintf(p[4].value, sizeof(p[4].value), "%s", x->s->bind);
    snprintf(p[5].value, sizeof(p[5].value), "%llu", (unsigned long long)x->s->maxmemory);
    snprintf(p[6].value, sizeof(p[6].value), "%llu", (unsigned long long)x->s->maxclients);
    obuf_format(x->s->obuf_limit, p[11].value, sizeof(p[11].value));
    bool match[sizeof(p) / sizeof(p[0])] = {false};
    long long n = 0;
    for (size_t k = 0; k < np; k++) {
        for (int i = 2; i < x->argc && !match[k]; i++)
            match[k] = glob_match(A(x, i), L(x, i), (const uint8_t *)p[k].name, strlen(p[k].name), true);
        n += match[k];
    }
    reply_array(x->r, 2 * n);
    for (size_t k = 0; k < np; k++) {
        if (match[k]) {
            reply_cstr(x->r, p[k].name);
            reply_cstr(x->r, p[k].value);
        }
    }
}

int kv_mem_parse(const char *v, uint64_t *out)
{
    /* Redis's memtoull(): k = 1000, kb = 1024, and so on, any case. */
    static const struct {
        const char *unit;
        uint64_t mul;
    } units[] = {{"", 1},           {"b", 1},
                 {"k", 1000},       {"kb", 1024},
                 {"m", 1000000},    {"mb", 1024 * 1024},
                 {"g", 1000000000}, {"gb", 1024ull * 1024 * 1024}};
    const char *p = v;
    while (*p >= '0' && *p <= '9')
        p++;
    if (p == v || p - v > 19)
        return EINVAL;
    for (size_t k = 0; k < sizeof(units) / sizeof(units[0]); k++) {
        if (strcasecmp(p, units[k].unit) == 0) {
            uint64_t n = strtoull(v, NULL, 10);
            if (n > UINT64_MAX / units[k].mul)
                return EINVAL;
            *out = n * units[k].mul;
            return 0;
        }
    }
    return EINVAL;
}

int kv_obuf_parse(const char *v, struct kv_obuf_limit l[KV_OBUF_CLASSES], const char **why)
{
    char buf[256];
    char *w[64];
    int n = 0;
    if (strlen(v) >= sizeof(buf)) {
        *why = "Wrong number of arguments in buffer limit configuration.";
        return EINVAL;
    }
    snprintf(buf, sizeof(buf), "%s", v);
    for (char *save = NULL, *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        if (n == 64) {
            *why = "Wrong number of arguments in buffer limit configuration.";
            return EINVAL;
        }
        w[n++] = t;
    }
    if (n == 0 || n % 4) {
        *why = "Wrong number of arguments in buffer limit configuration.";
        return EINVAL;
    }
    struct kv_obuf_limit tmp[KV_OBUF_CLASSES];
    memcpy(tmp, l, sizeof(tmp));
    for (int i = 0; i < n; i += 4) {
        int k;
        if (strcasecmp(w[i], "normal") == 0)
            k = KV_OBUF_NORMAL;
        else if (strcasecmp(w[i], "slave") == 0 || strcasecmp(w[i], "replica") == 0)
            k = KV_OBUF_REPLICA;
        else if (strcasecmp(w[i], "pubsub") == 0)
            k = KV_OBUF_PUBSUB;
        else {
            *why = "Invalid client class specified in buffer limit configuration.";
            return EINVAL;
        }
        char *end;
        errno = 0;
        unsigned long long secs = strtoull(w[i + 3], &end, 10);
        if (kv_mem_parse(w[i + 1], &tmp[k].hard) || kv_mem_parse(w[i + 2], &tmp[k].soft) || errno || *end ||
            w[i + 3][0] == '-' || w[i + 3][0] == '\0') {
            *why = "Error in hard, soft or soft_seconds setting in buffer limit configuration.";
            return EINVAL;
        }
        tmp[k].soft_secs = secs;
    }
    memcpy(l, tmp, sizeof(tmp));
    return 0;
}

/* CONFIG SET parameter value [parameter value ...]: the limits demi-kv
 * enforces (see cmd.h). As in Redis 7.0, all or none of the pairs apply. */
static void cmd_config_set(struct ctx *x)
{
    if (x->argc % 2) {
        err_arity(x);
        return;
    }
    struct kv_obuf_limit obuf[KV_OBUF_CLASSES];
    memcpy(obuf, x->s->obuf_limit, sizeof(obuf));
    uint64_t maxclients = x->s->maxclients, maxmemory = x->s->maxmemory;
    for (int i = 2; i < x->argc; i += 2) {
        char name[64], val[256];
        size_t nl = 0, vl = 0;
        cat_upto(name, sizeof(name), &nl, A(x, i), L(x, i), sizeof(name) - 1);
        cat_upto(val, sizeof(val), &vl, A(x, i + 1), L(x, i + 1), sizeof(val) - 1);
        const char *why = NULL;
        if (arg_is(&x->argv[i], "client-output-buffer-limit")) {
            if (L(x, i + 1) >= sizeof(val) || kv_obuf_parse(val, obuf, &why))
                why = why ? why : "Wrong number of arguments in buffer limit configuration.";
        } else if (arg_is(&x->argv[i], "maxmemory")) {
            if (L(x, i + 1) >= sizeof(val) || kv_mem_parse(val, &maxmemory))
                why = "argument must be a memory value";
        } else if (arg_is(&x->argv[i], "maxclients")) {
            long long v;
            if (!resp_str2ll(A(x, i + 1), L(x, i + 1), &v))
                why = "argument couldn't be parsed into an integer";
            else if (v < 1 || v > 1000000)
                why = "argument must be between 1 and 1000000 inclusive";
            else
                maxclients = (uint64_t)v;
        } else {
            errorf(x, "ERR Unknown option or number of arguments for CONFIG SET - '%s'", name);
            return;
        }
        if (why) {
            errorf(x, "ERR CONFIG SET failed (possibly related to argument '%s') - %s", name, why);
            return;
        }
    }
    memcpy(x->s->obuf_limit, obuf, sizeof(obuf));
    x->s->maxclients = maxclients;
    x->s->maxmemory = maxmemory;
    reply_status(x->r, "OK");
}

static void cmd_config_resetstat(struct ctx *x)
{
    x->s->store.stats.hits = x->s->store.stats.misses = x->s->store.stats.expired = 0;
    x->s->connections_received = 0;
    x->s->commands = 0;
    x->s->pushes = 0;
    reply_status(x->r, "OK");
}

static void cmd_config_help(struct ctx *x)
{
    static const char *const lines[] = {
        "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET <pattern>",
        "    Return parameters matching the glob-like <pattern> and their values.",
        "SET <directive> <value>",
        "    Set the configuration <directive> to <value>.",
        "RESETSTAT",
        "    Reset statistics reported by the INFO command.",
        "HELP",
        "    Print this help.",
        NULL,
    };
    help(x, lines);
}

struct info_buf {
    char *p;
    size_t len, cap;
    bool nomem;
};

static void info_add(struct info_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void info_add(struct info_buf *b, const char *fmt, ...)
{
    for (;;) {
        if (b->nomem)
            return;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->nomem = true;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap + (size_t)n) * 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->nomem = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
}

static bool info_wants(struct ctx *x, const char *section)
{
    if (x->argc == 1)
        return true;
    for (int i = 1; i < x->argc; i++)
        if (arg_is(&x->argv[i], section) || arg_is(&x->argv[i], "all") || arg_is(&x->argv[i], "default") ||
            arg_is(&x->argv[i], "everything"))
            return true;
    return false;
}

static void info_section(struct info_buf *b, int *n, const char *title)
{
    if ((*n)++)
        info_add(b, "\r\n");
    info_add(b, "# %s\r\n", title);
}

static void cmd_info(struct ctx *x)
{
    struct kv_server *s = x->s;
    struct info_buf b = {.p = malloc(1024), .cap = 1024};
    if (!b.p) {
        err_oom(x);
        return;
    }
    b.p[0] = '\0';
    int n = 0;
    int64_t up = (x->now - s->start_ms) / 1000;
    if (info_wants(x, "server")) {
        info_section(&b, &n, "Server");
        info_add(&b,
                 "redis_version:%s\r\ndemi_kv_version:%s\r\nredis_mode:standalone\r\nos:Linux\r\n"
                 "arch_bits:%d\r\nmultiplexing_api:libdemi\r\nlibdemi_libos:%s\r\nprocess_id:%ld\r\n"
                 "tcp_port:%u\r\nuptime_in_seconds:%lld\r\nuptime_in_days:%lld\r\nhz:10\r\n",
                 KV_REDIS_VERSION, KV_VERSION, (int)(sizeof(void *) * 8), s->libos ? s->libos : "catnap",
                 (long)getpid(), s->port, (long long)up, (long long)(up / 86400));
    }
    if (info_wants(x, "clients")) {
        info_section(&b, &n, "Clients");
        info_add(&b, "connected_clients:%llu\r\nmaxclients:%llu\r\n", (unsigned long long)s->connected_clients,
                 (unsigned long long)s->maxclients);
    }
    if (info_wants(x, "memory")) {
        uint64_t used = kv_val_bytes() + s->store.stats.key_bytes + (s->store.mask + 1) * sizeof(void *);
        info_section(&b, &n, "Memory");
        demi_stats_t st;
        uint64_t heap = demi_get_stats(&st) == 0 ? st.heap_bytes_in_use : 0;
        info_add(&b,
                 "used_memory:%llu\r\nused_memory_values_heap:%llu\r\nused_memory_heap:%llu\r\n"
                 "mem_clients_normal:%llu\r\nmaxmemory:%llu\r\n",
                 (unsigned long long)used, (unsigned long long)kv_val_bytes(), (unsigned long long)heap,
                 (unsigned long long)(s->clients_mem ? s->clients_mem() : 0), (unsigned long long)s->maxmemory);
    }
    if (info_wants(x, "persistence")) {
        info_section(&b, &n, "Persistence");
        const struct kv_aof_info *a = &s->aof;
        info_add(&b, "loading:0\r\naof_enabled:%d\r\nrdb_changes_since_last_save:0\r\n", a->enabled ? 1 : 0);
        if (a->enabled)
            info_add(&b,
                     "aof_last_write_status:%s\r\naof_last_write_error:%s\r\naof_current_size:%llu\r\n"
                     "aof_records_written:%llu\r\naof_commands_logged:%llu\r\naof_write_failures:%llu\r\n"
                     "aof_commands_replayed:%llu\r\n",
                     a->last_err ? "err" : "ok", a->last_err ? strerror(a->last_err) : "none",
                     (unsigned long long)a->bytes, (unsigned long long)a->records, (unsigned long long)a->commands,
                     (unsigned long long)a->failures, (unsigned long long)a->replayed);
    }
    if (info_wants(x, "stats")) {
        const struct kv_stats *st = &s->store.stats;
        info_section(&b, &n, "Stats");
        info_add(&b,
                 "total_connections_received:%llu\r\ntotal_commands_processed:%llu\r\nexpired_keys:%llu\r\n"
                 "keyspace_hits:%llu\r\nkeyspace_misses:%llu\r\nrejected_connections:%llu\r\n"
                 "client_output_buffer_limit_disconnections:%llu\r\ndemi_memory_disconnections:%llu\r\n"
                 "demi_pushes:%llu\r\n",
                 (unsigned long long)s->connections_received, (unsigned long long)s->commands,
                 (unsigned long long)st->expired, (unsigned long long)st->hits, (unsigned long long)st->misses,
                 (unsigned long long)s->rejected_connections, (unsigned long long)s->obuf_disconnections,
                 (unsigned long long)s->mem_disconnections, (unsigned long long)s->pushes);
    }
    if (info_wants(x, "replication")) {
        info_section(&b, &n, "Replication");
        info_add(&b, "role:master\r\nconnected_slaves:0\r\n");
    }
    if (info_wants(x, "keyspace")) {
        info_section(&b, &n, "Keyspace");
        if (kv_size(&s->store))
            info_add(&b, "db0:keys=%zu,expires=%zu,avg_ttl=0\r\n", kv_size(&s->store), kv_expiring(&s->store));
    }
    if (b.nomem)
        err_oom(x);
    else
        reply_bulk(x->r, b.p, b.len);
    free(b.p);
}

/* ---- the table ---- */

/* COMMAND's handlers read the table, so they come after it. */
static void cmd_command(struct ctx *x);
static void cmd_command_count(struct ctx *x);
static void cmd_command_list(struct ctx *x);
static void cmd_command_info(struct ctx *x);
static void cmd_command_docs(struct ctx *x);
static void cmd_command_help(struct ctx *x);

#define SUB(parent, n, a, f, fl, acl, summ)                                                                            \
    {                                                                                                                  \
        n, parent "|" n, a, f, fl, acl, 0, 0, 0, parent[1] == 'l' ? "connection" : "server", "2.0.0", "O(1)", summ,    \
            NULL, 0                                                                                                    \
    }

static const struct kv_cmd config_subs[] = {
    SUB("config", "get", -3, cmd_config_get, "admin noscript loading stale", "admin slow dangerous",
        "Get the values of configuration parameters"),
    SUB("config", "set", -4, cmd_config_set, "admin noscript loading stale", "admin slow dangerous",
        "Set configuration parameters to the given values"),
    SUB("config", "resetstat", 2, cmd_config_resetstat, "admin noscript loading stale", "admin slow dangerous",
        "Reset the stats returned by INFO"),
    SUB("config", "help", 2, cmd_config_help, "loading stale", "slow",
        "Show helpful text about the different subcommands"),
};

static const struct kv_cmd client_subs[] = {
    SUB("client", "setname", 3, cmd_client_setname, "noscript loading stale", "slow connection",
        "Set the current connection name"),
    SUB("client", "getname", 2, cmd_client_getname, "noscript loading stale", "slow connection",
        "Get the current connection name"),
    SUB("client", "id", 2, cmd_client_id, "noscript loading stale", "slow connection",
        "Returns the client ID for the current connection"),
    SUB("client", "help", 2, cmd_client_help, "loading stale", "slow connection",
        "Show helpful text about the different subcommands"),
};

static const struct kv_cmd command_subs[] = {
    SUB("command", "count", -2, cmd_command_count, "loading stale", "slow connection",
        "Get total number of Redis commands"),
    SUB("command", "list", -2, cmd_command_list, "loading stale", "slow connection", "Get an array of command names"),
    SUB("command", "info", -2, cmd_command_info, "loading stale", "slow connection",
        "Get array of specific Redis command details, or all when no argument is given."),
    SUB("command", "docs", -2, cmd_command_docs, "loading stale", "slow connection",
        "Get array of specific Redis command documentation"),
    SUB("command", "help", 2, cmd_command_help, "loading stale", "slow connection",
        "Show helpful text about the different subcommands"),
};

#define CMD(n, a, f, fl, acl, fk, lk, st, grp, since, cx, summ)                                                        \
    {                                                                                                                  \
        n, n, a, f, fl, acl, fk, lk, st, grp, since, cx, summ, NULL, 0                                                 \
    }
#define CONTAINER(n, a, subs, fl, acl, summ)                                                                           \
    {                                                                                                                  \
        n, n, a, NULL, fl, acl, 0, 0, 0, "server", "2.0.0", "Depends on subcommand.", summ, subs,                      \
            (int)(sizeof(subs) / sizeof(subs[0]))                                                                      \
    }

static const struct kv_cmd commands[] = {
    CMD("ping", -1, cmd_ping, "fast", "fast connection", 0, 0, 0, "connection", "1.0.0", "O(1)", "Ping the server"),
    CMD("echo", 2, cmd_echo, "fast", "fast connection", 0, 0, 0, "connection", "1.0.0", "O(1)",
        "Echo the given string"),
    CMD("select", 2, cmd_select, "loading stale fast", "fast connection", 0, 0, 0, "connection", "1.0.0", "O(1)",
        "Change the selected database for the current connection"),
    CMD("quit", -1, cmd_quit, "allow_busy noscript loading stale fast no_auth", "fast connection", 0, 0, 0,
        "connection", "1.0.0", "O(1)", "Close the connection"),
    CONTAINER("client", -2, client_subs, "", "slow", "A container for client connection commands"),
    CMD("get", 2, cmd_get, "readonly fast", "read string fast", 1, 1, 1, "string", "1.0.0", "O(1)",
        "Get the value of a key"),
    CMD("set", -3, cmd_set, "write denyoom", "write string slow", 1, 1, 1, "string", "1.0.0", "O(1)",
        "Set the string value of a key"),
    CMD("getset", 3, cmd_getset, "write denyoom fast", "write string fast", 1, 1, 1, "string", "1.0.0", "O(1)",
        "Set the string value of a key and return its old value"),
    CMD("mget", -2, cmd_mget, "readonly fast", "read string fast", 1, -1, 1, "string", "1.0.0",
        "O(N) where N is the number of keys to retrieve.", "Get the values of all the given keys"),
    CMD("mset", -3, cmd_mset, "write denyoom", "write string slow", 1, -1, 2, "string", "1.0.1",
        "O(N) where N is the number of keys to set.", "Set multiple keys to multiple values"),
    CMD("incr", 2, cmd_incr, "write denyoom fast", "write string fast", 1, 1, 1, "string", "1.0.0", "O(1)",
        "Increment the integer value of a key by one"),
    CMD("decr", 2, cmd_decr, "write denyoom fast", "write string fast", 1, 1, 1, "string", "1.0.0", "O(1)",
        "Decrement the integer value of a key by one"),
    CMD("incrby", 3, cmd_incrby, "write denyoom fast", "write string fast", 1, 1, 1, "string", "1.0.0", "O(1)",
        "Increment the integer value of a key by the given amount"),
    CMD("decrby", 3, cmd_decrby, "write denyoom fast", "write string fast", 1, 1, 1, "string", "1.0.0", "O(1)",
        "Decrement the integer value of a key by the given number"),
    CMD("append", 3, cmd_append, "write denyoom fast", "write string fast", 1, 1, 1, "string", "2.0.0", "O(1)",
        "Append a value to a key"),
    CMD("strlen", 2, cmd_strlen, "readonly fast", "read string fast", 1, 1, 1, "string", "2.2.0", "O(1)",
        "Get the length of the value stored in a key"),
    CMD("del", -2, cmd_del, "write", "keyspace write slow", 1, -1, 1, "generic", "1.0.0",
        "O(N) where N is the number of keys that will be removed.", "Delete a key"),
    CMD("exists", -2, cmd_exists, "readonly fast", "keyspace read fast", 1, -1, 1, "generic", "1.0.0",
        "O(N) where N is the number of keys to check.", "Determine if a key exists"),
    CMD("expire", -3, cmd_expire, "write fast", "keyspace write fast", 1, 1, 1, "generic", "1.0.0", "O(1)",
        "Set a key's time to live in seconds"),
    CMD("pexpire", -3, cmd_pexpire, "write fast", "keyspace write fast", 1, 1, 1, "generic", "2.6.0", "O(1)",
        "Set a key's time to live in milliseconds"),
    CMD("ttl", 2, cmd_ttl, "readonly fast", "keyspace read fast", 1, 1, 1, "generic", "1.0.0", "O(1)",
        "Get the time to live for a key in seconds"),
    CMD("pttl", 2, cmd_pttl, "readonly fast", "keyspace read fast", 1, 1, 1, "generic", "2.6.0", "O(1)",
        "Get the time to live for a key in milliseconds"),
    CMD("persist", 2, cmd_persist, "write fast", "keyspace write fast", 1, 1, 1, "generic", "2.2.0", "O(1)",
        "Remove the expiration from a key"),
    CMD("keys", 2, cmd_keys, "readonly", "keyspace read slow dangerous", 0, 0, 0, "generic", "1.0.0",
        "O(N) with N being the number of keys in the database", "Find all keys matching the given pattern"),
    CMD("dbsize", 1, cmd_dbsize, "readonly fast", "keyspace read fast", 0, 0, 0, "server", "1.0.0", "O(1)",
        "Return the number of keys in the selected database"),
    CMD("flushall", -1, cmd_flushall, "write", "keyspace write slow dangerous", 0, 0, 0, "server", "1.0.0",
        "O(N) where N is the total number of keys in all databases", "Remove all keys from all databases"),
    CMD("flushdb", -1, cmd_flushall, "write", "keyspace write slow dangerous", 0, 0, 0, "server", "1.0.0",
        "O(N) where N is the number of keys in the selected database", "Remove all keys from the current database"),
    CMD("info", -1, cmd_info, "loading stale", "slow dangerous", 0, 0, 0, "server", "1.0.0", "O(1)",
        "Get information and statistics about the server"),
    CONTAINER("config", -2, config_subs, "", "slow", "A container for server configuration commands"),
    {"command", "command", -1, cmd_command, "loading stale", "slow connection", 0, 0, 0, "server", "2.8.13",
     "O(N) where N is the total number of Redis commands", "Get array of Redis command details", command_subs,
     (int)(sizeof(command_subs) / sizeof(command_subs[0]))},
};

static const size_t ncommands = sizeof(commands) / sizeof(commands[0]);

/* ---- dispatch ---- */

#define NAME_MAX_LEN 16

static uint32_t name_hash(const uint8_t *lower, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ lower[i]) * 16777619u;
    return h;
}

static const struct kv_cmd *find_cmd(const struct kv_server *s, const uint8_t *name, size_t len)
{
    if (len == 0 || len > NAME_MAX_LEN)
        return NULL;
    uint8_t low[NAME_MAX_LEN];
    for (size_t i = 0; i < len; i++)
        low[i] = (uint8_t)tolower(name[i]);
    for (uint32_t i = name_hash(low, len) & s->table_mask;; i = (i + 1) & s->table_mask) {
        const struct kv_cmd *c = s->table[i].cmd;
        if (!c)
            return NULL;
        if (strlen(c->name) == len && memcmp(c->name, low, len) == 0)
            return c;
    }
}

/* ---- COMMAND ---- */

static int count_words(const char *s)
{
    int n = 0;
    for (const char *p = s; *p;) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        n++;
        while (*p && *p != ' ')
            p++;
    }
    return n;
}

/* Replies an array of status strings, one per word of @s (with @prefix). */
static void word_array(struct reply *r, const char *s, const char *prefix)
{
    reply_array(r, count_words(s));
    for (const char *p = s; *p;) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        const char *w = p;
        while (*p && *p != ' ')
            p++;
        reply_raw(r, "+", 1);
        reply_raw(r, prefix, strlen(prefix));
        reply_raw(r, w, (size_t)(p - w));
        reply_raw(r, "\r\n", 2);
    }
}

static void command_info(struct reply *r, const struct kv_cmd *c)
{
    reply_array(r, 10);
    reply_cstr(r, c->fullname);
    reply_int(r, c->arity);
    word_array(r, c->flags, "");
    reply_int(r, c->first);
    reply_int(r, c->last);
    reply_int(r, c->step);
    word_array(r, c->acl, "@");
    reply_array(r, 0); /* tips */
    reply_array(r, 0); /* key specs: not described */
    reply_array(r, c->nsubs);
    for (int i = 0; i < c->nsubs; i++)
        command_info(r, &c->subs[i]);
}

static void command_docs(struct reply *r, const struct kv_cmd *c)
{
    reply_cstr(r, c->fullname);
    reply_array(r, c->nsubs ? 10 : 8);
    reply_cstr(r, "summary");
    reply_cstr(r, c->summary);
    reply_cstr(r, "since");
    reply_cstr(r, c->since);
    reply_cstr(r, "group");
    reply_cstr(r, c->group);
    reply_cstr(r, "complexity");
    reply_cstr(r, c->complexity);
    if (c->nsubs) {
        reply_cstr(r, "subcommands");
        reply_array(r, 2 * c->nsubs);
        for (int i = 0; i < c->nsubs; i++)
            command_docs(r, &c->subs[i]);
    }
}

static void cmd_command(struct ctx *x)
{
    reply_array(x->r, (long long)ncommands);
    for (size_t i = 0; i < ncommands; i++)
        command_info(x->r, &commands[i]);
}

static void cmd_command_count(struct ctx *x)
{
    reply_int(x->r, (long long)ncommands);
}

static void cmd_command_list(struct ctx *x)
{
    if (x->argc > 2) {
        err_syntax(x);
        return;
    }
    reply_array(x->r, (long long)ncommands);
    for (size_t i = 0; i < ncommands; i++)
        reply_cstr(x->r, commands[i].name);
}

static void cmd_command_info(struct ctx *x)
{
    if (x->argc == 2) {
        cmd_command(x);
        return;
    }
    reply_array(x->r, x->argc - 2);
    for (int i = 2; i < x->argc; i++) {
        const struct kv_cmd *c = find_cmd(x->s, A(x, i), L(x, i));
        if (c)
            command_info(x->r, c);
        else
            reply_null(x->r);
    }
}

static void cmd_command_docs(struct ctx *x)
{
    if (x->argc == 2) {
        reply_array(x->r, 2 * (long long)ncommands);
        for (size_t i = 0; i < ncommands; i++)
            command_docs(x->r, &commands[i]);
        return;
    }
    long long n = 0;
    for (int i = 2; i < x->argc; i++)
        n += find_cmd(x->s, A(x, i), L(x, i)) != NULL;
    reply_array(x->r, 2 * n);
    for (int i = 2; i < x->argc; i++) {
        const struct kv_cmd *c = find_cmd(x->s, A(x, i), L(x, i));
        if (c)
            command_docs(x->r, c);
    }
}

static void cmd_command_help(struct ctx *x)
{
    static const char *const lines[] = {
        "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "(no subcommand)",
        "    Return details about all commands.",
        "COUNT",
        "    Return the total number of commands in this server.",
        "LIST",
        "    Return a list of all commands in this server.",
        "INFO [<command-name> ...]",
        "    Return details about multiple commands.",
        "DOCS [<command-name> ...]",
        "    Return documentation details about multiple commands.",
        "HELP",
        "    Print this help.",
        NULL,
    };
    help(x, lines);
}

int kv_server_init(struct kv_server *s)
{
    memset(s, 0, sizeof(*s));
    if (kv_store_init(&s->store))
        return ENOMEM;
    s->table_mask = 127; /* well over twice the number of commands */
    s->table = calloc(s->table_mask + 1, sizeof(*s->table));
    if (!s->table) {
        kv_store_free(&s->store);
        return ENOMEM;
    }
    for (size_t k = 0; k < ncommands; k++) {
        const struct kv_cmd *c = &commands[k];
        uint32_t i = name_hash((const uint8_t *)c->name, strlen(c->name)) & s->table_mask;
        while (s->table[i].cmd)
            i = (i + 1) & s->table_mask;
        s->table[i].cmd = c;
    }
    s->clock_ms = kv_now_ms;
    s->start_ms = kv_now_ms();
    s->next_client_id = 1;
    s->obuf_limit[KV_OBUF_NORMAL] =
        (struct kv_obuf_limit){KV_OBUF_HARD_DEFAULT, KV_OBUF_SOFT_DEFAULT, KV_OBUF_SOFT_SECS_DEFAULT};
    /* Redis's defaults for the other classes. */
    s->obuf_limit[KV_OBUF_REPLICA] = (struct kv_obuf_limit){256u << 20, 64u << 20, 60};
    s->obuf_limit[KV_OBUF_PUBSUB] = (struct kv_obuf_limit){32u << 20, 8u << 20, 60};
    s->maxclients = KV_MAXCLIENTS_DEFAULT;
    snprintf(s->bind, sizeof(s->bind), "127.0.0.1");
    return 0;
}

void kv_server_free(struct kv_server *s)
{
    kv_store_free(&s->store);
    free(s->table);
    memset(s, 0, sizeof(*s));
}

void kv_client_init(struct kv_server *s, struct kv_client *c)
{
    memset(c, 0, sizeof(*c));
    c->id = s->next_client_id++;
}

void kv_client_free(struct kv_client *c)
{
    free(c->name);
    c->name = NULL;
}

static void unknown_command(struct ctx *x)
{
    /* Redis: "unknown command '%.128s', with args beginning with: " and
     * then "'%.*s' " per argument while the list is under 128 bytes. */
    char msg[512], args[300];
    size_t n = 0, a = 0;
    args[0] = '\0';
    for (int i = 1; i < x->argc && a < 128; i++) {
        cat_str(args, sizeof(args), &a, "'");
        cat_upto(args, sizeof(args), &a, A(x, i), L(x, i), 128 - (a - 1));
        cat_str(args, sizeof(args), &a, "' ");
    }
    cat_str(msg, sizeof(msg), &n, "ERR unknown command '");
    cat_upto(msg, sizeof(msg), &n, A(x, 0), L(x, 0), 128);
    cat_str(msg, sizeof(msg), &n, "', with args beginning with: ");
    cat_str(msg, sizeof(msg), &n, args);
    reply_error(x->r, msg);
}

static void unknown_subcommand(struct ctx *x)
{
    char msg[512];
    size_t n = 0;
    cat_str(msg, sizeof(msg), &n, "ERR unknown subcommand '");
    cat_upto(msg, sizeof(msg), &n, A(x, 1), L(x, 1), 128);
    cat_str(msg, sizeof(msg), &n, "'. Try ");
    for (size_t i = 0; i < L(x, 0) && A(x, 0)[i] && n + 1 < sizeof(msg); i++)
        msg[n++] = (char)toupper(A(x, 0)[i]);
    msg[n] = '\0';
    cat_str(msg, sizeof(msg), &n, " HELP.");
    reply_error(x->r, msg);
}

void kv_exec(struct kv_server *s, struct kv_client *c, int argc, const struct resp_arg *argv, struct reply *r)
{
    struct ctx x = {.s = s, .c = c, .argc = argc, .argv = argv, .r = r};
    s->commands++;
    /* QUIT is answered before the command table is consulted, whatever
     * its arguments, as in Redis 7.0. */
    if (arg_is(&argv[0], "quit")) {
        cmd_quit(&x);
        return;
    }
    const struct kv_cmd *cmd = find_cmd(s, argv[0].ptr, argv[0].len);
    if (!cmd) {
        unknown_command(&x);
        return;
    }
    if (cmd->nsubs && argc >= 2) {
        const struct kv_cmd *sub = NULL;
        for (int i = 0; i < cmd->nsubs && !sub; i++)
            if (arg_is(&argv[1], cmd->subs[i].name))
                sub = &cmd->subs[i];
        if (!sub) {
            unknown_subcommand(&x);
            return;
        }
        cmd = sub;
    }
    x.cmd = cmd;
    if ((cmd->arity > 0 && cmd->arity != argc) || argc < -cmd->arity || !cmd->fn) {
        err_arity(&x);
        return;
    }
    /* Every command that can change the keyspace is flagged "write" first. */
    if (s->write_hook && strncmp(cmd->flags, "write", 5) == 0) {
        const char *err = s->write_hook(s->write_hook_arg, argc, argv);
        if (err) {
            reply_error(r, err);
            return;
        }
    }
    /* Over maxmemory, commands that may grow the keyspace are refused
     * (Redis's noeviction policy). */
    if (s->over_maxmemory && strstr(cmd->flags, "denyoom")) {
        reply_error(r, "OOM command not allowed when used memory > 'maxmemory'.");
        return;
    }
    x.now = s->clock_ms();
    cmd->fn(&x);
}

size_t kv_active_expire(struct kv_server *s, int64_t budget_us)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int64_t now = s->clock_ms();
    size_t total = 0;
    for (;;) {
        size_t seen;
        size_t gone = kv_expire_round(&s->store, now, 20, &seen);
        total += gone;
        /* Go on while a quarter or more of the sample had expired, as
         * Redis does, within the time budget. */
        if (seen == 0 || gone * 4 < seen)
            break;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000000 + (t.tv_nsec - t0.tv_nsec) / 1000 >= budget_us)
            break;
    }
    return total;
}
