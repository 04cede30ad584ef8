/*
 * tests/kv/kvsink.h: the reply sink shared by demi-kv's unit tests of its
 * command layer and types (test_kv_cmd, test_kv_list, test_kv_set,
 * test_kv_hash, test_kv_zset). Commands run straight through kv_exec; their
 * replies, flushed, are concatenated here instead of going to a socket.
 * Header-only: each test is one program with one sink. It must never touch
 * the network.
 */
#ifndef DEMI_TESTS_KVSINK_H
#define DEMI_TESTS_KVSINK_H

#include "cmd.h"
#include "cmd_int.h"
#include "tcheck.h"

#include <demi/libos.h>

#include <stdlib.h>
#include <string.h>

/* Every reply byte since the last sink_reset (sink_exec resets it and
 * NUL-terminates it after len); how many arrays were pushed since, and the
 * last one. */
static struct {
    uint8_t *buf;
    size_t len, cap;
    int pushes;
    demi_sgarray_t last;
} sink;

static inline void sink_reset(void)
{
    sink.len = 0;
    sink.pushes = 0;
}

/* The reply's target (reply_target(&rep, sink_push, NULL)): appends. */
static inline int sink_push(void *arg, const demi_sgarray_t *sga)
{
    (void)arg;
    for (uint32_t i = 0; i < sga->sga_numsegs; i++) {
        size_t n = sga->sga_segs[i].sgaseg_len;
        if (sink.len + n > sink.cap) {
            sink.cap = (sink.len + n) * 2;
            sink.buf = realloc(sink.buf, sink.cap);
            CHECK(sink.buf);
        }
        memcpy(sink.buf + sink.len, sga->sga_segs[i].sgaseg_buf, n);
        sink.len += n;
    }
    sink.pushes++;
    sink.last = *sga;
    return 0;
}

/* Runs one command on @srv for @cl and flushes @rep: returns the reply, a
 * string valid until the next run (its length is sink.len: replies may
 * hold NUL bytes). */
static inline const char *sink_exec(struct kv_server *srv, struct kv_client *cl, struct reply *rep, int argc,
                                    const struct resp_arg *argv)
{
    sink_reset();
    kv_exec(srv, cl, argc, argv, rep);
    CHECK_EQ(reply_flush(rep), 0);
    if (sink.len == sink.cap) {
        sink.cap = sink.cap ? sink.cap * 2 : 64;
        sink.buf = realloc(sink.buf, sink.cap);
        CHECK(sink.buf);
    }
    sink.buf[sink.len] = '\0';
    return (const char *)sink.buf;
}

static inline void sink_free(void)
{
    free(sink.buf);
    sink.buf = NULL;
    sink.len = sink.cap = 0;
}

/* A test's start: libdemi (skips the test when it cannot start), a server
 * whose clock is @clock (NULL: the real one), one client, and a reply to
 * the sink. */
static inline void sink_begin(struct kv_server *srv, struct kv_client *cl, struct reply *rep, int64_t (*clock)(void))
{
    int e = demi_init(NULL);
    if (e)
        SKIP("demi_init: %s", strerror(e));
    CHECK_EQ(kv_server_init(srv), 0);
    if (clock)
        srv->clock_ms = clock;
    kv_client_init(srv, cl);
    reply_init(rep);
    reply_target(rep, sink_push, NULL);
}

/* A test's end: frees what sink_begin made, and the sink. */
static inline void sink_end(struct kv_server *srv, struct kv_client *cl, struct reply *rep)
{
    reply_free(rep);
    kv_client_free(cl);
    kv_server_free(srv);
    sink_free();
}

#endif
