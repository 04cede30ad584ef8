/*
 * The adapter that makes the TCP/IP stack (src/inet) a libOS: shared by
 * the device libOSes, catnip (DPDK) and catpowder (AF_XDP / AF_PACKET),
 * which only build a device. src/inet never includes this.
 */
#ifndef DEMI_LIBOS_INETOS_H
#define DEMI_LIBOS_INETOS_H

#include "core/config.h"
#include "inet/inet.h"
#include "libos/libos.h"

/* The stack's configuration from the global one: the stack's defaults
 * (RFC values and latency-first choices), then the keys of @cfg that
 * apply (local address, MTU, MSS, ARP settings, TCP options). */
void inetos_config(struct inet_config *ic, const struct config *cfg);

/* With libdemi.queues > 1, joins the instances of this process sharing
 * the device named @key (inet/group.h): *index is the queue this instance
 * must open. *g is NULL when the device is this instance's alone. */
int inetos_group_join(struct runtime *rt, const char *key, uint32_t frame_max, struct inet_group **g,
                      uint32_t *index);

/* The libOS of a device libOS: the stack, configured from @rt's config
 * with the MTU clamped to the device's, on @dev, which the libOS then owns
 * (destroyed here if the stack cannot start), one of @group (NULL: alone)
 * at @group_index, which it leaves when destroyed (here too on failure).
 * @who names the libOS and @where the device in log lines. */
int inetos_create(struct runtime *rt, struct netdev *dev, struct inet_group *group, uint32_t group_index,
                  const char *who, const char *where, struct libos **out);

#endif
