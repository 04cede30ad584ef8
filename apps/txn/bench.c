/*
 * demi-txn-bench: the closed-loop benchmark of TxnStore (demi-txnd), on
 * the client library of client.h alone. It runs --clients forked child
 * processes, each with its own libdemi instance (demi_init after the fork)
 * and its own client, each issuing one transaction at a time (YCSB-T or
 * Retwis) over keys drawn uniformly or by a scrambled Zipf law; the parent
 * merges what they report through pipes and prints one JSON object.
 *
 *   demi-txn-bench --mode qw|occ --shard IP:PORT,IP:PORT,... [--shard ...]
 *       [--workload ycsbt|retwis] [--clients N] [--duration S | --txns N]
 *       [--keys N] [--key-size B] [--value-size B] [--ops N]
 *       [--write-ratio F] [--zipf S] [--load] [--seed N] [--first-client N] [--hist]
 *       [--read-replica I] [--timeout-ms MS]
 *
 * It must never call demi_init in the parent (a libdemi instance does not
 * survive a fork), never let a child write to stdout (the JSON object is
 * the parent's alone), and never signal a process it did not fork.
 */
#include "client.h"
#include "hist.h"
#include "msg.h"

#include <demi/libos.h>
#include <demi/version.h>

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROG        "demi-txn-bench"
#define CLIENTS_MAX 1024
#define KEYS_MAX    1000000000000ull /* names up to key 10^12 - 1: "user" and 12 digits */
#define RETRIES_MAX 100              /* aborted attempts of one transaction before it is abandoned */
#define ERRORS_MAX  1000             /* consecutive failed transactions before a client gives up */
#define ERRNO_SLOTS 256              /* errno values a child counts one by one (others in the last) */
#define RETWIS_KEYS 10               /* the most keys one Retwis transaction touches */

enum workload { WL_YCSBT, WL_RETWIS };

struct opts {
    struct txc_config cfg;
    enum workload wl;
    uint32_t clients;
    double duration; /* seconds; used when txns is 0 */
    uint64_t txns;   /* per client */
    uint64_t keys;
    uint32_t key_size;
    uint32_t value_size;
    uint32_t ops;
    double write_ratio;
    double zipf;
    bool load;
    bool hist;
    uint64_t seed;
    uint32_t first_client; /* the number of this process's first client */
};

static volatile sig_atomic_t stop;

/* The parent's children, to pass SIGINT and SIGTERM on to (a child's copy
 * of these is emptied: it passes nothing on). */
static pid_t *kid_pids;
static volatile sig_atomic_t nkid_pids;

static void on_signal(int sig)
{
    stop = 1;
    for (sig_atomic_t i = 0; i < nkid_pids; i++)
        kill(kid_pids[i], sig);
}

/* ---- command line ---- */

#define USAGE_LINE "usage: " PROG " --mode qw|occ --shard IP:PORT[,IP:PORT...] [--shard ...] [OPTION...]"

/* The whole usage, on stdout for --help. Every option of parse()'s table
 * is here and in demi-txn-bench(1). */
static void usage(void)
{
    printf(USAGE_LINE
           "\n"
           "       " PROG " --help | --version\n"
           "  --mode qw|occ          the replicas' mode: quorum writes, or OCC transactions. Required\n"
           "  --shard IP:PORT,...    the replicas of one shard (in occ the first is the primary);\n"
           "                         once per shard, up to 16, each with the same count (1..5). Required\n"
           "  --workload ycsbt|retwis\n"
           "                         the transactions run (default ycsbt)\n"
           "  --clients N            client processes, each one transaction at a time, 1..1024 (default 1)\n"
           "  --duration SECONDS     run that long (default 5)\n"
           "  --txns N               instead: run N transactions per client\n"
           "  --keys N               keys in the key space (default 100000)\n"
           "  --key-size B           bytes of a key name (default 64)\n"
           "  --value-size B         bytes of a value, 1..262144 (default 700)\n"
           "  --ops N                ycsbt: keys per transaction, 1..64 (default 4)\n"
           "  --write-ratio F        ycsbt: fraction of the keys read that are written back (default 1.0)\n"
           "  --zipf S               key skew: 0 uniform (default), 0.9 typical\n"
           "  --load                 write every key before the run, each client a share of them\n"
           "  --seed N               seed of the random choices (default 1)\n"
           "  --first-client N       number the clients from N in the random choices (default 0)\n"
           "  --hist                 add the latency CDF to the JSON object\n"
           "  --read-replica I       the replica index gets go to, modulo the replicas (default 0)\n"
           "  --timeout-ms MS        a reply not there by then fails the call with ETIMEDOUT (default 5000)\n"
           "  --help                 this text\n"
           "  --version              the program's and libdemi's version\n"
           "Prints one JSON object on stdout. LIBOS picks the libOS (default catnap); see " PROG "(1).\n");
    exit(0);
}

