"""Go's time.ParseDuration, as kubectl's --timeout flags read it."""

from __future__ import annotations

import pytest

from svcnet.k8s.durations import parse_go_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("2m", 120.0),
        ("1h30m", 5400.0),
        ("1.5h", 5400.0),
        ("300ms", 0.3),
        ("0", 0.0),
        ("-1s", -1.0),
        ("1m0.5s", 60.5),
    ],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("30", 'time: missing unit in duration "30"'),
        ("3d", 'time: unknown unit "d" in duration "3d"'),
        ("", 'time: invalid duration ""'),
        ("s", 'time: invalid duration "s"'),
        ("1..2s", 'time: invalid duration "1..2s"'),
    ],
)
def test_what_go_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_go_duration(text)
    assert str(err.value) == message
