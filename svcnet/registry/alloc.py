"""ClusterIP and NodePort allocation, as kube-apiserver's allocators do it.

Allocated values are derived from the stored Services on every call instead of
being kept in a separate bitmap, so the two can never disagree (a daemon
restart or a half-failed write leaves nothing to repair).
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable

from svcnet.k8s.objects import Obj
from svcnet.registry.errors import ApiError, Cause
from svcnet.registry.validation import invalid


class AllocationError(Exception):
    def __init__(self, cause: Cause, *more: Cause) -> None:
        super().__init__(cause.render())
        self.causes = [cause, *more]


FAMILIES = {4: "IPv4", 6: "IPv6"}


def _family(ip: str) -> str | None:
    try:
        return FAMILIES[ipaddress.ip_address(ip).version]
    except ValueError:
        return None


def init_ip_families(spec: Obj, old_spec: Obj | None, configured: tuple[str, ...]) -> None:
    """initIPFamilyFields (pkg/registry/core/service/storage/alloc.go): default
    ipFamilyPolicy and ipFamilies, and refuse what the cluster's service CIDRs
    (`configured`, primary first) cannot give. Raises AllocationError."""
    headless_selectorless = spec.get("clusterIP") == "None" and not spec.get("selector")
    if spec.get("ipFamilyPolicy") is None:
        if old_spec and old_spec.get("ipFamilyPolicy"):
            spec["ipFamilyPolicy"] = old_spec["ipFamilyPolicy"]
        elif headless_selectorless:
            spec["ipFamilyPolicy"] = "RequireDualStack"
        else:
            spec["ipFamilyPolicy"] = "SingleStack"
    policy = spec["ipFamilyPolicy"]
    families: list[str] = [str(f) for f in spec.get("ipFamilies") or ()]
    ips = [
        str(i)
        for i in spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    ]
    errs: list[Cause] = []
    if policy == "SingleStack":
        if len(ips) == 2:
            errs.append(
                invalid(
                    "spec.ipFamilyPolicy",
                    policy,
                    "must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs "
                    "are specified",
                )
            )
        if len(families) == 2:
            errs.append(
                invalid(
                    "spec.ipFamilyPolicy",
                    policy,
                    "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families "
                    "are specified",
                )
            )
    for i, ip in enumerate(ips):
        if ip == "None":
            break
        fam = _family(ip)
        if fam is None or i < len(families):
            continue
        if fam not in configured:
            errs.append(
                Cause(
                    f"spec.clusterIPs[{i}]",
                    "FieldValueInvalid",
                    f"Invalid value: {_go_strings(ips)}: {fam} is not configured on this cluster",
                )
            )
        else:
            families.append(fam)
    if errs:
        raise AllocationError(*errs)
    if headless_selectorless:
        families = families or [configured[0]]
        if len(families) < 2 and policy != "SingleStack":
            families.append("IPv6" if families[0] == "IPv4" else "IPv4")
        spec["ipFamilies"] = families
        return
    if policy == "RequireDualStack" and len(configured) < 2:
        errs.append(
            invalid(
                "spec.ipFamilyPolicy",
                policy,
                "this cluster is not configured for dual-stack services",
            )
        )
    for i, fam in enumerate(families):
        if fam not in configured:
            errs.append(invalid(f"spec.ipFamilies[{i}]", fam, "not configured on this cluster"))
    if errs:
        raise AllocationError(*errs)
    families = families or [configured[0]]
    if policy != "SingleStack" and len(families) == 1 and len(configured) == 2:
        families.append("IPv6" if families[0] == "IPv4" else "IPv4")
    spec["ipFamilies"] = families


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
