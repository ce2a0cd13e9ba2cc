"""The relay: dial retries, half-close, flow control on big transfers, stop()."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import random
import socket
import struct
from collections import Counter
from collections.abc import AsyncIterator, Callable

import pytest

from svcnet.proxy import Proxier, ServicePortName
from svcnet.store import Store

from .servers import (
    NODE_PORT,
    DyingBackend,
    EchoProto,
    HttpBackend,
    Net,
    assert_free,
    closed_port,
    endpoints,
    http_get,
    service,
)

# pytest-timeout's default signal method cannot interrupt uvloop's C loop.
pytestmark = pytest.mark.timeout(120, method="thread")

KEY = ServicePortName("default", "echo", "http")


async def test_dead_endpoint_is_skipped(
    net: Net, store: Store, proxier: Proxier, backends: list[HttpBackend], hits: Counter[str]
) -> None:
    store.create(service(cluster_ip=net.cluster_ip))
    store.create(endpoints(ready=[closed_port(net.ip(109)), backends[0].addr]))

    assert [await http_get(net.cluster_ip, 80) for _ in range(6)] == ["a"] * 6
    st = proxier.stats()[KEY]
    assert st.failures == 0
    # Every other dial lands on the dead pod and moves on: 5 or 6 retries
    # depending on which of the two the shuffle put first.
    assert st.retries in (5, 6)


async def test_all_endpoints_dead_resets_the_client(
    net: Net, store: Store, proxier: Proxier, caplog: pytest.LogCaptureFixture
) -> None:
    store.create(service(cluster_ip=net.cluster_ip))
    store.create(endpoints(ready=[closed_port(net.ip(109))]))

    with caplog.at_level(logging.WARNING, logger="svcnet.proxy"):
        with pytest.raises(ConnectionResetError):
            await http_get(net.cluster_ip, 80)
    st = proxier.stats()[KEY]
    assert (st.failures, st.retries) == (1, 4)
    assert any("failed to connect to an endpoint" in r.getMessage() for r in caplog.records)


@pytest.fixture
async def one_shot(net: Net) -> AsyncIterator[tuple[tuple[str, int], asyncio.Queue[bytes]]]:
    """A backend that reads until EOF, then answers with what it got and closes."""
    got: asyncio.Queue[bytes] = asyncio.Queue()

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        data = await r.read()
        await got.put(data)
        w.write(b"got %d bytes" % len(data))
        await w.drain()
        w.close()

    server = await asyncio.start_server(handle, net.ip(101), 0)
    try:
        yield server.sockets[0].getsockname()[:2], got
    finally:
        server.close()


async def test_client_half_close(
    net: Net,
    store: Store,
    proxier: Proxier,
    one_shot: tuple[tuple[str, int], asyncio.Queue[bytes]],
) -> None:
    addr, got = one_shot
    store.create(service(cluster_ip=net.cluster_ip))
    store.create(endpoints(ready=[addr]))

    loop = asyncio.get_running_loop()
    with socket.socket() as s:
        s.setblocking(False)
        async with asyncio.timeout(10):
            await loop.sock_connect(s, (net.cluster_ip, 80))
            await loop.sock_sendall(s, b"x" * 100_000)
            s.shutdown(socket.SHUT_WR)
            reply = b""
            while chunk := await loop.sock_recv(s, 65536):
                reply += chunk
    assert reply == b"got 100000 bytes"
    assert got.get_nowait() == b"x" * 100_000


async def test_backend_half_close(net: Net, store: Store, proxier: Proxier) -> None:
    got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        # Say hello and stop sending; keep listening until the client is done.
        w.write(b"hello")
        w.write_eof()
        got.set_result(await r.read())
        w.close()

    server = await asyncio.start_server(handle, net.ip(101), 0)
    try:
        store.create(service(cluster_ip=net.cluster_ip))
        store.create(endpoints(ready=[server.sockets[0].getsockname()[:2]]))
        async with asyncio.timeout(10):
            r, w = await asyncio.open_connection(net.cluster_ip, 80)
            assert await r.read() == b"hello"  # EOF from the backend reached us
            w.write(b"still talking")
            w.write_eof()
            assert await got == b"still talking"
            assert await r.read() == b""
            w.close()
    finally:
        server.close()


class Pump(asyncio.Protocol):
    """Sends a payload as fast as the proxy takes it, reads the echo slowly.

    Reading stops for a moment after every few MiB, so without flow control
    the proxy would pile the difference up in its buffers. ``peak`` records
    the most the proxy held whenever we looked.
    """

    READ_BURST = 4 << 20
    CHUNK = 256 << 10

    def __init__(self, payload: bytes, proxier: Proxier) -> None:
        self.view = memoryview(payload)
        self.proxier = proxier
        self.sent = 0
        self.received = 0
        self.since_pause = 0
        self.digest = hashlib.sha256()
        self.paused = False
        self.peak = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        while not self.paused and self.sent < len(self.view):
            chunk = self.view[self.sent : self.sent + self.CHUNK]
            self.sent += len(chunk)
            self.transport.write(chunk)
            self.peak = max(self.peak, self.proxier.buffered())
        if self.sent == len(self.view) and not self.transport.is_closing():
            self.transport.write_eof()

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._send()

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.digest.update(data)
        self.received += len(data)
        self.since_pause += len(data)
        self.peak = max(self.peak, self.proxier.buffered())
        if self.since_pause >= self.READ_BURST:
            self.since_pause = 0
            self.transport.pause_reading()
            asyncio.get_running_loop().call_later(0.02, self._resume_reading)

    def _resume_reading(self) -> None:
        assert self.transport is not None
        self.peak = max(self.peak, self.proxier.buffered())
        self.transport.resume_reading()

    def eof_received(self) -> None:
        if not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(exc or ConnectionError("closed before the echo ended"))


async def test_large_transfer_both_ways_with_flow_control(
    net: Net, store: Store, proxier: Proxier
) -> None:
    loop = asyncio.get_running_loop()
    echo = await loop.create_server(EchoProto, net.ip(101), 0)
    try:
        store.create(service(type_="NodePort", cluster_ip=net.cluster_ip))
        store.create(endpoints(ready=[echo.sockets[0].getsockname()[:2]]))
        payload = random.Random(7).randbytes(50 << 20)

        transport, pump = await loop.create_connection(
            lambda: Pump(payload, proxier), net.node_addr, NODE_PORT
        )
        async with asyncio.timeout(90):
            await pump.done
        transport.close()
    finally:
        echo.close()

    assert pump.received == len(payload)
    assert pump.digest.digest() == hashlib.sha256(payload).digest()
    # Both directions were bulk, so both went by splice(2) after the first read.
    assert proxier.stats()[KEY].spliced == 2
    # About one high-water mark plus one read per leg and direction; without
    # flow control the proxy buffers tens of MiB here.
    assert pump.peak < 2 << 20, pump.peak


async def _wait_for(cond: Callable[[], bool]) -> None:
    """Yield to the loop until cond holds (the caller bounds the wait).

    The relay's counters and buffers raise no event when they change, so this
    re-checks a condition under the caller's deadline: no guess of a duration.
    """
    while not cond():  # noqa: ASYNC110
        await asyncio.sleep(0.001)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_spliced_download_ends_only_after_every_byte_and_keeps_half_close(
    net: Net, store: Store, proxier: Proxier
) -> None:
    """A download the client is slow to take: the endpoint's FIN waits behind the pipe."""
    payload = random.Random(11).randbytes(16 << 20)
    got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await r.readexactly(4)
        w.write(payload)
        w.write_eof()  # all of it is sent and the FIN follows, whatever the client does
        got.set_result(await r.read())
        w.close()

    server = await asyncio.start_server(handle, net.ip(101), 0)
    try:
        store.create(service(cluster_ip=net.cluster_ip))
        store.create(endpoints(ready=[server.sockets[0].getsockname()[:2]]))
        # +1: the endpoint socket the listener keeps in hand for its next client.
        fds = _open_fds() + 1
        loop = asyncio.get_running_loop()
        with socket.socket() as s:
            s.setblocking(False)
            async with asyncio.timeout(30):
                await loop.sock_connect(s, (net.cluster_ip, 80))
                await loop.sock_sendall(s, b"GET\n")
                # Not reading yet: the pipe fills and the proxy holds what we do not take.
                await _wait_for(
                    lambda: proxier.stats()[KEY].spliced == 1 and proxier.buffered() > 0
                )
                digest, size = hashlib.sha256(), 0
                while chunk := await loop.sock_recv(s, 1 << 20):
                    digest.update(chunk)
                    size += len(chunk)
                # The endpoint's FIN came through as a half-close: we can still talk.
                await loop.sock_sendall(s, b"thanks")
                s.shutdown(socket.SHUT_WR)
                assert await got == b"thanks"
                await _wait_for(lambda: proxier.stats()[KEY].active == 0)
                assert proxier.buffered() == 0
        async with asyncio.timeout(10):
            # The pipe's two descriptors went with the connection.
            await _wait_for(lambda: _open_fds() == fds)
    finally:
        server.close()
    assert size == len(payload)
    assert digest.digest() == hashlib.sha256(payload).digest()


