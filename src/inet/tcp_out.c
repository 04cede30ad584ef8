/*
 * TCP output and everything driven by time: building segments (headers in
 * a small heap block, payload as referenced views of the application's
 * buffers, so a retransmission is a new packet over the same bytes), the
 * send loop with flow control, Nagle (off by default) and sender-side SWS
 * avoidance, RTT estimation and the retransmission timer (RFC 6298, Karn's
 * rule, backoff), fast retransmit and recovery (RFC 5681 / NewReno RFC
 * 6582), SACK-based loss recovery (RFC 6675), delayed ACKs, zero-window
 * probes, keep-alive, TIME_WAIT. How cwnd grows and shrinks is the
 * connection's congestion control algorithm's (tcp_cc.c).
 *
 * Timers only mark the connection and wake the stack's background task
 * (tcp_do_work), which does the work: nothing heavy runs inside the wheel.
 */
#include "inet/tcp.h"

#include <stdlib.h>

/* ---- send queue ---- */

static struct sndseg *sq_at(struct tcp_pcb *pcb, uint32_t i)
{
    return &pcb->sq[(pcb->sq_head + i) % pcb->sq_cap];
}

static int sq_grow(struct tcp_pcb *pcb)
{
    uint32_t cap = pcb->sq_cap ? pcb->sq_cap * 2 : 32;
    struct sndseg *n = malloc(cap * sizeof(*n));
    if (!n)
        return ENOMEM;
    for (uint32_t i = 0; i < pcb->sq_n; i++)
        n[i] = *sq_at(pcb, i);
    free(pcb->sq);
    pcb->sq = n;
    pcb->sq_cap = cap;
    pcb->sq_head = 0;
    return 0;
}

int tcp_sq_append(struct inet *in, struct tcp_pcb *pcb, const demi_sgarray_t *sga)
{
    /* All or nothing: take every reference first. */
    uint32_t need = sga->sga_numsegs;
    while (pcb->sq_cap - pcb->sq_n < need)
        if (sq_grow(pcb))
            return ENOMEM;
    uint32_t added = 0;
    uint32_t seq = pcb->snd_end;
    for (uint32_t i = 0; i < sga->sga_numsegs; i++) {
        uint8_t *buf = sga->sga_segs[i].sgaseg_buf;
        uint32_t len = sga->sga_segs[i].sgaseg_len;
        if (len == 0)
            continue;
        struct heap_blk *b = heap_find(in->heap, buf, len);
        if (b) {
            heap_ref(b); /* held until acknowledged: use-after-free protection */
        } else {
            /* Not heap memory: copied, the caller may reuse it at once
             * (the application's bytes: never from the heap's reserve). */
            b = heap_alloc_app(in->heap, len);
            if (!b) {
                for (uint32_t k = 0; k < added; k++)
                    heap_unref(in->heap, sq_at(pcb, pcb->sq_n + k)->blk);
                return ENOMEM;
            }
            memcpy(heap_blk_data(in->heap, b), buf, len);
            heap_stats_mut(in->heap)->copied_bytes += len;
            buf = heap_blk_data(in->heap, b);
        }
        *sq_at(pcb, pcb->sq_n + added) = (struct sndseg){b, buf, len, seq};
        seq += len;
        added++;
    }
    pcb->sq_n += added;
    pcb->snd_end = seq;
    return 0;
}

void tcp_sq_release(struct inet *in, struct tcp_pcb *pcb, uint32_t n)
{
    for (uint32_t i = 0; i < n && pcb->sq_n; i++) {
        heap_unref(in->heap, sq_at(pcb, 0)->blk);
        pcb->sq_head = (pcb->sq_head + 1) % pcb->sq_cap;
        pcb->sq_n--;
    }
}

/* Drops queued bytes from @end on (unsent data of cancelled pushes). */
void tcp_sq_truncate(struct inet *in, struct tcp_pcb *pcb, uint32_t end)
{
    while (pcb->sq_n) {
        struct sndseg *s = sq_at(pcb, pcb->sq_n - 1);
        if (seq_ge(s->seq, end)) {
            heap_unref(in->heap, s->blk);
            pcb->sq_n--;
        } else {
            if (seq_gt(s->seq + s->len, end))
                s->len = end - s->seq;
            break;
        }
    }
    if (seq_gt(pcb->snd_end, end))
        pcb->snd_end = end;
}

/* Releases data below @ack. */
static uint32_t sq_ack(struct inet *in, struct tcp_pcb *pcb, uint32_t ack)
{
    uint32_t freed = 0;
    while (pcb->sq_n) {
        struct sndseg *s = sq_at(pcb, 0);
        if (seq_le(s->seq + s->len, ack)) {
            freed += s->len;
            heap_unref(in->heap, s->blk);
            pcb->sq_head = (pcb->sq_head + 1) % pcb->sq_cap;
            pcb->sq_n--;
            continue;
        }
        if (seq_gt(ack, s->seq)) {
            uint32_t cut = ack - s->seq;
            s->data += cut;
            s->len -= cut;
            s->seq = ack;
            freed += cut;
        }
        break;
    }
    return freed;
}

