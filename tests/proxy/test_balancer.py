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


class Clock:
    """A hand-moved clock: affinity expiry without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sticky(seed: int = 5) -> tuple[RoundRobin, Clock]:
    clock = Clock()
    rr = RoundRobin(random.Random(seed), clock=clock)
    rr.update([A, B, C])
    rr.set_affinity(10.0)
    return rr, clock


def test_without_affinity_pick_is_round_robin() -> None:
    rr = RoundRobin(random.Random(6))
    rr.update([A, B, C])
    order = rr.endpoints
    assert [rr.pick("127.0.0.1") for _ in range(3)] == order
    assert rr.affinity() == {}


def test_affinity_sticks_and_other_clients_rotate() -> None:
    rr, clock = sticky()
    order = rr.endpoints
    first = rr.pick("127.0.0.1")
    assert first == order[0]
    for _ in range(5):
        clock.now += 9.0  # each pick restarts the timer, so 45 s in total still hold
        assert rr.pick("127.0.0.1") == first
    # Another client takes the next endpoint in turn, and keeps it.
    assert rr.pick("127.0.0.2") == order[1]
    assert rr.pick("127.0.0.2") == order[1]
    assert rr.affinity() == {"127.0.0.1": first, "127.0.0.2": order[1]}


def test_affinity_expires_after_timeout() -> None:
    rr, clock = sticky()
    order = rr.endpoints
    assert rr.pick("127.0.0.1") == order[0]
    clock.now += 9.999
    assert rr.pick("127.0.0.1") == order[0]
    clock.now += 10.0
    assert rr.affinity() == {}
    # Expired: the next endpoint in turn, which becomes the new affinity.
    assert rr.pick("127.0.0.1") == order[1]
    assert rr.pick("127.0.0.1") == order[1]


def test_retry_order_after_failed_dial() -> None:
    rr, _ = sticky()
    order = rr.endpoints
    assert rr.pick("127.0.0.1") == order[0]
    # The dial to order[0] failed: the caller asks again with reset, and the
    # next endpoints come in turn; the last one tried is the new affinity.
    assert rr.pick("127.0.0.1", reset=True) == order[1]
    assert rr.pick("127.0.0.1", reset=True) == order[2]
    assert rr.pick("127.0.0.1", reset=True) == order[0]
    assert rr.pick("127.0.0.1") == order[0]
    assert rr.affinity() == {"127.0.0.1": order[0]}


def test_affinity_dropped_when_its_endpoint_goes() -> None:
    rr, _ = sticky()
    gone = rr.pick("127.0.0.1")
    assert gone is not None
    rest = [e for e in (A, B, C) if e != gone]
    assert rr.update(rest) is True
    assert rr.affinity() == {}
    assert rr.pick("127.0.0.1") in rest


def test_affinity_off_forgets_and_timeout_change_keeps() -> None:
    rr, clock = sticky()
    first = rr.pick("127.0.0.1")
    rr.set_affinity(100.0)
    clock.now += 50
    assert rr.pick("127.0.0.1") == first
    rr.set_affinity(None)
    assert rr.affinity() == {}
    rr.set_affinity(100.0)
    assert rr.affinity() == {}
    with pytest.raises(ValueError, match="positive"):
        rr.set_affinity(0)


def test_expired_entries_are_swept() -> None:
    rr, clock = sticky()
    for i in range(600):
        rr.pick(f"127.1.{i // 250}.{i % 250}")
    clock.now += 11
    for i in range(600):
        rr.pick(f"127.2.{i // 250}.{i % 250}")
    # The sweep at the 1024th new entry dropped the 600 expired ones.
    assert len(rr._affinity) < 1024
    assert len(rr.affinity()) == 600


def test_no_endpoints_no_affinity() -> None:
    rr = RoundRobin(clock=Clock())
    rr.set_affinity(10.0)
    assert rr.pick("127.0.0.1") is None
    assert rr.affinity() == {}
