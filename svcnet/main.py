"""The `svcnet` command: the kubectl-shaped client verbs (``svcnet.cli``) plus
`up`, the daemon (``svcnet.up``).

The two halves never import each other: the client talks to the daemon only
over its API, as kubectl talks to a cluster. This module is the one place
that knows both (docs/architecture.md, "Floors").
"""

from __future__ import annotations

import argparse

from svcnet import up
from svcnet.cli import main as cli

UP = cli.Command("up", "run the svcnet daemon in the foreground", up.add_arguments, up.up)
COMMANDS = (UP,)


def build_parser() -> argparse.ArgumentParser:
    return cli.build_parser(COMMANDS)


def main(argv: list[str] | None = None) -> int:
    return cli.main(argv, COMMANDS)
