"""Pods and Services through the socket hooks, with real processes and sockets."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator

import pytest

from svcnet.kernel import bpf
from svcnet.kernel.sockhooks import SocketHooks

from .scratch import REPO, Cgroup, Net, Pod, World, require_root, v2_mount, wait_ready
from .snippets import (
    BIND,
    HOOKS_HOLDER,
    MPTCP_LISTEN,
    TCP_CLIENT,
    TCP_SERVER,
    UDP_CLIENT,
    UDP_SERVER,
    UDP_SESSION,
)


def _http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:
        body: bytes = resp.read()
    return body.decode()


def _docroot(tmp: str, name: str) -> str:
    root = os.path.join(tmp, name)
    os.mkdir(root)
    with open(os.path.join(root, "name.txt"), "w") as f:
        f.write(name)
    return root


@pytest.fixture
def tmpdir_path() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as d:
        yield d


def _connect_error(addr: tuple[str, int]) -> int:
    s = socket.socket()
    s.settimeout(10)
    try:
        s.connect(addr)
    except OSError as e:
        return e.errno or 0
    finally:
        s.close()
    return 0


# -- (1) the same port in two pods -----------------------------------------


def test_two_pods_serve_http_on_the_same_port(world: World, tmpdir_path: str) -> None:
    a, b = world.pod("a"), world.pod("b")
    for pod in (a, b):
        proc = pod.cgroup.popen(
            [sys.executable, "-m", "http.server", "8080", "--bind", "0.0.0.0"],
            cwd=_docroot(tmpdir_path, pod.name),
        )
        # http.server prints getsockname(): the bind landed on the pod IP.
        assert f"Serving HTTP on {pod.ip} port 8080" in wait_ready(proc)
    assert _http_get(f"http://{a.ip}:8080/name.txt") == "a"
    assert _http_get(f"http://{b.ip}:8080/name.txt") == "b"


def test_dual_stack_wildcard_is_the_pod_ip_and_v6only_is_left_alone(world: World) -> None:
    a, b = world.pod("a"), world.pod("b")
    assert a.server(TCP_SERVER, "a", "::", 8081) == [f"::ffff:{a.ip}", "8081"]
    assert b.server(TCP_SERVER, "b", "::", 8081) == [f"::ffff:{b.ip}", "8081"]
    assert b.results(TCP_CLIENT, a.ip, 8081, 1)[0]["reply"].split()[:2] == [
        "a",
        f"::ffff:{b.ip}",
    ]
    # A v6-only socket cannot take a v4-mapped address: it keeps the host's ::.
    v6only = a.results(BIND, "6", "tcp", "::", 0, 1)
    assert v6only == [{"sock": ["::", v6only[0]["sock"][1]]}]


def test_bind_rewrites_for_udp_and_leaves_explicit_addresses(world: World) -> None:
    a = world.pod("a")
    assert a.results(BIND, "4", "udp", "0.0.0.0", 0)[0]["sock"][0] == a.ip
    assert a.results(BIND, "4", "udp", "127.0.0.1", 0)[0]["sock"][0] == a.loopback
    assert a.results(BIND, "6", "udp", "::1", 0)[0]["sock"][0] == f"::ffff:{a.loopback}"
    assert a.results(BIND, "4", "tcp", a.ip, 0)[0]["sock"][0] == a.ip
    assert a.results(BIND, "4", "tcp", "127.0.0.2", 0)[0]["sock"][0] == "127.0.0.2"


def test_mptcp_sockets_are_rewritten_through_their_tcp_subflow(world: World) -> None:
    # Go 1.24 listens with MPTCP by default where the kernel has it.
    a, b = world.pod("a"), world.pod("b")
    for pod in (a, b):
        assert pod.results(MPTCP_LISTEN, "0.0.0.0", 8082) == [{"sock": [pod.ip, 8082]}]


def test_host_processes_are_not_touched_below_the_attach_point(world: World) -> None:
    world.pod("a")
    s = socket.socket()
    s.bind(("0.0.0.0", 0))
    assert s.getsockname()[0] == "0.0.0.0"
    s.close()


# -- (2) localhost is per pod -------------------------------------------------


def test_localhost_is_private_to_each_pod(world: World) -> None:
    a, b = world.pod("a"), world.pod("b")
    assert a.server(TCP_SERVER, "a", "127.0.0.1", 9000) == [a.loopback, "9000"]
    assert b.server(TCP_SERVER, "b", "127.0.0.1", 9000) == [b.loopback, "9000"]

    [got] = a.results(TCP_CLIENT, "127.0.0.1", 9000, 1)
    # The client sees what it asked for; the server a loopback peer.
    assert got["peer"] == ["127.0.0.1", 9000]
    assert got["reply"].split()[:2] == ["a", "127.0.0.1"]
    [got] = b.results(TCP_CLIENT, "127.0.0.1", 9000, 1)
    assert got["reply"].split()[0] == "b"

    # Another pod's loopback address, and the host's, are refused.
    assert b.results(TCP_CLIENT, a.loopback, 9000, 1) == [{"error": "EPERM"}]
    c = world.pod("c")
    assert c.results(TCP_CLIENT, a.loopback, 9000, 1) == [{"error": "EPERM"}]
    # With nothing of its own there, 127.0.0.1 is the node's: never a's or b's.
    [got] = c.results(TCP_CLIENT, "127.0.0.1", 9000, 1)
    assert not got.get("reply", "").startswith(("a ", "b ")), got
    # Its own, named directly, is fine.
    assert a.results(TCP_CLIENT, a.loopback, 9000, 1)[0]["reply"].startswith("a ")


def test_localhost_reaches_a_wildcard_listener_on_the_pod_ip(world: World) -> None:
    a = world.pod("a")
    assert a.server(TCP_SERVER, "a", "0.0.0.0", 9100) == [a.ip, "9100"]
    [got] = a.results(TCP_CLIENT, "127.0.0.1", 9100, 1)
    assert got["peer"] == ["127.0.0.1", 9100]
    assert got["reply"].split()[:2] == ["a", "127.0.0.1"]
    [got] = a.results(TCP_CLIENT, "::1", 9100, 1)
    assert got["peer"] == ["::1", 9100]
    assert got["reply"].startswith("a ")


def test_localhost_follows_whichever_listener_is_there_now(world: World) -> None:
    a = world.pod("a")
    first = a.python(TCP_SERVER, "first", "127.0.0.1", 9200)
    assert wait_ready(first) == f"ready {a.loopback} 9200"
    assert a.results(TCP_CLIENT, "127.0.0.1", 9200, 1)[0]["reply"].startswith("first ")
    first.kill()
    first.communicate()
    # Nothing is remembered from the first bind: the new server is on the pod IP.
    assert a.server(TCP_SERVER, "second", "0.0.0.0", 9200) == [a.ip, "9200"]
    assert a.results(TCP_CLIENT, "127.0.0.1", 9200, 1)[0]["reply"].startswith("second ")


def test_udp_localhost_in_a_pod(world: World) -> None:
    a, b = world.pod("a"), world.pod("b")
    a.server(UDP_SERVER, "a", "127.0.0.1", 9300)
    b.server(UDP_SERVER, "b", "0.0.0.0", 9300)
    [got] = a.results(UDP_CLIENT, "127.0.0.1", 9300, 1, "sendto")
    assert got["from"] == ["127.0.0.1", 9300]
    assert got["reply"].startswith("a ")
    [got] = b.results(UDP_CLIENT, "127.0.0.1", 9300, 1, "connect")
    assert got["from"] == ["127.0.0.1", 9300]
    assert got["reply"].startswith("b ")


# -- (3) Services: round-robin, reverse NAT, the pod as client ----------------


def _backends(world: World, n: int, port: int, code: str = TCP_SERVER) -> list[Pod]:
    pods = [world.pod(f"be{i}") for i in range(n)]
    for pod in pods:
        pod.server(code, pod.name, "0.0.0.0", port)
    return pods


def test_service_round_robin_from_a_pod(world: World, net: Net) -> None:
    backends = _backends(world, 2, 8080)
    client = world.pod("client")
    vip = net.frontend(10)
    world.hooks.set_service(vip, 80, "TCP", [(p.ip, 8080) for p in backends])

    got = client.results(TCP_CLIENT, vip, 80, 4)
    assert [g["reply"].split()[0] for g in got] == ["be0", "be1", "be0", "be1"]
    for g in got:
        assert g["peer"] == [vip, 80]
        assert g["sock"][0] == client.ip
        assert g["reply"].split()[1] == client.ip

    # A new set replaces the old one whole.
    world.hooks.set_service(vip, 80, "TCP", [(backends[1].ip, 8080)])
    got = client.results(TCP_CLIENT, vip, 80, 3)
    assert [g["reply"].split()[0] for g in got] == ["be1"] * 3

    # No ready backend: the address is left alone (nothing listens on it here).
    world.hooks.set_service(vip, 80, "TCP", [])
    assert client.results(TCP_CLIENT, vip, 80, 1) == [{"error": "ECONNREFUSED"}]
    world.hooks.set_service(vip, 80, "TCP", [(backends[0].ip, 8080)])
    world.hooks.remove_service(vip, 80, "TCP")
    assert client.results(TCP_CLIENT, vip, 80, 1) == [{"error": "ECONNREFUSED"}]


def test_a_backend_with_no_listener_is_passed_over(world: World, net: Net) -> None:
    # A crashed pod stays in the set until the agent takes it out; meanwhile a
    # connect() goes on to the next backend, as the userspace proxy's does.
    backends = _backends(world, 2, 8080)
    client = world.pod("client")
    vip = net.frontend(16)
    dead = net.pod_ip(200)  # no pod, nothing listening
    world.hooks.set_service(
        vip, 80, "TCP", [(backends[0].ip, 8080), (dead, 8080), (dead, 8081), (backends[1].ip, 8080)]
    )
    got = client.results(TCP_CLIENT, vip, 80, 8)
    assert all("error" not in g for g in got), got
    # The next one after a dead one: be1 takes the turns of both dead backends.
    assert Counter(g["reply"].split()[0] for g in got) == {"be0": 2, "be1": 6}
    # Nothing alive: the round-robin's choice stands, and is refused as on a cluster.
    world.hooks.set_service(vip, 80, "TCP", [(dead, 8080), (dead, 8081)])
    assert client.results(TCP_CLIENT, vip, 80, 2) == [{"error": "ECONNREFUSED"}] * 2


def test_service_from_a_dual_stack_socket(world: World, net: Net) -> None:
    [backend] = _backends(world, 1, 8080)
    client = world.pod("client")
    vip = net.frontend(11)
    world.hooks.set_service(vip, 80, "TCP", [(backend.ip, 8080)])
    [got] = client.results(TCP_CLIENT, f"::ffff:{vip}", 80, 1)
    assert got["peer"] == [f"::ffff:{vip}", 80]
    assert got["reply"].split()[:2] == ["be0", client.ip]


def test_node_port_on_localhost_from_a_pod(world: World, net: Net) -> None:
    [backend] = _backends(world, 1, 8080)
    client = world.pod("client")
    world.hooks.set_service("127.0.0.1", net.node_port, "TCP", [(backend.ip, 8080)])
    [got] = client.results(TCP_CLIENT, "127.0.0.1", net.node_port, 1)
    assert got["peer"] == ["127.0.0.1", net.node_port]
    assert got["reply"].split()[:2] == ["be0", client.ip]
    # The pod's own listener on that port comes first, as localhost would.
    client.server(TCP_SERVER, "own", "127.0.0.1", net.node_port)
    [got] = client.results(TCP_CLIENT, "127.0.0.1", net.node_port, 1)
    assert got["reply"].startswith("own ")


# -- (4) ClientIP affinity -----------------------------------------------------


def test_client_ip_affinity_sticks(world: World, net: Net) -> None:
    backends = _backends(world, 3, 8080)
    clients = [world.pod(f"client{i}") for i in range(2)]
    vip = net.frontend(12)
    addrs = [(p.ip, 8080) for p in backends]
    world.hooks.set_service(vip, 80, "TCP", addrs, affinity_timeout=10800)

    chosen = []
    for client in clients:
        names = {g["reply"].split()[0] for g in client.results(TCP_CLIENT, vip, 80, 5)}
        assert len(names) == 1, names
        chosen.append(names.pop())
    # Round-robin gave the second client the next backend.
    assert chosen[0] != chosen[1]

    # A new set that keeps the backend keeps the affinity...
    first = next(p for p in backends if p.name == chosen[0])
    others = [a for a in addrs if a[0] != first.ip]
    world.hooks.set_service(vip, 80, "TCP", [*others, (first.ip, 8080)], affinity_timeout=10800)
    names = {g["reply"].split()[0] for g in clients[0].results(TCP_CLIENT, vip, 80, 3)}
    assert names == {chosen[0]}
    # ...one without it moves the client, which then sticks to its new backend.
    world.hooks.set_service(vip, 80, "TCP", others, affinity_timeout=10800)
    names = {g["reply"].split()[0] for g in clients[0].results(TCP_CLIENT, vip, 80, 4)}
    assert len(names) == 1 and chosen[0] not in names


def test_affinity_expires_after_its_timeout(world: World, net: Net) -> None:
    backends = _backends(world, 2, 8080)
    client = world.pod("client")
    vip = net.frontend(13)
    world.hooks.set_service(vip, 80, "TCP", [(p.ip, 8080) for p in backends], affinity_timeout=60)
    names = [g["reply"].split()[0] for g in client.results(TCP_CLIENT, vip, 80, 2)]
    assert names == ["be0", "be0"]
    # Age the entry past the timeout instead of waiting a minute.
    _age_affinity(world.hooks, 61)
    names = [g["reply"].split()[0] for g in client.results(TCP_CLIENT, vip, 80, 2)]
    assert names == ["be1", "be1"]


def _age_affinity(hooks: SocketHooks, seconds: int) -> None:
    """Move every affinity entry's last use ``seconds`` back (u64 ns at offset 16)."""
    fd = hooks.map_fd("affinity")
    for key in list(bpf.map_keys(fd, 8)):
        value = bpf.map_lookup(fd, key, 24)
        assert value is not None
        (last,) = struct.unpack_from("<Q", value, 16)
        aged = value[:16] + struct.pack("<Q", max(0, last - seconds * 1_000_000_000))
        bpf.map_update(fd, key, aged)


