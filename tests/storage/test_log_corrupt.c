/*
 * cattree corruption: one flipped byte in the payload of record 500 of
 * 1000. A changed byte is no crash's doing, and 499 valid records follow
 * it, so opening fails with EUCLEAN, read-only or read-write, saying so,
 * and the file is left alone. With DEMI_O_REPAIR, opening read-only shows
 * records 0..499 (the file still left alone); opening read-write shows the
 * same 500 records and cuts the rest from the file; new appends follow
 * record 499 and read back after another reopen.
 */
#include "storage_util.h"

#include <sys/stat.h>

#define N   1000
#define BAD 500

static uint32_t len_of(uint64_t i)
{
    return (uint32_t)(1 + (i * 37) % 3000 + (i == BAD ? 64 : 0));
}

static int open_captured(const char *path, int flags, char *msg, size_t msglen)
{
    int qd;
    MUST(su_open_captured(path, flags, &qd, msg, msglen));
    return qd;
}

static uint64_t read_log(int qd, uint64_t expect_new_from, uint64_t new_base)
{
    uint64_t n = 0;
    for (;;) {
        demi_qtoken_t qt;
        MUST(demi_pop(&qt, qd));
        demi_qresult_t qr = su_wait(qt, 30);
        CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
        if (qr.qr_value.sga.sga_numsegs == 0)
            return n;
        uint64_t id = n < expect_new_from ? n : new_base + n;
        CHECK(su_check(&qr.qr_value.sga, id, len_of(id)));
        MUST(demi_sgafree(&qr.qr_value.sga));
        n++;
    }
}

/* Offset of record @i's payload in the file, found by its content. */
static long find_payload(const char *path, uint64_t i)
{
    FILE *fp = fopen(path, "rb");
    CHECK(fp);
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *all = malloc((size_t)size);
    CHECK(all && fread(all, 1, (size_t)size, fp) == (size_t)size);
    fclose(fp);
    uint8_t want[64];
    su_fill(want, i, 0, sizeof(want));
    long at = -1;
    for (long p = 0; p + 64 <= size && at < 0; p++)
        if (all[p] == want[0] && memcmp(all + p, want, 64) == 0)
            at = p;
    free(all);
    return at;
}

int main(void)
{
    char dir[256], path[512], msg[4096];
    su_init();
    su_tmpdir(dir, sizeof(dir), "corrupt");
    snprintf(path, sizeof(path), "%s/log", dir);
    int qd;
    MUST(demi_open(&qd, path, O_RDWR | O_CREAT, 0600));
    for (uint64_t i = 0; i < N; i++)
        CHECK_EQ(su_wait(su_push_record(qd, i, len_of(i), 1), 30).qr_opcode, DEMI_OPC_PUSH);
    MUST(demi_close(qd));

    /* Flip one byte in the middle of record 500's payload. */
    long at = find_payload(path, BAD);
    CHECK(at > 0);
    int fd = open(path, O_RDWR);
    CHECK(fd >= 0);
    uint8_t b;
    CHECK(pread(fd, &b, 1, at + 40) == 1);
    b ^= 0x20;
    CHECK(pwrite(fd, &b, 1, at + 40) == 1);
    CHECK(fsync(fd) == 0);
    close(fd);
    struct stat before, after;
    CHECK(stat(path, &before) == 0);

    /* Without repair: refused, whatever the access mode, file unchanged. */
    CHECK_EQ(su_open_captured(path, O_RDONLY, &qd, msg, sizeof(msg)), EUCLEAN);
    CHECK(strstr(msg, "libdemi: error: ") && strstr(msg, "record 500 ") && strstr(msg, "checksum mismatch") &&
          strstr(msg, "499 valid records"));
    CHECK_EQ(su_open_captured(path, O_RDWR, &qd, msg, sizeof(msg)), EUCLEAN);
    CHECK(stat(path, &after) == 0);
    CHECK_EQ(after.st_size, before.st_size);
    CHECK(find_payload(path, BAD + 1) > 0);

    /* Read-only repair: reported, not cut. */
    qd = open_captured(path, O_RDONLY | DEMI_O_REPAIR, msg, sizeof(msg));
    CHECK(strstr(msg, "libdemi: warn: ") && strstr(msg, "record 500 ") && strstr(msg, "checksum mismatch") &&
          strstr(msg, "read-only"));
    CHECK_EQ(read_log(qd, N, 0), BAD);
    MUST(demi_close(qd));
    CHECK(stat(path, &after) == 0);
    CHECK_EQ(after.st_size, before.st_size);
    CHECK(find_payload(path, BAD + 1) > 0);

    /* Read-write repair: reported and cut. */
    qd = open_captured(path, O_RDWR | DEMI_O_REPAIR, msg, sizeof(msg));
    CHECK(strstr(msg, "libdemi: warn: ") && strstr(msg, "record 500 ") && strstr(msg, "checksum mismatch") &&
          strstr(msg, "dropped 499 valid records"));
    CHECK_EQ(read_log(qd, N, 0), BAD);
    CHECK(find_payload(path, BAD + 1) < 0); /* the damaged tail is gone from the file */

    /* Appends continue after record 499. */
    for (uint64_t i = 0; i < 10; i++)
        CHECK_EQ(su_wait(su_push_record(qd, N + BAD + i, len_of(N + BAD + i), 2), 30).qr_opcode, DEMI_OPC_PUSH);
    MUST(demi_close(qd));
    qd = open_captured(path, O_RDONLY, msg, sizeof(msg));
    CHECK(strstr(msg, "checksum") == NULL);
    CHECK_EQ(read_log(qd, BAD, N), BAD + 10);
    MUST(demi_close(qd));
    su_rm_rf(dir);
    printf("corrupt: ok\n");
    return 0;
}
