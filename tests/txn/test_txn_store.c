/*
 * apps/txn/store.c on its own: versions and timestamp lookups (ESTALE once
 * discarded), last-writer-wins puts, OCC at prepare (stale reads, read and
 * write locks, timestamps, repeats, forced prepares), commit and abort,
 * the bounds on prepared transactions and bytes, the counters, the table
 * of remembered decisions (recorded, forgotten oldest first, refusing a
 * late prepare, learned from elsewhere, scanned), and a randomized run
 * against a plain array model of store.h's rules that must give the same
 * answers and leave the same contents. Each case runs in its
 * own process and, under ASan, checks for leaks before it ends; a failure
 * names its case. It must not depend on anything but store.c.
 */
#include "store.h"
#include "tcases.h"
#include "tcheck.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Present only under ASan/LSan; the leak check then runs per case. */
extern int __lsan_do_recoverable_leak_check(void) __attribute__((weak));

static struct txs *mk(uint32_t max_versions, uint32_t max_prepared, uint64_t max_bytes)
{
    struct txs_limits lim = {.max_versions = max_versions, .max_prepared = max_prepared, .max_bytes = max_bytes};
    struct txs *s = txs_create(&lim);
    CHECK(s != NULL);
    return s;
}

static struct txs_stats stats(const struct txs *s)
{
    struct txs_stats st;
    txs_get_stats(s, &st);
    return st;
}

static int put(struct txs *s, const char *k, const char *v, uint64_t ts)
{
    return txs_put(s, (const uint8_t *)k, strlen(k), (const uint8_t *)v, strlen(v), ts, NULL);
}

static void get_is(struct txs *s, const char *k, uint64_t ts, int rc, uint64_t ver, const char *val, int line)
{
    const uint8_t *p = NULL;
    size_t n = 0;
    uint64_t v = 99;
    int got = txs_get(s, (const uint8_t *)k, strlen(k), ts, &p, &n, &v);
    if (got != rc || v != ver || (val && (n != strlen(val) || memcmp(p, val, n) != 0))) {
        fprintf(stderr, "line %d: get %s at %llu: rc %d ver %llu (wanted rc %d ver %llu%s%s)\n", line, k,
                (unsigned long long)ts, got, (unsigned long long)v, rc, (unsigned long long)ver, val ? " val " : "",
                val ? val : "");
        exit(1);
    }
}
#define GET_IS(s, k, ts, rc, ver, val) get_is(s, k, ts, rc, ver, val, __LINE__)

static struct txn_op RD(const char *k, uint64_t ver) {
    return (struct txn_op){.key = {(const uint8_t *)k, (uint32_t)strlen(k)}, .ver = ver};
}

static struct txn_op
WR(const char *k, const char *v) {
    return (struct txn_op){.key = {(const uint8_t *)k, (uint32_t)strlen(k)},
                           .val = {(const uint8_t *)v, (uint32_t)strlen(v)}};
}

/* A set literal and its count, as txs_prepare takes them. */
#define OPS(...)                                                                                                       \
    ((const struct txn_op[]){__VA_ARGS__}), (uint32_t)(sizeof((struct txn_op[]){__VA_ARGS__}) / sizeof(struct txn_op))
#define NONE NULL, 0

/* Prepare, expecting RC and (for EAGAIN) WHY and CVER. */
#define PREP_IS(rc, why, cver, s, id, ts, force, ...)                                                                  \
    do {                                                                                                               \
        enum txs_conflict w_ = (enum txs_conflict)77;                                                                  \
        uint64_t c_ = 77;                                                                                              \
        int r_ = txs_prepare(s, id, ts, __VA_ARGS__, force, &w_, &c_);                                                 \
        if (r_ != (rc) || w_ != (why) || c_ != (uint64_t)(cver)) {                                                     \
            fprintf(stderr, "line %d: prepare %llu: rc %d why %d cver %llu (wanted %d %d %llu)\n", __LINE__,           \
                    (unsigned long long)(id), r_, (int)w_, (unsigned long long)c_, (int)(rc), (int)(why),              \
                    (unsigned long long)(cver));                                                                       \
            exit(1);                                                                                                   \
        }                                                                                                              \
    } while (0)
#define PREP_OK(s, id, ts, ...)            PREP_IS(0, TXS_CONFLICT_NONE, 0, s, id, ts, false, __VA_ARGS__)
#define PREP_NO(why, cver, s, id, ts, ...) PREP_IS(EAGAIN, why, cver, s, id, ts, false, __VA_ARGS__)

/* ---- versions, gets and puts ---- */

static void
case_versions(void)
{
    struct txs *s = mk(0, 0, 0);
    uint64_t newest = 7;
    CHECK_EQ(txs_put(s, (const uint8_t *)"a", 1, (const uint8_t *)"v10", 3, 10, &newest), 0);
    CHECK_EQ(newest, 10);
    CHECK_EQ(put(s, "a", "v20", 20), 0);
    CHECK_EQ(put(s, "b", "b5", 5), 0);
    GET_IS(s, "a", UINT64_MAX, 0, 20, "v20");
    GET_IS(s, "a", 20, 0, 20, "v20");
    GET_IS(s, "a", 19, 0, 10, "v10");
    GET_IS(s, "a", 10, 0, 10, "v10");
    GET_IS(s, "a", 9, ENOENT, 0, NULL);
    GET_IS(s, "a", 0, ENOENT, 0, NULL);
    GET_IS(s, "b", UINT64_MAX, 0, 5, "b5");
    GET_IS(s, "c", UINT64_MAX, ENOENT, 0, NULL);
    struct txs_stats st = stats(s);
    CHECK_EQ(st.keys, 2);
    CHECK_EQ(st.versions, 3);
    txs_destroy(s);
}

static void case_discard_estale(void)
{
    struct txs *s = mk(2, 0, 0);
    CHECK_EQ(put(s, "a", "10", 10), 0);
    CHECK_EQ(put(s, "a", "20", 20), 0);
    GET_IS(s, "a", 15, 0, 10, "10");
    uint64_t b0 = stats(s).bytes;
    CHECK_EQ(put(s, "a", "30", 30), 0);
    CHECK_EQ(stats(s).versions, 2);
    CHECK_EQ(stats(s).bytes, b0); /* one version in, one of the same size out */
    GET_IS(s, "a", UINT64_MAX, 0, 30, "30");
    GET_IS(s, "a", 25, 0, 20, "20");
    GET_IS(s, "a", 20, 0, 20, "20");
    GET_IS(s, "a", 19, ESTALE, 0, NULL);
    GET_IS(s, "a", 10, ESTALE, 0, NULL);
    GET_IS(s, "a", 9, ENOENT, 0, NULL); /* before the first version ever */
    /* One kept version (max_versions 1): every older lookup is ESTALE. */
    struct txs *one = mk(1, 0, 0);
    CHECK_EQ(put(one, "k", "1", 1), 0);
    CHECK_EQ(put(one, "k", "2", 2), 0);
    GET_IS(one, "k", 1, ESTALE, 0, NULL);
    GET_IS(one, "k", 2, 0, 2, "2");
    GET_IS(one, "k", 0, ENOENT, 0, NULL);
    txs_destroy(one);
    txs_destroy(s);
}

static void case_put_last_writer_wins(void)
{
    struct txs *s = mk(0, 0, 0);
    uint64_t newest = 0;
    CHECK_EQ(put(s, "a", "new", 20), 0);
    CHECK_EQ(txs_put(s, (const uint8_t *)"a", 1, (const uint8_t *)"old", 3, 10, &newest), EEXIST);
    CHECK_EQ(newest, 20);
    CHECK_EQ(txs_put(s, (const uint8_t *)"a", 1, (const uint8_t *)"same", 4, 20, &newest), EEXIST);
    CHECK_EQ(newest, 20);
    GET_IS(s, "a", UINT64_MAX, 0, 20, "new");
    GET_IS(s, "a", 15, ENOENT, 0, NULL);
    CHECK_EQ(stats(s).versions, 1);
    txs_destroy(s);
}

static void case_put_einval(void)
{
    struct txs *s = mk(0, 0, 0);
    static uint8_t big[TXN_VAL_MAX + 1];
    CHECK_EQ(put(s, "a", "x", 0), EINVAL);
    CHECK_EQ(txs_put(s, big, TXN_KEY_MAX + 1, big, 1, 5, NULL), EINVAL);
    CHECK_EQ(txs_put(s, big, 1, big, TXN_VAL_MAX + 1, 5, NULL), EINVAL);
    CHECK_EQ(txs_put(s, NULL, 3, big, 1, 5, NULL), EINVAL);
    CHECK_EQ(txs_put(s, big, 3, NULL, 1, 5, NULL), EINVAL);
    CHECK_EQ(txs_put(s, big, TXN_KEY_MAX, big, TXN_VAL_MAX, 5, NULL), 0);
    CHECK_EQ(stats(s).keys, 1);
    const uint8_t *v;
    size_t n;
    uint64_t ver;
    CHECK_EQ(txs_get(s, big, TXN_KEY_MAX + 1, UINT64_MAX, &v, &n, &ver), EINVAL);
    CHECK_EQ(txs_get(s, NULL, 2, UINT64_MAX, &v, &n, &ver), EINVAL);
    txs_destroy(s);
}

static void case_empty_key_and_value(void)
{
    struct txs *s = mk(0, 0, 0);
    CHECK_EQ(txs_put(s, NULL, 0, NULL, 0, 4, NULL), 0);
    const uint8_t *v = NULL;
    size_t n = 9;
    uint64_t ver = 0;
    CHECK_EQ(txs_get(s, (const uint8_t *)"", 0, UINT64_MAX, &v, &n, &ver), 0);
    CHECK(v != NULL);
    CHECK_EQ(n, 0);
    CHECK_EQ(ver, 4);
    PREP_OK(s, 1, 5, OPS(RD("", 4)), OPS(WR("", "")));
    CHECK_EQ(txs_commit(s, 1, 5), 0);
    GET_IS(s, "", UINT64_MAX, 0, 5, "");
    txs_destroy(s);
}

static void case_put_busy(void)
{
    struct txs *s = mk(0, 0, 0);
    CHECK_EQ(put(s, "a", "1", 1), 0);
    PREP_OK(s, 1, 5, NONE, OPS(WR("a", "x")));
    PREP_OK(s, 2, 5, OPS(RD("b", 0)), NONE);
    CHECK_EQ(put(s, "a", "2", 9), EBUSY);
    CHECK_EQ(put(s, "b", "2", 9), EBUSY);
    CHECK_EQ(put(s, "a", "0", 1), EEXIST); /* nothing would change anyway */
    CHECK_EQ(put(s, "c", "2", 9), 0);
    CHECK_EQ(txs_abort(s, 1), 0);
    CHECK_EQ(txs_abort(s, 2), 0);
    CHECK_EQ(put(s, "a", "2", 9), 0);
    CHECK_EQ(put(s, "b", "2", 9), 0);
    txs_destroy(s);
}

