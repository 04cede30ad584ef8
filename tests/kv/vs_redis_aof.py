"""kv_vs_redis.py cases for the AOF rewrite's commands and settings: what
does not depend on the server having an append-only file (both servers
run without one here; BGREWRITEAOF itself is covered by
test_kv_aof_rewrite.sh)."""


from kvtest import cmd


CASES = [
    b"BGREWRITEAOF x\r\n", b"bgrewriteaof a b\r\n",
    b"COMMAND INFO bgrewriteaof\r\n", b"COMMAND DOCS bgrewriteaof\r\n",
    b"CONFIG GET auto-aof-rewrite-percentage\r\n", b"CONFIG GET auto-aof-rewrite-min-size\r\n",
    b"CONFIG SET auto-aof-rewrite-percentage -1\r\n", b"CONFIG SET auto-aof-rewrite-percentage 2147483648\r\n",
    b"CONFIG SET auto-aof-rewrite-percentage x\r\n", b"CONFIG SET auto-aof-rewrite-percentage 1.5\r\n",
    b"CONFIG SET auto-aof-rewrite-min-size abc\r\n", b"CONFIG SET auto-aof-rewrite-min-size -1\r\n",
    b"CONFIG SET auto-aof-rewrite-min-size 1zb\r\n",
    b"CONFIG SET auto-aof-rewrite-percentage 0\r\nCONFIG GET auto-aof-rewrite-percentage\r\n",
    b"CONFIG SET auto-aof-rewrite-percentage 2147483647\r\nCONFIG GET auto-aof-rewrite-percentage\r\n",
    b"CONFIG SET auto-aof-rewrite-percentage 100\r\n",
    b"CONFIG SET auto-aof-rewrite-min-size 1kb\r\nCONFIG GET auto-aof-rewrite-min-size\r\n",
    b"CONFIG SET auto-aof-rewrite-min-size 5M\r\nCONFIG GET auto-aof-rewrite-min-size\r\n",
    b"CONFIG SET auto-aof-rewrite-min-size 0\r\nCONFIG GET auto-aof-rewrite-min-size\r\n",
    b"CONFIG SET auto-aof-rewrite-min-size 64mb\r\n",
    cmd("CONFIG", "SET", "auto-aof-rewrite-min-size", "9223372036854775807"),
    cmd("CONFIG", "SET", "auto-aof-rewrite-min-size", "9223372036854775808"),
    b"CONFIG SET auto-aof-rewrite-min-size 64mb\r\n",
]
