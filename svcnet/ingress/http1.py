"""HTTP/1.1 message heads and body framing, for a proxy that streams what it does not parse.

Only heads are parsed; bodies are passed through as they arrive and merely
*framed* (Content-Length counted, chunked encoding followed to its last chunk
and trailers), which is what keep-alive needs to find where the next message
starts. Every size is bounded and every ambiguity that enables request
smuggling (Content-Length with Transfer-Encoding, differing Content-Lengths,
an encoding other than chunked, obs-fold, whitespace before a colon) is a 400,
as nginx answers it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_REQUEST_LINE = 8192
"""nginx's large_client_header_buffers size (8k): a longer request line is a 414."""
MAX_HEAD = 4 * 8192
"""Four such buffers for the whole head: more is "Request Header Or Cookie Too Large"."""
MAX_HEADERS = 256
MAX_RESPONSE_HEAD = 32768
"""A backend's response head larger than this is a 502 ("upstream sent too big header")."""
MAX_CHUNK_LINE = 4096
_HEX = b"0123456789abcdefABCDEF"

_TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_VERSION = re.compile(rb"^HTTP/1\.[01]$")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"upgrade",
        b"transfer-encoding",
        b"content-length",
    }
)
"""Headers the proxy rewrites itself (framing ones are re-added as validated)."""


class HttpError(Exception):
    """A request the proxy answers itself with `status`, closing the connection."""

    def __init__(self, status: int, why: str = "") -> None:
        super().__init__(why or str(status))
        self.status = status


Headers = list[tuple[bytes, bytes]]


def _headers(lines: list[bytes], error: int) -> Headers:
    if len(lines) > MAX_HEADERS:
        raise HttpError(error, "too many header fields")
    out: Headers = []
    for line in lines:
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.match(name):
            # Also a leading space (obs-fold) or a space before the colon.
            raise HttpError(error, f"bad header line {line[:40]!r}")
        value = value.strip(b" \t")
        if _BAD_VALUE.search(value):
            raise HttpError(error, "control character in a header value")
        out.append((name, value))
    return out


def get(headers: Headers, name: bytes) -> list[bytes]:
    return [v for k, v in headers if k.lower() == name]


def tokens(headers: Headers, name: bytes) -> set[bytes]:
    """The comma-separated tokens of a header (Connection, Upgrade...), lower-cased."""
    return {t.strip().lower() for v in get(headers, name) for t in v.split(b",") if t.strip()}


@dataclass
class Framing:
    """How a body is delimited: a length, chunked, or (responses only) the end of the
    connection; ``length == 0`` and not chunked means no body."""

    length: int = 0
    chunked: bool = False
    until_close: bool = False


def framing(headers: Headers, error: int, response: bool) -> Framing:
    te = get(headers, b"transfer-encoding")
    cl = get(headers, b"content-length")
    if te:
        codings = [c.strip().lower() for v in te for c in v.split(b",")]
        if cl and not response:
            raise HttpError(error, "both Content-Length and Transfer-Encoding")
        if codings[-1] != b"chunked":
            if response:
                return Framing(until_close=True)
            raise HttpError(501 if error == 400 else error, "unsupported Transfer-Encoding")
        return Framing(chunked=True)
    if cl:
        values = {v.strip() for c in cl for v in c.split(b",")}
        if len(values) != 1:
            raise HttpError(error, "conflicting Content-Length")
        (value,) = values
        if not value.isdigit() or len(value) > 18:
            raise HttpError(error, "bad Content-Length")
        return Framing(length=int(value))
    return Framing(until_close=response)


@dataclass
class Request:
    method: bytes
    target: bytes
    version: bytes
    headers: Headers
    body: Framing
    keep_alive: bool
    upgrade: bytes
    """The Upgrade header's value when the client asks to switch protocols."""


