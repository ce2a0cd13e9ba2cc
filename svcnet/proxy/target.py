"""What a proxied connection is for: the service port, its live state, the shared hub.

kube-proxy names every proxied port by ``ServicePortName`` and keeps, per
port, the endpoints to choose from; here that is ``PortTarget``: the balancer
(round-robin, ClientIP affinity) that each new TCP connection or UDP session
asks at accept time, so an Endpoints change applies to the next connection
without touching a socket, and the per-port counters and outage logging.
``Hub`` is what every connection of one proxier shares. The relays (relay.py
for TCP, udp.py) move the bytes; this module only says where they go.
"""

from __future__ import annotations

import asyncio
import logging
from _socket import socket as RawSocket
from collections.abc import Callable
from typing import NamedTuple, Protocol

from svcnet._log import Throttle
from svcnet.proxy.balancer import RoundRobin
from svcnet.proxy.poller import Poller

logger = logging.getLogger("svcnet.proxy.relay")


class ServicePortName(NamedTuple):
    """Which service port a listener serves: kube-proxy's ``ServicePortName``."""

    namespace: str
    name: str
    port: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}:{self.port}"


class PortTarget:
    """One service port's live state, shared by all of its listeners.

    Listeners keep a reference to it, and each new connection reads the
    balancer at accept time, so an Endpoints change applies to the next
    connection without touching any socket.
    """

    __slots__ = (
        "active",
        "balancer",
        "connections",
        "failing",
        "failures",
        "name",
        "retries",
        "spliced",
    )

    def __init__(self, name: ServicePortName, balancer: RoundRobin | None = None) -> None:
        self.name = name
        self.balancer = balancer if balancer is not None else RoundRobin()
        self.connections = 0
        """Client connections accepted (TCP) or sessions started (UDP)."""
        self.active = 0
        """Client connections (or UDP sessions) open now."""
        self.failures = 0
        """Connections closed unserved: no ready endpoint, or every attempt failed."""
        self.retries = 0
        """Dials that failed and moved on to the next endpoint."""
        self.spliced = 0
        """Directions of connections that turned to splice(2) for a bulk transfer."""
        self.failing = False
        """Set by a failure, cleared by a success: logs one warning per outage, not per client."""

    def fail(self, why: str, debug: bool) -> None:
        self.failures += 1
        if not self.failing:
            self.failing = True
            logger.warning("%s: %s; closing client connections", self.name, why)
        elif debug:
            logger.debug("%s: %s", self.name, why)

    def recovered(self) -> None:
        self.failing = False
        logger.info("%s: endpoints reachable again", self.name)


class Relayed(Protocol):
    """A relayed TCP connection, as the hub sees it."""

    def close(self, reset: bool = False) -> None: ...

    def buffered(self) -> int: ...


class Hub:
    """What every connection of one proxier shares: the loop and the live set.

    The live sets let ``Proxier.stop`` close every relayed connection.
    """

    __slots__ = ("conns", "debug", "loop", "poller", "sessions", "spares", "throttle", "warn")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.poller = Poller(loop)
        self.conns: set[Relayed] = set()
        self.sessions: set[Closable] = set()
        self.spares: dict[int, RawSocket] = {}
        """Per address family, the endpoint socket the next accepted client will use.

        A listener accepts only with one in hand: out of descriptors, a client
        then waits in the kernel's queue instead of being accepted and reset
        for want of a socket to its endpoint. One per family, not per
        listener, so thousands of listeners do not hold thousands of them."""
        self.debug = logger.isEnabledFor(logging.DEBUG)
        self.throttle = Throttle(logger)
        """Errors that can repeat per connection are logged once per interval."""
        self.warn: Callable[[ServicePortName, str, str], None] = lambda _n, _r, _m: None
        """(service port, reason, message): a problem its Service's events should show."""

    async def close_all(self) -> None:
        """Close every connection and UDP session now."""
        for conn in list(self.conns):
            conn.close(reset=True)
        for s in list(self.sessions):
            s.close()
        for spare in self.spares.values():
            spare.close()
        self.spares.clear()
        self.poller.close()

    def buffered(self) -> int:
        """Bytes the proxy holds for its connections (unsent data)."""
        total = 0
        for conn in self.conns:
            total += conn.buffered()
        return total


class Closable:
    """Anything Hub.close_all can close (UDP sessions)."""

    def close(self) -> None:
        raise NotImplementedError
