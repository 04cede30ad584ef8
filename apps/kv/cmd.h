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
    /* What CLIENT LIST, SLOWLOG and MONITOR show, set by the network loop
     * (empty in the unit tests). */
    char addr[24], laddr[24]; /* "ip:port" of the peer and of our end */
    int fd;                   /* the queue descriptor */
    int64_t ctime_ms;         /* connected at (unix ms) */
    int64_t atime_ms;         /* last command at (unix ms) */
    const char *last_cmd;     /* the last command's full name ("client|list"); NULL before one */
    bool monitor;             /* MONITOR: receives every later command */
    bool reply_off;           /* CLIENT REPLY OFF: no replies */
    bool reply_skip;          /* CLIENT REPLY SKIP: no reply to the next command */
};

struct kv_cmd_slot;
struct kv_slowlog;

/* What the network loop knows of one client's buffers (CLIENT LIST). */
struct kv_client_mem {
    uint64_t qbuf;  /* unparsed input */
    uint64_t omem;  /* replies not yet taken by the network */
    uint64_t total; /* every buffer of the client */
};

/*
 * The network loop's clients, for CLIENT LIST, CLIENT KILL and MONITOR
 * (kv.c sets these; in the unit tests they are NULL and the command layer
 * knows only the client running the command).
 */
struct kv_clients_ops {
    /* The client after @prev (NULL: the first), or NULL after the last. */
    struct kv_client *(*next)(struct kv_client *prev);
    void (*mem)(const struct kv_client *c, struct kv_client_mem *m);
    /* Disconnects @c: at once, or after its pending replies when it is
     * the client running the command. */
    void (*kill)(struct kv_client *c);
    /* Gives one MONITOR line (ending in CRLF) to every monitor; NULL with
     * @len when the line is too large for a monitor's output limit. */
    void (*monitor_feed)(const char *line, size_t len);
};

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
    /* AOF rewrite (BGREWRITEAOF; aof.h). */
    bool rewrite_in_progress;
    bool rewrite_ok;          /* the last rewrite succeeded (or none ran) */
    uint64_t rewrites;        /* rewrites started */
    uint64_t rewrite_fails;   /* consecutive failed rewrites */
    uint64_t base_size;       /* bytes after the last rewrite, or replayed at start */
    int64_t rewrite_start_ms; /* when the running rewrite started */
    int64_t last_rewrite_ms;  /* how long the last one took, or -1 */
};

/* Redis's client-output-buffer-limit for one class of clients: a client
 * whose replies not yet taken by the network reach @hard bytes, or stay at
 * @soft bytes or more for @soft_secs seconds, is disconnected (0: no such
 * limit). demi-kv's clients are all of the "normal" class; the replica and
 * pubsub values are kept only for CONFIG GET and SET. */
struct kv_obuf_limit {
    uint64_t hard, soft, soft_secs;
};

enum { KV_OBUF_NORMAL, KV_OBUF_REPLICA, KV_OBUF_PUBSUB, KV_OBUF_CLASSES };

/* The defaults for normal clients (Redis's are 0 0 0, no limit): 1 GiB
 * hard, the same as client-query-buffer-limit and twice proto-max-bulk-len,
 * so that a client can always GET the largest value it can SET; 16 MiB
 * soft for 60 s, which is what holds a client that does not read (kv.c
 * also stops reading a client at its soft limit). */
#define KV_OBUF_HARD_DEFAULT      ((uint64_t)1 << 30)
#define KV_OBUF_SOFT_DEFAULT      ((uint64_t)16 << 20)
#define KV_OBUF_SOFT_SECS_DEFAULT 60
#define KV_MAXCLIENTS_DEFAULT     10000

/* Parses a client-output-buffer-limit value ("normal 1gb 16mb 60", groups
 * of a class and three numbers) into @l. 0, or EINVAL with a Redis-style
 * reason in @why. */
