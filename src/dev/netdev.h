/*
 * The packet device interface: the only thing src/inet knows about a NIC.
 * A device receives frames into heap blocks and transmits packets built
 * from heap-block segments, in the manner of Redis's ConnectionType: one
 * ops table per kind of device (sim, AF_PACKET, AF_XDP, DPDK).
 *
 * Ownership: rx_burst hands the caller one reference per frame (on a block
 * of d->heap); tx_burst takes one reference per segment of each packet it
 * accepts and releases them when the device is done with the bytes (at
 * once for copying devices, after DMA for zero-copy ones). Packets it does
 * not accept stay the caller's.
 */
#ifndef DEMI_DEV_NETDEV_H
#define DEMI_DEV_NETDEV_H

#include "mem/heap.h"

#include <stdint.h>

#define PKT_MAX_SEGS 16
#define ETH_HDR_LEN 14

/* Device capabilities (netdev.offloads). */
enum {
    NETDEV_TX_IPV4_CSUM = 1 << 0, /* fills the IPv4 header checksum */
    NETDEV_TX_L4_CSUM = 1 << 1,   /* fills TCP and UDP checksums */
    NETDEV_RX_CSUM = 1 << 2,      /* verifies checksums and marks frames */
};

/* Packet flags. TX: work asked of the device. RX: what the device checked. */
enum {
    PKT_TX_IPV4_CSUM = 1 << 0,
    PKT_TX_L4_CSUM = 1 << 1,
    PKT_RX_CSUM_GOOD = 1 << 4, /* IPv4 and L4 checksums verified good */
    PKT_RX_CSUM_BAD = 1 << 5,  /* a checksum is wrong: drop */
    PKT_RX_HANDED = 1 << 6,    /* handed over by another instance of the group (inet/group.h) */
};

struct pkt_seg {
    struct heap_blk *blk; /* the reference this segment holds */
    uint8_t *data;
    uint32_t len;
};

/* An outgoing frame: segments in order, starting with the Ethernet header. */
struct pkt {
    uint32_t len; /* sum of the segments */
    uint16_t nseg;
    uint16_t flags;
    uint16_t l3_off; /* offsets for checksum offload: IPv4 header, L4 header */
    uint16_t l4_off;
    struct pkt_seg seg[PKT_MAX_SEGS];
};

/* A received frame. */
struct rxframe {
    struct heap_blk *blk;
    uint8_t *data; /* the Ethernet header */
    uint32_t len;
    uint32_t flags;
};

struct netdev;

struct netdev_ops {
    const char *name;
    /* Up to @max received frames into @out; returns how many (0 if none). */
    int (*rx_burst)(struct netdev *d, struct rxframe *out, int max);
    /* Transmits up to @n packets; returns how many it took (see above). */
    int (*tx_burst)(struct netdev *d, struct pkt *pkts, int n);
    void (*destroy)(struct netdev *d);
    /* Optional: sleeps until a frame may have arrived, @also_fd (if not
     * -1) became readable, or @timeout_ns passed (UINT64_MAX: no limit).
     * NULL when the device can only be polled. */
    void (*wait)(struct netdev *d, uint64_t timeout_ns, int also_fd);
};

struct netdev_stats {
    uint64_t rx_frames, rx_bytes, tx_frames, tx_bytes, tx_full; /* tx_full: packets refused */
    uint64_t copied_bytes; /* bytes the device copied between heap blocks and its own buffers */
};

struct netdev {
    const struct netdev_ops *ops;
    uint8_t mac[6];
    uint32_t mtu;      /* IP MTU: largest frame is mtu + ETH_HDR_LEN */
    uint32_t offloads; /* NETDEV_* */
    struct heap *heap; /* where received frames live */
    struct netdev_stats stats;
};

/* Releases every reference a packet holds (for packets a device refused). */
static inline void pkt_release(struct heap *h, struct pkt *p)
{
    for (uint16_t i = 0; i < p->nseg; i++)
        if (p->seg[i].blk)
            heap_unref(h, p->seg[i].blk);
    p->nseg = 0;
    p->len = 0;
}

#endif
