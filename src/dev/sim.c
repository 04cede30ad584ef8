/*
 * dev/sim: the in-process simulated network (see sim.h). Devices transmit
 * by copying each packet into a frame in the network's own memory (the
 * wire), which waits in a min-heap keyed by (arrival time, send sequence)
 * until the test advances the clock; delivery copies it into a block of the
 * receiver's heap and queues it on the receiver's bounded rx ring.
 *
 * Every random choice comes from one xoshiro256** generator seeded from
 * cfg->seed and is drawn in a fixed order per frame, so the same seed and
 * the same calls give the same run, byte for byte.
 *
 * Must never: touch a real network, sleep, read the wall clock or any
 * entropy source, abort, or keep a reference to a sender's block after
 * tx_burst returns.
 *
 * Counters: sent, lost, too_big, duplicated, reordered, corrupted,
 * no_receiver and tapped belong to the sending device (what happened to
 * its frames); delivered, ring_full and rx_alloc_fail belong to the
 * receiving device (what happened at its ring), so a broadcast counts once
 * per receiver.
 */
#include "dev/sim.h"

#include "core/common.h"
#include "core/log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIM_RING_DEFAULT 4096
/* No simulated wire carries a frame longer than this; longer ones are too_big. */
#define SIM_FRAME_MAX ((uint64_t)64 << 20)
#define SIM_NS        1000000000ull
#define PPM           1000000u

#define PCAP_MAGIC_NS   0xa1b23c4du
#define PCAP_SNAPLEN    65535u
#define PCAP_LINK_ETHER 1u

/* A frame on the wire. */
struct flight {
    uint64_t at;   /* arrival time */
    uint64_t seq;  /* send order: breaks ties in arrival time */
    uint32_t from; /* the sender's device id (ids are never reused) */
    uint32_t len;
    uint8_t data[];
};

struct simdev {
    struct netdev nd;
    struct simnet *net; /* NULL once the network is gone */
    struct simdev *next;
    uint32_t id;
    struct sim_link link;
    uint64_t wire_free; /* when the egress link finishes its last frame */
    struct sim_stats stats;
    struct rxframe *ring;
    uint32_t ring_cap, ring_head, ring_len;
};

struct simnet {
    uint64_t now;
    uint64_t rng[4];
    uint64_t next_seq;
    uint32_t next_id;
    uint32_t ring_cap;
    struct simdev *devs; /* in attach order, which is broadcast order */
    struct flight **fl;  /* binary min-heap by (at, seq) */
    size_t nfl, fl_cap;
    FILE *pcap;
    bool pcap_dirty;
    sim_tap_fn tap;
    void *tap_arg;
};

static const struct sim_stats zero_stats;
static const struct netdev_ops sim_ops;

/* The generator: splitmix64 expands the seed, xoshiro256** draws. */
static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(struct simnet *net)
{
    uint64_t *s = net->rng;
    uint64_t r = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

/* Uniform in [0, n) for n > 0 (multiply-shift; the bias is below 2^-40 here). */
static uint64_t rng_below(struct simnet *net, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)rng_next(net) * n) >> 64);
}

/* True with probability ppm / 10^6. Draws nothing when the answer is certain,
 * so a perfect link leaves the generator untouched. */
static bool rng_ppm(struct simnet *net, uint32_t ppm)
{
    if (ppm == 0)
        return false;
    if (ppm >= PPM)
        return true;
    return rng_below(net, PPM) < ppm;
}

/* Times saturate one short of UINT64_MAX, which means "nothing in flight". */
static uint64_t time_add(uint64_t a, uint64_t b)
{
    uint64_t r;
    if (__builtin_add_overflow(a, b, &r) || r == UINT64_MAX)
        return UINT64_MAX - 1;
    return r;
}

static inline struct simdev *to_simdev(struct netdev *d)
{
    return container_of(d, struct simdev, nd);
}

static bool is_sim(const struct netdev *d)
{
    return d && d->ops == &sim_ops;
}

