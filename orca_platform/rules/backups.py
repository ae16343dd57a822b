"""Backups: the copies taken on a schedule, each clinic's confined to its own prefix, immutable and locked in prod."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from orca_platform.safety.prod_floors import backup_breaches

from .context import RuleContext, each_clinic_namespace, environment_of, is_prod
from .registry import A, Domain, Finding, M
from .values import as_text, dig, is_unknown, number, truthy
from .view import ResourceView

DOMAIN = Domain(
    "Backups",
    "The copies: taken on a schedule, confined per clinic, immutable and locked in production.",
)
rule = DOMAIN.rule

# Built-in data-plane roles of Azure Blob Storage: Contributor, Owner, Reader.
BLOB_DATA_ROLES = frozenset(
    {
        "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
        "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
        "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    }
)
_PATH_PREFIX = re.compile(r"StringStartsWith\s+'([^'/]*)/'")


def blob_role(view: ResourceView) -> bool | None:
    """Whether a role assignment grants a blob data role; None while the role is unknown (a preview)."""
    role = view.props.get("roleDefinitionId")
    if is_unknown(role):
        return None
    return as_text(role).rsplit("/", 1)[-1].lower() in BLOB_DATA_ROLES


@rule(
    "backup-access-per-clinic",
    "Blob data roles are confined to one clinic's prefix",
    "Each clinic's backup identity may read and write only '<clinic>/' in the archive containers. A role "
    "assignment without that condition lets one clinic's job (or whoever holds its federated token) read every "
    "clinic's dumps: patient records across clinics.",
    M,
    what=(
        "a role assignment of a Blob data role (Contributor, Owner, Reader) carries an ABAC condition confining it "
        "to one clinic's `<clinic>/` prefix, and that clinic is one of the stack's"
    ),
)
def _backup_confined(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.type != "azure-native:authorization:RoleAssignment" or not blob_role(v):
        return
    condition = v.props.get("condition")
    if is_unknown(condition):
        return
    prefixes = set(_PATH_PREFIX.findall(as_text(condition)))
    known = set(ctx.clinic_namespaces.values())
    if not prefixes:
        yield f"role assignment {v.name} grants blob data access with no condition on a clinic's prefix"
    elif len(prefixes) > 1:
        yield f"role assignment {v.name} reaches several prefixes: {', '.join(sorted(prefixes))}"
    elif known and not prefixes <= known:
        yield f"role assignment {v.name} is confined to '{next(iter(prefixes))}/', which is no clinic of this stack"


@rule(
    "clinic-backup-scheduled",
    "Every clinic has scheduled backups",
    "Protection against deletion is not protection against corruption or ransomware: each clinic needs copies "
    "taken on a schedule (CronJobs in its namespace).",
    A,
    scope="stack",
    what="every clinic namespace has a CronJob (its snapshots and dumps)",
)
def _backups(views: Sequence[ResourceView], ctx: RuleContext) -> Iterator[Finding]:
    scheduled = {v.namespace for v in views if v.kind == "CronJob"}
    for ns, clinic, namespace in each_clinic_namespace(views, ctx):
        if ns not in scheduled:
            yield Finding(
                f"clinic {clinic} has no scheduled backup (no CronJob in {ns})", view=namespace, clinic=clinic
            )


@rule(
    "backup-immutable-prod",
    "In production, backup storage is immutable",
    "Medical records must be kept unaltered for years; a WORM policy (immutability) means not even an "
    "administrator or ransomware with their keys can rewrite or delete a stored copy early.",
    M,
    scope="stack",
    what="in production, backup storage has an immutability (WORM) policy",
)
def _immutable(views: Sequence[ResourceView], ctx: RuleContext) -> Iterator[Finding]:
    accounts = _prod_accounts(views, ctx)
    if not accounts:
        return
    worm = any(
        v.type == "azure-native:storage:BlobContainerImmutabilityPolicy"
        or truthy(dig(v.props, "immutableStorageWithVersioning", "enabled")) is True
        for v in views
    )
    for breach in backup_breaches(monthly_retention_days=None, records_years=0, delete_lock=None, immutable=worm):
        yield Finding(f"backup storage {breach} (no policy on any container or account)", view=accounts[0])


def _prod_accounts(views: Sequence[ResourceView], ctx: RuleContext) -> list[ResourceView]:
    accounts = [v for v in views if v.type == "azure-native:storage:StorageAccount"]
    return accounts if any(is_prod(environment_of(v, ctx)) for v in accounts) else []


LOCK_TYPES = (
    "azure-native:authorization:ManagementLockAtResourceLevel",
    "azure-native:authorization:ManagementLockAtResourceGroupLevel",
    "azure-native:authorization:ManagementLockAtSubscriptionLevel",
    "azure-native:authorization:ManagementLockByScope",
)


@rule(
    "backup-delete-lock-prod",
    "In production, the backup account has a delete lock",
    "Immutability protects each copy, not the account: without a CanNotDelete lock one call deletes the account "
    "and every clinic's years of copies with it.",
    M,
    scope="stack",
    what="in production, a `CanNotDelete` (or `ReadOnly`) lock covers the backup account",
)
def _delete_lock(views: Sequence[ResourceView], ctx: RuleContext) -> Iterator[Finding]:
    accounts = _prod_accounts(views, ctx)
    if not accounts:
        return
    locked = any(_is_delete_lock(v) for v in views)
    for breach in backup_breaches(monthly_retention_days=None, records_years=0, delete_lock=locked, immutable=None):
        yield Finding(f"backup storage {breach}", view=accounts[0])


def _is_delete_lock(v: ResourceView) -> bool:
    """A lock that stops deletion of a storage account: on the account itself, or on its group or subscription."""
    if v.type not in LOCK_TYPES or as_text(v.props.get("level")) not in ("CanNotDelete", "ReadOnly"):
        return False
    # A resource-level lock must sit on a storage account ('' when a preview cannot know yet).
    return v.type != LOCK_TYPES[0] or as_text(v.props.get("resourceType")) in ("", "storageAccounts")


@rule(
    "backup-retention-prod",
    "In production, backups are immutable at least as long as the records must be kept",
    "The longest-kept copies (the monthly dumps) must stay unalterable for the records' whole retention "
    "(five years for medical records unless the stack declares more), counted with leap days. The program refuses "
    "the same stack at `pulumi up` (orca_platform/safety/prod_floors.py).",
    M,
    scope="stack",
    what=(
        "in production, the longest immutability period is at least the records' retention: `recordsRetentionYears` "
        "years (the backup account's tag, `--records-retention-years`, or 5) counted with leap days (5 years = 1,827 "
        "days)"
    ),
)
def _retention(views: Sequence[ResourceView], ctx: RuleContext) -> Iterator[Finding]:
    accounts = _prod_accounts(views, ctx)
    periods = [
        number(v.props.get("immutabilityPeriodSinceCreationInDays"))
        for v in views
        if v.type == "azure-native:storage:BlobContainerImmutabilityPolicy"
    ]
    known = [p for p in periods if p is not None]
    if not accounts or not known:
        return
    for breach in backup_breaches(
        monthly_retention_days=max(known),
        records_years=ctx.retention_years(views),
        delete_lock=None,
        immutable=None,
    ):
        yield Finding(f"the longest immutability policy {breach}", view=accounts[0])
