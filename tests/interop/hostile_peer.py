#!/usr/bin/env python3
"""Hostile peers for tests/interop/test_hostile.sh: raw Ethernet frames over
AF_PACKET on the Linux side of a test topology (scripts/netns.sh), built
with struct (no scapy). Every mode answers ARP itself for the address it
owns, an address the Linux kernel of that namespace does not have: the
kernel drops what we are sent there (it does not forward) and never resets
it.

  hostile_peer.py synsyn  IF OWN_IP PORT LOG
      Answers each SYN to OWN_IP:PORT with a bare SYN (same ports, its own
      ISN, no ACK): a simultaneous open (RFC 9293 3.5, figure 8). Nothing
      else is ever answered.
  hostile_peer.py zerowin IF OWN_IP PORT WINDOW LOG
      Completes the handshake (window WINDOW, MSS 1460, no other option),
      ACKs in-order data while its WINDOW bytes of buffer last; the ACK that
      fills the buffer advertises window 0, and from then on the peer is
      silent: it prints "silent" and only logs what it receives.
  hostile_peer.py flood IF DST_IP DST_MAC PORT SRC_NET SECONDS MAX_COUNT [PPS]
      SYNs to DST_IP:PORT from random addresses and ports of SRC_NET (e.g.
      10.250.0.0/16) as fast as it can (or PPS a second), until SIGTERM,
      SECONDS or MAX_COUNT; meanwhile answers ARP for SRC_NET with this interface's MAC
      (the flood comes from behind a router: the SYN,ACKs go to the router,
      which is the Linux host here, and die there). Prints one summary line.

Kernel-socket modes (the Linux host's own TCP, for the legitimate clients
and the careless ones):

  hostile_peer.py connects HOST PORT N
      N times, one after the other: connect (1.5 s at most), echo 64 B,
      close; stops early after 20 failed connects. Prints one line: how many
      connected within 1 s, how many at all, how many echoes came back
      whole, and the connect latencies (p50, p99, max, in ms).
  hostile_peer.py stream HOST PORT
      One connection echoing 64 KiB writes with up to 1 MiB outstanding,
      every byte checked, until SIGTERM; prints "T BYTES" every 0.25 s (T
      the wall clock, BYTES echoed since the previous line).
  hostile_peer.py reader HOST PORT N
      N connections that send 64 KiB writes without pause and never read,
      until SIGTERM; prints the bytes the kernel took each 0.5 s ("T BYTES"),
      then a summary line.

Each mode prints "ready" once its socket is bound. LOG gets one line per
TCP segment received from the other side: "T FLAGS SEQ ACK WIN LEN", T in
seconds since start, FLAGS from "FSRPAU". SIGTERM ends every mode; the
summary goes to stdout. Sends only on IF, only to the addresses it is
given or that ask it by ARP.
"""
import ipaddress
import os
import random
import select
import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
PACKET_OUTGOING = 4
SOL_PACKET = 263
PACKET_IGNORE_OUTGOING = 23
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

stop = False


def on_term(_sig, _frame):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)
signal.signal(signal.SIGINT, on_term)


def die(msg):
    print(f"hostile_peer: {msg}", file=sys.stderr)
    sys.exit(1)


def mac_bytes(s):
    return bytes(int(x, 16) for x in s.split(":"))


def if_mac(ifname):
    with open(f"/sys/class/net/{ifname}/address") as f:
        return mac_bytes(f.read().strip())


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(src, dst, proto, payload, ident=0):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0x4000, 64, proto, 0, src, dst)
    return hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:] + payload


def tcp_seg(src, dst, sport, dport, seq, ack, flags, win, opts=b"", data=b""):
    off = (20 + len(opts)) // 4
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, off << 4, flags, win, 0, 0) + opts
    pseudo = struct.pack("!4s4sBBH", src, dst, 0, 6, len(hdr) + len(data))
    c = csum(pseudo + hdr + data)
    return hdr[:16] + struct.pack("!H", c) + hdr[18:] + data


def eth(dst, src, etype, payload):
    return dst + src + struct.pack("!H", etype) + payload


