/*
 * catnip: libdemi's TCP/IP stack (src/inet) on a DPDK port (dev/dpdk):
 * no kernel on the data path, zero copy between the application's heap
 * buffers and the NIC.
 *
 * Configuration: dpdk.eal_init (the EAL's arguments: the device, memory;
 * required), demikernel.local_ipv4_addr (required),
 * demikernel.local_link_addr (picks the port with that MAC; otherwise the
 * first port, which then uses this MAC), dpdk.mbufs / rx_ring / tx_ring.
 * With libdemi.queues > 1, the instances of the process (one per thread)
 * share the port, one queue pair each.
 */
#include "core/log.h"
#include "dev/dpdk.h"
#include "inet/group.h"
#include "libos/inetos.h"
#include "libos/libos.h"

#include <errno.h>
#include <stdio.h>

/* The largest frame a shared port's receive buffers hold (2 KiB of data
 * room: DPDK's default mbuf). */
#define CATNIP_FRAME_MAX 2048

int catnip_create(struct runtime *rt, struct libos **out)
{
    const struct config *c = &rt->cfg;
    if (c->eal_argc == 0) {
        log_error("catnip: dpdk.eal_init (EAL_INIT) is empty: name a device, e.g. "
                  "\"--no-pci --vdev=net_memif0,role=server,socket=/tmp/m.sock --no-huge\"");
        return EINVAL;
    }
    if (!c->has_local_ipv4_addr) {
        log_error("catnip: demikernel.local_ipv4_addr (LOCAL_IPV4_ADDR) is not set");
        return EINVAL;
    }
    /* libdemi.queues > 1: the process's instances share one port, a queue
     * pair each; frames that reach the wrong queue are handed over
     * (inet/group.h). One such port per process (per local_link_addr). */
    char key[64];
    if (c->has_local_link_addr)
        snprintf(key, sizeof(key), "catnip %02x:%02x:%02x:%02x:%02x:%02x", c->local_link_addr[0],
                 c->local_link_addr[1], c->local_link_addr[2], c->local_link_addr[3], c->local_link_addr[4],
                 c->local_link_addr[5]);
    else
        snprintf(key, sizeof(key), "catnip first port");
    struct inet_group *group;
    uint32_t queue;
    int e = inetos_group_join(rt, key, CATNIP_FRAME_MAX, &group, &queue);
    if (e)
        return e;
    struct netdev *dev;
    e = dpdk_dev_create(rt->heap, c, group ? queue : 0, group ? c->queues : 1, &dev);
    if (e) {
        if (group)
            inet_group_leave(group, queue);
        return e;
    }
    return inetos_create(rt, dev, group, group ? queue : 0, "catnip", "the DPDK port", out);
}
