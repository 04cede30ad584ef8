/*
 * Internet checksum (RFC 1071) and SipHash-2-4 (for RFC 6528 initial
 * sequence numbers). The checksum is computed in the machine's word order
 * over little-endian loads and stored back the same way, which RFC 1071
 * §2(B) shows is byte-order independent. Sums of pieces that start at an
 * odd offset of a segment must be byte-swapped by the caller (see
 * csum_add_at in tcp/udp output).
 */
#include "inet/inet_int.h"

#if defined(__x86_64__)
#include <immintrin.h>

/* Long buffers (a full segment's payload, checked on receipt and summed
 * on sending where the device has no checksum offload) go 64 bytes a step
 * with AVX2 where the CPU has it: each 32-bit word widened into a 64-bit
 * lane, so no carry is lost (a lane gains under 2^33 a step); about 3x
 * the scalar loop here. Below CSUM_VEC_MIN the scalar loop is as fast. */
#define CSUM_VEC_MIN 256
static bool have_avx2;

__attribute__((constructor)) static void csum_probe(void)
{
    __builtin_cpu_init();
    have_avx2 = __builtin_cpu_supports("avx2");
}

/* Sums the 64-byte blocks of [*p, *p + *len) into the result, advancing
 * *p and *len past them. */
__attribute__((target("avx2"))) static uint64_t csum_blocks_avx2(const uint8_t **p, size_t *len)
{
    const uint8_t *q = *p;
    size_t n = *len;
    __m256i a0 = _mm256_setzero_si256(), a1 = a0;
    const __m256i z = a0;
    while (n >= 64) {
        __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)q);
        __m256i y = _mm256_loadu_si256((const __m256i *)(const void *)(q + 32));
        a0 = _mm256_add_epi64(a0, _mm256_unpacklo_epi32(x, z));
        a0 = _mm256_add_epi64(a0, _mm256_unpackhi_epi32(x, z));
        a1 = _mm256_add_epi64(a1, _mm256_unpacklo_epi32(y, z));
        a1 = _mm256_add_epi64(a1, _mm256_unpackhi_epi32(y, z));
        q += 64;
        n -= 64;
    }
    a0 = _mm256_add_epi64(a0, a1);
    uint64_t l[4];
    _mm256_storeu_si256((__m256i *)(void *)l, a0);
    *p = q;
    *len = n;
    /* Each lane folded to 33 bits first: the four then add without loss. */
    uint64_t acc = 0;
    for (int i = 0; i < 4; i++)
        acc += (l[i] & 0xffffffffu) + (l[i] >> 32);
    return acc;
}
#endif

uint32_t csum_add(uint32_t sum, const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t acc = sum;
#if defined(__x86_64__)
    if (len >= CSUM_VEC_MIN && have_avx2)
        acc += csum_blocks_avx2(&p, &len);
#endif
    /* 32-bit words into a 64-bit accumulator: no carry is lost for any
     * length below 16 GiB, and the loop is a load and an add per word. */
    while (len >= 16) {
        uint32_t w[4];
        memcpy(w, p, 16);
        acc += (uint64_t)w[0] + w[1] + w[2] + w[3];
        p += 16;
        len -= 16;
    }
    while (len >= 4) {
        uint32_t w;
        memcpy(&w, p, 4);
        acc += w;
        p += 4;
        len -= 4;
    }
    if (len >= 2) {
        uint16_t w;
        memcpy(&w, p, 2);
        acc += w;
        p += 2;
        len -= 2;
    }
    if (len)
        acc += *p; /* a trailing byte is the low byte of a little-endian word */
    acc = (acc & 0xffffffffu) + (acc >> 32);
    acc = (acc & 0xffffffffu) + (acc >> 32);
    return (uint32_t)acc;
}

uint16_t csum_fold(uint32_t sum)
{
    sum = (sum & 0xffffu) + (sum >> 16);
    sum = (sum & 0xffffu) + (sum >> 16);
    return (uint16_t)~sum;
}

uint32_t csum_pseudo(uint32_t src, uint32_t dst, uint8_t proto, uint16_t len)
{
    /* Bytes 0, proto and the big-endian length, as little-endian words. */
    uint64_t acc = (uint64_t)src + dst + ((uint32_t)proto << 8) + htons(len);
    acc = (acc & 0xffffffffu) + (acc >> 32);
    return (uint32_t)acc;
}

uint16_t csum_l4(uint32_t pseudo, uint32_t data)
{
    /* Two sums under 2^32 fold back under 2^32 in one step. */
    uint64_t acc = (uint64_t)pseudo + data;
    acc = (acc & 0xffffffffu) + (acc >> 32);
    return csum_fold((uint32_t)acc);
}

uint32_t csum_pkt(const struct pkt *p, uint32_t from)
{
    uint64_t acc = 0;
    bool odd = false; /* does the next piece start at an odd offset? */
    for (uint16_t i = 0; i < p->nseg; i++) {
        const uint8_t *d = p->seg[i].data;
        uint32_t len = p->seg[i].len;
        if (from >= len) {
            from -= len;
            continue;
        }
        d += from;
        len -= from;
        from = 0;
        uint32_t s = csum_add(0, d, len);
        if (odd) {
            /* A piece at an odd offset contributes its sum byte-swapped. */
            s = (s & 0xffffu) + (s >> 16);
            s = (s & 0xffffu) + (s >> 16);
            s = ((s & 0xffu) << 8) | ((s >> 8) & 0xffu);
        }
        acc += s;
        odd ^= len & 1;
    }
    acc = (acc & 0xffffffffu) + (acc >> 32);
    acc = (acc & 0xffffffffu) + (acc >> 32);
    return (uint32_t)acc;
}

static inline uint64_t rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

#define SIPROUND                                                                                                       \
    do {                                                                                                               \
        v0 += v1;                                                                                                      \
        v1 = rotl(v1, 13);                                                                                             \
        v1 ^= v0;                                                                                                      \
        v0 = rotl(v0, 32);                                                                                             \
        v2 += v3;                                                                                                      \
        v3 = rotl(v3, 16);                                                                                             \
        v3 ^= v2;                                                                                                      \
        v0 += v3;                                                                                                      \
        v3 = rotl(v3, 21);                                                                                             \
        v3 ^= v0;                                                                                                      \
        v2 += v1;                                                                                                      \
        v1 = rotl(v1, 17);                                                                                             \
        v1 ^= v2;                                                                                                      \
        v2 = rotl(v2, 32);                                                                                             \
    } while (0)

uint64_t siphash24(const uint64_t key[2], const void *data, size_t len)
{
    uint64_t v0 = 0x736f6d6570736575ull ^ key[0];
    uint64_t v1 = 0x646f72616e646f6dull ^ key[1];
    uint64_t v2 = 0x6c7967656e657261ull ^ key[0];
    uint64_t v3 = 0x7465646279746573ull ^ key[1];
    const uint8_t *p = data;
    size_t left = len;
    while (left >= 8) {
        uint64_t m;
        memcpy(&m, p, 8);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
        p += 8;
        left -= 8;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t i = 0; i < left; i++)
        b |= (uint64_t)p[i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}
