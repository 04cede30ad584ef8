/* One libdemi instance per thread: see threads.h. */
#define _GNU_SOURCE
#include "threads.h"

#include <demi/libos.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_barrier_t bound;

void app_threads_parse_n(struct app_threads *t, const char *s)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || *s == '\0' || *s == '-' || v < 1 || v > APP_THREADS_MAX) {
        fprintf(stderr, "%s: --threads must be 1..%d, got %s\n", t->prog, APP_THREADS_MAX, s);
        exit(2);
    }
    t->n = (uint32_t)v;
}

void app_threads_parse_cpus(struct app_threads *t, const char *s)
{
    t->ncpus = 0;
    for (const char *p = s; *p;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (errno || end == p || v < 0 || v >= CPU_SETSIZE || t->ncpus == APP_CPUS_MAX || (*end && *end != ',')) {
            fprintf(stderr, "%s: --cpus: expected a list of CPU numbers like 0,1, got %s\n", t->prog, s);
            exit(2);
        }
        t->cpus[t->ncpus++] = (int)v;
        p = *end ? end + 1 : end;
    }
    if (!t->ncpus) {
        fprintf(stderr, "%s: --cpus: empty list\n", t->prog);
        exit(2);
    }
}

struct worker {
    const struct app_threads *t;
    struct demi_args *args;
    void (*fn)(void *ctx, uint32_t idx);
    void *ctx;
    uint32_t idx;
    pthread_t tid;
};

static void fail(const char *prog, const char *what, int err)
{
    fprintf(stderr, "%s: %s: %s\n", prog, what, strerror(err));
    exit(1);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    const struct app_threads *t = w->t;
    if (t->ncpus) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(t->cpus[w->idx % t->ncpus], &set);
        int e = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
        if (e)
            fail(t->prog, "--cpus", e);
    }
    int e = demi_init(w->args);
    if (e)
        fail(t->prog, "demi_init", e);
    w->fn(w->ctx, w->idx);
    return NULL;
}

void app_threads_run(const struct app_threads *t, struct demi_args *args, void (*fn)(void *ctx, uint32_t idx),
                     void *ctx)
{
    char n[16];
    snprintf(n, sizeof(n), "%u", t->n);
    const char *q = getenv("QUEUES");
    if (!q) {
        setenv("QUEUES", n, 1);
    } else if (strcmp(q, n) != 0 && t->n > 1) {
        fprintf(stderr, "%s: --threads %u but QUEUES=%s\n", t->prog, t->n, q);
        exit(2);
    }
    struct worker w[APP_THREADS_MAX];
    pthread_barrier_init(&bound, NULL, t->n);
    for (uint32_t i = 0; i < t->n; i++) {
        w[i] = (struct worker){t, args, fn, ctx, i, 0};
        int e = pthread_create(&w[i].tid, NULL, worker_main, &w[i]);
        if (e)
            fail(t->prog, "pthread_create", e);
    }
    for (uint32_t i = 0; i < t->n; i++)
        pthread_join(w[i].tid, NULL);
    pthread_barrier_destroy(&bound);
}

void app_threads_bound(const struct app_threads *t)
{
    if (t->n > 1)
        pthread_barrier_wait(&bound);
}
