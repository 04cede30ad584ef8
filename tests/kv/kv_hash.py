#!/usr/bin/env python3
"""demi-kv's hashes, where a byte-for-byte comparison with redis-server
cannot say it (vs_redis_hash.py does the rest):

- HSCAN: every field present for the whole scan is returned, with its
  value, while fields are added and removed between calls (the table
  grows and shrinks under the cursor); a hash Redis would keep as a
  listpack (512 fields or fewer, none longer than 64 bytes, ever) comes
  whole with cursor 0, a bigger one in pages, as from redis-server;
- HRANDFIELD: distinct fields of the hash for a positive count (both the
  sparse and the dense draw), the whole hash past its size, repeats for a
  negative count with every field drawn about as often, WITHVALUES pairs
  matching, the bound on negative counts;
- random hash commands on a few keys, the same to redis-server: equal
  replies and the same hashes at the end;
- memory: INFO's used_memory comes back to the same byte once the hashes
  are deleted or emptied (every byte a hash allocates is counted);
- --aof: hashes written with every write command come back the same after
  a restart (HINCRBYFLOAT logged as the HSET of its result).
Starts its servers on 127.0.0.1 and stops them by PID."""

import os
import random
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kvtest import Conn, RespError, Server, _servers, build_dir, check, fail, main, start_kv, start_redis  # noqa: E402


def hgetall(c, key):
    r = c.cmd("HGETALL", key)
    return dict(zip(r[0::2], r[1::2]))


def scan_all(c, key, count, between=None):
    """Every pair HSCAN returns over a whole scan (a field may come more
    than once); between(step) runs after each call."""
    seen, cursor, step = {}, b"0", 0
    while True:
        r = c.cmd("HSCAN", key, cursor, "COUNT", count)
        check(isinstance(r, list) and len(r) == 2 and len(r[1]) % 2 == 0, f"bad HSCAN reply {r!r}")
        cursor, items = r
        for f, v in zip(items[0::2], items[1::2]):
            seen.setdefault(f, set()).add(v)
        step += 1
        check(step < 100000, "HSCAN never came back to cursor 0")
        if cursor == b"0":
            return seen, step
        if between:
            between(step)


def test_scan_guarantee(c):
    c.cmd("DEL", "hs")
    stable = {b"s%d" % i: b"v%d" % i for i in range(600)}
    c.cmd("HSET", "hs", *[x for kv in stable.items() for x in kv])
    c.cmd("HSET", "hs", *[x for i in range(400) for x in (b"t%d" % i, b"x")])
    state = {"next": 400}

    def churn(step):
        # Grow the table to several times its size, then shrink it below
        # where it started, removing only fields outside the stable set.
        if step < 40:
            base = state["next"]
            c.cmd("HSET", "hs", *[x for i in range(base, base + 200) for x in (b"t%d" % i, b"y")])
            state["next"] = base + 200
        else:
            victims = [b"t%d" % i for i in range(state["next"]) if (i + step) % 3 == 0]
            if victims:
                c.cmd("HDEL", "hs", *victims)

    seen, steps = scan_all(c, "hs", 10, churn)
    missing = [f for f in stable if f not in seen]
    check(not missing, f"HSCAN under churn missed {len(missing)} stable fields, e.g. {missing[:5]}")
    wrong = [f for f in stable if seen[f] != {stable[f]}]
    check(not wrong, f"HSCAN gave wrong values for {wrong[:5]}")
    check(steps > 5, f"a hash of 1000+ fields scanned with COUNT 10 in {steps} calls")
    final = hgetall(c, "hs")
    check(len(final) < 600 + 400 + 200 * 39, "the churn did not remove fields")
    # Without churn: exactly the hash, every field at least once.
    seen, _ = scan_all(c, "hs", 7)
    check(set(seen) == set(final), "a quiet HSCAN did not return exactly the hash's fields")
    check(all(seen[f] == {final[f]} for f in final), "a quiet HSCAN returned wrong values")
    # MATCH filters within the same cursor walk.
    cursor, got = b"0", set()
    while True:
        cursor, items = c.cmd("HSCAN", "hs", cursor, "MATCH", "s1*", "COUNT", 30)
        got.update(items[0::2])
        if cursor == b"0":
            break
    check(got == {f for f in final if f.startswith(b"s1")}, "HSCAN MATCH s1* returned the wrong fields")


def first_scan(c, key):
    return c.cmd("HSCAN", key, 0, "COUNT", 1)


