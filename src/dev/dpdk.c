/*
 * DPDK port device (see dpdk.h).
 *
 * Ownership of a received buffer: DPDK fills an mbuf of the receive pool,
 * whose data buffer is one carved 2 KiB heap block. rx_burst takes the
 * block (refs 1) and notes which mbuf holds it; the stack and the
 * application ref and unref the block as they like; the last unref calls
 * rx_release, which frees the mbuf back to the pool (where the block
 * waits, refs 0, for the next frame). Nothing is freed twice: the mbuf is
 * freed only there, and the block never goes back to the heap.
 *
 * Ownership of a transmitted segment: tx_burst attaches the segment's
 * bytes to an mbuf of the attach pool as an external buffer whose shared
 * info (in the mbuf's private area) points at the heap block; the packet's
 * reference moves to the mbuf, and DPDK's free callback (tx_detached)
 * drops it when the PMD is done with the bytes.
 */
#include "dev/dpdk.h"
#include "dev/netif.h"

#include "core/common.h"
#include "core/log.h"

#include <rte_dev.h>
#include <rte_devargs.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_mbuf.h>
#include <rte_memory.h>
#include <rte_mempool.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RX_BUF_SHIFT 11 /* receive buffers: 2 KiB heap blocks, or the next size up a PMD needs */
#define RX_BURST_MAX 64
#define POOL_CACHE   256
/* Idle back-off of a port without receive interrupts: sleeps that start
 * here and double up to IDLE_POLL_MAX_NS between looks at the ring. */
#define IDLE_POLL_MIN_NS 16000u
#define IDLE_POLL_MAX_NS 2000000u

struct tx_priv {
    struct rte_mbuf_ext_shared_info shinfo;
    struct heap *heap;
    struct heap_blk *blk;
};

struct dpdk_dev {
    struct netdev nd;
    uint16_t port;
    uint16_t queue; /* this instance's receive and transmit queue */
    bool shared;    /* the port is shared by the process's instances (eal.share) */
    bool started;
    bool multiseg; /* the port takes chained mbufs */
    bool rx_zc;    /* receive pool made of carved heap blocks */
    bool dma;      /* map heap chunks for the device's DMA */
    bool hooked;
    bool af_packet;        /* net_af_packet: its fanout reassembles IP fragments */
    bool memif;            /* net_memif: bursts run guarded (see guarded_rx) */
    bool warned_cut;       /* said once that a frame came cut short */
    bool warned_low;       /* said once that the receive pool ran low */
    uint32_t rx_low;       /* how few free receive mbufs make rx_burst copy */
    uint64_t memif_faults; /* bursts lost to the memif disconnect race */
    struct rte_device *rte_dev;
    struct rte_mempool *rx_pool;   /* receive: external buffers in the heap (or DPDK's, rx_zc false) */
    struct rte_mempool *tx_pool;   /* transmit: mbufs without data, for attaching heap bytes */
    struct rte_mempool *copy_pool; /* transmit copies (ports without chained mbufs) */
    void **carved;                 /* carved chunks */
    uint32_t ncarved;
    uint32_t *slot_of_chunk; /* heap chunk index -> carved slot + 1 (0: not ours) */
    uint32_t nheap_chunks;
    struct rte_mbuf **holder; /* carved slot * per_chunk + block index -> its mbuf */
    uint32_t per_chunk;
    unsigned rx_shift;  /* receive buffer size: 1 << rx_shift */
    uint16_t room;      /* DPDK-owned buffers' data room: a frame of the MTU after the headroom */
    int intr_fd;        /* the receive queue's interrupt descriptor, or -1 (see dpdk_wait) */
    uint32_t idle_ns;   /* the next idle sleep without interrupts */
    uint64_t idle_seen; /* frames moved when the last idle sleep began */
    struct rte_mbuf *burst[RX_BURST_MAX];
};

static struct dpdk_dev *to_dpdk(struct netdev *d)
{
    return (struct dpdk_dev *)d;
}

/* ---- the EAL: once per process ---- */

/* A port shared by the instances of the process (libdemi.queues > 1): the
 * first instance configures it with nq queue pairs, each with pools of its
 * own in DPDK memory, and starts it; each instance then drives its own
 * queue pair. The pools stay (and are reused by an instance that takes the
 * queue again) until the last instance leaves and the port closes: a
 * transmitted mbuf may sit in a queue's ring after its instance is gone. */
struct port_share {
    uint16_t nq;    /* queue pairs; 0: not shared */
    uint32_t users; /* instances that picked the port (claimed under eal.mu) */
    uint32_t taken; /* bit q: queue q has an instance */
    struct rte_mempool *rx_pool[CONFIG_MAX_QUEUES];
    struct rte_mempool *tx_pool[CONFIG_MAX_QUEUES];
    struct rte_mempool *copy_pool[CONFIG_MAX_QUEUES];
};

static struct {
    pthread_mutex_t mu;
    int state; /* 0: not tried; 1: up; > 0: the errno it failed with */
    bool used[RTE_MAX_ETHPORTS];
    struct port_share share[RTE_MAX_ETHPORTS];
    bool no_shconf;
    char rundir[256]; /* a run-time directory we made DPDK create, removed at exit */
} eal = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* DPDK's log lines go to ours: errors and warnings as such, the rest at debug. */
static ssize_t log_write(void *cookie, const char *buf, size_t len)
{
    (void)cookie;
    int lvl = rte_log_cur_msg_loglevel();
    int ours = lvl <= (int)RTE_LOG_ERR ? LOGL_ERROR : lvl == (int)RTE_LOG_WARNING ? LOGL_WARN : LOGL_DEBUG;
    size_t n = len;
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    /* We start the EAL without shared files (no multi-process), and PMDs
     * warn that they cannot offer it: expected, so not a warning. */
    if (ours == LOGL_WARN && eal.no_shconf && memmem(buf, n, "mp action", 9))
        ours = LOGL_DEBUG;
    /* Nor is the absence of hugepage sizes nobody asked for (1 GiB). */
    if (ours == LOGL_WARN && memmem(buf, n, "No free ", 8) && memmem(buf, n, "hugepages reported", 18))
        ours = LOGL_DEBUG;
    if (n)
        log_at(ours, "dpdk: %.*s", (int)n, buf);
    return (ssize_t)len;
}

static bool has_arg(const struct config *c, const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < c->eal_argc; i++)
        if (strncmp(c->eal_argv[i], name, n) == 0 && (c->eal_argv[i][n] == '\0' || c->eal_argv[i][n] == '='))
            return true;
    return false;
}

