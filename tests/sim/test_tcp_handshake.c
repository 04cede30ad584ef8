/*
 * TCP connection setup on dev/sim: every combination of SACK, timestamps
 * and window scaling offered or not (negotiated only when both sides want
 * it, and a transfer works either way); the loss of the SYN, of the
 * SYN-ACK, and of the final ACK; a connect to a closed port (RST ->
 * ECONNREFUSED); to an address nobody answers ARP for (EHOSTUNREACH); a
 * SYN that never gets an answer (ETIMEDOUT after the SYN retries); and a
 * full listen backlog (SYN cookies beyond it), drained by accepting.
 */
#include "flow.h"
#include "inet/inet_int.h"

/* Tap: drops the first @n frames matching @flags exactly (TCP flags). */
static struct {
    uint8_t flags;
    int left;
    bool data_only;
    int dropped;
    struct simnode *from;
} drop;

static int dropper(void *arg, struct netdev *from, const uint8_t *f, uint32_t len)
{
    (void)arg;
    struct sw_seg s;
    if (drop.left <= 0 || (drop.from && from != drop.from->dev) || !sw_parse(f, len, &s) || !s.tcp)
        return 0;
    if (s.flags != drop.flags || (drop.data_only && s.dlen == 0) || (!drop.data_only && s.dlen))
        return 0;
    drop.left--;
    drop.dropped++;
    return 1;
}

static void set_drop(struct simworld *w, struct simnode *from, uint8_t flags, int n)
{
    drop.flags = flags;
    drop.left = n;
    drop.dropped = 0;
    drop.data_only = false;
    drop.from = from;
    simnet_set_tap(w->net, dropper, NULL);
}

/* Options: bit 0 SACK, bit 1 timestamps, bit 2 window scaling, per side. */
static int opts_a, opts_b;
static void tweak_a(struct inet_config *ic)
{
    ic->tcp_sack = opts_a & 1;
    ic->tcp_timestamps = opts_a & 2;
    ic->tcp_wscale = opts_a & 4;
}
static void tweak_b(struct inet_config *ic)
{
    ic->tcp_sack = opts_b & 1;
    ic->tcp_timestamps = opts_b & 2;
    ic->tcp_wscale = opts_b & 4;
}

static bool flow_pred(void *arg)
{
    return flow_step(arg);
}

static void options_matrix(void)
{
    for (opts_a = 0; opts_a < 8; opts_a++) {
        for (opts_b = 0; opts_b < 8; opts_b += (opts_a == 7 ? 1 : 7)) {
            struct simworld w;
            sw_init(&w, 100 + (uint64_t)(opts_a * 8 + opts_b), NULL);
            struct simnode *a = sw_node(&w, tweak_a), *b = sw_node(&w, tweak_b);
            struct sim_link lk = {.delay_ns = 20 * USEC, .loss_ppm = 5000};
            void *aq, *bq;
            sw_pair(&w, a, b, 80, &aq, &bq);
            sw_link(&w, a, &lk);
            sw_link(&w, b, &lk);
            int both = opts_a & opts_b;
            struct tcp_conn_stats sa = sw_tcp_stats(a, aq), sb = sw_tcp_stats(b, bq);
            CHECK_EQ(sa.sack_ok, (both & 1) != 0);
            CHECK_EQ(sb.sack_ok, (both & 1) != 0);
            CHECK_EQ(sa.ts_ok, (both & 2) != 0);
            CHECK_EQ(sb.ts_ok, (both & 2) != 0);
            CHECK_EQ(sa.wscale_ok, (both & 4) != 0);
            CHECK_EQ(sb.wscale_ok, (both & 4) != 0);
            if (!(both & 4)) {
                CHECK_EQ(sa.snd_wscale, 0);
                CHECK_EQ(sa.rcv_wscale, 0);
            }
            struct flow f;
            flow_init(&f, a, aq, b, bq, 300000, 7);
            CHECK_EQ(sw_run(&w, flow_pred, &f, 600 * SEC), 0);
            sw_close(a, aq);
            sw_close(b, bq);
            sw_fini(&w);
        }
    }
    printf("options matrix: ok\n");
}

