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
 * else the first port), started with one RX and one TX queue; with
 * @nq > 1, the port the process's instances share (libdemi.queues),
 * started by the first with @nq queue pairs, this instance on queue
 * @queue (receive then copies into the heap: the port's pools are not one
 * instance's). Errors are one logged line each: EINVAL (bad EAL arguments
 * or config, or another queue count than the port's), ENODEV (no port),
 * ENOMEM (no DPDK memory: hugepages?), EBUSY (port or queue in use by
 * another runtime), ENOTSUP (DPDK cannot start here). */
int dpdk_dev_create(struct heap *heap, const struct config *c, uint32_t queue, uint32_t nq, struct netdev **out);

#endif
