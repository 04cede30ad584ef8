/*
 * RFC 9293 3.10's event processing, state by state, with crafted segments:
 * one real stack (node B, 10.0.0.1, listening on port 80) and a fake peer X
 * (10.0.0.50) that exists only as frames this test injects. A table drives
 * B's side of a connection into each state (SYN_SENT, SYN_RCVD passive and
 * simultaneous, ESTABLISHED, FIN_WAIT_1/2, CLOSE_WAIT, CLOSING, LAST_ACK,
 * TIME_WAIT), applies one event (RST exact and inexact, SYN, ACK of data
 * never sent, ACK of everything, FIN, data, the application's close, or
 * time with X silent) and checks B's answer and next state. Then X goes
 * silent, the application closes, and after enough virtual time nothing
 * may be left: no connection, no timer, not one heap byte.
 *
 * First, issue 11's finding 1: a bare SYN answering B's SYN (simultaneous
 * open), then the application's close, used to leave a FIN_WAIT_1 whose
 * next RTO resent its SYN as a data byte from an empty send queue (SIGFPE).
 *
 * Random walks then chain random events (pushes, partial, SACKed and
 * duplicate ACKs, out-of-order data, zero windows among them; X with or
 * without every option) from random states; in a test build tcp_check
 * watches every step. DEMI_WALK_SEED and DEMI_WALKS explore further.
 *
 * Then lifetimes (issue 11's finding 3): an orphaned FIN_WAIT_2 whose peer
 * is silent ends after fin_timeout; a peer that acknowledges with window 0
 * and vanishes must not hold a connection, open or closed, forever; an
 * orphan whose peer answers every probe with window 0 is bounded too; an
 * open one whose peer keeps answering is kept (RFC 9293 3.8.6.1), also
 * when the peer shrank its window to 0 over data in flight.
 */
#include "craft.h"
#include "inet/inet_int.h"

#include <errno.h>

#define B_PORT 80

static struct simworld w;
static struct simnode *B;
static struct capture cap;
static struct craft_host X = {{0x02, 0, 0, 0, 0, 0x99}, 0};
static struct inet_arp x_arp;
static uint8_t fbuf[CRAFT_FRAME_MAX];
static void *ls;
static struct sched_task *acc; /* the pending accept on ls */
static uint64_t heap0;         /* heap bytes in use with only the listener */
static uint64_t timers0;       /* timers armed then */

static void tweak(struct inet_config *ic)
{
    ic->arp_static[0] = x_arp;
    ic->n_arp_static = 1;
}

static void settle(void)
{
    sw_run(&w, NULL, NULL, 0);
}

/* X's side of one connection, and what it knows of B's. */
struct xc {
    uint16_t xport, bport;
    uint32_t xiss, xnxt; /* X's sequence numbers */
    uint32_t b_iss;
    uint32_t bmax;   /* after the highest sequence number B sent */
    uint32_t backed; /* what X acknowledged last */
    uint32_t bfin;   /* B's FIN, if fin_seen */
    bool fin_seen;
    uint8_t last_flags; /* of B's first answer to the last injection; 0: none */
    int answers;
    void *q;                    /* B's queue (NULL once closed) */
    struct sched_task *connect; /* B's connect, for active opens */
    bool opts;                  /* X offers MSS, SACK, timestamps and window scale */
    uint32_t tsval, ts_recent;  /* X's clock; B's last timestamp */
    uint32_t sack[2];           /* a SACK block for X's next segment, if sack_next */
    bool sack_next;
};

/* Reads what B sent on @c since the last cap_clear. */
static void absorb(struct xc *c)
{
    c->last_flags = 0;
    c->answers = 0;
    for (int i = 0; i < cap.n; i++) {
        struct tcp_view v;
        if (!craft_tcp_view(cap.frame[i], cap.len[i], &v) || v.dport != c->xport)
            continue;
        if (!c->answers++)
            c->last_flags = v.flags;
        if (v.has_ts)
            c->ts_recent = v.tsval;
        if (v.flags & TH_RST)
            continue;
        uint32_t end = v.seq + v.dlen + !!(v.flags & TH_SYN) + !!(v.flags & TH_FIN);
        if (v.flags & TH_SYN) {
            c->b_iss = v.seq;
            c->bport = v.sport;
        }
        if (seq_gt(end, c->bmax) || c->bmax == 0)
            c->bmax = end;
        if (v.flags & TH_FIN) {
            c->fin_seen = true;
            c->bfin = v.seq + v.dlen;
        }
    }
}

static void inject(struct xc *c, const uint8_t *f, uint32_t len)
{
    cap_clear(&cap);
    CHECK_EQ(simnet_inject(w.net, B->dev, f, len), 0);
    settle();
    absorb(c);
}

static void x_send(struct xc *c, uint8_t flags, uint32_t seq, uint32_t ack, uint16_t win, uint32_t n)
{
    static uint8_t data[1400];
    for (uint32_t i = 0; i < n; i++)
        data[i] = (uint8_t)(seq + i);
    struct tcp_optbuf o = {.n = 0};
    if (c->opts && (flags & TH_SYN)) {
        opt_mss(&o, 1200);
        opt_sack_ok(&o);
        opt_ts(&o, c->tsval += 10, c->ts_recent);
        opt_ws(&o, 7);
    } else if (c->opts && !(flags & TH_RST)) {
        opt_ts(&o, c->tsval += 10, c->ts_recent);
    }
    if (c->sack_next) {
        opt_sack(&o, c->sack, 1);
        c->sack_next = false;
    }
    struct tcp_spec s = {.sport = c->xport,
                         .dport = c->bport,
                         .seq = seq,
                         .ack = ack,
                         .flags = flags,
                         .win = win,
                         .opt = o.n ? &o : NULL,
                         .data = data,
                         .dlen = n};
    if (flags & TH_ACK)
        c->backed = ack;
    inject(c, fbuf, craft_tcp(fbuf, &X, B->mac, B->ip.s_addr, &s));
}

