/*
 * TCP (RFC 9293): connection table, the segment-arrival state machine
 * (3.10.7) with RFC 5961 blind-attack defences, RFC 7323 timestamps and
 * PAWS, RFC 2018 SACK input, RFC 6528 initial sequence numbers, and the
 * socket operations (listen, accept, connect, push, pop, close).
 *
 * Received payload is never copied: an in-order segment's bytes stay in
 * the frame they arrived in, and a pop hands those frames to the
 * application. Output, timers and congestion control live in tcp_out.c.
 */
#include "inet/tcp.h"

#include <stdlib.h>

/* ---- ports ---- */

/* Whether a socket holding @port keeps a socket with SO_REUSEADDR from
 * binding it too: a listener always does, and so does any socket on it
 * without SO_REUSEADDR itself (as on Linux). */
static bool port_blocks_reuse(struct inet *in, uint16_t port)
{
    if (in->tcp_listeners[port])
        return true;
    for (const struct inet_sock *s = in->socks; s; s = s->snext)
        if (s->type == SOCK_STREAM && s->lport == port && (s->state == SS_BOUND || s->state == SS_CONN) &&
            !s->opts.reuseaddr)
            return true;
    return false;
}

/* Takes @port for a bind. A port in use refuses it (EADDRINUSE) unless
 * @reuse (SO_REUSEADDR) is set and only connections hold the port:
 * connections the application closed (TIME_WAIT, or still sending),
 * connections not accepted yet, or sockets that set SO_REUSEADDR too. Two
 * connections never share a 4-tuple (tcp_connect checks), and two
 * listeners never share a port (tcp_listen checks). */
int tcp_port_take(struct inet *in, uint16_t port, bool reuse)
{
    if (in->tcp_port_users[port] && (!reuse || port_blocks_reuse(in, port)))
        return EADDRINUSE;
    in->tcp_port_users[port]++;
    return 0;
}

void tcp_port_release(struct inet *in, uint16_t port)
{
    if (in->tcp_port_users[port])
        in->tcp_port_users[port]--;
}

static bool tcp_port_taken(const struct inet *in, uint16_t port)
{
    return in->tcp_port_users[port] != 0;
}

uint16_t tcp_port_ephemeral(struct inet *in)
{
    uint16_t port = inet_ephemeral(in, tcp_port_taken);
    if (port)
        in->tcp_port_users[port]++;
    return port;
}

/* ---- connection table ---- */

static uint32_t hash4(uint32_t rip, uint16_t rport, uint16_t lport)
{
    uint64_t k = ((uint64_t)rip << 32) ^ ((uint64_t)rport << 16) ^ lport;
    k *= 0x9e3779b97f4a7c15ull;
    return (uint32_t)(k >> 32);
}

static void table_insert(struct inet *in, struct tcp_pcb *pcb)
{
    if (in->nconns >= in->conns_mask + 1) {
        /* Grow at load factor 1: rehash every chain into twice the buckets. */
        uint32_t nmask = in->conns_mask * 2 + 1;
        struct tcp_pcb **nt = calloc(nmask + 1, sizeof(*nt));
        if (nt) {
            for (uint32_t i = 0; i <= in->conns_mask; i++) {
                struct tcp_pcb *p = in->conns[i];
                while (p) {
                    struct tcp_pcb *next = p->hnext;
                    uint32_t b = hash4(p->rip, p->rport, p->lport) & nmask;
                    p->hnext = nt[b];
                    nt[b] = p;
                    p = next;
                }
            }
            free(in->conns);
            in->conns = nt;
            in->conns_mask = nmask;
        }
    }
    uint32_t b = hash4(pcb->rip, pcb->rport, pcb->lport) & in->conns_mask;
    pcb->hnext = in->conns[b];
    in->conns[b] = pcb;
    in->nconns++;
}

static void table_remove(struct inet *in, struct tcp_pcb *pcb)
{
    struct tcp_pcb **pp = &in->conns[hash4(pcb->rip, pcb->rport, pcb->lport) & in->conns_mask];
    for (; *pp; pp = &(*pp)->hnext) {
        if (*pp == pcb) {
            *pp = pcb->hnext;
            pcb->hnext = NULL;
            in->nconns--;
            return;
        }
    }
}

static struct tcp_pcb *table_find(struct inet *in, uint32_t rip, uint16_t rport, uint16_t lport)
{
    struct tcp_pcb *p = in->conns[hash4(rip, rport, lport) & in->conns_mask];
    for (; p; p = p->hnext)
        if (p->rip == rip && p->rport == rport && p->lport == lport)
            return p;
    return NULL;
}

/* RFC 6528: ISN = M + F(4-tuple, secret), M a clock ticking every 4 us. */
static uint32_t isn(struct inet *in, uint32_t rip, uint16_t rport, uint16_t lport)
{
    uint32_t tuple[3] = {in->ip, rip, ((uint32_t)lport << 16) | rport};
    return (uint32_t)(inet_now(in) / 4000) + (uint32_t)siphash24(in->isn_key, tuple, sizeof(tuple));
}

/* A connection using the socket options @opts (see struct sock_opts). */
static struct tcp_pcb *pcb_new(struct inet *in, uint32_t rip, uint16_t rport, uint16_t lport,
                               const struct sock_opts *opts)
{
    struct tcp_pcb *pcb = calloc(1, sizeof(*pcb));
    if (!pcb)
        return NULL;
    pcb->in = in;
    pcb->rip = rip;
    pcb->rport = rport;
    pcb->lport = lport;
    pcb->opts = opts;
    pcb->rcv_buf = opts->rcvbuf;
    pcb->rto = in->cfg.tcp_rto_init_ns;
    pcb->mss = 536; /* RFC 9293 3.7.1: until the peer says otherwise */
    pcb->ssthresh = 0x7fffffff;
    pcb->cc = tcp_cc_ops_for(in->cfg.tcp_cc);
    pcb->last_rx = inet_now(in);
    tcp_timers_init(pcb);
    table_insert(in, pcb);
    in->tcp_port_users[lport]++;
    return pcb;
}

static void rq_release(struct inet *in, struct tcp_pcb *pcb)
{
    for (uint32_t i = 0; i < pcb->rq_n; i++)
        heap_unref(in->heap, pcb->rq[(pcb->rq_head + i) % pcb->rq_cap].blk);
    pcb->rq_n = pcb->rq_bytes = 0;
    for (uint32_t i = 0; i < pcb->ooo_n; i++)
        heap_unref(in->heap, pcb->ooo[i].b.blk);
    pcb->ooo_n = pcb->ooo_bytes = 0;
    pcb->rcv_mem = 0;
}

/* Fails every operation waiting on @pcb with @err. */
static void fail_ops(struct inet *in, struct tcp_pcb *pcb, int err)
{
    struct sched_task *t;
    while ((t = tlist_pop(&pcb->pops)))
        sched_fail(&in->rt->sched, t, err);
    while ((t = tlist_pop(&pcb->pushes)))
        sched_fail(&in->rt->sched, t, err == ECONNRESET ? ECONNRESET : err);
    if (pcb->sock && pcb->sock->connect_task) {
        sched_fail(&in->rt->sched, pcb->sock->connect_task, err);
        pcb->sock->connect_task = NULL;
    }
}

static void work_unlink(struct inet *in, struct tcp_pcb *pcb)
{
    for (struct tcp_pcb **pp = &in->work; *pp; pp = &(*pp)->work_next) {
        if (*pp == pcb) {
            *pp = pcb->work_next;
            pcb->work_next = NULL;
            return;
        }
    }
}

static void ack_unlink(struct inet *in, struct tcp_pcb *pcb)
{
    for (struct tcp_pcb **pp = &in->acklist; *pp; pp = &(*pp)->ack_next) {
        if (*pp == pcb) {
            *pp = pcb->ack_next;
            pcb->ack_next = NULL;
            return;
        }
    }
}

/* The listener's list of half-open children, oldest first (the one an
 * overflowing SYN queue recycles). */
static void syn_link(struct tcp_listen *l, struct tcp_pcb *pcb)
{
    pcb->syn_next = NULL;
    pcb->syn_prev = l->syn_tail;
    if (l->syn_tail)
        l->syn_tail->syn_next = pcb;
    else
        l->syn_head = pcb;
    l->syn_tail = pcb;
    l->nsyn++;
}

static void syn_unlink(struct tcp_listen *l, struct tcp_pcb *pcb)
{
    if (pcb->syn_prev)
        pcb->syn_prev->syn_next = pcb->syn_next;
    else
        l->syn_head = pcb->syn_next;
    if (pcb->syn_next)
        pcb->syn_next->syn_prev = pcb->syn_prev;
    else
        l->syn_tail = pcb->syn_prev;
    pcb->syn_prev = pcb->syn_next = NULL;
    l->nsyn--;
}

