/*
 * Private structures of the stack, shared by its protocol files. Nothing
 * outside src/inet includes this.
 *
 * Byte order: IPv4 addresses are kept in network order (as on the wire
 * and in struct in_addr); ports and sequence numbers in host order.
 */
#ifndef DEMI_INET_INET_INT_H
#define DEMI_INET_INET_INT_H

#include "core/common.h"
#include "core/log.h"
#include "inet/inet.h"
#include "inet/tcp_cc.h"
#include "inet/tcp_sack.h"
#include "mem/heap.h"
#include "mem/sga.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#define INET_TXQ       32    /* packets batched before a tx_burst */
#define INET_RX_BURST  32    /* frames per rx_burst */
#define INET_LOOP_MAX  65536 /* packets to our own address awaiting the next pass, at most */
#define INET_HDR_BLOCK 192   /* header block: Ethernet + IPv4 + TCP with 40 B of options, rounded */
#define ARP_SLOTS      256
#define ARP_QUEUE      64 /* packets held per unresolved address: a 64 KiB datagram's fragments */
#define EPHEMERAL_LO   49152u
#define EPHEMERAL_HI   65535u

/* ---- wire formats (all packed, network order) ---- */

struct eth_hdr {
    uint8_t dst[6];
    uint8_t src[6];
    uint16_t type;
} __attribute__((packed));

#define ETH_P_IPV4 0x0800
#define ETH_P_ARP  0x0806

struct arp_pkt {
    uint16_t htype, ptype;
    uint8_t hlen, plen;
    uint16_t op;
    uint8_t sha[6];
    uint32_t spa;
    uint8_t tha[6];
    uint32_t tpa;
} __attribute__((packed));

struct ip_hdr {
    uint8_t vihl;
    uint8_t tos;
    uint16_t len;
    uint16_t id;
    uint16_t frag;
    uint8_t ttl;
    uint8_t proto;
    uint16_t csum;
    uint32_t src;
    uint32_t dst;
} __attribute__((packed));

#define IP_MF      0x2000
#define IP_DF      0x4000
#define IP_OFFMASK 0x1fff

struct udp_hdr {
    uint16_t sport, dport, len, csum;
} __attribute__((packed));

struct icmp_hdr {
    uint8_t type, code;
    uint16_t csum;
    uint16_t id, seq;
} __attribute__((packed));

struct tcp_hdr {
    uint16_t sport, dport;
    uint32_t seq, ack;
    uint8_t off; /* data offset in the high nibble */
    uint8_t flags;
    uint16_t win, csum, urp;
} __attribute__((packed));

enum { TH_FIN = 0x01, TH_SYN = 0x02, TH_RST = 0x04, TH_PSH = 0x08, TH_ACK = 0x10, TH_URG = 0x20 };

/* ---- checksums (csum.c) ---- */

/* One's-complement sum of @len bytes, folded to 32 bits, added to @sum. */
uint32_t csum_add(uint32_t sum, const void *data, size_t len);
uint16_t csum_fold(uint32_t sum);
/* Pseudo-header sum for TCP/UDP over IPv4. */
uint32_t csum_pseudo(uint32_t src, uint32_t dst, uint8_t proto, uint16_t len);
/* The TCP or UDP checksum from the pseudo-header's sum and the segment's:
 * the value to send (in the header, zeroed while summing), or 0 when a
 * received segment checks. */
uint16_t csum_l4(uint32_t pseudo, uint32_t data);
/* Sum of packet bytes [from, p->len), across segments of any length. */
uint32_t csum_pkt(const struct pkt *p, uint32_t from);

/* Appends to @p views of [@buf, @buf + @len) from the application: a
 * reference on the heap block holding it, or a copy into a new block for
 * memory not from the heap. Returns 0, E2BIG (out of segments) or ENOMEM. */
int pkt_attach(struct inet *in, struct pkt *p, void *buf, uint32_t len);

/* ---- frames received (views of device frames) ---- */

