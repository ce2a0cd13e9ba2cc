"""ClusterIP and NodePort allocation, as kube-apiserver's allocators do it.

Allocated values are derived from the stored Services on every call instead of
being kept in a separate bitmap, so the two can never disagree (a daemon
restart or a half-failed write leaves nothing to repair).
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable

from svcnet.registry.errors import ApiError, Cause
from svcnet.registry.validation import invalid


class AllocationError(Exception):
    def __init__(self, cause: Cause) -> None:
        super().__init__(cause.render())
        self.cause = cause


def _go_strings(ips: Iterable[str]) -> str:
    return "[]string{" + ", ".join(f'"{i}"' for i in ips) + "}"


class ClusterIPAllocator:
    def __init__(self, cidr: str, rng: random.Random | None = None) -> None:
        self.net = ipaddress.IPv4Network(cidr)
        self.rng = rng or random.Random()
        size = self.net.num_addresses - 2
        # The lower "static" band is kept for users who pick their IP by hand.
        self.static = 0 if size < 16 else min(max(16, size // 16), 256)

    def allocate(self, used: set[str], requested: str | None) -> str:
        if requested:
            try:
                ip = ipaddress.IPv4Address(requested)
            except ValueError:
                raise AllocationError(
                    invalid("spec.clusterIPs", requested, "must be a valid IP address")
                ) from None
            if ip not in self.net or ip in (self.net.network_address, self.net.broadcast_address):
                raise AllocationError(
                    Cause(
                        "spec.clusterIPs",
                        "FieldValueInvalid",
                        f"Invalid value: {_go_strings([requested])}: failed to allocate IP "
                        f"{requested}: provided IP is not in the valid range. The range of valid "
                        f"IPs is {self.net}",
                    )
                )
            if requested in used:
                raise AllocationError(
                    Cause(
                        "spec.clusterIPs",
                        "FieldValueInvalid",
                        f"Invalid value: {_go_strings([requested])}: failed to allocate IP "
                        f"{requested}: provided IP is already allocated",
                    )
                )
            return requested
        first = int(self.net.network_address) + 1
        last = int(self.net.broadcast_address) - 1
        for lo, hi in ((first + self.static, last), (first, first + self.static - 1)):
            start = self.rng.randint(lo, hi)
            for off in range(hi - lo + 1):
                cand = str(ipaddress.IPv4Address(lo + (start - lo + off) % (hi - lo + 1)))
                if cand not in used:
                    return cand
        raise ApiError(
            500,
            "InternalError",
            "Internal error occurred: failed to allocate a serviceIP: range is full",
        )


class NodePortAllocator:
    def __init__(self, lo: int, hi: int, rng: random.Random | None = None) -> None:
        self.lo, self.hi = lo, hi
        self.rng = rng or random.Random()
        # calculateRangeOffset: no static band at all for ranges under 16 ports.
        size = hi - lo + 1
        self.static = 0 if size < 16 else min(max(16, size // 32), 128)

    def check(self, port: int, used: set[int], path: str) -> None:
        if not self.lo <= port <= self.hi:
            raise AllocationError(
                invalid(
                    path,
                    port,
                    f"provided port is not in the valid range. The range of valid "
                    f"ports is {self.lo}-{self.hi}",
                )
            )
        if port in used:
            raise AllocationError(invalid(path, port, "provided port is already allocated"))

    def allocate(self, used: set[int]) -> int:
        for lo, hi in ((self.lo + self.static, self.hi), (self.lo, self.lo + self.static - 1)):
            if lo > hi:
                continue
            start = self.rng.randint(lo, hi)
            for off in range(hi - lo + 1):
                cand = lo + (start - lo + off) % (hi - lo + 1)
                if cand not in used:
                    return cand
        raise ApiError(
            500,
            "InternalError",
            "Internal error occurred: failed to allocate a nodePort: range is full",
        )