/* Releases everything the connection holds; frees it unless a socket
 * still refers to it (it then stays, CLOSED, to report its error). */
/* The connection no longer counts as an orphan (finished, or TIME_WAIT). */
static void orphan_uncount(struct inet *in, struct tcp_pcb *pcb)
{
    if (pcb->orphan_counted) {
        pcb->orphan_counted = false;
        in->tcp_orphans--;
    }
}

void pcb_drop(struct inet *in, struct tcp_pcb *pcb, int err)
{
    orphan_uncount(in, pcb);
    if (pcb->state != TCPS_CLOSED) {
        table_remove(in, pcb);
        tcp_port_release(in, pcb->lport);
        in->st.tcp_conns_freed++;
    }
    tcp_timers_cancel(pcb);
    if (pcb->on_work) {
        work_unlink(in, pcb);
        pcb->on_work = false;
    }
    if (pcb->on_acklist) {
        ack_unlink(in, pcb);
        pcb->on_acklist = false;
    }
    if (pcb->parent) {
        /* Still owned by its listener: half-open or waiting to be accepted. */
        struct tcp_listen *l = pcb->parent;
        if (pcb->state == TCPS_SYN_RCVD) {
            syn_unlink(l, pcb);
        } else {
            for (struct tcp_pcb **pp = &l->ready_head; *pp; pp = &(*pp)->qnext) {
                if (*pp == pcb) {
                    *pp = pcb->qnext;
                    if (l->ready_tail == pcb) {
                        l->ready_tail = NULL;
                        for (struct tcp_pcb *q = l->ready_head; q; q = q->qnext)
                            l->ready_tail = q;
                    }
                    l->nready--;
                    break;
                }
            }
        }
        pcb->parent = NULL;
    }
    /* Nothing waits on a connection that is gone. A drop with nobody to
     * tell (err 0: closed by the application, or a passive open going back
     * to LISTEN) can still hold pushes made before the close, if the peer
     * reset or the stack aborted it before they were acknowledged: they
     * fail with ECONNABORTED rather than wait forever on a freed list. */
    fail_ops(in, pcb, err ? err : ECONNABORTED);
    tcp_sq_release(in, pcb, pcb->sq_n);
    rq_release(in, pcb);
    pcb->state = TCPS_CLOSED;
    pcb->err = err ? err : pcb->err;
    if (!pcb->sock) {
        free(pcb->sq);
        free(pcb->rq);
        free(pcb->ooo);
        free(pcb);
    }
}

/* ---- options (RFC 9293 3.2, RFC 7323, RFC 2018) ---- */

/* Parses the option bytes; returns false for malformed options. */
static bool parse_opts(const uint8_t *p, uint32_t len, bool syn, struct tcp_opts *o)
{
    memset(o, 0, sizeof(*o));
    while (len > 0) {
        uint8_t kind = p[0];
        if (kind == 0)
            break;
        if (kind == 1) {
            p++;
            len--;
            continue;
        }
        if (len < 2 || p[1] < 2 || p[1] > len)
            return false;
        uint8_t olen = p[1];
        switch (kind) {
        case 2: /* MSS */
            if (olen != 4)
                return false;
            if (syn) {
                o->mss = (uint16_t)(p[2] << 8 | p[3]);
                o->has_mss = true;
            }
            break;
        case 3: /* window scale */
            if (olen != 3)
                return false;
            if (syn) {
                o->wscale = p[2] > 14 ? 14 : p[2]; /* RFC 7323 2.3: cap at 14 */
                o->has_wscale = true;
            }
            break;
        case 4: /* SACK permitted */
            if (olen != 2)
                return false;
            o->sack_ok = syn;
            break;
        case 5: /* SACK blocks */
            if (olen < 10 || (olen - 2) % 8)
                return false;
            for (int i = 0; i < (olen - 2) / 8 && o->nsack < 4; i++) {
                uint32_t a, b;
                memcpy(&a, p + 2 + 8 * i, 4);
                memcpy(&b, p + 6 + 8 * i, 4);
                o->sack[o->nsack].start = ntohl(a);
                o->sack[o->nsack].end = ntohl(b);
                o->nsack++;
            }
            break;
        case 8: /* timestamps */
            if (olen != 10)
                return false;
            memcpy(&o->tsval, p + 2, 4);
            memcpy(&o->tsecr, p + 6, 4);
            o->tsval = ntohl(o->tsval);
            o->tsecr = ntohl(o->tsecr);
            o->has_ts = true;
            break;
        default:
            break; /* unknown options are skipped by length */
        }
        p += olen;
        len -= olen;
    }
    return true;
}

/* Applies the peer's SYN options to the connection. */
static void apply_syn_opts(struct inet *in, struct tcp_pcb *pcb, const struct tcp_opts *o, bool active)
{
    uint16_t peer = o->has_mss ? o->mss : 536;
    uint16_t ours = (uint16_t)MIN(in->cfg.mss, in->cfg.mtu - 40);
    pcb->mss = MIN(peer, ours);
    if (pcb->mss < 64)
        pcb->mss = 64;
    /* On a passive open, an option is on only if both sides want it; an
     * active open offered ours in the SYN and takes the peer's answer. */
    pcb->wscale_ok = in->cfg.tcp_wscale && o->has_wscale;
    pcb->snd_wscale = pcb->wscale_ok ? o->wscale : 0;
    if (!pcb->wscale_ok)
        pcb->rcv_wscale = 0;
    pcb->sack_ok = in->cfg.tcp_sack && o->sack_ok;
    pcb->ts_ok = in->cfg.tcp_timestamps && o->has_ts;
    if (pcb->ts_ok) {
        pcb->ts_recent = o->tsval;
        pcb->ts_recent_age = inet_now(in);
    }
    (void)active;
    tcp_cc_init(pcb);
}

static uint8_t wscale_for(uint32_t buf)
{
    uint8_t s = 0;
    while (s < 14 && (buf >> s) > 65535)
        s++;
    return s;
}

/* ---- RST for segments without a connection (RFC 9293 3.10.7.1) ---- */

static void send_rst_for(struct inet *in, const struct ip_hdr *ip, const struct tcp_hdr *th, uint32_t seglen)
{
    if (th->flags & TH_RST)
        return;
    uint32_t seq, ack;
    uint8_t flags;
    if (th->flags & TH_ACK) {
        seq = ntohl(th->ack);
        ack = 0;
        flags = TH_RST;
    } else {
        seq = 0;
        ack = ntohl(th->seq) + seglen;
        flags = TH_RST | TH_ACK;
    }
    tcp_send_raw(in, ip->src, ntohs(th->sport), ntohs(th->dport), seq, ack, flags);
}

/* ---- receive queue ---- */

/* Appends @b (its truesize set) to the receive queue. */
static bool rq_push(struct tcp_pcb *pcb, struct rxbuf b)
{
    if (pcb->rq_n == pcb->rq_cap) {
        uint32_t cap = pcb->rq_cap ? pcb->rq_cap * 2 : 64;
        struct rxbuf *n = malloc(cap * sizeof(*n));
        if (!n)
            return false;
        for (uint32_t i = 0; i < pcb->rq_n; i++)
            n[i] = pcb->rq[(pcb->rq_head + i) % pcb->rq_cap];
        free(pcb->rq);
        pcb->rq = n;
        pcb->rq_cap = cap;
        pcb->rq_head = 0;
    }
    pcb->rq[(pcb->rq_head + pcb->rq_n) % pcb->rq_cap] = b;
    pcb->rq_n++;
    pcb->rq_bytes += b.len;
    pcb->rcv_mem += b.truesize;
    return true;
}

/* A run is wasteful when it pins twice its payload or more. The others
 * together pin less than twice the window, under tcp_rmem_limit, so once
 * the wasteful ones are collapsed the charge is back under the limit. */
static bool rx_wasteful(const struct rxbuf *b)
{
    return b->truesize >= 2u * b->len;
}

#define COLLAPSE_BLK (16u * 1024) /* the compact blocks small runs are copied into */

/* Copies the payload of consecutive small runs of the receive queue into
 * compact blocks and lets their frames go (Linux's tcp_collapse). This
 * copy is the price of a peer (or device) that sent tiny segments in big
 * frames: the data was promised room in the window, and holding each frame
 * would pin up to a hundred times that memory. Full-sized segments are
 * never copied. Stops (keeping what is left as it is) if memory runs out. */
