/*
 * Two-party test harness (see pair.h). The client learns the server's port
 * through a pipe; a server that does not report within 20 s, or does not
 * exit within 30 s of the client finishing, fails the test.
 */
#include "pair.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static void fail(const char *what, int err)
{
    fprintf(stderr, "[%d] %s: %s\n", (int)getpid(), what, strerror(err));
    exit(1);
}

/* Moves this process into the role's namespace and applies its settings. */
static void enter_role(const char *role)
{
    char var[64];
    snprintf(var, sizeof(var), "DEMI_%s_NETNS", role);
    const char *ns = getenv(var);
    if (ns && *ns) {
        char path[256];
        snprintf(path, sizeof(path), "/var/run/netns/%s", ns);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
            fail(path, errno);
        close(fd);
    }
    snprintf(var, sizeof(var), "DEMI_%s_ENV", role);
    const char *env = getenv(var);
    if (env && *env) {
        char *copy = strdup(env), *save = NULL;
        for (char *kv = strtok_r(copy, " ", &save); kv; kv = strtok_r(NULL, " ", &save)) {
            char *eq = strchr(kv, '=');
            if (!eq)
                fail(var, EINVAL);
            *eq = '\0';
            setenv(kv, eq + 1, 1);
        }
        free(copy);
    }
}

static void init_role(const char *cfg_var)
{
    const char *cfg = getenv(cfg_var);
    if (cfg && *cfg)
        setenv("CONFIG_PATH", cfg, 1);
    enter_role(cfg_var[0] == 'S' ? "SERVER" : "CLIENT");
    int e = demi_init(NULL);
    if (e == ENOTSUP) {
        fprintf(stderr, "SKIP: the libOS named by LIBOS cannot run here\n");
        exit(77);
    }
    if (e)
        fail("demi_init", e);
}

static void server_addr(struct sockaddr_in *a)
{
    const char *ip = getenv("DEMI_TEST_SERVER_IP");
    memset(a, 0, sizeof(*a));
    a->sin_family = AF_INET;
    if (inet_pton(AF_INET, ip && *ip ? ip : "127.0.0.1", &a->sin_addr) != 1)
        fail("DEMI_TEST_SERVER_IP", EINVAL);
}

void pair_init_single(void)
{
    init_role("SERVER_CONFIG_PATH");
}

void pair_ready(struct pair *p, uint16_t port)
{
    if (write(p->pipe_fd, &port, sizeof(port)) != sizeof(port))
        fail("pair_ready", errno);
    close(p->pipe_fd);
    p->pipe_fd = -1;
}

int pair_run(pair_fn server, pair_fn client, void *arg)
{
    int fds[2];
    pair_raise_nofile();
    if (pipe(fds) < 0)
        fail("pipe", errno);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        fail("fork", errno);
    if (pid == 0) {
        close(fds[0]);
        struct pair p = {.pipe_fd = fds[1], .arg = arg};
        server_addr(&p.server);
        init_role("SERVER_CONFIG_PATH");
        int rc = server(&p);
        fflush(NULL);
        _exit(rc);
    }
    close(fds[1]);
    struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
    uint16_t port = 0;
    if (poll(&pfd, 1, 20000) != 1 || read(fds[0], &port, sizeof(port)) != sizeof(port)) {
        kill(pid, SIGKILL);
        int st;
        waitpid(pid, &st, 0);
        if (WIFEXITED(st) && WEXITSTATUS(st) == 77)
            exit(77);
        fprintf(stderr, "server did not become ready\n");
        return 1;
    }
    close(fds[0]);
    struct pair p = {.pipe_fd = -1, .arg = arg};
    server_addr(&p.server);
    p.server.sin_port = htons(port);
    init_role("CLIENT_CONFIG_PATH");
    int rc = client(&p);
    /* Give the server time to see the client's closes and finish. */
    int st = 0;
    for (int i = 0; i < 3000; i++) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            break;
        if (i == 2999) {
            fprintf(stderr, "server did not exit; killing it\n");
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return 1;
        }
        usleep(10000);
    }
    int src = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (src)
        fprintf(stderr, "server exited with %d\n", src);
    if (rc)
        fprintf(stderr, "client failed with %d\n", rc);
    return rc || src;
}

void pair_wait(demi_qresult_t *qr, demi_qtoken_t qt, int seconds)
{
    struct timespec ts = {seconds, 0};
    int e = demi_wait(qr, qt, &ts);
    if (e)
        fail("demi_wait", e);
}

static int listen_any(struct pair *p, int type, int *qd)
{
    int e = demi_socket(qd, AF_INET, type, 0);
    if (e)
        fail("socket", e);
    struct sockaddr_in a = p->server;
    a.sin_port = 0;
    if ((e = demi_bind(*qd, (struct sockaddr *)&a, sizeof(a))))
        fail("bind", e);
    if (type == SOCK_STREAM && (e = demi_listen(*qd, 1024)))
        fail("listen", e);
    socklen_t len = sizeof(a);
    if ((e = demi_getsockname(*qd, (struct sockaddr *)&a, &len)))
        fail("getsockname", e);
    pair_ready(p, ntohs(a.sin_port));
    return 0;
}

