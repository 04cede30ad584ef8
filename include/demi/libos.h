/*
 * libdemi: queue operations of PDPIX (a POSIX extension for kernel-bypass I/O).
 *
 * Source-compatible with Demikernel's <demi/libos.h>. Every function returns
 * 0 on success or a positive errno; none of them blocks (accept, connect,
 * push and pop hand back a queue token, completed later by demi_wait*()).
 * Every call is checked: NULL pointers, unknown queue descriptors and bogus
 * sizes give an error, never a crash. Any call made on a thread that has not
 * called demi_init() returns EPERM. See the man pages in man/man3.
 */
#ifndef DEMI_LIBOS_H_IS_INCLUDED
#define DEMI_LIBOS_H_IS_INCLUDED

#include <demi/types.h>

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Initialises libdemi for the calling thread: reads the configuration
 * (CONFIG_PATH, the environment), picks the network libOS (LIBOS, default
 * catnap) and sets up its scheduler and heap. Each thread that makes demi_*
 * calls initialises its own instance; instances share nothing.
 *
 * @param args May be NULL. argv is never parsed.
 * @return 0, EEXIST if this thread is already initialised, EINVAL for a bad
 *         configuration or an unknown LIBOS (one log line names the key),
 *         ENOENT/EACCES for an unreadable CONFIG_PATH file, ENOTSUP for a
 *         libOS this build or machine cannot run, ENOMEM.
 */
extern int demi_init(const struct demi_args *args);

/**
 * Creates a socket queue.
 *
 * @param sockqd_out Receives the new queue descriptor.
 * @param domain     AF_INET.
 * @param type       SOCK_STREAM (TCP) or SOCK_DGRAM (UDP).
 * @param protocol   0, or IPPROTO_TCP / IPPROTO_UDP matching @p type.
 * @return 0, or EINVAL (NULL @p sockqd_out), EAFNOSUPPORT (not AF_INET),
 *         ESOCKTNOSUPPORT (other types), EPROTONOSUPPORT, EMFILE, ENOMEM.
 */
extern int demi_socket(int *sockqd_out, int domain, int type, int protocol);

/**
 * Opens a log file as a queue (libdemi extension; the storage libOS,
 * cattree). demi_push() on it appends one record (all segments) and
 * completes once the record is durable; demi_pop() returns the next record
 * from the queue's read cursor, or an empty array (sga_numsegs == 0) at the
 * end of the log. Opening scans the log and keeps its longest valid
 * prefix: a torn record ends it (reported on stderr; truncated when opened
 * O_RDWR). Valid records after damage that no crash leaves make the open
 * fail with EUCLEAN, changing nothing, unless @p flags holds
 * DEMI_O_REPAIR. demi_close() closes it. See demi_open(3).
 *
 * @param qd_out   Receives the new queue descriptor.
 * @param pathname The log file.
 * @param flags    O_RDONLY or O_RDWR, optionally with O_CREAT, O_EXCL,
 *                 O_TRUNC (these three need O_RDWR), O_CLOEXEC (always
 *                 in effect) and DEMI_O_REPAIR.
 * @param mode     Permissions for a file that O_CREAT creates (as open(2)).
 * @return 0, or EINVAL (NULL pointers, other flags, O_WRONLY, a bad mode,
 *         not a regular file), ENOENT, EACCES, EISDIR, ENOTDIR, EEXIST,
 *         ENAMETOOLONG, ... (as open(2)), EBUSY (open for writing
 *         elsewhere), EBADMSG (not a libdemi log, or its header is
 *         corrupt), EUCLEAN (corrupt in the middle), ENOTSUP (io_uring is
 *         not available), EMFILE, ENOMEM.
 */
extern int demi_open(int *qd_out, const char *pathname, int flags, mode_t mode);

/**
 * @brief Creates a memory queue (a pipe) named @p name, for another
 *        instance of this process (another thread's) or this one to open.
 *
 * @details A pipe is a two-way message channel with two ends: this one,
 * and the one demi_open_pipe() gives. demi_push() on one end sends the
 * array's bytes, copied, as one message; demi_pop() on the other end
 * receives the oldest message as a new array of its own instance's heap.
 * Once the other end is closed and its messages taken, a pop completes
 * with an empty array and a push fails with EPIPE. See demi_create_pipe(3).
 *
 * @return 0, or EINVAL (NULL, or a name that is empty or longer than 255
 *         bytes), EEXIST (the name is in use), ENOMEM, EMFILE, EPERM (no
 *         demi_init on this thread).
 */
