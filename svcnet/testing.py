"""Helpers for tests that run svcnet itself (its own suite, benchmarks, and
users' integration tests that start a `svcnet up` of their own)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import dnslib

from svcnet import credentials, state
from svcnet.cli import apply as apply_cli
from svcnet.cli.client import ApiStatusError, Client, status_from_response
from svcnet.config import Settings
from svcnet.config import load as load_settings
from svcnet.credentials import Credentials
from svcnet.k8s import kinds
from svcnet.k8s.kinds import Kind
from svcnet.k8s.objects import Obj
from svcnet.k8s.wellknown import SERVICE_NAME
from svcnet.manifest import ManifestError, load_paths, load_text


def descendants(pid: int) -> set[int]:
    """Every process below pid (children, theirs, ...), from /proc: what a test or
    a benchmark checks is gone after `svcnet up` stops."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for both TCP and UDP on host: svcnet's DNS binds both on one number."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind((host, 0))
            port = int(t.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind((host, port))
                except OSError:
                    continue
            return port
    raise RuntimeError(f"no port free for both TCP and UDP on {host}")


def node_ip(prefix: int) -> str:
    """Where an instance started with ``isolated_up_args(prefix=...)`` serves NodePorts."""
    return f"127.{prefix + 3}.0.1"


def ingress_ip(prefix: int) -> str:
    """Where an instance started with ``isolated_up_args(prefix=...)`` serves Ingresses."""
    return f"127.{prefix + 3}.0.3"


def isolated_up_args(
    manifests: str | None,
    prefix: int,
    api_port: int,
    dns_port: int,
    state_dir: str | None = None,
) -> list[str]:
    """`svcnet up` arguments for an instance that cannot collide with another one:
    ClusterIPs in 127.<prefix>.0.0/16, pods in 127.<prefix+1>, LoadBalancer IPs in
    127.<prefix+2>, NodePorts on ``node_ip(prefix)``, Ingresses on ``ingress_ip(prefix)``,
    and DNS forwarding to a loopback port where nothing listens (never the machine's own
    resolver). With `state_dir`, the cluster's state goes there instead of under $HOME."""
    return [
        "up",
        *(["--state-dir", state_dir] if state_dir else []),
        *(["-f", manifests] if manifests else []),
        "--api-port",
        str(api_port),
        "--dns-port",
        str(dns_port),
        "--service-cidr",
        f"127.{prefix}.0.0/16",
        "--pod-cidr",
        f"127.{prefix + 1}.0.0/16",
        "--lb-cidr",
        f"127.{prefix + 2}.0.0/16",
        "--nodeport-addresses",
        node_ip(prefix),
        "--upstream-dns",
        f"127.{prefix + 3}.0.2:9",
        "--ingress-address",
        ingress_ip(prefix),
    ]


def make_credentials(directory: Path, api_host: str = "127.0.0.1") -> Credentials:
    """A cluster's credentials in `directory`, as `svcnet up` makes them, for tests that
    run an ApiServer of their own on `api_host`."""
    settings = Settings()
    statedir = state.StateDir(directory, state.owner(os.environ))
    names = credentials.api_names(
        settings.network.cluster_domain, [settings.network.kubernetes_service_ip, api_host]
    )
    return credentials.ensure(statedir, *names)


def client_auth(creds: Credentials) -> credentials.ClientAuth:
    """What the svcnet CLI's Client would find in a state directory holding `creds`."""
    return credentials.ClientAuth(creds.token, creds.ca_path, None)


# --- a svcnet of its own for a test session (the pytest plugin's `svcnet`) ------------

BLOCKS = range(200, 253, 4)
"""First octets the sessions' address blocks start at (127.<b>-<b+3>.x each), clear
of the blocks svcnet's own tests and benchmarks use."""

CLUSTER_DOMAIN = "cluster.local"


def claim_block() -> tuple[int, int]:
    """(first octet, fd of its lock): a block of addresses no other session holds.
    The lock goes with the daemon (its fd is inherited), so a kept cluster keeps it."""
    where = Path(tempfile.gettempdir()) / "svcnet-test-blocks"
    with contextlib.suppress(FileExistsError):
        where.mkdir()
        where.chmod(0o1777)  # like /tmp: every user's sessions share the blocks
    for block in BLOCKS:
        path = where / f"{block}.lock"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except PermissionError:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)  # another user's file
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return block, fd
    raise RuntimeError(
        f"every address block for test sessions is taken ({len(BLOCKS)} svcnet test sessions "
        "are running, or kept with --svcnet-keep: stop one)"
    )


