/*
 * tests/txn/test_txn_sync.c: an occ backup that restarts is brought up to
 * date by its primary (demi-txnd's state transfer, apps/txn/sync.h), and
 * then carries majorities on its own, with nothing committed lost.
 *
 * How: 3 demi-txnd replicas in occ on catnap (127.0.0.1), NKEYS keys
 * loaded, transactions that each move two keys to new unique values (a
 * model in this process records every committed value). Backup 2 is killed
 * with SIGKILL; transactions go on; a transaction is prepared by hand on
 * the primary (raw frames) and left undecided; backup 2 is started again
 * with the same arguments, and transactions run while it syncs, until it
 * logs that its sync completed. Then backup 1 is killed, so that backup 2
 * is needed for every majority: the hand-prepared transaction must commit
 * (its REPL_COMMIT is acknowledged only by a backup that holds it: the
 * sync must have carried it), more transactions must commit, and every key
 * read from backup 2 alone (txc_config.read_pinned) and from the primary
 * must hold the model's value. Then hostile frames: a SYNC_ITEM to the
 * primary, and a SYNC_ITEM, a SYNC_BEGIN or a REPL_COMMIT to backup 2 on a
 * connection that is not its primary's link (a primary's link begins
 * with its VIEW_START), must each get the connection closed, and
 * transactions and reads from backup 2 must go on as before. The replicas
 * run with --failover-ms 0: the primary stays replica 0 (the failover has
 * its own test, test_txn_bank's last phase).
 *
 * It must never leave a process or a file behind: every replica is killed
 * by PID and reaped on every way out (atexit, signal handlers, a guard
 * alarm), and dies with this process (PR_SET_PDEATHSIG). Everything runs
 * with LIBOS=catnap HUGEPAGES=off SPIN_US=0. No step waits for a guessed
 * time: each waits for a log line or a reply, and the timeouts only guard
 * against hangs. Exit 0 pass, 1 fail. DEMI_BUILD names the build directory
 * (default "build"); DEMI_TXN_SYNC_KEYS changes NKEYS.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2; CMake defines it too */
#endif
#include "client.h"
#include "msg.h"
#include "tguard.h"

#include <demi/libos.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NREPL       3
#define NKEYS_DEF   5000
#define VAL_PAD     200 /* bytes of padding per value: the sync spans several windows */
#define TXNS        300 /* transactions per phase */
#define TRIES_MAX   200 /* failed attempts of one transaction */
#define GUARD_S     900 /* the whole run: a guard against hangs only */
#define WAIT_S      120 /* one ready line, log line or raw reply */
#define GRACE_S     60  /* for a replica to exit after SIGTERM (ASan unmapping takes seconds) */
#define START_TRIES 5
#define CLIENT_MS   30000 /* a reply not there by then: a hang */
#define RAW_TXNID   0x5eed0000cafe0001ull
#define RAW_TS      1000

static void __attribute__((format(printf, 1, 2), noreturn)) fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "test_txn_sync: FAIL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1); /* at_exit kills the replicas */
}

/* ---- The replicas: killed and reaped on every way out. ---- */

struct server {
    pid_t pid;
    int out, err; /* its stdout (the ready line) and stderr (its log) */
    char line[1024];
    size_t len;
    bool synced; /* it logged "synced from the primary" */
    char synced_line[256];
};

static struct server g_srv[NREPL];
static uint16_t g_ports[NREPL];
static char g_exe[512];

/* Async-signal-safe. */
static void kill_all(void)
{
    for (int r = 0; r < NREPL; r++)
        if (g_srv[r].pid > 0)
            kill(g_srv[r].pid, SIGKILL);
    for (int r = 0; r < NREPL; r++)
        if (g_srv[r].pid > 0) {
            while (waitpid(g_srv[r].pid, NULL, 0) < 0 && errno == EINTR)
                ;
            g_srv[r].pid = 0;
        }
}

