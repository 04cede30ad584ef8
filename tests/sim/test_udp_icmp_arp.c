/*
 * UDP, ICMP and ARP on dev/sim. Three real stacks (B at 10.0.0.1, A and C)
 * exchange UDP datagrams through the libOS ops; a fake host X (10.0.0.50,
 * known to B by a static ARP entry) and a few other fake hosts exist only
 * as frames this test injects into B, whose answers a tap records.
 *
 * Covered: pushto/pop byte-exact with the sender's address in sga_addr;
 * bind to INADDR_ANY and port 0 (getsockname gives the port), implicit
 * binding, bind errors; EMSGSIZE above 65507 bytes; connected UDP hearing only
 * its peer; ICMP port unreachable (type 3 code 3, quoting the IP header
 * and 8 bytes), rate-limited and never for broadcasts; zero and wrong UDP
 * checksums, bad UDP lengths; ICMP echo replies (small, odd, 1200 bytes,
 * the MTU's worth, larger than the MTU in fragments, after IP options) and
 * bad ICMP;
 * ARP replies and learning (RFC 826), a static entry that stays, packets
 * held while resolving, malformed ARP, the cache's TTL and the unicast
 * confirmation of a stale entry; and an unreachable
 * destination: arp_retries + 1 requests spaced by arp_timeout, then
 * EHOSTUNREACH for datagrams and for a TCP connect. IPv4 fragments: large
 * datagrams leave in well-formed fragments and come back whole; crafted
 * fragments out of order, duplicated, overlapping, malformed, never
 * completed (timed out) or too many at once.
 */
#include "craft.h"
#include "inet/inet_int.h"

static struct simworld w;
static struct simnode *A, *B, *C;
static struct capture cap;
static struct craft_host X = {{0x02, 0, 0, 0, 0, 0x99}, 0};
static struct inet_arp x_arp;
static uint8_t fbuf[CRAFT_FRAME_MAX];
static struct inet_stats s0;
static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
static const uint8_t zero6[6];
static uint16_t closed_port; /* where a socket bound to port 0 was */

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

static uint32_t ip4(uint32_t last)
{
    return htonl(0x0a000000u | last);
}

static void settle(void)
{
    sw_run(&w, NULL, NULL, 0);
}

static void inject(const uint8_t *f, uint32_t len)
{
    cap_clear(&cap);
    CHECK_EQ(simnet_inject(w.net, B->dev, f, len), 0);
    settle();
}

static void expect_silence(void)
{
    CHECK_EQ(cap.n, 0);
}

static void *udp_socket(struct simnode *n, uint16_t port)
{
    void *q = sw_socket(n, SOCK_DGRAM);
    sw_bind(n, q, port);
    return q;
}

static struct sockaddr_in sockname(struct simnode *n, void *q)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    CHECK_EQ(inet_getsockname(n->in, q, &a), 0);
    CHECK_EQ(a.sin_family, AF_INET);
    return a;
}

/* A push to any address; returns the op's error (0: @t is B's to wait on). */
static int pushto_addr(struct simnode *n, void *q, const demi_sgarray_t *sga, uint32_t ip, uint16_t port,
                       struct sched_task **t)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = {ip}};
    *t = sched_alloc(&n->rt->sched, NULL, NULL);
    CHECK(*t);
    (*t)->qd = 0;
    int e = inet_push(n->in, q, sga, ip ? &a : NULL, *t);
    if (e) {
        sched_free(&n->rt->sched, *t);
        *t = NULL;
    }
    return e;
}

/* @len pattern bytes from @from's @q to @to's port; @to's pop of @rq gets
 * them byte-exact, from @from's address and @sport. */
static void udp_exchange(struct simnode *from, void *q, struct simnode *to, void *rq, uint16_t port, size_t len,
                         uint16_t sport)
{
    uint64_t seed = len * 7 + port;
    demi_sgarray_t s = sw_sga(from, len, seed, 0);
    struct sched_task *t = sw_pushto(from, q, &s, to, port);
    sw_free(from, &s);
    demi_qresult_t qr = sw_wait(&w, to, sw_pop(to, rq), SEC);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
    size_t got = 0;
    for (uint32_t i = 0; i < qr.qr_value.sga.sga_numsegs; i++)
        got += qr.qr_value.sga.sga_segs[i].sgaseg_len;
    CHECK_EQ(got, len);
    CHECK(sw_check(&qr.qr_value.sga, seed, 0));
    CHECK_EQ(qr.qr_value.sga.sga_addr.sin_family, AF_INET);
    CHECK_EQ(qr.qr_value.sga.sga_addr.sin_addr.s_addr, from->ip.s_addr);
    CHECK_EQ(ntohs(qr.qr_value.sga.sga_addr.sin_port), sport);
    sw_free(to, &qr.qr_value.sga);
    qr = sw_wait(&w, from, t, SEC);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_PUSH);
}

/* ---- UDP between real stacks ---- */