static void remove_rundir(void)
{
    if (!eal.rundir[0])
        return;
    DIR *dir = opendir(eal.rundir);
    if (dir) {
        struct dirent *e;
        while ((e = readdir(dir)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                unlinkat(dirfd(dir), e->d_name, 0);
        closedir(dir);
    }
    rmdir(eal.rundir);
}

/* Free 2 MiB hugepages, from /proc/meminfo (0 if it cannot be read). */
static unsigned long hugepages_free(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return 0;
    char l[128];
    unsigned long n = 0;
    while (fgets(l, sizeof(l), f))
        if (sscanf(l, "HugePages_Free: %lu", &n) == 1)
            break;
    fclose(f);
    return n;
}

/* The process that initialised the EAL: a forked child's exit() must not
 * clean up the parent's ports and memory. */
static pid_t eal_pid;

static void eal_exit(void)
{
    if (getpid() == eal_pid)
        rte_eal_cleanup();
}

static int eal_init(const struct config *c)
{
    if (eal.state)
        return eal.state == 1 ? 0 : eal.state;
    /* argv: ours, the config's, then defaults for what it leaves out. */
    char *argv[CONFIG_MAX_EAL + 8];
    char prefix[64];
    int argc = 0;
    argv[argc++] = "libdemi";
    for (int i = 0; i < c->eal_argc; i++)
        argv[argc++] = c->eal_argv[i];
    bool no_huge = has_arg(c, "--no-huge");
    if (!has_arg(c, "--in-memory") && !has_arg(c, "--file-prefix")) {
        if (no_huge) {
            /* --in-memory needs hugepages: instead, no shared files and a
             * private prefix whose directory goes at exit. */
            snprintf(prefix, sizeof(prefix), "--file-prefix=demi%d", (int)getpid());
            argv[argc++] = prefix;
            if (!has_arg(c, "--no-shconf"))
                argv[argc++] = "--no-shconf";
            eal.no_shconf = true;
            const char *base = getuid() == 0 ? "/var/run/dpdk" : getenv("XDG_RUNTIME_DIR");
            if (base)
                snprintf(eal.rundir, sizeof(eal.rundir), "%s%s/demi%d", base, getuid() == 0 ? "" : "/dpdk",
                         (int)getpid());
        } else {
            argv[argc++] = "--in-memory"; /* implies no shared files */
            eal.no_shconf = true;
        }
    }
    if (!has_arg(c, "--no-telemetry") && !has_arg(c, "--telemetry"))
        argv[argc++] = "--no-telemetry";
    argv[argc] = NULL;

    char line[1024];
    size_t at = 0;
    for (int i = 1; i < argc && at < sizeof(line); i++)
        at += (size_t)snprintf(line + at, sizeof(line) - at, "%s%s", i > 1 ? " " : "", argv[i]);
    log_info("catnip: EAL arguments: %s", line);

    static cookie_io_functions_t fns = {.write = log_write};
    FILE *logf = fopencookie(NULL, "w", fns);
    if (logf) {
        setvbuf(logf, NULL, _IOLBF, 0);
        rte_openlog_stream(logf);
    }
    /* The EAL pins the calling thread to its main lcore; unless the
     * config chose lcores, the application keeps the CPUs it had. */
    cpu_set_t cpus;
    bool restore = !has_arg(c, "-l") && !has_arg(c, "-c") && !has_arg(c, "--lcores") &&
                   sched_getaffinity(0, sizeof(cpus), &cpus) == 0;
    char *copy[CONFIG_MAX_EAL + 8]; /* rte_eal_init permutes its argv */
    memcpy(copy, argv, sizeof(char *) * (size_t)(argc + 1));
    /* A bad argument makes the EAL print its whole usage on stdout: the
     * application's output is not the place; our one line says it all. */
    fflush(stdout);
    int saved = dup(STDOUT_FILENO), null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (saved >= 0 && null >= 0)
        dup2(null, STDOUT_FILENO);
    int r = rte_eal_init(argc, copy);
    fflush(stdout);
    if (saved >= 0 && null >= 0)
        dup2(saved, STDOUT_FILENO);
    if (saved >= 0)
        close(saved);
    if (null >= 0)
        close(null);
    if (restore)
        sched_setaffinity(0, sizeof(cpus), &cpus);
    if (r < 0) {
        int e = rte_errno;
        if (e == EACCES && !no_huge && !hugepages_free()) { /* "Cannot get hugepage information" */
            log_error(
                "catnip: DPDK found no free hugepages: reserve some (demi-hugepages, or scripts/hugepages.sh in the "
                "source tree) or add "
                "\"--no-huge\" (and \"-m\", \"256\") to dpdk.eal_init");
            eal.state = ENOMEM;
        } else {
            log_error("catnip: DPDK EAL initialisation failed: %s (dpdk.eal_init: %s)", rte_strerror(e), line);
            eal.state = e == EALREADY ? ENOTSUP : e == ENOMEM ? ENOMEM : e == EACCES ? EPERM : EINVAL;
        }
        remove_rundir();
        return eal.state;
    }
    eal.state = 1;
    /* With no shared files, nothing in our run-time directory is used
     * after initialisation: remove it now, so that even a process that
     * ends in _exit or a signal leaves nothing behind. */
    remove_rundir();
    eal_pid = getpid();
    atexit(eal_exit);
    log_info("catnip: DPDK memory: %s, IOVA as %s", rte_eal_has_hugepages() ? "hugepages" : "4 KiB pages (--no-huge)",
             rte_eal_iova_mode() == RTE_IOVA_VA ? "VA" : "PA");
    return 0;
}

/* ---- receive buffers ---- */

static uint32_t holder_index(struct dpdk_dev *d, const struct heap_blk *b)
{
    uint32_t slot = d->slot_of_chunk[b->chunk] - 1;
    return slot * d->per_chunk + heap_blk_index(d->nd.heap, b);
}

/* The last reference to a received buffer went: its mbuf goes back. */
static void rx_release(void *arg, struct heap_blk *b)
{
    struct dpdk_dev *d = arg;
    uint32_t i = holder_index(d, b);
    struct rte_mbuf *m = d->holder[i];
    d->holder[i] = NULL;
    if (m)
        rte_pktmbuf_free(m);
}

/* A queue pair's transmit pools, named after @tag: mbufs without data, for
 * attaching heap bytes, and a small pool for copies (ports without chained
 * mbufs). ENOMEM with one line when DPDK has no memory for them. */
static int make_tx_pools(const struct config *c, const char *tag, int socket, uint16_t room, struct rte_mempool **tx,
                         struct rte_mempool **copy)
{
    char name[RTE_MEMPOOL_NAMESIZE];
    snprintf(name, sizeof(name), "demi_tx%s", tag);
    uint16_t priv = (uint16_t)RTE_ALIGN(sizeof(struct tx_priv), RTE_MBUF_PRIV_ALIGN);
    *tx = rte_pktmbuf_pool_create(name, c->dpdk_mbufs, POOL_CACHE, priv, 0, socket);
    snprintf(name, sizeof(name), "demi_cp%s", tag);
    *copy = rte_pktmbuf_pool_create(name, 2047, POOL_CACHE, 0, room, socket);
    if (*tx && *copy)
        return 0;
    log_error("catnip: no DPDK memory for the transmit pools (%s); with --no-huge, raise -m", rte_strerror(rte_errno));
    return ENOMEM;
}

static int make_rx_pool(struct dpdk_dev *d, const struct config *c, int socket)
{
    char name[RTE_MEMPOOL_NAMESIZE];
    snprintf(name, sizeof(name), "demi_rx%u", d->port);
    uint32_t n = c->dpdk_mbufs;
    if (!d->rx_zc) {
        d->rx_pool = rte_pktmbuf_pool_create(name, n, POOL_CACHE, 0, d->room, socket);
        return d->rx_pool ? 0 : ENOMEM;
    }
    d->per_chunk = (uint32_t)(HEAP_CHUNK >> d->rx_shift);
    d->ncarved = (n + d->per_chunk - 1) / d->per_chunk;
    void *base;
    size_t hlen;
    heap_range(d->nd.heap, &base, &hlen);
    d->nheap_chunks = (uint32_t)(hlen / HEAP_CHUNK);
    d->carved = calloc(d->ncarved, sizeof(*d->carved));
    d->slot_of_chunk = calloc(d->nheap_chunks, sizeof(*d->slot_of_chunk));
    d->holder = calloc((size_t)d->ncarved * d->per_chunk, sizeof(*d->holder));
    struct rte_pktmbuf_extmem *ext = calloc(d->ncarved, sizeof(*ext));
    if (!d->carved || !d->slot_of_chunk || !d->holder || !ext) {
        free(ext);
        return ENOMEM;
    }
    for (uint32_t i = 0; i < d->ncarved; i++) {
        uint8_t *chunk = heap_carve(d->nd.heap, d->rx_shift, rx_release, d);
        if (!chunk) {
            log_error("catnip: no heap memory for %u receive buffers (dpdk.mbufs; libdemi.heap_size)", n);
            free(ext);
            return ENOMEM;
        }
        d->carved[i] = chunk;
        d->slot_of_chunk[(size_t)(chunk - (uint8_t *)base) / HEAP_CHUNK] = i + 1;
        ext[i].buf_ptr = chunk;
        ext[i].buf_iova = rte_eal_iova_mode() == RTE_IOVA_VA ? (rte_iova_t)(uintptr_t)chunk : RTE_BAD_IOVA;
        ext[i].buf_len = HEAP_CHUNK;
        ext[i].elt_size = (uint16_t)(1u << d->rx_shift);
    }
    uint32_t nbufs = d->ncarved * d->per_chunk;
    d->rx_low = MAX(nbufs / 8, 4u * RX_BURST_MAX);
    d->rx_pool = rte_pktmbuf_pool_create_extbuf(name, nbufs, POOL_CACHE, 0, (uint16_t)(1u << d->rx_shift), socket, ext,
                                                d->ncarved);
    free(ext);
    return d->rx_pool ? 0 : ENOMEM;
}

/* Mbufs free in MP, as this thread can take them: the pool's common store
 * plus this lcore's cache. rte_mempool_avail_count adds every lcore's
 * cache (RTE_MAX_LCORE of them, 128 here), a cost on each received burst
 * that showed in profiles; another thread's cache (none today: one
 * instance per port) only makes this an underestimate, so the copy
 * fallback comes a little early, never late. */
static unsigned pool_free(struct rte_mempool *mp)
{
    unsigned n = rte_mempool_get_ops(mp->ops_index)->get_count(mp); /* rte_mempool_ops_get_count, not exported */
    struct rte_mempool_cache *c = rte_mempool_default_cache(mp, rte_lcore_id());
    return c ? n + c->len : n;
}

/* ---- net_memif: a peer that goes away mid-burst ----
 *
 * DPDK's memif driver (22.11, and upstream since) handles its control
 * channel on the EAL's interrupt thread. When the peer process goes away,
 * that thread clears the port's connected flag and unmaps the shared
 * regions, while this thread may be inside rx/tx_burst, past the flag's
 * check and about to read the ring: the read faults, and the process dies
 * whenever a peer exits at the wrong moment (1 disconnect in 5 to 20 here,
 * where pollers are preempted often). No lock of the driver's can be taken
 * from outside, so the bursts on memif ports run guarded: a SIGSEGV taken
 * inside one jumps back out, and if the port's link is down (the driver
 * marks it down before it unmaps) the burst is counted as lost: nothing
 * received, everything handed over sent. What the driver had taken in
 * that burst (at most a burst of mbufs) is leaked, once per such
 * disconnect. A fault with the link up is not this race: it is re-raised
 * under the handler that was there before ours. An application that
 * installs its own SIGSEGV handler after the port starts replaces the
 * guard (the race then kills the process, as without it). */

static __thread sigjmp_buf *guard_env;
static struct sigaction guard_prev;
static pthread_once_t guard_once = PTHREAD_ONCE_INIT;

static void guard_handler(int sig, siginfo_t *si, void *ctx)
{
    (void)sig;
    (void)si;
    (void)ctx;
    sigjmp_buf *env = guard_env;
    if (env) {
        guard_env = NULL;
        siglongjmp(*env, 1);
    }
    /* Not inside a guarded burst: the previous disposition takes the fault
     * when the instruction runs again. */
    sigaction(SIGSEGV, &guard_prev, NULL);
}

static void guard_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = guard_handler;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER; /* NODEFER: the jump leaves SIGSEGV unblocked */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &guard_prev);
}

