/*
 * libFuzzer target for demi-kv's RESP parser (apps/kv/resp.c), built with
 * clang -fsanitize=fuzzer,address,undefined (see CMakeLists.txt) and run by
 * tests/fuzz/test_fuzz_resp.sh. For each input it checks that:
 *   - the parser reads only the bytes it is given: every call gets a
 *     malloc'd copy of exactly those bytes, so ASan reports any read past;
 *   - feeding the input in chunks (sizes taken from its first byte) gives
 *     the same commands and errors as feeding it whole, the resumable
 *     contract the server relies on when a command spans several pops;
 *   - every reported argument lies inside the buffer it was parsed from.
 * The input is also split at its first 0xff byte into a glob pattern and a
 * string for glob_match (apps/kv/glob.c), which must neither crash nor hang.
 */
#include "glob.h"
#include "resp.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A running hash of the results, to compare two ways of parsing. */
static uint64_t mixin(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
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

static uint64_t parse(const uint8_t *in, size_t n, size_t chunk)
{
    struct resp_parser p;
    resp_init(&p);
    uint64_t h = 0xcbf29ce484222325ull;
    uint8_t *pend = NULL;
    size_t plen = 0, fed = 0;
    int stop = 0;
    while (fed < n && !stop) {
        size_t k = chunk ? (n - fed < chunk ? n - fed : chunk) : n - fed;
        uint8_t *buf = malloc(plen + k);
        if (!buf)
            abort();
        if (plen)
            memcpy(buf, pend, plen);
        memcpy(buf + plen, in + fed, k);
        free(pend);
        fed += k;
        size_t len = plen + k, off = 0;
        while (off < len) {
            uint8_t *view = copy(buf + off, len - off);
            size_t used;
            int st = resp_parse(&p, view, len - off, &used);
            if (st == RESP_CMD) {
                for (int i = 0; i < p.argc; i++) {
                    const uint8_t *a = p.argv[i].ptr;
                    /* Multibulk arguments point into the buffer; inline
                     * ones into the parser's own text. */
                    int inside = a >= view && a + p.argv[i].len <= view + (len - off);
                    if (!inside && view[0] == '*')
                        abort();
                    h = mixin(h, a, p.argv[i].len);
                    h = mixin(h, "|", 1);
                }
            }
            if (st != RESP_MORE) /* how often it asks for more depends on the chunks */
                h = mixin(h, &st, sizeof(st));
            if (st == RESP_ERROR)
                h = mixin(h, p.err, strlen(p.err));
            free(view);
            if (st == RESP_MORE)
                break;
            if (st == RESP_ERROR || st == RESP_NOMEM) {
                stop = 1;
                break;
            }
            if (used == 0 || used > len - off)
                abort();
            off += used;
        }
        plen = len - off;
        pend = copy(buf + off, plen);
        free(buf);
    }
    if (!stop && plen)
        h = mixin(h, "incomplete", 10);
    free(pend);
    resp_free(&p);
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t chunk = 1 + data[0] % 16;
    uint64_t whole = parse(data, size, 0);
    uint64_t split = parse(data, size, chunk);
    if (whole != split)
        abort();

    const uint8_t *sep = memchr(data, 0xff, size);
    if (sep) {
        size_t pl = (size_t)(sep - data);
        uint8_t *pat = copy(data, pl), *str = copy(sep + 1, size - pl - 1);
        (void)glob_match(pat, pl, str, size - pl - 1, data[0] & 1);
        free(pat);
        free(str);
    }
    return 0;
}