/* Serves until every accepted connection has closed and none arrives for
 * a while (or the client tells us to stop by closing everything). */
int pair_tcp_echo_server(struct pair *p)
{
    int lqd, e, open = 0, served = 0;
    listen_any(p, SOCK_STREAM, &lqd);
    demi_qtoken_t qt;
    if ((e = demi_accept(&qt, lqd)))
        fail("accept", e);
    demi_qresult_t qr[64];
    for (;;) {
        int n;
        struct timespec ts = {served && !open ? 1 : 60, 0};
        e = demi_wait_next_n(qr, 64, &n, &ts);
        if (e == ETIMEDOUT) {
            if (served && !open)
                break;
            fail("server: nothing happened for 60 s", e);
        }
        if (e)
            fail("wait_next_n", e);
        for (int i = 0; i < n; i++) {
            demi_qresult_t *r = &qr[i];
            switch (r->qr_opcode) {
            case DEMI_OPC_ACCEPT:
                open++;
                served++;
                if ((e = demi_pop(&qt, r->qr_value.ares.qd)))
                    fail("pop", e);
                if ((e = demi_accept(&qt, lqd)))
                    fail("accept", e);
                break;
            case DEMI_OPC_POP:
                if (r->qr_value.sga.sga_numsegs == 0) {
                    demi_close(r->qr_qd);
                    open--;
                    break;
                }
                if ((e = demi_push(&qt, r->qr_qd, &r->qr_value.sga)))
                    fail("push", e);
                demi_sgafree(&r->qr_value.sga);
                if ((e = demi_pop(&qt, r->qr_qd)))
                    fail("pop", e);
                break;
            case DEMI_OPC_FAILED:
                if (r->qr_ret == ECANCELED)
                    break;
                if (r->qr_qd == lqd)
                    fail("accept failed", (int)r->qr_ret);
                demi_close(r->qr_qd); /* reset by the client */
                open--;
                break;
            default:
                break;
            }
        }
    }
    demi_close(lqd);
    return pair_check_copies("tcp echo server");
}

int pair_check_copies(const char *who)
{
    demi_stats_t st;
    int e = demi_get_stats(&st);
    if (e)
        fail("demi_get_stats", e);
    printf("%s: %llu bytes copied on the data path; %llu frames in, %llu out\n", who,
           (unsigned long long)st.copied_bytes, (unsigned long long)st.rx_frames, (unsigned long long)st.tx_frames);
    const char *zc = getenv("DEMI_TEST_ZERO_COPY");
    if (zc && *zc == '1' && st.copied_bytes) {
        fprintf(stderr, "%s: zero copy expected (DEMI_TEST_ZERO_COPY=1), but %llu bytes were copied\n", who,
                (unsigned long long)st.copied_bytes);
        return 1;
    }
    return 0;
}

int pair_udp_echo_server(struct pair *p)
{
    int qd, e;
    listen_any(p, SOCK_DGRAM, &qd);
    demi_qtoken_t qt;
    if ((e = demi_pop(&qt, qd)))
        fail("pop", e);
    demi_qresult_t qr[64];
    for (;;) {
        int n;
        struct timespec ts = {2, 0};
        e = demi_wait_next_n(qr, 64, &n, &ts);
        if (e == ETIMEDOUT)
            break; /* the client is done */
        if (e)
            fail("wait_next_n", e);
        for (int i = 0; i < n; i++) {
            demi_qresult_t *r = &qr[i];
            if (r->qr_opcode == DEMI_OPC_POP) {
                demi_sgarray_t *s = &r->qr_value.sga;
                if ((e = demi_pushto(&qt, qd, s, (struct sockaddr *)&s->sga_addr, sizeof(s->sga_addr))))
                    fail("pushto", e);
                demi_sgafree(s);
                if ((e = demi_pop(&qt, qd)))
                    fail("pop", e);
            } else if (r->qr_opcode == DEMI_OPC_FAILED) {
                fail("udp server op", (int)r->qr_ret);
            }
        }
    }
    demi_close(qd);
    return 0;
}

void pair_fill(uint8_t *p, size_t len, uint64_t seed, size_t off)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)((seed * 0x9e37u) ^ ((off + i) * 131u) ^ ((off + i) >> 9));
}

bool pair_check(const uint8_t *p, size_t len, uint64_t seed, size_t off)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != (uint8_t)((seed * 0x9e37u) ^ ((off + i) * 131u) ^ ((off + i) >> 9)))
            return false;
    return true;
}

void pair_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}
