/*
 * apps/txn/msg.c: TxnStore's wire format (see msg.h). One table says which
 * fields each message type has; one size function, one encoder and one
 * decoder walk the fields in wire order, so the three cannot disagree.
 * Integers are written and read a byte at a time, little-endian, so the
 * code depends neither on the host's byte order nor on alignment.
 *
 * It must never trust a byte it decodes: every length is compared with the
 * bytes that remain before it is used, every bound (key, value, set, body)
 * holds on both sides, and it never reads or writes outside the buffers it
 * is given, never allocates and never aborts: a malformed frame is an
 * error with a static reason.
 */
#include "msg.h"

#include <errno.h>
#include <string.h>

/* What each type is called and which fields its body holds (msg.h). */
static const struct txn_type_info {
    const char *name;
    unsigned fields;
} txn_types[TXN_TYPE_END] = {
    [TXN_GET] = {"GET", TXN_F_TXNID | TXN_F_TS | TXN_F_KEY},
    [TXN_GET_REPLY] = {"GET_REPLY", TXN_F_STATUS | TXN_F_TS | TXN_F_VAL},
    [TXN_PUT] = {"PUT", TXN_F_TS | TXN_F_KEY | TXN_F_VAL},
    [TXN_PUT_REPLY] = {"PUT_REPLY", TXN_F_STATUS | TXN_F_TS},
    [TXN_PREPARE] = {"PREPARE", TXN_F_TXNID | TXN_F_TS | TXN_F_SETS},
    [TXN_PREPARE_REPLY] = {"PREPARE_REPLY", TXN_F_STATUS | TXN_F_TS},
    [TXN_COMMIT] = {"COMMIT", TXN_F_TXNID | TXN_F_TS},
    [TXN_COMMIT_REPLY] = {"COMMIT_REPLY", TXN_F_STATUS},
    [TXN_ABORT] = {"ABORT", TXN_F_TXNID},
    [TXN_ABORT_REPLY] = {"ABORT_REPLY", TXN_F_STATUS},
    [TXN_LOAD] = {"LOAD", TXN_F_TS | TXN_F_KEY | TXN_F_VAL},
    [TXN_LOAD_REPLY] = {"LOAD_REPLY", TXN_F_STATUS},
    [TXN_REPL_PREPARE] = {"REPL_PREPARE", TXN_F_TXNID | TXN_F_TS | TXN_F_SETS},
    [TXN_REPL_COMMIT] = {"REPL_COMMIT", TXN_F_TXNID | TXN_F_TS},
    [TXN_REPL_ABORT] = {"REPL_ABORT", TXN_F_TXNID},
    [TXN_REPL_ACK] = {"REPL_ACK", TXN_F_STATUS},
    [TXN_SYNC_BEGIN] = {"SYNC_BEGIN", TXN_F_TS},
    [TXN_SYNC_ITEM] = {"SYNC_ITEM", TXN_F_TS | TXN_F_KEY | TXN_F_VAL},
    [TXN_SYNC_PREPARED] = {"SYNC_PREPARED", TXN_F_TXNID | TXN_F_TS | TXN_F_SETS},
    [TXN_SYNC_END] = {"SYNC_END", TXN_F_TXNID | TXN_F_TS},
    [TXN_SYNC_DECIDED] = {"SYNC_DECIDED", TXN_F_TXNID | TXN_F_TS},
    [TXN_VIEW_CHANGE] = {"VIEW_CHANGE", TXN_F_TXNID | TXN_F_TS},
    [TXN_VIEW_START] = {"VIEW_START", TXN_F_TXNID | TXN_F_TS},
    [TXN_VIEW_INFO] = {"VIEW_INFO", TXN_F_TXNID | TXN_F_TS},
    [TXN_DECISION] = {"DECISION", TXN_F_TXNID},
    [TXN_DECISION_REPLY] = {"DECISION_REPLY", TXN_F_STATUS | TXN_F_TS},
};

static const char *const txn_status_names[TXN_ST_END] = {
    [TXN_ST_OK] = "OK",         [TXN_ST_NOTFOUND] = "NOTFOUND",     [TXN_ST_ABORT] = "ABORT",
    [TXN_ST_BADREQ] = "BADREQ", [TXN_ST_NOTPRIMARY] = "NOTPRIMARY", [TXN_ST_UNAVAIL] = "UNAVAIL",
    [TXN_ST_FULL] = "FULL",
};

