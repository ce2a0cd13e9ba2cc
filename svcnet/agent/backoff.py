"""The kubelet's container restart back-off (k8s.io/client-go/util/flowcontrol).

A container that exits for the first time is restarted at once; each later
exit waits 10 s, then 20 s, 40 s ... up to 5 minutes, measured from the exit.
A container that has not needed a restart for twice the cap (10 minutes)
starts again from nothing. While waiting, the container shows `waiting:
CrashLoopBackOff`.
"""

from __future__ import annotations

INITIAL = 10.0
CAP = 300.0


class Backoff:
    def __init__(self, initial: float = INITIAL, cap: float = CAP) -> None:
        self._initial = initial
        self._cap = cap
        self._next = 0.0
        self._last: float | None = None

    def delay(self, now: float) -> float:
        """Seconds to wait before restarting a container that exited at `now`."""
        if self._last is None or now - self._last > 2 * self._cap:
            delay, self._next = 0.0, self._initial
        else:
            delay, self._next = self._next, min(self._next * 2, self._cap)
        self._last = now
        return delay
