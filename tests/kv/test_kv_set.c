/*
 * Unit test of demi-kv's sets (apps/kv/t_set.c) without a network: what
 * the differential test against redis-server cannot see. Every byte a set
 * holds is counted (kv_obj_bytes equals the sum of the sets' own sizes, and
 * drops to 0 when they are gone, temporary results included); SPOP leaves
 * the log a deterministic SREM (or DEL) of exactly what it took; the AOF
 * rewrite of a set emits SADD commands of at most 64 members and 1 MiB
 * that rebuild it; a write that changes nothing leaves dirty alone; and
 * client-chosen counts stay bounded.
 */
#include "cmd_int.h"
#include "dict.h"
#include "tcheck.h"
#include "kvsink.h"

#include <demi/libos.h>

#include <stdlib.h>
#include <string.h>

static struct kv_server srv;
static struct kv_client cl;
static struct reply rep;

/* Runs one command given as NUL-terminated words; returns its reply
 * (valid until the next call). */
static const char *run(const char *const *words)
{
    struct resp_arg argv[4200];
    int argc = 0;
    for (; words[argc]; argc++) {
        argv[argc].ptr = (const uint8_t *)words[argc];
        argv[argc].len = strlen(words[argc]);
    }
    return sink_exec(&srv, &cl, &rep, argc, argv);
}

#define R(...) run((const char *const[]){__VA_ARGS__, NULL})

static void expect(const char *got, const char *want, int line)
{
    if (strcmp(got, want) != 0) {
        fprintf(stderr, "line %d: got [%s] want [%s]\n", line, got, want);
        exit(1);
    }
}

#define E(want, ...) expect(R(__VA_ARGS__), want, __LINE__)

/* SADD key m<from> ... m<to - 1> */
static void sadd_range(const char *key, int from, int to)
{
    static char names[4096][16]; /* "m" + any int + NUL */
    const char *words[4096 + 3] = {"SADD", key};
    int n = 2;
    for (int i = from; i < to; i++, n++) {
        snprintf(names[n], sizeof(names[n]), "m%d", i);
        words[n] = names[n];
    }
    words[n] = NULL;
    run(words);
}

static void sum_mem(void *arg, struct kv_entry *e)
{
    if (e->type == KV_SET)
        *(uint64_t *)arg += kv_types[KV_SET]->mem(e->obj);
}

/* The bytes the server counts for collections are those its sets hold. */
static void check_accounting(int line)
{
    uint64_t sum = 0;
    kv_foreach(&srv.store, sum_mem, &sum);
    if (sum != kv_obj_bytes()) {
        fprintf(stderr, "line %d: sets hold %llu bytes, kv_obj_bytes says %llu\n", line, (unsigned long long)sum,
                (unsigned long long)kv_obj_bytes());
        exit(1);
    }
}

static void test_accounting(void)
{
    CHECK_EQ(kv_obj_bytes(), 0);
    sadd_range("a", 0, 3000);
    sadd_range("b", 1500, 4000);
    check_accounting(__LINE__);
    CHECK(kv_obj_bytes() > 5500 * 16);
    E(":1500\r\n", "SINTERSTORE", "i", "a", "b");
    E(":4000\r\n", "SUNIONSTORE", "u", "a", "b");
    E(":1500\r\n", "SDIFFSTORE", "d", "a", "b");
    check_accounting(__LINE__);
    R("SUNION", "a", "b");
    R("SDIFF", "a", "b");
    R("SINTER", "a", "b");
    check_accounting(__LINE__);
    R("SPOP", "u", "3900");
    R("SPOP", "u", "50");
    R("SPOP", "u");
    E(":49\r\n", "SCARD", "u");
    R("SRANDMEMBER", "a", "2000");
    R("SRANDMEMBER", "a", "20");
    E(":1\r\n", "SMOVE", "d", "new", "m0");
    E(":51\r\n", "SREM", "a", "m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9", "m10", "m11", "m12", "m13",
      "m14", "m15", "m16", "m17", "m18", "m19", "m20", "m21", "m22", "m23", "m24", "m25", "m26", "m27", "m28", "m29",
      "m30", "m31", "m32", "m33", "m34", "m35", "m36", "m37", "m38", "m39", "m40", "m41", "m42", "m43", "m44", "m45",
      "m46", "m47", "m48", "m49", "m50", "zz");
    check_accounting(__LINE__);
    E(":6\r\n", "DEL", "a", "b", "i", "u", "d", "new");
    CHECK_EQ(kv_obj_bytes(), 0);
    sadd_range("a", 0, 100);
    E("+OK\r\n", "SET", "s", "x");
    E(":100\r\n", "SUNIONSTORE", "s", "a");
    check_accounting(__LINE__);
    E("+OK\r\n", "FLUSHALL");
    CHECK_EQ(kv_obj_bytes(), 0);
}

