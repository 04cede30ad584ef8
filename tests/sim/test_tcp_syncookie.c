/*
 * SYN flood resistance (RFC 4987): SYN cookies (3.6), recycling of the
 * oldest half-open connection (3.5) and a shorter half-open life (3.4).
 *
 * Crafted handshakes, a fake peer X against node B: a cookie SYN-ACK
 * keeps no state and offers MSS, and window scale and SACK only with
 * timestamps (their values in the TSval's low bits); the final ACK, with
 * data, rebuilds a connection with the peer's MSS (rounded down to the
 * table), window scale, SACK and timestamps, which then moves data both
 * ways; without timestamps, neither option; forged ACKs (the cookie off by
 * one, a flipped hash bit, another peer ISN, a bad TSecr, another port)
 * and a cookie two periods old are reset and counted, and build nothing;
 * with tcp_syncookies 1 a listener that sent no cookie lately checks none;
 * with 0 the oldest half-open entry makes room for a new SYN.
 *
 * Floods: node B listens on port 80 with a backlog of 64; a flooder that
 * exists only as frames injected into B's receive ring sends SYNs from
 * random addresses and ports that never complete the handshake (20 per
 * millisecond of virtual time, as hping3 --flood --rand-source did on the
 * wire, and 500), while node C, a real stack, connects again and again,
 * echoes a message through B and closes. With cookies every connect is
 * accepted within 1 s (issue 11's goal: 99%); B's half-open connections
 * and heap stay bounded, and nothing is left once the flood stops; an
 * established bulk transfer keeps at least 80% of its rate. The figures
 * for cookies on and off are printed.
 */
#include "craft.h"
#include "flow.h"
#include "inet/inet_int.h"
#include "libos/inetos.h"

#define B_PORT      80
#define BACKLOG     64
#define STEP_NS     (50 * USEC) /* the flood's SYNs are spread over each millisecond */
#define STEPS_MS    20
#define LEGIT       100 /* legitimate connects */
#define MSG_LEN     300
#define CONNECT_MAX (1200 * MSEC) /* a connect still pending then has failed */

static struct simworld w;
static struct simnode *B, *C;
static void *ls;
static struct sched_task *acc;
static uint64_t rs = 0xf100d;
static uint64_t flood_sent;
static uint32_t syns_step;  /* flood SYNs per step */
static uint32_t flood_mode; /* tcp_syncookies of B */
static uint64_t peak_heap, peak_conns, peak_nsyn;
static uint8_t fbuf[CRAFT_FRAME_MAX];

/* SYNs from random addresses outside the nodes' 10.0.0.0/24. */
static void flood(uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        uint64_t r = trand(&rs);
        struct craft_host x = {{0x02, 0x66, (uint8_t)r, (uint8_t)(r >> 8), (uint8_t)(r >> 16), 0x01}, 0};
        x.ip = htonl(0x0a000000u | (uint32_t)(1 + (r >> 24) % 250) << 16 | (uint32_t)((r >> 32) & 0xffff));
        struct tcp_optbuf o = {.n = 0};
        opt_mss(&o, 1460);
        struct tcp_spec s = {.sport = (uint16_t)(1024 + (r >> 48) % 60000),
                             .dport = B_PORT,
                             .seq = (uint32_t)(r ^ (r >> 29)),
                             .flags = TH_SYN,
                             .win = 64240,
                             .opt = &o};
        uint32_t len = craft_tcp(fbuf, &x, B->mac, B->ip.s_addr, &s);
        if (simnet_inject(w.net, B->dev, fbuf, len) == 0)
            flood_sent++;
    }
}

/* One step of virtual time with the flood going on. */
static void step(bool flooding)
{
    if (flooding)
        flood(syns_step);
    sw_run_for(&w, STEP_NS);
    uint64_t h = heap_stats(B->rt->heap)->bytes_in_use;
    if (h > peak_heap)
        peak_heap = h;
    if (B->in->nconns > peak_conns)
        peak_conns = B->in->nconns;
    if (((struct inet_sock *)ls)->lst->nsyn > peak_nsyn)
        peak_nsyn = ((struct inet_sock *)ls)->lst->nsyn;
}

