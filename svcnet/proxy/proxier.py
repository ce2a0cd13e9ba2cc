"""kube-proxy: turns Services and EndpointSlices into listening sockets.

Where kube-proxy writes iptables rules, svcnet listens: every address a
Service answers on gets a listener of the port's protocol (TCP: ``relay.py``;
UDP: ``udp.py``), and traffic is relayed to the service port's ready
endpoints, round-robin or by ClientIP affinity (``balancer.py``). Addresses
per service port:

- ``spec.clusterIPs[*]:port`` for ClusterIP, NodePort and LoadBalancer
  Services (headless and ExternalName Services get nothing: DNS serves those);
- ``<addr>:nodePort`` for each of ``network.node_port_addresses`` (kube-proxy's
  ``--nodeport-addresses``) for NodePort and LoadBalancer;
- ``status.loadBalancer.ingress[].ip:port`` for LoadBalancer.

Never on the kube-dns Service IP: the DNS server binds that itself. SCTP ports
are not proxied (logged once).

Endpoints are what the Service's EndpointSlices (every slice labelled
``kubernetes.io/service-name: <service>``, whoever wrote it: the EndpointSlice
controller for a selector, the mirroring controller for a hand-written
Endpoints object, or the user) list for the port's name and protocol in the
Service's address families: the ready ones, or when none is ready the ones
still serving while they terminate, as kube-proxy chooses
(k8s/endpointslices.py). Loopback addresses are fine.

Reconciling is synchronous, in the store's subscriber callback, one Service at
a time (a slice names its Service in a label, so either event names the
work). The new state is in effect before the event returns: the balancer
holds the new endpoints for the very next connection, and sockets are bound,
listening and registered with the loop at once. A type change is just a
different set of addresses: ClusterIP -> NodePort opens the node ports,
-> ExternalName closes everything, and so on.

No ready endpoints means ECONNREFUSED, as kube-proxy's REJECT rule gives, and
not accept-then-close (which the e2e test "should be rejected when no
endpoints exist" fails): while a service port has no ready endpoint its
listeners are closed (for UDP the kernel then answers ICMP port-unreachable,
which a connected client sees as ECONNREFUSED), and they are reopened when one
appears. Connections the kernel had already queued when the last endpoint
went are reset by the close; one accepted in the same instant finds an empty
balancer and is reset too.

Listeners are keyed by address and protocol (TCP 53 and UDP 53 coexist), and
a service port is the target of each of its listeners. An address wanted by
two service ports goes to the first; the other is told in the log and gets it
when the first lets go. A bind that fails (a port below 1024 without the
privilege, an address in use, an address not on this machine) is logged once
with the address and the fix; the rest of the Service is still served, and
the bind is retried at the Service's next change.

Existing connections outlive changes to their Service (conntrack keeps them in
kube-proxy too); only ``stop`` cuts them.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass

from svcnet._net import listening_socket
from svcnet.config import Settings
from svcnet.k8s.endpointslices import SliceIndex
from svcnet.k8s.objects import Obj, ServiceView
from svcnet.proxy.balancer import Endpoint
from svcnet.proxy.relay import TcpListener
from svcnet.proxy.sockets import ServiceMaps, SocketBalancer
from svcnet.proxy.target import Hub, PortTarget, ServicePortName
from svcnet.proxy.udp import UdpListener
from svcnet.store import Event, ReadOnlyStore

logger = logging.getLogger(__name__)

Addr = tuple[str, int]
"""A listening address as (ip, port)."""

_LKey = tuple[str, int, str]
"""A listener: (ip, port, protocol)."""

_Desired = dict[ServicePortName, tuple[str, frozenset[Addr], list[Endpoint]]]


@dataclass(frozen=True)
class _Front:
    """What one version of a Service makes of its ports, whatever its endpoints:
    kept while the store holds that same object (stored objects are never
    changed in place), since its slices change far more often than it does (a
    thousand pods starting wrote each of their Service's slices several times)."""

    svc: Obj
    proxied: bool
    affinity: float | None = None
    families: frozenset[int] = frozenset()
    ports: tuple[tuple[ServicePortName, str, str, frozenset[Addr]], ...] = ()
    """(service port, its name, protocol, the addresses it listens on)"""


Recorder = Callable[[Obj, str, str, str], None]
"""(object, type, reason, message): record an Event, as kube-proxy's recorder does."""

_PROXIED_TYPES = frozenset({"ClusterIP", "NodePort", "LoadBalancer"})
_NODE_PORT_TYPES = frozenset({"NodePort", "LoadBalancer"})
_PROXIED_PROTOCOLS = frozenset({"TCP", "UDP"})


@dataclass(frozen=True)
class PortStats:
    """Counters for one service port, as ``Proxier.stats`` reports them."""

    connections: int
    """Client connections accepted."""
    active: int
    """Client connections open now."""
    failures: int
    """Connections reset unserved: no ready endpoint, or every dial failed."""
    retries: int
    """Dials that failed and moved on to the next endpoint."""
    endpoints: int
    """Ready endpoints now."""
    listeners: tuple[Addr, ...]
    """Addresses accepting connections now."""
    protocol: str = "TCP"
    """TCP or UDP; for UDP, connections count client sessions."""
    spliced: int = 0
    """Connection directions that turned to splice(2) for a bulk transfer (TCP)."""


def _fmt(addr: Addr) -> str:
    host, port = addr
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _bind_advice(e: OSError, addr: Addr, protocol: str) -> str:
    if e.errno == errno.EACCES:
        return (
            f"port {addr[1]} is below net.ipv4.ip_unprivileged_port_start; run svcnet as root,"
            " give python CAP_NET_BIND_SERVICE, or lower that sysctl"
            " (sysctl -w net.ipv4.ip_unprivileged_port_start=0)"
        )
    if e.errno == errno.EADDRINUSE:
        return (
            f"another socket is listening there (find it with"
            f" ss -{'lunp' if protocol == 'UDP' else 'ltnp'} 'sport = :{addr[1]}');"
            " stop it or change the Service's port"
        )
    if e.errno == errno.EADDRNOTAVAIL:
        return (
            "that address is not on this machine; use loopback addresses"
            " (127.0.0.0/8, ::1) in the Service and in network.node_port_addresses"
        )
    return "check the address and port"


def _listen_socket(addr: Addr, protocol: str) -> socket.socket:
    return listening_socket(addr[0], addr[1], udp=protocol == "UDP")


class _Listener:
    """One address and protocol: a socket that opens and closes with its endpoints.

    Opening binds, listens and registers the socket with the loop in one
    synchronous step, so the Service answers before the store event returns.
    """

    __slots__ = ("addr", "bind_error", "hub", "protocol", "server", "target")

    def __init__(self, addr: Addr, protocol: str, target: PortTarget, hub: Hub) -> None:
        self.addr = addr
        self.protocol = protocol
        self.target = target
        self.hub = hub
        self.server: TcpListener | UdpListener | None = None
        self.bind_error: int | None = None

    @property
    def listening(self) -> bool:
        return self.server is not None

    def open(self) -> None:
        if self.server is not None:
            return
        try:
            sock = _listen_socket(self.addr, self.protocol)
        except OSError as e:
            # Log a given failure once; it is retried at every change of the Service.
            first = e.errno != self.bind_error
            self.bind_error = e.errno
            message = (
                f"cannot listen on {_fmt(self.addr)}/{self.protocol}: {e.strerror or e}; "
                f"{_bind_advice(e, self.addr, self.protocol)}. The Service is not served there."
            )
            logger.log(
                logging.ERROR if first else logging.DEBUG, "%s: %s", self.target.name, message
            )
            if first:
                self.hub.warn(self.target.name, "FailedToListen", message)
            return
        if self.bind_error is not None:
            logger.info("now listening on %s for service %s", _fmt(self.addr), self.target.name)
            self.bind_error = None
        logger.debug("listening on %s/%s for %s", _fmt(self.addr), self.protocol, self.target.name)
        if self.protocol == "UDP":
            self.server = UdpListener(self.hub, sock, self.target)
        else:
            self.server = TcpListener(self.hub, sock, self.target)

    def close(self) -> None:
        if self.server is not None:
            logger.debug("closing %s/%s for %s", _fmt(self.addr), self.protocol, self.target.name)
            self.server.close()
            self.server = None


class _Port:
    """A service port being served: its target and the addresses it holds."""

    __slots__ = ("addrs", "conflicts", "protocol", "target")

    def __init__(self, target: PortTarget, protocol: str) -> None:
        self.target = target
        self.protocol = protocol
        self.addrs: set[Addr] = set()
        self.conflicts: set[Addr] = set()
        """Addresses wanted but held by another service port (already warned about)."""


class Proxier:
    """Serves every TCP and UDP Service port in the store; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        store: ReadOnlyStore,
        maps: ServiceMaps | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self._recorder = recorder
        """Writes an Event about a Service (the daemon's event recorder, as kube-proxy's)."""
        self._settings = settings
        self._store = store
        self.sockets = SocketBalancer(maps) if maps is not None else None
        """Balancing at connect() in the kernel, beside the listeners (sockets.py)."""
        self._hub: Hub | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._listeners: dict[_LKey, _Listener] = {}
        self._ports: dict[ServicePortName, _Port] = {}
        self._by_service: dict[tuple[str, str], set[ServicePortName]] = {}
        self._skipped: set[ServicePortName] = set()
        self._slices = SliceIndex()
        self._fronts: dict[tuple[str, str], _Front] = {}

    # --- lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        """Serve what the store holds now and follow its changes from here on."""
        if self._hub is not None:
            return
        self._hub = Hub(asyncio.get_running_loop())
        self._hub.warn = self._warn
        self._unsubscribe = self._store.subscribe(self._on_event)
        self._slices.reset(self._store.list("EndpointSlice"))
        for svc in self._store.list("Service"):
            md = svc["metadata"]
            self._sync(str(md.get("namespace") or ""), str(md["name"]))

    async def stop(self) -> None:
        """Close every listener and every relayed connection. Safe to call twice."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for lst in self._listeners.values():
            lst.close()
        self._listeners.clear()
        self._ports.clear()
        if self.sockets is not None:
            self.sockets.clear()
        self._by_service.clear()
        hub, self._hub = self._hub, None
        if hub is not None:
            await hub.close_all()

    # --- introspection ---------------------------------------------------------

    def listeners(self, protocol: str = "TCP") -> list[Addr]:
        """Addresses accepting connections (or datagrams, for "UDP") now, sorted."""
        return sorted(
            (ip, port)
            for (ip, port, proto), lst in self._listeners.items()
            if proto == protocol and lst.listening
        )

    def stats(self) -> dict[ServicePortName, PortStats]:
        """Counters per service port currently served."""
        out: dict[ServicePortName, PortStats] = {}
        for key, port in self._ports.items():
            t = port.target
            out[key] = PortStats(
                connections=t.connections,
                active=t.active,
                failures=t.failures,
                retries=t.retries,
                endpoints=len(t.balancer),
                listeners=tuple(
                    sorted(a for a in port.addrs if self._listeners[(*a, port.protocol)].listening)
                ),
                protocol=port.protocol,
                spliced=t.spliced,
            )
        return out

    def affinity(self, key: ServicePortName) -> dict[str, tuple[str, int]]:
        """Client IP -> endpoint for a service port's live ClientIP affinities."""
        port = self._ports.get(key)
        return port.target.balancer.affinity() if port is not None else {}

    def buffered(self) -> int:
        """Bytes the proxy holds in its buffers now; flow control keeps this bounded."""
        return self._hub.buffered() if self._hub is not None else 0

    def _warn(self, name: ServicePortName, reason: str, message: str) -> None:
        svc = self._store.get("Service", name.namespace, name.name)
        if self._recorder is not None and svc is not None:
            self._recorder(svc, "Warning", reason, f"port {name.port or '(unnamed)'}: {message}")

    # --- reconciling -------------------------------------------------------------

    def _on_event(self, ev: Event) -> None:
        if ev.kind == "Service":
            self._sync(ev.namespace, ev.name)
        elif ev.kind == "EndpointSlice":
            if ev.type == "DELETED":
                changed = self._slices.remove(ev.namespace, ev.name)
            else:
                changed = self._slices.put(ev.obj)
            for ns, name in sorted(changed):
                self._sync(ns, name)

    def _sync(self, namespace: str, name: str) -> None:
        desired, affinity = self._desired(namespace, name)
        svc = (namespace, name)
        for key in self._by_service.get(svc, set()) - desired.keys():
            self._drop(key)
        if desired:
            self._by_service[svc] = set(desired)
        else:
            self._by_service.pop(svc, None)
        for key, (protocol, addrs, endpoints) in desired.items():
            self._apply(key, protocol, addrs, endpoints, affinity)
        if self.sockets is not None:
            self.sockets.sync(svc, desired.values(), affinity)

    def _desired(self, namespace: str, name: str) -> tuple[_Desired, float | None]:
        obj = self._store.get("Service", namespace, name)
        if obj is None:
            self._fronts.pop((namespace, name), None)
            return {}, None
        front = self._fronts.get((namespace, name))
        if front is None or front.svc is not obj:
            front = self._fronts[(namespace, name)] = self._front(namespace, name, obj)
        if not front.proxied:
            return {}, None
        eps = self._slices.get(namespace, name)
        out: _Desired = {}
        for key, port_name, protocol, addrs in front.ports:
            ready = eps.backends(port_name, protocol, front.families) if eps is not None else []
            out[key] = (protocol, addrs, ready)
        return out, front.affinity

    def _front(self, namespace: str, name: str, obj: Obj) -> _Front:
        svc = ServiceView.from_obj(obj)
        if svc.type not in _PROXIED_TYPES or svc.headless or not svc.cluster_ips:
            return _Front(obj, False)
        affinity = (
            float(svc.session_affinity_timeout) if svc.session_affinity == "ClientIP" else None
        )
        families = frozenset(ipaddress.ip_address(ip).version for ip in svc.cluster_ips)
        net = self._settings.network
        dns_ip = self._settings.kube_dns[0]
        ports: list[tuple[ServicePortName, str, str, frozenset[Addr]]] = []
        for p in svc.ports:
            key = ServicePortName(namespace, name, p.name)
            if p.protocol not in _PROXIED_PROTOCOLS:
                if key not in self._skipped:
                    self._skipped.add(key)
                    logger.info("%s: %s ports are not proxied", key, p.protocol)
                continue
            hosts = [(ip, p.port) for ip in svc.cluster_ips]
            if svc.type in _NODE_PORT_TYPES and p.node_port:
                hosts += [(a, p.node_port) for a in net.node_port_addresses]
            if svc.type == "LoadBalancer":
                hosts += [(ip, p.port) for ip in svc.load_balancer_ips]
            addrs: set[Addr] = set()
            for host, port in hosts:
                try:
                    ip = str(ipaddress.ip_address(host))
                except ValueError:
                    logger.debug("%s: %r is not an IP address; not listening there", key, host)
                    continue
                if ip != dns_ip:
                    addrs.add((ip, port))
            ports.append((key, p.name, p.protocol, frozenset(addrs)))
        return _Front(obj, True, affinity, families, tuple(ports))

    def _apply(
        self,
        key: ServicePortName,
        protocol: str,
        want: frozenset[Addr],
        endpoints: list[Endpoint],
        affinity: float | None,
    ) -> None:
        assert self._hub is not None
        port = self._ports.get(key)
        if port is not None and port.protocol != protocol:
            # The same port name now carries another protocol: a new service port.
            self._drop(key)
            port = None
        if port is None:
            port = self._ports[key] = _Port(PortTarget(key), protocol)
        target = port.target
        # Endpoints first: a listener opened below must find them at once.
        if target.balancer.affinity_timeout != affinity:
            target.balancer.set_affinity(affinity)
        if target.balancer.update(endpoints):
            logger.debug("%s: endpoints now %s", key, target.balancer.endpoints)
        for addr in port.addrs - want:
            port.addrs.discard(addr)
            self._release((*addr, protocol))
        conflicts: set[Addr] = set()
        for addr in want - port.addrs:
            lkey = (*addr, protocol)
            if lkey in self._listeners:
                if addr not in port.conflicts:
                    logger.warning(
                        "%s: %s/%s is already served for %s; not listening there for this one",
                        key,
                        _fmt(addr),
                        protocol,
                        self._listeners[lkey].target.name,
                    )
                conflicts.add(addr)
                continue
            self._listeners[lkey] = _Listener(addr, protocol, target, self._hub)
            port.addrs.add(addr)
        port.conflicts = conflicts
        serve = bool(target.balancer)
        for addr in port.addrs:
            lst = self._listeners[(*addr, protocol)]
            if serve:
                lst.open()
            else:
                lst.close()

    def _drop(self, key: ServicePortName) -> None:
        port = self._ports.pop(key, None)
        if port is None:
            return
        for addr in port.addrs:
            self._release((*addr, port.protocol))

    def _release(self, lkey: _LKey) -> None:
        lst = self._listeners.pop(lkey, None)
        if lst is not None:
            lst.close()
        # A service port that lost this address to a conflict may have it now.
        for key, port in list(self._ports.items()):
            if port.protocol == lkey[2] and lkey[:2] in port.conflicts:
                self._sync(key.namespace, key.name)
                break
