/*
 * dpdk_l2: the floor under catnip on this machine. Raw 64-byte Ethernet
 * frames ping-pong between two processes over DPDK's net_memif: no stack,
 * no libdemi, one frame in flight. The server echoes every frame back with
 * the MAC addresses swapped; the client times each round trip (TSC) and
 * prints one JSON line of percentiles, in the shape demi-echo prints.
 *
 *   dpdk_l2 server|client --socket PATH [--iters N] [--warmup N] [--size BYTES]
 *
 * The server runs until SIGINT or SIGTERM, or until the client's last
 * frame (sequence LONG_MIN) says it is done, and exits 0: the memif PMD can
 * crash a process polling a queue while its peer disconnects, so neither
 * end polls once the goodbye is sent: the server stops at it and closes,
 * and the client, which stopped polling when it sent it, waits for the
 * link to go down (the server gone; at most 10 s) before it closes in
 * turn (it used to sleep 200 ms: a server that had not seen the goodbye by
 * then was still polling, and crashed once). The EAL runs with --no-huge
 * and no shared files: nothing is left behind.
 */
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void usage(void)
{
    fprintf(stderr, "usage: dpdk_l2 server|client --socket PATH [--iters N] [--warmup N] [--size BYTES]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "server") && strcmp(argv[1], "client")))
        usage();
    bool server = strcmp(argv[1], "server") == 0;
    const char *sock = NULL;
    long iters = 100000, warmup = 1000, size = 64;
    static const struct option opts[] = {{"socket", required_argument, 0, 's'},
                                         {"iters", required_argument, 0, 'n'},
                                         {"warmup", required_argument, 0, 'w'},
                                         {"size", required_argument, 0, 'z'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            sock = optarg;
            break;
        case 'n':
            iters = atol(optarg);
            break;
        case 'w':
            warmup = atol(optarg);
            break;
        case 'z':
            size = atol(optarg);
            break;
        default:
            usage();
        }
    }
    if (!sock || iters <= 0 || warmup < 0 || size < 60 || size > 1514)
        usage();

    char vdev[512], prefix[64];
    snprintf(vdev, sizeof(vdev), "--vdev=net_memif0,role=%s,socket=%s,socket-abstract=no,mac=02:00:00:00:00:%s",
             server ? "server" : "client", sock, server ? "01" : "02");
    snprintf(prefix, sizeof(prefix), "--file-prefix=l2_%d", (int)getpid());
    char *eal[] = {"dpdk_l2", "--no-pci", "--no-huge", "-m", "128", prefix, "--no-shconf", "--no-telemetry",
                   "--log-level=*:warning", vdev, NULL};
    if (rte_eal_init((int)(sizeof(eal) / sizeof(eal[0])) - 1, eal) < 0) {
        fprintf(stderr, "dpdk_l2: EAL: %s\n", rte_strerror(rte_errno));
        return 1;
    }
    char dir[256];
    snprintf(dir, sizeof(dir), "/var/run/dpdk/l2_%d", (int)getpid());
    rmdir(dir); /* nothing in it is used after initialisation */
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    struct rte_mempool *mp = rte_pktmbuf_pool_create("l2", 4095, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
    struct rte_eth_conf conf;
    memset(&conf, 0, sizeof(conf));
    if (!mp || rte_eth_dev_configure(0, 1, 1, &conf) || rte_eth_rx_queue_setup(0, 0, 1024, 0, NULL, mp) ||
        rte_eth_tx_queue_setup(0, 0, 1024, 0, NULL) || rte_eth_dev_start(0)) {
        fprintf(stderr, "dpdk_l2: port setup failed: %s\n", rte_strerror(rte_errno));
        return 1;
    }
    struct rte_mbuf *burst[32];
    if (server) {
        printf("ready %s\n", sock);
        fflush(stdout);
        while (!stop) {
            uint16_t n = rte_eth_rx_burst(0, 0, burst, 32);
            for (uint16_t i = 0; i < n; i++) {
                long seq;
                memcpy(&seq, rte_pktmbuf_mtod_offset(burst[i], uint8_t *, 14), sizeof(seq));
                if (seq == LONG_MIN)
                    stop = 1;
                struct rte_ether_hdr *eh = rte_pktmbuf_mtod(burst[i], struct rte_ether_hdr *);
                struct rte_ether_addr t = eh->src_addr;
                eh->src_addr = eh->dst_addr;
                eh->dst_addr = t;
            }
            uint16_t sent = 0;
            while (sent < n && !stop)
                sent += rte_eth_tx_burst(0, 0, burst + sent, (uint16_t)(n - sent));
            for (uint16_t i = sent; i < n; i++)
                rte_pktmbuf_free(burst[i]);
        }
    } else {
        /* Wait for the memif connection. */
        struct rte_eth_link link;
        for (int i = 0; i < 1000; i++) {
            rte_eth_link_get_nowait(0, &link);
            if (link.link_status)
                break;
            usleep(10000);
        }
        if (!link.link_status) {
            fprintf(stderr, "dpdk_l2: memif link did not come up (is the server running on %s?)\n", sock);
            return 1;
        }
        uint64_t *lat = calloc((size_t)iters, sizeof(*lat));
        uint64_t hz = rte_get_tsc_hz();
        uint64_t t_start = rte_rdtsc();
        for (long k = -warmup; k < iters && !stop; k++) {
            struct rte_mbuf *m = rte_pktmbuf_alloc(mp);
            uint8_t *p = m ? (uint8_t *)rte_pktmbuf_append(m, (uint16_t)size) : NULL;
            if (!p) {
                fprintf(stderr, "dpdk_l2: out of mbufs\n");
                return 1;
            }
            memset(p, 0, (size_t)size);
            struct rte_ether_hdr *eh = (struct rte_ether_hdr *)p;
            memcpy(eh->dst_addr.addr_bytes, "\x02\0\0\0\0\x01", 6);
            memcpy(eh->src_addr.addr_bytes, "\x02\0\0\0\0\x02", 6);
            eh->ether_type = rte_cpu_to_be_16(0x88b5); /* local experimental */
            memcpy(p + 14, &k, sizeof(k));
            uint64_t t0 = rte_rdtsc();
            while (rte_eth_tx_burst(0, 0, &m, 1) == 0 && !stop)
                ;
            bool got = false;
            while (!got && !stop) {
                uint16_t n = rte_eth_rx_burst(0, 0, burst, 32);
                for (uint16_t i = 0; i < n; i++) {
                    long seq;
                    memcpy(&seq, rte_pktmbuf_mtod_offset(burst[i], uint8_t *, 14), sizeof(seq));
                    if (seq == k)
                        got = true;
                    rte_pktmbuf_free(burst[i]);
                }
            }
            uint64_t t1 = rte_rdtsc();
            if (k >= 0)
                lat[k] = t1 - t0;
        }
        if (stop)
            return 1;
        /* Goodbye: the server stops polling and closes; this end polls no
         * more and closes once the link is down (the server gone). */
        struct rte_mbuf *m = rte_pktmbuf_alloc(mp);
        uint8_t *p = m ? (uint8_t *)rte_pktmbuf_append(m, (uint16_t)size) : NULL;
        if (p) {
            long bye = LONG_MIN;
            memset(p, 0, (size_t)size);
            memcpy(p + 14, &bye, sizeof(bye));
            while (rte_eth_tx_burst(0, 0, &m, 1) == 0 && !stop)
                ;
            for (int i = 0; i < 1000 && !stop; i++) {
                rte_eth_link_get_nowait(0, &link);
                if (!link.link_status)
                    break;
                usleep(10000);
            }
        }
        double secs = (double)(rte_rdtsc() - t_start) / (double)hz;
        qsort(lat, (size_t)iters, sizeof(*lat), cmp_u64);
#define US(i) ((double)lat[(size_t)(i)] * 1e6 / (double)hz)
        double sum = 0;
        for (long k = 0; k < iters; k++)
            sum += (double)lat[k];
        printf("{\"libos\":\"dpdk-l2\",\"proto\":\"l2\",\"size\":%ld,\"clients\":1,\"n\":%ld,\"p50_us\":%.3f,"
               "\"p99_us\":%.3f,\"p999_us\":%.3f,\"mean_us\":%.3f,\"min_us\":%.3f,\"max_us\":%.3f,\"rps\":%.0f}\n",
               size, iters, US(iters / 2), US(iters * 99 / 100), US(iters * 999 / 1000),
               sum / (double)iters * 1e6 / (double)hz, US(0), US(iters - 1), (double)(iters + warmup) / secs);
    }
    rte_eth_dev_stop(0);
    rte_eth_dev_close(0);
    rte_eal_cleanup();
    return 0;
}
