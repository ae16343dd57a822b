"""The admission guard as data: ValidatingAdmissionPolicies (CEL) that refuse what would destroy clinic data.

What Pulumi's `protect` cannot stop, the API server does: a `kubectl delete namespace`, a pruning script gone wrong,
a reclaim policy switched to Delete. Each policy names what it guards, who may still act (the break-glass group of
the stack config, and the narrow automated paths the platform itself needs) and why. Pure: components/
admission_guard.py renders it, tests/test_admission_guard.py evaluates the expressions with a CEL implementation.

CEL facts relied on (Kubernetes "Validating Admission Policy" reference): for DELETE `object` is null and
`oldObject` is the stored object; `namespaceObject` is the namespace of a namespaced request (null for
cluster-scoped ones); variables are evaluated lazily, when an expression first reaches them, so a variable that
reads `object` is only ever reached behind `request.operation != 'UPDATE' ||`; a binding's namespaceSelector never
excludes a cluster-scoped object, and for a Namespace it is matched against that namespace's own labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orca_platform.backup.backup_plan import PRE_UPGRADE, SCHEDULED, SERVICE_ACCOUNT
from orca_platform.conventions import CLINIC_LABEL, SNAPSHOT_LABEL

__all__ = ["CLINIC_LABEL", "GuardPolicy", "guard_policies"]

CORE = ""
SNAPSHOTS = "snapshot.storage.k8s.io"


@dataclass(frozen=True)
class ResourceRule:
    api_group: str
    resources: tuple[str, ...]
    operations: tuple[str, ...]


@dataclass(frozen=True)
class Expression:
    name: str  # a variable's or match condition's name; for a validation, a short label for tests and docs
    expression: str
    message: str = ""


@dataclass(frozen=True)
class GuardPolicy:
    name: str
    rules: tuple[ResourceRule, ...]
    # Only objects in (or being) a clinic namespace: the binding selects the namespaces labelled CLINIC_LABEL.
    clinic_namespaces: bool
    match_conditions: tuple[Expression, ...]
    variables: tuple[Expression, ...]
    validations: tuple[Expression, ...]


def _list(values: Sequence[str]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


def _label(obj: str, key: str) -> str:
    """The value of a label of `obj`, '' when the label is absent. Only referenced where `obj` is set."""
    return f"(has({obj}.metadata.labels) && '{key}' in {obj}.metadata.labels ? {obj}.metadata.labels['{key}'] : '')"


def _break_glass(group: str | None) -> Expression:
    # Entra ID passes group object ids in the token; AKS hands them to the API server as userInfo.groups.
    expr = f"has(request.userInfo.groups) && '{group}' in request.userInfo.groups" if group else "false"
    return Expression("breakGlass", expr)


def _backup_account(namespace: str) -> str:
    return f"request.userInfo.username == 'system:serviceaccount:' + {namespace} + ':{SERVICE_ACCOUNT}'"


# A namespace being deleted: only the break-glass group can have started that (rule 1), so what the namespace
# controller then deletes inside it is allowed. Only referenced for namespaced requests, where namespaceObject is set.
_TERMINATING = Expression("terminating", "has(namespaceObject.metadata.deletionTimestamp)")


def guard_policies(
    break_glass_group: str | None, storage_classes: Sequence[str], snapshot_classes: Sequence[str]
) -> tuple[GuardPolicy, ...]:
    """The four policies of the guard, for the platform's clinic storage and snapshot classes."""
    bg = _break_glass(break_glass_group)
    deletion = GuardPolicy(
        name="orca-guard-clinic-deletion",
        rules=(ResourceRule(CORE, ("namespaces", "persistentvolumeclaims"), ("DELETE",)),),
        clinic_namespaces=True,
        match_conditions=(),
        variables=(bg, _TERMINATING),
        validations=(
            Expression(
                "namespace",
                "request.resource.resource != 'namespaces' || variables.breakGlass",
                "a clinic namespace holds the clinic's volumes and snapshots: only the break-glass group deletes it "
                "(docs/runbooks.md, break glass)",
            ),
            Expression(
                "claim",
                "request.resource.resource != 'persistentvolumeclaims' || variables.breakGlass || "
                "variables.terminating",
                "a clinic volume claim is never deleted by hand or by a tool: only the break-glass group deletes it "
                "(docs/runbooks.md, break glass)",
            ),
        ),
    )
    volumes = GuardPolicy(
        name="orca-guard-clinic-volumes",
        rules=(ResourceRule(CORE, ("persistentvolumes",), ("UPDATE",)),),
        clinic_namespaces=False,
        match_conditions=(
            Expression(
                "clinic-volume",
                f"has(oldObject.spec.storageClassName) && oldObject.spec.storageClassName in {_list(storage_classes)}",
            ),
        ),
        variables=(bg,),
        validations=(
            Expression(
                "reclaim-policy",
                "oldObject.spec.persistentVolumeReclaimPolicy != 'Retain' || variables.breakGlass || "
                "(has(object.spec.persistentVolumeReclaimPolicy) && "
                "object.spec.persistentVolumeReclaimPolicy == 'Retain')",
                "a clinic volume keeps reclaimPolicy Retain: with Delete its disk or share goes with its claim. "
                "Only the break-glass group changes it",
            ),
        ),
    )
    snapshots = GuardPolicy(
        name="orca-guard-clinic-snapshots",
        rules=(ResourceRule(SNAPSHOTS, ("volumesnapshots",), ("DELETE", "UPDATE")),),
        clinic_namespaces=True,
        match_conditions=(),
        variables=(
            bg,
            _TERMINATING,
            Expression("oldKind", _label("oldObject", SNAPSHOT_LABEL)),
            Expression("newKind", _label("object", SNAPSHOT_LABEL)),
            Expression("backupAccount", _backup_account("request.namespace")),
        ),
        validations=(
            Expression(
                "prune-scheduled-only",
                "request.operation != 'DELETE' || variables.breakGlass || variables.terminating || "
                f"(variables.backupAccount && variables.oldKind == '{SCHEDULED}')",
                f"only the clinic's backup job deletes snapshots, and only {SCHEDULED} ones past their retention; "
                f"{PRE_UPGRADE} and hand-made snapshots are deleted by the break-glass group alone",
            ),
            Expression(
                "kind-is-permanent",
                "request.operation != 'UPDATE' || variables.breakGlass || variables.newKind == variables.oldKind",
                f"the {SNAPSHOT_LABEL} label decides what pruning may delete: it never changes",
            ),
        ),
    )
    ref = "oldObject.spec.volumeSnapshotRef"
    contents = GuardPolicy(
        name="orca-guard-clinic-snapshot-contents",
        rules=(ResourceRule(SNAPSHOTS, ("volumesnapshotcontents",), ("DELETE", "UPDATE")),),
        clinic_namespaces=False,
        match_conditions=(
            Expression(
                "clinic-snapshot-content",
                "has(oldObject.spec.volumeSnapshotClassName) && "
                f"oldObject.spec.volumeSnapshotClassName in {_list(snapshot_classes)}",
            ),
        ),
        variables=(
            bg,
            # Pre-upgrade snapshots are named <volume>-pre-upgrade-<stamp> (backup_plan.SNAPSHOT_SCRIPT); a content
            # carries no labels of its own, only the name of its snapshot.
            Expression("preUpgrade", f"has({ref}.name) && {ref}.name.contains('-{PRE_UPGRADE}-')"),
            Expression("backupOfOwner", f"has({ref}.namespace) && {_backup_account(f'{ref}.namespace')}"),
            Expression(
                "releasing",
                "oldObject.spec.deletionPolicy == 'Retain' && object.spec.deletionPolicy != 'Retain'",
            ),
        ),
        validations=(
            Expression(
                "delete-released-only",
                "request.operation != 'DELETE' || variables.breakGlass || "
                "(oldObject.spec.deletionPolicy == 'Delete' && !variables.preUpgrade)",
                "a retained snapshot content is deleted only by the break-glass group; pruning hands a scheduled "
                "one to the snapshot controller (deletionPolicy Delete) first",
            ),
            Expression(
                "release-scheduled-only",
                "request.operation != 'UPDATE' || !variables.releasing || variables.breakGlass || "
                "(variables.backupOfOwner && !variables.preUpgrade)",
                "only the backup job of the snapshot's own namespace releases a content (deletionPolicy Delete), "
                f"and only a scheduled one; {PRE_UPGRADE} contents are retained",
            ),
            Expression(
                "owner-is-permanent",
                "request.operation != 'UPDATE' || variables.breakGlass || "
                f"(object.spec.volumeSnapshotRef.name == {ref}.name && "
                f"object.spec.volumeSnapshotRef.namespace == {ref}.namespace)",
                "a clinic snapshot content stays bound to its snapshot",
            ),
        ),
    )
    return (deletion, volumes, snapshots, contents)
