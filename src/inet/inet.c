/*
 * The stack instance: configuration, the device fast-path task (receive a
 * burst, dispatch by EtherType, flush owed ACKs and batched transmits), the
 * timer-woken background task (retransmissions, delayed ACKs, probes,
 * TIME_WAIT), and the output helpers every protocol shares.
 *
 * Must never block or wait: a full device drops what it refuses (TCP
 * retransmits; the drop is counted).
 */
#include "inet/inet_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>

extern const struct libos_ops inet_ops;

void inet_config_init(struct inet_config *ic, const struct config *cfg)
{
    memset(ic, 0, sizeof(*ic));
    ic->addr = cfg->local_ipv4_addr;
    ic->mtu = cfg->mtu;
    ic->mss = cfg->mss;
    ic->rx_csum_skip = true;
    ic->arp_ttl_ns = cfg->arp_cache_ttl_ns;
    ic->arp_timeout_ns = cfg->arp_request_timeout_ns;
    ic->arp_retries = cfg->arp_request_retries;
    ic->n_arp_static = cfg->n_arp;
    ic->arp_static = cfg->arp_table;
    ic->tcp_rcvbuf = (uint32_t)cfg->tcp_rcvbuf;
    ic->tcp_sndbuf = (uint32_t)cfg->tcp_sndbuf;
    ic->tcp_nodelay = cfg->nodelay;
    ic->tcp_delack_ns = cfg->tcp_delack_ns;
    ic->tcp_cc = cfg->tcp_cc == CONFIG_CC_NEWRENO ? INET_CC_NEWRENO : INET_CC_CUBIC;
    ic->tcp_sack = cfg->tcp_sack;
    ic->tcp_tlp = cfg->tcp_tlp;
    ic->tcp_timestamps = cfg->tcp_timestamps;
    ic->tcp_wscale = cfg->tcp_wscale;
    ic->tcp_rto_init_ns = 1000000000ull; /* RFC 6298 2.1 */
    ic->tcp_rto_min_ns = cfg->tcp_rto_min_ns;
    ic->tcp_rto_max_ns = 60000000000ull;
    ic->tcp_syn_retries = cfg->tcp_syn_retries;
    ic->tcp_synack_retries = 5;
    ic->tcp_retries2 = cfg->tcp_retries2;
    ic->tcp_orphan_retries = cfg->tcp_orphan_retries;
    /* By default, orphans may hold at most half the heap in full send
     * buffers (Linux scales tcp_max_orphans with memory the same way). */
    uint64_t auto_orphans = cfg->heap_size / (2 * MAX(cfg->tcp_sndbuf, (uint64_t)64 * 1024));
    ic->tcp_max_orphans = cfg->tcp_max_orphans ? cfg->tcp_max_orphans : (uint32_t)MIN(MAX(auto_orphans, 16u), 1u << 20);
    ic->tcp_msl_ns = cfg->tcp_msl_ns;
    ic->tcp_fin_timeout_ns = cfg->tcp_fin_timeout_ns;
    ic->tcp_keepalive = cfg->keepalive;
    ic->tcp_keepidle_ns = (uint64_t)cfg->keepalive_time_ms * 1000000u;
    ic->tcp_keepintvl_ns = (uint64_t)cfg->keepalive_interval_ms * 1000000u;
    ic->tcp_keepcnt = 9;
    ic->tcp_challenge_ack_limit = 1000;
    ic->tcp_backlog_max = 4096;
    ic->tcp_syncookies = cfg->tcp_syncookies;
}

const struct inet_stats *inet_stats(const struct inet *in)
{
    return &in->st;
}

struct libos *inet_libos(struct inet *in)
{
    return &in->base;
}

struct inet *inet_of(struct libos *l)
{
    return (struct inet *)l;
}

void inet_own_device(struct inet *in)
{
    in->owns_dev = true;
}

