"""`svcnet up` with its built-in images forked by the fork server: however the
daemon ends (SIGTERM, SIGINT, or kill -9), its helpers (the zygote, the
preparer) and every container go with it and no pod port stays bound."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from svcnet.agent.forkserver import BOOT
from svcnet.testing import Svcnet, descendants
from tests.e2e.cluster import ROOT, alive

pytestmark = pytest.mark.slow


def cmdlines(pids: set[int]) -> list[bytes]:
    out = []
    for pid in pids:
        try:
            out.append(Path(f"/proc/{pid}/cmdline").read_bytes())
        except OSError:
            continue
    return out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_nothing_outlives_the_daemon(tmp_path: Path, sig: signal.Signals) -> None:
    sv = Svcnet.start(tmp_path / "state", manifests=[ROOT / "config"])
    try:
        kids = descendants(sv.proc.pid)
        lines = cmdlines(kids)
        # The zygote and the seed's six built-in containers forked from it (which
        # run its program: fork, no exec), and the preparer.
        forked = [c for c in lines if c.split(b"\0")[4:5] == [BOOT.encode()]]
        assert [c.split(b"\0")[6] for c in forked].count(b"zygote") == 7, lines
        assert [c.split(b"\0")[6] for c in forked].count(b"prepare") == 1, lines
        assert len(set(forked)) == 2, lines
        pod_net = f"127.{sv.block + 1}."
        listening = subprocess.run(
            ["ss", "-H", "-ltn"], capture_output=True, text=True, check=True
        ).stdout
        assert pod_net in listening
        sv.proc.send_signal(sig)
        sv.proc.wait(timeout=20)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(alive(p) for p in kids):
            time.sleep(0.05)
        assert not [p for p in kids if alive(p)], "processes outlived svcnet"
        listening = subprocess.run(
            ["ss", "-H", "-ltn"], capture_output=True, text=True, check=True
        ).stdout
        assert pod_net not in listening, listening
    finally:
        sv.stop()
