/*
 * Crafted TCP segments, in the lwIP manner: one real stack (node B,
 * 10.0.0.1, listening on port 80) and a fake peer X (10.0.0.50, MAC
 * 02:00:00:00:00:99) that exists only as frames this test builds and
 * injects into B's receive ring. B knows X's MAC from a static ARP entry,
 * so its answers go straight out; a tap records them and the test checks
 * each one field by field, plus the stack's counters.
 *
 * Covered: the handshake with every subset of MSS, SACK-permitted,
 * timestamps and window scale (SYN-ACK options present exactly when
 * offered), a retransmitted SYN, RST in SYN_RCVD; in-order data popped
 * byte-exact and acknowledged, sequence numbers wrapping past 2^32; data
 * from B acknowledged by X; out-of-window data (beyond the window, and old
 * duplicates); RFC 5961 challenge ACKs for an inexact RST, a SYN and an
 * ACK of data never sent, and their rate limit; PAWS; bad checksums;
 * truncated headers and bad data offsets; bogus option lengths; RSTs for
 * closed ports (RFC 9293 3.10.7.1); an exact RST failing a pending pop
 * with ECONNRESET; out-of-order data answered by SACK blocks, then filled;
 * a window probe; a hole-filling retransmission whose ACK shrinks the
 * window (B sends nothing beyond the new right edge); SACKed duplicate
 * ACKs with a changing window (fast retransmit, no RTO); a FIN from X ending
 * pops with an empty array; the IPv4
 * and Ethernet checks below TCP. Finally a deterministic fuzz of random
 * and mutated frames, after which B must still accept connections and
 * move data byte-exact, and give every heap block back.
 *
 * Each case runs in a child process on a fresh simulated network and a
 * fresh B, so one failure cannot spoil the next; the cases that need
 * established connections open C1 and C2 and move data on them first.
 * `test_tcp_crafted --list` names the cases; `test_tcp_crafted CASE...`
 * (or DEMI_TEST_CASE=CASE) runs only those.
 */
#include "craft.h"
#include "flow.h"
#include "inet/inet_int.h"
#include "tcases.h"


#define B_PORT      80
#define FUZZ_PORT   82
#define CLOSED_PORT 81
#define X_WIN       1024 /* X's advertised window, before scaling */
#define X_WSCALE    7

enum { O_MSS = 1, O_SACK = 2, O_TS = 4, O_WS = 8, O_ALL = 15 };

static struct simworld w;
static struct simnode *B;
static struct capture cap;
static struct craft_host X = {{0x02, 0, 0, 0, 0, 0x99}, 0};
static struct inet_arp x_arp;
static uint8_t fbuf[CRAFT_FRAME_MAX];
static struct inet_stats s0;   /* counters at the start of a check */
static uint16_t x_win = X_WIN; /* the window X advertises (test_window_shrink changes it) */

static void tweak(struct inet_config *ic)
{
    ic->arp_static[0] = x_arp;
    ic->n_arp_static = 1;
}

static const struct inet_stats *st(void)
{
    return inet_stats(B->in);
}

#define DELTA(field) (st()->field - s0.field)

static void snap(void)
{
    s0 = *st();
}

/* Polls every node until nothing moves, without advancing time. */
static void settle(void)
{
    sw_run(&w, NULL, NULL, 0);
}

/* Puts a frame into B's ring and lets B answer; the capture then holds
 * exactly B's answers. */
static void inject(const uint8_t *f, uint32_t len)
{
    cap_clear(&cap);
    CHECK_EQ(simnet_inject(w.net, B->dev, f, len), 0);
    settle();
}

static void expect_silence(void)
{
    if (cap.n != 0) {
        struct tcp_view v;
        if (craft_tcp_view(cap.frame[0], cap.len[0], &v))
            fprintf(stderr, "unexpected: TCP %u -> %u flags %#x seq %u ack %u\n", v.sport, v.dport, v.flags, v.seq,
                    v.ack);
    }
    CHECK_EQ(cap.n, 0);
}

/* Frame @i of the capture: a TCP segment from B to X, addressed right. */
static struct tcp_view tcp_at(int i)
{
    struct tcp_view v;
    CHECK(i < cap.n);
    CHECK(craft_tcp_view(cap.frame[i], cap.len[i], &v));
    CHECK(memcmp(v.ip.eth_dst, X.mac, 6) == 0);
    CHECK(memcmp(v.ip.eth_src, B->mac, 6) == 0);
    CHECK_EQ(v.ip.src, B->ip.s_addr);
    CHECK_EQ(v.ip.dst, X.ip);
    CHECK_EQ(v.ip.ttl, 64);
    CHECK_EQ(v.ip.frag, IP_DF);
    return v;
}

/* The one frame B sent. */
static struct tcp_view only_tcp(void)
{
    CHECK_EQ(cap.n, 1);
    return tcp_at(0);
}

/* The first captured TCP segment to X's port @xport, if any (other
 * traffic, such as retransmissions of other connections, is skipped). */
