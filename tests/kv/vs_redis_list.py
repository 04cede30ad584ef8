"""Lists, for kv_vs_redis.py: the same bytes to demi-kv and to redis-server
7.0, replies byte-identical. Every case starts by deleting the keys it uses
(the cases share one keyspace with the other groups'), keys are named l*."""


from kvtest import cmd


def fresh(*keys):
    return cmd("DEL", *keys) if keys else b""


RESET = fresh("l", "l2", "ls", "lm", "le")
BIN = bytes(range(256)) + b"\r\n\x00$-1\r\n"
# A list of 300 numbered elements (redis-benchmark's LRANGE_300 shape).
L300 = RESET + cmd("RPUSH", "l", *["e%d" % i for i in range(300)])

CASES = [
    # pushes and their replies (the new length)
    RESET + b"LPUSH l a\r\nLPUSH l b c\r\nRPUSH l d e\r\nLRANGE l 0 -1\r\nLLEN l\r\n",
    RESET + b"RPUSH l a b c d e f g h i j k l m n o p q\r\nLRANGE l 0 -1\r\nLPUSH l x y z\r\nLRANGE l 0 -1\r\n",
    RESET + b"LPUSHX l a\r\nRPUSHX l a\r\nEXISTS l\r\nRPUSH l a\r\nLPUSHX l b c\r\nRPUSHX l d e\r\n"
    b"LRANGE l 0 -1\r\n",
    RESET + b"LPUSH\r\nLPUSH l\r\nRPUSH l\r\nLPUSHX l\r\nRPUSHX\r\nLLEN\r\nLLEN l x\r\n",
    # WRONGTYPE on strings, for every command, and the string unchanged
    RESET + b"SET ls v\r\nLPUSH ls a\r\nRPUSH ls a\r\nLPUSHX ls a\r\nRPUSHX ls a\r\nLPOP ls\r\nRPOP ls\r\n"
    b"LPOP ls 2\r\nLLEN ls\r\nLRANGE ls 0 -1\r\nLINDEX ls 0\r\nLSET ls 0 x\r\nLREM ls 0 v\r\nLTRIM ls 0 1\r\n"
    b"LINSERT ls BEFORE v x\r\nLPOS ls v\r\nRPOPLPUSH ls l\r\nLMOVE ls l LEFT LEFT\r\nGET ls\r\n",
    RESET + b"RPUSH l a\r\nGET l\r\nAPPEND l x\r\nINCR l\r\nSTRLEN l\r\nGETSET l x\r\nMGET l\r\nLRANGE l 0 -1\r\n"
    b"SET l v\r\nGET l\r\n",
    # pops: with and without a count, count 0, negative, too big
    RESET + b"RPUSH l a b c d e\r\nLPOP l\r\nRPOP l\r\nLRANGE l 0 -1\r\nLPOP l 2\r\nRPOP l 5\r\nEXISTS l\r\n"
    b"LPOP l\r\nRPOP l\r\nLPOP l 1\r\nRPOP l 0\r\n",
    RESET + b"RPUSH l a b c\r\nLPOP l 0\r\nRPOP l 0\r\nLLEN l\r\nLPOP l -1\r\nRPOP l -5\r\nLPOP l x\r\n"
    b"LPOP l 1.5\r\nLPOP l 9223372036854775807\r\nEXISTS l\r\n",
    RESET + b"RPUSH l a b\r\nLPOP l 1 2\r\nRPOP l a b c\r\nLPOP\r\nRPOP\r\nLPOP l -9223372036854775808\r\n"
    b"LPOP l 9223372036854775808\r\nLPOP l \"\"\r\nLLEN l\r\n",
    RESET + b"LPOP l 0\r\nLPOP l -1\r\nRPOP l 3\r\nLPOP l\r\n",
    # LRANGE: negative indexes, out of range, reversed, integer errors
    RESET + b"RPUSH l a b c d e\r\nLRANGE l 0 0\r\nLRANGE l -1 -1\r\nLRANGE l -2 -1\r\nLRANGE l -100 100\r\n"
    b"LRANGE l 2 1\r\nLRANGE l 5 10\r\nLRANGE l -6 -5\r\nLRANGE l 1 -2\r\nLRANGE l 4 -1\r\nLRANGE l -1 0\r\n",
    RESET + b"RPUSH l a b c\r\nLRANGE l 0 9223372036854775807\r\nLRANGE l -9223372036854775808 -1\r\n"
    b"LRANGE l -9223372036854775808 9223372036854775807\r\nLRANGE l 9223372036854775807 -9223372036854775808\r\n"
    b"LRANGE l 0 9223372036854775808\r\nLRANGE l x 1\r\nLRANGE l 0 y\r\nLRANGE l 1.0 2\r\nLRANGE lm 0 -1\r\n"
    b"LRANGE lm x 1\r\nLRANGE l 0\r\nLRANGE l 0 1 2\r\n",
    L300 + cmd("LRANGE", "l", 0, 99) + cmd("LRANGE", "l", 0, 299) + cmd("LRANGE", "l", 250, 1000) +
    cmd("LRANGE", "l", -50, -1) + cmd("LLEN", "l"),
    # LINDEX
    RESET + b"RPUSH l a b c\r\nLINDEX l 0\r\nLINDEX l 2\r\nLINDEX l 3\r\nLINDEX l -1\r\nLINDEX l -3\r\n"
    b"LINDEX l -4\r\nLINDEX l x\r\nLINDEX lm 0\r\nLINDEX lm x\r\nLINDEX l 9223372036854775807\r\n"
    b"LINDEX l -9223372036854775808\r\nLINDEX l\r\nLINDEX l 0 1\r\n",
    # LSET
    RESET + b"RPUSH l a b c\r\nLSET l 0 x\r\nLSET l -1 z\r\nLSET l 1 \"\"\r\nLRANGE l 0 -1\r\nLSET l 3 q\r\n"
    b"LSET l -4 q\r\nLSET l x q\r\nLSET lm 0 q\r\nLSET lm x q\r\nLSET l 9223372036854775807 q\r\n"
    b"LSET l -9223372036854775808 q\r\nLSET l 0\r\nLRANGE l 0 -1\r\n",
    # LREM: from the head, from the tail, all, none
    RESET + b"RPUSH l a b a c a d a\r\nLREM l 2 a\r\nLRANGE l 0 -1\r\nLREM l -1 a\r\nLRANGE l 0 -1\r\n"
    b"LREM l 0 a\r\nLRANGE l 0 -1\r\nLREM l 0 zz\r\nLREM l 1 b\r\nLREM l -5 c\r\nLREM l 0 d\r\nEXISTS l\r\n",
    RESET + b"RPUSH l x a x b x c x\r\nLREM l -2 x\r\nLRANGE l 0 -1\r\nLREM l 9223372036854775807 x\r\n"
    b"LRANGE l 0 -1\r\nRPUSH l x x\r\nLREM l -9223372036854775808 x\r\nLRANGE l 0 -1\r\nLREM l x a\r\n"
    b"LREM lm 1 a\r\nLREM lm x a\r\nLREM l 1\r\nLLEN l\r\n",
    RESET + b"LPUSH l c b a\r\nRPUSH l a b c\r\nLPUSH l z\r\nLREM l -1 a\r\nLRANGE l 0 -1\r\nLREM l 1 c\r\n"
    b"LRANGE l 0 -1\r\nLREM l -10 b\r\nLRANGE l 0 -1\r\nLINDEX l 0\r\nLINDEX l -1\r\n",
    # LREM near either end of a long list, and in its middle
    RESET + cmd("RPUSH", "l", "m", *range(100), "m", *range(100), "m") + cmd("LREM", "l", 1, "m") +
    cmd("LREM", "l", -1, "m") + cmd("LRANGE", "l", 0, 2) + cmd("LRANGE", "l", -3, -1) + cmd("LLEN", "l") +
    cmd("LREM", "l", 1, 99) + cmd("LREM", "l", -1, 0) + cmd("LREM", "l", 2, 50) + cmd("LRANGE", "l", 0, -1) +
    cmd("LPUSH", "l", "m", "m") + cmd("RPUSH", "l", "m") + cmd("LREM", "l", -2, "m") + cmd("LREM", "l", 2, "m") +
    cmd("LRANGE", "l", 0, -1) + cmd("LINDEX", "l", 0) + cmd("LINDEX", "l", -1),
    # LTRIM
    RESET + b"RPUSH l a b c d e\r\nLTRIM l 1 -2\r\nLRANGE l 0 -1\r\nLTRIM l 0 0\r\nLRANGE l 0 -1\r\n"
    b"LTRIM l 1 0\r\nEXISTS l\r\nLTRIM l 0 -1\r\nEXISTS l\r\n",
    RESET + b"RPUSH l a b c d e\r\nLTRIM l -100 100\r\nLLEN l\r\nLTRIM l -2 -1\r\nLRANGE l 0 -1\r\n"
    b"LTRIM l 5 10\r\nEXISTS l\r\nRPUSH l a b\r\nLTRIM l x 1\r\nLTRIM l 0 y\r\nLTRIM lm x 1\r\nLTRIM lm 0 1\r\n"
    b"LTRIM l -9223372036854775808 9223372036854775807\r\nLTRIM l 0\r\nLRANGE l 0 -1\r\n",
    L300 + cmd("LTRIM", "l", 10, -11) + cmd("LLEN", "l") + cmd("LINDEX", "l", 0) + cmd("LINDEX", "l", -1) +
    cmd("LTRIM", "l", -3, -1) + cmd("LRANGE", "l", 0, -1),
    # LINSERT
    RESET + b"RPUSH l a b c\r\nLINSERT l BEFORE b x\r\nLINSERT l after b y\r\nLINSERT l AFTER c z\r\n"
    b"LINSERT l before a w\r\nLRANGE l 0 -1\r\nLINSERT l BEFORE missing q\r\nLINSERT l MIDDLE b q\r\n"
    b"LINSERT lm BEFORE a q\r\nLINSERT lm foo a q\r\nEXISTS lm\r\nLINSERT l BEFORE b\r\nLLEN l\r\n",
    RESET + cmd("RPUSH", "l", *["e%d" % i for i in range(40)]) + cmd("LINSERT", "l", "AFTER", "e30", "n1") +
    cmd("LINSERT", "l", "BEFORE", "e5", "n2") + cmd("LINSERT", "l", "before", "e0", "n3") +
    cmd("LINSERT", "l", "after", "e39", "n4") + cmd("LRANGE", "l", 0, -1) + cmd("LINDEX", "l", 7) +
    cmd("LINDEX", "l", -3),
    RESET + b"RPUSH l a a a\r\nLINSERT l AFTER a b\r\nLRANGE l 0 -1\r\nLINSERT l BEFORE A c\r\n",
    # LPOS
    RESET + b"RPUSH l a b c 1 2 3 c c\r\nLPOS l c\r\nLPOS l c RANK 2\r\nLPOS l c RANK -1\r\nLPOS l c RANK -3\r\n"
    b"LPOS l c RANK 4\r\nLPOS l c COUNT 2\r\nLPOS l c COUNT 0\r\nLPOS l c COUNT 0 RANK -1\r\n"
    b"LPOS l c COUNT 0 MAXLEN 3\r\nLPOS l c MAXLEN 2\r\nLPOS l c RANK -1 MAXLEN 1\r\nLPOS l zz\r\n"
    b"LPOS l zz COUNT 5\r\nLPOS l c COUNT 1 RANK 3\r\n",
    RESET + b"RPUSH l a b a c a\r\nLPOS l a RANK -9223372036854775808\r\nLPOS l a RANK -9223372036854775807\r\n"
    b"LPOS l a RANK 9223372036854775807\r\nLPOS l a COUNT 9223372036854775807\r\n"
    b"LPOS l a MAXLEN 9223372036854775807\r\nLPOS l a RANK 1 RANK 2\r\nLPOS l a MAXLEN 0 COUNT 0\r\n"
    b"LPOS l a rank -2 count 0 maxlen 4\r\n",
    RESET + b"RPUSH l a\r\nLPOS l a RANK 0\r\nLPOS l a RANK 0 RANK 1\r\nLPOS l a RANK 0 COUNT -1\r\n"
    b"LPOS l a COUNT -1 RANK 0\r\nLPOS l a COUNT x\r\nLPOS l a MAXLEN x\r\nLPOS l a MAXLEN -1\r\n"
    b"LPOS l a RANK x\r\nLPOS l a FOO 1\r\nLPOS l a RANK\r\nLPOS l a COUNT\r\nLPOS l\r\nLPOS lm a\r\n"
    b"LPOS lm a COUNT 0\r\nLPOS lm a RANK 0\r\nLPOS lm a FOO\r\n",
    # RPOPLPUSH and LMOVE: between lists, onto itself, to a new key
    RESET + b"RPUSH l a b c\r\nRPOPLPUSH l l2\r\nRPOPLPUSH l l2\r\nLRANGE l 0 -1\r\nLRANGE l2 0 -1\r\n"
    b"RPOPLPUSH l l2\r\nEXISTS l\r\nRPOPLPUSH l l2\r\nLRANGE l2 0 -1\r\nRPOPLPUSH l2 l2\r\nLRANGE l2 0 -1\r\n",
    RESET + b"RPUSH l a b c\r\nLMOVE l l2 LEFT RIGHT\r\nLMOVE l l2 right left\r\nLMOVE l l2 LEFT LEFT\r\n"
    b"LMOVE l l2 LEFT LEFT\r\nEXISTS l\r\nLRANGE l2 0 -1\r\nLMOVE l2 l2 LEFT RIGHT\r\nLRANGE l2 0 -1\r\n"
    b"LMOVE l2 l2 RIGHT LEFT\r\nLRANGE l2 0 -1\r\nLMOVE l2 l2 RIGHT RIGHT\r\nLMOVE l2 l2 LEFT LEFT\r\n"
    b"LRANGE l2 0 -1\r\n",
    RESET + b"RPUSH l a\r\nLMOVE l l LEFT RIGHT\r\nLRANGE l 0 -1\r\nRPOPLPUSH l l\r\nLLEN l\r\n",
    RESET + b"SET ls v\r\nRPUSH l a\r\nLMOVE l ls LEFT RIGHT\r\nRPOPLPUSH l ls\r\nLRANGE l 0 -1\r\n"
    b"LMOVE lm ls LEFT RIGHT\r\nRPOPLPUSH lm ls\r\nLMOVE ls l LEFT RIGHT\r\nLMOVE l l2 UP RIGHT\r\n"
    b"LMOVE l l2 LEFT DOWN\r\nLMOVE lm lm foo bar\r\nLMOVE l l2 LEFT\r\nRPOPLPUSH l\r\nLRANGE l 0 -1\r\n",
    # LMPOP: the first key holding a list, COUNT, errors before lookups
    RESET + b"RPUSH l2 1 2 3\r\nLMPOP 2 l l2 LEFT\r\nLMPOP 2 l l2 RIGHT COUNT 5\r\nLMPOP 2 l l2 LEFT\r\n"
    b"EXISTS l2\r\nLMPOP 0 l LEFT\r\nLMPOP -1 l LEFT\r\nLMPOP x l LEFT\r\nLMPOP 3 l l2 LEFT\r\nLMPOP 2 l l2\r\n"
    b"LMPOP 1 l UP\r\nLMPOP 1 l LEFT COUNT 0\r\nLMPOP 1 l LEFT COUNT -1\r\nLMPOP 1 l LEFT COUNT x\r\n"
    b"LMPOP 1 l LEFT FOO\r\nLMPOP 1 l LEFT COUNT 1 COUNT 2\r\nLMPOP 1 l\r\nLMPOP 1 l LEFT COUNT\r\n"
    b"LMPOP 9223372036854775807 l LEFT\r\nLMPOP 2147483648 l LEFT\r\nLMPOP 9223372036854775808 l LEFT\r\n",
    RESET + b"SET ls v\r\nRPUSH l2 a b\r\nLMPOP 2 ls l2 LEFT\r\nLMPOP 2 l ls LEFT\r\nLMPOP 2 l2 ls right\r\n"
    b"LMPOP 3 l l2 ls left count 9223372036854775807\r\nLMPOP 1 ls LEFT\r\nLMPOP 1 l LEFT COUNT x FOO\r\n"
    b"lmpop 1 l2 LEFT\r\n",
    # binary elements, empty elements, big elements
    RESET + cmd("RPUSH", "l", BIN, b"", b"\x00", BIN * 3) + cmd("LRANGE", "l", 0, -1) +
    cmd("LPOS", "l", b"\x00") + cmd("LINSERT", "l", "AFTER", b"", b"\r\n") + cmd("LREM", "l", 0, BIN) +
    cmd("LRANGE", "l", 0, -1) + cmd("LSET", "l", 0, b"$3\r\nabc") + cmd("LPOP", "l", 2) + cmd("RPOP", "l"),
    RESET + cmd("RPUSH", "l", b"x" * 100000, b"y" * 70000) + cmd("LPUSH", "l", b"z" * 300000) +
    cmd("LLEN", "l") + cmd("LINDEX", "l", 1) + cmd("LRANGE", "l", 0, -1) + cmd("LPOS", "l", b"y" * 70000) +
    cmd("LMOVE", "l", "l2", "LEFT", "RIGHT") + cmd("LPOP", "l", 5) + cmd("EXISTS", "l"),
    RESET + cmd("RPUSH", "l", b"w" * (2 << 20)) + cmd("LSET", "l", 0, b"v" * (1 << 20)) + cmd("RPOP", "l"),
    # lengths around what a ring slot holds in place (7 bytes), zero and high bytes
    RESET + cmd("RPUSH", "l", *[bytes([0xff - i] * i) for i in range(10)], *[b"\x00" * i for i in range(10)]) +
    cmd("LRANGE", "l", 0, -1) + cmd("LPOS", "l", b"\xf9" * 6) + cmd("LPOS", "l", b"\x00" * 7, "COUNT", 0) +
    cmd("LREM", "l", 0, b"\x00" * 8) + cmd("LINSERT", "l", "AFTER", b"\xf8" * 7, b"\x01" * 8) +
    cmd("LSET", "l", 3, b"1234567") + cmd("LSET", "l", 4, b"12345678") + cmd("LMOVE", "l", "l2", "LEFT", "LEFT") +
    cmd("RPOPLPUSH", "l", "l2") + cmd("LRANGE", "l2", 0, -1) + cmd("LPOP", "l", 20) + cmd("LRANGE", "l", 0, -1),
    # many elements: a push of 1000, pops at both ends through a wrapped ring
    RESET + cmd("RPUSH", "l", *range(1000)) + cmd("LPOP", "l", 300) + cmd("RPUSH", "l", *range(500)) +
    cmd("LPUSH", "l", *range(100)) + cmd("RPOP", "l", 50) + cmd("LLEN", "l") + cmd("LINDEX", "l", 100) +
    cmd("LRANGE", "l", 95, 105) + cmd("LPOS", "l", 499, "COUNT", 0) + cmd("LREM", "l", 0, 400) +
    cmd("LTRIM", "l", 5, -5) + cmd("LRANGE", "l", 0, 20) + cmd("LLEN", "l"),
    # expiry and keyspace commands on lists
    RESET + b"RPUSH l a b\r\nEXPIRE l 100\r\nTTL l\r\nRPUSH l c\r\nTTL l\r\nLPOP l 3\r\nTTL l\r\n"
    b"RPUSH l a\r\nPEXPIRE l 1\r\nDEL l\r\nEXISTS l\r\n",
    RESET + b"RPUSH l a\r\nDEL l l2\r\nRPUSH l a\r\n"
    b"SET l v\r\nGET l\r\nRPUSH l2 a\r\nSET l2 v NX\r\nSET l2 v XX GET\r\nLLEN l2\r\n",
    RESET + b"RPUSH l a b\r\nKEYS l\r\nDBSIZE\r\nDEL l\r\nDBSIZE\r\n",
    # case of command names and of option words
    RESET + b"rpush l a b c\r\nlrange l 0 -1\r\nLmOvE l l2 lEfT rIgHt\r\nlinsert l AfTeR b q\r\n"
    b"lpos l q rAnK 1 cOuNt 1 mAxLeN 0\r\nLRANGE l 0 -1\r\n",
]


