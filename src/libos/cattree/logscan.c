/*
 * cattree's recovery scan (see logscan.h). It must never trust a length or
 * an offset read from the file before the header that holds it has passed
 * its checksum, never read outside the file, and never go back: every
 * position is looked at once, so a hostile file costs no more than reading
 * it.
 */
#include "libos/cattree/logscan.h"

#include "libos/cattree/crc32c.h"
#include "libos/cattree/format.h"

#include <errno.h>
#include <string.h>

#define SECTOR 512u /* the smallest unit a device writes whole */

/* Makes [off, off + n) of the file (n <= LOGFMT_REC_HDR) available at *@p.
 * Returns 0, ENODATA when the file ends first, or the read's error. */
static int win_get(struct logscan *s, uint64_t off, uint64_t n, const uint8_t **p)
{
    if (off > s->size || n > s->size - off)
        return ENODATA;
    if (!(off >= s->wbeg && off + n <= s->wbeg + s->wlen)) {
        /* Whole windows, even past the end (direct I/O wants aligned
         * lengths); what lies beyond the size seen at open is ignored. */
        uint64_t at = off & ~(uint64_t)(s->align - 1);
        size_t got = 0;
        int e = s->read(s->ctx, s->buf, s->buf_len, at, &got);
        s->wbeg = at;
        s->wlen = e ? 0 : got < s->size - at ? got : s->size - at;
        if (e)
            return e;
        if (off + n > s->wbeg + s->wlen)
            return ENODATA; /* the file shrank under us */
    }
    *p = s->buf + (off - s->wbeg);
    return 0;
}

/* Walks [off, off + len) of the file through the window, calling @fn on
 * each piece. */
static int walk(struct logscan *s, uint64_t off, uint64_t len, void (*fn)(void *arg, const uint8_t *p, size_t n),
                void *arg)
{
    while (len) {
        const uint8_t *p;
        int e = win_get(s, off, 1, &p);
        if (e)
            return e;
        uint64_t k = s->wbeg + s->wlen - off;
        if (k > len)
            k = len;
        fn(arg, p, (size_t)k);
        off += k;
        len -= k;
    }
    return 0;
}

static void crc_piece(void *arg, const uint8_t *p, size_t n)
{
    uint32_t *crc = arg;
    *crc = crc32c(*crc, p, n);
}

/* Checks the payload of the record whose valid header @r is at @off. */
static int payload_ok(struct logscan *s, uint64_t off, const struct logfmt_rec *r, bool *ok)
{
    uint32_t crc = 0;
    int e = walk(s, off + r->data_off, r->len, crc_piece, &crc);
    if (e)
        return e;
    *ok = crc == r->data_crc;
    return 0;
}

/* Does a payload whose checksum failed hold a sector of zeros, as a write
 * that never landed leaves it (the rest of a torn record), rather than
 * changed bytes (a flipped bit, an overwrite)? */
static int payload_torn(struct logscan *s, uint64_t off, const struct logfmt_rec *r, bool *torn)
{
    uint64_t p = off + r->data_off, end = p + r->len;
    *torn = false;
    while (p < end && !*torn) {
        uint64_t sec_end = (p & ~(uint64_t)(SECTOR - 1)) + SECTOR;
        uint64_t n = (sec_end < end ? sec_end : end) - p;
        const uint8_t *q;
        /* n <= SECTOR, and a window holds a whole aligned sector. */
        int e = win_get(s, p, 1, &q);
        if (e)
            return e;
        if (s->wbeg + s->wlen - p < n)
            n = s->wbeg + s->wlen - p;
        /* A sector fully inside the payload, or the payload's last bytes. */
        if (logfmt_all_zero(q, (size_t)n) && (n == SECTOR || p + n == end))
            *torn = true;
        p += n;
    }
    return 0;
}

