/*
 * tests/txn/txn_logclient.c: the client side of test_txn_log.sh (which
 * checks demi-txnd's --log across kill -9 and restarts) and
 * test_txn_orphan.sh: a helper, not a test on its own (hence no test_
 * prefix). Every command talks to one occ shard named by
 * TXN_OCC="IP:PORT,IP:PORT,IP:PORT" (replica 0 the primary; write and
 * pairs also take several shards separated by ';'), or, for write and
 * check, one qw shard named by TXN_QW, on 127.0.0.1 only.
 *
 *   write FILE N PREFIX [K]  N transactions, each writing PREFIX.a.I and
 *                         PREFIX.b.I (I modulo K when K is given: keys
 *                         written over and over); each one committed is
 *                         appended to
 *                         FILE ("KEY VERSION VALUE", one line per key,
 *                         flushed) only after txc_commit returned 0. Stops
 *                         at the first error that is not a conflict (the
 *                         replicas were killed): exit 0 after N, 3 then.
 *   check FILE            the last line of FILE for each key must be on
 *                         the primary with that version and value (or a
 *                         newer version: a write not yet acknowledged when
 *                         the replicas died may have landed), and on at least one
 *                         backup (a commit is acknowledged once a majority
 *                         has it durable); in qw, on a majority of the
 *                         replicas. Exit 0, or 1 naming what is missing.
 *   prepare TXNID TS KEY VAL   a raw PREPARE of a transaction writing KEY
 *                         at TS, sent to the primary, that is never
 *                         decided here: must answer OK.
 *   commit TXNID TS [STATUS]  a raw COMMIT to the primary: must answer
 *                         STATUS (a txn_status_name: OK unless given).
 *                         A TXNID of solo:N stands for N | TXN_ID_SOLO,
 *                         multi:C:N for N | TXN_ID_MULTI with shard C its
 *                         coordinator (in prepare too).
 *                         (Raw requests find the primary by trying each
 *                         replica in turn: after a restart it may be any.)
 *   conflict KEY          a transaction writing KEY must abort (a prepared
 *                         transaction holds it).
 *   commits KEY           a transaction writing KEY, retried while it
 *                         aborts, must commit; prints how many aborted.
 *   get KEY VERSION VALUE the primary must hold KEY at VERSION with VALUE.
 *   pairs PREFIX K        PREFIX.a.I and PREFIX.b.I (I below K), which write
 *                         wrote together, read in one transaction (retried
 *                         while a prepare holds them) must come from the
 *                         same iteration, or both be missing.
 *   getwait KEY VERSION VALUE  the same, asked again every 20 ms until
 *                         it holds (the caller's timeout bounds it).
 *
 * TXN_VSIZE=BYTES pads every value written or checked with 'x' up to
 * BYTES (the files keep the short form); TXN_TIMEOUT_MS sets the client's
 * call timeout (default 30000).
 *
 * The raw commands use a plain blocking socket with a 60 s receive timeout
 * (a hang guard) and msg.c's codec.
 */
#include "client.h"
#include "msg.h"

#include <demi/libos.h>

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static struct txc_config cfg;
static size_t vsize; /* TXN_VSIZE */

/* VAL padded to vsize bytes (in a static buffer); its length in *N. */
static const uint8_t *padded(const char *val, size_t *n)
{
    static uint8_t buf[2][TXN_VAL_MAX];
    static int which;
    uint8_t *b = buf[which ^= 1];
    size_t l = strlen(val);
    memcpy(b, val, l);
    if (vsize > l && vsize <= TXN_VAL_MAX) {
        memset(b + l, 'x', vsize - l);
        l = vsize;
    }
    *n = l;
    return b;
}

static void die(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "txn_logclient: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n");
    exit(1);
}

/* "IP:PORT,IP:PORT,...[;IP:PORT,...]": one shard's replicas, or several
 * shards' separated by ';' (the same count each; the raw commands go to
 * shard 0). */
