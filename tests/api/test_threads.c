/*
 * One instance per thread: several threads each initialise libdemi and
 * run their own UDP exchange at the same time; instances share nothing
 * (a buffer from one thread's heap is not another thread's to free); an
 * instance is released when its thread exits (checked by LeakSanitizer in
 * the sanitizer build).
 */
#include "tcheck.h"

#include <demi/libos.h>
#include <demi/sga.h>
#include <demi/wait.h>

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>

static demi_sgarray_t shared;

static void *worker(void *arg)
{
    long id = (long)arg;
    CHECK_EQ(demi_init(NULL), 0);
    CHECK_EQ(demi_init(NULL), EEXIST);
    int rx, tx;
    CHECK_EQ(demi_socket(&rx, AF_INET, SOCK_DGRAM, 0), 0);
    CHECK_EQ(demi_socket(&tx, AF_INET, SOCK_DGRAM, 0), 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    CHECK_EQ(demi_bind(rx, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    CHECK_EQ(demi_getsockname(rx, (struct sockaddr *)&a, &len), 0);
    for (int i = 0; i < 2000; i++) {
        demi_qtoken_t qt;
        demi_qresult_t qr;
        demi_sgarray_t s = demi_sgaalloc(16);
        long v[2] = {id, i};
        memcpy(s.sga_segs[0].sgaseg_buf, v, sizeof(v));
        CHECK_EQ(demi_pushto(&qt, tx, &s, (struct sockaddr *)&a, sizeof(a)), 0);
        CHECK_EQ(demi_sgafree(&s), 0);
        CHECK_EQ(demi_pop(&qt, rx), 0);
        struct timespec ts = {10, 0};
        CHECK_EQ(demi_wait(&qr, qt, &ts), 0);
        CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
        memcpy(v, qr.qr_value.sga.sga_segs[0].sgaseg_buf, sizeof(v));
        CHECK(v[0] == id && v[1] == i);
        CHECK_EQ(demi_sgafree(&qr.qr_value.sga), 0);
    }
    /* Another thread's array is not ours to free. */
    CHECK_EQ(demi_sgafree(&shared), EINVAL);
    /* Leave queues and buffers open: thread exit releases them. */
    demi_sgarray_t leak = demi_sgaalloc(4096);
    CHECK_EQ(leak.sga_numsegs, 1);
    return NULL;
}

int main(void)
{
    CHECK_EQ(demi_init(NULL), 0);
    shared = demi_sgaalloc(64);
    pthread_t t[3];
    for (long i = 0; i < 3; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, worker, (void *)i), 0);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(pthread_join(t[i], NULL), 0);
    CHECK_EQ(demi_sgafree(&shared), 0);
    printf("threads: ok\n");
    return 0;
}
