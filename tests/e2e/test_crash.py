"""After `kill -9` of the daemon, the next `svcnet up` on the same cluster removes
what the last run left (a pod's detached process), says so, and has kept what was
applied through the API."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest

from tests.e2e.cluster import alive, start, stop

pytestmark = pytest.mark.slow

DETACHER = """\
apiVersion: v1
kind: Pod
metadata:
  name: detacher
spec:
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "setsid sleep 1000 & echo child=$!; exec sleep 1000"]
"""


def test_kill_9_then_up_cleans_up_and_keeps_the_objects(tmp_path: Path) -> None:
    assert os.geteuid() == 0, "pods get cgroups as root only: run this test as root (CI does)"
    c = start(tmp_path, "172")
    try:
        (tmp_path / "detacher.yaml").write_text(DETACHER)
        out = c.cli("apply", "-f", str(tmp_path / "detacher.yaml"), check=True).stdout
        assert out == "pod/detacher created\n"
        log = ""
        for _ in range(100):  # each CLI call takes a round trip: bounded, no sleeps
            log = c.cli("logs", "detacher").stdout
            if "child=" in log:
                break
        m = re.search(r"child=(\d+)", log)
        assert m, log
        child = int(m[1])
        assert alive(child)
        c.proc.send_signal(signal.SIGKILL)
        c.proc.wait()
        assert alive(child), "the detached process should have outlived the killed daemon"
        again = start(tmp_path, "172", (c.api_port, c.dns_port))
    except BaseException:
        if c.proc.poll() is None:
            stop(c)
        raise
    try:
        assert not alive(child)
        assert again.proc.stderr is not None
        pods = again.cli("get", "pod", "detacher", check=True).stdout
        assert pods.startswith("NAME ") and "detacher" in pods
    finally:
        _, _ = stop(again)
    err = again.proc.stderr.read() if again.proc.stderr else ""
    assert "the last run here (pid" in err and "did not stop cleanly" in err, err
    assert re.search(
        r"removed \d+ processes and the cgroups of pods left by an earlier svcnet", err
    ), err
