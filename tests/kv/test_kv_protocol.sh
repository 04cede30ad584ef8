#!/usr/bin/env bash
# demi-kv on catnap over 127.0.0.1: pipelining, split commands, large
# values, 200 concurrent clients, malformed input, resets, expiry, clean
# exit (see kv_protocol.py).
exec python3 -B "$(dirname "$0")/kv_protocol.py"
