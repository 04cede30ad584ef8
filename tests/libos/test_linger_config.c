/*
 * tcp_socket_options.linger from the environment (LINGER, in seconds;
 * setting it enables lingering) on catnap: every TCP socket starts with
 * SO_LINGER set to it, as if the application had called demi_setsockopt.
 *  1. LINGER=0: a new socket reports SO_LINGER {1, 0}, and closing a
 *     connected queue is abortive: a plain Linux peer reads ECONNRESET;
 *  2. a UDP socket is left alone (SO_LINGER is a TCP close behaviour).
 * catnap only, since it needs a plain Linux peer; the stack's libOSes
 * (catnip, catpowder) are covered by sim/test_tcp_close's linger_config.
 */
#include "tcheck.h"

#include <demi/libos.h>
#include <demi/sga.h>
#include <demi/wait.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int main(void)
{
    const char *libos = getenv("LIBOS");
    if (libos && strcmp(libos, "catnap") != 0)
        SKIP("LIBOS=%s: this test needs a Linux peer (catnap); sim/test_tcp_close covers the stack", libos);
    CHECK_EQ(setenv("LINGER", "0", 1), 0);
    CHECK_EQ(demi_init(NULL), 0);

    /* A plain Linux listener on an ephemeral port of 127.0.0.1. */
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    CHECK_EQ(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    CHECK_EQ(listen(lfd, 4), 0);
    CHECK_EQ(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);

    int qd;
    CHECK_EQ(demi_socket(&qd, AF_INET, SOCK_STREAM, 0), 0);
    struct linger lg = {0, 99};
    socklen_t len = sizeof(lg);
    CHECK_EQ(demi_getsockopt(qd, SOL_SOCKET, SO_LINGER, &lg, &len), 0);
    CHECK(lg.l_onoff == 1 && lg.l_linger == 0);

    int uqd;
    CHECK_EQ(demi_socket(&uqd, AF_INET, SOCK_DGRAM, 0), 0);
    len = sizeof(lg);
    CHECK_EQ(demi_getsockopt(uqd, SOL_SOCKET, SO_LINGER, &lg, &len), 0);
    CHECK_EQ(lg.l_onoff, 0);
    CHECK_EQ(demi_close(uqd), 0);

    demi_qtoken_t qt;
    demi_qresult_t qr;
    struct timespec tmo = {20, 0}; /* a hang guard: the connect is local */
    CHECK_EQ(demi_connect(&qt, qd, (struct sockaddr *)&a, sizeof(a)), 0);
    CHECK_EQ(demi_wait(&qr, qt, &tmo), 0);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_CONNECT);
    int cfd = accept(lfd, NULL, NULL);
    CHECK(cfd >= 0);

    /* The abortive close: the peer's read fails with ECONNRESET instead of
     * seeing an orderly end of stream. */
    CHECK_EQ(demi_close(qd), 0);
    struct timeval rto = {20, 0};
    CHECK_EQ(setsockopt(cfd, SOL_SOCKET, SO_RCVTIMEO, &rto, sizeof(rto)), 0);
    char b;
    ssize_t r = recv(cfd, &b, 1, 0);
    int e = errno;
    if (r != -1 || e != ECONNRESET)
        fprintf(stderr, "recv after the close: %zd (%s), expected ECONNRESET\n", r, r < 0 ? strerror(e) : "no error");
    CHECK(r == -1 && e == ECONNRESET);

    close(cfd);
    close(lfd);
    puts("linger config: ok");
    return 0;
}
