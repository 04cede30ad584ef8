/*
 * dev/xdp: AF_XDP device (libxdp) on one queue, UMEM in the DMA heap.
 */
#ifndef DEMI_DEV_XDP_H
#define DEMI_DEV_XDP_H

#include "dev/netdev.h"

#include <stdbool.h>

/* A device on queue @queue of @ifname; @native: driver mode instead of
 * skb mode. Errors are logged in one line (no interface, not root, an XDP
 * program already attached, ...). */
int xdp_dev_create(struct heap *heap, const char *ifname, uint32_t queue, bool native, struct netdev **out);

#endif
