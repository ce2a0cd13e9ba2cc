"""The node agent: svcnet's kubelet (and, on a one-node cluster, its scheduler).

The agent follows Pods in the store (an in-process informer: a synchronous
subscription that only enqueues) and hands each pod to its own ``PodWorker``.
It owns what pods share: the IP pool, the image registry, libc handles for
the child-side sandbox set-up, the state directory for per-pod files, and the
Events it records. It also serves the node API (``logs``, ``attach``, ``exec``) that
the API server calls, as the kubelet serves /containerLogs and /attach.

Shutdown: ``stop`` stops every pod at once with a short grace period (SIGTERM
to each container's process group, SIGKILL after ``stop_grace``), waits for
the exits to be seen, and removes the state it created. It does not write pod
status on the way out: the daemon is going away with the store.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from svcnet._aio import TaskSet
from svcnet.agent import envvars, node, portforward, volumes
from svcnet.agent.container import ContainerRunner
from svcnet.agent.context import NodeContext
from svcnet.agent.forkserver import ForkServer
from svcnet.agent.identity import node_identity
from svcnet.agent.ipam import IpPool
from svcnet.agent.logs import LogBuffer, render
from svcnet.agent.pod import KILL_WAIT, PodWorker
from svcnet.agent.prepare import Preparer
from svcnet.agent.probes import Prober
from svcnet.agent.process import Launcher, Process
from svcnet.agent.sandbox import Libc
from svcnet.agent.stdio import ProcessStdio
from svcnet.config import Settings
from svcnet.images import ImageRegistry, MappingError, builtin_scripts
from svcnet.k8s.objects import Obj
from svcnet.k8s.wellknown import IMAGES_CONFIGMAP, IMAGES_NAMESPACE
from svcnet.kernel import cgroups, namespaces
from svcnet.kernel.sockhooks import SocketHooks
from svcnet.nodeapi import NODE_NAME, Attachment, ContainerUsage, NodeApiError, PodUsage
from svcnet.registry import ApiError, Registry, imagemap
from svcnet.store import Event

logger = logging.getLogger(__name__)


PR_SET_CHILD_SUBREAPER = 36

USAGE_WINDOW = 15.0
"""Seconds of CPU history a usage figure covers (metrics-server's default resolution)."""

STOP_GRACE = 1.5
"""Grace period for pods when the daemon stops (stop() must end within ~3 s)."""

PREPARE_THREADS = 1
"""Threads for the blocking calls of pods' starts: OOM counts, and the pods' files
and cgroups where the preparer's helper is gone (prepare.py). Their Python holds
the interpreter lock between the system calls: with the loop's default six, the
loop waited for the lock 8-10% of the time while a thousand pods started, and the
API's answers slowed with it (400 creates took 9-11 s); with one, 2-3%."""


class Agent:
    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        *,
        backoff: tuple[float, float] = (10.0, 300.0),
        stop_grace: float = STOP_GRACE,
        subreaper: bool = False,
        hooks: SocketHooks | None = None,
        network_problem: str = "",
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.store = registry.store
        self.backoff = backoff
        """(initial, cap) of the restart back-off; tests shorten it."""
        self.stop_grace = stop_grace
        self.subreaper = subreaper
        """The daemon's agent owns its process: every child it ends up with is a pod's
        (tests that run agents inside pytest leave this off)."""
        self.tasks = TaskSet()
        self.images = ImageRegistry(settings.agent.images)
        self.ips = IpPool(settings.network.pod_cidr)
        self.libc = Libc()
        self.forkserver = ForkServer(builtin_scripts(), self.libc.prctl)
        """The zygote built-in images' containers are forked from (forkserver.py)."""
        self.launcher = Launcher(self.forkserver)
        self.preparer = Preparer(
            concurrent.futures.ThreadPoolExecutor(
                PREPARE_THREADS, thread_name_prefix="svcnet-prepare"
            ),
            self.libc.prctl,
        )
        self.layout = cgroups.discover()
        """What cgroups this machine offers pods (kernel/cgroups.py)."""
        self._workers: dict[tuple[str, str], PodWorker] = {}
        self._cpu_samples: dict[tuple[str, str, str], list[tuple[float, int]]] = {}
        self._cpu_last: dict[tuple[str, str, str], int] = {}
        self._running: dict[PodWorker, asyncio.Task[None]] = {}
        self._unsubscribe: Callable[[], None] | None = None
        self._state_root: Path | None = None
        self._own_state_root = False
        self._stopped = False
        self.prober = Prober()
        """Every pod's probes: slots, the loop-lag heartbeat, counters (probes.py)."""
        self._context = NodeContext(
            settings=settings,
            registry=registry,
            tasks=self.tasks,
            ips=self.ips,
            images=self.images,
            libc=self.libc,
            pod_dir=self.pod_dir,
            backoff=backoff,
            stop_grace=stop_grace,
            identity=node_identity(os.environ, os.geteuid(), os.getegid()),
            root=os.geteuid() == 0,
            cgroups=cgroups.CgroupTree(self.layout) if self.layout.bases else None,
            pod_maps=hooks,
            path=envvars.host_path(os.environ.get("PATH"), sys.prefix, sys.base_prefix),
            network_problem=network_problem,
            mount_problem=namespaces.probe(self.libc.ns),
            prober=self.prober,
            launcher=self.launcher,
            preparer=self.preparer,
        )
        self.hooks = hooks
        """The socket hooks, attached to the pods' cgroups at start (kernel/sockhooks.py)."""
        self.notes: list[str] = []
        """What start() found and did that the user should hear of (leftovers removed,
        what the sandbox lacks), for `svcnet up` to print."""

    # --- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        for left in cgroups.find_leftovers(self.layout):
            cgroups.reap(left)
            self.notes.append(
                f"removed {left.processes} processes and the cgroups of pods left by an "
                f"earlier svcnet (pid {left.pid}) that did not stop cleanly"
            )
        tree = self._context.cgroups
        if tree is not None:
            tree.create()
            self.notes += tree.warnings
            v2 = tree.dirs.get(cgroups.V2)
            if self.hooks is not None and v2 is not None:
                self.hooks.attach(str(v2))
        self.notes += self.layout.missing
        if self.subreaper:
            # Orphans of pods (a process that detached from its container) become this
            # process' children rather than init's, so stop() can still end them where
            # there are no cgroups to do it.
            self.libc.prctl(PR_SET_CHILD_SUBREAPER, 1)
        self._register_node()
        # Two interpreters starting: side by side, `svcnet up` waits for the slower.
        await asyncio.gather(self.forkserver.start(), self.preparer.start())
        if self.forkserver.problem:
            why = self.forkserver.problem
            self.notes.append(f"built-in images run as interpreters of their own: {why}")
        if self.preparer.problem:
            why = self.preparer.problem
            self.notes.append(f"pods' files and cgroups are made on a thread: {why}")
        configured = self.settings.state_dir
        if configured:
            self._state_root = Path(configured) / "pods"
            # What a run that did not stop cleanly left: its pods are gone.
            if volumes.unmount_under(self._state_root, self.libc.ns):
                self.notes.append("unmounted the emptyDir volumes an earlier svcnet left")
            shutil.rmtree(self._state_root, ignore_errors=True)
            self._state_root.mkdir(parents=True, exist_ok=True)
        else:
            self._state_root = Path(tempfile.mkdtemp(prefix="svcnet-agent-"))
            self._own_state_root = True
        self._unsubscribe = self.store.subscribe(self._on_event)
        mapping = self.store.get("ConfigMap", IMAGES_NAMESPACE, IMAGES_CONFIGMAP)
        if mapping is not None:
            self._on_images(mapping)
        for pod in self.store.list("Pod"):
            self._on_pod(pod)

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._unsubscribe is not None:
            self._unsubscribe()
        workers = list(self._running)
        self._workers.clear()
        for w in workers:
            w.feed(None)
        tasks = [self._running[w] for w in workers]
        if tasks:
            await asyncio.wait(tasks, timeout=self.stop_grace + KILL_WAIT)
        await self.tasks.stop(grace=1.0)
        await self.forkserver.stop()
        self.launcher.close()
        await self.preparer.stop()
        self.preparer.thread.shutdown(wait=True)
        if self._context.cgroups is not None:
            self._context.cgroups.remove()
        if self.subreaper:
            self._kill_orphans()
        if self._state_root is not None and self._own_state_root:
            shutil.rmtree(self._state_root, ignore_errors=True)

    def _register_node(self) -> None:
        """The kubelet registers its Node and posts its status (node.py)."""
        try:
            if self.store.get("Node", "", NODE_NAME) is None:
                self.registry.create(node.node_object())
            status = node.node_status(self.settings.state_dir)
            self.registry.update_status("Node", "", NODE_NAME, lambda n: n.update(status=status))
        except (ApiError, OSError) as e:
            logger.warning("cannot register the node %s: %s", NODE_NAME, e)

    def _kill_orphans(self) -> None:
        """SIGKILL what pods left behind that was reparented to us (the subreaper)."""
        me = str(os.getpid())
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rpartition(")")[2].split()
            if fields[1] == me and fields[0] != "Z":
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(entry), signal.SIGKILL)

    def pod_dir(self, namespace: str, name: str, uid: str) -> Path:
        assert self._state_root is not None, "Agent.start() first"
        return self._state_root / f"{namespace}_{name}_{uid[:8]}"

    # --- informer ----------------------------------------------------------------

    def _on_images(self, obj: Obj | None) -> None:
        """The svcnet-images ConfigMap changed: pods created from now on use it."""
        try:
            images = imagemap.read(obj) if obj is not None else {}
        except MappingError as e:
            # The registry refuses such versions; one restored from an older
            # svcnet's state may still be bad: keep what was there.
            logger.warning("%s/%s: %s", IMAGES_NAMESPACE, IMAGES_CONFIGMAP, e)
            return
        self.images.set_runtime(images)
        logger.info("image mappings from %s/%s: %s", IMAGES_NAMESPACE, IMAGES_CONFIGMAP,
                    ", ".join(sorted(images)) or "none")  # fmt: skip

    def _on_event(self, ev: Event) -> None:
        if ev.kind == "ConfigMap" and imagemap.is_images_configmap(ev.obj):
            self._on_images(None if ev.type == "DELETED" else ev.obj)
            return
        if ev.kind != "Pod" or self._stopped:
            return
        key = (ev.namespace or "default", ev.name)
        if ev.type == "DELETED":
            w = self._workers.get(key)
            if w is not None and w.uid == str(ev.obj["metadata"].get("uid") or ""):
                del self._workers[key]
                w.feed(ev)
            return
        w = self._workers.get(key)
        if w is not None and w.uid == str(ev.obj["metadata"].get("uid") or ""):
            w.feed(ev)
        else:
            self._on_pod(ev.obj)

    def _on_pod(self, pod: Obj) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        if node and node != NODE_NAME:
            return  # bound to another node: not ours to run
        w = PodWorker(self._context, pod)
        old = self._workers.get(w.key)
        if old is not None:
            old.feed(None)  # a new pod under the same name: the old one is gone
        self._workers[w.key] = w
        task = self.tasks.spawn(w.run(), name=f"pod:{w.namespace}/{w.name}")
        self._running[w] = task
        task.add_done_callback(functools.partial(self._worker_done, w))

    def _worker_done(self, w: PodWorker, _task: asyncio.Task[None]) -> None:
        self._running.pop(w, None)
        if self._workers.get(w.key) is w:
            del self._workers[w.key]

    # --- usage (the kubelet's summary API, for metrics.k8s.io) ----------------------

    def usage(self) -> list[PodUsage]:
        now = time.monotonic()
        out = []
        for (ns, name), w in list(self._workers.items()):
            containers = []
            for cname, cg in w.container_cgroups.items():
                cpu_ns, mem = cg.usage()
                if cpu_ns is None:
                    continue
                rate = self._cpu_rate((ns, name, cname), now, cpu_ns)
                containers.append(ContainerUsage(cname, rate, mem or 0))
            if containers:
                out.append(PodUsage(ns, name, time.time(), USAGE_WINDOW, tuple(containers)))
        return out

    def node_usage(self) -> ContainerUsage:
        now = time.monotonic()
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:]]
        busy = sum(ticks) - ticks[3] - (ticks[4] if len(ticks) > 4 else 0)  # idle, iowait
        cpu_ns = busy * 1_000_000_000 // os.sysconf("SC_CLK_TCK")
        mem: dict[str, int] = {}
        with open("/proc/meminfo") as f:
            for line in f:
                k, _, v = line.partition(":")
                mem[k] = int(v.split()[0]) * 1024
        working_set = mem.get("MemTotal", 0) - mem.get("MemAvailable", 0)
        return ContainerUsage(NODE_NAME, self._cpu_rate(("", "", ""), now, cpu_ns), working_set)

    def _cpu_rate(self, key: tuple[str, str, str], now: float, cpu_ns: int) -> int:
        """CPU use per second (nanocores) since the sample at least USAGE_WINDOW old, as
        metrics-server computes it from two of the kubelet's cumulative samples."""
        samples = self._cpu_samples.setdefault(key, [])
        samples.append((now, cpu_ns))
        while len(samples) > 2 and now - samples[1][0] >= USAGE_WINDOW:
            samples.pop(0)
        (t0, c0) = samples[0]
        if now - t0 < 0.05:
            return self._cpu_last.get(key, 0)
        rate = max(0, int((cpu_ns - c0) / (now - t0)))
        self._cpu_last[key] = rate
        return rate

    # --- node API ------------------------------------------------------------------

    def _runner(self, namespace: str, pod: str, container: str) -> ContainerRunner:
        w = self._workers.get((namespace, pod))
        if w is None:
            raise NodeApiError(f'pods "{pod}" not found', 404)
        if not container:
            if len(w.runners) == 1:
                return w.runners[0]
            names = " ".join(r.name for r in w.runners)
            raise NodeApiError(
                f"a container name must be specified for pod {pod}, choose one of: [{names}]"
            )
        r = w.runner(container)
        if r is None:
            raise NodeApiError(f"container {container} is not valid for pod {pod}")
        return r

    @staticmethod
    def _current(r: ContainerRunner, pod: str) -> Process:
        if r.proc is None:
            reason = r.waiting_reason or "ContainerCreating"
            if reason in ("ErrImagePull", "ImagePullBackOff"):
                reason = "image can't be pulled"
            raise NodeApiError(f'container "{r.name}" in pod "{pod}" is waiting to start: {reason}')
        return r.proc

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
        r = self._runner(namespace, pod, container)
        if previous:
            if r.previous is None:
                raise NodeApiError(
                    f'previous terminated container "{r.name}" in pod "{pod}" not found'
                )
            log = r.previous.log
        else:
            log = self._current(r, pod).log
        since_ns = time.time_ns() - since_seconds * 1_000_000_000 if since_seconds else None
        return _stream_log(log, follow, tail_lines, timestamps, since_ns)

    async def attach(
        self, namespace: str, pod: str, container: str, *, tty: bool
    ) -> ContainerAttachment:
        r = self._runner(namespace, pod, container)
        proc = self._current(r, pod)
        return ContainerAttachment(proc, stdin_once=bool(r.spec.get("stdinOnce")))

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
        from svcnet.agent import exec as exec_

        r = self._runner(namespace, pod, container)
        proc = self._current(r, pod)
        if not proc.running:
            raise NodeApiError(f'container not found ("{r.name}")')
        worker = self._workers.get((namespace, pod))
        cgroup = worker.container_cgroup(r.name) if worker is not None else None
        return exec_.start(
            proc.pid,
            command,
            stdin=stdin,
            tty=tty,
            container=r.name,
            libc=self.libc,
            identity=r.identity,
            cgroup_procs=cgroup.procs_paths if cgroup is not None else (),
            env=r.environment() if proc.environ_hidden else None,
        )

    async def port_forward(
        self, namespace: str, pod: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        w = self._workers.get((namespace, pod))
        if w is None:
            raise NodeApiError(f'pods "{pod}" not found', 404)
        if not w.ip or not any(r.proc is not None and r.proc.running for r in w.runners):
            raise NodeApiError(f'pod "{pod}" is not running')
        procs: tuple[bytes, ...] = ()
        if w.loopback_ip:
            name = next(r.name for r in w.runners if r.proc is not None and r.proc.running)
            cg = w.container_cgroup(name)
            procs = cg.procs_paths if cg is not None else ()
        return await portforward.dial(w.ip, port, cgroup_procs=procs)


async def _stream_log(
    log: LogBuffer, follow: bool, tail_lines: int | None, timestamps: bool, since_ns: int | None
) -> AsyncIterator[bytes]:
    recs = log.select(tail_lines, since_ns)
    at_line_start = True
    if recs:
        yield render(recs, timestamps)
        at_line_start = recs[-1].eol
    if not follow:
        return
    last = recs[-1].seq if recs else max((r.seq for r in log.records()), default=-1)
    async for batch in log.follow(last):
        yield render(batch, timestamps, at_line_start)
        at_line_start = batch[-1].eol


class ContainerAttachment(ProcessStdio):
    """`kubectl attach`: the container's stdio, with its output replayed from the start."""

    def __init__(self, proc: Process, *, stdin_once: bool) -> None:
        super().__init__(proc)
        self._stdin_once = stdin_once

    def _on_detach(self) -> None:
        if self._stdin_once:
            # stdinOnce: the container's stdin closes when its first attach ends.
            self._proc.close_stdin()
