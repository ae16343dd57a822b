"""Cron schedules exactly as far as Kubernetes takes them, parsed and evaluated by cronsim.

Kubernetes validates `CronJob.spec.schedule` with robfig/cron v3's `ParseStandard` (kubernetes
pkg/apis/batch/validation/validation.go, validateScheduleFormat): five fields (minute hour day-of-month month
day-of-week), `*` and `?`, ranges, lists and steps, the names JAN-DEC and SUN-SAT in any case, day-of-week 0-6, and the
descriptors @yearly @annually @monthly @weekly @daily @midnight @hourly and @every <duration> (robfig/cron parser.go);
it refuses any `TZ`/`CRON_TZ` in the schedule ("use timeZone field instead"). cronsim (Healthchecks.io's parser)
takes more: a seconds field, L, W, #, Sunday as 7. So this module first refuses what Kubernetes would, then lets
cronsim parse what is left and say when it runs.

cronsim 2.8 was chosen over croniter: it has no dependencies, refuses malformed input instead of guessing, and
evaluates in a zoneinfo time zone directly. One difference from robfig is kept in mind: robfig ORs day-of-month and
day-of-week unless one of them is a bare `*` or `?`, cronsim unless one *starts with* `*`; the runs computed here are
for checks (does it run, when in the month), never shown as the cluster's own timetable.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cronsim import CronSim, CronSimError

from .schema_help import suggest

# robfig/cron parser.go, parseDescriptor; @every is refused below.
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
FULL_NAMES = {
    **{m: m for m in MONTHS},
    **{d: d for d in DAYS},
    "JANUARY": "JAN",
    "FEBRUARY": "FEB",
    "MARCH": "MAR",
    "APRIL": "APR",
    "JUNE": "JUN",
    "JULY": "JUL",
    "AUGUST": "AUG",
    "SEPTEMBER": "SEP",
    "OCTOBER": "OCT",
    "NOVEMBER": "NOV",
    "DECEMBER": "DEC",
    "SUNDAY": "SUN",
    "MONDAY": "MON",
    "TUESDAY": "TUE",
    "WEDNESDAY": "WED",
    "THURSDAY": "THU",
    "FRIDAY": "FRI",
    "SATURDAY": "SAT",
}
# (name, lowest, highest, names allowed) per field, as robfig's bounds.
FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day-of-month", 1, 31, ()),
    ("month", 1, 12, MONTHS),
    ("day-of-week", 0, 6, DAYS),
)
EXAMPLE = "'30 1 * * *' (01:30 every day)"
_ITEM = re.compile(r"^(?P<lo>\*|\?|[0-9]+|[A-Za-z]+)(?:-(?P<hi>[0-9]+|[A-Za-z]+))?(?:/(?P<step>[0-9]+))?$")
# Kubernetes' check of a timeZone name, per path component (validateTimeZone, after the IANA naming rules).
_TZ_PART = re.compile(r"^[A-Za-z.\-_0-9+]{1,14}$")
# A fixed point to evaluate from: checks must not depend on the day they run.
REFERENCE = datetime(2026, 1, 1, tzinfo=UTC)


def _value(token: str, field: int) -> int:
    name, _, _, names = FIELDS[field]
    if token.isdigit():
        return int(token)
    upper = token.upper()
    if upper in names:
        return names.index(upper) + (1 if name == "month" else 0)
    if names:
        spelled = [full for full, short in FULL_NAMES.items() if short in names]
        near = FULL_NAMES.get(upper) or suggest(upper, spelled)
        hint = f"; did you mean {FULL_NAMES.get(near, near)}?" if near else ""
        raise ValueError(
            f"{token!r} in the {name} field is not a {name} name: Kubernetes takes the three-letter names "
            f"{names[0]}-{names[-1]} (or numbers){hint}"
        )
    raise ValueError(f"{token!r} in the {name} field is not a number")


def _field(token: str, field: int) -> str:
    """One field, checked against what robfig accepts; returns it in cronsim's spelling ('?' becomes '*')."""
    name, low, high, _ = FIELDS[field]
    out = []
    for item in token.split(","):
        pieces = re.split(r"[-/]", item.upper())
        if "#" in item or any(p in ("L", "LW") or re.fullmatch(r"[0-9]+[LW]", p) for p in pieces):
            raise ValueError(f"{item!r}: Kubernetes cron has no L, W or # (last, weekday, nth): list the days instead")
        m = _ITEM.fullmatch(item)
        if m is None:
            raise ValueError(
                f"{item!r} in the {name} field is not a value, a range a-b, a list a,b or a step */n ({low}-{high})"
            )
        lo, hi, step = m["lo"], m["hi"], m["step"]
        wild = lo in ("*", "?")
        if wild and hi is not None:
            raise ValueError(f"{item!r} in the {name} field: '*' cannot start a range; write {low}-{hi}")
        if wild:
            first, last = low, high
        else:
            first = _value(lo, field)
            # robfig reads a single value with a step, N/s, as N-<highest>/s.
            last = _value(hi, field) if hi is not None else high if step is not None else first
        for v in (first, last):
            if not low <= v <= high:
                extra = " (Sunday is 0, not 7)" if name == "day-of-week" and v == 7 else ""
                raise ValueError(f"{item!r}: the {name} field takes {low}-{high}{extra}")
        if first > last:
            raise ValueError(f"{item!r} in the {name} field runs backwards: write the smaller value first")
        if step is not None:
            n = int(step)
            if n == 0:
                raise ValueError(f"{item!r}: a step must be 1 or more")
            if last > first and n > last - first:
                raise ValueError(
                    f"{item!r}: a step of {n} over {first}-{last} never repeats, so it means just {first}; "
                    f"write {first} if that is what you want"
                )
        out.append(item.replace("?", "*"))
    return ",".join(out)