static void rq_collapse(struct inet *in, struct tcp_pcb *pcb)
{
    struct rxbuf *n = malloc(pcb->rq_cap * sizeof(*n));
    if (!n)
        return;
    uint32_t nn = 0, mem = 0, i = 0, old_mem = 0;
    for (uint32_t k = 0; k < pcb->rq_n; k++)
        old_mem += pcb->rq[(pcb->rq_head + k) % pcb->rq_cap].truesize;
    bool stop = false;
    while (i < pcb->rq_n) {
        struct rxbuf *b = &pcb->rq[(pcb->rq_head + i) % pcb->rq_cap];
        uint32_t j = i, total = 0;
        /* A compact block is rarely wasteful itself (its size is the
         * smallest power of two holding its bytes); when it is (a few
         * bytes in the heap's smallest block, or barely over half of it),
         * it is copied again only merged with its neighbours, into a
         * bigger one. */
        while (!stop && j < pcb->rq_n) {
            const struct rxbuf *s = &pcb->rq[(pcb->rq_head + j) % pcb->rq_cap];
            if (!rx_wasteful(s) || total + s->len > COLLAPSE_BLK)
                break;
            total += s->len;
            j++;
        }
        if (j - i < 2) { /* nothing to gain: keep the run */
            n[nn++] = *b;
            mem += b->truesize;
            i++;
            continue;
        }
        struct heap_blk *blk = heap_alloc(in->heap, total);
        if (!blk) {
            stop = true;
            continue;
        }
        uint8_t *dst = heap_blk_data(in->heap, blk);
        for (uint32_t k = i; k < j; k++) {
            struct rxbuf *s = &pcb->rq[(pcb->rq_head + k) % pcb->rq_cap];
            memcpy(dst, s->data, s->len);
            dst += s->len;
            heap_unref(in->heap, s->blk);
        }
        n[nn] = (struct rxbuf){blk, heap_blk_data(in->heap, blk), total, 0};
        n[nn].truesize = rx_truesize(in, &n[nn]);
        mem += n[nn].truesize;
        nn++;
        in->st.tcp_rcv_collapsed_bytes += total;
        heap_stats_mut(in->heap)->copied_bytes += total;
        i = j;
    }
    free(pcb->rq);
    /* The ring that held every tiny run shrinks with them. */
    uint32_t cap = pcb->rq_cap;
    while (cap > 64 && cap / 4 >= nn)
        cap /= 2;
    if (cap < pcb->rq_cap) {
        struct rxbuf *s = realloc(n, cap * sizeof(*n));
        if (s) {
            n = s;
            pcb->rq_cap = cap;
        }
    }
    pcb->rq = n;
    pcb->rq_head = 0;
    pcb->rq_n = nn;
    /* rq_bytes is unchanged; the out-of-order runs keep their charge. */
    pcb->rcv_mem = pcb->rcv_mem - old_mem + mem;
}

/* Completes pops from the receive queue while there is data (or EOF). */
static void deliver_pops(struct inet *in, struct tcp_pcb *pcb)
{
    struct sched_task *t;
    while ((t = pcb->pops.head)) {
        demi_sgarray_t *sga = &t->qr.qr_value.sga;
        if (pcb->rq_n) {
            mem_sga_begin(in->heap, sga);
            while (pcb->rq_n && sga->sga_numsegs < DEMI_SGARRAY_MAXSIZE) {
                struct rxbuf b = pcb->rq[pcb->rq_head];
                pcb->rq_head = (pcb->rq_head + 1) % pcb->rq_cap;
                pcb->rq_n--;
                pcb->rq_bytes -= b.len;
                pcb->rcv_mem -= b.truesize;
                /* The frame's reference passes to the application. */
                mem_sga_add(in->heap, sga, b.blk, b.data, b.len);
            }
        } else if (pcb->fin_rcvd) {
            memset(sga, 0, sizeof(*sga)); /* orderly close: an empty array */
        } else if (pcb->err) {
            tlist_remove(t);
            sched_fail(&in->rt->sched, t, pcb->err);
            continue;
        } else {
            break;
        }
        tlist_remove(t);
        t->qr.qr_opcode = DEMI_OPC_POP;
        t->qr.qr_ret = 0;
        sched_complete(&in->rt->sched, t);
        tcp_window_update(in, pcb);
    }
    /* Drained under the limit: a later collapse may run at once again. */
    if (pcb->rmem_retry && pcb->rcv_mem <= tcp_rmem_limit(pcb))
        pcb->rmem_retry = 0;
}

/* ---- out-of-order queue ---- */

/* Brings the memory charge back under the limit when it went over: first
 * by collapsing small in-order runs, then by dropping out-of-order runs
 * from the highest sequence number down (Linux's tcp_prune_ofo_queue).
 * Dropping SACKed data is reneging, which RFC 2018 section 8 allows: the
 * sender keeps SACKed data until it is cumulatively acknowledged, and our
 * SACK blocks, built from the queue, stop reporting what is gone. In-order
 * data is never dropped: it was inside the window we offered. */
static void rmem_reclaim(struct inet *in, struct tcp_pcb *pcb)
{
    uint32_t limit = tcp_rmem_limit(pcb);
    /* A collapse that could not get under the limit (the heap was full)
     * is not retried until the charge has grown by an eighth of it, so
     * that the scan stays amortised over the segments. */
    if (pcb->rq_n > 1 && pcb->rcv_mem >= pcb->rmem_retry) {
        rq_collapse(in, pcb);
        pcb->rmem_retry = pcb->rcv_mem > limit ? pcb->rcv_mem + limit / 8 : 0;
    }
    while (pcb->rcv_mem > limit && pcb->ooo_n > 0) {
        struct ooo_seg *o = &pcb->ooo[--pcb->ooo_n];
        pcb->ooo_bytes -= o->b.len;
        pcb->rcv_mem -= o->b.truesize;
        heap_unref(in->heap, o->b.blk);
        in->st.tcp_ofo_pruned++;
    }
}

/* Inserts [seq, seq + b.len) keeping the queue sorted and non-overlapping.
 * Takes @b's reference (or drops it if nothing new is in it). */
static void ooo_insert(struct inet *in, struct tcp_pcb *pcb, uint32_t seq, struct rxbuf b)
{
    uint32_t end = seq + b.len;
    /* Trim against every existing run; runs are few and sorted. */
    uint32_t i = 0;
    while (i < pcb->ooo_n && seq_le(pcb->ooo[i].seq + pcb->ooo[i].b.len, seq))
        i++;
    /* Bytes already held before @seq? */
    if (i < pcb->ooo_n && seq_le(pcb->ooo[i].seq, seq)) {
        uint32_t have_end = pcb->ooo[i].seq + pcb->ooo[i].b.len;
        if (seq_ge(have_end, end)) {
            pcb->st.dup_segs_in++;
            heap_unref(in->heap, b.blk);
            return;
        }
        uint32_t cut = have_end - seq;
        b.data += cut;
        b.len -= cut;
        seq = have_end;
        i++;
    }
    /* Later runs that this one overlaps: cut this one at the first. */
    if (i < pcb->ooo_n && seq_lt(pcb->ooo[i].seq, end)) {
        uint32_t keep = pcb->ooo[i].seq - seq;
        if (keep == 0) {
            heap_unref(in->heap, b.blk);
            return;
        }
        /* The rest beyond the next run is dropped; the sender will repeat
         * it (rare: overlapping retransmissions). */
        b.len = keep;
        end = seq + keep;
    }
    if (pcb->ooo_n >= TCP_OOO_MAX || pcb->ooo_bytes + b.len > pcb->rcv_buf) {
        heap_unref(in->heap, b.blk);
        return;
    }
    if (pcb->ooo_n == pcb->ooo_cap) {
        uint32_t cap = pcb->ooo_cap ? pcb->ooo_cap * 2 : 16;
        struct ooo_seg *n = realloc(pcb->ooo, cap * sizeof(*n));
        if (!n) {
            heap_unref(in->heap, b.blk);
            return;
        }
        pcb->ooo = n;
        pcb->ooo_cap = cap;
    }
    memmove(&pcb->ooo[i + 1], &pcb->ooo[i], (pcb->ooo_n - i) * sizeof(*pcb->ooo));
    pcb->ooo[i] = (struct ooo_seg){b, seq};
    pcb->ooo_n++;
    pcb->ooo_bytes += b.len;
    pcb->rcv_mem += b.truesize;
    pcb->last_ooo_seq = seq;
    pcb->st.ooo_segs++;
    pcb->st.ooo_bytes += b.len;
    if (pcb->rcv_mem > tcp_rmem_limit(pcb))
        rmem_reclaim(in, pcb);
}

