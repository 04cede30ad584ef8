/*
 * impair: a userspace Ethernet bridge that injects seeded faults. It runs in
 * the middle namespace of `scripts/netns.sh up ID impair` and forwards every
 * frame that arrives on one interface out of the other, both ways, losing,
 * duplicating, delaying and reordering frames on the way. It exists because
 * this machine's kernel has no netem (see tools/README.md).
 *
 * Shape: two AF_PACKET sockets, one per interface, and one time-ordered heap
 * of held frames shared by both directions. Every frame that is not lost goes
 * through the heap (with no delay it is due at once), so frames of one
 * direction leave in the order they arrived unless a fault reorders them. The
 * process sleeps in ppoll() until a frame arrives or the earliest held frame
 * is due; it never spins, because the peers it serves share two CPUs with it.
 *
 * Determinism: each direction has its own generator seeded from --seed, and
 * every frame consumes the same number of draws whatever its fate, so the
 * faults applied to the n-th frame of a direction depend only on the seed and
 * n. Timing (when a held frame leaves) depends on the clock, not on the draws.
 *
 * It must never forward its own transmissions (PACKET_IGNORE_OUTGOING, and
 * PACKET_OUTGOING frames are dropped as a second guard), and never touch any
 * interface but the two it is given.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <math.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_FRAME    (9216 + 14) /* a 9216-byte jumbo payload plus the Ethernet header */
#define VLAN_TAG_LEN 4
#define MAX_HELD     65536 /* frames held at once; beyond that a frame is dropped (overflow) */
#define RX_BURST     64    /* frames read from one socket before looking at the other */
#define RCVBUF_BYTES (8 << 20)
#define MAX_DELAY_US ((uint64_t)10000000) /* 10 s: a bigger delay is almost surely a typo */
#define NS_PER_US    ((uint64_t)1000)
#define NS_PER_SEC   ((uint64_t)1000000000)
#define EXIT_USAGE   2

/* Per-direction counters; printed as JSON, so the names are the interface. */
struct counters {
    uint64_t rx;             /* frames read from the input interface */
    uint64_t forwarded;      /* copies written to the output interface (duplicates included) */
    uint64_t lost;           /* frames dropped by --loss */
    uint64_t duplicated;     /* extra copies made by --dup */
    uint64_t reordered;      /* frames held back by --reorder-delay instead of --delay */
    uint64_t delayed;        /* copies held back by --delay/--jitter (reordered ones excluded) */
    uint64_t kernel_drops;   /* frames the kernel dropped before we read them (socket buffer full) */
    uint64_t tx_errors;      /* copies the output interface refused */
    uint64_t oversize;       /* frames longer than MAX_FRAME or GSO super-frames (offload on the sender), dropped */
    uint64_t malformed;      /* runts, or a checksum offset outside the frame, dropped */
    uint64_t overflow;       /* frames dropped because MAX_HELD frames were already held */
    uint64_t csum_completed; /* frames whose checksum the sender left to offload, finished by us */
};

struct dir {
    const char *name;   /* JSON key: "a_to_b" or "b_to_a" */
    const char *in_if;  /* for messages */
    const char *out_if; /* for messages */
    int in_fd;
    int out_fd;
    uint64_t rng;      /* splitmix64 state */
    uint64_t fifo_due; /* latest due time given to an in-order frame: later ones never leave before it */
    struct counters c;
};

struct frame {
    uint64_t due; /* CLOCK_MONOTONIC, ns */
    uint64_t seq; /* arrival order: breaks ties so equal due times keep FIFO order */
    struct dir *dir;
    uint32_t len;
    uint8_t data[];
};

struct opts {
    const char *if_a;
    const char *if_b;
    uint64_t seed;
    double loss, dup, reorder; /* probabilities, 0..1 */
    uint64_t delay_ns, jitter_ns, reorder_delay_ns;
    uint64_t stats_every_ns; /* 0: only at exit */
};

static volatile sig_atomic_t stop_signal;

static struct frame *heap[MAX_HELD];
static size_t heap_len;
static uint64_t next_seq;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* splitmix64 (Steele, Lea, Flood 2014): 64 bits of state, good enough for faults. */
static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A uniform double in [0, 1) from the top 53 bits of one draw. */
static double rng_unit(uint64_t *state)
{
    return (double)(rng_next(state) >> 11) * 0x1.0p-53;
}

