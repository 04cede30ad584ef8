/*
 * Ethernet II, the stack's link layer: header blocks for the protocols to
 * build on, the transmit batch (eth_xmit, flushed by inet_flush), input
 * and demultiplexing by EtherType, and the loopback of packets to our own
 * address (delivered at the next pass, as a loopback interface would).
 *
 * Must never block or wait: a full device drops what it refuses (TCP
 * retransmits; the drop is counted).
 */
#include "inet/inet_int.h"

#include <stdlib.h>

/* ---- transmit ---- */

struct heap_blk *inet_hdr_alloc(struct inet *in, uint8_t **data)
{
    struct heap_blk *b = heap_alloc(in->heap, INET_HDR_BLOCK);
    if (b)
        *data = heap_blk_data(in->heap, b);
    return b;
}

void inet_flush(struct inet *in)
{
    int n = in->ntx, done = 0;
    while (done < n) {
        int k = in->dev->ops->tx_burst(in->dev, in->txq + done, n - done);
        if (k <= 0)
            break;
        done += k;
    }
    for (int i = done; i < n; i++) {
        pkt_release(in->heap, &in->txq[i]);
        in->st.tx_full_drops++;
    }
    in->ntx = 0;
}

void eth_xmit(struct inet *in, struct pkt *p)
{
    in->txq[in->ntx++] = *p;
    p->nseg = 0; /* the references moved to the queue */
    if (in->ntx == INET_TXQ)
        inet_flush(in);
}

/* A packet to our own address: gathered into one heap block and received
 * at the next pass, as a loopback interface would (a copy, of course). */
void eth_loopback(struct inet *in, struct pkt *p)
{
    struct eth_hdr *eh = (struct eth_hdr *)p->seg[0].data;
    memcpy(eh->dst, in->mac, 6);
    memcpy(eh->src, in->mac, 6);
    eh->type = htons(ETH_P_IPV4);
    if (in->nloop == in->loop_cap && in->loop_cap < INET_LOOP_MAX) {
        int cap = in->loop_cap ? in->loop_cap * 2 : 256;
        struct rxframe *n = realloc(in->loop, (size_t)cap * sizeof(*n));
        if (n) {
            in->loop = n;
            in->loop_cap = cap;
        }
    }
    struct heap_blk *b = in->nloop < in->loop_cap ? heap_alloc(in->heap, p->len) : NULL;
    if (!b) {
        in->st.loopback_drops++;
        pkt_release(in->heap, p);
        return;
    }
    uint8_t *d = heap_blk_data(in->heap, b);
    uint32_t at = 0;
    for (uint16_t i = 0; i < p->nseg; i++) {
        memcpy(d + at, p->seg[i].data, p->seg[i].len);
        at += p->seg[i].len;
    }
    in->loop[in->nloop++] = (struct rxframe){b, d, p->len, 0};
    in->st.loopback++;
    pkt_release(in->heap, p);
}

/* ---- receive ---- */

void eth_input(struct inet *in, struct rxframe *f)
{
    in->st.eth_rx++;
    if (f->len < ETH_HDR_LEN || (f->flags & PKT_RX_CSUM_BAD)) {
        in->st.eth_rx_bad++;
        heap_unref(in->heap, f->blk);
        return;
    }
    const struct eth_hdr *eh = (const struct eth_hdr *)f->data;
    static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    if (memcmp(eh->dst, in->mac, 6) != 0 && memcmp(eh->dst, bcast, 6) != 0) {
        in->st.eth_rx_not_ours++;
        heap_unref(in->heap, f->blk);
        return;
    }
    switch (ntohs(eh->type)) {
    case ETH_P_IPV4:
        ip_input(in, f);
        break;
    case ETH_P_ARP:
        arp_input(in, f);
        break;
    default:
        in->st.eth_rx_other_type++;
        heap_unref(in->heap, f->blk);
        break;
    }
}

void eth_loop_input(struct inet *in)
{
    /* Frames looped back may loop more back: take this pass's set (swap
     * in an empty array for what they send). */
    struct rxframe *lp = in->loop;
    int k = in->nloop, cap = in->loop_cap;
    in->loop = NULL;
    in->nloop = in->loop_cap = 0;
    for (int i = 0; i < k; i++)
        eth_input(in, &lp[i]);
    if (!in->loop) {
        in->loop = lp; /* nothing new: keep the array */
        in->loop_cap = cap;
    } else {
        free(lp);
    }
    in->rt->activity++;
}
