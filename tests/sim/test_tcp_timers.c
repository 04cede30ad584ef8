/*
 * TCP's timers on dev/sim:
 *  - RTO backoff (RFC 6298 5.5): with the path black-holed, a tail loss
 *    probe and then retransmissions at doubling intervals; when the path
 *    heals the data gets through;
 *  - tail loss probes (RFC 8985 7): the last segment of a burst lost, or
 *    the last three, is repaired by the probe and what its SACK shows, with
 *    no timeout, within 60 ms; with probes off, by the RTO 200 ms later;
 *  - zero window and persist: a receiver that does not read closes its
 *    window; the sender probes (with backoff) instead of giving up, and
 *    everything arrives once the receiver reads;
 *  - window scaling: more than 64 KiB in flight on a long path, and never
 *    more than 64 KiB when one side does not scale;
 *  - keep-alive: a dead peer is detected after idle + count * interval and
 *    the pending pop fails with ETIMEDOUT;
 *  - delayed ACKs when configured (RFC 1122): fewer pure ACKs.
 */
#include "flow.h"
#include "inet/inet_int.h"

#include <netinet/tcp.h>

static struct {
    struct simnode *from;
    bool blackhole;
    uint64_t *now;
    uint64_t times[32];
    int n;
} bh;

static int tap(void *arg, struct netdev *from, const uint8_t *f, uint32_t len)
{
    (void)arg;
    struct sw_seg s;
    if (!bh.blackhole || from != bh.from->dev || !sw_parse(f, len, &s) || !s.tcp)
        return 0;
    if (s.dlen && bh.n < 32)
        bh.times[bh.n++] = *bh.now;
    return 1;
}

static bool flow_pred(void *arg)
{
    return flow_step(arg);
}

static void rto_backoff(void)
{
    struct simworld w;
    sw_init(&w, 600, NULL);
    struct simnode *a = sw_node(&w, NULL), *b = sw_node(&w, NULL);
    void *aq, *bq;
    sw_pair(&w, a, b, 80, &aq, &bq);
    memset(&bh, 0, sizeof(bh));
    bh.from = a;
    bh.now = &w.now;
    bh.blackhole = true;
    simnet_set_tap(w.net, tap, NULL);
    struct flow f;
    flow_init(&f, a, aq, b, bq, 10000, 1);
    sw_run(&w, flow_pred, &f, 30 * SEC);
    CHECK(!f.done);
    CHECK(bh.n >= 6);
    /* The first burst is the original send; then the tail loss probe,
     * 10 ms later (RFC 8985 7.2: 2 SRTT, at least rto_min / 20); then one
     * retransmission per expiry, the first 200 ms (the minimum RTO) after
     * the probe, each interval twice the last. */
    int first_rxt = 1;
    while (first_rxt < bh.n && bh.times[first_rxt] == bh.times[0])
        first_rxt++;
    uint64_t pto = bh.times[first_rxt] - bh.times[0];
    CHECK(pto >= 10 * MSEC && pto < 12 * MSEC);
    CHECK_EQ(sw_tcp_stats(a, aq).tlp_probes, 1);
    first_rxt++;
    uint64_t gap = bh.times[first_rxt] - bh.times[first_rxt - 1];
    CHECK(gap >= 200 * MSEC && gap < 400 * MSEC);
    for (int i = first_rxt + 1; i < bh.n; i++) {
        uint64_t g = bh.times[i] - bh.times[i - 1];
        CHECK(g >= 2 * gap - MSEC && g <= 2 * gap + MSEC);
        gap = g;
    }
    struct tcp_conn_stats st = sw_tcp_stats(a, aq);
    CHECK((int)st.rto_expiries >= bh.n - first_rxt);
    printf("RTO backoff: %d retransmissions, last gap %.1f s\n", bh.n - first_rxt, (double)gap / 1e9);
    /* Heal the path: the next retransmission gets through. */
    bh.blackhole = false;
    CHECK_EQ(sw_run(&w, flow_pred, &f, 120 * SEC), 0);
    simnet_set_tap(w.net, NULL, NULL);
    sw_close(a, aq);
    sw_close(b, bq);
    sw_fini(&w);
}

