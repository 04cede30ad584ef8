/*
 * tests/txn/test_txn_client.c: the TxnStore client library (apps/txn/client.c).
 * It must never leave a process behind (every fake replica dies with its
 * case) nor talk to anything but 127.0.0.1.
 *
 * Two sets of cases, each case in its own process (tcases.h):
 *  - with no replicas named, against fake replicas (plain sockets in
 *    forked children, answering by the key they are asked about): bad
 *    configurations and refused connections, the bounds of a transaction,
 *    replies split byte by byte and as large as a frame gets, timeouts and
 *    late replies, malformed replies, quorums, every PREPARE vote, how
 *    the client's clock follows the versions it hears of, and occ
 *    failover (a primary guess followed through NOTPRIMARY, UNAVAIL and
 *    closed connections, prepare phases run again, reconnects);
 *  - against real demi-txnd replicas, named by test_txn_basic.sh in the
 *    environment: TXN_QW="IP:PORT,IP:PORT,IP:PORT" (one qw shard) runs the
 *    qw cases, TXN_OCC="IP:PORT,...;IP:PORT,..." (occ shards, ';' between
 *    them) the occ cases. TXN_FAKE=1 adds the fake cases to those.
 *   test_txn_client [CASE...]   (--list names the cases)
 */
#include "client.h"
#include "msg.h"
#include "tcases.h"
#include "tcheck.h"

#include <demi/libos.h>

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A version far in the future (microseconds: about the year 2255) that
 * fake replicas report, so that the client's clock must follow it. */
#define HIGHVER (1ull << 53)
/* A short call timeout for the cases that wait for one on purpose. */
#define SHORT_MS 300

#define CHECK_ERR(got, want)                                                                                           \
    do {                                                                                                               \
        int g_ = (got), w_ = (want);                                                                                   \
        if (g_ != w_) {                                                                                                \
            fprintf(stderr, "%s:%d: %s: got %d (%s), wanted %d (%s)\n", __FILE__, __LINE__, #got, g_, strerror(g_),    \
                    w_, strerror(w_));                                                                                 \
            exit(1);                                                                                                   \
        }                                                                                                              \
    } while (0)

/* Present only under ASan/LSan; the leak check then runs per case. */
extern int __lsan_do_recoverable_leak_check(void) __attribute__((weak));

/* ---- small helpers ---- */

static const uint8_t *B(const char *s)
{
    return (const uint8_t *)s;
}

static int put(struct txc *c, const char *k, const char *v)
{
    return txc_put(c, B(k), strlen(k), B(v), strlen(v));
}

static int load(struct txc *c, const char *k, const char *v)
{
    return txc_load(c, B(k), strlen(k), B(v), strlen(v));
}

/* txc_get_ver of K must give RC and (with 0) the value WANT. */
static void get_is(struct txc *c, const char *k, int rc, const char *want, uint64_t *ver, int line)
{
    const uint8_t *v = NULL;
    size_t n = 0;
    uint64_t vv = 12345;
    int e = txc_get_ver(c, B(k), strlen(k), &v, &n, &vv);
    if (e != rc || (rc == 0 && want && (n != strlen(want) || memcmp(v, want, n) != 0)) || (rc == ENOENT && vv != 0)) {
        fprintf(stderr, "line %d: get %s: %d (%s) \"%.*s\" ver %" PRIu64 "; wanted %d \"%s\"\n", line, k, e,
                strerror(e), e == 0 ? (int)(n < 80 ? n : 80) : 0, e == 0 ? (const char *)v : "", vv, rc,
                want ? want : "");
        exit(1);
    }
    if (ver)
        *ver = vv;
}
#define GET_IS(c, k, rc, want)       get_is(c, k, rc, want, NULL, __LINE__)
#define GET_VER(c, k, rc, want, ver) get_is(c, k, rc, want, ver, __LINE__)

static uint64_t commit(struct txc *c, int rc, int line)
{
    uint64_t ts = 0;
    int e = txc_commit(c, &ts);
    if (e != rc) {
        fprintf(stderr, "line %d: commit: %d (%s), wanted %d (%s)\n", line, e, strerror(e), rc, strerror(rc));
        exit(1);
    }
    return ts;
}
#define COMMIT(c, rc) commit(c, rc, __LINE__)

/* A commit retried until its deadline gives up with EIO, or with
 * ETIMEDOUT when the last round's answer had not come by then (a loaded
 * machine: CI saw it). Returns which. */
static int commit_gave_up(struct txc *c, int line)
{
    int e = txc_commit(c, NULL);
    if (e != EIO && e != ETIMEDOUT) {
        fprintf(stderr, "line %d: commit: %d (%s), wanted EIO or ETIMEDOUT\n", line, e, strerror(e));
        exit(1);
    }
    return e;
}
#define COMMIT_GAVE_UP(c) commit_gave_up(c, __LINE__)

static struct txc_stats stats(const struct txc *c)
{
    struct txc_stats st;
    txc_get_stats(c, &st);
    return st;
}

static struct txc *open_or_die(const struct txc_config *cfg)
{
    char err[256] = "";
    struct txc *c = txc_open(cfg, err, sizeof(err));
    if (!c) {
        fprintf(stderr, "txc_open: %s\n", err);
        exit(1);
    }
    return c;
}

static struct sockaddr_in loopback(uint16_t port)
{
    return (struct sockaddr_in){
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
}

/* KEY with a "#N" suffix that lands in SHARD of NSHARDS. */
static void key_in(char *out, size_t len, const char *base, uint32_t shard, uint32_t nshards)
{
    for (unsigned n = 0;; n++) {
        snprintf(out, len, "%s#%u", base, n);
        if (txc_shard_of(B(out), strlen(out), nshards) == shard)
            return;
    }
}

static void init_demi(void)
{
    int e = demi_init(NULL);
    if (e) {
        fprintf(stderr, "demi_init: %s\n", strerror(e));
        exit(1);
    }
}

/* ---- fake replicas ---- */

/*
 * A fake replica answers by the key of a request (a PREPARE's: its first
 * write's, else its first read's). GET keys, by prefix:
 *   ok...      OK, version 42 + the replica's index, value "val:KEY"
 *   high...    OK, version HIGHVER, value "high"
 *   notfound.. NOTFOUND
 *   split...   OK, value "split-value", written one byte at a time
 *   big...     OK, a value of TXN_VAL_MAX bytes (byte i is i * 7)
 *   silent...  no answer
 *   late1...   no answer now: the answer comes before late2's
 *   late2...   first late1's answer ("stale"), then its own ("fresh")
 *   garbage... bytes that are no frame
 *   wrongtype. a PUT_REPLY
 *   badbody... a GET_REPLY with a status out of range
 *   close...   closes the connection
 *   aborts...  OK, value: how many ABORTs this connection received
 * PUT and LOAD keys "q-XYZ...": the character at the replica's index says
 * o (OK), s (no answer), f (FULL), c (close); other keys: OK. PREPARE keys
 * "v-XY...": the character at the replica's index is the vote: o OK,
 * a ABORT (conflict version HIGHVER), f FULL, u UNAVAIL, U UNAVAIL to the
 * fake's first two PREPAREs then OK, n NOTPRIMARY naming view 1, m
 * NOTPRIMARY naming view 3, c close the connection, s no answer, x OK but
 * the COMMIT that follows gets BADREQ, p OK but the COMMIT that follows
 * gets NOTPRIMARY, r OK but the COMMIT that follows gets ABORT (as from a
 * primary that aborted it as an orphan). Other COMMITs and ABORTs: OK.
 *
 * Every fake counts what it received, over all its connections, in memory
 * shared with the case (seen[], by the order the fakes were started).
 */

#define FAKES_MAX 8
#define SEEN_IDS  8
static pid_t fake_pids[FAKES_MAX];
static int fake_gate[FAKES_MAX], fake_ready[FAKES_MAX]; /* fake_start_later's pipes */
static int nfakes;

/* What one fake received (the first SEEN_IDS txnids of each kind). */
struct fake_seen {
    uint32_t gets, prepares, commits, aborts;
    uint64_t prepare_txnid[SEEN_IDS], prepare_ts[SEEN_IDS], abort_txnid[SEEN_IDS];
};
static struct fake_seen *seen; /* FAKES_MAX of them, MAP_SHARED */

/* Counts one more in *N; returns the count. */
static uint32_t count(uint32_t *n)
{
    return __atomic_add_fetch(n, 1, __ATOMIC_SEQ_CST);
}

static uint32_t seen_n(uint32_t *n)
{
    return __atomic_load_n(n, __ATOMIC_SEQ_CST);
}

static void write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w <= 0)
            _exit(0);
        b += w;
        n -= (size_t)w;
    }
}