static int pick_ports(void)
{
    int fds[NREPL], e = 0, i;
    for (i = 0; i < NREPL && !e; i++) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(a);
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&a, sizeof(a)) != 0 ||
            getsockname(fds[i], (struct sockaddr *)&a, &len) != 0)
            e = errno ? errno : EIO;
        g_ports[i] = ntohs(a.sin_port);
        if (fds[i] < 0)
            break;
    }
    for (int j = 0; j < i; j++)
        if (fds[j] >= 0)
            close(fds[j]);
    return e;
}

static int start_server(int r)
{
    char addr[32], list[128] = "", idx[16];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", g_ports[r]);
    for (int i = 0; i < NREPL; i++)
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s127.0.0.1:%u", i ? "," : "", g_ports[i]);
    snprintf(idx, sizeof(idx), "%d", r);
    int o[2], e[2];
    if (pipe2(o, O_CLOEXEC) != 0)
        return errno;
    if (pipe2(e, O_CLOEXEC) != 0) {
        close(o[0]);
        close(o[1]);
        return errno;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        int err = errno;
        close(o[0]), close(o[1]), close(e[0]), close(e[1]);
        return err;
    }
    if (pid == 0) {
        int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGALRM, SIGPIPE};
        alarm(0);
        for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
            signal(sigs[i], SIG_DFL);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != tguard_parent)
            _exit(1);
        dup2(o[1], 1);
        dup2(e[1], 2);
        /* The primary stays replica 0 throughout (no view change on a
         * timeout): this test is about the state transfer. */
        execl(g_exe, g_exe, "--mode", "occ", "--addr", addr, "--replicas", list, "--index", idx, "--failover-ms", "0",
              (char *)NULL);
        _exit(127);
    }
    close(o[1]);
    close(e[1]);
    fcntl(e[0], F_SETFL, O_NONBLOCK);
    g_srv[r] = (struct server){.pid = pid, .out = o[0], .err = e[0]};
    return 0;
}

/* One line of replica R's log: shown, and looked at. */
static void log_line(int r, const char *line)
{
    fprintf(stderr, "  [replica %d] %s\n", r, line);
    if (strstr(line, "synced from the primary")) {
        g_srv[r].synced = true;
        snprintf(g_srv[r].synced_line, sizeof(g_srv[r].synced_line), "%.200s", line);
    }
}

/* Reads what the replicas logged, waiting at most MS for something. */
static void drain(int ms)
{
    struct pollfd pf[NREPL];
    int map[NREPL], n = 0;
    for (int r = 0; r < NREPL; r++)
        if (g_srv[r].pid > 0 && g_srv[r].err >= 0) {
            pf[n] = (struct pollfd){.fd = g_srv[r].err, .events = POLLIN};
            map[n++] = r;
        }
    if (n == 0 || poll(pf, (nfds_t)n, ms) <= 0)
        return;
    for (int i = 0; i < n; i++) {
        struct server *sv = &g_srv[map[i]];
        if (!(pf[i].revents & (POLLIN | POLLHUP)))
            continue;
        char buf[4096];
        ssize_t k;
        while ((k = read(sv->err, buf, sizeof(buf))) > 0) {
            for (ssize_t j = 0; j < k; j++) {
                if (buf[j] == '\n' || sv->len == sizeof(sv->line) - 1) {
                    char done[sizeof(sv->line)];
                    memcpy(done, sv->line, sv->len);
                    done[sv->len] = '\0';
                    log_line(map[i], done);
                    sv->len = 0;
                } else {
                    sv->line[sv->len++] = buf[j];
                }
            }
        }
        if (k == 0) { /* its end: it exited */
            close(sv->err);
            sv->err = -1;
        }
    }
}