/* The heap orders frames by due time, then by arrival. */
static bool frame_before(const struct frame *x, const struct frame *y)
{
    return x->due < y->due || (x->due == y->due && x->seq < y->seq);
}

static void heap_push(struct frame *f)
{
    size_t i = heap_len++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!frame_before(f, heap[parent]))
            break;
        heap[i] = heap[parent];
        i = parent;
    }
    heap[i] = f;
}

static struct frame *heap_pop(void)
{
    struct frame *top = heap[0];
    struct frame *last = heap[--heap_len];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= heap_len)
            break;
        if (child + 1 < heap_len && frame_before(heap[child + 1], heap[child]))
            child++;
        if (!frame_before(heap[child], last))
            break;
        heap[i] = heap[child];
        i = child;
    }
    if (heap_len > 0)
        heap[i] = last;
    return top;
}

static void print_counters(const struct counters *c)
{
    printf("{\"rx\":%" PRIu64 ",\"forwarded\":%" PRIu64 ",\"lost\":%" PRIu64 ",\"duplicated\":%" PRIu64
           ",\"reordered\":%" PRIu64 ",\"delayed\":%" PRIu64 ",\"kernel_drops\":%" PRIu64 ",\"tx_errors\":%" PRIu64
           ",\"oversize\":%" PRIu64 ",\"malformed\":%" PRIu64 ",\"overflow\":%" PRIu64 ",\"csum_completed\":%" PRIu64
           "}",
           c->rx, c->forwarded, c->lost, c->duplicated, c->reordered, c->delayed, c->kernel_drops, c->tx_errors,
           c->oversize, c->malformed, c->overflow, c->csum_completed);
}

/* Adds the kernel's drop count for a socket (PACKET_STATISTICS resets on every read). */
static void collect_kernel_drops(struct dir *d)
{
    struct tpacket_stats st;
    socklen_t len = sizeof(st);
    if (getsockopt(d->in_fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0)
        d->c.kernel_drops += st.tp_drops;
}

static void print_stats(struct dir dirs[2], uint64_t start, const char *event)
{
    collect_kernel_drops(&dirs[0]);
    collect_kernel_drops(&dirs[1]);
    printf("{\"event\":\"%s\",\"t\":%.3f,\"held\":%zu,\"%s\":", event, (double)(now_ns() - start) / NS_PER_SEC,
           heap_len, dirs[0].name);
    print_counters(&dirs[0].c);
    printf(",\"%s\":", dirs[1].name);
    print_counters(&dirs[1].c);
    printf("}\n");
    fflush(stdout);
}

static void usage(FILE *out, bool full)
{
    fprintf(out, "usage: impair --a IF --b IF [--seed N] [--loss PCT] [--dup PCT] [--reorder PCT]\n"
                 "              [--delay US] [--jitter US] [--reorder-delay US] [--stats-every S]\n");
    if (!full) {
        fprintf(out, "(impair --help explains each option)\n");
        return;
    }
    fprintf(out, "Forwards every Ethernet frame between interfaces IF (a) and IF (b), both ways, with\n"
                 "seeded faults drawn independently per direction:\n"
                 "  --loss PCT           drop PCT%% of frames\n"
                 "  --dup PCT            send PCT%% of frames twice\n"
                 "  --reorder PCT        hold PCT%% of frames back by --reorder-delay, so later frames pass them\n"
                 "  --delay US           hold every frame that is not reordered US microseconds\n"
                 "  --jitter US          add uniform jitter in [-US, +US] to --delay (order is kept)\n"
                 "  --reorder-delay US   default 3 x delay + 500\n"
                 "  --seed N             generator seed (default 1)\n"
                 "  --stats-every S      print the counters every S seconds too\n"
                 "SIGINT/SIGTERM print the counters as one JSON line on stdout and exit 0.\n");
}

static _Noreturn void bad_arg(const char *opt, const char *val, const char *why)
{
    fprintf(stderr, "impair: --%s %s: %s\n", opt, val, why);
    usage(stderr, false);
    exit(EXIT_USAGE);
}

static double parse_pct(const char *opt, const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < 0 || v > 100)
        bad_arg(opt, s, "expected a percentage 0..100");
    return v / 100.0;
}

