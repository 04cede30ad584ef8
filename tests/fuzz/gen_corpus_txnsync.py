#!/usr/bin/env python3
"""Writes tests/fuzz/corpus_txnsync/: inputs for fuzz_txnsync (the
receiving end of a state transfer, sync.c's txsync_in_apply). An input is
two header bytes then a run of msg.h frames (see fuzz_txnsync.c):
  byte 0: bit 0 merge mode; bits 1-4 small bounds (2 versions per key,
          3 prepared transactions, 3 remembered decisions, 8 KiB; else
          8, 256, 64, 1 MiB);
  byte 1: the store before the first frame: bits 0-2 versions "k<i>" at
          i + 1, bits 3-5 prepared transactions (txnid i + 1 at 100 + i,
          reading "r", writing "p<i>" = "own"), bits 6-7 decisions (txnid
          50 + i, committed at 200 + i when i is even, aborted otherwise).
Seeds: whole syncs in both modes, decisions that settle the store's own
prepared transactions, a decision that contradicts the store's, counts
that do not match at SYNC_END, frames outside a sync, a SYNC_PREPARED of
a decided transaction, each bound reached, and the regressions (regress-*).
Run from anywhere: python3 tests/fuzz/gen_corpus_txnsync.py"""
import os
import struct

GET, REPL_PREPARE, REPL_COMMIT, VIEW_CHANGE = 1, 13, 14, 22
SYNC_BEGIN, SYNC_ITEM, SYNC_PREPARED, SYNC_END, SYNC_DECIDED = 17, 18, 19, 20, 21

MERGE, FEW_VERSIONS, FEW_PREPARED, FEW_DECIDED, FEW_BYTES = 1, 2, 4, 8, 16


def head(flags=0, versions=0, prepared=0, decided=0):
    return bytes([flags, versions | prepared << 3 | decided << 6])


def frame(t, body, reqid=0):
    return b"TX" + bytes([1, t]) + struct.pack("<IQ", len(body), reqid) + body


def s(b):
    return struct.pack("<I", len(b)) + b


def begin(keys=0):
    return frame(SYNC_BEGIN, struct.pack("<Q", keys))


def item(k, v, ts):
    return frame(SYNC_ITEM, struct.pack("<Q", ts) + s(k) + s(v))


def prepared(txnid, ts, reads, writes, t=SYNC_PREPARED):
    body = struct.pack("<QQ", txnid, ts) + struct.pack("<I", len(reads))
    for k in reads:
        body += s(k) + struct.pack("<Q", 0)
    body += struct.pack("<I", len(writes))
    for k, v in writes:
        body += s(k) + s(v)
    return frame(t, body)


def decided(txnid, ts):
    return frame(SYNC_DECIDED, struct.pack("<QQ", txnid, ts))


def end(txns, items):
    return frame(SYNC_END, struct.pack("<QQ", txns, items))


def own(i):
    """The store's own prepared transaction i, as another replica sends it."""
    return prepared(i + 1, 100 + i, [b"r"], [(b"p%d" % i, b"own")])


def sync(flags, hd, decs, preps, items):
    return head(flags, *hd) + begin(len(items)) + b"".join(decided(*d) for d in decs) + b"".join(preps) \
        + b"".join(item(*it) for it in items) + end(len(decs) + len(preps), len(items))


whole_items = [(b"a", b"1", 1), (b"a", b"2", 2), (b"b", b"", 5), (b"k0", b"v", 1)]
whole_decs = [(60, 600), (61, 0)]
whole_preps = [prepared(70, 700, [b"a"], [(b"c", b"x"), (b"d", b"y")]), prepared(71, 701, [], [(b"e", b"z")])]