static struct txn_msg out;

static void send_msg(int fd, uint8_t type, uint64_t reqid, uint8_t status, uint64_t ts, const void *val, size_t vlen,
                     bool bytewise)
{
    memset(&out, 0, offsetof(struct txn_msg, reads));
    out.type = type;
    out.reqid = reqid;
    out.status = status;
    out.ts = ts;
    out.val = (struct txn_bytes){val, (uint32_t)vlen};
    size_t n = txn_msg_size(&out);
    uint8_t *buf = malloc(n);
    if (!buf || txn_msg_encode(&out, buf, n) != n)
        _exit(3);
    if (!bytewise) {
        write_all(fd, buf, n);
    } else {
        for (size_t i = 0; i < n; i++) {
            write_all(fd, buf + i, 1);
            usleep(1000);
        }
    }
    free(buf);
}

static bool prefix(const struct txn_bytes *k, const char *p)
{
    size_t n = strlen(p);
    return k->n >= n && memcmp(k->p, p, n) == 0;
}

/* The code character for replica INDEX in a "q-..." or "v-..." key. */
static char code(const struct txn_bytes *k, int index)
{
    size_t at = 2 + (size_t)index;
    return k->n > at && k->p[at] != '#' ? (char)k->p[at] : 'o';
}

struct fake_conn {
    int fd, index;
    struct fake_seen *seen;
    uint64_t late_reqid;
    bool have_late;
    uint32_t aborts;
    uint64_t prepared_txnid;
    char prepared_code;
    uint32_t lag_reads;
};

static struct txn_msg in;

static void fake_get(struct fake_conn *f, const struct txn_msg *m)
{
    const struct txn_bytes *k = &m->key;
    int fd = f->fd;
    count(&f->seen->gets);
    if (prefix(k, "ok")) {
        char v[TXN_KEY_MAX + 8];
        int n = snprintf(v, sizeof(v), "val:%.*s", (int)k->n, (const char *)k->p);
        send_msg(fd, TXN_GET_REPLY, m->reqid, TXN_ST_OK, 42 + (uint64_t)f->index, v, (size_t)n, false);
    } else if (prefix(k, "high")) {
        send_msg(fd, TXN_GET_REPLY, m->reqid, TXN_ST_OK, HIGHVER, "high", 4, false);
    } else if (prefix(k, "lag")) { /* a replica that falls behind: version 50, then 40 */
        bool first = f->lag_reads++ == 0;
        send_msg(fd, TXN_GET_REPLY, m->reqid, TXN_ST_OK, first ? 50 : 40, first ? "new" : "old", 3, false);
    } else if (prefix(k, "notfound")) {
        send_msg(fd, TXN_GET_REPLY, m->reqid, TXN_ST_NOTFOUND, 0, NULL, 0, false);
    } else if (prefix(k, "split")) {
        send_msg(fd, TXN_GET_REPLY, m->reqid, TXN_ST_OK, 42, "split-value", 11, true);
    } else if (prefix(k, "big")) {
        uint8_t *v = malloc(TXN_VAL_MAX);
        if (!v)
            _exit(3);
        for (size_t i = 0; i < TXN_VAL_MAX; i++)
            v[i] = (uint8_t)(i * 7);
        send_msg(fd, TXN_GET_REPLY, m->reqid, TXN_ST_OK, 42, v, TXN_VAL_MAX, false);
        free(v);
    } else if (prefix(k, "late1")) {
        f->late_reqid = m->reqid;
        f->have_late = true;
    } else if (prefix(k, "late2")) {
        if (f->have_late)
            send_msg(fd, TXN_GET_REPLY, f->late_reqid, TXN_ST_OK, 7, "stale", 5, false);
        send_msg(fd, TXN_GET_REPLY, m->reqid, TXN_ST_OK, 8, "fresh", 5, false);
    } else if (prefix(k, "garbage")) {
        write_all(fd, "HTTP/1.1 400 Bad Request\r\n\r\n", 28);
    } else if (prefix(k, "wrongtype")) {
        send_msg(fd, TXN_PUT_REPLY, m->reqid, TXN_ST_OK, 42, NULL, 0, false);
    } else if (prefix(k, "badbody")) {
        uint8_t fr[TXN_HDR_LEN + 9] = {'T', 'X', TXN_WIRE_VERSION, TXN_GET_REPLY, 9, 0, 0, 0};
        memcpy(fr + 8, &m->reqid, 8); /* little-endian hosts only: the test runs on x86 and arm64 */
        fr[TXN_HDR_LEN] = 200;        /* a status out of range, then a ts */
        write_all(fd, fr, sizeof(fr));
    } else if (prefix(k, "close")) {
        _exit(0);
    } else if (prefix(k, "aborts")) {
        char v[16];
        int n = snprintf(v, sizeof(v), "%u", f->aborts);
        send_msg(fd, TXN_GET_REPLY, m->reqid, TXN_ST_OK, 42, v, (size_t)n, false);
    } else if (!prefix(k, "silent")) {
        send_msg(fd, TXN_GET_REPLY, m->reqid, TXN_ST_NOTFOUND, 0, NULL, 0, false);
    }
}

static void fake_put(struct fake_conn *f, const struct txn_msg *m)
{
    char c = prefix(&m->key, "q-") ? code(&m->key, f->index) : 'o';
    uint8_t rt = (uint8_t)(m->type + 1);
    if (c == 'o')
        send_msg(f->fd, rt, m->reqid, TXN_ST_OK, m->ts, NULL, 0, false);
    else if (c == 'f')
        send_msg(f->fd, rt, m->reqid, TXN_ST_FULL, 0, NULL, 0, false);
    else if (c == 'c')
        _exit(0);
}

static void fake_prepare(struct fake_conn *f, const struct txn_msg *m)
{
    const struct txn_bytes *k = m->nwrites ? &m->writes[0].key : m->nreads ? &m->reads[0].key : NULL;
    char c = k && prefix(k, "v-") ? code(k, f->index) : 'o';
    f->prepared_txnid = m->txnid;
    f->prepared_code = c;
    uint32_t n = count(&f->seen->prepares);
    if (n <= SEEN_IDS) {
        f->seen->prepare_txnid[n - 1] = m->txnid;
        f->seen->prepare_ts[n - 1] = m->ts;
    }
    if (c == 'U')
        c = n <= 2 ? 'u' : 'o';
    if (c == 'c')
        _exit(0);
    static const struct {
        char c;
        uint8_t st;
        uint64_t ts; /* 0: the request's */
    } votes[] = {{'o', TXN_ST_OK, 0},          {'x', TXN_ST_OK, 0},         {'p', TXN_ST_OK, 0},
                 {'a', TXN_ST_ABORT, HIGHVER}, {'f', TXN_ST_FULL, 0},       {'u', TXN_ST_UNAVAIL, 0},
                 {'n', TXN_ST_NOTPRIMARY, 1},  {'m', TXN_ST_NOTPRIMARY, 3}, {'r', TXN_ST_OK, 0}};
    for (size_t i = 0; i < sizeof(votes) / sizeof(votes[0]); i++)
        if (votes[i].c == c)
            send_msg(f->fd, TXN_PREPARE_REPLY, m->reqid, votes[i].st, votes[i].ts ? votes[i].ts : m->ts, NULL, 0,
                     false);
}

