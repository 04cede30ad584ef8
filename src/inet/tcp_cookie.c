/*
 * SYN cookies (RFC 4987 section 3.6): when a listener's SYN queue is full
 * (or always, with tcp_syncookies: 2), a SYN is answered by a SYN-ACK whose
 * initial sequence number encodes everything needed to rebuild the
 * connection from the final ACK, and no state is kept.
 *
 * The cookie, the ISN of our SYN-ACK (bit 31 first):
 *
 *   bits 31-6  26 bits of SipHash-2-4, under a secret key of this stack, of
 *              the 4-tuple, the peer's ISN, the counter and the MSS index
 *   bits  5-3  the counter (now / TCP_COOKIE_PERIOD_NS) modulo 8
 *   bits  2-0  the index of the peer's MSS, rounded down, in mss_table
 *
 * The ACK that completes the handshake acknowledges cookie + 1 and carries
 * sequence number ISN + 1 of the peer; the cookie is good if its counter is
 * this period's or the last one's and the hash matches. A forged ACK has
 * one chance in 2^26 of passing.
 *
 * The window scale and SACK-permitted options of the SYN cannot fit in the
 * cookie. When the SYN carried timestamps (RFC 7323), they ride in the low
 * bits of our SYN-ACK's TSval, which the peer echoes in every segment's
 * TSecr, as Linux does:
 *
 *   bits 3-0  the peer's window scale shift (0-14), or 15: none
 *   bit  4    SACK permitted
 *   bit  5    zero
 *
 * Without timestamps the SYN-ACK offers neither option, and the connection
 * has neither (RFC 7323 and RFC 2018 let us decline both).
 */
#include "inet/tcp.h"

#define COOKIE_MAC_MASK 0xffffffc0u
#define TS_WS_NONE      15u
#define TS_WS_MASK      15u
#define TS_SACK         16u
#define TS_BITS         63u

/* The MSS values a cookie can carry: the peer's is rounded down to one of
 * these (the common ones: Ethernet with and without options, PPPoE,
 * tunnels, RFC 9293's default), 64 for anything smaller. */
static const uint16_t mss_table[8] = {64, 536, 1024, 1200, 1300, 1380, 1440, 1460};

static uint32_t cookie_mac(struct inet *in, uint32_t rip, uint16_t rport, uint16_t lport, uint32_t irs, uint32_t count,
                           uint32_t mss_idx)
{
    uint32_t d[6] = {in->ip, rip, ((uint32_t)lport << 16) | rport, irs, count, mss_idx};
    return (uint32_t)siphash24(in->cookie_key, d, sizeof(d));
}

static uint32_t cookie_count(struct inet *in)
{
    return (uint32_t)(inet_now(in) / TCP_COOKIE_PERIOD_NS);
}

static uint32_t cookie_make(struct inet *in, uint32_t rip, uint16_t rport, uint16_t lport, uint32_t irs,
                            uint16_t peer_mss)
{
    uint32_t idx = 0;
    while (idx + 1 < 8 && mss_table[idx + 1] <= peer_mss)
        idx++;
    uint32_t count = cookie_count(in);
    uint32_t mac = cookie_mac(in, rip, rport, lport, irs, count, idx);
    return (mac & COOKIE_MAC_MASK) | (count & 7u) << 3 | idx;
}

