"""Proxier against real backends and real clients: which addresses listen, and when."""

from __future__ import annotations

import logging
import socket
from collections import Counter
from collections.abc import Iterable

import aiohttp
import pytest

from svcnet.config import Settings
from svcnet.proxy import Proxier, ServicePortName
from svcnet.store import Store

from .servers import (
    NODE_PORT,
    HttpBackend,
    Net,
    assert_free,
    curl,
    endpoints,
    http_get,
    service,
)

# pytest-timeout's default signal method cannot interrupt uvloop's C loop.
pytestmark = pytest.mark.timeout(120, method="thread")

KEY = ServicePortName("default", "echo", "http")


async def test_round_robin_over_backends(
    net: Net, store: Store, proxier: Proxier, backends: list[HttpBackend], hits: Counter[str]
) -> None:
    store.create(service(cluster_ip=net.cluster_ip))
    store.create(endpoints(ready=[b.addr for b in backends]))

    served = [await http_get(net.cluster_ip, 80) for _ in range(9)]

    # A shuffled order, then strict rotation: every window of three is a permutation.
    assert sorted(served[:3]) == ["a", "b", "c"]
    assert served[3:6] == served[:3] == served[6:]
    assert hits == {"a": 3, "b": 3, "c": 3}
    st = proxier.stats()[KEY]
    assert (st.connections, st.failures, st.endpoints) == (9, 0, 3)


async def test_curl_through_cluster_ip_and_node_port(
    net: Net, store: Store, proxier: Proxier, backends: list[HttpBackend], hits: Counter[str]
) -> None:
    store.create(service(type_="NodePort", cluster_ip=net.cluster_ip))
    store.create(endpoints(ready=[backends[0].addr]))

    assert proxier.listeners() == [(net.node_addr, NODE_PORT), (net.cluster_ip, 80)]
    assert await curl(f"http://{net.cluster_ip}/") == "a"
    assert await curl(f"http://{net.node_addr}:{NODE_PORT}/") == "a"
    assert hits == {"a": 2}


async def test_keep_alive_stays_on_its_backend(
    net: Net, store: Store, proxier: Proxier, backends: list[HttpBackend], hits: Counter[str]
) -> None:
    store.create(service(cluster_ip=net.cluster_ip))
    store.create(endpoints(ready=[b.addr for b in backends]))

    async with aiohttp.ClientSession() as session:
        for _ in range(6):
            async with session.get(f"http://{net.cluster_ip}/") as r:
                assert r.status == 200
                await r.text()
    # Balancing is per connection: one kept-alive connection, one backend.
    assert len(hits) == 1 and sum(hits.values()) == 6
    assert sum(b.connections for b in backends) == 1

    hits.clear()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
        for _ in range(6):
            async with session.get(f"http://{net.cluster_ip}/") as r:
                await r.text()
    assert hits == {"a": 2, "b": 2, "c": 2}


async def test_refused_without_ready_endpoints(
    net: Net, store: Store, proxier: Proxier, backends: list[HttpBackend]
) -> None:
    store.create(service(type_="NodePort", cluster_ip=net.cluster_ip))
    # No Endpoints object at all.
    with pytest.raises(ConnectionRefusedError):
        await http_get(net.cluster_ip, 80)
    # An Endpoints object whose only pod is not ready.
    store.create(endpoints(not_ready=[backends[0].addr]))
    for addr in [(net.cluster_ip, 80), (net.node_addr, NODE_PORT)]:
        with pytest.raises(ConnectionRefusedError):
            await http_get(*addr)
    assert proxier.listeners() == []

    # The pod turns ready: the very next connection is served, no waiting.
    store.update(endpoints(ready=[backends[0].addr]))
    assert await http_get(net.cluster_ip, 80) == "a"
    assert await http_get(net.node_addr, NODE_PORT) == "a"

    # And not ready again: refused at once.
    store.update(endpoints(not_ready=[backends[0].addr]))
    with pytest.raises(ConnectionRefusedError):
        await http_get(net.cluster_ip, 80)

    store.update(endpoints(ready=[backends[1].addr]))
    assert await http_get(net.cluster_ip, 80) == "b"
    store.delete("Endpoints", "default", "echo")
    with pytest.raises(ConnectionRefusedError):
        await http_get(net.cluster_ip, 80)
    assert proxier.stats()[KEY].failures == 0


async def test_connection_queued_when_endpoints_vanish_is_reset(
    net: Net, store: Store, proxier: Proxier, backends: list[HttpBackend]
) -> None:
    store.create(service(cluster_ip=net.cluster_ip))
    store.create(endpoints(ready=[backends[0].addr]))
    with socket.create_connection((net.cluster_ip, 80), timeout=5) as s:
        # The kernel completed the handshake; the proxy has not accepted yet.
        store.update(endpoints(not_ready=[backends[0].addr]))
        with pytest.raises(ConnectionResetError):
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            s.recv(100)


