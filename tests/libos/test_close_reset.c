/*
 * Every way a TCP queue ends, seen from both sides:
 *  1. the client closes: the server's pop completes with an empty array;
 *  2. the server resets (SO_LINGER 0): the client's pop fails ECONNRESET;
 *  3. the client closes with a pop pending: it fails ECANCELED, and the
 *     token is still valid for demi_wait;
 *  4. connect to a port nobody listens on: ECONNREFUSED;
 *  5. the server closes its listening queue with an accept pending:
 *     ECANCELED;
 *  6. a graceful close right after a push too large to leave at once:
 *     every byte still arrives, then EOF, and the push completes.
 */
#include "pair.h"
#include "tcheck.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

static int accept_one(int lqd)
{
    demi_qtoken_t qt;
    demi_qresult_t qr;
    CHECK_EQ(demi_accept(&qt, lqd), 0);
    pair_wait(&qr, qt, 20);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_ACCEPT);
    return qr.qr_value.ares.qd;
}

static int server(struct pair *p)
{
    int lqd;
    demi_qtoken_t qt;
    demi_qresult_t qr;
    CHECK_EQ(demi_socket(&lqd, AF_INET, SOCK_STREAM, 0), 0);
    struct sockaddr_in a = p->server;
    CHECK_EQ(demi_bind(lqd, (struct sockaddr *)&a, sizeof(a)), 0);
    CHECK_EQ(demi_listen(lqd, 16), 0);
    socklen_t len = sizeof(a);
    CHECK_EQ(demi_getsockname(lqd, (struct sockaddr *)&a, &len), 0);
    pair_ready(p, ntohs(a.sin_port));

    /* 1. Orderly close by the client. */
    int c1 = accept_one(lqd);
    CHECK_EQ(demi_pop(&qt, c1), 0);
    pair_wait(&qr, qt, 20);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
    CHECK_EQ(qr.qr_value.sga.sga_numsegs, 0);
    CHECK_EQ(qr.qr_value.sga.sga_segs[0].sgaseg_len, 0);
    CHECK_EQ(demi_sgafree(&qr.qr_value.sga), 0); /* an empty array frees fine */
    CHECK_EQ(demi_pop(&qt, c1), 0);              /* EOF again */
    pair_wait(&qr, qt, 20);
    CHECK_EQ(qr.qr_value.sga.sga_numsegs, 0);
    CHECK_EQ(demi_close(c1), 0);

    /* 2. Reset by us: wait for the client's byte so it is popping, then abort. */
    int c2 = accept_one(lqd);
    CHECK_EQ(demi_pop(&qt, c2), 0);
    pair_wait(&qr, qt, 20);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
    CHECK_EQ(demi_sgafree(&qr.qr_value.sga), 0);
    struct linger lg = {1, 0};
    CHECK_EQ(demi_setsockopt(c2, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    CHECK_EQ(demi_close(c2), 0);

    /* 3. The client cancels its own pop; we just see it go. */
    int c3 = accept_one(lqd);
    CHECK_EQ(demi_pop(&qt, c3), 0);
    pair_wait(&qr, qt, 20);
    CHECK(qr.qr_opcode == DEMI_OPC_POP || qr.qr_opcode == DEMI_OPC_FAILED);
    if (qr.qr_opcode == DEMI_OPC_POP)
        CHECK_EQ(qr.qr_value.sga.sga_numsegs, 0);
    CHECK_EQ(demi_close(c3), 0);

    /* 6. The client pushes 8 MiB and closes at once: all of it, then EOF. */
    int c6 = accept_one(lqd);
    size_t got = 0;
    for (;;) {
        CHECK_EQ(demi_pop(&qt, c6), 0);
        pair_wait(&qr, qt, 30);
        CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
        if (qr.qr_value.sga.sga_numsegs == 0)
            break;
        for (uint32_t s = 0; s < qr.qr_value.sga.sga_numsegs; s++) {
            CHECK(pair_check(qr.qr_value.sga.sga_segs[s].sgaseg_buf, qr.qr_value.sga.sga_segs[s].sgaseg_len, 66, got));
            got += qr.qr_value.sga.sga_segs[s].sgaseg_len;
        }
        CHECK_EQ(demi_sgafree(&qr.qr_value.sga), 0);
    }
    CHECK_EQ(got, 8u << 20);
    CHECK_EQ(demi_close(c6), 0);

    /* 5. Close the listening queue with an accept pending. */
    CHECK_EQ(demi_accept(&qt, lqd), 0);
    CHECK_EQ(demi_close(lqd), 0);
    pair_wait(&qr, qt, 1);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_FAILED);
    CHECK_EQ(qr.qr_ret, ECANCELED);
    CHECK_EQ(qr.qr_qd, lqd);
    return 0;
}

static int connect_to(struct pair *p)
{
    int qd;
    demi_qtoken_t qt;
    demi_qresult_t qr;
    CHECK_EQ(demi_socket(&qd, AF_INET, SOCK_STREAM, 0), 0);
    CHECK_EQ(demi_connect(&qt, qd, (struct sockaddr *)&p->server, sizeof(p->server)), 0);
    pair_wait(&qr, qt, 20);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_CONNECT);
    return qd;
}