/* A usage mistake: one line on stderr, exit 2. */
static void usage_error(const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    fprintf(stderr, USAGE_LINE " (%s; --help lists the options)\n", why);
    exit(2);
}

/* A value out of range: one line on stderr, exit 2. */
static void bad_value(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs(PROG ": ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static uint64_t parse_u64(const char *s, const char *what, uint64_t lo, uint64_t hi)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || *s == '-' || *s == '\0')
        bad_value("%s: not a number: %s", what, s);
    if (v < lo || v > hi)
        bad_value("%s must be %llu..%llu, got %s", what, (unsigned long long)lo, (unsigned long long)hi, s);
    return v;
}

static double parse_double(const char *s, const char *what, double lo, double hi)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || *s == '\0' || !isfinite(v))
        bad_value("%s: not a number: %s", what, s);
    if (v < lo || v > hi)
        bad_value("%s must be %g..%g, got %s", what, lo, hi, s);
    return v;
}

static int parse_addr(const char *s, size_t len, struct sockaddr_in *out)
{
    char buf[64];
    if (len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *colon = strrchr(buf, ':');
    if (!colon || colon[1] == '\0')
        return -1;
    *colon = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port <= 0 || port > 65535)
        return -1;
    memset(out, 0, sizeof(*out));
    out->sin_family = AF_INET;
    out->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, buf, &out->sin_addr) == 1 ? 0 : -1;
}

/* One --shard: its replicas, comma-separated, as many as the first shard's. */
static void parse_shard(const char *s, struct txc_config *cfg)
{
    if (cfg->nshards == TXC_SHARDS_MAX)
        bad_value("--shard: at most %d shards", TXC_SHARDS_MAX);
    uint32_t n = 0;
    for (const char *p = s;; n++) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (n == TXC_REPLICAS_MAX)
            bad_value("--shard: at most %d replicas in a shard, got %s", TXC_REPLICAS_MAX, s);
        if (parse_addr(p, len, &cfg->replica[cfg->nshards][n]))
            bad_value("--shard: expected IPv4:PORT[,IPv4:PORT...], got %s", s);
        if (!comma) {
            n++;
            break;
        }
        p = comma + 1;
    }
    if (cfg->nshards > 0 && n != cfg->nreplicas)
        bad_value("--shard: every shard needs the same number of replicas (%u), got %u in %s", cfg->nreplicas, n, s);
    cfg->nreplicas = n;
    cfg->nshards++;
}

static unsigned digits(uint64_t v)
{
    unsigned d = 1;
    while (v >= 10) {
        v /= 10;
        d++;
    }
    return d;
}

/* The sizes must let the largest transaction fit one PREPARE frame, all
 * its keys in one shard: each read is a key and a version, each write a
 * key and a value. */
static void check_sizes(const struct opts *o)
{
    unsigned need = 4 + digits(o->keys - 1);
    if (o->key_size < need)
        bad_value("--key-size %u cannot hold the name of key %llu (\"user\" and %u digits: %u bytes)", o->key_size,
                  (unsigned long long)(o->keys - 1), need - 4, need);
    uint64_t most = o->wl == WL_YCSBT ? o->ops : RETWIS_KEYS;
    if (o->keys < most)
        bad_value("--keys %llu: a transaction takes %llu distinct keys", (unsigned long long)o->keys,
                  (unsigned long long)most);
    uint64_t reads = most, writes = o->wl == WL_YCSBT ? o->ops : 5;
    uint64_t body = 8 + 8 + 4 + reads * (4 + o->key_size + 8) + 4 + writes * (4 + o->key_size + 4 + o->value_size);
    if (body > TXN_BODY_MAX)
        bad_value("a transaction of %llu writes of %u-byte keys and %u-byte values does not fit one %u-byte message",
                  (unsigned long long)writes, o->key_size, o->value_size, TXN_BODY_MAX);
}

