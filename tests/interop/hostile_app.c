/*
 * hostile_app: libdemi's side of tests/interop/test_hostile.sh, facing the
 * raw peers of hostile_peer.py, on the public API only. It must never talk
 * to an address it was not given.
 *
 *   hostile_app connect-close HOST PORT WAIT_MS
 *       Connects, gives up after WAIT_MS (demi_wait times out), closes, and
 *       prints "closed". Then it keeps the stack running until SIGTERM, and
 *       prints "alive" before it exits 0: a stack that crashes on the
 *       half-open connection it was left with never gets there.
 *   hostile_app zero-window HOST PORT BYTES close|hold DEADLINE_S
 *       Connects and pushes BYTES (one array). "close": on SIGUSR1 (the
 *       peer has gone silent behind a zero window) it closes the queue and
 *       waits until the heap holds no more than it did before the connect
 *       (plus one eighth of BYTES for frames in flight): the stack has given
 *       the connection up and freed its send queue. "hold": it waits for
 *       the push to fail, which must be with ETIMEDOUT. Either way it prints
 *       what happened and how long after the close (or the push) it took,
 *       and exits 0; 1 if DEADLINE_S passes first or anything else happens.
 */
#include <demi/libos.h>
#include <demi/sga.h>
#include <demi/wait.h>

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 16

static volatile sig_atomic_t stop, go;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static void on_usr1(int sig)
{
    (void)sig;
    go = 1;
}

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

static void die(const char *fmt, ...)
{
    va_list ap;
    fputs("hostile_app: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static void usage(void)
{
    fputs("usage: hostile_app connect-close HOST PORT WAIT_MS\n"
          "       hostile_app zero-window HOST PORT BYTES close|hold DEADLINE_S\n",
          stderr);
    exit(2);
}

static uint64_t num(const char *s, uint64_t max)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || *s == '-' || !*s || v > max)
        usage();
    return v;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t heap_in_use(void)
{
    demi_stats_t st;
    int e = demi_get_stats(&st);
    if (e)
        die("demi_get_stats: %s", strerror(e));
    return st.heap_bytes_in_use;
}

/* Runs the stack for up to @secs, discarding results (the stack's timers
 * and input run inside the wait). */
static void run_for(double secs)
{
    demi_qresult_t qr[BATCH];
    int n;
    struct timespec tick = {0, (long)(secs * 1e9)};
    demi_wait_next_n(qr, BATCH, &n, &tick);
}

static int connect_to(const char *host, uint16_t port, demi_qtoken_t *qt)
{
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, host, &to.sin_addr) != 1)
        usage();
    int qd, e;
    if ((e = demi_socket(&qd, AF_INET, SOCK_STREAM, 0)))
        die("socket: %s", strerror(e));
    if ((e = demi_connect(qt, qd, (struct sockaddr *)&to, sizeof(to))))
        die("connect: %s", strerror(e));
    return qd;
}

static int connect_close(const char *host, uint16_t port, uint64_t wait_ms)
{
    demi_qtoken_t qt;
    int qd = connect_to(host, port, &qt), e;
    demi_qresult_t qr;
    struct timespec wait = {(time_t)(wait_ms / 1000), (long)(wait_ms % 1000) * 1000000L};
    e = demi_wait(&qr, qt, &wait);
    if (e == 0 && qr.qr_opcode == DEMI_OPC_CONNECT)
        die("connected: the peer was to answer with a bare SYN only");
    printf("connect: %s after %llu ms; closing\n", e ? strerror(e) : strerror((int)qr.qr_ret),
           (unsigned long long)wait_ms);
    if ((e = demi_close(qd)))
        die("close: %s", strerror(e));
    printf("closed\n");
    fflush(stdout);
    double t0 = now_s();
    while (!stop)
        run_for(0.05);
    printf("alive %.1f s after the close\n", now_s() - t0);
    return 0;
}

