"""demi-kv --aof survives kill -9: several rounds of clients doing
acknowledged writes, the server killed with SIGKILL at a random moment,
restarted on the same log, and every acknowledged write checked.

Each client owns a counter (INCR, some clients pipelining 16 at a time) and
a series of keys (SET k:<client>:<n> to a value derived from n). A reply
read by the client is an acknowledgement: after the restart the counter
must be at least the last acknowledged value and at most the number of
INCRs sent, and every acknowledged SET must be there with its value.
Also checks read replies are never delayed past the write replies before
them (each pipelined GET must see its own connection's preceding SET).
demi-kv is started by this test and killed by its PID only.

With --rewrite: a keyspace of 50000 more keys is loaded first and checked
after every restart, and another client sends BGREWRITEAOF every few
milliseconds (one runs nearly all the time), so that the kills land before,
during and after the switch to a rewritten log; every round waits for one
rewrite to finish before its kill, and the restarts report how many kills
left an unfinished rewrite behind.
"""

import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kvtest import Conn, Closed, build_dir, check, fail, main  # noqa: E402

ROUNDS = 6
CLIENTS = 12
REWRITE = "--rewrite" in sys.argv[1:]
PRELOAD = 50000 if REWRITE else 0


class Kv:
    def __init__(self, aof):
        exe = os.path.join(build_dir(), "demi-kv")
        env = dict(os.environ, LIBOS="catnap", HUGEPAGES="off")
        self.errf = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([exe, "--addr", "127.0.0.1:0", "--aof", aof], stdout=subprocess.PIPE,
                                     stderr=self.errf, env=env)
        self.replayed = None
        while True:
            line = self.proc.stdout.readline().decode()
            if not line:
                self.errf.seek(0)
                fail(f"demi-kv exited before ready: {self.errf.read().decode(errors='replace')}")
            if line.startswith("ready 127.0.0.1:"):
                self.port = int(line.strip().rsplit(":", 1)[1])
                break
        # "aof: replayed N commands ..." is on stderr, before "ready".
        self.errf.seek(0)
        for line in self.errf.read().decode(errors="replace").splitlines():
            if line.startswith("aof: replayed "):
                self.replayed = int(line.split()[2])

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=20)
        self.errf.seek(0)
        check(rc == 0, f"demi-kv exited with {rc}: {self.errf.read().decode(errors='replace')}")


class Client:
    """One client's state across rounds."""

    def __init__(self, idx):
        self.idx = idx
        self.pipelined = idx % 3 == 0
        self.sent = 0  # INCRs sent so far (all rounds)
        self.acked = 0  # the last counter value acknowledged
        self.nset = 0  # SETs sent: keys k:idx:0 .. nset-1
        self.acked_sets = 0  # SETs 0 .. acked_sets-1 acknowledged, but for:
        self.unknown = set()  # SETs in flight at a kill: may or may not be there
        self.error = None

    def key(self):
        return f"ctr:{self.idx}"

    def run(self, port, stop):
        try:
            with Conn(port, timeout=30) as c:
                while not stop.is_set():
                    n = 16 if self.pipelined else 1
                    batch = []
                    for _ in range(n):
                        batch.append(Conn.encode("INCR", self.key()))
                        s = self.nset
                        batch.append(Conn.encode("SET", f"k:{self.idx}:{s}", f"v{s * 31}"))
                        batch.append(Conn.encode("GET", f"k:{self.idx}:{s}"))
                        self.nset += 1
                    first_set = self.nset - n
                    self.sent += n
                    c.raw(b"".join(batch))
                    for j in range(n):
                        v = c.read_reply()
                        if not isinstance(v, int):
                            raise AssertionError(f"INCR replied {v!r}")
                        if v <= self.acked:
                            raise AssertionError(f"INCR went back: {v} after {self.acked}")
                        self.acked = v
                        r = c.read_reply()
                        if r != "OK":
                            raise AssertionError(f"SET replied {r!r}")
                        self.acked_sets = first_set + j + 1
                        g = c.read_reply()
                        if g != f"v{(first_set + j) * 31}".encode():
                            raise AssertionError(f"GET after SET on one connection read {g!r}")
        except (Closed, ConnectionResetError, BrokenPipeError, OSError):
            pass  # the server was killed
        except BaseException as e:
            self.error = repr(e)


