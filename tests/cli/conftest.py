"""Fixtures for the CLI tests: API servers on 127.15.0.x (this component's
loopback range) and the real `svcnet` executable run as a subprocess.

The servers live in the test's event loop, so the CLI must run without
blocking it: ``cli()`` uses asyncio's subprocess support.

``FakeApi`` answers only what a test registers and records every request,
so tests can check what the CLI sent as well as what it printed. ``real_api``
is the project's own ApiServer over a real Store and Registry.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from svcnet.api.server import ApiServer
from svcnet.config import Settings
from svcnet.k8s.objects import Obj
from svcnet.registry import Registry
from svcnet.store import Store
from svcnet.testing import make_credentials

FAKE_HOST = "127.15.0.1"
REAL_HOST = "127.15.0.2"
SVCNET = str(Path(sys.executable).parent / "svcnet")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeApi:
    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    routes: dict[tuple[str, str], Handler] = field(default_factory=dict)

    def on(self, method: str, path: str, handler: Handler) -> None:
        self.routes[(method, path)] = handler

    def reply(self, method: str, path: str, status: int, body: Any) -> None:
        async def handler(request: web.Request) -> web.StreamResponse:
            return web.json_response(body, status=status)

        self.on(method, path, handler)

    def sent(self, method: str | None = None, path: str | None = None) -> list[Recorded]:
        return [
            r
            for r in self.requests
            if (method is None or r.method == method) and (path is None or r.path == path)
        ]

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode()
        self.requests.append(
            Recorded(request.method, request.path, dict(request.query), dict(request.headers), body)
        )
        handler = self.routes.get((request.method, request.path))
        if handler is None:
            return web.json_response(
                status(404, "NotFound", "the server could not find it"), status=404
            )
        return await handler(request)


def status(code: int, reason: str, message: str, **details: Any) -> Obj:
    out: Obj = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        out["details"] = details
    return out


@pytest.fixture
async def fake_api() -> AsyncIterator[FakeApi]:
    api = FakeApi()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", api.dispatch)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, FAKE_HOST, 0)
    await site.start()
    port = runner.addresses[0][1]
    api.url = f"http://{FAKE_HOST}:{port}"
    yield api
    await runner.cleanup()


@pytest.fixture
async def real_api(tmp_path: Path) -> AsyncIterator[ApiServer]:
    store = Store()
    store.create(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "default"},
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        }
    )
    settings = Settings()
    settings.api.host = REAL_HOST
    settings.api.port = 0
    server = ApiServer(
        settings,
        store,
        Registry(settings, store),
        None,
        make_credentials(tmp_path / "state", REAL_HOST),
    )
    await server.start()
    yield server
    await server.stop()


@dataclass
class Result:
    rc: int
    out: str
    err: str


async def cli(
    *args: str, server: str | ApiServer, stdin: bytes = b"", cwd: Path | None = None
) -> Result:
    """Run the installed `svcnet` executable against server; never blocks the loop.
    Against an ApiServer, with its credentials, as its owner would run it."""
    env = {k: v for k, v in os.environ.items() if k not in ("SVCNET_SERVER", "SVCNET_TOKEN")}
    if isinstance(server, ApiServer):
        env["SVCNET_TOKEN"] = server.credentials.token
        env["SVCNET_CA"] = str(server.credentials.ca_path)
        server = server.url
    # --server goes to the command's own parser: after `rollout status`, `set image`.
    head = 2 if args[0] in ("rollout", "set") else 1
    proc = await asyncio.create_subprocess_exec(
        SVCNET,
        *args[:head],
        "--server",
        server,
        *args[head:],
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=cwd,
    )
    # A hung CLI fails the test instead of hanging it (pytest-timeout is the backstop).
    try:
        async with asyncio.timeout(30):
            out, err = await proc.communicate(stdin)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())