def random_run(seed, n):
    """n random list commands over three keys and a vocabulary of six
    elements (so that LREM, LPOS and LINSERT find matches), with LRANGE of
    every key now and then: pushes and pops at both ends wrap the ring,
    removals shrink it."""
    import random
    rnd = random.Random(seed)
    keys = ["lA", "lB", "lC"]
    words = ["a", "b", "c", "dd", "", "e" * 40]
    out = [cmd("DEL", *keys)]

    def idx():
        return rnd.choice([rnd.randint(-12, 12), rnd.randint(-200, 200), 0, -1])

    for i in range(n):
        k, k2, w = rnd.choice(keys), rnd.choice(keys), rnd.choice(words)
        op = rnd.randrange(15)
        if op in (0, 1):
            out.append(cmd(rnd.choice(["LPUSH", "RPUSH"]), k, *rnd.choices(words, k=rnd.randint(1, 40))))
        elif op == 2:
            out.append(cmd(rnd.choice(["LPUSHX", "RPUSHX"]), k, w))
        elif op == 3:
            c = rnd.choice([None, 0, 1, 3, 25])
            out.append(cmd(rnd.choice(["LPOP", "RPOP"]), k, *([] if c is None else [c])))
        elif op == 4:
            out.append(cmd("LREM", k, rnd.choice([0, 1, 2, -1, -3]), w))
        elif op == 5:
            out.append(cmd("LINSERT", k, rnd.choice(["BEFORE", "AFTER"]), w, rnd.choice(words)))
        elif op == 6:
            out.append(cmd("LTRIM", k, idx(), idx()))
        elif op == 7:
            out.append(cmd("LSET", k, idx(), w))
        elif op == 8:
            out.append(cmd("LMOVE", k, k2, rnd.choice(["LEFT", "RIGHT"]), rnd.choice(["LEFT", "RIGHT"])))
        elif op == 9:
            out.append(cmd("RPOPLPUSH", k, k2))
        elif op == 10:
            out.append(cmd("LINDEX", k, idx()))
        elif op == 11:
            opts = []
            if rnd.random() < 0.5:
                opts += ["RANK", rnd.choice([1, 2, -1, -2, 5])]
            if rnd.random() < 0.5:
                opts += ["COUNT", rnd.choice([0, 1, 2])]
            if rnd.random() < 0.3:
                opts += ["MAXLEN", rnd.choice([0, 1, 5])]
            out.append(cmd("LPOS", k, w, *opts))
        elif op == 12:
            out.append(cmd("LRANGE", k, idx(), idx()))
        elif op == 13:
            ks = rnd.sample(keys, rnd.randint(1, 3))
            c = rnd.choice([[], ["COUNT", 1], ["COUNT", 7]])
            out.append(cmd("LMPOP", len(ks), *ks, rnd.choice(["LEFT", "RIGHT"]), *c))
        else:
            out.append(cmd("LLEN", k))
        if i % 25 == 24:
            out += [cmd("LRANGE", key, 0, -1) for key in keys]
    out += [cmd("LRANGE", key, 0, -1) for key in keys] + [cmd("DEL", *keys)]
    return b"".join(out)


CASES += [random_run(seed, 400) for seed in range(1, 6)]
