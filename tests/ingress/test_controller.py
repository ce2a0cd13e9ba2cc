"""The ingress controller in-process, against a real backend, with real clients:
curl (--resolve, --cacert), aiohttp's WebSocket client and raw sockets."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
import random
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from svcnet import events
from svcnet.config import Settings
from svcnet.daemon import bootstrap
from svcnet.ingress.controller import IngressController
from svcnet.registry import Registry
from svcnet.store import Store
from svcnet.testing import free_port

ADDR = "127.0.0.1"


async def backend_app() -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response(
            {
                "path": request.path_qs,
                "method": request.method,
                "headers": dict(request.headers),
                "body": len(body),
            }
        )

    async def upload(request: web.Request) -> web.Response:
        digest = hashlib.sha256()
        async for chunk in request.content.iter_any():
            digest.update(chunk)
        return web.Response(text=digest.hexdigest())

    async def download(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for i in range(64):
            await resp.write(bytes([i]) * 65536)
        await resp.write_eof()
        return resp

    async def ws(request: web.Request) -> web.WebSocketResponse:
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        async for msg in sock:
            await sock.send_str("echo:" + msg.data)
        return sock

    app = web.Application(client_max_size=64 << 20)
    app.router.add_route("*", "/upload", upload)
    app.router.add_get("/download", download)
    app.router.add_get("/ws", ws)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


class Env:
    def __init__(self, registry: Registry, ctl: IngressController, backend_port: int) -> None:
        self.registry = registry
        self.ctl = ctl
        self.backend_port = backend_port

    def service(self, name: str, ready: bool = True) -> None:
        self.registry.create(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"ports": [{"port": 80, "targetPort": self.backend_port}]},
            }
        )
        self.registry.create(
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": f"{name}-x1",
                    "namespace": "default",
                    "labels": {"kubernetes.io/service-name": name},
                },
                "addressType": "IPv4",
                "ports": [{"name": "", "port": self.backend_port, "protocol": "TCP"}],
                "endpoints": [{"addresses": [ADDR], "conditions": {"ready": ready}}],
            }
        )

    def apply(self, obj: dict[str, Any]) -> None:
        self.registry.apply(obj)

    async def curl(self, *args: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            "curl", "-s", "--max-time", "10", *args, stdout=subprocess.PIPE
        )
        out, _ = await proc.communicate()
        return out.decode()

    def url(self, host: str, path: str = "/", https: bool = False) -> list[str]:
        port = self.ctl.https_port if https else self.ctl.http_port
        scheme = "https" if https else "http"
        return ["--resolve", f"{host}:{port}:{ADDR}", f"{scheme}://{host}:{port}{path}"]


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    settings = Settings()
    settings.ingress.address = ADDR
    settings.ingress.http_port = free_port()
    settings.ingress.https_port = free_port()
    registry = Registry(settings, Store(), random.Random(1))
    bootstrap(settings, registry)
    runner = web.AppRunner(await backend_app())
    await runner.setup()
    backend_port = free_port()
    await web.TCPSite(runner, ADDR, backend_port).start()

    def record(obj: Any, type_: str, reason: str, message: str) -> None:
        events.record(registry, obj, type_, reason, message, "nginx-ingress-controller")

    ctl = IngressController(settings, registry, record)
    await ctl.start()
    try:
        yield Env(registry, ctl, backend_port)
    finally:
        await ctl.stop()
        await runner.cleanup()


def ingress(name: str, host: str, path: str = "/", svc: str = "web", **spec: Any) -> Any:
    rule: dict[str, Any] = {
        "http": {
            "paths": [
                {
                    "path": path,
                    "pathType": "Prefix",
                    "backend": {"service": {"name": svc, "port": {"number": 80}}},
                }
            ]
        }
    }
    if host:
        rule["host"] = host
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"rules": [rule], **spec},
    }


async def until(check: Any, within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_routes_by_host_with_forwarded_headers_and_status(env: Env) -> None:
    env.service("web")
    env.apply(ingress("web", "hello-world.example"))
    got = json.loads(await env.curl(*env.url("hello-world.example", "/a/b?c=d")))
    assert got["path"] == "/a/b?c=d"
    h = got["headers"]
    port = str(env.ctl.http_port)
    assert h["Host"] == f"hello-world.example:{port}"
    assert h["X-Forwarded-Host"] == f"hello-world.example:{port}"
    assert (h["X-Forwarded-For"], h["X-Real-IP"]) == (ADDR, ADDR)
    assert (h["X-Forwarded-Proto"], h["X-Forwarded-Port"]) == ("http", port)
    assert len(h["X-Request-ID"]) == 32
    # Another host, and a host-less request: the controller's own 404.
    page = await env.curl(*env.url("other.example"))
    assert "<title>404 Not Found</title>" in page and "<center>nginx</center>" in page
    # The class-less Ingress got the default class; its status has the address.
    ing = env.registry.store.get("Ingress", "default", "web")
    assert ing is not None and ing["spec"]["ingressClassName"] == "nginx"
    await until(
        lambda: (
            (env.registry.store.get("Ingress", "default", "web") or {})["status"]
            == {"loadBalancer": {"ingress": [{"ip": ADDR}]}}
        )
    )


async def test_changes_take_effect_without_restart(env: Env) -> None:
    env.apply(ingress("web", "late.example"))
    assert "503 Service Temporarily Unavailable" in await env.curl(*env.url("late.example"))
    env.service("web", ready=False)
    assert "503 Service Temporarily Unavailable" in await env.curl(*env.url("late.example"))

    def ready(o: dict[str, Any]) -> None:
        o["endpoints"][0]["conditions"]["ready"] = True

    env.registry.modify("EndpointSlice", "default", "web-x1", ready)
    assert json.loads(await env.curl(*env.url("late.example")))["path"] == "/"
    env.registry.delete("Ingress", "default", "web")
    assert "404 Not Found" in await env.curl(*env.url("late.example"))


async def test_an_ingress_of_another_class_is_not_served(env: Env) -> None:
    env.service("web")
    env.apply(ingress("other", "x.example", ingressClassName="traefik"))
    assert "404 Not Found" in await env.curl(*env.url("x.example"))
    obj = env.registry.store.get("Ingress", "default", "other")
    assert obj is not None and obj["status"] == {"loadBalancer": {}}


async def test_keep_alive_and_streaming_bodies_both_ways(env: Env) -> None:
    env.service("web")
    env.apply(ingress("web", "stream.example"))
    port = env.ctl.http_port
    big = random.Random(7).randbytes(3 << 20)
    headers = {"Host": "stream.example"}
    async with aiohttp.ClientSession(f"http://{ADDR}:{port}") as http:
        for _ in range(3):  # one connection, several requests
            async with http.get("/x", headers=headers) as r:
                assert r.status == 200
        async with http.post("/upload", data=big, headers=headers) as r:
            assert await r.text() == hashlib.sha256(big).hexdigest()

        async def chunks() -> AsyncIterator[bytes]:
            for i in range(0, len(big), 100_000):
                yield big[i : i + 100_000]

        async with http.post("/upload", data=chunks(), headers=headers) as r:  # chunked
            assert await r.text() == hashlib.sha256(big).hexdigest()
        async with http.get("/download", headers=headers) as r:
            assert len(await r.read()) == 64 * 65536
        assert len(env.ctl.conns) == 1


async def test_websocket_upgrade_passes_through(env: Env) -> None:
    env.service("web")
    env.apply(ingress("web", "ws.example"))
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(
            f"http://{ADDR}:{env.ctl.http_port}/ws", headers={"Host": "ws.example"}
        ) as ws,
    ):
        for text in ("one", "two"):
            await ws.send_str(text)
            assert (await ws.receive_str()) == f"echo:{text}"


def _cert(tmp: Path, host: str) -> tuple[Path, str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path = tmp / f"{host}.crt"
    path.write_bytes(pem)
    return path, base64.b64encode(pem).decode(), base64.b64encode(key_pem).decode()


async def test_tls_by_sni_redirect_and_the_default_certificate(env: Env, tmp_path: Path) -> None:
    env.service("web")
    ca, crt, key = _cert(tmp_path, "https-example.foo.com")
    env.registry.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "testsecret-tls", "namespace": "default"},
            "type": "kubernetes.io/tls",
            "data": {"tls.crt": crt, "tls.key": key},
        }
    )
    tls = [{"hosts": ["https-example.foo.com"], "secretName": "testsecret-tls"}]
    env.apply(ingress("tls", "https-example.foo.com", tls=tls))
    host = "https-example.foo.com"
    got = json.loads(await env.curl("--cacert", str(ca), *env.url(host, "/s", https=True)))
    assert got["headers"]["X-Forwarded-Proto"] == "https"
    # Plain HTTP to a TLS host: 308 to the same URI over HTTPS.
    head = await env.curl("-i", *env.url(host, "/p?q=1"))
    assert head.startswith("HTTP/1.1 308 Permanent Redirect")
    assert f"Location: https://{host}:{env.ctl.https_port}/p?q=1" in head
    # Another name gets ingress-nginx's fake certificate, which the CA does not sign.
    assert await env.curl("--cacert", str(ca), *env.url("x.example", https=True)) == ""
    subject = await asyncio.to_thread(_peer_subject, env.ctl.https_port, "x.example")
    assert "Kubernetes Ingress Controller Fake Certificate" in subject


def _peer_subject(port: int, sni: str) -> str:
    out = subprocess.run(
        ["openssl", "s_client", "-connect", f"{ADDR}:{port}", "-servername", sni],
        input="",
        capture_output=True,
        text=True,
        timeout=10,
    )
    return out.stdout


async def test_a_missing_secret_is_a_warning_and_the_default_certificate(env: Env) -> None:
    env.service("web")
    tls = [{"hosts": ["nocert.example"], "secretName": "missing"}]
    env.apply(ingress("nocert", "nocert.example", tls=tls))

    def warnings() -> list[str]:
        return [
            str(e.get("message"))
            for e in env.registry.store.list("Event", "default")
            if e.get("type") == "Warning" and e["involvedObject"]["name"] == "nocert"
        ]

    await until(lambda: bool(warnings()))
    assert warnings() == [
        'Error getting SSL certificate "default/missing": secret "default/missing" not found. '
        "Using default certificate"
    ]
    got = await env.curl("-k", *env.url("nocert.example", https=True))
    assert json.loads(got)["path"] == "/"


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", b"400"),  # no Host
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"400",
        ),
        (b"GET / HTTP/1.1\r\nHost: a\r\n bad: fold\r\n\r\n", b"400"),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", b"414"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"b" * 40000 + b"\r\n\r\n", b"400"),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", b"505"),
        (b"GET /../x HTTP/1.1\r\nHost: a\r\n\r\n", b"400"),
    ],
)
async def test_hostile_requests_get_nginx_answers(env: Env, raw: bytes, status: bytes) -> None:
    def send() -> bytes:
        with socket.create_connection((ADDR, env.ctl.http_port), timeout=5) as s:
            s.sendall(raw)
            data = b""
            while chunk := s.recv(65536):
                data += chunk
            return data

    reply = await asyncio.to_thread(send)
    assert reply.split(b" ", 2)[1] == status
