"""redis (the official image) and gb-redis-follower: a Redis server, as a stdlib-only script.

What the guestbook tutorial and a redis-cli user need of Redis 6 over RESP2 on port
6379: strings (GET, SET with EX/PX/NX/XX/KEEPTTL, APPEND, INCR), lists (RPUSH, LPUSH,
LRANGE, LLEN), the keyspace (DEL, EXISTS, KEYS, DBSIZE, TTL, PTTL, FLUSHALL, SELECT
over 16 databases), PING, ECHO, INFO, COMMAND and QUIT, with Redis's replies and error
wording (taken from the 6.0/6.2 sources; REDIS_VERSION 7 or later switches the
unknown-command error to 7's wording).

Replication is Redis's own protocol: `--replicaof HOST PORT` (what gb-redis-follower's
run.sh starts) connects to the leader by name through the pod's resolv.conf, says PING,
REPLCONF and PSYNC, loads the full resync's RDB payload, then applies the leader's
command stream and acks its offset every second; it answers reads and refuses writes
with READONLY. The leader sends a real RDB (version 9, strings and lists in the
plain encodings every Redis loads) and propagates each write as Redis does (expired
keys as DEL). There is no partial resync: a replica that reconnects syncs in full.

The argv follows the official image's docker-entrypoint.sh: `redis-server [OPTIONS]`
or bare options run the server; `/run.sh` is gb-redis-follower's script; anything
else is executed as the container's command. Nothing is written to disk.

Bounds, since pods' traffic is hostile: bulk strings 8 MiB (proto-max-bulk-len),
1M arguments, inline requests 64 KiB, a client's query buffer 16 MiB and reply
buffer 32 MiB (64 MiB for replicas) and all clients' buffers together 256 MiB (the
client is closed, as by Redis's buffer limits), 1024 clients, and the data set
`--maxmemory` (64 MiB by default; writes then get Redis's OOM error).

One selectors loop, single-threaded like Redis itself; no asyncio (start-up time).
"""

from __future__ import annotations

import heapq
import itertools
import os
import platform
import re
import secrets
import selectors
import signal
import socket
import struct
import sys
import time
from collections import deque
from collections.abc import Callable

PORT = 6379
MAX_BULK = 8 * 1024 * 1024
MAX_MULTIBULK = 1024 * 1024
INLINE_MAX = 64 * 1024
QUERY_LIMIT = 16 * 1024 * 1024
OUTPUT_LIMIT = 32 * 1024 * 1024
REPLICA_OUTPUT_LIMIT = 64 * 1024 * 1024
TOTAL_BUFFERS = 256 * 1024 * 1024
MAX_CLIENTS = 1024
DEFAULT_MAXMEMORY = 64 * 1024 * 1024
DATABASES = 16
ARG_OVERHEAD = 48
"""Bytes a parsed argument costs beyond its content (a Python bytes object)."""
KEY_OVERHEAD = 64
ITEM_OVERHEAD = 16
LLONG_MIN, LLONG_MAX = -(2**63), 2**63 - 1
INT_RE = re.compile(rb"-?(0|[1-9][0-9]{0,18})")
NO_REPLID = "0" * 40


class CommandError(Exception):
    """An error reply; the message is sent after '-'."""


WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
NOT_INTEGER = "ERR value is not an integer or out of range"
SYNTAX = "ERR syntax error"
READONLY = "READONLY You can't write against a read only replica."
OOM = "OOM command not allowed when used memory > 'maxmemory'."


class ProtocolError(Exception):
    pass


# --- RESP encoding -----------------------------------------------------------------


def bulk(value: bytes | None) -> bytes:
    if value is None:
        return b"$-1\r\n"
    return b"$%d\r\n%s\r\n" % (len(value), value)


def integer(n: int) -> bytes:
    return b":%d\r\n" % n


def array(items: list[bytes]) -> bytes:
    """An array of already encoded replies."""
    return b"*%d\r\n" % len(items) + b"".join(items)


def status(s: str) -> bytes:
    return b"+" + s.encode() + b"\r\n"


def error(msg: str) -> bytes:
    # Redis turns newlines of an error into spaces: a reply is one line.
    return b"-" + msg.replace("\r", " ").replace("\n", " ").encode("utf-8", "replace") + b"\r\n"


def command_bytes(argv: list[bytes]) -> bytes:
    return b"*%d\r\n" % len(argv) + b"".join(bulk(a) for a in argv)


def parse_int(raw: bytes) -> int | None:
    """Redis's string2ll: strict decimal, no sign but '-', no leading zeros, 64 bits."""
    if not INT_RE.fullmatch(raw) or raw == b"-0":
        return None
    n = int(raw)
    return n if LLONG_MIN <= n <= LLONG_MAX else None


def split_args(line: bytes) -> list[bytes] | None:
    """sdssplitargs: inline arguments with "double" (escapes) and 'single' quotes;
    None for unbalanced quotes."""
    out: list[bytes] = []
    i, n = 0, len(line)
    escapes = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b", ord("a"): b"\a"}
    while True:
        while i < n and line[i : i + 1].isspace():
            i += 1
        if i >= n:
            return out
        cur = bytearray()
        quote = 0
        while True:
            if quote == ord('"'):
                if i >= n:
                    return None
                c = line[i]
                hexed = line[i + 2 : i + 4]
                if c == 92 and i + 3 < n and line[i + 1] == ord("x") and len(hexed) == 2:
                    try:
                        cur.append(int(hexed, 16))
                        i += 4
                        continue
                    except ValueError:
                        pass
                if c == 92 and i + 1 < n:
                    cur += escapes.get(line[i + 1], bytes([line[i + 1]]))
                    i += 2
                    continue
                if c == quote:
                    i += 1
                    if i < n and not line[i : i + 1].isspace():
                        return None
                    break
                cur.append(c)
                i += 1
            elif quote == ord("'"):
                if i >= n:
                    return None
                c = line[i]
                if c == 92 and i + 1 < n and line[i + 1] == quote:
                    cur.append(quote)
                    i += 2
                    continue
                if c == quote:
                    i += 1
                    if i < n and not line[i : i + 1].isspace():
                        return None
                    break
                cur.append(c)
                i += 1
            else:
                if i >= n or line[i : i + 1].isspace():
                    break
                c = line[i]
                if c in (ord('"'), ord("'")):
                    quote = c
                else:
                    cur.append(c)
                i += 1
        out.append(bytes(cur))


def glob_match(pattern: bytes, s: bytes) -> bool:
    """Redis's stringmatchlen (*, ?, [abc], [^a-z], \\x), without its exponential
    backtracking: one pending '*' at a time, as a glob needs no more."""
    p = i = 0
    star_p, star_i = -1, 0
    while i < len(s):
        if p < len(pattern):
            c = pattern[p]
            if c == ord("*"):
                while p < len(pattern) and pattern[p] == ord("*"):
                    p += 1
                if p == len(pattern):
                    return True
                star_p, star_i = p, i
                continue
            matched, width = _match_one(pattern, p, s[i])
            if matched:
                p += width
                i += 1
                continue
        if star_p < 0:
            return False
        star_i += 1
        i = star_i
        p = star_p
    while p < len(pattern) and pattern[p] == ord("*"):
        p += 1
    return p == len(pattern)


