/*
 * dev/sim, the simulated network: three devices on three heaps exchange
 * hand-built frames (one to three segments) and every fault the link
 * offers is checked for its count and its effect: unicast, broadcast and
 * unknown destinations, delay and jitter, loss, duplication, corruption,
 * reordering, MTU, ring overflow, rate limiting, the tap, odd input,
 * determinism by seed, the pcap file, and that every block goes back to
 * its heap.
 */
#include "core/common.h"
#include "dev/sim.h"
#include "tcheck.h"

#include <errno.h>
#include <unistd.h>

#define NDEV 3
#define T0   1000000000ull

static struct heap *heaps[NDEV];
static const uint8_t macs[NDEV][6] = {{2, 0, 0, 0, 0, 1}, {2, 0, 0, 0, 0, 2}, {2, 0, 0, 0, 0, 3}};
static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
static const uint8_t nobody[6] = {2, 0, 0, 0, 0, 9};

struct rig {
    struct simnet *net;
    struct netdev *d[NDEV];
};

static void rig_up(struct rig *r, const struct simnet_config *cfg)
{
    struct simnet_config c = {.seed = 1, .start_ns = T0};
    CHECK_EQ(simnet_create(&r->net, cfg ? cfg : &c), 0);
    for (int i = 0; i < NDEV; i++) {
        CHECK_EQ(simnet_attach(r->net, heaps[i], macs[i], 1500, &r->d[i]), 0);
        CHECK(strcmp(r->d[i]->ops->name, "sim") == 0);
        CHECK_EQ(r->d[i]->offloads, 0);
        CHECK_EQ(r->d[i]->mtu, 1500);
        CHECK(r->d[i]->heap == heaps[i]);
        CHECK(memcmp(r->d[i]->mac, macs[i], 6) == 0);
    }
}

/* Tears a rig down; frames still queued or in flight are released by the
 * network, and every heap must then be empty. */
static void rig_down(struct rig *r)
{
    for (int i = 0; i < NDEV; i++)
        if (r->d[i])
            r->d[i]->ops->destroy(r->d[i]);
    simnet_destroy(r->net);
    for (int i = 0; i < NDEV; i++)
        CHECK_EQ(heap_stats(heaps[i])->bytes_in_use, 0);
}

/* A frame: addresses, a local experimental EtherType, then an 8-byte tag
 * and a pattern derived from it, so frames are distinguishable. */
static void make_frame(uint8_t *buf, uint32_t len, const uint8_t dst[6], const uint8_t src[6], uint64_t tag)
{
    uint8_t hdr[ETH_HDR_LEN] = {0};
    memcpy(hdr, dst, 6);
    memcpy(hdr + 6, src, 6);
    hdr[12] = 0x88;
    hdr[13] = 0xb5;
    memcpy(buf, hdr, MIN(len, ETH_HDR_LEN));
    uint64_t s = tag;
    for (uint32_t i = ETH_HDR_LEN; i < len; i++)
        buf[i] = (i - ETH_HDR_LEN < 8) ? (uint8_t)(tag >> (8 * (i - ETH_HDR_LEN))) : (uint8_t)trand(&s);
}

static uint64_t frame_tag(const uint8_t *f)
{
    uint64_t tag = 0;
    for (int i = 0; i < 8; i++)
        tag |= (uint64_t)f[ETH_HDR_LEN + i] << (8 * i);
    return tag;
}

/* Sends @frame from @d as a packet of @nseg segments, each a fresh block of
 * the device's heap; the device takes the references. */
static void send_raw(struct netdev *d, const uint8_t *frame, uint32_t len, int nseg)
{
    struct pkt p;
    memset(&p, 0, sizeof(p));
    uint32_t off = 0;
    for (int i = 0; i < nseg; i++) {
        uint32_t part = i == nseg - 1 ? len - off : len / (uint32_t)nseg;
        struct heap_blk *b = heap_alloc(d->heap, part ? part : 1);
        CHECK(b);
        uint8_t *data = heap_blk_data(d->heap, b);
        memcpy(data, frame + off, part);
        p.seg[i] = (struct pkt_seg){.blk = b, .data = data, .len = part};
        off += part;
    }
    p.nseg = (uint16_t)nseg;
    p.len = len;
    CHECK_EQ(d->ops->tx_burst(d, &p, 1), 1);
}

static void send_frame(struct netdev *d, const uint8_t dst[6], uint32_t len, uint64_t tag, int nseg)
{
    uint8_t buf[2048];
    CHECK(len <= sizeof(buf));
    make_frame(buf, len, dst, d->mac, tag);
    send_raw(d, buf, len, nseg);
}