/* A run of received bytes: a view into a frame the stack holds a reference to. */
struct rxbuf {
    struct heap_blk *blk;
    uint8_t *data;
    uint32_t len;
    uint32_t truesize; /* TCP: rx_truesize, computed once when the run is queued */
};

/* ---- ARP ---- */

/* What a flood of strangers may take (arp.c says why): ARP_PENDING_MAX
 * addresses resolved at once, ARP_HELD_MAX packets held for them in all
 * (each at most one frame of the MTU, so 384 KiB of heap at 1500 bytes),
 * and broadcast requests from a token bucket. */
#define ARP_WAYS        4               /* entries per hash bucket */
#define ARP_PENDING_MAX (ARP_SLOTS / 2) /* addresses being resolved at once */
#define ARP_HELD_MAX    (4 * ARP_QUEUE) /* packets held for all of them together */
#define ARP_REQ_RATE    256             /* broadcast requests per second, sustained */
#define ARP_REQ_BURST   256             /* broadcast requests in a burst */

enum { ARP_FREE = 0, ARP_PENDING, ARP_RESOLVED, ARP_FAILED, ARP_STATIC };

struct arp_entry {
    uint32_t ip;
    uint8_t mac[6];
    uint8_t state;
    uint8_t tries;
    uint64_t expires; /* RESOLVED: TTL end; FAILED: when to forget; PENDING: when asked first */
    uint64_t used;    /* RESOLVED: last packet sent with it */
    struct timer tm;  /* PENDING: next retry; RESOLVED: next unicast confirmation */
    struct inet *in;
    uint16_t nq;
    struct pkt *q[ARP_QUEUE]; /* packets waiting for the address (malloc'd) */
};

/* ---- sockets and TCP ---- */

enum sock_state { SS_FRESH = 0, SS_BOUND, SS_LISTEN, SS_CONN, SS_CLOSED };

enum tcp_state {
    TCPS_CLOSED = 0,
    TCPS_LISTEN,
    TCPS_SYN_SENT,
    TCPS_SYN_RCVD,
    TCPS_ESTABLISHED,
    TCPS_FIN_WAIT_1,
    TCPS_FIN_WAIT_2,
    TCPS_CLOSE_WAIT,
    TCPS_CLOSING,
    TCPS_LAST_ACK,
    TCPS_TIME_WAIT,
};

struct tcp_pcb;

/* A received UDP datagram waiting for a pop. */
struct udp_dgram {
    struct udp_dgram *next;
    struct rxbuf b;
    struct sockaddr_in from;
};

struct tcp_listen {
    uint32_t backlog;
    uint32_t nsyn;   /* half-open (SYN_RCVD) children */
    uint32_t nready; /* established, waiting for demi_accept */
    struct tcp_pcb *ready_head, *ready_tail;
    struct tcp_pcb *syn_head, *syn_tail; /* the half-open children, oldest first */
    uint64_t cookie_at;                  /* when the last SYN cookie went out (0: never) */
    struct task_list accepts;
};

/* The options of a socket (demi_setsockopt), held once, in the socket. A
 * connection reads them through its pcb->opts pointer: its listener's
 * until accepted, then its socket's, and once the application closes the
 * socket, a snapshot the connection keeps (pcb->orphan_opts). */
struct sock_opts {
    bool reuseaddr, reuseport, keepalive, nodelay;
    int32_t linger; /* -1: off; else seconds (0: abort on close) */
    uint32_t rcvbuf, sndbuf;
    uint64_t keepidle_ns, keepintvl_ns;
    uint32_t keepcnt;
};

