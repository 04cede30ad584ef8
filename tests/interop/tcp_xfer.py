#!/usr/bin/env python3
"""One TCP transfer with its SHA-256 checked on both ends (tests/interop helper).

  tcp_xfer.py recv HOST PORT              accept one connection, read to EOF, send
                                          back the SHA-256 of what arrived, print it
  tcp_xfer.py send HOST PORT NBYTES SEED  connect (retrying while refused), send NBYTES
                                          seeded pseudo-random bytes, print their
                                          SHA-256; exit 1 unless the receiver's matches

Each side prints one line: "<role> <bytes> <sha256hex> <seconds>".
"""
import hashlib
import random
import socket
import sys
import time

TIMEOUT = 60


def recv(host, port):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(1)
    ls.settimeout(TIMEOUT)
    conn, _ = ls.accept()
    conn.settimeout(TIMEOUT)
    t0 = time.monotonic()
    h = hashlib.sha256()
    n = 0
    while True:
        chunk = conn.recv(1 << 16)
        if not chunk:
            break
        h.update(chunk)
        n += len(chunk)
    digest = h.hexdigest()
    conn.sendall(digest.encode())
    conn.close()
    print(f"recv {n} {digest} {time.monotonic() - t0:.3f}", flush=True)


def send(host, port, nbytes, seed):
    data = random.Random(seed).randbytes(nbytes)
    digest = hashlib.sha256(data).hexdigest()
    deadline = time.monotonic() + 10
    while True:
        try:
            s = socket.create_connection((host, port), timeout=TIMEOUT)
            break
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    t0 = time.monotonic()
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    reply = b""
    while True:
        chunk = s.recv(256)
        if not chunk:
            break
        reply += chunk
    s.close()
    print(f"send {nbytes} {digest} {time.monotonic() - t0:.3f}", flush=True)
    if reply.decode() != digest:
        print(f"send: receiver's sha256 {reply.decode()!r} differs", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "recv":
        recv(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) == 6 and sys.argv[1] == "send":
        send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
