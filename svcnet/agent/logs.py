"""Container logs: one bounded buffer per container instance.

The kubelet's CRI log files hold one record per line with a timestamp and a
stream; this is the in-memory version. Output is cut at newlines into
records, each stamped with the time its bytes arrived, so `logs --timestamps`,
`--tail` and `--since-time` work on whole lines. A chunk that does not end in a
newline (a shell prompt) is kept as a partial record, so `attach` can replay
everything the container printed, byte for byte, from the same buffer.

Readers follow by sequence number: each record gets the next number and
followers wait for a number beyond the last one they saw, so a slow reader
never blocks the container and a dropped (too old) record is simply skipped.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass

STDOUT = 1
STDERR = 2


@dataclass(frozen=True)
class LogRecord:
    seq: int
    ts_ns: int
    stream: int
    data: bytes
    eol: bool
    """The record ends a line (data ends with a newline)."""


def format_ts(ts_ns: int) -> str:
    """RFC 3339 with nanoseconds, as the kubelet prefixes `logs --timestamps` lines."""
    secs, nanos = divmod(ts_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{nanos:09d}Z"


class LogBuffer:
    def __init__(self, limit: int) -> None:
        self._limit = max(limit, 1024)
        self._records: deque[LogRecord] = deque()
        self._size = 0
        self._seq = 0
        self._closed = False
        self._changed = asyncio.Event()

    @property
    def closed(self) -> bool:
        return self._closed

    def append(self, stream: int, data: bytes) -> None:
        if not data or self._closed:
            return
        ts = time.time_ns()
        start = 0
        while start < len(data):
            nl = data.find(b"\n", start)
            end = len(data) if nl < 0 else nl + 1
            self._add(LogRecord(self._seq, ts, stream, data[start:end], nl >= 0))
            start = end
        self._wake()

    def _add(self, rec: LogRecord) -> None:
        if len(rec.data) > self._limit:
            rec = LogRecord(rec.seq, rec.ts_ns, rec.stream, rec.data[-self._limit :], rec.eol)
        self._seq += 1
        self._records.append(rec)
        self._size += len(rec.data)
        while self._size > self._limit:
            self._size -= len(self._records.popleft().data)

    def close(self) -> None:
        self._closed = True
        self._wake()

    def poke(self) -> None:
        """Wake followers without new output (so they can notice they should stop)."""
        self._wake()

    def _wake(self) -> None:
        # Replace rather than clear: waiters already woken must not miss this round.
        self._changed.set()
        self._changed = asyncio.Event()

    def records(self, after: int = -1) -> list[LogRecord]:
        return [r for r in self._records if r.seq > after]

    def select(self, tail_lines: int | None, since_ns: int | None) -> list[LogRecord]:
        recs = list(self._records)
        if since_ns is not None:
            recs = [r for r in recs if r.ts_ns >= since_ns]
        if tail_lines is not None:
            recs = _tail(recs, tail_lines)
        return recs

    async def follow(
        self, after: int, until: Callable[[], bool] | None = None
    ) -> AsyncIterator[list[LogRecord]]:
        """Batches of records newer than `after` until the buffer is closed (or `until()`
        is true when woken)."""
        while until is None or not until():
            changed = self._changed
            batch = self.records(after)
            if batch:
                after = batch[-1].seq
                yield batch
                continue
            if self._closed:
                return
            await changed.wait()


def _tail(recs: list[LogRecord], n: int) -> list[LogRecord]:
    if n <= 0:
        return []
    lines = 0
    for i in range(len(recs) - 1, -1, -1):
        # A line starts at index 0 or right after a record that ended one.
        if i == 0 or recs[i - 1].eol:
            lines += 1
            if lines == n:
                return recs[i:]
    return recs


def render(recs: Iterable[LogRecord], timestamps: bool, at_line_start: bool = True) -> bytes:
    """Log bytes as the API serves them; with timestamps, each line gets its arrival time."""
    if not timestamps:
        return b"".join(r.data for r in recs)
    out = []
    for r in recs:
        if at_line_start:
            out.append(format_ts(r.ts_ns).encode() + b" ")
        out.append(r.data)
        at_line_start = r.eol
    return b"".join(out)