static bool find_tcp(uint16_t xport, struct tcp_view *out)
{
    for (int i = 0; i < cap.n; i++) {
        struct tcp_view v;
        if (craft_tcp_view(cap.frame[i], cap.len[i], &v) && v.dport == xport && v.ip.dst == X.ip) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* ---- X's side of a connection ---- */

struct xconn {
    uint16_t port, bport;
    unsigned opts;
    uint32_t iss, snd_nxt; /* X's sequence space */
    uint32_t b_iss, rcv_nxt;
    uint32_t tsval, ts_recent; /* X's clock; B's last timestamp */
    uint32_t echo;             /* X's timestamp that B should echo */
    uint64_t popped, b_sent;
    void *q;
    struct sched_task *pop;
};

/* Byte @seq of X's stream on @c: a pattern by stream offset. */
static uint8_t x_byte(const struct xconn *c, uint32_t seq)
{
    return sw_byte(c->port, seq - c->iss - 1);
}

/* A segment from X on @c, with X's timestamp if negotiated and @extra
 * options after it; @n payload bytes of X's stream from @seq. */
static uint32_t x_build(struct xconn *c, uint8_t *buf, uint8_t flags, uint32_t seq, uint32_t ack, uint32_t n,
                        const struct tcp_optbuf *extra)
{
    static uint8_t data[CRAFT_FRAME_MAX];
    CHECK(n <= 1400);
    for (uint32_t i = 0; i < n; i++)
        data[i] = x_byte(c, seq + i);
    struct tcp_optbuf o = {.n = 0};
    if (c->opts & O_TS)
        opt_ts(&o, ++c->tsval, c->ts_recent);
    if (extra)
        opt_raw(&o, extra->b, extra->n);
    struct tcp_spec s = {.sport = c->port,
                         .dport = c->bport,
                         .seq = seq,
                         .ack = ack,
                         .flags = flags,
                         .win = x_win,
                         .opt = o.n ? &o : NULL,
                         .data = data,
                         .dlen = n};
    return craft_tcp(buf, &X, B->mac, B->ip.s_addr, &s);
}

static void x_send(struct xconn *c, uint8_t flags, uint32_t seq, uint32_t ack, uint32_t n,
                   const struct tcp_optbuf *extra)
{
    inject(fbuf, x_build(c, fbuf, flags, seq, ack, n, extra));
}

/* A segment from B on @c: B's timestamp becomes what X echoes. */
static void b_seen(struct xconn *c, const struct tcp_view *v)
{
    if (v->has_ts)
        c->ts_recent = v->tsval;
}

/* B's one answer on @c: a pure ACK of @ack with B's next sequence number.
 * @took_ts: the segment just sent was accepted, so B now echoes its
 * timestamp (RFC 7323 4.3). */
static struct tcp_view expect_ack(struct xconn *c, uint32_t ack, bool took_ts)
{
    if (took_ts)
        c->echo = c->tsval;
    struct tcp_view v = only_tcp();
    CHECK_EQ(v.sport, c->bport);
    CHECK_EQ(v.dport, c->port);
    CHECK_EQ(v.flags, TH_ACK);
    CHECK_EQ(v.seq, c->rcv_nxt);
    CHECK_EQ(v.ack, ack);
    CHECK_EQ(v.dlen, 0);
    CHECK_EQ(v.has_ts, (c->opts & O_TS) != 0);
    if (v.has_ts)
        CHECK_EQ(v.tsecr, c->echo);
    b_seen(c, &v);
    return v;
}

static void x_init(struct xconn *c, uint16_t port, uint16_t bport, uint32_t iss, unsigned opts)
{
    memset(c, 0, sizeof(*c));
    c->port = port;
    c->bport = bport;
    c->opts = opts;
    c->iss = iss;
    c->snd_nxt = iss;
    c->tsval = 1000u * port;
}

/* X's SYN, offering the options of c->opts. */
static uint32_t x_syn_frame(struct xconn *c, uint8_t *buf)
{
    struct tcp_optbuf o = {.n = 0};
    if (c->opts & O_MSS)
        opt_mss(&o, 1200);
    if (c->opts & O_SACK)
        opt_sack_ok(&o);
    if (c->opts & O_TS)
        opt_ts(&o, c->tsval, 0);
    if (c->opts & O_WS)
        opt_ws(&o, X_WSCALE);
    struct tcp_spec s = {
        .sport = c->port, .dport = c->bport, .seq = c->iss, .flags = TH_SYN, .win = X_WIN, .opt = o.n ? &o : NULL};
    return craft_tcp(buf, &X, B->mac, B->ip.s_addr, &s);
}

/* B's SYN-ACK: its options present exactly when X offered them (the MSS
 * always: RFC 9293 3.7.1 lets a SYN carry it whatever the peer sent). */
static void check_synack(struct xconn *c, const struct tcp_view *v)
{
    CHECK_EQ(v->sport, c->bport);
    CHECK_EQ(v->dport, c->port);
    CHECK_EQ(v->flags, TH_SYN | TH_ACK);
    CHECK_EQ(v->ack, c->iss + 1);
    CHECK_EQ(v->dlen, 0);
    CHECK_EQ(v->win, 65535); /* never scaled in a SYN */
    CHECK(v->has_mss);
    CHECK_EQ(v->mss, 1460);
    CHECK_EQ(v->sack_ok, (c->opts & O_SACK) != 0);
    CHECK_EQ(v->has_ts, (c->opts & O_TS) != 0);
    if (v->has_ts)
        CHECK_EQ(v->tsecr, c->tsval);
    CHECK_EQ(v->has_ws, (c->opts & O_WS) != 0);
    if (v->has_ws)
        CHECK_EQ(v->ws, 7); /* a 4 MiB window needs a shift of 7 */
    CHECK_EQ(v->nsack, 0);
    CHECK_EQ(v->nopts, 1 + !!(c->opts & O_SACK) + !!(c->opts & O_TS) + !!(c->opts & O_WS));
    c->b_iss = v->seq;
    c->rcv_nxt = v->seq + 1;
    c->snd_nxt = c->iss + 1;
    c->echo = c->tsval;
    b_seen(c, v);
}

/* B's ACKs tell X the right edge of B's window. */
static uint32_t b_right(const struct xconn *c, const struct tcp_view *v)
{
    return v->ack + ((uint32_t)v->win << ((c->opts & O_WS) ? 7 : 0));
}

/* The handshake from X; @acc (B's pending accept) completes with it.
 * @strict: B sends nothing else meanwhile. */
static void x_open(struct xconn *c, struct sched_task *acc, bool strict)
{
    inject(fbuf, x_syn_frame(c, fbuf));
    struct tcp_view v;
    if (strict)
        v = only_tcp();
    else
        CHECK(find_tcp(c->port, &v));
    check_synack(c, &v);
    CHECK(!sw_done(acc));
    x_send(c, TH_ACK, c->snd_nxt, c->rcv_nxt, 0, NULL);
    c->echo = c->tsval;
    if (strict)
        expect_silence();
    CHECK(sw_done(acc));
    demi_qresult_t qr = sw_result(B, acc);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_ACCEPT);
    CHECK_EQ(qr.qr_value.ares.addr.sin_addr.s_addr, X.ip);
    CHECK_EQ(ntohs(qr.qr_value.ares.addr.sin_port), c->port);
    c->q = sw_accepted(B, &qr);
    c->pop = sw_pop(B, c->q);
    CHECK(!sw_done(c->pop));
}

/* The pending pop (and more if needed) yields the next @n bytes of X's
 * stream, byte-exact; a new pop is left pending, with nothing to take. */
static void expect_pop(struct xconn *c, uint64_t n)
{
    uint64_t got = 0;
    while (got < n) {
        if (!sw_done(c->pop))
            settle();
        CHECK(sw_done(c->pop));
        demi_qresult_t qr = sw_result(B, c->pop);
        CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
        CHECK(qr.qr_value.sga.sga_numsegs > 0);
        for (uint32_t s = 0; s < qr.qr_value.sga.sga_numsegs; s++) {
            const uint8_t *p = qr.qr_value.sga.sga_segs[s].sgaseg_buf;
            for (uint32_t k = 0; k < qr.qr_value.sga.sga_segs[s].sgaseg_len; k++) {
                CHECK_EQ(p[k], x_byte(c, c->iss + 1 + (uint32_t)c->popped));
                c->popped++;
                got++;
            }
        }
        sw_free(B, &qr.qr_value.sga);
        c->pop = sw_pop(B, c->q);
    }
    CHECK_EQ(got, n);
    CHECK(!sw_done(c->pop));
    /* Popping sends nothing by itself (the window was not closed). */
    cap_clear(&cap);
    settle();
    expect_silence();
}

/* @n bytes in order from X (acknowledging @ack), acknowledged and popped. */
static void x_data_ack(struct xconn *c, uint32_t n, uint32_t ack)
{
    x_send(c, TH_ACK | TH_PSH, c->snd_nxt, ack, n, NULL);
    c->snd_nxt += n;
    expect_ack(c, c->snd_nxt, true);
    expect_pop(c, n);
}

static void x_data(struct xconn *c, uint32_t n)
{
    x_data_ack(c, n, c->rcv_nxt);
}

/* B pushes @n bytes; X checks every segment and acknowledges them. */
static void b_push(struct xconn *c, uint32_t n, uint16_t mss)
{
    uint64_t seed = c->port + 1000u;
    demi_sgarray_t s = sw_sga(B, n, seed, c->b_sent);
    cap_clear(&cap);
    struct sched_task *t = sw_push(B, c->q, &s);
    sw_free(B, &s);
    settle();
    uint32_t got = 0;
    for (int round = 0; round < 32 && got < n; round++) {
        CHECK(cap.n > 0);
        for (int i = 0; i < cap.n; i++) {
            struct tcp_view v = tcp_at(i);
            CHECK_EQ(v.sport, c->bport);
            CHECK_EQ(v.dport, c->port);
            CHECK_EQ(v.flags & ~TH_PSH, TH_ACK);
            CHECK_EQ(v.seq, c->rcv_nxt);
            CHECK_EQ(v.ack, c->snd_nxt);
            CHECK(v.dlen > 0);
            CHECK(v.dlen + v.hlen - 20 <= mss); /* options take room from the payload */
            for (uint32_t k = 0; k < v.dlen; k++)
                CHECK_EQ(v.data[k], sw_byte(seed, c->b_sent + got + k));
            got += v.dlen;
            c->rcv_nxt += v.dlen;
            if (got == n)
                CHECK(v.flags & TH_PSH);
            b_seen(c, &v);
        }
        x_send(c, TH_ACK, c->snd_nxt, c->rcv_nxt, 0, NULL);
        c->echo = c->tsval;
    }
    CHECK_EQ(got, n);
    expect_silence();
    c->b_sent += n;
    CHECK(sw_done(t));
    demi_qresult_t qr = sw_result(B, t);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_PUSH);
}

static uint8_t conn_state(const struct xconn *c)
{
    return sw_tcp_stats(B, c->q).state;
}

/* ---- the tests ---- */

static void test_handshake_options(void)
{
    uint32_t n0 = B->in->nconns;
    snap();
    for (unsigned opts = 0; opts <= O_ALL; opts++) {
        struct xconn c;
        x_init(&c, (uint16_t)(30000 + opts), B_PORT, 0x10000000u * opts + 12345, opts);
        uint32_t len = x_syn_frame(&c, fbuf);
        uint8_t syn[CRAFT_FRAME_MAX];
        memcpy(syn, fbuf, len);
        inject(syn, len);
        struct tcp_view v = only_tcp();
        check_synack(&c, &v);
        uint32_t b_iss = v.seq;
        CHECK_EQ(B->in->nconns, n0 + 1);
        /* The SYN again, as if the SYN-ACK had been lost: the same SYN-ACK
         * again, at once. */
        inject(syn, len);
        v = only_tcp();
        check_synack(&c, &v);
        CHECK_EQ(v.seq, b_iss);
        /* An exact RST sends the half-open connection away, silently. */
        x_send(&c, TH_RST, c.iss + 1, 0, 0, NULL);
        expect_silence();
        CHECK_EQ(B->in->nconns, n0);
    }
    CHECK_EQ(DELTA(tcp_syn_dropped), 0);
    CHECK_EQ(DELTA(tcp_conns_opened), 0);
    printf("handshake: SYN-ACK options follow the SYN's, 16 combinations\n");
}

/* C1: every option, X's sequence numbers about to wrap past 2^32. */
static void test_open_c1(struct xconn *c, void *ls)
{
    x_init(c, 40001, B_PORT, 0xfffffff0u, O_ALL);
    x_open(c, sw_accept(B, ls), true);
    struct tcp_conn_stats cs = sw_tcp_stats(B, c->q);
    CHECK_EQ(cs.state, TCPS_ESTABLISHED);
    CHECK_EQ(cs.mss, 1200);
    CHECK(cs.sack_ok && cs.ts_ok && cs.wscale_ok);
    CHECK_EQ(cs.snd_wscale, X_WSCALE);
    CHECK_EQ(cs.rcv_wscale, 7);
    CHECK_EQ(cs.snd_wnd, X_WIN << X_WSCALE);
}

/* C2: no options at all. */
static void test_open_c2(struct xconn *c, void *ls)
{
    x_init(c, 40002, B_PORT, 5000, 0);
    x_open(c, sw_accept(B, ls), true);
    struct tcp_conn_stats cs = sw_tcp_stats(B, c->q);
    CHECK_EQ(cs.state, TCPS_ESTABLISHED);
    CHECK_EQ(cs.mss, 536); /* no MSS option: RFC 9293 3.7.1's default */
    CHECK(!cs.sack_ok && !cs.ts_ok && !cs.wscale_ok);
    CHECK_EQ(cs.snd_wnd, X_WIN);
}

static void test_data(struct xconn *c1, struct xconn *c2)
{
    snap();
    x_data(c1, 100); /* crosses sequence number 2^32 */
    x_data(c1, 1400);
    x_data(c2, 10);
    b_push(c1, 3000, 1200);
    b_push(c2, 1500, 536); /* X's window (1024 B) makes B wait for ACKs */
    x_data(c2, 7);
    CHECK_EQ(sw_tcp_stats(B, c1->q).bytes_received, 1500);
    CHECK_EQ(DELTA(tcp_rx_out_of_window), 0);
    printf("data: in order both ways, byte-exact\n");
}

static void test_out_of_window(struct xconn *c)
{
    snap();
    uint64_t rcvd = sw_tcp_stats(B, c->q).bytes_received;
    uint64_t dups = sw_tcp_stats(B, c->q).dup_segs_in;
    /* Learn B's right edge from a fresh ACK (a window probe). */
    x_send(c, TH_ACK, c->snd_nxt - 1, c->rcv_nxt, 0, NULL);
    struct tcp_view v = expect_ack(c, c->snd_nxt, false);
    uint32_t right = b_right(c, &v);
    CHECK_EQ(right - c->snd_nxt, 4u << 20);
    /* Beyond the window, and starting exactly at its right edge. */
    x_send(c, TH_ACK | TH_PSH, right + 1000, c->rcv_nxt, 100, NULL);
    expect_ack(c, c->snd_nxt, false);
    x_send(c, TH_ACK | TH_PSH, right, c->rcv_nxt, 100, NULL);
    expect_ack(c, c->snd_nxt, false);
    /* Entirely old: well before rcv_nxt, and ending exactly at it. */
    x_send(c, TH_ACK | TH_PSH, c->snd_nxt - 200, c->rcv_nxt, 100, NULL);
    expect_ack(c, c->snd_nxt, false);
    x_send(c, TH_ACK | TH_PSH, c->snd_nxt - 100, c->rcv_nxt, 100, NULL);
    expect_ack(c, c->snd_nxt, false);
    CHECK_EQ(DELTA(tcp_rx_out_of_window), 5); /* the probe included */
    CHECK(!sw_done(c->pop));
    CHECK_EQ(sw_tcp_stats(B, c->q).bytes_received, rcvd);
    CHECK_EQ(sw_tcp_stats(B, c->q).dup_segs_in, dups + 2);
    /* Partly old: the new part is taken. */
    x_send(c, TH_ACK | TH_PSH, c->snd_nxt - 30, c->rcv_nxt, 100, NULL);
    c->snd_nxt += 70;
    expect_ack(c, c->snd_nxt, true);
    expect_pop(c, 70);
    printf("out of window: beyond the edge and old duplicates answered by ACKs\n");
}

