"""demi-kv --aof rewrite (BGREWRITEAOF and the automatic one).

1. Shrink: many overwrites of a few keys (and, for every collection type
   the server knows, pushes and pops on a few collections), BGREWRITEAOF:
   the log's size (INFO aof_current_size) falls to a fraction, and a
   restart gives the same keyspace: every key's type and value, and TTLs
   whose absolute time lies within bounds computed from times this test
   measured around each PTTL. A string over 16 MiB (written back as SET
   and APPENDs) survives a second rewrite.
2. Writes during a rewrite of a big keyspace: BGREWRITEAOF sent in the
   same packet as writes (so that they run while the rewrite has just
   started, whatever the machine's speed: the walk runs between batches),
   a second BGREWRITEAOF there gets Redis's "already in progress" error
   and INFO says aof_rewrite_in_progress:1; then four clients keep writing
   (SET, INCR, APPEND, DEL on keys the rewrite has or has not reached)
   until the rewrite is done. After a restart every acknowledged write is
   there and nothing else.
3. FLUSHALL while a rewrite runs: only what was written after it remains.
4. The automatic rewrite: CONFIG SET auto-aof-rewrite-min-size 256kb, then
   overwrites until the log passes it and twice its base size: a rewrite
   starts by itself (INFO aof_rewrites), the log shrinks, a restart gives
   the same keyspace. CONFIG GET reads both settings back.

No wall-clock window is guessed: waits poll INFO with a generous bound
that only a hung server reaches. demi-kv is started by this test and
stopped by its PID only.
"""

import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kvtest import Conn, RespError, build_dir, check, fail, main, read_value  # noqa: E402

LIVENESS = 120  # seconds: only a hung server takes this long


def now_ms():
    return time.time_ns() // 1000000


_kvs = []


