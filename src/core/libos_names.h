/*
 * The network libOSes that LIBOS may name, in one list: config.c checks
 * names against it and src/libos/registry.c maps each to its constructor.
 * It lives in core, beside the config that reads it, and must stay a
 * header of macros only, so that config.c (built alone for its fuzzer)
 * needs nothing from src/libos.
 *
 * X(name, constructor, why_not): a NULL constructor marks a libOS this build
 * cannot run, and why_not says why. cattree is not listed: it is the storage
 * libOS, started by demi_open beside the network libOS.
 */
#ifndef DEMI_CORE_LIBOS_NAMES_H
#define DEMI_CORE_LIBOS_NAMES_H

#define LIBOS_NETWORK_LIST(X)   LIBOS_NETWORK_FIRST_(X) LIBOS_NETWORK_REST_(X)
#define LIBOS_NETWORK_FIRST_(X) X(catnap, catnap_create, NULL)
#define LIBOS_NETWORK_REST_(X)                                                                                         \
    X(catnip, catnip_create, NULL)                                                                                     \
    X(catpowder, catpowder_create, NULL)                                                                               \
    X(catmint, NULL,                                                                                                   \
      "catmint needs an RDMA NIC and rdma-core; it is not implemented, and this machine has no RDMA device")

/* "catnap, catnip, ...", a string literal: for messages that list the names.
 * (The list is split at its first entry so that no separator leads.) */
#define LIBOS_NAME_STR_(name, create, why_not)       #name
#define LIBOS_COMMA_NAME_STR_(name, create, why_not) ", " #name
#define LIBOS_KNOWN_NAMES                            LIBOS_NETWORK_FIRST_(LIBOS_NAME_STR_) LIBOS_NETWORK_REST_(LIBOS_COMMA_NAME_STR_)

#endif
