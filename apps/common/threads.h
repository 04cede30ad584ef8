/*
 * One libdemi instance per thread, for the applications' --threads N and
 * --cpus LIST (libdemi(7), MULTIPLE INSTANCES): QUEUES set to N unless the
 * environment already says N, thread i pinned to the i-th CPU of the list
 * (round robin) and given its own demi_init, all started together and
 * joined. Errors in the options end the program with status 2 and one line
 * naming the option; a failed demi_init or pthread call ends it with 1.
 */
#ifndef DEMI_APPS_THREADS_H
#define DEMI_APPS_THREADS_H

#include <stdint.h>

struct demi_args;

#define APP_THREADS_MAX 16
#define APP_CPUS_MAX    64

struct app_threads {
    const char *prog;         /* for messages: "demi-echo" */
    uint32_t n;               /* --threads, 1..APP_THREADS_MAX */
    int cpus[APP_CPUS_MAX];   /* --cpus */
    uint32_t ncpus;           /* 0: not pinned */
};

/* Parses --threads N into @t (exit 2 with a message when out of range). */
void app_threads_parse_n(struct app_threads *t, const char *s);
/* Parses --cpus LIST ("0,1,3") into @t (exit 2 with a message when bad). */
void app_threads_parse_cpus(struct app_threads *t, const char *s);

/* Runs fn(ctx, i) on t->n threads, i = 0..n-1, each pinned and on its own
 * instance (demi_init(args)); returns when all have returned. */
void app_threads_run(const struct app_threads *t, struct demi_args *args, void (*fn)(void *ctx, uint32_t idx),
                     void *ctx);

/* Called by every thread of app_threads_run once its sockets are bound:
 * returns when all are (so that "ready" means every instance listens). A
 * no-op with one thread. */
void app_threads_bound(const struct app_threads *t);

#endif
