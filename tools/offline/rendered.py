"""A stack as `make synth` wrote it, read back: every resource by URN, its inputs and options, and the stack outputs.

The operator tools (diff, clinic card, network diagram) read this rather than run the program themselves, so they
show exactly what synth shows, secrets already redacted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orca_platform.conventions import CLINIC_LABEL

URN_HEADER = "# pulumi urn: "
OPTION_HEADER = "# pulumi "
# A URN names only its parent's type: children of a clinic sit under one of these, named "<clinic id>-...".
TENANT_TYPES = ("orca:platform:OrcaTenant", "orca:platform:ClinicBackup")


def integral(value: Any) -> Any:
    """Numbers cross the mock monitor as doubles: show 3, not 3.0."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [integral(v) for v in value]
    return value


@dataclass(frozen=True)
class Resource:
    urn: str
    type: str
    name: str  # the Pulumi resource name (last URN segment)
    inputs: dict[str, Any]  # a Kubernetes object's whole manifest; an Azure resource's inputs
    options: dict[str, Any]

    @property
    def is_kubernetes(self) -> bool:
        return self.type.startswith("kubernetes:")

    @property
    def parents(self) -> list[str]:
        """The URN's qualified type: the parent's type (if any), then the resource's own."""
        parts = self.urn.split("::")
        return parts[2].split("$") if len(parts) >= 4 else [self.type]

    @property
    def kind(self) -> str:
        if self.is_kubernetes:
            return str(self.inputs.get("kind") or self.type.rsplit(":", 1)[-1])
        return self.type.rsplit(":", 1)[-1]

    @property
    def metadata(self) -> dict[str, Any]:
        meta = self.inputs.get("metadata")
        return meta if isinstance(meta, dict) else {}

    @property
    def namespace(self) -> str:
        return str(self.metadata.get("namespace") or "")

    @property
    def object_name(self) -> str:
        return str(self.metadata.get("name") or self.inputs.get("name") or self.name)

    @property
    def display(self) -> str:
        if self.is_kubernetes:
            where = f"{self.namespace}/" if self.namespace else ""
            return f"{self.kind} {where}{self.object_name}"
        return f"{self.kind} {self.name}"


@dataclass
class RenderedStack:
    folder: Path
    resources: dict[str, Resource] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)

    @property
    def clinics(self) -> dict[str, dict[str, Any]]:
        clinics = self.outputs.get("clinics")
        return clinics if isinstance(clinics, dict) else {}

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources.values() if r.type == type_]

    def clinic_of(self, res: Resource, known: set[str] | None = None) -> str | None:
        """The clinic a resource belongs to, or None for the platform's own."""
        ids = known if known is not None else set(self.clinics)
        label = (self.metadata_labels(res)).get(CLINIC_LABEL)
        if isinstance(label, str) and label in ids:
            return label
        ns = res.namespace or (res.object_name if res.kind == "Namespace" else "")
        if ns.startswith("orca-") and ns[len("orca-") :] in ids:
            return ns[len("orca-") :]
        if any(t in res.parents[:-1] for t in TENANT_TYPES):
            # The longest id wins ('a' vs 'a-b').
            owners = [cid for cid in ids if res.name.startswith(f"{cid}-")]
            if owners:
                return max(owners, key=len)
        if res.type == "azure-native:privatedns:PrivateRecordSet":
            return self._record_owner(res, ids)
        return None

    @staticmethod
    def metadata_labels(res: Resource) -> dict[str, Any]:
        labels = res.metadata.get("labels")
        return labels if isinstance(labels, dict) else {}

    def _record_owner(self, res: Resource, ids: set[str]) -> str | None:
        zone = str(self.outputs.get("dnsZone") or "")
        record = str(res.inputs.get("relativeRecordSetName") or "")
        host = zone if record == "@" else f"{record}.{zone}"
        return next((cid for cid, c in self.clinics.items() if cid in ids and c.get("fqdn") == host), None)


def _read_k8s(path: Path) -> Resource:
    text = path.read_text(encoding="utf-8")
    urn = ""
    options: dict[str, Any] = {}
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        if line.startswith(URN_HEADER):
            urn = line[len(URN_HEADER) :]
        elif line.startswith(OPTION_HEADER):
            key, _, value = line[len(OPTION_HEADER) :].partition(": ")
            options[key] = json.loads(value)
    body = yaml.safe_load(text) or {}
    type_ = urn.split("::")[2].split("$")[-1] if urn.count("::") >= 3 else ""
    return Resource(urn=urn, type=type_, name=urn.rsplit("::", 1)[-1], inputs=body, options=options)


def _read_other(path: Path) -> Resource:
    doc = json.loads(path.read_text(encoding="utf-8"))
    return Resource(
        urn=doc["urn"],
        type=doc["type"],
        name=doc["name"],
        inputs=integral(doc.get("inputs") or {}),
        options=doc.get("options") or {},
    )


def load(folder: Path) -> RenderedStack:
    """Read a folder written by `make synth` (tools/offline/synth.py)."""
    if not (folder / "stack-outputs.json").exists():
        raise FileNotFoundError(f"{folder} holds no rendered stack (no stack-outputs.json): run `make synth` first")
    stack = RenderedStack(folder)
    for path in sorted((folder / "k8s").rglob("*.yaml")):
        res = _read_k8s(path)
        stack.resources[res.urn] = res
    for sub in ("azure", "other"):
        for path in sorted((folder / sub).glob("*.json")):
            res = _read_other(path)
            stack.resources[res.urn] = res
    stack.outputs = json.loads((folder / "stack-outputs.json").read_text(encoding="utf-8"))
    return stack
