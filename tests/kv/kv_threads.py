#!/usr/bin/env python3
"""What demi-kv --threads N must get right beyond what redis-benchmark
shows (tests/kv/test_kv_threads.sh): keys owned by other threads, reached
through their memory queues. Plain sockets, RESP by hand (kv_known.Conn).

  kv_threads.py HOST PORT --threads N

A key belongs to thread (CRC16 of the key or of its {hash tag}) mod 16384
mod N, as demi-kv computes it; every check below uses keys of at least two
threads, so that whichever thread serves the connection, some commands go
to another one and back. Prints one line per check; exit 0 when all pass.
"""

import argparse
import binascii
import hashlib
import socket
import struct
import sys

from kv_known import Conn, cmd

fails = 0


def bad(msg):
    global fails
    fails += 1
    print("FAIL: " + msg)


def owner(key, n):
    k = key.encode() if isinstance(key, str) else key
    o = k.find(b"{")
    if o >= 0:
        c = k.find(b"}", o + 1)
        if c > o + 1:
            k = k[o + 1 : c]
    return (binascii.crc_hqx(k, 0) & 16383) % n


def keys_of(prefix, n, per):
    """@per keys "prefix:i" of every thread, by thread."""
    out = {t: [] for t in range(n)}
    i = 0
    while min(len(v) for v in out.values()) < per:
        k = f"{prefix}:{i}"
        if len(out[owner(k, n)]) < per:
            out[owner(k, n)].append(k)
        i += 1
    return out


def call(c, *args):
    c.s.sendall(cmd(*args))
    return c.reply()


