"""Issue 10: cron schedules as Kubernetes takes them, parsed and evaluated by cronsim in the stack's time zone.

The oracles below are written from the grammar Kubernetes documents (robfig/cron v3's standard parser: five fields,
`*`/`?`, ranges, lists, steps, JAN-DEC and SUN-SAT, day-of-week 0-6, the @-macros), not from the code under test.
"""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pulumi
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from orca_test_support import (
    address_plan,
    attempt,
    load_settings,
    program_config,
    raw_settings,
    two_clinics,
    write_yaml,
)

from orca_platform.backup.backup_plan import DUMP_SCRIPT, STORE_DUMP_SCRIPT
from orca_platform.model.errors import InputError
from orca_platform.model.schedule import check_cron, check_time_zone, months_without_a_run_on_local_day, runs
from orca_platform.model.settings import parse_settings
from orca_platform.model.tenants import parse_tenants

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# name, lowest, highest, names (value = position, +1 for months)
FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day-of-month", 1, 31, ()),
    ("month", 1, 12, ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")),
    ("day-of-week", 0, 6, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")),
)


# --- the cases, and others Kubernetes refuses ------------------------------------------------------------

REFUSED = {
    "0 25 * * *": "the hour field takes 0-23",
    "30 1 * * Mnday": "did you mean MON?",
    "a b c d e": "'a' in the minute field is not a number",
    "0 0 0 * * *": "has 6 fields",  # seconds: cronsim takes them, Kubernetes does not
    "0 0 * * 7": "Sunday is 0, not 7",  # cronsim takes 7
    "0 0 L * *": "no L, W or #",  # cronsim takes L
    "0 0 * * 1#2": "no L, W or #",
    "@every 6h": "@every is not a calendar schedule",  # robfig takes it; the time zone would not apply
    "TZ=UTC 0 0 * * *": "TZ=",  # the API server refuses TZ in a schedule
    "@dialy": "did you mean @daily?",
    "*/61 * * * *": "never repeats",
    "0 0 31 4 *": "never runs",
    "0 0 30 2 *": "never runs",
    "30 1 * *": "has 4 fields",
    "5-1 * * * *": "runs backwards",
    "*/0 * * * *": "a step must be 1 or more",
}


@pytest.mark.parametrize(("expr", "says"), REFUSED.items(), ids=list(REFUSED))
def test_refused_with_a_clear_reason(expr: str, says: str) -> None:
    with pytest.raises(ValueError) as info:
        check_cron(expr)
    assert says in str(info.value)


@pytest.mark.parametrize(
    "expr", ["30 1 * * *", "0 */6 * * *", "0 0 ? * MON-FRI", "15 2 1,15 jan-jun *", "@daily", "@hourly", "0 0 29 2 *"]
)
def test_what_kubernetes_takes_is_accepted(expr: str) -> None:
    assert check_cron(expr) == expr


def dev_raw() -> dict[str, Any]:
    return raw_settings("dev")


@pytest.mark.parametrize("expr", ["0 25 * * *", "30 1 * * Mnday", "a b c d e"])
def test_a_bad_stack_schedule_stops_the_program(expr: str) -> None:
    backup = dev_raw()["backup"] | {"dumpSchedule": expr}
    result = attempt("dev", program_config("dev", backup=backup))
    assert isinstance(result.error, pulumi.RunError) and result.registered == []
    assert "field 'orca-platform:backup.dumpSchedule'" in str(result.error)
    assert REFUSED[expr] in str(result.error)


def test_a_bad_clinic_schedule_stops_the_program_and_synth(tmp_path: Path) -> None:
    doc = two_clinics(address_plan(load_settings("dev")))
    doc["clinics"][1]["backup"] = {"snapshotSchedule": "0 0 * * 7"}
    path = write_yaml(tmp_path / "tenants.cron.yaml", doc)
    result = attempt("dev", program_config("dev", tenants=path))
    assert isinstance(result.error, pulumi.RunError) and result.registered == []
    assert "clinic 'beta-geka': field 'backup.snapshotSchedule' = '0 0 * * 7'" in str(result.error)
    from test_tenant_inputs import synth

    proc = synth("--stack", "dev", "--tenants", str(path), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and "Sunday is 0, not 7" in proc.stderr and "Traceback" not in proc.stderr


# --- a space of expressions: valid by construction, evaluated as the grammar says --------------------------------


@st.composite
def field_text(draw: st.DrawFn, index: int) -> tuple[str, set[int]]:
    """One field (text, the values it stands for), from Kubernetes' grammar."""
    _, low, high, names = FIELDS[index]
    offset = 1 if index == 3 else 0

    def token(v: int) -> str:
        if names and draw(st.booleans()):
            name = names[v - offset]
            return draw(st.sampled_from([name, name.lower(), name.title()]))
        return str(v)

    items, values = [], set()
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["value", "range", "step", "star-step"]))
        a = draw(st.integers(low, high))
        b = draw(st.integers(a, high))
        if kind == "value":
            items.append(token(a))
            values.add(a)
        elif kind == "range":
            items.append(f"{token(a)}-{token(b)}")
            values |= set(range(a, b + 1))
        else:
            first, last = (low, high) if kind == "star-step" else (a, b)
            if last == first:
                items.append(token(first))
                values.add(first)
                continue
            step = draw(st.integers(1, last - first))
            items.append(f"*/{step}" if kind == "star-step" else f"{token(first)}-{token(last)}/{step}")
            values |= set(range(first, last + 1, step))
    return ",".join(items), values


