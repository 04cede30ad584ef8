/*
 * UDP ping-pong of 10,000 datagrams from 1 B to 65,507 B (the largest
 * IPv4 UDP payload), every byte and every source address checked.
 * DEMI_TEST_UDP_MAX=N caps the sizes, for a device that cannot carry
 * larger datagrams (net_af_packet's fanout reassembles fragments into one
 * ring frame of about 1982 bytes); the output says so.
 */
#include "pair.h"
#include "tcheck.h"

#include <errno.h>
#include <stdlib.h>

static int client(struct pair *p)
{
    int qd;
    demi_qtoken_t qt;
    demi_qresult_t qr;
    CHECK_EQ(demi_socket(&qd, AF_INET, SOCK_DGRAM, 0), 0);
    uint64_t rng = 3, bytes = 0;
    size_t max = 65507;
    const char *cap = getenv("DEMI_TEST_UDP_MAX");
    if (cap && *cap) {
        max = (size_t)strtoul(cap, NULL, 10);
        CHECK(max >= 1 && max <= 65507);
        printf("udp ping-pong: datagrams capped at %zu bytes (DEMI_TEST_UDP_MAX)\n", max);
    }
    for (uint64_t i = 0; i < 10000; i++) {
        size_t size;
        if (i == 0)
            size = 1;
        else if (i == 1 || i % 1000 == 999)
            size = 65507;
        else
            size = 1 + (size_t)(trand(&rng) % ((uint64_t)1 << (trand(&rng) % 16 + 1)));
        if (size > max)
            size = max;
        demi_sgarray_t sga = demi_sgaalloc(size);
        pair_fill(sga.sga_segs[0].sgaseg_buf, size, i, 0);
        demi_qtoken_t push;
        CHECK_EQ(demi_pushto(&push, qd, &sga, (struct sockaddr *)&p->server, sizeof(p->server)), 0);
        CHECK_EQ(demi_sgafree(&sga), 0);
        CHECK_EQ(demi_pop(&qt, qd), 0);
        pair_wait(&qr, qt, 10);
        CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
        demi_sgarray_t *r = &qr.qr_value.sga;
        CHECK_EQ(r->sga_numsegs, 1);
        CHECK_EQ(r->sga_segs[0].sgaseg_len, size);
        CHECK(pair_check(r->sga_segs[0].sgaseg_buf, size, i, 0));
        CHECK_EQ(r->sga_addr.sin_family, AF_INET);
        CHECK_EQ(r->sga_addr.sin_port, p->server.sin_port);
        CHECK_EQ(r->sga_addr.sin_addr.s_addr, p->server.sin_addr.s_addr);
        CHECK_EQ(demi_sgafree(r), 0);
        pair_wait(&qr, push, 10);
        CHECK_EQ(qr.qr_opcode, DEMI_OPC_PUSH);
        bytes += size;
    }
    /* A datagram larger than IPv4 allows is refused at once. */
    demi_sgarray_t big = demi_sgaalloc(65508);
    CHECK_EQ(demi_pushto(&qt, qd, &big, (struct sockaddr *)&p->server, sizeof(p->server)), EMSGSIZE);
    CHECK_EQ(demi_sgafree(&big), 0);
    CHECK_EQ(demi_close(qd), 0);
    printf("udp ping-pong: 10000 datagrams, %llu bytes each way, all checked\n", (unsigned long long)bytes);
    return pair_check_copies("udp client");
}

int main(void)
{
    return pair_run(pair_udp_echo_server, client, NULL);
}
