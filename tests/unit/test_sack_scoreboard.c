/*
 * The sender's SACK scoreboard (src/inet/tcp_sack.c) on its own: insertion,
 * merging, SND.UNA advancing, RFC 6675's IsLost / pipe / NextSeg queries,
 * the resend skip, and blocks a hostile peer might send (empty, inverted,
 * stale, beyond SND.MAX, across 2^32, more than the board holds), then a
 * randomized run against a byte map. Each case runs in its own process;
 * a failure names its case.
 */
#include "inet/tcp_sack.h"
#include "tcases.h"
#include "tcheck.h"

#include <stdbool.h>

/* The board holds exactly @n ranges, given as start/end pairs. */
static void expect(const struct sack_board *sb, uint32_t n, const uint32_t *se)
{
    CHECK_EQ(sb->n, n);
    uint32_t bytes = 0;
    for (uint32_t i = 0; i < n; i++) {
        CHECK_EQ(sb->r[i].start, se[2 * i]);
        CHECK_EQ(sb->r[i].end, se[2 * i + 1]);
        bytes += se[2 * i + 1] - se[2 * i];
    }
    CHECK_EQ(sb->bytes, bytes);
}

#define EXPECT(sb, ...)                                                                                                \
    do {                                                                                                               \
        const uint32_t se_[] = {__VA_ARGS__};                                                                          \
        expect((sb), sizeof(se_) / sizeof(se_[0]) / 2, se_);                                                           \
    } while (0)

static void case_insert(void)
{
    struct sack_board sb = {0};
    sack_add(&sb, 0, 1000, 500, 600);
    EXPECT(&sb, 500, 600);
    sack_add(&sb, 0, 1000, 100, 200);
    EXPECT(&sb, 100, 200, 500, 600);
    sack_add(&sb, 0, 1000, 300, 400);
    EXPECT(&sb, 100, 200, 300, 400, 500, 600);
    sack_add(&sb, 0, 1000, 800, 1000); /* ending at SND.MAX is fine */
    EXPECT(&sb, 100, 200, 300, 400, 500, 600, 800, 1000);
    sack_clear(&sb);
    CHECK_EQ(sb.n, 0);
    CHECK_EQ(sb.bytes, 0);
}

static void case_merge(void)
{
    struct sack_board sb = {0};
    sack_add(&sb, 0, 1000, 100, 200);
    sack_add(&sb, 0, 1000, 150, 250); /* overlapping */
    EXPECT(&sb, 100, 250);
    sack_add(&sb, 0, 1000, 250, 300); /* adjacent above */
    EXPECT(&sb, 100, 300);
    sack_add(&sb, 0, 1000, 50, 100); /* adjacent below */
    EXPECT(&sb, 50, 300);
    sack_add(&sb, 0, 1000, 100, 200); /* already held */
    EXPECT(&sb, 50, 300);
    sack_add(&sb, 0, 1000, 400, 500);
    sack_add(&sb, 0, 1000, 600, 700);
    EXPECT(&sb, 50, 300, 400, 500, 600, 700);
    sack_add(&sb, 0, 1000, 250, 650); /* bridges three ranges */
    EXPECT(&sb, 50, 700);
    sack_add(&sb, 0, 1000, 10, 900); /* covers everything */
    EXPECT(&sb, 10, 900);
}

static void case_advance(void)
{
    struct sack_board sb = {0};
    sack_add(&sb, 0, 1000, 100, 200);
    sack_add(&sb, 0, 1000, 300, 400);
    sack_add(&sb, 0, 1000, 500, 600);
    sack_advance(&sb, 50); /* below every range: nothing changes */
    EXPECT(&sb, 100, 200, 300, 400, 500, 600);
    sack_advance(&sb, 150); /* into the first: cut */
    EXPECT(&sb, 150, 200, 300, 400, 500, 600);
    sack_advance(&sb, 200); /* to its end: gone */
    EXPECT(&sb, 300, 400, 500, 600);
    sack_advance(&sb, 550); /* past one, into the next */
    EXPECT(&sb, 550, 600);
    sack_advance(&sb, 700);
    CHECK_EQ(sb.n, 0);
    CHECK_EQ(sb.bytes, 0);
    /* A block straddling SND.UNA is cut there. */
    sack_add(&sb, 700, 1000, 650, 800);
    EXPECT(&sb, 700, 800);
}

