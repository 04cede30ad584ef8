/*
 * catpowder_cost: what libdemi's stack and libOS cost per I/O on a real
 * device. A catpowder echo server put together from the library's parts
 * (AF_XDP or AF_PACKET, configured like LIBOS=catpowder: the interface,
 * our address and the backend from the environment or CONFIG_PATH), its
 * device wrapped in a timer, its runtime polled by hand. bench/catpowder.sh
 * drives it with a Linux client over veth.
 *
 * Every poll pass is timed with the TSC. A pass that moved a frame (in or
 * out) or handed the application a completion is work; one that found
 * nothing is idle and not counted. From the work passes it subtracts the
 * device's own calls (rx_burst, tx_burst: system calls, the kernel's copy
 * and ours between the rings and the heap), which it reports separately.
 * What is left per echoed message is the stack's and the libOS's work for
 * one receive and one send, the echo application's few lines included:
 * two I/Os. It reports the mean, and the median work pass scaled by work
 * passes per message (a pass an interrupt or a preemption stretched moves
 * the mean, not the median). Measures, never asserts.
 *
 *   catpowder_cost tcp|udp PORT
 *
 * prints "ready IP:PORT" once it listens, echoes until SIGINT or SIGTERM,
 * then prints one JSON line.
 */
#include "core/clock.h"
#include "core/common.h"
#include "core/config.h"
#include "core/qtable.h"
#include "core/runtime.h"
#include "dev/packet.h"
#include "dev/xdp.h"
#include "libos/inetos.h"
#include "mem/sga.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <x86intrin.h>

/* The owner of accepted queues in the descriptor table: a tag only, as
 * nothing here calls through the table (inet_set_qowner). */
static struct libos bench_qowner;

#define MAX_PUSHES 64

struct timed_dev {
    struct netdev d; /* first: what the stack sees */
    struct netdev *inner;
};

static uint64_t dev_cycles, tsc_reads;
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

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

/* No wait op: the runtime never sleeps, as this loop polls by hand anyway. */
static const struct netdev_ops timed_ops = {"timed", t_rx, t_tx, t_destroy, NULL};

static void die(const char *what, int e)
{
    fprintf(stderr, "catpowder_cost: %s: %s\n", what, strerror(e));
    exit(1);
}