/* Moves runs that became in-order to the receive queue. */
static bool ooo_drain(struct inet *in, struct tcp_pcb *pcb)
{
    bool moved = false;
    uint32_t i = 0;
    while (i < pcb->ooo_n && seq_le(pcb->ooo[i].seq, pcb->rcv_nxt)) {
        struct ooo_seg *o = &pcb->ooo[i];
        uint32_t end = o->seq + o->b.len;
        pcb->ooo_bytes -= o->b.len;
        pcb->rcv_mem -= o->b.truesize;
        if (seq_gt(end, pcb->rcv_nxt)) {
            uint32_t cut = pcb->rcv_nxt - o->seq;
            struct rxbuf b = {o->b.blk, o->b.data + cut, o->b.len - cut, o->b.truesize};
            if (rq_push(pcb, b)) {
                pcb->rcv_nxt = end;
                moved = true;
            } else {
                heap_unref(in->heap, o->b.blk);
            }
        } else {
            heap_unref(in->heap, o->b.blk);
        }
        i++;
    }
    if (i) {
        memmove(pcb->ooo, pcb->ooo + i, (pcb->ooo_n - i) * sizeof(*pcb->ooo));
        pcb->ooo_n -= i;
    }
    return moved;
}

/* ---- the state machine ---- */

static bool challenge_budget(struct inet *in)
{
    uint64_t sec = inet_now(in) / 1000000000u;
    if (sec != in->challenge_window) {
        in->challenge_window = sec;
        in->challenge_count = 0;
    }
    return in->challenge_count++ < in->cfg.tcp_challenge_ack_limit;
}

/* RFC 5961: an ACK that makes a blind attacker's guess worthless. */
static void challenge_ack(struct inet *in, struct tcp_pcb *pcb)
{
    if (!challenge_budget(in))
        return;
    in->st.tcp_challenge_acks++;
    tcp_send_ack(in, pcb);
}

/* The listener's side of a new connection becoming ESTABLISHED. */
static void child_established(struct inet *in, struct tcp_pcb *pcb)
{
    struct tcp_listen *l = pcb->parent;
    syn_unlink(l, pcb);
    struct sched_task *t = tlist_pop(&l->accepts);
    if (t) {
        tcp_deliver_accept(in, pcb->lsock, pcb, t);
        return;
    }
    pcb->qnext = NULL;
    if (l->ready_tail)
        l->ready_tail->qnext = pcb;
    else
        l->ready_head = pcb;
    l->ready_tail = pcb;
    l->nready++;
}

/* A half-open child of listener @ls for the SYN from @rip:@rport with
 * sequence number @irs and options @o, answered by (or, for a cookie,
 * answered with) our SYN of sequence number @iss. */
static struct tcp_pcb *child_new(struct inet *in, struct inet_sock *ls, uint32_t rip, uint16_t rport, uint32_t irs,
                                 uint32_t iss, const struct tcp_opts *o)
{
    /* The connection uses its listener's options until accepted. */
    struct tcp_pcb *pcb = pcb_new(in, rip, rport, ls->lport, &ls->opts);
    if (!pcb)
        return NULL;
    pcb->state = TCPS_SYN_RCVD;
    pcb->parent = ls->lst;
    pcb->lsock = ls;
    syn_link(ls->lst, pcb);
    pcb->irs = irs;
    pcb->rcv_nxt = pcb->irs + 1;
    pcb->rcv_wscale = wscale_for(pcb->rcv_buf);
    apply_syn_opts(in, pcb, o, false);
    pcb->snd_wl1 = pcb->irs;
    pcb->iss = iss;
    pcb->snd_una = pcb->snd_nxt = pcb->snd_max = pcb->iss;
    pcb->snd_end = pcb->iss + 1;
    return pcb;
}

static void listen_input(struct inet *in, struct inet_sock *ls, const struct ip_hdr *ip, const struct tcp_hdr *th,
                         const struct tcp_opts *o, uint32_t seglen)
{
    if (th->flags & TH_RST)
        return;
    if (th->flags & TH_ACK) {
        send_rst_for(in, ip, th, seglen);
        return;
    }
    if (!(th->flags & TH_SYN))
        return;
    in->st.tcp_syn_rx++; /* with frames lost before us, shows a flood's share that reached us */
    struct tcp_listen *l = ls->lst;
    if (l->nready >= l->backlog) {
        in->st.tcp_syn_dropped++; /* nobody accepts: the peer retries its SYN */
        return;
    }
    bool full = l->nsyn + l->nready >= l->backlog;
    if (in->cfg.tcp_syncookies == 2 || (full && in->cfg.tcp_syncookies == 1)) {
        l->cookie_at = inet_now(in);
        tcp_cookie_synack(in, ip->src, th, o, wscale_for(ls->opts.rcvbuf), MIN(ls->opts.rcvbuf, 65535u));
        return;
    }
    if (full) {
        /* RFC 4987 3.4: recycle the oldest half-open connection rather than
         * refuse every SYN while the queue is full. Under a flood the
         * oldest entries are the flood's; a real peer's lives one round
         * trip, so it survives unless a whole queue of SYNs arrives within
         * its round trip. Refusing new SYNs instead would lock every client
         * out for the entries' whole life (63 s). */
        in->st.tcp_syn_evicted++;
        pcb_drop(in, l->syn_head, 0);
    }
    struct tcp_pcb *pcb =
        child_new(in, ls, ip->src, ntohs(th->sport), ntohl(th->seq), isn(in, ip->src, ntohs(th->sport), ls->lport), o);
    if (!pcb) {
        in->st.tcp_syn_dropped++;
        return;
    }
    pcb->snd_wnd = ntohs(th->win); /* never scaled in a SYN */
    pcb->max_snd_wnd = pcb->snd_wnd;
    tcp_send_syn(in, pcb);
}

/* An ACK to a listener with no connection for it: the end of a handshake
 * we answered with a SYN cookie (RFC 4987 3.6)? Returns the rebuilt
 * half-open connection, for the ACK to complete as any other; NULL with
 * *@drop false when it is no cookie's (the caller resets it, RFC 9293
 * 3.10.7.2), NULL with *@drop true to drop the segment silently. */
static struct tcp_pcb *cookie_child(struct inet *in, struct inet_sock *ls, const struct ip_hdr *ip,
                                    const struct tcp_hdr *th, const struct tcp_opts *o, bool *drop)
{
    struct tcp_listen *l = ls->lst;
    *drop = false;
    /* Only while cookies are in use: then a forged ACK has its 2^-26
     * chance, at other times none. */
    if (!in->cfg.tcp_syncookies || !l->cookie_at || inet_now(in) - l->cookie_at > 2 * TCP_COOKIE_PERIOD_NS)
        return NULL;
    struct tcp_opts syn;
    if (!tcp_cookie_check(in, ip->src, th, o, &syn)) {
        in->st.tcp_syncookies_failed++;
        return NULL;
    }
    if (l->nready >= l->backlog) {
        /* Nobody accepts: drop it, as a SYN would be; the peer repeats
         * it, or its data, and the cookie is still good for a while. */
        in->st.tcp_syn_dropped++;
        *drop = true;
        return NULL;
    }
    struct tcp_pcb *pcb = child_new(in, ls, ip->src, ntohs(th->sport), ntohl(th->seq) - 1, ntohl(th->ack) - 1, &syn);
    if (!pcb) {
        *drop = true;
        return NULL;
    }
    /* As if our SYN-ACK had just gone out: its window, unscaled. */
    pcb->snd_nxt = pcb->snd_max = pcb->iss + 1;
    pcb->rcv_adv = pcb->rcv_nxt + MIN(pcb->rcv_buf, 65535u);
    in->st.tcp_syncookies_ok++;
    return pcb;
}

