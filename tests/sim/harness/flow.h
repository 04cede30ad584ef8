/*
 * A bulk flow between two sim nodes for tests and benchmarks: pushes a
 * pattern of @size bytes in chunks (each array freed right after its push),
 * pops everything on the other side and checks every byte by offset.
 * flow_step() is called from a sw_run predicate; it does the application's
 * work and says whether the flow is done.
 */
#ifndef DEMI_TESTS_FLOW_H
#define DEMI_TESTS_FLOW_H

#include "simworld.h"

#define FLOW_PUSHES 4

struct flow {
    struct simnode *tx, *rx;
    void *txq, *rxq;
    size_t size, queued, received, chunk;
    uint64_t seed;
    struct sched_task *push[FLOW_PUSHES];
    struct sched_task *pop;
    bool done, failed;
    bool verify;
};

void flow_init(struct flow *f, struct simnode *tx, void *txq, struct simnode *rx, void *rxq, size_t size,
               uint64_t seed);
bool flow_step(struct flow *f);

/* Connects a client socket on @a to a listener on @b (port @port): the
 * two ends of an established connection. */
void sw_pair(struct simworld *w, struct simnode *a, struct simnode *b, uint16_t port, void **aq, void **bq);

#endif
