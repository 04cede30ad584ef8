/*
 * Hand-built frames and the capture tap (see craft.h). The checksum here
 * sums big-endian 16-bit words, byte by byte: deliberately unlike the
 * stack's word-at-a-time code, so the two check each other.
 */
#include "craft.h"

#include <arpa/inet.h>
#include <netinet/in.h>

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* ---- capture ---- */

static int cap_tap(void *arg, struct netdev *from, const uint8_t *frame, uint32_t len)
{
    struct capture *c = arg;
    if (from != c->dev)
        return 0;
    c->total++;
    if (c->n < CAP_MAX) {
        uint32_t keep = len < CRAFT_FRAME_MAX ? len : CRAFT_FRAME_MAX;
        memcpy(c->frame[c->n], frame, keep);
        c->len[c->n] = keep;
        c->t[c->n] = c->w->now;
        c->n++;
    }
    return 0;
}

void cap_attach(struct simworld *w, struct capture *c, struct netdev *dev)
{
    c->w = w;
    c->dev = dev;
    cap_clear(c);
    simnet_set_tap(w->net, cap_tap, c);
}

void cap_clear(struct capture *c)
{
    c->n = 0;
    c->total = 0;
}

/* ---- options ---- */

static void opt_put(struct tcp_optbuf *o, const uint8_t *b, uint32_t n)
{
    CHECK(o->n + n <= sizeof(o->b));
    memcpy(o->b + o->n, b, n);
    o->n += n;
}

void opt_nop(struct tcp_optbuf *o)
{
    opt_put(o, (const uint8_t[]){1}, 1);
}

void opt_mss(struct tcp_optbuf *o, uint16_t mss)
{
    opt_put(o, (const uint8_t[]){2, 4, (uint8_t)(mss >> 8), (uint8_t)mss}, 4);
}

void opt_ws(struct tcp_optbuf *o, uint8_t shift)
{
    opt_put(o, (const uint8_t[]){1, 3, 3, shift}, 4);
}

void opt_sack_ok(struct tcp_optbuf *o)
{
    opt_put(o, (const uint8_t[]){1, 1, 4, 2}, 4);
}

void opt_ts(struct tcp_optbuf *o, uint32_t tsval, uint32_t tsecr)
{
    uint8_t b[12] = {1, 1, 8, 10};
    put32(b + 4, tsval);
    put32(b + 8, tsecr);
    opt_put(o, b, 12);
}

void opt_sack(struct tcp_optbuf *o, const uint32_t *edges, int nblocks)
{
    uint8_t b[36] = {1, 1, 5, (uint8_t)(2 + 8 * nblocks)};
    CHECK(nblocks >= 1 && nblocks <= 4);
    for (int i = 0; i < 2 * nblocks; i++)
        put32(b + 4 + 4 * i, edges[i]);
    opt_put(o, b, 4 + 8 * (uint32_t)nblocks);
}

void opt_raw(struct tcp_optbuf *o, const uint8_t *bytes, uint32_t n)
{
    opt_put(o, bytes, n);
}

/* ---- building ---- */

uint16_t craft_csum(const void *data, uint32_t len, uint32_t sum)
{
    const uint8_t *p = data;
    uint64_t acc = sum;
    for (uint32_t i = 0; i + 1 < len; i += 2)
        acc += get16(p + i);
    if (len & 1)
        acc += (uint32_t)p[len - 1] << 8;
    while (acc >> 16)
        acc = (acc & 0xffff) + (acc >> 16);
    return (uint16_t)~acc;
}

/* The pseudo-header's sum (RFC 9293 3.1, RFC 768) in host order. */
static uint32_t pseudo_sum(const uint8_t *ip, uint8_t proto, uint32_t l4len)
{
    return get16(ip + 12) + get16(ip + 14) + get16(ip + 16) + get16(ip + 18) + proto + l4len;
}

uint32_t craft_ipv4(uint8_t *buf, const struct craft_host *from, const uint8_t to_mac[6], uint32_t to_ip, uint8_t proto,
                    const void *l4, uint32_t l4len)
{
    CHECK(ETH_HDR_LEN + 20 + l4len <= CRAFT_FRAME_MAX);
    static uint16_t ip_id = 1;
    memcpy(buf, to_mac, 6);
    memcpy(buf + 6, from->mac, 6);
    put16(buf + 12, 0x0800);
    uint8_t *ip = buf + ETH_HDR_LEN;
    memset(ip, 0, 20);
    ip[0] = 0x45;
    put16(ip + 2, (uint16_t)(20 + l4len));
    put16(ip + 4, ip_id++);
    put16(ip + 6, 0x4000);
    ip[8] = 64;
    ip[9] = proto;
    memcpy(ip + 12, &from->ip, 4);
    memcpy(ip + 16, &to_ip, 4);
    put16(ip + 10, craft_csum(ip, 20, 0));
    if (l4len)
        memmove(ip + 20, l4, l4len);
    return ETH_HDR_LEN + 20 + l4len;
}

