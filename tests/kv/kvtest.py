"""Helpers for demi-kv's integration tests (tests/kv/*.py): start and stop
demi-kv and redis-server on 127.0.0.1 only, talk RESP over plain sockets,
and report results with the suite's exit codes (0 pass, 77 skip, 1 fail).

Servers are started on port 0 (demi-kv reports the port it got) or on a
free port found by binding port 0 (redis-server), and stopped by the PID
this module started, never by name. Python 3 standard library only.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def skip(msg):
    print(f"SKIP: {msg}", file=sys.stderr)
    sys.exit(77)


def check(cond, msg):
    if not cond:
        fail(msg)


def build_dir():
    b = os.environ.get("DEMI_BUILD", "build")
    if not os.path.isabs(b):
        b = os.path.abspath(b) if os.path.isdir(b) else os.path.join(REPO, b)
    return b


def need_tool(name):
    path = shutil.which(name)
    if not path:
        skip(f"{name} not found (scripts/deps.sh installs it)")
    return path


class Server:
    """A server process we started; stop() ends it by its PID."""

    def __init__(self, proc, port, name, tmpdir=None):
        self.proc, self.port, self.name, self.tmpdir = proc, port, name, tmpdir

    def alive(self):
        return self.proc.poll() is None

    def stop(self, expect_clean=True):
        rc = self.proc.poll()
        if rc is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                rc = self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                fail(f"{self.name} did not exit within 10 s of SIGINT")
        err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
        if self.tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
        if expect_clean and rc != 0:
            fail(f"{self.name} exited with status {rc}; its stderr:\n{err}")
        return rc, err


_servers = []


def stop_all():
    """Stops every server still running (for error paths)."""
    for s in _servers:
        if s.alive():
            s.proc.kill()
            s.proc.wait()
        if s.tmpdir:
            shutil.rmtree(s.tmpdir, ignore_errors=True)


def start_kv(extra_env=None):
    exe = os.path.join(build_dir(), "demi-kv")
    if not os.access(exe, os.X_OK):
        fail(f"{exe} not built")
    env = dict(os.environ)
    env.setdefault("LIBOS", "catnap")
    env.setdefault("HUGEPAGES", "off")
    if extra_env:
        env.update(extra_env)
    proc = subprocess.Popen([exe, "--addr", "127.0.0.1:0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    line = proc.stdout.readline().decode().strip()
    if not line.startswith("ready 127.0.0.1:"):
        proc.kill()
        proc.wait()
        fail(f"demi-kv did not print 'ready 127.0.0.1:PORT' (got {line!r}): "
             f"{proc.stderr.read().decode(errors='replace')}")
    s = Server(proc, int(line.rsplit(":", 1)[1]), "demi-kv")
    _servers.append(s)
    return s


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis():
    exe = need_tool("redis-server")
    for _ in range(5):
        port = free_port()
        tmp = tempfile.mkdtemp(prefix="demi-kv-redis.")
        proc = subprocess.Popen(
            [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--databases", "1", "--dir", tmp, "--daemonize", "no", "--logfile", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 120  # a hang guard: a loaded machine starts it late
        while time.time() < deadline and proc.poll() is None:
            try:
                with Conn(port) as c:
                    if c.cmd("PING") == "PONG":
                        s = Server(proc, port, "redis-server", tmp)
                        _servers.append(s)
                        return s
            except OSError:
                time.sleep(0.05)
        proc.kill()
        proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    fail("could not start redis-server on a free port")


def cmd(*args):
    """One command as a RESP array of bulk strings: bytes-like arguments as
    they are, anything else (str, int, float) as its text in UTF-8."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if not isinstance(a, (bytes, bytearray, memoryview)):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def cmds(*lines):
    """Several commands, each a sequence of arguments, as one byte string."""
    return b"".join(cmd(*line) for line in lines)


class RespError(Exception):
    pass


class Closed(Exception):
    pass


class Conn:
    """A RESP2 client over a plain socket: cmd() sends one command and reads
    its reply; send()/read_reply() pipeline; raw() sends bytes as they are."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()  # appended in place: large replies stay linear

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def close(self):
        self.sock.close()

    encode = staticmethod(cmd)

    def raw(self, data):
        self.sock.sendall(data)

    def send(self, *args):
        self.sock.sendall(self.encode(*args))

    def _fill(self):
        b = self.sock.recv(1 << 20)
        if not b:
            raise Closed()
        self.buf += b

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return line
            self._fill()

    def read_reply(self):
        """Decoded reply: str (status), RespError, int, bytes/None (bulk), list."""
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return RespError(rest.decode(errors="replace"))
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            data = bytes(self.buf[:n])
            del self.buf[:n + 2]
            return data
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.read_reply() for _ in range(n)]
        raise AssertionError(f"bad reply line {line!r}")

    def read_raw(self, n):
        """Exactly n reply bytes, undecoded."""
        while len(self.buf) < n:
            self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_until_close(self, timeout=5):
        """Every byte until the server closes the connection."""
        self.sock.settimeout(timeout)
        out = bytes(self.buf)
        self.buf = bytearray()
        while True:
            try:
                b = self.sock.recv(1 << 16)
            except socket.timeout:
                raise AssertionError(f"the server did not close the connection; got {out!r}")
            if not b:
                return out
            out += b

    def cmd(self, *args):
        self.send(*args)
        return self.read_reply()


def read_value(c, k, t):
    """The contents of key K of type T (what TYPE said) on connection C:
    order-independent where the type has no order (sets, hashes), a zset
    as ZRANGE WITHSCORES gives it, None for "none"; fails on another type.
    Shared by the tests that compare whole keyspaces."""
    if t == "string":
        return c.cmd("GET", k)
    if t == "list":
        return c.cmd("LRANGE", k, 0, -1)
    if t == "set":
        return sorted(c.cmd("SMEMBERS", k))
    if t == "hash":
        r = c.cmd("HGETALL", k)
        return sorted(zip(r[0::2], r[1::2]))
    if t == "zset":
        return c.cmd("ZRANGE", k, 0, -1, "WITHSCORES")
    if t == "none":
        return None
    fail(f"key {k!r} of unexpected type {t!r}")


def main(fn):
    """Runs fn() and maps failures to exit codes, stopping our servers."""
    try:
        fn()
    except SystemExit:
        stop_all()
        raise
    except BaseException:
        import traceback
        traceback.print_exc()
        stop_all()
        sys.exit(1)
    stop_all()
    print("ok")
    sys.exit(0)
