"""What a request asks for: the API server's request decoding, apart from routing.

Everything between the HTTP request and the registry call lives here: which
object a path names (``resolve``), the options in the query (dryRun,
fieldManager, fieldSelector, DeleteOptions...), the body decoded by its
Content-Type (JSON, YAML, protobuf) within the bounds the API server sets
(manifest/decode.py), and the checks that make a body fit its path. Handlers
in server.py call these and never read a request themselves, so every check on
what clients send has one place.
"""

from __future__ import annotations

import copy
import ipaddress
from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web
from yarl import URL

from svcnet.api import discovery, patch, protobuf
from svcnet.credentials import Credentials
from svcnet.k8s import fields
from svcnet.k8s.kinds import Kind
from svcnet.k8s.media import APPLY_PATCH, JSON, JSON_PATCH, MERGE_PATCH, PATCH_TYPES, YAML
from svcnet.k8s.objects import Obj
from svcnet.manifest import decode
from svcnet.registry import ApiError, schema
from svcnet.registry.errors import bad_request

YAML_TYPES = (APPLY_PATCH, YAML, "application/x-yaml", "text/yaml")
BODY_TYPES = (JSON, *YAML_TYPES, protobuf.CONTENT_TYPE, *PATCH_TYPES)
"""Content-Types the API decodes; anything else (text/plain, a form) gets 415 unread."""
MAX_BODY = 3 * 1024 * 1024
"""etcd's request limit, which kube-apiserver enforces on bodies (413 above it)."""
OPEN_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version", "/version/"})
"""What kube-apiserver lets anonymous users read (system:public-info-viewer)."""
_TRUE = ("1", "t", "T", "true", "TRUE", "True")
_FALSE = ("0", "f", "F", "false", "FALSE", "False")


# --- paths -------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What a resource path names."""

    kind: Kind
    namespace: str | None  # None: all namespaces, or a cluster-scoped kind
    name: str | None
    subresource: str | None


def resolve(path: str) -> Target | None:
    """Parse a resource path under /api/v1 or /apis/{group}/{version}."""
    segs = [s for s in path.split("/") if s]
    if len(segs) >= 2 and segs[0] == "api":
        group, version, rest = "", segs[1], segs[2:]
    elif len(segs) >= 3 and segs[0] == "apis":
        group, version, rest = segs[1], segs[2], segs[3:]
    else:
        return None
    by_plural = {k.plural: k for k in discovery.kinds_of(group, version)}
    if not rest:
        return None
    if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] in by_plural:
        kind = by_plural[rest[2]]
        if not kind.namespaced:
            return None
        ns: str | None = rest[1]
        tail = rest[3:]
    else:
        found = by_plural.get(rest[0])
        if found is None:
            return None
        kind, ns, tail = found, None, rest[1:]
        if kind.namespaced and tail:
            return None
    if len(tail) > 2:
        return None
    name = tail[0] if tail else None
    sub = tail[1] if len(tail) > 1 else None
    return Target(kind, ns, name, sub)


# --- options and bodies -------------------------------------------------------
def query_bool(query: Any, name: str, default: bool = False) -> bool:
    """Go's strconv.ParseBool, as the apiserver decodes query parameters."""
    value = query.get(name)
    if value is None or value == "":
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise bad_request(f'{name}: Invalid value: "{value}": strconv.ParseBool: invalid syntax')


def query_int(query: Any, name: str) -> int | None:
    value = query.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise bad_request(
            f'{name}: Invalid value: "{value}": strconv.ParseInt: invalid syntax'
        ) from None


def wants_table(request: web.Request) -> bool:
    for part in request.headers.get("Accept", "").split(","):
        params = {p.strip() for p in part.split(";")[1:]}
        if "as=Table" in params and "g=meta.k8s.io" in params:
            return True
    return False


def field_manager(request: web.Request) -> str:
    """fieldManager, or what the apiserver derives from the User-Agent without one."""
    given = request.query.get("fieldManager")
    if given:
        if len(given) > 128:
            raise bad_request("fieldManager: Too long: may not be longer than 128")
        return given
    agent = request.headers.get("User-Agent", "")
    return agent.split("/", 1)[0][:128] or "unknown"


