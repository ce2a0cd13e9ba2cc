"""Task hygiene: every background task is named and strongly referenced.

asyncio only keeps weak references to tasks, so a fire-and-forget task can be
garbage-collected mid-flight; ``spawn`` keeps each one in a set until it ends
and logs any exception it dies with instead of losing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


class TaskSet:
    """Owns a group of background tasks so they can be stopped together."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, T], *, name: str) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            logger.error("task %s crashed", task.get_name(), exc_info=exc)

    def __len__(self) -> int:
        return len(self._tasks)

    async def stop(self, grace: float = 5.0) -> None:
        await cancel_and_wait(list(self._tasks), grace=grace)


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]], grace: float = 5.0) -> None:
    """Cancel tasks and wait (bounded) until they have really finished."""
    pending = [t for t in tasks if not t.done()]
    for t in pending:
        t.cancel()
    if pending:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait(pending, timeout=grace)
