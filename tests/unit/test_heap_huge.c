/*
 * Hugepage-backed heap: with 2 MiB pages reserved, the heap maps its
 * chunks on them (HUGEPAGES=on) and works; with none free, "on" fails
 * with ENOMEM and "auto" falls back to 4 KiB pages. Reserves pages itself
 * (root) and restores the system's setting afterwards.
 */
#include "mem/heap.h"
#include "tcheck.h"

#include <errno.h>
#include <unistd.h>

static const char *nr_path = "/proc/sys/vm/nr_hugepages";

static long read_nr(void)
{
    FILE *f = fopen(nr_path, "r");
    long v = -1;
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

static int write_nr(long v)
{
    FILE *f = fopen(nr_path, "w");
    if (!f)
        return -1;
    fprintf(f, "%ld\n", v);
    return fclose(f);
}

static long saved = -1;

static void restore(void)
{
    if (saved >= 0)
        write_nr(saved);
}

static long free_pages(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "HugePages_Free: %ld", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

int main(void)
{
    if (geteuid() != 0)
        SKIP("needs root to reserve hugepages");
    saved = read_nr();
    CHECK(saved >= 0);
    atexit(restore);
    long base_free = free_pages();
    CHECK_EQ(write_nr(saved + 8), 0);
    if (free_pages() < base_free + 8)
        SKIP("the kernel could not reserve 8 more 2 MiB pages");

    struct heap *h;
    CHECK_EQ(heap_create(&h, (size_t)64 << 20, CONFIG_HUGE_ON), 0);
    struct heap_blk *b = heap_alloc(h, 4096);
    CHECK(b);
    CHECK(heap_is_huge(h));
    memset(heap_blk_data(h, b), 0x3c, 4096);
    struct heap_blk *big = heap_alloc(h, (size_t)3 << 20); /* a 2-chunk large run */
    CHECK(big);
    memset(heap_blk_data(h, big), 0x11, (size_t)3 << 20);
    CHECK_EQ(heap_stats(h)->huge_chunks, 3);
    heap_unref(h, big);
    heap_unref(h, b);
    heap_destroy(h);

    /* None free: "on" is ENOMEM with a message, "auto" falls back. */
    CHECK_EQ(write_nr(0), 0);
    if (free_pages() != 0)
        SKIP("hugepages in use elsewhere; cannot test exhaustion");
    CHECK_EQ(heap_create(&h, (size_t)64 << 20, CONFIG_HUGE_ON), 0);
    errno = 0;
    CHECK(heap_alloc(h, 64) == NULL);
    CHECK_EQ(errno, ENOMEM);
    heap_destroy(h);
    CHECK_EQ(heap_create(&h, (size_t)64 << 20, CONFIG_HUGE_AUTO), 0);
    b = heap_alloc(h, 64);
    CHECK(b);
    CHECK(!heap_is_huge(h));
    heap_unref(h, b);
    heap_destroy(h);
    printf("heap on hugepages: ok\n");
    return 0;
}
