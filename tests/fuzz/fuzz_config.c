/*
 * libFuzzer target for the configuration loader (src/core/config.c), built
 * with clang -fsanitize=fuzzer,address,undefined (see CMakeLists.txt) and run
 * by tests/fuzz/test_fuzz_config.sh. Each input is the contents of a config
 * file. It is loaded twice:
 *   - by config_parse_yaml() from a malloc'd copy of exactly its bytes, so
 *     that ASan reports any read past them, then config_validate();
 *   - by config_load() from a memfd, the path demi_init() takes (open,
 *     fstat, read, parse, environment, validation).
 * The same bytes (from the second, up to a NUL) are also the value of one
 * environment variable, chosen by the first byte, for config_apply_env():
 * EAL_INIT and ARP_TABLE have parsers of their own there.
 * Each must return 0 or a positive errno with a one-line message (empty on
 * success), leave a config whose lists are within bounds, and free all it
 * holds: LeakSanitizer runs after every input. Neither may hang: libFuzzer's
 * -timeout catches that.
 */
#include "core/config.h"
#include "core/log.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* A broken promise of the loader: report it the way a sanitizer would. */
static void fail(const char *what, int rc, const char *err)
{
    fprintf(stderr, "fuzz_config: %s (rc %d, err \"%s\")\n", what, rc, err);
    abort(); /* a test harness: this is the finding */
}

static void check(const struct config *c, int rc, const char *err, bool loaded)
{
    if (rc != 0 && rc != EINVAL && rc != ENOMEM && !(loaded && rc == EFBIG))
        fail("unexpected return value", rc, err);
    if (strchr(err, '\n'))
        fail("message spans several lines", rc, err);
    if ((rc == 0) != (err[0] == '\0'))
        fail(rc ? "error without a message" : "message without an error", rc, err);
    if (c->eal_argc < 0 || c->eal_argc > CONFIG_MAX_EAL || c->n_arp < 0 || c->n_arp > CONFIG_MAX_ARP)
        fail("list out of bounds", rc, err);
    for (int i = 0; i < c->eal_argc; i++)
        if (!c->eal_argv[i])
            fail("NULL EAL argument", rc, err);
    if (!memchr(c->linux_interface_name, '\0', sizeof(c->linux_interface_name)) ||
        !memchr(c->libos, '\0', sizeof(c->libos)) || !memchr(c->raw_backend, '\0', sizeof(c->raw_backend)))
        fail("unterminated string", rc, err);
}

/* One variable of each kind of value, and the two with parsers of their own. */
static const char *const env_vars[] = {
    "EAL_INIT",        "ARP_TABLE", "MTU",   "HEAP_SIZE", "ARP_CACHE_TTL",          "LOCAL_IPV4_ADDR",
    "LOCAL_LINK_ADDR", "LINGER",    "LIBOS", "HUGEPAGES", "TCP_CONGESTION_CONTROL", "LINUX_INTERFACE_NAME",
    "KEEPALIVE",
};

static void fuzz_env(const uint8_t *data, size_t size)
{
    struct config c;
    char err[256];
    if (size < 2)
        return;
    const char *var = env_vars[data[0] % (sizeof(env_vars) / sizeof(env_vars[0]))];
    char *val = strndup((const char *)data + 1, size - 1);
    if (!val)
        abort();
    setenv(var, val, 1);
    config_defaults(&c);
    int rc = config_apply_env(&c, err, sizeof(err));
    check(&c, rc, err, false);
    if (rc == 0) {
        rc = config_validate(&c, err, sizeof(err));
        check(&c, rc, err, false);
    }
    config_free(&c);
    unsetenv(var);
    free(val);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* Unknown keys warn once per input: keep stderr for findings. */
    log_level_g = LOGL_ERROR;
    /* config_load() reads these; the fuzzer's environment must not decide. */
    unsetenv("CONFIG_PATH");
    for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++)
        unsetenv(env_vars[i]);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config c;
    char err[256];

    char *text = malloc(size ? size : 1);
    if (!text)
        abort(); /* a test harness: out of memory is not a finding */
    if (size)
        memcpy(text, data, size);
    config_defaults(&c);
    int rc = config_parse_yaml(&c, text, size, err, sizeof(err));
    check(&c, rc, err, false);
    if (rc == 0) {
        rc = config_validate(&c, err, sizeof(err));
        check(&c, rc, err, false);
    }
    config_free(&c);
    free(text);

    /* The same bytes as a file. A failed load must own nothing. */
    int fd = memfd_create("fuzz_config", MFD_CLOEXEC);
    if (fd < 0)
        abort();
    if (size && write(fd, data, size) != (ssize_t)size)
        abort();
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    rc = config_load(&c, path, err, sizeof(err));
    check(&c, rc, err, true);
    if (rc != 0 && c.eal_argc != 0)
        fail("a failed load kept its EAL arguments", rc, err);
    config_free(&c);
    close(fd);

    fuzz_env(data, size);
    return 0;
}
