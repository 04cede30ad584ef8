/*
 * px_io.h: the four ways px_server and px_client move bytes on a TCP
 * socket (read/write, recv/send, readv/writev, recvmsg/sendmsg), so that
 * every call family is exercised. Vector forms split the buffer in two.
 */
#ifndef PX_IO_H
#define PX_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

enum io_style { IO_RW, IO_SENDRECV, IO_VEC, IO_MSG, IO_NSTYLES };

static inline ssize_t px_io_write(int fd, const uint8_t *p, size_t n, enum io_style st)
{
    size_t h = n / 2;
    struct iovec iov[2] = {{(void *)p, h}, {(void *)(p + h), n - h}};
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
    switch (st) {
    case IO_RW:
        return write(fd, p, n);
    case IO_SENDRECV:
        return send(fd, p, n, MSG_NOSIGNAL);
    case IO_VEC:
        return writev(fd, iov, 2);
    default:
        return sendmsg(fd, &m, MSG_NOSIGNAL);
    }
}

/* *msg_flags receives recvmsg's flags (0 for the other styles). */
static inline ssize_t px_io_read(int fd, uint8_t *p, size_t n, enum io_style st, int *msg_flags)
{
    size_t h = n / 2;
    struct iovec iov[2] = {{p, h}, {p + h, n - h}};
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
    ssize_t r;
    *msg_flags = 0;
    switch (st) {
    case IO_RW:
        return read(fd, p, n);
    case IO_SENDRECV:
        return recv(fd, p, n, 0);
    case IO_VEC:
        return readv(fd, iov, 2);
    default:
        r = recvmsg(fd, &m, 0);
        *msg_flags = m.msg_flags;
        return r;
    }
}

#endif
