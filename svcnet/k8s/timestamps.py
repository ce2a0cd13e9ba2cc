"""RFC 3339 timestamps as the Kubernetes API writes and reads them (whole seconds, UTC)."""

from __future__ import annotations

import datetime as dt
import functools
import time
from typing import Any


def rfc3339(t: float) -> str:
    """`2026-11-25T12:53:17Z` for a Unix time (metav1.Time has whole seconds)."""
    return _rfc3339(int(t))


# Pure, and asked for the same few seconds over and over: a thousand pods
# starting write and read a timestamp in nearly every status write and Event.
@functools.lru_cache(maxsize=64)
def _rfc3339(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))


def parse_time(value: Any) -> dt.datetime | None:
    """An RFC 3339 timestamp (``2026-11-25T12:53:17Z``, fractions allowed) or None."""
    if not value or not isinstance(value, str):
        return None
    return _parse_time(value)


@functools.lru_cache(maxsize=256)
def _parse_time(value: str) -> dt.datetime | None:
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)