static void fake_frame(struct fake_conn *f, const uint8_t *frame, size_t len)
{
    struct txn_msg *m = &in;
    if (txn_msg_decode(frame, len, m, NULL) != 0)
        _exit(4);
    switch (m->type) {
    case TXN_GET:
        fake_get(f, m);
        break;
    case TXN_PUT:
    case TXN_LOAD:
        fake_put(f, m);
        break;
    case TXN_PREPARE:
        fake_prepare(f, m);
        break;
    case TXN_COMMIT: {
        count(&f->seen->commits);
        bool mine = m->txnid == f->prepared_txnid;
        uint8_t st = mine && f->prepared_code == 'x'   ? TXN_ST_BADREQ
                     : mine && f->prepared_code == 'p' ? TXN_ST_NOTPRIMARY
                     : mine && f->prepared_code == 'r' ? TXN_ST_ABORT
                                                       : TXN_ST_OK;
        send_msg(f->fd, TXN_COMMIT_REPLY, m->reqid, st, m->ts, NULL, 0, false);
        break;
    }
    case TXN_ABORT: {
        f->aborts++;
        uint32_t n = count(&f->seen->aborts);
        if (n <= SEEN_IDS)
            f->seen->abort_txnid[n - 1] = m->txnid;
        send_msg(f->fd, TXN_ABORT_REPLY, m->reqid, TXN_ST_OK, 0, NULL, 0, false);
        break;
    }
    default:
        _exit(4);
    }
}

static void fake_serve(int fd, int index, struct fake_seen *fs)
{
    size_t cap = TXN_HDR_LEN + TXN_BODY_MAX, len = 0;
    uint8_t *buf = malloc(cap);
    if (!buf)
        _exit(3);
    struct fake_conn f = {.fd = fd, .index = index, .seen = fs};
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    for (;;) {
        ssize_t n = read(fd, buf + len, cap - len);
        if (n <= 0)
            _exit(0);
        len += (size_t)n;
        size_t off = 0, flen = 0;
        int r;
        while ((r = txn_frame_len(buf + off, len - off, &flen, NULL)) == 1) {
            fake_frame(&f, buf + off, flen);
            off += flen;
        }
        if (r < 0)
            _exit(4);
        memmove(buf, buf + off, len - off);
        len -= off;
    }
}

/* Dies with the process that started it. */
static void die_with_parent(pid_t parent)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(0);
}

/* A listening socket on 127.0.0.1:PORT (0: any port); -1 on failure. */
static int fake_listen(uint16_t port)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = loopback(port);
    if (lfd < 0)
        return -1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(lfd, 16) != 0) {
        close(lfd);
        return -1;
    }
    return lfd;
}

/* The fake's process: one child per connection. It leads its own process
 * group, so that fake_kill ends its connections with it. */
static void fake_loop(int lfd, int index, struct fake_seen *fs)
{
    pid_t fake = getpid();
    setpgid(0, 0);
    signal(SIGCHLD, SIG_IGN); /* connections' processes reap themselves */
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            continue;
        if (fork() == 0) {
            die_with_parent(fake);
            close(lfd);
            fake_serve(fd, index, fs);
        }
        close(fd);
    }
}

static void seen_map(void)
{
    if (seen)
        return;
    seen = mmap(NULL, FAKES_MAX * sizeof(*seen), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(seen != MAP_FAILED);
}

/* Starts fake replica INDEX; returns its port. Call before demi_init. */
static uint16_t fake_start(int index)
{
    CHECK(nfakes < FAKES_MAX);
    seen_map();
    int lfd = fake_listen(0);
    CHECK(lfd >= 0);
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    CHECK(getsockname(lfd, (struct sockaddr *)&a, &alen) == 0);
    pid_t me = getpid();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        die_with_parent(me);
        fake_loop(lfd, index, &seen[nfakes]);
    }
    close(lfd);
    fake_gate[nfakes] = fake_ready[nfakes] = -1;
    fake_pids[nfakes++] = pid;
    return ntohs(a.sin_port);
}

/* Starts fake replica INDEX that will listen on PORT once fake_wake says
 * so (the port may still be another fake's until then); returns its
 * number. Call before demi_init. */
static int fake_start_later(int index, uint16_t port)
{
    CHECK(nfakes < FAKES_MAX);
    seen_map();
    int gate[2], ready[2];
    CHECK(pipe(gate) == 0 && pipe(ready) == 0);
    pid_t me = getpid();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        die_with_parent(me);
        close(gate[1]);
        close(ready[0]);
        char b;
        if (read(gate[0], &b, 1) != 1)
            _exit(0);
        int lfd = -1;
        for (int tries = 0; tries < 200 && lfd < 0; tries++) {
            lfd = fake_listen(port);
            if (lfd < 0)
                usleep(10000);
        }
        if (lfd < 0)
            _exit(5);
        write_all(ready[1], "r", 1);
        fake_loop(lfd, index, &seen[nfakes]);
    }
    close(gate[0]);
    close(ready[1]);
    fake_gate[nfakes] = gate[1];
    fake_ready[nfakes] = ready[0];
    fake_pids[nfakes] = pid;
    return nfakes++;
}

/* Fake N (fake_start_later's) listens from now on. */
static void fake_wake(int n)
{
    char b = 'g';
    CHECK(write(fake_gate[n], &b, 1) == 1);
    CHECK(read(fake_ready[n], &b, 1) == 1);
}

/* Fake N and its connections die now. */
static void fake_kill(int n)
{
    kill(-fake_pids[n], SIGKILL);
    kill(fake_pids[n], SIGKILL);
    waitpid(fake_pids[n], NULL, 0);
    fake_pids[n] = 0;
}

static void fakes_stop(void)
{
    for (int i = 0; i < nfakes; i++) {
        if (fake_pids[i])
            fake_kill(i);
        if (fake_gate[i] >= 0) {
            close(fake_gate[i]);
            close(fake_ready[i]);
        }
    }
    nfakes = 0;
}

/* NSHARDS shards of NREPLICAS fake replicas, then demi_init. A fake's
 * index (for the key codes) is its replica's index, or with one replica
 * per shard its shard's. */
static struct txc_config fake_cluster(enum txc_mode mode, uint32_t nshards, uint32_t nreplicas, uint32_t timeout_ms)
{
    struct txc_config cfg = {.mode = mode, .nshards = nshards, .nreplicas = nreplicas, .timeout_ms = timeout_ms};
    for (uint32_t s = 0; s < nshards; s++)
        for (uint32_t r = 0; r < nreplicas; r++)
            cfg.replica[s][r] = loopback(fake_start(nreplicas == 1 ? (int)s : (int)r));
    init_demi();
    return cfg;
}

/* A port on 127.0.0.1 that nobody listens on (bound, then closed). */
static struct sockaddr_in unused_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = loopback(0);
    socklen_t alen = sizeof(a);
    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&a, &alen) == 0);
    close(fd);
    return a;
}

/* ---- fake cases ---- */

static void fake_open_errors(void)
{
    init_demi();
    char err[256];
    struct txc_config cfg = {.mode = TXC_QW, .nshards = 1, .nreplicas = 1};
    cfg.replica[0][0] = loopback(1);
    CHECK(txc_open(NULL, err, sizeof(err)) == NULL);
    cfg.mode = 7;
    CHECK(txc_open(&cfg, err, sizeof(err)) == NULL);
    cfg.mode = TXC_OCC;
    cfg.nshards = 0;
    CHECK(txc_open(&cfg, err, sizeof(err)) == NULL);
    cfg.nshards = TXC_SHARDS_MAX + 1;
    CHECK(txc_open(&cfg, err, sizeof(err)) == NULL);
    cfg.nshards = 1;
    cfg.nreplicas = TXC_REPLICAS_MAX + 1;
    CHECK(txc_open(&cfg, err, sizeof(err)) == NULL);
    cfg.nreplicas = 2; /* replica 1 has no address */
    CHECK(txc_open(&cfg, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "shard 0 replica 1") != NULL);

    /* A port nobody listens on: the reason names the replica and errno. */
    cfg.nreplicas = 1;
    cfg.replica[0][0] = unused_port();
    CHECK(txc_open(&cfg, err, sizeof(err)) == NULL);
    fprintf(stderr, "refused as expected: %s\n", err);
    CHECK(strstr(err, "shard 0 replica 0") != NULL);
    CHECK(strstr(err, strerror(ECONNREFUSED)) != NULL);
}

/* occ opens with a majority of a shard's replicas up (replica 0, the
 * first primary guessed, down: the transaction goes to replica 1); not
 * with a minority. qw needs every replica. */
