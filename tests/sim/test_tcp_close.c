/*
 * Every way a TCP connection ends, on dev/sim:
 *  - active close: FIN_WAIT_1 -> FIN_WAIT_2 -> TIME_WAIT for 2 MSL, the
 *    peer CLOSE_WAIT -> LAST_ACK -> gone; data sent just before the close
 *    still arrives;
 *  - simultaneous close: both sides CLOSING -> TIME_WAIT;
 *  - TIME_WAIT answers a retransmitted FIN (its ACK was lost) and the
 *    peer in LAST_ACK then finishes;
 *  - close with unread data, and SO_LINGER 0: RST, the peer's pop fails
 *    ECONNRESET and its push fails too;
 *  - an orphaned FIN_WAIT_2 gives up after fin_timeout;
 *  - closing a listener resets connections nobody accepted;
 *  - a pending pop and push are cancelled by the local close (ECANCELED);
 *  - SO_REUSEADDR: a port held only by a TIME_WAIT connection may be bound
 *    again with it, never without it, and never while a listener or a
 *    socket without it holds the port;
 *  - tcp_socket_options.linger (LINGER) from the configuration: every TCP
 *    socket starts with that SO_LINGER (accepted ones through their
 *    listener), so LINGER=0 makes a close abortive; UDP sockets are left
 *    alone.
 */
#include "flow.h"
#include "inet/inet_int.h"
#include "libos/inetos.h"

static void short_msl(struct inet_config *ic)
{
    ic->tcp_msl_ns = 5 * SEC;
    ic->tcp_fin_timeout_ns = 8 * SEC;
}

static struct simworld w;
static struct simnode *a, *b;

static void world(uint64_t seed)
{
    sw_init(&w, seed, NULL);
    a = sw_node(&w, short_msl);
    b = sw_node(&w, short_msl);
    sw_link(&w, a, &(struct sim_link){.delay_ns = 100 * USEC});
    sw_link(&w, b, &(struct sim_link){.delay_ns = 100 * USEC});
}

static void end_world(void)
{
    simnet_set_tap(w.net, NULL, NULL);
    sw_run_for(&w, 30 * SEC);
    CHECK_EQ(a->in->nconns, 0);
    CHECK_EQ(b->in->nconns, 0);
    CHECK_EQ(heap_stats(a->rt->heap)->bytes_in_use, 0);
    CHECK_EQ(heap_stats(b->rt->heap)->bytes_in_use, 0);
    sw_fini(&w);
}

static uint8_t state_of(struct simnode *n)
{
    /* The one connection left on a node (orphans have no socket). */
    for (uint32_t i = 0; i <= n->in->conns_mask; i++)
        if (n->in->conns[i])
            return n->in->conns[i]->state;
    return TCPS_CLOSED;
}

static void drain_results(struct simnode *n)
{
    demi_qresult_t qr;
    while (n->rt->sched.done.head)
        sched_harvest(&n->rt->sched, n->rt->sched.done.head, &qr);
}

static void active_close(void)
{
    world(700);
    void *aq, *bq;
    sw_pair(&w, a, b, 80, &aq, &bq);
    demi_sgarray_t m = sw_sga(a, 100000, 5, 0);
    sw_push(a, aq, &m);
    sw_free(a, &m);
    sw_close(a, aq); /* right after the push: the data must still arrive */
    CHECK_EQ(state_of(a), TCPS_FIN_WAIT_1);
    size_t got = 0;
    demi_qresult_t qr;
    for (;;) {
        qr = sw_wait(&w, b, sw_pop(b, bq), 5 * SEC);
        CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
        if (qr.qr_value.sga.sga_numsegs == 0)
            break;
        CHECK(sw_check(&qr.qr_value.sga, 5, got));
        for (uint32_t s = 0; s < qr.qr_value.sga.sga_numsegs; s++)
            got += qr.qr_value.sga.sga_segs[s].sgaseg_len;
        sw_free(b, &qr.qr_value.sga);
    }
    CHECK_EQ(got, 100000);
    CHECK_EQ(sw_tcp_stats(b, bq).state, TCPS_CLOSE_WAIT);
    sw_run_for(&w, MSEC); /* b's ACK of the FIN is one delay away */
    CHECK_EQ(state_of(a), TCPS_FIN_WAIT_2);
    /* Half-closed: b may still send; a, closed, resets (nobody reads). */
    sw_close(b, bq);
    sw_run_for(&w, 10 * MSEC);
    CHECK_EQ(state_of(a), TCPS_TIME_WAIT);
    CHECK_EQ(b->in->nconns, 0); /* LAST_ACK answered */
    sw_run_for(&w, 9 * SEC);
    CHECK_EQ(state_of(a), TCPS_TIME_WAIT); /* 2 MSL = 10 s */
    sw_run_for(&w, 2 * SEC);
    CHECK_EQ(a->in->nconns, 0);
    drain_results(a);
    end_world();
    printf("active close, TIME_WAIT for 2 MSL: ok\n");
}

