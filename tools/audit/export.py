"""Reading a `pulumi stack export` for the audit: versions, secrets, pending operations, resources as rule views.

Refuses an export made with --show-secrets (decrypted secrets must not be filed with audit evidence) and anything
that is not an export; reads older deployment versions, checkpoint files and half-finished updates with a note.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orca_platform.conventions import SECRET_SIG, SIG_KEY
from orca_platform.rules import (
    ResourceView,
    as_list,
    as_map,
    as_text,
)

SUPPORTED_VERSIONS = (1, 2, 3, 4)
# The engine started recording retainOnDelete with the option itself (Pulumi v3.24).
RETAIN_SINCE = (3, 24)


class AuditInputError(Exception):
    """An export the audit cannot or will not read; the message is for the person who ran it."""


@dataclass
class LoadedExport:
    views: list[ResourceView]
    version: int
    stack: str
    project: str
    manifest: Mapping[str, Any]
    sha256: str
    source: str
    notes: list[str] = field(default_factory=list)
    pending: list[dict[str, str]] = field(default_factory=list)
    deleting: list[ResourceView] = field(default_factory=list)


# --- reading ---------------------------------------------------------------------------------------------------


def plaintext_secrets(node: Any, path: str = "") -> list[str]:
    """Paths of secrets that carry their plaintext (an export made with --show-secrets)."""
    found: list[str] = []
    if isinstance(node, Mapping):
        if node.get(SIG_KEY) == SECRET_SIG and ("plaintext" in node or "value" in node):
            return [path or "."]
        for k, v in node.items():
            found.extend(plaintext_secrets(v, f"{path}.{k}" if path else str(k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found.extend(plaintext_secrets(v, f"{path}[{i}]"))
    return found


def _engine_version(manifest: Mapping[str, Any]) -> tuple[int, ...] | None:
    m = re.match(r"v?(\d+)\.(\d+)", as_text(manifest.get("version")))
    return (int(m.group(1)), int(m.group(2))) if m else None


def _type_from_urn(urn: str) -> str:
    # urn:pulumi:<stack>::<project>::<parent type>$<type>::<name>
    parts = urn.split("::")
    return parts[2].rsplit("$", 1)[-1] if len(parts) >= 4 else ""


def _view(res: Mapping[str, Any], retain_known: bool, notes: Counter[str]) -> ResourceView | None:
    urn = res.get("urn")
    if not isinstance(urn, str) or not urn:
        notes["resources without a URN, skipped"] += 1
        return None
    type_ = res.get("type") if isinstance(res.get("type"), str) else _type_from_urn(urn)
    if not res.get("type"):
        notes["resources without a type, identified by their URN"] += 1
    inputs = res.get("inputs")
    outputs: Mapping[str, Any] = as_map(res.get("outputs"))
    if not isinstance(inputs, Mapping):
        # Version-1 deployments kept defaults apart; very old ones kept only outputs.
        inputs = {**as_map(res.get("defaults")), **outputs} if res.get("custom", True) else {}
        if res.get("custom", True) and type_ and not type_.startswith(("pulumi:pulumi:", "pulumi:providers:")):
            notes["resources without recorded inputs, judged by their outputs"] += 1
    elif isinstance(res.get("defaults"), Mapping):
        inputs = {**res["defaults"], **inputs}
    return ResourceView(
        type=str(type_),
        urn=urn,
        name=urn.rsplit("::", 1)[-1],
        props=dict(inputs),
        outputs=dict(outputs),
        protect=res.get("protect") is True,
        retain_on_delete=(res.get("retainOnDelete") is True) if retain_known else None,
        parent=as_text(res.get("parent")),
        id=as_text(res.get("id")),
        dependencies=tuple(d for d in res.get("dependencies") or [] if isinstance(d, str)),
        additional_secret_outputs=tuple(k for k in res.get("additionalSecretOutputs") or [] if isinstance(k, str)),
    )


def _parse(data: bytes, source: str) -> tuple[int, Mapping[str, Any], list[str]]:
    """(version, deployment, notes) of an export, after refusing anything that must not be audited."""
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise AuditInputError(f"{source} is not JSON ({exc}); expected the output of `pulumi stack export`") from None
    if not isinstance(doc, Mapping):
        raise AuditInputError(f"{source} is JSON but not a stack export (expected an object)")

    revealed = plaintext_secrets(doc)
    if revealed:
        shown = ", ".join(revealed[:3]) + (f" and {len(revealed) - 3} more" if len(revealed) > 3 else "")
        raise AuditInputError(
            f"{source} holds {len(revealed)} decrypted secret(s) ({shown}): it was exported with --show-secrets. "
            "Refusing to audit or archive it; export again without --show-secrets and delete this file."
        )

    notes: list[str] = []
    version = doc.get("version")
    if "checkpoint" in doc and "deployment" not in doc:
        notes.append("read a state checkpoint file, not a `pulumi stack export`: audited its latest deployment")
        deployment = as_map(as_map(doc.get("checkpoint")).get("latest"))
    elif "deployment" in doc:
        deployment = as_map(doc.get("deployment"))
    else:
        raise AuditInputError(f"{source} has no deployment: is it the output of `pulumi stack export`?")
    if not isinstance(version, int) or isinstance(version, bool):
        raise AuditInputError(f"{source} has no deployment version: is it the output of `pulumi stack export`?")
    if version not in SUPPORTED_VERSIONS:
        raise AuditInputError(
            f"{source} is deployment version {version}; this audit reads versions "
            f"{', '.join(map(str, SUPPORTED_VERSIONS))}"
        )
    if version != 3:
        notes.append(f"deployment version {version} read as version 3; fields it lacks are reported as unknown")
    return version, deployment, notes


def _pending(deployment: Mapping[str, Any]) -> list[dict[str, str]]:
    pending: list[dict[str, str]] = []
    for op in as_list(deployment.get("pending_operations")):
        res = as_map(as_map(op).get("resource"))
        pending.append({"operation": as_text(as_map(op).get("type")) or "?", "urn": as_text(res.get("urn"))})
    return pending


def load_export(data: bytes, source: str) -> LoadedExport:
    """Parse and check an export; raise AuditInputError for anything the audit must not go on with."""
    version, deployment, notes = _parse(data, source)
    manifest = as_map(deployment.get("manifest"))
    if not manifest:
        notes.append("the export has no manifest: the engine version and time of the update are unknown")
    engine = _engine_version(manifest)
    raw_resources = [r for r in as_list(deployment.get("resources")) if isinstance(r, Mapping)]
    # The field is omitted when false, so its absence means "false" only from an engine that knew the option.
    recorded = any("retainOnDelete" in r for r in raw_resources)
    retain_known = recorded or (version >= 3 and engine is not None and engine >= RETAIN_SINCE)
    if not retain_known:
        notes.append(
            f"the engine that wrote this export ({manifest.get('version') or 'unknown'}) may predate retainOnDelete: "
            "'retained' is unknown and the retention rule was not applied"
        )

    counted: Counter[str] = Counter()
    views: list[ResourceView] = []
    deleting: list[ResourceView] = []
    for res in raw_resources:
        view = _view(res, retain_known, counted)
        if view is None:
            continue
        if res.get("delete") is True:
            deleting.append(view)
            continue
        if res.get("pendingReplacement") is True:
            counted["resources deleted for replacement and not yet recreated"] += 1
        if res.get("initErrors"):
            counted["resources with errors from their last create or update (initErrors)"] += 1
        views.append(view)
    notes.extend(f"{what}: {n}" for what, n in sorted(counted.items()))
    if deleting:
        notes.append(
            f"{len(deleting)} resource(s) are marked for deletion by an unfinished replacement and were not audited: "
            + ", ".join(v.display for v in deleting[:5])
        )
    pending = _pending(deployment)
    if pending:
        what = ", ".join(f"{p['operation']} {p['urn'].rsplit('::', 1)[-1]}" for p in pending[:5])
        notes.append(
            f"the last update did not finish: {len(pending)} operation(s) were in flight ({what}). The cloud may "
            "differ from this state: clear them (`pulumi cancel`, then `pulumi refresh`) and audit again"
        )
    if not views:
        notes.append("the export holds no resources (a new or destroyed stack)")

    first = next((v.urn for v in views), "")
    m = re.match(r"urn:pulumi:([^:]+)::([^:]+)::", first)
    return LoadedExport(
        views=views,
        version=version,
        stack=m.group(1) if m else "",
        project=m.group(2) if m else "",
        manifest=manifest,
        sha256=hashlib.sha256(data).hexdigest(),
        source=source,
        notes=notes,
        pending=pending,
        deleting=deleting,
    )