def test_without_affinity_the_balance_is_even(world: World, net: Net) -> None:
    backends = _backends(world, 3, 8080)
    client = world.pod("client")
    vip = net.frontend(14)
    world.hooks.set_service(vip, 80, "TCP", [(p.ip, 8080) for p in backends])
    counts = Counter(g["reply"].split()[0] for g in client.results(TCP_CLIENT, vip, 80, 9))
    assert counts == {"be0": 3, "be1": 3, "be2": 3}


# -- (5) UDP through sendmsg and recvmsg ---------------------------------------


@pytest.mark.parametrize("mode", ["sendto", "connect", "sendto6"])
def test_udp_service_replies_come_from_the_frontend(world: World, net: Net, mode: str) -> None:
    backends = _backends(world, 2, 5353, UDP_SERVER)
    client = world.pod("client")
    vip = net.frontend(20)
    world.hooks.set_service(vip, 53, "UDP", [(p.ip, 5353) for p in backends])
    host = f"::ffff:{vip}" if mode == "sendto6" else vip
    names = []
    for _ in range(2):  # two sockets, three datagrams each
        got = client.results(UDP_CLIENT, host, 53, 3, mode)
        assert len(got) == 3
        for g in got:
            assert g["from"] == [host, 53]
            name, peer, _port = g["reply"].split()
            assert peer in (client.ip, f"::ffff:{client.ip}")
            names.append(name)
    # Each socket stays with one backend; the next socket gets the next one.
    assert names == ["be0"] * 3 + ["be1"] * 3
    # A TCP frontend of the same address and port is another Service.
    assert client.results(TCP_CLIENT, vip, 53, 1) == [{"error": "ECONNREFUSED"}]