static void test_udp_basic(void)
{
    /* INADDR_ANY, port 0: an ephemeral port, reported by getsockname. */
    void *bq = udp_socket(B, 0);
    struct sockaddr_in a = sockname(B, bq);
    CHECK_EQ(a.sin_addr.s_addr, INADDR_ANY);
    uint16_t bport = ntohs(a.sin_port);
    CHECK(bport >= EPHEMERAL_LO);
    void *aq = udp_socket(A, 5000);
    static const size_t sizes[] = {1, 100, 1000, 1472};
    for (unsigned i = 0; i < ARRAY_SIZE(sizes); i++) {
        udp_exchange(A, aq, B, bq, bport, sizes[i], 5000);
        udp_exchange(B, bq, A, aq, 5000, sizes[i], bport);
    }
    /* Datagrams queued before any pop keep their order and boundaries. */
    for (size_t i = 1; i <= 5; i++) {
        demi_sgarray_t s = sw_sga(A, i * 11, i, 0);
        sw_wait(&w, A, sw_pushto(A, aq, &s, B, bport), SEC);
        sw_free(A, &s);
    }
    for (size_t i = 1; i <= 5; i++) {
        demi_qresult_t qr = sw_wait(&w, B, sw_pop(B, bq), SEC);
        CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
        CHECK_EQ(qr.qr_value.sga.sga_numsegs, 1);
        CHECK_EQ(qr.qr_value.sga.sga_segs[0].sgaseg_len, i * 11);
        CHECK(sw_check(&qr.qr_value.sga, i, 0));
        sw_free(B, &qr.qr_value.sga);
    }
    /* One byte over the largest IPv4 datagram: EMSGSIZE from the push itself. */
    demi_sgarray_t big = sw_sga(B, 65508, 1, 0);
    struct sched_task *t;
    CHECK_EQ(pushto_addr(B, bq, &big, A->ip.s_addr, 5000, &t), EMSGSIZE);
    sw_free(B, &big);
    /* An unbound socket gets a port when it first sends. */
    void *fresh = sw_socket(A, SOCK_DGRAM);
    demi_sgarray_t s = sw_sga(A, 64, 3, 0);
    sw_wait(&w, A, sw_pushto(A, fresh, &s, B, bport), SEC);
    sw_free(A, &s);
    uint16_t fport = ntohs(sockname(A, fresh).sin_port);
    CHECK(fport >= EPHEMERAL_LO);
    demi_qresult_t qr = sw_wait(&w, B, sw_pop(B, bq), SEC);
    CHECK_EQ(ntohs(qr.qr_value.sga.sga_addr.sin_port), fport);
    sw_free(B, &qr.qr_value.sga);
    /* Bind errors; binding to our own address is fine. */
    void *q2 = sw_socket(B, SOCK_DGRAM);
    struct sockaddr_in ba = {.sin_family = AF_INET, .sin_port = htons(bport)};
    CHECK_EQ(inet_bind(B->in, q2, &ba), EADDRINUSE);
    ba.sin_port = htons(5555);
    ba.sin_addr.s_addr = ip4(9);
    CHECK_EQ(inet_bind(B->in, q2, &ba), EADDRNOTAVAIL);
    ba.sin_addr = B->ip;
    CHECK_EQ(inet_bind(B->in, q2, &ba), 0);
    CHECK_EQ(sockname(B, q2).sin_addr.s_addr, B->ip.s_addr);
    udp_exchange(A, aq, B, q2, 5555, 200, 5000);
    sw_close(B, q2);
    sw_close(A, fresh);
    sw_close(A, aq);
    sw_close(B, bq);
    closed_port = bport;
    printf("udp: byte-exact both ways, sga_addr, port 0, EMSGSIZE, bind errors\n");
}

static void test_connected_udp(void)
{
    void *uq = udp_socket(B, 6000);
    struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons(5001), .sin_addr = A->ip};
    struct sched_task *t = sched_alloc(&B->rt->sched, NULL, NULL);
    t->qd = 0;
    CHECK_EQ(inet_connect(B->in, uq, &peer, t), 0);
    CHECK(sw_done(t));
    CHECK_EQ(sw_result(B, t).qr_opcode, DEMI_OPC_CONNECT);
    struct sockaddr_in pa;
    CHECK_EQ(inet_getpeername(B->in, uq, &pa), 0);
    CHECK_EQ(pa.sin_addr.s_addr, A->ip.s_addr);
    CHECK_EQ(ntohs(pa.sin_port), 5001);
    void *a1 = udp_socket(A, 5001), *a2 = udp_socket(A, 5002), *c1 = udp_socket(C, 5001);
    snap();
    /* Others (another host, another port of the peer) are not heard. */
    struct sched_task *pop = sw_pop(B, uq);
    demi_sgarray_t s = sw_sga(C, 10, 1, 0);
    sw_wait(&w, C, sw_pushto(C, c1, &s, B, 6000), SEC);
    sw_free(C, &s);
    s = sw_sga(A, 10, 2, 0);
    sw_wait(&w, A, sw_pushto(A, a2, &s, B, 6000), SEC);
    sw_free(A, &s);
    sw_run_for(&w, 10 * MSEC);
    CHECK(!sw_done(pop));
    CHECK_EQ(DELTA(udp_rx_no_port), 2);
    /* The peer is. */
    s = sw_sga(A, 10, 3, 0);
    sw_wait(&w, A, sw_pushto(A, a1, &s, B, 6000), SEC);
    sw_free(A, &s);
    demi_qresult_t qr = sw_wait(&w, B, pop, SEC);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
    CHECK(sw_check(&qr.qr_value.sga, 3, 0));
    CHECK_EQ(qr.qr_value.sga.sga_addr.sin_addr.s_addr, A->ip.s_addr);
    sw_free(B, &qr.qr_value.sga);
    /* A push without an address goes to the peer. */
    s = sw_sga(B, 33, 4, 0);
    CHECK_EQ(pushto_addr(B, uq, &s, 0, 0, &t), 0);
    sw_free(B, &s);
    sw_wait(&w, B, t, SEC);
    qr = sw_wait(&w, A, sw_pop(A, a1), SEC);
    CHECK(sw_check(&qr.qr_value.sga, 4, 0));
    CHECK_EQ(qr.qr_value.sga.sga_addr.sin_addr.s_addr, B->ip.s_addr);
    CHECK_EQ(ntohs(qr.qr_value.sga.sga_addr.sin_port), 6000);
    sw_free(A, &qr.qr_value.sga);
    sw_close(B, uq);
    sw_close(A, a1);
    sw_close(A, a2);
    sw_close(C, c1);
    printf("connected udp: only the peer is heard\n");
}

/* ---- crafted UDP and ICMP from X ---- */