static void simultaneous_close(void)
{
    world(701);
    void *aq, *bq;
    sw_pair(&w, a, b, 80, &aq, &bq);
    sw_close(a, aq);
    sw_close(b, bq); /* before a's FIN arrives: both FIN_WAIT_1 */
    CHECK_EQ(state_of(a), TCPS_FIN_WAIT_1);
    CHECK_EQ(state_of(b), TCPS_FIN_WAIT_1);
    sw_run_for(&w, 150 * USEC);
    CHECK_EQ(state_of(a), TCPS_CLOSING);
    CHECK_EQ(state_of(b), TCPS_CLOSING);
    sw_run_for(&w, 10 * MSEC);
    CHECK_EQ(state_of(a), TCPS_TIME_WAIT);
    CHECK_EQ(state_of(b), TCPS_TIME_WAIT);
    end_world();
    printf("simultaneous close: ok\n");
}

/* Drops the first pure ACK that a sends after a FIN from b arrived. */
static int drop_last_ack(void *arg, struct netdev *from, const uint8_t *f, uint32_t len)
{
    int *left = arg;
    struct sw_seg s;
    if (*left && from == a->dev && sw_parse(f, len, &s) && s.tcp && s.flags == TH_ACK && s.dlen == 0 &&
        state_of(a) == TCPS_TIME_WAIT) {
        (*left)--;
        return 1;
    }
    return 0;
}

static void time_wait_refin(void)
{
    world(702);
    void *aq, *bq;
    sw_pair(&w, a, b, 80, &aq, &bq);
    sw_close(a, aq);
    sw_run_for(&w, 10 * MSEC);
    CHECK_EQ(state_of(a), TCPS_FIN_WAIT_2);
    int left = 1;
    simnet_set_tap(w.net, drop_last_ack, &left);
    sw_close(b, bq);
    sw_run_for(&w, 10 * MSEC);
    CHECK_EQ(left, 0);
    CHECK_EQ(state_of(b), TCPS_LAST_ACK); /* its FIN's ACK was lost */
    sw_run_for(&w, 2 * SEC);              /* b retransmits its FIN; TIME_WAIT a answers */
    CHECK_EQ(b->in->nconns, 0);
    CHECK_EQ(state_of(a), TCPS_TIME_WAIT);
    end_world();
    printf("TIME_WAIT answers a retransmitted FIN: ok\n");
}