static void small_rcvbuf(struct inet_config *ic)
{
    ic->tcp_rcvbuf = 32 * 1024;
}

static void zero_window(void)
{
    struct simworld w;
    sw_init(&w, 601, NULL);
    struct simnode *a = sw_node(&w, NULL), *b = sw_node(&w, small_rcvbuf);
    sw_link(&w, a, &(struct sim_link){.delay_ns = 100 * USEC});
    sw_link(&w, b, &(struct sim_link){.delay_ns = 100 * USEC});
    void *aq, *bq;
    sw_pair(&w, a, b, 80, &aq, &bq);
    /* Push 1 MiB; b does not read for 60 s. */
    struct flow f;
    flow_init(&f, a, aq, b, bq, 1u << 20, 2);
    f.rx = NULL;
    for (int i = 0; i < 20; i++) {
        demi_sgarray_t m = sw_sga(a, 50000, 2, (size_t)i * 50000);
        sw_push(a, aq, &m);
        sw_free(a, &m);
    }
    sw_run_for(&w, 60 * SEC);
    struct tcp_conn_stats sa = sw_tcp_stats(a, aq);
    struct tcp_conn_stats sb = sw_tcp_stats(b, bq);
    CHECK_EQ(sb.rcv_wnd, 0);
    CHECK_EQ(sa.snd_wnd, 0);
    CHECK(sa.zero_window_probes >= 3);
    CHECK(sa.zero_window_probes < 20); /* backed off, not every RTO */
    CHECK_EQ(sa.state, TCPS_ESTABLISHED);
    CHECK(sa.bytes_acked <= 32 * 1024);
    printf("zero window: %llu probes in 60 s, %llu bytes acked\n", (unsigned long long)sa.zero_window_probes,
           (unsigned long long)sa.bytes_acked);
    /* b reads: the window opens and all 1,000,000 bytes arrive in order. */
    size_t got = 0;
    while (got < 1000000) {
        demi_qresult_t qr = sw_wait(&w, b, sw_pop(b, bq), 120 * SEC);
        CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
        CHECK(sw_check(&qr.qr_value.sga, 2, got));
        for (uint32_t s = 0; s < qr.qr_value.sga.sga_numsegs; s++)
            got += qr.qr_value.sga.sga_segs[s].sgaseg_len;
        sw_free(b, &qr.qr_value.sga);
    }
    CHECK_EQ(got, 1000000);
    sw_run_for(&w, SEC);
    demi_qresult_t rs;
    while (a->rt->sched.done.head) {
        sched_harvest(&a->rt->sched, a->rt->sched.done.head, &rs);
        CHECK_EQ(rs.qr_opcode, DEMI_OPC_PUSH);
    }
    sw_close(a, aq);
    sw_close(b, bq);
    sw_fini(&w);
}

static bool scale_on;
static void scale_tweak(struct inet_config *ic)
{
    ic->tcp_wscale = scale_on;
}

static void window_scaling(void)
{
    for (int on = 1; on >= 0; on--) {
        scale_on = on;
        struct simworld w;
        sw_init(&w, 602, NULL);
        struct simnode *a = sw_node(&w, NULL), *b = sw_node(&w, scale_tweak);
        /* 10 ms each way, 1 Gbit/s: a bandwidth-delay product of 2.5 MB. */
        struct sim_link lk = {.delay_ns = 10 * MSEC, .rate_bps = 1000000000ull};
        sw_link(&w, a, &lk);
        sw_link(&w, b, &lk);
        void *aq, *bq;
        sw_pair(&w, a, b, 80, &aq, &bq);
        struct flow f;
        flow_init(&f, a, aq, b, bq, 16u << 20, 3);
        uint64_t t0 = w.now;
        CHECK_EQ(sw_run(&w, flow_pred, &f, 600 * SEC), 0);
        struct tcp_conn_stats st = sw_tcp_stats(a, aq);
        double mbps = 16.0 * 8 * 1048576 / ((double)(w.now - t0) / 1e9) / 1e6;
        printf("window scaling %s: max in flight %u bytes, %.0f Mbit/s\n", on ? "on " : "off", st.max_inflight, mbps);
        if (on) {
            CHECK(st.wscale_ok);
            CHECK(st.max_inflight > 1000000);
        } else {
            CHECK(!st.wscale_ok);
            CHECK(st.max_inflight <= 65535);
        }
        sw_close(a, aq);
        sw_close(b, bq);
        sw_fini(&w);
    }
}