static void syn_sent_input(struct inet *in, struct tcp_pcb *pcb, const struct tcp_hdr *th, const struct tcp_opts *o,
                           uint32_t seq, uint32_t ack)
{
    uint8_t fl = th->flags;
    bool ack_ok = false;
    if (fl & TH_ACK) {
        if (seq_le(ack, pcb->iss) || seq_gt(ack, pcb->snd_max)) {
            if (!(fl & TH_RST))
                tcp_send_raw(in, pcb->rip, pcb->rport, pcb->lport, ack, 0, TH_RST);
            return;
        }
        ack_ok = true;
    }
    if (fl & TH_RST) {
        if (ack_ok)
            pcb_drop(in, pcb, ECONNREFUSED);
        return;
    }
    if (!(fl & TH_SYN))
        return;
    pcb->irs = seq;
    pcb->rcv_nxt = seq + 1;
    pcb->rcv_adv = pcb->rcv_nxt; /* nothing offered yet: the SYN went out before irs was known */
    apply_syn_opts(in, pcb, o, true);
    pcb->snd_wnd = ntohs(th->win);
    pcb->max_snd_wnd = pcb->snd_wnd;
    pcb->snd_wl1 = seq;
    pcb->snd_wl2 = ack;
    if (ack_ok) {
        tcp_ack_advance(in, pcb, ack);
        pcb->state = TCPS_ESTABLISHED;
        in->st.tcp_conns_opened++;
        tcp_send_ack(in, pcb);
        tcp_keep_arm(in, pcb);
        struct inet_sock *s = pcb->sock;
        if (s && s->connect_task) {
            s->connect_task->qr.qr_opcode = DEMI_OPC_CONNECT;
            s->connect_task->qr.qr_ret = 0;
            sched_complete(&in->rt->sched, s->connect_task);
            s->connect_task = NULL;
        }
        tcp_output(in, pcb);
    } else {
        /* Simultaneous open (3.10.7.3): answer with SYN-ACK. */
        pcb->state = TCPS_SYN_RCVD;
        pcb->snd_nxt = pcb->iss;
        tcp_send_syn(in, pcb);
    }
}

/* Acceptability of a segment (3.10.7.4, first check). */
static bool seq_acceptable(const struct tcp_pcb *pcb, uint32_t seq, uint32_t len)
{
    uint32_t wnd = seq_gt(pcb->rcv_adv, pcb->rcv_nxt) ? pcb->rcv_adv - pcb->rcv_nxt : 0;
    if (len == 0) {
        if (wnd == 0)
            return seq == pcb->rcv_nxt;
        return seq_le(pcb->rcv_nxt, seq) && seq_lt(seq, pcb->rcv_nxt + wnd);
    }
    if (wnd == 0)
        return false;
    return (seq_le(pcb->rcv_nxt, seq) && seq_lt(seq, pcb->rcv_nxt + wnd)) ||
           (seq_le(pcb->rcv_nxt, seq + len - 1) && seq_lt(seq + len - 1, pcb->rcv_nxt + wnd));
}

static void enter_time_wait(struct inet *in, struct tcp_pcb *pcb)
{
    pcb->state = TCPS_TIME_WAIT;
    orphan_uncount(in, pcb); /* TIME_WAIT holds no data */
    tcp_timers_cancel(pcb);
    timer_arm(&in->rt->timers, &pcb->tw_tm, inet_now(in) + 2 * in->cfg.tcp_msl_ns);
}

/* Our FIN has been acknowledged. */
static bool fin_acked(const struct tcp_pcb *pcb)
{
    return pcb->fin_sent && seq_gt(pcb->snd_una, pcb->fin_seq);
}

/* A segment on its way through conn_input's steps. */
struct seg {
    struct rxframe *f;
    const struct tcp_hdr *th;
    const struct tcp_opts *o;
    uint8_t *payload;
    uint32_t seq, ack;
    uint32_t dlen;   /* payload bytes */
    uint32_t seglen; /* sequence space: payload, SYN and FIN */
    uint8_t fl;
    bool keep_frame; /* payload queued: the frame's reference stays with it */
};

/* What a step of segment arrival decided. */
enum seg_verdict {
    SEG_CONTINUE, /* on to the next step */
    SEG_DROP,     /* the segment is done with (answered, or discarded) */
    SEG_CLOSED,   /* the connection was dropped: its pcb may be freed */
};

/* PAWS (RFC 7323 5.3), before the sequence number check: an old
 * timestamp marks an old duplicate. */
static enum seg_verdict seg_paws(struct inet *in, struct tcp_pcb *pcb, const struct seg *sg)
{
    if (pcb->ts_ok && sg->o->has_ts && !(sg->fl & TH_RST) && seq_lt(sg->o->tsval, pcb->ts_recent) &&
        inet_now(in) - pcb->ts_recent_age < 24ull * 86400 * 1000000000ull) {
        in->st.tcp_paws_drops++;
        tcp_send_ack(in, pcb);
        return SEG_DROP;
    }
    return SEG_CONTINUE;
}

/* RFC 9293 3.10.7.4, first: check the sequence number. */
static enum seg_verdict seg_check_seq(struct inet *in, struct tcp_pcb *pcb, const struct seg *sg)
{
    /* The peer's SYN again in SYN_RCVD: our SYN-ACK was lost; repeat it
     * now. (The window check would take the SYN, which sits just left of
     * the window, for an old duplicate and answer a bare ACK.) */
    if (pcb->state == TCPS_SYN_RCVD && (sg->fl & (TH_SYN | TH_ACK | TH_RST)) == TH_SYN && sg->seq == pcb->irs) {
        tcp_send_syn(in, pcb);
        return SEG_DROP;
    }
    if (!seq_acceptable(pcb, sg->seq, sg->seglen)) {
        in->st.tcp_rx_out_of_window++;
        if (!(sg->fl & TH_RST)) {
            if (seq_lt(sg->seq, pcb->rcv_nxt) && sg->dlen)
                pcb->st.dup_segs_in++;
            tcp_send_ack(in, pcb);
        }
        return SEG_DROP;
    }
    return SEG_CONTINUE;
}

/* Second: check the RST bit (RFC 5961 3.2: only the exact next sequence
 * number resets; any other in the window earns a challenge ACK). */
static enum seg_verdict seg_rst(struct inet *in, struct tcp_pcb *pcb, const struct seg *sg)
{
    if (!(sg->fl & TH_RST))
        return SEG_CONTINUE;
    if (sg->seq != pcb->rcv_nxt) {
        challenge_ack(in, pcb);
        return SEG_DROP;
    }
    int err = ECONNRESET;
    if (pcb->state == TCPS_SYN_RCVD && pcb->parent)
        err = 0; /* a passive open goes back to LISTEN: nobody to tell */
    else if (pcb->state == TCPS_SYN_RCVD)
        err = ECONNREFUSED;
    else if (pcb->state == TCPS_CLOSING || pcb->state == TCPS_LAST_ACK || pcb->state == TCPS_TIME_WAIT)
        err = 0;
    pcb_drop(in, pcb, err);
    return SEG_CLOSED;
}

/* Fourth: check the SYN bit (the third, security, does not apply). In a
 * synchronized state a SYN earns a challenge ACK (RFC 5961 4.2). */
static enum seg_verdict seg_syn(struct inet *in, struct tcp_pcb *pcb, const struct seg *sg)
{
    if (!(sg->fl & TH_SYN))
        return SEG_CONTINUE;
    if (pcb->state == TCPS_SYN_RCVD && sg->seq == pcb->irs)
        tcp_send_syn(in, pcb); /* our SYN-ACK was lost: repeat it */
    else
        challenge_ack(in, pcb);
    return SEG_DROP;
}

/* The ACK of our SYN-ACK (SYN_RCVD): the connection is established. */
static enum seg_verdict ack_syn_rcvd(struct inet *in, struct tcp_pcb *pcb, const struct seg *sg)
{
    if (seq_le(sg->ack, pcb->snd_una)) {
        tcp_send_raw(in, pcb->rip, pcb->rport, pcb->lport, sg->ack, 0, TH_RST);
        return SEG_DROP;
    }
    pcb->state = TCPS_ESTABLISHED;
    in->st.tcp_conns_opened++;
    pcb->snd_wnd = (uint32_t)ntohs(sg->th->win) << pcb->snd_wscale;
    pcb->max_snd_wnd = MAX(pcb->max_snd_wnd, pcb->snd_wnd);
    pcb->snd_wl1 = sg->seq;
    pcb->snd_wl2 = sg->ack;
    tcp_ack_advance(in, pcb, sg->ack);
    tcp_keep_arm(in, pcb);
    if (pcb->fin_pending) /* closed in SYN_RCVD: the queued FIN goes now */
        pcb->state = TCPS_FIN_WAIT_1;
    if (pcb->parent)
        child_established(in, pcb);
    else if (pcb->sock && pcb->sock->connect_task) { /* simultaneous open */
        pcb->sock->connect_task->qr.qr_opcode = DEMI_OPC_CONNECT;
        pcb->sock->connect_task->qr.qr_ret = 0;
        sched_complete(&in->rt->sched, pcb->sock->connect_task);
        pcb->sock->connect_task = NULL;
    }
    return SEG_CONTINUE;
}

/* An ACK in a synchronized state: new data acknowledged, or a duplicate
 * ACK; then the send window. */
