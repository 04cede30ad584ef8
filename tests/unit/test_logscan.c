/*
 * cattree's recovery scan (src/libos/cattree/logscan.c) on logs built in
 * memory: where the valid prefix ends, how the damage is classified (torn
 * or changed), and which records after it count as valid: in order, not
 * numbered beyond what fits, not stale, and never a header forged inside
 * a payload. tests/storage/test_log_hole covers the same through
 * demi_open; tests/fuzz/fuzz_logfmt throws arbitrary files at it.
 */
#include "libos/cattree/crc32c.h"
#include "libos/cattree/format.h"
#include "libos/cattree/logscan.h"
#include "tcheck.h"

#include <errno.h>

#define ALIGN 512u
#define CAP   (1u << 20)

static uint8_t file[CAP];
static size_t flen;
static uint64_t rec_off[64];

static int rd(void *ctx, void *buf, size_t len, uint64_t off, size_t *got)
{
    (void)ctx;
    size_t n = off >= flen ? 0 : flen - off < len ? flen - off : len;
    memcpy(buf, file + off, n);
    *got = n;
    return 0;
}

static void put_rec(uint64_t seq, const uint8_t *payload, uint32_t len)
{
    struct logfmt_rec r = {
        .seq = seq, .len = len, .data_crc = crc32c(0, payload, len), .data_off = logfmt_data_off(len, ALIGN)};
    uint64_t size = logfmt_rec_size(len, ALIGN);
    CHECK(flen + size <= CAP);
    memset(file + flen, 0, size);
    logfmt_rec_hdr_encode(file + flen, &r);
    memcpy(file + flen + r.data_off, payload, len);
    rec_off[seq] = flen;
    flen += size;
}

/* Records 0..n-1 with payloads of 100 + 150 * i bytes (some packed, some
 * in their own blocks). */
static void build(int n)
{
    memset(file, 0, sizeof(file));
    logfmt_file_hdr_encode(file, ALIGN, 0);
    flen = LOGFMT_FILE_HDR;
    for (int i = 0; i < n; i++) {
        uint8_t p[4096];
        uint32_t len = 100 + 150 * (uint32_t)i;
        for (uint32_t k = 0; k < len; k++)
            p[k] = (uint8_t)(i * 13 + k * 7 + 1); /* no zero sectors */
        put_rec((uint64_t)i, p, len);
    }
}

static struct logscan run(uint64_t far)
{
    static uint8_t buf[8192];
    struct logscan s = {.size = flen, .align = ALIGN, .far = far, .buf = buf, .buf_len = sizeof(buf), .read = rd};
    CHECK_EQ(logscan_run(&s), 0);
    return s;
}

/* Rewrites record @i's header with number @seq (checksum fixed). */
static void renumber(int i, uint64_t seq)
{
    uint8_t *h = file + rec_off[i];
    for (int k = 0; k < 8; k++)
        h[8 + k] = (uint8_t)(seq >> (8 * k));
    uint32_t c = crc32c(0, h, 28);
    for (int k = 0; k < 4; k++)
        h[28 + k] = (uint8_t)(c >> (8 * k));
}