static void lose(uint8_t flags, bool from_client, const char *what)
{
    struct simworld w;
    sw_init(&w, 200 + flags, NULL);
    struct simnode *a = sw_node(&w, NULL), *b = sw_node(&w, NULL);
    sw_link(&w, a, &(struct sim_link){.delay_ns = 100 * USEC});
    sw_link(&w, b, &(struct sim_link){.delay_ns = 100 * USEC});
    void *ls = sw_socket(b, SOCK_STREAM);
    sw_bind(b, ls, 80);
    sw_listen(b, ls, 4);
    struct sched_task *acc = sw_accept(b, ls);
    set_drop(&w, from_client ? a : b, flags, 1);
    void *cq = sw_socket(a, SOCK_STREAM);
    uint64_t t0 = w.now;
    demi_qresult_t qr = sw_wait(&w, a, sw_connect(a, cq, b, 80), 10 * SEC);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_CONNECT);
    CHECK_EQ(drop.dropped, 1);
    /* The client pushes at once: after a lost final ACK, its data segment
     * completes the server's side of the handshake. */
    demi_sgarray_t m = sw_sga(a, 5000, 3, 0);
    struct sched_task *p = sw_push(a, cq, &m);
    sw_free(a, &m);
    qr = sw_wait(&w, b, acc, 10 * SEC);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_ACCEPT);
    void *sq = sw_accepted(b, &qr);
    size_t got = 0;
    while (got < 5000) {
        qr = sw_wait(&w, b, sw_pop(b, sq), 10 * SEC);
        CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
        CHECK(sw_check(&qr.qr_value.sga, 3, got));
        got += qr.qr_value.sga.sga_segs[0].sgaseg_len;
        for (uint32_t s = 1; s < qr.qr_value.sga.sga_numsegs; s++)
            got += qr.qr_value.sga.sga_segs[s].sgaseg_len;
        sw_free(b, &qr.qr_value.sga);
    }
    qr = sw_wait(&w, a, p, 10 * SEC);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_PUSH);
    printf("%s lost: connected after %.3f s of virtual time\n", what, (double)(w.now - t0) / 1e9);
    simnet_set_tap(w.net, NULL, NULL);
    sw_fini(&w);
}

static void refused_unreachable_timeout(void)
{
    struct simworld w;
    sw_init(&w, 300, NULL);
    struct simnode *a = sw_node(&w, NULL), *b = sw_node(&w, NULL);
    /* Nobody listens on port 81: RST -> ECONNREFUSED, at once. */
    void *q = sw_socket(a, SOCK_STREAM);
    demi_qresult_t qr = sw_wait(&w, a, sw_connect(a, q, b, 81), 5 * SEC);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_FAILED);
    CHECK_EQ(qr.qr_ret, ECONNREFUSED);
    CHECK(inet_stats(b->in)->tcp_rst_sent >= 1);
    sw_close(a, q);

    /* Nobody has 10.0.0.99: ARP gives up -> EHOSTUNREACH. */
    struct simnode ghost = {.ip.s_addr = htonl(0x0a000063)};
    q = sw_socket(a, SOCK_STREAM);
    uint64_t t0 = w.now;
    qr = sw_wait(&w, a, sw_connect(a, q, &ghost, 80), 10 * SEC);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_FAILED);
    CHECK_EQ(qr.qr_ret, EHOSTUNREACH);
    CHECK_EQ(inet_stats(a->in)->arp_timeouts, 1);
    CHECK_EQ(inet_stats(a->in)->arp_req_sent, 1 + 4); /* b's, then the ghost's 1 + 3 retries */
    CHECK((double)(w.now - t0) >= 0.4e9);             /* 4 requests 100 ms apart */
    sw_close(a, q);

    /* SYN-ACKs always lost: the client gives up after its SYN retries. */
    void *ls = sw_socket(b, SOCK_STREAM);
    sw_bind(b, ls, 80);
    sw_listen(b, ls, 4);
    set_drop(&w, b, TH_SYN | TH_ACK, 1000);
    q = sw_socket(a, SOCK_STREAM);
    t0 = w.now;
    qr = sw_wait(&w, a, sw_connect(a, q, b, 80), 300 * SEC);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_FAILED);
    CHECK_EQ(qr.qr_ret, ETIMEDOUT);
    /* 1 + 2 + 4 + 8 + 16 + 32 + 64 s with six retries from a 1 s RTO. */
    double took = (double)(w.now - t0) / 1e9;
    CHECK(took > 120 && took < 130);
    printf("refused, unreachable (%d ARP requests), SYN timeout after %.1f s: ok\n",
           (int)inet_stats(a->in)->arp_req_sent, took);
    simnet_set_tap(w.net, NULL, NULL);
    sw_close(a, q);
    sw_close(b, ls);
    sw_fini(&w);
}

