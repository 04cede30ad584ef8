/*
 * demi-logecho: a TCP echo server that makes every message durable before
 * it answers. Each popped message is appended to a cattree log (demi_push
 * on the log's queue); when that push completes (the record is on disk),
 * the very same buffers are pushed back to the client. Sockets and the log
 * share one libdemi instance and one wait loop. Uses only the public API.
 *
 *   demi-logecho --addr IP:PORT --log PATH
 *   demi-logecho --help | --version
 *
 * Prints "ready IP:PORT" once it listens; exits 0 on SIGINT or SIGTERM
 * after printing "logged N records". Appends to an existing log.
 */
#include <demi/libos.h>
#include <demi/sga.h>
#include <demi/version.h>
#include <demi/wait.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 64

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void die(const char *what, int err)
{
    fprintf(stderr, "demi-logecho: %s: %s\n", what, strerror(err));
    exit(1);
}

/* On stdout for --help (exit 0), on stderr for a mistake (exit 2). Every
 * option of main()'s table is here and in demi-logecho(1). */
static void usage(FILE *f, int status)
{
    fprintf(f, "usage: demi-logecho --addr IP:PORT --log PATH\n"
               "       demi-logecho --help | --version\n"
               "  echoes each TCP message back once it is durable in a cattree log\n"
               "  --addr IP:PORT  listen there (port 0 picks a free port). Required\n"
               "  --log PATH      the log to append to (created if missing). Required\n"
               "  --help          this text\n"
               "  --version       the program's and libdemi's version\n"
               "LIBOS picks the network libOS (default catnap); see demi-logecho(1) and libdemi(7).\n");
    exit(status);
}

static int parse_addr(const char *s, struct sockaddr_in *out)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof(host) || !colon[1])
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535)
        return -1;
    memset(out, 0, sizeof(*out));
    out->sin_family = AF_INET;
    out->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &out->sin_addr) == 1 ? 0 : -1;
}

/* A message waiting for its log record to become durable. Log pushes
 * complete in the order they were made, so a FIFO pairs them up. */
struct pending {
    int qd; /* the connection to answer */
    demi_sgarray_t sga;
};

static struct pending *fifo;
static size_t fifo_cap, fifo_head, fifo_len;

static void fifo_put(int qd, const demi_sgarray_t *sga)
{
    if (fifo_len == fifo_cap) {
        size_t cap = fifo_cap ? fifo_cap * 2 : 256;
        struct pending *n = malloc(cap * sizeof(*n));
        if (!n)
            die("malloc", ENOMEM);
        for (size_t i = 0; i < fifo_len; i++)
            n[i] = fifo[(fifo_head + i) % fifo_cap];
        free(fifo);
        fifo = n;
        fifo_cap = cap;
        fifo_head = 0;
    }
    struct pending *p = &fifo[(fifo_head + fifo_len++) % fifo_cap];
    p->qd = qd;
    p->sga = *sga;
}

static struct pending fifo_take(void)
{
    if (!fifo_len)
        die("log result without a pending message", EPROTO);
    struct pending p = fifo[fifo_head];
    fifo_head = (fifo_head + 1) % fifo_cap;
    fifo_len--;
    return p;
}

/* Connections closed while their messages were being logged must not be
 * answered (their qd may already name a new connection). */
static bool *closed_qd;
static size_t closed_cap;

