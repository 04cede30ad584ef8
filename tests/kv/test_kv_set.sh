#!/usr/bin/env bash
# demi-kv's sets where replies are random or in the table's order: SPOP and
# SRANDMEMBER by their properties, SSCAN while the set changes, a random
# run against redis-server, COMMAND INFO, SPOP replayed from --aof (see
# kv_set.py).
exec python3 -B "$(dirname "$0")/kv_set.py"