static void case_many_keys(void)
{
    struct txs *s = mk(0, 0, 0);
    char k[32], v[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(k, sizeof(k), "key%d", i);
        snprintf(v, sizeof(v), "val%d", i * 7);
        CHECK_EQ(put(s, k, v, (uint64_t)i + 1), 0);
    }
    CHECK_EQ(stats(s).keys, 20000);
    for (int i = 0; i < 20000; i++) {
        snprintf(k, sizeof(k), "key%d", i);
        snprintf(v, sizeof(v), "val%d", i * 7);
        GET_IS(s, k, UINT64_MAX, 0, (uint64_t)i + 1, v);
    }
    txs_destroy(s);
}

/* ---- prepare, commit, abort ---- */

static void case_prepare_commit(void)
{
    struct txs *s = mk(0, 0, 0);
    CHECK_EQ(put(s, "a", "a10", 10), 0);
    PREP_OK(s, 7, 20, OPS(RD("a", 10), RD("z", 0)), OPS(WR("a", "a20"), WR("b", "b20")));
    CHECK_EQ(stats(s).prepared, 1);
    GET_IS(s, "a", UINT64_MAX, 0, 10, "a10"); /* not visible before commit */
    GET_IS(s, "b", UINT64_MAX, ENOENT, 0, NULL);
    CHECK_EQ(txs_commit(s, 7, 20), 0);
    GET_IS(s, "a", UINT64_MAX, 0, 20, "a20");
    GET_IS(s, "a", 19, 0, 10, "a10");
    GET_IS(s, "b", 20, 0, 20, "b20");
    GET_IS(s, "b", 19, ENOENT, 0, NULL);
    struct txs_stats st = stats(s);
    CHECK_EQ(st.prepared, 0);
    CHECK_EQ(st.commits, 1);
    CHECK_EQ(st.keys, 2); /* "z", read while absent, did not linger */
    CHECK_EQ(st.versions, 3);
    CHECK_EQ(txs_commit(s, 7, 20), ENOENT);
    txs_destroy(s);
}

static void case_stale_read(void)
{
    struct txs *s = mk(0, 0, 0);
    CHECK_EQ(put(s, "a", "1", 10), 0);
    CHECK_EQ(put(s, "a", "2", 20), 0);
    PREP_NO(TXS_CONFLICT_STALE, 20, s, 1, 30, OPS(RD("a", 10)), OPS(WR("b", "x")));
    PREP_NO(TXS_CONFLICT_STALE, 20, s, 1, 30, OPS(RD("a", 25)), NONE);
    PREP_NO(TXS_CONFLICT_STALE, 20, s, 1, 30, OPS(RD("a", 0)), NONE);
    PREP_NO(TXS_CONFLICT_STALE, 0, s, 1, 30, OPS(RD("nope", 5)), NONE);
    struct txs_stats st = stats(s);
    CHECK_EQ(st.conflict_stale, 4);
    CHECK_EQ(st.prepared, 0);
    CHECK_EQ(st.keys, 1);
    PREP_OK(s, 1, 30, OPS(RD("a", 20)), NONE);
    txs_destroy(s);
}

static void case_absent_read_then_written(void)
{
    struct txs *s = mk(0, 0, 0);
    /* The read found nothing (version 0) and still holds: no writer may
     * slip in while it is prepared. */
    PREP_OK(s, 1, 5, OPS(RD("k", 0)), NONE);
    CHECK_EQ(stats(s).keys, 1);
    PREP_NO(TXS_CONFLICT_LOCKED, 0, s, 2, 9, NONE, OPS(WR("k", "v")));
    CHECK_EQ(txs_commit(s, 1, 5), 0);
    CHECK_EQ(stats(s).keys, 0);
    /* Then someone commits the key: a read of "nothing" is stale. */
    PREP_OK(s, 2, 9, NONE, OPS(WR("k", "v")));
    CHECK_EQ(txs_commit(s, 2, 9), 0);
    PREP_NO(TXS_CONFLICT_STALE, 9, s, 3, 12, OPS(RD("k", 0)), OPS(WR("j", "w")));
    txs_destroy(s);
}

static void case_write_lock(void)
{
    struct txs *s = mk(0, 0, 0);
    CHECK_EQ(put(s, "a", "1", 10), 0);
    PREP_OK(s, 1, 20, NONE, OPS(WR("a", "x")));
    PREP_NO(TXS_CONFLICT_LOCKED, 10, s, 2, 30, OPS(RD("a", 10)), NONE);
    PREP_NO(TXS_CONFLICT_LOCKED, 10, s, 3, 30, NONE, OPS(WR("a", "y")));
    PREP_NO(TXS_CONFLICT_LOCKED, 10, s, 4, 30, OPS(RD("a", 10)), OPS(WR("a", "y")));
    CHECK_EQ(stats(s).conflict_locked, 3);
    CHECK_EQ(txs_commit(s, 1, 20), 0);
    PREP_NO(TXS_CONFLICT_STALE, 20, s, 2, 30, OPS(RD("a", 10)), NONE);
    PREP_OK(s, 2, 30, OPS(RD("a", 20)), NONE);
    txs_destroy(s);
}

static void case_read_lock(void)
{
    struct txs *s = mk(0, 0, 0);
    CHECK_EQ(put(s, "a", "1", 10), 0);
    PREP_OK(s, 1, 20, OPS(RD("a", 10)), NONE);
    PREP_OK(s, 2, 21, OPS(RD("a", 10)), OPS(WR("b", "x")));
    PREP_NO(TXS_CONFLICT_LOCKED, 10, s, 3, 30, NONE, OPS(WR("a", "y")));
    CHECK_EQ(txs_commit(s, 1, 20), 0);
    PREP_NO(TXS_CONFLICT_LOCKED, 10, s, 3, 30, NONE, OPS(WR("a", "y"))); /* 2 still reads it */
    CHECK_EQ(txs_abort(s, 2), 0);
    PREP_OK(s, 3, 30, NONE, OPS(WR("a", "y")));
    txs_destroy(s);
}

static void case_read_and_write_same_key(void)
{
    struct txs *s = mk(0, 0, 0);
    CHECK_EQ(put(s, "a", "1", 10), 0);
    PREP_OK(s, 1, 20, OPS(RD("a", 10)), OPS(WR("a", "2")));
    PREP_NO(TXS_CONFLICT_LOCKED, 10, s, 2, 30, OPS(RD("a", 10)), NONE);
    CHECK_EQ(txs_commit(s, 1, 20), 0);
    GET_IS(s, "a", UINT64_MAX, 0, 20, "2");
    /* Both checks apply to it: a stale read... */
    PREP_NO(TXS_CONFLICT_STALE, 20, s, 2, 30, OPS(RD("a", 10)), OPS(WR("a", "3")));
    /* ...and the timestamp. */
    PREP_NO(TXS_CONFLICT_TS, 20, s, 2, 20, OPS(RD("a", 20)), OPS(WR("a", "3")));
    CHECK_EQ(stats(s).keys, 1);
    txs_destroy(s);
}

static void case_ts_conflict(void)
{
    struct txs *s = mk(0, 0, 0);
    CHECK_EQ(put(s, "a", "1", 10), 0);
    PREP_NO(TXS_CONFLICT_TS, 10, s, 1, 10, NONE, OPS(WR("a", "x")));
    PREP_NO(TXS_CONFLICT_TS, 10, s, 1, 5, NONE, OPS(WR("b", "y"), WR("a", "x")));
    CHECK_EQ(stats(s).conflict_ts, 2);
    CHECK_EQ(stats(s).keys, 1);
    /* A read-only transaction's timestamp is not checked against reads. */
    PREP_OK(s, 2, 3, OPS(RD("a", 10)), NONE);
    CHECK_EQ(txs_abort(s, 2), 0);
    PREP_OK(s, 1, 11, NONE, OPS(WR("a", "x")));
    txs_destroy(s);
}

static void case_conflict_order(void)
{
    struct txs *s = mk(0, 0, 0);
    CHECK_EQ(put(s, "a", "1", 10), 0);
    CHECK_EQ(put(s, "b", "1", 40), 0);
    PREP_OK(s, 1, 50, NONE, OPS(WR("c", "x")));
    /* Reads come first, in order; then writes. */
    PREP_NO(TXS_CONFLICT_STALE, 10, s, 2, 20, OPS(RD("a", 9), RD("c", 0)), OPS(WR("b", "y")));
    PREP_NO(TXS_CONFLICT_LOCKED, 0, s, 2, 20, OPS(RD("a", 10), RD("c", 0)), OPS(WR("b", "y")));
    PREP_NO(TXS_CONFLICT_TS, 40, s, 2, 20, OPS(RD("a", 10)), OPS(WR("b", "y"), WR("c", "z")));
    PREP_NO(TXS_CONFLICT_LOCKED, 0, s, 2, 20, OPS(RD("a", 10)), OPS(WR("c", "z"), WR("b", "y")));
    txs_destroy(s);
}

