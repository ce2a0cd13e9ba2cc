"""The ingress controller: ingress-nginx's role, in the daemon.

It serves the Ingresses of its classes (every IngressClass whose
spec.controller is ``k8s.io/ingress-nginx``; svcnet creates ``nginx``, the
default class, at bootstrap as minikube's and kind's setups do), and
class-less ones while one of its classes is the default, on
``ingress.address`` (HTTP on ``ingress.http_port``, HTTPS on
``ingress.https_port``). Each served Ingress gets that address in
``status.loadBalancer.ingress[0].ip`` and a "Scheduled for sync" Event per
change, as ingress-nginx records them.

It follows the store as the proxier does: an Ingress, IngressClass or Secret
event rebuilds the routing table (routes.py) in the callback, so the next
request sees it; a Service or EndpointSlice event drops that Service's cached
endpoints, read again at its next request. Writes (status, Events) are the
only thing deferred, to a loop callback, because the store's subscribers must
not write from inside its notifications.

Endpoints are read from the EndpointSlices labelled
``kubernetes.io/service-name`` for the backend's Service port (the port's
name in the slice), ready ones only (``conditions.ready`` absent or true),
as ingress-nginx's getEndpointsFromSlices reads them; requests go to them
round-robin per backend.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl
from collections.abc import Callable, Coroutine
from typing import Any

from svcnet._aio import TaskSet
from svcnet._net import BACKLOG, listening_socket
from svcnet.config import Settings
from svcnet.ingress import certs, routes
from svcnet.ingress.proxy import ClientConn, Endpoint, Stats, Target
from svcnet.k8s.objects import Obj
from svcnet.k8s.wellknown import SERVICE_NAME
from svcnet.registry import ApiError, Registry
from svcnet.store import Event

logger = logging.getLogger(__name__)

Recorder = Callable[[Obj, str, str, str], None]
"""(object, type, reason, message): record an Event, as the controller's recorder does."""

FALLBACK_OFFSET = 8000
"""Without the privilege for ports below 1024, 80 and 443 become 8080 and 8443."""

_ROUTING_KINDS = frozenset({"Ingress", "IngressClass", "Secret"})
_ENDPOINT_KINDS = frozenset({"Service", "EndpointSlice"})


def _listen(host: str, port: int) -> socket.socket:
    return listening_socket(host, port)


