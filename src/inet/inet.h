/*
 * src/inet: libdemi's device-independent TCP/IP stack (Ethernet II, ARP,
 * IPv4, ICMP echo, UDP, TCP per RFC 9293). One stack instance runs on one
 * device and one runtime; it is itself a libOS (its PDPIX face is
 * inet_libos()), so catnip and catpowder are a device constructor plus
 * inet_create(). Tests run it on dev/sim with a virtual clock.
 *
 * The stack never blocks, never allocates on the per-packet path except
 * heap blocks for headers and frames, and never copies payload it can
 * reference instead.
 */
#ifndef DEMI_INET_INET_H
#define DEMI_INET_INET_H

#include "core/config.h"
#include "core/runtime.h"
#include "dev/netdev.h"
#include "libos/libos.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

enum inet_cc { INET_CC_CUBIC = 0, INET_CC_NEWRENO = 1 };

struct inet_config {
    struct in_addr addr; /* our IPv4 address */
    uint32_t mtu;        /* IP MTU we send (<= the device's) */
    uint32_t mss;        /* MSS we advertise (<= mtu - 40) */
    bool rx_csum_skip;   /* trust PKT_RX_CSUM_GOOD from the device */

    /* ARP */
    uint64_t arp_ttl_ns;
    uint64_t arp_timeout_ns; /* per request */
    uint32_t arp_retries;
    int n_arp_static;
    const struct config_arp *arp_static;

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
    uint32_t tcp_challenge_ack_limit; /* per second (RFC 5961) */
    uint32_t tcp_backlog_max;
    uint32_t tcp_syncookies; /* RFC 4987 3.6: 0 off, 1 when a SYN queue is full, 2 always */

    /* Determinism for tests: 0 draws from getrandom(). */
    uint64_t seed;
};

/* Defaults (RFC values and latency-first choices), then the keys of
 * @cfg that apply (local address, MTU, MSS, ARP settings, TCP options). */
void inet_config_init(struct inet_config *ic, const struct config *cfg);

struct inet;

/* Creates a stack on @dev: registers its fast-path poll task on @rt. The
 * device stays the caller's (destroy it after the stack). */
int inet_create(struct runtime *rt, struct netdev *dev, const struct inet_config *cfg, struct inet **out);
void inet_destroy(struct inet *in);
struct libos *inet_libos(struct inet *in);
/* The libOS destroys the device with itself (catnip, catpowder). */
void inet_own_device(struct inet *in);
/* The libOS of a device libOS (catnip, catpowder): the stack, configured
 * from @rt's config with the MTU clamped to the device's, on @dev, which it
 * then owns (destroyed here if the stack cannot start). @who names the
 * libOS and @where the device in log lines. */
int inet_libos_create(struct runtime *rt, struct netdev *dev, const char *who, const char *where, struct libos **out);
struct inet *inet_of(struct libos *l);

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
    X(tcp_syn_dropped) X(tcp_conns_opened) X(tcp_conns_accepted) X(tcp_conns_freed) \
    X(tcp_tx_segs) X(tcp_retrans_segs) X(tcp_rto_expiries) X(tcp_fast_retransmits) X(tcp_tlp_probes) \
    X(tcp_syncookies_sent) X(tcp_syncookies_ok) X(tcp_syncookies_failed) X(tcp_syn_evicted) \
    X(tcp_rcv_collapsed_bytes) X(tcp_ofo_pruned) X(tcp_orphan_aborts)
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

/* Counters of the TCP connection behind queue @q of this stack's libOS. */
int inet_tcp_conn_stats(struct libos *l, void *q, struct tcp_conn_stats *out);

#endif
