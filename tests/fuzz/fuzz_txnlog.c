/*
 * libFuzzer target for demi-txnd's log replay (apps/txn/logrec.c: a log
 * record's payload, as read back from the file, applied to a store),
 * built with clang -fsanitize=fuzzer,address,undefined (see
 * CMakeLists.txt) and run by tests/fuzz/test_fuzz_txnlog.sh. The entries
 * are msg.c's frames (fuzz_txnmsg fuzzes that decoder); this target covers
 * what logrec.c adds: walking a payload entry by entry, refusing the types
 * a log never holds, and driving the store with forced prepares, commits,
 * aborts, loads, state transfers, decisions learned (SYNC_DECIDED),
 * views (VIEW_START) and the store's completeness (SYNC_BEGIN, SYNC_END)
 * in any order. Every input gets a malloc'd copy of
 * exactly its bytes and a fresh store with small bounds (four remembered
 * decisions, so that forgetting them is exercised). It checks that:
 *   - lrec_apply never crashes and returns 0, EBADMSG, ENOSPC or ENOMEM,
 *     with a reason naming the record when it fails;
 *   - on success, every entry was counted once (prepares, commits, aborts,
 *     loads, stale entries, syncs, synced items, decisions and views add
 *     up to the entries txn_frame_len finds), and the store remembers no
 *     more decisions than its bound;
 *   - the store frees everything it took (LeakSanitizer, at exit of each
 *     run), whatever order the entries came in.
 * An oracle failure prints "fuzz_txnlog: ..." and aborts: this is a test.
 */
#include "logrec.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fail(const char *what, size_t a, size_t b)
{
    fprintf(stderr, "fuzz_txnlog: %s (%zu, %zu)\n", what, a, b);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        abort(); /* a test harness: out of memory is not a finding */
    if (size)
        memcpy(buf, data, size);
    struct txs_limits lim = {.max_versions = 2, .max_prepared = 8, .max_bytes = 1 << 20, .max_decided = 4};
    struct txs *s = txs_create(&lim);
    if (!s)
        abort();
    struct lrec_stats st;
    memset(&st, 0, sizeof(st));
    char msg[256] = "";
    int rc = lrec_apply(s, buf, size, 1, &st, msg, sizeof(msg));
    if (rc != 0 && rc != EBADMSG && rc != ENOSPC && rc != ENOMEM)
        fail("an unexpected error", (size_t)rc, size);
    if (rc != 0 && !strstr(msg, "record 1"))
        fail("an error without a reason naming the record", (size_t)rc, size);
    if (rc == 0) {
        size_t n = 0, off = 0, flen = 0;
        const char *why = NULL;
        while (off < size && txn_frame_len(buf + off, size - off, &flen, &why) == 1) {
            off += flen;
            n++;
        }
        if (off != size)
            fail("a payload accepted that is not whole frames", off, size);
        uint64_t counted = st.prepares + st.commits + st.aborts + st.loads + st.stale + st.syncs + st.sync_items +
                           st.ends + st.decided + st.views;
        if (counted != n)
            fail("entries not counted once each", (size_t)counted, n);
        struct txs_stats ts;
        txs_get_stats(s, &ts);
        if (ts.decided > lim.max_decided)
            fail("more decisions remembered than the bound", (size_t)ts.decided, lim.max_decided);
    }
    txs_destroy(s);
    free(buf);
    return 0;
}
