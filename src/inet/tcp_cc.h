/*
 * TCP congestion control (tcp_cc.c): the algorithms behind one small ops
 * table, as the libOSes and devices are. A connection takes the stack's
 * configured algorithm when it is created and keeps it; tcp_out.c calls it
 * on an ACK that advances outside recovery and on a loss, and does
 * recovery itself (RFC 5681, 6582, 6675), whatever the algorithm.
 *
 * Included by inet_int.h for the per-connection state; nothing here may
 * need the full struct tcp_pcb.
 */
#ifndef DEMI_INET_TCP_CC_H
#define DEMI_INET_TCP_CC_H

#include <stdint.h>

struct inet;
struct tcp_pcb;

/* Per-connection state of the algorithms; each uses its own fields. */
struct tcp_cc_state {
    /* NewReno: bytes acknowledged in congestion avoidance, toward the
     * next segment of growth. */
    uint32_t ack_cnt;
    /* CUBIC (RFC 9438 4): W_max and W_est in segments, K in seconds. */
    double w_max, k, w_est;
    uint64_t epoch; /* start of the congestion-avoidance epoch (ns), 0: none */
};

struct tcp_cc_ops {
    const char *name;
    /* Resets the algorithm's state; cwnd and ssthresh are already set. */
    void (*init)(struct tcp_pcb *pcb);
    /* @acked (> 0) new bytes acknowledged outside recovery: grow cwnd. */
    void (*on_ack)(struct inet *in, struct tcp_pcb *pcb, uint32_t acked);
    /* A loss was detected (fast retransmit or timeout): returns the new
     * ssthresh. The caller sets cwnd. */
    uint32_t (*on_loss)(struct inet *in, struct tcp_pcb *pcb);
};

extern const struct tcp_cc_ops tcp_cc_newreno;
extern const struct tcp_cc_ops tcp_cc_cubic;

/* The algorithm for @cc (enum inet_cc); CUBIC for an unknown value. */
const struct tcp_cc_ops *tcp_cc_ops_for(int cc);

/* The initial window and ssthresh (RFC 6928, RFC 5681 3.1), then the
 * connection's algorithm's init: once the MSS is known. */
void tcp_cc_init(struct tcp_pcb *pcb);

#endif
