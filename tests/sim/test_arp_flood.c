/*
 * ARP under a flood of strangers (issue 11). Two real stacks on dev/sim: B
 * at 10.0.0.1 and its legitimate neighbour A, which exchange datagrams all
 * along; everything else is frames this test injects into B, or datagrams
 * B's application sends to addresses nobody has.
 *
 * Covered: datagrams to 10,000 distinct on-link addresses while A and B talk:
 * A's entry in B's table is never evicted and the exchange keeps working,
 * B's broadcast requests stay under the rate limit times the virtual time,
 * the heap bytes held for unresolved addresses stay under the pending bound,
 * and once the retries run out everything is released; A's entry goes stale
 * during the flood and is confirmed by unicast, never waiting on the
 * broadcast budget. ARP requests for B
 * from 10,000 strangers (answered, but never at A's expense); unsolicited
 * replies, which create no entry; a zero sender MAC; our own address as the
 * sender's (RFC 5227 conflict, defended once per 10 s); an address probe (RFC 5227 2.1.1) for B,
 * which B answers; 20,000 random, damaged or cut ARP frames among datagrams
 * to strangers, with the table's counts checked against its entries.
 */
#include "craft.h"
#include "inet/inet_int.h"

/* The bounds arp.c promises (literal here so that this test builds on a
 * stack without them, and fails there). */
#ifndef ARP_REQ_RATE
#define ARP_REQ_RATE 256
#endif
#ifndef ARP_REQ_BURST
#define ARP_REQ_BURST 256
#endif
#ifndef ARP_PENDING_MAX
#define ARP_PENDING_MAX (ARP_SLOTS / 2)
#endif

#define FLOOD 10000

static struct simworld w;
static struct simnode *A, *B;
static struct capture cap;
static uint8_t fbuf[CRAFT_FRAME_MAX];
static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
static const uint8_t zero6[6];
static void *aq, *bq;
static uint64_t legit_seed = 1000;

/* A short cache TTL, so that A's entry goes stale during the flood. */
static void tweak(struct inet_config *ic)
{
    ic->arp_ttl_ns = 4 * SEC;
}

static const struct inet_stats *st(void)
{
    return inet_stats(B->in);
}