class IngressController:
    """See the module docstring."""

    def __init__(self, settings: Settings, registry: Registry, recorder: Recorder) -> None:
        self._registry = registry
        """Writes status only, through the registry (docs/architecture.md, "One writer")."""
        self._store = registry.store
        self._record = recorder
        self.address = settings.ingress.address
        self.http_port = settings.ingress.http_port
        self.https_port = settings.ingress.https_port
        """The ports listened on (the fallback ones when the configured were refused)."""
        self.notes: list[str] = []
        """What start-up had to say (fallback ports, a listener it could not open)."""
        self.routes = routes.Routes({}, routes.Server(routes.DEFAULT_SERVER))
        self.certs: certs.Certificates | None = None
        self.stats = Stats()
        self.conns: set[ClientConn] = set()
        self._servers: list[asyncio.Server] = []
        self._tasks = TaskSet()
        self._unsubscribe: Callable[[], None] | None = None
        self._endpoints: dict[tuple[str, str], dict[int | str, list[Endpoint]]] = {}
        self._next: dict[routes.Backend, int] = {}
        self._served: set[tuple[str, str]] = set()
        self._warned: set[tuple[str, str, str]] = set()
        """(Ingress uid, Secret, problem) already told in an Event."""
        self._pending: list[Event] = []
        self._scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        # An RSA key takes a moment: off the loop, as the DNS and API servers start.
        self.certs = await asyncio.to_thread(certs.Certificates)
        self.http_port = await self._serve(self.http_port, None)
        # The default certificate's context, whose SNI callback switches a connection to
        # its host's certificate.
        self.https_port = await self._serve(self.https_port, self.certs.default)
        self._unsubscribe = self._store.subscribe(self._on_event)
        self._rebuild()
        self._schedule(None)

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for server in self._servers:
            server.close()
        for conn in list(self.conns):
            conn.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        await self._tasks.stop()

    async def _serve(self, port: int, context: ssl.SSLContext | None) -> int:
        """Listen on port, or on its fallback; the port served, 0 if none."""
        scheme = "https" if context is not None else "http"
        try:
            sock = _listen(self.address, port)
        except OSError as e:
            if e.errno != errno.EACCES or port >= 1024:
                self.notes.append(
                    f"the ingress controller cannot listen on {self.address}:{port} for "
                    f"{scheme} ({e.strerror}); move it with --ingress-address or "
                    f"--ingress-{scheme}-port"
                )
                return 0
            fallback = port + FALLBACK_OFFSET
            try:
                sock = _listen(self.address, fallback)
            except OSError as e2:
                self.notes.append(
                    f"the ingress controller cannot listen on {self.address}:{port} "
                    f"(below 1024, which needs root or CAP_NET_BIND_SERVICE) nor on "
                    f"{fallback} ({e2.strerror}); move it with --ingress-{scheme}-port"
                )
                return 0
            self.notes.append(
                f"the ingress controller serves {scheme} on {self.address}:{fallback}, not "
                f"{port}: ports below 1024 need root or CAP_NET_BIND_SERVICE"
            )
            port = fallback
        https = context is not None
        if context is not None:
            context.sni_callback = self._sni
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: ClientConn(self, self.stats, self.conns, self._spawn, https, port),
            sock=sock,
            ssl=context,
            backlog=BACKLOG,
        )
        self._servers.append(server)
        return port

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        return self._tasks.spawn(coro, name=name)

    def urls(self) -> list[str]:
        host = f"[{self.address}]" if ":" in self.address else self.address
        out = []
        if self.http_port:
            out.append(f"http://{host}" + ("" if self.http_port == 80 else f":{self.http_port}"))
        if self.https_port:
            out.append(
                f"https://{host}" + ("" if self.https_port == 443 else f":{self.https_port}")
            )
        return out

    # --- following the store --------------------------------------------------------

    def _on_event(self, ev: Event) -> None:
        if ev.kind in _ENDPOINT_KINDS:
            name = ev.name
            if ev.kind == "EndpointSlice":
                name = str((ev.obj["metadata"].get("labels") or {}).get(SERVICE_NAME) or "")
            self._endpoints.pop((ev.namespace, name), None)
            return
        if ev.kind in _ROUTING_KINDS:
            if ev.kind == "Secret" and ev.obj.get("type") not in (None, "kubernetes.io/tls"):
                if not (ev.obj.get("data") or {}).get("tls.crt"):
                    return
            self._rebuild()
            self._schedule(ev)

    def _rebuild(self) -> None:
        classes, default = routes.our_classes(self._store.list("IngressClass"))
        ours = [i for i in self._store.list("Ingress") if routes.served(i, classes, default)]
        self._served = {(i["metadata"]["namespace"], i["metadata"]["name"]) for i in ours}
        self.routes = routes.build(ours)
        if self.certs is not None:
            self.certs.forget(
                {s.tls for s in self.routes.servers.values() if s.tls is not None and s.tls[1]}
            )

    # --- writes, deferred -----------------------------------------------------------

    def _schedule(self, ev: Event | None) -> None:
        if ev is not None:
            self._pending.append(ev)
        if not self._scheduled and self._loop is not None:
            self._scheduled = True
            self._loop.call_soon(self._write)

    def _write(self) -> None:
        self._scheduled = False
        events, self._pending = self._pending, []
        for ev in events:
            if ev.kind == "Ingress" and ev.type != "DELETED":
                key = (ev.namespace, ev.name)
                if key in self._served:
                    self._event(ev.obj, "Normal", "Sync", "Scheduled for sync")
        for ing in self._store.list("Ingress"):
            md = ing["metadata"]
            key = (str(md["namespace"]), str(md["name"]))
            self._sync_status(ing, key in self._served)
            if key in self._served:
                self._check_tls(ing)

    def _sync_status(self, ing: Obj, served: bool) -> None:
        lb = (ing.get("status") or {}).get("loadBalancer") or {}
        want: Obj = {"ingress": [{"ip": self.address}]} if served else {}
        if lb == want or (not served and not lb):
            return
        if not served and [e.get("ip") for e in lb.get("ingress") or []] != [self.address]:
            return  # another controller's address: not ours to clear

        def put(o: Obj) -> None:
            o.setdefault("status", {})["loadBalancer"] = want

        md = ing["metadata"]
        try:
            self._registry.update_status("Ingress", md["namespace"], md["name"], put)
        except ApiError as e:
            logger.debug("ingress %s/%s: status not updated: %s", md["namespace"], md["name"], e)

    def _check_tls(self, ing: Obj) -> None:
        """A Warning Event per Secret an Ingress names that cannot be served."""
        assert self.certs is not None
        md = ing["metadata"]
        ns = str(md["namespace"])
        for entry in (ing.get("spec") or {}).get("tls") or []:
            name = str(entry.get("secretName") or "")
            if not name:
                continue
            loaded = self.certs.get((ns, name), self._store.get("Secret", ns, name))
            problems = [loaded.error] if loaded.error else []
            if loaded.cert is not None and not loaded.error:
                problems += [
                    f'SSL certificate "{ns}/{name}" does not contain a Common Name or Subject '
                    f'Alternative Name for server "{h}"'
                    for h in entry.get("hosts") or []
                    if not certs.covers(loaded.cert, str(h).lower())
                ]
            for problem in problems:
                mark = (str(md.get("uid")), f"{name}@{loaded.rv}", problem)
                if mark in self._warned:
                    continue
                self._warned.add(mark)
                self._event(
                    ing,
                    "Warning",
                    "InvalidTLSSecret",
                    f'Error getting SSL certificate "{ns}/{name}": {problem}. '
                    "Using default certificate",
                )

    def _event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        try:
            self._record(obj, type_, reason, message)
        except ApiError as e:
            logger.debug("event not recorded: %s", e)

    # --- serving -------------------------------------------------------------------

    def route(self, host: str, target: bytes, https: bool, port: int) -> Target:
        """Where a request goes (proxy.Router)."""
        hostname = routes.host_of(host)
        server = self.routes.server_for(hostname)
        try:
            path = routes.normalize(target.decode("latin-1"))
        except (routes.BadPath, UnicodeDecodeError):
            return Target(status=400)
        if not https and server.tls is not None and self.https_port:
            suffix = "" if self.https_port == 443 else f":{self.https_port}"
            return Target(
                status=308,
                location=f"https://{hostname}{suffix}{target.decode('latin-1')}",
            )
        loc = server.match(path)
        if loc is None or loc.backend is None:
            return Target(status=404)
        eps = self.endpoints(loc.backend)
        if not eps:
            return Target(status=503)
        i = self._next.get(loc.backend, 0) % len(eps)
        self._next[loc.backend] = i + 1
        return Target(endpoints=tuple(eps[i:] + eps[:i]), upstream=loc.backend)

    def endpoints(self, backend: routes.Backend) -> list[Endpoint]:
        key = (backend.namespace, backend.service)
        by_port = self._endpoints.get(key)
        if by_port is None:
            by_port = self._endpoints[key] = self._read_endpoints(*key)
        return by_port.get(backend.port, [])

    def _read_endpoints(self, namespace: str, name: str) -> dict[int | str, list[Endpoint]]:
        """Ready endpoints of each port of a Service, keyed by its number and its name."""
        svc = self._store.get("Service", namespace, name)
        if svc is None or (svc.get("spec") or {}).get("type") == "ExternalName":
            return {}
        slices = [
            s
            for s in self._store.list("EndpointSlice", namespace)
            if (s["metadata"].get("labels") or {}).get(SERVICE_NAME) == name
        ]
        out: dict[int | str, list[Endpoint]] = {}
        for sp in (svc.get("spec") or {}).get("ports") or []:
            if sp.get("protocol", "TCP") != "TCP":
                continue
            port_name = str(sp.get("name") or "")
            found: list[Endpoint] = []
            for sl in slices:
                numbers = [
                    int(p["port"])
                    for p in sl.get("ports") or []
                    if str(p.get("name") or "") == port_name
                    and p.get("protocol", "TCP") == "TCP"
                    and p.get("port")
                ]
                if not numbers:
                    continue
                for ep in sl.get("endpoints") or []:
                    if (ep.get("conditions") or {}).get("ready") is False:
                        continue
                    for addr in ep.get("addresses") or []:
                        if (str(addr), numbers[0]) not in found:
                            found.append((str(addr), numbers[0]))
            out[int(sp["port"])] = found
            if port_name:
                out[port_name] = found
        return out

    # --- TLS ------------------------------------------------------------------------

    def _sni(self, sslobj: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        if not name or self.certs is None:
            return
        host = name.lower()
        tls = self.routes.tls_for(host)
        if tls is None or not tls[1]:
            return
        loaded = self.certs.get(tls, self._store.get("Secret", *tls))
        if (
            loaded.context is not None
            and loaded.cert is not None
            and certs.covers(loaded.cert, host)
        ):
            sslobj.context = loaded.context