static void test_rst_syn_challenge(struct xconn *c)
{
    snap();
    /* RST in the window but not at rcv_nxt (RFC 5961 3.2). */
    x_send(c, TH_RST, c->snd_nxt + 1, 0, 0, NULL);
    expect_ack(c, c->snd_nxt, false);
    x_send(c, TH_RST | TH_ACK, c->snd_nxt + 5000, c->rcv_nxt, 0, NULL);
    expect_ack(c, c->snd_nxt, false);
    CHECK_EQ(DELTA(tcp_challenge_acks), 2);
    /* RST outside the window: dropped without a word. */
    x_send(c, TH_RST, c->snd_nxt - 1, 0, 0, NULL);
    expect_silence();
    x_send(c, TH_RST, c->snd_nxt + (8u << 20), 0, 0, NULL);
    expect_silence();
    /* SYN on an established connection, in the window (RFC 5961 4.2). */
    x_send(c, TH_SYN, c->snd_nxt, 0, 0, NULL);
    expect_ack(c, c->snd_nxt, false);
    x_send(c, TH_SYN | TH_ACK, c->snd_nxt + 10, c->rcv_nxt, 0, NULL);
    expect_ack(c, c->snd_nxt, false);
    CHECK_EQ(DELTA(tcp_challenge_acks), 4);
    CHECK_EQ(DELTA(tcp_rst_sent), 0);
    CHECK_EQ(conn_state(c), TCPS_ESTABLISHED);
    CHECK(!sw_done(c->pop));
    x_data(c, 50); /* alive and well */
    printf("challenge ACKs: inexact RST and SYN in window; the connection lives\n");
}

static void test_bad_ack(struct xconn *c)
{
    snap();
    uint64_t rcvd = sw_tcp_stats(B, c->q).bytes_received;
    /* ACKs of data B never sent, and of data from before its window (RFC
     * 5961 5.2): a challenge ACK, and the segment's data is dropped. */
    x_send(c, TH_ACK | TH_PSH, c->snd_nxt, c->rcv_nxt + 1, 10, NULL);
    expect_ack(c, c->snd_nxt, false);
    x_send(c, TH_ACK | TH_PSH, c->snd_nxt, c->rcv_nxt + 100000, 10, NULL);
    expect_ack(c, c->snd_nxt, false);
    x_send(c, TH_ACK | TH_PSH, c->snd_nxt, c->rcv_nxt - 200000, 10, NULL);
    expect_ack(c, c->snd_nxt, false);
    CHECK_EQ(DELTA(tcp_challenge_acks), 3);
    CHECK(!sw_done(c->pop));
    CHECK_EQ(sw_tcp_stats(B, c->q).bytes_received, rcvd);
    /* An old ACK still within the window of what was sent is fine. */
    x_data_ack(c, 10, c->rcv_nxt - 1000);
    CHECK_EQ(conn_state(c), TCPS_ESTABLISHED);
    printf("bad ACKs: challenged, data dropped\n");
}

static void test_paws(struct xconn *c)
{
    snap();
    uint32_t saved = c->tsval;
    c->tsval = c->echo - 10; /* older than the timestamp B holds */
    x_send(c, TH_ACK | TH_PSH, c->snd_nxt, c->rcv_nxt, 50, NULL);
    c->tsval = saved;
    expect_ack(c, c->snd_nxt, false);
    CHECK_EQ(DELTA(tcp_paws_drops), 1);
    CHECK(!sw_done(c->pop));
    x_data(c, 50);
    printf("PAWS: an old timestamp is dropped\n");
}

static void test_bad_csum_and_hdr(struct xconn *c)
{
    uint8_t *ip = fbuf + ETH_HDR_LEN;
    uint8_t *th = ip + 20;
    snap();
    uint32_t len = x_build(c, fbuf, TH_ACK | TH_PSH, c->snd_nxt, c->rcv_nxt, 50, NULL);
    th[16] ^= 0x5a;
    inject(fbuf, len);
    expect_silence();
    len = x_build(c, fbuf, TH_ACK | TH_PSH, c->snd_nxt, c->rcv_nxt, 50, NULL);
    fbuf[len - 1] ^= 1; /* a payload bit */
    inject(fbuf, len);
    expect_silence();
    /* The pseudo-header is covered: another source address (with a good
     * IP checksum) breaks the TCP checksum. */
    len = x_build(c, fbuf, TH_ACK | TH_PSH, c->snd_nxt, c->rcv_nxt, 50, NULL);
    ip[15] ^= 0x01;
    craft_fix_ip(fbuf);
    inject(fbuf, len);
    expect_silence();
    CHECK_EQ(DELTA(tcp_rx_bad_csum), 3);

    /* A data offset beyond the segment, below 5, and a segment shorter
     * than a TCP header (IP says 12 bytes; the rest is padding). */
    static const uint8_t offs[] = {15, 4, 0};
    for (unsigned i = 0; i < ARRAY_SIZE(offs); i++) {
        len = x_build(c, fbuf, TH_ACK | TH_PSH, c->snd_nxt, c->rcv_nxt, 10, NULL);
        th[12] = (uint8_t)(offs[i] << 4);
        craft_fix_l4(fbuf, len);
        inject(fbuf, len);
        expect_silence();
    }
    len = x_build(c, fbuf, TH_ACK, c->snd_nxt, c->rcv_nxt, 0, NULL);
    ip[2] = 0;
    ip[3] = 20 + 12;
    craft_fix_ip(fbuf);
    inject(fbuf, len);
    expect_silence();
    CHECK_EQ(DELTA(tcp_rx_bad_hdr), 4);
    CHECK_EQ(DELTA(tcp_rx_bad_csum), 3);
    CHECK(!sw_done(c->pop));
    x_data(c, 20);
    printf("bad checksums and headers: dropped, counted, unanswered\n");
}

static void test_bad_options(struct xconn *c)
{
    struct bad {
        uint8_t n;
        uint8_t b[16];
    };
    static const struct bad bads[] = {
        {2, {8, 0}},                                 /* length 0 */
        {2, {8, 1}},                                 /* length 1 */
        {6, {1, 1, 8, 10, 0, 0}},                    /* beyond the header */
        {2, {99, 40}},                               /* unknown kind, beyond the header */
        {4, {1, 1, 1, 7}},                           /* a kind in the last byte */
        {3, {2, 3, 5}},                              /* MSS, length 3 */
        {4, {3, 4, 7, 0}},                           /* window scale, length 4 */
        {3, {4, 3, 0}},                              /* SACK-permitted, length 3 */
        {2, {5, 2}},                                 /* SACK, no block */
        {11, {5, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0}},    /* SACK, 2 + 9 */
        {12, {5, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}}, /* SACK, 2 + 10 */
        {8, {8, 8, 0, 0, 0, 0, 0, 0}},               /* timestamps, length 8 */
        {12, {8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}}, /* timestamps, length 12 */
        {2, {99, 0}},                                /* unknown kind, length 0 */
    };
    snap();
    uint64_t rcvd = sw_tcp_stats(B, c->q).bytes_received;
    for (unsigned i = 0; i < ARRAY_SIZE(bads); i++) {
        struct tcp_optbuf o = {.n = 0};
        opt_raw(&o, bads[i].b, bads[i].n);
        x_send(c, TH_ACK | TH_PSH, c->snd_nxt, c->rcv_nxt, 10, &o);
        expect_silence();
    }
    CHECK_EQ(DELTA(tcp_rx_bad_opt), ARRAY_SIZE(bads));
    CHECK_EQ(DELTA(tcp_rx_bad_hdr) + DELTA(tcp_rx_bad_csum), 0);
    CHECK(!sw_done(c->pop));
    CHECK_EQ(sw_tcp_stats(B, c->q).bytes_received, rcvd);
    /* Good but unusual: an unknown kind skipped by its length, a stale SACK
     * block, then EOL and junk after it. */
    struct tcp_optbuf o = {.n = 0};
    opt_raw(&o, (const uint8_t[]){99, 4, 0xab, 0xcd}, 4);
    uint32_t edges[2] = {c->rcv_nxt - 100, c->rcv_nxt};
    opt_sack(&o, edges, 1);
    opt_raw(&o, (const uint8_t[]){0, 0xff, 0xee}, 3);
    x_send(c, TH_ACK | TH_PSH, c->snd_nxt, c->rcv_nxt, 10, &o);
    c->snd_nxt += 10;
    expect_ack(c, c->snd_nxt, true);
    expect_pop(c, 10);
    CHECK_EQ(DELTA(tcp_rx_bad_opt), ARRAY_SIZE(bads));
    printf("bogus options: %zu kinds dropped and counted\n", ARRAY_SIZE(bads));
}

/* A RST from B to X's port @xport, nothing else in it. */
static void expect_rst(uint16_t xport, uint16_t bport, uint8_t flags, uint32_t seq, uint32_t ack)
{
    struct tcp_view v = only_tcp();
    CHECK_EQ(v.sport, bport);
    CHECK_EQ(v.dport, xport);
    CHECK_EQ(v.flags, flags);
    CHECK_EQ(v.seq, seq);
    if (flags & TH_ACK)
        CHECK_EQ(v.ack, ack);
    CHECK_EQ(v.dlen, 0);
    CHECK_EQ(v.hlen, 20);
}

