"""Ingress NetworkPolicy at the client's connect()/sendmsg(), with real processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from svcnet.kernel.sockhooks import SocketHooks

from .scratch import Cgroup, Net, Pod, World, v2_mount
from .snippets import TCP_CLIENT, TCP_SERVER, UDP_SERVER

UDP_ONCE = r"""
import errno, json, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(10)
try:
    s.sendto(b"hi", (sys.argv[1], int(sys.argv[2])))
    data, src = s.recvfrom(2048)
except OSError as e:
    print(json.dumps({"error": errno.errorcode.get(e.errno or 0, str(e))}))
else:
    print(json.dumps({"reply": data.decode(), "from": list(src[:2])}))
"""


def _replies(pod: Pod, host: str, port: int, count: int = 1) -> list[str]:
    """The server names that answered, or the errno names of the refusals."""
    return [
        g["reply"].split()[0] if "reply" in g else g["error"]
        for g in pod.results(TCP_CLIENT, host, port, count)
    ]


def test_an_isolated_pod_admits_only_what_its_rules_allow(world: World, net: Net) -> None:
    server = world.pod("server")
    server.server(TCP_SERVER, "s8080", "0.0.0.0", 8080)
    server.server(TCP_SERVER, "s9090", "0.0.0.0", 9090)
    a, b = world.pod("a"), world.pod("b")
    vip = net.frontend(40)
    world.hooks.set_service(vip, 80, "TCP", [(server.ip, 8080)])

    world.hooks.set_ingress_policy(server.ip, [(f"{a.ip}/32", "TCP", 8080, 8080)])
    assert _replies(a, server.ip, 8080) == ["s8080"]
    assert _replies(a, server.ip, 9090) == ["EPERM"]
    assert _replies(b, server.ip, 8080) == ["EPERM"]
    # Through a Service: the backend chosen is judged, and refused as such.
    assert _replies(a, vip, 80) == ["s8080"]
    assert _replies(b, vip, 80) == ["EPERM"]
    # Other destinations are not touched, and a pod always reaches itself.
    assert _replies(b, a.ip, 1) == ["ECONNREFUSED"]
    assert _replies(server, server.ip, 9090) == ["s9090"]

    # A CIDR and a port range; replacing the rules drops the old ones.
    world.hooks.set_ingress_policy(server.ip, [(f"{net.pod_ip(0)}/24", "TCP", 9000, 9100)])
    assert _replies(b, server.ip, 9090) == ["s9090"]
    assert _replies(a, server.ip, 8080) == ["EPERM"]
    # Every port for one protocol: 0-65535.
    world.hooks.set_ingress_policy(server.ip, [(f"{b.ip}/32", "TCP", 0, 65535)])
    assert _replies(b, server.ip, 8080) == ["s8080"]
    assert _replies(a, server.ip, 8080) == ["EPERM"]
    # Not isolated any more: everyone again.
    world.hooks.set_ingress_policy(server.ip, None)
    assert _replies(a, server.ip, 9090) == ["s9090"]
    assert world.hooks.isolated_pods == set()


def test_udp_is_judged_per_datagram_and_replies_come_back(world: World, net: Net) -> None:
    server, client, other = world.pod("server"), world.pod("client"), world.pod("other")
    server.server(UDP_SERVER, "udp", "0.0.0.0", 5353)
    client.server(UDP_SERVER, "client-udp", "0.0.0.0", 5300)

    world.hooks.set_ingress_policy(server.ip, [(f"{client.ip}/32", "UDP", 5353, 5353)])
    # Both ends isolated: the server's reply to the client is let through because
    # the client sent first, as conntrack lets a reply through.
    world.hooks.set_ingress_policy(client.ip, [])
    [got] = client.results(UDP_ONCE, server.ip, 5353)
    assert got["reply"].startswith("udp "), got
    [got] = other.results(UDP_ONCE, server.ip, 5353)
    assert got == {"error": "EPERM"}
    [got] = other.results(UDP_ONCE, client.ip, 5300)
    assert got == {"error": "EPERM"}
    # A TCP rule does not open UDP.
    world.hooks.set_ingress_policy(server.ip, [(f"{other.ip}/32", "TCP", 5353, 5353)])
    [got] = other.results(UDP_ONCE, server.ip, 5353)
    assert got == {"error": "EPERM"}


@pytest.fixture
def host_world(hooks: SocketHooks, scratch: Cgroup, net: Net) -> Iterator[World]:
    hooks.attach(v2_mount())
    try:
        yield World(hooks, scratch, net)
    finally:
        hooks.detach(v2_mount())


def _host_connect(addr: tuple[str, int], source: str | None = None) -> str:
    """From a host process of its own (the test's own process is exempt below)."""
    code = r"""
import errno, json, socket, sys
s = socket.socket()
s.settimeout(10)
if sys.argv[3]:
    s.bind((sys.argv[3], 0))
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print(s.recv(256).decode().split()[0])
except OSError as e:
    print(errno.errorcode.get(e.errno or 0, str(e)))
"""
    done = subprocess.run(
        [sys.executable, "-c", code, addr[0], str(addr[1]), source or ""],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.strip()


def test_host_processes_are_judged_by_source_address(host_world: World, net: Net) -> None:
    world = host_world
    server = world.pod("server")
    server.server(TCP_SERVER, "s", "0.0.0.0", 8080)
    vip = net.frontend(41)
    world.hooks.set_service(vip, 80, "TCP", [(server.ip, 8080)])
    world.hooks.set_ingress_policy(server.ip, [])
    assert _host_connect((server.ip, 8080)) == "EPERM"
    assert _host_connect((vip, 80)) == "EPERM"
    # An unbound host socket leaves from 127.0.0.1.
    world.hooks.set_ingress_policy(server.ip, [("127.0.0.1/32", "TCP", 8080, 8080)])
    assert _host_connect((server.ip, 8080)) == "s"
    assert _host_connect((vip, 80)) == "s"
    bound = net.pod_ip(250)
    assert _host_connect((server.ip, 8080), source=bound) == "EPERM"
    world.hooks.set_ingress_policy(server.ip, [(f"{bound}/32", "TCP", 8080, 8080)])
    assert _host_connect((server.ip, 8080), source=bound) == "s"
    assert _host_connect((server.ip, 8080)) == "EPERM"

    # The exempt process (svcnet's own, for its probes) is let through.
    world.hooks.exempt_process(os.getpid())
    with socket.create_connection((server.ip, 8080), timeout=10) as s:
        assert s.recv(256).split()[0] == b"s"
    # ... and only it.
    assert _host_connect((server.ip, 8080)) == "EPERM"
    assert world.hooks.isolated_pods == {server.ip}