/* Steps until @t is done or @max_ns pass; false on timeout. */
static bool wait_step(struct sched_task *t, uint64_t max_ns, bool flooding)
{
    uint64_t end = w.now + max_ns;
    while (!sw_done(t) && w.now < end)
        step(flooding);
    return sw_done(t);
}

/* One legitimate client: connect, a message echoed by B, close. Returns
 * the time from connect to accept in ns, or UINT64_MAX when the connect
 * failed or B did not accept within CONNECT_MAX. */
static uint64_t legit_round(int i, bool flooding)
{
    void *cs = sw_socket(C, SOCK_STREAM);
    uint64_t t0 = w.now;
    struct sched_task *con = sw_connect(C, cs, B, B_PORT);
    if (!wait_step(con, CONNECT_MAX, flooding)) {
        sw_close(C, cs); /* cancels the connect */
        sw_result(C, con);
        return UINT64_MAX;
    }
    demi_qresult_t qr = sw_result(C, con);
    if (qr.qr_opcode != DEMI_OPC_CONNECT) {
        sw_close(C, cs);
        return UINT64_MAX;
    }
    /* Connected at C, but is it at B? (A half-open entry recycled before
     * C's ACK came gets that ACK reset.) */
    if (!wait_step(acc, t0 + CONNECT_MAX - w.now, flooding)) {
        sw_close(C, cs);
        return UINT64_MAX;
    }
    uint64_t lat = w.now - t0;
    qr = sw_result(B, acc);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_ACCEPT);
    CHECK_EQ(qr.qr_value.ares.addr.sin_addr.s_addr, C->ip.s_addr);
    void *ss = sw_accepted(B, &qr);
    acc = sw_accept(B, ls);

    demi_sgarray_t m = sw_sga(C, MSG_LEN, (uint64_t)i, 0);
    struct sched_task *p = sw_push(C, cs, &m);
    sw_free(C, &m);
    size_t got = 0;
    while (got < MSG_LEN) {
        struct sched_task *r = sw_pop(B, ss);
        CHECK(wait_step(r, 5 * SEC, flooding));
        qr = sw_result(B, r);
        CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
        CHECK(sw_check(&qr.qr_value.sga, (uint64_t)i, got));
        for (uint32_t s = 0; s < qr.qr_value.sga.sga_numsegs; s++)
            got += qr.qr_value.sga.sga_segs[s].sgaseg_len;
        struct sched_task *e = sw_push(B, ss, &qr.qr_value.sga);
        sw_free(B, &qr.qr_value.sga);
        CHECK(wait_step(e, 5 * SEC, flooding));
        CHECK_EQ(sw_result(B, e).qr_opcode, DEMI_OPC_PUSH);
    }
    CHECK(wait_step(p, 5 * SEC, flooding));
    CHECK_EQ(sw_result(C, p).qr_opcode, DEMI_OPC_PUSH);
    size_t back = 0;
    while (back < MSG_LEN) {
        struct sched_task *r = sw_pop(C, cs);
        CHECK(wait_step(r, 5 * SEC, flooding));
        qr = sw_result(C, r);
        CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
        CHECK(sw_check(&qr.qr_value.sga, (uint64_t)i, back));
        for (uint32_t s = 0; s < qr.qr_value.sga.sga_numsegs; s++)
            back += qr.qr_value.sga.sga_segs[s].sgaseg_len;
        sw_free(C, &qr.qr_value.sga);
    }
    sw_close(C, cs);
    sw_close(B, ss);
    return lat;
}

static void tweak_flood(struct inet_config *ic)
{
    ic->tcp_syncookies = flood_mode;
}

/* A flood of @rate SYNs per millisecond against B with tcp_syncookies
 * @mode while C makes @legit connects; @require: at least 99% of them must
 * complete within 1 s (else the figures are only reported). */
