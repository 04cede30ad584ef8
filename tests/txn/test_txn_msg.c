/*
 * Unit test of TxnStore's wire format (apps/txn/msg.c): exact bytes of a
 * few frames against msg.h's layout, a round trip of every message type
 * (empty strings, the largest key, value, sets and body), txn_frame_len on
 * every prefix of a frame, one hand-built malformed frame per rule the
 * decoder enforces, the encoder's refusals, and random damage to valid
 * frames. Frames handed to the decoder are malloc'd copies of exactly their
 * bytes, so the sanitizer build catches any read past them. It must never
 * depend on the encoder to build the malformed frames: those are written
 * byte by byte here.
 */
#include "msg.h"
#include "tcheck.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Bytes that keys and values point into: a pattern, so that a copy from
 * the wrong place shows. */
static uint8_t pool[TXN_BODY_MAX];

static void pool_init(void)
{
    for (size_t i = 0; i < sizeof(pool); i++)
        pool[i] = (uint8_t)(i * 131 + (i >> 8));
}

static struct txn_bytes bytes(size_t off, uint32_t n)
{
    CHECK(off + n <= sizeof(pool));
    return (struct txn_bytes){pool + off, n};
}

static struct txn_bytes cstr(const char *s)
{
    return (struct txn_bytes){(const uint8_t *)s, (uint32_t)strlen(s)};
}

