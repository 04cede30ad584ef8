#!/usr/bin/env python3
"""Writes tests/fuzz/corpus_txnlog/: log record payloads for fuzz_txnlog
(demi-txnd's --log replay), each a run of msg.h frames: the entries a log
holds (REPL_PREPARE, REPL_COMMIT, REPL_ABORT, LOAD, a backup's state
transfer: SYNC_BEGIN, SYNC_ITEM, SYNC_PREPARED, SYNC_DECIDED, SYNC_END, and the
failover's VIEW_START and a new primary's merge without SYNC_BEGIN), in
orders a replica writes and in orders it never does, and a few malformed
ones.
Run from anywhere: python3 tests/fuzz/gen_corpus_txnlog.py"""
import os
import struct

LOAD, REPL_PREPARE, REPL_COMMIT, REPL_ABORT, GET = 11, 13, 14, 15, 1
SYNC_BEGIN, SYNC_ITEM, SYNC_PREPARED, SYNC_END, SYNC_DECIDED = 17, 18, 19, 20, 21
VIEW_CHANGE, VIEW_START = 22, 23


def frame(t, body, reqid=0):
    return b"TX" + bytes([1, t]) + struct.pack("<IQ", len(body), reqid) + body


def s(b):
    return struct.pack("<I", len(b)) + b


def prepare(txnid, ts, reads, writes, t=REPL_PREPARE):
    body = struct.pack("<QQ", txnid, ts) + struct.pack("<I", len(reads))
    for k, v in reads:
        body += s(k) + struct.pack("<Q", v)
    body += struct.pack("<I", len(writes))
    for k, v in writes:
        body += s(k) + s(v)
    return frame(t, body)


def commit(txnid, ts):
    return frame(REPL_COMMIT, struct.pack("<QQ", txnid, ts))


def abort(txnid):
    return frame(REPL_ABORT, struct.pack("<Q", txnid))


def load(k, v, ts):
    return frame(LOAD, struct.pack("<Q", ts) + s(k) + s(v))


def sync_begin(keys):
    return frame(SYNC_BEGIN, struct.pack("<Q", keys))


def sync_item(k, v, ts):
    return frame(SYNC_ITEM, struct.pack("<Q", ts) + s(k) + s(v))


def decided(txnid, ts):
    return frame(SYNC_DECIDED, struct.pack("<QQ", txnid, ts))


def view_start(view, incarnation=0):
    return frame(VIEW_START, struct.pack("<QQ", view, incarnation))


seeds = {
    "load": load(b"k", b"v", 1),
    "prepare-commit": prepare(1, 10, [(b"a", 0)], [(b"b", b"vb")]) + commit(1, 10),
    "prepare-abort": prepare(2, 11, [], [(b"c", b"vc")]) + abort(2),
    "prepared-left": load(b"a", b"a1", 5) + prepare(3, 12, [(b"a", 5)], [(b"a", b"a2")]),
    "mixed": load(b"x", b"1", 1) + prepare(4, 20, [], [(b"x", b"2"), (b"y", b"3")]) + commit(4, 20)
    + prepare(5, 30, [(b"x", 20)], [(b"y", b"4")]) + abort(5) + load(b"z", b"", 7),
    "versions": b"".join(load(b"v", b"%d" % i, i) for i in range(1, 6)),
    "many-prepared": b"".join(prepare(100 + i, 50, [], [(b"p%d" % i, b"v")]) for i in range(10)),
    "stale-decisions": commit(9, 9) + abort(9),
    "commit-other-ts": prepare(6, 40, [], [(b"w", b"v")]) + commit(6, 41),
    "load-held": prepare(7, 60, [], [(b"h", b"v")]) + load(b"h", b"x", 61),
    "sync": prepare(8, 70, [], [(b"s", b"old")]) + sync_begin(3) + prepare(9, 80, [(b"r", 0)], [(b"s", b"n")], SYNC_PREPARED)
    + sync_item(b"s", b"1", 2) + sync_item(b"s", b"1", 2) + sync_item(b"t", b"", 1) + commit(9, 80) + commit(8, 70),
    "sync-after-commit": prepare(10, 90, [], [(b"u", b"9")]) + commit(10, 90) + sync_begin(1) + sync_item(b"u", b"5", 50)
    + sync_item(b"u", b"9", 90),
    # The failover's entries (fuzz_txnlog keeps four decisions: more here
    # forget the oldest).
    "decided": prepare(11, 100, [], [(b"d", b"1")]) + prepare(12, 101, [], [(b"e", b"2")]) + decided(11, 100)
    + decided(12, 0) + decided(13, 102) + decided(11, 100) + prepare(13, 102, [], [(b"f", b"3")]),
    "decided-forgotten": b"".join(decided(20 + i, i % 2 * (200 + i)) for i in range(6)) + decided(20, 0)
    + prepare(20, 300, [], [(b"g", b"x")]) + prepare(25, 301, [], [(b"g", b"y")]),
    "decided-contradicts": decided(14, 140) + decided(14, 0),
    "decided-other-ts": prepare(15, 150, [], [(b"h", b"v")]) + decided(15, 151),
    "decided-txn0": decided(0, 5),
    "view-start": view_start(3, 7) + load(b"k", b"v", 1) + view_start(5) + view_start(4),
    "merge-no-begin": view_start(2) + prepare(16, 160, [], [(b"m", b"own")]) + prepare(17, 170, [], [(b"n", b"own")])
    + decided(16, 160) + decided(18, 0) + prepare(19, 190, [(b"m", 0)], [(b"o", b"v")], SYNC_PREPARED)
    + prepare(18, 180, [], [(b"o", b"x")], SYNC_PREPARED) + sync_item(b"m", b"own", 160) + sync_item(b"p", b"1", 3),
    "snapshot": view_start(9) + decided(21, 0) + decided(22, 220) + load(b"q", b"1", 220)
    + prepare(23, 230, [(b"q", 0)], [(b"r", b"v")]),
    "bad-view-change": frame(VIEW_CHANGE, struct.pack("<QQ", 1, 0)),
    # Completeness: a transfer ended, one cut (no SYNC_END), a rejoin's
    # bare marker, and a snapshot of a store not complete.
    "sync-end": sync_begin(0) + frame(SYNC_END, struct.pack("<QQ", 0, 0)),
    "sync-cut": sync_begin(2) + sync_item(b"s", b"1", 2) + frame(SYNC_END, struct.pack("<QQ", 0, 1)) + sync_begin(2)
    + sync_item(b"t", b"2", 3),
    "incomplete-snapshot": view_start(4) + sync_begin(0) + load(b"q", b"1", 5)
    + prepare(24, 240, [], [(b"r", b"v")]) + frame(SYNC_END, struct.pack("<QQ", 0, 0)) + commit(24, 240),
    "bad-get": frame(GET, struct.pack("<QQ", 0, 1) + s(b"k")),
    "bad-reqid": frame(REPL_ABORT, struct.pack("<Q", 1), reqid=9),
    "bad-cut": (load(b"k", b"v", 1) + commit(1, 1))[:-3],
    "bad-trailing": abort(1) + b"zz",
}
here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "corpus_txnlog")
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print("wrote %d inputs to %s" % (len(seeds), out))
