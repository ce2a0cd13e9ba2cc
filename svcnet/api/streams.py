"""Pod subresources that stream: ``log``, ``attach`` and ``exec``.

All go through the ``NodeApi`` (the agent, svcnet's kubelet), as kube-apiserver
proxies them to the kubelet. The pod is read through the registry first so a
missing pod is the usual 404 Status, and the container is chosen the way
kubelet and kubectl choose it.

attach and exec are checked here whatever the transport (errors before the
upgrade, as kube-apiserver gives them), then served over one of two:

- the Kubernetes WebSocket remotecommand protocol (``v5.channel.k8s.io``, and
  ``v4`` for the Python client), here: every message is binary, its first byte
  the channel. 0 stdin, 1 stdout, 2 stderr, 3 the final Status, 4 terminal
  resize, 255 (v5 only) "stdin closed";
- SPDY/3.1 (``Upgrade: SPDY/3.1``), a stream per channel: api/remotecommand.py.

Anything else gets kube-apiserver's "Upgrade request required".
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

from svcnet._aio import TaskSet
from svcnet.api import remotecommand, spdy
from svcnet.api.remotecommand import SUCCESS, Stdio, exit_status, failure_status
from svcnet.api.request import query_bool, query_int
from svcnet.k8s.objects import Obj
from svcnet.k8s.wellknown import DEFAULT_CONTAINER
from svcnet.nodeapi import Attachment, NodeApi, NodeApiError
from svcnet.registry import ApiError
from svcnet.registry.errors import bad_request

logger = logging.getLogger(__name__)


PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


def pick_container(pod: Obj, requested: str | None) -> str:
    """The container a log/attach request means, with kubelet's error messages."""
    md = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    name = md.get("name", "")
    containers = [str(c.get("name")) for c in spec.get("containers") or ()]
    init = [str(c.get("name")) for c in spec.get("initContainers") or ()]
    ephemeral = [str(c.get("name")) for c in spec.get("ephemeralContainers") or ()]
    if requested:
        if requested not in (*containers, *init, *ephemeral):
            raise bad_request(f"container {requested} is not valid for pod {name}")
        return requested
    if len(containers) == 1:
        return containers[0]
    default = (md.get("annotations") or {}).get(DEFAULT_CONTAINER)
    if default and default in containers:
        return str(default)
    msg = (
        f"a container name must be specified for pod {name}, "
        f"choose one of: [{' '.join(containers)}]"
    )
    if init:
        msg += f" or one of the init containers: [{' '.join(init)}]"
    if ephemeral:
        msg += f" or one of the ephemeral containers: [{' '.join(ephemeral)}]"
    raise bad_request(msg)


def _node_error(e: NodeApiError) -> ApiError:
    reason = {404: "NotFound", 500: "InternalError"}.get(e.code, "BadRequest")
    return ApiError(e.code, reason, str(e))