static void case_prepare_einval(void)
{
    struct txs *s = mk(0, 0, 0);
    struct txn_op many[TXN_SET_MAX + 1];
    for (int i = 0; i <= TXN_SET_MAX; i++)
        many[i] = RD("a", 0);
    static uint8_t big[TXN_VAL_MAX + 1];
    struct txn_op bigk = {.key = {big, TXN_KEY_MAX + 1}};
    struct txn_op bigv = {.key = {big, 1}, .val = {big, TXN_VAL_MAX + 1}};
    struct txn_op nullk = {.key = {NULL, 2}};
    PREP_IS(EINVAL, TXS_CONFLICT_NONE, 0, s, 0, 5, false, OPS(RD("a", 0)), NONE);
    PREP_IS(EINVAL, TXS_CONFLICT_NONE, 0, s, 1, 0, false, OPS(RD("a", 0)), NONE);
    PREP_IS(EINVAL, TXS_CONFLICT_NONE, 0, s, 1, 5, false, many, TXN_SET_MAX + 1, NONE);
    PREP_IS(EINVAL, TXS_CONFLICT_NONE, 0, s, 1, 5, false, NONE, many, TXN_SET_MAX + 1);
    PREP_IS(EINVAL, TXS_CONFLICT_NONE, 0, s, 1, 5, false, &bigk, 1, NONE);
    PREP_IS(EINVAL, TXS_CONFLICT_NONE, 0, s, 1, 5, false, NONE, &bigv, 1);
    PREP_IS(EINVAL, TXS_CONFLICT_NONE, 0, s, 1, 5, false, &nullk, 1, NONE);
    PREP_IS(EINVAL, TXS_CONFLICT_NONE, 0, s, 1, 5, false, NULL, 1, NONE);
    /* A key written twice, even with force. */
    PREP_IS(EINVAL, TXS_CONFLICT_NONE, 0, s, 1, 5, false, NONE, OPS(WR("a", "1"), WR("b", "2"), WR("a", "3")));
    PREP_IS(EINVAL, TXS_CONFLICT_NONE, 0, s, 1, 5, true, NONE, OPS(WR("a", "1"), WR("a", "1")));
    CHECK_EQ(stats(s).keys, 0);
    CHECK_EQ(stats(s).prepared, 0);
    /* Full sets are fine. */
    PREP_OK(s, 1, 5, many, TXN_SET_MAX, NONE);
    /* A key read twice: the same version is fine, two versions are stale. */
    CHECK_EQ(put(s, "k", "1", 3), 0);
    PREP_OK(s, 2, 6, OPS(RD("k", 3), RD("k", 3)), NONE);
    PREP_NO(TXS_CONFLICT_STALE, 3, s, 3, 6, OPS(RD("k", 3), RD("k", 2)), NONE);
    CHECK_EQ(txs_abort(s, 2), 0);
    PREP_OK(s, 3, 6, NONE, OPS(WR("k", "2"))); /* both of 2's read locks were released */
    CHECK_EQ(txs_abort(s, 1), 0);
    CHECK_EQ(txs_abort(s, 3), 0);
    CHECK_EQ(stats(s).keys, 1);
    txs_destroy(s);
}

static void case_repeat_prepare(void)
{
    struct txs *s = mk(0, 0, 0);
    PREP_OK(s, 1, 10, NONE, OPS(WR("a", "x")));
    uint64_t b = stats(s).bytes;
    /* A repeat: the earlier vote stands. */
    PREP_IS(EEXIST, TXS_CONFLICT_NONE, 0, s, 1, 10, false, NONE, OPS(WR("a", "x")));
    PREP_IS(EEXIST, TXS_CONFLICT_NONE, 0, s, 1, 10, true, NONE, OPS(WR("a", "x")));
    /* Another transaction that drew the same id does not ride on that vote:
     * other timestamp, keys, values or sets all conflict. */
    PREP_IS(EAGAIN, TXS_CONFLICT_LOCKED, 0, s, 1, 12, false, NONE, OPS(WR("a", "x")));
    PREP_IS(EAGAIN, TXS_CONFLICT_LOCKED, 0, s, 1, 10, false, NONE, OPS(WR("a", "z")));
    PREP_IS(EAGAIN, TXS_CONFLICT_LOCKED, 0, s, 1, 10, false, NONE, OPS(WR("c", "x")));
    PREP_IS(EAGAIN, TXS_CONFLICT_LOCKED, 0, s, 1, 10, false, OPS(RD("a", 0)), OPS(WR("a", "x")));
    PREP_IS(EAGAIN, TXS_CONFLICT_LOCKED, 0, s, 1, 12, false, OPS(RD("b", 4)), OPS(WR("c", "y")));
    PREP_IS(EAGAIN, TXS_CONFLICT_LOCKED, 0, s, 1, 12, true, NONE, OPS(WR("c", "y")));
    struct txs_stats st = stats(s);
    CHECK_EQ(st.conflict_locked, 6);
    CHECK_EQ(st.prepared, 1);
    CHECK_EQ(st.bytes, b);
    CHECK_EQ(st.keys, 1);
    CHECK_EQ(txs_commit(s, 1, 10), 0);
    GET_IS(s, "a", UINT64_MAX, 0, 10, "x");
    GET_IS(s, "c", UINT64_MAX, ENOENT, 0, NULL);
    txs_destroy(s);
}

static void case_commit_abort_unknown(void)
{
    struct txs *s = mk(0, 0, 0);
    CHECK_EQ(txs_commit(s, 1, 5), ENOENT);
    CHECK_EQ(txs_abort(s, 1), ENOENT);
    CHECK_EQ(txs_commit(s, 0, 5), ENOENT);
    CHECK_EQ(txs_abort(s, 0), ENOENT);
    PREP_OK(s, 1, 5, NONE, OPS(WR("a", "x")));
    CHECK_EQ(txs_commit(s, 1, 6), EINVAL);
    CHECK_EQ(txs_commit(s, 1, 0), EINVAL);
    CHECK_EQ(stats(s).prepared, 1); /* still there */
    GET_IS(s, "a", UINT64_MAX, ENOENT, 0, NULL);
    CHECK_EQ(txs_commit(s, 1, 5), 0);
    CHECK_EQ(txs_abort(s, 1), ENOENT);
    struct txs_stats st = stats(s);
    CHECK_EQ(st.commits, 1);
    CHECK_EQ(st.aborts, 0);
    txs_destroy(s);
}

static void case_abort_releases(void)
{
    struct txs *s = mk(0, 0, 0);
    CHECK_EQ(put(s, "b", "1", 3), 0);
    uint64_t b0 = stats(s).bytes;
    PREP_OK(s, 1, 10, OPS(RD("b", 3), RD("n", 0)), OPS(WR("a", "x"), WR("m", "y")));
    CHECK_EQ(stats(s).keys, 4);
    CHECK(stats(s).bytes > b0);
    CHECK_EQ(txs_abort(s, 1), 0);
    struct txs_stats st = stats(s);
    CHECK_EQ(st.keys, 1);
    CHECK_EQ(st.bytes, b0);
    CHECK_EQ(st.aborts, 1);
    CHECK_EQ(st.prepared, 0);
    GET_IS(s, "a", UINT64_MAX, ENOENT, 0, NULL);
    PREP_OK(s, 2, 11, NONE, OPS(WR("a", "1"), WR("b", "2"), WR("n", "3")));
    CHECK_EQ(txs_commit(s, 2, 11), 0);
    GET_IS(s, "b", UINT64_MAX, 0, 11, "2");
    txs_destroy(s);
}

static void case_force(void)
{
    struct txs *s = mk(0, 0, 0);
    CHECK_EQ(put(s, "a", "a10", 10), 0);
    PREP_OK(s, 9, 40, NONE, OPS(WR("w", "held")));
    /* Stale read, old timestamp, a key another transaction writes: all
     * skipped. */
    PREP_IS(0, TXS_CONFLICT_NONE, 0, s, 1, 5, true, OPS(RD("a", 3)), OPS(WR("a", "a5"), WR("w", "f")));
    /* Its keys are held all the same. */
    PREP_NO(TXS_CONFLICT_LOCKED, 10, s, 2, 50, NONE, OPS(WR("a", "x")));
    CHECK_EQ(put(s, "a", "x", 50), EBUSY);
    CHECK_EQ(txs_commit(s, 1, 5), 0);
    /* Out of order: version 5 goes under 10. */
    GET_IS(s, "a", UINT64_MAX, 0, 10, "a10");
    GET_IS(s, "a", 7, 0, 5, "a5");
    PREP_NO(TXS_CONFLICT_LOCKED, 5, s, 2, 50, NONE, OPS(WR("w", "x"))); /* 9 still holds it */
    CHECK_EQ(txs_commit(s, 9, 40), 0);
    GET_IS(s, "w", UINT64_MAX, 0, 40, "held");
    GET_IS(s, "w", 39, 0, 5, "f");
    /* The same timestamp again replaces that version's value. */
    PREP_IS(0, TXS_CONFLICT_NONE, 0, s, 3, 10, true, NONE, OPS(WR("a", "again")));
    CHECK_EQ(txs_commit(s, 3, 10), 0);
    GET_IS(s, "a", UINT64_MAX, 0, 10, "again");
    CHECK_EQ(stats(s).versions, 4);
    txs_destroy(s);
}

static void case_force_too_old_discarded(void)
{
    struct txs *s = mk(2, 0, 0);
    CHECK_EQ(put(s, "a", "20", 20), 0);
    CHECK_EQ(put(s, "a", "30", 30), 0);
    PREP_IS(0, TXS_CONFLICT_NONE, 0, s, 1, 10, true, NONE, OPS(WR("a", "10")));
    CHECK_EQ(txs_commit(s, 1, 10), 0);
    CHECK_EQ(stats(s).versions, 2);
    GET_IS(s, "a", 15, ESTALE, 0, NULL); /* version 10 existed, and is gone */
    GET_IS(s, "a", 5, ENOENT, 0, NULL);
    PREP_IS(0, TXS_CONFLICT_NONE, 0, s, 2, 25, true, NONE, OPS(WR("a", "25")));
    CHECK_EQ(txs_commit(s, 2, 25), 0);
    GET_IS(s, "a", 27, 0, 25, "25");
    GET_IS(s, "a", 22, ESTALE, 0, NULL);
    txs_destroy(s);
}

static void case_max_prepared(void)
{
    struct txs *s = mk(0, 3, 0);
    PREP_OK(s, 1, 5, NONE, OPS(WR("a", "x")));
    PREP_OK(s, 2, 5, NONE, OPS(WR("b", "x")));
    PREP_OK(s, 3, 5, OPS(RD("c", 0)), NONE);
    PREP_IS(ENOSPC, TXS_CONFLICT_NONE, 0, s, 4, 5, false, NONE, OPS(WR("d", "x")));
    PREP_IS(ENOSPC, TXS_CONFLICT_NONE, 0, s, 4, 5, true, NONE, OPS(WR("d", "x")));
    PREP_IS(EEXIST, TXS_CONFLICT_NONE, 0, s, 3, 5, false, OPS(RD("c", 0)), NONE);
    CHECK_EQ(stats(s).keys, 3);
    CHECK_EQ(txs_abort(s, 2), 0);
    PREP_OK(s, 4, 5, NONE, OPS(WR("d", "x")));
    CHECK_EQ(stats(s).prepared, 3);
    txs_destroy(s); /* with transactions still prepared: nothing leaks */
}

