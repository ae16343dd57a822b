"""Everything the components need, decided before any resource exists: one validated, pure StackPlan."""

from __future__ import annotations

from dataclasses import dataclass

from .addressing import network_problems, tenant_address_problems
from .capacity import CapacityPlan, clinic_strategy, plan_capacity, storage_problems
from .catalogue import Catalogue, ClinicSize
from .errors import InputError, Problem
from .maintenance import NAMESPACE as MAINTENANCE_NAMESPACE
from .naming import fqdn, namespace, record_name, state_pvc
from .settings import Environment, Settings
from .storage import StorageStrategy, strategy
from .tenants import Clinic, TenantsFile


@dataclass(frozen=True)
class ClinicPlan:
    clinic: Clinic
    namespace: str
    fqdn: str
    dns_record: str
    size: ClinicSize
    storage: StorageStrategy
    claim_gib: int
    pvc_name: str
    image: str
    dump_schedule: str
    snapshot_schedule: str
    # The clinic had data before (the stack's history says so): an empty volume is a wrong one, never seeded.
    expect_data: bool = False

    @property
    def id(self) -> str:
        return self.clinic.id

    @property
    def replicas(self) -> int:
        return 1 if self.clinic.active else 0


@dataclass(frozen=True)
class StackPlan:
    settings: Settings
    catalogue: Catalogue
    capacity: CapacityPlan
    clinics: tuple[ClinicPlan, ...]

    @property
    def storage_classes(self) -> tuple[StorageStrategy, ...]:
        """Every StorageClass the stack needs: its default plus any a clinic overrides to."""
        default = strategy(self.settings.storage.strategy, self.settings.storage.sku)
        found = {default.storage_class: default}
        for c in self.clinics:
            found.setdefault(c.storage.storage_class, c.storage)
        return tuple(found.values())


def _size_problems(tenants: TenantsFile, catalogue: Catalogue, source: str) -> list[Problem]:
    known = ", ".join(sorted(catalogue.clinic_sizes))
    return [
        Problem(source, "size", f"unknown size class {c.size!r} (known: {known})", c.id)
        for c in tenants.clinics
        if c.size not in catalogue.clinic_sizes
    ]


def _name_problems(settings: Settings, tenants: TenantsFile, source: str) -> list[Problem]:
    """Names clinics actually get: two FQDNs alike (one of them defaulted), or a namespace the platform uses."""
    problems: list[Problem] = []
    owners: dict[str, Clinic] = {}
    for c in tenants.clinics:
        host = fqdn(c, settings)
        first = owners.get(host)
        # Two explicit hostnames alike are already reported by the tenants file's own checks.
        if first is not None and not (first.hostname and c.hostname):
            message = f"{host} is already used by clinic '{first.id}' as its FQDN"
            problems.append(Problem(source, "hostname", message, c.id))
        owners.setdefault(host, c)
        if namespace(c.id) == settings.ingress.namespace:
            message = f"gives namespace {namespace(c.id)}, the ingress controller's own namespace"
            problems.append(Problem(source, "id", message, c.id))
        if namespace(c.id) == MAINTENANCE_NAMESPACE:
            message = f"gives namespace {namespace(c.id)}, the platform's own (maintenance) namespace"
            problems.append(Problem(source, "id", message, c.id))
    return problems


_DIGEST = "@sha256:"


def _digest_problems(
    settings: Settings, tenants: TenantsFile, tenants_source: str, config_source: str
) -> list[Problem]:
    """prod runs only images pinned by digest: a tag can be pushed again with other contents, and the pre-upgrade
    backup, the rollback and the audit all name what runs by its reference."""
    if settings.environment is not Environment.PROD:
        return []
    message = (
        "must be pinned by digest in prod (registry/repository:tag@sha256:<64 hex digits>, "
        "as `az acr repository show-manifests` lists it): a tag can be pushed again with other contents"
    )
    problems = [
        Problem(config_source, f"orca-platform:{key}", message)
        for key, image in (("orca.image", settings.orca.image), ("backup.toolsImage", settings.backup.tools_image))
        if _DIGEST not in image
    ]
    problems += [
        Problem(tenants_source, "image", message, c.id) for c in tenants.clinics if c.image and _DIGEST not in c.image
    ]
    return problems


def plan_stack(
    settings: Settings, tenants: TenantsFile, catalogue: Catalogue, tenants_source: str, config_source: str
) -> StackPlan:
    """Check the settings and clinics against each other, then plan. Raises InputError listing every problem."""
    problems = network_problems(settings, config_source, clinics_with_ilb=len(tenants.clinics))
    problems += tenant_address_problems(settings, tenants, tenants_source)
    problems += _size_problems(tenants, catalogue, tenants_source)
    problems += _name_problems(settings, tenants, tenants_source)
    problems += storage_problems(settings, tenants, tenants_source, config_source)
    problems += _digest_problems(settings, tenants, tenants_source, config_source)
    if problems:
        raise InputError(problems)
    capacity = plan_capacity(settings, tenants, catalogue, config_source)
    backup = settings.backup
    clinics = []
    for c in tenants.clinics:
        store = clinic_strategy(c, settings)
        host = fqdn(c, settings)
        clinics.append(
            ClinicPlan(
                clinic=c,
                namespace=namespace(c.id),
                fqdn=host,
                dns_record=record_name(host, settings.network.dns_zone),
                size=catalogue.clinic_sizes[c.size],
                storage=store,
                claim_gib=store.claim_gib(c.volume_bytes),
                pvc_name=state_pvc(c),
                image=c.image or settings.orca.image,
                dump_schedule=(c.backup and c.backup.dump_schedule) or backup.dump_schedule,
                snapshot_schedule=(c.backup and c.backup.snapshot_schedule) or backup.snapshot_schedule,
            )
        )
    return StackPlan(settings=settings, catalogue=catalogue, capacity=capacity, clinics=tuple(clinics))
