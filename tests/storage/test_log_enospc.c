/*
 * cattree on a full file system: a 24 MiB ext4 image, loop-mounted by the
 * test in a temporary directory (root; e2fsprogs and mount from
 * scripts/deps.sh). 64 KiB records are appended, 8 in flight, until pushes
 * fail: each failure is DEMI_OPC_FAILED with ENOSPC, nothing else. The
 * log is then reopened: it holds exactly the acknowledged records, in
 * order, and no damage is reported. Unmounted and deleted afterwards,
 * whatever happens.
 */
#include "storage_util.h"

#include <sys/mount.h>

#define WINDOW 8
#define MAXREC 4096

static char dir[256], img[512], mnt[512];
static bool mounted;

static void cleanup(void)
{
    if (mounted && umount2(mnt, 0) != 0)
        umount2(mnt, MNT_DETACH);
    mounted = false;
    su_rm_rf(dir);
}

static uint32_t len_of(uint64_t i)
{
    return i % 5 == 4 ? 1000 : 65536 + (uint32_t)(i % 7) * 512; /* mostly unaligned tails */
}

static int run(const char *cmd)
{
    fprintf(stderr, "+ %s\n", cmd);
    return system(cmd);
}

int main(void)
{
    if (geteuid() != 0)
        SKIP("needs root to mount a loop device");
    su_tmpdir(dir, sizeof(dir), "enospc");
    snprintf(img, sizeof(img), "%s/fs.img", dir);
    snprintf(mnt, sizeof(mnt), "%s/mnt", dir);
    atexit(cleanup); /* before demi_init: runs after libdemi has closed the log */
    CHECK(mkdir(mnt, 0700) == 0);
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "truncate -s 24M '%s' && mkfs.ext4 -q -F -m 0 '%s'", img, img);
    if (run(cmd) != 0) {
        fprintf(stderr, "mkfs.ext4 failed (scripts/deps.sh installs e2fsprogs)\n");
        return 1;
    }
    snprintf(cmd, sizeof(cmd), "mount -o loop '%s' '%s'", img, mnt);
    if (run(cmd) != 0) {
        fprintf(stderr, "cannot loop-mount the image (no loop devices?)\n");
        return 1;
    }
    mounted = true;

    char path[600];
    snprintf(path, sizeof(path), "%s/log", mnt);
    su_init();
    int qd;
    MUST(demi_open(&qd, path, O_RDWR | O_CREAT, 0600));
    static uint64_t acked[MAXREC];
    uint64_t nacked = 0, nfail = 0;
    static demi_qtoken_t ring[WINDOW];
    uint64_t i = 0, pushed = 0;
    /* Push until 30 pushes have failed, then drain. */
    for (;;) {
        if (pushed >= WINDOW || (nfail >= 30 && pushed > 0)) {
            uint64_t k = i - pushed;
            demi_qresult_t qr = su_wait(ring[k % WINDOW], 60);
            pushed--;
            if (qr.qr_opcode == DEMI_OPC_PUSH) {
                CHECK(nacked < MAXREC);
                acked[nacked++] = k;
            } else {
                CHECK_EQ(qr.qr_opcode, DEMI_OPC_FAILED);
                if (qr.qr_ret != ENOSPC) {
                    fprintf(stderr, "push %llu failed with %s, not ENOSPC\n", (unsigned long long)k,
                            strerror((int)qr.qr_ret));
                    return 1;
                }
                nfail++;
            }
        }
        if (nfail >= 30) {
            if (pushed == 0)
                break;
            continue;
        }
        CHECK(i < MAXREC);
        ring[i % WINDOW] = su_push_record(qd, i, len_of(i), (uint32_t)(i % 2) + 1);
        i++;
        pushed++;
    }
    printf("%llu pushes acknowledged, %llu failed with ENOSPC\n", (unsigned long long)nacked,
           (unsigned long long)nfail);
    CHECK(nacked > 100); /* the file system held a good part of its size */
    MUST(demi_close(qd));

    /* Reopen: exactly the acknowledged records, in order. */
    MUST(demi_open(&qd, path, O_RDONLY, 0));
    for (uint64_t n = 0;; n++) {
        demi_qtoken_t qt;
        MUST(demi_pop(&qt, qd));
        demi_qresult_t qr = su_wait(qt, 30);
        CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
        if (qr.qr_value.sga.sga_numsegs == 0) {
            CHECK_EQ(n, nacked);
            break;
        }
        CHECK(n < nacked);
        if (!su_check(&qr.qr_value.sga, acked[n], len_of(acked[n]))) {
            fprintf(stderr, "record %llu should be push %llu\n", (unsigned long long)n, (unsigned long long)acked[n]);
            return 1;
        }
        MUST(demi_sgafree(&qr.qr_value.sga));
    }
    MUST(demi_close(qd));
    printf("enospc: ok\n");
    return 0;
}
