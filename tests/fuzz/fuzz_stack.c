/*
 * libFuzzer target for the TCP/IP stack (src/inet) on the sim network,
 * built with clang -fsanitize=fuzzer,address,undefined (see CMakeLists.txt)
 * and run by tests/fuzz/test_fuzz_stack.sh.
 *
 * One stack, node N (10.0.0.1), on a sim device; a fake peer P (10.0.0.2)
 * that exists only as the frames this target writes into N's receive ring,
 * and an address Q (10.0.0.3) that never answers ARP. A tap sees every
 * frame N transmits (and drops it: nobody else is on the wire).
 *
 * Every input starts from the same state: a UDP socket bound to port 53, a
 * listener on port 80, a connection P:40000 -> N:80 established by a
 * handshake and accepted, and a connection N -> P:9000 left in SYN_SENT.
 * The first two bytes choose the stack's options (SACK, timestamps,
 * window scale, Nagle, delayed ACKs, CUBIC or NewReno, keep-alive, TLP,
 * MTU, buffer sizes, minimum RTO; see cfg_tweak). The rest is a program,
 * one op after another (see the op table below): TCP segments from P aimed at a known connection with sequence and
 * acknowledgment numbers relative to that connection (P's next sequence
 * number or the last ACK N sent; the highest or the last sequence number N
 * sent, or P's own last ACK), with any mix of flags, window, options and
 * payload; runs of duplicate ACKs with growing SACK blocks; new SYNs from
 * P; raw frames; IPv4 fragments; UDP, ICMP and ARP packets; virtual time
 * moving on by input-chosen amounts; and the application's actions (push,
 * pop, close, connect, accept, listen, socket options). Everything is
 * deterministic: fixed seeds, a virtual clock, no wall time.
 *
 * Oracles, besides ASan and UBSan (the stack's heap blocks are poisoned
 * when free, see the build):
 *   - every frame N transmits is well-formed: from N's MAC and address,
 *     IPv4 header length, total length and checksum right, no longer than
 *     the MTU, TCP/UDP/ICMP checksums right, TCP header length and options
 *     sane, no TCP fragments, ARP fields right;
 *   - TCP payload N sends is the application's bytes: pushes are filled
 *     with a pattern by stream offset, and every byte on the wire must be
 *     the pattern byte for its sequence number, and within what was pushed,
 *     and a FIN comes right after the last byte pushed;
 *     N never acknowledges a sequence number beyond the highest P sent;
 *   - payload N delivers to a pop is P's: P's payload is a pattern by
 *     sequence number, checked on every popped byte (unless a raw frame or
 *     fragment could have put other bytes into a TCP stream);
 *   - after every socket is closed and enough virtual time has passed: no
 *     connection, no armed timer, no task, no heap byte left beyond what
 *     the stack held before the scenario, and every application operation
 *     completed.
 *
 * A failed oracle prints a line starting "fuzz_stack:" and aborts.
 *
 * FUZZ_STACK_TRACE=1 prints every op and every TCP segment N sends.
 *
 * FUZZ_STACK_AVOID_KNOWN=1 (for finding what else is there while known
 * bugs are open; never in the suite): the application aborts (linger 0)
 * instead of closing a connection that has never queued data (its FIN is
 * then the only thing to resend, from an empty queue: issue 11 finding 1
 * and crash-fin-dupack-fast-retransmit), and neither a connection left probing a zero
 * window after its close (finding 3) nor a push of a closed socket that
 * never completes (crash-orphan-*) is counted as left over.
 */
#include "craft.h"
#include "inet/inet_int.h"
#include "libos/inetos.h"
#include "mem/sga.h"

#include <netinet/tcp.h>

#define FAIL(...)                                                                                                      \
    do {                                                                                                               \
        fprintf(stderr, "fuzz_stack: " __VA_ARGS__);                                                                   \
        fputc('\n', stderr);                                                                                           \
        abort(); /* a test harness: this is how libFuzzer learns of a finding */                                       \
    } while (0)

#define MAX_SLOTS 16
#define MAX_SOCKS 16
#define MAX_TASKS 128
#define LPORT     80
#define LPORT2    81
#define UPORT     53
#define PPORT0    40000
#define CPORT     9000
#define HEAP_MB   64
/* After the last op: how long the stack may take to forget everything
 * (retransmissions give up after ~15 min, TIME_WAIT is 60 s). */
#define END_MAX_NS  (2 * 3600 * SEC)
#define END_STEP_NS (60 * SEC)
#define MAX_EVENTS  2000000
#define MAX_ROUNDS  100000

static const uint8_t n_mac[6] = {0x02, 0, 0, 0, 0, 0x01};
static const uint8_t p_mac[6] = {0x02, 0, 0, 0, 0, 0x02};
static const uint8_t q_mac[6] = {0x02, 0, 0, 0, 0, 0x03};
static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

/* A TCP connection as P sees it: a 4-tuple, P's sequence space, and what
 * N has sent on it (from the tap). */
struct slot {
    bool used;
    uint16_t pport, nport;
    uint32_t peer_iss, peer_nxt; /* peer_nxt: past the highest byte P ever sent */
    bool peer_sent;
    bool node_syn; /* N's SYN seen: node_iss is valid */
    uint32_t node_iss, node_max, node_last;
    bool node_ack_ok;
    uint32_t node_ack;
    uint32_t node_tsval;
    bool peer_ack_ok; /* P's last acknowledgment and window */
    uint32_t peer_ack;
    uint16_t peer_win;
    bool pushed_ok; /* pushed_end is the end of what N's application pushed */
    uint32_t pushed_iss, pushed_end;
};

struct fsock {
    void *q; /* NULL: free */
    int type;
    uint64_t popped; /* TCP bytes popped so far */
};

enum { K_PUSH, K_POP, K_ACCEPT, K_CONNECT };

struct ftask {
    struct sched_task *t;
    void *q; /* the socket it was posted on (may be closed since) */
    int kind;
};

struct world {
    struct simnet *net;
    struct runtime *rt;
    struct netdev *dev;
    struct inet *in;
    uint64_t now;
    uint32_t n_ip, p_ip, q_ip;
    uint32_t mtu;
    bool auto_arp;
    bool tainted; /* a raw frame may have put foreign bytes into a TCP stream */
    uint8_t cfg0, cfg1;
    struct slot slot[MAX_SLOTS];
    struct fsock sock[MAX_SOCKS];
    struct ftask task[MAX_TASKS];
    int ntask;
    uint64_t events;
    const uint8_t *ip;
    size_t left;
    uint8_t frame[2048];
};

static struct world W;
static bool avoid_known;
/* FUZZ_STACK_TRACE=1: every op and every TCP segment N sends on stderr. */
static bool trace;

/* ---- large allocations, reused ----
 * Each input creates a stack, whose tables (~2 MiB in a few callocs) ASan
 * would map and unmap afresh every time: page faults and TLB flushes were
 * most of an input's cost. The build links with --wrap=calloc,--wrap=free
 * so that blocks of 64 KiB and more come from this cache instead: zeroed
 * when handed out, poisoned while cached (a use after free is still
 * caught), and every one must be back once the stack is destroyed. */
#include <sanitizer/asan_interface.h>

/* The owner of accepted queues in the descriptor table: a tag only, as
 * nothing here calls through the table (inet_set_qowner). */
static struct libos fuzz_qowner;

#define BIG_MIN   (64u << 10)
#define BIG_SLOTS 32

void *__real_calloc(size_t n, size_t size);
void __real_free(void *p);
void *__wrap_calloc(size_t n, size_t size);
void __wrap_free(void *p);

static struct {
    void *p;
    size_t size;
    bool used;
} big[BIG_SLOTS];
static bool big_on; /* only the stack's tables, made in inet_create, are cached */

void *__wrap_calloc(size_t n, size_t size)
{
    size_t total;
    if (!big_on || __builtin_mul_overflow(n, size, &total) || total < BIG_MIN)
        return __real_calloc(n, size);
    int freeslot = -1;
    for (int i = 0; i < BIG_SLOTS; i++) {
        if (big[i].p && !big[i].used && big[i].size == total) {
            big[i].used = true;
            ASAN_UNPOISON_MEMORY_REGION(big[i].p, total);
            memset(big[i].p, 0, total);
            return big[i].p;
        }
        if (!big[i].p && freeslot < 0)
            freeslot = i;
    }
    void *p = __real_calloc(n, size);
    if (p && freeslot >= 0) {
        big[freeslot].p = p;
        big[freeslot].size = total;
        big[freeslot].used = true;
    }
    return p;
}