static void parse_cluster(const char *s, enum txc_mode mode)
{
    if (!s)
        die("neither TXN_OCC nor TXN_QW is set%s%s", "", "");
    memset(&cfg, 0, sizeof(cfg));
    cfg.mode = mode;
    cfg.nshards = 1;
    cfg.timeout_ms = getenv("TXN_TIMEOUT_MS") ? (uint32_t)atoi(getenv("TXN_TIMEOUT_MS")) : 30000;
    uint32_t r = 0;
    for (const char *p = s;;) {
        size_t n = strcspn(p, ",;");
        char buf[64];
        if (n >= sizeof(buf) || r == TXC_REPLICAS_MAX)
            die("bad TXN_OCC '%s'%s", s, "");
        memcpy(buf, p, n);
        buf[n] = '\0';
        char *colon = strrchr(buf, ':');
        if (!colon)
            die("bad TXN_OCC '%s'%s", s, "");
        *colon = '\0';
        struct sockaddr_in *a = &cfg.replica[cfg.nshards - 1][r++];
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)atoi(colon + 1));
        if (inet_pton(AF_INET, buf, &a->sin_addr) != 1)
            die("bad TXN_OCC '%s'%s", s, "");
        if (cfg.nshards == 1)
            cfg.nreplicas = r;
        else if (r > cfg.nreplicas)
            die("bad TXN_OCC '%s': shards of different sizes%s", s, "");
        if (!p[n])
            break;
        if (p[n] == ';') {
            if (r != cfg.nreplicas || cfg.nshards == TXC_SHARDS_MAX)
                die("bad TXN_OCC '%s'%s", s, "");
            cfg.nshards++;
            r = 0;
        }
        p += n + 1;
    }
    if (r != cfg.nreplicas)
        die("bad TXN_OCC '%s': shards of different sizes%s", s, "");
}

static struct txc *open_client(uint32_t read_replica)
{
    static bool inited;
    if (!inited) {
        int e = demi_init(NULL);
        if (e)
            die("demi_init: %s%s", strerror(e), "");
        inited = true;
    }
    struct txc_config c = cfg;
    c.read_replica = read_replica;
    char err[256];
    struct txc *t = txc_open(&c, err, sizeof(err));
    if (!t)
        die("txc_open: %s%s", err, "");
    return t;
}

static const uint8_t *B(const char *s)
{
    return (const uint8_t *)s;
}

/* The two keys write writes together, and pairs checks: PREFIX.a.I and
 * PREFIX.b.I (128 bytes each). */
static void pair_keys(char *ka, char *kb, const char *prefix, long i)
{
    snprintf(ka, 128, "%s.a.%ld", prefix, i);
    snprintf(kb, 128, "%s.b.%ld", prefix, i);
}

/* One transaction writing VAL (a byte) to KEY: txc_commit's answer. */
static int put_commit(struct txc *t, const char *key, const char *val)
{
    txc_begin(t);
    int e = txc_put(t, B(key), strlen(key), B(val), 1);
    return e ? e : txc_commit(t, NULL);
}

static int cmd_write(const char *file, long n, const char *prefix, long k)
{
    FILE *f = fopen(file, "a");
    if (!f)
        die("%s: %s", file, strerror(errno));
    struct txc *t = open_client(0);
    for (long i = 0; i < n;) {
        char ka[128], kb[128], va[128], vb[128];
        pair_keys(ka, kb, prefix, k > 0 ? i % k : i);
        snprintf(va, sizeof(va), "va-%ld-%s", i, prefix);
        snprintf(vb, sizeof(vb), "vb-%ld-%s", i, prefix);
        txc_begin(t);
        size_t la, lb;
        const uint8_t *pa = padded(va, &la), *pb = padded(vb, &lb);
        int e = txc_put(t, B(ka), strlen(ka), pa, la);
        if (!e)
            e = txc_put(t, B(kb), strlen(kb), pb, lb);
        uint64_t ts = 0;
        if (!e)
            e = txc_commit(t, &ts);
        if (e == EAGAIN)
            continue;
        if (e) {
            fprintf(stderr, "txn_logclient: write stopped at %ld: %s\n", i, strerror(e));
            fclose(f);
            txc_close(t);
            return 3;
        }
        fprintf(f, "%s %" PRIu64 " %s\n%s %" PRIu64 " %s\n", ka, ts, va, kb, ts, vb);
        fflush(f);
        i++;
    }
    fclose(f);
    txc_close(t);
    return 0;
}