/* B's connection to X on @c, or NULL. */
static struct tcp_pcb *pcb_of(const struct xc *c)
{
    for (uint32_t b = 0; b <= B->in->conns_mask; b++)
        for (struct tcp_pcb *p = B->in->conns[b]; p; p = p->hnext)
            if (p->rport == c->xport && p->lport == c->bport && p->rip == X.ip)
                return p;
    return NULL;
}

#define GONE 100 /* no connection in the table */

static int state_of(const struct xc *c)
{
    struct tcp_pcb *p = pcb_of(c);
    if (p)
        return p->state;
    /* Out of the table, but the socket still holds it to report its error. */
    struct tcp_conn_stats st;
    if (c->q && inet_tcp_conn_stats(B->in, c->q, &st) == 0)
        return st.state;
    return GONE;
}

static void x_init(struct xc *c, uint16_t xport)
{
    memset(c, 0, sizeof(*c));
    c->xport = xport;
    c->bport = B_PORT;
    c->xiss = 0x01000000u * (xport % 200) + 77;
    c->xnxt = c->xiss;
}

/* B connects to X: B's SYN is out. */
static void b_connect(struct xc *c)
{
    c->q = sw_socket(B, SOCK_STREAM);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(c->xport), .sin_addr.s_addr = X.ip};
    c->connect = sched_alloc(&B->rt->sched, NULL, NULL);
    CHECK(c->connect);
    c->connect->qd = 0;
    cap_clear(&cap);
    CHECK_EQ(inet_connect(B->in, c->q, &a, c->connect), 0);
    settle();
    absorb(c);
    CHECK_EQ(c->last_flags, TH_SYN);
    CHECK_EQ(state_of(c), TCPS_SYN_SENT);
}

static void b_close(struct xc *c)
{
    cap_clear(&cap);
    sw_close(B, c->q);
    c->q = NULL;
    settle();
    absorb(c);
}

/* ---- reaching each state ---- */

enum {
    S_SYN_SENT,
    S_SYN_RCVD_PASSIVE,
    S_SYN_RCVD_SIMUL,
    S_ESTABLISHED,
    S_FIN_WAIT_1,
    S_FIN_WAIT_2,
    S_CLOSE_WAIT,
    S_CLOSING,
    S_LAST_ACK,
    S_TIME_WAIT,
    S_SIMUL_CLOSED, /* SYN_RCVD by simultaneous open, then closed by the application */
};

static const char *const setup_name[] = {"SYN_SENT",
                                         "SYN_RCVD(passive)",
                                         "SYN_RCVD(simultaneous)",
                                         "ESTABLISHED",
                                         "FIN_WAIT_1",
                                         "FIN_WAIT_2",
                                         "CLOSE_WAIT",
                                         "CLOSING",
                                         "LAST_ACK",
                                         "TIME_WAIT",
                                         "SYN_RCVD(simultaneous)+close"};

static void syn_rcvd_passive(struct xc *c)
{
    x_send(c, TH_SYN, c->xiss, 0, 65535, 0);
    c->xnxt = c->xiss + 1;
    CHECK_EQ(c->last_flags, TH_SYN | TH_ACK);
    CHECK_EQ(state_of(c), TCPS_SYN_RCVD);
}

static void established(struct xc *c)
{
    syn_rcvd_passive(c);
    CHECK(!sw_done(acc));
    x_send(c, TH_ACK, c->xnxt, c->bmax, 65535, 0);
    CHECK_EQ(c->answers, 0);
    CHECK(sw_done(acc));
    demi_qresult_t qr = sw_result(B, acc);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_ACCEPT);
    c->q = sw_accepted(B, &qr);
    acc = sw_accept(B, ls);
    CHECK_EQ(state_of(c), TCPS_ESTABLISHED);
}

