from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping

import pytest
import uvloop

from svcnet.config import Settings
from svcnet.k8s.objects import Obj
from svcnet.proxy import Proxier
from svcnet.store import Store
from tests.slices import mirror_endpoints

from .servers import HttpBackend, Net


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    # The daemon runs on uvloop when it is installed; relays depend on loop
    # details (transport flow control, close timing), so test on both.
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture
def net() -> Net:
    return Net.pick()


@pytest.fixture
def settings(net: Net) -> Settings:
    s = Settings()
    s.network.node_port_addresses = [net.node_addr]
    return s


@pytest.fixture
def store() -> Store:
    s = Store()
    mirror_endpoints(s)
    return s


@pytest.fixture
def recorded() -> list[tuple[str, str, str, str]]:
    """(object name, type, reason, message) of each Event the proxier recorded."""
    return []


@pytest.fixture
async def proxier(
    settings: Settings, store: Store, recorded: list[tuple[str, str, str, str]]
) -> AsyncIterator[Proxier]:
    def record(obj: Obj, type_: str, reason: str, message: str) -> None:
        recorded.append((obj["metadata"]["name"], type_, reason, message))

    p = Proxier(settings, store, recorder=record)
    await p.start()
    try:
        yield p
    finally:
        await p.stop()
        assert p.listeners() == []


@pytest.fixture
def hits() -> Counter[str]:
    return Counter()


@pytest.fixture
async def backends(net: Net, hits: Counter[str]) -> AsyncIterator[list[HttpBackend]]:
    """Three HTTP backends, a, b and c, on 127.12.N.101-103."""
    started = [await HttpBackend(name, hits).start(net.ip(101 + i)) for i, name in enumerate("abc")]
    try:
        yield started
    finally:
        for b in started:
            b.close()