/* Receives at most one frame; returns its length or -1. Copies it to @out. */
static int recv_one(struct netdev *d, uint8_t *out, uint32_t cap)
{
    struct rxframe f;
    if (d->ops->rx_burst(d, &f, 1) != 1)
        return -1;
    CHECK_EQ(f.flags, 0);
    CHECK(heap_find(d->heap, f.data, f.len ? f.len : 1) == f.blk);
    CHECK(f.len <= cap);
    memcpy(out, f.data, f.len);
    heap_unref(d->heap, f.blk);
    return (int)f.len;
}

/* Drops everything queued for @d; returns how many frames there were. */
static int drain(struct netdev *d)
{
    struct rxframe f[64];
    int total = 0, n;
    while ((n = d->ops->rx_burst(d, f, 64)) > 0) {
        for (int i = 0; i < n; i++)
            heap_unref(d->heap, f[i].blk);
        total += n;
    }
    return total;
}

static void test_unicast(void)
{
    struct rig r;
    rig_up(&r, NULL);
    static const uint32_t lens[] = {60, 1514, 200, 15, 1000};
    uint8_t want[2048], got[2048];
    for (unsigned k = 0; k < ARRAY_SIZE(lens); k++) {
        int nseg = 1 + (int)(k % 3);
        make_frame(want, lens[k], macs[1], macs[0], k);
        send_raw(r.d[0], want, lens[k], nseg);
        /* The device took the references and let the blocks go at once. */
        CHECK_EQ(heap_stats(heaps[0])->bytes_in_use, 0);
        CHECK_EQ(simnet_pending(r.net), 1);
        CHECK_EQ(simnet_next_event(r.net), T0); /* a perfect link: arrival now */
        simnet_advance(r.net, T0);
        CHECK_EQ(simnet_next_event(r.net), UINT64_MAX);
        CHECK_EQ(recv_one(r.d[1], got, sizeof(got)), (int)lens[k]);
        CHECK(memcmp(got, want, lens[k]) == 0);
        CHECK_EQ(recv_one(r.d[0], got, sizeof(got)), -1);
        CHECK_EQ(recv_one(r.d[2], got, sizeof(got)), -1);
        CHECK_EQ(simnet_pending(r.net), 0);
    }
    /* A perfect link keeps order. */
    for (uint64_t i = 0; i < 100; i++)
        send_frame(r.d[0], macs[2], 64, i, 2);
    simnet_advance(r.net, T0);
    for (uint64_t i = 0; i < 100; i++) {
        CHECK_EQ(recv_one(r.d[2], got, sizeof(got)), 64);
        CHECK_EQ(frame_tag(got), i);
    }
    CHECK_EQ(simnet_stats(r.d[0])->sent, 105);
    CHECK_EQ(simnet_stats(r.d[1])->delivered, 5);
    CHECK_EQ(simnet_stats(r.d[2])->delivered, 100);
    CHECK_EQ(r.d[0]->stats.tx_frames, 105);
    CHECK_EQ(r.d[1]->stats.rx_frames, 5);
    CHECK_EQ(r.d[1]->stats.rx_bytes, 60 + 1514 + 200 + 15 + 1000);
    CHECK_EQ(r.d[0]->stats.tx_full, 0);
    CHECK_EQ(simnet_now(r.net), T0);
    rig_down(&r);
}

static void test_broadcast_and_unknown(void)
{
    struct rig r;
    rig_up(&r, NULL);
    uint8_t want[128], got[128];
    make_frame(want, 100, bcast, macs[1], 7);
    send_raw(r.d[1], want, 100, 3);
    simnet_advance(r.net, T0);
    CHECK_EQ(simnet_pending(r.net), 2);
    CHECK_EQ(recv_one(r.d[0], got, sizeof(got)), 100);
    CHECK(memcmp(got, want, 100) == 0);
    CHECK_EQ(recv_one(r.d[2], got, sizeof(got)), 100);
    CHECK(memcmp(got, want, 100) == 0);
    CHECK_EQ(recv_one(r.d[1], got, sizeof(got)), -1);

    send_frame(r.d[0], nobody, 100, 8, 1);
    simnet_advance(r.net, T0 + 1);
    for (int i = 0; i < NDEV; i++)
        CHECK_EQ(drain(r.d[i]), 0);
    CHECK_EQ(simnet_stats(r.d[0])->no_receiver, 1);
    CHECK_EQ(simnet_pending(r.net), 0);
    rig_down(&r);
}

