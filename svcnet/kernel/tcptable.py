"""The kernel's TCP listeners (sock_diag, else /proc/net/tcp): their accept queues.

A pod that is being deleted is taken out of its Services first and signalled
after; connections that reached its listening sockets just before that sit in
their accept queues until the program accepts them. A program that stops
accepting on SIGTERM (most do: they close the listener, then finish what they
hold) would reset them. The agent asks this table when those queues are
empty before it signals (docs/architecture.md, "Surviving churn").

For a LISTEN socket the table's rx_queue is the accept queue's length.
Only this network namespace's table is read: pods share the machine's.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable, Collection

_LISTEN = "0A"
MAX_LINES = 200_000
"""Rows read at most (a machine with more sockets is not waited on)."""


def _ip4(field: str) -> str:
    # The kernel prints the address's 32 bits as a native-order integer.
    return socket.inet_ntoa(struct.pack("=I", int(field, 16)))


def _ip6(field: str) -> str:
    raw = b"".join(struct.pack("=I", int(field[i : i + 8], 16)) for i in range(0, 32, 8))
    return socket.inet_ntop(socket.AF_INET6, raw)


def accept_queues() -> dict[str, int]:
    """Every listener address with connections queued, and how many (exact
    addresses; a wildcard listener belongs to no one pod). The kernel is asked for its
    listeners only (sock_diag, as `ss -l` does): /proc/net/tcp lists every socket,
    and a thousand pods probed every 2 s leave tens of thousands in TIME_WAIT."""
    try:
        return _diag_listeners()
    except OSError:
        return _proc_listeners()


_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST, _NLM_F_DUMP = 0x1, 0x300
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_TCP_LISTEN = 10
_NLMSG = struct.Struct("=IHHII")
_DIAG_REQ = struct.Struct("=BBBxI48s")
"""inet_diag_req_v2: family, protocol, ext, states, then an empty inet_diag_sockid."""
_DIAG_MSG = struct.Struct("=BBBB2s2s16s16sI8sIIIII")
"""inet_diag_msg: family, state, timer, retrans, sport, dport, src, dst, if, cookie,
expires, rqueue (a listener's accept queue), wqueue, uid, inode."""
MAX_REPLY = 1 << 22
"""Reply bytes read at most per family (a machine with more listeners is not waited on)."""


def _diag_listeners() -> dict[str, int]:
    total: dict[str, int] = {}
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as nl:
        nl.settimeout(1.0)
        for family in (socket.AF_INET, socket.AF_INET6):
            req = _DIAG_REQ.pack(family, socket.IPPROTO_TCP, 0, 1 << _TCP_LISTEN, b"")
            header = _NLMSG.pack(
                _NLMSG.size + len(req), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST | _NLM_F_DUMP, 1, 0
            )
            nl.send(header + req)
            _read_dump(nl, family, total)
    return total


def _read_dump(nl: socket.socket, family: int, total: dict[str, int]) -> None:
    read = 0
    while read < MAX_REPLY:
        data = nl.recv(1 << 16)
        read += len(data)
        at = 0
        while at + _NLMSG.size <= len(data):
            length, kind, _, _, _ = _NLMSG.unpack_from(data, at)
            if kind == _NLMSG_DONE:
                return
            if kind == _NLMSG_ERROR or length < _NLMSG.size:
                raise OSError("sock_diag refused the dump")
            if length >= _NLMSG.size + _DIAG_MSG.size:
                msg = _DIAG_MSG.unpack_from(data, at + _NLMSG.size)
                queued, src = msg[11], msg[6]
                if queued and msg[1] == _TCP_LISTEN:
                    raw = src[:4] if family == socket.AF_INET else src
                    ip = socket.inet_ntop(family, raw)
                    total[ip] = total.get(ip, 0) + queued
            at += (length + 3) & ~3
        if not data:
            return


def _proc_listeners() -> dict[str, int]:
    total: dict[str, int] = {}
    for path, decode in (("/proc/net/tcp", _ip4), ("/proc/net/tcp6", _ip6)):
        try:
            with open(path, encoding="ascii", errors="replace") as f:
                next(f, None)  # the header
                for n, line in enumerate(f):
                    if n >= MAX_LINES:
                        break
                    cols = line.split()
                    if len(cols) < 5 or cols[3] != _LISTEN:
                        continue
                    queued = int(cols[4].partition(":")[2], 16)
                    if queued:
                        ip = decode(cols[1].partition(":")[0])
                        total[ip] = total.get(ip, 0) + queued
        except (OSError, ValueError):
            continue
    return total


class SharedTable:
    """The table read at most once per `max_age` seconds, whoever asks: a thousand
    pods deleted together each poll their queues, and reading the whole table for
    each of them, every poll, cost the square of their number (benchmarks/README.md,
    "Scale")."""

    def __init__(self, max_age: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._max_age = max_age
        self._clock = clock
        self._read_at = float("-inf")
        self._queued: dict[str, int] = {}

    def waiting(self, ips: Collection[str]) -> int:
        """Connections queued on the TCP listeners bound to any of `ips`."""
        now = self._clock()
        if now - self._read_at >= self._max_age:
            self._queued = accept_queues()
            self._read_at = now
        return sum(self._queued.get(ip, 0) for ip in ips)
