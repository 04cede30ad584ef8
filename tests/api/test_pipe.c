/*
 * Memory queues between instances (demi_create_pipe, demi_open_pipe): the
 * errors of misuse; both directions within one instance, a multi-segment
 * push arriving as one message and a message larger than a segment; two
 * threads (two instances) exchanging 20000 numbered messages each way, every
 * byte checked; pushes beyond the pipe's 1024 messages in flight wait
 * until the other end pops, order kept; closing with a pop waiting cancels
 * it; the other end's close (and its thread's exit) gives end of file to
 * pops and EPIPE to pushes; an instance asleep in a pop wakes for a message
 * and for the other end's close (the bell); the name is free again once both ends close.
 * Counters from demi_get_stats. Needs no network: catnap is the libOS.
 */
#include "tcheck.h"

#include <demi/libos.h>
#include <demi/sga.h>
#include <demi/wait.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define ROUNDS 20000

static struct timespec forever_ish = {60, 0};

static void push_bytes(int qd, const void *p, size_t n)
{
    demi_sgarray_t s = demi_sgaalloc(n);
    CHECK(s.sga_numsegs >= 1);
    size_t off = 0;
    for (uint32_t i = 0; i < s.sga_numsegs; i++) {
        memcpy(s.sga_segs[i].sgaseg_buf, (const uint8_t *)p + off, s.sga_segs[i].sgaseg_len);
        off += s.sga_segs[i].sgaseg_len;
    }
    demi_qtoken_t qt;
    demi_qresult_t qr;
    CHECK_EQ(demi_push(&qt, qd, &s), 0);
    CHECK_EQ(demi_sgafree(&s), 0);
    CHECK_EQ(demi_wait(&qr, qt, &forever_ish), 0);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_PUSH);
}

/* Pops one message into @p (at most @cap bytes); its length. */
static size_t pop_bytes(int qd, void *p, size_t cap)
{
    demi_qtoken_t qt;
    demi_qresult_t qr;
    CHECK_EQ(demi_pop(&qt, qd), 0);
    CHECK_EQ(demi_wait(&qr, qt, &forever_ish), 0);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
    size_t off = 0;
    for (uint32_t i = 0; i < qr.qr_value.sga.sga_numsegs; i++) {
        uint32_t n = qr.qr_value.sga.sga_segs[i].sgaseg_len;
        CHECK(off + n <= cap);
        memcpy((uint8_t *)p + off, qr.qr_value.sga.sga_segs[i].sgaseg_buf, n);
        off += n;
    }
    CHECK_EQ(demi_sgafree(&qr.qr_value.sga), 0);
    return off;
}

