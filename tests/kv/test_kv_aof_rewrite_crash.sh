#!/usr/bin/env bash
# demi-kv --aof under kill -9 while BGREWRITEAOF runs nearly all the time:
# acknowledged writes from 12 clients and a 50000-key keyspace survive
# every crash, before, during and after switches to a rewritten log (see
# kv_aof_crash.py --rewrite).
exec python3 -B "$(dirname "$0")/kv_aof_crash.py" --rewrite
