"""The start-up benchmark keeps working as the CLI changes, and stays on loopback."""

from __future__ import annotations

import ipaddress

from benchmarks.startup import run
from svcnet.config import Settings
from svcnet.main import build_parser


def test_benchmark_command_is_accepted_by_svcnet_up() -> None:
    argv = run.up_command(["svcnet"], 16443, 15353, "/tmp/svcnet-state")
    args = build_parser().parse_args(argv[1:])
    assert args.verb == "up"
    assert (args.api_port, args.dns_port) == (16443, 15353)
    assert args.filename == [str(run.ROOT / "config")]


def test_benchmark_addresses_are_loopback_and_clear_of_the_defaults() -> None:
    loopback = ipaddress.IPv4Network("127.0.0.0/8")
    defaults = Settings().network
    taken = [
        ipaddress.IPv4Network(c)
        for c in (defaults.service_cidr, defaults.pod_cidr, defaults.load_balancer_cidr)
    ]
    args = build_parser().parse_args(run.up_command([], 16443, 15353, "/tmp/svcnet-state"))
    ours = [ipaddress.IPv4Network(c) for c in (args.service_cidr, args.pod_cidr, args.lb_cidr)]
    for net in ours:
        assert net.subnet_of(loopback)
        assert not any(net.overlaps(t) for t in taken)
    assert args.nodeport_addresses == run.NODE_IP
    for addr in (run.NODE_IP, *(u.rsplit(":", 1)[0] for u in args.upstream_dns)):
        ip = ipaddress.IPv4Address(addr)
        assert ip in loopback
        assert not any(ip in n for n in [*taken, *ours])


def test_table_has_a_median_row() -> None:
    runs = [run.Run(up_s=0.5, ready_s=0.5, curl_s=0.4), run.Run(up_s=0.7, ready_s=0.7, curl_s=0.6)]
    runs.append(run.Run(up_s=0.6, ready_s=0.6, curl_s=0.6, daemon_hwm_kib=40 * 1024))
    med = run.median_of(runs)
    assert med["up_s"] == 0.6
    text = run.table(runs, med)
    assert text.splitlines()[-1].split()[:2] == ["median", "0.600"]


def test_plugin_benchmark_runs_one_short_session() -> None:
    from benchmarks.plugin import run as plugin

    figures = plugin.session(2, plugin=True)
    assert 0 < figures["first_test_s"] < figures["session_s"]
    assert figures["between_tests_ms"] >= 0
