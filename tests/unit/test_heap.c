/*
 * Heap and sga ownership: size classes from 64 B to 1 MiB and large
 * blocks, interior-pointer lookup, refcounts (a pushed buffer survives the
 * application's free), tags (double free and foreign arrays are EINVAL),
 * multi-segment arrays over 16 MiB, chunk reuse, exhaustion (ENOMEM,
 * with the heap still usable afterwards), and the reserve kept from
 * application allocations.
 */
#include "mem/heap.h"
#include "mem/sga.h"
#include "tcheck.h"

#include <errno.h>
#include <sys/wait.h>
#include <unistd.h>

/* Hooks: what a device registering memory for DMA would see. */
struct hook_log {
    size_t mapped, unmapped; /* bytes */
    int refuse;              /* the next map call fails with this */
};

static int hook_map(void *arg, void *addr, size_t len)
{
    struct hook_log *l = arg;
    CHECK(((uintptr_t)addr & (HEAP_CHUNK - 1)) == 0);
    if (l->refuse) {
        int e = l->refuse;
        l->refuse = 0;
        return e;
    }
    l->mapped += len;
    return 0;
}

static void hook_unmap(void *arg, void *addr, size_t len)
{
    (void)addr;
    ((struct hook_log *)arg)->unmapped += len;
}

/* Carving: the device's pool and its release callback. */
struct pool {
    int released;
    struct heap_blk *last;
};

static void pool_release(void *arg, struct heap_blk *b)
{
    struct pool *p = arg;
    p->released++;
    p->last = b;
}

static void test_hooks_and_carving(void)
{
    struct heap *h;
    CHECK_EQ(heap_create(&h, (size_t)64 << 20, CONFIG_HUGE_OFF), 0);
    struct heap_blk *early = heap_alloc(h, 100);
    struct hook_log a = {0}, b = {0};
    /* Added late: told about the chunk already mapped. */
    CHECK_EQ(heap_add_hook(h, hook_map, hook_unmap, &a), 0);
    CHECK_EQ(a.mapped, HEAP_CHUNK);
    CHECK_EQ(heap_add_hook(h, hook_map, NULL, &b), 0);
    struct heap_blk *big = heap_alloc(h, (size_t)3 << 20); /* two chunks */
    CHECK_EQ(a.mapped, 3 * HEAP_CHUNK);
    CHECK_EQ(b.mapped, 3 * HEAP_CHUNK);
    heap_unref(h, big);
    CHECK_EQ(a.unmapped, 2 * HEAP_CHUNK);
    /* A hook refusing a range fails the allocation; the others hear unmap. */
    b.refuse = EIO;
    errno = 0;
    CHECK(heap_alloc(h, (size_t)3 << 20) == NULL && errno == ENOMEM);
    CHECK_EQ(a.unmapped, 4 * HEAP_CHUNK);
    struct hook_log c = {.refuse = EPERM}, d = {0}, e = {0};
    CHECK_EQ(heap_add_hook(h, hook_map, NULL, &c), EPERM); /* refused at once: not added */
    CHECK_EQ(heap_add_hook(h, hook_map, NULL, &c), 0);
    CHECK_EQ(heap_add_hook(h, hook_map, NULL, &d), 0);
    CHECK_EQ(heap_add_hook(h, hook_map, NULL, &e), ENOSPC);
    heap_remove_hook(h, &c);
    heap_remove_hook(h, &d);
    heap_remove_hook(h, &b);
    size_t before = b.mapped;
    big = heap_alloc(h, (size_t)3 << 20);
    CHECK_EQ(b.mapped, before); /* removed */
    heap_unref(h, big);

    /* Carving 2 KiB blocks. */
    struct pool pl = {0};
    errno = 0;
    CHECK(heap_carve(h, 5, pool_release, &pl) == NULL && errno == EINVAL);
    size_t in_use = heap_stats(h)->bytes_in_use;
    uint8_t *base = heap_carve(h, 11, pool_release, &pl);
    CHECK(base);
    CHECK_EQ(a.mapped, 8 * HEAP_CHUNK); /* 1 + 2 + 2 (refused) + 2 + the carved one */
    CHECK_EQ(heap_stats(h)->bytes_in_use, in_use);
    struct heap_blk *cb = heap_carved_blk(h, base + 5 * 2048 + 100);
    CHECK(cb);
    CHECK_EQ(heap_blk_index(h, cb), 5);
    CHECK(heap_blk_data(h, cb) == base + 5 * 2048);
    CHECK(heap_find(h, base + 5 * 2048, 10) == NULL); /* the device's: not live */
    CHECK(heap_carved_blk(h, heap_blk_data(h, early)) == NULL);
    heap_carved_take(cb);
    CHECK(heap_find(h, base + 5 * 2048 + 100, 10) == cb);
    heap_ref(cb);
    heap_unref(h, cb);
    CHECK_EQ(pl.released, 0);
    /* Regular allocations never land in a carved chunk. */
    for (int i = 0; i < 2000; i++) {
        struct heap_blk *x = heap_alloc(h, 2048);
        CHECK(heap_carved_blk(h, heap_blk_data(h, x)) == NULL);
        heap_unref(h, x);
    }
    CHECK_EQ(heap_uncarve(h, base), EBUSY); /* one block is out */
    heap_unref(h, cb);
    CHECK_EQ(pl.released, 1);
    CHECK(pl.last == cb);
    CHECK(heap_find(h, base + 5 * 2048, 10) == NULL);
    CHECK_EQ(heap_uncarve(h, base + 1), EINVAL);
    CHECK_EQ(heap_uncarve(h, base), 0);
    CHECK(heap_carved_blk(h, base) == NULL);
    heap_unref(h, early);
    CHECK_EQ(heap_stats(h)->bytes_in_use, 0);
    heap_destroy(h);
}

