/*
 * The DMA-capable heap: the only allocator of I/O memory. One contiguous
 * virtual reservation per heap, carved into 2 MiB chunks that are mapped on
 * demand (hugepages when available). A chunk serves one size class (64 B to
 * 1 MiB, powers of two) or is part of a large allocation. Any interior
 * pointer maps back to its block in O(1): (p - base) >> 21 names the chunk,
 * the class shift names the block. Block metadata lives outside the data.
 *
 * Every block carries a reference count (0 = free) and an allocation tag
 * (non-zero while the application holds the block through an sga). Heaps
 * belong to one runtime instance and one thread, so counts are plain
 * integers: no atomics on the data path.
 */
#ifndef DEMI_MEM_HEAP_H
#define DEMI_MEM_HEAP_H

#include "core/config.h" /* enum config_huge: the hugepages modes */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Built with AddressSanitizer: gcc defines __SANITIZE_ADDRESS__, clang
 * answers __has_feature(address_sanitizer) instead (and gcc before 14 has no
 * __has_feature, hence the nesting). Freed blocks are poisoned then. */
#if defined(__SANITIZE_ADDRESS__)
#define HEAP_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HEAP_ASAN 1
#endif
#endif

#define HEAP_CHUNK_SHIFT 21
#define HEAP_CHUNK       ((size_t)1 << HEAP_CHUNK_SHIFT)
#define HEAP_MIN_SHIFT   6
#define HEAP_MAX_SHIFT   20
#define HEAP_NCLASSES    (HEAP_MAX_SHIFT - HEAP_MIN_SHIFT + 1)
#define HEAP_MAX_SMALL   ((size_t)1 << HEAP_MAX_SHIFT)

struct heap_blk {
    uint32_t refs;  /* 0: free */
    uint32_t tag;   /* non-zero: owned by the application's sga with this tag */
    uint32_t chunk; /* owning chunk */
    uint32_t next;  /* free list: block index + 1, 0 ends */
};

struct heap_stats {
    uint64_t allocs;
    uint64_t frees;
    uint64_t failed; /* ENOMEM */
    uint64_t bytes_in_use;
    uint64_t chunks_mapped;
    uint64_t huge_chunks;
    uint64_t copied_bytes; /* foreign memory copied into the heap (push), tiny received TCP segments compacted */
    uint64_t app_refused;  /* heap_alloc_app refused: it would eat into the reserve */
};

/* Devices that must know the heap's memory (to register it for DMA) hook
 * in: map is called for every range mapped from then on, and may refuse
 * it (the allocation then fails); unmap, if set, just before a range goes. */
typedef int (*heap_map_fn)(void *arg, void *addr, size_t len);
typedef void (*heap_unmap_fn)(void *arg, void *addr, size_t len);

#define HEAP_MAX_HOOKS 4

/* A carved block's last reference went: its owner takes it back. */
typedef void (*heap_release_fn)(void *arg, struct heap_blk *b);

struct heap;

/* Reserves @size bytes (rounded up to 2 MiB) of address space; @huge_mode
 * is an enum config_huge (libdemi.hugepages). Returns 0, EINVAL
 * (size < 2 MiB), or ENOMEM. */
int heap_create(struct heap **out, size_t size, int huge_mode);
void heap_destroy(struct heap *h);

/* A block of at least @size bytes with refs = 1 and no tag. NULL with errno
 * ENOMEM (heap full) or EINVAL (size 0). */
struct heap_blk *heap_alloc(struct heap *h, size_t size);

/* The reserve: the last @bytes of the reservation (rounded up to whole
 * chunks) are kept for the stack. heap_alloc serves the stack's own needs
 * (received frames, header blocks, reassembly, pool refills) and may use
 * them; heap_alloc_app serves the application (demi_sgaalloc, copies of
 * pushed memory from outside the heap) and fails with ENOMEM rather than
 * map a chunk that would leave fewer than the reserve unmapped. So when one
 * party takes all it can, it is its own allocation that fails, and the
 * stack can still receive for every other connection. */
void heap_set_reserve(struct heap *h, size_t bytes);
struct heap_blk *heap_alloc_app(struct heap *h, size_t size);

/* The live block holding [p, p + len), or NULL if that range is not inside
 * one allocated block of this heap. */
struct heap_blk *heap_find(const struct heap *h, const void *p, size_t len);

void *heap_blk_data(const struct heap *h, const struct heap_blk *b);
size_t heap_blk_cap(const struct heap *h, const struct heap_blk *b);

static inline void heap_ref(struct heap_blk *b)
{
    b->refs++;
}

void heap_free_blk(struct heap *h, struct heap_blk *b);

/* Drops one reference; the block is freed when none are left. */
static inline void heap_unref(struct heap *h, struct heap_blk *b)
{
    if (--b->refs == 0)
        heap_free_blk(h, b);
}

/* A fresh non-zero allocation tag. */
uint32_t heap_new_tag(struct heap *h);

const struct heap_stats *heap_stats(const struct heap *h);
struct heap_stats *heap_stats_mut(struct heap *h);
bool heap_is_huge(const struct heap *h);
/* Adds a hook (ENOSPC beyond HEAP_MAX_HOOKS) and calls @map for every
 * range already mapped; if one fails, the hook is not added and its error
 * returned. heap_remove_hook takes it away (no unmap calls). */
int heap_add_hook(struct heap *h, heap_map_fn map, heap_unmap_fn unmap, void *arg);
void heap_remove_hook(struct heap *h, void *arg);

/* Carving: a fresh chunk of blocks of 2^@shift bytes (HEAP_MIN_SHIFT to
 * HEAP_MAX_SHIFT), all owned by a device (a DMA pool it fills by itself).
 * Such a block is free (refs 0) while the device holds it; the device
 * hands it out with heap_carved_take (refs 1), and when its last
 * reference goes it returns to the device through @release instead of to
 * the heap. Carved bytes do not count in bytes_in_use. Returns the
 * chunk's first byte, or NULL (errno ENOMEM or EINVAL). */
void *heap_carve(struct heap *h, unsigned shift, heap_release_fn release, void *arg);
/* The carved block at @p, or NULL if @p is not in a carved chunk. */
struct heap_blk *heap_carved_blk(const struct heap *h, const void *p);
static inline void heap_carved_take(struct heap_blk *b)
{
    b->refs = 1;
    b->tag = 0;
}
/* The block's index in its chunk (for the owner's own tables). */
uint32_t heap_blk_index(const struct heap *h, const struct heap_blk *b);
/* Gives a carved chunk back; EBUSY while a block of it is handed out. */
int heap_uncarve(struct heap *h, void *chunk);

/* Start and length of the reservation (for devices that register it whole). */
void heap_range(const struct heap *h, void **base, size_t *len);

#endif
