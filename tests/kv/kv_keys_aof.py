#!/usr/bin/env python3
"""The keyspace commands through demi-kv --aof: SETEX, PSETEX, SETNX,
GETEX (PERSIST, EX, EXAT in the past), RENAME and RENAMENX (the time to
live moves), GETDEL, UNLINK, COPY, EXPIREAT and PEXPIREAT are logged and, after
a restart, replayed to the same keys, values and expiry times (EXPIRETIME
compared exactly: relative times replay at the logged clock). Run by
test_kv_keys_aof.sh."""

import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kvtest import Conn, Server, _servers, build_dir, check, fail, main  # noqa: E402

CMDS = [
    (("SETEX", "a", 1000, "va"), "OK"), (("PSETEX", "b", 2000000, "vb"), "OK"),
    (("SETNX", "c", "vc"), 1), (("SETNX", "c", "x"), 0),
    (("SET", "d", "vd", "EX", 500), "OK"), (("GETEX", "d", "PERSIST"), b"vd"),
    (("SET", "e", "ve"), "OK"), (("GETEX", "e", "EX", 700), b"ve"),
    (("SET", "f", "vf", "EX", 300), "OK"), (("RENAME", "f", "g"), "OK"), (("RENAMENX", "c", "h"), 1),
    (("SET", "i", "1"), "OK"), (("GETDEL", "i"), b"1"),
    (("SET", "j", "1"), "OK"), (("UNLINK", "j"), 1),
    (("SET", "k", "1"), "OK"), (("EXPIREAT", "k", 9999999999), 1),
    (("SET", "l", "1"), "OK"), (("PEXPIREAT", "l", 1), 1),
    (("SET", "m", "1"), "OK"), (("GETEX", "m", "EXAT", 1), b"1"),
    (("SET", "n", "1", "EX", 100), "OK"), (("RENAME", "n", "g"), "OK"),
    (("SET", "o", "ov", "EX", 100), "OK"), (("COPY", "o", "p"), 1), (("COPY", "a", "p", "REPLACE"), 1),
]
WANT = {b"a", b"b", b"d", b"e", b"g", b"h", b"k", b"o", b"p"}


def start(aof):
    env = dict(os.environ, LIBOS=os.environ.get("LIBOS", "catnap"), HUGEPAGES="off")
    p = subprocess.Popen([os.path.join(build_dir(), "demi-kv"), "--addr", "127.0.0.1:0", "--aof", aof],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    line = p.stdout.readline().decode().strip()
    if not line.startswith("ready 127.0.0.1:"):
        p.kill()
        p.wait()
        fail(f"demi-kv --aof did not start: {line!r} {p.stderr.read().decode(errors='replace')}")
    s = Server(p, int(line.rsplit(":", 1)[1]), "demi-kv")
    _servers.append(s)
    return s


def dump(c):
    return {k: (c.cmd("GET", k), c.cmd("PEXPIRETIME", k)) for k in c.cmd("KEYS", "*")}


def run():
    with tempfile.TemporaryDirectory() as tmp:
        aof = os.path.join(tmp, "kv.aof")
        kv = start(aof)
        with Conn(kv.port) as c:
            for args, want in CMDS:
                got = c.cmd(*args)
                check(got == want, f"{args}: {got!r}, expected {want!r}")
            before = dump(c)
        kv.stop()
        check(set(before) == WANT, f"keys before the restart: {sorted(before)}")
        check(before[b"g"][0] == b"1" and before[b"g"][1] > 0, "RENAME onto g did not move n's value and time")
        kv = start(aof)
        with Conn(kv.port) as c:
            after = dump(c)
        kv.stop()
        check(after == before, f"after the replay:\n  {after}\nbefore:\n  {before}")


if __name__ == "__main__":
    main(run)
