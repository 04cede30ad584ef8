#!/usr/bin/env bash
# demi-relay on catnap with Linux UDP peers on 127.0.0.1 (see relay_test.py).
exec python3 -B "$(dirname "$0")/relay_test.py"
