"""A whole `svcnet up` (on 127.154-157): issue 16's scale benchmark
(benchmarks/scale/run.py), bounded to 100 pods: 20 Services with 5 echo
replicas each, a tcpSocket readiness probe every 2 s. Every pod becomes Ready
and not one probe fails, while they start or after: a daemon under load answers
later, it does not call healthy pods unready."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from benchmarks.scale import run as scale

pytestmark = pytest.mark.slow

PREFIX = 154  # 127.154-157.x: clear of the other suites and of the benchmarks


def test_a_hundred_probed_pods_become_ready_and_no_probe_fails() -> None:
    r = scale.run(20, 5, PREFIX, timeout=75.0, idle=3.0)
    report = asdict(r)
    assert r.ready_s is not None, report
    assert r.pods == 100, report
    # No Unhealthy Event, and the agent's own counter agrees.
    assert r.probe_failures == 0, report
    assert r.probes_failed == 0, report
    # Every pod was probed until Ready, and then every 2 s.
    assert r.probes_run >= 100, report
    assert r.delete_s is not None, report