static void case_max_bytes(void)
{
    const uint64_t max = 16384;
    struct txs *s = mk(1, 0, max);
    static char v1000[1001];
    memset(v1000, 'v', 1000);
    char k[16];
    int n = 0;
    int rc;
    do {
        snprintf(k, sizeof(k), "k%d", n);
        rc = put(s, k, v1000, 1);
        if (rc == 0)
            n++;
    } while (rc == 0 && n < 100);
    CHECK_EQ(rc, ENOMEM);
    CHECK(n >= 8);
    struct txs_stats st = stats(s);
    CHECK(st.bytes <= max);
    CHECK_EQ(st.keys, (uint64_t)n); /* the refused key did not linger */
    CHECK(max - st.bytes < 1000);
    /* A transaction's values count too. */
    PREP_IS(ENOMEM, TXS_CONFLICT_NONE, 0, s, 1, 5, false, NONE, OPS(WR("k0", v1000)));
    PREP_IS(ENOMEM, TXS_CONFLICT_NONE, 0, s, 1, 5, true, NONE, OPS(WR("k0", v1000)));
    CHECK_EQ(stats(s).prepared, 0);
    CHECK_EQ(stats(s).bytes, st.bytes);
    /* Shrinking a key's value (the big old version discarded) makes room. */
    CHECK_EQ(put(s, "k0", "small", 2), 0);
    CHECK(stats(s).bytes <= st.bytes - 990);
    PREP_OK(s, 1, 5, NONE, OPS(WR("k1", v1000)));
    CHECK_EQ(put(s, "k0", v1000, 3), ENOMEM); /* the prepared values hold the room */
    CHECK_EQ(txs_abort(s, 1), 0);
    CHECK_EQ(put(s, "k0", v1000, 3), 0); /* an abort gives it back */
    GET_IS(s, "k0", UINT64_MAX, 0, 3, v1000);
    /* Committing a prepared write never fails for want of bytes. */
    CHECK_EQ(put(s, "k0", "small", 4), 0);
    PREP_OK(s, 2, 5, NONE, OPS(WR("k1", v1000)));
    CHECK_EQ(txs_commit(s, 2, 5), 0);
    CHECK(stats(s).bytes <= max);
    GET_IS(s, "k1", UINT64_MAX, 0, 5, v1000);
    txs_destroy(s);
}

static void case_stats(void)
{
    struct txs *s = mk(2, 0, 0);
    struct txs_stats st = stats(s);
    CHECK_EQ(st.keys, 0);
    CHECK_EQ(st.versions, 0);
    CHECK_EQ(st.bytes, 0);
    CHECK_EQ(put(s, "a", "1", 1), 0);
    CHECK_EQ(put(s, "a", "2", 2), 0);
    CHECK_EQ(put(s, "a", "3", 3), 0);
    CHECK_EQ(put(s, "b", "3", 3), 0);
    PREP_OK(s, 1, 10, OPS(RD("a", 3)), OPS(WR("c", "x")));
    PREP_NO(TXS_CONFLICT_STALE, 3, s, 2, 10, OPS(RD("a", 2)), NONE);
    PREP_NO(TXS_CONFLICT_LOCKED, 0, s, 2, 10, NONE, OPS(WR("c", "y")));
    PREP_NO(TXS_CONFLICT_TS, 3, s, 2, 3, NONE, OPS(WR("b", "y")));
    PREP_OK(s, 2, 11, NONE, OPS(WR("b", "y")));
    CHECK_EQ(txs_commit(s, 1, 10), 0);
    CHECK_EQ(txs_abort(s, 2), 0);
    st = stats(s);
    CHECK_EQ(st.keys, 3);
    CHECK_EQ(st.versions, 4);
    CHECK_EQ(st.prepared, 0);
    CHECK_EQ(st.commits, 1);
    CHECK_EQ(st.aborts, 1);
    CHECK_EQ(st.conflict_stale, 1);
    CHECK_EQ(st.conflict_locked, 1);
    CHECK_EQ(st.conflict_ts, 1);
    CHECK(st.bytes > 0);
    /* The same contents built another way count the same bytes. */
    struct txs *t = mk(2, 0, 0);
    CHECK_EQ(put(t, "a", "2", 2), 0);
    CHECK_EQ(put(t, "a", "3", 3), 0);
    CHECK_EQ(put(t, "b", "3", 3), 0);
    CHECK_EQ(put(t, "c", "x", 10), 0);
    CHECK_EQ(stats(t).bytes, st.bytes);
    txs_destroy(t);
    txs_get_stats(NULL, &st);
    CHECK_EQ(st.keys, 0);
    txs_destroy(s);
}

/* ---- a randomized run against a model ---- */

#define MK     8 /* keys "k0".."k7"; the last two are never written by puts */
#define MVALS  4096
#define MTXN   64
#define VALMAX 12

struct mver {
    uint64_t ts;
    uint8_t val[VALMAX];
    uint32_t vlen;
};

/* Every version a key ever had, newest first; the store keeps the first
 * max_versions of them. */
struct mkey {
    struct mver v[MVALS];
    uint32_t n;
    uint64_t readers, writers;
};

struct mtxn {
    bool live;
    uint64_t id, ts;
    uint32_t nr, nw;
    int rk[TXN_SET_MAX];
    uint64_t rv[TXN_SET_MAX];
    int wk[TXN_SET_MAX];
    struct mver wv[TXN_SET_MAX];
};

#define MHIST 40000 /* decisions a run can make (one per step at most) */

struct mdec {
    uint64_t id, ts;
};

struct model {
    uint32_t maxv, maxp, maxd;
    struct mdec hist[MHIST]; /* every decision, oldest first: the last maxd are remembered */
    uint32_t nhist;
    uint64_t late_prepares; /* EALREADY: the run must have tried some */
    struct mkey k[MK];
    struct mtxn t[MTXN];
    uint32_t nprep;
};

static const char *kname[MK] = {"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"};

static uint64_t m_newest(const struct model *m, int k)
{
    return m->k[k].n ? m->k[k].v[0].ts : 0;
}

static int m_get(const struct model *m, int k, uint64_t ts, const struct mver **out)
{
    const struct mkey *e = &m->k[k];
    uint32_t kept = e->n < m->maxv ? e->n : m->maxv;
    for (uint32_t i = 0; i < e->n; i++) {
        if (e->v[i].ts > ts)
            continue;
        if (i >= kept)
            return ESTALE;
        *out = &e->v[i];
        return 0;
    }
    return ENOENT;
}

static void m_insert(struct model *m, int k, const struct mver *nv)
{
    struct mkey *e = &m->k[k];
    uint32_t i = 0;
    while (i < e->n && e->v[i].ts > nv->ts)
        i++;
    if (i < e->n && e->v[i].ts == nv->ts) {
        e->v[i] = *nv;
        return;
    }
    CHECK(e->n < MVALS);
    memmove(&e->v[i + 1], &e->v[i], (e->n - i) * sizeof(e->v[0]));
    e->v[i] = *nv;
    e->n++;
}

static int m_put(struct model *m, int k, const struct mver *nv)
{
    if (m_newest(m, k) >= nv->ts)
        return EEXIST;
    if (m->k[k].readers || m->k[k].writers)
        return EBUSY;
    m_insert(m, k, nv);
    return 0;
}

static struct mtxn *m_find(struct model *m, uint64_t id)
{
    for (int i = 0; i < MTXN; i++)
        if (m->t[i].live && m->t[i].id == id)
            return &m->t[i];
    return NULL;
}

/* Whether B repeats prepared transaction A: the same timestamp, read keys,
 * written keys and values (the versions read do not count). */
static bool m_same(const struct mtxn *a, const struct mtxn *b)
{
    if (a->ts != b->ts || a->nr != b->nr || a->nw != b->nw)
        return false;
    for (uint32_t i = 0; i < a->nr; i++)
        if (a->rk[i] != b->rk[i])
            return false;
    for (uint32_t i = 0; i < a->nw; i++)
        if (a->wk[i] != b->wk[i] || a->wv[i].vlen != b->wv[i].vlen || memcmp(a->wv[i].val, b->wv[i].val, a->wv[i].vlen))
            return false;
    return true;
}

/* The remembered decision on ID, or NULL. */
static const struct mdec *m_decided(const struct model *m, uint64_t id)
{
    uint32_t lo = m->nhist > m->maxd ? m->nhist - m->maxd : 0;
    for (uint32_t i = m->nhist; i-- > lo;)
        if (m->hist[i].id == id)
            return &m->hist[i];
    return NULL;
}

static void m_record(struct model *m, uint64_t id, uint64_t ts)
{
    if (m_decided(m, id))
        return;
    CHECK(m->nhist < MHIST);
    m->hist[m->nhist++] = (struct mdec){id, ts};
}

static int m_prepare(struct model *m, const struct mtxn *x, bool force, enum txs_conflict *why, uint64_t *cver)
{
    *why = TXS_CONFLICT_NONE;
    *cver = 0;
    for (uint32_t i = 0; i < x->nw; i++)
        for (uint32_t j = 0; j < i; j++)
            if (x->wk[i] == x->wk[j])
                return EINVAL;
    if (m_decided(m, x->id)) {
        m->late_prepares++;
        return EALREADY;
    }
    const struct mtxn *held = m_find(m, x->id);
    if (held && m_same(held, x))
        return EEXIST;
    if (held) {
        *why = TXS_CONFLICT_LOCKED;
        return EAGAIN;
    }
    if (m->nprep >= m->maxp)
        return ENOSPC;
    for (uint32_t i = 0; i < x->nr && !force; i++) {
        *cver = m_newest(m, x->rk[i]);
        if (*cver != x->rv[i])
            *why = TXS_CONFLICT_STALE;
        else if (m->k[x->rk[i]].writers)
            *why = TXS_CONFLICT_LOCKED;
        if (*why)
            return EAGAIN;
    }
    for (uint32_t i = 0; i < x->nw && !force; i++) {
        const struct mkey *e = &m->k[x->wk[i]];
        *cver = m_newest(m, x->wk[i]);
        if (e->readers || e->writers)
            *why = TXS_CONFLICT_LOCKED;
        else if (x->ts <= *cver)
            *why = TXS_CONFLICT_TS;
        if (*why)
            return EAGAIN;
    }
    *cver = 0;
    struct mtxn *slot = NULL;
    for (int i = 0; i < MTXN && !slot; i++)
        if (!m->t[i].live)
            slot = &m->t[i];
    CHECK(slot != NULL);
    *slot = *x;
    slot->live = true;
    for (uint32_t i = 0; i < x->nr; i++)
        m->k[x->rk[i]].readers++;
    for (uint32_t i = 0; i < x->nw; i++)
        m->k[x->wk[i]].writers++;
    m->nprep++;
    return 0;
}

static void m_release(struct model *m, struct mtxn *x)
{
    for (uint32_t i = 0; i < x->nr; i++)
        m->k[x->rk[i]].readers--;
    for (uint32_t i = 0; i < x->nw; i++)
        m->k[x->wk[i]].writers--;
    x->live = false;
    m->nprep--;
}