static void test_delay_and_jitter(void)
{
    struct rig r;
    rig_up(&r, NULL);
    simnet_set_link(r.net, r.d[0], &(struct sim_link){.delay_ns = 5000});
    send_frame(r.d[0], macs[1], 80, 1, 2);
    CHECK_EQ(simnet_next_event(r.net), T0 + 5000);
    simnet_advance(r.net, T0 + 4999);
    CHECK_EQ(drain(r.d[1]), 0);
    CHECK_EQ(simnet_pending(r.net), 1);
    simnet_advance(r.net, T0 + 5000);
    CHECK_EQ(drain(r.d[1]), 1);

    /* Jitter spreads arrivals uniformly over [delay, delay + jitter]. */
    uint64_t t = simnet_now(r.net);
    simnet_set_link(r.net, r.d[0], &(struct sim_link){.delay_ns = 1000, .jitter_ns = 500});
    for (int i = 0; i < 1000; i++)
        send_frame(r.d[0], macs[1], 64, (uint64_t)i, 1);
    uint64_t first = simnet_next_event(r.net), last = first;
    while (simnet_next_event(r.net) != UINT64_MAX) {
        last = simnet_next_event(r.net);
        simnet_advance(r.net, last);
    }
    CHECK(first >= t + 1000 && first < t + 1050);
    CHECK(last <= t + 1500 && last > t + 1450);
    CHECK_EQ(drain(r.d[1]), 1000);
    rig_down(&r);
}

static void test_loss(void)
{
    struct rig r;
    rig_up(&r, NULL);
    simnet_set_link(r.net, r.d[0], &(struct sim_link){.loss_ppm = 100000});
    int got = 0;
    for (int i = 0; i < 100000; i++) {
        send_frame(r.d[0], macs[1], 64, (uint64_t)i, 1);
        if (i % 1000 == 999) {
            simnet_advance(r.net, simnet_now(r.net) + 1);
            got += drain(r.d[1]);
        }
    }
    const struct sim_stats *s = simnet_stats(r.d[0]);
    CHECK_EQ(s->sent, 100000);
    CHECK_EQ(s->lost + (uint64_t)got, 100000);
    CHECK(got >= 89000 && got <= 91000);
    CHECK_EQ(simnet_stats(r.d[1])->delivered, got);
    rig_down(&r);
}

static void test_duplication(void)
{
    struct rig r;
    rig_up(&r, NULL);
    simnet_set_link(r.net, r.d[0], &(struct sim_link){.dup_ppm = 50000});
    enum { N = 20000 };
    static uint8_t seen[N];
    memset(seen, 0, sizeof(seen));
    uint8_t buf[128], want[128];
    for (uint64_t i = 0; i < N; i++) {
        send_frame(r.d[0], macs[1], 100, i, 1 + (int)(i % 3));
        simnet_advance(r.net, simnet_now(r.net) + 10);
        int len;
        while ((len = recv_one(r.d[1], buf, sizeof(buf))) >= 0) {
            CHECK_EQ(len, 100);
            make_frame(want, 100, macs[1], macs[0], i);
            CHECK(memcmp(buf, want, 100) == 0); /* a copy is an exact copy */
            seen[i]++;
        }
    }
    int twice = 0;
    for (int i = 0; i < N; i++) {
        CHECK(seen[i] == 1 || seen[i] == 2);
        twice += seen[i] == 2;
    }
    uint64_t dups = simnet_stats(r.d[0])->duplicated;
    CHECK_EQ(dups, twice);
    CHECK(dups >= 800 && dups <= 1200);
    CHECK_EQ(simnet_stats(r.d[1])->delivered, N + dups);
    rig_down(&r);
}

static int popcount8(uint8_t x)
{
    return __builtin_popcount(x);
}

