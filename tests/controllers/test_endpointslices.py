"""The EndpointSlice and mirroring controllers against a real store and
registry (pod status written by the test), and what readers take from slices."""

from __future__ import annotations

import re
from typing import Any

from svcnet.k8s.endpointslices import SliceIndex
from svcnet.k8s.kinds import BY_KIND
from svcnet.k8s.objects import Obj
from svcnet.k8s.wellknown import SERVICE_NAME, SLICE_MANAGED_BY
from svcnet.store import Store
from tests.controllers.test_controllers import RS, env, run_pod, settle

__all__ = ["env"]  # the fixture, shared with test_controllers

SLICE_NAME = re.compile(r"echo-[bcdfghjklmnpqrstvwxz2456789]{5}")


def slices(store: Store, service: str, ns: str = "default") -> list[Obj]:
    return sorted(
        (
            s
            for s in store.list("EndpointSlice", ns)
            if (s["metadata"].get("labels") or {}).get(SERVICE_NAME) == service
        ),
        key=lambda s: str(s["addressType"]),
    )


def service(name: str, **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}


ECHO = service(
    "echo",
    selector={"app": "echo"},
    ports=[{"name": "http", "port": 80, "targetPort": "web", "appProtocol": "http"}],
)


async def test_a_selector_service_gets_slices_with_conditions(env: Any) -> None:
    store, reg = env
    reg.create({**ECHO, "metadata": {"name": "echo", "labels": {"tier": "web"}}})
    await settle()
    # No pods yet: one placeholder slice, as the controller keeps.
    [placeholder] = slices(store, "echo")
    assert placeholder["endpoints"] == [] and "ports" not in placeholder
    reg.create(RS)
    await settle()
    a, b = sorted(p["metadata"]["name"] for p in store.list("Pod", "default"))
    run_pod(store, a, "127.244.0.3")
    run_pod(store, b, "127.244.0.2", ready=False)
    await settle()
    [s] = slices(store, "echo")
    md = s["metadata"]
    assert SLICE_NAME.fullmatch(md["name"])
    assert md["labels"] == {
        "tier": "web",
        SERVICE_NAME: "echo",
        SLICE_MANAGED_BY: "endpointslice-controller.k8s.io",
    }
    svc = store.get("Service", "default", "echo")
    assert md["ownerReferences"] == [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "name": "echo",
            "uid": svc["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert s["addressType"] == "IPv4"
    assert s["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP", "appProtocol": "http"}]
    by_ip = {e["addresses"][0]: e for e in s["endpoints"]}
    assert by_ip["127.244.0.3"]["conditions"] == {
        "ready": True,
        "serving": True,
        "terminating": False,
    }
    assert by_ip["127.244.0.2"]["conditions"] == {
        "ready": False,
        "serving": False,
        "terminating": False,
    }
    assert by_ip["127.244.0.3"]["targetRef"]["name"] == a
    assert by_ip["127.244.0.3"]["nodeName"] == "svcnet"

    # A terminating pod stays listed: not ready, still serving, terminating.
    reg.delete(BY_KIND["Pod"], "default", a)
    await settle()
    [s] = slices(store, "echo")
    by_ip = {e["addresses"][0]: e for e in s["endpoints"]}
    assert by_ip["127.244.0.3"]["conditions"] == {
        "ready": False,
        "serving": True,
        "terminating": True,
    }
    # The Endpoints object, by contrast, drops it at once.
    ep = store.get("Endpoints", "default", "echo")
    listed = [a["ip"] for sub in ep["subsets"] for a in sub.get("addresses") or ()]
    assert "127.244.0.3" not in listed

    # Deleting the Service takes its slices (garbage collection) and its Endpoints.
    reg.delete(BY_KIND["Service"], "default", "echo")
    await settle()
    assert slices(store, "echo") == []
    assert store.get("Endpoints", "default", "echo") is None


async def test_publish_not_ready_addresses_marks_every_endpoint_ready(env: Any) -> None:
    store, reg = env
    reg.create(RS)
    reg.create({**ECHO, "spec": {**ECHO["spec"], "publishNotReadyAddresses": True}})
    await settle()
    a = sorted(p["metadata"]["name"] for p in store.list("Pod", "default"))[0]
    run_pod(store, a, "127.244.0.3", ready=False)
    await settle()
    [s] = slices(store, "echo")
    assert [e["conditions"] for e in s["endpoints"]] == [
        {"ready": True, "serving": False, "terminating": False}
    ]


async def test_a_named_port_a_pod_lacks_splits_the_slices(env: Any) -> None:
    store, reg = env
    reg.create(RS)
    other = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "plain", "labels": {"app": "echo"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }
    reg.create(other)
    reg.create(
        service(
            "echo",
            selector={"app": "echo"},
            ports=[{"name": "http", "port": 80, "targetPort": "web"}, {"name": "raw", "port": 81}],
        )
    )
    await settle()
    a, _ = sorted(p["metadata"]["name"] for p in store.list("Pod", "default") if p != other)[:2]
    run_pod(store, a, "127.244.0.3")
    run_pod(store, "plain", "127.244.0.4")
    await settle()
    got = {
        tuple(p["name"] for p in s["ports"]): [e["addresses"][0] for e in s["endpoints"]]
        for s in slices(store, "echo")
    }
    assert got == {("http", "raw"): ["127.244.0.3"], ("raw",): ["127.244.0.4"]}


async def test_manual_endpoints_are_mirrored_by_family(env: Any) -> None:
    store, reg = env
    reg.create(service("manual", ports=[{"name": "http", "port": 80}]))
    reg.create(
        {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {
                "name": "manual",
                "labels": {"team": "a"},
                "annotations": {"note": "x"},
            },
            "subsets": [
                {
                    "addresses": [{"ip": "127.0.0.1"}, {"ip": "::1"}],
                    "notReadyAddresses": [{"ip": "127.0.0.2"}],
                    "ports": [{"name": "http", "port": 8080}],
                }
            ],
        }
    )
    await settle()
    v4, v6 = slices(store, "manual")
    assert (v4["addressType"], v6["addressType"]) == ("IPv4", "IPv6")
    assert [(e["addresses"], e["conditions"]) for e in v4["endpoints"]] == [
        (["127.0.0.1"], {"ready": True}),
        (["127.0.0.2"], {"ready": False}),
    ]
    assert [e["addresses"] for e in v6["endpoints"]] == [["::1"]]
    ep = store.get("Endpoints", "default", "manual")
    for s in (v4, v6):
        md = s["metadata"]
        assert md["name"].startswith("manual-")
        assert md["labels"] == {
            "team": "a",
            SERVICE_NAME: "manual",
            SLICE_MANAGED_BY: "endpointslicemirroring-controller.k8s.io",
        }
        assert md["annotations"] == {"note": "x"}
        assert md["ownerReferences"][0]["kind"] == "Endpoints"
        assert md["ownerReferences"][0]["uid"] == ep["metadata"]["uid"]
        assert s["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]

    # Deleting the Service deletes the hand-written Endpoints and so the mirrors.
    reg.delete(BY_KIND["Service"], "default", "manual")
    await settle()
    assert store.get("Endpoints", "default", "manual") is None
    assert slices(store, "manual") == []


async def test_what_is_not_mirrored(env: Any) -> None:
    store, reg = env
    reg.create(service("manual", ports=[{"port": 80}]))
    reg.create(service("picky", selector={"app": "none"}, ports=[{"port": 80}]))
    subsets = [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": 8080}]}]
    for name, lab in (
        ("manual", {"endpointslice.kubernetes.io/skip-mirror": "true"}),
        ("lonely", {}),
    ):
        reg.create(
            {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {"name": name, "labels": lab},
                "subsets": subsets,
            }
        )
    await settle()
    # skip-mirror, no Service at all, and a selector Service's own controller slices.
    assert slices(store, "manual") == [] and slices(store, "lonely") == []
    [placeholder] = slices(store, "picky")
    assert placeholder["metadata"]["labels"][SLICE_MANAGED_BY] == "endpointslice-controller.k8s.io"


async def test_a_users_slices_are_left_alone_and_a_deleted_slice_comes_back(env: Any) -> None:
    store, reg = env
    reg.create(ECHO)
    reg.create(service("manual", ports=[{"name": "http", "port": 80}]))
    own = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "manual-by-hand",
            "labels": {SERVICE_NAME: "manual", SLICE_MANAGED_BY: "staff.example.com"},
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["127.0.0.1"]}],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }
    reg.create(own)
    await settle()
    [kept] = slices(store, "manual")
    assert kept["endpoints"] == own["endpoints"]
    [s] = slices(store, "echo")
    reg.delete(BY_KIND["EndpointSlice"], "default", s["metadata"]["name"])
    await settle()
    [again] = slices(store, "echo")
    assert again["metadata"]["name"] != s["metadata"]["name"]


