"""Hash commands for kv_vs_redis.py: the same bytes to demi-kv and to
redis-server 7.0, byte-identical replies. HGETALL, HKEYS and HVALS answer
in the table's order (Redis's listpack keeps insertion order, demi-kv's
dict its hash order), so those cases compare sorted; HSCAN of more than
one field is left to kv_hash.py for the same reason."""


from kvtest import cmd, cmds


def unordered(data, pairs=False):
    return {"data": data, "unordered": True, "pairs": pairs}


BIN = b"\x00\r\n\xff\x01" * 30
BIG = b"v" * 100000

CASES = [
    # HSET, HMSET, HSETNX: replies, arity (odd pairs), reply counts
    b"DEL h\r\nHSET h a 1\r\nHSET h a 2 b 3\r\nHSET h a 2 a 4\r\nHGET h a\r\nHLEN h\r\n",
    b"HSET\r\nHSET h\r\nHSET h a\r\nHSET h a 1 b\r\nHMSET h\r\nHMSET h a\r\nHMSET h a 1 b\r\nHSETNX h a\r\n"
    b"HSETNX h a 1 2\r\nHSETNX\r\n",
    b"DEL h\r\nHMSET h a 1 b 2\r\nHMGET h a b c\r\nHSETNX h a 9\r\nHSETNX h c 9\r\nHMGET h a c\r\nHLEN h\r\n",
    b"DEL hn\r\nHSETNX hn f v\r\nHGET hn f\r\nEXISTS hn\r\n",
    # the empty field and value, binary and big fields
    b'DEL h\r\nHSET h "" ""\r\nHGET h ""\r\nHSTRLEN h ""\r\nHEXISTS h ""\r\nHLEN h\r\n',
    cmds(("DEL", "hb"), ("HSET", "hb", BIN, BIN + b"v"), ("HGET", "hb", BIN), ("HSTRLEN", "hb", BIN),
         ("HEXISTS", "hb", BIN), ("HMGET", "hb", BIN, b"x", BIN)),
    cmds(("DEL", "hbig"), ("HSET", "hbig", "f", BIG), ("HSET", "hbig", BIG, "v"), ("HGET", "hbig", "f"),
         ("HSTRLEN", "hbig", "f"), ("HGET", "hbig", BIG), ("HSTRLEN", "hbig", BIG), ("HLEN", "hbig"),
         ("HDEL", "hbig", BIG, "f", "f"), ("EXISTS", "hbig")),
    # reads of missing keys and fields
    b"HGET nokey f\r\nHMGET nokey a b\r\nHGETALL nokey\r\nHKEYS nokey\r\nHVALS nokey\r\nHLEN nokey\r\n"
    b"HEXISTS nokey f\r\nHSTRLEN nokey f\r\nHDEL nokey f\r\nHRANDFIELD nokey\r\nHRANDFIELD nokey 5\r\n"
    b"HRANDFIELD nokey -5 WITHVALUES\r\nHSCAN nokey 0\r\nEXISTS nokey\r\n",
    b"DEL h\r\nHSET h a 1\r\nHGET h b\r\nHEXISTS h b\r\nHSTRLEN h b\r\nHMGET h b\r\nHDEL h b\r\nHLEN h\r\n",
    # arity of every command
    b"HGET\r\nHGET h\r\nHGET h a b\r\nHMGET\r\nHMGET h\r\nHGETALL\r\nHGETALL h x\r\nHDEL\r\nHDEL h\r\n"
    b"HEXISTS h\r\nHEXISTS h a b\r\nHLEN\r\nHLEN h x\r\nHSTRLEN h\r\nHSTRLEN h a b\r\nHINCRBY h a\r\n"
    b"HINCRBY h a 1 2\r\nHINCRBYFLOAT h a\r\nHINCRBYFLOAT h a 1 2\r\nHKEYS\r\nHKEYS h x\r\nHVALS\r\n"
    b"HVALS h x\r\nHRANDFIELD\r\nHSCAN h\r\nHSCAN\r\nhset h\r\nhgetall\r\n",
    # HDEL: counts, duplicates, an emptied hash deletes its key
    b"DEL h\r\nHSET h a 1 b 2 c 3\r\nHDEL h a a x\r\nHLEN h\r\nHDEL h b c b\r\nEXISTS h\r\nHLEN h\r\n"
    b"HSET h a 1\r\nEXISTS h\r\n",
    # WRONGTYPE for every command, and the key left alone
    b"SET str v\r\nHSET str a 1\r\nHMSET str a 1\r\nHSETNX str a 1\r\nHGET str a\r\nHMGET str a\r\n"
    b"HGETALL str\r\nHDEL str a\r\nHEXISTS str a\r\nHLEN str\r\nHSTRLEN str a\r\nHINCRBY str a 1\r\n"
    b"HINCRBYFLOAT str a 1\r\nHKEYS str\r\nHVALS str\r\nHRANDFIELD str\r\nHRANDFIELD str 0\r\n"
    b"HRANDFIELD str -1 WITHVALUES\r\nHSCAN str 0\r\nHSCAN str 0 COUNT 0\r\nGET str\r\n",
    b"DEL hs\r\nHSET hs a 1\r\nGET hs\r\nINCR hs\r\nAPPEND hs x\r\nSTRLEN hs\r\nGETSET hs x\r\nSET hs x\r\n"
    b"GET hs\r\nHGET hs a\r\n",
    # error order: arity before type, argument before type
    b"SET str v\r\nHSET str a\r\nHINCRBY str a x\r\nHINCRBYFLOAT str a x\r\nHINCRBYFLOAT str a inf\r\n"
    b"HRANDFIELD str x\r\nHRANDFIELD str 1 WITHVALUE\r\nHSCAN str x\r\n",
    # HINCRBY
    b"DEL hi\r\nHINCRBY hi a 5\r\nHINCRBY hi a -7\r\nHGET hi a\r\nHINCRBY hi b 0\r\nHGET hi b\r\n"
    b"HINCRBY hi a x\r\nHINCRBY hi a 1.5\r\nHINCRBY hi a 9223372036854775808\r\nHINCRBY hi a ' 1'\r\n",
    b"DEL hi\r\nHSET hi max 9223372036854775807 min -9223372036854775808\r\nHINCRBY hi max 1\r\n"
    b"HINCRBY hi max 0\r\nHINCRBY hi min -1\r\nHINCRBY hi min 9223372036854775807\r\nHINCRBY hi max -9223372036854775808\r\n"
    b"HGET hi max\r\nHGET hi min\r\n",
    b'DEL hi\r\nHSET hi s " 1" f 1.5 e "" z 01 p +1 n -0 w abc\r\nHINCRBY hi s 1\r\nHINCRBY hi f 1\r\n'
    b"HINCRBY hi e 1\r\nHINCRBY hi z 1\r\nHINCRBY hi p 1\r\nHINCRBY hi n 1\r\nHINCRBY hi w 1\r\nHGET hi n\r\n",
    b"DEL hi\r\nHINCRBY hi a x\r\nEXISTS hi\r\nHINCRBYFLOAT hi a x\r\nEXISTS hi\r\nHINCRBYFLOAT hi a inf\r\n"
    b"EXISTS hi\r\n",
    # HINCRBYFLOAT: formatting, inf, overflow past double, non-numbers
    b"DEL hf\r\nHINCRBYFLOAT hf a 10.5\r\nHINCRBYFLOAT hf a 0.1\r\nHINCRBYFLOAT hf a -5\r\nHINCRBYFLOAT hf b 5.0e3\r\n"
    b"HINCRBYFLOAT hf c 1e-5\r\nHINCRBYFLOAT hf d -0.0\r\nHINCRBYFLOAT hf e -1e-30\r\nHINCRBYFLOAT hf f 3\r\n"
    b"HGET hf a\r\nHGET hf d\r\nHINCRBYFLOAT hf g .5\r\nHINCRBYFLOAT hf h 5.\r\nHINCRBYFLOAT hf i 0x10\r\n"
    b"HINCRBYFLOAT hf j +1e2\r\nHINCRBYFLOAT hf k 1.5e-17\r\nHINCRBYFLOAT hf l 123456789.123456789\r\n",
    b"DEL hf\r\nHINCRBYFLOAT hf a inf\r\nHINCRBYFLOAT hf a -inf\r\nHINCRBYFLOAT hf a +inf\r\n"
    b"HINCRBYFLOAT hf a nan\r\nHINCRBYFLOAT hf a abc\r\nHINCRBYFLOAT hf a ''\r\nHINCRBYFLOAT hf a ' 1'\r\n"
    b"HINCRBYFLOAT hf a '1 '\r\nHINCRBYFLOAT hf a 1e-5000\r\nHINCRBYFLOAT hf a 1e5000\r\nHINCRBYFLOAT hf a 1x\r\n"
    b"EXISTS hf\r\n",
    b"DEL hf\r\n" + b"HINCRBYFLOAT hf a 1e308\r\n" * 10 + b"HGET hf a\r\nHSTRLEN hf a\r\nHINCRBY hf a 1\r\n"
    b"HINCRBYFLOAT hf a 1e4932\r\nHINCRBYFLOAT hf a -1e4932\r\nHINCRBYFLOAT hf b -1e4932\r\nHINCRBYFLOAT hf b -1e4932\r\n",
    b"DEL hf\r\nHSET hf f 1e5000 g inf h nan i abc j 1e-320 k 5\r\nHINCRBYFLOAT hf f 1\r\nHINCRBYFLOAT hf g 1\r\n"
    b"HINCRBYFLOAT hf h 1\r\nHINCRBYFLOAT hf i 1\r\nHINCRBYFLOAT hf j 1\r\nHINCRBYFLOAT hf k 1e-320\r\n"
    b"HINCRBYFLOAT hf k 1.1\r\nHINCRBY hf k 1\r\n",
    b"DEL hf\r\nHSET hf big 1.7976931348623157e308\r\nHINCRBYFLOAT hf big 1.7976931348623157e308\r\n"
    b"HINCRBYFLOAT hf big 1.1897314953572317650e4932\r\nHGET hf big\r\n",
    cmds(("DEL", "hf"), ("HSET", "hf", "a", b"1" + b"0" * 5200), ("HINCRBYFLOAT", "hf", "a", "1"),
         ("HINCRBYFLOAT", "hf", "b", b"1" + b"0" * 5119), ("HINCRBYFLOAT", "hf", "b", b"1" + b"0" * 300)),
    # HGETALL, HKEYS, HVALS (compared sorted)
    unordered(b"DEL ha\r\nHSET ha a 1 b 2 c 3 d 4\r\nHGETALL ha\r\n", pairs=True),
    unordered(b"HKEYS ha\r\n"),
    unordered(b"HVALS ha\r\n"),
    unordered(cmds(("DEL", "hm"), ("HSET", "hm", *[x for i in range(300) for x in (f"f{i}", f"v{i}")]),
                   ("HGETALL", "hm")), pairs=True),
    unordered(b"HKEYS hm\r\n"),
    unordered(b"HVALS hm\r\n"),
    unordered(cmds(("HGETALL", "hb")), pairs=True),
    # HRANDFIELD: what does not depend on the draw
    b"DEL hr\r\nHSET hr a 1\r\nHRANDFIELD hr\r\nHRANDFIELD hr 1\r\nHRANDFIELD hr 1 WITHVALUES\r\n"
    b"HRANDFIELD hr -3\r\nHRANDFIELD hr -2 WITHVALUES\r\nHRANDFIELD hr 0\r\nHRANDFIELD hr 0 WITHVALUES\r\n"
    b"HRANDFIELD hr 5 withvalues\r\n",
    b"HRANDFIELD hr x\r\nHRANDFIELD hr 1.5\r\nHRANDFIELD hr 1 WITHVALUE\r\nHRANDFIELD hr 1 WITHVALUES x\r\n"
    b"HRANDFIELD hr -9223372036854775808\r\nHRANDFIELD hr 9223372036854775808\r\n"
    b"HRANDFIELD hr -9223372036854775807 WITHVALUES\r\nHRANDFIELD hr 4611686018427387904 WITHVALUES\r\n"
    b"HRANDFIELD hr -4611686018427387904 WITHVALUES\r\nHRANDFIELD nokey -4611686018427387903 WITHVALUES\r\n"
    b"HRANDFIELD nokey 0 WITHVALUES x\r\nHRANDFIELD nokey -9223372036854775807\r\n",
    unordered(b"DEL hr\r\nHSET hr a 1 b 2 c 3\r\nHRANDFIELD hr 3 WITHVALUES\r\n", pairs=True),
    unordered(b"HRANDFIELD hr 100\r\n"),
    unordered(b"HRANDFIELD hr 9223372036854775807\r\n"),
    # HSCAN: arguments, error order, a one-field answer
    b"DEL hc\r\nHSET hc a 1\r\nHSCAN hc 0\r\nHSCAN hc 0 COUNT 1\r\nHSCAN hc 0 MATCH a\r\nHSCAN hc 0 MATCH b\r\n"
    b"HSCAN hc 7\r\nHSCAN hc 18446744073709551615\r\nHSCAN hc 18446744073709551616\r\nHSCAN hc x\r\n",
    b"HSCAN hc 0 COUNT 0\r\nHSCAN hc 0 COUNT -1\r\nHSCAN hc 0 COUNT x\r\nHSCAN hc 0 COUNT\r\nHSCAN hc 0 MATCH\r\n"
    b"HSCAN hc 0 TYPE string\r\nHSCAN hc 0 FOO bar\r\nHSCAN hc x COUNT 0\r\nHSCAN nokey 0 COUNT 0\r\n"
    b"HSCAN nokey 0 FOO\r\nHSCAN nokey x\r\n",
    b"DEL hc\r\nHSET hc apple 1 banana 2 cherry 3\r\nHSCAN hc 0 MATCH b*\r\nHSCAN hc 0 MATCH *rr* COUNT 100\r\n"
    b"HSCAN hc 0 match x*\r\nHSCAN hc 0 MATCH [a]pple COUNT 1 MATCH b*\r\n",
    # a key of another type after the hash is gone
    b"DEL hx\r\nHSET hx a 1\r\nHDEL hx a\r\nSET hx v\r\nGET hx\r\nHGET hx a\r\nDEL hx\r\nHSET hx b 2\r\nHGET hx b\r\n",
    # case of command names, pipelined writes and reads
    b"DEL hp\r\nhset hp a 1\r\nHsEt hp b 2\r\nhget hp a\r\nHGET hp b\r\nhlen hp\r\nhdel hp a b\r\nhlen hp\r\n",
]
