/*
 * libFuzzer target for cattree's log-open parsing: the file header check
 * (src/libos/cattree/format.c) and the recovery scan (logscan.c), which
 * demi_open runs on whatever file it is given. Built with clang
 * -fsanitize=fuzzer,address,undefined (see CMakeLists.txt) and run by
 * tests/fuzz/test_fuzz_logfmt.sh.
 *
 * An input is one of two things:
 *  - a whole log file, when it starts with "DEMILOG" (the seed corpus holds
 *    real logs written by cattree, some damaged): its header is decoded
 *    and, if valid, the file is scanned;
 *  - otherwise two control bytes and the file's body: byte 0 picks the
 *    alignment (512 to 4096), the read window and the "far" distance,
 *    byte 1 bit 0 asks for checksums to be fixed (every "REC1" header at
 *    an aligned offset gets a correct header CRC, and a correct payload CRC
 *    when its payload lies in the file), so that mutations get past the
 *    checksums to the logic behind them, and bits 1-4, if not 0, make that
 *    read fail with EIO (which the scan must return, whatever it was
 *    doing); the body follows a valid header.
 * The file is handed over through a read callback that checks every read
 * (aligned, whole windows, inside the file). Then the results must hold
 * together, and the valid prefix must match a plain reference scan over
 * the whole buffer (no window): the windowing must never change the answer.
 */
#include "libos/cattree/crc32c.h"
#include "libos/cattree/format.h"
#include "libos/cattree/logscan.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FILE (1u << 20)

#define REQUIRE(c)                                                                                                     \
    do {                                                                                                               \
        if (!(c))                                                                                                      \
            __builtin_trap();                                                                                          \
    } while (0)

struct file {
    const uint8_t *p;
    size_t len;
    uint32_t align;
    size_t buf_len;
    uint64_t reads;
    uint64_t fail_at;     /* the read that fails (from 1), or 0 */
    uint64_t nrec, bytes; /* what on_record saw */
};

static int rd(void *ctx, void *buf, size_t len, uint64_t off, size_t *got)
{
    struct file *f = ctx;
    REQUIRE(off % f->align == 0 && len == f->buf_len && off < f->len);
    if (++f->reads == f->fail_at)
        return EIO;
    size_t n = f->len - off < len ? f->len - off : len;
    memcpy(buf, f->p + off, n);
    /* What a file holds past the size seen at open must be ignored. */
    memset((uint8_t *)buf + n, 0xa5, len - n);
    *got = n;
    return 0;
}