def _match_one(pattern: bytes, p: int, ch: int) -> tuple[bool, int]:
    """Whether the pattern element at p matches ch, and its width in the pattern."""
    c = pattern[p]
    if c == ord("?"):
        return True, 1
    if c == 92 and p + 1 < len(pattern):
        return pattern[p + 1] == ch, 2
    if c != ord("["):
        return c == ch, 1
    q = p + 1
    negate = q < len(pattern) and pattern[q] == ord("^")
    if negate:
        q += 1
    hit = False
    while q < len(pattern) and pattern[q] != ord("]"):
        if pattern[q] == 92 and q + 1 < len(pattern):
            hit = hit or pattern[q + 1] == ch
            q += 2
        elif q + 2 < len(pattern) and pattern[q + 1] == ord("-") and pattern[q + 2] != ord("]"):
            lo, hi = sorted((pattern[q], pattern[q + 2]))
            hit = hit or lo <= ch <= hi
            q += 3
        else:
            hit = hit or pattern[q] == ch
            q += 1
    # An unclosed '[' runs to the end of the pattern, as in Redis.
    return hit != negate, q + 1 - p


# --- RDB (the full resync's payload) -----------------------------------------------


def rdb_len(n: int) -> bytes:
    if n < 64:
        return bytes([n])
    if n < 16384:
        return bytes([0x40 | (n >> 8), n & 0xFF])
    if n <= 0xFFFFFFFF:
        return b"\x80" + struct.pack(">I", n)
    return b"\x81" + struct.pack(">Q", n)


def rdb_str(b: bytes) -> bytes:
    return rdb_len(len(b)) + b