static int client(struct pair *p)
{
    demi_qtoken_t qt;
    demi_qresult_t qr;

    /* 1 */
    int c1 = connect_to(p);
    CHECK_EQ(demi_close(c1), 0);

    /* 2: send one byte, then wait for the reset. */
    int c2 = connect_to(p);
    demi_sgarray_t sga = demi_sgaalloc(1);
    CHECK_EQ(demi_push(&qt, c2, &sga), 0);
    CHECK_EQ(demi_sgafree(&sga), 0);
    pair_wait(&qr, qt, 20);
    CHECK_EQ(demi_pop(&qt, c2), 0);
    pair_wait(&qr, qt, 20);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_FAILED);
    CHECK_EQ(qr.qr_ret, ECONNRESET);
    CHECK_EQ(demi_close(c2), 0);

    /* 3 */
    int c3 = connect_to(p);
    demi_qtoken_t pop;
    CHECK_EQ(demi_pop(&pop, c3), 0);
    struct timespec zero = {0, 0};
    CHECK_EQ(demi_wait(&qr, pop, &zero), ETIMEDOUT);
    CHECK_EQ(demi_close(c3), 0);
    CHECK_EQ(demi_close(c3), EBADF);
    CHECK_EQ(demi_wait(&qr, pop, &zero), 0);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_FAILED);
    CHECK_EQ(qr.qr_ret, ECANCELED);
    CHECK_EQ(qr.qr_qd, c3);

    /* 4: a port nobody listens on at the server (1, tcpmux, never used). */
    struct sockaddr_in a = p->server;
    a.sin_port = htons(1);
    int c4;
    CHECK_EQ(demi_socket(&c4, AF_INET, SOCK_STREAM, 0), 0);
    CHECK_EQ(demi_connect(&qt, c4, (struct sockaddr *)&a, sizeof(a)), 0);
    pair_wait(&qr, qt, 20);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_FAILED);
    CHECK_EQ(qr.qr_ret, ECONNREFUSED);
    CHECK_EQ(demi_close(c4), 0);

    /* 6 */
    int c6 = connect_to(p);
    demi_sgarray_t big = demi_sgaalloc(8u << 20);
    pair_fill(big.sga_segs[0].sgaseg_buf, 8u << 20, 66, 0);
    demi_qtoken_t push;
    CHECK_EQ(demi_push(&push, c6, &big), 0);
    CHECK_EQ(demi_sgafree(&big), 0);
    CHECK_EQ(demi_close(c6), 0);
    pair_wait(&qr, push, 30);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_PUSH);
    printf("close and reset: ok\n");
    return 0;
}

int main(void)
{
    return pair_run(server, client, NULL);
}
