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
#include "cmd_int.h"

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
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

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

bool arg_is(const struct resp_arg *a, const char *lit)
{
    size_t n = strlen(lit);
    if (a->len != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (tolower(a->ptr[i]) != tolower((unsigned char)lit[i]))
            return false;
    return true;
}

void cat_upto(char *out, size_t cap, size_t *len, const uint8_t *p, size_t n, size_t max)
{
    for (size_t i = 0; i < n && i < max && p[i] && *len + 1 < cap; i++)
        out[(*len)++] = (char)p[i];
    out[*len] = '\0';
}

void cat_str(char *out, size_t cap, size_t *len, const char *s)
{
    cat_upto(out, cap, len, (const uint8_t *)s, strlen(s), SIZE_MAX);
}

void errorf(struct ctx *x, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    reply_error(x->r, buf);
}

void err_arity(struct ctx *x)
{
    errorf(x, "ERR wrong number of arguments for '%s' command", x->cmd->fullname);
}

void err_syntax(struct ctx *x)
{
    reply_error(x->r, "ERR syntax error");
}

void err_int(struct ctx *x)
{
    reply_error(x->r, "ERR value is not an integer or out of range");
}

void err_expire(struct ctx *x)
{
    errorf(x, "ERR invalid expire time in '%s' command", x->cmd->fullname);
}

void err_oom(struct ctx *x)
{
    reply_error(x->r, "OOM command not allowed: demi-kv is out of memory (libdemi heap full)");
    /* The next command should find memory: the loop disconnects the client
     * holding the most, unless it is this one. */
    if (x->s->reclaim)
        x->s->reclaim();
}

void err_wrongtype(struct ctx *x)
{
    reply_error(x->r, "WRONGTYPE Operation against a key holding the wrong kind of value");
}

bool arg_ll(struct ctx *x, int i, long long *out)
{
    if (resp_str2ll(A(x, i), L(x, i), out))
        return true;
    err_int(x);
    return false;
}

bool arg_double(struct ctx *x, int i, double *out)
{
    /* Redis's string2ld/strtod rules: the whole argument, no spaces
     * around it, no NaN, at most 5k bytes. */
    char buf[5120];
    size_t n = L(x, i);
    if (n > 0 && n < sizeof(buf) && !isspace(A(x, i)[0])) {
        memcpy(buf, A(x, i), n);
        buf[n] = '\0';
        char *end;
        errno = 0;
        double d = strtod(buf, &end);
        if ((size_t)(end - buf) == n && errno != ERANGE && d == d) {
            *out = d;
            return true;
        }
    }
    reply_error(x->r, "ERR value is not a valid float");
    return false;
}

struct kv_entry *lookup(struct ctx *x, int i)
{
    return kv_lookup(&x->s->store, A(x, i), L(x, i), x->now);
}

/* A lookup that counts as a hit or a miss (GET, MGET, ...). */
struct kv_entry *lookup_read(struct ctx *x, int i)
{
    struct kv_entry *e = lookup(x, i);
    if (e)
        x->s->store.stats.hits++;
    else
        x->s->store.stats.misses++;
    return e;
}

struct kv_entry *lookup_type(struct ctx *x, int i, int type, bool *ok)
{
    struct kv_entry *e = lookup(x, i);
    *ok = !e || e->type == type;
    if (!*ok)
        err_wrongtype(x);
    return *ok ? e : NULL;
}

int kv_propagate(struct ctx *x, int argc, const struct resp_arg *argv)
{
    size_t bytes = (size_t)argc * sizeof(struct resp_arg);
    for (int i = 0; i < argc; i++)
        bytes += argv[i].len;
    struct resp_arg *a = malloc(bytes ? bytes : 1);
    if (!a)
        return ENOMEM;
    uint8_t *p = (uint8_t *)(a + argc);
    for (int i = 0; i < argc; i++) {
        memcpy(p, argv[i].ptr, argv[i].len);
        a[i].ptr = p;
        a[i].len = argv[i].len;
        p += argv[i].len;
    }
    free(x->s->prop_argv);
    x->s->prop_argv = a;
    x->s->prop_argc = argc;
    return 0;
}

bool scan_parse(struct ctx *x, int i, bool allow_type, struct scan_args *a)
{
    memset(a, 0, sizeof(*a));
    a->count = 10;
    /* The cursor, as Redis's parseScanCursorOrReply reads it: strtoul
     * up to the first NUL, so "", "+5" and "-1" (ULONG_MAX) pass; only a
     * leading space, trailing bytes or an overflow do not. Longer than
     * any number with leading zeros Redis would take in practice: refused. */
    char buf[4096];
    size_t n = L(x, i);
    bool ok = n < sizeof(buf);
    if (ok) {
        memcpy(buf, A(x, i), n);
        buf[n] = '\0';
        char *end;
        errno = 0;
        unsigned long long c = strtoull(buf, &end, 10);
        ok = !isspace((unsigned char)buf[0]) && *end == '\0' && errno != ERANGE;
        a->cursor = c;
    }
    if (!ok) {
        reply_error(x->r, "ERR invalid cursor");
        return false;
    }
    for (int j = i + 1; j < x->argc; j += 2) {
        bool has_next = j + 1 < x->argc;
        if (arg_is(&x->argv[j], "count") && has_next) {
            if (!arg_ll(x, j + 1, &a->count))
                return false;
            if (a->count < 1) {
                err_syntax(x);
                return false;
            }
        } else if (arg_is(&x->argv[j], "match") && has_next) {
            a->match = &x->argv[j + 1];
        } else if (allow_type && arg_is(&x->argv[j], "type") && has_next) {
            a->type = &x->argv[j + 1];
        } else {
            err_syntax(x);
            return false;
        }
    }
    return true;
}

bool scan_match(const struct scan_args *a, const uint8_t *p, size_t n)
{
    if (!a->match || (a->match->len == 1 && a->match->ptr[0] == '*'))
        return true;
    return glob_match(a->match->ptr, a->match->len, p, n, false);
}

void scan_reply_head(struct ctx *x, uint64_t next, long long n)
{
    char buf[24];
    int len = snprintf(buf, sizeof(buf), "%llu", (unsigned long long)next);
    reply_array(x->r, 2);
    reply_bulk(x->r, buf, (size_t)len);
    reply_array(x->r, n);
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
struct kv_entry *lookup_h(struct ctx *x, int i, uint64_t *h)
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

void help(struct ctx *x, const char *const *lines)
{
    int n = 0;
    while (lines[n])
        n++;
    reply_array(x->r, n);
    for (int i = 0; i < n; i++)
        reply_status(x->r, lines[i]);
}

/* ---- strings ---- */

static void cmd_get(struct ctx *x)
{
    struct kv_entry *e = lookup_read(x, 1);
    if (e && e->type != KV_STRING)
        err_wrongtype(x);
    else if (e)
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
    if ((flags & SET_GET) && e && e->type != KV_STRING) {
        err_wrongtype(x);
        return;
    }
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
    if (e && e->type != KV_STRING) {
        err_wrongtype(x);
        return;
    }
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
        if (e && e->type == KV_STRING)
            reply_value(x->r, e->val);
        else
            reply_null(x->r); /* MGET gives nil for other types */
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
    if (e && e->type != KV_STRING) {
        err_wrongtype(x);
        return;
    }
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
    if (e->type != KV_STRING) {
        err_wrongtype(x);
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
    if (e && e->type != KV_STRING)
        err_wrongtype(x);
    else
        reply_int(x->r, e ? (long long)e->val->len : 0);
}

/* SETEX and PSETEX: SET key value EX/PX, the time checked first. */
static void setex_generic(struct ctx *x, int unit_flag)
{
    long long when;
    if (!set_expire_ms(x, 2, unit_flag, &when))
        return;
    uint64_t h;
    struct kv_entry *e = lookup_h(x, 1, &h);
    struct kv_val *v = new_value(x, A(x, 3), L(x, 3));
    if (v && put(x, 1, e, h, v, when, false))
        reply_status(x->r, "OK");
}

static void cmd_setex(struct ctx *x)
{
    setex_generic(x, SET_EX);
}

static void cmd_psetex(struct ctx *x)
{
    setex_generic(x, SET_PX);
}

static void cmd_setnx(struct ctx *x)
{
    uint64_t h;
    struct kv_entry *e = lookup_h(x, 1, &h);
    if (e) {
        reply_int(x->r, 0);
        return;
    }
    struct kv_val *v = new_value(x, A(x, 2), L(x, 2));
    if (v && put(x, 1, NULL, h, v, -1, false))
        reply_int(x->r, 1);
}

static void cmd_getdel(struct ctx *x)
{
    struct kv_entry *e = lookup_read(x, 1);
    if (!e) {
        reply_null(x->r);
        return;
    }
    if (e->type != KV_STRING) {
        err_wrongtype(x);
        return;
    }
    reply_value(x->r, e->val); /* the reply holds its own reference */
    kv_delete(&x->s->store, e);
    x->s->dirty++;
}

/* GETEX key [EX s | PX ms | EXAT unix-s | PXAT unix-ms | PERSIST]: the
 * options first, then the key, then the time's value, as Redis 7.0. */
static void cmd_getex(struct ctx *x)
{
    const int ttl = SET_EX | SET_PX | SET_EXAT | SET_PXAT;
    bool persist = false;
    int flags = 0, exp_arg = 0;
    for (int j = 2; j < x->argc; j++) {
        const struct resp_arg *o = &x->argv[j];
        bool has_next = j + 1 < x->argc;
        if (arg_is(o, "persist") && !(flags & ttl)) {
            persist = true;
        } else if (arg_is(o, "ex") && !persist && !(flags & (ttl & ~SET_EX)) && has_next) {
            flags |= SET_EX;
            exp_arg = ++j;
        } else if (arg_is(o, "px") && !persist && !(flags & (ttl & ~SET_PX)) && has_next) {
            flags |= SET_PX;
            exp_arg = ++j;
        } else if (arg_is(o, "exat") && !persist && !(flags & (ttl & ~SET_EXAT)) && has_next) {
            flags |= SET_EXAT;
            exp_arg = ++j;
        } else if (arg_is(o, "pxat") && !persist && !(flags & (ttl & ~SET_PXAT)) && has_next) {
            flags |= SET_PXAT;
            exp_arg = ++j;
        } else {
            err_syntax(x);
            return;
        }
    }
    struct kv_entry *e = lookup_read(x, 1);
    if (!e) {
        reply_null(x->r);
        return;
    }
    if (e->type != KV_STRING) {
        err_wrongtype(x);
        return;
    }
    long long when = -1;
    if (exp_arg && !set_expire_ms(x, exp_arg, flags, &when))
        return;
    reply_value(x->r, e->val);
    if (exp_arg && when <= x->now) {
        /* An EXAT/PXAT time already past deletes the key. */
        kv_delete(&x->s->store, e);
        x->s->dirty++;
    } else if (exp_arg) {
        if (kv_set_expire(&x->s->store, e, when) == 0)
            x->s->dirty++;
    } else if (persist && e->expire >= 0) {
        kv_set_expire(&x->s->store, e, -1);
        x->s->dirty++;
    }
}

/* ---- keys ---- */

void kv_cmd_del(struct ctx *x)
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

/* EXPIRE and friends: the time is @secs seconds or else milliseconds,
 * relative to @base (x->now, or 0 for EXPIREAT and PEXPIREAT). */
static void expire_generic(struct ctx *x, bool secs, int64_t base)
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
    if (when > LLONG_MAX - base) {
        err_expire(x);
        return;
    }
    when += base;
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
    expire_generic(x, true, x->now);
}

static void cmd_pexpire(struct ctx *x)
{
    expire_generic(x, false, x->now);
}

static void cmd_expireat(struct ctx *x)
{
    expire_generic(x, true, 0);
}

static void cmd_pexpireat(struct ctx *x)
{
    expire_generic(x, false, 0);
}

/* TTL and friends: the time left, or with @abs the unix time of expiry
 * (EXPIRETIME), in ms or else rounded to seconds as Redis does. */
static void ttl_generic(struct ctx *x, bool ms, bool abs)
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
    long long ttl = abs ? e->expire : e->expire - x->now;
    if (ttl < 0)
        ttl = 0;
    reply_int(x->r, ms ? ttl : (ttl + 500) / 1000);
}

static void cmd_ttl(struct ctx *x)
{
    ttl_generic(x, false, false);
}

static void cmd_pttl(struct ctx *x)
{
    ttl_generic(x, true, false);
}

static void cmd_expiretime(struct ctx *x)
{
    ttl_generic(x, false, true);
}

static void cmd_pexpiretime(struct ctx *x)
{
    ttl_generic(x, true, true);
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

/* BGREWRITEAOF: the loop rewrites the log in the background (aof.h). */
static void cmd_bgrewriteaof(struct ctx *x)
{
    const char *err = x->s->bgrewriteaof ? x->s->bgrewriteaof() : "ERR demi-kv has no append-only file";
    if (err)
        reply_error(x->r, err);
    else
        reply_status(x->r, "Background append only file rewriting started");
}

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
        {"slowlog-log-slower-than", ""},
        {"slowlog-max-len", ""},
        {"auto-aof-rewrite-percentage", ""},
        {"auto-aof-rewrite-min-size", ""},
        {"maxmemory-policy", "noeviction"}, /* the only policy: writes over maxmemory get -OOM */
    };
    const size_t np = sizeof(p) / sizeof(p[0]);
    snprintf(p[1].value, sizeof(p[1].value), "%s", x->s->aof.enabled ? "yes" : "no");
    snprintf(p[3].value, sizeof(p[3].value), "%u", x->s->port);
    snprintf(p[4].value, sizeof(p[4].value), "%s", x->s->bind);
    snprintf(p[5].value, sizeof(p[5].value), "%llu", (unsigned long long)x->s->maxmemory);
    snprintf(p[6].value, sizeof(p[6].value), "%llu", (unsigned long long)x->s->maxclients);
    obuf_format(x->s->obuf_limit, p[11].value, sizeof(p[11].value));
    snprintf(p[12].value, sizeof(p[12].value), "%lld", (long long)x->s->slowlog_slower_than);
    snprintf(p[13].value, sizeof(p[13].value), "%llu", (unsigned long long)x->s->slowlog_max_len);
    snprintf(p[14].value, sizeof(p[14].value), "%llu", (unsigned long long)x->s->aof_rewrite_perc);
    snprintf(p[15].value, sizeof(p[15].value), "%llu", (unsigned long long)x->s->aof_rewrite_min_size);
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
    long long slower_than = x->s->slowlog_slower_than, slowlog_len = (long long)x->s->slowlog_max_len;
    uint64_t rw_perc = x->s->aof_rewrite_perc, rw_min = x->s->aof_rewrite_min_size;
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
        } else if (arg_is(&x->argv[i], "slowlog-log-slower-than") || arg_is(&x->argv[i], "slowlog-max-len")) {
            bool len = arg_is(&x->argv[i], "slowlog-max-len");
            long long v;
            if (!resp_str2ll(A(x, i + 1), L(x, i + 1), &v))
                why = "argument couldn't be parsed into an integer";
            else if (v < (len ? 0 : -1))
                why = len ? "argument must be between 0 and 9223372036854775807 inclusive"
                          : "argument must be between -1 and 9223372036854775807 inclusive";
            else if (len)
                slowlog_len = v;
            else
                slower_than = v;
        } else if (arg_is(&x->argv[i], "auto-aof-rewrite-percentage")) {
            long long v;
            if (!resp_str2ll(A(x, i + 1), L(x, i + 1), &v))
                why = "argument couldn't be parsed into an integer";
            else if (v < 0 || v > INT_MAX)
                why = "argument must be between 0 and 2147483647 inclusive";
            else
                rw_perc = (uint64_t)v;
        } else if (arg_is(&x->argv[i], "auto-aof-rewrite-min-size")) {
            if (L(x, i + 1) >= sizeof(val) || kv_mem_parse(val, &rw_min))
                why = "argument must be a memory value";
            else if (rw_min > LLONG_MAX)
                why = "argument must be between 0 and 9223372036854775807 inclusive";
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
    x->s->slowlog_slower_than = slower_than;
    kv_slowlog_max_len(x->s, (uint64_t)slowlog_len);
    x->s->aof_rewrite_perc = rw_perc;
    x->s->aof_rewrite_min_size = rw_min;
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

/* Redis's bytesToHuman: "1023B", "1.00K", "12.50M", ... */
static void bytes_human(char *out, size_t cap, uint64_t n)
{
    static const char units[] = "KMGTPE";
    if (n < 1024) {
        snprintf(out, cap, "%lluB", (unsigned long long)n);
        return;
    }
    double d = (double)n / 1024;
    int u = 0;
    while (d >= 1024 && units[u + 1]) {
        d /= 1024;
        u++;
    }
    snprintf(out, cap, "%.2f%c", d, units[u]);
}

/* The mean of the last 16 samples kv_server_cron took. */
static uint64_t ops_per_sec(const struct kv_server *s)
{
    uint64_t sum = 0;
    for (int i = 0; i < 16; i++)
        sum += s->ops_samples[i];
    return sum / 16;
}

void kv_server_cron(struct kv_server *s)
{
    /* An idle keyspace finishes its rehash here, at most 1 ms a tick. */
    kv_rehash_for(&s->store, 1000000);
    int64_t now = kv_now_ms();
    int64_t dt = now - s->ops_sample_ms;
    if (dt <= 0)
        return;
    uint64_t ops = s->commands >= s->ops_sample_cmds ? s->commands - s->ops_sample_cmds : 0;
    s->ops_samples[s->ops_sample_idx++ % 16] = ops * 1000 / (uint64_t)dt;
    s->ops_sample_ms = now;
    s->ops_sample_cmds = s->commands;
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
                 "run_id:%s\r\ntcp_port:%u\r\nuptime_in_seconds:%lld\r\nuptime_in_days:%lld\r\nhz:10\r\n"
                 "configured_hz:10\r\n",
                 KV_REDIS_VERSION, KV_VERSION, (int)(sizeof(void *) * 8), s->libos ? s->libos : "catnap",
                 (long)getpid(), s->run_id, s->port, (long long)up, (long long)(up / 86400));
    }
    if (info_wants(x, "clients")) {
        info_section(&b, &n, "Clients");
        info_add(&b,
                 "connected_clients:%llu\r\ncluster_connections:0\r\nmaxclients:%llu\r\nblocked_clients:%llu\r\n"
                 "tracking_clients:0\r\nclients_in_timeout_table:0\r\n",
                 (unsigned long long)s->connected_clients, (unsigned long long)s->maxclients,
                 (unsigned long long)s->blocked_clients);
    }
    if (info_wants(x, "memory")) {
        uint64_t used = kv_val_bytes() + kv_obj_bytes() + s->store.stats.key_bytes + kv_table_bytes(&s->store);
        info_section(&b, &n, "Memory");
        demi_stats_t st;
        uint64_t heap = demi_get_stats(&st) == 0 ? st.heap_bytes_in_use : 0;
        if (used > s->used_memory_peak)
            s->used_memory_peak = used;
        char h_used[32], h_peak[32], h_max[32];
        bytes_human(h_used, sizeof(h_used), used);
        bytes_human(h_peak, sizeof(h_peak), s->used_memory_peak);
        bytes_human(h_max, sizeof(h_max), s->maxmemory);
        info_add(&b,
                 "used_memory:%llu\r\nused_memory_human:%s\r\nused_memory_peak:%llu\r\nused_memory_peak_human:%s\r\n"
                 "used_memory_values_heap:%llu\r\nused_memory_heap:%llu\r\n"
                 "mem_clients_normal:%llu\r\nmaxmemory:%llu\r\nmaxmemory_human:%s\r\nmaxmemory_policy:noeviction\r\n",
                 (unsigned long long)used, h_used, (unsigned long long)s->used_memory_peak, h_peak,
                 (unsigned long long)kv_val_bytes(), (unsigned long long)heap,
                 (unsigned long long)(s->clients_mem ? s->clients_mem() : 0), (unsigned long long)s->maxmemory, h_max);
    }
    if (info_wants(x, "persistence")) {
        info_section(&b, &n, "Persistence");
        const struct kv_aof_info *a = &s->aof;
        info_add(&b,
                 "loading:0\r\nrdb_changes_since_last_save:%llu\r\nrdb_bgsave_in_progress:0\r\n"
                 "rdb_last_save_time:%lld\r\nrdb_last_bgsave_status:ok\r\naof_enabled:%d\r\n",
                 (unsigned long long)s->dirty, (long long)(s->start_ms / 1000), a->enabled ? 1 : 0);
        info_add(&b,
                 "aof_rewrite_in_progress:%d\r\naof_rewrite_scheduled:0\r\naof_last_rewrite_time_sec:%lld\r\n"
                 "aof_current_rewrite_time_sec:%lld\r\naof_last_bgrewrite_status:%s\r\naof_rewrites:%llu\r\n"
                 "aof_rewrites_consecutive_failures:%llu\r\n",
                 a->rewrite_in_progress ? 1 : 0, a->last_rewrite_ms < 0 ? -1LL : (long long)(a->last_rewrite_ms / 1000),
                 a->rewrite_in_progress ? (long long)((x->now - a->rewrite_start_ms) / 1000) : -1LL,
                 a->enabled && !a->rewrite_ok ? "err" : "ok", (unsigned long long)a->rewrites,
                 (unsigned long long)a->rewrite_fails);
        if (a->enabled)
            info_add(&b,
                     "aof_last_write_status:%s\r\naof_last_write_error:%s\r\naof_current_size:%llu\r\n"
                     "aof_base_size:%llu\r\naof_records_written:%llu\r\naof_commands_logged:%llu\r\n"
                     "aof_write_failures:%llu\r\naof_commands_replayed:%llu\r\n",
                     a->last_err ? "err" : "ok", a->last_err ? strerror(a->last_err) : "none",
                     (unsigned long long)a->bytes, (unsigned long long)a->base_size, (unsigned long long)a->records,
                     (unsigned long long)a->commands, (unsigned long long)a->failures, (unsigned long long)a->replayed);
    }
    if (info_wants(x, "stats")) {
        const struct kv_stats *st = &s->store.stats;
        info_section(&b, &n, "Stats");
        info_add(&b,
                 "total_connections_received:%llu\r\ntotal_commands_processed:%llu\r\n"
                 "instantaneous_ops_per_sec:%llu\r\nexpired_keys:%llu\r\nevicted_keys:0\r\n"
                 "keyspace_hits:%llu\r\nkeyspace_misses:%llu\r\nrejected_connections:%llu\r\n"
                 "client_output_buffer_limit_disconnections:%llu\r\ndemi_memory_disconnections:%llu\r\n"
                 "demi_pushes:%llu\r\ndemi_hop_pops_retried:%llu\r\n",
                 (unsigned long long)s->connections_received, (unsigned long long)s->commands,
                 (unsigned long long)ops_per_sec(s), (unsigned long long)st->expired, (unsigned long long)st->hits,
                 (unsigned long long)st->misses, (unsigned long long)s->rejected_connections,
                 (unsigned long long)s->obuf_disconnections, (unsigned long long)s->mem_disconnections,
                 (unsigned long long)s->pushes, (unsigned long long)s->hop_pops_retried);
    }
    if (info_wants(x, "replication")) {
        info_section(&b, &n, "Replication");
        info_add(&b,
                 "role:master\r\nconnected_slaves:0\r\nmaster_failover_state:no-failover\r\nmaster_replid:%s\r\n"
                 "master_replid2:0000000000000000000000000000000000000000\r\nmaster_repl_offset:0\r\n"
                 "second_repl_offset:-1\r\nrepl_backlog_active:0\r\nrepl_backlog_size:1048576\r\n"
                 "repl_backlog_first_byte_offset:0\r\nrepl_backlog_histlen:0\r\n",
                 s->run_id);
    }
    if (info_wants(x, "cpu")) {
        struct rusage self, kids;
        getrusage(RUSAGE_SELF, &self);
        getrusage(RUSAGE_CHILDREN, &kids);
        info_section(&b, &n, "CPU");
        info_add(&b,
                 "used_cpu_sys:%ld.%06ld\r\nused_cpu_user:%ld.%06ld\r\nused_cpu_sys_children:%ld.%06ld\r\n"
                 "used_cpu_user_children:%ld.%06ld\r\n",
                 (long)self.ru_stime.tv_sec, (long)self.ru_stime.tv_usec, (long)self.ru_utime.tv_sec,
                 (long)self.ru_utime.tv_usec, (long)kids.ru_stime.tv_sec, (long)kids.ru_stime.tv_usec,
                 (long)kids.ru_utime.tv_sec, (long)kids.ru_utime.tv_usec);
    }
    if (info_wants(x, "cluster")) {
        info_section(&b, &n, "Cluster");
        info_add(&b, "cluster_enabled:0\r\n");
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
static void cmd_copy(struct ctx *x);
static void cmd_command_getkeys(struct ctx *x);
static void cmd_command_getkeysandflags(struct ctx *x);

#define SUB(parent, n, a, f, fl, acl, summ)                                                                            \
    {                                                                                                                  \
        n, parent "|" n, a, f, fl, acl, 0, 0, 0, parent[1] == 'l' ? "connection" : "server", "2.0.0", "O(1)", summ,    \
            NULL, 0, NULL, NULL, NULL                                                                                  \
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

static const struct kv_cmd command_subs[] = {
    SUB("command", "count", -2, cmd_command_count, "loading stale", "slow connection",
        "Get total number of Redis commands"),
    SUB("command", "list", -2, cmd_command_list, "loading stale", "slow connection", "Get an array of command names"),
    SUB("command", "info", -2, cmd_command_info, "loading stale", "slow connection",
        "Get array of specific Redis command details, or all when no argument is given."),
    SUB("command", "docs", -2, cmd_command_docs, "loading stale", "slow connection",
        "Get array of specific Redis command documentation"),
    SUB("command", "getkeys", -4, cmd_command_getkeys, "loading stale", "slow connection",
        "Extract keys given a full Redis command"),
    SUB("command", "getkeysandflags", -4, cmd_command_getkeysandflags, "loading stale", "slow connection",
        "Extract keys and access flags given a full Redis command"),
    SUB("command", "help", 2, cmd_command_help, "loading stale", "slow connection",
        "Show helpful text about the different subcommands"),
};

#define CMD  KV_CMD
#define CMDK KV_CMDK
#define CONTAINER(n, a, subs, fl, acl, summ)                                                                           \
    {                                                                                                                  \
        n, n, a, NULL, fl, acl, 0, 0, 0, "server", "2.0.0", "Depends on subcommand.", summ, subs,                      \
            (int)(sizeof(subs) / sizeof(subs[0])), NULL, NULL, NULL                                                    \
    }

const struct kv_cmd kv_core_cmds[] = {
    CMDK("ping", -1, cmd_ping, "fast", "fast connection", 0, 0, 0, "connection", "1.0.0", "O(1)", "Ping the server",
         NULL, "request_policy:all_shards response_policy:all_succeeded", "[message]"),
    CMDK("echo", 2, cmd_echo, "fast", "fast connection", 0, 0, 0, "connection", "1.0.0", "O(1)",
         "Echo the given string", NULL, NULL, "message"),
    CMDK("select", 2, cmd_select, "loading stale fast", "fast connection", 0, 0, 0, "connection", "1.0.0", "O(1)",
         "Change the selected database for the current connection", NULL, NULL, "index:integer"),
    CMD("quit", -1, cmd_quit, "allow_busy noscript loading stale fast no_auth", "fast connection", 0, 0, 0,
        "connection", "1.0.0", "O(1)", "Close the connection"),
    CMDK("get", 2, cmd_get, "readonly fast", "read string fast", 1, 1, 1, "string", "1.0.0", "O(1)",
         "Get the value of a key", "1 RO access", NULL, "key:key"),
    CMDK("set", -3, cmd_set, "write denyoom", "write string slow", 1, 1, 1, "string", "1.0.0", "O(1)",
         "Set the string value of a key",
         "1 RW access update variable_flags (RW and ACCESS due to the optional `GET` argument)", NULL,
         "key:key value [{condition} NX|XX] [GET] [{expiration} EX seconds:integer|PX milliseconds:integer|EXAT "
         "unix-time-seconds:unix-time|PXAT unix-time-milliseconds:unix-time|KEEPTTL]"),
    CMDK("getset", 3, cmd_getset, "write denyoom fast", "write string fast", 1, 1, 1, "string", "1.0.0", "O(1)",
         "Set the string value of a key and return its old value", "1 RW access update", NULL, "key:key value"),
    CMDK("mget", -2, cmd_mget, "readonly fast", "read string fast", 1, -1, 1, "string", "1.0.0",
         "O(N) where N is the number of keys to retrieve.", "Get the values of all the given keys",
         "1:-1,1,0 RO access", "request_policy:multi_shard", "key:key..."),
    CMDK("mset", -3, cmd_mset, "write denyoom", "write string slow", 1, -1, 2, "string", "1.0.1",
         "O(N) where N is the number of keys to set.", "Set multiple keys to multiple values", "1:-1,2,0 OW update",
         "request_policy:multi_shard response_policy:all_succeeded", "({key_value} key:key value)..."),
    CMDK("incr", 2, cmd_incr, "write denyoom fast", "write string fast", 1, 1, 1, "string", "1.0.0", "O(1)",
         "Increment the integer value of a key by one", "1 RW access update", NULL, "key:key"),
    CMDK("decr", 2, cmd_decr, "write denyoom fast", "write string fast", 1, 1, 1, "string", "1.0.0", "O(1)",
         "Decrement the integer value of a key by one", "1 RW access update", NULL, "key:key"),
    CMDK("incrby", 3, cmd_incrby, "write denyoom fast", "write string fast", 1, 1, 1, "string", "1.0.0", "O(1)",
         "Increment the integer value of a key by the given amount", "1 RW access update", NULL,
         "key:key increment:integer"),
    CMDK("decrby", 3, cmd_decrby, "write denyoom fast", "write string fast", 1, 1, 1, "string", "1.0.0", "O(1)",
         "Decrement the integer value of a key by the given number", "1 RW access update", NULL,
         "key:key decrement:integer"),
    CMDK("append", 3, cmd_append, "write denyoom fast", "write string fast", 1, 1, 1, "string", "2.0.0", "O(1)",
         "Append a value to a key", "1 RW insert", NULL, "key:key value"),
    CMDK("strlen", 2, cmd_strlen, "readonly fast", "read string fast", 1, 1, 1, "string", "2.2.0", "O(1)",
         "Get the length of the value stored in a key", "1 RO", NULL, "key:key"),
    CMDK("setex", 4, cmd_setex, "write denyoom", "write string slow", 1, 1, 1, "string", "2.0.0", "O(1)",
         "Set the value and expiration of a key", "1 OW update", NULL, "key:key seconds:integer value"),
    CMDK("psetex", 4, cmd_psetex, "write denyoom", "write string slow", 1, 1, 1, "string", "2.6.0", "O(1)",
         "Set the value and expiration in milliseconds of a key", "1 OW update", NULL,
         "key:key milliseconds:integer value"),
    CMDK("setnx", 3, cmd_setnx, "write denyoom fast", "write string fast", 1, 1, 1, "string", "1.0.0", "O(1)",
         "Set the value of a key, only if the key does not exist", "1 OW insert", NULL, "key:key value"),
    CMDK("getdel", 2, cmd_getdel, "write fast", "write string fast", 1, 1, 1, "string", "6.2.0", "O(1)",
         "Get the value of a key and delete the key", "1 RW access delete", NULL, "key:key"),
    CMDK("getex", -2, cmd_getex, "write fast", "write string fast", 1, 1, 1, "string", "6.2.0", "O(1)",
         "Get the value of a key and optionally set its expiration",
         "1 RW access update (RW and UPDATE because it changes the TTL)", NULL,
         "key:key [{expiration} EX seconds:integer|PX milliseconds:integer|EXAT unix-time-seconds:unix-time|PXAT "
         "unix-time-milliseconds:unix-time|PERSIST]"),
    CMDK("del", -2, kv_cmd_del, "write", "keyspace write slow", 1, -1, 1, "generic", "1.0.0",
         "O(N) where N is the number of keys that will be removed.", "Delete a key", "1:-1,1,0 RM delete",
         "request_policy:multi_shard response_policy:agg_sum", "key:key..."),
    CMDK("exists", -2, cmd_exists, "readonly fast", "keyspace read fast", 1, -1, 1, "generic", "1.0.0",
         "O(N) where N is the number of keys to check.", "Determine if a key exists", "1:-1,1,0 RO",
         "request_policy:multi_shard response_policy:agg_sum", "key:key..."),
    CMDK("expire", -3, cmd_expire, "write fast", "keyspace write fast", 1, 1, 1, "generic", "1.0.0", "O(1)",
         "Set a key's time to live in seconds", "1 RW update", NULL,
         "key:key seconds:integer [{condition} NX|XX|GT|LT]"),
    CMDK("pexpire", -3, cmd_pexpire, "write fast", "keyspace write fast", 1, 1, 1, "generic", "2.6.0", "O(1)",
         "Set a key's time to live in milliseconds", "1 RW update", NULL,
         "key:key milliseconds:integer [{condition} NX|XX|GT|LT]"),
    CMDK("ttl", 2, cmd_ttl, "readonly fast", "keyspace read fast", 1, 1, 1, "generic", "1.0.0", "O(1)",
         "Get the time to live for a key in seconds", "1 RO access", "nondeterministic_output", "key:key"),
    CMDK("pttl", 2, cmd_pttl, "readonly fast", "keyspace read fast", 1, 1, 1, "generic", "2.6.0", "O(1)",
         "Get the time to live for a key in milliseconds", "1 RO access", "nondeterministic_output", "key:key"),
    CMDK("persist", 2, cmd_persist, "write fast", "keyspace write fast", 1, 1, 1, "generic", "2.2.0", "O(1)",
         "Remove the expiration from a key", "1 RW update", NULL, "key:key"),
    CMDK("expireat", -3, cmd_expireat, "write fast", "keyspace write fast", 1, 1, 1, "generic", "1.2.0", "O(1)",
         "Set the expiration for a key as a UNIX timestamp", "1 RW update", NULL,
         "key:key unix-time-seconds:unix-time [{condition} NX|XX|GT|LT]"),
    CMDK("pexpireat", -3, cmd_pexpireat, "write fast", "keyspace write fast", 1, 1, 1, "generic", "2.6.0", "O(1)",
         "Set the expiration for a key as a UNIX timestamp specified in milliseconds", "1 RW update", NULL,
         "key:key unix-time-milliseconds:unix-time [{condition} NX|XX|GT|LT]"),
    CMDK("expiretime", 2, cmd_expiretime, "readonly fast", "keyspace read fast", 1, 1, 1, "generic", "7.0.0", "O(1)",
         "Get the expiration Unix timestamp for a key", "1 RO access", NULL, "key:key"),
    CMDK("pexpiretime", 2, cmd_pexpiretime, "readonly fast", "keyspace read fast", 1, 1, 1, "generic", "7.0.0", "O(1)",
         "Get the expiration Unix timestamp for a key in milliseconds", "1 RO access", NULL, "key:key"),
    CMDK("copy", -3, cmd_copy, "write denyoom", "keyspace write slow", 1, 2, 1, "generic", "6.2.0",
         "O(N) worst case for collections, where N is the number of nested items. O(1) for string values.",
         "Copy a key", "1 RO access;2 OW update", NULL,
         "source:key destination:key [DB destination-db:integer] [REPLACE]"),
    CMDK("keys", 2, cmd_keys, "readonly", "keyspace read slow dangerous", 0, 0, 0, "generic", "1.0.0",
         "O(N) with N being the number of keys in the database", "Find all keys matching the given pattern", NULL,
         "request_policy:all_shards nondeterministic_output_order", "pattern:pattern"),
    CMDK("dbsize", 1, cmd_dbsize, "readonly fast", "keyspace read fast", 0, 0, 0, "server", "1.0.0", "O(1)",
         "Return the number of keys in the selected database", NULL,
         "request_policy:all_shards response_policy:agg_sum", NULL),
    CMDK("flushall", -1, cmd_flushall, "write", "keyspace write slow dangerous", 0, 0, 0, "server", "1.0.0",
         "O(N) where N is the total number of keys in all databases", "Remove all keys from all databases", NULL,
         "request_policy:all_shards response_policy:all_succeeded", "[{flush-type} ASYNC|SYNC]"),
    CMDK("flushdb", -1, cmd_flushall, "write", "keyspace write slow dangerous", 0, 0, 0, "server", "1.0.0",
         "O(N) where N is the number of keys in the selected database", "Remove all keys from the current database",
         NULL, "request_policy:all_shards response_policy:all_succeeded", "[{flush-type} ASYNC|SYNC]"),
    CMDK("info", -1, cmd_info, "loading stale", "slow dangerous", 0, 0, 0, "server", "1.0.0", "O(1)",
         "Get information and statistics about the server", NULL, "nondeterministic_output", NULL),
    CMD("bgrewriteaof", 1, cmd_bgrewriteaof, "admin noscript no_async_loading", "admin slow dangerous", 0, 0, 0,
        "server", "1.0.0", "O(1)", "Asynchronously rewrite the append-only file"),
    CONTAINER("config", -2, config_subs, "", "slow", "A container for server configuration commands"),
    {"command", "command", -1, cmd_command, "loading stale", "slow connection", 0, 0, 0, "server", "2.8.13",
     "O(N) where N is the total number of Redis commands", "Get array of Redis command details", command_subs,
     (int)(sizeof(command_subs) / sizeof(command_subs[0])), NULL, "nondeterministic_output_order", NULL},
};

const size_t kv_core_ncmds = sizeof(kv_core_cmds) / sizeof(kv_core_cmds[0]);

/* Every command of every table, in table order, through @fn. */
#define FOR_EACH_CMD(c)                                                                                                \
    for (size_t t_ = 0; t_ < kv_ncmd_tables; t_++)                                                                     \
        for (const struct kv_cmd *c = kv_cmd_tables[t_].cmds; c < kv_cmd_tables[t_].cmds + *kv_cmd_tables[t_].n; c++)

static size_t ncommands(void)
{
    size_t n = 0;
    for (size_t t = 0; t < kv_ncmd_tables; t++)
        n += *kv_cmd_tables[t].n;
    return n;
}

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

/* The command a command line names: its subcommand when it has
 * subcommands and names one (NULL when it names none of them). */
static const struct kv_cmd *find_cmd_line(const struct kv_server *s, int argc, const struct resp_arg *argv)
{
    const struct kv_cmd *c = find_cmd(s, argv[0].ptr, argv[0].len);
    if (c && c->nsubs && argc >= 2) {
        const struct kv_cmd *sub = NULL;
        for (int i = 0; i < c->nsubs && !sub; i++)
            if (arg_is(&argv[1], c->subs[i].name))
                sub = &c->subs[i];
        c = sub;
    }
    return c;
}

/* ---- COMMAND ---- */

/* A command by name, or a subcommand by "container|sub" (COMMAND INFO and
 * DOCS take both). */
static const struct kv_cmd *find_cmd_full(const struct kv_server *s, const uint8_t *name, size_t len)
{
    const uint8_t *bar = memchr(name, '|', len);
    if (!bar)
        return find_cmd(s, name, len);
    const struct kv_cmd *c = find_cmd(s, name, (size_t)(bar - name));
    struct resp_arg sub = {.ptr = bar + 1, .len = len - (size_t)(bar - name) - 1};
    for (int i = 0; c && i < c->nsubs; i++)
        if (arg_is(&sub, c->subs[i].name))
            return &c->subs[i];
    return NULL;
}

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

/* Replies an array of bulk strings, one per word of @s (NULL: none). */
static void word_array_bulk(struct reply *r, const char *s)
{
    reply_array(r, s ? count_words(s) : 0);
    for (const char *p = s; p && *p;) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        const char *w = p;
        while (*p && *p != ' ')
            p++;
        reply_bulk(r, w, (size_t)(p - w));
    }
}

/* The most key specs a command has (Redis's have at most 4 or so). */
#define KEYSPECS_MAX 8

/* One key spec (see struct kv_cmd's keyspecs). */
struct keyspec {
    int begin;   /* index of the first key */
    bool keynum; /* else a range */
    int a, b, c; /* lastkey, keystep, limit; or keynumidx, firstkey, keystep */
    char flags[64];
    char notes[128]; /* "" when none */
};

static const char *spec_int(const char *p, int *out)
{
    char *end;
    long v = strtol(p, &end, 10);
    *out = (int)v;
    return end;
}

/* The key specs of @c, from its keyspecs string or, without one, a single
 * range from first/last/step with flags from its read/write split.
 * Returns how many (at most KEYSPECS_MAX). */
static int command_keyspecs(const struct kv_cmd *c, struct keyspec *ks)
{
    if (!c->keyspecs) {
        if (c->first <= 0)
            return 0;
        ks[0] = (struct keyspec){.begin = c->first, .a = c->last < 0 ? c->last : c->last - c->first, .b = c->step};
        const char *f = strncmp(c->flags, "write", 5) == 0      ? "RW access update"
                        : strncmp(c->flags, "readonly", 8) == 0 ? "RO access"
                                                                : "RO";
        snprintf(ks[0].flags, sizeof(ks[0].flags), "%s", f);
        return 1;
    }
    int n = 0;
    for (const char *p = c->keyspecs; *p && n < KEYSPECS_MAX; n++) {
        struct keyspec *k = &ks[n];
        *k = (struct keyspec){.b = 1};
        p = spec_int(p, &k->begin);
        if (*p == ':') {
            p++;
            k->keynum = *p == '#';
            p = spec_int(p + k->keynum, &k->a);
            p = spec_int(p + 1, &k->b);
            p = spec_int(p + 1, &k->c);
        }
        while (*p == ' ')
            p++;
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *notes = memchr(p, '(', len);
        size_t all = len;
        if (notes) {
            /* "FLAGS... (notes)" */
            const char *close = memchr(notes, ')', len - (size_t)(notes - p));
            size_t nlen = close ? (size_t)(close - notes - 1) : len - (size_t)(notes - p) - 1;
            snprintf(k->notes, sizeof(k->notes), "%.*s", (int)nlen, notes + 1);
            len = (size_t)(notes - p);
            while (len > 0 && p[len - 1] == ' ')
                len--;
        }
        snprintf(k->flags, sizeof(k->flags), "%.*s", (int)len, p);
        p = end ? end + 1 : p + all;
    }
    return n;
}

/* COMMAND INFO's key specs, in Redis 7's layout. */
static void reply_keyspecs(struct reply *r, const struct kv_cmd *c)
{
    struct keyspec ks[KEYSPECS_MAX];
    int n = command_keyspecs(c, ks);
    reply_array(r, n);
    for (int i = 0; i < n; i++) {
        reply_array(r, ks[i].notes[0] ? 8 : 6);
        if (ks[i].notes[0]) {
            reply_cstr(r, "notes");
            reply_cstr(r, ks[i].notes);
        }
        reply_cstr(r, "flags");
        word_array(r, ks[i].flags, "");
        reply_cstr(r, "begin_search");
        reply_array(r, 4);
        reply_cstr(r, "type");
        reply_cstr(r, "index");
        reply_cstr(r, "spec");
        reply_array(r, 2);
        reply_cstr(r, "index");
        reply_int(r, ks[i].begin);
        reply_cstr(r, "find_keys");
        reply_array(r, 4);
        reply_cstr(r, "type");
        reply_cstr(r, ks[i].keynum ? "keynum" : "range");
        reply_cstr(r, "spec");
        reply_array(r, 6);
        reply_cstr(r, ks[i].keynum ? "keynumidx" : "lastkey");
        reply_int(r, ks[i].a);
        reply_cstr(r, ks[i].keynum ? "firstkey" : "keystep");
        reply_int(r, ks[i].b);
        reply_cstr(r, ks[i].keynum ? "keystep" : "limit");
        reply_int(r, ks[i].c);
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
    word_array_bulk(r, c->tips);
    reply_keyspecs(r, c);
    reply_array(r, c->nsubs);
    for (int i = 0; i < c->nsubs; i++)
        command_info(r, &c->subs[i]);
}

/*
 * COMMAND DOCS's "arguments", parsed from a row's args string (see struct
 * kv_cmd) into a small tree and then written out in Redis 7's layout:
 * each argument a map of name, type, key_spec_index (keys), token, flags
 * (optional, multiple) and, for a block or oneof, its arguments.
 */
#define DOC_NODES 64

struct doc_arg {
    char name[40], type[16], token[24];
    bool optional, multiple;
    int key_spec;    /* -1: not a key */
    int child, next; /* first child and next sibling, or -1 */
};

struct doc_parse {
    const char *p;
    struct doc_arg n[DOC_NODES];
    int used, keys, nspecs, root;
    bool bad;
};

static int doc_new(struct doc_parse *d)
{
    if (d->used == DOC_NODES) {
        d->bad = true;
        return -1;
    }
    struct doc_arg *a = &d->n[d->used];
    memset(a, 0, sizeof(*a));
    a->key_spec = a->child = a->next = -1;
    return d->used++;
}

static void doc_spaces(struct doc_parse *d)
{
    while (*d->p == ' ')
        d->p++;
}

/* A word: up to a space or one of "[]()|{}", or "..." that follows it. */
static size_t doc_word(struct doc_parse *d, const char **w)
{
    *w = d->p;
    while (*d->p && !strchr(" []()|{}", *d->p) && strncmp(d->p, "...", 3) != 0)
        d->p++;
    return (size_t)(d->p - *w);
}

static bool doc_upper(const char *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (islower((unsigned char)w[i]))
            return false;
    return n > 0;
}

/* "name[:type]" into a node; a name "key" (or "newkey", ...) is a key. */
static void doc_named(struct doc_parse *d, struct doc_arg *a, const char *w, size_t n)
{
    const char *colon = memchr(w, ':', n);
    size_t nl = colon ? (size_t)(colon - w) : n;
    snprintf(a->name, sizeof(a->name), "%.*s", (int)nl, w);
    if (colon)
        snprintf(a->type, sizeof(a->type), "%.*s", (int)(n - nl - 1), colon + 1);
    else
        snprintf(a->type, sizeof(a->type), "%s", "string");
    if (strcmp(a->type, "key") == 0) {
        a->key_spec = d->keys < d->nspecs ? d->keys : d->nspecs - 1;
        if (a->key_spec < 0)
            a->key_spec = 0;
        d->keys++;
    }
}

static int doc_seq(struct doc_parse *d, int *count);

/* One argument: a group, a token (with the argument it introduces), or a
 * named argument; "..." after it makes it multiple. */
static int doc_item(struct doc_parse *d)
{
    int id;
    if (*d->p == '[' || *d->p == '(') {
        bool optional = *d->p == '[';
        char close = optional ? ']' : ')';
        d->p++;
        doc_spaces(d);
        char gname[40] = "arg";
        if (*d->p == '{') {
            const char *w = ++d->p;
            while (*d->p && *d->p != '}')
                d->p++;
            snprintf(gname, sizeof(gname), "%.*s", (int)(d->p - w), w);
            if (*d->p)
                d->p++;
        }
        int alts[DOC_NODES], nalts = 0;
        for (;;) {
            int count;
            int first = doc_seq(d, &count);
            if (first < 0 || d->bad) {
                d->bad = true;
                return -1;
            }
            if (count > 1) { /* several arguments in a row: a block */
                int b = doc_new(d);
                if (b < 0)
                    return -1;
                snprintf(d->n[b].name, sizeof(d->n[b].name), "%s", gname);
                snprintf(d->n[b].type, sizeof(d->n[b].type), "%s", "block");
                d->n[b].child = first;
                first = b;
            }
            alts[nalts++] = first;
            if (*d->p == '|' && nalts < DOC_NODES) {
                d->p++;
                continue;
            }
            break;
        }
        if (*d->p != close) {
            d->bad = true;
            return -1;
        }
        d->p++;
        if (nalts == 1) {
            id = alts[0];
        } else {
            if ((id = doc_new(d)) < 0)
                return -1;
            snprintf(d->n[id].name, sizeof(d->n[id].name), "%s", gname);
            snprintf(d->n[id].type, sizeof(d->n[id].type), "%s", "oneof");
            d->n[id].child = alts[0];
            for (int i = 0; i + 1 < nalts; i++)
                d->n[alts[i]].next = alts[i + 1];
        }
        d->n[id].optional = optional;
    } else {
        const char *w;
        size_t n = doc_word(d, &w);
        if (n == 0 || (id = doc_new(d)) < 0) {
            d->bad = true;
            return -1;
        }
        struct doc_arg *a = &d->n[id];
        if (doc_upper(w, n)) {
            snprintf(a->token, sizeof(a->token), "%.*s", (int)n, w);
            const char *save = d->p;
            doc_spaces(d);
            const char *v;
            size_t vn = *d->p && !strchr("[]()|{}", *d->p) ? doc_word(d, &v) : 0;
            if (vn > 0 && !doc_upper(v, vn)) {
                doc_named(d, a, v, vn);
            } else {
                d->p = save;
                for (size_t i = 0; i < n && i + 1 < sizeof(a->name); i++)
                    a->name[i] = (char)tolower((unsigned char)w[i]);
                snprintf(a->type, sizeof(a->type), "%s", "pure-token");
            }
        } else {
            doc_named(d, a, w, n);
        }
    }
    if (strncmp(d->p, "...", 3) == 0) {
        d->n[id].multiple = true;
        d->p += 3;
    }
    return id;
}

/* Arguments up to the end, '|' or a closing bracket: the first one's
 * index (siblings linked), or -1 when none; *count gets how many. */
static int doc_seq(struct doc_parse *d, int *count)
{
    int first = -1, last = -1;
    *count = 0;
    for (;;) {
        doc_spaces(d);
        if (!*d->p || strchr("|])", *d->p) || d->bad)
            return first;
        int id = doc_item(d);
        if (id < 0)
            return -1;
        if (last >= 0)
            d->n[last].next = id;
        else
            first = id;
        last = id;
        ++*count;
    }
}

static void doc_emit(struct reply *r, const struct doc_parse *d, int id)
{
    int n = 0;
    for (int i = id; i >= 0; i = d->n[i].next)
        n++;
    reply_array(r, n);
    for (int i = id; i >= 0; i = d->n[i].next) {
        const struct doc_arg *a = &d->n[i];
        bool flags = a->optional || a->multiple;
        reply_array(r, 4 + 2 * ((a->key_spec >= 0) + (a->token[0] != 0) + flags + (a->child >= 0)));
        reply_cstr(r, "name");
        reply_cstr(r, a->name);
        reply_cstr(r, "type");
        reply_cstr(r, a->type);
        if (a->key_spec >= 0) {
            reply_cstr(r, "key_spec_index");
            reply_int(r, a->key_spec);
        }
        if (a->token[0]) {
            reply_cstr(r, "token");
            reply_cstr(r, a->token);
        }
        if (flags) {
            reply_cstr(r, "flags");
            word_array(r, a->optional && a->multiple ? "optional multiple" : a->optional ? "optional" : "multiple", "");
        }
        if (a->child >= 0) {
            reply_cstr(r, "arguments");
            doc_emit(r, d, a->child);
        }
    }
}

/* Parses @c's args string; false when it has none or it does not parse
 * (then DOCS leaves "arguments" out). */
static bool doc_parse_args(const struct kv_cmd *c, struct doc_parse *d)
{
    if (!c->args)
        return false;
    struct keyspec ks[KEYSPECS_MAX];
    d->p = c->args;
    d->used = d->keys = 0;
    d->nspecs = command_keyspecs(c, ks);
    d->bad = false;
    int count;
    d->root = doc_seq(d, &count);
    return !d->bad && !*d->p && d->root >= 0;
}

static void command_docs(struct reply *r, const struct kv_cmd *c)
{
    struct doc_parse *d = malloc(sizeof(*d));
    bool args = d && doc_parse_args(c, d);
    reply_cstr(r, c->fullname);
    reply_array(r, 8 + 2 * (c->nsubs > 0) + 2 * args);
    reply_cstr(r, "summary");
    reply_cstr(r, c->summary);
    reply_cstr(r, "since");
    reply_cstr(r, c->since);
    reply_cstr(r, "group");
    reply_cstr(r, c->group);
    reply_cstr(r, "complexity");
    reply_cstr(r, c->complexity);
    if (args) {
        reply_cstr(r, "arguments");
        doc_emit(r, d, d->root);
    }
    free(d);
    if (c->nsubs) {
        reply_cstr(r, "subcommands");
        reply_array(r, 2 * c->nsubs);
        for (int i = 0; i < c->nsubs; i++)
            command_docs(r, &c->subs[i]);
    }
}

static void cmd_command(struct ctx *x)
{
    reply_array(x->r, (long long)ncommands());
    FOR_EACH_CMD(c)
    command_info(x->r, c);
}

static void cmd_command_count(struct ctx *x)
{
    reply_int(x->r, (long long)ncommands());
}

static void cmd_command_list(struct ctx *x)
{
    if (x->argc > 2) {
        err_syntax(x);
        return;
    }
    reply_array(x->r, (long long)ncommands());
    FOR_EACH_CMD(c)
    reply_cstr(x->r, c->name);
}

static void cmd_command_info(struct ctx *x)
{
    if (x->argc == 2) {
        cmd_command(x);
        return;
    }
    reply_array(x->r, x->argc - 2);
    for (int i = 2; i < x->argc; i++) {
        const struct kv_cmd *c = find_cmd_full(x->s, A(x, i), L(x, i));
        if (c)
            command_info(x->r, c);
        else
            reply_null(x->r);
    }
}

static void cmd_command_docs(struct ctx *x)
{
    if (x->argc == 2) {
        reply_array(x->r, 2 * (long long)ncommands());
        FOR_EACH_CMD(c)
        command_docs(x->r, c);
        return;
    }
    long long n = 0;
    for (int i = 2; i < x->argc; i++)
        n += find_cmd_full(x->s, A(x, i), L(x, i)) != NULL;
    reply_array(x->r, 2 * n);
    for (int i = 2; i < x->argc; i++) {
        const struct kv_cmd *c = find_cmd_full(x->s, A(x, i), L(x, i));
        if (c)
            command_docs(x->r, c);
    }
}

/* Where key spec @k finds keys in @argv: first, first + step, ..., last.
 * 1 with the range, 0 when it finds none, -1 when the arguments do not
 * fit it (a bad key count). */
static int keyspec_range(const struct keyspec *k, int argc, const struct resp_arg *argv, long long *first_out,
                         long long *last_out, long long *step_out)
{
    long long first = k->begin, last, step;
    if (first <= 0 || first >= argc)
        return 0;
    if (k->keynum) {
        long long num;
        if (first + k->a >= argc || !resp_str2ll(argv[first + k->a].ptr, argv[first + k->a].len, &num) || num < 0 ||
            num > argc)
            return -1;
        step = k->c > 0 ? k->c : 1;
        first += k->b;
        if (num == 0)
            return 0;
        last = first + (num - 1) * step;
        if (last >= argc)
            return -1;
    } else {
        step = k->b > 0 ? k->b : 1;
        if (k->a >= 0)
            last = first + k->a;
        else if (k->c <= 0)
            last = argc + k->a;
        else
            last = first + ((argc - first) / k->c + k->a);
        if (last >= argc || last < first)
            return 0; /* the command itself reports the arity */
    }
    *first_out = first;
    *last_out = last;
    *step_out = step;
    return 1;
}

/* The keys of the command line @argv, found by its key specs as Redis's
 * getKeysUsingKeySpecs does: counted, and written to @r (with their
 * spec's flags when @with_flags) unless @r is NULL. Returns how many; 0
 * when the arguments do not fit the specs. Two passes, so that nothing is
 * allocated for a client's line of any length. */
static size_t command_keys(const struct keyspec *ks, int nks, int argc, const struct resp_arg *argv, struct reply *r,
                           bool with_flags)
{
    size_t n = 0;
    for (int i = 0; i < nks; i++) {
        long long first, last, step;
        int st = keyspec_range(&ks[i], argc, argv, &first, &last, &step);
        if (st < 0)
            return 0;
        for (long long j = first; st > 0 && j <= last; j += step, n++) {
            if (!r)
                continue;
            if (with_flags)
                reply_array(r, 2);
            reply_bulk(r, argv[j].ptr, argv[j].len);
            if (with_flags)
                word_array(r, ks[i].flags, "");
        }
    }
    return n;
}

/* COMMAND GETKEYS and GETKEYSANDFLAGS: the keys a command line names. */
static void getkeys_generic(struct ctx *x, bool with_flags)
{
    int argc = x->argc - 2;
    const struct resp_arg *argv = x->argv + 2;
    const struct kv_cmd *c = find_cmd_line(x->s, argc, argv);
    if (!c) {
        reply_error(x->r, "ERR Invalid command specified");
        return;
    }
    struct keyspec ks[KEYSPECS_MAX];
    int nks = command_keyspecs(c, ks);
    if (nks == 0) {
        reply_error(x->r, "ERR The command has no key arguments");
        return;
    }
    if ((c->arity > 0 && c->arity != argc) || argc < -c->arity) {
        reply_error(x->r, "ERR Invalid number of arguments specified for command");
        return;
    }
    size_t n = command_keys(ks, nks, argc, argv, NULL, with_flags);
    if (n == 0) {
        reply_error(x->r, "ERR Invalid arguments specified for command");
        return;
    }
    reply_array(x->r, (long long)n);
    command_keys(ks, nks, argc, argv, x->r, with_flags);
}

static void cmd_command_getkeys(struct ctx *x)
{
    getkeys_generic(x, false);
}

static void cmd_command_getkeysandflags(struct ctx *x)
{
    getkeys_generic(x, true);
}

/* ---- COPY ---- */

static int discard_push(void *arg, const demi_sgarray_t *sga)
{
    (void)arg;
    (void)sga;
    return 0;
}

/* Runs one command a type's rewrite emits (RPUSH, SADD, HSET, ZADD on
 * COPY's destination), its reply discarded: 0, or ENOMEM when it replied
 * an error. */
static int copy_emit(void *arg, int argc, const struct resp_arg *argv)
{
    struct ctx *x = arg;
    const struct kv_cmd *c = find_cmd(x->s, argv[0].ptr, argv[0].len);
    if (!c || !c->fn || (c->arity > 0 && c->arity != argc) || argc < -c->arity)
        return EINVAL;
    struct reply scratch;
    reply_init(&scratch);
    reply_target(&scratch, discard_push, NULL);
    struct ctx y = *x;
    y.argc = argc;
    y.argv = argv;
    y.r = &scratch;
    y.cmd = c;
    c->fn(&y);
    int e = !scratch.cur.data || ((const char *)scratch.cur.data)[0] == '-' ? ENOMEM : 0;
    reply_free(&scratch);
    return e;
}

/* A copy of a string value; NULL when out of memory. */
static struct kv_val *copy_string(const struct kv_val *v)
{
    if (v->nseg <= 1)
        return kv_val_new(v->nseg ? v->seg[0].data : NULL, v->len, v->len);
    struct kv_val *n = kv_val_new(NULL, 0, v->len);
    for (uint32_t i = 0; n && i < v->nseg; i++) {
        if (kv_val_append(&n, v->seg[i].data, v->seg[i].len)) {
            kv_val_unref(n);
            n = NULL;
        }
    }
    return n;
}

/*
 * COPY source destination [DB 0] [REPLACE]: a string is copied; a
 * collection is rebuilt at the destination from the commands its type's
 * rewrite emits (the AOF rewrite's path, O(N) like Redis's copy), so that
 * every type copies without a copy function of its own. The time to live
 * is copied too. One database: DB takes 0 only.
 */
static void cmd_copy(struct ctx *x)
{
    bool replace = false;
    for (int j = 3; j < x->argc; j++) {
        long long db;
        if (arg_is(&x->argv[j], "replace")) {
            replace = true;
        } else if (arg_is(&x->argv[j], "db") && j + 1 < x->argc) {
            if (!arg_ll(x, j + 1, &db))
                return;
            if (db < INT_MIN || db > INT_MAX) {
                errorf(x, "ERR value is out of range, value must between %d and %d", INT_MIN, INT_MAX);
                return;
            }
            if (db != 0) {
                reply_error(x->r, "ERR DB index is out of range");
                return;
            }
            j++;
        } else {
            err_syntax(x);
            return;
        }
    }
    if (L(x, 1) == L(x, 2) && memcmp(A(x, 1), A(x, 2), L(x, 1)) == 0) {
        reply_error(x->r, "ERR source and destination objects are the same");
        return;
    }
    struct kv_entry *src = lookup_read(x, 1);
    if (!src) {
        reply_int(x->r, 0);
        return;
    }
    int64_t expire = src->expire;
    uint64_t h;
    struct kv_entry *dst = lookup_h(x, 2, &h);
    if (dst && !replace) {
        reply_int(x->r, 0);
        return;
    }
    if (src->type == KV_STRING) {
        struct kv_val *v = copy_string(src->val);
        if (!v) {
            err_oom(x);
            return;
        }
        if (!put(x, 2, dst, h, v, expire, false))
            return;
    } else {
        if (dst)
            kv_delete(&x->s->store, dst);
        int e = kv_types[src->type]->rewrite(src->obj, A(x, 2), L(x, 2), copy_emit, x);
        dst = lookup(x, 2);
        if (e || !dst || (expire >= 0 && kv_set_expire(&x->s->store, dst, expire))) {
            if (dst)
                kv_delete(&x->s->store, dst);
            x->s->dirty++; /* the destination may be gone */
            err_oom(x);
            return;
        }
        x->s->dirty++;
    }
    reply_int(x->r, 1);
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
        "GETKEYS <full-command>",
        "    Return the keys from a full Redis command.",
        "GETKEYSANDFLAGS <full-command>",
        "    Return the keys and the access flags from a full Redis command.",
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
    s->table_mask = 63; /* at least twice the number of commands */
    while (s->table_mask + 1 < 2 * ncommands())
        s->table_mask = s->table_mask * 2 + 1;
    s->table = calloc(s->table_mask + 1, sizeof(*s->table));
    if (!s->table) {
        kv_store_free(&s->store);
        return ENOMEM;
    }
    FOR_EACH_CMD(c)
    {
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
    s->aof_rewrite_perc = 100;
    s->aof_rewrite_min_size = (uint64_t)64 << 20;
    snprintf(s->bind, sizeof(s->bind), "127.0.0.1");
    if (kv_slowlog_init(s)) {
        kv_server_free(s);
        return ENOMEM;
    }
    /* INFO's run_id: random per start, as Redis's. */
    uint64_t seed = (uint64_t)s->start_ms ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)s;
    for (int i = 0; i < 40; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        s->run_id[i] = "0123456789abcdef"[(seed >> 59) & 15];
    }
    s->run_id[40] = '\0';
    s->ops_sample_ms = s->start_ms;
    return 0;
}

void kv_server_free(struct kv_server *s)
{
    kv_slowlog_free(s);
    kv_store_free(&s->store);
    free(s->table);
    free(s->prop_argv);
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

static void exec_one(struct kv_server *s, struct kv_client *c, int argc, const struct resp_arg *argv,
                     struct reply *r);

void kv_exec(struct kv_server *s, struct kv_client *c, int argc, const struct resp_arg *argv, struct reply *r)
{
    if (!c->reply_off && !c->reply_skip) {
        exec_one(s, c, argc, argv, r);
        return;
    }
    /* CLIENT REPLY OFF or SKIP: the command runs, its reply (errors
     * included) goes nowhere. */
    c->reply_skip = false;
    struct reply sink;
    kv_reply_sink(&sink);
    s->reply_real = r;
    exec_one(s, c, argc, argv, &sink);
    s->reply_real = NULL;
    reply_free(&sink);
}

static void exec_one(struct kv_server *s, struct kv_client *c, int argc, const struct resp_arg *argv,
                     struct reply *r)
{
    struct ctx x = {.s = s, .c = c, .argc = argc, .argv = argv, .r = r};
    s->commands++;
    if (s->prop_argc) {
        free(s->prop_argv);
        s->prop_argv = NULL;
        s->prop_argc = 0;
    }
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
    /* A monitor may not touch the keyspace, as a replica in Redis. */
    if (c->monitor && (strncmp(cmd->flags, "write", 5) == 0 || strstr(cmd->flags, "readonly"))) {
        reply_error(r, "ERR Replica can't interact with the keyspace");
        return;
    }
    x.now = s->clock_ms();
    int64_t t0 = kv_cmd_start(&x);
    cmd->fn(&x);
    kv_cmd_done(&x, t0);
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

/* ---- the keyspace split across threads (demi-kv --threads) ---- */

/* CRC16-CCITT (XMODEM: polynomial 0x1021, initial 0), Redis Cluster's key
 * hash, four bits at a time. */
static uint16_t crc16(const uint8_t *p, size_t n)
{
    static const uint16_t nib[16] = {0x0000, 0x1021, 0x2042, 0x3063, 0x4084, 0x50a5, 0x60c6, 0x70e7,
                                     0x8108, 0x9129, 0xa14a, 0xb16b, 0xc18c, 0xd1ad, 0xe1ce, 0xf1ef};
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc = (uint16_t)((crc << 4) ^ nib[((crc >> 12) ^ (p[i] >> 4)) & 0xf]);
        crc = (uint16_t)((crc << 4) ^ nib[((crc >> 12) ^ (p[i] & 0xf)) & 0xf]);
    }
    return crc;
}

unsigned kv_key_slot(const uint8_t *key, size_t len)
{
    const uint8_t *open = memchr(key, '{', len);
    if (open) {
        size_t rest = len - (size_t)(open - key) - 1;
        const uint8_t *close = memchr(open + 1, '}', rest);
        if (close && close > open + 1)
            return crc16(open + 1, (size_t)(close - open - 1)) & (KV_SLOTS - 1);
    }
    return crc16(key, len) & (KV_SLOTS - 1);
}

void kv_route(const struct kv_server *s, int argc, const struct resp_arg *argv, unsigned nshards,
              struct kv_route *out)
{
    *out = (struct kv_route){.kind = KV_ROUTE_HERE};
    if (argc < 1)
        return;
    const struct kv_cmd *cmd = find_cmd_line(s, argc, argv);
    /* An unknown command or a wrong arity: the client's own thread
     * replies the error. */
    if (!cmd || (cmd->arity > 0 && cmd->arity != argc) || argc < -cmd->arity)
        return;
    const char *name = cmd->fullname;
    if (strcmp(name, "dbsize") == 0) {
        out->kind = KV_ROUTE_ALL;
        out->combine = KV_COMBINE_SUM;
        return;
    }
    if (strcmp(name, "keys") == 0) {
        out->kind = KV_ROUTE_ALL;
        out->combine = KV_COMBINE_ARRAYS;
        return;
    }
    if (strcmp(name, "flushall") == 0 || strcmp(name, "flushdb") == 0 || strcmp(name, "config|set") == 0 ||
        strcmp(name, "config|resetstat") == 0) {
        out->kind = KV_ROUTE_ALL;
        out->combine = KV_COMBINE_ALL_OK;
        return;
    }
    if (strcmp(name, "scan") == 0 || strcmp(name, "randomkey") == 0 || strcmp(name, "monitor") == 0) {
        out->kind = KV_ROUTE_REFUSED;
        out->why = strcmp(name, "scan") == 0        ? "ERR SCAN is not supported by demi-kv --threads (use KEYS)"
                   : strcmp(name, "randomkey") == 0 ? "ERR RANDOMKEY is not supported by demi-kv --threads"
                                                    : "ERR MONITOR is not supported by demi-kv --threads";
        return;
    }
    struct keyspec ks[KEYSPECS_MAX];
    int nks = command_keyspecs(cmd, ks);
    if (nks == 0 && strstr(cmd->flags, "movablekeys")) {
        out->kind = KV_ROUTE_REFUSED; /* keys the table cannot find */
        out->why = "ERR this command is not supported by demi-kv --threads";
        return;
    }
    bool any = false;
    for (int i = 0; i < nks; i++) {
        long long first, last, step;
        int st = keyspec_range(&ks[i], argc, argv, &first, &last, &step);
        if (st < 0) {
            out->kind = KV_ROUTE_HERE; /* the command replies its own error */
            return;
        }
        for (long long j = first; st > 0 && j <= last; j += step) {
            unsigned shard = kv_key_slot(argv[j].ptr, argv[j].len) % nshards;
            if (!any) {
                out->kind = KV_ROUTE_SHARD;
                out->shard = shard;
                any = true;
            } else if (shard != out->shard) {
                out->kind = KV_ROUTE_CROSSSLOT;
                return;
            }
        }
    }
}