static void fake_open_majority(void)
{
    char err[256];
    struct txc_config cfg = {.mode = TXC_OCC, .nshards = 1, .nreplicas = 3};
    cfg.replica[0][0] = unused_port();
    cfg.replica[0][1] = loopback(fake_start(1));
    cfg.replica[0][2] = loopback(fake_start(2));
    init_demi();
    struct txc *c = open_or_die(&cfg);
    CHECK_ERR(put(c, "v-ooo", "x"), 0);
    COMMIT(c, 0);
    CHECK(seen_n(&seen[0].prepares) == 1 && seen_n(&seen[0].commits) == 1);
    txc_close(c);
    cfg.mode = TXC_QW;
    CHECK(txc_open(&cfg, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "shard 0 replica 0") != NULL);
    cfg.mode = TXC_OCC;
    cfg.replica[0][2] = unused_port();
    CHECK(txc_open(&cfg, err, sizeof(err)) == NULL);
    fprintf(stderr, "refused as expected: %s\n", err);
    CHECK(strstr(err, "1 of the shard's 3 replicas reached") != NULL);
    fakes_stop();
}

static void fake_limits(void)
{
    struct txc_config cfg = fake_cluster(TXC_OCC, 2, 1, 0);
    struct txc *c = open_or_die(&cfg);
    static uint8_t big[TXN_VAL_MAX + 1];
    char k[128];

    /* Bounds of one write. */
    CHECK_ERR(txc_put(c, big, TXN_KEY_MAX + 1, B("v"), 1), EINVAL);
    CHECK_ERR(txc_put(c, B("k"), 1, big, TXN_VAL_MAX + 1), EINVAL);
    CHECK_ERR(txc_put(c, NULL, 1, B("v"), 1), EINVAL);
    CHECK_ERR(txc_put(c, big, TXN_KEY_MAX, big, 1000), 0);

    /* Read-your-writes come from the buffer, without a replica. */
    CHECK_ERR(put(c, "silent-mine", "one"), 0);
    CHECK_ERR(put(c, "silent-mine", "two"), 0);
    uint64_t ver = 0;
    GET_VER(c, "silent-mine", 0, "two", &ver);
    CHECK(ver == UINT64_MAX);
    txc_abort(c);

    /* TXN_SET_MAX writes in one shard, and not one more (another shard
     * still takes writes); rewriting a buffered key is no new write. */
    txc_begin(c);
    for (int i = 0; i < TXN_SET_MAX; i++) {
        char base[32];
        snprintf(base, sizeof(base), "w%d", i);
        key_in(k, sizeof(k), base, 0, 2);
        CHECK_ERR(put(c, k, "x"), 0);
    }
    CHECK_ERR(put(c, k, "rewritten"), 0);
    key_in(k, sizeof(k), "w-one-more", 0, 2);
    CHECK_ERR(put(c, k, "x"), EINVAL);
    key_in(k, sizeof(k), "w-other", 1, 2);
    CHECK_ERR(put(c, k, "x"), 0);
    txc_begin(c); /* drops it all */

    /* TXN_SET_MAX reads in one shard; a key read again is no new read. */
    for (int i = 0; i < TXN_SET_MAX; i++) {
        char base[32];
        snprintf(base, sizeof(base), "ok-r%d", i);
        key_in(k, sizeof(k), base, 1, 2);
        char want[160];
        snprintf(want, sizeof(want), "val:%s", k);
        GET_IS(c, k, 0, want);
    }
    char want[160];
    snprintf(want, sizeof(want), "val:%s", k);
    GET_IS(c, k, 0, want);
    key_in(k, sizeof(k), "ok-one-more", 1, 2);
    GET_IS(c, k, EINVAL, NULL);
    txc_abort(c);

    /* occ: a shard's PREPARE must fit one frame. */
    memset(big, 'b', sizeof(big));
    int e = 0, i = 0;
    for (; i < 8 && !e; i++) {
        char base[32];
        snprintf(base, sizeof(base), "huge%d", i);
        key_in(k, sizeof(k), base, 0, 2);
        e = txc_put(c, B(k), strlen(k), big, TXN_VAL_MAX);
    }
    CHECK_ERR(e, EINVAL);
    CHECK(i == 4); /* three values of 256 KiB fit in 1 MiB, four do not */
    txc_abort(c);

    /* An empty transaction commits at once, timestamps increasing. */
    uint64_t t1 = COMMIT(c, 0), t2 = COMMIT(c, 0);
    CHECK(t1 > 0 && t2 > t1);
    struct txc_stats st = stats(c);
    CHECK(st.commits == 2 && st.prepares == 0 && st.gets == TXN_SET_MAX + 1);

    /* txc_shard_of: stable, in range. */
    for (uint32_t n = 1; n <= TXC_SHARDS_MAX; n++) {
        uint32_t s = txc_shard_of(B("somekey"), 7, n);
        CHECK(s < n && s == txc_shard_of(B("somekey"), 7, n));
    }
    txc_close(c);
    fakes_stop();
}

static void fake_gets(void)
{
    struct txc_config cfg = fake_cluster(TXC_QW, 1, 1, 0);
    struct txc *c = open_or_die(&cfg);
    uint64_t ver = 0;
    GET_VER(c, "ok-a", 0, "val:ok-a", &ver);
    CHECK(ver == 42);
    GET_VER(c, "notfound-a", ENOENT, NULL, &ver);
    CHECK(ver == 0);
    GET_IS(c, "split-a", 0, "split-value");
    const uint8_t *v = NULL;
    size_t n = 0;
    CHECK_ERR(txc_get(c, B("big-a"), 5, &v, &n), 0);
    CHECK(n == TXN_VAL_MAX);
    for (size_t i = 0; i < n; i++)
        CHECK(v[i] == (uint8_t)(i * 7));
    /* Several at once in the input, and a frame right after a big one. */
    GET_IS(c, "ok-b", 0, "val:ok-b");
    /* The clock follows a version heard of. */
    GET_VER(c, "high-a", 0, "high", &ver);
    CHECK(ver == HIGHVER);
    CHECK_ERR(put(c, "k", "v"), 0);
    uint64_t ts = COMMIT(c, 0);
    CHECK(ts > HIGHVER);
    CHECK(stats(c).gets == 6 && stats(c).puts == 1 && stats(c).commits == 1);
    txc_close(c);
    fakes_stop();
}

static void fake_timeouts(void)
{
    struct txc_config cfg = fake_cluster(TXC_QW, 1, 1, SHORT_MS);
    struct txc *c = open_or_die(&cfg);
    GET_IS(c, "silent-a", ETIMEDOUT, NULL);
    /* The connection lives on after a timeout. */
    GET_IS(c, "ok-a", 0, "val:ok-a");
    /* A late reply (to the get that timed out) is dropped, not taken for
     * the next get's. */
    GET_IS(c, "late1", ETIMEDOUT, NULL);
    GET_IS(c, "late2", 0, "fresh");
    GET_IS(c, "ok-b", 0, "val:ok-b");
    txc_close(c);
    fakes_stop();
}

/* A malformed reply fails the call with EPROTO and closes the connection:
 * later calls to it fail at once with ECONNRESET. */
static void fake_malformed(void)
{
    struct txc_config cfg = fake_cluster(TXC_QW, 1, 1, 0);
    static const char *const bad[] = {"garbage", "wrongtype", "badbody"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct txc *c = open_or_die(&cfg);
        GET_IS(c, "ok-first", 0, "val:ok-first");
        GET_IS(c, bad[i], EPROTO, NULL);
        GET_IS(c, "ok-after", ECONNRESET, NULL);
        CHECK_ERR(put(c, "k", "v"), 0);
        COMMIT(c, EIO); /* no replica left for the write */
        CHECK_ERR(load(c, "k", "v"), ECONNRESET);
        txc_close(c);
    }
    struct txc *c = open_or_die(&cfg);
    GET_IS(c, "close-now", ECONNRESET, NULL);
    GET_IS(c, "ok-after", ECONNRESET, NULL);
    txc_close(c);
    fakes_stop();
}

