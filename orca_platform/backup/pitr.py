"""Continuous WAL archiving and point-in-time recovery: the PostgreSQL settings and the scripts, as text. Pure.

The ORCA container never holds an Azure token. PostgreSQL's archive_command only puts each WAL file into a spool
on the clinic volume (temp file, fsync, rename); a native sidecar of the ORCA pod (an init container with
`restartPolicy: Always`, so it outlives PostgreSQL's shutdown) ships the spool with barman-cloud under the clinic's
workload identity, heartbeats, takes the base backups from inside the pod over the local socket, and writes the
metrics the alerts read. A spool cap turns a long object-store outage into a recorded gap, never a full volume.

Archive layout: `<account>/<container>/<clinic>/<generation>/{base,wals}` (barman-cloud's `<url>/<server_name>/...`,
the server name being the volume generation): a restore starts a new timeline on a new generation, so two restores
from one point never write the same WAL names under one prefix.
"""

from __future__ import annotations

from dataclasses import dataclass

# Paths in the ORCA image, on the clinic volume's postgresql-data subPath (outside PGDATA, so a base backup never
# carries the spool): /var/lib/postgresql is STATE_DIRS' postgresql-data.
SPOOL_DIR = "/var/lib/postgresql/orca-wal-spool"
RESTORE_WAL_DIR = "/var/lib/postgresql/orca-wal-restore"
SPOOL_SUBDIR = "postgresql-data/orca-wal-spool"  # the same directory, from a whole-volume mount ($STATE)
RESTORE_WAL_SUBDIR = "postgresql-data/orca-wal-restore"
ARCHIVE_FRAGMENT = "90-orca-platform-archive.conf"
RECOVERY_FRAGMENT = "95-orca-platform-recovery.conf"
SPOOL_COMMAND = "orca-platform-spool-wal.sh"
FETCH_COMMAND = "orca-platform-fetch-wal.sh"
METRICS_FILE = "metrics"
CLOUD_PROVIDER = "azure-blob-storage"
# Metric names the shipper writes (Prometheus text format) and the alert rules read.
METRIC_ARCHIVED_UNTIL = "orca_wal_archived_until_timestamp_seconds"
METRIC_ARCHIVE_FAILURES = "orca_wal_archive_failures_total"
METRIC_SPOOL_BYTES = "orca_wal_spool_bytes"
METRIC_SPOOL_CAP = "orca_wal_spool_cap_bytes"
METRIC_GAP_OPEN = "orca_wal_gap_open"
METRIC_GAPS = "orca_wal_gaps_total"
METRIC_BASE_BACKUP = "orca_base_backup_last_success_timestamp_seconds"
METRIC_BASE_FAILURES = "orca_base_backup_failures_total"


# What the WAL shipper sidecar asks of its node, beside ORCA (a native sidecar's requests add to the pod's).
# Measured (docs/recovery.md): a WAL upload 0.35 s of CPU and 57 MB peak, a base backup about 60 MB peak; 64 MiB
# requested, 256 MiB limit: past its request only the sidecar is at risk under node pressure, and it restarts with
# the spool intact. Not yet counted by the planner (capacity.node_fit): counted, the dev sample holds 19 clinics
# per Standard_D8s_v5 node (memory), below its density target of 20, even at 32 MiB; prod holds 22.
SHIPPER_CPU_REQUEST_M = 50
SHIPPER_MEMORY_REQUEST_MIB = 64


@dataclass(frozen=True)
class PitrSettings:
    """What the scripts are rendered with. archive_timeout bounds the WAL at risk on a busy server; the heartbeat
    writes a committed transaction on an idle one, so recovery always finds a commit to stop at and archiving is
    watched by time, not by traffic."""

    postgres_version: str
    archive_timeout_seconds: int = 60
    heartbeat_seconds: int = 30
    spool_cap_mb: int = 4096
    base_backup_hours: int = 24
    poll_seconds: int = 5
    # One WAL upload's limit: the Azure SDK retries an unreachable endpoint for minutes, and a shipper stuck in one
    # call would neither heartbeat nor report its failures.
    ship_timeout_seconds: int = 60
    recovery_timeout_seconds: int = 3600

    def __post_init__(self) -> None:
        if not 1 <= self.archive_timeout_seconds <= 60:
            raise ValueError("archive_timeout must be 1..60 s: it bounds the WAL a lost volume takes with it")
        if self.heartbeat_seconds < 1 or self.poll_seconds < 1 or self.base_backup_hours < 1:
            raise ValueError("heartbeat, poll and base-backup intervals must be positive")
        # A commit to stop at in every archive_timeout: the archived-until time then trails by one at most.
        if self.heartbeat_seconds > self.archive_timeout_seconds:
            raise ValueError("the heartbeat must come at least every archive_timeout")
        # Two 16 MB segments at least: below that every segment would be a gap.
        if self.spool_cap_mb < 32:
            raise ValueError("the spool cap must hold at least two WAL segments (32 MB)")

    @property
    def conf_dir(self) -> str:
        return f"/etc/postgresql/{self.postgres_version}/main"

    @property
    def data_dir(self) -> str:
        return f"/var/lib/postgresql/{self.postgres_version}/main"


