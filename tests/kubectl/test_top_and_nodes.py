"""`kubectl top pod|node`, `get nodes` and `describe node`, with both kubectls, against
a running svcnet: usage comes from the pods' cgroups (as root), the node is this machine."""

from __future__ import annotations

import os
import re
from pathlib import Path

from tests.kubectl.conftest import Daemon, make_kubectl

POD = """\
apiVersion: v1
kind: Pod
metadata: {name: busy, labels: {app: busy}}
spec:
  containers:
  - {name: spin, image: busybox, command: ["sh", "-c", "while :; do :; done"]}
  - {name: idle, image: busybox, command: ["sleep", "1000"]}
"""


def test_top_and_nodes(daemon: Daemon, kubectl_bin: tuple[str, str], tmp_path: Path) -> None:
    assert os.geteuid() == 0, "pod usage comes from cgroups: run this test as root (CI does)"
    ns = f"top-{kubectl_bin[0]}"
    k = make_kubectl(daemon, kubectl_bin[1], ns, tmp_path)
    (tmp_path / "busy.yaml").write_text(POD)
    k.ok("apply", "-f", str(tmp_path / "busy.yaml"))
    k.ok("wait", "--for=condition=Ready", "pod/busy", "--timeout=30s")

    nodes = k.ok("get", "nodes")
    row = r"svcnet +Ready +control-plane +\S+ +v1\.32\.0\n$"
    assert re.match(r"NAME +STATUS +ROLES +AGE +VERSION\n" + row, nodes), nodes
    described = k.ok("describe", "node", "svcnet")
    assert "Roles:              control-plane" in described
    assert f"  cpu:                {os.cpu_count()}" in described

    top = ""
    for _ in range(50):  # each call is a round trip; the first figure needs a window
        top = k.ok("top", "pod", "busy", "--containers")
        spin = re.search(r"^busy +spin +(\d+)m +(\d+)Mi", top, re.M)
        if spin and int(spin[1]) >= 100:
            break
    assert spin and int(spin[1]) >= 100, top  # a busy loop uses most of a core
    idle = re.search(r"^busy +idle +(\d+)m +", top, re.M)
    assert idle and int(idle[1]) < 50, top
    assert re.search(r"^svcnet +\d+m +\d+% +\d+Mi +\d+%", k.ok("top", "node"), re.M)
    k.ok("delete", "pod", "busy", "--grace-period=0", "--force")
