"""The caller's views (SelfSubject*Review), /version, and list paging (limit and
continue), over real HTTP against the API server, with kube-apiserver's answers."""

from __future__ import annotations

import base64
import json
from typing import Any

import aiohttp
import pytest

from svcnet.api.server import ApiServer
from svcnet.config import Settings
from svcnet.registry import ApiError, Registry
from svcnet.store import Store
from tests.api.conftest import make_service, session

HISTORY = 50
"""A short change history, so a continue token can outlive it here."""


@pytest.fixture
def store() -> Store:
    s = Store(history=HISTORY)
    s.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
    return s


async def call(
    client: aiohttp.ClientSession, method: str, path: str, status: int, body: Any = None
) -> Any:
    async with client.request(method, path, json=body) as r:
        assert r.status == status, await r.text()
        return await r.json(content_type=None)


SSAR = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
SSRR = "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews"
SSR = "/apis/authentication.k8s.io/v1/selfsubjectreviews"


async def test_whoami_is_kinds_admin(client: aiohttp.ClientSession) -> None:
    got = await call(client, "POST", SSR, 201, {"apiVersion": "authentication.k8s.io/v1"})
    assert got["kind"] == "SelfSubjectReview"
    assert got["status"] == {
        "userInfo": {
            "username": "kubernetes-admin",
            "groups": ["kubeadm:cluster-admins", "system:authenticated"],
        }
    }
    assert got["metadata"]["creationTimestamp"].endswith("Z")


async def test_access_review_allows_the_admin(client: aiohttp.ClientSession) -> None:
    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {
            "resourceAttributes": {
                "namespace": "default",
                "verb": "create",
                "group": "apps",
                "resource": "deployments",
            }
        },
    }
    got = await call(client, "POST", SSAR, 201, body)
    assert got["spec"] == body["spec"]
    assert got["metadata"] == {"creationTimestamp": None}
    assert got["status"] == {
        "allowed": True,
        "reason": 'RBAC: allowed by ClusterRoleBinding "kubeadm:cluster-admins" of ClusterRole '
        '"cluster-admin" to Group "kubeadm:cluster-admins"',
    }
    err = await call(client, "POST", SSAR, 422, {"spec": {}})
    assert err["reason"] == "Invalid"
    assert err["message"] == (
        'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes: '
        'Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes '
        "must be specified"
    )
    both = {"spec": {"resourceAttributes": {"verb": "get"}, "nonResourceAttributes": {}}}
    err = await call(client, "POST", SSAR, 422, both)
    assert err["details"]["causes"][0]["field"] == "spec.nonResourceAttributes"
    huge = {"spec": {"resourceAttributes": {"verb": "x" * 5000}}}
    await call(client, "POST", SSAR, 400, huge)


async def test_rules_review_is_cluster_admins(client: aiohttp.ClientSession) -> None:
    got = await call(client, "POST", SSRR, 201, {"spec": {"namespace": "default"}})
    status = got["status"]
    assert status["incomplete"] is False
    assert status["resourceRules"][0] == {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}
    assert status["nonResourceRules"][0] == {"verbs": ["*"], "nonResourceURLs": ["*"]}
    err = await call(client, "POST", SSRR, 400, {"spec": {}})
    assert err["message"] == "no namespace on request"


async def test_reviews_are_create_only(client: aiohttp.ClientSession) -> None:
    for path in (SSAR, SSRR, SSR, SSR + "/x"):
        err = await call(client, "GET", path, 405)
        assert err["reason"] == "MethodNotAllowed"
    await call(client, "DELETE", "/api/v1/namespaces", 405)
    v1 = await call(client, "GET", "/apis/authorization.k8s.io/v1", 200)
    assert [(r["name"], r["verbs"]) for r in v1["resources"]] == [
        ("selfsubjectaccessreviews", ["create"]),
        ("selfsubjectrulesreviews", ["create"]),
    ]


async def test_version_with_and_without_slash(server: ApiServer) -> None:
    # Anonymous, as system:public-info-viewer allows; the Python client adds the slash.
    async with session(server, token=False) as anon:
        for path in ("/version", "/version/"):
            v = await call(anon, "GET", path, 200)
            assert (v["major"], v["minor"], v["gitVersion"]) == ("1", "32", "v1.32.0")


async def make_services(client: aiohttp.ClientSession, names: list[str]) -> None:
    for n in names:
        await call(client, "POST", "/api/v1/namespaces/default/services", 201, make_service(n))


PATH = "/api/v1/namespaces/default/services"


