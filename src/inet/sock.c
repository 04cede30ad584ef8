/*
 * The stack's socket calls (inet_socket ... inet_getsockname in inet.h),
 * which src/libos/inetos.c turns into a libOS ops table. Checks state (the
 * caller checked the arguments), then hands TCP and UDP work to their
 * protocol files. Every operation flushes the transmit batch before
 * returning: a push leaves for the device within the call.
 */
#include "inet/tcp.h"

#include <netinet/tcp.h>
#include <stdlib.h>

struct inet_sock *sock_new(struct inet *in, int type)
{
    struct inet_sock *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->in = in;
    s->type = (uint8_t)type;
    s->state = SS_FRESH;
    s->opts = (struct sock_opts){
        .linger = type == SOCK_STREAM ? in->cfg.tcp_linger : -1,
        .rcvbuf = type == SOCK_STREAM ? in->cfg.tcp_rcvbuf : 256u * 1024,
        .sndbuf = in->cfg.tcp_sndbuf,
        .nodelay = in->cfg.tcp_nodelay,
        .keepalive = in->cfg.tcp_keepalive,
        .keepidle_ns = in->cfg.tcp_keepidle_ns,
        .keepintvl_ns = in->cfg.tcp_keepintvl_ns,
        .keepcnt = in->cfg.tcp_keepcnt,
    };
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

uint16_t inet_ephemeral(struct inet *in, bool (*taken)(const struct inet *in, uint16_t port))
{
    uint32_t span = EPHEMERAL_HI - EPHEMERAL_LO + 1;
    uint32_t start = (uint32_t)(inet_rand(in) % span);
    uint32_t n = in->cfg.group ? in->cfg.group_size : 1, self = in->cfg.group ? in->cfg.group_index : 0;
    for (uint32_t i = 0; i < span; i++) {
        uint16_t port = (uint16_t)(EPHEMERAL_LO + (start + i) % span);
        if (port % n == self && !taken(in, port))
            return port;
    }
    return 0;
}

int inet_socket(struct inet *in, int type, struct inet_sock **out)
{
    struct inet_sock *s = sock_new(in, type);
    if (!s)
        return ENOMEM;
    *out = s;
    return 0;
}

int inet_bind(struct inet *in, struct inet_sock *s, const struct sockaddr_in *a)
{
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
        e = tcp_port_take(in, port, s->opts.reuseaddr);
    }
    if (e)
        return e;
    s->lip = a->sin_addr.s_addr;
    s->lport = port;
    s->state = SS_BOUND;
    return 0;
}

int inet_listen(struct inet *in, struct inet_sock *s, int backlog)
{
    if (s->type != SOCK_STREAM)
        return EOPNOTSUPP;
    if (s->state == SS_CONN || s->state == SS_CLOSED)
        return EINVAL;
    if (s->state == SS_FRESH) {
        struct sockaddr_in any = {.sin_family = AF_INET};
        int e = inet_bind(in, s, &any);
        if (e)
            return e;
    }
    return tcp_listen(in, s, backlog);
}

int inet_accept(struct inet *in, struct inet_sock *s, struct sched_task *t)
{
    if (s->state != SS_LISTEN)
        return EINVAL;
    int e = tcp_accept(in, s, t);
    inet_flush(in);
    return e;
}

