"""redis-benchmark's default test list (no -t) against demi-kv and against
a real redis-server, each started here on 127.0.0.1 (see kvtest.py).

Three runs, each on both servers from an empty keyspace:
  1. -P 16 --csv: every test the tool runs against Redis must run against
     demi-kv too (same names, same order, a positive rate); then the
     keyspaces must be identical (types, contents, TTLs) and hold what the
     tool's commands imply (counter = INCRs, mylist = pushes - pops, ...).
  2. -c 50 without pipelining: the same checks.
  3. -P 16 -r 1000 -d 64: random keys, so the keyspaces differ; on both the
     counters sum to the INCRs, every key:* value is 64 bytes, and so on.
The list of tests comes from what redis-benchmark prints against Redis, so
no version's list is written down here. DEMI_SANITIZED=1 scales -n down.
Prints the run-1 rates of both servers (informal: the machine is shared).
"""

import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kvtest import Conn, RespError, check, fail, main, need_tool, read_value, start_kv, start_redis  # noqa: E402

SANITIZED = os.environ.get("DEMI_SANITIZED") == "1"


def dump(port):
    """The whole keyspace: {key: (type, contents, ttl)}, contents made
    order-independent where the type has no order (sets, hashes)."""
    out = {}
    with Conn(port, timeout=60) as c:
        keys = c.cmd("KEYS", "*")
        check(isinstance(keys, list), f"KEYS *: {keys!r}")
        for k in keys:
            t = c.cmd("TYPE", k)
            check(t != "none", f"key {k!r} of unexpected type {t!r}")
            v = read_value(c, k, t)
            if t == "zset":
                v = list(zip(v[0::2], [float(s) for s in v[1::2]]))
            check(not isinstance(v, RespError), f"reading {k!r} ({t}): {v}")
            out[k] = (t, v, c.cmd("TTL", k))
    return out


def describe(ks, limit=3):
    return {k: (t, v[:limit] if isinstance(v, list) else v, ttl) for k, (t, v, ttl) in ks.items()}


def bench(server, args):
    """Runs redis-benchmark ARGS --csv on SERVER from an empty keyspace;
    returns [(test name, rps)] in the order printed."""
    with Conn(server.port) as c:
        check(c.cmd("FLUSHALL") == "OK", f"{server.name}: FLUSHALL")
    cmd = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(server.port), *args, "--csv"]
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=300)
    except subprocess.TimeoutExpired:
        fail(f"{server.name}: {' '.join(cmd)} hung")
    out = p.stdout.decode(errors="replace")
    check(p.returncode == 0, f"{server.name}: {' '.join(cmd)} exited {p.returncode}:\n{out}\n{p.stderr.decode()}")
    rows = []
    for line in out.splitlines():
        f = line.split('","')
        if len(f) < 2 or line.startswith('"test"'):
            continue
        name, rps = f[0].lstrip('"'), f[1].rstrip('"')
        # "inf" when a short test took under a millisecond.
        check(re.fullmatch(r"[0-9]+(\.[0-9]+)?|inf", rps) is not None, f"{server.name}: bad CSV row {line!r}")
        rows.append((name, float(rps)))
    check(rows, f"{server.name}: no CSV rows from {' '.join(cmd)}:\n{out}")
    check(server.alive(), f"{server.name} died during {' '.join(args)}")
    return rows


def same_tests(label, kv_rows, redis_rows):
    kv_names = [n for n, _ in kv_rows]
    redis_names = [n for n, _ in redis_rows]
    check(kv_names == redis_names, f"{label}: demi-kv ran {kv_names}, Redis ran {redis_names}")
    for n, rps in kv_rows:
        check(rps > 0, f"{label}: demi-kv {n}: rate {rps}")
    # The default list includes at least these (in every redis-benchmark 7).
    for n in ("PING_INLINE", "SET", "GET", "INCR", "LPUSH", "RPOP", "SADD", "HSET", "ZADD", "MSET (10 keys)"):
        check(n in kv_names, f"{label}: no {n} row; the tool printed {kv_names}")


def exact_checks(label, ks, n, size=3):
    """What the default list implies without -r: each key is named once,
    every write carries the same payload of -d bytes (3 by default)."""
    want = {"key:__rand_int__", "counter:__rand_int__", "mylist", "myhash"}
    got = {k.decode() for k in ks}
    check(got == want, f"{label}: keys {sorted(got)}, want {sorted(want)}")
    t, data, ttl = ks[b"key:__rand_int__"]
    check(t == "string" and len(data) == size and ttl == -1, f"{label}: key {ks[b'key:__rand_int__']}")
    check(ks[b"counter:__rand_int__"] == ("string", str(n).encode(), -1),
          f"{label}: counter {ks[b'counter:__rand_int__']}, want {n} (one per INCR)")
    # LPUSH n, RPUSH n, LPOP n, RPOP n, LPUSH n (for LRANGE): n elements.
    t, v, _ = ks[b"mylist"]
    check(t == "list" and len(v) == n and set(v) <= {data}, f"{label}: mylist {t}, {len(v)} elements, want {n}")
    check(ks[b"myhash"] == ("hash", [(b"element:__rand_int__", data)], -1), f"{label}: myhash {ks[b'myhash']}")