/* The one ICMP message B sent to X; returns its bytes and length. */
static const uint8_t *only_icmp(uint32_t *len)
{
    /* B's one ICMP message to X: one frame, or fragments of one datagram
     * (each within the MTU, in order, contiguous, MF on all but the last),
     * gathered here; its checksum covers the whole message. */
    static uint8_t msg[65536];
    uint32_t at = 0;
    bool more = true;
    uint16_t id = 0;
    CHECK(cap.n >= 1);
    for (int k = 0; k < cap.n; k++) {
        struct ip_view v;
        CHECK(craft_ip_view(cap.frame[k], cap.len[k], &v));
        CHECK(memcmp(v.eth_dst, X.mac, 6) == 0);
        CHECK(memcmp(v.eth_src, B->mac, 6) == 0);
        CHECK_EQ(v.src, B->ip.s_addr);
        CHECK_EQ(v.dst, X.ip);
        CHECK_EQ(v.proto, IPPROTO_ICMP);
        CHECK(v.tlen <= B->in->cfg.mtu);
        CHECK(more); /* nothing after the last fragment */
        if (k == 0)
            id = v.id;
        CHECK_EQ(v.id, id);
        CHECK_EQ((uint32_t)(v.frag & IP_OFFMASK) * 8, at);
        more = (v.frag & IP_MF) != 0;
        CHECK(at + v.l4len <= sizeof(msg));
        memcpy(msg + at, v.l4, v.l4len);
        at += v.l4len;
    }
    CHECK(!more);
    CHECK(at >= 8);
    CHECK_EQ(craft_csum(msg, at, 0), 0);
    *len = at;
    return msg;
}

/* Port unreachable for the datagram in fbuf: type 3 code 3, four zero
 * bytes, then its IP header and first 8 bytes of payload. */
static void expect_unreach(uint32_t iphlen)
{
    uint32_t n;
    const uint8_t *m = only_icmp(&n);
    CHECK_EQ(m[0], 3);
    CHECK_EQ(m[1], 3);
    CHECK(memcmp(m + 4, zero6, 4) == 0);
    CHECK_EQ(n, 8 + iphlen + 8);
    CHECK(memcmp(m + 8, fbuf + ETH_HDR_LEN, iphlen + 8) == 0);
}

static void test_port_unreachable(void)
{
    snap();
    sw_run_for(&w, 2 * MSEC); /* clear of the rate limit */
    uint32_t len = craft_udp(fbuf, &X, B->mac, B->ip.s_addr, 4444, 7777, "hello, port", 11, true);
    inject(fbuf, len);
    expect_unreach(20);
    CHECK_EQ(DELTA(udp_rx_no_port), 1);
    CHECK_EQ(DELTA(icmp_unreach_sent), 1);
    /* Again at once: rate-limited (one a millisecond). */
    inject(fbuf, len);
    expect_silence();
    CHECK_EQ(DELTA(udp_rx_no_port), 2);
    CHECK_EQ(DELTA(icmp_unreach_sent), 1);
    sw_run_for(&w, 1 * MSEC);
    inject(fbuf, len);
    expect_unreach(20);
    /* The port a socket bound to port 0 had is closed with it. */
    sw_run_for(&w, 1 * MSEC);
    len = craft_udp(fbuf, &X, B->mac, B->ip.s_addr, 4444, closed_port, "gone", 4, true);
    inject(fbuf, len);
    expect_unreach(20);
    /* With IP options the quote holds the whole header. */
    sw_run_for(&w, 1 * MSEC);
    len = craft_udp(fbuf, &X, B->mac, B->ip.s_addr, 4444, 7777, "opts", 4, true);
    len = craft_ip_options(fbuf, len, (const uint8_t[]){1, 1, 1, 1, 1, 1, 1, 0}, 8);
    inject(fbuf, len);
    expect_unreach(28);
    /* Never for a datagram to the broadcast address (RFC 1122 3.2.2). */
    sw_run_for(&w, 1 * MSEC);
    len = craft_udp(fbuf, &X, B->mac, 0xffffffffu, 4444, 7777, "all", 3, true);
    inject(fbuf, len);
    expect_silence();
    CHECK_EQ(DELTA(icmp_unreach_sent), 4);
    printf("icmp port unreachable: quoted, rate-limited, not for broadcasts\n");
}

static void test_udp_checksums(void)
{
    void *q = udp_socket(B, 7000);
    struct sched_task *pop = sw_pop(B, q);
    snap();
    /* Checksum 0: the sender computed none (RFC 768); accepted. */
    uint32_t len = craft_udp(fbuf, &X, B->mac, B->ip.s_addr, 4444, 7000, "no checksum", 11, false);
    inject(fbuf, len);
    expect_silence();
    CHECK(sw_done(pop));
    demi_qresult_t qr = sw_result(B, pop);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
    CHECK_EQ(qr.qr_value.sga.sga_segs[0].sgaseg_len, 11);
    CHECK(memcmp(qr.qr_value.sga.sga_segs[0].sgaseg_buf, "no checksum", 11) == 0);
    CHECK_EQ(qr.qr_value.sga.sga_addr.sin_addr.s_addr, X.ip);
    CHECK_EQ(ntohs(qr.qr_value.sga.sga_addr.sin_port), 4444);
    sw_free(B, &qr.qr_value.sga);
    pop = sw_pop(B, q);
    /* A wrong checksum, and a payload bit flipped under a right one. */
    len = craft_udp(fbuf, &X, B->mac, B->ip.s_addr, 4444, 7000, "wrong", 5, true);
    fbuf[ETH_HDR_LEN + 20 + 6] ^= 0x10;
    inject(fbuf, len);
    expect_silence();
    len = craft_udp(fbuf, &X, B->mac, B->ip.s_addr, 4444, 7000, "flipped", 7, true);
    fbuf[len - 1] ^= 0x01;
    inject(fbuf, len);
    expect_silence();
    CHECK_EQ(DELTA(udp_rx_bad_csum), 2);
    /* UDP lengths beyond the IP payload and below the header. */
    static const uint16_t bad_len[] = {8 + 6, 7, 0};
    for (unsigned i = 0; i < ARRAY_SIZE(bad_len); i++) {
        len = craft_udp(fbuf, &X, B->mac, B->ip.s_addr, 4444, 7000, "len", 3, false);
        fbuf[ETH_HDR_LEN + 24] = (uint8_t)(bad_len[i] >> 8);
        fbuf[ETH_HDR_LEN + 25] = (uint8_t)bad_len[i];
        inject(fbuf, len);
        expect_silence();
    }
    CHECK_EQ(DELTA(udp_rx_bad), ARRAY_SIZE(bad_len));
    CHECK(!sw_done(pop));
    /* A UDP length shorter than the IP payload: the rest is not data. */
    len = craft_udp(fbuf, &X, B->mac, B->ip.s_addr, 4444, 7000, "abcdefghij", 10, false);
    fbuf[ETH_HDR_LEN + 25] = 8 + 3;
    inject(fbuf, len);
    CHECK(sw_done(pop));
    qr = sw_result(B, pop);
    CHECK_EQ(qr.qr_value.sga.sga_segs[0].sgaseg_len, 3);
    CHECK(memcmp(qr.qr_value.sga.sga_segs[0].sgaseg_buf, "abc", 3) == 0);
    sw_free(B, &qr.qr_value.sga);
    sw_close(B, q);
    printf("udp checksums: zero accepted, wrong dropped and counted\n");
}

