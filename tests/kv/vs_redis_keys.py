"""Differential cases for the keyspace commands and the command table
(loaded by kv_vs_redis.py): SETEX, PSETEX, SETNX, GETDEL, GETEX, UNLINK,
TOUCH, TYPE, RENAME, RENAMENX, COPY, RANDOMKEY, SCAN, EXPIREAT, PEXPIREAT,
EXPIRETIME, PEXPIRETIME, MEMORY USAGE, OBJECT ENCODING, and COMMAND INFO,
GETKEYS and GETKEYSANDFLAGS. Each case must get byte-identical replies
from demi-kv and redis-server 7.0. Replies that differ by design are left
out: MEMORY USAGE's byte counts, DOCS of commands with a "history", SCAN's cursors over more than one key,
OBJECT ENCODING of collections (Redis's small ones are listpacks)."""


import os

from kvtest import cmd


# A time far in the future (year 2286) in seconds and milliseconds.
FAR_S = 9999999999
FAR_MS = 9999999999000

CASES = [
    b"FLUSHALL\r\n",
    # SETEX and PSETEX: the time is checked before anything else.
    b"SETEX sx 100 v\r\nGET sx\r\nTTL sx\r\nPSETEX px 100000 w\r\nGET px\r\nTTL px\r\n",
    b"SETEX sx 0 v\r\nSETEX sx -1 v\r\nSETEX sx x v\r\nSETEX sx 1.5 v\r\nPSETEX sx 0 v\r\nPSETEX sx -5 v\r\n",
    b"SETEX sx 9223372036854775807 v\r\nSETEX sx 9223372036854775 v\r\nPSETEX sx 9223372036854775807 v\r\n",
    b"SETEX\r\nSETEX a 1\r\nSETEX a 1 v x\r\nPSETEX a\r\n",
    b"SET keep v EX 100\r\nSETEX keep 1000 w\r\nTTL keep\r\nGET keep\r\n",
    # SETNX: only an absent key, whatever type holds it.
    b"DEL nx\r\nSETNX nx 1\r\nSETNX nx 2\r\nGET nx\r\nSETNX\r\nSETNX a\r\nSETNX a b c\r\n",
    # GETDEL
    b"SET gd v\r\nGETDEL gd\r\nGETDEL gd\r\nEXISTS gd\r\nGETDEL\r\nGETDEL a b\r\n",
    cmd("SET", "gdbig", b"z" * 70000) + cmd("GETDEL", "gdbig") + cmd("EXISTS", "gdbig"),
    # GETEX: options, then the key, then the time's value.
    b"SET ge v\r\nGETEX ge\r\nTTL ge\r\nGETEX ge EX 100\r\nTTL ge\r\nGETEX ge PX 200000\r\nTTL ge\r\n"
    b"GETEX ge PERSIST\r\nTTL ge\r\nGETEX ge PERSIST\r\n",
    b"GETEX ge EXAT %d\r\nTTL ge\r\nGETEX ge PXAT %d\r\nEXPIRETIME ge\r\nPEXPIRETIME ge\r\n" % (FAR_S, FAR_MS),
    b"SET ge2 v\r\nGETEX ge2 EXAT 1\r\nEXISTS ge2\r\nSET ge2 v\r\nGETEX ge2 PXAT 1\r\nEXISTS ge2\r\n",
    b"GETEX ge EX 10 PERSIST\r\nGETEX ge PERSIST EX 10\r\nGETEX ge EX 10 PX 10\r\nGETEX ge EX\r\n"
    b"GETEX ge FOO\r\nGETEX ge KEEPTTL\r\nGETEX ge NX\r\nGETEX ge EX 10 EX 20\r\nTTL ge\r\n",
    b"GETEX ge EX 0\r\nGETEX ge EX x\r\nGETEX ge PX -1\r\nGETEX ge EX 9223372036854775807\r\n",
    b"GETEX nokey EX 0\r\nGETEX nokey EX x\r\nGETEX nokey foo\r\nGETEX nokey PERSIST\r\nGETEX\r\n",
    b"GETEX ge persist persist\r\ngetex ge ex 50\r\nTTL ge\r\n",
    # UNLINK and TOUCH
    b"MSET u1 1 u2 2 u3 3\r\nUNLINK u1 u2 nokey u1\r\nEXISTS u1 u2 u3\r\nUNLINK\r\nTOUCH u3 u3 nokey\r\nTOUCH\r\n",
    # TYPE
    b"SET ts v\r\nTYPE ts\r\nTYPE nokey\r\nTYPE\r\nTYPE a b\r\n",
    # RENAME and RENAMENX: any type, the time to live moves with the key.
    b"SET r1 v EX 100\r\nRENAME r1 r2\r\nEXISTS r1\r\nGET r2\r\nTTL r2\r\n",
    b"SET r3 a\r\nSET r4 b EX 100\r\nRENAME r3 r4\r\nGET r4\r\nTTL r4\r\n",
    b"RENAME nokey x\r\nRENAMENX nokey x\r\nRENAME nokey nokey\r\nRENAMENX nokey nokey\r\n",
    b"SET same v EX 100\r\nRENAME same same\r\nRENAMENX same same\r\nGET same\r\nTTL same\r\n",
    b"SET n1 a\r\nSET n2 b\r\nRENAMENX n1 n2\r\nGET n1\r\nGET n2\r\nRENAMENX n1 n3\r\nGET n3\r\nEXISTS n1\r\n",
    b"RENAME\r\nRENAME a\r\nRENAME a b c\r\nRENAMENX a\r\n",
    cmd("SET", b"\x00k\xff", "bin") + cmd("RENAME", b"\x00k\xff", b"k\x00" * 100) + cmd("GET", b"k\x00" * 100),
    # EXPIREAT, PEXPIREAT, EXPIRETIME, PEXPIRETIME
    b"SET e v\r\nEXPIRETIME e\r\nPEXPIRETIME e\r\nEXPIRETIME nokey\r\nPEXPIRETIME nokey\r\n",
    b"EXPIREAT e %d\r\nEXPIRETIME e\r\nPEXPIRETIME e\r\nPEXPIREAT e %d\r\nPEXPIRETIME e\r\nEXPIRETIME e\r\n"
    % (FAR_S, FAR_MS + 1499),
    b"PEXPIREAT e %d\r\nEXPIRETIME e\r\nPERSIST e\r\nEXPIRETIME e\r\n" % (FAR_MS + 500),
    b"EXPIREAT e %d NX\r\nEXPIREAT e %d NX\r\nEXPIREAT e %d GT\r\nEXPIREAT e %d LT\r\nEXPIRETIME e\r\n"
    % (FAR_S, FAR_S + 10, FAR_S - 10, FAR_S - 20),
    b"EXPIREAT e 1\r\nEXISTS e\r\nSET e v\r\nPEXPIREAT e 0\r\nEXISTS e\r\nSET e v\r\nEXPIREAT e -5\r\nEXISTS e\r\n",
    b"EXPIREAT nokey %d\r\nEXPIREAT e x\r\nEXPIREAT e 10 FOO\r\nEXPIREAT e 10 NX XX\r\n" % FAR_S,
    b"EXPIREAT e 9223372036854775807\r\nPEXPIREAT e 9223372036854775807\r\nEXPIREAT e -9223372036854775808\r\n",
    b"EXPIREAT\r\nEXPIREAT e\r\nPEXPIREAT e\r\nEXPIRETIME\r\nPEXPIRETIME a b\r\n",
    # RANDOMKEY over one key, and none
    b"FLUSHALL\r\nRANDOMKEY\r\nSET only v\r\nRANDOMKEY\r\nRANDOMKEY x\r\n",
    # SCAN: arguments, and whole scans of at most one matching key
    b"FLUSHALL\r\nSCAN\r\nSCAN x\r\nSCAN -1\r\nSCAN +0\r\nSCAN 00\r\nSCAN 18446744073709551616\r\nSCAN 0 COUNT 0\r\nSCAN 0 COUNT x\r\n"
    b"SCAN 0 MATCH\r\nSCAN 0 FOO bar\r\nSCAN 0 COUNT -1\r\nSCAN 0 TYPE\r\n" + cmd("SCAN", "")
    + cmd("SCAN", " 0") + cmd("SCAN", "0 ") + cmd("SCAN", b"0\x00junk") + cmd("SCAN", "0" * 100 + "1"),
    b"FLUSHALL\r\nSCAN 0\r\nSET s1 v\r\nSCAN 0\r\nSCAN 0 COUNT 100\r\nSCAN 0 MATCH s*\r\nSCAN 0 MATCH x*\r\n"
    b"SCAN 0 TYPE string\r\nSCAN 0 TYPE STRING\r\nSCAN 0 TYPE list\r\nSCAN 0 TYPE nosuch\r\n",
    b"MSET s2 a s3 b t1 c\r\nSCAN 0 MATCH t* COUNT 1000\r\nSCAN 0 MATCH s2 COUNT 1000 TYPE string\r\n"
    b"SCAN 0 COUNT 1000 MATCH none*\r\nSCAN 0 count 1000 match t? type string\r\n",
    # COPY (strings here; collections go through their types' rewrite)
    b"FLUSHALL\r\nSET ca v EX 100\r\nCOPY ca cb\r\nGET cb\r\nTTL cb\r\nCOPY ca cb\r\nSET ca w\r\n"
    b"COPY ca cb REPLACE\r\nGET cb\r\nTTL cb\r\nAPPEND cb x\r\nGET ca\r\nGET cb\r\n",
    b"COPY ca ca\r\nCOPY nokey cb\r\nCOPY nokey nokey\r\nCOPY ca cc DB 0\r\nCOPY ca cd db 0 replace\r\n"
    b"COPY ca cb DB 1\r\nCOPY ca cb DB x\r\nCOPY ca cb DB\r\nCOPY ca cb FOO\r\nCOPY ca cb DB 99999999999\r\n"
    b"COPY ca cb DB -1\r\nCOPY\r\nCOPY ca\r\nCOPY ca cb REPLACE REPLACE\r\n",
    cmd("SET", "cbig", b"q" * 100000) + cmd("COPY", "cbig", "cbig2") + cmd("STRLEN", "cbig2") + cmd("GET", "cbig2"),
    b"COMMAND INFO copy\r\n",
    # MEMORY
    b"MEMORY USAGE nokey\r\nMEMORY USAGE nokey SAMPLES 5\r\nMEMORY USAGE nokey SAMPLES x\r\n"
    b"MEMORY USAGE nokey SAMPLES\r\nMEMORY USAGE nokey FOO 1\r\nMEMORY USAGE nokey SAMPLES -1\r\n"
    b"MEMORY USAGE\r\nMEMORY\r\nMEMORY NOSUCH\r\nMEMORY USAGE a SAMPLES 0 SAMPLES 1\r\n",
    b"SET m v\r\nMEMORY USAGE m SAMPLES x\r\n",
    # OBJECT ENCODING of strings
    cmd("MSET", "oi", "12345", "oe", "x" * 44, "or", "x" * 45, "on", "-9223372036854775808", "ob", "1" * 21)
    + b"OBJECT ENCODING oi\r\nOBJECT ENCODING oe\r\nOBJECT ENCODING or\r\nOBJECT ENCODING on\r\n"
    b"OBJECT ENCODING ob\r\nOBJECT ENCODING nokey\r\nOBJECT ENCODING\r\nOBJECT\r\n",
    # The command table: flags, key positions, ACL categories, tips, key specs.
    b"COMMAND INFO setex psetex setnx getdel getex unlink touch type rename renamenx randomkey scan\r\n",
    b"COMMAND INFO expireat pexpireat expiretime pexpiretime memory|usage object|encoding\r\n",
    b"COMMAND INFO get set getset mget mset incr decr incrby decrby append strlen\r\n",
    b"COMMAND INFO del exists expire pexpire ttl pttl persist keys dbsize flushall flushdb ping\r\n",
    b"COMMAND INFO nosuch GET Rename\r\n",
    b"COMMAND GETKEYS get a\r\nCOMMAND GETKEYS mset a b c d\r\nCOMMAND GETKEYS rename a b\r\n"
    b"COMMAND GETKEYS del a b c\r\nCOMMAND GETKEYS memory usage k\r\nCOMMAND GETKEYS object encoding k\r\n",
    b"COMMAND GETKEYS\r\nCOMMAND GETKEYS get\r\nCOMMAND GETKEYS nosuch a\r\nCOMMAND GETKEYS get a b\r\n"
    b"COMMAND GETKEYS ping x\r\nCOMMAND GETKEYS object encoding\r\nCOMMAND GETKEYS object nosuch k\r\n"
    b"COMMAND GETKEYS keys a\r\nCOMMAND GETKEYS scan 0\r\nCOMMAND GETKEYS mset a\r\n",
    b"COMMAND GETKEYSANDFLAGS rename a b\r\nCOMMAND GETKEYSANDFLAGS mget a b\r\nCOMMAND GETKEYSANDFLAGS del a\r\n"
    b"COMMAND GETKEYSANDFLAGS getex a\r\nCOMMAND GETKEYSANDFLAGS\r\n",
    b"COMMAND INFO command|getkeys command|getkeysandflags\r\n",
    # COMMAND DOCS with arguments (redis-cli's help and hints), for the
    # commands whose Redis docs have no history entries.
    b"COMMAND DOCS setex psetex setnx getdel getex get mget mset incr decr incrby decrby strlen\r\n",
    b"COMMAND DOCS persist expiretime pexpiretime type rename touch unlink randomkey dbsize echo ping select\r\n",
    b"COMMAND DOCS memory|usage object|encoding nosuch\r\n",
    b"FLUSHALL\r\n",
]

