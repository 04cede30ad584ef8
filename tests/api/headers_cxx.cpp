// Compile-only check: the public headers build as C++.
#include <demi/libos.h>
#include <demi/sga.h>
#include <demi/types.h>
#include <demi/version.h>
#include <demi/wait.h>

static_assert(DEMI_SGARRAY_MAXSIZE >= 16, "at least 16 segments");
static_assert(sizeof(demi_qtoken_t) == 8, "64-bit qtokens");

int headers_cxx_use();
int headers_cxx_use()
{
    demi_qresult_t qr;
    demi_qtoken_t qt = 0;
    int qd = 0;
    mode_t mode = 0600;
    return demi_wait(&qr, qt, nullptr) + demi_open(&qd, "log", 2, mode) + (demi_version()[0] != 0) + DEMI_VERSION_MAJOR + DEMI_VERSION_MINOR + DEMI_VERSION_PATCH;
}