void craft_fix_ip(uint8_t *frame)
{
    uint8_t *ip = frame + ETH_HDR_LEN;
    uint32_t ihl = (uint32_t)(ip[0] & 0xf) * 4;
    put16(ip + 10, 0);
    put16(ip + 10, craft_csum(ip, ihl, 0));
}

void craft_fix_l4(uint8_t *frame, uint32_t len)
{
    if (len < ETH_HDR_LEN + 20)
        return;
    uint8_t *ip = frame + ETH_HDR_LEN;
    uint32_t ihl = (uint32_t)(ip[0] & 0xf) * 4;
    uint32_t tlen = get16(ip + 2);
    if (ihl < 20 || tlen < ihl || ETH_HDR_LEN + tlen > len)
        return;
    uint8_t *l4 = ip + ihl;
    uint32_t l4len = tlen - ihl;
    switch (ip[9]) {
    case IPPROTO_TCP:
        if (l4len >= 20) {
            put16(l4 + 16, 0);
            put16(l4 + 16, craft_csum(l4, l4len, pseudo_sum(ip, IPPROTO_TCP, l4len)));
        }
        break;
    case IPPROTO_UDP:
        if (l4len >= 8) {
            put16(l4 + 6, 0);
            uint16_t c = craft_csum(l4, l4len, pseudo_sum(ip, IPPROTO_UDP, l4len));
            put16(l4 + 6, c ? c : 0xffff);
        }
        break;
    case IPPROTO_ICMP:
        if (l4len >= 8) {
            put16(l4 + 2, 0);
            put16(l4 + 2, craft_csum(l4, l4len, 0));
        }
        break;
    default:
        break;
    }
}

uint32_t craft_ip_options(uint8_t *frame, uint32_t len, const uint8_t *opts, uint32_t n)
{
    uint8_t *ip = frame + ETH_HDR_LEN;
    uint32_t ihl = (uint32_t)(ip[0] & 0xf) * 4;
    CHECK(n % 4 == 0 && ihl + n <= 60 && len + n <= CRAFT_FRAME_MAX);
    memmove(ip + ihl + n, ip + ihl, len - ETH_HDR_LEN - ihl);
    memcpy(ip + ihl, opts, n);
    ip[0] = (uint8_t)(0x40 | (ihl + n) / 4);
    put16(ip + 2, (uint16_t)(get16(ip + 2) + n));
    craft_fix_ip(frame);
    craft_fix_l4(frame, len + n);
    return len + n;
}

uint32_t craft_tcp(uint8_t *buf, const struct craft_host *from, const uint8_t to_mac[6], uint32_t to_ip,
                   const struct tcp_spec *s)
{
    uint8_t seg[CRAFT_FRAME_MAX];
    uint32_t olen = s->opt ? (s->opt->n + 3) / 4 * 4 : 0;
    uint32_t hlen = 20 + olen;
    CHECK(olen <= 40 && hlen + s->dlen <= sizeof(seg) - 34);
    memset(seg, 0, hlen);
    put16(seg, s->sport);
    put16(seg + 2, s->dport);
    put32(seg + 4, s->seq);
    put32(seg + 8, s->ack);
    seg[12] = (uint8_t)((hlen / 4) << 4);
    seg[13] = s->flags;
    put16(seg + 14, s->win);
    if (s->opt)
        memcpy(seg + 20, s->opt->b, s->opt->n); /* the rest stays 0: EOL */
    if (s->dlen)
        memcpy(seg + hlen, s->data, s->dlen);
    uint32_t len = craft_ipv4(buf, from, to_mac, to_ip, IPPROTO_TCP, seg, hlen + s->dlen);
    craft_fix_l4(buf, len);
    return len;
}

uint32_t craft_udp(uint8_t *buf, const struct craft_host *from, const uint8_t to_mac[6], uint32_t to_ip, uint16_t sport,
                   uint16_t dport, const void *data, uint32_t dlen, bool csum)
{
    uint8_t dg[CRAFT_FRAME_MAX];
    CHECK(8 + dlen <= sizeof(dg) - 34);
    put16(dg, sport);
    put16(dg + 2, dport);
    put16(dg + 4, (uint16_t)(8 + dlen));
    put16(dg + 6, 0);
    if (dlen)
        memcpy(dg + 8, data, dlen);
    uint32_t len = craft_ipv4(buf, from, to_mac, to_ip, IPPROTO_UDP, dg, 8 + dlen);
    if (csum)
        craft_fix_l4(buf, len);
    return len;
}

