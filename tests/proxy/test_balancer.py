from __future__ import annotations

import random
from collections import Counter

import pytest

from svcnet.proxy.balancer import Endpoint, RoundRobin

A: Endpoint = ("127.12.0.101", 8080)
B: Endpoint = ("127.12.0.102", 8080)
C: Endpoint = ("127.12.0.103", 8080)


def take(rr: RoundRobin, n: int) -> list[Endpoint | None]:
    return [rr.next() for _ in range(n)]


def test_empty_gives_none() -> None:
    rr = RoundRobin()
    assert not rr
    assert rr.next() is None
    assert rr.update([]) is False


@pytest.mark.parametrize("seed", range(20))
def test_strict_rotation_after_shuffle(seed: int) -> None:
    rr = RoundRobin(random.Random(seed))
    assert rr.update([A, B, C]) is True
    order = rr.endpoints
    assert sorted(order) == [A, B, C]
    assert take(rr, 7) == [*order, *order, order[0]]


def test_shuffle_uses_the_rng() -> None:
    orders = set()
    for seed in range(50):
        rr = RoundRobin(random.Random(seed))
        rr.update([A, B, C])
        orders.add(tuple(rr.endpoints))
    # All six permutations of three appear over 50 seeds; a balancer that did
    # not shuffle would always start on the same pod.
    assert len(orders) == 6


def test_change_reshuffles_and_resets_index() -> None:
    rng = random.Random(1)
    rr = RoundRobin(rng)
    rr.update([A, B, C])
    rr.next()
    assert rr.update([A, B]) is True
    order = rr.endpoints
    assert sorted(order) == [A, B]
    assert take(rr, 2) == order


def test_same_set_keeps_order_and_index() -> None:
    rr = RoundRobin(random.Random(2))
    rr.update([A, B, C])
    order = rr.endpoints
    first = rr.next()
    assert rr.update([C, B, A]) is False
    assert rr.endpoints == order
    assert rr.next() == order[1] != first


def test_index_wraps_when_list_shrinks() -> None:
    rr = RoundRobin(random.Random(3))
    rr.update([A, B, C])
    take(rr, 2)
    rr.update([A])
    assert take(rr, 3) == [A, A, A]


def test_even_distribution() -> None:
    rr = RoundRobin()
    rr.update([A, B, C])
    assert Counter(take(rr, 300)) == {A: 100, B: 100, C: 100}


def test_duplicates_count_as_a_change() -> None:
    rr = RoundRobin(random.Random(4))
    rr.update([A, B])
    assert rr.update([A, A, B]) is True
    assert Counter(take(rr, 3)) == {A: 2, B: 1}
