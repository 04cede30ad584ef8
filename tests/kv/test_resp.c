/*
 * Unit test of demi-kv's RESP parser (apps/kv/resp.c): commands, inline
 * commands, every protocol error text (Redis 7.0's), the resumable protocol
 * with input split at every byte, and random inputs. Every buffer handed to
 * the parser is a malloc'd copy of exactly the bytes it may read, so that
 * the sanitizer build catches a read past them.
 */
#include "resp.h"
#include "tcheck.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* One parse result, flattened for comparison: "CMD a|b|c", "EMPTY",
 * "ERR <text>", or "MORE". */
struct out {
    char s[1 << 16];
    size_t len;
};

static void out_add(struct out *o, const char *p, size_t n)
{
    CHECK(o->len + n < sizeof(o->s));
    memcpy(o->s + o->len, p, n);
    o->len += n;
    o->s[o->len] = '\0';
}

static void out_str(struct out *o, const char *s)
{
    out_add(o, s, strlen(s));
}

/* Records a result and returns how many bytes it took. */
static void record(struct out *o, struct resp_parser *p, int st)
{
    if (st == RESP_CMD) {
        out_str(o, "CMD ");
        for (int i = 0; i < p->argc; i++) {
            if (i)
                out_str(o, "|");
            out_add(o, (const char *)p->argv[i].ptr, p->argv[i].len);
        }
        out_str(o, "\n");
    } else if (st == RESP_EMPTY) {
        out_str(o, "EMPTY\n");
    } else if (st == RESP_ERROR) {
        out_str(o, "ERR ");
        out_str(o, p->err);
        out_str(o, "\n");
    } else if (st == RESP_NOMEM) {
        out_str(o, "NOMEM\n");
    }
}

/* A malloc'd copy of exactly n bytes (n == 0: a 1-byte block, len 0). */
static uint8_t *exact(const uint8_t *p, size_t n)
{
    uint8_t *b = malloc(n ? n : 1);
    CHECK(b);
    if (n)
        memcpy(b, p, n);
    return b;
}

/*
 * Feeds [in, in + n) to a parser in chunks of @chunk bytes (0: all at
 * once), keeping the unconsumed bytes as the server does, and records every
 * result. Stops at the first error. Appends "MORE" if bytes are left over.
 */
static void parse_stream(const uint8_t *in, size_t n, size_t chunk, struct out *o)
{
    struct resp_parser p;
    resp_init(&p);
    o->len = 0;
    o->s[0] = '\0';
    uint8_t *pend = NULL;
    size_t plen = 0, fed = 0;
    bool failed = false;
    while (fed < n && !failed) {
        size_t k = chunk ? (n - fed < chunk ? n - fed : chunk) : n;
        /* pending + new bytes, in a buffer of exactly that size */
        uint8_t *buf = malloc(plen + k);
        CHECK(buf);
        if (plen)
            memcpy(buf, pend, plen);
        memcpy(buf + plen, in + fed, k);
        free(pend);
        fed += k;
        size_t len = plen + k, off = 0;
        for (;;) {
            uint8_t *view = exact(buf + off, len - off);
            size_t used;
            int st = resp_parse(&p, view, len - off, &used);
            record(o, &p, st);
            free(view);
            if (st == RESP_MORE)
                break;
            if (st == RESP_ERROR || st == RESP_NOMEM) {
                failed = true;
                break;
            }
            CHECK(used > 0 && used <= len - off);
            off += used;
            if (off == len)
                break;
        }
        plen = len - off;
        pend = exact(buf + off, plen);
        free(buf);
    }
    if (!failed && plen)
        out_str(o, "MORE\n");
    free(pend);
    resp_free(&p);
}

static struct out got, ref;

/* Parses @in whole and in chunks of every size from 1 to 9; all must give
 * @want. */
static void expect(const char *in, size_t n, const char *want)
{
    if (n == (size_t)-1)
        n = strlen(in);
    parse_stream((const uint8_t *)in, n, 0, &got);
    if (strcmp(got.s, want) != 0) {
        fprintf(stderr, "input %zu bytes: got\n%s\nwant\n%s\n", n, got.s, want);
        exit(1);
    }
    for (size_t c = 1; c < 10; c++) {
        parse_stream((const uint8_t *)in, n, c, &got);
        if (strcmp(got.s, want) != 0) {
            fprintf(stderr, "input %zu bytes in chunks of %zu: got\n%s\nwant\n%s\n", n, c, got.s, want);
            exit(1);
        }
    }
}

#define E(in, want) expect(in, sizeof(in) - 1, want)

