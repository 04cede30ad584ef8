"""demi-kv's server and connection commands over 127.0.0.1 on catnap:
CLIENT LIST/INFO/KILL, SLOWLOG, MONITOR (a second client sees the first's
commands; a monitor that does not read is disconnected at its output
limit), redis-cli --stat for a few refreshes, and SHUTDOWN: the server
exits 0, and with --aof every acknowledged write is there after a restart.

Every wait is bounded by bytes or replies, not by the machine's speed; the
timeouts only turn a hang into a failure.
"""

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

from kvtest import Conn, RespError, build_dir, check, fail, main

FIELDS = ["id", "addr", "laddr", "fd", "name", "age", "idle", "flags", "db", "sub", "psub", "ssub", "multi",
          "qbuf", "qbuf-free", "argv-mem", "multi-mem", "rbs", "rbp", "obl", "oll", "omem", "tot-mem", "events",
          "cmd", "user", "redir", "resp"]


class Kv:
    """demi-kv with arguments of our own; stopped by its PID."""

    def __init__(self, *args):
        env = dict(os.environ, LIBOS=os.environ.get("LIBOS", "catnap"), HUGEPAGES="off")
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([os.path.join(build_dir(), "demi-kv"), "--addr", "127.0.0.1:0", *args],
                                     stdout=subprocess.PIPE, stderr=self.err, env=env)
        line = self.proc.stdout.readline().decode().strip()
        if not line.startswith("ready 127.0.0.1:"):
            self.proc.kill()
            self.proc.wait()
            fail(f"demi-kv did not become ready: {line!r} {self.stderr()}")
        self.port = int(line.rsplit(":", 1)[1])

    def stderr(self):
        self.err.seek(0)
        return self.err.read().decode(errors="replace")

    def wait(self, what):
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            fail(f"demi-kv did not exit after {what}")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def parse_line(line):
    out = {}
    for kv in line.split(" "):
        k, _, v = kv.partition("=")
        out[k] = v
    return out, [kv.partition("=")[0] for kv in line.split(" ")]


def client_list(c, *args):
    text = c.cmd("CLIENT", "LIST", *args)
    check(isinstance(text, bytes) and (text == b"" or text.endswith(b"\n")), f"CLIENT LIST: {text!r}")
    return [parse_line(line) for line in text.decode().split("\n") if line]


def closed_by_server(conn):
    """True once the server closed the connection (EOF or reset)."""
    try:
        conn.sock.settimeout(30)
        while True:
            b = conn.sock.recv(1 << 16)
            if not b:
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_client(kv):
    a, b, me = Conn(kv.port), Conn(kv.port), Conn(kv.port)
    check(a.cmd("CLIENT", "SETNAME", "alpha") == "OK", "SETNAME")
    ida, idb = a.cmd("CLIENT", "ID"), b.cmd("CLIENT", "ID")
    b.cmd("PING")
    rows = client_list(me)
    check(len(rows) == 3, f"CLIENT LIST: {len(rows)} clients, want 3")
    ids = [int(f["id"]) for f, _ in rows]
    check(ids == sorted(ids), f"CLIENT LIST not in the order of connection: {ids}")
    for fields, names in rows:
        check(names == FIELDS, f"CLIENT LIST fields {names}, want Redis 7.0's {FIELDS}")
    by_id = {int(f["id"]): f for f, _ in rows}
    check(by_id[ida]["name"] == "alpha" and by_id[ida]["cmd"] == "client|id", f"client a: {by_id[ida]}")
    check(by_id[idb]["cmd"] == "ping" and by_id[idb]["flags"] == "N", f"client b: {by_id[idb]}")
    aport = a.sock.getsockname()[1]
    check(by_id[ida]["addr"] == f"127.0.0.1:{aport}", f"client a's addr {by_id[ida]['addr']}, port {aport}")
    check(by_id[ida]["laddr"] == f"127.0.0.1:{kv.port}", f"laddr {by_id[ida]['laddr']}")
    mine = [f for f, _ in rows if f["cmd"] == "client|list"]
    check(len(mine) == 1, "the caller's own line shows cmd=client|list")
    info, names = parse_line(me.cmd("CLIENT", "INFO").decode().rstrip("\n"))
    check(names == FIELDS and info["id"] == mine[0]["id"] and info["cmd"] == "client|info", f"CLIENT INFO {info}")
    sel = client_list(me, "ID", str(idb), "999999", str(ida))
    check([int(f["id"]) for f, _ in sel] == [idb, ida], f"CLIENT LIST ID: {sel}")
    check(client_list(me, "TYPE", "pubsub") == [], "CLIENT LIST TYPE pubsub")

    # The old form, by address: b goes, a stays.
    check(me.cmd("CLIENT", "KILL", by_id[idb]["addr"]) == "OK", "CLIENT KILL addr")
    check(closed_by_server(b), "the client killed by address was not disconnected")
    check(a.cmd("PING") == "PONG", "a bystander was disconnected")
    check(isinstance(me.cmd("CLIENT", "KILL", by_id[idb]["addr"]), RespError), "a killed address is still found")
    # The new form: ID, and SKIPME no for oneself (the reply comes first).
    check(me.cmd("CLIENT", "KILL", "ID", str(ida)) == 1, "CLIENT KILL ID")
    check(closed_by_server(a), "the client killed by id was not disconnected")
    check(me.cmd("CLIENT", "KILL", "ID", str(ida)) == 0, "CLIENT KILL ID of a gone client")
    other = Conn(kv.port)
    other.cmd("PING")
    check(me.cmd("CLIENT", "KILL", "SKIPME", "no") == 2, "CLIENT KILL SKIPME no: want both clients")
    check(closed_by_server(me) and closed_by_server(other), "SKIPME no: the clients were not disconnected")


