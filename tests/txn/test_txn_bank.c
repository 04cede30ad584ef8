/*
 * tests/txn/test_txn_bank.c: checks, rather than assumes, that TxnStore's
 * occ mode is strictly serializable, by running a bank on real demi-txnd
 * replicas and checking the history its clients saw.
 *
 * How: 2 shards x 3 replicas of demi-txnd on catnap (127.0.0.1), NACCT
 * accounts of 100 each, NWORK forked client processes doing random
 * transfers (read two accounts, move 1..20 if the balance allows, commit;
 * retry on EAGAIN) and now and then an audit (read every account in one
 * transaction: a committed audit must see the total unchanged and no
 * account negative). Each client logs its committed transactions (start
 * and end times from CLOCK_MONOTONIC, commit timestamp, reads as key,
 * version and value, writes as key and value). After >= 10000 commits the
 * parent builds the direct serialization graph (WW, WR and RW
 * anti-dependency edges from the versions; real-time edges through a chain
 * of time nodes, so there are O(n) of them) and checks that it is acyclic
 * (iterative DFS), that every version read was written and that every
 * value read is the one written at that version. Before that, the checker
 * is shown a good history and bad ones (write skew, lost update, stale
 * read, fractured read, phantom version, wrong value, duplicate version)
 * and must tell them apart. Then the clients start >= 500 more transfers
 * and one backup of shard 0 is killed with SIGKILL as they do (transfers
 * in flight, being replicated to it), and the history is checked again;
 * then >= 500 more while the primary of shard 1 is killed with SIGKILL
 * (transfers in flight to it): its two backups must change views, one of
 * them take over holding every committed transfer, and the clients follow
 * it (demi-txnd(1), "Failover"), and the history is checked again. Then
 * the killed primary is started again with --rejoin, waited for until
 * the new primary has brought it up to date (its "synced view V" line),
 * and the primary of view V is killed with >= 500 more transfers in
 * flight, so that every majority of that shard needs the rejoined
 * replica. A final audit must see the same total and, for every account,
 * the newest version committed, and the whole history is checked again. A call that fails because a replica is out of
 * reach (a killed one; a primary linking to its backups just after it
 * started; a view change taking longer than the client's timeout)
 * aborts its transaction and is retried, a bounded number of times; any
 * other error fails the test, and so does an outcome the client cannot
 * tell (EINPROGRESS), since the history could not be checked.
 *
 * It must never leave a process behind: every child is killed by PID and
 * reaped on every way out (atexit, signal handlers, a guard alarm), and
 * children die with the parent (PR_SET_PDEATHSIG). Every process runs on
 * catnap with LIBOS=catnap HUGEPAGES=off SPIN_US=0 (no busy waiting: the
 * eleven processes share what may be two CPUs). Timeouts only guard
 * against hangs. Exit 0 pass, 1 fail. DEMI_BUILD names the build directory
 * (default "build"); DEMI_TXN_BANK_TXNS changes the 10000 (development);
 * `test_txn_bank --check FILE...` only checks histories (a failed run
 * keeps its own and says where).
 *
 * DEMI_TXN_BANK_HOSTS="NS,IF,IP[,CONFIG] ..." runs it across network
 * namespaces instead (tests/txn/test_txn_netns.sh, as root): one host for
 * each of the NSHARDS x NREPL replicas (shard by shard) and then one for
 * each of the NWORK clients. Every process enters its host's namespace
 * (setns) before it starts libdemi, with LINUX_INTERFACE_NAME=IF,
 * LOCAL_IPV4_ADDR=IP and, given CONFIG, CONFIG_PATH=CONFIG (catnip: the
 * host's DPDK port is in its configuration file), and keeps the caller's
 * LIBOS (catpowder or catnip there); the replicas listen on IP:TXN_PORT.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2; CMake defines it too */
#endif
#include "client.h"
#include "tguard.h"

#include <demi/libos.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NSHARDS      2
#define NREPL        3
#define NACCT        20
#define NWORK        4
#define INITIAL      100
#define MAX_X        20
#define HIST_TXNS    10000 /* committed transactions the history must hold */
#define FAULT_TXNS   500   /* committed transfers after the kill */
#define AUDIT_ONE_IN 100   /* about one transaction in this many is an audit */
#define AUDIT_TRIES  40    /* attempts before an audit gives up (contention) */
#define TRIES_MAX    2000  /* aborts in a row of one transaction: a livelock */
/* From the BACKOFF_FROM-th abort in a row of one transfer, a pause before
 * each retry, doubling from 64 us to BACKOFF_MAX_US: a transaction
 * prepared at a shard whose primary was killed before the decision reached
 * it holds its keys until the new primary's orphan sweep decides it (10 to
 * 20 s, demi-txnd --orphan-ms), and TRIES_MAX retries without a pause ran
 * out before that on a loaded machine. With the pauses, TRIES_MAX aborts in
 * a row take over 30 s. */
#define BACKOFF_FROM   8
#define BACKOFF_MAX_US 20000
#define ERRS_MAX     200   /* failed calls tolerated (see on_error) */
#define ERR_PAUSE_MS 10
#define GUARD_S      600 /* the whole run: a guard against hangs only */
#define READY_S      60
#define GRACE_S      60 /* for a replica to exit after SIGTERM (under ASan, unmapping libdemi's pool takes seconds) */
#define CLIENT_MS    20000
#define ATTEMPT_MS   2000 /* a replica silent this long is passed over (a killed catpowder one sends no reset) */
#define START_TRIES  5
#define KILLED_SHARD 0
#define KILLED_REPL  2    /* a backup; clients read from replicas 0 and 1 */
#define FAILED_SHARD 1    /* whose primary (replica 0) is killed next */
#define TXN_PORT     7400 /* the replicas' port when each has its own address */
#define NHOSTS       (NSHARDS * NREPL + NWORK)

/* ---- Children: every one is killed and reaped on every way out. ---- */

static pid_t g_kids[NSHARDS * NREPL + NWORK];
static char g_dir[64];
static char g_hist_path[NWORK][128]; /* set before any child starts */
static bool g_keep_dir;

static void kid_add(pid_t pid)
{
    for (size_t i = 0; i < sizeof(g_kids) / sizeof(g_kids[0]); i++)
        if (g_kids[i] == 0) {
            g_kids[i] = pid;
            return;
        }
    kill(pid, SIGKILL); /* the table is sized for every child: not reached */
}

static void kid_forget(pid_t pid)
{
    for (size_t i = 0; i < sizeof(g_kids) / sizeof(g_kids[0]); i++)
        if (g_kids[i] == pid)
            g_kids[i] = 0;
}

/* Reaps PID (already killed or exiting) and forgets it; its wait status. */
static int kid_reap(pid_t pid)
{
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    kid_forget(pid);
    return st;
}

/* Reaps PID within GRACE_S seconds, else kills it; its wait status, and
 * *KILLED says whether it had to be killed. */
static int kid_reap_grace(pid_t pid, bool *killed)
{
    uint64_t deadline = tguard_now_ns() + (uint64_t)GRACE_S * 1000000000u;
    int st = 0;
    pid_t k;
    while ((k = waitpid(pid, &st, WNOHANG)) == 0 && tguard_now_ns() < deadline)
        usleep(10000);
    *killed = k == 0;
    if (k == 0) {
        kill(pid, SIGKILL);
        return kid_reap(pid);
    }
    kid_forget(pid);
    return st;
}

/* Async-signal-safe: SIGKILL and reap every child still known. */
static void kids_kill_all(void)
{
    for (size_t i = 0; i < sizeof(g_kids) / sizeof(g_kids[0]); i++)
        if (g_kids[i] > 0)
            kill(g_kids[i], SIGKILL);
    for (size_t i = 0; i < sizeof(g_kids) / sizeof(g_kids[0]); i++)
        if (g_kids[i] > 0) {
            while (waitpid(g_kids[i], NULL, 0) < 0 && errno == EINTR)
                ;
            g_kids[i] = 0;
        }
}

/* Async-signal-safe. */
static void remove_dir(void)
{
    if (!g_dir[0] || g_keep_dir)
        return;
    for (int w = 0; w < NWORK; w++)
        unlink(g_hist_path[w]);
    rmdir(g_dir);
}

/* Async-signal-safe: tguard's cleanup, on every way out of the parent. */
static void cleanup(void)
{
    kids_kill_all();
    remove_dir();
}

/* DEMI_TXN_BANK_HOSTS, parsed: replicas first, then clients. */
struct host {
    char ns[64], ifname[32], ip[INET_ADDRSTRLEN];
    char config[256]; /* "": none */
};
static struct host g_host[NHOSTS];
static bool g_netns;

