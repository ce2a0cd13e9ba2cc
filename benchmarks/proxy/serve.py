"""Host svcnet's Proxier for the proxy benchmark, on uvloop as `svcnet up` runs it.

Started by ``run.py``; not meant to be run by hand. It builds a store with one
ClusterIP Service (``bench``, port ``--port`` on ``--cluster-ip``) whose
Endpoints are the ``--endpoint`` addresses, starts the Proxier, prints one
JSON line ``{"listeners": [...], "loop": ...}`` when the listener is open, then
reads commands from stdin, one per line, answering each with one JSON line:

- ``stats``: the service port's counters (connections, failures, retries).
- ``quit``: stop and exit.
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
from svcnet.proxy import Proxier
from svcnet.store import Store


def build_store(cluster_ip: str, port: int, endpoints: list[tuple[str, int]]) -> Store:
    store = Store()
    store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
    store.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "bench", "namespace": "default"},
            "spec": {
                "type": "ClusterIP",
                "clusterIP": cluster_ip,
                "clusterIPs": [cluster_ip],
                "ports": [{"name": "http", "protocol": "TCP", "port": port, "targetPort": port}],
            },
        }
    )
    store.create(
        {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": "bench", "namespace": "default"},
            "subsets": [
                {
                    "addresses": [{"ip": ip}],
                    "ports": [{"name": "http", "port": p, "protocol": "TCP"}],
                }
                for ip, p in endpoints
            ],
        }
    )
    return store


async def main(args: argparse.Namespace) -> None:
    settings = Settings()
    settings.network.service_cidr = args.service_cidr
    settings.network.node_port_addresses = []
    eps = [(h, int(p)) for h, _, p in (e.rpartition(":") for e in args.endpoint)]
    store = build_store(args.cluster_ip, args.port, eps)
    proxier = Proxier(settings, store)
    await proxier.start()
    loop = asyncio.get_running_loop()
    # Listeners open synchronously with the store event.
    assert proxier.listeners(), "the benchmark Service is not served"
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    ready = {"listeners": proxier.listeners(), "loop": type(loop).__module__}
    print(json.dumps(ready), flush=True)
    try:
        while line := (await reader.readline()).decode().split():
            out: Any = "ok"
            if line[0] == "stats":
                out = {str(k): dataclasses.asdict(v) for k, v in proxier.stats().items()}
            elif line[0] == "quit":
                break
            print(json.dumps(out), flush=True)
    finally:
        await proxier.stop()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--cluster-ip", default="127.130.0.3")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--service-cidr", default="127.130.0.0/16")
    p.add_argument("--endpoint", action="append", default=[], help="ip:port, repeatable")
    uvloop.run(main(p.parse_args()))
