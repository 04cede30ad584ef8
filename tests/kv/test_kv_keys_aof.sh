#!/usr/bin/env bash
# The keyspace commands logged by --aof and replayed (see kv_keys_aof.py).
exec python3 -B "$(dirname "$0")/kv_keys_aof.py"
