/*
 * dev/xdp: a netdev over an AF_XDP socket (libxdp/libbpf from Debian): one
 * queue, a UMEM carved from the runtime's DMA heap (half of its frames
 * feed the fill ring, half serve transmits), busy-polled rings, and a
 * kick only when the kernel asks for one (XDP_USE_NEED_WAKEUP). libxdp
 * attaches its default program that redirects the queue to the socket.
 *
 * On veth the kernel offers copy mode only (zero-copy gives EOPNOTSUPP):
 * it copies frames into and out of the UMEM anyway, and so do we, once
 * each way, because a UMEM frame must go back to the fill ring at once
 * while a popped buffer may live as long as the application wants.
 */
#include "dev/xdp.h"

#include "core/log.h"
#include "dev/netif.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <xdp/libxdp.h>
#include <xdp/xsk.h>

#define XDP_FRAMES 4096
#define XDP_FRAME 2048
#define XDP_RING 2048

struct xdp_dev {
    struct netdev d;
    struct heap_blk *umem_blk;
    uint8_t *umem_area;
    struct xsk_umem *umem;
    struct xsk_socket *xsk;
    struct xsk_ring_prod fill, tx;
    struct xsk_ring_cons comp, rx;
    int fd;
    uint64_t free_tx[XDP_FRAMES / 2]; /* UMEM addresses free for transmits */
    uint32_t nfree_tx;
};

static void refill(struct xdp_dev *x, const uint64_t *addrs, uint32_t n)
{
    uint32_t idx;
    if (n == 0)
        return;
    /* The fill ring has room for every RX frame, so this always succeeds. */
    if (xsk_ring_prod__reserve(&x->fill, n, &idx) != n)
        return;
    for (uint32_t i = 0; i < n; i++)
        *xsk_ring_prod__fill_addr(&x->fill, idx + i) = addrs[i];
    xsk_ring_prod__submit(&x->fill, n);
}

