"""The store's log: what survives a restart, what a crash can cost."""

from __future__ import annotations

import json
from pathlib import Path

from svcnet.k8s.objects import Obj
from svcnet.k8s.wellknown import ENDPOINTS_CONTROLLER, ENDPOINTS_MANAGED_BY
from svcnet.store import Store
from svcnet.store.wal import Wal


def cm(name: str, **data: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
        "data": data,
    }


def opened(path: Path) -> tuple[Store, Wal]:
    wal = Wal(path)
    store = Store(wal=wal)
    for obj in wal.load():
        store.restore(obj)
    wal.open(list(store))
    return store, wal


def test_objects_come_back_with_their_uid_and_age(tmp_path: Path) -> None:
    store, wal = opened(tmp_path / "objects.jsonl")
    first = store.create(cm("a", x="1"))
    store.create(cm("b"))
    store.delete("ConfigMap", "default", "b")
    wal.close()
    again, wal2 = opened(tmp_path / "objects.jsonl")
    got = again.get("ConfigMap", "default", "a")
    assert got is not None and got["data"] == {"x": "1"}
    assert got["metadata"]["uid"] == first["metadata"]["uid"]
    assert got["metadata"]["creationTimestamp"] == first["metadata"]["creationTimestamp"]
    assert again.get("ConfigMap", "default", "b") is None
    wal2.close()


def test_a_torn_last_line_costs_that_write_only(tmp_path: Path) -> None:
    path = tmp_path / "objects.jsonl"
    store, wal = opened(path)
    store.create(cm("a"))
    store.create(cm("b"))
    wal.close()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 20])  # a crash in the middle of the last write
    again = Wal(path)
    names = [o["metadata"]["name"] for o in again.load()]
    assert names == ["a"] and again.torn == 1


def test_status_events_and_derived_objects_are_not_kept(tmp_path: Path) -> None:
    path = tmp_path / "objects.jsonl"
    store, wal = opened(path)
    pod = store.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "x"}]},
        }
    )
    lines = path.read_text().count("\n")
    running = dict(pod, status={"phase": "Running", "podIP": "127.244.0.9"})
    store.update(running)
    assert path.read_text().count("\n") == lines  # a status change writes nothing
    store.create(
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "p.1", "namespace": "default"},
            "involvedObject": {},
        }
    )
    store.create(
        {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {
                "name": "svc",
                "namespace": "default",
                "labels": {ENDPOINTS_MANAGED_BY: ENDPOINTS_CONTROLLER},
            },
        }
    )
    wal.close()
    kept = [json.loads(x)["put"] for x in path.read_text().splitlines()]
    assert [o["kind"] for o in kept] == ["Pod"]
    assert "status" not in kept[0]


def test_compaction_keeps_one_line_per_live_object(tmp_path: Path) -> None:
    path = tmp_path / "objects.jsonl"
    store, wal = opened(path)
    for i in range(5):
        store.create(cm(f"c{i}"))
        store.update(dict(store.get("ConfigMap", "default", f"c{i}") or {}, data={"v": "2"}))
    for i in range(3):
        store.delete("ConfigMap", "default", f"c{i}")
    wal.close()
    assert path.read_text().count("\n") == 5 * 2 + 3
    _, wal2 = opened(path)
    wal2.close()
    assert path.read_text().count("\n") == 2
    assert oct(path.stat().st_mode & 0o777) == "0o600"
