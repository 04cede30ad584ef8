/*
 * 1000 concurrent TCP connections: all connects in flight at once
 * (collected with demi_wait_any, swapping finished tokens out), then one
 * distinct message per connection echoed concurrently and checked; then a
 * churn phase where 1 to 5 connections are busy at once, with pauses long
 * enough for the server to go to sleep in between (catnap switches between
 * polling sockets directly, epoll, and sleeping: nothing may be lost at the
 * seams); then all closed.
 */
#include "pair.h"
#include "tcheck.h"

#include <errno.h>
#include <unistd.h>

enum { N = 1000 };

static int client(struct pair *p)
{
    static int qds[N];
    static demi_qtoken_t qts[N];
    static int owner[N];
    static size_t got[N];
    demi_qresult_t qr;
    for (int i = 0; i < N; i++) {
        CHECK_EQ(demi_socket(&qds[i], AF_INET, SOCK_STREAM, 0), 0);
        CHECK_EQ(demi_connect(&qts[i], qds[i], (struct sockaddr *)&p->server, sizeof(p->server)), 0);
        owner[i] = i;
    }
    int pending = N;
    while (pending) {
        int off;
        struct timespec ts = {20, 0};
        CHECK_EQ(demi_wait_any(&qr, &off, qts, pending, &ts), 0);
        CHECK(off >= 0 && off < pending);
        if (qr.qr_opcode != DEMI_OPC_CONNECT) {
            fprintf(stderr, "connect %d failed: %s\n", owner[off], strerror((int)qr.qr_ret));
            return 1;
        }
        CHECK_EQ(qr.qr_qd, qds[owner[off]]);
        qts[off] = qts[pending - 1];
        owner[off] = owner[pending - 1];
        pending--;
    }
    /* One message per connection, all in flight together. */
    int maxqd = 0;
    for (int i = 0; i < N; i++)
        maxqd = qds[i] > maxqd ? qds[i] : maxqd;
    int *conn_of = calloc((size_t)maxqd + 1, sizeof(int));
    for (int i = 0; i < N; i++) {
        conn_of[qds[i]] = i;
        size_t size = 100 + (size_t)i % 900;
        demi_sgarray_t sga = demi_sgaalloc(size);
        pair_fill(sga.sga_segs[0].sgaseg_buf, size, (uint64_t)i, 0);
        demi_qtoken_t qt;
        CHECK_EQ(demi_push(&qt, qds[i], &sga), 0);
        CHECK_EQ(demi_sgafree(&sga), 0);
        CHECK_EQ(demi_pop(&qt, qds[i]), 0);
    }
    int complete = 0;
    demi_qresult_t rs[64];
    while (complete < N) {
        int n;
        struct timespec ts = {20, 0};
        CHECK_EQ(demi_wait_next_n(rs, 64, &n, &ts), 0);
        for (int k = 0; k < n; k++) {
            if (rs[k].qr_opcode == DEMI_OPC_PUSH)
                continue;
            CHECK_EQ(rs[k].qr_opcode, DEMI_OPC_POP);
            int i = conn_of[rs[k].qr_qd];
            size_t size = 100 + (size_t)i % 900;
            demi_sgarray_t *r = &rs[k].qr_value.sga;
            CHECK(r->sga_numsegs >= 1);
            for (uint32_t s = 0; s < r->sga_numsegs; s++) {
                CHECK(got[i] + r->sga_segs[s].sgaseg_len <= size);
                CHECK(pair_check(r->sga_segs[s].sgaseg_buf, r->sga_segs[s].sgaseg_len, (uint64_t)i, got[i]));
                got[i] += r->sga_segs[s].sgaseg_len;
            }
            CHECK_EQ(demi_sgafree(r), 0);
            if (got[i] == size) {
                complete++;
            } else {
                demi_qtoken_t qt;
                CHECK_EQ(demi_pop(&qt, qds[i]), 0);
            }
        }
    }
    /* Churn: k connections busy at once, k = 1..5, with sleeps. */
    for (int round = 0; round < 60; round++) {
        int k = round % 5 + 1;
        for (int j = 0; j < k; j++) {
            int i = (round * 7 + j * 13) % N;
            demi_sgarray_t sga = demi_sgaalloc(32);
            pair_fill(sga.sga_segs[0].sgaseg_buf, 32, (uint64_t)(round * 10 + j), 0);
            demi_qtoken_t qt;
            CHECK_EQ(demi_push(&qt, qds[i], &sga), 0);
            CHECK_EQ(demi_sgafree(&sga), 0);
            CHECK_EQ(demi_pop(&qt, qds[i]), 0);
            got[i] = 0;
        }
        int left = k;
        while (left) {
            int n;
            struct timespec ts = {20, 0};
            CHECK_EQ(demi_wait_next_n(rs, 64, &n, &ts), 0);
            for (int r = 0; r < n; r++) {
                if (rs[r].qr_opcode == DEMI_OPC_PUSH)
                    continue;
                CHECK_EQ(rs[r].qr_opcode, DEMI_OPC_POP);
                int i = conn_of[rs[r].qr_qd];
                int j = -1;
                for (int x = 0; x < k; x++)
                    if ((round * 7 + x * 13) % N == i)
                        j = x;
                CHECK(j >= 0);
                demi_sgarray_t *g = &rs[r].qr_value.sga;
                for (uint32_t s = 0; s < g->sga_numsegs; s++) {
                    CHECK(pair_check(g->sga_segs[s].sgaseg_buf, g->sga_segs[s].sgaseg_len, (uint64_t)(round * 10 + j),
                                     got[i]));
                    got[i] += g->sga_segs[s].sgaseg_len;
                }
                CHECK_EQ(demi_sgafree(g), 0);
                if (got[i] == 32) {
                    left--;
                } else {
                    demi_qtoken_t qt;
                    CHECK_EQ(demi_pop(&qt, qds[i]), 0);
                }
            }
        }
        if (round % 6 == 5)
            usleep(5000); /* longer than SPIN_US: the server sleeps */
    }
    for (int i = 0; i < N; i++)
        CHECK_EQ(demi_close(qds[i]), 0);
    free(conn_of);
    printf("many connections: %d concurrent connections echoed and checked\n", N);
    return 0;
}

int main(void)
{
    return pair_run(pair_tcp_echo_server, client, NULL);
}
