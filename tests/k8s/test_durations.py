"""Durations as kubectl and the kubelet print them (apimachinery's HumanDuration,
Go's Duration.String)."""

from __future__ import annotations

import pytest

from svcnet.k8s.durations import go_duration, human_duration

M, H, D, Y = 60, 3600, 86400, 365 * 86400


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (-5, "<invalid>"),
        (-2, "<invalid>"),
        # Go truncates toward zero: int(-1.5 s) is -1, which is "almost now".
        (-1.5, "0s"),
        (-1, "0s"),
        (0, "0s"),
        (55, "55s"),  # < 120 s
        (119, "119s"),
        (120, "2m"),  # < 10 min: XmYs, or Xm when Y=0
        (2 * M + 47, "2m47s"),
        (5 * M, "5m"),
        (10 * M, "10m"),  # < 3 h: Xm
        (25 * M, "25m"),
        (179 * M + 59, "179m"),
        (3 * H, "3h"),  # < 8 h: XhYm, or Xh
        (3 * H + 5 * M, "3h5m"),
        (8 * H, "8h"),  # < 48 h: Xh
        (47 * H + 59 * M, "47h"),
        (2 * D, "2d"),  # < 8 d: XdYh, or Xd
        (2 * D + 5 * H, "2d5h"),
        (8 * D, "8d"),  # < 2 y: Xd
        (400 * D, "400d"),
        (729 * D, "729d"),
        (2 * Y, "2y"),  # < 8 y: XyYd, or Xy
        (2 * Y + 3 * D, "2y3d"),
        (8 * Y, "8y"),  # else: Xy
        (12 * Y + 100 * D, "12y"),
    ],
)
def test_human_duration_matches_apimachinery(seconds: float, expected: str) -> None:
    assert human_duration(seconds) == expected


@pytest.mark.parametrize(
    ("secs", "text"), [(10, "10s"), (80, "1m20s"), (300, "5m0s"), (3725, "1h2m5s")]
)
def test_go_duration(secs: int, text: str) -> None:
    assert go_duration(secs) == text
