"""core/v1 Events: what the agent and the controllers record about objects
(what `describe` lists), in one home so all of them name, count and age
events the same way.

- Names are `<object>.<nanoseconds, hex>`, as client-go's recorder makes
  them, so listing by name (the API's order) is listing by time: kubectl's
  describe sorts events by lastTimestamp with a stable sort, so within one
  second it keeps the server's order, and that order must be when they happened.
- A repeat (same object, reason, message and component) counts up and moves
  lastTimestamp, as the recorder's aggregation does. The repeat is found
  through a store index (``DEDUP_INDEX``), so recording costs the same with
  ten events in the namespace or ten thousand.
- ``EventReaper`` deletes each Event ``EVENT_TTL`` after its lastTimestamp, as
  kube-apiserver's `--event-ttl` (default 1 h, an etcd lease) does, from a
  time-ordered queue: one timer for the earliest expiry, nothing scanned.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Callable, Iterable

from svcnet.k8s.objects import Obj
from svcnet.k8s.timestamps import parse_time, rfc3339
from svcnet.registry import ApiError, Registry
from svcnet.store import Event

EVENT_TTL = 3600.0
"""Seconds an event lives after its last occurrence (kube-apiserver --event-ttl)."""

DEDUP_INDEX = "events.dedup"


def dedup_key(ns: str, uid: str, reason: str, message: str, component: str) -> str:
    return "\x00".join((ns, uid, reason, message, component))


def _dedup_keys(ev: Obj) -> Iterable[str]:
    return (
        dedup_key(
            str(ev["metadata"].get("namespace") or ""),
            str((ev.get("involvedObject") or {}).get("uid")),
            str(ev.get("reason")),
            str(ev.get("message")),
            str((ev.get("source") or {}).get("component")),
        ),
    )


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
    now = rfc3339(time.time())
    store = registry.store
    store.index(DEDUP_INDEX, "Event", _dedup_keys)
    try:
        same = store.by_index(
            DEDUP_INDEX, dedup_key(ns, str(md.get("uid")), reason, message, component)
        )
        if same:

            def bump(ev: Obj) -> None:
                ev["count"] = int(ev.get("count") or 1) + 1
                ev["lastTimestamp"] = now

            name = str(same[0]["metadata"]["name"])
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


def expiry(ev: Obj, ttl: float) -> float:
    """When an Event is due to go (Unix time)."""
    last = parse_time(ev.get("lastTimestamp") or ev["metadata"].get("creationTimestamp"))
    return (time.time() if last is None else last.timestamp()) + ttl


class EventReaper:
    """Deletes each Event `ttl` seconds after its lastTimestamp, from a heap of
    (expiry, namespace, name); a repeat pushes the later expiry and the stale
    entry is skipped when it comes up."""

    def __init__(self, registry: Registry, ttl: float = EVENT_TTL) -> None:
        self._registry = registry
        self._ttl = ttl
        self._heap: list[tuple[float, str, str]] = []
        self._due: dict[tuple[str, str], float] = {}
        """(namespace, name) -> the expiry its latest version has."""
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._unsubscribe: Callable[[], None] | None = None

    def start(self) -> None:
        store = self._registry.store
        self._unsubscribe = store.subscribe(self._on_event)
        for ev in store.list("Event"):
            self._push(ev)
        self._arm()

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def __len__(self) -> int:
        return len(self._due)

    def _push(self, ev: Obj) -> None:
        key = (str(ev["metadata"].get("namespace") or ""), str(ev["metadata"]["name"]))
        due = expiry(ev, self._ttl)
        if self._due.get(key) == due:
            return
        self._due[key] = due
        heapq.heappush(self._heap, (due, *key))
        if len(self._heap) > 2 * len(self._due) + 1024:
            # Mostly stale entries from repeats: rebuild from the live ones.
            self._heap = [(d, ns, n) for (ns, n), d in self._due.items()]
            heapq.heapify(self._heap)

    def _on_event(self, ev: Event) -> None:
        if ev.kind != "Event":
            return
        if ev.type == "DELETED":
            self._due.pop((ev.namespace, ev.name), None)
            return
        self._push(ev.obj)
        self._arm()

    def _arm(self) -> None:
        if not self._heap:
            return
        at = self._heap[0][0]
        if self._timer is not None and self._timer_at <= at:
            return
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer_at = at
        self._timer = loop.call_later(max(at - time.time(), 0.0), self._reap)

    def _reap(self) -> None:
        self._timer = None
        now = time.time()
        while self._heap and self._heap[0][0] <= now:
            due, ns, name = heapq.heappop(self._heap)
            if self._due.get((ns, name)) != due:
                continue  # a repeat moved it later, or it is gone
            del self._due[(ns, name)]
            try:
                self._registry.delete("Event", ns, name)
            except ApiError:
                pass  # deleted meanwhile
        self._arm()