/* The body's fields in the order they appear on the wire. */
static const unsigned txn_field_order[] = {TXN_F_STATUS, TXN_F_TXNID, TXN_F_TS, TXN_F_KEY, TXN_F_VAL, TXN_F_SETS};
#define TXN_NFIELDS (sizeof(txn_field_order) / sizeof(txn_field_order[0]))

/* How a byte string is bounded, and what to say when it is malformed. */
struct txn_str_rule {
    uint32_t max;
    const char *truncated, *too_long, *past_end;
};

static const struct txn_str_rule txn_key_rule = {TXN_KEY_MAX, "truncated key length", "key longer than TXN_KEY_MAX",
                                                 "key past the end of the body"};
static const struct txn_str_rule txn_val_rule = {TXN_VAL_MAX, "truncated value length", "value longer than TXN_VAL_MAX",
                                                 "value past the end of the body"};

unsigned txn_type_fields(uint8_t type)
{
    return type < TXN_TYPE_END ? txn_types[type].fields : 0;
}

const char *txn_type_name(uint8_t type)
{
    return txn_type_fields(type) ? txn_types[type].name : "?";
}

const char *txn_status_name(uint8_t status)
{
    return status < TXN_ST_END ? txn_status_names[status] : "?";
}

/* ---- Sizes ---- */

/* A string can be encoded when it is within its bound and has bytes to
 * copy (a NULL pointer only with length 0). */
static int str_ok(const struct txn_bytes *b, uint32_t max)
{
    return b->n <= max && (b->p != NULL || b->n == 0);
}

/* Adds the wire size of both sets to *SIZE; EINVAL when one is over a
 * bound. Sums stay far below 2^64: at most 2 x 64 entries of at most
 * 4 + 1024 + 4 + 256 KiB. */
static int sets_size(const struct txn_msg *m, uint64_t *size)
{
    if (m->nreads > TXN_SET_MAX || m->nwrites > TXN_SET_MAX)
        return EINVAL;
    *size += 4 + 4;
    for (uint32_t i = 0; i < m->nreads; i++) {
        if (!str_ok(&m->reads[i].key, TXN_KEY_MAX))
            return EINVAL;
        *size += 4 + (uint64_t)m->reads[i].key.n + 8;
    }
    for (uint32_t i = 0; i < m->nwrites; i++) {
        const struct txn_op *w = &m->writes[i];
        if (!str_ok(&w->key, TXN_KEY_MAX) || !str_ok(&w->val, TXN_VAL_MAX))
            return EINVAL;
        *size += 4 + (uint64_t)w->key.n + 4 + (uint64_t)w->val.n;
    }
    return 0;
}

/* Adds the wire size of field F of M to *SIZE; EINVAL when the field
 * cannot be encoded. */
static int field_size(const struct txn_msg *m, unsigned f, uint64_t *size)
{
    switch (f) {
    case TXN_F_STATUS:
        if (m->status >= TXN_ST_END)
            return EINVAL;
        *size += 1;
        return 0;
    case TXN_F_TXNID:
    case TXN_F_TS:
        *size += 8;
        return 0;
    case TXN_F_KEY:
        if (!str_ok(&m->key, TXN_KEY_MAX))
            return EINVAL;
        *size += 4 + (uint64_t)m->key.n;
        return 0;
    case TXN_F_VAL:
        if (!str_ok(&m->val, TXN_VAL_MAX))
            return EINVAL;
        *size += 4 + (uint64_t)m->val.n;
        return 0;
    case TXN_F_SETS:
        return sets_size(m, size);
    }
    return EINVAL;
}

size_t txn_msg_size(const struct txn_msg *m)
{
    unsigned fields = txn_type_fields(m->type);
    if (!fields)
        return 0;
    uint64_t body = 0;
    for (size_t i = 0; i < TXN_NFIELDS; i++)
        if ((fields & txn_field_order[i]) && field_size(m, txn_field_order[i], &body) != 0)
            return 0;
    if (body > TXN_BODY_MAX)
        return 0;
    return TXN_HDR_LEN + (size_t)body;
}

/* ---- Encoding ---- */

