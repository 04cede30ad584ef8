/*
 * Pushed segments are bounds-checked at the call (issue 11, finding 2): a
 * segment in the heap must lie inside one live block the application holds,
 * a length over the 256 MiB limit is refused, and nothing else of the heap
 * (another allocation, a freed block) ever reaches the wire. What may be
 * pushed still is: a segment inside a held block, memory outside the heap
 * (copied), zero-length segments beside real ones. Runs on catnap; a Linux
 * UDP socket on loopback receives what the pushes send.
 */
#include "tcheck.h"

#include <demi/libos.h>
#include <demi/sga.h>
#include <demi/wait.h>

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

static int udp; /* the demi socket */
static int rx;  /* the Linux receiver */
static struct sockaddr_in to;

static int pushto(const demi_sgarray_t *s)
{
    demi_qtoken_t qt;
    int e = demi_pushto(&qt, udp, s, (const struct sockaddr *)&to, sizeof(to));
    if (e)
        return e;
    demi_qresult_t qr;
    CHECK_EQ(demi_wait(&qr, qt, NULL), 0);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_PUSH);
    return 0;
}

/* The next datagram the receiver holds; its length, or -1 if none comes. */
static ssize_t receive(uint8_t *buf, size_t cap)
{
    struct pollfd p = {.fd = rx, .events = POLLIN};
    if (poll(&p, 1, 10000) != 1) /* a bound for a broken run only: loopback delivers within sendto */
        return -1;
    return recv(rx, buf, cap, MSG_DONTWAIT);
}

/* Nothing more was sent. */
static void nothing_sent(void)
{
    uint8_t b[16];
    CHECK(recv(rx, b, sizeof(b), MSG_DONTWAIT) < 0 && errno == EAGAIN);
}

static demi_sgarray_t one_seg(void *buf, uint32_t len)
{
    demi_sgarray_t s;
    memset(&s, 0, sizeof(s));
    s.sga_numsegs = 1;
    s.sga_segs[0].sgaseg_buf = buf;
    s.sga_segs[0].sgaseg_len = len;
    return s;
}