/* An echo request of @n bytes of data from X; B's reply must carry the same
 * identifier, sequence number and data (the first @want bytes of it). */
static void echo(uint16_t id, uint16_t seq, uint32_t n, uint32_t want, const uint8_t *ipopts, uint32_t nopts)
{
    static uint8_t data[CRAFT_FRAME_MAX];
    for (uint32_t i = 0; i < n; i++)
        data[i] = (uint8_t)(i * 7 + seq);
    uint32_t len = craft_icmp(fbuf, &X, B->mac, B->ip.s_addr, 8, 0, id, seq, data, n);
    if (nopts)
        len = craft_ip_options(fbuf, len, ipopts, nopts);
    inject(fbuf, len);
    uint32_t rlen;
    const uint8_t *m = only_icmp(&rlen);
    CHECK_EQ(rlen, 8 + want);
    CHECK_EQ(m[0], 0);
    CHECK_EQ(m[1], 0);
    CHECK_EQ(m[4] << 8 | m[5], id);
    CHECK_EQ(m[6] << 8 | m[7], seq);
    CHECK(memcmp(m + 8, data, want) == 0);
}

static void test_icmp_echo(void)
{
    static const uint8_t opts[8] = {1, 1, 1, 1, 1, 1, 1, 0};
    snap();
    echo(0x1234, 1, 0, 0, NULL, 0);
    echo(0x1234, 2, 56, 56, NULL, 0);
    echo(0x1234, 3, 57, 57, NULL, 0); /* an odd length */
    echo(0xbeef, 4, 1200, 1200, NULL, 0);
    echo(0xbeef, 5, 1472, 1472, NULL, 0); /* the MTU's worth */
    echo(0xbeef, 6, 56, 56, opts, 8);     /* IP options: a plain header back */
    echo(0xbeef, 7, 1200, 1200, opts, 8);
    /* Larger than our MTU (the sender's is larger): all of it comes back
     * (RFC 1122 3.2.2.6), in two fragments, never in a frame too big. */
    echo(0xcafe, 8, 1558, 1558, NULL, 0);
    CHECK_EQ(cap.n, 2);
    CHECK_EQ(DELTA(ip_frag_sent), 2);
    CHECK_EQ(DELTA(icmp_echo_replies), 8);
    CHECK_EQ(simnet_stats(B->dev)->too_big, 0);
    /* A bad checksum, a message shorter than its header: dropped. */
    uint32_t len = craft_icmp(fbuf, &X, B->mac, B->ip.s_addr, 8, 0, 1, 1, "x", 1);
    fbuf[ETH_HDR_LEN + 20 + 2] ^= 0x40;
    inject(fbuf, len);
    expect_silence();
    len = craft_ipv4(fbuf, &X, B->mac, B->ip.s_addr, IPPROTO_ICMP, (const uint8_t[]){8, 0, 0xf7, 0xff}, 4);
    inject(fbuf, len);
    expect_silence();
    CHECK_EQ(DELTA(icmp_rx_bad), 2);
    /* Not answered: other types, and requests to the broadcast address. */
    len = craft_icmp(fbuf, &X, B->mac, B->ip.s_addr, 0, 0, 1, 1, "reply", 5);
    inject(fbuf, len);
    expect_silence();
    len = craft_icmp(fbuf, &X, B->mac, B->ip.s_addr, 13, 0, 1, 1, "timestamp...", 12);
    inject(fbuf, len);
    expect_silence();
    len = craft_icmp(fbuf, &X, bcast, 0xffffffffu, 8, 0, 1, 1, "ping all", 8);
    inject(fbuf, len);
    expect_silence();
    CHECK_EQ(DELTA(icmp_echo_replies), 8);
    CHECK_EQ(DELTA(icmp_rx_bad), 2);
    printf("icmp echo: replies byte-exact, bad ones dropped\n");
}

/* ---- ARP ---- */

struct arp_view {
    const uint8_t *eth_dst;
    uint16_t op;
    const uint8_t *sha, *tha;
    uint32_t spa, tpa;
};

/* Frame @i of the capture: an ARP packet from B, well formed. */
static struct arp_view arp_at(int i)
{
    const uint8_t *f = cap.frame[i];
    CHECK(i < cap.n);
    CHECK_EQ(cap.len[i], 60);
    CHECK(memcmp(f + 6, B->mac, 6) == 0);
    CHECK_EQ(f[12] << 8 | f[13], 0x0806);
    const uint8_t *a = f + ETH_HDR_LEN;
    CHECK_EQ(a[0] << 8 | a[1], 1);
    CHECK_EQ(a[2] << 8 | a[3], 0x0800);
    CHECK_EQ(a[4], 6);
    CHECK_EQ(a[5], 4);
    struct arp_view v = {.eth_dst = f, .op = (uint16_t)(a[6] << 8 | a[7]), .sha = a + 8, .tha = a + 18};
    memcpy(&v.spa, a + 14, 4);
    memcpy(&v.tpa, a + 24, 4);
    CHECK(memcmp(v.sha, B->mac, 6) == 0);
    CHECK_EQ(v.spa, B->ip.s_addr);
    return v;
}