static bool prop_is(int i, const char *w)
{
    return srv.prop_argv[i].len == strlen(w) && memcmp(srv.prop_argv[i].ptr, w, strlen(w)) == 0;
}

/* SPOP's log record: SREM key, then exactly the members it took. */
static void test_spop_propagation(void)
{
    sadd_range("p", 0, 200);
    uint64_t dirty = srv.dirty;
    for (int round = 0; round < 3; round++) {
        const char *counts[] = {"1", "10", "150"};
        R("SPOP", "p", counts[round]);
        size_t size_before = round == 0 ? 200 : round == 1 ? 199 : 189;
        size_t n = (size_t)atoi(counts[round]);
        CHECK_EQ(srv.dirty, dirty + 1);
        dirty = srv.dirty;
        CHECK_EQ(srv.prop_argc, (int)n + 2);
        CHECK(prop_is(0, "SREM") && prop_is(1, "p"));
        /* Every member named was one of the set's, and the reply named
         * it (SCARD below shows they are gone). */
        for (size_t i = 0; i < n; i++) {
            char m[64];
            snprintf(m, sizeof(m), "%.*s", (int)srv.prop_argv[2 + i].len, (const char *)srv.prop_argv[2 + i].ptr);
            CHECK(m[0] == 'm' && atoi(m + 1) >= 0 && atoi(m + 1) < 200);
            char bulk[80];
            snprintf(bulk, sizeof(bulk), "\r\n%s\r\n", m);
            CHECK(strstr((const char *)sink.buf, bulk));
        }
        char card[32];
        snprintf(card, sizeof(card), ":%zu\r\n", size_before - n);
        E(card, "SCARD", "p");
    }
    /* All that is left: DEL key. */
    R("SPOP", "p", "1000");
    CHECK_EQ(srv.prop_argc, 2);
    CHECK(prop_is(0, "DEL") && prop_is(1, "p"));
    E(":0\r\n", "EXISTS", "p");
    /* Nothing popped, nothing logged. */
    dirty = srv.dirty;
    E("*0\r\n", "SPOP", "p", "5");
    E("$-1\r\n", "SPOP", "p");
    E("*0\r\n", "SPOP", "p", "0");
    CHECK_EQ(srv.dirty, dirty);
    CHECK_EQ(srv.prop_argc, 0);
    /* A single SPOP: SREM key member. */
    E(":1\r\n", "SADD", "p", "only");
    E("$4\r\nonly\r\n", "SPOP", "p");
    CHECK_EQ(srv.prop_argc, 3);
    CHECK(prop_is(0, "SREM") && prop_is(1, "p") && prop_is(2, "only"));
    E(":0\r\n", "EXISTS", "p");
}

/* A write that changes nothing is not logged (dirty stays). */
static void test_dirty(void)
{
    E(":2\r\n", "SADD", "q", "a", "b");
    uint64_t d = srv.dirty;
    E(":0\r\n", "SADD", "q", "a");
    E(":0\r\n", "SREM", "q", "zz");
    E(":0\r\n", "SREM", "nokey", "zz");
    E(":0\r\n", "SMOVE", "q", "r", "zz");
    E(":0\r\n", "SMOVE", "nokey", "r", "a");
    E(":1\r\n", "SMOVE", "q", "q", "a");
    CHECK_EQ(srv.dirty, d);
    E(":1\r\n", "SMOVE", "q", "r", "a");
    CHECK(srv.dirty > d);
    E("+OK\r\n", "FLUSHALL");
}

struct rw {
    int cmds;
    size_t members;
    char seen[3000];
    int big;
};

