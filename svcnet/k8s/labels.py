"""Label selectors: the string form (`-l`, `labelSelector=`) and the object
form (matchLabels / matchExpressions), with Kubernetes' semantics."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Op = Literal["In", "NotIn", "Exists", "DoesNotExist", "=", "!=", ">", "<"]


class SelectorError(ValueError):
    pass


@dataclass(frozen=True)
class Requirement:
    key: str
    op: Op
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        has = self.key in labels
        v = labels.get(self.key)
        if self.op in ("In", "="):
            return has and v in self.values
        if self.op in ("NotIn", "!="):
            return not has or v not in self.values
        if self.op == "Exists":
            return has
        if self.op == "DoesNotExist":
            return not has
        if v is None:
            return False
        try:
            n = int(v)
        except ValueError:
            return False
        bound = int(self.values[0])
        return n > bound if self.op == ">" else n < bound


@dataclass(frozen=True)
class Selector:
    requirements: tuple[Requirement, ...] = ()
    # A nil selector (a Service without one) selects nothing; an empty one,
    # everything. Kubernetes keeps the two apart, so do we.
    nothing: bool = False

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        lab = labels or {}
        return all(r.matches(lab) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements and not self.nothing

    def __str__(self) -> str:
        parts = []
        for r in self.requirements:
            if r.op == "=":
                parts.append(f"{r.key}={r.values[0]}")
            elif r.op == "!=":
                parts.append(f"{r.key}!={r.values[0]}")
            elif r.op == "Exists":
                parts.append(r.key)
            elif r.op == "DoesNotExist":
                parts.append(f"!{r.key}")
            elif r.op in (">", "<"):
                parts.append(f"{r.key}{r.op}{r.values[0]}")
            else:
                op = "in" if r.op == "In" else "notin"
                parts.append(f"{r.key} {op} ({','.join(r.values)})")
        return ",".join(parts)


EVERYTHING = Selector()
NOTHING = Selector(nothing=True)


def from_map(labels: Mapping[str, str] | None) -> Selector:
    """A Service/ReplicationController style `selector:` map; None selects nothing."""
    if labels is None:
        return NOTHING
    return Selector(tuple(Requirement(k, "=", (str(v),)) for k, v in sorted(labels.items())))


def from_label_selector(sel: Mapping[str, Any] | None) -> Selector:
    """A metav1.LabelSelector (`matchLabels` + `matchExpressions`)."""
    if sel is None:
        return NOTHING
    reqs: list[Requirement] = [
        Requirement(k, "=", (str(v),)) for k, v in sorted((sel.get("matchLabels") or {}).items())
    ]
    for i, expr in enumerate(sel.get("matchExpressions") or []):
        op = expr.get("operator")
        values = tuple(str(v) for v in expr.get("values") or ())
        path = f"matchExpressions[{i}]"
        if op in ("In", "NotIn"):
            if not values:
                raise SelectorError(
                    f"{path}.values: Required value: must be specified when `operator` is "
                    "'In' or 'NotIn'"
                )
        elif op in ("Exists", "DoesNotExist"):
            if values:
                raise SelectorError(
                    f"{path}.values: Forbidden: may not be specified when `operator` is "
                    "'Exists' or 'DoesNotExist'"
                )
        else:
            raise SelectorError(
                f'{path}.operator: Invalid value: "{op}": not a valid selector operator'
            )
        reqs.append(Requirement(str(expr.get("key")), op, values))
    return Selector(tuple(reqs))


_TOKEN = re.compile(
    r"\s*(?:(?P<not>!)\s*(?P<nkey>[^\s,=!<>()]+)"
    r"|(?P<key>[^\s,=!<>()]+)\s*"
    r"(?:(?P<op>==|=|!=|>|<)\s*(?P<val>[^\s,=!<>()]*)"
    r"|(?P<setop>in|notin)\s*\((?P<set>[^)]*)\))?)\s*"
)


def parse(text: str | None) -> Selector:
    """Parse the string syntax of `kubectl get -l` / `?labelSelector=`."""
    if text is None or not text.strip():
        return EVERYTHING
    reqs: list[Requirement] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise SelectorError(f'unable to parse requirement: found "{text[pos:]}"')
        if m.group("not"):
            reqs.append(Requirement(m.group("nkey"), "DoesNotExist"))
        elif m.group("op"):
            op = m.group("op")
            norm: Op = "=" if op in ("=", "==") else op  # type: ignore[assignment]
            val = m.group("val")
            if norm in (">", "<") and not val.lstrip("-").isdigit():
                raise SelectorError(
                    "unable to parse requirement: for 'Gt', 'Lt' operators, the value must "
                    "be an integer"
                )
            reqs.append(Requirement(m.group("key"), norm, (val,)))
        elif m.group("setop"):
            vals = tuple(v.strip() for v in m.group("set").split(",") if v.strip())
            reqs.append(
                Requirement(m.group("key"), "In" if m.group("setop") == "in" else "NotIn", vals)
            )
        else:
            reqs.append(Requirement(m.group("key"), "Exists"))
        pos = m.end()
        if pos < len(text):
            if text[pos] != ",":
                raise SelectorError(f'unable to parse requirement: found "{text[pos:]}"')
            pos += 1
    return Selector(tuple(reqs))


def format_map(labels: Mapping[str, str] | None) -> str:
    """`app=echo,release=summer` with keys sorted, as kubectl's wide columns show."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def format_label_selector(sel: Mapping[str, Any] | None) -> str:
    """metav1.FormatLabelSelector: `<none>` for nil/empty."""
    if not sel:
        return "<none>"
    s = str(from_label_selector(sel))
    return s or "<none>"
