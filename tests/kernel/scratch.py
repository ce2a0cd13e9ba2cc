"""Scratch v2 cgroups, pods in them and addresses, for the kernel tests.

These tests load real BPF programs, make real cgroups and move real processes
into them, so they need root; as another user they fail saying so (CI runs
them as root, and the project has no skipped tests).

A "pod" here is a scratch cgroup registered with ``SocketHooks.set_pod`` plus
processes started in it: the child writes its own pid to ``cgroup.procs``
before exec, so the program it runs is unchanged. Each test gets its own
127.x.N.0/24 ranges (``Net``) so that runs side by side do not meet.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from svcnet.kernel import bpf
from svcnet.kernel.sockhooks import SocketHooks

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
READY_TIMEOUT = 10.0


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.fail(
            "tests/kernel load BPF programs and create cgroups: run them as root"
            f" (this is uid {os.geteuid()})",
            pytrace=False,
        )


def v2_mount() -> str:
    mount = bpf.cgroup2_mount()
    if mount is None:
        pytest.fail("no cgroup v2 hierarchy is mounted (see /proc/self/mountinfo)", pytrace=False)
    return mount


def _enter_cgroup(procs: str) -> Callable[[], None]:
    def enter() -> None:
        with open(procs, "w") as f:
            f.write(str(os.getpid()))

    return enter


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Cgroup:
    """A v2 cgroup directory made for a test, with the processes started in it."""

    def __init__(self, path: str) -> None:
        os.mkdir(path)
        self.path = path
        self.children: list[Cgroup] = []
        self.procs: list[subprocess.Popen[str]] = []

    @property
    def id(self) -> int:
        return os.stat(self.path).st_ino

    def child(self, name: str) -> Cgroup:
        c = Cgroup(os.path.join(self.path, name))
        self.children.append(c)
        return c

    def popen(self, argv: list[str], **kw: Any) -> subprocess.Popen[str]:
        kw.setdefault("stdin", subprocess.DEVNULL)
        proc = subprocess.Popen(
            argv,
            preexec_fn=_enter_cgroup(os.path.join(self.path, "cgroup.procs")),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
            **kw,
        )
        self.procs.append(proc)
        return proc

    def run(self, argv: list[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv,
            preexec_fn=_enter_cgroup(os.path.join(self.path, "cgroup.procs")),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=_env(),
            timeout=timeout,
            check=False,
        )

    def destroy(self) -> None:
        for c in self.children:
            c.destroy()
        for proc in self.procs:
            proc.kill()
            proc.communicate()
        # Anything else that got in (a grandchild) goes too; the directory
        # can only be removed once empty, which cgroup.events announces.
        if self._populated():
            with open(os.path.join(self.path, "cgroup.kill"), "w") as f:
                f.write("1")
            self._wait_empty()
        os.rmdir(self.path)

    def _populated(self) -> bool:
        with open(os.path.join(self.path, "cgroup.events")) as f:
            return "populated 1" in f.read()

    def _wait_empty(self, timeout: float = 10.0) -> None:
        with open(os.path.join(self.path, "cgroup.events"), "rb", buffering=0) as f:
            poller = select.poll()
            poller.register(f, select.POLLPRI)
            deadline = time.monotonic() + timeout
            while b"populated 1" in os.pread(f.fileno(), 4096, 0):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"processes left in {self.path}")
                poller.poll(left * 1000)


def wait_ready(proc: subprocess.Popen[str], timeout: float = READY_TIMEOUT) -> str:
    """The first line a server prints, its sign that it is listening."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"{proc.args!r} printed nothing in {timeout}s; stderr: {err}")
    line = proc.stdout.readline()
    if not line:
        _, err = proc.communicate()
        raise AssertionError(f"{proc.args!r} exited ({proc.returncode}); stderr: {err}")
    return line.strip()


@dataclass(frozen=True)
class Net:
    """One test's addresses: pod IPs, pod loopbacks and Service frontends."""

    octet: int

    def pod_ip(self, n: int) -> str:
        return f"127.245.{self.octet}.{n}"

    def loopback(self, n: int) -> str:
        return f"127.246.{self.octet}.{n}"

    def frontend(self, n: int) -> str:
        return f"127.97.{self.octet}.{n}"

    @property
    def node_port(self) -> int:
        """A NodePort on 127.0.0.1 for this test; the seed's 30026 stays clear."""
        return 31000 + self.octet


@dataclass
class Pod:
    name: str
    cgroup: Cgroup
    ip: str
    loopback: str

    def python(self, code: str, *args: object) -> subprocess.Popen[str]:
        return self.cgroup.popen([sys.executable, "-c", code, *map(str, args)])

    def server(self, code: str, *args: object) -> list[str]:
        """Start a snippet server; its ready line split in words (after "ready")."""
        line = wait_ready(self.python(code, *args))
        words = line.split()
        assert words[0] == "ready", line
        return words[1:]

    def results(self, code: str, *args: object) -> list[dict[str, Any]]:
        """Run a snippet client to the end; its JSON lines."""
        done = self.cgroup.run([sys.executable, "-c", code, *map(str, args)])
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in done.stdout.splitlines()]


@dataclass
class World:
    """A test's cgroups (one parent, a child per pod) and its hooks."""

    hooks: SocketHooks
    parent: Cgroup
    net: Net
    pods: list[Pod] = field(default_factory=list)

    def pod(self, name: str, *, privileged_ports: bool = True) -> Pod:
        n = len(self.pods) + 2
        cg = self.parent.child(name)
        pod = Pod(name, cg, self.net.pod_ip(n), self.net.loopback(n))
        self.hooks.set_pod(cg.id, pod.ip, pod.loopback, privileged_ports=privileged_ports)
        self.pods.append(pod)
        return pod
