/*
 * dev/packet: a netdev over an AF_PACKET socket with TPACKET_V2 receive
 * and transmit rings mapped into our memory, busy-polled, and
 * PACKET_QDISC_BYPASS so transmits skip the kernel's queueing layer. The
 * fallback device of catpowder (TPACKET_V3 is not used: it hands over a
 * block only when it is full or its timer, at least 1 ms, expires).
 *
 * Copies are forced by the device: ring frames belong to the kernel and
 * must be handed back at once, so a received frame is copied into a heap
 * block, and a packet to send is gathered into a ring frame. The only
 * system call on the data path is the transmit kick (send with no data).
 */
#include "dev/packet.h"

#include "core/log.h"
#include "dev/netif.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define RING_FRAMES 4096
#define RING_BLOCK (1u << 16)

struct packet_dev {
    struct netdev d;
    int fd;
    uint8_t *map;
    size_t map_len;
    uint32_t frame_size;
    uint32_t nframes;
    uint8_t *rx_ring, *tx_ring;
    uint32_t rx_next, tx_next;
    uint32_t tx_pending; /* frames queued since the last kick */
    bool csum_warned;
};

static struct tpacket2_hdr *frame(uint8_t *ring, uint32_t size, uint32_t i)
{
    return (struct tpacket2_hdr *)(ring + (size_t)i * size);
}

/* The status word is shared with the kernel: loads acquire (the frame's
 * bytes are valid once we see TP_STATUS_USER / AVAILABLE), stores release
 * (the kernel must see our bytes before it sees the new status). */
static uint32_t status_load(struct tpacket2_hdr *h)
{
    return __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
}

static void status_store(struct tpacket2_hdr *h, uint32_t v)
{
    __atomic_store_n(&h->tp_status, v, __ATOMIC_RELEASE);
}

static int pk_rx(struct netdev *d, struct rxframe *out, int max)
{
    struct packet_dev *p = (struct packet_dev *)d;
    int n = 0;
    while (n < max) {
        struct tpacket2_hdr *h = frame(p->rx_ring, p->frame_size, p->rx_next);
        uint32_t st = status_load(h);
        if (!(st & TP_STATUS_USER))
            break;
        const struct sockaddr_ll *sll =
            (const struct sockaddr_ll *)((uint8_t *)h + TPACKET_ALIGN(sizeof(struct tpacket2_hdr)));
        uint32_t len = h->tp_snaplen;
        bool keep = sll->sll_pkttype != PACKET_OUTGOING && h->tp_len == len && len >= 14;
        if (keep && (st & TP_STATUS_CSUMNOTREADY) && !p->csum_warned) {
            p->csum_warned = true;
            log_warn("packet: frames arrive with unfinished checksums; turn offloads off on the sender "
                     "(ethtool -K IF tx off) or they are dropped as corrupt");
        }
        if (keep) {
            struct heap_blk *b = heap_alloc(d->heap, len);
            if (b) {
                uint8_t *dst = heap_blk_data(d->heap, b);
                memcpy(dst, (uint8_t *)h + h->tp_mac, len); /* forced: the ring frame goes back now */
                d->stats.copied_bytes += len;
                out[n++] = (struct rxframe){b, dst, len, 0};
                d->stats.rx_frames++;
                d->stats.rx_bytes += len;
            }
        }
        status_store(h, TP_STATUS_KERNEL);
        p->rx_next = (p->rx_next + 1) % p->nframes;
    }
    return n;
}

static void kick(struct packet_dev *p)
{
    if (!p->tx_pending)
        return;
    /* Tells the kernel to send the frames marked SEND_REQUEST. EAGAIN and
     * ENOBUFS mean it is busy: the frames stay queued for the next kick. */
    send(p->fd, NULL, 0, MSG_DONTWAIT);
    p->tx_pending = 0;
}

static int pk_tx(struct netdev *d, struct pkt *pkts, int n)
{
    struct packet_dev *p = (struct packet_dev *)d;
    const uint32_t off = TPACKET_ALIGN(sizeof(struct tpacket2_hdr));
    int sent = 0;
    for (; sent < n; sent++) {
        struct pkt *k = &pkts[sent];
        struct tpacket2_hdr *h = frame(p->tx_ring, p->frame_size, p->tx_next);
        uint32_t st = status_load(h);
        if (st != TP_STATUS_AVAILABLE && st != TP_STATUS_WRONG_FORMAT)
            break; /* the ring is full: the caller keeps the rest */
        if (k->len > p->frame_size - off || k->len > d->mtu + 14) {
            pkt_release(d->heap, k); /* cannot be sent on this link; the stack never builds these */
            continue;
        }
        uint8_t *dst = (uint8_t *)h + off;
        for (uint16_t i = 0; i < k->nseg; i++) {
            memcpy(dst, k->seg[i].data, k->seg[i].len); /* forced: the frame is the kernel's */
            dst += k->seg[i].len;
        }
        h->tp_len = k->len;
        d->stats.copied_bytes += k->len;
        d->stats.tx_frames++;
        d->stats.tx_bytes += k->len;
        pkt_release(d->heap, k);
        status_store(h, TP_STATUS_SEND_REQUEST);
        p->tx_next = (p->tx_next + 1) % p->nframes;
        p->tx_pending++;
    }
    kick(p);
    if (sent < n)
        d->stats.tx_full += (uint64_t)(n - sent);
    return sent;
}

