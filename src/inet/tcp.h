/*
 * Declarations shared by tcp.c (input, state machine, socket operations),
 * tcp_out.c (output, timers, RTT, loss recovery) and tcp_cc.c (congestion
 * control algorithms).
 */
#ifndef DEMI_INET_TCP_H
#define DEMI_INET_TCP_H

#include "inet/inet_int.h"

/* Options of a received segment. */
struct tcp_opts {
    bool has_mss, has_wscale, sack_ok, has_ts;
    uint16_t mss;
    uint8_t wscale;
    uint32_t tsval, tsecr;
    uint32_t nsack;
    struct sack_range sack[4];
};

/* Control-block invariants (tcp_check_pcb in tcp_out.c): checked at the
 * end of input, output and timer work in test builds (DEMI_SANITIZE or
 * DEMI_INVARIANTS), where a violation logs the connection and traps. A
 * release build compiles the calls out. */
#if defined(DEMI_SANITIZE) || defined(DEMI_INVARIANTS)
#define TCP_INVARIANTS 1
#else
#define TCP_INVARIANTS 0
#endif

void tcp_check_pcb(const struct tcp_pcb *pcb, const char *where);

static inline void tcp_check(const struct tcp_pcb *pcb, const char *where)
{
    if (TCP_INVARIANTS)
        tcp_check_pcb(pcb, where);
}

/* Payload per segment after the timestamp option. */
static inline uint32_t tcp_eff_mss(const struct tcp_pcb *pcb)
{
    return pcb->mss - (pcb->ts_ok ? 12 : 0);
}

/* Bytes sent and not yet acknowledged (RFC 5681 FlightSize). */
static inline uint32_t tcp_flight_size(const struct tcp_pcb *pcb)
{
    return pcb->snd_max - pcb->snd_una;
}

/* tcp.c */
void pcb_drop(struct inet *in, struct tcp_pcb *pcb, int err);
void tcp_deliver_accept(struct inet *in, struct inet_sock *ls, struct tcp_pcb *pcb, struct sched_task *t);

/* tcp_cookie.c: SYN cookies (RFC 4987 3.6). A cookie stays valid for one
 * to two periods of its counter. */
#define TCP_COOKIE_PERIOD_NS (64ull * 1000000000ull)
/* Answers the SYN @th (options @o) from @rip with a SYN-ACK whose sequence
 * number is a cookie, keeping no state; @rcv_wscale and @wnd are what a
 * connection of the listener would offer. */
void tcp_cookie_synack(struct inet *in, uint32_t rip, const struct tcp_hdr *th, const struct tcp_opts *o,
                       uint8_t rcv_wscale, uint32_t wnd);
/* Checks the cookie an ACK @th (options @o) from @rip returns; on success
 * fills @syn with the options of the SYN it answered (MSS, and window
 * scale and SACK-permitted when the timestamps carried them) and with the
 * ACK's timestamp, and returns true. */
bool tcp_cookie_check(struct inet *in, uint32_t rip, const struct tcp_hdr *th, const struct tcp_opts *o,
                      struct tcp_opts *syn);

/* tcp_out.c */
/* Fills the checksum of a segment built in a header block and sends it. */
void tcp_send_built(struct inet *in, struct pkt *p, struct tcp_hdr *th, uint32_t rip);
void tcp_timers_init(struct tcp_pcb *pcb);
void tcp_timers_cancel(struct tcp_pcb *pcb);
int tcp_sq_append(struct inet *in, struct tcp_pcb *pcb, const demi_sgarray_t *sga);
void tcp_sq_truncate(struct inet *in, struct tcp_pcb *pcb, uint32_t end);
void tcp_sq_release(struct inet *in, struct tcp_pcb *pcb, uint32_t n);
void tcp_send_raw(struct inet *in, uint32_t rip, uint16_t rport, uint16_t lport, uint32_t seq, uint32_t ack,
                  uint8_t flags);
void tcp_send_syn(struct inet *in, struct tcp_pcb *pcb);
void tcp_send_ack(struct inet *in, struct tcp_pcb *pcb);
uint32_t tcp_acceptable_seq(const struct tcp_pcb *pcb);
void tcp_ack_later(struct inet *in, struct tcp_pcb *pcb, uint32_t bytes);
void tcp_window_update(struct inet *in, struct tcp_pcb *pcb);
void tcp_window_opened(struct inet *in, struct tcp_pcb *pcb);
void tcp_output(struct inet *in, struct tcp_pcb *pcb);
void tcp_ack_advance(struct inet *in, struct tcp_pcb *pcb, uint32_t ack);
void tcp_dupack(struct inet *in, struct tcp_pcb *pcb);
void tcp_sack_update(struct tcp_pcb *pcb, const struct tcp_opts *o);
void tcp_keep_arm(struct inet *in, struct tcp_pcb *pcb);

#endif