struct inet_sock {
    struct inet *in;
    uint8_t type;  /* SOCK_STREAM or SOCK_DGRAM */
    uint8_t state; /* enum sock_state */
    struct sock_opts opts;
    uint32_t lip; /* bound address (INADDR_ANY or ours) */
    uint16_t lport;
    /* UDP */
    uint32_t rip; /* default peer (connected UDP) */
    uint16_t rport;
    bool has_peer;
    struct inet_sock *hnext; /* UDP port table chain */
    struct udp_dgram *rx_head, *rx_tail;
    uint32_t rx_bytes; /* memory the queue holds: blocks and entries, bounded by rcvbuf */
    struct task_list pops;
    /* TCP */
    struct inet_sock *sprev, *snext; /* in->socks */
    struct tcp_pcb *pcb;             /* SS_CONN */
    struct tcp_listen *lst;          /* SS_LISTEN */
    struct sched_task *connect_task;
};

/* Unacknowledged or unsent bytes of the send queue: views of the
 * application's buffers, each holding a reference. */
struct sndseg {
    struct heap_blk *blk;
    uint8_t *data;
    uint32_t len;
    uint32_t seq; /* sequence number of data[0] */
};

#define TCP_OOO_MAX 4096 /* out-of-order runs held per connection */

/* Out-of-order received run. */
struct ooo_seg {
    struct rxbuf b;
    uint32_t seq;
};

enum { TT_RTO = 1, TT_DELACK = 2, TT_KEEP = 4, TT_PERSIST = 8, TT_TW = 16, TT_FIN2 = 32 };

struct tcp_pcb {
    struct inet *in;
    struct inet_sock *sock;    /* NULL: orphaned (closed by the application) or not accepted yet */
    struct tcp_pcb *hnext;     /* connection hash chain */
    struct tcp_listen *parent; /* the listener, until accepted */
    struct inet_sock *lsock;   /* the listening socket, until accepted */
    struct tcp_pcb *qnext;     /* listener's ready queue */
    /* The listener's list of half-open children, while SYN_RCVD. */
    struct tcp_pcb *syn_prev, *syn_next;
    struct tcp_pcb *work_next; /* in->work */
    struct tcp_pcb *ack_next;  /* in->acklist */
    uint32_t rip;
    uint16_t lport, rport;
    uint8_t state;
    uint8_t timer_events; /* TT_* fired, for the background task */
    bool on_work, on_acklist;
    bool ack_now; /* an ACK is owed (sent by the next segment, or at the end of the pass) */
    /* The socket options the connection uses: never NULL (see struct
     * sock_opts for whose they are). */
    const struct sock_opts *opts;
    struct sock_opts orphan_opts;

    /* Options negotiated. */
    bool ts_ok, sack_ok, wscale_ok;
    uint8_t snd_wscale, rcv_wscale;
    uint16_t mss; /* payload per segment we send, before option space */
    uint32_t ts_recent;
    uint64_t ts_recent_age;

    /* Send side (RFC 9293 3.3.1). */
    uint32_t iss, snd_una, snd_nxt, snd_max, snd_wnd, snd_wl1, snd_wl2, max_snd_wnd;
    struct sndseg *sq; /* ring of queued bytes, ordered by seq */
    uint32_t sq_cap, sq_head, sq_n;
    uint32_t snd_end; /* sequence number after the last queued byte (FIN excluded) */
    bool fin_pending; /* send a FIN after the queued bytes */
    bool fin_sent;
    uint32_t fin_seq;
    struct task_list pushes; /* each waits until snd_max reaches its arg[0] */

    /* Receive side. */
    uint32_t irs, rcv_nxt, rcv_adv; /* rcv_adv: right edge we advertised */
    uint32_t rcv_buf;               /* window capacity */
    struct rxbuf *rq;               /* ring of in-order bytes not popped yet */
    uint32_t rq_cap, rq_head, rq_n, rq_bytes;
    struct ooo_seg *ooo; /* sorted by seq, non-overlapping */
    uint32_t ooo_n, ooo_cap, ooo_bytes;
    /* Memory the held segments really pin (rx_truesize of every run in
     * rq and ooo), charged against the receive buffer as Linux's
     * sk_rmem_alloc: a one-byte segment pins its whole frame block. */
    uint32_t rcv_mem;
    uint32_t rmem_retry;   /* no collapse of the receive queue below this charge */
    uint32_t last_ooo_seq; /* for SACK block order */
    bool orphan_counted;   /* closed by the application and counted in in->tcp_orphans */
    bool fin_rcvd;
    struct task_list pops;
    int err; /* sticky: ECONNRESET, ETIMEDOUT, ECONNREFUSED, EHOSTUNREACH */

