#!/usr/bin/env bash
# demi-kv's server and connection commands on catnap over 127.0.0.1:
# CLIENT LIST/INFO/KILL, SLOWLOG, MONITOR, redis-cli --stat and SHUTDOWN
# (with --aof: every acknowledged write after a restart). See kv_server.py.
exec python3 -B "$(dirname "$0")/kv_server.py"
