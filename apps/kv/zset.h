/*
 * The skip list behind demi-kv's sorted sets (t_zset.c), exposed for its
 * unit test (tests/kv/test_kv_zset.c). Nodes are ordered by (score,
 * member bytes); each forward link carries its span (how many nodes it
 * jumps over), so the rank of a node and the node at a rank are found in
 * O(log N), like Redis's zskiplist.
 *
 * A node does not own its member's bytes: it points at them (in the
 * sorted set, at the key of the dict entry that maps the member to the
 * node), so a member is stored once. Every byte the list allocates is
 * counted with kv_obj_account. Nothing here aborts; an allocation failure
 * comes back as NULL or ENOMEM with the list unchanged.
 */
#ifndef DEMI_KV_ZSET_H
#define DEMI_KV_ZSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZSL_MAXLEVEL 32

struct zsl_node {
    const uint8_t *ele; /* the member's bytes (not owned) */
    double score;
    struct zsl_node *back; /* NULL for the first node */
    uint32_t len;
    uint32_t nlev;
    struct zsl_level {
        struct zsl_node *fwd;
        size_t span; /* nodes from this one to fwd (fwd included) */
    } lv[];
};

struct zsl {
    struct zsl_node *head; /* a node of ZSL_MAXLEVEL levels, no member */
    struct zsl_node *tail;
    size_t len;
    int level;    /* levels in use (at least 1) */
    uint64_t rng; /* the levels' generator (xorshift) */
    size_t bytes; /* head and nodes */
};

/* A score range: [min, max], either end exclusive when its flag is set. */
struct zrange_score {
    double min, max;
    bool minex, maxex;
};

/* A member range: LEX_MIN and LEX_MAX are "-" and "+" (below and above
 * every member); LEX_STR ends compare the bytes, exclusive when ex. */
enum { LEX_STR, LEX_MIN, LEX_MAX };
struct zrange_lex {
    int minkind, maxkind;
    const uint8_t *min, *max;
    size_t minlen, maxlen;
    bool minex, maxex;
};

/* An empty list whose levels come from @seed. 0 or ENOMEM. */
int zsl_init(struct zsl *z, uint64_t seed);
/* Frees every node and the head (not the members' bytes). */
void zsl_free(struct zsl *z);
/* Adds a member known to be absent; NULL with errno ENOMEM. */
struct zsl_node *zsl_insert(struct zsl *z, double score, const uint8_t *ele, uint32_t len);
/* Unlinks and frees a node. */
void zsl_delete_node(struct zsl *z, struct zsl_node *n);
/* Gives a node a new score, moving it if its place changes (no
 * allocation, so it cannot fail). */
void zsl_update_score(struct zsl *z, struct zsl_node *n, double score);
/* The node's rank, from 1. */
size_t zsl_rank(const struct zsl *z, const struct zsl_node *n);
/* The node at a rank (1..len), or NULL. */
struct zsl_node *zsl_by_rank(const struct zsl *z, size_t rank);
/* Removes the nodes of ranks [start, end] (1-based, in range), calling
 * @fn on each before it is freed; returns how many. O(log N + M). */
size_t zsl_delete_rank_range(struct zsl *z, size_t start, size_t end, void (*fn)(struct zsl_node *n, void *arg),
                             void *arg);

/* The first and last nodes within a range, with their ranks; NULL when
 * none is. */
struct zsl_node *zsl_first_in_score(const struct zsl *z, const struct zrange_score *r, size_t *rank);
struct zsl_node *zsl_last_in_score(const struct zsl *z, const struct zrange_score *r, size_t *rank);
struct zsl_node *zsl_first_in_lex(const struct zsl *z, const struct zrange_lex *r, size_t *rank);
struct zsl_node *zsl_last_in_lex(const struct zsl *z, const struct zrange_lex *r, size_t *rank);

/* Byte order of members, as Redis compares them (memcmp, then length). */
int zsl_cmp_ele(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

#endif
