"""Container probes: the kubelet's prober (k/k pkg/kubelet/prober).

A container may declare a ``startupProbe``, a ``livenessProbe`` and a
``readinessProbe``, each with one handler (``httpGet``, ``tcpSocket`` or
``exec``) and Kubernetes' timing fields (defaults in parentheses):
``initialDelaySeconds`` (0), ``timeoutSeconds`` (1), ``periodSeconds`` (10),
``successThreshold`` (1), ``failureThreshold`` (3).

The rules, as the kubelet's probe workers apply them (``worker.go``):

- the startup probe runs first; liveness and readiness wait until it has
  succeeded once, and it stops after that;
- results only flip after ``successThreshold`` consecutive successes or
  ``failureThreshold`` consecutive failures (``ProbeTracker``);
- initial results: readiness Failure (not ready until a probe passes),
  liveness Success, startup Unknown;
- a probe runs every ``periodSeconds`` from the container's start, the first
  one ``initialDelaySeconds`` after the start (``schedule``);
- startup or liveness reaching the failure threshold kills the container
  (SIGTERM, SIGKILL after the grace period); restartPolicy decides the rest.

This module is sans-process: ``run_probe`` does one check over sockets, and an
exec probe's process is started by the caller's ``exec_fn``. The container
runner owns the loop that ties results to `ready`, `started` and kills.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from svcnet.k8s import version
from svcnet.k8s.objects import Obj

KINDS = ("startupProbe", "livenessProbe", "readinessProbe")
LABEL = {"startupProbe": "Startup", "livenessProbe": "Liveness", "readinessProbe": "Readiness"}
HANDLERS = ("httpGet", "tcpSocket", "exec", "grpc")
USER_AGENT = f"kube-probe/{version.MAJOR}.{version.MINOR}"

DEFAULTS: dict[str, int] = {
    "timeoutSeconds": 1,
    "periodSeconds": 10,
    "successThreshold": 1,
    "failureThreshold": 3,
}


class ProbeError(Exception):
    """The probe cannot even be attempted (an unknown named port, say)."""


@dataclass(frozen=True)
class Probe:
    kind: str  # startupProbe | livenessProbe | readinessProbe
    handler: str  # httpGet | tcpSocket | exec | grpc
    action: Obj
    initial_delay: float
    timeout: float
    period: float
    success_threshold: int
    failure_threshold: int
    termination_grace: float | None

    @property
    def label(self) -> str:
        return LABEL[self.kind]

    @classmethod
    def from_spec(cls, kind: str, spec: Obj) -> Probe:
        handler = next((h for h in HANDLERS if spec.get(h) is not None), "")
        grace = spec.get("terminationGracePeriodSeconds")
        return cls(
            kind=kind,
            handler=handler,
            action=dict(spec.get(handler) or {}) if handler else {},
            initial_delay=float(spec.get("initialDelaySeconds") or 0),
            timeout=float(spec.get("timeoutSeconds") or DEFAULTS["timeoutSeconds"]),
            period=float(spec.get("periodSeconds") or DEFAULTS["periodSeconds"]),
            success_threshold=int(spec.get("successThreshold") or DEFAULTS["successThreshold"]),
            failure_threshold=int(spec.get("failureThreshold") or DEFAULTS["failureThreshold"]),
            termination_grace=float(grace) if grace is not None else None,
        )


def container_probes(container: Obj) -> dict[str, Probe]:
    return {k: Probe.from_spec(k, container[k]) for k in KINDS if container.get(k)}


class ProbeTracker:
    """The result of one probe across its runs, with the threshold rules."""

    def __init__(self, probe: Probe) -> None:
        self.probe = probe
        # Readiness starts as Failure, liveness as Success, startup as Unknown (None).
        self.result: bool | None = {
            "readinessProbe": False,
            "livenessProbe": True,
            "startupProbe": None,
        }[probe.kind]
        self._last: bool | None = None
        self._run = 0

    def observe(self, ok: bool) -> bool:
        """Record one probe outcome; True when the result changed."""
        if ok == self._last:
            self._run += 1
        else:
            self._last, self._run = ok, 1
        need = self.probe.success_threshold if ok else self.probe.failure_threshold
        if self._run < need or self.result is ok:
            return False
        self.result = ok
        return True


def schedule(probe: Probe) -> Iterator[float]:
    """Seconds after the container started at which the probe runs."""
    t = probe.initial_delay
    while True:
        yield t
        t += probe.period


def resolve_port(port: Any, container: Obj) -> int:
    """A probe's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    text = str(port)
    if text.isdigit():
        return int(text)
    for p in container.get("ports") or ():
        if p.get("name") == text:
            return int(p["containerPort"])
    raise ProbeError(f"unable to find port {text!r} in container {container.get('name')}")


