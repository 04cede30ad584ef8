#!/usr/bin/env python3
"""Linux peers for demi-relay --threads (test_multiqueue.sh, part 5).

    mq_relay.py RELAY_IP LOCAL_IP PORTS ROUNDS

PORTS is "A=B,A=B,...": the relay's pairs. Each pair gets two Linux UDP
sockets, a (talking to side A) and b (talking to side B). After the relay
has learned both peers, ROUNDS datagrams go a -> A -> B -> b and as many
b -> B -> A -> a, one at a time, each of a random size with its pair,
direction and sequence number inside: every byte and the source address
(the relay's other side) are checked. A datagram lost on the veth is sent
again (at most 5 times); strays from earlier tries are skipped. Prints one
line per pair and exits 0, or names the first mismatch and exits 1."""

import os
import socket
import sys


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def payload(pair, direction, seq):
    head = f"pair {pair} {direction} {seq} ".encode()
    n = int.from_bytes(os.urandom(2), "big") % 1400
    return head + os.urandom(n)


def deliver(src, dst_addr, rcv, expect_from, msg, what):
    """Sends msg from src to dst_addr until rcv gets it from expect_from."""
    for _ in range(5):
        src.sendto(msg, dst_addr)
        while True:
            try:
                d, a = rcv.recvfrom(2048)
            except socket.timeout:
                break
            if d != msg:
                continue  # a stray from an earlier try, or the learning datagram
            if a != expect_from:
                fail(f"{what}: came from {a}, not the relay's {expect_from}")
            return
    fail(f"{what}: not relayed after 5 tries")


def main():
    if len(sys.argv) != 5:
        fail("usage: mq_relay.py RELAY_IP LOCAL_IP A=B,A=B,... ROUNDS")
    relay, local, spec, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    pairs = []
    for i, p in enumerate(spec.split(",")):
        pa, pb = (int(x) for x in p.split("="))
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for s in (a, b):
            s.bind((local, 0))
            s.settimeout(1)
        pairs.append((i, a, b, (relay, pa), (relay, pb)))
    # Learning: a's first datagram finds B without a peer and is dropped
    # (it teaches A its peer); b's is then relayed to a.
    for i, a, b, sa, sb in pairs:
        for t in range(5):
            a.sendto(b"learn", sa)
            probe = f"probe {i} {t}".encode()
            b.sendto(probe, sb)
            try:
                while True:
                    d, src = a.recvfrom(2048)
                    if d == probe:
                        break
            except socket.timeout:
                continue
            if src != sa:
                fail(f"pair {i}: probe came from {src}, not {sa}")
            break
        else:
            fail(f"pair {i}: the relay never learned both peers")
    for k in range(rounds):
        for i, a, b, sa, sb in pairs:
            deliver(a, sa, b, sb, payload(i, "ab", k), f"pair {i} a->b #{k}")
            deliver(b, sb, a, sa, payload(i, "ba", k), f"pair {i} b->a #{k}")
    for i, a, b, sa, sb in pairs:
        print(f"pair {i}: {rounds} datagrams each way relayed and checked (a {a.getsockname()[1]}, "
              f"b {b.getsockname()[1]})")


main()
