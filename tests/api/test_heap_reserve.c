/*
 * One greedy party cannot take the heap from the others (issue 11, finding
 * 5): on a 64 MiB heap, demi_sgaalloc is called until it fails, with every
 * size from 16 MiB down to 64 bytes so that no partly used chunk is left
 * either. It must fail with ENOMEM, after most of the heap (not before),
 * and a TCP connection must then still receive: every pop completes with
 * the bytes pushed, because the stack's receive buffers come from the
 * reserve that application allocations may not touch. Runs on catnap.
 */
#include "tcheck.h"

#include <demi/libos.h>
#include <demi/sga.h>
#include <demi/wait.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>

#define HEAP_MB  64
#define ROUNDS   20
#define PER_PUSH 10000

static demi_qresult_t wait_op(demi_qtoken_t qt)
{
    demi_qresult_t qr;
    CHECK_EQ(demi_wait(&qr, qt, NULL), 0);
    return qr;
}

int main(void)
{
    setenv("HEAP_SIZE", "64M", 1);
    setenv("HUGEPAGES", "off", 1);
    unsetenv("HEAP_RESERVE"); /* the default: heap_size / 16 */
    CHECK_EQ(demi_init(NULL), 0);

    /* A connection over loopback: cli pushes, srv pops. */
    int lis, cli, srv;
    CHECK_EQ(demi_socket(&lis, AF_INET, SOCK_STREAM, 0), 0);
    CHECK_EQ(demi_socket(&cli, AF_INET, SOCK_STREAM, 0), 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK_EQ(demi_bind(lis, (struct sockaddr *)&a, sizeof(a)), 0);
    CHECK_EQ(demi_listen(lis, 4), 0);
    socklen_t al = sizeof(a);
    CHECK_EQ(demi_getsockname(lis, (struct sockaddr *)&a, &al), 0);
    demi_qtoken_t qa, qc, qt;
    CHECK_EQ(demi_accept(&qa, lis), 0);
    CHECK_EQ(demi_connect(&qc, cli, (struct sockaddr *)&a, sizeof(a)), 0);
    CHECK_EQ(wait_op(qc).qr_opcode, DEMI_OPC_CONNECT);
    demi_qresult_t qr = wait_op(qa);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_ACCEPT);
    srv = qr.qr_value.ares.qd;

    /* The greedy party: everything it can get, every size. */
    size_t cap = 1 << 20, n = 0, got = 0;
    demi_sgarray_t *held = malloc(cap * sizeof(*held));
    CHECK(held);
    for (size_t size = (size_t)16 << 20; size >= 64; size /= 2) {
        for (;;) {
            CHECK(n < cap);
            errno = 0;
            held[n] = demi_sgaalloc(size);
            if (held[n].sga_numsegs == 0) {
                CHECK_EQ(errno, ENOMEM);
                break;
            }
            got += size;
            n++;
        }
    }
    demi_stats_t st;
    CHECK_EQ(demi_get_stats(&st), 0);
    printf("greedy: %zu allocations, %zu KiB of a %d MiB heap, then ENOMEM (heap in use %llu KiB)\n", n, got >> 10,
           HEAP_MB, (unsigned long long)(st.heap_bytes_in_use >> 10));
    /* Most of the heap went to it: the reserve is 1/16 (4 MiB). */
    CHECK(got >= (size_t)(HEAP_MB - 8) << 20);

    /* Another connection still receives. The pushes send from memory
     * outside the heap, which catnap hands to the kernel at once. */
    static uint8_t out[PER_PUSH], in[PER_PUSH];
    for (int r = 0; r < ROUNDS; r++) {
        for (size_t i = 0; i < sizeof(out); i++)
            out[i] = (uint8_t)(i * 7 + (size_t)r);
        demi_sgarray_t s;
        memset(&s, 0, sizeof(s));
        s.sga_numsegs = 1;
        s.sga_segs[0].sgaseg_buf = out;
        s.sga_segs[0].sgaseg_len = sizeof(out);
        CHECK_EQ(demi_push(&qt, cli, &s), 0);
        CHECK_EQ(wait_op(qt).qr_opcode, DEMI_OPC_PUSH);
        size_t have = 0;
        while (have < sizeof(in)) {
            CHECK_EQ(demi_pop(&qt, srv), 0);
            qr = wait_op(qt);
            if (qr.qr_opcode != DEMI_OPC_POP)
                fprintf(stderr, "round %d: pop failed: %s\n", r, strerror((int)qr.qr_ret));
            CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
            demi_sgarray_t *p = &qr.qr_value.sga;
            CHECK(p->sga_numsegs > 0);
            for (uint32_t i = 0; i < p->sga_numsegs; i++) {
                CHECK(have + p->sga_segs[i].sgaseg_len <= sizeof(in));
                memcpy(in + have, p->sga_segs[i].sgaseg_buf, p->sga_segs[i].sgaseg_len);
                have += p->sga_segs[i].sgaseg_len;
            }
            CHECK_EQ(demi_sgafree(p), 0);
        }
        CHECK(memcmp(in, out, sizeof(in)) == 0);
    }

    /* The greedy party still gets nothing more, and everything back once
     * it lets go. */
    errno = 0;
    demi_sgarray_t more = demi_sgaalloc((size_t)1 << 20);
    CHECK_EQ(more.sga_numsegs, 0);
    CHECK_EQ(errno, ENOMEM);
    for (size_t i = 0; i < n; i++)
        CHECK_EQ(demi_sgafree(&held[i]), 0);
    free(held);
    more = demi_sgaalloc((size_t)16 << 20);
    CHECK_EQ(more.sga_numsegs, 1);
    CHECK_EQ(demi_sgafree(&more), 0);

    demi_close(cli);
    demi_close(srv);
    demi_close(lis);
    printf("heap reserve: %d rounds of %d bytes received with the heap taken by sgaalloc\n", ROUNDS, PER_PUSH);
    return 0;
}
