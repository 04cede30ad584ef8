#!/usr/bin/env python3
"""demi-kv --threads 2 with thread 0's heap full (tests/kv/test_kv_threads.sh
starts it with a small HEAP_SIZE): a command for thread 0's keys that a
client of thread 1 sends cannot be taken from its memory queue (the pipe's
pop has no heap for the message, which stays in the queue). Once a client
of thread 0 frees memory, the command must run and be answered: the pop is
posted again, the queue is not given up. (The script that starts demi-kv
checks its log for the failed pop, so that the case did happen.)

  kv_threads_full.py HOST PORT
"""

import sys

import kv_threads
from kv_known import Conn, cmd
from kv_threads import bad, call, keys_of


def thread_of(c):
    """0 if @c is served by thread 0, where the one key set so far (a key
    of thread 0) shows in the thread's own INFO keyspace."""
    info = call(c, "INFO", "keyspace")
    return 0 if b"keys=1" in info else 1


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    ks = keys_of("full", 2, 400)
    probe = ks[0][0]
    first = Conn(host, port)
    call(first, "FLUSHALL")
    call(first, "SET", probe, "x")
    by = {0: [], 1: []}
    conns = [first]
    for _ in range(64):
        c = conns[-1]
        by[thread_of(c)].append(c)
        if by[0] and by[1]:
            break
        conns.append(Conn(host, port))
    if not (by[0] and by[1]):
        bad("64 connections, all on one thread: SO_REUSEPORT spread none to the other")
        return
    mate, other = by[0][0], by[1][0]
    # Fill thread 0's heap with values until a SET is refused for memory.
    value = b"v" * (256 << 10)
    stored = []
    refused = None
    for k in ks[0][1:]:
        r = call(mate, "SET", k, value)
        if r != (b"+", b"OK"):
            refused = r
            break
        stored.append(k)
    if not refused or b"OOM" not in refused[1]:
        bad(f"thread 0's heap never filled: {len(stored)} values of 256 KiB stored, last reply {refused!r}")
        return
    # From thread 1, a SET of a key of thread 0 whose message (about
    # 900 KiB) thread 0 has no heap to take from the queue.
    key, big = ks[0][-1], b"w" * (900 << 10)
    other.s.sendall(cmd("SET", key, big))
    # Until thread 0 says that its queue's pop failed (INFO is per thread).
    for _ in range(100000):
        st = call(mate, "INFO", "stats")
        if b"demi_hop_pops_retried:0\r" not in st:
            break
    else:
        bad("thread 0 never reported a failed pop of its queue (demi_hop_pops_retried)")
        return
    # Thread 0 frees memory: its own client deletes 16 values (4 MiB).
    d = call(mate, "DEL", *stored[:16])
    if d != (b":", b"16"):
        bad(f"DEL of 16 values on thread 0: {d!r}")
    r = other.reply()
    if r != (b"+", b"OK"):
        bad(f"the SET sent through the full thread's queue: {r!r}, want OK once memory was freed")
        return
    g = call(other, "GET", key)
    if g != big:
        bad(f"GET of the value set through the queue: {len(g) if g else g!r} bytes")
    print(f"heap full: thread 0 refused a value after {len(stored)} of 256 KiB; a 900 KiB SET from thread 1 "
          "waited in the queue and ran once 4 MiB were freed")
    for c in conns:
        c.close()


if __name__ == "__main__":
    main()
    sys.exit(1 if kv_threads.fails else 0)
