/*
 * Cost of libdemi's TCP/IP stack on dev/sim, one core, TSC cycles:
 *  - a 64 B TCP echo between two stacks (push, pop, echo back with the
 *    popped buffer, pop): cycles per message of stack and libOS work, the
 *    simulated device's own work (copying frames, the wire) excluded by
 *    timing its operations separately;
 *  - bulk transfer one way with zero copies in the stack (the sim device
 *    copies each frame once, as a NIC's DMA would): throughput with and
 *    without the device's share.
 * Prints one JSON object. Measures, never asserts.
 */
#include "core/clock.h"
#include "dev/sim.h"
#include "inet/inet.h"
#include "inet/inet_int.h"
#include "libos/inetos.h"
#include "mem/sga.h"

#include <stdio.h>
#include <stdlib.h>
#include <x86intrin.h>

/* The owner of accepted queues in the descriptor table: a tag only, as
 * nothing here calls through the table (inet_set_qowner). */
static struct libos bench_qowner;

/* ---- a device wrapper that times the device ---- */

struct timed_dev {
    struct netdev d; /* first: what the stack sees */
    struct netdev *inner;
};

static uint64_t dev_cycles;
static uint64_t tsc_reads; /* rdtsc calls made by the instrumentation itself */

static int t_rx(struct netdev *d, struct rxframe *out, int max)
{
    struct timed_dev *t = (struct timed_dev *)d;
    uint64_t c0 = __rdtsc();
    int n = t->inner->ops->rx_burst(t->inner, out, max);
    dev_cycles += __rdtsc() - c0;
    tsc_reads += 2;
    return n;
}

static int t_tx(struct netdev *d, struct pkt *p, int n)
{
    struct timed_dev *t = (struct timed_dev *)d;
    uint64_t c0 = __rdtsc();
    int k = t->inner->ops->tx_burst(t->inner, p, n);
    dev_cycles += __rdtsc() - c0;
    tsc_reads += 2;
    return k;
}

static void t_destroy(struct netdev *d)
{
    struct timed_dev *t = (struct timed_dev *)d;
    t->inner->ops->destroy(t->inner);
    free(t);
}

static const struct netdev_ops timed_ops = {"timed-sim", t_rx, t_tx, t_destroy};

struct node {
    struct runtime *rt;
    struct netdev *dev;
    struct inet *in;
};

static struct simnet *net;
static uint64_t now = 1000000000ull;

static void node_init(struct node *n, int idx)
{
    struct config cfg;
    config_defaults(&cfg);
    cfg.heap_size = 1ull << 30;
    cfg.hugepages = CONFIG_HUGE_OFF;
    if (rt_create(&n->rt, &cfg, true))
        exit(1);
    uint8_t mac[6] = {2, 0, 0, 0, 0, (uint8_t)idx};
    struct netdev *inner;
    if (simnet_attach(net, n->rt->heap, mac, 1500, &inner))
        exit(1);
    struct timed_dev *t = calloc(1, sizeof(*t));
    t->d = *inner;
    t->d.ops = &timed_ops;
    t->inner = inner;
    n->dev = &t->d;
    struct inet_config ic;
    inetos_config(&ic, &n->rt->cfg);
    ic.addr.s_addr = htonl(0x0a000000u | (uint32_t)idx);
    ic.mtu = 1500;
    ic.mss = 1460;
    ic.seed = (uint64_t)idx;
    if (inet_create(n->rt, n->dev, &ic, &n->in))
        exit(1);
    inet_set_qowner(n->in, &bench_qowner);
}

static void poll2(struct node *a, struct node *b)
{
    clock_set(&a->rt->clock, now);
    clock_set(&b->rt->clock, now);
    rt_poll(a->rt);
    uint64_t c0 = __rdtsc();
    simnet_advance(net, now);
    dev_cycles += __rdtsc() - c0;
    rt_poll(b->rt);
    c0 = __rdtsc();
    simnet_advance(net, now);
    dev_cycles += __rdtsc() - c0;
    tsc_reads += 4;
}

/* Cycles one rdtsc costs, to take the instrumentation out of the figures. */
static double rdtsc_cost(void)
{
    uint64_t c0 = __rdtsc(), x = 0;
    for (int i = 0; i < 100000; i++)
        x += __rdtsc();
    return (double)(__rdtsc() - c0 - (x & 1)) / 100000;
}

static struct sched_task *task(struct node *n)
{
    struct sched_task *t = sched_alloc(&n->rt->sched, NULL, NULL);
    t->qd = 0;
    return t;
}

static void harvest(struct node *n, struct sched_task *t, demi_qresult_t *qr)
{
    sched_harvest(&n->rt->sched, t, qr);
}

/* Connects a to b:80; returns the two queues. */
static void connect_pair(struct node *a, struct node *b, void **aq, void **bq)
{
    struct inet_sock *ls, *as;
    inet_socket(b->in, SOCK_STREAM, &ls);
    struct sockaddr_in any = {.sin_family = AF_INET, .sin_port = htons(80)};
    inet_bind(b->in, ls, &any);
    inet_listen(b->in, ls, 8);
    struct sched_task *acc = task(b);
    inet_accept(b->in, ls, acc);
    inet_socket(a->in, SOCK_STREAM, &as);
    *aq = as;
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(80), .sin_addr.s_addr = htonl(0x0a000002)};
    struct sched_task *con = task(a);
    inet_connect(a->in, *aq, &to, con);
    for (int i = 0; i < 1000 && !(con->state == TASK_DONE && acc->state == TASK_DONE); i++) {
        now += 1000;
        poll2(a, b);
    }
    demi_qresult_t qr;
    harvest(a, con, &qr);
    harvest(b, acc, &qr);
    struct qentry *e = qtable_get(&b->rt->qtable, qr.qr_value.ares.qd);
    *bq = e->q;
}

