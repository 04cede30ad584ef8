/*
 * mq_client: the connections and datagrams that several instances of one
 * process sharing a device open themselves (libdemi.queues, issue 14), so
 * that the replies must find their way back to the instance owning the
 * ephemeral port, whichever queue they reach. For test_multiqueue.sh.
 *
 *   mq_client IP TCP_PORT UDP_PORT THREADS CONNS ROUNDS SIZE
 *
 * Each of THREADS threads initialises its own instance (QUEUES must be
 * THREADS), opens CONNS TCP connections to an echo server at IP:TCP_PORT
 * and runs ROUNDS round trips of SIZE bytes on each, all connections at
 * once, every echoed byte checked (the bytes depend on thread, connection
 * and round); then ROUNDS datagrams of up to SIZE bytes (at most 1400)
 * from each of CONNS unconnected UDP sockets (at least 1, at most 64) on
 * ephemeral ports to an echo server at IP:UDP_PORT, one at a time, each
 * checked. TCP_PORT 0: no TCP; UDP_PORT 0: no UDP.
 * Each thread prints
 *   thread I queue=Q/N conns=C bytes=B datagrams=D frames_handed_out=O frames_handed_in=H
 * Exit 0 if every thread finished with every byte right, else 1 (a line
 * says what went wrong).
 */
#include <demi/libos.h>
#include <demi/sga.h>
#include <demi/wait.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct sockaddr_in tcp_to, udp_to;
static unsigned conns, rounds, size, nthreads;
static int failed;
/* Every instance keeps polling until all are done: frames for one
 * instance that reach another's queue move only while that one polls
 * (libdemi(7), MULTIPLE INSTANCES). */
static unsigned ndone;

static void poll_until_all_done(unsigned threads)
{
    __atomic_add_fetch(&ndone, 1, __ATOMIC_RELEASE);
    while (__atomic_load_n(&ndone, __ATOMIC_ACQUIRE) < threads) {
        demi_qresult_t qr;
        int n;
        struct timespec to = {0, 1000000};
        demi_wait_next_n(&qr, 1, &n, &to); /* nothing is posted: it only drives the instance */
    }
}

static void bad(unsigned t, const char *what, int e)
{
    fprintf(stderr, "mq_client: thread %u: %s: %s\n", t, what, e ? strerror(e) : "wrong bytes");
    __atomic_store_n(&failed, 1, __ATOMIC_RELAXED);
}

static uint8_t pattern(unsigned t, unsigned c, unsigned r, size_t i)
{
    return (uint8_t)(t * 131 + c * 31 + r * 7 + i * 13 + (i >> 8));
}

static int wait_one(demi_qtoken_t qt, demi_qresult_t *qr)
{
    struct timespec to = {60, 0};
    return demi_wait(qr, qt, &to);
}

/* One round on connection @c: push SIZE bytes, and pop while the push is
 * in flight until they are all back (a large push completes only as the
 * echo drains: the server stops reading while its echoes wait). */
