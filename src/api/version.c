/*
 * demi_version(): the library's version string. It must not depend on
 * demi_init or any runtime state, so a program can print it before (or
 * instead of) starting libdemi.
 */
#include <demi/version.h>

#define DEMI_STR2(x) #x
#define DEMI_STR(x)  DEMI_STR2(x)

const char *demi_version(void)
{
    return DEMI_STR(DEMI_VERSION_MAJOR) "." DEMI_STR(DEMI_VERSION_MINOR) "." DEMI_STR(DEMI_VERSION_PATCH);
}
