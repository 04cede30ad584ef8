/*
 * Helpers for the storage (cattree) tests: temporary directories that are
 * always removed, waits that fail the test instead of hanging, and a
 * deterministic record generator shared by writers and checkers. Public
 * API only. Header-only: each test is one program.
 */
#ifndef DEMI_TESTS_STORAGE_UTIL_H
#define DEMI_TESTS_STORAGE_UTIL_H

#include "tcheck.h"

#include <demi/libos.h>
#include <demi/sga.h>
#include <demi/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MUST(call)                                                                                                     \
    do {                                                                                                               \
        int e_ = (call);                                                                                               \
        if (e_) {                                                                                                      \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, strerror(e_));                               \
            exit(1);                                                                                                   \
        }                                                                                                              \
    } while (0)

/* demi_open(@path, @flags) with the library's stderr captured into @msg
 * (and copied to the test's own log); returns demi_open's result, the qd
 * in *@qd. */
static inline int su_open_captured(const char *path, int flags, int *qd, char *msg, size_t msglen)
{
    char tmpl[] = "/tmp/demi-open-stderr.XXXXXX";
    int cap = mkstemp(tmpl);
    CHECK(cap >= 0);
    unlink(tmpl);
    fflush(stderr);
    int saved = dup(2);
    CHECK(dup2(cap, 2) == 2);
    int e = demi_open(qd, path, flags, 0);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ssize_t k = pread(cap, msg, msglen - 1, 0);
    msg[k > 0 ? k : 0] = '\0';
    close(cap);
    fprintf(stderr, "[open %s 0x%x -> %s]\n%s", path, (unsigned)flags, strerror(e), msg);
    return e;
}

static inline void su_init(void)
{
    int e = demi_init(NULL);
    if (e) {
        fprintf(stderr, "demi_init: %s\n", strerror(e));
        exit(1);
    }
}

/* mkdtemp under $TMPDIR (default /tmp): a real file system with O_DIRECT. */
static inline void su_tmpdir(char *out, size_t len, const char *tag)
{
    const char *base = getenv("TMPDIR");
    snprintf(out, len, "%s/demi-%s.XXXXXX", base && *base ? base : "/tmp", tag);
    CHECK(mkdtemp(out) != NULL);
}

static inline int su_rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(p);
    return 0;
}

static inline void su_rm_rf(const char *dir)
{
    nftw(dir, su_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Waits for @qt (at most @secs seconds; fails the test on timeout). */
static inline demi_qresult_t su_wait(demi_qtoken_t qt, int secs)
{
    demi_qresult_t qr;
    struct timespec ts = {secs, 0};
    int e = demi_wait(&qr, qt, &ts);
    if (e) {
        fprintf(stderr, "demi_wait: %s\n", strerror(e));
        exit(1);
    }
    return qr;
}

/* Record @i of a deterministic stream: its length and its bytes. */
static inline uint8_t su_byte(uint64_t rec, uint64_t i)
{
    uint64_t z = rec * 0x9e3779b97f4a7c15ull + i * 0xbf58476d1ce4e5b9ull;
    return (uint8_t)(z >> 56 ^ z >> 29 ^ i);
}

static inline void su_fill(uint8_t *p, uint64_t rec, uint64_t off, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = su_byte(rec, off + i);
}

/* Checks that popped array @sga holds exactly record @rec of @len bytes. */
static inline bool su_check(const demi_sgarray_t *sga, uint64_t rec, uint32_t len)
{
    uint64_t off = 0;
    for (uint32_t s = 0; s < sga->sga_numsegs; s++) {
        const uint8_t *p = sga->sga_segs[s].sgaseg_buf;
        for (uint32_t i = 0; i < sga->sga_segs[s].sgaseg_len; i++)
            if (off + i >= len || p[i] != su_byte(rec, off + i))
                return false;
        off += sga->sga_segs[s].sgaseg_len;
    }
    return off == len;
}

/* Pushes record @rec (@len bytes in @nseg segments, each its own heap
 * allocation, so every segment is aligned) and returns the token. The
 * arrays are freed at once: the push holds its own references. */
static inline demi_qtoken_t su_push_record(int qd, uint64_t rec, uint32_t len, uint32_t nseg)
{
    if (nseg < 1)
        nseg = 1;
    if (nseg > len)
        nseg = len;
    if (nseg > DEMI_SGARRAY_MAXSIZE)
        nseg = DEMI_SGARRAY_MAXSIZE;
    demi_sgarray_t parts[DEMI_SGARRAY_MAXSIZE];
    demi_sgarray_t sga;
    memset(&sga, 0, sizeof(sga));
    uint64_t off = 0;
    for (uint32_t s = 0; s < nseg; s++) {
        uint32_t n = s + 1 == nseg ? (uint32_t)(len - off) : len / nseg;
        parts[s] = demi_sgaalloc(n);
        CHECK(parts[s].sga_numsegs == 1);
        su_fill(parts[s].sga_segs[0].sgaseg_buf, rec, off, n);
        sga.sga_segs[s] = parts[s].sga_segs[0];
        off += n;
    }
    sga.sga_buf = parts[0].sga_buf;
    sga.sga_numsegs = nseg;
    demi_qtoken_t qt;
    MUST(demi_push(&qt, qd, &sga));
    for (uint32_t s = 0; s < nseg; s++)
        MUST(demi_sgafree(&parts[s]));
    return qt;
}

#endif
