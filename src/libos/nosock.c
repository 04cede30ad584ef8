/*
 * Socket calls on a queue that is not a socket (a log, a memory queue):
 * the libOSes without sockets fill their ops with these (libos.h).
 */
#include "libos/libos.h"

#include <errno.h>

int nosock_socket(struct libos *l, int type, void **q_out)
{
    (void)l, (void)type, (void)q_out;
    return EOPNOTSUPP;
}

int nosock_bind(struct libos *l, void *q, const struct sockaddr_in *a)
{
    (void)l, (void)q, (void)a;
    return ENOTSOCK;
}

int nosock_listen(struct libos *l, void *q, int backlog)
{
    (void)l, (void)q, (void)backlog;
    return ENOTSOCK;
}

int nosock_accept(struct libos *l, void *q, struct sched_task *t)
{
    (void)l, (void)q, (void)t;
    return ENOTSOCK;
}

int nosock_connect(struct libos *l, void *q, const struct sockaddr_in *a, struct sched_task *t)
{
    (void)l, (void)q, (void)a, (void)t;
    return ENOTSOCK;
}

int nosock_setsockopt(struct libos *l, void *q, int level, int name, const void *val, socklen_t len)
{
    (void)l, (void)q, (void)level, (void)name, (void)val, (void)len;
    return ENOTSOCK;
}

int nosock_getsockopt(struct libos *l, void *q, int level, int name, void *val, socklen_t *len)
{
    (void)l, (void)q, (void)level, (void)name, (void)val, (void)len;
    return ENOTSOCK;
}

int nosock_name(struct libos *l, void *q, struct sockaddr_in *out)
{
    (void)l, (void)q, (void)out;
    return ENOTSOCK;
}
