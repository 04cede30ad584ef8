#!/usr/bin/env bash
# demi-kv's hashes where replies cannot be compared byte for byte with
# redis-server: HSCAN under churn, HRANDFIELD's draws, memory accounting,
# replay from --aof (see kv_hash.py).
exec python3 -B "$(dirname "$0")/kv_hash.py"
