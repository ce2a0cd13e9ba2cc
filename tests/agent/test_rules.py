"""The kubelet's rules as pure functions: table-driven, no processes."""

from __future__ import annotations

import pytest

from svcnet.agent.backoff import Backoff
from svcnet.agent.envvars import expand
from svcnet.agent.ipam import IpPool
from svcnet.agent.logs import LogBuffer, render
from svcnet.agent.sandbox import hosts_file
from svcnet.agent.status import conditions, phase
from svcnet.images import ImageRegistry, normalize
from svcnet.k8s.objects import Obj
from svcnet.k8s.podview import resolv_conf, service_links


@pytest.mark.parametrize(
    ("image", "name"),
    [
        ("docker.io/gihyodocker/echo:latest", "gihyodocker/echo"),
        ("gihyodocker/fundamental:0.1.0", "gihyodocker/fundamental"),
        ("gihyodocker/nginx", "gihyodocker/nginx"),
        ("localhost:5000/team/app:v1@sha256:abc", "team/app"),
        ("docker.io/library/nginx:1.25", "nginx"),
        ("GihyoDocker/Echo", "gihyodocker/echo"),
    ],
)
def test_image_names_ignore_registry_and_tag(image: str, name: str) -> None:
    assert normalize(image) == name


def test_image_argv_follows_kubernetes_command_args_rules() -> None:
    reg = ImageRegistry({"myorg/tool:1": ["/bin/tool", "--serve"]})
    fundamental = reg.resolve("gihyodocker/fundamental:0.1.0")
    assert fundamental is not None
    assert fundamental.argv([], []) == ["sh"]
    assert fundamental.argv([], ["bash", "-il"]) == ["bash", "-il"]
    tool = reg.resolve("myorg/tool:latest")
    assert tool is not None
    assert tool.argv([], ["-v"]) == ["/bin/tool", "--serve", "-v"]
    assert tool.argv(["sh"], ["-c", "x"]) == ["sh", "-c", "x"]
    assert reg.resolve("foo/bar") is None


def test_backoff_is_immediate_then_doubles_to_cap_and_resets() -> None:
    b = Backoff(10, 300)
    delays = [b.delay(t) for t in (0, 1, 2, 3, 4, 5, 6, 7, 8)]
    assert delays == [0, 10, 20, 40, 80, 160, 300, 300, 300]
    assert b.delay(8 + 601) == 0  # ten quiet minutes: forgiven
    assert b.delay(610) == 10


def cs(name: str, state: Obj, ready: bool = False, last: Obj | None = None) -> Obj:
    return {"name": name, "state": state, "ready": ready, "lastState": last or {}}


RUN: Obj = {"running": {}}
WAIT: Obj = {"waiting": {"reason": "ContainerCreating"}}
OK: Obj = {"terminated": {"exitCode": 0}}
BAD: Obj = {"terminated": {"exitCode": 3}}


@pytest.mark.parametrize(
    ("statuses", "policy", "expected"),
    [
        ([cs("a", WAIT)], "Always", "Pending"),
        ([cs("a", RUN), cs("b", WAIT)], "Always", "Pending"),
        ([cs("a", RUN), cs("b", RUN)], "Always", "Running"),
        (
            [cs("a", RUN), cs("b", {"waiting": {"reason": "CrashLoopBackOff"}}, last=BAD)],
            "Always",
            "Running",
        ),
        ([cs("a", OK)], "Always", "Running"),
        ([cs("a", OK)], "OnFailure", "Succeeded"),
        ([cs("a", BAD)], "OnFailure", "Running"),
        ([cs("a", OK), cs("b", OK)], "Never", "Succeeded"),
        ([cs("a", OK), cs("b", BAD)], "Never", "Failed"),
        ([cs("a", RUN), cs("b", BAD)], "Never", "Running"),
    ],
)
def test_pod_phase(statuses: list[Obj], policy: str, expected: str) -> None:
    assert phase(statuses, policy) == expected


def test_conditions_keep_transition_times_until_status_changes() -> None:
    first = conditions([cs("a", RUN, ready=False)], "Running", [], "T1")
    ready = {c["type"]: c for c in first}["Ready"]
    assert ready["status"] == "False" and ready["message"] == "containers with unready status: [a]"
    second = conditions([cs("a", RUN, ready=True)], "Running", first, "T2")
    by_type = {c["type"]: c for c in second}
    assert by_type["Ready"]["status"] == "True" and by_type["Ready"]["lastTransitionTime"] == "T2"
    assert by_type["PodScheduled"]["lastTransitionTime"] == "T1"
    done = {c["type"]: c for c in conditions([cs("a", OK)], "Succeeded", second, "T3")}
    assert done["Ready"]["reason"] == "PodCompleted"


