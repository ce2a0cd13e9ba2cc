"""Watch streams: ``GET ...?watch=true`` as chunked JSON lines.

Each watcher is one ``asyncio.Queue`` fed by a synchronous store subscriber.
The subscription is made *before* the starting point is read (the current
list, or ``store.events_since(rv)``), all within one step of the event loop,
so no change can fall between the two and none is delivered twice.

Filters work like kube-apiserver's watch cache: a MODIFIED change that makes
an object start matching the selectors is sent as ADDED, one that makes it
stop matching as DELETED, so a client's view stays equal to a fresh list.

A watcher that falls too far behind (its queue is full) is ended, as the
apiserver ends slow watches; clients then list and watch again. ``stop()``
of the server puts ``STOP`` into every queue so watches end with a clean
end of stream rather than a reset connection.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from svcnet import _json
from svcnet.api import tables
from svcnet.k8s import conversion, fields, labels
from svcnet.k8s.kinds import Kind
from svcnet.k8s.objects import Obj
from svcnet.registry import ApiError, Registry
from svcnet.registry.errors import bad_request
from svcnet.store import Event, ReadOnlyStore

QUEUE_LIMIT: Final = 10000


class _Stop:
    """Queue marker: end the watch (server stopping, or the watcher fell behind)."""


STOP: Final = _Stop()
WatchQueue = asyncio.Queue[Event | _Stop]


@dataclass(frozen=True)
class WatchRequest:
    kind: Kind
    namespace: str | None
    label_selector: str | None
    field_selector: str | None
    resource_version: str | None
    timeout: float | None
    table: bool
    include_object: str
    send_initial_events: bool = False
    """Streaming list (client-go's WatchList, kubectl >= 1.35 waits): the current
    objects as ADDED whatever the resourceVersion, then a BOOKMARK annotated
    ``k8s.io/initial-events-end``."""


INITIAL_EVENTS_END: Final = "k8s.io/initial-events-end"


def initial_events_end(kind: Kind, rv: int) -> Obj:
    return {
        "kind": kind.kind,
        "apiVersion": kind.api_version,
        "metadata": {"resourceVersion": str(rv), "annotations": {INITIAL_EVENTS_END: "true"}},
    }


def expired_status(rv: int, oldest: int) -> Obj:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f"too old resource version: {rv} ({oldest})",
        "reason": "Expired",
        "code": 410,
    }


def _oldest_servable(store: ReadOnlyStore, below: int) -> int:
    """The smallest rv a watch can still start from (the cacher says `oldest - 1`)."""
    lo, hi = below + 1, store.resource_version
    while lo < hi:
        mid = (lo + hi) // 2
        if store.events_since(mid) is None:
            lo = mid + 1
        else:
            hi = mid
    return lo


async def serve(
    request: web.Request,
    wr: WatchRequest,
    store: ReadOnlyStore,
    registry: Registry,
    register: Callable[[WatchQueue], Callable[[], None]],
) -> web.StreamResponse:
    try:
        label_sel = labels.parse(wr.label_selector)
    except labels.SelectorError as e:
        raise bad_request(str(e)) from None
    try:
        field_sel = fields.parse(wr.field_selector, wr.kind.kind)
    except fields.FieldSelectorError as e:
        raise bad_request(str(e)) from None
    start_rv: int | None = None
    if wr.resource_version not in (None, "", "0"):
        try:
            start_rv = int(str(wr.resource_version))
        except ValueError:
            raise ApiError(
                400,
                "BadRequest",
                f'resourceVersion: Invalid value: "{wr.resource_version}": '
                "strconv.ParseUint: parsing: invalid syntax",
            ) from None

    def matches(obj: Obj) -> bool:
        md = obj.get("metadata") or {}
        if wr.namespace is not None and wr.kind.namespaced and md.get("namespace") != wr.namespace:
            return False
        return label_sel.matches(md.get("labels")) and field_sel.matches(obj)

    def transform(ev: Event) -> tuple[str, Obj] | None:
        # The store's history holds every kind: a watch resumed from a
        # resourceVersion must not see another kind's object of the same name.
        if ev.kind != wr.kind.kind:
            return None
        now_match = matches(ev.obj)
        if ev.type == "ADDED":
            return ("ADDED", ev.obj) if now_match else None
        if ev.type == "DELETED":
            return ("DELETED", ev.obj) if now_match else None
        was = ev.old is not None and matches(ev.old)
        if now_match and was:
            return ("MODIFIED", ev.obj)
        if now_match:
            return ("ADDED", ev.obj)
        if was:
            return ("DELETED", ev.obj)
        return None

    queue: WatchQueue = asyncio.Queue()
    overflowed = False

    def on_event(ev: Event) -> None:
        nonlocal overflowed
        if overflowed or ev.kind != wr.kind.kind:
            return
        if queue.qsize() >= QUEUE_LIMIT:
            overflowed = True
            queue.put_nowait(STOP)
            return
        queue.put_nowait(ev)

    # Subscribe first, then read the starting point, with no await in between.
    unsubscribe = store.subscribe(on_event)
    unregister = register(queue)
    try:
        initial: list[tuple[str, Obj]] = []
        error: Obj | None = None
        bookmark: Obj | None = None
        if start_rv is None or wr.send_initial_events:
            items = registry.list(wr.kind, wr.namespace, wr.label_selector, wr.field_selector)
            initial = [("ADDED", o) for o in items]
            start_rv = store.resource_version
            if wr.send_initial_events:
                bookmark = initial_events_end(wr.kind, start_rv)
        else:
            past = store.events_since(start_rv)
            if past is None:
                error = expired_status(start_rv, _oldest_servable(store, start_rv))
            else:
                initial = [t for t in map(transform, past) if t is not None]

        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)

        first = True

        def encode(etype: str, obj: Obj) -> bytes:
            nonlocal first
            if wr.table:
                out = tables.table(
                    wr.kind.kind,
                    [obj],
                    dt.datetime.now(dt.UTC),
                    resource_version=str((obj.get("metadata") or {}).get("resourceVersion", "")),
                    include_object=wr.include_object,
                    headers=first,
                )
                first = False
                obj = out
            else:
                obj = conversion.to_version(obj, wr.kind)
            return _json.dumps({"type": etype, "object": obj}) + b"\n"

        if error is not None:
            await resp.write(_json.dumps({"type": "ERROR", "object": error}) + b"\n")
            await resp.write_eof()
            return resp
        for etype, obj in initial:
            await resp.write(encode(etype, obj))
        if bookmark is not None:
            await resp.write(_json.dumps({"type": "BOOKMARK", "object": bookmark}) + b"\n")
        try:
            async with asyncio.timeout(wr.timeout):
                while True:
                    item = await queue.get()
                    if isinstance(item, _Stop):
                        break
                    if item.rv <= start_rv:
                        continue
                    t = transform(item)
                    if t is not None:
                        await resp.write(encode(*t))
        except TimeoutError:
            pass
        await resp.write_eof()
        return resp
    finally:
        unsubscribe()
        unregister()
