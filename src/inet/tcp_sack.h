/*
 * The sender's SACK scoreboard (tcp_sack.c): what the peer reported
 * holding above SND.UNA (RFC 2018), and RFC 6675's queries over it (IsLost,
 * the pipe, NextSeg's rule 1) that loss recovery in tcp_out.c asks. It
 * knows sequence numbers only: no connection, no sending, no time.
 *
 * Included by inet_int.h for struct sack_board; nothing here may need the
 * connection's structures.
 */
#ifndef DEMI_INET_TCP_SACK_H
#define DEMI_INET_TCP_SACK_H

#include <stdbool.h>
#include <stdint.h>

/* A range of sequence numbers [start, end), modulo 2^32. */
struct sack_range {
    uint32_t start, end;
};

#define TCP_MAX_SACK  32 /* ranges a board holds: the lowest are kept */
#define TCP_DUPTHRESH 3  /* RFC 6675 DupThresh, in segments */

/*
 * The board: sorted, disjoint ranges with gaps between them (adjacent
 * blocks are merged), all within [SND.UNA, SND.MAX] as they were when
 * added; @bytes is their total. Zeroed memory is an empty board.
 */
struct sack_board {
    struct sack_range r[TCP_MAX_SACK];
    uint32_t n;
    uint32_t bytes;
    /* Everything unSACKed below @lost_below is lost, whatever the count
     * above it says (set when a tail loss probe, the last thing sent,
     * was SACKed: RFC 8985's time order). */
    bool lost_below_on;
    uint32_t lost_below;
};

/* Forgets every range (not the lost_below mark). */
void sack_clear(struct sack_board *sb);

/* Adds the block [@start, @end) the peer reported, given what it can
 * hold: above @una, up to @max (SND.MAX). A block that is empty,
 * inverted, wholly at or below @una (a D-SACK included) or ending beyond
 * @max is ignored; one straddling @una is cut there. Overlapping and
 * adjacent ranges merge; past TCP_MAX_SACK ranges the highest are
 * dropped (so a block can make the board smaller). */
void sack_add(struct sack_board *sb, uint32_t una, uint32_t max, uint32_t start, uint32_t end);

/* SND.UNA moved to @una: drops what lies below it. */
void sack_advance(struct sack_board *sb, uint32_t una);

/* SACKed bytes at or above @seq. */
uint32_t sack_above(const struct sack_board *sb, uint32_t seq);

/* RFC 6675 IsLost(@seq): DupThresh segments of @mss bytes (less one
 * byte) SACKed above it, or below the lost_below mark. */
bool sack_is_lost(const struct sack_board *sb, uint32_t seq, uint32_t mss);

/* RFC 6675 pipe, by holes between @una and @nxt (SND.NXT): unSACKed
 * bytes below @high_rxt count as retransmitted (in flight again) while
 * @in_recovery; the others count unless @in_recovery and lost. */
uint32_t sack_pipe(const struct sack_board *sb, uint32_t una, uint32_t nxt, bool in_recovery, uint32_t high_rxt,
                   uint32_t mss);

/* RFC 6675 NextSeg rule 1: the first unSACKed, lost byte at or above
 * max(@high_rxt, @una) and below @recover; *@len is the length of its
 * hole (up to the next range or @recover), 0 if there is none. */
uint32_t sack_next_hole(const struct sack_board *sb, uint32_t una, uint32_t high_rxt, uint32_t recover, uint32_t mss,
                        uint32_t *len);

/* Going back after a timeout: moves *@seq past the ranges it lies in,
 * while it is below @max. Returns true and sets *@stop to the start of the
 * first range above *@seq when there is one (the resend stops there). */
bool sack_skip(const struct sack_board *sb, uint32_t *seq, uint32_t max, uint32_t *stop);

#endif
