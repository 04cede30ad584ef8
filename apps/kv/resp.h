/*
 * RESP2 request parser for demi-kv: turns the bytes a client sends into
 * commands (an argument vector), the way Redis 7.0 reads them, including
 * its inline commands ("SET a b\r\n", with Redis's quoting rules) and its
 * protocol errors, whose texts are Redis's own.
 *
 * The parser is resumable and never copies multibulk arguments: it reads
 * one command that starts at buf[0] and, when the bytes end before the
 * command does, remembers how far it got. The caller then keeps those bytes
 * (it may move them, but must not change them), appends what arrives next
 * and calls again with the longer buffer. It reads only buf[0..len), never
 * a byte past it, and needs no NUL terminator. It does no I/O and never
 * aborts; its only allocation is the argument vector (and the unescaped
 * text of inline commands).
 */
#ifndef DEMI_KV_RESP_H
#define DEMI_KV_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Redis's limits: proto-max-bulk-len and PROTO_INLINE_MAX_SIZE. */
#define RESP_MAX_BULK   ((int64_t)512 * 1024 * 1024)
#define RESP_MAX_INLINE ((size_t)64 * 1024)

/* What resp_parse() found. */
enum resp_status {
    RESP_MORE = 0,   /* the command is incomplete: call again with more bytes */
    RESP_CMD = 1,    /* a whole command: argc/argv are set, *used bytes are its own */
    RESP_EMPTY = 2,  /* *used bytes held no command ("*0\r\n", an empty line): skip them */
    RESP_ERROR = -1, /* a protocol error: reply with "-" err "\r\n" and close, as Redis does */
    RESP_NOMEM = -2, /* the argument vector could not grow */
};

/* One argument of a parsed command. */
struct resp_arg {
    const uint8_t *ptr; /* valid once RESP_CMD is returned, until the buffer changes */
    size_t len;
    size_t off; /* internal: offset of the argument in the buffer */
};

struct resp_parser {
    /* The last command parsed (RESP_CMD). */
    int argc;
    struct resp_arg *argv;
    /* With RESP_ERROR: the error text without "-" and "\r\n". */
    const char *err;
    /* With RESP_MORE: the buffer must reach this many bytes before the
     * command can complete (0 when unknown); lets the caller size it. */
    size_t need;

    /* Internal state of the command being read. */
    int state;
    size_t pos;      /* bytes of the command consumed so far */
    size_t scan;     /* where the search for the current line's end resumes */
    int64_t left;    /* multibulk arguments still to read */
    int64_t bulk;    /* length of the bulk argument being read */
    size_t cap;      /* slots in argv */
    uint8_t *text;   /* inline commands: the unescaped arguments */
    size_t text_cap; /* bytes allocated at text */
    char errbuf[64];
};

void resp_init(struct resp_parser *p);
void resp_free(struct resp_parser *p);

/*
 * Parses the command that starts at buf[0]. Returns a resp_status; for
 * RESP_CMD and RESP_EMPTY, *used is how many bytes of buf the command took
 * (the next one starts at buf + *used) and the parser is ready for it. For
 * RESP_MORE, *used is 0 and the same bytes, plus more, must come back.
 * After RESP_ERROR the parser must be reset before any further use.
 */
int resp_parse(struct resp_parser *p, const uint8_t *buf, size_t len, size_t *used);

/* Forgets a partly read command (a new connection, or after an error). */
void resp_reset(struct resp_parser *p);

/*
 * Redis's strict integer syntax (string2ll): optional '-', no '+', no
 * spaces, no leading zeros, no "-0", within long long. Returns true and
 * sets *out when [s, s + len) is such a number.
 */
bool resp_str2ll(const uint8_t *s, size_t len, long long *out);

#endif