void __wrap_free(void *p)
{
    if (p) {
        for (int i = 0; i < BIG_SLOTS; i++) {
            if (big[i].p == p && big[i].used) {
                big[i].used = false;
                ASAN_POISON_MEMORY_REGION(p, big[i].size);
                return;
            }
        }
    }
    __real_free(p);
}

static bool big_in_use(void)
{
    for (int i = 0; i < BIG_SLOTS; i++)
        if (big[i].used)
            return true;
    return false;
}

/* ---- input ---- */

static uint8_t in8(struct world *w)
{
    if (!w->left)
        return 0;
    w->left--;
    return *w->ip++;
}

static uint16_t in16(struct world *w)
{
    uint16_t hi = in8(w);
    return (uint16_t)(hi << 8 | in8(w));
}

/* ---- byte patterns: the oracles' source of truth ---- */

/* The byte N's application pushes at stream offset @o. */
static uint8_t app_byte(uint32_t o)
{
    return (uint8_t)(o * 7u + (o >> 8) * 13u + 0x5au);
}

/* The byte P sends at sequence number @seq. */
static uint8_t peer_byte(uint32_t seq)
{
    return (uint8_t)((seq * 31u) ^ (seq >> 11) ^ 0xa5u);
}

/* ---- checksums (independent of the stack's) ---- */

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t sum16(const uint8_t *p, uint32_t len, uint32_t s)
{
    uint64_t acc = s;
    for (uint32_t i = 0; i + 1 < len; i += 2)
        acc += rd16(p + i);
    if (len & 1)
        acc += (uint32_t)p[len - 1] << 8;
    while (acc >> 16)
        acc = (acc & 0xffff) + (acc >> 16);
    return (uint32_t)acc;
}

/* True when the one's-complement sum (with the pseudo-header if @ip) is
 * all ones: the checksum in the bytes is right. */
static bool csum_ok(const uint8_t *ip, uint8_t proto, const uint8_t *l4, uint32_t l4len)
{
    uint32_t s = 0;
    if (ip) {
        s = sum16(ip + 12, 8, 0);
        s += proto;
        s += l4len;
    }
    return sum16(l4, l4len, s) == 0xffff;
}

/* ---- the slots ---- */

static struct slot *slot_find(struct world *w, uint16_t pport, uint16_t nport)
{
    for (int i = 0; i < MAX_SLOTS; i++)
        if (w->slot[i].used && w->slot[i].pport == pport && w->slot[i].nport == nport)
            return &w->slot[i];
    return NULL;
}

static struct slot *slot_get(struct world *w, uint16_t pport, uint16_t nport)
{
    struct slot *s = slot_find(w, pport, nport);
    if (s)
        return s;
    for (int i = 0; i < MAX_SLOTS; i++) {
        if (!w->slot[i].used) {
            s = &w->slot[i];
            memset(s, 0, sizeof(*s));
            s->used = true;
            s->pport = pport;
            s->nport = nport;
            s->peer_iss = 0x10000000u * (uint32_t)(i + 1) + 0x01234567u;
            s->peer_nxt = s->peer_iss;
            return s;
        }
    }
    return NULL;
}

/* The @k-th slot in use (modulo their number), or NULL. */
static struct slot *slot_pick(struct world *w, uint8_t k)
{
    int n = 0;
    for (int i = 0; i < MAX_SLOTS; i++)
        n += w->slot[i].used;
    if (!n)
        return NULL;
    int want = k % n;
    for (int i = 0; i < MAX_SLOTS; i++)
        if (w->slot[i].used && want-- == 0)
            return &w->slot[i];
    return NULL;
}

/* ---- injecting frames ---- */

static void settle(struct world *w);

static void inject(struct world *w, const uint8_t *f, uint32_t len)
{
    int e = simnet_inject(w->net, w->dev, f, len);
    if (e && e != ENOMEM && e != ENOBUFS)
        FAIL("simnet_inject: %s", strerror(e));
    settle(w);
}

static uint32_t eth_ip(uint8_t *f, const uint8_t *src_mac, uint32_t src, uint32_t dst, uint8_t proto, uint32_t l4len,
                       uint16_t id, uint16_t frag)
{
    memcpy(f, n_mac, 6);
    memcpy(f + 6, src_mac, 6);
    wr16(f + 12, 0x0800);
    uint8_t *ip = f + ETH_HDR_LEN;
    memset(ip, 0, 20);
    ip[0] = 0x45;
    wr16(ip + 2, (uint16_t)(20 + l4len));
    wr16(ip + 4, id);
    wr16(ip + 6, frag);
    ip[8] = 64;
    ip[9] = proto;
    memcpy(ip + 12, &src, 4);
    memcpy(ip + 16, &dst, 4);
    wr16(ip + 10, (uint16_t)~sum16(ip, 20, 0));
    return ETH_HDR_LEN + 20 + l4len;
}

static void fix_l4(uint8_t *f, uint32_t len)
{
    craft_fix_l4(f, len);
}

struct tcpseg {
    uint16_t sport, dport;
    uint32_t seq, ack;
    uint8_t flags;
    uint16_t win;
    uint8_t opt[40];
    uint32_t olen;
    uint32_t dlen;
};

/* A TCP segment from P with P's pattern as payload. */
static void send_tcp(struct world *w, const struct tcpseg *s)
{
    uint32_t olen = (s->olen + 3) / 4 * 4;
    uint32_t hlen = 20 + olen;
    uint32_t dlen = s->dlen;
    if (hlen + dlen > 1500 - 20)
        dlen = 1500 - 20 - hlen;
    uint8_t *f = w->frame;
    uint8_t *t = f + ETH_HDR_LEN + 20;
    memset(t, 0, hlen);
    wr16(t, s->sport);
    wr16(t + 2, s->dport);
    wr32(t + 4, s->seq);
    wr32(t + 8, s->ack);
    t[12] = (uint8_t)((hlen / 4) << 4);
    t[13] = s->flags;
    wr16(t + 14, s->win);
    memcpy(t + 20, s->opt, s->olen);
    uint32_t dseq = s->seq + ((s->flags & TH_SYN) ? 1 : 0);
    for (uint32_t i = 0; i < dlen; i++)
        t[hlen + i] = peer_byte(dseq + i);
    uint32_t len = eth_ip(f, p_mac, w->p_ip, w->n_ip, IPPROTO_TCP, hlen + dlen, 0, 0x4000);
    fix_l4(f, len);
    struct slot *sl = slot_find(w, s->sport, s->dport);
    if (sl)
        sl->peer_sent = true;
    if (sl && (s->flags & TH_ACK) && !(s->flags & TH_RST)) {
        sl->peer_ack_ok = true;
        sl->peer_ack = s->ack;
        sl->peer_win = s->win;
    }
    inject(w, f, len);
}

static void opt_add(struct tcpseg *s, const uint8_t *b, uint32_t n)
{
    if (s->olen + n <= sizeof(s->opt)) {
        memcpy(s->opt + s->olen, b, n);
        s->olen += n;
    }
}

/* SYN options: bit 0 MSS, 1 window scale, 2 SACK permitted, 3 timestamps. */
static void syn_opts(struct world *w, struct tcpseg *s, unsigned which, uint16_t mss, uint32_t tsecr)
{
    if (which & 1) {
        uint8_t o[4] = {2, 4, (uint8_t)(mss >> 8), (uint8_t)mss};
        opt_add(s, o, 4);
    }
    if (which & 2) {
        uint8_t o[4] = {1, 3, 3, 7};
        opt_add(s, o, 4);
    }
    if (which & 4) {
        uint8_t o[4] = {1, 1, 4, 2};
        opt_add(s, o, 4);
    }
    if (which & 8) {
        uint8_t o[12] = {1, 1, 8, 10};
        wr32(o + 4, (uint32_t)(w->now / MSEC) + 1);
        wr32(o + 8, tsecr);
        opt_add(s, o, 12);
    }
}

/* ---- the tap: every frame N transmits ---- */

