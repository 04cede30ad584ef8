/*
 * demi-kv's server and connection commands: CLIENT (LIST, INFO, KILL and
 * the naming ones), HELLO, AUTH, RESET, MONITOR, SLOWLOG, SHUTDOWN, TIME,
 * LASTSAVE, ROLE and WAIT, with Redis 7.0's replies and errors. The clients
 * themselves live in the network loop (kv.c), which the commands reach
 * through s->clients (cmd.h); in the unit tests that is empty and a command
 * sees only the client running it.
 *
 * Nothing here may grow with a client-chosen number beyond what the client
 * sent: a CLIENT LIST ID with a million ids is one sort of the clients and
 * a binary search per id, a SLOWLOG entry keeps at most 32 arguments of at
 * most 128 bytes, a MONITOR line that could not fit in a monitor's output
 * limit is never built.
 */
#include "cmd_int.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the clients ---- */

static struct kv_client *client_next(struct ctx *x, struct kv_client *prev)
{
    if (x->s->clients.next)
        return x->s->clients.next(prev);
    return prev ? NULL : x->c; /* no loop: only this client */
}

static void client_kill(struct ctx *x, struct kv_client *c)
{
    if (c == x->c)
        c->close_after_reply = true; /* the reply goes out first, as in Redis */
    else if (x->s->clients.kill)
        x->s->clients.kill(c);
}

/* A growing text buffer; nomem is sticky. */
struct text {
    char *p;
    size_t len, cap;
    bool nomem;
};

static void text_add(struct text *t, const void *p, size_t n)
{
    if (t->nomem)
        return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *q = realloc(t->p, cap);
        if (!q) {
            t->nomem = true;
            return;
        }
        t->p = q;
        t->cap = cap;
    }
    memcpy(t->p + t->len, p, n);
    t->len += n;
    t->p[t->len] = '\0';
}