static int round_trip(unsigned t, unsigned c, unsigned r, int qd, uint64_t *bytes)
{
    demi_sgarray_t s = demi_sgaalloc(size);
    if (s.sga_numsegs == 0)
        return ENOMEM;
    size_t off = 0;
    for (uint32_t k = 0; k < s.sga_numsegs; k++) {
        uint8_t *p = s.sga_segs[k].sgaseg_buf;
        for (size_t i = 0; i < s.sga_segs[k].sgaseg_len; i++, off++)
            p[i] = pattern(t, c, r, off);
    }
    demi_qtoken_t qts[2]; /* the push, then the pop */
    int e = demi_push(&qts[0], qd, &s);
    demi_sgafree(&s);
    if (e || (e = demi_pop(&qts[1], qd)))
        return e;
    bool pushed = false;
    size_t got = 0;
    while (!pushed || got < size) {
        demi_qresult_t qr;
        int idx;
        struct timespec to = {60, 0};
        if (!pushed && got < size)
            e = demi_wait_any(&qr, &idx, qts, 2, &to);
        else
            e = demi_wait(&qr, qts[pushed ? 1 : 0], &to);
        if (e)
            return e;
        if (qr.qr_opcode == DEMI_OPC_FAILED)
            return (int)qr.qr_ret;
        if (qr.qr_opcode == DEMI_OPC_PUSH) {
            pushed = true;
            continue;
        }
        if (qr.qr_opcode != DEMI_OPC_POP)
            return EPROTO;
        demi_sgarray_t *g = &qr.qr_value.sga;
        if (g->sga_numsegs == 0)
            return ECONNRESET; /* closed before the echo was back */
        for (uint32_t k = 0; k < g->sga_numsegs; k++) {
            const uint8_t *d = g->sga_segs[k].sgaseg_buf;
            for (uint32_t i = 0; i < g->sga_segs[k].sgaseg_len; i++, got++)
                if (got >= size || d[i] != pattern(t, c, r, got)) {
                    demi_sgafree(g);
                    return EILSEQ;
                }
        }
        demi_sgafree(g);
        if (got < size && (e = demi_pop(&qts[1], qd)))
            return e;
    }
    *bytes += size;
    return 0;
}

/* ROUNDS datagrams from each of @nsock sockets (ephemeral ports, so
 * flows that hash to different instances of the server). */
static int udp_rounds(unsigned t, unsigned nsock, uint64_t *datagrams)
{
    int qds[64], e = 0;
    unsigned open = 0;
    struct sockaddr_in any = {.sin_family = AF_INET};
    for (; open < nsock && !e; open++)
        if (!(e = demi_socket(&qds[open], AF_INET, SOCK_DGRAM, 0)) &&
            (e = demi_bind(qds[open], (struct sockaddr *)&any, sizeof(any))))
            demi_close(qds[open]);
    if (e)
        open--;
    unsigned len = size < 1400 ? size : 1400;
    for (unsigned r = 0; r < rounds && !e; r++) {
        for (unsigned k = 0; k < open && !e; k++) {
            int qd = qds[k];
            demi_sgarray_t s = demi_sgaalloc(len);
            if (s.sga_numsegs != 1) {
                e = ENOMEM;
                break;
            }
            uint8_t *p = s.sga_segs[0].sgaseg_buf;
            for (size_t i = 0; i < len; i++)
                p[i] = pattern(t, 9999 - k, r, i);
            demi_qtoken_t qt;
            demi_qresult_t qr;
            e = demi_pushto(&qt, qd, &s, (struct sockaddr *)&udp_to, sizeof(udp_to));
            demi_sgafree(&s);
            if (e || (e = wait_one(qt, &qr)))
                break;
            /* One datagram in flight over a veth or memif: none is lost. */
            if ((e = demi_pop(&qt, qd)) || (e = wait_one(qt, &qr)))
                break;
            if (qr.qr_opcode != DEMI_OPC_POP) {
                e = qr.qr_opcode == DEMI_OPC_FAILED ? (int)qr.qr_ret : EPROTO;
                break;
            }
            demi_sgarray_t *g = &qr.qr_value.sga;
            int ok = g->sga_numsegs == 1 && g->sga_segs[0].sgaseg_len == len;
            const uint8_t *d = ok ? g->sga_segs[0].sgaseg_buf : NULL;
            for (size_t i = 0; ok && i < len; i++)
                ok = d[i] == pattern(t, 9999 - k, r, i);
            demi_sgafree(g);
            if (!ok)
                e = EILSEQ;
            else
                (*datagrams)++;
        }
    }
    for (unsigned k = 0; k < open; k++)
        demi_close(qds[k]);
    return e;
}

