/*
 * Unit test of demi-kv's lists (apps/kv/t_list.c) beyond what the
 * comparison with redis-server sees: the bytes a list holds are all
 * counted (kv_obj_bytes goes back to where it was once the lists are
 * gone, and equals the sum of the lists' MEMORY USAGE while they live),
 * a ring that held many elements shrinks when they leave, and the AOF
 * rewrite emits RPUSH commands of at most 64 elements or about 1 MiB that
 * rebuild the same list.
 */
#include "cmd.h"
#include "cmd_int.h"
#include "tcheck.h"
#include "kvsink.h"

#include <demi/libos.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static struct kv_server srv;
static struct kv_client cl;
static struct reply rep;

/* Runs one command given as arguments; the reply lands in sink. */
static void run(int argc, const struct resp_arg *argv)
{
    sink_exec(&srv, &cl, &rep, argc, argv);
}

static void run_str(const char *line)
{
    struct resp_arg argv[16];
    char copy[256];
    int argc = 0;
    snprintf(copy, sizeof(copy), "%s", line);
    for (char *save = NULL, *t = strtok_r(copy, " ", &save); t && argc < 16; t = strtok_r(NULL, " ", &save)) {
        argv[argc].ptr = (const uint8_t *)t;
        argv[argc].len = strlen(t);
        argc++;
    }
    run(argc, argv);
}

static void expect(const char *line, const char *want)
{
    run_str(line);
    if (sink.len != strlen(want) || memcmp(sink.buf, want, sink.len) != 0) {
        fprintf(stderr, "for %s\n got  [%.*s]\n want [%s]\n", line, (int)sink.len, (const char *)sink.buf, want);
        exit(1);
    }
}

/* RPUSH key e0 e1 ... with n elements of @size bytes, element i filled
 * with the byte 'a' + i % 26. */
static void push_n(const char *key, size_t n, size_t size)
{
    struct resp_arg *argv = calloc(n + 2, sizeof(*argv));
    uint8_t *bytes = malloc(n * size + 1);
    CHECK(argv && bytes);
    argv[0].ptr = (const uint8_t *)"RPUSH";
    argv[0].len = 5;
    argv[1].ptr = (const uint8_t *)key;
    argv[1].len = strlen(key);
    for (size_t i = 0; i < n; i++) {
        memset(bytes + i * size, 'a' + (int)(i % 26), size);
        argv[2 + i].ptr = bytes + i * size;
        argv[2 + i].len = size;
    }
    run((int)n + 2, argv);
    free(argv);
    free(bytes);
}

static struct kv_entry *entry(const char *key)
{
    return kv_lookup(&srv.store, (const uint8_t *)key, strlen(key), kv_now_ms());
}

static size_t mem_of(const char *key)
{
    struct kv_entry *e = entry(key);
    CHECK(e && e->type == KV_LIST);
    return kv_types[KV_LIST]->mem(e->obj);
}

static void test_accounting(void)
{
    uint64_t base = kv_obj_bytes();
    push_n("a", 1000, 10);
    push_n("b", 3, 100000);
    CHECK_EQ(kv_obj_bytes() - base, mem_of("a") + mem_of("b"));
    /* 1000 elements of 10 bytes: at least the bytes, and a ring of 1024. */
    CHECK(mem_of("a") >= 1000 * 10 + 1024 * sizeof(void *));
    CHECK_EQ(kv_types[KV_LIST]->count(entry("a")->obj), 1000);

    /* Moves between lists keep the total and move the bytes. */
    size_t b_before = mem_of("b");
    for (int i = 0; i < 3; i++)
        run_str("LMOVE b a LEFT RIGHT");
    CHECK(entry("b") == NULL);
    CHECK_EQ(kv_obj_bytes() - base, mem_of("a"));
    CHECK(mem_of("a") > b_before);

    /* Removals of every kind, then the ring shrinks: 3 elements left of
     * 1003 hold far less than the 1024-slot ring did. */
    size_t big = mem_of("a");
    run_str("LPOP a 500");
    run_str("RPOP a 3");
    run_str("LTRIM a 10 -10");
    run_str("LREM a 0 a");
    run_str("LREM a -5 b");
    run_str("LSET a 0 replaced");
    run_str("LINSERT a BEFORE replaced new");
    run_str("LTRIM a 0 2");
    CHECK_EQ(kv_types[KV_LIST]->count(entry("a")->obj), 3);
    CHECK_EQ(kv_obj_bytes() - base, mem_of("a"));
    CHECK(mem_of("a") < big / 20);
    CHECK(mem_of("a") < 300);

    run_str("DEL a");
    CHECK_EQ(kv_obj_bytes(), base);

    /* Elements of up to 7 bytes live in the ring's slots: no allocation
     * of their own, 8 bytes each. */
    push_n("s", 1000, 7);
    CHECK_EQ(kv_obj_bytes() - base, mem_of("s"));
    CHECK(mem_of("s") <= 1024 * sizeof(void *) + 64);
    push_n("s", 1, 8);
    CHECK(mem_of("s") > 1024 * sizeof(void *) + 8);
    run_str("LMOVE s s RIGHT LEFT");
    expect("LINDEX s 0", "$8\r\naaaaaaaa\r\n");
    expect("LINDEX s 1", "$7\r\naaaaaaa\r\n");
    run_str("DEL s");
    CHECK_EQ(kv_obj_bytes(), base);

    /* Lists that emptied themselves, and FLUSHALL, free everything. */
    push_n("c", 100, 5);
    run_str("LPOP c 100");
    CHECK(entry("c") == NULL);
    push_n("d", 10, 5);
    run_str("LTRIM d 5 1");
    CHECK(entry("d") == NULL);
    push_n("e", 10, 1);
    run_str("LREM e 0 a");
    run_str("LREM e 0 b");
    push_n("f", 50, 3);
    push_n("g", 7, 3);
    run_str("FLUSHALL");
    CHECK_EQ(kv_obj_bytes(), base);
}

