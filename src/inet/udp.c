/*
 * UDP (RFC 768) with Linux-style socket semantics: bind to our address or
 * INADDR_ANY, port 0 picks an ephemeral port, a connected socket has a
 * default peer and only hears from it, datagrams over the MTU leave in IPv4
 * fragments (up to 65507 bytes; beyond, EMSGSIZE), a closed port answers
 * ICMP port unreachable. Received
 * datagrams are handed to pops as views of the frames they arrived in.
 */
#include "inet/inet_int.h"

#include <stdlib.h>

int pkt_attach(struct inet *in, struct pkt *p, void *buf, uint32_t len)
{
    if (len == 0)
        return 0;
    if (p->nseg >= PKT_MAX_SEGS)
        return E2BIG;
    struct heap_blk *b = heap_find(in->heap, buf, len);
    if (b) {
        heap_ref(b);
    } else {
        /* Not heap memory: copy it, so the caller may reuse it at once
         * (the application's bytes: never from the heap's reserve). */
        b = heap_alloc_app(in->heap, len);
        if (!b)
            return ENOMEM;
        void *copy = heap_blk_data(in->heap, b);
        memcpy(copy, buf, len);
        heap_stats_mut(in->heap)->copied_bytes += len;
        buf = copy;
    }
    p->seg[p->nseg++] = (struct pkt_seg){b, buf, len};
    p->len += len;
    return 0;
}

static bool udp_port_taken(const struct inet *in, uint16_t port)
{
    return in->udp_ports[port] != NULL;
}

int udp_bind_port(struct inet *in, struct inet_sock *s, uint16_t port)
{
    if (port == 0) {
        port = inet_ephemeral(in, udp_port_taken);
        if (!port)
            return EADDRINUSE;
    } else if (in->udp_ports[port]) {
        return EADDRINUSE;
    }
    s->lport = port;
    s->hnext = NULL;
    in->udp_ports[port] = s;
    s->state = SS_BOUND;
    return 0;
}

void udp_unbind(struct inet *in, struct inet_sock *s)
{
    if (s->state != SS_BOUND)
        return;
    in->udp_ports[s->lport] = NULL;
    s->state = SS_CLOSED;
}

int udp_push(struct inet *in, struct inet_sock *s, const demi_sgarray_t *sga, const struct sockaddr_in *to,
             struct sched_task *t)
{
    uint32_t dst;
    uint16_t dport;
    if (to) {
        dst = to->sin_addr.s_addr;
        dport = ntohs(to->sin_port);
    } else if (s->has_peer) {
        dst = s->rip;
        dport = s->rport;
    } else {
        return EDESTADDRREQ;
    }
    int64_t len = mem_sga_len(sga);
    if (len > 65507) /* the largest IPv4 datagram; larger ones leave in fragments */
        return EMSGSIZE;
    if (dport == 0 || dst == 0)
        return EINVAL;
    if (s->state == SS_FRESH) {
        int e = udp_bind_port(in, s, 0);
        if (e)
            return e;
    }
    uint8_t *d;
    struct heap_blk *hb = inet_hdr_alloc(in, &d);
    if (!hb)
        return ENOMEM;
    struct pkt p = {.len = ETH_HDR_LEN + 20 + 8, .nseg = 1};
    p.seg[0] = (struct pkt_seg){hb, d, p.len};
    for (uint32_t i = 0; i < sga->sga_numsegs; i++) {
        int e = pkt_attach(in, &p, sga->sga_segs[i].sgaseg_buf, sga->sga_segs[i].sgaseg_len);
        if (e) {
            pkt_release(in->heap, &p);
            return e == E2BIG ? EMSGSIZE : e;
        }
    }
    struct udp_hdr *uh = (struct udp_hdr *)(d + ETH_HDR_LEN + 20);
    uint16_t ulen = (uint16_t)(8 + len);
    uh->sport = htons(s->lport);
    uh->dport = htons(dport);
    uh->len = htons(ulen);
    uh->csum = 0;
    if ((in->dev->offloads & NETDEV_TX_L4_CSUM) && 28 + len <= in->cfg.mtu) { /* fragments: no offload */
        p.flags |= PKT_TX_L4_CSUM;
    } else {
        uint16_t c = csum_l4(csum_pseudo(in->ip, dst, IPPROTO_UDP, ulen), csum_pkt(&p, ETH_HDR_LEN + 20));
        uh->csum = c ? c : 0xffff; /* RFC 768: 0 means "no checksum" */
    }
    in->st.udp_tx++;
    int e = ip_output(in, &p, dst, IPPROTO_UDP);
    sched_copy_sga(&t->qr.qr_value.sga, sga);
    t->qr.qr_opcode = e ? DEMI_OPC_FAILED : DEMI_OPC_PUSH;
    t->qr.qr_ret = e;
    sched_complete(&in->rt->sched, t);
    return 0;
}

