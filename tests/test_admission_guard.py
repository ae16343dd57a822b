"""Issue 12: the admission guard, its CEL evaluated by a real CEL implementation (cel-python) against admission
requests shaped as the API server sends them: who may delete or release clinic data, and who may not.

The policies and bindings come from the rendered stack (the real program under mocks), so what is tested is what
would be applied. Matching is modelled as the API server does it: resource rules, the binding's namespaceSelector
(a Namespace is matched on its own labels, a cluster-scoped object is never excluded), then matchConditions, then
every validation must be true. An expression that errors counts as a denial (failurePolicy Fail) and fails the test
that expected an answer, so every expression is also shown never to error on these requests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import celpy
import pytest
from celpy.evaluation import CELEvalError

from orca_platform import conventions
from orca_platform.backup import backup_plan
from orca_platform.safety.admission import guard_policies
from tests.orca_test_support import load_settings
from tools.offline.engine import Registered, Run

CLINIC = "test-sakura"
NS = f"orca-{CLINIC}"
OTHER_NS = "orca-test-aoba"
ADMIN_GROUP = "3f9a1c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"
BACKUP_SA = f"system:serviceaccount:{NS}:orca-backup"
OTHER_BACKUP_SA = f"system:serviceaccount:{OTHER_NS}:orca-backup"
NAMESPACE_CONTROLLER = "system:serviceaccount:kube-system:namespace-controller"
SNAPSHOT_CONTROLLER = "system:serviceaccount:kube-system:snapshot-controller"
OPERATOR = "operator@example.jp"
SNAPSHOT_CLASS = "orca-snapshots-file"

_env = celpy.Environment()


@dataclass
class Request:
    operation: str
    group: str
    resource: str
    name: str
    namespace: str = ""
    username: str = OPERATOR
    groups: list[str] = field(default_factory=lambda: [ADMIN_GROUP, "system:authenticated"])
    obj: dict[str, Any] | None = None
    old: dict[str, Any] | None = None
    namespace_object: dict[str, Any] | None = None


@dataclass
class Verdict:
    allowed: bool
    messages: list[str]
    policies: list[str]  # the policies that applied


def _eval(expression: str, activation: dict[str, Any]) -> Any:
    program = _env.program(_env.compile(expression))
    return program.evaluate(activation)


def _namespace_labels(run: Run, name: str) -> dict[str, str]:
    found = [r for r in run.k8s("Namespace") if r.inputs["metadata"]["name"] == name]
    return dict(found[0].inputs["metadata"].get("labels") or {}) if found else {}


def _selector_matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    if not selector:
        return True
    for expr in selector.get("matchExpressions") or []:
        assert expr["operator"] == "Exists", "only Exists is modelled"
        if expr["key"] not in labels:
            return False
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def _rule_matches(spec: dict[str, Any], req: Request) -> bool:
    for rule in spec["matchConstraints"]["resourceRules"]:
        if (
            req.group in rule["apiGroups"]
            and req.resource in rule["resources"]
            and req.operation in rule["operations"]
            and rule["apiVersions"] == ["*"]
        ):
            return True
    return False


def admit(run: Run, req: Request) -> Verdict:
    """What the API server would answer, from the rendered policies and bindings."""
    policies = {p.inputs["metadata"]["name"]: p for p in run.k8s("ValidatingAdmissionPolicy")}
    bindings = run.k8s("ValidatingAdmissionPolicyBinding")
    assert policies and len(bindings) == len(policies)
    request = {
        "operation": req.operation,
        "name": req.name,
        "namespace": req.namespace,
        "resource": {"group": req.group, "version": "v1", "resource": req.resource},
        "userInfo": {"username": req.username, "groups": req.groups},
    }
    activation = {
        "request": celpy.json_to_cel(request),
        "object": celpy.json_to_cel(req.obj),
        "oldObject": celpy.json_to_cel(req.old),
        "namespaceObject": celpy.json_to_cel(req.namespace_object),
    }
    messages: list[str] = []
    applied: list[str] = []
    for binding in bindings:
        spec = binding.inputs["spec"]
        assert spec["validationActions"] == ["Deny"]
        policy = policies[spec["policyName"]]
        pspec = policy.inputs["spec"]
        assert pspec["failurePolicy"] == "Fail"
        if not _rule_matches(pspec, req):
            continue
        selector = (spec.get("matchResources") or {}).get("namespaceSelector")
        if req.resource == "namespaces":
            labels = _namespace_labels(run, req.name)
        elif req.namespace:
            labels = _namespace_labels(run, req.namespace)
        else:
            labels, selector = {}, None  # cluster-scoped objects are never excluded by a namespaceSelector
        if not _selector_matches(selector, labels):
            continue
        if not all(bool(_eval(c["expression"], activation)) for c in pspec.get("matchConditions") or []):
            continue
        applied.append(spec["policyName"])
        # Variables are lazy in the API server: one that cannot be evaluated here is an error only where reached.
        variables: dict[Any, Any] = {}
        for v in pspec["variables"]:
            try:
                variables[celpy.celtypes.StringType(v["name"])] = _eval(v["expression"], activation)
            except CELEvalError as exc:
                variables[celpy.celtypes.StringType(v["name"])] = exc
        scope = {**activation, "variables": celpy.celtypes.MapType(variables)}
        for validation in pspec["validations"]:
            if not bool(_eval(validation["expression"], scope)):
                messages.append(validation["message"])
    return Verdict(allowed=not messages, messages=messages, policies=applied)


def _break_glass(run: Run) -> str:
    group = load_settings(run.stack).cluster.break_glass_group
    assert group, "the sample stacks name a break-glass group"
    return group


# --- objects as the API server holds them -------------------------------------------------------------------------


def _namespace(name: str, terminating: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {"orca-platform.io/clinic": name.removeprefix("orca-")}}
    if terminating:
        meta["deletionTimestamp"] = "2026-12-01T02:00:00Z"
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def _claim() -> dict[str, Any]:
    return {"metadata": {"name": "orca-state", "namespace": NS, "labels": {"orca-platform.io/data": "clinic"}}}


def _volume(reclaim: str, storage_class: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "pvc-1234"},
        "spec": {
            "storageClassName": storage_class,
            "persistentVolumeReclaimPolicy": reclaim,
            "claimRef": {"namespace": NS, "name": "orca-state"},
        },
    }


def _snapshot(kind: str | None, name: str = "orca-state-20261120013000") -> dict[str, Any]:
    labels = {"orca-platform.io/clinic": CLINIC}
    if kind is not None:
        labels[conventions.SNAPSHOT_LABEL] = kind
    return {"metadata": {"name": name, "namespace": NS, "labels": labels}, "spec": {"source": {}}}


def _content(snapshot: str, policy: str, namespace: str = NS, cls: str = SNAPSHOT_CLASS) -> dict[str, Any]:
    return {
        "metadata": {"name": "snapcontent-1"},
        "spec": {
            "deletionPolicy": policy,
            "driver": "file.csi.azure.com",
            "volumeSnapshotClassName": cls,
            "volumeSnapshotRef": {"name": snapshot, "namespace": namespace},
            "source": {"volumeHandle": "x"},
        },
    }


def _with_policy(content: dict[str, Any], policy: str) -> dict[str, Any]:
    return {**content, "spec": {**content["spec"], "deletionPolicy": policy}}


def _delete(resource: str, group: str, old: dict[str, Any], **kw: Any) -> Request:
    meta = old["metadata"]
    return Request("DELETE", group, resource, meta["name"], meta.get("namespace", ""), old=old, **kw)


def _update(resource: str, group: str, old: dict[str, Any], new: dict[str, Any], **kw: Any) -> Request:
    meta = old["metadata"]
    return Request("UPDATE", group, resource, meta["name"], meta.get("namespace", ""), obj=new, old=old, **kw)


SNAP = "snapshot.storage.k8s.io"


# --- the tests ----------------------------------------------------------------------------------------------------


def test_the_stack_renders_four_policies_each_with_its_binding(stack_run: Run) -> None:
    policies = {p.inputs["metadata"]["name"] for p in stack_run.k8s("ValidatingAdmissionPolicy")}
    bindings = {b.inputs["spec"]["policyName"] for b in stack_run.k8s("ValidatingAdmissionPolicyBinding")}
    assert policies == bindings and len(policies) == 4
    for res in [*stack_run.k8s("ValidatingAdmissionPolicy"), *stack_run.k8s("ValidatingAdmissionPolicyBinding")]:
        assert res.inputs["apiVersion"] == "admissionregistration.k8s.io/v1"


@pytest.mark.parametrize("who", ["operator", "break-glass"])
def test_deleting_a_clinic_namespace_needs_the_break_glass_group(stack_run: Run, who: str) -> None:
    groups = [ADMIN_GROUP] + ([_break_glass(stack_run)] if who == "break-glass" else [])
    clinic_ns = f"orca-{sorted(stack_run.outputs['clinics'])[0]}"
    verdict = admit(stack_run, _delete("namespaces", "", _namespace(clinic_ns), groups=groups))
    assert verdict.policies == ["orca-guard-clinic-deletion"]
    assert verdict.allowed is (who == "break-glass"), verdict.messages
    if who == "operator":
        assert "break-glass" in verdict.messages[0]


def test_other_namespaces_are_not_guarded(dev_run: Run) -> None:
    ingress = {"metadata": {"name": "orca-ingress", "labels": {}}}
    verdict = admit(dev_run, _delete("namespaces", "", ingress))
    assert verdict.allowed and verdict.policies == []


def test_deleting_a_clinic_claim_is_refused_unless_break_glass_or_its_namespace_is_going(dev_run: Run) -> None:
    assert not admit(dev_run, _delete("persistentvolumeclaims", "", _claim(), namespace_object=_namespace(NS))).allowed
    bg = [_break_glass(dev_run)]
    assert admit(
        dev_run, _delete("persistentvolumeclaims", "", _claim(), groups=bg, namespace_object=_namespace(NS))
    ).allowed
    # The namespace controller empties a namespace the break-glass group deleted; the disks stay (Retain).
    going = _delete(
        "persistentvolumeclaims",
        "",
        _claim(),
        username=NAMESPACE_CONTROLLER,
        groups=["system:serviceaccounts"],
        namespace_object=_namespace(NS, terminating=True),
    )
    assert admit(dev_run, going).allowed


def test_a_clinic_volume_keeps_reclaim_policy_retain(dev_run: Run) -> None:
    cls = dev_run.k8s("StorageClass")[0].inputs["metadata"]["name"]
    old, new = _volume("Retain", cls), _volume("Delete", cls)
    verdict = admit(dev_run, _update("persistentvolumes", "", old, new))
    assert not verdict.allowed and "Retain" in verdict.messages[0]
    assert admit(dev_run, _update("persistentvolumes", "", old, new, groups=[_break_glass(dev_run)])).allowed
    # Other updates of the volume (its claim reference, annotations) and volumes of other classes are untouched.
    relabelled = {**old, "metadata": {"name": "pvc-1234", "annotations": {"x": "y"}}}
    assert admit(dev_run, _update("persistentvolumes", "", old, relabelled)).allowed
    foreign = _update("persistentvolumes", "", _volume("Retain", "managed-csi"), _volume("Delete", "managed-csi"))
    verdict = admit(dev_run, foreign)
    assert verdict.allowed and verdict.policies == []


def test_the_backup_job_prunes_scheduled_snapshots_of_its_own_namespace_only(dev_run: Run) -> None:
    ns = _namespace(NS)
    scheduled = _snapshot(backup_plan.SCHEDULED)
    assert admit(dev_run, _delete("volumesnapshots", SNAP, scheduled, username=BACKUP_SA, namespace_object=ns)).allowed
    # Never a pre-upgrade one, nor a hand-made one without the label, nor another clinic's account, nor a person.
    pre = _snapshot(backup_plan.PRE_UPGRADE, "orca-state-pre-upgrade-20261120013000")
    for snapshot, user in (
        (pre, BACKUP_SA),
        (_snapshot(None), BACKUP_SA),
        (scheduled, OTHER_BACKUP_SA),
        (scheduled, OPERATOR),
    ):
        verdict = admit(dev_run, _delete("volumesnapshots", SNAP, snapshot, username=user, namespace_object=ns))
        assert not verdict.allowed, (snapshot["metadata"], user)
        assert "break-glass" in verdict.messages[0]
    bg = [_break_glass(dev_run)]
    assert admit(dev_run, _delete("volumesnapshots", SNAP, pre, groups=bg, namespace_object=ns)).allowed


def test_a_snapshot_kind_label_never_changes(dev_run: Run) -> None:
    pre = _snapshot(backup_plan.PRE_UPGRADE, "orca-state-pre-upgrade-20261120013000")
    relabelled = _snapshot(backup_plan.SCHEDULED, "orca-state-pre-upgrade-20261120013000")
    verdict = admit(dev_run, _update("volumesnapshots", SNAP, pre, relabelled, namespace_object=_namespace(NS)))
    assert not verdict.allowed
    # The snapshot controller's own updates (finalizers, annotations) keep the label and pass.
    finalized = {**pre, "metadata": {**pre["metadata"], "finalizers": ["snapshot.storage.kubernetes.io/x"]}}
    update = _update(
        "volumesnapshots", SNAP, pre, finalized, username=SNAPSHOT_CONTROLLER, namespace_object=_namespace(NS)
    )
    assert admit(dev_run, update).allowed


def test_pruning_releases_a_scheduled_content_and_the_controller_deletes_it(dev_run: Run) -> None:
    retained = _content("orca-state-20261120013000", "Retain")
    released = _with_policy(retained, "Delete")
    contents = "volumesnapshotcontents"
    # Step 1: the clinic's own backup account releases the content of a scheduled snapshot.
    assert admit(dev_run, _update(contents, SNAP, retained, released, username=BACKUP_SA)).allowed
    # Step 2: the snapshot controller deletes the released content once its snapshot is gone.
    assert admit(dev_run, _delete(contents, SNAP, released, username=SNAPSHOT_CONTROLLER)).allowed
    # Nobody deletes a retained content, and no other account releases it.
    assert not admit(dev_run, _delete(contents, SNAP, retained, username=SNAPSHOT_CONTROLLER)).allowed
    assert not admit(dev_run, _update(contents, SNAP, retained, released, username=OTHER_BACKUP_SA)).allowed
    assert not admit(dev_run, _update(contents, SNAP, retained, released)).allowed
    # Updates that keep the policy (the sidecar's finalizers and status) pass.
    annotated = {**retained, "metadata": {"name": "snapcontent-1", "annotations": {"a": "b"}}}
    assert admit(dev_run, _update(contents, SNAP, retained, annotated, username=SNAPSHOT_CONTROLLER)).allowed


def test_pre_upgrade_contents_are_never_released_or_deleted_but_by_break_glass(dev_run: Run) -> None:
    contents = "volumesnapshotcontents"
    retained = _content("orca-state-pre-upgrade-20261120013000", "Retain")
    released = _with_policy(retained, "Delete")
    assert not admit(dev_run, _update(contents, SNAP, retained, released, username=BACKUP_SA)).allowed
    # A content made before the classes retained (deletionPolicy Delete) is still not deletable.
    assert not admit(dev_run, _delete(contents, SNAP, released, username=SNAPSHOT_CONTROLLER)).allowed
    bg = [_break_glass(dev_run)]
    assert admit(dev_run, _update(contents, SNAP, retained, released, groups=bg)).allowed
    assert admit(dev_run, _delete(contents, SNAP, retained, groups=bg)).allowed


def test_a_content_stays_bound_to_its_snapshot(dev_run: Run) -> None:
    contents = "volumesnapshotcontents"
    old = _content("orca-state-pre-upgrade-20261120013000", "Retain")
    moved = _content("orca-state-20261120013000", "Retain", namespace=OTHER_NS)
    assert not admit(dev_run, _update(contents, SNAP, old, moved, username=OTHER_BACKUP_SA)).allowed


def test_contents_of_other_classes_are_not_guarded(dev_run: Run) -> None:
    foreign = _content("some-snapshot", "Retain", cls="other-class")
    verdict = admit(dev_run, _delete("volumesnapshotcontents", SNAP, foreign))
    assert verdict.allowed and verdict.policies == []


def test_without_a_break_glass_group_nobody_passes() -> None:
    for policy in guard_policies(None, ["orca-files"], [SNAPSHOT_CLASS]):
        variable = {v.name: v.expression for v in policy.variables}["breakGlass"]
        assert variable == "false"
    settings = load_settings("dev")
    assert settings.cluster.break_glass_group not in settings.cluster.admin_group_object_ids, (
        "the break-glass group is not the operators' group: membership is granted for one task"
    )


def _binding_of(run: Run, policy: str) -> Registered:
    return next(b for b in run.k8s("ValidatingAdmissionPolicyBinding") if b.inputs["spec"]["policyName"] == policy)


def test_namespaced_policies_bind_to_clinic_namespaces_only(dev_run: Run) -> None:
    for name in ("orca-guard-clinic-deletion", "orca-guard-clinic-snapshots"):
        selector = _binding_of(dev_run, name).inputs["spec"]["matchResources"]["namespaceSelector"]
        assert selector == {"matchExpressions": [{"key": "orca-platform.io/clinic", "operator": "Exists"}]}