static void test_flood(uint32_t mode, uint32_t rate, int legit, bool require)
{
    flood_mode = mode;
    syns_step = rate / STEPS_MS;
    flood_sent = peak_heap = peak_conns = peak_nsyn = 0;
    sw_init(&w, 11, getenv("DEMI_PCAP"));
    B = sw_node(&w, tweak_flood);
    C = sw_node(&w, NULL);
    struct sim_link lk = {.delay_ns = 100 * USEC};
    sw_link(&w, B, &lk);
    sw_link(&w, C, &lk);
    ls = sw_socket(B, SOCK_STREAM);
    sw_bind(B, ls, B_PORT);
    sw_listen(B, ls, BACKLOG);
    acc = sw_accept(B, ls);

    /* 100 ms of flood first: the SYN queue is full by then. */
    for (int i = 0; i < 100 * STEPS_MS; i++)
        step(true);
    int ok = 0, fast = 0;
    uint64_t worst = 0;
    for (int i = 0; i < legit; i++) {
        uint64_t lat = legit_round(i, true);
        if (lat == UINT64_MAX)
            continue;
        ok++;
        if (lat <= 1 * SEC)
            fast++;
        if (lat > worst)
            worst = lat;
        for (int k = 0; k < 20 * STEPS_MS; k++)
            step(true);
    }
    const struct inet_stats *st = inet_stats(B->in);
    printf("flood (tcp_syncookies %u, %u SYNs/ms): %llu SYNs over %.2f s; %d/%d connects succeeded, %d within 1 s, "
           "worst %.2f ms; "
           "peak %llu connections (%llu half-open), %llu heap bytes; %llu SYNs dropped\n",
           mode, rate, (unsigned long long)flood_sent, (double)(w.now - 1 * SEC) / 1e9, ok, legit, fast,
           (double)worst / 1e6, (unsigned long long)peak_conns, (unsigned long long)peak_nsyn,
           (unsigned long long)peak_heap, (unsigned long long)st->tcp_syn_dropped);
    printf("  cookies sent %llu, validated %llu, failed %llu; half-open evicted %llu; ARP requests %llu\n",
           (unsigned long long)st->tcp_syncookies_sent, (unsigned long long)st->tcp_syncookies_ok,
           (unsigned long long)st->tcp_syncookies_failed, (unsigned long long)st->tcp_syn_evicted,
           (unsigned long long)st->arp_req_sent);
    /* RFC 4987's goal, and issue 11's: >= 99% of legitimate connects
     * within 1 s during the flood. */
    if (require)
        CHECK(fast >= legit * 99 / 100);
    /* Bounded state: the SYN queue, and the legitimate connections (some
     * in TIME_WAIT). */
    CHECK(peak_nsyn <= BACKLOG);
    CHECK(peak_conns <= BACKLOG + (uint64_t)legit + 1);
    CHECK(peak_heap < 64u << 20);

    /* The flood stops: whatever it left behind goes away. */
    sw_run_for(&w, 120 * SEC);
    CHECK_EQ(B->in->nconns, 0);
    sw_close(B, ls);
    sw_run_for(&w, 120 * SEC);
    sw_result(B, acc); /* failed by the close */
    CHECK_EQ(B->in->nconns, 0);
    CHECK_EQ(C->in->nconns, 0);
    CHECK_EQ(heap_stats(B->rt->heap)->bytes_in_use, 0);
    sw_fini(&w);
}

/* ---- crafted handshakes: a fake peer X against node B ---- */

static struct capture cap;
static struct craft_host X = {{0x02, 0, 0, 0, 0, 0x99}, 0};
static struct inet_arp x_arp;
static uint32_t cookie_mode;

static void tweak_x(struct inet_config *ic)
{
    ic->arp_static[0] = x_arp;
    ic->n_arp_static = 1;
    ic->tcp_syncookies = cookie_mode;
}

static const struct inet_stats *bst(void)
{
    return inet_stats(B->in);
}

/* A segment from X to B's port 80; B's answers are then in the capture. */
static void x_send(uint16_t port, uint8_t flags, uint32_t seq, uint32_t ack, uint16_t win, const struct tcp_optbuf *o,
                   const void *data, uint32_t dlen)
{
    struct tcp_spec s = {.sport = port,
                         .dport = B_PORT,
                         .seq = seq,
                         .ack = ack,
                         .flags = flags,
                         .win = win,
                         .opt = o && o->n ? o : NULL,
                         .data = data,
                         .dlen = dlen};
    uint32_t len = craft_tcp(fbuf, &X, B->mac, B->ip.s_addr, &s);
    cap_clear(&cap);
    CHECK_EQ(simnet_inject(w.net, B->dev, fbuf, len), 0);
    sw_run(&w, NULL, NULL, 0);
}

