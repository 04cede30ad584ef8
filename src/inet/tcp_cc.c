/*
 * TCP congestion control algorithms: NewReno (RFC 5681, 6582) and CUBIC
 * (RFC 9438), each a struct tcp_cc_ops. They only set cwnd, ssthresh and
 * their own state in pcb->ccs; they never send, arm timers or touch the
 * send queue (loss recovery is tcp_out.c's).
 */
#include "inet/tcp.h"

#include <math.h>

/* RFC 6928: initial window of ten segments, within 14600 bytes. */
void tcp_cc_init(struct tcp_pcb *pcb)
{
    uint32_t mss = pcb->mss;
    uint32_t iw = MIN(10 * mss, MAX(2 * mss, 14600u));
    pcb->cwnd = iw;
    pcb->ssthresh = 0x7fffffff;
    pcb->cc->init(pcb);
}

/* Slow start, with appropriate byte counting (RFC 3465, L = 2). Returns
 * false when cwnd has reached ssthresh: congestion avoidance is the
 * algorithm's. */
static bool slow_start(struct tcp_pcb *pcb, uint32_t acked)
{
    if (pcb->cwnd >= pcb->ssthresh)
        return false;
    pcb->cwnd += MIN(acked, 2 * tcp_eff_mss(pcb));
    return true;
}

/* ---- NewReno ---- */

static void newreno_init(struct tcp_pcb *pcb)
{
    (void)pcb;
}

static void newreno_on_ack(struct inet *in, struct tcp_pcb *pcb, uint32_t acked)
{
    (void)in;
    if (slow_start(pcb, acked))
        return;
    /* Congestion avoidance (RFC 5681 3.1): one segment per window of data. */
    pcb->ccs.ack_cnt += acked;
    if (pcb->ccs.ack_cnt >= pcb->cwnd) {
        pcb->ccs.ack_cnt -= pcb->cwnd;
        pcb->cwnd += tcp_eff_mss(pcb);
    }
}

static uint32_t newreno_on_loss(struct inet *in, struct tcp_pcb *pcb)
{
    (void)in;
    return MAX(tcp_flight_size(pcb) / 2, 2 * tcp_eff_mss(pcb)); /* RFC 5681 (4) */
}

const struct tcp_cc_ops tcp_cc_newreno = {
    .name = "newreno",
    .init = newreno_init,
    .on_ack = newreno_on_ack,
    .on_loss = newreno_on_loss,
};

/* ---- CUBIC ---- */

#define CUBIC_C    0.4
#define CUBIC_BETA 0.7

static void cubic_init(struct tcp_pcb *pcb)
{
    pcb->ccs.w_max = 0;
    pcb->ccs.epoch = 0;
}

static void cubic_on_ack(struct inet *in, struct tcp_pcb *pcb, uint32_t acked)
{
    if (slow_start(pcb, acked))
        return;
    struct tcp_cc_state *cu = &pcb->ccs;
    uint32_t mss = tcp_eff_mss(pcb);
    uint64_t now = inet_now(in);
    double cwnd = (double)pcb->cwnd / mss;
    if (cu->epoch == 0) {
        /* A new epoch (RFC 9438 4.2): K, the time to climb back to W_max. */
        cu->epoch = now;
        if (cu->w_max < cwnd) {
            cu->k = 0;
            cu->w_max = cwnd;
        } else {
            cu->k = cbrt((cu->w_max - cwnd) / CUBIC_C);
        }
        cu->w_est = cwnd;
    }
    double rtt = pcb->rtt_valid ? (double)pcb->srtt / 1e9 : 0.1;
    double t = (double)(now - cu->epoch) / 1e9;
    double dt = t + rtt - cu->k;
    double target = CUBIC_C * dt * dt * dt + cu->w_max;
    if (target > 1.5 * cwnd)
        target = 1.5 * cwnd;
    /* Reno-friendly estimate (RFC 9438 4.3). */
    double alpha = 3.0 * (1.0 - CUBIC_BETA) / (1.0 + CUBIC_BETA);
    cu->w_est += alpha * ((double)acked / mss) / cwnd;
    if (cu->w_est > target)
        target = cu->w_est;
    if (target > cwnd) {
        double inc = (target - cwnd) / cwnd * ((double)acked / mss);
        pcb->cwnd += (uint32_t)(inc * mss) ? (uint32_t)(inc * mss) : 1;
    }
}

static uint32_t cubic_on_loss(struct inet *in, struct tcp_pcb *pcb)
{
    (void)in;
    struct tcp_cc_state *cu = &pcb->ccs;
    uint32_t mss = tcp_eff_mss(pcb);
    double w = (double)pcb->cwnd / mss;
    /* RFC 9438 4.7: fast convergence. */
    if (w < cu->w_max)
        cu->w_max = w * (1.0 + CUBIC_BETA) / 2.0;
    else
        cu->w_max = w;
    cu->epoch = 0;
    uint32_t ss = (uint32_t)(pcb->cwnd * CUBIC_BETA);
    return MAX(ss, 2 * mss);
}

const struct tcp_cc_ops tcp_cc_cubic = {
    .name = "cubic",
    .init = cubic_init,
    .on_ack = cubic_on_ack,
    .on_loss = cubic_on_loss,
};

const struct tcp_cc_ops *tcp_cc_ops_for(int cc)
{
    return cc == INET_CC_NEWRENO ? &tcp_cc_newreno : &tcp_cc_cubic;
}
