/*
 * Unit test of demi-kv's sorted sets (apps/kv/t_zset.c).
 *
 * The skip list alone first: random inserts, score updates, deletes and
 * rank-range deletes checked after every step against a sorted array
 * (order, back links, every span, rank and by-rank lookups, score and lex
 * range ends, bytes counted). Then the type through kv_exec: the AOF
 * rewrite's ZADD chunks rebuild the same set, ZSCAN over a large set
 * returns every member, and deleting a set gives back every byte it
 * counted.
 */
#include "cmd.h"
#include "store.h"
#include "tcheck.h"
#include "kvsink.h"
#include "zset.h"

#include <demi/libos.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- the skip list against a sorted array ---- */

#define NMEM 400

struct model_ent {
    double score;
    uint8_t ele[8];
    uint32_t len;
    struct zsl_node *node;
};

static struct model_ent model[NMEM];
static size_t nmodel;
/* The members' bytes: the list points at them. */
static uint8_t names[NMEM][8];

static int model_cmp(const void *a, const void *b)
{
    const struct model_ent *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? -1 : 1;
    return zsl_cmp_ele(x->ele, x->len, y->ele, y->len);
}

static void model_sort(void)
{
    qsort(model, nmodel, sizeof(model[0]), model_cmp);
}

static ssize_t model_find(const uint8_t *ele, uint32_t len)
{
    for (size_t i = 0; i < nmodel; i++)
        if (model[i].len == len && memcmp(model[i].ele, ele, len) == 0)
            return (ssize_t)i;
    return -1;
}

static void model_remove(size_t i)
{
    memmove(&model[i], &model[i + 1], (nmodel - i - 1) * sizeof(model[0]));
    nmodel--;
}

/* Every structural property of the list, against the model. */
static void check_list(const struct zsl *z)
{
    CHECK_EQ(z->len, nmodel);
    CHECK(z->level >= 1 && z->level <= ZSL_MAXLEVEL);
    /* Level 0: order and back links. */
    const struct zsl_node *n = z->head->lv[0].fwd, *prev = NULL;
    size_t bytes = sizeof(struct zsl_node) + ZSL_MAXLEVEL * sizeof(struct zsl_level);
    for (size_t i = 0; i < nmodel; i++, prev = n, n = n->lv[0].fwd) {
        CHECK(n != NULL);
        CHECK(n == model[i].node);
        CHECK(n->score == model[i].score);
        CHECK(n->back == prev);
        CHECK_EQ(n->lv[0].span, n->lv[0].fwd ? 1 : n->lv[0].span);
        bytes += sizeof(struct zsl_node) + n->nlev * sizeof(struct zsl_level);
    }
    CHECK(n == NULL);
    CHECK(z->tail == prev);
    CHECK_EQ(z->bytes, bytes);
    /* Every level: each link's span is the distance in ranks. */
    for (int l = 0; l < z->level; l++) {
        size_t rank = 0;
        const struct zsl_node *x = z->head;
        while (x->lv[l].fwd) {
            size_t next = zsl_rank(z, x->lv[l].fwd);
            CHECK_EQ(x->lv[l].span, next - rank);
            rank = next;
            x = x->lv[l].fwd;
            CHECK((int)x->nlev > l);
        }
    }
    /* No level above z->level is in use. */
    for (int l = z->level; l < ZSL_MAXLEVEL; l++)
        CHECK(z->head->lv[l].fwd == NULL);
    CHECK(z->level == 1 || z->head->lv[z->level - 1].fwd != NULL);
    for (size_t i = 0; i < nmodel; i++) {
        CHECK_EQ(zsl_rank(z, model[i].node), i + 1);
        CHECK(zsl_by_rank(z, i + 1) == model[i].node);
    }
    CHECK(zsl_by_rank(z, 0) == NULL);
    CHECK(zsl_by_rank(z, nmodel + 1) == NULL);
}

/* First and last ranks of a score range, from the model. */
static void check_score_range(const struct zsl *z, const struct zrange_score *r)
{
    size_t first = 0, last = 0;
    for (size_t i = 0; i < nmodel; i++) {
        double s = model[i].score;
        bool in = (r->minex ? s > r->min : s >= r->min) && (r->maxex ? s < r->max : s <= r->max);
        if (in && !first)
            first = i + 1;
        if (in)
            last = i + 1;
    }
    size_t r1 = 0, r2 = 0;
    struct zsl_node *a = zsl_first_in_score(z, r, &r1), *b = zsl_last_in_score(z, r, &r2);
    if (!first) {
        CHECK(a == NULL && b == NULL);
        return;
    }
    CHECK(a == model[first - 1].node && r1 == first);
    CHECK(b == model[last - 1].node && r2 == last);
}

static void test_skiplist(uint64_t seed)
{
    uint64_t rs = seed;
    struct zsl z;
    uint64_t base = kv_obj_bytes();
    CHECK_EQ(zsl_init(&z, seed), 0);
    nmodel = 0;
    for (int i = 0; i < NMEM; i++)
        snprintf((char *)names[i], sizeof(names[i]), "m%03d", i);
    for (int step = 0; step < 3000; step++) {
        unsigned op = (unsigned)(trand(&rs) % 10);
        int m = (int)(trand(&rs) % NMEM);
        /* Few distinct scores, so ties ordered by member are common. */
        double score = (double)(trand(&rs) % 20) - 5;
        ssize_t at = model_find(names[m], 4);
        if (op < 5 && at < 0) {
            struct zsl_node *n = zsl_insert(&z, score, names[m], 4);
            CHECK(n != NULL);
            model[nmodel] = (struct model_ent){.score = score, .len = 4, .node = n};
            memcpy(model[nmodel].ele, names[m], 4);
            nmodel++;
        } else if (op < 7 && at >= 0) {
            zsl_update_score(&z, model[at].node, score);
            model[at].score = score;
        } else if (op < 9 && at >= 0) {
            zsl_delete_node(&z, model[at].node);
            model_remove((size_t)at);
        } else if (op == 9 && nmodel > 0 && trand(&rs) % 8 == 0) {
            size_t s = 1 + trand(&rs) % nmodel;
            size_t e = s + trand(&rs) % 5;
            if (e > nmodel)
                e = nmodel;
            CHECK_EQ(zsl_delete_rank_range(&z, s, e, NULL, NULL), e - s + 1);
            memmove(&model[s - 1], &model[e], (nmodel - e) * sizeof(model[0]));
            nmodel -= e - s + 1;
        }
        model_sort();
        if (step % 7 == 0 || nmodel < 10)
            check_list(&z);
        struct zrange_score r = {.min = (double)(trand(&rs) % 24) - 7,
                                 .max = (double)(trand(&rs) % 24) - 7,
                                 .minex = trand(&rs) & 1,
                                 .maxex = trand(&rs) & 1};
        check_score_range(&z, &r);
    }
    check_list(&z);
    zsl_free(&z);
    CHECK_EQ(kv_obj_bytes(), base);
}

/* Lex ranges on members of one score. */
static void test_lex(void)
{
    static const char *const mem[] = {"", "a", "a\0", "ab", "b", "ba", "c"};
    static const size_t len[] = {0, 1, 2, 2, 1, 2, 1};
    struct zsl z;
    CHECK_EQ(zsl_init(&z, 7), 0);
    for (int i = 6; i >= 0; i--)
        CHECK(zsl_insert(&z, 0, (const uint8_t *)mem[i], (uint32_t)len[i]));
    for (size_t i = 0; i < 7; i++) {
        const struct zsl_node *n = zsl_by_rank(&z, i + 1);
        CHECK(n->len == len[i] && memcmp(n->ele, mem[i], len[i]) == 0);
    }
    size_t r1, r2;
    struct zrange_lex all = {.minkind = LEX_MIN, .maxkind = LEX_MAX, .minex = true, .maxex = true};
    CHECK(zsl_first_in_lex(&z, &all, &r1) && zsl_last_in_lex(&z, &all, &r2) && r1 == 1 && r2 == 7);
    /* ["a", "b") holds a, a\0, ab. */
    struct zrange_lex ab = {
        .min = (const uint8_t *)"a", .minlen = 1, .max = (const uint8_t *)"b", .maxlen = 1, .maxex = true};
    CHECK(zsl_first_in_lex(&z, &ab, &r1) && zsl_last_in_lex(&z, &ab, &r2) && r1 == 2 && r2 == 4);
    /* ("a", "a"] is empty; "+" to "-" too. */
    struct zrange_lex none = {
        .min = (const uint8_t *)"a", .minlen = 1, .max = (const uint8_t *)"a", .maxlen = 1, .minex = true};
    CHECK(!zsl_first_in_lex(&z, &none, &r1) && !zsl_last_in_lex(&z, &none, &r2));
    struct zrange_lex rev = {.minkind = LEX_MAX, .maxkind = LEX_MIN, .minex = true, .maxex = true};
    CHECK(!zsl_first_in_lex(&z, &rev, &r1));
    zsl_free(&z);
}

/* ---- the type, through kv_exec ---- */

static struct kv_server srv;
static struct kv_client cl;

static int64_t fake_clock(void)
{
    return 1700000000000;
}

static struct reply rep;
/* Runs one command given as arguments; the reply is in sink. */
static void run(int argc, const struct resp_arg *argv)
{
    sink_exec(&srv, &cl, &rep, argc, argv);
}

static void runv(int argc, const char **args)
{
    struct resp_arg argv[16];
    CHECK(argc <= 16);
    for (int i = 0; i < argc; i++)
        argv[i] = (struct resp_arg){.ptr = (const uint8_t *)args[i], .len = strlen(args[i])};
    run(argc, argv);
}

#define RUN(...)                                                                                                       \
    do {                                                                                                               \
        const char *a_[] = {__VA_ARGS__};                                                                              \
        runv((int)(sizeof(a_) / sizeof(a_[0])), a_);                                                                   \
    } while (0)

static const struct kv_type_ops *zops(void)
{
    CHECK(kv_types[KV_ZSET] != NULL);
    return kv_types[KV_ZSET];
}