/* Index of the queued run holding @seq (which must be queued). */
static uint32_t sq_find(struct tcp_pcb *pcb, uint32_t seq)
{
    uint32_t lo = 0, hi = pcb->sq_n;
    while (hi - lo > 1) {
        uint32_t mid = (lo + hi) / 2;
        if (seq_le(sq_at(pcb, mid)->seq, seq))
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* ---- invariants ---- */

static void check_failed(const struct tcp_pcb *pcb, const char *where, const char *what)
{
    log_error("tcp %u->%u: invariant broken after %s: %s; state %u, iss %u snd_una %u snd_nxt %u snd_max %u "
              "snd_end %u fin_pending %d fin_sent %d fin_seq %u, sq_n %u sq_cap %u sq_head %u, nsack %u sacked %u, "
              "rcv_nxt %u rq_n %u rq_bytes %u ooo_n %u ooo_bytes %u rcv_mem %u",
              pcb->lport, pcb->rport, where, what, pcb->state, pcb->iss, pcb->snd_una, pcb->snd_nxt, pcb->snd_max,
              pcb->snd_end, pcb->fin_pending, pcb->fin_sent, pcb->fin_seq, pcb->sq_n, pcb->sq_cap, pcb->sq_head,
              pcb->sb.n, pcb->sb.bytes, pcb->rcv_nxt, pcb->rq_n, pcb->rq_bytes, pcb->ooo_n, pcb->ooo_bytes,
              pcb->rcv_mem);
    __builtin_trap(); /* test builds only (TCP_INVARIANTS) */
}

#define INV(cond)                                                                                                      \
    do {                                                                                                               \
        if (!(cond))                                                                                                   \
            check_failed(pcb, where, #cond);                                                                           \
    } while (0)

void tcp_check_pcb(const struct tcp_pcb *pcb, const char *where)
{
    INV(pcb->state <= TCPS_TIME_WAIT && pcb->state != TCPS_LISTEN);
    if (pcb->state == TCPS_CLOSED) {
        /* Dropped, held by its socket for the error: nothing left in it. */
        INV(pcb->sq_n == 0 && pcb->rq_n == 0 && pcb->ooo_n == 0 && pcb->rcv_mem == 0);
        INV(!timer_armed(&pcb->rto_tm) && !timer_armed(&pcb->persist_tm) && !timer_armed(&pcb->tw_tm) &&
            !timer_armed(&pcb->keep_tm) && !timer_armed(&pcb->delack_tm));
        return;
    }
    /* The send queue: a ring of non-empty runs, contiguous, ending at
     * snd_end and starting at the first unacknowledged data byte (after
     * the SYN; the FIN follows snd_end). */
    INV(pcb->sq_n <= pcb->sq_cap);
    INV(pcb->sq_cap == 0 || pcb->sq_head < pcb->sq_cap);
    bool syn_acked = pcb->state != TCPS_SYN_SENT && pcb->state != TCPS_SYN_RCVD;
    INV(syn_acked == seq_gt(pcb->snd_una, pcb->iss));
    uint32_t data_una = syn_acked ? pcb->snd_una : pcb->iss + 1;
    bool fin_acked = pcb->fin_sent && seq_gt(pcb->snd_una, pcb->fin_seq);
    if (fin_acked)
        data_una = pcb->fin_seq;
    uint32_t sum = 0;
    for (uint32_t i = 0; i < pcb->sq_n; i++) {
        const struct sndseg *g = &pcb->sq[(pcb->sq_head + i) % pcb->sq_cap];
        INV(g->len > 0);
        INV(g->seq == data_una + sum);
        sum += g->len;
    }
    INV(pcb->snd_end == data_una + sum);
    /* snd_una <= snd_nxt <= snd_max <= snd_end (+ the FIN once sent). */
    INV(seq_le(pcb->snd_una, pcb->snd_nxt) && seq_le(pcb->snd_nxt, pcb->snd_max));
    INV(seq_le(pcb->snd_max, pcb->snd_end + (pcb->fin_sent ? 1u : 0u)));
    /* The FIN: queued after the last byte; sent only once closing. */
    if (pcb->fin_pending)
        INV(pcb->fin_seq == pcb->snd_end);
    if (pcb->fin_sent) {
        INV(pcb->fin_pending && pcb->snd_max == pcb->fin_seq + 1);
        INV(pcb->state >= TCPS_FIN_WAIT_1 && pcb->state != TCPS_CLOSE_WAIT);
    }
    if (pcb->state == TCPS_FIN_WAIT_2 || (pcb->state == TCPS_TIME_WAIT && pcb->fin_sent))
        INV(fin_acked);
    if (pcb->state >= TCPS_FIN_WAIT_1 && pcb->state != TCPS_CLOSE_WAIT)
        INV(pcb->fin_pending);
    /* The SACK scoreboard: sorted, disjoint, within [snd_una, snd_max]. */
    INV(pcb->sb.n <= TCP_MAX_SACK);
    sum = 0;
    for (uint32_t i = 0; i < pcb->sb.n; i++) {
        const struct sack_range *r = &pcb->sb.r[i];
        INV(seq_lt(r->start, r->end));
        INV(seq_le(pcb->snd_una, r->start) && seq_le(r->end, pcb->snd_max));
        if (i)
            INV(seq_lt(pcb->sb.r[i - 1].end, r->start));
        sum += r->end - r->start;
    }
    INV(pcb->sb.bytes == sum);
    /* The receive queue and the out-of-order runs above rcv_nxt. */
    INV(pcb->rq_n <= pcb->rq_cap);
    sum = 0;
    uint32_t mem = 0;
    for (uint32_t i = 0; i < pcb->rq_n; i++) {
        sum += pcb->rq[(pcb->rq_head + i) % pcb->rq_cap].len;
        const struct rxbuf *b = &pcb->rq[(pcb->rq_head + i) % pcb->rq_cap];
        INV(b->truesize == rx_truesize(pcb->in, b));
        mem += b->truesize;
    }
    INV(pcb->rq_bytes == sum);
    INV(pcb->ooo_n <= pcb->ooo_cap);
    sum = 0;
    for (uint32_t i = 0; i < pcb->ooo_n; i++) {
        const struct ooo_seg *o = &pcb->ooo[i];
        INV(o->b.len > 0);
        INV(seq_gt(o->seq, pcb->rcv_nxt - (pcb->fin_rcvd ? 1u : 0u)));
        if (i)
            INV(seq_le(pcb->ooo[i - 1].seq + pcb->ooo[i - 1].b.len, o->seq));
        sum += o->b.len;
        INV(o->b.truesize == rx_truesize(pcb->in, &o->b));
        mem += o->b.truesize;
    }
    INV(pcb->ooo_bytes == sum);
    /* The memory charge is what the runs held really pin. */
    INV(pcb->rcv_mem == mem);
    /* TIME_WAIT keeps its 2 MSL timer and nothing else. */
    if (pcb->state == TCPS_TIME_WAIT)
        INV(!timer_armed(&pcb->rto_tm) && !timer_armed(&pcb->persist_tm) && timer_armed(&pcb->tw_tm));
}

#undef INV

/* ---- segments ---- */

/* Room for more data: the window less the payload held, and no more than
 * half the memory left under the charge limit, so that a window is never
 * offered that the memory charge could not honour. Full-sized segments pin
 * about 1.4 times their payload, so for them the payload bound is the
 * lower one and the window is as before; only runs of tiny segments (each
 * pinning a whole frame) make the memory bound close it early. */
static uint32_t rcv_space(const struct tcp_pcb *pcb)
{
    uint32_t held = pcb->rq_bytes + pcb->ooo_bytes;
    uint32_t space = pcb->rcv_buf > held ? pcb->rcv_buf - held : 0;
    uint32_t limit = tcp_rmem_limit(pcb);
    uint32_t mem_room = limit > pcb->rcv_mem ? (limit - pcb->rcv_mem) / 2 : 0;
    return MIN(space, mem_room);
}

/* The window to advertise (RFC 9293 3.8.6.2.2): never shrink what was
 * offered, and do not open by less than an MSS (receiver SWS avoidance). */
static uint32_t window_to_offer(struct tcp_pcb *pcb)
{
    uint32_t space = rcv_space(pcb);
    uint32_t offered = seq_gt(pcb->rcv_adv, pcb->rcv_nxt) ? pcb->rcv_adv - pcb->rcv_nxt : 0;
    if (space < offered)
        return offered;
    if (space - offered < pcb->mss && space < pcb->rcv_buf / 2 && offered > 0)
        return offered;
    uint32_t max = (uint32_t)65535 << pcb->rcv_wscale;
    return space > max ? max : space;
}

/* The window field for an offer of @wnd bytes: in units of 2^rcv_wscale
 * (RFC 7323 2.2), rounded up where rounding down would pull the right edge
 * back from what was already advertised. A peer may have sent up to that
 * edge; were it retracted, the peer's next ACK (its sequence number past
 * our edge) would be unacceptable once the window is full, its ACK field
 * ignored, and both sides would wait for ever (seen against Linux with an
 * application that writes and does not read). As Linux does, the offer may
 * then exceed the free space by less than one unit. */
static uint32_t window_field(const struct tcp_pcb *pcb, uint32_t wnd)
{
    uint32_t unit = 1u << pcb->rcv_wscale;
    uint32_t offered = seq_gt(pcb->rcv_adv, pcb->rcv_nxt) ? pcb->rcv_adv - pcb->rcv_nxt : 0;
    uint32_t f = wnd >> pcb->rcv_wscale, need = offered / unit + (offered % unit != 0);
    return MIN(f > need ? f : need, 65535u);
}

static uint32_t put_ts(uint8_t *o, struct tcp_pcb *pcb, uint64_t now)
{
    uint32_t tsval = htonl((uint32_t)(now / 1000000)); /* millisecond ticks (RFC 7323 5.4) */
    uint32_t tsecr = htonl(pcb->ts_recent);
    o[0] = 1;
    o[1] = 1;
    o[2] = 8;
    o[3] = 10;
    memcpy(o + 4, &tsval, 4);
    memcpy(o + 8, &tsecr, 4);
    return 12;
}

/* SACK blocks (RFC 2018 4): the run holding the newest out-of-order
 * segment first, then the others. */
static uint32_t put_sack(uint8_t *o, struct tcp_pcb *pcb, uint32_t room)
{
    uint32_t max = (room - 4) / 8;
    if (max == 0 || pcb->ooo_n == 0)
        return 0;
    /* Coalesce adjacent runs into blocks. */
    struct sack_range blk[TCP_MAX_SACK];
    uint32_t nb = 0;
    for (uint32_t i = 0; i < pcb->ooo_n && nb < TCP_MAX_SACK; i++) {
        uint32_t s = pcb->ooo[i].seq, e = s + pcb->ooo[i].b.len;
        if (nb && blk[nb - 1].end == s)
            blk[nb - 1].end = e;
        else
            blk[nb++] = (struct sack_range){s, e};
    }
    uint32_t first = 0;
    for (uint32_t i = 0; i < nb; i++)
        if (seq_le(blk[i].start, pcb->last_ooo_seq) && seq_lt(pcb->last_ooo_seq, blk[i].end))
            first = i;
    uint32_t n = nb < max ? nb : max;
    o[0] = 1;
    o[1] = 1;
    o[2] = 5;
    o[3] = (uint8_t)(2 + 8 * n);
    uint8_t *p = o + 4;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = (first + k) % nb;
        uint32_t s = htonl(blk[i].start), e = htonl(blk[i].end);
        memcpy(p, &s, 4);
        memcpy(p + 4, &e, 4);
        p += 8;
    }
    return 4 + 8 * n;
}

void tcp_send_built(struct inet *in, struct pkt *p, struct tcp_hdr *th, uint32_t rip)
{
    uint32_t tcplen = p->len - ETH_HDR_LEN - 20;
    th->csum = 0;
    if (in->dev->offloads & NETDEV_TX_L4_CSUM) {
        p->flags |= PKT_TX_L4_CSUM;
    } else {
        th->csum = csum_l4(csum_pseudo(in->ip, rip, IPPROTO_TCP, (uint16_t)tcplen), csum_pkt(p, ETH_HDR_LEN + 20));
    }
    in->st.tcp_tx_segs++;
    ip_output(in, p, rip, IPPROTO_TCP);
}

/* Sends one segment: @flags, sequence @seq and up to @len payload bytes of
 * the send queue from @seq. Returns the payload bytes sent (fewer than
 * @len when they span more buffers than a packet holds), or -1. */
static int xmit(struct inet *in, struct tcp_pcb *pcb, uint8_t flags, uint32_t seq, uint32_t len)
{
    uint8_t *d;
    struct heap_blk *hb = inet_hdr_alloc(in, &d);
    if (!hb)
        return -1;
    uint64_t now = inet_now(in);
    struct tcp_hdr *th = (struct tcp_hdr *)(d + ETH_HDR_LEN + 20);
    uint8_t *o = (uint8_t *)(th + 1);
    uint32_t olen = 0;
    if (pcb->ts_ok)
        olen += put_ts(o, pcb, now);
    if (pcb->sack_ok && pcb->ooo_n)
        olen += put_sack(o + olen, pcb, 40 - olen);
    uint32_t hlen = 20 + olen;
    struct pkt p = {.len = ETH_HDR_LEN + 20 + hlen, .nseg = 1};
    p.seg[0] = (struct pkt_seg){hb, d, p.len};
    /* Options take their room from the payload (RFC 6691): header, options
     * and data must fit the MSS plus 20, or the frame exceeds the MTU. */
    if (len > pcb->mss - olen)
        len = pcb->mss - olen;
    /* Only queued bytes are payload: a SYN or FIN in the range asked for
     * is not in the send queue (tcp_check catches the caller's slip in
     * test builds; here it must not index an empty ring). */
    if (pcb->sq_n == 0)
        len = 0;
    uint32_t sent = 0;
    if (len) {
        uint32_t i = sq_find(pcb, seq);
        uint32_t off = seq - sq_at(pcb, i)->seq;
        while (sent < len && p.nseg < PKT_MAX_SEGS && i < pcb->sq_n) {
            struct sndseg *s = sq_at(pcb, i);
            uint32_t take = MIN(s->len - off, len - sent);
            heap_ref(s->blk); /* the device's reference, for this transmission */
            p.seg[p.nseg++] = (struct pkt_seg){s->blk, s->data + off, take};
            p.len += take;
            sent += take;
            off = 0;
            i++;
        }
    }
    if (sent < len)
        flags &= (uint8_t)~TH_FIN; /* the FIN rides only with the last byte */
    uint32_t field = window_field(pcb, window_to_offer(pcb));
    th->sport = htons(pcb->lport);
    th->dport = htons(pcb->rport);
    th->seq = htonl(seq);
    th->ack = htonl((flags & TH_ACK) ? pcb->rcv_nxt : 0);
    th->off = (uint8_t)((hlen / 4) << 4);
    th->flags = flags;
    th->win = htons((uint16_t)field);
    th->urp = 0;
    if (flags & TH_ACK) {
        pcb->rcv_adv = pcb->rcv_nxt + (field << pcb->rcv_wscale);
        pcb->ack_now = false;
        pcb->segs_since_ack = 0;
        timer_cancel(&in->rt->timers, &pcb->delack_tm);
    }
    pcb->st.segs_out++;
    tcp_send_built(in, &p, th, pcb->rip);
    return (int)sent;
}

void tcp_send_raw(struct inet *in, uint32_t rip, uint16_t rport, uint16_t lport, uint32_t seq, uint32_t ack,
                  uint8_t flags)
{
    uint8_t *d;
    struct heap_blk *hb = inet_hdr_alloc(in, &d);
    if (!hb)
        return;
    struct tcp_hdr *th = (struct tcp_hdr *)(d + ETH_HDR_LEN + 20);
    memset(th, 0, sizeof(*th));
    th->sport = htons(lport);
    th->dport = htons(rport);
    th->seq = htonl(seq);
    th->ack = htonl(ack);
    th->off = 5 << 4;
    th->flags = flags;
    struct pkt p = {.len = ETH_HDR_LEN + 40, .nseg = 1};
    p.seg[0] = (struct pkt_seg){hb, d, p.len};
    if (flags & TH_RST)
        in->st.tcp_rst_sent++;
    tcp_send_built(in, &p, th, rip);
}

/* A tail loss probe (RFC 8985 7) may stand in for the RTO: an open
 * connection with SACK, everything sent once, no probe out since the last
 * ACK that advanced. */
static bool tlp_eligible(const struct inet *in, const struct tcp_pcb *pcb)
{
    return in->cfg.tcp_tlp && pcb->sack_ok && pcb->rtt_valid && !pcb->in_recovery && !pcb->tlp_out &&
           pcb->rto_backoff == 0 && !pcb->fin_sent && pcb->snd_nxt == pcb->snd_max &&
           (pcb->state == TCPS_ESTABLISHED || pcb->state == TCPS_CLOSE_WAIT);
}

/* RFC 8985 7.2's WCDelAckT: a lone segment may wait for the receiver's
 * delayed ACK. The RFC suggests 200 ms, which makes the probe no faster
 * than the RTO; 40 ms is what Linux waits before acknowledging a lone
 * segment, and a peer that waits longer costs one duplicate segment. */
#define TLP_DELACK_NS 40000000ull

static void rto_arm(struct inet *in, struct tcp_pcb *pcb)
{
    uint64_t rto = pcb->rto;
    for (uint32_t i = 0; i < pcb->rto_backoff && rto < in->cfg.tcp_rto_max_ns; i++)
        rto *= 2;
    if (rto > in->cfg.tcp_rto_max_ns)
        rto = in->cfg.tcp_rto_max_ns;
    pcb->tlp_armed = false;
    if (pcb->snd_una != pcb->snd_max && tlp_eligible(in, pcb)) {
        /* PTO = 2 SRTT, no less than a twentieth of the minimum RTO (10 ms
         * by default: a peer's ACKs can lag its reads by that much). */
        uint64_t pto = MAX(2 * pcb->srtt, in->cfg.tcp_rto_min_ns / 20);
        if (pcb->snd_max - pcb->snd_una <= tcp_eff_mss(pcb))
            pto += TLP_DELACK_NS;
        if (pto < rto) {
            rto = pto;
            pcb->tlp_armed = true;
        }
    }
    timer_arm(&in->rt->timers, &pcb->rto_tm, inet_now(in) + rto);
}

void tcp_send_syn(struct inet *in, struct tcp_pcb *pcb)
{
    uint8_t *d;
    struct heap_blk *hb = inet_hdr_alloc(in, &d);
    if (!hb)
        return;
    bool synack = pcb->state == TCPS_SYN_RCVD;
    bool offer_ws = synack ? pcb->wscale_ok : in->cfg.tcp_wscale;
    bool offer_sack = synack ? pcb->sack_ok : in->cfg.tcp_sack;
    bool offer_ts = synack ? pcb->ts_ok : in->cfg.tcp_timestamps;
    struct tcp_hdr *th = (struct tcp_hdr *)(d + ETH_HDR_LEN + 20);
    uint8_t *o = (uint8_t *)(th + 1);
    uint32_t olen = 0;
    uint16_t mss = htons((uint16_t)MIN(in->cfg.mss, in->cfg.mtu - 40));
    o[olen++] = 2;
    o[olen++] = 4;
    memcpy(o + olen, &mss, 2);
    olen += 2;
    if (offer_sack && offer_ts) {
        o[olen++] = 4;
        o[olen++] = 2;
        uint32_t tsval = htonl((uint32_t)(inet_now(in) / 1000000)), tsecr = htonl(synack ? pcb->ts_recent : 0);
        o[olen++] = 8;
        o[olen++] = 10;
        memcpy(o + olen, &tsval, 4);
        memcpy(o + olen + 4, &tsecr, 4);
        olen += 8;
    } else if (offer_ts) {
        olen += put_ts(o + olen, pcb, inet_now(in));
    } else if (offer_sack) {
        o[olen++] = 1;
        o[olen++] = 1;
        o[olen++] = 4;
        o[olen++] = 2;
    }
    if (offer_ws) {
        o[olen++] = 1;
        o[olen++] = 3;
        o[olen++] = 3;
        o[olen++] = pcb->rcv_wscale;
    }
    uint32_t hlen = 20 + olen;
    uint32_t wnd = MIN(rcv_space(pcb), 65535u); /* a SYN's window is never scaled */
    th->sport = htons(pcb->lport);
    th->dport = htons(pcb->rport);
    th->seq = htonl(pcb->iss);
    th->ack = htonl(synack ? pcb->rcv_nxt : 0);
    th->off = (uint8_t)((hlen / 4) << 4);
    th->flags = synack ? (TH_SYN | TH_ACK) : TH_SYN;
    th->win = htons((uint16_t)wnd);
    th->urp = 0;
    pcb->rcv_adv = pcb->rcv_nxt + wnd;
    struct pkt p = {.len = ETH_HDR_LEN + 20 + hlen, .nseg = 1};
    p.seg[0] = (struct pkt_seg){hb, d, p.len};
    if (pcb->syn_tries == 0 && !pcb->rtt_timing) {
        pcb->rtt_timing = true;
        pcb->rtt_seq = pcb->iss;
        pcb->rtt_start = inet_now(in);
    } else {
        pcb->rtt_timing = false; /* Karn: never time a retransmission */
        pcb->st.retrans_segs++;
        in->st.tcp_retrans_segs++;
    }
    pcb->snd_nxt = pcb->iss + 1;
    pcb->snd_max = seq_max(pcb->snd_max, pcb->snd_nxt);
    pcb->st.segs_out++;
    rto_arm(in, pcb);
    tcp_send_built(in, &p, th, pcb->rip);
}

uint32_t tcp_acceptable_seq(const struct tcp_pcb *pcb)
{
    /* Not snd_nxt: after a timeout it is rewound to resend old data, and
     * a pure ACK carrying it would look like an old duplicate to the peer,
     * which then ignores its ACK field (RFC 9293 3.10.7.4) - a deadlock
     * when both sides are recovering. The highest sequence sent, clipped to
     * the peer's window, is always acceptable. */
    uint32_t right = pcb->snd_una + pcb->snd_wnd;
    return seq_gt(pcb->snd_max, right) ? right : pcb->snd_max;
}

void tcp_send_ack(struct inet *in, struct tcp_pcb *pcb)
{
    if (pcb->state == TCPS_CLOSED || pcb->state == TCPS_SYN_SENT)
        return;
    xmit(in, pcb, TH_ACK, tcp_acceptable_seq(pcb), 0);
}

void tcp_ack_later(struct inet *in, struct tcp_pcb *pcb, uint32_t bytes)
{
    pcb->ack_now = true;
    if (in->cfg.tcp_delack_ns) {
        /* RFC 1122 4.2.3.2 / RFC 5681 4.2: every second full segment at
         * once, otherwise within the delay. */
        if (bytes >= pcb->mss - (pcb->ts_ok ? 12u : 0u) && ++pcb->segs_since_ack >= 2) {
            tcp_send_ack(in, pcb);
            return;
        }
        if (!timer_armed(&pcb->delack_tm))
            timer_arm(&in->rt->timers, &pcb->delack_tm, inet_now(in) + in->cfg.tcp_delack_ns);
        return;
    }
    /* Latency first: owe the ACK until the end of this pass, so a reply
     * the application sends meanwhile carries it. */
    if (!pcb->on_acklist) {
        pcb->on_acklist = true;
        pcb->ack_next = in->acklist;
        in->acklist = pcb;
    }
}

void tcp_flush_acks(struct inet *in)
{
    struct tcp_pcb *p = in->acklist;
    in->acklist = NULL;
    while (p) {
        struct tcp_pcb *next = p->ack_next;
        p->ack_next = NULL;
        p->on_acklist = false;
        if (p->ack_now)
            tcp_send_ack(in, p);
        p = next;
    }
}

void tcp_window_update(struct inet *in, struct tcp_pcb *pcb)
{
    uint32_t offered = seq_gt(pcb->rcv_adv, pcb->rcv_nxt) ? pcb->rcv_adv - pcb->rcv_nxt : 0;
    uint32_t space = rcv_space(pcb);
    /* Tell the sender when the window opened by two segments or half the
     * buffer, and always when it had been (nearly) closed. */
    if (space >= offered + 2u * pcb->mss || space >= offered + pcb->rcv_buf / 2 ||
        (offered < pcb->mss && space >= pcb->mss))
        tcp_ack_later(in, pcb, 0);
}

/* ---- RTT (RFC 6298) ---- */

static void rtt_sample(struct inet *in, struct tcp_pcb *pcb, uint64_t r)
{
    if (!pcb->rtt_valid) {
        pcb->srtt = r;
        pcb->rttvar = r / 2;
        pcb->rtt_valid = true;
    } else {
        uint64_t delta = pcb->srtt > r ? pcb->srtt - r : r - pcb->srtt;
        pcb->rttvar = (3 * pcb->rttvar + delta) / 4;
        pcb->srtt = (7 * pcb->srtt + r) / 8;
    }
    uint64_t k = 4 * pcb->rttvar;
    uint64_t rto = pcb->srtt + (k > 1000 ? k : 1000); /* G: 1 us */
    if (rto < in->cfg.tcp_rto_min_ns)
        rto = in->cfg.tcp_rto_min_ns;
    if (rto > in->cfg.tcp_rto_max_ns)
        rto = in->cfg.tcp_rto_max_ns;
    pcb->rto = rto;
}

/* ---- congestion control (tcp_cc.c) ---- */

/* ssthresh after a loss, from the connection's algorithm. */
static uint32_t cc_loss(struct inet *in, struct tcp_pcb *pcb)
{
    return pcb->cc->on_loss(in, pcb);
}

static void cc_on_ack(struct inet *in, struct tcp_pcb *pcb, uint32_t acked)
{
    if (acked)
        pcb->cc->on_ack(in, pcb, acked);
}

/* ---- SACK scoreboard (tcp_sack.c) ---- */

void tcp_sack_update(struct tcp_pcb *pcb, const struct tcp_opts *o)
{
    for (uint32_t k = 0; k < o->nsack; k++)
        sack_add(&pcb->sb, pcb->snd_una, pcb->snd_max, o->sack[k].start, o->sack[k].end);
}

static bool is_lost(const struct tcp_pcb *pcb, uint32_t seq)
{
    return sack_is_lost(&pcb->sb, seq, tcp_eff_mss(pcb));
}

/* RFC 6675 pipe with SACK; without it, every byte sent since SND.UNA. */
static uint32_t pipe_bytes(const struct tcp_pcb *pcb)
{
    if (!pcb->sack_ok)
        return pcb->snd_nxt - pcb->snd_una;
    return sack_pipe(&pcb->sb, pcb->snd_una, pcb->snd_nxt, pcb->in_recovery, pcb->high_rxt, tcp_eff_mss(pcb));
}

/* ---- the send loop ---- */

static void complete_pushes(struct inet *in, struct tcp_pcb *pcb)
{
    struct sched_task *t;
    while ((t = pcb->pushes.head) && seq_ge(pcb->snd_max, (uint32_t)t->arg[0])) {
        tlist_remove(t);
        sched_complete(&in->rt->sched, t);
    }
}

static void note_sent(struct inet *in, struct tcp_pcb *pcb, uint32_t seq, int n, bool rexmit)
{
    if (rexmit) {
        pcb->st.retrans_segs++;
        pcb->st.retrans_bytes += (uint64_t)n;
        in->st.tcp_retrans_segs++;
        if (pcb->rtt_timing && seq_le(seq, pcb->rtt_seq) && seq_lt(pcb->rtt_seq, seq + (uint32_t)n + 1))
            pcb->rtt_timing = false; /* Karn: the timed segment was resent */
    } else {
        pcb->st.bytes_sent += (uint64_t)n;
        if (!pcb->rtt_timing && n > 0) {
            pcb->rtt_timing = true;
            pcb->rtt_seq = seq;
            pcb->rtt_start = inet_now(in);
        }
    }
    if (pcb->snd_max - pcb->snd_una > pcb->st.max_inflight)
        pcb->st.max_inflight = pcb->snd_max - pcb->snd_una;
    if (!timer_armed(&pcb->rto_tm))
        rto_arm(in, pcb);
    else if (!rexmit && tcp_flight_size(pcb) > tcp_eff_mss(pcb) &&
             (!pcb->tlp_armed || tcp_flight_size(pcb) - (uint32_t)n <= tcp_eff_mss(pcb)) && tlp_eligible(in, pcb))
        rto_arm(in, pcb); /* armed for a lone segment, which may wait for a delayed ACK: re-arm, sooner */
}

/* SACK recovery: resend lost holes while the pipe has room. */
static void sack_recovery_send(struct inet *in, struct tcp_pcb *pcb)
{
    uint32_t mss = tcp_eff_mss(pcb);
    for (;;) {
        if (pipe_bytes(pcb) + mss > pcb->cwnd)
            return;
        uint32_t len;
        uint32_t seq = sack_next_hole(&pcb->sb, pcb->snd_una, pcb->high_rxt, pcb->recover, mss, &len);
        if (len == 0)
            return;
        int n = xmit(in, pcb, TH_ACK, seq, MIN(len, mss));
        if (n <= 0)
            return;
        pcb->high_rxt = seq + (uint32_t)n;
        pcb->rxt_mark = pcb->snd_max; /* only data sent after this can show it lost */
        note_sent(in, pcb, seq, n, true);
    }
}

static bool can_send(struct tcp_pcb *pcb)
{
    switch (pcb->state) {
    case TCPS_ESTABLISHED:
    case TCPS_CLOSE_WAIT:
    case TCPS_FIN_WAIT_1:
    case TCPS_CLOSING:
    case TCPS_LAST_ACK:
        return true;
    default:
        return false;
    }
}

void tcp_output(struct inet *in, struct tcp_pcb *pcb)
{
    if (!can_send(pcb))
        return;
    uint32_t mss = tcp_eff_mss(pcb);
    if (pcb->in_recovery && pcb->sack_ok)
        sack_recovery_send(in, pcb);
    for (;;) {
        /* Going back after a timeout: skip what the receiver SACKed. */
        uint32_t sack_stop = 0;
        bool stop_at_sack = sack_skip(&pcb->sb, &pcb->snd_nxt, pcb->snd_max, &sack_stop);
        uint32_t unsent = pcb->snd_end - pcb->snd_nxt;
        if (seq_ge(pcb->snd_nxt, pcb->snd_end) || unsent == 0)
            break;
        if (stop_at_sack && seq_lt(sack_stop - pcb->snd_nxt, unsent) && sack_stop != pcb->snd_nxt)
            unsent = sack_stop - pcb->snd_nxt;
        uint32_t flight = pcb->sack_ok ? pipe_bytes(pcb) : pcb->snd_nxt - pcb->snd_una;
        uint32_t cw = pcb->cwnd > flight ? pcb->cwnd - flight : 0;
        uint32_t right = pcb->snd_una + pcb->snd_wnd;
        uint32_t rw = seq_gt(right, pcb->snd_nxt) ? right - pcb->snd_nxt : 0;
        uint32_t len = MIN(MIN(unsent, mss), MIN(cw, rw));
        if (len == 0)
            break;
        /* Sender SWS avoidance (RFC 9293 3.8.6.2.1): a short segment only
         * when it is all there is, or half the largest window seen. */
        if (len < mss && len < unsent && len < pcb->max_snd_wnd / 2 && !pcb->sws_override)
            break;
        /* Nagle (RFC 9293 3.7.4), when enabled: one short segment in flight. */
        if (!pcb->opts->nodelay && len < mss && pcb->snd_nxt != pcb->snd_una && !pcb->fin_pending)
            break;
        bool rexmit = seq_lt(pcb->snd_nxt, pcb->snd_max);
        uint8_t flags = TH_ACK;
        if (len == unsent)
            flags |= TH_PSH;
        if (pcb->fin_pending && pcb->snd_nxt + len == pcb->fin_seq)
            flags |= TH_FIN;
        uint32_t seq = pcb->snd_nxt;
        int n = xmit(in, pcb, flags, seq, len);
        if (n <= 0)
            break;
        pcb->snd_nxt += (uint32_t)n;
        if ((flags & TH_FIN) && (uint32_t)n == len) {
            pcb->snd_nxt++;
            pcb->fin_sent = true;
        }
        pcb->snd_max = seq_max(pcb->snd_max, pcb->snd_nxt);
        note_sent(in, pcb, seq, n, rexmit);
    }
    /* A FIN on its own, once every byte before it has gone. */
    if (pcb->fin_pending && pcb->snd_nxt == pcb->fin_seq) {
        bool rexmit = pcb->fin_sent;
        if (xmit(in, pcb, TH_ACK | TH_FIN, pcb->fin_seq, 0) >= 0) {
            pcb->snd_nxt = pcb->fin_seq + 1;
            pcb->fin_sent = true;
            pcb->snd_max = seq_max(pcb->snd_max, pcb->snd_nxt);
            note_sent(in, pcb, pcb->fin_seq, 0, rexmit);
        }
    }
    /* Zero window with data waiting and nothing in flight: probe. */
    if (seq_lt(pcb->snd_nxt, pcb->snd_end) && pcb->snd_una == pcb->snd_max && !timer_armed(&pcb->rto_tm) &&
        !timer_armed(&pcb->persist_tm)) {
        uint64_t d = pcb->rto;
        for (uint32_t i = 0; i < pcb->persist_backoff && d < in->cfg.tcp_rto_max_ns; i++)
            d *= 2;
        timer_arm(&in->rt->timers, &pcb->persist_tm, inet_now(in) + MIN(d, in->cfg.tcp_rto_max_ns));
    }
    complete_pushes(in, pcb);
    tcp_check(pcb, "output");
}

void tcp_window_opened(struct inet *in, struct tcp_pcb *pcb)
{
    /* For an orphan, the window counts as open only when a full segment
     * (or all that is left) fits, as for Linux's tcp_ack_probe: a receiver
     * opening it a sliver at a time would otherwise reset the probe count
     * each time and drip the queue out for hours. Only with nothing in
     * flight (persisting), where the probe count matters. An open
     * connection's tiny window is the application's business, and resets it. */
    if (!pcb->sock && !pcb->parent && pcb->snd_una == pcb->snd_max && seq_lt(pcb->snd_nxt, pcb->snd_end)) {
        uint32_t right = pcb->snd_una + pcb->snd_wnd;
        uint32_t usable = seq_gt(right, pcb->snd_nxt) ? right - pcb->snd_nxt : 0;
        if (usable < MIN(tcp_eff_mss(pcb), pcb->snd_end - pcb->snd_nxt))
            return;
    }
    timer_cancel(&in->rt->timers, &pcb->persist_tm);
    pcb->persist_backoff = 0;
}

/* ---- ACK processing ---- */

void tcp_ack_advance(struct inet *in, struct tcp_pcb *pcb, uint32_t ack)
{
    uint32_t acked = ack - pcb->snd_una;
    if (pcb->rtt_timing && seq_gt(ack, pcb->rtt_seq)) {
        rtt_sample(in, pcb, inet_now(in) - pcb->rtt_start);
        pcb->rtt_timing = false;
    }
    if (pcb->snd_una == pcb->iss && acked)
        acked--; /* the SYN */
    if (pcb->fin_sent && seq_gt(ack, pcb->fin_seq) && seq_le(pcb->snd_una, pcb->fin_seq) && acked)
        acked--; /* the FIN */
    sq_ack(in, pcb, ack);
    pcb->snd_una = ack;
    if (seq_lt(pcb->snd_nxt, ack))
        pcb->snd_nxt = ack;
    pcb->st.bytes_acked += acked;
    sack_advance(&pcb->sb, pcb->snd_una);
    if (pcb->in_recovery) {
        if (seq_ge(ack, pcb->recover)) {
            /* Full acknowledgment: leave recovery (RFC 6582 3.2 step 3). */
            pcb->in_recovery = false;
            pcb->cwnd = MIN(pcb->ssthresh, MAX(tcp_flight_size(pcb), tcp_eff_mss(pcb)) + tcp_eff_mss(pcb));
        } else if (!pcb->sack_ok) {
            /* Partial acknowledgment: resend the next hole, deflate. */
            uint32_t mss = tcp_eff_mss(pcb);
            int n = xmit(in, pcb, TH_ACK, pcb->snd_una, MIN(mss, pcb->snd_max - pcb->snd_una));
            if (n > 0)
                note_sent(in, pcb, pcb->snd_una, n, true);
            pcb->cwnd = pcb->cwnd > acked ? pcb->cwnd - acked : mss;
            if (acked >= mss)
                pcb->cwnd += mss;
            rto_arm(in, pcb);
        } else {
            pcb->high_rxt = seq_max(pcb->high_rxt, ack);
        }
    } else {
        cc_on_ack(in, pcb, acked);
    }
    pcb->dupacks = 0;
    pcb->rto_backoff = 0;
    pcb->tlp_out = false;
    /* Past the marked data and out of recovery (whose point lies beyond it). */
    if (pcb->sb.lost_below_on && seq_ge(ack, pcb->sb.lost_below) && !pcb->in_recovery)
        pcb->sb.lost_below_on = false;
    if (pcb->snd_una == pcb->snd_max)
        timer_cancel(&in->rt->timers, &pcb->rto_tm);
    else
        rto_arm(in, pcb); /* RFC 6298 5.3 */
    if (pcb->snd_wnd)
        tcp_window_opened(in, pcb);
}

void tcp_dupack(struct inet *in, struct tcp_pcb *pcb)
{
    pcb->dupacks++;
    pcb->st.dupacks_in++;
    if (pcb->in_recovery) {
        if (!pcb->sack_ok) {
            pcb->cwnd += tcp_eff_mss(pcb); /* inflate: a segment left the network */
        } else if (seq_gt(pcb->high_rxt, pcb->snd_una) && seq_gt(pcb->snd_max, pcb->rxt_mark) &&
                   sack_above(&pcb->sb, pcb->rxt_mark) >= TCP_DUPTHRESH * tcp_eff_mss(pcb)) {
            /* Data sent after this round's retransmissions has arrived
             * (DupThresh segments of it are SACKed) while the hole at
             * snd_una is still open: its retransmission was lost too.
             * Start a new round rather than wait for the RTO (the time
             * order argument of RFC 8985's RACK, with sequence order
             * standing in for time). */
            pcb->high_rxt = pcb->snd_una;
            pcb->rxt_mark = pcb->snd_max;
        }
        return;
    }
    if (pcb->tlp_out && pcb->sack_ok && sack_above(&pcb->sb, pcb->tlp_seq)) {
        /* The probe, the last thing sent, arrived: whatever was sent before
         * it and is still unSACKed is lost (RFC 8985's time order; no
         * reordering window). Without this, two or three lost at the tail
         * would wait for the RTO, too few for DupThresh. */
        pcb->sb.lost_below = pcb->tlp_seq;
        pcb->sb.lost_below_on = true;
    }
    bool enter = pcb->dupacks >= TCP_DUPTHRESH || (pcb->sack_ok && is_lost(pcb, pcb->snd_una));
    if (!enter)
        return;
    /* RFC 6582 4.1: not again for losses from before the last recovery. */
    if (!pcb->sack_ok && pcb->recover && seq_le(pcb->snd_una, pcb->recover) && pcb->st.newreno_recoveries)
        return;
    uint32_t mss = tcp_eff_mss(pcb);
    pcb->ssthresh = cc_loss(in, pcb);
    pcb->recover = pcb->snd_max;
    pcb->in_recovery = true;
    pcb->high_rxt = pcb->snd_una;
    pcb->rxt_mark = pcb->snd_max;
    pcb->st.fast_retransmits++;
    in->st.tcp_fast_retransmits++;
    if (pcb->sack_ok) {
        pcb->cwnd = pcb->ssthresh;
        pcb->st.sack_recoveries++;
    } else {
        pcb->cwnd = pcb->ssthresh + TCP_DUPTHRESH * mss;
        pcb->st.newreno_recoveries++;
    }
    /* Fast retransmit: the first unacknowledged segment. */
    int n = xmit(in, pcb, TH_ACK, pcb->snd_una, MIN(mss, pcb->snd_max - pcb->snd_una));
    if (n > 0) {
        pcb->high_rxt = pcb->snd_una + (uint32_t)n;
        note_sent(in, pcb, pcb->snd_una, n, true);
    }
}

/* ---- timers ---- */

static void mark(struct tcp_pcb *pcb, uint8_t ev)
{
    struct inet *in = pcb->in;
    pcb->timer_events |= ev;
    if (!pcb->on_work) {
        pcb->on_work = true;
        pcb->work_next = in->work;
        in->work = pcb;
    }
    inet_kick_bg(in);
}

static void rto_fire(struct timer *t)
{
    mark(container_of(t, struct tcp_pcb, rto_tm), TT_RTO);
}
static void delack_fire(struct timer *t)
{
    mark(container_of(t, struct tcp_pcb, delack_tm), TT_DELACK);
}
static void keep_fire(struct timer *t)
{
    mark(container_of(t, struct tcp_pcb, keep_tm), TT_KEEP);
}
static void persist_fire(struct timer *t)
{
    mark(container_of(t, struct tcp_pcb, persist_tm), TT_PERSIST);
}
static void tw_fire(struct timer *t)
{
    mark(container_of(t, struct tcp_pcb, tw_tm), TT_TW);
}

void tcp_timers_init(struct tcp_pcb *pcb)
{
    timer_init(&pcb->rto_tm, rto_fire);
    timer_init(&pcb->delack_tm, delack_fire);
    timer_init(&pcb->keep_tm, keep_fire);
    timer_init(&pcb->persist_tm, persist_fire);
    timer_init(&pcb->tw_tm, tw_fire);
}

void tcp_timers_cancel(struct tcp_pcb *pcb)
{
    struct timer_wheel *w = &pcb->in->rt->timers;
    timer_cancel(w, &pcb->rto_tm);
    timer_cancel(w, &pcb->delack_tm);
    timer_cancel(w, &pcb->keep_tm);
    timer_cancel(w, &pcb->persist_tm);
    timer_cancel(w, &pcb->tw_tm);
}

void tcp_keep_arm(struct inet *in, struct tcp_pcb *pcb)
{
    if (pcb->opts->keepalive && pcb->opts->keepidle_ns)
        timer_arm(&in->rt->timers, &pcb->keep_tm, pcb->last_rx + pcb->opts->keepidle_ns);
}

/* The probe (RFC 8985 7.3): the last segment sent, again. A receiver must
 * acknowledge a duplicate at once, so the probe ends a stall behind a
 * delayed ACK, repairs a lost last segment, and its SACK exposes a loss
 * among the last few that DupThresh could not. (The RFC prefers a new
 * segment when there is one; a peer that holds its ACKs back while its
 * application reads slowly would hold that one back too.) */
static void tlp_send(struct inet *in, struct tcp_pcb *pcb)
{
    uint32_t len = MIN(tcp_eff_mss(pcb), pcb->snd_max - pcb->snd_una);
    uint32_t seq = pcb->snd_max - len;
    pcb->tlp_out = true;
    pcb->tlp_seq = seq;
    pcb->st.tlp_probes++;
    in->st.tcp_tlp_probes++;
    int n = xmit(in, pcb, TH_ACK, seq, len);
    if (n > 0)
        note_sent(in, pcb, seq, n, true);
    rto_arm(in, pcb); /* the real RTO, from now */
}

/* Consecutive timeouts (or unanswered window probes) a connection may
 * have before it gives up. An orphan, closed by the application, has
 * nobody waiting for its data, so it gets fewer than an open connection:
 * Linux's tcp_orphan_retries against tcp_retries2, and its defaults (8
 * and 15; with the 60 s RTO cap, 8 backed-off timeouts from a 200 ms RTO
 * last about 100 s, 15 about 8 minutes). */
static uint32_t retries_limit(const struct inet *in, const struct tcp_pcb *pcb)
{
    bool orphan = !pcb->sock && !pcb->parent;
    return orphan ? MIN(in->cfg.tcp_orphan_retries, in->cfg.tcp_retries2) : in->cfg.tcp_retries2;
}

/* Returns false if the connection is gone. */
static bool rto_expired(struct inet *in, struct tcp_pcb *pcb)
{
    if (pcb->tlp_armed) {
        pcb->tlp_armed = false;
        if (pcb->snd_una != pcb->snd_max && tlp_eligible(in, pcb)) {
            tlp_send(in, pcb);
            return true;
        }
    }
    if (pcb->snd_una == pcb->snd_max && pcb->state != TCPS_SYN_SENT && pcb->state != TCPS_SYN_RCVD)
        return true; /* everything was acknowledged meanwhile */
    pcb->st.rto_expiries++;
    in->st.tcp_rto_expiries++;
    if (pcb->state == TCPS_SYN_SENT || pcb->state == TCPS_SYN_RCVD) {
        uint32_t max = pcb->state == TCPS_SYN_SENT ? in->cfg.tcp_syn_retries : in->cfg.tcp_synack_retries;
        /* A listener whose SYN queue is half full or more is likely being
         * flooded (RFC 4987 3.3): its half-open children get two SYN-ACK
         * retransmissions (7 s) instead of five (63 s). */
        if (pcb->parent && pcb->parent->nsyn * 2 >= pcb->parent->backlog)
            max = MIN(max, 2u);
        if (++pcb->syn_tries > max) {
            pcb_drop(in, pcb, pcb->parent ? 0 : ETIMEDOUT);
            return false;
        }
        pcb->rto_backoff++;
        tcp_send_syn(in, pcb);
        return true;
    }
    log_debug("tcp %u->%u: RTO: flight %u, %u SACK blocks (%u bytes), cwnd %u, %s, backoff %u, rto %llu us, srtt %llu "
              "us, tlp_out %d, snd_nxt-una %u",
              pcb->lport, pcb->rport, pcb->snd_max - pcb->snd_una, pcb->sb.n, pcb->sb.bytes, pcb->cwnd,
              pcb->in_recovery ? "in recovery" : "open", pcb->rto_backoff, (unsigned long long)(pcb->rto / 1000),
              (unsigned long long)(pcb->srtt / 1000), pcb->tlp_out, pcb->snd_nxt - pcb->snd_una);
    /* The receiver shrank its window to nothing over data in flight (RFC
     * 9293 3.8.6.2.2 discourages it; a sender must cope). Nothing can be
     * resent into it, so the timeout sends a window probe instead, and
     * counts as one: the connection lives while the peer answers (RFC 9293
     * 3.8.6.1), as Linux's tcp_retransmit_timer does. An orphan gets its
     * usual limit, answered or not. */
    uint32_t limit = retries_limit(in, pcb);
    bool shut = pcb->snd_wnd == 0 && (pcb->sock || pcb->parent);
    if (shut ? pcb->persist_probes >= limit : ++pcb->rto_backoff > limit) {
        tcp_send_raw(in, pcb->rip, pcb->rport, pcb->lport, tcp_acceptable_seq(pcb), 0, TH_RST);
        pcb_drop(in, pcb, ETIMEDOUT);
        return false;
    }
    if (shut) {
        pcb->persist_probes++;
        if (pcb->rto_backoff < limit)
            pcb->rto_backoff++; /* still backing off, up to the cap */
    }
    /* RFC 5681 (4) and (5): one segment, go back to snd_una. */
    pcb->ssthresh = cc_loss(in, pcb);
    pcb->cwnd = tcp_eff_mss(pcb);
    pcb->in_recovery = false;
    pcb->sb.lost_below_on = false;
    pcb->dupacks = 0;
    pcb->recover = pcb->snd_max;
    if (pcb->rto_backoff > 1) {
        /* RFC 2018 8: the receiver may have reneged on what it SACKed; a
         * second timeout in a row forgets the scoreboard and resends all.
         * (After the first, SACKed data is skipped, as RFC 6675 5.1 allows.) */
        sack_clear(&pcb->sb);
    }
    pcb->snd_nxt = pcb->snd_una;
    pcb->rtt_timing = false;
    tcp_output(in, pcb);
    if (shut && pcb->snd_nxt == pcb->snd_una) {
        /* An old sequence number the peer must acknowledge. */
        pcb->st.zero_window_probes++;
        xmit(in, pcb, TH_ACK, pcb->snd_una - 1, 0);
    }
    rto_arm(in, pcb);
    return true;
}

/* Returns false if the connection is gone. */
static bool persist_expired(struct inet *in, struct tcp_pcb *pcb)
{
    if (!(seq_lt(pcb->snd_nxt, pcb->snd_end) && pcb->snd_una == pcb->snd_max) || !can_send(pcb))
        return true;
    /* RFC 9293 3.8.6.1: probing goes on while the peer answers, however
     * long its window stays shut. A peer that stopped answering is gone,
     * as after retransmission timeouts: the probes count against the same
     * limit (Linux's tcp_probe_timer does the same). An orphan is bounded
     * even if the peer answers: nobody will ever read or push on it, and
     * a receiver that keeps its window shut forever would pin its queued
     * bytes forever (issue 11 finding 3). */
    bool orphan = !pcb->sock && !pcb->parent;
    uint32_t limit = retries_limit(in, pcb);
    if (pcb->persist_probes >= limit || (orphan && pcb->persist_backoff >= limit)) {
        log_debug("tcp %u->%u: window probes: %u unanswered, %u in all: giving up", pcb->lport, pcb->rport,
                  pcb->persist_probes, pcb->persist_backoff);
        tcp_send_raw(in, pcb->rip, pcb->rport, pcb->lport, tcp_acceptable_seq(pcb), 0, TH_RST);
        pcb_drop(in, pcb, ETIMEDOUT);
        return false;
    }
    if (pcb->snd_wnd) {
        /* A window too small for the SWS rules: RFC 9293 3.8.6.2.1's
         * override timeout, send what fits. For an orphan it counts as a
         * probe (see tcp_window_opened). */
        pcb->sws_override = true;
        tcp_output(in, pcb);
        pcb->sws_override = false;
        if (pcb->snd_una != pcb->snd_max) {
            if (orphan)
                pcb->persist_backoff++;
            return true;
        }
    }
    /* A window probe: an old sequence number the peer must acknowledge. */
    pcb->st.zero_window_probes++;
    xmit(in, pcb, TH_ACK, pcb->snd_una - 1, 0);
    pcb->persist_probes++;
    pcb->persist_backoff++;
    uint64_t d = pcb->rto;
    for (uint32_t i = 0; i < pcb->persist_backoff && d < in->cfg.tcp_rto_max_ns; i++)
        d *= 2;
    timer_arm(&in->rt->timers, &pcb->persist_tm, inet_now(in) + MIN(d, in->cfg.tcp_rto_max_ns));
    return true;
}

static bool keep_expired(struct inet *in, struct tcp_pcb *pcb)
{
    if (!pcb->opts->keepalive || pcb->state != TCPS_ESTABLISHED)
        return true;
    uint64_t now = inet_now(in);
    if (now < pcb->last_rx + pcb->opts->keepidle_ns && pcb->keep_probes == 0) {
        tcp_keep_arm(in, pcb);
        return true;
    }
    if (pcb->keep_probes >= pcb->opts->keepcnt) {
        tcp_send_raw(in, pcb->rip, pcb->rport, pcb->lport, tcp_acceptable_seq(pcb), 0, TH_RST);
        pcb_drop(in, pcb, ETIMEDOUT);
        return false;
    }
    pcb->keep_probes++;
    pcb->st.keepalive_probes++;
    xmit(in, pcb, TH_ACK, pcb->snd_una - 1, 0);
    timer_arm(&in->rt->timers, &pcb->keep_tm, now + pcb->opts->keepintvl_ns);
    return true;
}

void tcp_do_work(struct inet *in)
{
    while (in->work) {
        struct tcp_pcb *pcb = in->work;
        in->work = pcb->work_next;
        pcb->work_next = NULL;
        pcb->on_work = false;
        uint8_t ev = pcb->timer_events;
        pcb->timer_events = 0;
        if (pcb->state == TCPS_CLOSED)
            continue;
        if (ev & TT_TW) {
            pcb_drop(in, pcb, 0); /* TIME_WAIT over, or orphaned FIN_WAIT_2 timed out */
            continue;
        }
        /* Stale if an ACK processed since the timer fired re-armed it. */
        if ((ev & TT_RTO) && !timer_armed(&pcb->rto_tm) && !rto_expired(in, pcb))
            continue;
        if ((ev & TT_KEEP) && !keep_expired(in, pcb))
            continue;
        if ((ev & TT_PERSIST) && !persist_expired(in, pcb))
            continue;
        if ((ev & TT_DELACK) && pcb->ack_now)
            tcp_send_ack(in, pcb);
        tcp_check(pcb, "timers");
    }
}
