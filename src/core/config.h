/*
 * Configuration: defaults, then a YAML file in Demikernel's layout, then
 * environment variables (every key also as an upper-case variable, which
 * wins over the file). Parsing never aborts: a bad value gives EINVAL and
 * one line naming the key and the problem.
 *
 * Layout (all sections optional; unknown top-level sections such as an
 * application's own "client:"/"server:" are ignored, with a warning if the
 * name is close to one of ours; a key given twice, a second document or an
 * alias inside our sections is an error):
 *
 *   demikernel:
 *     local_ipv4_addr: 10.0.0.1          # LOCAL_IPV4_ADDR
 *     local_link_addr: "02:00:00:00:00:01"  # LOCAL_LINK_ADDR
 *   raw_socket:
 *     linux_interface_name: veth0        # LINUX_INTERFACE_NAME
 *     backend: auto                      # RAW_SOCKET_BACKEND: auto (AF_XDP, else AF_PACKET) | xdp | packet
 *     xdp_native: false                  # XDP_NATIVE: driver-mode XDP instead of skb mode
 *   dpdk:
 *     eal_init: ["--no-pci", "--vdev=net_memif0"]  # EAL_INIT (space-separated)
 *     mbufs: 8192                        # DPDK_MBUFS: receive buffers (and as many for transmit)
 *     rx_ring: 1024                      # DPDK_RX_RING: receive descriptors
 *     tx_ring: 1024                      # DPDK_TX_RING: transmit descriptors
 *   tcp_socket_options:
 *     keepalive: {enabled: false, time_millis: 7200000, interval: 75000}
 *                                        # KEEPALIVE, KEEPALIVE_TIME_MILLIS, KEEPALIVE_INTERVAL
 *     linger: {enabled: false, time_seconds: 0}   # LINGER (seconds; setting it enables);
 *                                        #   the SO_LINGER every TCP socket starts with
 *     nodelay: true                      # NODELAY
 *   inetstack_config:
 *     mtu: 1500                          # MTU
 *     mss: 1460                          # MSS
 *     enable_jumbo_frames: false         # ENABLE_JUMBO_FRAMES
 *     tcp_checksum_offload: false        # TCP_CHECKSUM_OFFLOAD: accepted, ignored (catnip uses
 *     udp_checksum_offload: false        # UDP_CHECKSUM_OFFLOAD   the port's offloads when offered)
 *     arp_cache_ttl: 15                  # ARP_CACHE_TTL (duration)
 *     arp_request_timeout: 1             # ARP_REQUEST_TIMEOUT (duration)
 *     arp_request_retries: 5             # ARP_REQUEST_RETRIES
 *     arp_table: {"02:00:00:00:00:02": "10.0.0.2"}   # ARP_TABLE="mac=ip,mac=ip"
 *     tcp_congestion_control: cubic      # TCP_CONGESTION_CONTROL: cubic | newreno
 *     tcp_delayed_ack: 0                 # TCP_DELAYED_ACK (duration; 0: ACK at the end of each poll pass)
 *     tcp_msl: 30                        # TCP_MSL (duration; TIME_WAIT lasts 2 MSL)
 *     tcp_rcvbuf: 4M                     # TCP_RCVBUF (receive window, up to 1G)
 *     tcp_sndbuf: 4M                     # TCP_SNDBUF
 *     tcp_sack: true                     # TCP_SACK
 *     tcp_tail_loss_probe: true          # TCP_TAIL_LOSS_PROBE (RFC 8985 7)
 *     tcp_timestamps: true               # TCP_TIMESTAMPS
 *     tcp_window_scale: true             # TCP_WINDOW_SCALE
 *     tcp_rto_min: 200ms                 # TCP_RTO_MIN (duration)
 *     tcp_syn_retries: 6                 # TCP_SYN_RETRIES
 *     tcp_syncookies: 1                  # TCP_SYNCOOKIES: 0 off, 1 when a listener's SYN
 *                                        #   queue is full, 2 always (RFC 4987 3.6)
 *     tcp_retries2: 15                   # TCP_RETRIES2 (timeouts or unanswered window probes before ETIMEDOUT)
 *     tcp_orphan_retries: 8              # TCP_ORPHAN_RETRIES (the same, and all window probes, once closed)
 *     tcp_max_orphans: 0                 # TCP_MAX_ORPHANS (closed connections with data left that may
 *                                        #   linger; more are reset; 0: heap_size / (2 * tcp_sndbuf), at least 16)
 *     tcp_fin_timeout: 60                # TCP_FIN_TIMEOUT (duration; a closed connection's FIN_WAIT_2)
 *   libdemi:                             # ours
 *     libos: catnap                      # LIBOS
 *     heap_size: 4G                      # HEAP_SIZE (bytes; K, M, G suffixes)
 *     heap_reserve: 256M                 # HEAP_RESERVE: kept from the application for
 *                                        #   the stack's receive path (default: heap_size/16,
 *                                        #   at least 2M; 0: none; at most heap_size/2)
 *     hugepages: auto                    # HUGEPAGES: auto | on | off
 *     spin_us: 1000                      # SPIN_US: busy-poll this long before a
 *                                        #   waiting thread sleeps (every network libOS)
 *     queues: 1                          # QUEUES: instances (threads) of this process that
 *                                        #   share the device, one queue each (1..16)
 *     queue: 0                           # QUEUE: this instance's queue; unset: the lowest
 *                                        #   one no instance has (the order of demi_init)
 *
 * A duration is a number of seconds (fractions allowed) or a number with a
 * unit: ns, us, ms, s.
 */