extern int demi_create_pipe(int *memqd_out, const char *name);

/**
 * @brief Opens the other end of the pipe @p name made by demi_create_pipe().
 *
 * @return 0, or EINVAL, ENOENT (no pipe has that name), EBUSY (its other
 *         end is already open), ENOMEM, EMFILE, EPERM.
 */
extern int demi_open_pipe(int *memqd_out, const char *name);

/**
 * demi_open() flag (libdemi's own, above every O_* bit of open(2) on every
 * Linux architecture): repair a log whose valid records continue after a
 * damaged one, by keeping only the records before the damage (O_RDWR cuts
 * the rest from the file; O_RDONLY only reads the records before it).
 * Without it, such an open fails with EUCLEAN and changes nothing.
 * See demi_open(3), "Opening and recovery".
 */
#define DEMI_O_REPAIR 0x40000000

/**
 * Makes a TCP socket queue passive.
 *
 * @param sockqd  Socket queue, bound or not (an unbound one gets an ephemeral port).
 * @param backlog Maximum pending connections (>= 0).
 * @return 0, or EBADF, EOPNOTSUPP (not TCP), EINVAL (negative backlog,
 *         already connected).
 */
extern int demi_listen(int sockqd, int backlog);

/**
 * Binds a local address. INADDR_ANY and port 0 (an ephemeral port, see
 * demi_getsockname()) are allowed.
 *
 * @return 0, or EBADF, EINVAL, EADDRINUSE, EADDRNOTAVAIL, EAFNOSUPPORT.
 */
extern int demi_bind(int sockqd, const struct sockaddr *addr, socklen_t size);

/**
 * Asynchronously accepts a connection. The result (DEMI_OPC_ACCEPT) carries
 * the new queue descriptor and the peer's address in qr_value.ares.
 *
 * @return 0 and a token in @p qt_out, or EBADF, EINVAL (not listening).
 */
extern int demi_accept(demi_qtoken_t *qt_out, int sockqd);

/**
 * Asynchronously connects. Completes as DEMI_OPC_CONNECT, or DEMI_OPC_FAILED
 * with ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH, ... in qr_ret. On UDP it sets
 * the default destination and completes at once.
 *
 * @return 0 and a token, or EBADF, EINVAL (NULL pointers, short @p size, a
 *         listening socket), EAFNOSUPPORT, EISCONN, EALREADY.
 */
extern int demi_connect(demi_qtoken_t *qt_out, int sockqd, const struct sockaddr *addr, socklen_t size);

/**
 * Closes a queue descriptor at once. On a connected TCP queue the close is
 * graceful: pushes already made are still sent before the FIN and complete
 * as usual (SO_LINGER with a zero timeout, or unread received data, makes
 * it abortive: RST). Other pending operations (pops, accepts, connects)
 * complete as DEMI_OPC_FAILED with ECANCELED; their tokens stay valid for
 * demi_wait*().
 *
 * @return 0, or EBADF.
 */
extern int demi_close(int qd);

/**
 * Asynchronously pushes a scatter-gather array (all its segments, in order).
 * libdemi takes its own reference on every heap buffer in @p sga, so the
 * application may call demi_sgafree() right after this returns: the data on
 * the wire is unaffected. Memory that is not from libdemi's heap is copied.
 *
 * The result (DEMI_OPC_PUSH) reports the pushed array in qr_value.sga for
 * bookkeeping only: it carries no ownership.
 *
 * @return 0 and a token, or EBADF, EINVAL (NULL pointers, empty or malformed
 *         array, a listening socket), EDESTADDRREQ (unconnected UDP socket),
 *         ENOTCONN, EMSGSIZE (UDP datagram over 65507 bytes).
 */
extern int demi_push(demi_qtoken_t *qt_out, int qd, const demi_sgarray_t *sga);

/**
 * Asynchronously sends a datagram to @p dest_addr (UDP). On a TCP socket the
 * address is ignored and this behaves as demi_push().
 *
 * @return as demi_push(), and EINVAL for a NULL address or short @p size,
 *         EAFNOSUPPORT for a non-AF_INET address.
 */
extern int demi_pushto(demi_qtoken_t *qt_out, int sockqd, const demi_sgarray_t *sga, const struct sockaddr *dest_addr,
                       socklen_t size);

