/*
 * dev/dpdk: one DPDK ethdev port as a netdev, zero copy both ways.
 *
 * Receive buffers are carved from the runtime's heap (heap_carve) and
 * given to DPDK as the pinned external buffers of the port's mbuf pool, so
 * a received frame is a heap block: the stack and the application hold it
 * by reference, and its last reference puts the mbuf back in the pool.
 * Transmit segments (heap blocks: the stack's headers, the application's
 * sga buffers, received frames being echoed) are attached to mbufs as
 * external buffers; DPDK's free callback drops the heap reference. Ports
 * that cannot take chained mbufs, and PMDs that cannot receive into an
 * external-buffer pool (net_af_xdp), fall back to copies, which are
 * counted (netdev_stats.copied_bytes).
 *
 * The EAL is initialised once per process from the config's dpdk.eal_init
 * (never the program's argv); see dpdk_dev_create.
 */
#ifndef DEMI_DEV_DPDK_H
#define DEMI_DEV_DPDK_H

#include "core/config.h"
#include "dev/netdev.h"

/* The port for @c (its MAC is demikernel.local_link_addr if one matches,
 * else the first port), started with one RX and one TX queue. Errors are
 * one logged line each: EINVAL (bad EAL arguments or config), ENODEV (no
 * port), ENOMEM (no DPDK memory: hugepages?), EBUSY (port in use by
 * another runtime), ENOTSUP (DPDK cannot start here). */
int dpdk_dev_create(struct heap *heap, const struct config *c, struct netdev **out);

#endif
