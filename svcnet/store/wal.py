"""The store on disk: what a cluster keeps across a restart (etcd's write-ahead log).

A kind cluster keeps its objects until it is deleted; so does svcnet, in a
state directory per cluster. What is kept is what users and their tools
wrote: every object but Events (they age out within the hour anyway) and the
Endpoints and EndpointSlices svcnet's controllers derive (they are derived
again from the Services and pods at start). Status is not kept, except a
Service's (its LoadBalancer address) and a Namespace's: pods start again as
new processes, and controllers recompute the rest.

Format: one JSON document per line, ``{"put": obj}`` or ``{"del": [kind, ns,
name]}``, appended with one write(2) as each change happens, so a daemon
killed at any moment leaves every change it made but possibly a torn last
line, which loading skips. Durability against a power cut comes from an
fsync that follows each burst of writes (group commit, on a thread), so a cut
can lose only the changes of the last moment, never the file. At every start
the log is compacted: the live objects are written to a new file, which is
fsynced and renamed over the old one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from svcnet import _json
from svcnet.k8s.objects import Obj
from svcnet.k8s.wellknown import (
    ENDPOINTS_CONTROLLER,
    ENDPOINTS_MANAGED_BY,
    SLICE_CONTROLLER,
    SLICE_MANAGED_BY,
    SLICE_MIRRORING_CONTROLLER,
)

logger = logging.getLogger(__name__)

Key = tuple[str, str, str]

GROUP_COMMIT = 0.01
"""Seconds the syncer waits after an fsync, so that a burst of writes shares one."""

_KEEP_STATUS = ("Service", "Namespace")
_DERIVED = {
    "Endpoints": (ENDPOINTS_MANAGED_BY, ENDPOINTS_CONTROLLER),
    "EndpointSlice": (SLICE_MANAGED_BY, (SLICE_CONTROLLER, SLICE_MIRRORING_CONTROLLER)),
}


def kept_form(obj: Obj) -> Obj | None:
    """What the log keeps of an object, or None when it is not kept at all."""
    kind = obj.get("kind")
    if kind == "Event":
        return None
    md = obj.get("metadata") or {}
    derived = _DERIVED.get(str(kind))
    if derived is not None:
        label, owners = derived
        value = (md.get("labels") or {}).get(label)
        if value == owners or (isinstance(owners, tuple) and value in owners):
            return None
    if kind in ("Endpoints", "EndpointSlice") and md.get("name") == "kubernetes":
        if md.get("namespace") == "default":
            return None  # the API server's own, written at every start
    out = {k: v for k, v in obj.items() if k != "status" or kind in _KEEP_STATUS}
    out["metadata"] = {k: v for k, v in md.items() if k != "resourceVersion"}
    return out


def _key(obj: Obj) -> Key:
    md = obj["metadata"]
    return (str(obj["kind"]), str(md.get("namespace") or ""), str(md["name"]))


class Wal:
    """One cluster's object log; ``Store`` calls ``record`` after every change."""

    def __init__(self, path: Path, owner: tuple[int, int] | None = None) -> None:
        self.path = path
        self._owner = owner
        """(uid, gid) the file belongs to: the cluster's owner when svcnet runs through sudo."""
        self._fd = -1
        self._last: dict[Key, str] = {}
        """The line last written per object, so a status-only change writes nothing."""
        self._wake = threading.Lock()
        """Held while nothing waits to be synced; released by a write to wake the
        syncer. A bare lock: a threading.Event's set() is a Condition's notify in
        Python, which had cost the loop 4% of a ramp of a thousand pods."""
        self._wake.acquire()
        self._unsynced = False
        """A write since the syncer last woke (it has released ``_wake``)."""
        self._closing = False
        self._syncer: threading.Thread | None = None
        self.torn = 0
        """Lines skipped at load: a last line cut by a crash."""

    # --- loading -------------------------------------------------------------

    def load(self) -> list[Obj]:
        """The objects the log holds, in the order they were first written."""
        live: dict[Key, Obj] = {}
        for entry in self._entries():
            if "put" in entry and isinstance(entry["put"], dict):
                obj = entry["put"]
                live[_key(obj)] = obj
            elif "del" in entry and isinstance(entry["del"], list) and len(entry["del"]) == 3:
                live.pop((str(entry["del"][0]), str(entry["del"][1]), str(entry["del"][2])), None)
        return list(live.values())

    def _entries(self) -> Iterator[Obj]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        for line in data.split(b"\n"):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                self.torn += 1
                continue
            if isinstance(entry, dict):
                yield entry

    # --- writing -------------------------------------------------------------

    def open(self, objects: list[Obj]) -> None:
        """Start a fresh log holding `objects` (compaction), then append to it."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        lines = []
        for obj in objects:
            kept = kept_form(obj)
            if kept is not None:
                line = _json.dumps({"put": kept}).decode()
                self._last[_key(obj)] = line
                lines.append(line + "\n")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            if self._owner is not None:
                with contextlib.suppress(PermissionError):
                    os.fchown(fd, *self._owner)
            os.write(fd, "".join(lines).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        self._syncer = threading.Thread(target=self._sync_loop, name="svcnet-wal", daemon=True)
        self._syncer.start()

    def record(self, kind: str, obj: Obj, deleted: bool) -> None:
        if self._fd < 0:
            return
        key = _key(obj)
        if deleted:
            if self._last.pop(key, None) is None:
                return
            line = _json.dumps({"del": list(key)}).decode()
        else:
            kept = kept_form(obj)
            if kept is None:
                return
            line = _json.dumps({"put": kept}).decode()
            if self._last.get(key) == line:
                return
            self._last[key] = line
        try:
            os.write(self._fd, (line + "\n").encode())
        except OSError as e:
            logger.error("cannot write the object log %s: %s", self.path, e.strerror)
            return
        self._want_sync()

    def _want_sync(self) -> None:
        # Releases and the syncer's acquires alternate: a release only follows the
        # syncer's reset of _unsynced, which it makes holding the lock.
        if not self._unsynced:
            self._unsynced = True
            self._wake.release()

    def _sync_loop(self) -> None:
        while True:
            self._wake.acquire()
            self._unsynced = False
            if self._closing:
                return
            with contextlib.suppress(OSError):
                os.fsync(self._fd)
            # Group commit: the writes of the next moment share one fsync.
            time.sleep(GROUP_COMMIT)

    def close(self) -> None:
        if self._fd < 0:
            return
        self._closing = True
        self._want_sync()
        if self._syncer is not None:
            self._syncer.join(timeout=5)
        with contextlib.suppress(OSError):
            os.fsync(self._fd)
        os.close(self._fd)
        self._fd = -1


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
