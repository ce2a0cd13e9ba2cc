"""The pytest plugin as a user meets it: test files in a fresh folder, run by pytest
in a process of its own, with nothing but svcnet installed (no conftest)."""

from __future__ import annotations

import json
import os
import select
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

pytest_plugins = ["pytester"]

WEB = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: python:3.11
        command: ["python3", "-m", "http.server", "8080"]
        ports: [{containerPort: 8080, name: http}]
        readinessProbe:
          tcpSocket: {port: 8080}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # A process of its own: the plugin is found through its entry point, as in a
    # user's project, and the inner session's svcnet is its own.
    return pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider", *args)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_namespace_per_test_and_nothing_left(pytester: pytest.Pytester) -> None:
    record = pytester.path / "record.json"
    pytester.makepyfile(
        test_app=f"""
        import json, os, urllib.request
        from pathlib import Path

        WEB = {WEB!r}
        RECORD = Path({str(record)!r})

        def test_serves(svcnet_namespace, svcnet):
            lines = svcnet_namespace.apply(WEB)
            assert lines == ["deployment.apps/web created", "service/web created"]
            svcnet_namespace.wait_ready("deploy/web")
            url = svcnet_namespace.url("web")
            with urllib.request.urlopen(url + "/", timeout=10) as r:
                assert r.status == 200
            ip = svcnet_namespace.get("svc/web")["spec"]["clusterIP"]
            assert svcnet_namespace.resolve("web") == [ip]
            fqdn = f"web.{{svcnet_namespace.name}}.svc.cluster.local"
            assert svcnet.resolve(fqdn) == [ip]
            assert svcnet_namespace.resolve("no-such-service") == []
            pods = svcnet_namespace.pods("app=web")
            RECORD.write_text(json.dumps({{
                "namespace": svcnet_namespace.name,
                "daemon": svcnet.proc.pid,
                "state_dir": str(svcnet.state_dir),
                "pods": [p["metadata"]["name"] for p in pods],
            }}))
            # The real kubectl, pointed at this cluster and namespace.
            out = svcnet_namespace.kubectl("get", "deploy", "web", "-o", "name").stdout
            assert out.strip() == "deployment.apps/web"

        def test_the_namespace_before_is_gone(svcnet, svcnet_namespace):
            seen = json.loads(RECORD.read_text())
            assert svcnet_namespace.name != seen["namespace"]
            listed = svcnet.client.get("/api/v1/namespaces")["items"]
            phases = {{n["metadata"]["name"]: n["status"]["phase"] for n in listed}}
            assert phases[svcnet_namespace.name] == "Active"
            # Deleted without waiting, as `kubectl delete --wait=false`: gone, or
            # Terminating while its pods stop, and nothing in it left running.
            assert phases.get(seen["namespace"], "Terminating") == "Terminating"
            left = svcnet.pods(namespace=seen["namespace"])
            assert all(p["metadata"].get("deletionTimestamp") for p in left)
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=2)
    seen = json.loads(record.read_text())
    assert seen["namespace"].startswith("test-serves-")
    assert len(seen["pods"]) == 2
    # The session's svcnet stopped with the session, and its pods with it.
    assert not alive(seen["daemon"])
    assert working_in(Path(seen["state_dir"])) == []


def working_in(directory: Path) -> list[int]:
    """Processes whose working directory is under `directory` (pods work in theirs)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cwd = Path(os.readlink(f"/proc/{entry}/cwd"))
            except OSError:
                continue
            if cwd.is_relative_to(directory):
                out.append(int(entry))
    return out


def test_a_failing_test_shows_events_and_logs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_fail="""
        CHATTY = '''
        apiVersion: v1
        kind: Pod
        metadata:
          name: chatty
        spec:
          containers:
          - name: talk
            image: busybox
            command: ["sh", "-c", "echo chatty-says-hello; exec sleep 300"]
        '''
        CRASH = '''
        apiVersion: v1
        kind: Pod
        metadata:
          name: crasher
        spec:
          containers:
          - name: c
            image: busybox
            command: ["sh", "-c", "echo about-to-crash; exit 3"]
            # Between crashes a probe-less container counts as ready for an
            # instant, as on a cluster; the probe keeps this pod never ready.
            readinessProbe:
              exec:
                command: ["false"]
        '''

        def test_fails_after_logging(svcnet_namespace):
            svcnet_namespace.apply(CHATTY)
            svcnet_namespace.wait_ready("pod/chatty")
            assert svcnet_namespace.logs("pod/chatty").strip() == "chatty-says-hello"
            assert False, "deliberately"

        def test_waits_for_a_crashing_pod(svcnet_namespace):
            svcnet_namespace.apply(CRASH)
            svcnet_namespace.wait_ready("pod/crasher", timeout=3)
        """
    )
    result = run(pytester)
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    assert "svcnet events (namespace test-fails-after-logging-" in out
    assert "svcnet logs (namespace test-fails-after-logging-" in out
    result.stdout.fnmatch_lines(
        [
            "*pod/chatty*Started*",
            "--- pod/chatty -c talk (last 20 lines)",
            "chatty-says-hello",
        ]
    )
    # The timeout names the pod's state and the namespace's warnings.
    result.stdout.fnmatch_lines(
        [
            "*SvcnetError: pod/crasher in namespace test-waits-for-a-crashing-pod-* is not ready*",
            "*pod/crasher: Running, not ready*",
        ]
    )
    result.stdout.fnmatch_lines(["*Warning*BackOff*pod/crasher*", "*about-to-crash*"])