def archive_settings(s: PitrSettings) -> str:
    """The postgresql.conf fragment every clinic's server starts with (Debian's postgresql.conf has
    `include_dir = 'conf.d'`: postgresql-common's createcluster.conf, add_include_dir)."""
    return f"""\
# orca-platform: continuous WAL archiving into the clinic volume's spool; a sidecar ships it (written at each start)
wal_level = replica
archive_mode = on
archive_timeout = {s.archive_timeout_seconds}
archive_command = '/bin/sh {s.conf_dir}/{SPOOL_COMMAND} "%p" "%f"'
"""


def spool_script(s: PitrSettings) -> str:
    """archive_command: one WAL file into the spool, atomically and durably, or a recorded gap when the spool is
    at its cap. Runs as postgres in the data directory; exit 0 tells PostgreSQL the file is safe to recycle."""
    cap_kb = s.spool_cap_mb * 1024
    return f"""\
set -eu
src=$1
name=$2
spool={SPOOL_DIR}
final="$spool/$name"
stamp=$(date -u +%Y-%m-%dT%H:%M:%SZ)
if [ -e "$final" ]; then
  # A retry after a crash between the rename and PostgreSQL's bookkeeping: the same bytes are already spooled.
  if cmp -s "$src" "$final"; then echo "spool-wal: $name already spooled"; exit 0; fi
  echo "spool-wal: REFUSED: $final is already spooled with other contents (another server on this volume?)" >&2
  exit 1
fi
case "$name" in
  *.history) ;;
  *)
    used_kb=$(du -sk "$spool" | cut -f1)
    size_kb=$(($(wc -c < "$src") / 1024))
    if [ $((used_kb + size_kb)) -gt {cap_kb} ]; then
      # Over the cap (the object store has been away too long): the file is let go and the gap recorded once,
      # starting when the last file was spooled; nothing after it restores until the next base backup.
      if [ ! -e "$spool/gaps/open" ]; then
        start=$(cat "$spool/last-spooled" 2>/dev/null || echo 1970-01-01T00:00:00Z)
        printf 'start=%s\\nfirst=%s\\nopened=%s\\n' "$start" "$name" "$stamp" > "$spool/gaps/.open.tmp"
        mv "$spool/gaps/.open.tmp" "$spool/gaps/open"
        sync "$spool/gaps"
      fi
      echo "spool-wal: spool of $spool is at its cap ({s.spool_cap_mb} MB): $name dropped, gap recorded" >&2
      exit 0
    fi ;;
esac
# Temp file, fsync, rename, fsync of the directory: the shipper sees a whole file or none, after a crash too.
# (coreutils' sync with a file argument fsyncs that file.)
tmp="$spool/.$name.partial"
rm -f "$tmp"
cp "$src" "$tmp"
sync "$tmp"
mv "$tmp" "$final"
sync "$spool"
printf '%s\\n' "$stamp" > "$spool/.last-spooled.tmp"
mv "$spool/.last-spooled.tmp" "$spool/last-spooled"
"""


def install_script(s: PitrSettings) -> str:
    """Init container (ORCA image, whole volume at $STATE) before the server: the archive settings and the spool
    command onto the volume's cluster configuration, and the spool directory, at every start."""
    v = s.postgres_version
    return f"""\
set -eu
conf="$STATE/postgresql-conf/{v}/main"
if [ ! -f "$conf/postgresql.conf" ]; then echo "archive: no cluster configuration at $conf" >&2; exit 1; fi
put() {{
  cp "$1" "$2.tmp"
  chmod "$3" "$2.tmp"
  mv "$2.tmp" "$2"
}}
mkdir -p "$conf/conf.d"
put "$SCRIPTS/archive.conf" "$conf/conf.d/{ARCHIVE_FRAGMENT}" 0644
put "$SCRIPTS/spool-wal.sh" "$conf/{SPOOL_COMMAND}" 0755
spool="$STATE/{SPOOL_SUBDIR}"
mkdir -p "$spool/gaps" "$spool/shipper"
chown -R postgres:postgres "$spool"
chmod 0750 "$spool"
echo "archive: WAL archiving of $CLINIC set up (spool $spool)"
"""


