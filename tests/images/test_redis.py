"""The redis stand-in (svcnet/images/redis.py) over raw RESP, as redis-cli and the
guestbook's Predis talk to it: replies and Redis's exact error wording, a follower
replicating its leader, and bounds on what a hostile client sends."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from svcnet.testing import free_port
from tests.images.servers import Resp, RespError, free_address, script, wait_for

LOCAL = {"POD_IP": "127.0.0.1"}


@pytest.fixture
def port() -> Iterator[int]:
    """A leader (the official image's default command) on a free loopback port."""
    p = free_port()
    with script("redis.py", "redis-server", "--port", str(p), env=LOCAL):
        yield p


@pytest.fixture
def r(port: int) -> Iterator[Resp]:
    c = Resp("127.0.0.1", port)
    yield c
    c.close()


def test_strings_and_their_options(r: Resp) -> None:
    assert r.raw("PING") == b"+PONG\r\n"
    assert r.raw("ping", "hi") == b"$2\r\nhi\r\n"
    assert r.raw("ECHO", "x y") == b"$3\r\nx y\r\n"
    assert r.raw("GET", "nope") == b"$-1\r\n"
    assert r.raw("SET", "k", "v") == b"+OK\r\n"
    assert r.raw("GET", "k") == b"$1\r\nv\r\n"
    assert r("SET", "k", "w", "NX") is None
    assert r("SET", "k", "w", "XX") == "OK"
    assert r("SET", "other", "w", "XX") is None
    assert r("SET", "k", "v", "NX", "XX") == RespError("ERR syntax error")
    assert r("SET", "k", "v", "EX") == RespError("ERR syntax error")
    assert r("SET", "k", "v", "EX", "1", "PX", "5") == RespError("ERR syntax error")
    assert r("SET", "k", "v", "EX", "0") == RespError("ERR invalid expire time in set")
    assert r("SET", "k", "v", "EX", "ten") == RespError(
        "ERR value is not an integer or out of range"
    )
    assert r("SET", "k", "v", "EX", "100") == "OK"
    assert 99 <= r.integer("TTL", "k") <= 100
    assert r("SET", "k", "v2", "KEEPTTL") == "OK"
    assert r.integer("PTTL", "k") > 98000
    assert r("SET", "k", "v3") == "OK"
    assert r("TTL", "k") == -1 and r("TTL", "gone") == -2
    assert r("SET", "short", "v", "PX", "100") == "OK"
    wait_for(lambda: r("GET", "short") is None, "a PX key to expire")
    assert r("EXISTS", "short") == 0

    assert r("INCR", "n") == 1 and r("INCR", "n") == 2
    assert r("INCR", "k") == RespError("ERR value is not an integer or out of range")
    assert r("SET", "big", "9223372036854775807") == "OK"
    assert r("INCR", "big") == RespError("ERR increment or decrement would overflow")
    assert r("SET", "z", "007") == "OK"
    assert r("INCR", "z") == RespError("ERR value is not an integer or out of range")
    assert r("APPEND", "n", "0") == 2 and r("GET", "n") == b"20"
    assert r("APPEND", "fresh", "abc") == 3

    assert r("EXISTS", "k", "k", "nope") == 2
    assert r("DEL", "k", "n", "nope") == 2
    assert r("EXISTS", "k") == 0


def test_lists_keys_and_databases(r: Resp) -> None:
    assert r("RPUSH", "l", "a", "b") == 2
    assert r("LPUSH", "l", "z") == 3
    assert r.raw("LRANGE", "l", "0", "-1") == b"*3\r\n$1\r\nz\r\n$1\r\na\r\n$1\r\nb\r\n"
    assert r("LRANGE", "l", "-2", "10") == [b"a", b"b"]
    assert r("LRANGE", "l", "5", "10") == [] and r("LRANGE", "none", "0", "-1") == []
    assert r("LRANGE", "l", "x", "1") == RespError("ERR value is not an integer or out of range")
    assert r("LLEN", "l") == 3 and r("LLEN", "none") == 0
    assert r("SET", "s", "v") == "OK"
    wrongtype = "WRONGTYPE Operation against a key holding the wrong kind of value"
    assert r.raw("GET", "l") == f"-{wrongtype}\r\n".encode()
    assert r("RPUSH", "s", "x") == RespError(wrongtype)
    assert r("LRANGE", "s", "0", "1") == RespError(wrongtype)
    assert r("APPEND", "l", "x") == RespError(wrongtype)
    assert r("INCR", "l") == RespError(wrongtype)
    assert r("SET", "l", "now a string") == "OK"  # SET replaces any type

    for key in ("hello", "hallo", "hxllo", "heeeello", "h*llo", "a[b"):
        r("SET", key, "1")
    assert r.keys("h?llo") == [b"h*llo", b"hallo", b"hello", b"hxllo"]
    assert r.keys("h*llo") == [b"h*llo", b"hallo", b"heeeello", b"hello", b"hxllo"]
    assert r.keys("h[ae]llo") == [b"hallo", b"hello"]
    assert r.keys("h[^e]llo") == [b"h*llo", b"hallo", b"hxllo"]
    assert r("KEYS", "h\\*llo") == [b"h*llo"]
    assert r("KEYS", "a\\[b") == [b"a[b"]
    # A hostile pattern costs linear time, not Redis's exponential backtracking.
    assert r("KEYS", "*a" * 200 + "*b") == []
    assert r("DBSIZE") == 8

    assert r("SELECT", "1") == "OK" and r("DBSIZE") == 0 and r("GET", "s") is None
    assert r("SELECT", "16") == RespError("ERR DB index is out of range")
    assert r("SELECT", "one") == RespError("ERR invalid DB index")
    assert r("SET", "in1", "x") == "OK"
    assert r("SELECT", "0") == "OK" and r("GET", "s") == b"v"
    info = r("INFO", "keyspace")
    assert isinstance(info, bytes)
    assert info.decode().splitlines() == ["# Keyspace", "db0:keys=8,expires=0,avg_ttl=0",
                                          "db1:keys=1,expires=0,avg_ttl=0"]  # fmt: skip
    assert r("FLUSHALL") == "OK" and r("DBSIZE") == 0
    assert r("SELECT", "1") == "OK" and r("DBSIZE") == 0


def test_errors_in_redis_wording(r: Resp) -> None:
    assert r.raw("FOO", "bar", "baz") == (
        b"-ERR unknown command `FOO`, with args beginning with: `bar`, `baz`, \r\n"
    )
    assert r.raw("nope") == b"-ERR unknown command `nope`, with args beginning with: \r\n"
    assert r.raw("GET") == b"-ERR wrong number of arguments for 'get' command\r\n"
    assert r.raw("get", "a", "b") == b"-ERR wrong number of arguments for 'get' command\r\n"
    assert r("PING", "a", "b") == RespError("ERR wrong number of arguments for 'ping' command")
    assert r("COMMAND", "NOPE") == RespError(
        "ERR Unknown subcommand or wrong number of arguments for 'NOPE'. Try COMMAND HELP."
    )
    assert r("PING") == "PONG"  # the connection is still good


def test_redis_7_wording_when_the_image_says_7() -> None:
    p = free_port()
    with script("redis.py", "--port", str(p), env={**LOCAL, "REDIS_VERSION": "7.2.4"}):
        c = Resp("127.0.0.1", p)
        assert c.raw("FOO", "bar", "baz") == (
            b"-ERR unknown command 'FOO', with args beginning with: 'bar' 'baz' \r\n"
        )
        info = c("INFO", "server")
        assert isinstance(info, bytes) and b"redis_version:7.2.4\r\n" in info
        c.close()


def test_command_info_quit_and_inline(r: Resp) -> None:
    count = r("COMMAND", "COUNT")
    assert isinstance(count, int) and count > 20
    everything = r("COMMAND")
    assert isinstance(everything, list) and len(everything) == count
    assert r("COMMAND", "INFO", "get", "set", "nope") == [
        [b"get", 2, ["readonly", "fast"], 1, 1, 1, ["@read", "@string", "@fast"]],
        [b"set", -3, ["write", "denyoom"], 1, 1, 1, ["@write", "@string", "@slow"]],
        None,
    ]
    info = r("INFO", "replication")
    assert isinstance(info, bytes)
    assert info.startswith(b"# Replication\r\nrole:master\r\nconnected_slaves:0\r\n")
    everything_info = r("INFO")
    assert isinstance(everything_info, bytes)
    assert b"# Server\r\nredis_version:6.0.5\r\n" in everything_info
    # Inline commands, as telnet sends them, with quoting.
    r.send_raw(b'SET "two words" \'it\\\'s\'\r\nGET "two words"\r\n')
    assert r.reply() == "OK" and r.reply() == b"it's"
    r.send_raw(b'ECHO "unbalanced\r\n')
    assert r.reply() == RespError("ERR Protocol error: unbalanced quotes in request")
    assert r.closed_by_peer()
    r2 = Resp("127.0.0.1", r.sock.getpeername()[1])
    assert r2.raw("QUIT") == b"+OK\r\n"
    assert r2.closed_by_peer()


def test_hostile_input_is_bounded(port: int) -> None:
    cases = [
        (b"*1\r\n$9000000\r\n", "ERR Protocol error: invalid bulk length"),
        (b"*1\r\n$-5\r\n", "ERR Protocol error: invalid bulk length"),
        (b"*2000000\r\n", "ERR Protocol error: invalid multibulk length"),
        (b"*x\r\n", "ERR Protocol error: invalid multibulk length"),
        (b"*1\r\n:5\r\n", "ERR Protocol error: expected '$', got ':'"),
        (b"A" * 70000, "ERR Protocol error: too big inline request"),
        (b"*1\r\n" + b"9" * 70000, "ERR Protocol error: too big bulk count string"),
    ]
    for data, message in cases:
        c = Resp("127.0.0.1", port)
        c.send_raw(data)
        assert c.reply() == RespError(message), data[:20]
        assert c.closed_by_peer(), data[:20]
        c.close()
    # Arguments that add up past the query buffer's bound close the connection.
    c = Resp("127.0.0.1", port)
    chunk = b"x" * (8 * 1024 * 1024)
    try:
        c.send_raw(b"*3\r\n" + (b"$%d\r\n%s\r\n" % (len(chunk), chunk)) * 2 + b"$10\r\n")
    except OSError:
        pass  # closed while we were still sending: the bound held
    assert c.closed_by_peer()
    c.close()
    # The server is unharmed.
    c = Resp("127.0.0.1", port)
    assert c("PING") == "PONG"
    c.close()


def test_the_data_set_is_bounded() -> None:
    p = free_port()
    with script("redis.py", "--port", str(p), "--maxmemory", "1mb", env=LOCAL):
        c = Resp("127.0.0.1", p)
        value = b"v" * 100_000
        for n in range(20):
            reply = c("SET", f"k{n}", value)
            if reply != "OK":
                break
        assert reply == RespError("OOM command not allowed when used memory > 'maxmemory'.")
        assert c("RPUSH", "l", "x") == RespError(
            "OOM command not allowed when used memory > 'maxmemory'."
        )
        assert c("GET", "k0") == value  # reads still work
        assert c("DEL", "k0", "k1", "k2") == 3  # and deletes, which free memory
        assert c("SET", "again", "x") == "OK"
        c.close()


def test_a_bad_option_is_refused_as_redis_refuses_it() -> None:
    p = free_port()
    with pytest.raises(AssertionError, match="Bad directive or wrong number of arguments"):
        with script("redis.py", "--port", str(p), "--bogus", "1", env=LOCAL):
            pass


def test_a_follower_replicates_its_leader_and_refuses_writes() -> None:
    leader_port, follower_port = free_port(), free_port()
    with script("redis.py", "--port", str(leader_port), env=LOCAL) as leader_proc:
        leader = Resp("127.0.0.1", leader_port)
        assert leader("SET", "before", "sync") == "OK"
        assert leader("RPUSH", "list", "a", "b") == 2
        assert leader("SET", "ttl", "x", "EX", "100") == "OK"
        with script(
            "redis.py", "--port", str(follower_port), "--replicaof", "127.0.0.1",
            str(leader_port), env={**LOCAL, "REDIS_VERSION": "6.2.17"},
        ) as follower_proc:  # fmt: skip
            f = Resp("127.0.0.1", follower_port)

            def linked() -> bool:
                info = f("INFO", "replication")
                return isinstance(info, bytes) and b"master_link_status:up" in info

            wait_for(linked, "the follower's link to its leader")
            # The full resync's data set...
            assert f("GET", "before") == b"sync"
            assert f("LRANGE", "list", "0", "-1") == [b"a", b"b"]
            assert 0 < f.integer("TTL", "ttl") <= 100
            # ... then the stream of writes, in any database.
            assert leader("APPEND", "before", "ed") == 6
            assert leader("SELECT", "3") == "OK" and leader("INCR", "counter") == 1
            assert leader("SET", "gone", "soon", "PX", "150") == "OK"
            wait_for(lambda: f("GET", "before") == b"synced", "the APPEND to replicate")
            assert f("SELECT", "3") == "OK"
            wait_for(lambda: f("GET", "counter") == b"1", "db 3's INCR to replicate")
            # The leader expires keys and tells its replicas (DEL).
            wait_for(lambda: f("EXISTS", "gone") == 0, "the expired key to go")
            assert f("SET", "x", "y") == RespError(
                "READONLY You can't write against a read only replica."
            )
            assert f("FLUSHALL") == RespError(
                "READONLY You can't write against a read only replica."
            )
            info = f("INFO", "replication")
            assert isinstance(info, bytes)
            text = info.decode()
            assert "role:slave\r\n" in text and f"master_port:{leader_port}\r\n" in text
            assert b"redis_version:6.2.17" in f.bulk("INFO", "server")
            leader_info = leader("INFO", "replication")
            assert isinstance(leader_info, bytes)
            assert b"connected_slaves:1\r\n" in leader_info
            assert f"slave0:ip=127.0.0.1,port={follower_port},state=online".encode() in leader_info
            f.close()
            follower_log = follower_proc.log()
        leader.close()
        leader_log = leader_proc.log()
    assert f"Connecting to MASTER 127.0.0.1:{leader_port}" in follower_log
    assert "MASTER <-> REPLICA sync: Finished with success" in follower_log
    assert f"Synchronization with replica 127.0.0.1:{follower_port} succeeded" in leader_log


def test_run_sh_follows_redis_leader_by_the_service_variables() -> None:
    """gb-redis-follower's run.sh with GET_HOSTS_FROM=env: the leader at
    $REDIS_LEADER_SERVICE_HOST:6379 (by DNS, the pod's resolv.conf names redis-leader;
    the end-to-end test covers that)."""
    leader_ip = free_address(6379)
    follower_ip = free_address(6379)
    with script("redis.py", env={"POD_IP": leader_ip}):
        leader = Resp(leader_ip)
        assert leader("SET", "guestbook", "hi") == "OK"
        env = {"POD_IP": follower_ip, "GET_HOSTS_FROM": "env",
               "REDIS_LEADER_SERVICE_HOST": leader_ip}  # fmt: skip
        with script("redis.py", "/run.sh", env=env):
            f = Resp(follower_ip)
            wait_for(lambda: f("GET", "guestbook") == b"hi", "the follower to sync")
            info = f("INFO", "replication")
            assert isinstance(info, bytes) and f"master_host:{leader_ip}".encode() in info
            f.close()
        leader.close()


def test_other_commands_run_as_the_entrypoint_runs_them() -> None:
    with script("redis.py", "sh", "-c", "echo from-the-image") as s:
        assert s.proc.wait(timeout=10) == 0
        assert s.log() == "from-the-image\n"


def test_max_clients() -> None:
    p = free_port()
    with script("redis.py", "--port", str(p), "--maxclients", "2", env=LOCAL):
        held = [Resp("127.0.0.1", p) for _ in range(2)]
        for c in held:
            assert c("PING") == "PONG"
        with socket.create_connection(("127.0.0.1", p), timeout=10) as extra:
            assert extra.recv(100) == b"-ERR max number of clients reached\r\n"
        for c in held:
            c.close()
