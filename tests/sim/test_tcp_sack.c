/*
 * SACK (RFC 2018, RFC 6675) against NewReno: 2 MiB transfers in which
 * the same four segments of one window are lost.
 *  - Each lost once: SACK repairs them in one recovery with exactly four
 *    retransmissions and no timeout; NewReno needs a round trip per hole.
 *  - The second hole's first retransmission lost too: NewReno can only
 *    wait for the timeout and go back N, resending segments the receiver
 *    already has; SACK sees the retransmission lost once later data is
 *    SACKed, resends that hole alone, and retransmits far fewer bytes.
 * Every transfer arrives byte-exact.
 */
#include "flow.h"
#include "inet/inet_int.h"

static struct {
    uint32_t iss;
    bool have_iss;
    uint32_t mss;
    int dropped[8];
    int ndrop;
    int times[8]; /* how often to drop each victim */
} lossy;

static const uint32_t victims[] = {40, 43, 47, 52}; /* segment numbers, all in one window */

static int tap(void *arg, struct netdev *from, const uint8_t *f, uint32_t len)
{
    struct simnode *a = arg;
    struct sw_seg s;
    if (from != a->dev || !sw_parse(f, len, &s) || !s.tcp)
        return 0;
    if (s.flags & TH_SYN) {
        lossy.iss = s.seq;
        lossy.have_iss = true;
        return 0;
    }
    if (!s.dlen || !lossy.have_iss)
        return 0;
    uint32_t off = s.seq - lossy.iss - 1;
    for (int i = 0; i < 4; i++) {
        if (lossy.dropped[i] < lossy.times[i] && off == victims[i] * lossy.mss) {
            lossy.dropped[i]++;
            lossy.ndrop++;
            return 1;
        }
    }
    return 0;
}

static bool sack_on;
static void tweak(struct inet_config *ic)
{
    ic->tcp_sack = sack_on;
}

static bool flow_pred(void *arg)
{
    return flow_step(arg);
}

static struct tcp_conn_stats run(bool sack, bool lose_rxt, uint64_t *virt_ns)
{
    memset(&lossy, 0, sizeof(lossy));
    for (int i = 0; i < 4; i++)
        lossy.times[i] = 1;
    if (lose_rxt)
        lossy.times[1] = 2;
    sack_on = sack;
    struct simworld w;
    sw_init(&w, 500, NULL);
    struct simnode *a = sw_node(&w, tweak), *b = sw_node(&w, tweak);
    simnet_set_tap(w.net, tap, a);
    struct sim_link lk = {.delay_ns = 500 * USEC};
    sw_link(&w, a, &lk);
    sw_link(&w, b, &lk);
    void *aq, *bq;
    sw_pair(&w, a, b, 80, &aq, &bq);
    lossy.mss = sw_tcp_stats(a, aq).mss - 12; /* payload per segment with timestamps */
    struct flow f;
    flow_init(&f, a, aq, b, bq, 2u << 20, 9);
    uint64_t t0 = w.now;
    CHECK_EQ(sw_run(&w, flow_pred, &f, 600 * SEC), 0);
    *virt_ns = w.now - t0;
    CHECK_EQ(lossy.ndrop, lose_rxt ? 5 : 4);
    struct tcp_conn_stats st = sw_tcp_stats(a, aq);
    CHECK_EQ(st.sack_ok, sack);
    simnet_set_tap(w.net, NULL, NULL);
    sw_close(a, aq);
    sw_close(b, bq);
    sw_fini(&w);
    return st;
}

static void report(const char *name, const struct tcp_conn_stats *s, uint64_t t)
{
    printf("%-24s %3llu segments (%6llu bytes) retransmitted, %llu SACK / %llu NewReno recoveries, %llu timeouts, "
           "%.1f ms\n",
           name, (unsigned long long)s->retrans_segs, (unsigned long long)s->retrans_bytes,
           (unsigned long long)s->sack_recoveries, (unsigned long long)s->newreno_recoveries,
           (unsigned long long)s->rto_expiries, (double)t / 1e6);
}

int main(void)
{
    uint64_t t_sack, t_reno;
    struct tcp_conn_stats s = run(true, false, &t_sack);
    struct tcp_conn_stats r = run(false, false, &t_reno);
    report("4 losses, SACK", &s, t_sack);
    report("4 losses, NewReno", &r, t_reno);
    /* SACK: exactly the four lost segments, one recovery, no timeout. */
    CHECK_EQ(s.sack_recoveries, 1);
    CHECK_EQ(s.rto_expiries, 0);
    CHECK_EQ(s.retrans_segs, 4);
    CHECK(s.retrans_bytes <= r.retrans_bytes);
    CHECK(t_sack < t_reno); /* NewReno needs a round trip per hole */

    s = run(true, true, &t_sack);
    r = run(false, true, &t_reno);
    report("+ lost rxt, SACK", &s, t_sack);
    report("+ lost rxt, NewReno", &r, t_reno);
    CHECK_EQ(s.rto_expiries, 0);
    CHECK(r.rto_expiries >= 1);
    CHECK(s.retrans_bytes < r.retrans_bytes);
    CHECK(t_sack < t_reno);
    printf("sack: ok\n");
    return 0;
}