static int m_commit(struct model *m, uint64_t id, uint64_t ts)
{
    struct mtxn *x = m_find(m, id);
    if (!x)
        return ENOENT;
    if (x->ts != ts)
        return EINVAL;
    for (uint32_t i = 0; i < x->nw; i++)
        m_insert(m, x->wk[i], &x->wv[i]);
    m_release(m, x);
    m_record(m, id, ts);
    return 0;
}

static int m_abort(struct model *m, uint64_t id)
{
    struct mtxn *x = m_find(m, id);
    if (!x)
        return ENOENT;
    m_release(m, x);
    m_record(m, id, 0);
    return 0;
}

static int m_note_decided(struct model *m, uint64_t id, uint64_t ts)
{
    if (id == 0)
        return EINVAL;
    const struct mdec *d = m_decided(m, id);
    if (d)
        return d->ts == ts ? EEXIST : EINVAL;
    if (m_find(m, id))
        return ts ? m_commit(m, id, ts) : m_abort(m, id);
    m_record(m, id, ts);
    return 0;
}

/* A decided transaction's id, remembered or (a little further back)
 * forgotten already; 0 when none was decided. */
static uint64_t pick_decided(uint64_t *rs, const struct model *m, uint64_t *ts)
{
    if (m->nhist == 0)
        return 0;
    uint32_t back = 1 + (uint32_t)(trand(rs) % (m->nhist < 2 * m->maxd ? m->nhist : 2 * m->maxd));
    *ts = m->hist[m->nhist - back].ts;
    return m->hist[m->nhist - back].id;
}

static struct txn_op key_op(int k)
{
    return (struct txn_op){.key = {(const uint8_t *)kname[k], (uint32_t)strlen(kname[k])}};
}

static void rand_val(uint64_t *rs, struct mver *v, uint64_t ts)
{
    v->ts = ts;
    v->vlen = (uint32_t)(trand(rs) % (VALMAX + 1));
    for (uint32_t i = 0; i < v->vlen; i++)
        v->val[i] = (uint8_t)trand(rs);
}

/* Both agree on a get of K at TS. */
static void same_get(struct txs *s, const struct model *m, int k, uint64_t ts, long step)
{
    const uint8_t *p = NULL;
    size_t n = 0;
    uint64_t ver = 1;
    const struct mver *mv = NULL;
    int rc = txs_get(s, (const uint8_t *)kname[k], strlen(kname[k]), ts, &p, &n, &ver);
    int mrc = m_get(m, k, ts, &mv);
    if (rc != mrc || (rc == 0 && (ver != mv->ts || n != mv->vlen || memcmp(p, mv->val, n) != 0)) ||
        (rc != 0 && ver != 0)) {
        fprintf(stderr, "step %ld: get %s at %llu: store rc %d ver %llu, model rc %d ver %llu\n", step, kname[k],
                (unsigned long long)ts, rc, (unsigned long long)ver, mrc, mv ? (unsigned long long)mv->ts : 0ull);
        exit(1);
    }
}

/* Builds a transaction: reads mostly of the newest versions, writes mostly
 * to distinct keys. */
static void rand_txn(uint64_t *rs, const struct model *m, struct mtxn *x, uint64_t id, uint64_t clock)
{
    memset(x, 0, sizeof(*x));
    x->id = id;
    x->ts = trand(rs) % 5 == 0 ? clock - trand(rs) % (clock < 4 ? clock : 4) : clock + 1 + trand(rs) % 3;
    if (x->ts == 0)
        x->ts = 1;
    x->nr = (uint32_t)(trand(rs) % 4);
    x->nw = (uint32_t)(trand(rs) % 4);
    for (uint32_t i = 0; i < x->nr; i++) {
        int k = (int)(trand(rs) % MK);
        const struct mkey *e = &m->k[k];
        uint64_t r = trand(rs) % 10;
        x->rk[i] = k;
        x->rv[i] = m_newest(m, k);
        if (r == 0)
            x->rv[i] = e->n ? e->v[trand(rs) % e->n].ts : 0;
        else if (r == 1)
            x->rv[i] = trand(rs) % (clock + 2);
    }
    bool dups = trand(rs) % 20 == 0;
    for (uint32_t i = 0; i < x->nw; i++) {
        int k;
        bool again;
        do {
            k = (int)(trand(rs) % MK);
            again = false;
            for (uint32_t j = 0; j < i && !dups; j++)
                again |= x->wk[j] == k;
        } while (again);
        x->wk[i] = k;
        rand_val(rs, &x->wv[i], x->ts);
    }
}

static void step_prepare(struct txs *s, struct model *m, uint64_t *rs, uint64_t *clock, uint64_t *nextid, long step)
{
    struct mtxn x;
    uint64_t id = ++*nextid;
    const struct mtxn *old = NULL;
    if (trand(rs) % 20 == 0) {
        old = &m->t[trand(rs) % MTXN];
        if (old->live)
            id = old->id;
        else
            old = NULL;
    }
    uint64_t dts;
    if (!old && trand(rs) % 16 == 0 && m->nhist) /* a late prepare of a decided one */
        id = pick_decided(rs, m, &dts);
    if (old && trand(rs) % 2) /* a repeat; otherwise another transaction with its id */
        x = *old;
    else
        rand_txn(rs, m, &x, id, *clock);
    bool force = trand(rs) % 16 == 0;
    struct txn_op r[TXN_SET_MAX], w[TXN_SET_MAX];
    for (uint32_t i = 0; i < x.nr; i++) {
        r[i] = key_op(x.rk[i]);
        r[i].ver = x.rv[i];
    }
    for (uint32_t i = 0; i < x.nw; i++) {
        w[i] = key_op(x.wk[i]);
        w[i].val = (struct txn_bytes){x.wv[i].val, x.wv[i].vlen};
    }
    enum txs_conflict why, mwhy;
    uint64_t cver, mcver;
    int rc = txs_prepare(s, x.id, x.ts, r, x.nr, w, x.nw, force, &why, &cver);
    int mrc = m_prepare(m, &x, force, &mwhy, &mcver);
    if (rc != mrc || why != mwhy || cver != mcver) {
        fprintf(stderr, "step %ld: prepare %llu: store %d/%d/%llu, model %d/%d/%llu\n", step, (unsigned long long)x.id,
                rc, (int)why, (unsigned long long)cver, mrc, (int)mwhy, (unsigned long long)mcver);
        exit(1);
    }
    if (rc == 0 && x.ts > *clock)
        *clock = x.ts;
}

static uint64_t pick_txn(uint64_t *rs, const struct model *m, uint64_t *ts)
{
    if (trand(rs) % 10 == 0) {
        *ts = trand(rs) % 100 + 1;
        return trand(rs) % 1000000 + 1; /* mostly unknown */
    }
    for (int tries = 0; tries < 4; tries++) {
        const struct mtxn *x = &m->t[trand(rs) % MTXN];
        if (x->live) {
            *ts = trand(rs) % 10 == 0 ? x->ts + 1 : x->ts;
            return x->id;
        }
    }
    *ts = 1;
    return UINT64_MAX;
}

static void compare_all(struct txs *s, const struct model *m, uint64_t clock, long step)
{
    uint64_t versions = 0, keys = 0;
    for (int k = 0; k < MK; k++) {
        const struct mkey *e = &m->k[k];
        versions += e->n < m->maxv ? e->n : m->maxv;
        keys += e->n || e->readers || e->writers;
        same_get(s, m, k, UINT64_MAX, step);
        same_get(s, m, k, 0, step);
        for (uint32_t i = 0; i < e->n && i <= m->maxv + 1; i++) {
            same_get(s, m, k, e->v[i].ts, step);
            same_get(s, m, k, e->v[i].ts - 1, step);
        }
    }
    for (uint64_t ts = 1; ts <= clock + 1; ts += 1 + clock / 50)
        for (int k = 0; k < MK; k++)
            same_get(s, m, k, ts, step);
    for (uint32_t i = 0; i < m->nhist && i < m->maxd + 4; i++) {
        const struct mdec *h = &m->hist[m->nhist - 1 - i];
        const struct mdec *d = m_decided(m, h->id);
        uint64_t ts = 99;
        int rc = txs_decided(s, h->id, &ts);
        if (rc != (d ? 0 : ENOENT) || ts != (d ? d->ts : 0)) {
            fprintf(stderr, "step %ld: decided %llu: store %d ts %llu, model %s\n", step, (unsigned long long)h->id, rc,
                    (unsigned long long)ts, d ? "remembered" : "forgotten");
            exit(1);
        }
    }
    struct txs_stats st = stats(s);
    if (st.decided != (m->nhist < m->maxd ? m->nhist : m->maxd)) {
        fprintf(stderr, "step %ld: %llu decisions remembered, model %u\n", step, (unsigned long long)st.decided,
                m->nhist < m->maxd ? m->nhist : m->maxd);
        exit(1);
    }
    if (st.versions != versions || st.keys != keys || st.prepared != m->nprep) {
        fprintf(stderr, "step %ld: stats keys %llu versions %llu prepared %llu, model %llu %llu %u\n", step,
                (unsigned long long)st.keys, (unsigned long long)st.versions, (unsigned long long)st.prepared,
                (unsigned long long)keys, (unsigned long long)versions, m->maxp);
        exit(1);
    }
}

/* The bytes the same kept contents have when loaded afresh. */
static uint64_t fresh_bytes(const struct model *m)
{
    struct txs *t = mk(m->maxv, 0, 0);
    for (int k = 0; k < MK; k++) {
        const struct mkey *e = &m->k[k];
        uint32_t kept = e->n < m->maxv ? e->n : m->maxv;
        for (uint32_t i = kept; i-- > 0;)
            CHECK_EQ(
                txs_put(t, (const uint8_t *)kname[k], strlen(kname[k]), e->v[i].val, e->v[i].vlen, e->v[i].ts, NULL),
                0);
    }
    uint64_t b = stats(t).bytes;
    txs_destroy(t);
    return b;
}

