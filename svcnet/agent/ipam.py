"""Pod IP allocation: the node's share of the pod CIDR (host-local IPAM).

The first usable address (network+1) is the CNI bridge's gateway in a real
cluster, so pods start at network+2, take the lowest free address, and give it
back when the pod is deleted.
"""

from __future__ import annotations

import ipaddress


class IpPool:
    def __init__(self, cidr: str) -> None:
        self._net = ipaddress.IPv4Network(cidr)
        self._first = int(self._net.network_address) + 2
        self._last = int(self._net.broadcast_address) - 1
        self._used: set[int] = set()
        self._low = self._first
        """No address below this one is free: the search for the lowest free one
        starts here, rather than at the first of a thousand taken (issue 16)."""

    def allocate(self, preferred: str | None = None) -> str:
        """The lowest free address (or `preferred`, a pod's old IP, if still free)."""
        if preferred:
            try:
                want = int(ipaddress.IPv4Address(preferred))
            except ValueError:
                want = -1
            if self._first <= want <= self._last and want not in self._used:
                self._used.add(want)
                return preferred
        for n in range(self._low, self._last + 1):
            if n not in self._used:
                self._used.add(n)
                self._low = n + 1
                return str(ipaddress.IPv4Address(n))
        self._low = self._last + 1
        raise LookupError(f"pod CIDR {self._net} has no free address for another pod")

    def release(self, ip: str) -> None:
        n = int(ipaddress.IPv4Address(ip))
        if n in self._used:
            self._used.discard(n)
            self._low = min(self._low, n)

    def __len__(self) -> int:
        return len(self._used)
