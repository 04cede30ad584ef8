/*
 * Queue descriptor table: maps the small integers the application holds
 * (qds) to a libOS and its queue object. Freed descriptors are reused in
 * FIFO order, so a stale qd is unlikely to name a new queue soon.
 */
#ifndef DEMI_CORE_QTABLE_H
#define DEMI_CORE_QTABLE_H

#include <stdint.h>

#define QTABLE_MAX (1u << 20)

struct libos;

struct qentry {
    struct libos *los; /* NULL: free */
    void *q;
    uint32_t next_free; /* index + 1, 0 ends */
};

struct qtable {
    struct qentry *e;
    uint32_t cap;
    uint32_t used;
    uint32_t free_head, free_tail; /* index + 1 */
};

void qtable_init(struct qtable *t);
void qtable_fini(struct qtable *t);
/* Returns 0 and the new qd, or EMFILE / ENOMEM. */
int qtable_alloc(struct qtable *t, struct libos *los, void *q, int *qd_out);
/* The live entry for @qd, or NULL. */
static inline struct qentry *qtable_get(struct qtable *t, int qd)
{
    if (qd < 0 || (uint32_t)qd >= t->cap || !t->e[qd].los)
        return 0;
    return &t->e[qd];
}
void qtable_free(struct qtable *t, int qd);

#endif
