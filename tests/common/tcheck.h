/*
 * Minimal test assertions: a failed check prints file, line and values and
 * exits 1; SKIP exits 77 with a reason. Tests are standalone programs.
 */
#ifndef DEMI_TESTS_TCHECK_H
#define DEMI_TESTS_TCHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                                                                       \
    do {                                                                                                               \
        if (!(c)) {                                                                                                    \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);                                      \
            exit(1);                                                                                                   \
        }                                                                                                              \
    } while (0)

#define CHECK_EQ(a, b)                                                                                                 \
    do {                                                                                                               \
        long long a_ = (long long)(a), b_ = (long long)(b);                                                            \
        if (a_ != b_) {                                                                                                \
            fprintf(stderr, "%s:%d: check failed: %s == %s (%lld != %lld)\n", __FILE__, __LINE__, #a, #b, a_, b_);     \
            exit(1);                                                                                                   \
        }                                                                                                              \
    } while (0)

#define SKIP(...)                                                                                                      \
    do {                                                                                                               \
        fprintf(stderr, "SKIP: " __VA_ARGS__);                                                                         \
        fprintf(stderr, "\n");                                                                                         \
        exit(77);                                                                                                      \
    } while (0)

/* Deterministic PRNG (splitmix64) so every run sees the same sequence. */
static inline uint64_t trand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

#endif
