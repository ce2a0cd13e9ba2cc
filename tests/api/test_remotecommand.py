"""pods/exec and pods/attach over SPDY/3.1 (the kubelet's remotecommand protocols v1
to v4) with a raw SPDY client, against a FakeNode whose sessions the tests drive."""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit

import pytest

from svcnet.api import remotecommand, spdy
from svcnet.api.server import ApiServer
from svcnet.store import Store
from tests.api.conftest import FakeAttachment, FakeNode, make_pod

POD = "/api/v1/namespaces/default/pods"
ALL = "v5.channel.k8s.io, v4.channel.k8s.io, v3.channel.k8s.io, v2.channel.k8s.io, channel.k8s.io"


class SpdyClient:
    """client-go's side of an upgraded connection: streams opened by type, what the
    server sends on each gathered, FIN, RST_STREAM and GOAWAY noted."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.codec = spdy.HeaderCodec()
        self.next_id = 1
        self.data: dict[int, bytes] = {}
        self.fin: set[int] = set()
        self.replied: set[int] = set()
        self.reset: set[int] = set()
        self.goaway = False
        self.eof = False

    def open(self, stream_type: str) -> int:
        sid, self.next_id = self.next_id, self.next_id + 2
        block = self.codec.encode([("streamType", stream_type)])
        payload = struct.pack(">II", sid, 0) + b"\0\0" + block
        self.writer.write(spdy.control_frame(spdy.SYN_STREAM, 0, payload))
        self.data[sid] = b""
        return sid

    def send(self, sid: int, data: bytes, *, fin: bool = False) -> None:
        self.writer.write(spdy.data_frame(sid, spdy.FLAG_FIN if fin else 0, data))

    async def _frame(self) -> None:
        try:
            head = await self.reader.readexactly(8)
        except (asyncio.IncompleteReadError, ConnectionError):
            self.eof = True
            return
        word, length = struct.unpack(">II", head)
        flags, length = length >> 24, length & 0xFFFFFF
        payload = await self.reader.readexactly(length)
        if word & 0x80000000:
            kind = word & 0xFFFF
            sid = struct.unpack_from(">I", payload, 0)[0] & 0x7FFFFFFF if payload else 0
            if kind == spdy.SYN_REPLY:
                self.codec.decode(payload[4:])
                self.replied.add(sid)
            elif kind == spdy.RST_STREAM:
                self.reset.add(sid)
            elif kind == spdy.GOAWAY:
                self.goaway = True
        else:
            self.data[word] = self.data.get(word, b"") + payload
            if flags & spdy.FLAG_FIN:
                self.fin.add(word)

    async def until(self, done: Callable[[], bool], within: float = 5) -> None:
        async with asyncio.timeout(within):
            while not done():
                assert not self.eof, "the server closed the connection"
                await self._frame()

    async def closed_by_server(self, within: float = 5) -> None:
        async with asyncio.timeout(within):
            while not self.eof:
                await self._frame()


async def upgrade(
    server: ApiServer, path: str, protocols: str | None = ALL, method: str = "POST"
) -> tuple[int, dict[str, str], bytes, SpdyClient]:
    """The upgrade request as client-go sends it: (status, headers, body, client)."""
    url = urlsplit(server.url)
    reader, writer = await asyncio.open_connection(
        url.hostname, url.port, ssl=server.credentials.client_context()
    )
    head = [
        f"{method} {path} HTTP/1.1",
        f"Host: {url.netloc}",
        f"Authorization: Bearer {server.credentials.token}",
        "Connection: Upgrade",
        "Upgrade: SPDY/3.1",
        "Content-Length: 0",
    ]
    if protocols is not None:
        head += [f"X-Stream-Protocol-Version: {p.strip()}" for p in protocols.split(",")]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
    raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    lines = raw.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
    body = b""
    if status != 101:
        n = int(headers.get("content-length", "0"))
        body = await asyncio.wait_for(reader.readexactly(n), 5)
        writer.close()
    return status, headers, body, SpdyClient(reader, writer)


@contextlib.asynccontextmanager
async def connected(
    server: ApiServer, path: str, protocols: str = ALL
) -> AsyncIterator[tuple[str, SpdyClient]]:
    status, headers, body, c = await upgrade(server, path, protocols)
    assert status == 101, body
    assert headers["upgrade"] == "SPDY/3.1"
    try:
        yield headers["x-stream-protocol-version"], c
    finally:
        c.writer.close()


async def attachment(node: FakeNode) -> FakeAttachment:
    """The next session the node hands out."""
    return await asyncio.wait_for(node.started.get(), 5)


async def test_exec_v4_streams_stdin_and_exit_code(
    server: ApiServer, store: Store, node: FakeNode
) -> None:
    store.create(make_pod("p"))
    path = f"{POD}/p/exec?command=exit&command=3&container=main&stdin=true&stdout=true&stderr=true"
    async with connected(server, path) as (protocol, c):
        # kubectl offers v5 first; a 1.32 kubelet has none over SPDY.
        assert protocol == "v4.channel.k8s.io"
        error, stdin, stdout = c.open("error"), c.open("stdin"), c.open("stdout")
        await c.until(lambda: {error, stdin, stdout} <= c.replied)
        assert node.calls == []  # the command starts once every stream is there
        stderr = c.open("stderr")
        att = await attachment(node)
        assert node.calls == [
            {"exec": ["exit", "3"], "stdin": True, "tty": False, "container": "main"}
        ]
        c.send(stdin, b"da")
        c.send(stdin, b"ta", fin=True)
        await asyncio.wait_for(att.stdin_closed.wait(), 5)
        assert b"".join(att.stdin) == b"data"
        for item in ((1, b"out"), (2, b"err"), None):
            await att.out.put(item)
        await c.until(lambda: {stdout, stderr, error, stdin} <= c.fin and c.goaway)
        assert c.data[stdout] == b"out" and c.data[stderr] == b"err"
        assert c.data[error] == remotecommand.status_json(remotecommand.exit_status(3))
        assert json.loads(c.data[error])["details"] == {
            "causes": [{"reason": "ExitCode", "message": "3"}]
        }
    await asyncio.wait_for(att.detached.wait(), 5)


@pytest.mark.parametrize(
    ("offered", "chosen", "error"),
    [
        ("v2.channel.k8s.io", "v2.channel.k8s.io", b"command terminated with non-zero exit code"),
        ("v3.channel.k8s.io, v2.channel.k8s.io", "v3.channel.k8s.io", b"command terminated"),
        # v1 kubelets reset the error stream once the streams are there.
        ("channel.k8s.io", "channel.k8s.io", None),
    ],
)
async def test_older_protocols(
    server: ApiServer, store: Store, node: FakeNode, offered: str, chosen: str, error: bytes | None
) -> None:
    store.create(make_pod("p"))
    path = f"{POD}/p/exec?command=exit&command=3&stdout=true"
    async with connected(server, path, offered) as (protocol, c):
        assert protocol == chosen
        err, out = c.open("error"), c.open("stdout")
        att = await attachment(node)
        await att.out.put((1, b"hi"))
        await att.out.put(None)
        await c.until(lambda: out in c.fin and (err in c.fin or err in c.reset) and c.goaway)
        assert c.data[out] == b"hi"
        if error is None:
            assert err in c.reset and c.data[err] == b""
        else:
            assert c.data[err].startswith(error)  # text, not a Status


async def test_negotiation_refused(server: ApiServer, store: Store, node: FakeNode) -> None:
    store.create(make_pod("p"))
    path = f"{POD}/p/exec?command=ls&stdout=true"
    status, _, body, _ = await upgrade(server, path, "v5.channel.k8s.io, v9.channel.k8s.io")
    assert status == 403
    assert body.decode() == (
        "unable to upgrade: unable to negotiate protocol: client supports "
        "[v5.channel.k8s.io v9.channel.k8s.io], server accepts "
        "[v4.channel.k8s.io v3.channel.k8s.io v2.channel.k8s.io channel.k8s.io]\n"
    )
    status, _, body, _ = await upgrade(server, path, None)
    assert (status, body) == (400, b"unable to upgrade: X-Stream-Protocol-Version is required")
    assert node.calls == []


async def test_tty_resizes_and_no_stderr(server: ApiServer, store: Store, node: FakeNode) -> None:
    store.create(make_pod("p"))
    path = f"{POD}/p/exec?command=sh&stdin=true&stdout=true&stderr=true&tty=true"
    async with connected(server, path, "v3.channel.k8s.io") as (_, c):
        # A terminal has no stderr stream; v3 adds the resize stream.
        error, stdin, stdout, resize = (c.open(t) for t in ("error", "stdin", "stdout", "resize"))
        att = await attachment(node)
        assert node.calls[-1]["tty"] is True
        for part in (b'{"Width":100,', b'"Height":30}\n{"Width":1', b'20,"height":40}\n'):
            c.send(resize, part)
        c.send(stdin, b"x")
        await asyncio.wait_for(att.got_stdin.wait(), 5)
        sizes = [await asyncio.wait_for(att.resized.get(), 5) for _ in range(2)]
        assert sizes == [(100, 30), (120, 40)]
        c.send(resize, b'{"Width":"wide"}\n{"Width":1,"Height":1}\n')
        for item in ((2, b"hidden"), (1, b"$ "), None):
            await att.out.put(item)
        await c.until(lambda: {error, stdout} <= c.fin and c.goaway)
        assert c.data[stdout] == b"$ "
        assert c.data[error] == b""  # v3: success is an empty error stream
        assert att.sizes == [(100, 30), (120, 40)]  # resizing stops at a malformed one


async def test_errors_before_and_after_the_upgrade(
    server: ApiServer, store: Store, node: FakeNode
) -> None:
    store.create(make_pod("p"))
    store.create(make_pod("done", phase="Succeeded"))
    for path, code, message in [
        (f"{POD}/gone/exec?command=ls&stdout=true", 404, 'pods "gone" not found'),
        (f"{POD}/p/exec?command=ls&container=x&stdout=true", 400, "container x is not valid"),
        (f"{POD}/p/exec?stdout=true", 400, "you must specify at least one command"),
        (f"{POD}/p/exec?command=ls", 400, "you must specify at least 1 of stdin, stdout, stderr"),
        (f"{POD}/done/exec?command=ls&stdout=true", 400, "cannot exec into a container"),
        (f"{POD}/p/attach?container=x&stdout=true", 400, "container x is not valid"),
    ]:
        status, _, body, _ = await upgrade(server, path)
        assert status == code, (path, body)
        assert message in json.loads(body)["message"], (path, body)
    # A command that cannot start: after the upgrade, on the error stream.
    async with connected(server, f"{POD}/p/exec?command=missing&stdout=true") as (_, c):
        error, _ = c.open("error"), c.open("stdout")
        await c.until(lambda: error in c.fin and c.goaway)
        status = json.loads(c.data[error])
        assert status["status"] == "Failure" and status["code"] == 500
        assert 'exec: "missing": executable file not found' in status["message"]


async def test_attach_ends_with_success_and_client_leaving_detaches(
    server: ApiServer, store: Store, node: FakeNode
) -> None:
    store.create(make_pod("p"))
    async with connected(server, f"{POD}/p/attach?stdin=true&stdout=true") as (_, c):
        error, _stdin, stdout = c.open("error"), c.open("stdin"), c.open("stdout")
        unknown = c.open("bogus")  # the kubelet ignores it; it must not hold the others
        await c.until(lambda: unknown in c.reset)
        att = await attachment(node)
        await att.out.put((1, b"log line\n"))
        await att.out.put(None)
        await c.until(lambda: {error, stdout} <= c.fin)
        assert json.loads(c.data[error]) == remotecommand.SUCCESS
        assert c.data[stdout] == b"log line\n"
    await asyncio.wait_for(att.detached.wait(), 5)

    # The client goes away in the middle: the session is detached.
    async with connected(server, f"{POD}/p/attach?stdout=true&stderr=true") as (_, c):
        c.open("error"), c.open("stdout"), c.open("stderr")
        att = await attachment(node)
    await asyncio.wait_for(att.detached.wait(), 5)


async def test_streams_never_created(
    server: ApiServer, store: Store, node: FakeNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(remotecommand, "STREAM_TIMEOUT", 0.2)
    store.create(make_pod("p"))
    async with connected(server, f"{POD}/p/exec?command=ls&stdout=true&stdin=true") as (_, c):
        c.open("error")
        await c.closed_by_server()
        assert c.goaway
    assert node.calls == []


async def test_get_is_served_too(server: ApiServer, store: Store, node: FakeNode) -> None:
    store.create(make_pod("p"))
    status, _, _, c = await upgrade(
        server, f"{POD}/p/exec?command=exit&command=0&stdout=true", method="GET"
    )
    assert status == 101
    try:
        error, stdout = c.open("error"), c.open("stdout")
        att = await attachment(node)
        await att.out.put(None)
        await c.until(lambda: {error, stdout} <= c.fin)
        assert json.loads(c.data[error]) == remotecommand.SUCCESS
    finally:
        c.writer.close()