# The generic commands on every collection type, once the tree holds all
# four types (t_list.c, t_set.c, t_hash.c, t_zset.c): TYPE, RENAME and
# RENAMENX (any type, time to live kept), COPY (rebuilt through the type's
# rewrite), GETDEL/GETEX/SETNX on them, UNLINK, SCAN ... TYPE, GETKEYS.
_KV = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "apps", "kv")
if all(os.path.exists(os.path.join(_KV, f"t_{t}.c")) for t in ("list", "set", "hash", "zset")):
    CASES += [
        b"FLUSHALL\r\nRPUSH l a b c\r\nSADD s x y\r\nHSET h f v g w\r\nZADD z 1 m 2 n\r\nTYPE l\r\nTYPE s\r\n"
        b"TYPE h\r\nTYPE z\r\nEXPIRE l 100\r\nRENAME l l2\r\nTTL l2\r\nLRANGE l2 0 -1\r\nRENAME s h\r\nTYPE h\r\n"
        b"SCARD h\r\nRENAMENX z h\r\nRENAMENX z z2\r\nZRANGE z2 0 -1 WITHSCORES\r\nRENAME z2 z2\r\nTYPE z2\r\n",
        b"COPY l2 l3\r\nLRANGE l3 0 -1\r\nTTL l3\r\nCOPY z2 z3\r\nZRANGE z3 0 -1 WITHSCORES\r\nHSET hh a 1\r\n"
        b"COPY hh h4\r\nHGET h4 a\r\nCOPY h s5\r\nSCARD s5\r\nCOPY z2 l3\r\nCOPY z2 l3 REPLACE\r\nTYPE l3\r\n"
        b"ZSCORE l3 n\r\nRPUSH l3 x\r\nGETDEL l3\r\nGETEX z2\r\nSETNX z2 v\r\nSETEX z2 10 v\r\nTYPE z2\r\n"
        b"UNLINK z2 l2 h\r\nDBSIZE\r\nOBJECT ENCODING nokey\r\nMEMORY USAGE nokey\r\n",
        b"FLUSHALL\r\nRPUSH l a\r\nSCAN 0 TYPE list\r\nSCAN 0 TYPE set\r\nSADD s a\r\nSCAN 0 TYPE set\r\n"
        b"SCAN 0 TYPE hash\r\nHSET h a 1\r\nSCAN 0 TYPE HASH\r\nZADD z 1 a\r\nSCAN 0 TYPE zset\r\n"
        b"SCAN 0 TYPE string\r\nTOUCH l s h z nokey\r\nFLUSHALL\r\n",
        b"COMMAND GETKEYS sinterstore d a b\r\nCOMMAND GETKEYS zadd k 1 m\r\nCOMMAND GETKEYS lpush k a\r\n"
        b"COMMAND GETKEYS smove a b m\r\nCOMMAND GETKEYS hset k f v\r\n",
    ]
