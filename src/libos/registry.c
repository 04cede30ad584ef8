/*
 * The libOS registry: maps LIBOS names to constructors, and says plainly
 * why a libOS that is not available cannot run.
 */
#include "libos/libos.h"
#include "core/libos_names.h"

#include "core/log.h"

#include <errno.h>
#include <string.h>

struct libos_desc {
    const char *name;
    int (*create)(struct runtime *rt, struct libos **out);
    const char *why_not; /* when create is NULL */
};

#define LIBOS_DESC_(name, create, why_not) {#name, create, why_not},
static const struct libos_desc registry[] = {LIBOS_NETWORK_LIST(LIBOS_DESC_)};

int libos_create(const char *name, struct runtime *rt, struct libos **out)
{
    for (size_t i = 0; i < sizeof(registry) / sizeof(registry[0]); i++) {
        if (strcmp(name, registry[i].name) != 0)
            continue;
        if (!registry[i].create) {
            log_error("LIBOS=%s: %s", name, registry[i].why_not);
            return ENOTSUP;
        }
        return registry[i].create(rt, out);
    }
    log_error("LIBOS=%s: unknown libOS (known: " LIBOS_KNOWN_NAMES ")", name);
    return EINVAL;
}