static int wait_ready(int r)
{
    char line[128] = "";
    size_t got = 0;
    uint64_t deadline = tguard_now_ns() + (uint64_t)WAIT_S * 1000000000u;
    while (!strchr(line, '\n') && got < sizeof(line) - 1 && tguard_now_ns() < deadline) {
        drain(0);
        struct pollfd pf = {.fd = g_srv[r].out, .events = POLLIN};
        if (poll(&pf, 1, 100) <= 0)
            continue;
        ssize_t k = read(g_srv[r].out, line + got, sizeof(line) - 1 - got);
        if (k <= 0)
            break;
        got += (size_t)k;
        line[got] = '\0';
    }
    unsigned port = 0;
    if (sscanf(line, "ready 127.0.0.1:%u", &port) == 1 && port == g_ports[r])
        return 0;
    fprintf(stderr, "replica %d: no ready line (got \"%.*s\")\n", r, (int)strcspn(line, "\n"), line);
    return EIO;
}

/* Stops replica R with SIG and reaps it; with SIGTERM it must exit 0. */
static void stop_server(int r, int sig)
{
    struct server *sv = &g_srv[r];
    if (sv->pid <= 0)
        return;
    kill(sv->pid, sig);
    uint64_t deadline = tguard_now_ns() + (uint64_t)GRACE_S * 1000000000u;
    int st = 0;
    pid_t k;
    while ((k = waitpid(sv->pid, &st, WNOHANG)) == 0 && tguard_now_ns() < deadline)
        drain(10);
    if (k == 0) {
        kill(sv->pid, SIGKILL);
        while (waitpid(sv->pid, &st, 0) < 0 && errno == EINTR)
            ;
    }
    drain(0);
    pid_t pid = sv->pid;
    sv->pid = 0;
    if (sv->out >= 0)
        close(sv->out);
    if (sv->err >= 0)
        close(sv->err);
    sv->out = sv->err = -1;
    if (sig == SIGTERM && (k == 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0))
        fail("replica %d (pid %d): no clean exit on SIGTERM (status 0x%x)", r, (int)pid, st);
    if (sig == SIGKILL && !(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL))
        fail("replica %d (pid %d) had ended before it was killed (status 0x%x)", r, (int)pid, st);
}

static void start_cluster(void)
{
    for (int attempt = 0; attempt < START_TRIES; attempt++) {
        int e = pick_ports();
        for (int r = NREPL - 1; r >= 0 && !e; r--) /* the backups first */
            if (!(e = start_server(r)))
                e = wait_ready(r);
        if (!e)
            return;
        fprintf(stderr, "starting the replicas failed (%s); retrying on other ports\n", strerror(e));
        for (int r = 0; r < NREPL; r++)
            if (g_srv[r].pid > 0) {
                kill(g_srv[r].pid, SIGKILL);
                stop_server(r, SIGKILL);
            }
    }
    fail("could not start the replicas");
}

/* ---- Raw frames, for what the client library does not send. ---- */

static uint8_t g_frame[TXN_HDR_LEN + TXN_BODY_MAX];

static int raw_connect(int r)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(g_ports[r])};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = WAIT_S};
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
        connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        fail("raw connect to replica %d: %s", r, strerror(errno));
    return fd;
}

static void raw_send(int fd, const struct txn_msg *m)
{
    size_t n = txn_msg_encode(m, g_frame, sizeof(g_frame));
    if (n == 0 || write(fd, g_frame, n) != (ssize_t)n)
        fail("raw send of a %s: %s", txn_type_name(m->type), strerror(errno));
}