/* Cycles one rdtsc costs, to take the instrumentation out of the figures. */
static double rdtsc_cost(void)
{
    uint64_t c0 = __rdtsc(), x = 0;
    for (int i = 0; i < 100000; i++)
        x += __rdtsc();
    return (double)(__rdtsc() - c0 - (x & 1)) / 100000;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static struct sched_task *task(struct runtime *rt)
{
    struct sched_task *t = sched_alloc(&rt->sched, NULL, NULL);
    if (!t)
        die("sched_alloc", ENOMEM);
    t->qd = 0;
    return t;
}

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[1], "tcp") && strcmp(argv[1], "udp"))) {
        fprintf(stderr, "usage: catpowder_cost tcp|udp PORT\n");
        return 2;
    }
    bool udp = argv[1][0] == 'u';
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    /* catpowder_create's steps, with the device wrapped. */
    struct config cfg;
    char err[256] = "";
    int e = config_load(&cfg, NULL, err, sizeof(err));
    if (e) {
        fprintf(stderr, "catpowder_cost: config: %s\n", err);
        return 1;
    }
    if (!cfg.linux_interface_name[0] || !cfg.has_local_ipv4_addr) {
        fprintf(stderr, "catpowder_cost: set LINUX_INTERFACE_NAME and LOCAL_IPV4_ADDR\n");
        return 2;
    }
    struct runtime *rt;
    if ((e = rt_create(&rt, &cfg, false)))
        die("rt_create", e);
    struct netdev *inner = NULL;
    if (strcmp(rt->cfg.raw_backend, "packet") != 0)
        e = xdp_dev_create(rt->heap, rt->cfg.linux_interface_name, 0, rt->cfg.xdp_native, &inner);
    if (!inner && strcmp(rt->cfg.raw_backend, "xdp") != 0)
        e = packet_dev_create(rt->heap, rt->cfg.linux_interface_name, false, 0, &inner);
    if (!inner)
        die("device", e);
    struct timed_dev *td = calloc(1, sizeof(*td));
    td->d = *inner;
    td->d.ops = &timed_ops;
    td->inner = inner;
    struct inet_config ic;
    inetos_config(&ic, &rt->cfg);
    if (ic.mtu > inner->mtu)
        ic.mtu = inner->mtu;
    if (ic.mss > ic.mtu - 40)
        ic.mss = ic.mtu - 40;
    struct inet *in;
    if ((e = inet_create(rt, &td->d, &ic, &in)))
        die("inet_create", e);
    inet_set_qowner(in, &bench_qowner);

    struct inet_sock *lq;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
    if ((e = inet_socket(in, udp ? SOCK_DGRAM : SOCK_STREAM, &lq)) || (e = inet_bind(in, lq, &a)))
        die("socket/bind", e);
    struct sched_task *pop = NULL, *acc = NULL;
    struct inet_sock *q = lq;
    if (udp) {
        pop = task(rt);
        inet_pop(in, q, pop);
    } else {
        if ((e = inet_listen(in, lq, 16)))
            die("listen", e);
        acc = task(rt);
        inet_accept(in, lq, acc);
    }
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &rt->cfg.local_ipv4_addr, ip, sizeof(ip));
    printf("ready %s:%s\n", ip, argv[2]);
    fflush(stdout);

    uint64_t work = 0, work_dev = 0, work_reads = 0, passes = 0, work_passes = 0, echoed = 0;
    demi_qresult_t qr;
    struct sched_task *pushes[MAX_PUSHES];
    int npushes = 0;
    struct {
        uint32_t stack, dev, reads;
    } *per_pass = NULL;
    size_t cap = 0;
    while (!stop) {
        uint64_t rx0 = inner->stats.rx_frames, tx0 = inner->stats.tx_frames;
        uint64_t d0 = dev_cycles, r0 = tsc_reads, c0 = __rdtsc();
        bool app = false;
        rt_poll(rt);
        if (acc && acc->state == TASK_DONE) {
            sched_harvest(&rt->sched, acc, &qr);
            acc = NULL;
            if (qr.qr_opcode == DEMI_OPC_ACCEPT) {
                q = qtable_get(&rt->qtable, qr.qr_value.ares.qd)->q;
                pop = task(rt);
                inet_pop(in, q, pop);
            }
            app = true;
        }
        if (pop && pop->state == TASK_DONE) {
            sched_harvest(&rt->sched, pop, &qr);
            pop = NULL;
            if (qr.qr_opcode == DEMI_OPC_POP && qr.qr_value.sga.sga_numsegs > 0) {
                /* Echo the popped buffer itself, as demi-echo does. */
                struct sched_task *push = task(rt);
                inet_push(in, q, &qr.qr_value.sga, udp ? &qr.qr_value.sga.sga_addr : NULL, push);
                mem_sga_free(rt->heap, &qr.qr_value.sga);
                if (npushes == MAX_PUSHES)
                    die("pushes", EAGAIN); /* the client sends one message at a time */
                pushes[npushes++] = push;
                pop = task(rt);
                inet_pop(in, q, pop);
                echoed++;
            } else if (!udp) { /* the client closed: wait for the next one */
                inet_close(in, q);
                acc = task(rt);
                inet_accept(in, lq, acc);
            }
            app = true;
        }
        for (int i = 0; i < npushes; i++) {
            if (pushes[i]->state == TASK_DONE) {
                sched_harvest(&rt->sched, pushes[i], &qr);
                pushes[i--] = pushes[--npushes];
                app = true;
            }
        }
        uint64_t c1 = __rdtsc();
        passes++;
        if (app || inner->stats.rx_frames != rx0 || inner->stats.tx_frames != tx0) {
            work += c1 - c0;
            work_dev += dev_cycles - d0;
            work_reads += tsc_reads - r0 + 2;
            if (work_passes == cap) {
                cap = cap ? 2 * cap : 1 << 20;
                if (!(per_pass = realloc(per_pass, cap * sizeof(*per_pass))))
                    die("realloc", ENOMEM);
            }
            per_pass[work_passes].stack = (uint32_t)MIN(c1 - c0 - (dev_cycles - d0), UINT32_MAX);
            per_pass[work_passes].dev = (uint32_t)MIN(dev_cycles - d0, UINT32_MAX);
            per_pass[work_passes].reads = (uint32_t)(tsc_reads - r0 + 2);
            work_passes++;
        }
    }
    double ghz = (double)clock_tsc_hz() / 1e9, rc = rdtsc_cost();
    /* Each timed device call puts one of its two rdtsc inside the device's
     * window and one outside; the pass's own pair is outside. */
    double instr = (double)work_reads / 2 * rc;
    double stack = echoed ? ((double)(work - work_dev) - instr) / (double)echoed : 0;
    double devc = echoed ? (double)work_dev / (double)echoed : 0;
    /* The median pass, free of the passes an interrupt or a preemption
     * stretched (the mean keeps them). */
    double med = 0, dmed = 0;
    if (work_passes) {
        uint32_t *v = malloc(work_passes * sizeof(*v));
        if (!v)
            die("malloc", ENOMEM);
        double scale = (double)work_passes / (double)MAX(echoed, 1);
        for (uint64_t i = 0; i < work_passes; i++)
            v[i] = (uint32_t)MAX((double)per_pass[i].stack - (double)per_pass[i].reads / 2 * rc, 0.0);
        qsort(v, work_passes, sizeof(*v), cmp_u32);
        med = v[work_passes / 2] * scale;
        for (uint64_t i = 0; i < work_passes; i++)
            v[i] = per_pass[i].dev;
        qsort(v, work_passes, sizeof(*v), cmp_u32);
        dmed = v[work_passes / 2] * scale;
        free(v);
    }
    printf("{\"proto\":\"%s\",\"backend\":\"%s\",\"echoed\":%llu,\"passes\":%llu,\"work_passes\":%llu,"
           "\"tsc_ghz\":%.3f,\"stack_cycles_per_message_mean\":%.1f,\"stack_ns_per_message_mean\":%.1f,"
           "\"stack_ns_per_message_median\":%.1f,\"stack_ns_per_io_median\":%.1f,\"stack_ns_per_io_mean\":%.1f,"
           "\"device_ns_per_message_mean\":%.1f,\"device_ns_per_message_median\":%.1f,\"rx_frames\":%llu,"
           "\"tx_frames\":%llu}\n",
           udp ? "udp" : "tcp", inner->ops->name, (unsigned long long)echoed, (unsigned long long)passes,
           (unsigned long long)work_passes, ghz, stack, stack / ghz, med / ghz, med / ghz / 2, stack / ghz / 2,
           devc / ghz, dmed / ghz, (unsigned long long)inner->stats.rx_frames,
           (unsigned long long)inner->stats.tx_frames);
    free(per_pass);
    fflush(stdout);
    /* The runtime and the stack go with the process. */
    return 0;
}
