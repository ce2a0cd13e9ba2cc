"""The object store: etcd's role, in memory.

Objects are kept in their API (JSON) form, exactly as clients wrote them plus
what the server owns (uid, resourceVersion, creationTimestamp, generation), so
the API can round-trip any field. Components that need typed access build slim
views from them (see ``svcnet.k8s.objects``).

Every change gets the next value of one global resourceVersion and is
delivered synchronously to subscribers (the in-process informers), then kept in
a bounded history for API watches that resume from a resourceVersion.

Returned objects are shared: never mutate them; build a new dict (``copy.deepcopy``)
and pass it to ``update``.
"""

from svcnet.store.store import Event, EventType, Key, ReadOnlyStore, Store, StoreError

__all__ = ["Event", "EventType", "Key", "ReadOnlyStore", "Store", "StoreError"]
