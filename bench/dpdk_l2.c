/*
 * dpdk_l2: the floor under catnip on this machine. Raw 64-byte Ethernet
 * frames ping-pong between two processes over DPDK's net_memif: no stack,
 * no libdemi, one frame in flight. The server echoes every frame back with
 * the MAC addresses swapped; the client times each round trip (TSC) and
 * prints one JSON line of percentiles, in the shape demi-echo prints.
 *
 *   dpdk_l2 server|client --socket PATH [--iters N] [--warmup N] [--size BYTES]
 *   dpdk_l2 server|client --socket PATH --stream [--seconds S] [--size BYTES] [--lcore CPU]
 *
 * --stream (both ends) measures throughput instead: the client sends
 * frames of --size bytes (up to 9216; memif buffers are made to hold one)
 * in bursts of 32 for --seconds (default 3), the server counts and frees
 * them and answers the goodbye with its count, and the client prints the
 * frames and bytes per second the server received: the floor under a
 * stream at that frame size. --lcore pins through the EAL (-l), which
 * keeps the EAL's interrupt thread off the polling CPU.
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
    fprintf(stderr, "usage: dpdk_l2 server|client --socket PATH [--iters N] [--warmup N] [--size BYTES]\n"
                    "       dpdk_l2 server|client --socket PATH --stream [--seconds S] [--size BYTES] [--lcore CPU]\n");
    exit(2);
}

/* Waits (10 s at most) for the memif link to come up; false if it did not. */
static bool link_up(const char *sock)
{
    struct rte_eth_link link;
    for (int i = 0; i < 1000; i++) {
        rte_eth_link_get_nowait(0, &link);
        if (link.link_status)
            return true;
        usleep(10000);
    }
    fprintf(stderr, "dpdk_l2: memif link did not come up (is the server running on %s?)\n", sock);
    return false;
}

/* Waits (10 s at most) for the link to go down: the peer gone. */
static void link_down(void)
{
    struct rte_eth_link link;
    for (int i = 0; i < 1000 && !stop; i++) {
        rte_eth_link_get_nowait(0, &link);
        if (!link.link_status)
            return;
        usleep(10000);
    }
}

/* Sends one SIZE-byte frame carrying SEQ (a goodbye, say); false if there
 * was no mbuf for it. */
static bool send_seq(struct rte_mempool *mp, long size, long seq)
{
    struct rte_mbuf *m = rte_pktmbuf_alloc(mp);
    uint8_t *p = m ? (uint8_t *)rte_pktmbuf_append(m, (uint16_t)size) : NULL;
    if (!p) {
        rte_pktmbuf_free(m);
        return false;
    }
    memset(p, 0, (size_t)size);
    memcpy(p + 14, &seq, sizeof(seq));
    while (rte_eth_tx_burst(0, 0, &m, 1) == 0 && !stop)
        ;
    return true;
}

/* The frame's sequence number, after the Ethernet header. */
static long seq_of(const struct rte_mbuf *m)
{
    long seq;
    memcpy(&seq, rte_pktmbuf_mtod_offset(m, const uint8_t *, 14), sizeof(seq));
    return seq;
}

static void swap_macs(struct rte_mbuf *m)
{
    struct rte_ether_hdr *eh = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
    struct rte_ether_addr t = eh->src_addr;
    eh->src_addr = eh->dst_addr;
    eh->dst_addr = t;
}