static void test_closed_port(void)
{
    struct xconn z;
    x_init(&z, 33333, CLOSED_PORT, 0, 0);
    snap();
    /* RFC 9293 3.10.7.1. ACK on: <SEQ=SEG.ACK><CTL=RST>. */
    x_send(&z, TH_ACK | TH_PSH, 5000, 7777, 20, NULL);
    expect_rst(33333, CLOSED_PORT, TH_RST, 7777, 0);
    /* ACK off: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>; SYN and FIN count. */
    x_send(&z, TH_SYN, 5000, 0, 0, NULL);
    expect_rst(33333, CLOSED_PORT, TH_RST | TH_ACK, 0, 5001);
    x_send(&z, TH_FIN | TH_PSH, 6000, 0, 20, NULL);
    expect_rst(33333, CLOSED_PORT, TH_RST | TH_ACK, 0, 6021);
    x_send(&z, 0, 7000, 0, 0, NULL);
    expect_rst(33333, CLOSED_PORT, TH_RST | TH_ACK, 0, 7000);
    x_send(&z, TH_SYN | TH_FIN, 0xffffffffu, 0, 5, NULL);
    expect_rst(33333, CLOSED_PORT, TH_RST | TH_ACK, 0, 6);
    /* A RST is never answered. */
    x_send(&z, TH_RST, 8000, 0, 0, NULL);
    expect_silence();
    x_send(&z, TH_RST | TH_ACK, 8000, 1234, 0, NULL);
    expect_silence();
    CHECK_EQ(DELTA(tcp_rx_no_conn), 7);
    CHECK_EQ(DELTA(tcp_rst_sent), 5);
    /* The listener's port with no such connection: an ACK is answered by a
     * RST from its acknowledgment number; a bare FIN is dropped. */
    struct xconn y;
    x_init(&y, 33334, B_PORT, 0, 0);
    x_send(&y, TH_ACK, 9000, 4242, 0, NULL);
    expect_rst(33334, B_PORT, TH_RST, 4242, 0);
    x_send(&y, TH_SYN | TH_ACK, 9000, 4343, 0, NULL);
    expect_rst(33334, B_PORT, TH_RST, 4343, 0);
    x_send(&y, TH_FIN, 9000, 0, 0, NULL);
    expect_silence();
    x_send(&y, TH_RST, 9000, 0, 0, NULL);
    expect_silence();
    CHECK_EQ(DELTA(tcp_rst_sent), 7);
    printf("closed port: RSTs by RFC 9293 3.10.7.1\n");
}

static void test_exact_rst(struct xconn *c)
{
    snap();
    uint32_t n0 = B->in->nconns;
    CHECK(!sw_done(c->pop));
    x_send(c, TH_RST, c->snd_nxt, 0, 0, NULL);
    expect_silence();
    CHECK(sw_done(c->pop));
    demi_qresult_t qr = sw_result(B, c->pop);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_FAILED);
    CHECK_EQ(qr.qr_ret, ECONNRESET);
    CHECK_EQ(B->in->nconns, n0 - 1);
    CHECK_EQ(DELTA(tcp_conns_freed), 1);
    /* Later operations fail the same way. */
    demi_sgarray_t s = sw_sga(B, 10, 1, 0);
    struct sched_task *t = sw_push(B, c->q, &s);
    sw_free(B, &s);
    CHECK(sw_done(t));
    qr = sw_result(B, t);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_FAILED);
    CHECK_EQ(qr.qr_ret, ECONNRESET);
    t = sw_pop(B, c->q);
    CHECK(sw_done(t));
    qr = sw_result(B, t);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_FAILED);
    CHECK_EQ(qr.qr_ret, ECONNRESET);
    /* The 4-tuple is free: a stray ACK on it meets the listener, which
     * answers RST. */
    x_send(c, TH_ACK, c->snd_nxt, c->rcv_nxt, 0, NULL);
    expect_rst(c->port, B_PORT, TH_RST, c->rcv_nxt, 0);
    sw_close(B, c->q);
    printf("exact RST: the connection is reset, its pop fails with ECONNRESET\n");
}

static void test_ooo_sack(struct xconn *c)
{
    uint32_t r = c->snd_nxt;
    uint64_t ooo0 = sw_tcp_stats(B, c->q).ooo_segs;
    /* [r+100, r+200) first: a duplicate ACK at once, SACKing it. */
    x_send(c, TH_ACK | TH_PSH, r + 100, c->rcv_nxt, 100, NULL);
    struct tcp_view v = expect_ack(c, r, false);
    CHECK_EQ(v.nsack, 1);
    CHECK_EQ(v.sack[0][0], r + 100);
    CHECK_EQ(v.sack[0][1], r + 200);
    /* [r+300, r+400): two blocks, the newest first (RFC 2018 4). */
    x_send(c, TH_ACK | TH_PSH, r + 300, c->rcv_nxt, 100, NULL);
    v = expect_ack(c, r, false);
    CHECK_EQ(v.nsack, 2);
    CHECK_EQ(v.sack[0][0], r + 300);
    CHECK_EQ(v.sack[0][1], r + 400);
    CHECK_EQ(v.sack[1][0], r + 100);
    CHECK_EQ(v.sack[1][1], r + 200);
    CHECK(!sw_done(c->pop));
    /* The first hole filled: the ACK covers both runs and still SACKs the
     * third; the pop gets the first 200 bytes in order. */
    x_send(c, TH_ACK | TH_PSH, r, c->rcv_nxt, 100, NULL);
    v = expect_ack(c, r + 200, true);
    CHECK_EQ(v.nsack, 1);
    CHECK_EQ(v.sack[0][0], r + 300);
    CHECK_EQ(v.sack[0][1], r + 400);
    expect_pop(c, 200);
    /* The last hole: everything acknowledged, no SACK left. */
    x_send(c, TH_ACK | TH_PSH, r + 200, c->rcv_nxt, 100, NULL);
    v = expect_ack(c, r + 400, true);
    CHECK_EQ(v.nsack, 0);
    expect_pop(c, 200);
    c->snd_nxt = r + 400;
    CHECK_EQ(sw_tcp_stats(B, c->q).ooo_segs, ooo0 + 2);
    printf("out of order: SACK blocks, then in-order delivery\n");
}

static void test_window_probe(struct xconn *c)
{
    snap();
    x_send(c, TH_ACK, c->snd_nxt - 1, c->rcv_nxt, 0, NULL);
    expect_ack(c, c->snd_nxt, false);
    CHECK(!sw_done(c->pop));
    printf("window probe: answered\n");
}

/* Every data segment B just sent on @c ends at or before @right, the right
 * edge of the window X last advertised; returns the bytes they carry. */
static uint32_t b_within(struct xconn *c, uint32_t right)
{
    uint32_t bytes = 0;
    for (int i = 0; i < cap.n; i++) {
        struct tcp_view v = tcp_at(i);
        if (v.dport != c->port || v.dlen == 0)
            continue;
        if (seq_gt(v.seq + v.dlen, right))
            fprintf(stderr, "B sent [%u, %u), beyond X's right edge %u\n", v.seq - c->b_iss - 1,
                    v.seq + v.dlen - c->b_iss - 1, right - c->b_iss - 1);
        CHECK(seq_le(v.seq + v.dlen, right));
        CHECK_EQ(v.seq, c->rcv_nxt);
        c->rcv_nxt += v.dlen;
        bytes += v.dlen;
    }
    return bytes;
}

/* X's retransmission that fills a hole carries X's newest ACK and window,
 * but a sequence number below the segment after the hole, which already
 * updated B's window (snd_wl1). RFC 9293's window check (3.10.7.4) passes
 * the segment over; B used to take its ACK all the same and keep the old
 * window, moving its right edge forward by what was acknowledged: beyond
 * X's (Linux drops such segments and counts them in TcpExtBeyondWindow;
 * seen with XDP receive drops making holes). An ACK of new data is newer
 * than any window B holds, so B must take its window too. */
static void test_window_hole_fill(void *ls)
{
    struct xconn c;
    x_init(&c, 40003, B_PORT, 77777, O_MSS); /* MSS 1200; windows in bytes, unscaled */
    x_win = 6000;
    x_open(&c, sw_accept(B, ls), true);
    CHECK_EQ(sw_tcp_stats(B, c.q).snd_wnd, 6000);
    uint64_t seed = c.port + 1000u;
    demi_sgarray_t s = sw_sga(B, 12000, seed, 0);
    cap_clear(&cap);
    struct sched_task *t = sw_push(B, c.q, &s);
    sw_free(B, &s);
    settle();
    uint32_t una = c.rcv_nxt;
    CHECK_EQ(b_within(&c, una + 6000), 6000); /* the whole window, in flight */
    /* X's data after a hole (the segment before it was lost): B takes its
     * window, snd_wl1 moves past the hole. */
    x_send(&c, TH_ACK, c.snd_nxt + 100, una, 100, NULL);
    CHECK_EQ(b_within(&c, una + 6000), 0);
    /* X resends the lost segment with its current state: two of B's
     * segments acknowledged, the window down to one segment. The right
     * edge moves from una + 6000 to una + 3600, left of what is in flight:
     * B must send nothing. */
    x_win = 1200;
    x_send(&c, TH_ACK, c.snd_nxt, una + 2400, 100, NULL);
    c.snd_nxt += 200;
    CHECK_EQ(b_within(&c, una + 3600), 0);
    CHECK_EQ(sw_tcp_stats(B, c.q).snd_wnd, 1200);
    /* Everything in flight acknowledged, the window open again: the rest. */
    x_win = 6000;
    x_send(&c, TH_ACK, c.snd_nxt, una + 6000, 0, NULL);
    CHECK_EQ(b_within(&c, una + 12000), 6000);
    x_send(&c, TH_ACK, c.snd_nxt, una + 12000, 0, NULL);
    expect_silence();
    CHECK(sw_done(t));
    CHECK_EQ(sw_result(B, t).qr_opcode, DEMI_OPC_PUSH);
    expect_pop(&c, 200);
    x_win = X_WIN;
    x_send(&c, TH_RST, c.snd_nxt, 0, 0, NULL);
    CHECK(sw_done(c.pop));
    CHECK_EQ(sw_result(B, c.pop).qr_ret, ECONNRESET);
    sw_close(B, c.q);
    printf("window: a hole-filling segment's ACK brings its window; nothing sent beyond the right edge\n");
}