/* The iteration a value of cmd_write's names ("va-I-PREFIX"), or -1 for
 * none (NOTFOUND). */
static long iteration(int e, const uint8_t *v, size_t n)
{
    char buf[64];
    if (e == ENOENT)
        return -1;
    if (n < 4 || n >= sizeof(buf))
        return -2;
    memcpy(buf, v, n);
    buf[n] = '\0';
    return strtol(buf + 3, NULL, 10);
}

/* PREFIX.a.K and PREFIX.b.K, for each K below N, were written together
 * by cmd_write: read in one transaction (validated at commit, so retried
 * while a prepared transaction still holds them), they must name the
 * same iteration, or both be missing. Exit 0, or 1 naming a pair that
 * does not. */
static int cmd_pairs(const char *prefix, long n)
{
    struct txc *t = open_client(0);
    long bad = 0, split = 0, retries = 0;
    for (long k = 0; k < n; k++) {
        char ka[128], kb[128];
        pair_keys(ka, kb, prefix, k);
        split += txc_shard_of(B(ka), strlen(ka), cfg.nshards) != txc_shard_of(B(kb), strlen(kb), cfg.nshards);
        long ia = -2, ib = -2;
        int e;
        for (;;) {
            const uint8_t *v = NULL;
            size_t vn = 0;
            txc_begin(t);
            e = txc_get(t, B(ka), strlen(ka), &v, &vn);
            ia = iteration(e, v, vn);
            if (e == 0 || e == ENOENT) {
                e = txc_get(t, B(kb), strlen(kb), &v, &vn);
                ib = iteration(e, v, vn);
            }
            if (e == 0 || e == ENOENT)
                e = txc_commit(t, NULL);
            else
                txc_abort(t);
            if (e != EAGAIN)
                break;
            retries++;
            usleep(20000);
        }
        if (e) {
            fprintf(stderr, "txn_logclient: reading %s and %s: %s\n", ka, kb, strerror(e));
            bad++;
        } else if (ia != ib || ia == -2) {
            fprintf(stderr, "txn_logclient: %s holds iteration %ld, %s iteration %ld: not written together\n", ka, ia,
                    kb, ib);
            bad++;
        }
    }
    txc_close(t);
    printf("pairs: %ld checked (%ld on two shards), %ld retried reads, %ld not written together\n", n, split, retries,
           bad);
    return bad ? 1 : 0;
}

/* KEY at VERSION with VALUE on replica R? */
static bool has(struct txc *t, const char *key, uint64_t ver, const char *val, bool say, uint32_t r)
{
    const uint8_t *v = NULL;
    size_t vlen = 0;
    uint64_t got = 0;
    txc_begin(t);
    int e = txc_get_ver(t, B(key), strlen(key), &v, &vlen, &got);
    size_t want_len;
    const uint8_t *want = padded(val, &want_len);
    bool ok = e == 0 && (got > ver || (got == ver && vlen == want_len && memcmp(v, want, vlen) == 0));
    if (!ok && say)
        fprintf(stderr, "txn_logclient: replica %u: %s: %s, version %" PRIu64 " (want %" PRIu64 " '%s')\n", r, key,
                e ? strerror(e) : "found", got, ver, val);
    txc_abort(t);
    return ok;
}