seeds = {
    "empty-sync": head() + begin() + end(0, 0),
    "backup-sync": sync(0, (3, 2, 1), whole_decs, whole_preps, whole_items),
    "merge-sync": sync(MERGE, (3, 2, 1), whole_decs, whole_preps, whole_items),
    # The store's own prepared transactions: the other replica committed
    # one, aborted one, holds one prepared too (EEXIST), knows nothing of
    # the others.
    "merge-settles-own": sync(MERGE, (0, 5, 0), [(1, 100), (2, 0)], [own(2), prepared(9, 900, [], [(b"p0", b"n")])],
                              [(b"p0", b"own", 100)]),
    "backup-drops-own": sync(0, (0, 3, 0), [(1, 100)], [own(1)], []),
    "decided-contradicts": head(MERGE, 0, 0, 2) + begin() + decided(50, 0),
    "decided-other-ts": head(MERGE, 0, 2, 0) + begin() + decided(1, 101),
    "decided-txn0": head(MERGE) + begin() + decided(0, 0),
    "decided-repeat": head(MERGE, 0, 0, 2) + begin() + decided(50, 200) + decided(51, 0) + decided(51, 0) + end(3, 0),
    "prepared-decided": sync(MERGE, (0, 0, 2), [(5, 0)], [prepared(50, 200, [], [(b"d", b"own")]),
                                                         prepared(5, 9, [], [(b"q", b"")])], []),
    "prepared-other-content": head(MERGE, 0, 1, 0) + begin() + prepared(1, 100, [b"r"], [(b"p0", b"other")]),
    "prepared-bad": head() + begin() + prepared(0, 5, [], []),
    "item-bad": head() + begin() + item(b"k", b"v", 0),
    "item-old": head(FEW_VERSIONS, 3) + begin() + item(b"k2", b"a", 9) + item(b"k2", b"b", 8) + item(b"k2", b"c", 1)
    + item(b"k2", b"d", 2) + end(0, 4),
    "item-held": head(MERGE | FEW_VERSIONS, 0, 2, 0) + begin() + item(b"p0", b"a", 7) + item(b"p0", b"b", 8)
    + item(b"p0", b"c", 9) + decided(1, 100) + end(1, 3),
    "counts-txns": sync(0, (0, 0, 0), whole_decs, whole_preps, whole_items)[:-32] + end(3, 4),
    "counts-items": sync(0, (0, 0, 0), [], [], whole_items)[:-32] + end(0, 5),
    "end-twice": head() + begin() + end(0, 0) + end(0, 0),
    "begin-twice": head(MERGE, 2, 2, 2) + begin() + decided(1, 100) + item(b"x", b"1", 4) + begin(7) + end(0, 0),
    "outside-item": head() + item(b"k", b"v", 1),
    "outside-end": head() + end(0, 0),
    "outside-decided": head(MERGE, 0, 1, 0) + decided(1, 100),
    "not-sync-get": head() + begin() + frame(GET, struct.pack("<QQ", 0, 1) + s(b"k")),
    "not-sync-repl": head(MERGE) + begin() + prepared(3, 30, [], [(b"k", b"v")], REPL_PREPARE),
    "not-sync-view": head() + frame(VIEW_CHANGE, struct.pack("<QQ", 1, 0)),
    "malformed-tail": head() + begin() + end(0, 0)[:-3],
    "bound-prepared": head(MERGE | FEW_PREPARED, 0, 2, 0) + begin()
    + b"".join(prepared(20 + i, 50, [], [(b"x%d" % i, b"v")]) for i in range(3)),
    "bound-decided": head(MERGE | FEW_DECIDED, 0, 0, 3) + begin()
    + b"".join(decided(30 + i, i % 2 * (300 + i)) for i in range(5)) + prepared(50, 200, [], [(b"d", b"own")])
    + decided(30, 0) + end(7, 0),
    "bound-bytes": head(FEW_BYTES, 2, 1, 1) + begin() + b"".join(item(b"big%d" % i, b"x" * 1500, 1) for i in range(6)),
    "bound-bytes-prepared": head(MERGE | FEW_BYTES) + begin()
    + b"".join(prepared(40 + i, 9, [], [(b"w%d" % i, b"y" * 2000)]) for i in range(5)),
    "bound-all": head(31, 7, 7, 3) + begin(3) + decided(1, 100) + decided(2, 0) + own(2) + own(3) + own(4)
    + prepared(8, 8, [], [(b"n", b"v")]) + item(b"k0", b"z", 9) + item(b"k0", b"z", 10) + end(6, 2),
    # Past the tables' first 64 buckets (they double).
    "many-keys": sync(0, (0, 0, 0), [], [], [(b"m%d" % i, b"", 1) for i in range(70)]),
    "many-prepared": sync(MERGE, (0, 7, 0), [], [prepared(300 + i, 9, [], [(b"%d" % i, b"")]) for i in range(70)], []),
    # A prepare within the bound until the keys it creates count.
    "bound-bytes-keys": head(MERGE | FEW_BYTES) + begin() + prepared(9, 9, [bytes([65 + i]) * 1000 for i in range(8)], []),
}
here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "corpus_txnsync")
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print("wrote %d inputs to %s" % (len(seeds), out))
