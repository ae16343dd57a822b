"""Backups as data: names, the blob access condition and the job scripts. Pure: the components only place them.

Two kinds of copy, for two kinds of failure:
- CSI VolumeSnapshots of the whole clinic volume (crash-consistent, minutes to restore, same storage account/region);
- pg_dump -Fc of the ORCA database into immutable blob containers (application-consistent, kept for years, the
  format ORCA's own import expects), written by a per-clinic identity that can touch only its own prefix.
"""

from __future__ import annotations

import hashlib
import re

SERVICE_ACCOUNT = "orca-backup"
SCRIPTS = "orca-backup-scripts"
DAILY = "daily"
MONTHLY = "monthly"
CONTAINERS = (DAILY, MONTHLY)
SNAPSHOT_LABEL = "orca-platform.io/snapshot"
# Built-in role "Storage Blob Data Contributor"; the condition below narrows it to one clinic's prefix.
BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
WORKLOAD_AUDIENCE = "api://AzureADTokenExchange"
SNAPSHOT_NAME = re.compile(r"^(?P<pvc>orca-state(?:-[a-z0-9-]+?)?)-(?:pre-upgrade-)?[0-9]{14}$")


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


def image_fingerprint(image: str) -> str:
    """Short, stable digest of an image reference: names the pre-upgrade backup Job of that image."""
    return hashlib.sha256(image.encode()).hexdigest()[:10]


def snapshot_volume(name: str) -> str | None:
    """The volume a snapshot (as this platform names them) was taken of, or None if the name is not ours."""
    m = SNAPSHOT_NAME.match(name)
    return m["pvc"] if m else None


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
    + """\
fi
stamp=$(date -u +%Y%m%d%H%M%S)
kind="${SNAPSHOT_KIND:-scheduled}"
if [ "$kind" = pre-upgrade ]; then name="$PVC-pre-upgrade-$stamp"; else name="$PVC-$stamp"; fi
kubectl apply -f - <<SNAPSHOT
apiVersion: snapshot.storage.k8s.io/v1
kind: VolumeSnapshot
metadata:
  name: $name
  labels:
    orca-platform.io/clinic: "$CLINIC"
    orca-platform.io/snapshot: "$kind"
spec:
  volumeSnapshotClassName: $SNAPSHOT_CLASS
  source:
    persistentVolumeClaimName: $PVC
SNAPSHOT
kubectl wait --for=jsonpath='{.status.readyToUse}'=true "volumesnapshot/$name" --timeout=30m
echo "snapshot $name ready"
if [ "$kind" = scheduled ]; then
  total=$(kubectl get volumesnapshot -l "orca-platform.io/snapshot=scheduled" -o name | wc -l)
  excess=$((total - RETAIN))
  if [ "$excess" -gt 0 ]; then
    kubectl get volumesnapshot -l "orca-platform.io/snapshot=scheduled" \\
      --sort-by=.metadata.creationTimestamp -o name | head -n "$excess" | xargs kubectl delete
  fi
fi
"""
)

DUMP_SCRIPT = (
    """\
set -eu
# Application-consistent pg_dump taken inside the ORCA pod (its own pg_dump matches its server), streamed here,
# checked, and written once to the immutable containers. PostgreSQL is never reachable from outside its pod.
stamp=$(date -u +%Y%m%dT%H%M%SZ)
suffix="${DUMP_SUFFIX:-}"
"""
    + _POD_LOOKUP
    + """\
if [ -z "$pod" ]; then echo "no running ORCA pod for $CLINIC: nothing to dump" >&2; exit 1; fi
kubectl exec "$pod" -c orca -- sh -c \\
  'PGPASSWORD="$ORCA_DB_PASS" pg_dump -Fc -h localhost -U "$ORCA_DB_USER" "$ORCA_DB_NAME"' > /work/orca.dump
if [ "$(head -c 5 /work/orca.dump)" != PGDMP ]; then echo "dump of $CLINIC is not a pg_dump archive" >&2; exit 1; fi
azcopy login --login-type=workload
azcopy copy /work/orca.dump "$BLOB_URL/daily/$CLINIC/$stamp$suffix.dump" --overwrite=false
if [ "$(date -u +%d)" = 01 ] && [ -z "$suffix" ]; then
  azcopy copy /work/orca.dump "$BLOB_URL/monthly/$CLINIC/$stamp.dump" --overwrite=false
fi
echo "dump of $CLINIC stored as $stamp$suffix.dump ($(wc -c < /work/orca.dump) bytes)"
"""
)

PRE_UPGRADE_SCRIPT = (
    """\
set -eu
# Before a new ORCA image starts on this volume: a snapshot and a dump of the running server, or nothing when no
# server runs yet (a new or a suspended clinic).
"""
    + _POD_LOOKUP
    + """\
if [ -z "$pod" ]; then echo "no running ORCA pod for $CLINIC: no upgrade backup needed"; exit 0; fi
"""
    + _CLAIM_LOOKUP
    + """\
SNAPSHOT_KIND=pre-upgrade sh /scripts/snapshot.sh
DUMP_SUFFIX=-pre-upgrade sh /scripts/dump.sh
"""
)

RESTORE_FETCH_SCRIPT = """\
set -eu
azcopy login --login-type=workload
azcopy copy "$BLOB_URL/$DUMP" /work/orca.dump
"""


def restore_apply_script(postgres_version: str) -> str:
    """Load a dump into the new volume's freshly seeded cluster, once: a marker makes a re-run a no-op."""
    return f"""\
set -eu
marker="/state/.orca-platform-restored-$RESTORE_ID"
if [ -e "$marker" ]; then echo "restore $RESTORE_ID already applied"; exit 0; fi
pg_ctlcluster {postgres_version} main start
su postgres -c "pg_restore --clean --if-exists --exit-on-error -d $ORCA_DB_NAME /work/orca.dump"
pg_ctlcluster {postgres_version} main stop -m fast
touch "$marker"
echo "restore $RESTORE_ID of $CLINIC applied from $DUMP"
"""


def scripts(postgres_version: str) -> dict[str, str]:
    """The ConfigMap of scripts every backup and restore job of a clinic mounts at /scripts."""
    return {
        "snapshot.sh": SNAPSHOT_SCRIPT,
        "dump.sh": DUMP_SCRIPT,
        "pre-upgrade.sh": PRE_UPGRADE_SCRIPT,
        "restore-fetch.sh": RESTORE_FETCH_SCRIPT,
        "restore-apply.sh": restore_apply_script(postgres_version),
    }
