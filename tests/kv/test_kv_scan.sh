#!/usr/bin/env bash
# SCAN's guarantee under inserts and deletes across table growth, and
# RANDOMKEY/RENAME/TYPE on the same keyspace (see kv_scan.py).
exec python3 -B "$(dirname "$0")/kv_scan.py"
