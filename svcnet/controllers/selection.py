"""Which Services select a pod, which pods a Service selects, and what a
controller controls, through store
indexes (an informer's Indexer), so that neither costs a scan of the namespace.

A Service is filed under one of its selector's pairs (the smallest key) and a
pod under every label it carries: a Service can only select a pod that carries
that one pair, so those are the candidates, checked in full. A Service with an
empty selector (`{}`, which selects every pod) is filed under a wildcard; one
with no selector selects nothing and is not filed at all. With a thousand
Services, a pod's status change used to match it against every selector of its
namespace in each endpoint controller, and a Service's sync to look at every
pod (benchmarks/README.md, "Scale").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from svcnet.k8s import labels
from svcnet.k8s.objects import Obj, is_terminal, pod_ready
from svcnet.k8s.owners import controller_uid
from svcnet.store import Event, ReadOnlyStore

SERVICES_BY_PAIR = "selection.services"
PODS_BY_LABEL = "selection.pods"
CONTROLLED = "selection.controlled."
_ANY = "\x00*"
_SERVICES_TO_SYNC = "selection.services_to_sync"
_ORPHAN = "\x00orphan"


def _ns(obj: Obj) -> str:
    return str(obj["metadata"].get("namespace") or "")


def _pair(ns: str, key: str, value: object) -> str:
    return f"{ns}\x00{key}={value}"


def _service_keys(svc: Obj) -> list[str]:
    selector = (svc.get("spec") or {}).get("selector")
    if selector is None:
        return []
    if not selector:
        return [_ns(svc) + _ANY]
    key = min(selector)
    return [_pair(_ns(svc), key, selector[key])]


def _pod_keys(pod: Obj) -> list[str]:
    ns = _ns(pod)
    return [_pair(ns, k, v) for k, v in (pod["metadata"].get("labels") or {}).items()]


def _indexed(store: ReadOnlyStore) -> ReadOnlyStore:
    store.index(SERVICES_BY_PAIR, "Service", _service_keys)
    store.index(PODS_BY_LABEL, "Pod", _pod_keys)
    return store


def services_selecting(store: ReadOnlyStore, ns: str, pods: Iterable[Obj | None]) -> list[Obj]:
    """The Services of namespace ns whose selector matches any of pods (a pod's old
    and new versions, say), in name order."""
    _indexed(store)
    found: dict[str, Obj] = {}
    for pod in pods:
        if pod is None:
            continue
        have = pod["metadata"].get("labels") or {}
        candidates = store.by_index(SERVICES_BY_PAIR, ns + _ANY)
        for k, v in have.items():
            candidates += store.by_index(SERVICES_BY_PAIR, _pair(ns, k, v))
        for svc in candidates:
            name = str(svc["metadata"]["name"])
            if name not in found and labels.from_map(svc["spec"].get("selector")).matches(have):
                found[name] = svc
    return [found[n] for n in sorted(found)]


def endpoint_view(pod: Obj) -> tuple[object, ...]:
    """What of a pod an endpoint controller can list: podEndpointsChanged
    (pkg/controller/util/endpoint/controller_utils.go) compares labels, hostname
    and subdomain, deletionTimestamp, readiness and pod IPs; whether the pod
    ended (it then leaves) and podIP are what `should_include` reads here. Names,
    uid and container ports are immutable, and nodeName is set at binding, before
    the pod has an IP to list."""
    md, spec, st = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    return (
        md.get("labels"),
        md.get("deletionTimestamp"),
        spec.get("hostname"),
        spec.get("subdomain"),
        is_terminal(pod),
        st.get("podIP"),
        st.get("podIPs"),
        pod_ready(pod),
    )


def services_to_sync(store: ReadOnlyStore, ev: Event) -> tuple[Obj, ...]:
    """The Services whose endpoints a pod's event can change (the pod's old and new
    versions' selectors); none for an update that changed nothing an endpoint shows,
    as GetServicesToUpdateOnPodChange does: a thousand starting pods write their
    status several times each, and most writes (container states, start times)
    change no Service. Computed once per event (Event.memo): the endpoint
    controllers and the Service event recorder each ask."""
    found = cast("tuple[Obj, ...] | None", ev.memo.get(_SERVICES_TO_SYNC))
    if found is None:
        if (
            ev.old is not None
            and ev.type == "MODIFIED"
            and endpoint_view(ev.old) == endpoint_view(ev.obj)
        ):
            found = ()
        else:
            found = tuple(services_selecting(store, ev.namespace, (ev.obj, ev.old)))
        ev.memo[_SERVICES_TO_SYNC] = found
    return found


def pods_selected(store: ReadOnlyStore, ns: str, selector: dict[str, str] | None) -> list[Obj]:
    """The pods of namespace ns a Service selector matches, in name order."""
    if selector is None:
        return []
    if not selector:
        return store.list("Pod", ns)
    _indexed(store)
    key = min(selector)
    sel = labels.from_map(selector)
    return [
        p
        for p in store.by_index(PODS_BY_LABEL, _pair(ns, key, selector[key]))
        if sel.matches(p["metadata"].get("labels"))
    ]


def _controller_keys(obj: Obj) -> list[str]:
    uid = controller_uid(obj)
    return [uid] if uid is not None else [_ns(obj) + _ORPHAN]


def _controlled(store: ReadOnlyStore, kind: str) -> str:
    store.index(CONTROLLED + kind, kind, _controller_keys)
    return CONTROLLED + kind


def controlled_by(store: ReadOnlyStore, kind: str, owner: Obj) -> list[Obj]:
    """The objects of `kind` whose controller reference names owner's uid, in name
    order: what a controller's sync looks at, without a scan of its namespace."""
    return store.by_index(_controlled(store, kind), str(owner["metadata"]["uid"]))


def orphans(store: ReadOnlyStore, kind: str, ns: str) -> list[Obj]:
    """The objects of `kind` in namespace ns with no controller: candidates for adoption."""
    return store.by_index(_controlled(store, kind), ns + _ORPHAN)
