"""`kubectl port-forward`: the kubelet's dial of localhost:PORT inside the pod.

The kubelet (through the container runtime) connects to 127.0.0.1:PORT in the
pod's network namespace, which reaches a program whether it bound the
wildcard or only localhost. A svcnet pod has two addresses instead of a
namespace (kernel/sockhooks.py): its pod IP, where wildcard binds land, and,
as root, a private loopback address where its binds to 127.0.0.1 land, which
the socket hooks refuse (EPERM) to every process outside the pod. So the
agent dials the pod IP first, from its own process (no cost per connection),
and only when nothing listens there asks a short-lived helper in the pod's
cgroup to dial 127.0.0.1:PORT, which the hooks route exactly as they route
the pod's own localhost; the helper hands the connected socket back over a
socketpair (SCM_RIGHTS) and exits.

Errors read as Go's net package words them (`dial tcp4 127.0.0.1:8080:
connect: connection refused`), the text the kubelet puts on the error stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import sys

from svcnet.agent.sandbox import join_cgroup
from svcnet.nodeapi import PortForwardError

DIAL_TIMEOUT = 10.0
"""Seconds a dial may take (the CRI runtimes' dial has no shorter bound)."""
STREAM_LIMIT = 64 << 10
"""Bytes read ahead from the pod before reading pauses (per connection)."""

_HELPER = """
import os, socket, sys
parent = socket.socket(fileno=int(sys.argv[2]))
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.settimeout(float(sys.argv[3]))
try:
    s.connect(("127.0.0.1", int(sys.argv[1])))
except OSError as e:
    parent.sendall(str(e.errno or 0).encode())
else:
    socket.send_fds(parent, [b"ok"], [s.fileno()])
"""
"""Runs in the pod's cgroup: connect to the pod's localhost, send back the socket
or the errno."""


def go_dial_error(host: str, port: int, e: OSError) -> str:
    """Go's text for a failed dial (net.OpError over a syscall.Errno)."""
    if isinstance(e, TimeoutError) or e.errno == errno.ETIMEDOUT:
        return f"dial tcp4 {host}:{port}: i/o timeout"
    code = e.errno or 0
    text = os.strerror(code) if code else str(e)
    return f"dial tcp4 {host}:{port}: connect: {text[:1].lower()}{text[1:]}"


async def dial(
    pod_ip: str,
    port: int,
    *,
    cgroup_procs: tuple[bytes, ...] = (),
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to the pod's `port`: its pod IP, else (with a cgroup of its own)
    its localhost through a helper in that cgroup. Raises PortForwardError."""
    try:
        return await asyncio.wait_for(
            asyncio.open_connection(pod_ip, port, limit=STREAM_LIMIT), DIAL_TIMEOUT
        )
    except OSError as e:
        if not cgroup_procs or e.errno != errno.ECONNREFUSED:
            raise PortForwardError(e.errno or 0, go_dial_error(pod_ip, port, e)) from None
    sock = await _dial_in_pod(port, cgroup_procs)
    return await asyncio.open_connection(sock=sock, limit=STREAM_LIMIT)


async def _dial_in_pod(port: int, cgroup_procs: tuple[bytes, ...]) -> socket.socket:
    ours, theirs = socket.socketpair()
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(ours.close)
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-I",
                "-c",
                _HELPER,
                str(port),
                str(theirs.fileno()),
                str(DIAL_TIMEOUT),
                pass_fds=(theirs.fileno(),),
                preexec_fn=lambda: join_cgroup(cgroup_procs),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
        finally:
            theirs.close()
        stack.push_async_callback(proc.wait)
        loop = asyncio.get_running_loop()
        ours.setblocking(False)
        try:
            msg, fds, _flags, _addr = await asyncio.wait_for(
                loop.run_in_executor(None, _recv_fd, ours), DIAL_TIMEOUT + 5
            )
        except (OSError, TimeoutError) as e:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            raise PortForwardError(0, go_dial_error("127.0.0.1", port, e)) from None
        if fds:
            return socket.socket(fileno=fds[0])
        try:
            code = int(msg or b"0")
        except ValueError:
            code = 0
        err = OSError(code, os.strerror(code)) if code else OSError("the helper did not answer")
        raise PortForwardError(code, go_dial_error("127.0.0.1", port, err))
    raise AssertionError("unreachable")


def _recv_fd(sock: socket.socket) -> tuple[bytes, list[int], int, object]:
    sock.setblocking(True)
    sock.settimeout(DIAL_TIMEOUT + 2)
    return socket.recv_fds(sock, 64, 1)
