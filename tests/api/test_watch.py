"""Watch streams over HTTP: rv semantics, filters, Table events, 410, shutdown."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aiohttp
import pytest

from svcnet.api.server import ApiServer
from svcnet.api.watch import WatchQueue
from svcnet.config import Settings
from svcnet.credentials import Credentials
from svcnet.k8s.objects import Obj
from svcnet.registry import Registry
from svcnet.store import Store
from tests.api.conftest import HOST, make_pod, session
from tests.api.test_server import TABLE

PODS = "/api/v1/namespaces/default/pods"


async def next_event(resp: aiohttp.ClientResponse) -> Obj:
    line = await asyncio.wait_for(resp.content.readline(), 5)
    assert line, "watch ended"
    ev: Obj = json.loads(line)
    return ev


def relabel(store: Store, name: str, labels: dict[str, str]) -> None:
    def change(o: Obj) -> None:
        o["metadata"]["labels"] = labels

    store.mutate("Pod", "default", name, change)


async def test_watch_from_zero_sends_current_then_live(
    client: aiohttp.ClientSession, store: Store
) -> None:
    store.create(make_pod("a"))
    async with client.get(f"{PODS}?watch=true&resourceVersion=0") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/json"
        ev = await next_event(resp)
        assert (ev["type"], ev["object"]["metadata"]["name"]) == ("ADDED", "a")
        store.create(make_pod("b"))
        ev = await next_event(resp)
        assert (ev["type"], ev["object"]["metadata"]["name"]) == ("ADDED", "b")
        relabel(store, "b", {"app": "b", "x": "y"})
        ev = await next_event(resp)
        assert ev["type"] == "MODIFIED" and ev["object"]["metadata"]["labels"]["x"] == "y"
        store.delete("Pod", "default", "b")
        ev = await next_event(resp)
        assert (ev["type"], ev["object"]["metadata"]["name"]) == ("DELETED", "b")


async def test_watch_without_rv_like_python_client(
    client: aiohttp.ClientSession, store: Store
) -> None:
    store.create(make_pod("a"))
    store.create(make_pod("z", namespace="other"))
    async with client.get(f"{PODS}?watch=true&timeoutSeconds=30") as resp:
        ev = await next_event(resp)
        assert ev["object"]["metadata"]["name"] == "a"
        store.create(make_pod("z2", namespace="other"))  # other namespace: filtered
        store.create(make_pod("c"))
        ev = await next_event(resp)
        assert ev["object"]["metadata"]["name"] == "c"


async def test_watch_from_resource_version(client: aiohttp.ClientSession, store: Store) -> None:
    store.create(make_pod("old"))
    rv = store.resource_version
    # Another kind with the same name and namespace, earlier in the history: a
    # pod watch resumed from rv must skip it (kubectl rollout status once saw
    # a deployment watch deliver the Service of the same name).
    store.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "new", "namespace": "default"},
            "spec": {"ports": [{"port": 80}]},
        }
    )
    store.create(make_pod("new"))
    store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}})
    async with client.get(
        f"{PODS}?watch=true&resourceVersion={rv}&fieldSelector=metadata.name%3Dnew"
    ) as resp:
        ev = await next_event(resp)
        assert (ev["type"], ev["object"]["kind"], ev["object"]["metadata"]["name"]) == (
            "ADDED",
            "Pod",
            "new",
        )
    async with client.get(f"{PODS}?watch=true&resourceVersion={rv}") as resp:
        ev = await next_event(resp)
        assert (ev["type"], ev["object"]["metadata"]["name"]) == ("ADDED", "new")
        store.delete("Pod", "default", "old")
        ev = await next_event(resp)
        assert (ev["type"], ev["object"]["metadata"]["name"]) == ("DELETED", "old")


async def test_watch_selector_transitions(client: aiohttp.ClientSession, store: Store) -> None:
    store.create(make_pod("p", labels={"app": "web"}))
    async with client.get(
        f"{PODS}?watch=true&labelSelector=app%3Dweb&fieldSelector=metadata.name%3Dp"
    ) as resp:
        assert (await next_event(resp))["type"] == "ADDED"
        relabel(store, "p", {"app": "db"})
        ev = await next_event(resp)
        assert ev["type"] == "DELETED" and ev["object"]["metadata"]["labels"] == {"app": "db"}
        store.create(make_pod("q", labels={"app": "web"}))  # name does not match
        relabel(store, "p", {"app": "web"})
        ev = await next_event(resp)
        assert (ev["type"], ev["object"]["metadata"]["name"]) == ("ADDED", "p")


async def test_watch_table_events(client: aiohttp.ClientSession, store: Store) -> None:
    store.create(make_pod("a"))
    rv = store.resource_version
    async with client.get(
        f"{PODS}?watch=true&resourceVersion={rv}", headers={"Accept": TABLE}
    ) as resp:
        store.create(make_pod("b"))
        first = await next_event(resp)
        assert first["type"] == "ADDED" and first["object"]["kind"] == "Table"
        assert first["object"]["columnDefinitions"][0]["name"] == "Name"
        assert first["object"]["rows"][0]["cells"][:3] == ["b", "1/1", "Running"]
        store.delete("Pod", "default", "b")
        second = await next_event(resp)
        assert second["type"] == "DELETED"
        assert second["object"]["columnDefinitions"] == []
        assert second["object"]["rows"][0]["object"]["metadata"]["name"] == "b"


async def test_watch_timeout_ends_stream(client: aiohttp.ClientSession) -> None:
    async with client.get(f"{PODS}?watch=true&timeoutSeconds=1") as resp:
        assert await asyncio.wait_for(resp.content.read(), 10) == b""


async def test_watch_bad_selector(client: aiohttp.ClientSession) -> None:
    async with client.get(f"{PODS}?watch=true&fieldSelector=spec.nope%3D1") as resp:
        assert resp.status == 400
    async with client.get(f"{PODS}?watch=true&resourceVersion=abc") as resp:
        assert resp.status == 400


@asynccontextmanager
async def serve(store: Store, creds: Credentials) -> AsyncIterator[ApiServer]:
    settings = Settings()
    settings.api.host, settings.api.port = HOST, 0
    srv = ApiServer(settings, store, Registry(settings, store), None, creds)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


async def test_watch_too_old_gets_410_expired(creds: Credentials) -> None:
    store = Store(history=2)
    store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
    for i in range(5):
        store.create(make_pod(f"p{i}"))
    async with serve(store, creds) as srv, session(srv) as c:
        async with c.get(f"{PODS}?watch=true&resourceVersion=1") as resp:
            assert resp.status == 200
            ev = await next_event(resp)
            assert ev["type"] == "ERROR"
            assert ev["object"] == {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": "too old resource version: 1 (4)",
                "reason": "Expired",
                "code": 410,
            }
            assert await resp.content.read() == b""


async def test_stop_ends_open_watches(store: Store, creds: Credentials) -> None:
    async with serve(store, creds) as srv, session(srv) as c:
        async with c.get(f"{PODS}?watch=true") as resp:
            await srv.stop()
            assert await asyncio.wait_for(resp.content.read(), 5) == b""


async def test_disconnect_unsubscribes(
    client: aiohttp.ClientSession,
    server: ApiServer,
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ended = asyncio.Event()
    register = server._register_watch

    def observed(q: WatchQueue) -> Callable[[], None]:
        unregister = register(q)

        def done() -> None:
            unregister()
            ended.set()

        return done

    monkeypatch.setattr(server, "_register_watch", observed)
    store.create(make_pod("a"))
    resp = await client.get(f"{PODS}?watch=true")
    await next_event(resp)
    assert len(server._watch_queues) == 1
    resp.close()
    await asyncio.wait_for(ended.wait(), 5)
    assert not server._watch_queues