static void backlog(void)
{
    struct simworld w;
    sw_init(&w, 400, NULL);
    struct simnode *a = sw_node(&w, NULL), *b = sw_node(&w, NULL);
    void *ls = sw_socket(b, SOCK_STREAM);
    sw_bind(b, ls, 80);
    sw_listen(b, ls, 2);
    enum { N = 5 };
    void *cq[N];
    struct sched_task *ct[N];
    for (int i = 0; i < N; i++) {
        cq[i] = sw_socket(a, SOCK_STREAM);
        ct[i] = sw_connect(a, cq[i], b, 80);
    }
    sw_run_for(&w, 100 * MSEC);
    /* The backlog holds two; the three SYNs beyond it got SYN cookies, and
     * their final ACKs found the accept queue full and were dropped (as
     * Linux does): those clients think themselves connected, and their
     * first segment, repeated until there is room, completes the
     * connection at the listener. */
    CHECK_EQ(((struct inet_sock *)ls)->lst->nready, 2);
    CHECK_EQ(inet_stats(b->in)->tcp_syncookies_sent, 3);
    CHECK_EQ(inet_stats(b->in)->tcp_syn_rx, N);
    CHECK_EQ(b->in->nconns, 2);
    struct sched_task *pt[N];
    for (int i = 0; i < N; i++) {
        demi_qresult_t qr = sw_result(a, ct[i]);
        CHECK_EQ(qr.qr_opcode, DEMI_OPC_CONNECT);
        demi_sgarray_t m = sw_sga(a, 1, (uint64_t)i, 0);
        pt[i] = sw_push(a, cq[i], &m);
        sw_free(a, &m);
    }
    /* Accepting makes room; the others get in on their retransmissions. */
    for (int k = 0; k < N; k++) {
        demi_qresult_t qr = sw_wait(&w, b, sw_accept(b, ls), 60 * SEC);
        CHECK_EQ(qr.qr_opcode, DEMI_OPC_ACCEPT);
        void *ss = sw_accepted(b, &qr);
        qr = sw_wait(&w, b, sw_pop(b, ss), 60 * SEC);
        CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
        CHECK_EQ(qr.qr_value.sga.sga_segs[0].sgaseg_len, 1);
        sw_free(b, &qr.qr_value.sga);
        sw_close(b, ss);
    }
    CHECK_EQ(inet_stats(b->in)->tcp_syncookies_ok, 3);
    for (int i = 0; i < N; i++) {
        demi_qresult_t qr = sw_wait(&w, a, pt[i], 60 * SEC);
        CHECK_EQ(qr.qr_opcode, DEMI_OPC_PUSH);
        sw_close(a, cq[i]);
    }
    sw_close(b, ls);
    sw_fini(&w);
    printf("backlog: ok\n");
}

int main(void)
{
    options_matrix();
    lose(TH_SYN, true, "SYN");
    lose(TH_SYN | TH_ACK, false, "SYN-ACK");
    lose(TH_ACK, true, "final ACK");
    refused_unreachable_timeout();
    backlog();
    return 0;
}
