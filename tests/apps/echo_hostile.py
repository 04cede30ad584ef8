"""demi-echo's server under hostile clients, on catnap over 127.0.0.1.

1. Slow readers: 20 clients send as much as they can (16 MiB each at most)
   and never read their echoes. Each may hold only its own TCP windows and
   --max-pending bytes of the server's heap: the server's peak resident
   memory (VmHWM; the heap is mapped without huge pages, so its pages
   become resident as they are used) must grow by less than 20 times a
   bound, a legitimate demi-echo client must complete its echoes meanwhile,
   and the heap (demi_get_stats, the "stats" line SIGUSR1 asks for) must
   come back once the 20 are gone.
2. Descriptors exhausted: the server runs with RLIMIT_NOFILE 64 and 100
   connections arrive. It must stay up, keep echoing on a connection it had
   before, log at most about one line a second, and accept again once the
   descriptors are free.

Nothing here waits for a guessed time: conditions are polled with generous
deadlines. Stopped by the PID this test started. Exit 0 pass, 1 fail.
"""

import os
import resource
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
ATTACKERS = 20
ATTACK_BYTES = 16 << 20
MAX_PENDING = 256 << 10  # demi-echo's default --max-pending
# What one non-reading connection may hold of the server's heap: its
# --max-pending bytes and the one popped array (64 KiB on catnap) that
# crosses the bound, doubled: the heap's blocks are powers of two, and a
# popped array may fill little more than half of its block.
PER_CONN_BOUND = 2 * (MAX_PENDING + (64 << 10))
# Of its resident memory (the heap's pages, and catnap's bookkeeping of the
# waiting pushes, in malloc's memory): a looser bound, as the old server
# grew by 18 MB per connection here.
PER_CONN_RSS = 1 << 20
# An idle server's heap: catnap's spare receive buffer (64 KiB) and little else.
IDLE_HEAP = 256 << 10


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def build_dir():
    b = os.environ.get("DEMI_BUILD", "build")
    if not os.path.isabs(b):
        b = os.path.abspath(b) if os.path.isdir(b) else os.path.join(REPO, b)
    return b


def echo_bin():
    exe = os.path.join(build_dir(), "demi-echo")
    check(os.access(exe, os.X_OK), f"{exe} not built")
    return exe


def env():
    e = dict(os.environ)
    e["LIBOS"] = "catnap"
    e["HUGEPAGES"] = "off"
    return e


class Server:
    def __init__(self, nofile=None):
        self.err = tempfile.TemporaryFile()
        pre = None
        if nofile:
            def pre():
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        self.proc = subprocess.Popen([echo_bin(), "server", "--addr", "127.0.0.1:0"], stdout=subprocess.PIPE,
                                     stderr=self.err, env=env(), preexec_fn=pre)
        line = self.proc.stdout.readline().decode().strip()
        if not line.startswith("ready 127.0.0.1:"):
            self.proc.kill()
            fail(f"demi-echo server did not print ready (got {line!r}): {self.stderr()}")
        self.port = int(line.rsplit(":", 1)[1])

    def stderr(self):
        self.err.seek(0)
        return self.err.read().decode(errors="replace")

    def alive(self):
        return self.proc.poll() is None

    def mem(self, field):
        """VmRSS or VmHWM (the most resident) of the server, in bytes."""
        check(self.alive(), f"the server died (status {self.proc.poll()}): {self.stderr()[-2000:]}")
        with open(f"/proc/{self.proc.pid}/status") as f:
            for ln in f:
                if ln.startswith(field + ":"):
                    return int(ln.split()[1]) * 1024
        fail(f"no {field} in /proc/{self.proc.pid}/status")

    def stats(self):
        check(self.alive(), f"the server died (status {self.proc.poll()}): {self.stderr()[-2000:]}")
        self.proc.send_signal(signal.SIGUSR1)
        r, _, _ = select.select([self.proc.stdout], [], [], 60)
        check(r, "no stats line within 60 s of SIGUSR1")
        line = self.proc.stdout.readline().decode().split()
        check(line and line[0] == "stats", f"expected a stats line, got {line!r}")
        return {k: int(v) for k, v in (w.split("=") for w in line[1:])}

    def stop(self):
        if self.alive():
            self.proc.send_signal(signal.SIGINT)
            try:
                rc = self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                fail("the server did not exit within 30 s of SIGINT")
            check(rc == 0, f"the server exited with {rc}: {self.stderr()[-2000:]}")
        else:
            fail(f"the server had exited with {self.proc.returncode}: {self.stderr()[-2000:]}")


def roundtrip(s, n=1000):
    data = os.urandom(n)
    s.sendall(data)
    got = b""
    while len(got) < n:
        b = s.recv(n - len(got))
        check(b, "the server closed a client that reads")
        got += b
    check(got == data, "the echo differs from what was sent")