async def test_endpoints_change_applies_to_next_connection(
    net: Net, store: Store, proxier: Proxier, backends: list[HttpBackend], hits: Counter[str]
) -> None:
    store.create(service(cluster_ip=net.cluster_ip))
    store.create(endpoints(ready=[backends[0].addr]))
    async with aiohttp.ClientSession() as kept:
        async with kept.get(f"http://{net.cluster_ip}/") as r:
            assert await r.text() == "a"

        store.update(endpoints(ready=[backends[1].addr, backends[2].addr]))
        served = [await http_get(net.cluster_ip, 80) for _ in range(4)]
        assert sorted(served) == ["b", "b", "c", "c"]

        # A connection made before the change still reaches its pod.
        async with kept.get(f"http://{net.cluster_ip}/") as r:
            assert await r.text() == "a"


async def test_load_balancer_ingress(
    net: Net, store: Store, proxier: Proxier, backends: list[HttpBackend]
) -> None:
    store.create(service(type_="LoadBalancer", cluster_ip=net.cluster_ip))
    store.create(endpoints(ready=[backends[0].addr]))
    assert (net.lb_ip, 80) not in proxier.listeners()

    # The ingress IP appears when a controller writes status.
    store.update(service(type_="LoadBalancer", ingress=[net.lb_ip], cluster_ip=net.cluster_ip))
    assert proxier.listeners() == [
        (net.node_addr, NODE_PORT),
        (net.cluster_ip, 80),
        (net.lb_ip, 80),
    ]
    assert await curl(f"http://{net.lb_ip}/") == "a"
    assert await http_get(net.node_addr, NODE_PORT) == "a"
    assert proxier.stats()[KEY].listeners == (
        (net.node_addr, NODE_PORT),
        (net.cluster_ip, 80),
        (net.lb_ip, 80),
    )


async def test_type_changes_follow(
    net: Net, store: Store, proxier: Proxier, backends: list[HttpBackend]
) -> None:
    store.create(service(cluster_ip=net.cluster_ip))
    store.create(endpoints(ready=[backends[0].addr]))
    assert proxier.listeners() == [(net.cluster_ip, 80)]

    store.update(service(type_="NodePort", cluster_ip=net.cluster_ip))
    assert await http_get(net.node_addr, NODE_PORT) == "a"

    store.update(service(cluster_ip=net.cluster_ip))
    assert proxier.listeners() == [(net.cluster_ip, 80)]
    assert_free((net.node_addr, NODE_PORT))

    store.update(service(cluster_ip=net.ip(11)))
    assert proxier.listeners() == [(net.ip(11), 80)]
    assert await http_get(net.ip(11), 80) == "a"
    assert_free((net.cluster_ip, 80))


async def test_service_delete_frees_ports(
    net: Net, store: Store, proxier: Proxier, backends: list[HttpBackend]
) -> None:
    store.create(service(type_="LoadBalancer", ingress=[net.lb_ip], cluster_ip=net.cluster_ip))
    store.create(endpoints(ready=[backends[0].addr]))
    assert await http_get(net.cluster_ip, 80) == "a"
    addrs = proxier.listeners()
    assert len(addrs) == 3

    store.delete("Service", "default", "echo")
    assert proxier.listeners() == []
    assert KEY not in proxier.stats()
    for addr in addrs:
        assert_free(addr)


async def test_skips_what_is_not_proxied(
    net: Net, settings: Settings, store: Store, backends: list[HttpBackend]
) -> None:
    settings.network.service_cidr = f"127.12.{net.octet}.0/24"
    dns_ip = settings.network.dns_service_ip
    assert dns_ip == net.cluster_ip
    proxier = Proxier(settings, store)
    await proxier.start()
    try:
        ready = [backends[0].addr]
        # kube-dns: the DNS server owns this IP, even for TCP 53.
        dns_ports = [
            {"name": "dns", "protocol": "UDP", "port": 53},
            {"name": "dns-tcp", "protocol": "TCP", "port": 53},
        ]
        store.create(service("kube-dns", cluster_ip=dns_ip, ports=dns_ports))
        store.create(endpoints("kube-dns", ready=ready, port_name="dns-tcp"))
        # Headless and ExternalName Services have no VIP to listen on.
        store.create(service("headless", cluster_ip="None"))
        store.create(endpoints("headless", ready=ready))
        ext = service("ext", type_="ExternalName", cluster_ip="")
        ext["spec"]["externalName"] = "example.com"
        store.create(ext)
        # SCTP is not proxied.
        sctp = [{"name": "http", "protocol": "SCTP", "port": 80}]
        store.create(service("sctp", cluster_ip=net.ip(12), ports=sctp))
        store.create(endpoints("sctp", ready=ready))
        assert proxier.listeners() == proxier.listeners("UDP") == []
        assert_free((dns_ip, 53))
        assert_free((net.ip(12), 80))
    finally:
        await proxier.stop()


