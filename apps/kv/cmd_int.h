/*
 * What the files implementing demi-kv's commands share (cmd.c, t_*.c):
 * the execution context, the command table's row, and the argument and
 * error helpers that keep every command's replies Redis's, byte for byte.
 * Not part of the command layer's interface (cmd.h).
 */
#ifndef DEMI_KV_CMD_INT_H
#define DEMI_KV_CMD_INT_H

#include "cmd.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ctx {
    struct kv_server *s;
    struct kv_client *c;
    int argc;
    const struct resp_arg *argv;
    struct reply *r;
    int64_t now;
    const struct kv_cmd *cmd;
};

/*
 * One row of the command table: everything COMMAND, COMMAND INFO and
 * COMMAND DOCS report, the arity kv_exec checks, and the flags it acts on
 * ("write" commands go through the append-only log, "denyoom" ones are
 * refused over maxmemory). The keys are at first, first + step, ...,
 * last (negative: counted from the end); kv_exec and the key specs of
 * COMMAND INFO use them.
 */
struct kv_cmd {
    const char *name;     /* lower case */
    const char *fullname; /* "config|get" for a subcommand */
    int arity;            /* n: exactly n arguments; -n: at least n */
    void (*fn)(struct ctx *x);
    const char *flags; /* COMMAND INFO flags, space separated; "write" first when present */
    const char *acl;   /* ACL categories, space separated */
    int first, last, step;
    const char *group, *since, *complexity, *summary;
    const struct kv_cmd *subs;
    int nsubs;
    /*
     * COMMAND INFO's key specs, when first/last/step and the flags do not
     * say it all (NULL: one spec from them, see command_keyspecs in
     * cmd.c). Specs are separated by ';', each "<begin>[:<find>] FLAG...":
     * <begin> the index of the first key; <find> "lastkey,keystep,limit"
     * (a range; "0,1,0" when omitted) or "#keynumidx,firstkey,keystep" (the
     * number of keys is an argument); FLAGs Redis's (RW, OW, RM, RO,
     * access, update, insert, delete, ...). E.g. RENAME's
     * "1 RW access delete;2 OW update".
     */
    const char *keyspecs;
    const char *tips; /* COMMAND INFO's tips, space separated, or NULL */
    /*
     * COMMAND DOCS's arguments (redis-cli's hints), in the usage syntax of
     * Redis's documentation, or NULL: "key seconds:integer value" names
     * each argument (":type" when not a string; type "key" for keys, which
     * get the key specs in order); an upper-case word is a token, with the
     * argument after it when that one is lower case ("EX seconds:integer"),
     * else a pure token; "[...]" is optional, "(...)" a group, "a|b" a
     * oneof, several arguments in a group a block, "{name}" at a group's
     * start its name, "..." after an argument or group makes it multiple.
     */
    const char *args;
};

/* Most members SRANDMEMBER and HRANDFIELD draw for a negative count.
 * Members may repeat there, so the count alone sets the work and the
 * reply's size; Redis answers any count and blocks its loop as long as
 * that takes (seconds for 10^8). Here a larger count is refused ("value is
 * out of range"), which keeps one such command to tens of milliseconds. */
#define KV_RAND_MAX ((long long)1 << 20)

#define KV_CMD(n, a, f, fl, acl, fk, lk, st, grp, since, cx, summ)                                                     \
    {                                                                                                                  \
        n, n, a, f, fl, acl, fk, lk, st, grp, since, cx, summ, NULL, 0, NULL, NULL, NULL                               \
    }

/* KV_CMD with key specs, tips and DOCS arguments (each may be NULL). */
#define KV_CMDK(n, a, f, fl, acl, fk, lk, st, grp, since, cx, summ, ks, tips, args)                                    \
    {                                                                                                                  \
        n, n, a, f, fl, acl, fk, lk, st, grp, since, cx, summ, NULL, 0, ks, tips, args                                 \
    }

/* A group of commands, defined by the file that implements them and
 * listed in kv_cmd_tables (tables.c). */
struct kv_cmd_table {
    const struct kv_cmd *cmds;
    const size_t *n;
};
extern const struct kv_cmd_table kv_cmd_tables[];
extern const size_t kv_ncmd_tables;

/* The tables themselves. */
extern const struct kv_cmd kv_core_cmds[];
extern const size_t kv_core_ncmds;
extern const struct kv_cmd kv_hash_cmds[];
extern const size_t kv_hash_ncmds;
extern const struct kv_cmd kv_zset_cmds[];
extern const size_t kv_zset_ncmds;
extern const struct kv_cmd kv_server_cmds[];
extern const size_t kv_server_ncmds;
extern const struct kv_cmd kv_keys_cmds[];
extern const size_t kv_keys_ncmds;
extern const struct kv_cmd kv_list_cmds[];
extern const size_t kv_list_ncmds;
extern const struct kv_cmd kv_set_cmds[];
extern const size_t kv_set_ncmds;

