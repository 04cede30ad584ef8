/*
 * demi-kv's command layer: executes one parsed command against the
 * keyspace and writes its reply, byte for byte what Redis 7.0 (configured
 * with one database and no persistence) replies to the same command, errors
 * included. It knows nothing of sockets: the network loop (kv.c) and the
 * unit tests feed it argument vectors and a reply builder.
 */
#ifndef DEMI_KV_CMD_H
#define DEMI_KV_CMD_H

#include "reply.h"
#include "resp.h"
#include "store.h"

#include <stdbool.h>
#include <stdint.h>

/* What INFO reports as the Redis version whose replies demi-kv follows. */
#define KV_REDIS_VERSION "7.0.0"
#define KV_VERSION       "0.1.0"

struct kv_client {
    uint64_t id;
    char *name;             /* CLIENT SETNAME; NULL when unnamed */
    bool close_after_reply; /* QUIT: close once the replies are out */
};

struct kv_cmd_slot;

/*
 * Called before a command that may change the keyspace runs (the commands
 * flagged "write"), when set: the append-only log's hook (kv.c). Returns
 * NULL to let the command run, or an error text ("MISCONF ...") that
 * becomes the command's reply instead.
 */
typedef const char *(*kv_write_hook)(void *arg, int argc, const struct resp_arg *argv);

/* The append-only log, as INFO persistence reports it (kept by kv.c). */
struct kv_aof_info {
    bool enabled;
    int last_err;      /* 0, or the errno of the last failed append (writes refused) */
    uint64_t records;  /* records appended since start */
    uint64_t commands; /* commands in them */
    uint64_t bytes;    /* payload bytes in the log, replayed ones included */
    uint64_t failures; /* appends that failed */
    uint64_t replayed; /* commands replayed at start */
};

struct kv_server {
    struct kv_store store;
    int64_t (*clock_ms)(void); /* unix time in ms; tests may replace it */
    int64_t start_ms;
    uint64_t next_client_id;
    /* Maintained by the network loop, reported by INFO. */
    uint64_t connections_received;
    uint64_t connected_clients;
    uint64_t pushes;
    uint64_t commands;
    /* Changes to the keyspace so far (Redis's server.dirty): a command
     * that leaves it unchanged (a failed SET NX, DEL of missing keys, an
     * error) does not count. The log records only commands that do. */
    uint64_t dirty;
    kv_write_hook write_hook;
    void *write_hook_arg;
    struct kv_aof_info aof;
    uint16_t port;
    char bind[16];
    const char *libos;
    struct kv_cmd_slot *table; /* command name hash table */
    uint32_t table_mask;
};

/* The wall clock in ms, as Redis's mstime(). */
int64_t kv_now_ms(void);

/* 0 or ENOMEM. */
int kv_server_init(struct kv_server *s);
void kv_server_free(struct kv_server *s);

void kv_client_init(struct kv_server *s, struct kv_client *c);
void kv_client_free(struct kv_client *c);

/* Executes one command (argc >= 1) and writes its reply to @r. After a
 * QUIT, c->close_after_reply is set. */
void kv_exec(struct kv_server *s, struct kv_client *c, int argc, const struct resp_arg *argv, struct reply *r);

/* Active expiry: deletes keys whose time has passed, sampling as Redis
 * does, for at most @budget_us microseconds. Returns how many it deleted. */
size_t kv_active_expire(struct kv_server *s, int64_t budget_us);

#endif
