"""controllers/selection.py against a scan of the namespace: the indexes find
exactly the Services and pods a selector match over everything finds."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from svcnet.controllers.selection import pods_selected, services_selecting
from svcnet.k8s import labels
from svcnet.store import Store


def _labels(rng: random.Random) -> dict[str, str]:
    return {k: rng.choice("xy") for k in rng.sample("abc", rng.randint(0, 3))}


@pytest.mark.parametrize("seed", range(5))
def test_selection_matches_a_scan(seed: int) -> None:
    rng = random.Random(seed)
    s = Store()
    for i in range(30):
        ns = rng.choice(["n1", "n2"])
        selector: Any = rng.choice([None, {}, _labels(rng)])
        s.create(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": f"s{i}", "namespace": ns},
                "spec": {} if selector is None else {"selector": selector},
            }
        )
        s.create(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"p{i}", "namespace": ns, "labels": _labels(rng)},
                "spec": {},
            }
        )
    for _ in range(60):
        # Relabel pods and change selectors: the indexes follow every write.
        if rng.random() < 0.5:
            pod = copy.deepcopy(rng.choice(s.list("Pod")))
            pod["metadata"]["labels"] = _labels(rng)
            s.update(pod)
        else:
            svc = copy.deepcopy(rng.choice(s.list("Service")))
            svc["spec"] = rng.choice([{}, {"selector": {}}, {"selector": _labels(rng)}])
            s.update(svc)
        for ns in ("n1", "n2"):
            for pod in s.list("Pod", ns):
                want = [
                    svc
                    for svc in s.list("Service", ns)
                    if labels.from_map(svc["spec"].get("selector")).matches(
                        pod["metadata"].get("labels")
                    )
                ]
                assert services_selecting(s, ns, [pod, None]) == want
            for svc in s.list("Service", ns):
                selector = svc["spec"].get("selector")
                want = [
                    p
                    for p in s.list("Pod", ns)
                    if labels.from_map(selector).matches(p["metadata"].get("labels"))
                ]
                assert pods_selected(s, ns, selector) == want
