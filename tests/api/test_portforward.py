"""pods/portforward with real clients (kubectl over SPDY and over its WebSocket tunnel,
the Python client's v4 channels, svcnet's raw frames) against a FakeNode whose pod
ports are real TCP servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from svcnet.api import spdy
from svcnet.api.server import ApiServer
from svcnet.store import Store
from svcnet.testing import free_port
from tests.api.conftest import FakeNode, make_pod
from tests.kubectl.binaries import all_kubectls

POD = "/api/v1/namespaces/default/pods"


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Reads to EOF (the client's half-close), then answers and closes."""
    data = await reader.read()
    writer.write(b"got %d bytes: " % len(data) + data[:32])
    await writer.drain()
    writer.close()


@pytest.fixture
async def pod_port(node: FakeNode, store: Store) -> AsyncIterator[int]:
    """Pod "web" whose port 8080 is a real server (half-close, then answer)."""
    store.create(make_pod("web"))
    server = await asyncio.start_server(_answer, "127.0.0.1", 0)
    node.forwards[8080] = server.sockets[0].getsockname()[1]
    try:
        yield 8080
    finally:
        server.close()
        await server.wait_closed()


class PortForward:
    """A `kubectl port-forward` process, ended (and reaped) by stop()."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.out = b""
        self.err = b""

    async def wait_for(self, pattern: bytes, within: float = 30) -> None:
        assert self.proc.stdout is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while pattern not in self.out:
            left = deadline - loop.time()
            assert left > 0, f"{pattern!r} not printed: {self.out!r} {self.err!r}"
            chunk = await asyncio.wait_for(self.proc.stdout.read(4096), left)
            assert chunk, f"kubectl ended: {self.out!r} {await self.stderr()!r}"
            self.out += chunk

    async def stderr(self, until: bytes = b"", within: float = 30) -> bytes:
        assert self.proc.stderr is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while until not in self.err or not until:
            left = deadline - loop.time()
            if left <= 0:
                break
            try:
                chunk = await asyncio.wait_for(self.proc.stderr.read(4096), left)
            except TimeoutError:
                break
            if not chunk:
                break
            self.err += chunk
            if not until:
                break
        return self.err

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.terminate()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.proc.wait(), 10)
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


@contextlib.asynccontextmanager
async def port_forward(
    server: ApiServer, home: Path, exe: str, *args: str, websockets: bool = True
) -> AsyncIterator[PortForward]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "KUBECONFIG": "/dev/null",
        "KUBECTL_PORT_FORWARD_WEBSOCKETS": "true" if websockets else "false",
    }
    proc = await asyncio.create_subprocess_exec(
        exe,
        f"--server={server.url}",
        f"--token={server.credentials.token}",
        f"--certificate-authority={server.credentials.ca_path}",
        f"--cache-dir={home / 'cache'}",
        "port-forward",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    pf = PortForward(proc)
    try:
        yield pf
    finally:
        await pf.stop()


async def exchange(port: int, payload: bytes) -> bytes:
    """Send, half-close, read the answer to the end."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    await writer.drain()
    writer.write_eof()
    data = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    return data


@pytest.mark.parametrize("kubectl", [path for _, path in all_kubectls()], ids=lambda p: p)
@pytest.mark.parametrize("websockets", [False, True], ids=["spdy", "tunnel"])
async def test_kubectl_port_forward(
    server: ApiServer, pod_port: int, tmp_path: Path, kubectl: str, websockets: bool
) -> None:
    local = free_port()
    async with port_forward(
        server, tmp_path, kubectl, "pod/web", f"{local}:{pod_port}", websockets=websockets
    ) as pf:
        await pf.wait_for(f"Forwarding from 127.0.0.1:{local} -> {pod_port}".encode())
        assert await exchange(local, b"hello") == b"got 5 bytes: hello"
        await pf.wait_for(f"Handling connection for {local}".encode())

        # Many at once, one of them bigger than any buffer on the way.
        big = os.urandom(3 << 20)
        answers = await asyncio.gather(
            *(exchange(local, b"n%d" % i) for i in range(30)), exchange(local, big)
        )
        assert answers[:30] == [b"got %d bytes: n%d" % (len(b"n%d" % i), i) for i in range(30)]
        assert answers[30] == b"got %d bytes: " % len(big) + big[:32]

        # A client that goes away without sending anything.
        _, w = await asyncio.open_connection("127.0.0.1", local)
        w.close()
        assert await exchange(local, b"after") == b"got 5 bytes: after"
        assert pf.proc.returncode is None


