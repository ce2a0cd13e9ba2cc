"""Who may use the API: its owner's token on every request but health and version, no
cross-site or rebound request, no body the API server would not decode, and bounds
on what a client can make the server hold."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import time

import aiohttp
import pytest

from svcnet.api import server as server_module
from svcnet.api.request import MAX_BODY
from svcnet.api.server import ApiServer
from svcnet.store import Store
from tests.api.conftest import HOST, session

PODS = "/api/v1/namespaces/default/pods"
UNAUTHORIZED = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Failure",
    "message": "Unauthorized",
    "reason": "Unauthorized",
    "code": 401,
}


def pod_body(name: str = "p") -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "x"}]},
    }


async def test_every_request_needs_the_token_but_health_and_version(server: ApiServer) -> None:
    async with session(server, token=False) as anon:
        for path in (PODS, "/api", "/apis", "/api/v1", "/metrics", "/openapi/v3"):
            async with anon.get(path) as r:
                assert r.status == 401, path
                assert await r.json() == UNAUTHORIZED
        async with anon.post(PODS, json=pod_body()) as r:
            assert r.status == 401
        for path in ("/healthz", "/livez", "/readyz", "/version", "/version/"):
            async with anon.get(path) as r:
                assert r.status == 200, path
        async with anon.get(PODS, headers={"Authorization": "Bearer not-the-token"}) as r:
            assert r.status == 401
    async with session(server) as owner, owner.get(PODS) as r:
        assert r.status == 200


async def test_plain_http_is_not_served(server: ApiServer) -> None:
    async with aiohttp.ClientSession() as plain:
        with pytest.raises(aiohttp.ClientError):
            async with plain.get(f"http://{HOST}:{server.port}/version"):
                pass


async def test_foreign_host_and_origin_are_refused(client: aiohttp.ClientSession) -> None:
    async with client.get(PODS, headers={"Host": "evil.example"}) as r:
        assert r.status == 403
        assert (await r.json())["message"] == 'host "evil.example" is not a name of this API server'
    async with client.get(f"{PODS}", headers={"Host": "localhost"}) as r:
        assert r.status == 200
    async with client.get(PODS, headers={"Origin": "http://evil.example"}) as r:
        assert r.status == 403
        assert "Access-Control-Allow-Origin" not in r.headers
    async with client.options(PODS, headers={"Origin": "http://evil.example"}) as r:
        assert r.status == 403 and "Access-Control-Allow-Origin" not in r.headers


@pytest.mark.parametrize(
    "ctype", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
async def test_bodies_a_browser_can_send_cross_site_are_never_parsed(
    client: aiohttp.ClientSession, store: Store, ctype: str
) -> None:
    body = json.dumps(pod_body("from-a-form"))
    async with client.post(PODS, data=body, headers={"Content-Type": ctype}) as r:
        assert r.status == 415
        assert (await r.json())["reason"] == "UnsupportedMediaType"
    assert store.get("Pod", "default", "from-a-form") is None


async def test_a_body_without_content_type_is_json(client: aiohttp.ClientSession) -> None:
    """What kube-apiserver assumes, and what the Python client sends."""
    body = json.dumps(pod_body("plain"))
    async with client.post(PODS, data=body, skip_auto_headers=["Content-Type"]) as r:
        assert r.status == 201, await r.text()


async def test_bodies_over_etcds_limit_get_413(client: aiohttp.ClientSession) -> None:
    big = pod_body("big")
    big["metadata"] = {"name": "big", "annotations": {"a": "x" * MAX_BODY}}
    async with client.post(PODS, json=big) as r:
        assert r.status == 413
        assert (await r.json())["message"] == f"Request entity too large: limit is {MAX_BODY}"


async def test_deep_bodies_and_alias_bombs_get_400_and_the_server_keeps_serving(
    client: aiohttp.ClientSession,
) -> None:
    deep = "[" * 10_000 + "]" * 10_000
    async with client.post(PODS, data=deep, headers={"Content-Type": "application/json"}) as r:
        assert r.status == 400
        assert "exceeded max depth" in (await r.json())["message"]
    bomb = (
        "a0: &a0 ["
        + ", ".join(['"lol"'] * 9)
        + "]\n"
        + "".join(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 10))
    )
    t0 = time.monotonic()
    async with client.patch(
        f"{PODS}/bomb?fieldManager=x",
        data=bomb,
        headers={"Content-Type": "application/apply-patch+yaml"},
    ) as r:
        assert r.status == 400
        assert (await r.json())["message"].endswith("yaml: document contains excessive aliasing")
    assert time.monotonic() - t0 < 1.0
    async with client.get(PODS) as r:
        assert r.status == 200


def _tls_socket(server: ApiServer) -> ssl.SSLSocket:
    ctx = server.credentials.client_context()
    raw = socket.create_connection((HOST, server.port), timeout=10)
    return ctx.wrap_socket(raw, server_hostname=HOST)


async def test_half_sent_requests_are_closed_and_do_not_stop_others(
    server: ApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_module, "HEADER_TIMEOUT", 0.5)
    loop = asyncio.get_running_loop()
    idle = await asyncio.gather(
        *(loop.run_in_executor(None, _tls_socket, server) for _ in range(200))
    )
    try:
        for s in idle:
            s.sendall(b"GET /api/v1/pods HTTP/1.1\r\nHost: 127.14.0.1\r\n")  # no end of head
        async with session(server) as c, c.get(PODS) as r:
            assert r.status == 200  # served while 200 connections dangle

        def closed(s: ssl.SSLSocket) -> bool:
            s.settimeout(5)
            try:
                return s.recv(1) == b""
            except (ConnectionResetError, ssl.SSLError):
                return True

        t0 = time.monotonic()
        results = await asyncio.gather(*(loop.run_in_executor(None, closed, s) for s in idle[:20]))
        assert all(results) and time.monotonic() - t0 < 5
    finally:
        for s in idle:
            s.close()
