"""`kubectl debug` against `svcnet up`: ephemeral containers (the pods/ephemeralcontainers
subresource, the agent running them in the pod's sandbox, attach, logs, describe), a copy
of a pod, a node's debugging pod; and the terminal size that `exec -it` sends, at the
start and after the window changes."""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import struct
import termios
import time
from pathlib import Path

import pytest

from tests.kubectl.conftest import PREFIX, Daemon, Kubectl, Terminal, make_kubectl

pytestmark = pytest.mark.slow

WEB = "gihyodocker/echo:latest"


def resize(term: Terminal, rows: int, cols: int) -> None:
    """What a terminal emulator does when its window changes: the new size on the pty,
    then SIGWINCH (kubectl has no controlling terminal here, so it is sent by hand)."""
    fcntl.ioctl(term.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    term.proc.send_signal(signal.SIGWINCH)


def pod(k: Kubectl, name: str) -> dict:  # type: ignore[type-arg]
    return json.loads(k.ok("get", "pod", name, "-o", "json"))  # type: ignore[no-any-return]


def wait_ephemeral(k: Kubectl, name: str, container: str, state: str) -> dict:  # type: ignore[type-arg]
    """The container's status once it is in `state` (running, terminated)."""
    deadline = time.monotonic() + 30
    while True:
        statuses = pod(k, name)["status"].get("ephemeralContainerStatuses") or []
        st = next((s for s in statuses if s["name"] == container), None)
        if st is not None and state in st["state"]:
            return st  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, f"{container} not {state}: {statuses}"
        time.sleep(0.1)


def test_debug_ephemeral_container(
    daemon: Daemon, kubectl_bin: tuple[str, str], tmp_path: Path
) -> None:
    k = make_kubectl(daemon, kubectl_bin[1], f"debug-{kubectl_bin[0]}", tmp_path)
    k.ok("run", "web", f"--image={WEB}")
    k.ok("wait", "--for=condition=Ready", "pod/web", "--timeout=60s")
    web = pod(k, "web")

    # -it: kubectl creates the container, waits for it to run and attaches; the
    # shell runs in the pod's sandbox (hostname, cgroup, resolv.conf, address).
    term = Terminal(k, "debug", "-it", "pod/web", "--image=busybox", "--container=dbg")
    term.expect(b"# ")
    term.send(b"echo H=$(hostname) S=$(stty size) IP=$POD_IP\r")
    term.expect(f"H=web S=24 80 IP={web['status']['podIP']}".encode())
    term.send(b"grep nameserver /etc/resolv.conf\r")
    term.expect(f"nameserver 127.{PREFIX}.0.10".encode())
    term.send(b"exit 0\r")
    assert term.finish() == 0, term.seen[-2000:]
    st = wait_ephemeral(k, "web", "dbg", "terminated")
    assert st["state"]["terminated"]["exitCode"] == 0
    assert st["ready"] is False and st["restartCount"] == 0
    assert "H=web" in k.ok("logs", "web", "-c", "dbg")

    # Never restarted, and the pod's own container is untouched.
    got = pod(k, "web")
    assert got["status"]["phase"] == "Running"
    assert [c["name"] for c in got["spec"]["ephemeralContainers"]] == ["dbg"]
    assert got["spec"]["ephemeralContainers"][0]["terminationMessagePolicy"] == "File"
    assert got["status"]["containerStatuses"][0]["restartCount"] == 0
    assert "ephemeralContainers:" in k.ok("get", "pod", "web", "-o", "yaml")

    # Created without attaching, then `kubectl attach -it -c` to it.
    term = Terminal(
        k, "debug", "-it", "--attach=false", "pod/web", "--image=busybox", "-c", "later"
    )
    assert term.finish() == 0, term.seen
    wait_ephemeral(k, "web", "later", "running")
    term = Terminal(k, "attach", "-it", "pod/web", "-c", "later")
    term.send(b"\recho attached-$((6*7))\r")
    term.expect(b"attached-42")
    term.send(b"exit 3\r")
    term.finish()
    st = wait_ephemeral(k, "web", "later", "terminated")
    assert st["state"]["terminated"]["exitCode"] == 3

    # describe lists them as kubectl 1.32 does.
    desc = k.ok("describe", "pod", "web")
    assert re.search(r"^Ephemeral Containers:\n  dbg:\n    Container ID:", desc, re.M), desc
    assert re.search(
        r"^    State:\s+Terminated\n      Reason:\s+Error\n      Exit Code:\s+3", desc, re.M
    )
    own = daemon.svcnet("describe", "pod", "web", "-n", f"debug-{kubectl_bin[0]}")
    section = re.compile(r"^Ephemeral Containers:\n.*?^Conditions:", re.M | re.S)
    assert section.search(own) and section.search(own)[0] == section.search(desc)[0], own  # type: ignore[index]

    # Only additions: the API server's messages for a change and a removal.
    r = k(
        "patch", "pod", "web", "--subresource=ephemeralcontainers", "--type=json",
        "-p", '[{"op":"replace","path":"/spec/ephemeralContainers/0/image","value":"nginx"}]',
    )  # fmt: skip
    assert r.returncode == 1
    assert r.stderr.startswith(
        'The Pod "web" is invalid: spec.ephemeralContainers: Forbidden: existing ephemeral '
        'containers "dbg" may not be changed\n'
    ), r.stderr
    r = k(
        "patch", "pod", "web", "--subresource=ephemeralcontainers", "--type=json",
        "-p", '[{"op":"remove","path":"/spec/ephemeralContainers/0"}]',
    )  # fmt: skip
    assert r.stderr.startswith(
        'The Pod "web" is invalid: spec.ephemeralContainers: Forbidden: existing ephemeral '
        'containers "dbg" may not be removed'
    ), r.stderr
    r = k(
        "patch", "pod", "web", "--subresource=ephemeralcontainers", "--type=strategic", "-p",
        '{"spec":{"ephemeralContainers":[{"name":"web","image":"busybox",'
        '"ports":[{"containerPort":80}],"targetContainerName":"nope"}]}}',
    )  # fmt: skip
    assert r.stderr.splitlines()[1:] == [
        '* spec.ephemeralContainers[2].name: Duplicate value: "web"',
        '* spec.ephemeralContainers[2].targetContainerName: Not found: "nope"',
        "* spec.ephemeralContainers[2].ports: Forbidden: cannot be set for an Ephemeral Container",
    ], r.stderr


def test_debug_copy_and_node(daemon: Daemon, kubectl_bin: tuple[str, str], tmp_path: Path) -> None:
    k = make_kubectl(daemon, kubectl_bin[1], f"debugcopy-{kubectl_bin[0]}", tmp_path)
    k.ok("run", "web", f"--image={WEB}")
    k.ok("wait", "--for=condition=Ready", "pod/web", "--timeout=60s")

    # --copy-to: a new pod, the original's containers plus the debugger.
    term = Terminal(
        k, "debug", "web", "-it", "--copy-to=web-copy", "--image=busybox", "--container=dbg"
    )
    term.expect(b"# ")
    term.send(b"echo host=$(hostname)\r")
    term.expect(b"host=web-copy")
    term.send(b"exit\r")
    assert term.finish() == 0, term.seen[-2000:]
    copy = pod(k, "web-copy")
    assert [c["name"] for c in copy["spec"]["containers"]] == ["web", "dbg"]

    # node/: a host-network pod with the node's / at /host: the node's hostname,
    # its address and resolver.
    term = Terminal(k, "debug", "-it", "node/svcnet", "--image=busybox")
    term.expect(b"# ")
    term.send(b"echo H=$(hostname) ROOT=$(test -d /host/proc && echo yes)\r")
    term.expect(f"H={os.uname().nodename} ROOT=yes".encode())
    term.send(b"exit\r")
    assert term.finish() == 0, term.seen[-2000:]
    node_pods = [
        p
        for p in json.loads(k.ok("get", "pods", "-o", "json"))["items"]
        if p["metadata"]["name"].startswith("node-debugger-svcnet-")
    ]
    assert len(node_pods) == 1
    assert node_pods[0]["spec"]["hostNetwork"] is True
    assert node_pods[0]["status"]["podIP"] == "127.0.0.1"


def test_exec_terminal_resize_and_exit_code(
    daemon: Daemon, kubectl_bin: tuple[str, str], tmp_path: Path
) -> None:
    k = make_kubectl(daemon, kubectl_bin[1], f"resize-{kubectl_bin[0]}", tmp_path)
    k.ok("run", "web", f"--image={WEB}")
    k.ok("wait", "--for=condition=Ready", "pod/web", "--timeout=60s")
    term = Terminal(k, "exec", "-it", "web", "--", "sh")
    term.expect(b"# ")
    term.send(b"echo S=$(stty size)\r")
    term.expect(b"S=24 80")
    resize(term, 33, 101)
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

    r = k("exec", "web", "--", "sh", "-c", "exit 3")
    assert r.returncode == 3
    assert r.stderr.strip() == "command terminated with exit code 3"
