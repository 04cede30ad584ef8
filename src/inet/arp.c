/*
 * ARP (RFC 826) for IPv4 over Ethernet: answers requests for our address,
 * learns senders that ask for us, caches with a TTL, resolves on demand
 * while holding a bounded queue of packets per address, retries, and
 * gives up with EHOSTUNREACH (telling the IP layer, which fails the TCP
 * connects waiting on it).
 * Static entries come from the configuration's arp_table and never expire.
 *
 * It must never let strangers harm the neighbours we talk to: a flood of
 * packets toward unknown addresses (a SYN flood from spoofed on-link
 * sources makes one) or of ARP frames from unknown senders. So:
 *  - broadcast requests are paid from a token bucket, ARP_REQ_BURST deep
 *    and refilled at ARP_REQ_RATE per second; a request the bucket cannot
 *    pay is not sent (counted) but its retry schedule runs as if it had been;
 *  - at most ARP_PENDING_MAX addresses are resolved at once; past that, a
 *    packet wanting a new resolution is dropped (ENOBUFS, counted) rather
 *    than evicting anything;
 *  - a new address takes a free slot of its bucket, else a FAILED one, else
 *    the least recently used RESOLVED one idle for ARP_IN_USE_NS; never a
 *    STATIC or PENDING entry, nor a resolved one still in use;
 *  - packets are held only on PENDING entries, at most ARP_QUEUE each and
 *    ARP_HELD_MAX in all (each one frame, so ARP_HELD_MAX frames of heap
 *    and as many malloc'd struct pkt at most); every way out of PENDING
 *    (reply, give-up, teardown) sends or frees them;
 *  - an entry past its TTL keeps being used for one more TTL while it is
 *    confirmed by unicast requests (RFC 1122 2.3.2.1), so a busy neighbour
 *    is never held up by the broadcast budget or the pending bound;
 *  - a reply creates no entry, only a request for us does (RFC 826); a
 *    claim on our own address is answered by an announcement at most
 *    every 10 s (RFC 5227 2.4).
 *
 * The table is ARP_SLOTS / ARP_WAYS buckets of ARP_WAYS entries, indexed by
 * a hash of the address: O(1) on every transmit.
 */
#include "inet/inet_int.h"

#include <stdlib.h>

#define ARP_BUCKETS        (ARP_SLOTS / ARP_WAYS)
#define ARP_FAILED_HOLD_NS 1000000000ull /* how long "unreachable" is remembered */
#define ARP_IN_USE_NS      5000000000ull /* a resolved entry used this recently is not evicted */
#define ARP_TOKEN_NS       (1000000000ull / ARP_REQ_RATE)
#define ARP_DEFEND_NS      10000000000ull /* RFC 5227 2.4: DEFEND_INTERVAL */