static void random_run(uint64_t seed, uint32_t maxv, uint32_t maxp, uint32_t maxd, long steps)
{
    static struct model m;
    memset(&m, 0, sizeof(m));
    m.maxv = maxv;
    m.maxp = maxp;
    m.maxd = maxd; /* the runs give one, so that the model need not know the default */
    struct txs_limits lim = {.max_versions = maxv, .max_prepared = maxp, .max_decided = maxd};
    struct txs *s = txs_create(&lim);
    CHECK(s != NULL);
    uint64_t rs = seed, clock = 1, nextid = 0;
    for (long step = 0; step < steps; step++) {
        uint64_t op = trand(&rs) % 100;
        if (op < 20) {
            int k = (int)(trand(&rs) % MK);
            same_get(s, &m, k, trand(&rs) % 4 ? trand(&rs) % (clock + 2) : UINT64_MAX, step);
        } else if (op < 30) {
            int k = (int)(trand(&rs) % (MK - 2));
            struct mver v;
            rand_val(&rs, &v, trand(&rs) % 4 ? clock + 1 : clock - trand(&rs) % clock);
            if (v.ts == 0)
                v.ts = 1;
            uint64_t newest = 0;
            int rc = txs_put(s, (const uint8_t *)kname[k], strlen(kname[k]), v.val, v.vlen, v.ts, &newest);
            int mrc = m_put(&m, k, &v);
            if (rc != mrc || newest != m_newest(&m, k)) {
                fprintf(stderr, "step %ld: put %s at %llu: store %d newest %llu, model %d %llu\n", step, kname[k],
                        (unsigned long long)v.ts, rc, (unsigned long long)newest, mrc,
                        (unsigned long long)m_newest(&m, k));
                exit(1);
            }
            if (rc == 0 && v.ts > clock)
                clock = v.ts;
        } else if (op < 55) {
            step_prepare(s, &m, &rs, &clock, &nextid, step);
        } else if (op < 82) {
            uint64_t ts;
            uint64_t id = pick_txn(&rs, &m, &ts);
            int rc = txs_commit(s, id, ts), mrc = m_commit(&m, id, ts);
            if (rc != mrc) {
                fprintf(stderr, "step %ld: commit %llu: store %d model %d\n", step, (unsigned long long)id, rc, mrc);
                exit(1);
            }
        } else if (op < 94) {
            uint64_t ts;
            uint64_t id = pick_txn(&rs, &m, &ts);
            int rc = txs_abort(s, id), mrc = m_abort(&m, id);
            if (rc != mrc) {
                fprintf(stderr, "step %ld: abort %llu: store %d model %d\n", step, (unsigned long long)id, rc, mrc);
                exit(1);
            }
        } else {
            /* A decision learned from elsewhere: on a prepared one, an
             * unknown one or a decided one, the same outcome or another. */
            uint64_t ts = 0, id = trand(&rs) % 2 ? pick_txn(&rs, &m, &ts) : pick_decided(&rs, &m, &ts);
            uint64_t r = trand(&rs) % 6;
            if (r == 0)
                ts = 0;
            else if (r == 1)
                ts++;
            int rc = txs_note_decided(s, id, ts), mrc = m_note_decided(&m, id, ts);
            if (rc != mrc) {
                fprintf(stderr, "step %ld: note_decided %llu at %llu: store %d model %d\n", step,
                        (unsigned long long)id, (unsigned long long)ts, rc, mrc);
                exit(1);
            }
        }
        if (step % 257 == 0)
            compare_all(s, &m, clock, step);
    }
    compare_all(s, &m, clock, steps);
    for (int i = 0; i < MTXN; i++)
        if (m.t[i].live)
            CHECK_EQ(txs_abort(s, m.t[i].id), m_abort(&m, m.t[i].id));
    compare_all(s, &m, clock, steps);
    CHECK_EQ(stats(s).bytes, fresh_bytes(&m));
    struct txs_stats st = stats(s);
    CHECK(st.commits > 0 && st.aborts > 0);
    CHECK(st.conflict_stale > 0 && st.conflict_locked > 0 && st.conflict_ts > 0);
    CHECK(m.late_prepares > 0 && m.nhist > m.maxd);
    txs_destroy(s);
}

static void case_random_small(void)
{
    random_run(1, 3, 6, 16, 30000);
}

static void case_random_one_version(void)
{
    random_run(2, 1, 6, 1, 20000);
}

static void case_random_many_versions(void)
{
    random_run(3, 64, 40, 300, 20000);
}

/* ---- state transfer: txs_install, txs_abort_all, the scans ---- */

static int install(struct txs *s, const char *k, const char *v, uint64_t ts)
{
    return txs_install(s, (const uint8_t *)k, strlen(k), (const uint8_t *)v, strlen(v), ts);
}

static void case_install(void)
{
    struct txs *s = mk(3, 0, 0);
    CHECK_EQ(install(s, "a", "v5", 5), 0);
    CHECK_EQ(install(s, "a", "v3", 3), 0); /* older: slotted in, not refused as txs_put would */
    CHECK_EQ(put(s, "a", "v2", 2), EEXIST);
    CHECK_EQ(install(s, "a", "again", 5), EEXIST);
    GET_IS(s, "a", UINT64_MAX, 0, 5, "v5");
    GET_IS(s, "a", 4, 0, 3, "v3");
    CHECK_EQ(install(s, "a", "v9", 9), 0);
    CHECK_EQ(install(s, "a", "v1", 1), 0); /* older than the 3 kept: discarded, remembered */
    GET_IS(s, "a", 1, ESTALE, 0, NULL);
    GET_IS(s, "a", 3, 0, 3, "v3");
    CHECK_EQ(install(s, "a", "x", 0), EINVAL);
    /* A key a prepared transaction writes takes it, and the commit still
     * lands. */
    PREP_IS(0, TXS_CONFLICT_NONE, 0, s, 1, 20, false, NONE, OPS(WR("b", "b20")));
    CHECK_EQ(install(s, "b", "b10", 10), 0);
    CHECK_EQ(install(s, "b", "b11", 11), 0);
    CHECK_EQ(txs_commit(s, 1, 20), 0);
    GET_IS(s, "b", UINT64_MAX, 0, 20, "b20");
    GET_IS(s, "b", 10, 0, 10, "b10");
    /* Abort all: every key released, versions kept. */
    PREP_IS(0, TXS_CONFLICT_NONE, 0, s, 2, 30, false, OPS(RD("a", 9)), OPS(WR("c", "c")));
    PREP_IS(0, TXS_CONFLICT_NONE, 0, s, 3, 31, false, NONE, OPS(WR("d", "d")));
    CHECK_EQ(txs_abort_all(s), 2);
    CHECK_EQ(stats(s).prepared, 0);
    CHECK_EQ(stats(s).keys, 2); /* a, b: c and d were only held */
    CHECK_EQ(put(s, "a", "v40", 40), 0);
    CHECK_EQ(txs_abort_all(s), 0);
    txs_destroy(s);
}

#define SK 3000 /* keys in the scan cases */

struct seen {
    uint32_t visits[2 * SK]; /* by key number */
    uint64_t last_ts[2 * SK];
    struct txs *copy; /* where visited versions are installed, or NULL */
    uint64_t versions;
};

static int key_num(const uint8_t *key, size_t klen)
{
    char buf[16];
    CHECK(klen > 1 && klen < sizeof(buf) && key[0] == 'k');
    memcpy(buf, key + 1, klen - 1);
    buf[klen - 1] = '\0';
    int n = atoi(buf);
    CHECK(n >= 0 && n < 2 * SK);
    return n;
}

static void on_version(void *arg, const uint8_t *key, size_t klen, uint64_t ts, const uint8_t *val, size_t vlen)
{
    struct seen *sn = arg;
    int n = key_num(key, klen);
    /* Oldest first within a visit: a new visit starts below the last. */
    if (sn->last_ts[n] >= ts)
        sn->visits[n]++;
    sn->last_ts[n] = ts;
    sn->versions++;
    if (sn->copy) {
        int rc = txs_install(sn->copy, key, klen, val, vlen, ts);
        CHECK(rc == 0 || rc == EEXIST);
    }
}

static void kname_of(int n, char *buf, size_t cap)
{
    snprintf(buf, cap, "k%d", n);
}

static void case_scan_all(void)
{
    struct txs *s = mk(4, 0, 0);
    char k[16], v[32];
    for (int i = 0; i < SK; i++) {
        kname_of(i, k, sizeof(k));
        for (int j = 1; j <= 1 + i % 3; j++) {
            snprintf(v, sizeof(v), "%d.%d", i, j);
            CHECK_EQ(put(s, k, v, (uint64_t)j), 0);
        }
    }
    /* A key only held by a prepared transaction has no version to show. */
    PREP_IS(0, TXS_CONFLICT_NONE, 0, s, 1, 5, false, NONE, OPS(WR("held", "x")));
    static struct seen sn;
    memset(&sn, 0, sizeof(sn));
    uint64_t cur = 0, keys = 0, steps = 0;
    while (cur != TXS_SCAN_END) {
        size_t n = txs_scan_keys(s, &cur, 7, on_version, &sn);
        CHECK(n > 0 || cur == TXS_SCAN_END);
        keys += n;
        steps++;
    }
    CHECK_EQ(keys, SK);
    CHECK(steps >= SK / 7 / 2);
    for (int i = 0; i < SK; i++) {
        CHECK_EQ(sn.visits[i] + (sn.last_ts[i] ? 1 : 0), 1);
        CHECK_EQ(sn.last_ts[i], (uint64_t)(1 + i % 3));
    }
    CHECK_EQ(sn.versions, stats(s).versions);
    /* A finished cursor stays finished. */
    CHECK_EQ(txs_scan_keys(s, &cur, 7, on_version, &sn), 0);
    CHECK_EQ(txs_abort_all(s), 1);
    txs_destroy(s);
}

/* Mirrors a change on the "primary" A to the "backup" B, as TCP order
 * would deliver it after the items already sent. */
static void both_put(struct txs *a, struct txs *b, int n, uint64_t ts)
{
    char k[16], v[32];
    kname_of(n, k, sizeof(k));
    snprintf(v, sizeof(v), "%d@%llu", n, (unsigned long long)ts);
    int rc = put(a, k, v, ts);
    CHECK(rc == 0 || rc == EEXIST || rc == EBUSY);
    if (rc == 0)
        CHECK_EQ(install(b, k, v, ts), 0);
}

/* The scan goes on while the store changes between steps (new keys that
 * double the table, new versions that push old ones out, keys created and
 * freed by prepared transactions, commits): every key present throughout
 * is visited, none crashes, and a copy built from the visits plus the
 * changes mirrored in order ends equal to the store. */
