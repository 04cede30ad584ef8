/*
 * IPv4 fragments (RFC 791 3.2, RFC 815): reassembly of received datagrams
 * and fragmentation of UDP datagrams larger than the MTU.
 *
 * Reassembly holds at most FRAG_SLOTS datagrams and FRAG_BYTES bytes,
 * keeps fragments as views of the frames they came in (no copy until the
 * datagram is whole, then one: the pieces are gathered into one block),
 * drops a datagram whose fragments overlap (the usual defence against
 * overlapping-fragment attacks), and forgets a datagram after FRAG_TTL.
 * Every drop is counted. Fragmentation sends views of the application's
 * buffers, each fragment with its own header block: no payload copy.
 */
#include "inet/inet_int.h"

#include <stdlib.h>

#define FRAG_TTL_NS (30ull * 1000000000ull)

static void expire(struct timer *t);

static void slot_free(struct inet *in, struct frag_slot *s)
{
    timer_cancel(&in->rt->timers, &s->tm);
    for (int i = 0; i < s->n; i++)
        heap_unref(in->heap, s->piece[i].blk);
    in->frag_bytes -= s->held;
    memset(s, 0, sizeof(*s));
    timer_init(&s->tm, expire);
    s->in = in;
}

/* The deadline passed with fragments missing: the datagram is lost. */
static void expire(struct timer *t)
{
    struct frag_slot *s = container_of(t, struct frag_slot, tm);
    s->in->st.ip_frag_timeouts++;
    slot_free(s->in, s);
}

void ip_frag_init(struct inet *in)
{
    for (int i = 0; i < FRAG_SLOTS; i++) {
        timer_init(&in->frag[i].tm, expire);
        in->frag[i].in = in;
    }
}

static struct frag_slot *slot_find(struct inet *in, const struct ip_hdr *ip)
{
    uint64_t now = inet_now(in);
    struct frag_slot *free_slot = NULL, *oldest = NULL;
    for (int i = 0; i < FRAG_SLOTS; i++) {
        struct frag_slot *s = &in->frag[i];
        if (!s->used) {
            if (!free_slot)
                free_slot = s;
            continue;
        }
        if (s->src == ip->src && s->dst == ip->dst && s->id == ip->id && s->proto == ip->proto)
            return s;
        if (!oldest || s->deadline < oldest->deadline)
            oldest = s;
    }
    struct frag_slot *s = free_slot;
    if (!s) {
        in->st.ip_rx_frag_dropped++; /* no room: the oldest datagram gives way */
        slot_free(in, oldest);
        s = oldest;
    }
    s->used = true;
    s->src = ip->src;
    s->dst = ip->dst;
    s->id = ip->id;
    s->proto = ip->proto;
    s->deadline = now + FRAG_TTL_NS;
    timer_arm(&in->rt->timers, &s->tm, s->deadline);
    return s;
}

/* Gathers a complete datagram into one frame and hands it on. */
static void deliver(struct inet *in, struct frag_slot *s, const struct eth_hdr *eh)
{
    uint32_t len = ETH_HDR_LEN + 20 + s->total;
    struct heap_blk *b = heap_alloc(in->heap, len);
    if (!b) {
        in->st.ip_rx_frag_dropped++;
        slot_free(in, s);
        return;
    }
    uint8_t *d = heap_blk_data(in->heap, b);
    memcpy(d, eh, ETH_HDR_LEN);
    struct ip_hdr *ip = (struct ip_hdr *)(d + ETH_HDR_LEN);
    ip->vihl = 0x45;
    ip->tos = 0;
    ip->len = htons((uint16_t)(20 + s->total));
    ip->id = s->id;
    ip->frag = 0;
    ip->ttl = 64;
    ip->proto = s->proto;
    ip->src = s->src;
    ip->dst = s->dst;
    ip->csum = 0;
    ip->csum = csum_fold(csum_add(0, ip, 20));
    for (int i = 0; i < s->n; i++)
        memcpy(d + ETH_HDR_LEN + 20 + s->piece[i].off, s->piece[i].data, s->piece[i].len); /* forced: one buffer */
    slot_free(in, s);
    in->st.ip_frag_reassembled++;
    struct rxframe f = {b, d, len, 0};
    uint8_t *l4 = d + ETH_HDR_LEN + 20;
    switch (ip->proto) {
    case IPPROTO_UDP:
        udp_input(in, &f, ip, l4, len - ETH_HDR_LEN - 20);
        break;
    case IPPROTO_TCP:
        tcp_input(in, &f, ip, l4, len - ETH_HDR_LEN - 20);
        break;
    case IPPROTO_ICMP:
        icmp_input(in, &f, ip, l4, len - ETH_HDR_LEN - 20);
        break;
    default:
        in->st.ip_rx_other_proto++;
        heap_unref(in->heap, b);
        break;
    }
}

/* Where the furthest fragment in so far ends. */
static uint32_t max_end(const struct frag_slot *s)
{
    uint32_t m = 0;
    for (int i = 0; i < s->n; i++)
        m = MAX(m, (uint32_t)s->piece[i].off + s->piece[i].len);
    return m;
}