def test_udp_session_outlives_updates_that_keep_its_backend(world: World, net: Net) -> None:
    backends = _backends(world, 3, 5353, UDP_SERVER)
    client = world.pod("client")
    vip = net.frontend(21)
    addrs = [(p.ip, 5353) for p in backends]
    world.hooks.set_service(vip, 53, "UDP", addrs)
    proc = client.cgroup.popen(
        [sys.executable, "-c", UDP_SESSION, vip, "53"], stdin=subprocess.PIPE
    )
    assert wait_ready(proc) == "ready"

    def ask() -> str:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
        reply = json.loads(wait_ready(proc))
        assert reply["from"] == [vip, 53]
        return str(reply["reply"].split()[0])

    assert ask() == "be0"
    world.hooks.set_service(vip, 53, "UDP", addrs[::-1])
    assert [ask(), ask()] == ["be0", "be0"]
    world.hooks.set_service(vip, 53, "UDP", addrs[1:])
    moved = ask()
    assert moved in ("be1", "be2")
    assert ask() == moved


# -- (6) the host, with the programs at the root of the hierarchy --------------


@pytest.fixture
def root_world(hooks: SocketHooks, scratch: Cgroup, net: Net) -> Iterator[World]:
    """Hooks attached at the v2 root: host processes get Service translation too."""
    hooks.attach(v2_mount())
    try:
        yield World(hooks, scratch, net)
    finally:
        hooks.detach(v2_mount())