/* qw: a write is done on a majority of its shard's replicas. */
static void fake_quorum(void)
{
    struct txc_config cfg = fake_cluster(TXC_QW, 1, 3, SHORT_MS);
    struct txc *c = open_or_die(&cfg);
    CHECK_ERR(put(c, "q-ooo", "v"), 0);
    CHECK_ERR(put(c, "q-oos", "v"), 0); /* one replica never answers */
    CHECK_ERR(put(c, "q-oof", "v"), 0); /* one is full */
    COMMIT(c, 0);
    CHECK(stats(c).puts == 9);
    CHECK_ERR(put(c, "q-oss", "v"), 0);
    CHECK_ERR(put(c, "q-ooo-2", "v"), 0);
    COMMIT(c, ETIMEDOUT);
    CHECK_ERR(put(c, "q-off", "v"), 0);
    COMMIT(c, ENOSPC);
    /* Loads go to every replica and need them all. */
    CHECK_ERR(load(c, "q-ooo-load", "v"), 0);
    CHECK_ERR(load(c, "q-oof-load", "v"), ENOSPC);
    CHECK_ERR(load(c, "q-oos-load", "v"), ETIMEDOUT);
    /* Two replicas close: their writes fail, and with them the majority. */
    CHECK_ERR(put(c, "q-occ", "v"), 0);
    COMMIT(c, EIO);
    CHECK_ERR(put(c, "q-ooo-3", "v"), 0);
    COMMIT(c, EIO);
    txc_close(c);

    /* Reads go to read_replica (modulo nreplicas). */
    cfg.read_replica = 4;
    c = open_or_die(&cfg);
    uint64_t ver = 0;
    GET_VER(c, "ok-r", 0, "val:ok-r", &ver);
    CHECK(ver == 42 + 1);
    txc_close(c);
    fakes_stop();
}

/* occ on one shard: every vote of the primary, and what the client says. */
static void fake_votes(void)
{
    struct txc_config cfg = fake_cluster(TXC_OCC, 1, 1, SHORT_MS);
    struct txc *c = open_or_die(&cfg);
    uint64_t ts;
    CHECK_ERR(put(c, "v-o", "x"), 0);
    ts = COMMIT(c, 0);
    CHECK(ts < HIGHVER);
    CHECK(stats(c).prepares == 1 && stats(c).commits == 1);

    CHECK_ERR(put(c, "v-a", "x"), 0);
    COMMIT(c, EAGAIN);
    CHECK(stats(c).aborts == 1 && stats(c).commits == 1);
    GET_IS(c, "aborts", 0, "0"); /* the shard voted no: nothing to abort there */
    /* The clock went past the conflict's version. */
    CHECK_ERR(put(c, "v-o", "x"), 0);
    ts = COMMIT(c, 0);
    CHECK(ts > HIGHVER);

    static const struct {
        const char *key;
        int rc;
    } votes[] = {{"v-f", ENOSPC}, {"v-u", EIO}, {"v-n", EIO}, {"v-x", EINPROGRESS}, {"v-r", EAGAIN}};
    for (size_t i = 0; i < sizeof(votes) / sizeof(votes[0]); i++) {
        CHECK_ERR(put(c, votes[i].key, "x"), 0);
        if (votes[i].rc == EIO)
            COMMIT_GAVE_UP(c);
        else
            COMMIT(c, votes[i].rc);
    }
    /* v-r: a COMMIT answered ABORT is an abort, not an unknown outcome. */
    CHECK(stats(c).aborts == 2);
    /* v-u's UNAVAIL votes are doubts (a deposed primary keeps what it
     * prepared): each was aborted. The others held nothing. */
    const uint8_t *av = NULL;
    size_t an = 0;
    CHECK_ERR(txc_get(c, B("aborts"), 6, &av, &an), 0);
    char abuf[24] = "";
    memcpy(abuf, av, an < sizeof(abuf) - 1 ? an : sizeof(abuf) - 1);
    uint64_t base = strtoull(abuf, NULL, 10);
    CHECK(base >= 1);
    /* No answer: the shard may have prepared, so the client aborts it; each
     * attempt (a quarter of the timeout) is one more prepare, under a new
     * transaction id, and one more abort. */
    uint64_t before = stats(c).prepares;
    CHECK_ERR(put(c, "v-s", "x"), 0);
    COMMIT(c, ETIMEDOUT);
    uint64_t tries = stats(c).prepares - before;
    char want[24];
    snprintf(want, sizeof(want), "%" PRIu64, base + tries);
    CHECK(tries >= 1);
    GET_IS(c, "aborts", 0, want);
    /* A read-only transaction is validated too; its reads are the votes'
     * keys. */
    GET_IS(c, "ok-v", 0, "val:ok-v");
    COMMIT(c, 0);
    /* UNAVAIL and NOTPRIMARY (with no other replica to go to) prepared
     * again, with no ABORT (neither held the prepare), until the deadline. */
    CHECK(stats(c).retries >= 2 && stats(c).prepares == 10 + stats(c).retries);
    txc_close(c);
    fakes_stop();
}

/* A key read twice that gave two versions (here a replica that went
 * back: 50 then 40) aborts at commit without a prepare: the transaction
 * saw two states, though its first read alone would validate. */
static void fake_reread(void)
{
    struct txc_config cfg = fake_cluster(TXC_OCC, 1, 1, SHORT_MS);
    struct txc *c = open_or_die(&cfg);
    uint64_t ver = 0;
    txc_begin(c);
    GET_VER(c, "lag-a", 0, "new", &ver);
    CHECK(ver == 50);
    GET_VER(c, "lag-a", 0, "old", &ver);
    CHECK(ver == 40);
    CHECK_ERR(put(c, "ok-w", "x"), 0);
    COMMIT(c, EAGAIN);
    CHECK(stats(c).prepares == 0 && stats(c).aborts == 1 && stats(c).commits == 0);
    /* The next transaction starts clean. */
    CHECK_ERR(put(c, "ok-w", "x"), 0);
    COMMIT(c, 0);
    txc_close(c);
    fakes_stop();
}

/* occ over two shards: one no vote aborts the other shard's yes. */
static void fake_two_shards(void)
{
    struct txc_config cfg = fake_cluster(TXC_OCC, 2, 1, 0);
    struct txc *c = open_or_die(&cfg);
    char k0[128], k1[128], a0[128], a1[128];
    key_in(k0, sizeof(k0), "v-oa", 0, 2);
    key_in(k1, sizeof(k1), "v-oa", 1, 2);
    key_in(a0, sizeof(a0), "aborts", 0, 2);
    key_in(a1, sizeof(a1), "aborts", 1, 2);
    CHECK_ERR(put(c, k0, "x"), 0);
    CHECK_ERR(put(c, k1, "x"), 0);
    COMMIT(c, EAGAIN);
    CHECK(stats(c).prepares == 2);
    GET_IS(c, a0, 0, "1");
    GET_IS(c, a1, 0, "0");
    txc_abort(c);
    key_in(k0, sizeof(k0), "v-oo", 0, 2);
    key_in(k1, sizeof(k1), "v-oo", 1, 2);
    CHECK_ERR(put(c, k0, "x"), 0);
    CHECK_ERR(put(c, k1, "x"), 0);
    COMMIT(c, 0);
    /* A transaction that touches one shard prepares only there, under
     * an id that says so (TXN_ID_SOLO); the others' ids do not. */
    CHECK_ERR(put(c, k1, "y"), 0);
    COMMIT(c, 0);
    CHECK(stats(c).prepares == 5 && stats(c).commits == 2 && stats(c).aborts == 1);
    CHECK(seen[0].prepares == 2 && seen[1].prepares == 3);
    for (int i = 0; i < 2; i++) {
        CHECK(seen[0].prepare_txnid[i] == seen[1].prepare_txnid[i]);
        CHECK((seen[0].prepare_txnid[i] & TXN_ID_FLAGS) == TXN_ID_MULTI); /* shard 0 coordinates */
    }
    CHECK((seen[1].prepare_txnid[2] & TXN_ID_FLAGS) == TXN_ID_SOLO);
    /* The coordinator (the lowest shard touched) is prepared first: its
     * no vote leaves shard 1 without a prepare. */
    key_in(k0, sizeof(k0), "v-ao", 0, 2);
    key_in(k1, sizeof(k1), "v-ao", 1, 2);
    CHECK_ERR(put(c, k0, "x"), 0);
    CHECK_ERR(put(c, k1, "x"), 0);
    COMMIT(c, EAGAIN);
    CHECK(seen_n(&seen[0].prepares) == 3 && seen_n(&seen[1].prepares) == 3);
    /* It is committed first: its ABORT answer (it gave the transaction up
     * as an orphan) aborts it, with no COMMIT to shard 1. */
    key_in(k0, sizeof(k0), "v-ro", 0, 2);
    key_in(k1, sizeof(k1), "v-ro", 1, 2);
    CHECK_ERR(put(c, k0, "x"), 0);
    CHECK_ERR(put(c, k1, "x"), 0);
    uint32_t commits1 = seen_n(&seen[1].commits), aborts1 = seen_n(&seen[1].aborts);
    COMMIT(c, EAGAIN);
    CHECK(seen_n(&seen[1].prepares) == 4 && seen_n(&seen[1].commits) == commits1);
    CHECK(seen_n(&seen[1].aborts) == aborts1 + 1);
    CHECK(stats(c).aborts == 3);
    txc_close(c);
    fakes_stop();
}