def random_checks(label, ks, n, r, d):
    """What the default list implies with -r R -d D: random key names."""
    counters = 0
    for k, (t, v, ttl) in ks.items():
        check(ttl == -1, f"{label}: {k!r} has TTL {ttl}")
        m = re.fullmatch(rb"(key|counter):0*([0-9]+)", k)
        if m:
            check(t == "string" and int(m.group(2)) < r, f"{label}: {k!r} ({t})")
            if m.group(1) == b"key":
                check(len(v) == d, f"{label}: {k!r} holds {len(v)} bytes, want {d}")
            else:
                counters += int(v)
        elif k == b"mylist":
            check(t == "list" and len(v) == n and all(len(e) == d for e in v),
                  f"{label}: mylist {t} of {len(v)} (want {n} of {d} bytes)")
        elif k == b"myhash":
            check(t == "hash" and 0 < len(v) <= r, f"{label}: myhash {t} of {len(v)} fields")
            for f, val in v:
                check(re.fullmatch(rb"element:[0-9]{12}", f) and len(val) == d, f"{label}: myhash field {f!r}")
        else:
            # SADD/ZADD n then SPOP/ZPOPMIN n leave myset and myzset empty.
            fail(f"{label}: unexpected key {k!r} ({t})")
    check(counters == n, f"{label}: counters sum to {counters}, want {n} INCRs")
    for k in (b"key:", b"mylist", b"myhash"):
        check(any(x.startswith(k) for x in ks), f"{label}: no {k!r} key")


def compare_run(kv, redis, label, args, n):
    """One redis-benchmark run of the default list on each server (Redis
    first): the same tests ran, and the keyspaces left are equal and hold
    what n requests of each test imply. Returns both servers' rows."""
    redis_rows = bench(redis, args)
    redis_ks = dump(redis.port)
    kv_rows = bench(kv, args)
    kv_ks = dump(kv.port)
    same_tests(label, kv_rows, redis_rows)
    exact_checks(f"{label} on Redis", redis_ks, n)
    check(kv_ks == redis_ks, f"{label}: keyspaces differ:\n demi-kv {describe(kv_ks)}\n Redis   {describe(redis_ks)}")
    exact_checks(label, kv_ks, n)
    return kv_rows, redis_rows


def run():
    need_tool("redis-benchmark")
    need_tool("redis-server")
    kv = start_kv()
    redis = start_redis()
    n = 256 if SANITIZED else 1024  # a multiple of 16: -P 16 sends exactly n
    n_plain = 200 if SANITIZED else 500

    # 1. pipelined, default list, compared with Redis.
    kv_rows, redis_rows = compare_run(kv, redis, "-P 16", ["-P", "16", "-n", str(n)], n)
    print(f"redis-benchmark -P 16 -n {n} (requests/s; informal, shared machine):")
    print(f"  {'test':<40} {'demi-kv':>10} {'redis':>10}")
    for (name, a), (_, b) in zip(kv_rows, redis_rows):
        print(f"  {name:<40} {a:>10.0f} {b:>10.0f}")

    # 2. 50 clients, one request at a time.
    kv_rows, _ = compare_run(kv, redis, "-c 50", ["-c", "50", "-n", str(n_plain)], n_plain)
    print(f"redis-benchmark -c 50 -n {n_plain}: {len(kv_rows)} tests, keyspace as Redis's")

    # 3. random keys and 64-byte values: invariants, checked on Redis too.
    args = ["-P", "16", "-n", str(n), "-r", "1000", "-d", "64"]
    for s in (redis, kv):
        rows = bench(s, args)
        same_tests(f"-r 1000 on {s.name}", rows, redis_rows)
        random_checks(f"-r 1000 on {s.name}", dump(s.port), n, 1000, 64)
    print(f"redis-benchmark -P 16 -n {n} -r 1000 -d 64: counters, values, list and hash as implied")

    with Conn(kv.port) as c:
        info = c.cmd("INFO", "clients").decode()
        check("connected_clients:1\r\n" in info, f"clients left connected after the runs:\n{info}")
    kv.stop()
    redis.stop()


if __name__ == "__main__":
    main(run)