static void parse(int argc, char **argv, struct opts *o)
{
    static const struct option lo[] = {{"mode", required_argument, 0, 'm'},
                                       {"shard", required_argument, 0, 's'},
                                       {"workload", required_argument, 0, 'w'},
                                       {"clients", required_argument, 0, 'c'},
                                       {"duration", required_argument, 0, 'd'},
                                       {"txns", required_argument, 0, 'n'},
                                       {"keys", required_argument, 0, 'k'},
                                       {"key-size", required_argument, 0, 'K'},
                                       {"value-size", required_argument, 0, 'v'},
                                       {"ops", required_argument, 0, 'o'},
                                       {"write-ratio", required_argument, 0, 'r'},
                                       {"zipf", required_argument, 0, 'z'},
                                       {"load", no_argument, 0, 'l'},
                                       {"seed", required_argument, 0, 'S'},
                                       {"first-client", required_argument, 0, 'F'},
                                       {"hist", no_argument, 0, 'H'},
                                       {"read-replica", required_argument, 0, 'R'},
                                       {"timeout-ms", required_argument, 0, 'T'},
                                       {"help", no_argument, 0, 'h'},
                                       {"version", no_argument, 0, 'V'},
                                       {0, 0, 0, 0}};
    memset(o, 0, sizeof(*o));
    o->wl = WL_YCSBT;
    o->clients = 1;
    o->duration = 5;
    o->keys = 100000;
    o->key_size = 64;
    o->value_size = 700;
    o->ops = 4;
    o->write_ratio = 1.0;
    o->seed = 1;
    bool have_duration = false;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":", lo, NULL)) != -1) {
        switch (c) {
        case 'm':
            if (strcmp(optarg, "qw") == 0)
                o->cfg.mode = TXC_QW;
            else if (strcmp(optarg, "occ") == 0)
                o->cfg.mode = TXC_OCC;
            else
                bad_value("--mode: expected qw or occ, got %s", optarg);
            break;
        case 's':
            parse_shard(optarg, &o->cfg);
            break;
        case 'w':
            if (strcmp(optarg, "ycsbt") == 0)
                o->wl = WL_YCSBT;
            else if (strcmp(optarg, "retwis") == 0)
                o->wl = WL_RETWIS;
            else
                bad_value("--workload: expected ycsbt or retwis, got %s", optarg);
            break;
        case 'c':
            o->clients = (uint32_t)parse_u64(optarg, "--clients", 1, CLIENTS_MAX);
            break;
        case 'd':
            o->duration = parse_double(optarg, "--duration", 0.001, 1e6);
            have_duration = true;
            break;
        case 'n':
            o->txns = parse_u64(optarg, "--txns", 1, UINT64_MAX);
            break;
        case 'k':
            o->keys = parse_u64(optarg, "--keys", 1, KEYS_MAX);
            break;
        case 'K':
            o->key_size = (uint32_t)parse_u64(optarg, "--key-size", 5, TXN_KEY_MAX);
            break;
        case 'v':
            o->value_size = (uint32_t)parse_u64(optarg, "--value-size", 1, TXN_VAL_MAX);
            break;
        case 'o':
            o->ops = (uint32_t)parse_u64(optarg, "--ops", 1, TXN_SET_MAX);
            break;
        case 'r':
            o->write_ratio = parse_double(optarg, "--write-ratio", 0, 1);
            break;
        case 'z':
            o->zipf = parse_double(optarg, "--zipf", 0, 100);
            break;
        case 'l':
            o->load = true;
            break;
        case 'S':
            o->seed = parse_u64(optarg, "--seed", 0, UINT64_MAX);
            break;
        case 'F':
            o->first_client = (uint32_t)parse_u64(optarg, "--first-client", 0, UINT32_MAX - CLIENTS_MAX);
            break;
        case 'H':
            o->hist = true;
            break;
        case 'R':
            o->cfg.read_replica = (uint32_t)parse_u64(optarg, "--read-replica", 0, UINT32_MAX);
            break;
        case 'T':
            o->cfg.timeout_ms = (uint32_t)parse_u64(optarg, "--timeout-ms", 1, 3600000);
            break;
        case 'h':
            usage();
            break;
        case 'V':
            printf(PROG " (libdemi) %s\n", demi_version());
            exit(0);
        case ':':
            usage_error("%s needs a value", argv[optind - 1]);
            break;
        default:
            usage_error("bad option %s", argv[optind - 1]);
        }
    }
    if (optind != argc)
        usage_error("unexpected argument %s", argv[optind]);
    if (!o->cfg.mode)
        usage_error("--mode is required");
    if (!o->cfg.nshards)
        usage_error("--shard is required");
    if (have_duration && o->txns)
        usage_error("give --duration or --txns, not both");
    check_sizes(o);
}

/* ---- random numbers and the key distribution ---- */

/* splitmix64: a 64-bit state, every output a bijective mix of it. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n): the high half of a 64x64-bit product (its bias, under
 * n / 2^64, is far below anything a run can see). */
static uint64_t rng_below(uint64_t *s, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)rng_next(s) * n) >> 64);
}

/* Uniform in [0, 1). */
static double rng_unit(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) * 0x1p-53;
}

/*
 * Zipf's law over ranks 1..n, P(k) proportional to k^-s, by rejection-
 * inversion (Hörmann and Derflinger, 1996), constant expected time for any
 * s > 0. With h(x) = x^-s and H its integral from 1, a rank k >= 2 owns
 * the interval [H(k - 1/2), H(k + 1/2)], whose width is at least h(k) as h
 * is convex; rank 1 owns [H(3/2) - 1, H(3/2)], of width h(1). A uniform u
 * over all of them picks k = round(H^-1(u)), accepted when u lies in the
 * top h(k) of k's interval, so each rank is accepted with weight h(k).
 *
 * The rank is then scrambled by a permutation of [0, n) that every client
 * shares, so that the hot keys are the same for all clients but not the
 * first names of the key space (YCSB's "scrambled zipfian", here a
 * bijection, so the law over keys stays exactly Zipf's).
 */