static void test_multibulk(void)
{
    E("*1\r\n$4\r\nPING\r\n", "CMD PING\n");
    E("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n", "CMD SET|k|value\n");
    E("*2\r\n$3\r\nGET\r\n$0\r\n\r\n", "CMD GET|\n");
    /* Binary-safe payloads: CR, LF and NUL inside a bulk are data. */
    E("*2\r\n$4\r\nECHO\r\n$5\r\na\r\n\0b\r\n", "CMD ECHO|a\r\n\0b\n");
    /* Pipelined commands, and a trailing incomplete one. */
    E("*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET", "CMD PING\nCMD PING\nMORE\n");
    /* Empty commands are consumed without a command. */
    E("*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n", "EMPTY\nEMPTY\nCMD PING\n");
    /* Redis skips the two bytes after a bulk and after '\r' unchecked. */
    E("*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n", "CMD PING\nCMD PING\n");
    E("*1\rx$4\rxPING\r\n", "CMD PING\n");
    /* The largest bulk Redis allows is accepted (and waits for its bytes). */
    E("*1\r\n$536870912\r\n", "MORE\n");
    E("*2147483647\r\n", "MORE\n");
}

static void test_errors(void)
{
    E("*1\r\n$536870913\r\n", "ERR ERR Protocol error: invalid bulk length\n");
    E("*1\r\n$-1\r\n", "ERR ERR Protocol error: invalid bulk length\n");
    E("*1\r\n$ 3\r\n", "ERR ERR Protocol error: invalid bulk length\n");
    E("*1\r\n$+3\r\n", "ERR ERR Protocol error: invalid bulk length\n");
    E("*1\r\n$03\r\n", "ERR ERR Protocol error: invalid bulk length\n");
    E("*1\r\n$\r\n", "ERR ERR Protocol error: invalid bulk length\n");
    E("*1\r\n$99999999999999999999999\r\n", "ERR ERR Protocol error: invalid bulk length\n");
    E("*2147483648\r\n", "ERR ERR Protocol error: invalid multibulk length\n");
    E("*01\r\n", "ERR ERR Protocol error: invalid multibulk length\n");
    E("*1x\r\n", "ERR ERR Protocol error: invalid multibulk length\n");
    E("*\r\n", "ERR ERR Protocol error: invalid multibulk length\n");
    E("*-0\r\n", "ERR ERR Protocol error: invalid multibulk length\n");
    E("*1\r\nx3\r\n", "ERR ERR Protocol error: expected '$', got 'x'\n");
    E("*1\r\n\r3\r\n", "ERR ERR Protocol error: expected '$', got ' '\n");
    E("*1\r\n\n3\r\n", "ERR ERR Protocol error: expected '$', got ' '\n");
    E("*2\r\n$1\r\na\r\n:1\r\n", "ERR ERR Protocol error: expected '$', got ':'\n");
    E("PING\r\n*1\r\n$-5\r\nPING\r\n", "CMD PING\nERR ERR Protocol error: invalid bulk length\n");
    E("ECHO \"abc\r\n", "ERR ERR Protocol error: unbalanced quotes in request\n");
    E("ECHO 'abc\r\n", "ERR ERR Protocol error: unbalanced quotes in request\n");
    E("ECHO \"a\"b\r\n", "ERR ERR Protocol error: unbalanced quotes in request\n");
    E("ECHO 'a'b\r\n", "ERR ERR Protocol error: unbalanced quotes in request\n");
    E("ECHO a\"b c\"d\r\n", "ERR ERR Protocol error: unbalanced quotes in request\n");
    E("ECHO \"a\\\"\r\n", "ERR ERR Protocol error: unbalanced quotes in request\n");

    /* Lines longer than 64 KiB without an end. */
    size_t big = RESP_MAX_INLINE + 10;
    char *b = malloc(big + 16);
    CHECK(b);
    memset(b, 'a', big);
    parse_stream((const uint8_t *)b, big, 0, &got);
    CHECK(strcmp(got.s, "ERR ERR Protocol error: too big inline request\n") == 0);
    parse_stream((const uint8_t *)b, RESP_MAX_INLINE, 0, &got);
    CHECK(strcmp(got.s, "MORE\n") == 0);
    b[0] = '*';
    parse_stream((const uint8_t *)b, big, 0, &got);
    CHECK(strcmp(got.s, "ERR ERR Protocol error: too big mbulk count string\n") == 0);
    memcpy(b, "*1\r\n$", 5);
    parse_stream((const uint8_t *)b, big, 0, &got);
    CHECK(strcmp(got.s, "ERR ERR Protocol error: too big bulk count string\n") == 0);
    /* A NUL before the line end hides it, as strchr() does in Redis: the
     * command waits, then fails as too big. */
    memcpy(b,
           "*1\r\n\0"
           "3\r\n",
           8);
    parse_stream((const uint8_t *)b, 8, 0, &got);
    CHECK(strcmp(got.s, "MORE\n") == 0);
    parse_stream((const uint8_t *)b, big, 0, &got);
    CHECK(strcmp(got.s, "ERR ERR Protocol error: too big bulk count string\n") == 0);
    free(b);
}