def test_scan_encoding(c, redis):
    """Which hashes come whole from one HSCAN call, beside redis-server."""
    shapes = {
        "h512": [("HSET", "h512", *[x for i in range(512) for x in (f"f{i}", "v")])],
        "h513": [("HSET", "h513", *[x for i in range(513) for x in (f"f{i}", "v")])],
        "hlong": [("HSET", "hlong", "a", "1", "b", "x" * 65)],
        "h64": [("HSET", "h64", "a", "1", "b", "x" * 64)],
        "hlongdel": [("HSET", "hlongdel", "a", "1", "b", "2", "c", "x" * 65), ("HDEL", "hlongdel", "c")],
        "hfield": [("HSET", "hfield", "a", "1", "f" * 65, "2")],
        "hnx": [("HSET", "hnx", "a", "1", "b", "2"), ("HSETNX", "hnx", "a", "y" * 65)],
        "hflt": [("HSET", "hflt", "a", "1", "b", "2"), ("HINCRBYFLOAT", "hflt", "a", "1e100")],
        "hincr": [("HSET", "hincr", "a", "1", "b", "2"), ("HINCRBY", "hincr", "i" * 65, "1")],
        "h511": [("HSET", "h511", *[x for i in range(511) for x in (f"f{i}", "v")]), ("HSET", "h511", "a", "1"),
                 ("HSET", "h511", "b", "2"), ("HDEL", "h511", "a", "b")],
        "hshrink": [("HSET", "hshrink", *[x for i in range(600) for x in (f"f{i}", "v")]),
                    ("HDEL", "hshrink", *[f"f{i}" for i in range(590)])],
    }
    # 20 more short fields in the small shapes: a hash table of a few
    # fields can come whole from one call with COUNT 1 (from Redis too).
    for key, cmds in shapes.items():
        if key not in ("h512", "h513", "h511", "hshrink"):
            cmds.insert(0, ("HSET", key, *[x for i in range(20) for x in (f"p{i}", "v")]))
    conns = [c] + ([Conn(redis.port)] if redis else [])
    for key, cmds in shapes.items():
        whole = []
        for conn in conns:
            conn.cmd("DEL", key)
            for cmd in cmds:
                conn.cmd(*cmd)
            n = conn.cmd("HLEN", key)
            cursor, items = first_scan(conn, key)
            whole.append(cursor == b"0" and len(items) == 2 * n)
        if redis:
            check(whole[0] == whole[1], f"{key}: demi-kv answers HSCAN {'whole' if whole[0] else 'in pages'}, "
                  f"redis-server {'whole' if whole[1] else 'in pages'}")
    for conn in conns[1:]:
        conn.close()
    # The expected shapes, whatever redis-server is there.
    check(first_scan(c, "h512")[0] == b"0", "a hash of 512 short fields was not scanned whole")
    check(first_scan(c, "h513")[0] != b"0", "a hash of 513 fields was scanned whole with COUNT 1")
    check(first_scan(c, "hshrink")[0] != b"0", "a hash shrunk from 600 to 10 fields was scanned whole")


def test_randfield(c):
    c.cmd("DEL", "hr")
    fields = {b"f%d" % i: b"v%d" % i for i in range(300)}
    c.cmd("HSET", "hr", *[x for kv in fields.items() for x in kv])
    for count in (1, 5, 50, 99, 100, 101, 150, 299):
        r = c.cmd("HRANDFIELD", "hr", count)
        check(len(r) == count and len(set(r)) == count and set(r) <= set(fields),
              f"HRANDFIELD hr {count}: {len(r)} fields, {len(set(r))} distinct")
        r = c.cmd("HRANDFIELD", "hr", count, "WITHVALUES")
        pairs = list(zip(r[0::2], r[1::2]))
        check(len(pairs) == count and len({f for f, _ in pairs}) == count, f"HRANDFIELD hr {count} WITHVALUES")
        check(all(fields.get(f) == v for f, v in pairs), f"HRANDFIELD hr {count} WITHVALUES: wrong values")
    for count in (300, 301, 100000):
        r = c.cmd("HRANDFIELD", "hr", count)
        check(sorted(r) == sorted(fields), f"HRANDFIELD hr {count} is not the whole hash")
    # Draws with replacement: every field comes about equally often
    # (300 fields, 150000 draws: each 500 times on average; outside
    # 250..750 is many standard deviations (22) away).
    r = c.cmd("HRANDFIELD", "hr", -150000)
    check(len(r) == 150000 and set(r) <= set(fields), "HRANDFIELD hr -150000")
    counts = {}
    for f in r:
        counts[f] = counts.get(f, 0) + 1
    check(len(counts) == 300, f"HRANDFIELD hr -150000 drew only {len(counts)} of 300 fields")
    lo, hi = min(counts.values()), max(counts.values())
    check(250 <= lo and hi <= 750, f"HRANDFIELD -150000: a field drawn {lo} times, another {hi}")
    r = c.cmd("HRANDFIELD", "hr", -1000, "WITHVALUES")
    check(len(r) == 2000 and all(fields.get(f) == v for f, v in zip(r[0::2], r[1::2])),
          "HRANDFIELD hr -1000 WITHVALUES")
    # Without a count, over many calls, every field of a small hash.
    c.cmd("DEL", "h3")
    c.cmd("HSET", "h3", "a", 1, "b", 2, "c", 3)
    got = {c.cmd("HRANDFIELD", "h3") for _ in range(200)}
    check(got == {b"a", b"b", b"c"}, f"HRANDFIELD h3 over 200 calls gave {got}")
    # One field at a time (each draw a random bucket and position): 24
    # fields in a table of 32 buckets, chains of different lengths, each
    # field drawn about 1000 times in 24000 calls (sd 31).
    c.cmd("DEL", "h24")
    c.cmd("HSET", "h24", *[x for i in range(24) for x in (b"f%d" % i, b"v")])
    c.raw(Conn.encode("HRANDFIELD", "h24") * 24000)
    counts = {}
    for _ in range(24000):
        f = c.read_reply()
        counts[f] = counts.get(f, 0) + 1
    lo, hi = min(counts.values()), max(counts.values())
    check(len(counts) == 24 and 700 <= lo and hi <= 1300,
          f"HRANDFIELD h24 24000 times: {len(counts)} fields, drawn {lo} to {hi} times")
    # A draw too long for any reply: refused, not computed.
    r = c.cmd("HRANDFIELD", "hr", -(1 << 24) - 1)
    check(isinstance(r, RespError), f"HRANDFIELD with a negative count past 2^24 answered {str(r)[:80]}")
    check(c.cmd("PING") == "PONG", "the connection did not survive")


