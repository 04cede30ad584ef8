#!/usr/bin/env python3
"""The Linux side of the interop tests: TCP/UDP echo clients and servers on
kernel sockets, checking every byte by sha256. Talks only to the address it
is given (an address inside a test namespace).

  peer.py tcp-client HOST PORT BYTES [--conns N]   send BYTES (random), read the echo, compare
  peer.py tcp-server PORT                          echo every connection until it closes
  peer.py udp-client HOST PORT COUNT SIZE          COUNT datagrams, each echoed and compared
  peer.py udp-server PORT                          echo datagrams to their sender
Exit 0 when everything checks out; 1 (with a message) otherwise.
"""
import hashlib
import os
import selectors
import socket
import sys
import threading
import time


def die(msg):
    print(f"peer: {msg}", file=sys.stderr)
    sys.exit(1)


def tcp_client(host, port, nbytes, conns=1):
    """N connections at once; each sends nbytes and must get them back."""
    sel = selectors.DefaultSelector()
    state = []
    for i in range(conns):
        s = socket.create_connection((host, port), timeout=30)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        data = os.urandom(min(nbytes, 1 << 20))
        st = {"sock": s, "sent": 0, "recv": 0, "tx": hashlib.sha256(), "rx": hashlib.sha256(), "block": data}
        state.append(st)
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, st)
    t0 = time.time()
    done = 0
    while done < conns:
        if time.time() - t0 > 300:
            die(f"timed out: {done}/{conns} connections finished")
        for key, ev in sel.select(timeout=5):
            st = key.data
            s = st["sock"]
            if ev & selectors.EVENT_WRITE and st["sent"] < nbytes:
                off = st["sent"] % len(st["block"])
                chunk = st["block"][off:off + min(nbytes - st["sent"], len(st["block"]) - off)]
                try:
                    n = s.send(chunk)
                except BlockingIOError:
                    n = 0
                st["tx"].update(chunk[:n])
                st["sent"] += n
                if st["sent"] == nbytes:
                    sel.modify(s, selectors.EVENT_READ, st)
            if ev & selectors.EVENT_READ:
                try:
                    b = s.recv(1 << 20)
                except BlockingIOError:
                    continue
                if not b:
                    die(f"connection closed after {st['recv']} of {nbytes} bytes")
                st["rx"].update(b)
                st["recv"] += len(b)
                if st["recv"] > nbytes:
                    die("more bytes came back than were sent")
                if st["recv"] == nbytes:
                    if st["tx"].digest() != st["rx"].digest():
                        die("echo differs (sha256)")
                    sel.unregister(s)
                    s.close()
                    done += 1
    dt = time.time() - t0
    print(f"tcp-client: {conns} x {nbytes} bytes echoed, sha256 equal, {conns * nbytes * 8 / dt / 1e6:.0f} Mbit/s")


def tcp_server(port):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", port))
    ls.listen(1024)
    print("ready", flush=True)

    def serve(c):
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            b = c.recv(1 << 20)
            if not b:
                break
            c.sendall(b)
        c.close()

    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


def udp_client(host, port, count, size):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    lost = 0
    for i in range(count):
        msg = os.urandom(size)
        for attempt in range(5):
            s.sendto(msg, (host, port))
            try:
                b, addr = s.recvfrom(65536)
            except socket.timeout:
                lost += 1
                continue
            if addr[0] != host or addr[1] != port:
                die(f"reply from {addr}, not {host}:{port}")
            if b != msg:
                die(f"datagram {i} came back different")
            break
        else:
            die(f"datagram {i} never came back")
    print(f"udp-client: {count} datagrams of {size} bytes echoed ({lost} retried)")


def udp_server(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    print("ready", flush=True)
    while True:
        b, addr = s.recvfrom(65536)
        s.sendto(b, addr)


def main():
    a = sys.argv[1:]
    if not a:
        die(__doc__)
    if a[0] == "tcp-client":
        conns = int(a[a.index("--conns") + 1]) if "--conns" in a else 1
        tcp_client(a[1], int(a[2]), int(a[3]), conns)
    elif a[0] == "tcp-server":
        tcp_server(int(a[1]))
    elif a[0] == "udp-client":
        udp_client(a[1], int(a[2]), int(a[3]), int(a[4]))
    elif a[0] == "udp-server":
        udp_server(int(a[1]))
    else:
        die(__doc__)


if __name__ == "__main__":
    main()
