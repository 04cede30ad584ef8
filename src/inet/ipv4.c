/*
 * IPv4 (RFC 791, RFC 1122 3.2.1) and ICMP (RFC 792). Input validates the
 * header, its length and checksum, counts and drops what is bad or not
 * for us, gives fragments to reassembly (ipfrag.c), and hands TCP, UDP and
 * ICMP to their handlers with a view of the transport bytes. ICMP echo
 * requests get replies; UDP to a closed port gets "port unreachable",
 * rate-limited. Output fills the IPv4 header and hands the packet to ARP,
 * to fragmentation (ipfrag.c) or, for our own address, to the loopback
 * (eth.c); ARP's news of an unreachable neighbour comes back through here
 * to the transports.
 */
#include "inet/inet_int.h"

void ip_input(struct inet *in, struct rxframe *f)
{
    in->st.ip_rx++;
    uint32_t avail = f->len - ETH_HDR_LEN;
    struct ip_hdr *ip = (struct ip_hdr *)(f->data + ETH_HDR_LEN);
    if (avail < 20 || (ip->vihl >> 4) != 4) {
        in->st.ip_rx_bad_hdr++;
        goto drop;
    }
    uint32_t hlen = (uint32_t)(ip->vihl & 0xf) * 4;
    uint32_t tlen = ntohs(ip->len);
    if (hlen < 20 || hlen > tlen || tlen > avail) {
        in->st.ip_rx_bad_hdr++;
        goto drop;
    }
    if (!(f->flags & PKT_RX_CSUM_GOOD && in->cfg.rx_csum_skip) && csum_fold(csum_add(0, ip, hlen)) != 0) {
        in->st.ip_rx_bad_csum++;
        goto drop;
    }
    /* RFC 1122 3.2.1.3, RFC 1112 4: a broadcast or multicast source is
     * invalid (an answer to it would go to every host). */
    if (ip->src == 0xffffffffu || (ntohl(ip->src) >> 28) == 0xe) {
        in->st.ip_rx_bad_hdr++;
        goto drop;
    }
    if (ip->dst != in->ip && ip->dst != 0xffffffffu) {
        in->st.ip_rx_not_ours++;
        goto drop;
    }
    if (ntohs(ip->frag) & (IP_MF | IP_OFFMASK)) {
        ip_reassemble(in, f, ip, hlen, tlen);
        return;
    }
    /* Ethernet may pad short frames: trust the IP length, not the frame's. */
    uint8_t *l4 = (uint8_t *)ip + hlen;
    uint32_t l4len = tlen - hlen;
    switch (ip->proto) {
    case IPPROTO_TCP:
        tcp_input(in, f, ip, l4, l4len);
        return;
    case IPPROTO_UDP:
        udp_input(in, f, ip, l4, l4len);
        return;
    case IPPROTO_ICMP:
        icmp_input(in, f, ip, l4, l4len);
        return;
    default:
        in->st.ip_rx_other_proto++;
        break;
    }
drop:
    heap_unref(in->heap, f->blk);
}

/* Sends an ICMP message of @len bytes (header included) built by the caller
 * at @icmp inside a header block @b, to @dst. */
static void icmp_send(struct inet *in, struct heap_blk *b, uint8_t *frame, uint32_t len, uint32_t dst)
{
    struct icmp_hdr *ih = (struct icmp_hdr *)(frame + ETH_HDR_LEN + 20);
    ih->csum = 0;
    ih->csum = csum_fold(csum_add(0, ih, len));
    struct pkt p = {.len = ETH_HDR_LEN + 20 + len, .nseg = 1};
    p.seg[0] = (struct pkt_seg){b, frame, p.len};
    ip_output(in, &p, dst, IPPROTO_ICMP);
}