/* The in-flight min-heap. */
static bool fl_before(const struct flight *a, const struct flight *b)
{
    return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static int fl_push(struct simnet *net, struct flight *f)
{
    if (net->nfl == net->fl_cap) {
        size_t cap = net->fl_cap ? net->fl_cap * 2 : 256;
        struct flight **fl = realloc(net->fl, cap * sizeof(*fl));
        if (!fl)
            return ENOMEM;
        net->fl = fl;
        net->fl_cap = cap;
    }
    size_t i = net->nfl++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!fl_before(f, net->fl[parent]))
            break;
        net->fl[i] = net->fl[parent];
        i = parent;
    }
    net->fl[i] = f;
    return 0;
}

static struct flight *fl_pop(struct simnet *net)
{
    struct flight *top = net->fl[0];
    struct flight *last = net->fl[--net->nfl];
    size_t n = net->nfl, i = 0;
    if (n == 0)
        return top;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && fl_before(net->fl[c + 1], net->fl[c]))
            c++;
        if (!fl_before(net->fl[c], last))
            break;
        net->fl[i] = net->fl[c];
        i = c;
    }
    net->fl[i] = last;
    return top;
}

static struct simdev *dev_by_id(struct simnet *net, uint32_t id)
{
    for (struct simdev *d = net->devs; d; d = d->next)
        if (d->id == id)
            return d;
    return NULL;
}

static struct simdev *dev_by_mac(struct simnet *net, const uint8_t mac[6])
{
    for (struct simdev *d = net->devs; d; d = d->next)
        if (memcmp(d->nd.mac, mac, 6) == 0)
            return d;
    return NULL;
}

static bool is_broadcast(const uint8_t mac[6])
{
    static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    return memcmp(mac, bcast, 6) == 0;
}

/* Copies a frame into a block of @d's heap and queues it. This is the
 * receiver's "DMA" and the second of the two copies a frame costs. */
static int ring_put(struct simdev *d, const uint8_t *data, uint32_t len)
{
    if (d->ring_len == d->ring_cap) {
        d->stats.ring_full++;
        return ENOBUFS;
    }
    /* The heap has no zero-byte blocks; an empty frame gets a 1-byte one. */
    struct heap_blk *b = heap_alloc(d->nd.heap, len ? len : 1);
    if (!b) {
        d->stats.rx_alloc_fail++;
        return ENOMEM;
    }
    uint8_t *p = heap_blk_data(d->nd.heap, b);
    if (len)
        memcpy(p, data, len);
    uint32_t slot = (uint32_t)(((uint64_t)d->ring_head + d->ring_len) % d->ring_cap);
    d->ring[slot] = (struct rxframe){.blk = b, .data = p, .len = len, .flags = 0};
    d->ring_len++;
    d->stats.delivered++;
    return 0;
}

static void pcap_close(struct simnet *net)
{
    if (net->pcap && fclose(net->pcap) != 0)
        log_warn("sim: closing the pcap file failed: %s", strerror(errno));
    net->pcap = NULL;
}

/* One pcap record, stamped with the virtual clock. A write error stops the
 * capture (once) rather than failing the transmission. */
static void pcap_record(struct simnet *net, const uint8_t *data, uint32_t len)
{
    uint32_t caplen = MIN(len, PCAP_SNAPLEN);
    uint32_t hdr[4] = {(uint32_t)(net->now / SIM_NS), (uint32_t)(net->now % SIM_NS), caplen, len};
    if (fwrite(hdr, sizeof(hdr), 1, net->pcap) != 1 || (caplen && fwrite(data, caplen, 1, net->pcap) != 1)) {
        log_warn("sim: writing the pcap file failed; capture stopped");
        pcap_close(net);
        return;
    }
    net->pcap_dirty = true;
}

static int pcap_open(struct simnet *net, const char *path)
{
    net->pcap = fopen(path, "wb");
    if (!net->pcap)
        return errno ? errno : EIO;
    /* Native byte order: readers recognise either order from the magic. */
    struct {
        uint32_t magic;
        uint16_t major, minor;
        int32_t thiszone;
        uint32_t sigfigs, snaplen, linktype;
    } hdr = {PCAP_MAGIC_NS, 2, 4, 0, 0, PCAP_SNAPLEN, PCAP_LINK_ETHER};
    _Static_assert(sizeof(hdr) == 24, "pcap file header is 24 bytes");
    if (fwrite(&hdr, sizeof(hdr), 1, net->pcap) != 1 || fflush(net->pcap) != 0) {
        int err = errno ? errno : EIO;
        pcap_close(net);
        return err;
    }
    return 0;
}

