"""Flag types kubectl's verbs share, read as pflag reads them."""

from __future__ import annotations

import argparse

from svcnet.k8s.durations import parse_go_duration


def duration(value: str) -> float:
    """A kubectl duration flag (`30s`, `2m`, `1h30m`; a bare `30` is an error, as
    Go's ParseDuration says), in seconds."""
    try:
        return parse_go_duration(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