/* B's one segment to X's @port. */
static struct tcp_view b_seg(uint16_t port)
{
    for (int i = 0; i < cap.n; i++) {
        struct tcp_view v;
        if (craft_tcp_view(cap.frame[i], cap.len[i], &v) && v.dport == port && v.ip.dst == X.ip)
            return v;
    }
    fprintf(stderr, "no segment from B to port %u (%d frames)\n", port, cap.n);
    exit(1);
}

enum { S_MSS = 1, S_WS = 2, S_SACK = 4, S_TS = 8 };

/* X's SYN from @port with @opts (MSS @mss); returns B's SYN-ACK, which
 * must carry a cookie: B keeps no connection for it. */
static struct tcp_view x_syn(uint16_t port, uint32_t iss, unsigned opts, uint16_t mss, uint32_t tsval)
{
    struct tcp_optbuf o = {.n = 0};
    if (opts & S_MSS)
        opt_mss(&o, mss);
    if (opts & S_SACK)
        opt_sack_ok(&o);
    if (opts & S_TS)
        opt_ts(&o, tsval, 0);
    if (opts & S_WS)
        opt_ws(&o, 7);
    uint32_t nconns = B->in->nconns;
    uint64_t sent = bst()->tcp_syncookies_sent;
    x_send(port, TH_SYN, iss, 0, 65535, &o, NULL, 0);
    struct tcp_view v = b_seg(port);
    CHECK_EQ(v.flags, TH_SYN | TH_ACK);
    CHECK_EQ(v.ack, iss + 1);
    CHECK_EQ(B->in->nconns, nconns);
    CHECK_EQ(bst()->tcp_syncookies_sent, sent + 1);
    return v;
}

/* The final ACK for SYN-ACK @sa, with @dlen bytes; @ts: echo its TSval. */
static void x_ack(uint16_t port, uint32_t iss, const struct tcp_view *sa, uint32_t ack_delta, uint16_t win, bool ts,
                  uint32_t tsecr_xor, uint32_t dlen)
{
    static uint8_t data[1400];
    for (uint32_t i = 0; i < dlen; i++)
        data[i] = sw_byte(port, i);
    struct tcp_optbuf o = {.n = 0};
    if (ts)
        opt_ts(&o, 2000, sa->tsval ^ tsecr_xor);
    x_send(port, TH_ACK | (dlen ? TH_PSH : 0), iss + 1, sa->seq + 1 + ack_delta, win, &o, data, dlen);
}

/* A forged final ACK: B resets it (RFC 9293 3.10.7.2) and builds nothing. */
static void expect_refused(uint16_t port, uint32_t ack, bool counted)
{
    struct tcp_view v = b_seg(port);
    CHECK_EQ(v.flags, TH_RST);
    CHECK_EQ(v.seq, ack);
    (void)counted;
}