struct keydist {
    uint64_t n;
    double s; /* 0: uniform */
    double h_lo, h_hi;
    unsigned bits; /* the permutation acts on [0, 2^bits), 2^bits < 2n */
    uint64_t mask, k0, k1, k2;
};

/* H(x), the integral of t^-s from 1 to x: (x^(1-s) - 1) / (1 - s), or
 * log x when s is (nearly) 1. */
static double zipf_h_int(double s, double x)
{
    double lx = log(x), t = (1.0 - s) * lx;
    return fabs(t) < 1e-8 ? lx * (1.0 + t / 2.0) : expm1(t) / (1.0 - s);
}

/* The inverse of zipf_h_int. */
static double zipf_h_inv(double s, double y)
{
    double t = (1.0 - s) * y;
    if (t < -1.0)
        t = -1.0;
    return exp(fabs(t) < 1e-8 ? y * (1.0 - t / 2.0) : log1p(t) / (1.0 - s));
}

static void keydist_init(struct keydist *d, uint64_t n, double s, uint64_t seed)
{
    memset(d, 0, sizeof(*d));
    d->n = n;
    d->s = s;
    d->h_lo = zipf_h_int(s, 1.5) - 1.0;
    d->h_hi = zipf_h_int(s, (double)n + 0.5);
    d->bits = 1;
    while (d->bits < 64 && ((uint64_t)1 << d->bits) < n)
        d->bits++;
    d->mask = d->bits == 64 ? UINT64_MAX : ((uint64_t)1 << d->bits) - 1;
    uint64_t st = seed ^ 0x5a17ed5a17ed5a17ull;
    d->k0 = rng_next(&st);
    d->k1 = rng_next(&st) | 1;
    d->k2 = rng_next(&st) | 1;
}

static uint64_t zipf_rank(const struct keydist *d, uint64_t *rng)
{
    for (;;) {
        double u = d->h_hi + rng_unit(rng) * (d->h_lo - d->h_hi);
        double x = zipf_h_inv(d->s, u);
        uint64_t k = x < 1.5 ? 1 : x >= (double)d->n + 0.5 ? d->n : (uint64_t)(x + 0.5);
        if (k > d->n)
            k = d->n;
        if (u >= zipf_h_int(d->s, (double)k + 0.5) - pow((double)k, -d->s))
            return k;
    }
}

/* One round of the permutation of [0, 2^bits): adding a constant,
 * multiplying by an odd one and xoring in the high half are each a
 * bijection of that range. */
static uint64_t perm_round(const struct keydist *d, uint64_t x)
{
    unsigned half = d->bits / 2 + 1;
    x = ((x + d->k0) * d->k1) & d->mask;
    x ^= x >> half;
    x = (x * d->k2) & d->mask;
    return x ^ (x >> half);
}

/* The permutation restricted to [0, n) by cycle walking: applied again
 * while the value is out of range, which ends (X's cycle holds X itself)
 * after under two rounds on average, as 2^bits < 2n. */
static uint64_t scramble(const struct keydist *d, uint64_t x)
{
    do
        x = perm_round(d, x);
    while (x >= d->n);
    return x;
}

static uint64_t keydist_next(const struct keydist *d, uint64_t *rng)
{
    if (d->s == 0)
        return rng_below(rng, d->n);
    return scramble(d, zipf_rank(d, rng) - 1);
}

/* ---- what children report ---- */

/* A child's first message: ready (connected, and its share of the keys
 * loaded), or why not. */
struct hello {
    int32_t err; /* 0: ready */
    char why[240];
};

/* A child's last message. */
struct result {
    int32_t err; /* 0, or why the child gave up early */
    char why[240];
    uint64_t t_start, t_end; /* CLOCK_MONOTONIC ns: shared by the processes */
    uint64_t committed;
    uint64_t aborted;   /* attempts that ended in a conflict (EAGAIN) */
    uint64_t abandoned; /* transactions dropped after RETRIES_MAX aborts */
    uint64_t errors[ERRNO_SLOTS];
    struct hist h; /* latency of each committed transaction's last attempt */
};

