#!/usr/bin/env python3
"""demi-kv's sets where replies are random or in the table's order, so
that vs_redis_set.py cannot compare bytes:

- SPOP and SRANDMEMBER by their properties (distinct members of the set,
  the counts, what is left, repeats for a negative count, every member
  drawn), checked on redis-server too so that the checks are Redis's
  behaviour and not demi-kv's;
- SSCAN: every member present for a whole scan is returned while members
  are added and removed between calls, and a full scan gives what
  redis-server gives (sorted);
- a random run of set commands on both servers, replies compared (arrays
  sorted);
- COMMAND INFO of every set command: arity, flags, key positions and ACL
  categories as redis-server 7.0 has them;
- SPOP with --aof: replay gives the set the server had (SPOP is logged as
  the SREM of what it took, not replayed at random).

Run by test_kv_set.sh; Python 3 standard library only."""

import os
import random
import subprocess
import sys
import tempfile
import shutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kvtest import Conn, RespError, Server, _servers, build_dir, check, fail, main, start_kv, start_redis  # noqa: E402

SET_CMDS = ["sadd", "srem", "spop", "smembers", "sismember", "smismember", "scard", "srandmember", "sinter",
            "sunion", "sdiff", "sinterstore", "sunionstore", "sdiffstore", "sintercard", "smove", "sscan"]


def members(n, prefix="m"):
    return [f"{prefix}{i}".encode() for i in range(n)]


def check_random(c, who):
    """SPOP and SRANDMEMBER on connection c: only what Redis guarantees."""
    c.cmd("DEL", "r", "one")
    full = set(members(100))
    check(c.cmd("SADD", "r", *full) == 100, f"{who}: SADD")
    # SRANDMEMBER: positive counts give distinct members, at most all.
    for n in (1, 5, 33, 34, 60, 99, 100, 150):
        got = c.cmd("SRANDMEMBER", "r", n)
        check(len(got) == min(n, 100) and len(set(got)) == len(got) and set(got) <= full,
              f"{who}: SRANDMEMBER r {n} gave {len(got)} members, {len(set(got))} distinct")
    # Negative: exactly that many, repeats allowed, all members.
    got = c.cmd("SRANDMEMBER", "r", -500)
    check(len(got) == 500 and set(got) <= full, f"{who}: SRANDMEMBER r -500")
    check(len(set(got)) > 50, f"{who}: SRANDMEMBER r -500 drew only {len(set(got))} distinct members")
    check(c.cmd("SCARD", "r") == 100, f"{who}: SRANDMEMBER changed the set")
    got = c.cmd("SRANDMEMBER", "r")
    check(got in full, f"{who}: SRANDMEMBER r")
    c.cmd("SADD", "one", "x")
    check(c.cmd("SRANDMEMBER", "one", -5) == [b"x"] * 5, f"{who}: SRANDMEMBER one -5")
    # Every member of a small set comes up often. Not equally: a random
    # bucket and then a random member of its chain (both servers draw so)
    # gives a member sharing its bucket with two others 1/6, which the
    # bounds below leave more than 5 standard deviations of room.
    c.cmd("DEL", "four")
    c.cmd("SADD", "four", "a", "b", "c", "d")
    got = c.cmd("SRANDMEMBER", "four", -4000)
    counts = {m: got.count(m) for m in (b"a", b"b", b"c", b"d")}
    check(all(v > 400 for v in counts.values()), f"{who}: SRANDMEMBER four -4000 drew {counts}")
    firsts = {}
    for _ in range(400):
        m = c.cmd("SRANDMEMBER", "four")
        firsts[m] = firsts.get(m, 0) + 1
    check(len(firsts) == 4 and min(firsts.values()) > 25, f"{who}: SRANDMEMBER four drew {firsts}")
    # SPOP: distinct members of the set, gone afterwards.
    left = set(full)
    for n in (1, 10, 60):
        got = c.cmd("SPOP", "r", n)
        check(len(got) == n and len(set(got)) == n and set(got) <= left, f"{who}: SPOP r {n}")
        left -= set(got)
        check(c.cmd("SCARD", "r") == len(left), f"{who}: SCARD after SPOP r {n}")
        check(c.cmd("SMISMEMBER", "r", *got) == [0] * n, f"{who}: popped members still there")
    m = c.cmd("SPOP", "r")
    check(m in left, f"{who}: SPOP r")
    left.discard(m)
    got = c.cmd("SPOP", "r", 1000)
    check(set(got) == left and len(got) == len(left), f"{who}: SPOP r 1000 gave {len(got)} of {len(left)}")
    check(c.cmd("EXISTS", "r") == 0, f"{who}: an emptied set is deleted")
    # One at a time, to the end.
    c.cmd("SADD", "r", *members(50))
    seen = [c.cmd("SPOP", "r") for _ in range(50)]
    check(set(seen) == set(members(50)), f"{who}: 50 SPOPs")
    check(c.cmd("SPOP", "r") is None and c.cmd("EXISTS", "r") == 0, f"{who}: SPOP of an emptied set")
    c.cmd("DEL", "one", "four")


