#!/usr/bin/env python3
"""Writes the seed inputs of fuzz_stack (tests/fuzz/fuzz_stack.c) into
tests/fuzz/corpus_stack/seed-*: short programs in its op language that
reach the handshake, data both ways, FIN, RST, zero windows, SACK, UDP,
fragments, ARP, ICMP and the timers. Regression inputs (crash-*) are
saved from libFuzzer's findings, not written here. Run it from anywhere;
it overwrites only seed-* files."""
import os
import struct

# Op codes: indices into ops[] in fuzz_stack.c.
TCP, TIME, PUSH, POP, CLOSE, SYN, RAW, FRAG, UDP, ICMP, ARP, ACCEPT, LISTEN, CONNECT, SOCKOPT, ARPMODE, DUPACK = (
    0, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20)
FIN, SYNF, RST, PSH, ACK = 1, 2, 4, 8, 16
# Sockets after the setup: 0 UDP, 1 listener, 2 accepted, 3 connecting.
U, L, A, C = 0, 1, 2, 3
# Connections (slots): 0 the accepted one, 1 the connecting one.
S_A, S_C = 0, 1
# Configuration bits (first byte).
SACK, TS, WS, NODELAY, DELACK, NEWRENO, KEEP, TLP = 1, 2, 4, 8, 16, 32, 64, 128


def tcp(slot, flags, seq=0, ack=0, win=255, length=0, mode=0, extra=b""):
    return bytes([TCP, slot, flags, mode]) + struct.pack(">hh", seq, ack) + bytes([win, length]) + extra


def t(b):
    return bytes([TIME, b])


MS10, MS200, S1, S10, S60, M10 = 104, 137, 160, 184, 208, 232


def push(sock, lb, segs=0):
    return bytes([PUSH, sock, lb, segs])


def pop(sock):
    return bytes([POP, sock])


def close(sock):
    return bytes([CLOSE, sock])