# barman-cloud's options for Azure: --azure-credential default is DefaultAzureCredential, the pod's workload
# identity (barman/clients/cloud_cli.py); without it (the tests' emulator) barman reads
# AZURE_STORAGE_CONNECTION_STRING (barman/cloud_providers/azure_blob_storage.py, _reinit_session).
_CLOUD = f"""\
cloud() {{
  limit=$1
  tool=$2
  shift 2
  set -- --cloud-provider {CLOUD_PROVIDER} "$@"
  if [ -n "${{AZURE_AUTH_MODE:-}}" ]; then set -- --azure-credential "$AZURE_AUTH_MODE" "$@"; fi
  timeout "$limit" "$tool" "$@"
}}
"""


def base_backup_script(s: PitrSettings) -> str:
    """A base backup from inside the pod (the sidecar): barman-cloud-backup over the local socket ($PGHOST), as
    the postgres user by peer authentication, into this generation's prefix. Prints the time it started."""
    return (
        "set -eu\n"
        + _CLOUD
        + """\
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
cloud 86400 barman-cloud-backup --gzip --immediate-checkpoint "$ARCHIVE_URL" "$SERVER_NAME"
echo "base-backup: $SERVER_NAME of $CLINIC stored (started $started)"
"""
    )


def shipper_script(s: PitrSettings) -> str:
    """The native sidecar's loop (tools image, as the postgres user): ship, heartbeat, base backups, metrics."""
    cap_bytes = s.spool_cap_mb * 1024 * 1024
    interval = s.base_backup_hours * 3600
    return (
        f"""\
set -eu
export LC_ALL=C
spool={SPOOL_DIR}
state="$spool/shipper"
metrics="${{METRICS_DIR:-$state}}"
mkdir -p "$state" "$metrics" "$spool/gaps"
failures=0
base_failures=0
last_beat=0
"""
        + _CLOUD
        + f"""\
put() {{ printf '%s\\n' "$2" > "$state/.$1.tmp"; mv "$state/.$1.tmp" "$state/$1"; }}
get() {{ cat "$state/$1" 2>/dev/null || echo "$2"; }}
epoch() {{ date -u -d "$1" +%s; }}
heartbeat() {{
  python3 "$SCRIPTS/heartbeat.py" "$state/postmaster-start" >> "$state/heartbeats"
}}
# The newest heartbeat whose WAL file has been shipped: the archive holds every commit up to its time.
advance() {{
  shipped=$1
  keep=""
  while read -r wal stamp; do
    if [ "$(printf '%s\\n%s\\n' "$wal" "$shipped" | sort | tail -n 1)" = "$shipped" ]; then
      put archived-until "$stamp"
    else
      keep="$keep$wal $stamp
"
    fi
  done < "$state/heartbeats"
  printf '%s' "$keep" > "$state/.heartbeats.tmp"
  mv "$state/.heartbeats.tmp" "$state/heartbeats"
}}
write_metrics() {{
  used=$(($(du -sk "$spool" | cut -f1) * 1024))
  until_s=0
  if [ -e "$state/archived-until" ]; then until_s=$(epoch "$(get archived-until '')"); fi
  base_s=0
  if [ -e "$state/last-base" ]; then base_s=$(epoch "$(get last-base '')"); fi
  open=0
  if [ -e "$spool/gaps/open" ]; then open=1; fi
  gaps=0
  for g in "$spool"/gaps/open "$spool"/gaps/closed-*; do if [ -e "$g" ]; then gaps=$((gaps + 1)); fi; done
  cat > "$metrics/.{METRICS_FILE}.tmp" <<METRICS
# TYPE {METRIC_ARCHIVED_UNTIL} gauge
{METRIC_ARCHIVED_UNTIL} $until_s
# TYPE {METRIC_ARCHIVE_FAILURES} counter
{METRIC_ARCHIVE_FAILURES} $failures
# TYPE {METRIC_SPOOL_BYTES} gauge
{METRIC_SPOOL_BYTES} $used
# TYPE {METRIC_SPOOL_CAP} gauge
{METRIC_SPOOL_CAP} {cap_bytes}
# TYPE {METRIC_GAP_OPEN} gauge
{METRIC_GAP_OPEN} $open
# TYPE {METRIC_GAPS} gauge
{METRIC_GAPS} $gaps
# TYPE {METRIC_BASE_BACKUP} gauge
{METRIC_BASE_BACKUP} $base_s
# TYPE {METRIC_BASE_FAILURES} counter
{METRIC_BASE_FAILURES} $base_failures
METRICS
  mv "$metrics/.{METRICS_FILE}.tmp" "$metrics/{METRICS_FILE}"
}}
touch "$state/heartbeats"
write_metrics
# The metrics file over HTTP (/metrics) for the cluster's Prometheus, when the pod asks for it.
if [ -n "${{METRICS_PORT:-}}" ]; then
  python3 -m http.server --bind "${{METRICS_BIND:-0.0.0.0}}" "$METRICS_PORT" --directory "$metrics" > /dev/null 2>&1 &
fi
while :; do
  pending=0
  for f in "$spool"/[0-9A-F]*; do
    if [ ! -e "$f" ]; then break; fi
    name=${{f##*/}}
    if cloud {s.ship_timeout_seconds} barman-cloud-wal-archive --gzip "$ARCHIVE_URL" "$SERVER_NAME" "$f"; then
      rm -f "$f"
      put last-shipped "$name"
      case "$name" in *.history | *.backup) ;; *) advance "$name" ;; esac
    else
      failures=$((failures + 1))
      pending=1
      echo "ship-wal: $name of $CLINIC not shipped (attempt failed; $failures so far): retrying" >&2
      break
    fi
  done
  now=$(date -u +%s)
  if [ $((now - last_beat)) -ge {s.heartbeat_seconds} ]; then
    if heartbeat; then last_beat=$now; else echo "ship-wal: heartbeat of $CLINIC failed" >&2; fi
  fi
  # A base backup when one is due, and at once after a gap (nothing after a gap restores without one), once the
  # spool is drained (the object store answers again).
  last=$(get last-base 1970-01-01T00:00:00Z)
  if [ "$pending" = 0 ] && {{ [ -e "$spool/gaps/open" ] || [ $((now - $(epoch "$last"))) -ge {interval} ]; }}; then
    started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    if sh "$SCRIPTS/base-backup.sh"; then
      put last-base "$started"
      if [ -e "$spool/gaps/open" ]; then
        # The gap ends where the new base backup begins.
        {{ cat "$spool/gaps/open"; printf 'end=%s\\n' "$started"; }} > "$spool/gaps/.closing.tmp"
        mv "$spool/gaps/.closing.tmp" "$spool/gaps/closed-$(date -u +%Y%m%dT%H%M%SZ)"
        rm -f "$spool/gaps/open"
      fi
    else
      base_failures=$((base_failures + 1))
    fi
  fi
  # Closed gaps go to the archive too, beside the WAL: the window of a generation can be read from the archive
  # alone (its volume may be gone or in use).
  for g in "$spool"/gaps/closed-*; do
    if [ ! -e "$g" ]; then break; fi
    record=${{g##*/}}
    if [ -e "$spool/gaps/shipped-$record" ]; then continue; fi
    if timeout {s.ship_timeout_seconds} python3 "$SCRIPTS/put-record.py" "$ARCHIVE_URL" \
      "$SERVER_NAME/gaps/$record" "$g"; then
      touch "$spool/gaps/shipped-$record"
    fi
  done
  write_metrics
  sleep {s.poll_seconds}
done
"""
    )


