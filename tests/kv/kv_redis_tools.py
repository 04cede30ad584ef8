"""redis-cli's keyspace tools against demi-kv and against a real
redis-server, both started here on 127.0.0.1 (see kvtest.py) and given the
same keyspace: a few thousand keys of every type, one clearly biggest key
per type ("<type>:big").

  --scan [--pattern P]: the keys listed are KEYS's (P or *), and Redis's;
      MONITOR on demi-kv shows the walk took many SCAN calls.
  --bigkeys: exit 0, the biggest key of each type is <type>:big, and the
      summary (counts, sizes, averages) is byte for byte Redis's.
  --memkeys (and --memkeys-samples 0): exit 0, the biggest key of each
      type is <type>:big, the key counts per type are Redis's (the byte
      figures are estimates that differ).
  --hotkeys: fails as on Redis without an LFU maxmemory-policy (same output,
      same exit status).
redis-cli --stat is covered by test_kv_server.sh (kv_server.py).
"""

import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kvtest import Conn, check, fail, main, need_tool, start_kv, start_redis  # noqa: E402

TYPES = ("string", "list", "set", "hash", "zset")
BIG = {"string": 5000, "list": 400, "set": 300, "hash": 200, "zset": 150}
SMALL = {"string": 2000, "list": 300, "set": 300, "hash": 300, "zset": 300}


def commands():
    """The keyspace, as commands; every one replies a non-error."""
    for i in range(SMALL["string"]):
        yield ("SET", f"str:{i}", "v" * ((i * 7) % 100 + 1))
    yield ("SET", "str: spaced key", "x")
    yield ("SET", "str:big", "b" * BIG["string"])
    yield ("SET", "str:ttl", "t", "EX", "100000")
    for name, cmd in (("list", "RPUSH"), ("set", "SADD"), ("hash", "HSET"), ("zset", "ZADD")):
        def elems(n):
            out = []
            for j in range(n):
                if name == "hash":
                    out += [f"field-{j}", f"value-{j}"]
                elif name == "zset":
                    out += [str(j), f"member-{j}"]
                else:
                    out.append(f"item-{j}")
            return out
        for i in range(SMALL[name]):
            yield (cmd, f"{name}:{i}", *elems(i % 10 + 1))
        yield (cmd, f"{name}:big", *elems(BIG[name]))


def load(port):
    n = 0
    with Conn(port, timeout=60) as c:
        for cmd in commands():
            c.send(*cmd)
            n += 1
        for _ in range(n):
            r = c.read_reply()
            check(not isinstance(r, Exception), f"loading the keyspace: {r}")
        return c.cmd("DBSIZE")


def cli(port, *args, expect_rc=0):
    cmd = ["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args]
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=120)
    except subprocess.TimeoutExpired:
        fail(f"{' '.join(cmd)} hung")
    out = p.stdout.decode(errors="replace")
    err = p.stderr.decode(errors="replace")
    check(p.returncode == expect_rc, f"{' '.join(cmd)} exited {p.returncode} (want {expect_rc}):\n{out}\n{err}")
    return out, err


def keys(port, pattern):
    with Conn(port) as c:
        return sorted(k.decode() for k in c.cmd("KEYS", pattern))


def scan_calls(kv, *args):
    """Runs redis-cli --scan ARGS on demi-kv with a MONITOR open; returns
    its output lines and the SCAN commands the walk sent."""
    with Conn(kv.port, timeout=60) as mon:
        check(mon.cmd("MONITOR") == "OK", "MONITOR")
        out, _ = cli(kv.port, "--scan", *args)
        with Conn(kv.port) as c:
            c.cmd("ECHO", "scan-done")
        calls = []
        while True:
            line = mon.read_reply()
            if re.search(r'"echo" "scan-done"', line, re.I):
                break
            m = re.search(r'\] "scan" "([0-9]+)"', line, re.I)
            if m:
                calls.append(m.group(1))
    return out.splitlines(), calls


def check_scan(kv, redis):
    for pattern in (None, "list:*", "str:1?", "*:big", "h[a]sh:2*", "nomatch*"):
        args = ("--pattern", pattern) if pattern else ()
        lines, calls = scan_calls(kv, *args)
        want = keys(kv.port, pattern or "*")
        label = f"redis-cli --scan {' '.join(args)}"
        check(len(lines) == len(set(lines)), f"{label}: a key listed twice")
        check(sorted(lines) == want, f"{label}: {len(lines)} keys, KEYS has {len(want)}; "
              f"missing {sorted(set(want) - set(lines))[:5]}, extra {sorted(set(lines) - set(want))[:5]}")
        rlines, _ = cli(redis.port, "--scan", *args)
        check(sorted(rlines.splitlines()) == want, f"{label}: Redis lists other keys")
        check(len(calls) > 10 and calls[0] == "0" and "0" not in calls[1:],
              f"{label}: SCAN cursors {calls[:20]}... (want a walk from 0 in many calls)")
        print(f"{label}: {len(lines)} keys in {len(calls)} SCAN calls, as KEYS and Redis")


