"""What the preview gate tells an operator to do instead: one place for the runbook text it prints."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import yaml

from orca_platform.plan import naming

if TYPE_CHECKING:
    from tools.deploy.gate_model import Context, Guarded

PROVIDER = (
    "do not deploy this. The provider's state has no clusterIdentifier, or a different one, and its kubeconfig\n"
    "changed (rotated credentials or CA, another cluster block). Deploy the program's stable identifier first in an\n"
    "update whose kubeconfig is unchanged; if the kubeconfig has already changed, put the identifier into the\n"
    "provider's state by hand (docs/deploying.md, \"The Kubernetes provider's identity\"), then preview again."
)
NEW_CLUSTER = (
    "the provider's clusterIdentifier changed: the program now names another cluster (the AKS cluster's name or\n"
    "group changed), and every Kubernetes object would be created again there. Revert the rename; moving clinics\n"
    "to a new cluster is a planned migration, never part of a routine update."
)
CLAIM_REPLACE = (
    "revert the change to the claim (its storage class, the clinic's `storage`, the stack's storage strategy or\n"
    "access mode): a volume's class is fixed for its life. To move a clinic to other storage, append a restore from a\n"
    "dump or snapshot onto a new volume (docs/runbooks.md, 'Restore from a dump'); the old volume stays."
)
NAMESPACE_REPLACE = (
    "revert the change: the namespace is named by the clinic id, and an id rename is a removal plus a new clinic.\n"
    "Keep the old id (display names are free to change)."
)
CREDENTIALS_REPLACE = (
    "revert the change: the passwords are stored in the clinic's database, and new ones would lock ORCA out of it"
)
RETENTION = (
    "retention only grows: put dailyRetentionDays / monthlyRetentionDays back (an unlocked policy could be\n"
    "shortened, and the lifecycle rule would then delete dumps early)"
)
ROLLBACK = (
    "the server runs on the newest volume generation: put `restores` back as it was (append-only), or append a new\n"
    "restore from a snapshot of the newer volume to go back on purpose"
)
_PLATFORM = {
    "cluster": "rebuilding the cluster takes every clinic offline: revert the setting that forces it; a new cluster\n"
    "is a planned migration (new stack or unprotect on purpose), never a side effect",
    "pool": "a replaced ORCA pool moves every clinic at once (a new VM size, zones, maxPods): revert it; add a new\n"
    "pool and move clinics deliberately instead",
    "data-group": "the clinic data group holds every clinic's disks, shares and snapshots: revert the change",
    "backup": "the backup account holds years of immutable clinic records: revert the change (its name, group, SKU\n"
    "kind or containers); retention settings only grow",
}


def platform(g: Guarded) -> str:
    return _PLATFORM.get(g.category, "revert the change")


def unprotect(ctx: Context, clinic: str, urn: str) -> str:
    return (
        f"this is step 'unprotect' of `make decommission CLINIC={clinic} STACK={ctx.stack}`:\n"
        f"pulumi state unprotect --stack {ctx.stack} '{urn}'"
    )


def removed_clinic(ctx: Context, clinic: str) -> str:
    return (
        f"put clinic {clinic} back in {ctx.tenants_file} with the same id (an update then recreates what was removed\n"
        f"on the same volume); to retire it on purpose: make decommission CLINIC={clinic} STACK={ctx.stack}"
    )


def _clean(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _clean(v) for k, v in value.items() if not str(k).startswith("__") and v is not None}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _claim_manifest(inputs: Mapping[str, Any]) -> str:
    """The claim the program would create, bound to the retained volume instead of provisioning a new one."""
    doc = _clean(inputs)
    spec = dict(doc.get("spec") or {})
    spec.pop("dataSource", None)
    spec["volumeName"] = "<pv>"
    doc["spec"] = spec
    first = ("apiVersion", "kind", "metadata", "spec")
    ordered = {k: doc[k] for k in first if k in doc} | {k: v for k, v in doc.items() if k not in first}
    return yaml.safe_dump(ordered, sort_keys=False, allow_unicode=True).rstrip()


def recreated(step: Mapping[str, Any], g: Guarded, ctx: Context) -> str:
    new = step.get("newState") or {}
    urn = str(step["urn"])
    name = urn.rsplit("::", 1)[-1]
    parent = str(new.get("parent") or "")
    provider = str(new.get("provider") or "").rsplit("::", 1)[0]
    ns = naming.namespace(g.clinic or "<clinic>")
    importing = (
        f"pulumi import --stack {ctx.stack} {new.get('type') or ''} {name} {{id}} --parent '{parent}' "
        f"--provider '{provider}' --protect --generate-code=false --yes"
    )
    if g.category == "password":
        return (
            "the generated passwords left the state while the clinic's database still uses the old ones: do not\n"
            "deploy. Restore the state from its backup (the state container is versioned), or import the values\n"
            "from the clinic's Secret `orca-credentials`"
        )
    if g.category == "namespace":
        return (
            f"do not deploy: the namespace {ns} was deleted outside Pulumi, and with it every claim in it (their\n"
            "volumes are Released and kept: reclaimPolicy Retain). Re-create it, put it back in the stack, then\n"
            "re-attach each claim the gate names:\n"
            f"  kubectl create namespace {ns}\n"
            f"  {importing.format(id=ns)}"
        )
    claim = g.object_name or "<claim>"
    manifest = "\n".join(f"    {line}" for line in _claim_manifest(new.get("inputs") or {}).splitlines())
    return (
        f"do not deploy: an empty claim would be provisioned and seeded from the image. Re-attach the retained\n"
        f"volume of {ns}/{claim} (its PersistentVolume is Released, reclaimPolicy Retain), then preview again:\n"
        "1. find it (the Released one of this claim):\n"
        "  kubectl get pv -o custom-columns=PV:.metadata.name,NS:.spec.claimRef.namespace,"
        "CLAIM:.spec.claimRef.name,STATUS:.status.phase,HANDLE:.spec.csi.volumeHandle"
        f' | awk \'$2=="{ns}" && $3=="{claim}"\'\n'
        "2. release it for a new claim: kubectl patch pv <pv> --type json "
        '-p \'[{"op":"remove","path":"/spec/claimRef"}]\'\n'
        f"3. re-create the claim pinned to it: save this (the program's own spec, plus volumeName) as {claim}.yaml,\n"
        f"   put the PV's name in volumeName, and run kubectl apply -f {claim}.yaml\n"
        f"{manifest}\n"
        "4. put it back in the stack:\n"
        f"  {importing.format(id=f'{ns}/{claim}')}"
    )


REFRESH_ONLY = (
    "do not deploy: find out who deleted it (kubectl get events, the activity log). For a claim, its volume is\n"
    "Released and kept (reclaimPolicy Retain): put the clinic back in the tenants file, re-attach the volume as the\n"
    "gate's 'recreated' advice says, then preview again; to retire the clinic: make decommission CLINIC=<id>"
)
PENDING_DELETE = (
    "do not deploy: the copy may be the volume that still holds the clinic's data. `pulumi stack export`, find this\n"
    'URN\'s entry with "delete": true and check which object holds the data; keep that one (re-attach it as the\n'
    "live claim if it is the copy), then drop the copy's entry from the export and `pulumi stack import` it"
)
