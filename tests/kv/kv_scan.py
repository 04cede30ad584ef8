#!/usr/bin/env python3
"""SCAN's guarantee on demi-kv: every key present for the whole scan is
returned at least once, even when keys are inserted and deleted between
the calls and the table doubles several times meanwhile (from about 2^10
to 2^15 buckets here), or shrinks back as most keys are deleted. Also: a scan returns no key that never existed,
ends (cursor 0) within a bounded number of calls, and MATCH, TYPE and
COUNT filter as KEYS does. RANDOMKEY, RENAME and TYPE are checked on the
same keyspace. Run by test_kv_scan.sh."""

import math
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kvtest import Conn, check, main, start_kv  # noqa: E402

STABLE = 1000  # keys present for the whole scan
CHURN_PER_CALL = 120  # keys inserted between two SCAN calls while growing
GROW_TO = 24 * STABLE  # then as many deleted as inserted
BATCH = 200  # keys per MSET


def mset(c, keys):
    for i in range(0, len(keys), BATCH):
        args = ["MSET"]
        for k in keys[i:i + BATCH]:
            args += [k, "v"]
        c.send(*args)
    for i in range(0, len(keys), BATCH):
        check(c.read_reply() == "OK", "MSET failed")


def delete(c, keys):
    if keys:
        c.send("DEL", *keys)
        c.read_reply()


def full_scan(c, *opts):
    seen, cursor, calls = [], b"0", 0
    while True:
        cursor, keys = c.cmd("SCAN", cursor, *opts)
        seen += keys
        calls += 1
        check(calls < 100000, "SCAN did not end")
        if cursor == b"0":
            return seen


def run():
    rnd = random.Random(16)
    kv = start_kv()
    with Conn(kv.port) as c:
        c.cmd("FLUSHALL")
        stable = ["stable:%d" % i for i in range(STABLE)]
        mset(c, stable)
        # A scan with churn between calls: new keys (the table grows past
        # 2^15 buckets) and deletions of some of the new ones.
        seen, cursor, calls, n, churn = set(), b"0", 0, 0, []
        ever = set(stable)
        while True:
            cursor, keys = c.cmd("SCAN", cursor, "COUNT", 20)
            seen.update(k.decode() for k in keys)
            calls += 1
            check(calls < 100000, "SCAN with churn did not end")
            if cursor == b"0":
                break
            # Grow to GROW_TO keys, then churn at a constant size so that
            # the scan can catch up with the table.
            add = CHURN_PER_CALL if len(churn) + STABLE < GROW_TO else CHURN_PER_CALL // 4
            new = ["churn:%d" % (n + i) for i in range(add)]
            n += add
            mset(c, new)
            ever.update(new)
            churn += new
            gone = [churn.pop(rnd.randrange(len(churn))) for _ in range(min(len(churn), CHURN_PER_CALL // 4))]
            delete(c, gone)
        dbsize = c.cmd("DBSIZE")
        check(dbsize > 16 * STABLE, f"the table did not grow enough during the scan ({dbsize} keys)")
        missed = [k for k in stable if k not in seen]
        check(not missed, f"{len(missed)} keys present for the whole scan were not returned, e.g. {missed[:5]}")
        bogus = [k for k in seen if k not in ever]
        check(not bogus, f"SCAN returned keys that never existed: {bogus[:5]}")
        print(f"scan with churn: {calls} calls, {len(seen)} keys seen, {dbsize} keys at the end")

        # A scan while the churn keys are deleted: the table shrinks back
        # (2^15 to 2^11 buckets) between the calls.
        seen, cursor, calls = set(), b"0", 0
        rnd.shuffle(churn)
        while True:
            cursor, keys = c.cmd("SCAN", cursor, "COUNT", 20)
            seen.update(k.decode() for k in keys)
            calls += 1
            check(calls < 100000, "SCAN with deletions did not end")
            if cursor == b"0":
                break
            delete(c, churn[:1000])
            del churn[:1000]
        missed = [k for k in stable if k not in seen]
        check(not missed, f"{len(missed)} keys were not returned while the table shrank, e.g. {missed[:5]}")
        check(not churn, f"the scan ended before the deletions ({len(churn)} left): the table did not shrink")
        print(f"scan with deletions: {calls} calls, {len(seen)} keys seen, {c.cmd('DBSIZE')} keys at the end")

        # A scan of a stable keyspace returns every key, and MATCH, TYPE and
        # COUNT agree with KEYS.
        all_keys = set(k.decode() for k in c.cmd("KEYS", "*"))
        got = set(k.decode() for k in full_scan(c, "COUNT", 100))
        check(got == all_keys, "a full SCAN differs from KEYS *")
        want = set(k.decode() for k in c.cmd("KEYS", "stable:1*"))
        got = set(k.decode() for k in full_scan(c, "MATCH", "stable:1*", "COUNT", 1000, "TYPE", "string"))
        check(got == want and len(want) == 111, f"SCAN MATCH stable:1* gave {len(got)} keys, KEYS {len(want)}")
        check(full_scan(c, "TYPE", "list", "COUNT", 1000) == [], "SCAN TYPE list returned strings")
        check(set(k.decode() for k in full_scan(c, "COUNT", 1)) == all_keys, "SCAN COUNT 1 missed keys")

        # RANDOMKEY gives existing keys; RENAME keeps the time to live.
        for _ in range(50):
            k = c.cmd("RANDOMKEY").decode()
            check(k in all_keys, f"RANDOMKEY gave {k!r}, not a key")
        t0 = time.monotonic()
        check(c.cmd("EXPIRE", "stable:1", 1000) == 1, "EXPIRE")
        check(c.cmd("RENAME", "stable:1", "moved") == "OK", "RENAME")
        ttl = c.cmd("TTL", "moved")
        # At most the time measured since before the EXPIRE has passed,
        # plus 1 s for rounding: no guess of this machine's speed.
        lo = 1000 - math.ceil(time.monotonic() - t0) - 1
        check(lo <= ttl <= 1000, f"RENAME lost the time to live ({ttl}, want [{lo}, 1000])")
        check(c.cmd("TYPE", "moved") == "string" and c.cmd("TYPE", "stable:1") == "none", "TYPE after RENAME")
        check(c.cmd("EXISTS", "stable:1") == 0, "RENAME left the source")
        # A renamed key with a time to live still expires: it moved in the
        # expiry array too.
        check(c.cmd("PEXPIRE", "moved", 1) == 1, "PEXPIRE")
        for _ in range(1000):
            if c.cmd("EXISTS", "moved") == 0:
                break
        else:
            check(False, "a renamed key with a 1 ms time to live did not expire")
        c.cmd("FLUSHALL")
        check(full_scan(c) == [] and c.cmd("RANDOMKEY") is None, "SCAN or RANDOMKEY after FLUSHALL")


if __name__ == "__main__":
    main(run)