ExecFn = Callable[[list[str], float], Awaitable[tuple[int | None, str]]]
"""(argv, timeout) -> (exit code, or None on timeout; output)."""


async def run_probe(probe: Probe, pod_ip: str, container: Obj, exec_fn: ExecFn) -> tuple[bool, str]:
    """One probe attempt: (success, message for a failure)."""
    try:
        if probe.handler == "httpGet":
            return await _http_get(probe, pod_ip, container)
        if probe.handler == "tcpSocket":
            return await _tcp(probe, pod_ip, container)
        if probe.handler == "exec":
            argv = [str(a) for a in probe.action.get("command") or ()]
            code, output = await exec_fn(argv, probe.timeout)
            if code is None:
                return False, f"command {_go_quote(' '.join(argv))} timed out"
            if code != 0:
                return False, output.rstrip("\n") or f"command exited with code {code}"
            return True, ""
        return False, f"svcnet does not run {probe.handler or 'empty'} probes"
    except ProbeError as e:
        return False, str(e)


def _go_quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _dial_error(host: str, port: int, e: BaseException) -> str:
    if isinstance(e, TimeoutError):
        return f"dial tcp {host}:{port}: i/o timeout"
    if isinstance(e, ConnectionRefusedError):
        return f"dial tcp {host}:{port}: connect: connection refused"
    reason = getattr(e, "strerror", None) or str(e) or type(e).__name__
    return f"dial tcp {host}:{port}: connect: {reason.lower()}"


async def _tcp(probe: Probe, pod_ip: str, container: Obj) -> tuple[bool, str]:
    port = resolve_port(probe.action.get("port"), container)
    host = str(probe.action.get("host") or pod_ip)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), probe.timeout)
    except (OSError, TimeoutError) as e:
        return False, _dial_error(host, port, e)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True, ""


async def _http_get(probe: Probe, pod_ip: str, container: Obj) -> tuple[bool, str]:
    a = probe.action
    port = resolve_port(a.get("port"), container)
    host = str(a.get("host") or pod_ip)
    scheme = str(a.get("scheme") or "HTTP").lower()
    path = str(a.get("path") or "/")
    if not path.startswith("/"):
        path = "/" + path
    url = f"{scheme}://{host}:{port}{path}"
    headers = {"Host": f"{host}:{port}", "User-Agent": USER_AGENT, "Accept": "*/*"}
    for h in a.get("httpHeaders") or ():
        headers[str(h.get("name"))] = str(h.get("value", ""))
    headers["Connection"] = "close"
    ctx: ssl.SSLContext | None = None
    if scheme == "https":
        # The kubelet does not verify probe certificates.
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    request = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())

    async def exchange() -> int:
        try:
            reader, writer = await asyncio.open_connection(host, port, ssl=ctx)
        except OSError as e:
            raise _Dial(e) from None
        try:
            writer.write((request + "\r\n").encode("latin-1"))
            line = await reader.readline()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        parts = line.split()
        if len(parts) < 2 or not parts[1].isdigit():
            raise ValueError("malformed HTTP response " + repr(line.decode("latin-1")))
        return int(parts[1])

    try:
        code = await asyncio.wait_for(exchange(), probe.timeout)
    except _Dial as e:
        return False, f'Get "{url}": {_dial_error(host, port, e.error)}'
    except TimeoutError:
        return False, (
            f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting'
            " headers)"
        )
    except (OSError, ValueError) as e:
        return False, f'Get "{url}": {e}'
    if 200 <= code < 400:
        return True, ""
    return False, f"HTTP probe failed with statuscode: {code}"


class _Dial(Exception):
    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error