def check_scan_churn(c, who):
    """Members present for the whole scan are all returned, while others
    come and go between calls (the table grows and shrinks meanwhile)."""
    rng = random.Random(7)
    c.cmd("DEL", "sc")
    stable = set(members(300, "s"))
    c.cmd("SADD", "sc", *stable)
    transient = members(3000, "t")
    c.cmd("SADD", "sc", *transient[:200])
    everything = stable | set(transient)
    got, cursor, calls = set(), b"0", 0
    while True:
        cursor, batch = c.cmd("SSCAN", "sc", cursor, "COUNT", 7)
        calls += 1
        check(set(batch) <= everything, f"{who}: SSCAN returned a member never added")
        got |= set(batch)
        # Churn: add a burst (growth), or remove most transients (shrink).
        if calls % 3 == 0:
            c.cmd("SADD", "sc", *rng.sample(transient, 400))
        elif calls % 3 == 1:
            c.cmd("SREM", "sc", *rng.sample(transient, 1500))
        if cursor == b"0":
            break
        check(calls < 10000, f"{who}: SSCAN did not finish")
    missing = stable - got
    check(not missing, f"{who}: SSCAN missed {len(missing)} members present for the whole scan")
    # MATCH filters what a step returns, not where it stops.
    got, cursor = set(), b"0"
    while True:
        cursor, batch = c.cmd("SSCAN", "sc", cursor, "MATCH", "s1*", "COUNT", 5)
        check(all(m.startswith(b"s1") for m in batch), f"{who}: SSCAN MATCH s1*")
        got |= set(batch)
        if cursor == b"0":
            break
    check(got == {m for m in stable if m.startswith(b"s1")}, f"{who}: SSCAN MATCH s1* missed some")
    c.cmd("DEL", "sc")


def check_scan_vs_redis(kv, rd):
    """A scan that ends in one call gives the same members on both."""
    for c in (kv, rd):
        c.cmd("DEL", "sv", "iv")
        c.cmd("SADD", "sv", *members(200), b"", b"\x00\xff")
        c.cmd("SADD", "iv", *range(100))  # an intset in Redis: sorted there
    for args in (("sv", 0, "COUNT", 1000), ("sv", 0, "COUNT", 1000, "MATCH", "m1?"), ("iv", 0, "COUNT", 1000),
                 ("iv", 0, "MATCH", "*5", "COUNT", 1000), ("sv", 0, "MATCH", "", "COUNT", 1000)):
        a, b = kv.cmd("SSCAN", *args), rd.cmd("SSCAN", *args)
        check(a[0] == b[0] == b"0" and sorted(a[1]) == sorted(b[1]),
              f"SSCAN {args}: demi-kv {a[0]!r} {len(a[1])} members, redis-server {b[0]!r} {len(b[1])}")
    for c in (kv, rd):
        c.cmd("DEL", "sv", "iv")


def norm(r):
    if isinstance(r, RespError):
        return ("err", str(r))
    if isinstance(r, list):
        return sorted((norm(x) for x in r), key=repr)
    return r


def random_run(kv, rd, n=3000):
    """Random set commands on a few keys and members, on both servers."""
    rng = random.Random(16)
    keys = ["k1", "k2", "k3", "k4", "str"]
    ms = ["a", "b", "c", "d", "e", "f", "1", "2", "10", ""]
    for c in (kv, rd):
        c.cmd("DEL", *keys)
        c.cmd("SET", "str", "v")

    def some(k=None):
        return [rng.choice(ms) for _ in range(k or rng.randint(1, 5))]

    def ks(lo=1):
        return [rng.choice(keys) for _ in range(rng.randint(lo, 4))]

    for i in range(n):
        op = rng.randrange(15)
        k = rng.choice(keys)
        if op < 4:
            cmd = ["SADD", k, *some()]
        elif op == 4:
            cmd = ["SREM", k, *some()]
        elif op == 5:
            cmd = ["SMOVE", k, rng.choice(keys), rng.choice(ms)]
        elif op == 6:
            cmd = ["SINTERSTORE", rng.choice(keys), *ks()]
        elif op == 7:
            cmd = ["SUNIONSTORE", rng.choice(keys), *ks()]
        elif op == 8:
            cmd = ["SDIFFSTORE", rng.choice(keys), *ks()]
        elif op == 9:
            cmd = [rng.choice(["SINTER", "SUNION", "SDIFF"]), *ks()]
        elif op == 10:
            kk = ks()
            cmd = ["SINTERCARD", len(kk), *kk] + (["LIMIT", rng.randint(0, 4)] if rng.random() < 0.5 else [])
        elif op == 11:
            cmd = [rng.choice(["SMEMBERS", "SCARD"]), k]
        elif op == 12:
            cmd = ["SMISMEMBER", k, *some()]
        elif op == 13:
            cmd = ["SISMEMBER", k, rng.choice(ms)]
        else:
            cmd = ["EXISTS", k]
        a, b = kv.cmd(*cmd), rd.cmd(*cmd)
        if norm(a) != norm(b):
            fail(f"random run, command {i} {cmd}: demi-kv {a!r}, redis-server {b!r}")
    for k in keys[:4]:
        a, b = kv.cmd("SMEMBERS", k), rd.cmd("SMEMBERS", k)
        check(sorted(a) == sorted(b), f"random run: {k} differs at the end")
    for c in (kv, rd):
        c.cmd("DEL", *keys)