static int hosts_parse(const char *spec)
{
    char buf[4096];
    if ((size_t)snprintf(buf, sizeof(buf), "%s", spec) >= sizeof(buf)) {
        fprintf(stderr, "DEMI_TXN_BANK_HOSTS: longer than %zu bytes\n", sizeof(buf) - 1);
        return EINVAL;
    }
    char *save = NULL, *tok = strtok_r(buf, " ", &save);
    int n = 0;
    for (; tok && n < NHOSTS; tok = strtok_r(NULL, " ", &save), n++) {
        struct host *h = &g_host[n];
        struct in_addr a;
        int got = sscanf(tok, "%63[^,],%31[^,],%15[^,],%255s", h->ns, h->ifname, h->ip, h->config);
        if (got < 3 || inet_pton(AF_INET, h->ip, &a) != 1) {
            fprintf(stderr, "DEMI_TXN_BANK_HOSTS: expected NS,IF,IP[,CONFIG], got \"%s\"\n", tok);
            return EINVAL;
        }
        if (got == 3)
            h->config[0] = '\0';
    }
    if (n != NHOSTS || tok) {
        fprintf(stderr, "DEMI_TXN_BANK_HOSTS: expected %d hosts (%d replicas, then %d clients)\n", NHOSTS,
                NSHARDS * NREPL, NWORK);
        return EINVAL;
    }
    g_netns = true;
    return 0;
}

/* In a child, before libdemi starts: moves into host I's namespace and
 * gives libdemi its interface and address (no-op without hosts). */
static int host_enter(int i)
{
    if (!g_netns)
        return 0;
    char path[128];
    snprintf(path, sizeof(path), "/run/netns/%s", g_host[i].ns);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
        fprintf(stderr, "host %d: cannot enter namespace %s: %s\n", i, g_host[i].ns, strerror(errno));
        return errno;
    }
    close(fd);
    setenv("LINUX_INTERFACE_NAME", g_host[i].ifname, 1);
    setenv("LOCAL_IPV4_ADDR", g_host[i].ip, 1);
    if (g_host[i].config[0])
        setenv("CONFIG_PATH", g_host[i].config, 1);
    return 0;
}

/* In a new child: default signals, and death with the parent. */
static void child_setup(void)
{
    int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGALRM, SIGPIPE};
    alarm(0);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        signal(sigs[i], SIG_DFL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != tguard_parent)
        _exit(1);
}

static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Reads exactly N bytes, waiting at most TIMEOUT_S for each part. 0,
 * ETIMEDOUT, EPIPE (end of file) or an errno. */
static int read_full(int fd, void *buf, size_t n, int timeout_s)
{
    uint8_t *p = buf;
    while (n) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int k = poll(&pf, 1, timeout_s * 1000);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return k == 0 ? ETIMEDOUT : errno;
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r == 0 ? EPIPE : errno;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* ---- The replicas. ---- */

struct server {
    pid_t pid;
    char ip[INET_ADDRSTRLEN];
    uint16_t port;
    int out; /* its stdout (kept open: a later write must not get EPIPE) */
};

static struct server g_srv[NSHARDS][NREPL];
static uint16_t g_ports[NSHARDS * NREPL]; /* the cluster's, once started */
static char g_exe[512];

/* N distinct free ports: bound to port 0 at the same time, then closed
 * (across namespaces every replica has its own address: TXN_PORT). */
static int pick_ports(uint16_t *ports, int n)
{
    if (g_netns) {
        for (int i = 0; i < n; i++)
            ports[i] = TXN_PORT;
        return 0;
    }
    int fds[NSHARDS * NREPL], e = 0, i;
    for (i = 0; i < n && !e; i++) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(a);
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&a, sizeof(a)) != 0 ||
            getsockname(fds[i], (struct sockaddr *)&a, &len) != 0)
            e = errno ? errno : EIO;
        ports[i] = ntohs(a.sin_port);
        if (fds[i] < 0)
            break;
    }
    for (int j = 0; j < i; j++)
        if (fds[j] >= 0)
            close(fds[j]);
    return e;
}

static int start_server(int s, int r, const uint16_t *ports, const char *extra)
{
    char addr[32], list[128] = "", idx[16];
    const char *ip = g_netns ? g_host[s * NREPL + r].ip : "127.0.0.1";
    snprintf(addr, sizeof(addr), "%s:%u", ip, ports[s * NREPL + r]);
    for (int i = 0; i < NREPL; i++)
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s:%u", i ? "," : "",
                 g_netns ? g_host[s * NREPL + i].ip : "127.0.0.1", ports[s * NREPL + i]);
    snprintf(idx, sizeof(idx), "%d", r);
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return errno;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return errno;
    }
    if (pid == 0) {
        child_setup();
        dup2(p[1], 1);
        if (host_enter(s * NREPL + r))
            _exit(126);
        execl(g_exe, g_exe, "--mode", "occ", "--addr", addr, "--replicas", list, "--index", idx, extra, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    kid_add(pid);
    g_srv[s][r] = (struct server){.pid = pid, .port = ports[s * NREPL + r], .out = p[0]};
    snprintf(g_srv[s][r].ip, sizeof(g_srv[s][r].ip), "%s", ip);
    return 0;
}

/* Reads SV's standard output until a line that starts with WANT (put in
 * LINE, LEN bytes), for at most READY_S seconds (a hang guard). 0 or EIO. */
/* As wait_out, for a line that starts with @want or with @alt. */
static int wait_out2(const struct server *sv, const char *want, const char *alt, char *line, size_t len);

static int wait_out(const struct server *sv, const char *want, char *line, size_t len)
{
    return wait_out2(sv, want, NULL, line, len);
}

static int wait_out2(const struct server *sv, const char *want, const char *alt, char *line, size_t len)
{
    size_t got = 0;
    uint64_t deadline = tguard_now_ns() + (uint64_t)READY_S * 1000000000u;
    line[0] = '\0';
    while (tguard_now_ns() < deadline && got < len - 1) {
        char *nl = strchr(line, '\n');
        if (nl && (strncmp(line, want, strlen(want)) == 0 || (alt && strncmp(line, alt, strlen(alt)) == 0))) {
            *nl = '\0';
            return 0;
        }
        if (nl) { /* another line: dropped */
            got -= (size_t)(nl + 1 - line);
            memmove(line, nl + 1, got + 1);
            continue;
        }
        struct pollfd pf = {.fd = sv->out, .events = POLLIN};
        if (poll(&pf, 1, 1000) <= 0)
            continue;
        /* One byte at a time: what follows the line stays in the pipe. */
        ssize_t k = read(sv->out, line + got, 1);
        if (k <= 0)
            break;
        got += (size_t)k;
        line[got] = '\0';
    }
    fprintf(stderr, "demi-txnd on %s:%u: no \"%s\" line (got \"%.*s\")\n", sv->ip, sv->port, want,
            (int)strcspn(line, "\n"), line);
    return EIO;
}

/* Waits for SV's "ready IP:PORT" line. */
static int wait_ready(const struct server *sv)
{
    char want[64], line[128];
    snprintf(want, sizeof(want), "ready %s:%u", sv->ip, sv->port);
    return wait_out(sv, want, line, sizeof(line));
}

/* Stops every replica with SIG and reaps it. With SIGTERM each must exit
 * 0 (its clean exit) within GRACE_S; returns 1 when one did not. */
static int stop_servers(int sig)
{
    int bad = 0;
    for (int s = 0; s < NSHARDS; s++)
        for (int r = 0; r < NREPL; r++)
            if (g_srv[s][r].pid > 0)
                kill(g_srv[s][r].pid, sig);
    for (int s = 0; s < NSHARDS; s++)
        for (int r = 0; r < NREPL; r++) {
            struct server *sv = &g_srv[s][r];
            bool killed = false;
            int st = sv->pid > 0 ? kid_reap_grace(sv->pid, &killed) : 0;
            if (sv->pid > 0 && sig == SIGTERM && (killed || !WIFEXITED(st) || WEXITSTATUS(st) != 0)) {
                fprintf(stderr, "replica %d of shard %d: no clean exit on SIGTERM (%s, status 0x%x)\n", r, s,
                        killed ? "killed after the grace time" : "ended", st);
                bad = 1;
            }
            if (sv->out >= 0)
                close(sv->out);
            *sv = (struct server){.out = -1};
        }
    return bad;
}

/* Starts every replica on fresh free ports, the backups first (a primary
 * that finds them listening links to them at once); a port taken by
 * someone else in between makes a replica fail, and the whole start is
 * retried. */
static int start_cluster(void)
{
    for (int attempt = 0; attempt < START_TRIES; attempt++) {
        uint16_t ports[NSHARDS * NREPL];
        int e = pick_ports(ports, NSHARDS * NREPL);
        for (int primaries = 0; primaries < 2; primaries++) {
            for (int s = 0; s < NSHARDS && !e; s++)
                for (int r = primaries ? 0 : 1; r < (primaries ? 1 : NREPL) && !e; r++)
                    e = start_server(s, r, ports, NULL);
            for (int s = 0; s < NSHARDS && !e; s++)
                for (int r = primaries ? 0 : 1; r < (primaries ? 1 : NREPL) && !e; r++)
                    e = wait_ready(&g_srv[s][r]);
        }
        if (!e) {
            memcpy(g_ports, ports, sizeof(ports));
            return 0;
        }
        fprintf(stderr, "starting the replicas failed (%s); retrying on other ports\n", strerror(e));
        stop_servers(SIGKILL);
    }
    return EIO;
}

/* ---- Histories and the checker. ---- */

struct hop {
    uint32_t key;
    uint64_t ver; /* reads: the version read (0: none); writes: unused (the txn's ts) */
    int64_t val;
};

struct htx {
    uint32_t worker;
    uint64_t seq, start, end, ts;
    uint32_t r0, nr, w0, nw; /* into hist.rd / hist.wr */
};

struct hist {
    struct htx *tx;
    size_t ntx, txcap;
    struct hop *rd, *wr;
    size_t nrd, rdcap, nwr, wrcap;
    char **keys; /* interned; few (the accounts), so found by linear search */
    uint32_t nkeys, keycap;
};

static void hist_free(struct hist *h)
{
    for (uint32_t i = 0; i < h->nkeys; i++)
        free(h->keys[i]);
    free(h->keys);
    free(h->tx);
    free(h->rd);
    free(h->wr);
    memset(h, 0, sizeof(*h));
}

/* Makes room for one more element of SIZE bytes in *P (*N used, *CAP). */
static int grow(void **p, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 64;
    void *q = realloc(*p, c * size);
    if (!q)
        return ENOMEM;
    *p = q;
    *cap = c;
    return 0;
}

static int key_id(struct hist *h, const char *name, uint32_t *id)
{
    for (uint32_t i = 0; i < h->nkeys; i++)
        if (strcmp(h->keys[i], name) == 0) {
            *id = i;
            return 0;
        }
    size_t cap = h->keycap;
    if (grow((void **)&h->keys, &cap, h->nkeys, sizeof(char *)))
        return ENOMEM;
    h->keycap = (uint32_t)cap;
    if (!(h->keys[h->nkeys] = strdup(name)))
        return ENOMEM;
    *id = h->nkeys++;
    return 0;
}

static int tok_u64(char **save, uint64_t *v)
{
    char *t = strtok_r(NULL, " \t", save), *end;
    if (!t)
        return EINVAL;
    errno = 0;
    *v = strtoull(t, &end, 10);
    return errno || *end || t[0] == '-' ? EINVAL : 0;
}

/* A value: decimal, or "-" for the value of an absent key. */
static int tok_val(char **save, int64_t *v)
{
    char *t = strtok_r(NULL, " \t", save), *end;
    if (!t)
        return EINVAL;
    if (strcmp(t, "-") == 0) {
        *v = 0;
        return 0;
    }
    errno = 0;
    *v = strtoll(t, &end, 10);
    return errno || *end ? EINVAL : 0;
}

static int tok_key(struct hist *h, char **save, uint32_t *id)
{
    char *t = strtok_r(NULL, " \t", save);
    return t ? key_id(h, t, id) : EINVAL;
}

/* One line: "T worker seq start end ts nr nw", nr x "key ver val", nw x
 * "key val". The writes' version is ts. */
static int hist_parse_line(struct hist *h, char *line)
{
    char *save, *t = strtok_r(line, " \t", &save);
    if (!t || t[0] == '#')
        return 0;
    if (strcmp(t, "T") != 0)
        return EINVAL;
    uint64_t w, nr, nw;
    struct htx x = {0};
    if (tok_u64(&save, &w) || tok_u64(&save, &x.seq) || tok_u64(&save, &x.start) || tok_u64(&save, &x.end) ||
        tok_u64(&save, &x.ts) || tok_u64(&save, &nr) || tok_u64(&save, &nw) || nr > 1000 || nw > 1000)
        return EINVAL;
    x.worker = (uint32_t)w;
    x.nr = (uint32_t)nr;
    x.nw = (uint32_t)nw;
    x.r0 = (uint32_t)h->nrd;
    x.w0 = (uint32_t)h->nwr;
    for (uint64_t i = 0; i < nr; i++) {
        struct hop o;
        if (grow((void **)&h->rd, &h->rdcap, h->nrd, sizeof(o)))
            return ENOMEM;
        if (tok_key(h, &save, &o.key) || tok_u64(&save, &o.ver) || tok_val(&save, &o.val))
            return EINVAL;
        h->rd[h->nrd++] = o;
    }
    for (uint64_t i = 0; i < nw; i++) {
        struct hop o = {.ver = x.ts};
        if (grow((void **)&h->wr, &h->wrcap, h->nwr, sizeof(o)))
            return ENOMEM;
        if (tok_key(h, &save, &o.key) || tok_val(&save, &o.val))
            return EINVAL;
        h->wr[h->nwr++] = o;
    }
    if (strtok_r(NULL, " \t", &save) || x.end < x.start)
        return EINVAL;
    if (grow((void **)&h->tx, &h->txcap, h->ntx, sizeof(x)))
        return ENOMEM;
    h->tx[h->ntx++] = x;
    return 0;
}

/* Parses TEXT (changed in place) into H, adding to what it holds. */
static int hist_parse(struct hist *h, char *text, const char *what)
{
    char *save, *line = strtok_r(text, "\n", &save);
    for (size_t n = 1; line; n++, line = strtok_r(NULL, "\n", &save)) {
        int e = hist_parse_line(h, line);
        if (e) {
            fprintf(stderr, "%s: line %zu: malformed history record (%s)\n", what, n, strerror(e));
            return e;
        }
    }
    return 0;
}

static int hist_load_file(struct hist *h, const char *path)
{
    FILE *f = fopen(path, "r");
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0) {
        int e = errno;
        fprintf(stderr, "%s: %s\n", path, strerror(e));
        if (f)
            fclose(f);
        return e;
    }
    size_t len = (size_t)st.st_size;
    char *buf = malloc(len + 1);
    int e = buf && fread(buf, 1, len, f) == len ? 0 : EIO;
    fclose(f);
    if (!e) {
        buf[len] = '\0';
        e = hist_parse(h, buf, path);
    }
    free(buf);
    return e;
}