int main(void)
{
    /* Clean, then with preallocated zeros after it. */
    build(10);
    struct logscan s = run(LOGFMT_INFLIGHT_MAX);
    CHECK_EQ(s.nrec, 10);
    CHECK_EQ(s.end, flen);
    CHECK(s.why == NULL && s.later == 0);
    uint64_t end = flen;
    flen += 64 * ALIGN;
    s = run(LOGFMT_INFLIGHT_MAX);
    CHECK(s.nrec == 10 && s.end == end && s.unused && s.torn && s.later == 0);

    /* Record 3's header zeroed: torn, 6 valid records after it, near or
     * far depending on the distance asked. */
    build(10);
    memset(file + rec_off[3], 0, LOGFMT_REC_HDR);
    s = run(LOGFMT_INFLIGHT_MAX);
    CHECK(s.nrec == 3 && s.end == rec_off[3] && s.unused && s.torn);
    CHECK_EQ(s.later, 6);
    CHECK_EQ(s.later_far, 0);
    CHECK(s.first_seq == 4 && s.first_off == rec_off[4] && s.last_seq == 9);
    s = run(ALIGN);
    CHECK_EQ(s.later_far, 6);
    s = run(rec_off[7] - rec_off[3]);
    CHECK_EQ(s.later_far, 3); /* records 7, 8, 9 */

    /* A flipped payload byte: changed, not torn; the damaged record's
     * length is trusted (its header is valid), so the scan steps over it. */
    build(10);
    file[rec_off[3] + logfmt_data_off(550, ALIGN) + 10] ^= 0x40;
    s = run(LOGFMT_INFLIGHT_MAX);
    CHECK(s.nrec == 3 && !s.torn && !s.unused && strstr(s.why, "payload checksum"));
    CHECK(s.later == 6 && s.first_off == rec_off[4]);

    /* The payload's last sector never written: torn. */
    build(10);
    uint64_t pend = rec_off[5] + logfmt_data_off(850, ALIGN) + 850;
    memset(file + ((pend - 1) & ~(uint64_t)(ALIGN - 1)), 0, pend - ((pend - 1) & ~(uint64_t)(ALIGN - 1)));
    s = run(LOGFMT_INFLIGHT_MAX);
    CHECK(s.nrec == 5 && s.torn && s.later == 4);

    /* After the damage: a number too large for its distance, and a stale
     * one (below the damage), are not counted. */
    build(10);
    memset(file + rec_off[3], 0, LOGFMT_REC_HDR);
    renumber(5, 1000);
    renumber(7, 1);
    s = run(LOGFMT_INFLIGHT_MAX);
    CHECK_EQ(s.later, 4); /* 4, 6, 8, 9 */
    CHECK(s.first_seq == 4 && s.last_seq == 9);

    /* A header forged inside a valid later record's payload, at an aligned
     * offset with a plausible number: stepped over, never counted. */
    build(6);
    memset(file + rec_off[2], 0, LOGFMT_REC_HDR);
    {
        uint8_t p[3000];
        memset(p, 0x5a, sizeof(p));
        uint8_t fake_payload[8] = {1, 2, 3, 4, 5, 6, 7, 8};
        struct logfmt_rec fake = {.seq = 7, .len = 8, .data_crc = crc32c(0, fake_payload, 8), .data_off = 32};
        /* The payload starts one alignment unit into the record, so its
         * byte 512 is aligned in the file. */
        logfmt_rec_hdr_encode(p + 512, &fake);
        memcpy(p + 512 + 32, fake_payload, 8);
        put_rec(6, p, sizeof(p));
    }
    s = run(LOGFMT_INFLIGHT_MAX);
    CHECK_EQ(s.nrec, 2);
    CHECK_EQ(s.later, 4); /* 3, 4, 5, 6 and not the forged 7 */
    CHECK_EQ(s.last_seq, 6);

    /* Cut in the middle of the last record: a torn append. */
    build(10);
    flen = rec_off[9] + 600;
    s = run(LOGFMT_INFLIGHT_MAX);
    CHECK(s.nrec == 9 && s.torn && strstr(s.why, "past the end") && s.later == 0);

    /* A record claiming the largest length, its header valid: no
     * allocation, no read outside the file, nothing after it counted. */
    build(4);
    {
        struct logfmt_rec big = {.seq = 4, .len = LOGFMT_MAX_RECORD, .data_crc = 0, .data_off = ALIGN};
        logfmt_rec_hdr_encode(file + flen, &big);
        flen += ALIGN;
    }
    s = run(LOGFMT_INFLIGHT_MAX);
    CHECK(s.nrec == 4 && s.torn && s.later == 0);

    /* Not even a header. */
    flen = 100;
    s = run(LOGFMT_INFLIGHT_MAX);
    CHECK(s.nrec == 0 && s.end == LOGFMT_FILE_HDR && s.why == NULL);
    printf("logscan: ok\n");
    return 0;
}
