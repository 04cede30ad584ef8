/*
 * cattree at volume: 100,000 records of mixed sizes (1 B to 1 MiB, one to
 * sixteen segments, some from non-heap memory) appended with 64 pushes in
 * flight, then the log is closed, reopened (its scan checks every record)
 * and read back with 64 pops in flight, every byte checked, ending with an
 * empty array.
 */
#include "storage_util.h"

#ifndef NREC
#define NREC 100000u
#endif
#define WINDOW 64

static uint32_t rec_len(uint64_t i)
{
    uint64_t s = i * 0x2545F4914F6CDD1Dull + 7;
    uint64_t r = trand(&s);
    if (i == 0)
        return 1u << 20; /* the extremes, first */
    if (i == 1)
        return 1;
    if (i % 100 == 0)
        return (uint32_t)(65536 + r % ((1u << 20) - 65536 + 1)); /* large: 64 KiB .. 1 MiB */
    if (i % 10 == 0)
        return (uint32_t)(513 + r % (16384 - 513)); /* medium */
    return (uint32_t)(1 + r % 512);                 /* small: packed with the header */
}

static uint32_t rec_segs(uint64_t i)
{
    return i % 1000 == 7 ? 16 : (uint32_t)(i % 4) + 1;
}

/* Every 97th record has a middle segment in malloc'd memory (copied). */
static demi_qtoken_t push_mixed(int qd, uint64_t i)
{
    uint32_t len = rec_len(i);
    if (i % 97 != 5 || len < 3)
        return su_push_record(qd, i, len, rec_segs(i));
    uint32_t a = len / 3, b = len / 3, c = len - a - b;
    demi_sgarray_t pa = demi_sgaalloc(a), pc = demi_sgaalloc(c);
    uint8_t *mid = malloc(b);
    CHECK(pa.sga_numsegs == 1 && pc.sga_numsegs == 1 && mid);
    su_fill(pa.sga_segs[0].sgaseg_buf, i, 0, a);
    su_fill(mid, i, a, b);
    su_fill(pc.sga_segs[0].sgaseg_buf, i, a + b, c);
    demi_sgarray_t sga = pa;
    sga.sga_numsegs = 3;
    sga.sga_segs[1].sgaseg_buf = mid;
    sga.sga_segs[1].sgaseg_len = b;
    sga.sga_segs[2] = pc.sga_segs[0];
    demi_qtoken_t qt;
    MUST(demi_push(&qt, qd, &sga));
    memset(mid, 0, b); /* copied at push time */
    free(mid);
    MUST(demi_sgafree(&pa));
    MUST(demi_sgafree(&pc));
    return qt;
}

int main(void)
{
    char dir[256], path[512];
    su_init();
    su_tmpdir(dir, sizeof(dir), "100k");
    snprintf(path, sizeof(path), "%s/log", dir);
    int qd;
    MUST(demi_open(&qd, path, O_RDWR | O_CREAT | O_TRUNC, 0600));

    static demi_qtoken_t ring[WINDOW];
    uint64_t bytes = 0;
    for (uint64_t i = 0; i < NREC + WINDOW; i++) {
        if (i >= WINDOW) { /* pushes complete in order: wait for the oldest */
            demi_qresult_t qr = su_wait(ring[i % WINDOW], 60);
            if (qr.qr_opcode != DEMI_OPC_PUSH) {
                fprintf(stderr, "push %llu failed: %s\n", (unsigned long long)(i - WINDOW), strerror((int)qr.qr_ret));
                return 1;
            }
        }
        if (i < NREC) {
            ring[i % WINDOW] = push_mixed(qd, i);
            bytes += rec_len(i);
        }
    }
    MUST(demi_close(qd));
    printf("appended %u records, %llu bytes\n", NREC, (unsigned long long)bytes);

    MUST(demi_open(&qd, path, O_RDONLY, 0));
    for (uint64_t i = 0; i < NREC + WINDOW; i++) {
        if (i >= WINDOW) {
            uint64_t k = i - WINDOW;
            demi_qresult_t qr = su_wait(ring[i % WINDOW], 60);
            CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
            if (!su_check(&qr.qr_value.sga, k, rec_len(k))) {
                fprintf(stderr, "record %llu (%u bytes) reads back wrong\n", (unsigned long long)k, rec_len(k));
                return 1;
            }
            MUST(demi_sgafree(&qr.qr_value.sga));
        }
        if (i < NREC)
            MUST(demi_pop(&ring[i % WINDOW], qd));
    }
    demi_qtoken_t qt;
    MUST(demi_pop(&qt, qd));
    demi_qresult_t qr = su_wait(qt, 10);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
    CHECK_EQ(qr.qr_value.sga.sga_numsegs, 0);
    MUST(demi_close(qd));
    su_rm_rf(dir);
    printf("read back %u records: ok\n", NREC);
    return 0;
}
