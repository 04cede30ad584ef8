/*
 * Memory limits of the stack (issue 11, finding 5), in the sim:
 * - A UDP socket that is never read holds at most its SO_RCVBUF of memory,
 *   counted as the blocks its datagrams pin (not their payload): a flood
 *   of 1-byte datagrams must not pin a 64-byte block per byte until the
 *   heap is gone. The surplus is dropped and counted (udp_rx_queue_full).
 *   An empty queue takes any datagram, so that an SO_RCVBUF smaller than
 *   one frame's block still receives (one datagram at a time).
 * - When the application takes the whole heap with sgaalloc, its own
 *   allocation fails with ENOMEM, and the stack still receives: an
 *   established connection's pops complete with every byte, and a new
 *   connection is accepted and receives too (received frames, ACK headers
 *   and SYN handling come from the heap's reserve); the application's
 *   pushes of memory from outside the heap, which must be copied, fail
 *   with ENOMEM like its other allocations.
 */
#include "inet/inet_int.h"
#include "mem/sga.h"
#include "simworld.h"

#include <errno.h>
#include <stdlib.h>

static struct simworld w;
static struct simnode *A, *B;

/* B pushes @len pattern bytes on @bq; A pops them all from @aq. */
static void transfer(void *bq, void *aq, size_t len, uint64_t seed)
{
    for (size_t off = 0; off < len;) {
        size_t n = len - off < 16384 ? len - off : 16384;
        demi_sgarray_t s = sw_sga(B, n, seed, off);
        struct sched_task *t = sw_push(B, bq, &s);
        sw_free(B, &s);
        demi_qresult_t qr = sw_wait(&w, B, t, 30 * SEC);
        CHECK_EQ(qr.qr_opcode, DEMI_OPC_PUSH);
        off += n;
    }
    for (size_t got = 0; got < len;) {
        struct sched_task *t = sw_pop(A, aq);
        demi_qresult_t qr = sw_wait(&w, A, t, 30 * SEC);
        CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
        int64_t n = mem_sga_len(&qr.qr_value.sga);
        CHECK(n > 0);
        CHECK(sw_check(&qr.qr_value.sga, seed, got));
        got += (size_t)n;
        CHECK_EQ(mem_sga_free(A->rt->heap, &qr.qr_value.sga), 0);
    }
}

static void udp_unread_socket(void)
{
    void *aq = sw_socket(A, SOCK_DGRAM);
    sw_bind(A, aq, 7000);
    int rcv = 64 * 1024;
    CHECK_EQ(inet_setsockopt(A->in, aq, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv)), 0);
    void *bq = sw_socket(B, SOCK_DGRAM);
    demi_sgarray_t one = sw_sga(B, 1, 3, 0);
    /* ARP first, so the flood measures only the queue. */
    demi_qresult_t qr = sw_wait(&w, B, sw_pushto(B, bq, &one, A, 7000), SEC);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_PUSH);
    sw_run_for(&w, 10 * MSEC);
    uint64_t base = heap_stats(A->rt->heap)->bytes_in_use;
    uint64_t full0 = inet_stats(A->in)->udp_rx_queue_full;
    const int flood = 5000;
    for (int i = 0; i < flood; i++) {
        qr = sw_wait(&w, B, sw_pushto(B, bq, &one, A, 7000), SEC);
        CHECK_EQ(qr.qr_opcode, DEMI_OPC_PUSH);
    }
    sw_run_for(&w, 10 * MSEC);
    uint64_t held = heap_stats(A->rt->heap)->bytes_in_use - base;
    uint64_t dropped = inet_stats(A->in)->udp_rx_queue_full - full0;
    printf("udp: %d one-byte datagrams to a socket never read (SO_RCVBUF %d): %llu bytes of heap held, %llu "
           "dropped\n",
           flood, rcv, (unsigned long long)held, (unsigned long long)dropped);
    CHECK(held <= (uint64_t)rcv);
    CHECK(dropped > 0);
    /* What was kept is still delivered. */
    qr = sw_wait(&w, A, sw_pop(A, aq), SEC);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
    CHECK_EQ(mem_sga_len(&qr.qr_value.sga), 1);
    CHECK_EQ(mem_sga_free(A->rt->heap, &qr.qr_value.sga), 0);
    sw_close(A, aq);
    sw_close(B, bq);
    sw_free(B, &one);
    CHECK(heap_stats(A->rt->heap)->bytes_in_use <= base);
}

