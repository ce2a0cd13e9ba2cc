from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from svcnet.registry import Registry
from svcnet.store import Event

logger = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name) of the object the controller owns

RUN_SLICE = 0.005
"""Seconds a controller syncs keys before it lets the loop serve others."""


class Controller:
    name = "controller"
    owns = ""
    """The kind whose objects are this controller's keys; all of them are synced at start."""

    def __init__(self, registry: Registry) -> None:
        self.store = registry.store
        """For reading and following only: writes go through ``registry``."""
        self.registry = registry
        self._dirty: set[Key] = set()
        self._scheduled = False
        self._unsubscribe: Callable[[], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timers: dict[Key, asyncio.TimerHandle] = {}

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._unsubscribe = self.store.subscribe(self._on_event)
        self._enqueue(self.initial_keys())

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._dirty.clear()
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def initial_keys(self) -> Iterable[Key]:
        if not self.owns:
            return ()
        return [
            (str(o["metadata"].get("namespace") or ""), o["metadata"]["name"])
            for o in self.store.list(self.owns)
        ]

    def keys_for(self, ev: Event) -> Iterable[Key]:
        raise NotImplementedError

    def sync(self, key: Key) -> None:
        raise NotImplementedError

    def _on_event(self, ev: Event) -> None:
        self._enqueue(self.keys_for(ev))

    def _enqueue(self, keys: Iterable[Key]) -> None:
        self._dirty.update(keys)
        if self._dirty and not self._scheduled and self._loop is not None:
            self._scheduled = True
            self._loop.call_soon(self._run)

    def enqueue_after(self, key: Key, delay: float) -> None:
        """Sync key again in delay seconds (the workqueue's AddAfter), for a
        change that only time brings, such as a deadline; the latest call per
        key wins."""
        if self._loop is None:
            return
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()
        self._timers[key] = self._loop.call_later(max(delay, 0.0), self._fire, key)

    def _fire(self, key: Key) -> None:
        self._timers.pop(key, None)
        self._enqueue((key,))

    def _run(self) -> None:
        self._scheduled = False
        keys = sorted(self._dirty)
        self._dirty = set()
        end = time.monotonic() + RUN_SLICE
        for i, key in enumerate(keys):
            if i and time.monotonic() > end:
                # The rest in a later turn of the loop: DNS, the API and the probes
                # are served in between (200 Deployments applied at once had the
                # ReplicaSet controller create 1,000 pods in one call, and DNS
                # answers waited 100 ms).
                self._enqueue(keys[i:])
                return
            try:
                self.sync(key)
            except Exception:
                logger.exception("%s: sync of %s/%s failed", self.name, *key)