/* B asks, by broadcast, who has @ip. */
static void check_request(int i, uint32_t ip)
{
    struct arp_view v = arp_at(i);
    CHECK(memcmp(v.eth_dst, bcast, 6) == 0);
    CHECK_EQ(v.op, 1);
    CHECK(memcmp(v.tha, zero6, 6) == 0);
    CHECK_EQ(v.tpa, ip);
}

/* A datagram from B's @q to @ip leaves at once, to @mac. */
static void udp_leaves_to(void *q, uint32_t ip, const uint8_t mac[6])
{
    demi_sgarray_t s = sw_sga(B, 20, 5, 0);
    struct sched_task *t;
    cap_clear(&cap);
    CHECK_EQ(pushto_addr(B, q, &s, ip, 9, &t), 0);
    sw_free(B, &s);
    settle();
    CHECK_EQ(cap.n, 1);
    struct ip_view v;
    CHECK(craft_ip_view(cap.frame[0], cap.len[0], &v));
    CHECK_EQ(v.proto, IPPROTO_UDP);
    CHECK_EQ(v.dst, ip);
    CHECK(memcmp(v.eth_dst, mac, 6) == 0);
    CHECK(sw_done(t));
    CHECK_EQ(sw_result(B, t).qr_opcode, DEMI_OPC_PUSH);
}

static void test_arp(void)
{
    static const uint8_t ymac[6] = {0x02, 0, 0, 0, 0, 0x60}, ymac2[6] = {0x02, 0, 0, 0, 0x01, 0x60};
    static const uint8_t zmac[6] = {0x02, 0, 0, 0, 0, 0x61};
    uint32_t yip = ip4(60), zip = ip4(61);
    void *q = udp_socket(B, 8000);
    snap();
    /* Y asks for B: a reply with every field right. */
    inject(fbuf, craft_arp(fbuf, ymac, bcast, 1, ymac, yip, zero6, B->ip.s_addr));
    CHECK_EQ(cap.n, 1);
    struct arp_view v = arp_at(0);
    CHECK(memcmp(v.eth_dst, ymac, 6) == 0);
    CHECK_EQ(v.op, 2);
    CHECK(memcmp(v.tha, ymac, 6) == 0);
    CHECK_EQ(v.tpa, yip);
    CHECK_EQ(DELTA(arp_reply_sent), 1);
    /* B learned Y from its request: no request of its own. */
    udp_leaves_to(q, yip, ymac);
    /* Y's MAC changes (a gratuitous reply): B follows. */
    inject(fbuf, craft_arp(fbuf, ymac2, bcast, 2, ymac2, yip, zero6, yip));
    expect_silence();
    udp_leaves_to(q, yip, ymac2);
    CHECK_EQ(DELTA(arp_req_sent), 0);

    /* Z asks for someone else: no reply, and Z is not learned (RFC 826
     * adds an entry only when the request is for us). */
    inject(fbuf, craft_arp(fbuf, zmac, bcast, 1, zmac, zip, zero6, ip4(99)));
    expect_silence();
    CHECK_EQ(DELTA(arp_reply_sent), 1);
    /* So a datagram to Z waits for an answer to B's request... */
    demi_sgarray_t s = sw_sga(B, 20, 6, 0);
    struct sched_task *t;
    cap_clear(&cap);
    CHECK_EQ(pushto_addr(B, q, &s, zip, 9, &t), 0);
    sw_free(B, &s);
    settle();
    CHECK_EQ(cap.n, 1);
    check_request(0, zip);
    sw_result(B, t);
    /* ...and leaves when Z answers. */
    inject(fbuf, craft_arp(fbuf, zmac, B->mac, 2, zmac, zip, B->mac, B->ip.s_addr));
    CHECK_EQ(cap.n, 1);
    struct ip_view iv;
    CHECK(craft_ip_view(cap.frame[0], cap.len[0], &iv));
    CHECK_EQ(iv.dst, zip);
    CHECK(memcmp(iv.eth_dst, zmac, 6) == 0);

    /* Malformed: each counted, none answered. */
    snap();
    for (int k = 0; k < 7; k++) {
        uint32_t len = craft_arp(fbuf, ymac, bcast, 1, ymac, yip, zero6, B->ip.s_addr);
        uint8_t *a = fbuf + ETH_HDR_LEN;
        switch (k) {
        case 0:
            a[4] = 5; /* hlen */
            break;
        case 1:
            a[5] = 6; /* plen */
            break;
        case 2:
            a[7] = 3; /* op */
            break;
        case 3:
            a[7] = 0;
            break;
        case 4:
            a[1] = 6; /* htype */
            break;
        case 5:
            a[2] = 0x86; /* ptype: IPv6 */
            a[3] = 0xdd;
            break;
        default:
            a[8] = 0x01; /* a group address as the sender's */
            break;
        }
        inject(fbuf, len);
        expect_silence();
    }
    inject(fbuf, ETH_HDR_LEN + 27); /* one byte short */
    expect_silence();
    CHECK_EQ(DELTA(arp_rx_bad), 8);
    CHECK_EQ(DELTA(arp_reply_sent), 0);

    /* A static entry stays, whatever the wire says. */
    inject(fbuf, craft_arp(fbuf, ymac, bcast, 1, ymac, X.ip, zero6, B->ip.s_addr));
    udp_leaves_to(q, X.ip, X.mac);

    /* The cache's TTL: a minute later Y's entry is stale. B still sends to
     * Y's MAC, and confirms it by unicast (RFC 1122 2.3.2.1). */
    const struct inet_config *ic = &B->in->cfg;
    sw_run_for(&w, 61 * SEC);
    s = sw_sga(B, 20, 7, 0);
    cap_clear(&cap);
    CHECK_EQ(pushto_addr(B, q, &s, yip, 9, &t), 0);
    sw_free(B, &s);
    settle();
    CHECK_EQ(cap.n, 2);
    v = arp_at(0);
    CHECK(memcmp(v.eth_dst, ymac2, 6) == 0);
    CHECK_EQ(v.op, 1);
    CHECK(memcmp(v.tha, ymac2, 6) == 0);
    CHECK_EQ(v.tpa, yip);
    CHECK(craft_ip_view(cap.frame[1], cap.len[1], &iv));
    CHECK_EQ(iv.dst, yip);
    CHECK(memcmp(iv.eth_dst, ymac2, 6) == 0);
    sw_result(B, t);
    /* Y never answers: arp_retries more polls, then B forgets Y... */
    cap_clear(&cap);
    sw_run_for(&w, (ic->arp_retries + 1) * ic->arp_timeout_ns);
    CHECK_EQ(cap.n, (int)ic->arp_retries);
    for (int i = 0; i < cap.n; i++) {
        v = arp_at(i);
        CHECK(memcmp(v.eth_dst, ymac2, 6) == 0);
        CHECK_EQ(v.tpa, yip);
    }
    /* ...and asks for it by broadcast, holding the datagram. */
    s = sw_sga(B, 20, 7, 0);
    cap_clear(&cap);
    CHECK_EQ(pushto_addr(B, q, &s, yip, 9, &t), 0);
    sw_free(B, &s);
    settle();
    CHECK_EQ(cap.n, 1);
    check_request(0, yip);
    sw_result(B, t);
    sw_run_for(&w, 2 * SEC); /* nobody answers */
    sw_close(B, q);
    printf("arp: replies, learning, static entries, malformed requests, TTL\n");
}