    /* RTT and retransmission (RFC 6298). */
    uint64_t srtt, rttvar, rto; /* ns */
    bool rtt_valid;
    bool rtt_timing;
    uint32_t rtt_seq;
    uint64_t rtt_start;
    uint32_t rto_backoff; /* consecutive expiries */
    uint32_t syn_tries;

    /* Congestion control (RFC 5681, 6582, 9438) and loss recovery (RFC 6675). */
    uint32_t cwnd, ssthresh;
    uint32_t dupacks;
    bool in_recovery;
    uint32_t recover; /* RecoveryPoint */
    uint32_t high_rxt;
    uint32_t rxt_mark;           /* snd_max when this round of retransmissions began */
    bool rto_recovery;           /* resending after an RTO */
    bool tlp_armed;              /* rto_tm is set for a tail loss probe, not the RTO */
    bool tlp_out;                /* a probe went out; none again until an ACK advances */
    uint32_t tlp_seq;            /* where the probe began */
    struct sack_board sb;        /* what the peer SACKed (tcp_sack.c) */
    const struct tcp_cc_ops *cc; /* set once, when the connection is created */
    struct tcp_cc_state ccs;

    /* Timers. */
    struct timer rto_tm, delack_tm, keep_tm, persist_tm, tw_tm;
    uint32_t persist_backoff; /* probes since the window last opened */
    uint32_t persist_probes;  /* probes since the peer last acknowledged anything */
    bool sws_override;        /* the persist timer fired: send what fits, however small */
    uint32_t keep_probes;
    uint64_t last_rx; /* for keep-alive */
    uint32_t segs_since_ack;

    struct tcp_conn_stats st;
};

/* ---- IPv4 fragments (ipfrag.c) ---- */

#define FRAG_SLOTS  32         /* datagrams being reassembled at once */
#define FRAG_PIECES 256        /* fragments per datagram: 65507 bytes at MTU 296 */
#define FRAG_BYTES  (4u << 20) /* memory (frame blocks) held for reassembly, in all */

struct frag_piece {
    struct heap_blk *blk;
    uint8_t *data;
    uint16_t off, len;
};

struct frag_slot {
    struct timer tm; /* forgets the datagram at the deadline */
    struct inet *in;
    bool used;
    uint8_t proto;
    uint16_t id;
    uint32_t src, dst;
    uint64_t deadline;
    uint32_t total; /* datagram length, once the last fragment is in */
    uint32_t have;  /* payload bytes in */
    uint32_t held;  /* bytes of the frame blocks kept */
    int n;
    struct frag_piece piece[FRAG_PIECES];
};

/* ---- the stack ---- */

struct inet {
    struct runtime *rt;
    struct netdev *dev;
    struct heap *heap;
    struct inet_config cfg;
    struct libos *qowner; /* see inet_set_qowner */
    uint8_t mac[6];
    uint32_t ip;
    uint16_t ip_id;
    uint64_t rng;
    uint64_t isn_key[2];
    uint64_t cookie_key[2];
    struct sched_task *poller; /* device fast path */
    struct sched_task *bg;     /* timer-woken background work */
    struct pkt txq[INET_TXQ];
    int ntx;
    struct rxframe rx[INET_RX_BURST];
    struct frag_slot frag[FRAG_SLOTS];
    uint32_t frag_bytes;
    struct rxframe *loop; /* sent to ourselves: delivered at the next pass */
    int nloop, loop_cap;

