/*
 * src/inet: libdemi's device-independent TCP/IP stack (Ethernet II, ARP,
 * IPv4, ICMP echo, UDP, TCP per RFC 9293). One stack instance runs on one
 * device and one runtime. It knows nothing of libOSes or of the global
 * configuration: src/libos/inetos.c makes it a libOS for catnip and
 * catpowder (the ops table, the configuration, the device's lifetime), and
 * tests drive it through the socket calls below on dev/sim with a virtual
 * clock.
 *
 * The stack never blocks, never allocates on the per-packet path except
 * heap blocks for headers and frames, and never copies payload it can
 * reference instead.
 */
#ifndef DEMI_INET_INET_H
#define DEMI_INET_INET_H

#include "core/runtime.h"
#include "dev/netdev.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

enum inet_cc { INET_CC_CUBIC = 0, INET_CC_NEWRENO = 1 };

/* A neighbour whose MAC is fixed (never resolved, never expires). */
struct inet_arp {
    struct in_addr ip;
    uint8_t mac[6];
};

#define INET_ARP_STATIC_MAX 64

struct inet_config {
    struct in_addr addr; /* our IPv4 address */
    uint32_t mtu;        /* IP MTU we send (<= the device's) */
    uint32_t mss;        /* MSS we advertise (<= mtu - 40) */
    bool rx_csum_skip;   /* trust PKT_RX_CSUM_GOOD from the device */

    /* Instances sharing the device (inet/group.h): NULL when alone. The
     * stack hands frames it does not own to their owner, and takes its
     * ephemeral ports from those with port % group_size == group_index. */
    struct inet_group *group;
    uint32_t group_index, group_size;

    /* ARP */
    uint64_t arp_ttl_ns;
    uint64_t arp_timeout_ns; /* per request */
    uint32_t arp_retries;
    int n_arp_static;
    struct inet_arp arp_static[INET_ARP_STATIC_MAX];

    /* TCP */
    uint32_t tcp_rcvbuf;    /* receive window in bytes (up to 1 GiB) */
    uint32_t tcp_sndbuf;    /* unsent bytes a connection queues before pushes wait */
    bool tcp_nodelay;       /* Nagle off (the default) */
    uint64_t tcp_delack_ns; /* 0: acknowledge at the end of the poll pass */
    int tcp_cc;             /* enum inet_cc */
    bool tcp_sack;          /* RFC 2018 / 6675 */
    bool tcp_tlp;           /* tail loss probes (RFC 8985 7), with SACK */
    bool tcp_timestamps;    /* RFC 7323 */
    bool tcp_wscale;        /* RFC 7323 */
    uint64_t tcp_rto_init_ns;
    uint64_t tcp_rto_min_ns;
    uint64_t tcp_rto_max_ns;
    uint32_t tcp_syn_retries;
    uint32_t tcp_synack_retries;
    uint32_t tcp_retries2;       /* RTOs, or unanswered window probes, before a connection gives up */
    uint32_t tcp_orphan_retries; /* the same for a connection the application closed */
    uint32_t tcp_max_orphans;    /* closed connections with data left that may linger; more are reset (0: no cap) */
    uint64_t tcp_msl_ns;         /* TIME_WAIT lasts 2 * MSL */
    uint64_t tcp_fin_timeout_ns; /* orphaned FIN_WAIT_2 */
    bool tcp_keepalive;
    uint64_t tcp_keepidle_ns;
    uint64_t tcp_keepintvl_ns;
    uint32_t tcp_keepcnt;
    int32_t tcp_linger;         /* SO_LINGER a new TCP socket starts with: -1 off, else seconds (0: abortive close) */
    uint32_t tcp_challenge_ack_limit; /* per second (RFC 5961) */
    uint32_t tcp_backlog_max;
    uint32_t tcp_syncookies; /* RFC 4987 3.6: 0 off, 1 when a SYN queue is full, 2 always */

    /* Determinism for tests: 0 draws from getrandom(). */
    uint64_t seed;
};

struct inet;
struct inet_sock;

/* Creates a stack on @dev: registers its fast-path poll task on @rt. The
 * device stays the caller's (destroy it after the stack). */
int inet_create(struct runtime *rt, struct netdev *dev, const struct inet_config *cfg, struct inet **out);
/* Closes every socket (no results are delivered) and frees the stack. */
void inet_destroy(struct inet *in);

struct libos;
/* The owner under which an accepted connection's queue goes into
 * @rt's descriptor table (the libOS that serves the descriptor: inetos.c
 * sets it; a test without a libOS gives any tag). The stack only stores
 * it. Until it is set, accepted connections are reset and their accepts
 * fail with EINVAL. */
void inet_set_qowner(struct inet *in, struct libos *owner);

/* Sockets, with the contract of the libOS ops of the same names
 * (libos/libos.h): the caller checked the arguments; on return 0 an
 * operation with a task owns it and completes it, possibly before
 * returning. Every call flushes the transmit batch before returning. */