static void case_scan_while_changing(void)
{
    struct txs *a = mk(2, 0, 0), *b = mk(2, 0, 0);
    static struct seen sn;
    memset(&sn, 0, sizeof(sn));
    sn.copy = b;
    uint64_t rs = 42, ts = 100, txnid = 1;
    for (int i = 0; i < SK; i++)
        both_put(a, b, i, 1 + (uint64_t)i % 5);
    /* B starts empty, as a restarted backup does. */
    txs_destroy(b);
    b = sn.copy = mk(2, 0, 0);
    uint64_t cur = 0;
    int added = SK;
    char k[16], v[32];
    while (cur != TXS_SCAN_END) {
        txs_scan_keys(a, &cur, 5, on_version, &sn);
        for (int j = 0; j < 8; j++) {
            uint64_t r = trand(&rs) % 4;
            if (r == 0 && added < 2 * SK) {
                both_put(a, b, added++, ++ts); /* a new key: the table grows */
            } else if (r == 1) {
                both_put(a, b, (int)(trand(&rs) % (uint64_t)added), ++ts); /* a newer version */
            } else if (r == 2) {
                /* A transaction reading an absent key (its entry is created,
                 * then freed at abort) and writing one that exists. */
                snprintf(k, sizeof(k), "k%d", (int)(trand(&rs) % (uint64_t)added));
                uint64_t id = txnid++;
                int rc = txs_prepare(a, id, ++ts, OPS(RD("absent", 0)), OPS(WR(k, "p")), false, NULL, NULL);
                if (rc == 0) {
                    CHECK_EQ(txs_prepare(b, id, ts, OPS(RD("absent", 0)), OPS(WR(k, "p")), true, NULL, NULL), 0);
                    if (trand(&rs) % 2) {
                        CHECK_EQ(txs_abort(a, id), 0);
                        CHECK_EQ(txs_abort(b, id), 0);
                    } else {
                        CHECK_EQ(txs_commit(a, id, ts), 0);
                        CHECK_EQ(txs_commit(b, id, ts), 0);
                    }
                }
            }
        }
    }
    for (int i = 0; i < SK; i++)
        CHECK(sn.last_ts[i] != 0);
    /* Equal: every kept version of A is in B with its value, and B has
     * nothing newer. */
    for (int i = 0; i < added; i++) {
        kname_of(i, k, sizeof(k));
        const uint8_t *pa, *pb;
        size_t na, nb;
        uint64_t va, vb, at = UINT64_MAX;
        for (int depth = 0; depth < 2; depth++) {
            int ra = txs_get(a, (const uint8_t *)k, strlen(k), at, &pa, &na, &va);
            if (ra != 0)
                break;
            CHECK_EQ(txs_get(b, (const uint8_t *)k, strlen(k), at, &pb, &nb, &vb), 0);
            CHECK_EQ(va, vb);
            CHECK(na == nb && memcmp(pa, pb, na) == 0);
            at = va - 1;
        }
    }
    CHECK_EQ(stats(a).keys, stats(b).keys);
    (void)v;
    txs_destroy(a);
    txs_destroy(b);
}

static void on_prepared(void *arg, uint64_t txnid, uint64_t ts, const struct txn_op *reads, uint32_t nreads,
                        const struct txn_op *writes, uint32_t nwrites)
{
    struct txs *b = arg;
    int rc = txs_prepare(b, txnid, ts, reads, nreads, writes, nwrites, true, NULL, NULL);
    CHECK(rc == 0 || rc == EEXIST);
}

/* The prepared transactions, scanned while others are prepared and
 * decided in between: every one undecided at the end is in the copy. */
static void case_scan_prepared(void)
{
    struct txs *a = mk(0, 0, 0), *b = mk(0, 0, 0);
    char k[16];
    uint64_t id = 1;
    for (; id <= 500; id++) {
        kname_of((int)id, k, sizeof(k));
        CHECK_EQ(txs_prepare(a, id, 10, OPS(RD("r", 0)), OPS(WR(k, "v")), false, NULL, NULL), 0);
    }
    uint64_t cur = 0, rs = 9;
    while (cur != TXS_SCAN_END) {
        txs_scan_prepared(a, &cur, 3, on_prepared, b);
        /* One new (the table grows), one decided (mirrored). */
        kname_of((int)id, k, sizeof(k));
        CHECK_EQ(txs_prepare(a, id, 10, NONE, OPS(WR(k, "v")), false, NULL, NULL), 0);
        CHECK_EQ(txs_prepare(b, id, 10, NONE, OPS(WR(k, "v")), true, NULL, NULL), 0);
        id++;
        uint64_t victim = 1 + trand(&rs) % (id - 1);
        if (txs_abort(a, victim) == 0) {
            /* ENOENT: one the scan had not reached yet, never to be sent. */
            int rb = txs_abort(b, victim);
            CHECK(rb == 0 || rb == ENOENT);
        }
    }
    CHECK_EQ(stats(a).prepared, stats(b).prepared);
    for (uint64_t t = 1; t < id; t++) {
        int ra = txs_commit(a, t, 10), rb = txs_commit(b, t, 10);
        CHECK_EQ(ra, rb);
    }
    CHECK_EQ(stats(b).prepared, 0);
    txs_destroy(a);
    txs_destroy(b);
}

/* ---- remembered decisions ---- */

static struct txs *mk_dec(uint32_t max_decided)
{
    struct txs_limits lim = {.max_decided = max_decided};
    struct txs *s = txs_create(&lim);
    CHECK(s != NULL);
    return s;
}

static void decided_is(const struct txs *s, uint64_t id, int rc, uint64_t ts, int line)
{
    uint64_t got = 99;
    int r = txs_decided(s, id, &got);
    if (r != rc || got != ts) {
        fprintf(stderr, "line %d: decided %llu: rc %d ts %llu (wanted %d %llu)\n", line, (unsigned long long)id, r,
                (unsigned long long)got, rc, (unsigned long long)ts);
        exit(1);
    }
}
#define DECIDED_IS(s, id, rc, ts) decided_is(s, id, rc, ts, __LINE__)

/* Prepares ID at TS writing a key of its own, then commits (TS) or aborts
 * it as COMMIT says. */
static void decide(struct txs *s, uint64_t id, uint64_t ts, bool commit)
{
    char k[24];
    snprintf(k, sizeof(k), "d%llu", (unsigned long long)id);
    PREP_OK(s, id, ts, NONE, OPS(WR(k, "v")));
    CHECK_EQ(commit ? txs_commit(s, id, ts) : txs_abort(s, id), 0);
}

/* Commits and aborts are remembered; failed ones, and abort_all, are not. */
static void case_decided_recorded(void)
{
    struct txs *s = mk(0, 0, 0);
    PREP_OK(s, 1, 10, NONE, OPS(WR("a", "1")));
    PREP_OK(s, 2, 11, NONE, OPS(WR("b", "2")));
    PREP_OK(s, 3, 12, NONE, OPS(WR("c", "3")));
    PREP_OK(s, 4, 13, NONE, OPS(WR("d", "4")));
    DECIDED_IS(s, 1, ENOENT, 0);
    CHECK_EQ(txs_commit(s, 1, 99), EINVAL); /* refused: no decision */
    DECIDED_IS(s, 1, ENOENT, 0);
    CHECK_EQ(txs_commit(s, 1, 10), 0);
    CHECK_EQ(txs_abort(s, 2), 0);
    DECIDED_IS(s, 1, 0, 10);
    DECIDED_IS(s, 2, 0, 0);
    CHECK_EQ(txs_commit(s, 7, 10), ENOENT);
    CHECK_EQ(txs_abort(s, 8), ENOENT);
    DECIDED_IS(s, 7, ENOENT, 0);
    DECIDED_IS(s, 8, ENOENT, 0);
    CHECK_EQ(txs_abort_all(s), 2);
    DECIDED_IS(s, 3, ENOENT, 0);
    DECIDED_IS(s, 4, ENOENT, 0);
    DECIDED_IS(s, 0, ENOENT, 0);
    CHECK_EQ(stats(s).decided, 2);
    /* Dropped, not decided: the primary may send it again. */
    PREP_OK(s, 3, 12, NONE, OPS(WR("c", "3")));
    CHECK_EQ(txs_commit(s, 3, 12), 0);
    DECIDED_IS(s, 3, 0, 12);
    CHECK_EQ(stats(s).decided, 3);
    txs_destroy(s);
    /* The default bound (65536) holds as many. */
    s = txs_create(NULL);
    CHECK(s != NULL);
    for (uint64_t id = 1; id <= 65537; id++)
        CHECK_EQ(txs_note_decided(s, id, id % 3 ? id : 0), 0);
    CHECK_EQ(stats(s).decided, 65536);
    DECIDED_IS(s, 1, ENOENT, 0);
    DECIDED_IS(s, 2, 0, 2);
    DECIDED_IS(s, 65537, 0, 65537);
    txs_destroy(s);
}

/* A small table forgets the oldest first, and its lookups stay right
 * through many evictions (ids spread over the hash, and ids that differ
 * little). */
static void case_decided_fifo(void)
{
    static const uint32_t sizes[] = {1, 2, 5, 64};
    for (size_t z = 0; z < sizeof(sizes) / sizeof(sizes[0]); z++) {
        uint32_t max = sizes[z];
        struct txs *s = mk_dec(max);
        uint64_t rs = 42 + z, ids[3000];
        for (uint32_t i = 0; i < 3000; i++) {
            ids[i] = i % 2 ? trand(&rs) | 1 : i + 1;
            decide(s, ids[i], 1000 + i, i % 3 != 0);
            uint32_t kept = i + 1 < max ? i + 1 : max;
            CHECK_EQ(stats(s).decided, kept);
            for (uint32_t j = i + 1 - kept; j <= i; j++)
                DECIDED_IS(s, ids[j], 0, j % 3 != 0 ? 1000 + j : 0);
            if (i >= max)
                DECIDED_IS(s, ids[i - max], ENOENT, 0);
        }
        for (uint32_t i = 0; i + max < 3000; i++)
            DECIDED_IS(s, ids[i], ENOENT, 0);
        CHECK_EQ(stats(s).prepared, 0);
        txs_destroy(s);
    }
    /* Remembering one already remembered keeps its entry and its place:
     * note_decided says EEXIST, and it is still forgotten first. */
    struct txs *s = mk_dec(3);
    CHECK_EQ(txs_note_decided(s, 1, 5), 0);
    CHECK_EQ(txs_note_decided(s, 2, 0), 0);
    CHECK_EQ(txs_note_decided(s, 1, 5), EEXIST);
    CHECK_EQ(txs_note_decided(s, 3, 6), 0);
    CHECK_EQ(stats(s).decided, 3);
    CHECK_EQ(txs_note_decided(s, 4, 7), 0);
    DECIDED_IS(s, 1, ENOENT, 0);
    DECIDED_IS(s, 2, 0, 0);
    txs_destroy(s);
}

/* A prepare of a transaction remembered as decided is EALREADY, forced or
 * not, and changes nothing; once forgotten, the id may prepare again. */
