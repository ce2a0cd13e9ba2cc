"""`run`: create a pod, and with `-i` attach to it like `kubectl run -i --rm -t`.

The sequence is kubectl's (kubectl-api.md section 9): POST the pod; wait
(watch, not poll) until it is Running and Ready or already finished; attach
over a v5.channel.k8s.io WebSocket, pumping local stdin to channel 0 and
channels 1/2 to stdout/stderr; then wait for the pod to finish, delete it
with `--rm`, and exit with the container's exit code.

The attach is the only asynchronous part of the CLI, and the only user of
aiohttp, which is imported here and only when `-i` is given. Local stdin is
read by a daemon thread rather than the event loop, because stdin may be a
terminal, a pipe or a regular file, and only a thread reads all three the
same way without keeping the process alive once the session is over.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import threading
from collections.abc import Iterator

from svcnet._aio import TaskSet
from svcnet.cli.client import ApiStatusError, Client
from svcnet.cli.logs import stream_log
from svcnet.k8s.kinds import BY_KIND
from svcnet.k8s.objects import Obj

POD = BY_KIND["Pod"]
RESTART_POLICIES = ("Always", "OnFailure", "Never")
POD_RUNNING_TIMEOUT = 60.0  # kubectl's --pod-running-timeout default

STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


def pod_manifest(args: argparse.Namespace) -> Obj:
    """The body `kubectl run` POSTs (kubectl-api.md section 9)."""
    labels: dict[str, str] = {"run": args.name}
    if args.labels:
        labels = {}
        for pair in args.labels.split(","):
            key, sep, value = pair.partition("=")
            if not sep or not key:
                raise ValueError(f"invalid label spec: {pair}")
            labels[key] = value
    container: Obj = {"name": args.name, "image": args.image, "resources": {}}
    if args.args:
        container["command" if args.command else "args"] = list(args.args)
    if args.env:
        env = []
        for item in args.env:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise ValueError(f"invalid env: {item}")
            env.append({"name": key, "value": value})
        container["env"] = env
    if args.port is not None:
        container["ports"] = [{"containerPort": args.port}]
    if args.stdin:
        container["stdin"] = True
        container["stdinOnce"] = True
    if args.tty:
        container["tty"] = True
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": args.name, "namespace": args.namespace, "labels": labels},
        "spec": {
            "containers": [container],
            "restartPolicy": args.restart,
            "dnsPolicy": "ClusterFirst",
        },
        "status": {},
    }


def phase(pod: Obj | None) -> str:
    return str(((pod or {}).get("status") or {}).get("phase") or "")


def running_and_ready_or_done(pod: Obj | None) -> bool:
    if pod is None or phase(pod) in ("Succeeded", "Failed"):
        return True
    conditions = (pod.get("status") or {}).get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    return phase(pod) == "Running" and ready


def run(args: argparse.Namespace, client: Client) -> int:
    if args.restart not in RESTART_POLICIES:
        sys.stderr.write(f"error: invalid restart policy: {args.restart}\n")
        return 1
    if args.rm and not args.stdin:
        sys.stderr.write("error: --rm should only be used for attached containers\n")
        return 1
    if args.tty and not args.stdin:
        sys.stderr.write("error: -i/--stdin is required for containers with -t/--tty=true\n")
        return 1
    try:
        body = pod_manifest(args)
    except ValueError as e:
        sys.stderr.write(f"error: {e}\n")
        return 1
    client.call(
        "POST",
        POD.collection_path(args.namespace),
        query={"fieldManager": "kubectl-run"},
        body=body,
    )
    if not args.stdin:
        print(f"pod/{args.name} created")
        return 0
    return _session(args, client)


def _session(args: argparse.Namespace, client: Client) -> int:
    ns, name = args.namespace, args.name
    try:
        pod = client.wait_for(POD, ns, name, running_and_ready_or_done, POD_RUNNING_TIMEOUT)
    except TimeoutError:
        sys.stderr.write("error: timed out waiting for the condition\n")
        return 1
    if pod is None:
        sys.stderr.write(f'Error from server (NotFound): pods "{name}" not found\n')
        return 1

    if phase(pod) in ("Succeeded", "Failed"):
        # Too late to attach: show what it printed, as kubectl does.
        stream_log(client, ns, name, {"container": name})
    else:
        tty = args.tty
        if tty and not os.isatty(sys.stdin.fileno()):
            sys.stderr.write(
                "Unable to use a TTY - input is not a terminal or the right kind of file\n"
            )
            tty = False
        if tty:
            sys.stderr.write("If you don't see a command prompt, try pressing enter.\n")
            sys.stderr.flush()
        failure = asyncio.run(attach(client, ns, name, name, tty=tty))
        if failure is not None:
            sys.stderr.write(
                f"warning: couldn't attach to pod/{name}, falling back to streaming logs: "
                f"{failure}\n"
            )
            stream_log(client, ns, name, {"container": name, "follow": "true"})

    wait_for_exit = args.restart in ("Never", "OnFailure")
    if wait_for_exit:
        wanted = ("Succeeded",) if args.restart == "OnFailure" else ("Succeeded", "Failed")
        pod = client.wait_for(POD, ns, name, lambda p: p is None or phase(p) in wanted)
    if args.rm:
        try:
            client.call(
                "DELETE",
                POD.object_path(ns, name),
                body={
                    "kind": "DeleteOptions",
                    "apiVersion": "v1",
                    "propagationPolicy": "Background",
                },
            )
            print(f'pod "{name}" deleted', flush=True)
        except ApiStatusError as e:
            if e.code != 404:
                raise
    if not wait_for_exit:
        return 0
    if pod is None:
        sys.stderr.write(f'Error from server (NotFound): pods "{name}" not found\n')
        return 1
    return _exit_code(pod)


def _exit_code(pod: Obj) -> int:
    if phase(pod) == "Succeeded":
        return 0
    md = pod.get("metadata") or {}
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    terminated = ((statuses[0] if statuses else {}).get("state") or {}).get("terminated")
    code = int((terminated or {}).get("exitCode") or 0)
    if not terminated or code == 0:
        sys.stderr.write(
            f"error: pod {md.get('namespace')}/{md.get('name')} failed with unknown exit code\n"
        )
        return 1
    reason = terminated.get("reason") or ""
    message = terminated.get("message") or ""
    sys.stderr.write(f"pod {md.get('namespace')}/{md.get('name')} terminated ({reason})\n")
    if message:
        sys.stderr.write(f"{message}\n")
    return code


# --- attach ---------------------------------------------------------------------


@contextlib.contextmanager
def raw_terminal(fd: int, enabled: bool) -> Iterator[None]:
    """The local terminal in raw mode, so keystrokes reach the remote pty as typed."""
    if not enabled:
        yield
        return
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _read_stdin(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[bytes]) -> None:
    fd = sys.stdin.fileno()
    while True:
        try:
            data = os.read(fd, 32768)
        except OSError:
            data = b""
        try:
            loop.call_soon_threadsafe(queue.put_nowait, data)
        except RuntimeError:
            return  # the loop is gone: the session is over
        if not data:
            return


def _size_frame() -> bytes:
    size = shutil.get_terminal_size()
    return (
        bytes([RESIZE])
        + json.dumps({"Width": size.columns, "Height": size.lines}, separators=(",", ":")).encode()
    )


async def attach(
    client: Client, namespace: str, pod: str, container: str, *, tty: bool
) -> str | None:
    """Run one attach session; returns why it failed (for the log fallback), or None."""
    import aiohttp

    query = {"container": container, "stdin": "true", "stdout": "true"}
    query["tty" if tty else "stderr"] = "true"
    url = client.ws_url(POD.object_path(namespace, pod) + "/attach", query)
    loop = asyncio.get_running_loop()
    stdin_queue: asyncio.Queue[bytes] = asyncio.Queue()
    status: Obj | None = None
    tasks = TaskSet()

    async def pump_stdin(ws: aiohttp.ClientWebSocketResponse) -> None:
        while True:
            data = await stdin_queue.get()
            if not data:
                # v5 half-close: the remote process sees EOF on its stdin.
                await ws.send_bytes(bytes([CLOSE, STDIN]))
                return
            await ws.send_bytes(bytes([STDIN]) + data)

    try:
        async with (
            aiohttp.ClientSession(headers=client.headers) as session,
            session.ws_connect(
                url,
                protocols=("v5.channel.k8s.io",),
                max_msg_size=0,
                ssl=client.ssl_context or True,
            ) as ws,
        ):
            threading.Thread(
                target=_read_stdin, args=(loop, stdin_queue), name="stdin", daemon=True
            ).start()
            with raw_terminal(sys.stdin.fileno(), tty):
                if tty:
                    await ws.send_bytes(_size_frame())
                    with contextlib.suppress(NotImplementedError, AttributeError):
                        loop.add_signal_handler(
                            signal.SIGWINCH,
                            lambda: tasks.spawn(ws.send_bytes(_size_frame()), name="resize"),
                        )
                pump = tasks.spawn(pump_stdin(ws), name="attach-stdin")
                try:
                    async for msg in ws:
                        if msg.type != aiohttp.WSMsgType.BINARY:
                            if msg.type == aiohttp.WSMsgType.TEXT:
                                return "unexpected text frame from the server"
                            break
                        data: bytes = msg.data
                        if not data:
                            continue
                        channel, payload = data[0], data[1:]
                        if channel == STDOUT:
                            sys.stdout.buffer.write(payload)
                            sys.stdout.buffer.flush()
                        elif channel == STDERR:
                            sys.stderr.buffer.write(payload)
                            sys.stderr.buffer.flush()
                        elif channel == ERROR and payload:
                            status = json.loads(payload)
                finally:
                    pump.cancel()
                    await tasks.stop()
                    if tty:
                        with contextlib.suppress(NotImplementedError, AttributeError):
                            loop.remove_signal_handler(signal.SIGWINCH)
    except aiohttp.WSServerHandshakeError as e:
        return f"unable to upgrade connection: {e.message or e.status}"
    except aiohttp.ClientConnectionError as e:
        return f"error dialing backend: {e}"
    if status and status.get("status") == "Failure":
        # A non-zero exit is reported from the pod's status afterwards.
        if status.get("reason") != "NonZeroExitCode":
            return str(status.get("message") or "attach failed")
    return None
