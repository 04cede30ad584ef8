/*
 * libFuzzer target for TxnStore's wire format (apps/txn/msg.c), built with
 * clang -fsanitize=fuzzer,address,undefined (see CMakeLists.txt) and run by
 * tests/fuzz/test_fuzz_txnmsg.sh. Every call gets a malloc'd copy of exactly
 * the bytes it may read, so ASan reports any read past them. For each input
 * it checks that:
 *   - txn_frame_len, asked about every prefix of the input, answers 0 (need
 *     more) until it answers for good: -1 from some length on, or 1 with
 *     the same frame length L for every prefix of at least L bytes;
 *   - txn_msg_decode never crashes, and succeeds only on what
 *     txn_frame_len calls a whole frame of exactly that length;
 *   - a frame that decodes re-encodes to the same bytes (the encoding is
 *     canonical), txn_msg_size agrees, a buffer one byte short is refused,
 *     and every decoded string points inside the frame;
 *   - no proper prefix of a frame that decodes decodes, neither as it is
 *     nor with its header's body length cut to match (the body format is
 *     prefix-free).
 * An oracle failure prints "fuzz_txnmsg: ..." and aborts: this is a test.
 */
#include "msg.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fail(const char *what, size_t a, size_t b)
{
    fprintf(stderr, "fuzz_txnmsg: %s (%zu, %zu)\n", what, a, b);
    abort();
}

static uint8_t *copy(const uint8_t *p, size_t n)
{
    uint8_t *b = malloc(n ? n : 1);
    if (!b)
        abort(); /* a test harness: out of memory is not a finding */
    if (n)
        memcpy(b, p, n);
    return b;
}

/* Decodes an exact copy of the first N bytes of P. */
static int decode_copy(const uint8_t *p, size_t n, struct txn_msg *m)
{
    uint8_t *b = copy(p, n);
    const char *why = NULL;
    int rc = txn_msg_decode(b, n, m, &why);
    if (rc != 0 && (rc != -1 || !why || !*why))
        fail("decode failed without a reason", n, (size_t)rc);
    free(b);
    return rc;
}

/* txn_frame_len on every prefix: 0 until a final answer. Returns the
 * answer for all N bytes, with *LEN the frame length when it is 1. */
static int check_frame_len(const uint8_t *in, size_t n, size_t *len)
{
    int final = 0;
    size_t flen = 0;
    for (size_t k = 0; k <= n; k++) {
        /* The header is at most 16 bytes: below that, an exact copy. */
        uint8_t *b = k < TXN_HDR_LEN ? copy(in, k) : NULL;
        size_t fl = 0;
        const char *why = NULL;
        int st = txn_frame_len(b ? b : in, k, &fl, &why);
        free(b);
        if (st < -1 || st > 1)
            fail("txn_frame_len returned an unknown value", k, (size_t)st);
        if (st == -1 && (!why || !*why))
            fail("txn_frame_len refused without a reason", k, 0);
        if (st == 1 && (fl < TXN_HDR_LEN || fl > k || fl > TXN_HDR_LEN + (size_t)TXN_BODY_MAX))
            fail("txn_frame_len gave a length out of range", k, fl);
        if (final == 0 && st == 1 && fl != k)
            fail("txn_frame_len found a frame later than its end", k, fl);
        if (final != 0 && (st != final || (st == 1 && fl != flen)))
            fail("txn_frame_len changed its answer as bytes arrived", k, fl);
        if (final == 0 && st != 0) {
            final = st;
            flen = fl;
        }
    }
    *len = flen;
    return final;
}

/* Every decoded string lies inside the frame [F, F + N). */
static void check_inside(const struct txn_bytes *s, const uint8_t *f, size_t n)
{
    if (s->n == 0)
        return;
    if (!s->p || s->p < f + TXN_HDR_LEN || s->n > n || s->p > f + n - s->n)
        fail("a decoded string points outside the frame", (size_t)(s->p - f), s->n);
}

static void check_pointers(const struct txn_msg *m, const uint8_t *f, size_t n)
{
    check_inside(&m->key, f, n);
    check_inside(&m->val, f, n);
    if (m->nreads > TXN_SET_MAX || m->nwrites > TXN_SET_MAX)
        fail("a decoded set is over TXN_SET_MAX", m->nreads, m->nwrites);
    for (uint32_t i = 0; i < m->nreads; i++)
        check_inside(&m->reads[i].key, f, n);
    for (uint32_t i = 0; i < m->nwrites; i++) {
        check_inside(&m->writes[i].key, f, n);
        check_inside(&m->writes[i].val, f, n);
    }
}

/* The decoded message M of frame F (N bytes) encodes back to F. */
static void check_canonical(const struct txn_msg *m, const uint8_t *f, size_t n)
{
    size_t size = txn_msg_size(m);
    if (size != n)
        fail("txn_msg_size disagrees with the frame's length", size, n);
    uint8_t *out = malloc(n);
    if (!out)
        abort();
    size_t len = txn_msg_encode(m, out, n);
    if (len != n)
        fail("re-encoding gave another length", len, n);
    if (memcmp(out, f, n) != 0)
        fail("re-encoding gave other bytes", n, 0);
    if (txn_msg_encode(m, out, n - 1) != 0)
        fail("encoding into a buffer one byte short succeeded", n, 0);
    free(out);
}

/* No proper prefix of the frame F (N bytes) decodes, as it is or with its
 * body length cut to match. Long frames are sampled: about 64 lengths. */
static void check_prefixes(const uint8_t *f, size_t n, struct txn_msg *m)
{
    size_t step = n <= 256 ? 1 : n / 64;
    for (size_t k = 0; k < n; k += (k < TXN_HDR_LEN + 2 || k + 2 >= n) ? 1 : step) {
        if (decode_copy(f, k, m) == 0)
            fail("a proper prefix of a frame decoded", k, n);
        if (k < TXN_HDR_LEN)
            continue;
        uint8_t *b = copy(f, k);
        uint32_t body = (uint32_t)(k - TXN_HDR_LEN);
        for (int i = 0; i < 4; i++)
            b[4 + i] = (uint8_t)(body >> (8 * i));
        const char *why = NULL;
        if (txn_msg_decode(b, k, m, &why) == 0)
            fail("a frame's body cut short decoded", k, n);
        free(b);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct txn_msg m; /* about 5 KiB: off the stack */
    uint8_t *in = copy(data, size);
    size_t flen = 0;
    int st = check_frame_len(in, size, &flen);

    /* The whole input as one frame: only a whole frame decodes. */
    if (decode_copy(in, size, &m) == 0 && (st != 1 || flen != size))
        fail("decode accepted what txn_frame_len does not call one frame", size, flen);

    if (st == 1) {
        uint8_t *f = copy(in, flen);
        const char *why = NULL;
        if (txn_msg_decode(f, flen, &m, &why) == 0) {
            check_pointers(&m, f, flen);
            check_canonical(&m, f, flen);
            check_prefixes(f, flen, &m);
        }
        free(f);
    }
    free(in);
    return 0;
}