static void arp_reply(struct world *w, uint32_t tpa)
{
    const uint8_t *mac = tpa == w->p_ip ? p_mac : NULL;
    if (!mac || !w->auto_arp)
        return;
    uint8_t f[64];
    uint32_t len = craft_arp(f, mac, n_mac, 2, mac, tpa, n_mac, w->n_ip);
    int e = simnet_inject(w->net, w->dev, f, len);
    if (e && e != ENOMEM && e != ENOBUFS)
        FAIL("simnet_inject: %s", strerror(e));
}

static void check_tcp(struct world *w, const uint8_t *ip, const uint8_t *t, uint32_t l4len)
{
    if (l4len < 20)
        FAIL("TCP segment of %u bytes", l4len);
    uint32_t hlen = (uint32_t)(t[12] >> 4) * 4;
    if (hlen < 20 || hlen > l4len)
        FAIL("TCP header length %u in a segment of %u", hlen, l4len);
    if (!csum_ok(ip, IPPROTO_TCP, t, l4len))
        FAIL("bad TCP checksum");
    uint8_t fl = t[13];
    if ((fl & TH_SYN) && (fl & TH_RST))
        FAIL("SYN and RST in one segment");
    uint32_t tsval = 0;
    bool has_ts = false;
    for (uint32_t i = 20; i < hlen;) {
        uint8_t kind = t[i];
        if (kind == 0)
            break;
        if (kind == 1) {
            i++;
            continue;
        }
        if (i + 1 >= hlen || t[i + 1] < 2 || i + t[i + 1] > hlen)
            FAIL("TCP option %u overruns the header", kind);
        uint8_t ol = t[i + 1];
        bool ok = (kind == 2 && ol == 4 && (fl & TH_SYN)) || (kind == 3 && ol == 3 && (fl & TH_SYN)) ||
                  (kind == 4 && ol == 2 && (fl & TH_SYN)) || (kind == 5 && ol >= 10 && ol <= 34 && (ol - 2) % 8 == 0) ||
                  (kind == 8 && ol == 10);
        if (!ok)
            FAIL("TCP option kind %u length %u (flags %#x)", kind, ol, fl);
        if (kind == 8) {
            has_ts = true;
            tsval = rd32(t + i + 2);
        }
        i += ol;
    }
    uint32_t dst;
    memcpy(&dst, ip + 16, 4);
    if (dst != w->p_ip)
        return;
    uint16_t sport = rd16(t), dport = rd16(t + 2);
    uint32_t seq = rd32(t + 4), ack = rd32(t + 8), dlen = l4len - hlen;
    struct slot *s = slot_get(w, dport, sport);
    if (!s)
        return;
    uint32_t seglen = dlen + ((fl & TH_SYN) ? 1 : 0) + ((fl & TH_FIN) ? 1 : 0);
    if (trace)
        fprintf(stderr, "fuzz_stack: N sends %u -> %u flags %#x seq +%u ack %u len %u\n", sport, dport, fl,
                seq - s->node_iss, ack, dlen);
    if (fl & TH_SYN) {
        /* A new incarnation (or its SYN again, before any push): what the
         * application pushed on an earlier one, which may have had the
         * same ISS (the ISS clock does not move in virtual time), is not
         * this one's. */
        s->pushed_ok = false;
        s->node_syn = true;
        s->node_iss = seq;
        s->node_max = seq + seglen;
    } else if (s->node_syn && !(fl & TH_RST) && seq_gt(seq + seglen, s->node_max)) {
        s->node_max = seq + seglen;
    }
    s->node_last = seq;
    if ((fl & TH_ACK) && s->peer_sent && !w->tainted && seq_gt(ack, s->peer_nxt))
        FAIL("TCP %u -> %u acknowledges %u, beyond the %u P ever sent", sport, dport, ack, s->peer_nxt);
    if (fl & TH_ACK) {
        s->node_ack_ok = true;
        s->node_ack = ack;
    }
    if (has_ts)
        s->node_tsval = tsval;
    uint32_t dseq = seq + ((fl & TH_SYN) ? 1 : 0);
    if ((fl & TH_FIN) && !(fl & TH_RST) && s->node_syn) {
        /* The FIN follows exactly the bytes pushed: none lost, none added. */
        bool pushed = s->pushed_ok && s->pushed_iss == s->node_iss;
        uint32_t want = pushed ? s->pushed_end : s->node_iss + 1;
        if (dseq + dlen != want)
            FAIL("TCP %u -> %u: FIN at seq %u, after %d bytes; the application pushed %u", sport, dport, dseq + dlen,
                 (int32_t)(dseq + dlen - s->node_iss - 1), want - s->node_iss - 1);
    }
    if (!s->node_syn || !dlen || (fl & TH_RST))
        return;
    for (uint32_t i = 0; i < dlen; i++) {
        int32_t o = (int32_t)(dseq + i - (s->node_iss + 1));
        if (o < 0)
            continue; /* a keep-alive's garbage byte may sit before the stream */
        if (t[hlen + i] != app_byte((uint32_t)o))
            FAIL("TCP %u -> %u: byte at stream offset %d is %#x, the application pushed %#x", sport, dport, o,
                 t[hlen + i], app_byte((uint32_t)o));
    }
    if (s->pushed_ok && s->pushed_iss == s->node_iss && seq_gt(dseq + dlen, s->pushed_end))
        FAIL("TCP %u -> %u: sends up to seq %u, beyond the %u bytes pushed", sport, dport, dseq + dlen,
             s->pushed_end - s->node_iss - 1);
}

static void check_frame(struct world *w, const uint8_t *f, uint32_t len)
{
    if (len < ETH_HDR_LEN)
        FAIL("a frame of %u bytes", len);
    if (memcmp(f + 6, n_mac, 6) != 0)
        FAIL("a frame not from N's MAC");
    uint16_t type = rd16(f + 12);
    if (type == 0x0806) {
        const uint8_t *a = f + ETH_HDR_LEN;
        if (len < ETH_HDR_LEN + 28)
            FAIL("ARP frame of %u bytes", len);
        if (rd16(a) != 1 || rd16(a + 2) != 0x0800 || a[4] != 6 || a[5] != 4)
            FAIL("ARP header wrong");
        uint16_t op = rd16(a + 6);
        uint32_t spa, tpa;
        memcpy(&spa, a + 14, 4);
        memcpy(&tpa, a + 24, 4);
        if ((op != 1 && op != 2) || memcmp(a + 8, n_mac, 6) != 0 || spa != w->n_ip)
            FAIL("ARP op %u from the wrong sender", op);
        if (op == 1)
            arp_reply(w, tpa);
        return;
    }
    if (type != 0x0800)
        FAIL("a frame of EtherType %#x", type);
    const uint8_t *ip = f + ETH_HDR_LEN;
    if (len < ETH_HDR_LEN + 20)
        FAIL("IPv4 frame of %u bytes", len);
    uint32_t ihl = (uint32_t)(ip[0] & 0xf) * 4, tot = rd16(ip + 2);
    if ((ip[0] >> 4) != 4 || ihl < 20 || tot < ihl || ETH_HDR_LEN + tot > len)
        FAIL("IPv4 header: version %u, IHL %u, total length %u in a frame of %u", ip[0] >> 4, ihl, tot, len);
    if (tot > w->mtu)
        FAIL("IPv4 packet of %u bytes over the MTU of %u", tot, w->mtu);
    if (len > ETH_HDR_LEN + tot && len > 60)
        FAIL("frame of %u bytes carries an IPv4 packet of %u", len, tot);
    if (!csum_ok(NULL, 0, ip, ihl))
        FAIL("bad IPv4 header checksum");
    uint32_t src, dst;
    memcpy(&src, ip + 12, 4);
    memcpy(&dst, ip + 16, 4);
    if (src != w->n_ip || dst == w->n_ip || dst == 0 || ip[8] == 0)
        FAIL("IPv4 addresses or TTL wrong");
    uint16_t frag = rd16(ip + 6);
    const uint8_t *l4 = ip + ihl;
    uint32_t l4len = tot - ihl;
    if (frag & (IP_MF | IP_OFFMASK)) {
        if (ip[9] == IPPROTO_TCP)
            FAIL("a fragmented TCP segment");
        if ((frag & IP_MF) && (l4len % 8))
            FAIL("a fragment of %u bytes, not a multiple of 8, with more to come", l4len);
        if ((uint32_t)(frag & IP_OFFMASK) * 8 + l4len > 65535 - 20)
            FAIL("a fragment beyond 64 KiB");
        return;
    }
    switch (ip[9]) {
    case IPPROTO_TCP:
        check_tcp(w, ip, l4, l4len);
        break;
    case IPPROTO_UDP:
        if (l4len < 8 || rd16(l4 + 4) != l4len)
            FAIL("UDP length %u in %u bytes", l4len >= 8 ? rd16(l4 + 4) : 0, l4len);
        if (rd16(l4 + 6) && !csum_ok(ip, IPPROTO_UDP, l4, l4len))
            FAIL("bad UDP checksum");
        break;
    case IPPROTO_ICMP:
        if (l4len < 8 || !csum_ok(NULL, 0, l4, l4len))
            FAIL("bad ICMP message");
        break;
    default:
        FAIL("IPv4 protocol %u", ip[9]);
    }
}

