"""The window a clinic can actually be restored to, and the check of a requested point in time. Pure.

Restorable means: a base backup that ended at or before the target, and every WAL file from that backup's start
up to the target in the archive. So each usable base backup opens an interval [its end, E], where E is the start of
the first gap after the backup began, or the newest commit known archived (the shipper's heartbeat), whichever is
first. A backup begun inside a gap is unusable: the WAL from its start was let go. The window is the union.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class BaseBackup:
    backup_id: str
    begin: dt.datetime
    end: dt.datetime


@dataclass(frozen=True)
class Gap:
    """WAL let go at the spool's cap: from `start` (the last file spooled) to `end` (the next base backup's
    start), or still open (None) until that backup."""

    start: dt.datetime
    end: dt.datetime | None = None
    first_wal: str = ""


@dataclass(frozen=True)
class Interval:
    start: dt.datetime
    end: dt.datetime

    def __str__(self) -> str:
        return f"{_fmt(self.start)} to {_fmt(self.end)}"


class TargetRefusedError(ValueError):
    """A point in time that cannot be restored, with the reason and what can."""


def _fmt(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _aware(t: dt.datetime, what: str) -> dt.datetime:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{what} {t.isoformat()} has no UTC offset")
    return t


def restorable_window(
    backups: Iterable[BaseBackup], gaps: Iterable[Gap], archived_until: dt.datetime | None
) -> list[Interval]:
    """The restorable intervals, merged and in order; empty when nothing can be restored."""
    if archived_until is None:
        return []
    _aware(archived_until, "archived_until")
    gap_list = sorted(gaps, key=lambda g: g.start)
    intervals: list[Interval] = []
    for b in sorted(backups, key=lambda b: b.begin):
        _aware(b.begin, f"base backup {b.backup_id} begin")
        _aware(b.end, f"base backup {b.backup_id} end")
        if any(g.start <= b.begin and (g.end is None or g.end > b.begin) for g in gap_list):
            continue  # begun inside a gap
        end = min([archived_until, *(g.start for g in gap_list if g.start >= b.begin)])
        if end >= b.end:
            intervals.append(Interval(b.end, end))
    merged: list[Interval] = []
    for i in sorted(intervals, key=lambda i: i.start):
        if merged and i.start <= merged[-1].end:
            merged[-1] = Interval(merged[-1].start, max(merged[-1].end, i.end))
        else:
            merged.append(i)
    return merged


def parse_target(text: str) -> dt.datetime:
    """An RFC 3339 time with its offset ('2026-12-06T10:15:00+09:00', 'Z' for UTC)."""
    raw = text.strip()
    try:
        value = dt.datetime.fromisoformat(raw.replace("z", "Z"))
    except ValueError:
        raise TargetRefusedError(
            f"{text!r} is not an RFC 3339 time: write it as 2026-12-06T10:15:00+09:00 (with its offset)"
        ) from None
    if "T" not in raw.upper() or value.tzinfo is None:
        raise TargetRefusedError(
            f"{text!r} has no UTC offset: a clinic's clock and the cluster's differ, so the offset is required "
            "(e.g. 2026-12-06T10:15:00+09:00 for Japan time, or ...Z for UTC)"
        )
    return value


def check_target(text: str, window: Sequence[Interval], gaps: Iterable[Gap], now: dt.datetime) -> dt.datetime:
    """The target as an aware time, or TargetRefusedError saying why: future, inside a gap, outside the window."""
    target = parse_target(text)
    _aware(now, "now")
    if target > now:
        raise TargetRefusedError(f"{text} is in the future (now is {_fmt(now)}): a restore can only go back in time")
    for g in gaps:
        if g.start <= target and (g.end is None or target < g.end):
            until = _fmt(g.end) if g.end else "the next base backup"
            raise TargetRefusedError(
                f"{text} is inside a gap in the WAL archive ({_fmt(g.start)} to {until}, from WAL {g.first_wal}): "
                f"the spool reached its cap while the object store was away; pick a time outside it"
            )
    if any(i.start <= target <= i.end for i in window):
        return target
    spans = "; ".join(str(i) for i in window) or "none (no base backup with its archived WAL yet)"
    raise TargetRefusedError(f"{text} is outside the restorable window: {spans}")


def recovery_time(target: dt.datetime) -> str:
    """The target as the restore scripts take it: UTC with a numeric offset. PostgreSQL's recovery_target_time
    refuses a zone abbreviation such as 'Z' (measured with 15: "invalid value for parameter")."""
    return _aware(target, "target").astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")


def backups_from_barman(listing: str) -> list[BaseBackup]:
    """The completed base backups in `barman-cloud-backup-list --format json`: its `*_time_iso` fields carry the
    offset (`*_time` are ctime, without one: barman/infofile.py, BackupInfo.to_json)."""
    found = []
    for b in json.loads(listing).get("backups_list", []):
        if b.get("status") == "DONE" and b.get("begin_time_iso") and b.get("end_time_iso"):
            begin = _aware(dt.datetime.fromisoformat(b["begin_time_iso"]), "begin_time_iso")
            end = _aware(dt.datetime.fromisoformat(b["end_time_iso"]), "end_time_iso")
            found.append(BaseBackup(str(b["backup_id"]), begin, end))
    return found


def gap_from_record(text: str) -> Gap:
    """A gap as the spool records it (`start=`, `first=`, `end=` lines, UTC; no `end` while it is open)."""
    fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    end = fields.get("end")
    return Gap(
        start=_aware(dt.datetime.fromisoformat(fields["start"]), "gap start"),
        end=_aware(dt.datetime.fromisoformat(end), "gap end") if end else None,
        first_wal=fields.get("first", ""),
    )