/**
 * Asynchronously pops data. The result's qr_value.sga is owned by the
 * application (free it with demi_sgafree()); for UDP, sga_addr holds the
 * sender. A TCP peer's orderly close completes the pop with an empty array
 * (sga_numsegs == 0); a reset completes it as DEMI_OPC_FAILED, ECONNRESET.
 * A TCP pop returns what has arrived, up to 64 KiB.
 *
 * @return 0 and a token, or EBADF, EINVAL (NULL @p qt_out, a listening
 *         socket), ENOTCONN (TCP not connected).
 */
extern int demi_pop(demi_qtoken_t *qt_out, int qd);

/**
 * Sets a socket option (EINVAL for a NULL or short @p optval). Supported: SOL_SOCKET SO_REUSEADDR, SO_REUSEPORT,
 * SO_LINGER, SO_KEEPALIVE, SO_RCVBUF, SO_SNDBUF; IPPROTO_TCP TCP_NODELAY,
 * TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT. Others give ENOPROTOOPT.
 */
extern int demi_setsockopt(int qd, int level, int optname, const void *optval, socklen_t optlen);

/** Gets a socket option (the ones demi_setsockopt() takes, and SO_ERROR, SO_TYPE). */
extern int demi_getsockopt(int qd, int level, int optname, void *optval, socklen_t *optlen);

/** Returns the address of the connected peer: 0, or EBADF, EINVAL (NULL
 *  pointers), ENOTCONN. *addrlen is value-result; a short buffer gets a
 *  truncated address, as in POSIX. */
extern int demi_getpeername(int qd, struct sockaddr *addr, socklen_t *addrlen);

/** Returns the local address, including the port chosen for a port-0 bind:
 *  0, or EBADF, EINVAL. *addrlen is value-result, as for demi_getpeername(). */
extern int demi_getsockname(int qd, struct sockaddr *addr, socklen_t *addrlen);

/**
 * libdemi extension: data-path counters of the calling thread's libOSes,
 * since its demi_init.
 */
typedef struct demi_stats {
    /** Bytes libdemi itself copied between buffers on the data path:
     *  pushed memory that was not from libdemi's heap, and frames a device
     *  had to copy into or out of buffers of its own (AF_PACKET and AF_XDP
     *  always; a DPDK port that cannot chain buffers or receive into
     *  libdemi's). 0 on catnip's zero-copy paths. */
    uint64_t copied_bytes;
    /** Frames and bytes through the network device (catnip, catpowder;
     *  0 on catnap, where the kernel has the device). */
    uint64_t rx_frames, rx_bytes, tx_frames, tx_bytes;
    /** I/O memory allocated (heap bytes in use, in whole blocks). */
    uint64_t heap_bytes_in_use;
    /** The network libOS running: "catnap", "catnip", "catpowder". */
    char libos[16];
    /* Fields added later go here, at the end, so that the ones above keep
     * their offsets. The struct carries no size: a program built against
     * an older header, with a smaller struct, must be rebuilt. */
    /** cattree (logs from demi_open): records made durable by pushes, and
     *  their payload bytes; 0 if no log was opened. */
    uint64_t log_appends, log_append_bytes;
    /** cattree: flushes (fdatasync) that made records durable; with group
     *  commit one flush covers many records, so at most log_appends. */
    uint64_t log_flushes;
    /** cattree: records found in the logs at demi_open (the recovery
     *  scan), summed over every open. */
    uint64_t log_records_replayed;
    /** This instance's queue and how many instances share its device
     *  (libdemi.queue, libdemi.queues; 0 and 1 when alone, and on catnap,
     *  where the kernel steers). */
    uint32_t queue, queues;
    /** Frames that reached this instance's queue but belonged to another
     *  instance's flow, handed to it (out); frames other instances handed
     *  to this one (in). Both count ARP, of which every instance gets a
     *  copy. A frame handed out and not in was dropped (its owner's ring
     *  was full, or its owner gone): as a loss on the wire. */
    uint64_t frames_handed_out, frames_handed_in;
    /** Memory queues (demi_create_pipe): messages this instance pushed
     *  into pipes and popped from them. */
    uint64_t pipe_pushes, pipe_pops;
} demi_stats_t;

/** Fills @p stats: 0, or EINVAL (NULL), EPERM (no demi_init on this thread). */
extern int demi_get_stats(demi_stats_t *stats);

#ifdef __cplusplus
}
#endif

#endif /* DEMI_LIBOS_H_IS_INCLUDED */