def test_options_manifests_config_and_keep(pytester: pytest.Pytester, tmp_path: Path) -> None:
    manifests = tmp_path / "k8s"
    manifests.mkdir()
    (manifests / "web.yaml").write_text(WEB.replace("python:3.11", "example/web:1"))
    # The image is mapped in the settings file, as a project keeps it beside its manifests.
    config = tmp_path / "svcnet.yaml"
    config.write_text(
        textwrap.dedent(
            """
            apiVersion: svcnet.dev/v1alpha1
            kind: SvcnetConfiguration
            agent:
              images:
                example/web:
                  command: ["python3", "-m", "http.server", "8080"]
            """
        )
    )
    pid_file = tmp_path / "pid"
    pytester.makepyfile(
        test_opts=f"""
        import urllib.request
        from pathlib import Path

        def test_preloaded(svcnet):
            svcnet.wait_ready("deploy/web")
            with urllib.request.urlopen(svcnet.url("web", "http"), timeout=10) as r:
                assert r.status == 200
            # Something that must outlive the session with the cluster kept.
            svcnet.apply(Path({str(manifests)!r}) / "web.yaml")
            Path({str(pid_file)!r}).write_text(f"{{svcnet.proc.pid}} {{svcnet.state_dir}}")
        """
    )
    result = run(
        pytester,
        f"--svcnet-manifests={manifests}",
        f"--svcnet-config={config}",
        "--svcnet-keep",
    )
    result.assert_outcomes(passed=1)
    pid_text, state_dir = pid_file.read_text().split()
    pid = int(pid_text)
    fd = os.pidfd_open(pid)
    try:
        assert alive(pid)
        assert len(working_in(Path(state_dir))) >= 2  # the pods live on too
        result.stdout.fnmatch_lines([f"svcnet kept running (pid {pid}): export KUBECONFIG=*"])
    finally:
        os.kill(pid, 15)
        # Not our child, so no waitpid: a pidfd turns readable when it ends.
        ended, _, _ = select.select([fd], [], [], 20)
        os.close(fd)
    assert ended
    assert working_in(Path(state_dir)) == []


def test_the_readme_example(pytester: pytest.Pytester) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("<!-- pytest-example -->\n```python\n", 1)[1].split("```", 1)[0]
    pytester.makepyfile(test_echo=block)
    run(pytester).assert_outcomes(passed=1)
