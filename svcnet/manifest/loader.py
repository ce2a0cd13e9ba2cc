from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]


class ManifestError(ValueError):
    """A file that cannot be read as manifests; str() is the full user-facing message."""


@dataclass
class Manifest:
    obj: Obj
    source: str  # file path, or "STDIN"
    doc_index: int
    line: int  # 1-based line where the document starts
    positions: dict[str, tuple[int, int]] = field(default_factory=dict)

    def position(self, field_path: str) -> tuple[int, int] | None:
        """1-based (line, column) of a field path, or of its nearest known parent."""
        raise NotImplementedError

    def where(self, field_path: str = "") -> str:
        """`file:line:col` for messages."""
        raise NotImplementedError


def load_text(text: str, source: str) -> list[Manifest]:
    raise NotImplementedError


def load_paths(paths: list[str], *, recursive: bool = False) -> list[Manifest]:
    raise NotImplementedError