#ifndef DEMI_CORE_CONFIG_H
#define DEMI_CORE_CONFIG_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_ARP  64
#define CONFIG_MAX_EAL  64
#define CONFIG_MAX_QUEUES 16 /* libdemi.queues at most */
#define CONFIG_IFNAMSIZ 16

enum config_huge { CONFIG_HUGE_AUTO = 0, CONFIG_HUGE_ON, CONFIG_HUGE_OFF };
enum config_cc { CONFIG_CC_CUBIC = 0, CONFIG_CC_NEWRENO };

struct config_arp {
    struct in_addr ip;
    uint8_t mac[6];
};

struct config {
    /* libdemi */
    char libos[32];
    uint64_t heap_size;
    uint64_t heap_reserve; /* see config_heap_reserve */
    bool heap_reserve_set;
    int hugepages; /* enum config_huge */
    uint32_t spin_us;
    uint32_t queues; /* 1..CONFIG_MAX_QUEUES */
    uint32_t queue; /* UINT32_MAX: unset */

    /* demikernel */
    bool has_local_ipv4_addr;
    struct in_addr local_ipv4_addr;
    bool has_local_link_addr;
    uint8_t local_link_addr[6];

    /* raw_socket */
    char linux_interface_name[CONFIG_IFNAMSIZ];
    char raw_backend[8];
    bool xdp_native;

    /* dpdk: eal_argv[i] are heap strings owned by the config. */
    int eal_argc;
    char *eal_argv[CONFIG_MAX_EAL];
    uint32_t dpdk_mbufs;
    uint32_t dpdk_rx_ring;
    uint32_t dpdk_tx_ring;

    /* tcp_socket_options */
    bool keepalive;
    uint32_t keepalive_time_ms;
    uint32_t keepalive_interval_ms;
    bool linger;
    uint32_t linger_secs;
    bool nodelay;

    /* inetstack_config */
    uint32_t mtu;
    uint32_t mss;
    bool mss_set; /* MSS given by file or environment; otherwise it follows MTU - 40. */
    bool enable_jumbo_frames;
    bool tcp_checksum_offload;
    bool udp_checksum_offload;
    uint64_t arp_cache_ttl_ns;
    uint64_t arp_request_timeout_ns;
    uint32_t arp_request_retries;
    int n_arp;
    struct config_arp arp_table[CONFIG_MAX_ARP];
    int tcp_cc; /* enum config_cc */
    uint64_t tcp_delack_ns;
    uint64_t tcp_msl_ns;
    uint64_t tcp_rcvbuf;
    uint64_t tcp_sndbuf;
    bool tcp_sack;
    bool tcp_tlp;
    bool tcp_timestamps;
    bool tcp_wscale;
    uint64_t tcp_rto_min_ns;
    uint32_t tcp_syn_retries;
    uint32_t tcp_syncookies; /* 0 off, 1 when the SYN queue is full, 2 always */
    uint32_t tcp_retries2;
    uint32_t tcp_orphan_retries;
    uint32_t tcp_max_orphans; /* 0: automatic */
    uint64_t tcp_fin_timeout_ns;
};

/* Fills in the defaults (catnap, 4 GiB heap, hugepages auto, spin 1000 us,
 * nodelay on, MTU 1500, MSS 1460, ARP TTL 15 s, timeout 1 s, 5 retries). */
void config_defaults(struct config *c);

/*
 * Full load: defaults, then the file at @path (NULL: the file named by
 * CONFIG_PATH, or none if that is unset), then the environment, then
 * validation. Returns 0, EINVAL (bad value or bad YAML: @err names the key
 * or the line), or a problem with the file, @err naming its path: the errno
 * of opening it (ENOENT, EACCES), EINVAL for anything but a regular file (a
 * FIFO, a device: never waited for), EISDIR, or EFBIG past 1 MiB.
 */
int config_load(struct config *c, const char *path, char *err, size_t errlen);

/* Parses YAML text over what @c holds already (no environment, no final
 * validation). For config_load() and for tests. */
int config_parse_yaml(struct config *c, const char *text, size_t len, char *err, size_t errlen);

/* Applies environment variables over what @c holds. */
int config_apply_env(struct config *c, char *err, size_t errlen);

/* Cross-field checks (known libOS name, MTU range, MSS <= MTU - 40, ...). */
int config_validate(const struct config *c, char *err, size_t errlen);

/* Frees what the config owns (EAL strings). Safe on a defaulted config. */
void config_free(struct config *c);

/* Logs the configuration in effect under DEMI_LOG=debug (nothing below):
 * one line per environment variable, "config: NAME = VALUE", with
 * " (default)" after a value nobody set. Only reads @c. */
void config_log(const struct config *c);

/* The heap reserve in bytes: libdemi.heap_reserve if given, else 1/16 of
 * the heap, at least one 2 MiB chunk. */
uint64_t config_heap_reserve(const struct config *c);

/* Value parsers, shared with tools and tests. Return 0 or EINVAL. */
int config_parse_ipv4(const char *s, struct in_addr *out);
int config_parse_mac(const char *s, uint8_t out[6]);
int config_parse_bool(const char *s, bool *out);
int config_parse_u64(const char *s, uint64_t *out);  /* decimal, no sign */
int config_parse_size(const char *s, uint64_t *out); /* bytes with K/M/G suffix */
int config_parse_duration(const char *s, uint64_t *out_ns);

#endif