def test_service_links_match_kubelet_names() -> None:
    svc = {
        "metadata": {"name": "echo-spring"},
        "spec": {
            "clusterIP": "10.0.0.5",
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
        },
    }
    headless = {
        "metadata": {"name": "db"},
        "spec": {"clusterIP": "None", "ports": [{"port": 5432}]},
    }
    assert service_links([svc, headless]) == {
        "ECHO_SPRING_SERVICE_HOST": "10.0.0.5",
        "ECHO_SPRING_SERVICE_PORT": "80",
        "ECHO_SPRING_SERVICE_PORT_HTTP": "80",
        "ECHO_SPRING_PORT": "tcp://10.0.0.5:80",
        "ECHO_SPRING_PORT_80_TCP": "tcp://10.0.0.5:80",
        "ECHO_SPRING_PORT_80_TCP_PROTO": "tcp",
        "ECHO_SPRING_PORT_80_TCP_PORT": "80",
        "ECHO_SPRING_PORT_80_TCP_ADDR": "10.0.0.5",
    }


def test_dollar_paren_expansion() -> None:
    env = {"A": "x"}
    assert expand("$(A)-$(B)-$$(A)", env) == "x-$(B)-$(A)"


def test_resolv_conf_per_dns_policy() -> None:
    pod: Obj = {"metadata": {"name": "p", "namespace": "team"}, "spec": {}}
    assert resolv_conf(pod, "cluster.local", "127.96.0.10") == (
        "search team.svc.cluster.local svc.cluster.local cluster.local\n"
        "nameserver 127.96.0.10\noptions ndots:5\n"
    )
    pod["spec"] = {"dnsPolicy": "Default"}
    assert resolv_conf(pod, "cluster.local", "127.96.0.10") is None
    pod["spec"] = {
        "dnsPolicy": "None",
        "dnsConfig": {"nameservers": ["127.0.0.53"], "options": [{"name": "ndots", "value": "2"}]},
    }
    assert (
        resolv_conf(pod, "cluster.local", "127.96.0.10")
        == "nameserver 127.0.0.53\noptions ndots:2\n"
    )


def test_hosts_file_names_the_pod() -> None:
    pod: Obj = {"metadata": {"name": "web-0", "namespace": "default"}, "spec": {"subdomain": "web"}}
    text = hosts_file(pod, "127.13.0.9", "cluster.local")
    assert "127.13.0.9\tweb-0.web.default.svc.cluster.local web-0\n" in text
    assert "127.13.0.9\tlocalhost\n" in text


def test_ip_pool_takes_lowest_free_from_network_plus_two() -> None:
    pool = IpPool("127.13.0.0/30")
    assert pool.allocate() == "127.13.0.2"
    with pytest.raises(LookupError, match="no free address"):
        pool.allocate()
    pool.release("127.13.0.2")
    assert pool.allocate("127.13.0.2") == "127.13.0.2"


async def test_log_buffer_bounds_tails_and_follows() -> None:
    log = LogBuffer(1024)
    log.append(1, b"a\nb\nc")
    log.append(2, b"-partial\n")
    assert render(log.select(2, None), False) == b"b\nc-partial\n"
    log.append(1, b"x" * 2000 + b"\n")
    assert sum(len(r.data) for r in log.records()) <= 1024
    log.close()
    batches = [b async for b in log.follow(-1)]
    assert batches and batches[-1][-1].data.endswith(b"x\n")


@pytest.mark.parametrize(
    "image",
    [
        "registry.k8s.io/nginx-slim:0.7",  # the StatefulSet tutorial's web.yaml
        "docker.io/redis:6.0.5",  # the guestbook tutorial's
        "us-docker.pkg.dev/google-samples/containers/gke/gb-frontend:v5",
        "us-docker.pkg.dev/google-samples/containers/gke/gb-redis-follower:v2",
    ],
)
def test_the_tutorials_images_are_built_in(image: str) -> None:
    assert ImageRegistry().resolve(image) is not None
