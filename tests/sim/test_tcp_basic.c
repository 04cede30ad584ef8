/*
 * TCP basics on dev/sim: handshake with every option negotiated, a few
 * messages each way byte-exact, an orderly close from both ends through
 * FIN_WAIT/CLOSE_WAIT/LAST_ACK/TIME_WAIT, and every heap back to empty.
 */
#include "inet/inet_int.h"
#include "simworld.h"

int main(void)
{
    struct simworld w;
    sw_init(&w, 1, getenv("DEMI_PCAP"));
    struct simnode *a = sw_node(&w, NULL), *b = sw_node(&w, NULL);
    struct sim_link lk = {.delay_ns = 50 * USEC};
    sw_link(&w, a, &lk);
    sw_link(&w, b, &lk);

    void *ls = sw_socket(b, SOCK_STREAM);
    sw_bind(b, ls, 80);
    sw_listen(b, ls, 16);
    struct sched_task *acc = sw_accept(b, ls);
    void *cs = sw_socket(a, SOCK_STREAM);
    struct sched_task *con = sw_connect(a, cs, b, 80);
    demi_qresult_t qr = sw_wait(&w, a, con, 5 * SEC);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_CONNECT);
    qr = sw_wait(&w, b, acc, 5 * SEC);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_ACCEPT);
    CHECK_EQ(qr.qr_value.ares.addr.sin_addr.s_addr, a->ip.s_addr);
    void *ss = sw_accepted(b, &qr);

    struct tcp_conn_stats st = sw_tcp_stats(a, cs);
    CHECK(st.sack_ok && st.ts_ok && st.wscale_ok);
    CHECK_EQ(st.mss, 1460);
    CHECK_EQ(st.state, TCPS_ESTABLISHED);

    for (int i = 0; i < 50; i++) {
        size_t len = 1 + (size_t)i * 97;
        demi_sgarray_t m = sw_sga(a, len, (uint64_t)i, 0);
        struct sched_task *p = sw_push(a, cs, &m);
        sw_free(a, &m);
        size_t got = 0;
        while (got < len) {
            struct sched_task *r = sw_pop(b, ss);
            qr = sw_wait(&w, b, r, 5 * SEC);
            CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
            CHECK(sw_check(&qr.qr_value.sga, (uint64_t)i, got));
            for (uint32_t s = 0; s < qr.qr_value.sga.sga_numsegs; s++)
                got += qr.qr_value.sga.sga_segs[s].sgaseg_len;
            /* Echo it back: the very buffers, zero copy. */
            struct sched_task *e = sw_push(b, ss, &qr.qr_value.sga);
            sw_free(b, &qr.qr_value.sga);
            (void)e;
        }
        CHECK_EQ(got, len);
        qr = sw_wait(&w, a, p, 5 * SEC);
        CHECK_EQ(qr.qr_opcode, DEMI_OPC_PUSH);
        size_t back = 0;
        while (back < len) {
            qr = sw_wait(&w, a, sw_pop(a, cs), 5 * SEC);
            CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
            CHECK(sw_check(&qr.qr_value.sga, (uint64_t)i, back));
            for (uint32_t s = 0; s < qr.qr_value.sga.sga_numsegs; s++)
                back += qr.qr_value.sga.sga_segs[s].sgaseg_len;
            sw_free(a, &qr.qr_value.sga);
        }
    }
    /* Harvest the server's push results. */
    sw_run_for(&w, 10 * MSEC);
    demi_qresult_t rs;
    while (b->rt->sched.done.head)
        sched_harvest(&b->rt->sched, b->rt->sched.done.head, &rs);

    /* Close: the client first (FIN_WAIT_1 -> 2 -> TIME_WAIT), then the server. */
    struct sched_task *eof = sw_pop(b, ss);
    sw_close(a, cs);
    qr = sw_wait(&w, b, eof, 5 * SEC);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
    CHECK_EQ(qr.qr_value.sga.sga_numsegs, 0);
    CHECK_EQ(sw_tcp_stats(b, ss).state, TCPS_CLOSE_WAIT);
    sw_close(b, ss);
    sw_run_for(&w, 1 * SEC);
    CHECK_EQ(a->in->nconns, 1); /* the client's side in TIME_WAIT */
    CHECK_EQ(b->in->nconns, 0); /* LAST_ACK done */
    sw_run_for(&w, 61 * SEC);
    CHECK_EQ(a->in->nconns, 0); /* 2 MSL later */
    sw_close(b, ls);
    sw_run_for(&w, 1 * SEC);
    CHECK_EQ(heap_stats(a->rt->heap)->bytes_in_use, 0);
    CHECK_EQ(heap_stats(b->rt->heap)->bytes_in_use, 0);
    printf("tcp basic: ok (%llu segments a->b, %llu retransmitted)\n",
           (unsigned long long)inet_stats(a->in)->tcp_tx_segs, (unsigned long long)inet_stats(a->in)->tcp_retrans_segs);
    sw_fini(&w);
    return 0;
}
