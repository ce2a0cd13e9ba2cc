"""core/v1 Events: what the agent and the controllers record about objects
(what `describe` lists), in one home so all of them name, count and age
events the same way.

- Names are `<object>.<nanoseconds, hex>`, as client-go's recorder makes
  them, so listing by name (the API's order) is listing by time: kubectl's
  describe sorts events by lastTimestamp with a stable sort, so within one
  second it keeps the server's order, and that order must be when they happened.
- A repeat (same object, reason, message and component) counts up and moves
  lastTimestamp, as the recorder's aggregation does.
- Events whose lastTimestamp is older than ``EVENT_TTL`` are deleted when
  their namespace records a new one, as kube-apiserver's `--event-ttl`
  (default 1 h) deletes them; a long run of rollouts does not pile events up,
  and no timer is needed.
"""

from __future__ import annotations

import time

from svcnet.k8s.objects import Obj
from svcnet.k8s.timestamps import parse_time, rfc3339
from svcnet.registry import ApiError, Registry

EVENT_TTL = 3600.0
"""Seconds an event lives after its last occurrence (kube-apiserver --event-ttl)."""


def _age(ev: Obj, now: float) -> float:
    last = parse_time(ev.get("lastTimestamp"))
    return 0.0 if last is None else now - last.timestamp()


def record(
    registry: Registry,
    obj: Obj,
    type_: str,
    reason: str,
    message: str,
    component: str,
    host: str | None = None,
) -> str:
    """Create or count up an Event about `obj`; its name, or "" if the store refused."""
    md = obj["metadata"]
    ns = str(md.get("namespace") or "default")
    t = time.time()
    now = rfc3339(t)
    same: Obj | None = None
    store = registry.store
    try:
        for ev in store.list("Event", ns):
            if _age(ev, t) > EVENT_TTL:
                registry.delete("Event", ns, ev["metadata"]["name"])
            elif (
                same is None
                and (ev.get("involvedObject") or {}).get("uid") == md.get("uid")
                and ev.get("reason") == reason
                and ev.get("message") == message
                and (ev.get("source") or {}).get("component") == component
            ):
                same = ev
        if same is not None:

            def bump(ev: Obj) -> None:
                ev["count"] = int(ev.get("count") or 1) + 1
                ev["lastTimestamp"] = now

            name = str(same["metadata"]["name"])
            registry.modify("Event", ns, name, bump)
            return name
        stamp = time.time_ns()
        while store.get("Event", ns, f"{md['name']}.{stamp:x}") is not None:
            stamp += 1
        name = f"{md['name']}.{stamp:x}"
        source: Obj = {"component": component}
        if host:
            source["host"] = host
        registry.create(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": name, "namespace": ns},
                "involvedObject": {
                    "apiVersion": obj.get("apiVersion", "v1"),
                    "kind": obj.get("kind"),
                    "namespace": ns,
                    "name": md["name"],
                    "uid": md.get("uid"),
                    "resourceVersion": md.get("resourceVersion"),
                },
                "reason": reason,
                "message": message,
                "type": type_,
                "source": source,
                "reportingComponent": component,
                "reportingInstance": host or "svcnet",
                "firstTimestamp": now,
                "lastTimestamp": now,
                "count": 1,
            }
        )
    except ApiError:
        return ""
    return name