static int cmd_check(const char *file)
{
    FILE *f = fopen(file, "r");
    if (!f)
        die("%s: %s", file, strerror(errno));
    struct txc *t[TXC_REPLICAS_MAX];
    for (uint32_t r = 0; r < cfg.nreplicas; r++)
        t[r] = open_client(r);
    /* Every line, then only the last one of each key is checked. */
    struct line {
        char key[128], val[128];
        uint64_t ver;
    } *ls = NULL;
    size_t nls = 0, cap = 0;
    for (;;) {
        if (nls == cap) {
            cap = cap ? cap * 2 : 1024;
            if (!(ls = realloc(ls, cap * sizeof(*ls))))
                die("out of memory%s%s", "", "");
        }
        if (fscanf(f, "%127s %" SCNu64 " %127s", ls[nls].key, &ls[nls].ver, ls[nls].val) != 3)
            break;
        nls++;
    }
    long lines = 0, bad = 0;
    for (size_t li = 0; li < nls; li++) {
        bool later = false;
        for (size_t j = li + 1; j < nls && !later; j++)
            later = strcmp(ls[j].key, ls[li].key) == 0;
        if (later)
            continue;
        const char *key = ls[li].key, *val = ls[li].val;
        uint64_t ver = ls[li].ver;
        lines++;
        bool ok;
        if (cfg.mode == TXC_QW) {
            uint32_t have = 0;
            for (uint32_t r = 0; r < cfg.nreplicas; r++)
                have += has(t[r], key, ver, val, false, r);
            ok = have > cfg.nreplicas / 2;
            if (!ok)
                fprintf(stderr, "txn_logclient: %s version %" PRIu64 " is on %u replicas, not a majority\n", key, ver,
                        have);
        } else {
            ok = has(t[0], key, ver, val, true, 0);
            uint32_t backups = 0;
            for (uint32_t r = 1; r < cfg.nreplicas; r++)
                backups += has(t[r], key, ver, val, false, r);
            if (ok && cfg.nreplicas > 1 && backups == 0) {
                fprintf(stderr, "txn_logclient: %s version %" PRIu64 " is on no backup\n", key, ver);
                ok = false;
            }
        }
        bad += !ok;
    }
    fclose(f);
    free(ls);
    for (uint32_t r = 0; r < cfg.nreplicas; r++)
        txc_close(t[r]);
    printf("check: %zu acknowledged writes, %ld keys checked, %ld missing or wrong\n", nls, lines, bad);
    return bad || lines == 0 ? 1 : 0;
}

/* One request to replica R over a plain socket: the reply's status, or
 * TXN_ST_END when R could not be reached (it may be down). */
static uint8_t raw_one(uint32_t r, struct txn_msg *m)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {60, 0};
    if (fd < 0)
        die("socket: %s%s", strerror(errno), "");
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
        connect(fd, (struct sockaddr *)&cfg.replica[0][r], sizeof(cfg.replica[0][r]))) {
        close(fd);
        return TXN_ST_END;
    }
    static uint8_t buf[TXN_HDR_LEN + TXN_BODY_MAX];
    size_t n = txn_msg_encode(m, buf, sizeof(buf));
    if (n == 0 || write(fd, buf, n) != (ssize_t)n)
        die("sending a %s%s", txn_type_name(m->type), "");
    size_t have = 0, flen = 0;
    const char *why = NULL;
    int k;
    while ((k = txn_frame_len(buf, have, &flen, &why)) == 0) {
        ssize_t got = read(fd, buf + have, sizeof(buf) - have);
        if (got <= 0)
            die("reading the reply: %s%s", got ? strerror(errno) : "connection closed", "");
        have += (size_t)got;
    }
    close(fd);
    static struct txn_msg rep;
    if (k < 0 || txn_msg_decode(buf, flen, &rep, &why) != 0)
        die("a malformed reply: %s%s", why ? why : "?", "");
    printf("replica %u: %s: %s\n", r, txn_type_name(rep.type), txn_status_name(rep.status));
    return rep.status;
}

/* One request to the shard's primary, whichever replica that is now (a
 * restart with --log changes views): replicas that answer NOTPRIMARY or
 * UNAVAIL (a view change under way), or cannot be reached, are passed
 * over, round and round, for at most 60 s (a hang guard). Returns the
 * primary's status. */
static uint8_t raw(struct txn_msg *m)
{
    struct timeval t0, t;
    gettimeofday(&t0, NULL);
    for (uint32_t r = 0;; r = (r + 1) % cfg.nreplicas) {
        uint8_t st = raw_one(r, m);
        if (st != TXN_ST_END && st != TXN_ST_NOTPRIMARY && st != TXN_ST_UNAVAIL)
            return st;
        gettimeofday(&t, NULL);
        if (t.tv_sec - t0.tv_sec > 60)
            die("no primary answered within 60 s%s%s", "", "");
        usleep(20000);
    }
}