static const char *errno_name(int e)
{
    static const struct {
        int e;
        const char *name;
    } names[] = {{EAGAIN, "EAGAIN"},
                 {ETIMEDOUT, "ETIMEDOUT"},
                 {EIO, "EIO"},
                 {ECONNRESET, "ECONNRESET"},
                 {ECONNREFUSED, "ECONNREFUSED"},
                 {ECONNABORTED, "ECONNABORTED"},
                 {ENOTCONN, "ENOTCONN"},
                 {EPIPE, "EPIPE"},
                 {EPROTO, "EPROTO"},
                 {EBADMSG, "EBADMSG"},
                 {ENOSPC, "ENOSPC"},
                 {ENOMEM, "ENOMEM"},
                 {ENOBUFS, "ENOBUFS"},
                 {EINVAL, "EINVAL"},
                 {EINPROGRESS, "EINPROGRESS"},
                 {ENOENT, "ENOENT"},
                 {EHOSTUNREACH, "EHOSTUNREACH"},
                 {ENETUNREACH, "ENETUNREACH"},
                 {ECANCELED, "ECANCELED"},
                 {EMSGSIZE, "EMSGSIZE"},
                 {EPERM, "EPERM"},
                 {EBADF, "EBADF"},
                 {ENOTSUP, "ENOTSUP"},
                 {EBUSY, "EBUSY"}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (names[i].e == e)
            return names[i].name;
    return NULL;
}

/* Writes all of LEN bytes (a pipe may take them in parts). */
static int write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? errno : EIO;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads all of LEN bytes: 0, EPIPE at end of file before them, or an errno. */
static int read_all(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno;
        if (n == 0)
            return EPIPE;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ---- a child: one client ---- */

/* One key of a transaction: read it, write it, or both (read first). */
struct op {
    uint64_t key;
    bool get, put;
};

struct plan {
    uint32_t n;
    struct op op[TXN_SET_MAX];
};

struct child {
    const struct opts *o;
    uint32_t id;
    struct txc *c;
    struct keydist kd;
    uint64_t rng;
    uint64_t stamp; /* written into each value put */
    char key[TXN_KEY_MAX + 1];
    uint8_t *val; /* value_size bytes */
    struct result *res;
};

/* Key I's name: "user" and I in decimal, zero-padded to --key-size. */
static size_t key_name(struct child *ch, uint64_t i)
{
    unsigned w = ch->o->key_size - 4;
    snprintf(ch->key, sizeof(ch->key), "user%0*llu", (int)w, (unsigned long long)i);
    return ch->o->key_size;
}

/* A value for KEY: the bytes read (OLD, OLEN; NULL when nothing was read)
 * or a pattern of the key, resized to --value-size, with a fresh stamp in
 * its first bytes so that every write changes it. */
static void make_value(struct child *ch, uint64_t key, const uint8_t *old, size_t olen)
{
    size_t vs = ch->o->value_size, n = old ? (olen < vs ? olen : vs) : 0;
    if (n)
        memcpy(ch->val, old, n);
    for (size_t i = n; i < vs; i++)
        ch->val[i] = (uint8_t)('a' + (key + i) % 26);
    uint64_t st = ++ch->stamp ^ ((uint64_t)ch->id << 48);
    memcpy(ch->val, &st, vs < sizeof(st) ? vs : sizeof(st));
}

/* Adds a key the plan does not hold yet, drawn by the key distribution
 * (after a few draws that all collide, the next free key after the last). */
static struct op *plan_add(struct child *ch, struct plan *p, bool get, bool put)
{
    uint64_t k = 0;
    for (unsigned tries = 0;; tries++) {
        k = tries < 64 ? keydist_next(&ch->kd, &ch->rng) : (k + 1) % ch->o->keys;
        uint32_t i = 0;
        while (i < p->n && p->op[i].key != k)
            i++;
        if (i == p->n)
            break;
    }
    struct op *op = &p->op[p->n++];
    op->key = k;
    op->get = get;
    op->put = put;
    return op;
}

/* YCSB-T: --ops keys, each read, and written back with probability
 * --write-ratio. */
static void plan_ycsbt(struct child *ch, struct plan *p)
{
    p->n = 0;
    for (uint32_t i = 0; i < ch->o->ops; i++)
        plan_add(ch, p, true, rng_unit(&ch->rng) < ch->o->write_ratio);
}

/* Retwis, the mix of TAPIR's benchmark: add_user 5% (1 get, 3 puts),
 * follow 15% (2 gets, 2 puts), post_tweet 30% (3 gets, 5 puts),
 * get_timeline 50% (1 to 10 gets, read-only). */
static void plan_retwis(struct child *ch, struct plan *p)
{
    uint64_t t = rng_below(&ch->rng, 100);
    p->n = 0;
    if (t < 5) {
        plan_add(ch, p, true, true);
        plan_add(ch, p, false, true);
        plan_add(ch, p, false, true);
    } else if (t < 20) {
        plan_add(ch, p, true, true);
        plan_add(ch, p, true, true);
    } else if (t < 50) {
        for (int i = 0; i < 3; i++)
            plan_add(ch, p, true, true);
        plan_add(ch, p, false, true);
        plan_add(ch, p, false, true);
    } else {
        uint64_t n = 1 + rng_below(&ch->rng, RETWIS_KEYS);
        for (uint64_t i = 0; i < n; i++)
            plan_add(ch, p, true, false);
    }
}

/* One attempt of the transaction P: 0 committed, EAGAIN aborted on a
 * conflict, or the errno of the call that failed. */
static int attempt(struct child *ch, const struct plan *p)
{
    txc_begin(ch->c);
    for (uint32_t i = 0; i < p->n; i++) {
        const struct op *op = &p->op[i];
        size_t klen = key_name(ch, op->key);
        const uint8_t *v = NULL;
        size_t vlen = 0;
        if (op->get) {
            int e = txc_get(ch->c, (const uint8_t *)ch->key, klen, &v, &vlen);
            if (e == ENOENT)
                v = NULL;
            else if (e)
                return e;
        }
        if (op->put) {
            make_value(ch, op->key, v, vlen);
            int e = txc_put(ch->c, (const uint8_t *)ch->key, klen, ch->val, ch->o->value_size);
            if (e)
                return e;
        }
    }
    return txc_commit(ch->c, NULL);
}

static void count_error(struct result *r, int e)
{
    r->errors[e > 0 && e < ERRNO_SLOTS ? e : ERRNO_SLOTS - 1]++;
}

/* Runs P until it commits, up to RETRIES_MAX aborts; the latency of each
 * committed transaction is that of its last attempt. Returns 0 when the
 * transaction ended without an error (committed or abandoned), else the
 * errno counted. */
static int run_txn(struct child *ch, const struct plan *p)
{
    struct result *r = ch->res;
    for (unsigned tries = 0;; tries++) {
        uint64_t t0 = hist_now_ns();
        int e = attempt(ch, p);
        if (e == 0) {
            hist_add(&r->h, hist_now_ns() - t0);
            r->committed++;
            return 0;
        }
        txc_abort(ch->c);
        if (e != EAGAIN) {
            count_error(r, e);
            return e;
        }
        r->aborted++;
        if (tries + 1 >= RETRIES_MAX || stop) {
            r->abandoned++;
            return 0;
        }
    }
}

static void run(struct child *ch)
{
    const struct opts *o = ch->o;
    struct result *r = ch->res;
    struct plan p;
    uint64_t end = o->txns ? UINT64_MAX : r->t_start + (uint64_t)(o->duration * 1e9);
    uint64_t consecutive = 0;
    for (uint64_t done = 0; !stop && (!o->txns || done < o->txns); done++) {
        if (o->wl == WL_YCSBT)
            plan_ycsbt(ch, &p);
        else
            plan_retwis(ch, &p);
        int e = run_txn(ch, &p);
        consecutive = e ? consecutive + 1 : 0;
        if (consecutive == ERRORS_MAX) {
            r->err = e;
            snprintf(r->why, sizeof(r->why), "gave up after %d transactions in a row failed (the last: %s)", ERRORS_MAX,
                     strerror(e));
            break;
        }
        if (!o->txns && hist_now_ns() >= end)
            break;
    }
    r->t_end = hist_now_ns();
}

/* Loads this child's share of the keys: [keys * id / clients, keys *
 * (id + 1) / clients). */
static int load(struct child *ch, char *why, size_t whylen)
{
    const struct opts *o = ch->o;
    uint64_t lo = (uint64_t)((unsigned __int128)o->keys * ch->id / o->clients);
    uint64_t hi = (uint64_t)((unsigned __int128)o->keys * (ch->id + 1) / o->clients);
    for (uint64_t i = lo; i < hi && !stop; i++) {
        size_t klen = key_name(ch, i);
        make_value(ch, i, NULL, 0);
        int e = txc_load(ch->c, (const uint8_t *)ch->key, klen, ch->val, o->value_size);
        if (e) {
            snprintf(why, whylen, "loading key %llu: %s", (unsigned long long)i, strerror(e));
            return e;
        }
    }
    return 0;
}

/* Connects (and loads), says so, waits for the start, runs, reports. */
static int child_setup(struct child *ch, struct hello *hi)
{
    int e = demi_init(NULL);
    if (e) {
        snprintf(hi->why, sizeof(hi->why), "demi_init: %s", strerror(e));
        return e;
    }
    ch->c = txc_open(&ch->o->cfg, hi->why, sizeof(hi->why));
    if (!ch->c)
        return ECONNREFUSED;
    return ch->o->load ? load(ch, hi->why, sizeof(hi->why)) : 0;
}

static int child_main(const struct opts *o, uint32_t id, int start_fd, int out_fd)
{
    struct child ch;
    struct hello hi;
    memset(&ch, 0, sizeof(ch));
    memset(&hi, 0, sizeof(hi));
    ch.o = o;
    ch.id = id;
    ch.rng = o->seed ^ (0x9e3779b97f4a7c15ull * ((uint64_t)o->first_client + id + 1));
    keydist_init(&ch.kd, o->keys, o->zipf, o->seed);
    ch.val = malloc(o->value_size);
    ch.res = calloc(1, sizeof(*ch.res));
    if (!ch.val || !ch.res) {
        hi.err = ENOMEM;
        snprintf(hi.why, sizeof(hi.why), "out of memory");
    } else {
        hi.err = child_setup(&ch, &hi);
    }
    if (write_all(out_fd, &hi, sizeof(hi)) || hi.err)
        return 1;
    char go;
    if (read_all(start_fd, &go, 1))
        return 0; /* the parent called the run off */
    hist_init(&ch.res->h);
    ch.res->t_start = hist_now_ns();
    run(&ch);
    int e = write_all(out_fd, ch.res, sizeof(*ch.res));
    txc_close(ch.c);
    free(ch.res);
    free(ch.val);
    return e ? 1 : 0;
}

/* ---- the parent ---- */

struct kid {
    pid_t pid;
    int fd; /* the read end of its pipe */
};

/* Forks the clients; each inherits the read end of START and the write
 * end of its own pipe. Returns 0 or an errno (the kids forked so far are
 * in KIDS, *NKIDS of them). */
static int spawn(const struct opts *o, int start[2], struct kid *kids, uint32_t *nkids)
{
    for (uint32_t i = 0; i < o->clients; i++) {
        int p[2];
        if (pipe(p))
            return errno;
        pid_t pid = fork();
        if (pid < 0) {
            int e = errno;
            close(p[0]);
            close(p[1]);
            return e;
        }
        if (pid == 0) {
            nkid_pids = 0;
            close(start[1]);
            close(p[0]);
            for (uint32_t j = 0; j < i; j++)
                close(kids[j].fd);
            exit(child_main(o, i, start[0], p[1]));
        }
        close(p[1]);
        kids[i].pid = pid;
        kids[i].fd = p[0];
        kid_pids[i] = pid;
        nkid_pids = (sig_atomic_t)(i + 1);
        (*nkids)++;
    }
    return 0;
}

/* Reads every child's hello; false (reasons on stderr) if one is not ready. */
static bool all_ready(struct kid *kids, uint32_t n)
{
    bool ok = true;
    for (uint32_t i = 0; i < n; i++) {
        struct hello hi;
        int e = read_all(kids[i].fd, &hi, sizeof(hi));
        if (e) {
            fprintf(stderr, PROG ": client %u exited before it was ready\n", i);
            ok = false;
        } else if (hi.err) {
            hi.why[sizeof(hi.why) - 1] = '\0';
            fprintf(stderr, PROG ": client %u: %s\n", i, hi.why[0] ? hi.why : strerror(hi.err));
            ok = false;
        }
    }
    return ok;
}

/* Waits for every child; false if one did not exit 0. */
static bool reap(struct kid *kids, uint32_t n)
{
    bool ok = true;
    nkid_pids = 0; /* from here on a PID may be reaped, then reused */
    for (uint32_t i = 0; i < n; i++) {
        int st;
        while (waitpid(kids[i].pid, &st, 0) < 0) {
            if (errno != EINTR) {
                st = -1;
                break;
            }
        }
        if (st != 0) {
            if (st != -1 && WIFSIGNALED(st))
                fprintf(stderr, PROG ": client %u was killed by signal %d\n", i, WTERMSIG(st));
            ok = false;
        }
        close(kids[i].fd);
    }
    return ok;
}

/* Adds every child's result into ALL; false (reasons on stderr) if one
 * did not report or gave up. */
static bool collect(struct kid *kids, uint32_t n, struct result *all, struct result *one)
{
    bool ok = true;
    hist_init(&all->h);
    all->t_start = UINT64_MAX;
    for (uint32_t i = 0; i < n; i++) {
        if (read_all(kids[i].fd, one, sizeof(*one))) {
            fprintf(stderr, PROG ": client %u exited without its results\n", i);
            ok = false;
            continue;
        }
        if (one->err) {
            one->why[sizeof(one->why) - 1] = '\0';
            fprintf(stderr, PROG ": client %u: %s\n", i, one->why);
            ok = false;
        }
        all->t_start = one->t_start < all->t_start ? one->t_start : all->t_start;
        all->t_end = one->t_end > all->t_end ? one->t_end : all->t_end;
        all->committed += one->committed;
        all->aborted += one->aborted;
        all->abandoned += one->abandoned;
        for (int e = 0; e < ERRNO_SLOTS; e++)
            all->errors[e] += one->errors[e];
        hist_merge(&all->h, &one->h);
    }
    return ok;
}

static void print_errors(const struct result *r)
{
    printf("\"errors\":{");
    const char *sep = "";
    for (int e = 1; e < ERRNO_SLOTS; e++) {
        if (!r->errors[e])
            continue;
        const char *name = e == ERRNO_SLOTS - 1 ? "other" : errno_name(e);
        if (name)
            printf("%s\"%s\":%llu", sep, name, (unsigned long long)r->errors[e]);
        else
            printf("%s\"E%d\":%llu", sep, e, (unsigned long long)r->errors[e]);
        sep = ",";
    }
    printf("}");
}

/* The CDF as hist_write_cdf writes it ("<latency_us> <fraction>" lines),
 * through a temporary file, as a JSON array of pairs. */
static void print_cdf(const struct hist *h)
{
    const char *dir = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof(path), "%s/demi-txn-bench.XXXXXX", dir && *dir ? dir : "/tmp");
    printf(",\"cdf\":[");
    int fd = mkstemp(path);
    if (fd < 0) {
        fprintf(stderr, PROG ": --hist: %s: %s\n", path, strerror(errno));
        printf("]");
        return;
    }
    close(fd);
    int e = hist_write_cdf(h, path);
    FILE *f = e ? NULL : fopen(path, "r");
    if (!f)
        fprintf(stderr, PROG ": --hist: %s: %s\n", path, strerror(e ? e : errno));
    double us, frac;
    const char *sep = "";
    while (f && fscanf(f, "%lf %lf", &us, &frac) == 2) {
        printf("%s[%.3f,%.6f]", sep, us, frac);
        sep = ",";
    }
    if (f)
        fclose(f);
    unlink(path);
    printf("]");
}

static void print_json(const struct opts *o, const struct result *r)
{
    double el = r->t_end > r->t_start ? (double)(r->t_end - r->t_start) / 1e9 : 0.0;
    const struct hist *h = &r->h;
    printf("{\"mode\":\"%s\",\"workload\":\"%s\",\"clients\":%u,\"shards\":%u,\"replicas\":%u,\"keys\":%llu,"
           "\"zipf\":%g,\"duration_s\":%.3f,\"committed\":%llu,\"aborted\":%llu,\"abandoned\":%llu,",
           o->cfg.mode == TXC_QW ? "qw" : "occ", o->wl == WL_YCSBT ? "ycsbt" : "retwis", o->clients, o->cfg.nshards,
           o->cfg.nreplicas, (unsigned long long)o->keys, o->zipf, el, (unsigned long long)r->committed,
           (unsigned long long)r->aborted, (unsigned long long)r->abandoned);
    print_errors(r);
    printf(",\"throughput_tps\":%.1f,\"latency_us\":{\"avg\":%.3f,\"p50\":%.3f,\"p99\":%.3f,\"p999\":%.3f}",
           el > 0 ? (double)r->committed / el : 0.0, hist_mean(h) / 1e3, hist_quantile(h, 0.50) / 1e3,
           hist_quantile(h, 0.99) / 1e3, hist_quantile(h, 0.999) / 1e3);
    if (o->hist)
        print_cdf(h);
    printf("}\n");
    fflush(stdout);
}

/* Starts the clients together once all are ready, and merges their
 * results. Returns the exit status. */
static int bench(const struct opts *o)
{
    int start[2];
    struct kid *kids = calloc(o->clients, sizeof(*kids));
    struct result *all = calloc(1, sizeof(*all)), *one = calloc(1, sizeof(*one));
    kid_pids = calloc(o->clients, sizeof(*kid_pids));
    if (!kids || !all || !one || !kid_pids || pipe(start)) {
        fprintf(stderr, PROG ": %s\n", strerror(errno ? errno : ENOMEM));
        return 1;
    }
    uint32_t n = 0;
    int e = spawn(o, start, kids, &n);
    close(start[0]);
    if (e)
        fprintf(stderr, PROG ": cannot start client %u: %s\n", n, strerror(e));
    bool ok = !e && all_ready(kids, n) && !stop;
    if (ok) {
        /* One byte for each client: each takes one and starts. */
        char go[CLIENTS_MAX];
        memset(go, 'g', sizeof(go));
        ok = write_all(start[1], go, n) == 0;
    }
    close(start[1]); /* without the bytes, the end of file calls the run off */
    if (ok) {
        ok = collect(kids, n, all, one);
        print_json(o, all);
    } else if (stop) {
        fprintf(stderr, PROG ": interrupted before the run started\n");
    }
    ok = reap(kids, n) && ok;
    free(kid_pids);
    free(kids);
    free(all);
    free(one);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    struct opts o;
    parse(argc, argv, &o);
    /* SIGINT or SIGTERM ends the run early: the children stop after their
     * current transaction and report, and the parent prints what they did. */
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return bench(&o);
}
