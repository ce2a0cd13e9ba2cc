"""Repeated log lines: once per interval, with the count of what was held back."""

from __future__ import annotations

import logging

import pytest

from svcnet import _log


def test_repeats_are_counted_not_written(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [100.0]
    monkeypatch.setattr("svcnet._log.time.monotonic", lambda: now[0])
    t = _log.Throttle(logging.getLogger("svcnet.test"), interval=10.0)
    with caplog.at_level(logging.WARNING, "svcnet.test"):
        assert t.log(logging.WARNING, "accept", "accept failed: %s", "EMFILE")
        for _ in range(1_000_000 // 1000):
            assert not t.log(logging.WARNING, "accept", "accept failed: %s", "EMFILE")
        assert t.log(logging.WARNING, "probe", "probe failed")  # another key is its own
        now[0] += 10.5
        assert t.log(logging.WARNING, "accept", "accept failed: %s", "EMFILE")
    assert [r.getMessage() for r in caplog.records] == [
        "accept failed: EMFILE",
        "probe failed",
        "accept failed: EMFILE (and 1000 more times in the last 10s)",
    ]


def test_keys_are_bounded() -> None:
    t = _log.Throttle(logging.getLogger("svcnet.test"), interval=10.0)
    for i in range(_log.MAX_KEYS * 3):
        t.log(logging.DEBUG, f"k{i}", "x")
    assert len(t._seen) == _log.MAX_KEYS
