from __future__ import annotations

from typing import Any

from svcnet.config import Settings
from svcnet.kinds import Kind
from svcnet.store import Store

Obj = dict[str, Any]


class Registry:
    """Admission + storage for API writes. All methods raise ApiError on refusal."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store

    def get(self, kind: Kind, namespace: str, name: str) -> Obj:
        raise NotImplementedError

    def list(
        self,
        kind: Kind,
        namespace: str | None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[Obj]:
        raise NotImplementedError

    def create(self, obj: Obj, *, namespace: str | None = None, dry_run: bool = False) -> Obj:
        """POST: the object as a client sent it; returns the stored object."""
        raise NotImplementedError

    def update(self, obj: Obj, *, namespace: str | None = None, dry_run: bool = False) -> Obj:
        """PUT: replace spec/metadata, keeping server-owned fields and allocations."""
        raise NotImplementedError

    def apply(
        self, obj: Obj, *, namespace: str | None = None, dry_run: bool = False
    ) -> tuple[Obj, bool]:
        """Upsert (create, or update when it exists). Returns (stored, created)."""
        raise NotImplementedError

    def delete(self, kind: Kind, namespace: str, name: str, *, dry_run: bool = False) -> Obj:
        raise NotImplementedError