static int on_rec(void *ctx, uint32_t len)
{
    struct file *f = ctx;
    f->nrec++;
    f->bytes += logfmt_rec_size(len, f->align);
    return 0;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Gives every aligned "REC1" header correct checksums. */
static void fix_crcs(uint8_t *p, size_t len, uint32_t align)
{
    for (size_t off = LOGFMT_FILE_HDR; off + LOGFMT_REC_HDR <= len; off += align) {
        uint8_t *h = p + off;
        if (memcmp(h, "REC1", 4) != 0)
            continue;
        uint32_t n = get32(h + 4);
        uint32_t doff = (uint32_t)h[20] | (uint32_t)h[21] << 8;
        if (n && n <= LOGFMT_MAX_RECORD && doff <= align && n <= len - off && doff <= len - off - n)
            put32(h + 16, crc32c(0, h + doff, n));
        put32(h + 28, crc32c(0, h, 28));
    }
}

/* The valid prefix, the obvious way. */
static uint64_t ref_prefix(const uint8_t *p, size_t len, uint32_t align, uint64_t *nrec)
{
    uint64_t off = LOGFMT_FILE_HDR, seq = 0;
    while (off + LOGFMT_REC_HDR <= len) {
        struct logfmt_rec r;
        const char *why;
        if (logfmt_rec_hdr_decode(p + off, seq, align, &r, &why))
            break;
        uint64_t rs = logfmt_rec_size(r.len, align);
        if (rs > len - off || crc32c(0, p + off + r.data_off, r.len) != r.data_crc)
            break;
        off += rs;
        seq++;
    }
    *nrec = seq;
    return off;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *file;
    size_t len;
    uint32_t align;
    uint8_t ctl = 0;
    if (size >= 8 && memcmp(data, "DEMILOG", 8) == 0) {
        if (size > MAX_FILE)
            return 0;
        const char *why;
        if (logfmt_file_hdr_decode(data, size, &align, &why))
            return 0;
        file = malloc(size);
        REQUIRE(file);
        memcpy(file, data, size);
        len = size;
    } else {
        if (size < 2 || size - 2 > MAX_FILE - LOGFMT_FILE_HDR)
            return 0;
        ctl = data[0];
        align = LOGFMT_MIN_ALIGN << (ctl & 3);
        len = LOGFMT_FILE_HDR + size - 2;
        file = malloc(len);
        REQUIRE(file);
        logfmt_file_hdr_encode(file, align, 0);
        memcpy(file + LOGFMT_FILE_HDR, data + 2, size - 2);
        uint32_t got;
        const char *why;
        REQUIRE(logfmt_file_hdr_decode(file, len, &got, &why) == 0 && got == align);
        if (data[1] & 1)
            fix_crcs(file, len, align);
    }

    size_t buf_len = 8192u << ((ctl >> 2) & 3);
    uint64_t fars[4] = {LOGFMT_INFLIGHT_MAX, 0, align, 8 * (uint64_t)align};
    struct file f = {.p = file, .len = len, .align = align, .buf_len = buf_len};
    uint8_t *buf = malloc(buf_len);
    REQUIRE(buf);
    struct logscan s = {
        .size = len,
        .align = align,
        .far = fars[(ctl >> 4) & 3],
        .buf = buf,
        .buf_len = buf_len,
        .ctx = &f,
        .read = rd,
        .on_record = on_rec,
    };
    if (size >= 2 && !(size >= 8 && memcmp(data, "DEMILOG", 8) == 0))
        f.fail_at = (data[1] >> 1) & 15;
    int e = logscan_run(&s);
    if (e) {
        REQUIRE(e == EIO && f.fail_at && f.reads == f.fail_at);
        goto out;
    }

    /* The results hold together. */
    REQUIRE(s.nrec == f.nrec);
    REQUIRE(s.end == LOGFMT_FILE_HDR + f.bytes);
    REQUIRE(s.end >= LOGFMT_FILE_HDR && (s.end - LOGFMT_FILE_HDR) % align == 0);
    if (len <= LOGFMT_FILE_HDR) {
        REQUIRE(s.nrec == 0 && !s.why);
    } else {
        REQUIRE(s.end <= len);
        REQUIRE((s.end == len) == (s.why == NULL));
    }
    REQUIRE(s.later_far <= s.later);
    if (s.later) {
        REQUIRE(s.end < len && s.first_off > s.end && s.first_off < len && s.first_off % align == 0);
        REQUIRE(s.first_seq >= s.nrec && s.last_seq >= s.first_seq);
        REQUIRE(s.later <= (len - s.end) / align);
        REQUIRE(s.first_seq - s.nrec <= (s.first_off - s.end) / align);
    }
    if (s.unused)
        REQUIRE(s.torn);
    /* Linear: a forward pass for the prefix, one back over the damaged
     * record's payload, one forward pass over the rest. */
    REQUIRE(f.reads <= 3 * (len / (buf_len - LOGFMT_MAX_ALIGN) + 2));

    /* The same prefix as the reference. */
    uint64_t ref_n;
    REQUIRE(ref_prefix(file, len, align, &ref_n) == (len <= LOGFMT_FILE_HDR ? LOGFMT_FILE_HDR : s.end));
    REQUIRE(ref_n == s.nrec);
out:
    free(buf);
    free(file);
    return 0;
}