static void test_crafted(void)
{
    X.ip = htonl(0x0a000032u); /* 10.0.0.50 */
    x_arp.ip.s_addr = X.ip;
    memcpy(x_arp.mac, X.mac, 6);
    cookie_mode = 2; /* always: every SYN gets a cookie */
    sw_init(&w, 12, getenv("DEMI_PCAP"));
    B = sw_node(&w, tweak_x);
    cap_attach(&w, &cap, B->dev);
    ls = sw_socket(B, SOCK_STREAM);
    sw_bind(B, ls, B_PORT);
    sw_listen(B, ls, BACKLOG);
    acc = sw_accept(B, ls);
    uint8_t b_ws = 0; /* the shift B offers for its 4 MiB window */
    while (b_ws < 14 && ((4u << 20) >> b_ws) > 65535)
        b_ws++;

    /* Every option: MSS 1300, SACK, timestamps, window scale 7. */
    uint32_t iss = 0x12345678;
    struct tcp_view sa = x_syn(1001, iss, S_MSS | S_WS | S_SACK | S_TS, 1300, 1000);
    CHECK(sa.has_mss && sa.mss == 1460);
    CHECK(sa.sack_ok && sa.has_ts && sa.has_ws);
    CHECK_EQ(sa.ws, b_ws);
    CHECK_EQ(sa.tsecr, 1000);
    CHECK_EQ(sa.tsval & 63, 7 | 16); /* the peer's shift and SACK, for the ACK to bring back */
    CHECK(sa.tsval <= (uint32_t)(w.now / MSEC));
    x_ack(1001, iss, &sa, 0, 1024, true, 0, 100);
    CHECK_EQ(bst()->tcp_syncookies_ok, 1);
    CHECK_EQ(B->in->nconns, 1);
    CHECK(sw_done(acc));
    demi_qresult_t qr = sw_result(B, acc);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_ACCEPT);
    CHECK_EQ(qr.qr_value.ares.addr.sin_addr.s_addr, X.ip);
    CHECK_EQ(ntohs(qr.qr_value.ares.addr.sin_port), 1001);
    void *ss = sw_accepted(B, &qr);
    acc = sw_accept(B, ls);
    struct tcp_conn_stats cs = sw_tcp_stats(B, ss);
    CHECK_EQ(cs.state, TCPS_ESTABLISHED);
    CHECK_EQ(cs.mss, 1300);
    CHECK(cs.sack_ok && cs.ts_ok && cs.wscale_ok);
    CHECK_EQ(cs.snd_wscale, 7);
    CHECK_EQ(cs.rcv_wscale, b_ws);
    CHECK_EQ(cs.snd_wnd, 1024u << 7);
    /* X's 100 bytes arrived and are acknowledged. */
    struct sched_task *r = sw_pop(B, ss);
    sw_run(&w, NULL, NULL, 0);
    CHECK(sw_done(r));
    qr = sw_result(B, r);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
    CHECK_EQ(qr.qr_value.sga.sga_segs[0].sgaseg_len, 100);
    CHECK(sw_check(&qr.qr_value.sga, 1001, 0));
    sw_free(B, &qr.qr_value.sga);
    /* B's data to X: full segments of the MSS from the cookie, less the
     * timestamp option, and its window scaled by its shift. */
    cap_clear(&cap);
    demi_sgarray_t m = sw_sga(B, 5000, 77, 0);
    struct sched_task *p = sw_push(B, ss, &m);
    sw_free(B, &m);
    sw_run(&w, NULL, NULL, 0);
    uint32_t maxseg = 0, segs = 0;
    for (int i = 0; i < cap.n; i++) {
        struct tcp_view v;
        if (!craft_tcp_view(cap.frame[i], cap.len[i], &v) || v.dport != 1001)
            continue;
        CHECK_EQ(v.ack, iss + 1 + 100);
        CHECK(v.has_ts && v.tsecr == 2000);
        CHECK_EQ(v.win, (uint16_t)MIN(((4u << 20) - 0) >> b_ws, 65535u));
        if (v.dlen > maxseg)
            maxseg = v.dlen;
        if (v.dlen)
            segs++;
    }
    CHECK_EQ(maxseg, 1300 - 12);
    CHECK(segs >= 3);
    /* SACK: X acknowledges the first segment and SACKs the third. */
    struct tcp_optbuf o = {.n = 0};
    opt_ts(&o, 2001, sa.tsval);
    uint32_t e[2] = {sa.seq + 1 + 2 * 1288, sa.seq + 1 + 3 * 1288};
    opt_sack(&o, e, 1);
    x_send(1001, TH_ACK, iss + 101, sa.seq + 1 + 1288, 1024, &o, NULL, 0);
    CHECK_EQ(sw_tcp_stats(B, ss).snd_wnd, 1024u << 7);
    /* X's out-of-order bytes get a SACK block back. */
    static uint8_t d[100];
    o.n = 0;
    opt_ts(&o, 2002, sa.tsval);
    x_send(1001, TH_ACK, iss + 1 + 200, sa.seq + 1 + 1288, 1024, &o, d, 100);
    struct tcp_view sv = b_seg(1001);
    CHECK_EQ(sv.ack, iss + 101);
    CHECK_EQ(sv.nsack, 1);
    CHECK_EQ(sv.sack[0][0], iss + 1 + 200);
    CHECK_EQ(sv.sack[0][1], iss + 1 + 300);
    sw_close(B, ss); /* an abortive close: X's bytes were never read */
    sw_run(&w, NULL, NULL, 0);
    (void)p;

    /* No timestamps: the SYN-ACK offers neither window scale nor SACK,
     * whatever the SYN asked; MSS 1000 is rounded down to 536. */
    iss = 0xfffffff0u; /* the peer's sequence numbers wrap */
    sa = x_syn(1002, iss, S_MSS | S_WS | S_SACK, 1000, 0);
    CHECK(sa.has_mss && !sa.has_ws && !sa.sack_ok && !sa.has_ts);
    x_ack(1002, iss, &sa, 0, 4096, false, 0, 0);
    CHECK_EQ(bst()->tcp_syncookies_ok, 2);
    qr = sw_result(B, acc);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_ACCEPT);
    ss = sw_accepted(B, &qr);
    acc = sw_accept(B, ls);
    cs = sw_tcp_stats(B, ss);
    CHECK_EQ(cs.state, TCPS_ESTABLISHED);
    CHECK_EQ(cs.mss, 536);
    CHECK(!cs.sack_ok && !cs.ts_ok && !cs.wscale_ok);
    CHECK_EQ(cs.snd_wnd, 4096);
    sw_close(B, ss);
    sw_run(&w, NULL, NULL, 0);
    x_send(1002, TH_RST, iss + 1, 0, 0, NULL, NULL, 0); /* X goes away */

    /* Forged ACKs: each is reset, counted, and builds nothing. */
    uint64_t failed = bst()->tcp_syncookies_failed;
    uint32_t nconns = B->in->nconns;
    iss = 5000;
    sa = x_syn(1003, iss, S_MSS | S_TS | S_WS, 1460, 3000);
    x_ack(1003, iss, &sa, 1, 1024, true, 0, 0); /* the cookie plus one */
    expect_refused(1003, sa.seq + 2, true);
    x_ack(1003, iss, &sa, 1u << 20, 1024, true, 0, 0); /* a bit of the hash flipped */
    expect_refused(1003, sa.seq + 1 + (1u << 20), true);
    x_ack(1003, iss + 7, &sa, 0, 1024, true, 0, 0); /* another ISN of the peer */
    expect_refused(1003, sa.seq + 1, true);
    x_ack(1003, iss, &sa, 0, 1024, true, 32, 0); /* a TSecr no cookie's SYN-ACK had */
    expect_refused(1003, sa.seq + 1, true);
    x_ack(1004, iss, &sa, 0, 1024, true, 0, 0); /* another port: another 4-tuple */
    expect_refused(1004, sa.seq + 1, true);
    CHECK_EQ(bst()->tcp_syncookies_failed, failed + 5);
    CHECK_EQ(bst()->tcp_syncookies_ok, 2);
    CHECK_EQ(B->in->nconns, nconns);
    CHECK(!sw_done(acc));
    /* The right ACK still works after all that. */
    x_ack(1003, iss, &sa, 0, 1024, true, 0, 0);
    CHECK_EQ(bst()->tcp_syncookies_ok, 3);
    qr = sw_result(B, acc);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_ACCEPT);
    ss = sw_accepted(B, &qr);
    acc = sw_accept(B, ls);
    CHECK_EQ(sw_tcp_stats(B, ss).snd_wscale, 7);
    CHECK(!sw_tcp_stats(B, ss).sack_ok);
    sw_close(B, ss);
    sw_run(&w, NULL, NULL, 0);
    x_send(1003, TH_RST, iss + 1, 0, 0, NULL, NULL, 0);

    /* A cookie is good for at least one period of its counter (64 s) and
     * at most two. */
    iss = 9000;
    sa = x_syn(1005, iss, S_MSS, 1460, 0);
    struct tcp_view sb = x_syn(1006, iss, S_MSS, 1460, 0);
    sw_run_for(&w, 60 * SEC);
    x_ack(1005, iss, &sa, 0, 1024, false, 0, 0);
    CHECK_EQ(bst()->tcp_syncookies_ok, 4);
    qr = sw_result(B, acc);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_ACCEPT);
    ss = sw_accepted(B, &qr);
    acc = sw_accept(B, ls);
    sw_close(B, ss);
    sw_run(&w, NULL, NULL, 0);
    x_send(1005, TH_RST, iss + 1, 0, 0, NULL, NULL, 0);
    sw_run_for(&w, 70 * SEC);         /* 130 s: stale */
    x_syn(1007, iss, S_MSS, 1460, 0); /* a fresh cookie: the check is not skipped */
    failed = bst()->tcp_syncookies_failed;
    x_ack(1006, iss, &sb, 0, 1024, false, 0, 0);
    expect_refused(1006, sb.seq + 1, true);
    CHECK_EQ(bst()->tcp_syncookies_failed, failed + 1);
    CHECK(!sw_done(acc));

    sw_close(B, ls);
    sw_run_for(&w, 1 * SEC);
    sw_result(B, acc);
    CHECK_EQ(B->in->nconns, 0);
    CHECK_EQ(heap_stats(B->rt->heap)->bytes_in_use, 0);
    sw_fini(&w);
}

