/*
 * DEMI_LOG levels and the version: demi_version() agrees with the
 * DEMI_VERSION_* macros; the info start line names the version; debug adds
 * the configuration in effect (one line per key, TCP_SACK=false marked as
 * not the default) and one line per connection event (accept, connect
 * established, the peer's FIN, a reset with its reason, the application's
 * close), and none of those appear at info. Each level runs in a child
 * process, since libdemi reads DEMI_LOG once per process.
 */
#include "tcheck.h"

#include <demi/libos.h>
#include <demi/sga.h>
#include <demi/version.h>
#include <demi/wait.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

static demi_qresult_t wait_for(demi_qtoken_t qt)
{
    demi_qresult_t qr;
    struct timespec ts = {30, 0}; /* a hang guard only */
    CHECK_EQ(demi_wait(&qr, qt, &ts), 0);
    return qr;
}

static int connect_accept(int lqd, const struct sockaddr_in *a, int *server)
{
    int c;
    demi_qtoken_t cqt, aqt;
    CHECK_EQ(demi_socket(&c, AF_INET, SOCK_STREAM, 0), 0);
    CHECK_EQ(demi_accept(&aqt, lqd), 0);
    CHECK_EQ(demi_connect(&cqt, c, (const struct sockaddr *)a, sizeof(*a)), 0);
    CHECK_EQ(wait_for(cqt).qr_opcode, DEMI_OPC_CONNECT);
    demi_qresult_t qr = wait_for(aqt);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_ACCEPT);
    *server = qr.qr_value.ares.qd;
    return c;
}

/* Two connections on loopback: one the client closes (the server sees a
 * FIN), one the server resets (the client's pop fails ECONNRESET). */
static void scenario(void)
{
    CHECK_EQ(demi_init(NULL), 0);
    int lqd, s, c;
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    CHECK_EQ(demi_socket(&lqd, AF_INET, SOCK_STREAM, 0), 0);
    CHECK_EQ(demi_bind(lqd, (struct sockaddr *)&a, sizeof(a)), 0);
    CHECK_EQ(demi_listen(lqd, 4), 0);
    socklen_t len = sizeof(a);
    CHECK_EQ(demi_getsockname(lqd, (struct sockaddr *)&a, &len), 0);

    demi_qtoken_t qt;
    c = connect_accept(lqd, &a, &s);
    CHECK_EQ(demi_close(c), 0);
    CHECK_EQ(demi_pop(&qt, s), 0);
    demi_qresult_t qr = wait_for(qt);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
    CHECK_EQ(qr.qr_value.sga.sga_numsegs, 0);
    CHECK_EQ(demi_close(s), 0);

    c = connect_accept(lqd, &a, &s);
    struct linger lg = {1, 0};
    CHECK_EQ(demi_setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    CHECK_EQ(demi_close(s), 0);
    CHECK_EQ(demi_pop(&qt, c), 0);
    qr = wait_for(qt);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_FAILED);
    CHECK_EQ(qr.qr_ret, ECONNRESET);
    CHECK_EQ(demi_close(c), 0);
    CHECK_EQ(demi_close(lqd), 0);
}

/* Runs the scenario in a child with DEMI_LOG=@level, its stderr in @path. */
static void run_child(const char *level, const char *path)
{
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || dup2(fd, 2) < 0)
            _exit(3);
        setenv("DEMI_LOG", level, 1);
        setenv("LIBOS", "catnap", 1);
        setenv("TCP_SACK", "false", 1);
        scenario();
        _exit(0);
    }
    int st;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        FILE *f = fopen(path, "r");
        char line[600];
        while (f && fgets(line, sizeof(line), f))
            fputs(line, stderr);
        fprintf(stderr, "the DEMI_LOG=%s child failed (status %d)\n", level, st);
        exit(1);
    }
}

static int count(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    char line[600];
    int n = 0;
    while (fgets(line, sizeof(line), f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

int main(void)
{
    char want[64];
    snprintf(want, sizeof(want), "%d.%d.%d", DEMI_VERSION_MAJOR, DEMI_VERSION_MINOR, DEMI_VERSION_PATCH);
    CHECK(demi_version() != NULL);
    CHECK(strcmp(demi_version(), want) == 0);

    char dir[] = "/tmp/demi-loglevels-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char info[128], debug[128], start[160];
    snprintf(info, sizeof(info), "%s/info", dir);
    snprintf(debug, sizeof(debug), "%s/debug", dir);
    snprintf(start, sizeof(start), "libdemi: info: version %s initialised catnap ", want);

    static const char *const events[] = {"accepted",
                                         "connection established",
                                         "closed by the peer (FIN)",
                                         "receive failed: Connection reset by peer",
                                         "closed by the application (abortive: SO_LINGER 0, RST)",
                                         "closed by the application (graceful)"};
    run_child("debug", debug);
    CHECK_EQ(count(debug, start), 1);
    CHECK_EQ(count(debug, "libdemi: debug: config: TCP_SACK = false\n"), 1);
    CHECK_EQ(count(debug, "libdemi: debug: config: MTU = 1500 (default)"), 1);
    CHECK(count(debug, "libdemi: debug: config: ") >= 40);
    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
        if (count(debug, events[i]) < 1) {
            fprintf(stderr, "DEMI_LOG=debug: no line with \"%s\"\n", events[i]);
            return 1;
        }
    }
    CHECK(count(debug, "catnap: tcp 127.0.0.1:") >= 6);

    run_child("info", info);
    CHECK_EQ(count(info, start), 1);
    CHECK_EQ(count(info, "libdemi: debug:"), 0);
    CHECK_EQ(count(info, "config: "), 0);
    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
        CHECK_EQ(count(info, events[i]), 0);

    unlink(info);
    unlink(debug);
    rmdir(dir);
    printf("log levels: ok (version %s)\n", demi_version());
    return 0;
}