static void test_corruption(void)
{
    struct rig r;
    rig_up(&r, NULL);
    simnet_set_link(r.net, r.d[0], &(struct sim_link){.corrupt_ppm = 300000});
    uint8_t want[256], got[256];
    int corrupted = 0;
    for (uint64_t i = 0; i < 2000; i++) {
        uint32_t len = 15 + (uint32_t)(i % 200);
        make_frame(want, len, macs[1], macs[0], i);
        send_raw(r.d[0], want, len, 2);
        simnet_advance(r.net, simnet_now(r.net) + 1);
        CHECK_EQ(recv_one(r.d[1], got, sizeof(got)), (int)len);
        int bits = 0;
        for (uint32_t j = 0; j < len; j++) {
            int b = popcount8(got[j] ^ want[j]);
            CHECK(b == 0 || j >= ETH_HDR_LEN); /* the header is never touched */
            bits += b;
        }
        CHECK(bits <= 1);
        corrupted += bits;
    }
    CHECK_EQ(simnet_stats(r.d[0])->corrupted, corrupted);
    CHECK(corrupted >= 500 && corrupted <= 700);

    /* A frame with nothing past its header has no bit to flip. */
    simnet_set_link(r.net, r.d[0], &(struct sim_link){.corrupt_ppm = 1000000});
    make_frame(want, ETH_HDR_LEN, macs[1], macs[0], 0);
    send_raw(r.d[0], want, ETH_HDR_LEN, 1);
    simnet_advance(r.net, simnet_now(r.net) + 1);
    CHECK_EQ(recv_one(r.d[1], got, sizeof(got)), ETH_HDR_LEN);
    CHECK(memcmp(got, want, ETH_HDR_LEN) == 0);
    CHECK_EQ(simnet_stats(r.d[0])->corrupted, corrupted);
    rig_down(&r);
}

static void test_reorder(void)
{
    struct rig r;
    rig_up(&r, NULL);
    simnet_set_link(r.net, r.d[0], &(struct sim_link){.delay_ns = 10000, .reorder_ppm = 100000});
    enum { N = 1000 };
    for (uint64_t i = 0; i < N; i++) {
        send_frame(r.d[0], macs[1], 64, i, 1);
        simnet_advance(r.net, simnet_now(r.net) + 1000);
    }
    simnet_advance(r.net, simnet_now(r.net) + 1000000);
    uint8_t buf[128];
    uint64_t prev = 0;
    int inversions = 0;
    static uint8_t seen[N];
    memset(seen, 0, sizeof(seen));
    for (int i = 0; i < N; i++) {
        CHECK_EQ(recv_one(r.d[1], buf, sizeof(buf)), 64);
        uint64_t tag = frame_tag(buf);
        CHECK(tag < N && !seen[tag]);
        seen[tag] = 1;
        inversions += i > 0 && tag < prev;
        prev = tag;
    }
    uint64_t held = simnet_stats(r.d[0])->reordered;
    CHECK(held >= 60 && held <= 140);
    CHECK(inversions > 0 && (uint64_t)inversions <= held);

    /* The hold-back: reorder_ns, or 3 * delay + 1 us by default. */
    uint64_t t = simnet_now(r.net);
    simnet_set_link(r.net, r.d[0], &(struct sim_link){.delay_ns = 1000, .reorder_ppm = 1000000, .reorder_ns = 7000});
    send_frame(r.d[0], macs[1], 64, 0, 1);
    CHECK_EQ(simnet_next_event(r.net), t + 8000);
    simnet_advance(r.net, t + 8000);
    simnet_set_link(r.net, r.d[0], &(struct sim_link){.delay_ns = 1000, .reorder_ppm = 1000000});
    send_frame(r.d[0], macs[1], 64, 0, 1);
    CHECK_EQ(simnet_next_event(r.net), t + 8000 + 1000 + 4000);
    simnet_advance(r.net, UINT64_MAX - 1);
    CHECK_EQ(drain(r.d[1]), 2);
    rig_down(&r);
}

static void test_mtu(void)
{
    struct rig r;
    rig_up(&r, NULL);
    /* The device's own MTU (1500): accepted by tx_burst, counted, dropped. */
    send_frame(r.d[0], macs[1], 1514, 1, 2);
    send_frame(r.d[0], macs[1], 1515, 2, 2);
    simnet_advance(r.net, T0);
    CHECK_EQ(drain(r.d[1]), 1);
    CHECK_EQ(simnet_stats(r.d[0])->too_big, 1);
    /* The link's MTU. */
    simnet_set_link(r.net, r.d[0], &(struct sim_link){.mtu = 1000});
    send_frame(r.d[0], macs[1], 1014, 3, 3);
    send_frame(r.d[0], macs[1], 1015, 4, 3);
    simnet_advance(r.net, T0);
    CHECK_EQ(drain(r.d[1]), 1);
    CHECK_EQ(simnet_stats(r.d[0])->too_big, 2);
    CHECK_EQ(simnet_stats(r.d[0])->sent, 4);
    CHECK_EQ(heap_stats(heaps[0])->bytes_in_use, 0);
    rig_down(&r);
}

