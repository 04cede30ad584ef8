/*
 * Reading a cattree log back, and waiting on its last appends (see
 * logfile.h).
 */
#include "logfile.h"

#include <demi/libos.h>
#include <demi/sga.h>
#include <demi/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int log_open_wait(int *qd, const char *path, bool repair)
{
    int e = 0;
    for (int i = 0; i < 100; i++) {
        e = demi_open(qd, path, O_RDWR | O_CREAT | (repair ? DEMI_O_REPAIR : 0), 0644);
        if (e != EBUSY)
            break;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return e;
}

char *log_sibling(const char *path, const char *suffix)
{
    size_t n = strlen(path), m = strlen(suffix);
    char *t = malloc(n + m + 1);
    if (t) {
        memcpy(t, path, n);
        memcpy(t + n, suffix, m + 1);
    }
    return t;
}

int log_sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir)
        return ENOMEM;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0)
        return errno;
    int e = fsync(fd) ? errno : 0;
    close(fd);
    return e;
}

/* The record in SGA as one buffer: its only segment, or the segments
 * copied into *JOINED (grown as needed). NULL when out of memory. */
static const uint8_t *record_bytes(const demi_sgarray_t *sga, uint8_t **joined, size_t *joined_cap, size_t *len)
{
    if (sga->sga_numsegs == 1) {
        *len = sga->sga_segs[0].sgaseg_len;
        return sga->sga_segs[0].sgaseg_buf;
    }
    size_t n = 0;
    for (uint32_t i = 0; i < sga->sga_numsegs; i++)
        n += sga->sga_segs[i].sgaseg_len;
    if (n > *joined_cap) {
        uint8_t *j = realloc(*joined, n);
        if (!j)
            return NULL;
        *joined = j;
        *joined_cap = n;
    }
    size_t o = 0;
    for (uint32_t i = 0; i < sga->sga_numsegs; i++) {
        memcpy(*joined + o, sga->sga_segs[i].sgaseg_buf, sga->sga_segs[i].sgaseg_len);
        o += sga->sga_segs[i].sgaseg_len;
    }
    *len = n;
    return *joined;
}

int logread_all(int qd, logread_fn *fn, void *arg, uint64_t *records, char *msg, size_t msglen)
{
    *records = 0;
    uint8_t *joined = NULL;
    size_t joined_cap = 0;
    int rc = 0;
    for (;;) {
        demi_qtoken_t qt;
        demi_qresult_t qr;
        int e = demi_pop(&qt, qd);
        if (!e)
            e = demi_wait(&qr, qt, NULL);
        if (!e && qr.qr_opcode != DEMI_OPC_POP)
            e = qr.qr_ret ? (int)qr.qr_ret : EIO;
        if (e) {
            snprintf(msg, msglen, "reading record %" PRIu64 ": %s", *records + 1, strerror(e));
            rc = e;
            break;
        }
        demi_sgarray_t *sga = &qr.qr_value.sga;
        if (sga->sga_numsegs == 0)
            break; /* the end of the log */
        (*records)++;
        size_t len = 0;
        const uint8_t *buf = record_bytes(sga, &joined, &joined_cap, &len);
        if (!buf) {
            demi_sgafree(sga);
            snprintf(msg, msglen, "record %" PRIu64 ": out of memory", *records);
            rc = ENOMEM;
            break;
        }
        rc = fn(arg, buf, len, *records, msg, msglen);
        demi_sgafree(sga);
        if (rc)
            break;
    }
    free(joined);
    return rc;
}

void log_deadline(struct timespec *end, int secs)
{
    clock_gettime(CLOCK_MONOTONIC, end);
    end->tv_sec += secs;
}

bool log_time_left(const struct timespec *end, struct timespec *left)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    left->tv_sec = end->tv_sec - now.tv_sec;
    left->tv_nsec = end->tv_nsec - now.tv_nsec;
    if (left->tv_nsec < 0) {
        left->tv_sec--;
        left->tv_nsec += 1000000000L;
    }
    return left->tv_sec >= 0;
}
