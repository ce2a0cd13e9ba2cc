"""CronJob schedules: the standard 5-field cron format as Kubernetes parses it
(robfig/cron v3's ParseStandard: minute hour day-of-month month day-of-week,
names for months and days, ranges, steps, `?`, and the `@hourly`-style
descriptors), and the next activation after a time in a time zone.

The error messages are robfig's, since kube-apiserver puts them verbatim in
`spec.schedule: Invalid value: ...`.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

MAX_SCHEDULE = 1024
"""Bound on a schedule string (the API server bounds the object; this bounds the parse)."""

_MONTHS = {
    m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())
}
_DAYS = {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}

_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


class CronError(ValueError):
    pass


@dataclass(frozen=True)
class _Bounds:
    lo: int
    hi: int
    names: dict[str, int] | None = None


_FIELDS = (
    _Bounds(0, 59),
    _Bounds(0, 23),
    _Bounds(1, 31),
    _Bounds(1, 12, _MONTHS),
    _Bounds(0, 6, _DAYS),
)


def _int(expr: str, names: dict[str, int] | None) -> int:
    if names is not None and expr.lower() in names:
        return names[expr.lower()]
    if not expr or not expr.isdigit():
        if expr.startswith("-") and expr[1:].isdigit():
            raise CronError(f"negative number ({expr}) not allowed: {expr}")
        raise CronError(
            f'failed to parse int from {expr}: strconv.Atoi: parsing "{expr}": invalid syntax'
        )
    return int(expr)


def _range(expr: str, b: _Bounds) -> tuple[set[int], bool]:
    """One comma-separated part: (values, whether it was `*` or `?`)."""
    range_and_step = expr.split("/")
    low_and_high = range_and_step[0].split("-")
    star = low_and_high[0] in ("*", "?")
    if star:
        start, end = b.lo, b.hi
    else:
        start = _int(low_and_high[0], b.names)
        if len(low_and_high) == 1:
            end = start
        elif len(low_and_high) == 2:
            end = _int(low_and_high[1], b.names)
        else:
            raise CronError(f"too many hyphens: {expr}")
    if len(range_and_step) == 1:
        step = 1
    elif len(range_and_step) == 2:
        step = _int(range_and_step[1], None)
        if len(low_and_high) == 1 and not star:
            end = b.hi  # `N/step` means N through the maximum
    else:
        raise CronError(f"too many slashes: {expr}")
    if start < b.lo:
        raise CronError(f"beginning of range ({start}) below minimum ({b.lo}): {expr}")
    if end > b.hi:
        raise CronError(f"end of range ({end}) above maximum ({b.hi}): {expr}")
    if start > end:
        raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise CronError(f"step of range should be a positive number: {expr}")
    return set(range(start, end + 1, step)), star and step == 1


@dataclass(frozen=True)
class Schedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    dom: frozenset[int]
    months: frozenset[int]
    dow: frozenset[int]
    dom_star: bool
    dow_star: bool

    def _day_matches(self, d: dt.datetime) -> bool:
        # robfig (and Vixie cron): if either day field is `*`, both must match;
        # otherwise either may.
        dom = d.day in self.dom
        dow = (d.isoweekday() % 7) in self.dow
        if self.dom_star or self.dow_star:
            return dom and dow
        return dom or dow

    def next(self, after: dt.datetime, tz: dt.tzinfo) -> dt.datetime | None:
        """The first activation strictly after `after` (aware), in `tz`'s wall time;
        None if there is none within five years (robfig's limit)."""
        t = after.astimezone(tz).replace(tzinfo=None, second=0, microsecond=0)
        t += dt.timedelta(minutes=1)
        limit = t.year + 5
        while t.year <= limit:
            if t.month not in self.months:
                t = (t.replace(day=1, hour=0, minute=0) + dt.timedelta(days=32)).replace(day=1)
                continue
            if not self._day_matches(t):
                t = t.replace(hour=0, minute=0) + dt.timedelta(days=1)
                continue
            if t.hour not in self.hours:
                t = t.replace(minute=0) + dt.timedelta(hours=1)
                continue
            if t.minute not in self.minutes:
                t += dt.timedelta(minutes=1)
                continue
            aware = t.replace(tzinfo=tz)
            if aware.astimezone(dt.UTC) <= after.astimezone(dt.UTC):
                t += dt.timedelta(minutes=1)  # a wall time repeated by a DST change
                continue
            return aware
        return None


def parse(spec: str) -> Schedule:
    """ParseStandard; raises CronError with robfig's message."""
    if len(spec) > MAX_SCHEDULE:
        raise CronError(f"schedule longer than {MAX_SCHEDULE} characters")
    if not spec:
        raise CronError("empty spec string")
    if spec.startswith(("TZ=", "CRON_TZ=")):
        raise CronError("cannot use TZ or CRON_TZ in schedule, use timeZone field instead")
    if spec.startswith("@"):
        if spec.startswith("@every "):
            raise CronError("@every is not supported by the CronJob controller")
        expanded = _DESCRIPTORS.get(spec)
        if expanded is None:
            raise CronError(f"unrecognized descriptor: {spec}")
        spec = expanded
    fields = spec.split()
    if len(fields) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    parsed: list[tuple[set[int], bool]] = []
    for f, b in zip(fields, _FIELDS, strict=True):
        values: set[int] = set()
        star = False
        for part in f.split(","):
            v, s = _range(part, b)
            values |= v
            star = star or s
        parsed.append((values, star))
    return Schedule(
        frozenset(parsed[0][0]),
        frozenset(parsed[1][0]),
        frozenset(parsed[2][0]),
        frozenset(parsed[3][0]),
        frozenset(parsed[4][0]),
        parsed[2][1],
        parsed[4][1],
    )


def time_zone(name: str | None) -> dt.tzinfo:
    """The CronJob's timeZone (the controller's local zone, UTC here, when unset)."""
    if not name:
        return dt.UTC
    if len(name) > 255 or name.startswith("/") or ".." in name:
        raise CronError(f"unknown time zone {name}")
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise CronError(f"unknown time zone {name}") from None
