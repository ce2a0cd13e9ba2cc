"""The create-only views of the caller: SelfSubjectReview (`kubectl auth whoami`),
SelfSubjectAccessReview (`kubectl auth can-i VERB RESOURCE`) and
SelfSubjectRulesReview (`kubectl auth can-i --list`).

kube-apiserver answers a POST of one of these with the object it was sent and a
status it computed for the authenticated user, and stores nothing. Every request
that reaches this far carried the cluster's token, whose user is the cluster's
admin (k8s/rbac.py), so the answers are the admin's.
"""

from __future__ import annotations

import json
from typing import Any

from svcnet.k8s import rbac
from svcnet.k8s.kinds import Kind
from svcnet.k8s.objects import Obj
from svcnet.k8s.timestamps import rfc3339
from svcnet.registry import ApiError
from svcnet.registry.errors import Cause, bad_request

MAX_FIELD = 1024
"""Longest string accepted in a review's attributes (names, verbs, paths)."""


def answer(kind: Kind, body: Obj, namespace: str | None, now: float) -> Obj:
    """The object kube-apiserver returns for a created review of `kind`."""
    spec = body.get("spec")
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise bad_request(
            f'{kind.kind} in version "{kind.version}" cannot be handled as a {kind.kind}: '
            "spec: must be an object"
        )
    _check_strings(kind, spec)
    md = body.get("metadata") or {}
    out: Obj = {"kind": kind.kind, "apiVersion": kind.api_version}
    if kind.kind == "SelfSubjectReview":
        # The REST storage stamps the time it answered (pkg/registry/authentication).
        out["metadata"] = {"creationTimestamp": rfc3339(now)}
        out["status"] = {"userInfo": {"username": rbac.ADMIN_USER, "groups": list(rbac.GROUPS)}}
        return out
    out["metadata"] = {**md, "creationTimestamp": md.get("creationTimestamp")}
    if kind.kind == "SelfSubjectAccessReview":
        has_res = spec.get("resourceAttributes") is not None
        has_url = spec.get("nonResourceAttributes") is not None
        if has_res and has_url:
            raise _invalid(
                kind,
                "spec.nonResourceAttributes",
                json.dumps(spec["nonResourceAttributes"], separators=(",", ":")),
                "cannot be specified in combination with resourceAttributes",
            )
        if not has_res and not has_url:
            raise _invalid(
                kind,
                "spec.resourceAttributes",
                "null",
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            )
        out["spec"] = spec
        out["status"] = {"allowed": True, "reason": rbac.ALLOW_REASON}
        return out
    # SelfSubjectRulesReview: the rules that apply in one namespace.
    if not spec.get("namespace"):
        raise bad_request("no namespace on request")
    out["spec"] = spec
    out["status"] = {
        "resourceRules": rbac.resource_rules(),
        "nonResourceRules": rbac.non_resource_rules(),
        "incomplete": False,
    }
    return out


def _invalid(kind: Kind, field: str, value: str, detail: str) -> ApiError:
    cause = Cause(field, "FieldValueInvalid", f"Invalid value: {json.dumps(value)}: {detail}")
    return ApiError(
        422,
        "Invalid",
        f'{kind.kind}.{kind.group} "" is invalid: {cause.render()}',
        {"group": kind.group, "kind": kind.kind},
        [cause],
    )


def _check_strings(kind: Kind, value: Any, depth: int = 0) -> None:
    """Bound what a hostile client can make the server echo back."""
    if depth > 4:
        raise bad_request(f"{kind.kind}: spec is nested too deeply")
    if isinstance(value, str) and len(value) > MAX_FIELD:
        raise bad_request(f"{kind.kind}: a spec field is longer than {MAX_FIELD} characters")
    if isinstance(value, dict):
        if len(value) > 64:
            raise bad_request(f"{kind.kind}: spec has too many fields")
        for v in value.values():
            _check_strings(kind, v, depth + 1)
    elif isinstance(value, list):
        if len(value) > 64:
            raise bad_request(f"{kind.kind}: a spec list is too long")
        for v in value:
            _check_strings(kind, v, depth + 1)