/* Each put_* writes at P, which the caller has checked has room, and
 * returns the byte after what it wrote. */
static uint8_t *put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return p + 4;
}

static uint8_t *put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return p + 8;
}

static uint8_t *put_str(uint8_t *p, const struct txn_bytes *b)
{
    p = put_u32(p, b->n);
    if (b->n)
        memcpy(p, b->p, b->n);
    return p + b->n;
}

static uint8_t *put_sets(uint8_t *p, const struct txn_msg *m)
{
    p = put_u32(p, m->nreads);
    for (uint32_t i = 0; i < m->nreads; i++) {
        p = put_str(p, &m->reads[i].key);
        p = put_u64(p, m->reads[i].ver);
    }
    p = put_u32(p, m->nwrites);
    for (uint32_t i = 0; i < m->nwrites; i++) {
        p = put_str(p, &m->writes[i].key);
        p = put_str(p, &m->writes[i].val);
    }
    return p;
}

static uint8_t *put_field(uint8_t *p, const struct txn_msg *m, unsigned f)
{
    switch (f) {
    case TXN_F_STATUS:
        *p = m->status;
        return p + 1;
    case TXN_F_TXNID:
        return put_u64(p, m->txnid);
    case TXN_F_TS:
        return put_u64(p, m->ts);
    case TXN_F_KEY:
        return put_str(p, &m->key);
    case TXN_F_VAL:
        return put_str(p, &m->val);
    case TXN_F_SETS:
        return put_sets(p, m);
    }
    return p;
}

size_t txn_msg_encode(const struct txn_msg *m, uint8_t *buf, size_t cap)
{
    size_t len = txn_msg_size(m);
    if (len == 0 || len > cap)
        return 0;
    unsigned fields = txn_type_fields(m->type);
    uint8_t *p = buf;
    p[0] = 'T';
    p[1] = 'X';
    p[2] = TXN_WIRE_VERSION;
    p[3] = m->type;
    p = put_u32(p + 4, (uint32_t)(len - TXN_HDR_LEN));
    p = put_u64(p, m->reqid);
    for (size_t i = 0; i < TXN_NFIELDS; i++)
        if (fields & txn_field_order[i])
            p = put_field(p, m, txn_field_order[i]);
    /* txn_msg_size walked the same fields: a mismatch would be a bug here,
     * reported as "cannot encode" rather than a short frame. */
    return (size_t)(p - buf) == len ? len : 0;
}

/* ---- Decoding ---- */

static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

int txn_frame_len(const uint8_t *buf, size_t n, size_t *frame_len, const char **why)
{
    const char *unused;
    if (!why)
        why = &unused;
    /* Each header byte is checked as soon as it is there, so that a peer
     * speaking another protocol is turned away without waiting for more. */
    if ((n >= 1 && buf[0] != 'T') || (n >= 2 && buf[1] != 'X')) {
        *why = "bad magic";
        return -1;
    }
    if (n >= 3 && buf[2] != TXN_WIRE_VERSION) {
        *why = "unsupported wire version";
        return -1;
    }
    if (n >= 4 && !txn_type_fields(buf[3])) {
        *why = "unknown message type";
        return -1;
    }
    if (n < 8)
        return 0;
    uint32_t body = get_u32(buf + 4);
    if (body > TXN_BODY_MAX) {
        *why = "body longer than TXN_BODY_MAX";
        return -1;
    }
    size_t total = (size_t)TXN_HDR_LEN + body;
    if (n < total)
        return 0;
    *frame_len = total;
    return 1;
}

/* A cursor over the body: P and the LEFT bytes after it, and the reason
 * for the first failure. */
struct txn_reader {
    const uint8_t *p;
    size_t left;
    const char *why;
};

static int fail(struct txn_reader *r, const char *why)
{
    r->why = why;
    return -1;
}

static int read_u8(struct txn_reader *r, uint8_t *v, const char *why)
{
    if (r->left < 1)
        return fail(r, why);
    *v = r->p[0];
    r->p++;
    r->left--;
    return 0;
}

static int read_u32(struct txn_reader *r, uint32_t *v, const char *why)
{
    if (r->left < 4)
        return fail(r, why);
    *v = get_u32(r->p);
    r->p += 4;
    r->left -= 4;
    return 0;
}

