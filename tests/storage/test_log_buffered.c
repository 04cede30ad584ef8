/*
 * cattree where O_DIRECT is refused: on a ramfs mounted by the test (root)
 * the log falls back to buffered I/O and says so once; records with odd
 * segment addresses and lengths and non-heap segments append, reopen and
 * read back exactly. Unmounted and deleted afterwards.
 */
#include "storage_util.h"

#include <sys/mount.h>

#define N 3000

static char dir[256], mnt[512];
static bool mounted;

static void cleanup(void)
{
    if (mounted && umount2(mnt, 0) != 0)
        umount2(mnt, MNT_DETACH);
    su_rm_rf(dir);
}

static uint32_t len_of(uint64_t i)
{
    return (uint32_t)(1 + (i * 7919) % (i % 10 == 0 ? 200000 : 5000));
}

/* Record @i as three segments: a heap segment starting 3 bytes into its
 * block, a static (non-heap) one, and a plain heap one. */
static demi_qtoken_t push_odd(int qd, uint64_t i)
{
    static uint8_t mid[4096];
    uint32_t len = len_of(i);
    if (len < 10)
        return su_push_record(qd, i, len, 1);
    uint32_t a = len / 3, b = len / 3 < sizeof(mid) ? len / 3 : sizeof(mid), c = len - a - b;
    demi_sgarray_t pa = demi_sgaalloc(a + 3), pc = demi_sgaalloc(c);
    CHECK(pa.sga_numsegs == 1 && pc.sga_numsegs == 1);
    uint8_t *pa_data = (uint8_t *)pa.sga_segs[0].sgaseg_buf + 3;
    su_fill(pa_data, i, 0, a);
    su_fill(mid, i, a, b);
    su_fill(pc.sga_segs[0].sgaseg_buf, i, a + b, c);
    demi_sgarray_t sga = pa;
    sga.sga_numsegs = 3;
    sga.sga_segs[0].sgaseg_buf = pa_data;
    sga.sga_segs[0].sgaseg_len = a;
    sga.sga_segs[1].sgaseg_buf = mid;
    sga.sga_segs[1].sgaseg_len = b;
    sga.sga_segs[2] = pc.sga_segs[0];
    demi_qtoken_t qt;
    MUST(demi_push(&qt, qd, &sga));
    pa.sga_segs[0].sgaseg_len = a + 3;
    MUST(demi_sgafree(&pa));
    MUST(demi_sgafree(&pc));
    return qt;
}

int main(void)
{
    if (geteuid() != 0)
        SKIP("needs root to mount a ramfs");
    su_tmpdir(dir, sizeof(dir), "buffered");
    snprintf(mnt, sizeof(mnt), "%s/mnt", dir);
    atexit(cleanup);
    CHECK(mkdir(mnt, 0700) == 0);
    if (mount("demi-test", mnt, "ramfs", 0, "mode=0700") != 0) {
        fprintf(stderr, "mount ramfs: %s\n", strerror(errno));
        return 1;
    }
    mounted = true;
    char path[600];
    snprintf(path, sizeof(path), "%s/log", mnt);
    su_init();
    int qd;
    MUST(demi_open(&qd, path, O_RDWR | O_CREAT, 0600));
    for (uint64_t i = 0; i < N; i += 16) {
        demi_qtoken_t qt[16];
        for (uint64_t k = 0; k < 16 && i + k < N; k++)
            qt[k] = push_odd(qd, i + k);
        for (uint64_t k = 0; k < 16 && i + k < N; k++)
            CHECK_EQ(su_wait(qt[k], 30).qr_opcode, DEMI_OPC_PUSH);
    }
    MUST(demi_close(qd));
    MUST(demi_open(&qd, path, O_RDONLY, 0));
    for (uint64_t n = 0;; n++) {
        demi_qtoken_t qt;
        MUST(demi_pop(&qt, qd));
        demi_qresult_t qr = su_wait(qt, 30);
        CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
        if (qr.qr_value.sga.sga_numsegs == 0) {
            CHECK_EQ(n, N);
            break;
        }
        CHECK(su_check(&qr.qr_value.sga, n, len_of(n)));
        MUST(demi_sgafree(&qr.qr_value.sga));
    }
    MUST(demi_close(qd));
    printf("buffered: ok\n");
    return 0;
}
