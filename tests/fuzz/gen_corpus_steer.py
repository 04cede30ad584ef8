#!/usr/bin/env python3
"""Writes tests/fuzz/corpus_steer/: inputs for fuzz_steer (byte 0: group
size and ring fill, byte 1: the asking instance, then an Ethernet frame):
ARP, TCP and UDP to ephemeral and fixed ports, IP options, fragments,
ICMP, truncated and oversized frames."""
import os
import struct

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "corpus_steer")
os.makedirs(out, exist_ok=True)

ETH = bytes.fromhex("020000000001020000000002")


def ipv4(proto, payload, frag=0, ihl=5, ident=0x1234):
    opts = b"\x01" * ((ihl - 5) * 4)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, 20 + len(opts) + len(payload), ident, frag, 64, proto, 0,
                      bytes([10, 0, 0, 2]), bytes([10, 0, 0, 1]))
    return ETH + b"\x08\x00" + hdr + opts + payload


def tcp(sport, dport):
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 0x50, 0x02, 65535, 0, 0)


def udp(sport, dport, body=b"x" * 8):
    return struct.pack("!HHHH", sport, dport, 8 + len(body), 0) + body


arp = ETH + b"\x08\x06" + bytes.fromhex("0001080006040001") + bytes(6) + bytes([10, 0, 0, 2]) + bytes(6) + bytes(
    [10, 0, 0, 1])
cases = {
    "arp": (2, 0, arp),
    "arp_short": (3, 1, arp[:16]),
    "tcp_ephemeral": (2, 0, ipv4(6, tcp(80, 50001))),
    "tcp_fixed": (4, 3, ipv4(6, tcp(40000, 80))),
    "tcp_options": (2, 1, ipv4(6, tcp(40000, 80), ihl=7)),
    "udp_ephemeral": (16, 5, ipv4(17, udp(53, 65535))),
    "udp_fixed": (5, 2, ipv4(17, udp(1234, 7))),
    "fragment_first": (2, 0, ipv4(17, udp(1234, 7), frag=0x2000)),
    "fragment_later": (2, 1, ipv4(17, b"y" * 16, frag=0x0002)),
    "icmp": (3, 0, ipv4(1, bytes([8, 0, 0, 0, 0, 1, 0, 1]))),
    "truncated_ip": (2, 0, ipv4(6, tcp(1, 2))[:30]),
    "bad_ihl": (2, 1, ipv4(6, tcp(1, 2))[:14] + b"\x43" + ipv4(6, tcp(1, 2))[15:]),
    "ipv6": (2, 0, ETH + b"\x86\xdd" + bytes(40)),
    "oversized": (2, 0, ipv4(17, udp(1, 60000, b"z" * 3000))),
    "fill_ring": (0xf0, 1, ipv4(6, tcp(40000, 80))),
    "fill_ring_oversized": (0xf1, 0, ipv4(17, udp(1, 2, b"z" * 2100))),
    "empty": (2, 0, b""),
}
for name, (n, self, frame) in cases.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(bytes([n & 0xff if n >= 0xf0 else (n - 2), self]) + frame)
