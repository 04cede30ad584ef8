/*
 * Glob-style pattern matching for demi-kv's KEYS and CONFIG GET, with the
 * semantics of Redis's stringmatchlen(): '*' any run, '?' any one byte,
 * [abc], [^abc] and [a-z] classes, and '\' escaping the next byte. Both
 * pattern and string are byte ranges (no NUL terminator is read), and the
 * match runs in O(pattern x string) time at worst: no recursion, so no
 * pattern can exhaust the stack or take exponential time.
 */
#ifndef DEMI_KV_GLOB_H
#define DEMI_KV_GLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when [s, s + slen) matches [pat, pat + plen). As in Redis, an empty
 * string matches only the empty pattern (KEYS treats a lone "*" itself). */
bool glob_match(const uint8_t *pat, size_t plen, const uint8_t *s, size_t slen, bool nocase);

#endif