@st.composite
def expressions(draw: st.DrawFn) -> tuple[str, list[set[int] | None]]:
    """An expression and, per field, the values it allows (None: '*', every value)."""
    parts, sets = [], []
    for i in range(5):
        if draw(st.integers(0, 2)) == 0:
            parts.append(draw(st.sampled_from(["*", "?"])) if i in (2, 4) else "*")
            sets.append(None)
        else:
            text, values = draw(field_text(i))
            parts.append(text)
            sets.append(values)
    return " ".join(parts), sets


def day_matches(when: datetime, dom: set[int] | None, dow: set[int] | None) -> bool:
    """Vixie cron, as robfig: with either day field '*' both must match, else either."""
    on_dom = dom is None or when.day in dom
    on_dow = dow is None or (when.isoweekday() % 7) in dow
    return on_dom and on_dow if dom is None or dow is None else on_dom or on_dow


def possible(sets: list[set[int] | None]) -> bool:
    """Whether some real date fits: day-of-month against the months' lengths when both must hold."""
    dom, month, dow = sets[2], sets[3], sets[4]
    if dom is None or dow is not None:
        return True
    longest = max((29 if m == 2 else 30 if m in (4, 6, 9, 11) else 31) for m in (month or range(1, 13)))
    return min(dom) <= longest


@FAST
@given(expressions(), st.sampled_from(["Asia/Tokyo", "UTC", "Europe/Berlin"]))
@example(("30 1 * * *", [{30}, {1}, None, None, None]), "Asia/Tokyo")
def test_valid_expressions_are_accepted_and_run_when_the_grammar_says(
    case: tuple[str, list[set[int] | None]], zone: str
) -> None:
    expr, sets = case
    if not possible(sets):
        with pytest.raises(ValueError, match="never runs"):
            check_cron(expr)
        return
    assert check_cron(expr) == expr
    first = next(runs(expr, zone))
    assert first.tzinfo is not None and first.utcoffset() == first.astimezone(ZoneInfo(zone)).utcoffset()
    local = first.astimezone(ZoneInfo(zone))
    for value, allowed in ((local.minute, sets[0]), (local.hour, sets[1]), (local.month, sets[3])):
        assert allowed is None or value in allowed, (expr, local)
    assert day_matches(local, sets[2], sets[4]), (expr, local)


@FAST
@given(expressions(), st.integers(0, 4), st.sampled_from(["low", "high"]))
def test_a_value_outside_its_field_is_refused_naming_the_field(
    case: tuple[str, list[set[int] | None]], index: int, side: str
) -> None:
    name, low, high, _ = FIELDS[index]
    parts = case[0].split()
    bad = low - 1 if side == "low" else high + 1
    if bad < 0:
        bad = high + 1
    parts[index] = str(bad)
    with pytest.raises(ValueError, match=name):
        check_cron(" ".join(parts))


@FAST
@given(expressions(), st.sampled_from(["0", "*/5", "30"]))
def test_a_seconds_field_is_refused_though_the_library_takes_it(
    case: tuple[str, list[set[int] | None]], seconds: str
) -> None:
    with pytest.raises(ValueError, match="has 6 fields"):
        check_cron(f"{seconds} {case[0]}")


