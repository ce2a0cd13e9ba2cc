"""Endpoint selection, as kube-proxy's userspace ``roundrobin.go``.

Round-robin: each service port keeps its ready endpoints in a shuffled order
and hands them out strictly in turn, one per connection (or UDP session). When
the set of endpoints changes, the list is shuffled again and the index goes
back to 0, so that many proxies (or many restarts of one) do not all start on
the same pod. An update that leaves the set unchanged (another port of the same
Endpoints object changed, a not-ready address came and went) keeps the order
and the index, like the original's ``slicesEquiv`` check: otherwise every
unrelated Endpoints write would reset the rotation and skew the distribution.

Session affinity (``sessionAffinity: ClientIP``): a map from client IP (the
port is ignored) to ``[endpoint, last used]``. A pick within
``timeoutSeconds`` of the last one returns the stored endpoint and restarts
the timer (iptables' ``-m recent --set`` does the same at every new
connection); an expired or missing entry takes the next endpoint in turn and
stores it. Entries whose endpoint has left the set are dropped at once. After a
failed dial the caller asks again with ``reset=True``: the next endpoint in
turn becomes the client's new affinity (the userspace proxy's
``sessionAffinityReset``).

Pure logic, no IO: the proxier calls ``update``/``set_affinity`` from store
events and ``pick`` once per connection attempt. The clock is injectable so
tests can move time without sleeping.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

Endpoint = tuple[str, int]
"""A backend as (ip, port)."""

SWEEP_EVERY = 1024
"""New affinity entries between two sweeps of expired ones (bounds the map)."""


class _Sticky:
    __slots__ = ("ep", "last")

    def __init__(self, ep: Endpoint, last: float) -> None:
        self.ep = ep
        self.last = last


class RoundRobin:
    __slots__ = (
        "_affinity",
        "_clock",
        "_endpoints",
        "_index",
        "_rng",
        "_since_sweep",
        "_timeout",
    )

    def __init__(
        self, rng: random.Random | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._endpoints: list[Endpoint] = []
        self._index = 0
        # Injectable so unit tests can pin the shuffle and move time.
        self._rng = rng or random.Random()
        self._clock = clock
        self._timeout: float | None = None
        self._affinity: dict[str, _Sticky] = {}
        self._since_sweep = 0

    @property
    def endpoints(self) -> list[Endpoint]:
        """The current rotation order (a copy)."""
        return list(self._endpoints)

    @property
    def affinity_timeout(self) -> float | None:
        """Seconds a ClientIP affinity holds, or None when affinity is off."""
        return self._timeout

    def __bool__(self) -> bool:
        return bool(self._endpoints)

    def __len__(self) -> int:
        return len(self._endpoints)

    def update(self, endpoints: list[Endpoint]) -> bool:
        """Take a new endpoint list; returns True when the set changed (reshuffled)."""
        if sorted(endpoints) == sorted(self._endpoints):
            return False
        shuffled = list(endpoints)
        self._rng.shuffle(shuffled)
        self._endpoints = shuffled
        self._index = 0
        if self._affinity:
            live = set(shuffled)
            self._affinity = {ip: e for ip, e in self._affinity.items() if e.ep in live}
        return True

    def set_affinity(self, timeout: float | None) -> None:
        """Turn ClientIP affinity on (timeout in seconds) or off (None).

        A change of the timeout keeps the entries (they are judged by the new
        one); turning affinity off forgets them, so switching it back on
        starts afresh, as a Service switched None -> ClientIP does.
        """
        if timeout is not None and timeout <= 0:
            raise ValueError(f"affinity timeout must be positive, not {timeout!r}")
        self._timeout = timeout
        if timeout is None:
            self._affinity.clear()

    def next(self) -> Endpoint | None:
        """The next endpoint in turn, or None when there is none."""
        eps = self._endpoints
        if not eps:
            return None
        i = self._index
        if i >= len(eps):
            i = 0
        self._index = i + 1
        return eps[i]

    def pick(self, client_ip: str, reset: bool = False) -> Endpoint | None:
        """The endpoint for a new connection from client_ip (affinity first, then in turn)."""
        timeout = self._timeout
        if timeout is None:
            return self.next()
        now = self._clock()
        aff = self._affinity
        if not reset:
            entry = aff.get(client_ip)
            if entry is not None and now - entry.last < timeout:
                entry.last = now
                return entry.ep
        ep = self.next()
        if ep is None:
            aff.pop(client_ip, None)
            return None
        aff[client_ip] = _Sticky(ep, now)
        self._since_sweep += 1
        if self._since_sweep >= SWEEP_EVERY:
            self._sweep(now, timeout)
        return ep

    def _sweep(self, now: float, timeout: float) -> None:
        self._since_sweep = 0
        self._affinity = {ip: e for ip, e in self._affinity.items() if now - e.last < timeout}

    def affinity(self) -> dict[str, Endpoint]:
        """Client IP -> endpoint for the entries still within the timeout (a copy)."""
        if self._timeout is None:
            return {}
        now = self._clock()
        timeout = self._timeout
        return {ip: e.ep for ip, e in self._affinity.items() if now - e.last < timeout}
