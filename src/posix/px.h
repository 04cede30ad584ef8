/*
 * libdemi-posix: the socket calls of an unmodified program, mapped onto
 * PDPIX. Internal header shared by the files of src/posix (not installed).
 *
 * Shape. Each socket the stack owns is a `struct px_sock`, named to the
 * program by a kernel descriptor we hold open as a placeholder (an
 * eventfd), so that our descriptors never collide with the kernel's:
 * px_fds[fd] says whether a descriptor is ours. Readiness is built over
 * completions: every readable socket keeps one pop posted and stages what
 * it returns (bounded), every writable one has a bounded amount of pushed
 * data in flight; the operations' results come back through
 * demi_wait_next_n() and px_dispatch() applies them.
 *
 * Re-entry. libdemi itself calls socket(), read(), epoll_wait() and their
 * kind (catnap is built on kernel sockets, DPDK's threads poll their own
 * descriptors): those calls land here too. While we are inside libdemi
 * px_inside is set and every call passes straight through to the kernel;
 * descriptors not in px_fds always do. This layer must never hand a call
 * on one of our descriptors to the kernel, nor one of the kernel's to the
 * stack.
 */
#ifndef DEMI_POSIX_PX_H
#define DEMI_POSIX_PX_H

#include <demi/libos.h>
#include <demi/sga.h>
#include <demi/wait.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

/* The kernel's functions, found with dlsym(RTLD_NEXT) at load time. */
struct px_real {
    int (*socket)(int, int, int);
    int (*close)(int);
    int (*bind)(int, const struct sockaddr *, socklen_t);
    int (*listen)(int, int);
    int (*accept)(int, struct sockaddr *, socklen_t *);
    int (*accept4)(int, struct sockaddr *, socklen_t *, int);
    int (*connect)(int, const struct sockaddr *, socklen_t);
    ssize_t (*read)(int, void *, size_t);
    ssize_t (*write)(int, const void *, size_t);
    ssize_t (*readv)(int, const struct iovec *, int);
    ssize_t (*writev)(int, const struct iovec *, int);
    ssize_t (*recv)(int, void *, size_t, int);
    ssize_t (*send)(int, const void *, size_t, int);
    ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
    ssize_t (*sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
    ssize_t (*recvmsg)(int, struct msghdr *, int);
    ssize_t (*sendmsg)(int, const struct msghdr *, int);
    int (*recvmmsg)(int, struct mmsghdr *, unsigned, int, struct timespec *);
    int (*sendmmsg)(int, struct mmsghdr *, unsigned, int);
    ssize_t (*__read_chk)(int, void *, size_t, size_t);
    ssize_t (*__recv_chk)(int, void *, size_t, size_t, int);
    ssize_t (*__recvfrom_chk)(int, void *, size_t, size_t, int, struct sockaddr *, socklen_t *);
    int (*shutdown)(int, int);
    int (*getsockname)(int, struct sockaddr *, socklen_t *);
    int (*getpeername)(int, struct sockaddr *, socklen_t *);
    int (*setsockopt)(int, int, int, const void *, socklen_t);
    int (*getsockopt)(int, int, int, void *, socklen_t *);
    int (*fcntl)(int, int, ...);
    int (*fcntl64)(int, int, ...);
    int (*ioctl)(int, unsigned long, ...);
    int (*dup)(int);
    int (*dup2)(int, int);
    int (*dup3)(int, int, int);
    int (*close_range)(unsigned, unsigned, int);
    ssize_t (*sendfile)(int, int, off_t *, size_t);
    ssize_t (*sendfile64)(int, int, off_t *, size_t);
    FILE *(*fdopen)(int, const char *);
    int (*epoll_ctl)(int, int, int, struct epoll_event *);
    int (*epoll_wait)(int, struct epoll_event *, int, int);
    int (*epoll_pwait)(int, struct epoll_event *, int, int, const sigset_t *);
    int (*poll)(struct pollfd *, nfds_t, int);
    int (*ppoll)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *);
    int (*__poll_chk)(struct pollfd *, nfds_t, int, size_t);
    int (*select)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
    int (*pselect)(int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *);
    int (*sigaction)(int, const struct sigaction *, struct sigaction *);
    __sighandler_t (*signal)(int, __sighandler_t);
};
extern struct px_real px_real;

/* Bounds per socket: staged received bytes (TCP) or datagrams (UDP), and
 * pushed bytes not yet completed. A pop is posted only while the staging
 * has room, so a program that does not read leaves the data in the stack's
 * own receive buffer and the window closes: the greedy peer waits. */
#define PX_RX_LIMIT   (256u * 1024)
#define PX_RX_DGRAMS  256u
#define PX_TX_LIMIT   (256u * 1024)
#define PX_ACCEPT_MAX 1024u

enum px_state {
    PX_NEW, /* socket() done, maybe bound */
    PX_LISTENING,
    PX_CONNECTING,
    PX_CONNECTED, /* TCP connected, or UDP with a default peer */
    PX_FAILED,    /* TCP connect failed: the error is in px_sock.err */
};

/* What an outstanding operation was for (px_op). */
enum px_kind { PX_OP_POP, PX_OP_PUSH, PX_OP_ACCEPT, PX_OP_CONNECT };

/* Data popped and not yet read: one popped array (one datagram on UDP). */
struct px_rx {
    struct px_rx *next;
    demi_sgarray_t sga;
    uint32_t seg, off; /* read position: segment, offset in it */
    uint32_t left;     /* bytes not yet read */
};

