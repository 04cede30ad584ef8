/*
 * Glob matching (see glob.h). Every token but '*' consumes exactly one byte
 * of the string, so the classic single-backtrack algorithm is exact: on a
 * mismatch, retry from the last '*' with one more byte given to it.
 */
#include "glob.h"

#include <ctype.h>

static uint8_t fold(uint8_t c, bool nocase)
{
    return nocase ? (uint8_t)tolower(c) : c;
}

/*
 * Does byte @c match the token at pat[i]? Sets *next to the index after
 * the token. A class runs to its ']' or, unclosed, to the end of the
 * pattern; inside it '\' escapes, and "x-y" is a range whenever two more
 * pattern bytes follow x (so "[a-]" reads as a range up to ']', as in Redis).
 */
static bool match_token(const uint8_t *pat, size_t plen, size_t i, uint8_t c, bool nocase, size_t *next)
{
    uint8_t fc = fold(c, nocase);
    if (pat[i] == '?') {
        *next = i + 1;
        return true;
    }
    if (pat[i] == '\\' && i + 1 < plen) {
        *next = i + 2;
        return fold(pat[i + 1], nocase) == fc;
    }
    if (pat[i] != '[') {
        *next = i + 1;
        return fold(pat[i], nocase) == fc;
    }
    size_t j = i + 1;
    bool negate = j < plen && pat[j] == '^';
    if (negate)
        j++;
    bool hit = false;
    for (;;) {
        if (j >= plen) { /* unclosed: the class takes the rest of the pattern */
            *next = plen;
            break;
        }
        if (pat[j] == '\\' && plen - j >= 2) {
            hit |= fold(pat[j + 1], nocase) == fc;
            j += 2;
        } else if (pat[j] == ']') {
            *next = j + 1;
            break;
        } else if (plen - j >= 3 && pat[j + 1] == '-') {
            uint8_t lo = fold(pat[j], nocase), hi = fold(pat[j + 2], nocase);
            if (lo > hi) {
                uint8_t t = lo;
                lo = hi;
                hi = t;
            }
            hit |= fc >= lo && fc <= hi;
            j += 3;
        } else {
            hit |= fold(pat[j], nocase) == fc;
            j++;
        }
    }
    return negate ? !hit : hit;
}

bool glob_match(const uint8_t *pat, size_t plen, const uint8_t *s, size_t slen, bool nocase)
{
    if (slen == 0)
        return plen == 0;
    size_t pi = 0, si = 0;
    size_t star_p = 0, star_s = 0;
    bool have_star = false;
    while (si < slen) {
        if (pi < plen && pat[pi] == '*') {
            while (pi < plen && pat[pi] == '*')
                pi++;
            if (pi == plen)
                return true;
            have_star = true;
            star_p = pi;
            star_s = si;
            continue;
        }
        size_t next;
        if (pi < plen && match_token(pat, plen, pi, s[si], nocase, &next)) {
            pi = next;
            si++;
            continue;
        }
        if (!have_star)
            return false;
        pi = star_p;
        si = ++star_s;
    }
    while (pi < plen && pat[pi] == '*')
        pi++;
    return pi == plen;
}