static void reach(struct xc *c, int s)
{
    switch (s) {
    case S_SYN_SENT:
        b_connect(c);
        break;
    case S_SYN_RCVD_PASSIVE:
        syn_rcvd_passive(c);
        break;
    case S_SYN_RCVD_SIMUL:
    case S_SIMUL_CLOSED:
        b_connect(c);
        x_send(c, TH_SYN, c->xiss, 0, 65535, 0); /* a bare SYN crosses ours */
        c->xnxt = c->xiss + 1;
        CHECK_EQ(c->last_flags, TH_SYN | TH_ACK);
        CHECK_EQ(state_of(c), TCPS_SYN_RCVD);
        if (s == S_SIMUL_CLOSED)
            b_close(c); /* in SYN_RCVD, the SYN not yet acknowledged */
        break;
    case S_ESTABLISHED:
        established(c);
        break;
    case S_FIN_WAIT_1:
        established(c);
        b_close(c);
        CHECK(c->fin_seen);
        CHECK_EQ(state_of(c), TCPS_FIN_WAIT_1);
        break;
    case S_FIN_WAIT_2:
        reach(c, S_FIN_WAIT_1);
        x_send(c, TH_ACK, c->xnxt, c->bmax, 65535, 0);
        CHECK_EQ(state_of(c), TCPS_FIN_WAIT_2);
        break;
    case S_CLOSE_WAIT:
        established(c);
        x_send(c, TH_FIN | TH_ACK, c->xnxt, c->bmax, 65535, 0);
        c->xnxt++;
        CHECK_EQ(c->last_flags, TH_ACK);
        CHECK_EQ(state_of(c), TCPS_CLOSE_WAIT);
        break;
    case S_CLOSING:
        reach(c, S_FIN_WAIT_1);
        x_send(c, TH_FIN | TH_ACK, c->xnxt, c->bfin, 65535, 0); /* not acknowledging B's FIN */
        c->xnxt++;
        CHECK_EQ(state_of(c), TCPS_CLOSING);
        break;
    case S_LAST_ACK:
        reach(c, S_CLOSE_WAIT);
        b_close(c);
        CHECK(c->fin_seen);
        CHECK_EQ(state_of(c), TCPS_LAST_ACK);
        break;
    case S_TIME_WAIT:
        reach(c, S_FIN_WAIT_2);
        x_send(c, TH_FIN | TH_ACK, c->xnxt, c->bmax, 65535, 0);
        c->xnxt++;
        CHECK_EQ(state_of(c), TCPS_TIME_WAIT);
        break;
    default:
        CHECK(0);
    }
}

/* ---- events ---- */

enum {
    E_RST,      /* RST|ACK at exactly X's next sequence number */
    E_RST_OFF,  /* RST in the window but not exact */
    E_SYN,      /* a SYN at X's next sequence number */
    E_SYNACK,   /* SYN|ACK answering B's SYN */
    E_ACK_BAD,  /* an ACK of data B never sent */
    E_ACK_ALL,  /* an ACK of everything B sent */
    E_FIN,      /* FIN|ACK, acknowledging what X acknowledged before */
    E_FIN_ALL,  /* FIN|ACK acknowledging everything */
    E_DATA,     /* 100 bytes, ACK as before */
    E_CLOSE,    /* the application closes */
    E_TIME,     /* ten minutes, X silent */
    E_PUSH,     /* the application pushes 3000 bytes (if it may) */
    E_ACK_PART, /* an ACK of half of what B has outstanding */
    E_ZERO_WIN, /* an ACK of everything, window 0 */
    E_SHORT,    /* two seconds, X silent */
    E_OOO,      /* 100 bytes beyond a hole */
    E_SACK,     /* a duplicate ACK SACKing the upper half of what B has outstanding */
    E_DUPACKS,  /* three duplicate ACKs */
};

static const char *const event_name[] = {
    "RST",  "RST(inexact)", "SYN",  "SYN-ACK", "ACK(unsent)", "ACK(all)",      "FIN-ACK", "FIN-ACK(all)",
    "data", "close",        "time", "push",    "ACK(part)",   "ACK(window 0)", "2 s",     "data(out of order)",
    "SACK", "3 dupACKs"};
_Static_assert(sizeof(event_name) / sizeof(event_name[0]) == E_DUPACKS + 1, "one name per event");

/* B's answer: R_ANY is not checked; R_NONE is silence. */
enum { R_ANY = -1, R_NONE = 0, R_ACK = TH_ACK, R_RST = TH_RST, R_SA = TH_SYN | TH_ACK, R_FA = TH_FIN | TH_ACK };

static void apply(struct xc *c, int e)
{
    uint32_t ack_now = c->backed ? c->backed : c->bmax;
    switch (e) {
    case E_RST:
        x_send(c, TH_RST | TH_ACK, c->xnxt, c->bmax, 0, 0);
        break;
    case E_RST_OFF:
        x_send(c, TH_RST, c->xnxt + 100, 0, 0, 0);
        break;
    case E_SYN:
        x_send(c, TH_SYN, c->xnxt, 0, 65535, 0);
        break;
    case E_SYNACK:
        x_send(c, TH_SYN | TH_ACK, c->xiss, c->b_iss + 1, 65535, 0);
        c->xnxt = c->xiss + 1;
        break;
    case E_ACK_BAD:
        x_send(c, TH_ACK, c->xnxt, c->bmax + 5000, 65535, 0);
        break;
    case E_ACK_ALL:
        x_send(c, TH_ACK, c->xnxt, c->bmax, 65535, 0);
        break;
    case E_FIN:
        x_send(c, TH_FIN | TH_ACK, c->xnxt, ack_now, 65535, 0);
        c->xnxt++;
        break;
    case E_FIN_ALL:
        x_send(c, TH_FIN | TH_ACK, c->xnxt, c->bmax, 65535, 0);
        c->xnxt++;
        break;
    case E_DATA:
        x_send(c, TH_ACK | TH_PSH, c->xnxt, ack_now, 65535, 100);
        c->xnxt += 100;
        break;
    case E_CLOSE:
        b_close(c);
        break;
    case E_TIME:
    case E_SHORT:
        cap_clear(&cap);
        sw_run_for(&w, (e == E_TIME ? 600 : 2) * SEC);
        absorb(c);
        break;
    case E_PUSH: {
        int st = state_of(c);
        struct tcp_pcb *p = pcb_of(c);
        if (!c->q || (st != TCPS_ESTABLISHED && st != TCPS_CLOSE_WAIT) || !p || p->err)
            break;
        demi_sgarray_t sga = sw_sga(B, 3000, 5, 0);
        cap_clear(&cap);
        sw_push(B, c->q, &sga);
        sw_free(B, &sga);
        settle();
        absorb(c);
        break;
    }
    case E_ACK_PART: {
        uint32_t from = c->backed ? c->backed : c->b_iss + 1;
        x_send(c, TH_ACK, c->xnxt, from + (c->bmax - from) / 2, 65535, 0);
        break;
    }
    case E_ZERO_WIN:
        x_send(c, TH_ACK, c->xnxt, c->bmax, 0, 0);
        break;
    case E_OOO:
        x_send(c, TH_ACK | TH_PSH, c->xnxt + 300, ack_now, 65535, 100);
        break;
    case E_SACK: {
        uint32_t from = c->backed ? c->backed : c->b_iss + 1;
        if (seq_lt(from, c->bmax)) {
            c->sack[0] = from + (c->bmax - from) / 2;
            c->sack[1] = c->bmax;
            c->sack_next = c->sack[0] != c->sack[1];
        }
        x_send(c, TH_ACK, c->xnxt, from, 65535, 0);
        break;
    }
    case E_DUPACKS:
        for (int i = 0; i < 3; i++)
            x_send(c, TH_ACK, c->xnxt, ack_now, 65535, 0);
        break;
    default:
        CHECK(0);
    }
}

