/*
 * Unit test of demi-kv's hashes (apps/kv/t_hash.c) without a network:
 * the AOF rewrite of a hash (HSET commands of at most 64 pairs or about
 * 1 MiB, which rebuild it exactly, an emit error stopping it), what the
 * log records for HINCRBYFLOAT (the HSET of its result), and the bytes
 * hashes account for (back to zero once they are gone), and random
 * argument vectors, hostile numbers included, for every hash command
 * (one well-formed reply each; run it under DEMI_SANITIZE). The replies
 * themselves are compared with redis-server by vs_redis_hash.py.
 */
#include "cmd.h"
#include "cmd_int.h"
#include "tcheck.h"
#include "kvsink.h"

#include <demi/libos.h>

#include <errno.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct kv_server srv;
static struct kv_client cl;
static struct reply rep;

/* Runs one command given as NUL-terminated strings (with explicit
 * lengths where they hold binary bytes) and returns its reply, valid
 * until the next run. */
static const char *run(int argc, const struct resp_arg *argv)
{
    return sink_exec(&srv, &cl, &rep, argc, argv);
}

static struct resp_arg S(const char *s) {
    return (struct resp_arg){.ptr = (const uint8_t *)s, .len = strlen(s)};
}

static const char *
run3(const char *a, const char *b, const char *c)
{
    struct resp_arg v[3] = {S(a), S(b), S(c)};
    return run(3, v);
}

static const char *run4(const char *a, const char *b, const char *c, const char *d)
{
    struct resp_arg v[4] = {S(a), S(b), S(c), S(d)};
    return run(4, v);
}

/* The value of field i of the test hashes: its length varies, and big
 * hashes hold values of 300 kB. */
static size_t value_of(int key, int i, uint8_t *out, size_t cap)
{
    size_t n = key == 1 ? (size_t)(i % 90) : (size_t)300000 + (size_t)i;
    CHECK(n <= cap);
    for (size_t k = 0; k < n; k++)
        out[k] = (uint8_t)(k * 7 + (size_t)i + (size_t)key);
    return n;
}

static int nfields(int key)
{
    return key == 1 ? 1000 : 9;
}

static uint8_t vbuf[400000];

static void fill(int key)
{
    char k[8], f[32];
    snprintf(k, sizeof(k), "h%d", key);
    for (int i = 0; i < nfields(key); i++) {
        snprintf(f, sizeof(f), "field\r\n%d", i);
        struct resp_arg v[4] = {S("HSET"), S(k), S(f), {.ptr = vbuf, .len = value_of(key, i, vbuf, sizeof(vbuf))}};
        CHECK_EQ(strcmp(run(4, v), ":1\r\n"), 0);
    }
}

static void check_hash(int key)
{
    char k[8], f[32], want[32];
    snprintf(k, sizeof(k), "h%d", key);
    snprintf(want, sizeof(want), ":%d\r\n", nfields(key));
    struct resp_arg hl[2] = {S("HLEN"), S(k)};
    CHECK_EQ(strcmp(run(2, hl), want), 0);
    for (int i = 0; i < nfields(key); i++) {
        snprintf(f, sizeof(f), "field\r\n%d", i);
        size_t n = value_of(key, i, vbuf, sizeof(vbuf));
        const char *got = run3("HGET", k, f);
        char head[32];
        int hn = snprintf(head, sizeof(head), "$%zu\r\n", n);
        CHECK_EQ(sink.len, (size_t)hn + n + 2);
        CHECK(memcmp(got, head, (size_t)hn) == 0 && memcmp(got + hn, vbuf, n) == 0);
    }
}

/* The commands a rewrite emitted, copied. */
struct cmdlog {
    struct resp_arg *argv[256];
    int argc[256];
    int n;
    int fail_at; /* emit fails with EIO on this call (0: never) */
    int calls;
};

static int collect(void *arg, int argc, const struct resp_arg *argv)
{
    struct cmdlog *l = arg;
    l->calls++;
    if (l->fail_at && l->calls == l->fail_at)
        return EIO;
    CHECK(l->n < 256);
    struct resp_arg *a = calloc((size_t)argc, sizeof(*a));
    CHECK(a);
    for (int i = 0; i < argc; i++) {
        uint8_t *p = malloc(argv[i].len ? argv[i].len : 1);
        CHECK(p);
        memcpy(p, argv[i].ptr, argv[i].len);
        a[i] = (struct resp_arg){.ptr = p, .len = argv[i].len};
    }
    l->argv[l->n] = a;
    l->argc[l->n++] = argc;
    return 0;
}

static void cmdlog_free(struct cmdlog *l)
{
    for (int c = 0; c < l->n; c++) {
        for (int i = 0; i < l->argc[c]; i++)
            free((void *)l->argv[c][i].ptr);
        free(l->argv[c]);
    }
    l->n = 0;
}

