"""What an update does besides data: the ORCA servers it stops or restarts, the pre-upgrade backups it runs, and the
network exposure it changes. Shared by the gate's report (from the preview's detailedDiff paths) and `make diff` (from
the rendered objects' field paths); pure, so both say the same.

A clinic's server restarts when its Deployment's pod template changes (Kubernetes rolls a new ReplicaSet for any
change under spec.template: kubernetes/kubernetes pkg/controller/deployment/util `EqualIgnoreHash` compares the whole
template); with `strategy: Recreate` and one replica the old pod stops first. The program runs a pre-upgrade backup
Job (and its stop Job) for every new image, named by its hash (orca_platform/backup): a created one runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

_IMAGE = re.compile(r"^spec\.template\.spec\.(containers|initContainers)\[[^\]]+\]\.image$")
_CLAIM = re.compile(r"^spec\.template\.spec\.volumes\[[^\]]+\]\.persistentVolumeClaim\.claimName$")
PRE_UPGRADE = "-backup-pre-upgrade-"
# Fields that open a network path: ranges allowed to the API server, the storage firewall, policies' peers.
EXPOSURE_KEYS = (
    "authorizedIPRanges",
    "ipRules",
    "virtualNetworkRules",
    "ipBlock",
    "sourceAddressPrefix",
    "sourceAddressPrefixes",
    "loadBalancerSourceRanges",
    "publicNetworkAccess",
    "defaultAction",
)


@dataclass
class Effects:
    restarts: dict[str, list[str]] = field(default_factory=dict)  # clinic -> why
    backups: dict[str, list[str]] = field(default_factory=dict)  # clinic -> pre-upgrade Jobs created
    exposure: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out: list[str] = []
        if self.restarts or self.backups:
            out.append(f"servers that stop or restart: {len(self.restarts) or 'none'}")
            for clinic in sorted(set(self.restarts) | set(self.backups)):
                why = ", ".join(self.restarts.get(clinic, [])) or "no restart"
                jobs = self.backups.get(clinic, [])
                backup = f"; its pre-upgrade backup runs first ({', '.join(jobs)})" if jobs else ""
                out.append(f"  - clinic {clinic}: {why}{backup}")
        if self.exposure:
            out.append(f"exposure changes: {len(self.exposure)} (review who can now reach what)")
            out += [f"  - {line}" for line in self.exposure]
        return out


def server_change(paths: Iterable[str], replicas: tuple[object, object] = (None, None)) -> list[str]:
    """Why a clinic's server stops or restarts, from the changed paths of its Deployment (empty: it keeps running)."""
    before, after = replicas
    if before != after and after == 0:
        return ["stops (replicas 0: suspended)"]
    if before != after and before == 0:
        return ["starts (replicas 1: resumed)"]
    why: list[str] = []
    template = [p for p in paths if p.startswith("spec.template.")]
    if any(_IMAGE.match(p) for p in template):
        why.append("restarts: new image")
    if any(_CLAIM.match(p) for p in template):
        why.append("restarts: another volume generation")
    if template and not why:
        why.append(f"restarts: pod template ({template[0]})")
    return why


def exposure_of(kind: str, where: str, path: str) -> str | None:
    """A line naming what a changed field opens, or None when the field opens nothing."""
    if not any(key in path for key in EXPOSURE_KEYS):
        return None
    if kind == "ManagedCluster":
        reaches = "the API server"
    elif kind in ("StorageAccount", "PrivateEndpoint") and "backup" in where:
        reaches = "the backup endpoint"
    elif kind == "NetworkPolicy":
        reaches = f"the clinic network of {where}"
    else:
        reaches = where
    return f"{reaches}: {kind} {path}"


def is_pre_upgrade_backup(kind: str, name: str) -> bool:
    return kind == "Job" and PRE_UPGRADE in name and f"{PRE_UPGRADE}stop-" not in name
