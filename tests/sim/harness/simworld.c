/*
 * The sim harness (see simworld.h).
 */
#include "simworld.h"

#include "inet/inet_int.h"
#include "libos/inetos.h"
#include "mem/sga.h"

#include <errno.h>

/* The owner of accepted queues in the descriptor table: a tag only, as
 * nothing here calls through the table (inet_set_qowner). */
static struct libos sw_qowner;

void sw_init(struct simworld *w, uint64_t seed, const char *pcap_path)
{
    memset(w, 0, sizeof(*w));
    w->seed = seed;
    w->now = 1000000000ull;
    struct simnet_config c = {.seed = seed, .start_ns = w->now, .pcap_path = pcap_path};
    CHECK_EQ(simnet_create(&w->net, &c), 0);
}

struct simnode *sw_node(struct simworld *w, sw_tweak_fn tweak)
{
    CHECK(w->n < SW_MAX_NODES);
    struct simnode *n = &w->node[w->n];
    int idx = ++w->n;
    struct config cfg;
    config_defaults(&cfg);
    cfg.heap_size = 256u << 20;
    cfg.hugepages = CONFIG_HUGE_OFF;
    CHECK_EQ(rt_create(&n->rt, &cfg, true), 0);
    clock_set(&n->rt->clock, w->now);
    n->rt->now = w->now;
    n->rt->timers.now = w->now;
    uint8_t mac[6] = {0x02, 0, 0, 0, 0, (uint8_t)idx};
    memcpy(n->mac, mac, 6);
    CHECK_EQ(simnet_attach(w->net, n->rt->heap, mac, 1500, &n->dev), 0);
    struct inet_config ic;
    inetos_config(&ic, &n->rt->cfg);
    n->ip.s_addr = htonl(0x0a000000u | (uint32_t)idx);
    ic.addr = n->ip;
    ic.mtu = 1500;
    ic.mss = 1460;
    ic.seed = w->seed * 131 + (uint64_t)idx;
    ic.arp_timeout_ns = 100 * MSEC;
    ic.arp_retries = 3;
    ic.arp_ttl_ns = 60 * SEC;
    if (tweak)
        tweak(&ic);
    CHECK_EQ(inet_create(n->rt, n->dev, &ic, &n->in), 0);
    inet_set_qowner(n->in, &sw_qowner);
    return n;
}

void sw_link(struct simworld *w, struct simnode *n, const struct sim_link *link)
{
    simnet_set_link(w->net, n->dev, link);
}

void sw_fini(struct simworld *w)
{
    for (int i = 0; i < w->n; i++) {
        struct simnode *n = &w->node[i];
        inet_destroy(n->in);
        n->dev->ops->destroy(n->dev);
        rt_destroy(n->rt);
    }
    simnet_destroy(w->net);
    w->n = 0;
}

/* A sum of counters that only grow, so that any progress changes it (a sum
 * with a queue length in it could cancel out: 32 frames taken off a ring
 * while 32 others went on the wire looked like no change at all). */
static uint64_t motion(struct simworld *w)
{
    uint64_t m = 0;
    for (int i = 0; i < w->n; i++) {
        struct runtime *rt = w->node[i].rt;
        const struct netdev_stats *ds = &w->node[i].dev->stats;
        const struct sim_stats *ss = simnet_stats(w->node[i].dev);
        m += rt->sched.completions + rt->activity + rt->timers.fired + ds->tx_frames + ds->rx_frames + ss->sent +
             ss->delivered + ss->ring_full + ss->rx_alloc_fail + ss->no_receiver;
    }
    return m;
}

static void poll_all(struct simworld *w)
{
    for (int i = 0; i < w->n; i++) {
        struct runtime *rt = w->node[i].rt;
        clock_set(&rt->clock, w->now);
        rt_poll(rt);
    }
    simnet_advance(w->net, w->now);
}

int sw_run(struct simworld *w, bool (*pred)(void *arg), void *arg, uint64_t max_ns)
{
    uint64_t deadline = w->now + max_ns;
    for (;;) {
        /* Settle: poll until a round changes nothing. */
        for (int round = 0; round < 100000; round++) {
            uint64_t before = motion(w);
            poll_all(w);
            if (pred && pred(arg))
                return 0;
            if (motion(w) == before)
                break;
        }
        if (pred && pred(arg))
            return 0;
        uint64_t next = simnet_next_event(w->net);
        for (int i = 0; i < w->n; i++) {
            uint64_t t = timer_next(&w->node[i].rt->timers);
            if (t < next)
                next = t;
        }
        if (next <= w->now)
            next = w->now + 1; /* a timer hint is a lower bound */
        if (next == UINT64_MAX || next > deadline) {
            w->now = deadline;
            poll_all(w);
            return pred && pred(arg) ? 0 : ETIMEDOUT;
        }
        w->now = next;
        simnet_advance(w->net, w->now);
    }
}

void sw_run_for(struct simworld *w, uint64_t ns)
{
    sw_run(w, NULL, NULL, ns);
}

void *sw_socket(struct simnode *n, int type)
{
    struct inet_sock *q = NULL;
    CHECK_EQ(inet_socket(n->in, type, &q), 0);
    return q;
}

void sw_bind(struct simnode *n, void *q, uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    CHECK_EQ(inet_bind(n->in, q, &a), 0);
}

void sw_listen(struct simnode *n, void *q, int backlog)
{
    CHECK_EQ(inet_listen(n->in, q, backlog), 0);
}

static struct sched_task *new_task(struct simnode *n)
{
    struct sched_task *t = sched_alloc(&n->rt->sched, NULL, NULL);
    CHECK(t);
    t->qd = 0;
    return t;
}