static void test_rewrite(void)
{
    run(1, (struct resp_arg[]){S("FLUSHALL")});
    CHECK_EQ(kv_obj_bytes(), 0);
    fill(1);
    fill(2);
    CHECK(kv_types[KV_HASH] && strcmp(kv_types[KV_HASH]->name, "hash") == 0);
    static struct cmdlog log;
    for (int key = 1; key <= 2; key++) {
        char k[8];
        snprintf(k, sizeof(k), "h%d", key);
        struct kv_entry *e = kv_lookup(&srv.store, (const uint8_t *)k, strlen(k), srv.clock_ms());
        CHECK(e && e->type == KV_HASH);
        CHECK_EQ(kv_types[KV_HASH]->count(e->obj), (size_t)nfields(key));
        size_t mem = kv_types[KV_HASH]->mem(e->obj);
        CHECK(mem > (key == 1 ? 1000u * 45 : 9u * 300000));
        int first = log.n;
        CHECK_EQ(kv_types[KV_HASH]->rewrite(e->obj, e->key, e->klen, collect, &log), 0);
        int pairs = 0;
        for (int c = first; c < log.n; c++) {
            int argc = log.argc[c];
            const struct resp_arg *a = log.argv[c];
            CHECK(argc >= 4 && argc % 2 == 0 && argc <= 2 + 2 * 64);
            CHECK(a[0].len == 4 && memcmp(a[0].ptr, "HSET", 4) == 0);
            CHECK(a[1].len == strlen(k) && memcmp(a[1].ptr, k, a[1].len) == 0);
            /* At most 1 MiB before the last pair. */
            size_t bytes = 0;
            for (int i = 2; i < argc - 2; i++)
                bytes += a[i].len;
            CHECK(bytes < ((size_t)1 << 20));
            pairs += (argc - 2) / 2;
        }
        CHECK_EQ(pairs, nfields(key));
        /* 1000 small pairs: 16 commands of up to 64; 9 values of 300 kB:
         * four to a command at most. */
        CHECK_EQ(log.n - first, key == 1 ? 16 : 3);
    }
    run(1, (struct resp_arg[]){S("FLUSHALL")});
    CHECK_EQ(kv_obj_bytes(), 0);
    for (int c = 0; c < log.n; c++)
        CHECK_EQ(strncmp(run(log.argc[c], log.argv[c]), ":", 1), 0);
    cmdlog_free(&log);
    check_hash(1);
    check_hash(2);

    /* An emit error stops the rewrite and comes back. */
    struct kv_entry *e = kv_lookup(&srv.store, (const uint8_t *)"h1", 2, srv.clock_ms());
    log.fail_at = 2;
    log.calls = 0;
    CHECK_EQ(kv_types[KV_HASH]->rewrite(e->obj, e->key, e->klen, collect, &log), EIO);
    CHECK_EQ(log.calls, 2);
    CHECK_EQ(log.n, 1);
    cmdlog_free(&log);
    run(1, (struct resp_arg[]){S("FLUSHALL")});
    CHECK_EQ(kv_obj_bytes(), 0);
}

static void test_propagate(void)
{
    run(1, (struct resp_arg[]){S("FLUSHALL")});
    uint64_t dirty = srv.dirty;
    CHECK_EQ(strcmp(run4("HINCRBYFLOAT", "hf", "f", "10.5"), "$4\r\n10.5\r\n"), 0);
    CHECK_EQ(strcmp(run4("HINCRBYFLOAT", "hf", "f", "0.1"), "$4\r\n10.6\r\n"), 0);
    CHECK(srv.dirty == dirty + 2);
    CHECK_EQ(srv.prop_argc, 4);
    const char *want[4] = {"HSET", "hf", "f", "10.6"};
    for (int i = 0; i < 4; i++)
        CHECK(srv.prop_argv[i].len == strlen(want[i]) && memcmp(srv.prop_argv[i].ptr, want[i], strlen(want[i])) == 0);
    /* Commands that change nothing do not count. */
    dirty = srv.dirty;
    run4("HSETNX", "hf", "f", "x");
    run3("HDEL", "hf", "nofield");
    run3("HDEL", "nokey", "f");
    run4("HINCRBYFLOAT", "hf", "f", "inf");
    run4("HINCRBYFLOAT", "hf", "f", "abc");
    run4("HINCRBY", "hf", "f", "1");
    run4("HINCRBYFLOAT", "str", "f", "x");
    CHECK(srv.dirty == dirty);
    CHECK_EQ(strcmp(run4("HINCRBY", "hf", "n", "-3"), ":-3\r\n"), 0);
    CHECK_EQ(srv.prop_argc, 0); /* HINCRBY is logged as itself */
    CHECK(srv.dirty == dirty + 1);
    run(1, (struct resp_arg[]){S("FLUSHALL")});
    CHECK_EQ(kv_obj_bytes(), 0);
}

/* A negative count (fields may repeat) draws up to KV_RAND_MAX fields;
 * a larger one is refused before any work. */
