/*
 * cattree's on-disk format (see format.h): encoding and checking only. It
 * must never trust a field before its checksum has been verified.
 */
#include "libos/cattree/format.h"

#include "libos/cattree/crc32c.h"

#include <errno.h>
#include <string.h>

static const char file_magic[8] = {'D', 'E', 'M', 'I', 'L', 'O', 'G', '\0'};
static const uint8_t rec_magic[4] = {'R', 'E', 'C', '1'};

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static bool valid_align(uint32_t a)
{
    return a >= LOGFMT_MIN_ALIGN && a <= LOGFMT_MAX_ALIGN && (a & (a - 1)) == 0;
}

void logfmt_file_hdr_encode(uint8_t *buf, uint32_t align, uint64_t created_ns)
{
    memset(buf, 0, LOGFMT_FILE_HDR);
    memcpy(buf, file_magic, sizeof(file_magic));
    put32(buf + 8, LOGFMT_VERSION);
    put32(buf + 12, LOGFMT_FILE_HDR);
    put32(buf + 16, align);
    put32(buf + 20, 0);
    put64(buf + 24, created_ns);
    put32(buf + 32, crc32c(0, buf, 32));
}

int logfmt_file_hdr_decode(const uint8_t *buf, size_t len, uint32_t *align, const char **why)
{
    if (len < LOGFMT_FILE_HDR || memcmp(buf, file_magic, sizeof(file_magic)) != 0) {
        *why = "not a libdemi log (no DEMILOG header)";
        return EBADMSG;
    }
    if (get32(buf + 32) != crc32c(0, buf, 32)) {
        *why = "the log's header is corrupt (checksum mismatch)";
        return EBADMSG;
    }
    if (get32(buf + 8) != LOGFMT_VERSION) {
        *why = "the log has an unknown format version";
        return EBADMSG;
    }
    uint32_t a = get32(buf + 16);
    if (get32(buf + 12) != LOGFMT_FILE_HDR || !valid_align(a) || get32(buf + 20) != 0) {
        *why = "the log's header has impossible values";
        return EBADMSG;
    }
    *align = a;
    return 0;
}

void logfmt_rec_hdr_encode(uint8_t *p, const struct logfmt_rec *r)
{
    memcpy(p, rec_magic, sizeof(rec_magic));
    put32(p + 4, r->len);
    put64(p + 8, r->seq);
    put32(p + 16, r->data_crc);
    put16(p + 20, (uint16_t)r->data_off);
    put16(p + 22, 0);
    put32(p + 24, 0);
    put32(p + 28, crc32c(0, p, 28));
}

static int check_fields(const uint8_t *p, uint32_t align, const struct logfmt_rec *r, const char **why)
{
    if (r->len == 0 || r->len > LOGFMT_MAX_RECORD || r->data_off != logfmt_data_off(r->len, align) ||
        get16(p + 22) != 0 || get32(p + 24) != 0) {
        *why = "record header has impossible values";
        return EBADMSG;
    }
    return 0;
}

static int check_crc(const uint8_t *p, struct logfmt_rec *out, const char **why)
{
    if (memcmp(p, rec_magic, sizeof(rec_magic)) != 0) {
        *why = "no record header (torn or overwritten)";
        return EBADMSG;
    }
    if (get32(p + 28) != crc32c(0, p, 28)) {
        *why = "record header checksum mismatch";
        return EBADMSG;
    }
    out->len = get32(p + 4);
    out->seq = get64(p + 8);
    out->data_crc = get32(p + 16);
    out->data_off = get16(p + 20);
    return 0;
}

int logfmt_rec_hdr_decode(const uint8_t *p, uint64_t seq, uint32_t align, struct logfmt_rec *out, const char **why)
{
    int e = check_crc(p, out, why);
    if (e)
        return e;
    if (out->seq != seq) {
        *why = "record out of sequence (stale data from an earlier log)";
        return EBADMSG;
    }
    return check_fields(p, align, out, why);
}

int logfmt_rec_hdr_check(const uint8_t *p, uint32_t align, struct logfmt_rec *out, const char **why)
{
    int e = check_crc(p, out, why);
    return e ? e : check_fields(p, align, out, why);
}