static int xd_rx(struct netdev *d, struct rxframe *out, int max)
{
    struct xdp_dev *x = (struct xdp_dev *)d;
    uint32_t idx;
    uint32_t n = xsk_ring_cons__peek(&x->rx, (uint32_t)max, &idx);
    if (n == 0) {
        if (xsk_ring_prod__needs_wakeup(&x->fill))
            recvfrom(x->fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
        return 0;
    }
    uint64_t back[XDP_RING];
    int got = 0;
    for (uint32_t i = 0; i < n; i++) {
        const struct xdp_desc *desc = xsk_ring_cons__rx_desc(&x->rx, idx + i);
        uint64_t addr = xsk_umem__extract_addr(desc->addr);
        uint64_t off = xsk_umem__extract_offset(desc->addr);
        const uint8_t *src = x->umem_area + addr + off;
        struct heap_blk *b = desc->len >= 14 ? heap_alloc(d->heap, desc->len) : NULL;
        if (b) {
            uint8_t *dst = heap_blk_data(d->heap, b);
            memcpy(dst, src, desc->len); /* the UMEM frame goes back to the fill ring now */
            d->stats.copied_bytes += desc->len;
            out[got++] = (struct rxframe){b, dst, desc->len, 0};
            d->stats.rx_frames++;
            d->stats.rx_bytes += desc->len;
        }
        back[i] = addr;
    }
    xsk_ring_cons__release(&x->rx, n);
    refill(x, back, n);
    return got;
}

static void reclaim(struct xdp_dev *x)
{
    uint32_t idx;
    uint32_t n = xsk_ring_cons__peek(&x->comp, XDP_FRAMES / 2, &idx);
    for (uint32_t i = 0; i < n; i++)
        x->free_tx[x->nfree_tx++] = *xsk_ring_cons__comp_addr(&x->comp, idx + i);
    if (n)
        xsk_ring_cons__release(&x->comp, n);
}

static int xd_tx(struct netdev *d, struct pkt *pkts, int n)
{
    struct xdp_dev *x = (struct xdp_dev *)d;
    reclaim(x);
    uint32_t filled = 0;
    int done = 0;
    for (; done < n; done++) {
        struct pkt *p = &pkts[done];
        if (p->len > XDP_FRAME || p->len > d->mtu + 14) {
            pkt_release(d->heap, p); /* never built by the stack; cannot go out */
            continue;
        }
        uint32_t idx;
        if (x->nfree_tx == 0 || xsk_ring_prod__reserve(&x->tx, 1, &idx) != 1)
            break; /* out of frames or ring slots: the caller keeps the rest */
        uint64_t addr = x->free_tx[--x->nfree_tx];
        uint8_t *dst = x->umem_area + addr;
        for (uint16_t s = 0; s < p->nseg; s++) {
            memcpy(dst, p->seg[s].data, p->seg[s].len); /* into the UMEM frame the kernel sends from */
            d->stats.copied_bytes += p->seg[s].len;
            dst += p->seg[s].len;
        }
        struct xdp_desc *desc = xsk_ring_prod__tx_desc(&x->tx, idx);
        desc->addr = addr;
        desc->len = p->len;
        filled++;
        d->stats.tx_frames++;
        d->stats.tx_bytes += p->len;
        pkt_release(d->heap, p);
    }
    if (filled) {
        xsk_ring_prod__submit(&x->tx, filled);
        if (xsk_ring_prod__needs_wakeup(&x->tx))
            sendto(x->fd, NULL, 0, MSG_DONTWAIT, NULL, 0);
    }
    if (done < n)
        d->stats.tx_full += (uint64_t)(n - done);
    return done;
}

/* libxdp loads the interface's program with the first socket and finds it
 * for the next: instances creating (and deleting) sockets on one
 * interface at once from several threads take turns. */
static pthread_mutex_t create_lock = PTHREAD_MUTEX_INITIALIZER;

static void xd_destroy(struct netdev *d)
{
    struct xdp_dev *x = (struct xdp_dev *)d;
    /* What the kernel dropped on its side of the rings, which our own
     * counters cannot see (DEMI_LOG=info; tests read it). */
    struct xdp_statistics st;
    socklen_t len = sizeof(st);
    if (log_level_g >= LOGL_INFO && x->xsk && getsockopt(x->fd, SOL_XDP, XDP_STATISTICS, &st, &len) == 0)
        log_info("xdp: kernel: rx_dropped=%llu rx_ring_full=%llu rx_fill_ring_empty=%llu rx_invalid=%llu "
                 "tx_invalid=%llu tx_ring_empty=%llu",
                 (unsigned long long)st.rx_dropped, (unsigned long long)st.rx_ring_full,
                 (unsigned long long)st.rx_fill_ring_empty_descs, (unsigned long long)st.rx_invalid_descs,
                 (unsigned long long)st.tx_invalid_descs, (unsigned long long)st.tx_ring_empty_descs);
    if (x->xsk) {
        pthread_mutex_lock(&create_lock);
        xsk_socket__delete(x->xsk); /* the last one also detaches libxdp's program */
        pthread_mutex_unlock(&create_lock);
    }
    if (x->umem)
        xsk_umem__delete(x->umem);
    if (x->umem_blk)
        heap_unref(d->heap, x->umem_blk);
    free(x);
}

static void xd_wait(struct netdev *d, uint64_t timeout_ns, int also_fd)
{
    netif_wait_fd(((struct xdp_dev *)d)->fd, also_fd, timeout_ns);
}

static const struct netdev_ops xdp_ops = {"xdp", xd_rx, xd_tx, xd_destroy, xd_wait};

/* libbpf and libxdp print to stderr by default; their lines go to our log
 * at debug level instead (errors that matter are reported by us). */
static int quiet_print(const char *fmt, va_list ap)
{
    if (log_level_g >= LOGL_DEBUG) {
        char line[256];
        vsnprintf(line, sizeof(line), fmt, ap);
        line[strcspn(line, "\n")] = '\0';
        log_msg(LOGL_DEBUG, "xdp: %s", line);
    }
    return 0;
}

static int bpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
    (void)level;
    return quiet_print(fmt, ap);
}

static int xdp_print(enum libxdp_print_level level, const char *fmt, va_list ap)
{
    (void)level;
    return quiet_print(fmt, ap);
}

static pthread_once_t print_once = PTHREAD_ONCE_INIT;

static void set_prints(void)
{
    libbpf_set_print(bpf_print);
    libxdp_set_print(xdp_print);
}

