"""API errors as Kubernetes `Status` objects, with kubectl's wording."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from svcnet.k8s.kinds import Kind


@dataclass(frozen=True)
class Cause:
    field: str
    reason: str  # FieldValueInvalid, FieldValueRequired, FieldValueDuplicate, ...
    message: str  # e.g. `Invalid value: 70000: must be between 1 and 65535, inclusive`

    def render(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


@dataclass
class ApiError(Exception):
    code: int
    reason: str  # NotFound, AlreadyExists, Invalid, BadRequest, Conflict, InternalError...
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    causes: list[Cause] = field(default_factory=list)

    def __str__(self) -> str:
        return self.message

    def status(self) -> dict[str, Any]:
        details = dict(self.details)
        if self.causes:
            details["causes"] = [
                {"reason": c.reason, "message": c.message, "field": c.field} for c in self.causes
            ]
        out: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if details:
            out["details"] = details
        return out


def not_found(kind: Kind, name: str) -> ApiError:
    return ApiError(
        404,
        "NotFound",
        f'{kind.qualified_plural} "{name}" not found',
        {"name": name, "group": kind.group, "kind": kind.plural},
    )


def already_exists(kind: Kind, name: str) -> ApiError:
    return ApiError(
        409,
        "AlreadyExists",
        f'{kind.qualified_plural} "{name}" already exists',
        {"name": name, "group": kind.group, "kind": kind.plural},
    )


def invalid(kind: Kind, name: str, causes: list[Cause]) -> ApiError:
    """422 `Service "x" is invalid: ...` (one cause) or `[a, b]` (several)."""
    rendered = [c.render() for c in causes]
    body = rendered[0] if len(rendered) == 1 else "[" + ", ".join(rendered) + "]"
    return ApiError(
        422,
        "Invalid",
        f'{kind.kind} "{name}" is invalid: {body}',
        {"name": name, "group": kind.group, "kind": kind.kind},
        causes,
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def forbidden(message: str, kind: Kind | None = None, name: str = "") -> ApiError:
    details = {"name": name, "group": kind.group, "kind": kind.plural} if kind else {}
    return ApiError(403, "Forbidden", message, details)


def internal(message: str) -> ApiError:
    return ApiError(500, "InternalError", f"Internal error occurred: {message}")
