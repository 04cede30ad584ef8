/*
 * Two-party harness for the libOS suite: a server role in a forked child
 * and a client role in the parent, each with its own libdemi instance, so
 * the same test runs on any libOS (LIBOS=...), including those that need
 * one process per device. Public API only.
 *
 * Environment: DEMI_TEST_SERVER_IP (default 127.0.0.1) is where the client
 * connects and what the server binds; SERVER_CONFIG_PATH / CLIENT_CONFIG_PATH
 * become CONFIG_PATH in the respective process when set. Each role can run
 * in its own network namespace (DEMI_SERVER_NETNS, DEMI_CLIENT_NETNS: names
 * under /var/run/netns) with its own settings (DEMI_SERVER_ENV,
 * DEMI_CLIENT_ENV: "KEY=VALUE KEY=VALUE", e.g. LIBOS=catpowder ...), so one
 * side can be libdemi's stack and the other Linux's.
 */
#ifndef DEMI_TESTS_PAIR_H
#define DEMI_TESTS_PAIR_H

#include <demi/libos.h>
#include <demi/sga.h>
#include <demi/wait.h>

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

struct pair {
    struct sockaddr_in server; /* bind address (port 0) in the server; connect address in the client */
    int pipe_fd;
    void *arg;
};

typedef int (*pair_fn)(struct pair *p);

/* For single-process tests: enters the server role (namespace and
 * settings) and calls demi_init. Exits 77 if the libOS cannot run here. */
void pair_init_single(void);

/* Runs @server in a child and @client here. Returns 0 when both return 0. */
int pair_run(pair_fn server, pair_fn client, void *arg);

/* Called by the server once it listens on @port: releases the client. */
void pair_ready(struct pair *p, uint16_t port);

/* demi_wait with a timeout in seconds; exits with a message on error. */
void pair_wait(demi_qresult_t *qr, demi_qtoken_t qt, int seconds);

/* Canned servers: echo every pop back (TCP: until the client closes, for
 * every connection; UDP: forever, to the sender). arg: unused. */
int pair_tcp_echo_server(struct pair *p);
int pair_udp_echo_server(struct pair *p);

/* Prints the role's data-path copy count (demi_get_stats); with
 * DEMI_TEST_ZERO_COPY=1, returns 1 (with a message) if anything was copied. */
int pair_check_copies(const char *who);

/* Fills/checks a deterministic pattern. */
void pair_fill(uint8_t *p, size_t len, uint64_t seed, size_t off);
bool pair_check(const uint8_t *p, size_t len, uint64_t seed, size_t off);

/* Raises RLIMIT_NOFILE to its hard limit (for many-connection tests). */
void pair_raise_nofile(void);

#endif
