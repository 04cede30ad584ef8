/*
 * Storage benchmark: cattree appends against write(2) + fdatasync(2) on the
 * same file system, in the same run. Reports, as one JSON object:
 *   - append latency (push until durable) for 64 B and 4 KiB records,
 *     p50/p99/p99.9, one append at a time, against write + fdatasync of the
 *     same size to an O_APPEND file; the two alternate in blocks of 100 so
 *     both see the same device conditions;
 *   - append throughput of 4 KiB records with 1, 16 and 256 pushes in
 *     flight (group commit: one fdatasync covers every record that has
 *     landed), against write + fdatasync one record at a time.
 * It measures and never judges. Uses the public API; CLOCK_MONOTONIC.
 *
 *   storage_bench [--dir DIR] [--iters N] [--seconds S]
 */
#include "hist.h"

#include <demi/libos.h>
#include <demi/sga.h>
#include <demi/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

static void die(const char *what, int err)
{
    fprintf(stderr, "storage_bench: %s: %s\n", what, strerror(err));
    exit(1);
}

static int open_log(const char *path)
{
    int qd, e = demi_open(&qd, path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (e)
        die(path, e);
    return qd;
}

static demi_qtoken_t push(int qd, uint32_t size, uint64_t i)
{
    demi_sgarray_t sga = demi_sgaalloc(size);
    if (sga.sga_numsegs != 1)
        die("sgaalloc", errno);
    memset(sga.sga_segs[0].sgaseg_buf, (int)(i & 0xff), size);
    demi_qtoken_t qt;
    int e = demi_push(&qt, qd, &sga);
    if (e)
        die("push", e);
    demi_sgafree(&sga);
    return qt;
}

static void wait_push(demi_qtoken_t qt)
{
    demi_qresult_t qr;
    int e = demi_wait(&qr, qt, NULL);
    if (e)
        die("wait", e);
    if (qr.qr_opcode != DEMI_OPC_PUSH)
        die("append", (int)qr.qr_ret);
}

static void print_hist(const char *name, const struct hist *h)
{
    printf("\"%s\":{\"n\":%llu,\"p50_us\":%.2f,\"p99_us\":%.2f,\"p999_us\":%.2f,\"mean_us\":%.2f}", name,
           (unsigned long long)h->n, hist_quantile(h, 0.5) / 1e3, hist_quantile(h, 0.99) / 1e3,
           hist_quantile(h, 0.999) / 1e3, hist_mean(h) / 1e3);
}

/* Latency of one append at a time: cattree and write+fdatasync alternate
 * in blocks. */
static void latency(const char *dir, uint32_t size, uint64_t iters, struct hist *tree, struct hist *lin)
{
    char lp[1024], fp[1024];
    snprintf(lp, sizeof(lp), "%s/bench-%u.log", dir, size);
    snprintf(fp, sizeof(fp), "%s/bench-%u.dat", dir, size);
    int qd = open_log(lp);
    int fd = open(fp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        die(fp, errno);
    char *buf = malloc(size);
    if (!buf)
        die("malloc", ENOMEM);
    memset(buf, 'x', size);
    hist_init(tree);
    hist_init(lin);
    const uint64_t block = 100, warm = 100;
    for (uint64_t i = 0; i < iters + warm; i += block) {
        for (uint64_t k = 0; k < block; k++) {
            uint64_t t0 = hist_now_ns();
            wait_push(push(qd, size, i + k));
            if (i >= warm)
                hist_add(tree, hist_now_ns() - t0);
        }
        for (uint64_t k = 0; k < block; k++) {
            uint64_t t0 = hist_now_ns();
            if (write(fd, buf, size) != (ssize_t)size)
                die("write", errno);
            if (fdatasync(fd) < 0)
                die("fdatasync", errno);
            if (i >= warm)
                hist_add(lin, hist_now_ns() - t0);
        }
    }
    free(buf);
    close(fd);
    demi_close(qd);
    unlink(lp);
    unlink(fp);
}

/* Records per second with @depth appends in flight for @secs seconds. */
static double tree_rate(const char *dir, uint32_t size, unsigned depth, double secs)
{
    char lp[1024];
    snprintf(lp, sizeof(lp), "%s/bench-tput.log", dir);
    int qd = open_log(lp);
    demi_qtoken_t *ring = calloc(depth, sizeof(*ring));
    if (!ring)
        die("calloc", ENOMEM);
    uint64_t i = 0, done = 0;
    uint64_t t0 = hist_now_ns(), end = t0 + (uint64_t)(secs * 1e9);
    for (; i < depth; i++)
        ring[i % depth] = push(qd, size, i);
    while (hist_now_ns() < end) {
        wait_push(ring[done % depth]); /* pushes complete in order */
        done++;
        ring[i % depth] = push(qd, size, i);
        i++;
    }
    uint64_t t1 = hist_now_ns();
    for (; done < i; done++)
        wait_push(ring[done % depth]);
    free(ring);
    demi_close(qd);
    unlink(lp);
    return (double)(i - depth) / ((double)(t1 - t0) / 1e9);
}

static double linux_rate(const char *dir, uint32_t size, double secs)
{
    char fp[1024];
    snprintf(fp, sizeof(fp), "%s/bench-tput.dat", dir);
    int fd = open(fp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        die(fp, errno);
    char *buf = calloc(1, size);
    uint64_t n = 0, t0 = hist_now_ns(), end = t0 + (uint64_t)(secs * 1e9), t1;
    while ((t1 = hist_now_ns()) < end) {
        if (write(fd, buf, size) != (ssize_t)size || fdatasync(fd) < 0)
            die("write+fdatasync", errno);
        n++;
    }
    free(buf);
    close(fd);
    unlink(fp);
    return (double)n / ((double)(t1 - t0) / 1e9);
}

int main(int argc, char **argv)
{
    const char *dir = "/tmp";
    uint64_t iters = 2000;
    double secs = 3;
    static const struct option lo[] = {{"dir", required_argument, 0, 'd'},
                                       {"iters", required_argument, 0, 'i'},
                                       {"seconds", required_argument, 0, 's'},
                                       {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (c == 'd')
            dir = optarg;
        else if (c == 'i')
            iters = strtoull(optarg, NULL, 10);
        else if (c == 's')
            secs = strtod(optarg, NULL);
        else {
            fprintf(stderr, "usage: storage_bench [--dir DIR] [--iters N] [--seconds S]\n");
            return 2;
        }
    }
    if (!iters || secs <= 0) {
        fprintf(stderr, "storage_bench: --iters and --seconds must be positive\n");
        return 2;
    }
    int e = demi_init(NULL);
    if (e)
        die("demi_init", e);

    static struct hist t64, l64, t4k, l4k;
    latency(dir, 64, iters, &t64, &l64);
    latency(dir, 4096, iters, &t4k, &l4k);
    double lin = linux_rate(dir, 4096, secs);
    static const unsigned depths[] = {1, 16, 256};
    double rate[3];
    for (int k = 0; k < 3; k++)
        rate[k] = tree_rate(dir, 4096, depths[k], secs);

    struct utsname u;
    uname(&u);
    printf("{\"dir\":\"%s\",\"kernel\":\"%s\",\"nproc\":%ld,\"iters\":%llu,\"seconds\":%.1f,", dir, u.release,
           sysconf(_SC_NPROCESSORS_ONLN), (unsigned long long)iters, secs);
    printf("\"latency\":{\"64\":{");
    print_hist("cattree", &t64);
    printf(",");
    print_hist("linux_write_fdatasync", &l64);
    printf("},\"4096\":{");
    print_hist("cattree", &t4k);
    printf(",");
    print_hist("linux_write_fdatasync", &l4k);
    printf("}},\"ratios\":{\"p50_64\":%.3f,\"p99_64\":%.3f,\"p50_4096\":%.3f,\"p99_4096\":%.3f},",
           (double)hist_quantile(&t64, 0.5) / (double)hist_quantile(&l64, 0.5),
           (double)hist_quantile(&t64, 0.99) / (double)hist_quantile(&l64, 0.99),
           (double)hist_quantile(&t4k, 0.5) / (double)hist_quantile(&l4k, 0.5),
           (double)hist_quantile(&t4k, 0.99) / (double)hist_quantile(&l4k, 0.99));
    printf("\"throughput_4096\":{\"linux_write_fdatasync_rps\":%.0f", lin);
    for (int k = 0; k < 3; k++)
        printf(",\"cattree_inflight_%u_rps\":%.0f,\"cattree_inflight_%u_vs_linux\":%.2f", depths[k], rate[k], depths[k],
               rate[k] / lin);
    printf("}}\n");
    return 0;
}
