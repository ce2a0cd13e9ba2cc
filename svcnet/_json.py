"""JSON out, fast: the API's responses, watch events and the store's log.

A list of a thousand pods is about 3 MB of JSON; the standard library's encoder
took 38 ms to write it, orjson takes 6 (benchmarks/README.md, "Scale"). Output is
compact UTF-8, as the API server writes it. Keys that are not strings (YAML can
make them) are written as strings, as the standard library did.
"""

from __future__ import annotations

from copy import deepcopy as _deepcopy
from typing import Any, TypeVar, cast

import orjson


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)


_T = TypeVar("_T")
_COPY_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def copy(obj: _T) -> _T:
    """A deep copy of a JSON value (an API object), six times faster than
    copy.deepcopy, which every store write and status update paid (issue 16).
    Anything JSON cannot carry unchanged (a datetime from YAML, a key that is not
    a string, an integer beyond 64 bits) raises in orjson and is copied by
    copy.deepcopy instead; tuples come back as lists, as the store's log and
    every API answer would give them."""
    try:
        return cast(_T, orjson.loads(orjson.dumps(obj, option=_COPY_OPTIONS)))
    except TypeError:
        return _deepcopy(obj)
