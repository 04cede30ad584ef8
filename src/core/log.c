/*
 * Logging: one line per message on stderr, prefixed "libdemi: <level>: ".
 * Never allocates, never aborts.
 */
#include "core/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int log_level_g = LOGL_WARN;

static const char *const names[] = {"error", "warn", "info", "debug"};
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int init_err;

static void read_env(void)
{
    const char *v = getenv("DEMI_LOG");
    if (!v || !*v)
        return;
    for (int i = 0; i < 4; i++) {
        if (strcmp(v, names[i]) == 0) {
            log_level_g = i;
            return;
        }
    }
    init_err = EINVAL;
    log_msg(LOGL_WARN, "DEMI_LOG=%s: unknown level (use error, warn, info or debug); using warn", v);
}

int log_init(void)
{
    pthread_once(&once, read_env);
    return init_err;
}

void log_msg(int level, const char *fmt, ...)
{
    char line[512];
    int n = snprintf(line, sizeof(line), "libdemi: %s: ", names[level < 0 ? 0 : level > 3 ? 3 : level]);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof(line))
        vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    /* One fputs of the whole line keeps lines from threads apart. */
    size_t len = strlen(line);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len] = '\n';
    line[len + 1] = '\0';
    fputs(line, stderr);
}
