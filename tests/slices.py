"""The EndpointSlice mirroring controller, run synchronously on a bare Store.

DNS and proxy tests write Endpoints objects into a store with no controllers
running; DNS and the proxy read EndpointSlices. ``mirror_endpoints`` makes
every Endpoints write produce the slices the mirroring controller would
(``mirrored``, the controller's own function) in the same store call, named
``<endpoints>-m<i>`` so tests can tell them apart."""

from __future__ import annotations

from collections.abc import Callable

from svcnet.controllers.endpointslicemirroring import mirrored
from svcnet.store import Event, Store


def mirror_endpoints(store: Store) -> Callable[[], None]:
    """Keep mirrored slices in step with Endpoints; returns the unsubscribe function."""

    def on_event(ev: Event) -> None:
        if ev.kind != "Endpoints":
            return
        ns = ev.namespace or "default"
        prefix = f"{ev.name}-m"
        want = [] if ev.type == "DELETED" else mirrored(ev.obj)
        for i, s in enumerate(want):
            md = s["metadata"]
            md.pop("generateName", None)
            md.pop("ownerReferences", None)
            md["name"] = f"{prefix}{i}"
            if store.get("EndpointSlice", ns, md["name"]) is None:
                store.create(s)
            else:
                store.update(s)
        for old in store.list("EndpointSlice", ns):
            name = str(old["metadata"]["name"])
            if name.startswith(prefix) and name[len(prefix) :].isdigit():
                if int(name[len(prefix) :]) >= len(want):
                    store.delete("EndpointSlice", ns, name)

    return store.subscribe(on_event)
