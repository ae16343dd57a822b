"""Backups as data: names, the blob access condition and the job scripts. Pure: the components only place them.

Two kinds of copy, for two kinds of failure:
- CSI VolumeSnapshots of the whole clinic volume (crash-consistent, minutes to restore, same storage account/region);
- pg_dump -Fc of the ORCA database into immutable blob containers (application-consistent, kept for years, the
  format ORCA's own import expects), written by a per-clinic identity that can touch only its own prefix.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from orca_platform.conventions import CLINIC_LABEL, SNAPSHOT_LABEL

from .orca_image import BACKUP_MARKERS, SEED_MARKER, STATE_DIRS

SERVICE_ACCOUNT = "orca-backup"
SCRIPTS = "orca-backup-scripts"
DAILY = "daily"
MONTHLY = "monthly"
CONTAINERS = (DAILY, MONTHLY)
# Snapshot kinds (the values of SNAPSHOT_LABEL): scheduled ones are pruned by the backup job, pre-upgrade ones never.
SCHEDULED = "scheduled"
PRE_UPGRADE = "pre-upgrade"
# ClusterRole that lets each clinic's backup account hand a pruned snapshot's content to the snapshot controller.
CONTENT_ROLE = "orca-backup-snapshot-contents"
# Built-in role "Storage Blob Data Contributor"; the condition below narrows it to one clinic's prefix.
BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
WORKLOAD_AUDIENCE = "api://AzureADTokenExchange"


def container_retention(daily_days: int, monthly_days: int) -> dict[str, int]:
    """Days each dump container keeps a blob: its WORM immutability period and, a day later, the lifecycle delete."""
    return {DAILY: daily_days, MONTHLY: monthly_days}


def blob_condition(clinic_id: str) -> str:
    """Azure ABAC condition: blob reads, writes and listings only under '<clinic>/' in any container.

    Listing (List Blobs) needs `blobs/read` but carries no blob path, only the request's prefix: it is the
    `Blob.List` suboperation and is judged by `@Request[...blobs:prefix]` (MS docs "Actions and attributes for Azure
    role assignment conditions for Azure Blob Storage", and the example "Read or list blobs in named containers with
    a path"). Without its own clause the path clause cannot be evaluated for a listing and the request is denied.
    """
    blobs = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs"
    reading = f"ActionMatches{{'{blobs}/read'}}"
    path_actions = " AND ".join(
        [f"!({reading} AND NOT SubOperationMatches{{'Blob.List'}})"]
        + [f"!(ActionMatches{{'{blobs}/{a}'}})" for a in ("write", "add/action", "delete")]
    )
    by_path = f"@Resource[{blobs}:path] StringStartsWith '{clinic_id}/'"
    listing = f"!({reading} AND SubOperationMatches{{'Blob.List'}})"
    by_prefix = f"@Request[{blobs}:prefix] StringStartsWith '{clinic_id}/'"
    return f"((({path_actions}) OR ({by_path})) AND (({listing}) OR ({by_prefix})))"


def workload_subject(namespace: str) -> str:
    return f"system:serviceaccount:{namespace}:{SERVICE_ACCOUNT}"


def backup_key(pod_template: Mapping[str, Any]) -> str:
    """Short, stable digest of the server's pod template (image, volume generation, everything the pod runs):
    names the pre-upgrade backup Jobs, so any change that restarts ORCA on its volume is backed up first."""
    canonical = json.dumps(pod_template, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:10]


# --- the scripts -----------------------------------------------------------------------------------------------
# Every script reads its paths from the pod's environment ($SCRIPTS, $WORK, $STATE): the pod spec is the one place
# that says where the ConfigMap, the scratch directory and the clinic volume are mounted.

# Listed first, then cut: a failing kubectl must stop the script (set -e), not read as "no pod is running".
_POD_LOOKUP = """\
pods=$(kubectl get pod -l "$SELECTOR" --field-selector=status.phase=Running -o name)
pod=$(printf '%s\\n' "$pods" | head -n 1)
pod="${pod#pod/}"
"""
# The volume the running server has mounted: after a restore it is a newer generation than the Job was created
# with, and a claim no pod uses yet (WaitForFirstConsumer) cannot be snapshotted.
_CLAIM_LOOKUP = """\
PVC=$(kubectl get pod "$pod" -o jsonpath='{.spec.volumes[?(@.name=="state")].persistentVolumeClaim.claimName}')
if [ -z "$PVC" ]; then echo "pod $pod of $CLINIC mounts no state volume" >&2; exit 1; fi
export PVC
"""

SNAPSHOT_SCRIPT = (
    """\
set -eu
# Crash-consistent snapshot of the volume the clinic's server runs on, then keep only the newest $RETAIN scheduled.
if [ -z "${PVC:-}" ]; then
"""
    + _POD_LOOKUP
    + """\
  if [ -z "$pod" ]; then echo "no running ORCA pod for $CLINIC: nothing to snapshot" >&2; exit 1; fi
"""
    + _CLAIM_LOOKUP
    + f"""\
fi
stamp=$(date -u +%Y%m%d%H%M%S)
kind="${{SNAPSHOT_KIND:-scheduled}}"
if [ "$kind" = pre-upgrade ]; then name="$PVC-pre-upgrade-$stamp"; else name="$PVC-$stamp"; fi
kubectl apply -f - <<SNAPSHOT
apiVersion: snapshot.storage.k8s.io/v1
kind: VolumeSnapshot
metadata:
  name: $name
  labels:
    {CLINIC_LABEL}: "$CLINIC"
    {SNAPSHOT_LABEL}: "$kind"
spec:
  volumeSnapshotClassName: $SNAPSHOT_CLASS
  source:
    persistentVolumeClaimName: $PVC
SNAPSHOT
kubectl wait --for=jsonpath='{{.status.readyToUse}}'=true "volumesnapshot/$name" --timeout=30m
echo "snapshot $name ready"
if [ "$kind" = scheduled ]; then
  # Oldest first; counted without a pipeline, so a failing kubectl stops the job instead of reading as none.
  scheduled=$(kubectl get volumesnapshot -l "{SNAPSHOT_LABEL}=scheduled" \\
    --sort-by=.metadata.creationTimestamp -o name)
  count=0
  for snap in $scheduled; do count=$((count + 1)); done
  excess=$((count - RETAIN))
  for snap in $scheduled; do
    if [ "$excess" -le 0 ]; then break; fi
    # The snapshot class retains a content (and its storage snapshot) when its VolumeSnapshot goes: a pruned one is
    # handed to the snapshot controller for deletion first, or it would linger and cost. The admission guard lets
    # this service account do that for the scheduled snapshots of its own namespace only.
    content=$(kubectl get "$snap" -o jsonpath='{{.status.boundVolumeSnapshotContentName}}')
    if [ -n "$content" ]; then
      kubectl patch volumesnapshotcontent "$content" --type merge -p '{{"spec":{{"deletionPolicy":"Delete"}}}}'
    fi
    kubectl delete "$snap"
    excess=$((excess - 1))
  done
fi
"""
)

# A dump is checked before it is stored: an empty or truncated archive must fail the job, not the restore.
_CHECK_DUMP = """\
if [ ! -s "$archive" ] || [ "$(head -c 5 "$archive")" != PGDMP ]; then
  echo "dump of $CLINIC is empty or not a pg_dump archive: refused" >&2
  exit 1
fi
# --list reads the table of contents; --file=/dev/null reads every entry to its end, as a restore would.
if ! pg_restore --list "$archive" >/dev/null || ! pg_restore --file=/dev/null "$archive"; then
  echo "dump of $CLINIC is truncated or damaged (pg_restore cannot read it to the end): refused" >&2
  exit 1
fi
"""

STORE_DUMP_SCRIPT = (
    """\
set -eu
# Check the archive in $WORK/orca.dump, then write it once to the immutable containers.
archive="$WORK/orca.dump"
"""
    + _CHECK_DUMP
    + """\
stamp=$(date -u +%Y%m%dT%H%M%SZ)
suffix="${DUMP_SUFFIX:-}"
azcopy login --login-type=workload
azcopy copy "$archive" "$BLOB_URL/daily/$CLINIC/$stamp$suffix.dump" --overwrite=false
# The 1st of the month in the clinic's own time zone ($TZ is a POSIX rule, which needs no tzdata in the image): a
# dump at 01:30 JST runs at 16:30 UTC of the day before.
if [ "$(date +%d)" = 01 ] && [ -z "$suffix" ]; then
  azcopy copy "$archive" "$BLOB_URL/monthly/$CLINIC/$stamp.dump" --overwrite=false
fi
echo "dump of $CLINIC stored as $stamp$suffix.dump ($(wc -c < "$archive") bytes)"
"""
)

DUMP_SCRIPT = (
    """\
set -eu
# Application-consistent pg_dump taken inside the ORCA pod (its own pg_dump matches its server), streamed here,
# checked, and written once to the immutable containers. PostgreSQL is never reachable from outside its pod.
"""
    + _POD_LOOKUP
    + """\
if [ -z "$pod" ]; then echo "no running ORCA pod for $CLINIC: nothing to dump" >&2; exit 1; fi
# The variables expand in the ORCA container, whose environment holds the password, never in this job.
# shellcheck disable=SC2016
kubectl exec "$pod" -c orca -- sh -c \\
  'PGPASSWORD="$ORCA_DB_PASS" pg_dump -Fc -h localhost -U "$ORCA_DB_USER" "$ORCA_DB_NAME"' > "$WORK/orca.dump"
sh "$SCRIPTS/store-dump.sh"
"""
)

# Step 1 of a pre-upgrade backup (tools image): stop the server, so no write lands after the backup. The new pod
# template starts only after step 2 has succeeded (Pulumi waits for that Job, and ORCA's pod checks its marker).
PRE_UPGRADE_STOP_SCRIPT = """\
set -eu
# --ignore-not-found: an absent Deployment (a new clinic) is an answer; any other kubectl error stops the job.
if [ -z "$(kubectl get deployment "$DEPLOYMENT" --ignore-not-found -o name)" ]; then
  echo "no server deployment for $CLINIC yet: nothing to stop"
  exit 0
fi
kubectl scale deployment "$DEPLOYMENT" --replicas=0
waited=0
while :; do
  pods=$(kubectl get pod -l "$SELECTOR" -o name)
  if [ -z "$pods" ]; then break; fi
  if [ "$waited" -ge "$STOP_TIMEOUT" ]; then
    echo "the server of $CLINIC did not stop within ${STOP_TIMEOUT}s: $pods" >&2
    exit 1
  fi
  sleep 5
  waited=$((waited + 5))
done
echo "server of $CLINIC stopped: the new pod template starts after its backup"
"""


def _seed_markers(var: str) -> str:
    """Shell lines setting $var to 1 when any state directory of the volume carries its seed marker."""
    lines = [f"{var}=0"]
    for sub, _ in STATE_DIRS:
        lines.append(f'if [ -e "$STATE/{sub}/{SEED_MARKER}" ]; then {var}=1; fi')
    return "\n".join(lines) + "\n"


def pre_upgrade_dump_script(postgres_version: str) -> str:
    """Step 2a (ORCA's image, the volume mounted as ORCA mounts it): dump from the stopped cluster, started here
    read-only, without autovacuum and without a TCP listener. A new volume has nothing to back up, unless the
    clinic had data (then the volume is the wrong one, and the job fails)."""
    v = postgres_version
    return (
        f"""\
set -eu
verdict="$WORK/pre-upgrade.verdict"
pgdata=/var/lib/postgresql/{v}/main
"""
        + _seed_markers("seeded")
        + f"""\
if [ ! -e "$pgdata/PG_VERSION" ]; then
  if [ "$seeded" = 1 ]; then
    echo "pre-upgrade: REFUSED: the volume of $CLINIC was seeded but holds no PostgreSQL cluster at $pgdata" >&2
    exit 1
  fi
  if [ "${{EXPECT_DATA:-0}}" = 1 ]; then
    echo "pre-upgrade: REFUSED: the volume of $CLINIC is empty, but the clinic had data (EXPECT_DATA=1)" >&2
    exit 1
  fi
  echo none > "$verdict"
  echo "pre-upgrade: the volume of $CLINIC is new: nothing to back up yet"
  exit 0
fi
found=$(cat "$pgdata/PG_VERSION")
if [ "$found" != "{v}" ]; then
  echo "pre-upgrade: REFUSED: $pgdata is PostgreSQL $found and this image runs {v}: a major upgrade is a" >&2
  echo "pre-upgrade: migration (pg_upgrade on a restored copy), never an image change" >&2
  exit 1
fi
trap 'pg_ctlcluster {v} main stop -m fast || true' EXIT
pg_ctlcluster -o "-c default_transaction_read_only=on" -o "-c autovacuum=off" -o "-c listen_addresses=" \\
  {v} main start
su postgres -c "pg_dump -Fc -f $WORK/orca.dump $ORCA_DB_NAME"
trap - EXIT
pg_ctlcluster {v} main stop -m fast
echo backup > "$verdict"
echo "pre-upgrade: dumped $CLINIC from its stopped cluster ($(wc -c < "$WORK/orca.dump") bytes)"
"""
    )


# Step 2b (tools image): the snapshot, of a cluster stopped cleanly again, and the dump, checked and stored.
PRE_UPGRADE_STORE_SCRIPT = """\
set -eu
if [ "$(cat "$WORK/pre-upgrade.verdict")" != backup ]; then
  echo "pre-upgrade: nothing to snapshot or store for $CLINIC (new volume)"
  exit 0
fi
SNAPSHOT_KIND=pre-upgrade sh "$SCRIPTS/snapshot.sh"
DUMP_SUFFIX=-pre-upgrade sh "$SCRIPTS/store-dump.sh"
"""

# Step 2c (ORCA's image): the marker ORCA's pod looks for, written only once both copies exist.
PRE_UPGRADE_MARK_SCRIPT = f"""\
set -eu
mkdir -p "$STATE/{BACKUP_MARKERS}"
printf '%s\\n%s\\n' "$JOB_UID" "$(cat "$WORK/pre-upgrade.verdict")" > "$STATE/{BACKUP_MARKERS}/$BACKUP_KEY.tmp"
mv "$STATE/{BACKUP_MARKERS}/$BACKUP_KEY.tmp" "$STATE/{BACKUP_MARKERS}/$BACKUP_KEY"
echo "pre-upgrade: backup $BACKUP_KEY of $CLINIC recorded (job $JOB_UID)"
"""

RESTORE_FETCH_SCRIPT = (
    """\
set -eu
azcopy login --login-type=workload
azcopy copy "$BLOB_URL/$DUMP" "$WORK/orca.dump"
archive="$WORK/orca.dump"
"""
    + _CHECK_DUMP
)


def restore_apply_script(postgres_version: str) -> str:
    """Load a dump into the new volume's freshly seeded cluster, once: a marker makes a re-run a no-op."""
    return f"""\
set -eu
marker="$STATE/.orca-platform-restored-$RESTORE_ID"
if [ -e "$marker" ]; then echo "restore $RESTORE_ID already applied"; exit 0; fi
pg_ctlcluster {postgres_version} main start
su postgres -c "pg_restore --clean --if-exists --exit-on-error -d $ORCA_DB_NAME $WORK/orca.dump"
pg_ctlcluster {postgres_version} main stop -m fast
touch "$marker"
echo "restore $RESTORE_ID of $CLINIC applied from $DUMP"
"""


def verify_script(postgres_version: str) -> str:
    """The gate before the Deployment switches to a restored volume: a whole ORCA volume, seeded by this platform,
    holding a readable cluster of this PostgreSQL version (and, after a dump restore, the restore's marker)."""
    v = postgres_version
    markers = "".join(
        f'[ -e "$STATE/{sub}/{SEED_MARKER}" ] || refuse "$STATE/{sub} has no {SEED_MARKER} marker"\n'
        for sub, _ in STATE_DIRS
    )
    return (
        f"""\
set -eu
refuse() {{ echo "verify: REFUSED $RESTORE_ID of $CLINIC: $*" >&2; exit 1; }}
pgdata=/var/lib/postgresql/{v}/main
"""
        + markers
        + f"""\
[ -f /etc/postgresql/{v}/main/postgresql.conf ] || refuse "no cluster configuration in /etc/postgresql/{v}/main"
[ -f "$pgdata/PG_VERSION" ] || refuse "$pgdata has no PG_VERSION: no PostgreSQL cluster on this volume"
found=$(cat "$pgdata/PG_VERSION")
[ "$found" = "{v}" ] || refuse "$pgdata is PostgreSQL $found, not {v}"
if [ -n "${{RESTORE_MARKER:-}}" ] && [ ! -e "$STATE/$RESTORE_MARKER" ]; then
  refuse "the dump restore never completed ($RESTORE_MARKER is missing)"
fi
control=$(/usr/lib/postgresql/{v}/bin/pg_controldata "$pgdata" 2>&1) || refuse "pg_controldata: $control"
case "$control" in
  *"CRC checksum does not match"*) refuse "pg_control is damaged: $control" ;;
esac
cluster_state=$(printf '%s\\n' "$control" | sed -n 's/^Database cluster state: *//p')
case "$cluster_state" in
  # "in production" is a crash-consistent snapshot of a running server: PostgreSQL recovers it at start.
  "shut down" | "shut down in recovery" | "in production") ;;
  *) refuse "cluster state '$cluster_state' is not one a restore starts from" ;;
esac
echo "verify: $RESTORE_ID of $CLINIC holds a PostgreSQL {v} cluster ($cluster_state); the Deployment may switch to it"
"""
    )


def scripts(postgres_version: str) -> dict[str, str]:
    """The ConfigMap of scripts every backup and restore job of a clinic mounts at /scripts."""
    return {
        "snapshot.sh": SNAPSHOT_SCRIPT,
        "dump.sh": DUMP_SCRIPT,
        "store-dump.sh": STORE_DUMP_SCRIPT,
        "pre-upgrade-stop.sh": PRE_UPGRADE_STOP_SCRIPT,
        "pre-upgrade-dump.sh": pre_upgrade_dump_script(postgres_version),
        "pre-upgrade-store.sh": PRE_UPGRADE_STORE_SCRIPT,
        "pre-upgrade-mark.sh": PRE_UPGRADE_MARK_SCRIPT,
        "restore-fetch.sh": RESTORE_FETCH_SCRIPT,
        "restore-apply.sh": restore_apply_script(postgres_version),
        "verify.sh": verify_script(postgres_version),
    }