def check_order(a):
    """One connection, 6000 pipelined commands whose keys alternate
    between threads: every reply in order, each the right one."""
    c = Conn(a.host, a.port)
    ks = keys_of("ord", a.threads, 1000)
    order = [k for i in range(1000) for k in (ks[t][i] for t in range(a.threads))][:2000]
    counters = [f"ctr:{t}" for t in range(16)]
    sent, want = [], []
    for i, k in enumerate(order):
        v = hashlib.sha256(k.encode()).hexdigest()[: 1 + i % 64]
        ctr = counters[i % len(counters)]
        sent += [cmd("SET", k, v), cmd("GET", k), cmd("INCR", ctr)]
        want += [(b"+", b"OK"), v.encode(), (b":", b"%d" % (i // len(counters) + 1))]
    call(c, "DEL", "x")  # warm up
    for ctr in counters:
        call(c, "DEL", ctr)
    got = []
    for j in range(0, len(sent), 600):
        c.s.sendall(b"".join(sent[j : j + 600]))
        got += [c.reply() for _ in sent[j : j + 600]]
    wrong = [i for i, (g, w) in enumerate(zip(got, want)) if g != w]
    if wrong:
        i = wrong[0]
        bad(f"order: {len(wrong)} of {len(want)} replies wrong; first #{i}: {got[i]!r:.60} want {want[i]!r:.60}")
    else:
        print(f"order: {len(want)} pipelined replies in order over keys of {a.threads} threads")
    c.close()


def check_big(a):
    """Values around the 1 MiB message size of the queues, and larger,
    on keys of every thread, set and read back."""
    c = Conn(a.host, a.port)
    ks = keys_of("big", a.threads, 1)
    ok = 0
    for size in (1 << 20) - 40, (1 << 20) + 40, 3 * (1 << 20) + 7:
        for t in range(a.threads):
            k = ks[t][0]
            v = (hashlib.sha256(b"%d" % size).digest() * (size // 32 + 1))[:size]
            r = call(c, "SET", k, v)
            g = call(c, "GET", k)
            n = call(c, "STRLEN", k)
            if r != (b"+", b"OK") or g != v or n != (b":", b"%d" % size):
                bad(f"big: {k} (thread {t}) of {size} bytes: SET {r!r:.40}, GET {len(g) if g else g}, STRLEN {n!r}")
            else:
                ok += 1
    print(f"big: {ok} values of 1 MiB - 40 B to 3 MiB set and read back on every thread")
    c.close()


def check_cross(a):
    """Multi-key commands: one thread's keys run, several threads' get
    Redis Cluster's CROSSSLOT."""
    c = Conn(a.host, a.port)
    ks = keys_of("x", a.threads, 2)
    a0, b1 = ks[0][0], ks[1][0]
    cross = b"CROSSSLOT Keys in request don't hash to the same slot"
    for args in (("MSET", a0, "1", b1, "2"), ("DEL", a0, b1), ("RENAME", a0, b1), ("SUNIONSTORE", a0, b1),
                 ("MGET", a0, b1)):
        r = call(c, *args)
        if r != (b"-", cross):
            bad(f"cross: {' '.join(args)}: {r!r}, want CROSSSLOT")
    tagged = [f"{{tag}}:{i}" for i in range(10)]
    r = call(c, "MSET", *[x for k in tagged for x in (k, k.upper())])
    g = call(c, "MGET", *tagged)
    if r != (b"+", b"OK") or g != [k.upper().encode() for k in tagged]:
        bad(f"cross: MSET/MGET of one hash tag: {r!r} {g!r:.80}")
    # Both keys of one thread, that thread maybe another: runs.
    same = ks[1]
    r = call(c, "MSET", same[0], "a", same[1], "b")
    g = call(c, "MGET", same[0], same[1])
    d = call(c, "DEL", same[0], same[1])
    if r != (b"+", b"OK") or g != [b"a", b"b"] or d != (b":", b"2"):
        bad(f"cross: MSET/MGET/DEL of two keys of thread 1: {r!r} {g!r} {d!r}")
    print(f"cross: keys of several threads get CROSSSLOT; one thread's keys and hash tags run")
    c.close()


def check_fan(a):
    """Keyspace-wide commands run on every thread, replies combined."""
    c = Conn(a.host, a.port)
    if call(c, "FLUSHALL") != (b"+", b"OK"):
        bad("fan: FLUSHALL")
    names = [f"fan:{i}" for i in range(300)]
    c.s.sendall(b"".join(cmd("SET", k, "v") for k in names))
    for _ in names:
        c.reply()
    per = [sum(1 for k in names if owner(k, a.threads) == t) for t in range(a.threads)]
    n = call(c, "DBSIZE")
    ks = call(c, "KEYS", "fan:*")
    if n != (b":", b"300") or not isinstance(ks, list) or sorted(ks) != sorted(k.encode() for k in names):
        bad(f"fan: DBSIZE {n!r}, KEYS {len(ks) if isinstance(ks, list) else ks!r} (want 300, split {per})")
    r = call(c, "FLUSHDB")
    n = call(c, "DBSIZE")
    if r != (b"+", b"OK") or n != (b":", b"0"):
        bad(f"fan: FLUSHDB {r!r} then DBSIZE {n!r}")
    # CONFIG SET reaches every thread: read back over 8 new connections
    # (spread over the threads by the port's hash).
    if call(c, "CONFIG", "SET", "slowlog-max-len", "77") != (b"+", b"OK"):
        bad("fan: CONFIG SET slowlog-max-len 77")
    for _ in range(8):
        o = Conn(a.host, a.port)
        g = call(o, "CONFIG", "GET", "slowlog-max-len")
        o.close()
        if g != [b"slowlog-max-len", b"77"]:
            bad(f"fan: CONFIG GET slowlog-max-len on another connection: {g!r}")
            break
    for args in (("SCAN", "0"), ("RANDOMKEY",)):
        r = call(c, *args)
        if not (isinstance(r, tuple) and r[0] == b"-" and b"--threads" in r[1]):
            bad(f"fan: {args[0]}: {r!r}, want an error naming --threads")
    print(f"fan: DBSIZE, KEYS, FLUSHDB, CONFIG SET over {a.threads} threads ({per} keys each); SCAN and RANDOMKEY "
          "refused")
    c.close()


def check_silent(a):
    """CLIENT REPLY OFF and SKIP hold for replies from other threads."""
    c = Conn(a.host, a.port)
    ks = keys_of("q", a.threads, 1)
    mine = [ks[t][0] for t in range(a.threads)]
    c.s.sendall(cmd("CLIENT", "REPLY", "OFF") + b"".join(cmd("SET", k, "1") for k in mine) +
                b"".join(cmd("GET", k) for k in mine) + cmd("DBSIZE") + cmd("CLIENT", "REPLY", "ON"))
    r = c.reply()
    c.s.sendall(cmd("CLIENT", "REPLY", "SKIP") + cmd("GET", mine[1]) + cmd("PING"))
    p = c.reply()
    if r != (b"+", b"OK") or p != (b"+", b"PONG"):
        bad(f"silent: after REPLY OFF: {r!r}, after SKIP: {p!r} (want +OK, +PONG)")
    else:
        print("silent: CLIENT REPLY OFF and SKIP drop the replies of other threads too")
    c.close()


def check_abandon(a):
    """Clients that send a pipeline over keys of every thread and reset
    the connection at once: the server goes on."""
    ks = keys_of("ab", a.threads, 200)
    flat = [k for t in range(a.threads) for k in ks[t]]
    burst = b"".join(cmd("SET", k, "x" * 100) + cmd("GET", k) for k in flat)
    for _ in range(40):
        s = socket.create_connection((a.host, a.port), timeout=30)
        s.sendall(burst)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    c = Conn(a.host, a.port)
    p = call(c, "PING")
    g = [call(c, "GET", ks[t][0]) for t in range(a.threads)]
    if p != (b"+", b"PONG") or any(v not in (None, b"x" * 100) for v in g):
        bad(f"abandon: after 40 reset clients: PING {p!r}, GET {g!r:.80}")
    else:
        print("abandon: 40 clients reset with commands on their way to other threads; the server goes on")
    c.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--threads", type=int, required=True)
    a = p.parse_args()
    if owner("123456789", 16384) != binascii.crc_hqx(b"123456789", 0) & 16383 or owner("foo", 16384) != 12182:
        bad("the slot function is not Redis Cluster's")
    for f in check_order, check_big, check_cross, check_fan, check_silent, check_abandon:
        try:
            f(a)
        except (OSError, EOFError, ValueError) as e:
            bad(f"{f.__name__}: {e}")
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