/* Under ASan (gcc's or clang's), reading a freed block is reported (in a
 * child, which dies). */
static void test_poisoned_free(void)
{
#ifdef HEAP_ASAN
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        struct heap *h;
        CHECK_EQ(heap_create(&h, (size_t)16 << 20, CONFIG_HUGE_OFF), 0);
        struct heap_blk *b = heap_alloc(h, 100);
        volatile uint8_t *p = heap_blk_data(h, b);
        p[0] = 1;
        heap_unref(h, b);
        freopen("/dev/null", "w", stderr); /* the report is expected */
        printf("%d\n", p[0]);            /* use after free: ASan stops here */
        _exit(0);
    }
    int st;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK(!(WIFEXITED(st) && WEXITSTATUS(st) == 0));
    printf("heap: a read of a freed block is reported under ASan\n");
#endif
}

/* The reserve: application allocations stop short of it, the stack's go
 * on into it, and a class's partly used chunk serves both. */
static void test_reserve(void)
{
    struct heap *h;
    CHECK_EQ(heap_create(&h, (size_t)16 << 20, CONFIG_HUGE_OFF), 0); /* 8 chunks */
    heap_set_reserve(h, ((size_t)3 << 20) + 1);                    /* rounded up: 2 chunks */
    struct heap_blk *app[8], *stk[8];
    int na = 0, ns = 0;
    while (na < 8 && (app[na] = heap_alloc_app(h, HEAP_CHUNK)))
        na++;
    CHECK_EQ(na, 6);
    CHECK_EQ(errno, ENOMEM);
    CHECK_EQ(heap_stats(h)->app_refused, 1);
    demi_sgarray_t sga;
    CHECK_EQ(mem_sga_alloc(h, 64, &sga), ENOMEM); /* a new class needs a chunk too */
    while (ns < 8 && (stk[ns] = heap_alloc(h, 100)))
        ns++;
    /* A 128-byte class chunk from the reserve. */
    CHECK_EQ(ns, 8);
    CHECK((app[na] = heap_alloc_app(h, 100)) != NULL); /* that chunk has room: no new chunk */
    na++;
    struct heap_blk *big = heap_alloc(h, HEAP_CHUNK);
    CHECK(big); /* the reserve's last chunk, for the stack */
    CHECK(heap_alloc(h, HEAP_CHUNK) == NULL);
    CHECK(heap_alloc_app(h, HEAP_CHUNK) == NULL && errno == ENOMEM);
    heap_unref(h, big);
    for (int i = 0; i < na; i++)
        heap_unref(h, app[i]);
    for (int i = 0; i < ns; i++)
        heap_unref(h, stk[i]);
    CHECK_EQ(heap_stats(h)->bytes_in_use, 0);
    heap_set_reserve(h, 0);
    /* No reserve: all of the free run before the 128-byte class's chunk. */
    CHECK((big = heap_alloc_app(h, (size_t)12 << 20)) != NULL);
    heap_unref(h, big);
    heap_destroy(h);
    printf("heap: the reserve holds against application allocations, not the stack's\n");
}

/* What a push may read (mem_sga_check_push): device pool buffers and the
 * stack's own blocks are refused until the application holds them. */
