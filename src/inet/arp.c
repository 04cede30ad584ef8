/*
 * ARP (RFC 826) for IPv4 over Ethernet: answers requests for our address,
 * learns senders that ask for us, caches with a TTL, resolves on demand
 * while holding a bounded queue of packets per address, retries, and
 * gives up with EHOSTUNREACH (failing the TCP connects waiting on it).
 * Static entries come from the configuration's arp_table and never expire.
 *
 * The table is 128 buckets of two entries, indexed by a hash of the
 * address: O(1) on every transmit. A new address evicts the older dynamic
 * entry of its bucket.
 */
#include "inet/inet_int.h"

#include <stdlib.h>

#define ARP_BUCKETS        (ARP_SLOTS / 2)
#define ARP_FAILED_HOLD_NS 1000000000ull /* how long "unreachable" is remembered */

static const uint8_t bcast_mac[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static unsigned bucket_of(uint32_t ip)
{
    uint32_t h = ip * 0x9e3779b1u;
    return (h >> 24) % ARP_BUCKETS;
}

static struct arp_entry *lookup(struct inet *in, uint32_t ip)
{
    struct arp_entry *e = &in->arp[2 * bucket_of(ip)];
    if (e[0].state != ARP_FREE && e[0].ip == ip)
        return &e[0];
    if (e[1].state != ARP_FREE && e[1].ip == ip)
        return &e[1];
    return NULL;
}

static void drop_queue(struct inet *in, struct arp_entry *e)
{
    for (uint16_t i = 0; i < e->nq; i++) {
        pkt_release(in->heap, e->q[i]);
        free(e->q[i]);
    }
    e->nq = 0;
}

static void clear(struct inet *in, struct arp_entry *e)
{
    timer_cancel(&in->rt->timers, &e->tm);
    drop_queue(in, e);
    e->state = ARP_FREE;
}

/* A slot for @ip: its own, a free one, or the bucket's oldest dynamic one. */
static struct arp_entry *slot_for(struct inet *in, uint32_t ip)
{
    struct arp_entry *e = lookup(in, ip);
    if (e)
        return e;
    struct arp_entry *b = &in->arp[2 * bucket_of(ip)];
    for (int i = 0; i < 2; i++)
        if (b[i].state == ARP_FREE)
            return &b[i];
    struct arp_entry *victim = NULL;
    for (int i = 0; i < 2; i++) {
        if (b[i].state == ARP_STATIC)
            continue;
        if (!victim || b[i].expires < victim->expires)
            victim = &b[i];
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

static void request(struct inet *in, uint32_t ip)
{
    static const uint8_t zero[6];
    send_arp(in, 1, zero, ip, bcast_mac);
}

static void retry(struct timer *t)
{
    struct arp_entry *e = container_of(t, struct arp_entry, tm);
    struct inet *in = e->in;
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
    e->state = ARP_FAILED;
    e->expires = inet_now(in) + ARP_FAILED_HOLD_NS;
    uint32_t ip = e->ip;
    char s[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &ip, s, sizeof(s));
    log_debug("arp: no reply from %s after %u requests", s, in->cfg.arp_retries + 1);
    tcp_arp_failed(in, ip);
}

/* Learns @mac for @ip and sends what waited for it. */
static void learn(struct inet *in, uint32_t ip, const uint8_t mac[6], bool create)
{
    struct arp_entry *e = create ? slot_for(in, ip) : lookup(in, ip);
    if (!e || e->state == ARP_STATIC)
        return;
    timer_cancel(&in->rt->timers, &e->tm);
    e->ip = ip;
    memcpy(e->mac, mac, 6);
    e->state = ARP_RESOLVED;
    e->expires = inet_now(in) + in->cfg.arp_ttl_ns;
    for (uint16_t i = 0; i < e->nq; i++) {
        fill_eth(in, e->q[i], mac);
        eth_xmit(in, e->q[i]);
        free(e->q[i]);
    }
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
    if (e && (e->state == ARP_STATIC || (e->state == ARP_RESOLVED && now < e->expires))) {
        fill_eth(in, p, e->mac);
        eth_xmit(in, p);
        return 0;
    }
    if (e && e->state == ARP_FAILED) {
        if (now < e->expires) {
            pkt_release(in->heap, p);
            return EHOSTUNREACH;
        }
        e->state = ARP_FREE;
        e = NULL;
    }
    if (!e || e->state == ARP_RESOLVED) { /* unknown, or its TTL ran out: ask */
        e = slot_for(in, ip);
        if (!e) {
            pkt_release(in->heap, p);
            in->st.arp_queue_drops++;
            return EHOSTUNREACH;
        }
        e->ip = ip;
        e->state = ARP_PENDING;
        e->tries = 0;
        e->in = in;
        e->expires = now;
        request(in, ip);
        timer_arm(&in->rt->timers, &e->tm, now + in->cfg.arp_timeout_ns);
    }
    /* PENDING: hold the packet (bounded) until the reply. */
    struct pkt *held = e->nq < ARP_QUEUE ? malloc(sizeof(*held)) : NULL;
    if (!held) {
        pkt_release(in->heap, p);
        in->st.arp_queue_drops++;
        return 0;
    }
    *held = *p;
    p->nseg = 0;
    e->q[e->nq++] = held;
    return 0;
}

void arp_input(struct inet *in, struct rxframe *f)
{
    in->st.arp_rx++;
    const struct arp_pkt *a = (const struct arp_pkt *)(f->data + ETH_HDR_LEN);
    if (f->len < ETH_HDR_LEN + sizeof(*a) || ntohs(a->htype) != 1 || ntohs(a->ptype) != ETH_P_IPV4 || a->hlen != 6 ||
        a->plen != 4 || (ntohs(a->op) != 1 && ntohs(a->op) != 2) || (a->sha[0] & 1)) {
        in->st.arp_rx_bad++;
        heap_unref(in->heap, f->blk);
        return;
    }
    uint32_t spa = a->spa;
    uint8_t sha[6];
    memcpy(sha, a->sha, 6);
    bool for_us = a->tpa == in->ip;
    uint16_t op = ntohs(a->op);
    heap_unref(in->heap, f->blk);
    if (spa == 0 || spa == in->ip)
        return; /* probes and our own address: nothing to learn */
    /* RFC 826: update an entry we have; create one only if it asks for us. */
    learn(in, spa, sha, for_us);
    if (for_us && op == 1)
        send_arp(in, 2, sha, spa, sha);
}

void arp_init(struct inet *in)
{
    for (int i = 0; i < ARP_SLOTS; i++) {
        in->arp[i].in = in;
        timer_init(&in->arp[i].tm, retry);
    }
    for (int i = 0; i < in->cfg.n_arp_static; i++) {
        const struct config_arp *c = &in->cfg.arp_static[i];
        struct arp_entry *e = slot_for(in, c->ip.s_addr);
        if (!e) {
            log_warn("arp: no room for static entry %s (two per hash bucket); ignored", inet_ntoa(c->ip));
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
