"""Issue 13: the preStop hook's timing is data, and it always fits the grace period the pod is given.

ORCA's monitor gets part of the grace period; PostgreSQL's fast stop must always keep enough of it, or the kubelet's
SIGKILL lands in the middle of its checkpoint and the next start runs crash recovery.
"""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from orca_platform.backup.orca_image import POSTGRES_FAST_STOP_SECONDS, stop_script, stop_timing
from orca_platform.model.settings import Orca

GRACE = Orca.model_fields["termination_grace_seconds"].metadata
LOW = next(m.ge for m in GRACE if getattr(m, "ge", None) is not None)
HIGH = next(m.le for m in GRACE if getattr(m, "le", None) is not None)


@given(st.integers(min_value=LOW, max_value=HIGH))
def test_the_monitor_never_takes_what_postgres_needs(grace: int) -> None:
    timing = stop_timing(grace)
    assert timing.monitor_wait_seconds >= 5, "ORCA's monitor gets a real chance to stop"
    assert timing.postgres_seconds >= POSTGRES_FAST_STOP_SECONDS
    assert timing.monitor_wait_seconds + timing.postgres_seconds == grace


@given(st.integers(min_value=LOW, max_value=HIGH))
def test_the_rendered_hook_waits_what_the_timing_says(grace: int) -> None:
    script = stop_script("12", grace)
    waits = [int(n) for n in re.findall(r"\[ \$i -lt ([0-9]+) \]", script)]
    assert waits == [stop_timing(grace).monitor_wait_seconds]
    # The fast stop comes after the wait, never a smart one.
    assert script.index("pg_ctlcluster 12 main stop -m fast") > script.index("pgrep -x monitor")
