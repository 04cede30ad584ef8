/*
 * libdemi public types (PDPIX).
 *
 * Source-compatible with Demikernel's <demi/types.h>: same names, same
 * fields, same meaning. Compiles as C99 and as C++. Nothing in here may
 * depend on a libdemi private header.
 */
#ifndef DEMI_TYPES_H_IS_INCLUDED
#define DEMI_TYPES_H_IS_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include <netinet/in.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Maximum number of segments in a scatter-gather array. */
#define DEMI_SGARRAY_MAXSIZE 16

/**
 * An I/O queue token: names one asynchronous operation until demi_wait*()
 * returns its result. The high 32 bits carry a generation, so a token that
 * was already consumed is rejected (EINVAL), never confused with a new one.
 */
typedef uint64_t demi_qtoken_t;

/** One segment of a scatter-gather array. */
typedef struct demi_sgaseg {
    void *sgaseg_buf;    /**< Start of the segment's data. */
    uint32_t sgaseg_len; /**< Length of the segment in bytes. */
} demi_sgaseg_t;

/**
 * A scatter-gather array. Arrays returned by demi_sgaalloc() or by a pop are
 * owned by the application until it passes them to demi_sgafree().
 */
typedef struct demi_sgarray {
    void *sga_buf;                                /**< Reserved for libdemi (allocation tag). */
    uint32_t sga_numsegs;                         /**< Number of valid entries in sga_segs. */
    demi_sgaseg_t sga_segs[DEMI_SGARRAY_MAXSIZE]; /**< The segments. */
    struct sockaddr_in sga_addr;                  /**< Source address of a popped datagram. */
} demi_sgarray_t;

/** Opcode of a completed asynchronous operation. */
typedef enum demi_opcode {
    DEMI_OPC_INVALID = 0, /**< Invalid operation. */
    DEMI_OPC_PUSH,        /**< Push completed. */
    DEMI_OPC_POP,         /**< Pop completed. */
    DEMI_OPC_ACCEPT,      /**< Accept completed. */
    DEMI_OPC_CONNECT,     /**< Connect completed. */
    DEMI_OPC_CLOSE,       /**< Close completed. */
    DEMI_OPC_FAILED,      /**< Operation failed: qr_ret holds the errno. */
} demi_opcode_t;

/** Result of an accept. */
typedef struct demi_accept_result {
    int32_t qd;              /**< Queue descriptor of the new connection. */
    struct sockaddr_in addr; /**< Address of the remote peer. */
} demi_accept_result_t;

/** Result of an asynchronous operation, filled in by demi_wait*(). */
typedef struct demi_qresult {
    demi_opcode_t qr_opcode; /**< What completed (or DEMI_OPC_FAILED). */
    int32_t qr_qd;           /**< Queue descriptor the operation ran on. */
    demi_qtoken_t qr_qt;     /**< Token of the completed operation. */
    int64_t qr_ret;          /**< 0, or the positive errno of a failed operation. */
    union {
        demi_sgarray_t sga;        /**< Pushed or popped data. */
        demi_accept_result_t ares; /**< Accepted connection. */
    } qr_value;
} demi_qresult_t;

/** Callback type carried in struct demi_args (accepted, currently unused). */
typedef void (*demi_callback_t)(const char *, uint32_t, uint64_t);

/** Arguments to demi_init(). libdemi never parses argv: configuration comes
 *  from CONFIG_PATH and the environment. */
struct demi_args {
    int argc;                 /**< Number of command-line arguments. */
    char *const *argv;        /**< Command-line arguments (ignored). */
    demi_callback_t callback; /**< Reserved. */
};

#ifdef __cplusplus
}
#endif

#endif /* DEMI_TYPES_H_IS_INCLUDED */
