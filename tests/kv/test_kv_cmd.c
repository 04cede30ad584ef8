/*
 * Unit test of demi-kv's command layer (apps/kv/cmd.c, store.c, reply.c,
 * glob.c) without a network: commands go in as RESP bytes, the replies come
 * out through kvsink.h's push function, which records what would have been
 * pushed. Checks the reply bytes of every command, every error text demi-kv claims
 * to share with Redis 7.0, expiry on an injected clock, that GET replies
 * point into the stored heap buffers (zero copy) and stay right when the
 * value is deleted in the same batch, a random run against a model, and
 * the keyspace's SCAN, RANDOMKEY, lookups and walk while an incremental
 * rehash (growth or shrink) is in progress.
 */
#include "cmd.h"
#include "cmd_int.h"
#include "glob.h"
#include "kvsink.h"
#include "tcheck.h"

#include <demi/libos.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct kv_server srv;
static struct kv_client cl;
static struct reply rep;
static int64_t fake_now = 1700000000000;

static int64_t fake_clock(void)
{
    return fake_now;
}

/* The sink's push, which also checks that every pushed array is well formed:
 * one to DEMI_SGARRAY_MAXSIZE segments, none of them empty. */
static int checked_push(void *arg, const demi_sgarray_t *sga)
{
    CHECK(sga->sga_numsegs >= 1 && sga->sga_numsegs <= DEMI_SGARRAY_MAXSIZE);
    for (uint32_t i = 0; i < sga->sga_numsegs; i++)
        CHECK(sga->sga_segs[i].sgaseg_len > 0);
    return sink_push(arg, sga);
}

/* Runs every command in [in, in + n) as one batch (one flush at the end). */
static void feed(const char *in, size_t n)
{
    struct resp_parser p;
    resp_init(&p);
    size_t off = 0;
    while (off < n) {
        size_t used;
        int st = resp_parse(&p, (const uint8_t *)in + off, n - off, &used);
        CHECK(st == RESP_CMD || st == RESP_EMPTY);
        if (st == RESP_CMD)
            kv_exec(&srv, &cl, p.argc, p.argv, &rep);
        off += used;
    }
    resp_free(&p);
}

static void expect_n(const char *in, size_t n, const char *want, size_t wn, int line)
{
    sink_reset();
    feed(in, n);
    CHECK_EQ(reply_flush(&rep), 0);
    if (sink.len != wn || memcmp(sink.buf, want, wn) != 0) {
        fprintf(stderr, "line %d: for %.*s\n got  [%.*s]\n want [%.*s]\n", line, (int)n, in, (int)sink.len,
                (const char *)sink.buf, (int)wn, want);
        exit(1);
    }
}

#define T(in, want) expect_n(in, sizeof(in) - 1, want, sizeof(want) - 1, __LINE__)

static void test_basic(void)
{
    T("PING\r\n", "+PONG\r\n");
    T("PING hello\r\n", "$5\r\nhello\r\n");
    T("ECHO \"a b\"\r\n", "$3\r\na b\r\n");
    T("SET a b\r\nGET a\r\nGET nope\r\n", "+OK\r\n$1\r\nb\r\n$-1\r\n");
    T("SET e \"\"\r\nGET e\r\nSTRLEN e\r\n", "+OK\r\n$0\r\n\r\n:0\r\n");
    T("GETSET a c\r\nGETSET new d\r\nGET a\r\n", "$1\r\nb\r\n$-1\r\n$1\r\nc\r\n");
    T("DEL a new e nope a\r\nEXISTS a new\r\n", ":3\r\n:0\r\n");
    T("MSET k1 v1 k2 v2 k1 v3\r\nMGET k1 k2 k3\r\n", "+OK\r\n*3\r\n$2\r\nv3\r\n$2\r\nv2\r\n$-1\r\n");
    T("EXISTS k1 k1 k2 k3\r\n", ":3\r\n");
    T("INCR n\r\nINCR n\r\nDECR n\r\nINCRBY n 10\r\nDECRBY n -5\r\nGET n\r\n",
      ":1\r\n:2\r\n:1\r\n:11\r\n:16\r\n$2\r\n16\r\n");
    T("SET n -9223372036854775807\r\nDECR n\r\n", "+OK\r\n:-9223372036854775808\r\n");
    T("APPEND s ab\r\nAPPEND s cde\r\nGET s\r\nSTRLEN s\r\nSTRLEN nope\r\n", ":2\r\n:5\r\n$5\r\nabcde\r\n:5\r\n:0\r\n");
    T("DBSIZE\r\n", ":4\r\n");
    T("SELECT 0\r\n", "+OK\r\n");
    T("CLIENT GETNAME\r\nCLIENT SETNAME conn-1\r\nCLIENT GETNAME\r\nCLIENT SETNAME \"\"\r\nCLIENT GETNAME\r\n",
      "$-1\r\n+OK\r\n$6\r\nconn-1\r\n+OK\r\n$-1\r\n");
    T("CONFIG GET save\r\nCONFIG GET appendonly\r\n",
      "*2\r\n$4\r\nsave\r\n$0\r\n\r\n*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n");
    T("CONFIG GET APPENDONLY nomatch\r\n", "*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n");
    T("CONFIG GET *bulk*\r\n", "*2\r\n$18\r\nproto-max-bulk-len\r\n$9\r\n536870912\r\n");
    T("FLUSHALL\r\nDBSIZE\r\nSET x 1\r\nFLUSHDB ASYNC\r\nFLUSHALL sync\r\nDBSIZE\r\n",
      "+OK\r\n:0\r\n+OK\r\n+OK\r\n+OK\r\n:0\r\n");
    {
        /* As many as the tables hold, whichever groups are built in. */
        size_t n = 0;
        char want[32];
        for (size_t t = 0; t < kv_ncmd_tables; t++)
            n += *kv_cmd_tables[t].n;
        int len = snprintf(want, sizeof(want), ":%zu\r\n", n);
        expect_n("COMMAND COUNT\r\n", 15, want, (size_t)len, __LINE__);
    }
    T("COMMAND INFO get nosuch\r\n",
      "*2\r\n*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n"
      "*3\r\n+@read\r\n+@string\r\n+@fast\r\n*0\r\n*1\r\n*6\r\n$5\r\nflags\r\n*2\r\n+RO\r\n+access\r\n"
      "$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n:1\r\n"
      "$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n*6\r\n$7\r\nlastkey\r\n:0\r\n"
      "$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n*0\r\n$-1\r\n");
    T("COMMAND DOCS echo\r\n",
      "*2\r\n$4\r\necho\r\n*10\r\n$7\r\nsummary\r\n$21\r\nEcho the given string\r\n$5\r\nsince\r\n"
      "$5\r\n1.0.0\r\n$5\r\ngroup\r\n$10\r\nconnection\r\n$10\r\ncomplexity\r\n$4\r\nO(1)\r\n"
      "$9\r\narguments\r\n*1\r\n*4\r\n$4\r\nname\r\n$7\r\nmessage\r\n$4\r\ntype\r\n$6\r\nstring\r\n");
    T("COMMAND GETKEYS mset a 1 b 2\r\nCOMMAND GETKEYS ping\r\n",
      "*2\r\n$1\r\na\r\n$1\r\nb\r\n-ERR wrong number of arguments for 'command|getkeys' command\r\n");
    T("INFO nosuchsection\r\n", "$0\r\n\r\n");
    T("SET k v\r\nINFO keyspace\r\n", "+OK\r\n$44\r\n# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n\r\n");
    CHECK(!cl.close_after_reply);
    T("QUIT now\r\n", "+OK\r\n");
    CHECK(cl.close_after_reply);
    cl.close_after_reply = false;
    T("FLUSHALL\r\n", "+OK\r\n");
}

