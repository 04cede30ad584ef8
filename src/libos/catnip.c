/*
 * catnip: libdemi's TCP/IP stack (src/inet) on a DPDK port (dev/dpdk):
 * no kernel on the data path, zero copy between the application's heap
 * buffers and the NIC.
 *
 * Configuration: dpdk.eal_init (the EAL's arguments: the device, memory;
 * required), demikernel.local_ipv4_addr (required),
 * demikernel.local_link_addr (picks the port with that MAC; otherwise the
 * first port, which then uses this MAC), dpdk.mbufs / rx_ring / tx_ring.
 */
#include "core/log.h"
#include "dev/dpdk.h"
#include "libos/inetos.h"
#include "libos/libos.h"

#include <errno.h>

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
    struct netdev *dev;
    int e = dpdk_dev_create(rt->heap, c, &dev);
    if (e)
        return e;
    return inetos_create(rt, dev, NULL, 0, "catnip", "the DPDK port", out);
}
