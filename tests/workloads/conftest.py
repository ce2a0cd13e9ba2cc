"""An in-process cluster for workload tests: store, registry, the Deployment,
ReplicaSet and Endpoints controllers, the agent and the proxy, on 127.140/16
(pods) and 127.141/16 (Services). No DNS server: the DNS index follows
Endpoints through the same synchronous store subscription the proxy uses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from svcnet.agent import Agent
from svcnet.config import Settings
from svcnet.controllers import (
    DeploymentController,
    EndpointsController,
    GarbageCollector,
    ReplicaSetController,
)
from svcnet.controllers.endpointslice import EndpointSliceController
from svcnet.proxy.proxier import Proxier
from svcnet.registry import Registry
from svcnet.store import Store
from tests.agent.conftest import no_leaked_children  # noqa: F401 (autouse fixture)


@dataclass
class Cluster:
    store: Store
    registry: Registry
    agent: Agent
    proxy: Proxier


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    s = Settings()
    s.network.pod_cidr = "127.140.0.0/16"
    s.network.service_cidr = "127.141.0.0/16"
    s.network.node_port_addresses = ["127.142.0.1"]
    s.state_dir = str(tmp_path / "state")
    store = Store()
    reg = Registry(s, store)
    reg.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
    ctrls = [
        DeploymentController(reg),
        ReplicaSetController(reg),
        EndpointsController(reg),
        EndpointSliceController(reg),
        GarbageCollector(reg),
    ]
    for c in ctrls:
        c.start()
    agent = Agent(s, reg, backoff=(0.2, 1.0))
    proxy = Proxier(s, store)
    await agent.start()
    await proxy.start()
    try:
        yield Cluster(store, reg, agent, proxy)
    finally:
        await proxy.stop()
        await agent.stop()
        for c in ctrls:
            c.stop()