SEEDS = {
    "setup": b"",
    "setup-all-options": b"",
    "data-in-pop": tcp(S_A, ACK | PSH, length=100) + pop(A) + tcp(S_A, ACK | PSH, length=200) + pop(A),
    "data-out-acked": push(A, 120) + tcp(S_A, ACK) + push(A, 140, 2) + tcp(S_A, ACK) + t(MS200),
    "fin-from-peer": tcp(S_A, ACK | FIN) + pop(A) + close(A) + tcp(S_A, ACK) + t(S60),
    "fin-from-app": push(A, 50) + close(A) + tcp(S_A, ACK) + tcp(S_A, ACK | FIN) + t(S60),
    "rst-exact": tcp(S_A, RST) + pop(A),
    "rst-in-window": tcp(S_A, RST, seq=100) + tcp(S_A, ACK),
    "zero-window-then-open": push(A, 200) + tcp(S_A, ACK, win=0) + t(S1) + t(S10) + tcp(S_A, ACK, win=255) + t(S1),
    "sack-blocks": push(A, 140) + t(MS10) + tcp(S_A, ACK, mode=0x40, extra=bytes([1, 10, 5]))
    + tcp(S_A, ACK, mode=0x40, extra=bytes([2, 10, 5, 20, 3])) + tcp(S_A, ACK, mode=0x40, extra=bytes([2, 10, 5, 20, 3]))
    + tcp(S_A, ACK, mode=0x40, extra=bytes([2, 10, 5, 20, 3])) + t(S1) + tcp(S_A, ACK),
    "out-of-order": tcp(S_A, ACK, seq=1000, length=100) + tcp(S_A, ACK, seq=2000, length=100) + pop(A)
    + tcp(S_A, ACK, seq=-2100, mode=0, length=128) + t(MS10),
    "udp-in-out": bytes([UDP, 1, 0, 20]) + pop(U) + push(U, 30) + bytes([UDP, 2, 1, 10]) + bytes([UDP, 3, 2, 10]),
    "udp-bad-csum": bytes([UDP, 1, 8, 20, UDP, 1, 4, 20]) + pop(U),
    "frag-udp": bytes([FRAG, 0, 60, 20, 0, 1]) + pop(U) + bytes([FRAG, 0, 60, 20, 1, 2]) + bytes([FRAG, 0, 60, 20, 0x12, 3]),
    "frag-icmp-big-echo": bytes([FRAG, 1, 100, 40, 0, 4]) + bytes([FRAG, 1, 100, 40, 8, 5]),
    "frag-tcp": bytes([FRAG, 2, 20, 10, 0, 6]) + pop(A) + bytes([FRAG, 2, 20, 10, 4, 7]) + pop(A),
    "frag-timeout": bytes([FRAG, 0, 60, 20, 2, 8]) + t(S60),
    "arp": bytes([ARP, 0, 0, 0, 0, ARP, 1, 0, 0, 0, ARP, 0, 1, 1, 1, ARP, 0, 4, 0, 4]) + push(A, 10),
    "arp-silent": bytes([ARPMODE]) + bytes([CONNECT, 1]) + t(S1) + t(S10),
    "icmp-echo": bytes([ICMP, 0, 0, 10, ICMP, 0, 0, 250, ICMP, 0x83, 3, 10]),
    "syn-sent-completes": tcp(S_C, SYNF | ACK) + push(C, 100) + tcp(S_C, ACK) + pop(C) + tcp(S_C, ACK | PSH, length=50) + pop(C),
    "syn-sent-rst": tcp(S_C, RST | ACK) + t(S1),
    "syn-sent-timeout": t(M10),
    "new-peer-accept": bytes([SYN, 1, 15]) + tcp(2, ACK) + bytes([ACCEPT, L]) + tcp(2, ACK | PSH, length=30) + pop(4),
    "backlog-full": bytes([SYN, 1, 15, SYN, 2, 15, SYN, 3, 15, SYN, 4, 15, SYN, 5, 15, SYN, 6, 15, SYN, 7, 15, SYN, 8, 15,
                           SYN, 9, 15]) + t(S10),
    "listen-81": bytes([LISTEN, 1, SYN, 0x80, 0]) + tcp(2, ACK) + bytes([ACCEPT, 4]),
    "connect-more": bytes([CONNECT, 1, CONNECT, 2, CONNECT, 8]) + tcp(2, SYNF | ACK) + t(S1),
    "rto-retransmit": push(A, 130) + t(MS200) + t(S1) + t(S1) + tcp(S_A, ACK),
    "keepalive": bytes([SOCKOPT, A, 4, 1, SOCKOPT, A, 5, 0]) + t(S10) + t(S10),
    "linger0-close": bytes([SOCKOPT, A, 0, 1]) + push(A, 20) + close(A),
    "close-unread": tcp(S_A, ACK | PSH, length=10) + close(A),
    "close-listener": tcp(S_A, ACK) + bytes([SYN, 3, 15]) + close(L) + t(S1),
    "raw-garbage": bytes([RAW, 1, 0, 30]) + bytes(range(30)) + bytes([RAW, 2, 0, 40, 0x45, 0, 0, 40]) + bytes(36)
    + bytes([RAW, 3, 0, 28]) + bytes(28),
    "timestamps-paws": tcp(S_A, ACK | PSH, mode=0x20, length=20) + pop(A) + t(S1) + tcp(S_A, ACK | PSH, mode=0x20, length=20),
    "window-scale-bulk": push(A, 255, 2) + tcp(S_A, ACK, win=255) + t(MS10) + tcp(S_A, ACK, win=255) + t(MS200),
    "challenge-ack": tcp(S_A, SYNF) + tcp(S_A, ACK, ack=30000) + tcp(S_A, RST, seq=5),
    "dupack-fast-retransmit": push(A, 140) + tcp(S_A, ACK, ack=-5196) + bytes([DUPACK, S_A, 3, 0]) + t(MS10)
    + tcp(S_A, ACK) + t(S1),
    "dupack-sack-recovery": push(A, 160) + tcp(S_A, ACK, ack=-15000) + bytes([DUPACK, S_A, 5, 0x15]) + t(MS10)
    + bytes([DUPACK, S_A, 2, 0x35]) + tcp(S_A, ACK) + t(S1),
    "dupack-after-rto": push(A, 150) + t(S1) + tcp(S_A, ACK, ack=-8000) + bytes([DUPACK, S_A, 4, 0x07]) + t(S1)
    + tcp(S_A, ACK),
    "simultaneous-close": push(A, 5) + close(A) + tcp(S_A, FIN | ACK, ack=-1) + t(S1) + tcp(S_A, ACK) + t(S60),
}

CFG = {
    "setup-all-options": bytes([SACK | TS | WS | TLP, 0]),
    "sack-blocks": bytes([SACK | TS | WS | TLP, 0]),
    "timestamps-paws": bytes([TS, 0]),
    "window-scale-bulk": bytes([WS | SACK, 0x20]),
    "keepalive": bytes([KEEP, 0]),
    "rto-retransmit": bytes([NEWRENO, 0x40]),
    "dupack-fast-retransmit": bytes([NEWRENO | WS, 0]),
    "dupack-sack-recovery": bytes([SACK | WS | TS | TLP, 0]),
    "dupack-after-rto": bytes([SACK | WS, 0x40]),
    "frag-icmp-big-echo": bytes([0, 2]),
    "data-out-acked": bytes([DELACK | NODELAY, 1]),
}


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus_stack")
    os.makedirs(out, exist_ok=True)
    for name, prog in SEEDS.items():
        with open(os.path.join(out, "seed-" + name), "wb") as f:
            f.write(CFG.get(name, bytes([SACK | TS | WS, 0])) + prog)


if __name__ == "__main__":
    main()