static int read_u64(struct txn_reader *r, uint64_t *v, const char *why)
{
    if (r->left < 8)
        return fail(r, why);
    *v = get_u64(r->p);
    r->p += 8;
    r->left -= 8;
    return 0;
}

/* A length-prefixed string; B then points into the frame. */
static int read_str(struct txn_reader *r, struct txn_bytes *b, const struct txn_str_rule *rule)
{
    uint32_t n;
    if (read_u32(r, &n, rule->truncated) != 0)
        return -1;
    if (n > rule->max)
        return fail(r, rule->too_long);
    if (n > r->left)
        return fail(r, rule->past_end);
    b->p = r->p;
    b->n = n;
    r->p += n;
    r->left -= n;
    return 0;
}

static int read_count(struct txn_reader *r, uint32_t *n)
{
    if (read_u32(r, n, "truncated set count") != 0)
        return -1;
    return *n > TXN_SET_MAX ? fail(r, "set larger than TXN_SET_MAX") : 0;
}

static int read_sets(struct txn_reader *r, struct txn_msg *m)
{
    if (read_count(r, &m->nreads) != 0)
        return -1;
    for (uint32_t i = 0; i < m->nreads; i++) {
        struct txn_op *o = &m->reads[i];
        o->val = (struct txn_bytes){NULL, 0};
        if (read_str(r, &o->key, &txn_key_rule) != 0 || read_u64(r, &o->ver, "truncated read-set version") != 0)
            return -1;
    }
    if (read_count(r, &m->nwrites) != 0)
        return -1;
    for (uint32_t i = 0; i < m->nwrites; i++) {
        struct txn_op *o = &m->writes[i];
        o->ver = 0;
        if (read_str(r, &o->key, &txn_key_rule) != 0 || read_str(r, &o->val, &txn_val_rule) != 0)
            return -1;
    }
    return 0;
}

static int read_field(struct txn_reader *r, struct txn_msg *m, unsigned f)
{
    switch (f) {
    case TXN_F_STATUS:
        if (read_u8(r, &m->status, "truncated status") != 0)
            return -1;
        return m->status < TXN_ST_END ? 0 : fail(r, "status out of range");
    case TXN_F_TXNID:
        return read_u64(r, &m->txnid, "truncated txnid");
    case TXN_F_TS:
        return read_u64(r, &m->ts, "truncated timestamp");
    case TXN_F_KEY:
        return read_str(r, &m->key, &txn_key_rule);
    case TXN_F_VAL:
        return read_str(r, &m->val, &txn_val_rule);
    case TXN_F_SETS:
        return read_sets(r, m);
    }
    return fail(r, "unknown field");
}

/* Zeroes every field a decoded message may leave unset (the set arrays
 * past nreads and nwrites are not looked at by anyone). */
static void clear_msg(struct txn_msg *m)
{
    m->status = 0;
    m->txnid = 0;
    m->ts = 0;
    m->key = (struct txn_bytes){NULL, 0};
    m->val = (struct txn_bytes){NULL, 0};
    m->nreads = 0;
    m->nwrites = 0;
}

int txn_msg_decode(const uint8_t *frame, size_t len, struct txn_msg *m, const char **why)
{
    const char *unused;
    if (!why)
        why = &unused;
    size_t flen = 0;
    int st = txn_frame_len(frame, len, &flen, why);
    if (st < 0)
        return -1;
    if (st == 0) {
        *why = len < TXN_HDR_LEN ? "truncated header" : "body shorter than its header says";
        return -1;
    }
    if (flen != len) {
        *why = "trailing bytes after the body";
        return -1;
    }
    clear_msg(m);
    m->type = frame[3];
    m->reqid = get_u64(frame + 8);
    unsigned fields = txn_type_fields(m->type);
    struct txn_reader r = {frame + TXN_HDR_LEN, len - TXN_HDR_LEN, NULL};
    for (size_t i = 0; i < TXN_NFIELDS; i++) {
        if ((fields & txn_field_order[i]) && read_field(&r, m, txn_field_order[i]) != 0) {
            *why = r.why;
            return -1;
        }
    }
    if (r.left != 0) {
        *why = "trailing bytes in the body";
        return -1;
    }
    return 0;
}
