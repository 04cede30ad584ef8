/*
 * inetos: the TCP/IP stack (src/inet) as a libOS. The stack knows sockets,
 * a device and its own configuration; this file is everything that speaks
 * the libOS's words: the ops table over the stack's socket calls, the
 * global configuration turned into the stack's (config_cc into inet_cc
 * among others: the translation lives only here), and the device, which
 * the libOS owns and destroys after the stack.
 *
 * Must add no behaviour of its own: every operation is the stack's.
 */
#include "libos/inetos.h"

#include "core/common.h"
#include "core/log.h"
#include "inet/group.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(INET_ARP_STATIC_MAX >= CONFIG_MAX_ARP, "the stack holds every static ARP entry of the config");

struct inetos {
    struct libos base; /* first: the API layer holds a struct libos * */
    struct inet *in;
    struct netdev *dev; /* owned: destroyed after the stack */
    struct inet_group *group; /* NULL: the device is ours alone */
    uint32_t group_index, group_size;
};

static struct inetos *inetos_of(struct libos *l)
{
    return (struct inetos *)l;
}

void inetos_config(struct inet_config *ic, const struct config *cfg)
{
    memset(ic, 0, sizeof(*ic));
    ic->addr = cfg->local_ipv4_addr;
    ic->mtu = cfg->mtu;
    ic->mss = cfg->mss;
    ic->rx_csum_skip = true;
    ic->arp_ttl_ns = cfg->arp_cache_ttl_ns;
    ic->arp_timeout_ns = cfg->arp_request_timeout_ns;
    ic->arp_retries = cfg->arp_request_retries;
    ic->n_arp_static = MIN(cfg->n_arp, INET_ARP_STATIC_MAX);
    for (int i = 0; i < ic->n_arp_static; i++) {
        ic->arp_static[i].ip = cfg->arp_table[i].ip;
        memcpy(ic->arp_static[i].mac, cfg->arp_table[i].mac, 6);
    }
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
    ic->tcp_linger = cfg->linger ? (int32_t)MIN(cfg->linger_secs, (uint32_t)INT32_MAX) : -1;
    ic->tcp_challenge_ack_limit = 1000;
    ic->tcp_backlog_max = 4096;
    ic->tcp_syncookies = cfg->tcp_syncookies;
}

/* ---- the ops table: each the stack's call of the same name ---- */

static int os_socket(struct libos *l, int type, void **q_out)
{
    struct inet_sock *s;
    int e = inet_socket(inetos_of(l)->in, type, &s);
    if (!e)
        *q_out = s;
    return e;
}

static int os_bind(struct libos *l, void *q, const struct sockaddr_in *a)
{
    return inet_bind(inetos_of(l)->in, q, a);
}

static int os_listen(struct libos *l, void *q, int backlog)
{
    return inet_listen(inetos_of(l)->in, q, backlog);
}

static int os_accept(struct libos *l, void *q, struct sched_task *t)
{
    return inet_accept(inetos_of(l)->in, q, t);
}

static int os_connect(struct libos *l, void *q, const struct sockaddr_in *a, struct sched_task *t)
{
    return inet_connect(inetos_of(l)->in, q, a, t);
}

static int os_push(struct libos *l, void *q, const demi_sgarray_t *sga, const struct sockaddr_in *to,
                   struct sched_task *t)
{
    return inet_push(inetos_of(l)->in, q, sga, to, t);
}

static int os_pop(struct libos *l, void *q, struct sched_task *t)
{
    return inet_pop(inetos_of(l)->in, q, t);
}

static int os_close(struct libos *l, void *q)
{
    return inet_close(inetos_of(l)->in, q);
}

static int os_setsockopt(struct libos *l, void *q, int level, int name, const void *val, socklen_t len)
{
    return inet_setsockopt(inetos_of(l)->in, q, level, name, val, len);
}

static int os_getsockopt(struct libos *l, void *q, int level, int name, void *val, socklen_t *len)
{
    return inet_getsockopt(inetos_of(l)->in, q, level, name, val, len);
}

