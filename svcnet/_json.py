"""JSON out, fast: the API's responses, watch events and the store's log.

A list of a thousand pods is about 3 MB of JSON; the standard library's encoder
took 38 ms to write it, orjson takes 6 (benchmarks/README.md, "Scale"). Output is
compact UTF-8, as the API server writes it. Keys that are not strings (YAML can
make them) are written as strings, as the standard library did.
"""

from __future__ import annotations

from typing import Any

import orjson


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)
