"""Everything the components need, decided before any resource exists: one validated, pure StackPlan."""

from __future__ import annotations

from dataclasses import dataclass

from orca_platform.model.catalogue import Catalogue
from orca_platform.model.errors import InputError, Problem, show
from orca_platform.model.schedule import months_without_a_run_on_local_day
from orca_platform.model.settings import Settings
from orca_platform.model.tenants import Clinic, TenantsFile
from orca_platform.monitoring.alerts import schedule_problems
from orca_platform.safety.floors import floor_problems
from orca_platform.safety.maintenance import NAMESPACE as MAINTENANCE_NAMESPACE

from .addressing import network_problems, tenant_address_problems
from .capacity import CapacityPlan, clinic_strategy, plan_capacity, reference_per_node, storage_problems
from .clinic import ClinicPlan
from .front_door import front_door_for
from .naming import fqdn, namespace, record_name, state_pvc
from .schedules import staggered
from .storage import StorageStrategy, strategy
from .walls import Wall, all_walls, new_clinic, wall_problems


@dataclass(frozen=True)
class StackPlan:
    settings: Settings
    catalogue: Catalogue
    capacity: CapacityPlan
    clinics: tuple[ClinicPlan, ...]
    retired_clinic_ids: tuple[str, ...] = ()
    # Every wall of the cluster, the stack and the subscription, none of the hard ones crossed.
    walls: tuple[Wall, ...] = ()

    @property
    def storage_classes(self) -> tuple[StorageStrategy, ...]:
        """Every StorageClass the stack needs: its default plus any a clinic overrides to."""
        default = strategy(self.settings.storage.strategy, self.settings.storage.sku, self.catalogue)
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


# The dump script makes the monthly (years-long) copy only when it runs on the 1st of a month in the clinic's time
# zone (backup_plan.DUMP_SCRIPT: `date +%d` = 01 with TZ set to it).
MONTHLY_COPY_DAY = 1


def _schedule_problems(
    settings: Settings, tenants: TenantsFile, tenants_source: str, config_source: str
) -> list[Problem]:
    """Dump schedules read in the stack's time zone: each must run on the 1st of every month there, or some months
    get no monthly copy at all."""
    zone = settings.orca.timezone
    problems = []
    default = settings.backup.dump_schedule
    checked: dict[str, list[str]] = {}
    default_reported = False
    for c in tenants.clinics:
        own = c.backup.dump_schedule if c.backup else None
        expr = own or default
        if expr not in checked:
            checked[expr] = months_without_a_run_on_local_day(expr, zone, MONTHLY_COPY_DAY)
        missing = checked[expr]
        if not missing or (own is None and default_reported):
            continue
        default_reported = default_reported or own is None
        message = (
            f"never runs on the 1st of the month in {zone} in {', '.join(missing[:3])}"
            f"{' and more' if len(missing) > 3 else ''}: the monthly copy, kept for years, is "
            "made only by the dump that runs then"
        )
        fix = "run it every day, e.g. '30 1 * * *'"
        if own is None:
            problems.append(Problem(config_source, "orca-platform:backup.dumpSchedule", message, None, show(expr), fix))
        else:
            problems.append(Problem(tenants_source, "backup.dumpSchedule", message, c.id, show(expr), fix))
    return problems


def _front_door_problems(settings: Settings, tenants: TenantsFile, source: str) -> list[Problem]:
    """A fixed private IP belongs to a clinic's own load balancer, which an ingress-only clinic does not have."""
    return [
        Problem(
            source,
            "privateIp",
            f"is set, but the clinic's front door is ingress-only: it has no load balancer of its own and is reached "
            f"at the ingress controller's {settings.ingress.private_ip}. Remove privateIp, or pin frontDoor: "
            "loadbalancer",
            c.id,
        )
        for c in tenants.clinics
        if c.private_ip is not None and not front_door_for(c, settings).load_balancer
    ]


def stack_problems(
    settings: Settings, tenants: TenantsFile, catalogue: Catalogue, tenants_source: str, config_source: str
) -> list[Problem]:
    """The settings and clinics checked against each other (each on its own is already valid)."""
    with_ilb = sum(1 for c in tenants.clinics if front_door_for(c, settings).load_balancer)
    problems = network_problems(settings, config_source, clinics_with_ilb=with_ilb)
    problems += tenant_address_problems(settings, tenants, tenants_source)
    problems += _front_door_problems(settings, tenants, tenants_source)
    problems += _size_problems(tenants, catalogue, tenants_source)
    problems += _name_problems(settings, tenants, tenants_source)
    problems += storage_problems(settings, tenants, tenants_source, config_source)
    problems += _schedule_problems(settings, tenants, tenants_source, config_source)
    problems += floor_problems(settings, tenants, tenants_source, config_source)
    problems += schedule_problems(settings, tenants, tenants_source, config_source)
    return problems


def plan_stack(
    settings: Settings,
    tenants: TenantsFile,
    catalogue: Catalogue,
    tenants_source: str,
    config_source: str,
    *,
    enforce_walls: bool = True,
) -> StackPlan:
    """Check the settings and clinics against each other, then plan. Raises InputError listing every problem.
    enforce_walls=False returns a plan whose walls may be crossed (`make plan` shows them, then fails)."""
    problems = stack_problems(settings, tenants, catalogue, tenants_source, config_source)
    if problems:
        raise InputError(problems)
    capacity = plan_capacity(settings, tenants, catalogue, config_source)
    backup = settings.backup
    clinics = []
    for c in tenants.clinics:
        store = clinic_strategy(c, settings, catalogue)
        host = fqdn(c, settings)
        own_snapshots = c.backup and c.backup.snapshot_schedule
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
                # An explicit override is the operator's choice; the stack's schedule is staggered per clinic.
                snapshot_schedule=own_snapshots
                or staggered(backup.snapshot_schedule, c.id, backup.snapshot_stagger_minutes),
                front_door=front_door_for(c, settings),
            )
        )
    new = new_clinic(settings, catalogue, reference_per_node(settings, catalogue))
    walls = all_walls(settings, clinics, catalogue, new, capacity.chosen.nodes_all_resumed)
    problems = wall_problems(walls, config_source)
    if problems and enforce_walls:
        raise InputError(problems)
    return StackPlan(
        settings=settings,
        catalogue=catalogue,
        capacity=capacity,
        clinics=tuple(clinics),
        retired_clinic_ids=tuple(tenants.retired_clinic_ids),
        walls=tuple(walls),
    )
