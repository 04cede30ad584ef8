/*
 * DMA-capable heap (see heap.h). Chunks are mapped with MAP_POPULATE so the
 * data path never takes a page fault, and unmapped (back to PROT_NONE) when
 * a large allocation or a surplus empty chunk is freed. Never aborts: every
 * failure is ENOMEM to the caller.
 */
#include "mem/heap.h"

#include "core/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Under AddressSanitizer a free block is poisoned, so a use after free of
 * heap memory (a freed sga, a block a device still read) is reported, not
 * silently read from a recycled block. */
#ifdef HEAP_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#ifndef MAP_HUGE_2MB
#define MAP_HUGE_2MB (21 << 26)
#endif

enum { CHUNK_FREE = 0, CHUNK_SMALL, CHUNK_LARGE, CHUNK_TAIL };

struct heap_chunk {
    uint8_t kind;
    uint8_t cls;
    uint8_t huge;
    uint32_t head;    /* CHUNK_TAIL: first chunk of its large allocation */
    uint32_t span;    /* CHUNK_LARGE: number of chunks */
    uint32_t nblocks; /* blocks in this chunk */
    uint32_t nfree;   /* free blocks, counting never-used ones */
    uint32_t bump;    /* blocks [bump, nblocks) were never handed out */
    uint32_t free_head;
    uint32_t next_partial, prev_partial; /* chunk index + 1, 0 ends */
    struct heap_blk *blk;
    heap_release_fn release; /* carved: where its blocks go back */
    void *release_arg;
};

struct heap {
    uint8_t *base;
    size_t size;
    uint32_t nchunks;
    struct heap_chunk *chunk;
    uint32_t partial[HEAP_NCLASSES]; /* chunks with free blocks: index + 1 */
    uint32_t class_chunks[HEAP_NCLASSES];
    int huge_mode;
    bool huge_failed;
    uint32_t next_tag;
    uint32_t reserve_chunks; /* left unmapped for heap_alloc (see heap_set_reserve) */
    struct heap_stats stats;
    struct {
        heap_map_fn map;
        heap_unmap_fn unmap;
        void *arg;
    } hook[HEAP_MAX_HOOKS];
    int nhooks;
};

int heap_create(struct heap **out, size_t size, int huge_mode)
{
    if (!out || size < HEAP_CHUNK)
        return EINVAL;
    size = (size + HEAP_CHUNK - 1) & ~(HEAP_CHUNK - 1);
    if (size / HEAP_CHUNK > UINT32_MAX - 1)
        return EINVAL;
    struct heap *h = calloc(1, sizeof(*h));
    if (!h)
        return ENOMEM;
    /* Over-reserve by one chunk so the base can be aligned to 2 MiB. */
    size_t span = size + HEAP_CHUNK;
    uint8_t *raw = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED) {
        free(h);
        return ENOMEM;
    }
    uintptr_t aligned = ((uintptr_t)raw + HEAP_CHUNK - 1) & ~(uintptr_t)(HEAP_CHUNK - 1);
    size_t lead = aligned - (uintptr_t)raw;
    if (lead)
        munmap(raw, lead);
    if (HEAP_CHUNK - lead)
        munmap((uint8_t *)aligned + size, HEAP_CHUNK - lead);
    h->base = (uint8_t *)aligned;
    h->size = size;
    h->nchunks = (uint32_t)(size / HEAP_CHUNK);
    h->chunk = calloc(h->nchunks, sizeof(*h->chunk));
    if (!h->chunk) {
        munmap(h->base, size);
        free(h);
        return ENOMEM;
    }
    h->huge_mode = huge_mode;
    h->next_tag = 1;
    *out = h;
    return 0;
}

void heap_destroy(struct heap *h)
{
    if (!h)
        return;
    for (uint32_t i = 0; i < h->nchunks; i++)
        free(h->chunk[i].blk);
    free(h->chunk);
    UNPOISON(h->base, h->size);
    munmap(h->base, h->size);
    free(h);
}