def verify(port, clients):
    with Conn(port, timeout=30) as c:
        for cl in clients:
            v = c.cmd("GET", cl.key())
            v = int(v) if v is not None else 0
            check(cl.acked <= v <= cl.sent,
                  f"client {cl.idx}: counter {v} after restart, acknowledged {cl.acked}, sent {cl.sent}")
            # The counter holds what the log has: continue from there.
            cl.acked = cl.sent = v
            # Every acknowledged SET is there, in this round's and in
            # earlier rounds'.
            want = [s for s in range(cl.acked_sets) if s not in cl.unknown]
            for s in want:
                c.send("GET", f"k:{cl.idx}:{s}")
            for s in want:
                got = c.read_reply()
                check(got == f"v{s * 31}".encode(),
                      f"client {cl.idx}: acknowledged SET k:{cl.idx}:{s} reads {got!r} after restart")
            # Unacknowledged SETs may or may not be there; the next round
            # numbers its keys after them.
            cl.unknown.update(range(cl.acked_sets, cl.nset))
            cl.acked_sets = cl.nset


def preload(port):
    with Conn(port, timeout=60) as c:
        for base in range(0, PRELOAD, 2000):
            c.raw(b"".join(Conn.encode("SET", f"pre:{j}", f"p{j}") for j in range(base, base + 2000)))
            for _ in range(2000):
                check(c.read_reply() == "OK", "preload SET")


def check_preload(port):
    with Conn(port, timeout=60) as c:
        for base in range(0, PRELOAD, 2000):
            c.raw(b"".join(Conn.encode("GET", f"pre:{j}") for j in range(base, base + 2000)))
            for j in range(base, base + 2000):
                got = c.read_reply()
                check(got == f"p{j}".encode(), f"pre:{j} reads {got!r} after a restart")


class Rewriter:
    """Sends BGREWRITEAOF again and again; counts the ones that started."""

    def __init__(self):
        self.started = 0

    def run(self, port, stop, rng):
        try:
            with Conn(port, timeout=30) as c:
                while not stop.is_set():
                    r = c.cmd("BGREWRITEAOF")
                    if r == "Background append only file rewriting started":
                        self.started += 1
                    time.sleep(rng.uniform(0, 0.02))
        except (Closed, ConnectionResetError, BrokenPipeError, OSError):
            pass


def run():
    tmp = tempfile.mkdtemp(prefix="demi-kv-aof-crash.")
    aof = os.path.join(tmp, "kv.aof")
    rng = random.Random(int(os.environ.get("SEED", str(int(time.time())))))
    clients = [Client(i) for i in range(CLIENTS)]
    total_acked = 0
    kv = None
    try:
        kv = Kv(aof)
        preload(kv.port)
        rewriter = Rewriter()
        done = stale = 0
        for rnd in range(ROUNDS):
            stop = threading.Event()
            threads = [threading.Thread(target=cl.run, args=(kv.port, stop)) for cl in clients]
            if REWRITE:
                threads.append(threading.Thread(target=rewriter.run, args=(kv.port, stop, random.Random(rnd))))
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.3, 1.5))
            if REWRITE:
                # At least one switch in every round, however slow the
                # machine; then the kill lands somewhere in a later rewrite.
                deadline = time.time() + 120
                while True:
                    kv.errf.seek(0)
                    if "aof: rewrite done" in kv.errf.read().decode(errors="replace"):
                        break
                    check(time.time() < deadline, f"round {rnd}: no rewrite finished within 120 s")
                    time.sleep(0.01)
                time.sleep(rng.uniform(0, 0.3))
            kv.kill9()
            stop.set()
            for t in threads:
                t.join(timeout=30)
            for cl in clients:
                check(cl.error is None, f"round {rnd}, client {cl.idx}: {cl.error}")
            acked = sum(cl.acked for cl in clients)
            check(acked > total_acked, f"round {rnd}: no write was acknowledged before the kill")
            total_acked = acked
            kv.errf.seek(0)
            done += kv.errf.read().decode(errors="replace").count("aof: rewrite done")
            kv = Kv(aof)
            check(kv.replayed is not None and kv.replayed > 0, "no 'aof: replayed N commands' line")
            kv.errf.seek(0)
            stale += "left by a rewrite that did not finish" in kv.errf.read().decode(errors="replace")
            print(f"round {rnd}: {acked} INCRs acknowledged in all, {kv.replayed} commands replayed")
            verify(kv.port, clients)
            check_preload(kv.port)
        if REWRITE:
            print(f"{rewriter.started} rewrites started, {done} finished before a kill; {stale} of {ROUNDS} kills "
                  f"left one unfinished")
            check(done >= ROUNDS, "a round without a finished rewrite")
        kv.stop()
    finally:
        if kv and kv.proc.poll() is None:
            kv.kill9()
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)


main(run)