int inet_socket(struct inet *in, int type, struct inet_sock **out);
int inet_bind(struct inet *in, struct inet_sock *s, const struct sockaddr_in *a);
int inet_listen(struct inet *in, struct inet_sock *s, int backlog);
int inet_accept(struct inet *in, struct inet_sock *s, struct sched_task *t);
int inet_connect(struct inet *in, struct inet_sock *s, const struct sockaddr_in *a, struct sched_task *t);
/* @to is NULL for a connected socket. */
int inet_push(struct inet *in, struct inet_sock *s, const demi_sgarray_t *sga, const struct sockaddr_in *to,
              struct sched_task *t);
int inet_pop(struct inet *in, struct inet_sock *s, struct sched_task *t);
/* Closes at once; pending operations fail with ECANCELED. */
int inet_close(struct inet *in, struct inet_sock *s);
int inet_setsockopt(struct inet *in, struct inet_sock *s, int level, int name, const void *val, socklen_t len);
int inet_getsockopt(struct inet *in, struct inet_sock *s, int level, int name, void *val, socklen_t *len);
int inet_getpeername(struct inet *in, struct inet_sock *s, struct sockaddr_in *out);
int inet_getsockname(struct inet *in, struct inet_sock *s, struct sockaddr_in *out);

/* The stack's counters, one X(name) each: the struct below, and the names
 * inet_destroy logs them under (DEMI_LOG=info). */
/* clang-format off */
#define INET_STATS(X) \
    X(eth_rx) X(eth_rx_bad) X(eth_rx_other_type) X(eth_rx_not_ours) \
    X(arp_rx) X(arp_rx_bad) X(arp_req_sent) X(arp_reply_sent) X(arp_timeouts) X(arp_queue_drops) \
    X(arp_req_limited) X(arp_no_entry_drops) X(arp_addr_conflicts) X(arp_rx_ignored) \
    X(ip_rx) X(ip_rx_bad_hdr) X(ip_rx_bad_csum) X(ip_rx_frag_dropped) X(ip_rx_not_ours) X(ip_rx_other_proto) \
    X(ip_frag_reassembled) X(ip_frag_timeouts) X(ip_frag_sent) \
    X(ip_tx) X(ip_tx_no_route) X(tx_full_drops) X(loopback) X(loopback_drops) \
    X(icmp_rx) X(icmp_rx_bad) X(icmp_echo_replies) X(icmp_unreach_sent) \
    X(udp_rx) X(udp_rx_bad) X(udp_rx_bad_csum) X(udp_rx_no_port) X(udp_rx_queue_full) X(udp_tx) \
    X(tcp_rx) X(tcp_rx_bad_hdr) X(tcp_rx_bad_csum) X(tcp_rx_bad_opt) X(tcp_rx_no_conn) \
    X(tcp_rst_sent) X(tcp_rx_out_of_window) X(tcp_challenge_acks) X(tcp_paws_drops) \
    X(tcp_syn_rx) X(tcp_syn_dropped) X(tcp_conns_opened) X(tcp_conns_accepted) X(tcp_conns_freed) \
    X(tcp_tx_segs) X(tcp_retrans_segs) X(tcp_rto_expiries) X(tcp_fast_retransmits) X(tcp_tlp_probes) \
    X(tcp_syncookies_sent) X(tcp_syncookies_ok) X(tcp_syncookies_failed) X(tcp_syn_evicted) \
    X(tcp_rcv_collapsed_bytes) X(tcp_ofo_pruned) X(tcp_orphan_aborts) \
    X(group_handed_out) X(group_handed_in) X(group_arp_copies) X(group_hand_drops)
/* clang-format on */

struct inet_stats {
#define INET_STAT_FIELD(name) uint64_t name;
    INET_STATS(INET_STAT_FIELD)
#undef INET_STAT_FIELD
};

const struct inet_stats *inet_stats(const struct inet *in);

/* Per-connection counters, for tests and benchmarks. */
struct tcp_conn_stats {
    uint64_t segs_out, segs_in;
    uint64_t bytes_sent, bytes_acked, bytes_received;
    uint64_t retrans_segs, retrans_bytes;
    uint64_t rto_expiries, fast_retransmits, sack_recoveries, newreno_recoveries, tlp_probes;
    uint64_t dupacks_in, ooo_segs, ooo_bytes, dup_segs_in;
    uint64_t zero_window_probes, keepalive_probes;
    uint32_t max_inflight; /* most bytes ever outstanding */
    uint32_t cwnd, ssthresh, srtt_us, rto_us, snd_wnd, rcv_wnd, mss;
    uint8_t state;
    bool sack_ok, ts_ok, wscale_ok;
    uint8_t snd_wscale, rcv_wscale;
};

/* Counters of the TCP connection of socket @s (ENOTCONN: none). */
int inet_tcp_conn_stats(struct inet *in, struct inet_sock *s, struct tcp_conn_stats *out);

#endif