struct scase {
    int setup, event;
    int want_state; /* TCPS_*, GONE, or -1: any */
    int want_answer;
};

/* clang-format off */
static const struct scase cases[] = {
    /* SYN_SENT (3.10.7.3) */
    {S_SYN_SENT, E_RST, TCPS_CLOSED, R_NONE},          /* refused: the socket keeps the error */
    {S_SYN_SENT, E_RST_OFF, TCPS_SYN_SENT, R_NONE},    /* no ACK: ignored */
    {S_SYN_SENT, E_SYN, TCPS_SYN_RCVD, R_SA},          /* simultaneous open */
    {S_SYN_SENT, E_SYNACK, TCPS_ESTABLISHED, R_ACK},
    {S_SYN_SENT, E_ACK_BAD, TCPS_SYN_SENT, R_RST},
    {S_SYN_SENT, E_DATA, TCPS_SYN_SENT, R_NONE},       /* neither SYN nor RST: dropped */
    {S_SYN_SENT, E_CLOSE, GONE, R_NONE},
    {S_SYN_SENT, E_TIME, TCPS_CLOSED, R_ANY},          /* SYN retries, then ETIMEDOUT */
    /* SYN_RCVD, passive */
    {S_SYN_RCVD_PASSIVE, E_RST, GONE, R_NONE},
    {S_SYN_RCVD_PASSIVE, E_RST_OFF, TCPS_SYN_RCVD, R_ACK}, /* challenge ACK */
    {S_SYN_RCVD_PASSIVE, E_SYN, TCPS_SYN_RCVD, R_ANY},
    {S_SYN_RCVD_PASSIVE, E_ACK_BAD, TCPS_SYN_RCVD, R_ACK},
    {S_SYN_RCVD_PASSIVE, E_ACK_ALL, TCPS_ESTABLISHED, R_NONE},
    {S_SYN_RCVD_PASSIVE, E_FIN_ALL, TCPS_CLOSE_WAIT, R_ACK},
    {S_SYN_RCVD_PASSIVE, E_TIME, GONE, R_ANY},
    /* SYN_RCVD, simultaneous open */
    {S_SYN_RCVD_SIMUL, E_RST, TCPS_CLOSED, R_NONE},
    {S_SYN_RCVD_SIMUL, E_SYN, TCPS_SYN_RCVD, R_ACK},   /* a SYN not at irs: challenge ACK (RFC 5961 4) */
    {S_SYN_RCVD_SIMUL, E_SYNACK, TCPS_SYN_RCVD, R_ACK}, /* left of the window: ACK (3.10.7.4); X's ACK completes it */
    {S_SYN_RCVD_SIMUL, E_ACK_ALL, TCPS_ESTABLISHED, R_NONE},
    {S_SYN_RCVD_SIMUL, E_ACK_BAD, TCPS_SYN_RCVD, R_ACK},
    {S_SYN_RCVD_SIMUL, E_FIN_ALL, TCPS_CLOSE_WAIT, R_ACK},
    {S_SYN_RCVD_SIMUL, E_DATA, TCPS_ESTABLISHED, R_ACK}, /* its ACK completes the handshake */
    {S_SYN_RCVD_SIMUL, E_CLOSE, TCPS_SYN_RCVD, R_NONE}, /* the FIN waits for the handshake (3.10.4) */
    {S_SYN_RCVD_SIMUL, E_TIME, TCPS_CLOSED, R_ANY},
    /* ... then closed by the application (finding 1) */
    {S_SIMUL_CLOSED, E_TIME, GONE, R_ANY},
    {S_SIMUL_CLOSED, E_ACK_ALL, TCPS_FIN_WAIT_1, R_FA},
    {S_SIMUL_CLOSED, E_FIN_ALL, TCPS_CLOSING, R_ANY},   /* FIN_WAIT_1, then X's FIN */
    {S_SIMUL_CLOSED, E_RST, GONE, R_NONE},
    {S_SIMUL_CLOSED, E_SYN, TCPS_SYN_RCVD, R_ACK},
    /* ESTABLISHED */
    {S_ESTABLISHED, E_RST, TCPS_CLOSED, R_NONE},
    {S_ESTABLISHED, E_RST_OFF, TCPS_ESTABLISHED, R_ACK},
    {S_ESTABLISHED, E_SYN, TCPS_ESTABLISHED, R_ACK},
    {S_ESTABLISHED, E_ACK_BAD, TCPS_ESTABLISHED, R_ACK},
    {S_ESTABLISHED, E_ACK_ALL, TCPS_ESTABLISHED, R_NONE},
    {S_ESTABLISHED, E_FIN, TCPS_CLOSE_WAIT, R_ACK},
    {S_ESTABLISHED, E_DATA, TCPS_ESTABLISHED, R_ACK},
    {S_ESTABLISHED, E_CLOSE, TCPS_FIN_WAIT_1, R_FA},
    {S_ESTABLISHED, E_TIME, TCPS_ESTABLISHED, R_NONE},
    /* FIN_WAIT_1 (orphaned) */
    {S_FIN_WAIT_1, E_RST, GONE, R_NONE},
    {S_FIN_WAIT_1, E_RST_OFF, TCPS_FIN_WAIT_1, R_ACK},
    {S_FIN_WAIT_1, E_SYN, TCPS_FIN_WAIT_1, R_ACK},
    {S_FIN_WAIT_1, E_ACK_BAD, TCPS_FIN_WAIT_1, R_ACK},
    {S_FIN_WAIT_1, E_ACK_ALL, TCPS_FIN_WAIT_2, R_NONE},
    {S_FIN_WAIT_1, E_FIN, TCPS_CLOSING, R_ACK},
    {S_FIN_WAIT_1, E_FIN_ALL, TCPS_TIME_WAIT, R_ACK},
    {S_FIN_WAIT_1, E_DATA, GONE, R_RST},                /* nobody will read it */
    {S_FIN_WAIT_1, E_TIME, GONE, R_ANY},
    /* FIN_WAIT_2 (orphaned) */
    {S_FIN_WAIT_2, E_RST, GONE, R_NONE},
    {S_FIN_WAIT_2, E_SYN, TCPS_FIN_WAIT_2, R_ACK},
    {S_FIN_WAIT_2, E_ACK_BAD, TCPS_FIN_WAIT_2, R_ACK},
    {S_FIN_WAIT_2, E_FIN, TCPS_TIME_WAIT, R_ACK},
    {S_FIN_WAIT_2, E_DATA, GONE, R_RST},
    {S_FIN_WAIT_2, E_TIME, GONE, R_NONE},                /* fin_timeout */
    /* CLOSE_WAIT */
    {S_CLOSE_WAIT, E_RST, TCPS_CLOSED, R_NONE},
    {S_CLOSE_WAIT, E_SYN, TCPS_CLOSE_WAIT, R_ACK},
    {S_CLOSE_WAIT, E_ACK_BAD, TCPS_CLOSE_WAIT, R_ACK},
    {S_CLOSE_WAIT, E_ACK_ALL, TCPS_CLOSE_WAIT, R_NONE},
    {S_CLOSE_WAIT, E_FIN, TCPS_CLOSE_WAIT, R_NONE},     /* a second FIN, past the first: ignored */
    {S_CLOSE_WAIT, E_DATA, TCPS_CLOSE_WAIT, R_NONE},   /* text after a FIN is ignored (3.10.7.4) */
    {S_CLOSE_WAIT, E_CLOSE, TCPS_LAST_ACK, R_FA},
    {S_CLOSE_WAIT, E_TIME, TCPS_CLOSE_WAIT, R_NONE},
    /* CLOSING */
    {S_CLOSING, E_RST, GONE, R_NONE},
    {S_CLOSING, E_SYN, TCPS_CLOSING, R_ACK},
    {S_CLOSING, E_ACK_ALL, TCPS_TIME_WAIT, R_NONE},
    {S_CLOSING, E_ACK_BAD, TCPS_CLOSING, R_ACK},
    {S_CLOSING, E_TIME, GONE, R_ANY},
    /* LAST_ACK */
    {S_LAST_ACK, E_RST, GONE, R_NONE},
    {S_LAST_ACK, E_SYN, TCPS_LAST_ACK, R_ACK},
    {S_LAST_ACK, E_ACK_BAD, TCPS_LAST_ACK, R_ACK},
    {S_LAST_ACK, E_ACK_ALL, GONE, R_NONE},
    {S_LAST_ACK, E_DATA, TCPS_LAST_ACK, R_NONE},
    {S_LAST_ACK, E_TIME, GONE, R_ANY},
    /* TIME_WAIT */
    {S_TIME_WAIT, E_RST, GONE, R_NONE},
    {S_TIME_WAIT, E_SYN, TCPS_TIME_WAIT, R_ACK},
    {S_TIME_WAIT, E_ACK_BAD, TCPS_TIME_WAIT, R_ACK},
    {S_TIME_WAIT, E_ACK_ALL, TCPS_TIME_WAIT, R_NONE},
    {S_TIME_WAIT, E_DATA, TCPS_TIME_WAIT, R_NONE},
    {S_TIME_WAIT, E_TIME, GONE, R_NONE},
};
/* clang-format on */

