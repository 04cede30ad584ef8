#!/usr/bin/env python3
"""Differential test: the same bytes to demi-kv (catnap) and to the real
redis-server 7 (Debian; started here with one database and no persistence,
the configuration demi-kv mirrors), and the reply bytes must be identical,
connection closes included. Covers every command demi-kv implements, their
errors, inline commands and protocol errors. Only replies that must differ
are left out: INFO, COMMAND's command table, CLIENT ID, CONFIG GET beyond
save/appendonly, and KEYS with several matches (the order is the table's).
Run by test_kv_vs_redis.sh."""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kvtest import check, cmd, main, start_kv, start_redis  # noqa: E402

SENTINEL = b"*2\r\n$4\r\nECHO\r\n$13\r\n__sentinel_42\r\n"
SENTINEL_REPLY = b"$13\r\n__sentinel_42\r\n"


CASES = [
    # connection
    b"PING\r\n", b"PING hello\r\n", b"PING a b\r\n", b"ECHO\r\n", b'ECHO "a b"\r\n', cmd("ECHO", b"\x00\xff\r\n"),
    b"SELECT 0\r\n", b"SELECT 1\r\n", b"SELECT -1\r\n", b"SELECT x\r\n", b"SELECT 99999999999\r\n", b"SELECT\r\n",
    b"CLIENT\r\n", b"CLIENT GETNAME\r\n", b"CLIENT SETNAME n1\r\nCLIENT GETNAME\r\n", b'CLIENT SETNAME "a b"\r\n',
    b'CLIENT SETNAME "\\xff"\r\n', b"CLIENT SETNAME\r\n", b"CLIENT GETNAME x\r\n", b"CLIENT NOSUCH\r\n",
    b"client nosuch x y\r\n", b'CLIENT SETNAME ""\r\nCLIENT GETNAME\r\n',
    b"QUIT\r\n", b"QUIT extra args\r\nPING\r\n", b"quit\r\n",
    # strings
    b"SET a 1\r\nGET a\r\nGET missing\r\n", b"SET\r\n", b"SET a\r\n", b"GET\r\n", b"GET a b\r\n",
    cmd("SET", "bin", b"\x00\r\n\xff" * 100) + cmd("GET", "bin") + cmd("STRLEN", "bin"),
    cmd("SET", "big", b"x" * 100000) + cmd("GET", "big") + cmd("STRLEN", "big") + cmd("APPEND", "big", "yz"),
    cmd("GET", "big"),
    b'SET e ""\r\nGET e\r\nSTRLEN e\r\nAPPEND e x\r\nGET e\r\n',
    b"SET k v NX\r\nSET k w NX\r\nSET k w XX\r\nSET nx1 w XX\r\nGET k\r\nEXISTS nx1\r\n",
    b"SET k x GET\r\nSET k y NX GET\r\nSET gx y XX GET\r\nSET gnew z GET\r\nGET k\r\n",
    b"SET k v NX XX\r\n", b"SET k v XX NX\r\n", b"SET k v KEEPTTL EX 1\r\n", b"SET k v EX 1 KEEPTTL\r\n",
    b"SET k v px 100 keepttl\r\n", b"SET k v EX 1 PX 1\r\n", b"SET k v EX\r\n", b"SET k v FOO\r\n",
    b"SET k v EX 0\r\n", b"SET k v PX -5\r\n", b"SET k v EX x\r\n", b"SET k v EX 1.5\r\n",
    b"SET k v EX 9223372036854776\r\n", b"SET k v PX 9223372036854775807\r\n", b"SET k v EXAT 0\r\n",
    b"SET k v EX 10 EX 20\r\nTTL k\r\n", b"SET k v EX 100\r\nSET k w KEEPTTL\r\nTTL k\r\nSET k z\r\nTTL k\r\n",
    b"SET past v EXAT 1\r\nEXISTS past\r\nGET past\r\n", b"SET k v PXAT 99999999999999\r\nTTL k\r\n",
    b"SET k v nx xx\r\n", b"set K V ex 100 nx\r\nTTL K\r\n",
    b"GETSET k new\r\nGETSET nosuch v\r\nGET k\r\nGETSET\r\nGETSET a\r\n",
    b"MSET a 1 b 2 a 3\r\nMGET a b c\r\nMSET a\r\nMSET a b c\r\nMGET\r\n",
    b"DEL a b c a\r\nEXISTS a b\r\nDEL\r\nEXISTS\r\n",
    b"INCR n\r\nINCR n\r\nDECR n\r\nINCRBY n 10\r\nDECRBY n -5\r\nGET n\r\nINCR\r\nINCRBY n\r\n",
    b"INCRBY n x\r\nINCRBY n 1.0\r\nDECRBY n 9223372036854775808\r\nDECRBY n -9223372036854775808\r\n",
    b"SET n 9223372036854775807\r\nINCR n\r\nINCRBY n 1\r\nDECRBY n -1\r\nINCRBY n 0\r\n",
    b"SET n -9223372036854775808\r\nDECR n\r\nDECRBY n 1\r\nINCRBY n -1\r\nINCR n\r\n",
    b'SET n " 1"\r\nINCR n\r\nSET n 01\r\nINCR n\r\nSET n -0\r\nINCR n\r\nSET n +1\r\nINCR n\r\n',
    b"SET n 123456789012345678901\r\nINCR n\r\nSET n abc\r\nDECR n\r\nSET n 10\r\nINCR n\r\n",
    b"APPEND ap a\r\nAPPEND ap bc\r\nGET ap\r\nSTRLEN ap\r\nSTRLEN missing\r\nAPPEND\r\nSTRLEN\r\n",
    # keys and expiry
    b"SET t v\r\nTTL t\r\nPTTL t\r\nTTL missing\r\nPTTL missing\r\nEXPIRE t 100\r\nTTL t\r\nPERSIST t\r\n"
    b"PERSIST t\r\nTTL t\r\nPERSIST missing\r\nEXPIRE missing 10\r\n",
    b"SET b 1\r\nEXPIRE b 100 XX\r\nEXPIRE b 100 NX\r\nEXPIRE b 50 NX\r\nTTL b\r\nEXPIRE b 50 GT\r\n"
    b"EXPIRE b 200 GT\r\nEXPIRE b 300 LT\r\nEXPIRE b 150 LT\r\nTTL b\r\nPERSIST b\r\nEXPIRE b 10 GT\r\n"
    b"EXPIRE b 10 LT\r\nTTL b\r\n",
    b"EXPIRE b 10 FOO\r\nEXPIRE b 10 NX XX\r\nEXPIRE b 10 nx gt\r\nEXPIRE b 10 GT LT\r\nEXPIRE b x\r\n",
    b"EXPIRE b 9223372036854775807\r\nPEXPIRE b 9223372036854775807\r\nEXPIRE b -9223372036854775808\r\n",
    b"EXPIRE b\r\nPEXPIRE\r\nTTL\r\nPTTL a b\r\nPERSIST\r\n",
    b"SET c 1\r\nEXPIRE c 0\r\nEXISTS c\r\nSET c 1\r\nPEXPIRE c -5\r\nEXISTS c\r\n",
    b"SET d 1 EX 100\r\nINCR d\r\nAPPEND d 0\r\nTTL d\r\nGETSET d x\r\nTTL d\r\nSET d y EX 5\r\nMSET d z\r\n"
    b"TTL d\r\n",
    b"FLUSHALL\r\nSET hello 1\r\nKEYS h?llo\r\nKEYS h[a-e]llo\r\nKEYS h[^a]llo\r\nKEYS nomatch\r\nKEYS\r\n",
    b"KEYS h*\r\nKEYS *o\r\nKEYS hel\\lo\r\nKEYS [\r\nKEYS hell[o\r\n",
    b"DBSIZE\r\nDBSIZE x\r\nFLUSHDB\r\nDBSIZE\r\nFLUSHALL ASYNC\r\nFLUSHALL SYNC\r\nFLUSHALL x\r\n"
    b"FLUSHDB sync x\r\n",
    # server
    b"CONFIG\r\nCONFIG GET\r\nCONFIG FOO\r\nconfig foo bar\r\nCONFIG GET save\r\nCONFIG GET appendonly\r\n",
    b"CONFIG GET nomatch\r\nCONFIG RESETSTAT x\r\nCONFIG GET maxmemory-policy\r\n",
    b"COMMAND FOO\r\ncommand foo\r\nCOMMAND INFO nosuch\r\nCOMMAND DOCS nosuch\r\n",
    # unknown commands
    b"FOO\r\n", b"FOO a b\r\n", b"foo A\r\n", cmd(""), cmd("FOO", b"a\r\nb", b"c\x00d"), cmd("x" * 200, "y" * 200),
    b"FOO " + b"a" * 97 + b" " + b"b" * 55 + b" c d\r\n",
    # inline parsing
    b"  PING  \r\n", b"PING\n", b"PING\r\r\n", b"\r\n\r\nPING\r\n", b'ECHO "a\\x41\\n\\t\\q"\r\n',
    b"ECHO 'it\\'s'\r\n", b'ECHO "" \'\'\r\nPING\r\n', b'ECHO ab"c d"\r\n', b"ECHO a\vb\r\n",
    # multibulk details
    b"*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n", b"*0\r\n*-1\r\nPING\r\n",
    # protocol errors: a reply, then the server closes
    b"*1\r\n$536870913\r\n", b"*1\r\n$-1\r\n", b"*1\r\n$ 3\r\n", b"*1\r\n$+3\r\n", b"*1\r\n$\r\n",
    b"*2147483648\r\n", b"*01\r\n", b"*1x\r\n", b"*\r\n", b"*1\r\nx3\r\n", b"*1\r\n\r3\r\n", b"*1\r\n\n3\r\n",
    b'ECHO "abc\r\n', b"ECHO 'abc\r\n", b'ECHO "a"b\r\n', b"ECHO a\"b c\"d\r\n",
    b"PING\r\nSET q 1\r\n*1\r\nx\r\nGET q\r\n",
    # Lines over 64 KiB without an end (no sentinel after them: its "\r\n"
    # would end the line).
    (b"a" * 70000, False), (b"*" + b"1" * 70000, False), (b"*1\r\n$" + b"1" * 70000, False),
]


