"""Discovery documents, generated from ``svcnet.k8s.kinds.KINDS``.

kubectl learns which resources exist (and their short names and categories,
for ``get svc`` and ``get all``) from discovery, and caches it on disk; so the
documents are derived from the one Kind table and never hand-maintained.

Two discovery forms are served, as kube-apiserver does: aggregated discovery
(``apidiscovery.k8s.io/v2``, two requests) when the Accept header asks for it,
and the legacy APIVersions / APIGroupList / APIResourceList otherwise.

The OpenAPI documents are api/openapi.py's.
"""

from __future__ import annotations

from svcnet.k8s.kinds import KINDS, Kind
from svcnet.k8s.objects import Obj

AGGREGATED_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def group_versions() -> list[tuple[str, str]]:
    """(group, version) pairs in Kind-table order, core group first."""
    out: list[tuple[str, str]] = []
    for k in KINDS:
        if (k.group, k.version) not in out:
            out.append((k.group, k.version))
    return out


def kinds_of(group: str, version: str) -> list[Kind]:
    """A group version's kinds by resource name, as kube-apiserver's installer lists
    them (kubectl expands `get all` in this order)."""
    return sorted(
        (k for k in KINDS if k.group == group and k.version == version), key=lambda k: k.plural
    )


def _subresources(k: Kind) -> list[tuple[str, Obj, list[str]]]:
    """(name, responseKind, verbs) of the subresources svcnet serves for a kind."""
    own = {"group": k.group, "version": k.version, "kind": k.kind}
    subs: list[tuple[str, Obj, list[str]]] = []
    if k.kind == "Pod":
        subs += [
            (
                "attach",
                {"group": "", "version": "v1", "kind": "PodAttachOptions"},
                ["create", "get"],
            ),
            ("ephemeralcontainers", own, ["get", "patch", "update"]),
            ("exec", {"group": "", "version": "v1", "kind": "PodExecOptions"}, ["create", "get"]),
            ("log", own, ["get"]),
        ]
    if k.kind in ("Deployment", "ReplicaSet", "StatefulSet"):
        subs.append(
            (
                "scale",
                {"group": "autoscaling", "version": "v1", "kind": "Scale"},
                ["get", "patch", "update"],
            )
        )
    if k.kind in ("Pod", "Service", "Deployment", "ReplicaSet", "Namespace") or (
        k.has_status and k.group in ("apps", "autoscaling", "batch", "")
    ):
        subs.append(("status", own, ["get"]))
    return sorted(subs)


# ---------------------------------------------------------------------------
# Aggregated discovery (apidiscovery.k8s.io/v2)


def _aggregated_resource(k: Kind) -> Obj:
    r: Obj = {
        "resource": k.plural,
        "responseKind": {"group": k.group, "version": k.version, "kind": k.kind},
        "scope": "Namespaced" if k.namespaced else "Cluster",
        "singularResource": k.singular,
        "verbs": k.verbs,
    }
    if k.short_names:
        r["shortNames"] = list(k.short_names)
    if k.categories:
        r["categories"] = list(k.categories)
    subs = _subresources(k)
    if subs:
        r["subresources"] = [
            {"subresource": name, "responseKind": rk, "verbs": verbs} for name, rk, verbs in subs
        ]
    return r


def aggregated(core: bool) -> Obj:
    """The APIGroupDiscoveryList for ``/api`` (core) or ``/apis`` (named groups)."""
    items: list[Obj] = []
    groups: dict[str, list[str]] = {}
    for g, v in group_versions():
        if (g == "") == core:
            groups.setdefault(g, []).append(v)
    for g, versions in groups.items():
        md: Obj = {"creationTimestamp": None}
        if g:
            md["name"] = g
        items.append(
            {
                "metadata": md,
                "versions": [
                    {
                        "version": v,
                        "resources": [_aggregated_resource(k) for k in kinds_of(g, v)],
                        "freshness": "Current",
                    }
                    for v in versions
                ],
            }
        )
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    }


def wants_aggregated(accept: str) -> bool:
    """True when the Accept header lists the v2 aggregated discovery type."""
    for part in accept.split(","):
        params = {p.strip() for p in part.split(";")[1:]}
        if {"g=apidiscovery.k8s.io", "v=v2", "as=APIGroupDiscoveryList"} <= params:
            return True
    return False


# ---------------------------------------------------------------------------
# Legacy discovery


def api_versions(server_address: str) -> Obj:
    return {
        "kind": "APIVersions",
        "versions": [v for g, v in group_versions() if g == ""],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def api_group_list() -> Obj:
    groups: dict[str, list[str]] = {}
    for g, v in group_versions():
        if g:
            groups.setdefault(g, []).append(v)
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [
            {
                "name": g,
                "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]},
            }
            for g, vs in groups.items()
        ],
    }


def api_group(group: str) -> Obj | None:
    for g in api_group_list()["groups"]:
        if g["name"] == group:
            return {"kind": "APIGroup", "apiVersion": "v1", **g}
    return None


def api_resource_list(group: str, version: str) -> Obj | None:
    ks = kinds_of(group, version)
    if not ks:
        return None
    resources: list[Obj] = []
    for k in ks:
        r: Obj = {
            "name": k.plural,
            "singularName": k.singular,
            "namespaced": k.namespaced,
            "kind": k.kind,
            "verbs": k.verbs,
        }
        if k.short_names:
            r["shortNames"] = list(k.short_names)
        if k.categories:
            r["categories"] = list(k.categories)
        resources.append(r)
        for name, rk, verbs in _subresources(k):
            sub: Obj = {
                "name": f"{k.plural}/{name}",
                "singularName": "",
                "namespaced": k.namespaced,
                "kind": rk["kind"],
                "verbs": verbs,
            }
            if (rk["group"], rk["version"]) != (k.group, k.version):
                sub["group"] = rk["group"]
                sub["version"] = rk["version"]
            resources.append(sub)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }
