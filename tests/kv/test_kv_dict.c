/*
 * apps/kv/dict.c on its own: membership against a plain array model under
 * random adds and removes (through growth and shrinking), the byte count
 * returning to zero, dict_random's fairness, and dict_scan's guarantee
 * (every member present for the whole scan is returned) while members
 * come and go between calls; each also while an incremental rehash (growth
 * or shrink) is in progress, which the test checks it did reach.
 */
#include "dict.h"
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(c, ...)                                                                                                  \
    do {                                                                                                               \
        if (!(c)) {                                                                                                    \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                                       \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fprintf(stderr, "\n");                                                                                     \
            failures++;                                                                                                \
        }                                                                                                              \
    } while (0)

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

#define N 4000

static void key(int i, char *buf, size_t *len)
{
    *len = (size_t)snprintf(buf, 32, "member:%d", i);
}

static void count_fn(struct dict_ent *e, void *arg)
{
    (void)e;
    (*(size_t *)arg)++;
}

static void model(void)
{
    static bool in[N];
    struct dict d;
    dict_init(&d);
    size_t count = 0, grow_ops = 0, shrink_ops = 0;
    for (int round = 0; round < 200000; round++) {
        int i = (int)(rnd() % N);
        char k[32];
        size_t kl;
        key(i, k, &kl);
        /* Phases that grow and that shrink the table. */
        bool add = (round / 20000) % 2 == 0 ? rnd() % 4 != 0 : rnd() % 16 == 0;
        if (add) {
            bool added;
            struct dict_ent *e = dict_add(&d, k, kl, &added);
            CHECK(e && added == !in[i], "add %d: added %d, was in %d", i, added, in[i]);
            if (added)
                e->v.u64 = (uint64_t)i;
            count += !in[i];
            in[i] = true;
        } else {
            bool was = dict_delete(&d, k, kl);
            CHECK(was == in[i], "delete %d: %d, was in %d", i, was, in[i]);
            count -= in[i];
            in[i] = false;
        }
        CHECK(dict_size(&d) == count, "size %zu, model %zu", dict_size(&d), count);
        CHECK(kv_obj_bytes() == dict_mem(&d), "round %d: accounted %llu, dict %zu", round,
              (unsigned long long)kv_obj_bytes(), dict_mem(&d));
        if (dict_rehashing(&d)) {
            /* Mid-rehash: lookups of members on either side of the rehash
             * cursor, and a walk that sees every member once. */
            if (d.mask1 > d.mask)
                grow_ops++;
            else
                shrink_ops++;
            int j = (int)(rnd() % N);
            key(j, k, &kl);
            struct dict_ent *f = dict_find(&d, k, kl);
            CHECK((f != NULL) == in[j] && (!f || f->v.u64 == (uint64_t)j), "find %d mid-rehash", j);
            if (round % 64 == 0) {
                size_t walked = 0;
                dict_foreach(&d, count_fn, &walked);
                CHECK(walked == count, "dict_foreach mid-rehash: %zu of %zu", walked, count);
            }
        }
    }
    CHECK(grow_ops > 100 && shrink_ops > 100, "rehash not exercised: %zu ops mid-growth, %zu mid-shrink", grow_ops,
          shrink_ops);
    for (int i = 0; i < N; i++) {
        char k[32];
        size_t kl;
        key(i, k, &kl);
        struct dict_ent *e = dict_find(&d, k, kl);
        CHECK((e != NULL) == in[i], "find %d", i);
        CHECK(!e || e->v.u64 == (uint64_t)i, "slot of %d", i);
    }
    CHECK(kv_obj_bytes() == dict_mem(&d), "accounted %llu, dict %zu", (unsigned long long)kv_obj_bytes(), dict_mem(&d));
    dict_clear(&d, NULL, NULL);
    CHECK(kv_obj_bytes() == 0, "bytes after clear: %llu", (unsigned long long)kv_obj_bytes());
}

/* Draws 1000 times per member and checks every member came about as
 * often: expected 1000 each, a fair draw stays within +-20% (over 6
 * sigma). */
static void check_fair(struct dict *d, const char *what)
{
    enum { PER = 1000, MAXM = 600 };
    static unsigned hits[MAXM];
    size_t m = dict_size(d);
    CHECK(m <= MAXM, "%s: %zu members", what, m);
    memset(hits, 0, sizeof(hits));
    for (size_t i = 0; i < m * PER; i++) {
        uint64_t v = dict_random(d)->v.u64;
        CHECK(v < MAXM, "%s: drew %llu", what, (unsigned long long)v);
        hits[v % MAXM]++;
    }
    unsigned lo = UINT32_MAX, hi = 0;
    size_t members = 0;
    for (int i = 0; i < MAXM; i++) {
        if (!hits[i])
            continue;
        members++;
        lo = hits[i] < lo ? hits[i] : lo;
        hi = hits[i] > hi ? hits[i] : hi;
    }
    CHECK(members == m, "%s: drew %zu distinct of %zu members", what, members, m);
    CHECK(lo > 800 && hi < 1200, "%s: drawn between %u and %u times (expected about 1000)", what, lo, hi);
}

static void add_member(struct dict *d, int i)
{
    char k[32];
    size_t kl;
    bool added;
    key(i, k, &kl);
    dict_add(d, k, kl, &added)->v.u64 = (uint64_t)i;
}

