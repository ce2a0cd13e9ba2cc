"""The stand-in scripts started as the agent starts them (python -I -S, POD_IP, the
ready pipe), on loopback addresses of their own, and a redis-cli-like RESP client."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from svcnet import images

SCRIPTS = Path(images.__file__).resolve().parent


def free_address(port: int) -> str:
    """A loopback address where `port` is free (127.2xx: clear of the daemons' CIDRs)."""
    for _ in range(200):
        addr = f"127.{random.randint(200, 250)}.{random.randint(0, 255)}.{random.randint(2, 254)}"
        with socket.socket() as s:
            try:
                s.bind((addr, port))
            except OSError:
                continue
            return addr
    raise AssertionError(f"no free loopback address for port {port}")


@contextmanager
def script(name: str, *args: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    """Runs an image's script until the block ends; waits for its ready line."""
    ready_r, ready_w = os.pipe()
    full_env = {"PATH": os.environ.get("PATH", ""), "SVCNET_READY_FD": str(ready_w), **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-I", "-S", str(SCRIPTS / name), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=full_env,
        pass_fds=(ready_w,),
        text=True,
    )
    os.close(ready_w)
    try:
        with os.fdopen(ready_r, "rb") as ready:
            line = ready.readline()  # EOF (b"") if the script died first
        assert line == b"ready\n", f"{name} did not start: {proc.communicate(timeout=10)[0]}"
        yield Server(proc)
    finally:
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Server:
    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc

    def log(self) -> str:
        """Everything it printed; only once it has stopped."""
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=10)
        return out


class Resp:
    """A connection speaking RESP2 as redis-cli does."""

    def __init__(self, host: str, port: int = 6379) -> None:
        self.sock = socket.create_connection((host, port), timeout=10)
        self.buf = b""
        self.record: list[bytes] = []

    def close(self) -> None:
        self.sock.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, *argv: str | bytes) -> None:
        args = [a.encode() if isinstance(a, str) else a for a in argv]
        self.send_raw(
            b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
        )

    def __call__(self, *argv: str | bytes) -> object:
        self.send(*argv)
        return self.reply()

    def bulk(self, *argv: str | bytes) -> bytes:
        """A command whose reply must be a bulk string."""
        reply = self(*argv)
        assert isinstance(reply, bytes), reply
        return reply

    def integer(self, *argv: str | bytes) -> int:
        """A command whose reply must be an integer."""
        reply = self(*argv)
        assert isinstance(reply, int), reply
        return reply

    def keys(self, pattern: str) -> list[bytes]:
        """KEYS, sorted."""
        reply = self("KEYS", pattern)
        assert isinstance(reply, list), reply
        return sorted(reply)

    def raw(self, *argv: str | bytes) -> bytes:
        """One reply's bytes exactly as the server sent them."""
        self.send(*argv)
        self.record = []
        self.reply()
        return b"".join(self.record)

    def _take(self, n: int) -> bytes:
        out, self.buf = self.buf[:n], self.buf[n:]
        self.record.append(out)
        return out

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError(f"closed; had {self.buf!r}")
        self.buf += data

    def reply(self) -> object:
        """The next reply: str for +, RespError for -, int, bytes or None, list."""
        while b"\r\n" not in self.buf:
            self._fill()
        line = self._take(self.buf.index(b"\r\n") + 2)[:-2]
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RespError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            return self._take(n + 2)[:-2]
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise AssertionError(f"not RESP: {line!r}")

    def closed_by_peer(self, timeout: float = 5) -> bool:
        """Whether the server closes the connection (EOF) within `timeout`."""
        self.sock.settimeout(timeout)
        try:
            while self.sock.recv(65536):
                pass
        except TimeoutError:
            return False
        except OSError:
            pass
        return True


class RespError(str):
    """An error reply's text (without the '-')."""


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    """Polls `condition` until it holds, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