int main(int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "server") && strcmp(argv[1], "client")))
        usage();
    bool server = strcmp(argv[1], "server") == 0;
    const char *sock = NULL;
    long iters = 100000, warmup = 1000, size = 64, lcore = -1;
    bool stream = false;
    double seconds = 3;
    static const struct option opts[] = {{"socket", required_argument, 0, 's'}, {"iters", required_argument, 0, 'n'},
                                         {"warmup", required_argument, 0, 'w'}, {"size", required_argument, 0, 'z'},
                                         {"stream", no_argument, 0, 'S'},       {"seconds", required_argument, 0, 't'},
                                         {"lcore", required_argument, 0, 'l'},  {0, 0, 0, 0}};
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
        case 'S':
            stream = true;
            break;
        case 't':
            seconds = atof(optarg);
            break;
        case 'l':
            lcore = atol(optarg);
            break;
        default:
            usage();
        }
    }
    if (!sock || iters <= 0 || warmup < 0 || size < 60 || size > (stream ? 9216 : 1514) || !(seconds > 0) ||
        lcore > 1023)
        usage();
    /* Memif buffers and mbufs that hold a whole frame (see dpdk.c on
     * frames that span memif buffers). */
    long bsize = size > 2048 ? (size + 1023) / 1024 * 1024 : 2048;

    char vdev[512], prefix[64], lc[16];
    snprintf(vdev, sizeof(vdev),
             "--vdev=net_memif0,role=%s,socket=%s,socket-abstract=no,mac=02:00:00:00:00:%s,bsize=%ld",
             server ? "server" : "client", sock, server ? "01" : "02", bsize);
    snprintf(lc, sizeof(lc), "-l%ld", lcore);
    snprintf(prefix, sizeof(prefix), "--file-prefix=l2_%d", (int)getpid());
    char *eal[12] = {"dpdk_l2",
                     "--no-pci",
                     "--no-huge",
                     "-m",
                     "128",
                     prefix,
                     "--no-shconf",
                     "--no-telemetry",
                     "--log-level=*:warning",
                     vdev};
    int neal = 10;
    if (lcore >= 0)
        eal[neal++] = lc;
    if (rte_eal_init(neal, eal) < 0) {
        fprintf(stderr, "dpdk_l2: EAL: %s\n", rte_strerror(rte_errno));
        return 1;
    }
    char dir[256];
    snprintf(dir, sizeof(dir), "/var/run/dpdk/l2_%d", (int)getpid());
    rmdir(dir); /* nothing in it is used after initialisation */
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    struct rte_mempool *mp = rte_pktmbuf_pool_create("l2", 4095, 256, 0, (uint16_t)(bsize + RTE_PKTMBUF_HEADROOM), 0);
    struct rte_eth_conf conf;
    memset(&conf, 0, sizeof(conf));
    if (!mp || rte_eth_dev_configure(0, 1, 1, &conf) || rte_eth_rx_queue_setup(0, 0, 1024, 0, NULL, mp) ||
        rte_eth_tx_queue_setup(0, 0, 1024, 0, NULL) || rte_eth_dev_start(0)) {
        fprintf(stderr, "dpdk_l2: port setup failed: %s\n", rte_strerror(rte_errno));
        return 1;
    }
    struct rte_mbuf *burst[32];
    if (server && stream) {
        printf("ready %s\n", sock);
        fflush(stdout);
        uint64_t frames = 0;
        while (!stop) {
            uint16_t n = rte_eth_rx_burst(0, 0, burst, 32);
            for (uint16_t i = 0; i < n; i++) {
                long seq = seq_of(burst[i]);
                if (seq == LONG_MIN + 1) {
                    /* The last word: the client polls no more. */
                    rte_pktmbuf_free(burst[i]);
                    stop = 1;
                } else if (seq == LONG_MIN) {
                    /* The goodbye: answer with the count, polling on
                     * until the client's last word (a memif peer that
                     * leaves while the other polls can crash it). */
                    memcpy(rte_pktmbuf_mtod_offset(burst[i], uint8_t *, 14 + sizeof(seq)), &frames, sizeof(frames));
                    swap_macs(burst[i]);
                    while (rte_eth_tx_burst(0, 0, &burst[i], 1) == 0 && !stop)
                        ;
                } else {
                    frames++;
                    rte_pktmbuf_free(burst[i]);
                }
            }
        }
    } else if (stream) {
        if (!link_up(sock))
            return 1;
        uint64_t hz = rte_get_tsc_hz(), sent = 0;
        uint64_t t_start = rte_rdtsc(), t_end = t_start + (uint64_t)(seconds * (double)hz);
        long seq = 0;
        uint16_t held = 0; /* frames of a burst the ring had no room for: sent first */
        while (rte_rdtsc() < t_end && !stop) {
            if (held) {
                uint16_t n = rte_eth_tx_burst(0, 0, burst + 32 - held, held);
                sent += n;
                held = (uint16_t)(held - n);
                continue;
            }
            if (rte_pktmbuf_alloc_bulk(mp, burst, 32) != 0)
                continue; /* the PMD still holds them */
            for (int i = 0; i < 32; i++) {
                uint8_t *p = (uint8_t *)rte_pktmbuf_append(burst[i], (uint16_t)size);
                struct rte_ether_hdr *eh = (struct rte_ether_hdr *)p;
                memcpy(eh->dst_addr.addr_bytes, "\x02\0\0\0\0\x01", 6);
                memcpy(eh->src_addr.addr_bytes, "\x02\0\0\0\0\x02", 6);
                eh->ether_type = rte_cpu_to_be_16(0x88b5);
                memcpy(p + 14, &seq, sizeof(seq));
                seq++;
            }
            uint16_t n = rte_eth_tx_burst(0, 0, burst, 32);
            sent += n;
            held = (uint16_t)(32 - n);
        }
        for (uint16_t i = (uint16_t)(32 - held); i < 32; i++)
            rte_pktmbuf_free(burst[i]);
        double secs = (double)(rte_rdtsc() - t_start) / (double)hz;
        /* Goodbye, and the server's count in its answer (5 s at most);
         * then the last word, after which this end polls no more and
         * closes once the server is gone. */
        uint64_t got = UINT64_MAX;
        if (send_seq(mp, 64, LONG_MIN)) {
            uint64_t give_up = rte_rdtsc() + 5 * hz;
            while (got == UINT64_MAX && rte_rdtsc() < give_up && !stop) {
                uint16_t n = rte_eth_rx_burst(0, 0, burst, 32);
                for (uint16_t i = 0; i < n; i++) {
                    if (seq_of(burst[i]) == LONG_MIN)
                        memcpy(&got, rte_pktmbuf_mtod_offset(burst[i], uint8_t *, 14 + sizeof(long)), sizeof(got));
                    rte_pktmbuf_free(burst[i]);
                }
            }
        }
        if (send_seq(mp, 64, LONG_MIN + 1))
            link_down();
        if (got == UINT64_MAX) {
            fprintf(stderr, "dpdk_l2: the server never answered with its count\n");
            return 1;
        }
        printf("{\"libos\":\"dpdk-l2\",\"proto\":\"l2\",\"mode\":\"stream\",\"size\":%ld,\"sent\":%llu,"
               "\"frames\":%llu,\"seconds\":%.3f,\"frames_per_s\":%.0f,\"bytes_per_s\":%.0f}\n",
               size, (unsigned long long)sent, (unsigned long long)got, secs, (double)got / secs,
               (double)got * (double)size / secs);
    } else if (server) {
        printf("ready %s\n", sock);
        fflush(stdout);
        while (!stop) {
            uint16_t n = rte_eth_rx_burst(0, 0, burst, 32);
            for (uint16_t i = 0; i < n; i++) {
                if (seq_of(burst[i]) == LONG_MIN)
                    stop = 1;
                swap_macs(burst[i]);
            }
            uint16_t sent = 0;
            while (sent < n && !stop)
                sent += rte_eth_tx_burst(0, 0, burst + sent, (uint16_t)(n - sent));
            for (uint16_t i = sent; i < n; i++)
                rte_pktmbuf_free(burst[i]);
        }
    } else {
        if (!link_up(sock))
            return 1;
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
                    if (seq_of(burst[i]) == k)
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
        if (send_seq(mp, size, LONG_MIN))
            link_down();
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