/* Duplicate ACKs whose window differs each time: a Linux receiver's
 * window grows as its application reads, so nearly every ACK it sends
 * carries a new one. RFC 5681's duplicate ACK needs an unchanged window;
 * with SACK, RFC 6675 (2) counts any ACK that SACKs new data. B used to
 * count none of these, and so waited for the RTO (200 ms and more) after
 * every loss; it must retransmit the hole at once. */
static void test_sack_dupacks(void *ls)
{
    struct xconn c;
    x_init(&c, 40004, B_PORT, 88888, O_MSS | O_SACK); /* windows in bytes, unscaled */
    x_win = 30000;
    x_open(&c, sw_accept(B, ls), true);
    uint64_t seed = c.port + 1000u;
    demi_sgarray_t s = sw_sga(B, 12000, seed, 0);
    cap_clear(&cap);
    struct sched_task *t = sw_push(B, c.q, &s);
    sw_free(B, &s);
    settle();
    uint32_t una = c.rcv_nxt;
    CHECK_EQ(b_within(&c, una + 30000), 12000);
    struct tcp_conn_stats cs0 = sw_tcp_stats(B, c.q);
    /* The first segment is lost; X SACKs the next three, one ACK each,
     * its window a little larger every time. */
    for (uint32_t k = 1; k <= 3; k++) {
        struct tcp_optbuf o = {.n = 0};
        uint32_t edges[2] = {una + 1200, una + 1200 + 1200 * k};
        opt_sack(&o, edges, 1);
        x_win = (uint16_t)(30000 + k);
        x_send(&c, TH_ACK, c.snd_nxt, una, 0, &o);
        if (k < 3)
            expect_silence();
    }
    /* The third: the hole is lost (RFC 6675 IsLost), resent at once. */
    CHECK_EQ(cap.n, 1);
    struct tcp_view v = tcp_at(0);
    CHECK_EQ(v.seq, una);
    CHECK_EQ(v.dlen, 1200);
    for (uint32_t k = 0; k < v.dlen; k++)
        CHECK_EQ(v.data[k], sw_byte(seed, k));
    struct tcp_conn_stats cs = sw_tcp_stats(B, c.q);
    CHECK_EQ(cs.fast_retransmits, cs0.fast_retransmits + 1);
    CHECK_EQ(cs.rto_expiries, cs0.rto_expiries);
    x_win = 30000;
    x_send(&c, TH_ACK, c.snd_nxt, una + 12000, 0, NULL);
    CHECK(sw_done(t));
    CHECK_EQ(sw_result(B, t).qr_opcode, DEMI_OPC_PUSH);
    x_win = X_WIN;
    x_send(&c, TH_RST, c.snd_nxt, 0, 0, NULL);
    CHECK(sw_done(c.pop));
    CHECK_EQ(sw_result(B, c.pop).qr_ret, ECONNRESET);
    sw_close(B, c.q);
    printf("SACK: ACKs with new SACK blocks count as duplicates, whatever their window\n");
}

/* RFC 5961 7: at most tcp_challenge_ack_limit challenge ACKs a second. */
static void test_challenge_limit(struct xconn *c)
{
    sw_run_for(&w, SEC); /* a fresh second's budget */
    snap();
    uint32_t lim = B->in->cfg.tcp_challenge_ack_limit;
    uint64_t frames = 0;
    for (uint32_t i = 0; i < lim + 20; i++) {
        x_send(c, TH_RST, c->snd_nxt + 1 + i, 0, 0, NULL);
        frames += cap.total;
    }
    CHECK_EQ(DELTA(tcp_challenge_acks), lim);
    CHECK_EQ(frames, lim);
    CHECK_EQ(conn_state(c), TCPS_ESTABLISHED);
    printf("challenge ACKs: %u a second, no more\n", lim);
}

static void test_fin(struct xconn *c)
{
    uint32_t n0 = B->in->nconns;
    CHECK(!sw_done(c->pop));
    x_send(c, TH_FIN | TH_ACK, c->snd_nxt, c->rcv_nxt, 0, NULL);
    c->snd_nxt++;
    expect_ack(c, c->snd_nxt, true);
    CHECK(sw_done(c->pop));
    demi_qresult_t qr = sw_result(B, c->pop);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
    CHECK_EQ(qr.qr_value.sga.sga_numsegs, 0);
    CHECK_EQ(conn_state(c), TCPS_CLOSE_WAIT);
    /* B closes: its FIN, then X's ACK ends the connection. */
    cap_clear(&cap);
    sw_close(B, c->q);
    settle();
    struct tcp_view v = only_tcp();
    CHECK_EQ(v.flags & ~TH_PSH, TH_FIN | TH_ACK);
    CHECK_EQ(v.seq, c->rcv_nxt);
    CHECK_EQ(v.ack, c->snd_nxt);
    b_seen(c, &v);
    x_send(c, TH_ACK, c->snd_nxt, c->rcv_nxt + 1, 0, NULL);
    expect_silence();
    CHECK_EQ(B->in->nconns, n0 - 1);
    printf("FIN: an empty pop, CLOSE_WAIT, then LAST_ACK and gone\n");
}

/* Below TCP: Ethernet and IPv4 checks, each on an otherwise good SYN. */
static void test_ip_layer(void)
{
    struct xconn p;
    x_init(&p, 50000, B_PORT, 777, 0);
    uint8_t base[CRAFT_FRAME_MAX];
    uint32_t blen = x_syn_frame(&p, base);
    uint8_t *ip = fbuf + ETH_HDR_LEN;
    uint32_t n0 = B->in->nconns;
    snap();
#define FRESH() memcpy(fbuf, base, blen)
    FRESH();
    ip[10] ^= 0xff; /* header checksum */
    inject(fbuf, blen);
    expect_silence();
    CHECK_EQ(DELTA(ip_rx_bad_csum), 1);

    FRESH();
    ip[0] = 0x65; /* version 6 */
    craft_fix_ip(fbuf);
    inject(fbuf, blen);
    FRESH();
    ip[0] = 0x44; /* IHL 4 */
    inject(fbuf, blen);
    FRESH();
    ip[0] = 0x4f; /* IHL 15: beyond the total length */
    inject(fbuf, blen);
    FRESH();
    ip[3]++; /* total length beyond the frame */
    craft_fix_ip(fbuf);
    inject(fbuf, blen);
    FRESH();
    ip[2] = 0;
    ip[3] = 19; /* total length below the header */
    craft_fix_ip(fbuf);
    inject(fbuf, blen);
    inject(base, ETH_HDR_LEN + 19); /* a frame too short for a header */
    expect_silence();
    CHECK_EQ(DELTA(ip_rx_bad_hdr), 6);

    /* Fragments of the SYN's 20 bytes (same IP id): a first and a middle
     * one off the 8-byte grid are malformed; a last one at offset 8 waits
     * for the rest; a second last one drops it. Nothing reaches TCP. */
    static const uint16_t frags[] = {IP_MF, IP_MF | IP_DF, 1, IP_DF | 185, IP_MF | 1};
    for (unsigned i = 0; i < ARRAY_SIZE(frags); i++) {
        FRESH();
        ip[6] = (uint8_t)(frags[i] >> 8);
        ip[7] = (uint8_t)frags[i];
        craft_fix_ip(fbuf);
        inject(fbuf, blen);
        expect_silence();
    }
    CHECK_EQ(DELTA(ip_rx_frag_dropped), 4);
    CHECK_EQ(B->in->frag_bytes, 0);

    FRESH();
    ip[19] = 51; /* 10.0.0.51: not ours */
    craft_fix_ip(fbuf);
    inject(fbuf, blen);
    expect_silence();
    CHECK_EQ(DELTA(ip_rx_not_ours), 1);
    FRESH();
    ip[9] = 200; /* no such protocol here */
    craft_fix_ip(fbuf);
    inject(fbuf, blen);
    expect_silence();
    CHECK_EQ(DELTA(ip_rx_other_proto), 1);
    FRESH();
    memset(ip + 16, 0xff, 4); /* to the broadcast address: no SYN-ACK */
    craft_fix_ip(fbuf);
    craft_fix_l4(fbuf, blen);
    inject(fbuf, blen);
    expect_silence();
    /* From a broadcast or multicast source (RFC 1122 3.2.1.3): dropped. */
    static const uint32_t bad_src[] = {0xffffffffu, 0xe0000001u, 0xefffffffu};
    for (unsigned i = 0; i < ARRAY_SIZE(bad_src); i++) {
        FRESH();
        uint32_t a = htonl(bad_src[i]);
        memcpy(ip + 12, &a, 4);
        craft_fix_ip(fbuf);
        craft_fix_l4(fbuf, blen);
        inject(fbuf, blen);
        expect_silence();
    }
    CHECK_EQ(DELTA(ip_rx_bad_hdr), 6 + ARRAY_SIZE(bad_src));

    FRESH();
    fbuf[5] = 0x77; /* another host's MAC */
    inject(fbuf, blen);
    CHECK_EQ(DELTA(eth_rx_not_ours), 1);
    FRESH();
    fbuf[12] = 0x86; /* IPv6's EtherType */
    fbuf[13] = 0xdd;
    inject(fbuf, blen);
    CHECK_EQ(DELTA(eth_rx_other_type), 1);
    inject(base, 10); /* shorter than an Ethernet header */
    CHECK_EQ(DELTA(eth_rx_bad), 1);
    inject(base, 0);
    CHECK_EQ(DELTA(eth_rx_bad), 2);
    expect_silence();
    CHECK_EQ(DELTA(tcp_rx), 1); /* only the one to the broadcast address got to TCP */
    CHECK_EQ(B->in->nconns, n0);

    /* Good frames in unusual shapes. IP options (IHL 6, NOPs and EOL). */
    FRESH();
    inject(fbuf, craft_ip_options(fbuf, blen, (const uint8_t[]){1, 1, 1, 0}, 4));
    struct tcp_view v = only_tcp();
    check_synack(&p, &v);
    x_send(&p, TH_RST, p.iss + 1, 0, 0, NULL);
    expect_silence();
    /* Ethernet padding after the IP packet is not data. */
    FRESH();
    memset(fbuf + blen, 0xee, 6);
    inject(fbuf, blen + 6);
    v = only_tcp();
    check_synack(&p, &v);
    x_send(&p, TH_RST, p.iss + 1, 0, 0, NULL);
    expect_silence();
    /* A SYN in two fragments, the last first: reassembled, answered. */
    uint32_t tl = blen - ETH_HDR_LEN - 20;
    for (int k = 1; k >= 0; k--) {
        FRESH();
        uint32_t off = k ? 8 : 0, n = k ? tl - 8 : 8;
        memmove(ip + 20, base + ETH_HDR_LEN + 20 + off, n);
        ip[2] = (uint8_t)((20 + n) >> 8);
        ip[3] = (uint8_t)(20 + n);
        ip[4] = 0x5a;
        ip[6] = k ? 0 : IP_MF >> 8;
        ip[7] = k ? 1 : 0;
        craft_fix_ip(fbuf);
        inject(fbuf, ETH_HDR_LEN + 20 + n);
        if (k)
            expect_silence();
    }
    v = only_tcp();
    check_synack(&p, &v);
    x_send(&p, TH_RST, p.iss + 1, 0, 0, NULL);
    expect_silence();
    CHECK_EQ(B->in->nconns, n0);
#undef FRESH
    printf("IPv4: bad headers, checksums, bad fragments, strangers dropped and counted; a fragmented SYN answered\n");
}