# --- read in the stack's time zone --------------------------------------------------------------------------------


def test_the_dump_makes_its_monthly_copy_by_the_local_date() -> None:
    """What the schedule check relies on: the dump script decides by the day of the month in the clinic's zone."""
    assert '"$(date +%d)" = 01' in STORE_DUMP_SCRIPT
    assert "date -u +%d" not in STORE_DUMP_SCRIPT + DUMP_SCRIPT


def sundays_first() -> int:
    """An oracle apart from cronsim: how many of the 13 months from January 2026 begin on a Sunday."""
    return sum(1 for i in range(13) if date(2026 + i // 12, i % 12 + 1, 1).weekday() == 6)


@pytest.mark.parametrize(
    ("expr", "zone", "months_missing"),
    [
        ("30 1 * * *", "Asia/Tokyo", 0),  # daily
        ("0 23 * * *", "Asia/Tokyo", 0),
        ("30 1 1 * *", "Asia/Tokyo", 0),  # the 1st at 01:30 in Tokyo: the monthly copy is made in Tokyo's date
        ("30 1 1 * *", "UTC", 0),
        ("30 1 2 * *", "Asia/Tokyo", 13),  # the 2nd: never the 1st
        ("30 1 * * 0", "Asia/Tokyo", 13 - sundays_first()),  # weekly: only months that begin on a Sunday
    ],
)
def test_months_without_a_monthly_copy(expr: str, zone: str, months_missing: int) -> None:
    assert len(months_without_a_run_on_local_day(expr, zone)) == months_missing


def test_a_dump_schedule_that_never_makes_the_monthly_copy_stops_the_program() -> None:
    backup = dev_raw()["backup"] | {"dumpSchedule": "30 1 2 * *"}
    result = attempt("dev", program_config("dev", backup=backup))
    assert isinstance(result.error, pulumi.RunError) and result.registered == []
    message = str(result.error)
    assert "field 'orca-platform:backup.dumpSchedule' = '30 1 2 * *'" in message
    assert "never runs on the 1st of the month in Asia/Tokyo" in message


def test_a_monthly_schedule_on_the_first_is_fine_in_the_clinics_zone() -> None:
    backup = dev_raw()["backup"] | {"dumpSchedule": "30 1 1 * *"}
    assert attempt("dev", program_config("dev", backup=backup)).error is None


@pytest.mark.parametrize(
    ("zone", "says"),
    [("Asia/Tokio", "did you mean Asia/Tokyo?"), ("Local", "explicitly"), ("../etc/passwd", "not an IANA"), ("", "")],
)
def test_the_time_zone_is_one_kubernetes_and_python_know(zone: str, says: str) -> None:
    with pytest.raises(ValueError) as info:
        check_time_zone(zone)
    assert says in str(info.value)
    raw = copy.deepcopy(dev_raw())
    raw["orca"]["timezone"] = zone
    with pytest.raises(InputError) as problems:
        parse_settings(raw, "Pulumi.dev.yaml")
    assert [p.field for p in problems.value.problems] == ["orca-platform:orca.timezone"]


def test_schedules_are_evaluated_in_the_zone() -> None:
    # 15:00 UTC is midnight in Tokyo: the next 01:30 there is 16:30 UTC the same day.
    first = next(runs("30 1 * * *", "Asia/Tokyo", datetime(2026, 2, 28, 15, 0, tzinfo=UTC)))
    assert first == datetime(2026, 3, 1, 1, 30, tzinfo=ZoneInfo("Asia/Tokyo"))
    assert first.astimezone(UTC) == datetime(2026, 2, 28, 16, 30, tzinfo=UTC)


def test_a_clinic_override_is_checked_like_the_stack_schedule() -> None:
    doc = {
        "clinics": [
            {
                "id": "sakura-naika",
                "name": "さくら",
                "size": "small",
                "volumeSize": "32Gi",
                "sourceCidrs": ["192.168.10.0/24"],
                "backup": {"dumpSchedule": "0 0 * * * *"},
            }
        ]
    }
    with pytest.raises(InputError) as info:
        parse_tenants(doc, "tenants.yaml")
    [p] = info.value.problems
    assert (p.clinic, p.field) == ("sakura-naika", "backup.dumpSchedule") and "has 6 fields" in p.message
