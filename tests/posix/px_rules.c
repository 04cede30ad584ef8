/*
 * px_rules: what libdemi-posix(7) promises for calls it cannot serve, and
 * for descriptors that are not its own. Run under the preload on catnap
 * (tests/posix/test_posix_rules.sh); it checks the errno of each refused
 * call and that the kernel's descriptors keep working beside stack
 * sockets. Exit 0 pass, 1 fail, 77 when not under the preload.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static int failures;

#define EXPECT(cond, ...)                                                                                              \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                                                    \
            printf(__VA_ARGS__);                                                                                       \
            printf("\n");                                                                                              \
            failures++;                                                                                                \
        }                                                                                                              \
    } while (0)

/* @r must be -1 with errno @e. */
#define EXPECT_ERR(r, e) EXPECT((r) == -1 && errno == (e), "got %ld, errno %s (want %s)", (long)(r), strerror(errno), #e)

static int tcp_socket(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) {
        printf("FAIL: socket(AF_INET, SOCK_STREAM): %s\n", strerror(errno));
        exit(1);
    }
    return s;
}

/* Is @fd a kernel socket (not one of the stack's eventfd placeholders)? */
static bool kernel_socket(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

static void unsupported_calls(void)
{
    errno = 0;
    EXPECT_ERR(socket(AF_INET6, SOCK_STREAM, 0), EAFNOSUPPORT);
    EXPECT_ERR(socket(AF_INET, SOCK_RAW, IPPROTO_ICMP), ESOCKTNOSUPPORT);
    EXPECT_ERR(socket(AF_INET, SOCK_STREAM, IPPROTO_UDP), EPROTONOSUPPORT);
    int s = tcp_socket();
    EXPECT(!kernel_socket(s), "an AF_INET socket is a kernel socket: the preload did not take it");
    EXPECT_ERR(dup(s), EOPNOTSUPP);
    EXPECT_ERR(dup2(s, 100), EOPNOTSUPP);
    EXPECT_ERR(fcntl(s, F_DUPFD, 0), EOPNOTSUPP);
    errno = 0;
    EXPECT(fdopen(s, "r+") == NULL && errno == EOPNOTSUPP, "fdopen: errno %s", strerror(errno));
    int one = 1;
    EXPECT_ERR(setsockopt(s, IPPROTO_IP, IP_TOS, &one, sizeof(one)), ENOPROTOOPT);
    EXPECT(setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0, "TCP_NODELAY: %s", strerror(errno));
    EXPECT_ERR(shutdown(s, SHUT_RD), ENOTCONN);
    EXPECT_ERR(ioctl(s, SIOCATMARK, &one), ENOTTY);
    EXPECT_ERR(recv(s, &one, 1, MSG_OOB), EOPNOTSUPP);
    EXPECT(listen(s, -5) == 0, "listen with a negative backlog (clamped, as Linux): %s", strerror(errno));
    /* A blocking socket's flags, and FIONBIO reflected in F_GETFL. */
    EXPECT((fcntl(s, F_GETFL) & O_NONBLOCK) == 0, "a new socket is non-blocking");
    int on = 1;
    EXPECT(ioctl(s, FIONBIO, &on) == 0 && (fcntl(s, F_GETFL) & O_NONBLOCK), "FIONBIO did not set O_NONBLOCK");
    EXPECT_ERR(accept(s, NULL, NULL), EAGAIN);
    EXPECT(fcntl(s, F_GETFD) & FD_CLOEXEC, "the placeholder is not close-on-exec");
    EXPECT(close(s) == 0, "close: %s", strerror(errno));
    EXPECT_ERR(close(s), EBADF);
}

/* The kernel's descriptors beside stack sockets: a number the stack gave
 * back is the kernel's again, and a file there works as a file. */
static void kernel_descriptors(void)
{
    int s = tcp_socket();
    int n = s;
    EXPECT(close(s) == 0, "close: %s", strerror(errno));
    /* Open files until one lands on the freed number (the libOS may have
     * freed lower ones of its own, catnap's kernel socket for one). */
    char path[] = "/tmp/px_rules.XXXXXX";
    int f = mkstemp(path), extra[8], nextra = 0;
    while (f >= 0 && f < n && nextra < 8) {
        extra[nextra++] = f;
        f = open(path, O_RDWR);
    }
    EXPECT(f == n, "no file got the freed number %d (got %d): cannot check reuse", n, f);
    EXPECT(write(f, "abc", 3) == 3, "write to a file on a reused number: %s", strerror(errno));
    char b[4] = {0};
    EXPECT(pread(f, b, 3, 0) == 3 && memcmp(b, "abc", 3) == 0, "read back from the file");
    EXPECT(fcntl(f, F_GETFL) >= 0 && !(fcntl(f, F_GETFL) & O_NONBLOCK), "F_GETFL on the file");
    close(f);
    while (nextra)
        close(extra[--nextra]);
    unlink(path);
    int p[2];
    EXPECT(pipe(p) == 0, "pipe");
    int t = tcp_socket();
    EXPECT(write(p[1], "x", 1) == 1 && read(p[0], b, 1) == 1 && b[0] == 'x', "a pipe beside a stack socket");
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = p[0]};
    EXPECT(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev) == 0, "epoll_ctl pipe");
    ev.data.fd = t;
    EXPECT(epoll_ctl(ep, EPOLL_CTL_ADD, t, &ev) == 0, "epoll_ctl stack socket");
    EXPECT_ERR(epoll_ctl(ep, EPOLL_CTL_ADD, t, &ev), EEXIST);
    EXPECT(write(p[1], "y", 1) == 1, "pipe write");
    struct epoll_event out[4];
    int k = epoll_wait(ep, out, 4, 1000);
    /* A new unconnected TCP socket reports EPOLLHUP (Linux does too), so
     * both may be ready: the pipe must be among them. */
    bool pipe_seen = false;
    for (int i = 0; i < k; i++)
        pipe_seen |= out[i].data.fd == p[0];
    EXPECT(pipe_seen, "epoll_wait did not report the readable pipe (k=%d)", k);
    EXPECT(close(t) == 0, "close");
    EXPECT_ERR(epoll_ctl(ep, EPOLL_CTL_DEL, t, &ev), EBADF);
    close(ep);
    close(p[0]);
    close(p[1]);
}

