/*
 * RESP2 reply builder for demi-kv: gathers the replies of a batch of
 * commands into as few scatter-gather pushes as DEMI_SGARRAY_MAXSIZE
 * allows, without copying stored values.
 *
 * Small replies and headers are written into an output buffer from
 * libdemi's heap; a GET's value is added as segments that point at the
 * stored value's own heap buffers ("$5\r\n" | value | "\r\n..."). Until the
 * segments are pushed the builder holds a reference on each value it
 * points at, so a DEL or SET later in the same batch cannot free it; the
 * push then takes libdemi's own references and the builder drops its own.
 * Bytes already pushed from an output buffer are never written again: the
 * builder only appends, and takes a fresh buffer when one is full.
 *
 * Errors (no heap memory, a push refused) are sticky: later calls do
 * nothing, and reply_flush() reports the error so that the caller can close
 * the connection. Nothing here aborts.
 */
#ifndef DEMI_KV_REPLY_H
#define DEMI_KV_REPLY_H

#include "store.h"

#include <demi/types.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Default size of an output buffer. */
#define REPLY_BUF_SIZE ((size_t)64 * 1024)

/* Sends one array of segments (demi_push in the server). 0 or an errno. */
typedef int (*reply_push_fn)(void *arg, const demi_sgarray_t *sga);

struct reply_old {
    void *tag;
    void *data;
    uint32_t cap;
};

struct reply {
    reply_push_fn push;
    void *arg;
    demi_sgarray_t sga; /* segments of the next push */
    /* The output buffer being filled: [0, run) is in segments already,
     * [run, used) is written but not yet a segment. */
    struct reply_old cur;
    size_t used, run;
    int cur_in_sga; /* a gathered segment points into cur */
    /* Full output buffers that gathered segments still point into. */
    struct reply_old old[DEMI_SGARRAY_MAXSIZE];
    uint32_t nold;
    /* Values that gathered segments point into (one reference each). */
    struct kv_val **vals;
    size_t nvals, capvals;
    int err;
    uint64_t pushes; /* arrays pushed so far, for tests and INFO */
    /* Called when an output buffer cannot be allocated, and the allocation
     * tried again while it returns true (it freed memory). */
    bool (*reclaim)(void);
};

void reply_init(struct reply *r);
/* Drops whatever is gathered and the output buffer. */
void reply_free(struct reply *r);
/* Replies go to @fn(@arg) from now on (after a flush). Clears the error. */
void reply_target(struct reply *r, reply_push_fn fn, void *arg);
/* Pushes what is gathered. Returns 0 or the sticky error. */
int reply_flush(struct reply *r);
/* Gathered but not yet pushed bytes exist. */
int reply_pending(const struct reply *r);

void reply_raw(struct reply *r, const void *p, size_t n);
void reply_status(struct reply *r, const char *s); /* "+s\r\n" */
void reply_error(struct reply *r, const char *s);  /* "-s\r\n"; CR and LF in s become spaces */
void reply_int(struct reply *r, long long v);      /* ":v\r\n" */
void reply_bulk(struct reply *r, const void *p, size_t n);
void reply_cstr(struct reply *r, const char *s); /* a bulk string */
void reply_null(struct reply *r);                /* "$-1\r\n" */
void reply_array(struct reply *r, long long n);  /* "*n\r\n" */
/* A bulk string whose bytes are the stored value's, without a copy. */
void reply_value(struct reply *r, struct kv_val *v);

/* Formats @v in decimal into buf (at least 21 bytes); returns the length. */
size_t reply_fmt_ll(char *buf, long long v);

#endif
