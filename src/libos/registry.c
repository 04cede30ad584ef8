/*
 * The libOS registry: maps LIBOS names to constructors, and says plainly
 * why a libOS that is not available cannot run.
 */
#include "libos/libos.h"

#include "core/log.h"

#include <errno.h>
#include <string.h>

struct libos_desc {
    const char *name;
    int (*create)(struct runtime *rt, struct libos **out);
    const char *why_not; /* when create is NULL */
};

static const struct libos_desc registry[] = {
    {"catnap", catnap_create, NULL},
    {"catnip", catnip_create, NULL},
    {"catpowder", catpowder_create, NULL},
    {"catmint", NULL,
     "catmint needs an RDMA NIC and rdma-core; it is not implemented, and this machine has no RDMA device"},
};

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
    log_error("LIBOS=%s: unknown libOS (known: catnap, catnip, catpowder, catmint)", name);
    return EINVAL;
}
