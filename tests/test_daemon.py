from __future__ import annotations

import pytest

from svcnet.config import Settings, reachable
from svcnet.daemon import bootstrap
from svcnet.registry import Registry
from svcnet.store import Store


@pytest.mark.parametrize(
    ("host", "want"),
    [("0.0.0.0", "127.0.0.1"), ("::", "::1"), ("127.0.0.1", "127.0.0.1"), ("::1", "::1")],
)
def test_reachable(host: str, want: str) -> None:
    assert reachable(host) == want


def test_bootstrap_objects_follow_the_address_plan() -> None:
    s = Settings()
    s.api.host = "0.0.0.0"
    s.api.port = 16443
    store = Store()
    bootstrap(s, Registry(s, store))
    assert [n["metadata"]["name"] for n in store.list("Namespace")] == [
        "default",
        "kube-node-lease",
        "kube-public",
        "kube-system",
    ]
    k8s = store.get("Service", "default", "kubernetes")
    assert k8s is not None and k8s["spec"]["clusterIP"] == "127.96.0.1"
    dns = store.get("Service", "kube-system", "kube-dns")
    assert dns is not None and dns["spec"]["clusterIP"] == "127.96.0.10"
    ep = store.get("Endpoints", "default", "kubernetes")
    assert ep is not None
    assert ep["subsets"][0]["addresses"] == [{"ip": "127.0.0.1"}]
    assert ep["subsets"][0]["ports"][0]["port"] == 16443


def test_the_soft_descriptor_limit_is_raised_to_the_hard_one() -> None:
    import resource
    import subprocess
    import sys

    def lower() -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))

    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import resource\n"
            "from svcnet.daemon import raise_fd_limit\n"
            "print(raise_fd_limit(), *resource.getrlimit(resource.RLIMIT_NOFILE))",
        ],
        preexec_fn=lower,
        capture_output=True,
        text=True,
        check=True,
    )
    raised, soft, hard = (int(x) for x in out.stdout.split())
    assert raised == soft == min(hard, 1 << 20) and soft > 256