/* With tcp_syncookies: 1, an ACK to a listener that sent no cookie lately
 * is never taken for one: reset, without a cookie check. A SYN queue that
 * fills then switches cookies on. With 0, the oldest half-open entry makes
 * room for a new SYN. */
static void test_modes(void)
{
    cookie_mode = 1;
    sw_init(&w, 13, getenv("DEMI_PCAP"));
    B = sw_node(&w, tweak_x);
    cap_attach(&w, &cap, B->dev);
    ls = sw_socket(B, SOCK_STREAM);
    sw_bind(B, ls, B_PORT);
    sw_listen(B, ls, 4);
    x_send(2000, TH_ACK, 1, 12345, 1024, NULL, NULL, 0);
    expect_refused(2000, 12345, false);
    CHECK_EQ(bst()->tcp_syncookies_failed, 0);
    /* Four SYNs fill the queue with half-open entries, the fifth gets a cookie. */
    struct tcp_optbuf o = {.n = 0};
    opt_mss(&o, 1460);
    for (uint16_t i = 0; i < 4; i++) {
        x_send((uint16_t)(3000 + i), TH_SYN, 100, 0, 1024, &o, NULL, 0);
        CHECK_EQ(b_seg((uint16_t)(3000 + i)).flags, TH_SYN | TH_ACK);
    }
    CHECK_EQ(B->in->nconns, 4);
    CHECK_EQ(bst()->tcp_syncookies_sent, 0);
    struct tcp_view sa = x_syn(3004, 100, S_MSS, 1460, 0);
    x_ack(3004, 100, &sa, 0, 1024, false, 0, 0);
    CHECK_EQ(bst()->tcp_syncookies_ok, 1);
    CHECK_EQ(B->in->nconns, 5);
    x_send(2001, TH_ACK, 1, 12345, 1024, NULL, NULL, 0);
    expect_refused(2001, 12345, true);
    CHECK_EQ(bst()->tcp_syncookies_failed, 1);
    /* The half-open entries time out after two SYN-ACK retries (7 s)
     * while the queue is at least half full, not five (63 s): the last
     * one, alone in the queue, gets all five. */
    sw_run_for(&w, 8 * SEC);
    CHECK_EQ(((struct inet_sock *)ls)->lst->nsyn, 1);
    sw_run_for(&w, 60 * SEC);
    CHECK_EQ(((struct inet_sock *)ls)->lst->nsyn, 0);
    CHECK_EQ(B->in->nconns, 1);
    sw_close(B, ls);
    sw_run_for(&w, 1 * SEC);
    CHECK_EQ(B->in->nconns, 0);
    sw_fini(&w);

    cookie_mode = 0;
    sw_init(&w, 14, getenv("DEMI_PCAP"));
    B = sw_node(&w, tweak_x);
    cap_attach(&w, &cap, B->dev);
    ls = sw_socket(B, SOCK_STREAM);
    sw_bind(B, ls, B_PORT);
    sw_listen(B, ls, 4);
    for (uint16_t i = 0; i < 6; i++) {
        x_send((uint16_t)(3000 + i), TH_SYN, 100, 0, 1024, &o, NULL, 0);
        CHECK_EQ(b_seg((uint16_t)(3000 + i)).flags, TH_SYN | TH_ACK);
        sw_run_for(&w, 10 * MSEC);
    }
    CHECK_EQ(B->in->nconns, 4);
    CHECK_EQ(bst()->tcp_syn_evicted, 2);
    CHECK_EQ(bst()->tcp_syncookies_sent, 0);
    /* The two oldest went: their ACKs are reset, the newest's completes. */
    acc = sw_accept(B, ls);
    struct tcp_view v = {0};
    x_send(3000, TH_ACK, 101, 1, 1024, NULL, NULL, 0);
    v = b_seg(3000);
    CHECK_EQ(v.flags, TH_RST);
    sw_close(B, ls);
    sw_run_for(&w, 1 * SEC);
    sw_result(B, acc);
    CHECK_EQ(B->in->nconns, 0);
    CHECK_EQ(heap_stats(B->rt->heap)->bytes_in_use, 0);
    sw_fini(&w);
}

