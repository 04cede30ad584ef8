/*
 * Byte-exact TCP transfers on dev/sim, both directions at once, from 1 B
 * to 64 MiB, at 0%, 1% and 10% loss, and through a link that also
 * reorders, duplicates and corrupts frames (corrupted ones must die at the
 * checksum), with a small MTU. Every byte is checked by offset.
 */
#include "flow.h"
#include "inet/inet_int.h"

struct both {
    struct flow ab, ba;
};

static bool both_step(void *arg)
{
    struct both *x = arg;
    bool a = flow_step(&x->ab);
    bool b = flow_step(&x->ba);
    return a && b;
}

static uint32_t small_mtu;

static void mtu_tweak(struct inet_config *ic)
{
    ic->mtu = small_mtu;
    ic->mss = small_mtu - 40;
}

static void run(const char *name, uint64_t seed, const struct sim_link *lk, size_t size, uint32_t mtu)
{
    struct simworld w;
    sw_init(&w, seed, NULL);
    small_mtu = mtu;
    struct simnode *a = sw_node(&w, mtu ? mtu_tweak : NULL), *b = sw_node(&w, mtu ? mtu_tweak : NULL);
    void *aq, *bq;
    /* Connect over a clean link, then impair it. */
    sw_pair(&w, a, b, 5000, &aq, &bq);
    sw_link(&w, a, lk);
    sw_link(&w, b, lk);
    struct both x;
    flow_init(&x.ab, a, aq, b, bq, size, seed * 2 + 1);
    flow_init(&x.ba, b, bq, a, aq, size, seed * 2 + 2);
    uint64_t t0 = w.now;
    if (sw_run(&w, both_step, &x, 3600 * SEC) != 0) {
        fprintf(stderr, "%s: not done after an hour of virtual time (a->b %zu/%zu, b->a %zu/%zu)\n", name,
                x.ab.received, size, x.ba.received, size);
        exit(1);
    }
    struct tcp_conn_stats sa = sw_tcp_stats(a, aq), sb = sw_tcp_stats(b, bq);
    const struct inet_stats *ia = inet_stats(a->in), *ib = inet_stats(b->in);
    printf("%-28s %9zu B each way in %8.3f s virtual: retrans %llu+%llu segs, rto %llu+%llu, sack rec %llu+%llu, "
           "bad csum %llu\n",
           name, size, (double)(w.now - t0) / 1e9, (unsigned long long)sa.retrans_segs,
           (unsigned long long)sb.retrans_segs, (unsigned long long)sa.rto_expiries,
           (unsigned long long)sb.rto_expiries, (unsigned long long)sa.sack_recoveries,
           (unsigned long long)sb.sack_recoveries,
           (unsigned long long)(ia->tcp_rx_bad_csum + ib->tcp_rx_bad_csum + ia->ip_rx_bad_csum + ib->ip_rx_bad_csum));
    if (lk->corrupt_ppm) {
        /* Corrupted frames must have been caught by a checksum, never delivered. */
        uint64_t caught = ia->tcp_rx_bad_csum + ib->tcp_rx_bad_csum + ia->ip_rx_bad_csum + ib->ip_rx_bad_csum +
                          ia->eth_rx_not_ours + ib->eth_rx_not_ours + ia->ip_rx_bad_hdr + ib->ip_rx_bad_hdr +
                          ia->tcp_rx_bad_hdr + ib->tcp_rx_bad_hdr + ia->tcp_rx_bad_opt + ib->tcp_rx_bad_opt +
                          ia->eth_rx_other_type + ib->eth_rx_other_type + ia->ip_rx_not_ours + ib->ip_rx_not_ours +
                          ia->ip_rx_other_proto + ib->ip_rx_other_proto + ia->ip_rx_frag_dropped +
                          ib->ip_rx_frag_dropped + ia->tcp_rx_no_conn + ib->tcp_rx_no_conn;
        CHECK(caught > 0);
    }
    if (mtu)
        CHECK(simnet_stats(a->dev)->too_big == 0 && simnet_stats(b->dev)->too_big == 0);
    sw_close(a, aq);
    sw_close(b, bq);
    sw_run_for(&w, 300 * SEC);
    CHECK_EQ(heap_stats(a->rt->heap)->bytes_in_use, 0);
    CHECK_EQ(heap_stats(b->rt->heap)->bytes_in_use, 0);
    sw_fini(&w);
}

int main(int argc, char **argv)
{
    size_t big = argc > 1 ? strtoull(argv[1], NULL, 0) : (size_t)64 << 20;
    struct sim_link clean = {.delay_ns = 100 * USEC};
    struct sim_link loss1 = {.delay_ns = 100 * USEC, .loss_ppm = 10000};
    struct sim_link loss10 = {.delay_ns = 100 * USEC, .loss_ppm = 100000};
    struct sim_link chaos = {.delay_ns = 200 * USEC,
                             .jitter_ns = 50 * USEC,
                             .loss_ppm = 20000,
                             .dup_ppm = 20000,
                             .reorder_ppm = 30000,
                             .corrupt_ppm = 10000};
    size_t sizes[] = {1, 1000, 65536 + 3, 1u << 20};
    for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char name[64];
        snprintf(name, sizeof(name), "clean %zu", sizes[i]);
        run(name, 10 + i, &clean, sizes[i], 0);
        snprintf(name, sizeof(name), "loss 1%% %zu", sizes[i]);
        run(name, 20 + i, &loss1, sizes[i], 0);
        snprintf(name, sizeof(name), "loss 10%% %zu", sizes[i]);
        run(name, 30 + i, &loss10, sizes[i], 0);
    }
    run("clean 64M", 40, &clean, big, 0);
    run("loss 1% 64M", 41, &loss1, big, 0);
    run("loss 10% 64M", 42, &loss10, big, 0);
    run("chaos 4M", 43, &chaos, 4u << 20, 0);
    run("chaos 4M mtu 576", 44, &chaos, 4u << 20, 576);
    run("clean 1M mtu 296", 45, &clean, 1u << 20, 296);
    printf("transfers: ok\n");
    return 0;
}
