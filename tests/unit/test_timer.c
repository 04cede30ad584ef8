/*
 * Timer wheel against a brute-force model: thousands of timers with random
 * expiries (1 ns to hours), random cancels and re-arms, and time advancing
 * in random steps both tiny and huge. Every timer must fire exactly once,
 * never early, and at the first advance that reaches its expiry.
 */
#include "core/timer.h"
#include "tcheck.h"

enum { N = 5000 };

struct tt {
    struct timer t;
    uint64_t expires;
    int armed;
    int fired;
    uint64_t fired_at;
};

static struct tt tts[N];
static uint64_t now;
static struct timer_wheel w;
static int rearm_self;

static void on_fire(struct timer *t)
{
    struct tt *x = (struct tt *)t;
    CHECK(x->armed);
    CHECK(x->expires <= now);
    x->fired++;
    x->fired_at = now;
    x->armed = 0;
    if (rearm_self && x->fired == 1 && (x - tts) % 5 == 0) {
        x->expires = now + 1000;
        x->armed = 1;
        timer_arm(&w, t, x->expires);
    }
}

static void check_round(uint64_t seed, int self)
{
    uint64_t r = seed;
    now = 1000000 + trand(&r) % 1000000;
    rearm_self = self;
    timer_wheel_init(&w, now);
    for (int i = 0; i < N; i++) {
        timer_init(&tts[i].t, on_fire);
        uint64_t kind = trand(&r) % 4;
        uint64_t d = kind == 0   ? trand(&r) % 100
                     : kind == 1 ? trand(&r) % 100000
                     : kind == 2 ? trand(&r) % 100000000
                                 : trand(&r) % 10000000000000ull;
        tts[i].expires = now + d;
        tts[i].armed = 1;
        tts[i].fired = 0;
        timer_arm(&w, &tts[i].t, tts[i].expires);
    }
    CHECK_EQ(w.armed, N);
    int steps = 0;
    while (w.armed && steps < 200000) {
        /* Random cancels and re-arms along the way. */
        for (int k = 0; k < 3; k++) {
            int i = (int)(trand(&r) % N);
            if (trand(&r) % 2) {
                timer_cancel(&w, &tts[i].t);
                tts[i].armed = 0;
            } else if (!tts[i].fired) {
                tts[i].expires = now + trand(&r) % 1000000;
                tts[i].armed = 1;
                timer_arm(&w, &tts[i].t, tts[i].expires);
            }
        }
        uint64_t step = trand(&r) % 3 == 0   ? trand(&r) % 50
                        : trand(&r) % 3 == 0 ? trand(&r) % 5000000
                                             : trand(&r) % 100000000000ull;
        now += step;
        timer_advance(&w, now);
        for (int i = 0; i < N; i++)
            if (tts[i].armed)
                CHECK(tts[i].expires > now); /* nothing due is left behind */
        steps++;
    }
    CHECK_EQ(w.armed, 0);
    for (int i = 0; i < N; i++) {
        CHECK(!tts[i].armed);
        CHECK(!timer_armed(&tts[i].t));
    }
}

int main(void)
{
    /* Simple cases first. */
    struct tt a;
    now = 100;
    timer_wheel_init(&w, now);
    timer_init(&a.t, on_fire);
    a.expires = 100 + 64 * 64 + 5;
    a.armed = 1;
    a.fired = 0;
    timer_arm(&w, &a.t, a.expires);
    CHECK(timer_next(&w) <= a.expires);
    for (now = 100; now < a.expires; now += 3) {
        timer_advance(&w, now);
        CHECK_EQ(a.fired, 0);
    }
    now = a.expires;
    timer_advance(&w, now);
    CHECK_EQ(a.fired, 1);
    CHECK_EQ(timer_next(&w), UINT64_MAX);

    /* Armed in the past: fires at the next advance. */
    a.expires = 50;
    a.armed = 1;
    timer_arm(&w, &a.t, 50);
    timer_advance(&w, now);
    CHECK_EQ(a.fired, 2);

    /* Cancel before expiry: never fires. */
    a.armed = 1;
    a.expires = now + 10;
    timer_arm(&w, &a.t, a.expires);
    timer_cancel(&w, &a.t);
    a.armed = 0;
    now += 1000;
    timer_advance(&w, now);
    CHECK_EQ(a.fired, 2);

    for (uint64_t seed = 1; seed <= 4; seed++)
        check_round(seed, (int)(seed % 2));
    printf("timer: ok\n");
    return 0;
}
