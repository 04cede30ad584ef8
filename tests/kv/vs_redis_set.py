"""Sets, side by side with redis-server 7.0 (loaded by kv_vs_redis.py):
SADD, SREM, SPOP, SRANDMEMBER, SMEMBERS, SISMEMBER, SMISMEMBER, SCARD,
SMOVE, SINTER, SUNION, SDIFF and their STORE forms, SINTERCARD, SSCAN.

Every key here starts with "set:" and every case first deletes the keys it
uses, so that cases of other files leave nothing it depends on. Replies
holding several members come in the table's order, which differs between
the two servers: those cases are "unordered" (compared after sorting each
top-level array). SPOP and SRANDMEMBER are random: only what is determined
is compared here (whole sets, one-member sets, counts); tests/kv/kv_set.py
checks the rest, and SSCAN over several calls."""


from kvtest import cmd, cmds


def u(data):
    return {"data": data, "unordered": True}


KEYS = ["set:a", "set:b", "set:c", "set:d", "set:s", "set:str", "set:dst", "set:one", "set:big", "set:none", "set:new"]
RESET = cmd("DEL", *KEYS)
# A set of three, a string, and a one-member set.
ABC = RESET + cmds(["SADD", "set:a", "a", "b", "c"], ["SET", "set:str", "x"], ["SADD", "set:one", "m"])
# Two overlapping sets and a third.
ABCD = ABC + cmds(["SADD", "set:b", "b", "c", "d"], ["SADD", "set:c", "c", "z"])