static int os_getpeername(struct libos *l, void *q, struct sockaddr_in *out)
{
    return inet_getpeername(inetos_of(l)->in, q, out);
}

static int os_getsockname(struct libos *l, void *q, struct sockaddr_in *out)
{
    return inet_getsockname(inetos_of(l)->in, q, out);
}

static void os_destroy(struct libos *l)
{
    struct inetos *os = inetos_of(l);
    inet_destroy(os->in);
    os->dev->ops->destroy(os->dev);
    if (os->group)
        inet_group_leave(os->group, os->group_index);
    free(os);
}

static void os_stats(struct libos *l, demi_stats_t *st)
{
    const struct netdev_stats *ds = &inetos_of(l)->dev->stats;
    st->copied_bytes += ds->copied_bytes;
    st->rx_frames += ds->rx_frames;
    st->rx_bytes += ds->rx_bytes;
    st->tx_frames += ds->tx_frames;
    st->tx_bytes += ds->tx_bytes;
    const struct inet_stats *is = inet_stats(inetos_of(l)->in);
    st->frames_handed_out += is->group_handed_out + is->group_arp_copies;
    st->frames_handed_in += is->group_handed_in;
    if (inetos_of(l)->group) {
        st->queue = inetos_of(l)->group_index;
        st->queues = inetos_of(l)->group_size;
    }
}

static const struct libos_ops inetos_ops = {
    .stats = os_stats,
    .name = "inet",
    .socket = os_socket,
    .bind = os_bind,
    .listen = os_listen,
    .accept = os_accept,
    .connect = os_connect,
    .push = os_push,
    .pop = os_pop,
    .close = os_close,
    .setsockopt = os_setsockopt,
    .getsockopt = os_getsockopt,
    .getpeername = os_getpeername,
    .getsockname = os_getsockname,
    .destroy = os_destroy,
};

int inetos_group_join(struct runtime *rt, const char *key, uint32_t frame_max, struct inet_group **g, uint32_t *index)
{
    *g = NULL;
    *index = 0;
    if (rt->cfg.queues <= 1)
        return 0;
    return inet_group_join(key, rt->cfg.queues, rt->cfg.queue, frame_max, rt->bell, g, index);
}

int inetos_create(struct runtime *rt, struct netdev *dev, struct inet_group *group, uint32_t group_index,
                  const char *who, const char *where, struct libos **out)
{
    const struct config *c = &rt->cfg;
    struct inet_config ic;
    inetos_config(&ic, c);
    if (group) {
        ic.group = group;
        ic.group_index = group_index;
        ic.group_size = c->queues;
    }
    if (ic.mtu > dev->mtu) {
        log_warn("%s: inetstack_config.mtu %u exceeds %s's MTU %u; using %u", who, ic.mtu, where, dev->mtu, dev->mtu);
        ic.mtu = dev->mtu;
    }
    if (ic.mss > ic.mtu - 40)
        ic.mss = ic.mtu - 40;
    struct inetos *os = calloc(1, sizeof(*os));
    int e = os ? inet_create(rt, dev, &ic, &os->in) : ENOMEM;
    if (e) {
        free(os);
        dev->ops->destroy(dev);
        if (group)
            inet_group_leave(group, group_index);
        return e;
    }
    os->base.ops = &inetos_ops;
    os->base.rt = rt;
    os->dev = dev;
    os->group = group;
    os->group_index = ic.group_index;
    os->group_size = ic.group ? ic.group_size : 1;
    inet_set_qowner(os->in, &os->base);
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &c->local_ipv4_addr, ip, sizeof(ip));
    if (group)
        log_info("%s: %s on %s via %s, queue %u of %u", who, ip, where, dev->ops->name, group_index, c->queues);
    else
        log_info("%s: %s on %s via %s", who, ip, where, dev->ops->name);
    *out = &os->base;
    return 0;
}