static void drain_results(void)
{
    demi_qresult_t qr;
    while (B->rt->sched.done.head) {
        sched_harvest(&B->rt->sched, B->rt->sched.done.head, &qr);
        if (qr.qr_opcode == DEMI_OPC_POP && qr.qr_ret == 0)
            sw_free(B, &qr.qr_value.sga);
    }
}

/* A passive open the event completed: the application accepts it (and
 * will close it). */
static void take_accept(struct xc *c)
{
    if (!sw_done(acc))
        return;
    demi_qresult_t qr = sw_result(B, acc);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_ACCEPT);
    if (c->q) /* a new connection on the same ports, after the old one ended */
        sw_close(B, c->q);
    c->q = sw_accepted(B, &qr);
    acc = sw_accept(B, ls);
}

/* X silent, the application's socket closed, time passes: nothing left. */
static void expect_clean(struct xc *c, const char *what)
{
    if (c->q)
        b_close(c);
    sw_run_for(&w, 1800 * SEC);
    drain_results();
    struct tcp_pcb *p = pcb_of(c);
    if (p || B->in->nconns || B->rt->timers.armed != timers0 || heap_stats(B->rt->heap)->bytes_in_use != heap0) {
        fprintf(
            stderr,
            "%s: left behind: pcb state %d, %u connections, %llu timers (%llu before), %llu heap bytes (%llu before)\n",
            what, p ? p->state : -1, B->in->nconns, (unsigned long long)B->rt->timers.armed,
            (unsigned long long)timers0, (unsigned long long)heap_stats(B->rt->heap)->bytes_in_use,
            (unsigned long long)heap0);
        exit(1);
    }
}