static void test_inline(void)
{
    E("PING\r\n", "CMD PING\n");
    E("PING\n", "CMD PING\n");
    E("PING\r\r\n", "CMD PING\n");
    E("SET a b\r\nGET a\r\n", "CMD SET|a|b\nCMD GET|a\n");
    E("  SET\t a   b  \r\n", "CMD SET|a|b\n");
    E("\r\n\n   \r\nPING\r\n", "EMPTY\nEMPTY\nEMPTY\nCMD PING\n");
    E("ECHO \"a\\x41\\n\\r\\t\\b\\a\\q\\\\\"\r\n", "CMD ECHO|aA\n\r\t\b\a"
                                                   "q\\\n");
    E("ECHO \"\\x4\" \"\\xzz\"\r\n", "CMD ECHO|x4|xzz\n");
    E("ECHO 'it\\'s' 'a\\nb'\r\n", "CMD ECHO|it's|a\\nb\n");
    E("ECHO \"\" ''\r\n", "CMD ECHO||\n");
    E("ECHO ab\"c d\"\r\n", "CMD ECHO|abc d\n");
    E("ECHO a\vb\r\n", "CMD ECHO|a\vb\n");
    E("PING", "MORE\n");
}

static void test_str2ll(void)
{
    long long v;
    CHECK(resp_str2ll((const uint8_t *)"0", 1, &v) && v == 0);
    CHECK(resp_str2ll((const uint8_t *)"-1", 2, &v) && v == -1);
    CHECK(resp_str2ll((const uint8_t *)"9223372036854775807", 19, &v) && v == LLONG_MAX);
    CHECK(resp_str2ll((const uint8_t *)"-9223372036854775808", 20, &v) && v == LLONG_MIN);
    CHECK(!resp_str2ll((const uint8_t *)"9223372036854775808", 19, &v));
    CHECK(!resp_str2ll((const uint8_t *)"-9223372036854775809", 20, &v));
    CHECK(!resp_str2ll((const uint8_t *)"18446744073709551616", 20, &v));
    CHECK(!resp_str2ll((const uint8_t *)"", 0, &v));
    CHECK(!resp_str2ll((const uint8_t *)"-", 1, &v));
    CHECK(!resp_str2ll((const uint8_t *)"-0", 2, &v));
    CHECK(!resp_str2ll((const uint8_t *)"01", 2, &v));
    CHECK(!resp_str2ll((const uint8_t *)"+1", 2, &v));
    CHECK(!resp_str2ll((const uint8_t *)" 1", 2, &v));
    CHECK(!resp_str2ll((const uint8_t *)"1 ", 2, &v));
    CHECK(!resp_str2ll((const uint8_t *)"1x", 2, &v));
    CHECK(!resp_str2ll((const uint8_t *)"000000000000000000001", 21, &v));
}

static void test_need(void)
{
    struct resp_parser p;
    resp_init(&p);
    const char *in = "*2\r\n$3\r\nSET\r\n$100\r\nabc";
    size_t used;
    CHECK_EQ(resp_parse(&p, (const uint8_t *)in, strlen(in), &used), RESP_MORE);
    CHECK_EQ(used, 0);
    /* The bulk starts at 19 and needs its 100 bytes and 2 more. */
    CHECK_EQ(p.need, 19 + 100 + 2);
    resp_free(&p);
}

/* Random inputs: valid commands with random damage, parsed whole and in
 * random chunks; both must agree (and never read out of bounds). */
static void test_random(void)
{
    static const char *const frags[] = {
        "*",
        "$",
        "\r\n",
        "\r",
        "\n",
        "0",
        "1",
        "3",
        "-1",
        "12",
        "2147483648",
        "536870913",
        "SET",
        "GET",
        " ",
        "\"",
        "'",
        "\\",
        "\\x4",
        "1",
        "\0",
        "PING",
        "*1\r\n$4\r\nPING\r\n",
        "a",
        "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n",
    };
    const size_t nf = sizeof(frags) / sizeof(frags[0]);
    uint64_t seed = 42;
    static uint8_t in[4096];
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = 0;
        int parts = 1 + (int)(trand(&seed) % 24);
        for (int k = 0; k < parts; k++) {
            size_t f = trand(&seed) % nf;
            size_t fl = f == 20 ? 1 : strlen(frags[f]);
            if (n + fl > sizeof(in))
                break;
            memcpy(in + n, frags[f], fl);
            n += fl;
        }
        if (trand(&seed) % 4 == 0 && n > 0)
            in[trand(&seed) % n] = (uint8_t)trand(&seed);
        parse_stream(in, n, 0, &ref);
        size_t chunk = 1 + trand(&seed) % 7;
        parse_stream(in, n, chunk, &got);
        if (strcmp(got.s, ref.s) != 0) {
            fprintf(stderr, "iteration %d: chunks of %zu disagree with one buffer:\n%s\nvs\n%s\n", iter, chunk, got.s,
                    ref.s);
            exit(1);
        }
    }
}

int main(void)
{
    test_multibulk();
    test_errors();
    test_inline();
    test_str2ll();
    test_need();
    test_random();
    printf("ok\n");
    return 0;
}
