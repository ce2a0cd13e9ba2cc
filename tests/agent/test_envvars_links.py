"""envvars.ServiceLinks and pack/unpack against the plain computation: the shared
link variables are always what service_links would make from the Services now,
and a packed environment unpacks to exactly the dict container_env made."""

from __future__ import annotations

import random

from svcnet.agent import process
from svcnet.agent.envvars import ContainerEnv, ServiceLinks, container_env, pack, unpack
from svcnet.k8s.objects import Obj
from svcnet.k8s.podview import service_links


def svc(name: str, rv: int, ip: str, ports: list[int]) -> Obj:
    return {
        "metadata": {"name": name, "uid": f"uid-{name}", "resourceVersion": str(rv)},
        "spec": {"clusterIP": ip, "ports": [{"port": p, "name": f"p{p}"} for p in ports]},
    }


def test_links_follow_every_change_of_the_services() -> None:
    rng = random.Random(16)
    cache = ServiceLinks()
    live: dict[str, Obj] = {}
    rv = 0
    for _ in range(400):
        rv += 1
        name = f"s{rng.randrange(12)}"
        action = rng.random()
        if action < 0.2 and name in live:
            del live[name]
        elif action < 0.3:
            pass  # nothing changed: the same mapping comes back
        else:
            ip = f"10.96.0.{rng.randrange(1, 250)}"
            live[name] = svc(name, rv, ip, rng.sample([80, 443, 8080, 53], rng.randrange(1, 3)))
        services = [live[n] for n in sorted(live)]
        got = cache.of("ns", True, services)
        assert got == service_links(services)
        again = cache.of("ns", True, services)
        assert again is got  # unchanged Services: the very same shared mapping


def test_an_unchanged_version_needs_no_listing() -> None:
    """With the store's count of the Services' writes as the version, the Services
    are listed only when it moves; the links follow every change."""
    from svcnet.store import Store

    store = Store()
    cache = ServiceLinks()
    listed = 0

    def services() -> list[Obj]:
        nonlocal listed
        listed += 1
        return store.list("Service", "ns")

    def links() -> dict[str, str]:
        return dict(cache.of("ns", True, services, store.changes("Service", "ns")))

    def service(name: str, ip: str) -> Obj:
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": "ns"},
            "spec": {"clusterIP": ip, "ports": [{"port": 80, "name": "p80"}]},
        }

    store.create(service("a", "10.96.0.1"))
    first = links()
    assert first["A_SERVICE_HOST"] == "10.96.0.1"
    assert links() == first and listed == 1
    store.create(service("b", "10.96.0.2"))
    assert links()["B_SERVICE_HOST"] == "10.96.0.2" and listed == 2
    store.delete("Service", "ns", "b")
    assert links() == first and listed == 3
    assert links() == first and listed == 3


def test_namespaces_and_the_links_flag_are_kept_apart() -> None:
    cache = ServiceLinks()
    a = [svc("a", 1, "10.96.0.1", [80])]
    b = [svc("b", 2, "10.96.0.2", [80])]
    assert "A_SERVICE_HOST" in cache.of("one", True, a)
    assert "B_SERVICE_HOST" in cache.of("two", True, b)
    assert "B_SERVICE_HOST" in cache.of("one", False, b)
    assert cache.of("one", True, a) == service_links(a)


def test_a_packed_environment_unpacks_to_what_container_env_made() -> None:
    rng = random.Random(7)
    services = [svc(f"s{i}", i + 1, f"10.96.0.{i + 1}", [80, 443]) for i in range(6)]
    links = ServiceLinks().of("ns", True, services)
    names = [*links, "PATH", "HOME", "A", "B"]
    for _ in range(300):
        # The image's ENV (base) and the container's env may name link variables too.
        base = {n: f"base-{rng.randrange(9)}" for n in rng.sample(names, rng.randrange(0, 4))}
        own = [
            {"name": n, "value": f"own-{rng.randrange(9)}"}
            for n in rng.sample(names, rng.randrange(0, 5))
        ]
        pod: Obj = {"metadata": {"name": "p", "namespace": "ns"}, "spec": {}}
        env = container_env(pod, {"env": own}, links, "127.0.0.9", base=base)
        back = unpack(pack(env))
        assert back == env
        # The order too, unless the image's ENV names a link variable (the
        # kubelet's own order is a Go map's, so only the values are the contract).
        if not set(base) & set(links):
            assert list(back) == list(env)


def test_the_environment_block_says_what_the_environment_does() -> None:
    """The fork server's block (the links' part encoded once per version) holds each
    variable once, with container_env's value, whichever part won."""
    rng = random.Random(11)
    services = [svc(f"s{i}", i + 1, f"10.96.0.{i + 1}", [80, 443]) for i in range(6)]
    links = ServiceLinks().of("ns", True, services)
    names = [*links, "PATH", "HOME", "A", "B", "SVCNET_READY_FD"]
    reused = 0
    for _ in range(300):
        base = {n: f"base-{rng.randrange(9)}" for n in rng.sample(names, rng.randrange(0, 4))}
        own = [
            {"name": n, "value": f"own-{rng.randrange(9)}"}
            for n in rng.sample(names, rng.randrange(0, 5))
        ]
        extra = {"SVCNET_READY_FD": "3"} if rng.random() < 0.5 else {}
        pod: Obj = {"metadata": {"name": "p", "namespace": "ns"}, "spec": {}}
        env = container_env(pod, {"env": own}, links, "127.0.0.9", base=base)
        block = process._environ(env, extra)
        items = [entry.split("=", 1) for entry in block.decode().split("\0")[:-1]]
        assert len({k for k, _ in items}) == len(items)
        assert dict(items) == {**env, **extra}
        reused += links.encoded is not None and block.endswith(links.encoded)
    assert reused > 30  # the shared block was used, not only the full merge


def test_versions_of_the_links_share_each_services_items() -> None:
    """Containers keep the parts: a new Service adds its own items and shares the rest."""
    cache = ServiceLinks()
    a = svc("a", 1, "10.96.0.1", [80])
    first = cache.of("ns", True, [a])
    second = cache.of("ns", True, [a, svc("b", 2, "10.96.0.2", [80])])
    assert second is not first
    assert second.parts[0] is first.parts[0]
    kept = pack(ContainerEnv({"PATH": "/bin"}, second, {}))
    assert kept.links is second.parts and kept.head == {"PATH": "/bin"}