/* ---- arguments ---- */

static inline const uint8_t *A(const struct ctx *x, int i)
{
    return x->argv[i].ptr;
}

static inline size_t L(const struct ctx *x, int i)
{
    return x->argv[i].len;
}

/* Case-insensitive comparison of a whole argument with a literal. */
bool arg_is(const struct resp_arg *a, const char *lit);
/* Argument i as Redis's strict integer; false after the error reply. */
bool arg_ll(struct ctx *x, int i, long long *out);
/* Argument i as a double, as Redis's getDoubleFromObjectOrReply (no NaN);
 * false after "ERR value is not a valid float". */
bool arg_double(struct ctx *x, int i, double *out);

/* Appends at most @max bytes of [p, p + n) to out (cap bytes, *len used),
 * stopping at a NUL byte, as printf's "%.*s" does with Redis's strings. */
void cat_upto(char *out, size_t cap, size_t *len, const uint8_t *p, size_t n, size_t max);
void cat_str(char *out, size_t cap, size_t *len, const char *s);

/* SCAN, SSCAN, HSCAN and ZSCAN's arguments. */
struct scan_args {
    uint64_t cursor;
    const struct resp_arg *match; /* NULL: every member */
    long long count;              /* 10 unless given */
    const struct resp_arg *type;  /* SCAN's TYPE, or NULL */
};
/* Parses the cursor at argument @i and the options after it (TYPE only
 * when @allow_type). false after Redis's error reply. */
bool scan_parse(struct ctx *x, int i, bool allow_type, struct scan_args *a);
/* Whether a member or key passes MATCH. */
bool scan_match(const struct scan_args *a, const uint8_t *p, size_t n);
/* Starts a SCAN reply: the next cursor, then an array of @n items that the
 * caller writes. */
void scan_reply_head(struct ctx *x, uint64_t next, long long n);

/* ---- errors (Redis's texts) ---- */

void errorf(struct ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void err_arity(struct ctx *x);
void err_syntax(struct ctx *x);
void err_int(struct ctx *x);
void err_expire(struct ctx *x);
/* Out of memory: the reply, and a request to the loop to free some. */
void err_oom(struct ctx *x);
/* "WRONGTYPE Operation against a key holding the wrong kind of value". */
void err_wrongtype(struct ctx *x);
/* Replies "-ERR ... (\r\n)" with the lines of a HELP subcommand. */
void help(struct ctx *x, const char *const *lines);

/* ---- keys ---- */

/* Looks key i up (lazy expiry included). */
struct kv_entry *lookup(struct ctx *x, int i);
/* A lookup that counts as a hit or a miss in INFO (GET-like reads). */
struct kv_entry *lookup_read(struct ctx *x, int i);
/* Looks key i up and gives its hash, for kv_insert/kv_insert_obj. */
struct kv_entry *lookup_h(struct ctx *x, int i, uint64_t *h);
/*
 * Looks key i up for a command on @type: returns the entry, or NULL with
 * *ok true when the key is absent, or NULL with *ok false after a
 * WRONGTYPE reply when it holds another type.
 */
struct kv_entry *lookup_type(struct ctx *x, int i, int type, bool *ok);

/*
 * What the append-only log records for the running command, when it is
 * not the command itself: a command with a random or time-dependent effect
 * (SPOP, SRANDMEMBER is read-only) calls this with the deterministic
 * command that has the same effect (SREM key m1 m2 ...). The arguments are
 * copied. 0 or ENOMEM (the command then must not change anything; it
 * replies OOM).
 */
int kv_propagate(struct ctx *x, int argc, const struct resp_arg *argv);

/* cmd.c: DEL key [key ...]; UNLINK (cmd_keys.c) is the same command here,
 * since values are freed at once either way (no lazy free). */
void kv_cmd_del(struct ctx *x);

/* t_server.c: around every command kv_exec runs (CLIENT LIST's cmd and
 * idle, SLOWLOG, MONITOR); kv_cmd_start returns what kv_cmd_done needs. */
int64_t kv_cmd_start(struct ctx *x);
void kv_cmd_done(struct ctx *x, int64_t t0);
/* A reply builder whose replies are dropped (CLIENT REPLY OFF and SKIP). */
void kv_reply_sink(struct reply *r);
/* The slow log: 0 or ENOMEM; its length limit (CONFIG SET). */
int kv_slowlog_init(struct kv_server *s);
void kv_slowlog_free(struct kv_server *s);
void kv_slowlog_max_len(struct kv_server *s, uint64_t max);

/* A collection's free space may only be counted by its owner, who calls
 * kv_obj_account (store.h) with every change of the bytes it holds. */

#endif