/* Issue 11 finding 1: SYN answered by a bare SYN, close, several RTOs. */
static void test_simultaneous_open_close(void)
{
    struct xc c;
    x_init(&c, 30000);
    reach(&c, S_SIMUL_CLOSED);
    CHECK(sw_done(c.connect));
    demi_qresult_t qr = sw_result(B, c.connect);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_FAILED);
    CHECK_EQ(qr.qr_ret, ECANCELED);
    /* Several RTOs with X silent: B repeats its SYN-ACK (never a data
     * byte, never a FIN before the handshake completes), then gives up. */
    uint32_t synacks = 0, other = 0;
    for (int i = 0; i < 20; i++) {
        cap_clear(&cap);
        sw_run_for(&w, 10 * SEC);
        for (int k = 0; k < cap.n; k++) {
            struct tcp_view v;
            if (!craft_tcp_view(cap.frame[k], cap.len[k], &v) || v.dport != c.xport)
                continue;
            if (v.flags == (TH_SYN | TH_ACK) && v.seq == c.b_iss && v.dlen == 0)
                synacks++;
            else if (!(v.flags & TH_RST))
                other++;
        }
    }
    CHECK(synacks >= 1);
    CHECK_EQ(other, 0);
    expect_clean(&c, "simultaneous open, closed");

    /* The same, but X completes the handshake after the close: B's FIN
     * follows at once, and an orderly close ends it. */
    x_init(&c, 30001);
    reach(&c, S_SIMUL_CLOSED);
    sw_result(B, c.connect);
    x_send(&c, TH_ACK, c.xnxt, c.b_iss + 1, 65535, 0);
    CHECK_EQ(c.last_flags, TH_FIN | TH_ACK);
    CHECK_EQ(c.bfin, c.b_iss + 1);
    CHECK_EQ(state_of(&c), TCPS_FIN_WAIT_1);
    x_send(&c, TH_FIN | TH_ACK, c.xnxt, c.bmax, 65535, 0);
    CHECK_EQ(c.last_flags, TH_ACK);
    CHECK_EQ(state_of(&c), TCPS_TIME_WAIT);
    expect_clean(&c, "simultaneous open, closed, then completed");
    printf("simultaneous open then close: SYN-ACK repeated, FIN after the handshake, nothing left\n");
}

static void test_table(void)
{
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        const struct scase *k = &cases[i];
        char what[96];
        snprintf(what, sizeof(what), "%s + %s", setup_name[k->setup], event_name[k->event]);
        struct xc c;
        x_init(&c, (uint16_t)(31000 + i));
        reach(&c, k->setup);
        apply(&c, k->event);
        int st = state_of(&c);
        if ((k->want_state >= 0 && st != k->want_state) ||
            (k->want_answer != R_ANY && c.last_flags != k->want_answer)) {
            fprintf(stderr, "%s: state %d (want %d), answer flags %#x (want %#x)\n", what, st, k->want_state,
                    c.last_flags, (unsigned)k->want_answer);
            exit(1);
        }
        take_accept(&c);
        expect_clean(&c, what);
    }
    printf("state table: %zu state x event cases, each left nothing behind\n", ARRAY_SIZE(cases));
}

/* Random walks: from each state, a few random events in a row (tcp_check
 * watches every step in test builds), then the usual end: nothing left. */
static void test_random_walks(void)
{
    /* A fixed seed; DEMI_WALK_SEED and DEMI_WALKS explore further. */
    const char *seed = getenv("DEMI_WALK_SEED"), *walks = getenv("DEMI_WALKS");
    uint64_t rs = seed ? strtoull(seed, NULL, 0) : 0x5747;
    int nwalks = walks ? atoi(walks) : 1000;
    int n = 0;
    for (int i = 0; i < nwalks; i++) {
        struct xc c;
        x_init(&c, (uint16_t)(33000 + i % 20000));
        c.opts = trand(&rs) % 2;
        c.tsval = (uint32_t)trand(&rs);
        reach(&c, (int)(trand(&rs) % ARRAY_SIZE(setup_name)));
        int steps = 1 + (int)(trand(&rs) % 8);
        for (int k = 0; k < steps; k++) {
            int e = (int)(trand(&rs) % ARRAY_SIZE(event_name));
            if (e == E_CLOSE && !c.q)
                continue;
            apply(&c, e);
            take_accept(&c);
            n++;
        }
        expect_clean(&c, "random walk");
    }
    printf("random walks: %d connections, %d events, each left nothing behind\n", nwalks, n);
}