int kv_obuf_parse(const char *v, struct kv_obuf_limit l[KV_OBUF_CLASSES], const char **why);
/* Parses a memory value as Redis does ("100", "64mb", "1gb", "10k"). */
int kv_mem_parse(const char *v, uint64_t *out);

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
    /* Limits (CONFIG GET and SET, INFO); the network loop enforces them. */
    struct kv_obuf_limit obuf_limit[KV_OBUF_CLASSES];
    uint64_t maxclients;
    uint64_t maxmemory;  /* 0: none; else compared with the heap in use */
    bool over_maxmemory; /* set by the loop: "denyoom" commands get -OOM */
    uint64_t rejected_connections;
    uint64_t obuf_disconnections; /* over client-output-buffer-limit */
    uint64_t mem_disconnections;  /* the greediest client, when memory ran short */
    uint64_t hop_pops_retried;    /* --threads: pipe pops failed (no heap) and posted again */
    /* What the clients' buffers hold (INFO memory's mem_clients_normal),
     * when the loop provides it. */
    uint64_t (*clients_mem)(void);
    /* Called when a command cannot get memory: frees some by
     * disconnecting the client holding the most, if another than the one
     * running. Returns true if it freed something. */
    bool (*reclaim)(void);
    /* Automatic AOF rewrite (CONFIG auto-aof-rewrite-percentage and
     * auto-aof-rewrite-min-size), and BGREWRITEAOF's entry into the loop:
     * NULL when started, else the error text. */
    uint64_t aof_rewrite_perc, aof_rewrite_min_size;
    const char *(*bgrewriteaof)(void);
    uint16_t port;
    char bind[16];
    const char *libos;
    /* What the log records for the command that just ran instead of its
     * own arguments, when it set one (kv_propagate); kv_exec clears it. */
    int prop_argc;
    struct resp_arg *prop_argv;
    struct kv_cmd_slot *table; /* command name hash table */
    uint32_t table_mask;
    /* Server and connection commands (t_server.c). */
    struct kv_clients_ops clients;
    uint64_t monitors;           /* clients in MONITOR mode */
    uint64_t blocked_clients;    /* INFO clients: clients in a blocking command */
    uint64_t used_memory_peak;   /* the most INFO memory has seen */
    struct reply *reply_real;    /* CLIENT REPLY OFF: where CLIENT REPLY ON's reply goes */
    bool shutdown;               /* SHUTDOWN: the loop exits after this batch */
    bool shutdown_nosave;        /* ... with NOSAVE (nothing to save in demi-kv either way) */
    bool shutdown_save;          /* ... with SAVE (demi-kv has no snapshot to save: logged) */
    int64_t slowlog_slower_than; /* us; -1: slowlog off (CONFIG slowlog-log-slower-than) */
    uint64_t slowlog_max_len;
    struct kv_slowlog *slowlog;
    /* instantaneous_ops_per_sec: commands counted at each cron tick. */
    int64_t ops_sample_ms;
    uint64_t ops_sample_cmds;
    uint64_t ops_samples[16];
    unsigned ops_sample_idx;
    char run_id[41];
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

/* Every 100 ms from the loop: the instantaneous statistics of INFO. */
void kv_server_cron(struct kv_server *s);

/* Active expiry: deletes keys whose time has passed, sampling as Redis
 * does, for at most @budget_us microseconds. Returns how many it deleted. */
size_t kv_active_expire(struct kv_server *s, int64_t budget_us);

/*
 * demi-kv --threads: the keyspace split across threads, each the only one
 * to touch its part. A key belongs to one of Redis Cluster's 16384 slots
 * (CRC16 of the key, or of the part between its first '{' and the next
 * '}' when that part is not empty: a hash tag), and slot s to thread
 * s mod n.
 */
#define KV_SLOTS 16384
unsigned kv_key_slot(const uint8_t *key, size_t len);

enum kv_route_kind {
    KV_ROUTE_HERE,      /* no key (or an error the command replies itself): the client's own thread runs it */
    KV_ROUTE_SHARD,     /* every key belongs to thread @shard */
    KV_ROUTE_CROSSSLOT, /* keys of several threads: Redis Cluster's CROSSSLOT error */
    KV_ROUTE_ALL,       /* the whole keyspace: every thread runs it, the replies combined by @combine */
    KV_ROUTE_REFUSED,   /* not served with threads: the error @why */
};

enum kv_combine {
    KV_COMBINE_SUM,    /* integers added (DBSIZE) */
    KV_COMBINE_ALL_OK, /* the first error, else the client's thread's reply (FLUSHALL, CONFIG SET) */
    KV_COMBINE_ARRAYS, /* arrays joined (KEYS) */
};

struct kv_route {
    enum kv_route_kind kind;
    unsigned shard;
    enum kv_combine combine;
    const char *why;
};

/* Where the command line @argv runs when the keyspace is split into
 * @nshards parts. */
void kv_route(const struct kv_server *s, int argc, const struct resp_arg *argv, unsigned nshards,
              struct kv_route *out);

#endif