int xdp_dev_create(struct heap *heap, const char *ifname, uint32_t queue, bool native, struct netdev **out)
{
    pthread_once(&print_once, set_prints);
    uint8_t mac[6];
    uint32_t mtu;
    int ifindex;
    int e = netif_info(ifname, mac, &mtu, &ifindex);
    if (e) {
        log_error("xdp: interface '%s': %s", ifname, e == ENODEV ? "no such interface" : strerror(e));
        return e;
    }
    if (mtu + 14 > XDP_FRAME) {
        log_error("xdp: MTU %u of '%s' does not fit %u-byte UMEM frames", mtu, ifname, XDP_FRAME);
        return EINVAL;
    }
    struct xdp_dev *x = calloc(1, sizeof(*x));
    if (!x)
        return ENOMEM;
    x->d.heap = heap;
    /* The UMEM is heap memory: one large block, page aligned. */
    size_t len = (size_t)XDP_FRAMES * XDP_FRAME;
    x->umem_blk = heap_alloc(heap, len);
    if (!x->umem_blk) {
        free(x);
        return ENOMEM;
    }
    x->umem_area = heap_blk_data(heap, x->umem_blk);
    struct xsk_umem_config uc = {
        .fill_size = XDP_RING, .comp_size = XDP_RING, .frame_size = XDP_FRAME, .frame_headroom = 0, .flags = 0};
    e = -xsk_umem__create(&x->umem, x->umem_area, len, &x->fill, &x->comp, &uc);
    if (e) {
        log_error("xdp: UMEM: %s", strerror(e));
        goto fail;
    }
    struct xsk_socket_config sc = {
        .rx_size = XDP_RING,
        .tx_size = XDP_RING,
        .libxdp_flags = 0,
        .xdp_flags = native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE,
        .bind_flags = XDP_COPY | XDP_USE_NEED_WAKEUP,
    };
    /* The kernel releases a closed AF_XDP socket's hold on the queue
     * asynchronously: a process restarted at once can find it still busy
     * for a moment, so EBUSY is retried for up to a second. */
    for (int tries = 0;; tries++) {
        pthread_mutex_lock(&create_lock);
        e = -xsk_socket__create(&x->xsk, ifname, queue, x->umem, &x->rx, &x->tx, &sc);
        pthread_mutex_unlock(&create_lock);
        if (e != EBUSY || tries == 20)
            break;
        struct timespec nap = {0, 50 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
    if (e) {
        const char *hint = e == EBUSY ? " (the queue is held by another AF_XDP socket)"
                           : e == EINVAL && queue ? " (the interface has no such queue: see libdemi.queues)"
                           : e == EEXIST ? " (another XDP program is attached: 'ip link set dev IF xdp off')"
                           : e == EPERM ? " (needs CAP_NET_ADMIN and CAP_BPF: run as root)"
                           : e == EOPNOTSUPP ? " (the driver lacks this XDP mode)"
                                             : "";
        log_error("xdp: AF_XDP socket on '%s': %s%s", ifname, strerror(e), hint);
        x->xsk = NULL;
        goto fail;
    }
    x->fd = xsk_socket__fd(x->xsk);
    /* Frames [0, N/2) feed receives, [N/2, N) serve transmits. */
    uint64_t addrs[XDP_RING];
    for (uint32_t i = 0; i < XDP_FRAMES / 2 && i < XDP_RING; i++)
        addrs[i] = (uint64_t)i * XDP_FRAME;
    refill(x, addrs, XDP_RING < XDP_FRAMES / 2 ? XDP_RING : XDP_FRAMES / 2);
    for (uint32_t i = XDP_FRAMES / 2; i < XDP_FRAMES; i++)
        x->free_tx[x->nfree_tx++] = (uint64_t)i * XDP_FRAME;
    x->d.ops = &xdp_ops;
    memcpy(x->d.mac, mac, 6);
    x->d.mtu = mtu;
    x->d.offloads = 0;
    log_info("xdp: AF_XDP on %s queue %u (%s mode, copy), %u-frame UMEM in the heap", ifname, queue,
             native ? "native" : "skb", XDP_FRAMES);
    *out = &x->d;
    return 0;
fail:
    xd_destroy(&x->d);
    return e ? e : EIO;
}
