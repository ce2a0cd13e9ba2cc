"""The rollout arithmetic of svcnet.controllers.deployment, as pure functions."""

from __future__ import annotations

import pytest

from svcnet.controllers.rollout import (
    RS,
    Strategy,
    compute_hash,
    fnv32a,
    new_rs_replicas,
    old_rs_scale_down,
    proportions,
    resolve_fenceposts,
)
from svcnet.k8s.names import safe_encode


@pytest.mark.parametrize(
    ("surge", "unavailable", "replicas", "want"),
    [
        ("25%", "25%", 4, (1, 1)),
        ("25%", "25%", 3, (1, 0)),  # surge rounds up, unavailable down
        ("25%", "25%", 1, (1, 0)),
        ("25%", "25%", 10, (3, 2)),
        (None, None, 10, (3, 2)),  # the defaults
        ("0%", "0%", 5, (0, 1)),  # both 0 -> unavailable 1
        (0, "10%", 5, (0, 1)),  # 0.5 rounds down to 0 -> then 1
        (2, 1, 3, (2, 1)),
        ("50%", "100%", 3, (2, 3)),
    ],
)
def test_resolve_fenceposts(
    surge: object, unavailable: object, replicas: int, want: object
) -> None:
    assert resolve_fenceposts(surge, unavailable, replicas) == want


def test_fnv32a_and_safe_encode_match_go() -> None:
    # Reference values of Go's hash/fnv New32a.
    assert fnv32a(b"") == 0x811C9DC5
    assert fnv32a(b"a") == 0xE40C292C
    assert fnv32a(b"foobar") == 0xBF9CF968
    # SafeEncodeString: digit d -> alphanums[ord(d) % 27] (k8s-services.md section 5).
    assert safe_encode("0123456789") == "456789bcdf"


def test_compute_hash_is_stable_and_changes_with_template_and_collisions() -> None:
    t = {"metadata": {"labels": {"app": "echo"}}, "spec": {"containers": [{"name": "e"}]}}
    h = compute_hash(t)
    assert h == compute_hash({"spec": t["spec"], "metadata": t["metadata"]})  # key order
    assert all(c in "4256789bcdf" for c in h) and 1 <= len(h) <= 10
    assert compute_hash(t, 1) != h
    t2 = {"metadata": t["metadata"], "spec": {"containers": [{"name": "f"}]}}
    assert compute_hash(t2) != h


def rolling(replicas: int, surge: int, unavailable: int) -> Strategy:
    return Strategy(replicas, True, surge, unavailable)


def test_new_replicaset_grows_up_to_replicas_plus_surge() -> None:
    s = rolling(3, 1, 0)
    assert new_rs_replicas(s, [RS("old", 3, 3)], None) == 1
    assert new_rs_replicas(s, [RS("old", 3, 3), RS("new", 1, 0)], RS("new", 1, 0)) == 1
    assert new_rs_replicas(s, [RS("old", 2, 2), RS("new", 1, 1)], RS("new", 1, 1)) == 2
    assert new_rs_replicas(s, [RS("old", 0, 0), RS("new", 3, 3)], RS("new", 3, 3)) == 3
    # Recreate: straight to replicas.
    assert new_rs_replicas(Strategy(3, False, 0, 0), [], None) == 3


def test_old_replicasets_scale_down_only_while_enough_stay_available() -> None:
    s = rolling(3, 1, 0)
    # New pod not ready yet: nothing may go.
    assert old_rs_scale_down(s, [RS("old", 3, 3)], RS("new", 1, 0)) == {}
    # New pod ready: one old pod may go.
    assert old_rs_scale_down(s, [RS("old", 3, 3)], RS("new", 1, 1)) == {"old": 2}
    # maxUnavailable 1 of 4: one old pod goes before any new one is ready.
    assert old_rs_scale_down(rolling(4, 1, 1), [RS("old", 4, 4)], RS("new", 1, 0)) == {"old": 3}
    # Unhealthy old replicas go first, within the budget (4 pods - 2 min - 1 new unready).
    assert old_rs_scale_down(rolling(3, 1, 1), [RS("old", 3, 1)], RS("new", 1, 0)) == {"old": 2}
    # No budget at all (all pods needed): even unhealthy ones stay.
    assert old_rs_scale_down(rolling(3, 1, 0), [RS("old", 3, 1)], RS("new", 1, 0)) == {}
    # Oldest first.
    got = old_rs_scale_down(rolling(4, 1, 1), [RS("a", 2, 2), RS("b", 2, 2)], RS("new", 1, 1))
    assert got == {"a": 0}


def test_a_whole_rolling_update_by_the_arithmetic() -> None:
    """Drive old/new sizes to the end with pods turning ready at once; check bounds."""
    s = rolling(3, 1, 0)
    old, new = RS("old", 3, 3), RS("new", 0, 0)
    for _ in range(20):
        size = new_rs_replicas(s, [old, new], new)
        new = RS("new", size, size)  # pods become available immediately
        assert old.replicas + new.replicas <= 4
        down = old_rs_scale_down(s, [old], new)
        if "old" in down:
            old = RS("old", down["old"], down["old"])
        assert old.available + new.available >= 3
        if new.replicas == 3 and old.replicas == 0:
            break
    assert (old.replicas, new.replicas) == (0, 3)


def test_proportional_scaling_mid_rollout() -> None:
    # 10 replicas, surge 3: old 8 + new 5 = 13. Scale to 15 (allowed 15+4=19): +6.
    s = rolling(15, 4, 3)
    sizes = proportions(s, [RS("old", 8, 8), RS("new", 5, 0)], {"old": 13, "new": 13}, "new")
    assert sum(sizes.values()) == 19
    assert sizes["old"] > 8 and sizes["new"] > 5
    # Scale down to 5 (allowed 5+2=7).
    s = rolling(5, 2, 1)
    sizes = proportions(s, [RS("old", 8, 8), RS("new", 5, 0)], {"old": 13, "new": 13}, "new")
    assert sum(sizes.values()) == 7
