"""The preview gate's vocabulary: the step operations and resource types it knows, and what it records.

Apart from the gate itself so that its advice (tools/deploy/advice.py) can name these types without importing the gate,
which imports the advice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Step operations (pulumi/pulumi sdk/go/common/apitype/history.go `OpType`, pkg/resource/deploy/step.go `StepOp`,
# read at 3.260.0). Every replacement step (deploy.IsReplacementStep) and every removal loses the old object. The
# non-logical ones reach a JSON preview only with --show-replacement-steps (display.go shouldShow): create-replacement
# and delete-replaced around a logical replace (step_generator.go generateSteps), delete-replaced alone for a
# pending-delete copy (GenerateDeletes: `res.Delete`), remove-pending-replace for a resource left pending replacement
# that the program no longer registers, discard-replaced / read-replacement for a read (external) resource,
# import-replacement for an import over an existing one.
DESTRUCTIVE = frozenset(
    {
        "delete",
        "discard",
        "replace",
        "create-replacement",
        "delete-replaced",
        "read-replacement",
        "discard-replaced",
        "remove-pending-replace",
        "import-replacement",
    }
)
KNOWN = DESTRUCTIVE | {"same", "create", "update", "read", "refresh", "import", "diff", "extend-parameterize"}
REMOVALS = frozenset({"delete", "discard"})

TENANT = "orca:platform:OrcaTenant"
BACKUP = "orca:platform:BackupStorage"
K8S_PROVIDER = "pulumi:providers:kubernetes"
NAMESPACE = "kubernetes:core/v1:Namespace"
CLAIM = "kubernetes:core/v1:PersistentVolumeClaim"
SECRET = "kubernetes:core/v1:Secret"  # noqa: S105 - a type token, not a secret
PASSWORD = "random:index/randomPassword:RandomPassword"  # noqa: S105 - a type token
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
IMMUTABILITY = "azure-native:storage:BlobContainerImmutabilityPolicy"
LOCK = "azure-native:authorization:ManagementLockAtResourceLevel"
BACKUP_TYPES = {
    "azure-native:resources:ResourceGroup": "backup resource group",
    "random:index/randomString:RandomString": "backup account name suffix",
    "azure-native:storage:StorageAccount": "backup storage account",
    "azure-native:storage:BlobContainer": "backup container",
    IMMUTABILITY: "backup immutability policy",
    LOCK: "backup account delete lock",
}


class GateInputError(Exception):
    """Input the gate cannot judge: it refuses rather than guesses."""


@dataclass(frozen=True)
class Guarded:
    """A resource the gate watches: what it is and, for a clinic's resources, whose."""

    kind: str
    category: str  # namespace | claim | secret | password | cluster | pool | data-group | backup | provider
    clinic: str | None = None
    object_name: str = ""


@dataclass(frozen=True)
class Finding:
    urn: str
    op: str
    guarded: Guarded
    why: str
    todo: str


@dataclass
class Context:
    """What the gate knows besides the preview: the stack's last outputs and the tenants file."""

    refreshed: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)  # clinics whose OrcaTenant this preview deletes
    added: set[str] = field(default_factory=set)  # ... and creates
    collateral: dict[str, int] = field(default_factory=dict)  # other deletes of a removed clinic's resources
    known_clinics: set[str] = field(default_factory=set)  # from the `clinics` output
    history: dict[str, dict[str, Any]] = field(default_factory=dict)  # `orcaHistory.clinics`
    tenants: set[str] | None = None  # ids in the tenants file (None: not read)
    retired: set[str] = field(default_factory=set)
    tenants_file: str = "the tenants file"
    stack: str = "<stack>"
    notes: list[str] = field(default_factory=list)