def check_command_info(kv, rd):
    for name in SET_CMDS:
        a, b = kv.cmd("COMMAND", "INFO", name)[0], rd.cmd("COMMAND", "INFO", name)[0]
        check(a is not None, f"COMMAND INFO {name}: demi-kv does not know it")
        # name, arity, flags, first, last, step, ACL categories
        check(a[:7] == b[:7], f"COMMAND INFO {name}: demi-kv {a[:7]!r}, redis-server {b[:7]!r}")
        da, db = kv.cmd("COMMAND", "DOCS", name), rd.cmd("COMMAND", "DOCS", name)
        fa, fb = dict(zip(da[1][0::2], da[1][1::2])), dict(zip(db[1][0::2], db[1][1::2]))
        for f in (b"summary", b"since", b"group", b"complexity"):
            check(fa.get(f) == fb.get(f), f"COMMAND DOCS {name} {f}: {fa.get(f)!r} vs {fb.get(f)!r}")


def start_kv_aof(path):
    exe = os.path.join(build_dir(), "demi-kv")
    env = dict(os.environ, LIBOS=os.environ.get("LIBOS", "catnap"), HUGEPAGES="off")
    proc = subprocess.Popen([exe, "--addr", "127.0.0.1:0", "--aof", path], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    line = proc.stdout.readline().decode().strip()
    if not line.startswith("ready 127.0.0.1:"):
        proc.kill()
        proc.wait()
        fail(f"demi-kv --aof did not start ({line!r}): {proc.stderr.read().decode(errors='replace')}")
    s = Server(proc, int(line.rsplit(":", 1)[1]), "demi-kv --aof")
    _servers.append(s)
    return s


def check_aof():
    tmp = tempfile.mkdtemp(prefix="demi-kv-set.")
    try:
        path = os.path.join(tmp, "kv.aof")
        kv = start_kv_aof(path)
        with Conn(kv.port) as c:
            c.cmd("SADD", "p", *members(500))
            c.cmd("SADD", "whole", *members(20))
            c.cmd("SADD", "single", "only")
            for n in (1, 7, 100, 300):
                c.cmd("SPOP", "p", n)
            for _ in range(20):
                c.cmd("SPOP", "p")
            c.cmd("SPOP", "whole", 1000)
            c.cmd("SPOP", "single")
            c.cmd("SADD", "src", "a", "b")
            c.cmd("SMOVE", "src", "dst", "a")
            c.cmd("SADD", "u1", "x", "y")
            c.cmd("SUNIONSTORE", "u2", "u1", "dst")
            c.cmd("SINTERSTORE", "u3", "u1", "nokey")
            before = {k: sorted(c.cmd("SMEMBERS", k)) for k in ("p", "whole", "single", "src", "dst", "u2")}
            keys_before = c.cmd("DBSIZE")
        check(len(before["p"]) == 500 - 408 - 20, f"SPOP left {len(before['p'])} of 500")
        kv.stop()
        kv = start_kv_aof(path)
        with Conn(kv.port) as c:
            after = {k: sorted(c.cmd("SMEMBERS", k)) for k in before}
            check(after == before, "after a restart with --aof the sets differ from what the server had")
            check(c.cmd("DBSIZE") == keys_before, "after a restart with --aof the key count differs")
        kv.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run():
    rd_srv = start_redis()
    kv_srv = start_kv()
    with Conn(kv_srv.port) as kv, Conn(rd_srv.port) as rd:
        check_random(rd, "redis-server")
        check_random(kv, "demi-kv")
        check_scan_churn(rd, "redis-server")
        check_scan_churn(kv, "demi-kv")
        check_scan_vs_redis(kv, rd)
        random_run(kv, rd)
        check_command_info(kv, rd)
    kv_srv.stop()
    rd_srv.stop()
    check_aof()


if __name__ == "__main__":
    main(run)
