/*
 * A doorbell: how another thread wakes an instance that sleeps in its
 * device's idle wait (frames handed over by another instance, a message in
 * a memory queue). An eventfd and a flag: the sleeper arms (flag set, then
 * a full fence), looks for work once more, and sleeps with the eventfd in
 * its wait set only if there was none; a producer publishes its work, then
 * (full fence) rings, which writes the eventfd only while the flag is set.
 * Either the sleeper sees the work or the producer sees the flag. The bell
 * is reference counted: a producer may keep one after its instance is gone.
 */
#ifndef DEMI_CORE_BELL_H
#define DEMI_CORE_BELL_H

#include <stdatomic.h>
#include <stdbool.h>

struct bell {
    _Atomic bool armed;
    _Atomic int refs;
    int fd; /* eventfd, non-blocking */
};

/* A bell with one reference. ENOMEM, or the errno of eventfd. */
int bell_create(struct bell **out);
void bell_ref(struct bell *b);
/* Drops a reference; the last one closes the eventfd and frees the bell. */
void bell_unref(struct bell *b);

/* Producer side, after publishing the work. */
void bell_ring(struct bell *b);

/* Sleeper side: bell_arm, look for work, sleep on b->fd if none, then
 * bell_disarm (clears the flag and drains the eventfd). */
void bell_arm(struct bell *b);
void bell_disarm(struct bell *b);

#endif
