/*
 * Test harness for the stack on dev/sim: a world of nodes (each a runtime
 * with a virtual clock, a sim device and an inet stack) on one simulated
 * network, and a run loop that polls every node until nothing moves, then
 * jumps virtual time to the next frame arrival or timer. Deterministic:
 * the same seed gives the same run. Sockets are driven through the stack's
 * own socket calls (inet.h) with scheduler tasks, as the PDPIX layer would.
 */
#ifndef DEMI_TESTS_SIMWORLD_H
#define DEMI_TESTS_SIMWORLD_H

#include "core/runtime.h"
#include "dev/sim.h"
#include "inet/inet.h"
#include "tcheck.h"

#include <stdbool.h>

#define SW_MAX_NODES 8

struct simnode {
    struct runtime *rt;
    struct netdev *dev;
    struct inet *in;
    uint8_t mac[6];
    struct in_addr ip;
};

struct simworld {
    struct simnet *net;
    struct simnode node[SW_MAX_NODES];
    int n;
    uint64_t now;
    uint64_t seed;
};

/* Optional tweak of a node's stack configuration before it is created. */
typedef void (*sw_tweak_fn)(struct inet_config *ic);

void sw_init(struct simworld *w, uint64_t seed, const char *pcap_path);
/* A node at 10.0.0.(index+1) with MAC 02:00:00:00:00:(index+1). */
struct simnode *sw_node(struct simworld *w, sw_tweak_fn tweak);
void sw_link(struct simworld *w, struct simnode *n, const struct sim_link *link);
void sw_fini(struct simworld *w);

/* Runs until pred(arg) holds (0) or @max_ns of virtual time pass (ETIMEDOUT). */
int sw_run(struct simworld *w, bool (*pred)(void *arg), void *arg, uint64_t max_ns);
/* Runs for @ns of virtual time. */
void sw_run_for(struct simworld *w, uint64_t ns);

/* Sockets. */
void *sw_socket(struct simnode *n, int type);
void sw_bind(struct simnode *n, void *q, uint16_t port);
void sw_listen(struct simnode *n, void *q, int backlog);
struct sched_task *sw_accept(struct simnode *n, void *q);
struct sched_task *sw_connect(struct simnode *n, void *q, struct simnode *to, uint16_t port);
struct sched_task *sw_push(struct simnode *n, void *q, const demi_sgarray_t *sga);
struct sched_task *sw_pushto(struct simnode *n, void *q, const demi_sgarray_t *sga, struct simnode *to, uint16_t port);
struct sched_task *sw_pop(struct simnode *n, void *q);
void sw_close(struct simnode *n, void *q);
/* The queue behind an accepted connection's qd. */
void *sw_accepted(struct simnode *n, const demi_qresult_t *qr);

bool sw_done(struct sched_task *t);
/* Waits (in virtual time) for @t and returns its result; fails the test on timeout. */
demi_qresult_t sw_wait(struct simworld *w, struct simnode *n, struct sched_task *t, uint64_t max_ns);
/* Harvests a done task's result. */
demi_qresult_t sw_result(struct simnode *n, struct sched_task *t);

/* An array of @len pattern bytes from @n's heap. */
demi_sgarray_t sw_sga(struct simnode *n, size_t len, uint64_t seed, size_t off);
bool sw_check(const demi_sgarray_t *sga, uint64_t seed, size_t off);
void sw_free(struct simnode *n, demi_sgarray_t *sga);
uint8_t sw_byte(uint64_t seed, size_t off);

struct tcp_conn_stats sw_tcp_stats(struct simnode *n, void *q);

/* A transmitted frame, parsed for taps (network byte order undone). */
struct sw_seg {
    bool ip, tcp, udp, arp;
    uint32_t src, dst; /* network order */
    uint16_t sport, dport;
    uint32_t seq, ack;
    uint8_t flags;
    uint32_t dlen; /* TCP/UDP payload bytes */
    uint32_t hlen; /* TCP header length */
};

bool sw_parse(const uint8_t *frame, uint32_t len, struct sw_seg *out);

#define SEC  1000000000ull
#define MSEC 1000000ull
#define USEC 1000ull

#endif
