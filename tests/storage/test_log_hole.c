/*
 * cattree damage in the middle of a log (issue 11, finding 7). A log of
 * 10,000 records (about 40 MiB) is damaged in copies:
 *  - a zeroed 4 KiB block at record 5000 (a lost or torn write): opening it,
 *    read-only or read-write, fails with EUCLEAN, one error line names the
 *    file, the offset and how many valid records follow, and the file is
 *    unchanged; with DEMI_O_REPAIR it opens with the records before the
 *    damage, a warning says how many were dropped, and later opens and
 *    appends are clean;
 *  - a block of garbage at record 3000: the same refusal;
 *  - a torn tail (the last record's payload half zeros, or the header
 *    block of one of the last records lost while the ones after it landed,
 *    as writes in flight at a crash may): opened, the tail cut, a warning
 *    counting the bytes cut;
 *  - files shorter than a log's header: EBADMSG with a clear line, no
 *    underflowed size; an empty file is a new log.
 * Every line is checked for its level: what loses data is said at the
 * default level (warn), never only at info.
 */
#include "storage_util.h"

#include <sys/stat.h>

#define N      10000
#define HOLE   5000
#define GARBLE 3000
#define DEPTH  64

/* 3000-4000 bytes: one 4 KiB block each with 4 KiB alignment, about as
 * much with 512 B, so the 5000 records after the hole fill some 20 MiB. */
static uint32_t len_of(uint64_t i)
{
    return (uint32_t)(3000 + (i * 37) % 1000);
}

static char dir[256], master[512];
static uint8_t *image; /* the undamaged log, as written */
static size_t image_len;

static void write_log(const char *path, uint64_t first, uint64_t n)
{
    int qd;
    MUST(demi_open(&qd, path, O_RDWR | O_CREAT, 0600));
    demi_qtoken_t ring[DEPTH];
    for (uint64_t i = 0; i < n; i++) {
        if (i >= DEPTH)
            CHECK_EQ(su_wait(ring[i % DEPTH], 60).qr_opcode, DEMI_OPC_PUSH);
        ring[i % DEPTH] = su_push_record(qd, first + i, len_of(first + i), 1);
    }
    for (uint64_t i = n > DEPTH ? n - DEPTH : 0; i < n; i++)
        CHECK_EQ(su_wait(ring[i % DEPTH], 60).qr_opcode, DEMI_OPC_PUSH);
    MUST(demi_close(qd));
}

static uint8_t *load(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    struct stat st;
    CHECK(fstat(fd, &st) == 0);
    uint8_t *p = malloc((size_t)st.st_size + 1);
    CHECK(p);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t k = pread(fd, p + got, (size_t)st.st_size - got, (off_t)got);
        CHECK(k > 0);
        got += (size_t)k;
    }
    close(fd);
    *len = got;
    return p;
}

static void store(const char *path, const uint8_t *p, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    size_t put = 0;
    while (put < len) {
        ssize_t k = pwrite(fd, p + put, len - put, (off_t)put);
        CHECK(k > 0);
        put += (size_t)k;
    }
    CHECK(fsync(fd) == 0);
    close(fd);
}

/* FNV-1a over the file's bytes and size: "untouched" means the same hash. */
static uint64_t file_hash(const char *path)
{
    size_t len;
    uint8_t *p = load(path, &len);
    uint64_t h = 0xcbf29ce484222325ull ^ len;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    free(p);
    return h;
}

/* Offset of record @i's payload in the image, found by its content: it
 * starts 32 bytes into an aligned block (packed) or at one. */
static size_t find_payload(uint64_t i)
{
    uint8_t want[64];
    su_fill(want, i, 0, sizeof(want));
    for (size_t p = 4096; p + sizeof(want) <= image_len; p += 32)
        if ((p % 512 == 32 || p % 512 == 0) && memcmp(image + p, want, sizeof(want)) == 0)
            return p;
    CHECK(!"record not found in the log");
    return 0;
}

/* Does @msg hold a line at @level (error, warn) containing every needle? */
static bool has_line(const char *msg, const char *level, const char *n1, const char *n2)
{
    char prefix[32];
    snprintf(prefix, sizeof(prefix), "libdemi: %s: ", level);
    for (const char *l = msg; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        const char *end = strchr(l, '\n');
        size_t n = end ? (size_t)(end - l) : strlen(l);
        char line[1024];
        snprintf(line, sizeof(line), "%.*s", (int)(n < sizeof(line) - 1 ? n : sizeof(line) - 1), l);
        if (strncmp(line, prefix, strlen(prefix)) == 0 && (!n1 || strstr(line, n1)) && (!n2 || strstr(line, n2)))
            return true;
    }
    return false;
}

