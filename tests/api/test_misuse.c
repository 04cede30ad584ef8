/*
 * API misuse: every demi_* call with NULL pointers, bad descriptors, bad
 * sizes and wrong states returns the documented errno and never crashes,
 * before demi_init and after it; demi_sgafree of a push's result (which
 * owns nothing) fails EINVAL and leaves the pushed array's reference.
 */
#include "tcheck.h"

#include <demi/libos.h>
#include <demi/sga.h>
#include <demi/wait.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>

int main(void)
{
    demi_qtoken_t qt;
    demi_qresult_t qr;
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    int qd, n, off;
    socklen_t len;

    /* Before demi_init: EPERM everywhere, and no crash. */
    CHECK_EQ(demi_socket(&qd, AF_INET, SOCK_STREAM, 0), EPERM);
    CHECK_EQ(demi_pop(&qt, 0), EPERM);
    CHECK_EQ(demi_wait(&qr, 1, NULL), EPERM);
    CHECK_EQ(demi_close(0), EPERM);
    CHECK_EQ(demi_create_pipe(&qd, "p"), EPERM);
    CHECK_EQ(demi_open_pipe(&qd, "p"), EPERM);
    errno = 0;
    demi_sgarray_t s0 = demi_sgaalloc(10);
    CHECK_EQ(s0.sga_numsegs, 0);
    CHECK_EQ(errno, EPERM);
    CHECK_EQ(demi_sgafree(&s0), EPERM);

    CHECK_EQ(demi_init(NULL), 0);
    CHECK_EQ(demi_init(NULL), EEXIST);

    /* demi_socket */
    CHECK_EQ(demi_socket(NULL, AF_INET, SOCK_STREAM, 0), EINVAL);
    CHECK_EQ(demi_socket(&qd, AF_INET6, SOCK_STREAM, 0), EAFNOSUPPORT);
    CHECK_EQ(demi_socket(&qd, AF_INET, SOCK_RAW, 0), ESOCKTNOSUPPORT);
    CHECK_EQ(demi_socket(&qd, AF_INET, SOCK_STREAM, IPPROTO_UDP), EPROTONOSUPPORT);
    CHECK_EQ(demi_socket(&qd, AF_INET, SOCK_DGRAM, IPPROTO_TCP), EPROTONOSUPPORT);
    int tcp, udp;
    CHECK_EQ(demi_socket(&tcp, AF_INET, SOCK_STREAM, IPPROTO_TCP), 0);
    CHECK_EQ(demi_socket(&udp, AF_INET, SOCK_DGRAM, 0), 0);

    /* Bad descriptors, everywhere. */
    int bad[] = {-1, -100, 1 << 20, 999999};
    demi_sgarray_t one = demi_sgaalloc(8);
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int b = bad[i];
        CHECK_EQ(demi_bind(b, (struct sockaddr *)&a, sizeof(a)), EBADF);
        CHECK_EQ(demi_listen(b, 1), EBADF);
        CHECK_EQ(demi_accept(&qt, b), EBADF);
        CHECK_EQ(demi_connect(&qt, b, (struct sockaddr *)&a, sizeof(a)), EBADF);
        CHECK_EQ(demi_close(b), EBADF);
        CHECK_EQ(demi_push(&qt, b, &one), EBADF);
        CHECK_EQ(demi_pushto(&qt, b, &one, (struct sockaddr *)&a, sizeof(a)), EBADF);
        CHECK_EQ(demi_pop(&qt, b), EBADF);
        int v = 1;
        len = sizeof(v);
        CHECK_EQ(demi_setsockopt(b, SOL_SOCKET, SO_REUSEADDR, &v, sizeof(v)), EBADF);
        CHECK_EQ(demi_getsockopt(b, SOL_SOCKET, SO_REUSEADDR, &v, &len), EBADF);
        len = sizeof(a);
        CHECK_EQ(demi_getpeername(b, (struct sockaddr *)&a, &len), EBADF);
        CHECK_EQ(demi_getsockname(b, (struct sockaddr *)&a, &len), EBADF);
    }

    /* NULL pointers and short sizes. */
    CHECK_EQ(demi_bind(tcp, NULL, sizeof(a)), EINVAL);
    CHECK_EQ(demi_bind(tcp, (struct sockaddr *)&a, 3), EINVAL);
    struct sockaddr_in6 six = {.sin6_family = AF_INET6};
    CHECK_EQ(demi_bind(tcp, (struct sockaddr *)&six, sizeof(six)), EAFNOSUPPORT);
    CHECK_EQ(demi_accept(NULL, tcp), EINVAL);
    CHECK_EQ(demi_connect(NULL, tcp, (struct sockaddr *)&a, sizeof(a)), EINVAL);
    CHECK_EQ(demi_connect(&qt, tcp, NULL, sizeof(a)), EINVAL);
    CHECK_EQ(demi_connect(&qt, tcp, (struct sockaddr *)&a, 0), EINVAL);
    CHECK_EQ(demi_push(NULL, tcp, &one), EINVAL);
    CHECK_EQ(demi_push(&qt, tcp, NULL), EINVAL);
    CHECK_EQ(demi_pushto(&qt, udp, &one, NULL, sizeof(a)), EINVAL);
    CHECK_EQ(demi_pushto(&qt, udp, &one, (struct sockaddr *)&a, 2), EINVAL);
    CHECK_EQ(demi_pop(NULL, tcp), EINVAL);
    CHECK_EQ(demi_setsockopt(tcp, SOL_SOCKET, SO_REUSEADDR, NULL, 4), EINVAL);
    int v = 1;
    CHECK_EQ(demi_setsockopt(tcp, SOL_SOCKET, SO_REUSEADDR, &v, 1), EINVAL);
    CHECK_EQ(demi_setsockopt(tcp, SOL_SOCKET, SO_BROADCAST, &v, sizeof(v)), ENOPROTOOPT);
    CHECK_EQ(demi_setsockopt(tcp, 12345, 1, &v, sizeof(v)), ENOPROTOOPT);
    CHECK_EQ(demi_setsockopt(udp, IPPROTO_TCP, TCP_NODELAY, &v, sizeof(v)), ENOPROTOOPT);
    CHECK_EQ(demi_getsockopt(tcp, SOL_SOCKET, SO_REUSEADDR, NULL, &len), EINVAL);
    CHECK_EQ(demi_getsockopt(tcp, SOL_SOCKET, SO_REUSEADDR, &v, NULL), EINVAL);
    len = 1;
    CHECK_EQ(demi_getsockopt(tcp, SOL_SOCKET, SO_REUSEADDR, &v, &len), EINVAL);
    CHECK_EQ(demi_getpeername(tcp, NULL, &len), EINVAL);
    CHECK_EQ(demi_getsockname(tcp, (struct sockaddr *)&a, NULL), EINVAL);

    /* Options that work, and the Nagle default (off: TCP_NODELAY on). */
    len = sizeof(v);
    v = 0;
    CHECK_EQ(demi_getsockopt(tcp, IPPROTO_TCP, TCP_NODELAY, &v, &len), 0);
    CHECK(v != 0);
    v = 1;
    CHECK_EQ(demi_setsockopt(tcp, SOL_SOCKET, SO_REUSEADDR, &v, sizeof(v)), 0);
    CHECK_EQ(demi_setsockopt(tcp, SOL_SOCKET, SO_KEEPALIVE, &v, sizeof(v)), 0);
    int sz = 1 << 20;
    CHECK_EQ(demi_setsockopt(tcp, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz)), 0);
    CHECK_EQ(demi_setsockopt(tcp, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)), 0);
    struct linger lg = {1, 5};
    CHECK_EQ(demi_setsockopt(tcp, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    len = sizeof(v);
    CHECK_EQ(demi_getsockopt(tcp, SOL_SOCKET, SO_TYPE, &v, &len), 0);
    CHECK_EQ(v, SOCK_STREAM);

    /* Bad arrays. */
    demi_sgarray_t s;
    memset(&s, 0, sizeof(s));
    CHECK_EQ(demi_pushto(&qt, udp, &s, (struct sockaddr *)&a, sizeof(a)), EINVAL); /* 0 segments */
    s.sga_numsegs = DEMI_SGARRAY_MAXSIZE + 1;
    CHECK_EQ(demi_pushto(&qt, udp, &s, (struct sockaddr *)&a, sizeof(a)), EINVAL);
    s.sga_numsegs = 1;
    s.sga_segs[0].sgaseg_buf = NULL;
    s.sga_segs[0].sgaseg_len = 10;
    CHECK_EQ(demi_pushto(&qt, udp, &s, (struct sockaddr *)&a, sizeof(a)), EINVAL); /* NULL with a length */
    s.sga_segs[0].sgaseg_buf = one.sga_segs[0].sgaseg_buf;
    s.sga_segs[0].sgaseg_len = 0;
    CHECK_EQ(demi_pushto(&qt, udp, &s, (struct sockaddr *)&a, sizeof(a)), EINVAL); /* total 0 */

    /* Wrong states. */
    CHECK_EQ(demi_listen(udp, 1), EOPNOTSUPP);
    CHECK_EQ(demi_listen(tcp, -1), EINVAL);
    CHECK_EQ(demi_accept(&qt, tcp), EINVAL);       /* not listening */
    CHECK_EQ(demi_push(&qt, tcp, &one), ENOTCONN); /* not connected */
    CHECK_EQ(demi_pop(&qt, tcp), ENOTCONN);
    CHECK_EQ(demi_push(&qt, udp, &one), EDESTADDRREQ); /* no default peer */
    len = sizeof(a);
    CHECK_EQ(demi_getpeername(tcp, (struct sockaddr *)&a, &len), ENOTCONN);
    a.sin_port = 0;
    CHECK_EQ(demi_bind(tcp, (struct sockaddr *)&a, sizeof(a)), 0);      /* port 0 */
    CHECK_EQ(demi_bind(tcp, (struct sockaddr *)&a, sizeof(a)), EINVAL); /* twice */
    CHECK_EQ(demi_listen(tcp, 4), 0);
    CHECK_EQ(demi_pop(&qt, tcp), EINVAL); /* listening */
    CHECK_EQ(demi_push(&qt, tcp, &one), EINVAL);
    CHECK_EQ(demi_connect(&qt, tcp, (struct sockaddr *)&a, sizeof(a)), EINVAL);
    /* INADDR_ANY and port 0; getsockname reports the chosen port, truncated if asked. */
    int any;
    CHECK_EQ(demi_socket(&any, AF_INET, SOCK_STREAM, 0), 0);
    struct sockaddr_in anyaddr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY)};
    CHECK_EQ(demi_bind(any, (struct sockaddr *)&anyaddr, sizeof(anyaddr)), 0);
    CHECK_EQ(demi_listen(any, 4), 0);
    struct sockaddr_in got;
    len = sizeof(got);
    CHECK_EQ(demi_getsockname(any, (struct sockaddr *)&got, &len), 0);
    CHECK_EQ(len, sizeof(got));
    CHECK(got.sin_port != 0);
    CHECK_EQ(got.sin_addr.s_addr, htonl(INADDR_ANY));
    struct sockaddr_in tiny;
    memset(&tiny, 0x77, sizeof(tiny));
    len = 4;
    CHECK_EQ(demi_getsockname(any, (struct sockaddr *)&tiny, &len), 0);
    CHECK_EQ(len, sizeof(tiny));
    CHECK_EQ(((uint8_t *)&tiny)[4], 0x77); /* nothing past the 4 bytes allowed */
    /* Binding the same port again: EADDRINUSE. */
    int dup;
    CHECK_EQ(demi_socket(&dup, AF_INET, SOCK_STREAM, 0), 0);
    CHECK_EQ(demi_bind(dup, (struct sockaddr *)&got, sizeof(got)), EADDRINUSE);
    CHECK_EQ(demi_close(dup), 0);

    /* sgaalloc / sgafree. */
    demi_sgarray_t z = demi_sgaalloc(0);
    CHECK_EQ(z.sga_numsegs, 0);
    CHECK(z.sga_buf == NULL);
    CHECK_EQ(demi_sgafree(&z), 0);
    CHECK_EQ(demi_sgafree(NULL), EINVAL);
    demi_sgarray_t huge = demi_sgaalloc((size_t)16 << 20);
    CHECK_EQ(huge.sga_numsegs, 1);
    CHECK_EQ(huge.sga_segs[0].sgaseg_len, 16u << 20);
    CHECK_EQ(demi_sgafree(&huge), 0);
    CHECK_EQ(demi_sgafree(&huge), EINVAL);
    errno = 0;
    demi_sgarray_t toobig = demi_sgaalloc(SIZE_MAX);
    CHECK_EQ(toobig.sga_numsegs, 0);
    CHECK(errno == EINVAL || errno == ENOMEM);
    demi_sgarray_t garbage;
    memset(&garbage, 0x5a, sizeof(garbage));
    garbage.sga_numsegs = 1;
    CHECK_EQ(demi_sgafree(&garbage), EINVAL);
    garbage.sga_numsegs = 1000;
    CHECK_EQ(demi_sgafree(&garbage), EINVAL);

    /* Waits. */
    CHECK_EQ(demi_wait(NULL, 1, NULL), EINVAL);
    CHECK_EQ(demi_wait(&qr, 0, NULL), EINVAL);
    CHECK_EQ(demi_wait(&qr, 0xdeadbeefdeadbeefull, NULL), EINVAL);
    demi_qtoken_t qts[2] = {0, 1};
    CHECK_EQ(demi_wait_any(NULL, &off, qts, 2, NULL), EINVAL);
    CHECK_EQ(demi_wait_any(&qr, NULL, qts, 2, NULL), EINVAL);
    CHECK_EQ(demi_wait_any(&qr, &off, NULL, 2, NULL), EINVAL);
    CHECK_EQ(demi_wait_any(&qr, &off, qts, 0, NULL), EINVAL);
    CHECK_EQ(demi_wait_any(&qr, &off, qts, -5, NULL), EINVAL);
    CHECK_EQ(demi_wait_any(&qr, &off, qts, 2, NULL), EINVAL); /* bogus tokens */
    CHECK_EQ(demi_wait_next_n(NULL, 1, &n, NULL), EINVAL);
    CHECK_EQ(demi_wait_next_n(&qr, 0, &n, NULL), EINVAL);
    CHECK_EQ(demi_wait_next_n(&qr, 1, NULL, NULL), EINVAL);

    /* A failed operation is a result, not an error: ECONNREFUSED. */
    int c;
    CHECK_EQ(demi_socket(&c, AF_INET, SOCK_STREAM, 0), 0);
    CHECK_EQ(demi_close(any), 0);
    CHECK_EQ(demi_connect(&qt, c, (struct sockaddr *)&got, sizeof(got)), 0);
    struct timespec ts = {10, 0};
    CHECK_EQ(demi_wait(&qr, qt, &ts), 0);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_FAILED);
    CHECK_EQ(qr.qr_ret, ECONNREFUSED);
    CHECK_EQ(demi_wait(&qr, qt, &ts), EINVAL); /* consumed */

    /* A push's result repeats the pushed array but owns nothing: freeing it
     * fails EINVAL and leaves the application's reference, which its own
     * demi_sgafree then drops (once). */
    int self;
    CHECK_EQ(demi_socket(&self, AF_INET, SOCK_DGRAM, 0), 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    CHECK_EQ(demi_bind(self, (struct sockaddr *)&sa, sizeof(sa)), 0);
    len = sizeof(sa);
    CHECK_EQ(demi_getsockname(self, (struct sockaddr *)&sa, &len), 0);
    demi_sgarray_t pushed = demi_sgaalloc(32);
    CHECK_EQ(pushed.sga_numsegs, 1);
    memset(pushed.sga_segs[0].sgaseg_buf, 7, 32);
    CHECK_EQ(demi_pushto(&qt, self, &pushed, (struct sockaddr *)&sa, sizeof(sa)), 0);
    CHECK_EQ(demi_wait(&qr, qt, &ts), 0);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_PUSH);
    CHECK_EQ(qr.qr_value.sga.sga_numsegs, 1);
    CHECK(qr.qr_value.sga.sga_segs[0].sgaseg_buf == pushed.sga_segs[0].sgaseg_buf);
    CHECK_EQ(qr.qr_value.sga.sga_segs[0].sgaseg_len, 32);
    CHECK_EQ(demi_sgafree(&qr.qr_value.sga), EINVAL);
    CHECK_EQ(demi_sgafree(&qr.qr_value.sga), EINVAL);
    CHECK_EQ(((uint8_t *)pushed.sga_segs[0].sgaseg_buf)[31], 7); /* still ours */
    CHECK_EQ(demi_sgafree(&pushed), 0);
    CHECK_EQ(demi_sgafree(&pushed), EINVAL);
    CHECK_EQ(demi_pop(&qt, self), 0);
    CHECK_EQ(demi_wait(&qr, qt, &ts), 0);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
    CHECK_EQ(qr.qr_value.sga.sga_segs[0].sgaseg_len, 32);
    CHECK_EQ(demi_sgafree(&qr.qr_value.sga), 0);
    CHECK_EQ(demi_close(self), 0);

    CHECK_EQ(demi_sgafree(&one), 0);
    CHECK_EQ(demi_close(c), 0);
    CHECK_EQ(demi_close(tcp), 0);
    CHECK_EQ(demi_close(udp), 0);
    CHECK_EQ(demi_close(udp), EBADF);
    printf("misuse: ok\n");
    return 0;
}