def load_more_cases():
    """Each vs_redis_*.py next to this file adds a CASES list (one per
    group of commands). A case is bytes, (bytes, sentinel) or a dict
    {"data": bytes, "unordered": True} for replies whose array order is
    the table's (SMEMBERS, HGETALL, ...): those compare after sorting the
    elements of every top-level array (pairs kept together with
    "pairs": True)."""
    import glob
    import importlib
    here = os.path.dirname(os.path.abspath(__file__))
    for path in sorted(glob.glob(os.path.join(here, "vs_redis_*.py"))):
        CASES.extend(importlib.import_module(os.path.basename(path)[:-3]).CASES)


def parse_resp(buf, i=0):
    """One RESP2 value at buf[i:]: (value, next index). Arrays become
    lists, the rest their raw bytes."""
    j = buf.index(b"\r\n", i)
    t, line = buf[i:i + 1], buf[i:j]
    if t == b"*":
        n = int(line[1:])
        if n < 0:
            return line, j + 2
        out, k = [], j + 2
        for _ in range(n):
            v, k = parse_resp(buf, k)
            out.append(v)
        return out, k
    if t == b"$":
        n = int(line[1:])
        if n < 0:
            return line, j + 2
        return buf[i:j + 2 + n + 2], j + 2 + n + 2
    return line, j + 2