/* The config key: 1 by default, 0 to 2 taken, 3 refused naming the key,
 * and the stack takes what the config says. */
static void test_config_key(void)
{
    struct config c;
    char err[256];
    config_defaults(&c);
    CHECK_EQ(c.tcp_syncookies, 1);
    const char *y = "inetstack_config:\n  tcp_syncookies: 2\n";
    CHECK_EQ(config_parse_yaml(&c, y, strlen(y), err, sizeof(err)), 0);
    CHECK_EQ(c.tcp_syncookies, 2);
    CHECK_EQ(config_validate(&c, err, sizeof(err)), 0);
    struct inet_config ic;
    inetos_config(&ic, &c);
    CHECK_EQ(ic.tcp_syncookies, 2);
    c.tcp_syncookies = 3;
    CHECK_EQ(config_validate(&c, err, sizeof(err)), EINVAL);
    CHECK(strstr(err, "tcp_syncookies") != NULL);
    config_free(&c);
}

static bool flow_pred(void *arg)
{
    return flow_step(arg);
}

/* An established connection's bulk transfer from B to C over 1 Gbit/s
 * links during a flood of @rate SYNs per millisecond (B's cookie SYN-ACKs
 * and ARP requests share its link with the transfer): returns the
 * transfer's rate in Mbit/s. CPU time is not modelled in the sim. */