static void test_set_options(void)
{
    T("SET k v NX\r\nSET k w NX\r\nGET k\r\n", "+OK\r\n$-1\r\n$1\r\nv\r\n");
    T("SET k w XX\r\nSET nope w XX\r\nGET k\r\nEXISTS nope\r\n", "+OK\r\n$-1\r\n$1\r\nw\r\n:0\r\n");
    T("SET k x GET\r\nSET k y NX GET\r\nSET nope2 y XX GET\r\nGET k\r\n", "$1\r\nw\r\n$1\r\nx\r\n$-1\r\n$1\r\nx\r\n");
    T("SET t v EX 100\r\nTTL t\r\nPTTL t\r\n", "+OK\r\n:100\r\n:100000\r\n");
    T("SET t v PX 1500\r\nTTL t\r\nPTTL t\r\n", "+OK\r\n:2\r\n:1500\r\n");
    T("SET t v EX 10 EX 20\r\nTTL t\r\n", "+OK\r\n:20\r\n");
    T("SET t w KEEPTTL\r\nTTL t\r\nSET t w\r\nTTL t\r\n", "+OK\r\n:20\r\n+OK\r\n:-1\r\n");
    T("SET t v exat 1900000000\r\nTTL t\r\n", "+OK\r\n:200000000\r\n");
    T("SET t v pxat 1700000000500\r\nPTTL t\r\n", "+OK\r\n:500\r\n");
    T("SET t v exat 1\r\nEXISTS t\r\n", "+OK\r\n:0\r\n"); /* already past */
    T("SET k v NX XX\r\n", "-ERR syntax error\r\n");
    T("SET k v XX NX\r\n", "-ERR syntax error\r\n");
    T("SET k v KEEPTTL EX 1\r\n", "-ERR syntax error\r\n");
    T("SET k v px 100 keepttl\r\n", "-ERR syntax error\r\n");
    T("SET k v EX 1 PX 1\r\n", "-ERR syntax error\r\n");
    T("SET k v EX\r\n", "-ERR syntax error\r\n");
    T("SET k v FOO\r\n", "-ERR syntax error\r\n");
    T("SET k v EX 0\r\n", "-ERR invalid expire time in 'set' command\r\n");
    T("SET k v PX -5\r\n", "-ERR invalid expire time in 'set' command\r\n");
    T("SET k v EX 9223372036854776\r\n", "-ERR invalid expire time in 'set' command\r\n");
    T("SET k v PX 9223372036854775807\r\n", "-ERR invalid expire time in 'set' command\r\n");
    T("SET k v EX x\r\n", "-ERR value is not an integer or out of range\r\n");
    T("SET k v EX 1.5\r\n", "-ERR value is not an integer or out of range\r\n");
    T("FLUSHALL\r\n", "+OK\r\n");
}