/* ---- fuzz ---- */

#define FZ_PORTS  64 /* X ports the fuzz opens connections from */
#define FZ_PUSHES 64

struct fuzz {
    uint64_t rs;
    uint32_t frames;
    void *l80, *l82, *uq; /* listeners, and a UDP socket on port 9999 */
    struct sched_task *acc80, *acc82, *upop;
    struct xconn f; /* an established connection the fuzz aims at */
    bool f_alive;
    uint16_t next_fport;
    uint32_t hs_iss[FZ_PORTS], hs_b_iss[FZ_PORTS];
    bool hs_ok[FZ_PORTS];
    struct sched_task *push[FZ_PUSHES];
    uint64_t accepted, reopened, pushes, frames_out;
};

static uint32_t fz(struct fuzz *z, uint32_t n)
{
    return (uint32_t)(trand(&z->rs) % n);
}

static void fz_bytes(struct fuzz *z, uint8_t *p, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        p[i] = (uint8_t)trand(&z->rs);
}

/* Reads what B sent: every checksum must be right, every frame within
 * the MTU; SYN-ACKs and ACKs tell the fuzz B's sequence numbers. */
static void fz_observe(struct fuzz *z)
{
    for (int i = 0; i < cap.n; i++) {
        if (cap.len[i] > ETH_HDR_LEN + 1500) {
            struct ip_view iv;
            if (craft_ip_view(cap.frame[i], cap.len[i], &iv))
                fprintf(stderr, "oversized: proto %u len %u l4 type %u\n", iv.proto, cap.len[i], iv.l4[0]);
        }
        CHECK(cap.len[i] <= ETH_HDR_LEN + 1500);
        z->frames_out++;
        struct tcp_view v;
        if (!craft_tcp_view(cap.frame[i], cap.len[i], &v) || v.ip.dst != X.ip)
            continue;
        if (v.dport >= 30100 && v.dport < 30100 + FZ_PORTS && (v.flags & (TH_SYN | TH_ACK)) == (TH_SYN | TH_ACK)) {
            unsigned k = v.dport - 30100u;
            if (v.ack == z->hs_iss[k] + 1) {
                z->hs_b_iss[k] = v.seq;
                z->hs_ok[k] = true;
            }
        }
        if (z->f_alive && v.dport == z->f.port && v.sport == FUZZ_PORT && (v.flags & TH_ACK)) {
            z->f.snd_nxt = v.ack;
            uint32_t end = v.seq + v.dlen + ((v.flags & TH_FIN) ? 1 : 0);
            if (seq_gt(end, z->f.rcv_nxt))
                z->f.rcv_nxt = end;
            b_seen(&z->f, &v);
        }
    }
    cap_clear(&cap);
}

/* The application's side: accepts on port 80 are closed at once; the
 * fuzz connection's pops are taken and renewed; pushes are harvested. */
static void fz_app(struct fuzz *z)
{
    while (sw_done(z->acc80)) {
        demi_qresult_t qr = sw_result(B, z->acc80);
        CHECK_EQ(qr.qr_opcode, DEMI_OPC_ACCEPT);
        sw_close(B, sw_accepted(B, &qr));
        z->accepted++;
        z->acc80 = sw_accept(B, z->l80);
    }
    for (int i = 0; i < FZ_PUSHES; i++) {
        if (z->push[i] && sw_done(z->push[i])) {
            sw_result(B, z->push[i]);
            z->push[i] = NULL;
        }
    }
    if (sw_done(z->upop)) {
        demi_qresult_t qr = sw_result(B, z->upop);
        CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
        sw_free(B, &qr.qr_value.sga);
        z->upop = sw_pop(B, z->uq);
    }
    if (z->f_alive && sw_done(z->f.pop)) {
        demi_qresult_t qr = sw_result(B, z->f.pop);
        if (qr.qr_opcode == DEMI_OPC_POP && qr.qr_value.sga.sga_numsegs > 0) {
            sw_free(B, &qr.qr_value.sga);
            z->f.pop = sw_pop(B, z->f.q);
        } else {
            /* EOF or reset: let it go, open another. */
            sw_close(B, z->f.q);
            z->f_alive = false;
        }
    }
}

static void fz_settle(struct fuzz *z)
{
    settle();
    fz_observe(z);
    fz_app(z);
}

/* A clean handshake on port 82 for a new fuzz connection. */
static void fz_reopen(struct fuzz *z)
{
    fz_settle(z);
    for (int tries = 0;; tries++) {
        CHECK(tries < 16);
        x_init(&z->f, z->next_fport++, FUZZ_PORT, (uint32_t)trand(&z->rs), O_ALL);
        inject(fbuf, x_syn_frame(&z->f, fbuf));
        struct tcp_view v;
        bool ok = find_tcp(z->f.port, &v) && v.flags == (TH_SYN | TH_ACK) && v.ack == z->f.iss + 1;
        if (ok)
            check_synack(&z->f, &v);
        fz_observe(z);
        if (ok)
            break;
        /* A connection a mutated frame opened holds this port: another. */
    }
    x_send(&z->f, TH_ACK, z->f.snd_nxt, z->f.rcv_nxt, 0, NULL);
    fz_observe(z);
    z->f.q = NULL;
    while (sw_done(z->acc82)) {
        demi_qresult_t qr = sw_result(B, z->acc82);
        CHECK_EQ(qr.qr_opcode, DEMI_OPC_ACCEPT);
        void *q = sw_accepted(B, &qr);
        if (ntohs(qr.qr_value.ares.addr.sin_port) == z->f.port && !z->f.q)
            z->f.q = q;
        else
            sw_close(B, q); /* one the mutations made */
        z->acc82 = sw_accept(B, z->l82);
    }
    CHECK(z->f.q);
    z->f.pop = sw_pop(B, z->f.q);
    z->f_alive = true;
    z->reopened++;
}

static void fz_push(struct fuzz *z)
{
    for (int i = 0; i < FZ_PUSHES; i++) {
        if (z->push[i])
            continue;
        demi_sgarray_t s = sw_sga(B, 1 + fz(z, 20000), z->rs, 0);
        struct sched_task *t = sched_alloc(&B->rt->sched, NULL, NULL);
        CHECK(t);
        t->qd = 0;
        if (inet_push(B->in, z->f.q, &s, NULL, t) == 0) {
            z->push[i] = t;
            z->pushes++;
        } else {
            sched_free(&B->rt->sched, t); /* not connected any more */
        }
        sw_free(B, &s);
        return;
    }
}

