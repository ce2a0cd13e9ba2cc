"""REST behaviour over real HTTP: discovery, CRUD, PATCH, Tables, errors."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from svcnet.api import discovery
from svcnet.api.request import resolve
from svcnet.api.server import ApiServer
from svcnet.k8s.kinds import BY_KIND
from svcnet.store import Store
from tests.api.conftest import HOST, make_pod, make_service

TABLE = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,"
    "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)
AGGREGATED = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
    "application/json"
)


async def get_json(
    client: aiohttp.ClientSession, path: str, status: int = 200, **headers: str
) -> Any:
    async with client.get(path, headers=headers) as r:
        assert r.status == status, await r.text()
        return await r.json(content_type=None)


def test_resolve_paths() -> None:
    t = resolve("/api/v1/namespaces/default/pods/web/log")
    assert t is not None and (t.kind.kind, t.namespace, t.name, t.subresource) == (
        "Pod",
        "default",
        "web",
        "log",
    )
    t = resolve("/apis/apps/v1/deployments")
    assert t is not None and (t.kind.kind, t.namespace, t.name) == ("Deployment", None, None)
    t = resolve("/api/v1/namespaces/default")
    assert t is not None and (t.kind.kind, t.name) == ("Namespace", "default")
    assert resolve("/api/v1/pods/web") is None  # namespaced kind without a namespace
    assert resolve("/apis/apps/v1/namespaces/default/pods") is None  # wrong group
    assert resolve("/api/v1/frobs") is None


async def test_version_and_health(client: aiohttp.ClientSession) -> None:
    v = await get_json(client, "/version")
    assert (v["major"], v["minor"], v["gitVersion"], v["platform"]) == (
        "1",
        "32",
        "v1.32.0",
        "linux/amd64",
    )
    for probe in ("/healthz", "/readyz"):
        async with client.get(probe) as r:
            assert r.status == 200 and await r.text() == "ok"


async def test_aggregated_discovery(client: aiohttp.ClientSession) -> None:
    async with client.get("/api", headers={"Accept": AGGREGATED}) as r:
        assert r.headers["Content-Type"] == discovery.AGGREGATED_CONTENT_TYPE
        core = await r.json(content_type=None)
    assert core["kind"] == "APIGroupDiscoveryList"
    resources = {x["resource"]: x for x in core["items"][0]["versions"][0]["resources"]}
    assert set(resources) == {
        "namespaces",
        "pods",
        "services",
        "endpoints",
        "events",
        "configmaps",
        "secrets",
        "persistentvolumes",
        "persistentvolumeclaims",
        "nodes",
    }
    assert resources["nodes"]["scope"] == "Cluster"
    assert resources["nodes"]["shortNames"] == ["no"]
    assert resources["configmaps"]["shortNames"] == ["cm"]
    assert resources["pods"]["shortNames"] == ["po"]
    assert resources["pods"]["categories"] == ["all"]
    assert "categories" not in resources["endpoints"]
    assert resources["namespaces"]["scope"] == "Cluster"
    assert {s["subresource"] for s in resources["pods"]["subresources"]} >= {"log", "attach"}
    async with client.get("/apis", headers={"Accept": AGGREGATED}) as r:
        assert r.headers["Content-Type"] == discovery.AGGREGATED_CONTENT_TYPE
        groups = await r.json(content_type=None)
    by_name = {g["metadata"]["name"]: g for g in groups["items"]}
    assert set(by_name) == {
        "apps",
        "authentication.k8s.io",
        "authorization.k8s.io",
        "autoscaling",
        "batch",
        "discovery.k8s.io",
        "networking.k8s.io",
        "metrics.k8s.io",
        "storage.k8s.io",
    }
    # kube-apiserver lists a group's resources by name; kubectl expands `get all`
    # in that order (daemonsets, deployments, replicasets, statefulsets).
    apps_order = [x["resource"] for x in by_name["apps"]["versions"][0]["resources"]]
    assert apps_order == [
        "controllerrevisions",
        "daemonsets",
        "deployments",
        "replicasets",
        "statefulsets",
    ]
    batch = [x["resource"] for x in by_name["batch"]["versions"][0]["resources"]]
    assert batch == ["cronjobs", "jobs"]
    metrics = {x["resource"]: x for x in by_name["metrics.k8s.io"]["versions"][0]["resources"]}
    # Metrics are computed on read, so the group offers nothing but reads.
    assert metrics["pods"]["verbs"] == ["get", "list"]
    assert metrics["nodes"]["scope"] == "Cluster"
    apps = {x["resource"]: x for x in by_name["apps"]["versions"][0]["resources"]}
    assert apps["deployments"]["shortNames"] == ["deploy"]
    assert apps["replicasets"]["categories"] == ["all"]
    scale = next(s for s in apps["deployments"]["subresources"] if s["subresource"] == "scale")
    assert scale["responseKind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    # Two versions of one resource, the storage (preferred) one first.
    autoscaling = by_name["autoscaling"]["versions"]
    assert [v["version"] for v in autoscaling] == ["v2", "v1"]
    for v in autoscaling:
        (hpa,) = v["resources"]
        assert hpa["resource"] == "horizontalpodautoscalers"
        assert hpa["shortNames"] == ["hpa"] and hpa["categories"] == ["all"]
        assert hpa["responseKind"]["version"] == v["version"]


async def test_legacy_discovery(client: aiohttp.ClientSession, server: ApiServer) -> None:
    async with client.get("/api", headers={"Accept": "application/json"}) as r:
        assert r.headers["Content-Type"] == "application/json"
        body = await r.json()
    assert body["kind"] == "APIVersions" and body["versions"] == ["v1"]
    assert body["serverAddressByClientCIDRs"][0]["serverAddress"] == f"{HOST}:{server.port}"
    groups = await get_json(client, "/apis")
    assert [g["name"] for g in groups["groups"]] == [
        "apps",
        "authentication.k8s.io",
        "authorization.k8s.io",
        "networking.k8s.io",
        "discovery.k8s.io",
        "autoscaling",
        "batch",
        "storage.k8s.io",
        "metrics.k8s.io",
    ]
    autoscaling = await get_json(client, "/apis/autoscaling")
    assert autoscaling["preferredVersion"]["groupVersion"] == "autoscaling/v2"
    assert [v["version"] for v in autoscaling["versions"]] == ["v2", "v1"]
    v1 = await get_json(client, "/api/v1")
    names = {r["name"]: r for r in v1["resources"]}
    assert names["services"]["shortNames"] == ["svc"]
    assert names["pods/log"]["verbs"] == ["get"]
    apps = await get_json(client, "/apis/apps/v1")
    assert apps["groupVersion"] == "apps/v1"
    scale = {r["name"]: r for r in apps["resources"]}["deployments/scale"]
    assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")
    es = await get_json(client, "/apis/discovery.k8s.io/v1")
    assert es["resources"][0]["name"] == "endpointslices"
    await get_json(client, "/apis/policy/v1", 404)


async def test_openapi(client: aiohttp.ClientSession) -> None:
    root = await get_json(client, "/openapi/v3")
    url = root["paths"]["apis/apps/v1"]["serverRelativeURL"]
    doc = await get_json(client, url)
    op = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert op["x-kubernetes-group-version-kind"] == {
        "group": "apps",
        "version": "v1",
        "kind": "Deployment",
    }
    assert "fieldValidation" in [p["name"] for p in op["parameters"]]
    core = await get_json(client, root["paths"]["api/v1"]["serverRelativeURL"])
    assert "/api/v1/namespaces/{name}" in core["paths"]
    v2 = await get_json(client, "/openapi/v2", Accept="application/json")
    assert v2["swagger"] == "2.0"


async def test_create_get_list_delete(client: aiohttp.ClientSession, store: Store) -> None:
    async with client.post(
        "/api/v1/namespaces/default/services?fieldManager=kubectl-create&fieldValidation=Strict",
        json=make_service("web"),
    ) as r:
        assert r.status == 201, await r.text()
        created = await r.json()
    assert created["spec"]["clusterIP"].startswith("127.")
    got = await get_json(client, "/api/v1/namespaces/default/services/web")
    assert got["metadata"]["uid"] == created["metadata"]["uid"]
    lst = await get_json(client, "/api/v1/namespaces/default/services")
    assert lst["kind"] == "ServiceList" and lst["apiVersion"] == "v1"
    assert lst["metadata"]["resourceVersion"] == str(store.resource_version)
    assert [i["metadata"]["name"] for i in lst["items"]] == ["web"]
    async with client.delete(
        "/api/v1/namespaces/default/services/web", json={"propagationPolicy": "Background"}
    ) as r:
        assert r.status == 200
        assert (await r.json())["metadata"]["name"] == "web"
    err = await get_json(client, "/api/v1/namespaces/default/services/web", 404)
    assert err == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'services "web" not found',
        "reason": "NotFound",
        "code": 404,
        "details": {"name": "web", "group": "", "kind": "services"},
    }


async def test_dry_run_create_does_not_store(client: aiohttp.ClientSession, store: Store) -> None:
    async with client.post(
        "/api/v1/namespaces/default/services?dryRun=All", json=make_service("dry")
    ) as r:
        assert r.status == 201
    assert store.get("Service", "default", "dry") is None
    async with client.post(
        "/api/v1/namespaces/default/services?dryRun=Bogus", json=make_service("dry")
    ) as r:
        assert r.status == 400


async def test_error_shapes(client: aiohttp.ClientSession, store: Store) -> None:
    store.create(make_pod("solo"))
    body = make_pod("solo")
    body.pop("status")
    async with client.post("/api/v1/namespaces/default/pods", json=body) as r:
        assert r.status == 409
        body = await r.json()
        assert (body["reason"], body["message"]) == ("AlreadyExists", 'pods "solo" already exists')
    err = await get_json(client, "/apis/apps/v1/namespaces/default/deployments/x", 404)
    assert err["message"] == 'deployments.apps "x" not found'
    async with client.post(
        "/api/v1/namespaces/default/pods",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    ) as r:
        assert r.status == 400 and (await r.json())["reason"] == "BadRequest"
    mismatch = make_service("m")
    mismatch["metadata"]["namespace"] = "other"
    async with client.post("/api/v1/namespaces/default/services", json=mismatch) as r:
        assert r.status == 400
        assert (await r.json())["message"] == (
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    async with client.post(
        "/api/v1/namespaces/default/services",
        json={
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "bad"},
            "spec": {"ports": [{"port": 70000}]},
        },
    ) as r:
        assert r.status == 422
        body = await r.json()
        assert body["reason"] == "Invalid" and body["details"]["kind"] == "Service"
        assert body["details"]["causes"]
    unknown = await get_json(client, "/api/v1/frobs", 404)
    assert unknown["message"] == "the server could not find the requested resource"
    async with client.put("/api/v1/namespaces/default/pods") as r:
        assert r.status == 405


async def test_update_put(client: aiohttp.ClientSession, store: Store) -> None:
    async with client.post("/api/v1/namespaces/default/services", json=make_service("u")) as r:
        live = await r.json()
    live["metadata"]["labels"] = {"x": "y"}
    async with client.put("/api/v1/namespaces/default/services/u", json=live) as r:
        assert r.status == 200, await r.text()
        assert (await r.json())["metadata"]["labels"] == {"x": "y"}
    live["metadata"]["name"] = "other"
    async with client.put("/api/v1/namespaces/default/services/u", json=live) as r:
        assert r.status == 400
        assert "does not match the name on the URL" in (await r.json())["message"]
    stale = dict(live, metadata=dict(live["metadata"], name="u", resourceVersion="1"))
    async with client.put("/api/v1/namespaces/default/services/u", json=stale) as r:
        assert r.status == 409 and (await r.json())["reason"] == "Conflict"


@pytest.mark.parametrize(
    ("ctype", "body"),
    [
        ("application/merge-patch+json", {"metadata": {"labels": {"patched": "merge"}}}),
        (
            "application/json-patch+json",
            [{"op": "add", "path": "/metadata/labels", "value": {"patched": "json"}}],
        ),
        (
            "application/strategic-merge-patch+json",
            {
                "metadata": {"labels": {"patched": "strategic"}},
                "spec": {
                    "$setElementOrder/ports": [{"port": 80}, {"port": 9100}],
                    "ports": [{"port": 80, "targetPort": 9090}, {"name": "metrics", "port": 9100}],
                },
            },
        ),
    ],
)
async def test_patch_content_types(client: aiohttp.ClientSession, ctype: str, body: Any) -> None:
    svc = make_service("p", ports=[{"name": "http", "port": 80, "targetPort": 8080}])
    async with client.post("/api/v1/namespaces/default/services", json=svc) as r:
        assert r.status == 201
    async with client.patch(
        "/api/v1/namespaces/default/services/p?fieldManager=kubectl",
        data=json.dumps(body),
        headers={"Content-Type": ctype},
    ) as r:
        assert r.status == 200, await r.text()
        out = await r.json()
    assert out["metadata"]["labels"]["patched"] in ctype
    if "strategic" in ctype:
        ports = out["spec"]["ports"]
        assert [(p["port"], p["targetPort"]) for p in ports] == [(80, 9090), (9100, 9100)]


async def test_patch_errors(client: aiohttp.ClientSession) -> None:
    async with client.patch(
        "/api/v1/namespaces/default/services/nope",
        data="{}",
        headers={"Content-Type": "application/merge-patch+json"},
    ) as r:
        assert r.status == 404
    async with client.patch(
        "/api/v1/namespaces/default/services/nope",
        data="{}",
        headers={"Content-Type": "application/json"},
    ) as r:
        assert r.status == 415 and (await r.json())["reason"] == "UnsupportedMediaType"
    async with client.post("/api/v1/namespaces/default/services", json=make_service("t")) as r:
        assert r.status == 201
    async with client.patch(
        "/api/v1/namespaces/default/services/t",
        data=json.dumps([{"op": "test", "path": "/spec/type", "value": "NodePort"}]),
        headers={"Content-Type": "application/json-patch+json"},
    ) as r:
        assert r.status == 422


async def test_server_side_apply_upserts(client: aiohttp.ClientSession) -> None:
    url = "/api/v1/namespaces/default/services/ssa?fieldManager=kubectl&force=false"
    headers = {"Content-Type": "application/apply-patch+yaml"}
    manifest = (
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: ssa\n"
        "spec:\n  selector: {app: ssa}\n  ports:\n  - port: 80\n"
    )
    async with client.patch(url, data=manifest, headers=headers) as r:
        assert r.status == 201, await r.text()
    async with client.patch(url, data=manifest.replace("80", "81"), headers=headers) as r:
        assert r.status == 200
        assert (await r.json())["spec"]["ports"][0]["port"] == 81
    async with client.patch(url.split("?")[0], data=manifest, headers=headers) as r:
        assert r.status == 422  # fieldManager is required for apply


async def test_label_and_field_selectors(client: aiohttp.ClientSession, store: Store) -> None:
    store.create(make_pod("a", labels={"app": "web", "tier": "fe"}))
    store.create(make_pod("b", labels={"app": "web"}, phase="Pending"))
    store.create(make_pod("c", labels={"app": "db"}, namespace="other"))

    async def names(query: str, path: str = "/api/v1/namespaces/default/pods") -> list[str]:
        body = await get_json(client, f"{path}?{query}")
        return [i["metadata"]["name"] for i in body["items"]]

    assert await names("labelSelector=app%3Dweb") == ["a", "b"]
    assert await names("labelSelector=app%3Dweb,tier") == ["a"]
    assert await names("labelSelector=app+in+(db,web)", "/api/v1/pods") == ["a", "b", "c"]
    assert await names("fieldSelector=metadata.name%3Db") == ["b"]
    assert await names("fieldSelector=status.phase!%3DPending") == ["a"]
    assert await names("fieldSelector=metadata.namespace%3Dother", "/api/v1/pods") == ["c"]
    err = await get_json(client, "/api/v1/namespaces/default/pods?fieldSelector=spec.foo%3D1", 400)
    assert err["message"] == "field label not supported: spec.foo"


async def test_event_involved_object_selector(client: aiohttp.ClientSession, store: Store) -> None:
    for name, kind in (("e1", "Service"), ("e2", "Pod")):
        store.create(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": name, "namespace": "default"},
                "involvedObject": {"kind": kind, "name": "web", "namespace": "default"},
                "reason": "Test",
                "type": "Normal",
                "message": "m",
            }
        )
    q = (
        "fieldSelector=involvedObject.name%3Dweb,involvedObject.namespace%3Ddefault,"
        "involvedObject.kind%3DService"
    )
    body = await get_json(client, f"/api/v1/namespaces/default/events?{q}")
    assert [i["metadata"]["name"] for i in body["items"]] == ["e1"]


async def test_tables_over_http(client: aiohttp.ClientSession, store: Store) -> None:
    store.create(make_pod("web-1"))
    table = await get_json(client, "/api/v1/namespaces/default/pods?limit=500", Accept=TABLE)
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"]["resourceVersion"] == str(store.resource_version)
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name",
        "Ready",
        "Status",
        "Restarts",
        "Age",
        "IP",
        "Node",
        "Nominated Node",
        "Readiness Gates",
    ]
    row = table["rows"][0]
    assert row["cells"][:4] == ["web-1", "1/1", "Running", "0"]
    assert row["object"]["kind"] == "PartialObjectMetadata"
    assert row["object"]["metadata"]["name"] == "web-1"
    one = await get_json(
        client, "/api/v1/namespaces/default/pods/web-1?includeObject=Object", Accept=TABLE
    )
    assert len(one["rows"]) == 1 and one["rows"][0]["object"]["kind"] == "Pod"
    ns = await get_json(client, "/api/v1/namespaces", Accept=TABLE)
    assert [r["cells"][:2] for r in ns["rows"]] == [["default", "Active"], ["other", "Active"]]
    # a protobuf-first Accept is answered with JSON
    plain = await get_json(
        client,
        "/api/v1/namespaces/default/pods/web-1",
        Accept="application/vnd.kubernetes.protobuf,application/json",
    )
    assert plain["kind"] == "Pod"


async def test_scale_subresource(client: aiohttp.ClientSession, store: Store) -> None:
    rs = store.create(
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": "api", "namespace": "default"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "api"}},
                "template": {
                    "metadata": {"labels": {"app": "api"}},
                    "spec": {"containers": [{"name": "a", "image": "x"}]},
                },
            },
            "status": {"replicas": 1},
        }
    )
    path = "/apis/apps/v1/namespaces/default/replicasets/api/scale"
    scale = await get_json(client, path)
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"] == {"replicas": 1}
    assert scale["status"] == {"replicas": 1, "selector": "app=api"}
    assert scale["metadata"]["uid"] == rs["metadata"]["uid"]
    async with client.patch(
        path,
        data='{"spec":{"replicas":3}}',
        headers={"Content-Type": "application/merge-patch+json"},
    ) as r:
        assert r.status == 200, await r.text()
        assert (await r.json())["spec"]["replicas"] == 3
    stored = store.get("ReplicaSet", "default", "api")
    assert stored is not None and stored["spec"]["replicas"] == 3
    async with client.put(path, json={"spec": {"replicas": -1}}) as r:
        assert r.status == 422


async def test_delete_pod_grace_period(client: aiohttp.ClientSession, store: Store) -> None:
    store.create(make_pod("g"))
    async with client.delete(
        "/api/v1/namespaces/default/pods/g",
        json={"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 5},
    ) as r:
        assert r.status == 200
        assert (await r.json())["metadata"]["deletionGracePeriodSeconds"] == 5
    async with client.delete("/api/v1/namespaces/default/pods/g?gracePeriodSeconds=0") as r:
        assert r.status == 200
    assert store.get("Pod", "default", "g") is None
    async with client.delete(
        "/api/v1/namespaces/default/pods/x", json={"propagationPolicy": "Sideways"}
    ) as r:
        assert r.status == 422


async def test_bind_failure_is_a_clear_oserror(server: ApiServer, store: Store) -> None:
    from svcnet.config import Settings
    from svcnet.registry import Registry

    settings = Settings()
    settings.api.host, settings.api.port = HOST, server.port
    other = ApiServer(settings, store, Registry(settings, store), None, server.credentials)
    with pytest.raises(OSError, match=f"cannot listen for the API on {HOST}:{server.port}"):
        await other.start()


def test_kinds_all_routable() -> None:
    for kind in BY_KIND.values():
        t = resolve(kind.collection_path("default" if kind.namespaced else None))
        assert t is not None and t.kind == kind


async def test_field_validation_directives(client: aiohttp.ClientSession, store: Store) -> None:
    svc = make_service("fv")
    svc["spec"]["ports"][0]["targetPrt"] = 8080
    svc["spec"]["bogus"] = True
    url = "/api/v1/namespaces/default/services"
    async with client.post(url + "?fieldValidation=Strict", json=svc) as r:
        assert r.status == 400
        assert (await r.json())["message"] == (
            'Service in version "v1" cannot be handled as a Service: strict decoding error: '
            'unknown field "spec.bogus", unknown field "spec.ports[0].targetPrt"'
        )
    # Warn (also what no directive means): the fields are dropped and named.
    async with client.post(url, json=svc) as r:
        assert r.status == 201, await r.text()
        assert r.headers.getall("Warning") == [
            '299 - "unknown field \\"spec.bogus\\""',
            '299 - "unknown field \\"spec.ports[0].targetPrt\\""',
        ]
    live = store.get("Service", "default", "fv")
    assert live is not None and "bogus" not in live["spec"]
    assert "targetPrt" not in live["spec"]["ports"][0]
    patch = {"spec": {"bogus": 1}}
    async with client.patch(
        url + "/fv?fieldValidation=Ignore",
        json=patch,
        headers={"Content-Type": "application/merge-patch+json"},
    ) as r:
        assert r.status == 200 and "Warning" not in r.headers, await r.text()
    async with client.post(url + "?fieldValidation=Loose", json=make_service("x")) as r:
        assert r.status == 422
        assert (await r.json())["message"] == (
            'CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: '
            '"Loose": supported values: "", "Ignore", "Strict", "Warn"'
        )
