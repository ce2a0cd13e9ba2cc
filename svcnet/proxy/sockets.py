"""Service balancing at connect(): the proxier's decisions written into the kernel.

Cilium's socket-level load balancer, in svcnet's terms: for every Service
address the proxier serves (ClusterIPs, NodePorts on node addresses,
LoadBalancer IPs) the eBPF socket hooks (kernel/sockhooks.py) get the ready
endpoints of that service port, so a pod's (and, with ``proxy.socket_lb:
host``, this machine's) connect() or sendmsg() to the address goes straight
to an endpoint, with no proxy hop. The maps follow the same reconciling as
the listeners, in the same store event, so they are current before the event
returns.

The userspace proxy keeps listening for everything the hooks cannot see
(other network namespaces, containers, IPv6 addresses); a service port with
no ready endpoint is taken out of the maps, so a connection falls through to
it and is refused as kube-proxy's REJECT refuses it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Literal, Protocol

from svcnet._log import Throttle
from svcnet.k8s.endpointslices import ip_family

logger = logging.getLogger(__name__)

Frontend = tuple[str, int, str]
"""(IPv4 address, port, "TCP" or "UDP")."""


class ServiceMaps(Protocol):
    """What the socket hooks offer the proxier (kernel/sockhooks.SocketHooks)."""

    def set_service(
        self,
        frontend_ip: str,
        port: int,
        protocol: Literal["TCP", "UDP"],
        backends: Iterable[tuple[str, int]],
        affinity_timeout: int | None = None,
    ) -> None: ...

    def remove_service(
        self, frontend_ip: str, port: int, protocol: Literal["TCP", "UDP"]
    ) -> None: ...


class SocketBalancer:
    """Keeps one Service's frontends in the maps as the proxier reconciles it."""

    def __init__(self, maps: ServiceMaps) -> None:
        self.maps = maps
        self._installed: dict[tuple[str, str], set[Frontend]] = {}
        self._written: dict[Frontend, tuple[tuple[tuple[str, int], ...], int | None]] = {}
        """What the maps hold for each frontend: a Service's sync whose endpoints did
        not change (a slice write for a pod that is not ready yet) writes nothing."""
        self._throttle = Throttle(logger)

    def sync(
        self,
        service: tuple[str, str],
        ports: Iterable[tuple[str, Iterable[tuple[str, int]], list[tuple[str, int]]]],
        affinity: float | None,
    ) -> None:
        """`ports`: (protocol, frontend addresses, ready endpoints) per service port."""
        want: dict[Frontend, list[tuple[str, int]]] = {}
        for protocol, addrs, endpoints in ports:
            if protocol not in ("TCP", "UDP") or not endpoints:
                continue
            for ip, port in addrs:
                if ip_family(ip) == 4:
                    want[(ip, port, protocol)] = endpoints
        old = self._installed.get(service, set())
        timeout = max(1, int(affinity)) if affinity is not None else None
        try:
            for ip, port, protocol in old - want.keys():
                self._written.pop((ip, port, protocol), None)
                self.maps.remove_service(ip, port, _proto(protocol))
            for frontend, endpoints in want.items():
                v4 = tuple((a, p) for a, p in endpoints if ip_family(a) == 4)
                if self._written.get(frontend) == (v4, timeout):
                    continue
                ip, port, protocol = frontend
                self._written.pop(frontend, None)  # unknown until the write succeeds
                self.maps.set_service(ip, port, _proto(protocol), list(v4), timeout)
                self._written[frontend] = (v4, timeout)
        except OSError as e:
            # A full map, most likely: that Service stays with the userspace proxy.
            self._throttle.log(
                logging.ERROR,
                "maps",
                "%s/%s: cannot update the socket hooks' maps: %s",
                *service,
                e,
            )
        if want:
            self._installed[service] = set(want)
        else:
            self._installed.pop(service, None)

    def clear(self) -> None:
        for service in list(self._installed):
            self.sync(service, (), None)


def _proto(protocol: str) -> Literal["TCP", "UDP"]:
    return "UDP" if protocol == "UDP" else "TCP"
