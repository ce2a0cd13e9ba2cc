"""Generated names as the API server makes them (SimpleNameGenerator)."""

from __future__ import annotations

import re

from svcnet.k8s import names


def test_generate_name_alphabet_and_cut() -> None:
    for _ in range(200):
        n = names.generate_name("echo-summer-")
        assert re.fullmatch(r"echo-summer-[bcdfghjklmnpqrstvwxz2456789]{5}", n)
    long = names.generate_name("x" * 80)
    assert len(long) == 63 and long.startswith("x" * 58)