static void reset_paths(void)
{
    world(703);
    /* 1. Close with unread data: RST. */
    void *aq, *bq;
    sw_pair(&w, a, b, 80, &aq, &bq);
    demi_sgarray_t m = sw_sga(b, 1000, 6, 0);
    sw_push(b, bq, &m);
    sw_free(b, &m);
    sw_run_for(&w, 10 * MSEC);
    struct sched_task *bpop = sw_pop(b, bq);
    uint64_t rst0 = inet_stats(a->in)->tcp_rst_sent;
    sw_close(a, aq); /* 1000 bytes a never read */
    CHECK_EQ(inet_stats(a->in)->tcp_rst_sent, rst0 + 1);
    demi_qresult_t qr = sw_wait(&w, b, bpop, 5 * SEC);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_FAILED);
    CHECK_EQ(qr.qr_ret, ECONNRESET);
    m = sw_sga(b, 10, 6, 0);
    qr = sw_wait(&w, b, sw_push(b, bq, &m), SEC);
    sw_free(b, &m);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_FAILED);
    CHECK_EQ(qr.qr_ret, ECONNRESET);
    qr = sw_wait(&w, b, sw_pop(b, bq), SEC);
    CHECK_EQ(qr.qr_ret, ECONNRESET);
    sw_close(b, bq);
    drain_results(a);
    drain_results(b);

    /* 2. SO_LINGER with a zero timeout: abort. */
    sw_pair(&w, a, b, 81, &aq, &bq);
    struct linger lg = {1, 0};
    CHECK_EQ(inet_setsockopt(a->in, aq, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    bpop = sw_pop(b, bq);
    sw_close(a, aq);
    CHECK_EQ(a->in->nconns, 0); /* gone at once, no TIME_WAIT */
    qr = sw_wait(&w, b, bpop, 5 * SEC);
    CHECK_EQ(qr.qr_ret, ECONNRESET);
    sw_close(b, bq);

    /* 3. Local close cancels what is pending. */
    sw_pair(&w, a, b, 82, &aq, &bq);
    struct sched_task *p1 = sw_pop(a, aq), *p2 = sw_pop(a, aq);
    sw_close(a, aq);
    qr = sw_result(a, p1);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_FAILED);
    CHECK_EQ(qr.qr_ret, ECANCELED);
    qr = sw_result(a, p2);
    CHECK_EQ(qr.qr_ret, ECANCELED);
    qr = sw_wait(&w, b, sw_pop(b, bq), 5 * SEC);
    CHECK_EQ(qr.qr_value.sga.sga_numsegs, 0); /* a's FIN */
    sw_close(b, bq);
    end_world();
    printf("resets and cancellation: ok\n");
}

static void orphan_fin_wait_2(void)
{
    world(704);
    void *aq, *bq;
    sw_pair(&w, a, b, 80, &aq, &bq);
    sw_close(a, aq);
    sw_run_for(&w, 10 * MSEC);
    CHECK_EQ(state_of(a), TCPS_FIN_WAIT_2);
    sw_run_for(&w, 7 * SEC);
    CHECK_EQ(a->in->nconns, 1);
    sw_run_for(&w, 2 * SEC); /* fin_timeout: 8 s */
    CHECK_EQ(a->in->nconns, 0);
    sw_close(b, bq); /* b's FIN now meets a closed port: RST, and b is gone */
    end_world();
    printf("orphaned FIN_WAIT_2 times out: ok\n");
}

static void listener_close(void)
{
    world(705);
    void *ls = sw_socket(b, SOCK_STREAM);
    sw_bind(b, ls, 80);
    sw_listen(b, ls, 8);
    void *cq[3];
    struct sched_task *pops[3];
    for (int i = 0; i < 3; i++) {
        cq[i] = sw_socket(a, SOCK_STREAM);
        demi_qresult_t qr = sw_wait(&w, a, sw_connect(a, cq[i], b, 80), 5 * SEC);
        CHECK_EQ(qr.qr_opcode, DEMI_OPC_CONNECT);
        pops[i] = sw_pop(a, cq[i]);
    }
    struct sched_task *acc = sw_accept(b, ls);
    demi_qresult_t qr = sw_result(b, acc); /* one is accepted at once */
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_ACCEPT);
    void *sq = sw_accepted(b, &qr);
    sw_close(b, ls); /* the other two were never accepted: reset */
    int resets = 0;
    for (int i = 0; i < 3; i++) {
        sw_run_for(&w, 10 * MSEC);
        if (sw_done(pops[i])) {
            qr = sw_result(a, pops[i]);
            CHECK_EQ(qr.qr_ret, ECONNRESET);
            resets++;
        }
    }
    CHECK_EQ(resets, 2);
    CHECK_EQ(sw_tcp_stats(b, sq).state, TCPS_ESTABLISHED); /* the accepted one lives on */
    sw_close(b, sq);
    for (int i = 0; i < 3; i++)
        sw_close(a, cq[i]);
    drain_results(a);
    end_world();
    printf("closing a listener resets the unaccepted: ok\n");
}

static int bind_port(struct simnode *n, void *q, uint16_t port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    return inet_bind(n->in, q, &sa);
}