static void test_ring_full(void)
{
    struct rig r;
    rig_up(&r, &(struct simnet_config){.seed = 3, .rx_ring = 8});
    for (uint64_t i = 0; i < 10; i++)
        send_frame(r.d[0], macs[1], 64, i, 1);
    simnet_advance(r.net, 0);
    CHECK_EQ(simnet_stats(r.d[1])->ring_full, 2);
    CHECK_EQ(simnet_stats(r.d[1])->delivered, 8);
    CHECK_EQ(simnet_pending(r.net), 8);
    uint8_t f[64];
    make_frame(f, 64, macs[1], macs[0], 99);
    CHECK_EQ(simnet_inject(r.net, r.d[1], f, 64), ENOBUFS);
    CHECK_EQ(simnet_stats(r.d[1])->ring_full, 3);
    struct rxframe rx[16];
    CHECK_EQ(r.d[1]->ops->rx_burst(r.d[1], rx, 16), 8);
    for (int i = 0; i < 8; i++) {
        CHECK_EQ(frame_tag(rx[i].data), i); /* the first eight, in order */
        heap_unref(heaps[1], rx[i].blk);
    }
    CHECK_EQ(simnet_inject(r.net, r.d[1], f, 64), 0);
    uint8_t got[64];
    CHECK_EQ(recv_one(r.d[1], got, sizeof(got)), 64);
    CHECK(memcmp(got, f, 64) == 0);
    rig_down(&r);
}

/* A heap too small for what arrives: the frame is dropped and counted. */
static void test_rx_alloc_fail(void)
{
    struct heap *small;
    CHECK_EQ(heap_create(&small, (size_t)2 << 20, CONFIG_HUGE_OFF), 0);
    struct simnet *net;
    struct netdev *a, *b;
    CHECK_EQ(simnet_create(&net, &(struct simnet_config){.seed = 4}), 0);
    CHECK_EQ(simnet_attach(net, heaps[0], macs[0], 9000, &a), 0);
    CHECK_EQ(simnet_attach(net, small, macs[1], 9000, &b), 0);
    uint8_t big[4096];
    make_frame(big, sizeof(big), macs[1], macs[0], 1);
    int sent = 0;
    while (simnet_stats(b)->rx_alloc_fail == 0 && sent < 10000) {
        send_raw(a, big, sizeof(big), 1);
        simnet_advance(net, 0);
        sent++;
    }
    CHECK(simnet_stats(b)->rx_alloc_fail == 1);
    CHECK_EQ(simnet_stats(b)->delivered + 1, sent);
    CHECK_EQ(simnet_inject(net, b, big, sizeof(big)), ENOMEM);
    CHECK_EQ(drain(b), sent - 1);
    CHECK_EQ(simnet_inject(net, b, big, sizeof(big)), 0);
    a->ops->destroy(a);
    b->ops->destroy(b); /* frees the injected frame */
    simnet_destroy(net);
    CHECK_EQ(heap_stats(small)->bytes_in_use, 0);
    heap_destroy(small);
}

static void test_rate(void)
{
    struct rig r;
    rig_up(&r, NULL);
    /* 8 Mbit/s: a byte takes 1 us, a 100-byte frame 100 us. */
    simnet_set_link(r.net, r.d[0], &(struct sim_link){.rate_bps = 8000000, .delay_ns = 50});
    for (uint64_t i = 0; i < 5; i++)
        send_frame(r.d[0], macs[1], 100, i, 1);
    uint8_t buf[128];
    for (uint64_t k = 1; k <= 5; k++) {
        CHECK_EQ(simnet_next_event(r.net), T0 + k * 100000 + 50);
        simnet_advance(r.net, T0 + k * 100000 + 49);
        CHECK_EQ(drain(r.d[1]), 0);
        simnet_advance(r.net, T0 + k * 100000 + 50);
        CHECK_EQ(recv_one(r.d[1], buf, sizeof(buf)), 100);
        CHECK_EQ(frame_tag(buf), k - 1);
    }
    /* An idle link starts the next frame at once. */
    simnet_advance(r.net, T0 + 10000000);
    send_frame(r.d[0], macs[1], 100, 9, 1);
    CHECK_EQ(simnet_next_event(r.net), T0 + 10000000 + 100000 + 50);
    /* Another device's link is not slowed by this one. */
    send_frame(r.d[2], macs[1], 100, 10, 1);
    CHECK_EQ(simnet_next_event(r.net), T0 + 10000000);
    rig_down(&r);
}

struct tap_state {
    int calls;
    struct netdev *last_from;
};

static int tap_fn(void *arg, struct netdev *from, const uint8_t *frame, uint32_t len)
{
    struct tap_state *ts = arg;
    ts->calls++;
    ts->last_from = from;
    return len > ETH_HDR_LEN + 8 && frame_tag(frame) % 2 == 1; /* drop odd tags */
}