def test_host_curl_reaches_a_backend_through_the_frontend(
    root_world: World, net: Net, tmpdir_path: str
) -> None:
    world = root_world
    a = world.pod("a")
    proc = a.cgroup.popen(
        [sys.executable, "-m", "http.server", "8080", "--bind", "0.0.0.0"],
        cwd=_docroot(tmpdir_path, "a"),
    )
    assert f"Serving HTTP on {a.ip} port 8080" in wait_ready(proc)
    vip = net.frontend(30)
    world.hooks.set_service(vip, 80, "TCP", [(a.ip, 8080)])
    curl = shutil.which("curl")
    assert curl is not None, "the host test drives curl (apt-get install curl)"
    done = subprocess.run(
        [curl, "-sS", "--max-time", "10", f"http://{vip}/name.txt"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, "a"), done.stderr
    # getpeername from the host shows the frontend too.
    with socket.create_connection((vip, 80), timeout=10) as s:
        assert s.getpeername() == (vip, 80)
    # A pod's loopback address is closed to the host.
    assert _connect_error((a.loopback, 8080)) == errno.EPERM


def test_host_addresses_outside_the_maps_are_untouched(root_world: World, net: Net) -> None:
    world = root_world
    world.pod("a")
    world.hooks.set_service(net.frontend(31), 80, "TCP", [(net.pod_ip(200), 8080)])
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        addr = server.getsockname()
        assert addr[0] == "127.0.0.1"
        with socket.create_connection(addr, timeout=10) as c:
            conn, peer = server.accept()
            with conn:
                assert c.getpeername() == addr
                assert peer == c.getsockname()
                assert peer[0] == "127.0.0.1"
    # Binding the wildcard is the host's own business.
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        assert s.getsockname()[0] == "0.0.0.0"


def test_two_instances_side_by_side(hooks: SocketHooks, scratch: Cgroup, net: Net) -> None:
    """Two daemons' hooks on one cgroup: each acts on its own pods and Services only."""
    other = SocketHooks(max_pods=8, max_services=8, max_backends=8)
    other.load()
    try:
        hooks.attach(scratch.path)
        other.attach(scratch.path)
        mine, theirs = World(hooks, scratch, net), World(other, scratch, Net(net.octet ^ 1))
        a, b = mine.pod("a"), theirs.pod("b")
        assert a.server(TCP_SERVER, "a", "0.0.0.0", 8080) == [a.ip, "8080"]
        assert b.server(TCP_SERVER, "b", "0.0.0.0", 8080) == [b.ip, "8080"]
        hooks.set_service(net.frontend(40), 80, "TCP", [(a.ip, 8080)])
        other.set_service(net.frontend(41), 80, "TCP", [(b.ip, 8080)])
        for client in (a, b):
            [got] = client.results(TCP_CLIENT, net.frontend(40), 80, 1)
            assert got["reply"].split()[:2] == ["a", client.ip]
            [got] = client.results(TCP_CLIENT, net.frontend(41), 80, 1)
            assert got["reply"].split()[:2] == ["b", client.ip]
        for hook in (bpf.AttachType.CGROUP_INET4_CONNECT, bpf.AttachType.CGROUP_INET4_BIND):
            fd = os.open(scratch.path, os.O_RDONLY | os.O_DIRECTORY)
            try:
                attached = set(bpf.prog_query(fd, hook))
            finally:
                os.close(fd)
            assert attached == {hooks.prog_ids[hook], other.prog_ids[hook]}
    finally:
        other.close()


# -- (7) nothing stays attached once the fds are gone --------------------------


def _attached(path: str) -> dict[bpf.AttachType, list[int]]:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return {t: bpf.prog_query(fd, t) for t in bpf.AttachType}
    finally:
        os.close(fd)


def test_close_detaches_everything(hooks: SocketHooks, scratch: Cgroup, net: Net) -> None:
    hooks.attach(scratch.path)
    ids = hooks.prog_ids
    assert {t: v for t, v in _attached(scratch.path).items() if v} == {
        t: [i] for t, i in ids.items()
    }
    hooks.close()
    assert not any(_attached(scratch.path).values())


def test_sigkill_of_the_loading_process_leaves_no_hook(scratch: Cgroup, net: Net) -> None:
    require_root()
    pods = scratch.child("pods")
    pod = pods.child("a")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            HOOKS_HOLDER,
            pods.path,
            str(pod.id),
            net.pod_ip(2),
            net.loopback(2),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": REPO},
    )
    try:
        ids = json.loads(wait_ready(holder))
        assert sorted(i for v in _attached(pods.path).values() for i in v) == ids
        bound = Pod("a", pod, net.pod_ip(2), net.loopback(2)).results(
            BIND, "4", "tcp", "0.0.0.0", 0
        )
        assert bound[0]["sock"][0] == net.pod_ip(2)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate()
    # The kernel closed the holder's fds as it died: the links went with them.
    assert not any(_attached(pods.path).values())
    bound = Pod("a", pod, net.pod_ip(2), net.loopback(2)).results(BIND, "4", "tcp", "0.0.0.0", 0)
    assert bound[0]["sock"][0] == "0.0.0.0"