/* ---- fake cases: occ failover (a shard of three, replica 0 the first
 * primary guessed) ---- */

/* Replica 0 answers NOTPRIMARY naming view 1: the transaction prepares
 * again, with a fresh txnid, at replica 1 and commits there; the next one
 * goes straight to replica 1. */
static void fake_notprimary(void)
{
    struct txc_config cfg = fake_cluster(TXC_OCC, 1, 3, 0);
    struct txc *c = open_or_die(&cfg);
    CHECK_ERR(put(c, "v-n", "x"), 0);
    COMMIT(c, 0);
    struct txc_stats st = stats(c);
    CHECK(st.commits == 1 && st.retries == 1 && st.failovers == 1 && st.prepares == 2);
    CHECK(seen_n(&seen[0].prepares) == 1 && seen_n(&seen[1].prepares) == 1);
    CHECK(seen[1].prepare_txnid[0] != seen[0].prepare_txnid[0]);
    CHECK(seen_n(&seen[1].commits) == 1 && seen_n(&seen[0].commits) == 0);
    CHECK(seen_n(&seen[0].aborts) == 0); /* it held nothing */
    CHECK_ERR(put(c, "v-n", "y"), 0);
    COMMIT(c, 0);
    st = stats(c);
    CHECK(st.commits == 2 && st.retries == 1 && st.failovers == 1 && st.prepares == 3);
    CHECK(seen_n(&seen[0].prepares) == 1 && seen_n(&seen[1].prepares) == 2 && seen_n(&seen[1].commits) == 2);
    CHECK(seen_n(&seen[2].prepares) == 0);
    txc_close(c);
    fakes_stop();
}

/* Replica 0 closes the connection on a PREPARE: the shard may hold it, so
 * its ABORT goes to the next replica (the new guess), then the transaction
 * prepares and commits there. */
static void fake_primary_closes(void)
{
    struct txc_config cfg = fake_cluster(TXC_OCC, 1, 3, 0);
    struct txc *c = open_or_die(&cfg);
    CHECK_ERR(put(c, "v-c", "x"), 0);
    COMMIT(c, 0);
    struct txc_stats st = stats(c);
    CHECK(st.commits == 1 && st.retries == 1 && st.failovers == 1);
    CHECK(seen_n(&seen[0].prepares) == 1 && seen_n(&seen[1].prepares) == 1 && seen_n(&seen[1].commits) == 1);
    CHECK(seen_n(&seen[1].aborts) == 1 && seen[1].abort_txnid[0] == seen[0].prepare_txnid[0]);
    CHECK(seen[1].prepare_txnid[0] != seen[0].prepare_txnid[0]);
    txc_close(c);
    fakes_stop();
}

/* Two shards; shard 0's primary (the coordinator) answers UNAVAIL to its
 * first two PREPAREs. Each prepare phase runs with a fresh txnid and
 * timestamp; shard 1 is only prepared once the coordinator voted yes, so
 * it sees the third alone, and shard 0 the ABORTs of the first two (an
 * UNAVAIL is a doubt). */
static void fake_unavail_twice(void)
{
    struct txc_config cfg = fake_cluster(TXC_OCC, 2, 3, 0);
    struct txc *c = open_or_die(&cfg);
    char k0[128], k1[128];
    key_in(k0, sizeof(k0), "v-U", 0, 2);
    key_in(k1, sizeof(k1), "v-o", 1, 2);
    CHECK_ERR(put(c, k0, "x"), 0);
    CHECK_ERR(put(c, k1, "x"), 0);
    uint64_t ts = COMMIT(c, 0);
    struct txc_stats st = stats(c);
    CHECK(st.commits == 1 && st.retries == 2 && st.failovers == 0 && st.prepares == 4);
    const struct fake_seen *a = &seen[0], *b = &seen[3]; /* the shards' replica 0 */
    CHECK(seen_n(&seen[0].prepares) == 3 && seen_n(&seen[3].prepares) == 1);
    for (int j = 1; j < 3; j++)
        CHECK(a->prepare_txnid[j] != a->prepare_txnid[j - 1] && a->prepare_ts[j] > a->prepare_ts[j - 1]);
    CHECK(a->prepare_txnid[2] == b->prepare_txnid[0] && a->prepare_ts[2] == b->prepare_ts[0]);
    CHECK(ts == a->prepare_ts[2]);
    CHECK(seen_n(&seen[3].aborts) == 0);
    /* UNAVAIL is a doubt (a deposed primary keeps its prepares): aborted. */
    CHECK(seen_n(&seen[0].aborts) == 2 && a->abort_txnid[0] == a->prepare_txnid[0] &&
          a->abort_txnid[1] == a->prepare_txnid[1]);
    CHECK(seen_n(&seen[0].commits) == 1 && seen_n(&seen[3].commits) == 1);
    txc_close(c);
    fakes_stop();
}

/* Replica 0 votes yes, then answers its COMMIT NOTPRIMARY: the COMMIT
 * goes to replica 1 and the transaction commits; the next goes there. */
static void fake_commit_notprimary(void)
{
    struct txc_config cfg = fake_cluster(TXC_OCC, 1, 3, 0);
    struct txc *c = open_or_die(&cfg);
    CHECK_ERR(put(c, "v-p", "x"), 0);
    COMMIT(c, 0);
    struct txc_stats st = stats(c);
    CHECK(st.commits == 1 && st.retries == 0 && st.failovers == 1 && st.prepares == 1);
    CHECK(seen_n(&seen[0].commits) == 1 && seen_n(&seen[1].commits) == 1 && seen_n(&seen[1].prepares) == 0);
    CHECK_ERR(put(c, "v-o", "x"), 0);
    COMMIT(c, 0);
    CHECK(seen_n(&seen[0].prepares) == 1 && seen_n(&seen[1].prepares) == 1);
    txc_close(c);
    fakes_stop();
}

/* Every replica answers UNAVAIL: the commit gives up by its deadline
 * (COMMIT_GAVE_UP), having prepared again and again at the one it
 * guessed. The time bound is a hang guard, not a speed assumption: the
 * deadline is SHORT_MS, a client ignoring it would retry for ever. */