def test_slowlog(kv):
    c = Conn(kv.port)
    check(c.cmd("CONFIG", "SET", "slowlog-log-slower-than", "0") == "OK", "CONFIG SET slowlog-log-slower-than")
    c.cmd("CLIENT", "SETNAME", "slow")
    c.cmd("SLOWLOG", "RESET")
    t0 = int(time.time())
    c.cmd("SET", "k", "v")
    e = c.cmd("SLOWLOG", "GET", "1")
    check(len(e) == 1 and len(e[0]) == 6, f"SLOWLOG GET 1: {e}")
    eid, ts, dur, argv, addr, name = e[0]
    check(argv == [b"SET", b"k", b"v"] and name == b"slow", f"SLOWLOG entry {e[0]}")
    check(addr == f"127.0.0.1:{c.sock.getsockname()[1]}".encode(), f"SLOWLOG addr {addr}")
    check(t0 - 1 <= ts <= int(time.time()) + 1 and dur >= 0, f"SLOWLOG time {ts} duration {dur}")
    # The reset and the two commands since are there, newest first.
    all_ = c.cmd("SLOWLOG", "GET", "-1")
    check([x[3][0] for x in all_] == [b"SLOWLOG", b"SET", b"SLOWLOG"], f"SLOWLOG GET -1: {all_}")
    check(all_[0][0] == eid + 1 and all_[2][0] == eid - 1, "SLOWLOG ids")
    # Long arguments cut at 128 bytes, at most 32 arguments, passwords hidden.
    c.cmd("ECHO", "x" * 200)
    c.cmd("DEL", *[f"k{i}" for i in range(40)])
    c.cmd("AUTH", "secret")
    got = c.cmd("SLOWLOG", "GET", "3")
    check(got[0][3] == [b"AUTH", b"(redacted)"], f"AUTH in the slow log: {got[0][3]}")
    dl = got[1][3]
    check(len(dl) == 32 and dl[:2] == [b"DEL", b"k0"] and dl[31] == b"... (10 more arguments)",
          f"a 41-argument command in the slow log: {dl}")
    check(got[2][3] == [b"ECHO", b"x" * 128 + b"... (72 more bytes)"], f"a long argument: {got[2][3]}")
    check(c.cmd("CONFIG", "SET", "slowlog-max-len", "2") == "OK" and c.cmd("SLOWLOG", "LEN") == 2,
          "slowlog-max-len trims the log")
    c.cmd("CONFIG", "SET", "slowlog-log-slower-than", "-1")
    c.cmd("SLOWLOG", "RESET")
    check(c.cmd("SLOWLOG", "LEN") == 0 and c.cmd("SLOWLOG", "GET") == [], "SLOWLOG RESET, logging off")
    c.cmd("CONFIG", "SET", "slowlog-max-len", "128")
    c.cmd("CONFIG", "SET", "slowlog-log-slower-than", "10000")
    c.close()


