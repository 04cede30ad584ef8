/*
 * Scatter-gather arrays over the heap. The application owns one reference
 * to every distinct block of an sga it holds, marked by the sga's tag (kept
 * in sga_buf); demi_sgafree drops exactly those, so a double free, or
 * freeing an array that libdemi never gave out, is detected, not obeyed.
 */
#ifndef DEMI_MEM_SGA_H
#define DEMI_MEM_SGA_H

#include "mem/heap.h"

#include <demi/types.h>

/* Largest single segment demi_sgaalloc hands out. */
#define MEM_SEG_MAX ((size_t)16 << 20)
/* Largest array a push takes (16 segments of 16 MiB, also a log record's
 * limit). */
#define MEM_PUSH_MAX ((uint64_t)DEMI_SGARRAY_MAXSIZE * MEM_SEG_MAX)

/* Allocates @size bytes as segments of at most MEM_SEG_MAX. On failure @out
 * is empty and the errno is returned (ENOMEM, EINVAL for too large). */
int mem_sga_alloc(struct heap *h, size_t size, demi_sgarray_t *out);

/* Drops the application's references. 0, or EINVAL (changes nothing). */
int mem_sga_free(struct heap *h, const demi_sgarray_t *sga);

/* Marks the copy of a pushed array that the push's result carries, so that
 * demi_sgafree refuses it (EINVAL) instead of dropping the reference the
 * application still holds through the array it pushed. Only sga_buf
 * changes, and only if it is a tag of ours; the segments stay as pushed. */
void mem_sga_mark_result(demi_sgarray_t *sga);

/* Starts an application-owned array (zeroes it, gives it a fresh tag). */
void mem_sga_begin(struct heap *h, demi_sgarray_t *sga);

/* Appends a segment [data, data + len) of block @b to an array from
 * mem_sga_begin. The caller's reference on @b passes to the application if
 * @b is not yet in this array; otherwise the caller's reference is dropped. */
void mem_sga_add(struct heap *h, demi_sgarray_t *sga, struct heap_blk *b, void *data, uint32_t len);

/* The block holding segment @i of @sga (any live block, owned or not). */
struct heap_blk *mem_seg_blk(const struct heap *h, const demi_sgaseg_t *seg);

/* Total bytes of @sga, or -1 if malformed (numsegs > max, NULL buffer with
 * a length). */
int64_t mem_sga_len(const demi_sgarray_t *sga);

/* Checks an array the application pushes: 1 to DEMI_SGARRAY_MAXSIZE
 * segments, at most MEM_PUSH_MAX bytes in all and more than 0; a segment
 * with a length has a buffer, and if its bytes touch the heap's reservation
 * they lie inside one live block that an application array holds (so no
 * freed block, block of another allocation, or device pool buffer is ever
 * read). Zero-length segments are not looked at. 0 or EINVAL. */
int mem_sga_check_push(const struct heap *h, const demi_sgarray_t *sga);

#endif
