/*
 * RESP2 reply builder (see reply.h).
 */
#include "reply.h"

#include <demi/sga.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void reply_init(struct reply *r)
{
    memset(r, 0, sizeof(*r));
}

static void buf_free(struct reply_old *b)
{
    demi_sgarray_t sga = {.sga_buf = b->tag, .sga_numsegs = 1};
    sga.sga_segs[0].sgaseg_buf = b->data;
    sga.sga_segs[0].sgaseg_len = b->cap;
    demi_sgafree(&sga);
    b->data = NULL;
}

/* Forgets the gathered segments and drops the references they needed. */
static void release(struct reply *r)
{
    r->sga.sga_numsegs = 0;
    for (size_t i = 0; i < r->nvals; i++)
        kv_val_unref(r->vals[i]);
    r->nvals = 0;
    for (uint32_t i = 0; i < r->nold; i++)
        buf_free(&r->old[i]);
    r->nold = 0;
    r->cur_in_sga = 0;
}

void reply_free(struct reply *r)
{
    release(r);
    if (r->cur.data)
        buf_free(&r->cur);
    free(r->vals);
    reply_init(r);
}

static int push_now(struct reply *r)
{
    if (r->sga.sga_numsegs > 0 && !r->err) {
        r->sga.sga_buf = NULL;
        int e = r->push ? r->push(r->arg, &r->sga) : EINVAL;
        if (e)
            r->err = e;
        else
            r->pushes++;
    }
    release(r);
    return r->err;
}

static void add_seg(struct reply *r, void *p, size_t n)
{
    if (r->sga.sga_numsegs == DEMI_SGARRAY_MAXSIZE)
        push_now(r);
    demi_sgaseg_t *s = &r->sga.sga_segs[r->sga.sga_numsegs++];
    s->sgaseg_buf = p;
    s->sgaseg_len = (uint32_t)n;
}

/* Turns the written, unsegmented bytes of the output buffer into a segment. */
static void close_run(struct reply *r)
{
    if (r->used > r->run) {
        add_seg(r, (uint8_t *)r->cur.data + r->run, r->used - r->run);
        r->cur_in_sga = 1;
        r->run = r->used;
    }
}

int reply_flush(struct reply *r)
{
    close_run(r);
    return push_now(r);
}

int reply_pending(const struct reply *r)
{
    return r->sga.sga_numsegs > 0 || r->used > r->run;
}

void reply_target(struct reply *r, reply_push_fn fn, void *arg)
{
    if (reply_pending(r))
        reply_flush(r);
    r->push = fn;
    r->arg = arg;
    r->err = 0;
}

/* Replaces a full output buffer with a new one of at least @want bytes
 * (up to KV_SEG_MAX). */
static int new_buf(struct reply *r, size_t want)
{
    close_run(r);
    if (r->cur.data) {
        if (r->cur_in_sga) {
            if (r->nold == DEMI_SGARRAY_MAXSIZE)
                push_now(r); /* frees the old buffers, and cur_in_sga is now 0 */
        }
        if (r->cur_in_sga)
            r->old[r->nold++] = r->cur;
        else
            buf_free(&r->cur);
        r->cur.data = NULL;
        r->cur_in_sga = 0;
    }
    size_t size = want < REPLY_BUF_SIZE ? REPLY_BUF_SIZE : want;
    if (size > KV_SEG_MAX)
        size = KV_SEG_MAX;
    demi_sgarray_t sga = demi_sgaalloc(size);
    while (sga.sga_numsegs != 1) {
        if (sga.sga_numsegs)
            demi_sgafree(&sga);
        if (!r->reclaim || !r->reclaim()) {
            r->err = ENOMEM;
            return ENOMEM;
        }
        sga = demi_sgaalloc(size);
    }
    r->cur.tag = sga.sga_buf;
    r->cur.data = sga.sga_segs[0].sgaseg_buf;
    r->cur.cap = sga.sga_segs[0].sgaseg_len;
    r->used = r->run = 0;
    return 0;
}

