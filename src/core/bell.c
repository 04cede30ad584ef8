/* Doorbells between threads: see bell.h. */
#include "core/bell.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

int bell_create(struct bell **out)
{
    struct bell *b = calloc(1, sizeof(*b));
    if (!b)
        return ENOMEM;
    b->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (b->fd < 0) {
        int e = errno;
        free(b);
        return e;
    }
    atomic_init(&b->armed, false);
    atomic_init(&b->refs, 1);
    *out = b;
    return 0;
}

void bell_ref(struct bell *b)
{
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
}

void bell_unref(struct bell *b)
{
    if (b && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1) {
        close(b->fd);
        free(b);
    }
}

void bell_ring(struct bell *b)
{
    atomic_thread_fence(memory_order_seq_cst); /* the work before the flag's read */
    if (atomic_load_explicit(&b->armed, memory_order_relaxed)) {
        uint64_t one = 1;
        ssize_t k = write(b->fd, &one, sizeof(one));
        (void)k; /* EAGAIN: the counter is full, so the sleeper wakes anyway */
    }
}

void bell_arm(struct bell *b)
{
    atomic_store_explicit(&b->armed, true, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst); /* the flag before the look for work */
}

void bell_disarm(struct bell *b)
{
    atomic_store_explicit(&b->armed, false, memory_order_relaxed);
    uint64_t v;
    ssize_t k = read(b->fd, &v, sizeof(v)); /* EAGAIN: nobody rang */
    (void)k;
}