static void test_errors(void)
{
    T("FOO\r\n", "-ERR unknown command 'FOO', with args beginning with: \r\n");
    T("FOO a b\r\n", "-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n");
    T("*1\r\n$0\r\n\r\n", "-ERR unknown command '', with args beginning with: \r\n");
    /* CR and LF become spaces; a NUL ends the text, as %s in Redis. */
    T("*3\r\n$3\r\nFOO\r\n$3\r\na\r\n\r\n$3\r\nb\0c\r\n",
      "-ERR unknown command 'FOO', with args beginning with: 'a  ' 'b' \r\n");
    /* Arguments are listed while the list is under 128 bytes. */
    T("FOO aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa "
      "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb c d\r\n",
      "-ERR unknown command 'FOO', with args beginning with: "
      "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' "
      "'bbbbbbbbbbbbbbbbbbbbbbbbbbbb' \r\n");
    T("GET\r\n", "-ERR wrong number of arguments for 'get' command\r\n");
    T("GET a b\r\n", "-ERR wrong number of arguments for 'get' command\r\n");
    T("set a\r\n", "-ERR wrong number of arguments for 'set' command\r\n");
    T("PING a b\r\n", "-ERR wrong number of arguments for 'ping' command\r\n");
    T("MSET a\r\n", "-ERR wrong number of arguments for 'mset' command\r\n");
    T("MSET a b c\r\n", "-ERR wrong number of arguments for 'mset' command\r\n");
    static const char *const arity[] = {"echo",   "getset",  "mget", "incr",   "decr",   "incrby",  "decrby",
                                        "append", "strlen",  "del",  "exists", "expire", "pexpire", "ttl",
                                        "pttl",   "persist", "keys", "select", "client", "config"};
    for (size_t i = 0; i < sizeof(arity) / sizeof(arity[0]); i++) {
        char in[64], want[128];
        int n = snprintf(in, sizeof(in), "%s\r\n", arity[i]);
        int w = snprintf(want, sizeof(want), "-ERR wrong number of arguments for '%s' command\r\n", arity[i]);
        expect_n(in, (size_t)n, want, (size_t)w, __LINE__);
    }
    T("DBSIZE x\r\n", "-ERR wrong number of arguments for 'dbsize' command\r\n");
    T("CONFIG GET\r\n", "-ERR wrong number of arguments for 'config|get' command\r\n");
    T("CLIENT SETNAME\r\n", "-ERR wrong number of arguments for 'client|setname' command\r\n");
    T("CLIENT GETNAME x\r\n", "-ERR wrong number of arguments for 'client|getname' command\r\n");
    T("CONFIG FOO\r\n", "-ERR unknown subcommand 'FOO'. Try CONFIG HELP.\r\n");
    T("config foo bar\r\n", "-ERR unknown subcommand 'foo'. Try CONFIG HELP.\r\n");
    T("CLIENT FOO\r\n", "-ERR unknown subcommand 'FOO'. Try CLIENT HELP.\r\n");
    T("command foo\r\n", "-ERR unknown subcommand 'foo'. Try COMMAND HELP.\r\n");
    T("CLIENT SETNAME \"a b\"\r\n", "-ERR Client names cannot contain spaces, newlines or special characters.\r\n");
    T("CLIENT SETNAME \"a\\xffb\"\r\n", "-ERR Client names cannot contain spaces, newlines or special characters.\r\n");
    T("SELECT 1\r\n", "-ERR DB index is out of range\r\n");
    T("SELECT -1\r\n", "-ERR DB index is out of range\r\n");
    T("SELECT x\r\n", "-ERR value is not an integer or out of range\r\n");
    T("SELECT 99999999999\r\n", "-ERR value is out of range, value must between -2147483648 and 2147483647\r\n");
    T("SET n 9223372036854775807\r\nINCR n\r\nINCRBY n 1\r\n",
      "+OK\r\n-ERR increment or decrement would overflow\r\n-ERR increment or decrement would overflow\r\n");
    T("SET n -9223372036854775808\r\nDECR n\r\nDECRBY n 1\r\nINCRBY n -1\r\n",
      "+OK\r\n-ERR increment or decrement would overflow\r\n-ERR increment or decrement would overflow\r\n"
      "-ERR increment or decrement would overflow\r\n");
    T("DECRBY n -9223372036854775808\r\n", "-ERR decrement would overflow\r\n");
    T("INCRBY n x\r\nINCRBY n 1.0\r\n",
      "-ERR value is not an integer or out of range\r\n-ERR value is not an integer or out of range\r\n");
    T("SET n \" 1\"\r\nINCR n\r\nSET n 01\r\nINCR n\r\nSET n -0\r\nINCR n\r\nSET n 123456789012345678901\r\nINCR n\r\n",
      "+OK\r\n-ERR value is not an integer or out of range\r\n+OK\r\n-ERR value is not an integer or out of range\r\n"
      "+OK\r\n-ERR value is not an integer or out of range\r\n+OK\r\n-ERR value is not an integer or out of range\r\n");
    T("EXPIRE n 10 FOO\r\n", "-ERR Unsupported option FOO\r\n");
    T("EXPIRE n 10 NX XX\r\n", "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n");
    T("EXPIRE n 10 nx gt\r\n", "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n");
    T("EXPIRE n 10 GT LT\r\n", "-ERR GT and LT options at the same time are not compatible\r\n");
    T("EXPIRE n x\r\n", "-ERR value is not an integer or out of range\r\n");
    T("EXPIRE n 9223372036854775807\r\n", "-ERR invalid expire time in 'expire' command\r\n");
    T("PEXPIRE n 9223372036854775807\r\n", "-ERR invalid expire time in 'pexpire' command\r\n");
    T("FLUSHALL x\r\nFLUSHDB sync x\r\n", "-ERR syntax error\r\n-ERR syntax error\r\n");
    T("COMMAND LIST FILTERBY x\r\n", "-ERR syntax error\r\n");

    /* APPEND past proto-max-bulk-len: pretend the value is that long
     * rather than allocating 512 MiB. */
    T("SET big x\r\n", "+OK\r\n");
    struct kv_entry *e = kv_lookup(&srv.store, (const uint8_t *)"big", 3, fake_now);
    CHECK(e);
    uint64_t real = e->val->len;
    e->val->len = KV_MAX_VALUE;
    T("APPEND big y\r\n", "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n");
    e->val->len = real;
    T("FLUSHALL\r\n", "+OK\r\n");
}

/* CONFIG SET and GET of the limits kv.c enforces, and -OOM over maxmemory. */
static void test_limits(void)
{
    T("CONFIG GET client-output-buffer-limit\r\n",
      "*2\r\n$26\r\nclient-output-buffer-limit\r\n$84\r\n"
      "normal 1073741824 16777216 60 slave 268435456 67108864 60 pubsub 33554432 8388608 60\r\n");
    T("CONFIG SET client-output-buffer-limit \"normal 64mb 1kb 5\" maxclients 7 maxmemory 2k\r\n"
      "CONFIG GET maxclients\r\nCONFIG GET maxmemory\r\n",
      "+OK\r\n*2\r\n$10\r\nmaxclients\r\n$1\r\n7\r\n*2\r\n$9\r\nmaxmemory\r\n$4\r\n2000\r\n");
    CHECK_EQ(srv.obuf_limit[KV_OBUF_NORMAL].hard, 64u << 20);
    CHECK_EQ(srv.obuf_limit[KV_OBUF_NORMAL].soft, 1024u);
    CHECK_EQ(srv.obuf_limit[KV_OBUF_NORMAL].soft_secs, 5u);
    /* All or nothing: a bad pair leaves the good ones unapplied. */
    T("CONFIG SET maxclients 9 maxmemory lots\r\nCONFIG GET maxclients\r\n",
      "-ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value\r\n"
      "*2\r\n$10\r\nmaxclients\r\n$1\r\n7\r\n");
    T("CONFIG SET client-output-buffer-limit \"normal 1 2\"\r\n",
      "-ERR CONFIG SET failed (possibly related to argument 'client-output-buffer-limit') - Wrong number of "
      "arguments in buffer limit configuration.\r\n");
    T("CONFIG SET client-output-buffer-limit \"master 1 2 3\"\r\n",
      "-ERR CONFIG SET failed (possibly related to argument 'client-output-buffer-limit') - Invalid client class "
      "specified in buffer limit configuration.\r\n");
    T("CONFIG SET client-output-buffer-limit \"normal 1 2 x\"\r\n",
      "-ERR CONFIG SET failed (possibly related to argument 'client-output-buffer-limit') - Error in hard, soft or "
      "soft_seconds setting in buffer limit configuration.\r\n");
    T("CONFIG SET maxclients 0\r\n", "-ERR CONFIG SET failed (possibly related to argument 'maxclients') - "
                                     "argument must be between 1 and 1000000 inclusive\r\n");
    T("CONFIG SET nosuch 1\r\n", "-ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'\r\n");
    T("CONFIG SET maxclients\r\n", "-ERR wrong number of arguments for 'config|set' command\r\n");
    T("CONFIG SET maxclients 1 maxmemory\r\n", "-ERR wrong number of arguments for 'config|set' command\r\n");
    /* Over maxmemory, commands flagged denyoom are refused; others run. */
    srv.over_maxmemory = true;
    T("SET om v\r\nAPPEND om v\r\nGET om\r\nDEL om\r\n",
      "-OOM command not allowed when used memory > 'maxmemory'.\r\n"
      "-OOM command not allowed when used memory > 'maxmemory'.\r\n$-1\r\n:0\r\n");
    srv.over_maxmemory = false;
    T("CONFIG SET client-output-buffer-limit \"normal 1gb 16mb 60\" maxclients 10000 maxmemory 0\r\n", "+OK\r\n");
}

