"""The production floors applied to the input, before anything is registered: the same judgements as the policy
pack's and the audit's rules (prod_floors.py), here with the file, clinic and field to change.

- Images only from the registries the stack allows: `orca.allowedRegistries`, or when that is empty the login server
  of `cluster.containerRegistryId` (the registry the nodes get AcrPull on). Checked in every stack that names one; a
  production stack must name one.
- In production: images pinned by digest, monthly copies immutable at least `backup.recordsRetentionYears`, the
  backup account's delete lock on. Immutability itself is not a setting: the program always creates it.
"""

from __future__ import annotations

from orca_platform.model.errors import Problem, show
from orca_platform.model.settings import Environment, Settings
from orca_platform.model.tenants import TenantsFile

from .prod_floors import (
    acr_login_server,
    backup_breaches,
    digest_breach,
    registry_breach,
    retention_days_for_years,
)

KEY = "orca-platform:"


def allowed_registries(settings: Settings) -> list[str]:
    """The login servers images may come from, as configured or derived from the stack's registry."""
    if settings.orca.allowed_registries:
        return list(settings.orca.allowed_registries)
    registry = settings.cluster.container_registry_id
    server = acr_login_server(registry) if registry else None
    return [server] if server else []


def _image(image: str, allowed: list[str], prod: bool) -> list[tuple[str, str]]:
    """(what is wrong, the fix) for one image reference."""
    out = []
    breach = registry_breach(image, allowed)
    if breach:
        out.append(
            (breach, f"push it to {allowed[0]} and name it there, or add its registry to orca.allowedRegistries")
        )
    if prod:
        breach = digest_breach(image)
        if breach:
            out.append((breach, "name the build by digest: <registry>/<repository>@sha256:<64 hex digits>"))
    return out


def floor_problems(settings: Settings, tenants: TenantsFile, tenants_source: str, config_source: str) -> list[Problem]:
    prod = settings.environment is Environment.PROD
    allowed = allowed_registries(settings)
    problems: list[Problem] = []
    if prod and not allowed:
        problems.append(
            Problem(
                config_source,
                f"{KEY}orca.allowedRegistries",
                "names no registry, and cluster.containerRegistryId is not set: production must say where its "
                "images come from",
                fix="set cluster.containerRegistryId (the nodes get AcrPull on it) or list login servers here",
            )
        )
    for field, image in (("orca.image", settings.orca.image), ("backup.toolsImage", settings.backup.tools_image)):
        problems += [
            Problem(config_source, f"{KEY}{field}", message, value=show(image), fix=fix)
            for message, fix in _image(image, allowed, prod)
        ]
    for clinic in tenants.clinics:
        if clinic.image is not None:
            problems += [
                Problem(tenants_source, "image", message, clinic.id, show(clinic.image), fix)
                for message, fix in _image(clinic.image, allowed, prod)
            ]
    if prod:
        b = settings.backup
        for message in backup_breaches(
            monthly_retention_days=b.monthly_retention_days,
            records_years=b.records_retention_years,
            delete_lock=None,
            immutable=None,
        ):
            needed = retention_days_for_years(b.records_retention_years)
            problems.append(
                Problem(
                    config_source,
                    f"{KEY}backup.monthlyRetentionDays",
                    message,
                    value=show(b.monthly_retention_days),
                    fix=f"set {needed} or more (days, not years), or lower backup.recordsRetentionYears if the "
                    "records really may go sooner",
                )
            )
        for message in backup_breaches(
            monthly_retention_days=None, records_years=0, delete_lock=b.delete_lock, immutable=None
        ):
            problems.append(
                Problem(config_source, f"{KEY}backup.deleteLock", message, value=show(b.delete_lock), fix="set true")
            )
    return problems
