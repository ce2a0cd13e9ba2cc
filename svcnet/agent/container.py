"""One container of a pod across its restarts: the kubelet's per-container loop.

``ContainerRunner.run`` starts the process, waits for it to be started
(the image's ready line, or the spawn itself), waits for its exit, and then
applies the pod's restartPolicy with the kubelet's back-off. Everything the
API shows about the container (`containerStatuses[]`) is derived from the
runner's state by ``status()``; the runner only tells its pod that something
changed, and the pod writes one status for all containers.

Readiness: with no probes Kubernetes treats a container as ready as soon as
it is started, and so does ``_on_started`` (started = the image's ready line,
or the spawn). Probes (svcnet.agent.probes) run from the spawn on, one task
per container run: a startup probe gates ``started``, the other two probes
wait for ``started`` (the startup probe's success, else the ready line), a
readiness probe owns ``ready``, and a startup or liveness
probe reaching its failure threshold stops the process (SIGTERM, SIGKILL
after the grace period) like any other exit, so restartPolicy and the
back-off apply as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from typing import Any, Protocol

from svcnet._aio import TaskSet
from svcnet.agent import envvars, probes
from svcnet.agent.backoff import Backoff
from svcnet.agent.identity import Identity
from svcnet.agent.process import LaunchError, LaunchSpec, Process
from svcnet.k8s.durations import go_duration
from svcnet.k8s.objects import Obj
from svcnet.k8s.timestamps import rfc3339

PLEG_PERIOD = 1.0
"""The kubelet's PLEG relist period: how late it may see a container that started."""
CONFIG_RETRY = 1.0
PULL_BACKOFF_INITIAL, PULL_BACKOFF_MAX = 10.0, 300.0
"""The kubelet's image pull back-off: 10 s, doubling, at most 5 min."""
"""Seconds between attempts to configure a container whose ConfigMap, Secret or key is missing."""

logger = logging.getLogger(__name__)


class ContainerConfigError(Exception):
    """The container cannot be created as specified; it waits with this reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


class PodHost(Protocol):
    """What a container needs from its pod."""

    namespace: str
    name: str
    uid: str
    restart_policy: str
    log_limit: int
    ip: str
    termination_grace: float
    prober: probes.Prober
    """The node's prober: probe slots, loop-lag allowance, counters."""

    def launch_spec(self, container: Obj) -> tuple[LaunchSpec, str]:
        """The process to run and the imageID; raises ContainerConfigError."""
        ...

    def preexec(self, report_fd: int, spec: LaunchSpec) -> Callable[[], None]: ...

    async def start_process(self, spec: LaunchSpec) -> Process:
        """Start the container's process without blocking the loop; raises LaunchError."""
        ...

    def new_backoff(self) -> Backoff: ...

    def changed(self) -> None: ...

    def sandbox_report(self, container: str, report: bytes) -> None: ...

    def event(self, type_: str, reason: str, message: str) -> None: ...

    def oom_kills(self) -> int:
        """OOM kills counted in the pod's memory cgroup so far (0 without one)."""
        ...

    def oom_baseline(self) -> asyncio.Future[int]:
        """oom_kills() as a container starts, read off the loop."""
        ...

    def port_collision(self) -> str:
        """Why a port this container binds was taken, for its status and events."""
        ...


_IN_USE = (b"Address already in use", b"EADDRINUSE", b"address already in use")


def _port_in_use(proc: Process) -> bool:
    """Whether the container's last words were a bind failing with EADDRINUSE (Python,
    Node.js and Go each say it their way)."""
    tail = b"".join(r.data for r in proc.log.records()[-20:])[-4096:]
    return any(marker in tail for marker in _IN_USE)


def should_restart(policy: str, exit_code: int) -> bool:
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)