static uint64_t parse_us(const char *opt, const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v > MAX_DELAY_US)
        bad_arg(opt, s, "expected microseconds 0..10000000");
    return (uint64_t)v * NS_PER_US;
}

static void parse_args(int argc, char **argv, struct opts *o)
{
    enum { O_A = 256, O_B, O_SEED, O_LOSS, O_DUP, O_REORDER, O_DELAY, O_JITTER, O_RDELAY, O_STATS, O_HELP };
    static const struct option longopts[] = {
        {"a", required_argument, NULL, O_A},
        {"b", required_argument, NULL, O_B},
        {"seed", required_argument, NULL, O_SEED},
        {"loss", required_argument, NULL, O_LOSS},
        {"dup", required_argument, NULL, O_DUP},
        {"reorder", required_argument, NULL, O_REORDER},
        {"delay", required_argument, NULL, O_DELAY},
        {"jitter", required_argument, NULL, O_JITTER},
        {"reorder-delay", required_argument, NULL, O_RDELAY},
        {"stats-every", required_argument, NULL, O_STATS},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    bool have_rdelay = false;
    char *end;
    int opt;

    *o = (struct opts){.seed = 1};
    opterr = 0;
    while ((opt = getopt_long_only(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case O_A:
            o->if_a = optarg;
            break;
        case O_B:
            o->if_b = optarg;
            break;
        case O_SEED:
            errno = 0;
            o->seed = strtoull(optarg, &end, 0);
            if (errno != 0 || end == optarg || *end != '\0' || optarg[0] == '-')
                bad_arg("seed", optarg, "expected an unsigned 64-bit integer");
            break;
        case O_LOSS:
            o->loss = parse_pct("loss", optarg);
            break;
        case O_DUP:
            o->dup = parse_pct("dup", optarg);
            break;
        case O_REORDER:
            o->reorder = parse_pct("reorder", optarg);
            break;
        case O_DELAY:
            o->delay_ns = parse_us("delay", optarg);
            break;
        case O_JITTER:
            o->jitter_ns = parse_us("jitter", optarg);
            break;
        case O_RDELAY:
            o->reorder_delay_ns = parse_us("reorder-delay", optarg);
            have_rdelay = true;
            break;
        case O_STATS: {
            errno = 0;
            double s = strtod(optarg, &end);
            if (errno != 0 || end == optarg || *end != '\0' || !isfinite(s) || s < 0.001 || s > 86400)
                bad_arg("stats-every", optarg, "expected seconds 0.001..86400");
            o->stats_every_ns = (uint64_t)(s * NS_PER_SEC);
            break;
        }
        case O_HELP:
            usage(stdout, true);
            exit(0);
        default:
            fprintf(stderr, "impair: unknown option or missing value: %s\n", argv[optind - 1]);
            usage(stderr, false);
            exit(EXIT_USAGE);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "impair: unexpected argument: %s\n", argv[optind]);
        usage(stderr, false);
        exit(EXIT_USAGE);
    }
    if (o->if_a == NULL || o->if_b == NULL) {
        fprintf(stderr, "impair: --a IF and --b IF are both required\n");
        usage(stderr, false);
        exit(EXIT_USAGE);
    }
    if (strcmp(o->if_a, o->if_b) == 0) {
        fprintf(stderr, "impair: --a and --b must be two different interfaces\n");
        exit(EXIT_USAGE);
    }
    if (!have_rdelay)
        o->reorder_delay_ns = 3 * o->delay_ns + 500 * NS_PER_US;
}

/*
 * Opens an AF_PACKET socket that sees every frame arriving on one interface
 * and sends out of it. Protocol 0 at socket() receives nothing until bind(),
 * so no frame of another interface slips in between the two calls.
 */
static int open_port(const char *ifname)
{
    unsigned int ifindex = if_nametoindex(ifname);
    if (ifindex == 0) {
        fprintf(stderr, "impair: no interface '%s' in this network namespace (%s)\n", ifname, strerror(errno));
        exit(EXIT_USAGE);
    }
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        if (errno == EPERM || errno == EACCES)
            fprintf(stderr, "impair: AF_PACKET sockets need CAP_NET_RAW: run as root (%s)\n", strerror(errno));
        else
            fprintf(stderr, "impair: socket(AF_PACKET): %s\n", strerror(errno));
        exit(EXIT_USAGE);
    }
    int one = 1;
    int rcvbuf = RCVBUF_BYTES;
    struct packet_mreq mr = {.mr_ifindex = (int)ifindex, .mr_type = PACKET_MR_PROMISC};
    struct sockaddr_ll sll = {
        .sll_family = AF_PACKET,
        .sll_protocol = htons(ETH_P_ALL),
        .sll_ifindex = (int)ifindex,
    };
    /* The first two are best effort: the PACKET_OUTGOING check below backs up the first, and the
     * default buffer only means earlier kernel drops (counted in kernel_drops). */
    (void)setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one));
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) != 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    if (setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) != 0 ||
        bind(fd, (struct sockaddr *)&sll, sizeof(sll)) != 0) {
        fprintf(stderr, "impair: setting up %s: %s\n", ifname, strerror(errno));
        exit(EXIT_USAGE);
    }
    return fd;
}