class RdbReader:
    """Reads what `dump` writes (and plain or integer-encoded strings and linked
    lists from a real Redis); every length is checked against what is left."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError("Short read or OOM loading DB. Unrecoverable error, aborting now.")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def length(self) -> tuple[int, bool]:
        """(length, is an encoded integer string)."""
        first = self.take(1)[0]
        kind = first >> 6
        if kind == 0:
            return first & 0x3F, False
        if kind == 1:
            return ((first & 0x3F) << 8) | self.take(1)[0], False
        if first == 0x80:
            return struct.unpack(">I", self.take(4))[0], False
        if first == 0x81:
            return struct.unpack(">Q", self.take(8))[0], False
        if kind == 3 and first & 0x3F <= 2:
            return first & 0x3F, True
        raise ValueError(f"Unknown RDB string encoding type {first & 0x3F}")

    def string(self) -> bytes:
        n, encoded = self.length()
        if encoded:
            width = (1, 2, 4)[n]
            value = int.from_bytes(self.take(width), "little", signed=True)
            return str(value).encode()
        return self.take(n)


def dump(server: Server) -> bytes:
    out = [b"REDIS0009"]
    aux = {
        b"redis-ver": server.version.encode(),
        b"redis-bits": b"64",
        b"ctime": str(int(time.time())).encode(),
        b"used-mem": str(server.used).encode(),
        b"repl-stream-db": b"0",
        b"repl-id": server.replid.encode(),
        b"repl-offset": str(server.repl_offset).encode(),
        b"aof-preamble": b"0",
    }
    for k, v in aux.items():
        out.append(b"\xfa" + rdb_str(k) + rdb_str(v))
    now = now_ms()
    for n, db in enumerate(server.dbs):
        live = {k: v for k, v in db.data.items() if not db.expired(k, now)}
        if not live:
            continue
        out.append(b"\xfe" + rdb_len(n))
        out.append(b"\xfb" + rdb_len(len(live)) + rdb_len(len(db.expires)))
        for key, value in live.items():
            when = db.expires.get(key)
            if when is not None:
                out.append(b"\xfc" + struct.pack("<q", when))
            if isinstance(value, bytes):
                out.append(b"\x00" + rdb_str(key) + rdb_str(value))
            else:
                out.append(b"\x01" + rdb_str(key) + rdb_len(len(value)))
                out.extend(rdb_str(item) for item in value)
    # A zero checksum tells the loader that checksums were not computed.
    out.append(b"\xff" + b"\0" * 8)
    return b"".join(out)


def load(server: Server, payload: bytes) -> str:
    """Replace the data set with an RDB payload; returns the version that made it."""
    r = RdbReader(payload)
    magic = r.take(9)
    if not magic.startswith(b"REDIS") or not magic[5:].isdigit():
        raise ValueError("Wrong signature trying to load DB from file")
    made_by = "unknown"
    db = server.dbs[0]
    expire_at: int | None = None
    while True:
        op = r.take(1)[0]
        if op == 0xFF:
            break
        if op == 0xFA:
            key, value = r.string(), r.string()
            if key == b"redis-ver":
                made_by = value.decode("latin-1")
        elif op == 0xFE:
            n, _ = r.length()
            if n >= DATABASES:
                raise ValueError(
                    "FATAL: Data file was created with a Redis server configured to handle "
                    f"more than {DATABASES} databases. Exiting"
                )
            db = server.dbs[n]
        elif op == 0xFB:
            r.length()
            r.length()
        elif op == 0xFC:
            expire_at = struct.unpack("<q", r.take(8))[0]
        elif op == 0xFD:
            expire_at = struct.unpack("<I", r.take(4))[0] * 1000
        elif op in (0, 1):
            key = r.string()
            if op == 0:
                db.put(key, r.string())
            else:
                count, _ = r.length()
                items: deque[bytes] = deque()
                for _ in range(count):
                    items.append(r.string())
                db.put(key, items)
            if expire_at is not None:
                db.set_expire(key, expire_at)
            expire_at = None
            if server.used > server.hard_limit:
                raise ValueError("the data set exceeds this replica's memory bound")
        else:
            raise ValueError(f"Unknown RDB encoding type {op}")
    return made_by


# --- the data set ------------------------------------------------------------------


def now_ms() -> int:
    return int(time.time() * 1000)


def size_of(key: bytes, value: bytes | deque[bytes]) -> int:
    if isinstance(value, bytes):
        return KEY_OVERHEAD + len(key) + len(value)
    return KEY_OVERHEAD + len(key) + sum(len(v) + ITEM_OVERHEAD for v in value)


class Db:
    """One numbered database: values (bytes or a deque of bytes) and expiry times."""

    def __init__(self, server: Server, index: int) -> None:
        self.server = server
        self.index = index
        self.data: dict[bytes, bytes | deque[bytes]] = {}
        self.expires: dict[bytes, int] = {}

    def expired(self, key: bytes, now: int | None = None) -> bool:
        when = self.expires.get(key)
        return when is not None and when <= (now_ms() if now is None else now)

    def lookup(self, key: bytes) -> bytes | deque[bytes] | None:
        """The key's value, or None if absent or expired: a leader deletes an expired
        key and tells its replicas (DEL); a replica only hides it until that DEL."""
        if key not in self.data:
            self.server.misses += 1
            return None
        if self.expired(key):
            if not self.server.master_host:
                self.server.expire_key(self, key)
            self.server.misses += 1
            return None
        self.server.hits += 1
        return self.data[key]

    def put(self, key: bytes, value: bytes | deque[bytes], keep_ttl: bool = False) -> None:
        old = self.data.get(key)
        if old is not None:
            self.server.used -= size_of(key, old)
        self.data[key] = value
        self.server.used += size_of(key, value)
        if not keep_ttl:
            self.expires.pop(key, None)

    def delete(self, key: bytes) -> bool:
        old = self.data.pop(key, None)
        self.expires.pop(key, None)
        if old is None:
            return False
        self.server.used -= size_of(key, old)
        return True

    def set_expire(self, key: bytes, when: int) -> None:
        self.expires[key] = when
        heapq.heappush(self.server.expiry_heap, (when, self.index, key))

    def clear(self) -> None:
        for key in list(self.data):
            self.delete(key)


def get_string(db: Db, key: bytes) -> bytes | None:
    value = db.lookup(key)
    if value is not None and not isinstance(value, bytes):
        raise CommandError(WRONGTYPE)
    return value


def get_list(db: Db, key: bytes) -> deque[bytes] | None:
    value = db.lookup(key)
    if value is not None and not isinstance(value, deque):
        raise CommandError(WRONGTYPE)
    return value


def int_arg(raw: bytes) -> int:
    n = parse_int(raw)
    if n is None:
        raise CommandError(NOT_INTEGER)
    return n


# --- clients -----------------------------------------------------------------------


class Client:
    """A connection: a client, a replica that synced from us, or our link to the master."""

    def __init__(self, server: Server, sock: socket.socket, addr: str) -> None:
        self.server = server
        self.sock = sock
        self.addr = addr
        self.inbuf = bytearray()
        self.pos = 0
        self.outbuf = bytearray()
        self.db = 0
        self.close_after_reply = False
        self.closed = False
        # Incremental RESP parsing, as Redis keeps it on the client: a command whose
        # arguments arrive in pieces is never parsed twice.
        self.mb_left = 0
        self.bulk_len = -1
        self.argv: list[bytes] = []
        self.argv_bytes = 0
        self.replica_state = ""
        """"online" once this client synced from us (a replica)."""
        self.replica_port = 0
        self.replica_ack = 0
        self.is_master = False
        """This connection is our link to the master: its commands are applied silently."""
        self.events = 0

    def alive(self) -> bool:
        return not self.closed

    def send(self, data: bytes) -> None:
        if self.closed:
            return
        self.outbuf += data
        self.server.buffers += len(data)

    def parse(self) -> list[bytes] | None:
        """The next complete command in the buffer ([] for an empty one), or None."""
        buf = self.inbuf
        if self.mb_left == 0:
            if self.pos >= len(buf):
                return None
            if buf[self.pos] != ord("*"):
                return self.parse_inline()
            nl = buf.find(b"\r\n", self.pos)
            if nl < 0:
                if len(buf) - self.pos > INLINE_MAX:
                    raise ProtocolError("too big mbulk count string")
                return None
            n = parse_int(bytes(buf[self.pos + 1 : nl]))
            if n is None or n > MAX_MULTIBULK:
                raise ProtocolError("invalid multibulk length")
            self.pos = nl + 2
            if n <= 0:
                return []
            self.mb_left = n
        while self.mb_left:
            if self.bulk_len < 0:
                nl = buf.find(b"\r\n", self.pos)
                if nl < 0:
                    if len(buf) - self.pos > INLINE_MAX:
                        raise ProtocolError("too big bulk count string")
                    return None
                if buf[self.pos] != ord("$"):
                    raise ProtocolError(f"expected '$', got '{chr(buf[self.pos])}'")
                n = parse_int(bytes(buf[self.pos + 1 : nl]))
                if n is None or n < 0 or n > MAX_BULK:
                    raise ProtocolError("invalid bulk length")
                self.pos = nl + 2
                self.bulk_len = n
            if len(buf) - self.pos < self.bulk_len + 2:
                return None
            arg = bytes(buf[self.pos : self.pos + self.bulk_len])
            self.pos += self.bulk_len + 2
            self.argv.append(arg)
            self.argv_bytes += len(arg) + ARG_OVERHEAD
            self.bulk_len = -1
            self.mb_left -= 1
        argv, self.argv, self.argv_bytes = self.argv, [], 0
        return argv

    def parse_inline(self) -> list[bytes] | None:
        nl = self.inbuf.find(b"\n", self.pos)
        if nl < 0:
            if len(self.inbuf) - self.pos > INLINE_MAX:
                raise ProtocolError("too big inline request")
            return None
        line = bytes(self.inbuf[self.pos : nl]).rstrip(b"\r")
        self.pos = nl + 1
        args = split_args(line)
        if args is None:
            raise ProtocolError("unbalanced quotes in request")
        return args

    def compact(self) -> None:
        if self.pos:
            del self.inbuf[: self.pos]
            self.pos = 0


# --- commands ----------------------------------------------------------------------

Handler = Callable[["Server", Client, list[bytes]], bytes]


class Command:
    def __init__(
        self,
        name: str,
        handler: Handler,
        arity: int,
        flags: str,
        keys: tuple[int, int, int] = (0, 0, 0),
    ) -> None:
        self.name = name
        self.handler = handler
        self.arity = arity
        self.flags = flags.split()
        self.keys = keys

    @property
    def write(self) -> bool:
        return "write" in self.flags

    def info(self) -> bytes:
        """COMMAND's entry: name, arity, flags, first/last key and step, ACL categories."""
        order = ["write", "readonly", "denyoom", "admin", "noscript", "random"]
        order += ["sort_for_script", "loading", "stale", "fast"]
        flags = [f for f in order if f in self.flags]
        cats = [c for c in self.flags if c.startswith("@")]
        if "write" in self.flags:
            cats.append("@write")
        if "readonly" in self.flags:
            cats.append("@read")
        if "admin" in self.flags:
            cats += ["@admin", "@dangerous"]
        cats.append("@fast" if "fast" in self.flags else "@slow")
        rank = ["@keyspace", "@read", "@write", "@list", "@string", "@admin"]
        rank += ["@fast", "@slow", "@dangerous", "@connection"]
        cats = sorted(set(cats), key=rank.index)
        first, last, step = self.keys
        return array(
            [
                bulk(self.name.encode()),
                integer(self.arity),
                array([status(f) for f in flags]),
                integer(first),
                integer(last),
                integer(step),
                array([status(c) for c in cats]),
            ]
        )


def cmd_ping(s: Server, c: Client, argv: list[bytes]) -> bytes:
    if len(argv) > 2:
        raise CommandError("ERR wrong number of arguments for 'ping' command")
    return status("PONG") if len(argv) == 1 else bulk(argv[1])


def cmd_echo(s: Server, c: Client, argv: list[bytes]) -> bytes:
    return bulk(argv[1])


def cmd_get(s: Server, c: Client, argv: list[bytes]) -> bytes:
    return bulk(get_string(s.dbs[c.db], argv[1]))


def cmd_set(s: Server, c: Client, argv: list[bytes]) -> bytes:
    nx = xx = keep_ttl = False
    unit = 0
    expire: bytes | None = None
    j = 3
    while j < len(argv):
        a = argv[j].lower()
        nxt = argv[j + 1] if j + 1 < len(argv) else None
        if a == b"nx" and not xx:
            nx = True
        elif a == b"xx" and not nx:
            xx = True
        elif a == b"keepttl" and not unit:
            keep_ttl = True
        elif a in (b"ex", b"px") and not keep_ttl and not unit and nxt is not None:
            unit = 1000 if a == b"ex" else 1
            expire = nxt
            j += 1
        else:
            raise CommandError(SYNTAX)
        j += 1
    ms = 0
    if expire is not None:
        ms = int_arg(expire)
        if ms <= 0:
            raise CommandError("ERR invalid expire time in set")
        ms *= unit
    db = s.dbs[c.db]
    exists = db.lookup(argv[1]) is not None
    if (nx and exists) or (xx and not exists):
        return bulk(None)
    db.put(argv[1], argv[2], keep_ttl)
    if expire is not None:
        db.set_expire(argv[1], now_ms() + ms)
    s.dirty += 1
    return status("OK")