async def test_nothing_listening_is_the_kubelets_error(
    server: ApiServer, store: Store, tmp_path: Path
) -> None:
    store.create(make_pod("web"))
    uid = store.get("Pod", "default", "web")["metadata"]["uid"]  # type: ignore[index]
    local = free_port()
    exe = all_kubectls()[0][1]
    async with port_forward(server, tmp_path, exe, "web", f"{local}:8080") as pf:
        await pf.wait_for(b"Forwarding from")
        reader, writer = await asyncio.open_connection("127.0.0.1", local)
        assert await asyncio.wait_for(reader.read(), 30) == b""
        writer.close()
        err = (await pf.stderr(until=b"connection refused")).decode()
    assert re.search(
        r"^E\d{4} .*an error occurred forwarding "
        rf"{local} -> 8080: error forwarding port 8080 to pod {uid}, uid : "
        r"dial tcp4 127\.0\.0\.1:8080: connect: connection refused",
        err,
        re.M,
    ), err


def test_dictionary_is_spdy3s() -> None:
    # zlib names a preset dictionary by its Adler-32; this is the SPDY/3 one's.
    import zlib

    assert len(spdy.DICTIONARY) == 1423
    assert zlib.adler32(spdy.DICTIONARY) == 0xE3C6A7C2


async def _echo_line(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"echo:" + await reader.readline())
    await writer.drain()
    writer.close()


async def test_python_client_channels(
    server: ApiServer, store: Store, node: FakeNode, tmp_path: Path
) -> None:
    import kubernetes
    from kubernetes.stream import portforward

    store.create(make_pod("web"))
    pod_server = await asyncio.start_server(_echo_line, "127.0.0.1", 0)
    node.forwards[8081] = pod_server.sockets[0].getsockname()[1]
    cfg = kubernetes.client.Configuration()
    cfg.host = server.url
    cfg.api_key = {"authorization": f"Bearer {server.credentials.token}"}
    cfg.ssl_ca_cert = str(server.credentials.ca_path)
    api = kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(cfg))

    def run() -> tuple[bytes, str | None, str | None]:
        pf = portforward(
            api.connect_get_namespaced_pod_portforward, "web", "default", ports="8081,9090"
        )
        sock = pf.socket(8081)
        sock.setblocking(True)
        sock.sendall(b"ping\n")
        got = b""
        while chunk := sock.recv(4096):
            got += chunk
        sock.close()
        pf.close()
        return got, pf.error(8081), pf.error(9090)

    try:
        got, err8081, err9090 = await asyncio.get_running_loop().run_in_executor(None, run)
    finally:
        pod_server.close()
    assert got == b"echo:ping\n"
    assert err8081 is None
    uid = store.get("Pod", "default", "web")["metadata"]["uid"]  # type: ignore[index]
    assert err9090 == (
        f"error forwarding port 9090 to pod {uid}, uid : "
        "dial tcp4 127.0.0.1:9090: connect: connection refused"
    )


async def test_refusals(server: ApiServer, pod_port: int, client: aiohttp.ClientSession) -> None:
    async with client.post(f"{POD}/web/portforward") as r:
        assert r.status == 400
        assert (await r.json())["message"] == "Upgrade request required"
    async with client.post(
        f"{POD}/web/portforward",
        headers={
            "Connection": "Upgrade",
            "Upgrade": "SPDY/3.1",
            "X-Stream-Protocol-Version": "v4.channel.k8s.io",
        },
    ) as r:
        # The kubelet's refusal (apimachinery's Handshake), passed on as plain text.
        assert r.status == 403
        assert await r.text() == (
            "unable to upgrade: unable to negotiate protocol: client supports "
            "[v4.channel.k8s.io], server accepts [portforward.k8s.io]\n"
        )
        assert r.headers.getall("X-Accepted-Stream-Protocol-Versions") == ["portforward.k8s.io"]
    async with client.post(f"{POD}/nope/portforward") as r:
        assert r.status == 404
    for query, message in [
        ("", "at least one port must be specified"),
        ("?ports=http", 'unable to parse "http" as a port'),
        ("?ports=0", "port 0 must be in the range 1-65535"),
    ]:
        with pytest.raises(aiohttp.WSServerHandshakeError) as e:
            await client.ws_connect(f"{POD}/web/portforward{query}")
        assert e.value.status == 400, (query, message)


def test_frames_round_trip() -> None:
    codec, peer = spdy.HeaderCodec(), spdy.HeaderCodec()
    for n in range(3):
        block = codec.encode([("streamType", "data"), ("port", str(8080 + n))])
        assert peer.decode(block) == {"streamtype": "data", "port": str(8080 + n)}
    assert spdy.data_frame(5, spdy.FLAG_FIN, b"x") == struct.pack(">II", 5, (1 << 24) | 1) + b"x"
