/*
 * The stack instance: creation and teardown, the device fast-path task
 * (owed ACKs, frames looped back, a receive burst, the transmit batch),
 * the timer-woken background task (retransmissions, delayed ACKs, probes,
 * TIME_WAIT), and the counters logged at teardown. Ethernet is eth.c, IPv4
 * ipv4.c.
 *
 * Must never block or wait: a full device drops what it refuses (TCP
 * retransmits; the drop is counted).
 */
#include "inet/inet_int.h"

#include "inet/group.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>

void inet_set_qowner(struct inet *in, struct libos *owner)
{
    in->qowner = owner;
}

const struct inet_stats *inet_stats(const struct inet *in)
{
    return &in->st;
}

/* A received frame this instance does not own goes to its owner (ARP to
 * every other instance as well); false if it went (it is no longer ours). */
static bool steer_keep(struct inet *in, struct rxframe *f)
{
    struct inet_group *g = in->cfg.group;
    uint32_t self = in->cfg.group_index, to = inet_group_steer(in->cfg.group_size, self, f->data, f->len);
    if (to == self)
        return true;
    if (to == INET_GROUP_ALL) {
        for (uint32_t j = 0; j < in->cfg.group_size; j++) {
            if (j == self)
                continue;
            if (inet_group_send(g, self, j, f->data, f->len, f->flags))
                in->st.group_arp_copies++;
            else
                in->st.group_hand_drops++;
        }
        return true;
    }
    if (inet_group_send(g, self, to, f->data, f->len, f->flags))
        in->st.group_handed_out++;
    else
        in->st.group_hand_drops++; /* its owner is gone or busy: as a drop on the wire */
    heap_unref(in->heap, f->blk);
    return false;
}

/* Frames the other instances handed to this one, into the stack (a burst
 * from each at most); how many. */
static int group_input(struct inet *in)
{
    uint32_t self = in->cfg.group_index;
    int got = 0;
    for (uint32_t j = 0; j < in->cfg.group_size; j++) {
        if (j == self)
            continue;
        for (int k = 0; k < INET_RX_BURST; k++) {
            uint32_t len, flags;
            const uint8_t *d = inet_group_peek(in->cfg.group, j, self, &len, &flags);
            if (!d)
                break;
            struct heap_blk *b = heap_alloc(in->heap, len ? len : 1);
            if (b)
                memcpy(heap_blk_data(in->heap, b), d, len);
            inet_group_next(in->cfg.group, j, self);
            if (!b) {
                in->st.group_hand_drops++;
                continue;
            }
            in->st.group_handed_in++;
            struct rxframe f = {b, heap_blk_data(in->heap, b), len, flags | PKT_RX_HANDED};
            eth_input(in, &f);
            got++;
        }
    }
    return got;
}

/* One receive burst through the stack (and what other instances handed
 * over); the number of frames. */
static int rx_once(struct inet *in)
{
    int n = in->dev->ops->rx_burst(in->dev, in->rx, INET_RX_BURST);
    if (!in->cfg.group) {
        for (int i = 0; i < n; i++)
            eth_input(in, &in->rx[i]);
    } else {
        for (int i = 0; i < n; i++)
            if (steer_keep(in, &in->rx[i]))
                eth_input(in, &in->rx[i]);
        n += group_input(in);
    }
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
    if (in->nloop)
        eth_loop_input(in);
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
    /* The bell is armed (rt_wait): a frame another instance hands over,
     * or a memory queue's message, rings it. */
    if (in->cfg.group && inet_group_pending(in->cfg.group, in->cfg.group_index))
        return;
    in->dev->ops->wait(in->dev, timeout_ns, in->rt->bell->fd);
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