static struct kv_entry *entry(const char *key)
{
    return kv_lookup(&srv.store, (const uint8_t *)key, strlen(key), 0);
}

static int nemits, maxpairs;

/* Replays a rewrite's command under the key "copy" instead. */
static int replay(void *arg, int argc, const struct resp_arg *argv)
{
    (void)arg;
    CHECK(argc >= 4 && argc % 2 == 0);
    CHECK(argv[0].len == 4 && memcmp(argv[0].ptr, "ZADD", 4) == 0);
    struct resp_arg *a = malloc((size_t)argc * sizeof(*a));
    CHECK(a);
    memcpy(a, argv, (size_t)argc * sizeof(*a));
    a[1] = (struct resp_arg){.ptr = (const uint8_t *)"copy", .len = 4};
    nemits++;
    if ((argc - 2) / 2 > maxpairs)
        maxpairs = (argc - 2) / 2;
    run(argc, a);
    CHECK(sink.len > 0 && sink.buf[0] == ':');
    free(a);
    return 0;
}

static void test_type(void)
{
    uint64_t base = kv_obj_bytes();
    /* 1000 members with scores that need all 17 digits, ties, infinities. */
    uint64_t rs = 42;
    char sc[64], mem[32];
    for (int i = 0; i < 1000; i++) {
        double d = i % 50 == 0 ? (i % 100 ? 1.0 / 0.0 : -1.0 / 0.0) : (double)(trand(&rs) % 1000) / 7.0 - 50;
        snprintf(sc, sizeof(sc), "%.17g", d);
        snprintf(mem, sizeof(mem), "member:%d", i);
        RUN("ZADD", "z", sc, mem);
        CHECK(sink.len == 4 && memcmp(sink.buf, ":1\r\n", 4) == 0);
    }
    struct kv_entry *e = entry("z");
    CHECK(e && e->type == KV_ZSET);
    CHECK_EQ(zops()->count(e->obj), 1000);
    CHECK(zops()->mem(e->obj) > 1000 * 40);
    CHECK(kv_obj_bytes() - base >= zops()->mem(e->obj));

    /* The rewrite rebuilds the same set, 64 pairs a command at most. */
    CHECK_EQ(zops()->rewrite(e->obj, (const uint8_t *)"z", 1, replay, NULL), 0);
    CHECK_EQ(nemits, (1000 + 63) / 64);
    CHECK_EQ(maxpairs, 64);
    RUN("ZRANGE", "z", "0", "-1", "WITHSCORES");
    size_t n = sink.len;
    uint8_t *want = malloc(n);
    CHECK(want);
    memcpy(want, sink.buf, n);
    RUN("ZRANGE", "copy", "0", "-1", "WITHSCORES");
    CHECK(sink.len == n && memcmp(sink.buf, want, n) == 0);
    free(want);

    /* A full ZSCAN of a large set returns every member. */
    static bool seen[1000];
    char cursor[32] = "0";
    int rounds = 0;
    do {
        RUN("ZSCAN", "z", cursor, "COUNT", "7");
        /* *2 $n cursor *m then member/score pairs. */
        const char *p = (const char *)sink.buf;
        CHECK(strncmp(p, "*2\r\n$", 5) == 0);
        p = strchr(p + 5, '\n') + 1;
        const char *end = strchr(p, '\r');
        memcpy(cursor, p, (size_t)(end - p));
        cursor[end - p] = '\0';
        p = end + 2;
        CHECK(*p == '*');
        long items = strtol(p + 1, NULL, 10);
        CHECK(items % 2 == 0);
        p = strchr(p, '\n') + 1;
        for (long k = 0; k < items; k++) {
            long len = strtol(p + 1, NULL, 10);
            p = strchr(p, '\n') + 1;
            if (k % 2 == 0) {
                CHECK(len > 7 && memcmp(p, "member:", 7) == 0);
                int idx = atoi(p + 7);
                CHECK(idx >= 0 && idx < 1000);
                seen[idx] = true;
            }
            p += len + 2;
        }
        CHECK(++rounds < 10000);
    } while (strcmp(cursor, "0") != 0);
    for (int i = 0; i < 1000; i++)
        CHECK(seen[i]);
    CHECK(rounds > 10);

    /* Emptying a set deletes its key; every byte comes back. */
    RUN("ZREMRANGEBYRANK", "z", "0", "-1");
    CHECK(sink.len == 7 && memcmp(sink.buf, ":1000\r\n", 7) == 0);
    CHECK(entry("z") == NULL);
    RUN("ZPOPMIN", "copy", "2000");
    CHECK(entry("copy") == NULL);
    CHECK_EQ(kv_obj_bytes(), base);
    RUN("ZADD", "z", "1", "a");
    RUN("DEL", "z");
    CHECK_EQ(kv_obj_bytes(), base);
}

int main(void)
{
    for (uint64_t seed = 1; seed <= 4; seed++)
        test_skiplist(seed);
    test_lex();

    sink_begin(&srv, &cl, &rep, fake_clock);
    test_type();
    sink_end(&srv, &cl, &rep);
    printf("ok\n");
    return 0;
}