/* A template frame the fuzz then mutates. */
static uint32_t fz_template(struct fuzz *z, uint8_t *buf)
{
    uint32_t r = fz(z, 100);
    uint8_t data[1400];
    if (r < 15) { /* a SYN with random option values */
        unsigned k = fz(z, FZ_PORTS);
        z->hs_iss[k] = (uint32_t)trand(&z->rs);
        z->hs_ok[k] = false;
        struct tcp_optbuf o = {.n = 0};
        if (fz(z, 2))
            opt_mss(&o, (uint16_t)(fz(z, 2) ? fz(z, 65536) : 1460));
        if (fz(z, 2))
            opt_sack_ok(&o);
        if (fz(z, 2))
            opt_ts(&o, (uint32_t)trand(&z->rs), fz(z, 4) ? 0 : (uint32_t)trand(&z->rs));
        if (fz(z, 2))
            opt_ws(&o, (uint8_t)fz(z, 20));
        struct tcp_spec s = {.sport = (uint16_t)(30100 + k),
                             .dport = fz(z, 8) ? B_PORT : (uint16_t)fz(z, 65536),
                             .seq = z->hs_iss[k],
                             .flags = TH_SYN,
                             .win = (uint16_t)fz(z, 65536),
                             .opt = o.n ? &o : NULL};
        return craft_tcp(buf, &X, B->mac, B->ip.s_addr, &s);
    }
    if (r < 55 && z->f_alive) { /* on the fuzz connection, near its sequence numbers */
        struct xconn *c = &z->f;
        uint8_t flags = TH_ACK;
        if (fz(z, 2))
            flags |= TH_PSH;
        if (fz(z, 20) == 0)
            flags |= TH_FIN;
        if (fz(z, 30) == 0)
            flags |= TH_RST;
        if (fz(z, 30) == 0)
            flags |= TH_SYN;
        if (fz(z, 20) == 0)
            flags = (uint8_t)fz(z, 256);
        uint32_t seq = c->snd_nxt + (fz(z, 2) ? 0 : fz(z, 8000) - 4000);
        uint32_t ack = c->rcv_nxt - (fz(z, 2) ? 0 : fz(z, 30000));
        if (fz(z, 10) == 0)
            ack = c->rcv_nxt + fz(z, 3000);
        uint32_t n = fz(z, 3) ? fz(z, 1400) : 0;
        fz_bytes(z, data, n);
        struct tcp_optbuf o = {.n = 0};
        opt_ts(&o, fz(z, 10) ? ++c->tsval : c->tsval - fz(z, 1000), c->ts_recent);
        if (fz(z, 3) == 0) {
            uint32_t e[6];
            int nb = 1 + (int)fz(z, 3);
            for (int i = 0; i < nb; i++) {
                e[2 * i] = c->rcv_nxt - fz(z, 40000);
                e[2 * i + 1] = e[2 * i] + fz(z, 20000);
            }
            opt_sack(&o, e, nb);
        }
        struct tcp_spec s = {.sport = c->port,
                             .dport = FUZZ_PORT,
                             .seq = seq,
                             .ack = ack,
                             .flags = flags,
                             .win = fz(z, 8) ? X_WIN : (uint16_t)fz(z, 4),
                             .opt = &o,
                             .data = data,
                             .dlen = n};
        return craft_tcp(buf, &X, B->mac, B->ip.s_addr, &s);
    }
    if (r < 70) { /* completing (or botching) a handshake the fuzz began */
        unsigned k = fz(z, FZ_PORTS);
        uint32_t n = fz(z, 4) ? 0 : fz(z, 1000);
        fz_bytes(z, data, n);
        struct tcp_optbuf o = {.n = 0};
        if (fz(z, 2))
            opt_ts(&o, (uint32_t)trand(&z->rs), (uint32_t)trand(&z->rs));
        struct tcp_spec s = {.sport = (uint16_t)(30100 + k),
                             .dport = B_PORT,
                             .seq = z->hs_iss[k] + 1,
                             .ack = z->hs_b_iss[k] + (fz(z, 8) ? 1 : fz(z, 3)),
                             .flags = (uint8_t)(fz(z, 8) ? TH_ACK : fz(z, 256)),
                             .win = (uint16_t)fz(z, 65536),
                             .opt = o.n ? &o : NULL,
                             .data = data,
                             .dlen = n};
        return craft_tcp(buf, &X, B->mac, B->ip.s_addr, &s);
    }
    if (r < 80) { /* UDP, ICMP or ARP */
        uint32_t n = fz(z, 1400);
        fz_bytes(z, data, n);
        switch (fz(z, 3)) {
        case 0:
            return craft_udp(buf, &X, B->mac, B->ip.s_addr, (uint16_t)fz(z, 65536),
                             fz(z, 2) ? 9999 : (uint16_t)fz(z, 65536), data, n, fz(z, 2));
        case 1:
            return craft_icmp(buf, &X, B->mac, B->ip.s_addr, fz(z, 4) ? 8 : (uint8_t)fz(z, 256), 0,
                              (uint16_t)fz(z, 65536), (uint16_t)fz(z, 65536), data, n);
        default: {
            static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
            uint8_t mac[6] = {0x02, 0, 0, 0, 1, (uint8_t)fz(z, 50)};
            uint32_t spa = htonl(0x0a000064u + fz(z, 50)); /* 10.0.0.100 and up: nobody real */
            uint32_t tpa = fz(z, 2) ? B->ip.s_addr : htonl(0x0a000064u + fz(z, 50));
            return craft_arp(buf, mac, fz(z, 2) ? bcast : B->mac, (uint16_t)(1 + fz(z, 2)), mac, spa, mac, tpa);
        }
        }
    }
    /* Anything to a closed port. */
    uint32_t n = fz(z, 3) ? 0 : fz(z, 1400);
    fz_bytes(z, data, n);
    struct tcp_spec s = {.sport = (uint16_t)fz(z, 65536),
                         .dport = CLOSED_PORT,
                         .seq = (uint32_t)trand(&z->rs),
                         .ack = (uint32_t)trand(&z->rs),
                         .flags = (uint8_t)fz(z, 256),
                         .win = (uint16_t)fz(z, 65536),
                         .data = data,
                         .dlen = n};
    return craft_tcp(buf, &X, B->mac, B->ip.s_addr, &s);
}

/* Mutates a frame in place; returns its new length. */
static uint32_t fz_mutate(struct fuzz *z, uint8_t *buf, uint32_t len)
{
    uint8_t *ip = buf + ETH_HDR_LEN;
    uint32_t ihl = len >= ETH_HDR_LEN + 20 ? (uint32_t)(ip[0] & 0xf) * 4 : 0;
    uint8_t *th = ip + ihl;
    bool tcp = ihl >= 20 && len >= ETH_HDR_LEN + ihl + 20 && ip[9] == IPPROTO_TCP;
    bool fix = true;
    switch (fz(z, 8)) {
    case 0: /* bit flips anywhere, checksums left wrong */
        for (uint32_t i = 1 + fz(z, 4); i > 0 && len; i--)
            buf[fz(z, len)] ^= (uint8_t)(1u << fz(z, 8));
        fix = false;
        break;
    case 1: /* bit flips in the headers, checksums made right */
        for (uint32_t i = 1 + fz(z, 4); i > 0 && len; i--)
            buf[fz(z, MIN(len, 74u))] ^= (uint8_t)(1u << fz(z, 8));
        break;
    case 2: /* random option bytes */
        if (tcp) {
            uint32_t hlen = (uint32_t)(th[12] >> 4) * 4;
            if (hlen > 20 && ETH_HDR_LEN + ihl + hlen <= len)
                fz_bytes(z, th + 20, hlen - 20);
            else if (ETH_HDR_LEN + ihl + 60 <= len) {
                th[12] = (uint8_t)((5 + fz(z, 11)) << 4);
                fz_bytes(z, th + 20, 40);
            }
        }
        break;
    case 3: /* random flags and data offset */
        if (tcp) {
            th[13] = (uint8_t)fz(z, 256);
            if (fz(z, 2))
                th[12] = (uint8_t)(fz(z, 16) << 4);
        }
        break;
    case 4: /* a random length: truncated or extended */
        if (fz(z, 2)) {
            len = fz(z, len + 1);
        } else {
            uint32_t more = fz(z, CRAFT_FRAME_MAX - len + 1);
            fz_bytes(z, buf + len, more);
            len += more;
        }
        if (fz(z, 2) && len >= ETH_HDR_LEN + 20) {
            uint16_t t = (uint16_t)(len - ETH_HDR_LEN);
            ip[2] = (uint8_t)(t >> 8);
            ip[3] = (uint8_t)t;
        }
        break;
    case 5: /* random IP header fields */
        if (len >= ETH_HDR_LEN + 20) {
            static const unsigned fields[] = {0, 2, 3, 6, 7, 9, 12, 16};
            for (uint32_t i = 1 + fz(z, 3); i > 0; i--)
                ip[fields[fz(z, ARRAY_SIZE(fields))]] = (uint8_t)fz(z, 256);
        }
        break;
    case 6: /* random bytes after the TCP header's first 12 */
        if (tcp)
            fz_bytes(z, th + 12, MIN(len - ETH_HDR_LEN - ihl - 12, 8u));
        break;
    default: /* as built */
        break;
    }
    if (fix && len >= ETH_HDR_LEN + 20 && (ip[0] & 0xf) >= 5 && ETH_HDR_LEN + (uint32_t)(ip[0] & 0xf) * 4 <= len) {
        craft_fix_ip(buf);
        craft_fix_l4(buf, len);
    }
    return len;
}

static void test_fuzz(struct fuzz *z)
{
    static uint8_t frame[CRAFT_FRAME_MAX];
    snap();
    z->f_alive = false;
    z->next_fport = 41000;
    cap_clear(&cap);
    for (uint32_t i = 0; i < z->frames; i++) {
        if (!z->f_alive)
            fz_reopen(z);
        uint32_t len;
        if (fz(z, 4) == 0) {
            /* Random bytes, some made to look like IPv4 or ARP for B. */
            len = fz(z, CRAFT_FRAME_MAX + 1);
            fz_bytes(z, frame, len);
            if (len >= 14 && fz(z, 2)) {
                memcpy(frame, B->mac, 6);
                frame[12] = fz(z, 4) ? 0x08 : frame[12];
                frame[13] = fz(z, 4) ? 0x00 : 0x06;
                if (len >= 34 && frame[13] == 0 && fz(z, 2)) {
                    frame[14] = 0x45;
                    frame[16] = (uint8_t)((len - 14) >> 8);
                    frame[17] = (uint8_t)(len - 14);
                    memcpy(frame + 30, &B->ip.s_addr, 4);
                    craft_fix_ip(frame);
                    if (fz(z, 2))
                        craft_fix_l4(frame, len);
                }
            }
        } else {
            len = fz_template(z, frame);
            if (fz(z, 10) < 7)
                len = fz_mutate(z, frame, len);
            if (fz(z, 4) == 0)
                len = fz_mutate(z, frame, len);
        }
        CHECK_EQ(simnet_inject(w.net, B->dev, frame, len), 0);
        if (i % 8 == 7)
            fz_settle(z);
        if (i % 64 == 63) {
            sw_run_for(&w, fz(z, 30) * MSEC);
            fz_observe(z);
            fz_app(z);
        }
        if (i % 200 == 199 && z->f_alive)
            fz_push(z);
        if (i % 4000 == 3999) {
            sw_run_for(&w, (i % 8000 == 7999 ? 70 : 3) * SEC); /* RTOs, SYN-ACK retries, TIME_WAIT */
            fz_observe(z);
            fz_app(z);
        }
    }
    fz_settle(z);
    CHECK_EQ(simnet_stats(B->dev)->too_big, 0);
    printf("fuzz: %u frames in, %llu out; %llu accepted, %llu reopened, %llu pushes\n", z->frames,
           (unsigned long long)z->frames_out, (unsigned long long)z->accepted, (unsigned long long)z->reopened,
           (unsigned long long)z->pushes);
    printf("fuzz counters: eth bad %llu not-ours %llu other %llu; ip bad-hdr %llu bad-csum %llu frag %llu "
           "not-ours %llu; tcp bad-hdr %llu bad-csum %llu bad-opt %llu no-conn %llu rst %llu oow %llu "
           "challenge %llu paws %llu retrans %llu; udp bad %llu bad-csum %llu; icmp bad %llu echo %llu; arp bad %llu\n",
           (unsigned long long)DELTA(eth_rx_bad), (unsigned long long)DELTA(eth_rx_not_ours),
           (unsigned long long)DELTA(eth_rx_other_type), (unsigned long long)DELTA(ip_rx_bad_hdr),
           (unsigned long long)DELTA(ip_rx_bad_csum), (unsigned long long)DELTA(ip_rx_frag_dropped),
           (unsigned long long)DELTA(ip_rx_not_ours), (unsigned long long)DELTA(tcp_rx_bad_hdr),
           (unsigned long long)DELTA(tcp_rx_bad_csum), (unsigned long long)DELTA(tcp_rx_bad_opt),
           (unsigned long long)DELTA(tcp_rx_no_conn), (unsigned long long)DELTA(tcp_rst_sent),
           (unsigned long long)DELTA(tcp_rx_out_of_window), (unsigned long long)DELTA(tcp_challenge_acks),
           (unsigned long long)DELTA(tcp_paws_drops), (unsigned long long)DELTA(tcp_retrans_segs),
           (unsigned long long)DELTA(udp_rx_bad), (unsigned long long)DELTA(udp_rx_bad_csum),
           (unsigned long long)DELTA(icmp_rx_bad), (unsigned long long)DELTA(icmp_echo_replies),
           (unsigned long long)DELTA(arp_rx_bad));
    /* The fuzz reached every layer's checks. */
    CHECK(DELTA(eth_rx_not_ours) && DELTA(ip_rx_bad_hdr) && DELTA(ip_rx_bad_csum) && DELTA(tcp_rx_bad_hdr) &&
          DELTA(tcp_rx_bad_csum) && DELTA(tcp_rx_bad_opt) && DELTA(tcp_challenge_acks) && DELTA(tcp_paws_drops) &&
          DELTA(arp_rx_bad) && DELTA(tcp_conns_accepted));
}

