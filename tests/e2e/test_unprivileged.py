"""svcnet run by an ordinary user: it still runs pods, and says plainly what it cannot do.

Without root there are no cgroups and no socket hooks, so pods share the
machine's network identity: svcnet up says so once, each pod carries a
Warning event saying so, and when a second replica of a program binding
0.0.0.0:8080 fails, its status says why (EADDRINUSE) in those words.

The daemon runs as a user created for the test, from a copy of svcnet
installed where that user can read it (the suite's own Python may live in a
home directory only root can enter).
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

from svcnet.testing import descendants, free_port, isolated_up_args

pytestmark = pytest.mark.slow

USER = "svcnet-user-test"
ROOT = Path(__file__).resolve().parents[2]

APP = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: python:3.11
        command: ["python3", "-m", "http.server", "8080", "--bind", "0.0.0.0"]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {greeting: hello}
---
apiVersion: v1
kind: Pod
metadata: {name: vol}
spec:
  containers:
  - name: app
    image: busybox
    command: ["sh", "-c", "cat /cfg/greeting; echo; stat -f -c %T /mem; id -u; exec sleep 600"]
    volumeMounts:
    - {name: cfg, mountPath: /cfg}
    - {name: mem, mountPath: /mem}
  volumes:
  - {name: cfg, configMap: {name: settings}}
  - {name: mem, emptyDir: {medium: Memory}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny-ingress}
spec:
  podSelector: {}
  policyTypes: [Ingress]
"""


