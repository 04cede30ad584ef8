/*
 * Logging to stderr, filtered by DEMI_LOG=error|warn|info|debug (default
 * warn). The level is read once per process. Checks are a load and a
 * compare, but nothing on the per-packet or per-operation path may log
 * above debug level, and debug logging there is a bug too.
 */
#ifndef DEMI_CORE_LOG_H
#define DEMI_CORE_LOG_H

enum log_level { LOGL_ERROR = 0, LOGL_WARN = 1, LOGL_INFO = 2, LOGL_DEBUG = 3 };

extern int log_level_g;

/* Reads DEMI_LOG once; safe to call from several threads. Returns 0, or
 * EINVAL for an unknown level (which is then reported and ignored). */
int log_init(void);

void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_at(lvl, ...)                                                                                               \
    do {                                                                                                               \
        if ((lvl) <= log_level_g)                                                                                      \
            log_msg((lvl), __VA_ARGS__);                                                                               \
    } while (0)
#define log_error(...) log_at(LOGL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_at(LOGL_WARN, __VA_ARGS__)
#define log_info(...)  log_at(LOGL_INFO, __VA_ARGS__)
#define log_debug(...) log_at(LOGL_DEBUG, __VA_ARGS__)

/* Logs at most once per call site and process. */
#define log_once(lvl, ...)                                                                                             \
    do {                                                                                                               \
        static int once_;                                                                                              \
        if (!__atomic_exchange_n(&once_, 1, __ATOMIC_RELAXED))                                                         \
            log_at((lvl), __VA_ARGS__);                                                                                \
    } while (0)

#endif
