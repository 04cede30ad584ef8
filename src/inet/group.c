/*
 * inet/group: the rings between stack instances sharing a device (see
 * group.h). A ring is an array of fixed-size slots with a producer index
 * and a consumer index on their own cache lines; the producer publishes a
 * slot with a release store of its index, the consumer frees it with a
 * release store of its own.
 */
#include "inet/group.h"

#include "core/bell.h"
#include "core/log.h"
#include "inet/inet_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RING_SLOTS 512 /* a power of two */
#define KEY_MAX    64

struct slot_hdr {
    uint32_t len, flags;
};

struct ring {
    _Alignas(64) _Atomic uint32_t head; /* next slot the producer fills */
    _Alignas(64) _Atomic uint32_t tail; /* next slot the consumer reads */
    _Alignas(64) uint8_t *slots;
};

struct member {
    _Alignas(64) _Atomic bool live;
    struct bell *bell; /* set at join (under groups_lock); kept after a leave, retired at the next join */
};

struct inet_group {
    struct inet_group *next;
    char key[KEY_MAX];
    uint32_t n, nlive;
    uint32_t frame_max, slot_size;
    struct member m[INET_GROUP_MAX];
    struct ring *rings; /* n * n; the diagonal unused */
    /* Bells of members gone: a sender may still hold one it loaded before
     * the member left, so they are released only with the group. */
    struct bell **retired;
    uint32_t nretired;
};

static pthread_mutex_t groups_lock = PTHREAD_MUTEX_INITIALIZER;
static struct inet_group *groups;

static struct ring *ring_of(struct inet_group *g, uint32_t from, uint32_t to)
{
    return &g->rings[from * g->n + to];
}

static void group_free(struct inet_group *g)
{
    for (uint32_t i = 0; g->rings && i < g->n * g->n; i++)
        free(g->rings[i].slots);
    free(g->rings);
    for (uint32_t i = 0; i < INET_GROUP_MAX; i++)
        bell_unref(g->m[i].bell);
    for (uint32_t i = 0; i < g->nretired; i++)
        bell_unref(g->retired[i]);
    free(g->retired);
    free(g);
}

static struct inet_group *group_new(const char *key, uint32_t n, uint32_t frame_max)
{
    struct inet_group *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    snprintf(g->key, sizeof(g->key), "%s", key);
    g->n = n;
    g->frame_max = frame_max;
    g->slot_size = (uint32_t)((sizeof(struct slot_hdr) + frame_max + 63) & ~63u);
    g->rings = calloc((size_t)n * n, sizeof(*g->rings));
    if (!g->rings)
        goto fail;
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t j = 0; j < n; j++)
            if (i != j && !(ring_of(g, i, j)->slots = calloc(RING_SLOTS, g->slot_size)))
                goto fail;
    }
    return g;
fail:
    group_free(g);
    return NULL;
}

int inet_group_join(const char *key, uint32_t n, uint32_t want, uint32_t frame_max, struct bell *bell,
                    struct inet_group **out, uint32_t *index)
{
    if (n < 2 || n > INET_GROUP_MAX || (want != UINT32_MAX && want >= n) || strlen(key) >= KEY_MAX)
        return EINVAL;
    pthread_mutex_lock(&groups_lock);
    struct inet_group *g = groups;
    while (g && strcmp(g->key, key) != 0)
        g = g->next;
    int e = 0;
    if (g && g->n != n) {
        log_error("inet: %s is shared by %u instances already; this one asks for %u (libdemi.queues)", key, g->n, n);
        e = EINVAL;
    } else if (!g && !(g = group_new(key, n, frame_max))) {
        e = ENOMEM;
    } else if (!g->nlive) {
        g->next = groups;
        groups = g;
    }
    uint32_t i = want;
    if (!e) {
        if (want == UINT32_MAX)
            for (i = 0; i < n && atomic_load(&g->m[i].live); i++)
                ;
        if (i >= n || atomic_load(&g->m[i].live)) {
            log_error("inet: %s: %s", key,
                      want == UINT32_MAX ? "every queue has its instance (libdemi.queues)" : "this queue has its instance");
            e = EBUSY;
        }
    }
    if (!e && g->m[i].bell) { /* the last member on this index left it */
        struct bell **r = realloc(g->retired, (g->nretired + 1) * sizeof(*r));
        if (r) {
            g->retired = r;
            g->retired[g->nretired++] = g->m[i].bell;
            g->m[i].bell = NULL;
        } else {
            e = ENOMEM;
        }
    }
    if (!e) {
        if (bell)
            bell_ref(bell);
        g->m[i].bell = bell;
        atomic_store(&g->m[i].live, true);
        g->nlive++;
        *out = g;
        *index = i;
    }
    pthread_mutex_unlock(&groups_lock);
    return e;
}

