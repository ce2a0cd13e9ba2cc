"""Real backends and object builders for the proxy tests.

Backends are small asyncio Protocol servers on 127.12.x.x addresses and free
ports: an HTTP server that answers its own name (so tests can count which
endpoint served a connection), an echo server with flow control, and plain
sockets for ports that are known to be closed.

Each test gets its own 127.12.N.0/24 (``Net``), so that two runs of this suite
at once (another checkout, a CI job) do not answer each other's connections on
the fixed Service ports.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections import Counter
from dataclasses import dataclass
from typing import Any, cast

NODE_PORT = 30026

Addr = tuple[str, int]


@dataclass(frozen=True)
class Net:
    """The addresses of one test: 127.12.N.0/24."""

    octet: int

    def ip(self, last: int) -> str:
        return f"127.12.{self.octet}.{last}"

    @property
    def node_addr(self) -> str:
        return self.ip(1)

    @property
    def cluster_ip(self) -> str:
        return self.ip(10)

    @property
    def lb_ip(self) -> str:
        return self.ip(20)

    @classmethod
    def pick(cls) -> Net:
        """A random /24 whose Service addresses are free right now."""
        for _ in range(50):
            net = cls(random.randrange(2, 255))
            try:
                for addr in [(net.cluster_ip, 80), (net.node_addr, NODE_PORT), (net.lb_ip, 80)]:
                    assert_free(addr)
            except OSError:
                continue
            return net
        raise RuntimeError("no free 127.12.N.0/24 for the proxy tests")


class _HttpProto(asyncio.Protocol):
    def __init__(self, backend: HttpBackend) -> None:
        self.backend = backend
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, hence cast, not isinstance.
        self.transport = cast(asyncio.Transport, transport)
        self.backend.connections += 1

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buf += data
        while b"\r\n\r\n" in self.buf:
            head, _, self.buf = self.buf.partition(b"\r\n\r\n")
            self.backend.hits[self.backend.name] += 1
            body = self.backend.name.encode()
            close = b"connection: close" in head.lower()
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n%s\r\n%s"
                % (len(body), b"Connection: close\r\n" if close else b"", body)
            )
            if close:
                self.transport.close()
                return


class HttpBackend:
    """Answers every request with its name; counts requests and connections."""

    def __init__(self, name: str, hits: Counter[str]) -> None:
        self.name = name
        self.hits = hits
        self.connections = 0
        self.server: asyncio.Server | None = None
        self.addr: Addr = ("", 0)

    async def start(self, host: str) -> HttpBackend:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: _HttpProto(self), host, 0)
        self.addr = self.server.sockets[0].getsockname()[:2]
        return self

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


class EchoProto(asyncio.Protocol):
    """Echoes everything, pausing reads while its own write buffer is full."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, hence cast, not isinstance.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def eof_received(self) -> bool:
        # Nothing more to echo: returning False closes once the buffer is flushed.
        return False

    def pause_writing(self) -> None:
        assert self.transport is not None
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        assert self.transport is not None
        self.transport.resume_reading()


def closed_port(host: str) -> Addr:
    """An address nothing listens on: bound once to get a free port, then closed."""
    with socket.socket() as s:
        s.bind((host, 0))
        addr: Addr = s.getsockname()[:2]
    return addr


def service(
    name: str = "echo",
    *,
    cluster_ip: str,
    type_: str = "ClusterIP",
    ports: list[dict[str, Any]] | None = None,
    ingress: list[str] | None = None,
    namespace: str = "default",
) -> dict[str, Any]:
    if ports is None:
        ports = [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080}]
        if type_ in ("NodePort", "LoadBalancer"):
            ports[0]["nodePort"] = NODE_PORT
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "type": type_,
            "clusterIP": cluster_ip,
            "clusterIPs": [cluster_ip],
            "selector": {"app": name},
            "ports": ports,
        },
    }
    if ingress is not None:
        obj["status"] = {"loadBalancer": {"ingress": [{"ip": ip} for ip in ingress]}}
    return obj


