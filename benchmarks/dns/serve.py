"""Host svcnet's DnsServer for the DNS benchmark, on uvloop as `svcnet up` runs it.

Started by ``run.py``; not meant to be run by hand. It builds a store with the
benchmark's Services (the same names ``run.py`` gives dnsmasq), serves DNS on
the address given, prints one JSON line ``{"port": N}`` when ready, then reads
commands from stdin, one per line, and answers each with one line:

- ``move NAME IP``: set Service NAME's ClusterIP to IP (as an API update would);
  answers ``{"applied": T}``, T being time.monotonic() once the store has it
  (CLOCK_MONOTONIC, comparable across processes on one machine).
- ``stats``: DnsServer.stats() as JSON.
- ``quit``: stop and exit.

Upstream forwarding is off (``dns.upstream = []``): the benchmark asks cluster
names only, and this script must never send a query off the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import sys
import time
from typing import Any

import uvloop  # as `svcnet up` runs DNS (a dependency on Linux)

from svcnet.config import Settings
from svcnet.dns import DnsServer
from svcnet.store import Store


def build_store(services: int, service_cidr_prefix: str) -> Store:
    store = Store()
    store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
    for i in range(services):
        ip = f"{service_cidr_prefix}.{i // 250 + 1}.{i % 250 + 1}"
        store.create(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": f"svc-{i}", "namespace": "default"},
                "spec": {
                    "clusterIP": ip,
                    "clusterIPs": [ip],
                    "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 80}],
                },
            }
        )
    return store


async def main(args: argparse.Namespace) -> None:
    settings = Settings()
    settings.network.service_cidr = f"{args.prefix}.0.0/16"
    settings.dns.host = args.host
    settings.dns.port = args.port
    settings.dns.upstream = []
    store = build_store(args.services, args.prefix)
    settings.dns.cluster_port = 0
    server = DnsServer(settings, store)
    await server.start()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(json.dumps({"port": server.addresses[0][1], "loop": type(loop).__module__}), flush=True)
    try:
        while line := (await reader.readline()).decode().split():
            cmd, *rest = line
            out: Any = "ok"
            if cmd == "move":
                name, ip = rest
                obj = copy.deepcopy(store.get("Service", "default", name))
                assert obj is not None
                obj["spec"]["clusterIP"] = ip
                obj["spec"]["clusterIPs"] = [ip]
                store.update(obj)
                out = {"applied": time.monotonic()}
            elif cmd == "stats":
                out = server.stats()
            elif cmd == "quit":
                break
            print(json.dumps(out), flush=True)
    finally:
        await server.stop()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.120.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--services", type=int, default=100)
    p.add_argument("--prefix", default="127.121", help="first two octets of the service CIDR")
    a = p.parse_args()
    uvloop.run(main(a))
