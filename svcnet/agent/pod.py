"""One pod on this node: the kubelet's pod worker.

Each pod gets one ``PodWorker`` with its own event queue, so one pod's
events are handled in order and pods proceed independently (kubelet's
podWorkers, kopf's per-object workers). The worker:

1. schedules the pod here (`spec.nodeName`), takes an IP from the pod CIDR,
   writes its resolv.conf and hosts files;
2. runs the init containers one after another, each to a successful end
   (a failed one is retried with the back-off unless restartPolicy is Never,
   which fails the pod; a sidecar, `restartPolicy: Always`, only has to
   start, then keeps running beside the rest), then starts one
   ``ContainerRunner`` per container;
3. after every container change, writes the whole pod status at once;
4. on `metadata.deletionTimestamp`, stops the containers with the grace
   period (SIGTERM, then SIGKILL) and removes the object from the store; on a
   DELETED event (a forced delete), kills them at once.

The worker's own status writes come back to it as MODIFIED events; only a
deletion timestamp is acted upon, so they are harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from svcnet import events
from svcnet.agent import envvars, sandbox, volumes
from svcnet.agent.backoff import Backoff
from svcnet.agent.container import ContainerConfigError, ContainerRunner
from svcnet.agent.context import ACCEPT_POLL, NodeContext
from svcnet.agent.identity import Identity, IdentityError, for_container
from svcnet.agent.prepare import Made, Plan, container_paths, make_container_dirs
from svcnet.agent.process import LaunchSpec, Process
from svcnet.agent.status import SANDBOX_CONDITION, conditions, phase, pod_limits, qos_class
from svcnet.images import normalize
from svcnet.k8s import podview
from svcnet.k8s.endpointslices import ServiceSlices, SliceView
from svcnet.k8s.objects import Obj
from svcnet.k8s.timestamps import rfc3339
from svcnet.kernel import namespaces
from svcnet.kernel.cgroups import PodCgroup
from svcnet.nodeapi import NODE_NAME
from svcnet.registry import ApiError
from svcnet.store import Event

logger = logging.getLogger(__name__)


DEFAULT_GRACE = 30.0
HOST_IP = "127.0.0.1"
"""The node's address (status.hostIP), and a host-network pod's podIP."""
ENDPOINTS_WAIT = 1.0
MIN_GRACE_AFTER_HOOK = 2.0
"""kubelet's minimumGracePeriodInSeconds: what a container gets after its preStop hook
used up the grace period."""
"""At most this long between a deletion and SIGTERM while Endpoints still list the pod
(a Service whose endpoints nobody maintains must not hold deletions up)."""
"""How often the accept queues are looked at while they drain (a few ms at most)."""
KILL_WAIT = 2.0
"""After SIGKILL, how long to wait for the exit to be seen (it is immediate in practice)."""


class PodWorker:
    def __init__(self, node: NodeContext, pod: Obj) -> None:
        md = pod["metadata"]
        self._node = node
        self.namespace = str(md.get("namespace") or "default")
        self.name = str(md["name"])
        self.uid = str(md.get("uid") or "")
        self.pod = pod
        spec = pod.get("spec") or {}
        self.restart_policy = str(spec.get("restartPolicy") or "Always")
        self.host_network = bool(spec.get("hostNetwork"))
        """spec.hostNetwork: the node's address and network identity, its hostname too."""
        grace = spec.get("terminationGracePeriodSeconds")
        self.termination_grace = DEFAULT_GRACE if grace is None else float(grace)
        self.log_limit = node.settings.agent.log_bytes
        self.prober = node.prober
        self.ip = ""
        self.runners: list[ContainerRunner] = []
        self.init_runners: list[ContainerRunner] = []
        self.ephemeral_runners: list[ContainerRunner] = []
        """`kubectl debug`'s containers, added to the running pod, each run once."""
        self._sandbox_ready = False
        """The volumes are set up: containers, ephemeral ones included, may start."""
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._dir: Path | None = None
        self._resolv: Path | None = None
        self._hosts: Path | None = None
        self._start_time = time.time()
        self._sandbox_problem = ""
        self._terminating = False
        self._deadline: float | None = None
        """Loop time by which a deletion's containers must be gone; a later DELETE
        with a shorter grace period moves it closer."""
        self._grace_given = 0.0
        self._hurry: asyncio.Future[None] | None = None
        """Resolved when the deadline moved, to wake a termination waiting on the old one."""
        self._publish_pending = False
        self._events: set[str] = set()
        self._preparing: asyncio.Future[Made] | None = None
        """The preparer's answer to this pod's plan, until the worker took it."""
        self._prepared_cgroups: dict[str, PodCgroup] = {}
        """Containers' cgroups made ahead, until container_cgroup takes them."""
        self._oom_at_prepare: int | None = None
        """The pod cgroup's OOM kill count read as _prepare made it, until the
        first container start takes it (oom_baseline)."""
        self._dirs_made: set[tuple[str, int, int]] = set()
        """(container, uid, gid) whose directories _prepare made."""
        self._tasks: list[asyncio.Task[None]] = []
        self.cgroup: PodCgroup | None = None
        """The pod's cgroup (as root): every process of the pod, exec sessions included."""
        self.loopback_ip = ""
        """The pod's private stand-in for 127.0.0.1, with the socket hooks."""
        self.container_cgroups: dict[str, PodCgroup] = {}
        """Each container's cgroup, under the pod's (usage per container)."""
        self.volumes: volumes.PodVolumes | None = None
        """The pod's volumes (volumes.py): set up before any container starts."""

    @property
    def key(self) -> tuple[str, str]:
        return self.namespace, self.name

    def feed(self, ev: Event | None) -> None:
        """Called synchronously from the store subscription; None asks the worker to stop."""
        self._queue.put_nowait(ev)

    # --- the worker loop -----------------------------------------------------

    async def run(self) -> None:
        try:
            if await self._start():
                self._handle(self.pod)
            while True:
                ev = await self._queue.get()
                if ev is None:
                    await self.terminate(self._node.stop_grace, deleting=False)
                    return
                if ev.type == "DELETED":
                    await self.terminate(0, deleting=False)
                    return
                self.pod = ev.obj
                self._handle(ev.obj)
        finally:
            await self._cleanup()

    def _handle(self, pod: Obj) -> None:
        md = pod["metadata"]
        if not md.get("deletionTimestamp"):
            self._add_ephemeral(pod)
            return
        grace = md.get("deletionGracePeriodSeconds")
        if grace is None:
            grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
        grace = DEFAULT_GRACE if grace is None else float(grace)
        loop = asyncio.get_running_loop()
        if self._deadline is not None:
            # Already stopping: `kubectl delete --grace-period` may only shorten it,
            # counted from when the deletion began (as the API server counts it).
            began = self._deadline - self._grace_given
            if began + grace < self._deadline:
                self._deadline, self._grace_given = began + grace, grace
                if self._hurry is not None and not self._hurry.done():
                    self._hurry.set_result(None)
            return
        if self._terminating:
            return
        self._deadline = loop.time() + grace
        self._grace_given = grace
        self._tasks.append(
            self._node.tasks.spawn(self._delete(), name=f"pod-delete:{self.namespace}/{self.name}")
        )

    def _remaining(self) -> float:
        assert self._deadline is not None
        return max(self._deadline - asyncio.get_running_loop().time(), 0.0)

    async def _delete(self) -> None:
        await self._wait_out_of_endpoints(min(self._remaining(), ENDPOINTS_WAIT))
        if await self._pre_stop():
            # The kubelet gives the containers at least this long after a hook.
            loop = asyncio.get_running_loop()
            assert self._deadline is not None
            self._deadline = max(self._deadline, loop.time() + MIN_GRACE_AFTER_HOOK)
        await self._wait_accepted(min(self._remaining(), ENDPOINTS_WAIT))
        await self.terminate(self._remaining(), deleting=True)
        try:
            self._node.registry.delete("Pod", self.namespace, self.name, grace_period_seconds=0)
        except ApiError:
            pass  # already gone: a forced delete got there first

    async def _start(self) -> bool:
        spec = self.pod.get("spec") or {}
        preferred = str((self.pod.get("status") or {}).get("podIP") or "") or None
        try:
            # A host-network pod (`kubectl debug node/...`'s) has the node's address.
            self.ip = HOST_IP if self.host_network else self._node.ips.allocate(preferred)
        except LookupError as e:
            message = str(e)
            self._write(lambda st: _unschedulable(st, message))
            return False
        try:
            # The scheduler's binding: this one node takes every pod it sees.
            self.pod = self._node.registry.bind(self.namespace, self.name, NODE_NAME)
        except ApiError:
            return False  # deleted meanwhile: the DELETED event follows
        await self._prepare()
        self._make_cgroup()
        inits = spec.get("initContainers") or ()
        # What a failed init container gets: the pod's policy, except that an
        # init container never restarts once it succeeded (kubelet's rule).
        init_policy = "Never" if self.restart_policy == "Never" else "OnFailure"
        self.init_runners = [
            ContainerRunner(
                self,
                c,
                init=True,
                restart_policy="Always" if c.get("restartPolicy") == "Always" else init_policy,
                waiting="PodInitializing",
            )
            for c in inits
        ]
        waiting = "PodInitializing" if inits else "ContainerCreating"
        self.runners = [
            ContainerRunner(self, c, waiting=waiting) for c in spec.get("containers") or ()
        ]
        self.event(
            "Normal",
            "Scheduled",
            f"Successfully assigned {self.namespace}/{self.name} to {NODE_NAME}",
            component="default-scheduler",
        )
        self._publish()
        self.volumes = self._new_volumes()
        self.volumes.start(self._node.tasks, self._start_all)
        return True

    def _start_all(self) -> None:
        """Once the volumes are set up: the init containers, or the containers."""
        if self._terminating:
            return
        self._sandbox_ready = True
        # Ephemeral containers do not wait for init containers (the kubelet starts
        # them first, so a pod stuck in an init container can still be debugged).
        self._add_ephemeral(self.pod)
        if self.init_runners:
            self._tasks.append(
                self._node.tasks.spawn(
                    self._initialize(), name=f"pod-init:{self.namespace}/{self.name}"
                )
            )
        else:
            self._start_containers(self.runners)

    def _new_volumes(self) -> volumes.PodVolumes:
        assert self._dir is not None
        node = self._node
        try:
            who = for_container(self.pod, {}, node.identity, root=node.root)
        except IdentityError:
            who = node.identity
        psc = (self.pod.get("spec") or {}).get("securityContext") or {}
        fs_group = psc.get("fsGroup") if node.root else None
        owner = volumes.Owner(
            who.uid, who.gid, fs_group if isinstance(fs_group, int) else None, node.root
        )
        return volumes.PodVolumes(
            self,
            node.store,
            self.pod,
            self._dir,
            owner=owner,
            root=node.root,
            libc=node.libc.ns,
            mount_problem=node.mount_problem,
        )

    def volume_problem(self, message: str) -> None:
        self._sandbox_problem = message
        logger.warning("pod %s/%s: %s", self.namespace, self.name, message)
        self.changed()

    def _start_containers(self, runners: list[ContainerRunner]) -> None:
        for r in runners:
            self._tasks.append(
                self._node.tasks.spawn(
                    r.run(), name=f"container:{self.namespace}/{self.name}/{r.name}"
                )
            )

    async def _initialize(self) -> None:
        """Init containers in order, then the containers (computeInitContainerActions)."""
        for r in self.init_runners:
            if self._terminating:
                return
            self._start_containers([r])
            if r.restart_policy == "Always":
                # A sidecar: the next one waits for it to start, not to end.
                ended = self._tasks[-1]
                await asyncio.wait([r.started_once, ended], return_when=asyncio.FIRST_COMPLETED)
                if not r.started_once.done():
                    return
                continue
            await self._tasks[-1]
            if not r.completed:
                return  # stopped, or failed for good (Never): the pod stays as it is
        if not self._terminating:
            self._start_containers(self.runners)

    def _add_ephemeral(self, pod: Obj) -> None:
        """Start the ephemeral containers the pod's spec gained (the ephemeralcontainers
        subresource only adds them), in the pod's sandbox like any other container: its
        IP and private localhost, cgroup, resolv.conf and hostname, its own volumeMounts.
        They never restart."""
        if not self._sandbox_ready or self._terminating:
            return
        known = {r.name for r in self.ephemeral_runners}
        added = [
            c
            for c in (pod.get("spec") or {}).get("ephemeralContainers") or ()
            if isinstance(c, dict) and c.get("name") and c["name"] not in known
        ]
        for c in added:
            r = ContainerRunner(self, c, restart_policy="Never")
            self.ephemeral_runners.append(r)
            target = c.get("targetContainerName")
            if target:
                # Process namespace targeting cannot be honoured as asked: say how it differs.
                self.event(
                    "Warning",
                    "TargetNamespaceNotShared",
                    f'targetContainerName "{target}" of ephemeral container {r.name}: svcnet '
                    "runs containers without PID namespaces, so it sees every process of "
                    f"this machine, those of {target} included, with a filesystem view "
                    f"of its own",
                )
            self._start_containers([r])
        if added:
            self.changed()

    async def _prepare(self) -> None:
        """The pod's files, its cgroup and those of the containers it starts with,
        made off the loop by the agent's preparer (prepare.py): a thousand pods
        starting together made them one after another, and waited for that
        (issue 16)."""
        net = self._node.settings.network
        self._dir = self._node.pod_dir(self.namespace, self.name, self.uid)
        spec = self.pod.get("spec") or {}
        containers: list[tuple[str, Identity, bool]] = []
        for c in [*(spec.get("initContainers") or ()), *(spec.get("containers") or ())]:
            with contextlib.suppress(IdentityError):  # launch_spec reports it
                who = for_container(self.pod, c, self._node.identity, root=self._node.root)
                containers.append((str(c.get("name") or ""), who, bool(c.get("volumeMounts"))))
        plan = Plan(
            dir=self._dir,
            resolv=podview.resolv_conf(
                self.pod, net.cluster_domain, self._node.settings.kube_dns[0]
            ),
            hosts=sandbox.hosts_file(self.pod, self.ip, net.cluster_domain),
            owner=self._owner() if self._node.root else None,
            cgroups=self._node.cgroups,
            uid=self.uid,
            limits=pod_limits(self.pod),
            containers=containers,
        )
        self._preparing = self._node.preparer.submit(plan)
        # Not cancelled with this task: _cleanup waits for it and removes what it made.
        await asyncio.wait([self._preparing])
        self._take_prepared()

    def _take_prepared(self) -> None:
        fut, self._preparing = self._preparing, None
        if fut is None:
            return
        made = fut.result()
        self._resolv, self._hosts = made.resolv, made.hosts
        self.cgroup = made.cgroup
        self._oom_at_prepare = made.oom_kills
        self._prepared_cgroups = made.container_cgroups
        self._dirs_made.update(made.dirs)
        if made.cgroup_error is not None:
            self.event(
                "Warning", "FailedCgroup", f"cannot make the pod's cgroup: {made.cgroup_error}"
            )
        if made.files_error is not None:
            raise made.files_error

    def _make_cgroup(self) -> None:
        if self.host_network:
            return  # its processes keep this machine's network identity, as host processes
        if self._node.pod_maps is not None and self.cgroup is not None:
            try:
                self.loopback_ip = self._node.ips.allocate()
            except LookupError as e:
                self.event("Warning", "NetworkIdentity", f"no network identity of its own: {e}")
        elif self._node.network_problem:
            self.event("Warning", "NetworkIdentity", self._node.network_problem)

    def container_cgroup(self, name: str) -> PodCgroup | None:
        """The container's cgroup (made on first use) with the pod's network identity:
        binds to the wildcard land on the pod IP, localhost is the pod's own, its
        connections come from the pod IP (the hooks go by the cgroup a process is in)."""
        cg = self.container_cgroups.get(name)
        if cg is not None or self.cgroup is None:
            return cg
        cg = self._prepared_cgroups.pop(name, None)
        if cg is None:
            try:
                cg = self.cgroup.child(f"c-{name}")
            except OSError as e:
                self.event("Warning", "FailedCgroup", f"cannot make container {name}'s cgroup: {e}")
                return None
        self.container_cgroups[name] = cg
        maps = self._node.pod_maps
        if maps is not None and self.loopback_ip:
            try:
                maps.set_pod(cg.id, self.ip, self.loopback_ip)
            except OSError as e:
                self.event("Warning", "NetworkIdentity", f"no network identity of its own: {e}")
        return cg

    def port_collision(self) -> str:
        if self._node.pod_maps is None and self._node.network_problem:
            return (
                "a port it binds is already taken on this machine (EADDRINUSE): "
                + self._node.network_problem
            )
        return (
            "a port it binds is already taken (EADDRINUSE): another process of this pod, or "
            "one binding a v6-only [::] on this machine, holds it"
        )

    def oom_kills(self) -> int:
        return self.cgroup.oom_kills() if self.cgroup is not None else 0

    def oom_baseline(self) -> asyncio.Future[int]:
        """The count as a container starts, read on the executor (a cgroup v1 walk)
        but for the pod's first start, which takes the count _prepare read as it
        made the cgroup: nothing has run in it since."""
        loop = asyncio.get_running_loop()
        first, self._oom_at_prepare = self._oom_at_prepare, None
        if self.cgroup is None:
            first = 0
        if first is None:
            return loop.run_in_executor(self._node.preparer.thread, self.oom_kills)
        done: asyncio.Future[int] = loop.create_future()
        done.set_result(first)
        return done

    def _owner(self) -> Identity:
        """Whom the pod's files belong to: the user its processes run as (the pod's
        runAsUser, else the node's user), as a runtime chowns a container's dirs."""
        try:
            return for_container(self.pod, {}, self._node.identity, root=True)
        except IdentityError:
            return self._node.identity

    # --- stopping --------------------------------------------------------------

    def _in_endpoints(self) -> bool:
        """Whether some EndpointSlice still lists this pod as ready (new connections
        may reach it)."""
        slices = [
            SliceView.from_obj(s) for s in self._node.store.list("EndpointSlice", self.namespace)
        ]
        return ServiceSlices(tuple(slices)).routes_to(self.uid)

    async def _wait_out_of_endpoints(self, limit: float) -> None:
        """Endpoints first, then signals: wait (bounded) until no EndpointSlice lists
        the pod as ready.

        The EndpointSlice controller marks a pod with a deletionTimestamp not
        ready in the loop turn after the deletion, and the proxy follows slices at once,
        so this normally takes no time at all; it only orders the two.
        Kubernetes races them; svcnet does not, so no new connection reaches a
        process that is about to get SIGTERM.
        """
        if limit <= 0 or not self._in_endpoints():
            return
        gone = asyncio.Event()

        def check(ev: Event) -> None:
            if ev.kind == "EndpointSlice" and not self._in_endpoints():
                gone.set()

        unsubscribe = self._node.store.subscribe(check)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(gone.wait(), limit)
        finally:
            unsubscribe()

    async def _wait_accepted(self, limit: float) -> None:
        """Then, bounded, until the connections that reached the pod's listeners
        while it was still an endpoint have been accepted (kernel/tcptable.py),
        so that a program that stops accepting on SIGTERM finishes them
        instead of resetting them."""
        if limit <= 0 or not self.ip:
            return
        # A kernel counter gives nothing to wait on, so it is looked at, boundedly.
        for _ in range(max(1, int(limit / ACCEPT_POLL))):
            if not self._node.accept_queues.waiting({self.ip}):
                return
            await asyncio.sleep(ACCEPT_POLL)

    async def _pre_stop(self) -> bool:
        """Run the running containers' preStop hooks side by side, within the grace
        period (the kubelet's executePreStopHook); True if any ran."""
        hooked = [r for r in self.runners if r.has_pre_stop]
        limit = self._remaining()
        if not hooked or limit <= 0:
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(r.pre_stop(limit) for r in hooked)), limit)
        return True

    async def _wait_exits(self, procs: list[Process], grace: float, deleting: bool) -> None:
        """Until the processes are gone or the grace period is over (for a deletion,
        the deadline, which a shorter grace period may bring closer meanwhile)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + grace
        while True:
            pending = [p.done for p in procs if not p.done.done()]
            if deleting and self._deadline is not None:
                end = min(end, self._deadline)
            remaining = end - loop.time()
            if not pending or remaining <= 0:
                return
            self._hurry = loop.create_future()
            waiters: list[asyncio.Future[Any]] = [*pending, self._hurry]
            await asyncio.wait(waiters, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            self._hurry = None

    async def terminate(self, grace: float, *, deleting: bool) -> None:
        """Stop every container: SIGTERM to each group, SIGKILL after `grace` seconds."""
        first = not self._terminating
        self._terminating = True
        procs: list[Process] = []
        for r in [*self.runners, *self.init_runners, *self.ephemeral_runners]:
            p = r.stop(signal.SIGTERM if grace > 0 else signal.SIGKILL)
            if p is not None:
                procs.append(p)
                if deleting and first:
                    self.event("Normal", "Killing", f"Stopping container {r.name}")
        if procs:
            await self._wait_exits(procs, grace, deleting)
            left = [p for p in procs if not p.done.done()]
            for p in left:
                p.kill_group(signal.SIGKILL)
            if left:
                await asyncio.wait([p.done for p in left], timeout=KILL_WAIT)
        if self.cgroup is not None:
            # What the containers started and left behind (detached, double-forked).
            self.cgroup.kill()
        # Let the runners record the exits before the caller deletes or returns.
        runs = [t for t in self._tasks if not t.done() and t is not asyncio.current_task()]
        if runs:
            await asyncio.wait(runs, timeout=KILL_WAIT)

    async def _cleanup(self) -> None:
        if self._preparing is not None:
            # Cancelled while the preparer made the pod's cgroups: take them, so that the
            # pod cgroup's removal below (descendants first) removes them all.
            await asyncio.wait([self._preparing])
            with contextlib.suppress(OSError):
                self._take_prepared()
        for r in [*self.runners, *self.init_runners, *self.ephemeral_runners]:
            r.stop(signal.SIGKILL)
        current = asyncio.current_task()
        pending = [t for t in self._tasks if not t.done() and t is not current]
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.wait(pending, timeout=KILL_WAIT)
        if self._node.pod_maps is not None:
            for cg in self.container_cgroups.values():
                with contextlib.suppress(OSError):
                    self._node.pod_maps.remove_pod(cg.id)
        self.container_cgroups.clear()
        if self.cgroup is not None:
            with contextlib.suppress(OSError):
                self.cgroup.remove()
            self.cgroup = None
        if self.loopback_ip:
            self._node.ips.release(self.loopback_ip)
            self.loopback_ip = ""
        if self.ip and not self.host_network:
            self._node.ips.release(self.ip)
            self.ip = ""
        if self.volumes is not None:
            self.volumes.close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
        for name in self._events:
            try:
                self._node.registry.delete("Event", self.namespace, name)
            except ApiError:
                pass

    # --- PodHost: what containers ask of their pod -----------------------------

    def launch_spec(self, container: Obj) -> tuple[LaunchSpec, str]:
        image_name = str(container.get("image") or "")
        image = self._node.images.resolve(image_name)
        command = [str(a) for a in container.get("command") or ()]
        args = [str(a) for a in container.get("args") or ()]
        if image is None and not command:
            raise ContainerConfigError(
                "ErrImagePull",
                f'svcnet has no built-in image "{image_name}" and the container has no command;'
                f" map it under agent.images in a svcnet.yaml (svcnet apply -f it while svcnet"
                f" runs) or with svcnet up --image {normalize(image_name)}=COMMAND",
            )
        tty = bool(container.get("tty"))
        try:
            identity = for_container(self.pod, container, self._node.identity, root=self._node.root)
        except IdentityError as e:
            raise ContainerConfigError("CreateContainerConfigError", str(e)) from None
        for warning in identity.warnings:
            self.event("Warning", "RunAsUser", warning)
        home, tmp, work = self._container_dirs(str(container.get("name") or ""), identity)
        # TMPDIR rather than a private /tmp: the host's paths stay what they are (a
        # pod here shares the machine's filesystem), while what programs make for
        # themselves goes to the container's own directory.
        base = {
            "PATH": self._node.path,
            "HOME": str(home),
            "TMPDIR": str(tmp),
            **dict(image.env if image else ()),
        }
        try:
            links = self._links()
            env = envvars.container_env(
                self.pod,
                container,
                links,
                self.ip,
                tty=tty,
                lookup=self._lookup,
                base=base,
            )
        except envvars.EnvError as e:
            raise ContainerConfigError("CreateContainerConfigError", str(e)) from None
        try:
            mounts = self.volumes.mounts_for(container, env) if self.volumes else ()
        except volumes.MountRefused as e:
            raise ContainerConfigError("CreateContainerConfigError", str(e)) from None
        if image is not None:
            argv = image.argv(command, args)
            image_id = image.image_id
        else:
            argv = [*command, *args]
            image_id = f"svcnet://{image_name}"
        argv = [envvars.expand(a, env) for a in argv]
        if not argv:
            raise ContainerConfigError(
                "CreateContainerError", f'image "{image_name}" has no command to run'
            )
        cwd = str(container.get("workingDir") or (image and image.working_dir) or work)
        # A workingDir inside a volume exists only in the container's view.
        view_cwd = cwd if mounts and not os.path.isdir(cwd) else ""
        spec = LaunchSpec(
            argv=argv,
            env=env,
            cwd=str(work) if view_cwd else cwd,
            view_cwd=view_cwd,
            mounts=mounts,
            stdin=bool(container.get("stdin")),
            tty=tty,
            # A user command replaces the image's server, which then cannot report.
            signals_ready=image is not None and image.signals_ready and not command,
            identity=identity,
            container=str(container.get("name") or ""),
            # The image's own server, which the fork server can run (forkserver.py).
            script=image.script if image is not None and not command else "",
        )
        return spec, image_id

    def _container_dirs(self, name: str, identity: Identity) -> tuple[Path, Path, Path]:
        assert self._dir is not None
        if (name, identity.uid, identity.gid) in self._dirs_made:
            return container_paths(self._dir, name)
        return make_container_dirs(self._dir, name, identity)

    def _lookup(self, kind: str, name: str) -> Obj | None:
        return self._node.store.get(kind, self.namespace, name)

    def _links(self) -> Mapping[str, str]:
        """The Service link variables the pod's containers get (the kubelet's
        getServiceEnvVarMap): its namespace's Services unless enableServiceLinks
        is false, and the API server's `kubernetes` Service always."""
        store = self._node.store
        enabled = (self.pod.get("spec") or {}).get("enableServiceLinks", True) is not False

        def services() -> list[Obj]:
            out = list(store.list("Service", self.namespace)) if enabled else []
            if self.namespace != "default" or not enabled:
                kube = store.get("Service", "default", "kubernetes")
                if kube is not None:
                    out.append(kube)
            return out

        # A thousand pods starting beside 200 Services listed them a thousand times.
        version = (store.changes("Service", self.namespace), store.changes("Service", "default"))
        return self._node.links.of(self.namespace, enabled, services, version)

    def preexec(self, report_fd: int, spec: LaunchSpec) -> Callable[[], None]:
        pod_spec = self.pod.get("spec") or {}
        hostname = str(pod_spec.get("hostname") or self.name)[:63]
        if self.host_network:
            hostname = os.uname().nodename  # the node's UTS namespace, as hostNetwork shares it
        return sandbox.ChildSetup(
            libc=self._node.libc,
            parent_pid=os.getpid(),
            report_fd=report_fd,
            tty=spec.tty,
            hostname=hostname.encode(),
            resolv_path=bytes(self._resolv) if self._resolv else None,
            hosts_path=bytes(self._hosts) if self._hosts else None,
            identity=spec.identity,
            cgroup_procs=cg.procs_paths if (cg := self.container_cgroup(spec.container)) else (),
            mounts=spec.mounts,
            scratch=bytes(self._dir / "containers" / spec.container / "mnt") if self._dir else b"",
            cwd=(spec.view_cwd or spec.cwd).encode(),
        )

    async def start_process(self, spec: LaunchSpec) -> Process:
        if self._node.launcher is None:
            return Process.launch(spec, self.preexec, self.log_limit)
        return await self._node.launcher.start(spec, self.preexec, self.log_limit)

    def new_backoff(self) -> Backoff:
        initial, cap = self._node.backoff
        return Backoff(initial, cap)

    def sandbox_report(self, container: str, report: bytes) -> None:
        if report == namespaces.OK or self._sandbox_problem:
            return
        why = report.decode(errors="replace") or "no report from the container process"
        self._sandbox_problem = (
            f"container {container} sees the host's /etc/resolv.conf, /etc/hosts and hostname"
            f" ({why}); cluster names need the full form or the host resolver pointed at"
            " svcnet's DNS. Run svcnet as root or allow unprivileged user namespaces"
            " (sysctl kernel.unprivileged_userns_clone=1)"
        )
        logger.warning("pod %s/%s: %s", self.namespace, self.name, self._sandbox_problem)
        self.event("Warning", "HostNetworkView", self._sandbox_problem)

    def event(self, type_: str, reason: str, message: str, component: str = "kubelet") -> None:
        name = events.record(
            self._node.registry, self.pod, type_, reason, message, component, NODE_NAME
        )
        if name:
            self._events.add(name)

    def changed(self) -> None:
        # Coalesce the changes of one loop iteration (all containers starting) into one write.
        if not self._publish_pending:
            self._publish_pending = True
            asyncio.get_running_loop().call_soon(self._publish)

    # --- status --------------------------------------------------------------

    def _publish(self) -> None:
        self._publish_pending = False
        statuses = [r.status() for r in self.runners]
        init_statuses = [r.status() for r in self.init_runners]
        ephemeral_statuses = [_ephemeral_status(r.status()) for r in self.ephemeral_runners]
        sidecars = {r.name for r in self.init_runners if r.restart_policy == "Always"}
        pod_phase = phase(statuses, self.restart_policy, init_statuses, sidecars)
        now = rfc3339(time.time())

        def fn(obj: Obj) -> None:
            old = obj.get("status") or {}
            st: Obj = {
                "phase": pod_phase,
                "conditions": conditions(
                    statuses,
                    pod_phase,
                    old.get("conditions") or (),
                    now,
                    self._sandbox_problem,
                    init_statuses,
                    sidecars,
                ),
                "hostIP": HOST_IP,
                "hostIPs": [{"ip": HOST_IP}],
                "podIP": self.ip,
                "podIPs": [{"ip": self.ip}],
                "startTime": old.get("startTime") or rfc3339(self._start_time),
                "containerStatuses": statuses,
                "qosClass": qos_class(obj),
            }
            if init_statuses:
                st["initContainerStatuses"] = init_statuses
            if ephemeral_statuses:
                st["ephemeralContainerStatuses"] = ephemeral_statuses
            obj["status"] = st

        self._write(fn)

    def _write(self, fn: Callable[[Obj], None]) -> None:
        try:
            self._node.registry.update_status("Pod", self.namespace, self.name, fn)
        except ApiError:
            pass  # the pod is gone; its DELETED event is on its way to this worker

    # --- lookups for logs/attach ------------------------------------------------

    def runner(self, container: str) -> ContainerRunner | None:
        for r in [*self.runners, *self.init_runners, *self.ephemeral_runners]:
            if r.name == container:
                return r
        return None


def _ephemeral_status(st: Obj) -> Obj:
    """An ephemeral container is never ready, and the kubelet's prober, which sets
    `started`, does not look at it."""
    st["ready"] = False
    st.pop("started", None)
    return st


def _unschedulable(obj: Obj, message: str) -> None:
    obj["status"] = {
        "phase": "Pending",
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": message,
                "lastProbeTime": None,
                "lastTransitionTime": rfc3339(time.time()),
            }
        ],
    }


__all__ = ["SANDBOX_CONDITION", "PodWorker"]