/*
 * Decides one frame's fate and holds its copies. Exactly five draws per frame,
 * whatever happens to it, keep the n-th frame's faults a function of the seed.
 */
static void admit(struct dir *d, const struct opts *o, const uint8_t *data, uint32_t len, uint64_t now)
{
    double u_loss = rng_unit(&d->rng);
    double u_dup = rng_unit(&d->rng);
    double u_reorder = rng_unit(&d->rng);
    double u_jitter[2] = {rng_unit(&d->rng), rng_unit(&d->rng)};

    if (u_loss < o->loss) {
        d->c.lost++;
        return;
    }
    bool reorder = u_reorder < o->reorder;
    int copies = u_dup < o->dup ? 2 : 1;
    if (reorder)
        d->c.reordered++;
    for (int i = 0; i < copies; i++) {
        if (heap_len == MAX_HELD) {
            d->c.overflow++;
            return;
        }
        struct frame *f = malloc(sizeof(*f) + len);
        if (f == NULL) {
            d->c.overflow++;
            return;
        }
        if (reorder) {
            /* Later in-order frames may pass it: it does not move fifo_due. */
            f->due = now + o->reorder_delay_ns;
        } else {
            /* delay + uniform jitter in [-jitter, +jitter], never before an earlier in-order frame. */
            double j = (2 * u_jitter[i] - 1) * (double)o->jitter_ns;
            double hold = (double)o->delay_ns + j;
            uint64_t due = now + (hold > 0 ? (uint64_t)hold : 0);
            if (due < d->fifo_due)
                due = d->fifo_due;
            d->fifo_due = due;
            f->due = due;
            if (due > now)
                d->c.delayed++;
        }
        f->seq = next_seq++;
        f->dir = d;
        f->len = len;
        memcpy(f->data, data, len);
        heap_push(f);
        if (i == 1)
            d->c.duplicated++;
    }
}

/*
 * Finishes a checksum the sender left to offload (CHECKSUM_PARTIAL: a veth
 * with "tx on" hands such frames over). The field already holds the folded
 * pseudo-header sum, so the checksum is the complement of the sum from
 * csum_start to the end of the frame, as skb_checksum_help() computes it.
 * Returns false if the offsets do not fit the frame.
 */
static bool complete_csum(uint8_t *frame, size_t len, size_t start, size_t offset)
{
    if (start >= len || offset + 2 > len - start)
        return false;
    uint64_t sum = 0;
    size_t i = start;
    for (; i + 1 < len; i += 2)
        sum += (uint32_t)frame[i] << 8 | frame[i + 1];
    if (i < len)
        sum += (uint32_t)frame[i] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    uint16_t csum = (uint16_t)~sum;
    if (csum == 0)
        csum = 0xffff; /* as the kernel does: 0 means "no checksum" to UDP */
    frame[start + offset] = (uint8_t)(csum >> 8);
    frame[start + offset + 1] = (uint8_t)csum;
    return true;
}

