"""The daemon: one process that plays a whole one-node cluster.

Start-up order follows the data: the store and registry first, then the
controllers, the agent (kubelet), DNS and the proxy, which all react to store
events from the first object on, and the API server last. Only then are the
initial manifests applied, all-or-nothing, exactly as `svcnet apply` would.
The ready line is printed once every pod they led to is Ready.

Shutdown is the reverse, on SIGINT/SIGTERM, and is bounded: the API closes its
streams, the proxy and DNS close their sockets, the agent kills every process
group it started. Nothing the daemon started outlives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import ctypes
import gc
import ipaddress
import logging
import os
import resource
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from svcnet import credentials, events, state
from svcnet._aio import TaskSet
from svcnet.config import Settings, reachable
from svcnet.controllers import (
    Controller,
    CronJobController,
    DaemonSetController,
    DeploymentController,
    EndpointsController,
    GarbageCollector,
    HorizontalPodAutoscalerController,
    JobController,
    LoadBalancerController,
    NamespaceController,
    ReplicaSetController,
    StatefulSetController,
    VolumeController,
)
from svcnet.controllers.endpointslice import EndpointSliceController, ServiceEventRecorder
from svcnet.controllers.endpointslicemirroring import EndpointSliceMirroring
from svcnet.controllers.volumes import STANDARD_CLASS
from svcnet.images import MappingError
from svcnet.k8s import kinds
from svcnet.k8s.objects import Obj, pod_ready, with_last_applied
from svcnet.k8s.wellknown import (
    DEFAULT_INGRESS_CLASS,
    INGRESS_NGINX_CONTROLLER,
    SERVICE_NAME,
    SKIP_MIRROR,
)
from svcnet.kernel import bpf, sockhooks
from svcnet.kernel.sockhooks import SocketHooks
from svcnet.manifest import Manifest, ManifestError, load_paths
from svcnet.netpol import NetworkPolicyController
from svcnet.registry import ApiError, Registry
from svcnet.store import Event, Store, StoreError
from svcnet.store.store import key_of
from svcnet.store.wal import Wal

logger = logging.getLogger("svcnet")

SLOW_START = 10.0
"""Seconds after which `svcnet up` says which pods keep it from being ready."""
GC_THRESHOLDS = (50_000, 20, 10)
"""Allocations between young-generation collections (Python's default: 700), and
young collections between middle ones (default 10)."""


class StartupError(Exception):
    pass


def _volumes_root(settings: Settings) -> Path:
    """Where provisioned PersistentVolumes' directories live: the state directory."""
    base = Path(settings.state_dir) if settings.state_dir else Path(tempfile.gettempdir())
    return base / "volumes" if settings.state_dir else base / "svcnet-volumes"


def bootstrap(settings: Settings, registry: Registry) -> None:
    """What a fresh kubeadm cluster has before the user applies anything; what a
    restarted one kept is left as it is."""

    def ensure(obj: Obj) -> None:
        kind = registry.kind_of(obj)
        md = obj["metadata"]
        ns = str(md.get("namespace") or "") if kind.namespaced else ""
        if registry.store.get(kind.kind, ns, md["name"]) is None:
            registry.create(obj)

    for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
        ensure({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    ensure(copy.deepcopy(STANDARD_CLASS))
    net = settings.network
    dns_ip, dns_port = settings.kube_dns
    ensure(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "kubernetes",
                "namespace": "default",
                "labels": {"component": "apiserver", "provider": "kubernetes"},
            },
            "spec": {
                "clusterIP": net.kubernetes_service_ip,
                "ports": [{"name": "https", "port": 443, "targetPort": settings.api.port}],
            },
        }
    )
    ensure(
        {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {
                "name": "kubernetes",
                "namespace": "default",
                "labels": {SKIP_MIRROR: "true"},
            },
            "subsets": [
                {
                    "addresses": [{"ip": reachable(settings.api.host)}],
                    "ports": [{"name": "https", "port": settings.api.port, "protocol": "TCP"}],
                }
            ],
        }
    )
    # And its slice, as kube-apiserver's endpoint reconciler writes it (named after
    # the Service, no managed-by label): DNS and the proxy read slices, so without
    # it in-cluster clients could not reach the API through kubernetes.default.
    api_ip = reachable(settings.api.host)
    ensure(
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "kubernetes",
                "namespace": "default",
                "labels": {SERVICE_NAME: "kubernetes"},
            },
            "addressType": "IPv6" if ":" in api_ip else "IPv4",
            "endpoints": [{"addresses": [api_ip], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": settings.api.port, "protocol": "TCP"}],
        }
    )
    ensure(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "kube-dns",
                "namespace": "kube-system",
                "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"},
            },
            "spec": {
                "clusterIP": dns_ip,
                "selector": {"k8s-app": "kube-dns"},
                "ports": [
                    {"name": "dns", "port": dns_port, "protocol": "UDP"},
                    {"name": "dns-tcp", "port": dns_port, "protocol": "TCP"},
                ],
            },
        }
    )
    ensure(copy.deepcopy(INGRESS_CLASS))