def test_random_vs_redis(c, redis):
    """Random hash commands on a few keys and fields, the same to both
    servers: every reply equal (HGETALL, HKEYS and HVALS compared as
    sets), and the same keyspace at the end."""
    rng = random.Random(1616)
    keys = ["r0", "r1", "r2", "rs"]
    fields = ["a", "b", "c", "d", "e", "", "x" * 70]
    values = ["1", "-7", "0", "2.5", "abc", "", "9223372036854775806", "1e3", "v" * 80]
    r = Conn(redis.port)
    for conn in (c, r):
        conn.cmd("DEL", *keys)
        conn.cmd("SET", "rs", "string")
    for step in range(4000):
        k, f = rng.choice(keys), rng.choice(fields)
        op = rng.randrange(14)
        if op == 0:
            args = ["HSET", k] + [x for _ in range(rng.randint(1, 3)) for x in (rng.choice(fields), rng.choice(values))]
        elif op == 1:
            args = ["HSETNX", k, f, rng.choice(values)]
        elif op == 2:
            args = ["HDEL", k] + [rng.choice(fields) for _ in range(rng.randint(1, 3))]
        elif op == 3:
            args = ["HINCRBY", k, f, rng.choice(["1", "-3", "100", "9223372036854775807", "x"])]
        elif op == 4:
            args = ["HINCRBYFLOAT", k, f, rng.choice(["0.1", "-1.5", "1e10", "3", "inf", "1e308"])]
        elif op == 5:
            args = ["HGET", k, f]
        elif op == 6:
            args = ["HMGET", k] + [rng.choice(fields) for _ in range(rng.randint(1, 4))]
        elif op == 7:
            args = ["HLEN", k]
        elif op == 8:
            args = ["HSTRLEN", k, f]
        elif op == 9:
            args = ["HEXISTS", k, f]
        elif op == 10:
            args = [rng.choice(["HGETALL", "HKEYS", "HVALS"]), k]
        elif op == 11:
            args = ["HRANDFIELD", k, rng.choice(["0", "20", "-0"])]
        elif op == 12:
            args = ["EXISTS", k]
        else:
            args = ["HMSET", k, f, rng.choice(values)]
        got, want = c.cmd(*args), r.cmd(*args)
        if args[0] in ("HGETALL",) and isinstance(want, list):
            got, want = dict(zip(got[0::2], got[1::2])), dict(zip(want[0::2], want[1::2]))
        elif args[0] in ("HKEYS", "HVALS", "HRANDFIELD") and isinstance(want, list):
            got, want = sorted(got), sorted(want)
        same = str(got) == str(want) if isinstance(want, RespError) else got == want
        check(type(got) is type(want) and same,
              f"step {step}: {args!r}: demi-kv {got!r}, redis-server {want!r}")
    for k in keys[:3]:
        check(c.cmd("EXISTS", k) == r.cmd("EXISTS", k), f"{k} exists on one server only")
        if r.cmd("EXISTS", k):
            check(hgetall(c, k) == hgetall(r, k), f"{k} differs at the end")
    r.close()


def used_memory(c):
    info = c.cmd("INFO", "memory").decode()
    for line in info.split("\r\n"):
        if line.startswith("used_memory:"):
            return int(line.split(":")[1])
    fail("INFO memory has no used_memory")