static void test_expiry(void)
{
    T("SET a 1\r\nTTL a\r\nPTTL a\r\nTTL nope\r\nPTTL nope\r\n", "+OK\r\n:-1\r\n:-1\r\n:-2\r\n:-2\r\n");
    T("EXPIRE a 10\r\nTTL a\r\nPERSIST a\r\nPERSIST a\r\nTTL a\r\n", ":1\r\n:10\r\n:1\r\n:0\r\n:-1\r\n");
    T("EXPIRE nope 10\r\nPERSIST nope\r\n", ":0\r\n:0\r\n");
    T("PEXPIRE a 1000\r\n", ":1\r\n");
    fake_now += 999;
    T("GET a\r\nPTTL a\r\n", "$1\r\n1\r\n:1\r\n");
    fake_now += 1;
    T("GET a\r\nPTTL a\r\n", "$1\r\n1\r\n:0\r\n"); /* expires once now > the time */
    fake_now += 1;
    T("GET a\r\nEXISTS a\r\nDBSIZE\r\n", "$-1\r\n:0\r\n:0\r\n");
    /* NX/XX/GT/LT. */
    T("SET b 1\r\nEXPIRE b 100 XX\r\nEXPIRE b 100 NX\r\nEXPIRE b 50 NX\r\nTTL b\r\n",
      "+OK\r\n:0\r\n:1\r\n:0\r\n:100\r\n");
    T("EXPIRE b 50 GT\r\nEXPIRE b 200 GT\r\nEXPIRE b 300 LT\r\nEXPIRE b 150 LT\r\nTTL b\r\n",
      ":0\r\n:1\r\n:0\r\n:1\r\n:150\r\n");
    T("PERSIST b\r\nEXPIRE b 10 GT\r\nEXPIRE b 10 LT\r\nTTL b\r\n", ":1\r\n:0\r\n:1\r\n:10\r\n");
    /* A time already past deletes the key. */
    T("EXPIRE b 0\r\nEXISTS b\r\nSET c 1\r\nPEXPIRE c -5\r\nEXISTS c\r\n", ":1\r\n:0\r\n+OK\r\n:1\r\n:0\r\n");
    /* INCR and APPEND keep the time to live; SET, GETSET and MSET drop it. */
    T("SET d 1 EX 100\r\nINCR d\r\nAPPEND d 0\r\nTTL d\r\nGET d\r\n", "+OK\r\n:2\r\n:2\r\n:100\r\n$2\r\n20\r\n");
    T("GETSET d x\r\nTTL d\r\nSET d y EX 5\r\nMSET d z\r\nTTL d\r\n", "$2\r\n20\r\n:-1\r\n+OK\r\n+OK\r\n:-1\r\n");
    /* KEYS skips keys whose time has passed; DBSIZE still counts them
     * until they are removed, as in Redis. */
    T("FLUSHALL\r\nSET e1 v PX 10\r\nSET e2 v\r\n", "+OK\r\n+OK\r\n+OK\r\n");
    fake_now += 20;
    T("KEYS *\r\nDBSIZE\r\n", "*1\r\n$2\r\ne2\r\n:2\r\n");
    /* Active expiry removes them without any access. */
    T("FLUSHALL\r\n", "+OK\r\n");
    char cmd[64];
    for (int i = 0; i < 1000; i++) {
        int n = snprintf(cmd, sizeof(cmd), "SET key%d v PX %d\r\n", i, i < 900 ? 50 : 100000);
        sink_reset();
        feed(cmd, (size_t)n);
    }
    for (int i = 0; i < 100; i++) {
        int n = snprintf(cmd, sizeof(cmd), "SET keep%d v\r\n", i);
        feed(cmd, (size_t)n);
    }
    reply_flush(&rep);
    CHECK_EQ(kv_size(&srv.store), 1100);
    CHECK_EQ(kv_expiring(&srv.store), 1000);
    fake_now += 100;
    uint64_t before = srv.store.stats.expired;
    /* Each call stops once a sample is mostly live; repeated calls (every
     * 100 ms in the server) get the rest. */
    for (int i = 0; i < 1000 && kv_size(&srv.store) > 200; i++)
        kv_active_expire(&srv, 1000000);
    CHECK_EQ(kv_size(&srv.store), 200);
    CHECK_EQ(srv.store.stats.expired - before, 900);
    CHECK_EQ(kv_expiring(&srv.store), 100);
    T("FLUSHALL\r\n", "+OK\r\n");
}