/* A committed write, as the checker indexes them: sorted by (key, ver). */
struct hver {
    uint32_t key, tx;
    uint64_t ver;
    int64_t val;
};

enum ekind { E_WW, E_WR, E_RW, E_RT };

struct hedge {
    uint32_t from, to, key;
    uint8_t kind;
};

struct hcheck {
    const struct hist *h;
    FILE *out;
    struct hver *v;
    size_t nv;
    struct hedge *e;
    size_t ne, ecap;
    uint32_t nnodes;          /* ntx transactions, then ntx time nodes */
    uint32_t *off, *to, *eix; /* CSR: the edges of node u are off[u]..off[u+1] */
    int bad;                  /* violations reported */
};

static uint64_t g_t0; /* times are printed relative to this */

static void print_tx(const struct hcheck *c, uint32_t t)
{
    const struct hist *h = c->h;
    const struct htx *x = &h->tx[t];
    fprintf(c->out, "    txn %u/%" PRIu64 " [%.3f ms .. %.3f ms] ts %" PRIu64 " reads:", x->worker, x->seq,
            (double)(x->start - g_t0) / 1e6, (double)(x->end - g_t0) / 1e6, x->ts);
    for (uint32_t i = 0; i < x->nr; i++) {
        const struct hop *o = &h->rd[x->r0 + i];
        fprintf(c->out, " %s@%" PRIu64 "=%" PRId64, h->keys[o->key], o->ver, o->val);
    }
    fprintf(c->out, " writes:");
    for (uint32_t i = 0; i < x->nw; i++) {
        const struct hop *o = &h->wr[x->w0 + i];
        fprintf(c->out, " %s=%" PRId64, h->keys[o->key], o->val);
    }
    fprintf(c->out, "\n");
}

static int hver_cmp(const void *a, const void *b)
{
    const struct hver *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->ver < y->ver ? -1 : x->ver > y->ver;
}