/* Nobody at @ip: B sends arp_retries + 1 requests from @t0, arp_timeout
 * apart, and nothing else. */
static void check_arp_retries(uint32_t ip, uint64_t t0)
{
    const struct inet_config *ic = &B->in->cfg;
    CHECK_EQ(cap.n, (int)ic->arp_retries + 1);
    for (int i = 0; i < cap.n; i++) {
        check_request(i, ip);
        CHECK_EQ(cap.t[i], t0 + (uint64_t)i * ic->arp_timeout_ns);
    }
}

static void test_unreachable(void)
{
    const struct inet_config *ic = &B->in->cfg;
    uint64_t give_up = (uint64_t)(ic->arp_retries + 1) * ic->arp_timeout_ns;
    uint32_t nobody = ip4(77);
    void *q = udp_socket(B, 8001);
    snap();
    cap_clear(&cap);
    uint64_t t0 = w.now;
    demi_sgarray_t s = sw_sga(B, 20, 8, 0);
    struct sched_task *t;
    CHECK_EQ(pushto_addr(B, q, &s, nobody, 9, &t), 0);
    sw_free(B, &s);
    sw_run_for(&w, give_up + 10 * MSEC);
    check_arp_retries(nobody, t0);
    CHECK_EQ(DELTA(arp_timeouts), 1);
    CHECK_EQ(DELTA(arp_req_sent), ic->arp_retries + 1);
    CHECK_EQ(sw_result(B, t).qr_opcode, DEMI_OPC_PUSH); /* a datagram is sent once queued */
    /* Known unreachable for a while: the next datagram fails at once. */
    s = sw_sga(B, 20, 9, 0);
    cap_clear(&cap);
    CHECK_EQ(pushto_addr(B, q, &s, nobody, 9, &t), 0);
    sw_free(B, &s);
    settle();
    expect_silence();
    demi_qresult_t qr = sw_result(B, t);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_FAILED);
    CHECK_EQ(qr.qr_ret, EHOSTUNREACH);

    /* More datagrams than an unresolved address holds: the excess is
     * dropped and counted. */
    snap();
    for (int i = 0; i < ARP_QUEUE + 3; i++) {
        s = sw_sga(B, 20, 10, 0);
        CHECK_EQ(pushto_addr(B, q, &s, ip4(79), 9, &t), 0);
        sw_free(B, &s);
        sw_result(B, t);
    }
    CHECK_EQ(DELTA(arp_queue_drops), 3);
    CHECK_EQ(DELTA(arp_req_sent), 1);

    /* A TCP connect to an address nobody has: EHOSTUNREACH when ARP gives
     * up, and no SYN ever leaves. */
    sw_run_for(&w, 2 * SEC);
    cap_clear(&cap);
    t0 = w.now;
    void *tq = sw_socket(B, SOCK_STREAM);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(80), .sin_addr = {ip4(78)}};
    t = sched_alloc(&B->rt->sched, NULL, NULL);
    t->qd = 0;
    CHECK_EQ(inet_connect(B->in, tq, &to, t), 0);
    qr = sw_wait(&w, B, t, 10 * SEC);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_FAILED);
    CHECK_EQ(qr.qr_ret, EHOSTUNREACH);
    CHECK_EQ(w.now - t0, give_up);
    check_arp_retries(ip4(78), t0);
    sw_close(B, tq);
    /* Connecting again while the address is known unreachable fails too. */
    tq = sw_socket(B, SOCK_STREAM);
    t = sched_alloc(&B->rt->sched, NULL, NULL);
    t->qd = 0;
    CHECK_EQ(inet_connect(B->in, tq, &to, t), 0);
    qr = sw_wait(&w, B, t, 10 * SEC);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_FAILED);
    CHECK_EQ(qr.qr_ret, EHOSTUNREACH);
    sw_close(B, tq);
    sw_close(B, q);
    printf("unreachable: %u ARP requests %llu ms apart, then EHOSTUNREACH for UDP and TCP\n", ic->arp_retries + 1,
           (unsigned long long)(ic->arp_timeout_ns / MSEC));
}