/* Reads N bytes; 0, or -1 at the end of the stream, or fails on a timeout. */
static int raw_read(int fd, uint8_t *p, size_t n)
{
    while (n) {
        ssize_t k = read(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == ECONNRESET))
            return -1;
        if (k < 0)
            fail("raw read: %s", strerror(errno));
        if (k == 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* The next frame on FD into M (pointing into g_frame); -1 at its end. */
static int raw_recv(int fd, struct txn_msg *m)
{
    if (raw_read(fd, g_frame, TXN_HDR_LEN) != 0)
        return -1;
    size_t len = 0;
    const char *why = NULL;
    uint32_t blen =
        (uint32_t)g_frame[4] | (uint32_t)g_frame[5] << 8 | (uint32_t)g_frame[6] << 16 | (uint32_t)g_frame[7] << 24;
    if (blen > TXN_BODY_MAX || raw_read(fd, g_frame + TXN_HDR_LEN, blen) != 0)
        return -1;
    if (txn_frame_len(g_frame, TXN_HDR_LEN + blen, &len, &why) != 1 || txn_msg_decode(g_frame, len, m, &why) != 0)
        fail("a malformed reply: %s", why ? why : "?");
    return 0;
}

/* Sends M to replica R on a fresh connection and expects a reply of type
 * RTYPE with status OK. */
static void raw_request(int r, struct txn_msg *m, uint8_t rtype)
{
    int fd = raw_connect(r);
    raw_send(fd, m);
    static struct txn_msg rep;
    if (raw_recv(fd, &rep) != 0)
        fail("replica %d closed the connection instead of answering a %s", r, txn_type_name(m->type));
    if (rep.type != rtype || rep.status != TXN_ST_OK)
        fail("replica %d answered a %s with %s %s", r, txn_type_name(m->type), txn_type_name(rep.type),
             txn_status_name(rep.status));
    close(fd);
}

/* Sends M to replica R on a fresh connection, which it must close without
 * a reply. */
static void raw_refused(int r, struct txn_msg *m, const char *what)
{
    int fd = raw_connect(r);
    raw_send(fd, m);
    static struct txn_msg rep;
    if (raw_recv(fd, &rep) == 0)
        fail("%s: replica %d answered %s %s instead of closing", what, r, txn_type_name(rep.type),
             txn_status_name(rep.status));
    close(fd);
    tprogress("%s: replica %d closed the connection\n", what, r);
}

/* ---- The workload and its model. ---- */

static uint32_t g_nkeys;
static uint64_t *g_model; /* by key: the sequence number of its committed value */
static uint64_t g_seq;    /* the last sequence number given out */
static uint64_t g_rs = 12345;

static uint64_t rnd(void)
{
    uint64_t z = (g_rs += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static size_t key_of(uint32_t k, char *buf, size_t cap)
{
    return (size_t)snprintf(buf, cap, "k%06u", k);
}

static size_t val_of(uint32_t k, uint64_t seq, char *buf, size_t cap)
{
    return (size_t)snprintf(buf, cap, "k%06u=%llu;%0*d", k, (unsigned long long)seq, VAL_PAD, 0);
}

static struct txc *open_client(uint32_t read_replica, bool pinned)
{
    struct txc_config cfg = {.mode = TXC_OCC,
                             .nshards = 1,
                             .nreplicas = NREPL,
                             .read_replica = read_replica,
                             .read_pinned = pinned,
                             .timeout_ms = CLIENT_MS};
    for (int r = 0; r < NREPL; r++)
        cfg.replica[0][r] = (struct sockaddr_in){
            .sin_family = AF_INET, .sin_port = htons(g_ports[r]), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    char err[256];
    struct txc *c = txc_open(&cfg, err, sizeof(err));
    if (!c)
        fail("txc_open: %s", err);
    return c;
}

static void load(struct txc *c)
{
    char k[32], v[512];
    for (uint32_t i = 0; i < g_nkeys; i++) {
        size_t kl = key_of(i, k, sizeof(k)), vl = val_of(i, 0, v, sizeof(v));
        int e = txc_load(c, (const uint8_t *)k, kl, (const uint8_t *)v, vl);
        if (e)
            fail("load of %s: %s", k, strerror(e));
        g_model[i] = 0;
    }
}

/* Reads key K in the current transaction and checks it is a value this
 * test wrote for K; *SEQ gets its sequence number. */
static int read_key(struct txc *c, uint32_t k, uint64_t *seq)
{
    char kb[32];
    size_t kl = key_of(k, kb, sizeof(kb));
    const uint8_t *v;
    size_t vl;
    int e = txc_get(c, (const uint8_t *)kb, kl, &v, &vl);
    if (e)
        return e;
    char want[32];
    size_t wl = (size_t)snprintf(want, sizeof(want), "k%06u=", k);
    char num[24] = "";
    size_t i = wl, j = 0;
    if (vl < wl || memcmp(v, want, wl) != 0)
        fail("key %s holds a value of another key: \"%.*s\"", kb, (int)(vl < 40 ? vl : 40), (const char *)v);
    while (i < vl && v[i] != ';' && j < sizeof(num) - 1)
        num[j++] = (char)v[i++];
    *seq = strtoull(num, NULL, 10);
    return 0;
}

/* Is KEY's committed value SEQ? Read on the primary, outside the workload. */
static uint64_t primary_seq(struct txc *pc, uint32_t k)
{
    uint64_t s = 0;
    for (int t = 0; t < TRIES_MAX; t++) {
        txc_begin(pc);
        int e = read_key(pc, k, &s);
        txc_abort(pc);
        if (e == 0)
            return s;
        drain(0);
    }
    fail("key %u cannot be read on the primary", k);
}

/* One transaction moving two keys to new values, retried until it
 * commits. An outcome the client cannot tell (EINPROGRESS) is read back on
 * the primary. Returns the attempts that failed. */
static uint32_t one_txn(struct txc *c, struct txc *pc)
{
    uint32_t a = (uint32_t)(rnd() % g_nkeys), b = (uint32_t)(rnd() % g_nkeys);
    if (a == b)
        b = (a + 1) % g_nkeys;
    uint32_t failed = 0;
    for (int t = 0; t < TRIES_MAX; t++, failed++) {
        drain(0);
        txc_begin(c);
        uint64_t sa, sb;
        int e = read_key(c, a, &sa);
        if (!e)
            e = read_key(c, b, &sb);
        if (e) {
            txc_abort(c);
            if (e != EIO && e != ECONNRESET && e != ETIMEDOUT)
                fail("a get: %s", strerror(e));
            continue;
        }
        if (sa != g_model[a] || sb != g_model[b]) {
            /* A read at a replica behind the primary: validation aborts it. */
        }
        char k[32], v[512];
        uint64_t na = ++g_seq, nb = ++g_seq;
        size_t kl = key_of(a, k, sizeof(k)), vl = val_of(a, na, v, sizeof(v));
        e = txc_put(c, (const uint8_t *)k, kl, (const uint8_t *)v, vl);
        kl = key_of(b, k, sizeof(k)), vl = val_of(b, nb, v, sizeof(v));
        if (!e)
            e = txc_put(c, (const uint8_t *)k, kl, (const uint8_t *)v, vl);
        if (e)
            fail("a put: %s", strerror(e));
        e = txc_commit(c, NULL);
        if (e == EINPROGRESS) {
            uint64_t pa = primary_seq(pc, a), pb = primary_seq(pc, b);
            if (pa == na && pb == nb)
                e = 0;
            else if (pa == g_model[a] && pb == g_model[b])
                e = EIO;
            else
                fail("after an uncertain commit, keys %u %u hold %llu %llu (model %llu %llu, written %llu %llu)", a, b,
                     (unsigned long long)pa, (unsigned long long)pb, (unsigned long long)g_model[a],
                     (unsigned long long)g_model[b], (unsigned long long)na, (unsigned long long)nb);
        }
        if (e == 0) {
            g_model[a] = na;
            g_model[b] = nb;
            return failed;
        }
        if (e != EAGAIN && e != EIO && e != ECONNRESET && e != ETIMEDOUT)
            fail("a commit: %s", strerror(e));
    }
    fail("a transaction on keys %u and %u failed %d times in a row", a, b, TRIES_MAX);
}

static void run_txns(struct txc *c, struct txc *pc, uint32_t n, const char *what)
{
    uint64_t t0 = tguard_now_ns();
    uint32_t failed = 0;
    for (uint32_t i = 0; i < n; i++)
        failed += one_txn(c, pc);
    double s = (double)(tguard_now_ns() - t0) / 1e9;
    tprogress("%s: %u transactions committed in %.2f s (%.0f/s), %u attempts aborted or failed\n", what, n, s, n / s,
              failed);
}

/* Reads every key through client C (pinned to one replica) and checks the
 * model's value; also the hand-prepared transaction's key. */
static void verify_all(struct txc *c, const char *who)
{
    uint64_t t0 = tguard_now_ns();
    for (uint32_t i = 0; i < g_nkeys;) {
        txc_begin(c);
        uint32_t end = i + 32 < g_nkeys ? i + 32 : g_nkeys;
        for (; i < end; i++) {
            uint64_t s = 0;
            int e = read_key(c, i, &s);
            if (e)
                fail("%s: reading key %u: %s", who, i, strerror(e));
            if (s != g_model[i])
                fail("%s: key %u holds value %llu, the last committed is %llu", who, i, (unsigned long long)s,
                     (unsigned long long)g_model[i]);
        }
        txc_abort(c);
        drain(0);
    }
    txc_begin(c);
    const uint8_t *v;
    size_t vl;
    int e = txc_get(c, (const uint8_t *)"px", 2, &v, &vl);
    if (e || vl != 10 || memcmp(v, "prepared-x", 10) != 0)
        fail("%s: the hand-prepared transaction's key: %s", who, e ? strerror(e) : "another value");
    txc_abort(c);
    tprogress("%s: all %u keys hold their last committed values (read in %.2f s)\n", who, g_nkeys,
              (double)(tguard_now_ns() - t0) / 1e9);
}

static void raw_prepare_x(void)
{
    static struct txn_msg m;
    memset(&m, 0, sizeof(m));
    m.type = TXN_PREPARE;
    m.reqid = 1;
    m.txnid = RAW_TXNID;
    m.ts = RAW_TS;
    m.nwrites = 1;
    m.writes[0].key = (struct txn_bytes){(const uint8_t *)"px", 2};
    m.writes[0].val = (struct txn_bytes){(const uint8_t *)"prepared-x", 10};
    raw_request(0, &m, TXN_PREPARE_REPLY);
}

static void raw_commit_x(void)
{
    static struct txn_msg m;
    memset(&m, 0, sizeof(m));
    m.type = TXN_COMMIT;
    m.reqid = 2;
    m.txnid = RAW_TXNID;
    m.ts = RAW_TS;
    raw_request(0, &m, TXN_COMMIT_REPLY);
}

static void hostile(void)
{
    static struct txn_msg m;
    memset(&m, 0, sizeof(m));
    m.type = TXN_SYNC_ITEM;
    m.ts = 1ull << 62;
    m.key = (struct txn_bytes){(const uint8_t *)"k000001", 7};
    m.val = (struct txn_bytes){(const uint8_t *)"forged", 6};
    raw_refused(0, &m, "a SYNC_ITEM to the primary");
    raw_refused(2, &m, "a SYNC_ITEM to a backup outside a sync");
    memset(&m, 0, sizeof(m));
    m.type = TXN_REPL_COMMIT;
    m.txnid = 77;
    m.ts = 78;
    raw_refused(2, &m, "a REPL_COMMIT to a backup, not on its primary's link");
    memset(&m, 0, sizeof(m));
    m.type = TXN_SYNC_BEGIN;
    raw_refused(2, &m, "a SYNC_BEGIN to a backup, not on its primary's link");
    /* View changes that cannot come from another replica of the group. */
    memset(&m, 0, sizeof(m));
    m.type = TXN_VIEW_CHANGE;
    m.txnid = 1;
    m.ts = 2 | TXN_VC_COMPLETE;
    raw_refused(2, &m, "a VIEW_CHANGE naming the receiver as its sender");
    m.ts = 7;
    raw_refused(2, &m, "a VIEW_CHANGE from replica 7 of 3");
    memset(&m, 0, sizeof(m));
    m.type = TXN_VIEW_START;
    m.txnid = 2; /* replica 2 is that view's primary */
    m.ts = 99;
    raw_refused(2, &m, "a VIEW_START of a view the receiver would lead");
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    setenv("LIBOS", "catnap", 1);
    setenv("HUGEPAGES", "off", 1);
    setenv("SPIN_US", "0", 1);
    const char *build = getenv("DEMI_BUILD") ? getenv("DEMI_BUILD") : "build";
    snprintf(g_exe, sizeof(g_exe), "%s/demi-txnd", build);
    if (access(g_exe, X_OK) != 0) {
        fprintf(stderr, "test_txn_sync: no demi-txnd under %s (DEMI_BUILD)\n", build);
        return 1;
    }
    g_nkeys = getenv("DEMI_TXN_SYNC_KEYS") ? (uint32_t)strtoul(getenv("DEMI_TXN_SYNC_KEYS"), NULL, 10) : NKEYS_DEF;
    if (g_nkeys < 2)
        g_nkeys = 2;
    g_model = calloc(g_nkeys, sizeof(*g_model));
    if (!g_model)
        fail("out of memory");
    for (int r = 0; r < NREPL; r++)
        g_srv[r].out = g_srv[r].err = -1;
    tguard_install(kill_all, "test_txn_sync: killed by a signal or the guard alarm; replicas killed\n", GUARD_S);
    int e = demi_init(NULL);
    if (e)
        fail("demi_init: %s", strerror(e));

    start_cluster();
    tprogress("3 replicas up (ports %u %u %u)\n", g_ports[0], g_ports[1], g_ports[2]);
    struct txc *c = open_client(1, false), *pc = open_client(0, true);
    load(c);
    tprogress("loaded %u keys of %d bytes\n", g_nkeys, VAL_PAD + 16);
    run_txns(c, pc, TXNS, "all up");

    stop_server(2, SIGKILL);
    tprogress("backup 2 killed (SIGKILL)\n");
    run_txns(c, pc, TXNS, "backup 2 down");
    raw_prepare_x();
    tprogress("transaction %llx prepared by hand on the primary, left undecided\n", (unsigned long long)RAW_TXNID);

    if (start_server(2) != 0 || wait_ready(2) != 0)
        fail("restarting backup 2");
    tprogress("backup 2 restarted; transactions run until it says its sync is complete\n");
    uint64_t t0 = tguard_now_ns(), deadline = t0 + (uint64_t)WAIT_S * 1000000000u;
    uint32_t during = 0;
    while (!g_srv[2].synced) {
        if (tguard_now_ns() > deadline)
            fail("backup 2 did not complete its sync in %d s", WAIT_S);
        one_txn(c, pc);
        during++;
        drain(0);
    }
    tprogress("backup 2 synced: %u transactions committed meanwhile; its log: %s\n", during, g_srv[2].synced_line);

    /* Clients that reach backup 2 (txc_open wants every replica up): one
     * whose reads go there first, one whose reads go nowhere else. */
    txc_close(c);
    c = open_client(2, false);
    struct txc *b2 = open_client(2, true);
    stop_server(1, SIGKILL);
    tprogress("backup 1 killed (SIGKILL): every majority now needs backup 2\n");
    raw_commit_x();
    tprogress("the hand-prepared transaction committed (backup 2 held it)\n");
    run_txns(c, pc, TXNS, "backup 1 down, backup 2 restarted");

    verify_all(b2, "reads pinned to backup 2");
    verify_all(pc, "reads pinned to the primary");

    hostile();
    run_txns(c, pc, TXNS, "after the hostile frames");
    verify_all(b2, "reads pinned to backup 2");
    txc_close(b2);
    txc_close(c);
    txc_close(pc);
    stop_server(2, SIGTERM);
    stop_server(0, SIGTERM);
    free(g_model);
    tprogress("test_txn_sync: ok\n");
    return 0;
}