/* Puts one copy of a frame on the wire, departing the link at @depart:
 * corruption, then delay, jitter and reordering. Takes @f. */
static void launch(struct simnet *net, struct simdev *sd, struct flight *f, uint64_t depart)
{
    const struct sim_link *l = &sd->link;
    if (rng_ppm(net, l->corrupt_ppm) && f->len > ETH_HDR_LEN) {
        uint64_t off = ETH_HDR_LEN + rng_below(net, f->len - ETH_HDR_LEN);
        f->data[off] ^= (uint8_t)(1u << rng_below(net, 8));
        sd->stats.corrupted++;
    }
    uint64_t at = time_add(depart, l->delay_ns);
    if (l->jitter_ns)
        at = time_add(at, l->jitter_ns == UINT64_MAX ? rng_next(net) : rng_below(net, l->jitter_ns + 1));
    if (rng_ppm(net, l->reorder_ppm)) {
        uint64_t hold = l->reorder_ns;
        if (!hold) {
            if (__builtin_mul_overflow(l->delay_ns, 3, &hold))
                hold = UINT64_MAX;
            hold = time_add(hold, 1000);
        }
        at = time_add(at, hold);
        sd->stats.reordered++;
    }
    f->at = at;
    f->seq = net->next_seq++;
    f->from = sd->id;
    if (fl_push(net, f)) {
        log_once(LOGL_WARN, "sim: out of memory for frames in flight; dropping");
        free(f);
    }
}

/* Transmits one packet: gather, release, capture, tap, then the link. */
static void transmit(struct simdev *sd, struct pkt *p)
{
    struct simnet *net = sd->net;
    uint16_t nseg = MIN(p->nseg, PKT_MAX_SEGS);
    uint64_t len = 0;
    for (uint16_t i = 0; i < nseg; i++)
        if (p->seg[i].data)
            len += p->seg[i].len;

    /* The device's "DMA": gather the segments into one contiguous frame in
     * the wire's memory. A copy is unavoidable here: the sender gets its
     * blocks back now, and the receiver's bytes must live in its own heap. */
    struct flight *f = NULL;
    if (len <= SIM_FRAME_MAX && (f = malloc(sizeof(*f) + len))) {
        f->len = (uint32_t)len;
        uint8_t *w = f->data;
        for (uint16_t i = 0; i < nseg; i++) {
            if (p->seg[i].data && p->seg[i].len) {
                memcpy(w, p->seg[i].data, p->seg[i].len);
                w += p->seg[i].len;
            }
        }
    }
    /* Every segment of a packet handed to a device is a block of that
     * device's (the runtime's) heap. */
    for (uint16_t i = 0; i < nseg; i++)
        if (p->seg[i].blk)
            heap_unref(sd->nd.heap, p->seg[i].blk);

    sd->stats.sent++;
    sd->nd.stats.tx_frames++;
    sd->nd.stats.tx_bytes += len;
    if (!f) {
        if (len > SIM_FRAME_MAX)
            sd->stats.too_big++;
        else
            log_once(LOGL_WARN, "sim: out of memory for a frame on the wire; dropping");
        return;
    }
    if (!net) { /* the network was destroyed under this device */
        free(f);
        return;
    }
    if (net->pcap)
        pcap_record(net, f->data, f->len);
    if (net->tap && net->tap(net->tap_arg, &sd->nd, f->data, f->len)) {
        sd->stats.tapped++;
        free(f);
        return;
    }

    const struct sim_link *l = &sd->link;
    uint32_t ip_len = f->len > ETH_HDR_LEN ? f->len - ETH_HDR_LEN : 0;
    if (ip_len > sd->nd.mtu || (l->mtu && ip_len > l->mtu)) {
        sd->stats.too_big++;
        free(f);
        return;
    }

    /* Serialization: a frame starts when the link has finished the previous
     * one and occupies it for len * 8 / rate seconds (Ethernet framing
     * overhead such as preamble and gap is not modelled). Lost frames used
     * the link too: they vanish after it. */
    uint64_t depart = net->now;
    if (l->rate_bps) {
        uint64_t start = MAX(net->now, sd->wire_free);
        unsigned __int128 bits_ns = (unsigned __int128)f->len * 8 * SIM_NS;
        unsigned __int128 ser = (bits_ns + l->rate_bps - 1) / l->rate_bps;
        depart = time_add(start, ser > UINT64_MAX ? UINT64_MAX : (uint64_t)ser);
        sd->wire_free = depart;
    }
    if (rng_ppm(net, l->loss_ppm)) {
        sd->stats.lost++;
        free(f);
        return;
    }
    struct flight *dup = NULL;
    if (rng_ppm(net, l->dup_ppm)) {
        dup = malloc(sizeof(*dup) + f->len);
        if (dup) {
            dup->len = f->len;
            memcpy(dup->data, f->data, f->len);
            sd->stats.duplicated++;
        }
    }
    launch(net, sd, f, depart);
    if (dup)
        launch(net, sd, dup, depart);
}