uint32_t craft_icmp(uint8_t *buf, const struct craft_host *from, const uint8_t to_mac[6], uint32_t to_ip, uint8_t type,
                    uint8_t code, uint16_t id, uint16_t seq, const void *data, uint32_t dlen)
{
    uint8_t m[CRAFT_FRAME_MAX];
    CHECK(8 + dlen <= sizeof(m) - 34);
    m[0] = type;
    m[1] = code;
    put16(m + 2, 0);
    put16(m + 4, id);
    put16(m + 6, seq);
    if (dlen)
        memcpy(m + 8, data, dlen);
    uint32_t len = craft_ipv4(buf, from, to_mac, to_ip, IPPROTO_ICMP, m, 8 + dlen);
    craft_fix_l4(buf, len);
    return len;
}

uint32_t craft_arp(uint8_t *buf, const uint8_t eth_src[6], const uint8_t eth_dst[6], uint16_t op, const uint8_t sha[6],
                   uint32_t spa, const uint8_t tha[6], uint32_t tpa)
{
    memset(buf, 0, 60);
    memcpy(buf, eth_dst, 6);
    memcpy(buf + 6, eth_src, 6);
    put16(buf + 12, 0x0806);
    uint8_t *a = buf + ETH_HDR_LEN;
    put16(a, 1);
    put16(a + 2, 0x0800);
    a[4] = 6;
    a[5] = 4;
    put16(a + 6, op);
    memcpy(a + 8, sha, 6);
    memcpy(a + 14, &spa, 4);
    memcpy(a + 18, tha, 6);
    memcpy(a + 24, &tpa, 4);
    return 60;
}

/* ---- reading ---- */

bool craft_ip_view(const uint8_t *frame, uint32_t len, struct ip_view *v)
{
    memset(v, 0, sizeof(*v));
    CHECK(len >= ETH_HDR_LEN);
    v->eth_dst = frame;
    v->eth_src = frame + 6;
    v->eth_type = get16(frame + 12);
    if (v->eth_type != 0x0800)
        return false;
    const uint8_t *ip = frame + ETH_HDR_LEN;
    CHECK(len >= ETH_HDR_LEN + 20);
    CHECK_EQ(ip[0] >> 4, 4);
    uint32_t ihl = (uint32_t)(ip[0] & 0xf) * 4;
    v->tlen = get16(ip + 2);
    CHECK(ihl >= 20 && v->tlen >= ihl && ETH_HDR_LEN + (uint32_t)v->tlen <= len);
    CHECK_EQ(craft_csum(ip, ihl, 0), 0);
    v->id = get16(ip + 4);
    v->frag = get16(ip + 6);
    v->ttl = ip[8];
    v->proto = ip[9];
    memcpy(&v->src, ip + 12, 4);
    memcpy(&v->dst, ip + 16, 4);
    v->ip = ip;
    v->l4 = ip + ihl;
    v->l4len = v->tlen - ihl;
    return true;
}

bool craft_tcp_view(const uint8_t *frame, uint32_t len, struct tcp_view *v)
{
    memset(v, 0, sizeof(*v));
    if (!craft_ip_view(frame, len, &v->ip) || v->ip.proto != IPPROTO_TCP)
        return false;
    const uint8_t *t = v->ip.l4;
    uint32_t l4len = v->ip.l4len;
    CHECK(l4len >= 20);
    CHECK_EQ(craft_csum(t, l4len, pseudo_sum(v->ip.ip, IPPROTO_TCP, l4len)), 0);
    v->sport = get16(t);
    v->dport = get16(t + 2);
    v->seq = get32(t + 4);
    v->ack = get32(t + 8);
    v->hlen = (uint32_t)(t[12] >> 4) * 4;
    v->flags = t[13];
    v->win = get16(t + 14);
    CHECK(v->hlen >= 20 && v->hlen <= l4len);
    const uint8_t *o = t + 20;
    uint32_t left = v->hlen - 20;
    while (left) {
        if (o[0] == 0)
            break;
        if (o[0] == 1) {
            o++;
            left--;
            continue;
        }
        CHECK(left >= 2 && o[1] >= 2 && o[1] <= left);
        v->nopts++;
        switch (o[0]) {
        case 2:
            CHECK_EQ(o[1], 4);
            v->has_mss = true;
            v->mss = get16(o + 2);
            break;
        case 3:
            CHECK_EQ(o[1], 3);
            v->has_ws = true;
            v->ws = o[2];
            break;
        case 4:
            CHECK_EQ(o[1], 2);
            v->sack_ok = true;
            break;
        case 5:
            CHECK(o[1] >= 10 && (o[1] - 2) % 8 == 0);
            v->nsack = (o[1] - 2) / 8;
            for (int i = 0; i < v->nsack; i++) {
                v->sack[i][0] = get32(o + 2 + 8 * i);
                v->sack[i][1] = get32(o + 6 + 8 * i);
            }
            break;
        case 8:
            CHECK_EQ(o[1], 10);
            v->has_ts = true;
            v->tsval = get32(o + 2);
            v->tsecr = get32(o + 6);
            break;
        default:
            break;
        }
        left -= o[1];
        o += o[1];
    }
    v->data = t + v->hlen;
    v->dlen = l4len - v->hlen;
    return true;
}