static void test_tap(void)
{
    struct rig r;
    rig_up(&r, NULL);
    struct tap_state ts = {0};
    simnet_set_tap(r.net, tap_fn, &ts);
    /* The tap sees frames before faults: even a link that loses everything. */
    simnet_set_link(r.net, r.d[2], &(struct sim_link){.loss_ppm = 1000000});
    for (uint64_t i = 0; i < 10; i++)
        send_frame(r.d[0], macs[1], 64, i, 3);
    send_frame(r.d[2], macs[1], 64, 1, 1);
    CHECK(ts.last_from == r.d[2]);
    simnet_advance(r.net, T0);
    CHECK_EQ(ts.calls, 11);
    CHECK_EQ(simnet_stats(r.d[0])->tapped, 5);
    CHECK_EQ(simnet_stats(r.d[2])->tapped, 1);
    CHECK_EQ(simnet_stats(r.d[2])->lost, 0);
    CHECK_EQ(drain(r.d[1]), 5);
    simnet_set_tap(r.net, NULL, NULL);
    send_frame(r.d[0], macs[1], 64, 1, 1);
    simnet_advance(r.net, T0);
    CHECK_EQ(drain(r.d[1]), 1);
    rig_down(&r);
}

static void test_odd_input(void)
{
    struct rig r;
    rig_up(&r, NULL);
    uint8_t got[64];

    /* Empty and runt packets are accepted and go nowhere. */
    struct pkt p;
    memset(&p, 0, sizeof(p));
    p.len = 100; /* a lie: the segments decide */
    CHECK_EQ(r.d[0]->ops->tx_burst(r.d[0], &p, 1), 1);
    send_raw(r.d[0], macs[1], 3, 1);
    CHECK_EQ(r.d[0]->ops->tx_burst(r.d[0], NULL, 1), 0);
    CHECK_EQ(r.d[0]->ops->tx_burst(r.d[0], &p, 0), 0);
    CHECK_EQ(r.d[0]->ops->rx_burst(r.d[0], (struct rxframe[1]){0}, 0), 0);
    simnet_advance(r.net, T0);
    CHECK_EQ(simnet_stats(r.d[0])->no_receiver, 2);
    CHECK_EQ(drain(r.d[1]), 0);

    /* A header-only frame and one with a segment outside any heap. */
    uint8_t hdr[ETH_HDR_LEN];
    make_frame(hdr, ETH_HDR_LEN, macs[1], macs[0], 0);
    memset(&p, 0, sizeof(p));
    p.nseg = 2;
    p.seg[0] = (struct pkt_seg){.blk = NULL, .data = hdr, .len = 6};
    p.seg[1] = (struct pkt_seg){.blk = NULL, .data = hdr + 6, .len = ETH_HDR_LEN - 6};
    CHECK_EQ(r.d[0]->ops->tx_burst(r.d[0], &p, 1), 1);
    simnet_advance(r.net, T0);
    CHECK_EQ(recv_one(r.d[1], got, sizeof(got)), ETH_HDR_LEN);
    CHECK(memcmp(got, hdr, ETH_HDR_LEN) == 0);

    /* The clock never goes backwards. */
    simnet_advance(r.net, T0 + 100);
    simnet_advance(r.net, 5);
    CHECK_EQ(simnet_now(r.net), T0 + 100);

    /* Injection: empty frames are fine, bad arguments are EINVAL. */
    CHECK_EQ(simnet_inject(r.net, r.d[2], NULL, 0), 0);
    CHECK_EQ(recv_one(r.d[2], got, sizeof(got)), 0);
    CHECK_EQ(simnet_inject(r.net, r.d[2], NULL, 5), EINVAL);
    CHECK_EQ(simnet_inject(r.net, NULL, hdr, 5), EINVAL);

    /* Attach: duplicate and group addresses are refused. */
    struct netdev *x;
    CHECK_EQ(simnet_attach(r.net, heaps[0], macs[1], 1500, &x), EEXIST);
    CHECK_EQ(simnet_attach(r.net, heaps[0], bcast, 1500, &x), EINVAL);
    CHECK_EQ(simnet_attach(r.net, heaps[0], nobody, 0, &x), EINVAL);
    CHECK_EQ(simnet_stats(NULL)->sent, 0);

    /* An unreadable capture path fails creation. */
    struct simnet *bad = NULL;
    CHECK(simnet_create(&bad, &(struct simnet_config){.pcap_path = "/nonexistent/dir/x.pcap"}) != 0);
    CHECK(bad == NULL);

    /* Destroying a receiver frees its ring; what was still in flight to it
     * is dropped on arrival and counted against the sender. */
    simnet_set_link(r.net, r.d[0], &(struct sim_link){.delay_ns = 1000});
    for (uint64_t i = 0; i < 3; i++)
        send_frame(r.d[0], macs[1], 64, i, 2);
    simnet_advance(r.net, simnet_now(r.net) + 1000);
    for (uint64_t i = 0; i < 2; i++)
        send_frame(r.d[0], macs[1], 64, i, 2);
    CHECK_EQ(simnet_pending(r.net), 5);
    CHECK(heap_stats(heaps[1])->bytes_in_use > 0);
    r.d[1]->ops->destroy(r.d[1]);
    r.d[1] = NULL;
    CHECK_EQ(heap_stats(heaps[1])->bytes_in_use, 0);
    CHECK_EQ(simnet_pending(r.net), 2);
    uint64_t before = simnet_stats(r.d[0])->no_receiver;
    simnet_advance(r.net, simnet_now(r.net) + 1000);
    CHECK_EQ(simnet_stats(r.d[0])->no_receiver, before + 2);

    /* A destroyed sender's frames still arrive. */
    simnet_set_link(r.net, r.d[0], &(struct sim_link){.delay_ns = 1000});
    send_frame(r.d[0], macs[2], 64, 1, 1);
    r.d[0]->ops->destroy(r.d[0]);
    r.d[0] = NULL;
    simnet_advance(r.net, simnet_now(r.net) + 1000);
    CHECK_EQ(drain(r.d[2]), 1);

    /* Frames left in flight are freed with the network. */
    simnet_set_link(r.net, r.d[2], &(struct sim_link){.delay_ns = 1000000});
    send_frame(r.d[2], nobody, 64, 1, 1);
    send_frame(r.d[2], bcast, 64, 1, 1);
    CHECK_EQ(simnet_pending(r.net), 2);
    rig_down(&r);

    /* A device outliving its network stays safe to use and to destroy. */
    struct simnet *net;
    struct netdev *d;
    CHECK_EQ(simnet_create(&net, NULL), 0);
    CHECK_EQ(simnet_attach(net, heaps[0], macs[0], 1500, &d), 0);
    CHECK_EQ(simnet_inject(net, d, hdr, ETH_HDR_LEN), 0);
    simnet_destroy(net);
    send_frame(d, macs[1], 64, 1, 2);
    CHECK_EQ(simnet_stats(d)->sent, 1);
    CHECK_EQ(recv_one(d, got, sizeof(got)), ETH_HDR_LEN);
    d->ops->destroy(d);
    CHECK_EQ(heap_stats(heaps[0])->bytes_in_use, 0);
}