static int tap(void *arg, struct netdev *from, const uint8_t *frame, uint32_t len)
{
    struct world *w = arg;
    if (from == w->dev)
        check_frame(w, frame, len);
    return 1; /* nobody else is on the wire */
}

/* ---- the application ---- */

static int sock_add(struct world *w, void *q, int type)
{
    for (int i = 0; i < MAX_SOCKS; i++) {
        if (!w->sock[i].q) {
            w->sock[i] = (struct fsock){q, type, 0};
            return i;
        }
    }
    return -1;
}

static struct fsock *sock_pick(struct world *w, uint8_t k)
{
    int n = 0;
    for (int i = 0; i < MAX_SOCKS; i++)
        n += w->sock[i].q != NULL;
    if (!n)
        return NULL;
    int want = k % n;
    for (int i = 0; i < MAX_SOCKS; i++)
        if (w->sock[i].q && want-- == 0)
            return &w->sock[i];
    return NULL;
}

static void app_close(struct world *w, struct fsock *fs)
{
    struct inet_sock *s = fs->q;
    if (avoid_known && s->type == SOCK_STREAM && s->state == SS_CONN && s->pcb && s->pcb->sq_cap == 0)
        s->opts.linger = 0;
    int e = inet_close(w->in, fs->q);
    if (e)
        FAIL("close: %s", strerror(e));
    fs->q = NULL;
}

static struct sched_task *task_new(struct world *w)
{
    struct sched_task *t = sched_alloc(&w->rt->sched, NULL, NULL);
    if (!t)
        FAIL("sched_alloc failed");
    t->qd = 0;
    return t;
}

/* The harness tracks at most MAX_TASKS operations: an input that keeps more
 * outstanding (pops never answered, say) has its further operations
 * skipped, which is a limit of the harness, not a finding. */
static bool tasks_full(const struct world *w)
{
    return w->ntask == MAX_TASKS;
}

/* Keeps a task the libOS took (@e == 0), or frees it. */
static void task_track(struct world *w, struct sched_task *t, int e, void *q, int kind)
{
    if (e) {
        sched_free(&w->rt->sched, t);
        return;
    }
    if (w->ntask == MAX_TASKS)
        FAIL("more than %d operations outstanding", MAX_TASKS);
    w->task[w->ntask++] = (struct ftask){t, q, kind};
}

static struct fsock *sock_of(struct world *w, void *q)
{
    for (int i = 0; i < MAX_SOCKS; i++)
        if (w->sock[i].q == q)
            return &w->sock[i];
    return NULL;
}

static void got_pop(struct world *w, struct ftask *ft, demi_qresult_t *qr)
{
    demi_sgarray_t *sga = &qr->qr_value.sga;
    struct fsock *fs = sock_of(w, ft->q);
    struct inet_sock *s = ft->q;
    if (fs && s->type == SOCK_STREAM && s->pcb && !w->tainted) {
        /* The bytes are P's pattern, in order: the stream offset of the
         * first one is what the application already popped. */
        uint32_t seq = s->pcb->irs + 1 + (uint32_t)fs->popped;
        for (uint32_t i = 0; i < sga->sga_numsegs; i++) {
            const uint8_t *b = sga->sga_segs[i].sgaseg_buf;
            for (uint32_t k = 0; k < sga->sga_segs[i].sgaseg_len; k++, seq++)
                if (b[k] != peer_byte(seq))
                    FAIL("popped byte for seq %u is %#x, P sent %#x", seq, b[k], peer_byte(seq));
        }
    }
    if (fs && s->type == SOCK_STREAM)
        for (uint32_t i = 0; i < sga->sga_numsegs; i++)
            fs->popped += sga->sga_segs[i].sgaseg_len;
    int e = mem_sga_free(w->rt->heap, sga);
    if (e)
        FAIL("freeing a popped array: %s", strerror(e));
}

static void got_accept(struct world *w, demi_qresult_t *qr)
{
    struct qentry *e = qtable_get(&w->rt->qtable, qr->qr_value.ares.qd);
    if (!e)
        FAIL("accept gave qd %d, not in the table", qr->qr_value.ares.qd);
    void *q = e->q;
    qtable_free(&w->rt->qtable, qr->qr_value.ares.qd);
    int i = sock_add(w, q, SOCK_STREAM);
    if (i < 0) {
        struct fsock tmp = {q, SOCK_STREAM};
        app_close(w, &tmp);
    }
}

/* Takes the results of every finished operation. */
static void harvest(struct world *w)
{
    for (int i = 0; i < w->ntask;) {
        struct ftask ft = w->task[i];
        if (ft.t->state != TASK_DONE) {
            i++;
            continue;
        }
        w->task[i] = w->task[--w->ntask];
        demi_qresult_t qr;
        sched_harvest(&w->rt->sched, ft.t, &qr);
        if (qr.qr_opcode == DEMI_OPC_FAILED)
            continue;
        switch (ft.kind) {
        case K_POP:
            if (qr.qr_opcode != DEMI_OPC_POP)
                FAIL("a pop completed as opcode %d", qr.qr_opcode);
            got_pop(w, &ft, &qr);
            break;
        case K_ACCEPT:
            if (qr.qr_opcode != DEMI_OPC_ACCEPT)
                FAIL("an accept completed as opcode %d", qr.qr_opcode);
            got_accept(w, &qr);
            break;
        case K_PUSH:
            if (qr.qr_opcode != DEMI_OPC_PUSH)
                FAIL("a push completed as opcode %d", qr.qr_opcode);
            break;
        case K_CONNECT:
            if (qr.qr_opcode != DEMI_OPC_CONNECT)
                FAIL("a connect completed as opcode %d", qr.qr_opcode);
            break;
        }
    }
}

/* ---- running the node ---- */

static uint64_t motion(struct world *w)
{
    const struct sim_stats *ss = simnet_stats(w->dev);
    return w->rt->sched.completions + w->rt->activity + w->rt->timers.fired + w->dev->stats.tx_frames +
           w->dev->stats.rx_frames + ss->sent + ss->delivered;
}

/* Polls N until a pass changes nothing, taking results as they come;
 * virtual time stands still. */
static void settle(struct world *w)
{
    for (int round = 0;; round++) {
        if (round == MAX_ROUNDS)
            FAIL("the stack is still busy after %d passes at one instant", MAX_ROUNDS);
        uint64_t before = motion(w);
        clock_set(&w->rt->clock, w->now);
        rt_poll(w->rt);
        simnet_advance(w->net, w->now);
        harvest(w);
        if (motion(w) == before)
            return;
    }
}

/* Runs N's timers up to @until, jumping from one expiry to the next. */
static void run_until(struct world *w, uint64_t until)
{
    for (;;) {
        settle(w);
        uint64_t next = timer_next(&w->rt->timers);
        if (next <= w->now)
            next = w->now + 1; /* a timer hint is a lower bound */
        if (next > until) {
            w->now = until;
            settle(w);
            return;
        }
        if (++w->events > MAX_EVENTS)
            FAIL("more than %d timer events in one input", MAX_EVENTS);
        w->now = next;
    }
}

/* ---- ops ---- */

