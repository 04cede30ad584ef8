#!/usr/bin/env python3
"""demi-kv over the network (catnap, 127.0.0.1): pipelining, commands split
across reads, large values, many concurrent clients, malformed input (error
reply and close, as Redis), QUIT, resets, active expiry, and a clean exit on
SIGINT. Run by test_kv_protocol.sh."""

import os
import random
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kvtest import Conn, RespError, check, main, start_kv  # noqa: E402


def test_pipeline(port):
    with Conn(port) as c:
        n = 20000
        out = []
        for i in range(n):
            out.append(Conn.encode("SET", f"p:{i}", f"v{i}" * (i % 7 + 1)))
            out.append(Conn.encode("GET", f"p:{i}"))
            out.append(b"INCR pcount\r\n")  # inline commands mixed in
        c.raw(b"".join(out))  # about 1 MB in one go: many pops, commands cut anywhere
        for i in range(n):
            check(c.read_reply() == "OK", f"SET p:{i}")
            check(c.read_reply() == (f"v{i}" * (i % 7 + 1)).encode(), f"GET p:{i}")
            check(c.read_reply() == i + 1, f"INCR #{i}")
        check(c.cmd("DBSIZE") == n + 1, "DBSIZE after the pipeline")


def test_split(port):
    with Conn(port) as c:
        # One byte per send: every command arrives in pieces.
        data = Conn.encode("SET", "split", "a\r\nb") + b"GET split\r\n" + Conn.encode("ECHO", "x" * 300)
        for b in data:
            c.raw(bytes([b]))
            time.sleep(0.0005)
        check(c.read_reply() == "OK", "split SET")
        check(c.read_reply() == b"a\r\nb", "split GET")
        check(c.read_reply() == b"x" * 300, "split ECHO")