def dry_run(request: web.Request) -> bool:
    values = request.query.getall("dryRun", [])
    for v in values:
        if v != "All":
            raise bad_request(f'dryRun: Unsupported value: "{v}": supported values: "All"')
    return bool(values)


FIELD_VALIDATION = ("", "Ignore", "Strict", "Warn")


def field_validation(request: web.Request, options: str) -> str:
    """The fieldValidation directive: Warn when absent, as the API server's default
    since 1.25 (kubectl sends Strict unless told --validate=warn or false)."""
    value = request.query.get("fieldValidation", "")
    if value not in FIELD_VALIDATION:
        allowed = ", ".join(f'"{v}"' for v in FIELD_VALIDATION)
        raise ApiError(
            422,
            "Invalid",
            f'{options}.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: '
            f'"{value}": supported values: {allowed}',
        )
    return value or "Warn"


def drop_unknown_fields(body: Obj, kind: Kind, directive: str) -> tuple[Obj, list[str]]:
    """Under Warn and Ignore the decoder drops fields the schema does not know (and
    Warn says which, as `Warning` headers); Strict leaves them for the registry's
    schema check to refuse."""
    if directive == "Strict":
        return body, []
    paths = schema.unknown_fields(body, kind)
    if not paths:
        return body, []
    body = copy.deepcopy(body)
    for path in reversed(paths):
        parent: Any = body
        for part in path[:-1]:
            parent = parent[part]
        parent.pop(path[-1], None)
    if directive == "Ignore":
        return body, []
    return body, [f'unknown field "{schema.field_path(p)}"' for p in paths]


def include_object(request: web.Request) -> str:
    value = request.query.get("includeObject", "Metadata") or "Metadata"
    if value not in ("None", "Object", "Metadata"):
        raise bad_request(f'includeObject: Unsupported value: "{value}"')
    return value


async def read_body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        raise bad_request("the body of the request was empty")
    ctype = content_type(request)
    if ctype == protobuf.CONTENT_TYPE:
        # kubectl's typed generators (`kubectl create deployment` ...) send only this.
        try:
            return protobuf.decode(raw)
        except protobuf.ProtobufError as e:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"svcnet cannot decode this protobuf body ({e}); send the object as JSON or "
                "YAML, e.g. with kubectl apply -f",
            ) from None
    if "protobuf" in ctype or "cbor" in ctype:
        # client-go falls back to JSON on this 415 for CBOR.
        raise ApiError(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format - accepted media types include: "
            f"{JSON}, {YAML}",
        )
    if ctype not in BODY_TYPES:
        raise unsupported_media_type()
    try:
        if ctype in YAML_TYPES:
            return decode.load_yaml(raw.decode("utf-8", "replace"))
        return decode.load_json(raw)
    except decode.DecodeError as e:
        raise bad_request(f"the body of the request could not be decoded: {e}") from None
    except (ValueError, yaml.YAMLError) as e:
        what = "yaml" if ctype in YAML_TYPES else "json"
        raise bad_request(f"error decoding {what} body: {e}") from None


def content_type(request: web.Request) -> str:
    """The body's media type; none at all means JSON, as kube-apiserver takes its first
    supported type (the Python client sends JSON with no Content-Type)."""
    if "Content-Type" not in request.headers:
        return JSON
    return request.content_type


def unsupported_media_type() -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        f"{JSON}, {YAML}, {protobuf.CONTENT_TYPE}",
    )


async def read_object(request: web.Request, kind: Kind) -> Obj:
    body = await read_body(request)
    if not isinstance(body, dict):
        raise bad_request(
            f"the body of the request must be a {kind.kind} object, not {type(body).__name__}"
        )
    return body