# The sidecar's heartbeat (python3 with psycopg2, barman's own dependency), as the postgres user over the socket.
# A committed transaction with a transaction id: its commit record carries a time recovery can stop at, and its WAL
# makes archive_timeout switch the segment, so an idle server is archived too and never looks stale. Prints the WAL
# file of the commit and its time. On a server it has not seen yet it first asks for a CHECKPOINT: PostgreSQL 15's
# checkpointer starts while recovery is still running, takes no account of archive_timeout in its first sleep and
# sleeps up to checkpoint_timeout (measured here: no switch for 5 min after a start, a switch every archive_timeout
# once a checkpoint had woken it; postgres/postgres src/backend/postmaster/checkpointer.c, CheckpointerMain).
HEARTBEAT = """\
import datetime
import pathlib
import sys

import psycopg2

seen = pathlib.Path(sys.argv[1])
conn = psycopg2.connect(dbname="postgres")
conn.autocommit = True
cur = conn.cursor()
cur.execute("SELECT pg_postmaster_start_time()::text")
started = cur.fetchone()[0]
if not seen.exists() or seen.read_text() != started:
    cur.execute("CHECKPOINT")
    seen.write_text(started)
conn.autocommit = False
cur.execute("SELECT pg_current_xact_id(), now()")
stamp = cur.fetchone()[1].astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
conn.commit()
cur.execute("SELECT pg_walfile_name(pg_current_wal_lsn())")
print(cur.fetchone()[0], stamp)
"""


