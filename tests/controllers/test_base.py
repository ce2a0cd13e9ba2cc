"""controllers/base.py: a controller's turn on the loop is bounded (RUN_SLICE), and
the keys it leaves are synced in later turns, each once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from svcnet.config import Settings
from svcnet.controllers import base
from svcnet.controllers.base import Controller, Key
from svcnet.registry import Registry
from svcnet.store import Event, Store


class Slow(Controller):
    name = "slow"

    def __init__(self, registry: Registry) -> None:
        super().__init__(registry)
        self.synced: list[Key] = []

    def keys_for(self, ev: Event) -> Iterable[Key]:
        return ()

    def sync(self, key: Key) -> None:
        time.sleep(0.002)  # a sync's own work: the loop cannot run meanwhile
        self.synced.append(key)


async def test_a_long_queue_is_synced_over_several_turns_of_the_loop() -> None:
    c = Slow(Registry(Settings(), Store()))
    c.start()
    keys = [("ns", f"k{i:02d}") for i in range(40)]
    c._enqueue(keys)
    turns = 0
    longest = 0.0
    while len(c.synced) < len(keys):
        t = time.monotonic()
        await asyncio.sleep(0)  # another callback's turn between the controller's
        longest = max(longest, time.monotonic() - t)
        turns += 1
        assert turns < 200
    c.stop()
    assert sorted(c.synced) == keys  # each once, none lost
    assert turns >= 40 * 0.002 / base.RUN_SLICE / 2
    # One turn is the slice plus at most the sync that overran it.
    assert longest < base.RUN_SLICE + 0.002 + 0.05