# -- (8) a static binary, and privileged ports ---------------------------------


def _wait_listening(ip: str, port: int) -> None:
    """Until a socket listens on ip:port (as /proc/net/tcp* shows it); 10s at most."""
    want4 = f"{int.from_bytes(socket.inet_aton(ip), 'little'):08X}:{port:04X}"
    want6 = f"0000000000000000FFFF0000{want4}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for table, want in (("/proc/net/tcp", want4), ("/proc/net/tcp6", want6)):
            with open(table) as f:
                for line in f.read().splitlines()[1:]:
                    fields = line.split()
                    if fields[1] == want and fields[3] == "0A":
                        return
        time.sleep(0.01)
    raise AssertionError(f"nothing listens on {ip}:{port}")


def test_static_busybox_httpd_in_two_pods(world: World, tmpdir_path: str) -> None:
    busybox = shutil.which("busybox")
    assert busybox is not None, (
        "this test runs a static binary: apt-get install -y busybox-static (provides busybox)"
    )
    pods = [world.pod("a"), world.pod("b")]
    for pod in pods:
        pod.cgroup.popen(
            [busybox, "httpd", "-f", "-p", "8080", "-h", _docroot(tmpdir_path, pod.name)]
        )
    for pod in pods:
        _wait_listening(pod.ip, 8080)
        assert _http_get(f"http://{pod.ip}:8080/name.txt") == pod.name


def test_pods_bind_privileged_ports_unless_told_not_to(world: World) -> None:
    nobody = 65534
    web = world.pod("web")
    assert web.results(BIND, "4", "tcp", "0.0.0.0", 80, 0, nobody) == [{"sock": [web.ip, 80]}]
    plain = world.pod("plain", privileged_ports=False)
    assert plain.results(BIND, "4", "tcp", "0.0.0.0", 80, 0, nobody) == [{"error": "EACCES"}]
