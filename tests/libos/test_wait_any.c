/*
 * demi_wait_any over 2000 tokens: 1000 UDP sockets with a pop pending each
 * and 1000 pushes to them in shuffled order, all in one array. Every
 * completion is reported exactly once, at the right offset, with the right
 * payload; a consumed token is then rejected.
 */
#include "pair.h"
#include "tcheck.h"

#include <arpa/inet.h>
#include <errno.h>

enum { N = 1000 };

int main(void)
{
    pair_raise_nofile();
    pair_init_single();
    static int qds[N];
    static struct sockaddr_in addrs[N];
    static demi_qtoken_t qts[2 * N];
    static int what[2 * N]; /* >= 0: pop on socket i; < 0: push -(i + 1) */
    static int popped[N], pushed[N];
    const char *ip = getenv("DEMI_TEST_SERVER_IP");
    for (int i = 0; i < N; i++) {
        CHECK_EQ(demi_socket(&qds[i], AF_INET, SOCK_DGRAM, 0), 0);
        struct sockaddr_in a = {.sin_family = AF_INET};
        inet_pton(AF_INET, ip && *ip ? ip : "127.0.0.1", &a.sin_addr);
        CHECK_EQ(demi_bind(qds[i], (struct sockaddr *)&a, sizeof(a)), 0);
        socklen_t len = sizeof(addrs[i]);
        CHECK_EQ(demi_getsockname(qds[i], (struct sockaddr *)&addrs[i], &len), 0);
        CHECK(addrs[i].sin_port != 0);
        CHECK_EQ(demi_pop(&qts[i], qds[i]), 0);
        what[i] = i;
    }
    int sender;
    CHECK_EQ(demi_socket(&sender, AF_INET, SOCK_DGRAM, 0), 0);
    uint64_t rng = 11;
    int order[N];
    for (int i = 0; i < N; i++)
        order[i] = i;
    for (int i = N - 1; i > 0; i--) {
        int j = (int)(trand(&rng) % (uint64_t)(i + 1));
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (int k = 0; k < N; k++) {
        int i = order[k];
        demi_sgarray_t sga = demi_sgaalloc(sizeof(int));
        memcpy(sga.sga_segs[0].sgaseg_buf, &i, sizeof(int));
        CHECK_EQ(demi_pushto(&qts[N + k], sender, &sga, (struct sockaddr *)&addrs[i], sizeof(addrs[i])), 0);
        CHECK_EQ(demi_sgafree(&sga), 0);
        what[N + k] = -(i + 1);
    }
    int live = 2 * N;
    while (live) {
        demi_qresult_t qr;
        int off = -1;
        struct timespec ts = {10, 0};
        CHECK_EQ(demi_wait_any(&qr, &off, qts, live, &ts), 0);
        CHECK(off >= 0 && off < live);
        CHECK(qr.qr_qt == qts[off]);
        if (what[off] >= 0) {
            int i = what[off];
            CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
            CHECK_EQ(qr.qr_qd, qds[i]);
            CHECK_EQ(qr.qr_value.sga.sga_segs[0].sgaseg_len, sizeof(int));
            int v;
            memcpy(&v, qr.qr_value.sga.sga_segs[0].sgaseg_buf, sizeof(int));
            CHECK_EQ(v, i);
            CHECK_EQ(demi_sgafree(&qr.qr_value.sga), 0);
            popped[i]++;
        } else {
            CHECK_EQ(qr.qr_opcode, DEMI_OPC_PUSH);
            CHECK_EQ(qr.qr_qd, sender);
            pushed[-what[off] - 1]++;
        }
        /* The consumed token is gone for good. */
        demi_qtoken_t stale = qts[off];
        CHECK_EQ(demi_wait(&qr, stale, NULL), EINVAL);
        qts[off] = qts[live - 1];
        what[off] = what[live - 1];
        live--;
        if (live) {
            qts[live] = stale; /* a stale token anywhere in the array: EINVAL */
            CHECK_EQ(demi_wait_any(&qr, &off, qts, live + 1, &ts), EINVAL);
        }
    }
    for (int i = 0; i < N; i++) {
        CHECK_EQ(popped[i], 1);
        CHECK_EQ(pushed[i], 1);
        CHECK_EQ(demi_close(qds[i]), 0);
    }
    CHECK_EQ(demi_close(sender), 0);
    printf("wait_any: 2000 tokens, each completed exactly once\n");
    return 0;
}