/* The index of the first version >= (KEY, VER). */
static size_t hver_lower(const struct hcheck *c, uint32_t key, uint64_t ver)
{
    size_t lo = 0, hi = c->nv;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct hver *m = &c->v[mid];
        if (m->key < key || (m->key == key && m->ver < ver))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int add_edge(struct hcheck *c, uint32_t from, uint32_t to, uint32_t key, enum ekind kind)
{
    if (from == to)
        return 0; /* a transaction reading then overwriting its own input */
    if (grow((void **)&c->e, &c->ecap, c->ne, sizeof(struct hedge)))
        return ENOMEM;
    c->e[c->ne++] = (struct hedge){.from = from, .to = to, .key = key, .kind = (uint8_t)kind};
    return 0;
}

/* Indexes every committed write; two writes of one version are a
 * violation. Adds the WW edges (consecutive versions of a key). */
static int index_versions(struct hcheck *c)
{
    const struct hist *h = c->h;
    c->v = malloc((h->nwr ? h->nwr : 1) * sizeof(*c->v));
    if (!c->v)
        return ENOMEM;
    for (uint32_t t = 0; t < h->ntx; t++)
        for (uint32_t i = 0; i < h->tx[t].nw; i++) {
            const struct hop *o = &h->wr[h->tx[t].w0 + i];
            c->v[c->nv++] = (struct hver){.key = o->key, .tx = t, .ver = o->ver, .val = o->val};
        }
    qsort(c->v, c->nv, sizeof(*c->v), hver_cmp);
    for (size_t i = 1; i < c->nv; i++) {
        if (c->v[i].key != c->v[i - 1].key)
            continue;
        if (c->v[i].ver == c->v[i - 1].ver) {
            fprintf(c->out, "  violation: two transactions wrote version %" PRIu64 " of %s:\n", c->v[i].ver,
                    h->keys[c->v[i].key]);
            print_tx(c, c->v[i - 1].tx);
            print_tx(c, c->v[i].tx);
            c->bad++;
        } else if (add_edge(c, c->v[i - 1].tx, c->v[i].tx, c->v[i].key, E_WW)) {
            return ENOMEM;
        }
    }
    return 0;
}

/* Checks one read of transaction T and adds its WR and RW edges. */
static int check_read(struct hcheck *c, uint32_t t, const struct hop *o)
{
    const struct hist *h = c->h;
    if (o->ver == UINT64_MAX)
        return 0; /* served from the transaction's own write */
    size_t i = hver_lower(c, o->key, o->ver ? o->ver : 1);
    bool found = o->ver && i < c->nv && c->v[i].key == o->key && c->v[i].ver == o->ver;
    if (o->ver && !found) {
        fprintf(c->out, "  violation: read of %s version %" PRIu64 ", which nothing in the history wrote:\n",
                h->keys[o->key], o->ver);
        print_tx(c, t);
        c->bad++;
        return 0;
    }
    if (found && c->v[i].val != o->val) {
        fprintf(c->out,
                "  violation: read %s=%" PRId64 " at version %" PRIu64 ", but that version holds %" PRId64 ":\n",
                h->keys[o->key], o->val, o->ver, c->v[i].val);
        print_tx(c, t);
        print_tx(c, c->v[i].tx);
        c->bad++;
        return 0;
    }
    if (found && add_edge(c, c->v[i].tx, t, o->key, E_WR))
        return ENOMEM;
    size_t next = found ? i + 1 : i;
    if (next < c->nv && c->v[next].key == o->key && add_edge(c, t, c->v[next].tx, o->key, E_RW))
        return ENOMEM;
    return 0;
}

static const struct hist *g_sort_h;

static int end_cmp(const void *a, const void *b)
{
    uint64_t x = g_sort_h->tx[*(const uint32_t *)a].end, y = g_sort_h->tx[*(const uint32_t *)b].end;
    return x < y ? -1 : x > y;
}

/* Real-time order in O(n) edges: time node n+k stands for the k-th end
 * (sorted); T -> its end's node, node k -> node k+1, and node k -> T when
 * end k < T's start. So T1 reaches T2 through time nodes iff T1 ended
 * before T2 started. */
static int add_realtime(struct hcheck *c)
{
    const struct hist *h = c->h;
    uint32_t n = (uint32_t)h->ntx;
    uint32_t *ord = malloc((n ? n : 1) * sizeof(*ord));
    if (!ord)
        return ENOMEM;
    for (uint32_t i = 0; i < n; i++)
        ord[i] = i;
    g_sort_h = h;
    qsort(ord, n, sizeof(*ord), end_cmp);
    int e = 0;
    for (uint32_t k = 0; k < n && !e; k++) {
        e = add_edge(c, ord[k], n + k, UINT32_MAX, E_RT);
        if (!e && k + 1 < n)
            e = add_edge(c, n + k, n + k + 1, UINT32_MAX, E_RT);
    }
    for (uint32_t t = 0; t < n && !e; t++) {
        uint32_t lo = 0, hi = n; /* the number of ends before t's start */
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo) / 2;
            if (h->tx[ord[mid]].end < h->tx[t].start)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo > 0)
            e = add_edge(c, n + lo - 1, t, UINT32_MAX, E_RT);
    }
    free(ord);
    return e;
}

static int build_csr(struct hcheck *c)
{
    c->off = calloc((size_t)c->nnodes + 1, sizeof(uint32_t));
    c->to = malloc((c->ne ? c->ne : 1) * sizeof(uint32_t));
    c->eix = malloc((c->ne ? c->ne : 1) * sizeof(uint32_t));
    if (!c->off || !c->to || !c->eix)
        return ENOMEM;
    for (size_t i = 0; i < c->ne; i++)
        c->off[c->e[i].from + 1]++;
    for (uint32_t u = 0; u < c->nnodes; u++)
        c->off[u + 1] += c->off[u];
    uint32_t *fill = malloc(((size_t)c->nnodes + 1) * sizeof(uint32_t));
    if (!fill)
        return ENOMEM;
    memcpy(fill, c->off, ((size_t)c->nnodes + 1) * sizeof(uint32_t));
    for (size_t i = 0; i < c->ne; i++) {
        uint32_t at = fill[c->e[i].from]++;
        c->to[at] = c->e[i].to;
        c->eix[at] = (uint32_t)i;
    }
    free(fill);
    return 0;
}

static void print_edge(const struct hcheck *c, const struct hedge *e)
{
    static const char *names[] = {"WW", "WR", "RW (anti-dependency)", "real time"};
    if (e->kind == E_RT)
        fprintf(c->out, "      --> real time (ended before the next one started)\n");
    else
        fprintf(c->out, "      --> %s on %s\n", names[e->kind], c->h->keys[e->key]);
}

#define CYCLE_TRIES 64 /* transactions of the cycle found to search a shorter one from */

/* 0-1 BFS from transaction S, counting the transactions on a path (an edge
 * into a time node costs 0): the shortest way back to S. Returns the
 * number of transactions on that cycle (0: none); PIN[x] is the CSR slot
 * of the edge that reached x, *LAST the slot of the edge closing it. */
static uint32_t shortest_back(const struct hcheck *c, uint32_t s, uint32_t *dist, uint32_t *pin, uint32_t *dq,
                              uint32_t *last)
{
    uint32_t nn = c->nnodes, ntx = (uint32_t)c->h->ntx, best = UINT32_MAX;
    size_t cap = c->ne + 2, head = 0, len = 0;
    for (uint32_t i = 0; i < nn; i++)
        dist[i] = UINT32_MAX;
    dist[s] = 0;
    dq[0] = s;
    len = 1;
    while (len) {
        uint32_t u = dq[head];
        head = (head + 1) % cap;
        len--;
        if (dist[u] >= best)
            continue;
        for (uint32_t at = c->off[u]; at < c->off[u + 1]; at++) {
            uint32_t v = c->to[at], w = v < ntx, d = dist[u] + w;
            if (v == s && d < best) {
                best = d;
                *last = at;
            } else if (v != s && d < dist[v] && len < cap) {
                dist[v] = d;
                pin[v] = at;
                if (w) {
                    dq[(head + len) % cap] = v;
                } else {
                    head = (head + cap - 1) % cap;
                    dq[head] = v;
                }
                len++;
            }
        }
    }
    return best == UINT32_MAX ? 0 : best;
}

/* Prints the cycle through S closed by CSR slot LAST, from PIN, skipping
 * time nodes (a chain of them is one real-time edge). */
static void print_cycle(const struct hcheck *c, uint32_t s, uint32_t last, const uint32_t *pin, uint32_t ntxn)
{
    uint32_t ntx = (uint32_t)c->h->ntx, at = last, k = 0, shown = 0;
    uint32_t *slots = malloc(((size_t)c->nnodes + 1) * sizeof(uint32_t));
    fprintf(c->out, "  violation: the serialization graph has a cycle through %u transactions:\n", ntxn);
    if (!slots)
        return;
    for (;;) { /* walk back from the closing edge to S */
        slots[k++] = at;
        uint32_t from = c->e[c->eix[at]].from;
        if (from == s || k > c->nnodes)
            break;
        at = pin[from];
    }
    for (uint32_t i = k; i-- > 0 && shown < 40;) {
        const struct hedge *e = &c->e[c->eix[slots[i]]];
        if (e->from >= ntx)
            continue;
        print_tx(c, e->from);
        print_edge(c, e);
        shown++;
    }
    fprintf(c->out, "    %s(back to the first one)\n", shown == 40 ? "... " : "");
    free(slots);
}

/* Reports a short cycle through one of the transactions of the cycle that
 * the DFS found (STACK[FROM..TOP]). */
static int report_cycle(const struct hcheck *c, const uint32_t *stack, size_t from, size_t top)
{
    uint32_t nn = c->nnodes, ntx = (uint32_t)c->h->ntx;
    uint32_t *dist = malloc(nn * sizeof(uint32_t)), *pin = malloc(nn * sizeof(uint32_t));
    uint32_t *dq = malloc((c->ne + 2) * sizeof(uint32_t)), *pin_best = malloc(nn * sizeof(uint32_t));
    int e = dist && pin && dq && pin_best ? 0 : ENOMEM;
    uint32_t best = UINT32_MAX, best_s = 0, best_last = 0, ntxn = 0, seen = 0;
    for (size_t i = from; i <= top; i++)
        ntxn += stack[i] < ntx;
    uint32_t step = ntxn > CYCLE_TRIES ? ntxn / CYCLE_TRIES : 1; /* spread the tries over the cycle */
    for (size_t i = from; i <= top && !e; i++) {
        uint32_t last = 0, len;
        if (stack[i] >= ntx || seen++ % step != 0)
            continue;
        len = shortest_back(c, stack[i], dist, pin, dq, &last);
        if (len && len < best) {
            best = len;
            best_s = stack[i];
            best_last = last;
            memcpy(pin_best, pin, nn * sizeof(uint32_t));
        }
    }
    if (!e && best != UINT32_MAX)
        print_cycle(c, best_s, best_last, pin_best, best);
    else if (!e)
        fprintf(c->out, "  violation: the serialization graph has a cycle (%zu nodes)\n", top - from + 1);
    free(dist);
    free(pin);
    free(dq);
    free(pin_best);
    return e;
}

