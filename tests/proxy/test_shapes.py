"""Every Service shape as the proxy serves it: affinity, UDP, multi-port,
selectorless, publishNotReadyAddresses, type changes."""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from svcnet.controllers.endpoints import endpoints_for
from svcnet.proxy import Proxier, ServicePortName
from svcnet.store import Store

from .servers import (
    NODE_PORT,
    HttpBackend,
    Net,
    UdpBackend,
    assert_free,
    closed_port,
    endpoints,
    http_get,
    service,
    udp_ask,
)

# pytest-timeout's default signal method cannot interrupt uvloop's C loop.
pytestmark = pytest.mark.timeout(120, method="thread")

KEY = ServicePortName("default", "echo", "http")


def with_affinity(obj: dict[str, Any], timeout: int | None = None) -> dict[str, Any]:
    obj["spec"]["sessionAffinity"] = "ClientIP"
    if timeout is not None:
        obj["spec"]["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": timeout}}
    return obj


async def get_from(client_ip: str, host: str, port: int) -> str:
    """http_get from a chosen source address (the client IP affinity keys on)."""
    import asyncio

    loop = asyncio.get_running_loop()
    with socket.socket() as s:
        s.setblocking(False)
        s.bind((client_ip, 0))
        async with asyncio.timeout(10):
            await loop.sock_connect(s, (host, port))
            await loop.sock_sendall(s, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := await loop.sock_recv(s, 65536):
                data += chunk
    return data.partition(b"\r\n\r\n")[2].decode()


# --- sessionAffinity: ClientIP ------------------------------------------------------


async def test_client_ip_affinity_sticks_per_client(
    net: Net, store: Store, proxier: Proxier, backends: list[HttpBackend], hits: Counter[str]
) -> None:
    store.create(with_affinity(service(type_="NodePort", cluster_ip=net.cluster_ip)))
    store.create(endpoints(ready=[b.addr for b in backends]))

    one = [await get_from(net.ip(201), net.cluster_ip, 80) for _ in range(5)]
    # The same client through the NodePort: same service port, same affinity.
    one.append(await get_from(net.ip(201), net.node_addr, NODE_PORT))
    two = [await get_from(net.ip(202), net.cluster_ip, 80) for _ in range(5)]
    assert len(set(one)) == 1 and len(set(two)) == 1
    assert one[0] != two[0]  # the second client took the next endpoint in turn
    aff = proxier.affinity(KEY)
    assert set(aff) == {net.ip(201), net.ip(202)}
    assert hits[one[0]] == 6 and hits[two[0]] == 5


async def test_switching_affinity_off_and_on(
    net: Net, store: Store, proxier: Proxier, backends: list[HttpBackend]
) -> None:
    store.create(with_affinity(service(cluster_ip=net.cluster_ip), timeout=60))
    store.create(endpoints(ready=[b.addr for b in backends]))
    assert len({await get_from(net.ip(201), net.cluster_ip, 80) for _ in range(6)}) == 1

    store.update(service(cluster_ip=net.cluster_ip))  # sessionAffinity None
    assert proxier.affinity(KEY) == {}
    spread = [await get_from(net.ip(201), net.cluster_ip, 80) for _ in range(6)]
    assert sorted(spread) == ["a", "a", "b", "b", "c", "c"]

    store.update(with_affinity(service(cluster_ip=net.cluster_ip)))
    assert len({await get_from(net.ip(201), net.cluster_ip, 80) for _ in range(6)}) == 1


async def test_affinity_moves_off_a_dead_endpoint(
    net: Net, store: Store, proxier: Proxier, backends: list[HttpBackend]
) -> None:
    dead = closed_port(net.ip(109))
    store.create(with_affinity(service(cluster_ip=net.cluster_ip)))
    store.create(endpoints(ready=[dead, backends[0].addr]))
    # Whichever the shuffle put first, the client ends up on the live pod and stays.
    assert [await get_from(net.ip(201), net.cluster_ip, 80) for _ in range(4)] == ["a"] * 4
    assert proxier.affinity(KEY) == {net.ip(201): backends[0].addr}
    assert proxier.stats()[KEY].retries <= 1


# --- UDP ------------------------------------------------------------------------------


UDP_PORTS = [{"name": "dns", "protocol": "UDP", "port": 53, "targetPort": 5353}]
UDP_KEY = ServicePortName("default", "echo", "dns")


def udp_endpoints(addrs: list[tuple[str, int]]) -> dict[str, Any]:
    obj = endpoints(ready=addrs, port_name="dns")
    for s in obj["subsets"]:
        s["ports"][0]["protocol"] = "UDP"
    return obj


@pytest.fixture
async def udp_backends(net: Net, hits: Counter[str]) -> AsyncIterator[list[UdpBackend]]:
    started = [await UdpBackend(n, hits).start(net.ip(111 + i)) for i, n in enumerate("xy")]
    try:
        yield started
    finally:
        for b in started:
            b.close()


async def test_udp_sessions_round_robin(
    net: Net, store: Store, proxier: Proxier, udp_backends: list[UdpBackend], hits: Counter[str]
) -> None:
    store.create(service(cluster_ip=net.cluster_ip, ports=UDP_PORTS))
    store.create(udp_endpoints([b.addr for b in udp_backends]))
    assert proxier.listeners("UDP") == [(net.cluster_ip, 53)]
    assert proxier.listeners() == []

    # One client socket is one session: all its datagrams go to one endpoint.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        answers = {await udp_ask((net.cluster_ip, 53), b"q%d" % i, s) for i in range(3)}
    assert len({a.split(b":")[0] for a in answers}) == 1
    assert {a.split(b":")[1] for a in answers} == {b"q0", b"q1", b"q2"}
    # New client sockets are new sessions, taken in turn.
    names = [(await udp_ask((net.cluster_ip, 53), b"hi")).split(b":")[0] for _ in range(4)]
    assert sorted(names) == [b"x", b"x", b"y", b"y"]
    st = proxier.stats()[UDP_KEY]
    assert (st.protocol, st.connections, st.failures) == ("UDP", 5, 0)
    assert sum(hits.values()) == 7


async def test_udp_refused_without_endpoints_and_fails_over(
    net: Net, store: Store, proxier: Proxier, udp_backends: list[UdpBackend]
) -> None:
    store.create(service(cluster_ip=net.cluster_ip, ports=UDP_PORTS))
    # No endpoints: nothing bound, the kernel's port-unreachable is the REJECT.
    with pytest.raises(ConnectionRefusedError):
        await udp_ask((net.cluster_ip, 53), b"hello")

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as gone:
        gone.bind((net.ip(119), 0))
        dead_addr = gone.getsockname()[:2]
    # Nothing is bound there now: the kernel answers ICMP port-unreachable.
    store.create(udp_endpoints([dead_addr, udp_backends[0].addr]))
    # Every client gets an answer to its first datagram: a session that lands
    # on the dead pod learns it from the ICMP error, and the proxy sends the
    # unanswered datagram to the next endpoint.
    answers = [await udp_ask((net.cluster_ip, 53), b"q%d" % i) for i in range(4)]
    assert answers == [b"x:q0", b"x:q1", b"x:q2", b"x:q3"]
    st = proxier.stats()[UDP_KEY]
    assert st.retries in (3, 4) and st.failures == 0


async def test_tcp_and_udp_on_the_same_port(
    net: Net,
    store: Store,
    proxier: Proxier,
    backends: list[HttpBackend],
    udp_backends: list[UdpBackend],
) -> None:
    ports = [
        {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080},
        {"name": "dns", "protocol": "UDP", "port": 80, "targetPort": 5353},
    ]
    store.create(service(cluster_ip=net.cluster_ip, ports=ports))
    eps = endpoints(ready=[backends[0].addr])
    eps["subsets"] += udp_endpoints([udp_backends[1].addr])["subsets"]
    store.create(eps)
    assert proxier.listeners() == proxier.listeners("UDP") == [(net.cluster_ip, 80)]
    assert await http_get(net.cluster_ip, 80) == "a"
    assert await udp_ask((net.cluster_ip, 80), b"z") == b"y:z"

    # Dropping the UDP port leaves TCP alone.
    store.update(service(cluster_ip=net.cluster_ip, ports=ports[:1]))
    assert proxier.listeners("UDP") == []
    assert await http_get(net.cluster_ip, 80) == "a"
    with pytest.raises(ConnectionRefusedError):
        await udp_ask((net.cluster_ip, 80), b"z")


# --- multiple ports, selectorless, publishNotReadyAddresses ---------------------------


async def test_multiple_ports_each_with_their_endpoints(
    net: Net, store: Store, proxier: Proxier, backends: list[HttpBackend]
) -> None:
    ports = [
        {"name": "http", "protocol": "TCP", "port": 80, "targetPort": "web"},
        {"name": "admin", "protocol": "TCP", "port": 81, "targetPort": 9090},
    ]
    store.create(service(cluster_ip=net.cluster_ip, ports=ports))
    eps = endpoints(ready=[backends[0].addr, backends[1].addr])
    eps["subsets"] += endpoints(ready=[backends[2].addr], port_name="admin")["subsets"]
    store.create(eps)
    assert proxier.listeners() == [(net.cluster_ip, 80), (net.cluster_ip, 81)]
    assert sorted([await http_get(net.cluster_ip, 80) for _ in range(4)]) == ["a", "a", "b", "b"]
    assert [await http_get(net.cluster_ip, 81) for _ in range(2)] == ["c", "c"]

    # One port losing its endpoints closes only that port.
    store.update(endpoints(ready=[backends[2].addr], port_name="admin"))
    assert proxier.listeners() == [(net.cluster_ip, 81)]
    with pytest.raises(ConnectionRefusedError):
        await http_get(net.cluster_ip, 80)


async def test_selectorless_service_with_manual_loopback_endpoints(
    net: Net, store: Store, proxier: Proxier, backends: list[HttpBackend]
) -> None:
    svc = service(cluster_ip=net.cluster_ip)
    del svc["spec"]["selector"]
    store.create(svc)
    # A hand-written Endpoints object; addresses are loopback on purpose
    # (the real API server would refuse them).
    store.create(
        {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": "echo", "namespace": "default"},
            "subsets": [
                {
                    "addresses": [{"ip": backends[0].addr[0]}, {"ip": backends[1].addr[0]}],
                    "ports": [{"name": "http", "port": backends[0].addr[1]}],
                }
            ],
        }
    )
    # Only a's port is listened on at both IPs; b's IP has nothing on a's port.
    assert [await http_get(net.cluster_ip, 80) for _ in range(4)] == ["a"] * 4
    # Every dial that lands on b's IP moves on: 3 or 4 of them, by the shuffle.
    assert proxier.stats()[KEY].retries in (3, 4)


def pod(name: str, ip: str, ready: bool) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"},
        "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 8080}]}]},
        "status": {
            "phase": "Running",
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


async def test_publish_not_ready_addresses_as_the_proxy_sees_it(
    net: Net, store: Store, proxier: Proxier, backends: list[HttpBackend]
) -> None:
    # Backends listen on free ports; a real pod's targetPort is fixed, so use one port.
    port = backends[0].addr[1]
    svc = service(cluster_ip=net.cluster_ip)
    svc["spec"]["ports"][0]["targetPort"] = port
    pods = [pod("p0", backends[0].addr[0], ready=False)]
    store.create(svc)

    def write(obj: dict[str, Any]) -> None:
        eps = {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": "echo", "namespace": "default"},
            "subsets": endpoints_for(obj, pods),
        }
        if store.get("Endpoints", "default", "echo") is None:
            store.create(eps)
        else:
            store.update(eps)

    write(svc)  # not ready, not published: notReadyAddresses only
    with pytest.raises(ConnectionRefusedError):
        await http_get(net.cluster_ip, 80)

    svc["spec"]["publishNotReadyAddresses"] = True
    store.update(svc)
    write(svc)  # published: the not-ready pod is an address, and served
    assert await http_get(net.cluster_ip, 80) == "a"

    svc["spec"]["publishNotReadyAddresses"] = False
    store.update(svc)
    write(svc)
    with pytest.raises(ConnectionRefusedError):
        await http_get(net.cluster_ip, 80)


# --- types ----------------------------------------------------------------------------


async def test_type_changes_open_and_close_listeners(
    net: Net, store: Store, proxier: Proxier, backends: list[HttpBackend]
) -> None:
    store.create(endpoints(ready=[backends[0].addr]))
    ext = service(type_="ExternalName", cluster_ip="")
    ext["spec"]["externalName"] = "example.com"
    del ext["spec"]["clusterIPs"]
    store.create(ext)
    assert proxier.listeners() == []

    store.update(service(type_="LoadBalancer", cluster_ip=net.cluster_ip, ingress=[net.lb_ip]))
    assert proxier.listeners() == [
        (net.node_addr, NODE_PORT),
        (net.cluster_ip, 80),
        (net.lb_ip, 80),
    ]
    assert await http_get(net.lb_ip, 80) == "a"

    store.update(service(type_="NodePort", cluster_ip=net.cluster_ip))
    assert proxier.listeners() == [(net.node_addr, NODE_PORT), (net.cluster_ip, 80)]
    assert_free((net.lb_ip, 80))

    store.update(ext)
    assert proxier.listeners() == []
    for addr in [(net.node_addr, NODE_PORT), (net.cluster_ip, 80)]:
        assert_free(addr)

    headless = service(cluster_ip="None")
    store.update(headless)
    assert proxier.listeners() == []


async def test_every_cluster_ip_is_served(
    net: Net, store: Store, proxier: Proxier, backends: list[HttpBackend]
) -> None:
    svc = service(cluster_ip=net.cluster_ip)
    svc["spec"]["clusterIPs"] = [net.cluster_ip, net.ip(11)]
    store.create(svc)
    store.create(endpoints(ready=[backends[0].addr]))
    assert proxier.listeners() == [(net.cluster_ip, 80), (net.ip(11), 80)]
    assert await http_get(net.ip(11), 80) == "a"
