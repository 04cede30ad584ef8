/*
 * Application-owned scatter-gather arrays (see sga.h).
 */
#include "mem/sga.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#define SGA_MAGIC 0xd3e1ull
/* Set in a push result's sga_buf (between the magic and the tag, where an
 * owned array has zeroes): ptr_to_tag refuses it. */
#define SGA_RESULT_BIT (1ull << 32)

static void *tag_to_ptr(uint32_t tag)
{
    return (void *)(uintptr_t)((SGA_MAGIC << 48) | tag);
}

static int ptr_to_tag(const void *p, uint32_t *tag)
{
    uint64_t v = (uint64_t)(uintptr_t)p;
    if (v >> 48 != SGA_MAGIC || (uint32_t)v == 0 || (v >> 32 & 0xffff) != 0)
        return EINVAL;
    *tag = (uint32_t)v;
    return 0;
}

struct heap_blk *mem_seg_blk(const struct heap *h, const demi_sgaseg_t *seg)
{
    if (!seg->sgaseg_buf)
        return NULL;
    struct heap_blk *b = heap_find(h, seg->sgaseg_buf, seg->sgaseg_len);
    if (!b && seg->sgaseg_len == 0) /* a fully consumed segment may point just past its block */
        b = heap_find(h, (const uint8_t *)seg->sgaseg_buf - 1, 1);
    return b;
}

int64_t mem_sga_len(const demi_sgarray_t *sga)
{
    if (sga->sga_numsegs > DEMI_SGARRAY_MAXSIZE)
        return -1;
    int64_t total = 0;
    for (uint32_t i = 0; i < sga->sga_numsegs; i++) {
        const demi_sgaseg_t *s = &sga->sga_segs[i];
        if (!s->sgaseg_buf && s->sgaseg_len)
            return -1;
        total += s->sgaseg_len;
    }
    return total;
}

int mem_sga_check_push(const struct heap *h, const demi_sgarray_t *sga)
{
    if (!sga || sga->sga_numsegs == 0 || sga->sga_numsegs > DEMI_SGARRAY_MAXSIZE)
        return EINVAL;
    void *base;
    size_t size;
    heap_range(h, &base, &size);
    uintptr_t lo = (uintptr_t)base, hi = lo + size;
    uint64_t total = 0;
    for (uint32_t i = 0; i < sga->sga_numsegs; i++) {
        const demi_sgaseg_t *s = &sga->sga_segs[i];
        uint32_t len = s->sgaseg_len;
        if (len == 0)
            continue; /* nothing of it is read */
        uintptr_t p = (uintptr_t)s->sgaseg_buf;
        if (!p || len > MEM_PUSH_MAX || p + len < p)
            return EINVAL;
        total += len;
        if (total > MEM_PUSH_MAX)
            return EINVAL;
        if (p + len <= lo || p >= hi)
            continue; /* foreign memory: the libOS sends or copies it */
        /* In the heap: one block, live, and the application's. A block
         * with no tag is held by the stack or a device only (a frame in a
         * receive queue, a pool buffer), or the application freed it. */
        const struct heap_blk *b = heap_find(h, s->sgaseg_buf, len);
        if (!b || b->tag == 0)
            return EINVAL;
    }
    return total == 0 ? EINVAL : 0;
}

void mem_sga_mark_result(demi_sgarray_t *sga)
{
    uint32_t tag;
    if (ptr_to_tag(sga->sga_buf, &tag) == 0)
        sga->sga_buf = (void *)((uintptr_t)tag_to_ptr(tag) | (uintptr_t)SGA_RESULT_BIT);
}

void mem_sga_begin(struct heap *h, demi_sgarray_t *sga)
{
    /* Only the header and the address: segments past sga_numsegs are not
     * part of the array, and zeroing all sixteen costs on every pop. */
    sga->sga_buf = tag_to_ptr(heap_new_tag(h));
    sga->sga_numsegs = 0;
    memset(&sga->sga_addr, 0, sizeof(sga->sga_addr));
}

void mem_sga_add(struct heap *h, demi_sgarray_t *sga, struct heap_blk *b, void *data, uint32_t len)
{
    uint32_t tag = (uint32_t)(uintptr_t)sga->sga_buf;
    demi_sgaseg_t *s = &sga->sga_segs[sga->sga_numsegs++];
    s->sgaseg_buf = data;
    s->sgaseg_len = len;
    if (b->tag == tag)
        heap_unref(h, b); /* the application holds one reference per block */
    else
        b->tag = tag;
}

int mem_sga_alloc(struct heap *h, size_t size, demi_sgarray_t *out)
{
    memset(out, 0, sizeof(*out)); /* an empty array on every failure path */
    if (size == 0)
        return 0;
    size_t nsegs = size / MEM_SEG_MAX + (size % MEM_SEG_MAX != 0); /* no overflow near SIZE_MAX */
    if (nsegs > DEMI_SGARRAY_MAXSIZE)
        return EINVAL;
    struct heap_blk *blks[DEMI_SGARRAY_MAXSIZE];
    size_t left = size;
    for (size_t i = 0; i < nsegs; i++) {
        size_t n = left < MEM_SEG_MAX ? left : MEM_SEG_MAX;
        blks[i] = heap_alloc_app(h, n);
        if (!blks[i]) {
            int err = errno;
            while (i-- > 0)
                heap_unref(h, blks[i]);
            return err;
        }
        left -= n;
    }
    mem_sga_begin(h, out);
    left = size;
    for (size_t i = 0; i < nsegs; i++) {
        size_t n = left < MEM_SEG_MAX ? left : MEM_SEG_MAX;
        mem_sga_add(h, out, blks[i], heap_blk_data(h, blks[i]), (uint32_t)n);
        left -= n;
    }
    return 0;
}

int mem_sga_free(struct heap *h, const demi_sgarray_t *sga)
{
    if (!sga)
        return EINVAL;
    if (sga->sga_numsegs == 0)
        return 0;
    uint32_t tag;
    if (sga->sga_numsegs > DEMI_SGARRAY_MAXSIZE || ptr_to_tag(sga->sga_buf, &tag))
        return EINVAL;
    struct heap_blk *blks[DEMI_SGARRAY_MAXSIZE];
    for (uint32_t i = 0; i < sga->sga_numsegs; i++) {
        blks[i] = mem_seg_blk(h, &sga->sga_segs[i]);
        if (!blks[i] || blks[i]->tag != tag)
            return EINVAL;
    }
    for (uint32_t i = 0; i < sga->sga_numsegs; i++) {
        bool seen = false; /* a block may back several segments: release it once */
        for (uint32_t j = 0; j < i && !seen; j++)
            seen = blks[j] == blks[i];
        if (seen)
            continue;
        blks[i]->tag = 0;
        heap_unref(h, blks[i]);
    }
    return 0;
}
