"""`svcnet kubeconfig`: the printed file, --merge and --use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.kubectl.binaries import all_kubectls

ROOT = Path(__file__).resolve().parents[2]


def run(home: Path, *args: str, kubeconfig: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "SVCNET_SERVER")}
    env["HOME"] = str(home)
    if kubeconfig is not None:
        env["KUBECONFIG"] = kubeconfig
    return subprocess.run(
        [sys.executable, "-m", "svcnet", "kubeconfig", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=30,
    )


def test_prints_a_kubeconfig_kubectl_reads(tmp_path: Path) -> None:
    r = run(tmp_path, "--server", "http://127.0.0.1:1")
    assert r.returncode == 0
    assert "warning: no svcnet API answers at http://127.0.0.1:1" in r.stderr
    cfg = yaml.safe_load(r.stdout)
    assert cfg["current-context"] == "svcnet"
    assert cfg["clusters"] == [{"name": "svcnet", "cluster": {"server": "http://127.0.0.1:1"}}]
    path = tmp_path / "kc"
    path.write_text(r.stdout)
    for _, exe in all_kubectls():
        out = subprocess.run(
            [exe, "config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}"],
            capture_output=True,
            text=True,
            env={"HOME": str(tmp_path), "KUBECONFIG": str(path), "PATH": os.environ["PATH"]},
            timeout=30,
        )
        assert out.stdout == "http://127.0.0.1:1", out.stderr


def test_merge_keeps_the_current_context_unless_use(tmp_path: Path) -> None:
    kube = tmp_path / ".kube" / "config"
    kube.parent.mkdir()
    kube.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "prod", "cluster": {"server": "https://10.0.0.1"}}],
                "users": [{"name": "prod", "user": {"token": "t"}}],
                "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "prod"}}],
                "current-context": "prod",
            }
        )
    )
    r = run(tmp_path, "--server", "http://127.0.0.1:1", "--merge")
    assert r.returncode == 0, r.stderr
    cfg = yaml.safe_load(kube.read_text())
    assert cfg["current-context"] == "prod"
    assert [c["name"] for c in cfg["contexts"]] == ["prod", "svcnet"]
    assert cfg["users"][0]["user"] == {"token": "t"}
    # Again with --use: replaced, not duplicated, and now current.
    r = run(tmp_path, "--server", "http://127.0.0.1:2", "--merge", "--use")
    assert r.returncode == 0, r.stderr
    cfg = yaml.safe_load(kube.read_text())
    assert cfg["current-context"] == "svcnet"
    assert [c["name"] for c in cfg["clusters"]] == ["prod", "svcnet"]
    assert cfg["clusters"][1]["cluster"]["server"] == "http://127.0.0.1:2"
    assert oct(kube.stat().st_mode & 0o777) == "0o600"
    # $KUBECONFIG's first file is the target when set.
    other = tmp_path / "other.yaml"
    r = run(tmp_path, "--server", "http://127.0.0.1:3", "--use", kubeconfig=f"{other}:{kube}")
    assert r.returncode == 0, r.stderr
    assert yaml.safe_load(other.read_text())["current-context"] == "svcnet"