static void mark(int qd, bool closed)
{
    if ((size_t)qd >= closed_cap) {
        size_t cap = closed_cap ? closed_cap : 1024;
        while (cap <= (size_t)qd)
            cap *= 2;
        bool *n = realloc(closed_qd, cap);
        if (!n)
            die("realloc", ENOMEM);
        memset(n + closed_cap, 0, cap - closed_cap);
        closed_qd = n;
        closed_cap = cap;
    }
    closed_qd[qd] = closed;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {{"addr", required_argument, 0, 'a'},
                                       {"log", required_argument, 0, 'l'},
                                       {"help", no_argument, 0, 'h'},
                                       {"version", no_argument, 0, 'V'},
                                       {0, 0, 0, 0}};
    struct sockaddr_in addr;
    const char *path = NULL;
    bool have_addr = false;
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (c == 'a') {
            if (parse_addr(optarg, &addr))
                usage(stderr, 2);
            have_addr = true;
        } else if (c == 'l') {
            path = optarg;
        } else if (c == 'h') {
            usage(stdout, 0);
        } else if (c == 'V') {
            printf("demi-logecho (libdemi) %s\n", demi_version());
            exit(0);
        } else {
            usage(stderr, 2);
        }
    }
    if (!have_addr || !path || optind != argc)
        usage(stderr, 2);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    int e, lqd, logqd;
    if ((e = demi_init(NULL)))
        die("demi_init", e);
    if ((e = demi_open(&logqd, path, O_RDWR | O_CREAT, 0644)))
        die(path, e);
    if ((e = demi_socket(&lqd, AF_INET, SOCK_STREAM, 0)))
        die("socket", e);
    if ((e = demi_bind(lqd, (const struct sockaddr *)&addr, sizeof(addr))))
        die("bind", e);
    if ((e = demi_listen(lqd, 1024)))
        die("listen", e);
    demi_qtoken_t qt;
    if ((e = demi_accept(&qt, lqd)))
        die("accept", e);
    struct sockaddr_in local;
    socklen_t len = sizeof(local);
    if ((e = demi_getsockname(lqd, (struct sockaddr *)&local, &len)))
        die("getsockname", e);
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &local.sin_addr, ip, sizeof(ip));
    printf("ready %s:%u\n", ip, ntohs(local.sin_port));
    fflush(stdout);

    uint64_t logged = 0;
    demi_qresult_t qr[BATCH];
    struct timespec tick = {0, 100 * 1000 * 1000};
    while (!stop) {
        int n;
        e = demi_wait_next_n(qr, BATCH, &n, &tick);
        if (e == ETIMEDOUT)
            continue;
        if (e)
            die("wait", e);
        for (int i = 0; i < n; i++) {
            demi_qresult_t *r = &qr[i];
            int qd = r->qr_qd;
            if (qd == logqd) {
                /* The log answered: the oldest pending message is durable
                 * (or failed); answer its client with the same buffers. */
                struct pending p = fifo_take();
                if (r->qr_opcode != DEMI_OPC_PUSH)
                    die("log append", (int)r->qr_ret);
                logged++;
                if (!closed_qd[p.qd] && (e = demi_push(&qt, p.qd, &p.sga)))
                    die("push", e);
                demi_sgafree(&p.sga); /* the reply push holds its own reference */
                continue;
            }
            switch (r->qr_opcode) {
            case DEMI_OPC_ACCEPT:
                mark(r->qr_value.ares.qd, false);
                if ((e = demi_pop(&qt, r->qr_value.ares.qd)))
                    die("pop", e);
                if ((e = demi_accept(&qt, lqd)))
                    die("accept", e);
                break;
            case DEMI_OPC_POP:
                if (r->qr_value.sga.sga_numsegs == 0) { /* the client closed */
                    mark(qd, true);
                    demi_close(qd);
                    break;
                }
                /* Log first; the reply waits for durability. */
                if ((e = demi_push(&qt, logqd, &r->qr_value.sga)))
                    die("log push", e);
                fifo_put(qd, &r->qr_value.sga);
                if ((e = demi_pop(&qt, qd)))
                    die("pop", e);
                break;
            case DEMI_OPC_FAILED:
                if (qd != lqd && r->qr_ret != ECANCELED) {
                    mark(qd, true);
                    demi_close(qd);
                } else if (qd == lqd && r->qr_ret != ECANCELED) {
                    die("listening queue", (int)r->qr_ret);
                }
                break;
            default:
                break;
            }
        }
    }
    /* Let the appends in flight finish before closing the log. */
    while (fifo_len) {
        int n;
        struct timespec t = {5, 0};
        if (demi_wait_next_n(qr, BATCH, &n, &t))
            break;
        for (int i = 0; i < n; i++) {
            if (qr[i].qr_qd != logqd)
                continue;
            struct pending p = fifo_take();
            logged += qr[i].qr_opcode == DEMI_OPC_PUSH;
            demi_sgafree(&p.sga);
        }
    }
    demi_close(logqd);
    demi_close(lqd);
    printf("logged %llu records\n", (unsigned long long)logged);
    return 0;
}
