/*
 * RESP2 request parser (see resp.h). Follows what Redis 7.0 does with the
 * same bytes, including its quirks, so that a client sees the same replies:
 *
 * - A header line ("*3", "$5") ends at the first '\r' and the byte after it
 *   is skipped unchecked; the two bytes after a bulk argument are skipped
 *   unchecked too. Redis finds line ends with strchr(), so a NUL byte before
 *   the line end hides it: the line then never completes, and fails as "too
 *   big" once more than 64 KiB wait. We search the same way, bounded by len.
 * - A request that does not start with '*' is an inline command: one line
 *   up to '\n' (a '\r' before it is dropped), split into arguments with
 *   Redis's rules for quotes and escapes (sdssplitargs).
 *
 * Every access is checked against len: the parser never reads past the
 * bytes it is given (tests/fuzz/fuzz_resp.c checks this under ASan).
 */
#include "resp.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    ST_START = 0, /* nothing read yet */
    ST_COUNT,     /* reading "*<count>\r\n" */
    ST_BULKHDR,   /* reading "$<len>\r\n" */
    ST_BULKDATA,  /* reading <len> bytes and the two after them */
    ST_INLINE,    /* looking for the end of an inline line */
};

void resp_init(struct resp_parser *p)
{
    memset(p, 0, sizeof(*p));
    p->state = ST_START;
}

void resp_free(struct resp_parser *p)
{
    free(p->argv);
    free(p->text);
    resp_init(p);
}

void resp_reset(struct resp_parser *p)
{
    p->state = ST_START;
    p->pos = 0;
    p->scan = 0;
    p->left = 0;
    p->bulk = 0;
    p->argc = 0;
    p->need = 0;
    p->err = NULL;
}

bool resp_str2ll(const uint8_t *s, size_t len, long long *out)
{
    /* Up to 20 characters: "-9223372036854775808" is the longest. */
    if (len == 0 || len > 20)
        return false;
    if (len == 1 && s[0] == '0') {
        *out = 0;
        return true;
    }
    size_t i = 0;
    bool neg = s[0] == '-';
    if (neg)
        i++;
    if (i == len || s[i] < '1' || s[i] > '9')
        return false;
    unsigned long long v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (ULLONG_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (unsigned long long)LLONG_MAX + 1)
            return false;
        *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
    } else {
        if (v > (unsigned long long)LLONG_MAX)
            return false;
        *out = (long long)v;
    }
    return true;
}

static int fail(struct resp_parser *p, const char *msg)
{
    p->err = msg;
    return RESP_ERROR;
}

/*
 * Finds the first @c at or after p->scan, as strchr() on Redis's buffer
 * would: a NUL byte first means "not found", now and for ever (the search
 * stays parked on it). Returns the index, or -1.
 */
static ptrdiff_t find_line_end(struct resp_parser *p, const uint8_t *buf, size_t len, uint8_t c)
{
    size_t i = p->scan;
    while (i < len && buf[i] != c && buf[i] != '\0')
        i++;
    p->scan = i;
    if (i < len && buf[i] == c)
        return (ptrdiff_t)i;
    return -1;
}

static int grow_argv(struct resp_parser *p, size_t want)
{
    if (want <= p->cap)
        return 0;
    size_t cap = p->cap ? p->cap : 8;
    while (cap < want)
        cap *= 2;
    struct resp_arg *a = realloc(p->argv, cap * sizeof(*a));
    if (!a)
        return RESP_NOMEM;
    p->argv = a;
    p->cap = cap;
    return 0;
}

static int add_arg(struct resp_parser *p, size_t off, size_t len)
{
    if ((size_t)p->argc == p->cap && grow_argv(p, p->cap + 1))
        return RESP_NOMEM;
    p->argv[p->argc].off = off;
    p->argv[p->argc].len = len;
    p->argc++;
    return 0;
}

