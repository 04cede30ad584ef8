/*
 * inet/group: stack instances of one process that share a device, one per
 * thread and queue (libdemi.queues > 1). Each instance owns its flows;
 * a frame that reaches the wrong instance's queue is copied to its owner
 * through a single-producer single-consumer ring (one per ordered pair of
 * instances), and ARP frames are copied to every instance.
 *
 * Joining and leaving take a process-wide mutex (control path only); the
 * rings take no lock. A member sleeps with its runtime's bell armed
 * (core/bell.h), and a sender rings it.
 */
#ifndef DEMI_INET_GROUP_H
#define DEMI_INET_GROUP_H

#include <stdbool.h>
#include <stdint.h>

#define INET_GROUP_MAX 16         /* instances sharing one device, at most */
#define INET_GROUP_ALL UINT32_MAX /* inet_group_steer: every instance */

struct inet_group;
struct bell;

/* Joins the group named @key (created by its first member) of @n
 * instances; @want is the index asked for (UINT32_MAX: the lowest free
 * one). @frame_max is the largest frame a ring carries (the group's is
 * its first member's). @bell (a reference is taken; NULL: never woken)
 * is rung when a frame is handed to this member. Errors: EINVAL (@n
 * differs from the group's, or @want >= @n), EBUSY (@want is taken, or
 * all @n are), ENOMEM. */
int inet_group_join(const char *key, uint32_t n, uint32_t want, uint32_t frame_max, struct bell *bell,
                    struct inet_group **out, uint32_t *index);
void inet_group_leave(struct inet_group *g, uint32_t index);

/* Which of @n instances owns a received Ethernet frame (INET_GROUP_ALL:
 * each needs it), asked by instance @self, which keeps what the rule
 * cannot place; decided from the frame alone, so that every instance
 * agrees whichever queue it reached (the rule: group.c, libdemi(7)). */
uint32_t inet_group_steer(uint32_t n, uint32_t self, const uint8_t *f, uint32_t len);

/* Copies a frame into the ring from @from to @to; false if @to has no
 * member now, the ring is full, or the frame is larger than the group's
 * frames (the frame is dropped: counted by the caller). */
bool inet_group_send(struct inet_group *g, uint32_t from, uint32_t to, const uint8_t *data, uint32_t len,
                     uint32_t flags);

/* The oldest frame in the ring from @from to @self, or NULL; consumed by
 * inet_group_next. */
const uint8_t *inet_group_peek(struct inet_group *g, uint32_t from, uint32_t self, uint32_t *len, uint32_t *flags);
void inet_group_next(struct inet_group *g, uint32_t from, uint32_t self);

/* Whether a frame waits for @self in any ring: looked at with the bell
 * armed, before sleeping. */
bool inet_group_pending(struct inet_group *g, uint32_t self);

#endif