static void text_fmt(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_fmt(struct text *t, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n > 0)
        text_add(t, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

/* One line of CLIENT LIST, as Redis 7.0 writes it; the fields demi-kv
 * does not have hold what Redis shows for a plain idle client. */
static void client_line(struct ctx *x, struct kv_client *c, struct text *t)
{
    struct kv_client_mem m = {0, 0, 0};
    if (x->s->clients.mem)
        x->s->clients.mem(c, &m);
    long long age = c->ctime_ms ? (x->now - c->ctime_ms) / 1000 : 0;
    long long idle = c->atime_ms ? (x->now - c->atime_ms) / 1000 : 0;
    text_fmt(t, "id=%llu addr=%s laddr=%s fd=%d name=", (unsigned long long)c->id, c->addr, c->laddr, c->fd);
    if (c->name)
        text_add(t, c->name, strlen(c->name));
    text_fmt(t,
             " age=%lld idle=%lld flags=%s db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=%llu qbuf-free=0 argv-mem=0 "
             "multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=%llu tot-mem=%llu events=r cmd=%s user=default redir=-1 "
             "resp=2\n",
             age < 0 ? 0 : age, idle < 0 ? 0 : idle, c->monitor ? "O" : "N", (unsigned long long)m.qbuf,
             (unsigned long long)m.omem, (unsigned long long)m.total, c->last_cmd ? c->last_cmd : "NULL");
}

static void reply_text(struct ctx *x, struct text *t)
{
    if (t->nomem)
        err_oom(x);
    else
        reply_bulk(x->r, t->p ? t->p : "", t->len);
    free(t->p);
}

static int by_id(const void *a, const void *b)
{
    uint64_t x = (*(struct kv_client *const *)a)->id, y = (*(struct kv_client *const *)b)->id;
    return x < y ? -1 : x > y;
}

/* Every client, sorted by id, in a malloc'd array; NULL with *n 0 when
 * there is none, NULL with *n SIZE_MAX when out of memory. */
static struct kv_client **clients_sorted(struct ctx *x, size_t *n)
{
    size_t cap = 0;
    *n = 0;
    for (struct kv_client *c = client_next(x, NULL); c; c = client_next(x, c))
        cap++;
    if (!cap)
        return NULL;
    struct kv_client **v = malloc(cap * sizeof(*v));
    if (!v) {
        *n = SIZE_MAX;
        return NULL;
    }
    for (struct kv_client *c = client_next(x, NULL); c && *n < cap; c = client_next(x, c))
        v[(*n)++] = c;
    qsort(v, *n, sizeof(*v), by_id);
    return v;
}

static struct kv_client *find_id(struct kv_client **v, size_t n, long long id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if ((long long)v[mid]->id == id)
            return v[mid];
        if ((long long)v[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Redis's client types: every demi-kv client (a monitor included) is a
 * normal one. Returns 1 normal, 0 another known type, -1 unknown. */
static int client_type(const struct resp_arg *a)
{
    if (arg_is(a, "normal"))
        return 1;
    if (arg_is(a, "master") || arg_is(a, "replica") || arg_is(a, "slave") || arg_is(a, "pubsub"))
        return 0;
    return -1;
}

static void err_type(struct ctx *x, int i)
{
    char msg[256];
    size_t n = 0;
    cat_str(msg, sizeof(msg), &n, "ERR Unknown client type '");
    cat_upto(msg, sizeof(msg), &n, A(x, i), L(x, i), 128);
    cat_str(msg, sizeof(msg), &n, "'");
    reply_error(x->r, msg);
}

static void cmd_client_list(struct ctx *x)
{
    struct text t = {0};
    if (x->argc == 4 && arg_is(&x->argv[2], "type")) {
        int type = client_type(&x->argv[3]);
        if (type < 0) {
            err_type(x, 3);
            return;
        }
        if (type == 1) {
            size_t n;
            struct kv_client **v = clients_sorted(x, &n);
            if (n == SIZE_MAX) {
                err_oom(x);
                return;
            }
            for (size_t k = 0; k < n; k++)
                client_line(x, v[k], &t);
            free(v);
        }
    } else if (x->argc > 3 && arg_is(&x->argv[2], "id")) {
        for (int i = 3; i < x->argc; i++) {
            long long id;
            if (!resp_str2ll(A(x, i), L(x, i), &id)) {
                reply_error(x->r, "ERR Invalid client ID");
                return;
            }
        }
        size_t n;
        struct kv_client **v = clients_sorted(x, &n);
        if (n == SIZE_MAX) {
            err_oom(x);
            return;
        }
        for (int i = 3; i < x->argc && !t.nomem; i++) {
            long long id;
            resp_str2ll(A(x, i), L(x, i), &id);
            struct kv_client *c = find_id(v, n, id);
            if (c)
                client_line(x, c, &t);
        }
        free(v);
    } else if (x->argc != 2) {
        err_syntax(x);
        return;
    } else {
        /* In the order they connected (by id), as Redis lists them. */
        size_t n;
        struct kv_client **v = clients_sorted(x, &n);
        if (n == SIZE_MAX) {
            err_oom(x);
            return;
        }
        for (size_t k = 0; k < n; k++)
            client_line(x, v[k], &t);
        free(v);
    }
    reply_text(x, &t);
}

static void cmd_client_info(struct ctx *x)
{
    struct text t = {0};
    client_line(x, x->c, &t);
    reply_text(x, &t);
}

static bool arg_is_str(const struct resp_arg *a, const char *s)
{
    return a->len == strlen(s) && memcmp(a->ptr, s, a->len) == 0;
}

static void cmd_client_kill(struct ctx *x)
{
    if (x->argc == 3) {
        /* The old form: CLIENT KILL ip:port. */
        for (struct kv_client *c = client_next(x, NULL); c; c = client_next(x, c)) {
            if (arg_is_str(&x->argv[2], c->addr)) {
                client_kill(x, c);
                reply_status(x->r, "OK");
                return;
            }
        }
        reply_error(x->r, "ERR No such client");
        return;
    }
    long long id = 0;
    int type = -2; /* -2: any */
    const struct resp_arg *addr = NULL, *laddr = NULL;
    bool skipme = true;
    for (int i = 2; i < x->argc; i += 2) {
        bool more = i + 1 < x->argc;
        const struct resp_arg *o = &x->argv[i];
        if (arg_is(o, "id") && more) {
            if (!resp_str2ll(A(x, i + 1), L(x, i + 1), &id) || id < 1) {
                reply_error(x->r, "ERR client-id should be greater than 0");
                return;
            }
        } else if (arg_is(o, "type") && more) {
            type = client_type(&x->argv[i + 1]);
            if (type < 0) {
                err_type(x, i + 1);
                return;
            }
        } else if (arg_is(o, "addr") && more) {
            addr = &x->argv[i + 1];
        } else if (arg_is(o, "laddr") && more) {
            laddr = &x->argv[i + 1];
        } else if (arg_is(o, "user") && more) {
            if (!arg_is_str(&x->argv[i + 1], "default")) {
                char msg[256];
                size_t n = 0;
                cat_str(msg, sizeof(msg), &n, "ERR No such user '");
                cat_upto(msg, sizeof(msg), &n, A(x, i + 1), L(x, i + 1), 128);
                cat_str(msg, sizeof(msg), &n, "'");
                reply_error(x->r, msg);
                return;
            }
        } else if (arg_is(o, "skipme") && more) {
            if (arg_is(&x->argv[i + 1], "yes")) {
                skipme = true;
            } else if (arg_is(&x->argv[i + 1], "no")) {
                skipme = false;
            } else {
                err_syntax(x);
                return;
            }
        } else {
            err_syntax(x);
            return;
        }
    }
    /* Collect first: a kill frees the client, and with it the walk's place. */
    size_t n;
    struct kv_client **v = clients_sorted(x, &n);
    if (n == SIZE_MAX) {
        err_oom(x);
        return;
    }
    long long killed = 0;
    for (size_t k = 0; k < n; k++) {
        struct kv_client *c = v[k];
        if ((id && (long long)c->id != id) || type == 0 || (addr && !arg_is_str(addr, c->addr)) ||
            (laddr && !arg_is_str(laddr, c->laddr)) || (skipme && c == x->c))
            continue;
        client_kill(x, c);
        killed++;
    }
    free(v);
    reply_int(x->r, killed);
}

static void cmd_client_no_evict(struct ctx *x)
{
    /* demi-kv disconnects for memory only the clients holding the most
     * replies; the flag is accepted and changes nothing. */
    if (arg_is(&x->argv[2], "on") || arg_is(&x->argv[2], "off"))
        reply_status(x->r, "OK");
    else
        err_syntax(x);
}

static bool valid_name(struct ctx *x, int i)
{
    for (size_t k = 0; k < L(x, i); k++) {
        if (A(x, i)[k] < '!' || A(x, i)[k] > '~') {
            reply_error(x->r, "ERR Client names cannot contain spaces, newlines or special characters.");
            return false;
        }
    }
    return true;
}

/* Names the client with argument i (empty: no name). false after OOM. */
static bool set_name(struct ctx *x, int i)
{
    char *name = NULL;
    if (L(x, i) > 0) {
        name = malloc(L(x, i) + 1);
        if (!name) {
            err_oom(x);
            return false;
        }
        memcpy(name, A(x, i), L(x, i));
        name[L(x, i)] = '\0';
    }
    free(x->c->name);
    x->c->name = name;
    return true;
}

static void cmd_client_setname(struct ctx *x)
{
    if (valid_name(x, 2) && set_name(x, 2))
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

static int discard(void *arg, const demi_sgarray_t *sga)
{
    (void)arg;
    (void)sga;
    return 0;
}

void kv_reply_sink(struct reply *r)
{
    reply_init(r);
    reply_target(r, discard, NULL);
}

static void cmd_client_reply(struct ctx *x)
{
    if (arg_is(&x->argv[2], "on")) {
        x->c->reply_off = false;
        /* Replies again from this one on, its own included. */
        reply_status(x->s->reply_real ? x->s->reply_real : x->r, "OK");
    } else if (arg_is(&x->argv[2], "off")) {
        x->c->reply_off = true; /* this command's reply is the first dropped */
    } else if (arg_is(&x->argv[2], "skip")) {
        if (!x->c->reply_off)
            x->c->reply_skip = true; /* the next command's */
    } else {
        err_syntax(x);
    }
}

static void cmd_client_help(struct ctx *x)
{
    static const char *const lines[] = {
        "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GETNAME",
        "    Return the name of the current connection.",
        "ID",
        "    Return the ID of the current connection.",
        "INFO",
        "    Return information about the current client connection.",
        "KILL <ip:port>",
        "    Kill connection made from <ip:port>.",
        "KILL <option> <value> [<option> <value> [...]]",
        "    Kill connections. Options are:",
        "    * ADDR (<ip:port>|<unixsocket>:0)",
        "      Kill connections made from the specified address",
        "    * LADDR (<ip:port>|<unixsocket>:0)",
        "      Kill connections made to specified local address",
        "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
        "      Kill connections by type.",
        "    * USER <username>",
        "      Kill connections authenticated by <username>.",
        "    * SKIPME (YES|NO)",
        "      Skip killing current connection (default: yes).",
        "LIST [options ...]",
        "    Return information about client connections. Options:",
        "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
        "      Return clients of specified type.",
        "REPLY (ON|OFF|SKIP)",
        "    Control the replies sent to the current connection.",
        "SETNAME <name>",
        "    Assign the name <name> to the current connection.",
        "NO-EVICT (ON|OFF)",
        "    Protect current client connection from eviction.",
        "HELP",
        "    Prints this help.",
        NULL,
    };
    help(x, lines);
}

/* ---- HELLO, AUTH, RESET ---- */

static const char err_wrongpass[] = "WRONGPASS invalid username-password pair or user is disabled.";

static void cmd_hello(struct ctx *x)
{
    long long ver = 0;
    if (x->argc >= 2) {
        if (!resp_str2ll(A(x, 1), L(x, 1), &ver)) {
            reply_error(x->r, "ERR Protocol version is not an integer or out of range");
            return;
        }
        /* RESP3 is not implemented: clients fall back to RESP2 on this
         * error, as with a server without RESP3. */
        if (ver != 2) {
            reply_error(x->r, "NOPROTO unsupported protocol version");
            return;
        }
    }
    const struct resp_arg *user = NULL;
    for (int j = 2; j < x->argc; j++) {
        int more = x->argc - 1 - j;
        if (arg_is(&x->argv[j], "auth") && more >= 2) {
            user = &x->argv[j + 1];
            j += 2;
        } else if (arg_is(&x->argv[j], "setname") && more) {
            /* Named at once, even if an option after it fails, as in
             * Redis 7.0. */
            if (!valid_name(x, j + 1) || !set_name(x, j + 1))
                return;
            j++;
        } else {
            char msg[256];
            size_t n = 0;
            cat_str(msg, sizeof(msg), &n, "ERR Syntax error in HELLO option '");
            cat_upto(msg, sizeof(msg), &n, A(x, j), L(x, j), 128);
            cat_str(msg, sizeof(msg), &n, "'");
            reply_error(x->r, msg);
            return;
        }
    }
    /* No password is configured: the default user takes any. */
    if (user && !arg_is_str(user, "default")) {
        reply_error(x->r, err_wrongpass);
        return;
    }
    reply_array(x->r, 14);
    reply_cstr(x->r, "server");
    reply_cstr(x->r, "redis");
    reply_cstr(x->r, "version");
    reply_cstr(x->r, KV_REDIS_VERSION);
    reply_cstr(x->r, "proto");
    reply_int(x->r, 2);
    reply_cstr(x->r, "id");
    reply_int(x->r, (long long)x->c->id);
    reply_cstr(x->r, "mode");
    reply_cstr(x->r, "standalone");
    reply_cstr(x->r, "role");
    reply_cstr(x->r, "master");
    reply_cstr(x->r, "modules");
    reply_array(x->r, 0);
}

static void cmd_auth(struct ctx *x)
{
    if (x->argc > 3) {
        err_syntax(x);
        return;
    }
    if (x->argc == 2)
        reply_error(x->r, "ERR AUTH <password> called without any password configured for the default user. "
                          "Are you sure your configuration is correct?");
    else if (arg_is_str(&x->argv[1], "default"))
        reply_status(x->r, "OK");
    else
        reply_error(x->r, err_wrongpass);
}

static void monitor_off(struct ctx *x)
{
    if (x->c->monitor) {
        x->c->monitor = false;
        x->s->monitors--;
    }
}

static void cmd_reset(struct ctx *x)
{
    monitor_off(x);
    free(x->c->name);
    x->c->name = NULL;
    reply_status(x->r, "RESET");
}

/* ---- MONITOR ---- */

static void cmd_monitor(struct ctx *x)
{
    if (x->c->monitor)
        return; /* already: no reply, as in Redis */
    x->c->monitor = true;
    x->s->monitors++;
    reply_status(x->r, "OK");
}

/* The bytes sdscatrepr writes for one byte. */
static size_t repr_len(uint8_t b)
{
    if (b == '\\' || b == '"' || b == '\n' || b == '\r' || b == '\t' || b == '\a' || b == '\b')
        return 2;
    return isprint(b) ? 1 : 4;
}

static size_t repr_write(char *out, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t k = 0;
    out[k++] = '"';
    for (size_t i = 0; i < n; i++) {
        uint8_t b = p[i];
        const char *esc = b == '\\'   ? "\\\\"
                          : b == '"'  ? "\\\""
                          : b == '\n' ? "\\n"
                          : b == '\r' ? "\\r"
                          : b == '\t' ? "\\t"
                          : b == '\a' ? "\\a"
                          : b == '\b' ? "\\b"
                                      : NULL;
        if (esc) {
            out[k++] = esc[0];
            out[k++] = esc[1];
        } else if (isprint(b)) {
            out[k++] = (char)b;
        } else {
            out[k++] = '\\';
            out[k++] = 'x';
            out[k++] = hex[b >> 4];
            out[k++] = hex[b & 15];
        }
    }
    out[k++] = '"';
    return k;
}

/* Whether argument i is a password that logs must not show: AUTH's, and
 * HELLO's AUTH username and password. */
static bool redacted(const struct ctx *x, int i)
{
    if (arg_is(&x->argv[0], "auth"))
        return i >= 1;
    if (!arg_is(&x->argv[0], "hello"))
        return false;
    for (int j = 2; j < x->argc; j++) {
        if (arg_is(&x->argv[j], "auth") && x->argc - 1 - j >= 2) {
            if (i == j + 1 || i == j + 2)
                return true;
            j += 2;
        } else if (arg_is(&x->argv[j], "setname")) {
            j++;
        }
    }
    return false;
}

static const char redacted_text[] = "(redacted)";

static void monitor_feed(struct ctx *x)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char head[96];
    int hn = snprintf(head, sizeof(head), "+%lld.%06ld [0 %s]", (long long)ts.tv_sec, ts.tv_nsec / 1000,
                      x->c->addr[0] ? x->c->addr : "lua");
    /* The size first: a line a monitor could not take is not built. */
    uint64_t len = (uint64_t)hn + 2;
    for (int i = 0; i < x->argc; i++) {
        len += 3; /* the space and the quotes */
        if (redacted(x, i))
            len += sizeof(redacted_text) - 1;
        else
            for (size_t k = 0; k < L(x, i); k++)
                len += repr_len(A(x, i)[k]);
    }
    uint64_t hard = x->s->obuf_limit[KV_OBUF_NORMAL].hard;
    char *line = (hard && len >= hard) || len > SIZE_MAX / 2 ? NULL : malloc((size_t)len);
    if (!line) {
        x->s->clients.monitor_feed(NULL, (size_t)len); /* the monitors are over their limit */
        return;
    }
    size_t k = (size_t)hn;
    memcpy(line, head, k);
    for (int i = 0; i < x->argc; i++) {
        line[k++] = ' ';
        if (redacted(x, i))
            k += repr_write(line + k, (const uint8_t *)redacted_text, sizeof(redacted_text) - 1);
        else
            k += repr_write(line + k, A(x, i), L(x, i));
    }
    line[k++] = '\r';
    line[k++] = '\n';
    x->s->clients.monitor_feed(line, k);
    free(line);
}

/* ---- SLOWLOG ---- */

#define SLOWLOG_MAX_ARGC 32
#define SLOWLOG_MAX_ARG  128

struct slowlog_entry {
    struct slowlog_entry *newer, *older;
    long long id, time, duration;
    int argc;
    struct resp_arg *argv; /* in the same allocation, after the entry */
    char addr[24];
    char *name; /* in the same allocation; "" when unnamed */
};

struct kv_slowlog {
    struct slowlog_entry *newest, *oldest;
    uint64_t len;
    long long next_id;
};

static void slowlog_trim(struct kv_slowlog *l, uint64_t max)
{
    while (l->len > max) {
        struct slowlog_entry *e = l->oldest;
        l->oldest = e->newer;
        if (l->oldest)
            l->oldest->older = NULL;
        else
            l->newest = NULL;
        free(e);
        l->len--;
    }
}

static void slowlog_add(struct ctx *x, long long duration)
{
    struct kv_slowlog *l = x->s->slowlog;
    if (!l || x->s->slowlog_max_len == 0)
        return;
    /* Redis's shape: at most 32 arguments (the last saying how many were
     * left out), each cut at 128 bytes (saying how many bytes were). */
    int argc = x->argc > SLOWLOG_MAX_ARGC ? SLOWLOG_MAX_ARGC : x->argc;
    char notes[SLOWLOG_MAX_ARGC][48];
    size_t keep[SLOWLOG_MAX_ARGC]; /* bytes of the argument itself kept */
    size_t bytes = sizeof(struct slowlog_entry) + (size_t)argc * sizeof(struct resp_arg);
    for (int i = 0; i < argc; i++) {
        notes[i][0] = '\0';
        keep[i] = 0;
        if (i == SLOWLOG_MAX_ARGC - 1 && x->argc > SLOWLOG_MAX_ARGC) {
            snprintf(notes[i], sizeof(notes[i]), "... (%d more arguments)", x->argc - SLOWLOG_MAX_ARGC + 1);
        } else if (redacted(x, i)) {
            snprintf(notes[i], sizeof(notes[i]), "%s", redacted_text);
        } else if (L(x, i) > SLOWLOG_MAX_ARG) {
            keep[i] = SLOWLOG_MAX_ARG;
            snprintf(notes[i], sizeof(notes[i]), "... (%zu more bytes)", L(x, i) - SLOWLOG_MAX_ARG);
        } else {
            keep[i] = L(x, i);
        }
        bytes += keep[i] + strlen(notes[i]);
    }
    size_t nlen = x->c->name ? strlen(x->c->name) : 0;
    bytes += nlen + 1;
    struct slowlog_entry *e = malloc(bytes);
    if (!e)
        return; /* a slow log entry is not worth failing a command for */
    e->argv = (struct resp_arg *)(e + 1);
    uint8_t *p = (uint8_t *)(e->argv + argc);
    for (int i = 0; i < argc; i++) {
        e->argv[i].ptr = p;
        memcpy(p, A(x, i), keep[i]);
        p += keep[i];
        memcpy(p, notes[i], strlen(notes[i]));
        p += strlen(notes[i]);
        e->argv[i].len = (size_t)(p - e->argv[i].ptr);
    }
    e->name = (char *)p;
    if (nlen)
        memcpy(e->name, x->c->name, nlen);
    e->name[nlen] = '\0';
    e->argc = argc;
    e->id = l->next_id++;
    e->time = x->now / 1000;
    e->duration = duration;
    snprintf(e->addr, sizeof(e->addr), "%s", x->c->addr);
    e->older = l->newest;
    e->newer = NULL;
    if (l->newest)
        l->newest->newer = e;
    else
        l->oldest = e;
    l->newest = e;
    l->len++;
    slowlog_trim(l, x->s->slowlog_max_len);
}

static void slowlog_reset(struct kv_slowlog *l)
{
    slowlog_trim(l, 0);
}

static void cmd_slowlog_get(struct ctx *x)
{
    struct kv_slowlog *l = x->s->slowlog;
    long long count = 10;
    if (x->argc > 3) {
        char msg[256];
        size_t n = 0;
        cat_str(msg, sizeof(msg), &n, "ERR unknown subcommand or wrong number of arguments for '");
        cat_upto(msg, sizeof(msg), &n, A(x, 1), L(x, 1), 128);
        cat_str(msg, sizeof(msg), &n, "'. Try SLOWLOG HELP.");
        reply_error(x->r, msg);
        return;
    }
    if (x->argc == 3 && (!resp_str2ll(A(x, 2), L(x, 2), &count) || count < -1 || count > LONG_MAX)) {
        reply_error(x->r, "ERR count should be greater than or equal to -1");
        return;
    }
    uint64_t len = l ? l->len : 0;
    if (count == -1 || (uint64_t)count > len)
        count = (long long)len;
    reply_array(x->r, count);
    struct slowlog_entry *e = l ? l->newest : NULL;
    for (long long k = 0; k < count && e; k++, e = e->older) {
        reply_array(x->r, 6);
        reply_int(x->r, e->id);
        reply_int(x->r, e->time);
        reply_int(x->r, e->duration);
        reply_array(x->r, e->argc);
        for (int i = 0; i < e->argc; i++)
            reply_bulk(x->r, e->argv[i].ptr, e->argv[i].len);
        reply_cstr(x->r, e->addr);
        reply_cstr(x->r, e->name);
    }
}

static void cmd_slowlog_len(struct ctx *x)
{
    reply_int(x->r, x->s->slowlog ? (long long)x->s->slowlog->len : 0);
}

static void cmd_slowlog_reset(struct ctx *x)
{
    if (x->s->slowlog)
        slowlog_reset(x->s->slowlog);
    reply_status(x->r, "OK");
}

static void cmd_slowlog_help(struct ctx *x)
{
    static const char *const lines[] = {
        "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET [<count>]",
        "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
        "    Entries are made of:",
        "    id, timestamp, time in microseconds, arguments array, client IP and port,",
        "    client name",
        "LEN",
        "    Return the length of the slowlog.",
        "RESET",
        "    Reset the slowlog.",
        "HELP",
        "    Prints this help.",
        NULL,
    };
    help(x, lines);
}

int kv_slowlog_init(struct kv_server *s)
{
    s->slowlog_slower_than = 10000;
    s->slowlog_max_len = 128;
    s->slowlog = calloc(1, sizeof(*s->slowlog));
    return s->slowlog ? 0 : ENOMEM;
}

void kv_slowlog_free(struct kv_server *s)
{
    if (s->slowlog) {
        slowlog_reset(s->slowlog);
        free(s->slowlog);
        s->slowlog = NULL;
    }
}

void kv_slowlog_max_len(struct kv_server *s, uint64_t max)
{
    s->slowlog_max_len = max;
    if (s->slowlog)
        slowlog_trim(s->slowlog, max);
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t kv_cmd_start(struct ctx *x)
{
    x->c->last_cmd = x->cmd->fullname;
    x->c->atime_ms = x->now;
    return x->s->slowlog_slower_than >= 0 ? mono_us() : 0;
}

void kv_cmd_done(struct ctx *x, int64_t t0)
{
    /* In the server, a client without an address is the log's replay at
     * start, which Redis neither logs as slow nor shows to monitors. */
    if (x->s->clients.next && !x->c->addr[0])
        return;
    if (x->s->slowlog_slower_than >= 0 && t0) {
        long long d = mono_us() - t0;
        if (d >= x->s->slowlog_slower_than)
            slowlog_add(x, d);
    }
    /* Redis does not show admin commands (CONFIG, SLOWLOG, MONITOR, ...). */
    if (x->s->monitors && x->s->clients.monitor_feed && !strstr(x->cmd->flags, "admin"))
        monitor_feed(x);
}

/* ---- SHUTDOWN and the rest ---- */

static void cmd_shutdown(struct ctx *x)
{
    bool nosave = false, save = false, force = false, abort_ = false, now = false;
    for (int i = 1; i < x->argc; i++) {
        if (arg_is(&x->argv[i], "nosave"))
            nosave = true;
        else if (arg_is(&x->argv[i], "save"))
            save = true;
        else if (arg_is(&x->argv[i], "now"))
            now = true;
        else if (arg_is(&x->argv[i], "force"))
            force = true;
        else if (arg_is(&x->argv[i], "abort"))
            abort_ = true;
        else {
            err_syntax(x);
            return;
        }
    }
    if ((abort_ && (nosave || save || now || force)) || (nosave && save)) {
        err_syntax(x);
        return;
    }
    if (abort_) {
        reply_error(x->r, "ERR No shutdown in progress.");
        return;
    }
    /* A log that cannot be written would lose writes: refused unless
     * FORCE, as Redis refuses when its final save or fsync fails. */
    if (x->s->aof.enabled && x->s->aof.last_err && !force) {
        fprintf(stderr,
                "demi-kv: SHUTDOWN refused: the append-only log has failed (%s); SHUTDOWN FORCE exits "
                "anyway\n",
                strerror(x->s->aof.last_err));
        reply_error(x->r, "ERR Errors trying to SHUTDOWN. Check logs.");
        return;
    }
    /* No reply: the loop closes every client and exits, after making the
     * log durable (kv.c). */
    x->s->shutdown = true;
    x->s->shutdown_nosave = nosave;
    x->s->shutdown_save = save;
    x->c->close_after_reply = true;
}

static void cmd_time(struct ctx *x)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char buf[24];
    reply_array(x->r, 2);
    reply_bulk(x->r, buf, reply_fmt_ll(buf, (long long)ts.tv_sec));
    reply_bulk(x->r, buf, reply_fmt_ll(buf, ts.tv_nsec / 1000));
}

static void cmd_lastsave(struct ctx *x)
{
    /* demi-kv does not save snapshots: the last "save" is the start, as
     * for a Redis that never saved. */
    reply_int(x->r, x->s->start_ms / 1000);
}

static void cmd_role(struct ctx *x)
{
    reply_array(x->r, 3);
    reply_cstr(x->r, "master");
    reply_int(x->r, 0);
    reply_array(x->r, 0);
}

static void cmd_wait(struct ctx *x)
{
    long long n, timeout;
    if (!resp_str2ll(A(x, 2), L(x, 2), &timeout)) {
        reply_error(x->r, "ERR timeout is not an integer or out of range");
        return;
    }
    if (timeout < 0) {
        reply_error(x->r, "ERR timeout is negative");
        return;
    }
    if (!arg_ll(x, 1, &n))
        return;
    /* No replicas: none acknowledges. (Redis would wait for the timeout
     * when asked for one or more; demi-kv answers at once.) */
    reply_int(x->r, 0);
}

/* ---- tables ---- */

#define SUB(parent, n, a, f, fl, acl, summ)                                                                            \
    {                                                                                                                  \
        n, parent "|" n, a, f, fl, acl, 0, 0, 0, parent[1] == 'l' ? "connection" : "server", "2.0.0", "O(1)", summ,    \
            NULL, 0                                                                                                    \
    }

static const struct kv_cmd client_subs[] = {
    SUB("client", "setname", 3, cmd_client_setname, "noscript loading stale", "slow connection",
        "Set the current connection name"),
    SUB("client", "getname", 2, cmd_client_getname, "noscript loading stale", "slow connection",
        "Get the current connection name"),
    SUB("client", "id", 2, cmd_client_id, "noscript loading stale", "slow connection",
        "Returns the client ID for the current connection"),
    SUB("client", "info", 2, cmd_client_info, "noscript loading stale", "slow connection",
        "Returns information about the current client connection."),
    SUB("client", "list", -2, cmd_client_list, "admin noscript loading stale", "admin slow dangerous connection",
        "Get the list of client connections"),
    SUB("client", "kill", -3, cmd_client_kill, "admin noscript loading stale", "admin slow dangerous connection",
        "Kill the connection of a client"),
    SUB("client", "no-evict", 3, cmd_client_no_evict, "admin noscript loading stale", "admin slow dangerous connection",
        "Set client eviction mode for the current connection"),
    SUB("client", "reply", 3, cmd_client_reply, "noscript loading stale", "slow connection",
        "Instruct the server whether to reply to commands"),
    SUB("client", "help", 2, cmd_client_help, "loading stale", "slow connection",
        "Show helpful text about the different subcommands"),
};

static const struct kv_cmd slowlog_subs[] = {
    SUB("slowlog", "get", -2, cmd_slowlog_get, "admin loading stale", "admin slow dangerous",
        "Get the slow log's entries"),
    SUB("slowlog", "len", 2, cmd_slowlog_len, "admin loading stale", "admin slow dangerous",
        "Get the slow log's length"),
    SUB("slowlog", "reset", 2, cmd_slowlog_reset, "admin loading stale", "admin slow dangerous",
        "Clear all entries from the slow log"),
    SUB("slowlog", "help", 2, cmd_slowlog_help, "loading stale", "slow",
        "Show helpful text about the different subcommands"),
};

#define CONTAINER(n, a, subs, fl, acl, summ)                                                                           \
    {                                                                                                                  \
        n, n, a, NULL, fl, acl, 0, 0, 0, "server", "2.0.0", "Depends on subcommand.", summ, subs,                      \
            (int)(sizeof(subs) / sizeof(subs[0]))                                                                      \
    }

const struct kv_cmd kv_server_cmds[] = {
    CONTAINER("client", -2, client_subs, "", "slow", "A container for client connection commands"),
    CONTAINER("slowlog", -2, slowlog_subs, "", "slow", "A container for slow log commands"),
    KV_CMD("hello", -1, cmd_hello, "noscript loading stale fast no_auth allow_busy", "fast connection", 0, 0, 0,
           "connection", "6.0.0", "O(1)", "Handshake with Redis"),
    KV_CMD("auth", -2, cmd_auth, "noscript loading stale fast no_auth allow_busy", "fast connection", 0, 0, 0,
           "connection", "1.0.0", "O(N) where N is the number of passwords defined for the user",
           "Authenticate to the server"),
    KV_CMD("reset", 1, cmd_reset, "noscript loading stale fast no_auth allow_busy", "fast connection", 0, 0, 0,
           "connection", "6.2.0", "O(1)", "Reset the connection"),
    KV_CMD("monitor", 1, cmd_monitor, "admin noscript loading stale", "admin slow dangerous", 0, 0, 0, "server",
           "1.0.0", "O(1)", "Listen for all requests received by the server in real time"),
    KV_CMD("shutdown", -1, cmd_shutdown, "admin noscript loading stale no_multi allow_busy", "admin slow dangerous", 0,
           0, 0, "server", "1.0.0", "O(N) when saving, where N is the total number of keys in all databases",
           "Synchronously save the dataset to disk and then shut down the server"),
    KV_CMD("time", 1, cmd_time, "loading stale fast", "fast", 0, 0, 0, "server", "2.6.0", "O(1)",
           "Return the current server time"),
    KV_CMD("lastsave", 1, cmd_lastsave, "loading stale fast", "admin fast dangerous", 0, 0, 0, "server", "1.0.0",
           "O(1)", "Get the UNIX time stamp of the last successful save to disk"),
    KV_CMD("role", 1, cmd_role, "noscript loading stale fast", "admin fast dangerous", 0, 0, 0, "server", "2.8.12",
           "O(1)", "Return the role of the instance in the context of replication"),
    KV_CMD("wait", 3, cmd_wait, "noscript", "slow connection", 0, 0, 0, "generic", "3.0.0", "O(1)",
           "Wait for the synchronous replication of all the write commands sent in the context of the current "
           "connection"),
};

const size_t kv_server_ncmds = sizeof(kv_server_cmds) / sizeof(kv_server_cmds[0]);