static void case_hostile_blocks(void)
{
    struct sack_board sb = {0};
    uint32_t una = 1000, max = 5000;
    sack_add(&sb, una, max, 2000, 2000); /* empty */
    sack_add(&sb, una, max, 3000, 2000); /* inverted */
    sack_add(&sb, una, max, 500, 900);   /* below SND.UNA (a D-SACK) */
    sack_add(&sb, una, max, 500, 1000);  /* ends at SND.UNA */
    sack_add(&sb, una, max, 4000, 5001); /* ends beyond SND.MAX */
    sack_add(&sb, una, max, 6000, 7000); /* wholly beyond */
    /* Half the sequence space away: "below" SND.UNA, modulo 2^32. */
    sack_add(&sb, una, max, una + 0x80000000u, una + 0x80000100u);
    /* Inverted across the whole space: start far above end. */
    sack_add(&sb, una, max, 4000, una - 0x7fffff00u);
    CHECK_EQ(sb.n, 0);
    CHECK_EQ(sb.bytes, 0);
    /* A block from below SND.UNA to beyond SND.MAX is ignored whole. */
    sack_add(&sb, una, max, 0, 6000);
    CHECK_EQ(sb.n, 0);
    /* From below SND.UNA to SND.MAX: cut to the window. */
    sack_add(&sb, una, max, 0, max);
    EXPECT(&sb, una, max);
}

static void case_wrap(void)
{
    struct sack_board sb = {0};
    uint32_t una = 0xffffff00u, max = 0x00000400u; /* the window crosses 2^32 */
    sack_add(&sb, una, max, 0xffffff80u, 0x00000080u);
    EXPECT(&sb, 0xffffff80u, 0x00000080u);
    CHECK_EQ(sb.bytes, 0x100);
    sack_add(&sb, una, max, 0x00000200u, 0x00000300u);
    sack_add(&sb, una, max, 0xffffff10u, 0xffffff20u);
    EXPECT(&sb, 0xffffff10u, 0xffffff20u, 0xffffff80u, 0x00000080u, 0x00000200u, 0x00000300u);
    sack_add(&sb, una, max, 0x00000080u, 0x00000100u); /* adjacent, after the wrap */
    EXPECT(&sb, 0xffffff10u, 0xffffff20u, 0xffffff80u, 0x00000100u, 0x00000200u, 0x00000300u);
    sack_add(&sb, una, max, 0xfffffe00u, 0xffffff18u); /* straddles SND.UNA */
    EXPECT(&sb, 0xffffff00u, 0xffffff20u, 0xffffff80u, 0x00000100u, 0x00000200u, 0x00000300u);
    CHECK_EQ(sack_above(&sb, 0xffffff90u), 0x170 + 0x100);
    CHECK_EQ(sack_above(&sb, 0), 0x100 + 0x100);
    sack_advance(&sb, 0x00000010u); /* SND.UNA wraps */
    EXPECT(&sb, 0x00000010u, 0x00000100u, 0x00000200u, 0x00000300u);
    sack_add(&sb, 0x10, max, 0xfffffff0u, 0x00000008u); /* now stale */
    EXPECT(&sb, 0x00000010u, 0x00000100u, 0x00000200u, 0x00000300u);
}

/* More ranges than the board holds: the lowest are kept, whatever order
 * they come in. */
