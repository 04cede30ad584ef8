/*
 * dev/netif: what the devices on a Linux interface (dev/packet, dev/xdp)
 * and catpowder share: the interface lookup, and the sleep on a socket
 * until a frame may have arrived.
 */
#ifndef DEMI_DEV_NETIF_H
#define DEMI_DEV_NETIF_H

#include <stdint.h>

/* MAC, MTU and index of a Linux interface. 0, ENODEV, EINVAL or an errno. */
int netif_info(const char *ifname, uint8_t mac[6], uint32_t *mtu, int *ifindex);

/* Sleeps until @fd or @also_fd (ignored if -1) is readable, a signal
 * arrives or @timeout_ns pass (UINT64_MAX: no limit): the wait op of a
 * device on a socket. */
void netif_wait_fd(int fd, int also_fd, uint64_t timeout_ns);

#endif