/* Reads the whole log, checking that record k is record k; returns the count. */
static uint64_t read_all(int qd)
{
    uint64_t n = 0;
    for (;;) {
        demi_qtoken_t qt;
        MUST(demi_pop(&qt, qd));
        demi_qresult_t qr = su_wait(qt, 30);
        CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
        if (qr.qr_value.sga.sga_numsegs == 0)
            return n;
        CHECK(su_check(&qr.qr_value.sga, n, len_of(n)));
        MUST(demi_sgafree(&qr.qr_value.sga));
        n++;
    }
}

/* A copy of the undamaged log with [at, at + len) replaced by @fill (NULL:
 * pseudo-random garbage). */
static void damaged_copy(const char *path, size_t at, size_t len, const uint8_t *fill)
{
    uint8_t *p = malloc(image_len);
    CHECK(p && at + len <= image_len);
    memcpy(p, image, image_len);
    uint64_t s = at;
    for (size_t i = 0; i < len; i++)
        p[at + i] = fill ? fill[i] : (uint8_t)trand(&s);
    store(path, p, image_len);
    free(p);
}

/* A hole with valid records after it: refused, read-only and read-write,
 * the file untouched. */
static void expect_refused(const char *path, uint64_t near)
{
    char msg[8192];
    char where[32];
    snprintf(where, sizeof(where), "record %llu", (unsigned long long)near);
    uint64_t h = file_hash(path);
    int flags[2] = {O_RDONLY, O_RDWR};
    for (int k = 0; k < 2; k++) {
        int qd;
        CHECK_EQ(su_open_captured(path, flags[k], &qd, msg, sizeof(msg)), EUCLEAN);
        CHECK(has_line(msg, "error", path, "valid records"));
        CHECK(has_line(msg, "error", "offset", "DEMI_O_REPAIR"));
        CHECK_EQ(file_hash(path), h);
    }
}

static void zero_block_in_the_middle(void)
{
    char path[600], msg[8192];
    snprintf(path, sizeof(path), "%s/zeroed", dir);
    size_t at = find_payload(HOLE) & ~(size_t)4095;
    static const uint8_t zeros[4096];
    damaged_copy(path, at, sizeof(zeros), zeros);
    expect_refused(path, HOLE);

    /* Read-only repair: the records before the damage, file untouched. */
    uint64_t h = file_hash(path);
    int qd;
    CHECK_EQ(su_open_captured(path, O_RDONLY | DEMI_O_REPAIR, &qd, msg, sizeof(msg)), 0);
    uint64_t kept = read_all(qd);
    MUST(demi_close(qd));
    CHECK(kept <= HOLE && kept + 2 >= HOLE); /* 4 KiB hold at most 2 records of 3000+ bytes */
    CHECK(has_line(msg, "warn", path, "valid records"));
    CHECK_EQ(file_hash(path), h);

    /* Read-write repair: cut at the damage, the drop logged. */
    struct stat before, after;
    CHECK(stat(path, &before) == 0);
    CHECK_EQ(su_open_captured(path, O_RDWR | DEMI_O_REPAIR, &qd, msg, sizeof(msg)), 0);
    char dropped[64];
    snprintf(dropped, sizeof(dropped), "%llu valid records", (unsigned long long)(N - HOLE - 1));
    CHECK(has_line(msg, "warn", path, "dropped"));
    CHECK(has_line(msg, "warn", "repair", dropped));
    CHECK_EQ(read_all(qd), kept);
    for (uint64_t i = 0; i < 10; i++)
        CHECK_EQ(su_wait(su_push_record(qd, kept + i, len_of(kept + i), 2), 30).qr_opcode, DEMI_OPC_PUSH);
    MUST(demi_close(qd));
    CHECK(stat(path, &after) == 0);

    /* Clean from now on: no line at the default level, and the appends. */
    CHECK_EQ(su_open_captured(path, O_RDWR, &qd, msg, sizeof(msg)), 0);
    CHECK(!has_line(msg, "warn", NULL, NULL) && !has_line(msg, "error", NULL, NULL));
    CHECK_EQ(read_all(qd), kept + 10);
    MUST(demi_close(qd));
    printf("zeroed block: refused; repair kept %llu records\n", (unsigned long long)kept);
}

static void garbage_in_the_middle(void)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/garbage", dir);
    damaged_copy(path, find_payload(GARBLE) & ~(size_t)4095, 4096, NULL);
    expect_refused(path, GARBLE);
    printf("garbage block: refused\n");
}

