"""The node API: what the API server asks of the agent (the kubelet API).

In Kubernetes, `kubectl logs`, `attach`, `exec` and `port-forward` go apiserver -> kubelet.
Here the API server holds an object implementing ``NodeApi`` (the agent), so
svcnet.api never needs to know how containers are run.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

NODE_NAME = "svcnet"
"""spec.nodeName of every pod: svcnet is a one-node cluster."""


@dataclass(frozen=True)
class ContainerUsage:
    name: str
    cpu_nanocores: int
    """CPU used per second over the window, in billionths of a core."""
    memory_bytes: int
    """Working set, as the kubelet reports it."""


@dataclass(frozen=True)
class PodUsage:
    """What metrics-server would report for a pod (the kubelet's summary API)."""

    namespace: str
    name: str
    timestamp: float
    window: float
    containers: tuple[ContainerUsage, ...]


class NodeApiError(LookupError):
    """The pod or container cannot serve the request; the message is kubectl's text,
    e.g. `container "x" in pod "p" is waiting to start: ContainerCreating`."""

    def __init__(self, message: str, code: int = 400) -> None:
        super().__init__(message)
        self.code = code


class PortForwardError(OSError):
    """Dialing the pod's port failed; the message says how, in Go's words as the
    kubelet reports it (`dial tcp4 127.244.0.5:8080: connect: connection refused`)."""


class Attachment(Protocol):
    """A live connection to a running container's stdio (attach)."""

    def write_stdin(self, data: bytes) -> None: ...

    def close_stdin(self) -> None: ...

    def resize(self, width: int, height: int) -> None: ...

    def output(self) -> AsyncIterator[tuple[int, bytes]]:
        """(1, stdout bytes) / (2, stderr bytes) until the container's output ends."""
        ...

    async def wait(self) -> int:
        """The container's exit code once it has exited."""
        ...

    def detach(self) -> None: ...


class NodeApi(Protocol):
    def logs(
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
        """The container's log; with follow, new output until the container stops
        or the caller stops iterating. Raises NodeApiError before yielding if the
        pod/container does not exist or has not started."""
        ...

    async def attach(self, namespace: str, pod: str, container: str, *, tty: bool) -> Attachment:
        """Connect to a running container's stdio. Raises NodeApiError."""
        ...

    async def exec(
        self,
        namespace: str,
        pod: str,
        container: str,
        command: list[str],
        *,
        stdin: bool,
        tty: bool,
    ) -> Attachment:
        """Start `command` inside a running container (its namespaces and environment);
        the returned session's wait() gives its exit code. Raises NodeApiError."""
        ...

    async def port_forward(
        self, namespace: str, pod: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A TCP connection to `port` of the running pod, as the kubelet dials
        localhost:port inside the pod's network namespace. Raises NodeApiError when
        the pod cannot be reached at all, PortForwardError when the dial fails."""
        ...

    def usage(self) -> list[PodUsage]:
        """CPU and memory of every running pod's containers (empty without cgroups)."""
        ...

    def node_usage(self) -> ContainerUsage:
        """CPU and memory of the whole machine, as a NodeMetrics reports them."""
        ...