int main(void)
{
    static uint8_t got[70000];
    CHECK_EQ(demi_init(NULL), 0);
    CHECK_EQ(demi_socket(&udp, AF_INET, SOCK_DGRAM, 0), 0);
    rx = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(rx >= 0);
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(bind(rx, (struct sockaddr *)&to, sizeof(to)), 0);
    socklen_t tl = sizeof(to);
    CHECK_EQ(getsockname(rx, (struct sockaddr *)&to, &tl), 0);
    int big = 1 << 20;
    setsockopt(rx, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));

    /* A neighbour whose bytes must never leave. */
    demi_sgarray_t a = demi_sgaalloc(10);
    demi_sgarray_t secret = demi_sgaalloc(10);
    CHECK_EQ(a.sga_numsegs, 1);
    CHECK_EQ(secret.sga_numsegs, 1);
    memset(a.sga_segs[0].sgaseg_buf, 'a', 10);
    memset(secret.sga_segs[0].sgaseg_buf, 'S', 10);
    uint8_t *pa = a.sga_segs[0].sgaseg_buf;

    /* The valid push first: 10 bytes arrive. */
    CHECK_EQ(pushto(&a), 0);
    CHECK_EQ(receive(got, sizeof(got)), 10);
    CHECK(memcmp(got, "aaaaaaaaaa", 10) == 0);

    /* 1. A length far past the block (60000 of 10 bytes). */
    demi_sgarray_t s = a;
    s.sga_segs[0].sgaseg_len = 60000;
    CHECK_EQ(pushto(&s), EINVAL);
    nothing_sent();

    /* 2. A buffer 40 KiB past the block. */
    s = one_seg(pa + 40 * 1024, 10);
    CHECK_EQ(pushto(&s), EINVAL);

    /* 3. A length over the 256 MiB limit, in the heap and outside it. */
    s = a;
    s.sga_segs[0].sgaseg_len = 4000000000u;
    CHECK_EQ(pushto(&s), EINVAL);
    static uint8_t outside[64];
    s = one_seg(outside, 4000000000u);
    CHECK_EQ(pushto(&s), EINVAL);
    /* Segments each within the limit whose sum is over it. */
    memset(&s, 0, sizeof(s));
    s.sga_numsegs = DEMI_SGARRAY_MAXSIZE;
    for (uint32_t i = 0; i < s.sga_numsegs; i++) {
        s.sga_segs[i].sgaseg_buf = outside;
        s.sga_segs[i].sgaseg_len = (32u << 20);
    }
    CHECK_EQ(pushto(&s), EINVAL);

    /* 4. A segment straddling two allocations (64-byte blocks side by side). */
    uint8_t *lo = pa, *hi = secret.sga_segs[0].sgaseg_buf;
    if (hi < lo) {
        uint8_t *t = lo;
        lo = hi;
        hi = t;
    }
    CHECK(hi - lo >= 10);
    s = one_seg(lo + 5, (uint32_t)(hi - lo));
    CHECK_EQ(pushto(&s), EINVAL);
    nothing_sent();

    /* 5. A freed buffer. */
    demi_sgarray_t f = demi_sgaalloc(100);
    CHECK_EQ(f.sga_numsegs, 1);
    demi_sgarray_t stale = f;
    CHECK_EQ(demi_sgafree(&f), 0);
    CHECK_EQ(pushto(&stale), EINVAL);
    /* A block never handed out (the chunk's tail). */
    s = one_seg(pa + (1u << 20), 64);
    CHECK_EQ(pushto(&s), EINVAL);
    /* One byte before the heap's block, into it. */
    s = one_seg(pa - 1, 2);
    CHECK_EQ(pushto(&s), EINVAL);
    nothing_sent();

    /* 6. Zero-length segments carry nothing and are not looked at, beside
     * real ones; alone they make an empty (refused) push. */
    memset(&s, 0, sizeof(s));
    s.sga_numsegs = 4;
    s.sga_segs[0] = (demi_sgaseg_t){pa, 3};
    s.sga_segs[1] = (demi_sgaseg_t){NULL, 0};
    s.sga_segs[2] = (demi_sgaseg_t){stale.sga_segs[0].sgaseg_buf, 0};
    s.sga_segs[3] = (demi_sgaseg_t){pa + 3, 2};
    CHECK_EQ(pushto(&s), 0);
    CHECK_EQ(receive(got, sizeof(got)), 5);
    CHECK(memcmp(got, "aaaaa", 5) == 0);
    s.sga_numsegs = 3;
    s.sga_segs[0].sgaseg_len = 0;
    s.sga_segs[2] = (demi_sgaseg_t){pa + 1, 0};
    CHECK_EQ(pushto(&s), EINVAL);

    /* 7. NULL with a length. */
    s = one_seg(NULL, 1);
    CHECK_EQ(pushto(&s), EINVAL);
    nothing_sent();

    /* Still accepted: the middle of a held block, memory outside the heap
     * (copied), and the exact block. */
    s = one_seg(pa + 2, 8);
    CHECK_EQ(pushto(&s), 0);
    CHECK_EQ(receive(got, sizeof(got)), 8);
    memset(outside, 'o', sizeof(outside));
    s = one_seg(outside, sizeof(outside));
    CHECK_EQ(pushto(&s), 0);
    CHECK_EQ(receive(got, sizeof(got)), 64);
    CHECK_EQ(got[63], 'o');
    demi_sgarray_t whole = demi_sgaalloc(60000);
    CHECK_EQ(whole.sga_numsegs, 1);
    memset(whole.sga_segs[0].sgaseg_buf, 'w', 60000);
    CHECK_EQ(pushto(&whole), 0);
    CHECK_EQ(receive(got, sizeof(got)), 60000);
    for (size_t i = 0; i < 60000; i++)
        CHECK_EQ(got[i], 'w');

    /* The same checks guard TCP pushes (a connected pair over loopback). */
    int lis, cli;
    CHECK_EQ(demi_socket(&lis, AF_INET, SOCK_STREAM, 0), 0);
    CHECK_EQ(demi_socket(&cli, AF_INET, SOCK_STREAM, 0), 0);
    struct sockaddr_in la = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK_EQ(demi_bind(lis, (struct sockaddr *)&la, sizeof(la)), 0);
    CHECK_EQ(demi_listen(lis, 4), 0);
    socklen_t ll = sizeof(la);
    CHECK_EQ(demi_getsockname(lis, (struct sockaddr *)&la, &ll), 0);
    demi_qtoken_t qa, qc;
    demi_qresult_t qr;
    CHECK_EQ(demi_accept(&qa, lis), 0);
    CHECK_EQ(demi_connect(&qc, cli, (struct sockaddr *)&la, sizeof(la)), 0);
    CHECK_EQ(demi_wait(&qr, qc, NULL), 0);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_CONNECT);
    CHECK_EQ(demi_wait(&qr, qa, NULL), 0);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_ACCEPT);
    s = a;
    s.sga_segs[0].sgaseg_len = 60000;
    demi_qtoken_t qt;
    CHECK_EQ(demi_push(&qt, cli, &s), EINVAL);
    CHECK_EQ(demi_push(&qt, cli, &stale), EINVAL);

    CHECK_EQ(demi_sgafree(&a), 0);
    CHECK_EQ(demi_sgafree(&secret), 0);
    CHECK_EQ(demi_sgafree(&whole), 0);
    close(rx);
    printf("push bounds: overlong, past the block, over the limit, straddling, freed, NULL refused; "
           "zero-length, interior, foreign accepted\n");
    return 0;
}