/* What a queued datagram costs its socket's SO_RCVBUF: the block it pins
 * and its queue entry, not its payload (as Linux counts an skb's
 * truesize). Counting payload let a flood of tiny or empty datagrams pin
 * a whole frame block each, without bound. */
static uint32_t dgram_charge(const struct inet *in, const struct udp_dgram *dg)
{
    return (uint32_t)heap_blk_cap(in->heap, dg->b.blk) + (uint32_t)sizeof(*dg);
}

/* Gives @dg to the pop task @t (the frame's reference goes with it). */
static void deliver(struct inet *in, struct sched_task *t, struct udp_dgram *dg)
{
    demi_sgarray_t *sga = &t->qr.qr_value.sga;
    mem_sga_begin(in->heap, sga);
    mem_sga_add(in->heap, sga, dg->b.blk, dg->b.data, dg->b.len);
    sga->sga_addr = dg->from;
    t->qr.qr_opcode = DEMI_OPC_POP;
    t->qr.qr_ret = 0;
    sched_complete(&in->rt->sched, t);
}

int udp_pop(struct inet *in, struct inet_sock *s, struct sched_task *t)
{
    if (s->state == SS_FRESH) {
        int e = udp_bind_port(in, s, 0); /* like Linux: an unbound socket gets a port */
        if (e)
            return e;
    }
    t->owner = s;
    struct udp_dgram *dg = s->rx_head;
    if (dg && !s->pops.head) {
        s->rx_head = dg->next;
        if (!s->rx_head)
            s->rx_tail = NULL;
        s->rx_bytes -= dgram_charge(in, dg);
        deliver(in, t, dg);
        free(dg);
        return 0;
    }
    tlist_push(&s->pops, t);
    return 0;
}

void udp_input(struct inet *in, struct rxframe *f, struct ip_hdr *ip, uint8_t *l4, uint32_t l4len)
{
    in->st.udp_rx++;
    struct udp_hdr *uh = (struct udp_hdr *)l4;
    uint32_t ulen = l4len >= 8 ? ntohs(uh->len) : 0;
    if (l4len < 8 || ulen < 8 || ulen > l4len) {
        in->st.udp_rx_bad++;
        goto drop;
    }
    if (uh->csum && !(f->flags & PKT_RX_CSUM_GOOD && in->cfg.rx_csum_skip)) {
        if (csum_l4(csum_pseudo(ip->src, ip->dst, IPPROTO_UDP, (uint16_t)ulen), csum_add(0, l4, ulen)) != 0) {
            in->st.udp_rx_bad_csum++;
            goto drop;
        }
    }
    uint16_t dport = ntohs(uh->dport);
    struct inet_sock *s = in->udp_ports[dport];
    if (!s || (s->lip && s->lip != ip->dst) || (s->has_peer && (s->rip != ip->src || s->rport != ntohs(uh->sport)))) {
        in->st.udp_rx_no_port++;
        if (ip->dst == in->ip)
            icmp_send_unreach(in, ip, ntohs(ip->len), 3);
        goto drop;
    }
    struct udp_dgram tmp = {.b = {f->blk, l4 + 8, ulen - 8}};
    tmp.from.sin_family = AF_INET;
    tmp.from.sin_addr.s_addr = ip->src;
    tmp.from.sin_port = uh->sport;
    struct sched_task *t = tlist_pop(&s->pops);
    if (t) {
        deliver(in, t, &tmp);
        return;
    }
    /* An empty queue takes any datagram, as Linux's does: SO_RCVBUF may be
     * smaller than one frame block, and a reassembled datagram's block is
     * 128 KiB. So a socket holds at most SO_RCVBUF plus one datagram. */
    if (s->rx_bytes && (uint64_t)s->rx_bytes + dgram_charge(in, &tmp) > s->opts.rcvbuf) {
        in->st.udp_rx_queue_full++;
        goto drop;
    }
    struct udp_dgram *dg = malloc(sizeof(*dg));
    if (!dg) {
        in->st.udp_rx_queue_full++;
        goto drop;
    }
    *dg = tmp;
    dg->next = NULL;
    if (s->rx_tail)
        s->rx_tail->next = dg;
    else
        s->rx_head = dg;
    s->rx_tail = dg;
    s->rx_bytes += dgram_charge(in, dg);
    return;
drop:
    heap_unref(in->heap, f->blk);
}

void udp_close(struct inet *in, struct inet_sock *s, bool deliver_results)
{
    struct sched_task *t;
    while ((t = tlist_pop(&s->pops)))
        if (deliver_results)
            sched_fail(&in->rt->sched, t, ECANCELED);
    while (s->rx_head) {
        struct udp_dgram *dg = s->rx_head;
        s->rx_head = dg->next;
        heap_unref(in->heap, dg->b.blk);
        free(dg);
    }
    s->rx_tail = NULL;
    s->rx_bytes = 0;
    udp_unbind(in, s);
}
