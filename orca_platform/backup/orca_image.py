"""The ORCA image contract this platform assumes: state directories, start and stop. Pure data and scripts.

Its ports are in orca_platform.conventions, which the stdlib-only audit rules can import.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

# (subPath on the clinic volume, mount path): everything ORCA and PostgreSQL write that must outlive a pod.
# /etc/postgresql is Debian's per-cluster config (postgresql.conf, pg_hba.conf): without it the data is unusable.
STATE_DIRS: tuple[tuple[str, str], ...] = (
    ("postgresql-data", "/var/lib/postgresql"),
    ("postgresql-conf", "/etc/postgresql"),
    ("jma-conf", "/etc/jma-receipt"),
    ("jma-data", "/var/lib/jma-receipt"),
    ("jma-log", "/var/log/jma-receipt"),
    # pg_ctlcluster writes its server log here and refuses to start PostgreSQL when it cannot.
    ("postgresql-log", "/var/log/postgresql"),
)
# Scratch space a read-only root file system still needs (sockets, pid files, jma-backupcluster's tarballs).
SCRATCH_DIRS: tuple[tuple[str, str], ...] = (
    ("tmp", "/tmp"),  # noqa: S108 - paths inside the container
    ("run", "/run"),
    ("var-tmp", "/var/tmp"),  # noqa: S108
)
SEED_MARKER = ".orca-platform-seeded"
STATE_MOUNT = "/state"
# Where a pod that mounts the whole clinic volume sees it; the scripts read it from $STATE, set in the pod spec.
STATE_ENV = "STATE"
# Set to 1 when the stack's history says this clinic had data: an empty volume is then a wrong volume, never new.
EXPECT_DATA_ENV = "EXPECT_DATA"
# One file per pre-upgrade backup run at the volume's root: its first line is the Job's uid.
BACKUP_MARKERS = ".orca-platform-pre-upgrade"

_SEED_FUNCTION = f"""\
set -eu
# Seed each state directory once, and never over anything: an unmarked directory must be absent or empty. The
# copy lands in a directory of its own first and is renamed into place with its marker, so a crash mid-copy leaves
# nothing that looks seeded (its leftover is ours alone, by name, and is cleared on the next try).
seed() {{
  target="${STATE_ENV}/$1"
  source="$2"
  if [ -e "$target/{SEED_MARKER}" ]; then return 0; fi
  if [ -d "$target" ] && [ -n "$(ls -A "$target")" ]; then
    echo "seed-state: REFUSED: $target (mounted at $source) is not empty and has no {SEED_MARKER} marker." >&2
    echo "seed-state: it may hold this clinic's data from elsewhere (a copied volume, a renamed directory)." >&2
    echo "seed-state: nothing was changed; ORCA will not start on this volume (docs/data-safety.md, seeding)." >&2
    exit 1
  fi
  if [ "${{{EXPECT_DATA_ENV}:-0}}" = 1 ]; then
    echo "seed-state: REFUSED: $target holds nothing, but this clinic had data ({EXPECT_DATA_ENV}=1)." >&2
    echo "seed-state: this is not the clinic's volume, or its data is gone: restore it, never seed it." >&2
    echo "seed-state: nothing was changed; ORCA will not start on this volume (docs/data-safety.md, seeding)." >&2
    exit 1
  fi
  partial="${STATE_ENV}/.seeding-$1"
  rm -rf "$partial"
  mkdir -p "$partial"
  if [ -d "$source" ]; then cp -a "$source/." "$partial/"; fi
  touch "$partial/{SEED_MARKER}"
  if [ -d "$target" ]; then rmdir "$target"; fi
  mv "$partial" "$target"
  echo "seed-state: seeded $target from the image's $source"
}}
"""


def seed_script() -> str:
    """First start of a volume: copy what the image ships in each state directory onto it, once per directory,
    only into an empty directory, and not at all when the clinic is known to have had data."""
    calls = [f"seed {sub} {path}" for sub, path in STATE_DIRS]
    return _SEED_FUNCTION + "\n".join(calls) + "\n"


# The ORCA pod's first init container: the pod template it belongs to was backed up on this very volume, by the
# Job run Pulumi created for it (its uid is in the template). Whatever changed the Deployment without that Job
# (`pulumi up --target`, kubectl edit) stops here, before anything touches the data.
GATE_SCRIPT = f"""\
set -eu
marker="${STATE_ENV}/{BACKUP_MARKERS}/$BACKUP_KEY"
if [ ! -f "$marker" ]; then
  echo "backup-gate: REFUSED: no pre-upgrade backup $BACKUP_KEY on this volume: this pod template reached the" >&2
  echo "backup-gate: volume without its backup Job (pulumi up --target, or a change made outside Pulumi)." >&2
  echo "backup-gate: run a full pulumi up (docs/data-safety.md, pre-upgrade backup)." >&2
  exit 1
fi
if [ "$(head -n 1 "$marker")" != "$BACKUP_JOB" ]; then
  echo "backup-gate: REFUSED: the backup $BACKUP_KEY on this volume is from job $(head -n 1 "$marker")," >&2
  echo "backup-gate: not from $BACKUP_JOB, the run this template waited for: run a full pulumi up." >&2
  exit 1
fi
echo "backup-gate: pre-upgrade backup $BACKUP_KEY present (job $BACKUP_JOB)"
"""


# What a fast PostgreSQL stop needs after ORCA's monitor is gone: a checkpoint of the dirty buffers, not published as
# a figure (shared/orca-facts.md), so kept generous; the grace period is sized so it is always left.
POSTGRES_FAST_STOP_SECONDS = 15


@dataclass(frozen=True)
class StopTiming:
    """How the preStop hook spends the pod's grace period: ORCA's monitor first, then PostgreSQL's fast stop."""

    grace_seconds: int
    monitor_wait_seconds: int

    @property
    def postgres_seconds(self) -> int:
        """What is left for `pg_ctlcluster ... stop -m fast` before the kubelet's SIGKILL."""
        return self.grace_seconds - self.monitor_wait_seconds


def stop_timing(grace_seconds: int) -> StopTiming:
    """Half of (grace - 30 s), at least 5 s, for the monitor; the rest, never less than the fast stop needs, for
    PostgreSQL. A hook that waited the whole grace period for the monitor would leave PostgreSQL to SIGKILL."""
    return StopTiming(grace_seconds, max(grace_seconds - 30, 10) // 2)


def stop_script(postgres_version: str, grace_seconds: int) -> str:
    """preStop: ORCA's monitor ignores SIGTERM and stops on SIGUSR1; then PostgreSQL 'fast', not 'smart' (which
    would wait for ORCA's open sessions until the kubelet kills it and the next start runs crash recovery)."""
    timing = stop_timing(grace_seconds)
    return (
        "pkill -USR1 -x monitor || true; "
        "i=0; while pgrep -x monitor >/dev/null && "
        f"[ $i -lt {timing.monitor_wait_seconds} ]; do sleep 1; i=$((i+1)); done; "
        f"pg_ctlcluster {shlex.quote(postgres_version)} main stop -m fast || true"
    )


def startup_await_seconds(startup_budget_seconds: int, termination_grace_seconds: int) -> int:
    """How long Pulumi may wait for a clinic's server to become ready: an old pod's stop, then the start-up budget.

    Both the Deployment and the Service wait for it: pulumi-kubernetes awaits a Service until its endpoints are ready
    (provider/pkg/await/service.go, 10 minutes by default), and a new server may take its whole start-up budget.
    """
    return startup_budget_seconds + termination_grace_seconds + 300
