"""Builders for the audit tests (issue 6): resource views by hand, stack exports from runs, and broken exports.

The broken exports start from the program's own export and change one thing, as a person or a bad change would.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orca_platform.conventions import SECRET_SIG, SIG_KEY
from orca_platform.rules import ResourceView
from tools.offline.engine import Run
from tools.offline.stack_export import SecretSealer, build_export

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FIXED_TIME = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
CLINIC_LABELS = {"orca-platform.io/clinic": "c1", "orca-platform.io/role": "server"}


# --- views by hand ----------------------------------------------------------------------------------------------


def k8s_view(
    kind: str,
    name: str,
    namespace: str = "orca-c1",
    *,
    api: str = "core/v1",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    protect: bool = False,
    retain: bool | None = False,
    **fields: Any,
) -> ResourceView:
    meta: dict[str, Any] = {"name": name, "labels": dict(CLINIC_LABELS if labels is None else labels)}
    if namespace and kind not in ("Namespace", "StorageClass"):
        meta["namespace"] = namespace
    if annotations:
        meta["annotations"] = annotations
    props = {"apiVersion": api.replace("core/", ""), "kind": kind, "metadata": meta, **fields}
    return ResourceView(
        type=f"kubernetes:{api}:{kind}",
        urn=f"urn:pulumi:dev::orca-platform::kubernetes:{api}:{kind}::{namespace}-{name}",
        name=f"{namespace}-{name}",
        props=props,
        outputs=copy.deepcopy(props),
        protect=protect,
        retain_on_delete=retain,
    )


def azure_view(type_: str, name: str, stack: str = "dev", **props: Any) -> ResourceView:
    return ResourceView(
        type=f"azure-native:{type_}",
        urn=f"urn:pulumi:{stack}::orca-platform::azure-native:{type_}::{name}",
        name=name,
        props=props,
        id=f"/subscriptions/0/resourceGroups/rg/{type_}/{name}",
    )


def clinic_pvc(protect: bool = True, retain: bool | None = True, storage_class: str = "orca-disk") -> ResourceView:
    return k8s_view(
        "PersistentVolumeClaim",
        "orca-state",
        labels={**CLINIC_LABELS, "orca-platform.io/data": "clinic"},
        protect=protect,
        retain=retain,
        spec={
            "accessModes": ["ReadWriteOncePod"],
            "storageClassName": storage_class,
            "resources": {"requests": {"storage": "64Gi"}},
        },
    )


def container(image: str = "acr.azurecr.io/orca/jma-receipt:5.2.0", **extra: Any) -> dict[str, Any]:
    return {
        "name": "orca",
        "image": image,
        "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}},
        **extra,
    }


def deployment(strategy: str | None = "Recreate", replicas: float | None = 1.0, **pod: Any) -> ResourceView:
    spec: dict[str, Any] = {
        "template": {
            "spec": {
                "containers": [container()],
                "volumes": [{"name": "state", "persistentVolumeClaim": {"claimName": "orca-state"}}],
                **pod,
            }
        }
    }
    if strategy is not None:
        spec["strategy"] = {"type": strategy}
    if replicas is not None:
        spec["replicas"] = replicas
    return k8s_view("Deployment", "orca", api="apps/v1", spec=spec)


def secret(value: Any) -> dict[str, Any]:
    return {SIG_KEY: SECRET_SIG, "ciphertext": "v1:abc:def"} if value is ... else {SIG_KEY: SECRET_SIG, "value": value}


# --- exports ----------------------------------------------------------------------------------------------------


def export_of(run: Run) -> dict[str, Any]:
    return build_export(run, now=FIXED_TIME, sealer=SecretSealer(b"k" * 32))


def resources(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = doc["deployment"]["resources"]
    return out


def k8s_resources(doc: dict[str, Any], kind: str) -> Iterator[dict[str, Any]]:
    for r in resources(doc):
        if r["type"].startswith("kubernetes:") and r["type"].rsplit(":", 1)[-1] == kind:
            yield r


def first_clinic(
    doc: dict[str, Any], kind: str, where: Callable[[dict[str, Any]], bool] = lambda r: True
) -> dict[str, Any]:
    """The first object of that kind that carries a clinic label (and passes `where`)."""
    return next(
        r
        for r in k8s_resources(doc, kind)
        if "orca-platform.io/clinic" in (r["inputs"]["metadata"].get("labels") or {}) and where(r)
    )


def clinic_of_resource(r: dict[str, Any]) -> str:
    return str(r["inputs"]["metadata"]["labels"]["orca-platform.io/clinic"])


def with_public_service(doc: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """A clinic's LoadBalancer Service loses its internal annotation (as if someone deleted one line)."""
    doc = copy.deepcopy(doc)
    svc = first_clinic(doc, "Service")
    for part in ("inputs", "outputs"):
        svc[part]["metadata"]["annotations"].pop("service.beta.kubernetes.io/azure-load-balancer-internal")
    return doc, clinic_of_resource(svc)


def with_unprotected_pvc(doc: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """A clinic's data volume without protect and retainOnDelete."""
    doc = copy.deepcopy(doc)
    pvc = first_clinic(doc, "PersistentVolumeClaim")
    pvc.pop("protect", None)
    pvc.pop("retainOnDelete", None)
    return doc, clinic_of_resource(pvc)


def with_plaintext_secret(doc: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """A clinic's credentials Secret whose stringData was stored unencrypted."""
    doc = copy.deepcopy(doc)
    sec = first_clinic(doc, "Secret")
    for part in ("inputs", "outputs"):
        sec[part]["stringData"] = {"db-password": "Zq8pX2mLr4Tn9vWc", "ormaster-password": "Ab3dEf6hIj"}
    return doc, clinic_of_resource(sec)


def with_shown_secrets(doc: dict[str, Any]) -> dict[str, Any]:
    """What `pulumi stack export --show-secrets` prints: every secret with its plaintext."""

    def reveal(node: Any) -> Any:
        if isinstance(node, dict):
            if node.get(SIG_KEY) == SECRET_SIG:
                return {SIG_KEY: SECRET_SIG, "plaintext": json.dumps("revealed-value")}
            return {k: reveal(v) for k, v in node.items()}
        if isinstance(node, list):
            return [reveal(v) for v in node]
        return node

    shown: dict[str, Any] = reveal(doc)
    return shown


def with_pending_operations(doc: dict[str, Any]) -> dict[str, Any]:
    """An update that was interrupted while it created one clinic's Deployment and updated another's Service."""
    doc = copy.deepcopy(doc)
    dep = first_clinic(doc, "Deployment")
    svc = first_clinic(doc, "Service")
    doc["deployment"]["pending_operations"] = [
        {"resource": copy.deepcopy(dep), "type": "creating"},
        {"resource": copy.deepcopy(svc), "type": "updating"},
    ]
    return doc


def as_older_export(doc: dict[str, Any]) -> dict[str, Any]:
    """An export by an old CLI: version 2, an old engine, no retainOnDelete, some resources without a type."""
    doc = copy.deepcopy(doc)
    doc["version"] = 2
    doc["deployment"]["manifest"] = {"time": "2021-06-01T00:00:00Z", "magic": "", "version": "v3.4.0"}
    doc["deployment"].pop("secrets_providers", None)
    for i, r in enumerate(resources(doc)):
        r.pop("retainOnDelete", None)
        r.pop("additionalSecretOutputs", None)
        if i % 5 == 0:
            r.pop("type", None)
    return doc


def dump(doc: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path