void ip_reassemble(struct inet *in, struct rxframe *f, struct ip_hdr *ip, uint32_t hlen, uint32_t tlen)
{
    uint16_t frag = ntohs(ip->frag);
    uint32_t off = (uint32_t)(frag & IP_OFFMASK) * 8;
    uint32_t len = tlen - hlen;
    bool more = frag & IP_MF;
    if ((more && (len % 8 || len == 0)) || off + len > 65535 - 20) {
        in->st.ip_rx_frag_dropped++; /* malformed: only the last fragment may end off an 8-byte boundary */
        heap_unref(in->heap, f->blk);
        return;
    }
    size_t cap = heap_blk_cap(in->heap, f->blk);
    if (in->frag_bytes + cap > FRAG_BYTES) {
        in->st.ip_rx_frag_dropped++;
        heap_unref(in->heap, f->blk);
        return;
    }
    struct frag_slot *s = slot_find(in, ip);
    for (int i = 0; i < s->n; i++) {
        uint32_t a = s->piece[i].off, e = a + s->piece[i].len;
        if (a == off && e == off + len) { /* a duplicate (the network copied it): keep the first */
            in->st.ip_rx_frag_dropped++;
            heap_unref(in->heap, f->blk);
            return;
        }
        /* Overlaps (RFC 5722's rule, applied to IPv4 as Linux does): the
         * usual shape of an attack, so the whole datagram goes. */
        if (off < e && a < off + len) {
            in->st.ip_rx_frag_dropped++;
            slot_free(in, s);
            heap_unref(in->heap, f->blk);
            return;
        }
    }
    if (s->n == FRAG_PIECES || (!more && s->total) || (s->total && off + len > s->total) ||
        (!more && s->n && off + len < max_end(s))) {
        in->st.ip_rx_frag_dropped++;
        slot_free(in, s);
        heap_unref(in->heap, f->blk);
        return;
    }
    if (!more)
        s->total = off + len;
    s->piece[s->n++] = (struct frag_piece){f->blk, (uint8_t *)ip + hlen, (uint16_t)off, (uint16_t)len};
    s->have += len;
    s->held += (uint32_t)cap;
    in->frag_bytes += (uint32_t)cap;
    if (s->total && s->have == s->total)
        deliver(in, s, (const struct eth_hdr *)f->data);
}

void ip_frag_fini(struct inet *in)
{
    for (int i = 0; i < FRAG_SLOTS; i++)
        if (in->frag[i].used)
            slot_free(in, &in->frag[i]);
}

int ip_output_fragments(struct inet *in, struct pkt *p, uint32_t dst, uint8_t proto)
{
    /* @p: Ethernet and IPv4 header room, then the transport header and
     * payload. Each fragment: its own header block, then views of @p's
     * bytes (the transport header travels in the first). */
    uint32_t payload = p->len - ETH_HDR_LEN - 20;
    uint32_t step = (in->cfg.mtu - 20) & ~7u;
    uint16_t id = htons(in->ip_id++);
    int err = 0;
    for (uint32_t off = 0; off < payload && !err; off += step) {
        uint32_t n = MIN(step, payload - off);
        uint8_t *d;
        struct heap_blk *hb = inet_hdr_alloc(in, &d);
        if (!hb) {
            err = ENOMEM;
            break;
        }
        struct pkt f = {.len = ETH_HDR_LEN + 20, .nseg = 1};
        f.seg[0] = (struct pkt_seg){hb, d, ETH_HDR_LEN + 20};
        /* Views of [ETH + 20 + off, + n) of @p. */
        uint32_t skip = ETH_HDR_LEN + 20 + off, want = n;
        for (uint16_t i = 0; i < p->nseg && want; i++) {
            struct pkt_seg *sg = &p->seg[i];
            if (skip >= sg->len) {
                skip -= sg->len;
                continue;
            }
            uint32_t take = MIN(sg->len - skip, want);
            if (f.nseg == PKT_MAX_SEGS) {
                err = E2BIG;
                break;
            }
            heap_ref(sg->blk);
            f.seg[f.nseg++] = (struct pkt_seg){sg->blk, sg->data + skip, take};
            f.len += take;
            want -= take;
            skip = 0;
        }
        if (err) {
            pkt_release(in->heap, &f);
            break;
        }
        struct ip_hdr *ip = (struct ip_hdr *)(d + ETH_HDR_LEN);
        ip->vihl = 0x45;
        ip->tos = 0;
        ip->len = htons((uint16_t)(20 + n));
        ip->id = id;
        ip->frag = htons((uint16_t)((off / 8) | (off + n < payload ? IP_MF : 0)));
        ip->ttl = 64;
        ip->proto = proto;
        ip->src = in->ip;
        ip->dst = dst;
        ip->csum = 0;
        ip->csum = csum_fold(csum_add(0, ip, 20));
        in->st.ip_tx++;
        in->st.ip_frag_sent++;
        err = arp_output(in, &f, dst);
    }
    pkt_release(in->heap, p);
    return err;
}
