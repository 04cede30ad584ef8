/*
 * libFuzzer target for what a peer's frame meets first when instances
 * share a device (src/inet/group.c, libdemi.queues > 1): the steering rule
 * that names a frame's owner, and the ring that carries it there. Built
 * with clang -fsanitize=fuzzer,address,undefined, run by
 * tests/fuzz/test_fuzz_steer.sh.
 *
 * Input: byte 0 picks the number of instances (2..16) and whether to fill
 * a ring; byte 1 the instance asking; the rest is the frame.
 * Oracles, besides ASan and UBSan:
 *   - the owner is an instance of the group, or INET_GROUP_ALL (ARP only);
 *   - every instance names the same owner, except that one that cannot
 *     place a frame keeps it (then it names itself);
 *   - a TCP or UDP frame to an ephemeral port belongs to port mod n;
 *   - the frame comes out of the ring byte for byte, with its flags, in
 *     order; a full ring (512 frames) refuses the next one, and a frame
 *     larger than the group's frames is refused.
 * A failed oracle prints a line starting "fuzz_steer:" and aborts.
 */
#include "inet/group.h"
#include "inet/inet_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FRAME_MAX 2048

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_steer: %s\n", what);
    abort();
}

/* Is @f an unfragmented IPv4 TCP/UDP frame whose ports the rule reads? */
static int ports_of(const uint8_t *f, uint32_t len, uint32_t *dport)
{
    if (len < ETH_HDR_LEN + 24 || f[12] != 0x08 || f[13] != 0x00)
        return 0;
    const uint8_t *ip = f + ETH_HDR_LEN;
    uint32_t ihl = (ip[0] & 15u) * 4;
    if ((ip[0] >> 4) != 4 || ihl < 20 || len < ETH_HDR_LEN + ihl + 4 || (((ip[6] << 8) | ip[7]) & 0x3fff) ||
        (ip[9] != IPPROTO_TCP && ip[9] != IPPROTO_UDP))
        return 0;
    *dport = (uint32_t)(ip[ihl + 2] << 8 | ip[ihl + 3]);
    return 1;
}

static void ring_trip(struct inet_group *g, uint32_t from, uint32_t to, const uint8_t *f, uint32_t len, int fill)
{
    uint32_t count = fill ? 512 : 1;
    for (uint32_t i = 0; i < count; i++)
        if (inet_group_send(g, from, to, f, len, i) != (len <= FRAME_MAX))
            fail("a frame that fits was refused, or one too large was taken");
    if (fill && inet_group_send(g, from, to, f, len, 0))
        fail("a full ring took one more frame");
    if (len > FRAME_MAX) {
        uint32_t l, fl;
        if (inet_group_peek(g, from, to, &l, &fl))
            fail("a refused frame came out of the ring");
        return;
    }
    for (uint32_t i = 0; i < count; i++) {
        uint32_t l, fl;
        const uint8_t *d = inet_group_peek(g, from, to, &l, &fl);
        if (!d || l != len || fl != i || memcmp(d, f, len) != 0)
            fail("the ring gave back another frame than was sent");
        inet_group_next(g, from, to);
    }
    uint32_t l, fl;
    if (inet_group_peek(g, from, to, &l, &fl))
        fail("the ring holds more than was sent");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 70000)
        return 0;
    uint32_t n = 2 + data[0] % (INET_GROUP_MAX - 1);
    int fill = data[0] >= 0xf0;
    uint32_t self = data[1] % n, other = (self + 1) % n;
    const uint8_t *f = data + 2;
    uint32_t len = (uint32_t)(size - 2);

    uint32_t o = inet_group_steer(n, self, f, len);
    uint32_t o2 = inet_group_steer(n, other, f, len);
    if (o != INET_GROUP_ALL && o >= n)
        fail("the owner is not an instance of the group");
    if (o != o2 && !(o == self && o2 == other))
        fail("two instances name different owners");
    if (o == INET_GROUP_ALL && (len < ETH_HDR_LEN || f[12] != 0x08 || f[13] != 0x06))
        fail("a frame that is not ARP goes to every instance");
    uint32_t dport;
    if (ports_of(f, len, &dport) && dport >= EPHEMERAL_LO && o != dport % n)
        fail("a frame to an ephemeral port is not its allocator's");

    struct inet_group *g;
    uint32_t a, b;
    if (inet_group_join("fuzz", n, self, FRAME_MAX, NULL, &g, &a) != 0 || a != self)
        fail("join");
    struct inet_group *g2;
    if (inet_group_join("fuzz", n, self, FRAME_MAX, NULL, &g2, &b) == 0)
        fail("a taken queue was given again");
    if (inet_group_join("fuzz", n, other, FRAME_MAX, NULL, &g2, &b) != 0 || g2 != g || b != other)
        fail("join of a second instance");
    ring_trip(g, self, other, f, len, fill);
    inet_group_leave(g, other);
    /* The owner gone: its frames are refused. */
    if (inet_group_send(g, self, other, f, len < FRAME_MAX ? len : FRAME_MAX, 0))
        fail("a frame went to an instance that left");
    inet_group_leave(g, self);
    return 0;
}
