/*
 * cattree group commit: 1000 pushes issued before any wait all complete,
 * successfully and in the order they were made (demi_wait_next_n hands
 * them back oldest first), and the log reads back in that order, with
 * 1000 pops in flight completing in order too.
 */
#include "storage_util.h"

#define N 1000

int main(void)
{
    char dir[256], path[512];
    su_init();
    su_tmpdir(dir, sizeof(dir), "conc");
    snprintf(path, sizeof(path), "%s/log", dir);
    int qd;
    MUST(demi_open(&qd, path, O_RDWR | O_CREAT, 0600));

    static demi_qtoken_t qts[N];
    for (uint64_t i = 0; i < N; i++)
        qts[i] = su_push_record(qd, i, (uint32_t)(1 + (i * 7919) % 9000), (uint32_t)(i % 3) + 1);
    int got = 0;
    static demi_qresult_t qr[64];
    while (got < N) {
        int n;
        struct timespec ts = {60, 0};
        MUST(demi_wait_next_n(qr, 64, &n, &ts));
        for (int k = 0; k < n; k++, got++) {
            CHECK_EQ(qr[k].qr_opcode, DEMI_OPC_PUSH);
            CHECK_EQ(qr[k].qr_qd, qd);
            CHECK(qr[k].qr_qt == qts[got]); /* in push order */
        }
    }
    /* Read back with every pop in flight at once too: they complete in
     * the order they were made, each with its record. */
    for (uint64_t i = 0; i < N; i++)
        MUST(demi_pop(&qts[i], qd));
    for (got = 0; got < N;) {
        int n;
        struct timespec ts = {60, 0};
        MUST(demi_wait_next_n(qr, 64, &n, &ts));
        for (int k = 0; k < n; k++, got++) {
            CHECK_EQ(qr[k].qr_opcode, DEMI_OPC_POP);
            CHECK(qr[k].qr_qt == qts[got]);
            CHECK(su_check(&qr[k].qr_value.sga, (uint64_t)got, (uint32_t)(1 + ((uint64_t)got * 7919) % 9000)));
            MUST(demi_sgafree(&qr[k].qr_value.sga));
        }
    }
    MUST(demi_close(qd));
    su_rm_rf(dir);
    printf("1000 concurrent pushes: ok\n");
    return 0;
}