int inet_libos_create(struct runtime *rt, struct netdev *dev, const char *who, const char *where, struct libos **out)
{
    const struct config *c = &rt->cfg;
    struct inet_config ic;
    inet_config_init(&ic, c);
    if (ic.mtu > dev->mtu) {
        log_warn("%s: inetstack_config.mtu %u exceeds %s's MTU %u; using %u", who, ic.mtu, where, dev->mtu, dev->mtu);
        ic.mtu = dev->mtu;
    }
    if (ic.mss > ic.mtu - 40)
        ic.mss = ic.mtu - 40;
    struct inet *in;
    int e = inet_create(rt, dev, &ic, &in);
    if (e) {
        dev->ops->destroy(dev);
        return e;
    }
    inet_own_device(in);
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &c->local_ipv4_addr, ip, sizeof(ip));
    log_info("%s: %s on %s via %s", who, ip, where, dev->ops->name);
    *out = inet_libos(in);
    return 0;
}

/* A packet to our own address: gathered into one heap block and received
 * at the next pass, as a loopback interface would (a copy, of course). */
static void loopback(struct inet *in, struct pkt *p)
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
        loopback(in, p);
        return 0;
    }
    if (p->len - ETH_HDR_LEN > in->cfg.mtu)
        return ip_output_fragments(in, p, dst, proto); /* only UDP builds these */
    in->st.ip_tx++;
    return arp_output(in, p, dst);
}

/* ---- receive ---- */

static void eth_input(struct inet *in, struct rxframe *f)
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

/* One receive burst through the stack; the number of frames. */
static int rx_once(struct inet *in)
{
    int n = in->dev->ops->rx_burst(in->dev, in->rx, INET_RX_BURST);
    for (int i = 0; i < n; i++)
        eth_input(in, &in->rx[i]);
    if (n > 0)
        in->rt->activity++;
    return n;
}

/* The fast path: owed ACKs from the last pass first (the application has
 * had its chance to piggyback them on data), then one receive burst, then
 * everything queued for the device. */
