"""redis-py (Debian's python3-redis) talking to demi-kv on 127.0.0.1: one
scripted session over every type, checked reply by reply.

  kv_redispy.py                  against demi-kv (started here, port 0)
  kv_redispy.py --against-redis  the same session against redis-server, so
                                 the script's expectations are Redis's own

Strings with expiry, lists, sets, hashes, sorted sets with scores,
scan_iter/sscan_iter/hscan_iter/zscan_iter over collections big enough to
take several calls, pipelines with transaction=False, WRONGTYPE errors as
redis.ResponseError, client_list, info, dbsize, flushall, and at the end
shutdown(nosave=True), which must stop the server (exit status 0).

pipeline(transaction=True) wraps the commands in MULTI/EXEC. demi-kv has
neither: redis-py raises ResponseError (unknown command) on EXEC, and the
commands in between, sent as ordinary commands, have been run anyway, not
atomically. The script checks exactly that on demi-kv, and that Redis runs
the transaction.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kvtest import check, main, skip, start_kv, start_redis  # noqa: E402

try:
    import redis
except ImportError:
    skip("python3 module redis not found (scripts/deps.sh installs python3-redis)")

AGAINST_REDIS = "--against-redis" in sys.argv[1:]


def raises_wrongtype(fn, *args):
    try:
        fn(*args)
    except redis.ResponseError as e:
        check(str(e).startswith("WRONGTYPE Operation against a key holding the wrong kind of value"),
              f"{fn.__name__}{args}: {e}")
        return
    raise AssertionError(f"{fn.__name__}{args} did not raise WRONGTYPE")


def wait_gone(r, key):
    """Polls until KEY has expired (a hang guard, not a timing window)."""
    deadline = time.monotonic() + 30
    while r.exists(key):
        check(time.monotonic() < deadline, f"{key} did not expire")
        time.sleep(0.01)


def strings(r):
    check(r.set("s", "hello") is True and r.get("s") == "hello", "SET/GET")
    check(r.append("s", " world") == 11 and r.strlen("s") == 11, "APPEND/STRLEN")
    check(r.set("s", "other", nx=True) is None and r.setnx("s2", "v") is True, "SET NX / SETNX")
    check(r.getset("s2", "w") == "v" and r.getdel("s2") == "w" and r.get("s2") is None, "GETSET/GETDEL")
    check(r.incr("n") == 1 and r.incrby("n", 41) == 42 and r.decr("n") == 41 and r.decrby("n", 1) == 40, "INCR family")
    check(r.mset({"m1": "a", "m2": "b"}) is True and r.mget("m1", "nokey", "m2") == ["a", None, "b"], "MSET/MGET")
    check(r.exists("m1", "m2", "nokey") == 2 and r.delete("m1", "m2", "nokey") == 2, "EXISTS/DEL")
    try:
        r.incr("s")
        raise AssertionError("INCR of a non-number did not raise")
    except redis.ResponseError as e:
        check(str(e) == "value is not an integer or out of range", f"INCR of a string: {e}")

    # expiry
    check(r.ttl("s") == -1 and r.ttl("nokey") == -2, "TTL without expiry / of a missing key")
    check(r.set("e", "v", ex=100) is True and 0 < r.ttl("e") <= 100, f"SET EX: ttl {r.ttl('e')}")
    check(r.persist("e") is True and r.ttl("e") == -1, "PERSIST")
    check(r.expire("e", 50) is True and 0 < r.ttl("e") <= 50, "EXPIRE")
    check(r.setex("e2", 100, "v") is True and 0 < r.pttl("e2") <= 100000, "SETEX/PTTL")
    check(r.getex("s", ex=1000) == "hello world" and 0 < r.ttl("s") <= 1000, "GETEX EX")
    check(r.set("short", "v", px=30) is True and r.pttl("short") <= 30, "SET PX")
    check(r.psetex("short2", 30, "v") is True, "PSETEX")
    check(r.pexpire("e2", 20) is True, "PEXPIRE")
    for k in ("short", "short2", "e2"):
        wait_gone(r, k)
        check(r.get(k) is None and r.ttl(k) == -2, f"{k} after expiry")
    check(r.expireat("e", int(time.time()) + 1000) is True and 0 < r.ttl("e") <= 1000, "EXPIREAT")


def lists(r):
    check(r.rpush("l", "b", "c") == 2 and r.lpush("l", "a") == 3, "RPUSH/LPUSH")
    check(r.lrange("l", 0, -1) == ["a", "b", "c"] and r.llen("l") == 3, "LRANGE/LLEN")
    check(r.lindex("l", 1) == "b" and r.lindex("l", 9) is None, "LINDEX")
    check(r.lset("l", 1, "B") is True and r.linsert("l", "after", "B", "b2") == 4, "LSET/LINSERT")
    check(r.rpush("l", "x", "x", "y") == 7 and r.lrem("l", 0, "x") == 2, "LREM")
    check(r.lpos("l", "c") == 3, "LPOS")
    check(r.lpop("l") == "a" and r.rpop("l") == "y" and r.lpop("l", 2) == ["B", "b2"], "LPOP/RPOP/LPOP count")
    check(r.rpush("l", *range(10)) == 11 and r.ltrim("l", 0, 4) is True, "LTRIM")
    check(r.lrange("l", 0, -1) == ["c", "0", "1", "2", "3"], f"after LTRIM: {r.lrange('l', 0, -1)}")
    check(r.lmove("l", "l2", "LEFT", "RIGHT") == "c" and r.lrange("l2", 0, -1) == ["c"], "LMOVE")
    check(r.rpop("nolist") is None and r.lrange("nolist", 0, -1) == [], "pops of a missing list")


def sets(r):
    check(r.sadd("a", "1", "2", "3") == 3 and r.sadd("a", "3", "4") == 1, "SADD")
    check(r.smembers("a") == {"1", "2", "3", "4"} and r.scard("a") == 4, "SMEMBERS/SCARD")
    check(r.sismember("a", "2") is True and r.sismember("a", "9") is False, "SISMEMBER")
    check(r.smismember("a", ["1", "9"]) == [1, 0], f"SMISMEMBER: {r.smismember('a', ['1', '9'])}")
    r.sadd("b", "3", "4", "5")
    check(r.sinter("a", "b") == {"3", "4"} and r.sunion("a", "b") == {"1", "2", "3", "4", "5"}, "SINTER/SUNION")
    check(r.sdiff("a", "b") == {"1", "2"} and r.srem("a", "1", "9") == 1, "SDIFF/SREM")
    check(r.sinterstore("c", ["a", "b"]) == 2 and r.smembers("c") == {"3", "4"}, "SINTERSTORE")
    p = r.spop("c")
    check(p in ("3", "4") and r.smembers("c") == {"3", "4"} - {p}, "SPOP")
    check(r.srandmember("b") in {"3", "4", "5"} and len(r.srandmember("b", 2)) == 2, "SRANDMEMBER")
    check(r.smove("b", "c", "5") is True and "5" in r.smembers("c"), "SMOVE")


def hashes(r):
    check(r.hset("h", "f1", "v1") == 1 and r.hset("h", mapping={"f2": "v2", "n": "1"}) == 2, "HSET")
    check(r.hget("h", "f1") == "v1" and r.hget("h", "nof") is None, "HGET")
    check(r.hgetall("h") == {"f1": "v1", "f2": "v2", "n": "1"} and r.hlen("h") == 3, "HGETALL/HLEN")
    check(r.hmget("h", ["f1", "nof", "f2"]) == ["v1", None, "v2"], "HMGET")
    check(r.hincrby("h", "n", 9) == 10 and r.hincrbyfloat("h", "n", 0.5) == 10.5, "HINCRBY/HINCRBYFLOAT")
    check(r.hexists("h", "f1") is True and r.hsetnx("h", "f1", "x") == 0, "HEXISTS/HSETNX")
    check(sorted(r.hkeys("h")) == ["f1", "f2", "n"] and sorted(r.hvals("h")) == ["10.5", "v1", "v2"], "HKEYS/HVALS")
    check(r.hstrlen("h", "f1") == 2 and r.hdel("h", "f1", "nof") == 1, "HSTRLEN/HDEL")
    check(r.hgetall("nohash") == {}, "HGETALL of a missing key")


def zsets(r):
    check(r.zadd("z", {"a": 1, "b": 2.5, "c": -3}) == 3 and r.zadd("z", {"a": 4}) == 0, "ZADD")
    check(r.zrange("z", 0, -1, withscores=True) == [("c", -3.0), ("b", 2.5), ("a", 4.0)], "ZRANGE WITHSCORES")
    check(r.zrevrange("z", 0, 0) == ["a"] and r.zscore("z", "b") == 2.5 and r.zscore("z", "x") is None, "ZREVRANGE/ZSCORE")
    check(r.zrangebyscore("z", 0, "+inf", withscores=True) == [("b", 2.5), ("a", 4.0)], "ZRANGEBYSCORE")
    check(r.zincrby("z", 10, "c") == 7.0 and r.zrank("z", "c") == 2 and r.zrevrank("z", "c") == 0, "ZINCRBY/ZRANK")
    check(r.zcard("z") == 3 and r.zcount("z", "(2.5", 10) == 2, "ZCARD/ZCOUNT")
    check(r.zadd("z", {"d": 1}, nx=True) == 1 and r.zadd("z", {"d": 5}, xx=True, ch=True) == 1, "ZADD NX/XX CH")
    check(r.zmscore("z", ["a", "x"]) == [4.0, None], "ZMSCORE")
    check(r.zpopmin("z") == [("b", 2.5)] and r.zpopmax("z", 2) == [("c", 7.0), ("d", 5.0)], "ZPOPMIN/ZPOPMAX")
    check(r.zrem("z", "a", "x") == 1 and r.exists("z") == 0, "ZREM of the last member removes the key")
    check(r.zadd("z", {"inf": float("inf"), "ninf": float("-inf")}) == 2, "ZADD infinities")
    check(r.zrange("z", 0, -1, withscores=True) == [("ninf", float("-inf")), ("inf", float("inf"))], "infinite scores")


def scans(r):
    n = 600
    r.mset({f"scan:{i}": i for i in range(n)})
    r.sadd("bigset", *range(n))
    r.hset("bighash", mapping={f"f{i}": i for i in range(n)})
    r.zadd("bigzset", {f"m{i}": i / 2 for i in range(n)})
    got = list(r.scan_iter(match="scan:*", count=50))
    check(sorted(got) == sorted(f"scan:{i}" for i in range(n)), f"scan_iter: {len(got)} keys, {len(set(got))} distinct")
    check(set(r.scan_iter(count=50)) == set(r.keys("*")), "scan_iter without a pattern is KEYS *")
    check(list(r.scan_iter(match="nomatch*")) == [], "scan_iter of a pattern that matches nothing")
    check(sorted(r.scan_iter(_type="hash")) == ["bighash", "h"], f"scan_iter TYPE hash: {list(r.scan_iter(_type='hash'))}")
    got = list(r.sscan_iter("bigset", count=20))
    check(sorted(got, key=int) == [str(i) for i in range(n)], f"sscan_iter: {len(got)} members")
    got = list(r.sscan_iter("bigset", match="1?"))
    check(sorted(got) == [str(i) for i in range(10, 20)], f"sscan_iter MATCH 1?: {sorted(got)}")
    got = list(r.hscan_iter("bighash", count=20))
    check(len(got) == n and dict(got) == {f"f{i}": str(i) for i in range(n)}, f"hscan_iter: {len(got)} pairs")
    got = list(r.zscan_iter("bigzset", count=20))
    check(len(got) == n and dict(got) == {f"m{i}": i / 2 for i in range(n)}, f"zscan_iter: {len(got)} pairs")
    # a cursor walk by hand: more than one call
    cursor, calls = 0, 0
    while True:
        cursor, _ = r.scan(cursor, count=10)
        calls += 1
        if cursor == 0:
            break
    check(calls > 10, f"SCAN COUNT 10 over {r.dbsize()} keys took {calls} calls")
    r.delete("bigset", "bighash", "bigzset", *[f"scan:{i}" for i in range(n)])


def pipelines(r, against_redis):
    p = r.pipeline(transaction=False)
    p.set("p1", "a").incr("pn").incr("pn").rpush("pl", 1, 2).sadd("ps", "x").hset("ph", "f", "v")
    p.zadd("pz", {"m": 1}).get("p1").lrange("pl", 0, -1).lpush("p1", "x").zscore("pz", "m")
    res = p.execute(raise_on_error=False)
    check(res[:10] == [True, 1, 2, 2, 1, 1, 1, "a", ["1", "2"], res[9]] and res[10] == 1.0, f"pipeline: {res}")
    check(isinstance(res[9], redis.ResponseError) and str(res[9]).startswith("WRONGTYPE"), f"pipeline error: {res[9]}")
    with r.pipeline(transaction=False) as p:
        for i in range(500):
            p.set(f"pk{i}", i)
        for i in range(500):
            p.get(f"pk{i}")
        res = p.execute()
    check(res == [True] * 500 + [str(i) for i in range(500)], "a 1000-command pipeline")

    p = r.pipeline(transaction=True)
    p.set("tx", "1").incr("tx")
    if against_redis:
        check(p.execute() == [True, 2], "MULTI/EXEC on Redis")
    else:
        try:
            p.execute()
            raise AssertionError("pipeline(transaction=True) succeeded on demi-kv, which has no MULTI/EXEC")
        except redis.ResponseError as e:
            check("unknown command" in str(e) and "exec" in str(e).lower(), f"transaction=True: {e}")
        # The commands between MULTI and EXEC ran as plain commands.
        check(r.get("tx") == "2", f"after the failed transaction tx is {r.get('tx')!r}")
    r.delete("tx")


def type_errors(r):
    r.set("str", "v")
    r.rpush("list", "v")
    r.sadd("set", "v")
    r.hset("hash", "f", "v")
    r.zadd("zset", {"v": 1})
    raises_wrongtype(r.lpush, "str", "x")
    raises_wrongtype(r.get, "list")
    raises_wrongtype(r.sadd, "hash", "x")
    raises_wrongtype(r.hget, "set", "f")
    raises_wrongtype(r.zadd, "list", {"x": 1})
    raises_wrongtype(r.incr, "zset")
    raises_wrongtype(r.smembers, "zset")
    raises_wrongtype(r.zrange, "hash", 0, -1)
    raises_wrongtype(r.append, "set", "x")
    check([r.type(k) for k in ("str", "list", "set", "hash", "zset", "none")] ==
          ["string", "list", "set", "hash", "zset", "none"], "TYPE")


def server(r):
    check(r.client_setname("redispy") is True and r.client_getname() == "redispy", "CLIENT SETNAME/GETNAME")
    me = r.client_id()
    clients = r.client_list()
    mine = [c for c in clients if c["name"] == "redispy"]
    check(len(mine) == 1 and int(mine[0]["id"]) == me and mine[0]["addr"].startswith("127.0.0.1:"),
          f"CLIENT LIST: {clients}")
    check(mine[0]["cmd"] == "client|list", f"CLIENT LIST cmd: {mine[0]}")
    info = r.info()
    for k in ("redis_version", "connected_clients", "used_memory", "uptime_in_seconds", "total_commands_processed"):
        check(k in info, f"INFO has no {k}: {sorted(info)}")
    check(info["connected_clients"] >= 1 and isinstance(info["used_memory"], int), f"INFO: {info}")
    check(r.info("keyspace")["db0"]["keys"] == r.dbsize() > 0, f"INFO keyspace {r.info('keyspace')}, DBSIZE {r.dbsize()}")
    check(r.flushall() is True and r.dbsize() == 0 and r.keys() == [], "FLUSHALL")
    check(r.info("keyspace") == {}, f"INFO keyspace after FLUSHALL: {r.info('keyspace')}")
    check(r.echo("hi") == "hi" and r.ping() is True, "ECHO/PING")


def run():
    srv = start_redis() if AGAINST_REDIS else start_kv()
    r = redis.Redis(host="127.0.0.1", port=srv.port, decode_responses=True, socket_timeout=60)
    check(r.ping() is True and r.flushall() is True, "PING/FLUSHALL")
    for part in (strings, lists, sets, hashes, zsets, scans, type_errors):
        part(r)
    pipelines(r, AGAINST_REDIS)
    want = {"s", "n", "e", "l", "l2", "a", "b", "c", "h", "z", "str", "list", "set", "hash", "zset",
            "p1", "pn", "pl", "ps", "ph", "pz", *(f"pk{i}" for i in range(500))}
    got = set(r.keys())
    check(got == want and r.dbsize() == len(want),
          f"before the server part: DBSIZE {r.dbsize()}, extra {sorted(got - want)}, missing {sorted(want - got)}")
    server(r)

    r.set("k", "v")
    r.shutdown(nosave=True)  # redis-py raises unless the connection drops
    try:
        rc = srv.proc.wait(timeout=60)
    except Exception:
        raise AssertionError(f"{srv.name} still running after SHUTDOWN NOSAVE")
    check(rc == 0, f"{srv.name} exited {rc} after SHUTDOWN NOSAVE")
    srv.stop()
    print(f"redis-py {redis.__version__} against {srv.name}: every part as expected, SHUTDOWN NOSAVE stopped it")


if __name__ == "__main__":
    main(run)
