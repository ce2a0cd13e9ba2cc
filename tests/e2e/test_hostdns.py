"""`svcnet dns`: a host resolver sends the cluster's zones to svcnet. Tested for
real with dnsmasq (the file `svcnet dns apply` writes, loaded by a dnsmasq on a
loopback port of its own, answered through svcnet); the other resolvers' plans
are checked as text, since this machine runs none of them."""

from __future__ import annotations

import select
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from svcnet.testing import free_port
from tests.e2e.cluster import Cluster

pytestmark = pytest.mark.slow


@pytest.fixture
def dnsmasq_port() -> int:
    assert shutil.which("dnsmasq"), "dnsmasq is required (apt-get install dnsmasq)"
    return free_port()


def dig(port: int, name: str) -> str:
    out = subprocess.run(
        ["dig", "@127.0.0.1", "-p", str(port), "+short", "+tries=3", "+time=1", name],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    return out.stdout.strip()


class Dnsmasq:
    """A dnsmasq on a loopback port of its own that reads the conf dir under `root`
    (where `svcnet dns apply --root` writes), forwarding nowhere else."""

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.port = port
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        argv = [
            "dnsmasq", "--keep-in-foreground", f"--conf-dir={self.root / 'etc/dnsmasq.d'}",
            "--listen-address=127.0.0.1", f"--port={self.port}", "--bind-interfaces",
            "--no-resolv", "--no-hosts", f"--pid-file={self.root / 'dnsmasq.pid'}",
            "--log-facility=-",
        ]  # fmt: skip
        self.proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
        assert self.proc.stderr is not None
        # It says "started" once it listens; nothing is asked of it before.
        ready, _, _ = select.select([self.proc.stderr], [], [], 10)
        assert ready and "started" in self.proc.stderr.readline()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture
def dnsmasq(tmp_path: Path, dnsmasq_port: int) -> Iterator[Dnsmasq]:
    d = Dnsmasq(tmp_path, dnsmasq_port)
    yield d
    d.stop()


def test_dnsmasq_sends_the_cluster_zones_to_svcnet(cluster: Cluster, dnsmasq: Dnsmasq) -> None:
    root = dnsmasq.root
    args = ["--resolver", "dnsmasq", "--root", str(root), "--no-reload"]
    out = cluster.cli("dns", "apply", *args, "--port", str(cluster.dns_port))
    conf = root / "etc/dnsmasq.d/svcnet.conf"
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == f"wrote {conf}"
    assert conf.read_text().splitlines()[1:] == [
        f"server=/cluster.local/127.0.0.1#{cluster.dns_port}",
        f"server=/svc.local/127.0.0.1#{cluster.dns_port}",
    ]
    dnsmasq.start()
    ip = cluster.cli("get", "svc", "echo", "-o", "jsonpath={.spec.clusterIP}").stdout
    assert dig(dnsmasq.port, "echo.default.svc.cluster.local") == ip
    assert dig(dnsmasq.port, "echo.default.svc.local") == ip  # the seed's spelling

    out = cluster.cli("dns", "undo", *args)
    assert out.stdout == f"removed {conf}\n" and not conf.exists()
    # A file svcnet did not write is never touched.
    conf.write_text("server=/example/127.0.0.9\n")
    out = cluster.cli("dns", "apply", *args)
    assert out.returncode == 1 and "svcnet did not write it" in out.stderr
    assert cluster.cli("dns", "undo", *args).stdout == f"left {conf}: svcnet did not write it\n"


def test_other_resolvers_plans(cluster: Cluster) -> None:
    out = cluster.cli("dns", "print", "--resolver", "systemd-resolved", "--port", "5353")
    assert out.stdout.splitlines()[1:] == [
        "ip link add svcnet0 type dummy",
        "ip link set svcnet0 up",
        "resolvectl dns svcnet0 127.0.0.1:5353",
        "resolvectl domain svcnet0 ~cluster.local ~svc.local",
        "resolvectl default-route svcnet0 false",
    ]
    out = cluster.cli("dns", "print", "--resolver", "macos", "--address", "127.0.0.2")
    assert "cat > /etc/resolver/cluster.local <<'EOF'" in out.stdout
    assert "nameserver 127.0.0.2\nport 53\n" in out.stdout
    out = cluster.cli("dns", "print", "--resolver", "networkmanager")
    assert "/etc/NetworkManager/dnsmasq.d/svcnet.conf" in out.stdout
    assert out.stdout.rstrip().endswith("systemctl reload NetworkManager")