INGRESS_CLASS: Obj = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "IngressClass",
    "metadata": {
        "name": "nginx",
        "labels": {
            "app.kubernetes.io/component": "controller",
            "app.kubernetes.io/instance": "ingress-nginx",
            "app.kubernetes.io/name": "ingress-nginx",
        },
        "annotations": {DEFAULT_INGRESS_CLASS: "true"},
    },
    "spec": {"controller": INGRESS_NGINX_CONTROLLER},
}
"""The class minikube's and kind's ingress-nginx setups install, the default one, so
Ingresses written for them (`ingressClassName: nginx`, or none) are served unchanged."""


def _in_namespace(obj: Obj) -> Obj:
    kind = kinds.for_api_version(str(obj.get("apiVersion")), str(obj.get("kind")))
    md = obj.get("metadata") or {}
    if kind is None or not kind.namespaced or md.get("namespace"):
        return obj
    return dict(obj, metadata=dict(md, namespace="default"))


def apply_all(registry: Registry, manifests: list[Manifest]) -> list[Obj]:
    """Dry-run every object, then apply them: a bad file applies nothing."""
    objs = [with_last_applied(_in_namespace(m.obj)) for m in manifests]  # as svcnet apply does
    # Documents in order, as kubectl applies them: what lives in a namespace the
    # same files create cannot be tried before that namespace exists.
    new_namespaces = {
        str(o["metadata"].get("name"))
        for o in objs
        if o.get("kind") == "Namespace"
        and registry.store.get("Namespace", "", o["metadata"].get("name")) is None
    }
    for m, obj in zip(manifests, objs, strict=True):
        if obj["metadata"].get("namespace") in new_namespaces:
            continue
        try:
            registry.apply(obj, dry_run=True)
        except ApiError as e:
            raise StartupError(describe_error(m, e)) from None
    out = []
    for m, obj in zip(manifests, objs, strict=True):
        try:
            out.append(registry.apply(obj)[0])
        except ApiError as e:
            raise StartupError(describe_error(m, e)) from None
    return out


def describe_error(m: Manifest, e: ApiError) -> str:
    where = m.where(e.causes[0].field) if e.causes else m.where()
    if e.code == 422:
        lines = [c.render() for c in e.causes]
        kind = m.kind
        head = f'The {kind} "{m.name}" is invalid: '
        body = lines[0] if len(lines) == 1 else "\n" + "\n".join(f"* {x}" for x in lines)
        return f"{where}: {head}{body}"
    return f'{where}: Error from server ({e.reason}): error when creating "{m.source}": {e}'