async def test_pages_hold_the_first_pages_version(client: aiohttp.ClientSession) -> None:
    await make_services(client, ["a", "b", "c", "d", "e"])
    first = await call(client, "GET", PATH + "?limit=2", 200)
    assert [i["metadata"]["name"] for i in first["items"]] == ["a", "b"]
    md = first["metadata"]
    assert md["remainingItemCount"] == 3
    token = md["continue"]
    decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    assert decoded == {"v": "meta.k8s.io/v1", "rv": int(md["resourceVersion"]), "start": "b\x00"}
    # Changes after the first page do not show in the next ones.
    await call(client, "DELETE", PATH + "/c", 200)
    await make_services(client, ["bb"])
    second = await call(client, "GET", f"{PATH}?limit=2&continue={token}", 200)
    assert [i["metadata"]["name"] for i in second["items"]] == ["c", "d"]
    assert second["metadata"]["resourceVersion"] == md["resourceVersion"]
    assert second["metadata"]["remainingItemCount"] == 1
    last = await call(
        client, "GET", f"{PATH}?limit=2&continue={second['metadata']['continue']}", 200
    )
    assert [i["metadata"]["name"] for i in last["items"]] == ["e"]
    assert "continue" not in last["metadata"] and "remainingItemCount" not in last["metadata"]
    # A new list sees the present.
    now = await call(client, "GET", PATH + "?limit=10", 200)
    assert [i["metadata"]["name"] for i in now["items"]] == ["a", "b", "bb", "d", "e"]
    assert "continue" not in now["metadata"]


async def test_pages_with_a_selector(client: aiohttp.ClientSession) -> None:
    await make_services(client, ["a", "b", "c", "d"])
    first = await call(client, "GET", PATH + "?limit=1&fieldSelector=metadata.name!=a", 200)
    assert [i["metadata"]["name"] for i in first["items"]] == ["b"]
    assert "remainingItemCount" not in first["metadata"]  # unknown with a selector
    token = first["metadata"]["continue"]
    q = f"{PATH}?limit=5&fieldSelector=metadata.name!%3Da&continue={token}"
    rest = await call(client, "GET", q, 200)
    assert [i["metadata"]["name"] for i in rest["items"]] == ["c", "d"]


async def test_bad_and_expired_tokens(client: aiohttp.ClientSession) -> None:
    await make_services(client, ["a", "b", "c"])
    first = await call(client, "GET", PATH + "?limit=1", 200)
    token = first["metadata"]["continue"]

    async def message(query: str, status: int) -> str:
        return str((await call(client, "GET", f"{PATH}?{query}", status))["message"])

    assert await message("continue=%25%25", 400) == (
        "invalid continue token: continue key is not valid: illegal base64 data at input byte 0"
    )
    assert await message("continue=abcde", 400) == (
        "invalid continue token: continue key is not valid: illegal base64 data at input byte 4"
    )

    def tok(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    assert await message(f"continue={tok({'v': 'x', 'rv': 1, 'start': 'a'})}", 400) == (
        "invalid continue token: continue key is not valid: server does not recognize this "
        "encoded version x"
    )
    assert await message(
        f"continue={tok({'v': 'meta.k8s.io/v1', 'rv': 0, 'start': 'a'})}", 400
    ) == (
        "invalid continue token: continue key is not valid: incorrect encoded start "
        "resourceVersion (version meta.k8s.io/v1)"
    )
    assert await message(f"continue={tok({'v': 'meta.k8s.io/v1', 'rv': 1, 'start': ''})}", 400) == (
        "invalid continue token: continue key is not valid: encoded start key empty"
    )
    escape = tok({"v": "meta.k8s.io/v1", "rv": 1, "start": "../secrets/x"})
    assert await message(f"continue={escape}", 400) == (
        "invalid continue token: continue key is not valid: ../secrets/x"
    )
    assert await message(f"continue={token}&resourceVersion=5", 400) == (
        "specifying resource version is not allowed when using continue"
    )
    # Outlive the change history: etcd's compaction answer, with a token to carry on.
    for i in range(HISTORY // 2 + 1):
        await make_services(client, [f"z{i}"])
        await call(client, "DELETE", f"{PATH}/z{i}", 200)
    expired = await call(client, "GET", f"{PATH}?limit=1&continue={token}", 410)
    assert expired["reason"] == "Expired"
    assert expired["message"].startswith(
        "The provided continue parameter is too old to display a consistent list result."
    )
    onward = expired["metadata"]["continue"]
    rest = await call(client, "GET", f"{PATH}?limit=5&continue={onward}", 200)
    assert [i["metadata"]["name"] for i in rest["items"]] == ["b", "c"]


async def test_table_pages(client: aiohttp.ClientSession) -> None:
    await make_services(client, ["a", "b", "c"])
    async with client.get(
        PATH + "?limit=2", headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}
    ) as r:
        table = await r.json()
    assert [row["cells"][0] for row in table["rows"]] == ["a", "b"]
    assert table["metadata"]["remainingItemCount"] == 1 and table["metadata"]["continue"]


def test_registry_select_refuses_bad_selectors() -> None:
    reg = Registry(Settings(), Store())
    with pytest.raises(ApiError) as e:
        reg.select([], "a in (", None)
    assert e.value.code == 400