void icmp_input(struct inet *in, struct rxframe *f, struct ip_hdr *ip, uint8_t *l4, uint32_t l4len)
{
    in->st.icmp_rx++;
    struct icmp_hdr *ih = (struct icmp_hdr *)l4;
    if (l4len < sizeof(*ih) || csum_fold(csum_add(0, l4, l4len)) != 0) {
        in->st.icmp_rx_bad++;
        heap_unref(in->heap, f->blk);
        return;
    }
    if (ih->type != 8 || ih->code != 0 || ip->dst != in->ip) {
        heap_unref(in->heap, f->blk); /* only echo requests to us need an answer */
        return;
    }
    /* RFC 1122 3.2.2.6: the reply carries all the request's data. One
     * larger than our MTU (a reassembled request, or one from a larger
     * MTU) leaves in fragments: ip_output fragments what exceeds the MTU. */
    /* Echo reply: the request's bytes with the type changed. The header
     * block holds up to INET_HDR_BLOCK bytes; longer requests reuse the
     * request's frame, edited in place (it is ours until we drop it). */
    uint32_t src = ip->src;
    if (ETH_HDR_LEN + 20 + l4len <= INET_HDR_BLOCK) {
        uint8_t *d;
        struct heap_blk *b = inet_hdr_alloc(in, &d);
        if (b) {
            memcpy(d + ETH_HDR_LEN + 20, l4, l4len);
            d[ETH_HDR_LEN + 20] = 0;
            icmp_send(in, b, d, l4len, src);
            in->st.icmp_echo_replies++;
        }
        heap_unref(in->heap, f->blk);
        return;
    }
    /* Long request: answer from the received frame, in place. Its IP
     * header may carry options, so the reply's header is rebuilt just in
     * front of the ICMP bytes. */
    uint8_t *frame = l4 - 20 - ETH_HDR_LEN;
    if (frame < f->data) {
        heap_unref(in->heap, f->blk);
        return;
    }
    ih->type = 0;
    icmp_send(in, f->blk, frame, l4len, src);
    in->st.icmp_echo_replies++;
}

void icmp_send_unreach(struct inet *in, const struct ip_hdr *ip, uint32_t iplen, uint8_t code)
{
    /* RFC 1812 4.3.2.8: rate-limited; here at most one per millisecond. */
    uint64_t now = inet_now(in);
    if (in->last_unreach && now - in->last_unreach < 1000000)
        return;
    in->last_unreach = now;
    uint8_t *d;
    struct heap_blk *b = inet_hdr_alloc(in, &d);
    if (!b)
        return;
    /* Type 3, then the offending IP header and 8 bytes of its payload. */
    uint32_t quote = (uint32_t)(ip->vihl & 0xf) * 4 + 8;
    if (quote > iplen)
        quote = iplen;
    if (ETH_HDR_LEN + 20 + 8 + quote > INET_HDR_BLOCK)
        quote = INET_HDR_BLOCK - ETH_HDR_LEN - 20 - 8;
    uint8_t *icmp = d + ETH_HDR_LEN + 20;
    memset(icmp, 0, 8);
    icmp[0] = 3;
    icmp[1] = code;
    memcpy(icmp + 8, ip, quote);
    icmp_send(in, b, d, 8 + quote, ip->src);
    in->st.icmp_unreach_sent++;
}

int ip_output(struct inet *in, struct pkt *p, uint32_t dst, uint8_t proto)
{
    struct ip_hdr *ip = (struct ip_hdr *)(p->seg[0].data + ETH_HDR_LEN);
    ip->vihl = 0x45;
    ip->tos = 0;
    ip->len = htons((uint16_t)(p->len - ETH_HDR_LEN));
    ip->id = htons(in->ip_id++);
    ip->frag = htons(IP_DF);
    ip->ttl = 64;
    ip->proto = proto;
    ip->csum = 0;
    ip->src = in->ip;
    ip->dst = dst;
    p->l3_off = ETH_HDR_LEN;
    p->l4_off = ETH_HDR_LEN + 20;
    if (in->dev->offloads & NETDEV_TX_IPV4_CSUM)
        p->flags |= PKT_TX_IPV4_CSUM;
    else
        ip->csum = csum_fold(csum_add(0, ip, 20));
    if (dst == in->ip) {
        in->st.ip_tx++;
        eth_loopback(in, p);
        return 0;
    }
    if (p->len - ETH_HDR_LEN > in->cfg.mtu)
        return ip_output_fragments(in, p, dst, proto); /* only UDP builds these */
    in->st.ip_tx++;
    return arp_output(in, p, dst);
}

void ip_neigh_unreachable(struct inet *in, uint32_t ip)
{
    /* Only TCP waits on a neighbour (a connect in SYN_SENT): a UDP
     * datagram that ARP held is dropped with the queue, as on a link. */
    tcp_arp_failed(in, ip);
}