/*
 * Reads up to RX_BURST frames from one direction's input. Each arrives after
 * a virtio_net_hdr (PACKET_VNET_HDR), which says whether the sender left the
 * checksum to offload; impair finishes it, like a wire would see it. A VLAN
 * tag the kernel took out of the frame (into auxdata) is put back, so the
 * frame leaves as it arrived.
 */
static void receive(struct dir *d, const struct opts *o)
{
    static uint8_t buf[VLAN_TAG_LEN + MAX_FRAME];
    static bool warned_gso;
    union {
        struct cmsghdr h;
        uint8_t space[CMSG_SPACE(sizeof(struct tpacket_auxdata))];
    } ctl;

    for (int n = 0; n < RX_BURST; n++) {
        struct sockaddr_ll from;
        struct virtio_net_hdr vh;
        struct iovec iov[2] = {
            {.iov_base = &vh, .iov_len = sizeof(vh)},
            {.iov_base = buf + VLAN_TAG_LEN, .iov_len = MAX_FRAME},
        };
        struct msghdr msg = {
            .msg_name = &from,
            .msg_namelen = sizeof(from),
            .msg_iov = iov,
            .msg_iovlen = 2,
            .msg_control = ctl.space,
            .msg_controllen = sizeof(ctl.space),
        };
        ssize_t got = recvmsg(d->in_fd, &msg, MSG_DONTWAIT | MSG_TRUNC);
        if (got < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                fprintf(stderr, "impair: recv on %s: %s\n", d->in_if, strerror(errno));
            return;
        }
        if (from.sll_pkttype == PACKET_OUTGOING)
            continue;
        uint64_t now = now_ns();
        d->c.rx++;
        if (got < (ssize_t)(sizeof(vh) + ETH_HLEN)) {
            d->c.malformed++;
            continue;
        }
        size_t len = (size_t)got - sizeof(vh);
        if (len > MAX_FRAME || vh.gso_type != VIRTIO_NET_HDR_GSO_NONE) {
            if (vh.gso_type != VIRTIO_NET_HDR_GSO_NONE && !warned_gso) {
                warned_gso = true;
                fprintf(stderr,
                        "impair: %s delivers GSO super-frames, which impair drops: turn segmentation "
                        "offload off on the sender (ethtool -K DEV tso off gso off)\n",
                        d->in_if);
            }
            d->c.oversize++;
            continue;
        }
        uint8_t *frame = buf + VLAN_TAG_LEN;
        /* af_packet writes a legacy virtio header: its fields are in host byte order. */
        if (vh.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
            if (!complete_csum(frame, len, vh.csum_start, vh.csum_offset)) {
                d->c.malformed++;
                continue;
            }
            d->c.csum_completed++;
        }
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level != SOL_PACKET || c->cmsg_type != PACKET_AUXDATA)
                continue;
            struct tpacket_auxdata aux;
            memcpy(&aux, CMSG_DATA(c), sizeof(aux));
            if (aux.tp_status & TP_STATUS_VLAN_VALID) {
                uint16_t tpid = (aux.tp_status & TP_STATUS_VLAN_TPID_VALID) ? aux.tp_vlan_tpid : ETH_P_8021Q;
                uint16_t tag[2] = {htons(tpid), htons(aux.tp_vlan_tci)};
                memmove(buf, frame, 2 * ETH_ALEN);
                memcpy(buf + 2 * ETH_ALEN, tag, sizeof(tag));
                frame = buf;
                len += VLAN_TAG_LEN;
            }
        }
        admit(d, o, frame, (uint32_t)len, now);
    }
}

/*
 * An error on a socket: the interface went down (ENETDOWN) or away. Reading
 * SO_ERROR clears it; an interface that is down may come back, one that is gone
 * will not, so only then does impair stop.
 */
