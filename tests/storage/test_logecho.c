/*
 * demi-logecho (catnap sockets and a cattree log in one process): 500
 * messages of 1 B to 20 KB go through the server one after the other and
 * every echo is checked. The server is then killed with SIGKILL: since it
 * answers only once a message is durable, the log must hold every echoed
 * byte, in order, and nothing else.
 */
#include "storage_util.h"

#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#define NMSG 500

static uint32_t msg_len(uint64_t i)
{
    uint64_t s = i + 11;
    return (uint32_t)(1 + trand(&s) % 20000);
}

int main(void)
{
    const char *build = getenv("DEMI_BUILD");
    char exe[1024], dir[256], path[512];
    snprintf(exe, sizeof(exe), "%s/demi-logecho", build && *build ? build : "build");
    if (access(exe, X_OK) != 0) {
        fprintf(stderr, "%s: not built\n", exe);
        return 1;
    }
    su_tmpdir(dir, sizeof(dir), "logecho");
    snprintf(path, sizeof(path), "%s/log", dir);

    int out[2];
    CHECK(pipe(out) == 0);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        setenv("LIBOS", "catnap", 1);
        execl(exe, exe, "--addr", "127.0.0.1:0", "--log", path, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    char line[128] = "";
    size_t got = 0;
    struct pollfd pf = {.fd = out[0], .events = POLLIN};
    while (!strchr(line, '\n') && got < sizeof(line) - 1 && poll(&pf, 1, 20000) == 1) {
        ssize_t k = read(out[0], line + got, sizeof(line) - 1 - got);
        if (k <= 0)
            break;
        got += (size_t)k;
        line[got] = '\0';
    }
    unsigned port = 0;
    if (sscanf(line, "ready 127.0.0.1:%u", &port) != 1 || !port) {
        fprintf(stderr, "no ready line from demi-logecho (got \"%s\")\n", line);
        kill(pid, SIGKILL);
        return 1;
    }

    su_init();
    int qd;
    MUST(demi_socket(&qd, AF_INET, SOCK_STREAM, 0));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    demi_qtoken_t qt;
    MUST(demi_connect(&qt, qd, (struct sockaddr *)&a, sizeof(a)));
    CHECK_EQ(su_wait(qt, 10).qr_opcode, DEMI_OPC_CONNECT);
    uint64_t total = 0;
    for (uint64_t m = 0; m < NMSG; m++) {
        uint32_t len = msg_len(m);
        demi_sgarray_t sga = demi_sgaalloc(len);
        CHECK(sga.sga_numsegs == 1);
        su_fill(sga.sga_segs[0].sgaseg_buf, m, 0, len);
        MUST(demi_push(&qt, qd, &sga));
        MUST(demi_sgafree(&sga));
        CHECK_EQ(su_wait(qt, 10).qr_opcode, DEMI_OPC_PUSH);
        for (uint32_t have = 0; have < len;) {
            MUST(demi_pop(&qt, qd));
            demi_qresult_t qr = su_wait(qt, 10);
            CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
            CHECK(qr.qr_value.sga.sga_numsegs > 0);
            for (uint32_t s = 0; s < qr.qr_value.sga.sga_numsegs; s++) {
                const uint8_t *p = qr.qr_value.sga.sga_segs[s].sgaseg_buf;
                for (uint32_t i = 0; i < qr.qr_value.sga.sga_segs[s].sgaseg_len; i++, have++)
                    CHECK(have < len && p[i] == su_byte(m, have));
            }
            MUST(demi_sgafree(&qr.qr_value.sga));
        }
        total += len;
    }
    /* Every echo implies a durable record: a crash now loses nothing. */
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    MUST(demi_close(qd));

    int lq, e;
    for (int i = 0; (e = demi_open(&lq, path, O_RDONLY, 0)) == EBUSY && i < 500; i++)
        usleep(10000); /* the killed server's I/O drains first */
    MUST(e);
    uint64_t m = 0, off = 0, bytes = 0, records = 0;
    for (;;) {
        MUST(demi_pop(&qt, lq));
        demi_qresult_t qr = su_wait(qt, 10);
        CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
        if (qr.qr_value.sga.sga_numsegs == 0)
            break;
        records++;
        for (uint32_t s = 0; s < qr.qr_value.sga.sga_numsegs; s++) {
            const uint8_t *p = qr.qr_value.sga.sga_segs[s].sgaseg_buf;
            for (uint32_t i = 0; i < qr.qr_value.sga.sga_segs[s].sgaseg_len; i++) {
                CHECK(m < NMSG && p[i] == su_byte(m, off));
                bytes++;
                if (++off == msg_len(m)) {
                    m++;
                    off = 0;
                }
            }
        }
        MUST(demi_sgafree(&qr.qr_value.sga));
    }
    CHECK_EQ(bytes, total);
    MUST(demi_close(lq));
    su_rm_rf(dir);
    printf("logecho: %d messages, %llu bytes, %llu log records: ok\n", NMSG, (unsigned long long)total,
           (unsigned long long)records);
    return 0;
}