async def test_client_reset_during_spliced_download_closes_both_sides(
    net: Net, store: Store, proxier: Proxier
) -> None:
    ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        block = b"x" * (1 << 20)
        try:
            while True:  # an endless download, until the proxy cuts it
                w.write(block)
                await w.drain()
        except ConnectionError:
            pass
        finally:
            w.close()
            ended.set_result(None)

    server = await asyncio.start_server(handle, net.ip(101), 0)
    try:
        store.create(service(cluster_ip=net.cluster_ip))
        store.create(endpoints(ready=[server.sockets[0].getsockname()[:2]]))
        # +1: the endpoint socket the listener keeps in hand for its next client.
        fds = _open_fds() + 1
        async with asyncio.timeout(30):
            r, w = await asyncio.open_connection(net.cluster_ip, 80)
            await r.readexactly(4 << 20)
            assert proxier.stats()[KEY].spliced == 1
            sock = w.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            w.transport.abort()
            await ended
            await _wait_for(lambda: proxier.stats()[KEY].active == 0)
            assert proxier.buffered() == 0
            w.close()
            await _wait_for(lambda: _open_fds() == fds)
    finally:
        server.close()


async def test_stop_closes_connections_and_frees_ports(
    net: Net, store: Store, proxier: Proxier, backends: list[HttpBackend]
) -> None:
    store.create(service(type_="LoadBalancer", ingress=[net.lb_ip], cluster_ip=net.cluster_ip))
    store.create(endpoints(ready=[backends[0].addr]))
    addrs = proxier.listeners()
    assert len(addrs) == 3

    async with asyncio.timeout(10):
        r, w = await asyncio.open_connection(net.cluster_ip, 80)
        w.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await r.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200 OK")
        assert await r.readexactly(1) == b"a"
        assert proxier.stats()[KEY].active == 1

        await proxier.stop()
        assert proxier.listeners() == []
        # The relayed connection is cut, not left dangling.
        try:
            assert await r.read() == b""
        except ConnectionResetError:
            pass
        w.close()
    for addr in addrs:
        assert_free(addr)
    # After stop, store changes are no longer followed.
    store.delete("Endpoints", "default", "echo")
    store.create(endpoints(ready=[backends[1].addr]))
    assert proxier.listeners() == []


