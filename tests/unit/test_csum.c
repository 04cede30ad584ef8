/*
 * The Internet checksum (csum_add, csum_fold) against a plain RFC 1071
 * reference that adds big-endian 16-bit words one at a time: every length
 * from 0 to 2100 bytes at every alignment within 32 bytes (both sides of
 * the vector path's threshold, every tail), and long buffers up to 64 KiB
 * of random bytes, all-ones bytes (the most carries) and zeros, with
 * random starting sums. Where the CPU has AVX2, the long buffers take the
 * vector path; elsewhere the test checks the scalar loop alone.
 */
#include "inet/inet_int.h"
#include "tcheck.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* RFC 1071 over big-endian words, carries folded as they come. */
static uint16_t reference(uint16_t start, const uint8_t *p, size_t len)
{
    uint32_t s = start;
    for (size_t i = 0; i + 1 < len; i += 2)
        s += (uint32_t)p[i] << 8 | p[i + 1];
    if (len & 1)
        s += (uint32_t)p[len - 1] << 8;
    while (s >> 16)
        s = (s & 0xffffu) + (s >> 16);
    return (uint16_t)s;
}

/* csum_add's sum is in the machine's (little-endian) word order: fold it
 * without the final complement and swap it to compare. */
static uint16_t ours(uint16_t start_be, const uint8_t *p, size_t len)
{
    uint16_t start_le = (uint16_t)(start_be >> 8 | start_be << 8);
    uint16_t folded = (uint16_t)~csum_fold(csum_add(start_le, p, len));
    return (uint16_t)(folded >> 8 | folded << 8);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

static void check(const uint8_t *p, size_t len, const char *what)
{
    uint16_t start = (uint16_t)next();
    uint16_t want = reference(start, p, len), got = ours(start, p, len);
    /* 0x0000 and 0xffff are the same number in ones' complement. */
    if (want != got && !((want == 0 || want == 0xffff) && (got == 0 || got == 0xffff))) {
        fprintf(stderr, "%s, %zu bytes at offset %u: sum %#06x, want %#06x\n", what, len, (unsigned)((uintptr_t)p & 31),
                got, want);
        exit(1);
    }
}

int main(void)
{
    enum { BIG = 65536 + 64 };
    uint8_t *buf = malloc(BIG);
    CHECK(buf);
    for (size_t i = 0; i < BIG; i++)
        buf[i] = (uint8_t)next();
    unsigned n = 0;
    for (size_t len = 0; len <= 2100; len++)
        for (size_t off = 0; off < 32; off++, n++)
            check(buf + off, len, "random bytes");
    for (int k = 0; k < 200; k++, n++) {
        size_t len = 2100 + next() % (65536 - 2100 + 1), off = next() % 64;
        check(buf + off, len, "random bytes, long");
    }
    memset(buf, 0xff, BIG);
    for (size_t len = 0; len <= 65536; len += len < 600 ? 1 : 4093, n++)
        check(buf + (len & 31), len, "all ones");
    check(buf, 65536, "all ones");
    memset(buf, 0, BIG);
    check(buf + 3, 65536, "zeros");
    printf("csum: %u sums agree with RFC 1071's reference%s\n", n + 2,
#if defined(__x86_64__)
           __builtin_cpu_supports("avx2") ? " (the AVX2 path for 256 bytes and more)" : " (no AVX2: scalar only)"
#else
           ""
#endif
    );
    free(buf);
    return 0;
}
