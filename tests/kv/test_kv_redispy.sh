#!/usr/bin/env bash
# redis-py (Debian's python3-redis) against demi-kv on 127.0.0.1, or with
# --against-redis the same session against redis-server, which checks the
# script's expectations (see kv_redispy.py).
exec /usr/bin/python3 -B "$(dirname "$0")/kv_redispy.py" "$@"