class Daemon:
    def __init__(
        self, settings: Settings, creds: credentials.Credentials, wal: Wal | None = None
    ) -> None:
        # The components are imported here rather than at the top so that a bad
        # settings file or manifest is reported before aiohttp and uvloop load.
        from svcnet.agent.agent import Agent
        from svcnet.api.server import ApiServer
        from svcnet.dns.server import DnsServer
        from svcnet.ingress.controller import IngressController
        from svcnet.proxy.proxier import Proxier

        s = self.settings = settings
        self.wal = wal
        self.store = Store(wal=wal)
        self.registry = Registry(settings, self.store)
        self.controllers: list[Controller] = [
            DeploymentController(self.registry),
            ReplicaSetController(self.registry),
            EndpointsController(self.registry),
            LoadBalancerController(self.registry, s.network.load_balancer_cidr),
            GarbageCollector(self.registry),
            NamespaceController(self.registry),
            StatefulSetController(self.registry),
            DaemonSetController(self.registry),
            JobController(self.registry),
            CronJobController(self.registry),
            VolumeController(self.registry, _volumes_root(s)),
            EndpointSliceController(self.registry),
            EndpointSliceMirroring(self.registry),
            ServiceEventRecorder(self.registry),
        ]
        self.event_reaper = events.EventReaper(self.registry)
        """kube-apiserver's --event-ttl."""
        self.hooks, self.network_problem = socket_hooks(s)
        self.agent = Agent(
            s,
            self.registry,
            subreaper=True,
            hooks=self.hooks,
            network_problem=self.network_problem,
        )
        # The node's usage figures, as metrics-server would serve them to the HPAs.
        self.controllers.append(
            HorizontalPodAutoscalerController(
                self.registry, self.agent.usage, sync_period=s.controllers.hpa_sync_period
            )
        )
        self.dns = DnsServer(s, self.registry.store)
        maps = self.hooks if s.proxy.socket_lb != "off" else None
        self.proxy = Proxier(s, self.registry.store, maps, self._record("kube-proxy"))
        self.ingress = IngressController(s, self.registry, self._record("nginx-ingress-controller"))
        # Policies are judged by the same hooks; network_problem's first clause is why not.
        self.netpol = NetworkPolicyController(
            self.registry.store,
            self.hooks,
            self.network_problem.partition(", so ")[0],
            self._record("svcnet-network-policy"),
        )
        self.api = ApiServer(
            s,
            self.registry.store,
            self.registry,
            self.agent,
            creds,
            stats={
                "dns": self.dns.stats,
                "proxy": self.proxy.stats,
                "probes": self.agent.prober.stats,
            },
        )
        self.components: list[Any] = []  # started, in order; stopped in reverse
        self.stopping = asyncio.Event()

    def _record(self, component: str) -> Callable[[Obj, str, str, str], None]:
        def record(obj: Obj, type_: str, reason: str, message: str) -> None:
            events.record(self.registry, obj, type_, reason, message, component)

        return record

    def restore(self, fresh: bool) -> int:
        """Put back what the last run kept (none with `fresh`); how many objects."""
        if self.wal is None:
            return 0
        if fresh:
            self.wal.path.unlink(missing_ok=True)
        kept = self.wal.load()
        # Namespaces first, so every restored object has one.
        kept.sort(key=lambda o: o.get("kind") != "Namespace")
        for obj in kept:
            try:
                self.store.restore(obj)
            except StoreError:
                logger.warning("not restored (a duplicate in the log): %s", key_of(obj))
        self.wal.open(list(self.store))
        return len(kept)

    async def start(self) -> list[Obj]:
        s = self.settings
        manifests = load_paths(s.manifests) if s.manifests else []
        bootstrap(s, self.registry)
        for c in self.controllers:
            c.start()
        self.event_reaper.start()
        if self.hooks is not None and s.proxy.socket_lb == "host":
            mount = self.agent.layout.v2_mount
            if mount is not None:
                # Host processes too: only this instance's Service addresses are touched.
                self.hooks.attach(str(mount))
        for comp in (self.netpol, self.agent, self.dns, self.proxy, self.ingress, self.api):
            await comp.start()
            self.components.append(comp)
        return apply_all(self.registry, manifests)

    async def stop(self) -> None:
        while self.components:
            comp = self.components.pop()
            try:
                await asyncio.wait_for(comp.stop(), timeout=5)
            except Exception:
                logger.exception("stopping %s failed", type(comp).__name__)
        for c in self.controllers:
            c.stop()
        self.event_reaper.stop()
        if self.hooks is not None:
            self.hooks.close()  # the links go with their fds: nothing stays attached
        if self.wal is not None:
            self.wal.close()

    def unready(self) -> list[str]:
        """What the ready line still waits for: workloads short of replicas, unready pods."""
        out = []
        for rs in self.store.list("ReplicaSet"):
            want = int(rs["spec"].get("replicas", 1))
            if int((rs.get("status") or {}).get("readyReplicas", 0)) < want:
                out.append(f"replicaset.apps/{rs['metadata']['name']}")
        for pod in self.store.list("Pod"):
            if not pod_ready(pod) and (pod.get("status") or {}).get("phase") not in (
                "Succeeded",
                "Failed",
            ):
                out.append(f"pod/{pod['metadata']['name']}{_waiting_reason(pod)}")
        return out

    async def wait_ready(self) -> None:
        changed = asyncio.Event()

        def on_event(ev: Event) -> None:
            changed.set()

        unsubscribe = self.store.subscribe(on_event)
        try:
            while self.unready():
                changed.clear()
                await changed.wait()
        finally:
            unsubscribe()

    def access_lines(self) -> list[str]:
        s = self.settings
        lines = [
            f"API server:  {self.api.url}  (svcnet get all; kubeconfig for kubectl: "
            f"{Path(s.state_dir) / credentials.KUBECONFIG})",
            f"Cluster DNS: {s.dns.host}:{self.dns_port()} and {':'.join(map(str, s.kube_dns))}  "
            f"(dig @{reachable(s.dns.host)}"
            f"{'' if self.dns_port() == 53 else f' -p {self.dns_port()}'}"
            " <svc>.<ns>)",
        ]
        if self.ingress.urls():
            lines.append(
                f"Ingress:     {' and '.join(self.ingress.urls())}  (kubectl get ingress; "
                f"curl --resolve <host>:{self.ingress.http_port}:{self.ingress.address} ...)"
            )
        for svc in self.store.list("Service"):
            spec = svc["spec"]
            if spec.get("type") not in ("NodePort", "LoadBalancer"):
                continue
            for p in spec.get("ports") or ():
                addrs = ", ".join(
                    f"[{a}]:{p['nodePort']}" if ":" in a else f"{a}:{p['nodePort']}"
                    for a in s.network.node_port_addresses
                )
                lines.append(
                    f"service/{svc['metadata']['name']} ({spec['type']}) "
                    f"{p['port']}/{p.get('protocol', 'TCP')} on {addrs}"
                )
        return lines

    def api_port(self) -> int:
        return int(getattr(self.api, "port", self.settings.api.port))

    def dns_port(self) -> int:
        addrs = getattr(self.dns, "addresses", None) or []
        for host, port in addrs:
            if host == self.settings.dns.host:
                return int(port)
        return self.settings.dns.port


