"""IpPool hands out the lowest free address, checked against a brute-force reference
over random allocations and releases (its search starts at a low-water mark)."""

from __future__ import annotations

import ipaddress
import random

import pytest

from svcnet.agent.ipam import IpPool


def test_lowest_free_address_like_a_full_scan() -> None:
    rng = random.Random(16)
    pool = IpPool("127.13.0.0/26")  # 62 usable, 60 for pods
    first = int(ipaddress.IPv4Address("127.13.0.2"))
    last = int(ipaddress.IPv4Address("127.13.0.62"))
    used: set[int] = set()
    for _ in range(5000):
        if used and rng.random() < 0.45:
            n = rng.choice(sorted(used))
            used.discard(n)
            pool.release(str(ipaddress.IPv4Address(n)))
            continue
        preferred = None
        if rng.random() < 0.2:
            preferred = str(ipaddress.IPv4Address(rng.randrange(first - 2, last + 3)))
        free = [n for n in range(first, last + 1) if n not in used]
        if not free:
            with pytest.raises(LookupError):
                pool.allocate(preferred)
            continue
        want = free[0]
        if preferred is not None and int(ipaddress.IPv4Address(preferred)) in free:
            want = int(ipaddress.IPv4Address(preferred))
        assert pool.allocate(preferred) == str(ipaddress.IPv4Address(want))
        used.add(want)
        assert len(pool) == len(used)


def test_releasing_an_address_never_taken_changes_nothing() -> None:
    pool = IpPool("127.13.0.0/29")
    assert [pool.allocate() for _ in range(3)] == ["127.13.0.2", "127.13.0.3", "127.13.0.4"]
    pool.release("127.13.0.6")
    pool.release("127.13.0.3")
    assert pool.allocate() == "127.13.0.3"
    assert pool.allocate() == "127.13.0.5"
