"""pods/log and pods/attach against a fake NodeApi."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from svcnet.api import remotecommand, streams
from svcnet.store import Store
from tests.api.conftest import FakeNode, make_pod

POD = "/api/v1/namespaces/default/pods"


async def test_logs_plain(client: aiohttp.ClientSession, store: Store, node: FakeNode) -> None:
    store.create(make_pod("web"))
    node.logs_by_container[("default", "web", "main")] = [b"start server\n", b"received\n"]
    async with client.get(f"{POD}/web/log?tailLines=1&timestamps=true&sinceSeconds=300") as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "text/plain"
        assert await r.read() == b"received\n"
    assert node.calls[-1] == {
        "namespace": "default",
        "pod": "web",
        "container": "main",
        "follow": False,
        "tail_lines": 1,
        "previous": False,
        "timestamps": True,
        "since_seconds": 300,
    }


async def test_logs_follow_streams(
    client: aiohttp.ClientSession, store: Store, node: FakeNode
) -> None:
    store.create(make_pod("web"))
    node.logs_by_container[("default", "web", "main")] = [b"one\n"]
    async with client.get(f"{POD}/web/log?follow=true") as r:
        assert r.status == 200 and r.headers.get("Transfer-Encoding") == "chunked"
        assert await asyncio.wait_for(r.content.readline(), 5) == b"one\n"
        await node.follow_queue.put(b"two\n")
        assert await asyncio.wait_for(r.content.readline(), 5) == b"two\n"
        await node.follow_queue.put(None)
        assert await asyncio.wait_for(r.content.read(), 5) == b""


async def test_logs_follow_ends_on_disconnect(
    client: aiohttp.ClientSession, store: Store, node: FakeNode
) -> None:
    store.create(make_pod("web"))
    node.logs_by_container[("default", "web", "main")] = [b"one\n"]
    r = await client.get(f"{POD}/web/log?follow=true")
    assert await r.content.readline() == b"one\n"
    r.close()
    await asyncio.wait_for(node.follow_closed.wait(), 5)


async def test_logs_errors(client: aiohttp.ClientSession, store: Store, node: FakeNode) -> None:
    async with client.get(f"{POD}/nope/log") as r:
        assert r.status == 404
        assert (await r.json())["message"] == 'pods "nope" not found'
    store.create(make_pod("two", containers=("a", "b")))
    async with client.get(f"{POD}/two/log") as r:
        assert r.status == 400
        assert (await r.json())["message"] == (
            "a container name must be specified for pod two, choose one of: [a b]"
        )
    async with client.get(f"{POD}/two/log?container=c") as r:
        assert r.status == 400
    async with client.get(f"{POD}/two/log?container=a") as r:  # NodeApiError
        assert r.status == 400
        body = await r.json()
        assert body["reason"] == "BadRequest"
        assert body["message"] == (
            'container "a" in pod "two" is waiting to start: ContainerCreating'
        )
    async with client.get(f"{POD}/two/log?container=a&tailLines=x") as r:
        assert r.status == 400


def test_pick_container_default_annotation() -> None:
    pod = make_pod(
        "p", containers=("a", "b"), annotations={"kubectl.kubernetes.io/default-container": "b"}
    )
    assert streams.pick_container(pod, None) == "b"
    assert streams.pick_container(make_pod("p"), None) == "main"


def test_exit_status_shape() -> None:
    assert remotecommand.exit_status(0) == {"metadata": {}, "status": "Success"}
    failure = remotecommand.exit_status(3)
    assert failure["reason"] == "NonZeroExitCode"
    assert failure["details"] == {"causes": [{"reason": "ExitCode", "message": "3"}]}


@pytest.mark.parametrize("protocol", ["v5.channel.k8s.io", "v4.channel.k8s.io"])
async def test_attach_websocket(
    client: aiohttp.ClientSession, store: Store, node: FakeNode, protocol: str
) -> None:
    store.create(make_pod("tmp1"))
    async with client.ws_connect(
        f"{POD}/tmp1/attach?container=main&stdin=true&stdout=true&stderr=true&tty=false",
        protocols=(protocol,),
    ) as ws:
        assert ws.protocol == protocol
        att = node.attachments[0]
        await ws.send_bytes(b"\x04" + json.dumps({"Width": 80, "Height": 24}).encode())
        await ws.send_bytes(b"\x00hello\n")
        await asyncio.wait_for(att.got_stdin.wait(), 5)
        assert att.stdin == [b"hello\n"]
        if protocol.startswith("v5"):
            await ws.send_bytes(b"\xff\x00")
            await asyncio.wait_for(att.stdin_closed.wait(), 5)
        assert att.sizes == [(80, 24)]
        await att.out.put((1, b"out"))
        await att.out.put((2, b"err"))
        await att.out.put(None)
        frames = [await ws.receive_bytes(timeout=5) for _ in range(3)]
        assert frames[:2] == [b"\x01out", b"\x02err"]
        assert frames[2][0] == 3
        assert json.loads(frames[2][1:]) == {"metadata": {}, "status": "Success"}
        closing = await ws.receive(timeout=5)
        assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == 1000
    await asyncio.wait_for(att.detached.wait(), 5)


async def test_attach_client_detach(
    client: aiohttp.ClientSession, store: Store, node: FakeNode
) -> None:
    store.create(make_pod("tmp1"))
    ws = await client.ws_connect(
        f"{POD}/tmp1/attach?stdin=true&stdout=true", protocols=("v5.channel.k8s.io",)
    )
    await ws.close()
    await asyncio.wait_for(node.attachments[0].detached.wait(), 5)


async def test_attach_errors(client: aiohttp.ClientSession, store: Store) -> None:
    store.create(make_pod("p", containers=("main", "broken")))
    async with client.post(f"{POD}/p/attach?container=main&stdout=true") as r:
        assert r.status == 400
        assert (await r.json())["message"] == "Upgrade request required"
    with pytest.raises(aiohttp.WSServerHandshakeError) as e:
        await client.ws_connect(
            f"{POD}/p/attach?container=broken&stdout=true", protocols=("v5.channel.k8s.io",)
        )
    assert e.value.status == 400
    with pytest.raises(aiohttp.WSServerHandshakeError) as e:
        await client.ws_connect(f"{POD}/gone/attach?stdout=true", protocols=("v5.channel.k8s.io",))
    assert e.value.status == 404
    async with client.get(f"{POD}/p/exec?command=ls&container=main&stdout=true") as r:
        assert r.status == 400


@pytest.mark.parametrize("protocol", ["v5.channel.k8s.io", "v4.channel.k8s.io"])
async def test_exec_websocket_exit_code(
    client: aiohttp.ClientSession, store: Store, node: FakeNode, protocol: str
) -> None:
    store.create(make_pod("p"))
    async with client.ws_connect(
        f"{POD}/p/exec?command=exit&command=3&container=main&stdout=true&stderr=true&stdin=true",
        protocols=(protocol,),
    ) as ws:
        assert ws.protocol == protocol
        att = node.attachments[0]
        assert node.calls[-1] == {
            "exec": ["exit", "3"],
            "stdin": True,
            "tty": False,
            "container": "main",
        }
        await ws.send_bytes(b"\x00data")
        await asyncio.wait_for(att.got_stdin.wait(), 5)
        if protocol.startswith("v5"):
            await ws.send_bytes(b"\xff\x00")
            await asyncio.wait_for(att.stdin_closed.wait(), 5)
        await att.out.put((2, b"oops"))
        await att.out.put(None)
        assert await ws.receive_bytes(timeout=5) == b"\x02oops"
        status = await ws.receive_bytes(timeout=5)
        assert status[0] == 3
        assert json.loads(status[1:]) == remotecommand.exit_status(3)
        closing = await ws.receive(timeout=5)
        assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == 1000


async def test_exec_errors_and_tty(
    client: aiohttp.ClientSession, store: Store, node: FakeNode
) -> None:
    store.create(make_pod("p"))
    # A command that cannot start: the Status comes on channel 3 after the upgrade.
    async with client.ws_connect(
        f"{POD}/p/exec?command=missing&stdout=true", protocols=("v5.channel.k8s.io",)
    ) as ws:
        status = json.loads((await ws.receive_bytes(timeout=5))[1:])
        assert status["status"] == "Failure" and status["code"] == 500
        assert 'exec: "missing": executable file not found' in status["message"]
    # tty drops stderr (a terminal has one stream) and passes resizes on.
    async with client.ws_connect(
        f"{POD}/p/exec?command=sh&stdout=true&stderr=true&stdin=true&tty=true",
        protocols=("v5.channel.k8s.io",),
    ) as ws:
        att = node.attachments[-1]
        assert node.calls[-1]["tty"] is True
        await ws.send_bytes(b"\x04" + json.dumps({"Width": 100, "Height": 30}).encode())
        await ws.send_bytes(b"\x00x")  # frames are handled in order: resize first
        await asyncio.wait_for(att.got_stdin.wait(), 5)
        assert att.sizes == [(100, 30)]
        await att.out.put((2, b"hidden"))
        await att.out.put((1, b"$ "))
        await att.out.put(None)
        assert await ws.receive_bytes(timeout=5) == b"\x01$ "
        assert json.loads((await ws.receive_bytes(timeout=5))[1:]) == remotecommand.SUCCESS
    async with client.get(f"{POD}/p/exec?command=ls&stdout=true") as r:
        assert r.status == 400
    with pytest.raises(aiohttp.WSServerHandshakeError) as e:
        await client.ws_connect(f"{POD}/p/exec?stdout=true", protocols=("v5.channel.k8s.io",))
    assert e.value.status == 400  # no command