/* A TCP segment from P on a known connection:
 * [slot][flags][mode][seq offset:2][ack offset:2][window][length] then the
 * option bytes mode asks for. mode bit 0: sequence number relative to the
 * last ACK N sent (else P's next); bit 1: acknowledgment relative to the
 * start of N's last segment (else the highest sequence number N sent);
 * flags bit 6 (ECE, never sent): relative to P's own last acknowledgment;
 * bit 2: MSS, bit 3: window scale, bit 4: SACK permitted, bit 5:
 * timestamps, bit 6: SACK blocks ([count][start, length] * count, in units
 * of 64 bytes from the ACK), bit 7: raw option bytes ([n] then n). */
static void op_tcp(struct world *w)
{
    struct slot *s = slot_pick(w, in8(w));
    uint8_t flags = in8(w), mode = in8(w);
    int16_t so = (int16_t)in16(w), ao = (int16_t)in16(w);
    uint8_t wb = in8(w), lb = in8(w);
    if (!s)
        return;
    struct tcpseg g;
    memset(&g, 0, sizeof(g));
    g.sport = s->pport;
    g.dport = s->nport;
    uint32_t sbase = (mode & 1) && s->node_ack_ok ? s->node_ack : s->peer_nxt;
    uint32_t abase = (mode & 2) ? s->node_last : s->node_max;
    if ((flags & 0x40) && s->peer_ack_ok)
        abase = s->peer_ack;
    g.seq = sbase + (uint32_t)(int32_t)so;
    g.ack = abase + (uint32_t)(int32_t)ao;
    g.flags = flags & (uint8_t)~0x40;
    g.win = (uint16_t)(wb * 257u);
    g.dlen = lb <= 128 ? lb : (uint32_t)(lb - 128) * 12;
    unsigned syn = ((mode >> 2) & 1) | ((mode >> 2) & 2) | ((mode >> 2) & 4) | ((mode >> 2) & 8);
    syn_opts(w, &g, syn, 1460, s->node_tsval);
    if (mode & 0x40) {
        uint8_t n = (uint8_t)(1 + in8(w) % 4);
        uint8_t o[36] = {1, 1, 5, (uint8_t)(2 + 8 * n)};
        for (uint8_t i = 0; i < n; i++) {
            uint32_t start = g.ack + 64u * in8(w);
            uint32_t end = start + 64u * (1u + in8(w));
            wr32(o + 4 + 8 * i, start);
            wr32(o + 8 + 8 * i, end);
        }
        opt_add(&g, o, 4 + 8u * n);
    }
    if (mode & 0x80) {
        uint8_t n = in8(w) % 41, o[40];
        for (uint8_t i = 0; i < n; i++)
            o[i] = in8(w);
        if (g.olen + n > 40)
            n = (uint8_t)(40 - g.olen);
        opt_add(&g, o, n);
    }
    if (!(flags & TH_RST)) {
        uint32_t end = g.seq + g.dlen + ((flags & TH_SYN) ? 1 : 0) + ((flags & TH_FIN) ? 1 : 0);
        if (seq_gt(end, s->peer_nxt))
            s->peer_nxt = end;
    }
    send_tcp(w, &g);
}

/* Duplicate ACKs from P, as after a loss: [slot][count][sack]. Each
 * repeats P's last acknowledgment and window; with sack bit 0 each carries
 * a SACK block above it that grows by (sack >> 1) * 16 bytes per ACK, from
 * an offset of (sack >> 4) * 128, as a receiver reports later segments. */
static void op_dupack(struct world *w)
{
    struct slot *s = slot_pick(w, in8(w));
    uint8_t n = in8(w), sk = in8(w);
    if (!s || !s->peer_ack_ok)
        return;
    for (uint32_t i = 0; i < 1u + n % 8; i++) {
        struct tcpseg g;
        memset(&g, 0, sizeof(g));
        g.sport = s->pport;
        g.dport = s->nport;
        g.seq = s->peer_nxt;
        g.ack = s->peer_ack;
        g.flags = TH_ACK;
        g.win = s->peer_win;
        if (sk & 1) {
            uint8_t o[12] = {1, 1, 5, 10};
            uint32_t start = g.ack + 128u * (sk >> 4) + 1;
            wr32(o + 4, start);
            wr32(o + 8, start + 16u * (1u + (sk >> 1 & 7)) * (i + 1));
            opt_add(&g, o, 12);
        }
        send_tcp(w, &g);
    }
}

/* A new connection attempt from P: [port][options]. */
static void op_syn(struct world *w)
{
    uint8_t pb = in8(w), ob = in8(w);
    struct slot *s = slot_get(w, (uint16_t)(PPORT0 + 1 + pb), (pb & 0x80) ? LPORT2 : LPORT);
    if (!s)
        return;
    struct tcpseg g;
    memset(&g, 0, sizeof(g));
    g.sport = s->pport;
    g.dport = s->nport;
    g.seq = s->peer_nxt;
    g.flags = TH_SYN;
    g.win = 65535;
    syn_opts(w, &g, ob & 15, (ob & 16) ? 536 : 1460, 0);
    s->peer_nxt = g.seq + 1;
    send_tcp(w, &g);
}

/* A raw frame: [mode][length:2][bytes]. mode & 3: 0 the bytes are the
 * frame; 1 an Ethernet header (N <- P, IPv4) goes first; 2 the same, and
 * the IPv4 total length and checksum and the L4 checksum are made right;
 * 3 an Ethernet header for ARP goes first. */
static void op_raw(struct world *w)
{
    uint8_t mode = in8(w);
    uint32_t n = in16(w) % 1600;
    if (n > w->left)
        n = (uint32_t)w->left;
    uint8_t *f = w->frame;
    uint32_t at = 0;
    if (mode & 3) {
        memcpy(f, n_mac, 6);
        memcpy(f + 6, p_mac, 6);
        wr16(f + 12, (mode & 3) == 3 ? 0x0806 : 0x0800);
        at = ETH_HDR_LEN;
    }
    memcpy(f + at, w->ip, n);
    w->ip += n;
    w->left -= n;
    uint32_t len = at + n;
    if ((mode & 3) == 2 && n >= 20) {
        uint8_t *ip = f + ETH_HDR_LEN;
        uint32_t ihl = (uint32_t)(ip[0] & 0xf) * 4;
        if (ihl >= 20 && ihl <= n) {
            wr16(ip + 2, (uint16_t)n);
            wr16(ip + 10, 0);
            wr16(ip + 10, (uint16_t)~sum16(ip, ihl, 0));
            fix_l4(f, len);
        }
    }
    /* Bytes the pattern does not know may now be in a TCP stream. */
    if (len >= ETH_HDR_LEN + 20 && rd16(f + 12) == 0x0800 &&
        (f[ETH_HDR_LEN + 9] == IPPROTO_TCP || (rd16(f + ETH_HDR_LEN + 6) & (IP_MF | IP_OFFMASK))))
        w->tainted = true;
    inject(w, f, len);
}

/* An IPv4 datagram in fragments: [kind][size][unit][order][id].
 * kind % 3: UDP to port 53 (54 if bit 2), an ICMP echo request, or P's
 * next bytes on a connection (slot from bits 4-7). */