/* ---- IPv4 fragments ---- */

static uint32_t get16(const uint8_t *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}

/* Bytes [off, off + n) of the IP payload @l4, sent by X to B as a fragment
 * of datagram @id (@more: more fragments follow). */
static void x_frag(const uint8_t *l4, uint32_t off, uint32_t n, bool more, uint16_t id)
{
    uint32_t len = craft_ipv4(fbuf, &X, B->mac, B->ip.s_addr, IPPROTO_UDP, l4 + off, n);
    uint8_t *ip = fbuf + ETH_HDR_LEN;
    ip[4] = (uint8_t)(id >> 8);
    ip[5] = (uint8_t)id;
    uint16_t frag = (uint16_t)(off / 8) | (more ? IP_MF : 0);
    ip[6] = (uint8_t)(frag >> 8);
    ip[7] = (uint8_t)frag;
    craft_fix_ip(fbuf);
    inject(fbuf, len);
}

/* A UDP datagram from X's port 4444 to B's @port: header and @n pattern
 * bytes (seed @seed) in @buf, the checksum over the pseudo-header right. */
static uint32_t x_datagram(uint8_t *buf, uint16_t port, uint32_t n, uint64_t seed)
{
    uint32_t len = 8 + n;
    buf[0] = 4444 >> 8;
    buf[1] = 4444 & 0xff;
    buf[2] = (uint8_t)(port >> 8);
    buf[3] = (uint8_t)port;
    buf[4] = (uint8_t)(len >> 8);
    buf[5] = (uint8_t)len;
    buf[6] = buf[7] = 0;
    for (uint32_t i = 0; i < n; i++)
        buf[8 + i] = sw_byte(seed, i);
    const uint8_t *sa = (const uint8_t *)&X.ip, *da = (const uint8_t *)&B->ip.s_addr;
    uint32_t pseudo = get16(sa) + get16(sa + 2) + get16(da) + get16(da + 2) + IPPROTO_UDP + len;
    uint16_t c = craft_csum(buf, len, pseudo);
    buf[6] = (uint8_t)(c >> 8);
    buf[7] = (uint8_t)c;
    return len;
}

static void expect_datagram(struct sched_task *pop, uint32_t n, uint64_t seed)
{
    CHECK(sw_done(pop));
    demi_qresult_t qr = sw_result(B, pop);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
    CHECK_EQ(qr.qr_value.sga.sga_numsegs, 1);
    CHECK_EQ(qr.qr_value.sga.sga_segs[0].sgaseg_len, n);
    CHECK(sw_check(&qr.qr_value.sga, seed, 0));
    CHECK_EQ(qr.qr_value.sga.sga_addr.sin_addr.s_addr, X.ip);
    sw_free(B, &qr.qr_value.sga);
}