def test_monitor(kv):
    m, c = Conn(kv.port), Conn(kv.port)
    check(m.cmd("MONITOR") == "OK", "MONITOR")
    c.cmd("SET", "k", b"a\x00b\"\\\n\xff")
    c.cmd("CONFIG", "GET", "hz")  # an admin command: not shown
    c.cmd("GET", "k")
    cport = c.sock.getsockname()[1]
    head = r"^\d+\.\d{6} \[0 127\.0\.0\.1:%d\] " % cport
    line = m.read_reply()
    check(re.match(head + re.escape(r'"SET" "k" "a\x00b\"\\\n\xff"') + "$", line), f"MONITOR line {line!r}")
    line = m.read_reply()
    check(re.match(head + '"GET" "k"$', line), f"MONITOR line after an admin command: {line!r}")
    check(isinstance(m.cmd("GET", "k"), RespError), "a monitor read the keyspace")
    rows = client_list(c)
    check(sum(f["flags"] == "O" for f, _ in rows) == 1, "CLIENT LIST shows the monitor with flags=O")
    check(m.cmd("RESET") == "RESET", "RESET")
    check(m.cmd("GET", "k") == b"a\x00b\"\\\n\xff", "after RESET the client is no longer a monitor")
    m.close()

    # A monitor that does not read is disconnected at its output limit.
    c.cmd("CONFIG", "SET", "client-output-buffer-limit", "normal 1mb 256kb 1")
    before = stat(c, "client_output_buffer_limit_disconnections")
    lazy = socket.socket()
    lazy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    lazy.connect(("127.0.0.1", kv.port))
    lazy.sendall(b"MONITOR\r\n")
    c.cmd("PING")  # MONITOR ran before this (one at a time per server)
    check(client_list(c)[0] is not None, "CLIENT LIST")
    value = b"\x01" * 65536  # four bytes a byte in the monitor's line
    sent = 0
    while sent < 256 and stat(c, "client_output_buffer_limit_disconnections") == before:
        c.cmd("SET", "big", value)
        sent += 1
    check(stat(c, "client_output_buffer_limit_disconnections") > before,
          f"a monitor that does not read was not disconnected after {sent} SETs of 64 KiB")
    check(all(f["flags"] != "O" for f, _ in client_list(c)), "the monitor is still listed")
    lazy.close()
    c.cmd("CONFIG", "SET", "client-output-buffer-limit", "normal 1gb 16mb 60")
    c.close()


def stat(c, field):
    info = c.cmd("INFO", "stats").decode()
    m = re.search(r"^%s:(\d+)" % field, info, re.M)
    check(m, f"INFO stats has no {field}")
    return int(m.group(1))