def endpoints(
    name: str = "echo",
    ready: list[Addr] | tuple[Addr, ...] = (),
    not_ready: list[Addr] | tuple[Addr, ...] = (),
    *,
    port_name: str = "http",
    namespace: str = "default",
) -> dict[str, Any]:
    """Endpoints with one subset per address, since each backend has its own port."""
    subsets: list[dict[str, Any]] = []
    for i, (ip, port) in enumerate(ready):
        ref = {"kind": "Pod", "name": f"p{i}", "namespace": namespace}
        subsets.append(
            {
                "addresses": [{"ip": ip, "targetRef": ref}],
                "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
            }
        )
    for ip, port in not_ready:
        subsets.append(
            {
                "notReadyAddresses": [{"ip": ip}],
                "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
            }
        )
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": name, "namespace": namespace},
        "subsets": subsets,
    }


async def http_get(host: str, port: int) -> str:
    """One request on a fresh raw socket; returns the body."""
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setblocking(False)
        # A bound, not a wait: a proxy bug should fail here, not hang the run.
        async with asyncio.timeout(10):
            await loop.sock_connect(s, (host, port))
            await loop.sock_sendall(s, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := await loop.sock_recv(s, 65536):
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK"), data
    return body.decode()


async def curl(url: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        "curl",
        "-sS",
        "--noproxy",
        "*",
        "--max-time",
        "10",
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


def assert_free(addr: Addr) -> None:
    """Prove nothing listens on addr: connecting is refused and we can listen there."""
    with socket.socket() as c:
        assert c.connect_ex(addr) != 0
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(addr)
        s.listen(1)


class _DyingProto(asyncio.Protocol):
    def __init__(self, backend: DyingBackend) -> None:
        self.backend = backend
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buf += data
        if b"\r\n\r\n" not in self.buf:
            return
        self.backend.requests += 1
        if self.backend.partial:
            self.transport.write(self.backend.partial)
        if self.backend.reset:
            self.transport.abort()
        else:
            self.transport.close()


class DyingBackend:
    """A pod that dies with the request in flight: reads it, then closes (or resets).

    With ``partial``, it sends those bytes first, so it has answered something.
    """

    def __init__(self, reset: bool = False, partial: bytes = b"") -> None:
        self.reset = reset
        self.partial = partial
        self.requests = 0
        self.server: asyncio.Server | None = None
        self.addr: Addr = ("", 0)

    async def start(self, host: str) -> DyingBackend:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: _DyingProto(self), host, 0)
        self.addr = self.server.sockets[0].getsockname()[:2]
        return self

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


class _UdpEcho(asyncio.DatagramProtocol):
    def __init__(self, backend: UdpBackend) -> None:
        self.backend = backend
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        assert self.transport is not None
        self.backend.hits[self.backend.name] += 1
        self.transport.sendto(self.backend.name.encode() + b":" + data, addr)


class UdpBackend:
    """Answers each datagram with ``<name>:<datagram>``; counts datagrams."""

    def __init__(self, name: str, hits: Counter[str]) -> None:
        self.name = name
        self.hits = hits
        self.transport: asyncio.DatagramTransport | None = None
        self.addr: Addr = ("", 0)

    async def start(self, host: str, port: int = 0) -> UdpBackend:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpEcho(self), local_addr=(host, port)
        )
        self.transport = transport
        self.addr = transport.get_extra_info("sockname")[:2]
        return self

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def udp_ask(addr: Addr, payload: bytes, sock: socket.socket | None = None) -> bytes:
    """Send one datagram from a connected UDP socket and wait (bounded) for the answer."""
    loop = asyncio.get_running_loop()
    own = sock is None
    s = sock or socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setblocking(False)
        s.connect(addr)
        async with asyncio.timeout(5):
            await loop.sock_sendall(s, payload)
            return await loop.sock_recv(s, 65535)
    finally:
        if own:
            s.close()