def test_memory(c):
    c.cmd("FLUSHALL")
    base = used_memory(c)
    c.cmd("HSET", "hm", *[x for i in range(2000) for x in (b"field%d" % i, b"v" * 500)])
    grown = used_memory(c)
    check(grown - base >= 2000 * 500, f"used_memory grew by {grown - base} for 1 MB of hash values")
    for i in range(0, 2000, 2):
        c.cmd("HSET", "hm", b"field%d" % i, b"w" * (i % 700))
        c.cmd("HINCRBY", "hm", b"n%d" % (i % 50), 3)
        c.cmd("HINCRBYFLOAT", "hm", b"x%d" % (i % 50), "0.25")
    c.cmd("DEL", "hm")
    check(used_memory(c) == base, f"used_memory {used_memory(c)} after DEL of the hash, {base} before")
    c.cmd("HSET", "hm2", *[x for i in range(500) for x in (b"f%d" % i, b"v" * i)])
    c.cmd("HDEL", "hm2", *[b"f%d" % i for i in range(500)])
    check(c.cmd("EXISTS", "hm2") == 0, "a hash emptied by HDEL still exists")
    check(used_memory(c) == base, f"used_memory {used_memory(c)} after HDEL of every field, {base} before")


def start_kv_aof(path):
    exe = os.path.join(build_dir(), "demi-kv")
    env = dict(os.environ, LIBOS=os.environ.get("LIBOS", "catnap"), HUGEPAGES="off")
    proc = subprocess.Popen([exe, "--addr", "127.0.0.1:0", "--aof", path], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    line = proc.stdout.readline().decode().strip()
    if not line.startswith("ready 127.0.0.1:"):
        proc.kill()
        proc.wait()
        fail(f"demi-kv --aof did not start: {line!r} {proc.stderr.read().decode(errors='replace')}")
    s = Server(proc, int(line.rsplit(":", 1)[1]), "demi-kv --aof")
    _servers.append(s)
    return s


def test_aof():
    tmp = tempfile.mkdtemp(prefix="demi-kv-hash.")
    try:
        path = os.path.join(tmp, "kv.aof")
        kv = start_kv_aof(path)
        rng = random.Random(16)
        with Conn(kv.port) as c:
            c.cmd("HSET", "a", "f1", "v1", "f2", b"\x00\r\n\xff", "", "empty")
            c.cmd("HMSET", "b", *[x for i in range(300) for x in (b"k%d" % i, b"%d" % i)])
            c.cmd("HSETNX", "a", "f3", "v3")
            c.cmd("HSETNX", "a", "f1", "ignored")
            for i in range(200):
                c.cmd("HINCRBY", "n", b"c%d" % (i % 7), rng.randint(-1000, 1000))
                c.cmd("HINCRBYFLOAT", "n", b"f%d" % (i % 5), "%.3f" % rng.uniform(-1, 1))
            c.cmd("HINCRBYFLOAT", "n", "big", "1e308")
            for _ in range(5):
                c.cmd("HINCRBYFLOAT", "n", "big", "1e308")
            c.cmd("HDEL", "b", *[b"k%d" % i for i in range(0, 300, 3)])
            c.cmd("HSET", "gone", "x", "1")
            c.cmd("HDEL", "gone", "x")
            c.cmd("HSET", "big", "f", b"z" * 300000)
            before = {k: hgetall(c, k) for k in ("a", "b", "n", "big")}
            check(c.cmd("EXISTS", "gone") == 0, "an emptied hash exists")
        kv.stop()
        _servers.remove(kv)
        with open(path, "rb") as f:
            log = f.read()
        check(b"HINCRBYFLOAT" not in log and b"HSET" in log, "HINCRBYFLOAT is not logged as the HSET of its result")
        kv = start_kv_aof(path)
        with Conn(kv.port) as c:
            after = {k: hgetall(c, k) for k in ("a", "b", "n", "big")}
            for k in before:
                check(after[k] == before[k], f"hash {k} differs after a restart from the log")
            check(c.cmd("EXISTS", "gone") == 0, "an emptied hash came back from the log")
            check(c.cmd("DBSIZE") == 4, "other keys after the restart")
        kv.stop()
        _servers.remove(kv)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run():
    kv = start_kv()
    redis = None
    if shutil.which("redis-server"):
        redis = start_redis()
    else:
        print("redis-server not found: HSCAN's paging not compared with it", file=sys.stderr)
    with Conn(kv.port) as c:
        test_scan_guarantee(c)
        test_scan_encoding(c, redis)
        test_randfield(c)
        if redis:
            test_random_vs_redis(c, redis)
        test_memory(c)
    test_aof()


if __name__ == "__main__":
    main(run)
