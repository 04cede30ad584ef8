/*
 * Queue descriptor table (see qtable.h).
 */
#include "core/qtable.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void qtable_init(struct qtable *t)
{
    memset(t, 0, sizeof(*t));
}

void qtable_fini(struct qtable *t)
{
    free(t->e);
    memset(t, 0, sizeof(*t));
}

static void push_free(struct qtable *t, uint32_t i)
{
    t->e[i].next_free = 0;
    if (t->free_tail)
        t->e[t->free_tail - 1].next_free = i + 1;
    else
        t->free_head = i + 1;
    t->free_tail = i + 1;
}

static int grow(struct qtable *t)
{
    if (t->cap >= QTABLE_MAX)
        return EMFILE;
    uint32_t cap = t->cap ? t->cap * 2 : 256;
    if (cap > QTABLE_MAX)
        cap = QTABLE_MAX;
    struct qentry *e = realloc(t->e, cap * sizeof(*e));
    if (!e)
        return ENOMEM;
    memset(e + t->cap, 0, (cap - t->cap) * sizeof(*e));
    t->e = e;
    for (uint32_t i = t->cap; i < cap; i++)
        push_free(t, i);
    t->cap = cap;
    return 0;
}

int qtable_alloc(struct qtable *t, struct libos *los, void *q, int *qd_out)
{
    if (!t->free_head) {
        int err = grow(t);
        if (err)
            return err;
    }
    uint32_t i = t->free_head - 1;
    t->free_head = t->e[i].next_free;
    if (!t->free_head)
        t->free_tail = 0;
    t->e[i].los = los;
    t->e[i].q = q;
    t->e[i].next_free = 0;
    t->used++;
    *qd_out = (int)i;
    return 0;
}

void qtable_free(struct qtable *t, int qd)
{
    if (!qtable_get(t, qd))
        return;
    t->e[qd].los = 0;
    t->e[qd].q = 0;
    t->used--;
    push_free(t, (uint32_t)qd);
}