static void op_frag(struct world *w)
{
    uint8_t kind = in8(w), size = in8(w), unit_b = in8(w), order = in8(w), id = in8(w);
    static uint8_t dg[8 + 255 * 32 + 64];
    uint32_t dlen = 8 + (uint32_t)size * 32, l4len = 0;
    uint8_t proto;
    uint8_t pseudo[20];
    memset(pseudo, 0, sizeof(pseudo));
    memcpy(pseudo + 12, &w->p_ip, 4);
    memcpy(pseudo + 16, &w->n_ip, 4);
    switch (kind % 3) {
    case 0:
        proto = IPPROTO_UDP;
        l4len = dlen;
        wr16(dg, 5353);
        wr16(dg + 2, (kind & 4) ? UPORT + 1 : UPORT);
        wr16(dg + 4, (uint16_t)l4len);
        wr16(dg + 6, 0);
        for (uint32_t i = 8; i < l4len; i++)
            dg[i] = (uint8_t)(i * 3);
        wr16(dg + 6, (uint16_t)~sum16(dg, l4len, sum16(pseudo + 12, 8, 0) + IPPROTO_UDP + l4len));
        break;
    case 1:
        proto = IPPROTO_ICMP;
        l4len = dlen;
        memset(dg, 0, 8);
        dg[0] = 8;
        wr16(dg + 4, 0x77);
        for (uint32_t i = 8; i < l4len; i++)
            dg[i] = (uint8_t)(i * 5);
        wr16(dg + 2, (uint16_t)~sum16(dg, l4len, 0));
        break;
    default: {
        struct slot *s = slot_pick(w, (uint8_t)(kind >> 4));
        if (!s)
            return;
        proto = IPPROTO_TCP;
        uint32_t plen = dlen - 8;
        l4len = 20 + plen;
        memset(dg, 0, 20);
        wr16(dg, s->pport);
        wr16(dg + 2, s->nport);
        wr32(dg + 4, s->peer_nxt);
        wr32(dg + 8, s->node_max);
        dg[12] = 5 << 4;
        dg[13] = TH_ACK;
        wr16(dg + 14, 65535);
        for (uint32_t i = 0; i < plen; i++)
            dg[20 + i] = peer_byte(s->peer_nxt + i);
        wr16(dg + 16, (uint16_t)~sum16(dg, l4len, sum16(pseudo + 12, 8, 0) + IPPROTO_TCP + l4len));
        s->peer_nxt += plen;
        s->peer_sent = true;
        break;
    }
    }
    uint32_t unit = ((unit_b % 64) + 1) * 8;
    uint32_t npieces = (l4len + unit - 1) / unit;
    for (uint32_t k = 0; k < npieces; k++) {
        uint32_t i = (order & 1) ? npieces - 1 - k : k;
        if ((order & 2) && i == (uint32_t)(order >> 4) % npieces)
            continue; /* lost */
        uint32_t off = i * unit, n = MIN(unit, l4len - off);
        if ((order & 8) && i > 0) {
            off -= 8; /* overlaps the piece before with the same bytes */
            n += 8;
        }
        bool more = off + n < l4len;
        uint8_t *f = w->frame;
        memcpy(f + ETH_HDR_LEN + 20, dg + off, n);
        uint32_t len = eth_ip(f, p_mac, w->p_ip, w->n_ip, proto, n, (uint16_t)(0x4400 + id),
                              (uint16_t)((more ? IP_MF : 0) | (off / 8)));
        inject(w, f, len);
        if ((order & 4) && k == 0)
            inject(w, f, len); /* a duplicate */
    }
}

/* A UDP datagram from P: [port][flags][length]. flags bit 0: to port 54
 * (closed); bit 1: to the broadcast address; bit 2: checksum 0; bit 3: a
 * wrong checksum; bit 4: from Q. */
static void op_udp(struct world *w)
{
    uint8_t pb = in8(w), fl = in8(w), lb = in8(w);
    uint8_t *f = w->frame;
    uint32_t dlen = (uint32_t)lb * 5;
    uint8_t *u = f + ETH_HDR_LEN + 20;
    wr16(u, (uint16_t)(1000 + pb));
    wr16(u + 2, (fl & 1) ? UPORT + 1 : UPORT);
    wr16(u + 4, (uint16_t)(8 + dlen));
    wr16(u + 6, 0);
    for (uint32_t i = 0; i < dlen; i++)
        u[8 + i] = (uint8_t)(i + pb);
    uint32_t dst = (fl & 2) ? 0xffffffffu : w->n_ip;
    uint32_t len = eth_ip(f, (fl & 16) ? q_mac : p_mac, (fl & 16) ? w->q_ip : w->p_ip, dst, IPPROTO_UDP, 8 + dlen,
                          (uint16_t)(pb * 7), 0x4000);
    if (fl & 2)
        memcpy(f, bcast, 6);
    if (!(fl & 4))
        fix_l4(f, len);
    if (fl & 8)
        u[6] ^= 0x5a;
    inject(w, f, len);
}

/* An ICMP message from P: [type][code][length]. */
static void op_icmp(struct world *w)
{
    uint8_t type = in8(w), code = in8(w), lb = in8(w);
    uint8_t *f = w->frame;
    uint32_t dlen = (uint32_t)lb * 6;
    uint8_t *m = f + ETH_HDR_LEN + 20;
    memset(m, 0, 8);
    m[0] = (type & 0x80) ? type & 0x7f : 8;
    m[1] = (type & 0x80) ? code : 0;
    wr16(m + 4, code);
    for (uint32_t i = 0; i < dlen; i++)
        m[8 + i] = (uint8_t)(i ^ code);
    uint32_t len = eth_ip(f, p_mac, w->p_ip, w->n_ip, IPPROTO_ICMP, 8 + dlen, (uint16_t)(lb + 1), 0x4000);
    fix_l4(f, len);
    inject(w, f, len);
}

/* An ARP packet: [op][sender][target][who]. */
static void op_arp(struct world *w)
{
    uint8_t ob = in8(w), sb = in8(w), tb = in8(w), mb = in8(w);
    uint32_t addrs[5] = {w->p_ip, w->q_ip, w->n_ip, 0, htonl(0x0a000004u + (sb >> 4))};
    const uint8_t *macs[4] = {p_mac, q_mac, n_mac, bcast};
    uint8_t mac[6] = {0x02, 0, 0, 0, mb, (uint8_t)(mb >> 2)};
    const uint8_t *sha = (mb & 4) ? mac : macs[mb & 3];
    uint16_t op = (ob & 0x80) ? ob & 0x7f : 1 + (ob & 1);
    uint8_t f[64];
    uint32_t len = craft_arp(f, sha, (ob & 2) ? n_mac : bcast, op, sha, addrs[sb % 5], (ob & 4) ? n_mac : bcast,
                             addrs[tb % 5]);
    inject(w, f, len);
}

/* Virtual time moves on: [t], from 1 us to ~4.8 hours, log-spaced. */
static void op_time(struct world *w)
{
    uint8_t b = in8(w);
    uint64_t dt = (uint64_t)((b & 7) + 1) * USEC << (b >> 3);
    run_until(w, w->now + dt);
}

/* The application pushes: [socket][length][segments]. TCP bytes follow
 * the stream pattern; UDP goes to P's port 9000 + (length & 7) (Q if
 * bit 7 of segments). */
static void op_push(struct world *w)
{
    struct fsock *fs = sock_pick(w, in8(w));
    uint8_t lb = in8(w), sb = in8(w);
    if (!fs || tasks_full(w))
        return;
    size_t len = lb < 128 ? (size_t)lb + 1 : (size_t)(lb - 127) * 512;
    struct inet_sock *s = fs->q;
    uint32_t o0 = 0;
    if (s->type == SOCK_STREAM && s->state == SS_CONN && s->pcb)
        o0 = s->pcb->snd_end - s->pcb->iss - 1;
    demi_sgarray_t sga;
    if (mem_sga_alloc(w->rt->heap, len, &sga))
        return; /* the heap is full: the application waits */
    uint8_t *b = sga.sga_segs[0].sgaseg_buf;
    for (size_t i = 0; i < len; i++)
        b[i] = app_byte(o0 + (uint32_t)i);
    /* Up to three segments over the one block. */
    uint32_t nseg = 1 + sb % 3;
    if (len >= nseg) {
        uint32_t part = (uint32_t)len / nseg;
        for (uint32_t i = 0; i < nseg; i++) {
            sga.sga_segs[i].sgaseg_buf = b + i * part;
            sga.sga_segs[i].sgaseg_len = i + 1 == nseg ? (uint32_t)len - i * part : part;
        }
        sga.sga_numsegs = nseg;
    }
    struct sched_task *t = task_new(w);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)(CPORT + (lb & 7)))};
    to.sin_addr.s_addr = (sb & 0x80) ? w->q_ip : w->p_ip;
    /* The push may transmit before it returns: the tap must know first. */
    struct slot *sl = NULL;
    /* Only a connection that takes data: a reset one's push fails, and
     * its 4-tuple and ISS may already belong to a new incarnation. */
    if (s->type == SOCK_STREAM && s->state == SS_CONN && s->pcb && !s->pcb->err &&
        (s->pcb->state == TCPS_ESTABLISHED || s->pcb->state == TCPS_CLOSE_WAIT)) {
        sl = slot_find(w, s->pcb->rport, s->pcb->lport);
        if (sl) {
            sl->pushed_ok = true;
            sl->pushed_iss = s->pcb->iss;
            sl->pushed_end = s->pcb->snd_end + (uint32_t)len;
        }
    }
    int e = inet_push(w->in, fs->q, &sga, s->type == SOCK_DGRAM ? &to : NULL, t);
    task_track(w, t, e, fs->q, K_PUSH);
    if (sl && s->pcb)
        sl->pushed_end = s->pcb->snd_end;
    /* The application may free the array once the push is posted. */
    if (mem_sga_free(w->rt->heap, &sga))
        FAIL("freeing a pushed array");
    settle(w);
}