def run_client(port):
    """A legitimate client: 200 echoes of 1000 bytes, every byte checked."""
    r = subprocess.run([echo_bin(), "client", "--addr", f"127.0.0.1:{port}", "--size", "1000", "--iters", "200",
                        "--warmup", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env(), timeout=300)
    check(r.returncode == 0, f"the legitimate client failed ({r.returncode}): {r.stderr.decode()}")


def slow_readers():
    srv = Server()
    try:
        base_rss = srv.mem("VmRSS")
        socks = []
        for _ in range(ATTACKERS):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", srv.port))
            s.setblocking(False)
            socks.append(s)
        sent = {s: 0 for s in socks}
        chunk = b"x" * 65536
        # Send until every client has sent its share or none can send more:
        # the server stopped reading them. (If the server kept reading, as
        # it did before, they all send their 16 MiB.)
        active = list(socks)
        while active:
            _, w, _ = select.select([], active, [], 3)
            if not w:
                break
            for s in w:
                try:
                    sent[s] += s.send(chunk[:ATTACK_BYTES - sent[s]])
                except BlockingIOError:
                    pass
                if sent[s] >= ATTACK_BYTES:
                    active.remove(s)
        total = sum(sent.values())
        print(f"the {ATTACKERS} non-reading clients sent {total >> 20} MiB "
              f"({min(sent.values()) >> 10}..{max(sent.values()) >> 10} KiB each)")
        run_client(srv.port)
        grew = srv.mem("VmHWM") - base_rss
        print(f"server resident memory grew by {grew} B at most: {grew // ATTACKERS} B per non-reading "
              f"connection (bound {PER_CONN_RSS})")
        check(grew <= ATTACKERS * PER_CONN_RSS,
              f"the non-reading clients pinned {grew} B of the server's memory, over {ATTACKERS} x {PER_CONN_RSS}")
        st = srv.stats()
        print(f"server heap: {st['heap_bytes_in_use']} B in use, peak {st['heap_peak']} B: "
              f"{st['heap_peak'] // ATTACKERS} B per non-reading connection (bound {PER_CONN_BOUND})")
        check(st["heap_peak"] <= ATTACKERS * PER_CONN_BOUND + IDLE_HEAP,
              f"the server's heap reached {st['heap_peak']} B, over {ATTACKERS} x {PER_CONN_BOUND} + {IDLE_HEAP}")
        for s in socks:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        deadline = time.time() + 60
        while time.time() < deadline:
            st = srv.stats()
            if st["connections"] == 0 and st["heap_bytes_in_use"] <= IDLE_HEAP:
                break
            time.sleep(0.1)
        check(st["connections"] == 0, f"{st['connections']} connections left after the clients reset them")
        check(st["heap_bytes_in_use"] <= IDLE_HEAP, f"heap {st['heap_bytes_in_use']} B in use after the clients "
              f"left, over {IDLE_HEAP}")
    finally:
        srv.stop()


def fd_exhaustion():
    srv = Server(nofile=64)
    t0 = time.time()
    flood = []
    try:
        old = socket.create_connection(("127.0.0.1", srv.port), timeout=60)
        roundtrip(old)
        for _ in range(100):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", srv.port))
            flood.append(s)
        deadline = time.time() + 60
        while time.time() < deadline and "Too many open files" not in srv.stderr() and srv.alive():
            time.sleep(0.05)
        check(srv.alive(), f"the server died at the descriptor limit: {srv.stderr()[-2000:]}")
        check("Too many open files" in srv.stderr(), "the server never reported EMFILE")
        # Keep the descriptors exhausted until a second line is logged: more
        # than a second of failed accepts.
        deadline = time.time() + 60
        while time.time() < deadline and srv.stderr().count("accept") < 2 and srv.alive():
            roundtrip(old)
            time.sleep(0.05)
        check(srv.alive(), f"the server died at the descriptor limit: {srv.stderr()[-2000:]}")
        # The old connection is still served while accepts fail.
        for _ in range(20):
            roundtrip(old)
        check(srv.alive(), "the server died")
        for s in flood:
            s.close()
        # Once the descriptors are free, new clients are accepted again.
        deadline = time.time() + 120
        ok = False
        while time.time() < deadline and not ok:
            try:
                with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
                    roundtrip(s)
                    ok = True
            except OSError:
                time.sleep(0.1)
        check(ok, "no new connection was served after the flood ended")
        roundtrip(old)
        old.close()
        elapsed = time.time() - t0
        lines = [ln for ln in srv.stderr().splitlines() if "accept" in ln]
        print(f"{len(lines)} accept log lines in {elapsed:.1f} s")
        check(len(lines) <= elapsed + 2, f"{len(lines)} accept log lines in {elapsed:.1f} s: not rate-limited")
    finally:
        for s in flood:
            s.close()
        srv.stop()


def main():
    slow_readers()
    fd_exhaustion()
    print("ok")


if __name__ == "__main__":
    main()
