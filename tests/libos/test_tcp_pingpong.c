/*
 * TCP ping-pong of 10,000 messages from 1 B to 1 MiB (log-uniform sizes,
 * plus fifty of 1 MiB and 1 MiB - 1), every byte of every echo checked.
 * Each array is freed right after its push (the push keeps the data alive).
 */
#include "pair.h"
#include "tcheck.h"

#include <errno.h>

static size_t size_of(uint64_t i, uint64_t *rng)
{
    if (i % 200 == 199)
        return (i % 400 == 399) ? (1u << 20) : (1u << 20) - 1;
    unsigned bits = (unsigned)(trand(rng) % 17); /* up to 64 KiB */
    return 1 + (size_t)(trand(rng) % ((uint64_t)1 << bits));
}

static int client(struct pair *p)
{
    int qd;
    demi_qtoken_t qt;
    demi_qresult_t qr;
    CHECK_EQ(demi_socket(&qd, AF_INET, SOCK_STREAM, 0), 0);
    CHECK_EQ(demi_connect(&qt, qd, (struct sockaddr *)&p->server, sizeof(p->server)), 0);
    pair_wait(&qr, qt, 10);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_CONNECT);
    uint64_t rng = 7, bytes = 0;
    for (uint64_t i = 0; i < 10000; i++) {
        size_t size = size_of(i, &rng);
        demi_sgarray_t sga = demi_sgaalloc(size);
        CHECK_EQ(sga.sga_numsegs, 1);
        pair_fill(sga.sga_segs[0].sgaseg_buf, size, i, 0);
        demi_qtoken_t push;
        CHECK_EQ(demi_push(&push, qd, &sga), 0);
        CHECK_EQ(demi_sgafree(&sga), 0);
        size_t got = 0;
        while (got < size) {
            CHECK_EQ(demi_pop(&qt, qd), 0);
            pair_wait(&qr, qt, 20);
            if (qr.qr_opcode != DEMI_OPC_POP) {
                fprintf(stderr, "message %llu: pop failed: %s\n", (unsigned long long)i, strerror((int)qr.qr_ret));
                return 1;
            }
            demi_sgarray_t *r = &qr.qr_value.sga;
            CHECK(r->sga_numsegs >= 1);
            for (uint32_t s = 0; s < r->sga_numsegs; s++) {
                uint32_t len = r->sga_segs[s].sgaseg_len;
                CHECK(got + len <= size);
                if (!pair_check(r->sga_segs[s].sgaseg_buf, len, i, got)) {
                    fprintf(stderr, "message %llu (%zu bytes): wrong bytes at %zu\n", (unsigned long long)i, size, got);
                    return 1;
                }
                got += len;
            }
            CHECK_EQ(demi_sgafree(r), 0);
        }
        pair_wait(&qr, push, 20);
        CHECK_EQ(qr.qr_opcode, DEMI_OPC_PUSH);
        bytes += size;
    }
    CHECK_EQ(demi_close(qd), 0);
    printf("tcp ping-pong: 10000 messages, %llu bytes each way, all checked\n", (unsigned long long)bytes);
    return pair_check_copies("tcp client");
}

int main(void)
{
    return pair_run(pair_tcp_echo_server, client, NULL);
}
