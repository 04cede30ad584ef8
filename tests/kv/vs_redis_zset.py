"""Sorted-set cases for kv_vs_redis.py: ZADD and its flags, ranges by
rank, score and member, LIMIT, pops, removals, ZSCAN, scores formatted as
Redis 7.0 does, errors, arity and WRONGTYPE. Each case starts by deleting
the keys it uses."""


from kvtest import cmd


def c(*lines):
    """Inline commands, one per string, after DEL of the keys used."""
    return b"DEL z z2 zs zstr\r\n" + b"".join(s.encode() + b"\r\n" for s in lines)


# Five members with distinct scores, two ties (ordered by member bytes).
FILL = "ZADD z 1 a 2 b 3 c 3 cc 3 bb 4 d -1 neg"
LEX = "ZADD z 0 a 0 b 0 c 0 d 0 e 0 f 0 g"

CASES = [
    # ZADD and its flags
    c("ZADD z 1 a", "ZADD z 2 a", "ZSCORE z a", "ZADD z 1.1 b", "ZSCORE z b", "ZCARD z"),
    c("ZADD z 1 a 2 b 3 c", "ZADD z NX 10 a 4 d", "ZADD z XX 20 b 5 e", "ZRANGE z 0 -1 WITHSCORES"),
    c("ZADD z 1 a 2 b", "ZADD z CH 1 a 3 b 4 c", "ZADD z ch xx 9 a 9 zz", "ZRANGE z 0 -1 WITHSCORES"),
    c("ZADD z 5 a", "ZADD z GT 3 a", "ZADD z GT CH 7 a", "ZADD z LT 9 a", "ZADD z LT CH 1 a", "ZSCORE z a",
      "ZADD z GT 1 new", "ZADD z LT 1 new2", "ZCARD z"),
    c("ZADD z INCR 5 a", "ZADD z INCR 2.5 a", "ZADD z NX INCR 1 a", "ZADD z XX INCR 1 b", "ZADD z XX INCR 1 a",
      "ZADD z GT INCR -1 a", "ZADD z LT INCR 1 a", "ZADD z LT INCR -1 a", "ZSCORE z a"),
    c("ZADD z NX XX 1 a", "ZADD z NX GT 1 a", "ZADD z LT NX 1 a", "ZADD z GT LT 1 a", "ZADD z INCR 1 a 2 b",
      "ZADD z 1", "ZADD z 1 a 2", "ZADD z NX", "ZADD z x a", "ZADD z 1 a x b", "ZADD z nan a", "ZADD z 1e400 a",
      "ZADD z ' 1' a", "ZADD z '1 ' a", "EXISTS z"),
    c("ZADD z XX 1 a", "EXISTS z", "ZADD z XX INCR 1 a", "EXISTS z", "ZADD z NX 1 a", "ZADD z NX 1 a"),
    c("ZADD z inf a -inf b +inf c", "ZRANGE z 0 -1 WITHSCORES", "ZINCRBY z -inf a", "ZINCRBY z inf b",
      "ZADD z INCR -inf c", "ZSCORE z a", "ZINCRBY z 1 a"),
    c("ZADD z 0.1 a 1e20 b 1e-5 c 123456789.125 d -0 e 0x10 f 3.0 g 1e308 h", "ZRANGE z 0 -1 WITHSCORES",
      "ZMSCORE z a b c d e f g h nosuch"),
    c("ZINCRBY z 1 a", "ZINCRBY z 1.5 a", "ZINCRBY z -0.5 a", "ZINCRBY z x a", "ZINCRBY z nx a",
      "ZINCRBY z", "ZINCRBY z 1 a b", "ZSCORE z a"),
    c("ZADD z 1 a 2 a", "ZADD z CH 3 a 3 a 4 a", "ZADD z NX 1 b 2 b", "ZADD z XX CH 5 a 5 a", "ZRANGE z 0 -1 WITHSCORES",
      "ZREM z a a b", "EXISTS z"),
    c("ZADD z 1 a", "EXPIRE z 100", "ZADD z 2 b", "ZINCRBY z 1 a", "ZREM z a", "TTL z", "ZPOPMIN z", "TTL z",
      "ZADD z 1 a", "TTL z", "EXPIRE z 0", "ZCARD z", "EXISTS z"),
    c("ZADD z 1 a", "ZADD z 0 a", "ZADD z -0 a", "ZSCORE z a", "ZADD z CH 0 a", "ZSCORE z a"),
    # reads of members
    c(FILL, "ZSCORE z c", "ZSCORE z nosuch", "ZSCORE nokey a", "ZMSCORE z a nosuch d", "ZMSCORE nokey a b",
      "ZRANK z neg", "ZRANK z cc", "ZRANK z bb", "ZRANK z nosuch", "ZRANK nokey a", "ZREVRANK z neg",
      "ZREVRANK z d", "ZREVRANK z nosuch", "ZCARD z", "ZCARD nokey"),
    c("ZSCORE z", "ZSCORE z a b", "ZMSCORE z", "ZRANK z", "ZRANK z a WITHSCORE", "ZREVRANK z", "ZCARD",
      "ZCARD a b"),
    # by rank
    c(FILL, "ZRANGE z 0 -1", "ZRANGE z 0 -1 WITHSCORES", "ZRANGE z 2 3", "ZRANGE z -2 -1", "ZRANGE z -100 1",
      "ZRANGE z 5 100", "ZRANGE z 3 2", "ZRANGE z 7 8", "ZRANGE z -1 -100", "ZRANGE z 0 0 withscores"),
    c(FILL, "ZREVRANGE z 0 -1", "ZREVRANGE z 0 1 WITHSCORES", "ZREVRANGE z -3 -1", "ZRANGE z 0 2 REV",
      "ZRANGE z 1 -2 REV WITHSCORES", "ZREVRANGE z 0 -1 REV", "ZREVRANGE z 0 -1 BYSCORE"),
    c(FILL, "ZRANGE z 0 -9223372036854775808", "ZRANGE z -9223372036854775808 9223372036854775807",
      "ZRANGE z x 1", "ZRANGE z 0 1.5", "ZRANGE nokey 0 -1", "ZRANGE nokey x 1", "ZRANGE z 0 -1 LIMIT 0 -1",
      "ZRANGE z 0 -1 LIMIT 0 1", "ZRANGE z 0 -1 LIMIT 0 -2", "ZREVRANGE z 0 -1 LIMIT 0 1",
      "ZRANGE z 0 -1 FOO", "ZRANGE z 0 -1 LIMIT 0", "ZRANGE z 0 -1 LIMIT x 1", "ZRANGE z 0", "ZREVRANGE z 0"),
    # by score
    c(FILL, "ZRANGEBYSCORE z -inf +inf", "ZRANGEBYSCORE z -inf +inf WITHSCORES", "ZRANGEBYSCORE z 2 3",
      "ZRANGEBYSCORE z (2 3", "ZRANGEBYSCORE z 2 (3", "ZRANGEBYSCORE z (2 (3", "ZRANGEBYSCORE z (3 (3",
      "ZRANGEBYSCORE z 3 3", "ZRANGEBYSCORE z 4 2", "ZRANGEBYSCORE z (-1 1", "ZRANGEBYSCORE z 5 inf",
      "ZRANGEBYSCORE z -inf -2", "ZCOUNT z -inf +inf", "ZCOUNT z (1 3", "ZCOUNT z 3 3", "ZCOUNT z (3 3",
      "ZCOUNT z 10 20", "ZCOUNT nokey 0 1"),
    c(FILL, "ZRANGEBYSCORE z -inf +inf LIMIT 1 2", "ZRANGEBYSCORE z -inf +inf LIMIT 2 -1",
      "ZRANGEBYSCORE z -inf +inf LIMIT -1 2", "ZRANGEBYSCORE z -inf +inf LIMIT 0 0",
      "ZRANGEBYSCORE z -inf +inf LIMIT 6 5", "ZRANGEBYSCORE z -inf +inf LIMIT 7 5",
      "ZRANGEBYSCORE z -inf +inf LIMIT 100 5", "ZRANGEBYSCORE z 3 3 LIMIT 1 1 WITHSCORES",
      "ZRANGEBYSCORE z -inf +inf LIMIT 1 2 LIMIT 3 1", "ZRANGEBYSCORE z -inf +inf LIMIT 1 -9223372036854775808"),
    c(FILL, "ZREVRANGEBYSCORE z +inf -inf", "ZREVRANGEBYSCORE z 3 2 WITHSCORES", "ZREVRANGEBYSCORE z (3 -inf",
      "ZREVRANGEBYSCORE z 2 3", "ZREVRANGEBYSCORE z +inf -inf LIMIT 1 3",
      "ZRANGE z +inf -inf BYSCORE REV LIMIT 2 2 WITHSCORES", "ZRANGE z (1 3 BYSCORE", "ZRANGE z 3 (1 byscore rev",
      "ZRANGE z -inf inf BYSCORE LIMIT 1 1"),
    c(FILL, "ZRANGEBYSCORE z x 1", "ZRANGEBYSCORE z 1 x", "ZRANGEBYSCORE z nan 1", "ZRANGEBYSCORE z ((1 2",
      "ZRANGEBYSCORE z '' 3", "ZRANGEBYSCORE z ( 3", "ZRANGEBYSCORE z ' 2' 3", "ZRANGEBYSCORE z '2 ' 3",
      "ZRANGEBYSCORE z 1e400 1e500", "ZRANGEBYSCORE z -1e400 0x2", "ZRANGEBYSCORE z 1 2 REV",
      "ZRANGEBYSCORE z 1 2 BYSCORE", "ZRANGEBYSCORE z 1 2 BYLEX", "ZRANGEBYSCORE z 1 2 LIMIT 1",
      "ZRANGEBYSCORE nokey x 1", "ZCOUNT z x 1", "ZCOUNT z 1", "ZRANGEBYSCORE z 1", "ZREVRANGEBYSCORE z 1"),
    cmd("DEL", "z") + cmd("ZADD", "z", "1", "a", "2", "b") + cmd("ZRANGEBYSCORE", "z", b"1\x00junk", "2")
    + cmd("ZCOUNT", "z", b"(1\x00", b"\x00"),
    c(FILL, "ZRANGE z 0 -1 BYSCORE BYLEX", "ZRANGE z 0 -1 BYSCORE BYSCORE", "ZRANGE z 0 -1 REV REV",
      "ZRANGE z a b BYLEX WITHSCORES", "ZRANGE z [a [b BYLEX WITHSCORES", "ZRANGE z 0 -1 WITHSCORES WITHSCORES",
      "ZRANGE z 0 -1 LIMIT 1 1 BYSCORE", "ZRANGE z 0 1 LIMIT 1 1", "ZRANGE nokey 0 1 LIMIT 1 1",
      "ZRANGE nokey x y BYSCORE", "ZRANGE z x y BYLEX LIMIT 0 1"),
    # by member
    c(LEX, "ZRANGEBYLEX z - +", "ZRANGEBYLEX z [b [d", "ZRANGEBYLEX z (b (d", "ZRANGEBYLEX z (b [d",
      "ZRANGEBYLEX z [b (b", "ZRANGEBYLEX z [b [b", "ZRANGEBYLEX z [d [b", "ZRANGEBYLEX z - [c",
      "ZRANGEBYLEX z (e +", "ZRANGEBYLEX z + -", "ZRANGEBYLEX z - -", "ZRANGEBYLEX z + +", "ZRANGEBYLEX z [ +",
      "ZRANGEBYLEX z ( (", "ZRANGEBYLEX z [aa (cc", "ZRANGEBYLEX z - + LIMIT 2 3", "ZRANGEBYLEX z - + LIMIT 5 -1",
      "ZRANGEBYLEX z - + LIMIT -2 3"),
    c(LEX, "ZREVRANGEBYLEX z + -", "ZREVRANGEBYLEX z [d [b", "ZREVRANGEBYLEX z (d - LIMIT 1 2",
      "ZRANGE z [f (b BYLEX REV", "ZRANGE z - + BYLEX LIMIT 1 1", "ZLEXCOUNT z - +", "ZLEXCOUNT z [b (e",
      "ZLEXCOUNT z (g +", "ZLEXCOUNT z [c [a", "ZLEXCOUNT nokey - +"),
    c(LEX, "ZRANGEBYLEX z a +", "ZRANGEBYLEX z - b", "ZRANGEBYLEX z -- +", "ZRANGEBYLEX z - ++",
      "ZRANGEBYLEX z '' +", "ZRANGEBYLEX z - + WITHSCORES", "ZRANGEBYLEX nokey x y", "ZLEXCOUNT z a b",
      "ZLEXCOUNT z - + x", "ZRANGEBYLEX z [a", "ZREMRANGEBYLEX z a b"),
    cmd("DEL", "z") + cmd("ZADD", "z", "0", b"a\x00b", "0", b"a", "0", b"\xff", "0", b"", "0", b"a\x00")
    + cmd("ZRANGEBYLEX", "z", "-", "+") + cmd("ZRANGEBYLEX", "z", b"(a", b"[a\x00b") + cmd("ZRANGEBYLEX", "z", b"+\x00x", "-")
    + cmd("ZRANGEBYLEX", "z", b"[", b"(a") + cmd("ZLEXCOUNT", "z", b"-\x00", "+"),
    # ZRANGESTORE: the destination replaced (type and time to live), deleted when empty
    c(FILL, "SET z2 x", "EXPIRE z2 100", "ZRANGESTORE z2 z 0 2", "TTL z2", "ZRANGE z2 0 -1 WITHSCORES",
      "ZRANGESTORE z2 z (1 3 BYSCORE", "ZRANGE z2 0 -1", "ZRANGESTORE z2 z 3 (1 BYSCORE REV LIMIT 1 2",
      "ZRANGE z2 0 -1", "ZRANGESTORE z2 z 0 -1 WITHSCORES", "ZRANGESTORE z2 nokey 0 -1", "EXISTS z2",
      "ZRANGESTORE z2 z 5 1", "EXISTS z2", "ZRANGESTORE z z 1 -2", "ZRANGE z 0 -1", "ZRANGESTORE z z 9 10",
      "EXISTS z"),
    c(LEX, "ZRANGESTORE z2 z [b (e BYLEX", "ZRANGE z2 0 -1", "ZRANGESTORE z2 z + - BYLEX REV LIMIT 0 2",
      "ZRANGE z2 0 -1", "SET zstr v", "ZRANGESTORE z2 zstr 0 -1", "ZRANGESTORE zstr z 0 0", "ZCARD zstr",
      "ZRANGESTORE z2 z 0 -1 LIMIT 0 1", "ZRANGESTORE z2 z x 1", "ZRANGESTORE z2 z a b BYLEX", "ZRANGESTORE z2 z 0",
      "ZRANGESTORE z2 z 0 1 BYSCORE BYLEX", "ZRANGE z2 0 -1"),
    # pops
    c(FILL, "ZPOPMIN z", "ZPOPMAX z", "ZPOPMIN z 2", "ZPOPMAX z 0", "ZPOPMIN z -1", "ZPOPMIN z x",
      "ZPOPMIN z 1 2", "ZPOPMAX z 100", "EXISTS z", "ZPOPMIN z", "ZPOPMAX nokey", "ZPOPMIN nokey 5",
      "ZPOPMIN nokey -1", "ZPOPMIN", "ZPOPMAX"),
    c("ZADD z 1 a", "ZPOPMIN z 9223372036854775807", "EXISTS z", "ZADD z 1 a", "ZPOPMAX z 1.5",
      "ZPOPMAX z 9223372036854775808"),
    # removals
    c(FILL, "ZREM z a nosuch b a", "ZREM z nosuch", "ZREM nokey a", "ZCARD z", "ZREM z neg c cc bb d",
      "EXISTS z", "ZREM z", "ZREM"),
    c(FILL, "ZREMRANGEBYRANK z 0 0", "ZREMRANGEBYRANK z -2 -1", "ZREMRANGEBYRANK z 5 10", "ZREMRANGEBYRANK z 2 1",
      "ZRANGE z 0 -1", "ZREMRANGEBYRANK z 0 -1", "EXISTS z", "ZREMRANGEBYRANK nokey 0 -1",
      "ZREMRANGEBYRANK nokey x 1", "ZREMRANGEBYRANK z x 1", "ZREMRANGEBYRANK z 0"),
    c(FILL, "ZREMRANGEBYSCORE z (1 3", "ZRANGE z 0 -1 WITHSCORES", "ZREMRANGEBYSCORE z 5 inf",
      "ZREMRANGEBYSCORE z 3 1", "ZREMRANGEBYSCORE z x 1", "ZREMRANGEBYSCORE nokey x 1",
      "ZREMRANGEBYSCORE z -inf +inf", "EXISTS z", "ZREMRANGEBYSCORE z 1"),
    c(LEX, "ZREMRANGEBYLEX z [b (d", "ZREMRANGEBYLEX z (f +", "ZRANGE z 0 -1", "ZREMRANGEBYLEX z - +",
      "EXISTS z"),
    # ZSCAN: a small set comes whole, in order, as Redis's listpacks do
    c(FILL, "ZSCAN z 0", "ZSCAN z 0 MATCH b*", "ZSCAN z 0 COUNT 100 MATCH *c", "ZSCAN z 5 COUNT 1",
      "ZSCAN z 0 MATCH nomatch"),
    c(FILL, "ZSCAN z x", "ZSCAN z 0 COUNT 0", "ZSCAN z 0 COUNT x", "ZSCAN z 0 MATCH", "ZSCAN z 0 FOO bar",
      "ZSCAN z 0 TYPE zset", "ZSCAN nokey 0", "ZSCAN nokey 0 COUNT 0", "ZSCAN nokey x", "ZSCAN z", "ZSCAN"),
    # wrong type, and a string key on every command
    c("SET zstr v", "ZADD zstr 1 a", "ZADD zstr x a", "ZADD zstr NX XX 1 a", "ZINCRBY zstr 1 a",
      "ZSCORE zstr a", "ZMSCORE zstr a", "ZRANK zstr a", "ZREVRANK zstr a", "ZCARD zstr", "ZCOUNT zstr 0 1",
      "ZCOUNT zstr x 1", "ZLEXCOUNT zstr - +", "ZRANGE zstr 0 -1", "ZRANGE zstr x 1", "ZREVRANGE zstr 0 -1",
      "ZRANGEBYSCORE zstr 0 1", "ZREVRANGEBYSCORE zstr 1 0", "ZRANGEBYLEX zstr - +", "ZREVRANGEBYLEX zstr + -",
      "ZPOPMIN zstr", "ZPOPMAX zstr 2", "ZPOPMIN zstr -1", "ZREM zstr a", "ZREMRANGEBYRANK zstr 0 -1",
      "ZREMRANGEBYSCORE zstr 0 1", "ZREMRANGEBYLEX zstr - +", "ZSCAN zstr 0", "ZSCAN zstr x",
      "ZSCAN zstr 0 COUNT 0", "ZPOPMIN zstr 0", "ZPOPMIN nokey 0", "GET zstr"),
    c("ZADD z 1 a", "GET z", "INCR z", "APPEND z x", "STRLEN z", "SET z v", "ZCARD z", "GET z"),
    # binary members and a larger set (the skip list beyond a few levels)
    cmd("DEL", "z") + cmd("ZADD", "z", "1", b"\x00", "1", b"\xff\r\n", "1", b"", "0", b"a b")
    + cmd("ZRANGE", "z", "0", "-1", "WITHSCORES") + cmd("ZSCORE", "z", b"") + cmd("ZRANK", "z", b"\xff\r\n")
    + cmd("ZREM", "z", b"\x00") + cmd("ZRANGE", "z", "0", "-1"),
    cmd("DEL", "z") + cmd("ZADD", "z", *[x for i in range(300) for x in (str(i % 17), "m%03d" % i)])
    + cmd("ZCARD", "z") + cmd("ZRANGE", "z", "100", "120", "WITHSCORES") + cmd("ZREVRANGE", "z", "0", "5")
    + cmd("ZRANK", "z", "m150") + cmd("ZREVRANK", "z", "m150") + cmd("ZCOUNT", "z", "(3", "7")
    + cmd("ZRANGEBYSCORE", "z", "5", "(6", "LIMIT", "3", "4") + cmd("ZREVRANGEBYSCORE", "z", "5", "(2", "LIMIT", "10", "3")
    + cmd("ZREMRANGEBYRANK", "z", "10", "49") + cmd("ZREMRANGEBYSCORE", "z", "(15", "16") + cmd("ZCARD", "z")
    + cmd("ZRANGE", "z", "-30", "-1") + cmd("ZPOPMIN", "z", "7") + cmd("ZPOPMAX", "z", "3")
    + cmd("ZINCRBY", "z", "100", "m150") + cmd("ZRANGE", "z", "-2", "-1", "WITHSCORES") + cmd("ZRANK", "z", "m150"),
    # a set Redis keeps as a skip list (over 128 members, or a member over
    # 64 bytes): its ZSCAN order is the hash table's, so MATCH picks one
    cmd("DEL", "z") + cmd("ZADD", "z", *[x for i in range(200) for x in (str(i), "m%d" % i)])
    + cmd("ZSCAN", "z", "0", "COUNT", "1000", "MATCH", "m17") + cmd("ZSCAN", "z", "0", "COUNT", "1000", "MATCH", "x*")
    + cmd("ZRANGE", "z", "(150", "-inf", "BYSCORE", "REV", "LIMIT", "5", "3", "WITHSCORES")
    + cmd("ZRANGEBYSCORE", "z", "190", "+inf", "LIMIT", "0", "9223372036854775807")
    + cmd("ZRANGE", "z", "0", "9223372036854775807", "LIMIT", "0", "-1") + cmd("ZREMRANGEBYRANK", "z", "0", "-101")
    + cmd("ZRANGE", "z", "0", "2") + cmd("ZPOPMAX", "z", "2") + cmd("ZREMRANGEBYRANK", "z", "3", "-1")
    + cmd("ZSCAN", "z", "0", "MATCH", "m101"),
    # -0: a small set keeps 0 (Redis's listpack), one past 128 members or with a long member keeps -0
    cmd("DEL", "z", "z2") + cmd("ZADD", "z", *[x for i in range(129) for x in ("-0", "m%d" % i)])
    + cmd("ZMSCORE", "z", "m0", "m127", "m128") + cmd("ZADD", "z2", *[x for i in range(128) for x in ("1", "m%d" % i)])
    + cmd("ZADD", "z2", "-0", "last") + cmd("ZSCORE", "z2", "last") + cmd("ZINCRBY", "z2", "-1", "m0")
    + cmd("ZADD", "z2", "-0", "m0") + cmd("ZSCORE", "z2", "m0") + cmd("DEL", "z2")
    + cmd("ZADD", "z2", "-0", "a", "-0", "x" * 65, "-0", "b") + cmd("ZMSCORE", "z2", "a", "x" * 65, "b")
    + cmd("ZRANGESTORE", "z2", "z", "0", "200") + cmd("ZMSCORE", "z2", "m0", "m127", "m128")
    + cmd("ZRANGESTORE", "z2", "z", "-3", "-1") + cmd("ZRANGE", "z2", "0", "-1", "WITHSCORES"),
    cmd("DEL", "z") + cmd("ZADD", "z", "1", "x" * 65, "2", "b", "3", "c") + cmd("ZSCAN", "z", "0", "MATCH", "b")
    + cmd("ZRANGE", "z", "0", "-1") + cmd("ZREM", "z", "x" * 65) + cmd("ZSCAN", "z", "0", "MATCH", "c"),
    cmd("DEL", "z") + cmd("ZADD", "z", *[x for i in range(300) for x in ("0", "k%04d" % i)])
    + cmd("ZRANGEBYLEX", "z", "[k0100", "(k0105") + cmd("ZREVRANGEBYLEX", "z", "+", "(k0295", "LIMIT", "1", "2")
    + cmd("ZLEXCOUNT", "z", "(k0010", "[k0200") + cmd("ZREMRANGEBYLEX", "z", "-", "(k0290") + cmd("ZRANGE", "z", "0", "-1"),
    c("ZADD z INCR -0 a", "ZSCORE z a", "ZADD z INCR -0 a", "ZINCRBY z -0 b", "ZRANGE z 0 -1 WITHSCORES",
      "ZADD z GT CH INCR 1 a", "ZADD z LT CH INCR 1 a", "ZADD z GT XX 1 nosuch", "ZADD z LT XX CH 0.5 a",
      "ZADD z CH CH 1 a", "zadd z nx nx 1 q", "ZADD z INCR INCR 1 a", "ZRANGE z 0 -1 WITHSCORES"),
    # arity
    c("ZADD", "ZADD z", "ZADD z 1", "ZINCRBY z 1", "ZCOUNT z 1", "ZLEXCOUNT z -", "ZRANGE z 0",
      "ZRANGEBYLEX z -", "ZREVRANGEBYLEX z +", "ZREMRANGEBYRANK z 0", "ZREMRANGEBYSCORE z 0 1 2"),
]