/* Iterative DFS (no recursion: the graph has 2n nodes); reports the first
 * cycle found. */
static int find_cycle(struct hcheck *c)
{
    uint32_t nn = c->nnodes;
    uint8_t *color = calloc(nn ? nn : 1, 1);
    uint32_t *stack = malloc((nn ? nn : 1) * sizeof(uint32_t));
    uint32_t *pos = malloc((nn ? nn : 1) * sizeof(uint32_t));
    uint32_t *where = malloc((nn ? nn : 1) * sizeof(uint32_t));
    int e = color && stack && pos && where ? 0 : ENOMEM;
    for (uint32_t root = 0; root < nn && !e && !c->bad; root++) {
        if (color[root])
            continue;
        size_t sp = 0;
        stack[0] = root;
        pos[0] = c->off[root];
        where[root] = 0;
        color[root] = 1;
        while (!c->bad && !e) {
            uint32_t u = stack[sp];
            if (pos[sp] == c->off[u + 1]) {
                color[u] = 2;
                if (sp-- == 0)
                    break;
                continue;
            }
            uint32_t v = c->to[pos[sp]++];
            if (color[v] == 1) {
                e = report_cycle(c, stack, where[v], sp);
                c->bad++;
            } else if (color[v] == 0) {
                color[v] = 1;
                stack[++sp] = v;
                pos[sp] = c->off[v];
                where[v] = (uint32_t)sp;
            }
        }
    }
    free(color);
    free(stack);
    free(pos);
    free(where);
    return e;
}

static void hcheck_free(struct hcheck *c)
{
    free(c->v);
    free(c->e);
    free(c->off);
    free(c->to);
    free(c->eix);
}

/* Checks H (see the file's comment), reporting to OUT under LABEL. Returns
 * 0 when strictly serializable, 1 when not, or an errno. */
static int check_history(const struct hist *h, FILE *out, const char *label)
{
    struct hcheck c = {.h = h, .out = out, .nnodes = (uint32_t)(2 * h->ntx)};
    if (h->ntx >= UINT32_MAX / 4)
        return EOVERFLOW;
    g_t0 = UINT64_MAX;
    for (size_t t = 0; t < h->ntx; t++)
        g_t0 = h->tx[t].start < g_t0 ? h->tx[t].start : g_t0;
    int e = index_versions(&c);
    for (uint32_t t = 0; t < h->ntx && !e && c.bad < 10; t++)
        for (uint32_t i = 0; i < h->tx[t].nr && !e; i++)
            e = check_read(&c, t, &h->rd[h->tx[t].r0 + i]);
    if (!e && !c.bad)
        e = add_realtime(&c);
    if (!e && !c.bad)
        e = build_csr(&c);
    if (!e && !c.bad)
        e = find_cycle(&c);
    if (e)
        fprintf(out, "%s: the checker failed: %s\n", label, strerror(e));
    else if (c.bad)
        fprintf(out, "%s: NOT strictly serializable (%zu transactions; violations above)\n", label, h->ntx);
    hcheck_free(&c);
    return e ? e : c.bad ? 1 : 0;
}

/* ---- The checker's self-test: hand-made histories. ---- */

struct hcase {
    const char *name;
    bool good;
    const char *text;
};

#define LOAD_XY "T 9 1 0 10 1 0 1 x 100\nT 9 2 0 10 1 0 1 y 100\n"

static const struct hcase g_cases[] = {
    {"serializable transfers, a read-only audit, an absent key", true,
     LOAD_XY "T 0 1 20 30 5 3 2 x 1 100 y 1 100 z 0 - x 90 y 110\n"
             "T 1 1 25 40 7 2 0 x 5 90 y 5 110\n"
             "T 1 2 50 60 8 1 1 x 5 90 x 80\n"
             "T 0 2 55 70 9 2 1 x 8 80 y 5 110 y 120\n"},
    {"write skew (two RW anti-dependencies)", false,
     LOAD_XY "T 0 1 20 40 5 2 1 x 1 100 y 1 100 x 0\nT 1 1 21 41 6 2 1 x 1 100 y 1 100 y 0\n"},
    {"lost update (both read version 1, both write)", false,
     LOAD_XY "T 0 1 20 40 5 1 1 x 1 100 x 110\nT 1 1 21 41 6 1 1 x 1 100 x 120\n"},
    {"stale read after a commit ended (real time)", false,
     LOAD_XY "T 0 1 20 30 5 1 1 x 1 100 x 110\nT 1 1 40 50 6 1 0 x 1 100\n"},
    {"read of a version nobody wrote", false, LOAD_XY "T 1 1 40 50 6 1 0 x 3 100\n"},
    {"read of a wrong value", false, LOAD_XY "T 1 1 40 50 6 1 0 x 1 99\n"},
    {"two writes of one version", false, LOAD_XY "T 0 1 20 30 5 0 1 x 1\nT 1 1 20 30 5 0 1 x 2\n"},
    {"fractured read (an audit sees half a transfer)", false,
     LOAD_XY "T 0 1 20 30 5 2 2 x 1 100 y 1 100 x 90 y 110\nT 1 1 22 33 6 2 0 x 5 90 y 1 100\n"},
};

static int self_test(void)
{
    int failed = 0;
    for (size_t i = 0; i < sizeof(g_cases) / sizeof(g_cases[0]); i++) {
        const struct hcase *k = &g_cases[i];
        struct hist h = {0};
        char *text = strdup(k->text), *report = NULL;
        size_t rlen = 0;
        FILE *out = open_memstream(&report, &rlen);
        int e = text && out ? hist_parse(&h, text, k->name) : ENOMEM;
        if (!e)
            e = check_history(&h, out, k->name);
        if (out)
            fclose(out);
        bool ok = k->good ? e == 0 : e == 1;
        printf("checker self-test: %-55s %s\n", k->name, ok ? (k->good ? "passed" : "flagged") : "WRONG");
        if (!ok) {
            fprintf(stderr, "checker self-test '%s': expected %s, got %d; its report:\n%s", k->name,
                    k->good ? "a pass" : "a violation", e, report ? report : "");
            failed = 1;
        }
        free(report);
        free(text);
        hist_free(&h);
    }
    return failed;
}

/* ---- The clients (forked workers). ---- */

enum { CMD_LOAD = 'L', CMD_RUN = 'R', CMD_AUDIT = 'A', CMD_QUIT = 'Q' };

struct wcmd {
    uint32_t op;
    uint32_t target; /* CMD_RUN: more committed transfers to make */
};

struct wres {
    int32_t status; /* 0, or 1: a violation or an error (the worker printed it) */
    uint32_t pad;
    uint64_t committed, transfers, aborted, audits, audit_aborts, audit_starved, errors;
    uint64_t ver[NACCT];
    int64_t bal[NACCT];
};

struct worker {
    int id;
    struct txc *c;
    FILE *hist;
    uint64_t rng, seq;
    struct wres res;
};

/* One committed transaction, as the history records it. */
struct txrec {
    uint64_t start, end, ts;
    uint32_t nr, nw;
    struct {
        int acct;
        uint64_t ver;
        int64_t val;
    } rd[NACCT];
    struct {
        int acct;
        int64_t val;
    } wr[2];
};

static void acct_key(int a, char *buf, size_t cap)
{
    snprintf(buf, cap, "acct%02d", a);
}

static void record(struct worker *w, const struct txrec *r)
{
    char k[16];
    fprintf(w->hist, "T %d %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %u %u", w->id, ++w->seq, r->start, r->end,
            r->ts, r->nr, r->nw);
    for (uint32_t i = 0; i < r->nr; i++) {
        acct_key(r->rd[i].acct, k, sizeof(k));
        fprintf(w->hist, " %s %" PRIu64 " %" PRId64, k, r->rd[i].ver, r->rd[i].val);
    }
    for (uint32_t i = 0; i < r->nw; i++) {
        acct_key(r->wr[i].acct, k, sizeof(k));
        fprintf(w->hist, " %s %" PRId64, k, r->wr[i].val);
    }
    fputc('\n', w->hist);
}

/* Strict decimal: an optional '-' then 1..18 digits. */
static int parse_amount(const uint8_t *v, size_t n, int64_t *out)
{
    size_t i = n && v[0] == '-';
    if (n - i < 1 || n - i > 18)
        return EBADMSG;
    int64_t x = 0;
    for (; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return EBADMSG;
        x = x * 10 + (v[i] - '0');
    }
    *out = n && v[0] == '-' ? -x : x;
    return 0;
}

/* Reads account A into the transaction's record. */
static int read_acct(struct worker *w, struct txrec *r, int a)
{
    char k[16];
    const uint8_t *v;
    size_t n;
    uint64_t ver = 0;
    acct_key(a, k, sizeof(k));
    int e = txc_get_ver(w->c, (const uint8_t *)k, strlen(k), &v, &n, &ver);
    if (e == ENOENT) {
        fprintf(stderr, "worker %d: %s not found, though it was loaded\n", w->id, k);
        return EBADMSG;
    }
    if (e)
        return e;
    int64_t bal;
    if (parse_amount(v, n, &bal)) {
        fprintf(stderr, "worker %d: %s holds \"%.*s\", not an amount\n", w->id, k, (int)(n < 64 ? n : 64),
                (const char *)v);
        return EBADMSG;
    }
    r->rd[r->nr].acct = a;
    r->rd[r->nr].ver = ver;
    r->rd[r->nr].val = bal;
    r->nr++;
    return 0;
}

