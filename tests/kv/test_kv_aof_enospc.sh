#!/usr/bin/env bash
# demi-kv --aof on a full, loop-mounted ext4 image: -MISCONF for the failed
# writes, reads still served, recovery once space is freed, nothing
# acknowledged lost (see kv_aof_enospc.py; root).
exec python3 -B "$(dirname "$0")/kv_aof_enospc.py"
