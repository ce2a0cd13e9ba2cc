"""The proxy benchmark stays on its loopback range and parses wrk as wrk prints."""

from __future__ import annotations

import ipaddress
import re
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