static void op_pop(struct world *w)
{
    struct fsock *fs = sock_pick(w, in8(w));
    if (!fs || tasks_full(w))
        return;
    struct sched_task *t = task_new(w);
    int e = inet_pop(w->in, fs->q, t);
    task_track(w, t, e, fs->q, K_POP);
    settle(w);
}

static void op_close(struct world *w)
{
    struct fsock *fs = sock_pick(w, in8(w));
    if (!fs)
        return;
    app_close(w, fs);
    settle(w);
}

static void op_accept(struct world *w)
{
    struct fsock *fs = sock_pick(w, in8(w));
    if (!fs || tasks_full(w))
        return;
    struct sched_task *t = task_new(w);
    int e = inet_accept(w->in, fs->q, t);
    task_track(w, t, e, fs->q, K_ACCEPT);
    settle(w);
}

/* A connect: [target]. bit 3: to Q (no ARP answer); bit 4: on an existing
 * socket (bits 5-7 pick it) instead of a new one. */
static void op_connect(struct world *w)
{
    uint8_t b = in8(w);
    struct inet_sock *q = NULL;
    if (tasks_full(w))
        return;
    if (b & 16) {
        struct fsock *fs = sock_pick(w, (uint8_t)(b >> 5));
        if (!fs)
            return;
        q = fs->q;
    } else {
        if (inet_socket(w->in, SOCK_STREAM, &q))
            return;
        if (sock_add(w, q, SOCK_STREAM) < 0) {
            struct fsock tmp = {q, SOCK_STREAM};
            app_close(w, &tmp);
            return;
        }
    }
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)(CPORT + (b & 7)))};
    to.sin_addr.s_addr = (b & 8) ? w->q_ip : w->p_ip;
    struct sched_task *t = task_new(w);
    int e = inet_connect(w->in, q, &to, t);
    task_track(w, t, e, q, K_CONNECT);
    settle(w);
}

/* A new listener: [port and backlog]. */
static void op_listen(struct world *w)
{
    uint8_t b = in8(w);
    struct inet_sock *q;
    if (inet_socket(w->in, SOCK_STREAM, &q))
        return;
    int i = sock_add(w, q, SOCK_STREAM);
    if (i < 0) {
        struct fsock tmp = {q, SOCK_STREAM};
        app_close(w, &tmp);
        return;
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((b & 1) ? LPORT2 : LPORT)};
    if (inet_bind(w->in, q, &a) == 0)
        (void)inet_listen(w->in, q, 1 + ((b >> 1) & 7));
    settle(w);
}

/* A socket option: [socket][which][value]. */
static void op_sockopt(struct world *w)
{
    struct fsock *fs = sock_pick(w, in8(w));
    uint8_t which = in8(w), v = in8(w);
    if (!fs)
        return;
    int val = v;
    switch (which % 7) {
    case 0: {
        struct linger lg = {v & 1, v >> 1 & 3};
        (void)inet_setsockopt(w->in, fs->q, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        break;
    }
    case 1:
        (void)inet_setsockopt(w->in, fs->q, IPPROTO_TCP, TCP_NODELAY, &val, sizeof(val));
        break;
    case 2:
        val = 1 + v * 1024;
        (void)inet_setsockopt(w->in, fs->q, SOL_SOCKET, SO_RCVBUF, &val, sizeof(val));
        break;
    case 3:
        val = 1 + v * 1024;
        (void)inet_setsockopt(w->in, fs->q, SOL_SOCKET, SO_SNDBUF, &val, sizeof(val));
        break;
    case 4:
        (void)inet_setsockopt(w->in, fs->q, SOL_SOCKET, SO_KEEPALIVE, &val, sizeof(val));
        break;
    case 5:
        val = 1 + v % 8;
        (void)inet_setsockopt(w->in, fs->q, IPPROTO_TCP, TCP_KEEPIDLE, &val, sizeof(val));
        (void)inet_setsockopt(w->in, fs->q, IPPROTO_TCP, TCP_KEEPINTVL, &val, sizeof(val));
        break;
    default:
        val = 1 + v % 4;
        (void)inet_setsockopt(w->in, fs->q, IPPROTO_TCP, TCP_KEEPCNT, &val, sizeof(val));
        break;
    }
    settle(w);
}

static void op_arp_mode(struct world *w)
{
    w->auto_arp = !w->auto_arp;
}

typedef void (*op_fn)(struct world *w);

static const op_fn ops[] = {
    op_tcp, op_tcp,    op_tcp,   op_tcp,    op_time,   op_time,    op_push,     op_pop,  op_close,
    op_syn, op_raw,    op_frag,  op_udp,    op_icmp,   op_arp,     op_accept,   op_listen, op_connect,
    op_sockopt, op_arp_mode, op_dupack,
};

/* ---- setup and the end of the scenario ---- */

static void cfg_tweak(struct world *w, struct inet_config *ic)
{
    static const uint32_t mtus[4] = {1500, 1280, 576, 296};
    static const uint32_t bufs[4] = {64u << 10, 4u << 10, 1u << 20, 16u << 10};
    uint8_t a = w->cfg0, b = w->cfg1;
    ic->tcp_sack = a & 1;
    ic->tcp_timestamps = a & 2;
    ic->tcp_wscale = a & 4;
    ic->tcp_nodelay = a & 8;
    ic->tcp_delack_ns = (a & 16) ? 40 * MSEC : 0;
    ic->tcp_cc = (a & 32) ? INET_CC_NEWRENO : INET_CC_CUBIC;
    ic->tcp_keepalive = a & 64;
    ic->tcp_keepidle_ns = 10 * SEC;
    ic->tcp_keepintvl_ns = 1 * SEC;
    ic->tcp_keepcnt = 3;
    ic->tcp_tlp = a & 128;
    ic->mtu = mtus[b & 3];
    ic->mss = ic->mtu - 40;
    ic->tcp_rcvbuf = bufs[(b >> 2) & 3];
    ic->tcp_sndbuf = bufs[(b >> 4) & 3];
    ic->tcp_rto_min_ns = (b & 64) ? 1 * MSEC : 200 * MSEC;
}

static void world_init(struct world *w, const uint8_t *data, size_t size)
{
    memset(w, 0, sizeof(*w));
    w->ip = data;
    w->left = size;
    w->cfg0 = in8(w);
    w->cfg1 = in8(w);
    w->now = SEC;
    w->n_ip = htonl(0x0a000001u);
    w->p_ip = htonl(0x0a000002u);
    w->q_ip = htonl(0x0a000003u);
    w->auto_arp = true;
    struct simnet_config nc = {.seed = 1, .start_ns = w->now};
    if (simnet_create(&w->net, &nc))
        FAIL("simnet_create");
    /* One runtime for every input: its heap keeps the chunks it mapped
     * (mapping and populating them each time cost ~90% of a run). Nothing
     * else survives an input: the stack, device and network are new, and
     * the end of each input checks that the heap, timers and tasks are
     * back where they started. */
    static struct runtime *rt;
    if (!rt) {
        struct config cfg;
        config_defaults(&cfg);
        cfg.heap_size = (uint64_t)HEAP_MB << 20;
        cfg.hugepages = CONFIG_HUGE_OFF;
        if (rt_create(&rt, &cfg, true))
            FAIL("rt_create");
    }
    w->rt = rt;
    if (rt->timers.armed || rt->sched.live || heap_stats(rt->heap)->bytes_in_use)
        FAIL("the runtime is not empty at the start of an input");
    clock_init_virtual(&rt->clock, w->now);
    rt->now = w->now;
    timer_wheel_init(&rt->timers, w->now);
    rt->activity = 0;
    if (simnet_attach(w->net, w->rt->heap, n_mac, 1500, &w->dev))
        FAIL("simnet_attach");
    struct inet_config ic;
    inetos_config(&ic, &w->rt->cfg);
    ic.addr.s_addr = w->n_ip;
    ic.seed = 7;
    ic.arp_timeout_ns = 100 * MSEC;
    ic.arp_retries = 3;
    ic.arp_ttl_ns = 60 * SEC;
    cfg_tweak(w, &ic);
    w->mtu = ic.mtu;
    big_on = true;
    int e = inet_create(w->rt, w->dev, &ic, &w->in);
    big_on = false;
    if (e)
        FAIL("inet_create: %s", strerror(e));
    inet_set_qowner(w->in, &fuzz_qowner);
    simnet_set_tap(w->net, tap, w);
}

/* The fixed starting state: a UDP socket, a listener, an accepted
 * connection, a connection in SYN_SENT. */
static void world_setup(struct world *w)
{
    struct inet_sock *u, *ls, *c;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(UPORT)};
    if (inet_socket(w->in, SOCK_DGRAM, &u) || inet_bind(w->in, u, &a))
        FAIL("UDP socket");
    sock_add(w, u, SOCK_DGRAM);
    a.sin_port = htons(LPORT);
    if (inet_socket(w->in, SOCK_STREAM, &ls) || inet_bind(w->in, ls, &a) || inet_listen(w->in, ls, 8))
        FAIL("listener");
    sock_add(w, ls, SOCK_STREAM);
    struct sched_task *t = task_new(w);
    if (inet_accept(w->in, ls, t))
        FAIL("accept");
    task_track(w, t, 0, ls, K_ACCEPT);

    /* P's handshake with the options N offers. */
    struct slot *s = slot_get(w, PPORT0, LPORT);
    struct tcpseg g;
    memset(&g, 0, sizeof(g));
    g.sport = PPORT0;
    g.dport = LPORT;
    g.seq = s->peer_nxt;
    g.flags = TH_SYN;
    g.win = 65535;
    unsigned o = 1 | ((w->cfg0 & 4) ? 2 : 0) | ((w->cfg0 & 1) ? 4 : 0) | ((w->cfg0 & 2) ? 8 : 0);
    syn_opts(w, &g, o, (uint16_t)(w->mtu - 40), 0);
    s->peer_nxt++;
    send_tcp(w, &g);
    if (!s->node_syn)
        FAIL("no SYN-ACK from the listener");
    memset(&g, 0, sizeof(g));
    g.sport = PPORT0;
    g.dport = LPORT;
    g.seq = s->peer_nxt;
    g.ack = s->node_max;
    g.flags = TH_ACK;
    g.win = 65535;
    if (w->cfg0 & 2)
        syn_opts(w, &g, 8, 0, s->node_tsval);
    send_tcp(w, &g);
    if (w->ntask != 0)
        FAIL("the handshake's connection was not accepted");

    if (inet_socket(w->in, SOCK_STREAM, &c))
        FAIL("socket");
    sock_add(w, c, SOCK_STREAM);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(CPORT), .sin_addr.s_addr = w->p_ip};
    t = task_new(w);
    if (inet_connect(w->in, c, &to, t))
        FAIL("connect");
    task_track(w, t, 0, c, K_CONNECT);
    settle(w);
    if (!slot_find(w, CPORT, ((struct inet_sock *)c)->lport))
        FAIL("no SYN from the connect");
}