/* The rewrite's commands, replayed into another key. */
struct replay {
    int commands;
    int max_elems;
    size_t max_bytes;
    const char *into;
};

static int emit(void *arg, int argc, const struct resp_arg *argv)
{
    struct replay *r = arg;
    CHECK(argc >= 3);
    CHECK(argv[0].len == 5 && memcmp(argv[0].ptr, "RPUSH", 5) == 0);
    size_t bytes = 0;
    for (int i = 2; i < argc; i++)
        bytes += argv[i].len;
    r->commands++;
    if (argc - 2 > r->max_elems)
        r->max_elems = argc - 2;
    if (bytes > r->max_bytes)
        r->max_bytes = bytes;
    struct resp_arg *copy = malloc((size_t)argc * sizeof(*copy));
    CHECK(copy);
    memcpy(copy, argv, (size_t)argc * sizeof(*copy));
    copy[1].ptr = (const uint8_t *)r->into;
    copy[1].len = strlen(r->into);
    /* kv_exec writes to the sink: keep what the caller compares. */
    uint8_t *saved = sink.buf;
    size_t len = sink.len, cap = sink.cap;
    sink.buf = NULL;
    sink.cap = 0;
    run(argc, copy);
    sink_free();
    sink.buf = saved;
    sink.len = len;
    sink.cap = cap;
    free(copy);
    return 0;
}

static int emit_fail(void *arg, int argc, const struct resp_arg *argv)
{
    (void)argc;
    (void)argv;
    ++*(int *)arg;
    return EIO;
}

static void same_lists(const char *a, const char *b)
{
    char line[64];
    snprintf(line, sizeof(line), "LRANGE %s 0 -1", a);
    run_str(line);
    uint8_t *want = malloc(sink.len);
    size_t wn = sink.len;
    CHECK(want);
    memcpy(want, sink.buf, wn);
    snprintf(line, sizeof(line), "LRANGE %s 0 -1", b);
    run_str(line);
    CHECK(sink.len == wn && memcmp(sink.buf, want, wn) == 0);
    free(want);
}

static void test_rewrite(void)
{
    /* 200 small elements after pops and pushes at the head (a wrapped
     * ring): 64 + 64 + 64 + 8. */
    push_n("r", 200, 7);
    run_str("LPOP r 3");
    run_str("LPUSH r x y z");
    struct kv_entry *e = entry("r");
    struct replay rp = {.into = "r2"};
    CHECK_EQ(kv_types[KV_LIST]->rewrite(e->obj, e->key, e->klen, emit, &rp), 0);
    CHECK_EQ(rp.commands, 4);
    CHECK_EQ(rp.max_elems, 64);
    same_lists("r", "r2");

    /* Elements of 300 KiB: four make a command of 1.2 MiB, none more. */
    push_n("big", 10, 300 * 1024);
    e = entry("big");
    struct replay rb = {.into = "big2"};
    CHECK_EQ(kv_types[KV_LIST]->rewrite(e->obj, e->key, e->klen, emit, &rb), 0);
    CHECK_EQ(rb.commands, 3);
    CHECK_EQ(rb.max_elems, 4);
    CHECK(rb.max_bytes <= (1 << 20) + 300 * 1024);
    same_lists("big", "big2");

    /* The first error of the emitter stops the rewrite. */
    int calls = 0;
    CHECK_EQ(kv_types[KV_LIST]->rewrite(e->obj, e->key, e->klen, emit_fail, &calls), EIO);
    CHECK_EQ(calls, 1);
    run_str("FLUSHALL");
}

static void test_bounds(void)
{
    /* Counts and indexes far past the list are clamped, not allocated. */
    push_n("h", 3, 1);
    expect("LRANGE h -9223372036854775808 9223372036854775807", "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n");
    expect("LPOS h b COUNT 9223372036854775807 MAXLEN 9223372036854775807", "*1\r\n:1\r\n");
    expect("LPOS h a RANK -9223372036854775808", ":0\r\n");
    expect("LREM h -9223372036854775808 c", ":1\r\n");
    expect("LPOP h 9223372036854775807", "*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    expect("EXISTS h", ":0\r\n");
}

int main(void)
{
    sink_begin(&srv, &cl, &rep, NULL);

    test_accounting();
    test_rewrite();
    test_bounds();

    sink_end(&srv, &cl, &rep);
    printf("ok\n");
    return 0;
}
