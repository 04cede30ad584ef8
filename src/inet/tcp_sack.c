/*
 * The sender's SACK scoreboard (RFC 2018 blocks, RFC 6675 queries). The
 * peer's blocks are untrusted: whatever they say, the board stays sorted,
 * disjoint, bounded by TCP_MAX_SACK and within [SND.UNA, SND.MAX], and
 * nothing here loops longer than the board. It never sends or allocates.
 */
#include "inet/tcp_sack.h"

#include "inet/inet_int.h"

static void recount(struct sack_board *sb)
{
    uint32_t b = 0;
    for (uint32_t i = 0; i < sb->n; i++)
        b += sb->r[i].end - sb->r[i].start;
    sb->bytes = b;
}

void sack_clear(struct sack_board *sb)
{
    sb->n = 0;
    sb->bytes = 0;
}

void sack_add(struct sack_board *sb, uint32_t una, uint32_t max, uint32_t start, uint32_t end)
{
    /* Ignore blocks that are empty, stale or beyond what was sent (RFC
     * 2883 D-SACKs included). */
    if (!seq_lt(start, end) || seq_le(end, una) || seq_gt(end, max))
        return;
    if (seq_lt(start, una))
        start = una;
    /* Merge into the sorted, disjoint ranges: one that overlaps or touches
     * the new block joins it. */
    struct sack_range r = {start, end};
    struct sack_range out[TCP_MAX_SACK + 1];
    uint32_t n = 0;
    bool placed = false;
    for (uint32_t i = 0; i < sb->n; i++) {
        struct sack_range c = sb->r[i];
        if (seq_lt(c.end, r.start)) {
            out[n++] = c;
        } else if (seq_lt(r.end, c.start)) {
            if (!placed) {
                out[n++] = r;
                placed = true;
            }
            out[n++] = c;
        } else {
            r.start = seq_min(r.start, c.start);
            r.end = seq_max(r.end, c.end);
        }
    }
    if (!placed)
        out[n++] = r;
    if (n > TCP_MAX_SACK)
        n = TCP_MAX_SACK; /* keep the lowest ranges: they matter for recovery */
    memcpy(sb->r, out, n * sizeof(out[0]));
    sb->n = n;
    recount(sb);
}

void sack_advance(struct sack_board *sb, uint32_t una)
{
    uint32_t i = 0;
    while (i < sb->n && seq_le(sb->r[i].end, una))
        i++;
    if (i) {
        memmove(sb->r, sb->r + i, (sb->n - i) * sizeof(sb->r[0]));
        sb->n -= i;
    }
    if (sb->n && seq_lt(sb->r[0].start, una))
        sb->r[0].start = una;
    recount(sb);
}

uint32_t sack_above(const struct sack_board *sb, uint32_t seq)
{
    uint32_t b = 0;
    for (uint32_t i = 0; i < sb->n; i++) {
        const struct sack_range *r = &sb->r[i];
        if (seq_ge(r->start, seq))
            b += r->end - r->start;
        else if (seq_gt(r->end, seq))
            b += r->end - seq;
    }
    return b;
}

/* RFC 6675 4: a byte is lost once more than (DupThresh - 1) * SMSS bytes
 * above it are SACKed. */
bool sack_is_lost(const struct sack_board *sb, uint32_t seq, uint32_t mss)
{
    if (sb->lost_below_on && seq_lt(seq, sb->lost_below))
        return true;
    return sack_above(sb, seq) >= (TCP_DUPTHRESH - 1) * mss + 1;
}

/* RFC 6675 4 SetPipe, a hole at a time rather than a byte at a time. */
uint32_t sack_pipe(const struct sack_board *sb, uint32_t una, uint32_t nxt, bool in_recovery, uint32_t high_rxt,
                   uint32_t mss)
{
    uint32_t pipe = 0, at = una;
    for (uint32_t i = 0; i <= sb->n; i++) {
        uint32_t hole_end = i < sb->n ? sb->r[i].start : nxt;
        if (seq_gt(hole_end, nxt))
            hole_end = nxt;
        if (seq_lt(at, hole_end)) {
            uint32_t lo = at, hi = hole_end;
            if (in_recovery && seq_lt(lo, high_rxt)) {
                uint32_t rx_end = seq_min(hi, high_rxt);
                pipe += rx_end - lo;
                lo = rx_end;
            }
            if (seq_lt(lo, hi) && !(in_recovery && sack_is_lost(sb, lo, mss)))
                pipe += hi - lo;
        }
        if (i < sb->n)
            at = seq_max(at, sb->r[i].end);
    }
    return pipe;
}

/* RFC 6675 4 NextSeg (1); rules 2-4 (new data, rescue) are the send
 * loop's. Only the first hole above HighRxt is looked at: the holes above
 * it have less SACKed above them, so if it is not lost neither are they. */
uint32_t sack_next_hole(const struct sack_board *sb, uint32_t una, uint32_t high_rxt, uint32_t recover, uint32_t mss,
                        uint32_t *len)
{
    uint32_t at = seq_max(high_rxt, una);
    for (uint32_t i = 0; i <= sb->n; i++) {
        uint32_t hole_end = i < sb->n ? sb->r[i].start : recover;
        if (i < sb->n && seq_le(sb->r[i].end, at))
            continue;
        if (i < sb->n && seq_le(sb->r[i].start, at)) {
            at = sb->r[i].end;
            continue;
        }
        if (seq_gt(hole_end, recover))
            hole_end = recover;
        if (seq_lt(at, hole_end) && sack_is_lost(sb, at, mss)) {
            *len = hole_end - at;
            return at;
        }
        return (*len = 0);
    }
    return (*len = 0);
}

bool sack_skip(const struct sack_board *sb, uint32_t *seq, uint32_t max, uint32_t *stop)
{
    for (uint32_t i = 0; i < sb->n && seq_lt(*seq, max); i++) {
        const struct sack_range *r = &sb->r[i];
        if (seq_le(r->start, *seq) && seq_lt(*seq, r->end)) {
            *seq = r->end;
        } else if (seq_gt(r->start, *seq)) {
            *stop = r->start;
            return true;
        }
    }
    return false;
}