def test_large(port):
    rnd = random.Random(1)
    with Conn(port, timeout=60) as c:
        # Up to over 256 MiB: more than 16 heap segments of 16 MiB, more
        # than one demi_sgaalloc can give, and a GET of several pushes.
        for size in (16 * 1024, 16 * 1024 + 1, 200000, 5 << 20, (260 << 20) + 5, (20 << 20) + 3):
            val = bytes(rnd.getrandbits(8) for _ in range(min(size, 4096))) * (size // 4096 + 1)
            val = val[:size]
            # Sent in uneven pieces so the bulk spans many pops.
            data = memoryview(Conn.encode("SET", "big", val))
            pos = 0
            while pos < len(data):
                k = rnd.randint(1, 300000)
                c.raw(data[pos:pos + k])
                pos += k
            check(c.read_reply() == "OK", f"SET of {size} bytes")
            got = c.cmd("GET", "big")
            check(got == val, f"GET of {size} bytes returned {len(got) if got else got} bytes, different")
            check(c.cmd("STRLEN", "big") == size, f"STRLEN {size}")
        # APPEND grows a large value in place, a small one by copying.
        check(c.cmd("APPEND", "big", "tail") == len(val) + 4, "APPEND to 20 MiB")
        check(c.cmd("GET", "big") == val + b"tail", "GET after APPEND")
        c.cmd("DEL", "grow")
        want = b""
        for i in range(3000):
            piece = (b"%d," % i) * 3
            want += piece
            check(c.cmd("APPEND", "grow", piece) == len(want), "APPEND length")
        check(c.cmd("GET", "grow") == want, "value built by 3000 APPENDs")
        # Pipelined GETs of a value deleted and rewritten in the same batch.
        c.raw(Conn.encode("SET", "z", "A" * 70000) + Conn.encode("GET", "z") + Conn.encode("DEL", "z") +
              Conn.encode("SET", "z", "B" * 70000) + Conn.encode("GET", "z"))
        check(c.read_reply() == "OK", "SET z")
        check(c.read_reply() == b"A" * 70000, "GET z before DEL in one batch")
        check(c.read_reply() == 1, "DEL z")
        check(c.read_reply() == "OK", "SET z again")
        check(c.read_reply() == b"B" * 70000, "GET z after")
        c.cmd("DEL", "big", "grow", "z")


def client_worker(port, idx, rounds, errors):
    try:
        with Conn(port, timeout=60) as c:
            for r in range(rounds):
                batch = []
                for j in range(16):
                    batch.append(Conn.encode("SET", f"c{idx}:{j}", f"{idx}-{r}-{j}"))
                    batch.append(Conn.encode("INCR", "shared"))
                    batch.append(Conn.encode("GET", f"c{idx}:{j}"))
                c.raw(b"".join(batch))
                for j in range(16):
                    if c.read_reply() != "OK":
                        raise AssertionError("SET")
                    if not isinstance(c.read_reply(), int):
                        raise AssertionError("INCR")
                    if c.read_reply() != f"{idx}-{r}-{j}".encode():
                        raise AssertionError(f"client {idx} read another client's value")
    except BaseException as e:  # reported by the main thread
        errors.append(f"client {idx}: {e!r}")


def test_many_clients(port):
    nclients, rounds = 200, 20
    errors = []
    threads = [threading.Thread(target=client_worker, args=(port, i, rounds, errors)) for i in range(nclients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(not errors, "; ".join(errors[:5]))
    with Conn(port) as c:
        check(c.cmd("GET", "shared") == str(nclients * rounds * 16).encode(), "INCR from 200 clients")
        info = c.cmd("INFO", "clients").decode()
        check("connected_clients:1\r\n" in info, f"connections were not all closed: {info!r}")


ERRORS = [
    (b"*1\r\n$536870913\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    (b"*1\r\n$-1\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    (b"*2147483648\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
    (b"*x\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
    (b"*1\r\nx3\r\n", b"-ERR Protocol error: expected '$', got 'x'\r\n"),
    (b'SET a "b\r\n', b"-ERR Protocol error: unbalanced quotes in request\r\n"),
    (b"a" * 70000, b"-ERR Protocol error: too big inline request\r\n"),
    (b"*" + b"1" * 70000, b"-ERR Protocol error: too big mbulk count string\r\n"),
    (b"*1\r\n$" + b"1" * 70000, b"-ERR Protocol error: too big bulk count string\r\n"),
    # Commands before the error are answered; nothing after it is.
    (b"PING\r\nSET q 1\r\n*1\r\nx\r\nGET q\r\n", b"+PONG\r\n+OK\r\n-ERR Protocol error: expected '$', got 'x'\r\n"),
    (b"PING\r\nQUIT\r\nPING\r\n", b"+PONG\r\n+OK\r\n"),
]


def test_malformed(port):
    for data, want in ERRORS:
        with Conn(port) as c:
            c.raw(data)
            got = c.read_until_close()
            check(got == want, f"for {data[:40]!r}...: got {got[:200]!r}, want {want!r}")
    # Unknown commands and wrong arity do not close the connection.
    with Conn(port) as c:
        r = c.cmd("NOSUCH", "a")
        check(isinstance(r, RespError) and str(r) == "ERR unknown command 'NOSUCH', with args beginning with: 'a' ",
              f"unknown command: {r!r}")
        r = c.cmd("GET")
        check(isinstance(r, RespError) and str(r) == "ERR wrong number of arguments for 'get' command", repr(r))
        check(c.cmd("PING") == "PONG", "still open after errors")
    # Random garbage, and random damage to real commands, on fresh
    # connections: the server must answer or close, never crash.
    rnd = random.Random(7)
    base = Conn.encode("SET", "k", "v") + Conn.encode("MGET", "a", "b") + b'ECHO "x\\x41"\r\n'
    for i in range(300):
        if i % 2:
            data = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 400)))
        else:
            d = bytearray(base * rnd.randint(1, 4))
            for _ in range(rnd.randint(1, 6)):
                d[rnd.randrange(len(d))] = rnd.getrandbits(8)
            data = bytes(d)
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)  # our side is done: the server sees EOF after the bytes
        try:
            while s.recv(65536):
                pass
        except (socket.timeout, ConnectionResetError):
            pass
        s.close()
    with Conn(port) as c:
        check(c.cmd("PING") == "PONG", "the server survived the garbage")


def test_resets(port):
    # Clients that vanish with a reset, with replies pending and mid-command.
    for i in range(50):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(Conn.encode("SET", "r", "x" * 100000) * 5 + Conn.encode("GET", "r") * 50 + b"*3\r\n$3\r\nSET")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    # A client that pipelines many large replies and never reads them.
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting (kv_hostile.py says why)
    s.connect(("127.0.0.1", port))
    try:
        s.settimeout(2)
        s.sendall(Conn.encode("GET", "r") * 2000)
    except socket.timeout:
        pass
    time.sleep(0.3)
    s.close()
    with Conn(port) as c:
        check(c.cmd("PING") == "PONG", "the server survived the resets")
        check(c.cmd("STRLEN", "r") == 100000, "value intact after the resets")


def test_half_close(port):
    # A client that sends its commands, shuts down its sending side and
    # then reads gets every reply, even replies too large to go out at once.
    with Conn(port, timeout=30) as c:
        val = b"h" * (3 << 20)
        check(c.cmd("SET", "half", val) == "OK", "SET half")
        c.raw(Conn.encode("GET", "half") * 8 + b"PING\r\n")
        c.sock.shutdown(socket.SHUT_WR)
        for i in range(8):
            check(c.read_reply() == val, f"GET #{i} after the client's half-close")
        check(c.read_reply() == "PONG", "PING after the client's half-close")
        c.sock.settimeout(5)
        check(c.sock.recv(1) == b"", "the server closes once the replies are out")
    with Conn(port) as c:
        c.cmd("DEL", "half")


def test_expiry(port):
    with Conn(port) as c:
        c.cmd("FLUSHALL")
        c.raw(b"".join(Conn.encode("SET", f"e{i}", "v", "PX", 100) for i in range(500)) +
              b"".join(Conn.encode("SET", f"keep{i}", "v") for i in range(50)))
        for _ in range(550):
            check(c.read_reply() == "OK", "SET PX")
        before = int(c.cmd("INFO", "stats").decode().split("expired_keys:")[1].split("\r")[0])
        # Nothing reads those keys: only active expiry (every 100 ms) can
        # remove them.
        deadline = time.time() + 10
        while time.time() < deadline and c.cmd("DBSIZE") != 50:
            time.sleep(0.1)
        check(c.cmd("DBSIZE") == 50, f"active expiry left {c.cmd('DBSIZE')} keys, want 50")
        after = int(c.cmd("INFO", "stats").decode().split("expired_keys:")[1].split("\r")[0])
        check(after - before == 500, f"expired_keys grew by {after - before}, want 500")
        # Lazy expiry: a key read after its time is gone at once.
        c.cmd("SET", "lazy", "v", "PX", 50)
        time.sleep(0.06)
        check(c.cmd("GET", "lazy") is None, "GET after PX")


def run():
    kv = start_kv()
    port = kv.port
    test_pipeline(port)
    test_split(port)
    test_large(port)
    test_many_clients(port)
    test_malformed(port)
    test_resets(port)
    test_half_close(port)
    test_expiry(port)
    check(kv.alive(), "demi-kv died")
    kv.stop()  # SIGINT: must exit 0 (and, under ASan, without leaks)


if __name__ == "__main__":
    main(run)