/* After a fault in a burst on @d: counted and logged if it was the
 * disconnect race, else re-raised (the process ends as it would have). */
static void guard_recovered(struct dpdk_dev *d, const char *what)
{
    struct rte_eth_link link;
    memset(&link, 0, sizeof(link));
    rte_eth_link_get_nowait(d->port, &link);
    if (link.link_status == RTE_ETH_LINK_UP) {
        log_error("catnip: port %u (net_memif): a memory fault in %s_burst with the link up: not the "
                  "disconnect race, re-raised",
                  d->port, what);
        sigaction(SIGSEGV, &guard_prev, NULL);
        raise(SIGSEGV);
        return;
    }
    d->memif_faults++;
    log_warn("catnip: port %u (net_memif): the peer went away during a %s burst and the driver read its "
             "unmapped ring; burst dropped (%llu so far)",
             d->port, what, (unsigned long long)d->memif_faults);
}

static uint16_t guarded_rx(struct dpdk_dev *d, uint16_t max)
{
    if (!d->memif)
        return rte_eth_rx_burst(d->port, d->queue, d->burst, max);
    sigjmp_buf env;
    if (sigsetjmp(env, 0)) {
        guard_recovered(d, "rx");
        return 0;
    }
    guard_env = &env;
    __atomic_signal_fence(__ATOMIC_SEQ_CST); /* the handler sees guard_env set before the burst starts */
    uint16_t n = rte_eth_rx_burst(d->port, d->queue, d->burst, max);
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    guard_env = NULL;
    return n;
}

