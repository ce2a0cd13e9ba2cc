"""Log lines that repeat are logged once per interval, with a count.

An error that can happen for every connection or every probe (accept()
failing at the descriptor limit, a probe timing out) must not be logged once
per occurrence: past the descriptor limit, svcnet once wrote the same line
1.5 million times (174 MB of stderr in 30 s). ``Throttle`` logs the first
occurrence of each key at once, counts the repeats, and logs the count with
the next occurrence after the interval, as CoreDNS's and klog's rate-limited
error paths do. Keys are bounded: the oldest is forgotten first.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict

MAX_KEYS = 1024


class Throttle:
    def __init__(self, logger: logging.Logger, interval: float = 10.0) -> None:
        self.logger = logger
        self.interval = interval
        self._seen: OrderedDict[str, tuple[float, int]] = OrderedDict()
        """key -> (when it was last logged, repeats since)."""

    def log(self, level: int, key: str, msg: str, *args: object) -> bool:
        """Log unless this key was logged less than `interval` ago; says whether it was."""
        now = time.monotonic()
        last = self._seen.get(key)
        if last is not None and now - last[0] < self.interval:
            self._seen[key] = (last[0], last[1] + 1)
            return False
        repeats = last[1] if last is not None else 0
        self._seen[key] = (now, 0)
        self._seen.move_to_end(key)
        while len(self._seen) > MAX_KEYS:
            self._seen.popitem(last=False)
        if repeats:
            msg += " (and %d more times in the last %.0fs)"
            args = (*args, repeats, now - last[0] if last is not None else 0.0)
        self.logger.log(level, msg, *args)
        return True
