"""The proxy benchmark stays on its loopback range and parses wrk as wrk prints."""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
import sys
from pathlib import Path

from benchmarks.proxy import run

BENCH_NET = ipaddress.IPv4Network("127.130.0.0/16")


def test_every_address_is_in_the_benchmark_range() -> None:
    for host in run.ADDRESSES:
        assert ipaddress.IPv4Address(host) in BENCH_NET
    hap = run.haproxy_conf(0)
    conf = run.nginx_conf(Path("/tmp/x"), run.BACKENDS[0], 0)
    for text in (hap, conf):
        for ip in re.findall(r"\b\d+\.\d+\.\d+\.\d+\b", text):
            assert ipaddress.IPv4Address(ip) in BENCH_NET, ip
    assert "nbthread" not in hap
    assert "nbthread 1" in run.haproxy_conf(1)
    assert "mode tcp" in hap and "balance roundrobin" in hap


def test_the_benchmark_proxy_serves_its_service() -> None:
    """serve.py, as run.py starts it, listens on the Service's ClusterIP: its store
    once held only Endpoints, which the proxy no longer reads, and every run failed."""
    cmd = [sys.executable, str(Path(run.__file__).parent / "serve.py"), "--port", str(run.PORT)]
    cmd += ["--cluster-ip", run.SVCNET_HOST]
    for h in run.BACKENDS:
        cmd += ["--endpoint", f"{h}:{run.PORT}"]
    proc = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=run.HERE.parents[1]
    )
    try:
        out, _ = proc.communicate("stats\nquit\n", timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    ready, stats = (json.loads(line) for line in out.splitlines()[:2])
    assert ready["listeners"] == [[run.SVCNET_HOST, run.PORT]]
    assert stats["default/bench:http"]["endpoints"] == len(run.BACKENDS)
    assert proc.returncode == 0
