#!/usr/bin/env bash
# demi-kv --aof under kill -9: acknowledged INCRs and SETs from 12 clients
# (a third of them pipelining) survive every crash (see kv_aof_crash.py).
exec python3 -B "$(dirname "$0")/kv_aof_crash.py"
