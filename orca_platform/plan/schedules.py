"""Cron schedules: each clinic's snapshots staggered within the stack's window, and what a schedule fires per hour.

Staggering moves a clinic's snapshot start by a stable offset (a hash of its id, so the same clinic always gets the
same minute) within `backup.snapshotStaggerMinutes` after the stack's schedule. Changing a clinic's schedule only
updates its CronJob: no volume, snapshot or job history is touched.
"""

from __future__ import annotations

import hashlib
import itertools
import re

_STEP = re.compile(r"^(\*|[0-9]+-[0-9]+|[0-9]+)/([0-9]+)$")
_RANGE = re.compile(r"^([0-9]+)-([0-9]+)$")


def expand(field: str, low: int, high: int) -> set[int] | None:
    """The values a cron field selects (*, n, a-b, */n, a-b/n and lists of them), or None if not understood."""
    values: set[int] = set()
    for item in field.split(","):
        step = 1
        part = item
        m = _STEP.match(item)
        if m:
            part, step = m[1], int(m[2])
            if step == 0:
                return None
        if part == "*":
            start, end = low, high
        elif _RANGE.match(part):
            start, end = (int(x) for x in part.split("-"))
        elif part.isdigit():
            start = int(part)
            end = high if m else start
        else:
            return None
        if not (low <= start <= end <= high):
            return None
        values.update(range(start, end + 1, step))
    return values


def stable_offset(clinic_id: str, window_minutes: int) -> int:
    """0 <= offset < window, the same for an id on every run and every machine (not Python's salted hash())."""
    if window_minutes <= 0:
        return 0
    digest = hashlib.sha256(f"snapshot-stagger/{clinic_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % window_minutes


def _interval_minutes(hours: set[int]) -> int:
    """The shortest gap between two runs of a once-an-hour schedule, wrapping at midnight."""
    ordered = sorted(hours)
    if len(ordered) == 1:
        return 24 * 60
    gaps = [b - a for a, b in itertools.pairwise(ordered)] + [ordered[0] + 24 - ordered[-1]]
    return min(gaps) * 60


def staggered(schedule: str, clinic_id: str, window_minutes: int) -> str:
    """The schedule moved by the clinic's offset, never past the next run (nor across midnight when the day fields
    restrict the day). A schedule whose minute or hour field this does not understand is kept as it is."""
    fields = schedule.split()
    if window_minutes <= 0 or len(fields) != 5 or not fields[0].isdigit():
        return schedule
    minute = int(fields[0])
    hours = expand(fields[1], 0, 23)
    if hours is None or minute > 59:
        return schedule
    whole_days = fields[2:] == ["*", "*", "*"]
    room = _interval_minutes(hours)
    if not whole_days:
        # Moving a run past midnight would move it to another day of the month or week: stay inside the hour.
        room = min(room, 60 - minute)
    offset = stable_offset(clinic_id, min(window_minutes, room))
    total = minute + offset
    if total < 60:
        return " ".join([str(total), *fields[1:]])
    shifted = sorted((h + total // 60) % 24 for h in hours)
    return " ".join([str(total % 60), ",".join(str(h) for h in shifted), *fields[2:]])


def runs_per_hour(schedule: str) -> list[int] | None:
    """How many times the schedule fires in each hour of a day that it runs on (the worst day), or None."""
    fields = schedule.split()
    if len(fields) != 5:
        return None
    minutes = expand(fields[0], 0, 59)
    hours = expand(fields[1], 0, 23)
    if minutes is None or hours is None:
        return None
    return [len(minutes) if h in hours else 0 for h in range(24)]
