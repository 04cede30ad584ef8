/*
 * dev/packet: AF_PACKET (TPACKET_V2 rings, qdisc bypass) device.
 */
#ifndef DEMI_DEV_PACKET_H
#define DEMI_DEV_PACKET_H

#include "dev/netdev.h"

#include <stdbool.h>

/* A device on @ifname; received frames land in @heap. @promisc: receive
 * frames for other MACs too (when the stack uses a MAC of its own).
 * @fanout: if not 0, the PACKET_FANOUT group (its low 16 bits) that the
 * sockets of several instances join so that each frame reaches one. Errors
 * are logged in one line: ENODEV, EPERM (not root), ... */
int packet_dev_create(struct heap *heap, const char *ifname, bool promisc, uint32_t fanout, struct netdev **out);

#endif