static void misuse(void)
{
    int qd, a, b;
    char name[300];
    memset(name, 'x', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    CHECK_EQ(demi_create_pipe(NULL, "p"), EINVAL);
    CHECK_EQ(demi_create_pipe(&qd, NULL), EINVAL);
    CHECK_EQ(demi_create_pipe(&qd, ""), EINVAL);
    CHECK_EQ(demi_create_pipe(&qd, name), EINVAL); /* 299 bytes */
    CHECK_EQ(demi_open_pipe(&qd, "nobody made this"), ENOENT);
    CHECK_EQ(demi_create_pipe(&a, "misuse"), 0);
    CHECK_EQ(demi_create_pipe(&qd, "misuse"), EEXIST);
    CHECK_EQ(demi_open_pipe(&b, "misuse"), 0);
    CHECK_EQ(demi_open_pipe(&qd, "misuse"), EBUSY);
    /* Socket calls on a pipe. */
    struct sockaddr_in sin = {.sin_family = AF_INET};
    demi_qtoken_t qt;
    CHECK_EQ(demi_bind(a, (struct sockaddr *)&sin, sizeof(sin)), ENOTSOCK);
    CHECK_EQ(demi_listen(a, 8), ENOTSOCK);
    CHECK_EQ(demi_accept(&qt, a), ENOTSOCK);
    CHECK_EQ(demi_connect(&qt, a, (struct sockaddr *)&sin, sizeof(sin)), ENOTSOCK);
    demi_sgarray_t s = demi_sgaalloc(8);
    CHECK_EQ(demi_pushto(&qt, a, &s, (struct sockaddr *)&sin, sizeof(sin)), ENOTSOCK);
    s.sga_segs[0].sgaseg_len = 0;
    CHECK_EQ(demi_push(&qt, a, &s), EINVAL); /* nothing to send */
    s.sga_segs[0].sgaseg_len = 8;
    CHECK_EQ(demi_sgafree(&s), 0);
    /* A pop waiting when its end closes is cancelled. */
    demi_qresult_t qr;
    CHECK_EQ(demi_pop(&qt, b), 0);
    struct timespec zero = {0, 0};
    CHECK_EQ(demi_wait(&qr, qt, &zero), ETIMEDOUT);
    CHECK_EQ(demi_close(b), 0);
    CHECK_EQ(demi_wait(&qr, qt, &zero), 0);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_FAILED);
    CHECK_EQ(qr.qr_ret, ECANCELED);
    /* The other end gone: end of file, then EPIPE. */
    CHECK_EQ(demi_pop(&qt, a), 0);
    CHECK_EQ(demi_wait(&qr, qt, &zero), 0);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
    CHECK_EQ(qr.qr_value.sga.sga_numsegs, 0);
    s = demi_sgaalloc(8);
    CHECK_EQ(demi_push(&qt, a, &s), 0);
    CHECK_EQ(demi_sgafree(&s), 0);
    CHECK_EQ(demi_wait(&qr, qt, &zero), 0);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_FAILED);
    CHECK_EQ(qr.qr_ret, EPIPE);
    CHECK_EQ(demi_close(a), 0);
    /* Both ends closed: the name is free again. */
    CHECK_EQ(demi_create_pipe(&a, "misuse"), 0);
    CHECK_EQ(demi_close(a), 0);
    printf("pipe: misuse: ok\n");
}

static void one_instance(void)
{
    int a, b;
    CHECK_EQ(demi_create_pipe(&a, "self"), 0);
    CHECK_EQ(demi_open_pipe(&b, "self"), 0);
    char buf[64];
    push_bytes(a, "hello", 5);
    CHECK_EQ(pop_bytes(b, buf, sizeof(buf)), 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    push_bytes(b, "back", 4);
    CHECK_EQ(pop_bytes(a, buf, sizeof(buf)), 4);
    CHECK(memcmp(buf, "back", 4) == 0);
    /* Two segments in, one message out. */
    demi_sgarray_t s = demi_sgaalloc(3);
    demi_sgarray_t t = demi_sgaalloc(4);
    memcpy(s.sga_segs[0].sgaseg_buf, "abc", 3);
    memcpy(t.sga_segs[0].sgaseg_buf, "defg", 4);
    s.sga_segs[1] = t.sga_segs[0];
    s.sga_numsegs = 2;
    demi_qtoken_t qt;
    demi_qresult_t qr;
    CHECK_EQ(demi_push(&qt, a, &s), 0);
    s.sga_numsegs = 1;
    CHECK_EQ(demi_sgafree(&s), 0);
    CHECK_EQ(demi_sgafree(&t), 0);
    CHECK_EQ(demi_wait(&qr, qt, &forever_ish), 0);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_PUSH);
    CHECK_EQ(pop_bytes(b, buf, sizeof(buf)), 7);
    CHECK(memcmp(buf, "abcdefg", 7) == 0);
    /* Larger than one segment (16 MiB): several segments out. */
    size_t big = (20u << 20) + 3;
    uint8_t *p = malloc(big), *q = malloc(big);
    CHECK(p && q);
    for (size_t i = 0; i < big; i++)
        p[i] = (uint8_t)(i * 13 + (i >> 12));
    push_bytes(a, p, big);
    CHECK_EQ(pop_bytes(b, q, big), big);
    CHECK(memcmp(p, q, big) == 0);
    free(p);
    free(q);
    /* 1500 pushes with nobody popping: 1024 are in flight at once, the
     * rest wait; popping lets them in, in order. */
    demi_qtoken_t qts[1500];
    for (uint32_t i = 0; i < 1500; i++) {
        demi_sgarray_t m = demi_sgaalloc(sizeof(i));
        memcpy(m.sga_segs[0].sgaseg_buf, &i, sizeof(i));
        CHECK_EQ(demi_push(&qts[i], a, &m), 0);
        CHECK_EQ(demi_sgafree(&m), 0);
    }
    struct timespec zero = {0, 0};
    CHECK_EQ(demi_wait(&qr, qts[1023], &zero), 0);
    CHECK_EQ(demi_wait(&qr, qts[1024], &zero), ETIMEDOUT);
    for (uint32_t i = 0; i < 1500; i++) {
        uint32_t v;
        CHECK_EQ(pop_bytes(b, &v, sizeof(v)), sizeof(v));
        CHECK_EQ(v, i);
    }
    for (uint32_t i = 1024; i < 1500; i++) {
        CHECK_EQ(demi_wait(&qr, qts[i], &forever_ish), 0);
        CHECK_EQ(qr.qr_opcode, DEMI_OPC_PUSH);
    }
    CHECK_EQ(demi_close(a), 0);
    CHECK_EQ(demi_close(b), 0);
    printf("pipe: one instance: ok\n");
}

