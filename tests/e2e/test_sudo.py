"""`sudo svcnet up` from an ordinary user: the cluster and its pods belong to that user.

An ordinary user is created for the test with a sudo rule of its own (both
removed afterwards); it starts svcnet through sudo, as a developer does. Then:
the state directory and its credential are that user's, owner-only; pods run
as that user with no capabilities; the user's kubectl reaches the API with the
kubeconfig svcnet wrote; another user cannot read the credential.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from svcnet.testing import free_port, isolated_up_args
from tests.kubectl.binaries import system_kubectl, wheel_kubectl

pytestmark = pytest.mark.slow

USER = "svcnet-sudo-test"
ROOT = Path(__file__).resolve().parents[2]

WHOAMI = """\
apiVersion: v1
kind: Pod
metadata:
  name: whoami
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "echo uid=$(id -u) gid=$(id -g); grep CapEff /proc/self/status"]
"""


@pytest.fixture
def user() -> Iterator[pwd.struct_passwd]:
    assert os.geteuid() == 0, "this test creates a user and a sudo rule: run it as root (CI does)"
    assert shutil.which("sudo"), "sudo is needed (scripts/test installs it)"
    subprocess.run(["userdel", "-r", "-f", USER], capture_output=True)
    subprocess.run(["useradd", "-m", "-s", "/bin/sh", USER], check=True)
    rule = Path(f"/etc/sudoers.d/{USER}")
    rule.write_text(f"{USER} ALL=(root) NOPASSWD: ALL\n")
    rule.chmod(0o440)
    try:
        yield pwd.getpwnam(USER)
    finally:
        rule.unlink(missing_ok=True)
        subprocess.run(["pkill", "-KILL", "-u", USER], capture_output=True)
        subprocess.run(["userdel", "-r", "-f", USER], capture_output=True)


def test_sudo_svcnet_up_belongs_to_the_calling_user(
    user: pwd.struct_passwd, tmp_path: Path
) -> None:
    api_port, dns_port = free_port(), free_port()
    manifests = tmp_path / "m"
    manifests.mkdir()
    (manifests / "whoami.yaml").write_text(WHOAMI)
    tmp_path.chmod(0o755)
    manifests.chmod(0o755)
    (manifests / "whoami.yaml").chmod(0o644)
    up = [
        "runuser",
        "-u",
        USER,
        "--",
        "sudo",
        "-n",
        f"PYTHONPATH={ROOT}",
        sys.executable,
        "-m",
        "svcnet",
        *isolated_up_args(str(manifests), 178, api_port, dns_port),
    ]
    proc = subprocess.Popen(up, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/")
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        line = ""
        while time.monotonic() < deadline and not line.startswith("svcnet ready"):
            r, _, _ = select.select([proc.stdout], [], [], deadline - time.monotonic())
            line = proc.stdout.readline() if r else ""
            if not line:
                break
        if not line.startswith("svcnet ready"):
            proc.kill()
            raise AssertionError(proc.communicate(timeout=10)[1])

        state = Path(user.pw_dir) / ".local/state/svcnet" / f"127.0.0.1-{api_port}"
        for name in ("token", "ca.key", "apiserver.key", "kubeconfig", "objects.jsonl"):
            st = (state / name).stat()
            assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (
                user.pw_uid,
                user.pw_gid,
                0o600,
            ), name
        denied = subprocess.run(
            ["runuser", "-u", "nobody", "--", "cat", str(state / "token")],
            capture_output=True,
        )
        assert denied.returncode != 0

        # The user's own kubectl, with the kubeconfig svcnet wrote for them.
        kubectl = system_kubectl() or wheel_kubectl()
        assert kubectl is not None
        if not os.access(kubectl, os.X_OK) or kubectl.startswith("/root/"):
            kubectl = str(shutil.copy(kubectl, tmp_path / "kubectl"))
            os.chmod(kubectl, 0o755)
        as_user = ["runuser", "-u", USER, "--", "env", f"HOME={user.pw_dir}"]
        kc = f"KUBECONFIG={state / 'kubeconfig'}"
        log = ""
        for _ in range(100):  # each kubectl call is a round trip: bounded, no sleeps
            got = subprocess.run(
                [*as_user, kc, kubectl, "get", "pod", "whoami", "-o", "json"],
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert got.returncode == 0, got.stderr
            if json.loads(got.stdout)["status"].get("phase") == "Succeeded":
                log = subprocess.run(
                    [*as_user, kc, kubectl, "logs", "whoami"],
                    capture_output=True,
                    text=True,
                    timeout=30,
                ).stdout
                break
        assert f"uid={user.pw_uid} gid={user.pw_gid}" in log, log
        assert "CapEff:\t0000000000000000" in log, log
    finally:
        # runuser and sudo put the daemon in groups of their own: stop it by its pid,
        # as Ctrl-C would; they exit with it.
        for sig in (signal.SIGINT, signal.SIGKILL):
            for pid in daemon_pids(api_port):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=15)
            if proc.poll() is not None:
                break
        assert not daemon_pids(api_port), "svcnet outlived the test"


def daemon_pids(api_port: int) -> list[int]:
    """The svcnet process (python, as root) serving on api_port."""
    out = subprocess.run(
        ["pgrep", "-f", f"^{sys.executable} -m svcnet up .*--api-port {api_port} "],
        capture_output=True,
        text=True,
    )
    return [int(p) for p in out.stdout.split()]