def _slice(name: str, service: str, endpoints: list[Obj], address_type: str = "IPv4") -> Obj:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": "default", "labels": {SERVICE_NAME: service}},
        "addressType": address_type,
        "endpoints": endpoints,
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }


def _ep(ip: str, **conditions: bool) -> Obj:
    return {"addresses": [ip], "conditions": conditions}


def test_readers_take_ready_then_serving_terminating() -> None:
    index = SliceIndex()
    assert index.put(
        _slice("a", "echo", [_ep("127.0.0.1"), _ep("127.0.0.2", ready=False, serving=True)])
    ) == {("default", "echo")}
    index.put(_slice("b", "echo", [_ep("127.0.0.3", ready=False, serving=True, terminating=True)]))
    eps = index.get("default", "echo")
    assert eps is not None
    # Absent conditions mean ready; terminating endpoints only when nothing is ready.
    assert eps.backends("http", "TCP") == [("127.0.0.1", 8080)]
    assert [a.ip for a, _ in eps.published()] == ["127.0.0.1"]
    index.put(_slice("a", "echo", [_ep("127.0.0.1", ready=False, serving=False)]))
    eps = index.get("default", "echo")
    assert eps is not None
    assert eps.backends("http", "TCP") == [("127.0.0.3", 8080)]
    assert eps.published() == []
    # Families: an IPv6 slice serves an IPv6 Service only; a wrong-family address nothing.
    index.put(_slice("c", "echo", [_ep("::1"), _ep("127.0.0.9")], "IPv6"))
    eps = index.get("default", "echo")
    assert eps is not None
    assert eps.backends("http", "TCP", (6,)) == [("::1", 8080)]
    assert ("::1", 8080) not in eps.backends("http", "TCP", (4,))
    # A slice relabelled to another Service moves with its label.
    assert index.put(_slice("c", "other", [_ep("::1")], "IPv6")) == {
        ("default", "echo"),
        ("default", "other"),
    }
    assert index.remove("default", "c") == {("default", "other")}
    assert index.get("default", "other") is None