static int sim_tx_burst(struct netdev *d, struct pkt *pkts, int n)
{
    if (!d || !pkts || n <= 0)
        return 0;
    struct simdev *sd = to_simdev(d);
    for (int i = 0; i < n; i++)
        transmit(sd, &pkts[i]);
    return n;
}

static int sim_rx_burst(struct netdev *d, struct rxframe *out, int max)
{
    if (!d || !out || max <= 0)
        return 0;
    struct simdev *sd = to_simdev(d);
    int n = 0;
    while (n < max && sd->ring_len) {
        out[n] = sd->ring[sd->ring_head];
        sd->ring_head = sd->ring_head + 1 == sd->ring_cap ? 0 : sd->ring_head + 1;
        sd->ring_len--;
        sd->nd.stats.rx_frames++;
        sd->nd.stats.rx_bytes += out[n].len;
        n++;
    }
    return n;
}

/* Frees the ring (dropping the references it holds on the device's heap)
 * and detaches. Frames still in flight to this device are dropped when they
 * arrive (no_receiver on their sender). */
static void sim_destroy(struct netdev *d)
{
    if (!d)
        return;
    struct simdev *sd = to_simdev(d);
    while (sd->ring_len) {
        heap_unref(sd->nd.heap, sd->ring[sd->ring_head].blk);
        sd->ring_head = sd->ring_head + 1 == sd->ring_cap ? 0 : sd->ring_head + 1;
        sd->ring_len--;
    }
    free(sd->ring);
    if (sd->net) {
        for (struct simdev **pp = &sd->net->devs; *pp; pp = &(*pp)->next) {
            if (*pp == sd) {
                *pp = sd->next;
                break;
            }
        }
    }
    free(sd);
}

static const struct netdev_ops sim_ops = {
    .name = "sim",
    .rx_burst = sim_rx_burst,
    .tx_burst = sim_tx_burst,
    .destroy = sim_destroy,
};

int simnet_create(struct simnet **out, const struct simnet_config *cfg)
{
    static const struct simnet_config defaults;
    if (!out)
        return EINVAL;
    if (!cfg)
        cfg = &defaults;
    struct simnet *net = calloc(1, sizeof(*net));
    if (!net)
        return ENOMEM;
    uint64_t s = cfg->seed;
    for (int i = 0; i < 4; i++)
        net->rng[i] = splitmix64(&s);
    net->now = cfg->start_ns;
    net->ring_cap = cfg->rx_ring ? cfg->rx_ring : SIM_RING_DEFAULT;
    if (cfg->pcap_path) {
        int err = pcap_open(net, cfg->pcap_path);
        if (err) {
            log_warn("sim: cannot write pcap file %s: %s", cfg->pcap_path, strerror(err));
            free(net);
            return err;
        }
    }
    *out = net;
    return 0;
}