async def serve_logs(request: web.Request, pod: Obj, node: NodeApi | None) -> web.StreamResponse:
    q = request.query
    container = pick_container(pod, q.get("container"))
    follow = query_bool(q, "follow")
    tail = query_int(q, "tailLines")
    since = query_int(q, "sinceSeconds")
    limit = query_int(q, "limitBytes")
    if tail is not None and tail < 0:
        raise bad_request(f"tailLines: Invalid value: {tail}: must be greater than or equal to 0")
    if since is not None and since < 1:
        raise bad_request(f"sinceSeconds: Invalid value: {since}: must be greater than 0")
    if node is None:
        raise bad_request("no node agent is running, so container logs are not available")
    md = pod["metadata"]
    try:
        stream = node.logs(
            md.get("namespace", ""),
            md["name"],
            container,
            follow=follow,
            tail_lines=tail,
            previous=query_bool(q, "previous"),
            timestamps=query_bool(q, "timestamps"),
            since_seconds=since,
        )
        it = aiter(stream)
        # The agent reports a missing container before its first chunk: read it
        # before answering, so that error can still be a 400 Status.
        try:
            first: bytes | None = await anext(it)
        except StopAsyncIteration:
            first = None
    except NodeApiError as e:
        raise _node_error(e) from None

    sent = 0

    def clip(chunk: bytes) -> bytes:
        nonlocal sent
        if limit is not None:
            chunk = chunk[: max(0, limit - sent)]
        sent += len(chunk)
        return chunk

    try:
        if not follow:
            parts = [clip(first)] if first else []
            if first is not None:
                async for chunk in it:
                    parts.append(clip(chunk))
            return web.Response(body=b"".join(parts), headers={"Content-Type": "text/plain"})
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        if first is not None:
            await resp.write(clip(first))
            async for chunk in it:
                if limit is not None and sent >= limit:
                    break
                await resp.write(clip(chunk))
        await resp.write_eof()
        return resp
    except NodeApiError as e:
        raise _node_error(e) from None
    finally:
        aclose = getattr(it, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()


WEBSOCKET, SPDY = "websocket", "spdy"


def _transport(request: web.Request) -> str:
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return WEBSOCKET
    if spdy.is_upgrade(request):
        return SPDY
    # kube-apiserver's answer to a request that asks for no upgrade it can proxy.
    raise bad_request("Upgrade request required")


def _stdio(q: Any) -> Stdio:
    stdin = query_bool(q, "stdin")
    stdout = query_bool(q, "stdout")
    stderr = query_bool(q, "stderr")
    tty = query_bool(q, "tty")
    if not (stdin or stdout or stderr):
        raise bad_request("you must specify at least 1 of stdin, stdout, stderr")
    if tty and stderr:
        # kubelet's rule (remotecommand): a terminal has no separate stderr.
        stderr = False
    return Stdio(stdin, stdout, stderr, tty)


async def serve_attach(request: web.Request, pod: Obj, node: NodeApi | None) -> web.StreamResponse:
    q = request.query
    transport = _transport(request)
    container = pick_container(pod, q.get("container"))
    stdio = _stdio(q)
    if node is None:
        raise bad_request("no node agent is running, so containers cannot be attached")
    protocol = remotecommand.negotiate(request) if transport == SPDY else ""
    md = pod["metadata"]
    what = f"attach {md['name']}/{container}"
    try:
        attachment = await node.attach(
            md.get("namespace", ""), md["name"], container, tty=stdio.tty
        )
    except NodeApiError as e:
        raise _node_error(e) from None
    # For attach kubectl expects Success whatever the exit code: it learns the
    # exit code from the pod's status (kubectl-api.md section 9), and a
    # NonZeroExitCode here makes it fall back to printing the logs again.
    if transport == WEBSOCKET:
        return await _serve_session(request, attachment, stdio, None, what)

    async def attached() -> Attachment:
        return attachment

    try:
        return await remotecommand.serve_spdy(
            request, protocol, stdio, attached, exits=False, what=what
        )
    finally:
        attachment.detach()


async def serve_exec(request: web.Request, pod: Obj, node: NodeApi | None) -> web.StreamResponse:
    q = request.query
    transport = _transport(request)
    container = pick_container(pod, q.get("container"))
    command = [str(c) for c in q.getall("command", [])]
    if not command:
        raise bad_request("you must specify at least one command for the container")
    stdio = _stdio(q)
    if node is None:
        raise bad_request("no node agent is running, so commands cannot be run in containers")
    md = pod["metadata"]
    ns, name = md.get("namespace", ""), md["name"]
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        raise bad_request(
            f"cannot exec into a container in a completed pod; current phase is {phase}"
        )
    what = f"exec {name}/{container}"

    # Like the kubelet, the command starts after the upgrade (over SPDY, once the
    # client's streams are there), so errors starting it are the final Status.
    async def start() -> Attachment:
        try:
            return await node.exec(ns, name, container, command, stdin=stdio.stdin, tty=stdio.tty)
        except NodeApiError as e:
            raise _node_error(e) from None

    if transport == SPDY:
        protocol = remotecommand.negotiate(request)
        return await remotecommand.serve_spdy(
            request, protocol, stdio, start, exits=True, what=what
        )
    ws = web.WebSocketResponse(protocols=PROTOCOLS, autoping=True)
    await ws.prepare(request)
    try:
        session = await start()
    except ApiError as e:
        await ws.send_bytes(bytes([ERROR]) + json.dumps(failure_status(e)).encode())
        await ws.close(code=1000)
        return ws
    return await _serve_session(request, session, stdio, session.wait, what, ws)


async def _serve_session(
    request: web.Request,
    session: Attachment,
    stdio: Stdio,
    exit_code: Callable[[], Awaitable[int]] | None,
    what: str,
    ws: web.WebSocketResponse | None = None,
) -> web.StreamResponse:
    """Relay a session's stdio over the remotecommand WebSocket; end with channel 3."""
    if ws is None:
        ws = web.WebSocketResponse(protocols=PROTOCOLS, autoping=True)
        try:
            await ws.prepare(request)
        except BaseException:
            session.detach()
            raise
    v5 = ws.ws_protocol == "v5.channel.k8s.io"
    stdin, stdout, stderr = stdio.stdin, stdio.stdout, stdio.stderr
    tasks = TaskSet()

    async def pump() -> None:
        async for channel, data in session.output():
            if (channel == STDOUT and stdout) or (channel == STDERR and stderr):
                await ws.send_bytes(bytes([channel]) + data)
        status = SUCCESS if exit_code is None else exit_status(await exit_code())
        await ws.send_bytes(bytes([ERROR]) + json.dumps(status).encode())
        await ws.close(code=1000)

    pump_task = tasks.spawn(pump(), name=f"{what} output")
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT and msg.data:
                # The Python client sends str data as a text frame: the channel is its
                # first character, the rest is the data as UTF-8.
                channel, payload = ord(msg.data[0]), msg.data[1:].encode()
            elif msg.type == WSMsgType.BINARY and msg.data:
                channel, payload = msg.data[0], msg.data[1:]
            else:
                continue
            if channel == STDIN and stdin:
                session.write_stdin(payload)
            elif channel == CLOSE and v5 and payload[:1] == bytes([STDIN]):
                session.close_stdin()
            elif channel == RESIZE:
                _resize(session, payload)
    finally:
        # Synchronous steps first: a client that goes away cancels this handler,
        # and the awaits below may then not run to the end.
        session.detach()
        pump_task.cancel()
        await tasks.stop()
        if not ws.closed:
            await ws.close(code=1001)
    return ws


def _resize(attachment: Attachment, payload: bytes) -> None:
    size = remotecommand.terminal_size(payload)
    if size is None:
        logger.debug("ignoring malformed resize message %r", payload[:100])
    else:
        attachment.resize(*size)