def test_stat(kv):
    cli = shutil.which("redis-cli")
    if not cli:
        print("redis-cli not found: --stat not checked")
        return
    c = Conn(kv.port)
    c.cmd("FLUSHALL")
    for i in range(7):
        c.cmd("SET", f"stat{i}", "v")
    c.cmd("EXPIRE", "stat0", "1000")
    info = c.cmd("INFO", "keyspace", "clients").decode()
    check("db0:keys=7,expires=1,avg_ttl=0" in info and "blocked_clients:0" in info, f"INFO: {info!r}")
    for sec in ("everything", "all", "default"):
        text = c.cmd("INFO", sec).decode()
        for name in ("Server", "Clients", "Memory", "Persistence", "Stats", "Replication", "CPU", "Cluster", "Keyspace"):
            check(f"# {name}\r\n" in text, f"INFO {sec} has no {name} section")
    proc = subprocess.Popen(["stdbuf", "-oL", cli, "-p", str(kv.port), "--stat", "-i", "0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines = []
    try:
        deadline = time.time() + 60
        while len(lines) < 5 and time.time() < deadline:
            line = proc.stdout.readline().decode()
            if not line:
                break
            lines.append(line.rstrip())
    finally:
        proc.kill()
        proc.wait()
    check(len(lines) == 5 and lines[0].startswith("------- data"), f"redis-cli --stat: {lines}")
    for line in lines[2:]:
        f = line.split()
        # keys, mem, clients, blocked, requests (+delta), connections
        check(len(f) >= 6 and f[0] == "7" and f[3] == "0" and int(f[2]) >= 2, f"redis-cli --stat line {line!r}")
    c.close()


def test_shutdown_plain():
    kv = Kv()
    try:
        c = Conn(kv.port)
        check(c.cmd("SET", "a", "1") == "OK", "SET")
        check(isinstance(c.cmd("SHUTDOWN", "ABORT"), RespError), "SHUTDOWN ABORT")
        c.send("SHUTDOWN", "NOSAVE")
        check(c.read_until_close(timeout=60) == b"", "SHUTDOWN replied")
        rc = kv.wait("SHUTDOWN")
        check(rc == 0, f"demi-kv exited {rc} after SHUTDOWN: {kv.stderr()}")
        check("user requested shutdown" in kv.stderr(), f"no log line for SHUTDOWN: {kv.stderr()}")
    finally:
        kv.kill()


def test_shutdown_aof():
    tmp = tempfile.mkdtemp(prefix="demi-kv-shutdown.")
    path = os.path.join(tmp, "kv.aof")
    kv = Kv("--aof", path)
    try:
        # Writes from several clients, pipelined; every reply read is an
        # acknowledged write. SHUTDOWN comes from another client meanwhile.
        clients = [Conn(kv.port) for _ in range(4)]
        acked = 0
        for round_ in range(50):
            for i, c in enumerate(clients):
                c.raw(b"".join(Conn.encode("INCR", "n") for _ in range(20)))
                c.raw(Conn.encode("SET", f"c{i}", str(round_)))
            for c in clients:
                for _ in range(20):
                    check(isinstance(c.read_reply(), int), "INCR")
                    acked += 1
                check(c.read_reply() == "OK", "SET")
        last = Conn(kv.port)
        last.send("SHUTDOWN")
        check(last.read_until_close(timeout=60) == b"", "SHUTDOWN replied")
        for c in clients:
            check(closed_by_server(c), "a client was not closed by SHUTDOWN")
        rc = kv.wait("SHUTDOWN")
        check(rc == 0, f"demi-kv --aof exited {rc} after SHUTDOWN: {kv.stderr()}")
        check("durable" in kv.stderr(), f"no log line saying the log is durable: {kv.stderr()}")
    finally:
        kv.kill()
    kv = Kv("--aof", path)
    try:
        c = Conn(kv.port)
        n = c.cmd("GET", "n")
        check(n == str(acked).encode(), f"after SHUTDOWN and a restart n is {n}, want the {acked} acknowledged")
        check([c.cmd("GET", f"c{i}") for i in range(4)] == [b"49"] * 4, "the last SETs are lost")
        c.send("SHUTDOWN", "SAVE", "NOW")
        check(c.read_until_close(timeout=60) == b"", "SHUTDOWN SAVE NOW replied")
        check(kv.wait("SHUTDOWN SAVE NOW") == 0, "SHUTDOWN SAVE NOW: exit status")
    finally:
        kv.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def run():
    kv = Kv()
    try:
        test_client(kv)
        test_slowlog(kv)
        test_monitor(kv)
        test_stat(kv)
        check(kv.proc.poll() is None, "demi-kv died")
    finally:
        kv.kill()
    test_shutdown_plain()
    test_shutdown_aof()
    print("CLIENT, SLOWLOG, MONITOR, --stat and SHUTDOWN as Redis")


if __name__ == "__main__":
    main(run)