void simnet_destroy(struct simnet *net)
{
    if (!net)
        return;
    /* Devices still attached are a caller bug; they are orphaned rather than
     * freed, so their later destroy (and any rx/tx meanwhile) stays safe. */
    if (net->devs)
        log_warn("sim: network destroyed with devices still attached");
    for (struct simdev *d = net->devs, *next; d; d = next) {
        next = d->next;
        d->net = NULL;
        d->next = NULL;
    }
    for (size_t i = 0; i < net->nfl; i++)
        free(net->fl[i]);
    free(net->fl);
    pcap_close(net);
    free(net);
}

int simnet_attach(struct simnet *net, struct heap *heap, const uint8_t mac[6], uint32_t mtu, struct netdev **out)
{
    if (!net || !heap || !mac || !out || mtu == 0 || (mac[0] & 1))
        return EINVAL;
    if (dev_by_mac(net, mac))
        return EEXIST;
    struct simdev *sd = calloc(1, sizeof(*sd));
    if (!sd)
        return ENOMEM;
    sd->ring = calloc(net->ring_cap, sizeof(*sd->ring));
    if (!sd->ring) {
        free(sd);
        return ENOMEM;
    }
    sd->ring_cap = net->ring_cap;
    sd->net = net;
    sd->id = ++net->next_id;
    sd->nd.ops = &sim_ops;
    memcpy(sd->nd.mac, mac, 6);
    sd->nd.mtu = mtu;
    sd->nd.offloads = 0;
    sd->nd.heap = heap;
    struct simdev **pp = &net->devs;
    while (*pp)
        pp = &(*pp)->next;
    *pp = sd;
    *out = &sd->nd;
    return 0;
}

void simnet_set_link(struct simnet *net, struct netdev *dev, const struct sim_link *link)
{
    static const struct sim_link perfect;
    if (!net || !is_sim(dev) || to_simdev(dev)->net != net)
        return;
    to_simdev(dev)->link = link ? *link : perfect;
}

void simnet_set_tap(struct simnet *net, sim_tap_fn fn, void *arg)
{
    if (!net)
        return;
    net->tap = fn;
    net->tap_arg = arg;
}

uint64_t simnet_now(const struct simnet *net)
{
    return net ? net->now : 0;
}

uint64_t simnet_next_event(const struct simnet *net)
{
    return net && net->nfl ? net->fl[0]->at : UINT64_MAX;
}

void simnet_advance(struct simnet *net, uint64_t t_ns)
{
    if (!net)
        return;
    if (t_ns > net->now)
        net->now = t_ns;
    while (net->nfl && net->fl[0]->at <= net->now) {
        struct flight *f = fl_pop(net);
        struct simdev *from = dev_by_id(net, f->from);
        if (f->len < 6) {
            /* Too short to carry a destination address. */
            if (from)
                from->stats.no_receiver++;
        } else if (is_broadcast(f->data)) {
            for (struct simdev *d = net->devs; d; d = d->next)
                if (d->id != f->from)
                    ring_put(d, f->data, f->len);
        } else {
            struct simdev *to = dev_by_mac(net, f->data);
            if (to)
                ring_put(to, f->data, f->len);
            else if (from)
                from->stats.no_receiver++;
        }
        free(f);
    }
    /* Flushed per advance, not per frame: a test that dies mid-run still
     * leaves a readable capture up to its last step. */
    if (net->pcap_dirty && net->pcap) {
        if (fflush(net->pcap) != 0) {
            log_warn("sim: writing the pcap file failed; capture stopped");
            pcap_close(net);
        }
        net->pcap_dirty = false;
    }
}

int simnet_inject(struct simnet *net, struct netdev *to, const void *frame, uint32_t len)
{
    if (!net || !is_sim(to) || to_simdev(to)->net != net || (!frame && len))
        return EINVAL;
    return ring_put(to_simdev(to), frame, len);
}

const struct sim_stats *simnet_stats(const struct netdev *dev)
{
    if (!is_sim(dev))
        return &zero_stats;
    return &container_of(dev, const struct simdev, nd)->stats;
}

uint64_t simnet_pending(const struct simnet *net)
{
    if (!net)
        return 0;
    uint64_t n = net->nfl;
    for (const struct simdev *d = net->devs; d; d = d->next)
        n += d->ring_len;
    return n;
}