static double flood_throughput(uint32_t rate)
{
    enum { SIZE = 16 << 20 };
    flood_mode = 1;
    syns_step = rate / STEPS_MS;
    sw_init(&w, 15, getenv("DEMI_PCAP"));
    B = sw_node(&w, tweak_flood);
    C = sw_node(&w, tweak_flood);
    struct sim_link lk = {.delay_ns = 100 * USEC, .rate_bps = 1000000000ull};
    sw_link(&w, B, &lk);
    sw_link(&w, C, &lk);
    ls = sw_socket(B, SOCK_STREAM);
    sw_bind(B, ls, B_PORT);
    sw_listen(B, ls, BACKLOG);
    void *cq, *bq;
    sw_pair(&w, C, B, 90, &cq, &bq);
    for (int i = 0; i < 100 * STEPS_MS; i++)
        step(rate > 0);
    static struct flow f;
    flow_init(&f, B, bq, C, cq, SIZE, 5);
    uint64_t t0 = w.now;
    while (!f.done) {
        CHECK(w.now - t0 < 60 * SEC);
        if (rate)
            flood(syns_step);
        sw_run(&w, flow_pred, &f, STEP_NS);
    }
    double mbps = (double)SIZE * 8 / ((double)(w.now - t0) / 1e9) / 1e6;
    sw_close(C, cq);
    sw_close(B, bq);
    sw_close(B, ls);
    sw_run_for(&w, 1 * SEC);
    sw_fini(&w);
    return mbps;
}

int main(void)
{
    test_config_key();
    test_crafted();
    test_modes();
    /* 20 SYNs/ms is the rate hping3 --flood reached on the wire; 500/ms
     * puts more than a SYN queue's worth of SYNs in each round trip of
     * the legitimate client (200 us), which defeats recycling half-open
     * entries but not cookies. */
    test_flood(1, 20, LEGIT, true);
    test_flood(1, 500, 30, true);
    test_flood(0, 20, LEGIT, false);
    test_flood(0, 500, 2, false);

    /* Issue 11's other goal: established connections lose no more than
     * 20% of their throughput to the flood (here, to B's answers to it). */
    double base = flood_throughput(0), at20 = flood_throughput(20), at500 = flood_throughput(500);
    printf("bulk B->C over 1 Gbit/s: %.0f Mbit/s without a flood, %.0f at 20 SYNs/ms (%.1f%%), %.0f at 500 SYNs/ms "
           "(%.1f%%)\n",
           base, at20, 100 * at20 / base, at500, 100 * at500 / base);
    CHECK(at20 >= 0.8 * base);
    printf("tcp syncookie: ok\n");
    return 0;
}