/* ---- zero windows (issue 11 finding 3) ---- */

static struct xc *watch;

static bool b_sent_something(void *arg)
{
    (void)arg;
    for (int i = 0; i < cap.n; i++) {
        struct tcp_view v;
        if (craft_tcp_view(cap.frame[i], cap.len[i], &v) && v.dport == watch->xport)
            return true;
    }
    return false;
}

/* ESTABLISHED; B pushes 5000 bytes into X's 1072-byte window, X takes
 * them and shuts its window; the rest waits behind it. Returns the push. */
static struct sched_task *zero_window(struct xc *c)
{
    established(c);
    x_send(c, TH_ACK, c->xnxt, c->bmax, 1072, 0); /* a window update: two 536-byte segments */
    demi_sgarray_t s = sw_sga(B, 5000, 3, 0);
    cap_clear(&cap);
    struct sched_task *t = sw_push(B, c->q, &s);
    sw_free(B, &s);
    settle();
    absorb(c);
    CHECK_EQ(c->bmax, c->b_iss + 1 + 1072);
    x_send(c, TH_ACK, c->xnxt, c->bmax, 0, 0);
    CHECK_EQ(c->answers, 0);
    CHECK(!sw_done(t));
    return t;
}

/* Runs with X answering every probe with window 0 (@answer) or silent,
 * until B's connection is gone or @max_ns pass. Returns the probes seen. */
static uint32_t probes_until_gone(struct xc *c, bool answer, uint64_t max_ns, uint64_t *took)
{
    uint64_t t0 = w.now;
    uint32_t probes = 0;
    watch = c;
    while (w.now - t0 < max_ns && state_of(c) != GONE && state_of(c) != TCPS_CLOSED) {
        cap_clear(&cap);
        if (sw_run(&w, b_sent_something, NULL, max_ns - (w.now - t0)) != 0)
            break;
        for (int i = 0; i < cap.n; i++) {
            struct tcp_view v;
            if (craft_tcp_view(cap.frame[i], cap.len[i], &v) && v.dport == c->xport && !(v.flags & TH_RST) &&
                v.dlen == 0 && v.seq == c->bmax - 1)
                probes++;
        }
        if (answer && state_of(c) != GONE && state_of(c) != TCPS_CLOSED)
            x_send(c, TH_ACK, c->xnxt, c->bmax, 0, 0);
    }
    *took = w.now - t0;
    return probes;
}

/* A closed connection whose peer acknowledged the FIN and went silent:
 * gone after tcp_fin_timeout (60 s), memory and timers back. */
static void test_fin_wait_2(void)
{
    struct xc c;
    x_init(&c, 32100);
    reach(&c, S_FIN_WAIT_2);
    uint64_t t0 = w.now;
    while (state_of(&c) == TCPS_FIN_WAIT_2 && w.now - t0 < 600 * SEC)
        sw_run_for(&w, SEC);
    CHECK_EQ(state_of(&c), GONE);
    CHECK(w.now - t0 >= 59 * SEC && w.now - t0 <= 61 * SEC);
    printf("orphaned FIN_WAIT_2, peer silent: gone after %.0f s\n", (double)(w.now - t0) / SEC);
    expect_clean(&c, "orphaned FIN_WAIT_2");
}

