/*
 * apps/txn/msg.h: TxnStore's wire format, shared by the replica
 * (demi-txnd), the client library and the fuzz target. It must never trust
 * a byte it decodes: every length is checked against the frame before use,
 * and a decoded message only points into the frame it came from.
 *
 * Carried over TCP (PDPIX push/pop on any libOS): TCP already orders,
 * retransmits and checksums, so the format has no sequence numbers, retries
 * or checksum of its own; a connection that sends a malformed frame is
 * closed.
 *
 * A frame is a 16-byte header then a body, all integers little-endian:
 *
 *   offset 0  u8  'T'
 *          1  u8  'X'
 *          2  u8  version (TXN_WIRE_VERSION)
 *          3  u8  type (enum txn_type)
 *          4  u32 body length (at most TXN_BODY_MAX)
 *          8  u64 request id (a reply carries its request's id)
 *
 * The body holds, in this order, only the fields its type has
 * (txn_type_fields): status u8, txnid u64, ts u64, key, value, then the
 * read set (u32 count, then count x {key, u64 version}) and the write set
 * (u32 count, then count x {key, value}). A key or value is a u32 length
 * then that many bytes. A body must be consumed exactly: trailing bytes
 * make the frame malformed.
 */
#ifndef DEMI_TXN_MSG_H
#define DEMI_TXN_MSG_H

#include <stddef.h>
#include <stdint.h>

#define TXN_WIRE_VERSION 1
#define TXN_HDR_LEN      16
#define TXN_BODY_MAX     (1u << 20)   /* bytes of body in one frame */
#define TXN_KEY_MAX      1024         /* bytes of a key */
#define TXN_VAL_MAX      (256u << 10) /* bytes of a value */
#define TXN_SET_MAX      64           /* entries in a read set or a write set */

enum txn_type {
    TXN_GET = 1,       /* txnid (0: outside a transaction), ts (read at; UINT64_MAX: latest), key */
    TXN_GET_REPLY,     /* status, ts (the version read), value */
    TXN_PUT,           /* ts (the version to write), key, value: quorum-write mode */
    TXN_PUT_REPLY,     /* status, ts (the newest version the replica holds for the key) */
    TXN_PREPARE,       /* txnid, ts (commit timestamp proposed), reads, writes */
    TXN_PREPARE_REPLY, /* status, ts (on TXN_ST_ABORT: the newest version that conflicted) */
    TXN_COMMIT,        /* txnid, ts */
    TXN_COMMIT_REPLY,  /* status (TXN_ST_ABORT: the transaction was aborted, see TXN_ID_SOLO) */
    TXN_ABORT,         /* txnid */
    TXN_ABORT_REPLY,   /* status */
    TXN_LOAD,          /* ts, key, value: bulk load, no validation */
    TXN_LOAD_REPLY,    /* status */
    TXN_REPL_PREPARE,  /* primary to backup: txnid, ts, reads, writes (already validated) */
    TXN_REPL_COMMIT,   /* primary to backup: txnid, ts */
    TXN_REPL_ABORT,    /* primary to backup: txnid */
    TXN_REPL_ACK,      /* backup to primary: status */
    /* State transfer, primary to backup, on the replication link before
     * anything else it sends there (demi-txnd(1)): */
    TXN_SYNC_BEGIN,    /* ts (keys the primary holds, for the log) */
    TXN_SYNC_ITEM,     /* ts (a committed version), key, value */
    TXN_SYNC_PREPARED, /* txnid, ts, reads (versions 0), writes: a transaction prepared and undecided */
    TXN_SYNC_END,      /* txnid (SYNC_PREPARED and SYNC_DECIDED frames sent), ts (SYNC_ITEM frames sent) */
    TXN_SYNC_DECIDED,  /* txnid, ts (its commit timestamp; 0: aborted): a recent decision */
    /* View changes (occ; demi-txnd(1), "Failover"). A view is a u64; the
     * primary of view v is replica v mod n. */
    TXN_VIEW_CHANGE, /* replica to replica: txnid (the view it moves to), ts (TXN_VC_* bits) */
    TXN_VIEW_START,  /* new primary to backup, first on its link: txnid (view), ts (its incarnation) */
    TXN_VIEW_INFO,   /* txnid (the sender's view), ts (TXN_VI_* bits): a primary's heartbeat, or an answer */
    /* Orphans (demi-txnd(1), "Orphans"): a participant shard's primary
     * asks the coordinator shard's primary how a transaction spanning
     * shards (TXN_ID_MULTI) was decided. */
    TXN_DECISION,       /* txnid */
    TXN_DECISION_REPLY, /* status (OK: committed at ts; ABORT: aborted; UNAVAIL: cannot say now), ts */
    TXN_TYPE_END
};

enum txn_status {
    TXN_ST_OK = 0,
    TXN_ST_NOTFOUND,   /* get: no version at or before ts */
    TXN_ST_ABORT,      /* prepare: a conflict (stale read, locked key, ts too old) */
    TXN_ST_BADREQ,     /* a well-formed request the replica refuses (too large, unknown txnid) */
    TXN_ST_NOTPRIMARY, /* occ: prepare/commit/abort sent to a backup */
    TXN_ST_UNAVAIL,    /* occ: the primary cannot reach a quorum of its backups */
    TXN_ST_FULL,       /* the replica's bound on prepared transactions or memory is reached */
    TXN_ST_END
};