int inet_connect(struct inet *in, struct inet_sock *s, const struct sockaddr_in *a, struct sched_task *t)
{
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

int inet_push(struct inet *in, struct inet_sock *s, const demi_sgarray_t *sga, const struct sockaddr_in *to,
              struct sched_task *t)
{
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

int inet_pop(struct inet *in, struct inet_sock *s, struct sched_task *t)
{
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

int inet_close(struct inet *in, struct inet_sock *s)
{
    close_sock(in, s, true);
    inet_flush(in);
    return 0;
}

/* Options reach here checked by the API layer (src/api/api.c): one of the
 * supported list, a value of the right size, TCP options on streams only.
 * They are set in the socket's one struct sock_opts, which its connection
 * reads through pcb->opts; the timers a change affects are re-armed. */
int inet_setsockopt(struct inet *in, struct inet_sock *s, int level, int name, const void *val, socklen_t len)
{
    (void)in, (void)len;
    struct sock_opts *o = &s->opts;
    struct tcp_pcb *pcb = s->pcb;
    if (level == SOL_SOCKET && name == SO_LINGER) {
        const struct linger *lg = val;
        o->linger = lg->l_onoff ? lg->l_linger : -1;
        return 0;
    }
    int v;
    memcpy(&v, val, sizeof(v));
    if (level == SOL_SOCKET) {
        switch (name) {
        case SO_REUSEADDR:
            o->reuseaddr = v != 0;
            return 0;
        case SO_REUSEPORT:
            o->reuseport = v != 0;
            return 0;
        case SO_KEEPALIVE:
            o->keepalive = v != 0;
            if (pcb)
                tcp_keep_arm(s->in, pcb);
            return 0;
        case SO_RCVBUF:
            if (v <= 0)
                return EINVAL;
            /* The window scale is fixed by the SYN: this applies to
             * connections not yet made (and, within the scale, grows
             * the window of an open one). */
            o->rcvbuf = (uint32_t)MIN((int64_t)v, 1 << 30);
            if (pcb && o->rcvbuf <= (65535u << pcb->rcv_wscale))
                pcb->rcv_buf = o->rcvbuf;
            return 0;
        case SO_SNDBUF:
            if (v <= 0)
                return EINVAL;
            o->sndbuf = (uint32_t)v;
            return 0;
        }
        return ENOPROTOOPT;
    }
    switch (name) {
    case TCP_NODELAY:
        o->nodelay = v != 0;
        return 0;
    case TCP_KEEPIDLE:
    case TCP_KEEPINTVL:
    case TCP_KEEPCNT:
        if (v <= 0)
            return EINVAL;
        if (name == TCP_KEEPIDLE)
            o->keepidle_ns = (uint64_t)v * 1000000000u;
        else if (name == TCP_KEEPINTVL)
            o->keepintvl_ns = (uint64_t)v * 1000000000u;
        else
            o->keepcnt = (uint32_t)v;
        if (pcb)
            tcp_keep_arm(s->in, pcb);
        return 0;
    }
    return ENOPROTOOPT;
}

int inet_getsockopt(struct inet *in, struct inet_sock *s, int level, int name, void *val, socklen_t *len)
{
    (void)in;
    const struct sock_opts *o = &s->opts;
    if (level == SOL_SOCKET && name == SO_LINGER) {
        struct linger lg = {o->linger >= 0, o->linger >= 0 ? o->linger : 0};
        memcpy(val, &lg, sizeof(lg));
        *len = sizeof(lg);
        return 0;
    }
    int v = 0;
    if (level == SOL_SOCKET) {
        switch (name) {
        case SO_REUSEADDR:
            v = o->reuseaddr;
            break;
        case SO_REUSEPORT:
            v = o->reuseport;
            break;
        case SO_KEEPALIVE:
            v = o->keepalive;
            break;
        case SO_RCVBUF:
            v = (int)o->rcvbuf;
            break;
        case SO_SNDBUF:
            v = (int)o->sndbuf;
            break;
        case SO_TYPE:
            v = s->type;
            break;
        case SO_ERROR:
            v = s->pcb ? s->pcb->err : 0;
            break;
        default:
            return ENOPROTOOPT;
        }
    } else {
        switch (name) {
        case TCP_NODELAY:
            v = o->nodelay;
            break;
        case TCP_KEEPIDLE:
            v = (int)(o->keepidle_ns / 1000000000u);
            break;
        case TCP_KEEPINTVL:
            v = (int)(o->keepintvl_ns / 1000000000u);
            break;
        case TCP_KEEPCNT:
            v = (int)o->keepcnt;
            break;
        default:
            return ENOPROTOOPT;
        }
    }
    memcpy(val, &v, sizeof(v));
    *len = sizeof(v);
    return 0;
}

int inet_getpeername(struct inet *in, struct inet_sock *s, struct sockaddr_in *out)
{
    (void)in;
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

int inet_getsockname(struct inet *in, struct inet_sock *s, struct sockaddr_in *out)
{
    out->sin_family = AF_INET;
    out->sin_port = htons(s->lport);
    /* A connected socket reports the address it actually uses. */
    out->sin_addr.s_addr = (s->state == SS_CONN || s->has_peer) ? in->ip : s->lip;
    return 0;
}
