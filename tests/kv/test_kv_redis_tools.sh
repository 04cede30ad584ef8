#!/usr/bin/env bash
# redis-cli --scan/--pattern, --bigkeys, --memkeys and --hotkeys against
# demi-kv and a real redis-server holding the same few thousand keys on
# 127.0.0.1 (see kv_redis_tools.py). --stat is in test_kv_server.sh.
exec python3 -B "$(dirname "$0")/kv_redis_tools.py"