static void keepalive(void)
{
    struct simworld w;
    sw_init(&w, 603, NULL);
    struct simnode *a = sw_node(&w, NULL), *b = sw_node(&w, NULL);
    void *aq, *bq;
    sw_pair(&w, a, b, 80, &aq, &bq);
    int one = 1, idle = 10, intvl = 2, cnt = 3;
    CHECK_EQ(inet_setsockopt(a->in, aq, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)), 0);
    CHECK_EQ(inet_setsockopt(a->in, aq, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle)), 0);
    CHECK_EQ(inet_setsockopt(a->in, aq, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl)), 0);
    CHECK_EQ(inet_setsockopt(a->in, aq, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt)), 0);
    struct sched_task *pop = sw_pop(a, aq);
    /* A live peer answers the probes: nothing happens for a minute. */
    sw_run_for(&w, 60 * SEC);
    CHECK(!sw_done(pop));
    CHECK(sw_tcp_stats(a, aq).keepalive_probes >= 4);
    /* b dies silently: its frames vanish. */
    memset(&bh, 0, sizeof(bh));
    bh.from = b;
    bh.now = &w.now;
    bh.blackhole = true;
    simnet_set_tap(w.net, tap, NULL);
    uint64_t t0 = w.now;
    demi_qresult_t qr = sw_wait(&w, a, pop, 120 * SEC);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_FAILED);
    CHECK_EQ(qr.qr_ret, ETIMEDOUT);
    double took = (double)(w.now - t0) / 1e9;
    CHECK(took <= 10 + 3 * 2 + 2.5);
    printf("keep-alive: dead peer detected after %.1f s\n", took);
    simnet_set_tap(w.net, NULL, NULL);
    sw_close(a, aq);
    sw_close(b, bq);
    sw_fini(&w);
}

static void delack(struct inet_config *ic)
{
    ic->tcp_delack_ns = 40 * MSEC;
}

static uint64_t pure_acks;
static int count_acks(void *arg, struct netdev *from, const uint8_t *f, uint32_t len)
{
    struct sw_seg s;
    if (from == ((struct simnode *)arg)->dev && sw_parse(f, len, &s) && s.tcp && s.dlen == 0 && s.flags == TH_ACK)
        pure_acks++;
    return 0;
}

static void delayed_acks(void)
{
    uint64_t counts[2];
    for (int d = 0; d < 2; d++) {
        struct simworld w;
        sw_init(&w, 604, NULL);
        struct simnode *a = sw_node(&w, NULL), *b = sw_node(&w, d ? delack : NULL);
        sw_link(&w, a, &(struct sim_link){.delay_ns = 100 * USEC, .rate_bps = 10000000000ull});
        void *aq, *bq;
        sw_pair(&w, a, b, 80, &aq, &bq);
        pure_acks = 0;
        simnet_set_tap(w.net, count_acks, b);
        struct flow f;
        flow_init(&f, a, aq, b, bq, 8u << 20, 4);
        CHECK_EQ(sw_run(&w, flow_pred, &f, 600 * SEC), 0);
        counts[d] = pure_acks;
        simnet_set_tap(w.net, NULL, NULL);
        sw_close(a, aq);
        sw_close(b, bq);
        sw_fini(&w);
    }
    printf("pure ACKs for 8 MiB: %llu acknowledging at the end of each pass, %llu with 40 ms delayed ACKs\n",
           (unsigned long long)counts[0], (unsigned long long)counts[1]);
    CHECK(counts[1] < counts[0]);
    /* RFC 1122 4.2.3.2: one ACK per two full-sized segments. */
    uint64_t segs = 8u * 1048576 / 1448;
    CHECK(counts[1] >= segs * 4 / 10 && counts[1] <= segs * 6 / 10);
}

/* Drops the data segments from byte offset @tail.from on, once each. */
static struct {
    uint32_t iss, mss, from, nseg;
    bool have_iss;
    int dropped;
} tail;

