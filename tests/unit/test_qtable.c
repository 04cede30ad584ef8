/*
 * Queue descriptor table: allocation, lookup of live, freed and
 * out-of-range descriptors, FIFO reuse, growth.
 */
#include "core/qtable.h"
#include "tcheck.h"

int main(void)
{
    struct qtable t;
    qtable_init(&t);
    struct libos *fake = (struct libos *)&t;
    int qd, first;
    CHECK_EQ(qtable_alloc(&t, fake, (void *)1, &first), 0);
    CHECK(qtable_get(&t, first) && qtable_get(&t, first)->q == (void *)1);
    CHECK(qtable_get(&t, -1) == NULL);
    CHECK(qtable_get(&t, 1 << 30) == NULL);
    CHECK(qtable_get(&t, first + 1) == NULL); /* never allocated */
    qtable_free(&t, first);
    CHECK(qtable_get(&t, first) == NULL);
    qtable_free(&t, first); /* freeing twice is harmless */
    /* FIFO reuse: the freed descriptor comes back last. */
    CHECK_EQ(qtable_alloc(&t, fake, (void *)2, &qd), 0);
    CHECK(qd != first);
    /* Growth past the initial size keeps entries. */
    int qds[3000];
    for (int i = 0; i < 3000; i++) {
        CHECK_EQ(qtable_alloc(&t, fake, (void *)(uintptr_t)(i + 10), &qds[i]), 0);
    }
    for (int i = 0; i < 3000; i++)
        CHECK(qtable_get(&t, qds[i])->q == (void *)(uintptr_t)(i + 10));
    CHECK_EQ(t.used, 3001);
    qtable_fini(&t);
    printf("qtable: ok\n");
    return 0;
}