def biggest(out):
    """{type: (key, figure)} from the summary's 'Biggest' lines."""
    got = {}
    for m in re.finditer(r"^Biggest +(\w+) found '\"(.*)\"' has ([0-9]+) ", out, re.M):
        got[m.group(1)] = (m.group(2), int(m.group(3)))
    return got


def counts(out):
    """{type: number of keys} from the summary's per-type lines."""
    return {m.group(2): int(m.group(1)) for m in re.finditer(r"^([0-9]+) (\w+)s with ", out, re.M)}


def summary(out):
    i = out.find("-------- summary -------")
    check(i >= 0, f"no summary in:\n{out}")
    return out[i:]


def check_big(kv, redis, dbsize):
    want_counts = {"list": 301, "hash": 301, "string": SMALL["string"] + 3, "stream": 0, "set": 301, "zset": 301}
    check(sum(want_counts.values()) == dbsize, f"DBSIZE {dbsize}, want {sum(want_counts.values())}")

    out, _ = cli(kv.port, "--bigkeys")
    rout, _ = cli(redis.port, "--bigkeys")
    big = biggest(out)
    for t in TYPES:
        want = ("str:big" if t == "string" else f"{t}:big", BIG[t])
        check(big.get(t) == want, f"--bigkeys: biggest {t} {big.get(t)}, want {want}:\n{out}")
    check(counts(out) == want_counts, f"--bigkeys: per-type counts {counts(out)}, want {want_counts}")
    check(f"Sampled {dbsize} keys" in out, f"--bigkeys did not sample {dbsize} keys:\n{out}")
    check(summary(out) == summary(rout), f"--bigkeys summary differs from Redis's:\n{summary(out)}\nRedis:\n{summary(rout)}")
    print(f"redis-cli --bigkeys: exit 0, summary as Redis's ({dbsize} keys)")

    for args in (("--memkeys",), ("--memkeys", "--memkeys-samples", "0")):
        out, _ = cli(kv.port, *args)
        rout, _ = cli(redis.port, *args)
        big, rbig = biggest(out), biggest(rout)
        for t in TYPES:
            want = "str:big" if t == "string" else f"{t}:big"
            check(t in big and big[t][0] == want, f"{' '.join(args)}: biggest {t} {big.get(t)}, want {want}:\n{out}")
            check(rbig[t][0] == want, f"{' '.join(args)} on Redis: biggest {t} {rbig[t]}")
        check(counts(out) == want_counts == counts(rout), f"{' '.join(args)}: counts {counts(out)}, Redis {counts(rout)}")
        check(f"Sampled {dbsize} keys" in out, f"{' '.join(args)} did not sample {dbsize} keys:\n{out}")
        print(f"redis-cli {' '.join(args)}: exit 0, biggest per type "
              + ", ".join(f"{t} {big[t][1]} B (Redis {rbig[t][1]} B)" for t in TYPES))


def check_hotkeys(kv, redis):
    # Without an LFU maxmemory-policy OBJECT FREQ is an error, which
    # redis-cli prints before it exits 1.
    out, err = cli(kv.port, "--hotkeys", expect_rc=1)
    rout, rerr = cli(redis.port, "--hotkeys", expect_rc=1)
    check((out, err) == (rout, rerr), f"--hotkeys: demi-kv printed {out!r} {err!r}, Redis {rout!r} {rerr!r}")
    check("LFU maxmemory policy is not selected" in out + err, f"--hotkeys: {out!r} {err!r}")
    print("redis-cli --hotkeys: exit 1 with Redis's error (no LFU policy)")


def run():
    need_tool("redis-cli")
    need_tool("redis-server")
    kv = start_kv()
    redis = start_redis()
    dbsize = load(kv.port)
    check(load(redis.port) == dbsize, "the keyspaces differ in size")
    check(dbsize > 3000, f"DBSIZE {dbsize}")
    check_scan(kv, redis)
    check_big(kv, redis, dbsize)
    check_hotkeys(kv, redis)
    check(kv.alive(), "demi-kv died")
    kv.stop()
    redis.stop()


if __name__ == "__main__":
    main(run)