def cmd_del(s: Server, c: Client, argv: list[bytes]) -> bytes:
    db = s.dbs[c.db]
    n = 0
    for key in argv[1:]:
        if db.lookup(key) is not None or key in db.data:
            n += db.delete(key)
    s.dirty += n
    return integer(n)


def cmd_exists(s: Server, c: Client, argv: list[bytes]) -> bytes:
    db = s.dbs[c.db]
    return integer(sum(db.lookup(key) is not None for key in argv[1:]))


def cmd_incr(s: Server, c: Client, argv: list[bytes]) -> bytes:
    db = s.dbs[c.db]
    value = get_string(db, argv[1])
    n = 0 if value is None else parse_int(value)
    if n is None:
        raise CommandError(NOT_INTEGER)
    if n == LLONG_MAX:
        raise CommandError("ERR increment or decrement would overflow")
    db.put(argv[1], str(n + 1).encode(), keep_ttl=True)
    s.dirty += 1
    return integer(n + 1)


def cmd_append(s: Server, c: Client, argv: list[bytes]) -> bytes:
    db = s.dbs[c.db]
    value = get_string(db, argv[1]) or b""
    if len(value) + len(argv[2]) > MAX_BULK:
        raise CommandError("ERR string exceeds maximum allowed size (512MB)")
    db.put(argv[1], value + argv[2], keep_ttl=True)
    s.dirty += 1
    return integer(len(value) + len(argv[2]))


def cmd_push(s: Server, c: Client, argv: list[bytes]) -> bytes:
    db = s.dbs[c.db]
    lst = get_list(db, argv[1])
    if lst is None:
        lst = deque()
        db.put(argv[1], lst)
    left = argv[0].lower() == b"lpush"
    for item in argv[2:]:
        if left:
            lst.appendleft(item)
        else:
            lst.append(item)
        s.used += len(item) + ITEM_OVERHEAD
    s.dirty += len(argv) - 2
    return integer(len(lst))


def cmd_lrange(s: Server, c: Client, argv: list[bytes]) -> bytes:
    start, end = int_arg(argv[2]), int_arg(argv[3])
    lst = get_list(s.dbs[c.db], argv[1])
    if lst is None:
        return array([])
    n = len(lst)
    if start < 0:
        start = n + start
    if end < 0:
        end = n + end
    start = max(start, 0)
    if start > end or start >= n:
        return array([])
    end = min(end, n - 1)
    return array([bulk(item) for item in itertools.islice(lst, start, end + 1)])


def cmd_llen(s: Server, c: Client, argv: list[bytes]) -> bytes:
    lst = get_list(s.dbs[c.db], argv[1])
    return integer(0 if lst is None else len(lst))


def cmd_keys(s: Server, c: Client, argv: list[bytes]) -> bytes:
    db = s.dbs[c.db]
    pattern = argv[1]
    everything = pattern == b"*"
    out = []
    for key in list(db.data):
        if (everything or glob_match(pattern, key)) and db.lookup(key) is not None:
            out.append(bulk(key))
    return array(out)


def cmd_dbsize(s: Server, c: Client, argv: list[bytes]) -> bytes:
    return integer(len(s.dbs[c.db].data))


