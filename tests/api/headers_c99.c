/*
 * Compile-only check: the public headers build as strict C99 with
 * -D_POSIX_C_SOURCE=199309L -Wall -Wextra -Werror -pedantic, and the types
 * keep Demikernel's names and shapes.
 */
#include <demi/libos.h>
#include <demi/sga.h>
#include <demi/types.h>
#include <demi/version.h>
#include <demi/wait.h>

typedef char check_maxsize[DEMI_SGARRAY_MAXSIZE >= 16 ? 1 : -1];
typedef char check_qtoken[sizeof(demi_qtoken_t) == 8 ? 1 : -1];
typedef char check_ret[sizeof(((demi_qresult_t *)0)->qr_ret) == 8 ? 1 : -1];
typedef char check_qd[sizeof(((demi_accept_result_t *)0)->qd) == 4 ? 1 : -1];

int headers_c99_use(void);
int headers_c99_use(void)
{
    demi_sgarray_t sga = demi_sgaalloc(1);
    demi_qresult_t qr;
    struct timespec ts = {0, 0};
    demi_qtoken_t qt = 0;
    int off = 0, n = 0, qd = 0;
    struct demi_args args = {0, 0, 0};
    (void)args;
    (void)sga.sga_segs[0].sgaseg_buf;
    (void)sga.sga_segs[0].sgaseg_len;
    (void)sga.sga_addr;
    (void)sga.sga_buf;
    qr.qr_opcode = DEMI_OPC_FAILED;
    (void)qr.qr_value.ares.addr;
    return demi_wait(&qr, qt, &ts) + demi_wait_any(&qr, &off, &qt, 1, 0) + demi_wait_next_n(&qr, 1, &n, 0) +
           demi_socket(&qd, AF_INET, SOCK_STREAM, 0) + demi_sgafree(&sga) + demi_open(&qd, "log", 2, (mode_t)0600) +
           (demi_version()[0] != 0) + DEMI_VERSION_MAJOR + DEMI_VERSION_MINOR + DEMI_VERSION_PATCH;
}
