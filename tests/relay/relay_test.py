#!/usr/bin/env python3
"""demi-relay (catnap) with Linux UDP peers on 127.0.0.1: two pairs;
datagrams of 1 to 65507 bytes relayed both ways with every byte and the
source address checked; bursts in order; drops before a side has a peer;
peers re-learned; pairs kept apart; an empty datagram does not stop the
relay; per-pair counts on exit. Run by test_relay.sh."""

import os
import random
import signal
import socket
import subprocess
import sys


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def build_dir():
    b = os.environ.get("DEMI_BUILD", "build")
    if not os.path.isabs(b):
        here = os.path.dirname(os.path.abspath(__file__))
        b = os.path.abspath(b) if os.path.isdir(b) else os.path.join(here, "..", "..", b)
    return b


def peer():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.settimeout(5)
    return s


def expect_nothing(s, what):
    s.settimeout(0.2)
    try:
        d, a = s.recvfrom(70000)
        fail(f"{what}: got {len(d)} bytes from {a}")
    except socket.timeout:
        pass
    finally:
        s.settimeout(5)


def recv_from(s, src, what):
    try:
        d, a = s.recvfrom(70000)
    except socket.timeout:
        fail(f"{what}: nothing arrived within 5 s")
    check(a == src, f"{what}: came from {a}, expected the relay's {src}")
    return d


def run(proc):
    line = proc.stdout.readline().decode().split()
    check(len(line) == 3 and line[0] == "ready", f"bad ready line {line!r}")
    pairs = []
    for p in line[1:]:
        a, b = p.split("=")
        pairs.append(tuple((h, int(port)) for h, port in (x.rsplit(":", 1) for x in (a, b))))
    (A1, B1), (A2, B2) = pairs
    check(all(addr[0] == "127.0.0.1" and addr[1] > 0 for pr in pairs for addr in pr), f"addresses {pairs}")

    x1, y1, x2, y2 = peer(), peer(), peer(), peer()
    # Nobody is on side B yet: dropped.
    x1.sendto(b"too early", A1)
    expect_nothing(y1, "a datagram relayed before side B had a peer")
    # y1 joins side B; x1 (heard on A) gets y1's datagram.
    y1.sendto(b"hello from y1", B1)
    check(recv_from(x1, A1, "B->A") == b"hello from y1", "first B->A datagram")

    rnd = random.Random(3)
    sizes = [1, 2, 100, 1472, 1473, 9000, 65507] + [rnd.randint(1, 65507) for _ in range(300)]
    for i, n in enumerate(sizes):
        msg = bytes((i * 31 + k * 7) & 0xff for k in range(min(n, 256))) * (n // 256 + 1)
        msg = msg[:n]
        src, dst, to, frm = (x1, y1, A1, B1) if i % 2 == 0 else (y1, x1, B1, A1)
        src.sendto(msg, to)
        check(recv_from(dst, frm, f"datagram {i} ({n} bytes)") == msg, f"datagram {i} ({n} bytes) changed")

    # Bursts arrive whole and in order.
    for w in range(20):
        msgs = [b"burst %d %d " % (w, k) + bytes([k]) * 1000 for k in range(50)]
        for m in msgs:
            x1.sendto(m, A1)
        for k, m in enumerate(msgs):
            check(recv_from(y1, B1, f"burst {w} #{k}") == m, f"burst {w} #{k} out of order or changed")

    # The second pair is separate.
    x2.sendto(b"x2 joins", A2)
    y2.sendto(b"y2 joins", B2)
    check(recv_from(x2, A2, "pair 2 B->A") == b"y2 joins", "pair 2 first datagram")
    x2.sendto(b"pair two", A2)
    check(recv_from(y2, B2, "pair 2 A->B") == b"pair two", "pair 2 A->B")
    expect_nothing(y1, "pair 2 traffic leaking into pair 1")
    expect_nothing(x1, "pair 2 traffic leaking into pair 1")

    # A new client on side A takes over: replies from B go to it.
    x1b = peer()
    x1b.sendto(b"i am the new A", A1)
    check(recv_from(y1, B1, "new A peer") == b"i am the new A", "new A peer's datagram")
    y1.sendto(b"to the new A", B1)
    check(recv_from(x1b, A1, "reply to new A") == b"to the new A", "reply to the new A peer")
    expect_nothing(x1, "the old A peer still getting datagrams")

    # An empty datagram cannot be pushed (PDPIX refuses empty arrays); the
    # relay counts it and goes on.
    x1b.sendto(b"", A1)
    x1b.sendto(b"after empty", A1)
    check(recv_from(y1, B1, "after an empty datagram") == b"after empty", "relay after an empty datagram")

    proc.send_signal(signal.SIGINT)
    try:
        rc = proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        fail("demi-relay did not exit within 10 s of SIGINT")
    err = proc.stderr.read().decode()
    check(rc == 0, f"demi-relay exited with {rc}: {err}")
    # Pair 0: A received too-early + half the sizes + 1000 burst + new-A + empty + after-empty.
    n_a = 1 + (len(sizes) + 1) // 2 + 1000 + 1 + 2
    n_b = 1 + len(sizes) // 2 + 1
    want0 = (f"pair 0: A received {n_a} (1 dropped: B had no peer), B sent {n_a - 2} (1 failed); "
             f"B received {n_b} (0 dropped: A had no peer), A sent {n_b} (0 failed)")
    check(want0 in err, f"pair 0 counts: want {want0!r} in {err!r}")
    want1 = ("pair 1: A received 2 (1 dropped: B had no peer), B sent 1 (0 failed); "
             "B received 1 (0 dropped: A had no peer), A sent 1 (0 failed)")
    check(want1 in err, f"pair 1 counts: want {want1!r} in {err!r}")


def main():
    exe = os.path.join(build_dir(), "demi-relay")
    check(os.access(exe, os.X_OK), f"{exe} not built")
    env = dict(os.environ, LIBOS="catnap", HUGEPAGES="off")
    proc = subprocess.Popen([exe, "--pair", "127.0.0.1:0=127.0.0.1:0", "--pair", "127.0.0.1:0=127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        run(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    print("ok")


if __name__ == "__main__":
    main()
