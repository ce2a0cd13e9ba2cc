"""controllers/selection.py against a scan of the namespace: the indexes find
exactly the Services and pods a selector match over everything finds."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from svcnet.config import Settings
from svcnet.controllers.endpoints import endpoints_for
from svcnet.controllers.endpointslice import slices_for_service
from svcnet.controllers.replicaset import ReplicaSetController
from svcnet.controllers.selection import pods_selected, services_selecting, services_to_sync
from svcnet.k8s import labels
from svcnet.k8s.objects import Obj
from svcnet.registry import Registry
from svcnet.store import Event, Store


def _labels(rng: random.Random) -> dict[str, str]:
    return {k: rng.choice("xy") for k in rng.sample("abc", rng.randint(0, 3))}


def _pod_version(rng: random.Random, pod: Obj) -> Obj:
    """pod with a random set of the fields its writers change while it lives."""
    new = copy.deepcopy(pod)
    md, st = new["metadata"], new.setdefault("status", {})
    for _ in range(rng.randint(1, 3)):
        what = rng.randrange(9)
        if what == 0:
            md["labels"] = _labels(rng)
        elif what == 1:
            md["deletionTimestamp"] = "2026-12-04T10:00:00Z"
        elif what == 2:
            st["phase"] = rng.choice(["Pending", "Running", "Succeeded", "Failed"])
        elif what == 3:
            ip = rng.choice(["", "127.150.0.7", "127.150.0.8"])
            st["podIP"] = ip
            st["podIPs"] = [{"ip": ip}] if ip else []
        elif what == 4:
            st["conditions"] = [
                {"type": "Ready", "status": rng.choice(["True", "False"])},
                {"type": "ContainersReady", "status": rng.choice(["True", "False"])},
            ]
        elif what == 5:
            st["containerStatuses"] = [{"name": "c", "started": rng.random() < 0.5}]
        elif what == 6:
            st["startTime"] = f"2026-12-04T10:00:{rng.randrange(60):02d}Z"
        elif what == 7:
            md.setdefault("annotations", {})["touched"] = str(rng.random())
        else:
            new["spec"]["nodeName"] = "svcnet"
    return new


def _what_endpoints_show(svc: Obj, pod: Obj) -> tuple[Any, ...]:
    selected = labels.from_map(svc["spec"].get("selector")).matches(pod["metadata"].get("labels"))
    pods = [pod] if selected else []
    st = pod.get("status") or {}
    counted = [p for p in pods if st.get("phase") not in ("Succeeded", "Failed")]
    return (
        slices_for_service(svc, pods),
        endpoints_for(svc, pods),
        # ServiceEventRecorder.problem's inputs: which pods count, whether one is ready.
        [
            (
                p["metadata"]["name"],
                any(
                    c.get("type") == "Ready" and c.get("status") == "True"
                    for c in st.get("conditions") or ()
                ),
            )
            for p in counted
        ],
    )


@pytest.mark.parametrize("seed", range(5))
def test_a_pod_update_resyncs_every_service_whose_endpoints_it_changes(seed: int) -> None:
    """services_to_sync skips an update only when no endpoint of any Service can
    differ: checked against what the controllers compute from both versions."""
    rng = random.Random(seed)
    s = Store()
    for i in range(6):
        s.create(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": f"s{i}", "namespace": "n"},
                "spec": {
                    "selector": _labels(rng),
                    "clusterIP": "10.0.0.1",
                    "ports": [{"port": 80, "targetPort": rng.choice([8080, "http"])}],
                },
            }
        )
    pod: Obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "n", "uid": "u1", "labels": _labels(rng)},
        "spec": {"containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 80}]}]},
        "status": {},
    }
    skipped = 0
    for _ in range(400):
        new = _pod_version(rng, pod)
        found = {
            svc["metadata"]["name"]
            for svc in services_to_sync(s, Event("MODIFIED", "Pod", new, pod, 0))
        }
        for svc in s.list("Service", "n"):
            if _what_endpoints_show(svc, pod) != _what_endpoints_show(svc, new):
                assert svc["metadata"]["name"] in found, (pod, new)
        skipped += not found
        pod = new
    assert skipped > 50  # the filter does skip: container states, start times, annotations


def test_a_replicaset_ignores_pod_writes_that_change_none_of_its_counts() -> None:
    rng = random.Random(7)
    reg = Registry(Settings(), Store())
    rsc = ReplicaSetController(reg)
    owner = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": "rs",
        "uid": "r1",
        "controller": True,
    }
    pod: Obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "n", "labels": {}, "ownerReferences": [owner]},
        "spec": {"containers": [{"name": "c"}]},
        "status": {},
    }

    def counts(p: Obj) -> tuple[Any, ...]:
        st = p.get("status") or {}
        return (
            p["metadata"].get("labels"),
            p["metadata"].get("deletionTimestamp"),
            st.get("phase") in ("Succeeded", "Failed"),
            any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in st.get("conditions") or ()
            ),
        )

    for _ in range(300):
        new = _pod_version(rng, pod)
        keys = sorted(set(rsc.keys_for(Event("MODIFIED", "Pod", new, pod, 0))))
        assert keys == ([] if counts(pod) == counts(new) else [("n", "rs")])
        pod = new


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


def test_the_services_a_pod_event_concerns_are_found_once_per_event() -> None:
    # Three controllers ask for each pod event; the first one's answer serves the
    # others (Event.memo), and a later event asks the store again.
    s = Store()

    def svc(name: str) -> Obj:
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": {"app": "a"}},
        }

    s.create(svc("one"))
    seen: list[Event] = []
    s.subscribe(seen.append)
    s.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default", "labels": {"app": "a"}},
            "spec": {},
        }
    )
    ev = seen[-1]
    first = services_to_sync(s, ev)
    assert [x["metadata"]["name"] for x in first] == ["one"]
    s.create(svc("two"))
    assert services_to_sync(s, ev) is first
    again = Event(ev.type, ev.kind, ev.obj, ev.old, ev.rv)
    assert [x["metadata"]["name"] for x in services_to_sync(s, again)] == ["one", "two"]