static void *worker(void *arg)
{
    unsigned t = (unsigned)(uintptr_t)arg;
    int e = demi_init(NULL);
    if (e) {
        bad(t, "demi_init", e);
        __atomic_add_fetch(&ndone, 1, __ATOMIC_RELEASE);
        return NULL;
    }
    int *qd = calloc(conns, sizeof(*qd));
    uint64_t bytes = 0, datagrams = 0;
    for (unsigned c = 0; c < conns && tcp_to.sin_port && !e; c++) {
        demi_qtoken_t qt;
        demi_qresult_t qr;
        if (!(e = demi_socket(&qd[c], AF_INET, SOCK_STREAM, 0)) &&
            !(e = demi_connect(&qt, qd[c], (struct sockaddr *)&tcp_to, sizeof(tcp_to))) && !(e = wait_one(qt, &qr)))
            e = qr.qr_opcode == DEMI_OPC_CONNECT ? 0 : qr.qr_opcode == DEMI_OPC_FAILED ? (int)qr.qr_ret : EPROTO;
        if (e)
            bad(t, "connect", e);
    }
    for (unsigned r = 0; r < rounds && tcp_to.sin_port && !e; r++)
        for (unsigned c = 0; c < conns && !e; c++)
            if ((e = round_trip(t, c, r, qd[c], &bytes)))
                bad(t, e == EILSEQ ? "TCP echo" : "TCP round trip", e == EILSEQ ? 0 : e);
    for (unsigned c = 0; c < conns && tcp_to.sin_port; c++)
        demi_close(qd[c]);
    free(qd);
    if (!e && udp_to.sin_port && (e = udp_rounds(t, conns < 1 ? 1 : conns > 64 ? 64 : conns, &datagrams)))
        bad(t, e == EILSEQ ? "UDP echo" : "UDP round trip", e == EILSEQ ? 0 : e);
    poll_until_all_done(nthreads);
    demi_stats_t st;
    if (!demi_get_stats(&st))
        printf("thread %u queue=%u/%u conns=%u bytes=%llu datagrams=%llu frames_handed_out=%llu frames_handed_in=%llu\n",
               t, st.queue, st.queues, tcp_to.sin_port ? conns : 0, (unsigned long long)bytes, (unsigned long long)datagrams,
               (unsigned long long)st.frames_handed_out, (unsigned long long)st.frames_handed_in);
    fflush(stdout);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 8) {
        fprintf(stderr, "usage: mq_client IP TCP_PORT UDP_PORT THREADS CONNS ROUNDS SIZE\n");
        return 2;
    }
    tcp_to.sin_family = udp_to.sin_family = AF_INET;
    if (inet_pton(AF_INET, argv[1], &tcp_to.sin_addr) != 1) {
        fprintf(stderr, "mq_client: %s is not an IPv4 address\n", argv[1]);
        return 2;
    }
    udp_to.sin_addr = tcp_to.sin_addr;
    tcp_to.sin_port = htons((uint16_t)atoi(argv[2]));
    udp_to.sin_port = htons((uint16_t)atoi(argv[3]));
    unsigned threads = nthreads = (unsigned)atoi(argv[4]);
    conns = (unsigned)atoi(argv[5]);
    rounds = (unsigned)atoi(argv[6]);
    size = (unsigned)atoi(argv[7]);
    if (threads < 1 || threads > 16 || rounds < 1 || size < 1 || size > (64u << 20)) {
        fprintf(stderr, "mq_client: THREADS 1..16, ROUNDS and SIZE (up to 64 MiB) at least 1\n");
        return 2;
    }
    pthread_t tid[16];
    for (unsigned t = 0; t < threads; t++)
        if (pthread_create(&tid[t], NULL, worker, (void *)(uintptr_t)t)) {
            fprintf(stderr, "mq_client: pthread_create failed\n");
            return 1;
        }
    for (unsigned t = 0; t < threads; t++)
        pthread_join(tid[t], NULL);
    return failed;
}
