"""Fixtures: a real ApiServer on 127.14.0.1 (this component's loopback range)
over a real Store and Registry, a fake NodeApi, and an aiohttp client."""

from __future__ import annotations

import asyncio
import errno
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from svcnet.api.server import ApiServer
from svcnet.config import Settings
from svcnet.credentials import Credentials
from svcnet.k8s.objects import Obj
from svcnet.nodeapi import ContainerUsage, NodeApiError, PodUsage, PortForwardError
from svcnet.registry import Registry
from svcnet.store import Store
from svcnet.testing import make_credentials

HOST = "127.14.0.1"


class FakeAttachment:
    def __init__(self, exit_code: int = 0) -> None:
        self.stdin: list[bytes] = []
        self.stdin_closed = asyncio.Event()
        self.sizes: list[tuple[int, int]] = []
        self.detached = asyncio.Event()
        self.out: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()
        self.exit_code = exit_code
        self.got_stdin = asyncio.Event()
        self.resized: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
        """Each resize, as it comes."""

    def write_stdin(self, data: bytes) -> None:
        self.stdin.append(data)
        self.got_stdin.set()

    def close_stdin(self) -> None:
        self.stdin_closed.set()

    def resize(self, width: int, height: int) -> None:
        self.sizes.append((width, height))
        self.resized.put_nowait((width, height))

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        while True:
            item = await self.out.get()
            if item is None:
                return
            yield item

    async def wait(self) -> int:
        return self.exit_code

    def detach(self) -> None:
        self.detached.set()


class FakeNode:
    """Stands in for the agent: logs from a dict, follow from a queue, attach to FakeAttachment."""

    def __init__(self) -> None:
        self.logs_by_container: dict[tuple[str, str, str], list[bytes]] = {}
        self.follow_queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.calls: list[Obj] = []
        self.attachments: list[FakeAttachment] = []
        self.started: asyncio.Queue[FakeAttachment] = asyncio.Queue()
        """Each attachment attach and exec hand out, as they do."""
        self.follow_closed = asyncio.Event()
        self.pod_usage: list[PodUsage] = []
        self.machine = ContainerUsage("svcnet", 250_000_000, 1 << 30)
        self.forwards: dict[int, int] = {}
        """pod port -> the port on 127.0.0.1 port_forward dials (any other: refused)."""

    def usage(self) -> list[PodUsage]:
        return list(self.pod_usage)

    def node_usage(self) -> ContainerUsage:
        return self.machine

    async def logs(
        self,
        namespace: str,
        pod: str,
        container: str,
        *,
        follow: bool = False,
        tail_lines: int | None = None,
        previous: bool = False,
        timestamps: bool = False,
        since_seconds: int | None = None,
    ) -> AsyncIterator[bytes]:
        self.calls.append(
            {
                "namespace": namespace,
                "pod": pod,
                "container": container,
                "follow": follow,
                "tail_lines": tail_lines,
                "previous": previous,
                "timestamps": timestamps,
                "since_seconds": since_seconds,
            }
        )
        key = (namespace, pod, container)
        if key not in self.logs_by_container:
            raise NodeApiError(
                f'container "{container}" in pod "{pod}" is waiting to start: ContainerCreating'
            )
        lines = self.logs_by_container[key]
        if tail_lines is not None:
            lines = lines[-tail_lines:] if tail_lines else []
        for line in lines:
            yield line
        if follow:
            try:
                while (chunk := await self.follow_queue.get()) is not None:
                    yield chunk
            finally:
                self.follow_closed.set()

    async def attach(
        self, namespace: str, pod: str, container: str, *, tty: bool
    ) -> FakeAttachment:
        if container == "broken":
            raise NodeApiError(f'container "{container}" in pod "{pod}" is not running')
        a = FakeAttachment()
        self.attachments.append(a)
        self.started.put_nowait(a)
        return a

    async def exec(
        self,
        namespace: str,
        pod: str,
        container: str,
        command: list[str],
        *,
        stdin: bool,
        tty: bool,
    ) -> FakeAttachment:
        """`exit N` exits with N; anything else is an attachment the test drives."""
        if command[:1] == ["missing"]:
            raise NodeApiError('exec: "missing": executable file not found in $PATH', 500)
        self.calls.append({"exec": command, "stdin": stdin, "tty": tty, "container": container})
        code = int(command[1]) if command[0] == "exit" else 0
        a = FakeAttachment(exit_code=code)
        self.attachments.append(a)
        self.started.put_nowait(a)
        return a

    async def port_forward(
        self, namespace: str, pod: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        self.calls.append({"port_forward": port, "namespace": namespace, "pod": pod})
        local = self.forwards.get(port)
        if local is None:
            raise PortForwardError(
                errno.ECONNREFUSED, f"dial tcp4 127.0.0.1:{port}: connect: connection refused"
            )
        return await asyncio.open_connection("127.0.0.1", local)


def make_pod(
    name: str,
    *,
    namespace: str = "default",
    labels: dict[str, str] | None = None,
    phase: str = "Running",
    ready: bool = True,
    containers: tuple[str, ...] = ("main",),
    ip: str = "127.244.0.5",
    annotations: dict[str, str] | None = None,
) -> Obj:
    md: Obj = {"name": name, "namespace": namespace, "labels": labels or {"app": name}}
    if annotations:
        md["annotations"] = annotations
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": md,
        "spec": {
            "containers": [{"name": c, "image": "gihyodocker/echo:latest"} for c in containers],
            "nodeName": "svcnet",
        },
        "status": {
            "phase": phase,
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [
                {
                    "name": c,
                    "ready": ready,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}},
                }
                for c in containers
            ],
        },
    }


def make_service(name: str, **spec: Any) -> Obj:
    body: Obj = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    body["spec"].update(spec)
    return body


@pytest.fixture
def store() -> Store:
    s = Store()
    for ns in ("default", "other"):
        s.create(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": ns},
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            }
        )
    return s


@pytest.fixture
def registry(store: Store) -> Registry:
    return Registry(Settings(), store)


@pytest.fixture
def node() -> FakeNode:
    return FakeNode()


@pytest.fixture
def creds(tmp_path: Path) -> Credentials:
    return make_credentials(tmp_path / "state", HOST)


@pytest.fixture
async def server(
    store: Store, registry: Registry, node: FakeNode, creds: Credentials
) -> AsyncIterator[ApiServer]:
    settings = Settings()
    settings.api.host = HOST
    settings.api.port = 0
    srv = ApiServer(settings, store, registry, node, creds)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


def session(server: ApiServer, *, token: bool = True) -> aiohttp.ClientSession:
    """A client of `server` that trusts its CA and, with `token`, sends its token."""
    creds = server.credentials
    return aiohttp.ClientSession(
        base_url=server.url,
        headers=creds.headers if token else {},
        connector=aiohttp.TCPConnector(ssl=creds.client_context()),
    )


@pytest.fixture
async def client(server: ApiServer) -> AsyncIterator[aiohttp.ClientSession]:
    async with session(server) as s:
        yield s
