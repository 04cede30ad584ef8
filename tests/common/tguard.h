/*
 * For a test program that starts processes: a cleanup (kill and reap what
 * it started, remove what it made) run on every way out of the parent
 * (exit, a fatal signal, the guard alarm against hangs), and progress
 * lines stamped with the seconds since the start. A forked child inherits
 * the handlers but never runs the cleanup.
 *   tguard_install(cleanup, "test_x: killed ...; children killed\n", secs);
 * The cleanup runs in a signal handler too: it must be async-signal-safe
 * (kill, waitpid, unlink, rmdir...).
 */
#ifndef DEMI_TEST_TGUARD_H
#define DEMI_TEST_TGUARD_H

#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pid_t tguard_parent;   /* the test's own process */
static uint64_t tguard_start; /* tguard_now_ns() at tguard_install */
static void (*tguard_cleanup)(void);
static const char *tguard_msg;

static inline uint64_t tguard_now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Prints one progress line, stamped with the seconds since the start, and
 * flushes it (so that a child forked later does not print it again). */
static inline void __attribute__((format(printf, 1, 2))) tprogress(const char *fmt, ...)
{
    if (tguard_start == 0)
        tguard_start = tguard_now_ns();
    va_list ap;
    va_start(ap, fmt);
    printf("[%6.2f s] ", (double)(tguard_now_ns() - tguard_start) / 1e9);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

static inline void tguard_at_exit(void)
{
    if (getpid() == tguard_parent)
        tguard_cleanup();
}

static inline void tguard_on_signal(int sig)
{
    if (getpid() == tguard_parent) {
        tguard_cleanup();
        ssize_t k = write(2, tguard_msg, strlen(tguard_msg));
        (void)k;
    }
    _exit(sig == SIGALRM ? 1 : 128 + sig);
}

static inline void tguard_install(void (*cleanup)(void), const char *msg, unsigned secs)
{
    tguard_parent = getpid();
    if (tguard_start == 0)
        tguard_start = tguard_now_ns();
    tguard_cleanup = cleanup;
    tguard_msg = msg;
    atexit(tguard_at_exit);
    struct sigaction sa = {.sa_handler = tguard_on_signal};
    sigemptyset(&sa.sa_mask);
    int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGALRM};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaction(sigs[i], &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    alarm(secs);
}

#endif
