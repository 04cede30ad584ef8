#!/usr/bin/env python3
"""Known keys and values for demi-kv's tests over a real network
(tests/kv/test_kv_bypass.sh). Plain sockets, RESP by hand, Python 3
standard library only.

  kv_known.py fill HOST PORT --keys N [--conns C] [--batch B]
      SET known:0 .. known:N-1 to values derived from the key (binary,
      1 to 3000 bytes, CR and LF included), over C connections at once,
      B commands pipelined at a time; every reply must be +OK.
  kv_known.py check HOST PORT --keys N [--bench-keys K --bench-size S]
      GET every known key back (pipelined) and compare byte for byte; with
      --bench-keys, GET redis-benchmark's keys key:000000000000 .. K-1,
      which must all exist and hold S bytes.
Prints one line of figures; exit 0 when everything matched, 1 otherwise.
"""

import argparse
import hashlib
import socket
import sys
import threading


def value(i):
    n = (i * 37) % 3000 + 1
    out = bytearray()
    seed = b"known:%d" % i
    while len(out) < n:
        seed = hashlib.sha256(seed).digest()
        out += seed
    out = out[:n]
    if n > 2:
        out[n // 2 : n // 2 + 2] = b"\r\n"  # framing bytes inside a value
    return bytes(out)


def cmd(*args):
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(parts)


class Conn:
    def __init__(self, host, port):
        self.s = socket.create_connection((host, port), timeout=30)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def _need(self, n):
        while len(self.buf) < n:
            d = self.s.recv(1 << 16)
            if not d:
                raise EOFError("server closed the connection")
            self.buf += d

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                ln, self.buf = self.buf[:i], self.buf[i + 2 :]
                return ln
            self._need(len(self.buf) + 1)

    def reply(self):
        ln = self._line()
        t, rest = ln[:1], ln[1:]
        if t in (b"+", b"-", b":"):
            return (t, rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            self._need(n + 2)
            v, self.buf = self.buf[:n], self.buf[n + 2 :]
            return v
        if t == b"*":
            return [self.reply() for _ in range(int(rest))]
        raise ValueError(f"bad reply line {ln[:60]!r}")

    def close(self):
        self.s.close()


def fill(a):
    errors = []

    def worker(c):
        try:
            conn = Conn(a.host, a.port)
            mine = list(range(c, a.keys, a.conns))
            for j in range(0, len(mine), a.batch):
                chunk = mine[j : j + a.batch]
                conn.s.sendall(b"".join(cmd("SET", "known:%d" % i, value(i)) for i in chunk))
                for i in chunk:
                    r = conn.reply()
                    if r != (b"+", b"OK"):
                        errors.append(f"SET known:{i}: {r!r}")
                        return
            conn.close()
        except (OSError, EOFError, ValueError) as e:
            errors.append(f"connection {c}: {e}")

    if a.conns == 1:
        # On the calling thread: under libdemi-posix.so only the thread
        # that opened the first socket has the stack.
        worker(0)
    ts = [threading.Thread(target=worker, args=(c,)) for c in range(a.conns)] if a.conns > 1 else []
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        print("kv_known fill: " + "; ".join(errors[:5]))
        return 1
    print(f"kv_known fill: {a.keys} keys set over {a.conns} connections, every reply +OK")
    return 0


def check(a):
    conn = Conn(a.host, a.port)
    bad = []
    for j in range(0, a.keys, a.batch):
        chunk = range(j, min(j + a.batch, a.keys))
        conn.s.sendall(b"".join(cmd("GET", "known:%d" % i) for i in chunk))
        for i in chunk:
            r = conn.reply()
            if r != value(i):
                bad.append(f"known:{i}: {len(r) if isinstance(r, bytes) else r!r} (want {len(value(i))} bytes)")
    line = f"kv_known check: {a.keys - len(bad)} of {a.keys} known values equal"
    if a.bench_keys:
        keys = ["key:%012d" % i for i in range(a.bench_keys)]
        # One GET each (pipelined), not one MGET: under demi-kv --threads
        # the keys belong to several threads (MGET would be CROSSSLOT).
        vals = []
        for j in range(0, len(keys), a.batch):
            chunk = keys[j : j + a.batch]
            conn.s.sendall(b"".join(cmd("GET", k) for k in chunk))
            vals += [conn.reply() for _ in chunk]
        if len(vals) != a.bench_keys:
            bad.append(f"MGET of redis-benchmark's keys: {vals!r:.80}")
        else:
            missing = [k for k, v in zip(keys, vals) if v is None]
            wrong = [k for k, v in zip(keys, vals) if v is not None and len(v) != a.bench_size]
            if missing or wrong:
                bad.append(f"redis-benchmark's keys: {len(missing)} missing (first {missing[:3]}), "
                           f"{len(wrong)} not {a.bench_size} bytes (first {wrong[:3]})")
            line += f"; {a.bench_keys - len(missing) - len(wrong)} of {a.bench_keys} redis-benchmark keys present"
    conn.close()
    print(line)
    if bad:
        print("kv_known check: " + "; ".join(bad[:5]))
        return 1
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=("fill", "check"))
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--keys", type=int, required=True)
    p.add_argument("--conns", type=int, default=4)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--bench-keys", type=int, default=0)
    p.add_argument("--bench-size", type=int, default=3)
    a = p.parse_args()
    sys.exit(fill(a) if a.what == "fill" else check(a))


if __name__ == "__main__":
    main()