/* The other thread of two_threads: echoes ROUNDS numbered messages, takes
 * one more, and exits without closing. */
static void *peer(void *arg)
{
    (void)arg;
    CHECK_EQ(demi_init(NULL), 0);
    int qd;
    CHECK_EQ(demi_open_pipe(&qd, "pingpong"), 0);
    uint8_t buf[512];
    for (uint32_t i = 0; i < ROUNDS; i++) {
        size_t n = pop_bytes(qd, buf, sizeof(buf));
        uint32_t v;
        CHECK(n >= sizeof(v));
        memcpy(&v, buf, sizeof(v));
        CHECK_EQ(v, i);
        for (size_t k = sizeof(v); k < n; k++)
            CHECK_EQ(buf[k], (uint8_t)(i + k));
        v = ~i;
        memcpy(buf, &v, sizeof(v));
        push_bytes(qd, buf, n);
    }
    CHECK_EQ(pop_bytes(qd, buf, sizeof(buf)), 1);
    demi_stats_t st;
    CHECK_EQ(demi_get_stats(&st), 0);
    CHECK_EQ(st.pipe_pushes, ROUNDS);
    CHECK_EQ(st.pipe_pops, ROUNDS + 1);
    return NULL; /* exits holding its end: the exit closes it */
}

static void two_threads(void)
{
    int qd;
    CHECK_EQ(demi_create_pipe(&qd, "pingpong"), 0);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, peer, NULL), 0);
    uint8_t buf[512], back[512];
    for (uint32_t i = 0; i < ROUNDS; i++) {
        size_t n = 4 + i % 500;
        memcpy(buf, &i, 4);
        for (size_t k = 4; k < n; k++)
            buf[k] = (uint8_t)(i + k);
        push_bytes(qd, buf, n);
        CHECK_EQ(pop_bytes(qd, back, sizeof(back)), n);
        uint32_t v;
        memcpy(&v, back, 4);
        CHECK_EQ(v, ~i);
        CHECK(memcmp(back + 4, buf + 4, n - 4) == 0);
    }
    /* The peer waits in its pop long enough to go to sleep (libdemi.spin_us
     * is 1 ms): the push must ring it awake (else its wait ends only at the
     * 60 s deadline, and the test fails). */
    struct timespec pause = {0, 50 * 1000 * 1000};
    nanosleep(&pause, NULL);
    push_bytes(qd, "x", 1);
    /* Then this thread sleeps in its pop until the peer's exit closes its
     * end: the close rings it, and the pop is the end of file. */
    demi_qtoken_t qt;
    demi_qresult_t qr;
    CHECK_EQ(demi_pop(&qt, qd), 0);
    CHECK_EQ(demi_wait(&qr, qt, &forever_ish), 0);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
    CHECK_EQ(qr.qr_value.sga.sga_numsegs, 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    demi_sgarray_t s = demi_sgaalloc(1);
    CHECK_EQ(demi_push(&qt, qd, &s), 0);
    CHECK_EQ(demi_sgafree(&s), 0);
    CHECK_EQ(demi_wait(&qr, qt, &forever_ish), 0);
    CHECK_EQ(qr.qr_ret, EPIPE);
    CHECK_EQ(demi_close(qd), 0);
    printf("pipe: two threads, %u round trips: ok\n", ROUNDS);
}

int main(void)
{
    CHECK_EQ(demi_init(NULL), 0);
    misuse();
    one_instance();
    two_threads();
    printf("pipe: ok\n");
    return 0;
}