static void pk_destroy(struct netdev *d)
{
    struct packet_dev *p = (struct packet_dev *)d;
    /* What the kernel dropped because the ring was full, which our own
     * counters cannot see (DEMI_LOG=info; tests read it). */
    struct tpacket_stats st;
    socklen_t len = sizeof(st);
    if (log_level_g >= LOGL_INFO && p->fd >= 0 && getsockopt(p->fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0)
        log_info("packet: kernel: rx_frames=%u rx_dropped=%u", st.tp_packets, st.tp_drops);
    if (p->map)
        munmap(p->map, p->map_len);
    if (p->fd >= 0)
        close(p->fd);
    free(p);
}

static void pk_wait(struct netdev *d, uint64_t timeout_ns, int also_fd)
{
    netif_wait_fd(((struct packet_dev *)d)->fd, also_fd, timeout_ns);
}

static const struct netdev_ops packet_ops = {"packet", pk_rx, pk_tx, pk_destroy, pk_wait};

int packet_dev_create(struct heap *heap, const char *ifname, bool promisc, uint32_t fanout, struct netdev **out)
{
    uint8_t mac[6];
    uint32_t mtu;
    int ifindex;
    int e = netif_info(ifname, mac, &mtu, &ifindex);
    if (e) {
        log_error("packet: interface '%s': %s", ifname, e == ENODEV ? "no such interface" : strerror(e));
        return e;
    }
    struct packet_dev *p = calloc(1, sizeof(*p));
    if (!p)
        return ENOMEM;
    p->fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
    if (p->fd < 0) {
        e = errno;
        log_error("packet: AF_PACKET socket: %s%s", strerror(e),
                  e == EPERM || e == EACCES ? " (needs CAP_NET_RAW: run as root)" : "");
        free(p);
        return e;
    }
    /* Frames hold the TPACKET_V2 header, the link address and the frame. */
    uint32_t need = TPACKET2_HDRLEN + 14 + mtu + 4;
    p->frame_size = 2048;
    while (p->frame_size < need)
        p->frame_size *= 2;
    uint32_t block = p->frame_size > RING_BLOCK ? p->frame_size : RING_BLOCK;
    p->nframes = RING_FRAMES;
    struct tpacket_req req = {
        .tp_block_size = block,
        .tp_block_nr = (uint32_t)((uint64_t)RING_FRAMES * p->frame_size / block),
        .tp_frame_size = p->frame_size,
        .tp_frame_nr = RING_FRAMES,
    };
    int v = TPACKET_V2, one = 1;
    struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = ifindex};
    if (setsockopt(p->fd, SOL_PACKET, PACKET_VERSION, &v, sizeof(v)) < 0 ||
        setsockopt(p->fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) < 0 ||
        setsockopt(p->fd, SOL_PACKET, PACKET_TX_RING, &req, sizeof(req)) < 0) {
        e = errno;
        log_error("packet: TPACKET_V2 rings on '%s': %s", ifname, strerror(e));
        goto fail;
    }
    if (setsockopt(p->fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)) < 0)
        log_info("packet: no PACKET_QDISC_BYPASS (%s); transmits go through the qdisc", strerror(errno));
    p->map_len = 2 * (size_t)req.tp_block_size * req.tp_block_nr;
    p->map = mmap(NULL, p->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, p->fd, 0);
    if (p->map == MAP_FAILED) {
        e = errno;
        p->map = NULL;
        log_error("packet: mapping the rings: %s", strerror(e));
        goto fail;
    }
    p->rx_ring = p->map;
    p->tx_ring = p->map + p->map_len / 2;
    if (bind(p->fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
        e = errno;
        log_error("packet: bind to '%s': %s", ifname, strerror(e));
        goto fail;
    }
    /* Instances sharing the interface: the kernel hands each frame to one
     * socket of the group by its flow hash (fragments reassembled first). */
    if (fanout) {
        uint32_t mode = PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG;
        int arg = (int)((fanout & 0xffffu) | (mode << 16));
        if (setsockopt(p->fd, SOL_PACKET, PACKET_FANOUT, &arg, sizeof(arg)) < 0) {
            e = errno;
            log_error("packet: PACKET_FANOUT group on '%s': %s", ifname, strerror(e));
            goto fail;
        }
    }
    if (promisc) {
        struct packet_mreq mr = {.mr_ifindex = ifindex, .mr_type = PACKET_MR_PROMISC};
        if (setsockopt(p->fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0)
            log_warn("packet: promiscuous mode on '%s': %s", ifname, strerror(errno));
    }
    p->d.ops = &packet_ops;
    memcpy(p->d.mac, mac, 6);
    p->d.mtu = mtu;
    p->d.offloads = 0;
    p->d.heap = heap;
    log_info("packet: TPACKET_V2 on %s (MTU %u, %u-byte frames)", ifname, mtu, p->frame_size);
    *out = &p->d;
    return 0;
fail:
    pk_destroy(&p->d);
    return e;
}