static void fake_unavail_forever(void)
{
    struct txc_config cfg = fake_cluster(TXC_OCC, 1, 3, SHORT_MS);
    struct txc *c = open_or_die(&cfg);
    CHECK_ERR(put(c, "v-uuu", "x"), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int e = COMMIT_GAVE_UP(c);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    struct txc_stats st = stats(c);
    fprintf(stderr, "gave up after %ld ms, %" PRIu64 " retries, with %s\n", ms, st.retries, strerror(e));
    CHECK(ms <= SHORT_MS + 5000);
    CHECK(st.commits == 0);
    if (e == EIO) {
        /* Every round was answered: each at the replica it guessed. */
        CHECK(st.retries >= 1 && st.prepares == 1 + st.retries && st.failovers == 0);
        CHECK(seen_n(&seen[0].prepares) == st.prepares && seen_n(&seen[1].prepares) == 0);
        CHECK(seen_n(&seen[0].aborts) >= 1); /* UNAVAIL is a doubt: aborted */
    }
    /* The client is still usable. */
    CHECK_ERR(put(c, "v-o", "x"), 0);
    COMMIT(c, 0);
    txc_close(c);
    fakes_stop();
}

/* Replica 0's fake dies and another takes its port: a PREPARE sent on the
 * dead connection moves the guess to replica 1, whose NOTPRIMARY names
 * view 3 (replica 0 again), and the client reopens the connection to
 * replica 0 (once REVIVE_NS passed) and commits there; a get then reaches
 * the new fake too. */
static void fake_reconnect(void)
{
    struct txc_config cfg = {.mode = TXC_OCC, .nshards = 1, .nreplicas = 3};
    for (int r = 0; r < 3; r++)
        cfg.replica[0][r] = loopback(fake_start(r));
    int again = fake_start_later(0, ntohs(cfg.replica[0][0].sin_port));
    init_demi();
    struct txc *c = open_or_die(&cfg);
    CHECK_ERR(put(c, "v-om", "x"), 0);
    COMMIT(c, 0);
    CHECK(seen_n(&seen[0].commits) == 1 && stats(c).failovers == 0);

    fake_kill(0);
    fake_wake(again);
    CHECK_ERR(put(c, "v-om", "y"), 0);
    COMMIT(c, 0);
    struct txc_stats st = stats(c);
    fprintf(stderr, "%" PRIu64 " retries, %" PRIu64 " failovers\n", st.retries, st.failovers);
    CHECK(st.commits == 2 && st.retries >= 2 && st.failovers >= 2);
    CHECK(seen_n(&seen[again].prepares) == 1 && seen_n(&seen[again].commits) == 1);
    CHECK(seen_n(&seen[1].prepares) >= 1 && seen_n(&seen[1].commits) == 0);
    /* The PREPARE sent on the dead connection (whose id no fake saw) was
     * aborted at replica 1, the next guess; NOTPRIMARY needs no ABORT. */
    CHECK(seen_n(&seen[1].aborts) == 1 && seen_n(&seen[0].prepares) == 1);
    CHECK(seen[1].abort_txnid[0] != seen[1].prepare_txnid[0] && seen[1].abort_txnid[0] != seen[0].prepare_txnid[0]);
    uint64_t ver = 0;
    GET_VER(c, "ok-again", 0, "val:ok-again", &ver);
    CHECK(ver == 42 && seen_n(&seen[again].gets) == 1);
    COMMIT(c, 0);
    txc_close(c);
    fakes_stop();
}

/* ---- cases against demi-txnd ---- */

static struct txc_config real_cfg;
static char tag[32]; /* makes this run's keys its own */

static void parse_addr(const char *s, size_t n, struct sockaddr_in *a)
{
    char buf[64];
    CHECK(n < sizeof(buf));
    memcpy(buf, s, n);
    buf[n] = 0;
    char *colon = strrchr(buf, ':');
    CHECK(colon != NULL);
    *colon = 0;
    *a = loopback((uint16_t)atoi(colon + 1));
    CHECK(inet_pton(AF_INET, buf, &a->sin_addr) == 1);
}

/* "A,B,C;D,E,F": shards separated by ';', replicas by ','. */
static void parse_cluster(const char *s, enum txc_mode mode)
{
    memset(&real_cfg, 0, sizeof(real_cfg));
    real_cfg.mode = mode;
    uint32_t r = 0;
    for (const char *p = s;;) {
        size_t n = strcspn(p, ",;");
        CHECK(real_cfg.nshards < TXC_SHARDS_MAX && r < TXC_REPLICAS_MAX);
        parse_addr(p, n, &real_cfg.replica[real_cfg.nshards][r++]);
        if (p[n] != ',') {
            CHECK(real_cfg.nshards == 0 || r == real_cfg.nreplicas);
            real_cfg.nreplicas = r;
            real_cfg.nshards++;
            r = 0;
        }
        if (!p[n])
            break;
        p += n + 1;
    }
}

static struct txc *real_open(uint32_t read_replica)
{
    struct txc_config cfg = real_cfg;
    cfg.read_replica = read_replica;
    return open_or_die(&cfg);
}

/* This run's name for key NAME (in SHARD when SHARD >= 0). */
static const char *K(char *buf, size_t len, const char *name, int shard)
{
    char base[64];
    snprintf(base, sizeof(base), "%s-%s", tag, name);
    if (shard < 0)
        snprintf(buf, len, "%s", base);
    else
        key_in(buf, len, base, (uint32_t)shard, real_cfg.nshards);
    return buf;
}

/* A replica that may lag (a quorum did not wait for it) must show VAL
 * soon: polled, up to a hang guard. */
static void eventually(struct txc *c, const char *k, const char *val)
{
    for (int i = 0; i < 2000; i++) {
        const uint8_t *v;
        size_t n;
        int e = txc_get(c, B(k), strlen(k), &v, &n);
        txc_abort(c);
        if (e == 0 && n == strlen(val) && memcmp(v, val, n) == 0)
            return;
        CHECK(e == 0 || e == ENOENT);
        usleep(5000);
    }
    fprintf(stderr, "%s never became %s\n", k, val);
    exit(1);
}

static void qw_basic(void)
{
    char k[96], k2[96];
    struct txc *c = real_open(0);
    K(k, sizeof(k), "x", -1);
    GET_IS(c, k, ENOENT, NULL);
    txc_abort(c);
    CHECK_ERR(put(c, k, "v1"), 0);
    GET_IS(c, k, 0, "v1"); /* its own write */
    uint64_t t1 = COMMIT(c, 0);
    uint64_t ver = 0;
    GET_VER(c, k, 0, "v1", &ver);
    CHECK(ver == t1);
    COMMIT(c, 0);
    CHECK_ERR(put(c, k, "v2"), 0);
    CHECK_ERR(put(c, K(k2, sizeof(k2), "y", -1), "w"), 0);
    uint64_t t2 = COMMIT(c, 0);
    CHECK(t2 > t1);
    GET_IS(c, k, 0, "v2");
    GET_IS(c, k2, 0, "w");
    txc_abort(c);
    /* An aborted transaction's writes go nowhere. */
    CHECK_ERR(put(c, k, "never"), 0);
    txc_abort(c);
    GET_IS(c, k, 0, "v2");
    txc_abort(c);
    /* Every replica has the writes, eventually (the commit waited for a
     * majority only). */
    for (uint32_t r = 0; r < real_cfg.nreplicas; r++) {
        struct txc *o = real_open(r);
        eventually(o, k, "v2");
        eventually(o, k2, "w");
        txc_close(o);
    }
    struct txc_stats st = stats(c);
    CHECK(st.commits == 3 && st.puts == 3 * real_cfg.nreplicas && st.aborts == 0);
    txc_close(c);
}

static void qw_load(void)
{
    char k[96];
    struct txc *c = real_open(0);
    CHECK_ERR(load(c, K(k, sizeof(k), "loaded", -1), "initial"), 0);
    txc_close(c);
    /* A load waits for every replica. */
    for (uint32_t r = 0; r < real_cfg.nreplicas; r++) {
        c = real_open(r);
        GET_IS(c, k, 0, "initial");
        txc_close(c);
    }
    /* A later write wins over the load. */
    c = real_open(0);
    CHECK_ERR(put(c, k, "later"), 0);
    COMMIT(c, 0);
    GET_IS(c, k, 0, "later");
    txc_close(c);
}

static void occ_single(void)
{
    char k[96];
    struct txc *c = real_open(0);
    K(k, sizeof(k), "x", -1);
    GET_IS(c, k, ENOENT, NULL);
    CHECK_ERR(put(c, k, "1"), 0);
    uint64_t t1 = COMMIT(c, 0);
    uint64_t ver = 0;
    GET_VER(c, k, 0, "1", &ver);
    CHECK(ver == t1);
    CHECK_ERR(put(c, k, "2"), 0);
    uint64_t t2 = COMMIT(c, 0);
    CHECK(t2 > t1);
    GET_IS(c, k, 0, "2");
    COMMIT(c, 0);
    struct txc_stats st = stats(c);
    CHECK(st.commits == 3 && st.aborts == 0 && st.prepares == 3);
    txc_close(c);
}

/* One transaction over two shards, and its own writes read back. */
static void occ_multi(void)
{
    CHECK(real_cfg.nshards >= 2);
    char a[96], b[96];
    struct txc *c = real_open(0);
    K(a, sizeof(a), "a", 0);
    K(b, sizeof(b), "b", 1);
    CHECK_ERR(put(c, a, "A1"), 0);
    CHECK_ERR(put(c, b, "B1"), 0);
    uint64_t ver = 0;
    GET_VER(c, a, 0, "A1", &ver);
    CHECK(ver == UINT64_MAX);
    COMMIT(c, 0);
    CHECK(stats(c).prepares == 2);
    /* Read both, write both (a transfer). */
    GET_IS(c, a, 0, "A1");
    GET_IS(c, b, 0, "B1");
    CHECK_ERR(put(c, a, "A2"), 0);
    CHECK_ERR(put(c, b, "B2"), 0);
    GET_IS(c, b, 0, "B2");
    COMMIT(c, 0);
    /* From the backups too, once a later read-only transaction commits
     * (a backup may lag; a stale read would abort the transaction). */
    for (uint32_t r = 0; r < real_cfg.nreplicas; r++) {
        struct txc *o = real_open(r);
        for (int tries = 0;; tries++) {
            CHECK(tries < 2000);
            const uint8_t *v;
            size_t n;
            int e = txc_get(o, B(a), strlen(a), &v, &n);
            if (e == 0 && n == 2 && memcmp(v, "A2", 2) == 0 && txc_get(o, B(b), strlen(b), &v, &n) == 0 && n == 2 &&
                memcmp(v, "B2", 2) == 0 && txc_commit(o, NULL) == 0)
                break;
            txc_abort(o);
            usleep(5000);
        }
        txc_close(o);
    }
    txc_close(c);
}

/* Two clients on one thread, interleaved: A's read is overwritten by B's
 * commit, so A aborts; A's retry commits. */
static void occ_conflict(void)
{
    char x[96];
    struct txc *a = real_open(0), *b = real_open(0);
    K(x, sizeof(x), "x", -1);
    CHECK_ERR(put(a, x, "0"), 0);
    COMMIT(a, 0);

    txc_begin(a);
    GET_IS(a, x, 0, "0");
    txc_begin(b);
    GET_IS(b, x, 0, "0");
    CHECK_ERR(put(b, x, "b"), 0);
    COMMIT(b, 0);
    CHECK_ERR(put(a, x, "a"), 0);
    COMMIT(a, EAGAIN);
    CHECK(stats(a).aborts == 1);

    txc_begin(a);
    GET_IS(a, x, 0, "b");
    CHECK_ERR(put(a, x, "a"), 0);
    COMMIT(a, 0);
    GET_IS(b, x, 0, "a");
    COMMIT(b, 0);
    txc_close(a);
    txc_close(b);
}

/* A read-only transaction whose read was overwritten meanwhile aborts;
 * so does one that found nothing where a value was then written. */
static void occ_readonly(void)
{
    char y[96], z[96];
    struct txc *a = real_open(0), *b = real_open(0);
    K(y, sizeof(y), "y", -1);
    K(z, sizeof(z), "z", -1);
    CHECK_ERR(load(b, y, "old"), 0);
    GET_IS(a, y, 0, "old");
    CHECK_ERR(put(b, y, "new"), 0);
    COMMIT(b, 0);
    COMMIT(a, EAGAIN);
    GET_IS(a, y, 0, "new");
    COMMIT(a, 0);

    GET_IS(a, z, ENOENT, NULL);
    CHECK_ERR(put(b, z, "appeared"), 0);
    COMMIT(b, 0);
    COMMIT(a, EAGAIN);
    GET_IS(a, z, 0, "appeared");
    COMMIT(a, 0);
    txc_close(a);
    txc_close(b);
}

/* Writes read nothing: they commit whatever the keys held. */
static void occ_blind(void)
{
    char k[96];
    struct txc *a = real_open(0), *b = real_open(0);
    for (int s = 0; s < (int)real_cfg.nshards; s++) {
        char name[32];
        snprintf(name, sizeof(name), "blind%d", s);
        CHECK_ERR(put(b, K(k, sizeof(k), name, s), "b"), 0);
    }
    COMMIT(b, 0);
    for (int s = 0; s < (int)real_cfg.nshards; s++) {
        char name[32];
        snprintf(name, sizeof(name), "blind%d", s);
        CHECK_ERR(put(a, K(k, sizeof(k), name, s), "a"), 0);
    }
    COMMIT(a, 0);
    for (int s = 0; s < (int)real_cfg.nshards; s++) {
        char name[32];
        snprintf(name, sizeof(name), "blind%d", s);
        GET_IS(b, K(k, sizeof(k), name, s), 0, "a");
    }
    COMMIT(b, 0);
    txc_close(a);
    txc_close(b);
}

/* Load puts the value on every replica at once. */
static void occ_load(void)
{
    char k[96];
    struct txc *c = real_open(0);
    CHECK_ERR(load(c, K(k, sizeof(k), "loaded", -1), "initial"), 0);
    txc_close(c);
    for (uint32_t r = 0; r < real_cfg.nreplicas; r++) {
        c = real_open(r);
        GET_IS(c, k, 0, "initial");
        COMMIT(c, 0);
        txc_close(c);
    }
}

/* TXN_SET_MAX reads in one shard (absent keys too), then EINVAL. */
static void occ_setmax(void)
{
    char k[96], name[32];
    struct txc *c = real_open(0);
    for (int i = 0; i < TXN_SET_MAX; i++) {
        snprintf(name, sizeof(name), "many%d", i);
        GET_IS(c, K(k, sizeof(k), name, 0), ENOENT, NULL);
    }
    GET_IS(c, K(k, sizeof(k), "many-more", 0), EINVAL, NULL);
    COMMIT(c, 0);
    txc_close(c);
}

/* ---- main ---- */

enum { F_FAKE = 1, F_QW = 2, F_OCC = 4 };

static void run_case(const struct tcase *tc)
{
    if (tc->flags & F_QW)
        parse_cluster(getenv("TXN_QW"), TXC_QW);
    if (tc->flags & F_OCC)
        parse_cluster(getenv("TXN_OCC"), TXC_OCC);
    if (tc->flags & (F_QW | F_OCC)) {
        snprintf(tag, sizeof(tag), "%s-%ld-%ld", tc->name, (long)getpid(), (long)time(NULL));
        init_demi();
    }
    tc->run(); /* fake cases call demi_init once their replicas run */
    /* Under LSan, every case ends with no leak (txc_close freed it all). */
    if (__lsan_do_recoverable_leak_check && __lsan_do_recoverable_leak_check() != 0)
        exit(1);
}

static const struct tcase all[] = {
    {"fake_open_errors", fake_open_errors, F_FAKE},
    {"fake_open_majority", fake_open_majority, F_FAKE},
    {"fake_limits", fake_limits, F_FAKE},
    {"fake_gets", fake_gets, F_FAKE},
    {"fake_timeouts", fake_timeouts, F_FAKE},
    {"fake_malformed", fake_malformed, F_FAKE},
    {"fake_quorum", fake_quorum, F_FAKE},
    {"fake_votes", fake_votes, F_FAKE},
    {"fake_two_shards", fake_two_shards, F_FAKE},
    {"fake_reread", fake_reread, F_FAKE},
    {"fake_notprimary", fake_notprimary, F_FAKE},
    {"fake_primary_closes", fake_primary_closes, F_FAKE},
    {"fake_unavail_twice", fake_unavail_twice, F_FAKE},
    {"fake_commit_notprimary", fake_commit_notprimary, F_FAKE},
    {"fake_unavail_forever", fake_unavail_forever, F_FAKE},
    {"fake_reconnect", fake_reconnect, F_FAKE},
    {"qw_basic", qw_basic, F_QW},
    {"qw_load", qw_load, F_QW},
    {"occ_single", occ_single, F_OCC},
    {"occ_multi", occ_multi, F_OCC},
    {"occ_conflict", occ_conflict, F_OCC},
    {"occ_readonly", occ_readonly, F_OCC},
    {"occ_blind", occ_blind, F_OCC},
    {"occ_load", occ_load, F_OCC},
    {"occ_setmax", occ_setmax, F_OCC},
};

int main(int argc, char **argv)
{
    const char *qw = getenv("TXN_QW"), *occ = getenv("TXN_OCC"), *fake = getenv("TXN_FAKE");
    unsigned want = 0;
    if (qw && *qw)
        want |= F_QW;
    if (occ && *occ)
        want |= F_OCC;
    if (!want || (fake && strcmp(fake, "1") == 0))
        want |= F_FAKE;
    struct tcase cases[sizeof(all) / sizeof(all[0])];
    size_t n = 0;
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (all[i].flags & want)
            cases[n++] = all[i];
    return tcase_main(argc, argv, cases, n, "txn client", run_case);
}
