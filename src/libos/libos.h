/*
 * The libOS interface: one ops table per kind of device, in the manner of
 * Redis's ConnectionType. The API layer validates arguments, allocates the
 * queue descriptor and the operation's task, then calls down here.
 *
 * Task contract for accept/connect/push/pop: on return 0 the libOS owns the
 * task and will complete it (sched_complete/sched_fail), possibly before
 * returning; on an error return the task is untouched and the caller frees
 * it. Completing a task that still holds buffer references is the libOS's
 * job, cancellation on close included.
 */
#ifndef DEMI_LIBOS_LIBOS_H
#define DEMI_LIBOS_LIBOS_H

#include "core/runtime.h"

#include <demi/libos.h>
#include <demi/types.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>

struct libos;

struct libos_ops {
    const char *name;
    /* @type is SOCK_STREAM or SOCK_DGRAM (checked by the caller). */
    int (*socket)(struct libos *l, int type, void **q_out);
    int (*bind)(struct libos *l, void *q, const struct sockaddr_in *addr);
    int (*listen)(struct libos *l, void *q, int backlog);
    int (*accept)(struct libos *l, void *q, struct sched_task *t);
    int (*connect)(struct libos *l, void *q, const struct sockaddr_in *addr, struct sched_task *t);
    /* @to is NULL for demi_push. @sga is validated: 1..MAXSIZE segments,
     * no NULL buffer with a length, total length > 0. */
    int (*push)(struct libos *l, void *q, const demi_sgarray_t *sga, const struct sockaddr_in *to,
                struct sched_task *t);
    int (*pop)(struct libos *l, void *q, struct sched_task *t);
    /* Closes at once; pending operations fail with ECANCELED. */
    int (*close)(struct libos *l, void *q);
    int (*setsockopt)(struct libos *l, void *q, int level, int name, const void *val, socklen_t len);
    int (*getsockopt)(struct libos *l, void *q, int level, int name, void *val, socklen_t *len);
    int (*getpeername)(struct libos *l, void *q, struct sockaddr_in *out);
    int (*getsockname)(struct libos *l, void *q, struct sockaddr_in *out);
    /* Closes every queue (no results are delivered) and frees the libOS. */
    void (*destroy)(struct libos *l);
    /* Storage libOSes only (NULL elsewhere): opens the log at @path.
     * @flags are checked by the caller: O_RDONLY or O_RDWR, and O_CREAT,
     * O_EXCL, O_TRUNC. Socket calls on such a queue give ENOTSOCK. */
    int (*open)(struct libos *l, const char *path, int flags, mode_t mode, void **q_out);
    /* Optional: adds the libOS's device counters to @st. */
    void (*stats)(struct libos *l, demi_stats_t *st);
    /* Memory libOS only (NULL elsewhere): creates the pipe @name (@create)
     * or opens its other end. */
    int (*pipe)(struct libos *l, const char *name, bool create, void **q_out);
};

struct libos {
    const struct libos_ops *ops;
    struct runtime *rt;
};

/* The socket calls of a libOS without sockets (nosock.c): socket gives
 * EOPNOTSUPP, the others ENOTSOCK. */
int nosock_socket(struct libos *l, int type, void **q_out);
int nosock_bind(struct libos *l, void *q, const struct sockaddr_in *a);
int nosock_listen(struct libos *l, void *q, int backlog);
int nosock_accept(struct libos *l, void *q, struct sched_task *t);
int nosock_connect(struct libos *l, void *q, const struct sockaddr_in *a, struct sched_task *t);
int nosock_setsockopt(struct libos *l, void *q, int level, int name, const void *val, socklen_t len);
int nosock_getsockopt(struct libos *l, void *q, int level, int name, void *val, socklen_t *len);
int nosock_name(struct libos *l, void *q, struct sockaddr_in *out);

/* Creates the libOS called @name on @rt. ENOTSUP (with one log line saying
 * why) for a libOS that this build or machine cannot run; EINVAL for an
 * unknown name. */
int libos_create(const char *name, struct runtime *rt, struct libos **out);

/* Constructors, one per libOS (registry.c lists them). */
int catnap_create(struct runtime *rt, struct libos **out);
int catpowder_create(struct runtime *rt, struct libos **out);
int catnip_create(struct runtime *rt, struct libos **out);
/* The storage libOS (a log over io_uring): created by demi_open beside the
 * network libOS, never named by LIBOS. ENOTSUP where io_uring is off. */
int cattree_create(struct runtime *rt, struct libos **out);
/* The memory libOS (pipes between the process's instances): created by the
 * first demi_create_pipe or demi_open_pipe. */
int catmem_create(struct runtime *rt, struct libos **out);

#endif
