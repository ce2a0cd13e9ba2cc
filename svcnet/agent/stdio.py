"""A client's connection to a process' stdio, shared by attach and exec.

Both replay the process' output from its start and follow it live; they only
differ in what a client going away means (see the subclasses' ``_on_detach``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from svcnet.agent.process import Process


class ProcessStdio:
    def __init__(self, proc: Process) -> None:
        self._proc = proc
        self._detached = False

    def write_stdin(self, data: bytes) -> None:
        if not self._detached:
            self._proc.write_stdin(data)

    def close_stdin(self) -> None:
        self._proc.close_stdin()

    def resize(self, width: int, height: int) -> None:
        self._proc.resize(width, height)

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        async for batch in self._proc.log.follow(-1, until=lambda: self._detached):
            for rec in batch:
                yield rec.stream, rec.data

    async def wait(self) -> int:
        return await asyncio.shield(self._proc.done)

    def detach(self) -> None:
        if self._detached:
            return
        self._detached = True
        self._on_detach()
        # Wake output() so it sees the detach and ends.
        self._proc.log.poke()

    def _on_detach(self) -> None:
        pass
