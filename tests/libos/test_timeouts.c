/*
 * Timeouts: a zero timeout polls once; a timed wait returns ETIMEDOUT no
 * sooner than asked and leaves the token valid; a NULL timeout waits until
 * completion; malformed timeouts are EINVAL; wait_any and wait_next_n time
 * out the same way.
 */
#include "pair.h"
#include "tcheck.h"

#include <arpa/inet.h>
#include <errno.h>
#include <sys/resource.h>
#include <time.h>

static uint64_t cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000u +
           ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000u;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Nanoseconds since t0 that this thread spent blocked: the wall-clock time
 * minus the time it ran and the time it waited on a run queue for a CPU
 * (/proc/thread-self/schedstat). An upper bound on a wait is checked on
 * this, so that a loaded machine, which delays the thread without blocking
 * it, cannot fail the test. Sets *ok to 0 when schedstat cannot be read. */
struct blocked_mark {
    uint64_t wall, run, queued;
};

static int sched_read(uint64_t *run, uint64_t *queued)
{
    FILE *f = fopen("/proc/thread-self/schedstat", "r");
    if (!f)
        return 0;
    unsigned long long r, q;
    int n = fscanf(f, "%llu %llu", &r, &q);
    fclose(f);
    *run = r;
    *queued = q;
    return n == 2;
}

static int blocked_start(struct blocked_mark *m)
{
    int ok = sched_read(&m->run, &m->queued);
    m->wall = now_ns();
    return ok;
}

static uint64_t blocked_since(const struct blocked_mark *m, int *ok)
{
    uint64_t wall = now_ns() - m->wall, run, queued;
    if (!sched_read(&run, &queued)) {
        *ok = 0;
        return 0;
    }
    uint64_t busy = (run - m->run) + (queued - m->queued);
    return busy < wall ? wall - busy : 0;
}

int main(void)
{
    pair_init_single();
    const char *ip = getenv("DEMI_TEST_SERVER_IP");
    int rx, tx;
    CHECK_EQ(demi_socket(&rx, AF_INET, SOCK_DGRAM, 0), 0);
    CHECK_EQ(demi_socket(&tx, AF_INET, SOCK_DGRAM, 0), 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, ip && *ip ? ip : "127.0.0.1", &a.sin_addr);
    CHECK_EQ(demi_bind(rx, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    CHECK_EQ(demi_getsockname(rx, (struct sockaddr *)&a, &len), 0);

    demi_qtoken_t pop;
    demi_qresult_t qr;
    CHECK_EQ(demi_pop(&pop, rx), 0);

    /* Zero timeout: poll once. */
    struct timespec zero = {0, 0};
    struct blocked_mark mark;
    int sched_ok = blocked_start(&mark);
    CHECK_EQ(demi_wait(&qr, pop, &zero), ETIMEDOUT);
    uint64_t blocked = blocked_since(&mark, &sched_ok);
    if (sched_ok)
        CHECK(blocked < 1000000000u);

    /* 150 ms: not sooner, and the token stays valid. */
    struct timespec ms150 = {0, 150000000};
    sched_ok = blocked_start(&mark);
    uint64_t t0 = now_ns();
    CHECK_EQ(demi_wait(&qr, pop, &ms150), ETIMEDOUT);
    uint64_t took = now_ns() - t0;
    blocked = blocked_since(&mark, &sched_ok);
    CHECK(took >= 150000000u);
    if (sched_ok)
        CHECK(blocked < 5000000000u);
    else
        printf("upper bounds on waits: not checked (no /proc/thread-self/schedstat)\n");

    /* A long wait does not burn the CPU: catnap spins for SPIN_US, then
     * sleeps in epoll until the deadline (catpowder: in poll on its
     * socket; catnip: on its port's receive interrupt, or in sleeps of up
     * to 2 ms between looks at a port without one, such as net_memif). */
    const char *spin = getenv("SPIN_US");
    if (!spin || atoi(spin) < 100000) {
        struct timespec ms400 = {0, 400000000};
        uint64_t c0 = cpu_ns();
        CHECK_EQ(demi_wait(&qr, pop, &ms400), ETIMEDOUT);
        uint64_t used = cpu_ns() - c0;
        printf("400 ms wait used %.1f ms of CPU\n", (double)used / 1e6);
        CHECK(used < 200000000u);
    }

    int off, n;
    t0 = now_ns();
    CHECK_EQ(demi_wait_any(&qr, &off, &pop, 1, &ms150), ETIMEDOUT);
    CHECK(now_ns() - t0 >= 150000000u);
    /* wait_next_n with only a pending pop: times out, reports 0. */
    n = 99;
    CHECK_EQ(demi_wait_next_n(&qr, 1, &n, &zero), ETIMEDOUT);
    CHECK_EQ(n, 0);

    /* Malformed timeouts. */
    struct timespec bad1 = {0, -1}, bad2 = {0, 1000000000}, bad3 = {-1, 0};
    CHECK_EQ(demi_wait(&qr, pop, &bad1), EINVAL);
    CHECK_EQ(demi_wait(&qr, pop, &bad2), EINVAL);
    CHECK_EQ(demi_wait(&qr, pop, &bad3), EINVAL);
    CHECK_EQ(demi_wait_any(&qr, &off, &pop, 1, &bad2), EINVAL);
    CHECK_EQ(demi_wait_next_n(&qr, 1, &n, &bad3), EINVAL);

    /* Data arrives: a NULL timeout waits for it. */
    demi_sgarray_t sga = demi_sgaalloc(5);
    memcpy(sga.sga_segs[0].sgaseg_buf, "hello", 5);
    demi_qtoken_t push;
    CHECK_EQ(demi_pushto(&push, tx, &sga, (struct sockaddr *)&a, sizeof(a)), 0);
    CHECK_EQ(demi_sgafree(&sga), 0);
    CHECK_EQ(demi_wait(&qr, pop, NULL), 0);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
    CHECK(memcmp(qr.qr_value.sga.sga_segs[0].sgaseg_buf, "hello", 5) == 0);
    CHECK_EQ(demi_sgafree(&qr.qr_value.sga), 0);
    /* The push completed meanwhile: wait_next_n returns it at once. */
    CHECK_EQ(demi_wait_next_n(&qr, 1, &n, &zero), 0);
    CHECK_EQ(n, 1);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_PUSH);
    CHECK(qr.qr_qt == push);
    CHECK_EQ(demi_wait(&qr, pop, &zero), EINVAL); /* consumed */
    CHECK_EQ(demi_close(rx), 0);
    CHECK_EQ(demi_close(tx), 0);
    printf("timeouts: ok\n");
    return 0;
}