static void ack_established(struct inet *in, struct tcp_pcb *pcb, const struct seg *sg)
{
    uint32_t seq = sg->seq, ack = sg->ack;
    uint32_t wnd = (uint32_t)ntohs(sg->th->win) << pcb->snd_wscale;
    bool acks_new = seq_gt(ack, pcb->snd_una), sacks_new = false;
    if (pcb->sack_ok && sg->o->nsack) {
        uint32_t sacked = pcb->sb.bytes;
        tcp_sack_update(pcb, sg->o);
        sacks_new = pcb->sb.bytes > sacked;
    }
    /* A duplicate ACK: RFC 5681 (2)'s, or with SACK RFC 6675 (2)'s, an
     * ACK that SACKs new data, whatever its window and payload (a Linux
     * receiver's window changes with nearly every ACK as its reader
     * drains it: by RFC 5681 alone no loss would ever be repaired
     * before the RTO). */
    if (acks_new) {
        tcp_ack_advance(in, pcb, ack);
    } else if (ack == pcb->snd_una && pcb->snd_max != pcb->snd_una &&
               (sacks_new || (sg->dlen == 0 && !(sg->fl & TH_FIN) && wnd == pcb->snd_wnd))) {
        tcp_dupack(in, pcb);
    }
    /* Window update (3.10.7.4, fifth check): from the newest segment.
     * A segment that acknowledges new data is newer than any window we
     * hold, whatever its sequence number: a retransmission filling a
     * hole below snd_wl1 carries the peer's current ACK and window.
     * Taking its ACK but not its window would move our right edge
     * forward by what it acknowledged, past the peer's (as Linux's
     * tcp_may_update_window, after Jacobson). */
    if (acks_new || seq_lt(pcb->snd_wl1, seq) || (pcb->snd_wl1 == seq && seq_le(pcb->snd_wl2, ack))) {
        bool opened = wnd > pcb->snd_wnd;
        pcb->snd_wnd = wnd;
        pcb->snd_wl1 = seq;
        pcb->snd_wl2 = ack;
        pcb->max_snd_wnd = MAX(pcb->max_snd_wnd, wnd);
        if (opened)
            tcp_window_opened(in, pcb);
    }
}

/* The closing states move on once our FIN is acknowledged. */
static enum seg_verdict ack_closing(struct inet *in, struct tcp_pcb *pcb)
{
    if (!fin_acked(pcb))
        return SEG_CONTINUE;
    switch (pcb->state) {
    case TCPS_FIN_WAIT_1:
        pcb->state = TCPS_FIN_WAIT_2;
        if (!pcb->sock) /* orphaned: the peer gets fin_timeout to close */
            timer_arm(&in->rt->timers, &pcb->tw_tm, inet_now(in) + in->cfg.tcp_fin_timeout_ns);
        break;
    case TCPS_CLOSING:
        enter_time_wait(in, pcb);
        break;
    case TCPS_LAST_ACK:
        pcb_drop(in, pcb, 0);
        return SEG_CLOSED;
    default:
        break;
    }
    return SEG_CONTINUE;
}

/* Fifth: check the ACK field. A segment without ACK is dropped; RFC 5961
 * 5.2: only ACKs within the window of what we sent count. */
static enum seg_verdict seg_ack(struct inet *in, struct tcp_pcb *pcb, const struct seg *sg)
{
    if (!(sg->fl & TH_ACK))
        return SEG_DROP;
    if (seq_gt(sg->ack, pcb->snd_max) || seq_lt(sg->ack, pcb->snd_una - pcb->max_snd_wnd)) {
        challenge_ack(in, pcb);
        return SEG_DROP;
    }
    pcb->persist_probes = 0; /* the peer is there: it answers window probes */
    if (pcb->state == TCPS_SYN_RCVD)
        return ack_syn_rcvd(in, pcb, sg);
    ack_established(in, pcb, sg);
    return ack_closing(in, pcb);
}

/* Timestamps (RFC 7323 4.3): remember the peer's clock. */
static void seg_ts_recent(struct inet *in, struct tcp_pcb *pcb, const struct seg *sg)
{
    if (pcb->ts_ok && sg->o->has_ts && seq_le(sg->seq, pcb->rcv_nxt)) {
        pcb->ts_recent = sg->o->tsval;
        pcb->ts_recent_age = inet_now(in);
    }
}

/* Seventh: process the segment text, in the states that take it. The
 * part inside the window is queued in place (in order, or out of order
 * for SACK), with no copy: the frame's reference goes with it. */
static enum seg_verdict seg_text(struct inet *in, struct tcp_pcb *pcb, struct seg *sg)
{
    if (!sg->dlen ||
        !(pcb->state == TCPS_ESTABLISHED || pcb->state == TCPS_FIN_WAIT_1 || pcb->state == TCPS_FIN_WAIT_2))
        return SEG_CONTINUE;
    if (!pcb->sock && !pcb->parent) {
        /* Closed by the application: nobody will read this (RFC 9293
         * 3.6 lets us reset; Linux does the same). */
        tcp_send_raw(in, pcb->rip, pcb->rport, pcb->lport, tcp_acceptable_seq(pcb), 0, TH_RST);
        pcb_drop(in, pcb, 0);
        return SEG_CLOSED;
    }
    uint32_t wnd = seq_gt(pcb->rcv_adv, pcb->rcv_nxt) ? pcb->rcv_adv - pcb->rcv_nxt : 0;
    uint32_t s = sg->seq;
    uint8_t *p = sg->payload;
    uint32_t n = sg->dlen;
    if (seq_lt(s, pcb->rcv_nxt)) { /* partly old: drop what we have */
        uint32_t cut = pcb->rcv_nxt - s;
        s += cut;
        p += cut;
        n -= cut;
        pcb->st.dup_segs_in++;
    }
    if (seq_gt(s + n, pcb->rcv_nxt + wnd)) /* beyond the window */
        n = pcb->rcv_nxt + wnd - s;
    if (n == 0)
        return SEG_CONTINUE;
    struct rxbuf b = {sg->f->blk, p, n, 0};
    b.truesize = rx_truesize(in, &b);
    sg->keep_frame = true;
    bool ack_at_once = false;
    if (s == pcb->rcv_nxt) {
        bool had_ooo = pcb->ooo_n > 0;
        if (rq_push(pcb, b)) {
            pcb->rcv_nxt += n;
            pcb->st.bytes_received += n;
            if (had_ooo) {
                ooo_drain(in, pcb);
                ack_at_once = true; /* RFC 5681 4.2: a hole was filled */
            }
        } else {
            sg->keep_frame = false;
        }
    } else {
        ooo_insert(in, pcb, s, b);
        ack_at_once = true; /* a duplicate ACK, with SACK blocks, now */
    }
    deliver_pops(in, pcb);
    /* After the pops: what they took need not be compacted first. */
    if (pcb->rcv_mem > tcp_rmem_limit(pcb))
        rmem_reclaim(in, pcb);
    if (ack_at_once)
        tcp_send_ack(in, pcb);
    else
        tcp_ack_later(in, pcb, n);
    return SEG_CONTINUE;
}

/* Eighth: check the FIN bit, taken once every byte before it has
 * arrived; in TIME_WAIT, a retransmitted FIN restarts the 2 MSL wait. */
static void seg_fin(struct inet *in, struct tcp_pcb *pcb, const struct seg *sg)
{
    if (!(sg->fl & TH_FIN))
        return;
    if (sg->seq + sg->dlen == pcb->rcv_nxt && !pcb->fin_rcvd) {
        pcb->rcv_nxt++;
        pcb->fin_rcvd = true;
        switch (pcb->state) {
        case TCPS_SYN_RCVD:
        case TCPS_ESTABLISHED:
            pcb->state = TCPS_CLOSE_WAIT;
            break;
        case TCPS_FIN_WAIT_1:
            if (fin_acked(pcb))
                enter_time_wait(in, pcb);
            else
                pcb->state = TCPS_CLOSING;
            break;
        case TCPS_FIN_WAIT_2:
            enter_time_wait(in, pcb);
            break;
        default:
            break;
        }
        tcp_send_ack(in, pcb);
        deliver_pops(in, pcb);
    } else if (pcb->state == TCPS_TIME_WAIT) {
        tcp_send_ack(in, pcb); /* a retransmitted FIN: ACK, restart 2MSL */
        enter_time_wait(in, pcb);
    }
}

/* Segment arrival on a connection (RFC 9293 3.10.7): SYN_SENT apart, the
 * checks of 3.10.7.4 in order, each a step that lets the segment go on,
 * drops it, or drops the connection. The sixth, URG, is not implemented:
 * the urgent pointer is ignored and the bytes are data (RFC 6093). */