class ContainerRunner:
    def __init__(
        self,
        pod: PodHost,
        spec: Obj,
        *,
        init: bool = False,
        restart_policy: str | None = None,
        waiting: str = "ContainerCreating",
    ) -> None:
        self._pod = pod
        self.spec = spec
        self.init = init
        """An init container: `ready` means it completed (exit 0), as the kubelet reports."""
        self.restart_policy = restart_policy
        """Overrides the pod's restartPolicy (init containers follow their own rule)."""
        self.name = str(spec["name"])
        self.image = str(spec.get("image") or "")
        self.image_id = ""
        self.proc: Process | None = None
        self.previous: Process | None = None
        self.restart_count = 0
        self.started = False
        self.ready = False
        self._state: Obj = {"waiting": {"reason": waiting}}
        self.started_once: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        """Done the first time the container counts as started (a sidecar gates the next
        init container on it)."""
        self._last_state: Obj = {}
        self._container_id = ""
        self._stopping = asyncio.Event()
        self._backoff = pod.new_backoff()
        self.probes = probes.container_probes(spec)
        self._env = envvars.EMPTY
        """The current instance's environment, envvars.pack'ed."""
        self.identity: Identity | None = None
        """Who the current instance runs as: exec sessions and exec probes run as it too."""
        self._cwd = "/"
        self._launch: LaunchSpec | None = None
        """The current instance's launch (exec probes run with its mounts)."""
        self._image_ready = False
        self._startup_ok = "startupProbe" not in self.probes
        self._readiness_ok = False

    # --- the loop ------------------------------------------------------------

    async def _pull_backoff(self, e: ContainerConfigError, pulls: int) -> None:
        """An image svcnet cannot run, as the kubelet treats a failed pull:
        ErrImagePull, then ImagePullBackOff for a back-off that doubles from 10 s
        to 5 min, then another try. A mapping added while svcnet runs (the
        svcnet-images ConfigMap) is found at the next try."""
        # svcnet's reason up front, where the kubelet would name a registry's error.
        self._pod.event("Warning", "Failed", f"Error: {e}")
        self._pod.changed()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), CONFIG_RETRY)
        if self._stopping.is_set():
            return
        delay = min(PULL_BACKOFF_MAX, PULL_BACKOFF_INITIAL * 2 ** (pulls - 1))
        self._state = {
            "waiting": {
                "reason": "ImagePullBackOff",
                "message": f'Back-off pulling image "{self.image}": {e}',
            }
        }
        self._pod.event("Normal", "BackOff", f'Back-off pulling image "{self.image}"')
        self._pod.event("Warning", "Failed", "Error: ImagePullBackOff")
        self._pod.changed()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)

    async def run(self) -> None:
        said = ""
        pulls = 0
        while not self._stopping.is_set():
            try:
                spec, self.image_id = self._pod.launch_spec(self.spec)
            except ContainerConfigError as e:
                self._state = {"waiting": {"reason": e.reason, "message": e.message}}
                if e.reason == "ErrImagePull":
                    pulls += 1
                    await self._pull_backoff(e, pulls)
                    continue
                if e.message != said:
                    said = e.message
                    self._pod.event("Warning", "Failed", f"Error: {e.message}")
                self._pod.changed()
                # A ConfigMap or Secret may still come (apply order is the user's):
                # look again, as the kubelet's pod sync does.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), CONFIG_RETRY)
                continue
            if self.restart_count == 0 and not self._last_state:
                self._pod.event(
                    "Normal", "Pulled", f'Container image "{self.image}" already present on machine'
                )
            term = await self._run_once(spec)
            self.started = self.ready = False
            self._state = {"terminated": term}
            self._pod.changed()
            policy = self.restart_policy or self._pod.restart_policy
            if self._stopping.is_set() or not should_restart(policy, int(term["exitCode"])):
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
            proc = await self._pod.start_process(spec)
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
        if self._stopping.is_set():
            # Stopped while it was being started: it never gets to run.
            proc.kill_group(signal.SIGKILL)
        if self.proc is not None:
            self.previous = self.proc
        self.proc = proc
        self._env, self._cwd = envvars.pack(spec.env), spec.cwd
        # Kept packed: the environment, and with it the links' mapping (one per
        # version of the namespace's Services), go now, though run()'s frame holds
        # spec for as long as the container runs.
        spec.env = {}
        self._launch = spec
        self.identity = spec.identity
        self._image_ready = False
        self._startup_ok = "startupProbe" not in self.probes
        self._readiness_ok = False
        self._container_id = f"svcnet://{proc.pid}"
        self._pod.sandbox_report(self.name, proc.sandbox_report)
        self._state = {"running": {"startedAt": rfc3339(proc.started_at)}}
        self._pod.event("Normal", "Created", f"Created container {self.name}")
        self._pod.event("Normal", "Started", f"Started container {self.name}")
        # A built-in image says it started (its ready line) a moment after it runs:
        # "running" waits for it, up to a PLEG relist, so that one status write says
        # both, as the kubelet's one status for a container it found running does.
        late: asyncio.TimerHandle | None = None
        if proc.ready.done():
            self._pod.changed()
        else:
            late = asyncio.get_running_loop().call_later(PLEG_PERIOD, self._pod.changed)
        # The count so far; awaited at the exit.
        oom_before = self._pod.oom_baseline()
        prober = TaskSet()
        try:
            if self.probes:
                prober.spawn(
                    self._probe_all(proc),
                    name=f"probes:{self._pod.namespace}/{self._pod.name}/{self.name}",
                )
            either: list[asyncio.Future[Any]] = [proc.ready, proc.done]
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            if late is not None:
                late.cancel()
                self._pod.changed()
            if not proc.done.done():
                self._on_started()
            code = await proc.done
        finally:
            if late is not None:
                late.cancel()
            await prober.stop(grace=1.0)
        # The kubelet's rule: killed by the signal the OOM killer sends while the
        # pod's memory cgroup counted an OOM kill.
        oom = code == 128 + 9 and self._pod.oom_kills() > await oom_before
        term: Obj = {
            "exitCode": code,
            "reason": "OOMKilled" if oom else "Completed" if code == 0 else "Error",
            "startedAt": rfc3339(proc.started_at),
            "finishedAt": rfc3339(proc.finished_at or time.time()),
            "containerID": self._container_id,
        }
        if proc.signal is not None:
            term["signal"] = proc.signal
        if code != 0 and _port_in_use(proc):
            why = self._pod.port_collision()
            term["message"] = why
            self._pod.event("Warning", "PortInUse", f"container {self.name}: {why}")
        return term

    def _on_started(self) -> None:
        # Without probes, started means ready, as in Kubernetes without a readinessProbe.
        self._image_ready = True
        self._refresh()

    def _refresh(self) -> None:
        started = self._startup_ok and (self._image_ready or "startupProbe" in self.probes)
        if "readinessProbe" in self.probes:
            ready = started and self._readiness_ok
        else:
            ready = started and self._image_ready
        if (started, ready) != (self.started, self.ready):
            self.started, self.ready = started, ready
            if started and not self.started_once.done():
                self.started_once.set_result(None)
            self._pod.changed()

    # --- probes (the kubelet's prober workers) ---------------------------------

    async def _probe_all(self, proc: Process) -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        startup = self.probes.get("startupProbe")
        if startup is not None and not await self._probe_loop(proc, startup, t0):
            return
        if startup is None:
            # The kubelet runs no readiness or liveness probe before the container has
            # started (worker.go), and without a startup probe a built-in image has
            # started at its ready line: a probe sent before it bound its port would
            # be refused by a container that is not yet said to be running its server.
            either: list[asyncio.Future[Any]] = [proc.ready, proc.done]
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            if not proc.running:
                return
        rest = [p for k, p in self.probes.items() if k != "startupProbe"]
        if rest:
            await asyncio.gather(*(self._probe_loop(proc, p, t0) for p in rest))

    async def _probe_loop(self, proc: Process, probe: probes.Probe, t0: float) -> bool:
        """Run one probe until the process ends; for the startup probe, until it passes.
        Returns False when the probe killed the container."""
        loop = asyncio.get_running_loop()
        prober = self._pod.prober
        tracker = probes.ProbeTracker(probe)
        due = t0 + max(probe.initial_delay, prober.first_delay(probe.period))
        # A tcpSocket probe that succeeds and keeps succeeding is left to the prober's
        # ticks (hold_steady) until a tick is anything else.
        can_hold = probe.handler == "tcpSocket" and probe.period >= probes.BATCHED_PERIOD
        steady = False

        def alive() -> bool:
            return proc.running

        while True:
            handed: probes.Handed = None
            if steady:
                due, handed = await prober.hold_steady(probe, self._pod.ip, self.spec, due, alive)
            elif due > loop.time():
                await prober.sleep_until(due, probe.period)
            steady = False
            if not proc.running:
                if isinstance(handed, probes.Dialing):
                    handed.sock.close()
                return True
            ok: bool | None
            if isinstance(handed, tuple):
                ok, message = handed
            else:
                ok, message = await prober.run(
                    probe, self._pod.ip, self.spec, self._exec_for_probe, handed
                )
            due = probes.next_tick(due, probe.period, loop.time())
            if proc.exit_code is not None:  # it ended while being probed
                return True
            if ok is None:
                # Unknown: the loop, not the container, kept it from an answer. The
                # kubelet throws such a result away (no Event, no threshold counted).
                logger.debug(
                    "pod %s/%s container %s: %s probe thrown away: %s",
                    self._pod.namespace,
                    self._pod.name,
                    self.name,
                    probe.label,
                    message,
                )
                continue
            if not ok:
                self._pod.event("Warning", "Unhealthy", f"{probe.label} probe failed: {message}")
            changed = tracker.observe(ok)
            steady = can_hold and ok and tracker.result is True
            if not changed:
                continue
            if probe.kind == "readinessProbe":
                self._readiness_ok = bool(tracker.result)
                self._refresh()
            elif probe.kind == "startupProbe" and tracker.result:
                self._startup_ok = True
                self._refresh()
                return True
            elif tracker.result is False:
                await self._kill_for(proc, probe)
                return False

    async def _kill_for(self, proc: Process, probe: probes.Probe) -> None:
        verb = "liveness" if probe.kind == "livenessProbe" else "startup"
        self._pod.event(
            "Normal", "Killing", f"Container {self.name} failed {verb} probe, will be restarted"
        )
        grace = probe.termination_grace
        if grace is None:
            grace = self._pod.termination_grace
        proc.kill_group(signal.SIGTERM if grace > 0 else signal.SIGKILL)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(proc.done), max(grace, 0.001))
        proc.kill_group(signal.SIGKILL)

    def environment(self) -> dict[str, str]:
        """The current instance's environment, as it was started with."""
        return envvars.unpack(self._env)

    async def _exec_for_probe(self, argv: list[str], limit: float) -> tuple[int | None, str]:
        """An exec probe: the command in the container's environment and pod view."""
        spec = LaunchSpec(
            argv=argv,
            env=self.environment(),
            cwd=self._cwd,
            stdin=False,
            tty=False,
            signals_ready=False,
            identity=self.identity,
            container=self.name,
            mounts=self._launch.mounts if self._launch else (),
            view_cwd=self._launch.view_cwd if self._launch else "",
        )
        try:
            proc = Process.launch(spec, self._pod.preexec, 64 * 1024)
        except LaunchError as e:
            return 126, str(e)
        try:
            try:
                code = await asyncio.wait_for(asyncio.shield(proc.done), limit)
            except TimeoutError:
                return None, ""
            out = b"".join(r.data for r in proc.log.records())
            return code, out.decode(errors="replace")
        finally:
            if not proc.done.done():
                proc.kill_group(signal.SIGKILL)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(proc.done), 2.0)

    # --- lifecycle hooks (the kubelet's handler runner) -------------------------------

    @property
    def has_pre_stop(self) -> bool:
        """A preStop hook to run: the container has one and is running."""
        hook = (self.spec.get("lifecycle") or {}).get("preStop")
        return bool(hook) and self.proc is not None and self.proc.running

    async def pre_stop(self, limit: float) -> None:
        """The preStop hook, within `limit` seconds; a failure is a Warning event and
        the container is stopped all the same, as the kubelet does."""
        hook = (self.spec.get("lifecycle") or {}).get("preStop") or {}
        try:
            error = await asyncio.wait_for(self._run_hook(hook, limit), limit)
        except TimeoutError:
            error = f"PreStop hook for Container {self.name!r} did not finish in {limit:g}s"
        if error:
            logger.info("pod %s/%s: %s", self._pod.namespace, self._pod.name, error)
            # The kubelet keeps the handler's message out of the event: it may
            # carry secrets from the command line or the response.
            self._pod.event("Warning", "FailedPreStopHook", "PreStopHook failed")

    async def _run_hook(self, hook: Obj, limit: float) -> str:
        """Run one lifecycle handler; returns the kubelet's error text, or ""."""
        pod = f"{self._pod.name}_{self._pod.namespace}({self._pod.uid})"
        if hook.get("exec") is not None:
            argv = [str(a) for a in (hook["exec"] or {}).get("command") or ()]
            code, output = await self._exec_for_probe(argv, limit)
            if code == 0:
                return ""
            err = "timed out" if code is None else f"command {' '.join(argv)!r} exited with {code}"
            return (
                f"Exec lifecycle hook ({argv}) for Container {self.name!r} in Pod {pod!r} "
                f"failed - error: {err}, message: {output!r}"
            )
        if hook.get("httpGet") is not None:
            probe = probes.Probe.from_spec(
                "preStop", {"httpGet": hook["httpGet"], "timeoutSeconds": limit}
            )
            ok, message = await probes.run_probe(
                probe, self._pod.ip, self.spec, self._exec_for_probe
            )
            if ok:
                return ""
            path = (hook["httpGet"] or {}).get("path") or "/"
            return (
                f"HTTP lifecycle hook ({path}) for Container {self.name!r} in Pod {pod!r} "
                f"failed - error: {message}"
            )
        if hook.get("sleep") is not None:
            seconds = float((hook["sleep"] or {}).get("seconds") or 0)
            await asyncio.sleep(min(seconds, limit))
            return ""
        return f"Cannot run handler: unsupported lifecycle handler {sorted(hook)}"

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
    def completed(self) -> bool:
        """It ran to a successful end (what lets the next init container start)."""
        term = self._state.get("terminated")
        return term is not None and int(term.get("exitCode") or 0) == 0

    @property
    def waiting_reason(self) -> str | None:
        w = self._state.get("waiting")
        return str(w.get("reason")) if w is not None else None

    def status(self) -> Obj:
        # A completed init container reads ready; a sidecar's readiness is its own.
        ready = self.completed if self.init and self.restart_policy != "Always" else self.ready
        st: Obj = {
            "name": self.name,
            "image": self.image,
            "imageID": self.image_id,
            "ready": ready,
            "started": self.started,
            "restartCount": self.restart_count,
            "state": self._state,
            "lastState": self._last_state,
        }
        if self._container_id:
            st["containerID"] = self._container_id
        return st