static void test_zero_window(void)
{
    struct xc c;
    uint64_t took;

    /* Open, X gone: the probes go unanswered, the push fails ETIMEDOUT. */
    x_init(&c, 32000);
    struct sched_task *t = zero_window(&c);
    uint32_t probes = probes_until_gone(&c, false, 4 * 3600 * SEC, &took);
    CHECK_EQ(state_of(&c), TCPS_CLOSED);
    CHECK(sw_done(t));
    demi_qresult_t qr = sw_result(B, t);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_FAILED);
    CHECK_EQ(qr.qr_ret, ETIMEDOUT);
    CHECK_EQ(probes, 15); /* tcp_retries2 */
    printf("zero window, open, peer gone: ETIMEDOUT after %u probes, %.0f s\n", probes, (double)took / SEC);
    expect_clean(&c, "zero window, open, peer gone");

    /* Closed (FIN_WAIT_1 behind 3928 bytes), X gone. */
    x_init(&c, 32001);
    t = zero_window(&c);
    b_close(&c);
    CHECK_EQ(state_of(&c), TCPS_FIN_WAIT_1);
    probes = probes_until_gone(&c, false, 4 * 3600 * SEC, &took);
    CHECK_EQ(state_of(&c), GONE);
    CHECK_EQ(probes, 8); /* tcp_orphan_retries */
    printf("zero window, closed, peer gone: gone after %u probes, %.0f s\n", probes, (double)took / SEC);
    expect_clean(&c, "zero window, closed, peer gone");

    /* Closed, X answering every probe with window 0: bounded all the same. */
    x_init(&c, 32002);
    t = zero_window(&c);
    b_close(&c);
    probes = probes_until_gone(&c, true, 4 * 3600 * SEC, &took);
    CHECK_EQ(state_of(&c), GONE);
    CHECK_EQ(probes, 8);
    printf("zero window, closed, peer answering: gone after %u probes, %.0f s\n", probes, (double)took / SEC);
    expect_clean(&c, "zero window, closed, peer answering");

    /* Closed, X opening its window a byte at a time: each byte is progress,
     * but a queue dripped out a byte per probe interval would pin the
     * orphan for hours (7 h for 128 KiB); it is bounded like probing. */
    x_init(&c, 32005);
    t = zero_window(&c);
    b_close(&c);
    watch = &c;
    uint64_t t1 = w.now;
    uint32_t drips = 0;
    while (state_of(&c) != GONE && w.now - t1 < 3600 * SEC) {
        cap_clear(&cap);
        if (sw_run(&w, b_sent_something, NULL, 3600 * SEC - (w.now - t1)) != 0)
            break;
        absorb(&c);
        if (state_of(&c) == GONE)
            break;
        x_send(&c, TH_ACK, c.xnxt, c.bmax, 1, 0);
        drips++;
    }
    took = w.now - t1;
    if (state_of(&c) != GONE || took >= 600 * SEC)
        fprintf(stderr, "window dripped open: state %d after %.0f s, %u segments, %u bytes sent\n", state_of(&c),
                (double)took / SEC, drips, c.bmax - c.b_iss - 1);
    CHECK_EQ(state_of(&c), GONE);
    CHECK(took < 600 * SEC);
    printf("zero window, closed, peer opening it a byte at a time: gone after %u segments, %.0f s\n", drips,
           (double)took / SEC);
    expect_clean(&c, "zero window, closed, window dripped open");

    /* Open, X answering with window 0 for three hours: legal, kept; then X
     * opens its window and the rest goes out. */
    x_init(&c, 32003);
    t = zero_window(&c);
    probes = probes_until_gone(&c, true, 3 * 3600 * SEC, &took);
    CHECK_EQ(state_of(&c), TCPS_ESTABLISHED);
    CHECK(probes > 100);
    CHECK(!sw_done(t));
    x_send(&c, TH_ACK, c.xnxt, c.bmax, 65535, 0);
    CHECK(sw_done(t));
    qr = sw_result(B, t);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_PUSH);
    CHECK_EQ(c.bmax, c.b_iss + 1 + 5000);
    x_send(&c, TH_ACK, c.xnxt, c.bmax, 65535, 0);
    printf("zero window, open, peer answering: kept for 3 h (%u probes), then the data went\n", probes);
    expect_clean(&c, "zero window, open, peer answering");

    /* Open, X shrinks its window to 0 over data in flight (RFC 9293
     * 3.8.6.2.2 lets a receiver do it) and answers whatever B sends with
     * window 0: B's retransmission timeouts become window probes, and the
     * connection lives while X answers; then X opens its window. */
    x_init(&c, 32004);
    established(&c);
    x_send(&c, TH_ACK, c.xnxt, c.bmax, 1072, 0);
    demi_sgarray_t sga = sw_sga(B, 5000, 3, 0);
    cap_clear(&cap);
    t = sw_push(B, c.q, &sga);
    sw_free(B, &sga);
    settle();
    absorb(&c);
    CHECK_EQ(c.bmax, c.b_iss + 1 + 1072);
    uint32_t half = c.b_iss + 1 + 536;
    x_send(&c, TH_ACK, c.xnxt, half, 0, 0);
    uint64_t t0 = w.now;
    watch = &c;
    uint32_t answered = 0;
    while (w.now - t0 < 3 * 3600 * SEC && state_of(&c) == TCPS_ESTABLISHED) {
        cap_clear(&cap);
        if (sw_run(&w, b_sent_something, NULL, 3 * 3600 * SEC - (w.now - t0)) != 0)
            break;
        if (state_of(&c) != TCPS_ESTABLISHED)
            break;
        x_send(&c, TH_ACK, c.xnxt, half, 0, 0);
        answered++;
    }
    if (state_of(&c) != TCPS_ESTABLISHED)
        fprintf(stderr, "shrunk window: connection state %d after %.0f s, %u answers\n", state_of(&c),
                (double)(w.now - t0) / SEC, answered);
    CHECK_EQ(state_of(&c), TCPS_ESTABLISHED);
    CHECK(answered > 100);
    x_send(&c, TH_ACK, c.xnxt, half, 65535, 0);
    for (int i = 0; i < 50 && c.bmax != c.b_iss + 1 + 5000; i++)
        x_send(&c, TH_ACK, c.xnxt, c.bmax, 65535, 0); /* slow start again, after the timeouts */
    CHECK(sw_done(t));
    qr = sw_result(B, t);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_PUSH);
    CHECK_EQ(c.bmax, c.b_iss + 1 + 5000);
    x_send(&c, TH_ACK, c.xnxt, c.bmax, 65535, 0);
    printf("window shrunk to 0 over data in flight, peer answering: kept for 3 h (%u answers), then the data went\n",
           answered);
    expect_clean(&c, "shrunk window, peer answering");
}

int main(void)
{
    X.ip = htonl(0x0a000032u); /* 10.0.0.50 */
    x_arp.ip.s_addr = X.ip;
    memcpy(x_arp.mac, X.mac, 6);
    sw_init(&w, 11, getenv("DEMI_PCAP"));
    B = sw_node(&w, tweak);
    cap_attach(&w, &cap, B->dev);
    ls = sw_socket(B, SOCK_STREAM);
    sw_bind(B, ls, B_PORT);
    sw_listen(B, ls, 16);
    acc = sw_accept(B, ls);
    settle();
    heap0 = heap_stats(B->rt->heap)->bytes_in_use;
    timers0 = B->rt->timers.armed;

    test_simultaneous_open_close();
    test_table();
    test_random_walks();
    test_fin_wait_2();
    test_zero_window();

    printf("tcp states: ok\n");
    sw_fini(&w);
    return 0;
}
