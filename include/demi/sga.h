/*
 * libdemi: scatter-gather arrays from the DMA-capable heap.
 *
 * Source-compatible with Demikernel's <demi/sga.h>.
 */
#ifndef DEMI_SGA_H_IS_INCLUDED
#define DEMI_SGA_H_IS_INCLUDED

#include <demi/types.h>

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Allocates a scatter-gather array of @p size bytes from the calling
 * thread's DMA-capable heap. Up to 16 MiB comes back as one segment; larger
 * sizes are split into 16 MiB segments (at most DEMI_SGARRAY_MAXSIZE).
 *
 * @param size Bytes wanted. 0 gives an empty array (sga_numsegs == 0,
 *             sga_buf == NULL), which demi_sgafree() accepts.
 * @return The array, owned by the caller. On failure the array is empty and
 *         errno is set: ENOMEM (heap exhausted), EINVAL (too large), EPERM
 *         (demi_init() not called on this thread).
 */
extern demi_sgarray_t demi_sgaalloc(size_t size);

/**
 * Releases the application's reference to every segment of @p sga. Buffers
 * still referenced by a pending push stay alive until the libOS is done.
 *
 * @return 0, or EINVAL for NULL, an array not from libdemi, or one already
 *         freed (a double free is detected, never a crash).
 */
extern int demi_sgafree(demi_sgarray_t *sga);

#ifdef __cplusplus
}
#endif

#endif /* DEMI_SGA_H_IS_INCLUDED */