/* Leaves the server's next pop pending in *@bpop_out (the bulk phase uses it). */
static double echo(struct node *a, struct node *b, void *aq, void *bq, int iters, double *dev_share,
                   struct sched_task **bpop_out, double *raw)
{
    demi_qresult_t qr;
    struct sched_task *bpop = task(b);
    inet_pop(b->in, bq, bpop);
    uint64_t total = 0, dev = 0, reads = 0;
    for (int i = 0; i < iters; i++) {
        uint64_t d0 = dev_cycles, r0 = tsc_reads, c0 = __rdtsc();
        demi_sgarray_t m;
        mem_sga_alloc(a->rt->heap, 64, &m);
        struct sched_task *push = task(a), *pop = task(a);
        inet_push(a->in, aq, &m, NULL, push);
        mem_sga_free(a->rt->heap, &m);
        inet_pop(a->in, aq, pop);
        while (pop->state != TASK_DONE) {
            poll2(a, b);
            if (bpop->state == TASK_DONE) {
                harvest(b, bpop, &qr);
                struct sched_task *back = task(b);
                inet_push(b->in, bq, &qr.qr_value.sga, NULL, back); /* the popped buffer itself */
                mem_sga_free(b->rt->heap, &qr.qr_value.sga);
                harvest(b, back, &qr);
                bpop = task(b);
                inet_pop(b->in, bq, bpop);
            }
        }
        harvest(a, push, &qr);
        harvest(a, pop, &qr);
        mem_sga_free(a->rt->heap, &qr.qr_value.sga);
        uint64_t c1 = __rdtsc();
        if (i >= iters / 10) { /* skip the warm-up tenth */
            total += c1 - c0;
            dev += dev_cycles - d0;
            reads += tsc_reads - r0;
        }
    }
    int measured = iters - iters / 10;
    *bpop_out = bpop;
    *dev_share = (double)dev / (double)total;
    *raw = (double)(total - dev) / measured / 2;
    /* Half of each timed pair's rdtsc lands outside the device window. */
    double instr = (double)reads / 2 * rdtsc_cost();
    return ((double)(total - dev) - instr) / measured / 2; /* two messages per round trip */
}

static double bulk(struct node *a, struct node *b, void *aq, struct sched_task *pop, size_t bytes,
                   double *with_dev_gbps)
{
    enum { CHUNK = 1 << 20, INFLIGHT = 8 };
    demi_sgarray_t buf;
    mem_sga_alloc(a->rt->heap, CHUNK, &buf);
    memset(buf.sga_segs[0].sgaseg_buf, 0x5a, CHUNK);
    struct sched_task *push[INFLIGHT] = {0};
    void *bq = ((struct inet_sock *)pop->owner);
    size_t queued = 0, got = 0;
    demi_qresult_t qr;
    uint64_t d0 = dev_cycles, c0 = __rdtsc();
    while (got < bytes) {
        for (int i = 0; i < INFLIGHT; i++) {
            if (push[i] && push[i]->state == TASK_DONE) {
                harvest(a, push[i], &qr);
                push[i] = NULL;
            }
            if (!push[i] && queued < bytes) {
                push[i] = task(a);
                inet_push(a->in, aq, &buf, NULL, push[i]); /* the same buffer, referenced again */
                queued += CHUNK;
            }
        }
        now += 100;
        poll2(a, b);
        while (pop->state == TASK_DONE) {
            harvest(b, pop, &qr);
            for (uint32_t s = 0; s < qr.qr_value.sga.sga_numsegs; s++)
                got += qr.qr_value.sga.sga_segs[s].sgaseg_len;
            mem_sga_free(b->rt->heap, &qr.qr_value.sga);
            pop = task(b);
            inet_pop(b->in, bq, pop);
        }
    }
    uint64_t total = __rdtsc() - c0, dev = dev_cycles - d0;
    double hz = (double)clock_tsc_hz();
    *with_dev_gbps = (double)got * 8 / ((double)total / hz) / 1e9;
    return (double)got * 8 / ((double)(total - dev) / hz) / 1e9;
}

int main(int argc, char **argv)
{
    setenv("DEMI_LOG", "error", 0);
    struct simnet_config sc = {.seed = 1, .start_ns = now, .rx_ring = 65536};
    if (simnet_create(&net, &sc))
        return 1;
    struct node a, b;
    node_init(&a, 1);
    node_init(&b, 2);
    void *aq, *bq;
    connect_pair(&a, &b, &aq, &bq);
    double ghz = (double)clock_tsc_hz() / 1e9;
    double share;
    int iters = argc > 1 ? atoi(argv[1]) : 200000;
    size_t bulk_bytes = argc > 2 ? strtoull(argv[2], NULL, 0) : (size_t)2 << 30;
    struct sched_task *bpop;
    double raw;
    double cyc = echo(&a, &b, aq, bq, iters, &share, &bpop, &raw);
    double gbps_dev;
    double gbps = bulk(&a, &b, aq, bpop, bulk_bytes, &gbps_dev);
    printf("{\"tsc_ghz\":%.3f,\"echo_64B_cycles_per_message\":%.1f,\"echo_64B_ns_per_message\":%.1f,"
           "\"echo_64B_cycles_per_message_with_instrumentation\":%.1f,"
           "\"echo_device_share_of_cycles\":%.3f,\"bulk_gbit_s_stack_only\":%.2f,\"bulk_gbit_s_with_sim_device\":%.2f,"
           "\"bulk_bytes\":%llu}\n",
           ghz, cyc, cyc / ghz, raw, share, gbps, gbps_dev, (unsigned long long)bulk_bytes);
    return 0;
}
