#!/usr/bin/env bash
# demi-kv --aof rewrite: BGREWRITEAOF shrinks the log and a restart gives
# the same keyspace; writes from concurrent clients during a rewrite of a
# big keyspace, and a FLUSHALL during one, are all there after a restart;
# the automatic rewrite starts past auto-aof-rewrite-min-size (see
# kv_aof_rewrite.py).
exec python3 -B "$(dirname "$0")/kv_aof_rewrite.py"