static void case_overflow(void)
{
    struct sack_board sb = {0};
    enum { N = TCP_MAX_SACK + 8 };
    uint32_t order[N];
    for (uint32_t i = 0; i < N; i++)
        order[i] = i;
    uint64_t r = 17;
    for (uint32_t i = N - 1; i > 0; i--) {
        uint32_t j = (uint32_t)(trand(&r) % (i + 1));
        uint32_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (uint32_t k = 0; k < N; k++) {
        uint32_t i = order[k];
        sack_add(&sb, 0, 100000, 100 + 200 * i, 200 + 200 * i);
        CHECK(sb.n <= TCP_MAX_SACK);
    }
    CHECK_EQ(sb.n, TCP_MAX_SACK);
    for (uint32_t i = 0; i < TCP_MAX_SACK; i++) {
        CHECK_EQ(sb.r[i].start, 100 + 200 * i);
        CHECK_EQ(sb.r[i].end, 200 + 200 * i);
    }
    CHECK_EQ(sb.bytes, 100 * TCP_MAX_SACK);
    /* A block above the full board is dropped; one below it pushes the
     * highest range out; one that merges two frees a slot. */
    sack_add(&sb, 0, 100000, 90000, 90100);
    CHECK_EQ(sb.r[TCP_MAX_SACK - 1].start, 100 + 200 * (TCP_MAX_SACK - 1));
    sack_add(&sb, 0, 100000, 10, 20);
    CHECK_EQ(sb.n, TCP_MAX_SACK);
    CHECK_EQ(sb.r[0].start, 10);
    CHECK_EQ(sb.r[TCP_MAX_SACK - 1].start, 100 + 200 * (TCP_MAX_SACK - 2));
    sack_add(&sb, 0, 100000, 200, 300);
    CHECK_EQ(sb.n, TCP_MAX_SACK - 1);
    CHECK_EQ(sb.r[1].start, 100);
    CHECK_EQ(sb.r[1].end, 400);
}

static void case_is_lost(void)
{
    struct sack_board sb = {0};
    uint32_t mss = 100;
    sack_add(&sb, 0, 2000, 300, 400);
    CHECK(!sack_is_lost(&sb, 0, mss)); /* one segment SACKed above */
    sack_add(&sb, 0, 2000, 500, 600);
    CHECK(!sack_is_lost(&sb, 0, mss)); /* two: (DupThresh - 1) * SMSS is not more */
    sack_add(&sb, 0, 2000, 700, 701);
    CHECK(sack_is_lost(&sb, 0, mss)); /* one byte more */
    CHECK(sack_is_lost(&sb, 299, mss));
    CHECK(!sack_is_lost(&sb, 450, mss));
    CHECK_EQ(sack_above(&sb, 350), 50 + 100 + 1);
    /* The tail probe's mark: everything below it is lost. */
    sb.lost_below_on = true;
    sb.lost_below = 650;
    CHECK(sack_is_lost(&sb, 450, mss));
    CHECK(sack_is_lost(&sb, 649, mss));
    CHECK(!sack_is_lost(&sb, 650, mss));
    sack_clear(&sb); /* the ranges go, not the mark */
    CHECK(sack_is_lost(&sb, 100, mss));
    sb.lost_below_on = false;
    CHECK(!sack_is_lost(&sb, 100, mss));
}

static void case_pipe(void)
{
    struct sack_board sb = {0};
    uint32_t mss = 100;
    CHECK_EQ(sack_pipe(&sb, 0, 800, false, 0, mss), 800);
    sack_add(&sb, 0, 800, 200, 300);
    sack_add(&sb, 0, 800, 400, 500);
    sack_add(&sb, 0, 800, 600, 700);
    /* Outside recovery: every unSACKed byte is in flight. */
    CHECK_EQ(sack_pipe(&sb, 0, 800, false, 0, mss), 500);
    /* In recovery, HighRxt 100: [0,100) resent counts once; [100,200) is
     * lost (300 SACKed above); the other holes have too little above. */
    CHECK_EQ(sack_pipe(&sb, 0, 800, true, 100, mss), 100 + 100 + 100 + 100);
    /* Nothing resent yet: the lost first hole does not count. */
    CHECK_EQ(sack_pipe(&sb, 0, 800, true, 0, mss), 300);
    /* SND.NXT rewound below SND.MAX: holes stop there. */
    CHECK_EQ(sack_pipe(&sb, 0, 450, false, 0, mss), 200 + 100);
}

static void case_next_hole(void)
{
    struct sack_board sb = {0};
    uint32_t mss = 100, len = 99;
    sack_add(&sb, 0, 800, 200, 300);
    sack_add(&sb, 0, 800, 400, 500);
    sack_add(&sb, 0, 800, 600, 700);
    CHECK_EQ(sack_next_hole(&sb, 0, 0, 800, mss, &len), 0);
    CHECK_EQ(len, 200);
    CHECK_EQ(sack_next_hole(&sb, 0, 150, 800, mss, &len), 150); /* resent up to 150 */
    CHECK_EQ(len, 50);
    sack_next_hole(&sb, 0, 200, 800, mss, &len); /* the next hole is not lost */
    CHECK_EQ(len, 0);
    CHECK_EQ(sack_next_hole(&sb, 0, 0, 120, mss, &len), 0); /* bounded by RecoveryPoint */
    CHECK_EQ(len, 120);
    sack_next_hole(&sb, 0, 120, 120, mss, &len);
    CHECK_EQ(len, 0);
    /* HighRxt below SND.UNA counts from SND.UNA. */
    sack_add(&sb, 0, 800, 700, 800);
    CHECK_EQ(sack_next_hole(&sb, 50, 0, 800, mss, &len), 50);
    CHECK_EQ(len, 150);
    /* The lost_below mark makes a hole with little above it lost. */
    sb.lost_below_on = true;
    sb.lost_below = 550;
    CHECK_EQ(sack_next_hole(&sb, 0, 300, 800, mss, &len), 300);
    CHECK_EQ(len, 100);
    CHECK_EQ(sack_next_hole(&sb, 0, 500, 800, mss, &len), 500);
    CHECK_EQ(len, 100);
    sb.lost_below = 500;
    sack_next_hole(&sb, 0, 500, 800, mss, &len);
    CHECK_EQ(len, 0);
}

static void case_skip(void)
{
    struct sack_board sb = {0};
    sack_add(&sb, 0, 1000, 200, 300);
    sack_add(&sb, 0, 1000, 300 + 100, 500);
    uint32_t seq = 250, stop = 7;
    CHECK(sack_skip(&sb, &seq, 1000, &stop));
    CHECK_EQ(seq, 300);
    CHECK_EQ(stop, 400);
    seq = 450;
    CHECK(!sack_skip(&sb, &seq, 1000, &stop));
    CHECK_EQ(seq, 500);
    seq = 100;
    CHECK(sack_skip(&sb, &seq, 1000, &stop));
    CHECK_EQ(seq, 100);
    CHECK_EQ(stop, 200);
    seq = 200; /* at SND.MAX already: nothing to skip */
    CHECK(!sack_skip(&sb, &seq, 200, &stop));
    CHECK_EQ(seq, 200);
}

/* Random blocks, hostile ones included, against a byte map of what the
 * board must hold: the lowest TCP_MAX_SACK runs of (board so far | block),
 * within the window. The window crosses 2^32. */
static void case_random_model(void)
{
    enum { W = 4096, PAD = 256 };
    const uint32_t base = 0xfffff800u;
    static bool map[W];
    struct sack_board sb = {0};
    uint32_t u = 0, m = 256; /* SND.UNA and SND.MAX, as offsets from base */
    uint64_t r = 2024;
    memset(map, 0, sizeof(map));
    for (int step = 0; step < 20000; step++) {
        uint64_t what = trand(&r) % 16;
        if (what == 0 && u < m) {
            u += (uint32_t)(trand(&r) % ((m - u < 128 ? m - u : 128) + 1));
            sack_advance(&sb, base + u);
            for (uint32_t i = 0; i < u; i++)
                map[i] = false;
        } else if (what == 1 && m < W) {
            m += (uint32_t)(trand(&r) % (W - m + 1));
        } else if (what == 2 && u == m) {
            /* Start over, so that the run covers the window again. */
            u = 0;
            m = 256;
            sack_clear(&sb);
            memset(map, 0, sizeof(map));
            continue;
        } else {
            int32_t s = (int32_t)(trand(&r) % (W + 2 * PAD)) - PAD;
            int32_t e = s + (int32_t)(trand(&r) % 40) - 4; /* some empty or inverted */
            sack_add(&sb, base + u, base + m, base + (uint32_t)s, base + (uint32_t)e);
            if (s < e && e > (int32_t)u && e <= (int32_t)m)
                for (int32_t i = s > (int32_t)u ? s : (int32_t)u; i < e; i++)
                    map[i] = true;
        }
        /* The board is the lowest runs of the map; then the map forgets
         * the runs the board dropped. */
        uint32_t k = 0, bytes = 0;
        for (uint32_t i = 0; i < W;) {
            if (!map[i]) {
                i++;
                continue;
            }
            uint32_t j = i;
            while (j < W && map[j])
                j++;
            if (k < TCP_MAX_SACK) {
                CHECK(k < sb.n);
                CHECK_EQ(sb.r[k].start, base + i);
                CHECK_EQ(sb.r[k].end, base + j);
                CHECK(i >= u && j <= m);
                bytes += j - i;
            } else {
                for (uint32_t x = i; x < j; x++)
                    map[x] = false;
            }
            k++;
            i = j;
        }
        CHECK_EQ(sb.n, k < TCP_MAX_SACK ? k : TCP_MAX_SACK);
        CHECK_EQ(sb.bytes, bytes);
    }
}

static const struct tcase cases[] = {
    {"insert", case_insert},
    {"merge", case_merge},
    {"advance", case_advance},
    {"hostile_blocks", case_hostile_blocks},
    {"wrap", case_wrap},
    {"overflow", case_overflow},
    {"is_lost", case_is_lost},
    {"pipe", case_pipe},
    {"next_hole", case_next_hole},
    {"skip", case_skip},
    {"random_model", case_random_model},
};
#define NCASES (sizeof cases / sizeof cases[0])

/* test_sack_scoreboard [--list | CASE...] (tcases.h): no argument runs every case. */
int main(int argc, char **argv)
{
    return tcase_main(argc, argv, cases, NCASES, "sack scoreboard", NULL);
}
