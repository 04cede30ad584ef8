/*
 * Scheduler: wake/run bit masks, yields, completion and harvest, qtoken
 * generations (a consumed token is rejected), page growth past many
 * thousands of tasks, the done list's order, and spurious wakes.
 */
#include "core/sched.h"
#include "tcheck.h"

static int polls[5000];

static int count_poll(struct sched *s, struct sched_task *t)
{
    (void)s;
    polls[t->arg[0]]++;
    if (t->arg[1] && polls[t->arg[0]] >= (int)t->arg[1]) {
        t->qr.qr_opcode = DEMI_OPC_POP;
        t->qr.qr_ret = 0;
        return SCHED_DONE;
    }
    return t->arg[2] ? SCHED_YIELD : SCHED_PENDING;
}

int main(void)
{
    struct sched s;
    CHECK_EQ(sched_init(&s), 0);

    /* A pending task runs only when woken. */
    struct sched_task *a = sched_alloc(&s, count_poll, NULL);
    CHECK(a);
    a->arg[0] = 0;
    CHECK_EQ(sched_run(&s), 0);
    CHECK_EQ(polls[0], 0);
    sched_wake(&s, a);
    CHECK_EQ(sched_run(&s), 1);
    CHECK_EQ(polls[0], 1);
    CHECK_EQ(sched_run(&s), 0);

    /* A yielding task runs on every pass. */
    struct sched_task *y = sched_alloc(&s, count_poll, NULL);
    y->arg[0] = 1;
    y->arg[2] = 1;
    y->background = 1;
    sched_wake(&s, y);
    for (int i = 0; i < 10; i++)
        sched_run(&s);
    CHECK_EQ(polls[1], 10);

    /* Completion, lookup by qtoken, harvest, stale token. */
    struct sched_task *c = sched_alloc(&s, count_poll, NULL);
    c->arg[0] = 2;
    c->arg[1] = 3;
    c->qd = 42;
    demi_qtoken_t qt = sched_qtoken(c);
    CHECK(sched_lookup(&s, qt) == c);
    for (int i = 0; i < 3; i++) {
        sched_wake(&s, c);
        sched_run(&s);
    }
    CHECK_EQ(c->state, TASK_DONE);
    CHECK(s.done.head == c);
    demi_qresult_t qr;
    sched_harvest(&s, c, &qr);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
    CHECK_EQ(qr.qr_qd, 42);
    CHECK(qr.qr_qt == qt);
    CHECK(sched_lookup(&s, qt) == NULL);
    /* The slot is reused with a new generation: the old token stays dead. */
    struct sched_task *d = sched_alloc(&s, count_poll, NULL);
    CHECK(d == c);
    CHECK(sched_qtoken(d) != qt);
    CHECK(sched_lookup(&s, qt) == NULL);
    CHECK(sched_lookup(&s, sched_qtoken(d)) == d);
    CHECK(sched_lookup(&s, 0xffffffffull) == NULL); /* index out of range */
    /* Background tasks are not qtokens. */
    CHECK(sched_lookup(&s, sched_qtoken(y)) == NULL);
    sched_free(&s, d);

    /* Many tasks across pages; waking a subset runs exactly that subset. */
    enum { N = 4000 };
    static struct sched_task *ts[N];
    for (int i = 0; i < N; i++) {
        ts[i] = sched_alloc(&s, count_poll, NULL);
        CHECK(ts[i]);
        ts[i]->arg[0] = 100 + (uint64_t)i % 4000;
    }
    memset(polls, 0, sizeof(polls));
    for (int i = 0; i < N; i += 7)
        sched_wake(&s, ts[i]);
    sched_wake(&s, ts[7]); /* waking twice is still one poll */
    unsigned ran = sched_run(&s);
    CHECK_EQ(ran, (N + 6) / 7 + 1); /* plus the yielding task */
    for (int i = 0; i < N; i++)
        CHECK_EQ(polls[100 + i % 4000], i % 7 == 0 ? 1 : 0);

    /* Done list keeps completion order; a completed task is not polled. */
    sched_fail(&s, ts[10], 5);
    sched_fail(&s, ts[3], 6);
    sched_wake(&s, ts[10]);
    memset(polls, 0, sizeof(polls));
    sched_run(&s);
    CHECK_EQ(polls[110], 0);
    CHECK(s.done.head == ts[10] && s.done.head->next == ts[3]);
    sched_harvest(&s, ts[10], &qr);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_FAILED);
    CHECK_EQ(qr.qr_ret, 5);
    CHECK(s.done.head == ts[3]);

    /* A freed task that was woken is skipped, not polled. */
    sched_wake(&s, ts[20]);
    sched_free(&s, ts[20]);
    memset(polls, 0, sizeof(polls));
    sched_run(&s);
    CHECK_EQ(polls[120], 0);

    /* A woken task freed and its slot given to a task without a poll
     * function (an operation completed by its libOS, such as a memory
     * queue's) before the scheduler ran: the stale wake polls nothing
     * (it called a NULL function, and crashed demi-kv --threads). */
    sched_wake(&s, ts[21]);
    sched_free(&s, ts[21]);
    struct sched_task *bare = sched_alloc(&s, NULL, NULL);
    CHECK(bare == ts[21]);
    memset(polls, 0, sizeof(polls));
    sched_run(&s);
    CHECK_EQ(polls[121], 0);
    CHECK_EQ(bare->state, TASK_ACTIVE);
    sched_free(&s, bare);

    sched_fini(&s);
    printf("sched: ok\n");
    return 0;
}
