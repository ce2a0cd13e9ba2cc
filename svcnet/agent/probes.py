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
  one ``initialDelaySeconds`` after the start (``next_tick``);
- startup or liveness reaching the failure threshold kills the container
  (SIGTERM, SIGKILL after the grace period); restartPolicy decides the rest.

This module is sans-process: ``run_probe`` does one check over sockets, and an
exec probe's process is started by the caller's ``exec_fn``. The container
runner owns the loop that ties results to `ready`, `started` and kills.

A daemon under pressure answers probes later, it does not declare healthy pods
unready (issue 16). The kubelet's probes run on goroutines a busy node still
schedules; svcnet's run on one event loop, which 1000 pods can keep busy for
longer than a timeoutSeconds. So the agent-wide ``Prober``:

- bounds the probes in flight (``MAX_IN_FLIGHT``); a probe waiting for a slot
  has not started, and its timeout has not either;
- times each probe from its own start (the connect, not the timer that woke
  the probe loop) and counts only the time the loop could have run: what the
  ``LoopLag`` heartbeat saw the loop stalled for inside the probe's window is
  not held against timeoutSeconds (``Budget``);
- asks the kernel before it calls a tcpSocket probe a timeout: a connect the
  kernel completed but the busy loop had not yet seen is a success;
- runs a tcpSocket probe that keeps succeeding from the ticks themselves
  (``hold_steady``): its loop wakes only for a tick that is anything else;
- throws a probe away (Unknown, as the kubelet throws away a prober error:
  no Event, no threshold counted) when, after ``UNDECIDED_AFTER`` times its
  timeout of wall time, the loop's stalls still left it less than its timeout.

A pod that refuses the connect still fails at once with the kubelet's message,
and one that accepts nothing still times out after timeoutSeconds of a
responsive loop. Periods are spread as the kubelet spreads them
(``first_delay``), and ticks a slow probe missed are dropped as a Go ticker
drops them (``next_tick``), so a late loop does not catch up in a burst.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import ipaddress
import math
import os
import random
import socket
import ssl
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from svcnet.k8s import version
from svcnet.k8s.objects import Obj

KINDS = ("startupProbe", "livenessProbe", "readinessProbe")
LABEL = {"startupProbe": "Startup", "livenessProbe": "Liveness", "readinessProbe": "Readiness"}
HANDLERS = ("httpGet", "tcpSocket", "exec", "grpc")
USER_AGENT = f"kube-probe/{version.MAJOR}.{version.MINOR}"

MAX_IN_FLIGHT = 64
"""Probes running at once across the agent; the rest wait for a slot, untimed."""
LAG_TICK = 0.02
"""How often the loop-lag heartbeat asks to run while probes are in flight."""
LAG_SLACK = 0.002
"""A heartbeat later than this counts as a stall (below it: timer granularity)."""
UNDECIDED_AFTER = 3.0
"""A probe the loop's stalls kept from having its timeout by this many timeouts of
wall time is thrown away as Unknown rather than failed."""
FINAL_LOOK = 0.05
"""Before a probe is called Unknown, the loop gets this long to deliver what
arrived while it was stalled."""

T = TypeVar("T")

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


def first_delay(period: float, agent_age: float, rng: random.Random) -> float:
    """The kubelet's spread (prober/worker.go, run): a worker started within one
    period of the kubelet's own start waits a random part of the period before its
    first probe, so the probes of pods started together do not run in lockstep."""
    return rng.random() * period if period > agent_age else 0.0


def next_tick(prev: float, period: float, now: float) -> float:
    """When the probe that was due at `prev` runs next. A Go ticker keeps its grid and
    drops the ticks a slow receiver missed, holding one: when the probe overran whole
    periods, the next run is the last missed tick (at once), not one per missed tick."""
    nxt = prev + period
    if nxt >= now or period <= 0:
        return nxt
    return prev + period * math.floor((now - prev) / period)


@dataclass
class Dialing:
    """A connect issued (`started`, loop time) and what the kernel said right after."""

    sock: socket.socket
    state: OSError | bool
    started: float


TICK_QUANTUM = 0.05
"""Probe wake-ups are gathered into slots this long (Ticker)."""
BATCHED_PERIOD = 1.0
"""Probes of at least this period (every one Kubernetes accepts) wake in slots."""