static int tail_tap(void *arg, struct netdev *from, const uint8_t *f, uint32_t len)
{
    struct simnode *a = arg;
    struct sw_seg s;
    if (from != a->dev || !sw_parse(f, len, &s) || !s.tcp)
        return 0;
    if (s.flags & TH_SYN) {
        tail.iss = s.seq;
        tail.have_iss = true;
        return 0;
    }
    if (!s.dlen || !tail.have_iss)
        return 0;
    if (s.seq - tail.iss - 1 >= tail.from && tail.dropped < (int)tail.nseg) {
        tail.dropped++;
        return 1;
    }
    return 0;
}

static bool tlp_on;
static void tlp_tweak(struct inet_config *ic)
{
    ic->tcp_tlp = tlp_on;
}

static struct tcp_conn_stats tail_loss(bool tlp, uint32_t nlost, uint64_t *virt_ns)
{
    tlp_on = tlp;
    memset(&tail, 0, sizeof(tail));
    struct simworld w;
    sw_init(&w, 605, NULL);
    struct simnode *a = sw_node(&w, tlp_tweak), *b = sw_node(&w, tlp_tweak);
    sw_link(&w, a, &(struct sim_link){.delay_ns = 50 * USEC});
    sw_link(&w, b, &(struct sim_link){.delay_ns = 50 * USEC});
    tail.from = UINT32_MAX;
    simnet_set_tap(w.net, tail_tap, a); /* sees the SYN: sequence offsets from here */
    void *aq, *bq;
    sw_pair(&w, a, b, 80, &aq, &bq);
    /* Warm up: a few round trips give an SRTT, so the PTO is 2 SRTT's floor. */
    struct flow f;
    flow_init(&f, a, aq, b, bq, 4096, 11);
    CHECK_EQ(sw_run(&w, flow_pred, &f, 10 * SEC), 0);
    /* Ten segments in one push; the last @nlost are lost. */
    tail.mss = sw_tcp_stats(a, aq).mss - 12;
    tail.from = 4096 + (10 - nlost) * tail.mss;
    tail.nseg = nlost;
    flow_init(&f, a, aq, b, bq, 10 * tail.mss, 12);
    struct tcp_conn_stats st0 = sw_tcp_stats(a, aq);
    uint64_t t0 = w.now;
    CHECK_EQ(sw_run(&w, flow_pred, &f, 10 * SEC), 0);
    *virt_ns = w.now - t0;
    CHECK_EQ(tail.dropped, (int)nlost);
    struct tcp_conn_stats st = sw_tcp_stats(a, aq);
    st.rto_expiries -= st0.rto_expiries;
    st.tlp_probes -= st0.tlp_probes;
    st.retrans_segs -= st0.retrans_segs;
    simnet_set_tap(w.net, NULL, NULL);
    sw_close(a, aq);
    sw_close(b, bq);
    sw_fini(&w);
    return st;
}

static void tail_loss_probe(void)
{
    uint64_t t;
    for (uint32_t nlost = 1; nlost <= 3; nlost++) {
        struct tcp_conn_stats s = tail_loss(true, nlost, &t);
        printf("tail loss of %u, probes on: %llu probe(s), %llu timeouts, %llu retransmitted, %.1f ms\n", nlost,
               (unsigned long long)s.tlp_probes, (unsigned long long)s.rto_expiries, (unsigned long long)s.retrans_segs,
               (double)t / 1e6);
        CHECK_EQ(s.tlp_probes, 1);
        CHECK_EQ(s.rto_expiries, 0);
        CHECK(t < 60 * MSEC); /* a probe within 2 SRTT + 40 ms (one segment left) */
        s = tail_loss(false, nlost, &t);
        printf("tail loss of %u, probes off: %llu timeouts, %.1f ms\n", nlost, (unsigned long long)s.rto_expiries,
               (double)t / 1e6);
        CHECK_EQ(s.tlp_probes, 0);
        CHECK(s.rto_expiries >= 1);
        CHECK(t >= 200 * MSEC);
    }
}

int main(void)
{
    rto_backoff();
    tail_loss_probe();
    zero_window();
    window_scaling();
    keepalive();
    delayed_acks();
    printf("timers: ok\n");
    return 0;
}