static uint64_t heap_used(void)
{
    return heap_stats(B->rt->heap)->bytes_in_use;
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

/* Stranger number @i: 10.1.0.0 onwards, never A's or B's address. */
static uint32_t stranger_ip(uint32_t i)
{
    return htonl(0x0a010000u + i);
}

static void stranger_mac(uint32_t i, uint8_t mac[6])
{
    mac[0] = 0x02;
    mac[1] = 0x5e;
    mac[2] = (uint8_t)(i >> 24);
    mac[3] = (uint8_t)(i >> 16);
    mac[4] = (uint8_t)(i >> 8);
    mac[5] = (uint8_t)i;
}

/* B's table entry for @ip, if it has one. */
static const struct arp_entry *entry_of(uint32_t ip)
{
    for (int i = 0; i < ARP_SLOTS; i++)
        if (B->in->arp[i].state != ARP_FREE && B->in->arp[i].ip == ip)
            return &B->in->arp[i];
    return NULL;
}

static int count_state(int state)
{
    int n = 0;
    for (int i = 0; i < ARP_SLOTS; i++)
        n += B->in->arp[i].state == state;
    return n;
}

/* B's ARP books balance: the PENDING count and the packets held are what
 * the table says, and only PENDING entries hold packets. */
static void check_accounting(void)
{
    uint32_t pending = 0, held = 0;
    for (int i = 0; i < ARP_SLOTS; i++) {
        const struct arp_entry *e = &B->in->arp[i];
        pending += e->state == ARP_PENDING;
        held += e->nq;
        CHECK(e->nq <= ARP_QUEUE);
        if (e->state != ARP_PENDING)
            CHECK_EQ(e->nq, 0);
    }
    CHECK_EQ(pending, B->in->arp_npending);
    CHECK_EQ(held, B->in->arp_nheld);
    CHECK(pending <= ARP_PENDING_MAX);
    CHECK(held <= ARP_HELD_MAX);
}

/* A knows B and B knows A, by A's MAC, resolved. */
static void check_a_resolved(void)
{
    const struct arp_entry *e = entry_of(A->ip.s_addr);
    CHECK(e);
    CHECK_EQ(e->state, ARP_RESOLVED);
    CHECK(memcmp(e->mac, A->mac, 6) == 0);
}

/* One datagram each way between A and B, delivered byte-exact. */
static void legit_exchange(void)
{
    struct simnode *from[2] = {A, B}, *to[2] = {B, A};
    void *fq[2] = {aq, bq}, *tq[2] = {bq, aq};
    uint16_t port[2] = {7001, 7000};
    for (int k = 0; k < 2; k++) {
        uint64_t seed = legit_seed++;
        demi_sgarray_t s = sw_sga(from[k], 100, seed, 0);
        struct sched_task *t = sw_pushto(from[k], fq[k], &s, to[k], port[k]);
        sw_free(from[k], &s);
        demi_qresult_t qr = sw_wait(&w, to[k], sw_pop(to[k], tq[k]), SEC);
        CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
        CHECK(sw_check(&qr.qr_value.sga, seed, 0));
        CHECK_EQ(qr.qr_value.sga.sga_addr.sin_addr.s_addr, from[k]->ip.s_addr);
        sw_free(to[k], &qr.qr_value.sga);
        qr = sw_wait(&w, from[k], t, SEC);
        CHECK_EQ(qr.qr_opcode, DEMI_OPC_PUSH);
    }
}

/* A 20-byte datagram from B to @ip; the push completes at once (a datagram
 * is sent, or dropped, once handed to the stack). */
static void push_to(uint32_t ip)
{
    demi_sgarray_t s = sw_sga(B, 20, ip, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(9), .sin_addr = {ip}};
    struct sched_task *t = sched_alloc(&B->rt->sched, NULL, NULL);
    CHECK(t);
    t->qd = 0;
    CHECK_EQ(inet_push(B->in, bq, &s, &a, t), 0);
    sw_free(B, &s);
    CHECK(sw_done(t));
    sw_result(B, t);
}

static void test_send_flood(void)
{
    legit_exchange();
    check_a_resolved();
    /* What one held datagram costs, measured on a first stranger. */
    uint64_t base = heap_used();
    push_to(stranger_ip(FLOOD));
    uint64_t per = heap_used() - base;
    CHECK(per > 0);
    sw_run_for(&w, 10 * SEC); /* it times out and is released */
    CHECK_EQ(heap_used(), base);
    legit_exchange(); /* A's entry, long stale by now, is asked for again */
    check_a_resolved();

    struct inet_stats s0 = *st();
    uint64_t t0 = w.now, peak = base;
    for (uint32_t i = 0; i < FLOOD; i++) {
        push_to(stranger_ip(i));
        if (heap_used() > peak)
            peak = heap_used();
        if (i % 50 == 49)
            sw_run_for(&w, 50 * MSEC);
        if (i % 500 == 499) {
            check_a_resolved();
            legit_exchange();
            check_a_resolved();
            check_accounting();
        }
        /* Never more broadcast requests than the budget allows, plus the
         * unicast ones that confirm A's entry each time it goes stale. */
        uint64_t sent = st()->arp_req_sent - s0.arp_req_sent;
        uint64_t polls = ((w.now - t0) / B->in->cfg.arp_ttl_ns + 1) * (B->in->cfg.arp_retries + 1);
        CHECK(sent <= ARP_REQ_BURST + (w.now - t0) * ARP_REQ_RATE / SEC + polls);
    }
    uint64_t sent = st()->arp_req_sent - s0.arp_req_sent;
    uint64_t span = w.now - t0;
    /* A's entry went stale during the flood and was confirmed each time. */
    CHECK(span > 2 * B->in->cfg.arp_ttl_ns);
    CHECK(entry_of(A->ip.s_addr)->expires > w.now);
    /* Memory held for unresolved addresses: one datagram each, at most
     * ARP_PENDING_MAX addresses at a time. */
    CHECK(peak - base <= (uint64_t)ARP_PENDING_MAX * per);
    CHECK(st()->arp_req_limited > s0.arp_req_limited);
    CHECK(st()->arp_no_entry_drops > s0.arp_no_entry_drops);
    CHECK(B->in->arp_npending <= ARP_PENDING_MAX);
    printf("send flood: %d addresses in %llu ms: %llu requests sent, %llu suppressed, %llu datagrams dropped for want "
           "of an entry, %llu held bytes at most (%llu per datagram)\n",
           FLOOD, (unsigned long long)(span / MSEC), (unsigned long long)sent,
           (unsigned long long)(st()->arp_req_limited - s0.arp_req_limited),
           (unsigned long long)(st()->arp_no_entry_drops - s0.arp_no_entry_drops), (unsigned long long)(peak - base),
           (unsigned long long)per);

    /* After the retries and the time failures are remembered, nothing is
     * held and nothing waits. */
    sw_run_for(&w, 10 * SEC);
    CHECK_EQ(count_state(ARP_PENDING), 0);
    CHECK_EQ(B->in->arp_npending, 0);
    CHECK_EQ(B->in->arp_nheld, 0);
    CHECK_EQ(heap_used(), base);
    legit_exchange();
    check_a_resolved();

    /* Many datagrams to each of a few strangers: each address holds
     * ARP_QUEUE, all of them together ARP_HELD_MAX; the rest is dropped. */
    s0 = *st();
    int n = 2 * ARP_HELD_MAX / ARP_QUEUE;
    for (int k = 0; k < n; k++)
        for (int i = 0; i < ARP_QUEUE; i++)
            push_to(stranger_ip(FLOOD + 1 + (uint32_t)k));
    CHECK_EQ(B->in->arp_nheld, ARP_HELD_MAX);
    check_accounting();
    CHECK_EQ(st()->arp_queue_drops - s0.arp_queue_drops, (uint64_t)(n * ARP_QUEUE - ARP_HELD_MAX));
    legit_exchange();
    sw_run_for(&w, 10 * SEC);
    CHECK_EQ(B->in->arp_nheld, 0);
    CHECK_EQ(heap_used(), base);
    legit_exchange();
    printf("queues: %d datagrams to %d addresses, %d held at most\n", n * ARP_QUEUE, n, ARP_HELD_MAX);
}

static void test_request_flood(void)
{
    uint8_t mac[6];
    struct inet_stats s0 = *st();
    for (uint32_t i = 0; i < FLOOD; i++) {
        stranger_mac(i, mac);
        inject(fbuf, craft_arp(fbuf, mac, bcast, 1, mac, stranger_ip(i), zero6, B->ip.s_addr));
        CHECK_EQ(cap.n, 1); /* each is answered */
        if (i % 500 == 499) {
            check_a_resolved();
            legit_exchange();
        }
    }
    check_a_resolved();
    CHECK_EQ(st()->arp_reply_sent - s0.arp_reply_sent, FLOOD);
    printf("request flood: %d strangers asked for B and were answered; A's entry stayed\n", FLOOD);
}

static void test_hostile(void)
{
    uint8_t mac[6];
    stranger_mac(20000, mac);
    uint32_t sip = stranger_ip(20000);
    const uint8_t *f;
    struct inet_stats s0 = *st();
    /* An unsolicited reply, even one addressed to B, creates no entry
     * (RFC 826: only a request for us does). */
    inject(fbuf, craft_arp(fbuf, mac, B->mac, 2, mac, sip, B->mac, B->ip.s_addr));
    CHECK_EQ(cap.n, 0);
    CHECK(!entry_of(sip));
    /* Nor does a gratuitous one. */
    inject(fbuf, craft_arp(fbuf, mac, bcast, 2, mac, sip, zero6, sip));
    CHECK(!entry_of(sip));
    CHECK_EQ(st()->arp_rx_ignored - s0.arp_rx_ignored, 2);
    /* A zero sender MAC: neither learned nor answered. */
    inject(fbuf, craft_arp(fbuf, mac, bcast, 1, zero6, sip, zero6, B->ip.s_addr));
    CHECK_EQ(cap.n, 0);
    CHECK(!entry_of(sip));
    CHECK_EQ(st()->arp_rx_bad - s0.arp_rx_bad, 1);
    /* Someone claims B's own address: no entry for it, and A's entry is
     * untouched. B defends its address with one announcement (RFC 5227
     * 2.4), then no more for DEFEND_INTERVAL (10 s). */
    inject(fbuf, craft_arp(fbuf, mac, bcast, 1, mac, B->ip.s_addr, zero6, B->ip.s_addr));
    CHECK_EQ(cap.n, 1);
    f = cap.frame[0];
    CHECK(memcmp(f, bcast, 6) == 0);
    CHECK_EQ(f[ETH_HDR_LEN + 7], 1);
    CHECK(memcmp(f + ETH_HDR_LEN + 8, B->mac, 6) == 0);
    CHECK(memcmp(f + ETH_HDR_LEN + 14, &B->ip.s_addr, 4) == 0);
    CHECK(memcmp(f + ETH_HDR_LEN + 24, &B->ip.s_addr, 4) == 0);
    inject(fbuf, craft_arp(fbuf, mac, B->mac, 2, mac, B->ip.s_addr, B->mac, B->ip.s_addr));
    CHECK_EQ(cap.n, 0);
    sw_run_for(&w, 9 * SEC);
    inject(fbuf, craft_arp(fbuf, mac, B->mac, 2, mac, B->ip.s_addr, B->mac, B->ip.s_addr));
    CHECK_EQ(cap.n, 0);
    sw_run_for(&w, SEC);
    inject(fbuf, craft_arp(fbuf, mac, B->mac, 2, mac, B->ip.s_addr, B->mac, B->ip.s_addr));
    CHECK_EQ(cap.n, 1);
    CHECK(!entry_of(B->ip.s_addr));
    CHECK_EQ(st()->arp_addr_conflicts - s0.arp_addr_conflicts, 4);
    legit_exchange(); /* 10 s passed: A's entry goes on being used */
    check_a_resolved();
    /* A sender claiming a multicast address: ignored. */
    inject(fbuf, craft_arp(fbuf, mac, bcast, 1, mac, htonl(0xe0000001u), zero6, B->ip.s_addr));
    CHECK_EQ(cap.n, 0);
    CHECK(!entry_of(htonl(0xe0000001u)));
    CHECK_EQ(st()->arp_rx_ignored - s0.arp_rx_ignored, 3);
    /* An address probe for B (sender address 0, RFC 5227 2.1.1): answered
     * to the prober's MAC, so it learns the address is taken. */
    inject(fbuf, craft_arp(fbuf, mac, bcast, 1, mac, 0, zero6, B->ip.s_addr));
    CHECK_EQ(cap.n, 1);
    f = cap.frame[0];
    CHECK(memcmp(f, mac, 6) == 0);
    CHECK_EQ(f[ETH_HDR_LEN + 7], 2);
    CHECK(memcmp(f + ETH_HDR_LEN + 8, B->mac, 6) == 0);
    CHECK(memcmp(f + ETH_HDR_LEN + 14, &B->ip.s_addr, 4) == 0);
    CHECK(!entry_of(0));
    printf("hostile: unsolicited replies, zero MAC, our own address, probes\n");
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}

/* Random ARP frames, mostly almost well formed, some cut short, while
 * datagrams to strangers keep entries pending: nothing breaks, A stays,
 * the books balance. */
static void test_random_frames(void)
{
    int n = 20000;
    for (int i = 0; i < n; i++) {
        uint8_t mac[6];
        stranger_mac(rnd(), mac);
        uint32_t spa = rnd() % 4 ? stranger_ip(rnd() % 512) : rnd();
        uint32_t tpa = rnd() % 2 ? B->ip.s_addr : stranger_ip(rnd() % 512);
        uint32_t len = craft_arp(fbuf, mac, rnd() % 2 ? bcast : B->mac, (uint16_t)(rnd() % 4), mac, spa, zero6, tpa);
        uint8_t *a = fbuf + ETH_HDR_LEN;
        switch (rnd() % 8) {
        case 0:
            a[rnd() % 28] = (uint8_t)rnd(); /* one byte anywhere */
            break;
        case 1:
            len = ETH_HDR_LEN + rnd() % 28; /* cut short */
            break;
        case 2:
            memset(a + 8, rnd() % 2 ? 0 : 0xff, 6); /* zero or broadcast sender */
            break;
        default:
            break;
        }
        inject(fbuf, len);
        if (i % 8 == 0)
            push_to(stranger_ip(rnd() % 512));
        if (i % 1000 == 999) {
            sw_run_for(&w, 100 * MSEC);
            check_accounting();
            check_a_resolved();
            legit_exchange();
        }
    }
    sw_run_for(&w, 10 * SEC);
    CHECK_EQ(B->in->arp_nheld, 0);
    check_accounting();
    legit_exchange();
    check_a_resolved();
    printf("random frames: %d, with datagrams to strangers; books balance\n", n);
}

int main(void)
{
    sw_init(&w, 11, getenv("DEMI_PCAP"));
    B = sw_node(&w, tweak);
    A = sw_node(&w, NULL);
    cap_attach(&w, &cap, B->dev);
    aq = sw_socket(A, SOCK_DGRAM);
    sw_bind(A, aq, 7000);
    bq = sw_socket(B, SOCK_DGRAM);
    sw_bind(B, bq, 7001);

    legit_exchange();
    test_hostile();
    test_send_flood();
    test_request_flood();
    test_random_frames();

    sw_close(A, aq);
    sw_close(B, bq);
    sw_run_for(&w, 20 * SEC);
    demi_qresult_t qr;
    for (int i = 0; i < w.n; i++) {
        struct simnode *n = &w.node[i];
        while (n->rt->sched.done.head)
            sched_harvest(&n->rt->sched, n->rt->sched.done.head, &qr);
        CHECK_EQ(heap_stats(n->rt->heap)->bytes_in_use, 0);
    }
    printf("arp flood: ok\n");
    sw_fini(&w);
    return 0;
}
