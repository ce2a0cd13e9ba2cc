"""A whole `svcnet up` (on an empty manifest directory) that real kubectl and the
Python client drive through `svcnet kubeconfig`.

Addresses: a block of the test sessions' (svcnet.testing.claim_block, held for
the session, so two runs of this suite side by side do not collide): services
127.<PREFIX>/16, pods 127.<PREFIX+1>/16, load balancers 127.<PREFIX+2>/16,
NodePorts on 127.<PREFIX+3>.0.1, upstream DNS 127.<PREFIX+3>.0.2 (nothing listens
there).
Every kubectl run gets its own HOME and --cache-dir under the test's
temporary directory, so no discovery cache leaks between runs.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from svcnet.testing import claim_block, free_port, isolated_up_args, node_ip
from tests.e2e.cluster import descendants
from tests.kubectl.binaries import all_kubectls

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = Path(__file__).resolve().parent / "manifests"
SVCNET = [sys.executable, "-m", "svcnet"]
PREFIX, _BLOCK_LOCK = claim_block()
NODE_IP = node_ip(PREFIX)


@dataclass
class Daemon:
    proc: subprocess.Popen[str]
    url: str
    home: Path
    dns_port: int = 0
    """The host-facing DNS port (on 127.0.0.1), for dig."""

    def svcnet(self, *args: str) -> str:
        """The svcnet CLI against this daemon, as its owner (whose HOME holds the
        daemon's state, credentials included); raises if it fails."""
        out = subprocess.run(
            [*SVCNET, *args, "--server", self.url],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
            cwd=ROOT,
            env=dict(os.environ, HOME=str(self.home)),
        )
        return out.stdout

    def kubeconfig(self, namespace: str) -> Path:
        """`svcnet kubeconfig` for this daemon, with `namespace` as the context's."""
        path = self.home / f"kubeconfig-{namespace}"
        path.write_text(self.svcnet("kubeconfig", "-n", namespace))
        return path


@dataclass
class Kubectl:
    exe: str
    kubeconfig: Path
    home: Path

    def env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.home),
            "KUBECONFIG": str(self.kubeconfig),
        }

    def argv(self, *args: str) -> list[str]:
        return [self.exe, f"--cache-dir={self.home / 'cache'}", *args]

    def __call__(
        self, *args: str, input: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args),
            input=input,
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=timeout,
            cwd=MANIFESTS,
        )

    def ok(self, *args: str, timeout: float = 60) -> str:
        r = self(*args, timeout=timeout)
        assert r.returncode == 0, f"kubectl {' '.join(args)}: rc={r.returncode}\n{r.stderr}"
        return r.stdout

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(*args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env(),
            cwd=MANIFESTS,
        )


class Terminal:
    """kubectl on a real pty (80x24), as a user's terminal runs it."""

    def __init__(self, k: Kubectl, *args: str) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        self.proc = subprocess.Popen(
            k.argv(*args),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**k.env(), "TERM": "xterm"},
            cwd=MANIFESTS,
            start_new_session=True,
        )
        os.close(slave)
        self.seen = b""

    def expect(self, needle: bytes, timeout: float = 30) -> bytes:
        deadline = time.monotonic() + timeout
        while needle not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, f"{needle!r} not seen; got {self.seen[-2000:]!r}"
            r, _, _ = select.select([self.master], [], [], left)
            if not r:
                continue
            try:
                data = os.read(self.master, 65536)
            except OSError:
                data = b""
            assert data, f"terminal closed before {needle!r}; got {self.seen[-2000:]!r}"
            self.seen += data
        return self.seen

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def resize(self, rows: int, cols: int) -> None:
        """What a terminal emulator does when its window changes: the new size on the
        pty, then SIGWINCH (kubectl has no controlling terminal here, so it is sent by
        hand)."""
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.proc.send_signal(signal.SIGWINCH)

    def finish(self, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            r, _, _ = select.select([self.master], [], [], 0.2)
            if r:
                try:
                    data = os.read(self.master, 65536)
                except OSError:
                    data = b""
                self.seen += data
        rc = self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        os.close(self.master)
        return rc


def start_daemon(home: Path, settings: str = "") -> Daemon:
    """`settings`: a svcnet.yaml for the daemon (e.g. a short HPA sync period)."""
    manifests = home / "manifests"
    manifests.mkdir()
    if settings:
        (manifests / "svcnet.yaml").write_text(settings)
    # `up -f` refuses an empty directory, as kubectl does; kubectl creates the rest.
    (manifests / "namespace.yaml").write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: kubectl-tests\n"
    )
    api_port, dns_port = free_port(), free_port()
    cmd = [*SVCNET, *isolated_up_args(str(manifests), PREFIX, api_port, dns_port)]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, HOME=str(home)),
        cwd=home,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r, _, _ = select.select([proc.stdout], [], [], deadline - time.monotonic())
        if not r:
            break
        line = proc.stdout.readline()
        if not line or line.startswith("svcnet ready"):
            break
    else:
        line = ""
    if not line.startswith("svcnet ready"):
        proc.kill()
        _, err = proc.communicate(timeout=10)
        raise AssertionError(f"svcnet up did not become ready: {err}")
    return Daemon(proc, f"https://127.0.0.1:{api_port}", home, dns_port)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = start_daemon(tmp_path_factory.mktemp("svcnet"))
    try:
        yield d
    finally:
        stop_daemon(d)


def stop_daemon(d: Daemon) -> None:
    """SIGINT, as Ctrl-C stops it; whatever it left behind is killed."""
    kids = descendants(d.proc.pid)
    d.proc.send_signal(signal.SIGINT)
    try:
        d.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        d.proc.kill()
        d.proc.wait()
    for pid in kids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(params=[name for name, _ in all_kubectls()])
def kubectl_bin(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(id, path) of one kubectl: "system" (v1.32 dispatcher) or "wheel"."""
    name = str(request.param)
    return name, dict(all_kubectls())[name]


def make_kubectl(daemon: Daemon, exe: str, namespace: str, home: Path) -> Kubectl:
    home.mkdir(parents=True, exist_ok=True)
    k = Kubectl(exe, daemon.kubeconfig(namespace), home)
    if namespace != "default":
        # Protobuf on the wire, as kubectl's typed generators send.
        r = k("create", "namespace", namespace)
        assert r.returncode == 0, r.stderr
    return k