/* FNV-1a, to fingerprint a run. */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* Every fault at once, a fixed traffic pattern; returns a hash of what was
 * delivered where and when, and of every counter. */
static uint64_t run_scenario(uint64_t seed)
{
    struct rig r;
    rig_up(&r, &(struct simnet_config){.seed = seed, .start_ns = T0, .rx_ring = 64});
    struct sim_link l = {.loss_ppm = 50000,
                         .dup_ppm = 50000,
                         .reorder_ppm = 50000,
                         .corrupt_ppm = 50000,
                         .delay_ns = 2000,
                         .jitter_ns = 3000,
                         .rate_bps = 1000000000};
    for (int i = 0; i < NDEV; i++)
        simnet_set_link(r.net, r.d[i], &l);
    uint64_t traffic = 42, h = 0xcbf29ce484222325ull;
    for (uint64_t step = 0; step < 3000; step++) {
        int from = (int)(trand(&traffic) % NDEV);
        uint64_t pick = trand(&traffic) % 4;
        const uint8_t *dst = pick == 3 ? bcast : macs[(from + 1 + (int)(pick % 2)) % NDEV];
        uint32_t len = ETH_HDR_LEN + 8 + (uint32_t)(trand(&traffic) % 300);
        send_frame(r.d[from], dst, len, step, 1 + (int)(trand(&traffic) % 3));
        simnet_advance(r.net, simnet_now(r.net) + trand(&traffic) % 2000);
        /* A stretch without polling overflows the (small) rings. */
        bool poll = step < 1000 || step >= 1500;
        for (int i = 0; i < NDEV; i++) {
            struct rxframe f[8];
            int n = r.d[i]->ops->rx_burst(r.d[i], f, poll ? (int)(trand(&traffic) % 8) : 0);
            for (int k = 0; k < n; k++) {
                uint64_t now = simnet_now(r.net);
                h = fnv(h, &now, sizeof(now));
                h = fnv(h, &i, sizeof(i));
                h = fnv(h, &f[k].len, sizeof(f[k].len));
                h = fnv(h, f[k].data, f[k].len);
                heap_unref(heaps[i], f[k].blk);
            }
        }
    }
    for (int i = 0; i < NDEV; i++)
        h = fnv(h, simnet_stats(r.d[i]), sizeof(struct sim_stats));
    const struct sim_stats *s = simnet_stats(r.d[0]);
    CHECK(s->lost && s->duplicated && s->reordered && s->corrupted);
    CHECK(simnet_stats(r.d[1])->ring_full > 0);
    rig_down(&r);
    return h;
}

