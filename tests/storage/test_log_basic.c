/*
 * cattree basics: create a log, append records, read them back, reach the
 * end (an empty array), reopen and read again; every misuse of demi_open
 * and of a log queue gives its documented errno, never a crash;
 * demi_get_stats counts the appends, their bytes, the flushes and the
 * records found at open.
 */
#include "storage_util.h"

#include <sys/stat.h>

static void read_all(int qd, uint64_t n, const uint32_t *lens)
{
    for (uint64_t i = 0; i < n; i++) {
        demi_qtoken_t qt;
        MUST(demi_pop(&qt, qd));
        demi_qresult_t qr = su_wait(qt, 30);
        CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
        CHECK_EQ(qr.qr_qd, qd);
        CHECK(su_check(&qr.qr_value.sga, i, lens[i]));
        MUST(demi_sgafree(&qr.qr_value.sga));
    }
    demi_qtoken_t qt;
    MUST(demi_pop(&qt, qd));
    demi_qresult_t qr = su_wait(qt, 30);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
    CHECK_EQ(qr.qr_value.sga.sga_numsegs, 0);
}

int main(void)
{
    int qd, qd2;
    demi_qtoken_t qt;
    char dir[256], path[512], other[512];

    /* Before demi_init. */
    CHECK_EQ(demi_open(&qd, "/tmp/x", O_RDWR | O_CREAT, 0600), EPERM);
    su_init();
    demi_stats_t ds;
    MUST(demi_get_stats(&ds));
    CHECK_EQ(ds.log_appends, 0);
    CHECK_EQ(ds.log_append_bytes, 0);
    CHECK_EQ(ds.log_flushes, 0);
    CHECK_EQ(ds.log_records_replayed, 0);
    su_tmpdir(dir, sizeof(dir), "basic");
    snprintf(path, sizeof(path), "%s/log", dir);

    /* Arguments. */
    CHECK_EQ(demi_open(NULL, path, O_RDWR | O_CREAT, 0600), EINVAL);
    CHECK_EQ(demi_open(&qd, NULL, O_RDWR | O_CREAT, 0600), EINVAL);
    CHECK_EQ(demi_open(&qd, "", O_RDWR | O_CREAT, 0600), ENOENT);
    CHECK_EQ(demi_open(&qd, path, O_WRONLY | O_CREAT, 0600), EINVAL);
    CHECK_EQ(demi_open(&qd, path, O_RDWR | O_CREAT | O_APPEND, 0600), EINVAL);
    CHECK_EQ(demi_open(&qd, path, O_RDWR | O_CREAT | O_NONBLOCK, 0600), EINVAL);
    CHECK_EQ(demi_open(&qd, path, O_RDWR | O_CREAT | O_DIRECT, 0600), EINVAL);
    CHECK_EQ(demi_open(&qd, path, O_RDONLY | O_CREAT, 0600), EINVAL);
    CHECK_EQ(demi_open(&qd, path, O_RDONLY | O_TRUNC, 0600), EINVAL);
    CHECK_EQ(demi_open(&qd, path, O_RDWR | O_EXCL, 0600), EINVAL);
    CHECK_EQ(demi_open(&qd, path, O_RDWR | O_CREAT, 010000), EINVAL);
    CHECK_EQ(demi_open(&qd, path, O_RDWR, 0), ENOENT);
    CHECK_EQ(demi_open(&qd, path, O_RDONLY, 0), ENOENT);
    snprintf(other, sizeof(other), "%s/no/such/dir/log", dir);
    CHECK_EQ(demi_open(&qd, other, O_RDWR | O_CREAT, 0600), ENOENT);
    CHECK_EQ(demi_open(&qd, dir, O_RDWR, 0), EISDIR);
    CHECK_EQ(demi_open(&qd, dir, O_RDONLY, 0), EISDIR);
    char longname[5000];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    CHECK_EQ(demi_open(&qd, longname, O_RDWR | O_CREAT, 0600), ENAMETOOLONG);
    snprintf(other, sizeof(other), "%s/notalog", dir);
    FILE *fp = fopen(other, "w");
    CHECK(fp);
    fputs("this is not a libdemi log, but it is long enough to have a header...\n", fp);
    fclose(fp);
    CHECK_EQ(demi_open(&qd, other, O_RDWR, 0), EBADMSG);
    CHECK_EQ(demi_open(&qd, other, O_RDONLY, 0), EBADMSG);
    snprintf(other, sizeof(other), "%s/fifo", dir);
    CHECK_EQ(mkfifo(other, 0600), 0);
    CHECK_EQ(demi_open(&qd, other, O_RDONLY, 0), EINVAL);

    /* Create, append, read back. */
    MUST(demi_open(&qd, path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640));
    struct stat st;
    CHECK_EQ(stat(path, &st), 0);
    CHECK_EQ(st.st_mode & 0777, 0640 & ~umask(022));
    CHECK_EQ(demi_open(&qd2, path, O_RDWR | O_CREAT | O_EXCL, 0600), EEXIST);
    CHECK_EQ(demi_open(&qd2, path, O_RDWR, 0), EBUSY);   /* one writer at a time */
    CHECK_EQ(demi_open(&qd2, path, O_RDONLY, 0), EBUSY); /* and no reader beside it */

    /* The empty log. */
    MUST(demi_pop(&qt, qd));
    demi_qresult_t qr = su_wait(qt, 10);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
    CHECK_EQ(qr.qr_value.sga.sga_numsegs, 0);
    CHECK_EQ(demi_sgafree(&qr.qr_value.sga), 0);

    static const uint32_t lens[] = {1,   2,     100,  480,   481,     511,           512,
                                    513, 4096,  4097, 65536, 1 << 20, (1 << 20) + 1, (3 << 20) + 17,
                                    7,   20000, 3000, 23384};
    const uint64_t n = sizeof(lens) / sizeof(lens[0]) - 2; /* the last two are pushed separately below */
    for (uint64_t i = 0; i < n; i++) {
        qt = su_push_record(qd, i, lens[i], (uint32_t)(i % 4) + 1);
        qr = su_wait(qt, 30);
        CHECK_EQ(qr.qr_opcode, DEMI_OPC_PUSH);
        CHECK_EQ(qr.qr_ret, 0);
        CHECK_EQ(qr.qr_qd, qd);
    }
    read_all(qd, n, lens);

    /* Non-heap memory is copied. */
    static uint8_t stack_rec[3000];
    su_fill(stack_rec, n, 0, sizeof(stack_rec));
    demi_sgarray_t sga;
    memset(&sga, 0, sizeof(sga));
    sga.sga_numsegs = 1;
    sga.sga_segs[0].sgaseg_buf = stack_rec;
    sga.sga_segs[0].sgaseg_len = sizeof(stack_rec);
    MUST(demi_push(&qt, qd, &sga));
    memset(stack_rec, 0, sizeof(stack_rec)); /* the log has its own copy */
    qr = su_wait(qt, 30);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_PUSH);

    /* Direct I/O with awkward segments: an aligned one with an unaligned
     * length, then one starting 3 bytes into its block, then an aligned
     * one (everything after the first unaligned point is staged). */
    {
        demi_sgarray_t p0 = demi_sgaalloc(8192), p1 = demi_sgaalloc(3000), p2 = demi_sgaalloc(16384);
        uint8_t *b1 = (uint8_t *)p1.sga_segs[0].sgaseg_buf + 3;
        su_fill(p0.sga_segs[0].sgaseg_buf, n + 1, 0, 5000);
        su_fill(b1, n + 1, 5000, 2000);
        su_fill(p2.sga_segs[0].sgaseg_buf, n + 1, 7000, 16384);
        demi_sgarray_t odd = p0;
        odd.sga_numsegs = 3;
        odd.sga_segs[0].sgaseg_len = 5000;
        odd.sga_segs[1].sgaseg_buf = b1;
        odd.sga_segs[1].sgaseg_len = 2000;
        odd.sga_segs[2] = p2.sga_segs[0];
        MUST(demi_push(&qt, qd, &odd));
        MUST(demi_sgafree(&p0));
        MUST(demi_sgafree(&p1));
        MUST(demi_sgafree(&p2));
        qr = su_wait(qt, 30);
        CHECK_EQ(qr.qr_opcode, DEMI_OPC_PUSH);
    }

    /* Every push above completed, so every record is durable and counted;
     * a flush covers one record or more. */
    uint64_t bytes = 0;
    for (uint64_t i = 0; i < n + 2; i++)
        bytes += lens[i];
    MUST(demi_get_stats(&ds));
    CHECK_EQ(ds.log_appends, n + 2);
    CHECK_EQ(ds.log_append_bytes, bytes);
    CHECK(ds.log_flushes >= 1 && ds.log_flushes <= n + 2);
    CHECK_EQ(ds.log_records_replayed, 0);
    uint64_t flushes = ds.log_flushes;

    /* Socket calls on a log. */
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof(a);
    int v = 1;
    CHECK_EQ(demi_bind(qd, (struct sockaddr *)&a, sizeof(a)), ENOTSOCK);
    CHECK_EQ(demi_listen(qd, 1), ENOTSOCK);
    CHECK_EQ(demi_accept(&qt, qd), ENOTSOCK);
    CHECK_EQ(demi_connect(&qt, qd, (struct sockaddr *)&a, sizeof(a)), ENOTSOCK);
    CHECK_EQ(demi_setsockopt(qd, SOL_SOCKET, SO_REUSEADDR, &v, sizeof(v)), ENOTSOCK);
    CHECK_EQ(demi_getpeername(qd, (struct sockaddr *)&a, &alen), ENOTSOCK);
    CHECK_EQ(demi_getsockname(qd, (struct sockaddr *)&a, &alen), ENOTSOCK);
    demi_sgarray_t one = demi_sgaalloc(8);
    CHECK_EQ(demi_pushto(&qt, qd, &one, (struct sockaddr *)&a, sizeof(a)), ENOTSOCK);
    CHECK_EQ(demi_push(NULL, qd, &one), EINVAL);
    CHECK_EQ(demi_push(&qt, qd, NULL), EINVAL);
    demi_sgarray_t empty;
    memset(&empty, 0, sizeof(empty));
    CHECK_EQ(demi_push(&qt, qd, &empty), EINVAL);
    CHECK_EQ(demi_pop(NULL, qd), EINVAL);

    /* Close with operations pending: they fail with ECANCELED (a cancelled
     * push may or may not be in the log). */
    demi_qtoken_t pend[8];
    for (int i = 0; i < 8; i++)
        MUST(demi_push(&pend[i], qd, &one));
    MUST(demi_close(qd));
    for (int i = 0; i < 8; i++) {
        qr = su_wait(pend[i], 10);
        CHECK(qr.qr_opcode == DEMI_OPC_FAILED && qr.qr_ret == ECANCELED);
    }
    CHECK_EQ(demi_push(&qt, qd, &one), EBADF);
    CHECK_EQ(demi_close(qd), EBADF);

    /* Reopen read-only: the same records; pushes refused. */
    MUST(demi_open(&qd, path, O_RDONLY, 0));
    CHECK_EQ(demi_push(&qt, qd, &one), EBADF);
    read_all(qd, n + 2, lens);
    MUST(demi_close(qd));
    /* The reopen found the records; the cancelled pushes and a read-only
     * log added no append and no flush. */
    MUST(demi_get_stats(&ds));
    CHECK_EQ(ds.log_records_replayed, n + 2);
    CHECK_EQ(ds.log_appends, n + 2);
    CHECK_EQ(ds.log_append_bytes, bytes);
    CHECK_EQ(ds.log_flushes, flushes);

    /* O_TRUNC empties it. */
    MUST(demi_open(&qd, path, O_RDWR | O_TRUNC, 0));
    MUST(demi_pop(&qt, qd));
    qr = su_wait(qt, 10);
    CHECK_EQ(qr.qr_value.sga.sga_numsegs, 0);
    MUST(demi_close(qd));

    MUST(demi_sgafree(&one));
    su_rm_rf(dir);
    printf("basic: ok\n");
    return 0;
}