CASES = [
    # SADD, SCARD, SISMEMBER, SMISMEMBER
    RESET + cmds(["SADD", "set:s", "a"], ["SADD", "set:s", "a", "b", "a", "c"], ["SCARD", "set:s"],
                 ["SISMEMBER", "set:s", "a"], ["SISMEMBER", "set:s", "zz"], ["SMISMEMBER", "set:s", "a", "zz", "c"],
                 ["SCARD", "set:none"], ["SISMEMBER", "set:none", "a"], ["SMISMEMBER", "set:none", "a", "b"],
                 ["TTL", "set:s"], ["EXISTS", "set:s"]),
    RESET + cmds(["SADD", "set:s", ""], ["SISMEMBER", "set:s", ""], ["SCARD", "set:s"],
                 ["SADD", "set:s", b"\x00\r\n\xff", "1", "01", "1.0", "-1"], ["SCARD", "set:s"],
                 ["SISMEMBER", "set:s", b"\x00\r\n\xff"], ["SISMEMBER", "set:s", "001"]),
    u(RESET + cmds(["SADD", "set:s", "3", "1", "2", "-5", "100000000000000000000"], ["SMEMBERS", "set:s"])),
    u(RESET + cmds(["SADD", "set:s", b"\x00\r\n\xff", "", "x" * 300], ["SMEMBERS", "set:s"])),
    u(ABC + cmd("SMEMBERS", "set:a")),
    ABC + cmds(["SMEMBERS", "set:none"], ["SMEMBERS", "set:str"], ["SMEMBERS", "set:one"]),
    # wrong arity
    b"SADD\r\nSADD set:s\r\nSREM set:s\r\nSCARD\r\nSCARD a b\r\nSISMEMBER set:s\r\nSISMEMBER a b c\r\n"
    b"SMISMEMBER set:s\r\nSMEMBERS\r\nSMEMBERS a b\r\nSPOP\r\nSRANDMEMBER\r\nSINTER\r\nSUNION\r\nSDIFF\r\n"
    b"SINTERSTORE d\r\nSUNIONSTORE d\r\nSDIFFSTORE d\r\nSINTERCARD 1\r\nSMOVE a b\r\nSMOVE a b c d\r\n"
    b"SSCAN set:s\r\nsadd\r\nsmove\r\n",
    # WRONGTYPE, and nothing changed
    ABC + cmds(["SADD", "set:str", "a"], ["SREM", "set:str", "a"], ["SCARD", "set:str"], ["SISMEMBER", "set:str", "a"],
               ["SMISMEMBER", "set:str", "a"], ["SPOP", "set:str"], ["SPOP", "set:str", "0"], ["SPOP", "set:str", "2"],
               ["SRANDMEMBER", "set:str"], ["SRANDMEMBER", "set:str", "0"], ["SRANDMEMBER", "set:str", "-2"],
               ["SSCAN", "set:str", "0"], ["SSCAN", "set:str", "0", "COUNT", "0"], ["GET", "set:str"],
               ["GET", "set:a"], ["GETSET", "set:a", "x"], ["INCR", "set:a"], ["APPEND", "set:a", "x"],
               ["STRLEN", "set:a"], ["MGET", "set:a", "set:str"], ["SCARD", "set:a"]),
    # SREM, and an emptied set is deleted
    ABC + cmds(["SREM", "set:a", "a", "zz", "a"], ["SCARD", "set:a"], ["SREM", "set:a", "b", "c", "b"],
               ["EXISTS", "set:a"], ["SREM", "set:a", "b"], ["SREM", "set:none", "x"], ["SCARD", "set:a"],
               ["SADD", "set:a", "n"], ["SMEMBERS", "set:a"]),
    ABC + cmds(["EXPIRE", "set:a", "100"], ["SADD", "set:a", "d"], ["TTL", "set:a"], ["SREM", "set:a", "d"],
               ["TTL", "set:a"], ["SREM", "set:a", "a", "b", "c"], ["TTL", "set:a"]),
    # SPOP: what is determined
    ABC + cmds(["SPOP", "set:none"], ["SPOP", "set:none", "0"], ["SPOP", "set:none", "5"], ["SPOP", "set:a", "0"],
               ["SPOP", "set:a", "-1"], ["SPOP", "set:a", "x"], ["SPOP", "set:a", "1.5"], ["SPOP", "set:a", ""],
               ["SPOP", "set:a", "9223372036854775808"], ["SPOP", "set:a", "1", "2"], ["SPOP", "set:none", "1", "2"],
               ["SPOP", "set:str", "-1"], ["SCARD", "set:a"]),
    ABC + cmds(["SPOP", "set:one"], ["EXISTS", "set:one"], ["SPOP", "set:one"], ["SADD", "set:one", "m"],
               ["SPOP", "set:one", "1"], ["EXISTS", "set:one"], ["SADD", "set:one", "m"],
               ["SPOP", "set:one", "9223372036854775807"], ["EXISTS", "set:one"]),
    u(ABC + cmds(["SPOP", "set:a", "3"])),
    u(ABC + cmds(["SPOP", "set:a", "100"])),
    u(ABC + cmds(["SPOP", "set:a", "100"], ["EXISTS", "set:a"], ["SPOP", "set:a", "2"], ["SCARD", "set:a"])),
    ABC + cmds(["SREM", "set:a", "a", "c"], ["SPOP", "set:a"], ["EXISTS", "set:a"]),
    # SRANDMEMBER: what is determined
    ABC + cmds(["SRANDMEMBER", "set:none"], ["SRANDMEMBER", "set:none", "0"], ["SRANDMEMBER", "set:none", "5"],
               ["SRANDMEMBER", "set:none", "-5"], ["SRANDMEMBER", "set:a", "0"], ["SRANDMEMBER", "set:a", "x"],
               ["SRANDMEMBER", "set:a", "1.5"], ["SRANDMEMBER", "set:a", "9223372036854775808"],
               ["SRANDMEMBER", "set:a", "-9223372036854775808"], ["SRANDMEMBER", "set:none", "-9223372036854775808"],
               ["SRANDMEMBER", "set:a", "1", "2"], ["SRANDMEMBER", "set:none", "x"], ["SRANDMEMBER", "set:str", "x"],
               ["SCARD", "set:a"]),
    ABC + cmds(["SRANDMEMBER", "set:one"], ["SRANDMEMBER", "set:one", "1"], ["SRANDMEMBER", "set:one", "-1"],
               ["SRANDMEMBER", "set:one", "-5"], ["SRANDMEMBER", "set:one", "5"], ["SRANDMEMBER", "set:one", "-0"],
               ["SCARD", "set:one"]),
    u(ABC + cmds(["SRANDMEMBER", "set:a", "3"])),
    u(ABC + cmds(["SRANDMEMBER", "set:a", "9223372036854775807"])),
    # SINTER
    u(ABCD + cmd("SINTER", "set:a", "set:b")),
    u(ABCD + cmd("SINTER", "set:b", "set:a", "set:b")),
    u(ABCD + cmd("SINTER", "set:a")),
    ABCD + cmds(["SINTER", "set:a", "set:b", "set:c"], ["SINTER", "set:a", "set:c", "set:b"],
                ["SINTER", "set:a", "set:d"], ["SINTER", "set:d", "set:a"], ["SINTER", "set:none"],
                ["SINTER", "set:a", "set:str"], ["SINTER", "set:str", "set:a"], ["SINTER", "set:none", "set:str"],
                ["SINTER", "set:str", "set:none"], ["SINTER", "set:a", "set:none", "set:str"],
                ["SINTER", "set:a", "set:one"]),
    # SINTERSTORE
    ABCD + cmds(["SINTERSTORE", "set:dst", "set:a", "set:b"], ["SCARD", "set:dst"],
                ["SISMEMBER", "set:dst", "b"], ["SISMEMBER", "set:dst", "a"],
                ["SINTERSTORE", "set:dst", "set:a", "set:one"], ["EXISTS", "set:dst"],
                ["SINTERSTORE", "set:dst", "set:a", "set:b", "set:c"], ["SMEMBERS", "set:dst"],
                ["SINTERSTORE", "set:dst", "set:a", "set:none"], ["EXISTS", "set:dst"],
                ["SINTERSTORE", "set:dst", "set:none"], ["SINTERSTORE", "set:dst", "set:a", "set:str"],
                ["SINTERSTORE", "set:dst", "set:none", "set:str"], ["EXISTS", "set:dst"]),
    ABCD + cmds(["SET", "set:dst", "v", "EX", "100"], ["SINTERSTORE", "set:dst", "set:a", "set:b"], ["TTL", "set:dst"],
                ["GET", "set:dst"], ["SCARD", "set:dst"], ["SET", "set:dst", "v"],
                ["SINTERSTORE", "set:dst", "set:a", "set:c", "set:one"], ["EXISTS", "set:dst"],
                ["SET", "set:dst", "v"], ["SINTERSTORE", "set:dst", "set:none", "set:a"], ["EXISTS", "set:dst"],
                ["SET", "set:dst", "v"], ["SINTERSTORE", "set:dst", "set:a", "set:str"], ["GET", "set:dst"]),
    u(ABCD + cmds(["SINTERSTORE", "set:a", "set:a", "set:b"], ["SMEMBERS", "set:a"])),
    ABCD + cmds(["SINTERSTORE", "set:str", "set:a", "set:c"], ["GET", "set:str"], ["SMEMBERS", "set:str"]),
    # SINTERCARD
    ABCD + cmds(["SINTERCARD", "2", "set:a", "set:b"], ["SINTERCARD", "1", "set:a"], ["SINTERCARD", "3", "set:a",
                "set:b", "set:c"], ["SINTERCARD", "2", "set:a", "set:none"], ["SINTERCARD", "1", "set:none"],
                ["SINTERCARD", "2", "set:a", "set:b", "LIMIT", "1"], ["SINTERCARD", "2", "set:a", "set:b", "limit", "0"],
                ["SINTERCARD", "2", "set:a", "set:b", "LIMIT", "5"], ["SINTERCARD", "1", "set:a", "LIMIT", "1",
                "LIMIT", "2"], ["SINTERCARD", "2", "set:a", "set:a"], ["SINTERCARD", "1", "set:str"],
                ["SINTERCARD", "2", "set:none", "set:str"], ["SINTERCARD", "2", "set:str", "set:none"]),
    ABCD + cmds(["SINTERCARD", "0", "set:a"], ["SINTERCARD", "-1", "set:a"], ["SINTERCARD", "x", "set:a"],
                ["SINTERCARD", "", "set:a"], ["SINTERCARD", "9223372036854775808", "set:a"],
                ["SINTERCARD", "2", "set:a"], ["SINTERCARD", "9223372036854775807", "set:a"],
                ["SINTERCARD", "1", "set:a", "LIMIT"], ["SINTERCARD", "1", "set:a", "LIMIT", "-1"],
                ["SINTERCARD", "1", "set:a", "LIMIT", "x"], ["SINTERCARD", "1", "set:a", "LIMIT", "9223372036854775808"],
                ["SINTERCARD", "1", "set:a", "FOO"], ["SINTERCARD", "1", "set:a", "set:b"],
                ["SINTERCARD", "1", "set:str", "FOO"], ["SINTERCARD", "1", "set:str", "LIMIT", "-1"],
                ["SINTERCARD", "2", "set:a", "set:b", "LIMIT", "1", "x"]),
    # SUNION, SUNIONSTORE
    u(ABCD + cmd("SUNION", "set:a", "set:b")),
    u(ABCD + cmd("SUNION", "set:a", "set:none", "set:c", "set:a")),
    u(ABCD + cmd("SUNION", "set:none")),
    ABCD + cmds(["SUNION", "set:a", "set:str"], ["SUNION", "set:none", "set:str"], ["SUNION", "set:str", "set:none"],
                ["SUNION", "set:none", "set:d"]),
    u(ABCD + cmds(["SUNIONSTORE", "set:dst", "set:a", "set:b", "set:none"], ["SMEMBERS", "set:dst"])),
    ABCD + cmds(["SUNIONSTORE", "set:dst", "set:none"], ["EXISTS", "set:dst"], ["SET", "set:dst", "v", "EX", "100"],
                ["SUNIONSTORE", "set:dst", "set:a", "set:c"], ["TTL", "set:dst"], ["SCARD", "set:dst"],
                ["SUNIONSTORE", "set:dst", "set:none", "set:d"], ["EXISTS", "set:dst"],
                ["SUNIONSTORE", "set:dst", "set:a", "set:str"], ["SUNIONSTORE", "set:a", "set:a", "set:b"],
                ["SCARD", "set:a"]),
    # SDIFF, SDIFFSTORE
    u(ABCD + cmd("SDIFF", "set:a", "set:b")),
    u(ABCD + cmd("SDIFF", "set:b", "set:a", "set:c")),
    u(ABCD + cmd("SDIFF", "set:a", "set:none")),
    u(ABCD + cmd("SDIFF", "set:a")),
    ABCD + cmds(["SDIFF", "set:a", "set:a"], ["SDIFF", "set:a", "set:b", "set:a"], ["SDIFF", "set:none", "set:a"],
                ["SDIFF", "set:a", "set:str"], ["SDIFF", "set:none", "set:str"], ["SDIFF", "set:str", "set:none"],
                ["SDIFF", "set:a", "set:none", "set:str"], ["SDIFF", "set:c", "set:a", "set:b"]),
    u(ABCD + cmds(["SDIFFSTORE", "set:dst", "set:a", "set:c"], ["SMEMBERS", "set:dst"])),
    ABCD + cmds(["SDIFFSTORE", "set:dst", "set:a", "set:a"], ["EXISTS", "set:dst"], ["SET", "set:dst", "v", "PX", "99999"],
                ["SDIFFSTORE", "set:dst", "set:a", "set:b"], ["PTTL", "set:dst"], ["SMEMBERS", "set:dst"],
                ["SDIFFSTORE", "set:dst", "set:none", "set:a"], ["EXISTS", "set:dst"],
                ["SDIFFSTORE", "set:dst", "set:str"], ["SDIFFSTORE", "set:a", "set:a", "set:b"], ["SMEMBERS", "set:a"]),
    # SMOVE
    ABCD + cmds(["SMOVE", "set:a", "set:b", "a"], ["SISMEMBER", "set:a", "a"], ["SISMEMBER", "set:b", "a"],
                ["SMOVE", "set:a", "set:b", "a"], ["SMOVE", "set:a", "set:b", "b"], ["SCARD", "set:a"],
                ["SCARD", "set:b"], ["SMOVE", "set:one", "set:d", "m"], ["EXISTS", "set:one"],
                ["SMEMBERS", "set:d"], ["SMOVE", "set:none", "set:a", "x"], ["SMOVE", "set:none", "set:str", "x"],
                ["SMOVE", "set:a", "set:str", "c"], ["SMOVE", "set:str", "set:a", "c"], ["SMOVE", "set:a", "set:a", "c"],
                ["SMOVE", "set:a", "set:a", "zz"], ["SMOVE", "set:a", "set:str", "zz"], ["SCARD", "set:a"]),
    ABCD + cmds(["EXPIRE", "set:b", "100"], ["SMOVE", "set:a", "set:b", "a"], ["TTL", "set:b"],
                ["SMOVE", "set:c", "set:new", "z"], ["TTL", "set:new"], ["SMEMBERS", "set:new"], ["DEL", "set:new"]),
    # SSCAN: one member, or a MATCH that leaves one, and a COUNT that
    # covers the table (the order of more, and where a smaller COUNT
    # stops, depend on the hash; kv_set.py covers those)
    ABC + cmds(["SSCAN", "set:one", "0"], ["SSCAN", "set:one", "0", "COUNT", "100"], ["SSCAN", "set:one", "0", "MATCH", "m"],
               ["SSCAN", "set:one", "0", "MATCH", "x*"], ["SSCAN", "set:a", "0", "MATCH", "b", "COUNT", "100"],
               ["SSCAN", "set:a", "0", "match", "[b]", "count", "100"], ["SSCAN", "set:none", "0"],
               ["SSCAN", "set:none", "5", "COUNT", "100"]),
    ABC + cmds(["SSCAN", "set:a", "x"], ["SSCAN", "set:none", "x"], ["SSCAN", "set:str", "x"],
               ["SSCAN", "set:none", "0", "FOO"], ["SSCAN", "set:none", "0", "COUNT", "0"],
               ["SSCAN", "set:str", "0", "FOO"], ["SSCAN", "set:a", "0", "FOO"], ["SSCAN", "set:a", "0", "COUNT", "0"],
               ["SSCAN", "set:a", "0", "COUNT", "x"], ["SSCAN", "set:a", "0", "COUNT"], ["SSCAN", "set:a", "0", "MATCH"],
               ["SSCAN", "set:a", "0", "TYPE", "set"], ["SSCAN", "set:a", "18446744073709551616"],
               ["SSCAN", "set:a", "0", "COUNT", "-1"], ["SSCAN", "set:a", " 0"]),
    # cursors as Redis's strtoul reads them: these are all 0
    ABC + cmds(["SSCAN", "set:one", ""], ["SSCAN", "set:one", "+0"], ["SSCAN", "set:one", "-0"],
               ["SSCAN", "set:one", "00000000000000000000000000"], ["SSCAN", "set:one", b"0\x00junk"],
               ["SSCAN", "set:one", b"\x00"], ["SSCAN", "set:one", "-"], ["SSCAN", "set:one", "+"],
               ["SSCAN", "set:one", "0 "], ["SSCAN", "set:one", "\t0"], ["SSCAN", "set:one", "+-0"],
               ["SSCAN", "set:one", "0x0"], ["SSCAN", "set:one", "-18446744073709551616"],
               ["SSCAN", "set:one", "18446744073709551616"]),
    # a larger set: the table grows and shrinks
    cmd("DEL", "set:big") + cmd("SADD", "set:big", *[f"m{i}" for i in range(1000)]) +
    cmd("SADD", "set:big", *[f"m{i}" for i in range(500, 1500)]) + cmd("SCARD", "set:big") +
    cmd("SREM", "set:big", *[f"m{i}" for i in range(0, 1500, 2)]) + cmd("SCARD", "set:big") +
    cmd("SMISMEMBER", "set:big", "m0", "m1", "m1499", "m1498") + cmd("SINTERCARD", "1", "set:big", "LIMIT", "10") +
    cmd("SREM", "set:big", *[f"m{i}" for i in range(1, 1400, 2)]) + cmd("SCARD", "set:big"),
    u(cmd("DEL", "set:big") + cmd("SADD", "set:big", *[f"m{i}" for i in range(300)]) +
      cmd("SREM", "set:big", *[f"m{i}" for i in range(0, 300, 3)]) + cmd("SMEMBERS", "set:big")),
    u(cmd("DEL", "set:big", "set:s") + cmd("SADD", "set:big", *[f"m{i}" for i in range(300)]) +
      cmd("SADD", "set:s", *[f"m{i}" for i in range(0, 600, 7)]) + cmd("SINTER", "set:big", "set:s")),
    u(cmd("SDIFF", "set:big", "set:s")),
    u(cmd("SDIFF", "set:s", "set:big")),
    u(cmd("SUNION", "set:s", "set:big")),
    cmd("SDIFFSTORE", "set:dst", "set:big", "set:s") + cmd("SUNIONSTORE", "set:dst", "set:big", "set:s") +
    cmd("SINTERSTORE", "set:dst", "set:big", "set:s") + cmd("SINTERCARD", "2", "set:big", "set:s"),
    u(cmd("SRANDMEMBER", "set:big", "300")),
    cmd("DEL", *KEYS),
]
