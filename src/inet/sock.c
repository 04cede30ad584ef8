/*
 * The stack's PDPIX face: the libOS ops table over inet sockets. Checks
 * state (the API layer checked the arguments), then hands TCP and UDP work
 * to their protocol files. Every operation flushes the transmit batch
 * before returning: a push leaves for the device within the call.
 */
#include "inet/tcp.h"

#include <netinet/tcp.h>
#include <stdlib.h>

static struct inet_sock *sock_of(void *q)
{
    return q;
}

struct inet_sock *sock_new(struct inet *in, int type)
{
    struct inet_sock *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->in = in;
    s->type = (uint8_t)type;
    s->state = SS_FRESH;
    s->linger = -1;
    s->rcvbuf = type == SOCK_STREAM ? in->cfg.tcp_rcvbuf : 256u * 1024;
    s->sndbuf = in->cfg.tcp_sndbuf;
    s->nodelay = in->cfg.tcp_nodelay;
    s->keepalive = in->cfg.tcp_keepalive;
    s->keepidle_ns = in->cfg.tcp_keepidle_ns;
    s->keepintvl_ns = in->cfg.tcp_keepintvl_ns;
    s->keepcnt = in->cfg.tcp_keepcnt;
    s->snext = in->socks;
    if (in->socks)
        in->socks->sprev = s;
    in->socks = s;
    return s;
}

void sock_free(struct inet *in, struct inet_sock *s)
{
    if (s->sprev)
        s->sprev->snext = s->snext;
    else
        in->socks = s->snext;
    if (s->snext)
        s->snext->sprev = s->sprev;
    if (s->pcb) {
        s->pcb->sock = NULL; /* a CLOSED connection kept for its error */
        pcb_drop(in, s->pcb, 0);
    }
    free(s);
}

static int in_socket(struct libos *l, int type, void **q_out)
{
    struct inet_sock *s = sock_new(inet_of(l), type);
    if (!s)
        return ENOMEM;
    *q_out = s;
    return 0;
}

static int in_bind(struct libos *l, void *q, const struct sockaddr_in *a)
{
    struct inet *in = inet_of(l);
    struct inet_sock *s = sock_of(q);
    if (s->state != SS_FRESH)
        return EINVAL;
    if (a->sin_addr.s_addr != INADDR_ANY && a->sin_addr.s_addr != in->ip)
        return EADDRNOTAVAIL;
    uint16_t port = ntohs(a->sin_port);
    int e;
    if (s->type == SOCK_DGRAM) {
        e = udp_bind_port(in, s, port);
        port = s->lport; /* port 0: the ephemeral port it took */
    } else if (port == 0) {
        port = tcp_port_ephemeral(in);
        e = port ? 0 : EADDRINUSE;
    } else {
        e = tcp_port_take(in, port, s->reuseaddr);
    }
    if (e)
        return e;
    s->lip = a->sin_addr.s_addr;
    s->lport = port;
    s->state = SS_BOUND;
    return 0;
}

static int in_listen(struct libos *l, void *q, int backlog)
{
    struct inet *in = inet_of(l);
    struct inet_sock *s = sock_of(q);
    if (s->type != SOCK_STREAM)
        return EOPNOTSUPP;
    if (s->state == SS_CONN || s->state == SS_CLOSED)
        return EINVAL;
    if (s->state == SS_FRESH) {
        struct sockaddr_in any = {.sin_family = AF_INET};
        int e = in_bind(l, q, &any);
        if (e)
            return e;
    }
    return tcp_listen(in, s, backlog);
}

static int in_accept(struct libos *l, void *q, struct sched_task *t)
{
    struct inet *in = inet_of(l);
    struct inet_sock *s = sock_of(q);
    if (s->state != SS_LISTEN)
        return EINVAL;
    int e = tcp_accept(in, s, t);
    inet_flush(in);
    return e;
}

static int in_connect(struct libos *l, void *q, const struct sockaddr_in *a, struct sched_task *t)
{
    struct inet *in = inet_of(l);
    struct inet_sock *s = sock_of(q);
    if (s->type == SOCK_DGRAM) {
        /* UDP: a default peer, at once. */
        if (s->state == SS_FRESH) {
            int e = udp_bind_port(in, s, 0);
            if (e)
                return e;
        }
        s->rip = a->sin_addr.s_addr;
        s->rport = ntohs(a->sin_port);
        s->has_peer = true;
        t->qr.qr_opcode = DEMI_OPC_CONNECT;
        t->qr.qr_ret = 0;
        sched_complete(&in->rt->sched, t);
        return 0;
    }
    if (s->state == SS_LISTEN)
        return EINVAL;
    if (s->state == SS_CONN)
        return s->connect_task ? EALREADY : EISCONN;
    if (s->state == SS_CLOSED)
        return EINVAL;
    int e = tcp_connect(in, s, a, t);
    inet_flush(in);
    return e;
}

