"""Host svcnet's Proxier for the proxy benchmark, on uvloop as `svcnet up` runs it.

Started by ``run.py``; not meant to be run by hand. It builds a store with one
ClusterIP Service (``bench``, port ``--port`` on ``--cluster-ip``) whose
Endpoints are the ``--endpoint`` addresses (and, with ``--single-ip``, a
second one, ``bench-one``, with the first endpoint alone), starts the Proxier, prints one
JSON line ``{"listeners": [...], "loop": ...}`` when the listener is open, then
reads commands from stdin, one per line, answering each with one JSON line:

- ``stats``: the service port's counters (connections, failures, retries).
- ``quit``: stop and exit.

With ``--socket-lb`` (root, cgroup v2, BPF) the proxier also writes the
Service into svcnet's eBPF socket hooks, attached to a cgroup of its own with
one "pod" in it (pod IP 127.130.1.1) as the agent sets pods up, and the
ready line carries ``pod_procs``: the ``cgroup.procs`` file a process writes
its pid to so its connect() calls are balanced as a pod's are. Two more
commands:

- ``host on`` / ``host off``: attach the hooks to the root of the v2
  hierarchy (``proxy.socket_lb: host``), so this machine's processes are
  balanced too, and detach them again.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from typing import Any

import uvloop  # as `svcnet up` runs the proxy (a dependency on Linux)

from svcnet.config import Settings
from svcnet.controllers.endpointslicemirroring import mirrored
from svcnet.kernel import cgroups, sockhooks
from svcnet.proxy import Proxier
from svcnet.store import Store


def build_store(port: int, services: dict[str, tuple[str, list[tuple[str, int]]]]) -> Store:
    """`services`: name -> (ClusterIP, endpoints)."""
    store = Store()
    store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
    for name, (cluster_ip, endpoints) in services.items():
        store.create(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {
                    "type": "ClusterIP",
                    "clusterIP": cluster_ip,
                    "clusterIPs": [cluster_ip],
                    "ports": [
                        {"name": "http", "protocol": "TCP", "port": port, "targetPort": port}
                    ],
                },
            }
        )
        eps = {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": name, "namespace": "default"},
            "subsets": [
                {
                    "addresses": [{"ip": ip}],
                    "ports": [{"name": "http", "port": p, "protocol": "TCP"}],
                }
                for ip, p in endpoints
            ],
        }
        store.create(eps)
        # The proxy reads EndpointSlices: those the mirroring controller makes of
        # these Endpoints (no controller runs here).
        for i, s in enumerate(mirrored(eps)):
            s["metadata"].pop("generateName", None)
            s["metadata"]["name"] = f"{name}-m{i}"
            store.create(s)
    return store


class Hooks:
    """The socket hooks as the daemon sets them up, for one pod cgroup of our own."""

    POD_IP, POD_LOOPBACK = "127.130.1.1", "127.130.2.1"

    def __init__(self) -> None:
        reason = sockhooks.probe()
        if reason is not None:
            raise SystemExit(f"--socket-lb: {reason}")
        self.layout = cgroups.discover()
        if self.layout.v2 is None or self.layout.v2_mount is None:
            raise SystemExit(f"--socket-lb: {'; '.join(self.layout.missing)}")
        self.maps = sockhooks.SocketHooks()
        self.maps.load()
        self.tree = cgroups.CgroupTree(self.layout)
        self.tree.create()
        pod_dir = self.tree.pod("bench").dirs[cgroups.V2]
        self.maps.attach(str(self.tree.dirs[cgroups.V2]))
        self.maps.set_pod(sockhooks.cgroup_id(str(pod_dir)), self.POD_IP, self.POD_LOOPBACK)
        self.pod_procs = str(pod_dir / "cgroup.procs")

    def host(self, on: bool) -> None:
        assert self.layout.v2_mount is not None
        if on:
            self.maps.attach(str(self.layout.v2_mount))
        else:
            self.maps.detach(str(self.layout.v2_mount))

    def close(self) -> None:
        self.maps.close()
        self.tree.remove()


async def main(args: argparse.Namespace) -> None:
    settings = Settings()
    settings.network.service_cidr = args.service_cidr
    settings.network.node_port_addresses = []
    eps = [(h, int(p)) for h, _, p in (e.rpartition(":") for e in args.endpoint)]
    services = {"bench": (args.cluster_ip, eps)}
    if args.single_ip:
        # The same first endpoint alone: the hooks' own cost, without a second
        # nginx competing for the CPUs.
        services["bench-one"] = (args.single_ip, eps[:1])
    store = build_store(args.port, services)
    hooks = Hooks() if args.socket_lb else None
    proxier = Proxier(settings, store, hooks.maps if hooks else None)
    await proxier.start()
    loop = asyncio.get_running_loop()
    # Listeners open synchronously with the store event.
    assert proxier.listeners(), "the benchmark Service is not served"
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    ready: dict[str, Any] = {"listeners": proxier.listeners(), "loop": type(loop).__module__}
    if hooks is not None:
        ready["pod_procs"] = hooks.pod_procs
    print(json.dumps(ready), flush=True)
    try:
        while line := (await reader.readline()).decode().split():
            out: Any = "ok"
            if line[0] == "stats":
                out = {str(k): dataclasses.asdict(v) for k, v in proxier.stats().items()}
            elif line[0] == "quit":
                break
            elif line[0] == "host" and hooks is not None and len(line) == 2:
                hooks.host(line[1] == "on")
            print(json.dumps(out), flush=True)
    finally:
        await proxier.stop()
        if hooks is not None:
            hooks.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--cluster-ip", default="127.130.0.3")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--service-cidr", default="127.130.0.0/16")
    p.add_argument("--endpoint", action="append", default=[], help="ip:port, repeatable")
    p.add_argument("--socket-lb", action="store_true", help="also balance in the socket hooks")
    p.add_argument("--single-ip", help="ClusterIP of a second Service with the first endpoint only")
    uvloop.run(main(p.parse_args()))