# A small record (a closed gap) into the archive under the same prefix barman writes, with the same credentials:
# DefaultAzureCredential against an Azure account URL, the connection string for the emulator's path-style URL
# (as barman/cloud_providers/azure_blob_storage.py decides). Written once; the same bytes again are a no-op.
PUT_RECORD = """\
import os
import sys
from urllib.parse import urlparse

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import ContainerClient

url, name, path = sys.argv[1:4]
parsed = urlparse(url)
parts = parsed.path.strip("/").split("/")
if parsed.netloc.endswith(".blob.core.windows.net"):
    from azure.identity import DefaultAzureCredential

    container, prefix = parts[0], parts[1:]
    client = ContainerClient(f"https://{parsed.netloc}", container, credential=DefaultAzureCredential())
else:
    container, prefix = parts[1], parts[2:]
    client = ContainerClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"], container)
blob = "/".join([*prefix, name])
with open(path, "rb") as f:
    data = f.read()
try:
    client.upload_blob(blob, data, overwrite=False)
except ResourceExistsError:
    if client.download_blob(blob).readall() != data:
        sys.exit(f"put-record: {blob} exists with other contents")
"""


def fetch_wal_script(s: PitrSettings) -> str:
    """restore_command (ORCA image, as postgres): ask the restore Job's WAL sidecar for one file, wait for it.
    Exit 1 for a file the archive does not hold, as PostgreSQL expects of a restore_command."""
    return f"""\
set -eu
name=$1
dest=$2
dir={RESTORE_WAL_DIR}
rm -f "$dir/$name.ready" "$dir/$name.missing"
touch "$dir/$name.want"
waited=0
while :; do
  if [ -e "$dir/$name.ready" ]; then mv "$dir/$name.ready" "$dest"; exit 0; fi
  if [ -e "$dir/$name.missing" ]; then rm -f "$dir/$name.missing"; exit 1; fi
  if [ "$waited" -ge 6000 ]; then echo "fetch-wal: no answer for $name in 600 s" >&2; exit 2; fi
  sleep 0.1
  waited=$((waited + 1))
done
"""


def wal_server_script(s: PitrSettings) -> str:
    """The restore Job's native sidecar (tools image, as postgres): answers the WAL requests of the recovering
    server from the source generation's archive. Only 'not found' (barman's exit 1) answers missing; any other
    failure is retried, so a flaky store never ends recovery early."""
    return (
        "set -eu\n"
        + _CLOUD
        + f"""\
dir={RESTORE_WAL_DIR}
mkdir -p "$dir"
while :; do
  for want in "$dir"/*.want; do
    if [ ! -e "$want" ]; then break; fi
    name=${{want##*/}}
    name=${{name%.want}}
    rm -f "$dir/$name.part"
    rc=0
    cloud 600 barman-cloud-wal-restore "$SOURCE_URL" "$SOURCE_SERVER" "$name" "$dir/$name.part" || rc=$?
    if [ "$rc" = 0 ]; then
      mv "$dir/$name.part" "$dir/$name.ready"
      rm -f "$want"
    elif [ "$rc" = 1 ]; then
      touch "$dir/$name.missing"
      rm -f "$want"
    else
      echo "wal-server: $name not fetched (exit $rc): retrying" >&2
    fi
  done
  sleep 0.1
done
"""
    )