static void test_keys(void)
{
    T("MSET hello 1 hallo 2 hxllo 3 hllo 4 heeeello 5 h[llo 6 \"\" 7\r\n", "+OK\r\n");
    struct {
        const char *pat, *want;
    } cases[] = {
        {"h?llo", "h[llo hallo hello hxllo"},
        {"h*llo", "h[llo hallo heeeello hello hllo hxllo"},
        {"h[ae]llo", "hallo hello"},
        {"h[^e]llo", "h[llo hallo hxllo"},
        {"h[a-b]llo", "hallo"},
        {"h[b-a]llo", "hallo"},
        {"h\\[llo", "h[llo"},
        {"h[\\[]llo", "h[llo"},
        {"*", " h[llo hallo heeeello hello hllo hxllo"}, /* a lone * lists the empty key too */
        {"**", "h[llo hallo heeeello hello hllo hxllo"},
        {"nomatch", ""},
        {"h[", ""},
        {"hell[o", "hello"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char in[128];
        int n = snprintf(in, sizeof(in), "*2\r\n$4\r\nKEYS\r\n$%zu\r\n%s\r\n", strlen(cases[i].pat), cases[i].pat);
        sink_reset();
        feed(in, (size_t)n);
        reply_flush(&rep);
        /* Collect the bulk strings of the reply, sorted. */
        char *names[16];
        int count = 0;
        char *p = (char *)sink.buf, *end = p + sink.len;
        CHECK(*p == '*');
        long nk = strtol(p + 1, &p, 10);
        p += 2;
        for (long k = 0; k < nk; k++) {
            CHECK(*p == '$');
            long l = strtol(p + 1, &p, 10);
            p += 2;
            names[count] = strndup(p, (size_t)l);
            count++;
            p += l + 2;
        }
        CHECK(p == end);
        for (int a = 0; a < count; a++)
            for (int b = a + 1; b < count; b++)
                if (strcmp(names[a], names[b]) > 0) {
                    char *t = names[a];
                    names[a] = names[b];
                    names[b] = t;
                }
        char joined[256] = "";
        for (int a = 0; a < count; a++) {
            if (a)
                strcat(joined, " ");
            strcat(joined, names[a]);
            free(names[a]);
        }
        if (strcmp(joined, cases[i].want) != 0) {
            fprintf(stderr, "KEYS %s: got [%s], want [%s]\n", cases[i].pat, joined, cases[i].want);
            exit(1);
        }
    }
    /* glob_match directly: Redis's corner cases. */
    CHECK(!glob_match((const uint8_t *)"*", 1, (const uint8_t *)"", 0, false));
    CHECK(glob_match((const uint8_t *)"", 0, (const uint8_t *)"", 0, false));
    CHECK(glob_match((const uint8_t *)"a*", 2, (const uint8_t *)"a", 1, false));
    CHECK(glob_match((const uint8_t *)"*a*b*c*", 7, (const uint8_t *)"xaybzc", 6, false));
    CHECK(!glob_match((const uint8_t *)"*a*b*c*d", 8, (const uint8_t *)"xaybzc", 6, false));
    CHECK(glob_match((const uint8_t *)"[a-]", 4, (const uint8_t *)"]", 1, false));
    CHECK(glob_match((const uint8_t *)"A?C", 3, (const uint8_t *)"abc", 3, true));
    CHECK(!glob_match((const uint8_t *)"A?C", 3, (const uint8_t *)"abc", 3, false));
    CHECK(glob_match((const uint8_t *)"ab\\", 3, (const uint8_t *)"ab\\", 3, false));
    /* Many stars cannot blow up: this is linear-time backtracking. */
    static uint8_t pat[4001], str[4000];
    for (int i = 0; i < 4000; i++)
        pat[i] = (i % 2) ? 'a' : '*', str[i] = 'a';
    pat[4000] = 'b';
    CHECK(!glob_match(pat, 4001, str, 4000, false));
    T("FLUSHALL\r\n", "+OK\r\n");
}

/* GET replies point at the stored buffers; a DEL or SET of the value in the
 * same batch cannot change what the pending reply sends. */
static void test_zero_copy(void)
{
    T("SET k value\r\n", "+OK\r\n");
    struct kv_entry *e = kv_lookup(&srv.store, (const uint8_t *)"k", 1, fake_now);
    CHECK(e && e->val->framed);
    sink_reset();
    feed("GET k\r\n", 7);
    reply_flush(&rep);
    CHECK_EQ(sink.pushes, 1);
    CHECK_EQ(sink.last.sga_numsegs, 1);
    /* The one segment is in the stored, framed buffer itself, right after
     * the value's own header. */
    const uint8_t *seg0 = sink.last.sga_segs[0].sgaseg_buf;
    CHECK(seg0 == (const uint8_t *)(e->val + 1));
    CHECK(seg0 > e->val->seg[0].buf && seg0 + 11 <= e->val->seg[0].buf + e->val->seg[0].size);
    CHECK(sink.len == 11 && memcmp(sink.buf, "$5\r\nvalue\r\n", 11) == 0);

    /* Sixteen pipelined GETs: one push of sixteen segments. */
    sink_reset();
    for (int i = 0; i < 16; i++)
        feed("GET k\r\n", 7);
    reply_flush(&rep);
    CHECK_EQ(sink.pushes, 1);
    CHECK_EQ(sink.last.sga_numsegs, 16);

    /* GET then DEL and SET in one batch: the reply still says "value". */
    T("GET k\r\nDEL k\r\nSET k other\r\nGET k\r\n", "$5\r\nvalue\r\n:1\r\n+OK\r\n$5\r\nother\r\n");
    T("GET k\r\nAPPEND k 123\r\nGET k\r\nINCR k\r\n",
      "$5\r\nother\r\n:8\r\n$8\r\nother123\r\n-ERR value is not an integer or out of range\r\n");

    /* A value over KV_FRAME_MAX: header, the stored bytes, trailer. */
    size_t n = 100000;
    char *cmd = malloc(n + 64), *want = malloc(n + 64);
    CHECK(cmd && want);
    int h = snprintf(cmd, 64, "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%zu\r\n", n);
    for (size_t i = 0; i < n; i++)
        cmd[h + i] = (char)('a' + i % 26);
    memcpy(cmd + h + n, "\r\n", 2);
    feed(cmd, (size_t)h + n + 2);
    reply_flush(&rep);
    e = kv_lookup(&srv.store, (const uint8_t *)"big", 3, fake_now);
    CHECK(e && !e->val->framed && e->val->len == n);
    sink_reset();
    feed("GET big\r\nDEL big\r\n", 18);
    reply_flush(&rep);
    CHECK_EQ(sink.pushes, 1);
    CHECK_EQ(sink.last.sga_numsegs, 3);
    int wh = snprintf(want, 64, "$%zu\r\n", n);
    memcpy(want + wh, cmd + h, n);
    memcpy(want + wh + n, "\r\n:1\r\n", 6);
    CHECK(sink.len == (size_t)wh + n + 6 && memcmp(sink.buf, want, sink.len) == 0);

    /* APPEND to a large value grows it in place; a GET gathered before the
     * APPEND still sends the old length. */
    sink_reset();
    feed(cmd, (size_t)h + n + 2);
    reply_flush(&rep);
    sink_reset();
    feed("GET big\r\nAPPEND big XYZ\r\nSTRLEN big\r\n", 37);
    reply_flush(&rep);
    memcpy(want + wh + n, "\r\n:100003\r\n:100003\r\n", 20);
    CHECK(sink.len == (size_t)wh + n + 20 && memcmp(sink.buf, want, sink.len) == 0);
    free(cmd);
    free(want);

    /* A value over 16 MiB spans several heap segments; GET sends them all. */
    size_t huge = (size_t)20 << 20;
    char *hv = malloc(huge);
    CHECK(hv);
    for (size_t i = 0; i < huge; i++)
        hv[i] = (char)(i * 7 + (i >> 20));
    struct kv_val *v = kv_val_new(hv, huge, huge);
    CHECK(v && v->nseg == 2);
    e = kv_set(&srv.store, (const uint8_t *)"huge", 4, v, -1, false);
    CHECK(e);
    CHECK_EQ(kv_val_append(&e->val, "tail", 4), 0);
    sink_reset();
    feed("GET huge\r\n", 10);
    reply_flush(&rep);
    const char *hdr = "$20971524\r\n";
    CHECK(sink.len == strlen(hdr) + huge + 4 + 2);
    CHECK(memcmp(sink.buf, hdr, strlen(hdr)) == 0);
    CHECK(memcmp(sink.buf + strlen(hdr), hv, huge) == 0);
    CHECK(memcmp(sink.buf + strlen(hdr) + huge, "tail\r\n", 6) == 0);
    free(hv);

    /* More than sixteen segments in one batch split into several pushes,
     * in order. */
    T("FLUSHALL\r\nSET a 1\r\n", "+OK\r\n+OK\r\n");
    sink_reset();
    for (int i = 0; i < 40; i++)
        feed(i % 3 ? "GET a\r\n" : "GET nope\r\n", i % 3 ? 7 : 10);
    reply_flush(&rep);
    CHECK(sink.pushes >= 3);
    size_t off = 0;
    for (int i = 0; i < 40; i++) {
        const char *w = i % 3 ? "$1\r\n1\r\n" : "$-1\r\n";
        CHECK(memcmp(sink.buf + off, w, strlen(w)) == 0);
        off += strlen(w);
    }
    CHECK(off == sink.len);
    T("FLUSHALL\r\n", "+OK\r\n");
}

/* Random commands on a small keyspace against a simple model. */
#define NK 37
static struct {
    char *val;
    size_t len;
    bool set;
} model[NK];

static void model_set(int k, const char *v, size_t n)
{
    free(model[k].val);
    model[k].val = malloc(n + 1);
    CHECK(model[k].val);
    memcpy(model[k].val, v, n);
    model[k].len = n;
    model[k].set = true;
}

static void test_model(void)
{
    uint64_t seed = 7;
    char *in = malloc(1 << 20), *want = malloc(1 << 21);
    CHECK(in && want);
    for (int round = 0; round < 300; round++) {
        size_t ni = 0, nw = 0;
        int cmds = 1 + (int)(trand(&seed) % 40);
        for (int c = 0; c < cmds; c++) {
            int k = (int)(trand(&seed) % NK);
            int op = (int)(trand(&seed) % 6);
            char val[40000];
            size_t vl = trand(&seed) % 4 == 0 ? trand(&seed) % 30000 : trand(&seed) % 20;
            for (size_t i = 0; i < vl; i++)
                val[i] = (char)('A' + trand(&seed) % 50);
            if (op == 0) { /* SET */
                ni += (size_t)sprintf(in + ni, "*3\r\n$3\r\nSET\r\n$%d\r\nk%d\r\n$%zu\r\n", k < 10 ? 2 : 3, k, vl);
                memcpy(in + ni, val, vl);
                ni += vl;
                ni += (size_t)sprintf(in + ni, "\r\n");
                nw += (size_t)sprintf(want + nw, "+OK\r\n");
                model_set(k, val, vl);
            } else if (op == 1 || op == 5) { /* GET */
                ni += (size_t)sprintf(in + ni, "GET k%d\r\n", k);
                if (model[k].set) {
                    nw += (size_t)sprintf(want + nw, "$%zu\r\n", model[k].len);
                    memcpy(want + nw, model[k].val, model[k].len);
                    nw += model[k].len;
                    nw += (size_t)sprintf(want + nw, "\r\n");
                } else {
                    nw += (size_t)sprintf(want + nw, "$-1\r\n");
                }
            } else if (op == 2) { /* DEL */
                ni += (size_t)sprintf(in + ni, "DEL k%d\r\n", k);
                nw += (size_t)sprintf(want + nw, ":%d\r\n", model[k].set ? 1 : 0);
                model[k].set = false;
            } else if (op == 3) { /* APPEND */
                ni += (size_t)sprintf(in + ni, "*3\r\n$6\r\nAPPEND\r\n$%d\r\nk%d\r\n$%zu\r\n", k < 10 ? 2 : 3, k, vl);
                memcpy(in + ni, val, vl);
                ni += vl;
                ni += (size_t)sprintf(in + ni, "\r\n");
                char *nv = malloc((model[k].set ? model[k].len : 0) + vl + 1);
                CHECK(nv);
                size_t nl = 0;
                if (model[k].set) {
                    memcpy(nv, model[k].val, model[k].len);
                    nl = model[k].len;
                }
                memcpy(nv + nl, val, vl);
                nl += vl;
                model_set(k, nv, nl);
                free(nv);
                nw += (size_t)sprintf(want + nw, ":%zu\r\n", nl);
            } else { /* STRLEN */
                ni += (size_t)sprintf(in + ni, "STRLEN k%d\r\n", k);
                nw += (size_t)sprintf(want + nw, ":%zu\r\n", model[k].set ? model[k].len : 0);
            }
        }
        expect_n(in, ni, want, nw, __LINE__);
        long long live = 0;
        for (int k = 0; k < NK; k++)
            live += model[k].set;
        CHECK_EQ(kv_size(&srv.store), live);
    }
    for (int k = 0; k < NK; k++)
        free(model[k].val);
    free(in);
    free(want);
    T("FLUSHALL\r\n", "+OK\r\n");
}

/*
 * Random argument vectors built from command names, options, boundary
 * numbers and random bytes: nothing may crash (the sanitizer build checks
 * memory), every command must get exactly one well-formed reply, and the
 * keyspace must stay consistent with DBSIZE and KEYS.
 */
static size_t resp_skip(const uint8_t *p, size_t n, size_t off)
{
    CHECK(off < n);
    uint8_t t = p[off];
    const uint8_t *nl = memchr(p + off, '\n', n - off);
    CHECK(nl && nl > p + off && nl[-1] == '\r');
    size_t line_end = (size_t)(nl - p) + 1;
    long long v = 0;
    if (t == '$' || t == '*' || t == ':') {
        CHECK(resp_str2ll(p + off + 1, line_end - off - 3, &v));
    } else {
        CHECK(t == '+' || t == '-');
        for (size_t i = off + 1; i < line_end - 2; i++)
            CHECK(p[i] != '\r' && p[i] != '\n');
    }
    if (t == '$' && v >= 0) {
        CHECK(line_end + (size_t)v + 2 <= n);
        CHECK(p[line_end + v] == '\r' && p[line_end + v + 1] == '\n');
        return line_end + (size_t)v + 2;
    }
    if (t == '*')
        for (long long i = 0; i < v; i++)
            line_end = resp_skip(p, n, line_end);
    return line_end;
}

static void test_random_commands(void)
{
    static const char *const names[] = {
        "get",    "set",     "getset", "del",    "exists", "incr",    "decr",     "incrby", "decrby",
        "append", "strlen",  "mget",   "mset",   "expire", "pexpire", "ttl",      "pttl",   "persist",
        "dbsize", "flushdb", "keys",   "select", "echo",   "ping",    "info",     "config", "command",
        "client", "nosuch",  "SET",    "GET",    "Incr",   "quit",    "flushall",
    };
    static const char *const words[] = {
        "k",
        "k1",
        "k2",
        "*",
        "k?",
        "[k]*",
        "\\",
        "nx",
        "xx",
        "gt",
        "lt",
        "get",
        "keepttl",
        "ex",
        "px",
        "exat",
        "pxat",
        "0",
        "1",
        "-1",
        "10",
        "100",
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775808",
        "1.5",
        "",
        " ",
        "save",
        "setname",
        "getname",
        "id",
        "help",
        "count",
        "list",
        "docs",
        "info",
        "all",
        "keyspace",
        "resetstat",
        "sync",
        "async",
    };
    const size_t nn = sizeof(names) / sizeof(names[0]), nw = sizeof(words) / sizeof(words[0]);
    uint64_t seed = 99;
    static struct resp_arg argv[12];
    static uint8_t bytes[12][64];
    int commands = 0;
    for (int batch = 0; batch < 3000; batch++) {
        sink_reset();
        int nc = 1 + (int)(trand(&seed) % 12);
        for (int c = 0; c < nc; c++) {
            int argc = 1 + (int)(trand(&seed) % 6);
            for (int i = 0; i < argc; i++) {
                const char *w = i == 0 ? names[trand(&seed) % nn] : words[trand(&seed) % nw];
                size_t len = strlen(w);
                if (i > 0 && trand(&seed) % 8 == 0) { /* random bytes */
                    len = trand(&seed) % sizeof(bytes[i]);
                    for (size_t k = 0; k < len; k++)
                        bytes[i][k] = (uint8_t)trand(&seed);
                } else {
                    memcpy(bytes[i], w, len);
                }
                argv[i].ptr = bytes[i];
                argv[i].len = len;
            }
            if (trand(&seed) % 16 == 0)
                fake_now += (int64_t)(trand(&seed) % 200000);
            kv_exec(&srv, &cl, argc, argv, &rep);
            cl.close_after_reply = false;
            commands++;
        }
        CHECK_EQ(reply_flush(&rep), 0);
        /* One well-formed reply per command. */
        size_t off = 0;
        for (int c = 0; c < nc; c++)
            off = resp_skip(sink.buf, sink.len, off);
        CHECK_EQ(off, sink.len);
        if (batch % 100 == 0)
            kv_active_expire(&srv, 1000);
    }
    /* DBSIZE counts what KEYS * lists plus keys expired but not yet gone. */
    sink_reset();
    struct resp_arg ka[2] = {{(const uint8_t *)"KEYS", 4, 0}, {(const uint8_t *)"*", 1, 0}};
    kv_exec(&srv, &cl, 2, ka, &rep);
    reply_flush(&rep);
    long long listed = strtoll((const char *)sink.buf + 1, NULL, 10);
    CHECK(listed >= 0 && (size_t)listed <= kv_size(&srv.store));
    CHECK(commands > 10000);
    T("FLUSHALL\r\n", "+OK\r\n");
    CHECK_EQ(kv_size(&srv.store), 0);
    CHECK_EQ(kv_expiring(&srv.store), 0);
}

/* ---- the keyspace mid-rehash ---- */

#define RH_N 4000

static void rh_key(int i, char *k, size_t *kl)
{
    *kl = (size_t)snprintf(k, 32, "rh:%d", i);
}

static int rh_index(const struct kv_entry *e)
{
    CHECK(e->klen > 3 && memcmp(e->key, "rh:", 3) == 0);
    int i = 0;
    for (uint32_t j = 3; j < e->klen; j++)
        i = i * 10 + (e->key[j] - '0');
    CHECK(i >= 0 && i < RH_N);
    return i;
}

static void rh_add(int i)
{
    char k[32];
    size_t kl;
    rh_key(i, k, &kl);
    struct kv_val *v = kv_val_new("v", 1, 1);
    CHECK(v);
    CHECK(kv_set(&srv.store, (const uint8_t *)k, kl, v, -1, false));
}

static bool rh_del(int i)
{
    char k[32];
    size_t kl;
    rh_key(i, k, &kl);
    struct kv_entry *e = kv_lookup(&srv.store, (const uint8_t *)k, kl, fake_now);
    if (e)
        kv_delete(&srv.store, e);
    return e != NULL;
}

static void rh_mark(void *arg, struct kv_entry *e)
{
    ((unsigned char *)arg)[rh_index(e)] = 1;
}

static void rh_count(void *arg, struct kv_entry *e)
{
    (void)e;
    (*(size_t *)arg)++;
}

/* Draws keys until each of the keyspace's was drawn, within a bound that
 * a key in a chain of 4 misses with odds of e^-40 when drawing works. */
static void rh_random_all(const char *what)
{
    static unsigned char got[RH_N];
    memset(got, 0, sizeof(got));
    size_t n = kv_size(&srv.store), distinct = 0;
    size_t buckets = srv.store.mask + 1 + srv.store.mask1 + 1;
    for (size_t d = 0; d < buckets * 4 * 40 && distinct < n; d++) {
        int i = rh_index(kv_random(&srv.store));
        distinct += !got[i];
        got[i] = 1;
    }
    CHECK(kv_rehashing(&srv.store));
    if (distinct != n)
        fprintf(stderr, "%s: drew %zu distinct keys of %zu\n", what, distinct, n);
    CHECK_EQ(distinct, n);
}

static void test_rehash(void)
{
    T("FLUSHALL\r\n", "+OK\r\n");
    /* Mid-growth: 1024 buckets doubling at the 1025th key. */
    int n = 0;
    while (!(kv_rehashing(&srv.store) && srv.store.mask + 1 >= 1024))
        rh_add(n++);
    CHECK(srv.store.mask1 > srv.store.mask && srv.store.rehash > 0);
    size_t walked = 0;
    kv_foreach(&srv.store, rh_count, &walked);
    CHECK_EQ(walked, kv_size(&srv.store));
    for (int i = 0; i < n; i++) {
        char k[32];
        size_t kl;
        rh_key(i, k, &kl);
        CHECK(kv_lookup(&srv.store, (const uint8_t *)k, kl, fake_now) != NULL);
    }
    rh_random_all("kv_random mid-growth");
    /* RANDOMKEY through the command layer: one of the keys. */
    sink_reset();
    feed("RANDOMKEY\r\n", 11);
    CHECK_EQ(reply_flush(&rep), 0);
    CHECK(sink.len > 8 && memcmp(sink.buf, "$", 1) == 0 && memmem(sink.buf, sink.len, "rh:", 3));
    /* Mid-shrink: delete down to under a key per 8 buckets. */
    while (kv_rehashing(&srv.store))
        rh_add(n++);
    while (!kv_rehashing(&srv.store))
        CHECK(rh_del(--n));
    CHECK(srv.store.mask1 < srv.store.mask);
    rh_random_all("kv_random mid-shrink");
    walked = 0;
    kv_foreach(&srv.store, rh_count, &walked);
    CHECK_EQ(walked, kv_size(&srv.store));
    /* The cron finishes an idle table's rehash. */
    kv_rehash_for(&srv.store, INT64_MAX);
    CHECK(!kv_rehashing(&srv.store));
    T("FLUSHALL\r\n", "+OK\r\n");

    /* SCAN: keys 0..39 stay for the whole of each walk; others come and
     * go between calls of one bucket each, the table growing from 64 to
     * 2048 buckets and shrinking back, so that many calls find a rehash
     * in progress. */
    enum { STABLE = 40, SWING = 1500 };
    for (int i = 0; i < STABLE; i++)
        rh_add(i);
    static int live[RH_N];
    static bool in[RH_N];
    int nlive = 0, ops = 0, grow = 0, shrink = 0;
    while (ops < 6 * SWING) {
        static unsigned char mark[RH_N];
        memset(mark, 0, sizeof(mark));
        uint64_t cursor = 0;
        int calls = 0;
        do {
            cursor = kv_scan(&srv.store, cursor, 1, rh_mark, mark);
            calls++;
            if (kv_rehashing(&srv.store) && srv.store.mask1 > srv.store.mask)
                grow++;
            else if (kv_rehashing(&srv.store))
                shrink++;
            for (int j = 0; j < 2; j++, ops++) {
                if ((ops / SWING) % 2 == 0) {
                    int i = STABLE + (int)((unsigned)(ops * 2654435761u) % (RH_N - STABLE));
                    if (!in[i]) {
                        rh_add(i);
                        in[i] = true;
                        live[nlive++] = i;
                    }
                } else if (nlive > 0) {
                    int r = (int)((unsigned)(ops * 2246822519u) % (unsigned)nlive);
                    CHECK(rh_del(live[r]));
                    in[live[r]] = false;
                    live[r] = live[--nlive];
                }
            }
        } while (cursor != 0 && calls < 1000000);
        CHECK_EQ(cursor, 0);
        for (int i = 0; i < STABLE; i++) {
            if (!mark[i])
                fprintf(stderr, "kv_scan: key rh:%d not returned (%d calls)\n", i, calls);
            CHECK(mark[i]);
        }
    }
    if (grow < 50 || shrink < 50)
        fprintf(stderr, "kv_scan: %d calls mid-growth, %d mid-shrink\n", grow, shrink);
    CHECK(grow >= 50 && shrink >= 50);
    T("FLUSHALL\r\n", "+OK\r\n");
}

/* Routes the inline command @line with @n threads. */
static struct kv_route route_of(const char *line, unsigned n)
{
    struct resp_parser p;
    resp_init(&p);
    size_t used;
    CHECK_EQ(resp_parse(&p, (const uint8_t *)line, strlen(line), &used), RESP_CMD);
    struct kv_route rt;
    kv_route(&srv, p.argc, p.argv, n, &rt);
    resp_free(&p);
    return rt;
}

/* demi-kv --threads: Redis Cluster's slots (values from CLUSTER KEYSLOT
 * and the cluster specification) and where commands go. */
static void test_slots(void)
{
#define SLOT(k) kv_key_slot((const uint8_t *)(k), sizeof(k) - 1)
    CHECK_EQ(SLOT("foo"), 12182);
    CHECK_EQ(SLOT("123456789"), 0x31c3 & 16383);
    CHECK_EQ(SLOT("{user1000}.following"), SLOT("{user1000}.followers"));
    CHECK_EQ(SLOT("{user1000}.following"), SLOT("user1000"));
    CHECK_EQ(SLOT("foo{}{bar}"), kv_key_slot((const uint8_t *)"foo{}{bar}", 10)); /* {} is no tag: all of it */
    CHECK(SLOT("foo{}{bar}") != SLOT("bar"));
    CHECK_EQ(SLOT("foo{{bar}}zap"), SLOT("{bar"));
    CHECK_EQ(SLOT("foo{bar}{zap}"), SLOT("bar"));
    CHECK_EQ(SLOT(""), 0);
#undef SLOT
    struct kv_route rt = route_of("GET foo\r\n", 2);
    CHECK(rt.kind == KV_ROUTE_SHARD && rt.shard == 12182 % 2);
    rt = route_of("MSET {t}a 1 {t}b 2\r\n", 3);
    CHECK(rt.kind == KV_ROUTE_SHARD);
    rt = route_of("MSET foo 1 qux 2\r\n", 2); /* slots 12182 and 9995 */
    CHECK(rt.kind == KV_ROUTE_CROSSSLOT);
    rt = route_of("MSET foo 1 qux 2\r\n", 3); /* both slots mod 3 are 2: one thread's */
    CHECK(rt.kind == KV_ROUTE_SHARD && rt.shard == 2);
    rt = route_of("LMPOP 2 foo bar LEFT\r\n", 2); /* keys counted by an argument */
    CHECK(rt.kind == KV_ROUTE_CROSSSLOT);
    rt = route_of("LMPOP 1 foo bar LEFT\r\n", 2); /* bar is not a key here */
    CHECK(rt.kind == KV_ROUTE_SHARD && rt.shard == 0);
    CHECK(route_of("PING\r\n", 2).kind == KV_ROUTE_HERE);
    CHECK(route_of("GET\r\n", 2).kind == KV_ROUTE_HERE); /* the arity error is replied here */
    CHECK(route_of("NOSUCH a\r\n", 2).kind == KV_ROUTE_HERE);
    rt = route_of("DBSIZE\r\n", 2);
    CHECK(rt.kind == KV_ROUTE_ALL && rt.combine == KV_COMBINE_SUM);
    rt = route_of("KEYS *\r\n", 2);
    CHECK(rt.kind == KV_ROUTE_ALL && rt.combine == KV_COMBINE_ARRAYS);
    rt = route_of("CONFIG SET maxmemory 0\r\n", 2);
    CHECK(rt.kind == KV_ROUTE_ALL && rt.combine == KV_COMBINE_ALL_OK);
    CHECK(route_of("CONFIG GET maxmemory\r\n", 2).kind == KV_ROUTE_HERE);
    rt = route_of("SCAN 0\r\n", 2);
    CHECK(rt.kind == KV_ROUTE_REFUSED && strstr(rt.why, "--threads"));
}

int main(void)
{
    sink_begin(&srv, &cl, &rep, fake_clock);
    reply_target(&rep, checked_push, NULL);

    test_basic();
    test_slots();
    test_set_options();
    test_errors();
    test_limits();
    test_expiry();
    test_keys();
    test_zero_copy();
    test_model();
    test_random_commands();
    test_rehash();

    sink_end(&srv, &cl, &rep);
    printf("ok\n");
    return 0;
}