@pytest.fixture(scope="module")
def install(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """svcnet and its dependencies in a directory anyone can read, and a Python of the
    same version anyone can run."""
    assert os.geteuid() == 0, "this test creates a user: run it as root (CI does)"
    python = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")
    assert python, "a system python3 is needed to run svcnet as an ordinary user"
    version = subprocess.run(
        [python, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True
    ).stdout.strip()
    assert version == str(tuple(sys.version_info[:2])), (
        f"{python} is Python {version}; the suite's wheels are for {sys.version_info[:2]}"
    )
    base = tmp_path_factory.mktemp("unprivileged")
    site = base / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--target", str(site), str(ROOT)],
        check=True,
        capture_output=True,
        env=dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1"),
    )
    for d in (base, *base.parents):
        if d == Path("/"):
            break
        d.chmod(d.stat().st_mode | 0o755)
    subprocess.run(["chmod", "-R", "a+rX", str(base)], check=True)
    yield site, python


@pytest.fixture
def user() -> Iterator[pwd.struct_passwd]:
    subprocess.run(["userdel", "-r", "-f", USER], capture_output=True)
    subprocess.run(["useradd", "-m", "-s", "/bin/sh", USER], check=True)
    try:
        yield pwd.getpwnam(USER)
    finally:
        subprocess.run(["pkill", "-KILL", "-u", USER], capture_output=True)
        subprocess.run(["userdel", "-r", "-f", USER], capture_output=True)


def test_an_ordinary_user_gets_pods_and_plain_words(
    install: tuple[Path, str], user: pwd.struct_passwd
) -> None:
    site, python = install
    home = Path(user.pw_dir)
    manifests = home / "m"
    manifests.mkdir()
    (manifests / "app.yaml").write_text(APP)
    # Ports below 1024 are root's: the kube-dns ClusterIP gets one of the user's.
    (manifests / "svcnet.yaml").write_text(
        "apiVersion: svcnet.dev/v1alpha1\nkind: SvcnetConfiguration\n"
        f"dns:\n  cluster_port: {free_port()}\n"
    )
    subprocess.run(["chown", "-R", f"{user.pw_uid}:{user.pw_gid}", str(manifests)], check=True)
    api_port = free_port()
    state = home / "state"
    up = [
        "setpriv",
        f"--reuid={user.pw_uid}",
        f"--regid={user.pw_gid}",
        "--clear-groups",
        "env",
        f"HOME={home}",
        f"PYTHONPATH={site}",
        python,
        "-m",
        "svcnet",
        *isolated_up_args(str(manifests), 184, api_port, free_port(), str(state)),
    ]
    proc = subprocess.Popen(
        up, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(home)
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        deadline = time.monotonic() + 30
        line = ""
        while time.monotonic() < deadline and not line.startswith("svcnet ready"):
            r, _, _ = select.select([proc.stdout], [], [], deadline - time.monotonic())
            line = proc.stdout.readline() if r else ""
            if not line:
                break
        # The second replica never gets ready, so there is no ready line: what
        # matters is what svcnet says and what the pods' status says.
        env = dict(os.environ, SVCNET_STATE_DIR=str(state))
        server = f"https://127.0.0.1:{api_port}"

        def get(*args: str) -> str:
            return subprocess.run(
                [sys.executable, "-m", "svcnet", *args, "--server", server],
                capture_output=True,
                text=True,
                env=env,
                timeout=30,
                check=True,
            ).stdout

        message = ""
        for _ in range(300):  # each call is a round trip: bounded, no sleeps
            pods = json.loads(get("get", "pods", "-o", "json"))["items"]
            for p in pods:
                for cs in p["status"].get("containerStatuses") or ():
                    for st in (cs.get("state") or {}, cs.get("lastState") or {}):
                        message = (st.get("terminated") or {}).get("message") or message
            if message:
                break
        assert "EADDRINUSE" in message and "not running as root" in message, message
        pids = [
            int(cid.removeprefix("svcnet://"))
            for p in pods
            for cs in p["status"].get("containerStatuses") or ()
            if (cid := cs.get("containerID", "")).startswith("svcnet://")
            and "running" in (cs.get("state") or {})
        ]
        # The replica that lost its port crash-loops: its process may be gone
        # between the listing and the look; the live ones are the user's.
        uids = set()
        for pid in pids:
            with contextlib.suppress(FileNotFoundError):
                uids.add(str(os.stat(f"/proc/{pid}").st_uid))
        assert uids == {str(user.pw_uid)}
        # The pods' files were made by the agent's preparer, a helper running as the user.
        preparers = []
        for pid in descendants(proc.pid):
            with contextlib.suppress(FileNotFoundError):
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                if argv[6:7] == [b"prepare"]:
                    preparers.append(str(os.stat(f"/proc/{pid}").st_uid))
        assert preparers == [str(user.pw_uid)], preparers
        events = get("get", "events", "-o", "json")
        assert '"reason":"NetworkIdentity"' in events.replace(" ", "")
        # A NetworkPolicy is stored, and its Warning says it is not enforced, and why.
        [warning] = [
            e for e in json.loads(events)["items"] if e["involvedObject"]["kind"] == "NetworkPolicy"
        ]
        assert (warning["type"], warning["reason"]) == ("Warning", "NotEnforced")
        assert warning["message"] == (
            "svcnet stores this NetworkPolicy but does not enforce it: "
            "svcnet is not running as root"
        )

        # Volumes, through an unprivileged user namespace: the ConfigMap's file at its
        # mountPath, and medium Memory as a directory of /dev/shm (no tmpfs of its own).
        logs = ""
        for _ in range(300):  # each call is a round trip: bounded, no sleeps
            logs = subprocess.run(
                [sys.executable, "-m", "svcnet", "logs", "vol", "--server", server],
                capture_output=True,
                text=True,
                env=env,
                timeout=30,
            ).stdout
            if logs.count("\n") >= 3:
                break
        assert logs == f"hello\ntmpfs\n{user.pw_uid}\n", logs

        # svcnet exec as the same user: the pod's resolv.conf through an
        # unprivileged user namespace that maps the user to itself.
        script = "cat /etc/resolv.conf; id -u; echo $KUBERNETES_SERVICE_HOST"
        shown = subprocess.run(
            [*up[: up.index("-m") + 2], "exec", "--server", server, "--", "sh", "-c", script],
            capture_output=True,
            text=True,
            env=dict(os.environ, SVCNET_STATE_DIR=str(state)),
            timeout=30,
        )
        assert shown.returncode == 0, shown.stderr
        lines = shown.stdout.splitlines()
        assert lines[0] == "search default.svc.cluster.local svc.cluster.local cluster.local"
        assert lines[1].startswith("nameserver 127.184.0.10")
        assert lines[3:5] == [str(user.pw_uid), "127.184.0.1"]
    finally:
        proc.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=15)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read() if proc.stderr else ""
    said = [x for x in err.splitlines() if "not running as root" in x]
    assert len(said) >= 1 and "network identity" in " ".join(said), err[-2000:]
    assert (
        "svcnet: NetworkPolicies are stored but not enforced: svcnet is not running as root"
        in err.splitlines()
    ), err[-2000:]
