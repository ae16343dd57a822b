"""Issue 24, the pure parts: the restorable window, the checks of a requested point in time, the rendered settings,
and shellcheck over every rendered PITR script (the real-component tests are tests/test_pitr.py)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from orca_platform.backup import pitr
from orca_platform.backup.window import (
    BaseBackup,
    Gap,
    Interval,
    TargetRefusedError,
    backups_from_barman,
    check_target,
    gap_from_record,
    parse_target,
    recovery_time,
    restorable_window,
)
from tools.checks import shell_scripts

UTC = dt.UTC
JST = dt.timezone(dt.timedelta(hours=9))


def t(hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 12, 6, hour, minute, tzinfo=UTC)


B1 = BaseBackup("b1", t(1), t(1, 10))
B2 = BaseBackup("b2", t(9), t(9, 10))
NOW = t(12)


def test_one_backup_opens_the_window_to_the_last_archived_commit() -> None:
    assert restorable_window([B1], [], t(11)) == [Interval(t(1, 10), t(11))]


def test_nothing_archived_or_no_backup_is_no_window() -> None:
    assert restorable_window([B1], [], None) == []
    assert restorable_window([], [], t(11)) == []
    with pytest.raises(TargetRefusedError, match="none"):
        check_target("2026-12-06T05:00:00Z", [], [], NOW)


def test_a_gap_cuts_the_window_until_the_next_base_backup() -> None:
    gap = Gap(t(4), t(9), "000000010000000000000042")
    window = restorable_window([B1, B2], [gap], t(11))
    assert window == [Interval(t(1, 10), t(4)), Interval(t(9, 10), t(11))]
    assert check_target("2026-12-06T03:00:00Z", window, [gap], NOW) == t(3)
    assert check_target("2026-12-06T10:00:00+00:00", window, [gap], NOW) == t(10)
    with pytest.raises(
        TargetRefusedError, match=r"inside a gap .*04:00:00Z to 2026-12-06T09:00:00Z.*000000010000000000000042"
    ):
        check_target("2026-12-06T06:00:00Z", window, [gap], NOW)
    # Between the gap's end (the backup's start) and that backup's end: not restorable, and said so.
    with pytest.raises(TargetRefusedError, match="outside the restorable window"):
        check_target("2026-12-06T09:05:00Z", window, [gap], NOW)


def test_an_open_gap_leaves_nothing_after_it_and_a_backup_inside_it_is_unusable() -> None:
    gap = Gap(t(4))
    inside = BaseBackup("b-in-gap", t(5), t(5, 10))
    assert restorable_window([B1, inside], [gap], t(11)) == [Interval(t(1, 10), t(4))]
    with pytest.raises(TargetRefusedError, match="the next base backup"):
        check_target("2026-12-06T10:00:00Z", restorable_window([B1], [gap], t(11)), [gap], NOW)


def test_overlapping_backups_merge_into_one_span() -> None:
    assert restorable_window([B1, B2], [], t(11)) == [Interval(t(1, 10), t(11))]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2026-12-06T10:00:00", "no UTC offset"),
        ("2026-12-06 10:00", "no UTC offset"),
        ("2026-12-06", "no UTC offset"),
        ("yesterday", "not an RFC 3339 time"),
        ("2026-12-06T13:00:00Z", "in the future"),
        ("2026-12-06T23:00:00+09:00", "in the future"),
        ("2026-12-06T00:30:00Z", "outside the restorable window: 2026-12-06T01:10:00Z to 2026-12-06T11:00:00Z"),
        ("2026-12-06T11:30:00Z", "outside the restorable window"),
    ],
)
def test_a_target_is_refused_with_the_reason(text: str, reason: str) -> None:
    window = restorable_window([B1], [], t(11))
    with pytest.raises(TargetRefusedError, match=reason.replace("(", r"\(")):
        check_target(text, window, [], NOW)


def test_a_target_keeps_its_offset_and_reaches_the_scripts_in_utc() -> None:
    window = restorable_window([B1], [], t(11))
    target = check_target("2026-12-06T15:30:00+09:00", window, [], NOW)
    assert target == t(6, 30) and parse_target("2026-12-06T06:30:00z") == target
    # PostgreSQL's recovery_target_time refuses 'Z': the scripts get a numeric offset.
    assert recovery_time(target) == "2026-12-06 06:30:00.000000+00"
    assert recovery_time(target.astimezone(JST)) == "2026-12-06 06:30:00.000000+00"


def test_backups_and_gaps_are_read_as_barman_and_the_spool_write_them() -> None:
    listing = {
        "backups_list": [
            {
                "backup_id": "20261206T011000",
                "status": "DONE",
                "begin_time": "Sun Dec  6 01:00:00 2026",
                "begin_time_iso": "2026-12-06T01:00:00+00:00",
                "end_time_iso": "2026-12-06T01:10:00+00:00",
            },
            {"backup_id": "20261206T020000", "status": "FAILED", "begin_time_iso": "2026-12-06T02:00:00+00:00"},
        ]
    }
    assert backups_from_barman(json.dumps(listing)) == [BaseBackup("20261206T011000", t(1), t(1, 10))]
    gap = gap_from_record("start=2026-12-06T04:00:00Z\nfirst=000000010000000000000042\nopened=2026-12-06T04:01:00Z\n")
    assert gap == Gap(t(4), None, "000000010000000000000042")
    closed = gap_from_record("start=2026-12-06T04:00:00Z\nfirst=x\nend=2026-12-06T09:00:00Z\n")
    assert closed.end == t(9)


# --- the rendered settings and scripts ----------------------------------------------------------------------------


def test_the_server_archives_into_the_spool_within_a_minute() -> None:
    conf = pitr.archive_settings(pitr.PitrSettings("15"))
    lines = dict(line.split(" = ", 1) for line in conf.splitlines() if " = " in line)
    assert lines["archive_mode"] == "on"
    assert 0 < int(lines["archive_timeout"]) <= 60
    assert lines["archive_command"] == f'\'/bin/sh /etc/postgresql/15/main/{pitr.SPOOL_COMMAND} "%p" "%f"\''


@pytest.mark.parametrize(
    "bad",
    [
        {"archive_timeout_seconds": 61},
        {"archive_timeout_seconds": 0},
        {"spool_cap_mb": 16},
        {"heartbeat_seconds": 90},
        {"poll_seconds": 0},
    ],
)
def test_settings_that_would_lose_the_bound_are_refused(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        pitr.PitrSettings("15", **bad)  # type: ignore[arg-type]


def test_every_rendered_pitr_script_passes_shellcheck() -> None:
    if shell_scripts.shellcheck_available() is None:
        pytest.skip("shellcheck is not installed (make deb-shellcheck, which make unit runs)")
    scripts = [
        shell_scripts.Script(f"pitr: {name}", text, "sh")
        for name, text in pitr.scripts(pitr.PitrSettings("15")).items()
        if name.endswith(".sh")
    ]
    assert len(scripts) == 8
    assert shell_scripts.check(scripts) == []


def test_the_python_steps_are_valid_python() -> None:
    compile(pitr.HEARTBEAT, "heartbeat.py", "exec")
    compile(pitr.PUT_RECORD, "put-record.py", "exec")