void reply_raw(struct reply *r, const void *p, size_t n)
{
    const uint8_t *src = p;
    while (n > 0 && !r->err) {
        if (!r->cur.data || r->used == r->cur.cap) {
            if (new_buf(r, n))
                return;
        }
        size_t k = r->cur.cap - r->used;
        if (k > n)
            k = n;
        memcpy((uint8_t *)r->cur.data + r->used, src, k);
        r->used += k;
        src += k;
        n -= k;
    }
}

/* Room for @n contiguous bytes (n small), or NULL after an error. */
static uint8_t *room(struct reply *r, size_t n)
{
    if (r->err)
        return NULL;
    if ((!r->cur.data || r->cur.cap - r->used < n) && new_buf(r, n))
        return NULL;
    return (uint8_t *)r->cur.data + r->used;
}

size_t reply_fmt_ll(char *buf, long long v)
{
    char tmp[24];
    size_t n = 0;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    size_t len = 0;
    if (v < 0)
        buf[len++] = '-';
    while (n)
        buf[len++] = tmp[--n];
    return len;
}

/* Writes "<c><v>\r\n". */
static void prefixed_ll(struct reply *r, char c, long long v)
{
    uint8_t *p = room(r, 24);
    if (!p)
        return;
    p[0] = (uint8_t)c;
    size_t n = 1 + reply_fmt_ll((char *)p + 1, v);
    p[n++] = '\r';
    p[n++] = '\n';
    r->used += n;
}

void reply_status(struct reply *r, const char *s)
{
    reply_raw(r, "+", 1);
    reply_raw(r, s, strlen(s));
    reply_raw(r, "\r\n", 2);
}

void reply_error(struct reply *r, const char *s)
{
    reply_raw(r, "-", 1);
    /* Redis maps CR and LF in error texts to spaces: a reply line must not
     * break. Copy in pieces, replacing as we go. */
    char tmp[128];
    size_t n = 0;
    for (; *s; s++) {
        tmp[n++] = *s == '\r' || *s == '\n' ? ' ' : *s;
        if (n == sizeof(tmp)) {
            reply_raw(r, tmp, n);
            n = 0;
        }
    }
    reply_raw(r, tmp, n);
    reply_raw(r, "\r\n", 2);
}

void reply_int(struct reply *r, long long v)
{
    prefixed_ll(r, ':', v);
}

void reply_array(struct reply *r, long long n)
{
    prefixed_ll(r, '*', n);
}

void reply_null(struct reply *r)
{
    reply_raw(r, "$-1\r\n", 5);
}

void reply_bulk(struct reply *r, const void *p, size_t n)
{
    prefixed_ll(r, '$', (long long)n);
    reply_raw(r, p, n);
    reply_raw(r, "\r\n", 2);
}

void reply_cstr(struct reply *r, const char *s)
{
    reply_bulk(r, s, strlen(s));
}

/* Takes a reference on @v until the gathered segments are pushed. */
static int hold(struct reply *r, struct kv_val *v)
{
    if (r->nvals == r->capvals) {
        size_t cap = r->capvals ? r->capvals * 2 : 64;
        struct kv_val **x = realloc(r->vals, cap * sizeof(*x));
        if (!x) {
            r->err = ENOMEM;
            return ENOMEM;
        }
        r->vals = x;
        r->capvals = cap;
    }
    kv_val_ref(v);
    r->vals[r->nvals++] = v;
    return 0;
}

void reply_value(struct reply *r, struct kv_val *v)
{
    if (r->err)
        return;
    if (v->framed) {
        /* The stored buffer holds the whole reply: one segment. */
        uint8_t *frame = (uint8_t *)(v + 1);
        close_run(r);
        add_seg(r, frame, (size_t)(v->one.data - frame) + v->one.len + 2);
        hold(r, v);
        return;
    }
    prefixed_ll(r, '$', (long long)v->len);
    if (r->err)
        return;
    if (v->len > 0) {
        close_run(r);
        /* The segments go in first and the reference after them: a push
         * forced in between (16 segments) pushes the earlier segments, and
         * releasing what it held must not include this value yet. The value
         * cannot go away meanwhile: the keyspace holds it. */
        for (uint32_t i = 0; i < v->nseg; i++)
            if (v->seg[i].len)
                add_seg(r, v->seg[i].data, v->seg[i].len);
        hold(r, v);
    }
    reply_raw(r, "\r\n", 2);
}