def normalize(out, pairs):
    """The replies in out with every top-level array sorted."""
    vals, i = [], 0
    try:
        while i < len(out):
            v, i = parse_resp(out, i)
            if isinstance(v, list):
                if pairs:
                    v = sorted(zip(v[0::2], v[1::2]), key=repr)
                else:
                    v = sorted(v, key=repr)
            vals.append(v)
    except (ValueError, IndexError):
        return out  # not well formed: compare the bytes
    return repr(vals).encode()


def exchange(port, data, sentinel=True):
    """Sends data (+ the sentinel) on a fresh connection; returns the reply
    bytes and whether the server closed the connection."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(data + (SENTINEL if sentinel else b""))
    out = b""
    closed = False
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            b = s.recv(1 << 20)
        except ConnectionResetError:
            closed = True
            break
        except socket.timeout:
            break
        if not b:
            closed = True
            break
        out += b
        if out.endswith(SENTINEL_REPLY):
            out = out[:-len(SENTINEL_REPLY)]
            break
    s.close()
    return out, closed


def run():
    redis = start_redis()
    kv = start_kv()
    for port in (redis.port, kv.port):
        exchange(port, b"FLUSHALL\r\n")
    bad = []
    load_more_cases()
    for i, case in enumerate(CASES):
        if isinstance(case, dict):
            data, sentinel, unordered = case["data"], True, case.get("unordered", False)
        else:
            data, sentinel = case if isinstance(case, tuple) else (case, True)
            unordered = False
        want = exchange(redis.port, data, sentinel)
        got = exchange(kv.port, data, sentinel)
        if unordered:
            pairs = case.get("pairs", False)
            want = (normalize(want[0], pairs), want[1])
            got = (normalize(got[0], pairs), got[1])
        if got != want:
            bad.append(f"case {i} {data[:80]!r}:\n  redis-server: {want[0][:300]!r} closed={want[1]}\n"
                       f"  demi-kv:      {got[0][:300]!r} closed={got[1]}")
    check(not bad, f"{len(bad)} of {len(CASES)} cases differ:\n" + "\n".join(bad))
    print(f"{len(CASES)} cases, identical replies")
    redis.stop()
    kv.stop()


if __name__ == "__main__":
    main(run)