class SvcnetError(AssertionError):
    """What a helper could not do, with what the cluster said; an AssertionError so
    pytest shows it as a test failure, not an error in the test's own code."""


def _is_ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _rollout_done(d: Obj | None) -> bool:
    """kubectl rollout status's test, and every replica ready."""
    if d is None:
        return False
    md, spec, st = d.get("metadata") or {}, d.get("spec") or {}, d.get("status") or {}
    want = int(spec.get("replicas", 1))
    return (
        int(st.get("observedGeneration") or 0) >= int(md.get("generation") or 0)
        and int(st.get("updatedReplicas") or 0) == want
        and int(st.get("replicas") or 0) == want
        and int(st.get("availableReplicas") or 0) == want
        and int(st.get("readyReplicas") or 0) == want
    )


def _replicas_ready(rs: Obj | None) -> bool:
    if rs is None:
        return False
    want = int((rs.get("spec") or {}).get("replicas", 1))
    st = rs.get("status") or {}
    return (
        int(st.get("observedGeneration") or 0)
        >= int((rs.get("metadata") or {}).get("generation") or 0)
        and int(st.get("readyReplicas") or 0) == want
        and int(st.get("replicas") or 0) == want
    )


def _slices_ready(slices: list[Obj]) -> bool:
    """Some EndpointSlice of the Service has a ready endpoint (what the proxy and DNS use)."""
    return any(
        (e.get("conditions") or {}).get("ready") is not False
        for s in slices
        for e in s.get("endpoints") or ()
    )


def _pods_ready(pods: list[Obj]) -> bool:
    return bool(pods) and all(_is_ready(p) for p in pods)