static int in_push(struct libos *l, void *q, const demi_sgarray_t *sga, const struct sockaddr_in *to,
                   struct sched_task *t)
{
    struct inet *in = inet_of(l);
    struct inet_sock *s = sock_of(q);
    int e;
    if (s->type == SOCK_DGRAM) {
        e = udp_push(in, s, sga, to, t);
    } else {
        if (s->state == SS_LISTEN)
            return EINVAL;
        if (s->state != SS_CONN || s->connect_task)
            return ENOTCONN;
        e = tcp_push(in, s, sga, t);
    }
    inet_flush(in);
    return e;
}

static int in_pop(struct libos *l, void *q, struct sched_task *t)
{
    struct inet *in = inet_of(l);
    struct inet_sock *s = sock_of(q);
    int e;
    if (s->type == SOCK_DGRAM) {
        e = udp_pop(in, s, t);
    } else {
        if (s->state == SS_LISTEN)
            return EINVAL;
        if (s->state != SS_CONN || s->connect_task)
            return ENOTCONN;
        e = tcp_pop(in, s, t);
    }
    inet_flush(in);
    return e;
}

static void close_sock(struct inet *in, struct inet_sock *s, bool deliver)
{
    if (s->type == SOCK_DGRAM)
        udp_close(in, s, deliver);
    else
        tcp_close(in, s, deliver);
    sock_free(in, s);
}

static int in_close(struct libos *l, void *q)
{
    struct inet *in = inet_of(l);
    close_sock(in, sock_of(q), true);
    inet_flush(in);
    return 0;
}

static bool opt_supported(int level, int name, bool get)
{
    if (level == SOL_SOCKET)
        return name == SO_REUSEADDR || name == SO_REUSEPORT || name == SO_LINGER || name == SO_KEEPALIVE ||
               name == SO_RCVBUF || name == SO_SNDBUF || (get && (name == SO_ERROR || name == SO_TYPE));
    if (level == IPPROTO_TCP)
        return name == TCP_NODELAY || name == TCP_KEEPIDLE || name == TCP_KEEPINTVL || name == TCP_KEEPCNT;
    return false;
}

static int in_setsockopt(struct libos *l, void *q, int level, int name, const void *val, socklen_t len)
{
    (void)l;
    struct inet_sock *s = sock_of(q);
    if (!opt_supported(level, name, false) || (level == IPPROTO_TCP && s->type != SOCK_STREAM))
        return ENOPROTOOPT;
    if (level == SOL_SOCKET && name == SO_LINGER) {
        if (len < (socklen_t)sizeof(struct linger))
            return EINVAL;
        const struct linger *lg = val;
        s->linger = lg->l_onoff ? lg->l_linger : -1;
        return 0;
    }
    if (len < (socklen_t)sizeof(int))
        return EINVAL;
    int v;
    memcpy(&v, val, sizeof(v));
    struct tcp_pcb *pcb = s->pcb;
    if (level == SOL_SOCKET) {
        switch (name) {
        case SO_REUSEADDR:
            s->reuseaddr = v != 0;
            break;
        case SO_REUSEPORT:
            s->reuseport = v != 0;
            break;
        case SO_KEEPALIVE:
            s->keepalive = v != 0;
            if (pcb) {
                pcb->keepalive = s->keepalive;
                tcp_keep_arm(s->in, pcb);
            }
            break;
        case SO_RCVBUF:
            if (v <= 0)
                return EINVAL;
            /* The window scale is fixed by the SYN: this applies to
             * connections not yet made (and, within the scale, grows
             * the window of an open one). */
            s->rcvbuf = (uint32_t)MIN((int64_t)v, 1 << 30);
            if (pcb && s->rcvbuf <= (65535u << pcb->rcv_wscale))
                pcb->rcv_buf = s->rcvbuf;
            break;
        case SO_SNDBUF:
            if (v <= 0)
                return EINVAL;
            s->sndbuf = (uint32_t)v;
            break;
        }
        return 0;
    }
    switch (name) {
    case TCP_NODELAY:
        s->nodelay = v != 0;
        if (pcb)
            pcb->nodelay = s->nodelay;
        break;
    case TCP_KEEPIDLE:
    case TCP_KEEPINTVL:
    case TCP_KEEPCNT:
        if (v <= 0)
            return EINVAL;
        if (name == TCP_KEEPIDLE)
            s->keepidle_ns = (uint64_t)v * 1000000000u;
        else if (name == TCP_KEEPINTVL)
            s->keepintvl_ns = (uint64_t)v * 1000000000u;
        else
            s->keepcnt = (uint32_t)v;
        if (pcb) {
            pcb->keepidle_ns = s->keepidle_ns;
            pcb->keepintvl_ns = s->keepintvl_ns;
            pcb->keepcnt = s->keepcnt;
            tcp_keep_arm(s->in, pcb);
        }
        break;
    }
    return 0;
}