async def test_bind_failure_is_logged_and_the_rest_served(
    net: Net,
    store: Store,
    proxier: Proxier,
    backends: list[HttpBackend],
    caplog: pytest.LogCaptureFixture,
    recorded: list[tuple[str, str, str, str]],
) -> None:
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind((net.cluster_ip, 80))
        squatter.listen(1)
        with caplog.at_level(logging.ERROR, logger="svcnet.proxy"):
            store.create(service(type_="NodePort", cluster_ip=net.cluster_ip))
            store.create(endpoints(ready=[backends[0].addr]))
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1
        assert f"{net.cluster_ip}:80" in errors[0]
        assert "default/echo:http" in errors[0]
        assert "ss -ltnp" in errors[0]
        # ...and said where a user looks: an Event on the Service, once.
        assert [(n, t, r) for n, t, r, _ in recorded] == [("echo", "Warning", "FailedToListen")]
        assert f"port http: cannot listen on {net.cluster_ip}:80/TCP" in recorded[0][3]
        assert proxier.listeners() == [(net.node_addr, NODE_PORT)]
        assert await http_get(net.node_addr, NODE_PORT) == "a"

        # Retried on the next change, logged once per cause.
        caplog.clear()
        store.update(endpoints(ready=[backends[1].addr]))
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(recorded) == 1

    # The squatter is gone: the next change binds.
    store.update(endpoints(ready=[backends[0].addr]))
    assert await http_get(net.cluster_ip, 80) == "a"


async def test_address_conflict_goes_to_the_first(
    net: Net,
    store: Store,
    proxier: Proxier,
    backends: list[HttpBackend],
    caplog: pytest.LogCaptureFixture,
) -> None:
    store.create(
        service("one", type_="LoadBalancer", ingress=[net.lb_ip], cluster_ip=net.cluster_ip)
    )
    store.create(endpoints("one", ready=[backends[0].addr]))
    two_ports = [{"name": "http", "protocol": "TCP", "port": 80, "nodePort": 30027}]
    two = service(
        "two", type_="LoadBalancer", ingress=[net.lb_ip], cluster_ip=net.ip(11), ports=two_ports
    )
    with caplog.at_level(logging.WARNING, logger="svcnet.proxy"):
        store.create(two)
        store.create(endpoints("two", ready=[backends[1].addr]))
    assert any("already served for default/one:http" in r.getMessage() for r in caplog.records)
    assert await http_get(net.lb_ip, 80) == "a"

    store.delete("Service", "default", "one")
    assert await http_get(net.lb_ip, 80) == "b"


async def test_stats_count_connections(
    net: Net, store: Store, proxier: Proxier, backends: list[HttpBackend]
) -> None:
    store.create(service(cluster_ip=net.cluster_ip))
    store.create(endpoints(ready=[backends[0].addr]))
    for _ in range(5):
        await http_get(net.cluster_ip, 80)
    st = proxier.stats()[KEY]
    assert (st.connections, st.failures, st.retries, st.endpoints) == (5, 0, 0, 1)
    assert st.listeners == ((net.cluster_ip, 80),)


class RecordingMaps:
    """The socket hooks' map interface, recording each write (kernel/sockhooks.py
    does these as bpf(2) map updates)."""

    def __init__(self) -> None:
        self.services: dict[tuple[str, int, str], list[tuple[str, int]]] = {}
        self.writes = 0

    def set_service(
        self,
        frontend_ip: str,
        port: int,
        protocol: str,
        backends: Iterable[tuple[str, int]],
        affinity_timeout: int | None = None,
    ) -> None:
        self.services[(frontend_ip, port, protocol)] = list(backends)
        self.writes += 1

    def remove_service(self, frontend_ip: str, port: int, protocol: str) -> None:
        self.services.pop((frontend_ip, port, protocol), None)
        self.writes += 1


async def test_the_socket_hooks_maps_follow_endpoints_in_the_same_event(
    net: Net, settings: Settings, store: Store
) -> None:
    # No wait at all between an Endpoints change and the maps: the proxier
    # writes them in the store's subscriber call, before the write returns.
    maps = RecordingMaps()
    p = Proxier(settings, store, maps=maps)
    await p.start()
    try:
        store.create(service(cluster_ip=net.cluster_ip))
        a, b = (net.ip(31), 8080), (net.ip(32), 8080)
        store.create(endpoints(ready=[a, b]))
        assert maps.services[(net.cluster_ip, 80, "TCP")] == [a, b]
        store.update(endpoints(ready=[b], not_ready=[a]))
        assert maps.services[(net.cluster_ip, 80, "TCP")] == [b]
        store.update(endpoints())
        assert (net.cluster_ip, 80, "TCP") not in maps.services
        store.update(endpoints(ready=[a]))
        writes = maps.writes
        # A change that leaves the ready endpoints as they were (a pod that is
        # not ready yet joins) writes nothing to the maps.
        store.update(endpoints(ready=[a], not_ready=[b]))
        assert maps.writes == writes
        store.update(endpoints(ready=[a, b]))
        assert maps.services[(net.cluster_ip, 80, "TCP")] == [a, b]
        assert maps.writes == writes + 1
    finally:
        await p.stop()
