/*
 * Use-after-free protection: an 8 MiB array freed right after its push,
 * with the freed memory's neighbours reallocated and scribbled on, still
 * arrives intact; and memory that is not from the heap (malloc) may be
 * overwritten as soon as demi_push returns without changing what is sent.
 */
#include "pair.h"
#include "tcheck.h"

#include <errno.h>

static void expect_echo(int qd, size_t size, uint64_t seed)
{
    size_t got = 0;
    demi_qtoken_t qt;
    demi_qresult_t qr;
    while (got < size) {
        CHECK_EQ(demi_pop(&qt, qd), 0);
        pair_wait(&qr, qt, 30);
        CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
        demi_sgarray_t *r = &qr.qr_value.sga;
        for (uint32_t s = 0; s < r->sga_numsegs; s++) {
            CHECK(got + r->sga_segs[s].sgaseg_len <= size);
            CHECK(pair_check(r->sga_segs[s].sgaseg_buf, r->sga_segs[s].sgaseg_len, seed, got));
            got += r->sga_segs[s].sgaseg_len;
        }
        CHECK_EQ(demi_sgafree(r), 0);
    }
}

static int client(struct pair *p)
{
    int qd;
    demi_qtoken_t qt, push;
    demi_qresult_t qr;
    CHECK_EQ(demi_socket(&qd, AF_INET, SOCK_STREAM, 0), 0);
    CHECK_EQ(demi_connect(&qt, qd, (struct sockaddr *)&p->server, sizeof(p->server)), 0);
    pair_wait(&qr, qt, 10);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_CONNECT);

    const size_t big = (size_t)8 << 20;
    for (int round = 0; round < 3; round++) {
        demi_sgarray_t sga = demi_sgaalloc(big);
        CHECK_EQ(sga.sga_numsegs, 1);
        pair_fill(sga.sga_segs[0].sgaseg_buf, big, 100 + (uint64_t)round, 0);
        CHECK_EQ(demi_push(&push, qd, &sga), 0);
        CHECK_EQ(demi_sgafree(&sga), 0);
        CHECK_EQ(demi_sgafree(&sga), EINVAL); /* and a double free is caught */
        /* Reuse the heap hard while the push is in flight. */
        for (int i = 0; i < 16; i++) {
            demi_sgarray_t junk = demi_sgaalloc((size_t)1 << 20);
            CHECK_EQ(junk.sga_numsegs, 1);
            memset(junk.sga_segs[0].sgaseg_buf, 0xee, (size_t)1 << 20);
            CHECK_EQ(demi_sgafree(&junk), 0);
        }
        expect_echo(qd, big, 100 + (uint64_t)round);
        pair_wait(&qr, push, 30);
        CHECK_EQ(qr.qr_opcode, DEMI_OPC_PUSH);
    }

    /* Foreign memory: copied as needed, so overwriting it at once is safe. */
    uint8_t *m = malloc(big);
    CHECK(m);
    pair_fill(m, big, 7, 0);
    demi_sgarray_t f;
    memset(&f, 0, sizeof(f));
    f.sga_numsegs = 2;
    f.sga_segs[0].sgaseg_buf = m;
    f.sga_segs[0].sgaseg_len = (uint32_t)(big / 2);
    f.sga_segs[1].sgaseg_buf = m + big / 2;
    f.sga_segs[1].sgaseg_len = (uint32_t)(big / 2);
    CHECK_EQ(demi_push(&push, qd, &f), 0);
    memset(m, 0, big);
    free(m);
    expect_echo(qd, big, 7);
    pair_wait(&qr, push, 30);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_PUSH);
    CHECK_EQ(demi_close(qd), 0);
    printf("free after push: ok\n");
    return 0;
}

int main(void)
{
    return pair_run(pair_tcp_echo_server, client, NULL);
}