static void test_fragments(void)
{
    void *bq = udp_socket(B, 7100);
    void *aq = udp_socket(A, 7101);
    /* Between real stacks: up to the largest datagram, both ways. */
    static const size_t sizes[] = {1473, 2961, 9000, 65507};
    for (unsigned i = 0; i < ARRAY_SIZE(sizes); i++) {
        snap();
        udp_exchange(A, aq, B, bq, 7100, sizes[i], 7101);
        CHECK_EQ(DELTA(ip_frag_reassembled), 1);
        cap_clear(&cap);
        udp_exchange(B, bq, A, aq, 7101, sizes[i], 7100);
        /* B's fragments: at most the MTU each, offsets in 8-byte units,
         * one id, MF on all but the last, which ends the datagram. */
        uint32_t step = (B->in->cfg.mtu - 20) & ~7u, nfrag = (uint32_t)(sizes[i] + 8 + step - 1) / step;
        CHECK_EQ(DELTA(ip_frag_sent), nfrag);
        uint32_t next = 0, seen = 0;
        uint16_t id0 = 0;
        for (int k = 0; k < cap.n; k++) {
            struct ip_view v;
            if (!craft_ip_view(cap.frame[k], cap.len[k], &v) || v.proto != IPPROTO_UDP)
                continue; /* ARP */
            CHECK(v.tlen <= B->in->cfg.mtu);
            if (seen++ == 0)
                id0 = v.id;
            CHECK_EQ(v.id, id0);
            CHECK_EQ((uint32_t)(v.frag & IP_OFFMASK) * 8, next);
            CHECK_EQ(!!(v.frag & IP_MF), seen < nfrag);
            CHECK(!(v.frag & IP_DF));
            next += v.tlen - 20u;
        }
        CHECK_EQ(seen, nfrag);
        CHECK_EQ(next, sizes[i] + 8);
    }

    /* Crafted by X: 3000 bytes in fragments of 1000, 1000 and 1008. */
    static uint8_t dg[65544];
    uint32_t dlen = x_datagram(dg, 7100, 3000, 31);
    struct sched_task *pop = sw_pop(B, bq);
    snap();
    x_frag(dg, 2000, dlen - 2000, false, 1); /* last first */
    x_frag(dg, 1000, 1000, true, 1);
    CHECK(!sw_done(pop));
    x_frag(dg, 1000, 1000, true, 1); /* a duplicate: dropped, the rest kept */
    x_frag(dg, 0, 1000, true, 1);
    expect_silence();
    expect_datagram(pop, 3000, 31);
    CHECK_EQ(DELTA(ip_frag_reassembled), 1);
    CHECK_EQ(DELTA(ip_rx_frag_dropped), 1);

    /* Overlap: the datagram is dropped; sent again, it arrives. */
    pop = sw_pop(B, bq);
    snap();
    x_frag(dg, 0, 1000, true, 2);
    x_frag(dg, 992, 1008, true, 2);
    x_frag(dg, 2000, dlen - 2000, false, 2);
    x_frag(dg, 1000, 1000, true, 2); /* a fresh datagram with this id, never finished */
    CHECK(!sw_done(pop));
    CHECK_EQ(DELTA(ip_rx_frag_dropped), 1);
    CHECK_EQ(DELTA(ip_frag_reassembled), 0);
    for (uint32_t off = 0; off < dlen; off += 1000)
        x_frag(dg, off, MIN(1000u, dlen - off), off + 1000 < dlen, 3);
    expect_datagram(pop, 3000, 31);

    /* Malformed: a middle fragment off the 8-byte grid, an empty one, one
     * past 65535, a second last fragment, a last one short of what is in. */
    pop = sw_pop(B, bq);
    snap();
    x_frag(dg, 0, 1001, true, 4);
    x_frag(dg, 0, 0, true, 5);
    x_frag(dg, 65528, 16, false, 6);
    x_frag(dg, 2000, dlen - 2000, false, 7);
    x_frag(dg, 2008, dlen - 2008, false, 7);
    x_frag(dg, 1000, 1000, true, 8);
    x_frag(dg, 8, 8, false, 8);
    expect_silence();
    CHECK(!sw_done(pop));
    CHECK_EQ(DELTA(ip_rx_frag_dropped), 5);

    /* Never finished: forgotten after 30 s (datagram 2's middle piece). */
    snap();
    sw_run_for(&w, 29 * SEC);
    CHECK_EQ(DELTA(ip_frag_timeouts), 0);
    sw_run_for(&w, 2 * SEC);
    CHECK_EQ(DELTA(ip_frag_timeouts), 1);

    /* More datagrams at once than slots: the oldest gives way. */
    snap();
    for (uint16_t id = 100; id < 100 + FRAG_SLOTS; id++) {
        x_frag(dg, 0, 1000, true, id);
        sw_run_for(&w, MSEC);
    }
    CHECK_EQ(DELTA(ip_rx_frag_dropped), 0);
    x_frag(dg, 0, 1000, true, 100 + FRAG_SLOTS); /* evicts 100 */
    CHECK_EQ(DELTA(ip_rx_frag_dropped), 1);
    x_frag(dg, 1000, 1000, true, 101); /* 101 stayed: this completes it */
    x_frag(dg, 2000, dlen - 2000, false, 101);
    expect_datagram(pop, 3000, 31);
    pop = sw_pop(B, bq);
    x_frag(dg, 1000, 1000, true, 100); /* 100 went: these start anew */
    x_frag(dg, 2000, dlen - 2000, false, 100);
    CHECK(!sw_done(pop));
    sw_run_for(&w, 31 * SEC);
    CHECK_EQ(DELTA(ip_frag_timeouts), FRAG_SLOTS);
    CHECK_EQ(B->in->frag_bytes, 0);

    /* A fragmented echo request is answered in full, in fragments. */
    static uint8_t icmp[3008];
    memset(icmp, 0, sizeof(icmp));
    icmp[0] = 8;
    for (uint32_t i = 8; i < sizeof(icmp); i++)
        icmp[i] = (uint8_t)i;
    uint16_t c = craft_csum(icmp, sizeof(icmp), 0);
    icmp[2] = (uint8_t)(c >> 8);
    icmp[3] = (uint8_t)c;
    snap();
    uint32_t len = craft_ipv4(fbuf, &X, B->mac, B->ip.s_addr, IPPROTO_ICMP, icmp + 1480, sizeof(icmp) - 1480);
    fbuf[ETH_HDR_LEN + 4] = 0;
    fbuf[ETH_HDR_LEN + 5] = 9;
    fbuf[ETH_HDR_LEN + 6] = 0;
    fbuf[ETH_HDR_LEN + 7] = 1480 / 8;
    craft_fix_ip(fbuf);
    inject(fbuf, len);
    len = craft_ipv4(fbuf, &X, B->mac, B->ip.s_addr, IPPROTO_ICMP, icmp, 1480);
    fbuf[ETH_HDR_LEN + 4] = 0;
    fbuf[ETH_HDR_LEN + 5] = 9;
    fbuf[ETH_HDR_LEN + 6] = IP_MF >> 8;
    fbuf[ETH_HDR_LEN + 7] = 0;
    craft_fix_ip(fbuf);
    inject(fbuf, len);
    CHECK_EQ(cap.n, 3);
    uint32_t rlen;
    const uint8_t *reply = only_icmp(&rlen);
    CHECK_EQ(rlen, sizeof(icmp));
    CHECK_EQ(reply[0], 0);
    CHECK(memcmp(reply + 4, icmp + 4, sizeof(icmp) - 4) == 0);
    CHECK_EQ(DELTA(icmp_echo_replies), 1);
    CHECK_EQ(DELTA(ip_frag_sent), 3);

    sw_close(B, bq);
    sw_close(A, aq);
    printf("fragments: 1473..65507 bytes both ways, out of order, duplicate, overlap, malformed, timeout, "
           "slot limit, fragmented ping\n");
}

int main(void)
{
    X.ip = ip4(50);
    x_arp.ip.s_addr = X.ip;
    memcpy(x_arp.mac, X.mac, 6);
    sw_init(&w, 3, getenv("DEMI_PCAP"));
    B = sw_node(&w, tweak);
    A = sw_node(&w, NULL);
    C = sw_node(&w, NULL);
    cap_attach(&w, &cap, B->dev);

    test_udp_basic();
    test_connected_udp();
    test_port_unreachable();
    test_udp_checksums();
    test_icmp_echo();
    test_arp();
    test_unreachable();
    test_fragments();

    sw_run_for(&w, 5 * SEC);
    demi_qresult_t qr;
    for (int i = 0; i < w.n; i++) {
        struct simnode *n = &w.node[i];
        while (n->rt->sched.done.head)
            sched_harvest(&n->rt->sched, n->rt->sched.done.head, &qr);
        CHECK_EQ(heap_stats(n->rt->heap)->bytes_in_use, 0);
    }
    printf("udp icmp arp: ok\n");
    sw_fini(&w);
    return 0;
}
