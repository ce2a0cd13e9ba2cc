"""The pytest plugin: a svcnet for a test session, a namespace for each test.

Installed with svcnet (the ``pytest11`` entry point), so no conftest is needed::

    def test_orders(svcnet_namespace):
        svcnet_namespace.apply("k8s/")
        svcnet_namespace.wait_ready("deploy/orders")
        body = urllib.request.urlopen(svcnet_namespace.url("orders") + "/healthz").read()

- ``svcnet`` (session): one isolated `svcnet up` (free ports, its own
  addresses and state directory; nothing shared with a svcnet started by
  hand), stopped with all its pods at the end of the session.
- ``svcnet_namespace`` (function): a namespace of the test's own, deleted
  after it; the same helpers as ``svcnet``, defaulting to that namespace.

When a test that uses ``svcnet_namespace`` fails, its report carries the
namespace's events and the tail of every container's log, as
testcontainers prints a container's log.

Options (also as ini settings ``svcnet_config``, ``svcnet_manifests``):
``--svcnet-config FILE`` (svcnet.yaml: image mappings and other settings),
``--svcnet-manifests PATH`` (applied at start, as `svcnet up -f`), and
``--svcnet-keep`` (leave the cluster and the tests' namespaces running after
the session, to look at with kubectl; the last lines of the session say how
to reach and stop it).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from svcnet.testing import Namespace, Svcnet


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("svcnet", "svcnet: Kubernetes Service networking for tests")
    group.addoption(
        "--svcnet-config",
        default=None,
        metavar="FILE",
        help="svcnet settings file (svcnet.yaml) for the session's cluster",
    )
    group.addoption(
        "--svcnet-manifests",
        action="append",
        default=None,
        metavar="PATH",
        help="manifests to apply when the session's cluster starts (repeatable)",
    )
    group.addoption(
        "--svcnet-keep",
        action="store_true",
        default=False,
        help="leave the session's cluster and the tests' namespaces running afterwards",
    )
    parser.addini("svcnet_config", "svcnet settings file for the session's cluster")
    parser.addini("svcnet_manifests", "manifests applied at start", type="paths")


def _config(config: pytest.Config) -> Path | None:
    given = config.getoption("--svcnet-config")
    if given:
        return Path(given)
    ini = config.getini("svcnet_config")
    return Path(config.rootpath, ini) if ini else None


def _manifests(config: pytest.Config) -> list[Path]:
    given = config.getoption("--svcnet-manifests")
    if given:
        return [Path(p) for p in given]
    return list(config.getini("svcnet_manifests"))


@pytest.fixture(scope="session")
def svcnet(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Svcnet]:
    """A svcnet of the session's own, ready, with the manifests of --svcnet-manifests."""
    config = request.config
    keep = bool(config.getoption("--svcnet-keep"))
    cluster = Svcnet.start(
        tmp_path_factory.mktemp("svcnet"),
        manifests=_manifests(config),
        config=_config(config),
        detach=keep,
    )
    try:
        yield cluster
    finally:
        if keep:
            config.stash[_KEEP] = (
                f"svcnet kept running (pid {cluster.proc.pid}): "
                f"export KUBECONFIG={cluster.kubeconfig}; stop it with kill {cluster.proc.pid}"
            )
        else:
            cluster.stop()


_KEEP = pytest.StashKey[str]()
_NAMESPACE = pytest.StashKey[Namespace]()


def _namespace_name(node_name: str) -> str:
    """A DNS label from the test's name: `test-orders-ab12c`."""
    base = re.sub(r"[^a-z0-9-]+", "-", node_name.lower()).strip("-")
    base = re.sub(r"-{2,}", "-", base)[:50].rstrip("-") or "test"
    return f"{base}-{secrets.token_hex(3)[:5]}"


@pytest.fixture
def svcnet_namespace(svcnet: Svcnet, request: pytest.FixtureRequest) -> Iterator[Namespace]:
    """A namespace of the test's own in the session's svcnet, deleted after the test."""
    ns = svcnet.namespace_for(_namespace_name(request.node.name))
    request.node.stash[_NAMESPACE] = ns
    try:
        yield ns
    finally:
        if not request.config.getoption("--svcnet-keep"):
            svcnet.delete_namespace(ns.name)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    ns = item.stash.get(_NAMESPACE, None)
    # The call phase's report is made before teardown deletes the namespace.
    if ns is not None and report.failed and report.when in ("setup", "call"):
        events, logs = ns.report()
        report.sections.append((f"svcnet events (namespace {ns.name})", events))
        report.sections.append((f"svcnet logs (namespace {ns.name})", logs))
    return report


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    hint = config.stash.get(_KEEP, None)
    if hint:
        terminalreporter.write_line(hint)
