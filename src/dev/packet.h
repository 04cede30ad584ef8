/*
 * dev/packet: AF_PACKET (TPACKET_V2 rings, qdisc bypass) device, and the
 * interface lookup every Linux-interface device uses.
 */
#ifndef DEMI_DEV_PACKET_H
#define DEMI_DEV_PACKET_H

#include "dev/netdev.h"

#include <stdbool.h>

/* MAC, MTU and index of a Linux interface. 0, ENODEV, EINVAL or an errno. */
int netif_info(const char *ifname, uint8_t mac[6], uint32_t *mtu, int *ifindex);

/* A device on @ifname; received frames land in @heap. @promisc: receive
 * frames for other MACs too (when the stack uses a MAC of its own). Errors
 * are logged in one line: ENODEV, EPERM (not root), ... */
int packet_dev_create(struct heap *heap, const char *ifname, bool promisc, struct netdev **out);

#endif
