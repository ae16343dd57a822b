"""The ORCA image contract this platform assumes: ports, state directories, start and stop. Pure data and scripts."""

from __future__ import annotations

import shlex

GLSERVER_PORT = 8000  # glserver: monsiaj client (JSON-RPC over HTTP) and the HTTP API
PUSH_PORT = 9400  # PUSH notifications (WebSocket /ws), unauthenticated: never beyond the clinic's own networks
POSTGRES_PORT = 5432  # inside the pod only
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


def seed_script() -> str:
    """First start of a volume: copy what the image ships in each state directory onto it, once per directory."""
    lines = ["set -eu"]
    for sub, path in STATE_DIRS:
        target = f"{STATE_MOUNT}/{sub}"
        lines.append(
            f"if [ ! -e {target}/{SEED_MARKER} ]; then mkdir -p {target}; "
            f"if [ -d {path} ]; then cp -a {path}/. {target}/; fi; touch {target}/{SEED_MARKER}; fi"
        )
    return "\n".join(lines)


def stop_script(postgres_version: str, grace_seconds: int) -> str:
    """preStop: ORCA's monitor ignores SIGTERM and stops on SIGUSR1; then PostgreSQL 'fast', not 'smart' (which
    would wait for ORCA's open sessions until the kubelet kills it and the next start runs crash recovery)."""
    wait = max(grace_seconds - 30, 10)
    return (
        "pkill -USR1 -x monitor || true; "
        f"i=0; while pgrep -x monitor >/dev/null && [ $i -lt {wait // 2} ]; do sleep 1; i=$((i+1)); done; "
        f"pg_ctlcluster {shlex.quote(postgres_version)} main stop -m fast || true"
    )


def startup_await_seconds(startup_budget_seconds: int, termination_grace_seconds: int) -> int:
    """How long Pulumi may wait for a clinic's server to become ready: an old pod's stop, then the start-up budget.

    Both the Deployment and the Service wait for it: pulumi-kubernetes awaits a Service until its endpoints are ready
    (provider/pkg/await/service.go, 10 minutes by default), and a new server may take its whole start-up budget.
    """
    return startup_budget_seconds + termination_grace_seconds + 300