static void test_push_check(void)
{
    struct heap *h;
    CHECK_EQ(heap_create(&h, (size_t)16 << 20, CONFIG_HUGE_OFF), 0);
    struct pool pl = {0};
    uint8_t *base = heap_carve(h, 11, pool_release, &pl);
    CHECK(base);
    demi_sgarray_t s;
    memset(&s, 0, sizeof(s));
    s.sga_numsegs = 1;
    s.sga_segs[0] = (demi_sgaseg_t){base + 2048, 100};
    CHECK_EQ(mem_sga_check_push(h, &s), EINVAL); /* in the device's pool */
    struct heap_blk *cb = heap_carved_blk(h, base + 2048);
    heap_carved_take(cb);
    CHECK_EQ(mem_sga_check_push(h, &s), EINVAL); /* a frame the stack holds */
    demi_sgarray_t popped;
    mem_sga_begin(h, &popped);
    mem_sga_add(h, &popped, cb, base + 2048 + 42, 58); /* handed to the application */
    CHECK_EQ(mem_sga_check_push(h, &s), 0);
    s.sga_segs[0].sgaseg_len = 2049;
    CHECK_EQ(mem_sga_check_push(h, &s), EINVAL); /* into the next buffer */
    s.sga_segs[0].sgaseg_len = 100;
    CHECK_EQ(mem_sga_free(h, &popped), 0);
    CHECK_EQ(pl.released, 1);
    CHECK_EQ(mem_sga_check_push(h, &s), EINVAL); /* back in the pool */
    struct heap_blk *umem = heap_alloc(h, 4096); /* a device's own block (an AF_XDP UMEM) */
    s.sga_segs[0] = (demi_sgaseg_t){heap_blk_data(h, umem), 64};
    CHECK_EQ(mem_sga_check_push(h, &s), EINVAL);
    heap_unref(h, umem);
    CHECK_EQ(heap_uncarve(h, base), 0);
    heap_destroy(h);
    printf("heap: pushes of pool buffers and the stack's blocks are refused until the application holds them\n");
}

