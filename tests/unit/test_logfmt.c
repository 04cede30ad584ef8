/*
 * cattree internals: CRC32C against published check values (hardware and
 * software paths agree on every length and alignment), and the on-disk
 * format's encode/decode, including every way a header can be wrong.
 */
#include "libos/cattree/crc32c.h"
#include "libos/cattree/format.h"
#include "tcheck.h"

#include <errno.h>

int main(void)
{
    /* RFC 3720 B.4 and the usual "123456789" check value. */
    CHECK_EQ(crc32c(0, "123456789", 9), 0xE3069283u);
    uint8_t z[32] = {0}, o[32], inc[32], dec[32];
    memset(o, 0xff, sizeof(o));
    for (int i = 0; i < 32; i++) {
        inc[i] = (uint8_t)i;
        dec[i] = (uint8_t)(31 - i);
    }
    CHECK_EQ(crc32c(0, z, 32), 0x8A9136AAu);
    CHECK_EQ(crc32c(0, o, 32), 0x62A8AB43u);
    CHECK_EQ(crc32c(0, inc, 32), 0x46DD794Eu);
    CHECK_EQ(crc32c(0, dec, 32), 0x113FDB5Cu);
    CHECK_EQ(crc32c(0, "", 0), 0);
    printf("crc32c uses %s\n", crc32c_hw() ? "SSE4.2" : "tables");

    /* Hardware and software agree; chaining equals one pass. */
    static uint8_t buf[70000];
    uint64_t seed = 1;
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)trand(&seed);
    for (size_t off = 0; off < 9; off++) {
        for (size_t len = 0; len < 300; len++)
            CHECK_EQ(crc32c(0, buf + off, len), crc32c_sw(0, buf + off, len));
        CHECK_EQ(crc32c(0, buf + off, 65537), crc32c_sw(0, buf + off, 65537));
    }
    for (size_t cut = 0; cut < 100; cut += 7) {
        uint32_t c = crc32c(crc32c(0, buf, cut), buf + cut, 1000 - cut);
        CHECK_EQ(c, crc32c(0, buf, 1000));
    }

    /* Sizes and packing. */
    CHECK(logfmt_packed(1, 512));
    CHECK(logfmt_packed(480, 512));
    CHECK(!logfmt_packed(481, 512));
    CHECK_EQ(logfmt_rec_size(1, 512), 512);
    CHECK_EQ(logfmt_rec_size(480, 512), 512);
    CHECK_EQ(logfmt_rec_size(481, 512), 1024);
    CHECK_EQ(logfmt_rec_size(512, 512), 1024);
    CHECK_EQ(logfmt_rec_size(513, 512), 1536);
    CHECK_EQ(logfmt_rec_size(4096, 4096), 8192);
    CHECK_EQ(logfmt_rec_size(4064, 4096), 4096);

    /* File header. */
    static uint8_t fh[LOGFMT_FILE_HDR];
    uint32_t align = 0;
    const char *why = NULL;
    logfmt_file_hdr_encode(fh, 512, 123);
    CHECK_EQ(logfmt_file_hdr_decode(fh, sizeof(fh), &align, &why), 0);
    CHECK_EQ(align, 512);
    CHECK_EQ(logfmt_file_hdr_decode(fh, 100, &align, &why), EBADMSG);
    for (int i = 0; i < 36; i++) {
        fh[i] ^= 0x10;
        CHECK_EQ(logfmt_file_hdr_decode(fh, sizeof(fh), &align, &why), EBADMSG);
        CHECK(why != NULL);
        fh[i] ^= 0x10;
    }
    logfmt_file_hdr_encode(fh, 1000, 0); /* not a power of two */
    CHECK_EQ(logfmt_file_hdr_decode(fh, sizeof(fh), &align, &why), EBADMSG);

    /* Record header: round trip, then every corrupted byte is caught. */
    uint8_t rh[LOGFMT_REC_HDR];
    struct logfmt_rec r = {.seq = 42, .len = 1000, .data_crc = 0xdeadbeef, .data_off = 512}, back;
    logfmt_rec_hdr_encode(rh, &r);
    CHECK_EQ(logfmt_rec_hdr_decode(rh, 42, 512, &back, &why), 0);
    CHECK_EQ(back.seq, 42);
    CHECK_EQ(back.len, 1000);
    CHECK_EQ(back.data_crc, 0xdeadbeef);
    CHECK_EQ(back.data_off, 512);
    CHECK_EQ(logfmt_rec_hdr_decode(rh, 41, 512, &back, &why), EBADMSG);  /* out of sequence */
    CHECK_EQ(logfmt_rec_hdr_decode(rh, 42, 4096, &back, &why), EBADMSG); /* data_off for another alignment */
    for (int i = 0; i < (int)LOGFMT_REC_HDR; i++) {
        for (int bit = 0; bit < 8; bit++) {
            rh[i] ^= (uint8_t)(1 << bit);
            CHECK_EQ(logfmt_rec_hdr_decode(rh, 42, 512, &back, &why), EBADMSG);
            rh[i] ^= (uint8_t)(1 << bit);
        }
    }
    memset(rh, 0, sizeof(rh)); /* a hole in the file */
    CHECK_EQ(logfmt_rec_hdr_decode(rh, 0, 512, &back, &why), EBADMSG);
    r.len = 0;
    logfmt_rec_hdr_encode(rh, &r);
    CHECK_EQ(logfmt_rec_hdr_decode(rh, 42, 512, &back, &why), EBADMSG);
    r.len = LOGFMT_MAX_RECORD + 1;
    logfmt_rec_hdr_encode(rh, &r);
    CHECK_EQ(logfmt_rec_hdr_decode(rh, 42, 512, &back, &why), EBADMSG);
    printf("logfmt: ok\n");
    return 0;
}
