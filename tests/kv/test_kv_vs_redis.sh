#!/usr/bin/env bash
# The same bytes to demi-kv and to redis-server 7: the replies must be
# byte-identical (see kv_vs_redis.py).
exec python3 -B "$(dirname "$0")/kv_vs_redis.py"
