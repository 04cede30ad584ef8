"""demi-kv --aof on a full file system: a 32 MiB ext4 image that this test
makes and loop-mounts (root; e2fsprogs), with a filler file taking part of
it. 64 KiB SETs are sent until one is answered with -MISCONF (the append
failed with ENOSPC): the server must stay up, keep answering reads, refuse
further writes with the same error, and report aof_last_write_status:err.
The filler is then deleted: within a few seconds the failed records are
appended again (the retry) and writes are accepted. After a restart on the
same log every acknowledged SET is there. Unmounted and removed afterwards,
whatever happens; demi-kv is stopped by its PID only.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kvtest import Conn, RespError, build_dir, check, fail, main, skip  # noqa: E402

VALUE = 64 * 1024


def sh(*cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return r.returncode, r.stdout.decode(errors="replace")


class Kv:
    def __init__(self, aof):
        exe = os.path.join(build_dir(), "demi-kv")
        env = dict(os.environ, LIBOS="catnap", HUGEPAGES="off")
        self.errf = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([exe, "--addr", "127.0.0.1:0", "--aof", aof], stdout=subprocess.PIPE,
                                     stderr=self.errf, env=env)
        while True:
            line = self.proc.stdout.readline().decode()
            if not line:
                fail(f"demi-kv exited before ready: {self.err()}")
            if line.startswith("ready 127.0.0.1:"):
                self.port = int(line.strip().rsplit(":", 1)[1])
                break

    def err(self):
        self.errf.seek(0)
        return self.errf.read().decode(errors="replace")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=30)
        check(rc == 0, f"demi-kv exited with {rc}: {self.err()}")


def value(i):
    return (b"%08d" % i) * (VALUE // 8)


def run():
    if os.geteuid() != 0:
        skip("needs root to mount a loop device")
    tmp = tempfile.mkdtemp(prefix="demi-kv-aof-enospc.")
    img, mnt = os.path.join(tmp, "fs.img"), os.path.join(tmp, "mnt")
    os.mkdir(mnt)
    mounted = False
    kv = None
    try:
        rc, out = sh("sh", "-c", f"truncate -s 32M '{img}' && mkfs.ext4 -q -F -m 0 '{img}'")
        check(rc == 0, f"mkfs.ext4 failed (scripts/deps.sh installs e2fsprogs): {out}")
        rc, out = sh("mount", "-o", "loop", img, mnt)
        check(rc == 0, f"cannot loop-mount the image (no loop devices?): {out}")
        mounted = True
        filler = os.path.join(mnt, "filler")
        with open(filler, "wb") as f:
            f.write(b"\0" * (8 << 20))
            os.fsync(f.fileno())
        aof = os.path.join(mnt, "kv.aof")
        kv = Kv(aof)
        acked, misconf = [], None
        with Conn(kv.port, timeout=60) as c:
            for i in range(2000):
                r = c.cmd("SET", f"k{i}", value(i))
                if r == "OK":
                    acked.append(i)
                    continue
                check(isinstance(r, RespError), f"SET k{i} replied {r!r}")
                misconf = str(r)
                break
            check(misconf is not None, "2000 SETs of 64 KiB fitted in a 32 MiB file system")
            check(misconf == "MISCONF Errors writing to the AOF file: No space left on device",
                  f"the failed write got {misconf!r}")
            check(len(acked) > 10, f"only {len(acked)} SETs were acknowledged before ENOSPC")
            print(f"{len(acked)} SETs acknowledged, then: -{misconf}")
            # Up, reads work, writes are refused while the log fails.
            check(c.cmd("GET", f"k{acked[-1]}") == value(acked[-1]), "a read after the failure")
            r = c.cmd("SET", "refused", "x")
            check(isinstance(r, RespError) and str(r).startswith("MISCONF"), f"a write after the failure: {r!r}")
            check(c.cmd("GET", "refused") is None, "a refused write changed the keyspace")
            info = c.cmd("INFO", "persistence").decode()
            check("aof_last_write_status:err\r\n" in info, f"INFO after the failure: {info!r}")
            # Room again: the retry (every second) appends what failed.
            os.unlink(filler)
            deadline = time.time() + 15
            while True:
                r = c.cmd("SET", "after", "recovered")
                if r == "OK":
                    break
                check(isinstance(r, RespError) and str(r).startswith("MISCONF"), f"SET after freeing space: {r!r}")
                check(time.time() < deadline, "writes still refused 15 s after space was freed")
                time.sleep(0.2)
            info = c.cmd("INFO", "persistence").decode()
            check("aof_last_write_status:ok\r\n" in info, f"INFO after the retry: {info!r}")
        check("append failed: No space left on device" in kv.err(), f"no message on stderr: {kv.err()!r}")
        kv.stop()
        kv = Kv(aof)
        with Conn(kv.port, timeout=60) as c:
            for i in acked:
                c.send("GET", f"k{i}")
            for i in acked:
                check(c.read_reply() == value(i), f"acknowledged SET k{i} lost after the restart")
            check(c.cmd("GET", "after") == b"recovered", "the write after the recovery")
            check(c.cmd("GET", "refused") is None, "a refused write came back")
        kv.stop()
        kv = None
    finally:
        if kv and kv.proc.poll() is None:
            kv.proc.kill()
            kv.proc.wait()
        if mounted and sh("umount", mnt)[0] != 0:
            sh("umount", "-l", mnt)
        shutil.rmtree(tmp, ignore_errors=True)


main(run)