int main(void)
{
    test_hooks_and_carving();
    test_push_check();
    test_poisoned_free();
    test_reserve();
    struct heap *h;
    CHECK_EQ(heap_create(&h, (size_t)64 << 20, CONFIG_HUGE_AUTO), 0);
    CHECK_EQ(heap_create(&h, 1000, CONFIG_HUGE_AUTO) == EINVAL, 1);

    /* Every class, and the block found from any interior pointer. */
    for (size_t size = 1; size <= ((size_t)4 << 20); size = size * 3 + 1) {
        struct heap_blk *b = heap_alloc(h, size);
        CHECK(b);
        CHECK(heap_blk_cap(h, b) >= size);
        uint8_t *p = heap_blk_data(h, b);
        memset(p, 0xab, size);
        CHECK(heap_find(h, p, size) == b);
        CHECK(heap_find(h, p + size / 2, size - size / 2) == b);
        CHECK(heap_find(h, p, heap_blk_cap(h, b) + 1) == NULL); /* crosses the block's end */
        heap_unref(h, b);
        CHECK(heap_find(h, p, 1) == NULL); /* freed */
    }
    int stack;
    CHECK(heap_find(h, &stack, sizeof(stack)) == NULL);
    CHECK(heap_find(h, NULL, 1) == NULL);
    errno = 0;
    CHECK(heap_alloc(h, 0) == NULL && errno == EINVAL);

    /* Refcount: a second reference keeps the block alive and unmoved. */
    struct heap_blk *b = heap_alloc(h, 100);
    uint8_t *p = heap_blk_data(h, b);
    memcpy(p, "hello", 6);
    heap_ref(b);
    heap_unref(h, b);
    CHECK(heap_find(h, p, 6) == b);
    struct heap_blk *other = heap_alloc(h, 100);
    CHECK(other != b);
    CHECK(memcmp(p, "hello", 6) == 0);
    heap_unref(h, b);
    heap_unref(h, other);

    /* sga: alloc, free, double free, foreign, edited segments. */
    demi_sgarray_t sga;
    CHECK_EQ(mem_sga_alloc(h, 0, &sga), 0);
    CHECK_EQ(sga.sga_numsegs, 0);
    CHECK(sga.sga_buf == NULL);
    CHECK_EQ(mem_sga_free(h, &sga), 0);
    CHECK_EQ(mem_sga_alloc(h, 1000, &sga), 0);
    CHECK_EQ(sga.sga_numsegs, 1);
    CHECK_EQ(sga.sga_segs[0].sgaseg_len, 1000);
    demi_sgarray_t edited = sga;
    edited.sga_segs[0].sgaseg_buf = (uint8_t *)sga.sga_segs[0].sgaseg_buf + 10; /* app consumed a header */
    edited.sga_segs[0].sgaseg_len = 990;
    demi_sgarray_t forged = sga;
    forged.sga_buf = (void *)(uintptr_t)0x1234;
    CHECK_EQ(mem_sga_free(h, &forged), EINVAL);
    CHECK_EQ(mem_sga_free(h, NULL), EINVAL);
    CHECK_EQ(mem_sga_free(h, &edited), 0);
    CHECK_EQ(mem_sga_free(h, &sga), EINVAL); /* double free */
    /* Double free after the block was handed out again. */
    demi_sgarray_t again;
    CHECK_EQ(mem_sga_alloc(h, 1000, &again), 0);
    CHECK_EQ(mem_sga_free(h, &sga), EINVAL);
    CHECK_EQ(mem_sga_free(h, &again), 0);
    /* An array naming memory that is not from the heap. */
    demi_sgarray_t fake;
    CHECK_EQ(mem_sga_alloc(h, 10, &fake), 0);
    demi_sgarray_t fake2 = fake;
    fake2.sga_segs[0].sgaseg_buf = &stack;
    CHECK_EQ(mem_sga_free(h, &fake2), EINVAL);
    CHECK_EQ(mem_sga_free(h, &fake), 0);

    /* Free after push: the libOS's reference keeps the data. */
    CHECK_EQ(mem_sga_alloc(h, 4096, &sga), 0);
    memset(sga.sga_segs[0].sgaseg_buf, 0x5a, 4096);
    struct heap_blk *pushed = mem_seg_blk(h, &sga.sga_segs[0]);
    heap_ref(pushed); /* what push does */
    CHECK_EQ(mem_sga_free(h, &sga), 0);
    for (int i = 0; i < 100; i++) { /* new allocations must not land on it */
        demi_sgarray_t n;
        CHECK_EQ(mem_sga_alloc(h, 4096, &n), 0);
        CHECK(n.sga_segs[0].sgaseg_buf != sga.sga_segs[0].sgaseg_buf);
        memset(n.sga_segs[0].sgaseg_buf, 0xee, 4096);
        CHECK_EQ(mem_sga_free(h, &n), 0);
    }
    for (int i = 0; i < 4096; i++)
        CHECK_EQ(((uint8_t *)sga.sga_segs[0].sgaseg_buf)[i], 0x5a);
    heap_unref(h, pushed); /* the device is done */
    CHECK(heap_find(h, sga.sga_segs[0].sgaseg_buf, 1) == NULL);

    /* 16 MiB is one segment; more is split into 16 MiB segments. */
    heap_destroy(h);
    CHECK_EQ(heap_create(&h, (size_t)256 << 20, CONFIG_HUGE_AUTO), 0);
    CHECK_EQ(mem_sga_alloc(h, (size_t)16 << 20, &sga), 0);
    CHECK_EQ(sga.sga_numsegs, 1);
    CHECK_EQ(sga.sga_segs[0].sgaseg_len, 16u << 20);
    memset(sga.sga_segs[0].sgaseg_buf, 1, (size_t)16 << 20);
    CHECK_EQ(mem_sga_free(h, &sga), 0);
    CHECK_EQ(mem_sga_alloc(h, ((size_t)40 << 20) + 3, &sga), 0);
    CHECK_EQ(sga.sga_numsegs, 3);
    CHECK_EQ(sga.sga_segs[2].sgaseg_len, (8u << 20) + 3);
    CHECK_EQ(mem_sga_len(&sga), ((int64_t)40 << 20) + 3);
    CHECK_EQ(mem_sga_free(h, &sga), 0);
    CHECK_EQ(mem_sga_alloc(h, (size_t)300 << 20, &sga), EINVAL); /* more than 16 segments */

    /* Exhaustion: ENOMEM, nothing leaks, and the heap recovers. */
    enum { MAXB = 4096 };
    static struct heap_blk *blks[MAXB];
    int n = 0;
    for (; n < MAXB; n++) {
        errno = 0;
        blks[n] = heap_alloc(h, (size_t)1 << 20);
        if (!blks[n])
            break;
    }
    CHECK(n > 0 && n < MAXB);
    CHECK_EQ(errno, ENOMEM);
    CHECK_EQ(mem_sga_alloc(h, 64, &sga), ENOMEM); /* no free chunk for a new class */
    CHECK(heap_stats(h)->failed >= 2);
    for (int i = 0; i < n; i++)
        heap_unref(h, blks[i]);
    CHECK_EQ(heap_stats(h)->bytes_in_use, 0);
    CHECK_EQ(mem_sga_alloc(h, (size_t)100 << 20, &sga), 0); /* large runs are available again */
    CHECK_EQ(mem_sga_free(h, &sga), 0);

    /* Churn in one class: empty chunks go back, counts balance. */
    static struct heap_blk *small[70000];
    for (int i = 0; i < 70000; i++)
        CHECK((small[i] = heap_alloc(h, 64)));
    for (int i = 0; i < 70000; i++)
        heap_unref(h, small[i]);
    CHECK_EQ(heap_stats(h)->bytes_in_use, 0);
    CHECK(heap_stats(h)->chunks_mapped <= 2);
    heap_destroy(h);
    printf("heap: ok\n");
    return 0;
}