static void test_determinism(void)
{
    uint64_t a = run_scenario(7), b = run_scenario(7), c = run_scenario(8);
    CHECK(a == b);
    CHECK(a != c);
}

static uint32_t rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static void test_pcap(void)
{
    char path[256];
    const char *dir = getenv("TMPDIR");
    snprintf(path, sizeof(path), "%s/test_simdev.%d.pcap", dir && *dir ? dir : "/tmp", (int)getpid());
    struct rig r;
    uint64_t start = 5 * 1000000000ull + 123;
    rig_up(&r, &(struct simnet_config){.seed = 5, .start_ns = start, .pcap_path = path});
    enum { N = 10 };
    static uint8_t frames[N][2048];
    uint32_t lens[N];
    for (int i = 0; i < N - 1; i++) {
        lens[i] = 60 + (uint32_t)i * 150;
        make_frame(frames[i], lens[i], i % 2 ? bcast : macs[1], macs[0], (uint64_t)i);
        send_raw(r.d[0], frames[i], lens[i], 1 + i % 3);
        simnet_advance(r.net, simnet_now(r.net) + 999999999);
    }
    /* Captured before the MTU check: the stack's mistakes show in the trace. */
    enum { BIG = 70000 };
    uint8_t *big = calloc(1, BIG);
    CHECK(big);
    make_frame(big, 64, macs[1], macs[0], 77);
    send_raw(r.d[0], big, BIG, 2);
    free(big);
    lens[N - 1] = BIG;
    CHECK_EQ(simnet_stats(r.d[0])->too_big, 1);
    rig_down(&r);

    FILE *f = fopen(path, "rb");
    CHECK(f);
    uint8_t hdr[24];
    CHECK_EQ(fread(hdr, 1, 24, f), 24);
    CHECK_EQ(rd32(hdr), 0xa1b23c4d);
    CHECK_EQ(hdr[4] | hdr[5] << 8, 2);
    CHECK_EQ(hdr[6] | hdr[7] << 8, 4);
    CHECK_EQ(rd32(hdr + 16), 65535);
    CHECK_EQ(rd32(hdr + 20), 1);
    int n = 0;
    uint8_t rec[16];
    static uint8_t data[65535];
    while (fread(rec, 1, 16, f) == 16) {
        CHECK(n < N);
        uint64_t t = start + (uint64_t)n * 999999999;
        CHECK_EQ(rd32(rec), t / 1000000000);
        CHECK_EQ(rd32(rec + 4), t % 1000000000);
        CHECK_EQ(rd32(rec + 8), MIN(lens[n], 65535));
        CHECK_EQ(rd32(rec + 12), lens[n]);
        uint32_t caplen = rd32(rec + 8);
        CHECK_EQ(fread(data, 1, caplen, f), caplen);
        if (n < N - 1)
            CHECK(memcmp(data, frames[n], caplen) == 0);
        n++;
    }
    CHECK_EQ(n, N);
    fclose(f);
    if (getenv("DEMI_KEEP_PCAP"))
        fprintf(stderr, "pcap kept: %s\n", path);
    else
        CHECK_EQ(unlink(path), 0);
}

int main(void)
{
    for (int i = 0; i < NDEV; i++)
        CHECK_EQ(heap_create(&heaps[i], (size_t)64 << 20, CONFIG_HUGE_OFF), 0);
    test_unicast();
    test_broadcast_and_unknown();
    test_delay_and_jitter();
    test_loss();
    test_duplication();
    test_corruption();
    test_reorder();
    test_mtu();
    test_ring_full();
    test_rx_alloc_fail();
    test_rate();
    test_tap();
    test_odd_input();
    test_determinism();
    test_pcap();
    for (int i = 0; i < NDEV; i++)
        heap_destroy(heaps[i]);
    return 0;
}