void tcp_cookie_synack(struct inet *in, uint32_t rip, const struct tcp_hdr *th, const struct tcp_opts *o,
                       uint8_t rcv_wscale, uint32_t wnd)
{
    uint8_t *d;
    struct heap_blk *hb = inet_hdr_alloc(in, &d);
    if (!hb)
        return;
    uint16_t rport = ntohs(th->sport), lport = ntohs(th->dport);
    uint32_t irs = ntohl(th->seq);
    uint32_t cookie = cookie_make(in, rip, rport, lport, irs, o->has_mss ? o->mss : 536);
    bool ts = in->cfg.tcp_timestamps && o->has_ts;
    bool sack = ts && in->cfg.tcp_sack && o->sack_ok;
    bool ws = ts && in->cfg.tcp_wscale && o->has_wscale;

    struct tcp_hdr *sh = (struct tcp_hdr *)(d + ETH_HDR_LEN + 20);
    uint8_t *p = (uint8_t *)(sh + 1);
    uint32_t olen = 0;
    uint16_t mss = htons((uint16_t)MIN(in->cfg.mss, in->cfg.mtu - 40));
    p[olen++] = 2;
    p[olen++] = 4;
    memcpy(p + olen, &mss, 2);
    olen += 2;
    if (ts) {
        /* Our clock in ms with its low bits replaced by the options, never
         * ahead of the clock: later segments' TSvals must not go back. */
        uint32_t now_ms = (uint32_t)(inet_now(in) / 1000000);
        uint32_t bits = (ws ? o->wscale : TS_WS_NONE) | (sack ? TS_SACK : 0);
        uint32_t tsval = (now_ms & ~TS_BITS) | bits;
        if (seq_gt(tsval, now_ms))
            tsval -= TS_BITS + 1;
        tsval = htonl(tsval);
        uint32_t tsecr = htonl(o->tsval);
        if (sack) {
            p[olen++] = 4;
            p[olen++] = 2;
        } else {
            p[olen++] = 1;
            p[olen++] = 1;
        }
        p[olen++] = 8;
        p[olen++] = 10;
        memcpy(p + olen, &tsval, 4);
        memcpy(p + olen + 4, &tsecr, 4);
        olen += 8;
    }
    if (ws) {
        p[olen++] = 1;
        p[olen++] = 3;
        p[olen++] = 3;
        p[olen++] = rcv_wscale;
    }
    uint32_t hlen = 20 + olen;
    sh->sport = th->dport;
    sh->dport = th->sport;
    sh->seq = htonl(cookie);
    sh->ack = htonl(irs + 1);
    sh->off = (uint8_t)((hlen / 4) << 4);
    sh->flags = TH_SYN | TH_ACK;
    sh->win = htons((uint16_t)MIN(wnd, 65535u)); /* a SYN's window is never scaled */
    sh->urp = 0;
    struct pkt pk = {.len = ETH_HDR_LEN + 20 + hlen, .nseg = 1};
    pk.seg[0] = (struct pkt_seg){hb, d, pk.len};
    in->st.tcp_syncookies_sent++;
    tcp_send_built(in, &pk, sh, rip);
}

bool tcp_cookie_check(struct inet *in, uint32_t rip, const struct tcp_hdr *th, const struct tcp_opts *o,
                      struct tcp_opts *syn)
{
    uint16_t rport = ntohs(th->sport), lport = ntohs(th->dport);
    uint32_t cookie = ntohl(th->ack) - 1, irs = ntohl(th->seq) - 1;
    uint32_t idx = cookie & 7u;
    uint32_t now = cookie_count(in);
    uint32_t age = (now - (cookie >> 3)) & 7u;
    if (age > 1)
        return false; /* older than two periods, or from the future */
    uint32_t mac = cookie_mac(in, rip, rport, lport, irs, now - age, idx);
    if ((mac ^ cookie) & COOKIE_MAC_MASK)
        return false;
    memset(syn, 0, sizeof(*syn));
    syn->has_mss = true;
    syn->mss = mss_table[idx];
    if (o->has_ts && in->cfg.tcp_timestamps) { /* else our SYN-ACK offered none */
        uint32_t bits = o->tsecr & TS_BITS;
        if (bits & ~(TS_WS_MASK | TS_SACK))
            return false; /* not a TSval of a cookie's SYN-ACK */
        syn->has_ts = true;
        syn->tsval = o->tsval;
        syn->tsecr = o->tsecr;
        if ((bits & TS_WS_MASK) != TS_WS_NONE) {
            syn->has_wscale = true;
            syn->wscale = (uint8_t)MIN(bits & TS_WS_MASK, 14u);
        }
        syn->sack_ok = (bits & TS_SACK) != 0;
    }
    return true;
}
