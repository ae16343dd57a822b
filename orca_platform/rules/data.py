"""Clinic data: the volumes that hold each clinic's PostgreSQL and ORCA state.

Protected and retained so that no routine change deletes them, on classes that keep their disks and are not SMB,
written by one PostgreSQL server at a time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..conventions import (
    CLINIC_DATA,
    CLINIC_LABEL,
    DATA_LABEL,
)
from .context import RuleContext, clinic_of, each_clinic_namespace
from .kubernetes import claims_mounted, pod_spec
from .registry import A, Domain, Finding, M
from .values import as_list, as_map, as_text, dig, is_unknown, number, truthy
from .view import ResourceView

DOMAIN = Domain(
    "Clinic data",
    "The volumes that hold each clinic's PostgreSQL and ORCA state: protected, retained, written by one server.",
)
rule = DOMAIN.rule


@rule(
    "clinic-volume-protected",
    "Clinic data volumes are protected",
    "A clinic's PostgreSQL and ORCA state live on its PersistentVolumeClaim; `protect` makes Pulumi refuse to delete "
    "or replace it, so a removed tenant entry or a `pulumi destroy` cannot take patient records with it.",
    M,
    what=f"a PVC labelled `{DATA_LABEL}: {CLINIC_DATA}` has `protect`",
)
def _volume_protected(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.kind == "PersistentVolumeClaim" and v.is_clinic_data() and not v.protect:
        yield f"clinic data volume {v.namespace}/{v.k8s_name} is not protected (Pulumi option protect=True)"


@rule(
    "clinic-volume-retained",
    "Clinic data volumes are retained when Pulumi lets go of them",
    "`retainOnDelete` leaves the claim (and so its disk or share) in the cluster when it leaves the program, "
    "even after someone unprotects it: deletion of clinic data is a person's decision, never a side effect.",
    M,
    at_preview=False,
    what=f"a PVC labelled `{DATA_LABEL}: {CLINIC_DATA}` has `retainOnDelete`",
)
def _volume_retained(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.kind == "PersistentVolumeClaim" and v.is_clinic_data() and v.retain_on_delete is False:
        yield f"clinic data volume {v.namespace}/{v.k8s_name} is not retained on delete (retainOnDelete=True)"


@rule(
    "clinic-namespace-protected",
    "Clinic namespaces are protected",
    "Deleting a namespace deletes every claim in it, whatever the claims' own options say.",
    M,
    what="a clinic Namespace has `protect` (and `retainOnDelete` where visible)",
)
def _namespace_protected(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.kind == "Namespace" and as_text(v.labels.get(CLINIC_LABEL)):
        if not v.protect:
            yield f"clinic namespace {v.k8s_name} is not protected: deleting it deletes the clinic's volumes"
        elif v.retain_on_delete is False:
            yield f"clinic namespace {v.k8s_name} is not retained on delete (retainOnDelete=True)"


@rule(
    "clinic-claim-single-writer",
    "Every clinic volume claim is ReadWriteOncePod",
    "Recreate and one replica keep the Deployment to one pod, but only ReadWriteOncePod makes the API server and "
    "the kubelet refuse a second pod on the volume (a Job, a debug pod, a stuck old pod): one PostgreSQL per "
    "data directory, whatever else runs.",
    M,
    what="a clinic PVC's access modes are exactly `[ReadWriteOncePod]`",
)
def _claim_single_writer(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.kind != "PersistentVolumeClaim" or not v.is_clinic_data():
        return
    modes = dig(v.props, "spec", "accessModes")
    if is_unknown(modes):
        return
    found = [as_text(m) for m in as_list(modes)]
    if found != ["ReadWriteOncePod"]:
        yield (
            f"clinic volume {v.namespace}/{v.k8s_name} has access modes {found or 'none'}, not [ReadWriteOncePod]: "
            "a second pod could mount it"
        )


@rule(
    "single-writer",
    "A Deployment that mounts a clinic volume uses Recreate and one replica",
    "Two PostgreSQL servers on one data directory corrupt it. One replica (zero while suspended) and Recreate, "
    "so the old pod has stopped before the new one mounts the volume.",
    M,
    what="a Deployment in a clinic namespace that mounts a PVC uses `Recreate` and at most one replica",
)
def _single_writer(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.kind != "Deployment" or clinic_of(v, ctx) is None:
        return
    pod = pod_spec(v) or {}
    claims = [c for c in claims_mounted(pod) if c]
    if not claims:
        return
    strategy = dig(v.props, "spec", "strategy", "type")
    if not is_unknown(strategy) and (as_text(strategy) or "RollingUpdate") != "Recreate":
        yield (
            f"{v.display} mounts {', '.join(claims)} with strategy "
            f"{as_text(strategy) or 'RollingUpdate (default)'}, not Recreate"
        )
    replicas = dig(v.props, "spec", "replicas")
    count = 1.0 if replicas is None else number(replicas)
    if count is not None and count > 1:
        yield f"{v.display} mounts {', '.join(claims)} with {int(count)} replicas"


@rule(
    "clinic-storage-class-retain",
    "StorageClasses for clinic data retain their volumes",
    "With reclaimPolicy Delete (the default, and that of AKS's built-in classes) the disk or share is destroyed "
    "as soon as its claim goes; Retain keeps it until a person deletes it.",
    M,
    what="a StorageClass labelled for clinic data has `reclaimPolicy: Retain`",
)
def _class_retain(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.kind == "StorageClass" and v.is_clinic_data():
        policy = as_text(v.props.get("reclaimPolicy")) or "Delete"
        if policy != "Retain" and not is_unknown(v.props.get("reclaimPolicy")):
            yield f"StorageClass {v.k8s_name} for clinic data has reclaimPolicy {policy}, not Retain"


@rule(
    "clinic-storage-class-settings",
    "StorageClasses for clinic data can grow and bind where the pod runs",
    "allowVolumeExpansion lets a full clinic volume grow without a restore; WaitForFirstConsumer provisions it "
    "in the zone the pod is scheduled to.",
    A,
    what=(
        "a StorageClass labelled for clinic data has `allowVolumeExpansion: true`, `volumeBindingMode: "
        "WaitForFirstConsumer`"
    ),
)
def _class_settings(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.kind == "StorageClass" and v.is_clinic_data():
        if truthy(v.props.get("allowVolumeExpansion")) is not True:
            yield f"StorageClass {v.k8s_name} does not allow volume expansion"
        mode = as_text(v.props.get("volumeBindingMode")) or "Immediate"
        if mode != "WaitForFirstConsumer":
            yield f"StorageClass {v.k8s_name} binds {mode}, not WaitForFirstConsumer"


def _is_smb(props: Mapping[str, Any]) -> bool:
    provisioner = as_text(props.get("provisioner"))
    if provisioner == "kubernetes.io/azure-file":
        return True
    protocol = as_text(as_map(props.get("parameters")).get("protocol")).lower()
    return provisioner == "file.csi.azure.com" and protocol != "nfs"


@rule(
    "clinic-storage-not-smb",
    "No SMB storage for clinic data",
    "PostgreSQL needs hard links (pg_wal) and POSIX ownership, which Azure Files over SMB cannot give: a cluster "
    "on SMB fails to start or corrupts itself. Azure Disk or Azure Files NFS 4.1 only.",
    M,
    what="no clinic StorageClass is Azure Files over SMB",
)
def _class_not_smb(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.kind == "StorageClass" and v.is_clinic_data() and _is_smb(v.props):
        yield f"StorageClass {v.k8s_name} for clinic data is Azure Files over SMB"


@rule(
    "clinic-has-protected-volume",
    "Every clinic has a protected data volume",
    "Answers the auditor's 'was its data protected?' per clinic: a clinic without a labelled, protected claim is "
    "either unprotected or keeps its data somewhere nobody declared.",
    M,
    scope="stack",
    what="every clinic namespace has a data volume that is protected (and retained where visible)",
)
def _clinic_volume(views: Sequence[ResourceView], ctx: RuleContext) -> Iterator[Finding]:
    volumes: dict[str, list[ResourceView]] = defaultdict(list)
    for v in views:
        if v.kind == "PersistentVolumeClaim" and v.is_clinic_data():
            volumes[v.namespace].append(v)
    for ns, clinic, namespace in each_clinic_namespace(views, ctx):
        mine = volumes.get(ns, [])
        if not mine:
            yield Finding(
                f"clinic {clinic} has no data volume (a claim labelled {DATA_LABEL}={CLINIC_DATA})",
                view=namespace,
                clinic=clinic,
            )
        elif not any(v.protect and v.retain_on_delete is not False for v in mine):
            yield Finding(f"clinic {clinic} has no data volume that is both protected and retained", clinic=clinic)


@rule(
    "clinic-volume-class",
    "Clinic volumes use a StorageClass of this stack that retains them",
    "AKS's built-in classes (default, managed-csi, azurefile-csi ...) delete the disk with the claim, and "
    "azurefile is SMB; only classes this program defines are known to Retain.",
    M,
    scope="stack",
    what="each clinic PVC names a StorageClass that this stack defines, retaining and not SMB",
)
def _volume_class(views: Sequence[ResourceView], ctx: RuleContext) -> Iterator[Finding]:
    classes = {v.k8s_name: v for v in views if v.kind == "StorageClass"}
    for v in views:
        if v.kind != "PersistentVolumeClaim" or not v.is_clinic_data():
            continue
        name_value = dig(v.props, "spec", "storageClassName")
        if is_unknown(name_value):
            continue
        name = as_text(name_value)
        sc = classes.get(name)
        if not name:
            yield Finding(f"clinic volume {v.namespace}/{v.k8s_name} names no StorageClass (cluster default)", view=v)
        elif sc is None:
            yield Finding(
                f"clinic volume {v.namespace}/{v.k8s_name} uses StorageClass {name}, which this stack does not define",
                view=v,
            )
        elif not sc.is_clinic_data():
            # Labelled classes are judged by the resource rules; an unlabelled one would slip past them.
            if (as_text(sc.props.get("reclaimPolicy")) or "Delete") != "Retain":
                yield Finding(f"clinic volume {v.namespace}/{v.k8s_name}: StorageClass {name} deletes volumes", view=v)
            if _is_smb(sc.props):
                yield Finding(f"clinic volume {v.namespace}/{v.k8s_name}: StorageClass {name} is SMB", view=v)
