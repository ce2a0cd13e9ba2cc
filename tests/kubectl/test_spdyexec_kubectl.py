"""kubectl exec, attach and cp over SPDY/3.1 against `svcnet up`: kubectl with
KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false speaks what kubectl <= 1.29 and client-go's
SPDY executor speak (both kubectls here, 1.32 and 1.37, honour the variable and never
try a WebSocket). Exit codes, stdout and stderr apart, stdin and its half-close,
`kubectl cp` both ways (tar over exec), a pty with resizes, attach."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.kubectl.conftest import Daemon, Kubectl, Terminal, make_kubectl

pytestmark = pytest.mark.slow

PODS = """\
apiVersion: v1
kind: Pod
metadata: {name: box}
spec:
  containers:
  - {name: box, image: busybox, command: [sleep, "3600"]}
---
apiVersion: v1
kind: Pod
metadata: {name: shell}
spec:
  containers:
  - {name: shell, image: busybox, stdin: true, tty: true}
"""


@dataclass
class SpdyKubectl(Kubectl):
    def env(self) -> dict[str, str]:
        return {**super().env(), "KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"}


def spdy_kubectl(daemon: Daemon, exe: str, namespace: str, home: Path) -> SpdyKubectl:
    k = make_kubectl(daemon, exe, namespace, home)
    r = k("apply", "-f", "-", input=PODS)
    assert r.returncode == 0, r.stderr
    k.ok("wait", "--for=condition=Ready", "pod/box", "pod/shell", "--timeout=60s")
    return SpdyKubectl(k.exe, k.kubeconfig, k.home)


def test_exec_stdin_and_cp(daemon: Daemon, kubectl_bin: tuple[str, str], tmp_path: Path) -> None:
    k = spdy_kubectl(daemon, kubectl_bin[1], f"spdy-exec-{kubectl_bin[0]}", tmp_path)

    # SPDY it is: kubectl's request log shows the upgrade, and no WebSocket.
    r = k("-v=8", "exec", "box", "--", "true")
    assert r.returncode == 0, r.stderr
    assert "Upgrade: SPDY/3.1" in r.stderr and "websocket" not in r.stderr.lower()

    r = k("exec", "box", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (r.returncode, r.stdout) == (3, "out\n")
    assert r.stderr == "err\ncommand terminated with exit code 3\n"

    # stdin, more than a frame's worth, ends with kubectl's half-close.
    text = "".join(f"line {i}\n" for i in range(40000))
    r = k("exec", "-i", "box", "--", "cat", input=text)
    assert r.returncode == 0, r.stderr
    assert r.stdout == text

    # A program that cannot start: the runtime's words, on the error stream.
    r = k("exec", "box", "--", "no-such-program")
    assert r.returncode != 0
    assert 'exec: "no-such-program": executable file not found in $PATH' in r.stderr

    # kubectl cp: tar over exec, with stdin (to the pod) and stdout (back).
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(300 << 10))
    k.ok("cp", str(src), "box:copied.bin")
    sums = k.ok("exec", "box", "--", "sha256sum", "copied.bin").split()
    assert sums[0] == hashlib.sha256(src.read_bytes()).hexdigest()
    back = tmp_path / "back.bin"
    k.ok("cp", "box:copied.bin", str(back))
    assert back.read_bytes() == src.read_bytes()


def test_terminal_and_attach(daemon: Daemon, kubectl_bin: tuple[str, str], tmp_path: Path) -> None:
    k = spdy_kubectl(daemon, kubectl_bin[1], f"spdy-tty-{kubectl_bin[0]}", tmp_path)

    # exec -it: the pty has kubectl's size, then the new one after the window changes.
    term = Terminal(k, "exec", "-it", "box", "--", "sh")
    term.expect(b"# ")
    term.send(b"echo S=$(stty size)\r")
    term.expect(b"S=24 80")
    term.resize(33, 101)
    # kubectl sends the resize beside the keystrokes, not before them: ask until the
    # new size shows (the arithmetic keeps the typed line's echo from matching).
    for i in range(100):
        term.send(f"echo M$((1000+{i})) $(stty size) Z$((2000+{i}))\r".encode())
        term.expect(f"Z{2000 + i}".encode())
        if f"M{1000 + i} 33 101 Z".encode() in term.seen:
            break
    else:
        raise AssertionError(term.seen[-2000:])
    term.send(b"exit 7\r")
    assert term.finish() == 7

    # attach -it to a container's own shell (stdin and tty in its spec).
    term = Terminal(k, "attach", "-it", "shell")
    term.send(b"\recho attached-$((6*7))\r")
    term.expect(b"attached-42")
    term.send(b"exit 0\r")
    assert term.finish() == 0, term.seen[-2000:]