struct other {
    int fd;
    int read_err, close_err;
    bool kernel;
};

static void *other_thread(void *arg)
{
    struct other *o = arg;
    char c;
    errno = 0;
    if (read(o->fd, &c, 1) < 0)
        o->read_err = errno;
    if (close(o->fd) < 0)
        o->close_err = errno;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    o->kernel = s >= 0 && kernel_socket(s);
    if (s >= 0)
        close(s);
    return NULL;
}

/* Another thread: refused on the network thread's sockets, the kernel's
 * sockets for its own. */
static void threads(void)
{
    struct other o = {.fd = tcp_socket()};
    pthread_t t;
    pthread_create(&t, NULL, other_thread, &o);
    pthread_join(t, NULL);
    EXPECT(o.read_err == EPERM, "read from another thread: errno %s (want EPERM)", strerror(o.read_err));
    EXPECT(o.close_err == EPERM, "close from another thread: errno %s (want EPERM)", strerror(o.close_err));
    EXPECT(o.kernel, "another thread's socket() did not give a kernel socket");
    EXPECT(close(o.fd) == 0, "the network thread's close after the refusals: %s", strerror(errno));
}

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

/* Arms SIGALRM in 100 ms, its handler installed with @flags. */
static void alarm_in_100ms(int flags)
{
    struct sigaction a;
    memset(&a, 0, sizeof(a));
    a.sa_handler = on_alarm;
    a.sa_flags = flags;
    sigemptyset(&a.sa_mask);
    sigaction(SIGALRM, &a, NULL);
    struct itimerval it = {{0, 0}, {0, 100000}};
    setitimer(ITIMER_REAL, &it, NULL);
}

/* A signal handler interrupts waits as the kernel's calls are: epoll_wait
 * and poll with EINTR always, a blocking accept with EINTR without
 * SA_RESTART; with SA_RESTART the accept goes on waiting (until its
 * SO_RCVTIMEO here). The program sees its own handler in oldact. */
static void signals(void)
{
    int s = tcp_socket();
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    EXPECT(bind(s, (struct sockaddr *)&sin, sizeof(sin)) == 0 && listen(s, 4) == 0, "bind/listen: %s",
           strerror(errno));
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = s};
    EXPECT(epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev) == 0, "epoll_ctl");
    alarm_in_100ms(SA_RESTART);
    struct sigaction old;
    EXPECT(sigaction(SIGALRM, NULL, &old) == 0 && old.sa_handler == on_alarm, "oldact is not the program's handler");
    int a0 = alarms;
    EXPECT_ERR(epoll_wait(ep, &ev, 1, -1), EINTR);
    EXPECT(alarms == a0 + 1, "the handler ran %d times (want 1)", alarms - a0);
    alarm_in_100ms(SA_RESTART);
    struct pollfd p = {.fd = s, .events = POLLIN};
    EXPECT_ERR(poll(&p, 1, -1), EINTR);
    alarm_in_100ms(0);
    EXPECT_ERR(accept(s, NULL, NULL), EINTR);
    alarm_in_100ms(SA_RESTART);
    struct timeval tv = {0, 400000};
    EXPECT(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0, "SO_RCVTIMEO");
    a0 = alarms;
    EXPECT_ERR(accept(s, NULL, NULL), EAGAIN); /* restarted after the handler, then timed out */
    EXPECT(alarms == a0 + 1, "the handler ran %d times during the restarted accept (want 1)", alarms - a0);
    signal(SIGALRM, SIG_DFL);
    close(ep);
    close(s);
}

int main(void)
{
    const char *pre = getenv("LD_PRELOAD");
    if (!pre || !strstr(pre, "libdemi-posix")) {
        printf("skip: not under LD_PRELOAD=libdemi-posix.so\n");
        return 77;
    }
    unsupported_calls();
    kernel_descriptors();
    threads();
    signals();
    if (failures) {
        printf("px_rules: %d check(s) failed\n", failures);
        return 1;
    }
    printf("px_rules: PASS\n");
    return 0;
}
