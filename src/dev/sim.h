/*
 * dev/sim: an in-process network for testing the stack deterministically.
 * Any number of devices attach to one broadcast domain (frames go to the
 * device whose MAC matches, broadcast to all others). Time is virtual:
 * frames travel only when the test advances the network's clock. Each
 * device's egress link can lose, duplicate, reorder, delay and corrupt
 * frames and has an MTU, all drawn from one seeded generator, so the same
 * seed gives the same run. Every transmitted frame can go to a pcap file.
 *
 * Never touches a real network, never sleeps, never reads the wall clock.
 */
#ifndef DEMI_DEV_SIM_H
#define DEMI_DEV_SIM_H

#include "dev/netdev.h"

#include <stdint.h>

struct simnet;

struct simnet_config {
    uint64_t seed;         /* the fault generator's seed */
    uint64_t start_ns;     /* the clock's start */
    const char *pcap_path; /* NULL: no capture */
    uint32_t rx_ring;      /* frames a device queues before dropping (0: 4096) */
};

/* Faults and limits of the link on which a device transmits. Rates are in
 * parts per million of frames. */
struct sim_link {
    uint32_t loss_ppm;
    uint32_t dup_ppm;
    uint32_t reorder_ppm; /* such frames are held back reorder_ns extra */
    uint32_t corrupt_ppm; /* one bit flipped past the Ethernet header */
    uint64_t delay_ns;    /* one-way propagation delay */
    uint64_t jitter_ns;   /* uniform extra delay in [0, jitter_ns] (may reorder) */
    uint64_t reorder_ns;  /* hold-back for reordered frames (0: 3 * delay_ns + 1 us) */
    uint32_t mtu;         /* largest IP packet the link carries (0: no limit) */
    uint64_t rate_bps;    /* serialization rate (0: infinite) */
};

/* Per device. Egress counters (sent, lost, too_big, duplicated, reordered,
 * corrupted, no_receiver, tapped) are the sender's; delivered, ring_full and
 * rx_alloc_fail are the receiver's, so a broadcast counts once per receiver.
 * too_big also counts frames over the sender's own MTU, which tx_burst takes
 * and drops: the stack must never send one. */
struct sim_stats {
    uint64_t sent;          /* frames the device transmitted */
    uint64_t delivered;     /* copies put into a receiver's ring */
    uint64_t lost;          /* dropped by loss_ppm */
    uint64_t too_big;       /* dropped by the link or device MTU */
    uint64_t duplicated;    /* extra copies made */
    uint64_t reordered;     /* frames held back */
    uint64_t corrupted;     /* frames with a flipped bit */
    uint64_t ring_full;     /* dropped at the receiver: ring full */
    uint64_t no_receiver;   /* unicast to a MAC nobody has */
    uint64_t tapped;        /* dropped by the tap */
    uint64_t rx_alloc_fail; /* receiver heap full */
};

/* Called for every frame a device transmits, before faults; return
 * nonzero to drop it (counted as tapped). May read but not keep @frame. */
typedef int (*sim_tap_fn)(void *arg, struct netdev *from, const uint8_t *frame, uint32_t len);

/* @cfg NULL means all defaults. Returns 0, EINVAL, ENOMEM, or the error
 * opening cfg->pcap_path. */
int simnet_create(struct simnet **out, const struct simnet_config *cfg);
/* Destroys the network; its devices must be destroyed first. */
void simnet_destroy(struct simnet *net);

/* Attaches a new device: received frames are copied into blocks of @heap.
 * @mtu is the device's IP MTU. offloads: none (the stack computes and
 * checks every checksum). Returns 0, EINVAL (mtu 0, or a group address),
 * EEXIST (the MAC is taken) or ENOMEM. */
int simnet_attach(struct simnet *net, struct heap *heap, const uint8_t mac[6], uint32_t mtu, struct netdev **out);

void simnet_set_link(struct simnet *net, struct netdev *dev, const struct sim_link *link);
void simnet_set_tap(struct simnet *net, sim_tap_fn fn, void *arg);

uint64_t simnet_now(const struct simnet *net);
/* Time of the next frame arrival (UINT64_MAX: nothing in flight). */
uint64_t simnet_next_event(const struct simnet *net);
/* Moves the clock to @t_ns (never backwards), delivering every frame that
 * arrives by then into its receivers' rings, in arrival order (ties in
 * send order). */
void simnet_advance(struct simnet *net, uint64_t t_ns);

/* Puts a hand-built frame (starting with its Ethernet header) straight
 * into @to's ring now, as if it had arrived. Returns 0, ENOMEM (@to's heap
 * is full), ENOBUFS (its ring is full) or EINVAL (@to is not on @net). */
int simnet_inject(struct simnet *net, struct netdev *to, const void *frame, uint32_t len);

const struct sim_stats *simnet_stats(const struct netdev *dev);
/* Frames in flight plus frames waiting in rings (0: the network is idle). */
uint64_t simnet_pending(const struct simnet *net);

#endif