class Kv:
    def __init__(self, aof):
        exe = os.path.join(build_dir(), "demi-kv")
        env = dict(os.environ, LIBOS="catnap", HUGEPAGES="off")
        self.errf = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([exe, "--addr", "127.0.0.1:0", "--aof", aof], stdout=subprocess.PIPE,
                                     stderr=self.errf, env=env)
        _kvs.append(self)
        while True:
            line = self.proc.stdout.readline().decode()
            if not line:
                fail(f"demi-kv exited before ready: {self.stderr()}")
            if line.startswith("ready 127.0.0.1:"):
                self.port = int(line.strip().rsplit(":", 1)[1])
                break

    def stderr(self):
        self.errf.seek(0)
        return self.errf.read().decode(errors="replace")

    def replayed(self):
        for line in self.stderr().splitlines():
            if line.startswith("aof: replayed "):
                return int(line.split()[2])
        return None

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=60)
        check(rc == 0, f"demi-kv exited with {rc}: {self.stderr()}")

    def kill9(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


def info(c):
    txt = c.cmd("INFO", "persistence").decode()
    out = {}
    for line in txt.split("\r\n"):
        if ":" in line:
            k, v = line.split(":", 1)
            out[k] = v
    return out


def wait_rewrites(c, n):
    """Waits until n rewrites have started and none is running; returns INFO."""
    deadline = time.time() + LIVENESS
    while True:
        i = info(c)
        if int(i["aof_rewrites"]) >= n and i["aof_rewrite_in_progress"] == "0":
            check(i["aof_last_bgrewrite_status"] == "ok", f"the rewrite failed: {i}")
            return i
        check(time.time() < deadline, f"no rewrite finished within {LIVENESS} s: {i}")
        time.sleep(0.02)


def knows(c, cmd):
    r = c.cmd("COMMAND", "INFO", cmd)
    return isinstance(r, list) and r and r[0] is not None


def probe_type(c, k):
    """TYPE for a build without it: the first read that is not WRONGTYPE."""
    if c.cmd("EXISTS", k) == 0:
        return "none"
    for t, cmd in (("string", ("GET", k)), ("list", ("LLEN", k)), ("set", ("SCARD", k)), ("hash", ("HLEN", k)),
                   ("zset", ("ZCARD", k))):
        r = c.cmd(*cmd)
        if not (isinstance(r, RespError) and str(r).startswith(("WRONGTYPE", "ERR unknown command"))):
            return t
    fail(f"no read works on {k!r}")


def dump(c, has_type, keys=None):
    """Every key (or those listed): (type, value, expiry bounds (lo, hi) in
    unix ms or None)."""
    if keys is None:
        keys = c.cmd("KEYS", "*")
        check(isinstance(keys, list), f"KEYS: {keys!r}")
    out = {}
    for k in keys:
        t = c.cmd("TYPE", k) if has_type else probe_type(c, k)
        v = read_value(c, k, t)
        t0 = now_ms()
        pttl = c.cmd("PTTL", k)
        t1 = now_ms()
        exp = None if pttl == -1 else (t0 - 1 + pttl, t1 + 1 + pttl)
        out[k] = (t, v, exp)
    return out


def same_keyspace(before, after, what):
    check(set(before) == set(after), f"{what}: keys differ: lost {sorted(set(before) - set(after))[:10]}, "
                                     f"gained {sorted(set(after) - set(before))[:10]}")
    for k, (t, v, e) in before.items():
        t2, v2, e2 = after[k]
        check((t, v) == (t2, v2), f"{what}: key {k!r}: {t} {str(v)[:200]} became {t2} {str(v2)[:200]}")
        check((e is None) == (e2 is None), f"{what}: key {k!r}: expiry {e} became {e2}")
        if e:
            # The absolute expiry time lies in both intervals.
            check(max(e[0], e2[0]) <= min(e[1], e2[1]), f"{what}: key {k!r}: expiry in {e}, then in {e2}")


def pipeline(c, cmds):
    c.raw(b"".join(Conn.encode(*a) for a in cmds))
    out = [c.read_reply() for _ in cmds]
    for a, r in zip(cmds, out):
        check(not isinstance(r, RespError), f"{a[:3]}: {r}")
    return out


def part_shrink(tmp):
    aof = os.path.join(tmp, "shrink.aof")
    kv = Kv(aof)
    c = Conn(kv.port, timeout=60)
    has_type = knows(c, "type")
    cmds = []
    for n in range(300):
        for k in range(30):
            if k % 5 == 0:
                cmds.append(("SET", f"s:{k}", f"value {n} of {k}", "PX", 3600 * 1000 + n))
            else:
                cmds.append(("SET", f"s:{k}", f"value {n} of {k}"))
    cmds.append(("SET", "s:pxat", "abs", "PXAT", now_ms() + 7200 * 1000))
    cmds.append(("SET", "s:empty", ""))
    for i in range(1000):
        cmds.append(("INCR", "counter"))
    # Collections, for the types this build has.
    if knows(c, "rpush"):
        for n in range(400):
            cmds.append(("RPUSH", "l:a", f"e{n}", f"f{n}"))
            cmds.append(("LPOP", "l:a"))
        cmds.append(("RPUSH", "l:ttl", "x", "y"))
        cmds.append(("PEXPIRE", "l:ttl", 3600 * 1000))
    if knows(c, "sadd"):
        for n in range(400):
            cmds.append(("SADD", "z:set", f"m{n % 50}", f"n{n}"))
            cmds.append(("SREM", "z:set", f"n{n - 1}"))
    if knows(c, "hset"):
        for n in range(400):
            cmds.append(("HSET", "h:a", f"f{n % 40}", f"v{n}"))
        cmds.append(("HDEL", "h:a", "f3"))
    if knows(c, "zadd"):
        for n in range(400):
            cmds.append(("ZADD", "zs:a", str(n * 0.5), f"m{n % 30}"))
        cmds.append(("ZADD", "zs:a", "inf", "top", "-inf", "bottom"))
        cmds.append(("ZADD", "zs:ttl", 1, "a"))
        cmds.append(("PEXPIRE", "zs:ttl", 3600 * 1000))
    for i in range(0, len(cmds), 1000):
        pipeline(c, cmds[i:i + 1000])
    before_size = int(info(c)["aof_current_size"])
    r = c.cmd("BGREWRITEAOF")
    check(r == "Background append only file rewriting started", f"BGREWRITEAOF replied {r!r}")
    i = wait_rewrites(c, 1)
    after_size = int(i["aof_current_size"])
    print(f"shrink: the log went from {before_size} to {after_size} bytes ({len(cmds)} commands)")
    check(after_size * 5 < before_size, f"the rewritten log is {after_size} bytes, {before_size} before")
    check(i["aof_base_size"] == i["aof_current_size"], f"base size after a rewrite: {i}")
    check(not os.path.exists(aof + ".rewrite"), "the new log's temporary name is still there")
    # Writes after the switch go to the new log.
    pipeline(c, [("SET", "after", "switch"), ("INCR", "counter")])
    before = dump(c, has_type)
    c.close()
    kv.stop()
    kv = Kv(aof)
    replayed = kv.replayed()
    check(replayed is not None and replayed < 200, f"{replayed} commands replayed from the rewritten log")
    c = Conn(kv.port, timeout=60)
    same_keyspace(before, dump(c, has_type), "after a rewrite and a restart")
    check(c.cmd("GET", "counter") == b"1001", "the counter")

    # A string over one 16 MiB segment: SET then APPENDs in the new log.
    big = bytes(random.Random(1).getrandbits(8) for _ in range(1 << 16)) * 280  # 17.5 MiB
    step = 4 << 20
    pipeline(c, [("SET", "big", big[:step])] + [("APPEND", "big", big[o:o + step])
                                                for o in range(step, len(big), step)])
    pipeline(c, [("PEXPIRE", "big", 3600 * 1000)])
    check(c.cmd("BGREWRITEAOF") == "Background append only file rewriting started", "second BGREWRITEAOF")
    wait_rewrites(c, 1)
    before = dump(c, has_type)
    c.close()
    kv.stop()
    kv = Kv(aof)
    c = Conn(kv.port, timeout=60)
    check(c.cmd("STRLEN", "big") == len(big), "the big value's length after a restart")
    same_keyspace(before, dump(c, has_type), "a 17.5 MiB value after a rewrite and a restart")
    c.close()
    kv.stop()


class Writer(threading.Thread):
    """Writes to its own keys and to the preloaded keys p:<j> with j = idx
    mod WRITERS, acknowledged one pipeline at a time, keeping a model."""

    def __init__(self, idx, port, nkeys, model, stop):
        super().__init__()
        self.idx, self.port, self.nkeys, self.model, self.stop = idx, port, nkeys, model, stop
        self.error = None
        self.ops = 0

    def run(self):
        rng = random.Random(self.idx)
        try:
            with Conn(self.port, timeout=60) as c:
                n = 0
                while not self.stop.is_set() or n < 50:
                    batch = []
                    effects = []
                    for _ in range(16):
                        j = rng.randrange(self.idx, self.nkeys, WRITERS)
                        key = f"p:{j}"
                        op = rng.randrange(4)
                        if op == 0:
                            batch.append(("SET", key, f"w{self.idx}.{n}"))
                            effects.append((key, f"w{self.idx}.{n}".encode()))
                        elif op == 1:
                            batch.append(("APPEND", key, "+"))
                            cur = self.model.get(key)
                            effects.append((key, (cur or b"") + b"+"))
                        elif op == 2:
                            batch.append(("DEL", key))
                            effects.append((key, None))
                        else:
                            batch.append(("SET", f"c{self.idx}:{n}", f"n{n}"))
                            effects.append((f"c{self.idx}:{n}", f"n{n}".encode()))
                        # Apply at once: later ops of the batch build on it.
                        self.model[effects[-1][0]] = effects[-1][1]
                        n += 1
                    batch.append(("INCR", f"ctr{self.idx}"))
                    pipeline(c, batch)
                    self.model[f"ctr{self.idx}"] = str(int(self.model.get(f"ctr{self.idx}", b"0")) + 1).encode()
                    self.ops += len(batch)
        except BaseException as e:
            self.error = repr(e)


WRITERS = 4


def part_concurrent(tmp):
    aof = os.path.join(tmp, "concurrent.aof")
    kv = Kv(aof)
    c = Conn(kv.port, timeout=60)
    nkeys = 100000
    model = {}
    # p:<j>: the writers' keys; q:<j>: the packet's below.
    for base in range(0, nkeys, 2000):
        cmds = []
        for j in range(base, base + 2000):
            for pre in ("p", "q"):
                if j % 7 == 0:
                    cmds.append(("SET", f"{pre}:{j}", f"v{j}", "PX", 3600 * 1000))
                else:
                    cmds.append(("SET", f"{pre}:{j}", f"v{j}"))
                model[f"{pre}:{j}"] = f"v{j}".encode()
        pipeline(c, cmds)
    # Collections, for the types this build has: their snapshot is made of
    # pushes onto nothing, so a command on one logged before its snapshot
    # would show (a rewrite must snapshot every key a command names first).
    typed_pre, typed_ops = [], []
    for j in range(0, 300):
        if knows(c, "rpush"):
            typed_pre.append(("RPUSH", f"ql:{j}", "a", "b"))
            typed_ops.append(("RPUSH", f"ql:{j}", "c"))
        if knows(c, "sadd"):
            typed_pre.append(("SADD", f"qs:{j}", "a", "b"))
            typed_ops.append(("SADD", f"qs:{j}", "c"))
        if knows(c, "hset"):
            typed_pre.append(("HSET", f"qh:{j}", "a", "1"))
            typed_ops.append(("HINCRBY", f"qh:{j}", "a", "5"))
        if knows(c, "zadd"):
            typed_pre.append(("ZADD", f"qz:{j}", "1", "a"))
            typed_ops.append(("ZINCRBY", f"qz:{j}", "2", "a"))
    if typed_pre:
        pipeline(c, typed_pre)
    typed_keys = sorted({a[1] for a in typed_pre})
    stop = threading.Event()
    models = [dict((k, v) for k, v in model.items() if k.startswith("p:") and int(k[2:]) % WRITERS == i)
              for i in range(WRITERS)]
    writers = [Writer(i, kv.port, nkeys, models[i], stop) for i in range(WRITERS)]
    for w in writers:
        w.start()
    deadline = time.time() + LIVENESS
    while sum(w.ops for w in writers) < 400:
        check(time.time() < deadline and all(w.is_alive() for w in writers), "the writers do not get going")
        time.sleep(0.01)
    # One packet: the rewrite starts, and these run before its walk does.
    first = [("BGREWRITEAOF",), ("BGREWRITEAOF",), ("INFO", "persistence")]
    writes = [("SET", f"q:{j}", f"early{j}") for j in range(nkeys - 1, nkeys - 400, -3)]
    writes += [("DEL", f"q:{j}") for j in range(1, 400, 5)]
    writes += [("SET", "fresh", "during"), ("APPEND", "q:2", "!"), ("INCR", "early-ctr")] + typed_ops
    c.raw(b"".join(Conn.encode(*a) for a in first + writes))
    r = [c.read_reply() for _ in first + writes]
    check(r[0] == "Background append only file rewriting started", f"BGREWRITEAOF: {r[0]!r}")
    check(isinstance(r[1], RespError) and str(r[1]) == "ERR Background append only file rewriting already in "
          "progress", f"a second BGREWRITEAOF while one runs: {r[1]!r}")
    check(b"aof_rewrite_in_progress:1\r\n" in r[2], "INFO during the rewrite: aof_rewrite_in_progress is not 1")
    for a, x in zip(writes, r[3:]):
        check(not isinstance(x, RespError), f"{a}: {x}")
    for j in range(nkeys - 1, nkeys - 400, -3):
        model[f"q:{j}"] = f"early{j}".encode()
    for j in range(1, 400, 5):
        model[f"q:{j}"] = None
    model["fresh"] = b"during"
    model["q:2"] = model["q:2"] + b"!"
    model["early-ctr"] = b"1"
    ops_before = sum(w.ops for w in writers)
    wait_rewrites(c, 1)
    ops_during = sum(w.ops for w in writers) - ops_before
    stop.set()
    for w in writers:
        w.join(timeout=LIVENESS)
        check(w.error is None, f"writer {w.idx}: {w.error}")
    for m in models:
        model.update(m)
    has_type = knows(c, "type")
    typed = dump(c, has_type, typed_keys)
    print(f"concurrent: {sum(w.ops for w in writers)} writes by {WRITERS} clients, about {ops_during} while "
          f"the rewrite of {2 * nkeys} keys ran")
    c.close()
    kv.stop()
    kv = Kv(aof)
    c = Conn(kv.port, timeout=60)
    same_keyspace(typed, dump(c, has_type, typed_keys), "collections written during a rewrite")
    want = {k: v for k, v in model.items() if v is not None}
    check(c.cmd("DBSIZE") - len(typed_keys) == len(want), f"DBSIZE {c.cmd('DBSIZE')} after the restart, {len(want)} expected")
    keys = list(want)
    for i in range(0, len(keys), 2000):
        part = keys[i:i + 2000]
        got = pipeline(c, [("GET", k) for k in part])
        for k, g in zip(part, got):
            check(g == want[k], f"{k}: {g!r} after the restart, {want[k]!r} acknowledged")
    t0 = now_ms()
    ttl = c.cmd("PTTL", "q:7")  # untouched by the early writes (j % 7 == 0, kept its PX)
    check(0 < ttl <= 3600 * 1000, f"q:7's TTL after the restart: {ttl}")

    # 3. FLUSHALL during a rewrite of this keyspace.
    first = [("BGREWRITEAOF",), ("FLUSHALL",), ("SET", "a", "1"), ("SET", "b", "2", "PX", 3600 * 1000)]
    c.raw(b"".join(Conn.encode(*x) for x in first))
    r = [c.read_reply() for _ in first]
    check(r == ["Background append only file rewriting started", "OK", "OK", "OK"], f"FLUSHALL sequence: {r!r}")
    wait_rewrites(c, 1)
    c.close()
    kv.stop()
    kv = Kv(aof)
    c = Conn(kv.port, timeout=60)
    check(c.cmd("DBSIZE") == 2 and c.cmd("GET", "a") == b"1" and c.cmd("GET", "b") == b"2",
          "after FLUSHALL during a rewrite and a restart, a and b only")
    check(0 < c.cmd("PTTL", "b") <= 3600 * 1000 - (now_ms() - t0) + 1000, "b's TTL")
    c.close()
    kv.stop()


def part_auto(tmp):
    aof = os.path.join(tmp, "auto.aof")
    kv = Kv(aof)
    c = Conn(kv.port, timeout=60)
    r = c.cmd("CONFIG", "GET", "auto-aof-rewrite-*")
    check(dict(zip(r[0::2], r[1::2])) == {b"auto-aof-rewrite-percentage": b"100",
                                            b"auto-aof-rewrite-min-size": b"67108864"}, f"CONFIG GET: {r!r}")
    check(c.cmd("CONFIG", "SET", "auto-aof-rewrite-min-size", "256kb") == "OK", "CONFIG SET min-size")
    r = c.cmd("CONFIG", "SET", "auto-aof-rewrite-percentage", "-1")
    check(isinstance(r, RespError) and "between 0 and 2147483647" in str(r), f"percentage -1: {r!r}")
    check(c.cmd("CONFIG", "GET", "auto-aof-rewrite-min-size") == [b"auto-aof-rewrite-min-size", b"262144"],
          "CONFIG GET min-size")
    val = "x" * 1000
    n = 0
    deadline = time.time() + LIVENESS
    while int(info(c)["aof_rewrites"]) == 0:
        check(n < 200000, "no automatic rewrite after 200 MB of writes")
        check(time.time() < deadline, "no automatic rewrite")
        pipeline(c, [("SET", f"k{(n + i) % 10}", f"{n + i}{val}") for i in range(100)])
        n += 100
    i = wait_rewrites(c, 1)
    size = int(i["aof_current_size"])
    print(f"auto: a rewrite started by itself after {n} SETs; the log is {size} bytes")
    check(size < 256 * 1024, f"the log is {size} bytes after the automatic rewrite")
    want = {f"k{k}": c.cmd("GET", f"k{k}") for k in range(10)}
    c.close()
    kv.stop()
    kv = Kv(aof)
    c = Conn(kv.port, timeout=60)
    for k, v in want.items():
        check(c.cmd("GET", k) == v, f"{k} after the automatic rewrite and a restart")
    check(c.cmd("DBSIZE") == 10, "DBSIZE after the automatic rewrite")
    c.close()
    kv.stop()


def run():
    tmp = tempfile.mkdtemp(prefix="demi-kv-aof-rewrite.")
    try:
        part_shrink(tmp)
        part_concurrent(tmp)
        part_auto(tmp)
    finally:
        for kv in _kvs:
            kv.kill9()
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)


main(run)