struct sched_task *sw_accept(struct simnode *n, void *q)
{
    struct sched_task *t = new_task(n);
    CHECK_EQ(inet_accept(n->in, q, t), 0);
    return t;
}

struct sched_task *sw_connect(struct simnode *n, void *q, struct simnode *to, uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = to->ip};
    struct sched_task *t = new_task(n);
    CHECK_EQ(inet_connect(n->in, q, &a, t), 0);
    return t;
}

struct sched_task *sw_push(struct simnode *n, void *q, const demi_sgarray_t *sga)
{
    struct sched_task *t = new_task(n);
    CHECK_EQ(inet_push(n->in, q, sga, NULL, t), 0);
    return t;
}

struct sched_task *sw_pushto(struct simnode *n, void *q, const demi_sgarray_t *sga, struct simnode *to, uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = to->ip};
    struct sched_task *t = new_task(n);
    CHECK_EQ(inet_push(n->in, q, sga, &a, t), 0);
    return t;
}

struct sched_task *sw_pop(struct simnode *n, void *q)
{
    struct sched_task *t = new_task(n);
    CHECK_EQ(inet_pop(n->in, q, t), 0);
    return t;
}

void sw_close(struct simnode *n, void *q)
{
    CHECK_EQ(inet_close(n->in, q), 0);
}

void *sw_accepted(struct simnode *n, const demi_qresult_t *qr)
{
    struct qentry *e = qtable_get(&n->rt->qtable, qr->qr_value.ares.qd);
    CHECK(e);
    void *q = e->q;
    qtable_free(&n->rt->qtable, qr->qr_value.ares.qd);
    return q;
}

bool sw_done(struct sched_task *t)
{
    return t->state == TASK_DONE;
}

static bool task_is_done(void *arg)
{
    return sw_done(arg);
}

demi_qresult_t sw_result(struct simnode *n, struct sched_task *t)
{
    demi_qresult_t qr;
    CHECK(sw_done(t));
    sched_harvest(&n->rt->sched, t, &qr);
    return qr;
}

demi_qresult_t sw_wait(struct simworld *w, struct simnode *n, struct sched_task *t, uint64_t max_ns)
{
    if (sw_run(w, task_is_done, t, max_ns) != 0) {
        fprintf(stderr, "sw_wait: task did not complete within %.3f s of virtual time\n", (double)max_ns / 1e9);
        exit(1);
    }
    return sw_result(n, t);
}

uint8_t sw_byte(uint64_t seed, size_t off)
{
    return (uint8_t)((seed * 0x9e37u) ^ (off * 131u) ^ (off >> 9));
}

demi_sgarray_t sw_sga(struct simnode *n, size_t len, uint64_t seed, size_t off)
{
    demi_sgarray_t s;
    CHECK_EQ(mem_sga_alloc(n->rt->heap, len, &s), 0);
    size_t at = off;
    for (uint32_t i = 0; i < s.sga_numsegs; i++) {
        uint8_t *p = s.sga_segs[i].sgaseg_buf;
        for (uint32_t k = 0; k < s.sga_segs[i].sgaseg_len; k++)
            p[k] = sw_byte(seed, at++);
    }
    return s;
}

bool sw_check(const demi_sgarray_t *sga, uint64_t seed, size_t off)
{
    size_t at = off;
    for (uint32_t i = 0; i < sga->sga_numsegs; i++) {
        const uint8_t *p = sga->sga_segs[i].sgaseg_buf;
        for (uint32_t k = 0; k < sga->sga_segs[i].sgaseg_len; k++)
            if (p[k] != sw_byte(seed, at++))
                return false;
    }
    return true;
}

void sw_free(struct simnode *n, demi_sgarray_t *sga)
{
    CHECK_EQ(mem_sga_free(n->rt->heap, sga), 0);
}

struct tcp_conn_stats sw_tcp_stats(struct simnode *n, void *q)
{
    struct tcp_conn_stats st;
    memset(&st, 0, sizeof(st));
    inet_tcp_conn_stats(n->in, q, &st);
    return st;
}

bool sw_parse(const uint8_t *f, uint32_t len, struct sw_seg *o)
{
    memset(o, 0, sizeof(*o));
    if (len < 14)
        return false;
    uint16_t type = (uint16_t)(f[12] << 8 | f[13]);
    if (type == 0x0806) {
        o->arp = true;
        return true;
    }
    if (type != 0x0800 || len < 34)
        return false;
    const struct ip_hdr *ip = (const struct ip_hdr *)(f + 14);
    uint32_t ihl = (uint32_t)(ip->vihl & 0xf) * 4, tot = ntohs(ip->len);
    if (ihl < 20 || tot < ihl || 14 + tot > len)
        return false;
    o->ip = true;
    o->src = ip->src;
    o->dst = ip->dst;
    const uint8_t *l4 = f + 14 + ihl;
    uint32_t l4len = tot - ihl;
    if (ip->proto == IPPROTO_TCP && l4len >= 20) {
        const struct tcp_hdr *th = (const struct tcp_hdr *)l4;
        o->tcp = true;
        o->sport = ntohs(th->sport);
        o->dport = ntohs(th->dport);
        o->seq = ntohl(th->seq);
        o->ack = ntohl(th->ack);
        o->flags = th->flags;
        o->hlen = (uint32_t)(th->off >> 4) * 4;
        o->dlen = l4len > o->hlen ? l4len - o->hlen : 0;
    } else if (ip->proto == IPPROTO_UDP && l4len >= 8) {
        o->udp = true;
        o->sport = (uint16_t)(l4[0] << 8 | l4[1]);
        o->dport = (uint16_t)(l4[2] << 8 | l4[3]);
        o->dlen = l4len - 8;
    }
    return true;
}
