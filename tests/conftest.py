"""Fixtures shared across test packages."""

from __future__ import annotations

import random

import pytest

from svcnet.config import Settings
from svcnet.registry import Registry
from svcnet.store import Store


@pytest.fixture
def reg() -> Registry:
    """A registry over an empty store with the default namespace, seeded allocations."""
    r = Registry(Settings(), Store(), random.Random(1))
    r.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
    return r
