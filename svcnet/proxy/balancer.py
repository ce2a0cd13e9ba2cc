"""Round-robin endpoint selection, as kube-proxy's userspace ``roundrobin.go``.

Each service port keeps its ready endpoints in a shuffled order and hands them
out strictly in turn, one per connection. When the set of endpoints changes,
the list is shuffled again and the index goes back to 0, so that many proxies
(or many restarts of one) do not all start on the same pod. An update that
leaves the set unchanged (another port of the same Endpoints object changed, a
not-ready address came and went) keeps the order and the index, like the
original's ``slicesEquiv`` check: otherwise every unrelated Endpoints write
would reset the rotation and skew the distribution.

Pure logic, no IO: the proxier calls ``update`` from store events and
``next`` once per connection attempt.
"""

from __future__ import annotations

import random

Endpoint = tuple[str, int]
"""A backend as (ip, port)."""


class RoundRobin:
    __slots__ = ("_endpoints", "_index", "_rng")

    def __init__(self, rng: random.Random | None = None) -> None:
        self._endpoints: list[Endpoint] = []
        self._index = 0
        # Injectable so unit tests can pin the shuffle.
        self._rng = rng or random.Random()

    @property
    def endpoints(self) -> list[Endpoint]:
        """The current rotation order (a copy)."""
        return list(self._endpoints)

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
        return True

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