static uint64_t txnid_arg(const char *s)
{
    char *end;
    if (!strncmp(s, "solo:", 5))
        return strtoull(s + 5, NULL, 10) | TXN_ID_SOLO;
    if (!strncmp(s, "multi:", 6)) {
        uint64_t coord = strtoull(s + 6, &end, 10);
        return strtoull(end + 1, NULL, 10) | TXN_ID_MULTI | coord << TXN_ID_COORD_SHIFT;
    }
    return strtoull(s, NULL, 10);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: txn_logclient write|check|prepare|commit|conflict|get ... (see the source)\n");
        return 2;
    }
    if (getenv("TXN_QW"))
        parse_cluster(getenv("TXN_QW"), TXC_QW);
    else
        parse_cluster(getenv("TXN_OCC"), TXC_OCC);
    const char *cmd = argv[1];
    vsize = getenv("TXN_VSIZE") ? (size_t)atol(getenv("TXN_VSIZE")) : 0;
    static struct txn_msg m;
    m.reqid = 1;
    if (!strcmp(cmd, "write") && (argc == 5 || argc == 6))
        return cmd_write(argv[2], atol(argv[3]), argv[4], argc == 6 ? atol(argv[5]) : 0);
    if (!strcmp(cmd, "check") && argc == 3)
        return cmd_check(argv[2]);
    if (!strcmp(cmd, "prepare") && argc == 6) {
        m.type = TXN_PREPARE;
        m.txnid = txnid_arg(argv[2]);
        m.ts = strtoull(argv[3], NULL, 10);
        m.nwrites = 1;
        m.writes[0].key = (struct txn_bytes){B(argv[4]), (uint32_t)strlen(argv[4])};
        m.writes[0].val = (struct txn_bytes){B(argv[5]), (uint32_t)strlen(argv[5])};
        return raw(&m) == TXN_ST_OK ? 0 : 1;
    }
    if (!strcmp(cmd, "commit") && (argc == 4 || argc == 5)) {
        m.type = TXN_COMMIT;
        m.txnid = txnid_arg(argv[2]);
        m.ts = strtoull(argv[3], NULL, 10);
        return !strcmp(txn_status_name(raw(&m)), argc == 5 ? argv[4] : "OK") ? 0 : 1;
    }
    if (!strcmp(cmd, "commits") && argc == 3) {
        struct txc *t = open_client(0);
        long aborted = 0;
        int e;
        while ((e = put_commit(t, argv[2], "y")) == EAGAIN) {
            aborted++;
            usleep(20000);
        }
        txc_close(t);
        printf("commits: %s after %ld aborted\n", e ? strerror(e) : "committed", aborted);
        return e ? 1 : 0;
    }
    if (!strcmp(cmd, "conflict") && argc == 3) {
        struct txc *t = open_client(0);
        int e = put_commit(t, argv[2], "x");
        txc_close(t);
        printf("conflict: %s\n", e == EAGAIN ? "aborted" : e ? strerror(e) : "committed");
        return e == EAGAIN ? 0 : 1;
    }
    if (!strcmp(cmd, "pairs") && argc == 4)
        return cmd_pairs(argv[2], atol(argv[3]));
    if (!strcmp(cmd, "getwait") && argc == 5) {
        struct txc *t = open_client(0);
        long tries = 1;
        while (!has(t, argv[2], strtoull(argv[3], NULL, 10), argv[4], false, 0)) {
            usleep(20000);
            tries++;
        }
        txc_close(t);
        printf("getwait: found after %ld reads\n", tries);
        return 0;
    }
    if (!strcmp(cmd, "get") && argc == 5) {
        struct txc *t = open_client(0);
        bool ok = has(t, argv[2], strtoull(argv[3], NULL, 10), argv[4], true, 0);
        txc_close(t);
        return ok ? 0 : 1;
    }
    fprintf(stderr, "txn_logclient: unknown command or arguments (see the file's comment)\n");
    return 2;
}
