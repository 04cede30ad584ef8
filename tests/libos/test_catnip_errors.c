/*
 * catnip's configuration errors: each gives demi_init a clear errno and
 * one line naming the problem, prints nothing on stdout (the EAL's usage
 * text is kept out of the application's output), and leaves no DPDK
 * run-time directory behind. Each case runs in its own child, since the
 * EAL initialises once per process. Also: a second thread's catnip finds
 * the only port taken (EBUSY) while the first thread's works.
 */
#include "tcheck.h"

#include <demi/libos.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs demi_init in a child with @env (NAME=VALUE pairs, NULL-ended);
 * returns its errno; *out gets what it printed on stdout, *err on stderr. */
static int init_in_child(const char *const *env, char *out, size_t outlen, char *err, size_t errlen)
{
    int po[2], pe[2];
    CHECK_EQ(pipe(po), 0);
    CHECK_EQ(pipe(pe), 0);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        dup2(po[1], STDOUT_FILENO);
        dup2(pe[1], STDERR_FILENO);
        for (const char *const *e = env; *e; e++)
            putenv((char *)*e);
        int r = demi_init(NULL);
        fflush(NULL);
        _exit(r > 255 ? 255 : r);
    }
    close(po[1]);
    close(pe[1]);
    ssize_t n = read(po[0], out, outlen - 1);
    out[n > 0 ? n : 0] = '\0';
    size_t at = 0;
    while (at + 1 < errlen && (n = read(pe[0], err + at, errlen - 1 - at)) > 0)
        at += (size_t)n;
    err[at] = '\0';
    close(po[0]);
    close(pe[0]);
    int st;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK(WIFEXITED(st)); /* no crash */
    return WEXITSTATUS(st);
}

static unsigned long free_hugepages(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char l[128];
    unsigned long n = 0;
    while (f && fgets(l, sizeof(l), f))
        if (sscanf(l, "HugePages_Free: %lu", &n) == 1)
            break;
    if (f)
        fclose(f);
    return n;
}

static void expect(const char *what, const char *const *env, int err, const char *says)
{
    char out[4096], msg[16384];
    int r = init_in_child(env, out, sizeof(out), msg, sizeof(msg));
    if (r != err || !strstr(msg, says) || out[0]) {
        fprintf(stderr, "%s: demi_init gave %d (want %d), stdout \"%s\", stderr:\n%s\n(want it to say \"%s\")\n", what,
                r, err, out, msg, says);
        exit(1);
    }
    printf("%s: %s, and says \"%s\"\n", what, strerror(err), says);
}

#define NOHUGE "--no-pci --no-huge -m 128 "

static void *second_thread(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)demi_init(NULL);
}

int main(void)
{
    if (getuid() != 0) {
        printf("skip: catnip needs root here (DPDK's EAL)\n");
        return 77;
    }
    const char *base[] = {"LIBOS=catnip", "LOCAL_IPV4_ADDR=10.9.9.1", "HUGEPAGES=off", NULL};
    expect("no dpdk.eal_init", base, EINVAL, "dpdk.eal_init (EAL_INIT) is empty");
    expect("no local address", (const char *[]){"LIBOS=catnip", "EAL_INIT=" NOHUGE, NULL}, EINVAL, "local_ipv4_addr");
    expect("an unknown EAL option",
           (const char *[]){"LIBOS=catnip", "LOCAL_IPV4_ADDR=10.9.9.1", "EAL_INIT=--bogus", NULL}, EINVAL,
           "EAL initialisation failed");
    expect("no port", (const char *[]){"LIBOS=catnip", "LOCAL_IPV4_ADDR=10.9.9.1", "EAL_INIT=" NOHUGE, NULL}, ENODEV,
           "found no port");
    expect("an unknown device",
           (const char *[]){"LIBOS=catnip", "LOCAL_IPV4_ADDR=10.9.9.1", "EAL_INIT=" NOHUGE "--vdev=net_nosuch0", NULL},
           EINVAL, "EAL initialisation failed");
    expect("too few mbufs",
           (const char *[]){"LIBOS=catnip", "LOCAL_IPV4_ADDR=10.9.9.1", "EAL_INIT=" NOHUGE, "DPDK_MBUFS=100", NULL},
           EINVAL, "dpdk.mbufs");
    if (free_hugepages() == 0)
        expect("no hugepages",
               (const char *[]){"LIBOS=catnip", "LOCAL_IPV4_ADDR=10.9.9.1",
                                "EAL_INIT=--no-pci --vdev=net_memif0,role=server,socket=/tmp/demi-none.sock", NULL},
               ENOMEM, "no free hugepages");
    else
        printf("no hugepages: not checked (this machine has free hugepages)\n");

    /* One port, two threads: the first takes it, the second is told. */
    char dir[] = "/tmp/demi-catnip-errors.XXXXXX";
    CHECK(mkdtemp(dir));
    char eal[512];
    /* Jumbo frames on a memif port whose buffers cannot hold them. */
    snprintf(eal, sizeof(eal), "EAL_INIT=" NOHUGE "--vdev=net_memif0,role=server,socket=%s/j.sock,socket-abstract=no",
             dir);
    expect("MTU 9000 in 2 KiB memif buffers",
           (const char *[]){"LIBOS=catnip", "LOCAL_IPV4_ADDR=10.9.9.1", "HUGEPAGES=off", eal, "MTU=9000",
                            "ENABLE_JUMBO_FRAMES=true", NULL},
           EINVAL, "add bsize=9216 to its --vdev");
    snprintf(eal, sizeof(eal), "EAL_INIT=" NOHUGE "--vdev=net_memif0,role=server,socket=%s/m.sock,socket-abstract=no",
             dir);
    putenv(eal);
    putenv("LIBOS=catnip");
    putenv("LOCAL_IPV4_ADDR=10.9.9.1");
    putenv("HUGEPAGES=off");
    CHECK_EQ(demi_init(NULL), 0);
    pthread_t th;
    void *ret;
    CHECK_EQ(pthread_create(&th, NULL, second_thread, NULL), 0);
    CHECK_EQ(pthread_join(th, &ret), 0);
    CHECK_EQ((int)(intptr_t)ret, EBUSY);
    int qd;
    CHECK_EQ(demi_socket(&qd, AF_INET, SOCK_DGRAM, 0), 0);
    CHECK_EQ(demi_close(qd), 0);
    printf("a second thread: EBUSY while the first thread's catnip holds the only port\n");

    /* No run-time directory of ours is left (DPDK's default location). */
    char rundir[64];
    snprintf(rundir, sizeof(rundir), "/var/run/dpdk/demi%d", (int)getpid());
    struct stat sb;
    CHECK(stat(rundir, &sb) != 0);
    /* Nor ours in /tmp: the memif socket (if the PMD left it), the directory. */
    char sock[sizeof(dir) + 8];
    snprintf(sock, sizeof(sock), "%s/m.sock", dir);
    unlink(sock);
    snprintf(sock, sizeof(sock), "%s/j.sock", dir);
    unlink(sock);
    CHECK_EQ(rmdir(dir), 0);
    printf("catnip errors: ok\n");
    return 0;
}