def _normalised(expr: str) -> str:
    """The five-field form cronsim evaluates, after refusing what Kubernetes would refuse."""
    if expr != expr.strip():
        raise ValueError("has spaces or a line break around it: remove them")
    if "TZ" in expr:
        raise ValueError("must not carry TZ= or CRON_TZ=: Kubernetes refuses it; the time zone is orca.timezone")
    if expr.startswith("@"):
        if expr in MACROS:
            return MACROS[expr]
        if expr.startswith("@every"):
            raise ValueError(
                "@every is not a calendar schedule (it ignores the time zone and restarts with the controller): "
                "write five fields, e.g. '0 */6 * * *'"
            )
        near = suggest(expr, list(MACROS))
        hint = f"did you mean {near}?" if near else f"known: {', '.join(MACROS)}"
        raise ValueError(f"is not a schedule Kubernetes knows; {hint}")
    parts = expr.split()
    if len(parts) != 5:
        extra = ""
        if len(parts) == 6:
            extra = " (there is no seconds or year field)"
        raise ValueError(
            f"has {len(parts)} fields; Kubernetes takes five: minute hour day-of-month month day-of-week{extra}, "
            f"e.g. {EXAMPLE}"
        )
    return " ".join(_field(p, i) for i, p in enumerate(parts))


def _cronsim(expr: str, start: datetime) -> CronSim:
    try:
        return CronSim(_normalised(expr), start)
    except CronSimError:
        # What is left after the checks above is a date that never comes (31 April, 30 February).
        raise ValueError("never runs: no month it names has that day of the month") from None


def check_cron(expr: str) -> str:
    """The expression, unchanged, if Kubernetes takes it and it runs at all; else ValueError saying what to write."""
    it = _cronsim(expr, REFERENCE)
    try:
        next(it)
    except StopIteration:
        raise ValueError("never runs") from None
    return expr


def runs(expr: str, zone: str, start: datetime = REFERENCE) -> Iterator[datetime]:
    """When a (valid) schedule fires, in the given time zone, from `start` on."""
    return iter(_cronsim(expr, start.astimezone(zoneinfo.ZoneInfo(zone))))


def months_without_a_run_on_local_day(expr: str, zone: str, day: int = 1, months: int = 13) -> list[str]:
    """The months (YYYY-MM) in which the schedule, read in `zone`, never fires on that day of the month in `zone`.

    The dump script makes its monthly copy when `date +%d` is that day with TZ set to the clinic's zone
    (backup_plan.DUMP_SCRIPT), so it acts only on such runs.
    """
    tz = zoneinfo.ZoneInfo(zone)
    missing = []
    year, month = REFERENCE.year, REFERENCE.month
    for _ in range(months):
        start = datetime(year, month, day, tzinfo=tz)
        first = next(runs(expr, zone, start - timedelta(seconds=1)), None)
        if first is None or first.astimezone(tz).date() != start.date():
            missing.append(f"{year}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return missing


def check_time_zone(name: str) -> str:
    """An IANA zone name both Python and Kubernetes accept (validateTimeZone, then time.LoadLocation)."""
    if name.lower() in ("local", "localtime") or not name:
        raise ValueError("must name a zone explicitly, such as Asia/Tokyo")
    if (
        name.startswith("/")
        or name.endswith("/")
        or "//" in name
        or any(p in (".", "..") or not _TZ_PART.fullmatch(p) or p.startswith("-") for p in name.split("/"))
    ):
        raise ValueError("is not an IANA time zone name such as Asia/Tokyo")
    if name not in zoneinfo.available_timezones():
        near = suggest(name, sorted(zoneinfo.available_timezones()))
        hint = f"; did you mean {near}?" if near else ""
        raise ValueError(f"is not a known IANA time zone{hint}")
    return name


def posix_tz(zone: str) -> str:
    """The POSIX TZ rule of an IANA zone, as its TZif file ends with it (RFC 8536, section 3.3): `date` follows
    it without any tzdata in the image, daylight saving included. ValueError for a zone the system does not know."""
    for root in zoneinfo.TZPATH:
        path = Path(root, zone)
        if ".." not in Path(zone).parts and path.is_file():
            data = path.read_bytes()
            if data[:4] == b"TZif" and data[4:5] >= b"2" and data.endswith(b"\n"):
                return data[:-1].rsplit(b"\n", 1)[-1].decode("ascii")
    raise ValueError(f"unknown time zone {zone!r}: use an IANA name such as Asia/Tokyo")
