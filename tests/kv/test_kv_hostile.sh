#!/usr/bin/env bash
# demi-kv on catnap over 127.0.0.1 against a client that pipelines large
# replies and never reads them, over maxclients, and with its descriptors
# exhausted (see kv_hostile.py).
exec python3 -B "$(dirname "$0")/kv_hostile.py"