static void set_reuseaddr(struct simnode *n, void *q)
{
    int one = 1;
    CHECK_EQ(inet_setsockopt(n->in, q, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
}

static void reuseaddr_rebind(void)
{
    world(707);
    void *aq, *bq;
    sw_pair(&w, a, b, 80, &aq, &bq); /* b accepted on port 80; its listener is closed */
    void *plain = sw_socket(b, SOCK_STREAM);
    void *reuse = sw_socket(b, SOCK_STREAM);
    set_reuseaddr(b, reuse);
    /* The accepted socket did not set SO_REUSEADDR: it keeps the port. */
    CHECK_EQ(bind_port(b, plain, 80), EADDRINUSE);
    CHECK_EQ(bind_port(b, reuse, 80), EADDRINUSE);
    /* b closes first, so its side ends in TIME_WAIT, holding the port. */
    sw_close(b, bq);
    sw_run_for(&w, 10 * MSEC);
    sw_close(a, aq);
    sw_run_for(&w, 10 * MSEC);
    CHECK_EQ(state_of(b), TCPS_TIME_WAIT);
    CHECK_EQ(bind_port(b, plain, 80), EADDRINUSE);
    CHECK_EQ(bind_port(b, reuse, 80), 0);
    sw_listen(b, reuse, 16);
    /* A listener keeps the port even from sockets that set SO_REUSEADDR. */
    void *second = sw_socket(b, SOCK_STREAM);
    set_reuseaddr(b, second);
    CHECK_EQ(bind_port(b, second, 80), EADDRINUSE);
    /* The new listener takes connections while TIME_WAIT lasts. */
    struct sched_task *acc = sw_accept(b, reuse);
    void *cq = sw_socket(a, SOCK_STREAM);
    demi_qresult_t qr = sw_wait(&w, a, sw_connect(a, cq, b, 80), 5 * SEC);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_CONNECT);
    qr = sw_wait(&w, b, acc, 5 * SEC);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_ACCEPT);
    sw_close(b, sw_accepted(b, &qr));
    sw_close(a, cq);
    sw_close(b, second);
    sw_close(b, reuse);
    sw_close(b, plain);
    drain_results(a);
    drain_results(b);
    end_world();
    printf("SO_REUSEADDR rebinds a port held by TIME_WAIT only: ok\n");
}

/* What LINGER=0 in the configuration gives the stack. */
static void linger_zero(struct inet_config *ic)
{
    struct config c;
    config_defaults(&c);
    c.linger = true;
    c.linger_secs = 0;
    struct inet_config from;
    inetos_config(&from, &c);
    CHECK_EQ(from.tcp_linger, 0);
    config_defaults(&c);
    inetos_config(&from, &c);
    CHECK_EQ(from.tcp_linger, -1); /* off by default */
    short_msl(ic);
    ic->tcp_linger = 0;
}

static void linger_config(void)
{
    sw_init(&w, 708, NULL);
    a = sw_node(&w, linger_zero);
    b = sw_node(&w, short_msl);
    sw_link(&w, a, &(struct sim_link){.delay_ns = 100 * USEC});
    sw_link(&w, b, &(struct sim_link){.delay_ns = 100 * USEC});
    void *uq = sw_socket(a, SOCK_DGRAM);
    struct linger lg = {1, 99};
    socklen_t len = sizeof(lg);
    CHECK_EQ(inet_getsockopt(a->in, uq, SOL_SOCKET, SO_LINGER, &lg, &len), 0);
    CHECK_EQ(lg.l_onoff, 0);
    sw_close(a, uq);
    /* b connects to a: a's side is an accepted socket, its listener's
     * options inherited. */
    void *aq, *bq;
    sw_pair(&w, b, a, 80, &bq, &aq);
    len = sizeof(lg);
    CHECK_EQ(inet_getsockopt(a->in, aq, SOL_SOCKET, SO_LINGER, &lg, &len), 0);
    CHECK(lg.l_onoff == 1 && lg.l_linger == 0);
    struct sched_task *bpop = sw_pop(b, bq);
    sw_close(a, aq);
    CHECK_EQ(a->in->nconns, 0); /* aborted: no FIN_WAIT, no TIME_WAIT */
    demi_qresult_t qr = sw_wait(&w, b, bpop, 5 * SEC);
    CHECK_EQ(qr.qr_ret, ECONNRESET);
    sw_close(b, bq);
    drain_results(a);
    drain_results(b);
    end_world();
    printf("linger from the configuration: ok\n");
}

int main(void)
{
    active_close();
    simultaneous_close();
    time_wait_refin();
    reset_paths();
    orphan_fin_wait_2();
    listener_close();
    reuseaddr_rebind();
    linger_config();
    printf("close: ok\n");
    return 0;
}