/* A connection accepted by the stack, not yet by the program. */
struct px_acc {
    struct px_acc *next;
    int qd;
    struct sockaddr_in addr;
};

struct px_epi;

struct px_sock {
    int fd; /* the placeholder; -1 once the program closed it */
    int qd;
    int type; /* SOCK_STREAM or SOCK_DGRAM */
    enum px_state state;
    bool nonblock;
    bool bound;
    bool eof;     /* TCP: the peer's FIN was popped */
    bool rd_shut; /* shutdown(SHUT_RD) */
    bool wr_shut; /* shutdown(SHUT_RDWR): writes fail with EPIPE */
    bool pop_posted, acc_posted, conn_posted;
    bool reset_told; /* the reset was reported by a read or write once */
    int err;         /* pending SO_ERROR (a failed connect) */
    int fatal;       /* the connection failed (ECONNRESET, ...) */
    unsigned ops;    /* operations outstanding: the socket lives while > 0 */
    struct px_rx *rx_head, *rx_tail;
    size_t rx_bytes;
    unsigned rx_count;
    struct px_acc *acc_head, *acc_tail;
    unsigned acc_count, backlog;
    size_t tx_inflight;
    uint64_t seq;        /* bumped by every completion: edge-triggered epoll */
    struct px_epi *epis; /* the epoll sets watching it */
    struct timeval rcvtimeo, sndtimeo;
};

/* ---- px_core.c ---- */

extern __thread int px_inside;
extern size_t px_nfds;
extern struct px_sock **px_fds;

/* 0 if the calling thread may use stack socket @fd, else the errno to
 * fail with (EPERM: another thread; EBADF: a forked child). */
int px_refuse(int fd);

/* Resolves the kernel's functions if the constructor has not yet. */
extern bool px_ready;
void px_ensure(void);
#define PX_ENSURE()                                                                                                    \
    do {                                                                                                               \
        if (__builtin_expect(!__atomic_load_n(&px_ready, __ATOMIC_ACQUIRE), 0))                                        \
            px_ensure();                                                                                               \
    } while (0)

/* The socket behind @fd when the calling thread may use it, else NULL:
 * not ours (pass through), or *refused set to the errno to fail with. */
static inline struct px_sock *px_sock_of(int fd, int *refused)
{
    *refused = 0;
    PX_ENSURE();
    if (px_inside || fd < 0 || (size_t)fd >= px_nfds)
        return NULL;
    struct px_sock *s = __atomic_load_n(&px_fds[fd], __ATOMIC_ACQUIRE);
    if (!s)
        return NULL;
    *refused = px_refuse(fd);
    return *refused ? NULL : s;
}

/* Logs @fmt once per call site (stderr, prefixed libdemi-posix). */
#define px_log_once(...)                                                                                               \
    do {                                                                                                               \
        static int px_said_;                                                                                           \
        if (!__atomic_exchange_n(&px_said_, 1, __ATOMIC_RELAXED))                                                      \
            px_log(__VA_ARGS__);                                                                                       \
    } while (0)
void px_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Sets errno to @e and returns -1. */
static inline int px_fail(int e)
{
    errno = e;
    return -1;
}

/* Harvests completed operations, waiting at most @timeout (NULL: 1 s
 * slices, never for ever): 0, or ETIMEDOUT when nothing completed. */
int px_drive(const struct timespec *timeout);
/* Posts the pop (or accept) a socket wants, if it has room for more. */
void px_want_input(struct px_sock *s);
/* Remembers an operation posted on @s (taking a reference on @s). */
int px_op_add(demi_qtoken_t qt, struct px_sock *s, enum px_kind kind, uint32_t bytes);
/* Frees a staged entry and its buffers. */
void px_rx_free(struct px_rx *r);
/* Readiness of @s as epoll bits (EPOLLIN, EPOLLOUT, EPOLLERR, ...). */
uint32_t px_events(const struct px_sock *s);
/* Signals delivered to the program's handlers (all of them, and those
 * whose handler was installed without SA_RESTART), counted by the wrapper
 * px_sigaction installs: a wait returns EINTR when one came. */
struct px_sigcount {
    uint64_t any, intr;
};
void px_sig_snapshot(struct px_sigcount *c);
/* The longest slice a wait may sleep in the stack before it looks for a
 * signal (ns): 50 ms once the program has a handler, else 1 s. */
uint64_t px_sig_slice_ns(void);

/* Waits until @done(@s) or the timeout @tv (zero: none) expires: 0,
 * EAGAIN on timeout, or EINTR when a handler without SA_RESTART ran. */
int px_block(struct px_sock *s, bool (*done)(const struct px_sock *), const struct timeval *tv);
/* Starts the stack on this thread if it is not running: 0 or an errno. */
int px_start(void);
bool px_started_here(void);

/* ---- px_event.c ---- */

/* Queues the epoll entries watching @s for a readiness check. */
void px_ev_notify(struct px_sock *s);
/* Drops every epoll entry of @s (it is being closed). */
void px_ev_forget(struct px_sock *s);
/* The descriptor @fd (an epoll set of ours, or not) is being closed. */
void px_ev_close_fd(int fd);

/* Monotonic time in nanoseconds. */
uint64_t px_now_ns(void);

#endif