static bool bytes_eq(struct txn_bytes a, struct txn_bytes b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

/* A malloc'd copy of exactly N bytes. */
static uint8_t *exact(const uint8_t *p, size_t n)
{
    uint8_t *b = malloc(n ? n : 1);
    CHECK(b);
    if (n)
        memcpy(b, p, n);
    return b;
}

static struct txn_msg msg_a, msg_b; /* large: kept off the stack */

/* Encodes M into a buffer of exactly its size, checking that
 * txn_msg_size agrees with txn_msg_encode. */
static uint8_t *encode(const struct txn_msg *m, size_t *len)
{
    size_t size = txn_msg_size(m);
    CHECK(size >= TXN_HDR_LEN);
    uint8_t *buf = malloc(size);
    CHECK(buf);
    *len = txn_msg_encode(m, buf, size);
    CHECK_EQ(*len, size);
    return buf;
}

/* Decodes an exact copy of FRAME; returns the result and the reason. The
 * decoded strings point into the copy, which lives until the next call. */
static int decode(const uint8_t *frame, size_t len, struct txn_msg *m, const char **why)
{
    static uint8_t *copy;
    free(copy);
    copy = exact(frame, len);
    *why = NULL;
    return txn_msg_decode(copy, len, m, why);
}

/* Checks that D (decoded) holds what M (encoded) has for M's type and
 * zeroes the fields the type does not have. */
static void check_same(const struct txn_msg *m, const struct txn_msg *d)
{
    unsigned f = txn_type_fields(m->type);
    CHECK_EQ(d->type, m->type);
    CHECK(d->reqid == m->reqid);
    CHECK_EQ(d->status, (f & TXN_F_STATUS) ? m->status : 0);
    CHECK(d->txnid == ((f & TXN_F_TXNID) ? m->txnid : 0));
    CHECK(d->ts == ((f & TXN_F_TS) ? m->ts : 0));
    CHECK(bytes_eq(d->key, (f & TXN_F_KEY) ? m->key : (struct txn_bytes){NULL, 0}));
    CHECK(bytes_eq(d->val, (f & TXN_F_VAL) ? m->val : (struct txn_bytes){NULL, 0}));
    CHECK_EQ(d->nreads, (f & TXN_F_SETS) ? m->nreads : 0);
    CHECK_EQ(d->nwrites, (f & TXN_F_SETS) ? m->nwrites : 0);
    for (uint32_t i = 0; i < d->nreads; i++) {
        CHECK(bytes_eq(d->reads[i].key, m->reads[i].key));
        CHECK(d->reads[i].ver == m->reads[i].ver);
    }
    for (uint32_t i = 0; i < d->nwrites; i++) {
        CHECK(bytes_eq(d->writes[i].key, m->writes[i].key));
        CHECK(bytes_eq(d->writes[i].val, m->writes[i].val));
    }
}

/* Encodes M, decodes it back, compares, and checks that re-encoding the
 * decoded message gives the same bytes. Returns the frame's length. */
static size_t round_trip(const struct txn_msg *m)
{
    size_t len;
    uint8_t *frame = encode(m, &len);
    uint8_t *copy = exact(frame, len);
    struct txn_msg *d = &msg_b;
    const char *why = NULL;
    if (txn_msg_decode(copy, len, d, &why) != 0) {
        fprintf(stderr, "decode of a %s frame failed: %s\n", txn_type_name(m->type), why);
        exit(1);
    }
    check_same(m, d);
    size_t len2;
    uint8_t *again = encode(d, &len2);
    CHECK_EQ(len2, len);
    CHECK(memcmp(again, frame, len) == 0);
    free(again);
    free(copy);
    free(frame);
    return len;
}

/* Every field set (the encoder must ignore those the type lacks). */
static void fill_all(struct txn_msg *m, uint8_t type, uint64_t seed)
{
    memset(m, 0, sizeof(*m));
    m->type = type;
    m->reqid = 0x8000000000000001ull ^ seed;
    m->status = (uint8_t)(seed % TXN_ST_END);
    m->txnid = 0xfedcba9876543210ull + seed;
    m->ts = UINT64_MAX - seed;
    m->key = cstr("user:42");
    m->val = bytes(100, 300);
    m->nreads = 3;
    m->nwrites = 2;
    for (uint32_t i = 0; i < m->nreads; i++) {
        m->reads[i].key = bytes(1000 + i * 10, 5 + i);
        m->reads[i].ver = i == 0 ? 0 : UINT64_MAX / (i + 1);
    }
    for (uint32_t i = 0; i < m->nwrites; i++) {
        m->writes[i].key = bytes(2000 + i * 10, 3 + i);
        m->writes[i].val = bytes(3000 + i * 100, 50 * i);
    }
}

static void test_every_type(void)
{
    for (uint8_t t = TXN_GET; t < TXN_TYPE_END; t++) {
        CHECK(txn_type_fields(t) != 0);
        CHECK(strcmp(txn_type_name(t), "?") != 0);
        fill_all(&msg_a, t, t);
        round_trip(&msg_a);
    }
    CHECK_EQ(txn_type_fields(0), 0);
    CHECK_EQ(txn_type_fields(TXN_TYPE_END), 0);
    CHECK_EQ(txn_type_fields(255), 0);
    CHECK(strcmp(txn_type_name(TXN_PREPARE), "PREPARE") == 0);
    CHECK(strcmp(txn_type_name(TXN_REPL_ACK), "REPL_ACK") == 0);
    CHECK(strcmp(txn_type_name(0), "?") == 0);
    CHECK(strcmp(txn_type_name(TXN_TYPE_END), "?") == 0);
    CHECK(strcmp(txn_status_name(TXN_ST_OK), "OK") == 0);
    CHECK(strcmp(txn_status_name(TXN_ST_FULL), "FULL") == 0);
    CHECK(strcmp(txn_status_name(TXN_ST_END), "?") == 0);
    /* The fields msg.h's enum comments give each type. */
    CHECK_EQ(txn_type_fields(TXN_GET), TXN_F_TXNID | TXN_F_TS | TXN_F_KEY);
    CHECK_EQ(txn_type_fields(TXN_GET_REPLY), TXN_F_STATUS | TXN_F_TS | TXN_F_VAL);
    CHECK_EQ(txn_type_fields(TXN_PUT), TXN_F_TS | TXN_F_KEY | TXN_F_VAL);
    CHECK_EQ(txn_type_fields(TXN_PREPARE), TXN_F_TXNID | TXN_F_TS | TXN_F_SETS);
    CHECK_EQ(txn_type_fields(TXN_REPL_PREPARE), TXN_F_TXNID | TXN_F_TS | TXN_F_SETS);
    CHECK_EQ(txn_type_fields(TXN_ABORT), TXN_F_TXNID);
    CHECK_EQ(txn_type_fields(TXN_REPL_ACK), TXN_F_STATUS);
    /* State transfer. */
    CHECK_EQ(txn_type_fields(TXN_SYNC_BEGIN), TXN_F_TS);
    CHECK_EQ(txn_type_fields(TXN_SYNC_ITEM), TXN_F_TS | TXN_F_KEY | TXN_F_VAL);
    CHECK_EQ(txn_type_fields(TXN_SYNC_PREPARED), TXN_F_TXNID | TXN_F_TS | TXN_F_SETS);
    CHECK_EQ(txn_type_fields(TXN_SYNC_END), TXN_F_TXNID | TXN_F_TS);
    CHECK(strcmp(txn_type_name(TXN_SYNC_ITEM), "SYNC_ITEM") == 0);
    CHECK(strcmp(txn_type_name(TXN_SYNC_END), "SYNC_END") == 0);
    CHECK_EQ(txn_type_fields(TXN_SYNC_DECIDED), TXN_F_TXNID | TXN_F_TS);
    /* View changes. */
    CHECK_EQ(txn_type_fields(TXN_VIEW_CHANGE), TXN_F_TXNID | TXN_F_TS);
    CHECK_EQ(txn_type_fields(TXN_VIEW_START), TXN_F_TXNID | TXN_F_TS);
    CHECK_EQ(txn_type_fields(TXN_VIEW_INFO), TXN_F_TXNID | TXN_F_TS);
    CHECK(strcmp(txn_type_name(TXN_SYNC_DECIDED), "SYNC_DECIDED") == 0);
    CHECK(strcmp(txn_type_name(TXN_VIEW_CHANGE), "VIEW_CHANGE") == 0);
    CHECK(strcmp(txn_type_name(TXN_VIEW_INFO), "VIEW_INFO") == 0);
    /* Orphans. */
    CHECK_EQ(txn_type_fields(TXN_DECISION), TXN_F_TXNID);
    CHECK_EQ(txn_type_fields(TXN_DECISION_REPLY), TXN_F_STATUS | TXN_F_TS);
    CHECK(strcmp(txn_type_name(TXN_DECISION_REPLY), "DECISION_REPLY") == 0);
    CHECK_EQ(txn_id_coord(TXN_ID_MULTI | (15ull << TXN_ID_COORD_SHIFT) | 12345), 15);
    CHECK_EQ(txn_id_coord(TXN_ID_SOLO | ~TXN_ID_FLAGS), 0);
}

static void test_empty_and_max(void)
{
    /* Empty key, empty value, empty sets, a NULL pointer with length 0. */
    fill_all(&msg_a, TXN_GET, 1);
    msg_a.key = (struct txn_bytes){NULL, 0};
    CHECK_EQ(round_trip(&msg_a), TXN_HDR_LEN + 8 + 8 + 4);
    fill_all(&msg_a, TXN_GET_REPLY, 2);
    msg_a.val = cstr("");
    CHECK_EQ(round_trip(&msg_a), TXN_HDR_LEN + 1 + 8 + 4);
    fill_all(&msg_a, TXN_PREPARE, 3);
    msg_a.nreads = 0;
    msg_a.nwrites = 0;
    CHECK_EQ(round_trip(&msg_a), TXN_HDR_LEN + 8 + 8 + 4 + 4);
    fill_all(&msg_a, TXN_PREPARE, 4);
    msg_a.reads[0].key = cstr("");
    msg_a.writes[1].key = cstr("");
    msg_a.writes[1].val = cstr("");
    round_trip(&msg_a);

    /* The largest key and value. */
    fill_all(&msg_a, TXN_PUT, 5);
    msg_a.key = bytes(7, TXN_KEY_MAX);
    msg_a.val = bytes(11, TXN_VAL_MAX);
    CHECK_EQ(round_trip(&msg_a), TXN_HDR_LEN + 8 + 4 + TXN_KEY_MAX + 4 + TXN_VAL_MAX);

    /* Both sets full, every key at its largest. */
    fill_all(&msg_a, TXN_REPL_PREPARE, 6);
    msg_a.nreads = TXN_SET_MAX;
    msg_a.nwrites = TXN_SET_MAX;
    for (uint32_t i = 0; i < TXN_SET_MAX; i++) {
        msg_a.reads[i].key = bytes(i, TXN_KEY_MAX);
        msg_a.reads[i].ver = i * 0x0101010101010101ull;
        msg_a.writes[i].key = bytes(i * 3, TXN_KEY_MAX);
        msg_a.writes[i].val = bytes(i * 5, 14000);
    }
    round_trip(&msg_a);

    /* A body of exactly TXN_BODY_MAX bytes: 8 + 8 + 4 + 4 + 4 x (8 + v). */
    fill_all(&msg_a, TXN_PREPARE, 7);
    msg_a.nreads = 0;
    msg_a.nwrites = 4;
    uint32_t v = (TXN_BODY_MAX - 24) / 4 - 8;
    for (uint32_t i = 0; i < 4; i++) {
        msg_a.writes[i].key = cstr("");
        msg_a.writes[i].val = bytes(i, v);
    }
    CHECK_EQ(round_trip(&msg_a), TXN_HDR_LEN + TXN_BODY_MAX);
    /* One byte more is refused. */
    msg_a.writes[2].key = bytes(0, 1);
    CHECK_EQ(txn_msg_size(&msg_a), 0);
    uint8_t *big = malloc(2 * TXN_BODY_MAX);
    CHECK(big);
    CHECK_EQ(txn_msg_encode(&msg_a, big, 2 * TXN_BODY_MAX), 0);
    free(big);
}

/* ---- Frames built by hand ---- */

struct fb {
    uint8_t b[4096];
    size_t n;
};

static void fb_u8(struct fb *f, uint8_t v)
{
    CHECK(f->n < sizeof(f->b));
    f->b[f->n++] = v;
}

static void fb_u32(struct fb *f, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        fb_u8(f, (uint8_t)(v >> (8 * i)));
}

static void fb_u64(struct fb *f, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        fb_u8(f, (uint8_t)(v >> (8 * i)));
}

static void fb_str(struct fb *f, uint32_t len, size_t have)
{
    fb_u32(f, len);
    for (size_t i = 0; i < have; i++)
        fb_u8(f, (uint8_t)('a' + i % 26));
}

/* A header whose body length is patched by fb_end. */
static void fb_start(struct fb *f, uint8_t type, uint64_t reqid)
{
    f->n = 0;
    fb_u8(f, 'T');
    fb_u8(f, 'X');
    fb_u8(f, TXN_WIRE_VERSION);
    fb_u8(f, type);
    fb_u32(f, 0);
    fb_u64(f, reqid);
}

static void fb_end(struct fb *f)
{
    uint32_t body = (uint32_t)(f->n - TXN_HDR_LEN);
    for (int i = 0; i < 4; i++)
        f->b[4 + i] = (uint8_t)(body >> (8 * i));
}

static struct fb fr;

/* The encoder writes exactly msg.h's layout. */
static void test_golden(void)
{
    static const uint8_t get[] = {'T',  'X',  1,    TXN_GET, 22,   0,    0,    0,    1,    2,    3,    4,    5,
                                  6,    7,    8,    0x18,    0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11, 0x28, 0x27,
                                  0x26, 0x25, 0x24, 0x23,    0x22, 0x21, 2,    0,    0,    0,    'a',  'b'};
    memset(&msg_a, 0, sizeof(msg_a));
    msg_a.type = TXN_GET;
    msg_a.reqid = 0x0807060504030201ull;
    msg_a.txnid = 0x1112131415161718ull;
    msg_a.ts = 0x2122232425262728ull;
    msg_a.key = cstr("ab");
    msg_a.status = TXN_ST_END; /* not a GET field: ignored */
    size_t len;
    uint8_t *f = encode(&msg_a, &len);
    CHECK_EQ(len, sizeof(get));
    CHECK(memcmp(f, get, len) == 0);
    free(f);

    /* A PREPARE with one read and one write, built by hand. */
    fb_start(&fr, TXN_PREPARE, 9);
    fb_u64(&fr, 77);
    fb_u64(&fr, 78);
    fb_u32(&fr, 1);
    fb_str(&fr, 3, 3);
    fb_u64(&fr, 5);
    fb_u32(&fr, 1);
    fb_str(&fr, 2, 2);
    fb_str(&fr, 4, 4);
    fb_end(&fr);
    memset(&msg_a, 0, sizeof(msg_a));
    msg_a.type = TXN_PREPARE;
    msg_a.reqid = 9;
    msg_a.txnid = 77;
    msg_a.ts = 78;
    msg_a.nreads = 1;
    msg_a.reads[0].key = cstr("abc");
    msg_a.reads[0].ver = 5;
    msg_a.nwrites = 1;
    msg_a.writes[0].key = cstr("ab");
    msg_a.writes[0].val = cstr("abcd");
    f = encode(&msg_a, &len);
    CHECK_EQ(len, fr.n);
    CHECK(memcmp(f, fr.b, len) == 0);
    free(f);
    const char *why;
    CHECK_EQ(decode(fr.b, fr.n, &msg_b, &why), 0);
    check_same(&msg_a, &msg_b);
}

static void test_frame_len(void)
{
    fill_all(&msg_a, TXN_PREPARE, 8);
    size_t len;
    uint8_t *f = encode(&msg_a, &len);
    uint8_t *two = malloc(2 * len + 3);
    CHECK(two);
    memcpy(two, f, len);
    memcpy(two + len, f, len);
    memcpy(two + 2 * len, "TX\1", 3);
    for (size_t k = 0; k < len; k++) {
        uint8_t *p = exact(f, k);
        size_t fl = 12345;
        const char *why = NULL;
        CHECK_EQ(txn_frame_len(p, k, &fl, &why), 0);
        CHECK_EQ(fl, 12345);
        /* A proper prefix is no frame for the decoder either. */
        CHECK_EQ(txn_msg_decode(p, k, &msg_b, &why), -1);
        CHECK(why && *why);
        free(p);
    }
    for (size_t extra = 0; extra <= len + 3; extra++) {
        uint8_t *p = exact(two, len + extra);
        size_t fl = 0;
        const char *why = NULL;
        CHECK_EQ(txn_frame_len(p, len + extra, &fl, &why), 1);
        CHECK_EQ(fl, len);
        free(p);
    }
    /* The decoder takes the frame alone, not the bytes after it. */
    const char *why = NULL;
    CHECK_EQ(decode(two, len + 1, &msg_b, &why), -1);
    CHECK(strstr(why, "trailing"));
    CHECK_EQ(decode(two, len, &msg_b, &why), 0);
    free(two);
    free(f);
}

/* Expects both txn_frame_len (if HEADER_BAD) and txn_msg_decode to refuse
 * FR, with a reason that contains WANT (so that the right rule fired). */
static void expect_bad(const char *what, bool header_bad, const char *want)
{
    uint8_t *p = exact(fr.b, fr.n);
    size_t fl = 0;
    const char *why = NULL;
    int st = txn_frame_len(p, fr.n, &fl, &why);
    if (header_bad) {
        CHECK_EQ(st, -1);
        CHECK(why && *why);
    } else {
        CHECK_EQ(st, 1);
        CHECK_EQ(fl, fr.n);
    }
    why = NULL;
    if (txn_msg_decode(p, fr.n, &msg_b, &why) != -1) {
        fprintf(stderr, "%s: decoded\n", what);
        exit(1);
    }
    CHECK(why && *why);
    if (!strstr(why, want)) {
        fprintf(stderr, "%s: refused as '%s', want '%s'\n", what, why, want);
        exit(1);
    }
    free(p);
}

static void commit_frame(void)
{
    fb_start(&fr, TXN_COMMIT, 1);
    fb_u64(&fr, 2);
    fb_u64(&fr, 3);
    fb_end(&fr);
}

static void test_malformed(void)
{
    const char *why;
    commit_frame();
    CHECK_EQ(decode(fr.b, fr.n, &msg_b, &why), 0);

    commit_frame();
    fr.b[0] = 't';
    expect_bad("bad magic", true, "magic");
    commit_frame();
    fr.b[1] = 'Y';
    expect_bad("bad magic (second byte)", true, "magic");
    commit_frame();
    fr.b[2] = TXN_WIRE_VERSION + 1;
    expect_bad("version", true, "version");
    commit_frame();
    fr.b[3] = 0;
    expect_bad("type 0", true, "type");
    commit_frame();
    fr.b[3] = TXN_TYPE_END;
    expect_bad("type TXN_TYPE_END", true, "type");

    /* A body over the bound is refused from the header alone. */
    fb_start(&fr, TXN_PUT, 1);
    fr.n = 4;
    fb_u32(&fr, TXN_BODY_MAX + 1);
    fb_u64(&fr, 1);
    expect_bad("body > TXN_BODY_MAX", true, "TXN_BODY_MAX");
    fr.n = 4;
    fb_u32(&fr, UINT32_MAX);
    fb_u64(&fr, 1);
    expect_bad("body length UINT32_MAX", true, "TXN_BODY_MAX");
    /* A bad header byte is refused before the header is whole. */
    static const uint8_t http[] = "GET / HTTP/1.1\r\n";
    size_t fl;
    CHECK_EQ(txn_frame_len(http, 1, &fl, &why), -1);
    CHECK_EQ(txn_frame_len(http, 0, &fl, &why), 0);

    /* A key longer than the bytes left (but within TXN_KEY_MAX). */
    fb_start(&fr, TXN_GET, 1);
    fb_u64(&fr, 1);
    fb_u64(&fr, 2);
    fb_str(&fr, 10, 9);
    fb_end(&fr);
    expect_bad("key past end", false, "key past the end");
    fb_start(&fr, TXN_GET, 1);
    fb_u64(&fr, 1);
    fb_u64(&fr, 2);
    fb_str(&fr, UINT32_MAX, 3);
    fb_end(&fr);
    expect_bad("key length UINT32_MAX", false, "TXN_KEY_MAX");
    /* A key over TXN_KEY_MAX, all its bytes present. */
    fb_start(&fr, TXN_GET, 1);
    fb_u64(&fr, 1);
    fb_u64(&fr, 2);
    fb_str(&fr, TXN_KEY_MAX + 1, TXN_KEY_MAX + 1);
    fb_end(&fr);
    expect_bad("key > TXN_KEY_MAX", false, "TXN_KEY_MAX");
    /* The same frame with a key of exactly TXN_KEY_MAX decodes. */
    fb_start(&fr, TXN_GET, 1);
    fb_u64(&fr, 1);
    fb_u64(&fr, 2);
    fb_str(&fr, TXN_KEY_MAX, TXN_KEY_MAX);
    fb_end(&fr);
    CHECK_EQ(decode(fr.b, fr.n, &msg_b, &why), 0);
    CHECK_EQ(msg_b.key.n, TXN_KEY_MAX);

    /* A value length past the end, in a PUT. */
    fb_start(&fr, TXN_PUT, 1);
    fb_u64(&fr, 1);
    fb_str(&fr, 1, 1);
    fb_str(&fr, TXN_VAL_MAX + 1, 10);
    fb_end(&fr);
    expect_bad("value > TXN_VAL_MAX", false, "TXN_VAL_MAX");

    /* Set counts. */
    fb_start(&fr, TXN_PREPARE, 1);
    fb_u64(&fr, 1);
    fb_u64(&fr, 2);
    fb_u32(&fr, TXN_SET_MAX + 1);
    for (int i = 0; i <= TXN_SET_MAX; i++) {
        fb_str(&fr, 0, 0);
        fb_u64(&fr, 1);
    }
    fb_u32(&fr, 0);
    fb_end(&fr);
    expect_bad("read set > TXN_SET_MAX", false, "TXN_SET_MAX");
    fb_start(&fr, TXN_REPL_PREPARE, 1);
    fb_u64(&fr, 1);
    fb_u64(&fr, 2);
    fb_u32(&fr, 0);
    fb_u32(&fr, UINT32_MAX);
    fb_end(&fr);
    expect_bad("write set count UINT32_MAX", false, "TXN_SET_MAX");
    fb_start(&fr, TXN_PREPARE, 1);
    fb_u64(&fr, 1);
    fb_u64(&fr, 2);
    fb_u32(&fr, 2);
    fb_str(&fr, 1, 1);
    fb_u64(&fr, 1);
    fb_u32(&fr, 0);
    fb_end(&fr);
    expect_bad("read set shorter than its count", false, "truncated");
    fb_start(&fr, TXN_PREPARE, 1);
    fb_u64(&fr, 1);
    fb_u64(&fr, 2);
    fb_u32(&fr, 0);
    fb_end(&fr);
    expect_bad("write set count missing", false, "set count");

    /* Trailing bytes inside the body. */
    commit_frame();
    fb_u8(&fr, 0);
    fb_end(&fr);
    expect_bad("trailing bytes", false, "trailing");
    /* Status out of range, and the last valid one. */
    fb_start(&fr, TXN_COMMIT_REPLY, 1);
    fb_u8(&fr, TXN_ST_END);
    fb_end(&fr);
    expect_bad("status TXN_ST_END", false, "status out of range");
    fr.b[TXN_HDR_LEN] = 255;
    expect_bad("status 255", false, "status out of range");
    fr.b[TXN_HDR_LEN] = TXN_ST_END - 1;
    CHECK_EQ(decode(fr.b, fr.n, &msg_b, &why), 0);
    CHECK_EQ(msg_b.status, TXN_ST_END - 1);
    /* A truncated u64: the timestamp has 4 of its 8 bytes. */
    fb_start(&fr, TXN_COMMIT, 1);
    fb_u64(&fr, 2);
    fb_u32(&fr, 3);
    fb_end(&fr);
    expect_bad("truncated u64", false, "truncated timestamp");
    /* An empty body where a status is due. */
    fb_start(&fr, TXN_REPL_ACK, 1);
    fb_end(&fr);
    expect_bad("empty body", false, "truncated status");
}

static void test_encode_refuses(void)
{
    static uint8_t buf[2 * TXN_BODY_MAX];
    /* Each over-bound field, in a type that has it. */
    struct {
        uint8_t type;
        int what;
    } cases[] = {
        {TXN_GET, 0},           {TXN_PUT, 1},           {TXN_PREPARE, 2},      {TXN_REPL_PREPARE, 3},
        {TXN_PREPARE, 4},       {TXN_PREPARE, 5},       {TXN_COMMIT_REPLY, 6}, {0, 7},
        {TXN_TYPE_END, 7},      {TXN_PUT, 8},           {TXN_SYNC_ITEM, 0},    {TXN_SYNC_ITEM, 1},
        {TXN_SYNC_PREPARED, 3}, {TXN_SYNC_PREPARED, 5},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fill_all(&msg_a, cases[i].type, i);
        switch (cases[i].what) {
        case 0:
            msg_a.key = bytes(0, TXN_KEY_MAX + 1);
            break;
        case 1:
            msg_a.val = bytes(0, TXN_VAL_MAX + 1);
            break;
        case 2:
            msg_a.nreads = TXN_SET_MAX + 1;
            break;
        case 3:
            msg_a.nwrites = TXN_SET_MAX + 1;
            break;
        case 4:
            msg_a.reads[1].key = bytes(0, TXN_KEY_MAX + 1);
            break;
        case 5:
            msg_a.writes[1].val = bytes(0, TXN_VAL_MAX + 1);
            break;
        case 6:
            msg_a.status = TXN_ST_END;
            break;
        case 8:
            msg_a.key = (struct txn_bytes){NULL, 1};
            break;
        }
        CHECK_EQ(txn_msg_size(&msg_a), 0);
        CHECK_EQ(txn_msg_encode(&msg_a, buf, sizeof(buf)), 0);
    }
    /* An over-bound field the type does not have is ignored. */
    fill_all(&msg_a, TXN_ABORT, 1);
    msg_a.key = bytes(0, TXN_KEY_MAX + 1);
    msg_a.nreads = TXN_SET_MAX + 1;
    msg_a.status = 200;
    CHECK_EQ(txn_msg_size(&msg_a), TXN_HDR_LEN + 8);
    /* The capacity: one byte short, none, exactly enough. */
    fill_all(&msg_a, TXN_PREPARE, 2);
    size_t size = txn_msg_size(&msg_a);
    CHECK(size > TXN_HDR_LEN);
    CHECK_EQ(txn_msg_encode(&msg_a, buf, size - 1), 0);
    CHECK_EQ(txn_msg_encode(&msg_a, buf, 0), 0);
    CHECK_EQ(txn_msg_encode(&msg_a, buf, TXN_HDR_LEN), 0);
    CHECK_EQ(txn_msg_encode(&msg_a, buf, size), size);
}

/* A random valid message of a random type. */
static void random_msg(struct txn_msg *m, uint64_t *seed)
{
    memset(m, 0, sizeof(*m));
    m->type = (uint8_t)(1 + trand(seed) % (TXN_TYPE_END - 1));
    m->reqid = trand(seed);
    m->status = (uint8_t)(trand(seed) % TXN_ST_END);
    m->txnid = trand(seed);
    m->ts = trand(seed);
    m->key = bytes(trand(seed) % 1000, (uint32_t)(trand(seed) % 40));
    m->val = bytes(trand(seed) % 1000, (uint32_t)(trand(seed) % 200));
    m->nreads = (uint32_t)(trand(seed) % 5);
    m->nwrites = (uint32_t)(trand(seed) % 5);
    if (trand(seed) % 16 == 0)
        m->nreads = TXN_SET_MAX;
    for (uint32_t i = 0; i < m->nreads; i++) {
        m->reads[i].key = bytes(trand(seed) % 1000, (uint32_t)(trand(seed) % 20));
        m->reads[i].ver = trand(seed);
    }
    for (uint32_t i = 0; i < m->nwrites; i++) {
        m->writes[i].key = bytes(trand(seed) % 1000, (uint32_t)(trand(seed) % 20));
        m->writes[i].val = bytes(trand(seed) % 1000, (uint32_t)(trand(seed) % 50));
    }
}

/* Random messages round-trip; random damage to them either is refused or
 * decodes to a message that encodes back to the same bytes. */
static void test_random(void)
{
    uint64_t seed = 7;
    static struct txn_msg d;
    for (int iter = 0; iter < 3000; iter++) {
        random_msg(&msg_a, &seed);
        size_t len = round_trip(&msg_a);
        uint8_t *f = malloc(len);
        CHECK(f);
        CHECK_EQ(txn_msg_encode(&msg_a, f, len), len);
        int flips = 1 + (int)(trand(&seed) % 3);
        for (int k = 0; k < flips; k++)
            f[trand(&seed) % len] ^= (uint8_t)(1u << (trand(&seed) % 8));
        size_t cut = trand(&seed) % 4 == 0 ? trand(&seed) % len : len;
        uint8_t *p = exact(f, cut);
        const char *why = NULL;
        size_t fl;
        int st = txn_frame_len(p, cut, &fl, &why);
        if (st == 1 && txn_msg_decode(p, fl, &d, &why) == 0) {
            uint8_t *again = malloc(fl);
            CHECK(again);
            CHECK_EQ(txn_msg_size(&d), fl);
            CHECK_EQ(txn_msg_encode(&d, again, fl), fl);
            CHECK(memcmp(again, p, fl) == 0);
            free(again);
        } else if (st != 0) {
            CHECK(why && *why);
        }
        free(p);
        free(f);
    }
}

int main(void)
{
    pool_init();
    test_every_type();
    test_empty_and_max();
    test_golden();
    test_frame_len();
    test_malformed();
    test_encode_refuses();
    test_random();
    printf("test_txn_msg: ok\n");
    return 0;
}
