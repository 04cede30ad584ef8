/*
 * catpowder: libdemi's TCP/IP stack (src/inet) on a Linux interface, over
 * AF_XDP or AF_PACKET. The kernel keeps the control path (the interface,
 * its namespace, the XDP program) and never sees our TCP or UDP: the
 * interface has no kernel address on our side.
 *
 * Configuration: raw_socket.linux_interface_name, demikernel.local_ipv4_addr
 * (both required), demikernel.local_link_addr (default: the interface's
 * MAC; another MAC puts the interface in promiscuous mode),
 * raw_socket.backend (auto tries AF_XDP, then AF_PACKET).
 *
 * With libdemi.queues > 1, the instances of the process (one per thread)
 * share the interface: AF_XDP sockets on queues 0..N-1 (veth spreads
 * frames over its queues only in native mode: in skb mode they all reach
 * queue 0), or AF_PACKET sockets in one PACKET_FANOUT hash group; frames
 * that reach the wrong instance are handed over (inet/group.h).
 */
#include "core/log.h"
#include "dev/netif.h"
#include "dev/packet.h"
#include "dev/xdp.h"
#include "inet/group.h"
#include "libos/inetos.h"
#include "libos/libos.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int catpowder_create(struct runtime *rt, struct libos **out)
{
    const struct config *c = &rt->cfg;
    if (!c->linux_interface_name[0]) {
        log_error("catpowder: raw_socket.linux_interface_name (LINUX_INTERFACE_NAME) is not set");
        return EINVAL;
    }
    if (!c->has_local_ipv4_addr) {
        log_error("catpowder: demikernel.local_ipv4_addr (LOCAL_IPV4_ADDR) is not set");
        return EINVAL;
    }
    uint8_t ifmac[6];
    uint32_t ifmtu;
    int ifindex;
    int e = netif_info(c->linux_interface_name, ifmac, &ifmtu, &ifindex);
    if (e) {
        log_error("catpowder: raw_socket.linux_interface_name: '%s': %s", c->linux_interface_name,
                  e == ENODEV ? "no such interface (in this network namespace)" : strerror(e));
        return e;
    }
    bool own_mac = c->has_local_link_addr && memcmp(c->local_link_addr, ifmac, 6) != 0;
    char key[64];
    snprintf(key, sizeof(key), "catpowder %s", c->linux_interface_name);
    struct inet_group *group;
    uint32_t queue;
    e = inetos_group_join(rt, key, ifmtu + 14, &group, &queue);
    if (e)
        return e;
    struct netdev *dev = NULL;
    if (strcmp(c->raw_backend, "packet") != 0) {
        e = xdp_dev_create(rt->heap, c->linux_interface_name, queue, c->xdp_native, &dev);
        if (e && (strcmp(c->raw_backend, "xdp") == 0 || group)) {
            /* Instances of one group must not mix backends. */
            if (group)
                inet_group_leave(group, queue);
            return e;
        }
        if (e)
            log_info("catpowder: AF_XDP unavailable on %s (%s); using AF_PACKET", c->linux_interface_name,
                     strerror(e));
    }
    if (!dev) {
        uint32_t fanout = group ? (((uint32_t)getpid() ^ (uint32_t)ifindex * 2654435761u) & 0xffff) | 1 : 0;
        e = packet_dev_create(rt->heap, c->linux_interface_name, own_mac, fanout, &dev);
        if (e) {
            if (group)
                inet_group_leave(group, queue);
            return e;
        }
    }
    if (own_mac)
        memcpy(dev->mac, c->local_link_addr, 6);
    return inetos_create(rt, dev, group, queue, "catpowder", c->linux_interface_name, out);
}