/* A transaction id's top six bits say which shards decide it (the client
 * library sets them; they travel with the id through replication, state
 * transfers and logs; demi-txnd(1), "Orphans"):
 *  - TXN_ID_SOLO: the transaction spans one shard. Its primary is its only
 *    participant, and may abort it on its own when no decision came for
 *    it (demi-txnd --orphan-ms): a COMMIT arriving afterwards gets
 *    TXN_ST_ABORT.
 *  - TXN_ID_MULTI: it spans several shards, of which the one numbered
 *    txn_id_coord(id) (the lowest, in the clients' shard order) is the
 *    coordinator: the client prepares there first and commits there
 *    first, so that the coordinator's decision is the transaction's. The
 *    coordinator may abort it on its own like a TXN_ID_SOLO one; another
 *    participant asks the coordinator (TXN_DECISION).
 *  - neither: no shard decides it but its client. */
#define TXN_ID_SOLO        (1ull << 63)
#define TXN_ID_MULTI       (1ull << 62)
#define TXN_ID_COORD_SHIFT 58
#define TXN_ID_COORD_MASK  (0xfull << TXN_ID_COORD_SHIFT)
#define TXN_ID_FLAGS       (TXN_ID_SOLO | TXN_ID_MULTI | TXN_ID_COORD_MASK)

static inline uint32_t txn_id_coord(uint64_t id)
{
    return (uint32_t)((id & TXN_ID_COORD_MASK) >> TXN_ID_COORD_SHIFT);
}

/* VIEW_CHANGE's ts: the sender's index in the replica group, and whether
 * its store is complete (holds everything it ever acknowledged), in which
 * case a SYNC_* stream of that store follows on the same connection. */
#define TXN_VC_INDEX_MASK 0xffffu
#define TXN_VC_COMPLETE   (1ull << 16)

/* VIEW_INFO's ts: the sender's state in its view. */
#define TXN_VI_NORMAL  (1ull << 0) /* not changing views */
#define TXN_VI_PRIMARY (1ull << 1) /* and it is the view's primary */
#define TXN_VI_QUERY   (1ull << 2) /* a replica that restarted asks: answer with a VIEW_INFO */
#define TXN_VI_STALE   (1ull << 3) /* to a primary that restarted: its VIEW_START is refused */
#define TXN_VI_PULL    (1ull << 4) /* qw: a replica that rejoins asks for the store (a SYNC_* stream back) */

/* Which fields a type's body holds (txn_type_fields). */
enum {
    TXN_F_STATUS = 1u << 0,
    TXN_F_TXNID = 1u << 1,
    TXN_F_TS = 1u << 2,
    TXN_F_KEY = 1u << 3,
    TXN_F_VAL = 1u << 4,
    TXN_F_SETS = 1u << 5, /* read set then write set */
};

/* A byte string inside a frame (or, when encoding, the caller's memory). */
struct txn_bytes {
    const uint8_t *p;
    uint32_t n;
};

/* A read-set entry (key, ver) or a write-set entry (key, val). */
struct txn_op {
    struct txn_bytes key;
    struct txn_bytes val; /* write set only */
    uint64_t ver;         /* read set only: the version the transaction read (0: read found nothing) */
};

/* One message, decoded or to encode. Fields the type does not have are
 * ignored by txn_msg_encode and zeroed by txn_msg_decode. */
struct txn_msg {
    uint8_t type;
    uint64_t reqid;
    uint8_t status;
    uint64_t txnid;
    uint64_t ts;
    struct txn_bytes key;
    struct txn_bytes val;
    uint32_t nreads, nwrites;
    struct txn_op reads[TXN_SET_MAX];
    struct txn_op writes[TXN_SET_MAX];
};

/* The TXN_F_* fields of TYPE; 0 for an unknown type. */
unsigned txn_type_fields(uint8_t type);

/* Names for logs: "PREPARE", "ABORT"...; "?" when out of range. */
const char *txn_type_name(uint8_t type);
const char *txn_status_name(uint8_t status);

/* Bytes txn_msg_encode will write for M (header included); 0 when M cannot
 * be encoded (unknown type, a key/value/set over its bound, body over
 * TXN_BODY_MAX). */
size_t txn_msg_size(const struct txn_msg *m);

/* Encodes M into BUF (CAP bytes). Returns the frame's length, or 0 when M
 * cannot be encoded or CAP is too small; BUF is then unspecified. */
size_t txn_msg_encode(const struct txn_msg *m, uint8_t *buf, size_t cap);

/* Looks at the first N bytes of a stream. Returns 1 with *FRAME_LEN set
 * when a whole frame is there, 0 when more bytes are needed (at most
 * TXN_HDR_LEN + TXN_BODY_MAX in all), -1 when the header is malformed (bad
 * magic, version, type or length), with *WHY a static reason. */
int txn_frame_len(const uint8_t *buf, size_t n, size_t *frame_len, const char **why);

/* Decodes one whole frame of LEN bytes (as txn_frame_len measured it) into
 * M, whose byte strings then point into FRAME. Returns 0, or -1 with *WHY a
 * static reason when the frame is malformed (a length past the end, a bound
 * exceeded, trailing bytes, a status out of range). */
int txn_msg_decode(const uint8_t *frame, size_t len, struct txn_msg *m, const char **why);

#endif