void inet_group_leave(struct inet_group *g, uint32_t index)
{
    pthread_mutex_lock(&groups_lock);
    atomic_store(&g->m[index].live, false);
    /* Frames left for it stay until its next member drains them (to be
     * answered as strays), or the group goes. */
    if (--g->nlive == 0) {
        struct inet_group **p = &groups;
        while (*p != g)
            p = &(*p)->next;
        *p = g->next;
        group_free(g);
    }
    pthread_mutex_unlock(&groups_lock);
}

bool inet_group_send(struct inet_group *g, uint32_t from, uint32_t to, const uint8_t *data, uint32_t len,
                     uint32_t flags)
{
    struct member *m = &g->m[to];
    if (len > g->frame_max || !atomic_load_explicit(&m->live, memory_order_relaxed))
        return false;
    struct ring *r = ring_of(g, from, to);
    uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (head - atomic_load_explicit(&r->tail, memory_order_acquire) >= RING_SLOTS)
        return false;
    uint8_t *s = r->slots + (size_t)(head & (RING_SLOTS - 1)) * g->slot_size;
    struct slot_hdr h = {len, flags};
    memcpy(s, &h, sizeof(h));
    memcpy(s + sizeof(h), data, len);
    atomic_store_explicit(&r->head, head + 1, memory_order_release);
    /* Either it sees our head before it sleeps, or we see its bell armed. */
    if (m->bell)
        bell_ring(m->bell);
    return true;
}

const uint8_t *inet_group_peek(struct inet_group *g, uint32_t from, uint32_t self, uint32_t *len, uint32_t *flags)
{
    struct ring *r = ring_of(g, from, self);
    uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (tail == atomic_load_explicit(&r->head, memory_order_acquire))
        return NULL;
    const uint8_t *s = r->slots + (size_t)(tail & (RING_SLOTS - 1)) * g->slot_size;
    struct slot_hdr h;
    memcpy(&h, s, sizeof(h));
    *len = h.len;
    *flags = h.flags;
    return s + sizeof(h);
}

void inet_group_next(struct inet_group *g, uint32_t from, uint32_t self)
{
    struct ring *r = ring_of(g, from, self);
    atomic_store_explicit(&r->tail, atomic_load_explicit(&r->tail, memory_order_relaxed) + 1, memory_order_release);
}

static uint32_t steer_hash(uint32_t a, uint32_t b, uint32_t n)
{
    uint64_t k = (((uint64_t)a << 32) | b) * 0x9e3779b97f4a7c15ull;
    return (uint32_t)((k >> 32) % n);
}

/*
 * The owner of a frame: ARP every instance
 * (each keeps its own table); a TCP segment or UDP datagram to an
 * ephemeral port the instance that takes such ports (port % n, see
 * inet_ephemeral), to another port the one the peer's address and port
 * hash to (a listener in every instance shares the port); an IPv4
 * fragment the one its source and ID hash to, where it is reassembled and
 * delivered; anything else, or anything too short to say, this one (whose
 * checks then drop what is malformed).
 */
uint32_t inet_group_steer(uint32_t n, uint32_t self, const uint8_t *f, uint32_t len)
{
    if (len < ETH_HDR_LEN + 24)
        return len >= ETH_HDR_LEN && f[12] == (ETH_P_ARP >> 8) && f[13] == (ETH_P_ARP & 0xff) ? INET_GROUP_ALL : self;
    uint16_t type = (uint16_t)(f[12] << 8 | f[13]);
    if (type == ETH_P_ARP)
        return INET_GROUP_ALL;
    const uint8_t *ip = f + ETH_HDR_LEN;
    uint32_t ihl = (ip[0] & 15u) * 4;
    if (type != ETH_P_IPV4 || (ip[0] >> 4) != 4 || ihl < 20 || len < ETH_HDR_LEN + ihl + 4)
        return self;
    uint32_t src;
    memcpy(&src, ip + 12, 4);
    if (((ip[6] << 8) | ip[7]) & 0x3fff) /* MF or an offset: a fragment */
        return steer_hash(src, (uint32_t)(ip[4] << 8 | ip[5]), n);
    if (ip[9] != IPPROTO_TCP && ip[9] != IPPROTO_UDP)
        return self;
    const uint8_t *l4 = ip + ihl;
    uint32_t sport = (uint32_t)(l4[0] << 8 | l4[1]), dport = (uint32_t)(l4[2] << 8 | l4[3]);
    if (dport >= EPHEMERAL_LO)
        return dport % n;
    return steer_hash(src, sport, n);
}

bool inet_group_pending(struct inet_group *g, uint32_t self)
{
    for (uint32_t j = 0; j < g->n; j++) {
        if (j == self)
            continue;
        struct ring *r = ring_of(g, j, self);
        if (atomic_load_explicit(&r->tail, memory_order_relaxed) != atomic_load_explicit(&r->head, memory_order_acquire))
            return true;
    }
    return false;
}