struct both {
    struct flow ab, ba;
};

static bool both_step(void *arg)
{
    struct both *x = arg;
    bool a = flow_step(&x->ab);
    bool b = flow_step(&x->ba);
    return a && b;
}

/* What B still holds, for a failure's diagnosis. */
static void dump_conns(void)
{
    for (uint32_t b = 0; b <= B->in->conns_mask; b++)
        for (struct tcp_pcb *p = B->in->conns[b]; p; p = p->hnext)
            fprintf(stderr, "left: %u -> %u state %u, %s, snd_una %u snd_max %u, rto timer %d\n", p->rport, p->lport,
                    p->state, p->sock ? "open" : "orphaned", p->snd_una, p->snd_max, timer_armed(&p->rto_tm));
}

/* After the fuzz: a crafted connection and a real one both work. */
static void test_after_fuzz(struct fuzz *z)
{
    /* Whatever the fuzz left queued for accept goes first. */
    fz_app(z);
    CHECK(!sw_done(z->acc80));
    struct xconn c;
    x_init(&c, 45000, B_PORT, 0x7ffffff0u, O_ALL);
    x_open(&c, z->acc80, true);
    x_data(&c, 1000);
    b_push(&c, 5000, 1200);
    x_data(&c, 1400);
    sw_close(B, c.q); /* with a pop pending: it is cancelled */
    settle();
    CHECK(sw_done(c.pop));
    sw_result(B, c.pop);

    /* A real stack, A at 10.0.0.2, connects: a megabyte each way. */
    struct simnode *a = sw_node(&w, NULL);
    z->acc80 = sw_accept(B, z->l80);
    void *aq = sw_socket(a, SOCK_STREAM);
    struct sched_task *con = sw_connect(a, aq, B, B_PORT);
    demi_qresult_t qr = sw_wait(&w, a, con, 10 * SEC);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_CONNECT);
    qr = sw_wait(&w, B, z->acc80, 10 * SEC);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_ACCEPT);
    CHECK_EQ(qr.qr_value.ares.addr.sin_addr.s_addr, a->ip.s_addr);
    void *bq = sw_accepted(B, &qr);
    struct both x;
    flow_init(&x.ab, a, aq, B, bq, 1u << 20, 11);
    flow_init(&x.ba, B, bq, a, aq, 1u << 20, 12);
    CHECK_EQ(sw_run(&w, both_step, &x, 600 * SEC), 0);
    printf("after the fuzz: a crafted and a real connection move data byte-exact\n");

    /* Everything closed, every timer run out: nothing left, no block lost. */
    sw_close(a, aq);
    sw_close(B, bq);
    if (z->f_alive) {
        sw_close(B, z->f.q);
        settle();
        sw_result(B, z->f.pop);
    }
    for (int i = 0; i < FZ_PUSHES; i++) {
        if (z->push[i]) {
            sw_run(&w, NULL, NULL, 0);
            if (sw_done(z->push[i]))
                sw_result(B, z->push[i]);
        }
    }
    sw_close(B, z->l80);
    sw_close(B, z->l82);
    sw_close(B, z->uq);
    sw_result(B, z->upop);
    sw_run_for(&w, 1800 * SEC);
    dump_conns();
    CHECK_EQ(B->in->nconns, 0);
    CHECK_EQ(a->in->nconns, 0);
    while (B->rt->sched.done.head)
        sched_harvest(&B->rt->sched, B->rt->sched.done.head, &qr);
    CHECK_EQ(heap_stats(B->rt->heap)->bytes_in_use, 0);
    CHECK_EQ(heap_stats(a->rt->heap)->bytes_in_use, 0);
}

/* ---- the cases: each on a fresh network and a fresh B ---- */

/* What every case starts from: B listening on B_PORT, nothing else. Cases
 * that need established connections open C1 and C2 and move data on them
 * first (the "data" case's steps), so that no case depends on another. */
static void *listener;
static struct xconn conn1, conn2;

static void setup(void)
{
    x_win = X_WIN;
    memset(&conn1, 0, sizeof conn1);
    memset(&conn2, 0, sizeof conn2);
    sw_init(&w, 7, getenv("DEMI_PCAP"));
    B = sw_node(&w, tweak);
    cap_attach(&w, &cap, B->dev);
    listener = sw_socket(B, SOCK_STREAM);
    sw_bind(B, listener, B_PORT);
    sw_listen(B, listener, 128);
}

static void open_conns(void)
{
    test_open_c1(&conn1, listener);
    test_open_c2(&conn2, listener);
    test_data(&conn1, &conn2);
}

static void teardown(void)
{
    sw_fini(&w);
}

static void case_open_c1(void)
{
    test_open_c1(&conn1, listener);
}

static void case_open_c2(void)
{
    test_open_c2(&conn2, listener);
}

static void case_data(void)
{
    open_conns();
}

static void case_out_of_window(void)
{
    test_out_of_window(&conn1);
}

static void case_rst_syn_challenge(void)
{
    test_rst_syn_challenge(&conn1);
}

static void case_bad_ack(void)
{
    test_bad_ack(&conn1);
}

static void case_paws(void)
{
    test_paws(&conn1);
}

static void case_bad_csum_and_hdr(void)
{
    test_bad_csum_and_hdr(&conn1);
}

static void case_bad_options(void)
{
    test_bad_options(&conn1);
}

static void case_ooo_sack(void)
{
    test_ooo_sack(&conn1);
}

static void case_window_probe(void)
{
    test_window_probe(&conn1);
}

static void case_window_hole_fill(void)
{
    test_window_hole_fill(listener);
}

static void case_sack_dupacks(void)
{
    test_sack_dupacks(listener);
}

static void case_exact_rst(void)
{
    test_exact_rst(&conn2);
}

static void case_challenge_limit(void)
{
    test_challenge_limit(&conn1);
}

static void case_fin(void)
{
    test_fin(&conn1);
}

/* The fuzz, then the check that B still works and gave every block back:
 * one case, as the second half is about what the first left behind. */
static void case_fuzz(void)
{
    static struct fuzz z;
    memset(&z, 0, sizeof z);
    /* A fixed seed; DEMI_FUZZ_SEED and DEMI_FUZZ_FRAMES explore further. */
    const char *seed = getenv("DEMI_FUZZ_SEED"), *frames = getenv("DEMI_FUZZ_FRAMES");
    z.rs = seed ? strtoull(seed, NULL, 0) : 0x5eed;
    z.frames = frames ? (uint32_t)strtoul(frames, NULL, 0) : 30000;
    z.l80 = listener;
    z.acc80 = sw_accept(B, listener);
    z.l82 = sw_socket(B, SOCK_STREAM);
    sw_bind(B, z.l82, FUZZ_PORT);
    sw_listen(B, z.l82, 64);
    z.acc82 = sw_accept(B, z.l82);
    z.uq = sw_socket(B, SOCK_DGRAM);
    sw_bind(B, z.uq, 9999);
    z.upop = sw_pop(B, z.uq);
    test_fuzz(&z);
    test_after_fuzz(&z);
}

/* flags: */
#define CONNS 1u /* starts from C1 and C2 open, with data moved */

static const struct tcase cases[] = {
    {"handshake_options", test_handshake_options, 0},
    {"ip_layer", test_ip_layer, 0},
    {"closed_port", test_closed_port, 0},
    {"open_c1", case_open_c1, 0},
    {"open_c2", case_open_c2, 0},
    {"data", case_data, 0},
    {"out_of_window", case_out_of_window, CONNS},
    {"rst_syn_challenge", case_rst_syn_challenge, CONNS},
    {"bad_ack", case_bad_ack, CONNS},
    {"paws", case_paws, CONNS},
    {"bad_csum_and_hdr", case_bad_csum_and_hdr, CONNS},
    {"bad_options", case_bad_options, CONNS},
    {"ooo_sack", case_ooo_sack, CONNS},
    {"window_probe", case_window_probe, CONNS},
    {"window_hole_fill", case_window_hole_fill, 0},
    {"sack_dupacks", case_sack_dupacks, 0},
    {"exact_rst", case_exact_rst, CONNS},
    {"challenge_limit", case_challenge_limit, CONNS},
    {"fin", case_fin, CONNS},
    {"fuzz", case_fuzz, 0},
};
#define NCASES (sizeof cases / sizeof cases[0])

/* A case in its child process: a fresh network and B around it. */
static void run_fresh(const struct tcase *tc)
{
    setup();
    if (tc->flags & CONNS)
        open_conns();
    tc->run();
    teardown();
}

/* test_tcp_crafted [--list | CASE...]: no argument runs every case (so does
 * DEMI_TEST_CASE unset); CASE names come from --list. */
int main(int argc, char **argv)
{
    X.ip = htonl(0x0a000032u); /* 10.0.0.50 */
    x_arp.ip.s_addr = X.ip;
    memcpy(x_arp.mac, X.mac, 6);

    return tcase_main(argc, argv, cases, NCASES, "tcp crafted", run_fresh);
}