/* The tail of the log damaged as a crash leaves it: cut, with a warning. */
static void torn_tail(void)
{
    char path[600], msg[8192];
    int qd;

    /* The last record's payload, its second half never written. */
    snprintf(path, sizeof(path), "%s/torn-payload", dir);
    size_t at = find_payload(N - 1);
    static const uint8_t zeros[4096];
    damaged_copy(path, at + len_of(N - 1) / 2, len_of(N - 1) - len_of(N - 1) / 2, zeros);
    CHECK_EQ(su_open_captured(path, O_RDWR, &qd, msg, sizeof(msg)), 0);
    CHECK(has_line(msg, "warn", path, "checksum mismatch"));
    CHECK(has_line(msg, "warn", "bytes", "cut"));
    CHECK_EQ(read_all(qd), N - 1);
    MUST(demi_close(qd));
    CHECK_EQ(su_open_captured(path, O_RDWR, &qd, msg, sizeof(msg)), 0);
    CHECK(!has_line(msg, "warn", NULL, NULL) && !has_line(msg, "error", NULL, NULL));
    MUST(demi_close(qd));

    /* Record N-3's first block lost, N-2 and N-1 landed: writes in flight
     * at a crash complete in any order. Not acknowledged, so not an error. */
    snprintf(path, sizeof(path), "%s/torn-reordered", dir);
    damaged_copy(path, find_payload(N - 3) & ~(size_t)511, 512, zeros);
    CHECK_EQ(su_open_captured(path, O_RDWR, &qd, msg, sizeof(msg)), 0);
    CHECK(has_line(msg, "warn", path, "bytes"));
    CHECK(has_line(msg, "warn", "2 valid records", "cut"));
    CHECK(!has_line(msg, "error", NULL, NULL));
    CHECK_EQ(read_all(qd), N - 3);
    MUST(demi_close(qd));
    printf("torn tail: cut with a warning\n");
}

static void short_files(void)
{
    char path[600], msg[8192];
    int qd;
    snprintf(path, sizeof(path), "%s/short", dir);
    static const uint8_t zeros[100];
    store(path, zeros, sizeof(zeros));
    int flags[2] = {O_RDONLY, O_RDWR};
    for (int k = 0; k < 2; k++) {
        CHECK_EQ(su_open_captured(path, flags[k], &qd, msg, sizeof(msg)), EBADMSG);
        CHECK(has_line(msg, "error", path, "100 bytes"));
        CHECK(strstr(msg, "1844674407") == NULL);
    }
    store(path, image, 4000);
    CHECK_EQ(su_open_captured(path, O_RDONLY, &qd, msg, sizeof(msg)), EBADMSG);
    CHECK(has_line(msg, "error", path, "4000 bytes"));
    CHECK(strstr(msg, "1844674407") == NULL);
    CHECK_EQ(file_hash(path), file_hash(path)); /* still there */
    struct stat st;
    CHECK(stat(path, &st) == 0 && st.st_size == 4000);

    /* Empty: a new log (read-only: an empty one, left empty). */
    snprintf(path, sizeof(path), "%s/empty", dir);
    store(path, zeros, 0);
    CHECK_EQ(su_open_captured(path, O_RDONLY, &qd, msg, sizeof(msg)), 0);
    CHECK(strstr(msg, "1844674407") == NULL && !has_line(msg, "warn", NULL, NULL));
    CHECK_EQ(read_all(qd), 0);
    MUST(demi_close(qd));
    CHECK(stat(path, &st) == 0 && st.st_size == 0);
    CHECK_EQ(su_open_captured(path, O_RDWR | O_CREAT, &qd, msg, sizeof(msg)), 0);
    CHECK_EQ(read_all(qd), 0);
    CHECK_EQ(su_wait(su_push_record(qd, 0, len_of(0), 1), 30).qr_opcode, DEMI_OPC_PUSH);
    MUST(demi_close(qd));
    CHECK_EQ(su_open_captured(path, O_RDONLY, &qd, msg, sizeof(msg)), 0);
    CHECK_EQ(read_all(qd), 1);
    MUST(demi_close(qd));
    printf("short files: refused; empty file: a new log\n");
}

int main(void)
{
    su_init();
    su_tmpdir(dir, sizeof(dir), "hole");
    snprintf(master, sizeof(master), "%s/master", dir);
    write_log(master, 0, N);
    image = load(master, &image_len);
    /* Copies keep 1 MiB of the preallocated zeros after the last record,
     * not all of them: enough to be realistic, less to write. */
    size_t end = (find_payload(N - 1) + len_of(N - 1) + 4095) & ~(size_t)4095;
    if (end + (1u << 20) < image_len)
        image_len = end + (1u << 20);
    /* The hole must lie farther from the end than a crash's writes in
     * flight reach (16 MiB, see demi_open(3)), or it is a torn tail. */
    CHECK(end - find_payload(HOLE) > (17u << 20));
    int qd;
    char msg[8192];
    CHECK_EQ(su_open_captured(master, O_RDONLY, &qd, msg, sizeof(msg)), 0);
    CHECK_EQ(read_all(qd), N);
    MUST(demi_close(qd));

    zero_block_in_the_middle();
    garbage_in_the_middle();
    torn_tail();
    short_files();
    free(image);
    su_rm_rf(dir);
    printf("hole: ok\n");
    return 0;
}
