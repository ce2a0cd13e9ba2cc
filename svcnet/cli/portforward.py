"""`port-forward TYPE/NAME [LOCAL:]REMOTE... [--address A,B]`, as kubectl does it.

The pod is chosen client-side, as kubectl chooses it: `pod/NAME` (or NAME),
or one pod of a Deployment, ReplicaSet, StatefulSet, DaemonSet or Service
(running and ready ones first); for a Service, REMOTE is a Service port and
is turned into its targetPort (a named targetPort through the pod's container
ports), and a named REMOTE of a pod is its container port of that name. The
pod must be Running.

Each local connection gets a WebSocket of its own to pods/portforward (the
kubelet's channel protocol, `ports=REMOTE`): channel 0 carries the data and
channel 1 the error, each opened by a frame holding the port. The channel
protocol has no half-close, so a client that stops sending keeps reading
until the pod closes its side. Lines printed are kubectl's: `Forwarding from
127.0.0.1:8080 -> 80`, `Handling connection for 8080`, and the error stream's
message as `E.... an error occurred forwarding 8080 -> 80: ...`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import socket
import sys
import time
from dataclasses import dataclass

from svcnet._aio import TaskSet
from svcnet.cli.client import Client, kind_name
from svcnet.cli.logs import LogsError, _by_logging, _list_pods, _selector_of
from svcnet.k8s import kinds
from svcnet.k8s.kinds import BY_KIND
from svcnet.k8s.objects import Obj

POD = BY_KIND["Pod"]
CHANNEL_PROTOCOL = "v4.channel.k8s.io"
READ_CHUNK = 32 << 10


class PortForwardError(Exception):
    """What kubectl prints (already prefixed `error: `)."""


@dataclass
class Mapping:
    local: int
    remote: int
    spec_remote: str
    """REMOTE as given (a Service port or a name), for messages."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("resource", metavar="TYPE/NAME")
    p.add_argument("ports", nargs="+", metavar="[LOCAL_PORT:]REMOTE_PORT")
    p.add_argument(
        "--address",
        default="localhost",
        help="addresses to listen on (comma separated): localhost, or IP addresses",
    )


def _split(spec: str) -> tuple[str, str]:
    local, colon, remote = spec.partition(":")
    if not colon:
        return spec, spec
    return local, remote


def _target_pod(client: Client, namespace: str, resource: str) -> tuple[Obj, Obj | None]:
    """(the pod, the Service it was chosen through or None)."""
    type_, slash, name = resource.partition("/")
    kind = kinds.lookup(type_) if slash else POD
    if kind is None:
        raise PortForwardError(f'error: the server doesn\'t have a resource type "{type_}"')
    name = name if slash else resource
    obj: Obj = client.get(kind.object_path(namespace, name))
    if kind is POD:
        return obj, None
    if kind.kind not in ("Deployment", "ReplicaSet", "Service", "StatefulSet", "DaemonSet"):
        raise PortForwardError(f"error: cannot attach to {kind_name(kind)}: not implemented")
    try:
        selector = _selector_of(obj)
    except LogsError as e:
        raise PortForwardError(str(e)) from None
    pods = sorted(_list_pods(client, namespace, selector), key=_by_logging)
    if not pods:
        raise PortForwardError(f"error: no pods found for {kind_name(kind)}/{name}")
    return pods[0], obj if kind.kind == "Service" else None


def _container_port(pod: Obj, name: str) -> int | None:
    for c in (pod.get("spec") or {}).get("containers") or ():
        for p in c.get("ports") or ():
            if p.get("name") == name and isinstance(p.get("containerPort"), int):
                return int(p["containerPort"])
    return None


def _remote_port(pod: Obj, svc: Obj | None, remote: str) -> int:
    if svc is not None:
        # kubectl's translateServicePortToTargetPort.
        for sp in (svc.get("spec") or {}).get("ports") or ():
            if str(sp.get("port")) == remote or sp.get("name") == remote:
                target = sp.get("targetPort", sp.get("port"))
                if isinstance(target, int):
                    return target
                found = _container_port(pod, str(target))
                if found is None:
                    raise PortForwardError(
                        f"error: pod {pod['metadata']['name']} does not have a named port "
                        f"'{target}'"
                    )
                return found
        raise PortForwardError(
            f"error: Service {svc['metadata']['name']} does not have a service port {remote}"
        )
    if remote.isdigit():
        return int(remote)
    found = _container_port(pod, remote)
    if found is None:
        raise PortForwardError(
            f"error: Pod '{pod['metadata']['name']}' does not have a named port '{remote}'"
        )
    return found