def _waiting_reason(pod: Obj) -> str:
    for cs in (pod.get("status") or {}).get("containerStatuses") or ():
        w = (cs.get("state") or {}).get("waiting")
        if w and w.get("reason") not in (None, "ContainerCreating"):
            return f" ({cs['name']}: {w['reason']})"
    return ""


def socket_hooks(settings: Settings) -> tuple[SocketHooks | None, str]:
    """The eBPF socket hooks (loaded, not yet attached), or None and why not, in words a
    user can act on; the daemon says it once and each pod's events say it again."""
    consequence = (
        "pods share this machine's network identity (a second replica binding the same "
        "port fails with EADDRINUSE, localhost is shared, backends see 127.0.0.1 as the "
        "client) and reach Services through the userspace proxy"
    )
    if os.geteuid() != 0:
        return None, f"svcnet is not running as root, so {consequence}"
    reason = sockhooks.probe()
    if reason is not None:
        return None, f"the eBPF socket hooks cannot be used ({reason}), so {consequence}"
    hooks = SocketHooks()
    try:
        hooks.load()
    except (OSError, bpf.BpfError) as e:
        hooks.close()
        return None, f"the eBPF socket hooks did not load ({e}), so {consequence}"
    return hooks, ""


def api_names(settings: Settings) -> tuple[list[str], list[str]]:
    """What the API's certificate must name: loopback, the `kubernetes` Service's
    names and ClusterIP, and the API address when it is one."""
    extra = [settings.network.kubernetes_service_ip]
    host = reachable(settings.api.host)
    with contextlib.suppress(ValueError):
        ipaddress.ip_address(host)
        extra.append(host)
    return credentials.api_names(settings.network.cluster_domain, extra)


