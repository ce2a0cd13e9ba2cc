"""Fixtures for the kernel tests (helpers in ``scratch.py``)."""

from __future__ import annotations

import itertools
import os
import random
from collections.abc import Iterator

import pytest

from svcnet.kernel.sockhooks import SocketHooks

from .scratch import Cgroup, Net, World, require_root, v2_mount


@pytest.fixture(scope="session")
def octets() -> Iterator[int]:
    """Each test of a run its own /24 (random, so two runs at once rarely meet):
    a TIME_WAIT left by one test must not be in the next one's way."""
    return iter(random.sample(range(2, 250), 248))


@pytest.fixture(scope="session")
def serials() -> Iterator[int]:
    return itertools.count()


@pytest.fixture
def net(octets: Iterator[int]) -> Net:
    return Net(next(octets))


@pytest.fixture
def scratch(serials: Iterator[int]) -> Iterator[Cgroup]:
    """A fresh cgroup right under the v2 root, removed (with its processes) after."""
    require_root()
    cg = Cgroup(os.path.join(v2_mount(), f"svcnet-ktest-{os.getpid()}-{next(serials)}"))
    try:
        yield cg
    finally:
        cg.destroy()


@pytest.fixture
def hooks() -> Iterator[SocketHooks]:
    require_root()
    h = SocketHooks(max_pods=64, max_services=64, max_backends=256)
    h.load()
    try:
        yield h
    finally:
        h.close()


@pytest.fixture
def world(hooks: SocketHooks, scratch: Cgroup, net: Net) -> World:
    """Hooks attached to a scratch parent cgroup: they see its pods, not the host."""
    hooks.attach(scratch.path)
    return World(hooks, scratch, net)