    struct arp_entry arp[ARP_SLOTS];
    uint32_t arp_npending;  /* PENDING entries */
    uint32_t arp_nheld;     /* packets they hold */
    uint32_t arp_tokens;    /* broadcast requests we may send now */
    uint64_t arp_tokens_at; /* when arp_tokens was last refilled */
    uint64_t arp_defended;  /* when we last announced our address against a claim */

    /* UDP: bound sockets by port. */
    struct inet_sock **udp_ports; /* 65536 chains, allocated on first use */

    /* TCP. */
    struct tcp_pcb **conns; /* hash of connections by 4-tuple */
    uint32_t conns_mask, nconns;
    struct inet_sock **tcp_listeners; /* 65536, by port; NULL: none */
    uint16_t *tcp_port_users;         /* sockets and connections using each local port */
    struct tcp_pcb *work;             /* connections with timer events */
    struct tcp_pcb *acklist;          /* connections owing an ACK */
    uint64_t last_unreach;            /* ICMP unreachable rate limit */
    struct inet_sock *socks;          /* every socket, for destroy */
    uint64_t challenge_window;        /* second of the current challenge-ACK budget */
    uint32_t challenge_count;
    uint32_t tcp_orphans; /* connections closed by the application, not finished (TIME_WAIT excluded) */

    struct inet_stats st;
};

/* The memory a received run held by TCP really pins: its whole frame
 * block, however few bytes of it are payload, and the queue entry. */
static inline uint32_t rx_truesize(const struct inet *in, const struct rxbuf *b)
{
    return (uint32_t)heap_blk_cap(in->heap, b->blk) + (uint32_t)sizeof(*b);
}

/* The receive memory a connection may hold: twice its window (full-sized
 * segments pin about 1.4 times their payload, so they never reach it)
 * plus a few frames, so that a tiny window still takes whole segments. */
#define TCP_RMEM_SLACK (8u * 1024)
static inline uint32_t tcp_rmem_limit(const struct tcp_pcb *pcb)
{
    return 2 * pcb->rcv_buf + TCP_RMEM_SLACK;
}

static inline uint64_t inet_now(const struct inet *in)
{
    return in->rt->now;
}