static void fairness(void)
{
    enum { M = 300 };
    struct dict d;
    dict_init(&d);
    for (int i = 0; i < M; i++)
        add_member(&d, i);
    check_fair(&d, "dict_random");
    dict_clear(&d, NULL, NULL);

    /* Mid-growth: 256 buckets doubling at the 257th member, one more
     * added while the rehash goes on. */
    dict_init(&d);
    int i = 0;
    while (!(dict_rehashing(&d) && d.mask + 1 >= 256))
        add_member(&d, i++);
    add_member(&d, i++);
    CHECK(dict_rehashing(&d) && d.rehash > 0 && d.mask1 > d.mask, "not mid-growth (moved %zu)", d.rehash);
    check_fair(&d, "dict_random mid-growth");
    /* Mid-shrink: remove members until the table halves. */
    while (dict_rehashing(&d))
        add_member(&d, i++);
    while (!dict_rehashing(&d)) {
        char k[32];
        size_t kl;
        key(--i, k, &kl);
        dict_delete(&d, k, kl);
    }
    CHECK(dict_rehashing(&d) && d.mask1 < d.mask, "not mid-shrink");
    check_fair(&d, "dict_random mid-shrink");
    dict_clear(&d, NULL, NULL);
    CHECK(kv_obj_bytes() == 0, "bytes after clear: %llu", (unsigned long long)kv_obj_bytes());
}

struct seen {
    unsigned char *mark;
};

static void scan_fn(struct dict_ent *e, void *arg)
{
    struct seen *s = arg;
    s->mark[e->v.u64] = 1;
}

static void scan(void)
{
    /* Members 0..999 stay for the whole scan; 1000..N-1 come and go
     * between calls, enough to grow and shrink the table. */
    struct dict d;
    dict_init(&d);
    for (int i = 0; i < 1000; i++) {
        char k[32];
        size_t kl;
        bool added;
        key(i, k, &kl);
        dict_add(&d, k, kl, &added)->v.u64 = (uint64_t)i;
    }
    unsigned char mark[N] = {0};
    struct seen s = {mark};
    uint64_t cursor = 0;
    int calls = 0;
    do {
        cursor = dict_scan(&d, cursor, 10, scan_fn, &s);
        calls++;
        int churn = calls % 40 < 20 ? 150 : -150;
        for (int j = 0; j < (churn > 0 ? churn : -churn); j++) {
            int i = 1000 + (int)(rnd() % (N - 1000));
            char k[32];
            size_t kl;
            bool added;
            key(i, k, &kl);
            if (churn > 0) {
                struct dict_ent *e = dict_add(&d, k, kl, &added);
                e->v.u64 = (uint64_t)i;
            } else {
                dict_delete(&d, k, kl);
            }
        }
    } while (cursor != 0 && calls < 1000000);
    int missing = 0;
    for (int i = 0; i < 1000; i++)
        missing += !mark[i];
    CHECK(cursor == 0, "the scan did not end");
    CHECK(missing == 0, "%d of 1000 stable members not returned by the scan (%d calls)", missing, calls);
    dict_clear(&d, NULL, NULL);
}

/* Members 0..39 stay for the whole of each scan; others are added, then
 * removed, a couple between calls of one bucket each (between 40 and 1540
 * members, 64 to 2048 buckets), so that many calls find a rehash in
 * progress, growing and shrinking. */
static void scan_mid_rehash(void)
{
    enum { STABLE = 40, SWING = 1500 };
    struct dict d;
    dict_init(&d);
    for (int i = 0; i < STABLE; i++)
        add_member(&d, i);
    static int live[N];
    int nlive = 0, ops = 0, grow_all = 0, shrink_all = 0, scans = 0;
    while (ops < 6 * SWING) {
        unsigned char mark[N] = {0};
        struct seen s = {mark};
        uint64_t cursor = 0;
        int calls = 0;
        do {
            cursor = dict_scan(&d, cursor, 1, scan_fn, &s);
            calls++;
            if (dict_rehashing(&d) && d.mask1 > d.mask)
                grow_all++;
            else if (dict_rehashing(&d))
                shrink_all++;
            for (int j = 0; j < 2; j++, ops++) {
                if ((ops / SWING) % 2 == 0) {
                    int i = STABLE + (int)(rnd() % (N - STABLE));
                    char k[32];
                    size_t kl;
                    key(i, k, &kl);
                    if (!dict_find(&d, k, kl)) {
                        add_member(&d, i);
                        live[nlive++] = i;
                    }
                } else if (nlive > 0) {
                    /* A random one of those added: the table empties
                     * everywhere. */
                    size_t r = (size_t)(rnd() % (size_t)nlive);
                    char k[32];
                    size_t kl;
                    key(live[r], k, &kl);
                    CHECK(dict_delete(&d, k, kl), "member %d gone", live[r]);
                    live[r] = live[--nlive];
                }
            }
        } while (cursor != 0 && calls < 1000000);
        int missing = 0;
        for (int i = 0; i < STABLE; i++)
            missing += !mark[i];
        CHECK(cursor == 0, "scan %d: the scan did not end", scans);
        CHECK(missing == 0, "scan %d: %d of %d stable members not returned (%d calls)", scans, missing, STABLE, calls);
        scans++;
    }
    printf("scan mid-rehash: %d scans, %d calls mid-growth, %d mid-shrink\n", scans, grow_all, shrink_all);
    CHECK(grow_all > 50 && shrink_all > 50, "scans mid-rehash: %d calls mid-growth, %d mid-shrink", grow_all,
          shrink_all);
    dict_clear(&d, NULL, NULL);
    CHECK(kv_obj_bytes() == 0, "bytes after clear: %llu", (unsigned long long)kv_obj_bytes());
}

int main(void)
{
    model();
    fairness();
    scan();
    scan_mid_rehash();
    if (failures) {
        fprintf(stderr, "test_kv_dict: %d failures\n", failures);
        return 1;
    }
    printf("test_kv_dict: model, fairness and scan checks passed (also mid-rehash)\n");
    return 0;
}
