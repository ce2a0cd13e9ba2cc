"""One container of a pod across its restarts: the kubelet's per-container loop.

``ContainerRunner.run`` starts the process, waits for it to be started
(the image's ready line, or the spawn itself), waits for its exit, and then
applies the pod's restartPolicy with the kubelet's back-off. Everything the
API shows about the container (`containerStatuses[]`) is derived from the
runner's state by ``status()``; the runner only tells its pod that something
changed, and the pod writes one status for all containers.

Readiness: with no probes Kubernetes treats a container as ready as soon as
it is started, and so does ``_on_started``. Probes slot in there: a startup
probe would gate ``started``, a readiness probe would own ``ready``, and a
liveness probe failure would ``kill_group(SIGTERM)`` like any other exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable
from typing import Any, Protocol

from svcnet.agent.backoff import Backoff
from svcnet.agent.process import LaunchError, LaunchSpec, Process
from svcnet.agent.status import go_duration, rfc3339

Obj = dict[str, Any]


class ContainerConfigError(Exception):
    """The container cannot be created as specified; it waits with this reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class PodHost(Protocol):
    """What a container needs from its pod."""

    namespace: str
    name: str
    uid: str
    restart_policy: str
    log_limit: int

    def launch_spec(self, container: Obj) -> tuple[LaunchSpec, str]:
        """The process to run and the imageID; raises ContainerConfigError."""
        ...

    def preexec(self, report_fd: int, tty: bool) -> Callable[[], None]: ...

    def new_backoff(self) -> Backoff: ...

    def changed(self) -> None: ...

    def sandbox_report(self, container: str, report: bytes) -> None: ...

    def event(self, type_: str, reason: str, message: str) -> None: ...


def should_restart(policy: str, exit_code: int) -> bool:
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)


class ContainerRunner:
    def __init__(self, pod: PodHost, spec: Obj) -> None:
        self._pod = pod
        self.spec = spec
        self.name = str(spec["name"])
        self.image = str(spec.get("image") or "")
        self.image_id = ""
        self.proc: Process | None = None
        self.previous: Process | None = None
        self.restart_count = 0
        self.started = False
        self.ready = False
        self._state: Obj = {"waiting": {"reason": "ContainerCreating"}}
        self._last_state: Obj = {}
        self._container_id = ""
        self._stopping = asyncio.Event()
        self._backoff = pod.new_backoff()

    # --- the loop ------------------------------------------------------------

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                spec, self.image_id = self._pod.launch_spec(self.spec)
            except ContainerConfigError as e:
                self._state = {"waiting": {"reason": e.reason, "message": e.message}}
                self._pod.event("Warning", "Failed", f"Error: {e.reason}: {e.message}")
                self._pod.changed()
                return
            if self.restart_count == 0 and not self._last_state:
                self._pod.event(
                    "Normal", "Pulled", f'Container image "{self.image}" already present on machine'
                )
            term = await self._run_once(spec)
            self.started = self.ready = False
            self._state = {"terminated": term}
            self._pod.changed()
            if self._stopping.is_set() or not should_restart(
                self._pod.restart_policy, int(term["exitCode"])
            ):
                return
            self._last_state = {"terminated": term}
            delay = self._backoff.delay(time.monotonic())
            if delay > 0:
                self._state = {
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": f"back-off {go_duration(delay)} restarting failed container="
                        f"{self.name} pod={self._pod.name}_{self._pod.namespace}({self._pod.uid})",
                    }
                }
                self._pod.event(
                    "Warning",
                    "BackOff",
                    f"Back-off restarting failed container {self.name} in pod "
                    f"{self._pod.name}_{self._pod.namespace}({self._pod.uid})",
                )
                self._pod.changed()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                if self._stopping.is_set():
                    return
            self.restart_count += 1

    async def _run_once(self, spec: LaunchSpec) -> Obj:
        now = time.time()
        try:
            proc = Process.launch(spec, self._pod.preexec, self._pod.log_limit)
        except LaunchError as e:
            msg = f"failed to create containerd task: failed to start: {e}"
            self._pod.event("Warning", "Failed", f"Error: {msg}")
            return {
                "exitCode": 128,
                "reason": "StartError",
                "message": msg,
                "startedAt": rfc3339(now),
                "finishedAt": rfc3339(now),
            }
        if self.proc is not None:
            self.previous = self.proc
        self.proc = proc
        self._container_id = f"svcnet://{proc.pid}"
        self._pod.sandbox_report(self.name, proc.sandbox_report)
        self._state = {"running": {"startedAt": rfc3339(proc.started_at)}}
        self._pod.event("Normal", "Created", f"Created container {self.name}")
        self._pod.event("Normal", "Started", f"Started container {self.name}")
        self._pod.changed()
        either: list[asyncio.Future[Any]] = [proc.ready, proc.done]
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if not proc.done.done():
            self._on_started()
        code = await proc.done
        term: Obj = {
            "exitCode": code,
            "reason": "Completed" if code == 0 else "Error",
            "startedAt": rfc3339(proc.started_at),
            "finishedAt": rfc3339(proc.finished_at or time.time()),
            "containerID": self._container_id,
        }
        if proc.signal is not None:
            term["signal"] = proc.signal
        return term

    def _on_started(self) -> None:
        # No probes yet: started means ready, as in Kubernetes without a readinessProbe.
        self.started = True
        self.ready = True
        self._pod.changed()

    # --- control -------------------------------------------------------------

    def stop(self, sig: int = signal.SIGTERM) -> Process | None:
        """No more restarts; signal the running process. Returns it if it still runs."""
        self._stopping.set()
        if self.proc is not None and self.proc.running:
            self.proc.kill_group(sig)
            return self.proc
        return None

    # --- what the API shows --------------------------------------------------

    @property
    def waiting_reason(self) -> str | None:
        w = self._state.get("waiting")
        return str(w.get("reason")) if w is not None else None

    def status(self) -> Obj:
        st: Obj = {
            "name": self.name,
            "image": self.image,
            "imageID": self.image_id,
            "ready": self.ready,
            "started": self.started,
            "restartCount": self.restart_count,
            "state": self._state,
            "lastState": self._last_state,
        }
        if self._container_id:
            st["containerID"] = self._container_id
        return st