static int zero_window(const char *host, uint16_t port, uint64_t bytes, int do_close, double deadline_s)
{
    uint64_t base = heap_in_use();
    demi_qtoken_t qt;
    int qd = connect_to(host, port, &qt), e;
    demi_qresult_t qr;
    struct timespec wait = {10, 0};
    if ((e = demi_wait(&qr, qt, &wait)))
        die("connect: %s", strerror(e));
    if (qr.qr_opcode != DEMI_OPC_CONNECT)
        die("connect failed: %s", strerror((int)qr.qr_ret));
    demi_sgarray_t s = demi_sgaalloc(bytes);
    if (s.sga_numsegs == 0)
        die("sgaalloc(%llu): %s", (unsigned long long)bytes, strerror(errno));
    for (uint32_t i = 0; i < s.sga_numsegs; i++)
        memset(s.sga_segs[i].sgaseg_buf, 'z', s.sga_segs[i].sgaseg_len);
    demi_qtoken_t push;
    if ((e = demi_push(&push, qd, &s)))
        die("push: %s", strerror(e));
    demi_sgafree(&s);
    printf("pushed %llu bytes; heap %llu bytes in use, %llu before the connect\n", (unsigned long long)bytes,
           (unsigned long long)heap_in_use(), (unsigned long long)base);
    fflush(stdout);

    if (!do_close) {
        double t0 = now_s();
        for (;;) {
            double left = t0 + deadline_s - now_s();
            if (left <= 0 || stop)
                die("the push to a silent zero-window peer is still pending after %.1f s", now_s() - t0);
            struct timespec ts = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
            e = demi_wait(&qr, push, &ts);
            if (e == ETIMEDOUT)
                continue;
            if (e)
                die("wait for the push: %s", strerror(e));
            break;
        }
        double dt = now_s() - t0;
        if (qr.qr_opcode != DEMI_OPC_FAILED)
            die("the push completed (opcode %d) although the peer took only part of it", (int)qr.qr_opcode);
        if (qr.qr_ret != ETIMEDOUT)
            die("the push failed with %s, not ETIMEDOUT", strerror((int)qr.qr_ret));
        demi_close(qd);
        run_for(0.1);
        printf("hold: the push failed with ETIMEDOUT %.1f s after it was made; heap %llu bytes in use after the "
               "close, %llu before the connect\n",
               dt, (unsigned long long)heap_in_use(), (unsigned long long)base);
        return 0;
    }

    while (!go && !stop)
        run_for(0.05);
    if (stop)
        die("stopped before the peer went silent");
    if ((e = demi_close(qd)))
        die("close: %s", strerror(e));
    uint64_t held = heap_in_use();
    double t0 = now_s();
    printf("closed; heap %llu bytes in use\n", (unsigned long long)held);
    fflush(stdout);
    while (heap_in_use() > base + bytes / 8) {
        if (now_s() - t0 > deadline_s || stop)
            die("%.1f s after the close the heap still holds %llu bytes (%llu before the connect)", now_s() - t0,
                (unsigned long long)heap_in_use(), (unsigned long long)base);
        run_for(0.05);
    }
    printf("close: the connection's memory was released %.1f s after the close (heap %llu bytes in use, %llu "
           "held before the close, %llu before the connect)\n",
           now_s() - t0, (unsigned long long)heap_in_use(), (unsigned long long)held, (unsigned long long)base);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_term;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    int cc = !strcmp(argv[1], "connect-close"), zw = !strcmp(argv[1], "zero-window");
    if ((cc && argc != 5) || (zw && argc != 7) || (!cc && !zw))
        usage();
    if (zw && strcmp(argv[5], "close") && strcmp(argv[5], "hold"))
        usage();
    int e = demi_init(NULL);
    if (e)
        die("demi_init: %s", strerror(e));
    printf("ready\n");
    fflush(stdout);
    int rc;
    if (cc)
        rc = connect_close(argv[2], (uint16_t)num(argv[3], 65535), num(argv[4], 3600000));
    else
        rc = zero_window(argv[2], (uint16_t)num(argv[3], 65535), num(argv[4], 256u << 20), !strcmp(argv[5], "close"),
                         (double)num(argv[6], 86400));
    fflush(stdout);
    return rc;
}