def parse_request(head: bytes) -> Request:
    """A request head, without its final CRLFCRLF."""
    lines = head.split(b"\r\n")
    line = lines[0]
    if len(line) > MAX_REQUEST_LINE:
        raise HttpError(414)
    parts = line.split(b" ")
    if len(parts) != 3 or not _TOKEN.match(parts[0]) or not parts[1]:
        raise HttpError(400, "bad request line")
    method, target, version = parts
    if not version.startswith(b"HTTP/"):
        raise HttpError(400, "bad request line")
    if not _VERSION.match(version):
        raise HttpError(505)
    if any(c < 0x21 or c == 0x7F for c in target):
        raise HttpError(400, "bad request target")
    headers = _headers(lines[1:], 400)
    hosts = get(headers, b"host")
    if len(hosts) > 1 or (version == b"HTTP/1.1" and not hosts):
        raise HttpError(400, "missing or repeated Host")
    body = framing(headers, 400, response=False)
    conn = tokens(headers, b"connection")
    keep = b"close" not in conn if version == b"HTTP/1.1" else b"keep-alive" in conn
    upgrade = b""
    if b"upgrade" in conn and get(headers, b"upgrade") and version == b"HTTP/1.1":
        upgrade = get(headers, b"upgrade")[0]
    return Request(method.upper(), target, version, headers, body, keep, upgrade)


@dataclass
class Response:
    status: int
    version: bytes
    line: bytes
    headers: Headers
    body: Framing
    keep_alive: bool


def parse_response(head: bytes, method: bytes) -> Response:
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not _VERSION.match(parts[0]) or not parts[1].isdigit():
        raise HttpError(502, "upstream sent an invalid status line")
    status = int(parts[1])
    if not 100 <= status <= 999:
        raise HttpError(502, "upstream sent an invalid status")
    headers = _headers(lines[1:], 502)
    if method == b"HEAD" or status < 200 or status in (204, 304):
        body = Framing()
    else:
        body = framing(headers, 502, response=True)
    conn = tokens(headers, b"connection")
    keep = (b"close" not in conn) if parts[0] == b"HTTP/1.1" else (b"keep-alive" in conn)
    return Response(status, parts[0], lines[0], headers, body, keep and not body.until_close)


class BodyReader:
    """Follows a body through the bytes that carry it: `feed` says how many of them
    belong to it; `done` once it ended (trailers included)."""

    __slots__ = ("_line", "_state", "done", "left", "total")

    # States of a chunked body.
    _SIZE, _DATA, _DATA_CRLF, _TRAILER = range(4)

    def __init__(self, framing: Framing) -> None:
        self.left = framing.length
        self.total = 0
        self._state = self._SIZE if framing.chunked else -1
        self._line = b""
        self.done = not framing.chunked and not framing.until_close and framing.length == 0
        if framing.until_close:
            self.left = -1

    def feed(self, data: bytes | memoryview) -> int:
        """How many leading bytes of data are body; raises HttpError on a broken chunk."""
        if self.done:
            return 0
        n = len(data)
        if self._state < 0:
            if self.left < 0:  # until close
                self.total += n
                return n
            take = min(n, self.left)
            self.left -= take
            self.total += take
            if self.left == 0:
                self.done = True
            return take
        i = 0
        while i < n and not self.done:
            if self._state == self._DATA:
                take = min(n - i, self.left)
                i += take
                self.left -= take
                self.total += take
                if self.left == 0:
                    self._state = self._DATA_CRLF
                continue
            end = bytes(data[i : min(n, i + MAX_CHUNK_LINE)]).find(b"\n")
            if end < 0:
                self._line += bytes(data[i:])
                if len(self._line) > MAX_CHUNK_LINE:
                    raise HttpError(400, "chunk line too long")
                return n
            line = (self._line + bytes(data[i : i + end])).rstrip(b"\r")
            self._line = b""
            i += end + 1
            if self._state == self._SIZE:
                size = line.split(b";", 1)[0].strip()
                if (
                    not size
                    or len(size) > 15
                    or any(c not in b"0123456789abcdefABCDEF" for c in size)
                ):
                    raise HttpError(400, "bad chunk size")
                self.left = int(size, 16)
                self._state = self._DATA if self.left else self._TRAILER
            elif self._state == self._DATA_CRLF:
                if line:
                    raise HttpError(400, "chunk data not followed by CRLF")
                self._state = self._SIZE
            elif not line:  # the empty line after the trailers
                self.done = True
        return i


def head(first_line: bytes, headers: Headers) -> bytes:
    return b"\r\n".join([first_line, *(k + b": " + v for k, v in headers)]) + b"\r\n\r\n"