class Ticker:
    """Sleeps that end in batches: every sleeper due within one TICK_QUANTUM slot
    wakes on the slot's one timer. A thousand probes every 2 s each armed a timer
    and woke the loop on their own; in slots of 50 ms (5% of the shortest period
    Kubernetes allows) the loop wakes 20 times a second whatever their number."""

    def __init__(self, quantum: float = TICK_QUANTUM) -> None:
        self.quantum = quantum
        self._slots: dict[int, list[Callable[[], object]]] = {}

    def call_in_slot(self, when: float, fn: Callable[[], object]) -> None:
        """Call fn (which must not raise) on the timer of the slot loop time `when`
        falls in: at `when`, or at most one quantum later."""
        slot = math.ceil(when / self.quantum)
        fns = self._slots.get(slot)
        if fns is None:
            fns = self._slots[slot] = []
            asyncio.get_running_loop().call_at(slot * self.quantum, self._wake, slot)
        fns.append(fn)

    async def sleep_until(self, when: float) -> None:
        """Until loop time `when`, or at most one quantum later."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.call_in_slot(when, functools.partial(_settle, fut))
        await fut

    def _wake(self, slot: int) -> None:
        for fn in self._slots.pop(slot, ()):
            fn()


def _settle(fut: asyncio.Future[None]) -> None:
    if not fut.done():  # a cancelled sleeper's future is done already
        fut.set_result(None)


Handed = tuple[bool, str] | Dialing | None
"""What a steady probe hands back to its probe loop: the result of a tick, a connect
still under way, or None (the loop is to run the tick itself)."""


class _Steady:
    """A tcpSocket probe run from the Ticker's slot itself while it keeps succeeding
    at once (Prober.hold_steady)."""

    def __init__(
        self,
        prober: Prober,
        probe: Probe,
        pod_ip: str,
        container: Obj,
        due: float,
        alive: Callable[[], bool],
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.prober, self.probe, self.pod_ip, self.container = prober, probe, pod_ip, container
        self.due = due
        self.alive = alive
        self.fut: asyncio.Future[tuple[float, Handed]] = self.loop.create_future()

    def fire(self) -> None:
        if self.fut.done():  # the probe loop is gone (its task was cancelled)
            return
        if not self.alive():
            self.fut.set_result((self.due, None))
            return
        try:
            result = self.prober.dial_at_once(self.probe, self.pod_ip, self.container)
        except Exception as e:  # a bug: the probe loop raises it
            self.fut.set_exception(e)
            return
        if isinstance(result, tuple) and result[0]:
            self.due = next_tick(self.due, self.probe.period, self.loop.time())
            self.prober.ticker.call_in_slot(self.due, self.fire)
            return
        self.fut.set_result((self.due, result))


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


ExecFn = Callable[[list[str], float], Coroutine[Any, Any, tuple[int | None, str]]]
"""(argv, timeout) -> (exit code, or None on timeout; output)."""


class LoopLag:
    """How long the event loop could not run callbacks, summed since its creation.

    A heartbeat asks to run every ``tick`` seconds while someone holds it (``hold``);
    however late it runs beyond ``slack`` is time in which no timer, no socket and no
    probe of this loop could have been served. Idle, it does not wake the loop."""

    def __init__(self, tick: float = LAG_TICK, slack: float = LAG_SLACK) -> None:
        self.tick = tick
        self.slack = slack
        self.stalls = 0.0
        """Seconds of stall seen so far."""
        self.worst = 0.0
        """The longest single stall seen, in seconds."""
        self._holders = 0
        self._due = 0.0
        self._handle: asyncio.TimerHandle | None = None

    def hold(self) -> None:
        self._holders += 1
        if self._holders == 1:
            loop = asyncio.get_running_loop()
            self._due = loop.time() + self.tick
            self._handle = loop.call_at(self._due, self._beat)

    def release(self) -> None:
        self._holders -= 1
        if self._holders == 0 and self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _beat(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        late = now - self._due
        if late > self.slack:
            self.stalls += late
            self.worst = max(self.worst, late)
        self._due = now + self.tick
        self._handle = loop.call_at(self._due, self._beat)

    def stalled(self, now: float) -> float:
        """Stalls so far, with the one under way: a heartbeat overdue at `now`."""
        overdue = now - self._due
        if self._handle is None or overdue <= self.slack:
            return self.stalls
        return self.stalls + overdue


class Budget:
    """The time one probe has had: wall time since its start less the loop's stalls.

    Without a LoopLag (a lifecycle hook's request) it is plain wall time."""

    def __init__(self, timeout: float, lag: LoopLag | None) -> None:
        self.loop = asyncio.get_running_loop()
        self.timeout = timeout
        self.lag = lag
        self.start = self.loop.time()
        self._stall0 = lag.stalled(self.start) if lag is not None else 0.0

    def restart(self, at: float | None = None) -> None:
        """The probe's own start: now (its connect is issued), or loop time `at`."""
        self.start = self.loop.time() if at is None else at
        self._stall0 = self.lag.stalled(self.start) if self.lag is not None else 0.0

    def had(self) -> float:
        now = self.loop.time()
        stalled = self.lag.stalled(now) - self._stall0 if self.lag is not None else 0.0
        return now - self.start - stalled

    def wall(self) -> float:
        return self.loop.time() - self.start

    @property
    def give_up(self) -> float:
        """Wall time after which a probe the loop kept from its timeout is Unknown."""
        return self.timeout * UNDECIDED_AFTER if self.lag is not None else math.inf


class Undecided(Exception):
    """The loop's stalls left the probe less than its timeout: neither pass nor fail."""


async def _within(aw: Coroutine[Any, Any, T] | asyncio.Future[T], budget: Budget) -> T:
    """`aw`'s result, or TimeoutError once the probe has had its timeout (loop time
    it could run in), or Undecided when the wall clock ran out first."""
    # Referenced here until it is done: the finally below sees to that.
    task = aw if isinstance(aw, asyncio.Future) else budget.loop.create_task(aw, name="probe")
    looked = False
    # The heartbeat runs only while a probe waits on the loop: most loopback probes
    # never do, and arming a timer for each of them was most of an idle agent's work.
    if budget.lag is not None:
        budget.lag.hold()
    try:
        while True:
            left = budget.timeout - budget.had()
            if left <= 0:
                raise TimeoutError
            wall_left = budget.give_up - budget.wall()
            if wall_left <= 0:
                if looked:
                    raise Undecided
                # Out of wall time, maybe just after a stall: what arrived meanwhile
                # needs a few loop iterations to reach the probe. Let it have them.
                looked, wall_left = True, FINAL_LOOK
            done, _ = await asyncio.wait({task}, timeout=min(left, wall_left))
            if done:
                return task.result()
    finally:
        if budget.lag is not None:
            budget.lag.release()
        if not task.done():
            task.cancel()
            # wait() neither raises the task's exception nor swallows our own cancel.
            await asyncio.wait({task})


async def run_probe(
    probe: Probe,
    pod_ip: str,
    container: Obj,
    exec_fn: ExecFn,
    lag: LoopLag | None = None,
    dialing: Dialing | None = None,
) -> tuple[bool | None, str]:
    """One probe attempt: (success, message for a failure). With `lag`, a probe the
    loop's stalls kept from its timeout is (None, why): Unknown, to be thrown away.
    `dialing`: a tcpSocket probe's connect, issued already."""
    budget = Budget(probe.timeout, lag)
    try:
        if probe.handler == "httpGet":
            return await _http_get(probe, pod_ip, container, budget)
        if probe.handler == "tcpSocket":
            return await _tcp(probe, pod_ip, container, budget, dialing)
        if probe.handler == "exec":
            argv = [str(a) for a in probe.action.get("command") or ()]
            # exec_fn's own limit is the wall-clock bound; the budget decides the timeout.
            limit = budget.give_up if lag is not None else probe.timeout
            try:
                code, output = await _within(exec_fn(argv, limit), budget)
            except TimeoutError:
                code, output = None, ""
            if code is None:
                if budget.had() < probe.timeout:
                    raise Undecided
                return False, f"command {_go_quote(' '.join(argv))} timed out"
            if code != 0:
                return False, output.rstrip("\n") or f"command exited with code {code}"
            return True, ""
        return False, f"svcnet does not run {probe.handler or 'empty'} probes"
    except ProbeError as e:
        return False, str(e)
    except Undecided:
        return None, (
            f"had {max(budget.had(), 0.0):.3f}s of its {probe.timeout:g}s timeout in"
            f" {budget.wall():.3f}s: the loop was stalled"
        )


class Prober:
    """The agent's prober: probe slots, the loop-lag heartbeat, the kubelet's spread,
    and counters (the kubelet's prober_probe_total, summed over pods)."""

    def __init__(
        self,
        in_flight: int = MAX_IN_FLIGHT,
        *,
        lag: LoopLag | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.limit = in_flight
        self._slots = asyncio.Semaphore(in_flight)
        self.lag = lag or LoopLag()
        self._rng = rng or random.Random()
        self.started = time.monotonic()
        self.ticker = Ticker()
        """When the agent started (the spread applies within one period of it)."""
        self.results: dict[str, dict[str, int]] = {}
        """probe type (Readiness...) -> result (successful, failed, unknown) -> count."""
        self.running = 0
        self.waiting = 0
        self.most_running = 0

    def first_delay(self, period: float) -> float:
        return first_delay(period, time.monotonic() - self.started, self._rng)

    async def sleep_until(self, when: float, period: float) -> None:
        """A probe's wait for its next tick (loop time `when`): in the Ticker's slots
        for the periods Kubernetes accepts, exactly for the shorter ones tests use."""
        if period >= BATCHED_PERIOD:
            await self.ticker.sleep_until(when)
            return
        delay = when - asyncio.get_running_loop().time()
        if delay > 0:
            await asyncio.sleep(delay)

    def dial_at_once(
        self, probe: Probe, pod_ip: str, container: Obj
    ) -> tuple[bool, str] | Dialing | None:
        """A tcpSocket probe started now if a slot is free, so that it need not wait
        for one: its result, counted, when the kernel gave it within the connect
        (on loopback it usually does); else the connect under way; None when the
        timed path is to do it all (no free slot, a name to look up, an unknown
        port). A thousand pods probed every 2 s spent most of an idle daemon's
        Python on the trip through the loop this saves (issue 16)."""
        if self._slots.locked():
            return None
        result = _dial_at_once(probe, pod_ip, container)
        if isinstance(result, tuple):
            self.count(probe, result[0])
        return result

    async def hold_steady(
        self, probe: Probe, pod_ip: str, container: Obj, due: float, alive: Callable[[], bool]
    ) -> tuple[float, Handed]:
        """Run a tcpSocket probe from its ticks' slots while it succeeds at once,
        from tick `due` on, counting each success; return at the first tick that is
        anything else, with that tick and what it handed back. A steady probe's
        success changes nothing but its count, and a thousand of them woke as many
        probe loops every period: most of an idle daemon's Python (issue 16). The
        loop gets the tick back when `alive()` says the container ended, or when
        the probe would have to wait for a slot."""
        steady = _Steady(self, probe, pod_ip, container, due, alive)
        self.ticker.call_in_slot(due, steady.fire)
        return await steady.fut

    async def run(
        self,
        probe: Probe,
        pod_ip: str,
        container: Obj,
        exec_fn: ExecFn,
        dialing: Dialing | None = None,
    ) -> tuple[bool | None, str]:
        """One probe, counted; `dialing`: its connect, issued already."""
        if dialing is None and probe.handler == "tcpSocket":
            at_once = self.dial_at_once(probe, pod_ip, container)
            if isinstance(at_once, tuple):
                return at_once
            dialing = at_once
        self.waiting += 1
        try:
            await self._slots.acquire()
        except BaseException:
            if dialing is not None:
                dialing.sock.close()
            raise
        finally:
            self.waiting -= 1
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            ok, message = await run_probe(probe, pod_ip, container, exec_fn, self.lag, dialing)
        finally:
            self.running -= 1
            self._slots.release()
        self.count(probe, ok)
        return ok, message

    def count(self, probe: Probe, ok: bool | None) -> None:
        result = "unknown" if ok is None else "successful" if ok else "failed"
        counts = self.results.setdefault(probe.label, {})
        counts[result] = counts.get(result, 0) + 1

    def failures(self) -> int:
        return sum(c.get("failed", 0) for c in self.results.values())

    def stats(self) -> dict[str, Any]:
        return {
            "results": {k: dict(v) for k, v in self.results.items()},
            "failed": self.failures(),
            "unknown": sum(c.get("unknown", 0) for c in self.results.values()),
            "running": self.running,
            "waiting": self.waiting,
            "mostRunning": self.most_running,
            "limit": self.limit,
            "loopStallSeconds": round(self.lag.stalls, 3),
            "loopWorstStallSeconds": round(self.lag.worst, 3),
        }


def _go_quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _dial_error(host: str, port: int, e: BaseException) -> str:
    if isinstance(e, TimeoutError):
        return f"dial tcp {host}:{port}: i/o timeout"
    if isinstance(e, ConnectionRefusedError):
        return f"dial tcp {host}:{port}: connect: connection refused"
    reason = getattr(e, "strerror", None) or str(e) or type(e).__name__
    return f"dial tcp {host}:{port}: connect: {reason.lower()}"


@functools.lru_cache(maxsize=4096)
def _sockaddr(host: str, port: int) -> tuple[socket.AddressFamily, tuple[Any, ...]] | None:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if ip.version == 6:
        return socket.AF_INET6, (host, port, 0, 0)
    return socket.AF_INET, (host, port)


def _os_error(code: int) -> OSError:
    if code == errno.ECONNREFUSED:
        return ConnectionRefusedError(code, os.strerror(code))
    return OSError(code, os.strerror(code))


def _connect_state(sock: socket.socket) -> OSError | bool:
    """The kernel's word on a non-blocking connect: True (established), False (still
    under way) or the error it ended with."""
    try:
        sock.getpeername()
    except OSError as e:
        if e.errno != errno.ENOTCONN:
            return e
    else:
        return True
    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    return _os_error(err) if err else False


def _connect(addr: tuple[socket.AddressFamily, tuple[Any, ...]], started: float) -> Dialing:
    # Non-blocking from the start: no ioctl per probe (a thousand pods probe
    # every few seconds each).
    sock = socket.socket(addr[0], socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
    try:
        code = sock.connect_ex(addr[1])
        if code not in (0, errno.EINPROGRESS, errno.EAGAIN):
            return Dialing(sock, _os_error(code), started)
        # On loopback the handshake is usually over already: no loop iteration needed.
        return Dialing(sock, True if code == 0 else _connect_state(sock), started)
    except BaseException:
        sock.close()
        raise


def _target(probe: Probe, pod_ip: str, container: Obj) -> tuple[str, int]:
    """(host, port) a tcpSocket or httpGet probe dials: its host, else the pod's IP."""
    return str(probe.action.get("host") or pod_ip), resolve_port(
        probe.action.get("port"), container
    )


def _dial_at_once(probe: Probe, pod_ip: str, container: Obj) -> tuple[bool, str] | Dialing | None:
    """A tcpSocket probe's connect, issued now: its result when the kernel has given
    it already, the connect under way otherwise, None when it needs a name looked
    up or its port cannot be found (the full path says so)."""
    try:
        host, port = _target(probe, pod_ip, container)
    except ProbeError:
        return None
    addr = _sockaddr(host, port)
    if addr is None:
        return None
    try:
        dialing = _connect(addr, asyncio.get_running_loop().time())
    except OSError as e:  # the socket itself (out of descriptors, say), as _tcp says it
        return False, _dial_error(host, port, e)
    if dialing.state is True:
        dialing.sock.close()
        return True, ""
    if isinstance(dialing.state, OSError):
        dialing.sock.close()
        return False, _dial_error(host, port, dialing.state)
    return dialing


async def _dial(
    host: str, port: int, budget: Budget, dialing: Dialing | None = None
) -> socket.socket:
    """A connected non-blocking socket, timed from the connect; raises the dial's
    OSError, TimeoutError or Undecided. `dialing`: the connect, issued already."""
    loop = budget.loop
    if dialing is None:
        addr = _sockaddr(host, port)
        if addr is None:  # a name: the lookup is bounded by the probe's time too, as in Go
            infos = await _within(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), budget)
            if not infos:
                raise OSError(errno.EHOSTUNREACH, f"lookup {host}: no such host")
            family, _, _, _, sa = infos[0]
            addr = family, sa
        # The probe's own start: whatever kept the loop from getting here is not its time.
        budget.restart()
        dialing = _connect(addr, budget.start)
    else:
        budget.restart(dialing.started)
    sock, state = dialing.sock, dialing.state
    try:
        if state is False:
            writable: asyncio.Future[None] = loop.create_future()
            fd = sock.fileno()

            def on_writable() -> None:
                if not writable.done():
                    writable.set_result(None)

            loop.add_writer(fd, on_writable)
            try:
                await _within(writable, budget)
            except (TimeoutError, Undecided):
                # The kernel may have completed it while the loop was too busy to look.
                if _connect_state(sock) is not True:
                    raise
            finally:
                loop.remove_writer(fd)
            state = _connect_state(sock)
        if isinstance(state, OSError):
            raise state
        if state is False:  # writable yet not connected: not seen on Linux
            raise TimeoutError
    except BaseException:
        sock.close()
        raise
    return sock


async def _tcp(
    probe: Probe, pod_ip: str, container: Obj, budget: Budget, dialing: Dialing | None = None
) -> tuple[bool, str]:
    host, port = _target(probe, pod_ip, container)
    try:
        sock = await _dial(host, port, budget, dialing)
    except (OSError, TimeoutError) as e:
        return False, _dial_error(host, port, e)
    sock.close()
    return True, ""


async def _http_get(probe: Probe, pod_ip: str, container: Obj, budget: Budget) -> tuple[bool, str]:
    a = probe.action
    host, port = _target(probe, pod_ip, container)
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
            sock = await _dial(host, port, budget)
        except OSError as e:
            raise _Dial(e) from None
        try:
            reader, writer = await asyncio.open_connection(
                sock=sock, ssl=ctx, server_hostname=host if ctx is not None else None
            )
        except BaseException:
            sock.close()
            raise
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
        code = await _within(exchange(), budget)
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
