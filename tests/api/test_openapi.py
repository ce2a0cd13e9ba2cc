"""/openapi/v2 and /openapi/v3: the official schemas of every kind svcnet serves,
served with kube-openapi's content types, ETags and hash links."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import aiohttp

from svcnet.api import openapi
from svcnet.k8s.kinds import KINDS

PB_V2 = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"


async def fetch(
    client: aiohttp.ClientSession, path: str, status: int = 200, **headers: str
) -> aiohttp.ClientResponse:
    r = await client.get(path, headers=headers, allow_redirects=False)
    await r.read()
    assert r.status == status, await r.text()
    return r


def refs(schema: Any) -> set[str]:
    out: set[str] = set()
    if isinstance(schema, dict):
        if "$ref" in schema:
            out.add(schema["$ref"])
        for v in schema.values():
            out |= refs(v)
    elif isinstance(schema, list):
        for v in schema:
            out |= refs(v)
    return out


async def test_v3_has_every_kind_with_its_official_schema(client: aiohttp.ClientSession) -> None:
    root = json.loads(await (await fetch(client, "/openapi/v3")).read())
    for k in KINDS:
        path = openapi.gv_path(k.group, k.version)
        url = root["paths"][path]["serverRelativeURL"]
        doc = json.loads(await (await fetch(client, url)).read())
        schemas = doc["components"]["schemas"]
        # Every reference resolves inside the document, as kubectl explain needs.
        for ref in refs(doc):
            assert ref.removeprefix("#/components/schemas/") in schemas, ref
        base = k.collection_path("{namespace}" if k.namespaced else None)
        gvk = {"group": k.group, "version": k.version, "kind": k.kind}
        if k.review:
            # Create-only (SelfSubjectAccessReview...): a POST on the collection, no more.
            assert list(doc["paths"][base]) == ["parameters", "post"]
            assert doc["paths"][base]["post"]["x-kubernetes-group-version-kind"] == gvk
            name = openapi.schema_name(k.group, k.version, k.kind)
            assert name is not None and name in schemas
            continue
        assert doc["paths"][base]["get"]["x-kubernetes-group-version-kind"] == gvk
        if not k.stored:
            continue  # metrics.k8s.io: metrics-server's, not in the official document
        patch = doc["paths"][base + "/{name}"]["patch"]
        assert patch["x-kubernetes-group-version-kind"] == gvk
        assert "fieldValidation" in [p["name"] for p in patch["parameters"]]
        name = openapi.schema_name(k.group, k.version, k.kind)
        assert name is not None and gvk in schemas[name]["x-kubernetes-group-version-kind"]

    apps = json.loads(
        await (await fetch(client, root["paths"]["apis/apps/v1"]["serverRelativeURL"])).read()
    )
    schemas = apps["components"]["schemas"]
    deploy = schemas["io.k8s.api.apps.v1.Deployment"]
    assert deploy["type"] == "object"
    assert deploy["properties"]["apiVersion"] == {
        "description": deploy["properties"]["apiVersion"]["description"],
        "type": "string",
    }
    strategy = schemas["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"]
    assert strategy["x-kubernetes-patch-strategy"] == "retainKeys"
    assert strategy["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentStrategy"}
    ]
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert (containers["x-kubernetes-patch-merge-key"], containers["type"]) == ("name", "array")
    assert schemas["io.k8s.api.core.v1.Container"]["required"] == ["name"]
    assert schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] == {
        "format": "int-or-string",
        "oneOf": [{"type": "integer"}, {"type": "string"}],
    }


async def test_v3_hash_etag_and_cache_headers(client: aiohttp.ClientSession) -> None:
    r = await fetch(client, "/openapi/v3")
    assert r.headers["Content-Type"] == "application/json"
    root = json.loads(await r.read())
    url = root["paths"]["api/v1"]["serverRelativeURL"]
    path, _, query = url.partition("?")
    assert path == "/openapi/v3/api/v1" and query.startswith("hash=")
    digest = query.removeprefix("hash=")

    r = await fetch(client, url, Accept="application/json")
    body = await r.read()
    assert digest == hashlib.sha512(body).hexdigest().upper()
    assert r.headers["Etag"] == f'"{digest}"'
    assert r.headers["Cache-Control"] == "public, immutable"
    assert r.headers["Vary"] == "Accept" and r.headers["Content-Type"] == "application/json"
    assert "Expires" in r.headers

    # Without a hash: no caching promise; a stale hash: to the current one.
    r = await fetch(client, path)
    assert "Cache-Control" not in r.headers and await r.read() == body
    r = await fetch(client, path + "?hash=0123", 301)
    assert r.headers["Location"] == url
    # kubectl's HTTP cache revalidates with the ETag.
    await fetch(client, path, 304, **{"If-None-Match": f'"{digest}"'})
    await fetch(client, path, 406, Accept="text/html")
    await fetch(client, "/openapi/v3/apis/example.com/v1", 404)


def _fields(buf: bytes) -> list[tuple[int, bytes]]:
    """Length-delimited fields of a protobuf message (the only wire type used here
    besides varints, which this skips)."""
    out: list[tuple[int, bytes]] = []
    pos = 0

    def varint() -> int:
        nonlocal pos
        n = shift = 0
        while True:
            b = buf[pos]
            pos += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n

    while pos < len(buf):
        key = varint()
        if key & 7 == 2:
            size = varint()
            out.append((key >> 3, buf[pos : pos + size]))
            pos += size
        elif key & 7 == 0:
            varint()
        else:
            assert key & 7 == 1
            pos += 8
    return out


async def test_v2_json_and_protobuf(client: aiohttp.ClientSession) -> None:
    r = await fetch(client, "/openapi/v2", Accept="application/json")
    doc = json.loads(await r.read())
    assert r.headers["Etag"].strip('"') == hashlib.sha512(await r.read()).hexdigest().upper()
    assert (doc["swagger"], doc["info"]["title"]) == ("2.0", "Kubernetes")
    defs = doc["definitions"]
    ports = defs["io.k8s.api.core.v1.ServiceSpec"]["properties"]["ports"]
    assert ports["items"] == {"$ref": "#/definitions/io.k8s.api.core.v1.ServicePort"}
    assert ports["x-kubernetes-patch-merge-key"] == "port"
    assert defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] == {
        "format": "int-or-string",
        "type": "string",
    }
    for ref in refs(doc):
        assert ref.removeprefix("#/definitions/") in defs, ref

    # What client-go's OpenAPISchema() sends: gnostic's openapi_v2.Document.
    r = await fetch(client, "/openapi/v2", Accept=PB_V2 + ", */*")
    assert r.headers["Content-Type"] == openapi.V2_PROTOBUF
    fields = dict(_fields(await r.read()))
    assert fields[1] == b"2.0"
    named = {dict(_fields(n))[1].decode(): dict(_fields(n))[2] for _, n in _fields(fields[9])}
    assert named.keys() == defs.keys()
    deploy = dict(_fields(named["io.k8s.api.apps.v1.Deployment"]))
    ext = dict(_fields(deploy[31]))
    assert ext[1] == b"x-kubernetes-group-version-kind"
    assert json.loads(dict(_fields(ext[2]))[2]) == [
        {"group": "apps", "kind": "Deployment", "version": "v1"}
    ]
    await fetch(client, "/openapi/v2", 406, Accept="text/html")