static void describe_leftovers(struct world *w)
{
    static const char *const kinds[] = {"push", "pop", "accept", "connect"};
    for (int i = 0; i < w->ntask; i++)
        fprintf(stderr, "fuzz_stack: left: a %s on a %s socket\n", kinds[w->task[i].kind],
                sock_of(w, w->task[i].q) ? "open" : "closed");
    struct inet *in = w->in;
    for (uint32_t b = 0; b <= in->conns_mask; b++)
        for (struct tcp_pcb *p = in->conns[b]; p; p = p->hnext)
            fprintf(stderr, "fuzz_stack: left: connection %u -> %u state %u snd_una %u snd_nxt %u snd_max %u "
                            "snd_wnd %u sq_n %u rq_bytes %u sock %p\n",
                    p->lport, p->rport, p->state, p->snd_una, p->snd_nxt, p->snd_max, p->snd_wnd, p->sq_n,
                    p->rq_bytes, (void *)p->sock);
}

/* Every connection left is an orphan probing a zero window (finding 3). */
static bool only_known_leftovers(struct world *w)
{
    struct inet *in = w->in;
    for (uint32_t b = 0; b <= in->conns_mask; b++)
        for (struct tcp_pcb *p = in->conns[b]; p; p = p->hnext)
            if (p->sock || p->snd_wnd != 0)
                return false;
    return in->nconns > 0;
}

static void world_end(struct world *w, uint64_t heap0, uint64_t timers0, uint32_t tasks0)
{
    for (int i = 0; i < MAX_SOCKS; i++)
        if (w->sock[i].q)
            app_close(w, &w->sock[i]);
    settle(w);
    uint64_t end = w->now + END_MAX_NS;
    for (;;) {
        /* Known while open: pushes of a closed socket whose connection
         * was dropped without failing them (crash-orphan-*). */
        int known = 0;
        for (int i = 0; avoid_known && i < w->ntask; i++)
            known += w->task[i].kind == K_PUSH && !sock_of(w, w->task[i].q);
        if (w->in->nconns == 0 && w->rt->timers.armed == timers0 && heap_stats(w->rt->heap)->bytes_in_use == heap0 &&
            w->ntask == known && w->rt->sched.live == tasks0 + (uint32_t)known)
            break;
        if (w->now >= end) {
            if (avoid_known && only_known_leftovers(w))
                break; /* destroying the stack frees them; the rest is still checked */
            describe_leftovers(w);
            FAIL("%.0f s after the last close: %u connections, %llu timers (%llu before), %llu heap bytes (%llu "
                 "before), %d operations outstanding, %u tasks (%u before)",
                 (double)END_MAX_NS / SEC, w->in->nconns, (unsigned long long)w->rt->timers.armed,
                 (unsigned long long)timers0, (unsigned long long)heap_stats(w->rt->heap)->bytes_in_use,
                 (unsigned long long)heap0, w->ntask, w->rt->sched.live, tasks0);
        }
        run_until(w, MIN(end, w->now + END_STEP_NS));
    }
    if (simnet_pending(w->net))
        FAIL("frames left in the sim network");
    inet_destroy(w->in);
    harvest(w);
    /* Only the known leftovers' pushes can still be waiting (avoid_known):
     * the stack dropped them with their connections (their lists are gone). */
    for (int i = 0; i < w->ntask; i++) {
        struct sched_task *t = w->task[i].t;
        t->list = NULL;
        t->next = t->prev = NULL;
        sched_free(&w->rt->sched, t);
    }
    w->ntask = 0;
    w->dev->ops->destroy(w->dev);
    simnet_destroy(w->net);
    if (w->rt->timers.armed || w->rt->sched.live || heap_stats(w->rt->heap)->bytes_in_use)
        FAIL("the stack left timers, tasks or heap bytes behind after its destruction");
    if (big_in_use())
        FAIL("a large allocation was not freed");
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_init();
    avoid_known = getenv("FUZZ_STACK_AVOID_KNOWN") && atoi(getenv("FUZZ_STACK_AVOID_KNOWN"));
    trace = getenv("FUZZ_STACK_TRACE") && atoi(getenv("FUZZ_STACK_TRACE"));
    if (!getenv("DEMI_LOG"))
        log_level_g = LOGL_ERROR;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct world *w = &W;
    world_init(w, data, size);
    settle(w);
    uint64_t heap0 = heap_stats(w->rt->heap)->bytes_in_use;
    uint64_t timers0 = w->rt->timers.armed;
    uint32_t tasks0 = w->rt->sched.live;
    world_setup(w);
    while (w->left) {
        uint8_t op = in8(w);
        if (trace)
            fprintf(stderr, "fuzz_stack: op %u\n", (unsigned)(op % ARRAY_SIZE(ops)));
        ops[op % ARRAY_SIZE(ops)](w);
    }
    world_end(w, heap0, timers0, tasks0);
    return 0;
}
