/*
 * Hand-built frames for crafted-segment tests, in the lwIP manner: a fake
 * host that exists only as the frames a test writes (Ethernet II, ARP,
 * IPv4, TCP with options, UDP, ICMP), a tap that records what a node
 * transmits, and parsers that check those frames' checksums and read their
 * fields. Checksums are computed here independently of the stack's own
 * code. Nothing here keeps a pointer into a frame it was given.
 */
#ifndef DEMI_TESTS_CRAFT_H
#define DEMI_TESTS_CRAFT_H

#include "simworld.h"

#include <stdbool.h>
#include <stdint.h>

#define CRAFT_FRAME_MAX 1600
#define CAP_MAX         256

/* A host that exists only as frames: its MAC and IPv4 address (network order). */
struct craft_host {
    uint8_t mac[6];
    uint32_t ip;
};

/* The frames one device transmitted since the last cap_clear (the first
 * CAP_MAX of them are kept; total counts all). */
struct capture {
    struct simworld *w;
    struct netdev *dev;
    int n;
    uint64_t total;
    uint64_t t[CAP_MAX]; /* virtual time of each frame */
    uint32_t len[CAP_MAX];
    uint8_t frame[CAP_MAX][CRAFT_FRAME_MAX];
};

/* Records every frame @dev transmits on @w's network (and lets it go on). */
void cap_attach(struct simworld *w, struct capture *c, struct netdev *dev);
void cap_clear(struct capture *c);

/* TCP options, built in order into at most 40 bytes. */
struct tcp_optbuf {
    uint8_t b[40];
    uint32_t n;
};

void opt_nop(struct tcp_optbuf *o);
void opt_mss(struct tcp_optbuf *o, uint16_t mss);
void opt_ws(struct tcp_optbuf *o, uint8_t shift);
void opt_sack_ok(struct tcp_optbuf *o);
void opt_ts(struct tcp_optbuf *o, uint32_t tsval, uint32_t tsecr);
void opt_sack(struct tcp_optbuf *o, const uint32_t *edges, int nblocks);
void opt_raw(struct tcp_optbuf *o, const uint8_t *bytes, uint32_t n);

struct tcp_spec {
    uint16_t sport, dport;
    uint32_t seq, ack;
    uint8_t flags;
    uint16_t win;
    const struct tcp_optbuf *opt; /* NULL: none; padded with EOL to 4 bytes */
    const void *data;
    uint32_t dlen;
};

/* Internet checksum of @len bytes plus @sum (RFC 1071), folded, inverted. */
uint16_t craft_csum(const void *data, uint32_t len, uint32_t sum);

/* Ethernet + IPv4 (20-byte header, DF, TTL 64) around @l4 of @l4len bytes
 * with protocol @proto; the IP checksum is filled, the L4 one is not
 * touched. Returns the frame's length. */
uint32_t craft_ipv4(uint8_t *buf, const struct craft_host *from, const uint8_t to_mac[6], uint32_t to_ip, uint8_t proto,
                    const void *l4, uint32_t l4len);
/* Recomputes the IPv4 header checksum of a frame (its IHL must fit). */
void craft_fix_ip(uint8_t *frame);
/* Recomputes the TCP, UDP or ICMP checksum of a frame over the bytes the
 * IP total length covers (nothing if the header does not fit @len). */
void craft_fix_l4(uint8_t *frame, uint32_t len);
/* Inserts @n (a multiple of 4) bytes of IP options into a frame built by
 * craft_ipv4, fixing IHL, total length and both checksums. Returns the new
 * frame length. */
uint32_t craft_ip_options(uint8_t *frame, uint32_t len, const uint8_t *opts, uint32_t n);
/* A whole TCP segment in a frame, every checksum right. */
uint32_t craft_tcp(uint8_t *buf, const struct craft_host *from, const uint8_t to_mac[6], uint32_t to_ip,
                   const struct tcp_spec *s);
/* A UDP datagram; @csum false sends checksum 0 ("none", RFC 768). */
uint32_t craft_udp(uint8_t *buf, const struct craft_host *from, const uint8_t to_mac[6], uint32_t to_ip, uint16_t sport,
                   uint16_t dport, const void *data, uint32_t dlen, bool csum);
/* An ICMP message: type, code, the 4 bytes after the checksum, and data. */
uint32_t craft_icmp(uint8_t *buf, const struct craft_host *from, const uint8_t to_mac[6], uint32_t to_ip, uint8_t type,
                    uint8_t code, uint16_t id, uint16_t seq, const void *data, uint32_t dlen);
/* An ARP packet for IPv4 over Ethernet, padded to 60 bytes. */
uint32_t craft_arp(uint8_t *buf, const uint8_t eth_src[6], const uint8_t eth_dst[6], uint16_t op, const uint8_t sha[6],
                   uint32_t spa, const uint8_t tha[6], uint32_t tpa);

/* A transmitted frame, read back. */
struct ip_view {
    const uint8_t *eth_dst, *eth_src;
    uint16_t eth_type;
    uint32_t src, dst; /* network order */
    uint8_t proto, ttl;
    uint16_t id, frag, tlen;
    const uint8_t *ip; /* the IPv4 header */
    const uint8_t *l4;
    uint32_t l4len;
};

struct tcp_view {
    struct ip_view ip;
    uint16_t sport, dport;
    uint32_t seq, ack;
    uint8_t flags;
    uint16_t win;
    uint32_t hlen;
    bool has_mss, has_ws, sack_ok, has_ts;
    uint16_t mss;
    uint8_t ws;
    uint32_t tsval, tsecr;
    int nsack;
    uint32_t sack[4][2];
    int nopts; /* options other than NOP and EOL */
    const uint8_t *data;
    uint32_t dlen;
};

/* Parses an IPv4 frame; fails the test if its IP checksum is wrong.
 * Returns false for frames that are not IPv4. */
bool craft_ip_view(const uint8_t *frame, uint32_t len, struct ip_view *v);
/* Parses a TCP segment; fails the test on a bad IP or TCP checksum or
 * malformed options. Returns false for frames that are not TCP. */
bool craft_tcp_view(const uint8_t *frame, uint32_t len, struct tcp_view *v);

#endif