int heap_add_hook(struct heap *h, heap_map_fn map, heap_unmap_fn unmap, void *arg)
{
    if (!h || !map)
        return EINVAL;
    if (h->nhooks == HEAP_MAX_HOOKS)
        return ENOSPC;
    /* Tell it what is mapped already: runs of chunks in use. */
    for (uint32_t i = 0; i < h->nchunks;) {
        if (h->chunk[i].kind == CHUNK_FREE) {
            i++;
            continue;
        }
        uint32_t j = i;
        while (j < h->nchunks && h->chunk[j].kind != CHUNK_FREE)
            j++;
        int err = map(arg, h->base + (size_t)i * HEAP_CHUNK, (size_t)(j - i) * HEAP_CHUNK);
        if (err)
            return err;
        i = j;
    }
    h->hook[h->nhooks].map = map;
    h->hook[h->nhooks].unmap = unmap;
    h->hook[h->nhooks].arg = arg;
    h->nhooks++;
    return 0;
}

void heap_remove_hook(struct heap *h, void *arg)
{
    for (int i = 0; i < h->nhooks; i++) {
        if (h->hook[i].arg == arg) {
            memmove(&h->hook[i], &h->hook[i + 1], (size_t)(h->nhooks - i - 1) * sizeof(h->hook[0]));
            h->nhooks--;
            return;
        }
    }
}

void heap_range(const struct heap *h, void **base, size_t *len)
{
    *base = h->base;
    *len = h->size;
}

const struct heap_stats *heap_stats(const struct heap *h)
{
    return &h->stats;
}

struct heap_stats *heap_stats_mut(struct heap *h)
{
    return &h->stats;
}

bool heap_is_huge(const struct heap *h)
{
    return h->stats.huge_chunks > 0;
}

uint32_t heap_new_tag(struct heap *h)
{
    uint32_t t = h->next_tag++;
    if (h->next_tag == 0)
        h->next_tag = 1;
    return t;
}

