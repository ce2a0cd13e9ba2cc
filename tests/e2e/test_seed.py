"""The seed walkthrough as a new user runs it, with the real tools.

These start a whole daemon and real pod processes: marked slow, run in CI.
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.e2e.cluster import IP_RE, ROOT, Cluster, start, stop

pytestmark = pytest.mark.slow

FIXTURES = ROOT / "tests" / "fixtures"


def rows(out: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in out.strip().splitlines()]


def cluster_ip(c: Cluster) -> str:
    out = c.cli("get", "svc", "echo", "-o", "jsonpath={.spec.clusterIP}", check=True).stdout
    assert IP_RE.match(out), out
    table = rows(c.cli("get", "svc", "echo", check=True).stdout)
    assert table[1][2] == out
    return out


def test_ready_line_names_what_was_applied(cluster: Cluster) -> None:
    assert "replicaset/echo-spring" in cluster.ready_line or "echo-spring" in cluster.ready_line


def test_get_pods_last_selector_wins(cluster: Cluster) -> None:
    out = cluster.cli("get", "pod", "-l", "app=echo", "-l", "release=summer", check=True).stdout
    table = rows(out)
    assert table[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert len(table) == 3
    for r in table[1:]:
        assert re.fullmatch(r"echo-summer-[bcdfghjklmnpqrstvwxz2456789]{5}", r[0])
        assert r[1:4] == ["2/2", "Running", "0"]
    spring = rows(
        cluster.cli("get", "pod", "-l", "app=echo", "-l", "release=spring", check=True).stdout
    )
    assert len(spring) == 2 and spring[1][0].startswith("echo-spring-")


def test_get_services(cluster: Cluster) -> None:
    table = rows(cluster.cli("get", "svc", "echo", check=True).stdout)
    assert table[0] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    name, typ, ip, ext, ports, _age = table[1]
    assert (name, typ, ext, ports) == ("echo", "NodePort", "<none>", "80:30026/TCP")
    assert ipaddress.ip_address(ip) in ipaddress.ip_network(cluster.service_cidr)
    gihyo = rows(cluster.cli("get", "svc", "gihyo", check=True).stdout)[1]
    assert gihyo[1:5] == ["ExternalName", "<none>", "gihyo.jp", "<none>"]


def test_dig_answers_every_seed_name(cluster: Cluster) -> None:
    ip = cluster_ip(cluster)
    for name in (
        "echo.default",
        "echo",
        "echo.default.svc.local",
        "echo.default.svc.cluster.local",
    ):
        assert cluster.dig(name, "+short").split() == [ip], name
    out = cluster.dig("gihyo.default.svc.cluster.local")
    assert re.search(
        r"gihyo\.default\.svc\.cluster\.local\.\s+\d+\s+IN\s+CNAME\s+gihyo\.jp\.", out
    ), out
    assert "status: NXDOMAIN" in cluster.dig("nosuch.default.svc.cluster.local")


def test_dns_counters_visible_through_the_api(cluster: Cluster) -> None:
    def a_queries() -> int:
        stats = json.loads(cluster.api_get("/debug/svcnet/stats"))
        return int(stats["dns"]["qtypes"].get("A", 0))

    before = a_queries()
    for _ in range(3):
        cluster.dig("echo.default.svc.cluster.local", "+short")
    assert a_queries() == before + 3
    assert "NXDOMAIN" in cluster.dig("nosuch.default.svc.cluster.local")
    metrics = cluster.api_get("/metrics").decode()
    assert re.search(r'^coredns_dns_requests_total\{type="A"\} \d+$', metrics, re.M), metrics
    assert re.search(r'^coredns_dns_responses_total\{rcode="NXDOMAIN"\} \d+$', metrics, re.M)


def test_curl_nodeport_and_clusterip_round_robin_to_summer_only(cluster: Cluster) -> None:
    pods = {r[0]: r for r in rows(cluster.cli("get", "pod", check=True).stdout)[1:]}

    def received(pod: str) -> int:
        out = cluster.cli("logs", pod, "-c", "echo", check=True).stdout
        return out.count("received request")

    before = {p: received(p) for p in pods}
    ip = cluster_ip(cluster)
    assert cluster.curl(f"http://{cluster.node_ip}:30026") == "Hello Docker!!"
    assert cluster.curl(f"http://{ip}/") == "Hello Docker!!"
    for _ in range(4):
        assert cluster.curl(f"http://{cluster.node_ip}:30026/") == "Hello Docker!!"
    delta = {p: received(p) - before[p] for p in pods}
    summer = {p: n for p, n in delta.items() if p.startswith("echo-summer-")}
    # Round-robin per Service address (the NodePort and the ClusterIP count apart, as
    # each has its own entry in the socket hooks): both summer pods answered.
    assert sum(summer.values()) == 6 and all(n >= 2 for n in summer.values()), summer
    assert all(n == 0 for p, n in delta.items() if p.startswith("echo-spring-"))


def test_run_debug_pod_resolves_short_name(cluster: Cluster) -> None:
    out = cluster.cli(
        "run",
        "debug",
        "-i",
        "--rm",
        "--restart=Never",
        "--image=gihyodocker/fundamental:0.1.0",
        "--",
        "curl",
        "-s",
        "http://echo/",
        timeout=60,
    )
    assert "Hello Docker!!" in out.stdout, out.stderr
    assert out.returncode == 0, out.stderr
    assert 'pod "debug" deleted' in out.stdout + out.stderr
    assert "debug" not in cluster.cli("get", "pods", "-o", "name").stdout


def test_broken_seed_manifest_applies_nothing(cluster: Cluster, tmp_path: Path) -> None:
    before = cluster.cli("get", "all", check=True).stdout
    out = cluster.cli("apply", "-f", str(FIXTURES / "seed" / "simple-service.yaml"))
    assert out.returncode == 1
    assert re.search(r"simple-service\.yaml.*line 11, column 19", out.stderr), out.stderr
    # A directory with one good and one broken file: nothing is applied.
    (tmp_path / "a-good.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: extra\nspec:\n  ports:\n  - port: 80\n"
    )
    (tmp_path / "b-bad.yaml").write_text((FIXTURES / "bad" / "unknown-field.yaml").read_text())
    out = cluster.cli("apply", "-f", str(tmp_path))
    assert out.returncode == 1
    assert "targetPrt" in out.stderr and "b-bad.yaml:" in out.stderr, out.stderr
    assert cluster.cli("get", "svc", "extra").returncode == 1
    assert cluster.cli("get", "all", check=True).stdout.count("\n") == before.count("\n")
    assert cluster.curl(f"http://{cluster.node_ip}:30026") == "Hello Docker!!"


def test_stop_leaves_no_process_and_no_port(tmp_path: Path) -> None:
    c = start(tmp_path, "170")
    try:
        assert c.curl(f"http://{c.node_ip}:30026") == "Hello Docker!!"
    finally:
        left, took = stop(c)
    assert not left, f"processes outlived svcnet: {left}"
    assert took < 5
    listening = subprocess.run(
        ["ss", "-H", "-ltnu"], capture_output=True, text=True, check=True
    ).stdout
    for needle in ("127.170.", "127.171.", "127.173.", f":{c.api_port} ", f":{c.dns_port} "):
        assert needle not in listening, listening