def _mappings(pod: Obj, svc: Obj | None, specs: list[str]) -> list[Mapping]:
    out = []
    for spec in specs:
        local, remote = _split(spec)
        port = _remote_port(pod, svc, remote)
        if not 0 < port < 65536:
            raise PortForwardError(f"error: Error parsing remote port '{remote}'")
        if local == "":
            lport = 0
        elif local.isdigit() and int(local) < 65536:
            lport = int(local)
        else:
            raise PortForwardError(f"error: Error parsing local port '{local}'")
        out.append(Mapping(lport, port, remote))
    return out


def _klog_error(message: str) -> None:
    now = time.time()
    t = time.localtime(now)
    micros = int((now % 1) * 1_000_000)
    sys.stderr.write(
        f"E{t.tm_mon:02d}{t.tm_mday:02d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
        f".{micros:06d} {os.getpid():7d} portforward.go:424] {message}\n"
    )
    sys.stderr.flush()


def port_forward(args: argparse.Namespace, client: Client) -> int:
    namespace = args.namespace or "default"
    try:
        pod, svc = _target_pod(client, namespace, args.resource)
        phase = (pod.get("status") or {}).get("phase")
        if phase != "Running":
            raise PortForwardError(
                f"error: unable to forward port because pod is not running. Current status={phase}"
            )
        mappings = _mappings(pod, svc, list(args.ports))
    except PortForwardError as e:
        sys.stderr.write(f"{e}\n")
        return 1
    addresses = [a.strip() for a in str(args.address).split(",") if a.strip()]
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(_serve(client, namespace, pod["metadata"]["name"], mappings, addresses))
    return 0


async def _serve(
    client: Client, namespace: str, pod: str, mappings: list[Mapping], addresses: list[str]
) -> int:
    servers: list[asyncio.Server] = []
    path = POD.object_path(namespace, pod) + "/portforward"
    try:
        for m in mappings:
            hosts = ["127.0.0.1", "::1"] if addresses == ["localhost"] else addresses
            bound = 0
            for host in hosts:
                try:
                    server = await asyncio.start_server(
                        functools.partial(_connection, client, path, m),
                        host,
                        m.local,
                        family=socket.AF_INET6 if ":" in host else socket.AF_INET,
                    )
                except OSError as e:
                    if addresses == ["localhost"] and host == "::1":
                        continue  # kubectl goes on with IPv4 alone
                    sys.stderr.write(f"Unable to listen on port {m.local}: {e}\n")
                    continue
                servers.append(server)
                m.local = server.sockets[0].getsockname()[1]
                shown = f"[{host}]" if ":" in host else host
                print(f"Forwarding from {shown}:{m.local} -> {m.remote}", flush=True)
                bound += 1
            if not bound:
                sys.stderr.write(
                    f"error: unable to listen on any of the requested ports: [{m.local}]\n"
                )
                return 1
        await asyncio.Event().wait()
    finally:
        for s in servers:
            s.close()
    return 0


async def _connection(
    client: Client,
    path: str,
    m: Mapping,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    import aiohttp

    print(f"Handling connection for {m.local}", flush=True)
    url = client.ws_url(path, {"ports": str(m.remote)})
    local_tasks = TaskSet()
    try:
        async with (
            aiohttp.ClientSession(headers=client.headers) as session,
            session.ws_connect(
                url, protocols=(CHANNEL_PROTOCOL,), ssl=client.ssl_context or True
            ) as ws,
        ):

            async def upstream() -> None:
                while chunk := await reader.read(READ_CHUNK):
                    await ws.send_bytes(b"\x00" + chunk)

            local_tasks.spawn(upstream(), name=f"port-forward {m.local} up")
            opened = [False, False]
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.BINARY or not msg.data:
                    if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.ERROR):
                        break
                    continue
                channel, payload = msg.data[0], msg.data[1:]
                if channel > 1:
                    continue
                if not opened[channel]:
                    opened[channel] = True  # the port, first on each channel
                    continue
                if channel == 0:
                    writer.write(payload)
                    await writer.drain()
                elif payload:
                    _klog_error(
                        f"an error occurred forwarding {m.local} -> {m.remote}: "
                        f"{payload.decode(errors='replace')}"
                    )
    except (aiohttp.ClientError, OSError) as e:
        _klog_error(f"error creating forwarding stream for port {m.local} -> {m.remote}: {e}")
    finally:
        await local_tasks.stop()
        writer.close()
