#!/usr/bin/env bash
# redis-benchmark's default test list (no -t) against demi-kv and a real
# redis-server on 127.0.0.1: -P 16 and -c 50 runs, the same tests, the same
# keyspace afterwards; -r/-d runs checked for what they imply (see
# kv_benchmark_all.py).
exec python3 -B "$(dirname "$0")/kv_benchmark_all.py"