# --- no replay ---------------------------------------------------------------------------


@pytest.mark.parametrize("reset", [False, True], ids=["fin", "rst"])
async def test_an_endpoint_that_dies_with_the_request_fails_it_and_nothing_is_replayed(
    net: Net,
    store: Store,
    proxier: Proxier,
    one_shot: tuple[tuple[str, int], asyncio.Queue[bytes]],
    reset: bool,
) -> None:
    """As on a cluster: a request in flight on a pod that dies fails; it never runs
    again on another pod (a POST may have had its effect)."""
    addr, got = one_shot
    dying = await DyingBackend(reset=reset).start(net.ip(108))
    failed = served = 0
    try:
        store.create(service(cluster_ip=net.cluster_ip))
        store.create(endpoints(ready=[dying.addr, addr]))
        for _ in range(4):
            r, w = await asyncio.open_connection(net.cluster_ip, 80)
            async with asyncio.timeout(10):
                w.write(b"POST /orders HTTP/1.0\r\nContent-Length: 0\r\n\r\n")
                w.write_eof()
                try:
                    answer = await r.read()
                except ConnectionResetError:
                    answer = b""
            w.close()
            if answer.startswith(b"got "):
                served += 1
            else:
                failed += 1
    finally:
        dying.close()
    # Round-robin over two endpoints: two requests each. Each ran exactly once.
    assert (dying.requests, failed) == (2, 2)
    assert (got.qsize(), served) == (2, 2)
    st = proxier.stats()[KEY]
    assert st.retries == 0


async def test_partial_answer_reaches_the_client_as_it_is(
    net: Net, store: Store, proxier: Proxier
) -> None:
    dying = await DyingBackend(reset=False, partial=b"HTTP/1.1 200 OK\r\n").start(net.ip(108))
    try:
        store.create(service(cluster_ip=net.cluster_ip))
        store.create(endpoints(ready=[dying.addr]))
        r, w = await asyncio.open_connection(net.cluster_ip, 80)
        async with asyncio.timeout(10):
            w.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert await r.read() == b"HTTP/1.1 200 OK\r\n"
        w.close()
    finally:
        dying.close()
    st = proxier.stats()[KEY]
    assert (dying.requests, st.retries) == (1, 0)


async def test_client_that_says_nothing_gets_the_endpoints_close(
    net: Net, store: Store, proxier: Proxier, backends: list[HttpBackend]
) -> None:
    store.create(service(cluster_ip=net.cluster_ip))
    store.create(endpoints(ready=[b.addr for b in backends]))
    r, w = await asyncio.open_connection(net.cluster_ip, 80)
    async with asyncio.timeout(10):
        w.write_eof()
        assert await r.read() == b""
    w.close()
    assert proxier.stats()[KEY].retries == 0
    assert sum(b.connections for b in backends) == 1


async def test_dial_that_hangs_times_out_and_moves_on(
    net: Net, store: Store, proxier: Proxier, backends: list[HttpBackend]
) -> None:
    # A listener whose accept queue is full drops SYNs: the dial stays in
    # progress until the first attempt's 250 ms timeout.
    with socket.socket() as full:
        full.bind((net.ip(107), 0))
        full.listen(0)
        with socket.create_connection(full.getsockname(), timeout=5) as filler:
            store.create(service(cluster_ip=net.cluster_ip))
            store.create(endpoints(ready=[full.getsockname()[:2], backends[0].addr]))
            assert [await http_get(net.cluster_ip, 80) for _ in range(2)] == ["a", "a"]
            filler.close()
    st = proxier.stats()[KEY]
    # Two, if the shuffle put the hanging endpoint first (each retry advances
    # the rotation past a, back to it); one otherwise.
    assert st.retries in (1, 2)
    assert st.failures == 0