static bool is_hex(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static uint8_t hex_val(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return (uint8_t)(c - '0');
    if (c >= 'a' && c <= 'f')
        return (uint8_t)(c - 'a' + 10);
    return (uint8_t)(c - 'A' + 10);
}

/* isspace() in the C locale. */
static bool is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/*
 * Splits the inline line [s, s + n) into arguments as sdssplitargs does:
 * blanks separate words; "..." takes \xHH, \n, \r, \t, \b, \a and \<c>
 * escapes; '...' takes \' only; a closing quote must be followed by a blank
 * or the end of the line. The line holds no NUL (the search for its end
 * would have stopped there), so the end of the line is the end of the
 * string. Returns 0, RESP_ERROR (unbalanced quotes) or RESP_NOMEM.
 */
static int split_inline(struct resp_parser *p, const uint8_t *s, size_t n)
{
    if (n > p->text_cap) {
        uint8_t *t = realloc(p->text, n);
        if (!t)
            return RESP_NOMEM;
        p->text = t;
        p->text_cap = n;
    }
    uint8_t *out = p->text;
    size_t o = 0, i = 0;
    p->argc = 0;
    for (;;) {
        while (i < n && is_space(s[i]))
            i++;
        if (i == n)
            return 0;
        size_t start = o;
        bool inq = false, insq = false;
        for (bool done = false; !done;) {
            if (inq) {
                if (i == n)
                    return fail(p, "ERR Protocol error: unbalanced quotes in request");
                if (s[i] == '\\' && i + 3 < n && s[i + 1] == 'x' && is_hex(s[i + 2]) && is_hex(s[i + 3])) {
                    out[o++] = (uint8_t)(hex_val(s[i + 2]) * 16 + hex_val(s[i + 3]));
                    i += 4;
                } else if (s[i] == '\\' && i + 1 < n) {
                    uint8_t c = s[i + 1];
                    switch (c) {
                    case 'n':
                        c = '\n';
                        break;
                    case 'r':
                        c = '\r';
                        break;
                    case 't':
                        c = '\t';
                        break;
                    case 'b':
                        c = '\b';
                        break;
                    case 'a':
                        c = '\a';
                        break;
                    default:
                        break;
                    }
                    out[o++] = c;
                    i += 2;
                } else if (s[i] == '"') {
                    if (i + 1 < n && !is_space(s[i + 1]))
                        return fail(p, "ERR Protocol error: unbalanced quotes in request");
                    i++;
                    done = true;
                } else {
                    out[o++] = s[i++];
                }
            } else if (insq) {
                if (i == n)
                    return fail(p, "ERR Protocol error: unbalanced quotes in request");
                if (s[i] == '\\' && i + 1 < n && s[i + 1] == '\'') {
                    out[o++] = '\'';
                    i += 2;
                } else if (s[i] == '\'') {
                    if (i + 1 < n && !is_space(s[i + 1]))
                        return fail(p, "ERR Protocol error: unbalanced quotes in request");
                    i++;
                    done = true;
                } else {
                    out[o++] = s[i++];
                }
            } else if (i == n) {
                done = true;
            } else {
                switch (s[i]) {
                case ' ':
                case '\n':
                case '\r':
                case '\t':
                    done = true;
                    i++;
                    break;
                case '"':
                    inq = true;
                    i++;
                    break;
                case '\'':
                    insq = true;
                    i++;
                    break;
                default:
                    out[o++] = s[i++];
                    break;
                }
            }
        }
        if (add_arg(p, start, o - start))
            return RESP_NOMEM;
    }
}

static int finish_cmd(struct resp_parser *p, const uint8_t *base, size_t *used)
{
    for (int i = 0; i < p->argc; i++)
        p->argv[i].ptr = base + p->argv[i].off;
    *used = p->pos;
    int argc = p->argc;
    resp_reset(p);
    p->argc = argc; /* resp_reset clears it; the command stays readable */
    return argc ? RESP_CMD : RESP_EMPTY;
}

static int parse_inline(struct resp_parser *p, const uint8_t *buf, size_t len, size_t *used)
{
    ptrdiff_t nl = find_line_end(p, buf, len, '\n');
    if (nl < 0) {
        if (len > RESP_MAX_INLINE)
            return fail(p, "ERR Protocol error: too big inline request");
        return RESP_MORE;
    }
    size_t end = (size_t)nl;
    if (end > 0 && buf[end - 1] == '\r')
        end--;
    int e = split_inline(p, buf, end);
    if (e)
        return e;
    p->pos = (size_t)nl + 1;
    return finish_cmd(p, p->text, used);
}

int resp_parse(struct resp_parser *p, const uint8_t *buf, size_t len, size_t *used)
{
    *used = 0;
    p->need = 0;
    if (p->state == ST_START) {
        if (len == 0)
            return RESP_MORE;
        p->argc = 0;
        p->state = buf[0] == '*' ? ST_COUNT : ST_INLINE;
        p->pos = 0;
        p->scan = 0;
    }
    if (p->state == ST_INLINE)
        return parse_inline(p, buf, len, used);

    for (;;) {
        switch (p->state) {
        case ST_COUNT: {
            ptrdiff_t cr = find_line_end(p, buf, len, '\r');
            if (cr < 0) {
                if (len - p->pos > RESP_MAX_INLINE)
                    return fail(p, "ERR Protocol error: too big mbulk count string");
                return RESP_MORE;
            }
            if ((size_t)cr + 2 > len)
                return RESP_MORE; /* the byte after '\r' has not arrived */
            long long n;
            if (!resp_str2ll(buf + p->pos + 1, (size_t)cr - p->pos - 1, &n) || n > INT32_MAX)
                return fail(p, "ERR Protocol error: invalid multibulk length");
            p->pos = p->scan = (size_t)cr + 2;
            if (n <= 0)
                return finish_cmd(p, buf, used); /* an empty command */
            p->left = n;
            /* Room for a few arguments now; more as they arrive, so that a
             * huge announced count costs nothing until it is backed by bytes. */
            if (grow_argv(p, n < 16 ? (size_t)n : 16))
                return RESP_NOMEM;
            p->state = ST_BULKHDR;
            break;
        }
        case ST_BULKHDR: {
            ptrdiff_t cr = find_line_end(p, buf, len, '\r');
            if (cr < 0) {
                if (len - p->pos > RESP_MAX_INLINE)
                    return fail(p, "ERR Protocol error: too big bulk count string");
                return RESP_MORE;
            }
            if ((size_t)cr + 2 > len)
                return RESP_MORE;
            uint8_t c = buf[p->pos];
            if (c != '$') {
                /* Redis replaces CR and LF in error texts with spaces. */
                snprintf(p->errbuf, sizeof(p->errbuf), "ERR Protocol error: expected '$', got '%c'",
                         c == '\r' || c == '\n' ? ' ' : (char)c);
                return fail(p, p->errbuf);
            }
            long long n;
            if (!resp_str2ll(buf + p->pos + 1, (size_t)cr - p->pos - 1, &n) || n < 0 || n > RESP_MAX_BULK)
                return fail(p, "ERR Protocol error: invalid bulk length");
            p->pos = (size_t)cr + 2;
            p->bulk = n;
            p->state = ST_BULKDATA;
            break;
        }
        case ST_BULKDATA: {
            size_t end = p->pos + (size_t)p->bulk + 2; /* the bulk and the two bytes after it */
            if (len < end) {
                p->need = end;
                return RESP_MORE;
            }
            if (add_arg(p, p->pos, (size_t)p->bulk))
                return RESP_NOMEM;
            p->pos = p->scan = end;
            if (--p->left == 0)
                return finish_cmd(p, buf, used);
            p->state = ST_BULKHDR;
            break;
        }
        default:
            return fail(p, "ERR Protocol error: parser state");
        }
    }
}