static const uint8_t bcast_mac[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static unsigned bucket_of(uint32_t ip)
{
    uint32_t h = ip * 0x9e3779b1u;
    return (h >> 24) % ARP_BUCKETS;
}

static struct arp_entry *lookup(struct inet *in, uint32_t ip)
{
    struct arp_entry *b = &in->arp[ARP_WAYS * bucket_of(ip)];
    for (int i = 0; i < ARP_WAYS; i++)
        if (b[i].state != ARP_FREE && b[i].ip == ip)
            return &b[i];
    return NULL;
}

/* Every change of state goes through here, which keeps the PENDING count. */
static void set_state(struct inet *in, struct arp_entry *e, uint8_t state)
{
    if (e->state == ARP_PENDING)
        in->arp_npending--;
    if (state == ARP_PENDING)
        in->arp_npending++;
    e->state = state;
}

static void drop_queue(struct inet *in, struct arp_entry *e)
{
    for (uint16_t i = 0; i < e->nq; i++) {
        pkt_release(in->heap, e->q[i]);
        free(e->q[i]);
    }
    in->arp_nheld -= e->nq;
    e->nq = 0;
}

static void clear(struct inet *in, struct arp_entry *e)
{
    timer_cancel(&in->rt->timers, &e->tm);
    drop_queue(in, e);
    set_state(in, e, ARP_FREE);
}

/* Whether @e may give its slot to another address at @now. */
static bool evictable(const struct arp_entry *e, uint64_t now)
{
    switch (e->state) {
    case ARP_FREE:
    case ARP_FAILED:
        return true;
    case ARP_RESOLVED:
        return now - e->used >= ARP_IN_USE_NS;
    default: /* PENDING: its request is out and packets wait; STATIC */
        return false;
    }
}

/* A slot in @ip's bucket for a new entry: a free one, else the oldest
 * FAILED one, else the least recently used idle RESOLVED one; NULL when
 * every entry of the bucket is static, pending or in use. */
static struct arp_entry *slot_for(struct inet *in, uint32_t ip)
{
    struct arp_entry *b = &in->arp[ARP_WAYS * bucket_of(ip)];
    uint64_t now = inet_now(in);
    struct arp_entry *victim = NULL;
    for (int i = 0; i < ARP_WAYS; i++) {
        struct arp_entry *e = &b[i];
        if (e->state == ARP_FREE)
            return e;
        if (!evictable(e, now))
            continue;
        if (!victim || (e->state == ARP_FAILED && victim->state != ARP_FAILED))
            victim = e;
        else if (e->state == victim->state &&
                 (e->state == ARP_FAILED ? e->expires < victim->expires : e->used < victim->used))
            victim = e;
    }
    if (victim)
        clear(in, victim);
    return victim;
}

static void fill_eth(struct inet *in, struct pkt *p, const uint8_t dst[6])
{
    struct eth_hdr *eh = (struct eth_hdr *)p->seg[0].data;
    memcpy(eh->dst, dst, 6);
    memcpy(eh->src, in->mac, 6);
    eh->type = htons(ETH_P_IPV4);
}

static void send_arp(struct inet *in, uint16_t op, const uint8_t tha[6], uint32_t tpa, const uint8_t *eth_dst)
{
    uint8_t *d;
    struct heap_blk *b = inet_hdr_alloc(in, &d);
    if (!b)
        return;
    struct eth_hdr *eh = (struct eth_hdr *)d;
    memcpy(eh->dst, eth_dst, 6);
    memcpy(eh->src, in->mac, 6);
    eh->type = htons(ETH_P_ARP);
    struct arp_pkt *a = (struct arp_pkt *)(d + ETH_HDR_LEN);
    a->htype = htons(1);
    a->ptype = htons(ETH_P_IPV4);
    a->hlen = 6;
    a->plen = 4;
    a->op = htons(op);
    memcpy(a->sha, in->mac, 6);
    a->spa = in->ip;
    memcpy(a->tha, tha, 6);
    a->tpa = tpa;
    /* Pad to the Ethernet minimum (60 bytes without the FCS). */
    uint32_t len = ETH_HDR_LEN + sizeof(*a);
    memset(d + len, 0, 60 - len);
    struct pkt p = {.len = 60, .nseg = 1};
    p.seg[0] = (struct pkt_seg){b, d, 60};
    eth_xmit(in, &p);
    if (op == 1)
        in->st.arp_req_sent++;
    else
        in->st.arp_reply_sent++;
}

/* Takes one broadcast request's worth from the token bucket, refilling it
 * first by the time passed; false (counted) when it is empty. */
static bool pay_request(struct inet *in)
{
    uint64_t now = inet_now(in);
    if (now > in->arp_tokens_at) {
        uint64_t n = (now - in->arp_tokens_at) / ARP_TOKEN_NS;
        if (n >= ARP_REQ_BURST) {
            in->arp_tokens = ARP_REQ_BURST;
            in->arp_tokens_at = now;
        } else if (n) {
            in->arp_tokens += (uint32_t)n;
            if (in->arp_tokens > ARP_REQ_BURST)
                in->arp_tokens = ARP_REQ_BURST;
            in->arp_tokens_at += n * ARP_TOKEN_NS;
        }
    }
    if (!in->arp_tokens) {
        in->st.arp_req_limited++;
        return false;
    }
    in->arp_tokens--;
    return true;
}

/* Who has @ip? By broadcast, if the budget allows. */
static void request(struct inet *in, uint32_t ip)
{
    static const uint8_t zero[6];
    if (pay_request(in))
        send_arp(in, 1, zero, ip, bcast_mac);
}

/* Is @ip still at @mac? A unicast request (RFC 1122 2.3.2.1): only the
 * neighbour we already talk to receives it, at most arp_retries + 1 times
 * per TTL, so it is not paid from the broadcast budget. */
static void confirm(struct inet *in, uint32_t ip, const uint8_t mac[6])
{
    send_arp(in, 1, mac, ip, mac);
}

static void retry(struct timer *t)
{
    struct arp_entry *e = container_of(t, struct arp_entry, tm);
    struct inet *in = e->in;
    if (e->state == ARP_RESOLVED) {
        /* Confirming a stale entry: poll again, or forget it, so the next
         * packet asks by broadcast. */
        if (e->tries < in->cfg.arp_retries) {
            e->tries++;
            confirm(in, e->ip, e->mac);
            timer_arm(&in->rt->timers, &e->tm, inet_now(in) + in->cfg.arp_timeout_ns);
        } else {
            clear(in, e);
        }
        return;
    }
    if (e->state != ARP_PENDING)
        return;
    if (e->tries < in->cfg.arp_retries) {
        e->tries++;
        request(in, e->ip);
        timer_arm(&in->rt->timers, &e->tm, inet_now(in) + in->cfg.arp_timeout_ns);
        return;
    }
    /* No answer: unreachable for a while; fail what waits on it. */
    in->st.arp_timeouts++;
    drop_queue(in, e);
    set_state(in, e, ARP_FAILED);
    e->expires = inet_now(in) + ARP_FAILED_HOLD_NS;
    uint32_t ip = e->ip;
    char s[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &ip, s, sizeof(s));
    log_debug("arp: no reply from %s after %u requests", s, in->cfg.arp_retries + 1);
    ip_neigh_unreachable(in, ip);
}

/* Learns @mac for @ip and sends what waited for it. A new entry is made
 * only if @create and a slot is free or evictable. */
static void learn(struct inet *in, uint32_t ip, const uint8_t mac[6], bool create)
{
    struct arp_entry *e = lookup(in, ip);
    if (!e) {
        if (!create || !(e = slot_for(in, ip)))
            return;
        e->ip = ip;
        e->used = 0; /* not in use until we send to it */
    }
    if (e->state == ARP_STATIC)
        return;
    timer_cancel(&in->rt->timers, &e->tm);
    memcpy(e->mac, mac, 6);
    if (e->state == ARP_PENDING)
        e->used = inet_now(in); /* something waited for it */
    set_state(in, e, ARP_RESOLVED);
    e->expires = inet_now(in) + in->cfg.arp_ttl_ns;
    for (uint16_t i = 0; i < e->nq; i++) {
        fill_eth(in, e->q[i], mac);
        eth_xmit(in, e->q[i]);
        free(e->q[i]);
    }
    in->arp_nheld -= e->nq;
    e->nq = 0;
}

int arp_output(struct inet *in, struct pkt *p, uint32_t ip)
{
    if (ip == 0xffffffffu) {
        fill_eth(in, p, bcast_mac);
        eth_xmit(in, p);
        return 0;
    }
    struct arp_entry *e = lookup(in, ip);
    uint64_t now = inet_now(in);
    if (e && e->state == ARP_RESOLVED && now >= e->expires && now - e->expires < in->cfg.arp_ttl_ns) {
        /* Stale (RFC 1122 2.3.2.1): keep using the address while polling
         * its owner by unicast; the poll's answer renews it. */
        if (!timer_armed(&e->tm)) {
            e->tries = 0;
            confirm(in, ip, e->mac);
            timer_arm(&in->rt->timers, &e->tm, now + in->cfg.arp_timeout_ns);
        }
        e->used = now;
        fill_eth(in, p, e->mac);
        eth_xmit(in, p);
        return 0;
    }
    if (e && (e->state == ARP_STATIC || (e->state == ARP_RESOLVED && now < e->expires))) {
        e->used = now;
        fill_eth(in, p, e->mac);
        eth_xmit(in, p);
        return 0;
    }
    if (e && e->state == ARP_FAILED) {
        if (now < e->expires) {
            pkt_release(in->heap, p);
            return EHOSTUNREACH;
        }
        clear(in, e);
        e = NULL;
    }
    if (!e || e->state == ARP_RESOLVED) { /* unknown, or long past its TTL: ask */
        if (in->arp_npending >= ARP_PENDING_MAX || (!e && !(e = slot_for(in, ip)))) {
            pkt_release(in->heap, p);
            in->st.arp_no_entry_drops++;
            return ENOBUFS;
        }
        timer_cancel(&in->rt->timers, &e->tm);
        e->ip = ip;
        set_state(in, e, ARP_PENDING);
        e->tries = 0;
        e->in = in;
        e->expires = now;
        request(in, ip);
        timer_arm(&in->rt->timers, &e->tm, now + in->cfg.arp_timeout_ns);
    }
    /* PENDING: hold the packet (bounded) until the reply. */
    struct pkt *held = e->nq < ARP_QUEUE && in->arp_nheld < ARP_HELD_MAX ? malloc(sizeof(*held)) : NULL;
    if (!held) {
        pkt_release(in->heap, p);
        in->st.arp_queue_drops++;
        return 0;
    }
    *held = *p;
    p->nseg = 0;
    e->q[e->nq++] = held;
    in->arp_nheld++;
    return 0;
}

/* Addresses no host may claim as its own: this network, loopback,
 * multicast and above (RFC 1122 3.2.1.3, RFC 5735). */
static bool bogus_sender(uint32_t spa)
{
    uint32_t h = ntohl(spa);
    return (h >> 24) == 0 || (h >> 24) == 127 || h >= 0xe0000000u;
}

static bool zero_mac(const uint8_t m[6])
{
    return !(m[0] | m[1] | m[2] | m[3] | m[4] | m[5]);
}

void arp_input(struct inet *in, struct rxframe *f)
{
    in->st.arp_rx++;
    const struct arp_pkt *a = (const struct arp_pkt *)(f->data + ETH_HDR_LEN);
    /* RFC 826: Ethernet (1) and IPv4 with their lengths, request or reply.
     * A group or zero sender address names no one we could answer. */
    if (f->len < ETH_HDR_LEN + sizeof(*a) || ntohs(a->htype) != 1 || ntohs(a->ptype) != ETH_P_IPV4 || a->hlen != 6 ||
        a->plen != 4 || (ntohs(a->op) != 1 && ntohs(a->op) != 2) || (a->sha[0] & 1) || zero_mac(a->sha)) {
        in->st.arp_rx_bad++;
        heap_unref(in->heap, f->blk);
        return;
    }
    uint32_t spa = a->spa;
    uint8_t sha[6];
    memcpy(sha, a->sha, 6);
    bool for_us = a->tpa == in->ip;
    uint16_t op = ntohs(a->op);
    /* A copy from another instance sharing the device (every instance
     * learns from ARP): the instance that received it answers. */
    bool answer = !(f->flags & PKT_RX_HANDED);
    heap_unref(in->heap, f->blk);
    if (spa == in->ip) {
        /* Someone else claims our address: nothing to learn or answer.
         * RFC 5227 2.4 (b): defend it with one announcement (a request
         * from and for our address, 2.3), at most once per DEFEND_INTERVAL,
         * so that neighbours the claim misled learn our MAC again. */
        in->st.arp_addr_conflicts++;
        log_debug("arp: %02x:%02x:%02x:%02x:%02x:%02x claims our address", sha[0], sha[1], sha[2], sha[3], sha[4],
                  sha[5]);
        uint64_t now = inet_now(in);
        if (answer && (!in->arp_defended || now - in->arp_defended >= ARP_DEFEND_NS)) {
            static const uint8_t zero[6];
            in->arp_defended = now;
            send_arp(in, 1, zero, in->ip, bcast_mac);
        }
        return;
    }
    if (spa == 0) {
        /* A probe (RFC 5227 2.1.1): nothing to learn, but one for our
         * address is answered, to its sender, so that it finds the address
         * taken. */
        if (for_us && op == 1 && answer)
            send_arp(in, 2, sha, 0, sha);
        return;
    }
    if (bogus_sender(spa)) {
        in->st.arp_rx_ignored++;
        return;
    }
    /* RFC 826: update an entry we have; create one only for a request for
     * us (we are about to talk to its sender). A reply we did not ask for
     * creates nothing. */
    if (op == 2 && !lookup(in, spa))
        in->st.arp_rx_ignored++;
    learn(in, spa, sha, for_us && op == 1);
    if (for_us && op == 1 && answer)
        send_arp(in, 2, sha, spa, sha);
}

void arp_init(struct inet *in)
{
    for (int i = 0; i < ARP_SLOTS; i++) {
        in->arp[i].in = in;
        timer_init(&in->arp[i].tm, retry);
    }
    in->arp_tokens = ARP_REQ_BURST;
    in->arp_tokens_at = inet_now(in);
    for (int i = 0; i < in->cfg.n_arp_static; i++) {
        const struct inet_arp *c = &in->cfg.arp_static[i];
        struct arp_entry *e = lookup(in, c->ip.s_addr);
        if (!e)
            e = slot_for(in, c->ip.s_addr);
        if (!e) {
            log_warn("arp: no room for static entry %s (%d per hash bucket); ignored", inet_ntoa(c->ip), ARP_WAYS);
            continue;
        }
        e->ip = c->ip.s_addr;
        memcpy(e->mac, c->mac, 6);
        e->state = ARP_STATIC;
    }
}

void arp_fini(struct inet *in)
{
    for (int i = 0; i < ARP_SLOTS; i++)
        if (in->arp[i].state != ARP_FREE)
            clear(in, &in->arp[i]);
}