static int write_acct(struct worker *w, struct txrec *r, int a, int64_t bal)
{
    char k[16], v[24];
    acct_key(a, k, sizeof(k));
    snprintf(v, sizeof(v), "%" PRId64, bal);
    r->wr[r->nw].acct = a;
    r->wr[r->nw].val = bal;
    r->nw++;
    return txc_put(w->c, (const uint8_t *)k, strlen(k), (const uint8_t *)v, strlen(v));
}

/* What a failed call means: EAGAIN is an abort to retry. A replica out of
 * reach (ECONNRESET, ETIMEDOUT; EIO: a primary without a majority of its
 * replicas answered UNAVAIL) also leaves the transaction aborted, and it
 * is retried after ERR_PAUSE_MS, at most ERRS_MAX times in all: a backup
 * is killed on purpose, and a primary links to its backups only after it
 * said "ready". Anything else fails the test: EINPROGRESS (the outcome is
 * unknown, so the history cannot be checked), EPROTO (a replica refused a
 * request), ENOSPC, EINVAL, or a value that is not an amount. */
static int on_error(struct worker *w, int e, const char *what)
{
    txc_abort(w->c);
    if (e == EAGAIN) {
        w->res.aborted++;
        return 0;
    }
    w->res.errors++;
    fprintf(stderr, "worker %d: %s: %s%s\n", w->id, what, strerror(e),
            e == EINPROGRESS ? " (outcome unknown: the history cannot be checked)" : "");
    if ((e != EIO && e != ETIMEDOUT && e != ECONNRESET) || w->res.errors > ERRS_MAX)
        return e;
    usleep(ERR_PAUSE_MS * 1000);
    return 0;
}

/* One transfer of X from A to B, retried until it commits. */
static int transfer(struct worker *w, int a, int b, int64_t x)
{
    for (int tries = 0; tries < TRIES_MAX; tries++) {
        if (tries >= BACKOFF_FROM) {
            int k = tries - BACKOFF_FROM;
            unsigned us = k >= 9 ? BACKOFF_MAX_US : 64u << k;
            usleep(us < BACKOFF_MAX_US ? us : BACKOFF_MAX_US);
        }
        struct txrec r = {.start = tguard_now_ns()};
        txc_begin(w->c);
        int e = read_acct(w, &r, a);
        if (!e)
            e = read_acct(w, &r, b);
        if (!e && r.rd[0].val >= x) {
            e = write_acct(w, &r, a, r.rd[0].val - x);
            if (!e)
                e = write_acct(w, &r, b, r.rd[1].val + x);
        }
        if (!e)
            e = txc_commit(w->c, &r.ts);
        r.end = tguard_now_ns();
        if (e) {
            if ((e = on_error(w, e, "transfer")))
                return e;
            continue;
        }
        record(w, &r);
        w->res.committed++;
        w->res.transfers++;
        if (r.rd[0].val < 0 || r.rd[1].val < 0) {
            fprintf(stderr, "worker %d: a committed transfer read a negative balance\n", w->id);
            return EDOM;
        }
        return 0;
    }
    fprintf(stderr, "worker %d: a transfer aborted %d times in a row\n", w->id, TRIES_MAX);
    return ETIMEDOUT;
}

/* Checks a committed audit: the total and no negative account. */
static int audit_ok(struct worker *w, const struct txrec *r)
{
    int64_t sum = 0;
    bool neg = false;
    for (uint32_t i = 0; i < r->nr; i++) {
        sum += r->rd[i].val;
        neg |= r->rd[i].val < 0;
        w->res.ver[i] = r->rd[i].ver;
        w->res.bal[i] = r->rd[i].val;
    }
    if (sum == (int64_t)NACCT * INITIAL && !neg)
        return 0;
    fprintf(stderr, "worker %d: VIOLATION: a committed audit saw a total of %" PRId64 " (expected %d)%s:\n", w->id, sum,
            NACCT * INITIAL, neg ? " and a negative balance" : "");
    for (uint32_t i = 0; i < r->nr; i++)
        fprintf(stderr, "  acct%02d@%" PRIu64 " = %" PRId64 "\n", r->rd[i].acct, r->rd[i].ver, r->rd[i].val);
    return EDOM;
}

/* An audit: every account in one transaction. An aborted one proves
 * nothing and is retried, up to TRIES (contention may starve it). */
static int audit(struct worker *w, int tries)
{
    for (int t = 0; t < tries; t++) {
        struct txrec r = {.start = tguard_now_ns()};
        txc_begin(w->c);
        int e = 0;
        for (int a = 0; a < NACCT && !e; a++)
            e = read_acct(w, &r, a);
        if (!e)
            e = txc_commit(w->c, &r.ts);
        r.end = tguard_now_ns();
        if (e) {
            if (e == EAGAIN)
                w->res.audit_aborts++;
            if ((e = on_error(w, e, "audit")))
                return e;
            continue;
        }
        record(w, &r);
        w->res.committed++;
        w->res.audits++;
        return audit_ok(w, &r);
    }
    w->res.audit_starved++;
    return 0;
}

/* Transfers (and audits now and then) until TARGET transfers committed. */
static int run_phase(struct worker *w, uint64_t target)
{
    uint64_t goal = w->res.transfers + target;
    int e = 0;
    while (!e && w->res.transfers < goal) {
        if (rnd(&w->rng) % AUDIT_ONE_IN == 0) {
            e = audit(w, AUDIT_TRIES);
            continue;
        }
        int a = (int)(rnd(&w->rng) % NACCT), b = (int)(rnd(&w->rng) % (NACCT - 1));
        b += b >= a;
        e = transfer(w, a, b, (int64_t)(1 + rnd(&w->rng) % MAX_X));
    }
    if (!e)
        e = audit(w, AUDIT_TRIES); /* the last ones, with less contention */
    return e;
}

/* Loads every account, then learns the versions the load wrote by reading
 * them back; the load is recorded as one transaction per account. */
static int load(struct worker *w)
{
    struct txrec ld[NACCT];
    for (int a = 0; a < NACCT; a++) {
        char k[16], v[16];
        acct_key(a, k, sizeof(k));
        snprintf(v, sizeof(v), "%d", INITIAL);
        ld[a] = (struct txrec){.start = tguard_now_ns(), .nw = 1, .wr[0] = {a, INITIAL}};
        int e = txc_load(w->c, (const uint8_t *)k, strlen(k), (const uint8_t *)v, strlen(v));
        ld[a].end = tguard_now_ns();
        if (e) {
            fprintf(stderr, "worker %d: txc_load %s: %s\n", w->id, k, strerror(e));
            return e;
        }
    }
    int e = audit(w, 100);
    if (e || w->res.audits != 1) {
        fprintf(stderr, "worker %d: reading the load back failed\n", w->id);
        return e ? e : EIO;
    }
    for (int a = 0; a < NACCT; a++) {
        if (w->res.ver[a] == 0 || w->res.ver[a] == UINT64_MAX || w->res.bal[a] != INITIAL) {
            fprintf(stderr, "worker %d: acct%02d reads back as %" PRId64 " at version %" PRIu64 "\n", w->id, a,
                    w->res.bal[a], w->res.ver[a]);
            return EIO;
        }
        ld[a].ts = w->res.ver[a];
        record(w, &ld[a]);
    }
    w->res.committed--; /* the read-back is not part of the bank's work */
    w->res.audits--;
    return 0;
}

static int worker_open(struct worker *w)
{
    int e = demi_init(NULL);
    if (e) {
        fprintf(stderr, "worker %d: demi_init: %s\n", w->id, strerror(e));
        return e;
    }
    struct txc_config cfg = {.mode = TXC_OCC,
                             .nshards = NSHARDS,
                             .nreplicas = NREPL,
                             .read_replica = (uint32_t)(w->id % 2),
                             .timeout_ms = CLIENT_MS,
                             .attempt_ms = ATTEMPT_MS};
    for (int s = 0; s < NSHARDS; s++)
        for (int r = 0; r < NREPL; r++) {
            cfg.replica[s][r] = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(g_srv[s][r].port)};
            inet_pton(AF_INET, g_srv[s][r].ip, &cfg.replica[s][r].sin_addr);
        }
    char err[256] = "";
    w->c = txc_open(&cfg, err, sizeof(err));
    if (!w->c) {
        fprintf(stderr, "worker %d: txc_open: %s\n", w->id, err);
        return EIO;
    }
    return 0;
}

static int worker_do(struct worker *w, const struct wcmd *cmd)
{
    switch (cmd->op) {
    case CMD_LOAD:
        return load(w);
    case CMD_RUN:
        return run_phase(w, cmd->target);
    case CMD_AUDIT:
        return audit(w, TRIES_MAX);
    default:
        return EINVAL;
    }
}