def cmd_ttl(s: Server, c: Client, argv: list[bytes]) -> bytes:
    db = s.dbs[c.db]
    if db.lookup(argv[1]) is None:
        return integer(-2)
    when = db.expires.get(argv[1])
    if when is None:
        return integer(-1)
    left = max(when - now_ms(), 0)
    return integer(left if argv[0].lower() == b"pttl" else (left + 500) // 1000)


def cmd_flushall(s: Server, c: Client, argv: list[bytes]) -> bytes:
    if len(argv) > 2 or (len(argv) == 2 and argv[1].lower() != b"async"):
        raise CommandError(SYNTAX)
    for db in s.dbs:
        db.clear()
    s.dirty += 1
    return status("OK")


def cmd_select(s: Server, c: Client, argv: list[bytes]) -> bytes:
    n = parse_int(argv[1])
    if n is None:
        raise CommandError("ERR invalid DB index")
    if not 0 <= n < DATABASES:
        raise CommandError("ERR DB index is out of range")
    c.db = n
    return status("OK")


def cmd_info(s: Server, c: Client, argv: list[bytes]) -> bytes:
    if len(argv) > 2:
        raise CommandError(SYNTAX)
    section = argv[1].decode("latin-1").lower() if len(argv) == 2 else "default"
    return bulk(s.info(section).encode())


def cmd_command(s: Server, c: Client, argv: list[bytes]) -> bytes:
    sub = argv[1].lower() if len(argv) > 1 else b""
    if len(argv) == 1:
        return array([cmd.info() for cmd in COMMANDS.values()])
    if sub == b"count" and len(argv) == 2:
        return integer(len(COMMANDS))
    if sub == b"info":
        out = []
        for name in argv[2:]:
            cmd = COMMANDS.get(name.decode("latin-1").lower())
            out.append(cmd.info() if cmd else bulk(None))
        return array(out)
    raise CommandError(
        f"ERR Unknown subcommand or wrong number of arguments for "
        f"'{argv[1].decode('utf-8', 'replace')}'. Try COMMAND HELP."
    )


def cmd_replconf(s: Server, c: Client, argv: list[bytes]) -> bytes:
    if len(argv) % 2 == 0:
        raise CommandError(SYNTAX)
    for j in range(1, len(argv), 2):
        opt, value = argv[j].lower(), argv[j + 1]
        if opt == b"listening-port":
            port = parse_int(value)
            if port is None:
                raise CommandError(NOT_INTEGER)
            c.replica_port = port
        elif opt == b"ack":
            # Acks get no reply: the replica's link is one-way for replies.
            ack = parse_int(value)
            if ack is not None and c.replica_state:
                c.replica_ack = max(c.replica_ack, ack)
            return b""
        elif opt in (b"capa", b"ip-address", b"getack"):
            pass
        else:
            raise CommandError(f"ERR Unrecognized REPLCONF option: {opt.decode('latin-1')}")
    return status("OK")


def cmd_psync(s: Server, c: Client, argv: list[bytes]) -> bytes:
    if s.master_host:
        # A replica of a replica is not something the guestbook needs.
        raise CommandError("NOMASTERLINK Can't SYNC while not connected with my master")
    return s.full_resync(c)


COMMANDS: dict[str, Command] = {
    cmd.name: cmd
    for cmd in (
        Command("get", cmd_get, 2, "readonly fast @string", (1, 1, 1)),
        Command("set", cmd_set, -3, "write denyoom @string", (1, 1, 1)),
        Command("append", cmd_append, 3, "write denyoom fast @string", (1, 1, 1)),
        Command("del", cmd_del, -2, "write @keyspace", (1, -1, 1)),
        Command("exists", cmd_exists, -2, "readonly fast @keyspace", (1, -1, 1)),
        Command("incr", cmd_incr, 2, "write denyoom fast @string", (1, 1, 1)),
        Command("rpush", cmd_push, -3, "write denyoom fast @list", (1, 1, 1)),
        Command("lpush", cmd_push, -3, "write denyoom fast @list", (1, 1, 1)),
        Command("llen", cmd_llen, 2, "readonly fast @list", (1, 1, 1)),
        Command("lrange", cmd_lrange, 4, "readonly @list", (1, 1, 1)),
        Command("select", cmd_select, 2, "loading stale fast @keyspace"),
        Command("keys", cmd_keys, 2, "readonly sort_for_script @keyspace @dangerous"),
        Command("dbsize", cmd_dbsize, 1, "readonly fast @keyspace"),
        Command("ping", cmd_ping, -1, "stale fast @connection"),
        Command("echo", cmd_echo, 2, "readonly fast @connection"),
        Command("sync", cmd_psync, 1, "admin noscript"),
        Command("psync", cmd_psync, 3, "admin noscript"),
        Command("replconf", cmd_replconf, -1, "admin noscript loading stale"),
        Command("flushall", cmd_flushall, -1, "write @keyspace @dangerous"),
        Command("info", cmd_info, -1, "loading stale random @dangerous"),
        Command("ttl", cmd_ttl, 2, "readonly fast random @keyspace", (1, 1, 1)),
        Command("pttl", cmd_ttl, 2, "readonly fast random @keyspace", (1, 1, 1)),
        Command("command", cmd_command, -1, "loading stale random @connection"),
    )
}


# --- the server --------------------------------------------------------------------


def human(n: int) -> str:
    """Redis's bytesToHuman."""
    for unit, size in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return f"{n}B"


class Server:
    def __init__(self, version: str, port: int, maxmemory: int, maxclients: int) -> None:
        self.version = version
        self.port = port
        self.maxmemory = maxmemory
        self.hard_limit = maxmemory + 2 * MAX_BULK
        """Past this even a replica's writes from its master are refused."""
        self.maxclients = maxclients
        self.dbs = [Db(self, n) for n in range(DATABASES)]
        self.used = 0
        self.buffers = 0
        """Bytes in every client's input and output buffers (TOTAL_BUFFERS bounds it)."""
        self.expiry_heap: list[tuple[int, int, bytes]] = []
        self.sel = selectors.DefaultSelector()
        self.clients: dict[int, Client] = {}
        self.started = time.time()
        self.run_id = secrets.token_hex(20)
        self.replid = secrets.token_hex(20)
        self.repl_offset = 0
        self.backlog = False
        self.repl_seldb = -1
        self.dirty = 0
        self.stop = False
        self.hits = self.misses = self.expired_keys = 0
        self.connections = self.commands = self.rejected = 0
        self.master_host = ""
        self.master_port = 0
        self.master: Client | None = None
        self.link_state = ""
        """The replica's link: "" (none), connect, handshake states, transfer, connected."""
        self.link_deadline = 0.0
        self.link_retry = 0.0
        self.link_last_io = 0.0
        self.transfer_left = -1
        self.transfer: bytearray = bytearray()
        self.last_ack = 0.0
        self.last_ping = 0.0
        self.master_replid = ""
        self.master_offset = 0

    # --- logging ---

    def log(self, level: str, msg: str, role: str = "") -> None:
        role = role or ("S" if self.master_host else "M")
        now = time.time()
        stamp = time.strftime("%d %b %Y %H:%M:%S", time.localtime(now))
        line = f"{os.getpid()}:{role} {stamp}.{int(now * 1000) % 1000:03d} {level} {msg}\n"
        sys.stdout.write(line)
        sys.stdout.flush()

    # --- networking ---

    def listen(self, host: str) -> socket.socket:
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((host, self.port))
        srv.listen(511)
        srv.setblocking(False)
        self.sel.register(srv, selectors.EVENT_READ, None)
        return srv

    def accept(self, srv: socket.socket) -> None:
        try:
            sock, peer = srv.accept()
        except OSError:
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if len(self.clients) >= self.maxclients:
            self.rejected += 1
            try:
                sock.send(b"-ERR max number of clients reached\r\n")
            except OSError:
                pass
            sock.close()
            return
        self.connections += 1
        c = Client(self, sock, f"{peer[0]}:{peer[1]}")
        self.clients[sock.fileno()] = c
        self.sel.register(sock, selectors.EVENT_READ, c)
        c.events = selectors.EVENT_READ

    def close(self, c: Client) -> None:
        if c.closed:
            return
        c.closed = True
        self.buffers -= len(c.outbuf) + len(c.inbuf)
        self.clients.pop(c.sock.fileno(), None)
        try:
            self.sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()
        if c.replica_state:
            self.log("#", f"Connection with replica {self.replica_name(c)} lost.")
        if c is self.master:
            self.master = None
            self.link_state = ""
            self.transfer = bytearray()
            self.link_retry = time.monotonic() + 1

    def on_readable(self, c: Client) -> None:
        try:
            data = c.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            if c is self.master:
                self.log("#", "Connection with master lost.")
            self.close(c)
            return
        c.inbuf += data
        self.buffers += len(data)
        if c is self.master:
            self.link_last_io = time.monotonic()
            self.on_master_data(c)
        else:
            self.process(c)
        if not c.closed and self.within_limits(c):
            self.flush(c)

    def flush(self, c: Client) -> None:
        if c.closed:
            return
        if c.outbuf:
            try:
                n = c.sock.send(c.outbuf)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError:
                self.close(c)
                return
            del c.outbuf[:n]
            self.buffers -= n
        if not c.outbuf and c.close_after_reply:
            self.close(c)
            return
        want = selectors.EVENT_READ | (selectors.EVENT_WRITE if c.outbuf else 0)
        if c.close_after_reply:
            want = selectors.EVENT_WRITE
        if want != c.events:
            self.sel.modify(c.sock, want, c)
            c.events = want

    # --- commands ---

    def process(self, c: Client) -> None:
        while not c.close_after_reply and not c.closed:
            try:
                argv = c.parse()
            except ProtocolError as e:
                c.send(error(f"ERR Protocol error: {e}"))
                c.close_after_reply = True
                break
            if argv is None:
                break
            if argv:
                c.send(self.call(c, argv))
            if not self.within_limits(c):
                return
        if not c.closed:
            before = len(c.inbuf)
            c.compact()
            self.buffers -= before - len(c.inbuf)

    def within_limits(self, c: Client) -> bool:
        """Closes a client past its buffers' bounds (Redis's query buffer and output
        buffer limits) or when all clients' buffers together are past theirs."""
        limit = REPLICA_OUTPUT_LIMIT if c.replica_state else OUTPUT_LIMIT
        if len(c.inbuf) - c.pos + c.argv_bytes > QUERY_LIMIT:
            self.log("#", f"Closing client that reached max query buffer length: addr={c.addr}")
        elif len(c.outbuf) > limit:
            self.log(
                "#",
                f"Client addr={c.addr} scheduled to be closed ASAP for overcoming of output "
                "buffer limits.",
            )
        elif self.buffers > TOTAL_BUFFERS:
            self.log(
                "#", f"Closing client addr={c.addr}: all clients' buffers are over their bound"
            )
        else:
            return True
        self.close(c)
        return False

    def call(self, c: Client, argv: list[bytes]) -> bytes:
        name = argv[0].decode("utf-8", "replace")
        lname = name.lower()
        if lname == "quit":
            c.close_after_reply = True
            return status("OK")
        cmd = COMMANDS.get(lname)
        if cmd is None:
            return error(self.unknown_command(name, argv[1:]))
        if (cmd.arity > 0 and len(argv) != cmd.arity) or len(argv) < -cmd.arity:
            return error(f"ERR wrong number of arguments for '{cmd.name}' command")
        if "denyoom" in cmd.flags and not self.master_host and self.used > self.maxmemory:
            return error(OOM)
        if cmd.write and self.master_host and not c.is_master:
            return error(READONLY)
        self.commands += 1
        dirty = self.dirty
        try:
            reply = cmd.handler(self, c, argv)
        except CommandError as e:
            return error(str(e))
        if self.dirty != dirty and not self.master_host:
            self.propagate(c.db, argv)
        return reply

    def unknown_command(self, name: str, args: list[bytes]) -> str:
        """Redis 6's wording (backquotes), or 7's (quotes) for a REDIS_VERSION from 7 on."""
        seven = self.version.split(".")[0].isdigit() and int(self.version.split(".")[0]) >= 7
        shown = ""
        for a in args:
            if len(shown) >= 128:
                break
            text = a.decode("utf-8", "replace")[: 128 - len(shown)]
            shown += f"'{text}' " if seven else f"`{text}`, "
        if seven:
            return f"ERR unknown command '{name[:128]}', with args beginning with: {shown}"
        return f"ERR unknown command `{name}`, with args beginning with: {shown}"

    def expire_key(self, db: Db, key: bytes) -> None:
        db.delete(key)
        self.expired_keys += 1
        self.propagate(db.index, [b"DEL", key])

    def active_expire(self) -> None:
        if self.master_host:
            return
        now = now_ms()
        heap = self.expiry_heap
        while heap and heap[0][0] <= now:
            when, index, key = heapq.heappop(heap)
            db = self.dbs[index]
            if db.expires.get(key) == when:
                self.expire_key(db, key)
        live = sum(len(db.expires) for db in self.dbs)
        if len(heap) > 2 * live + 1024:
            # Overwritten expiries leave stale entries behind; rebuild now and then.
            self.expiry_heap = [(w, db.index, k) for db in self.dbs for k, w in db.expires.items()]
            heapq.heapify(self.expiry_heap)

    # --- replication: the leader's side ---

    def replicas(self) -> list[Client]:
        return [c for c in self.clients.values() if c.replica_state == "online"]

    def replica_name(self, c: Client) -> str:
        return f"{c.addr.rsplit(':', 1)[0]}:{c.replica_port or 0}"

    def propagate(self, db: int, argv: list[bytes]) -> None:
        if not self.backlog:
            return
        data = b""
        if db != self.repl_seldb:
            data = command_bytes([b"SELECT", str(db).encode()])
            self.repl_seldb = db
        data += command_bytes(argv)
        self.repl_offset += len(data)
        for r in self.replicas():
            r.send(data)
            self.flush(r)

    def full_resync(self, c: Client) -> bytes:
        name = self.replica_name(c)
        self.log("*", f"Replica {name} asks for synchronization")
        self.log("*", f"Full resync requested by replica {name}")
        if not self.backlog:
            self.backlog = True
            self.replid = secrets.token_hex(20)
            self.log(
                "*",
                f"Replication backlog created, my new replication IDs are '{self.replid}' "
                f"and '{NO_REPLID}'",
            )
        payload = dump(self)
        # The next propagated write must say which database it is for.
        self.repl_seldb = -1
        c.replica_state = "online"
        c.replica_ack = self.repl_offset
        self.log("*", f"Synchronization with replica {name} succeeded")
        return (
            f"+FULLRESYNC {self.replid} {self.repl_offset}\r\n".encode()
            + b"$%d\r\n" % len(payload)
            + payload
        )

    # --- replication: the replica's side ---

    def connect_master(self) -> None:
        self.log("*", f"Connecting to MASTER {self.master_host}:{self.master_port}")
        try:
            infos = socket.getaddrinfo(
                self.master_host, self.master_port, socket.AF_INET, socket.SOCK_STREAM
            )
            addr = infos[0][4]
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        except OSError as e:
            self.log("#", f"Unable to connect to MASTER: {e.strerror or e}")
            self.link_retry = time.monotonic() + 1
            return
        sock.setblocking(False)
        err = sock.connect_ex(addr)
        if err not in (0, 115):  # EINPROGRESS
            sock.close()
            self.log("#", f"Unable to connect to MASTER: {os.strerror(err)}")
            self.link_retry = time.monotonic() + 1
            return
        self.log("*", "MASTER <-> REPLICA sync started")
        c = Client(self, sock, f"{self.master_host}:{self.master_port}")
        c.is_master = True
        self.master = c
        self.clients[sock.fileno()] = c
        self.sel.register(sock, selectors.EVENT_WRITE, c)
        c.events = selectors.EVENT_WRITE
        self.link_state = "connecting"
        self.link_deadline = time.monotonic() + 60

    def master_writable(self, c: Client) -> None:
        if self.link_state != "connecting":
            self.flush(c)
            return
        err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self.log("#", f"Error condition on socket for SYNC: {os.strerror(err)}")
            self.close(c)
            return
        self.log("*", "Non blocking connect for SYNC fired the event.")
        self.link_state = "ping"
        c.send(command_bytes([b"PING"]))
        self.flush(c)

    def on_master_data(self, c: Client) -> None:
        while not c.closed:
            if self.link_state in ("ping", "port", "capa", "psync"):
                nl = c.inbuf.find(b"\r\n", c.pos)
                if nl < 0:
                    if len(c.inbuf) - c.pos > INLINE_MAX:
                        self.close(c)
                    break
                line = bytes(c.inbuf[c.pos : nl]).decode("utf-8", "replace")
                c.pos = nl + 2
                self.handshake(c, line)
            elif self.link_state == "transfer":
                if not self.receive_payload(c):
                    break
            elif self.link_state == "connected":
                self.apply_stream(c)
                break
            else:
                break
        if not c.closed:
            before = len(c.inbuf)
            c.compact()
            self.buffers -= before - len(c.inbuf)

    def handshake(self, c: Client, line: str) -> None:
        state = self.link_state
        if state == "ping":
            if line.startswith("-") and not line.startswith(
                ("-NOAUTH", "-NOPERM", "-ERR operation")
            ):
                self.log("#", f"Error reply to PING from master: '{line}'")
                self.close(c)
                return
            self.log("*", "Master replied to PING, replication can continue...")
            c.send(command_bytes([b"REPLCONF", b"listening-port", str(self.port).encode()]))
            self.link_state = "port"
        elif state == "port":
            c.send(command_bytes([b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"]))
            self.link_state = "capa"
        elif state == "capa":
            self.log("*", "Partial resynchronization not possible (no cached master)")
            c.send(command_bytes([b"PSYNC", b"?", b"-1"]))
            self.link_state = "psync"
        elif state == "psync":
            parts = line.split()
            if len(parts) != 3 or parts[0] != "+FULLRESYNC" or parse_int(parts[2].encode()) is None:
                self.log("#", f"Unexpected reply to PSYNC from master: {line[:128]}")
                self.close(c)
                return
            self.log("*", f"Full resync from master: {parts[1]}:{parts[2]}")
            self.master_replid = parts[1]
            self.master_offset = int(parts[2])
            self.link_state = "transfer"
            self.transfer_left = -1
        self.flush(c)

    def receive_payload(self, c: Client) -> bool:
        """Reads the RDB bulk; True when it has been loaded."""
        buf = c.inbuf
        if self.transfer_left < 0:
            # The master sends newlines to keep the link alive while it prepares the RDB.
            while c.pos < len(buf) and buf[c.pos] == ord("\n"):
                c.pos += 1
            nl = buf.find(b"\r\n", c.pos)
            if nl < 0:
                if len(buf) - c.pos > INLINE_MAX:
                    self.close(c)
                return False
            size = parse_int(bytes(buf[c.pos + 1 : nl]))
            if buf[c.pos] != ord("$") or size is None or not 0 <= size <= self.hard_limit:
                self.log(
                    "#",
                    "Bad protocol from MASTER, the first byte is not '$' (we received '"
                    + bytes(buf[c.pos : nl])[:64].decode("latin-1")
                    + "'), are you sure the host and port are right?",
                )
                self.close(c)
                return False
            c.pos = nl + 2
            self.transfer_left = size
            self.log("*", f"MASTER <-> REPLICA sync: receiving {size} bytes from master to disk")
        take = min(self.transfer_left, len(buf) - c.pos)
        self.transfer += buf[c.pos : c.pos + take]
        c.pos += take
        self.transfer_left -= take
        if self.transfer_left:
            return False
        self.log("*", "MASTER <-> REPLICA sync: Flushing old data")
        for db in self.dbs:
            db.clear()
        self.log("*", "MASTER <-> REPLICA sync: Loading DB in memory")
        try:
            made_by = load(self, bytes(self.transfer))
        except (ValueError, struct.error) as e:
            self.log("#", f"Failed trying to load the MASTER synchronization DB from disk: {e}")
            for db in self.dbs:
                db.clear()
            self.transfer = bytearray()
            self.close(c)
            return False
        self.transfer = bytearray()
        self.log("*", f"Loading RDB produced by version {made_by}")
        self.repl_offset = self.master_offset
        self.replid = self.master_replid
        self.link_state = "connected"
        self.log("*", "MASTER <-> REPLICA sync: Finished with success")
        self.send_ack()
        return True

    def apply_stream(self, c: Client) -> None:
        """The master's commands: applied without replies, each advancing our offset."""
        while not c.closed:
            start = c.pos
            try:
                argv = c.parse()
            except ProtocolError as e:
                self.log("#", f"Protocol error from MASTER: {e}")
                self.close(c)
                return
            if argv is None:
                return
            self.repl_offset += c.pos - start
            if not argv:
                continue
            name = argv[0].lower()
            if name == b"replconf" and len(argv) > 1 and argv[1].lower() == b"getack":
                self.send_ack()
                continue
            if self.used > self.hard_limit:
                self.log("#", "The data set from MASTER exceeds this replica's memory bound")
                self.close(c)
                return
            reply = self.call(c, argv)
            if reply.startswith(b"-"):
                text = reply[1:-2].decode("utf-8", "replace")
                self.log(
                    "#", f"== CRITICAL == This replica is sending an error to its master: '{text}'"
                )

    def send_ack(self) -> None:
        c = self.master
        if c is None or self.link_state != "connected":
            return
        c.send(command_bytes([b"REPLCONF", b"ACK", str(self.repl_offset).encode()]))
        self.flush(c)
        self.last_ack = time.monotonic()

    # --- the periodic work (Redis's serverCron and replicationCron) ---

    def cron(self) -> None:
        now = time.monotonic()
        self.active_expire()
        if self.master_host:
            if self.master is None and now >= self.link_retry:
                self.connect_master()
            elif self.link_state not in ("", "connected") and now > self.link_deadline:
                self.log("#", "Timeout connecting to the MASTER...")
                assert self.master is not None
                self.close(self.master)
            elif self.link_state == "connected" and now - self.link_last_io > 60:
                self.log("#", "MASTER timeout: no data nor PING received...")
                assert self.master is not None
                self.close(self.master)
            elif self.link_state == "connected" and now - self.last_ack >= 1:
                self.send_ack()
        elif self.backlog and now - self.last_ping >= 10:
            self.last_ping = now
            if self.replicas():
                self.propagate(self.repl_seldb if self.repl_seldb >= 0 else 0, [b"PING"])

    def serve(self) -> None:
        last_cron = 0.0
        while not self.stop:
            for key, events in self.sel.select(timeout=0.1):
                if key.data is None:
                    self.accept(key.fileobj)  # type: ignore[arg-type]
                    continue
                c: Client = key.data
                if c.closed:
                    continue
                if c is self.master and events & selectors.EVENT_WRITE:
                    self.master_writable(c)
                    if not c.alive():
                        continue
                if events & selectors.EVENT_READ:
                    self.on_readable(c)
                elif events & selectors.EVENT_WRITE:
                    self.flush(c)
            now = time.monotonic()
            if now - last_cron >= 0.1:
                last_cron = now
                self.cron()

    # --- INFO ---

    def info(self, section: str) -> str:
        everything = section in ("all", "everything", "default")
        parts = []
        for name, fn in (
            ("server", self.info_server),
            ("clients", self.info_clients),
            ("memory", self.info_memory),
            ("stats", self.info_stats),
            ("replication", self.info_replication),
            ("keyspace", self.info_keyspace),
        ):
            if everything or section == name:
                parts.append(f"# {name.capitalize()}\r\n" + "".join(f"{line}\r\n" for line in fn()))
        return "\r\n".join(parts)

    def info_server(self) -> list[str]:
        uptime = int(time.time() - self.started)
        return [
            f"redis_version:{self.version}",
            "redis_git_sha1:00000000",
            "redis_git_dirty:0",
            "redis_mode:standalone",
            f"os:{platform.system()} {platform.release()} {platform.machine()}",
            "arch_bits:64",
            "multiplexing_api:epoll",
            f"process_id:{os.getpid()}",
            f"run_id:{self.run_id}",
            f"tcp_port:{self.port}",
            f"uptime_in_seconds:{uptime}",
            f"uptime_in_days:{uptime // 86400}",
            "hz:10",
            "configured_hz:10",
            "executable:/data/redis-server",
            "config_file:",
        ]

    def info_clients(self) -> list[str]:
        n = sum(1 for c in self.clients.values() if not c.is_master and not c.replica_state)
        return [f"connected_clients:{n}", "blocked_clients:0", "tracking_clients:0"]

    def info_memory(self) -> list[str]:
        return [
            f"used_memory:{self.used}",
            f"used_memory_human:{human(self.used)}",
            f"maxmemory:{self.maxmemory}",
            f"maxmemory_human:{human(self.maxmemory)}",
            "maxmemory_policy:noeviction",
        ]

    def info_stats(self) -> list[str]:
        return [
            f"total_connections_received:{self.connections}",
            f"total_commands_processed:{self.commands}",
            f"rejected_connections:{self.rejected}",
            f"expired_keys:{self.expired_keys}",
            f"keyspace_hits:{self.hits}",
            f"keyspace_misses:{self.misses}",
        ]

    def info_replication(self) -> list[str]:
        lines = []
        if self.master_host:
            up = self.link_state == "connected"
            idle = int(time.monotonic() - self.link_last_io) if up else -1
            lines += [
                "role:slave",
                f"master_host:{self.master_host}",
                f"master_port:{self.master_port}",
                f"master_link_status:{'up' if up else 'down'}",
                f"master_last_io_seconds_ago:{idle}",
                f"master_sync_in_progress:{int(self.link_state == 'transfer')}",
                f"slave_repl_offset:{self.repl_offset}",
                "slave_priority:100",
                "slave_read_only:1",
                "connected_slaves:0",
            ]
        else:
            replicas = self.replicas()
            lines += ["role:master", f"connected_slaves:{len(replicas)}"]
            for n, r in enumerate(replicas):
                ip, port = self.replica_name(r).rsplit(":", 1)
                lines.append(
                    f"slave{n}:ip={ip},port={port},state=online,offset={r.replica_ack},lag=0"
                )
        lines += [
            f"master_replid:{self.replid}",
            f"master_replid2:{NO_REPLID}",
            f"master_repl_offset:{self.repl_offset}",
            "second_repl_offset:-1",
            f"repl_backlog_active:{int(self.backlog or bool(self.master_host))}",
            "repl_backlog_size:1048576",
        ]
        return lines

    def info_keyspace(self) -> list[str]:
        return [
            f"db{db.index}:keys={len(db.data)},expires={len(db.expires)},avg_ttl=0"
            for db in self.dbs
            if db.data
        ]


# --- start-up ----------------------------------------------------------------------


def memory_value(raw: str) -> int | None:
    """Redis's memtoll: 100mb, 1gb, 64m, 1024 (units are case-insensitive)."""
    m = re.fullmatch(r"(\d+)(b|k|kb|m|mb|g|gb)?", raw.strip().lower())
    if not m:
        return None
    mult = {None: 1, "b": 1, "k": 1000, "kb": 1024, "m": 10**6, "mb": 1 << 20}
    mult |= {"g": 10**9, "gb": 1 << 30}
    return int(m.group(1)) * mult[m.group(2)]


class ConfigError(Exception):
    pass


IGNORED = {
    "appendonly": 1, "save": -1, "loglevel": 1, "protected-mode": 1, "daemonize": 1,
    "dir": 1, "dbfilename": 1, "databases": 1, "maxmemory-policy": 1, "bind": -1,
    "logfile": 1, "tcp-keepalive": 1, "timeout": 1, "replica-read-only": 1,
    "slave-read-only": 1, "appendfsync": 1, "requirepass": 1, "masterauth": 1,
}  # fmt: skip
"""Options accepted and not acted on, with their argument count (-1: any)."""


def parse_options(args: list[str]) -> dict[str, list[str]]:
    """redis-server's command line: `--name value...` pairs (a config file is refused)."""
    opts: dict[str, list[str]] = {}
    name = ""
    for a in args:
        if a.startswith("--"):
            name = a[2:].lower()
            opts[name] = []
        elif name:
            opts[name].append(a)
        else:
            raise ConfigError(
                f"Fatal error, can't open config file '{a}': No such file or directory"
            )
    for name, values in opts.items():
        want = {"port": 1, "replicaof": 2, "slaveof": 2, "maxmemory": 1, "maxclients": 1}
        want |= IGNORED
        n = want.get(name)
        if n is None or (n >= 0 and len(values) != n):
            line = " ".join([name, *values])
            raise ConfigError(
                "\n*** FATAL CONFIG FILE ERROR (Redis {v}) ***\nReading the configuration file, "
                f"at line 2\n>>> '{line}'\nBad directive or wrong number of arguments"
            )
    return opts


def signal_ready() -> None:
    fd = os.environ.get("SVCNET_READY_FD")
    if fd:
        try:
            os.write(int(fd), b"ready\n")
            os.close(int(fd))
        except (OSError, ValueError):
            pass


def run_server(args: list[str]) -> int:
    version = os.environ.get("REDIS_VERSION") or "6.0.5"
    pid = os.getpid()
    try:
        opts = parse_options(args)
        port = int(opts.get("port", [str(PORT)])[0])
        maxmemory = memory_value(opts.get("maxmemory", [str(DEFAULT_MAXMEMORY)])[0])
        maxclients = int(opts.get("maxclients", [str(MAX_CLIENTS)])[0])
        if maxmemory is None or not 0 < port < 65536:
            raise ValueError
    except ConfigError as e:
        sys.stderr.write(str(e).replace("{v}", version) + "\n")
        return 1
    except ValueError:
        sys.stderr.write("\n*** FATAL CONFIG FILE ERROR ***\nArgument couldn't be parsed\n")
        return 1
    server = Server(version, port, maxmemory or DEFAULT_MAXMEMORY, min(maxclients, MAX_CLIENTS))
    replicaof = opts.get("replicaof") or opts.get("slaveof")
    server.log("#", "oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo", "C")
    server.log(
        "#",
        f"Redis version={version}, bits=64, commit=00000000, modified=0, pid={pid}, just started",
        "C",
    )
    server.log("#", "Configuration loaded", "C")
    if replicaof:
        server.master_host, server.master_port = replicaof[0], int(replicaof[1])
    host = os.environ.get("POD_IP") or "0.0.0.0"
    try:
        server.listen(host)
    except OSError as e:
        server.log(
            "#", f"Could not create server TCP listening socket {host}:{port}: bind: {e.strerror}"
        )
        return 1
    server.log("*", f"Running mode=standalone, port={port}.")
    server.log("#", "Server initialized")
    server.log("*", "Ready to accept connections")
    signal_ready()

    def on_term(signum: int, frame: object) -> None:
        server.log("#", f"Received {signal.Signals(signum).name} scheduling shutdown...")
        server.stop = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    server.serve()
    server.log("#", "User requested shutdown...")
    server.log("#", "Redis is now ready to exit, bye bye...")
    return 0


def follower_run_sh() -> list[str]:
    """gb-redis-follower's /run.sh: replicate the leader named by DNS, or by the
    REDIS_LEADER_SERVICE_HOST variable when GET_HOSTS_FROM=env."""
    if (os.environ.get("GET_HOSTS_FROM") or "dns") == "env":
        return ["--replicaof", os.environ.get("REDIS_LEADER_SERVICE_HOST", ""), "6379"]
    return ["--replicaof", "redis-leader", "6379"]


def main(argv: list[str]) -> int:
    # docker-entrypoint.sh: options alone mean redis-server with them.
    if not argv or argv[0].startswith("-"):
        argv = ["redis-server", *argv]
    if argv[0] == "/run.sh":
        return run_server(follower_run_sh())
    if os.path.basename(argv[0]) == "redis-server":
        return run_server(argv[1:])
    # Any other command runs as it would in the image, on this machine's programs.
    signal_ready()
    try:
        os.execvp(argv[0], argv)
    except OSError as e:
        sys.stderr.write(f"/usr/local/bin/docker-entrypoint.sh: exec: {argv[0]}: {e.strerror}\n")
        return 127


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