def check_object(body: Obj, target: Target) -> Obj:
    """Default kind/apiVersion from the path and refuse contradictions, like the apiserver."""
    kind = target.kind
    body = dict(body)
    body.setdefault("apiVersion", kind.api_version)
    body.setdefault("kind", kind.kind)
    if body["kind"] != kind.kind or body["apiVersion"] != kind.api_version:
        raise bad_request(
            f'{body["kind"]} in version "{body["apiVersion"]}" cannot be handled as a '
            f"{kind.kind}: the object does not match the resource {kind.qualified_plural}"
        )
    md = body.get("metadata")
    if md is not None and not isinstance(md, dict):
        raise bad_request("metadata: must be an object")
    md = dict(md or {})
    if kind.namespaced and target.namespace is not None:
        if md.get("namespace") and md["namespace"] != target.namespace:
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on "
                "the request"
            )
    if target.name is not None:
        if not md.get("name"):
            md["name"] = target.name
        elif md["name"] != target.name:
            raise bad_request(
                f"the name of the object ({md['name']}) does not match the name on the URL "
                f"({target.name})"
            )
    body["metadata"] = md
    return body


def apply_patch(live: Obj, body: Any, ctype: str, kind_name: str) -> Obj:
    try:
        if ctype == MERGE_PATCH:
            out = patch.merge_patch(live, body)
        elif ctype == JSON_PATCH:
            out = patch.json_patch(live, body)
        else:
            out = patch.strategic_merge_patch(live, body, kind_name)
    except patch.PatchError as e:
        raise ApiError(422, "Invalid", str(e)) from None
    if not isinstance(out, dict):
        raise ApiError(422, "Invalid", "the patch did not produce an object")
    return out


def field_selector(request: web.Request, kind: Kind) -> str | None:
    text = request.query.get("fieldSelector")
    try:
        fields.parse(text, kind.kind)
    except fields.FieldSelectorError as e:
        raise bad_request(str(e)) from None
    return text


async def delete_options(request: web.Request) -> Obj:
    """DeleteOptions from the body and the query (gracePeriodSeconds, propagationPolicy)."""
    opts: Obj = {}
    if request.can_read_body:
        raw = await request.read()
        if raw.strip():
            if content_type(request) != JSON:
                raise unsupported_media_type()
            try:
                body = decode.load_json(raw)
            except (ValueError, decode.DecodeError) as e:
                raise bad_request(f"error decoding DeleteOptions: {e}") from None
            if not isinstance(body, dict):
                raise bad_request("DeleteOptions must be a JSON object")
            opts.update(body)
    q = request.query
    if "gracePeriodSeconds" in q:
        opts["gracePeriodSeconds"] = query_int(q, "gracePeriodSeconds")
    if "propagationPolicy" in q:
        opts["propagationPolicy"] = q["propagationPolicy"]
    grace = opts.get("gracePeriodSeconds")
    if grace is not None:
        if not isinstance(grace, int) or isinstance(grace, bool):
            raise bad_request(f"gracePeriodSeconds: Invalid value: {grace!r}")
        # The apiserver reads a negative grace period as "as soon as possible".
        opts["gracePeriodSeconds"] = 1 if grace < 0 else grace
    policy = opts.get("propagationPolicy")
    if policy is not None and policy not in ("Orphan", "Background", "Foreground"):
        raise ApiError(
            422,
            "Invalid",
            f'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported '
            f'value: "{policy}": supported values: "Foreground", "Background", "Orphan", '
            '"nil"',
        )
    return opts


# --- who may ask ------------------------------------------------------------------


def _loopback_host(host: str, own: frozenset[str]) -> bool:
    if host in own:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_caller(request: web.Request, creds: Credentials, own_names: frozenset[str]) -> None:
    """Refuse what must never reach the API: a Host that is not this server's (DNS
    rebinding), an Origin other than its own (a web page in a local browser), and,
    but for the health and version endpoints, a request without the cluster's token."""
    host = (request.url.host or "").lower()
    if not _loopback_host(host, own_names):
        raise ApiError(403, "Forbidden", f'host "{host}" is not a name of this API server')
    origin = request.headers.get("Origin")
    if origin is not None:
        url = URL(origin)
        if not (
            url.scheme == "https"
            and _loopback_host((url.host or "").lower(), own_names)
            and url.port == request.url.port
        ):
            raise ApiError(403, "Forbidden", f"cross-origin requests are refused ({origin})")
    if request.path in OPEN_PATHS and request.method in ("GET", "HEAD"):
        return
    if not creds.allows(request.headers.get("Authorization")):
        raise ApiError(401, "Unauthorized", "Unauthorized")