/* The client process: opens its history and client, then obeys CMD_FD
 * and answers on RES_FD until told to quit. */
static void worker_main(int id, int cmd_fd, int res_fd)
{
    struct worker w = {.id = id, .rng = 0x5eed0000u + (uint64_t)id};
    w.hist = fopen(g_hist_path[id], "w");
    int e = w.hist ? worker_open(&w) : errno;
    w.res.status = e != 0;
    if (write(res_fd, &w.res, sizeof(w.res)) != sizeof(w.res) || e)
        _exit(1);
    struct wcmd cmd = {0};
    while (read_full(cmd_fd, &cmd, sizeof(cmd), GUARD_S) == 0 && cmd.op != CMD_QUIT) {
        memset(w.res.ver, 0, sizeof(w.res.ver));
        e = worker_do(&w, &cmd);
        w.res.status = e != 0;
        if (fflush(w.hist) != 0)
            w.res.status = 1;
        if (write(res_fd, &w.res, sizeof(w.res)) != sizeof(w.res) || e)
            break;
    }
    fclose(w.hist);
    txc_close(w.c);
    _exit(cmd.op == CMD_QUIT && !e ? 0 : 1);
}

struct wproc {
    pid_t pid;
    int cmd, res; /* the parent's ends */
    struct wres last;
};

static struct wproc g_work[NWORK];

static int spawn_worker(int id)
{
    int c[2], r[2];
    if (pipe(c) != 0)
        return errno;
    if (pipe(r) != 0) {
        close(c[0]);
        close(c[1]);
        return errno;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return errno;
    if (pid == 0) {
        child_setup();
        for (int j = 0; j < id; j++) {
            close(g_work[j].cmd);
            close(g_work[j].res);
        }
        close(c[1]);
        close(r[0]);
        if (host_enter(NSHARDS * NREPL + id))
            _exit(126);
        worker_main(id, c[0], r[1]);
    }
    kid_add(pid);
    close(c[0]);
    close(r[1]);
    g_work[id] = (struct wproc){.pid = pid, .cmd = c[1], .res = r[0]};
    return 0;
}

/* Waits for worker ID's answer to its last command. */
static int worker_wait(int id)
{
    int e = read_full(g_work[id].res, &g_work[id].last, sizeof(g_work[id].last), GUARD_S);
    if (e) {
        fprintf(stderr, "worker %d: no answer (%s)\n", id, e == EPIPE ? "it died" : strerror(e));
        return e;
    }
    return g_work[id].last.status ? EIO : 0;
}

static int worker_send(int id, uint32_t op, uint32_t target)
{
    struct wcmd cmd = {.op = op, .target = target};
    return write(g_work[id].cmd, &cmd, sizeof(cmd)) == sizeof(cmd) ? 0 : EPIPE;
}

/* Sends OP to every worker and waits for all; 0 when all succeeded. */
static int workers_run(uint32_t op, uint32_t target)
{
    int e = 0;
    for (int i = 0; i < NWORK; i++)
        if (worker_send(i, op, target))
            e = EPIPE;
    for (int i = 0; i < NWORK; i++)
        if (worker_wait(i))
            e = EIO;
    return e;
}

static int workers_quit(void)
{
    int e = 0;
    for (int i = 0; i < NWORK; i++) {
        worker_send(i, CMD_QUIT, 0);
        close(g_work[i].cmd);
    }
    for (int i = 0; i < NWORK; i++) {
        int st = kid_reap(g_work[i].pid);
        close(g_work[i].res);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "worker %d ended badly (status 0x%x)\n", i, st);
            e = EIO;
        }
    }
    return e;
}

/* ---- The parent. ---- */

struct totals {
    uint64_t committed, transfers, aborted, audits, audit_aborts, audit_starved, errors;
};

static struct totals sum_workers(void)
{
    struct totals t = {0};
    for (int i = 0; i < NWORK; i++) {
        const struct wres *r = &g_work[i].last;
        t.committed += r->committed;
        t.transfers += r->transfers;
        t.aborted += r->aborted;
        t.audits += r->audits;
        t.audit_aborts += r->audit_aborts;
        t.audit_starved += r->audit_starved;
        t.errors += r->errors;
    }
    return t;
}

/* Reads every worker's history and checks it; *MS gets the checker's time. */
static int check_files(struct hist *h, const char *label, double *ms)
{
    for (int w = 0; w < NWORK; w++)
        if (hist_load_file(h, g_hist_path[w]))
            return EIO;
    uint64_t t0 = tguard_now_ns();
    int e = check_history(h, stderr, label);
    *ms = (double)(tguard_now_ns() - t0) / 1e6;
    tprogress("%s: %zu transactions, %zu reads, %zu writes checked in %.1f ms: %s\n", label, h->ntx, h->nrd, h->nwr,
              *ms, e ? "FAILED" : "strictly serializable");
    return e;
}

/* The accounts must live on both shards, or the test covers less. */
static int check_spread(void)
{
    int per[NSHARDS] = {0};
    for (int a = 0; a < NACCT; a++) {
        char k[16];
        acct_key(a, k, sizeof(k));
        per[txc_shard_of((const uint8_t *)k, strlen(k), NSHARDS)]++;
    }
    printf("accounts per shard: %d and %d\n", per[0], per[1]);
    return per[0] && per[1] ? 0 : EINVAL;
}

static int setup(void)
{
    const char *build = getenv("DEMI_BUILD");
    snprintf(g_exe, sizeof(g_exe), "%s/demi-txnd", build && *build ? build : "build");
    if (access(g_exe, X_OK) != 0) {
        fprintf(stderr, "%s: not built\n", g_exe);
        return ENOENT;
    }
    const char *hosts = getenv("DEMI_TXN_BANK_HOSTS");
    if (hosts && *hosts) {
        if (hosts_parse(hosts))
            return EINVAL;
    } else {
        setenv("LIBOS", "catnap", 1);
    }
    setenv("HUGEPAGES", "off", 1);
    /* A 256 MiB heap (the bank's 20 accounts need little) rather than the
     * default 4 GiB, unless the caller set one: under AddressSanitizer,
     * releasing 4 GiB at exit costs about 2 s of CPU a process, and six
     * replicas stopping at once on two loaded CPUs then miss GRACE_S. */
    setenv("HEAP_SIZE", "268435456", 0);
    /* Sleep at once when idle: eleven processes that each spin 1 ms (the
     * default) before sleeping starve each other on a small machine (30
     * times slower on 2 CPUs). */
    setenv("SPIN_US", "0", 1);
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof(g_dir), "%s/txnbank.XXXXXX", tmp && *tmp && strlen(tmp) < 40 ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        fprintf(stderr, "mkdtemp %s: %s\n", g_dir, strerror(errno));
        g_dir[0] = '\0';
        return errno;
    }
    for (int w = 0; w < NWORK; w++)
        snprintf(g_hist_path[w], sizeof(g_hist_path[w]), "%s/hist.%d", g_dir, w);
    for (int s = 0; s < NSHARDS; s++)
        for (int r = 0; r < NREPL; r++)
            g_srv[s][r].out = -1;
    return 0;
}

/* Kills replica R of shard S with SIGKILL and reaps it. */
static int kill_replica(int s, int r)
{
    struct server *sv = &g_srv[s][r];
    kill(sv->pid, SIGKILL);
    int st = kid_reap(sv->pid);
    close(sv->out);
    tprogress("killed replica %d of shard %d (%s:%u) with SIGKILL, the clients running\n", r, s, sv->ip, sv->port);
    *sv = (struct server){.out = -1};
    return WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL ? 0 : EIO;
}

/* After the final audit: it must see, for every account, the newest
 * version the history holds (every commit is still there). */
static int check_final(const struct hist *h, const struct wres *fin)
{
    int bad = 0;
    for (int a = 0; a < NACCT; a++) {
        char k[16];
        uint64_t newest = 0;
        acct_key(a, k, sizeof(k));
        for (size_t i = 0; i < h->nwr; i++)
            if (strcmp(h->keys[h->wr[i].key], k) == 0 && h->wr[i].ver > newest)
                newest = h->wr[i].ver;
        if (fin->ver[a] != newest) {
            fprintf(stderr, "final audit: %s at version %" PRIu64 ", but version %" PRIu64 " was committed\n", k,
                    fin->ver[a], newest);
            bad = 1;
        }
    }
    return bad;
}

static uint32_t hist_target(void)
{
    const char *s = getenv("DEMI_TXN_BANK_TXNS");
    long n = s ? strtol(s, NULL, 10) : HIST_TXNS;
    return n > 0 && n < 10000000 ? (uint32_t)n : HIST_TXNS;
}

static int fail(const char *why)
{
    fprintf(stderr, "test_txn_bank: FAIL: %s (histories kept in %s)\n", why, g_dir);
    g_keep_dir = g_dir[0] != '\0';
    return 1;
}

/* Checks the histories so far (after a failure: to show what went wrong). */
static void diagnose(void)
{
    struct hist h = {0};
    double ms;
    check_files(&h, "history so far (for diagnosis)", &ms);
    hist_free(&h);
}

/* Checks the histories; *NTX gets their size, *MS the checker's time. */
static int check_all(const char *label, size_t *ntx, double *ms, const struct wres *fin)
{
    struct hist h = {0};
    int e = check_files(&h, label, ms);
    if (!e && fin)
        e = check_final(&h, fin);
    *ntx = h.ntx;
    hist_free(&h);
    return e;
}

/* The load, then >= want commits, then the checker. */
static int phase_history(struct totals *t1, size_t *hist1, double *ms1)
{
    uint32_t want = hist_target(), per = (want + NWORK - 1) / NWORK;
    if (worker_send(0, CMD_LOAD, 0) || worker_wait(0))
        return fail("the load failed");
    tprogress("loaded %d accounts of %d (%" PRIu64
              " failed calls retried meanwhile); %d clients run %u transfers each\n",
              NACCT, INITIAL, g_work[0].last.errors, NWORK, per);
    uint64_t t0 = tguard_now_ns();
    if (workers_run(CMD_RUN, per)) {
        diagnose();
        return fail("a worker saw a violation or an error");
    }
    *t1 = sum_workers();
    tprogress("%" PRIu64 " transactions committed (%.0f a second), %" PRIu64 " aborted, %" PRIu64 " failed calls\n",
              t1->committed, (double)t1->committed * 1e9 / (double)(tguard_now_ns() - t0), t1->aborted, t1->errors);
    int e = check_all("history", hist1, ms1, NULL);
    if (e)
        return fail(e == 1 ? "the history is not strictly serializable" : "the histories could not be checked");
    if (t1->committed < want || t1->audits == 0)
        return fail(t1->audits ? "too few commits" : "no audit committed");
    return 0;
}

/* Sends every worker CMD_RUN for N transfers, kills replica R of shard S
 * while they run, and waits for them. */
static int run_with_kill(int s, int r, uint32_t n)
{
    int e = 0;
    for (int i = 0; i < NWORK; i++)
        if (worker_send(i, CMD_RUN, (n + NWORK - 1) / NWORK))
            e = EPIPE;
    if (kill_replica(s, r))
        return fail("the replica did not die of SIGKILL");
    for (int i = 0; i < NWORK; i++)
        if (worker_wait(i))
            e = EIO;
    if (e) {
        diagnose();
        return fail("transfers after the kill failed");
    }
    return 0;
}

/* Replica R of shard S killed (WHAT names it: "the backup's kill") while
 * >= FAULT_TXNS more transfers run (BEFORE: the totals before), then the
 * history so far (*NTX transactions, checked in *MS). */
static int phase_kill(int s, int r, const char *what, const struct totals *before, struct totals *after, size_t *ntx,
                      double *ms)
{
    if (run_with_kill(s, r, FAULT_TXNS))
        return 1;
    *after = sum_workers();
    tprogress("%" PRIu64 " transfers committed after %s\n", after->transfers - before->transfers, what);
    char label[96];
    snprintf(label, sizeof(label), "history after %s", what);
    int e = check_all(label, ntx, ms, NULL);
    if (e)
        return fail(e == 1 ? "the history after the kill is wrong" : "the histories could not be checked");
    return 0;
}

/* The killed primary started again with --rejoin: the new primary must
 * bring it up to date (its "synced view V" line). Then the primary of
 * view V is killed with transfers in flight, so that every majority of
 * the shard needs the rejoined replica (T3: the totals before). Then the
 * final audit and the whole history. */
static int phase_rejoin(const struct totals *t3, struct totals *t4, size_t *hist4, double *ms4)
{
    struct server *sv = &g_srv[FAILED_SHARD][0];
    if (start_server(FAILED_SHARD, 0, g_ports, "--rejoin") || wait_ready(sv))
        return fail("the killed primary could not be started again");
    char line[128];
    /* Synced by the primary of a view, or (a view change under loss can
     * make it so) the primary of a view itself, up to date by merging a
     * majority's stores. */
    if (wait_out2(sv, "synced view ", "primary view ", line, sizeof(line)))
        return fail("the rejoined replica was never brought up to date");
    bool led = strncmp(line, "primary view ", strlen("primary view ")) == 0;
    unsigned long long v = strtoull(line + strlen(led ? "primary view " : "synced view "), NULL, 10);
    int p = (int)(v % NREPL);
    if (led != (p == 0))
        return fail(led ? "the rejoined replica leads a view whose primary is another replica"
                        : "the rejoined replica was synced in a view it is the primary of");
    /* Then the majority left must include the rejoined replica: kill the
     * view's primary, or, if that is the rejoined replica, a backup. */
    int victim = led ? 1 : p;
    tprogress("replica 0 of shard %d rejoined (--rejoin) and %s view %llu; killing replica %d\n", FAILED_SHARD,
              led ? "leads" : "was synced in", v, victim);
    if (run_with_kill(FAILED_SHARD, victim, FAULT_TXNS))
        return 1;
    *t4 = sum_workers();
    tprogress("%" PRIu64 " transfers committed after the second primary's kill\n", t4->transfers - t3->transfers);
    if (worker_send(0, CMD_AUDIT, 0) || worker_wait(0)) {
        diagnose();
        return fail("the final audit failed");
    }
    struct wres fin = g_work[0].last;
    if (workers_quit())
        return fail("a worker did not end cleanly");
    int e = check_all("whole history", hist4, ms4, &fin);
    if (e)
        return fail(e == 1 ? "the history after the rejoin is wrong" : "the histories could not be checked");
    if (stop_servers(SIGTERM))
        return fail("a replica did not exit cleanly on SIGTERM");
    return 0;
}

static int run_bank(void)
{
    struct totals t1 = {0}, t2 = {0}, t3 = {0}, t4 = {0};
    size_t hist1 = 0, hist2 = 0, hist3 = 0, hist4 = 0;
    double ms1 = 0, ms2 = 0, ms3 = 0, ms4 = 0;
    /* A backup's kill: transactions are in flight to the primary, which is
     * replicating them to the backup. Then the other shard's primary: its
     * backups must change views and one of them take over with every
     * committed transfer, and the clients follow it. */
    if (phase_history(&t1, &hist1, &ms1) ||
        phase_kill(KILLED_SHARD, KILLED_REPL, "the backup's kill", &t1, &t2, &hist2, &ms2) ||
        phase_kill(FAILED_SHARD, 0, "the primary's kill", &t2, &t3, &hist3, &ms3) ||
        phase_rejoin(&t3, &t4, &hist4, &ms4))
        return 1;
    printf("test_txn_bank: PASS: committed %" PRIu64 " (transfers %" PRIu64 ", audits %" PRIu64 "), aborted %" PRIu64
           " (audits %" PRIu64 ", audits starved %" PRIu64 "), failed calls %" PRIu64
           "; history %zu transactions checked in %.1f ms; after a backup's kill: %" PRIu64
           " transfers committed, %" PRIu64 " aborted, %" PRIu64
           " failed calls (history %zu checked in %.1f ms); after "
           "a primary's kill: %" PRIu64 " transfers, %" PRIu64 " aborted, %" PRIu64
           " failed calls (history %zu checked in %.1f ms); after its rejoin and the next primary's kill: %" PRIu64
           " transfers, %" PRIu64 " aborted, %" PRIu64
           " failed calls, final audit total %d; whole history %zu checked in %.1f ms; %.1f s in all\n",
           t1.committed, t1.transfers, t1.audits, t1.aborted, t1.audit_aborts, t1.audit_starved, t1.errors, hist1, ms1,
           t2.transfers - t1.transfers, t2.aborted - t1.aborted, t2.errors - t1.errors, hist2, ms2,
           t3.transfers - t2.transfers, t3.aborted - t2.aborted, t3.errors - t2.errors, hist3, ms3,
           t4.transfers - t3.transfers, t4.aborted - t3.aborted, t4.errors - t3.errors, NACCT * INITIAL, hist4, ms4,
           (double)(tguard_now_ns() - tguard_start) / 1e9);
    return 0;
}

/* "--check FILE...": only checks histories (e.g. ones a failed run kept). */
static int check_only(int n, char **files)
{
    struct hist h = {0};
    int e = 0;
    for (int i = 0; i < n && !e; i++)
        e = hist_load_file(&h, files[i]);
    uint64_t t0 = tguard_now_ns();
    if (!e)
        e = check_history(&h, stderr, "history");
    printf("%zu transactions checked in %.1f ms: %s\n", h.ntx, (double)(tguard_now_ns() - t0) / 1e6,
           e ? "FAILED" : "strictly serializable");
    hist_free(&h);
    return e ? 1 : 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && strcmp(argv[1], "--check") == 0)
        return check_only(argc - 2, argv + 2);
    tguard_install(cleanup, "test_txn_bank: killed by a signal or the guard alarm; children killed\n", GUARD_S);
    if (self_test())
        return fail("the checker's self-test");
    if (setup())
        return 1;
    if (check_spread())
        return fail("every account is on one shard");
    if (start_cluster())
        return fail("the replicas did not start");
    for (int i = 0; i < NWORK; i++)
        if (spawn_worker(i))
            return fail("fork");
    for (int i = 0; i < NWORK; i++)
        if (worker_wait(i))
            return fail("a worker could not open its client");
    tprogress("%d replicas ready, %d clients connected\n", NSHARDS * NREPL, NWORK);
    return run_bank();
}
