"""Server and connection commands (CLIENT, HELLO, AUTH, RESET, MONITOR,
SLOWLOG, SHUTDOWN, TIME, LASTSAVE, ROLE, WAIT, INFO, CONFIG's slowlog
parameters): the cases whose replies do not depend on time, ports or ids,
for kv_vs_redis.py. Nothing here may stop the server: only SHUTDOWN's
refusals are sent."""

CASES = [
    # SLOWLOG: off (-1) while it is emptied, so that a command slowed by a
    # busy machine cannot add an entry; then back to Redis's default.
    b"CONFIG SET slowlog-log-slower-than -1\r\nSLOWLOG RESET\r\nSLOWLOG LEN\r\nSLOWLOG GET\r\nSLOWLOG GET -1\r\n"
    b"SLOWLOG GET 0\r\nCONFIG SET slowlog-log-slower-than 10000\r\n",
    b"SLOWLOG\r\nSLOWLOG HELP\r\nSLOWLOG foo\r\nSLOWLOG GET x\r\nSLOWLOG GET -2\r\nSLOWLOG GET 1 2\r\n"
    b"SLOWLOG LEN x\r\nSLOWLOG RESET x\r\nSLOWLOG HELP x\r\n",
    b"CONFIG SET slowlog-max-len -5\r\nCONFIG SET slowlog-log-slower-than -2\r\n"
    b"CONFIG SET slowlog-log-slower-than abc\r\nCONFIG SET slowlog-max-len 99999999999999999999\r\n"
    b"CONFIG GET slowlog-max-len\r\nCONFIG GET slowlog-log-slower-than\r\n"
    b"CONFIG SET slowlog-max-len 64\r\nCONFIG GET slowlog-max-len\r\nCONFIG SET slowlog-max-len 128\r\n",
    # HELLO and AUTH without a password configured.
    b"HELLO x\r\nHELLO 4\r\nHELLO 1\r\nHELLO -1\r\nHELLO 2 foo\r\nHELLO 2 AUTH a b\r\nHELLO 2 AUTH a\r\n"
    b"HELLO 2 SETNAME\r\nHELLO 2 SETNAME \"a b\"\r\nHELLO 2 SETNAME x AUTH bob pw\r\nCLIENT GETNAME\r\n",
    b"AUTH x\r\nAUTH default x\r\nAUTH bob x\r\nAUTH a b c\r\nAUTH\r\n",
    # CLIENT: errors, and lists that are empty whatever else is connected.
    b"CLIENT LIST TYPE foo\r\nCLIENT LIST ID x\r\nCLIENT LIST foo\r\nCLIENT LIST ID 1 foo\r\nCLIENT LIST ID\r\n"
    b"CLIENT LIST TYPE\r\nCLIENT LIST TYPE replica\r\nCLIENT LIST TYPE pubsub\r\nCLIENT LIST TYPE master\r\n"
    b"CLIENT LIST ID 0\r\nCLIENT LIST ID -5 99999999\r\nCLIENT LIST x y z\r\n",
    b"CLIENT KILL 1.2.3.4:5\r\nCLIENT KILL ID 99999999\r\nCLIENT KILL ID x\r\nCLIENT KILL ID 0\r\n"
    b"CLIENT KILL ID -1\r\nCLIENT KILL SKIPME maybe\r\nCLIENT KILL USER bob\r\nCLIENT KILL TYPE foo\r\n"
    b"CLIENT KILL TYPE master\r\nCLIENT KILL TYPE pubsub\r\nCLIENT KILL ID 1 extra\r\nCLIENT KILL ADDR 1.2.3.4:5\r\n"
    b"CLIENT KILL LADDR 1.2.3.4:5\r\nCLIENT KILL foo bar\r\nCLIENT KILL\r\nCLIENT KILL 127.0.0.1:1 x\r\n"
    b"CLIENT KILL ID 99999999 SKIPME no\r\n",
    b"CLIENT NO-EVICT on\r\nCLIENT NO-EVICT OFF\r\nCLIENT NO-EVICT foo\r\nCLIENT NO-EVICT\r\n"
    b"CLIENT SETNAME \"a b\"\r\nCLIENT SETNAME ok\r\nCLIENT GETNAME\r\nCLIENT INFO x\r\nCLIENT ID x\r\n",
    # The client a CLIENT KILL ADDR names: itself, which gets the reply
    # and then is closed. (Its address is not known in advance; SKIPME
    # yes, the default, spares it.)
    (b"CLIENT KILL SKIPME yes ID 99999999\r\nRESET\r\nCLIENT KILL ID 99999999 SKIPME no\r\n", True),
    # SHUTDOWN's refusals (none of them stops the server).
    b"SHUTDOWN foo\r\nSHUTDOWN NOSAVE SAVE\r\nSHUTDOWN ABORT\r\nSHUTDOWN ABORT NOW\r\nSHUTDOWN NOW ABORT\r\n"
    b"SHUTDOWN abort force\r\nSHUTDOWN SAVE NOSAVE NOW\r\n",
    # MONITOR: the monitor may not touch the keyspace; a second MONITOR
    # has no reply; RESET ends it (before the sentinel, which a monitor
    # would see fed back with a time stamp).
    b"MONITOR\r\nGET k\r\nSET a b\r\nDBSIZE\r\nCONFIG GET slowlog-max-len\r\nMONITOR\r\nRESET\r\nPING\r\n",
    b"MONITOR x\r\nRESET x\r\nRESET\r\n",
    # CLIENT REPLY: OFF drops every reply (its own and errors included)
    # until ON; SKIP drops the next command's; SKIP while OFF changes nothing.
    b"CLIENT REPLY OFF\r\nPING\r\nNOSUCH\r\nCLIENT REPLY SKIP\r\nPING\r\nCLIENT REPLY ON\r\nPING\r\n"
    b"CLIENT REPLY SKIP\r\nECHO a\r\nECHO b\r\nCLIENT REPLY foo\r\nCLIENT REPLY\r\nCLIENT REPLY SKIP\r\n"
    b"CLIENT REPLY ON\r\nPING\r\n",
    # RESET forgets the name.
    b"CLIENT SETNAME n1\r\nRESET\r\nCLIENT GETNAME\r\n",
    # Cheap server commands clients send.
    b"ROLE\r\nROLE x\r\nWAIT 0 0\r\nWAIT 0 x\r\nWAIT 0 -1\r\nWAIT x 0\r\nWAIT 1 1\r\nWAIT 0\r\nTIME x\r\n"
    b"LASTSAVE x\r\n",
    # INFO: unknown sections, several sections, any case.
    b"FLUSHALL\r\nINFO nosuch\r\nINFO keyspace\r\nSET k v\r\nINFO KEYSPACE\r\nINFO keyspace keyspace\r\n"
    b"INFO nosuch keyspace\r\nSET e v PX 100000\r\nINFO Keyspace\r\nFLUSHALL\r\nINFO cluster\r\n"
    b"INFO cluster keyspace\r\n",
]
