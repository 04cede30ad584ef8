#!/usr/bin/env bash
# demi-echo's server on catnap over 127.0.0.1 against clients that send and
# never read, and with its descriptors exhausted (see echo_hostile.py).
exec python3 -B "$(dirname "$0")/echo_hostile.py"
