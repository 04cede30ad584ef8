/*
 * libdemi: waiting for queue tokens.
 *
 * Source-compatible with Demikernel's <demi/wait.h>. Waiting drives the
 * calling thread's scheduler: this is where libdemi does its I/O work.
 */
#ifndef DEMI_WAIT_H_IS_INCLUDED
#define DEMI_WAIT_H_IS_INCLUDED

#include <demi/types.h>

#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Waits for the operation named by @p qt and consumes its token.
 *
 * @param qr_out  Receives the result. A failed operation is still a result:
 *                qr_opcode is DEMI_OPC_FAILED and qr_ret holds its errno.
 * @param qt      Token from demi_push/pushto/pop/accept/connect.
 * @param timeout NULL waits forever; {0, 0} polls once; otherwise a relative
 *                interval.
 * @return 0, ETIMEDOUT (the token stays valid), EINVAL (NULL @p qr_out, a
 *         stale or unknown token, a malformed timeout).
 */
extern int demi_wait(demi_qresult_t *qr_out, demi_qtoken_t qt, const struct timespec *timeout);

/**
 * Waits for the first of @p num_qts operations to complete and consumes only
 * that token; its index goes to @p ready_offset.
 *
 * @return 0, ETIMEDOUT, or EINVAL (NULL pointers, num_qts < 1, a stale token).
 */
extern int demi_wait_any(demi_qresult_t *qr_out, int *ready_offset, const demi_qtoken_t qts[], int num_qts,
                         const struct timespec *timeout);

/**
 * Waits until at least one operation of this thread completes, then returns
 * up to @p num_qrs completed results (oldest first) and consumes their tokens.
 *
 * @return 0 with *num_qrs_out >= 1, ETIMEDOUT with *num_qrs_out == 0, or
 *         EINVAL.
 */
extern int demi_wait_next_n(demi_qresult_t *qr_out, int num_qrs, int *num_qrs_out, const struct timespec *timeout);

#ifdef __cplusplus
}
#endif

#endif /* DEMI_WAIT_H_IS_INCLUDED */