static void test_rand_bound(void)
{
    run(1, (struct resp_arg[]){S("FLUSHALL")});
    CHECK_EQ(strcmp(run4("HSET", "hb", "f", "v"), ":1\r\n"), 0);
    CHECK_EQ(strncmp(run3("HRANDFIELD", "hb", "-1048576"), "*1048576\r\n", 10), 0);
    CHECK_EQ(strcmp(run3("HRANDFIELD", "hb", "-1048577"),
                    "-ERR value is out of range: a negative count draws at most 1048576 fields\r\n"),
             0);
    CHECK_EQ(strcmp(run4("HRANDFIELD", "hb", "-1048577", "WITHVALUES"),
                    "-ERR value is out of range: a negative count draws at most 1048576 fields\r\n"),
             0);
    run(1, (struct resp_arg[]){S("FLUSHALL")});
    CHECK_EQ(kv_obj_bytes(), 0);
}

/* One well-formed RESP2 reply at p (n bytes left): its length, or 0. */
static size_t resp_len(const char *p, size_t n, int depth)
{
    const char *eol = memchr(p, '\n', n);
    if (!eol || eol == p || eol[-1] != '\r' || depth > 4)
        return 0;
    size_t head = (size_t)(eol - p) + 1;
    long long v = strtoll(p + 1, NULL, 10);
    switch (p[0]) {
    case '+':
    case '-':
    case ':':
        return head;
    case '$':
        if (v < 0)
            return v == -1 ? head : 0;
        if (head + (size_t)v + 2 > n || memcmp(p + head + v, "\r\n", 2) != 0)
            return 0;
        return head + (size_t)v + 2;
    case '*': {
        if (v < 0)
            return 0;
        size_t off = head;
        for (long long i = 0; i < v; i++) {
            size_t m = resp_len(p + off, n - off, depth + 1);
            if (!m)
                return 0;
            off += m;
        }
        return off;
    }
    default:
        return 0;
    }
}

/* Random argument vectors for every hash command, hostile numbers
 * included: each gets exactly one well-formed reply, and the bytes the
 * hashes account for are back to zero once they are deleted. */
static void test_random_args(void)
{
    static const char *const names[] = {"HSET",  "HSETNX",  "HMSET",      "HGET",    "HMGET",   "HGETALL",
                                        "HDEL",  "HEXISTS", "HLEN",       "HSTRLEN", "HINCRBY", "HINCRBYFLOAT",
                                        "HKEYS", "HVALS",   "HRANDFIELD", "HSCAN",   "DEL"};
    static const char *const pool[] = {"k0",
                                       "k1",
                                       "k2",
                                       "s",
                                       "a",
                                       "b",
                                       "c",
                                       "",
                                       "0",
                                       "1",
                                       "-1",
                                       "5",
                                       "-5",
                                       "3",
                                       "-0",
                                       "1.5",
                                       "1e308",
                                       "-1e308",
                                       "inf",
                                       "-inf",
                                       "nan",
                                       "abc",
                                       "9223372036854775807",
                                       "-9223372036854775808",
                                       "9223372036854775808",
                                       "4611686018427387904",
                                       "-4611686018427387904",
                                       "-1048577",
                                       "18446744073709551615",
                                       "withvalues",
                                       "WITHVALUES",
                                       "count",
                                       "COUNT",
                                       "match",
                                       "MATCH",
                                       "type",
                                       "*",
                                       "a*",
                                       "[",
                                       "\\",
                                       " 1",
                                       "0x10",
                                       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"};
    const size_t npool = sizeof(pool) / sizeof(pool[0]);
    uint64_t seed = 0x16ull;
    run(1, (struct resp_arg[]){S("FLUSHALL")});
    run3("SET", "s", "v");
    int errors = 0, arrays = 0;
    for (int step = 0; step < 30000; step++) {
        struct resp_arg argv[10];
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        int argc = (seed >> 40) % 8 == 0 ? 1 + (int)((seed >> 33) % 9) : 3 + (int)((seed >> 33) % 3);
        argv[0] = S(names[(seed >> 45) % (sizeof(names) / sizeof(names[0]))]);
        for (int i = 1; i < argc; i++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            argv[i] = S(pool[i == 1                       ? (seed >> 33) % 4
                             : i == 2 && (seed >> 50) % 2 ? 4 + (seed >> 33) % 4
                                                          : (seed >> 33) % npool]);
        }
        const char *out = run(argc, argv);
        size_t m = resp_len(out, sink.len, 0);
        if (m == 0 || m != sink.len) {
            fprintf(stderr, "step %d: %s with %d arguments: reply [%.*s]\n", step, (const char *)argv[0].ptr, argc,
                    (int)(sink.len < 200 ? sink.len : 200), out);
            exit(1);
        }
        errors += out[0] == '-';
        arrays += out[0] == '*' && out[1] != '0';
    }
    /* The draw reaches past the argument checks often enough. */
    printf("random arguments: %d errors, %d non-empty arrays in 30000 replies\n", errors, arrays);
    CHECK(errors < 25000 && arrays > 1000);
    run(1, (struct resp_arg[]){S("FLUSHALL")});
    CHECK_EQ(kv_obj_bytes(), 0);
}

int main(void)
{
    sink_begin(&srv, &cl, &rep, NULL);

    test_rewrite();
    test_propagate();
    test_rand_bound();
    test_random_args();

    sink_end(&srv, &cl, &rep);
    printf("ok\n");
    return 0;
}