static int collect(void *arg, int argc, const struct resp_arg *argv)
{
    struct rw *w = arg;
    CHECK(argc >= 3 && argc <= 66);
    CHECK(argv[0].len == 4 && memcmp(argv[0].ptr, "SADD", 4) == 0);
    CHECK(argv[1].len == 2 && memcmp(argv[1].ptr, "rw", 2) == 0);
    size_t bytes = 0;
    for (int i = 2; i < argc; i++) {
        bytes += argv[i].len;
        if (argv[i].len > 100) {
            w->big++;
            continue;
        }
        char m[16];
        snprintf(m, sizeof(m), "%.*s", (int)argv[i].len, (const char *)argv[i].ptr);
        int k = atoi(m + 1);
        CHECK(k >= 0 && k < 3000 && !w->seen[k]);
        w->seen[k] = 1;
    }
    CHECK(argc == 3 || bytes <= ((size_t)1 << 20));
    w->cmds++;
    w->members += (size_t)(argc - 2);
    return 0;
}

static int refuse(void *arg, int argc, const struct resp_arg *argv)
{
    (void)argv;
    (void)argc;
    ++*(int *)arg;
    return 28; /* ENOSPC */
}

static void test_rewrite(void)
{
    sadd_range("rw", 0, 3000);
    struct kv_entry *e = kv_lookup(&srv.store, (const uint8_t *)"rw", 2, 0);
    CHECK(e && e->type == KV_SET);
    CHECK_EQ(kv_types[KV_SET]->count(e->obj), 3000);
    static struct rw w;
    CHECK_EQ(kv_types[KV_SET]->rewrite(e->obj, (const uint8_t *)"rw", 2, collect, &w), 0);
    CHECK_EQ(w.members, 3000);
    CHECK_EQ(w.cmds, (3000 + 63) / 64);
    /* Members of 400 KiB: two to a command at most. */
    char *big = malloc(400 * 1024 + 1);
    CHECK(big);
    for (int i = 0; i < 5; i++) {
        memset(big, 'A' + i, 400 * 1024);
        big[400 * 1024] = '\0';
        R("SADD", "rw", big);
    }
    free(big);
    memset(&w, 0, sizeof(w));
    CHECK_EQ(kv_types[KV_SET]->rewrite(e->obj, (const uint8_t *)"rw", 2, collect, &w), 0);
    CHECK_EQ(w.members, 3005);
    CHECK_EQ(w.big, 5);
    /* The first error stops it. */
    int calls = 0;
    CHECK_EQ(kv_types[KV_SET]->rewrite(e->obj, (const uint8_t *)"rw", 2, refuse, &calls), 28);
    CHECK_EQ(calls, 1);
    E("+OK\r\n", "FLUSHALL");
}

/* Counts a client chooses do not choose the work. */
static void test_bounds(void)
{
    E(":1\r\n", "SADD", "h", "m");
    const char *r = R("SRANDMEMBER", "h", "-9223372036854775807");
    CHECK(r[0] == '-');
    r = R("SRANDMEMBER", "h", "-1000000000");
    CHECK(r[0] == '-');
    /* Up to KV_RAND_MAX repeated draws are served, one more refused. */
    r = R("SRANDMEMBER", "h", "-1000");
    CHECK(strncmp(r, "*1000\r\n", 7) == 0);
    r = R("SRANDMEMBER", "h", "-1048576");
    CHECK(strncmp(r, "*1048576\r\n", 10) == 0);
    E("-ERR value is out of range: a negative count draws at most 1048576 members\r\n", "SRANDMEMBER", "h",
      "-1048577");
    E("*1\r\n$1\r\nm\r\n", "SRANDMEMBER", "h", "9223372036854775807");
    E("*1\r\n$1\r\nm\r\n", "SPOP", "h", "9223372036854775807");
    E("-ERR Number of keys can't be greater than number of args\r\n", "SINTERCARD", "2147483647", "h");
    E("-ERR Number of keys can't be greater than number of args\r\n", "SINTERCARD", "9223372036854775807", "h");
    sadd_range("h", 0, 100);
    r = R("SSCAN", "h", "0", "COUNT", "9223372036854775807");
    CHECK(strncmp(r, "*2\r\n$1\r\n0\r\n*100\r\n", 17) == 0);
    E("+OK\r\n", "FLUSHALL");
}

int main(void)
{
    sink_begin(&srv, &cl, &rep, NULL);

    test_accounting();
    test_spop_propagation();
    test_dirty();
    test_rewrite();
    test_bounds();
    check_accounting(__LINE__);
    CHECK_EQ(kv_obj_bytes(), 0);

    sink_end(&srv, &cl, &rep);
    printf("ok\n");
    return 0;
}
