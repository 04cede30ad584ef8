/*
 * cattree crash safety: 20 times, a child process appends records with 32
 * pushes in flight and reports each acknowledged record number through a
 * pipe; the parent kills it with SIGKILL at a random moment, reopens the
 * log and reads it all back. Every reopen must give an exact prefix of the
 * records pushed (every byte checked, no torn record) that contains every
 * acknowledged one. The next child appends after that prefix.
 *
 * The child is this program re-executed ("child PATH FIRST FD"), so it
 * starts a fresh libdemi instance; the parent never shares its own.
 */
#include "storage_util.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#define ROUNDS 20
#define WINDOW 32

static uint32_t rec_len(uint64_t k)
{
    uint64_t s = k + 1;
    uint64_t r = trand(&s);
    return k % 100 == 3 ? (uint32_t)(65536 + r % 131072) : (uint32_t)(1 + r % 2000);
}

static int child(const char *path, uint64_t first, int fd)
{
    su_init();
    int qd;
    MUST(demi_open(&qd, path, O_RDWR | O_CREAT, 0600));
    char go = 'g';
    CHECK(write(fd, &go, 1) == 1);
    static demi_qtoken_t ring[WINDOW];
    for (uint64_t k = first;; k++) {
        uint64_t i = k - first;
        if (i >= WINDOW) {
            demi_qresult_t qr = su_wait(ring[i % WINDOW], 60);
            CHECK_EQ(qr.qr_opcode, DEMI_OPC_PUSH);
            uint64_t acked = k - WINDOW;
            CHECK(write(fd, &acked, sizeof(acked)) == sizeof(acked));
        }
        ring[i % WINDOW] = su_push_record(qd, k, rec_len(k), (uint32_t)(k % 3) + 1);
    }
}

/* Reads the whole log; returns its record count. Fails on any bad record. */
static uint64_t verify(const char *path)
{
    int qd, e;
    /* A killed process's I/O drains in the kernel after it is reaped, and
     * the file (with its lock) stays open until then: EBUSY for a moment. */
    for (int i = 0; (e = demi_open(&qd, path, O_RDWR, 0)) == EBUSY && i < 500; i++)
        usleep(10000);
    MUST(e);
    uint64_t n = 0;
    for (;;) {
        demi_qtoken_t qt;
        MUST(demi_pop(&qt, qd));
        demi_qresult_t qr = su_wait(qt, 30);
        CHECK_EQ(qr.qr_opcode, DEMI_OPC_POP);
        if (qr.qr_value.sga.sga_numsegs == 0)
            break;
        if (!su_check(&qr.qr_value.sga, n, rec_len(n))) {
            fprintf(stderr, "record %llu is not what was pushed\n", (unsigned long long)n);
            exit(1);
        }
        MUST(demi_sgafree(&qr.qr_value.sga));
        n++;
    }
    MUST(demi_close(qd));
    return n;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "child") == 0)
        return child(argv[2], strtoull(argv[3], NULL, 10), atoi(argv[4]));

    char dir[256], path[512];
    su_tmpdir(dir, sizeof(dir), "crash");
    snprintf(path, sizeof(path), "%s/log", dir);
    su_init();
    uint64_t seed = (uint64_t)time(NULL);
    printf("seed %llu\n", (unsigned long long)seed);
    uint64_t have = 0, acked_total = 0;
    int productive = 0;
    for (int round = 0; round < ROUNDS; round++) {
        int p[2];
        CHECK(pipe(p) == 0);
        char first[32], fdarg[16];
        snprintf(first, sizeof(first), "%llu", (unsigned long long)have);
        snprintf(fdarg, sizeof(fdarg), "%d", p[1]);
        fflush(NULL);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            execl("/proc/self/exe", argv[0], "child", path, first, fdarg, (char *)NULL);
            _exit(127);
        }
        close(p[1]);
        struct pollfd pf = {.fd = p[0], .events = POLLIN};
        char go;
        CHECK(poll(&pf, 1, 20000) == 1 && read(p[0], &go, 1) == 1 && go == 'g');
        /* A random moment once appends are being acknowledged (a slow
         * start, as under sanitizers, must not make rounds idle): from at
         * once to 40 ms after the first acknowledgement. */
        uint64_t a, acked = 0;
        bool any = false;
        CHECK(poll(&pf, 1, 20000) == 1 && read(p[0], &a, sizeof(a)) == sizeof(a) && a == have);
        acked = a;
        any = true;
        usleep((useconds_t)(trand(&seed) % 40000));
        CHECK(kill(pid, SIGKILL) == 0);
        int st;
        CHECK(waitpid(pid, &st, 0) == pid);
        if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)) {
            fprintf(stderr, "round %d: the child ended on its own (status %d)\n", round, st);
            return 1;
        }
        while (read(p[0], &a, sizeof(a)) == sizeof(a)) {
            CHECK(a == (any ? acked + 1 : have)); /* acknowledged in order */
            acked = a;
            any = true;
        }
        close(p[0]);
        if (any) {
            acked_total = acked + 1;
            productive++;
        }
        uint64_t n = verify(path);
        printf("round %2d: %llu records acknowledged in total, %llu in the log\n", round,
               (unsigned long long)acked_total, (unsigned long long)n);
        if (n < acked_total || n < have) {
            fprintf(stderr, "round %d: the log lost acknowledged records (%llu < %llu)\n", round, (unsigned long long)n,
                    (unsigned long long)acked_total);
            return 1;
        }
        have = n;
    }
    CHECK_EQ(productive, ROUNDS); /* every kill landed mid-append */
    su_rm_rf(dir);
    printf("crash: ok\n");
    return 0;
}