/* The longest valid prefix. */
static int scan_prefix(struct logscan *s, struct logfmt_rec *bad, bool *bad_hdr_ok)
{
    uint64_t off = LOGFMT_FILE_HDR, seq = 0;
    int e = 0;
    *bad_hdr_ok = false;
    while (off < s->size) {
        const uint8_t *p;
        if ((e = win_get(s, off, LOGFMT_REC_HDR, &p))) {
            if (e != ENODATA)
                return e;
            s->why = "truncated record header";
            s->torn = true;
            break;
        }
        if (logfmt_all_zero(p, LOGFMT_REC_HDR)) {
            s->why = "no record header (zeros: preallocated, or never written)";
            s->unused = s->torn = true;
            break;
        }
        struct logfmt_rec r;
        if (logfmt_rec_hdr_decode(p, seq, s->align, &r, &s->why))
            break;
        *bad = r;
        *bad_hdr_ok = true;
        uint64_t rs = logfmt_rec_size(r.len, s->align);
        if (rs > s->size - off) {
            s->why = "record runs past the end of the file (torn append)";
            s->torn = true;
            break;
        }
        bool ok;
        if ((e = payload_ok(s, off, &r, &ok)))
            return e;
        if (!ok) {
            s->why = "payload checksum mismatch";
            if ((e = payload_torn(s, off, &r, &s->torn)))
                return e;
            break;
        }
        *bad_hdr_ok = false;
        if (s->on_record && (e = s->on_record(s->ctx, r.len)))
            return e;
        off += rs;
        seq++;
    }
    s->end = off;
    s->nrec = seq;
    return 0;
}

/* Everything after the damage, every alignment unit: valid records there
 * are what cutting the log at s->end would lose. A record found whole is
 * stepped over (a payload may hold bytes that look like a header); so is
 * one whose header is valid and payload is not, since its length passed a
 * checksum. */
static int scan_rest(struct logscan *s, const struct logfmt_rec *bad, bool bad_hdr_ok)
{
    uint64_t pos = s->end + s->align;
    if (bad_hdr_ok) {
        uint64_t rs = logfmt_rec_size(bad->len, s->align);
        pos = rs > s->size - s->end ? s->size : s->end + rs;
    }
    while (pos < s->size && s->size - pos >= LOGFMT_REC_HDR) {
        const uint8_t *p;
        int e = win_get(s, pos, LOGFMT_REC_HDR, &p);
        if (e)
            return e == ENODATA ? 0 : e;
        struct logfmt_rec r;
        const char *why;
        uint64_t rs = 0;
        /* Records s->nrec .. r.seq - 1 lie between the damage and here,
         * each at least one alignment unit long. */
        if (logfmt_rec_hdr_check(p, s->align, &r, &why) == 0 && r.seq >= s->nrec &&
            r.seq - s->nrec <= (pos - s->end) / s->align && (rs = logfmt_rec_size(r.len, s->align)) <= s->size - pos) {
            bool ok;
            if ((e = payload_ok(s, pos, &r, &ok)))
                return e;
            if (ok) {
                if (!s->later++) {
                    s->first_off = pos;
                    s->first_seq = r.seq;
                }
                if (r.seq > s->last_seq)
                    s->last_seq = r.seq;
                if (pos - s->end >= s->far)
                    s->later_far++;
            }
            pos += rs;
            continue;
        }
        pos += s->align;
    }
    return 0;
}

int logscan_run(struct logscan *s)
{
    s->nrec = s->later = s->later_far = s->first_off = s->first_seq = s->last_seq = 0;
    s->end = LOGFMT_FILE_HDR;
    s->why = NULL;
    s->unused = s->torn = false;
    s->wbeg = s->wlen = 0;
    if (s->size <= LOGFMT_FILE_HDR)
        return 0;
    struct logfmt_rec bad;
    bool bad_hdr_ok;
    int e = scan_prefix(s, &bad, &bad_hdr_ok);
    if (e || s->end >= s->size)
        return e;
    return scan_rest(s, &bad, bad_hdr_ok);
}