static void udp_tiny_rcvbuf(void)
{
    void *aq = sw_socket(A, SOCK_DGRAM);
    sw_bind(A, aq, 7001);
    int rcv = 1024;
    CHECK_EQ(inet_setsockopt(A->in, aq, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv)), 0);
    void *bq = sw_socket(B, SOCK_DGRAM);
    demi_sgarray_t d = sw_sga(B, 1000, 4, 0);
    for (int i = 0; i < 3; i++) {
        demi_qresult_t qr = sw_wait(&w, B, sw_pushto(B, bq, &d, A, 7001), SEC);
        CHECK_EQ(qr.qr_opcode, DEMI_OPC_PUSH);
        sw_run_for(&w, MSEC);
        qr = sw_wait(&w, A, sw_pop(A, aq), SEC);
        CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
        CHECK_EQ(mem_sga_len(&qr.qr_value.sga), 1000);
        CHECK(sw_check(&qr.qr_value.sga, 4, 0));
        CHECK_EQ(mem_sga_free(A->rt->heap, &qr.qr_value.sga), 0);
    }
    sw_close(A, aq);
    sw_close(B, bq);
    sw_free(B, &d);
}

static void *accept_one(void *lq, void **bq)
{
    struct sched_task *ta = sw_accept(A, lq);
    *bq = sw_socket(B, SOCK_STREAM);
    demi_qresult_t qr = sw_wait(&w, B, sw_connect(B, *bq, A, 80), 10 * SEC);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_CONNECT);
    qr = sw_wait(&w, A, ta, 10 * SEC);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_ACCEPT);
    return sw_accepted(A, &qr);
}

static void greedy_application(void)
{
    void *lq = sw_socket(A, SOCK_STREAM);
    sw_bind(A, lq, 80);
    sw_listen(A, lq, 8);
    void *b1;
    void *a1 = accept_one(lq, &b1);
    transfer(b1, a1, 64 * 1024, 5); /* warm: the connection's buffers exist */

    /* The application on A takes everything it can, every size. */
    size_t cap = 1 << 16, n = 0;
    uint64_t got = 0;
    demi_sgarray_t *held = malloc(cap * sizeof(*held));
    CHECK(held);
    for (size_t size = (size_t)16 << 20; size >= 64; size /= 2) {
        for (;;) {
            CHECK(n < cap);
            int e = mem_sga_alloc(A->rt->heap, size, &held[n]);
            if (e) {
                CHECK_EQ(e, ENOMEM);
                break;
            }
            got += size;
            n++;
        }
    }
    printf("greedy: %zu allocations, %llu MiB of the 256 MiB heap, then ENOMEM\n", n, (unsigned long long)(got >> 20));
    CHECK(got >= (uint64_t)200 << 20);

    /* The established connection still receives, and a new one is
     * accepted and receives as well. */
    transfer(b1, a1, 1 << 20, 6);
    void *b2;
    void *a2 = accept_one(lq, &b2);
    transfer(b2, a2, 256 * 1024, 7);
    /* Copies of the application's memory from outside the heap are its
     * allocations too: such a push, TCP or UDP, fails at the call. */
    static uint8_t foreign[40000];
    demi_sgarray_t fs;
    memset(&fs, 0, sizeof(fs));
    fs.sga_numsegs = 1;
    fs.sga_segs[0] = (demi_sgaseg_t){foreign, sizeof(foreign)};
    struct sched_task *t = sched_alloc(&A->rt->sched, NULL, NULL);
    CHECK(t);
    CHECK_EQ(inet_push(A->in, a1, &fs, NULL, t), ENOMEM);
    void *uq = sw_socket(A, SOCK_DGRAM);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9), .sin_addr = B->ip};
    CHECK_EQ(inet_push(A->in, uq, &fs, &to, t), ENOMEM);
    sched_free(&A->rt->sched, t);
    sw_close(A, uq);
    const struct heap_stats *hs = heap_stats(A->rt->heap);
    printf("reserve: 1 MiB and 256 KiB received after the heap was taken (%llu application allocations refused)\n",
           (unsigned long long)hs->app_refused);
    CHECK(hs->app_refused > 0);

    for (size_t i = 0; i < n; i++)
        CHECK_EQ(mem_sga_free(A->rt->heap, &held[i]), 0);
    free(held);
    sw_close(A, a1);
    sw_close(A, a2);
    sw_close(B, b1);
    sw_close(B, b2);
    sw_close(A, lq);
    sw_run_for(&w, 300 * SEC); /* FIN exchanges and TIME_WAIT */
}

int main(void)
{
    sw_init(&w, 11, NULL);
    A = sw_node(&w, NULL);
    B = sw_node(&w, NULL);
    udp_unread_socket();
    udp_tiny_rcvbuf();
    greedy_application();
    sw_fini(&w);
    printf("mem limits: ok\n");
    return 0;
}