static void conn_input(struct inet *in, struct tcp_pcb *pcb, struct rxframe *f, const struct tcp_hdr *th,
                       const struct tcp_opts *o, uint8_t *payload, uint32_t dlen)
{
    struct seg sg = {
        .f = f,
        .th = th,
        .o = o,
        .payload = payload,
        .seq = ntohl(th->seq),
        .ack = ntohl(th->ack),
        .dlen = dlen,
        .seglen = dlen + ((th->flags & TH_SYN) ? 1 : 0) + ((th->flags & TH_FIN) ? 1 : 0),
        .fl = th->flags,
    };
    pcb->st.segs_in++;
    pcb->last_rx = inet_now(in);
    pcb->keep_probes = 0;

    if (pcb->state == TCPS_SYN_SENT) {
        syn_sent_input(in, pcb, th, o, sg.seq, sg.ack);
    } else if (seg_paws(in, pcb, &sg) == SEG_CONTINUE && seg_check_seq(in, pcb, &sg) == SEG_CONTINUE &&
               seg_rst(in, pcb, &sg) == SEG_CONTINUE && seg_syn(in, pcb, &sg) == SEG_CONTINUE &&
               seg_ack(in, pcb, &sg) == SEG_CONTINUE) {
        seg_ts_recent(in, pcb, &sg);
        if (seg_text(in, pcb, &sg) == SEG_CONTINUE) {
            seg_fin(in, pcb, &sg);
            if (pcb->state != TCPS_CLOSED)
                tcp_output(in, pcb);
        }
    }
    if (!sg.keep_frame)
        heap_unref(in->heap, f->blk);
}

void tcp_input(struct inet *in, struct rxframe *f, struct ip_hdr *ip, uint8_t *l4, uint32_t l4len)
{
    in->st.tcp_rx++;
    struct tcp_hdr *th = (struct tcp_hdr *)l4;
    uint32_t hlen = l4len >= sizeof(*th) ? (uint32_t)(th->off >> 4) * 4 : 0;
    if (l4len < sizeof(*th) || hlen < 20 || hlen > l4len || ip->dst != in->ip) {
        in->st.tcp_rx_bad_hdr++;
        heap_unref(in->heap, f->blk);
        return;
    }
    if (!(f->flags & PKT_RX_CSUM_GOOD && in->cfg.rx_csum_skip)) {
        if (csum_l4(csum_pseudo(ip->src, ip->dst, IPPROTO_TCP, (uint16_t)l4len), csum_add(0, l4, l4len)) != 0) {
            in->st.tcp_rx_bad_csum++;
            heap_unref(in->heap, f->blk);
            return;
        }
    }
    struct tcp_opts o;
    if (!parse_opts(l4 + 20, hlen - 20, th->flags & TH_SYN, &o)) {
        in->st.tcp_rx_bad_opt++;
        heap_unref(in->heap, f->blk);
        return;
    }
    uint32_t dlen = l4len - hlen;
    uint16_t sport = ntohs(th->sport), dport = ntohs(th->dport);
    uint32_t rip = ip->src; /* the frame may be gone after input */
    struct tcp_pcb *pcb = table_find(in, rip, sport, dport);
    if (pcb) {
        conn_input(in, pcb, f, th, &o, l4 + hlen, dlen);
        /* Still in the table: not dropped (and freed) by the segment. */
        if (TCP_INVARIANTS && (pcb = table_find(in, rip, sport, dport)))
            tcp_check(pcb, "input");
        return;
    }
    uint32_t seglen = dlen + ((th->flags & TH_SYN) ? 1 : 0) + ((th->flags & TH_FIN) ? 1 : 0);
    struct inet_sock *ls = in->tcp_listeners[dport];
    if (ls && (th->flags & (TH_SYN | TH_RST | TH_ACK)) == TH_ACK) {
        bool drop;
        pcb = cookie_child(in, ls, ip, th, &o, &drop);
        if (pcb) {
            conn_input(in, pcb, f, th, &o, l4 + hlen, dlen);
            if (TCP_INVARIANTS && (pcb = table_find(in, rip, sport, dport)))
                tcp_check(pcb, "cookie input");
            return;
        }
        if (drop) {
            heap_unref(in->heap, f->blk);
            return;
        }
    }
    if (ls) {
        listen_input(in, ls, ip, th, &o, seglen);
        if (TCP_INVARIANTS && (pcb = table_find(in, rip, sport, dport)))
            tcp_check(pcb, "listen input");
    } else {
        in->st.tcp_rx_no_conn++;
        send_rst_for(in, ip, th, seglen); /* tcp_send_raw counts the RST */
    }
    heap_unref(in->heap, f->blk);
}

/* ---- socket operations ---- */

int tcp_listen(struct inet *in, struct inet_sock *s, int backlog)
{
    uint32_t b = backlog < 1 ? 1 : (uint32_t)backlog;
    if (b > in->cfg.tcp_backlog_max)
        b = in->cfg.tcp_backlog_max;
    if (s->state == SS_LISTEN) {
        s->lst->backlog = b;
        return 0;
    }
    if (in->tcp_listeners[s->lport])
        return EADDRINUSE;
    s->lst = calloc(1, sizeof(*s->lst));
    if (!s->lst)
        return ENOMEM;
    s->lst->backlog = b;
    in->tcp_listeners[s->lport] = s;
    s->state = SS_LISTEN;
    return 0;
}

void tcp_deliver_accept(struct inet *in, struct inet_sock *ls, struct tcp_pcb *pcb, struct sched_task *t)
{
    struct inet_sock *ns = sock_new(in, SOCK_STREAM);
    int qd = -1;
    int e = !ns ? ENOMEM : !in->qowner ? EINVAL : qtable_alloc(&in->rt->qtable, in->qowner, ns, &qd);
    if (e) {
        if (ns)
            sock_free(in, ns);
        /* No descriptor for it: reset the connection, fail this accept. */
        tcp_send_raw(in, pcb->rip, pcb->rport, pcb->lport, tcp_acceptable_seq(pcb), 0, TH_RST);
        pcb->parent = NULL;
        pcb_drop(in, pcb, 0);
        sched_fail(&in->rt->sched, t, e);
        return;
    }
    ns->opts = ls->opts; /* an accepted socket inherits its listener's options */
    ns->state = SS_CONN;
    ns->lip = in->ip;
    ns->lport = pcb->lport;
    ns->pcb = pcb;
    pcb->sock = ns;
    pcb->opts = &ns->opts;
    pcb->parent = NULL;
    pcb->lsock = NULL;
    in->st.tcp_conns_accepted++;
    t->qr.qr_opcode = DEMI_OPC_ACCEPT;
    t->qr.qr_ret = 0;
    t->qr.qr_value.ares.qd = qd;
    memset(&t->qr.qr_value.ares.addr, 0, sizeof(t->qr.qr_value.ares.addr));
    t->qr.qr_value.ares.addr.sin_family = AF_INET;
    t->qr.qr_value.ares.addr.sin_addr.s_addr = pcb->rip;
    t->qr.qr_value.ares.addr.sin_port = htons(pcb->rport);
    sched_complete(&in->rt->sched, t);
    /* Data may have arrived before the accept: pops will find it. */
}

int tcp_accept(struct inet *in, struct inet_sock *s, struct sched_task *t)
{
    struct tcp_listen *l = s->lst;
    t->owner = s;
    if (l->ready_head && !l->accepts.head) {
        struct tcp_pcb *pcb = l->ready_head;
        l->ready_head = pcb->qnext;
        if (!l->ready_head)
            l->ready_tail = NULL;
        l->nready--;
        pcb->qnext = NULL;
        tcp_deliver_accept(in, s, pcb, t);
        return 0;
    }
    tlist_push(&l->accepts, t);
    return 0;
}

int tcp_connect(struct inet *in, struct inet_sock *s, const struct sockaddr_in *to, struct sched_task *t)
{
    uint32_t rip = to->sin_addr.s_addr;
    uint16_t rport = ntohs(to->sin_port);
    if (rip == 0 || rip == 0xffffffffu || rport == 0)
        return EINVAL;
    if (s->state == SS_FRESH) {
        uint16_t port = tcp_port_ephemeral(in);
        if (!port)
            return EADDRNOTAVAIL;
        s->lport = port;
        s->lip = in->ip;
        s->state = SS_BOUND;
    }
    if (table_find(in, rip, rport, s->lport))
        return EADDRINUSE;
    struct tcp_pcb *pcb = pcb_new(in, rip, rport, s->lport, &s->opts);
    if (!pcb)
        return ENOMEM;
    tcp_port_release(in, s->lport); /* the socket's hold on the port passes to the connection */
    pcb->sock = s;
    s->pcb = pcb;
    s->state = SS_CONN;
    s->connect_task = t;
    t->owner = s;
    pcb->state = TCPS_SYN_SENT;
    pcb->iss = isn(in, rip, rport, s->lport);
    pcb->snd_una = pcb->snd_nxt = pcb->snd_max = pcb->iss;
    pcb->snd_end = pcb->iss + 1;
    pcb->rcv_wscale = in->cfg.tcp_wscale ? wscale_for(pcb->rcv_buf) : 0;
    tcp_send_syn(in, pcb);
    return 0;
}