static inline uint64_t inet_rand(struct inet *in)
{
    uint64_t z = (in->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A free ephemeral port (@taken says which are not), from a random start;
 * in a group of instances, only those that steer to this one (port %
 * group_size == group_index). 0 if none is free. */
uint16_t inet_ephemeral(struct inet *in, bool (*taken)(const struct inet *in, uint16_t port));

/* ---- Ethernet (eth.c) ---- */

/* A header block with room for Ethernet + IPv4 + L4 headers; the caller
 * fills bytes [ETH_HDR_LEN + 20, ...). NULL when the heap is full. */
struct heap_blk *inet_hdr_alloc(struct inet *in, uint8_t **data);
/* Queues a complete frame for the device (flushed at the end of the pass). */
void eth_xmit(struct inet *in, struct pkt *p);
void inet_flush(struct inet *in);
/* A frame from the device (or looped back): dispatched by EtherType; takes
 * the frame's reference. */
void eth_input(struct inet *in, struct rxframe *f);
/* Keeps a copy of IPv4 packet @p, which is to our own address, for the
 * next pass (consumes @p). */
void eth_loopback(struct inet *in, struct pkt *p);
/* Receives the packets looped back since the last pass. */
void eth_loop_input(struct inet *in);

/* ---- protocols ---- */

void arp_init(struct inet *in);
void arp_fini(struct inet *in);
void arp_input(struct inet *in, struct rxframe *f);
/* Sends @p to @ip's MAC, resolving it first if needed (consumes @p). */
int arp_output(struct inet *in, struct pkt *p, uint32_t ip);

void ip_input(struct inet *in, struct rxframe *f);
/* Completes and sends an IPv4 packet: @p's first segment starts with room
 * for the Ethernet and IPv4 headers (filled here); resolves @dst by ARP.
 * Consumes @p's references in every case. Returns 0, or EHOSTUNREACH
 * when the address is known to be unreachable. */
int ip_output(struct inet *in, struct pkt *p, uint32_t dst, uint8_t proto);
/* ARP gave up on neighbour @ip: tells the transports that wait on it. */
void ip_neigh_unreachable(struct inet *in, uint32_t ip);
/* Takes a fragment (and its frame's reference); delivers the datagram once whole. */
void ip_reassemble(struct inet *in, struct rxframe *f, struct ip_hdr *ip, uint32_t hlen, uint32_t tlen);
void ip_frag_init(struct inet *in);
void ip_frag_fini(struct inet *in);
/* Sends @p (headers room, transport header, payload) as fragments of at most
 * the MTU; consumes @p. For datagrams larger than the MTU. */
int ip_output_fragments(struct inet *in, struct pkt *p, uint32_t dst, uint8_t proto);
void icmp_input(struct inet *in, struct rxframe *f, struct ip_hdr *ip, uint8_t *l4, uint32_t l4len);
/* ICMP destination unreachable (code) about the datagram at @ip. */
void icmp_send_unreach(struct inet *in, const struct ip_hdr *ip, uint32_t iplen, uint8_t code);

void udp_input(struct inet *in, struct rxframe *f, struct ip_hdr *ip, uint8_t *l4, uint32_t l4len);
void tcp_input(struct inet *in, struct rxframe *f, struct ip_hdr *ip, uint8_t *l4, uint32_t l4len);

/* ---- sockets (sock.c, udp.c, tcp*.c) ---- */

struct inet_sock *sock_new(struct inet *in, int type);
void sock_free(struct inet *in, struct inet_sock *s);

int udp_bind_port(struct inet *in, struct inet_sock *s, uint16_t port);
void udp_unbind(struct inet *in, struct inet_sock *s);
int udp_push(struct inet *in, struct inet_sock *s, const demi_sgarray_t *sga, const struct sockaddr_in *to,
             struct sched_task *t);
int udp_pop(struct inet *in, struct inet_sock *s, struct sched_task *t);
void udp_close(struct inet *in, struct inet_sock *s, bool deliver);

int tcp_port_take(struct inet *in, uint16_t port, bool reuse);
uint16_t tcp_port_ephemeral(struct inet *in);
void tcp_port_release(struct inet *in, uint16_t port);
int tcp_listen(struct inet *in, struct inet_sock *s, int backlog);
int tcp_accept(struct inet *in, struct inet_sock *s, struct sched_task *t);
int tcp_connect(struct inet *in, struct inet_sock *s, const struct sockaddr_in *to, struct sched_task *t);
int tcp_push(struct inet *in, struct inet_sock *s, const demi_sgarray_t *sga, struct sched_task *t);
int tcp_pop(struct inet *in, struct inet_sock *s, struct sched_task *t);
void tcp_close(struct inet *in, struct inet_sock *s, bool deliver);
void tcp_fini(struct inet *in);
void tcp_flush_acks(struct inet *in);
void tcp_do_work(struct inet *in);
void tcp_arp_failed(struct inet *in, uint32_t ip);

/* Wakes the background task to run timer work. */
static inline void inet_kick_bg(struct inet *in)
{
    sched_wake(&in->rt->sched, in->bg);
}

/* Sequence arithmetic (RFC 9293 3.4): modulo 2^32. */
static inline bool seq_lt(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) < 0;
}
static inline bool seq_le(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) <= 0;
}
static inline bool seq_gt(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) > 0;
}
static inline bool seq_ge(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) >= 0;
}
static inline uint32_t seq_max(uint32_t a, uint32_t b)
{
    return seq_gt(a, b) ? a : b;
}
static inline uint32_t seq_min(uint32_t a, uint32_t b)
{
    return seq_lt(a, b) ? a : b;
}

/* SipHash-2-4 of @len bytes under @key (RFC 6528 ISNs). */
uint64_t siphash24(const uint64_t key[2], const void *data, size_t len);

#endif