static void case_prepare_decided(void)
{
    struct txs *s = mk_dec(2);
    decide(s, 1, 10, true);
    decide(s, 2, 11, false);
    struct txs_stats before = stats(s);
    PREP_IS(EALREADY, TXS_CONFLICT_NONE, 0, s, 1, 10, false, NONE, OPS(WR("d1", "v")));
    PREP_IS(EALREADY, TXS_CONFLICT_NONE, 0, s, 1, 10, true, NONE, OPS(WR("d1", "v")));
    PREP_IS(EALREADY, TXS_CONFLICT_NONE, 0, s, 2, 50, false, OPS(RD("x", 0)), OPS(WR("y", "v")));
    PREP_IS(EALREADY, TXS_CONFLICT_NONE, 0, s, 2, 50, true, OPS(RD("x", 0)), OPS(WR("y", "v")));
    /* Arguments are checked first. */
    PREP_IS(EINVAL, TXS_CONFLICT_NONE, 0, s, 1, 0, false, NONE, OPS(WR("d1", "v")));
    struct txs_stats after = stats(s);
    CHECK(memcmp(&before, &after, sizeof(before)) == 0);
    CHECK_EQ(put(s, "y", "free", 60), 0); /* nothing holds it */
    GET_IS(s, "d1", UINT64_MAX, 0, 10, "v");
    /* Forgotten: prepared again, the second time is a new decision. */
    decide(s, 3, 12, true);
    PREP_IS(EALREADY, TXS_CONFLICT_NONE, 0, s, 2, 70, false, NONE, OPS(WR("z", "v")));
    DECIDED_IS(s, 1, ENOENT, 0);
    PREP_OK(s, 1, 80, NONE, OPS(WR("d1", "again")));
    CHECK_EQ(txs_commit(s, 1, 80), 0);
    DECIDED_IS(s, 1, 0, 80);
    txs_destroy(s);
}

/* A decision learned from elsewhere. */
static void case_note_decided(void)
{
    struct txs *s = mk(0, 0, 0);
    PREP_OK(s, 1, 10, NONE, OPS(WR("a", "a10")));
    PREP_OK(s, 2, 11, NONE, OPS(WR("b", "b11")));
    /* A commit at another timestamp than its prepare changes nothing. */
    CHECK_EQ(txs_note_decided(s, 1, 12), EINVAL);
    CHECK_EQ(stats(s).prepared, 2);
    DECIDED_IS(s, 1, ENOENT, 0);
    /* Prepared here: committed or aborted, and remembered. */
    CHECK_EQ(txs_note_decided(s, 1, 10), 0);
    GET_IS(s, "a", UINT64_MAX, 0, 10, "a10");
    DECIDED_IS(s, 1, 0, 10);
    CHECK_EQ(txs_note_decided(s, 2, 0), 0);
    CHECK_EQ(stats(s).prepared, 0);
    CHECK_EQ(put(s, "b", "free", 20), 0); /* released */
    DECIDED_IS(s, 2, 0, 0);
    CHECK_EQ(stats(s).commits, 1);
    CHECK_EQ(stats(s).aborts, 1);
    /* The same again: EEXIST; a contradiction: EINVAL; neither changes. */
    CHECK_EQ(txs_note_decided(s, 1, 10), EEXIST);
    CHECK_EQ(txs_note_decided(s, 2, 0), EEXIST);
    CHECK_EQ(txs_note_decided(s, 1, 0), EINVAL);  /* committed here, aborted there */
    CHECK_EQ(txs_note_decided(s, 1, 11), EINVAL); /* another timestamp */
    CHECK_EQ(txs_note_decided(s, 2, 11), EINVAL); /* aborted here, committed there */
    DECIDED_IS(s, 1, 0, 10);
    DECIDED_IS(s, 2, 0, 0);
    CHECK_EQ(txs_note_decided(s, 0, 5), EINVAL);
    CHECK_EQ(txs_note_decided(s, 0, 0), EINVAL);
    /* Not prepared here: only remembered (its versions come separately),
     * and a late prepare of it is refused. */
    CHECK_EQ(txs_note_decided(s, 3, 30), 0);
    CHECK_EQ(txs_note_decided(s, 4, 0), 0);
    GET_IS(s, "c", UINT64_MAX, ENOENT, 0, NULL);
    PREP_IS(EALREADY, TXS_CONFLICT_NONE, 0, s, 3, 30, true, NONE, OPS(WR("c", "c30")));
    PREP_IS(EALREADY, TXS_CONFLICT_NONE, 0, s, 4, 31, false, NONE, OPS(WR("c", "c31")));
    CHECK_EQ(stats(s).decided, 4);
    CHECK_EQ(stats(s).commits, 1);
    txs_destroy(s);
}

struct dseen {
    uint64_t ids[4096], ts[4096];
    size_t n;
};

static void on_decided(void *arg, uint64_t txnid, uint64_t ts)
{
    struct dseen *d = arg;
    CHECK(d->n < 4096);
    d->ids[d->n] = txnid;
    d->ts[d->n] = ts;
    d->n++;
}

/* Scans oldest first, with decisions remembered (and the oldest
 * forgotten) between steps: no entry twice, the order kept, the forgotten
 * ones skipped, and every one remembered from start to end visited. */
static void case_scan_decided(void)
{
    static struct dseen d;
    struct txs *s = mk_dec(8);
    uint64_t cur = 0;
    d.n = 0;
    CHECK_EQ(txs_scan_decided(s, &cur, 4, on_decided, &d), 0); /* empty */
    CHECK_EQ(cur, TXS_SCAN_END);
    for (uint64_t id = 1; id <= 6; id++)
        CHECK_EQ(txs_note_decided(s, id * 7, id % 2 ? id : 0), 0);
    /* Whole, in one step and in steps of one (max 0 still makes progress). */
    cur = 0;
    CHECK_EQ(txs_scan_decided(s, &cur, SIZE_MAX, on_decided, &d), 6);
    CHECK_EQ(cur, TXS_SCAN_END);
    for (size_t i = 0; i < 6; i++) {
        CHECK_EQ(d.ids[i], (i + 1) * 7);
        CHECK_EQ(d.ts[i], (i + 1) % 2 ? i + 1 : 0);
    }
    d.n = 0;
    cur = 0;
    while (cur != TXS_SCAN_END)
        CHECK_EQ(txs_scan_decided(s, &cur, 0, on_decided, &d), 1);
    CHECK_EQ(d.n, 6);
    /* Two visited, then twenty more remembered: ids 21..35 and the rest
     * of the first six are forgotten meanwhile. */
    d.n = 0;
    cur = 0;
    CHECK_EQ(txs_scan_decided(s, &cur, 2, on_decided, &d), 2);
    CHECK(cur != TXS_SCAN_END);
    for (uint64_t id = 100; id < 120; id++)
        CHECK_EQ(txs_note_decided(s, id, id), 0);
    while (cur != TXS_SCAN_END)
        txs_scan_decided(s, &cur, 3, on_decided, &d);
    CHECK_EQ(d.n, 2 + 8);
    CHECK_EQ(d.ids[0], 7);
    CHECK_EQ(d.ids[1], 14);
    for (size_t i = 2; i < d.n; i++)
        CHECK_EQ(d.ids[i], 112 + (i - 2));
    /* Interleaved at random: the visits are increasing (ids are
     * remembered in increasing order), and those remembered throughout
     * were all visited. */
    static struct dseen pre;
    uint64_t rs = 5, next = 1000;
    for (int round = 0; round < 50; round++) {
        pre.n = 0;
        cur = 0;
        while (cur != TXS_SCAN_END)
            txs_scan_decided(s, &cur, SIZE_MAX, on_decided, &pre);
        d.n = 0;
        cur = 0;
        while (cur != TXS_SCAN_END) {
            txs_scan_decided(s, &cur, 1 + trand(&rs) % 3, on_decided, &d);
            for (uint64_t k = trand(&rs) % 3; k > 0; k--, next++)
                CHECK_EQ(txs_note_decided(s, next, next), 0);
        }
        for (size_t i = 1; i < d.n; i++)
            CHECK(d.ids[i] > d.ids[i - 1]);
        for (size_t i = 0; i < pre.n; i++) {
            if (txs_decided(s, pre.ids[i], NULL) != 0)
                continue; /* forgotten meanwhile */
            bool seen = false;
            for (size_t j = 0; j < d.n; j++)
                seen |= d.ids[j] == pre.ids[i];
            CHECK(seen);
        }
    }
    txs_destroy(s);
}

static void run_case(const struct tcase *tc)
{
    tc->run();
    if (__lsan_do_recoverable_leak_check && __lsan_do_recoverable_leak_check() != 0) {
        fprintf(stderr, "%s: leaks\n", tc->name);
        exit(1);
    }
}

static const struct tcase cases[] = {
    {"versions", case_versions, 0},
    {"discard_estale", case_discard_estale, 0},
    {"put_last_writer_wins", case_put_last_writer_wins, 0},
    {"put_einval", case_put_einval, 0},
    {"empty_key_and_value", case_empty_key_and_value, 0},
    {"put_busy", case_put_busy, 0},
    {"many_keys", case_many_keys, 0},
    {"prepare_commit", case_prepare_commit, 0},
    {"stale_read", case_stale_read, 0},
    {"absent_read_then_written", case_absent_read_then_written, 0},
    {"write_lock", case_write_lock, 0},
    {"read_lock", case_read_lock, 0},
    {"read_and_write_same_key", case_read_and_write_same_key, 0},
    {"ts_conflict", case_ts_conflict, 0},
    {"conflict_order", case_conflict_order, 0},
    {"prepare_einval", case_prepare_einval, 0},
    {"repeat_prepare", case_repeat_prepare, 0},
    {"commit_abort_unknown", case_commit_abort_unknown, 0},
    {"abort_releases", case_abort_releases, 0},
    {"force", case_force, 0},
    {"force_too_old_discarded", case_force_too_old_discarded, 0},
    {"max_prepared", case_max_prepared, 0},
    {"max_bytes", case_max_bytes, 0},
    {"stats", case_stats, 0},
    {"random_small", case_random_small, 0},
    {"random_one_version", case_random_one_version, 0},
    {"random_many_versions", case_random_many_versions, 0},
    {"install", case_install, 0},
    {"scan_all", case_scan_all, 0},
    {"scan_while_changing", case_scan_while_changing, 0},
    {"scan_prepared", case_scan_prepared, 0},
    {"decided_recorded", case_decided_recorded, 0},
    {"decided_fifo", case_decided_fifo, 0},
    {"prepare_decided", case_prepare_decided, 0},
    {"note_decided", case_note_decided, 0},
    {"scan_decided", case_scan_decided, 0},
};

int main(int argc, char **argv)
{
    return tcase_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]), "txn store", run_case);
}