int tcp_push(struct inet *in, struct inet_sock *s, const demi_sgarray_t *sga, struct sched_task *t)
{
    struct tcp_pcb *pcb = s->pcb;
    if (pcb->err) {
        sched_copy_sga(&t->qr.qr_value.sga, sga);
        sched_fail(&in->rt->sched, t, pcb->err == ECONNRESET ? ECONNRESET : EPIPE);
        return 0;
    }
    if (pcb->state != TCPS_ESTABLISHED && pcb->state != TCPS_CLOSE_WAIT)
        return pcb->state == TCPS_SYN_SENT || pcb->state == TCPS_SYN_RCVD ? ENOTCONN : EPIPE;
    int e = tcp_sq_append(in, pcb, sga);
    if (e)
        return e;
    t->owner = s;
    t->arg[0] = pcb->snd_end; /* done once every byte up to here has been sent */
    sched_copy_sga(&t->qr.qr_value.sga, sga);
    t->qr.qr_opcode = DEMI_OPC_PUSH;
    t->qr.qr_ret = 0;
    tlist_push(&pcb->pushes, t);
    tcp_output(in, pcb);
    return 0;
}

int tcp_pop(struct inet *in, struct inet_sock *s, struct sched_task *t)
{
    struct tcp_pcb *pcb = s->pcb;
    t->owner = s;
    tlist_push(&pcb->pops, t);
    deliver_pops(in, pcb);
    return 0;
}

void tcp_close(struct inet *in, struct inet_sock *s, bool deliver)
{
    struct sched_task *t;
    if (s->state == SS_LISTEN) {
        struct tcp_listen *l = s->lst;
        while ((t = tlist_pop(&l->accepts)))
            if (deliver)
                sched_fail(&in->rt->sched, t, ECANCELED);
        /* Connections nobody accepted yet, and half-open ones, are reset. */
        while (l->ready_head) {
            struct tcp_pcb *pcb = l->ready_head;
            tcp_send_raw(in, pcb->rip, pcb->rport, pcb->lport, tcp_acceptable_seq(pcb), 0, TH_RST);
            pcb_drop(in, pcb, 0);
        }
        for (uint32_t b = 0; b <= in->conns_mask && l->nsyn; b++) {
            struct tcp_pcb *p = in->conns[b];
            while (p) {
                struct tcp_pcb *next = p->hnext;
                if (p->parent == l) {
                    tcp_send_raw(in, p->rip, p->rport, p->lport, tcp_acceptable_seq(p), 0, TH_RST);
                    pcb_drop(in, p, 0);
                }
                p = next;
            }
        }
        in->tcp_listeners[s->lport] = NULL;
        tcp_port_release(in, s->lport);
        free(s->lst);
        s->lst = NULL;
        s->state = SS_CLOSED;
        return;
    }
    if (s->state == SS_BOUND) {
        tcp_port_release(in, s->lport);
        s->state = SS_CLOSED;
        return;
    }
    if (s->state != SS_CONN)
        return;
    struct tcp_pcb *pcb = s->pcb;
    s->pcb = NULL;
    s->state = SS_CLOSED;
    if (s->connect_task) {
        if (deliver)
            sched_fail(&in->rt->sched, s->connect_task, ECANCELED);
        s->connect_task = NULL;
    }
    /* Nobody can read any more: pops are cancelled. */
    while ((t = tlist_pop(&pcb->pops)))
        if (deliver)
            sched_fail(&in->rt->sched, t, ECANCELED);
    pcb->sock = NULL;
    /* The socket goes: the connection keeps the options it ran with. */
    pcb->orphan_opts = s->opts;
    pcb->opts = &pcb->orphan_opts;
    bool abort_now = s->opts.linger == 0 || pcb->rq_bytes > 0 || pcb->ooo_n > 0 || pcb->state == TCPS_SYN_SENT ||
                     pcb->state == TCPS_CLOSED || !deliver; /* tearing the stack down */
    /* Orphans holding data (unsent or unacknowledged) are bounded, as
     * Linux's tcp_max_orphans: beyond the cap, a closed connection with
     * data left is reset at once instead of lingering with its buffers
     * until a silent peer's retries run out. */
    if (!abort_now && pcb->sq_n > 0 && in->cfg.tcp_max_orphans && in->tcp_orphans >= in->cfg.tcp_max_orphans &&
        pcb->state != TCPS_TIME_WAIT) {
        abort_now = true;
        if (in->st.tcp_orphan_aborts++ == 0)
            log_warn("tcp: %u orphaned connections with data (tcp_max_orphans); resetting %u->%u and later ones",
                     in->cfg.tcp_max_orphans, pcb->lport, pcb->rport);
    }
    if (abort_now) {
        /* An abortive close: RST, and pushes not yet sent fail. */
        while ((t = tlist_pop(&pcb->pushes)))
            if (deliver)
                sched_fail(&in->rt->sched, t, ECANCELED);
        if (pcb->state != TCPS_SYN_SENT && pcb->state != TCPS_TIME_WAIT && pcb->state != TCPS_CLOSED)
            tcp_send_raw(in, pcb->rip, pcb->rport, pcb->lport, tcp_acceptable_seq(pcb), 0, TH_RST);
        pcb_drop(in, pcb, 0);
        return;
    }
    /* A graceful close: every byte already pushed goes out before the FIN,
     * and those pushes complete as usual (or fail if the connection dies). */
    if (pcb->state != TCPS_TIME_WAIT && !pcb->orphan_counted) {
        pcb->orphan_counted = true;
        in->tcp_orphans++;
    }
    switch (pcb->state) {
    case TCPS_SYN_RCVD:
        /* RFC 9293 3.10.4: the FIN is queued until ESTABLISHED. Our SYN is
         * not acknowledged yet, and the SYN-ACK, not data, is what its
         * retransmission timer must resend (sequence number iss is the SYN,
         * not a byte of the empty send queue); the handshake's retry limit
         * still bounds the orphan. */
        pcb->fin_pending = true;
        pcb->fin_seq = pcb->snd_end;
        return;
    case TCPS_ESTABLISHED:
        pcb->state = TCPS_FIN_WAIT_1;
        break;
    case TCPS_CLOSE_WAIT:
        pcb->state = TCPS_LAST_ACK;
        break;
    default:
        return; /* already closing */
    }
    pcb->fin_pending = true;
    pcb->fin_seq = pcb->snd_end;
    tcp_output(in, pcb);
}

void tcp_arp_failed(struct inet *in, uint32_t ip)
{
    for (uint32_t b = 0; b <= in->conns_mask; b++) {
        struct tcp_pcb *p = in->conns[b];
        while (p) {
            struct tcp_pcb *next = p->hnext;
            if (p->rip == ip && p->state == TCPS_SYN_SENT)
                pcb_drop(in, p, EHOSTUNREACH);
            p = next;
        }
    }
}

void tcp_fini(struct inet *in)
{
    for (uint32_t b = 0; b <= in->conns_mask; b++) {
        while (in->conns[b]) {
            struct tcp_pcb *p = in->conns[b];
            if (p->sock) {
                p->sock->pcb = NULL;
                p->sock->state = SS_CLOSED;
                p->sock = NULL;
            }
            pcb_drop(in, p, 0);
        }
    }
}

int inet_tcp_conn_stats(struct inet *in, struct inet_sock *s, struct tcp_conn_stats *out)
{
    (void)in;
    if (!s || s->type != SOCK_STREAM || !s->pcb)
        return ENOTCONN;
    struct tcp_pcb *pcb = s->pcb;
    *out = pcb->st;
    out->cwnd = pcb->cwnd;
    out->ssthresh = pcb->ssthresh;
    out->srtt_us = (uint32_t)(pcb->srtt / 1000);
    out->rto_us = (uint32_t)(pcb->rto / 1000);
    out->snd_wnd = pcb->snd_wnd;
    out->rcv_wnd = seq_gt(pcb->rcv_adv, pcb->rcv_nxt) ? pcb->rcv_adv - pcb->rcv_nxt : 0;
    out->mss = pcb->mss;
    out->state = pcb->state;
    out->sack_ok = pcb->sack_ok;
    out->ts_ok = pcb->ts_ok;
    out->wscale_ok = pcb->wscale_ok;
    out->snd_wscale = pcb->snd_wscale;
    out->rcv_wscale = pcb->rcv_wscale;
    return 0;
}