class Wire:
    """One AF_PACKET socket on IF; frames we sent ourselves are skipped."""

    def __init__(self, ifname, proto=ETH_P_ALL):
        """proto: the EtherType received (ETH_P_ALL: every frame); any is sent."""
        self.ifname = ifname
        self.mac = if_mac(ifname)
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(proto))
        self.sock.bind((ifname, proto))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        try:  # PACKET_IGNORE_OUTGOING (Linux 4.20): our own frames never queue here
            self.sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        except OSError:
            pass

    def send(self, frame):
        self.sock.send(frame)

    def recv(self, timeout):
        """The next frame from the wire, or None after timeout seconds."""
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return None
        frame, addr = self.sock.recvfrom(65536)
        if addr[2] == PACKET_OUTGOING:
            return None
        return frame

    def recv_nowait(self):
        """The next frame, b"" for one of ours to skip, None when none waits."""
        try:
            frame, addr = self.sock.recvfrom(65536, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return None
        if addr[2] == PACKET_OUTGOING:
            return b""
        return frame

    def answer_arp(self, frame, owns):
        """Replies to an ARP request (RFC 826) for an address owns() accepts;
        True if the frame was ARP at all."""
        if len(frame) < 42 or struct.unpack("!H", frame[12:14])[0] != ETH_P_ARP:
            return False
        htype, ptype, hlen, plen, op = struct.unpack("!HHBBH", frame[14:22])
        sha, spa, tpa = frame[22:28], frame[28:32], frame[38:42]
        if htype == 1 and ptype == ETH_P_IP and hlen == 6 and plen == 4 and op == 1 and owns(tpa):
            arp = struct.pack("!HHBBH6s4s6s4s", 1, ETH_P_IP, 6, 4, 2, self.mac, tpa, sha, spa)
            self.send(eth(sha, self.mac, ETH_P_ARP, arp))
        return True


def parse_tcp(frame):
    """(src_mac, src_ip, dst_ip, sport, dport, seq, ack, flags, win, opts, data) of
    an IPv4 TCP frame, or None."""
    if len(frame) < 54 or struct.unpack("!H", frame[12:14])[0] != ETH_P_IP:
        return None
    ip = frame[14:]
    ihl = (ip[0] & 0xF) * 4
    total = struct.unpack("!H", ip[2:4])[0]
    if ip[9] != 6 or total > len(ip):
        return None
    t = ip[ihl:total]
    sport, dport, seq, ack, off, flags, win = struct.unpack("!HHIIBBH", t[:16])
    doff = (off >> 4) * 4
    return frame[6:12], ip[12:16], ip[16:20], sport, dport, seq, ack, flags, win, t[20:doff], t[doff:]


def flag_str(flags):
    return "".join(c for c, b in zip("FSRPAU", (FIN, SYN, RST, PSH, ACK, 0x20)) if flags & b) or "-"


class Log:
    def __init__(self, path):
        self.f = open(path, "w", buffering=1)
        self.t0 = time.monotonic()

    def seg(self, seq, ack, flags, win, n):
        self.f.write(f"{time.monotonic() - self.t0:.6f} {flag_str(flags)} {seq} {ack} {win} {n}\n")

    def note(self, text):
        self.f.write(f"{time.monotonic() - self.t0:.6f} # {text}\n")


def ready():
    print("ready", flush=True)


def serve(ifname, own_ip, port, log_path, on_segment):
    """The loop of the two single-peer modes: ARP for own_ip, and every TCP
    segment to own_ip:port logged and handed to on_segment(wire, seg)."""
    own = socket.inet_aton(own_ip)
    w = Wire(ifname)
    log = Log(log_path)
    ready()
    while not stop:
        f = w.recv(0.2)
        if f is None or w.answer_arp(f, lambda a: a == own):
            continue
        s = parse_tcp(f)
        if s is None or s[2] != own or s[4] != port:
            continue
        log.seg(s[5], s[6], s[7], s[8], len(s[10]))
        on_segment(w, log, s)


def synsyn(ifname, own_ip, port, log_path):
    isn = random.getrandbits(32)
    syns = 0

    def on_segment(w, log, s):
        nonlocal syns
        mac, src, dst, sport, dport, seq, ack, flags, win, opts, data = s
        if flags & SYN and not flags & ACK:
            # A bare SYN back: same ports, our ISN, no ACK bit.
            w.send(eth(mac, w.mac, ETH_P_IP, ipv4(dst, src, 6, tcp_seg(dst, src, dport, sport, isn, 0, SYN, 65535))))
            syns += 1
            log.note("sent a bare SYN")

    serve(ifname, own_ip, port, log_path, on_segment)
    print(f"synsyn: answered {syns} SYNs with a bare SYN")


def zerowin(ifname, own_ip, port, window, log_path):
    st = {"isn": random.getrandbits(32), "rcv_nxt": None, "buffered": 0, "silent": False}

    def on_segment(w, log, s):
        mac, src, dst, sport, dport, seq, ack, flags, win, opts, data = s
        if st["silent"]:
            return

        def reply(seq_, ack_, fl, wnd, o=b""):
            w.send(eth(mac, w.mac, ETH_P_IP, ipv4(dst, src, 6, tcp_seg(dst, src, dport, sport, seq_, ack_, fl, wnd, o))))

        if flags & SYN and not flags & ACK:
            st["rcv_nxt"] = (seq + 1) & 0xFFFFFFFF
            reply(st["isn"], st["rcv_nxt"], SYN | ACK, window, struct.pack("!BBH", 2, 4, 1460))
            return
        if st["rcv_nxt"] is None or not data or seq != st["rcv_nxt"]:
            return
        room = window - st["buffered"]
        take = min(room, len(data))
        st["buffered"] += take
        st["rcv_nxt"] = (st["rcv_nxt"] + take) & 0xFFFFFFFF
        left = window - st["buffered"]
        reply((st["isn"] + 1) & 0xFFFFFFFF, st["rcv_nxt"], ACK, left)
        if left == 0:
            # Everything acknowledged, window 0: and now we vanish.
            st["silent"] = True
            log.note("window 0 advertised; silent from now on")
            print("silent", flush=True)

    serve(ifname, own_ip, port, log_path, on_segment)
    print(f"zerowin: {st['buffered']} bytes taken, then silent: {st['silent']}")


def flood(ifname, dst_ip, dst_mac, port, src_net, seconds, max_count, pps=0):
    net = ipaddress.ip_network(src_net)
    base, size = int(net.network_address), net.num_addresses
    # It receives only ARP: the SYN,ACKs coming back are not its business,
    # and copying them all to this socket would halve the flood.
    w = Wire(ifname, ETH_P_ARP)
    w.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    dst = socket.inet_aton(dst_ip)
    dmac = mac_bytes(dst_mac)
    rnd = random.Random(int.from_bytes(os.urandom(8), "little"))
    # A SYN with MSS 1460 like any host's, from a random source of the range;
    # frames are built ahead in a pool so that the loop only sends.
    pool = []
    for i in range(65536):
        src = struct.pack("!I", base + rnd.randrange(1, size - 1))
        seg = tcp_seg(src, dst, rnd.randrange(1024, 65535), port, rnd.getrandbits(32), 0, SYN, 64240,
                      struct.pack("!BBH", 2, 4, 1460))
        pool.append(eth(dmac, w.mac, ETH_P_IP, ipv4(src, dst, 6, seg, ident=i & 0xFFFF)))
    owns = lambda a: base < struct.unpack("!I", a)[0] < base + size - 1  # noqa: E731
    ready()
    sent = arps = send_errors = 0
    t0 = time.monotonic()
    end = t0 + seconds
    while not stop and sent < max_count:
        for fr in pool[sent % len(pool):sent % len(pool) + 64]:
            try:
                w.send(fr)
                sent += 1
            except OSError:  # the device's queue is full: count it, go on
                send_errors += 1
        # Answer whatever ARP requests for the range came in meanwhile (up
        # to two per SYN sent: a request and its retry).
        for _ in range(128):
            f = w.recv_nowait()
            if f is None:
                break
            if f and w.answer_arp(f, owns):
                arps += 1
        if pps:  # keep to the rate: sleep until the next batch is due
            ahead = t0 + sent / pps - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        if sent // 10000 != (sent - 64) // 10000:
            print(f"sent {sent}", flush=True)
        if time.monotonic() > end:
            break
    dt = time.monotonic() - t0
    print(f"flood: {sent} SYNs in {dt:.2f} s ({sent / dt:.0f}/s), {send_errors} send errors,"
          f" {arps} ARP frames seen; stopped by {'signal' if stop else 'limit'}", flush=True)


def connects(host, port, n):
    lat, ok1, ok, echoed = [], 0, 0, 0
    msg = bytes(range(64))
    tried = 0
    for _ in range(n):
        if tried - ok >= 20:  # the verdict is in; a broken server would take minutes
            break
        tried += 1
        t0 = time.monotonic()
        try:
            c = socket.create_connection((host, port), timeout=1.5)
        except OSError:
            continue
        dt = time.monotonic() - t0
        lat.append(dt)
        ok += 1
        ok1 += dt <= 1.0
        try:
            c.settimeout(3)
            c.sendall(msg)
            got = b""
            while len(got) < len(msg):
                b = c.recv(len(msg) - len(got))
                if not b:
                    break
                got += b
            echoed += got == msg
        except OSError:
            pass
        c.close()
    lat.sort()

    def pct(p):
        return lat[min(len(lat) - 1, int(p * len(lat)))] * 1e3 if lat else float("nan")

    print(f"connects: {tried} tried of {n}, {ok1} connected within 1 s, {ok} at all, {echoed} echoes whole;"
          f" connect latency p50 {pct(0.5):.1f} ms, p99 {pct(0.99):.1f} ms, max {(lat[-1] * 1e3 if lat else 0):.1f} ms",
          flush=True)


def stream(host, port):
    c = socket.create_connection((host, port), timeout=5)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c.setblocking(False)
    block = os.urandom(64 << 10)
    sent = got = 0
    last, last_got = time.time(), 0
    ready()
    while not stop:
        want_w = sent - got < (1 << 20)
        r, w, _ = select.select([c], [c] if want_w else [], [], 0.05)
        if w:
            try:
                sent += c.send(block[sent % len(block):] if sent % len(block) else block)
            except BlockingIOError:
                pass
        if r:
            try:
                b = c.recv(1 << 20)
            except BlockingIOError:
                b = None
            if b is not None:
                if not b:
                    die("stream: the server closed the connection")
                off = got % len(block)
                exp = (block[off:] + block * (len(b) // len(block) + 2))[:len(b)]
                if b != exp:
                    die(f"stream: echoed byte {got} onwards is wrong")
                got += len(b)
        now = time.time()
        if now - last >= 0.25:
            print(f"{now:.3f} {got - last_got}", flush=True)
            last, last_got = now, got
    c.close()


def reader(host, port, n):
    socks = []
    for _ in range(n):
        c = socket.create_connection((host, port), timeout=5)
        c.setblocking(False)
        socks.append(c)
    block = os.urandom(64 << 10)
    total = last_total = 0
    last = time.time()
    ready()
    while not stop:
        _, w, _ = select.select([], socks, [], 0.1)
        for c in w:
            try:
                total += c.send(block)
            except BlockingIOError:
                pass
            except OSError as e:
                die(f"reader: a connection failed: {e}")
        now = time.time()
        if now - last >= 0.5:
            print(f"{now:.3f} {total - last_total}", flush=True)
            last, last_total = now, total
    print(f"reader: {n} connections sent {total} bytes and read none", flush=True)


def main(argv):
    if len(argv) < 2:
        die(__doc__)
    mode, a = argv[1], argv[2:]
    try:
        if mode == "synsyn" and len(a) == 4:
            synsyn(a[0], a[1], int(a[2]), a[3])
        elif mode == "zerowin" and len(a) == 5:
            zerowin(a[0], a[1], int(a[2]), int(a[3]), a[4])
        elif mode == "flood" and len(a) in (7, 8):
            flood(a[0], a[1], a[2], int(a[3]), a[4], float(a[5]), int(a[6]), int(a[7]) if len(a) == 8 else 0)
        elif mode == "connects" and len(a) == 3:
            connects(a[0], int(a[1]), int(a[2]))
        elif mode == "stream" and len(a) == 2:
            stream(a[0], int(a[1]))
        elif mode == "reader" and len(a) == 3:
            reader(a[0], int(a[1]), int(a[2]))
        else:
            die("usage: see the top of this file")
    except OSError as e:
        die(f"{mode}: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