def restore_base_script(s: PitrSettings) -> str:
    """Restore Job, first step (tools image, as postgres, the new generation's volume at $STATE): the newest base
    backup of the source generation that ends before the target replaces the seeded cluster's data directory."""
    v = s.postgres_version
    return (
        "set -eu\n"
        + _CLOUD
        + f"""\
pgdata="$STATE/postgresql-data/{v}/main"
marker="$STATE/.orca-platform-restored-$RESTORE_ID"
if [ -e "$marker" ]; then echo "restore $RESTORE_ID already applied"; exit 0; fi
if [ ! -f "$pgdata/PG_VERSION" ]; then echo "pitr: $pgdata is not a seeded cluster" >&2; exit 1; fi
rm -rf "$pgdata.pitr"
mkdir -m 0700 "$pgdata.pitr"
cloud 86400 barman-cloud-restore --target-time "$TARGET_TIME" "$SOURCE_URL" "$SOURCE_SERVER" auto "$pgdata.pitr"
rm -rf "$pgdata.seeded"
mv "$pgdata" "$pgdata.seeded"
mv "$pgdata.pitr" "$pgdata"
rm -rf "$pgdata.seeded"
mkdir -p "$STATE/{RESTORE_WAL_SUBDIR}"
echo "pitr: base backup of $SOURCE_SERVER before $TARGET_TIME restored for $RESTORE_ID"
"""
    )


def recover_script(s: PitrSettings) -> str:
    """Restore Job, main step (ORCA image, the volume at the image's paths): replay to exactly the target, promote,
    stop cleanly; the new timeline is spooled for the new generation's archive. A target the WAL never reaches
    stops PostgreSQL with 'recovery ended before configured recovery target was reached': the Job fails."""
    v = s.postgres_version
    return f"""\
set -eu
marker="$STATE/.orca-platform-restored-$RESTORE_ID"
if [ -e "$marker" ]; then echo "restore $RESTORE_ID already applied"; exit 0; fi
conf={s.conf_dir}
sh "$SCRIPTS/install-archive.sh"
cp "$SCRIPTS/fetch-wal.sh" "$conf/{FETCH_COMMAND}.tmp"
mv "$conf/{FETCH_COMMAND}.tmp" "$conf/{FETCH_COMMAND}"
cat > "$conf/conf.d/{RECOVERY_FRAGMENT}" <<RECOVERY
restore_command = '/bin/sh $conf/{FETCH_COMMAND} "%f" "%p"'
recovery_target_time = '$TARGET_TIME'
recovery_target_inclusive = off
recovery_target_action = 'promote'
RECOVERY
su postgres -c "touch {s.data_dir}/recovery.signal"
trap 'pg_ctlcluster {v} main stop -m fast || true' EXIT
pg_ctlcluster -o "-c listen_addresses=" {v} main start -- -t {s.recovery_timeout_seconds}
waited=0
while [ "$(su postgres -c "psql -X -A -t -c 'SELECT pg_is_in_recovery()'")" != f ]; do
  if [ "$waited" -ge {s.recovery_timeout_seconds} ]; then echo "pitr: still in recovery" >&2; exit 1; fi
  if ! pg_ctlcluster {v} main status > /dev/null; then
    echo "pitr: PostgreSQL stopped during recovery (target not reached?):" >&2
    tail -n 20 /var/log/postgresql/postgresql-{v}-main.log >&2
    exit 1
  fi
  sleep 1
  waited=$((waited + 1))
done
su postgres -c "psql -X -A -t -c 'SELECT pg_switch_wal()'" > /dev/null
trap - EXIT
pg_ctlcluster {v} main stop -m fast
rm -f "$conf/conf.d/{RECOVERY_FRAGMENT}" "$conf/{FETCH_COMMAND}"
touch "$marker"
echo "pitr: $RESTORE_ID of $CLINIC recovered to $TARGET_TIME and promoted"
"""


def scripts(s: PitrSettings) -> dict[str, str]:
    """The ConfigMap of the archive, base-backup and restore steps (mounted at $SCRIPTS)."""
    return {
        "archive.conf": archive_settings(s),
        "spool-wal.sh": spool_script(s),
        "install-archive.sh": install_script(s),
        "ship-wal.sh": shipper_script(s),
        "heartbeat.py": HEARTBEAT,
        "put-record.py": PUT_RECORD,
        "base-backup.sh": base_backup_script(s),
        "fetch-wal.sh": fetch_wal_script(s),
        "wal-server.sh": wal_server_script(s),
        "restore-base.sh": restore_base_script(s),
        "recover.sh": recover_script(s),
    }