class Scope:
    """The helpers of a cluster, for objects in one namespace by default."""

    def __init__(self, core: Svcnet, namespace: str) -> None:
        self._core = core
        self.namespace = namespace

    # -- reaching it ----------------------------------------------------------

    @property
    def client(self) -> Client:
        """svcnet's own API client (``get``, ``call``, ``wait_for``...)."""
        return self._core.client

    @property
    def kubeconfig(self) -> Path:
        """For real kubectl and the official Python client
        (``kubernetes.config.new_client_from_config(str(svcnet.kubeconfig))``)."""
        return self._core.state_dir / credentials.KUBECONFIG

    @property
    def env(self) -> dict[str, str]:
        """The environment for a subprocess that should talk to this cluster."""
        return dict(
            os.environ,
            KUBECONFIG=str(self.kubeconfig),
            SVCNET_SERVER=self._core.server,
            SVCNET_STATE_DIR=str(self._core.state_dir),
        )

    def _ns(self, namespace: str | None) -> str:
        return namespace or self.namespace

    # -- writing --------------------------------------------------------------

    def apply(self, source: str | Path, namespace: str | None = None) -> list[str]:
        """Apply a file, a folder (its *.yaml, *.yml and *.json, sorted) or YAML text,
        documents in order, as `kubectl apply -f` does; returns kubectl's lines
        (``deployment.apps/web created``). Nothing is applied if the server refuses
        any object in advance. Raises SvcnetError with kubectl's message."""
        if isinstance(source, Path) or ("\n" not in source and Path(source).exists()):
            manifests = load_paths([str(source)])
        else:
            manifests = load_text(str(source), "<text>")
        try:
            found = apply_cli.targets(self.client, manifests, self._ns(namespace))
            return apply_cli.apply_targets(self.client, found)
        except (ManifestError, apply_cli.ApplyError) as e:
            raise SvcnetError(str(e).strip()) from None

    def delete(self, target: str, namespace: str | None = None) -> None:
        """Delete ``kind/name`` (background propagation, not waiting)."""
        kind, name = self._kind_name(target)
        ns = self._ns(namespace) if kind.namespaced else None
        self.client.call(
            "DELETE", kind.object_path(ns, name), body={"propagationPolicy": "Background"}
        )

    # -- reading --------------------------------------------------------------

    def get(self, target: str, namespace: str | None = None) -> Obj:
        """The object ``kind/name`` (``deploy/web``, ``svc/echo``, ``pod/x``) as JSON."""
        kind, name = self._kind_name(target)
        ns = self._ns(namespace) if kind.namespaced else None
        obj: Obj = self.client.get(kind.object_path(ns, name))
        return obj

    def pods(self, selector: str | None = None, namespace: str | None = None) -> list[Obj]:
        query = {"labelSelector": selector} if selector else None
        items: list[Obj] = self.client.get(
            kinds.BY_KIND["Pod"].collection_path(self._ns(namespace)), query=query
        )["items"]
        return items

    def wait_ready(self, target: str, namespace: str | None = None, timeout: float = 60.0) -> None:
        """Wait until ``target`` is ready: ``deploy/NAME`` (rolled out, every replica
        ready), ``rs/NAME``, ``pod/NAME``, ``svc/NAME`` (at least one ready
        endpoint), or a label selector (``app=web``: at least one pod, all ready).
        Raises SvcnetError naming what is not ready, with the namespace's recent
        warnings, after `timeout` seconds."""
        ns = self._ns(namespace)
        try:
            if "/" not in target:
                self._wait_selected(kinds.BY_KIND["Pod"], target, ns, timeout, _pods_ready)
                return
            kind, name = self._kind_name(target)
            done: Callable[[Obj | None], bool]
            if kind.kind == "Deployment":
                done = _rollout_done
            elif kind.kind in ("ReplicaSet", "StatefulSet"):
                done = _replicas_ready
            elif kind.kind == "Pod":
                done = lambda p: p is not None and _is_ready(p)  # noqa: E731
            elif kind.kind == "Service":
                slices, selector = kinds.BY_KIND["EndpointSlice"], f"{SERVICE_NAME}={name}"
                self._wait_selected(slices, selector, ns, timeout, _slices_ready)
                return
            else:
                raise SvcnetError(f"wait_ready: no readiness for {kind.plural} ({target})")
            self.client.wait_for(kind, ns if kind.namespaced else None, name, done, timeout)
        except TimeoutError:
            raise SvcnetError(
                f"{target} in namespace {ns} is not ready after {timeout:g}s\n"
                + self._diagnosis(ns)
            ) from None

    def _wait_selected(
        self,
        kind: Kind,
        selector: str,
        ns: str,
        timeout: float,
        done: Callable[[list[Obj]], bool],
    ) -> None:
        deadline = time.monotonic() + timeout
        path = kind.collection_path(ns)
        while True:
            listed = self.client.get(path, query={"labelSelector": selector})
            if done(listed["items"]):
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            # Any change to the selected objects ends the watch; then list again.
            query = {
                "labelSelector": selector,
                "resourceVersion": listed["metadata"]["resourceVersion"],
                "watch": "true",
                "timeoutSeconds": str(max(1, math.ceil(remaining))),
            }
            with self.client.stream(path, query) as resp:
                while line := resp.readline():
                    if line.strip() and json.loads(line).get("type") != "BOOKMARK":
                        break

    def url(
        self,
        service: str,
        port: int | str | None = None,
        namespace: str | None = None,
        scheme: str = "http",
    ) -> str:
        """``http://<ClusterIP>:<port>`` of a Service, reachable from this process.
        `port`: the service port's number or name; may be left out when there is one."""
        name = service.split("/", 1)[-1]
        svc = self.get(f"service/{name}", namespace)
        spec = svc.get("spec") or {}
        ip = str(spec.get("clusterIP") or "")
        if not ip or ip == "None":
            raise SvcnetError(f"service {name} is headless: it has no address; use resolve()")
        ports = spec.get("ports") or []
        chosen = [p for p in ports if port is None or port in (p.get("port"), p.get("name"))]
        if len(chosen) != 1:
            offered = ", ".join(f"{p.get('name') or '-'}:{p.get('port')}" for p in ports)
            what = "port must be given" if port is None else f"no port {port!r}"
            raise SvcnetError(f"service {name}: {what} (it has {offered})")
        host = f"[{ip}]" if ":" in ip else ip
        return f"{scheme}://{host}:{chosen[0]['port']}"

    def resolve(self, name: str, rtype: str = "A", namespace: str | None = None) -> list[str]:
        """Ask the cluster DNS as a pod of `namespace` would (its search path, ndots:5):
        the answer's records, CNAME targets included (``gihyo`` -> ``gihyo.jp.``).
        An empty list for a name that does not exist."""
        ns = self._ns(namespace)
        domain = self._core.cluster_domain
        search = [f"{ns}.svc.{domain}", f"svc.{domain}", domain]
        candidates = [f"{name}.{s}" for s in search] if name.count(".") < 5 else []
        candidates.append(name)
        if name.endswith("."):
            candidates = [name]
        for candidate in candidates:
            q = dnslib.DNSRecord.question(candidate.rstrip(".") + ".", rtype)
            reply = dnslib.DNSRecord.parse(
                q.send("127.0.0.1", self._core.dns_port, tcp=False, timeout=5)
            )
            if reply.header.rcode == dnslib.RCODE.NOERROR and reply.rr:
                return [str(rr.rdata) for rr in reply.rr]
        return []

    def logs(
        self,
        target: str,
        namespace: str | None = None,
        container: str | None = None,
        tail: int | None = None,
        previous: bool = False,
    ) -> str:
        """A container's log: ``pod/NAME`` or a pod name, or ``deploy/NAME`` (its
        first pod, as kubectl logs picks one)."""
        ns = self._ns(namespace)
        pod = self._pod_for(target, ns)
        query: dict[str, str] = {}
        if container:
            query["container"] = container
        if tail is not None:
            query["tailLines"] = str(tail)
        if previous:
            query["previous"] = "true"
        path = kinds.BY_KIND["Pod"].object_path(ns, pod) + "/log"
        resp = self.client.request("GET", path, query=query)
        if resp.status >= 400:
            raise SvcnetError(status_from_response(resp.status, resp.body).get("message", ""))
        return resp.body.decode(errors="replace")

    def events(self, namespace: str | None = None) -> list[Obj]:
        """The namespace's Events, oldest first."""
        items: list[Obj] = self.client.get(
            kinds.BY_KIND["Event"].collection_path(self._ns(namespace))
        )["items"]
        return sorted(items, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))

    # -- tools ----------------------------------------------------------------

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl against this cluster (in this namespace unless args
        name one); raises SvcnetError with its stderr if it fails and `check`."""
        exe = shutil.which("kubectl")
        if exe is None:
            raise SvcnetError("kubectl is not on PATH")
        return self._run([exe, *self._namespaced(args)], input, check, timeout)

    def cli(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run the `svcnet` CLI against this cluster, like kubectl()."""
        cmd = [sys.executable, "-m", "svcnet", *self._namespaced(args)]
        return self._run(cmd, input, check, timeout)

    def _namespaced(self, args: tuple[str, ...]) -> list[str]:
        given = any(
            a in ("-n", "--namespace", "-A", "--all-namespaces") or a.startswith("--namespace=")
            for a in args
        )
        return list(args) if given else ["-n", self.namespace, *args]

    def _run(
        self, cmd: list[str], input: str | None, check: bool, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            cmd, input=input, capture_output=True, text=True, env=self.env, timeout=timeout
        )
        if check and done.returncode != 0:
            raise SvcnetError(
                f"{shlex.join(cmd[-len(cmd) + 1 :])} exited with {done.returncode}:\n"
                f"{done.stderr.strip()}"
            )
        return done

    # -- diagnosis ------------------------------------------------------------

    def report(self, namespace: str | None = None, tail: int = 20) -> tuple[str, str]:
        """(events, logs): what a failed test's report shows of the namespace, as
        `kubectl get events` and the tail of every container's log."""
        ns = self._ns(namespace)
        try:
            events = self.events(ns)
            pods = self.pods(namespace=ns)
        except (ApiStatusError, OSError) as err:
            return f"(cannot read namespace {ns}: {err})", ""
        rows = [("LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE")]
        for e in events[-50:]:
            obj = e.get("involvedObject") or {}
            rows.append(
                (
                    str(e.get("lastTimestamp") or e.get("eventTime") or ""),
                    str(e.get("type") or ""),
                    str(e.get("reason") or ""),
                    f"{str(obj.get('kind') or '').lower()}/{obj.get('name') or ''}",
                    str(e.get("message") or "").replace("\n", " ")[:300],
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        events_text = "\n".join(
            "   ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "   " + r[4]
            for r in rows
        )
        if len(rows) == 1:
            events_text = f"No events in namespace {ns}."
        logs = []
        for pod in pods[:20]:
            name = pod["metadata"]["name"]
            restarts = {
                s.get("name"): int(s.get("restartCount") or 0)
                for s in (pod.get("status") or {}).get("containerStatuses") or []
            }
            for c in (pod.get("spec") or {}).get("containers") or []:
                # A crash-looping container's useful words are in the instance
                # that died (kubectl logs --previous); the current one may not
                # have written anything yet.
                runs = [(True, "previous instance, ")] if restarts.get(c["name"]) else []
                for previous, label in [*runs, (False, "")]:
                    try:
                        text = self.logs(name, ns, c["name"], tail=tail, previous=previous)
                    except (SvcnetError, ApiStatusError, OSError) as err:
                        text = f"(no log: {err})\n"
                    logs.append(f"--- pod/{name} -c {c['name']} ({label}last {tail} lines)\n{text}")
        return events_text, "".join(logs) or f"No pods in namespace {ns}.\n"

    def _diagnosis(self, ns: str) -> str:
        events, _ = self.report(ns)
        lines = []
        for p in self.pods(namespace=ns):
            st = p.get("status") or {}
            waiting = [
                f"{cs['name']}: {((cs.get('state') or {}).get('waiting') or {}).get('reason')}"
                for cs in st.get("containerStatuses") or []
                if (cs.get("state") or {}).get("waiting")
            ]
            lines.append(
                f"pod/{p['metadata']['name']}: {st.get('phase')}, "
                f"{'ready' if _is_ready(p) else 'not ready'}"
                + (f" ({', '.join(waiting)})" if waiting else "")
            )
        return "\n".join(lines) + "\n\nEvents:\n" + events

    # -- names ----------------------------------------------------------------

    @staticmethod
    def _kind_name(target: str) -> tuple[Kind, str]:
        word, sep, name = target.partition("/")
        kind = kinds.lookup(word) if sep else None
        if kind is None or not name:
            raise SvcnetError(f"{target!r}: expected kind/name, such as deploy/web or svc/echo")
        return kind, name

    def _pod_for(self, target: str, ns: str) -> str:
        if "/" not in target:
            return target
        kind, name = self._kind_name(target)
        if kind.kind == "Pod":
            return name
        obj = self.get(target, ns)
        selector = (obj.get("spec") or {}).get("selector") or {}
        labels = selector.get("matchLabels", selector) if kind.kind != "Service" else selector
        text = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        pods = sorted(self.pods(text, ns), key=lambda p: p["metadata"]["name"]) if text else []
        if not pods:
            raise SvcnetError(f"{target} has no pods")
        return str(pods[0]["metadata"]["name"])


class Namespace(Scope):
    """A test's own namespace (the pytest plugin's `svcnet_namespace`)."""

    @property
    def name(self) -> str:
        return self.namespace

    def __str__(self) -> str:
        return self.namespace


class Svcnet(Scope):
    """A `svcnet up` of its own: free ports, its own address block and state directory,
    nothing shared with a svcnet started by hand. ``start`` waits for it to be ready;
    ``stop`` (or leaving the ``with`` block) stops it and every pod."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        state_dir: Path,
        api_port: int,
        dns_port: int,
        block: int,
        cluster_domain: str,
        log_path: Path,
        ready_line: str,
    ) -> None:
        super().__init__(self, "default")
        self.proc = proc
        self.state_dir = state_dir
        self.api_port = api_port
        self.dns_port = dns_port
        self.block = block
        self.cluster_domain = cluster_domain
        self.log_path = log_path
        """The daemon's output (stdout and stderr)."""
        self.ready_line = ready_line
        self.server = f"https://127.0.0.1:{api_port}"
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            auth = credentials.for_server(
                "127.0.0.1", self.api_port, {state.STATE_DIR_ENV: str(self.state_dir)}
            )
            self._client = Client(self.server, auth=auth)
        return self._client

    @property
    def service_cidr(self) -> str:
        return f"127.{self.block}.0.0/16"

    @property
    def node_ip(self) -> str:
        """Where NodePorts are served."""
        return node_ip(self.block)

    @classmethod
    def start(
        cls,
        state_dir: Path,
        manifests: Iterable[str | Path] = (),
        config: str | Path | None = None,
        extra_args: Iterable[str] = (),
        timeout: float = 30.0,
        detach: bool = False,
    ) -> Svcnet:
        """Start one and wait until every pod of `manifests` is ready. With `detach`
        the daemon gets a session of its own, so it outlives this process."""
        state_dir.mkdir(parents=True, exist_ok=True)
        block, lock = claim_block()
        try:
            api_port, dns_port = free_port(), free_port()
            args = isolated_up_args(None, block, api_port, dns_port, str(state_dir))
            for m in manifests:
                args += ["-f", str(m)]
            domain = CLUSTER_DOMAIN
            if config is not None:
                args += ["--config", str(config)]
                domain = load_settings(Path(config)).network.cluster_domain
            log_path = state_dir / "svcnet.log"
            log = open(log_path, "wb")
            proc = subprocess.Popen(
                [sys.executable, "-m", "svcnet", *args, *extra_args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=state_dir,
                pass_fds=(lock,),
                start_new_session=detach,
            )
            log.close()
        finally:
            os.close(lock)
        ready = _ready_line(proc, log_path, timeout)
        return cls(proc, state_dir, api_port, dns_port, block, domain, log_path, ready)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, as Ctrl-C; SIGKILL after `timeout`. Returns the exit status."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def namespace_for(self, name: str) -> Namespace:
        """Create namespace `name` and return its helpers."""
        self.client.call(
            "POST",
            kinds.BY_KIND["Namespace"].collection_path(None),
            body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
        )
        return Namespace(self, name)

    def delete_namespace(self, name: str) -> None:
        self.client.call(
            "DELETE",
            kinds.BY_KIND["Namespace"].object_path(None, name),
            body={"propagationPolicy": "Background"},
        )

    def __enter__(self) -> Svcnet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _ready_line(proc: subprocess.Popen[bytes], log_path: Path, timeout: float) -> str:
    """Read the daemon's stdout up to its ready line; then a thread keeps copying it
    to the log, so the daemon never blocks on a full pipe."""
    assert proc.stdout is not None
    out = proc.stdout
    deadline = time.monotonic() + timeout
    seen: list[bytes] = []
    while True:
        r, _, _ = select.select([out], [], [], max(0.0, deadline - time.monotonic()))
        line = out.readline() if r else b""
        if line.startswith(b"svcnet ready"):
            break
        if line:
            seen.append(line)
            continue
        proc.kill()
        proc.wait()
        why = "exited" if r else f"was not ready after {timeout:g}s"
        err = log_path.read_text(errors="replace")[-4000:]
        raise SvcnetError(f"svcnet up {why}:\n{b''.join(seen).decode(errors='replace')}{err}")

    def drain() -> None:
        with open(log_path, "ab") as log:
            log.writelines([*seen, line])
            for more in out:
                log.write(more)
                log.flush()

    threading.Thread(target=drain, name="svcnet-stdout", daemon=True).start()
    return line.decode(errors="replace").strip()
