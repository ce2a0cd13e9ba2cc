"""Resource quantities as Kubernetes writes them: `64Mi`, `1G`, `500m`, `0.5`, `2e3`.

apimachinery's resource.Quantity: a decimal number with an optional binary
(Ki, Mi, Gi, Ti, Pi, Ei) or decimal (n, u, m, k, M, G, T, P, E) suffix or
exponent. Read exactly (Decimal), then rounded up as the kubelet rounds a
quantity it turns into a cgroup value.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

_SUFFIX = {
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_QUANTITY = re.compile(
    r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]))?$"
)


class QuantityError(ValueError):
    pass


def parse(value: object) -> Decimal:
    """The quantity's value in base units (bytes, cores)."""
    text = str(value).strip()
    m = _QUANTITY.match(text)
    if m is None:
        raise QuantityError(f"quantities must match the regular expression '{_QUANTITY.pattern}'")
    try:
        number = Decimal(m[1])
    except InvalidOperation:
        raise QuantityError(f"invalid quantity {text!r}") from None
    if m[2]:
        return number * (Decimal(10) ** int(m[2][1:]))
    return number * _SUFFIX[m[3] or ""]


def bytes_of(value: object) -> int:
    """A memory quantity in whole bytes, rounded up."""
    return math.ceil(parse(value))


def millicores_of(value: object) -> int:
    """A CPU quantity in millicores, rounded up (the kubelet's MilliValue)."""
    return math.ceil(parse(value) * 1000)