static void check_port(struct dir *d)
{
    int err = 0;
    socklen_t len = sizeof(err);
    (void)getsockopt(d->in_fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (if_nametoindex(d->in_if) == 0) {
        fprintf(stderr, "impair: interface %s is gone; stopping\n", d->in_if);
        stop_signal = -1;
    } else if (err != 0) {
        fprintf(stderr, "impair: %s: %s\n", d->in_if, strerror(err));
    }
}

/* Sends every held frame that is due; returns the earliest remaining due time, or 0. */
static uint64_t send_due(void)
{
    uint64_t now = now_ns();
    while (heap_len > 0) {
        if (heap[0]->due > now) {
            now = now_ns();
            if (heap[0]->due > now)
                return heap[0]->due;
        }
        struct frame *f = heap_pop();
        struct dir *d = f->dir;
        /* The socket has PACKET_VNET_HDR set, so a send starts with one too: all zero, a finished frame. */
        struct virtio_net_hdr vh = {0};
        struct iovec iov[2] = {{.iov_base = &vh, .iov_len = sizeof(vh)}, {.iov_base = f->data, .iov_len = f->len}};
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
        if (sendmsg(d->out_fd, &msg, 0) == (ssize_t)(sizeof(vh) + f->len)) {
            d->c.forwarded++;
        } else {
            if (d->c.tx_errors == 0)
                fprintf(stderr, "impair: send on %s (%u bytes): %s\n", d->out_if, f->len, strerror(errno));
            d->c.tx_errors++;
        }
        free(f);
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o;
    parse_args(argc, argv, &o);

    int fd_a = open_port(o.if_a);
    int fd_b = open_port(o.if_b);
    struct dir dirs[2] = {
        {.name = "a_to_b", .in_if = o.if_a, .out_if = o.if_b, .in_fd = fd_a, .out_fd = fd_b},
        {.name = "b_to_a", .in_if = o.if_b, .out_if = o.if_a, .in_fd = fd_b, .out_fd = fd_a},
    };
    /* Two generators from one seed: each direction's faults do not depend on the other's traffic. */
    uint64_t mix = o.seed;
    dirs[0].rng = rng_next(&mix);
    dirs[1].rng = rng_next(&mix);

    /* The default 50 us timer slack would add up to 50 us to every hold. */
    (void)prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);

    /* SIGINT and SIGTERM are blocked except inside ppoll(), so they interrupt only the wait. */
    sigset_t block, wait_mask;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &wait_mask);
    sigdelset(&wait_mask, SIGINT);
    sigdelset(&wait_mask, SIGTERM);
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    fprintf(stderr,
            "impair: %s <-> %s seed %" PRIu64 " loss %g%% dup %g%% reorder %g%% delay %" PRIu64 " us jitter %" PRIu64
            " us reorder-delay %" PRIu64 " us\n",
            o.if_a, o.if_b, o.seed, o.loss * 100, o.dup * 100, o.reorder * 100, o.delay_ns / NS_PER_US,
            o.jitter_ns / NS_PER_US, o.reorder_delay_ns / NS_PER_US);

    uint64_t start = now_ns();
    uint64_t next_stats = o.stats_every_ns ? start + o.stats_every_ns : 0;
    struct pollfd pfd[2] = {{.fd = fd_a, .events = POLLIN}, {.fd = fd_b, .events = POLLIN}};
    uint64_t next_due = 0;

    while (!stop_signal) {
        uint64_t wake = next_due;
        if (next_stats && (wake == 0 || next_stats < wake))
            wake = next_stats;
        struct timespec ts, *tsp = NULL;
        if (wake != 0) {
            uint64_t now = now_ns();
            uint64_t left = wake > now ? wake - now : 0;
            ts.tv_sec = (time_t)(left / NS_PER_SEC);
            ts.tv_nsec = (long)(left % NS_PER_SEC);
            tsp = &ts;
        }
        int n = ppoll(pfd, 2, tsp, &wait_mask);
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "impair: ppoll: %s\n", strerror(errno));
            return 1;
        }
        for (int i = 0; n > 0 && i < 2; i++) {
            if (pfd[i].revents & (POLLERR | POLLNVAL))
                check_port(&dirs[i]);
            if (pfd[i].revents & POLLIN)
                receive(&dirs[i], &o);
        }
        next_due = send_due();
        if (next_stats && now_ns() >= next_stats) {
            print_stats(dirs, start, "stats");
            next_stats += o.stats_every_ns;
        }
    }
    print_stats(dirs, start, "final");
    while (heap_len > 0)
        free(heap_pop());
    close(fd_a);
    close(fd_b);
    return stop_signal == -1 ? 1 : 0;
}