static uint16_t guarded_tx(struct dpdk_dev *d, struct rte_mbuf **ms, uint16_t n)
{
    if (!d->memif)
        return rte_eth_tx_burst(d->port, d->queue, ms, n);
    sigjmp_buf env;
    if (sigsetjmp(env, 0)) {
        guard_recovered(d, "tx");
        return n; /* some may have been freed by the driver already: never free twice */
    }
    guard_env = &env;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    uint16_t sent = rte_eth_tx_burst(d->port, d->queue, ms, n);
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    guard_env = NULL;
    return sent;
}

static int dpdk_rx_burst(struct netdev *nd, struct rxframe *out, int max)
{
    struct dpdk_dev *d = to_dpdk(nd);
    if (max > RX_BURST_MAX)
        max = RX_BURST_MAX;
    uint16_t n = guarded_rx(d, (uint16_t)max);
    int k = 0;
    /* Receive-pool pressure: the stack and the application hold many
     * received buffers (a peer that stops acknowledging fills our send
     * queue with echoed views, say). Were the pool to run dry the port
     * would stop receiving, ACKs included, and nothing would ever be
     * released: copy frames out and give their mbufs straight back until
     * the pool recovers. */
    bool take = d->rx_zc;
    if (take && n && pool_free(d->rx_pool) < d->rx_low) {
        take = false;
        if (!d->warned_low) {
            d->warned_low = true;
            log_warn("catnip: receive pool low (%u of %u mbufs free): copying received frames while the stack "
                     "and the application hold so many (raise dpdk.mbufs to avoid it)",
                     rte_mempool_avail_count(d->rx_pool), d->rx_pool->size);
        }
    }
    for (uint16_t i = 0; i < n; i++) {
        struct rte_mbuf *m = d->burst[i];
        uint32_t len = rte_pktmbuf_pkt_len(m);
        uint32_t flags = 0;
        if (unlikely(d->af_packet) && !d->warned_cut && len >= 34 && rte_pktmbuf_data_len(m) >= 34) {
            const uint8_t *f = rte_pktmbuf_mtod(m, const uint8_t *);
            if (f[12] == 0x08 && f[13] == 0x00 && 14u + ((uint32_t)f[16] << 8 | f[17]) > len) {
                d->warned_cut = true;
                log_warn("catnip: net_af_packet handed over an IPv4 packet cut to %u bytes: its socket fanout "
                         "reassembles IP fragments into one ring frame, so UDP datagrams that Linux sends in "
                         "fragments cannot pass it (use net_af_xdp or net_memif for those)",
                         len);
            }
        }
        uint64_t ol = m->ol_flags;
        if ((ol & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_BAD ||
            (ol & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_BAD)
            flags = PKT_RX_CSUM_BAD;
        else if ((ol & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_GOOD &&
                 (ol & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_GOOD)
            flags = PKT_RX_CSUM_GOOD;
        if (take && m->nb_segs == 1) {
            struct heap_blk *b = heap_carved_blk(nd->heap, m->buf_addr);
            if (b) {
                heap_carved_take(b);
                d->holder[holder_index(d, b)] = m;
                out[k++] = (struct rxframe){b, rte_pktmbuf_mtod(m, uint8_t *), len, flags};
                nd->stats.rx_frames++;
                nd->stats.rx_bytes += len;
                continue;
            }
        }
        /* Copy mode (a PMD with its own buffers, or a chained frame). */
        struct heap_blk *b = heap_alloc(nd->heap, len ? len : 1);
        if (!b) {
            rte_pktmbuf_free(m);
            continue;
        }
        uint8_t *p = heap_blk_data(nd->heap, b);
        const void *src = rte_pktmbuf_read(m, 0, len, p);
        if (src != p)
            memcpy(p, src, len);
        nd->stats.copied_bytes += len;
        rte_pktmbuf_free(m);
        out[k++] = (struct rxframe){b, p, len, flags};
        nd->stats.rx_frames++;
        nd->stats.rx_bytes += len;
    }
    return k;
}

/* ---- transmit ---- */

static void tx_detached(void *addr, void *opaque)
{
    (void)addr;
    struct tx_priv *tp = opaque;
    heap_unref(tp->heap, tp->blk);
}

/* One mbuf viewing @s (the packet's reference is not taken: see tx_burst). */
static struct rte_mbuf *attach(struct dpdk_dev *d, const struct pkt_seg *s)
{
    struct rte_mbuf *m = rte_pktmbuf_alloc(d->tx_pool);
    if (!m)
        return NULL;
    struct tx_priv *tp = rte_mbuf_to_priv(m);
    tp->heap = d->nd.heap;
    tp->blk = s->blk;
    tp->shinfo.free_cb = tx_detached;
    tp->shinfo.fcb_opaque = tp;
    rte_mbuf_ext_refcnt_set(&tp->shinfo, 1);
    rte_iova_t iova = rte_eal_iova_mode() == RTE_IOVA_VA ? (rte_iova_t)(uintptr_t)s->data : RTE_BAD_IOVA;
    rte_pktmbuf_attach_extbuf(m, s->data, iova, (uint16_t)s->len, &tp->shinfo);
    m->data_len = (uint16_t)s->len;
    m->pkt_len = s->len;
    return m;
}

/* @p as mbufs: attached views, or one copy where the port needs it. */
static struct rte_mbuf *build(struct dpdk_dev *d, const struct pkt *p, bool *copied)
{
    *copied = false;
    if (p->nseg == 1 || d->multiseg) { /* PKT_MAX_SEGS is far below RTE_MBUF_MAX_NB_SEGS */
        bool ok = true;
        for (uint16_t i = 0; i < p->nseg; i++)
            ok = ok && p->seg[i].blk && p->seg[i].len <= UINT16_MAX;
        if (ok) {
            struct rte_mbuf *head = NULL, *tail = NULL;
            for (uint16_t i = 0; i < p->nseg; i++) {
                if (!p->seg[i].len)
                    continue;
                struct rte_mbuf *m = attach(d, &p->seg[i]);
                if (!m) {
                    /* Give back the views made so far, keeping the refs. */
                    for (struct rte_mbuf *x = head; x; x = x->next)
                        heap_ref(((struct tx_priv *)rte_mbuf_to_priv(x))->blk);
                    rte_pktmbuf_free(head);
                    return NULL;
                }
                if (!head) {
                    head = m;
                } else {
                    tail->next = m;
                    head->nb_segs++;
                    head->pkt_len += m->data_len;
                }
                tail = m;
            }
            return head;
        }
    }
    struct rte_mbuf *m = rte_pktmbuf_alloc(d->copy_pool);
    if (!m)
        return NULL;
    uint8_t *w = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)p->len);
    if (!w) {
        rte_pktmbuf_free(m);
        return NULL;
    }
    for (uint16_t i = 0; i < p->nseg; i++) {
        memcpy(w, p->seg[i].data, p->seg[i].len);
        w += p->seg[i].len;
    }
    *copied = true;
    return m;
}

static void offload(struct dpdk_dev *d, struct rte_mbuf *m, const struct pkt *p)
{
    if (!(p->flags & (PKT_TX_IPV4_CSUM | PKT_TX_L4_CSUM)))
        return;
    (void)d;
    m->l2_len = p->l3_off;
    m->l3_len = (uint64_t)(p->l4_off - p->l3_off);
    m->ol_flags |= RTE_MBUF_F_TX_IPV4;
    if (p->flags & PKT_TX_IPV4_CSUM)
        m->ol_flags |= RTE_MBUF_F_TX_IP_CKSUM;
    if (p->flags & PKT_TX_L4_CSUM) {
        /* The headers are in the first segment; DPDK wants the
         * pseudo-header's sum in the checksum field. */
        struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(p->seg[0].data + p->l3_off);
        uint8_t *l4 = p->seg[0].data + p->l4_off;
        if (ip->next_proto_id == IPPROTO_TCP) {
            m->ol_flags |= RTE_MBUF_F_TX_TCP_CKSUM;
            uint16_t ph = rte_ipv4_phdr_cksum(ip, m->ol_flags);
            memcpy(l4 + 16, &ph, 2);
        } else if (ip->next_proto_id == IPPROTO_UDP) {
            m->ol_flags |= RTE_MBUF_F_TX_UDP_CKSUM;
            uint16_t ph = rte_ipv4_phdr_cksum(ip, m->ol_flags);
            memcpy(l4 + 6, &ph, 2);
        }
    }
}

static int dpdk_tx_burst(struct netdev *nd, struct pkt *pkts, int n)
{
    struct dpdk_dev *d = to_dpdk(nd);
    struct rte_mbuf *ms[64];
    bool copied[64];
    if (n > 64)
        n = 64;
    int built = 0;
    for (; built < n; built++) {
        ms[built] = build(d, &pkts[built], &copied[built]);
        if (!ms[built])
            break;
        offload(d, ms[built], &pkts[built]);
    }
    uint16_t sent = built ? guarded_tx(d, ms, (uint16_t)built) : 0;
    for (int i = 0; i < sent; i++) {
        /* Attached views: the references went to the mbufs. Copies: the
         * packet's references are done with. */
        if (copied[i]) {
            nd->stats.copied_bytes += pkts[i].len;
            pkt_release(nd->heap, &pkts[i]);
        } else
            pkts[i].nseg = 0;
        nd->stats.tx_frames++;
        nd->stats.tx_bytes += pkts[i].len;
    }
    for (int i = sent; i < built; i++) {
        /* Refused: the packet keeps its references (the free callbacks
         * drop the ones the views would have taken). */
        if (!copied[i])
            for (struct rte_mbuf *x = ms[i]; x; x = x->next)
                heap_ref(((struct tx_priv *)rte_mbuf_to_priv(x))->blk);
        rte_pktmbuf_free(ms[i]);
    }
    if (sent < n)
        nd->stats.tx_full += (uint64_t)(n - sent);
    return sent;
}

/* ---- DMA mapping of the heap (real NICs; virtual ports say ENOTSUP) ---- */

static int dma_map(void *arg, void *addr, size_t len)
{
    struct dpdk_dev *d = arg;
    if (!d->dma)
        return 0;
    if (rte_dev_dma_map(d->rte_dev, addr, (uint64_t)(uintptr_t)addr, len) == 0)
        return 0;
    if (rte_errno == ENOTSUP || rte_errno == EINVAL) {
        d->dma = false; /* a virtual device: it never DMAs */
        return 0;
    }
    log_error("catnip: mapping heap memory for the device's DMA failed: %s", rte_strerror(rte_errno));
    return EIO;
}

static void dma_unmap(void *arg, void *addr, size_t len)
{
    struct dpdk_dev *d = arg;
    if (d->dma)
        rte_dev_dma_unmap(d->rte_dev, addr, (uint64_t)(uintptr_t)addr, len);
}

/* ---- idle ---- */

/* Sleeps until a frame may have arrived or @timeout_ns passed. A port whose
 * receive queue has an interrupt (DPDK's rx interrupts: net_tap here, the
 * vfio-bound NICs that have them) sleeps on it: armed, then waited for in
 * the thread's DPDK epoll set, which also clears an eventfd-style
 * interrupt; a wait shorter than the 1 ms the epoll set counts in polls the
 * descriptor instead. Any other port (net_memif, net_af_xdp,
 * net_af_packet: no interrupt in DPDK 22.11) can only be looked at: the
 * sleeps between looks double from 16 us to 2 ms while nothing moves, so
 * an idle port costs about 500 short wake-ups a second (a wake-up costs
 * some 30 us of CPU in this VM: under 2% of a core) and the first frame
 * after a pause waits at most 2 ms. */
static void dpdk_wait(struct netdev *nd, uint64_t timeout_ns, int also_fd)
{
    struct dpdk_dev *d = to_dpdk(nd);
    uint64_t seen = nd->stats.rx_frames + nd->stats.tx_frames;
    if (seen != d->idle_seen) {
        d->idle_seen = seen;
        d->idle_ns = IDLE_POLL_MIN_NS;
    }
    if (d->intr_fd >= 0) {
        rte_eth_dev_rx_intr_enable(d->port, 0); /* some PMDs need no arming (ENOTSUP) */
        /* A frame that came after the last look and before the arming
         * raised no interrupt: look again, where the PMD can count. */
        if (rte_eth_rx_queue_count(d->port, 0) <= 0) {
            if (timeout_ns >= 1000000u && also_fd < 0) {
                struct rte_epoll_event ev;
                int ms = timeout_ns / 1000000u > INT32_MAX ? -1 : (int)(timeout_ns / 1000000u);
                rte_epoll_wait(RTE_EPOLL_PER_THREAD, &ev, 1, ms);
            } else {
                netif_wait_fd(d->intr_fd, also_fd, timeout_ns);
            }
        }
        rte_eth_dev_rx_intr_disable(d->port, 0);
        return;
    }
    uint64_t ns = timeout_ns < d->idle_ns ? timeout_ns : d->idle_ns;
    netif_wait_fd(also_fd, -1, ns); /* also_fd -1: a plain sleep */
    if (d->idle_ns < IDLE_POLL_MAX_NS)
        d->idle_ns = d->idle_ns * 2 < IDLE_POLL_MAX_NS ? d->idle_ns * 2 : IDLE_POLL_MAX_NS;
}

/* The receive queue's interrupt, where the port has one (see dpdk_wait):
 * its descriptor joins this thread's DPDK epoll set. */
static void setup_intr(struct dpdk_dev *d)
{
    d->intr_fd = -1;
    /* A port without one makes ethdev log an error: not one here. */
    int type = rte_log_register("lib.ethdev"), level = type >= 0 ? rte_log_get_level(type) : -1;
    if (level >= 0)
        rte_log_set_level(type, RTE_LOG_CRIT);
    int fd = rte_eth_dev_rx_intr_ctl_q_get_fd(d->port, 0);
    if (level >= 0)
        rte_log_set_level(type, (uint32_t)level);
    if (fd < 0)
        return;
    int r = rte_eth_dev_rx_intr_ctl_q(d->port, 0, RTE_EPOLL_PER_THREAD, RTE_INTR_EVENT_ADD, NULL);
    if (r) {
        log_info("catnip: port %u: its receive interrupt cannot be waited for (%s): idle waits poll", d->port,
                 rte_strerror(-r));
        return;
    }
    d->intr_fd = fd;
}

/* ---- create / destroy ---- */

/* Stops and closes a started port (which frees the mbufs in its rings),
 * after one line with its drop counters. */
static void port_stop(uint16_t port)
{
    struct rte_eth_stats es;
    if (rte_eth_stats_get(port, &es) == 0)
        log_info("dpdk: kernel: rx_dropped=%llu rx_nombuf=%llu rx_errors=%llu tx_errors=%llu (the port's counters: "
                 "frames lost before our rings)",
                 (unsigned long long)es.imissed, (unsigned long long)es.rx_nombuf, (unsigned long long)es.ierrors,
                 (unsigned long long)es.oerrors);
    rte_eth_dev_stop(port);
    rte_eth_dev_close(port);
}

/* Closes a shared port and frees every queue's pools; eal.mu held. */
static void share_close(uint16_t port)
{
    struct port_share *sh = &eal.share[port];
    if (sh->nq)
        port_stop(port);
    for (uint32_t q = 0; q < CONFIG_MAX_QUEUES; q++) {
        rte_mempool_free(sh->rx_pool[q]);
        rte_mempool_free(sh->tx_pool[q]);
        rte_mempool_free(sh->copy_pool[q]);
    }
    memset(sh, 0, sizeof(*sh));
    eal.used[port] = false;
}

static void dpdk_destroy(struct netdev *nd)
{
    if (!nd)
        return;
    struct dpdk_dev *d = to_dpdk(nd);
    if (d->shared) {
        /* The pools are the port's: they go when the last instance does. */
        if (d->hooked)
            heap_remove_hook(nd->heap, d);
        pthread_mutex_lock(&eal.mu);
        struct port_share *sh = &eal.share[d->port];
        if (d->started)
            sh->taken &= ~(1u << d->queue);
        if (!--sh->users)
            share_close(d->port);
        pthread_mutex_unlock(&eal.mu);
        free(d);
        return;
    }
    if (d->intr_fd >= 0)
        rte_eth_dev_rx_intr_ctl_q(d->port, 0, RTE_EPOLL_PER_THREAD, RTE_INTR_EVENT_DEL, NULL);
    if (d->started)
        port_stop(d->port);
    if (d->hooked)
        heap_remove_hook(nd->heap, d);
    if (d->rx_pool)
        rte_mempool_free(d->rx_pool);
    if (d->tx_pool)
        rte_mempool_free(d->tx_pool);
    if (d->copy_pool)
        rte_mempool_free(d->copy_pool);
    for (uint32_t i = 0; i < d->ncarved; i++) {
        if (d->carved[i] && heap_uncarve(nd->heap, d->carved[i]) == EBUSY)
            log_warn("catnip: receive buffers still held at exit; their memory stays reserved");
    }
    free(d->carved);
    free(d->slot_of_chunk);
    free(d->holder);
    pthread_mutex_lock(&eal.mu);
    eal.used[d->port] = false;
    pthread_mutex_unlock(&eal.mu);
    free(d);
}

static const struct netdev_ops dpdk_ops = {
    .name = "dpdk",
    .rx_burst = dpdk_rx_burst,
    .tx_burst = dpdk_tx_burst,
    .destroy = dpdk_destroy,
    .wait = dpdk_wait,
};

/* The port to use: the one with our MAC, else the first free one. With
 * nq > 1 (libdemi.queues), a port the process's instances already share
 * comes first. */
static int pick_port(const struct config *c, uint16_t nq, uint16_t *out)
{
    uint16_t first = RTE_MAX_ETHPORTS, p;
    RTE_ETH_FOREACH_DEV(p)
    {
        bool joinable = nq > 1 && eal.share[p].users > 0;
        if (eal.used[p] && !joinable)
            continue;
        if (first == RTE_MAX_ETHPORTS || (joinable && !eal.share[first].users))
            first = p;
        struct rte_ether_addr mac;
        if (c->has_local_link_addr && rte_eth_macaddr_get(p, &mac) == 0 &&
            memcmp(mac.addr_bytes, c->local_link_addr, 6) == 0) {
            *out = p;
            return 0;
        }
    }
    if (first == RTE_MAX_ETHPORTS)
        return rte_eth_dev_count_avail() ? EBUSY : ENODEV;
    *out = first;
    return 0;
}

static int setup_shared(struct dpdk_dev *d, const struct config *c, struct rte_eth_conf *conf, const char *drv,
                        int socket, uint16_t nq);

/* A net_memif port's packet buffer size: its bsize device argument, or the
 * driver's default of 2048. */
static uint32_t memif_bsize(const struct rte_device *dev)
{
    const struct rte_devargs *da = dev ? rte_dev_devargs(dev) : NULL;
    const char *a = da ? da->args : NULL;
    for (const char *p = a; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (strncmp(p, "bsize=", 6) == 0)
            return (uint32_t)strtoul(p + 6, NULL, 0);
    return 2048;
}

static int setup(struct dpdk_dev *d, const struct config *c, uint16_t nq)
{
    struct rte_eth_dev_info info;
    int r = rte_eth_dev_info_get(d->port, &info);
    if (r)
        return -r;
    d->rte_dev = info.device;
    const char *drv = info.driver_name ? info.driver_name : "?";
    /* net_af_xdp builds its UMEM from the pool's own memory: it cannot
     * receive into external buffers. */
    d->rx_zc = strcmp(drv, "net_af_xdp") != 0 && !d->shared; /* a shared port's pools are the port's */
    d->af_packet = strcmp(drv, "net_af_packet") == 0;
    d->memif = strcmp(drv, "net_memif") == 0;
    if (d->memif)
        pthread_once(&guard_once, guard_install);
    d->multiseg = (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS) != 0;
    /* A buffer holds a whole frame after the headroom. net_af_packet
     * insists on room for its ring's whole frame (framesz, 2048 by
     * default, less its header): 4 KiB blocks for it. */
    uint32_t need = 1514;
    if (strcmp(drv, "net_af_packet") == 0)
        need = 4096 - RTE_PKTMBUF_HEADROOM;
    /* Jumbo frames (inetstack_config.mtu above 1500, which needs
     * enable_jumbo_frames): the port must take the MTU, and every buffer
     * holds a whole frame, so nothing arrives chained (a chained frame is
     * copied). */
    bool set_mtu = c->mtu > RTE_ETHER_MTU;
    if (d->memif) {
        /* net_memif tells ethdev 1518-byte frames at most, but its rings
         * carry any frame that fits its packet buffers (bsize): the MTU is
         * ours to choose, with buffers that hold it. A longer frame would
         * span descriptors, and with DPDK 22.11's memif such frames came
         * out merged and replayed (millions of duplicates in a 64 KiB
         * echo run), most likely because its transmit path leaves a
         * reused first descriptor's chain flag set. */
        uint32_t bsize = memif_bsize(info.device);
        if (bsize < c->mtu + RTE_ETHER_HDR_LEN) {
            log_error("catnip: port %u (net_memif): MTU %u needs %u-byte memif buffers, and they are %u: add "
                      "bsize=%u to its --vdev (frames that span buffers are corrupted by DPDK 22.11's memif)",
                      d->port, c->mtu, c->mtu + RTE_ETHER_HDR_LEN, bsize,
                      RTE_ALIGN_CEIL(c->mtu + RTE_ETHER_HDR_LEN, 1024u));
            return EINVAL;
        }
        if (set_mtu)
            log_info("catnip: port %u (net_memif): MTU %u in %u-byte memif buffers (the port's ethdev limit of "
                     "1518-byte frames does not apply to its rings)",
                     d->port, c->mtu, bsize);
        set_mtu = false;
    }
    if (set_mtu) {
        if (info.max_mtu < c->mtu || info.max_rx_pktlen < c->mtu + RTE_ETHER_HDR_LEN + RTE_ETHER_CRC_LEN) {
            uint32_t most = info.max_rx_pktlen - RTE_ETHER_HDR_LEN - RTE_ETHER_CRC_LEN;
            log_error("catnip: port %u (%s) takes an MTU of at most %u; inetstack_config.mtu is %u", d->port, drv,
                      MIN(most, (uint32_t)info.max_mtu), c->mtu);
            return EINVAL;
        }
    }
    if (need < c->mtu + RTE_ETHER_HDR_LEN)
        need = c->mtu + RTE_ETHER_HDR_LEN;
    d->room = (uint16_t)MAX((uint32_t)RTE_MBUF_DEFAULT_BUF_SIZE,
                            RTE_ALIGN_CEIL(c->mtu + RTE_ETHER_HDR_LEN + RTE_PKTMBUF_HEADROOM, 1024u));
    d->rx_shift = RX_BUF_SHIFT;
    while ((1u << d->rx_shift) < need + RTE_PKTMBUF_HEADROOM && d->rx_shift < 16)
        d->rx_shift++;
    int socket = rte_eth_dev_socket_id(d->port);
    if (socket < 0)
        socket = (int)rte_socket_id();

    struct rte_eth_conf conf;
    memset(&conf, 0, sizeof(conf));
    if (set_mtu)
        conf.rxmode.mtu = c->mtu;
    if (d->multiseg)
        conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
    const uint64_t rx_csum =
        RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_TCP_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
    if ((info.rx_offload_capa & rx_csum) == rx_csum) {
        conf.rxmode.offloads |= rx_csum;
        d->nd.offloads |= NETDEV_RX_CSUM;
    }
    if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM) {
        conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
        d->nd.offloads |= NETDEV_TX_IPV4_CSUM;
    }
    const uint64_t tx_l4 = RTE_ETH_TX_OFFLOAD_TCP_CKSUM | RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
    if ((info.tx_offload_capa & tx_l4) == tx_l4 && (d->nd.offloads & NETDEV_TX_IPV4_CSUM)) {
        conf.txmode.offloads |= tx_l4;
        d->nd.offloads |= NETDEV_TX_L4_CSUM;
    }
    if (d->shared) {
        pthread_mutex_lock(&eal.mu);
        r = setup_shared(d, c, &conf, drv, socket, nq);
        pthread_mutex_unlock(&eal.mu);
        if (r)
            return r;
        goto started;
    }
    /* Receive interrupts where the port has them, for idle sleeps; a port
     * without ignores the request, one that refuses it starts without. */
    conf.intr_conf.rxq = 1;
    if ((r = rte_eth_dev_configure(d->port, 1, 1, &conf)) != 0) {
        conf.intr_conf.rxq = 0;
        r = rte_eth_dev_configure(d->port, 1, 1, &conf);
    }
    if (r != 0) {
        log_error("catnip: configuring port %u (%s): %s", d->port, drv, rte_strerror(-r));
        return -r;
    }
    uint16_t nrx = (uint16_t)c->dpdk_rx_ring, ntx = (uint16_t)c->dpdk_tx_ring;
    rte_eth_dev_adjust_nb_rx_tx_desc(d->port, &nrx, &ntx);

    int e = make_rx_pool(d, c, socket);
    if (e) {
        if (!d->rx_pool && e == ENOMEM)
            log_error("catnip: no DPDK memory for the receive pool (%s); with --no-huge, raise -m",
                      rte_strerror(rte_errno));
        return e;
    }
    char tag[16];
    snprintf(tag, sizeof(tag), "%u", d->port);
    if ((e = make_tx_pools(c, tag, socket, d->room, &d->tx_pool, &d->copy_pool)))
        return e;
    for (;;) {
        if ((r = rte_eth_rx_queue_setup(d->port, 0, nrx, (unsigned)socket, NULL, d->rx_pool)) != 0 ||
            (r = rte_eth_tx_queue_setup(d->port, 0, ntx, (unsigned)socket, NULL)) != 0) {
            log_error("catnip: setting up port %u's queues: %s", d->port, rte_strerror(-r));
            return -r;
        }
        if ((r = rte_eth_dev_start(d->port)) == 0)
            break;
        if (!conf.intr_conf.rxq) {
            log_error("catnip: starting port %u (%s): %s", d->port, drv, rte_strerror(-r));
            return -r;
        }
        log_info("catnip: port %u (%s) did not start with receive interrupts (%s): starting it without", d->port, drv,
                 rte_strerror(-r));
        conf.intr_conf.rxq = 0;
        if ((r = rte_eth_dev_configure(d->port, 1, 1, &conf)) != 0) {
            log_error("catnip: configuring port %u (%s): %s", d->port, drv, rte_strerror(-r));
            return -r;
        }
    }
    d->started = true;
    if (conf.intr_conf.rxq)
        setup_intr(d);
started:;

    struct rte_ether_addr mac;
    rte_eth_macaddr_get(d->port, &mac);
    memcpy(d->nd.mac, mac.addr_bytes, 6);
    if (c->has_local_link_addr && memcmp(mac.addr_bytes, c->local_link_addr, 6) != 0) {
        memcpy(d->nd.mac, c->local_link_addr, 6);
        rte_eth_promiscuous_enable(d->port); /* frames to our own MAC must reach us */
    }
    uint16_t mtu = 1500;
    rte_eth_dev_get_mtu(d->port, &mtu);
    if (c->mtu > mtu && d->memif)
        mtu = (uint16_t)c->mtu; /* see setup's net_memif line */
    uint32_t room = (d->rx_zc ? 1u << d->rx_shift : d->room) - RTE_PKTMBUF_HEADROOM - RTE_ETHER_HDR_LEN;
    d->nd.mtu = mtu < room ? mtu : room;

    /* Heap memory for the device's DMA (chunks mapped later too). */
    d->dma = rte_eal_iova_mode() == RTE_IOVA_VA;
    d->hooked = heap_add_hook(d->nd.heap, dma_map, dma_unmap, d) == 0;
    log_info("catnip: port %u (%s) queue %u, MAC %02x:%02x:%02x:%02x:%02x:%02x, MTU %u, %s receive, %s transmit%s", d->port,
             drv, d->queue, d->nd.mac[0], d->nd.mac[1], d->nd.mac[2], d->nd.mac[3], d->nd.mac[4], d->nd.mac[5], d->nd.mtu,
             d->rx_zc ? "zero-copy" : "copying", d->multiseg ? "zero-copy" : "copying (no chained mbufs)",
             d->nd.offloads ? ", checksum offloads" : "");
    log_info("catnip: port %u: an idle wait %s", d->port,
             d->intr_fd >= 0 ? "sleeps on the receive interrupt" : "polls, sleeping 16 us to 2 ms between looks");
    return 0;
}

/* A shared port (eal.share): configured, given every queue's pools and
 * started by its first instance; each instance takes queue d->queue.
 * Receive copies (the pools are DPDK's memory, not an instance's heap);
 * waits poll (no receive interrupts). eal.mu held. */
static int setup_shared(struct dpdk_dev *d, const struct config *c, struct rte_eth_conf *conf, const char *drv,
                        int socket, uint16_t nq)
{
    struct port_share *sh = &eal.share[d->port];
    int r;
    if (sh->nq && sh->nq != nq) {
        log_error("catnip: port %u is shared by %u queues; this instance was configured for %u (libdemi.queues)",
                  d->port, sh->nq, nq);
        return EINVAL;
    }
    if (sh->taken & (1u << d->queue)) {
        log_error("catnip: port %u queue %u has an instance already (libdemi.queue)", d->port, d->queue);
        return EBUSY;
    }
    if (!sh->nq) {
        conf->intr_conf.rxq = 0;
        if ((r = rte_eth_dev_configure(d->port, nq, nq, conf)) != 0) {
            log_error("catnip: configuring port %u (%s) with %u queue pairs (libdemi.queues): %s", d->port, drv, nq,
                      rte_strerror(-r));
            return -r;
        }
        uint16_t nrx = (uint16_t)c->dpdk_rx_ring, ntx = (uint16_t)c->dpdk_tx_ring;
        rte_eth_dev_adjust_nb_rx_tx_desc(d->port, &nrx, &ntx);
        for (uint16_t q = 0; q < nq; q++) {
            char name[RTE_MEMPOOL_NAMESIZE];
            snprintf(name, sizeof(name), "demi_rx%u_%u", d->port, q);
            sh->rx_pool[q] = rte_pktmbuf_pool_create(name, c->dpdk_mbufs, POOL_CACHE, 0, d->room, socket);
            if (!sh->rx_pool[q]) {
                log_error("catnip: no DPDK memory for queue %u's receive pool (%s); with --no-huge, raise -m", q,
                          rte_strerror(rte_errno));
                return ENOMEM;
            }
            char tag[16];
            snprintf(tag, sizeof(tag), "%u_%u", d->port, q);
            if ((r = make_tx_pools(c, tag, socket, d->room, &sh->tx_pool[q], &sh->copy_pool[q])))
                return r;
            if ((r = rte_eth_rx_queue_setup(d->port, q, nrx, (unsigned)socket, NULL, sh->rx_pool[q])) != 0 ||
                (r = rte_eth_tx_queue_setup(d->port, q, ntx, (unsigned)socket, NULL)) != 0) {
                log_error("catnip: setting up port %u's queue %u: %s", d->port, q, rte_strerror(-r));
                return -r;
            }
        }
        if ((r = rte_eth_dev_start(d->port)) != 0) {
            log_error("catnip: starting port %u (%s) with %u queue pairs: %s", d->port, drv, nq, rte_strerror(-r));
            return -r;
        }
        sh->nq = nq;
        log_info("catnip: port %u (%s) started with %u queue pairs, shared by the process's instances", d->port, drv,
                 nq);
    }
    sh->taken |= 1u << d->queue;
    d->started = true;
    d->rx_pool = sh->rx_pool[d->queue];
    d->tx_pool = sh->tx_pool[d->queue];
    d->copy_pool = sh->copy_pool[d->queue];
    return 0;
}

int dpdk_dev_create(struct heap *heap, const struct config *c, uint32_t queue, uint32_t nq, struct netdev **out)
{
    pthread_mutex_lock(&eal.mu);
    int e = eal_init(c);
    uint16_t port = 0;
    if (!e) {
        e = pick_port(c, (uint16_t)nq, &port);
        if (e == ENODEV)
            log_error("catnip: DPDK found no port: give a --vdev or a device in dpdk.eal_init");
        else if (e == EBUSY)
            log_error("catnip: every DPDK port is in use by another runtime (or was closed by one)");
        else
            eal.used[port] = true;
        if (!e && nq > 1)
            eal.share[port].users++;
    }
    pthread_mutex_unlock(&eal.mu);
    if (e)
        return e;
    struct dpdk_dev *d = calloc(1, sizeof(*d));
    if (!d) {
        pthread_mutex_lock(&eal.mu);
        if (nq > 1 && !--eal.share[port].users)
            share_close(port);
        else if (nq <= 1)
            eal.used[port] = false;
        pthread_mutex_unlock(&eal.mu);
        return ENOMEM;
    }
    d->nd.ops = &dpdk_ops;
    d->nd.heap = heap;
    d->intr_fd = -1;
    d->idle_ns = IDLE_POLL_MIN_NS;
    d->port = port;
    d->queue = (uint16_t)queue;
    d->shared = nq > 1;
    e = setup(d, c, (uint16_t)nq);
    if (e) {
        dpdk_destroy(&d->nd);
        return e > 0 ? e : EINVAL;
    }
    *out = &d->nd;
    return 0;
}