/* Maps chunks [first, first + n) read-write; hugepages first when allowed. */
static int map_chunks(struct heap *h, uint32_t first, uint32_t n, uint8_t *huge)
{
    void *addr = h->base + (size_t)first * HEAP_CHUNK;
    size_t len = (size_t)n * HEAP_CHUNK;
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_POPULATE;
    *huge = 0;
    if (h->huge_mode == CONFIG_HUGE_ON || (h->huge_mode == CONFIG_HUGE_AUTO && !h->huge_failed)) {
        void *p = mmap(addr, len, PROT_READ | PROT_WRITE, flags | MAP_HUGETLB | MAP_HUGE_2MB, -1, 0);
        if (p != MAP_FAILED) {
            *huge = 1;
            goto mapped;
        }
        if (h->huge_mode == CONFIG_HUGE_ON) {
            log_error("heap: no free 2 MiB hugepages (hugepages: on); reserve some with demi-hugepages "
                      "(scripts/hugepages.sh in the source tree)");
            return ENOMEM;
        }
        h->huge_failed = true;
        log_once(LOGL_WARN, "heap: no free 2 MiB hugepages; I/O memory uses 4 KiB pages "
                            "(demi-hugepages, scripts/hugepages.sh in the source tree, reserves "
                            "hugepages; HUGEPAGES=off silences this)");
    }
    if (mmap(addr, len, PROT_READ | PROT_WRITE, flags, -1, 0) == MAP_FAILED)
        return ENOMEM;
mapped:
    UNPOISON(addr, len);
    for (int i = 0; i < h->nhooks; i++) {
        int err = h->hook[i].map(h->hook[i].arg, addr, len);
        if (err) {
            while (i-- > 0)
                if (h->hook[i].unmap)
                    h->hook[i].unmap(h->hook[i].arg, addr, len);
            mmap(addr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
            return err;
        }
    }
    h->stats.chunks_mapped += n;
    if (*huge)
        h->stats.huge_chunks += n;
    return 0;
}

static void unmap_chunks(struct heap *h, uint32_t first, uint32_t n)
{
    void *addr = h->base + (size_t)first * HEAP_CHUNK;
    size_t len = (size_t)n * HEAP_CHUNK;
    for (int i = 0; i < h->nhooks; i++)
        if (h->hook[i].unmap)
            h->hook[i].unmap(h->hook[i].arg, addr, len);
    UNPOISON(addr, len);
    /* Replacing the mapping returns the memory and keeps the reservation. */
    mmap(addr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
    h->stats.chunks_mapped -= n;
    if (h->chunk[first].huge)
        h->stats.huge_chunks -= n;
}

/* First run of @n free chunks, or UINT32_MAX. */
static uint32_t find_free_run(const struct heap *h, uint32_t n)
{
    uint32_t run = 0;
    for (uint32_t i = 0; i < h->nchunks; i++) {
        run = h->chunk[i].kind == CHUNK_FREE ? run + 1 : 0;
        if (run == n)
            return i + 1 - n;
    }
    return UINT32_MAX;
}

static void partial_push(struct heap *h, uint32_t ci)
{
    struct heap_chunk *c = &h->chunk[ci];
    c->prev_partial = 0;
    c->next_partial = h->partial[c->cls];
    if (c->next_partial)
        h->chunk[c->next_partial - 1].prev_partial = ci + 1;
    h->partial[c->cls] = ci + 1;
}

static void partial_remove(struct heap *h, uint32_t ci)
{
    struct heap_chunk *c = &h->chunk[ci];
    if (c->prev_partial)
        h->chunk[c->prev_partial - 1].next_partial = c->next_partial;
    else
        h->partial[c->cls] = c->next_partial;
    if (c->next_partial)
        h->chunk[c->next_partial - 1].prev_partial = c->prev_partial;
    c->next_partial = c->prev_partial = 0;
}

static struct heap_blk *fail(struct heap *h, int err)
{
    h->stats.failed++;
    errno = err;
    return NULL;
}

static struct heap_blk *alloc_large(struct heap *h, size_t size)
{
    size_t n64 = (size + HEAP_CHUNK - 1) / HEAP_CHUNK;
    if (n64 > h->nchunks)
        return fail(h, ENOMEM);
    uint32_t n = (uint32_t)n64;
    uint32_t first = find_free_run(h, n);
    if (first == UINT32_MAX)
        return fail(h, ENOMEM);
    struct heap_blk *b = calloc(1, sizeof(*b));
    if (!b)
        return fail(h, ENOMEM);
    uint8_t huge;
    if (map_chunks(h, first, n, &huge)) {
        free(b);
        return fail(h, ENOMEM);
    }
    struct heap_chunk *c = &h->chunk[first];
    c->kind = CHUNK_LARGE;
    c->span = n;
    c->huge = huge;
    c->nblocks = 1;
    c->nfree = 0;
    c->blk = b;
    for (uint32_t i = 1; i < n; i++) {
        h->chunk[first + i].kind = CHUNK_TAIL;
        h->chunk[first + i].head = first;
    }
    b->refs = 1;
    b->chunk = first;
    h->stats.allocs++;
    h->stats.bytes_in_use += (size_t)n * HEAP_CHUNK;
    return b;
}

static int new_small_chunk(struct heap *h, unsigned cls)
{
    uint32_t ci = find_free_run(h, 1);
    if (ci == UINT32_MAX)
        return ENOMEM;
    uint32_t nblocks = (uint32_t)(HEAP_CHUNK >> (HEAP_MIN_SHIFT + cls));
    struct heap_blk *blk = calloc(nblocks, sizeof(*blk));
    if (!blk)
        return ENOMEM;
    uint8_t huge;
    if (map_chunks(h, ci, 1, &huge)) {
        free(blk);
        return ENOMEM;
    }
    struct heap_chunk *c = &h->chunk[ci];
    memset(c, 0, sizeof(*c));
    c->kind = CHUNK_SMALL;
    c->cls = (uint8_t)cls;
    c->huge = huge;
    c->nblocks = c->nfree = nblocks;
    c->blk = blk;
    for (uint32_t i = 0; i < nblocks; i++)
        blk[i].chunk = ci;
    POISON(h->base + (size_t)ci * HEAP_CHUNK, HEAP_CHUNK); /* each block is unpoisoned when handed out */
    h->class_chunks[cls]++;
    partial_push(h, ci);
    return 0;
}

struct heap_blk *heap_alloc(struct heap *h, size_t size)
{
    if (size == 0)
        return fail(h, EINVAL);
    if (size > HEAP_MAX_SMALL)
        return alloc_large(h, size);
    unsigned cls = size <= 64 ? 0 : (unsigned)(64 - __builtin_clzll(size - 1)) - HEAP_MIN_SHIFT;
    if (!h->partial[cls] && new_small_chunk(h, cls))
        return fail(h, ENOMEM);
    uint32_t ci = h->partial[cls] - 1;
    struct heap_chunk *c = &h->chunk[ci];
    uint32_t bi;
    if (c->free_head) {
        bi = c->free_head - 1;
        c->free_head = c->blk[bi].next;
    } else {
        bi = c->bump++;
    }
    if (--c->nfree == 0)
        partial_remove(h, ci);
    struct heap_blk *b = &c->blk[bi];
    b->refs = 1;
    b->tag = 0;
    b->next = 0;
    UNPOISON(h->base + (size_t)ci * HEAP_CHUNK + ((size_t)bi << (HEAP_MIN_SHIFT + cls)),
             (size_t)1 << (HEAP_MIN_SHIFT + cls));
    h->stats.allocs++;
    h->stats.bytes_in_use += (size_t)1 << (HEAP_MIN_SHIFT + cls);
    return b;
}

void heap_set_reserve(struct heap *h, size_t bytes)
{
    size_t n = bytes / HEAP_CHUNK + (bytes % HEAP_CHUNK != 0);
    h->reserve_chunks = n > h->nchunks ? h->nchunks : (uint32_t)n;
}

struct heap_blk *heap_alloc_app(struct heap *h, size_t size)
{
    if (size == 0)
        return fail(h, EINVAL);
    /* Chunks this allocation maps: none if its class has a chunk with a
     * free block; a large one takes whole chunks (too many for the heap:
     * heap_alloc says ENOMEM as it always did). */
    uint64_t need;
    if (size > HEAP_MAX_SMALL) {
        need = size / HEAP_CHUNK + (size % HEAP_CHUNK != 0);
    } else {
        unsigned cls = size <= 64 ? 0 : (unsigned)(64 - __builtin_clzll(size - 1)) - HEAP_MIN_SHIFT;
        need = h->partial[cls] ? 0 : 1;
    }
    uint64_t unmapped = h->nchunks - h->stats.chunks_mapped;
    if (need && unmapped >= need && unmapped < need + h->reserve_chunks) {
        h->stats.app_refused++;
        log_once(LOGL_WARN, "heap: an application allocation was refused (ENOMEM): the heap is within its reserve "
                            "(libdemi.heap_reserve) of its size (libdemi.heap_size); the rest is kept for receiving");
        return fail(h, ENOMEM);
    }
    return heap_alloc(h, size);
}

void heap_free_blk(struct heap *h, struct heap_blk *b)
{
    uint32_t ci = b->chunk;
    struct heap_chunk *c = &h->chunk[ci];
    b->tag = 0;
    if (c->release) {
        c->release(c->release_arg, b); /* carved: back to its device */
        return;
    }
    h->stats.frees++;
    if (c->kind == CHUNK_LARGE) {
        uint32_t n = c->span;
        h->stats.bytes_in_use -= (size_t)n * HEAP_CHUNK;
        unmap_chunks(h, ci, n);
        free(c->blk);
        for (uint32_t i = 0; i < n; i++)
            memset(&h->chunk[ci + i], 0, sizeof(*c));
        return;
    }
    h->stats.bytes_in_use -= (size_t)1 << (HEAP_MIN_SHIFT + c->cls);
    uint32_t bi = (uint32_t)(b - c->blk);
    POISON(h->base + (size_t)ci * HEAP_CHUNK + ((size_t)bi << (HEAP_MIN_SHIFT + c->cls)),
           (size_t)1 << (HEAP_MIN_SHIFT + c->cls));
    b->next = c->free_head;
    c->free_head = bi + 1;
    if (c->nfree++ == 0)
        partial_push(h, ci);
    /* Give an empty chunk back if its class keeps another one. */
    if (c->nfree == c->nblocks && h->class_chunks[c->cls] > 1) {
        partial_remove(h, ci);
        h->class_chunks[c->cls]--;
        unmap_chunks(h, ci, 1);
        free(c->blk);
        memset(c, 0, sizeof(*c));
    }
}

struct heap_blk *heap_find(const struct heap *h, const void *p, size_t len)
{
    uintptr_t off = (uintptr_t)p - (uintptr_t)h->base;
    if (off >= h->size || len > h->size - off)
        return NULL;
    uint32_t ci = (uint32_t)(off >> HEAP_CHUNK_SHIFT);
    const struct heap_chunk *c = &h->chunk[ci];
    if (c->kind == CHUNK_TAIL) {
        ci = c->head;
        c = &h->chunk[ci];
    }
    if (c->kind == CHUNK_LARGE) {
        size_t start = (size_t)ci * HEAP_CHUNK;
        if (off + len > start + (size_t)c->span * HEAP_CHUNK)
            return NULL;
        return c->blk->refs ? c->blk : NULL;
    }
    if (c->kind != CHUNK_SMALL)
        return NULL;
    unsigned shift = HEAP_MIN_SHIFT + c->cls;
    size_t in = off & (HEAP_CHUNK - 1);
    uint32_t bi = (uint32_t)(in >> shift);
    if (bi >= c->bump || in + len > ((size_t)bi + 1) << shift)
        return NULL;
    struct heap_blk *b = &c->blk[bi];
    return b->refs ? b : NULL;
}

void *heap_blk_data(const struct heap *h, const struct heap_blk *b)
{
    const struct heap_chunk *c = &h->chunk[b->chunk];
    uint8_t *start = h->base + (size_t)b->chunk * HEAP_CHUNK;
    if (c->kind == CHUNK_LARGE)
        return start;
    return start + ((size_t)(b - c->blk) << (HEAP_MIN_SHIFT + c->cls));
}

size_t heap_blk_cap(const struct heap *h, const struct heap_blk *b)
{
    const struct heap_chunk *c = &h->chunk[b->chunk];
    if (c->kind == CHUNK_LARGE)
        return (size_t)c->span * HEAP_CHUNK;
    return (size_t)1 << (HEAP_MIN_SHIFT + c->cls);
}

void *heap_carve(struct heap *h, unsigned shift, heap_release_fn release, void *arg)
{
    if (!h || !release || shift < HEAP_MIN_SHIFT || shift > HEAP_MAX_SHIFT) {
        errno = EINVAL;
        return NULL;
    }
    unsigned cls = shift - HEAP_MIN_SHIFT;
    if (new_small_chunk(h, cls)) {
        errno = ENOMEM;
        return NULL;
    }
    /* new_small_chunk put it first on the class's partial list: take it
     * off, and hand every block to the device at once. */
    uint32_t ci = h->partial[cls] - 1;
    struct heap_chunk *c = &h->chunk[ci];
    partial_remove(h, ci);
    h->class_chunks[cls]--;
    c->nfree = 0;
    c->bump = c->nblocks;
    c->release = release;
    c->release_arg = arg;
    UNPOISON(h->base + (size_t)ci * HEAP_CHUNK, HEAP_CHUNK); /* a device's buffers */
    return h->base + (size_t)ci * HEAP_CHUNK;
}

struct heap_blk *heap_carved_blk(const struct heap *h, const void *p)
{
    uintptr_t off = (uintptr_t)p - (uintptr_t)h->base;
    if (off >= h->size)
        return NULL;
    const struct heap_chunk *c = &h->chunk[off >> HEAP_CHUNK_SHIFT];
    if (c->kind != CHUNK_SMALL || !c->release)
        return NULL;
    return &c->blk[(off & (HEAP_CHUNK - 1)) >> (HEAP_MIN_SHIFT + c->cls)];
}

uint32_t heap_blk_index(const struct heap *h, const struct heap_blk *b)
{
    return (uint32_t)(b - h->chunk[b->chunk].blk);
}

int heap_uncarve(struct heap *h, void *chunk)
{
    uintptr_t off = (uintptr_t)chunk - (uintptr_t)h->base;
    if (off >= h->size || (off & (HEAP_CHUNK - 1)))
        return EINVAL;
    uint32_t ci = (uint32_t)(off >> HEAP_CHUNK_SHIFT);
    struct heap_chunk *c = &h->chunk[ci];
    if (c->kind != CHUNK_SMALL || !c->release)
        return EINVAL;
    for (uint32_t i = 0; i < c->nblocks; i++)
        if (c->blk[i].refs)
            return EBUSY;
    unmap_chunks(h, ci, 1);
    free(c->blk);
    memset(c, 0, sizeof(*c));
    return 0;
}