def raise_fd_limit() -> int:
    """Raise the soft descriptor limit to the hard one, as CoreDNS and HAProxy do at
    start: every proxied connection takes two, every pod a handful. Returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft != resource.RLIM_INFINITY and soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return int(soft)


async def run(settings: Settings, fresh: bool = False, companion: Sequence[str] = ()) -> int:
    t0 = time.monotonic()
    raise_fd_limit()
    path = Path(settings.state_dir) if settings.state_dir else None
    if path is None:
        path = state.default_dir(os.environ, settings.api.host, settings.api.port)
    settings.state_dir = str(path)
    statedir = state.StateDir(path, state.owner(os.environ))
    try:
        earlier = statedir.acquire()
    except (state.StateError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    try:
        return await _run(settings, statedir, earlier, fresh, t0, companion)
    finally:
        statedir.release()


async def _run(
    settings: Settings,
    statedir: state.StateDir,
    earlier: state.Earlier | None,
    fresh: bool,
    t0: float,
    companion: Sequence[str] = (),
) -> int:
    who = statedir.owner
    helper: asyncio.subprocess.Process | None = None
    try:
        creds = credentials.ensure(statedir, *api_names(settings))
    except (OSError, ValueError) as e:
        print(f"error: cannot make the API's credentials in {statedir.path}: {e}", file=sys.stderr)
        return 1
    try:
        daemon = Daemon(settings, creds, Wal(statedir.path / "objects.jsonl", (who.uid, who.gid)))
    except MappingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if earlier is not None:
        print(
            f"svcnet: the last run here (pid {earlier.pid}) did not stop cleanly",
            file=sys.stderr,
            flush=True,
        )
    restored = daemon.restore(fresh)
    if restored:
        print(
            f"svcnet: restored {restored} objects from {statedir.path} "
            "(svcnet up --fresh starts empty)",
            file=sys.stderr,
            flush=True,
        )
    tasks = TaskSet()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, daemon.stopping.set)
    try:
        try:
            applied = await daemon.start()
        except (StartupError, ManifestError, OSError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        _tune_gc()
        server = daemon.api.url
        statedir.write_private(
            credentials.KUBECONFIG,
            credentials.dump(credentials.kubeconfig(server, creds.ca_pem, creds.token)).encode(),
        )
        for note in [
            *daemon.agent.notes,
            daemon.network_problem,
            *daemon.ingress.notes,
            *daemon.netpol.notes,
        ]:
            if note:
                print(f"svcnet: {note}", file=sys.stderr, flush=True)
        waiter = tasks.spawn(daemon.wait_ready(), name="wait-ready")
        stop_waiter = tasks.spawn(daemon.stopping.wait(), name="wait-stop")
        done, _ = await asyncio.wait(
            {waiter, stop_waiter}, timeout=SLOW_START, return_when=asyncio.FIRST_COMPLETED
        )
        if not done:
            # Say what holds the ready line back (an unknown image, a crashing
            # container) instead of waiting in silence; keep serving meanwhile.
            print(
                f"svcnet: still waiting after {SLOW_START:.0f}s for: "
                + ", ".join(daemon.unready()),
                file=sys.stderr,
                flush=True,
            )
            done, _ = await asyncio.wait({waiter, stop_waiter}, return_when=asyncio.FIRST_COMPLETED)
        if waiter in done:
            names = ", ".join(
                f"{kinds.BY_KIND[o['kind']].singular}/{o['metadata']['name']}" for o in applied
            )
            if not names:
                if settings.manifests:
                    names = "no objects in the manifests"
                elif restored:
                    names = (
                        f"no manifests (no -f given and no config/ here); the {restored} "
                        "objects the last run kept"
                    )
                else:
                    names = (
                        "an empty cluster, kube-dns and the kubernetes Service only (no -f "
                        "given and no config/ here); add objects with svcnet apply -f or kubectl"
                    )
            print(f"svcnet ready in {time.monotonic() - t0:.2f}s: {names}", flush=True)
            for line in daemon.access_lines():
                print("  " + line, flush=True)
            if companion:
                env = dict(
                    os.environ,
                    SVCNET_SERVER=daemon.api.url,
                    **{state.STATE_DIR_ENV: str(statedir.path)},
                )
                helper = await asyncio.create_subprocess_exec(
                    *companion, env=env, preexec_fn=_die_with_parent
                )
        await daemon.stopping.wait()
        if helper is not None and helper.returncode is None:
            helper.terminate()
            try:
                await asyncio.wait_for(helper.wait(), 5)
            except TimeoutError:
                helper.kill()
                await helper.wait()
        await tasks.stop()
        print("svcnet stopping", file=sys.stderr, flush=True)
        return 0
    finally:
        await daemon.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _die_with_parent() -> None:
    # The companion goes with the daemon even after a SIGKILL of the daemon.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


PR_SET_PDEATHSIG = 1


def _tune_gc() -> None:
    """The collector stops re-walking what startup made (modules, the OpenAPI
    schemas: a few hundred thousand objects that live as long as the daemon), and
    collects the young generation less often. Ramping to a thousand pods, the
    collector's walks took a tenth of the loop's time (issue 16); what a request
    allocates dies by reference count long before a collection."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def serve(settings: Settings, fresh: bool = False, companion: Sequence[str] = ()) -> int:
    """`svcnet up`: run in the foreground until SIGINT/SIGTERM. `companion`: a
    command started once svcnet is ready and stopped with it (`svcnet up
    --watch` runs `svcnet apply --watch` so), with SVCNET_SERVER and
    SVCNET_STATE_DIR pointing at this cluster."""
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        import uvloop
    except ImportError:
        return asyncio.run(run(settings, fresh, companion))
    with contextlib.suppress(KeyboardInterrupt):
        return uvloop.run(run(settings, fresh, companion))
    return 130