static int in_getsockopt(struct libos *l, void *q, int level, int name, void *val, socklen_t *len)
{
    (void)l;
    struct inet_sock *s = sock_of(q);
    if (!opt_supported(level, name, true) || (level == IPPROTO_TCP && s->type != SOCK_STREAM))
        return ENOPROTOOPT;
    if (level == SOL_SOCKET && name == SO_LINGER) {
        if (*len < (socklen_t)sizeof(struct linger))
            return EINVAL;
        struct linger lg = {s->linger >= 0, s->linger >= 0 ? s->linger : 0};
        memcpy(val, &lg, sizeof(lg));
        *len = sizeof(lg);
        return 0;
    }
    if (*len < (socklen_t)sizeof(int))
        return EINVAL;
    int v = 0;
    if (level == SOL_SOCKET) {
        switch (name) {
        case SO_REUSEADDR:
            v = s->reuseaddr;
            break;
        case SO_REUSEPORT:
            v = s->reuseport;
            break;
        case SO_KEEPALIVE:
            v = s->keepalive;
            break;
        case SO_RCVBUF:
            v = (int)s->rcvbuf;
            break;
        case SO_SNDBUF:
            v = (int)s->sndbuf;
            break;
        case SO_TYPE:
            v = s->type;
            break;
        case SO_ERROR:
            v = s->pcb ? s->pcb->err : 0;
            break;
        }
    } else {
        switch (name) {
        case TCP_NODELAY:
            v = s->nodelay;
            break;
        case TCP_KEEPIDLE:
            v = (int)(s->keepidle_ns / 1000000000u);
            break;
        case TCP_KEEPINTVL:
            v = (int)(s->keepintvl_ns / 1000000000u);
            break;
        case TCP_KEEPCNT:
            v = (int)s->keepcnt;
            break;
        }
    }
    memcpy(val, &v, sizeof(v));
    *len = sizeof(v);
    return 0;
}

static int in_getpeername(struct libos *l, void *q, struct sockaddr_in *out)
{
    (void)l;
    struct inet_sock *s = sock_of(q);
    out->sin_family = AF_INET;
    if (s->type == SOCK_DGRAM && s->has_peer) {
        out->sin_addr.s_addr = s->rip;
        out->sin_port = htons(s->rport);
        return 0;
    }
    if (s->type == SOCK_STREAM && s->pcb && s->pcb->state != TCPS_CLOSED && !s->connect_task) {
        out->sin_addr.s_addr = s->pcb->rip;
        out->sin_port = htons(s->pcb->rport);
        return 0;
    }
    return ENOTCONN;
}

static int in_getsockname(struct libos *l, void *q, struct sockaddr_in *out)
{
    struct inet_sock *s = sock_of(q);
    out->sin_family = AF_INET;
    out->sin_port = htons(s->lport);
    /* A connected socket reports the address it actually uses. */
    out->sin_addr.s_addr = (s->state == SS_CONN || s->has_peer) ? inet_of(l)->ip : s->lip;
    return 0;
}

static void in_destroy(struct libos *l)
{
    struct inet *in = inet_of(l);
    struct netdev *dev = in->owns_dev ? in->dev : NULL;
    inet_destroy(in);
    if (dev)
        dev->ops->destroy(dev);
}

static void in_stats(struct libos *l, demi_stats_t *st)
{
    const struct netdev_stats *ds = &inet_of(l)->dev->stats;
    st->copied_bytes += ds->copied_bytes;
    st->rx_frames += ds->rx_frames;
    st->rx_bytes += ds->rx_bytes;
    st->tx_frames += ds->tx_frames;
    st->tx_bytes += ds->tx_bytes;
}

const struct libos_ops inet_ops = {
    .stats = in_stats,
    .name = "inet",
    .socket = in_socket,
    .bind = in_bind,
    .listen = in_listen,
    .accept = in_accept,
    .connect = in_connect,
    .push = in_push,
    .pop = in_pop,
    .close = in_close,
    .setsockopt = in_setsockopt,
    .getsockopt = in_getsockopt,
    .getpeername = in_getpeername,
    .getsockname = in_getsockname,
    .destroy = in_destroy,
};