static int poll_task(struct sched *s, struct sched_task *t)
{
    (void)s;
    struct inet *in = t->owner;
    if (in->acklist)
        tcp_flush_acks(in);
    if (in->nloop) {
        /* Frames looped back may loop more back: take this pass's set
         * (swap in an empty array for what they send). */
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
    rx_once(in);
    if (in->ntx)
        inet_flush(in);
    return SCHED_YIELD;
}

/* Sleeps in the device (after the runtime's spin period) until a frame
 * may have arrived; only when nothing is owed or looping back. */
static void idle(void *arg, uint64_t timeout_ns)
{
    struct inet *in = arg;
    if (in->ntx)
        inet_flush(in);
    if (in->nloop || in->acklist)
        return;
    in->dev->ops->wait(in->dev, timeout_ns);
}

/* Background work woken by timers (see tcp_do_work). */
static int bg_task(struct sched *s, struct sched_task *t)
{
    (void)s;
    struct inet *in = t->owner;
    /* Frames already waiting first: after the process was descheduled, the
     * ACKs in the ring must be seen before a retransmission timer decides
     * that data is lost (and resends what the peer has). */
    for (int b = 0; b < 8 && rx_once(in) == INET_RX_BURST; b++)
        ;
    tcp_do_work(in);
    if (in->ntx)
        inet_flush(in);
    return SCHED_PENDING;
}

int inet_create(struct runtime *rt, struct netdev *dev, const struct inet_config *cfg, struct inet **out)
{
    if (cfg->addr.s_addr == 0 || cfg->mtu < 104 || cfg->mtu > dev->mtu || cfg->mss < 64 || cfg->mss > cfg->mtu - 40) {
        log_error("inet: bad configuration (address %s, MTU %u of device MTU %u, MSS %u)", inet_ntoa(cfg->addr),
                  cfg->mtu, dev->mtu, cfg->mss);
        return EINVAL;
    }
    struct inet *in = calloc(1, sizeof(*in));
    if (!in)
        return ENOMEM;
    in->base.ops = &inet_ops;
    in->base.rt = rt;
    in->rt = rt;
    in->dev = dev;
    in->heap = dev->heap;
    in->cfg = *cfg;
    memcpy(in->mac, dev->mac, 6);
    in->ip = cfg->addr.s_addr;
    if (cfg->seed) {
        in->rng = cfg->seed;
    } else if (getrandom(&in->rng, sizeof(in->rng), 0) != sizeof(in->rng)) {
        in->rng = clock_mono_ns() ^ (uintptr_t)in;
    }
    /* RFC 6528: a secret key for the ISN hash, fresh per stack. */
    in->isn_key[0] = inet_rand(in);
    in->isn_key[1] = inet_rand(in);
    /* RFC 4987 3.6: and another for SYN cookies. */
    in->cookie_key[0] = inet_rand(in);
    in->cookie_key[1] = inet_rand(in);
    in->ip_id = (uint16_t)inet_rand(in);
    in->conns_mask = 1023;
    in->conns = calloc(in->conns_mask + 1, sizeof(*in->conns));
    in->tcp_listeners = calloc(65536, sizeof(*in->tcp_listeners));
    in->tcp_port_users = calloc(65536, sizeof(*in->tcp_port_users));
    in->udp_ports = calloc(65536, sizeof(*in->udp_ports));
    in->poller = sched_alloc(&rt->sched, poll_task, in);
    in->bg = sched_alloc(&rt->sched, bg_task, in);
    if (!in->conns || !in->tcp_listeners || !in->tcp_port_users || !in->udp_ports || !in->poller || !in->bg) {
        if (in->poller)
            sched_free(&rt->sched, in->poller);
        if (in->bg)
            sched_free(&rt->sched, in->bg);
        free(in->conns);
        free(in->tcp_listeners);
        free(in->tcp_port_users);
        free(in->udp_ports);
        free(in);
        return ENOMEM;
    }
    in->poller->background = 1;
    in->bg->background = 1;
    ip_frag_init(in);
    sched_wake(&rt->sched, in->poller);
    if (dev->ops->wait)
        rt_set_idle(rt, idle, in);
    arp_init(in);
    *out = in;
    return 0;
}

/* DEMI_LOG=info: the counters that are not zero, when the stack goes away,
 * for programs that see the stack only through the public API (the interop
 * tests read retransmissions and reassemblies from here). A few lines: a
 * log line holds under 512 bytes. */
static void log_counters(const struct inet *in)
{
    static const char *const names[] = {
#define INET_STAT_NAME(name) #name,
        INET_STATS(INET_STAT_NAME)
#undef INET_STAT_NAME
    };
    const uint64_t val[] = {
#define INET_STAT_VAL(name) in->st.name,
        INET_STATS(INET_STAT_VAL)
#undef INET_STAT_VAL
    };
    if (log_level_g < LOGL_INFO)
        return;
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &in->ip, ip, sizeof(ip));
    const struct netdev_stats *ds = &in->dev->stats;
    log_info("inet %s: device %s: rx_frames=%llu tx_frames=%llu tx_full=%llu", ip, in->dev->ops->name,
             (unsigned long long)ds->rx_frames, (unsigned long long)ds->tx_frames, (unsigned long long)ds->tx_full);
    char line[360];
    size_t len = 0;
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        if (!val[i])
            continue;
        if (len > sizeof(line) - 48) {
            log_info("inet %s: counters: %s", ip, line);
            len = 0;
        }
        int n =
            snprintf(line + len, sizeof(line) - len, "%s%s=%llu", len ? " " : "", names[i], (unsigned long long)val[i]);
        if (n > 0)
            len += (size_t)n;
    }
    if (len)
        log_info("inet %s: counters: %s", ip, line);
}

void inet_destroy(struct inet *in)
{
    if (!in)
        return;
    log_counters(in);
    /* Sockets still open are closed without results (their runtime is
     * going away), then what is left of TCP: orphaned connections. */
    while (in->socks) {
        struct inet_sock *s = in->socks;
        if (s->type == SOCK_DGRAM)
            udp_close(in, s, false);
        else
            tcp_close(in, s, false);
        sock_free(in, s);
    }
    tcp_fini(in);
    ip_frag_fini(in);
    arp_fini(in);
    for (int i = 0; i < in->ntx; i++)
        pkt_release(in->heap, &in->txq[i]);
    in->ntx = 0;
    for (int i = 0; i < in->nloop; i++)
        heap_unref(in->heap, in->loop[i].blk);
    in->nloop = 0;
    free(in->loop);
    if (in->rt->idle_arg == in)
        rt_set_idle(in->rt, NULL, NULL);
    sched_free(&in->rt->sched, in->poller);
    sched_free(&in->rt->sched, in->bg);
    free(in->conns);
    free(in->tcp_listeners);
    free(in->tcp_port_users);
    free(in->udp_ports);
    free(in);
}