def random_cases(seed=16, ncases=30, ncmds=40, big=False):
    """Random commands on small sets (at most 28 members, so Redis keeps
    them as listpacks and every reply, ZSCAN's included, has one order),
    or with big on sets of hundreds of members (Redis's skip lists; no
    ZSCAN then, its order is the hash table's). Lex ranges only on a set
    whose scores are all equal, where the order by member is defined."""
    import random
    rnd = random.Random(seed)
    members = ["m%d" % i for i in range(24)] + ["", "a b", "\xff", "M"]
    if big:
        members += ["b%d" % i for i in range(600)]
    scores = ["0", "1", "-1", "2.5", "-0", "3", "1e3", "inf", "-inf", "0.1", "7", "-2.25"]

    def score():
        return rnd.choice(scores)

    def bound():
        s = rnd.choice(scores + ["+inf", "-inf"])
        return ("(" + s) if rnd.random() < 0.3 else s

    def lexb():
        r = rnd.random()
        if r < 0.15:
            return rnd.choice(["-", "+"])
        return rnd.choice("([") + rnd.choice(members + ["m", "m1", "m9z"])

    def idx():
        if big:
            return str(rnd.randint(-320, 320))
        return str(rnd.randint(-8, 8) if rnd.random() < 0.9 else rnd.choice([-2**63, 2**63 - 1, 100]))

    out = []
    for _ in range(ncases):
        data = cmd("DEL", "z", "zl")
        if big:
            pool = rnd.sample(members, 300)
            data += cmd("ZADD", "z", *[x for m in pool for x in (score(), m)])
            data += cmd("ZADD", "zl", *[x for m in pool for x in ("0", m)])
        for _ in range(ncmds):
            op = rnd.randrange(18)
            k = "z"
            if op == 0 or op == 1:
                flags = [f for f in ("NX", "XX", "GT", "LT", "CH", "INCR") if rnd.random() < 0.15]
                pairs = [x for _ in range(1 if "INCR" in flags else rnd.randint(1, 40 if big else 4))
                         for x in (score(), rnd.choice(members))]
                data += cmd("ZADD", k, *flags, *pairs)
            elif op == 2:
                data += cmd("ZINCRBY", k, score(), rnd.choice(members))
            elif op == 3:
                data += cmd("ZREM", k, *rnd.sample(members, rnd.randint(1, 30 if big else 3)))
            elif op == 4:
                data += cmd(rnd.choice(["ZPOPMIN", "ZPOPMAX"]), k, *([str(rnd.randint(0, 4))] if rnd.random() < 0.5 else []))
            elif op == 5:
                extra = ["REV"] if rnd.random() < 0.3 else []
                extra += ["WITHSCORES"] if rnd.random() < 0.5 else []
                data += cmd("ZRANGE", k, idx(), idx(), *extra)
            elif op == 6:
                extra = ["WITHSCORES"] if rnd.random() < 0.5 else []
                if rnd.random() < 0.5:
                    extra += ["LIMIT", str(rnd.randint(-1, 5)), str(rnd.randint(-2, 5))]
                name = rnd.choice(["ZRANGEBYSCORE", "ZREVRANGEBYSCORE"])
                data += cmd(name, k, bound(), bound(), *extra)
            elif op == 7:
                extra = ["BYSCORE"] + (["REV"] if rnd.random() < 0.5 else [])
                if rnd.random() < 0.5:
                    extra += ["LIMIT", str(rnd.randint(0, 4)), str(rnd.randint(-1, 4))]
                data += cmd("ZRANGE", k, bound(), bound(), *extra)
            elif op == 8:
                data += cmd("ZCOUNT", k, bound(), bound())
            elif op == 9:
                data += cmd(rnd.choice(["ZRANK", "ZREVRANK", "ZSCORE"]), k, rnd.choice(members))
            elif op == 10:
                data += cmd("ZMSCORE", k, *rnd.sample(members, 3))
            elif op == 11:
                data += cmd("ZREMRANGEBYRANK", k, idx(), idx())
            elif op == 12:
                data += cmd("ZREMRANGEBYSCORE", k, bound(), bound())
            elif op == 13 and big:
                data += cmd("ZRANGESTORE", "z2", k, idx(), str(rnd.randint(0, 400))) + cmd("ZRANGE", "z2", "0", "-1")
            elif op == 13:
                data += cmd("ZSCAN", k, "0", *(["MATCH", "m1*"] if rnd.random() < 0.5 else []))
            elif op == 14:
                data += cmd("ZADD", "zl", "0", rnd.choice(members), "0", rnd.choice(members))
            elif op == 15:
                name = rnd.choice(["ZRANGEBYLEX", "ZREVRANGEBYLEX", "ZLEXCOUNT", "ZREMRANGEBYLEX"])
                extra = ["LIMIT", str(rnd.randint(0, 3)), str(rnd.randint(-1, 3))] \
                    if name.endswith("LEX") and "RANGEBY" in name and rnd.random() < 0.4 else []
                data += cmd(name, "zl", lexb(), lexb(), *extra)
            elif op == 16:
                data += cmd("ZCARD", rnd.choice(["z", "zl"]))
            else:
                data += cmd("ZRANGE", "z", "0", "-1", "WITHSCORES") + cmd("ZRANGE", "zl", "0", "-1")
        out.append(data)
    return out


CASES += random_cases()
CASES += random_cases(seed=17, ncases=10, big=True)
